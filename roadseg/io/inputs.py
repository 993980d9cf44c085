"""Turn the files, directories, glob patterns, URLs, STAC items and ``@lists`` a user names into a
sorted, de-duplicated input list.

An input is a local :class:`~pathlib.Path`, a :class:`~roadseg.io.remote.RemoteRaster` (a URL) or a
:class:`~roadseg.io.stac.StacItem`; all three have ``name``, ``stem`` and ``suffix``, so outputs are
named, skipped when done and sharded the same way whatever the input is.
"""

from __future__ import annotations

import glob
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Union

from roadseg.errors import BadInputError, BadParameterError
from roadseg.io.remote import RemoteRaster, is_url
from roadseg.io.stac import StacItem, looks_like_item

RASTER_SUFFIXES = (".tif", ".tiff", ".jpg", ".jpeg", ".png")

Input = Union[Path, RemoteRaster, StacItem]
"""One input of predict, preview or eval: a local file, a URL, or a STAC item."""

LIST_PREFIX = "@"


def as_input(item: str | Path | RemoteRaster | StacItem, *, asset: str | None = None) -> Input:
    """``item`` as an input: a URL becomes a :class:`RemoteRaster` (a STAC item's URL, ``*.json`` or
    ``.../items/<id>``, a :class:`StacItem`), a local ``*.json`` a :class:`StacItem`, anything else a Path.
    ``asset`` is the STAC asset to read (None: ``visual``, else red, green and blue).

    >>> as_input("https://example.com/scenes/scene.tif?sig=abc").stem
    'scene'
    >>> as_input("https://example.com/v1/collections/naip/items/ca_m_3812", asset="image")
    StacItem(location='https://example.com/v1/collections/naip/items/ca_m_3812', asset='image')
    """
    if isinstance(item, (RemoteRaster, StacItem)):
        return item
    text = str(item)
    if isinstance(item, str) and is_url(text):
        return StacItem(text, asset) if looks_like_item(text) else RemoteRaster(text)
    path = Path(item)
    return StacItem(text, asset) if path.suffix.lower() == ".json" else path


def is_local(item: Input) -> bool:
    return isinstance(item, Path)


def read_list(path: str | Path) -> list[str]:
    """The inputs listed in a text file, one a line; blank lines and lines starting with # are skipped.
    Relative paths are taken from the current folder, as if typed on the command line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise BadInputError(f"{path}: cannot read the input list ({error.strerror})") from error
    except UnicodeDecodeError:
        raise BadInputError(f"{path}: the input list is not UTF-8 text (one path or URL a line)") from None
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def expand_lists(items: Iterable[str | Path]) -> list[str]:
    """``items`` with each ``@list.txt`` replaced by the inputs it lists (lists do not nest). A file whose
    name starts with ``@`` stays a file."""
    expanded: list[str] = []
    for item in items:
        text = str(item)
        is_list = text.startswith(LIST_PREFIX) and not Path(text).exists()
        expanded.extend(read_list(text[len(LIST_PREFIX):]) if is_list else [text])
    return expanded


def collect_sources(items: Iterable[str | Path], *, recursive: bool = False,
                    asset: str | None = None) -> list[Input]:
    """Like :func:`collect_inputs`, and also URLs, STAC items (``*.json`` files and item URLs, read as
    ``asset`` says) and ``@list.txt`` files of inputs. URLs are not checked here: a missing one fails
    when it is read, and the batch goes on."""
    found: list[Input] = []
    for text in expand_lists(items):
        if is_url(text) or Path(text).suffix.lower() == ".json" and Path(text).is_file():
            found.append(as_input(text, asset=asset))
        else:
            found.extend(collect_inputs([text], recursive=recursive))
    return unique_inputs(found)


def _remote_key(item: Input) -> tuple[str, str]:
    return (item.url, "") if isinstance(item, RemoteRaster) else (item.location, item.asset or "")


def unique_inputs(items: Iterable[Input]) -> list[Input]:
    """Local files as :func:`unique_files` gives them, then URLs and STAC items, each once, by URL."""
    items = list(items)
    local = [item for item in items if is_local(item)]
    remote = {_remote_key(item): item for item in reversed(list(items)) if not is_local(item)}
    return unique_files(local) + [remote[key] for key in sorted(remote)]


def sort_inputs(items: Iterable[Input]) -> list[Input]:
    """Local files in path order, then URLs and STAC items in URL order: the order shards are cut from."""
    items = list(items)
    return sorted(i for i in items if is_local(i)) + sorted((i for i in items if not is_local(i)), key=_remote_key)


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


def select_shard(paths: Sequence[Input], k: int, n: int) -> list[Input]:
    """The K-th (1-based) of N deterministic, disjoint shares of the sorted list: every N-th input."""
    return sort_inputs(paths)[k - 1::n]
