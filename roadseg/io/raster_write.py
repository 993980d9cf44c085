"""Write masks and probability maps row block by row block: tiled GeoTIFF, COG, or PNG for plain images.

Encodings (one nodata convention everywhere):

- mask GeoTIFF, uint8: 1 road, 0 background, 255 nodata (also the file's nodata value);
- mask PNG (JPG/PNG inputs, the DeepGlobe convention): 255 road, 0 background and nodata;
- probability float32: p in [0, 1], NaN nodata (the file's nodata value is NaN);
- probability uint8: ``round(p * 254)`` so 0..254 is 0..1, 255 nodata, with GDAL's band scale 1/254.

GeoTIFFs carry the ``ROADSEG_CONTENT`` tag (``mask`` or ``probability``, see :mod:`roadseg.io.raster_open`)
so stitch and vectorize tell a uint8 probability map from a mask.

GeoTIFF writers only ever hold one row of tiles; the PNG writer holds the (uint8) mask, as PNG cannot be
written in pieces.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio._err import CPLE_BaseError
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window

from roadseg.errors import OutputError
from roadseg.io.grid import RasterGrid
from roadseg.io.raster_open import CONTENT_TAG, MASK, PROBABILITY, UNCERTAINTY

MASK_NODATA = 255
PROB_NODATA_UINT8 = 255
PROB_NODATA_FLOAT = float("nan")
TILE = 256


class ProbDtype(str, Enum):
    """Storage of the probability map."""

    FLOAT32 = "float32"
    UINT8 = "uint8"


PROB_DTYPE_CHOICES = tuple(mode.value for mode in ProbDtype)


def encode_mask(prob: np.ndarray, valid: np.ndarray, threshold: float = 0.5, *, png: bool = False
                ) -> np.ndarray:
    """uint8 mask of ``prob > threshold``: 1/0/255-nodata, or 255/0 (nodata 0) with ``png``."""
    road = np.zeros(prob.shape, bool)
    np.greater(prob, threshold, out=road, where=valid)
    if png:
        return np.where(road, np.uint8(255), np.uint8(0))
    return np.where(valid, road.astype(np.uint8), np.uint8(MASK_NODATA))


def encode_prob(prob: np.ndarray, valid: np.ndarray, dtype: ProbDtype | str = ProbDtype.FLOAT32
                ) -> np.ndarray:
    """float32 with NaN nodata, or uint8 0..254 for p in 0..1 with 255 nodata."""
    if ProbDtype(dtype) is ProbDtype.FLOAT32:
        return np.where(valid, prob, np.float32(PROB_NODATA_FLOAT)).astype(np.float32)
    scaled = np.rint(np.clip(np.nan_to_num(prob), 0.0, 1.0) * 254.0).astype(np.uint8)
    return np.where(valid, scaled, np.uint8(PROB_NODATA_UINT8))


def decode_prob_uint8(values: np.ndarray) -> np.ndarray:
    """Inverse of the uint8 encoding: float32 probabilities, NaN where the value is the nodata 255."""
    out = values.astype(np.float32) / np.float32(254.0)
    out[values == PROB_NODATA_UINT8] = np.nan
    return out


@dataclass(frozen=True)
class BandEncoding:
    """How a GeoTIFF band stores its values: dtype and nodata, what they are (``ROADSEG_CONTENT``), GDAL's
    band scale to probabilities, and how overviews of a COG average them."""

    dtype: str
    nodata: float
    content: str = MASK
    scale: float = 1.0
    overview_resampling: str = "nearest"


MASK_ENCODING = BandEncoding("uint8", MASK_NODATA)
PROB_ENCODINGS = {
    ProbDtype.FLOAT32: BandEncoding("float32", PROB_NODATA_FLOAT, PROBABILITY, 1.0, "average"),
    ProbDtype.UINT8: BandEncoding("uint8", PROB_NODATA_UINT8, PROBABILITY, 1.0 / 254.0, "average"),
}
UNCERTAINTY_ENCODING = BandEncoding("float32", PROB_NODATA_FLOAT, UNCERTAINTY, 1.0, "average")
"""The variance of the TTA views' probabilities (0 to 0.25), NaN nodata."""


