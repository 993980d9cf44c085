"""Write outputs under a temporary name and rename them into place, so no reader sees a partial file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from roadseg.errors import BadInputError, OutputExistsError


def check_writable(path: Path, overwrite: bool) -> None:
    """Refuse an existing output unless ``overwrite``, or a directory that could not be created or written.

    Creates nothing: a command checks its output before reading its inputs, and a bad input must not
    leave empty directories behind; :func:`atomic_output` creates them when the output is written.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} already exists; pass `overwrite` to replace it")
    ancestor = _nearest_existing(path.parent)
    where = f"output directory {path.parent}" if ancestor == path.parent else \
        f"cannot create output directory {path.parent}: {ancestor}"
    if not ancestor.is_dir():
        raise BadInputError(f"{where} is not a directory; choose another with -o")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise BadInputError(f"{where} is not writable; choose another with -o")


def _nearest_existing(directory: Path) -> Path:
    """``directory`` or its closest ancestor that exists (at worst ``.`` or the root)."""
    for candidate in (directory, *directory.parents):
        if candidate.exists():
            break
    return candidate


def _make_parent(path: Path) -> None:
    """Create the output's directory (and its parents), as late as possible."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BadInputError(f"cannot create output directory {path.parent}: {error.strerror}") from error


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: Path | str, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``, on error delete it.

    The output's directory is created here, not by :func:`check_writable`, so a command that fails
    before writing leaves no empty directories.

    The temporary name keeps the final suffix (GDAL picks drivers by extension) and starts with a dot
    so directory listings and globs of outputs do not pick it up.
    """
    path = Path(path)
    check_writable(path, overwrite)
    _make_parent(path)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".partial{path.suffix}",
                                         dir=path.parent)
    os.close(handle)
    temp_path = Path(temp_name)
    try:
        yield temp_path
        if path.exists() and not overwrite:  # appeared while we worked: never clobber it
            raise OutputExistsError(f"{path} already exists; pass `overwrite` to replace it")
        os.chmod(temp_path, 0o666 & ~_umask())  # mkstemp makes it private; outputs get the usual mode
        os.replace(temp_path, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp_path.unlink()
        for sidecar in temp_path.parent.glob(temp_path.name + ".*"):  # e.g. GDAL's .aux.xml
            with contextlib.suppress(OSError):
                sidecar.unlink()
