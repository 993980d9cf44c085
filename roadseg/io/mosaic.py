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

An input that is the output itself (a re-run into the tiles' folder) is left out.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import Window

from roadseg.errors import BadInputError, BadParameterError
from roadseg.io.atomic import atomic_output
from roadseg.io.masks import PREDICT_NODATA, MaskFormat, MaskRaster, resolve_format, value_counts
from roadseg.io.raster_open import WEIGHTS_TAG, open_raster, probability_scale, reading
from roadseg.vector.geo import is_georeferenced

BLOCK = 1024
GRID_TOLERANCE = 1e-3  # of a pixel
WARP_FILL = 254  # nodata of warped masks that declare none: a value predict and 0/255 masks do not use
PREDICT_LUT = "0:0,1:1,254:1,255:255"  # 255 (nodata) stays 255, the VRT's nodata, which max ignores
BINARY_LUT = "0:0,1:1,255:1"  # any non-zero value is road


@dataclass(frozen=True)
class TileInfo:
    """What stitching needs to know about one input raster, read from its header."""

    path: Path
    width: int
    height: int
    transform: Affine
    crs: CRS | None
    nodata: float | None
    kind: str  # "mask" or "probability"
    count: int
    scale: float = 1.0  # stored value -> probability (1/254 for uint8 probability maps)
    floating: bool = False  # float pixels: NaN is nodata even when none is declared

    @property
    def res(self) -> tuple[float, float]:
        return abs(self.transform.a), abs(self.transform.e)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        left, top = self.transform.c, self.transform.f
        return left, top + self.transform.e * self.height, left + self.transform.a * self.width, top


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
        return TileInfo(path, src.width, src.height, src.transform, src.crs, src.nodata,
                        "mask" if scale is None else "probability", src.count, scale or 1.0, dtype.kind == "f")


def _aligned(a: TileInfo, b: TileInfo) -> bool:
    """Same CRS, same pixel size, no rotation, and pixel corners on one grid."""
    if a.crs != b.crs or a.transform.b or a.transform.d or b.transform.b or b.transform.d:
        return False
    if not np.allclose(a.res, b.res, rtol=1e-9, atol=0):
        return False
    dx = (b.transform.c - a.transform.c) / a.res[0]
    dy = (b.transform.f - a.transform.f) / a.res[1]
    return abs(dx - round(dx)) < GRID_TOLERANCE and abs(dy - round(dy)) < GRID_TOLERANCE


def _touch(a: TileInfo, b: TileInfo) -> bool:
    tol = 0.5 * min(a.res)
    al, ab, ar, at = a.bounds
    bl, bb, br, bt = b.bounds
    return al <= br + tol and bl <= ar + tol and ab <= bt + tol and bb <= at + tol


def group_tiles(paths: Sequence[Path]) -> list[list[Path]]:
    """Split inputs into groups to mosaic: georeferenced tiles on one grid that touch or overlap (by chains).

    Rasters without georeferencing, or on a grid of their own, form groups of one.
    """
    infos = [tile_info(p) for p in paths]
    parent = list(range(len(infos)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(infos):
        if not is_georeferenced(a.transform, a.crs):
            continue
        for j in range(i + 1, len(infos)):
            b = infos[j]
            if is_georeferenced(b.transform, b.crs) and a.kind == b.kind and _aligned(a, b) and _touch(a, b):
                parent[find(j)] = find(i)
    groups: dict[int, list[Path]] = {}
    for i, info in enumerate(infos):
        groups.setdefault(find(i), []).append(info.path)
    return list(groups.values())


def _union_grid(infos: Sequence[TileInfo]) -> tuple[Affine, int, int, list[tuple[int, int]]]:
    """Transform and size of the union of aligned tiles, and each tile's (row, col) offset in it."""
    rx, ry = infos[0].res
    left = min(i.bounds[0] for i in infos)
    top = max(i.bounds[3] for i in infos)
    offsets = [(int(round((top - i.transform.f) / ry)), int(round((i.transform.c - left) / rx))) for i in infos]
    height = max(ro + i.height for (ro, _), i in zip(offsets, infos))
    width = max(co + i.width for (_, co), i in zip(offsets, infos))
    return Affine(rx, 0, left, 0, -ry, top), width, height, offsets


def _check_same_grid(infos: Sequence[TileInfo]) -> None:
    first = infos[0]
    for info in infos:
        if not is_georeferenced(info.transform, info.crs):
            raise BadInputError(f"{info.path}: has no georeferencing, so its place in a mosaic is unknown")
        if info.crs != first.crs:
            raise BadInputError(f"{info.path}: CRS {info.crs} differs from {first.path}'s {first.crs}; "
                                "give --crs and --res to reproject")
        if not np.allclose(info.res, first.res, rtol=1e-9, atol=0):
            raise BadInputError(f"{info.path}: pixel size {info.res} differs from {first.path}'s {first.res}; "
                                "give --crs and --res to reproject")
        if not _aligned(first, info):
            raise BadInputError(f"{info.path}: pixels are not on {first.path}'s grid (shifted or rotated); "
                                "give --crs and --res to resample")


def _check_kind(infos: Sequence[TileInfo]) -> str:
    """The tiles' one kind; a mosaic cannot mix masks and probability maps (uint8 ones included)."""
    kinds = {i.kind for i in infos}
    if len(kinds) > 1:
        mask = next(i for i in infos if i.kind == "mask")
        probability = next(i for i in infos if i.kind == "probability")
        raise BadInputError(f"{mask.path}: a mask, but {probability.path} is a probability map; "
                            "stitch each kind separately")
    return kinds.pop()


def file_format(path: Path, nodata: float | None, mask_format: MaskFormat) -> str:
    """Resolve the mask format for a whole file, counting its values block by block."""
    counts: dict[int, int] = {}
    with _open(path) as src, reading(path):
        for _, window in src.block_windows(1):
            for value, count in value_counts(src.read(1, window=window)).items():
                counts[value] = counts.get(value, 0) + count
    try:
        return resolve_format(np.zeros(0, np.uint8), nodata, mask_format, counts=counts)
    except ValueError as error:
        raise BadInputError(f"{path}: {error}") from error


def _decode(values: np.ndarray, nodata: float | None, fmt: str | None, kind: str, threshold: float | None = None,
            scale: float = 1.0):
    """``(road or value, valid)`` for a block of raw values (floats, NaN = outside the tile); probabilities
    are stored values times ``scale``."""
    valid = np.ones(values.shape, bool)
    if values.dtype.kind == "f":
        valid &= ~np.isnan(values)
    if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
        valid &= values != nodata
    if kind == "probability":
        probability = np.where(valid, values * scale, 0).astype(np.float64)
        if threshold is not None:
            return valid & (probability >= threshold), valid
        return probability, valid
    if fmt == "predict":
        valid &= values != PREDICT_NODATA
        return valid & (values == 1), valid
    return valid & (values > 0), valid


def mosaic_masks(paths: Sequence[str | Path], *, mask_format: MaskFormat = "auto",
                 threshold: float | None = None) -> MaskRaster:
    """Mosaic aligned tiles into one in-memory :class:`MaskRaster` (road wins, nodata loses to data).

    Probability tiles need ``threshold``: overlaps are averaged first, as in :func:`stitch_paths`, and
    the mean is thresholded, so a road the tiles agree on is not decided by one tile's edge.
    """
    infos = [tile_info(p) for p in paths]
    _check_same_grid(infos)
    kind = _check_kind(infos)
    if kind == "probability" and threshold is None:
        raise BadInputError(f"{infos[0].path}: holds probabilities (a probability map?); pass --threshold")
    transform, width, height, offsets = _union_grid(infos)
    road = np.zeros((height, width), bool)
    valid = np.zeros((height, width), bool)
    if kind == "probability":
        total = np.zeros((height, width), np.float32)
        count = np.zeros((height, width), np.uint8 if len(infos) < 255 else np.int32)
    weights: list[str] = []
    for info, (ro, co) in zip(infos, offsets):
        fmt = None if kind == "probability" else file_format(info.path, info.nodata, mask_format)
        with _open(info.path) as src, reading(info.path):
            values = src.read(1)
            label = src.tags().get(WEIGHTS_TAG)
        if label and label not in weights:
            weights.append(label)
        tile_value, tile_valid = _decode(values, info.nodata, fmt, kind, scale=info.scale)
        rows, cols = slice(ro, ro + info.height), slice(co, co + info.width)
        valid[rows, cols] |= tile_valid
        if kind == "probability":
            total[rows, cols] += tile_value
            count[rows, cols] += tile_valid
        else:
            road[rows, cols] |= tile_value
    if kind == "probability":
        road = valid & (total >= threshold * np.maximum(count, 1))
    tiles = [(str(i.path), ro, co, ro + i.height, co + i.width) for i, (ro, co) in zip(infos, offsets)]
    return MaskRaster(road=road, valid=valid, transform=transform, crs=infos[0].crs,
                      source=";".join(str(i.path) for i in infos), tiles=tiles, weights=";".join(weights) or None)


def _warp_grid(infos: Sequence[TileInfo], crs: CRS, res: tuple[float, float]) -> tuple[Affine, int, int]:
    boxes = [transform_bounds(i.crs, crs, *i.bounds) for i in infos]
    rx, ry = res
    left = math.floor(min(b[0] for b in boxes) / rx) * rx
    bottom = math.floor(min(b[1] for b in boxes) / ry) * ry
    right = math.ceil(max(b[2] for b in boxes) / rx) * rx
    top = math.ceil(max(b[3] for b in boxes) / ry) * ry
    return Affine(rx, 0, left, 0, -ry, top), int(round((right - left) / rx)), int(round((top - bottom) / ry))


def without_output(paths: Sequence[str | Path], output: str | Path) -> list[Path]:
    """``paths`` less the output itself, which a re-run into the tiles' folder finds among them (a VRT
    would then reference itself, and a GeoTIFF count the previous mosaic as one more tile)."""
    target = Path(output)
    return [Path(p) for p in paths if not _same_file(Path(p), target)]


def _same_file(a: Path, b: Path) -> bool:
    """Whether two names are one file: the output may be named relatively, or through a link."""
    if a.resolve() == b.resolve():
        return True
    return a.exists() and b.exists() and a.samefile(b)


def stitch_paths(paths: Sequence[str | Path], output: str | Path, *, vrt: bool = False, crs: str | None = None,
                 res: float | tuple[float, float] | None = None, mask_format: MaskFormat = "auto",
                 overwrite: bool = False, block: int = BLOCK,
                 progress: Callable[[int, int], None] | None = None) -> StitchResult:
    """Mosaic ``paths`` into ``output`` (GeoTIFF, or VRT with ``vrt``); see the module docstring.

    ``progress(done, total)`` is called after each output block.
    """
    if not paths:
        raise ValueError("no input tiles given")
    if (crs is None) != (res is None):
        raise ValueError("give both crs and res to reproject, or neither")
    output = Path(output)
    kept = without_output(paths, output)
    if not kept:
        raise BadInputError(f"{output}: the only input given is the output itself; name the tiles to mosaic")
    infos = [tile_info(p) for p in kept]
    kind = _check_kind(infos)
    for info in infos:
        if not is_georeferenced(info.transform, info.crs):
            raise BadInputError(f"{info.path}: has no georeferencing, so its place in a mosaic is unknown")
    warp = crs is not None
    if warp:
        target_crs = CRS.from_user_input(crs)
        resolution = (float(res), float(res)) if np.isscalar(res) else (float(res[0]), float(res[1]))
        if min(resolution) <= 0:
            raise BadParameterError("res", f"must be > 0, got {res!r}")
        transform, width, height = _warp_grid(infos, target_crs, resolution)
        offsets = None
    else:
        _check_same_grid(infos)
        target_crs = infos[0].crs
        transform, width, height, offsets = _union_grid(infos)
    formats = [None if kind == "probability" else file_format(i.path, i.nodata, mask_format) for i in infos]
    if vrt:
        with atomic_output(output, overwrite) as temp:
            if warp:
                tiles = [_warped_tile(i, kind, transform, width, height, target_crs) for i in infos]
            else:
                tiles = [(str(i.path.resolve()), (i.width, i.height), o) for i, o in zip(infos, offsets)]
            temp.write_text(_vrt_xml(infos, tiles, formats, kind, transform, width, height, target_crs, warp))
    else:
        with atomic_output(output, overwrite) as temp:
            _write_mosaic(temp, infos, formats, kind, transform, width, height, target_crs, offsets, block,
                          progress)
    return StitchResult(output, width, height, str(target_crs), (abs(transform.a), abs(transform.e)), kind,
                        [str(i.path) for i in infos], vrt, warp)


def _profile(kind: str, transform: Affine, width: int, height: int, crs: CRS, block: int) -> dict:
    tile = 256 if min(width, height) < 1024 or block % 256 else 512
    return {"driver": "GTiff", "width": width, "height": height, "count": 1, "crs": crs, "transform": transform,
            "dtype": "float32" if kind == "probability" else "uint8",
            "nodata": float("nan") if kind == "probability" else PREDICT_NODATA,
            "tiled": True, "blockxsize": tile, "blockysize": tile, "compress": "deflate", "BIGTIFF": "IF_SAFER"}


def _write_mosaic(temp: Path, infos, formats, kind, transform, width, height, crs, offsets, block,
                  progress) -> None:
    sources = [_open(i.path) for i in infos]
    try:
        windows = [Window(c, r, min(block, width - c), min(block, height - r))
                   for r in range(0, height, block) for c in range(0, width, block)]
        with rasterio.open(temp, "w", **_profile(kind, transform, width, height, crs, block)) as dst:
            for done, window in enumerate(windows, 1):
                dst.write(_mosaic_block(window, infos, sources, formats, kind, transform, crs, offsets), 1,
                          window=window)
                if progress:
                    progress(done, len(windows))
    finally:
        for src in sources:
            src.close()


def _tile_block(window: Window, info: TileInfo, src, offset, transform: Affine, crs: CRS, kind: str):
    """Raw values of one tile on the output block's grid (NaN where the tile has no pixel), or None."""
    h, w = int(window.height), int(window.width)
    if offset is not None:
        ro, co = offset
        r0, c0 = max(window.row_off, ro), max(window.col_off, co)
        r1 = min(window.row_off + h, ro + info.height)
        c1 = min(window.col_off + w, co + info.width)
        if r0 >= r1 or c0 >= c1:
            return None
        values = np.full((h, w), np.nan, np.float64)
        part = src.read(1, window=Window(c0 - co, r0 - ro, c1 - c0, r1 - r0))
        values[r0 - window.row_off:r1 - window.row_off, c0 - window.col_off:c1 - window.col_off] = part
        return values
    block_transform = transform @ Affine.translation(window.col_off, window.row_off)
    left, top = block_transform.c, block_transform.f
    right, bottom = left + block_transform.a * w, top + block_transform.e * h
    t_left, t_bottom, t_right, t_top = transform_bounds(info.crs, crs, *info.bounds)
    if t_left >= right or t_right <= left or t_bottom >= top or t_top <= bottom:
        return None  # the tile is nowhere near this block: skip the warp
    values = np.full((h, w), np.nan, np.float32)
    reproject(rasterio.band(src, 1), values, src_nodata=info.nodata, dst_transform=block_transform,
              dst_crs=crs, dst_nodata=np.nan, init_dest_nodata=True,
              resampling=Resampling.bilinear if kind == "probability" else Resampling.nearest)
    if np.all(np.isnan(values)):
        return None
    return values.astype(np.float64)


def _mosaic_block(window, infos, sources, formats, kind, transform, crs, offsets) -> np.ndarray:
    h, w = int(window.height), int(window.width)
    if kind == "probability":
        total = np.zeros((h, w), np.float64)
        count = np.zeros((h, w), np.int32)
    else:
        road = np.zeros((h, w), bool)
    valid = np.zeros((h, w), bool)
    for index, (info, src, fmt) in enumerate(zip(infos, sources, formats)):
        with reading(info.path):
            values = _tile_block(window, info, src, None if offsets is None else offsets[index], transform, crs,
                                 kind)
        if values is None:
            continue
        value, tile_valid = _decode(values, info.nodata, fmt, kind, scale=info.scale)
        valid |= tile_valid
        if kind == "probability":
            total += value
            count += tile_valid
        else:
            road |= value
    if kind == "probability":
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / np.maximum(count, 1), np.nan).astype(np.float32)
    return np.where(valid, road.astype(np.uint8), PREDICT_NODATA).astype(np.uint8)


def _nodata_xml(nodata: float | None) -> str:
    if nodata is None:
        return ""
    return "<NODATA>nan</NODATA>" if math.isnan(nodata) else f"<NODATA>{nodata:g}</NODATA>"


def _complex_source(filename: str, src_size: tuple[int, int] | None, offset: tuple[int, int] | None,
                    extra: str) -> str:
    """One ``ComplexSource``: band 1 of ``filename`` (a path or an inline VRT), placed at ``offset``."""
    rects = ""
    if src_size is not None and offset is not None:
        (width, height), (ro, co) = src_size, offset
        rects = (f'<SrcRect xOff="0" yOff="0" xSize="{width}" ySize="{height}"/>'
                 f'<DstRect xOff="{co}" yOff="{ro}" xSize="{width}" ySize="{height}"/>')
    return (f'    <ComplexSource><SourceFilename relativeToVRT="0">{escape(filename)}</SourceFilename>'
            f"<SourceBand>1</SourceBand>{rects}{extra}</ComplexSource>")


def _vrt_dataset(width: int, height: int, header: str, data_type: str, nodata: str | None, function: str,
                 sources: Sequence[str]) -> str:
    """A one-band VRT applying the pixel ``function`` to ``sources``; a single source needs none (GDAL's
    ``sum`` and ``max`` want at least two)."""
    nodata_xml = f"<NoDataValue>{nodata}</NoDataValue>" if nodata is not None else ""
    derived = len(sources) > 1 or function == "div"
    band = (f' subClass="VRTDerivedRasterBand">{nodata_xml}<PixelFunctionType>{function}</PixelFunctionType>'
            if derived else f">{nodata_xml}")
    return (f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">\n{header}'
            f'  <VRTRasterBand dataType="{data_type}" band="1"{band}\n'
            + "\n".join(sources) + "\n  </VRTRasterBand>\n</VRTDataset>\n")


def _warp_nodata(info: TileInfo, kind: str) -> float:
    """Nodata of a tile warped into the VRT: NaN for probabilities (warped as float32); for masks the
    tile's own, as ``_tile_block`` reads it, or :data:`WARP_FILL` so outside the tile is never road."""
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


def _warped_tile(info: TileInfo, kind: str, transform: Affine, width: int, height: int,
                 crs: CRS) -> tuple[str, tuple[int, int], tuple[int, int]]:
    """A tile reprojected onto the mosaic's grid as an inline warped VRT: (XML, (width, height), offset).

    The warped VRT covers only the tile's footprint on the grid and reads the tile with its declared
    nodata, as ``_tile_block`` does; its own nodata is :func:`_warp_nodata`. Probabilities are warped
    as float32, so uint8 maps are interpolated before their 1/254 scale, not rounded.
    """
    rx, ry = abs(transform.a), abs(transform.e)
    left, bottom, right, top = transform_bounds(info.crs, crs, *info.bounds)
    col0 = max(0, math.floor((left - transform.c) / rx))
    col1 = min(width, math.ceil((right - transform.c) / rx))
    row0 = max(0, math.floor((transform.f - top) / ry))
    row1 = min(height, math.ceil((transform.f - bottom) / ry))
    dtype = "float32" if kind == "probability" else None
    with _open(info.path.resolve()) as src, WarpedVRT(
            src, crs=crs, transform=transform @ Affine.translation(col0, row0), width=col1 - col0,
            height=row1 - row0, src_nodata=info.nodata, nodata=_warp_nodata(info, kind), dtype=dtype,
            resampling=Resampling.bilinear if kind == "probability" else Resampling.nearest) as warped, \
            tempfile.TemporaryDirectory() as folder:
        rasterio.shutil.copy(warped, Path(folder) / "tile.vrt", driver="VRT")
        tree = ElementTree.parse(Path(folder) / "tile.vrt")
    source = tree.getroot().find("GDALWarpOptions/SourceDataset")
    source.text, source.attrib["relativeToVRT"] = str(info.path.resolve()), "0"
    return ElementTree.tostring(tree.getroot(), encoding="unicode"), (col1 - col0, row1 - row0), (row0, col0)


def _vrt_xml(infos, tiles, formats, kind, transform: Affine, width: int, height: int, crs: CRS,
             warped: bool) -> str:
    """A VRT giving the max of the tiles (masks, as 0/1) or the mean of those with data (probabilities).

    The mean is ``div`` of two inline VRTs: the sum of the tiles' probabilities, and the number of
    tiles with data at each pixel (each valid pixel scaled to 1); pixels no tile covers have count 0,
    which the outer source treats as nodata, so they come out NaN.
    """
    gt = ", ".join(repr(float(v)) for v in (transform.c, transform.a, transform.b, transform.f, transform.d,
                                             transform.e))
    header = f"  <SRS>{escape(crs.to_wkt())}</SRS>\n  <GeoTransform>{gt}</GeoTransform>\n"
    if kind == "mask":
        sources = []
        for info, (path, size, offset), fmt in zip(infos, tiles, formats):
            sources.append(_complex_source(path, size, offset, _mask_source_extra(info, fmt, warped)))
        return _vrt_dataset(width, height, header, "Byte", str(PREDICT_NODATA), "max", sources)
    sums, counts = [], []
    for info, (path, size, offset) in zip(infos, tiles):
        nodata = _nodata_xml(_probability_nodata(info, warped))
        scale = f"<ScaleOffset>0</ScaleOffset><ScaleRatio>{info.scale!r}</ScaleRatio>" if info.scale != 1 else ""
        sums.append(_complex_source(path, size, offset, nodata + scale))
        counts.append(_complex_source(path, size, offset, nodata + "<ScaleOffset>1</ScaleOffset>"
                                                                   "<ScaleRatio>0</ScaleRatio>"))
    total = _vrt_dataset(width, height, "", "Float32", None, "sum", sums)
    count = _vrt_dataset(width, height, "", "Float32", None, "sum", counts)
    return _vrt_dataset(width, height, header, "Float32", "nan", "div",
                        [_complex_source(total, None, None, ""),
                         _complex_source(count, None, None, "<NODATA>0</NODATA>")])
