"""Read rasters as reflect-padded RGB windows in 0-255, with validity, without loading them whole.

Band choice: ``bands`` (1-based, R,G,B order), else the bands whose colour interpretation is red,
green and blue, else the first three; a single band (panchromatic) is repeated into three. Validity
comes from GDAL's mask of the chosen bands, which covers a nodata value, an alpha band and an internal
mask; a pixel is valid where any chosen band is. Non-8-bit data is scaled to 0-255 with statistics
from a decimated read (a few hundred thousand pixels at most), never from the whole raster.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.windows import Window

from roadseg.errors import BadInputError, BadParameterError, parse_choice
from roadseg.inference.gsd import raster_gsd
from roadseg.inference.windows import reflect_indices
from roadseg.io.raster_open import open_raster, reading
from roadseg.io.remote import guard_logs, http_settings

GDAL_CACHE_MB = 64
"""GDAL's block cache while predicting (its default is 5 % of RAM): a row of windows' tiles fits, and
peak memory stays independent of the raster's size. A GDAL_CACHEMAX set by the user wins."""

STATS_SIZE = 1024
"""Longest side of the decimated read that percentile and min-max statistics come from."""

PLAIN_IMAGE_DRIVERS = ("JPEG", "PNG")


def check_scale_range(scale_range) -> tuple[float, float]:
    """``(low, high)`` as floats; refuses low >= high and NaN (a comparison with NaN is false)."""
    low, high = (float(value) for value in scale_range)
    if not high > low:
        raise BadParameterError("scale_range", f"needs LOW < HIGH (finite numbers), got {low:g} {high:g}")
    return low, high


class Scale(str, Enum):
    """How raster values become 0-255."""

    PERCENTILE = "percentile"  # per band, 2nd..98th percentile of valid pixels -> 0..255
    MINMAX = "minmax"  # per band, minimum..maximum of valid pixels -> 0..255
    NONE = "none"  # values are already 0-255 (clipped to that range)


SCALE_CHOICES = tuple(mode.value for mode in Scale)
PERCENTILES = (2.0, 98.0)


@dataclass(frozen=True)
class ImageScaling:
    """Which bands make red, green and blue, and how their values become 0-255.

    One object, so predict, eval and preview read an image the same way. ``bands`` are 1-based in
    R,G,B order (one band is repeated into three), default by colour interpretation; ``scale`` defaults
    to none for uint8 and percentile otherwise; ``scale_range`` (LOW, HIGH) overrides ``scale``.
    """

    bands: tuple[int, ...] | None = None
    scale: Scale | None = None
    scale_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.bands is not None:
            bands = tuple(int(band) for band in self.bands)
            if len(bands) not in (1, 3) or min(bands) < 1:
                raise BadParameterError("bands", f"must name 1 or 3 bands (numbered from 1) in R,G,B order, "
                                                 f"got {self.bands}")
            object.__setattr__(self, "bands", bands)
        if self.scale is not None:
            object.__setattr__(self, "scale", parse_choice(Scale, self.scale, "scale"))
        if self.scale_range is not None:
            object.__setattr__(self, "scale_range", check_scale_range(self.scale_range))


@dataclass(frozen=True)
class Scaling:
    """Per channel ``(value - low) / (high - low) * 255`` clipped to 0-255; no bounds: clip only."""

    low: tuple[float, float, float] | None = None
    high: tuple[float, float, float] | None = None

    def apply(self, chw: np.ndarray) -> np.ndarray:
        """The channels in 0-255; values too large for float32 (a float64 nodata of 1e300) clip to 255
        rather than raise numpy's overflow warning at the user."""
        with np.errstate(over="ignore", invalid="ignore"):
            values = chw.astype(np.float32)
            if self.low is not None and self.high is not None:
                low = np.asarray(self.low, np.float32)[:, None, None]
                span = np.asarray(self.high, np.float32)[:, None, None] - low
                values = (values - low) * (np.float32(255.0) / span)
        np.nan_to_num(values, copy=False, nan=0.0, posinf=255.0, neginf=0.0)
        return np.clip(values, 0.0, 255.0, out=values)