def _profile(grid: RasterGrid, encoding: BandEncoding) -> dict:
    """rasterio's creation options of a tiled, deflate-compressed single-band GeoTIFF on ``grid``."""
    profile = {
        "driver": "GTiff", "dtype": encoding.dtype, "count": 1, "height": grid.height, "width": grid.width,
        "nodata": encoding.nodata, "tiled": True, "blockxsize": TILE, "blockysize": TILE,
        "compress": "deflate", "predictor": 3 if encoding.dtype == "float32" else 2, "BIGTIFF": "IF_SAFER",
    }
    if grid.crs is not None:
        profile["crs"] = grid.crs
    if grid.transform is not None:
        profile["transform"] = grid.transform
    return profile


def _write_error(path: Path, error: Exception) -> OutputError:
    """The failure with GDAL's own reason (rasterio's says "See previous exception"), so a full disk
    or a file-size limit is told as such (see :func:`roadseg.io.atomic.atomic_output`)."""
    reason, cause = str(error), error.__cause__ or error.__context__
    while cause is not None:
        if isinstance(cause, CPLE_BaseError):
            reason = str(cause)
        cause = cause.__cause__ or cause.__context__
    return OutputError(f"{path}: writing failed ({' '.join(reason.split())}); check free space and permissions")


class GeoTiffRowWriter:
    """Single-band tiled, deflate-compressed GeoTIFF written in whole rows of tiles as rows arrive.

    With ``cog`` the tiles go to a hidden intermediate file that :meth:`close` turns into a Cloud
    Optimized GeoTIFF with overviews at ``path`` (GDAL's COG driver).
    """

    def __init__(self, path: Path, grid: RasterGrid, encoding: BandEncoding, *, cog: bool = False,
                 tags: dict[str, str] | None = None) -> None:
        self.path = Path(path)
        self.grid = grid
        self.cog = cog
        self.encoding = encoding
        self._pending: list[np.ndarray] = []
        self._pending_rows = 0
        self._next_row = 0
        self._tiff_path = self._intermediate_path() if cog else self.path
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                self._dataset = rasterio.open(self._tiff_path, "w", **_profile(grid, encoding))
            self._dataset.update_tags(**{**(tags or {}), CONTENT_TAG: encoding.content})
            if encoding.scale != 1.0:
                self._dataset.scales = (encoding.scale,)
        except RasterioError as error:
            self._discard_intermediate()
            raise _write_error(self.path, error) from error

    def _intermediate_path(self) -> Path:
        """A hidden file beside ``path`` for the tiles a COG is built from."""
        # named after the output (atomic_output's hidden temporary file), so what removes it removes this
        hidden = self.path.name if self.path.name.startswith(".") else f".{self.path.name}"
        handle, name = tempfile.mkstemp(prefix=f"{hidden}.", suffix=".tiles.tif", dir=self.path.parent)
        os.close(handle)
        return Path(name)

    def write(self, row: int, block: np.ndarray) -> None:
        """Add rows ``[row, row + len(block))``; rows must arrive in order."""
        if row != self._next_row + self._pending_rows:
            expected = self._next_row + self._pending_rows
            raise ValueError(f"rows must arrive in order: expected row {expected}, got {row}")
        self._pending.append(block)
        self._pending_rows += block.shape[0]
        if self._pending_rows >= TILE:
            self._flush(whole_tiles=True)

    def _flush(self, whole_tiles: bool) -> None:
        if not self._pending:
            return
        rows = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        count = (rows.shape[0] // TILE) * TILE if whole_tiles else rows.shape[0]
        if count:
            window = Window(0, self._next_row, self.grid.width, count)
            try:
                self._dataset.write(rows[:count], 1, window=window)
            except RasterioError as error:
                raise _write_error(self.path, error) from error
            self._next_row += count
        rest = rows[count:]
        self._pending = [rest] if rest.shape[0] else []
        self._pending_rows = rest.shape[0]

    def close(self) -> None:
        """Write what is left; with ``cog``, build the COG at ``path``."""
        try:
            self._flush(whole_tiles=False)
            if self._next_row != self.grid.height:
                raise ValueError(f"{self.path}: {self._next_row} of {self.grid.height} rows were written")
        finally:
            self._dataset.close()
        if self.cog:
            try:
                rasterio.shutil.copy(self._tiff_path, self.path, driver="COG", COMPRESS="DEFLATE",
                                     OVERVIEWS="AUTO", RESAMPLING=self.encoding.overview_resampling.upper(),
                                     BIGTIFF="IF_SAFER")
            except RasterioError as error:
                raise _write_error(self.path, error) from error
            finally:
                self._discard_intermediate()

    def abort(self) -> None:
        """Close without finishing (the caller deletes ``path``)."""
        with contextlib.suppress(Exception):
            self._dataset.close()
        self._discard_intermediate()

    def _discard_intermediate(self) -> None:
        if self.cog:
            with contextlib.suppress(FileNotFoundError):
                self._tiff_path.unlink()


def write_tagged_png(path: Path, bands: np.ndarray, tags: dict[str, str]) -> None:
    """A uint8 ``(C, H, W)`` PNG without georeferencing, its ``tags`` as PNG text chunks rather than an
    .aux.xml sidecar: they are how roadseg knows its own masks and previews later. Raises rasterio's
    error; each caller says which of its outputs failed."""
    count, height, width = bands.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", driver="PNG", dtype="uint8", count=count, height=height, width=width,
                           WRITE_METADATA_AS_TEXT="YES") as dataset:
            dataset.update_tags(**tags)
            dataset.write(bands)


