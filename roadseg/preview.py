"""Quick-look PNGs: the image as predict sees it, the mask in a translucent colour, road lines on top.

Two halves kept apart:

* compositing on numpy arrays (:func:`preview_shape`, :func:`shade_nodata`, :func:`overlay_mask`,
  :func:`polyline_pixels`, :func:`draw_polylines`, :func:`compose_preview`): pure functions that never
  modify their input;
* file I/O (:func:`render_preview`): the image is read decimated to the preview size (a
  nearest-neighbour read of ``out_shape``, never the full-resolution array) and scaled to 0-255 exactly
  as ``predict`` scales it (:class:`~roadseg.io.raster_read.RasterSource`'s bands and scaling); the mask
  is read onto the same preview grid; road lines from a GeoJSON file are reprojected to the image's
  CRS and drawn in preview pixels.

Coordinates of polylines are continuous pixel coordinates ``(x, y)``: pixel ``(row r, col c)`` covers
``[c, c + 1) x [r, r + 1)``, as in a raster's affine transform and in the pixel-coordinate GeoJSON
``roadseg vectorize`` writes for rasters without georeferencing (pixel centres at ``+0.5``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from skimage.draw import line as draw_line

from roadseg.errors import BadInputError, BadParameterError
from roadseg.inference.gsd import GsdOptions, GsdPlan, plan_gsd
from roadseg.io.atomic import atomic_output, check_apart
from roadseg.io.grid import RasterGrid, corner_offset, ground_mismatch
from roadseg.io.inputs import as_input
from roadseg.io.masks import MaskFormat, decode_mask, file_mask_format, is_predict_mask
from roadseg.io.raster_open import CONTENT_TAG, VERSION_TAG, open_raster, probability_scale, reading
from roadseg.io.raster_read import ImageScaling, RasterSource, io_env
from roadseg.io.raster_write import write_tagged_png
from roadseg.vector.geo import geojson_member_crs, reproject_xy

DEFAULT_MAX_SIZE = 2048
"""Longest side of a preview in pixels (images already smaller keep their size)."""

MASK_COLOUR = (255, 0, 255)  # magenta
MASK_ALPHA = 0.45
ROAD_COLOUR = (255, 255, 0)  # yellow: stands out on magenta and on grey imagery
ROAD_WIDTH = 2
NODATA_COLOUR = (40, 40, 40)  # dark grey
PROBABILITY_THRESHOLD = 0.5


# -- compositing (pure numpy) -------------------------------------------------------------------------

def preview_shape(height: int, width: int, max_size: int = DEFAULT_MAX_SIZE) -> tuple[int, int]:
    """``(h, w)`` of a preview: the same aspect, the longest side at most ``max_size``, never enlarged.

    >>> preview_shape(1300, 650, 100)
    (100, 50)
    >>> preview_shape(30, 40, 2048)
    (30, 40)
    """
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if max_size < 1:
        raise BadParameterError("max_size", f"must be >= 1, got {max_size}")
    factor = min(1.0, max_size / max(height, width))
    return (min(height, max(1, round(height * factor))), min(width, max(1, round(width * factor))))


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got shape {rgb.shape} dtype {rgb.dtype}")
    return rgb


def _check_plane(plane: np.ndarray, rgb: np.ndarray, name: str) -> np.ndarray:
    plane = np.asarray(plane, dtype=bool)
    if plane.shape != rgb.shape[:2]:
        raise ValueError(f"{name} has shape {plane.shape}, the image {rgb.shape[:2]}")
    return plane


def shade_nodata(rgb: np.ndarray, valid: np.ndarray, colour: Sequence[int] = NODATA_COLOUR) -> np.ndarray:
    """A copy of ``(H, W, 3)`` uint8 ``rgb`` with the pixels where ``valid`` is False set to ``colour``."""
    rgb = _check_rgb(rgb)
    valid = _check_plane(valid, rgb, "valid")
    out = rgb.copy()
    out[~valid] = np.asarray(colour, np.uint8)
    return out


def overlay_mask(rgb: np.ndarray, mask: np.ndarray, colour: Sequence[int] = MASK_COLOUR,
                 alpha: float = MASK_ALPHA) -> np.ndarray:
    """Blend ``colour`` over the pixels of ``mask``: ``round((1 - alpha) * rgb + alpha * colour)``.

    Parameters
    ----------
    rgb : (H, W, 3) uint8 array
    mask : (H, W) bool array
    colour : three ints in 0-255
    alpha : float in [0, 1]; 0 leaves the image, 1 paints the colour.

    Returns
    -------
    (H, W, 3) uint8 array, a new array (``rgb`` is not modified).

    >>> import numpy as np
    >>> overlay_mask(np.zeros((1, 2, 3), np.uint8), np.array([[True, False]]), (200, 0, 100), 0.5)[0]
    array([[100,   0,  50],
           [  0,   0,   0]], dtype=uint8)
    """
    rgb = _check_rgb(rgb)
    mask = _check_plane(mask, rgb, "mask")
    if not 0.0 <= alpha <= 1.0:
        raise BadParameterError("alpha", f"must be in [0, 1], got {alpha}")
    out = rgb.copy()
    blended = (1.0 - alpha) * rgb[mask].astype(np.float64) + alpha * np.asarray(colour, np.float64)
    out[mask] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return out


def _clip_segment(x0: float, y0: float, x1: float, y1: float, width: int, height: int
                  ) -> tuple[float, float, float, float] | None:
    """Liang-Barsky: the part of a segment inside ``[0, width] x [0, height]``, or None."""
    dx, dy = x1 - x0, y1 - y0
    t0, t1 = 0.0, 1.0
    for p, q in ((-dx, x0), (dx, width - x0), (-dy, y0), (dy, height - y0)):
        if p == 0:
            if q < 0:
                return None
            continue
        t = q / p
        if p < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 > t1:
            return None
    return x0 + t0 * dx, y0 + t0 * dy, x0 + t1 * dx, y0 + t1 * dy


def _segments(polyline: np.ndarray) -> Iterable[tuple[float, float, float, float]]:
    """Consecutive point pairs with finite coordinates (a single point is a segment of length 0)."""
    points = np.asarray(polyline, dtype=np.float64).reshape(-1, 2)
    if len(points) == 1:
        points = np.vstack([points, points])
    for (x0, y0), (x1, y1) in zip(points[:-1], points[1:]):
        if np.isfinite((x0, y0, x1, y1)).all():
            yield float(x0), float(y0), float(x1), float(y1)


def polyline_inside(polyline: np.ndarray, shape: tuple[int, int]) -> bool:
    """Whether any part of a polyline (``(N, 2)`` x, y) lies on an image of ``shape`` ``(H, W)``."""
    height, width = shape
    return any(_clip_segment(*segment, width, height) is not None for segment in _segments(polyline))


def polyline_pixels(shape: tuple[int, int], polylines: Iterable[np.ndarray], *, width: int = ROAD_WIDTH
                    ) -> np.ndarray:
    """``(H, W)`` bool: the pixels that polylines of ``(N, 2)`` ``(x, y)`` pixel coordinates cross.

    Each segment is clipped to the image and rasterised (Bresenham) through the pixels holding its
    ends, then thickened to ``width`` pixels (a ``width`` x ``width`` square around each pixel).
    Non-finite points break a line.

    >>> polyline_pixels((3, 4), [np.array([[0.5, 1.5], [3.5, 1.5]])], width=1).astype(int)
    array([[0, 0, 0, 0],
           [1, 1, 1, 1],
           [0, 0, 0, 0]])
    """
    height, width_px = shape
    if width < 1:
        raise BadParameterError("width", f"must be >= 1 pixel, got {width}")
    rows_list, cols_list = [], []
    for polyline in polylines:
        for segment in _segments(polyline):
            clipped = _clip_segment(*segment, width_px, height)
            if clipped is None:
                continue
            x0, y0, x1, y1 = clipped
            c0, c1 = (min(int(math.floor(x)), width_px - 1) for x in (x0, x1))
            r0, r1 = (min(int(math.floor(y)), height - 1) for y in (y0, y1))
            rr, cc = draw_line(r0, c0, r1, c1)
            rows_list.append(rr)
            cols_list.append(cc)
    out = np.zeros(shape, dtype=bool)
    if not rows_list:
        return out
    rows, cols = np.concatenate(rows_list), np.concatenate(cols_list)
    offsets = range(-((width - 1) // 2), width // 2 + 1)
    for dr in offsets:
        for dc in offsets:
            r, c = rows + dr, cols + dc
            keep = (r >= 0) & (r < height) & (c >= 0) & (c < width_px)
            out[r[keep], c[keep]] = True
    return out


def draw_polylines(rgb: np.ndarray, polylines: Iterable[np.ndarray], *, colour: Sequence[int] = ROAD_COLOUR,
                   width: int = ROAD_WIDTH) -> np.ndarray:
    """A copy of ``(H, W, 3)`` uint8 ``rgb`` with the polylines (see :func:`polyline_pixels`) in ``colour``."""
    rgb = _check_rgb(rgb)
    out = rgb.copy()
    out[polyline_pixels(rgb.shape[:2], polylines, width=width)] = np.asarray(colour, np.uint8)
    return out


@dataclass(frozen=True)
class PreviewStyle:
    """Colours (RGB 0-255) and widths of a preview; the defaults read on imagery and on each other."""

    mask_colour: tuple[int, int, int] = MASK_COLOUR
    alpha: float = MASK_ALPHA
    road_colour: tuple[int, int, int] = ROAD_COLOUR
    road_width: int = ROAD_WIDTH
    nodata_colour: tuple[int, int, int] = NODATA_COLOUR


def compose_preview(rgb: np.ndarray, *, valid: np.ndarray | None = None, mask: np.ndarray | None = None,
                    polylines: Iterable[np.ndarray] = (), style: PreviewStyle = PreviewStyle()) -> np.ndarray:
    """Nodata shaded, then the mask blended in, then the road lines on top; a new ``(H, W, 3)`` uint8."""
    out = _check_rgb(rgb)
    if valid is not None:
        out = shade_nodata(out, valid, style.nodata_colour)
    if mask is not None:
        out = overlay_mask(out, mask, style.mask_colour, style.alpha)
    return draw_polylines(out, polylines, colour=style.road_colour, width=style.road_width)


# -- GeoJSON lines --------------------------------------------------------------------------------------

def geojson_polylines(data: Mapping[str, Any]) -> list[np.ndarray]:
    """The ``(N, 2)`` coordinate arrays of every line and polygon ring of a GeoJSON object.

    Accepts a FeatureCollection, a Feature or a bare geometry; points are skipped. Raises ValueError
    for malformed coordinates.
    """
    from roadseg.io.geojson import DRAWN_TYPES, geojson_lines  # networkx and shapely load only when needed

    return geojson_lines(data, DRAWN_TYPES).lines


def geojson_crs(data: Mapping[str, Any]) -> CRS | None:
    """The CRS of a GeoJSON's coordinates: None when vectorize marked them as pixels, else its (pre-RFC
    7946) ``crs`` member, else longitude/latitude WGS 84. Raises ValueError for an unknown CRS name."""
    if data.get("coordinates") == "pixel":
        return None
    return geojson_member_crs(data)


# -- file I/O -------------------------------------------------------------------------------------------

@dataclass
class PreviewResult:
    """What :func:`render_preview` wrote."""

    output: Path
    image: Path
    mask: Path | None
    roads: Path | None
    height: int  # of the preview
    width: int
    source_height: int
    source_width: int
    mask_pixels: int = 0  # road pixels of the mask on the preview
    lines: int = 0  # lines and rings in the GeoJSON
    lines_drawn: int = 0  # of those, the ones that cross the image

    def summary(self) -> dict:
        """A JSON-ready dict (paths as strings)."""
        return {"output": str(self.output), "image": str(self.image),
                "mask": None if self.mask is None else str(self.mask),
                "roads": None if self.roads is None else str(self.roads),
                "height": self.height, "width": self.width, "source_height": self.source_height,
                "source_width": self.source_width, "mask_pixels": self.mask_pixels, "lines": self.lines,
                "lines_drawn": self.lines_drawn}


def _read_image(path: Path, max_size: int, scaling: ImageScaling | None
                ) -> tuple[np.ndarray, np.ndarray, RasterGrid]:
    """The image decimated to the preview size, scaled to 0-255 as predict scales it, and its validity.

    Values beyond float32 (a float64 nodata of 1e300, say) overflow on the way and are clipped to 0-255,
    as the scaling means to: no warning.
    """
    with RasterSource(path, scaling) as source, np.errstate(over="ignore"):
        plain = source.is_plain_image
        grid = RasterGrid(source.height, source.width, None if plain else source.crs,
                          None if plain else source.transform, str(path))
        rgb, valid = source.read_decimated(preview_shape(grid.height, grid.width, max_size))
    return np.rint(rgb).astype(np.uint8), valid, grid


def _grid_mismatch(grid: RasterGrid, mask: RasterGrid) -> str | None:
    """Why a mask raster does not cover the image's ground (it may be at another resolution), or None."""
    kind = ground_mismatch(grid, mask)
    if kind == "crs":
        return f"its CRS {mask.crs} is not the image's {grid.crs}"
    if kind == "ground":
        return f"it covers other ground (corners up to {corner_offset(grid, mask):.6g} CRS units from the image's)"
    if kind == "size":
        return f"it is {mask.width}x{mask.height}, the image {grid.width}x{grid.height}"
    return None


