"""Write outputs under a temporary name and rename them into place, so no reader sees a partial file."""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import socket
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

from roadseg.errors import BadInputError, OutputError, OutputExistsError, RoadsegError
from roadseg.interrupts import on_exit_now


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
        raise BadInputError(f"{where} is not a directory; choose another output location")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise BadInputError(f"{where} is not writable; choose another output location")


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two names are one file: either may be named relatively, or through a link."""
    a, b = Path(a), Path(b)
    if a.resolve() == b.resolve():
        return True
    return a.exists() and b.exists() and a.samefile(b)


def check_apart(outputs: Iterable[str | Path | None], inputs: Iterable[str | Path]) -> None:
    """Refuse, with one :class:`BadInputError` line naming the file, an output that is one of the inputs
    (by any name, or through a link): writing it would replace what the command reads. Every command
    whose outputs could be its inputs checks this before it reads anything."""
    inputs = [Path(p) for p in inputs]
    for output in outputs:
        clash = None if output is None else next((p for p in inputs if same_file(output, p)), None)
        if clash is not None:
            also = "" if Path(output) == clash else f" ({clash})"
            raise BadInputError(f"{output}: is also an input{also}, which writing it would replace; "
                                "write the output to another file")


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


FULL_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
"""Write failures that mean "no room": the disk, the user's quota, or the file-size limit."""

_LIVE_TEMPS: set[Path] = set()
"""Temporary files being written now, removed if a second Ctrl-C ends the process at once."""


def _remove_live_temps() -> None:
    for temp in list(_LIVE_TEMPS):
        _remove_with_sidecars(temp)


on_exit_now(_remove_live_temps)


def _owner() -> str:
    """Who writes a temporary file: host and process, so a later run can tell a dead writer's leftovers
    (SIGKILL, power loss) from a file another process is still writing, on a shared disk too."""
    host = "".join(char if char.isalnum() or char == "-" else "-" for char in socket.gethostname())
    return f"{host or 'host'}-{os.getpid()}"


def temp_pattern(path: Path) -> str:
    """The glob of every temporary file :func:`atomic_output` may have left for ``path``."""
    return f".{glob.escape(path.stem)}.*.partial{glob.escape(path.suffix)}"


def _writer_alive(owner: str) -> bool | None:
    """Whether the process named in a temporary file's ``owner`` part still runs; None if it is another
    machine's (or the name is not ours), which this one cannot tell."""
    host, _, pid = owner.rpartition("-")
    if host != _owner().rpartition("-")[0] or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def clear_stale_temps(path: Path) -> list[Path]:
    """Remove temporary files a dead writer left for ``path`` (a process of this machine that no longer
    runs); return the ones left because their writer may be alive elsewhere, for the caller to name."""
    unknown = []
    for temp in path.parent.glob(temp_pattern(path)):
        owner = temp.name[len(path.stem) + 2:].split(".", 1)[0]
        alive = _writer_alive(owner)
        if alive is False:
            _remove_with_sidecars(temp)
        elif alive is None:
            unknown.append(temp)
    return unknown


def _remove_with_sidecars(temp: Path) -> None:
    with contextlib.suppress(OSError):
        temp.unlink()
    for sidecar in temp.parent.glob(glob.escape(temp.name) + ".*"):  # e.g. GDAL's .aux.xml
        with contextlib.suppress(OSError):
            sidecar.unlink()


def _named_after_output(error: Exception, temp: Path, path: Path) -> Exception | None:
    """The error as the user should read it: about ``path``, never the hidden temporary file, and a full
    disk said as such. None when the error does not mention the temporary file or a full disk."""
    if isinstance(error, OSError) and error.errno in FULL_DISK_ERRNOS:
        return OutputError(f"{path}: no space left to write it ({os.strerror(error.errno)}); free some space "
                           "or write elsewhere; nothing was written")
    message = str(error)
    if not isinstance(error, RoadsegError) or str(temp) not in message:
        return None
    message = message.replace(str(temp), str(path))
    if any(word in message.lower() for word in ("no space", "disk full", "file too large", "quota")):
        return OutputError(f"{path}: no space left to write it; free some space or write elsewhere; "
                           "nothing was written")
    with contextlib.suppress(TypeError):
        return type(error)(message)
    return None


@contextlib.contextmanager
def atomic_output(path: Path | str, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``, on error delete it.

    The output's directory is created here, not by :func:`check_writable`, so a command that fails
    before writing leaves no empty directories.

    The temporary name keeps the final suffix (GDAL picks drivers by extension), starts with a dot so
    directory listings and globs of outputs do not pick it up, and names its writer (host and process),
    so the next run of the same output removes what a killed writer left (:func:`clear_stale_temps`).
    Errors name ``path``, not the temporary file.
    """
    path = Path(path)
    check_writable(path, overwrite)
    _make_parent(path)
    for unknown in clear_stale_temps(path):
        warnings.warn(f"{unknown}: a temporary file of {path.name} left by another machine's or an older "
                      "roadseg; remove it once nothing else writes there", stacklevel=3)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.stem}.{_owner()}.", suffix=f".partial{path.suffix}",
                                         dir=path.parent)
    os.close(handle)
    temp_path = Path(temp_name)
    _LIVE_TEMPS.add(temp_path)
    try:
        yield temp_path
        if path.exists() and not overwrite:  # appeared while we worked: never clobber it
            raise OutputExistsError(f"{path} already exists; pass `overwrite` to replace it")
        os.chmod(temp_path, 0o666 & ~_umask())  # mkstemp makes it private; outputs get the usual mode
        os.replace(temp_path, path)
    except Exception as error:
        renamed = _named_after_output(error, temp_path, path)
        if renamed is None:
            raise
        raise renamed from error
    finally:
        _LIVE_TEMPS.discard(temp_path)
        _remove_with_sidecars(temp_path)