class PngRowWriter:
    """Collects uint8 rows in memory and writes one PNG on :meth:`close` (PNG has no piecewise writing)."""

    def __init__(self, path: Path, grid: RasterGrid, tags: dict[str, str] | None = None) -> None:
        self.path = Path(path)
        self._array = np.zeros((grid.height, grid.width), np.uint8)
        self._written = 0
        self._tags = {**(tags or {}), CONTENT_TAG: MASK}

    def write(self, row: int, block: np.ndarray) -> None:
        self._array[row:row + block.shape[0]] = block
        self._written += block.shape[0]

    def close(self) -> None:
        if self._written != self._array.shape[0]:
            raise ValueError(f"{self.path}: {self._written} of {self._array.shape[0]} rows were written")
        try:
            write_tagged_png(self.path, self._array[None], self._tags)
        except RasterioError as error:
            raise _write_error(self.path, error) from error

    def abort(self) -> None:
        self._array = np.zeros((0, 0), np.uint8)


def open_mask_writer(path: Path, grid: RasterGrid, *, png: bool, cog: bool = False,
                     tags: dict[str, str] | None = None):
    """A writer for encoded masks (see :func:`encode_mask`) that records ``tags`` in the file."""
    if png:
        return PngRowWriter(path, grid, tags)
    return GeoTiffRowWriter(path, grid, MASK_ENCODING, cog=cog, tags=tags)


def open_prob_writer(path: Path, grid: RasterGrid, dtype: ProbDtype | str = ProbDtype.FLOAT32, *,
                     cog: bool = False, tags: dict[str, str] | None = None) -> GeoTiffRowWriter:
    """A writer for encoded probabilities (see :func:`encode_prob`)."""
    return GeoTiffRowWriter(path, grid, PROB_ENCODINGS[ProbDtype(dtype)], cog=cog, tags=tags)


def open_uncertainty_writer(path: Path, grid: RasterGrid, *, cog: bool = False, tags: dict[str, str] | None = None
                            ) -> GeoTiffRowWriter:
    """A writer for the TTA views' variance, float32 with NaN nodata (encoded as :func:`encode_prob` does)."""
    return GeoTiffRowWriter(path, grid, UNCERTAINTY_ENCODING, cog=cog, tags=tags)