def default_bands(colorinterp: tuple[ColorInterp, ...]) -> tuple[int, int, int]:
    """Red, green, blue by colour interpretation, else bands 1, 2, 3, else band 1 three times."""
    wanted = (ColorInterp.red, ColorInterp.green, ColorInterp.blue)
    if all(interp in colorinterp for interp in wanted):
        return tuple(colorinterp.index(interp) + 1 for interp in wanted)  # type: ignore[return-value]
    if len(colorinterp) >= 3:
        return (1, 2, 3)
    return (1, 1, 1)


def io_env() -> rasterio.Env:
    """The GDAL settings for streaming reads and writes (a bounded block cache), and for reading URLs
    (retries, timeouts: :data:`roadseg.io.remote.HTTP_SETTINGS`; settings in the environment win)."""
    guard_logs()
    settings = http_settings()
    if "GDAL_CACHEMAX" not in os.environ:
        settings["GDAL_CACHEMAX"] = GDAL_CACHE_MB * 1024 * 1024
    return rasterio.Env(**settings)


def _check_png_complete(path: Path) -> None:
    """GDAL's PNG driver returns a truncated PNG's missing rows as zeros without an error: check IEND."""
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - 1024))
        tail = handle.read()
    if b"IEND" not in tail:
        raise BadInputError(f"{path}: the PNG is truncated (no end chunk); re-download or re-export it")


def _decimated_shape(height: int, width: int) -> tuple[int, int]:
    factor = max(1, math.ceil(max(height, width) / STATS_SIZE))
    return math.ceil(height / factor), math.ceil(width / factor)


