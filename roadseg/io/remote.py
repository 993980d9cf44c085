"""Rasters named by URL (``https://``, ``http://``, ``s3://``, ``gs://``), read through GDAL's virtual
file systems window by window with HTTP range requests.

A :class:`RemoteRaster` is an input like a local file: it has a ``name`` and ``stem`` (from the URL's
path; the query string is ignored), so outputs, skip-if-done and ``shard`` treat it as they treat files.
Its ``str`` is the URL without user info, query string or fragment: signed URLs carry their secrets
there, and roadseg never prints them. Credentials come from the usual environment variables
(``AWS_ACCESS_KEY_ID``, ``AWS_NO_SIGN_REQUEST``, ``GOOGLE_APPLICATION_CREDENTIALS``, ...), which GDAL
reads itself; roadseg never asks for them.

Transient failures are retried a bounded number of times with exponential backoff: GDAL retries
timeouts and HTTP 429/5xx answers of every request (``GDAL_HTTP_MAX_RETRY`` retries, the first after
``GDAL_HTTP_RETRY_DELAY`` seconds, then doubling with jitter), and :func:`open_remote` retries an open
that failed at the connection level (a dropped connection, which GDAL does not retry) as many times.
Settings already in the environment win over roadseg's defaults.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

import rasterio
from rasterio.errors import RasterioIOError

from roadseg.errors import BadInputError

T = TypeVar("T")

VSI_PREFIXES = {"http": "/vsicurl/", "https": "/vsicurl/", "s3": "/vsis3/", "gs": "/vsigs/"}
"""URL schemes roadseg reads, and GDAL's virtual file system for each."""

HTTP_SETTINGS = {
    "GDAL_HTTP_MAX_RETRY": "3",  # retries of a request answered 429/5xx or timed out
    "GDAL_HTTP_RETRY_DELAY": "0.5",  # seconds before the first retry; GDAL doubles it (with jitter)
    "GDAL_HTTP_TIMEOUT": "30",  # seconds per request
    "GDAL_HTTP_CONNECTTIMEOUT": "10",
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",  # no listing of the folder for sidecar files
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",  # neighbouring tiles in one request
    "GDAL_INGESTED_BYTES_AT_OPEN": "32768",  # a COG's header and tile index in the first request
}
"""GDAL's settings for remote reads; each one the user set in the environment is left alone."""

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_SECRET_IN_TEXT = re.compile(r"((?:https?|s3|gs)://[^\s?#'\"]*)[?#][^\s'\"]*")
_QUERY_AFTER_NAME = re.compile(r"(\w\.\w{1,8})\?[^\s,;:'\"]*")  # GDAL names a file "B02.tif?token=..."


def is_url(text: str) -> bool:
    """Whether ``text`` is a URL of a scheme roadseg reads (``https://``, ``http://``, ``s3://``, ``gs://``)."""
    match = _URL.match(str(text))
    return bool(match) and match.group(1).lower() in VSI_PREFIXES


def redact(url: str) -> str:
    """``url`` without user info, query string and fragment: what roadseg may print or log.

    >>> redact("https://user:pw@example.com/a/scene.tif?X-Amz-Signature=abc")
    'https://example.com/a/scene.tif'
    """
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def redact_text(text: str) -> str:
    """``text`` (a GDAL message) with the query string and fragment of every URL in it removed, and the
    query string after any file name (GDAL names a remote file by its last path segment, query and all)."""
    return _QUERY_AFTER_NAME.sub(r"\1", _SECRET_IN_TEXT.sub(r"\1", text))


@dataclass(frozen=True)
class RemoteRaster:
    """A raster named by URL. ``str()`` gives the URL without its secrets; ``gdal_path()`` what GDAL opens."""

    url: str

    def __post_init__(self) -> None:
        if not is_url(self.url):
            raise BadInputError(f"{redact(self.url)}: not a URL roadseg reads; use https://, http://, s3:// "
                                "or gs://")
        parts = urlsplit(self.url)
        if not parts.netloc or not parts.path.strip("/"):
            raise BadInputError(f"{redact(self.url)}: the URL names no file (a bucket or host alone)")

    def __str__(self) -> str:
        return redact(self.url)

    @property
    def name(self) -> str:
        """The last segment of the URL's path, percent-decoded (``scene.tif``)."""
        return unquote(urlsplit(self.url).path.rstrip("/").rsplit("/", 1)[-1])

    @property
    def stem(self) -> str:
        return PurePosixPath(self.name).stem

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name).suffix

    def scrub(self, message: str) -> str:
        """GDAL's ``message`` about this URL, fit to print (see :func:`scrub`)."""
        return scrub(message, self)

    def open_with(self, opener: Callable[[str], T]) -> T:
        """``opener`` applied to :meth:`gdal_path`, retried as :func:`open_remote` says."""
        guard_logs()
        return open_remote(self, opener)

    def gdal_path(self) -> str:
        """``/vsicurl/<url>`` (query kept: signed URLs need it), ``/vsis3/bucket/key``, ``/vsigs/bucket/key``."""
        parts = urlsplit(self.url)
        scheme = parts.scheme.lower()
        if scheme in ("http", "https"):
            return VSI_PREFIXES[scheme] + self.url
        return VSI_PREFIXES[scheme] + parts.netloc + parts.path


