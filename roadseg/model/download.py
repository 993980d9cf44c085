"""Streamed, checksummed downloads that never leave a partial file behind."""

from __future__ import annotations

import hashlib
import http.client
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from roadseg.errors import ChecksumMismatchError, DownloadError
from roadseg.io.atomic import atomic_output

CHUNK_BYTES = 1 << 20

#: Called with (bytes so far, total bytes or None) as a download proceeds.
ProgressCallback = Callable[[int, "int | None"], None]


def sha256_of(path: Path) -> str:
    """The hex sha256 of a file, read in chunks (checkpoints are ~120 MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, destination: Path, *, sha256: str, progress: ProgressCallback | None = None,
             overwrite: bool = False, timeout: float = 60.0) -> Path:
    """Fetch ``url`` into ``destination`` (temporary name, sha256 check, rename).

    On a network error, a connection that drops early, or a checksum mismatch, nothing is left at
    ``destination`` and :class:`DownloadError` (or :class:`ChecksumMismatchError`) says which.
    """
    destination = Path(destination)
    with atomic_output(destination, overwrite=overwrite) as temp_path:
        digest = hashlib.sha256()
        received = 0
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(temp_path, "wb") as out:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    if progress is not None:
                        progress(received, total)
        except http.client.IncompleteRead as error:
            got = received + len(error.partial)
            raise DownloadError(f"{url}: the connection dropped after {got} bytes; nothing was saved, "
                                "run the download again") from error
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
            reason = getattr(error, "reason", None) or error
            raise DownloadError(f"{url}: download failed ({reason}); nothing was saved") from error
        if total is not None and received != total:
            raise DownloadError(f"{url}: the connection dropped after {received} of {total} bytes; "
                                "nothing was saved, run the download again")
        actual = digest.hexdigest()
        if actual != sha256:
            raise ChecksumMismatchError(
                f"{url}: sha256 mismatch (expected {sha256}, got {actual}); the file was deleted")
    return destination
