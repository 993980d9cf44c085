"""Pixel positions to map coordinates, reprojection, and lengths on the ground in metres.

Graph cleaning works in pixels but its parameters are metres, and a pixel of an EPSG:4326 raster is
not square on the ground (a degree of longitude shrinks with latitude). :class:`PixelGeometry` holds the
ground size of one pixel step along rows and columns, measured at the raster's centre, so every metre
parameter can be turned into pixels. Output lengths are measured on the WGS 84 ellipsoid from lon/lat
coordinates, whatever the raster's CRS, so ``length_m`` is a true ground length (not degrees, and not
Web Mercator metres, which grow with latitude).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.warp import transform as warp_transform

WGS84_A = 6378137.0
WGS84_F = 1 / 298.257223563
WGS84_E2 = WGS84_F * (2 - WGS84_F)
LONLAT = CRS.from_epsg(4326)


def geojson_member_crs(data: Mapping[str, Any]) -> CRS:
    """The CRS a GeoJSON's coordinates are in: its (pre-RFC 7946) ``crs`` member, else longitude/latitude
    WGS 84 (``OGC:CRS84``, longitude first). Raises ValueError for a name PROJ does not know."""
    member = data.get("crs")
    name = member.get("properties", {}).get("name") if isinstance(member, Mapping) else None
    try:
        return CRS.from_user_input(str(name) if name else "OGC:CRS84")
    except CRSError as error:
        raise ValueError(f"unknown CRS {name!r} in its 'crs' member") from error


def is_georeferenced(transform: Affine | None, crs: CRS | None) -> bool:
    """True when a raster has both a CRS and a non-identity transform (PNG/JPEG masks have neither)."""
    return crs is not None and transform is not None and not transform.is_identity


def pixel_centres_to_crs(rows: np.ndarray, cols: np.ndarray, transform: Affine) -> tuple[np.ndarray, np.ndarray]:
    """Map (fractional) pixel indices to CRS ``x, y`` of the pixel centres through the affine transform.

    Row ``r``, column ``c`` covers ``[c, c+1) x [r, r+1)`` in pixel space, so its centre is ``(c+0.5, r+0.5)``.
    """
    cols = np.asarray(cols, dtype=np.float64) + 0.5
    rows = np.asarray(rows, dtype=np.float64) + 0.5
    a, b, c, d, e, f = transform.a, transform.b, transform.c, transform.d, transform.e, transform.f
    return a * cols + b * rows + c, d * cols + e * rows + f


def reproject_xy(xs: np.ndarray, ys: np.ndarray, src_crs: CRS, dst_crs: CRS) -> tuple[np.ndarray, np.ndarray]:
    """Reproject coordinate arrays (x = longitude first for geographic CRSs, as rasterio and RFC 7946 do)."""
    xs = np.asarray(xs, dtype=np.float64)
    ys = np.asarray(ys, dtype=np.float64)
    if xs.size == 0 or CRS.from_user_input(src_crs) == CRS.from_user_input(dst_crs):
        return xs.copy(), ys.copy()
    out_x, out_y = warp_transform(src_crs, dst_crs, xs.ravel(), ys.ravel())
    return np.asarray(out_x).reshape(xs.shape), np.asarray(out_y).reshape(ys.shape)


def metres_per_degree(latitude_deg: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Ground metres per degree of longitude and of latitude on WGS 84 at the given latitude(s).

    Uses the ellipsoid's radii of curvature (prime vertical ``N`` for longitude, meridional ``M`` for
    latitude): exact for infinitesimal steps, and within millimetres over the few-metre segments of a
    road line.
    """
    phi = np.radians(np.asarray(latitude_deg, dtype=np.float64))
    sin2 = np.sin(phi) ** 2
    n = WGS84_A / np.sqrt(1 - WGS84_E2 * sin2)
    m = WGS84_A * (1 - WGS84_E2) / (1 - WGS84_E2 * sin2) ** 1.5
    return n * np.cos(phi) * math.pi / 180, m * math.pi / 180


