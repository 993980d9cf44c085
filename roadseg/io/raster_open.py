"""Open rasters for reading with one error message shape, and recognise roadseg's probability maps.

Every reader in roadseg opens files the same way: PNG and JPEG tiles carry no georeferencing, so
rasterio's NotGeoreferencedWarning is noise there, and an unreadable file becomes one
:class:`BadInputError` line that names the file and, where the caller knows it, the fix.

roadseg tags what it writes with ``ROADSEG_CONTENT`` (``mask`` or ``probability``). Probability maps
saved as uint8 hold ``round(p * 254)`` (255 nodata) and also carry GDAL's band scale 1/254, so QGIS and
GDAL show probabilities; without the tag such a file would look like an 8-bit mask.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import rasterio
from rasterio._err import CPLE_BaseError  # GDAL errors rasterio passes on unwrapped (e.g. from reproject)
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from roadseg.errors import BadInputError

CONTENT_TAG = "ROADSEG_CONTENT"
VERSION_TAG = "ROADSEG_VERSION"  # in every raster roadseg writes: how it knows its own outputs
WEIGHTS_TAG = "ROADSEG_WEIGHTS"  # which weights predict used (see roadseg.inference.predict._provenance)
PROBABILITY = "probability"
UNCERTAINTY = "uncertainty"  # the variance of the TTA views (predict `save_uncertainty`): not a mask
MASK = "mask"
# warnings.catch_warnings swaps the process-wide filter list: two threads (the training data
# pipeline's workers) entering and leaving it at once can restore each other's filters mid-open.
_FILTERS_LOCK = threading.Lock()


def _open_quietly(name: str | Path):
    with _FILTERS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        return rasterio.open(name)


def open_raster(path, hint: str = ""):
    """``rasterio.open(path)`` for reading; :class:`BadInputError` naming the file when it fails.

    ``path`` may also be a remote input (:class:`~roadseg.io.remote.RemoteRaster`, a STAC item of
    :mod:`roadseg.io.stac`): it opens itself, retrying transient network failures.
    """
    if hasattr(path, "open_with"):
        return path.open_with(_open_quietly)
    try:
        return _open_quietly(path)
    except RasterioError as error:
        raise BadInputError(f"{path}: not a readable raster ({error}){'; ' + hint if hint else ''}") from error


@contextlib.contextmanager
def reading(path: str | Path) -> Iterator[None]:
    """Turn a failure to read ``path``'s pixels into one :class:`BadInputError` line naming the file.

    A file whose header opens can still fail later (truncated by a broken copy, say); rasterio's
    error then only says "Read failed", with GDAL's reason in the exception it chains.
    """
    try:
        yield
    except (RasterioError, CPLE_BaseError) as error:
        cause = error.__cause__ or error.__context__
        reason = " ".join(str(cause if isinstance(cause, CPLE_BaseError) else error).split()).rstrip(".")
        if hasattr(path, "scrub"):  # a URL: GDAL's reason may hold its query string (a signature), so unchained
            raise BadInputError(f"{path}: reading failed ({path.scrub(reason)}); check the "
                                "network and run again (finished outputs are skipped)") from None
        raise BadInputError(f"{path}: reading failed, the file may be truncated or corrupt ({reason})") from error


def raster_tags(path: str | Path) -> dict[str, str]:
    """The dataset tags (GeoTIFF tags, PNG text chunks) of ``path``; none for a file GDAL cannot open."""
    try:
        with open_raster(path) as dataset:
            return dataset.tags()
    except BadInputError:
        return {}


def written_by_roadseg(path: str | Path) -> bool:
    """Whether roadseg wrote ``path`` (its GeoTIFF tags or PNG text chunks carry ``ROADSEG_VERSION``).

    A file roadseg did not write, such as a ground-truth ``<id>_mask.png`` beside the imagery, is then
    never skipped as "already done" nor replaced as an output.
    """
    return VERSION_TAG in raster_tags(path)


def probability_scale(dataset) -> float | None:
    """Factor from stored values to probabilities (1 for floats, 1/254 for tagged uint8), None for masks."""
    dtype = np.dtype(dataset.dtypes[0])
    if dtype.kind == "f":
        return 1.0
    if dataset.tags().get(CONTENT_TAG) == PROBABILITY:
        return float(dataset.scales[0]) if dataset.scales[0] not in (0, 1) else 1.0 / 254.0
    return None
