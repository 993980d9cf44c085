"""Read road masks and probability rasters as ``road`` / ``valid`` boolean arrays.

Two mask encodings are in use and a reader must not confuse them:

* ``predict``: roadseg's own masks, 1 = road, 0 = background, 255 = nodata (GeoTIFFs carry a nodata
  tag of 255);
* ``binary``: plain 0/255 masks (SpaceNet's burnt labels, DeepGlobe's PNGs) where every non-zero value
  is road and there is no nodata unless the file has a nodata tag.

``auto`` picks ``predict`` when the file's nodata tag is 255 or when it holds the value 1, ``binary``
otherwise. Probability rasters (floats in [0, 1]) need a ``threshold``; NaN and the nodata tag are
never road.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from affine import Affine
from rasterio.crs import CRS

from roadseg.errors import BadInputError, BadParameterError
from roadseg.io.raster_open import WEIGHTS_TAG, open_raster, probability_scale, reading

MaskFormat = Literal["auto", "predict", "binary"]
MASK_FORMATS = ("auto", "predict", "binary")
PREDICT_NODATA = 255


@dataclass
class MaskRaster:
    """A decoded mask: where the road is, where there is data, and where it lies on the ground."""

    road: np.ndarray  # (H, W) bool
    valid: np.ndarray  # (H, W) bool, False = nodata
    transform: Affine
    crs: CRS | None
    source: str
    # For a mosaic: (file, row0, col0, row1, col1) of each tile, so each line can name the tiles it crosses.
    tiles: list[tuple[str, int, int, int, int]] | None = None
    # The weights predict recorded in the file (its ROADSEG_WEIGHTS tag), passed on to the vectors.
    weights: str | None = None


def value_counts(values: np.ndarray) -> dict[int, int]:
    """Distinct values of an integer mask and how often they occur (fast for uint8 via bincount)."""
    values = np.asarray(values)
    if values.size == 0:
        return {}
    if values.dtype == np.uint8 or values.dtype == bool:
        counts = np.bincount(values.ravel().view(np.uint8), minlength=256)
        return {int(v): int(counts[v]) for v in np.flatnonzero(counts)}
    low, high = int(values.min()), int(values.max())
    if low < 0 or high > 255:
        return {low: -1, high: -1}  # beyond a mask's range: the caller refuses it
    return value_counts(values.astype(np.uint8))


def resolve_format(values: np.ndarray, nodata: float | None, mask_format: MaskFormat,
                   counts: dict[int, int] | None = None) -> str:
    """Decide how integer mask values are to be read (see the module docstring).

    Raises ValueError when the values cannot be a mask in that format (an image, say).
    """
    if mask_format not in MASK_FORMATS:
        raise BadParameterError("mask_format", f"must be one of {MASK_FORMATS}, got {mask_format!r}")
    counts = value_counts(values) if counts is None else counts
    present = set(counts) - ({int(nodata)} if nodata is not None and float(nodata).is_integer() else set())
    if present and (min(present) < 0 or max(present) > 255):
        raise ValueError(f"values range from {min(present)} to {max(present)}: not a mask (an image?)")
    if mask_format == "predict" and not present <= {0, 1, PREDICT_NODATA}:
        raise ValueError(f"values {sorted(present - {0, 1, PREDICT_NODATA})[:5]} are not 0/1/255 as in a "
                         "predict mask; try `mask_format` binary")
    if mask_format != "auto":
        return mask_format
    if nodata is not None and nodata == PREDICT_NODATA:
        return "predict"
    if 1 in present and present <= {0, 1, PREDICT_NODATA}:
        return "predict"
    if len(present - {0}) <= 1:
        return "binary"
    raise ValueError(f"holds {len(present)} distinct values ({', '.join(map(str, sorted(present)[:6]))}, ...): "
                     "not a 0/1/255 or 0/255 mask; pass `mask_format` binary to read any non-zero value as road, "
                     "or `threshold` for probabilities")


def valid_pixels(values: np.ndarray, nodata: float | None) -> np.ndarray:
    """Where ``values`` hold data: neither the declared ``nodata`` nor NaN.

    The one nodata rule of every mask and probability reader (masks, previews, scores, mosaics), so a
    change to it reaches them all.
    """
    valid = np.ones(values.shape, dtype=bool)
    if nodata is not None and not np.isnan(nodata):
        valid &= values != nodata
    if values.dtype.kind == "f":
        valid &= ~np.isnan(values)
    return valid


def _scaled(values: np.ndarray, scale: float) -> np.ndarray:
    """Stored values as probabilities; left in their own dtype when there is nothing to scale."""
    return values * scale if scale != 1.0 else values


def decode_probability(values: np.ndarray, nodata: float | None, scale: float = 1.0
                       ) -> tuple[np.ndarray, np.ndarray]:
    """``(probability, valid)``: stored values times ``scale`` as float64, 0 where there is no data, so
    a mosaic can sum tiles without masking them again."""
    valid = valid_pixels(values, nodata)
    return np.where(valid, _scaled(values, scale), 0).astype(np.float64), valid


def decode_mask(values: np.ndarray, nodata: float | None, *, mask_format: MaskFormat = "auto",
                threshold: float | None = None, resolved: str | None = None,
                scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Turn raw raster values into ``(road, valid)`` boolean arrays of the same shape.

    With ``threshold`` the values are probabilities (stored values times ``scale``, 1/254 for predict's
    uint8 maps): road where ``probability >= threshold``. Otherwise they are a mask in ``mask_format``;
    ``resolved`` skips the auto-detection, for later windows of a file already inspected, which may be
    float blocks padded with NaN (a mosaic's). Without it a float raster is refused: it is a probability map.
    """
    values = np.asarray(values)
    valid = valid_pixels(values, nodata)
    if threshold is not None:
        return valid & (_scaled(values, scale) >= threshold), valid
    if resolved is None and values.dtype.kind == "f":
        raise ValueError("a floating-point raster is a probability map: give a threshold to read it as a mask")
    if (resolved or resolve_format(values, nodata, mask_format)) == "predict":
        valid &= values != PREDICT_NODATA
        return valid & (values == 1), valid
    return valid & (values > 0), valid


