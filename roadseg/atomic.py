"""Write outputs under a temporary name and rename them into place, so no reader sees a partial file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from roadseg.errors import BadInputError, OutputExistsError


def check_writable(path: Path, overwrite: bool) -> None:
    """Refuse an existing output unless ``overwrite``; make sure its directory can be created and written."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} already exists; pass --overwrite to replace it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BadInputError(f"cannot create output directory {path.parent}: {error.strerror}") from error
    if not os.access(path.parent, os.W_OK):
        raise BadInputError(f"output directory {path.parent} is not writable; choose another with -o")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: Path | str, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``, on error delete it.

    The temporary name keeps the final suffix (GDAL picks drivers by extension) and starts with a dot
    so directory listings and globs of outputs do not pick it up.
    """
    path = Path(path)
    check_writable(path, overwrite)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".partial{path.suffix}",
                                         dir=path.parent)
    os.close(handle)
    temp_path = Path(temp_name)
    try:
        yield temp_path
        if path.exists() and not overwrite:  # appeared while we worked: never clobber it
            raise OutputExistsError(f"{path} already exists; pass --overwrite to replace it")
        os.chmod(temp_path, 0o666 & ~_umask())  # mkstemp makes it private; outputs get the usual mode
        os.replace(temp_path, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp_path.unlink()
        for sidecar in temp_path.parent.glob(temp_path.name + ".*"):  # e.g. GDAL's .aux.xml
            with contextlib.suppress(OSError):
                sidecar.unlink()
