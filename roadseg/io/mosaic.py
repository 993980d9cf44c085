"""Mosaic per-tile masks or probability rasters into one raster: ``roadseg stitch``.

Rules where tiles overlap: for masks road wins (a pixel is road if any tile says so) and nodata loses to
data; for probabilities the mean of the tiles that have data. Masks are written in roadseg's predict
encoding (1 road, 0 background, 255 nodata); probabilities as float32 with NaN as nodata.

The mosaic is written block by block: each output block reads only the matching windows of the tiles
that cover it, so memory does not grow with the mosaic. Tiles must share a CRS and pixel size and lie on
one pixel grid; otherwise give a target ``crs`` and ``res`` and every tile is reprojected (nearest
neighbour for masks, bilinear for probabilities). Probability maps saved as uint8 by predict are
recognised by their tag and read as probabilities.

A ``vrt`` output is a GDAL VRT that applies the same rules when read, without copying any pixels: the
``max`` pixel function over the tiles for masks; for probabilities ``div`` of two nested VRTs, the
``sum`` of the tiles' probabilities and the ``sum`` of their valid-pixel indicators. Only GDAL's
built-in pixel functions are used, so QGIS and GDAL open it without Python pixel functions. A VRT
source has a single nodata value, so a float tile whose declared nodata is a number (say -1) and
which also holds NaN pixels cannot be expressed: its NaN pixels come out NaN in the VRT where the
GeoTIFF takes the other tiles' mean. Float tiles with NaN or no declared nodata are exact.

The output is never one of the tiles: a previous mosaic of roadseg's own (tagged ``ROADSEG_MOSAIC``)
that a re-run into the tiles' folder finds among them is left out; any other tile at the output's path
is refused, as the mosaic would replace it (:func:`without_output`). The same rule keeps every
command's outputs off its inputs (:func:`roadseg.io.atomic.check_apart`).

Vectorize mosaics the tiles of one area the same way (:func:`group_tiles`): tiles whose footprints touch
or overlap must be on one lattice, in one CRS, and of one kind, with the same messages as here.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio._err import CPLE_BaseError  # GDAL errors rasterio passes on unwrapped (e.g. from transform_bounds)
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import Window

from roadseg.errors import BadInputError, BadParameterError
from roadseg.io.atomic import atomic_output, same_file
from roadseg.io.grid import Mismatch, RasterGrid, lattice_mismatch
from roadseg.io.masks import (
    PREDICT_NODATA,
    MaskEncoding,
    MaskFormat,
    MaskRaster,
    decode_probability,
    decode_values,
    file_mask_format,
    is_predict_mask,
    mask_encoding,
    value_counts,
)
from roadseg.io.raster_open import (
    CONTENT_TAG,
    MASK,
    PROBABILITY,
    WEIGHTS_TAG,
    open_raster,
    probability_scale,
    raster_tags,
    reading,
)

BLOCK = 1024
WARP_FILL = 254  # nodata of warped masks that declare none: a value predict and 0/255 masks do not use
PREDICT_LUT = "0:0,1:1,254:1,255:255"  # 255 (nodata) stays 255, the VRT's nodata, which max ignores
BINARY_LUT = "0:0,1:1,255:1"  # any non-zero value is road
MOSAIC_TAG = "ROADSEG_MOSAIC"  # on stitch's outputs: a re-run may leave its previous mosaic out of the tiles

Offset = tuple[int, int]  # (row, col) of a tile's first pixel in the mosaic
VrtTile = tuple[str, tuple[int, int], Offset]  # (path or inline VRT, (width, height), offset) of a VRT source


@dataclass(frozen=True)
class TileInfo:
    """What stitching needs to know about one input raster, read from its header."""

    path: Path
    grid: RasterGrid
    nodata: float | None
    kind: str  # "mask" or "probability"
    count: int
    scale: float = 1.0  # stored value -> probability (1/254 for uint8 probability maps)
    floating: bool = False  # float pixels: NaN is nodata even when none is declared
    predict_mask: bool = False  # one of roadseg's predict-encoded masks: auto reads it as predict
    gdal_nodata: float | None = None  # the nodata GDAL reads it with when warping (see settle_tile)
    content: str | None = None  # its ROADSEG_CONTENT tag (mask, probability, uncertainty), None untagged


@dataclass(frozen=True)
class StitchOptions:
    """What the user asks of a mosaic: a VRT instead of a GeoTIFF, a target ``crs`` and ``res`` to
    reproject every tile to (both or neither), how mask values are read, and the output block size."""

    vrt: bool = False
    crs: str | None = None
    res: float | tuple[float, float] | None = None
    mask_format: MaskFormat = "auto"
    overwrite: bool = False
    block: int = BLOCK


@dataclass(frozen=True)
class MosaicPlan:
    """A mosaic settled before any pixel is read: the tiles, their one kind and resolved mask formats
    (None for probabilities), the output grid, and each tile's offset on it (None when the tiles are
    reprojected onto it)."""

    infos: tuple[TileInfo, ...]
    kind: str
    formats: tuple[str | None, ...]
    grid: RasterGrid
    offsets: tuple[Offset, ...] | None = None

    @property
    def warped(self) -> bool:
        return self.offsets is None


@dataclass
class StitchResult:
    """The mosaic written, for the CLI to report."""

    output: Path
    width: int
    height: int
    crs: str | None
    res: tuple[float, float]
    kind: str
    inputs: list[str]
    vrt: bool
    reprojected: bool

    def summary(self) -> dict:
        return {"output": str(self.output), "width": self.width, "height": self.height, "crs": self.crs,
                "res": list(self.res), "kind": self.kind, "inputs": self.inputs, "vrt": self.vrt,
                "reprojected": self.reprojected}


def _open(path: Path):
    return open_raster(path, "give masks or probability maps (GeoTIFF, PNG)")


def tile_info(path: str | Path) -> TileInfo:
    """Read a raster's header; raise :class:`BadInputError` naming the file when it cannot be used."""
    path = Path(path)
    with _open(path) as src:
        dtype = np.dtype(src.dtypes[0])
        if dtype.kind not in "uif":
            raise BadInputError(f"{path}: unsupported pixel type {dtype}; expected a mask or probabilities")
        scale = probability_scale(src)
        return TileInfo(path, RasterGrid.from_dataset(src), src.nodata, "mask" if scale is None else "probability",
                        src.count, scale or 1.0, dtype.kind == "f", is_predict_mask(src), src.nodata,
                        src.tags().get(CONTENT_TAG))