def lonlat_segment_lengths(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Ground length in metres of each segment of a lon/lat polyline (``len(lon) - 1`` values)."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    if lon.size < 2:
        return np.zeros(0)
    mid_lat = (lat[1:] + lat[:-1]) / 2
    per_lon, per_lat = metres_per_degree(mid_lat)
    return np.hypot(np.diff(lon) * per_lon, np.diff(lat) * per_lat)


def ground_length(xs: np.ndarray, ys: np.ndarray, crs: CRS) -> float:
    """Length in metres on the ground of a polyline given in ``crs`` (reprojected to lon/lat first)."""
    lon, lat = reproject_xy(xs, ys, crs, LONLAT)
    return float(lonlat_segment_lengths(lon, lat).sum())


@dataclass(frozen=True)
class PixelGeometry:
    """Ground size in metres of a one-pixel step along a column (``col_m``) and along a row (``row_m``).

    ``georeferenced`` is False for rasters without a CRS; then both sizes are the user's ``pixel_size``
    (metres) or 1.0, meaning that metre parameters are read as pixels.
    """

    col_m: float
    row_m: float
    georeferenced: bool
    metric: bool = True

    @property
    def mean_m(self) -> float:
        """Geometric mean pixel size, for converting areas and isotropic distances."""
        return math.sqrt(self.col_m * self.row_m)

    @property
    def area_m2(self) -> float:
        return self.col_m * self.row_m

    def metres_to_pixels(self, metres: float) -> float:
        """A length in metres as a number of (mean-size) pixels."""
        return metres / self.mean_m

    def square_metres_to_pixels(self, square_metres: float) -> float:
        return square_metres / self.area_m2

    def path_lengths(self, rc: np.ndarray) -> np.ndarray:
        """Ground length in metres of each segment of a ``(K, 2)`` row/col path."""
        steps = np.diff(np.asarray(rc, dtype=np.float64), axis=0)
        return np.hypot(steps[:, 0] * self.row_m, steps[:, 1] * self.col_m)

    def path_length(self, rc: np.ndarray) -> float:
        return float(self.path_lengths(rc).sum()) if len(rc) > 1 else 0.0


def pixel_geometry(transform: Affine | None, crs: CRS | None, shape: tuple[int, int],
                   pixel_size: float | None = None) -> PixelGeometry:
    """Measure the ground size of a pixel at the raster's centre.

    For georeferenced rasters the centre pixel and its right and lower neighbours are taken to lon/lat
    and the two steps measured on the ellipsoid, which works for geographic and projected CRSs alike
    (and gives the true ground size for Web Mercator). ``pixel_size`` (metres) is only used for rasters
    without georeferencing; without it, metre parameters are taken as pixels.
    """
    if not is_georeferenced(transform, crs):
        size = float(pixel_size) if pixel_size else 1.0
        return PixelGeometry(size, size, georeferenced=False, metric=pixel_size is not None)
    height, width = shape
    r0, c0 = (height - 1) / 2, (width - 1) / 2
    rows = np.array([r0, r0, r0 + 1])
    cols = np.array([c0, c0 + 1, c0])
    xs, ys = pixel_centres_to_crs(rows, cols, transform)
    lon, lat = reproject_xy(xs, ys, crs, LONLAT)
    col_m = float(lonlat_segment_lengths(lon[:2], lat[:2])[0])
    row_m = float(lonlat_segment_lengths(lon[[0, 2]], lat[[0, 2]])[0])
    if not (col_m > 0 and row_m > 0 and math.isfinite(col_m) and math.isfinite(row_m)):
        raise ValueError(f"cannot measure the pixel size of a raster in {crs} with transform {tuple(transform)}")
    return PixelGeometry(col_m, row_m, georeferenced=True)


def parse_crs(text: str) -> CRS:
    """Parse ``EPSG:XXXX`` (or anything rasterio accepts) into a CRS; raise ValueError with the form."""
    try:
        return CRS.from_user_input(text)
    except ValueError as error:  # CRSError, or a plain ValueError for a malformed EPSG code
        raise ValueError(f"not a CRS: {text!r} (use e.g. EPSG:4326 or EPSG:32611)") from error