def _read_mask(path: Path, grid: RasterGrid, shape: tuple[int, int], mask_format: MaskFormat) -> np.ndarray:
    """Road pixels of a mask (or probability raster at 0.5) on the preview grid (nearest)."""
    with open_raster(path, "give a mask or probability map on the image's grid") as dataset:
        why = _grid_mismatch(grid, RasterGrid.from_dataset(dataset))
        if why is not None:
            raise BadInputError(f"{path}: not on the grid of {grid.source} ({why}); give the mask predicted "
                                "from this image")
        with reading(path):
            values = dataset.read(1, out_shape=shape, resampling=Resampling.nearest)
        nodata, scale = dataset.nodata, probability_scale(dataset)
        mask_format = file_mask_format(is_predict_mask(dataset), mask_format)
    # probabilities (floats, predict's tagged uint8 maps): road where value * scale >= 0.5
    threshold = None if scale is None else PROBABILITY_THRESHOLD
    try:
        road, _valid = decode_mask(values, nodata, mask_format=mask_format, threshold=threshold, scale=scale or 1.0,
                                   source=str(path))
    except ValueError as error:
        raise BadInputError(f"{path}: {error}") from error
    return road


def _read_roads(path: Path, grid: RasterGrid, shape: tuple[int, int]) -> list[np.ndarray]:
    """Lines of a GeoJSON file in preview pixel coordinates."""
    from roadseg.metrics.apls import load_geojson

    data = load_geojson(path)
    try:
        polylines = geojson_polylines(data)
        crs = geojson_crs(data)
    except ValueError as error:
        raise BadInputError(f"{path}: {error}; give LineString features (RFC 7946 GeoJSON)") from error
    if not polylines:
        return []
    sizes = [len(line) for line in polylines]
    points = np.concatenate(polylines)
    xs, ys = points[:, 0], points[:, 1]
    if crs is not None and grid.georeferenced:
        xs, ys = reproject_xy(xs, ys, crs, grid.crs)
        inverse = ~grid.transform
        xs, ys = (inverse.a * xs + inverse.b * ys + inverse.c, inverse.d * xs + inverse.e * ys + inverse.f)
    # else: pixel coordinates of the image (vectorize's output for rasters without georeferencing)
    height, width = shape
    pixels = np.column_stack([xs * (width / grid.width), ys * (height / grid.height)])
    return np.split(pixels, np.cumsum(sizes)[:-1])


