"""Turn the files, directories and glob patterns a user names into a sorted, de-duplicated file list."""

from __future__ import annotations

import glob
from collections.abc import Iterable, Sequence
from pathlib import Path

from roadseg.errors import BadInputError, BadParameterError

RASTER_SUFFIXES = (".tif", ".tiff", ".jpg", ".jpeg", ".png")


def collect_inputs(items: Iterable[str | Path], *, suffixes: Sequence[str] = RASTER_SUFFIXES,
                   recursive: bool = False) -> list[Path]:
    """Expand files, directories (their matching files; subdirectories with ``recursive``) and globs.

    Files named explicitly are kept whatever their suffix (the reader decides); files found in
    directories or by globs must have one of ``suffixes``. Hidden files (temporary outputs) are skipped.
    """
    wanted = tuple(suffix.lower() for suffix in suffixes)
    found: list[Path] = []

    def add_found(path: Path) -> None:
        if path.is_file() and path.suffix.lower() in wanted and not path.name.startswith("."):
            found.append(path)

    for item in items:
        text = str(item)
        path = Path(text)
        if path.is_dir():
            for child in sorted(path.rglob("*") if recursive else path.iterdir()):
                add_found(child)
        elif path.is_file():
            found.append(path)
        elif glob.has_magic(text):
            matches = sorted(glob.glob(text, recursive=recursive))
            if not matches:
                raise BadInputError(f"{text}: the pattern matches no files")
            for match in matches:
                match_path = Path(match)
                if match_path.is_dir():
                    continue
                add_found(match_path)
        else:
            raise BadInputError(f"{text}: no such file or directory")
    return unique_files(found)


def unique_files(paths: Iterable[Path]) -> list[Path]:
    """``paths`` sorted, each file once however it was spelled (relative, absolute, through a link):
    the first spelling is kept, so one file named twice is one input, not two that clash."""
    first: dict[Path, Path] = {}
    for path in paths:
        first.setdefault(Path(path).resolve(), Path(path))
    return sorted(first.values())


def collect_masks(items: Iterable[str | Path], *, stem_suffix: str = "_mask",
                  suffixes: Sequence[str] = RASTER_SUFFIXES, recursive: bool = False) -> list[Path]:
    """Like :func:`collect_inputs`, but a directory holding any ``*<stem_suffix>.*`` file gives only those.

    ``roadseg predict`` writes ``<stem>_mask``, ``_prob`` and ``_preview`` files side by side (and the
    DeepGlobe layout keeps ``<id>_sat.jpg`` beside its masks), so a folder of predict outputs names its
    masks (``stem_suffix="_prob"`` for the probability maps) without the other files being read as masks.
    """
    found: list[Path] = []
    for item in items:
        paths = collect_inputs([item], suffixes=suffixes, recursive=recursive)
        wanted = [path for path in paths if path.stem.lower().endswith(stem_suffix)]
        found.extend(wanted if Path(item).is_dir() and wanted else paths)
    return unique_files(found)


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``K/N`` (1-based K) into ``(k, n)``; raise ValueError with the expected form otherwise."""
    try:
        k_text, n_text = text.split("/")
        k, n = int(k_text), int(n_text)
    except ValueError:
        raise BadParameterError("shard", f"must look like K/N (e.g. 3/10), got {text!r}") from None
    if not 1 <= k <= n:
        raise ValueError(f"shard K/N needs 1 <= K <= N, got {text!r}")
    return k, n


def select_shard(paths: Sequence[Path], k: int, n: int) -> list[Path]:
    """The K-th (1-based) of N deterministic, disjoint shares of the sorted list: every N-th file."""
    return list(sorted(paths)[k - 1::n])