def _footprint_in(grid: RasterGrid, crs: CRS) -> tuple[float, float, float, float] | None:
    """``grid``'s footprint ``(left, bottom, right, top)`` in ``crs``; None where it has no place there."""
    if grid.crs == crs:
        return grid.footprint()
    try:
        box = transform_bounds(grid.crs, crs, *grid.footprint())
    except (RasterioError, CPLE_BaseError, ValueError):
        return None
    return box if all(math.isfinite(value) for value in box) else None


def _touch(a: RasterGrid, b: RasterGrid) -> bool:
    """Whether two georeferenced grids' footprints overlap or meet on the ground, to half a pixel of ``a``,
    compared in ``a``'s CRS whatever ``b``'s is."""
    other = _footprint_in(b, a.crs)
    if other is None:
        return False
    t = a.transform
    tol = 0.5 * min(math.hypot(t.a, t.d), math.hypot(t.b, t.e))
    al, ab, ar, at = a.footprint()
    bl, bb, br, bt = other
    return al <= br + tol and bl <= ar + tol and ab <= bt + tol and bb <= at + tol


def _touching(infos: Sequence[TileInfo]) -> list[list[TileInfo]]:
    """Chains of georeferenced tiles whose footprints touch or overlap; every other raster alone."""
    parent = list(range(len(infos)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(infos):
        for j in range(i + 1, len(infos)):
            if a.grid.georeferenced and infos[j].grid.georeferenced and _touch(a.grid, infos[j].grid):
                parent[find(j)] = find(i)
    groups: dict[int, list[TileInfo]] = {}
    for i, info in enumerate(infos):
        groups.setdefault(find(i), []).append(info)
    return list(groups.values())


def group_tiles(paths: Sequence[Path]) -> list[list[Path]]:
    """Split vectorize's inputs into the groups it mosaics: georeferenced tiles whose footprints touch or
    overlap (by chains), whatever their CRS.

    A group of several must make one mosaic as stitch would (one kind, one lattice), else
    :class:`BadInputError` says why in stitch's words: the same area vectorized twice would give every
    road twice. Tiles apart from all others, and rasters without georeferencing, form groups of one.
    """
    groups = _touching([tile_info(p) for p in paths])
    for group in groups:
        if len(group) > 1:
            _check_kind(group, VECTORIZE_REMEDY)
            _check_same_grid(group, VECTORIZE_REMEDY)
    return [[info.path for info in group] for group in groups]


def _union_grid(infos: Sequence[TileInfo]) -> tuple[RasterGrid, tuple[Offset, ...]]:
    """The grid of the union of tiles on one lattice, and each tile's (row, col) offset in it."""
    rx, ry = infos[0].grid.res
    left = min(i.grid.bounds[0] for i in infos)
    top = max(i.grid.bounds[3] for i in infos)
    offsets = tuple((int(round((top - i.grid.transform.f) / ry)), int(round((i.grid.transform.c - left) / rx)))
                    for i in infos)
    height = max(ro + i.grid.height for (ro, _), i in zip(offsets, infos))
    width = max(co + i.grid.width for (_, co), i in zip(offsets, infos))
    return RasterGrid(height, width, infos[0].grid.crs, Affine(rx, 0, left, 0, -ry, top)), offsets


def _require_georeferenced(infos: Sequence[TileInfo]) -> None:
    """A tile without georeferencing has no place in a mosaic."""
    for info in infos:
        if not info.grid.georeferenced:
            raise BadInputError(f"{info.path}: has no georeferencing, so its place in a mosaic is unknown")


@dataclass(frozen=True)
class Remedy:
    """How a command's user mends tiles that cannot make one mosaic: stitch reprojects them itself,
    vectorize needs them stitched first. The problem is worded once, by the checks below."""

    reproject: str
    kinds: str


STITCH_REMEDY = Remedy("give `crs` and `res` to reproject", "stitch each kind separately")
VECTORIZE_REMEDY = Remedy("stitch them onto one grid first (stitch's `crs` and `res`) and vectorize the mosaic",
                          "vectorize each kind separately")


def _lattice_message(kind: Mismatch, info: TileInfo, first: TileInfo, remedy: Remedy) -> str:
    """Why ``info`` cannot join ``first``'s mosaic without reprojection, and how to mend it."""
    if kind == "crs":
        return f"{info.path}: CRS {info.grid.crs} differs from {first.path}'s {first.grid.crs}; {remedy.reproject}"
    if kind == "res":
        return (f"{info.path}: pixel size {info.grid.res} differs from {first.path}'s {first.grid.res}; "
                f"{remedy.reproject}")
    return f"{info.path}: pixels are not on {first.path}'s grid (shifted or rotated); {remedy.reproject}"


def _check_same_grid(infos: Sequence[TileInfo], remedy: Remedy = STITCH_REMEDY) -> None:
    """Refuse, naming the first tile at fault, tiles that are not all on the first one's lattice."""
    first = infos[0]
    for info in infos:
        _require_georeferenced([info])
        kind = lattice_mismatch(first.grid, info.grid)
        if kind is not None:
            raise BadInputError(_lattice_message(kind, info, first, remedy))


def _check_kind(infos: Sequence[TileInfo], remedy: Remedy = STITCH_REMEDY) -> str:
    """The tiles' one kind; a mosaic cannot mix masks and probability maps (uint8 ones included)."""
    kinds = {i.kind for i in infos}
    if len(kinds) > 1:
        mask = next(i for i in infos if i.kind == "mask")
        probability = next(i for i in infos if i.kind == "probability")
        raise BadInputError(f"{mask.path}: a mask, but {probability.path} is a probability map; {remedy.kinds}")
    return kinds.pop()


def _file_counts(path: Path) -> dict[int, int]:
    """The distinct values of a whole file's band 1 and how often they occur, read block by block."""
    counts: dict[int, int] = {}
    with _open(path) as src, reading(path):
        for _, window in src.block_windows(1):
            for value, count in value_counts(src.read(1, window=window)).items():
                counts[value] = counts.get(value, 0) + count
    return counts


def _absent_value(counts: dict[int, int]) -> int | None:
    """A mask value the tile does not hold, for GDAL to take as its nodata: then no pixel is nodata."""
    return next((value for value in (WARP_FILL, *range(253, 1, -1)) if value not in counts), None)


def settle_tile(info: TileInfo, mask_format: MaskFormat) -> tuple[TileInfo, str | None]:
    """A tile as a mosaic reads it, and its mask format (None for probabilities).

    A mask's encoding is settled over the whole file by :func:`roadseg.io.masks.mask_encoding`, whose
    nodata rule sets aside a tag that names one of the mask's classes; GDAL, which would take the tag
    when warping, is then given a value the tile does not hold instead.
    """
    if info.kind == "probability":
        return info, None
    counts = _file_counts(info.path)
    try:
        encoding = mask_encoding(counts, info.nodata, file_mask_format(info.predict_mask, mask_format),
                                 str(info.path))
    except ValueError as error:
        raise BadInputError(f"{info.path}: {error}") from error
    if encoding.nodata is None and info.nodata is not None:
        info = replace(info, nodata=None, gdal_nodata=_absent_value(counts))
    return info, encoding.format


def _settled(infos: Sequence[TileInfo], mask_format: MaskFormat) -> tuple[tuple[TileInfo, ...], tuple[str | None, ...]]:
    """Every tile settled (:func:`settle_tile`), and their mask formats."""
    settled = [settle_tile(info, mask_format) for info in infos]
    return tuple(info for info, _ in settled), tuple(fmt for _, fmt in settled)


def _decode(values: np.ndarray, info: TileInfo, fmt: str | None) -> tuple[np.ndarray, np.ndarray]:
    """``(road or probability, valid)`` of a block of a tile's raw values (NaN-padded floats outside it)."""
    if info.kind == "probability":
        return decode_probability(values, info.nodata, info.scale)
    return decode_values(values, MaskEncoding(fmt, info.nodata))


def mosaic_masks(paths: Sequence[str | Path], *, mask_format: MaskFormat = "auto",
                 threshold: float | None = None) -> MaskRaster:
    """Mosaic aligned tiles into one in-memory :class:`MaskRaster` (road wins, nodata loses to data).

    Probability tiles need ``threshold``: overlaps are averaged first, as in :func:`stitch`, and
    the mean is thresholded, so a road the tiles agree on is not decided by one tile's edge.
    """
    plan = mask_plan(paths, mask_format=mask_format, threshold=threshold)
    road, valid, weights, probability = _mosaic_in_memory(plan, threshold)
    grid = plan.grid
    return MaskRaster(road=road, valid=valid, transform=grid.transform, crs=grid.crs,
                      source=";".join(str(i.path) for i in plan.infos), tiles=plan_tiles(plan),
                      weights=";".join(weights) or None, probability=probability)


def mask_plan(paths: Sequence[str | Path], *, mask_format: MaskFormat = "auto",
              threshold: float | None = None) -> MosaicPlan:
    """The plan :func:`mosaic_masks` reads, settled before any pixel is read, so a reader can also take
    it window by window (:func:`mosaic_window`). One raster is its own plan, georeferenced or not."""
    infos = [tile_info(p) for p in paths]
    if len(infos) > 1:
        _check_same_grid(infos)
    kind = _check_kind(infos)
    if kind == "probability" and threshold is None:
        raise BadInputError(f"{infos[0].path}: holds probabilities (a probability map?); pass `threshold`")
    grid, offsets = (infos[0].grid, ((0, 0),)) if len(infos) == 1 else _union_grid(infos)
    settled, formats = _settled(infos, mask_format)
    return MosaicPlan(settled, kind, formats, grid, offsets)


def mosaic_grid(paths: Sequence[str | Path]) -> RasterGrid:
    """The grid :func:`mosaic_masks` would give the tiles (one raster's own), from their headers alone."""
    infos = [tile_info(p) for p in paths]
    return infos[0].grid if len(infos) == 1 else _union_grid(infos)[0]


def plan_tiles(plan: MosaicPlan) -> list[tuple[str, int, int, int, int]]:
    """``(file, row0, col0, row1, col1)`` of each tile of a plan on one lattice (see :class:`MaskRaster`)."""
    return [(str(i.path), ro, co, ro + i.grid.height, co + i.grid.width)
            for i, (ro, co) in zip(plan.infos, plan.offsets)]


def _mosaic_in_memory(plan: MosaicPlan, threshold: float | None
                      ) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray | None]:
    """``(road, valid)`` of a plan on one lattice, the weights labels its tiles carry, and for probability
    tiles their mean probability (None for masks)."""
    shape = (plan.grid.height, plan.grid.width)
    probability = plan.kind == "probability"
    road, valid = np.zeros(shape, bool), np.zeros(shape, bool)
    if probability:  # only then: a mask mosaic may be large
        total = np.zeros(shape, np.float32)
        count = np.zeros(shape, np.uint8 if len(plan.infos) < 255 else np.int32)
    weights: list[str] = []
    for info, (ro, co), fmt in zip(plan.infos, plan.offsets, plan.formats):
        with _open(info.path) as src, reading(info.path):
            values = src.read(1)
            label = src.tags().get(WEIGHTS_TAG)
        if label and label not in weights:
            weights.append(label)
        tile_value, tile_valid = _decode(values, info, fmt)
        rows, cols = slice(ro, ro + info.grid.height), slice(co, co + info.grid.width)
        valid[rows, cols] |= tile_valid
        if probability:
            total[rows, cols] += tile_value
            count[rows, cols] += tile_valid
        else:
            road[rows, cols] |= tile_value
    if not probability:
        return road, valid, weights, None
    road = valid & (total >= threshold * np.maximum(count, 1))
    return road, valid, weights, total / np.maximum(count, 1)


def _resolution(res: float | tuple[float, float]) -> tuple[float, float]:
    """``res`` as (x, y) pixel sizes, both > 0."""
    resolution = (float(res), float(res)) if np.isscalar(res) else (float(res[0]), float(res[1]))
    if min(resolution) <= 0:
        raise BadParameterError("res", f"must be > 0, got {res!r}")
    return resolution


def _warp_grid(infos: Sequence[TileInfo], crs: CRS, res: tuple[float, float]) -> RasterGrid:
    """The grid in ``crs`` with ``res`` pixels, snapped to multiples of ``res``, that covers every tile."""
    boxes = [transform_bounds(i.grid.crs, crs, *i.grid.bounds) for i in infos]
    rx, ry = res
    left = math.floor(min(b[0] for b in boxes) / rx) * rx
    bottom = math.floor(min(b[1] for b in boxes) / ry) * ry
    right = math.ceil(max(b[2] for b in boxes) / rx) * rx
    top = math.ceil(max(b[3] for b in boxes) / ry) * ry
    return RasterGrid(int(round((top - bottom) / ry)), int(round((right - left) / rx)), crs,
                      Affine(rx, 0, left, 0, -ry, top))


def _plan(infos: Sequence[TileInfo], kind: str, options: StitchOptions) -> MosaicPlan:
    """Tiles reprojected onto the grid ``options`` asks for, or placed on the union of their own lattice."""
    if options.crs is not None:
        grid, offsets = _warp_grid(infos, CRS.from_user_input(options.crs), _resolution(options.res)), None
    else:
        _check_same_grid(infos)
        grid, offsets = _union_grid(infos)
    settled, formats = _settled(infos, options.mask_format)
    return MosaicPlan(settled, kind, formats, grid, offsets)


def without_output(paths: Sequence[str | Path], output: str | Path, named: Iterable[str | Path] = ()) -> list[Path]:
    """``paths`` less a previous mosaic at ``output``, which a re-run into the tiles' folder finds among
    them (a VRT would reference itself, a GeoTIFF count it as one more tile).

    Only roadseg's own mosaic (tagged :data:`MOSAIC_TAG`) is left out, and only when it is not among
    ``named``, the files the user named one by one: any other input at ``output`` raises
    :class:`BadInputError`, as the mosaic would replace it.
    """
    target = Path(output)
    named = [Path(p) for p in named]
    kept = []
    for path in map(Path, paths):
        if not same_file(path, target):
            kept.append(path)
        elif any(same_file(path, p) for p in named) or not _is_mosaic(path):
            raise BadInputError(f"{path}: is both a tile and the output, which would replace it; write the "
                                "mosaic to another file")
    return kept


def _is_mosaic(path: Path) -> bool:
    """Whether ``path`` is a mosaic stitch wrote (a GeoTIFF or VRT with its :data:`MOSAIC_TAG`)."""
    return MOSAIC_TAG in raster_tags(path)


def stitch(paths: Sequence[str | Path], output: str | Path, options: StitchOptions | None = None,
           progress: Callable[[int, int], None] | None = None) -> StitchResult:
    """Mosaic ``paths`` into ``output`` (GeoTIFF, or VRT with ``options.vrt``); see the module docstring.

    ``progress(done, total)`` is called after each output block.
    """
    options = options or StitchOptions()
    if not paths:
        raise ValueError("no input tiles given")
    if (options.crs is None) != (options.res is None):
        raise ValueError("give both crs and res to reproject, or neither")
    output = Path(output)
    kept = without_output(paths, output)
    if not kept:
        raise BadInputError(f"{output}: the only input given is the output itself; name the tiles to mosaic")
    infos = [tile_info(p) for p in kept]
    kind = _check_kind(infos)
    _require_georeferenced(infos)
    plan = _plan(infos, kind, options)
    with atomic_output(output, options.overwrite) as temp:
        if options.vrt:
            temp.write_text(_vrt_xml(plan))
        else:
            _write_mosaic(temp, plan, options.block, progress)
    grid = plan.grid
    return StitchResult(output, grid.width, grid.height, str(grid.crs), grid.res, kind, [str(i.path) for i in infos],
                        options.vrt, plan.warped)


def _profile(plan: MosaicPlan, block: int) -> dict:
    """The GeoTIFF's creation options: predict's encodings, tiles that fit the write blocks."""
    grid = plan.grid
    probability = plan.kind == "probability"
    tile = 256 if min(grid.width, grid.height) < 1024 or block % 256 else 512
    return {"driver": "GTiff", "width": grid.width, "height": grid.height, "count": 1, "crs": grid.crs,
            "transform": grid.transform, "dtype": "float32" if probability else "uint8",
            "nodata": float("nan") if probability else PREDICT_NODATA,
            "tiled": True, "blockxsize": tile, "blockysize": tile, "compress": "deflate", "BIGTIFF": "IF_SAFER"}


def _mosaic_tags(plan: MosaicPlan) -> dict[str, str]:
    """What a mosaic says of itself: its content, as predict's outputs do (so a mask mosaic without roads
    keeps 255 as nodata), and that stitch made it (so a re-run may leave it out of the tiles)."""
    return {CONTENT_TAG: PROBABILITY if plan.kind == "probability" else MASK, MOSAIC_TAG: "stitch"}


def _write_mosaic(temp: Path, plan: MosaicPlan, block: int, progress: Callable[[int, int], None] | None) -> None:
    """Write the mosaic block by block, reading only the tiles' windows under each block."""
    sources = [_open(i.path) for i in plan.infos]
    try:
        width, height = plan.grid.width, plan.grid.height
        windows = [Window(c, r, min(block, width - c), min(block, height - r))
                   for r in range(0, height, block) for c in range(0, width, block)]
        with rasterio.open(temp, "w", **_profile(plan, block)) as dst:
            dst.update_tags(**_mosaic_tags(plan))
            for done, window in enumerate(windows, 1):
                dst.write(_mosaic_block(window, plan, sources), 1, window=window)
                if progress:
                    progress(done, len(windows))
    finally:
        for src in sources:
            src.close()


def _placed_block(window: Window, info: TileInfo, src, offset: Offset) -> np.ndarray | None:
    """Raw values of a tile on the mosaic's lattice under the block (NaN where the tile has no pixel), or None."""
    h, w = int(window.height), int(window.width)
    ro, co = offset
    r0, c0 = max(window.row_off, ro), max(window.col_off, co)
    r1 = min(window.row_off + h, ro + info.grid.height)
    c1 = min(window.col_off + w, co + info.grid.width)
    if r0 >= r1 or c0 >= c1:
        return None
    values = np.full((h, w), np.nan, np.float64)
    part = src.read(1, window=Window(c0 - co, r0 - ro, c1 - c0, r1 - r0))
    values[r0 - window.row_off:r1 - window.row_off, c0 - window.col_off:c1 - window.col_off] = part
    return values


def _resampling(kind: str) -> Resampling:
    """Bilinear for probabilities; nearest for masks, whose values are labels."""
    return Resampling.bilinear if kind == "probability" else Resampling.nearest


def _warped_block(window: Window, info: TileInfo, src, grid: RasterGrid, kind: str) -> np.ndarray | None:
    """Raw values of a tile reprojected onto the block of ``grid`` (NaN where it has no pixel), or None."""
    h, w = int(window.height), int(window.width)
    block_transform = grid.transform @ Affine.translation(window.col_off, window.row_off)
    left, top = block_transform.c, block_transform.f
    right, bottom = left + block_transform.a * w, top + block_transform.e * h
    t_left, t_bottom, t_right, t_top = transform_bounds(info.grid.crs, grid.crs, *info.grid.bounds)
    if t_left >= right or t_right <= left or t_bottom >= top or t_top <= bottom:
        return None  # the tile is nowhere near this block: skip the warp
    values = np.full((h, w), np.nan, np.float32)
    reproject(rasterio.band(src, 1), values, src_nodata=info.gdal_nodata, dst_transform=block_transform,
              dst_crs=grid.crs, dst_nodata=np.nan, init_dest_nodata=True, resampling=_resampling(kind))
    if np.all(np.isnan(values)):
        return None
    return values.astype(np.float64)


def mosaic_window(window: Window, plan: MosaicPlan, sources: Sequence, threshold: float | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(road, valid, probability)`` of one window of a plan, reading only the tiles' windows under it
    (``sources``: the tiles opened, in order): road wins over the tiles' masks; probability tiles give
    their mean (0 without data; None for masks) and road where it is at least ``threshold``, as
    :func:`mosaic_masks` decides it for the whole."""
    shape = (int(window.height), int(window.width))
    probability = plan.kind == "probability"
    if probability:
        total, count = np.zeros(shape, np.float64), np.zeros(shape, np.int32)
    road, valid = np.zeros(shape, bool), np.zeros(shape, bool)
    for index, (info, src, fmt) in enumerate(zip(plan.infos, sources, plan.formats)):
        with reading(info.path):
            values = (_warped_block(window, info, src, plan.grid, plan.kind) if plan.warped
                      else _placed_block(window, info, src, plan.offsets[index]))
        if values is None:
            continue
        value, tile_valid = _decode(values, info, fmt)
        valid |= tile_valid
        if probability:
            total += value
            count += tile_valid
        else:
            road |= value
    if not probability:
        return road, valid, None
    if threshold is not None:
        road = valid & (total >= threshold * np.maximum(count, 1))
    return road, valid, total / np.maximum(count, 1)


def _mosaic_block(window: Window, plan: MosaicPlan, sources: Sequence) -> np.ndarray:
    """One output block: road wins over the tiles' masks, or the mean of their probabilities."""
    road, valid, probability = mosaic_window(window, plan, sources)
    if probability is not None:
        return np.where(valid, probability, np.nan).astype(np.float32)
    return np.where(valid, road.astype(np.uint8), PREDICT_NODATA).astype(np.uint8)


def _nodata_xml(nodata: float | None) -> str:
    if nodata is None:
        return ""
    return "<NODATA>nan</NODATA>" if math.isnan(nodata) else f"<NODATA>{nodata:g}</NODATA>"


def _complex_source(filename: str, src_size: tuple[int, int] | None, offset: Offset | None, extra: str) -> str:
    """One ``ComplexSource``: band 1 of ``filename`` (a path or an inline VRT), placed at ``offset``."""
    rects = ""
    if src_size is not None and offset is not None:
        (width, height), (ro, co) = src_size, offset
        rects = (f'<SrcRect xOff="0" yOff="0" xSize="{width}" ySize="{height}"/>'
                 f'<DstRect xOff="{co}" yOff="{ro}" xSize="{width}" ySize="{height}"/>')
    return (f'    <ComplexSource><SourceFilename relativeToVRT="0">{escape(filename)}</SourceFilename>'
            f"<SourceBand>1</SourceBand>{rects}{extra}</ComplexSource>")


def _vrt_dataset(grid: RasterGrid, header: str, data_type: str, nodata: str | None, function: str,
                 sources: Sequence[str]) -> str:
    """A one-band VRT of ``grid``'s size applying the pixel ``function`` to ``sources``; a single source
    needs none (GDAL's ``sum`` and ``max`` want at least two)."""
    nodata_xml = f"<NoDataValue>{nodata}</NoDataValue>" if nodata is not None else ""
    derived = len(sources) > 1 or function == "div"
    band = (f' subClass="VRTDerivedRasterBand">{nodata_xml}<PixelFunctionType>{function}</PixelFunctionType>'
            if derived else f">{nodata_xml}")
    return (f'<VRTDataset rasterXSize="{grid.width}" rasterYSize="{grid.height}">\n{header}'
            f'  <VRTRasterBand dataType="{data_type}" band="1"{band}\n'
            + "\n".join(sources) + "\n  </VRTRasterBand>\n</VRTDataset>\n")


def _warp_nodata(info: TileInfo, kind: str) -> float:
    """Nodata of a tile warped into the VRT: NaN for probabilities (warped as float32); for masks the
    tile's own, as ``_warped_block`` reads it, or :data:`WARP_FILL` so outside the tile is never road."""
    if kind == "probability":
        return float("nan")
    return info.nodata if info.nodata is not None else WARP_FILL


def _mask_source_extra(info: TileInfo, fmt: str | None, warped: bool) -> str:
    """NODATA and LUT of a mask tile's source: its declared nodata is skipped, and for predict masks
    255 is mapped to the VRT's nodata, so ``max`` ignores it as ``_decode`` does."""
    nodata = _warp_nodata(info, "mask") if warped else info.nodata
    return _nodata_xml(nodata) + f"<LUT>{PREDICT_LUT if fmt == 'predict' else BINARY_LUT}</LUT>"


def _probability_nodata(info: TileInfo, warped: bool) -> float | None:
    """NODATA of a probability tile's sources: NaN for warped and for float tiles declaring none."""
    if warped or (info.nodata is None and info.floating):
        return float("nan")
    return info.nodata


def _warped_tile(info: TileInfo, kind: str, grid: RasterGrid) -> VrtTile:
    """A tile reprojected onto the mosaic's grid as an inline warped VRT: (XML, (width, height), offset).

    The warped VRT covers only the tile's footprint on the grid and reads the tile with its declared
    nodata, as ``_warped_block`` does; its own nodata is :func:`_warp_nodata`. Probabilities are warped
    as float32, so uint8 maps are interpolated before their 1/254 scale, not rounded.
    """
    transform = grid.transform
    rx, ry = grid.res
    left, bottom, right, top = transform_bounds(info.grid.crs, grid.crs, *info.grid.bounds)
    col0 = max(0, math.floor((left - transform.c) / rx))
    col1 = min(grid.width, math.ceil((right - transform.c) / rx))
    row0 = max(0, math.floor((transform.f - top) / ry))
    row1 = min(grid.height, math.ceil((transform.f - bottom) / ry))
    dtype = "float32" if kind == "probability" else None
    with _open(info.path.resolve()) as src, WarpedVRT(
            src, crs=grid.crs, transform=transform @ Affine.translation(col0, row0), width=col1 - col0,
            height=row1 - row0, src_nodata=info.gdal_nodata, nodata=_warp_nodata(info, kind), dtype=dtype,
            resampling=_resampling(kind)) as warped, tempfile.TemporaryDirectory() as folder:
        rasterio.shutil.copy(warped, Path(folder) / "tile.vrt", driver="VRT")
        tree = ElementTree.parse(Path(folder) / "tile.vrt")
    source = tree.getroot().find("GDALWarpOptions/SourceDataset")
    source.text, source.attrib["relativeToVRT"] = str(info.path.resolve()), "0"
    return ElementTree.tostring(tree.getroot(), encoding="unicode"), (col1 - col0, row1 - row0), (row0, col0)


def _vrt_tiles(plan: MosaicPlan) -> list[VrtTile]:
    """Each tile as a VRT source: the file placed at its offset, or an inline warped VRT of it."""
    if plan.warped:
        return [_warped_tile(i, plan.kind, plan.grid) for i in plan.infos]
    return [(str(i.path.resolve()), (i.grid.width, i.grid.height), o) for i, o in zip(plan.infos, plan.offsets)]


def _vrt_header(grid: RasterGrid) -> str:
    """The VRT's SRS and GeoTransform elements."""
    t = grid.transform
    gt = ", ".join(repr(float(v)) for v in (t.c, t.a, t.b, t.f, t.d, t.e))
    return f"  <SRS>{escape(grid.crs.to_wkt())}</SRS>\n  <GeoTransform>{gt}</GeoTransform>\n"


def _vrt_metadata(plan: MosaicPlan) -> str:
    """The VRT's Metadata element: :func:`_mosaic_tags`, as the GeoTIFF carries them."""
    items = "".join(f'<MDI key="{key}">{escape(value)}</MDI>' for key, value in _mosaic_tags(plan).items())
    return f"  <Metadata>{items}</Metadata>\n"


def _vrt_xml(plan: MosaicPlan) -> str:
    """A VRT giving the max of the tiles (masks, as 0/1) or the mean of those with data (probabilities)."""
    tiles = _vrt_tiles(plan)
    header = _vrt_header(plan.grid) + _vrt_metadata(plan)
    if plan.kind == "mask":
        sources = [_complex_source(path, size, offset, _mask_source_extra(info, fmt, plan.warped))
                   for info, (path, size, offset), fmt in zip(plan.infos, tiles, plan.formats)]
        return _vrt_dataset(plan.grid, header, "Byte", str(PREDICT_NODATA), "max", sources)
    return _probability_vrt(plan, tiles, header)


def _probability_vrt(plan: MosaicPlan, tiles: Sequence[VrtTile], header: str) -> str:
    """The mean of the tiles with data: ``div`` of two inline VRTs, the sum of the tiles' probabilities
    and the number of tiles with data at each pixel (each valid pixel scaled to 1); pixels no tile
    covers have count 0, which the outer source treats as nodata, so they come out NaN.
    """
    sums, counts = [], []
    for info, (path, size, offset) in zip(plan.infos, tiles):
        nodata = _nodata_xml(_probability_nodata(info, plan.warped))
        scale = f"<ScaleOffset>0</ScaleOffset><ScaleRatio>{info.scale!r}</ScaleRatio>" if info.scale != 1 else ""
        sums.append(_complex_source(path, size, offset, nodata + scale))
        counts.append(_complex_source(path, size, offset, nodata + "<ScaleOffset>1</ScaleOffset>"
                                                                   "<ScaleRatio>0</ScaleRatio>"))
    total = _vrt_dataset(plan.grid, "", "Float32", None, "sum", sums)
    count = _vrt_dataset(plan.grid, "", "Float32", None, "sum", counts)
    return _vrt_dataset(plan.grid, header, "Float32", "nan", "div",
                        [_complex_source(total, None, None, ""),
                         _complex_source(count, None, None, "<NODATA>0</NODATA>")])