def render_preview(image: Path | str, out_path: Path | str, *, mask: Path | str | None = None,
                   roads: Path | str | None = None, max_size: int = DEFAULT_MAX_SIZE,
                   scaling: ImageScaling | None = None, mask_format: MaskFormat = "auto",
                   overwrite: bool = False) -> PreviewResult:
    """Write a quick-look PNG of ``image`` with ``mask`` blended in and the lines of ``roads`` on top.

    Parameters
    ----------
    image : path
        Any raster predict reads; scaled to 0-255 the way predict scales it (``scaling``, as for
        :func:`roadseg.inference.predict.predict_file`) and decimated so that its longest side is at
        most ``max_size`` pixels. Nodata pixels are dark grey.
    mask : path, optional
        A road mask on the image's grid (same size, or same ground if both are georeferenced): predict's
        1/0/255 GeoTIFFs, 0/255 PNGs (see :mod:`roadseg.io.masks`), or a probability raster (road at
        >= 0.5). Shown in translucent magenta.
    roads : path, optional
        GeoJSON lines (``roadseg vectorize`` output), in longitude/latitude or the CRS its ``crs`` member
        names, or in pixels for images without georeferencing. Drawn in yellow.
    out_path : path
        A ``.png`` file, written under a temporary name and renamed; an existing file raises
        :class:`~roadseg.errors.OutputExistsError` unless ``overwrite``.

    Raises :class:`~roadseg.errors.BadInputError` naming the file for unreadable inputs, a mask on
    another grid, or an ``out_path`` that is one of the inputs; warns when no line of ``roads`` crosses
    the image (a wrong CRS?).
    """
    image, out_path = as_input(image), Path(out_path)  # the image may be a URL or a STAC item
    if out_path.suffix.lower() != ".png":
        raise BadParameterError("out_path", f"is a PNG file: name it *.png, got {out_path.name}")
    check_apart([out_path], [path for path in (image, mask, roads) if isinstance(path, (str, Path))])
    if max_size < 1:
        raise BadParameterError("max_size", f"must be >= 1, got {max_size}")
    with atomic_output(out_path, overwrite) as temp, io_env():
        rgb, valid, grid = _read_image(image, max_size, scaling)
        shape = rgb.shape[:2]
        result = PreviewResult(out_path, image, None if mask is None else Path(mask),
                               None if roads is None else Path(roads), shape[0], shape[1], grid.height,
                               grid.width)
        road = None if mask is None else _read_mask(Path(mask), grid, shape, mask_format)
        polylines = [] if roads is None else _read_roads(Path(roads), grid, shape)
        result.mask_pixels = 0 if road is None else int(np.count_nonzero(road))
        result.lines = len(polylines)
        result.lines_drawn = sum(polyline_inside(line, shape) for line in polylines)
        if polylines and not result.lines_drawn:
            warnings.warn(f"{roads}: none of its {len(polylines)} line(s) crosses {image}; "
                          "are they in another area or CRS?", stacklevel=2)
        out = compose_preview(rgb, valid=valid, mask=road, polylines=polylines)
        _write_png(temp, out, out_path)
    return result


