"""Synthetic rasters for the predict tests, generated on the fly (never committed)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning

UTM = "EPSG:32618"
TRANSFORM = Affine(2.0, 0.0, 500000.0, 0.0, -2.0, 4000000.0)


def write_raster(path: Path, data: np.ndarray, *, crs: str | None = UTM, transform=TRANSFORM,
                 driver: str = "GTiff", **profile) -> Path:
    """Write ``(C, H, W)`` data; ``crs=None`` writes no georeferencing."""
    meta = {"driver": driver, "count": data.shape[0], "height": data.shape[1], "width": data.shape[2],
            "dtype": data.dtype.name, **profile}
    if crs is not None:
        meta.update(crs=crs, transform=transform)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **meta) as dataset:
            dataset.write(data)
    return path


def random_rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    """``(3, H, W)`` uint8 noise with no zero values (so nodata 0 never appears by chance)."""
    return np.random.default_rng(seed).integers(1, 256, (3, height, width), dtype=np.uint8)


def read_band(path: Path) -> tuple[np.ndarray, dict]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as dataset:
            return dataset.read(1), dict(dataset.profile, overviews=dataset.overviews(1),
                                         transform=dataset.transform, crs=dataset.crs)
