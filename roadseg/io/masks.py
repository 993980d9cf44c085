"""Read road masks and probability rasters as ``road`` / ``valid`` boolean arrays: the one mask decoder.

Two mask encodings are in use and a reader must not confuse them:

* ``predict``: roadseg's own masks, 1 = road, 0 = background, 255 = nodata (GeoTIFFs carry a nodata
  tag of 255 and roadseg's ``ROADSEG_CONTENT=mask`` tag, as ``stitch`` mosaics do);
* ``binary``: plain 0/255 masks (SpaceNet's burnt labels, DeepGlobe's PNGs) where every non-zero value
  is road.

``auto`` picks ``predict`` for a GeoTIFF roadseg tagged as its mask with nodata 255, or a file that
holds the value 1 among 0/1/255 values; ``binary`` otherwise.

The nodata rule, the same for every reader (:func:`mask_nodata`): the file's nodata tag marks missing
pixels, except where it names one of the mask's own classes, which it never silently turns into "no
data". 0 is background; 1 is road in a predict mask; in a binary mask the tag is road when it is the
mask's only non-zero value (a 0/255 label tagged 255). Such a tag is set aside with a one-line warning,
so a ground truth rasterized with nodata 0 keeps its background and a 0/255 mask tagged 255 keeps its
roads; predict's 255 stays nodata. Probability rasters (floats in [0, 1]) need a ``threshold``; NaN and
the nodata tag are never road.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from affine import Affine
from rasterio.crs import CRS

from roadseg.errors import BadInputError, BadParameterError
from roadseg.io.raster_open import (
    CONTENT_TAG,
    MASK,
    UNCERTAINTY,
    WEIGHTS_TAG,
    open_raster,
    probability_scale,
    reading,
)

MaskFormat = Literal["auto", "predict", "binary"]
MASK_FORMATS = ("auto", "predict", "binary")
PREDICT_NODATA = 255
PREDICT_VALUES = frozenset({0, 1, PREDICT_NODATA})


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
    # Road probabilities (H, W) when known (a probability map read at a threshold, or one given beside the
    # mask): each road edge then carries the evidence for it. Carried here, not in a second argument, so a
    # mosaic or a reader hands the pipeline one object that keeps mask and probabilities on one grid.
    probability: np.ndarray | None = None
    # The variance of predict's TTA views (its _uncertainty map, NaN without data) when given beside the mask:
    # each road edge then reports its mean (see roadseg.vector.evidence).
    uncertainty: np.ndarray | None = None


@dataclass(frozen=True)
class MaskEncoding:
    """How a mask file's values are read, settled once for the whole file (its windows may come later):
    its ``format`` (predict or binary) and the ``nodata`` value that marks missing pixels, None when no
    value does (predict's 255 is nodata whatever the tag)."""

    format: str
    nodata: float | None


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


def is_predict_mask(dataset) -> bool:
    """Whether the open ``dataset`` is one of roadseg's predict-encoded masks (predict's and stitch's
    GeoTIFFs: tagged ``ROADSEG_CONTENT=mask``, nodata 255): its 255 is nodata even where it holds no road,
    only 0 and 255. predict's PNG masks carry the tag too, but are 0/255 without nodata."""
    return dataset.tags().get(CONTENT_TAG) == MASK and dataset.nodata == PREDICT_NODATA


def file_mask_format(predict_mask: bool, mask_format: MaskFormat) -> MaskFormat:
    """``mask_format`` for a file: auto reads a predict-encoded mask (:func:`is_predict_mask`) as predict."""
    return "predict" if mask_format == "auto" and predict_mask else mask_format


def _tag_value(nodata: float | None) -> int | None:
    """The nodata tag as an integer mask value; None without a tag, or for NaN, fractions and infinities."""
    if nodata is None or not math.isfinite(nodata) or not float(nodata).is_integer():
        return None
    return int(nodata)


def resolve_format(counts: dict[int, int], nodata: float | None, mask_format: MaskFormat) -> str:
    """Decide how integer mask values (``counts``, see :func:`value_counts`) are to be read (see the
    module docstring).

    Raises ValueError when the values cannot be a mask in that format (an image, say).
    """
    if mask_format not in MASK_FORMATS:
        raise BadParameterError("mask_format", f"must be one of {MASK_FORMATS}, got {mask_format!r}")
    present = set(counts) - {_tag_value(nodata)}
    if present and (min(present) < 0 or max(present) > 255):
        raise ValueError(f"values range from {min(present)} to {max(present)}: not a mask (an image?)")
    if mask_format == "predict" and not present <= PREDICT_VALUES:
        raise ValueError(f"values {sorted(present - PREDICT_VALUES)[:5]} are not 0/1/255 as in a "
                         "predict mask; try `mask_format` binary")
    if mask_format != "auto":
        return mask_format
    if 1 in present and present <= PREDICT_VALUES:
        return "predict"
    if len(present - {0}) <= 1:
        return "binary"
    raise ValueError(f"holds {len(present)} distinct values ({', '.join(map(str, sorted(present)[:6]))}, ...): "
                     "not a 0/1/255 or 0/255 mask; pass `mask_format` binary to read any non-zero value as road, "
                     "or `threshold` for probabilities")


def _class_of(value: int, counts: dict[int, int], fmt: str) -> str | None:
    """The class ``value`` stands for in a mask of format ``fmt`` holding ``counts``, or None."""
    if value == 0:
        return "background"
    if fmt == "predict":
        return "road" if value == 1 else None
    return "road" if not set(counts) - {0, value} else None  # the binary mask's one road value


def mask_nodata(counts: dict[int, int], nodata: float | None, fmt: str, source: str) -> float | None:
    """The value that marks missing pixels of a mask in format ``fmt``: the file's tag ``nodata``,
    unless it names one of the mask's classes (see the module docstring); then None, with a one-line
    warning naming ``source`` when any pixel holds it."""
    value = _tag_value(nodata)
    kind = None if value is None else _class_of(value, counts, fmt)
    if kind is None:
        return nodata
    if counts.get(value, 0) > 0:
        warnings.warn(f"{source}: its nodata tag {value} is also the mask's {kind} value, so those pixels are "
                      f"read as {kind}, not as missing data (missing data needs a value of its own, as "
                      "predict's 255 beside 0 and 1)", UserWarning, stacklevel=3)
    return None


def mask_encoding(counts: dict[int, int], nodata: float | None, mask_format: MaskFormat,
                  source: str) -> MaskEncoding:
    """The format and nodata of a whole mask file from its value ``counts`` (see the module docstring)."""
    fmt = resolve_format(counts, nodata, mask_format)
    return MaskEncoding(fmt, mask_nodata(counts, nodata, fmt, source))


def valid_pixels(values: np.ndarray, nodata: float | None) -> np.ndarray:
    """Where ``values`` hold data: neither ``nodata`` (the value :func:`mask_nodata` settled on for a
    mask, a probability raster's tag) nor NaN.

    The one nodata test of every mask and probability reader (masks, previews, scores, mosaics), so a
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


def decode_values(values: np.ndarray, encoding: MaskEncoding) -> tuple[np.ndarray, np.ndarray]:
    """``(road, valid)`` of raw mask values read as ``encoding`` says: a whole file, or a window of one
    (a mosaic's blocks, floats padded with NaN where the tile has no pixel)."""
    values = np.asarray(values)
    valid = valid_pixels(values, encoding.nodata)
    if encoding.format == "predict":
        valid &= values != PREDICT_NODATA
        return valid & (values == 1), valid
    return valid & (values > 0), valid


def decode_mask(values: np.ndarray, nodata: float | None, *, mask_format: MaskFormat = "auto",
                threshold: float | None = None, scale: float = 1.0, source: str = "mask"
                ) -> tuple[np.ndarray, np.ndarray]:
    """Turn the raw values of a whole raster into ``(road, valid)`` boolean arrays of the same shape.

    With ``threshold`` the values are probabilities (stored values times ``scale``, 1/254 for predict's
    uint8 maps): road where ``probability >= threshold``. Otherwise they are a mask in ``mask_format``
    whose encoding is settled from the values themselves (:func:`mask_encoding`; ``source`` names the
    file in its warning); a float raster is refused: it is a probability map.
    """
    values = np.asarray(values)
    if threshold is not None:
        valid = valid_pixels(values, nodata)
        return valid & (_scaled(values, scale) >= threshold), valid
    if values.dtype.kind == "f":
        raise ValueError("a floating-point raster is a probability map: give a threshold to read it as a mask")
    return decode_values(values, mask_encoding(value_counts(values), nodata, mask_format, source))


def decode_any_band(bands: np.ndarray, nodata: float | None, *, mask_format: MaskFormat = "binary",
                    source: str = "mask") -> tuple[np.ndarray, np.ndarray]:
    """``(road, valid)`` of a (bands, H, W) mask: road where any band is road, nodata where any band
    is (a DeepGlobe label repeats its mask in three bands); one encoding for all bands."""
    road, valid = decode_mask(bands, nodata, mask_format=mask_format, source=source)
    valid = valid.all(axis=0)
    return road.any(axis=0) & valid, valid


def read_mask(path: str | Path, *, mask_format: MaskFormat = "auto", threshold: float | None = None,
              band: int = 1) -> MaskRaster:
    """Read band ``band`` of a mask or probability raster; raise :class:`BadInputError` naming the file.

    Probability maps (floats, or predict's tagged uint8 maps) need ``threshold``.
    """
    path = Path(path)
    with open_raster(path, "give a mask or probability map (GeoTIFF, PNG)") as src:
        if src.tags().get(CONTENT_TAG) == UNCERTAINTY:
            raise BadInputError(f"{path}: is predict's uncertainty map (the variance of its TTA views), not a "
                                "mask or probabilities; give the _mask or _prob file beside it")
        if band > src.count:
            raise BadInputError(f"{path}: has {src.count} band(s), band {band} requested")
        with reading(path):
            values = src.read(band)
        nodata, mask_format = src.nodata, file_mask_format(is_predict_mask(src), mask_format)
        transform, crs = src.transform, src.crs
        scale = probability_scale(src)
        weights = src.tags().get(WEIGHTS_TAG)
    if scale is not None and threshold is None:
        raise BadInputError(f"{path}: holds probabilities (a probability map?); pass `threshold`")
    if values.dtype.kind not in "uif":
        raise BadInputError(f"{path}: unsupported pixel type {values.dtype}; expected an integer mask")
    try:
        road, valid = decode_mask(values, nodata, mask_format=mask_format, threshold=threshold, scale=scale or 1.0,
                                  source=str(path))
    except ValueError as error:
        raise BadInputError(f"{path}: {error}") from error
    probability = None if threshold is None else decode_probability(values, nodata, scale or 1.0)[0]
    return MaskRaster(road=road, valid=valid, transform=transform, crs=crs, source=str(path), weights=weights,
                      probability=None if probability is None else probability.astype(np.float32))