def network_view(image: Path | str, gsd: GsdOptions | None = None, scaling: ImageScaling | None = None, *,
                 weights_gsd: float | None = None) -> GsdPlan:
    """At which GSD predict would show ``image`` to the network (:func:`roadseg.inference.gsd.plan_gsd`):
    with ``weights_gsd`` None, that of the published weights (``auto`` means 0.5 m), as a preview has no
    model. A preview drawn no larger than ``plan.shape`` shows the image as the network sees it."""
    from roadseg.model.registry import DEFAULT_WEIGHTS, REGISTRY

    weights_gsd = REGISTRY[DEFAULT_WEIGHTS].gsd if weights_gsd is None else weights_gsd
    with io_env(), RasterSource(image, scaling) as source:
        return plan_gsd(gsd or GsdOptions(), source.gsd, weights_gsd, (source.height, source.width))


def _write_png(path: Path, rgb: np.ndarray, name: Path) -> None:
    """An RGB PNG at ``path`` with no georeferencing (so GDAL writes no .aux.xml sidecar), tagged in a PNG
    text chunk as roadseg's, so predict knows its own preview from a file it must not replace."""
    from roadseg import __version__

    try:
        write_tagged_png(path, np.transpose(rgb, (2, 0, 1)), {VERSION_TAG: __version__, CONTENT_TAG: "preview"})
    except RasterioError as error:
        raise BadInputError(f"{name}: writing failed ({error}); check free space and permissions") from error