def http_settings() -> dict[str, str]:
    """:data:`HTTP_SETTINGS` less those the user set in the environment (theirs win)."""
    return {key: value for key, value in HTTP_SETTINGS.items() if key not in os.environ}


def retry_plan() -> tuple[int, float]:
    """Retries and first delay (seconds) in force: the GDAL settings, from the environment or roadseg's."""
    settings = {**HTTP_SETTINGS, **{key: os.environ[key] for key in HTTP_SETTINGS if key in os.environ}}
    try:
        return max(0, int(settings["GDAL_HTTP_MAX_RETRY"])), max(0.0, float(settings["GDAL_HTTP_RETRY_DELAY"]))
    except ValueError:
        return int(HTTP_SETTINGS["GDAL_HTTP_MAX_RETRY"]), float(HTTP_SETTINGS["GDAL_HTTP_RETRY_DELAY"])


def _connection_failure(message: str) -> bool:
    """Whether GDAL's message is a connection-level failure that GDAL does not retry itself (a dropped
    connection, a refused one). GDAL reports network failures only as text (``CURL error: ...``), so this
    is the one place that reads it. HTTP 429/5xx answers and timeouts reaching here were already retried
    by GDAL, and are not retried again."""
    return message.startswith("CURL error") and "timed out" not in message


def with_retries(call: Callable[[int], T], failure: Callable[[Exception], tuple[str, bool] | None],
                 give_up: Callable[[str, str], Exception], *, sleep: Callable[[float], object] = time.sleep) -> T:
    """``call(attempt)`` (attempt 0, 1, ...), tried again after a failure that ``failure`` finds transient,
    waiting :func:`retry_plan`'s delay, doubled each time, as many times as it allows.

    ``failure(error)`` gives ``(reason, transient)`` for the exceptions it knows, None for others (raised
    as they are). After the last failure, ``give_up(reason, after)`` makes the error raised (``after``:
    `` after N tries`` when there were several), outside any handler, so it carries no chained exception
    (GDAL's and urllib's name the URL with its query string, which may hold a signature).
    """
    retries, delay = retry_plan()
    attempt = 0
    while True:
        try:
            return call(attempt)
        except Exception as error:
            judged = failure(error)
            if judged is None:
                raise
            reason, transient = judged
        if not transient or attempt == retries:
            break
        sleep(delay * 2 ** attempt)
        attempt += 1
    raise give_up(reason, f" after {attempt + 1} tries" if attempt else "")


def open_remote(source: RemoteRaster, opener: Callable[[str], T], *, sleep=time.sleep) -> T:
    """``opener(source.gdal_path())``, retried with backoff after connection-level failures.

    A failed try is retried with GDAL's cache of that URL off (GDAL remembers a failed URL as missing).
    The last failure becomes one :class:`BadInputError` line naming the URL without its query string.
    """
    name = source.gdal_path()

    def attempt(number: int) -> T:
        settings = {**http_settings(), **({"CPL_VSIL_CURL_NON_CACHED": name} if number else {})}
        with rasterio.Env(**settings):  # timeouts and retries even where a caller set no io_env
            return opener(name)

    def judge(error: Exception) -> tuple[str, bool] | None:
        return (str(error), _connection_failure(str(error))) if isinstance(error, RasterioIOError) else None

    def give_up(reason: str, after: str) -> BadInputError:
        return BadInputError(f"{source}: cannot read it{after} ({scrub(reason, source)}); check the URL, the "
                             "network and the credentials in the environment")

    return with_retries(attempt, judge, give_up, sleep=sleep)


def scrub(message: str, source: RemoteRaster) -> str:
    """GDAL's ``message`` about ``source`` on one line, with no query string (GDAL names the file with it,
    as a URL or as its last path segment) and the GDAL path shown as the URL."""
    text = " ".join(redact_text(message).replace(redact_text(source.gdal_path()), str(source)).split())
    query = urlsplit(source.url).query
    return text.replace(f"?{query}", "") if query else text


class _RedactFilter(logging.Filter):
    """Strips query strings from URLs in GDAL's log records (its retry warnings name the full URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_FILTER = _RedactFilter()


def guard_logs() -> None:
    """Keep signed URLs' secrets out of rasterio's GDAL log (idempotent)."""
    for name in ("rasterio._env", "rasterio._base", "rasterio._io", "rasterio"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