class RasterSource:
    """An open raster that reads windows as ``(size, size, 3)`` float32 RGB in 0-255 plus validity.

    Use as a context manager. Every GDAL failure while opening or reading becomes a
    :class:`~roadseg.errors.BadInputError` naming the file.
    """

    def __init__(self, path: Path | str, scaling: ImageScaling | None = None) -> None:
        self.path = path if hasattr(path, "open_with") else Path(path)  # a URL or STAC item stays one
        if isinstance(self.path, Path) and self.path.is_file() and self.path.stat().st_size == 0:
            raise BadInputError(f"{self.path}: the file is empty (0 bytes); remove it or re-export it")
        self._dataset = open_raster(self.path, "give a GeoTIFF, JPEG or PNG image")
        try:
            if self.driver == "PNG" and isinstance(self.path, Path):
                _check_png_complete(self.path)
            self._setup(scaling or ImageScaling())
        except BaseException:
            self._dataset.close()
            raise

    def _setup(self, scaling: ImageScaling) -> None:
        dataset = self._dataset
        self.height, self.width = dataset.height, dataset.width
        if self.height == 0 or self.width == 0:
            raise BadInputError(f"{self.path}: the raster has zero size ({self.width}x{self.height})")
        bands = scaling.bands or default_bands(tuple(dataset.colorinterp))
        if len(bands) == 1:
            bands = bands * 3
        for band in bands:
            if not 1 <= band <= dataset.count:
                raise BadInputError(f"{self.path}: has {dataset.count} band(s) but band {band} was asked "
                                    f"for; choose `bands` between 1 and {dataset.count}")
        self.bands: tuple[int, int, int] = tuple(int(band) for band in bands)  # type: ignore[assignment]
        self._unique = tuple(sorted(set(self.bands)))
        self._order = [self._unique.index(band) for band in self.bands]
        self._has_mask = any(MaskFlags.all_valid not in dataset.mask_flag_enums[band - 1]
                             for band in self._unique)
        self.dtype = np.dtype(dataset.dtypes[self.bands[0] - 1])
        self.scaling = self._scaling(scaling)

    # -- metadata -------------------------------------------------------------------------------------
    @property
    def crs(self):
        return self._dataset.crs

    @property
    def transform(self):
        return self._dataset.transform

    @property
    def driver(self) -> str:
        return self._dataset.driver

    @property
    def is_plain_image(self) -> bool:
        """JPEG or PNG: no georeferencing is carried over to outputs."""
        return self.driver in PLAIN_IMAGE_DRIVERS

    @property
    def gsd(self) -> float | None:
        """Metres per pixel from the georeferencing (:func:`roadseg.inference.gsd.raster_gsd`); None for a
        JPG/PNG (whose georeferencing roadseg never uses) or a raster without a CRS."""
        return None if self.is_plain_image else raster_gsd(self.crs, self.transform, self.height, self.width)

    @property
    def has_mask(self) -> bool:
        """Whether a nodata value, alpha band or internal mask can mark pixels invalid."""
        return self._has_mask

    # -- scaling --------------------------------------------------------------------------------------
    def _scaling(self, image_scaling: ImageScaling) -> Scaling:
        if image_scaling.scale_range is not None:
            low, high = image_scaling.scale_range
            return Scaling((low,) * 3, (high,) * 3)
        scale = image_scaling.scale or (Scale.NONE if self.dtype == np.uint8 else Scale.PERCENTILE)
        if scale is Scale.NONE:
            return Scaling()
        values, valid = self._decimated()
        lows, highs = [], []
        for channel in range(values.shape[0]):
            data = values[channel][valid]
            if data.size == 0:
                low, high = 0.0, 255.0
            elif scale is Scale.PERCENTILE:
                low, high = (float(v) for v in np.percentile(data, PERCENTILES))
            else:
                low, high = float(data.min()), float(data.max())
            lows.append(low)
            highs.append(high if high > low else low + 1.0)
        order = self._order
        return Scaling(tuple(lows[i] for i in order), tuple(highs[i] for i in order))  # type: ignore[arg-type]

    def _read_shape(self, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """The whole raster's distinct chosen bands read nearest-neighbour at ``shape`` (raw values), and
        which pixels are valid (mask and finite)."""
        with reading(self.path):
            values = self._dataset.read(self._unique, out_shape=(len(self._unique), *shape),
                                        resampling=Resampling.nearest)
            masks = (self._dataset.read_masks(self._unique, out_shape=(len(self._unique), *shape),
                                              resampling=Resampling.nearest) if self._has_mask else None)
        valid = np.ones(shape, bool) if masks is None else (masks > 0).any(axis=0)
        return values, valid & np.isfinite(values).all(axis=0)

    def _decimated(self) -> tuple[np.ndarray, np.ndarray]:
        """A nearest-neighbour read of the chosen bands no larger than ``STATS_SIZE`` on a side."""
        values, valid = self._read_shape(_decimated_shape(self.height, self.width))
        return values.astype(np.float64), valid

    # -- reading --------------------------------------------------------------------------------------
    def read_decimated(self, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """The whole raster as ``(H, W, 3)`` float32 RGB in 0-255 read nearest-neighbour at ``shape``, and
        its validity: a quick look (``roadseg preview``) scaled as the windows are."""
        values, valid = self._read_shape(shape)
        return np.ascontiguousarray(np.transpose(self.scaling.apply(values[self._order]), (1, 2, 0))), valid

    def read_window(self, y: int, x: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        """``(size, size, 3)`` float32 RGB in 0-255 and ``(size, size)`` validity, reflected past edges."""
        return self.read_region(y, x, size, size)

    def read_region(self, y: int, x: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`read_window` for any rectangle; only the pixels it needs are read from the file."""
        return self._read_grid(y, x, (height, width), None)

    def resampled(self, shape: tuple[int, int]) -> ResampledView:
        """The raster as seen on a ``shape`` (H, W) grid over the same footprint (another GSD)."""
        return ResampledView(self, shape)

    def read_validity(self, row: int, height: int) -> np.ndarray:
        """``(height, W)`` validity of rows ``[row, row + height)`` at the raster's own resolution."""
        valid = np.ones((height, self.width), bool)
        window = Window(0, row, self.width, height)
        with reading(self.path):
            if self._has_mask:
                valid &= (self._dataset.read_masks(self._unique, window=window) > 0).any(axis=0)
            if np.issubdtype(self.dtype, np.floating):
                valid &= np.isfinite(self._dataset.read(self._unique, window=window)).all(axis=0)
        return valid

    def _read_grid(self, y: int, x: int, size: tuple[int, int], grid: tuple[int, int] | None
                   ) -> tuple[np.ndarray, np.ndarray]:
        """A reflect-padded ``size`` (h, w) region at ``(y, x)`` of the raster on ``grid`` (None: its own
        pixels). On another grid, GDAL resamples the file's pixels inside the region's footprint (a
        fractional window read into ``out_shape``): area average when shrinking, bilinear when enlarging;
        nodata pixels take no part in either, and a pixel is valid where any valid pixel reaches it."""
        grid_height, grid_width = grid or (self.height, self.width)
        rows = reflect_indices(y, size[0], grid_height)
        cols = reflect_indices(x, size[1], grid_width)
        row0, col0 = int(rows.min()), int(cols.min())
        count = (int(rows.max()) - row0 + 1, int(cols.max()) - col0 + 1)
        extra = {}
        if grid is None:
            window = Window(col0, row0, count[1], count[0])
        else:
            scale_y, scale_x = self.height / grid_height, self.width / grid_width
            window = Window(col0 * scale_x, row0 * scale_y, min(count[1] * scale_x, self.width - col0 * scale_x),
                            min(count[0] * scale_y, self.height - row0 * scale_y))
            shrinking = grid_height * grid_width < self.height * self.width
            extra = dict(resampling=Resampling.average if shrinking else Resampling.bilinear)
        with reading(self.path):
            shape = (len(self._unique), *count)
            block = self._dataset.read(self._unique, window=window, out_shape=shape, **extra)
            masks = (self._dataset.read_masks(self._unique, window=window, out_shape=shape, **extra)
                     if self._has_mask else None)
        index = np.ix_(rows - row0, cols - col0)
        chw = self.scaling.apply(block[self._order][(slice(None), *index)])
        valid = np.ones(size, bool) if masks is None else (masks > 0).any(axis=0)[index]
        if np.issubdtype(block.dtype, np.floating):
            valid &= np.isfinite(block[self._order][(slice(None), *index)]).all(axis=0)
        return np.ascontiguousarray(np.transpose(chw, (1, 2, 0))), valid

    def read_all(self) -> tuple[np.ndarray, np.ndarray]:
        """The whole raster as ``(H, W, 3)`` float32 and ``(H, W)`` validity (for small images only)."""
        return self.read_region(0, 0, self.height, self.width)

    # -- lifetime -------------------------------------------------------------------------------------
    def close(self) -> None:
        self._dataset.close()

    def __enter__(self) -> RasterSource:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class ResampledView:
    """A :class:`RasterSource` on a virtual ``shape`` grid over its footprint: what the network sees when it
    runs at another GSD than the file's. Windows are read from the file resampled, one at a time."""

    def __init__(self, raster: RasterSource, shape: tuple[int, int]) -> None:
        if shape[0] < 1 or shape[1] < 1:
            raise ValueError(f"a virtual grid needs at least one pixel, got {shape}")
        self.raster = raster
        self.height, self.width = shape

    def read_window(self, y: int, x: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        """``(size, size, 3)`` float32 RGB in 0-255 and validity on the virtual grid, reflected past edges."""
        return self.read_region(y, x, size, size)

    def read_region(self, y: int, x: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        return self.raster._read_grid(y, x, (height, width), (self.height, self.width))

    def read_all(self) -> tuple[np.ndarray, np.ndarray]:
        """The whole virtual grid (for small images only)."""
        return self.read_region(0, 0, self.height, self.width)
