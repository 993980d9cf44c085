"""Error maps: true positives, false positives and false negatives painted over the image.

A person looks at one PNG per image and sees where the model misses roads (false negatives) or invents
them (false positives). The painting is pure numpy (:func:`error_map`); :func:`write_error_map` only
writes the result atomically.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from roadseg.io.atomic import atomic_output

TP_COLOUR = (0, 230, 0)
"""Green: road in both prediction and ground truth."""
FP_COLOUR = (255, 0, 0)
"""Red: predicted road where the ground truth has none."""
FN_COLOUR = (0, 140, 255)
"""Blue: ground-truth road the prediction missed."""
NODATA_COLOUR = (64, 64, 64)
"""Dark grey: pixels the prediction marked as nodata (not scored)."""
BACKGROUND_DIM = 0.5
"""Image brightness factor under the colours, so thin roads stand out."""


def to_display_rgb(image: np.ndarray) -> np.ndarray:
    """Make ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` values of any dtype an RGB uint8 image.

    uint8 is kept as is; other dtypes (e.g. 11-bit panchromatic in uint16) are stretched between their
    2nd and 98th percentiles so the picture is visible.
    """
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) image, got {image.shape}")
    image = image[:, :, :3]
    if image.dtype != np.uint8:
        values = image.astype(np.float64)
        finite = values[np.isfinite(values)]
        low, high = np.percentile(finite, (2, 98)) if finite.size else (0.0, 1.0)
        scale = 255.0 / (high - low) if high > low else 0.0
        image = np.clip((np.nan_to_num(values, nan=low) - low) * scale, 0, 255).astype(np.uint8)
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return image


def error_map(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray | None = None,
              image: np.ndarray | None = None) -> np.ndarray:
    """Paint TP, FP and FN pixels in three colours over a dimmed copy of ``image`` (or black).

    Parameters
    ----------
    pred, truth : (H, W) array_like of bool
        Predicted and true road.
    valid : (H, W) array_like of bool, optional
        Scored pixels; the rest are painted :data:`NODATA_COLOUR`.
    image : (H, W[, C]) ndarray, optional
        The imagery under the masks; never modified.

    Returns
    -------
    (H, W, 3) ndarray of uint8

    >>> error_map(np.array([[1, 1, 0]], bool), np.array([[1, 0, 1]], bool))[0].tolist()
    [[0, 230, 0], [255, 0, 0], [0, 140, 255]]
    """
    pred = np.asarray(pred, dtype=bool)
    truth = np.asarray(truth, dtype=bool)
    if pred.ndim != 2 or pred.shape != truth.shape:
        raise ValueError(f"expected two 2-D masks of one shape, got {pred.shape} and {truth.shape}")
    if image is None:
        out = np.zeros((*pred.shape, 3), dtype=np.uint8)
    else:
        rgb = to_display_rgb(image)
        if rgb.shape[:2] != pred.shape:
            raise ValueError(f"image shape {rgb.shape[:2]} differs from mask shape {pred.shape}")
        out = (rgb.astype(np.float32) * BACKGROUND_DIM).astype(np.uint8)
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != pred.shape:
            raise ValueError(f"valid-pixel mask shape {valid.shape} differs from mask shape {pred.shape}")
        out[~valid] = NODATA_COLOUR
        pred = pred & valid
        truth = truth & valid
    out[pred & truth] = TP_COLOUR
    out[pred & ~truth] = FP_COLOUR
    out[~pred & truth] = FN_COLOUR
    return out


def write_error_map(path: Path | str, rgb: np.ndarray, *, overwrite: bool = False) -> Path:
    """Write an ``(H, W, 3)`` uint8 picture as PNG under a temporary name, then rename it to ``path``."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 picture, got {rgb.shape} {rgb.dtype}")
    path = Path(path)
    with atomic_output(path, overwrite=overwrite) as temp, warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(temp, "w", driver="PNG", width=rgb.shape[1], height=rgb.shape[0], count=3,
                           dtype="uint8") as dst:
            dst.write(np.transpose(rgb, (2, 0, 1)))
    return path
