"""Writing small plain images (PNG/JPEG/GeoTIFF without georeferencing) for the training tests."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import rasterio


def write_image(path: Path, array: np.ndarray, driver: str) -> None:
    """Write a (bands, H, W) or (H, W) array; the not-georeferenced warning is expected and silenced."""
    bands = array if array.ndim == 3 else array[None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(path, "w", driver=driver, width=bands.shape[2], height=bands.shape[1],
                           count=bands.shape[0], dtype=bands.dtype) as dst:
            dst.write(bands)
