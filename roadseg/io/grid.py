"""Where a raster's pixels lie: one grid type for every reader and writer, and the ways two grids can differ.

Three questions are asked of two grids, and each caller words the answer for its own users:

- :func:`grid_mismatch`: can the rasters be compared pixel for pixel (scoring a prediction)? Same size,
  and, when both are georeferenced, the same CRS and transform.
- :func:`ground_mismatch`: does the second cover the same ground as the first, at any resolution
  (blending a mask into a preview)? Corners within half a pixel; sizes when either is a plain image.
- :func:`lattice_mismatch`: do their pixels lie on one lattice, whatever their extents (mosaicking
  tiles)? Same CRS and pixel size, no rotation, corners a whole number of pixels apart.

Each returns the kind of difference (a :data:`Mismatch`), or None when there is none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from affine import Affine
from rasterio.crs import CRS

from roadseg.vector.geo import is_georeferenced

Mismatch = Literal["size", "crs", "transform", "ground", "res", "lattice"]
TRANSFORM_TOLERANCE = 1e-9  # CRS units, for pixel-for-pixel comparison
GROUND_TOLERANCE = 0.5  # of a pixel, for rasters over the same ground
LATTICE_TOLERANCE = 1e-3  # of a pixel, for tiles on one lattice


@dataclass(frozen=True)
class RasterGrid:
    """Size and, when georeferenced, CRS and transform of a raster; both None for plain images.

    ``source`` names the file the grid was read from, for messages; it takes no part in comparisons.
    """

    height: int
    width: int
    crs: CRS | None = None
    transform: Affine | None = None
    source: str | None = field(default=None, compare=False)

    @classmethod
    def from_dataset(cls, dataset) -> RasterGrid:
        """The grid of an open rasterio dataset."""
        return cls(dataset.height, dataset.width, dataset.crs, dataset.transform, dataset.name)

    @property
    def georeferenced(self) -> bool:
        """Both a CRS and a transform that is not the identity (PNG and JPEG tiles have neither)."""
        return is_georeferenced(self.transform, self.crs)

    @property
    def res(self) -> tuple[float, float]:
        """Pixel width and height in CRS units (of an unrotated grid)."""
        return abs(self.transform.a), abs(self.transform.e)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` of an unrotated grid."""
        left, top = self.transform.c, self.transform.f
        return left, top + self.transform.e * self.height, left + self.transform.a * self.width, top

    def corners(self) -> np.ndarray:
        """CRS coordinates of the four outer corners, (4, 2): top left, top right, bottom left, bottom right."""
        cols = np.array([0, self.width, 0, self.width], float)
        rows = np.array([0, 0, self.height, self.height], float)
        t = self.transform
        return np.column_stack([t.a * cols + t.b * rows + t.c, t.d * cols + t.e * rows + t.f])

    def footprint(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` around the four corners: :attr:`bounds`, rotated grids included."""
        corners = self.corners()
        (left, bottom), (right, top) = corners.min(axis=0), corners.max(axis=0)
        return float(left), float(bottom), float(right), float(top)


def grid_mismatch(a: RasterGrid, b: RasterGrid) -> Mismatch | None:
    """``size``, ``crs`` or ``transform`` when ``a`` and ``b`` cannot be compared pixel for pixel."""
    if (a.height, a.width) != (b.height, b.width):
        return "size"
    if a.georeferenced and b.georeferenced:
        if a.crs != b.crs:
            return "crs"
        if not np.allclose(tuple(a.transform)[:6], tuple(b.transform)[:6], rtol=0, atol=TRANSFORM_TOLERANCE):
            return "transform"
    return None


def corner_offset(a: RasterGrid, b: RasterGrid) -> float:
    """The largest distance, in CRS units along x or y, between corresponding corners of ``a`` and ``b``."""
    return float(np.abs(b.corners() - a.corners()).max())


def ground_mismatch(a: RasterGrid, b: RasterGrid) -> Mismatch | None:
    """``crs`` or ``ground`` when ``b`` does not cover ``a``'s ground to within half of ``a``'s pixel;
    ``size`` when either is not georeferenced and their sizes differ."""
    if a.georeferenced and b.georeferenced:
        if a.crs != b.crs:
            return "crs"
        t = a.transform
        tolerance = GROUND_TOLERANCE * max(math.hypot(t.a, t.d), math.hypot(t.b, t.e))
        return "ground" if corner_offset(a, b) > tolerance else None
    if (a.height, a.width) != (b.height, b.width):
        return "size"
    return None


def lattice_mismatch(a: RasterGrid, b: RasterGrid) -> Mismatch | None:
    """``crs``, ``res`` or ``lattice`` when ``b``'s pixels are not on ``a``'s lattice (shifted or rotated)."""
    if a.crs != b.crs:
        return "crs"
    if not np.allclose(b.res, a.res, rtol=1e-9, atol=0):
        return "res"
    if a.transform.b or a.transform.d or b.transform.b or b.transform.d:
        return "lattice"
    dx = (b.transform.c - a.transform.c) / a.res[0]
    dy = (b.transform.f - a.transform.f) / a.res[1]
    return None if abs(dx - round(dx)) < LATTICE_TOLERANCE and abs(dy - round(dy)) < LATTICE_TOLERANCE else "lattice"