def decode_any_band(bands: np.ndarray, nodata: float | None) -> tuple[np.ndarray, np.ndarray]:
    """``(road, valid)`` of a (bands, H, W) binary mask: road where any band is > 0, nodata where any band
    holds ``nodata`` (a DeepGlobe label repeats its mask in three bands)."""
    road, valid = decode_mask(bands, nodata, resolved="binary")
    valid = valid.all(axis=0)
    return road.any(axis=0) & valid, valid


def read_mask(path: str | Path, *, mask_format: MaskFormat = "auto", threshold: float | None = None,
              band: int = 1) -> MaskRaster:
    """Read band ``band`` of a mask or probability raster; raise :class:`BadInputError` naming the file.

    Probability maps (floats, or predict's tagged uint8 maps) need ``threshold``.
    """
    path = Path(path)
    with open_raster(path, "give a mask or probability map (GeoTIFF, PNG)") as src:
        if band > src.count:
            raise BadInputError(f"{path}: has {src.count} band(s), band {band} requested")
        with reading(path):
            values = src.read(band)
        nodata = src.nodata
        transform, crs = src.transform, src.crs
        scale = probability_scale(src)
        weights = src.tags().get(WEIGHTS_TAG)
    if scale is not None and threshold is None:
        raise BadInputError(f"{path}: holds probabilities (a probability map?); pass `threshold`")
    if values.dtype.kind not in "uif":
        raise BadInputError(f"{path}: unsupported pixel type {values.dtype}; expected an integer mask")
    try:
        road, valid = decode_mask(values, nodata, mask_format=mask_format, threshold=threshold, scale=scale or 1.0)
    except ValueError as error:
        raise BadInputError(f"{path}: {error}") from error
    return MaskRaster(road=road, valid=valid, transform=transform, crs=crs, source=str(path), weights=weights)
