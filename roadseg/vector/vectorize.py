"""Road masks to a cleaned centreline graph in GeoJSON: the ``roadseg vectorize`` pipeline.

Steps (each parameter in metres, converted with the raster's pixel size measured at its centre; for
rasters without georeferencing in pixels, or in metres when ``pixel_size`` is given):

1. clean the mask (fill holes smaller than ``min_hole`` m², drop blobs smaller than ``min_area`` m²);
2. skeletonize and build the graph (:mod:`roadseg.vector.skeleton_graph`);
3. prune spurs shorter than ``min_spur``, keeping dead ends at the raster border or at nodata;
4. close gaps up to ``max_gap`` that continue the road's direction (within ``max_angle`` degrees);
5. drop connected components shorter in total than ``min_length``;
6. Douglas-Peucker at ``simplify``, keeping end nodes;

When probabilities are known (a probability map read at ``threshold``, or ``prob`` beside a mask), each
line carries ``prob_mean`` and ``prob_min`` over the pixels its path runs through, taken before step 6
(:mod:`roadseg.vector.evidence`); with ``uncertainty`` (predict's map of the variance of its TTA views,
``<stem>_uncertainty`` beside ``<stem>_mask``) it carries ``uncertainty_mean`` over the same pixels. Maps
are matched to masks and checked by :mod:`roadseg.vector.evidence_maps`; a line whose pixels hold no
data in a map has None there. Every line carries ``gap_closed``, true where step 4 made (part of) it.

Then pixel centres go through the affine transform and are reprojected to ``out_crs`` (EPSG:4326 by
default, longitude first as RFC 7946 requires). ``length_m`` is measured on the WGS 84 ellipsoid.

Several georeferenced masks of one area (touching or overlapping) are mosaicked first
(:func:`roadseg.io.mosaic.mosaic_masks`) and vectorized as one raster, so a road crossing tile edges
comes out as one line. They must be on one grid, as for ``stitch``: tiles of one area in two CRSs, or off
the grid by a fraction of a pixel, are refused with stitch's message (vectorized one by one, every road
there would come out twice). Tiles apart from the others, whatever their CRS, and masks without
georeferencing are vectorized one by one.

A raster or mosaic larger than ``block_size`` pixels a side is never held whole: steps 1 and 2 run
block by block on windows read with a margin, and the scene's skeleton pixels make one graph
(:mod:`roadseg.vector.blocks`, :mod:`roadseg.vector.block_read`); steps 3 to 6, which need the whole
graph, then run as for one raster, so the result is the whole raster's. ``block_size`` 0 always reads
the whole raster.

A mask without georeferencing gives lines in pixel coordinates (x right, y down, pixel centres at +0.5),
marked by ``"coordinates": "pixel"`` and by a ``crs`` member naming a local pixel grid
(:data:`PIXEL_CRS`): GDAL and QGIS read that CRS instead of taking the pixels for longitude/latitude.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import numpy as np
import shapely
from affine import Affine
from rasterio.crs import CRS

from roadseg.errors import BadInputError, BadParameterError
from roadseg.io.masks import MaskFormat, MaskRaster, read_mask
from roadseg.validation import require
from roadseg.vector import graph_clean
from roadseg.vector.block_read import Scene, array_scene, open_scene
from roadseg.vector.blocks import (
    BlockLayout,
    Cleaning,
    dead_ends_to_keep,
    edge_evidence,
    pixel_polygons,
    scene_polygons,
    scene_skeleton,
    skeleton_near_nodata,
)
from roadseg.vector.evidence import PROBABILITY, UNCERTAINTY, EvidenceLayer, add_edge_evidence
from roadseg.vector.evidence_maps import attach_maps, match_maps
from roadseg.vector.geo import (
    LONLAT,
    PixelGeometry,
    lonlat_segment_lengths,
    parse_crs,
    pixel_centres_to_crs,
    pixel_geometry,
    reproject_xy,
)
from roadseg.vector.mask_clean import clean_mask
from roadseg.vector.skeleton_graph import build_graph, pixels_graph, skeletonize_mask

Progress = Callable[[str], None]
PIXEL_CRS = ('LOCAL_CS["roadseg pixel grid (x right, y down)",LOCAL_DATUM["image",32767],UNIT["pixel",1],'
             'AXIS["x",EAST],AXIS["y",SOUTH]]')
"""The CRS GeoJSON in pixel coordinates names: an engineering CRS, which GIS software cannot put on a map."""
STEPS = ("read", "clean", "skeletonize", "graph", "prune", "gaps", "filter", "simplify", "output")
DEFAULT_BLOCK_SIZE = 4096
"""Core size of blocks (pixels) for rasters larger than one block: a window of about 4500 x 4500 is read."""
MIN_BLOCK_SIZE = 16


@dataclass(frozen=True)
class VectorizeOptions:
    """Parameters of the pipeline; lengths in metres, areas in square metres (see the module docstring)."""

    min_hole: float = 20.0
    min_area: float = 50.0
    min_spur: float = 10.0
    max_gap: float = 10.0
    min_length: float = 20.0
    simplify: float = 1.0
    max_angle: float = graph_clean.DEFAULT_MAX_ANGLE
    out_crs: str = "EPSG:4326"  # or "source": the raster's own CRS
    threshold: float | None = None
    mask_format: MaskFormat = "auto"
    pixel_size: float | None = None
    polygons: bool = False
    mosaic: bool = True
    block_size: int = DEFAULT_BLOCK_SIZE  # 0: always the whole raster; see roadseg.vector.blocks

    def __post_init__(self) -> None:
        for name in ("min_hole", "min_area", "min_spur", "max_gap", "min_length", "simplify"):
            value = getattr(self, name)
            require(name, value, value >= 0 and math.isfinite(value), "a finite number >= 0")
        require("max_angle", self.max_angle, 0 < self.max_angle < 90, "between 0 and 90 degrees")
        require("threshold", self.threshold, self.threshold is None or 0 <= self.threshold <= 1, "in [0, 1]")
        require("pixel_size", self.pixel_size, self.pixel_size is None or self.pixel_size > 0, "> 0 metres")
        require("block_size", self.block_size, self.block_size == 0 or self.block_size >= MIN_BLOCK_SIZE,
                f"0 (the whole raster) or at least {MIN_BLOCK_SIZE} pixels")
        if self.out_crs != "source":
            parse_crs(self.out_crs)


@dataclass
class VectorizeResult:
    """The GeoJSON FeatureCollection and what it took to make it."""

    collection: dict
    graph: nx.MultiGraph
    crs: CRS | None
    sources: list[str]
    timings: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def n_features(self) -> int:
        return len(self.collection["features"])

    @property
    def total_length_m(self) -> float | None:
        lengths = [f["properties"].get("length_m") for f in self.collection["features"]]
        return None if any(x is None for x in lengths) else float(sum(lengths))

    def summary(self) -> dict:
        """A JSON-ready summary for ``--json``."""
        return {"features": self.n_features, "total_length_m": self.total_length_m,
                "crs": _crs_name(self.crs), "sources": self.sources, "counts": self.counts,
                "timings_s": {k: round(v, 3) for k, v in self.timings.items()}, "warnings": self.warnings}


class _Timer:
    """Adds each step's wall time to ``timings`` (summed over tiles) and reports the step to ``progress``."""

    def __init__(self, timings: dict[str, float], progress: Progress | None):
        self.timings, self.progress = timings, progress

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        if self.progress:
            self.progress(name)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start


def _crs_name(crs: CRS | None) -> str | None:
    if crs is None:
        return None
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()


def _output_crs(option: str, source_crs: CRS | None) -> CRS | None:
    if source_crs is None:
        return None
    return source_crs if option == "source" else parse_crs(option)


def vectorize(mask: np.ndarray | MaskRaster, options: VectorizeOptions | None = None, *,
              transform: Affine | None = None, crs: CRS | str | None = None, valid: np.ndarray | None = None,
              prob: np.ndarray | None = None, uncertainty: np.ndarray | None = None,
              progress: Progress | None = None) -> VectorizeResult:
    """Road centrelines (or areas) of one mask, as a GeoJSON FeatureCollection and a road graph.

    ``mask`` is an array (bool, 0/1, or probabilities read at ``options.threshold``) placed by
    ``transform`` and ``crs`` (pixels without them) with ``valid`` marking data, or a decoded
    :class:`~roadseg.io.masks.MaskRaster` that carries all of these and the name its features give as
    ``source`` (an array is ``"array"``). ``prob`` (probabilities on the mask's grid) gives each line its
    evidence; a mask read at ``options.threshold`` is its own. ``uncertainty`` (the variance of predict's
    TTA views, in [0, 0.25]) gives each line its ``uncertainty_mean``. Warns when the result is empty.
    Files: :func:`vectorize_files`.

    >>> import numpy as np
    >>> road = np.zeros((40, 80), bool); road[18:22, :] = True
    >>> result = vectorize(road, VectorizeOptions(pixel_size=1.0))
    >>> result.n_features, round(result.total_length_m)
    (1, 76)
    """
    options = options or VectorizeOptions()
    if isinstance(mask, MaskRaster):
        if any(given is not None for given in (transform, crs, valid, prob, uncertainty)):
            raise BadParameterError("mask", "is a MaskRaster, which carries its own transform, CRS, validity, "
                                    "probabilities and uncertainty")
        raster = mask
    else:
        raster = _array_raster(np.asarray(mask), options.threshold, transform, crs, valid)
        own = options.threshold is not None and prob is None  # probabilities read at a threshold: their own evidence
        probability = np.asarray(mask, dtype=np.float32) if own else _array_map(raster, prob, PROBABILITY)
        raster = dataclasses.replace(raster, probability=probability,
                                     uncertainty=_array_map(raster, uncertainty, UNCERTAINTY))
    result = _pipeline(raster, options, _Timer({}, progress))
    _emit(result)
    return result


def _array_raster(mask: np.ndarray, threshold: float | None, transform: Affine | None, crs: CRS | str | None,
                  valid: np.ndarray | None) -> MaskRaster:
    """A MaskRaster of an in-memory mask: road where non-zero (or >= ``threshold``) and valid."""
    if mask.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {mask.shape}")
    valid = np.ones(mask.shape, bool) if valid is None else np.asarray(valid, dtype=bool)
    road = valid & ((mask >= threshold) if threshold is not None else (mask > 0))
    crs = CRS.from_user_input(crs) if crs is not None else None
    return MaskRaster(road=road, valid=valid, transform=transform or Affine.identity(), crs=crs, source="array")


def _array_map(raster: MaskRaster, values: np.ndarray | None, layer: EvidenceLayer) -> np.ndarray | None:
    """An in-memory map of ``layer`` (``prob``, ``uncertainty``) checked against its mask: its shape, and
    values in the layer's range where there is data."""
    if values is None:
        return None
    values = np.asarray(values, dtype=np.float32)
    if values.shape != raster.road.shape:
        raise BadParameterError(layer.setting, f"must have the mask's shape {raster.road.shape}, got {values.shape}")
    held = values[raster.valid & ~np.isnan(values)]
    if held.size and not (held.min() >= 0 and held.max() <= layer.upper):
        raise BadParameterError(layer.setting, f"must hold {layer.what} in [0, {layer.upper:g}]")
    return values


def use_blocks(shape: tuple[int, int], options: VectorizeOptions) -> bool:
    """Whether a raster of ``shape`` is vectorized block by block: when ``block_size`` is set and the
    raster does not fit in one block."""
    return options.block_size > 0 and max(shape) > options.block_size


@dataclass
class _Run:
    """What every step of one raster's pipeline shares."""

    scene: Scene
    options: VectorizeOptions
    geometry: PixelGeometry
    out_crs: CRS | None
    timer: _Timer
    counts: dict[str, int] = field(default_factory=dict)


def _start(scene: Scene, options: VectorizeOptions, timer: _Timer) -> _Run:
    geometry = pixel_geometry(scene.transform, scene.crs, scene.shape, options.pixel_size)
    out_crs = _output_crs(options.out_crs, scene.crs if geometry.georeferenced else None)
    return _Run(scene, options, geometry, out_crs, timer)


def _cleaning(run: _Run) -> Cleaning:
    """The mask cleaning in pixels."""
    return Cleaning(min_hole=run.geometry.square_metres_to_pixels(run.options.min_hole),
                    min_area=run.geometry.square_metres_to_pixels(run.options.min_area))


def _pipeline(raster: MaskRaster, options: VectorizeOptions, timer: _Timer) -> VectorizeResult:
    """Run the pipeline on a decoded mask (see the module docstring) and return the result."""
    scene = array_scene(raster)
    if use_blocks(scene.shape, options):
        return _block_pipeline(scene, options, timer)
    run = _start(scene, options, timer)
    cleaning = _cleaning(run)
    with timer.step("clean"):
        road = clean_mask(raster.road, min_hole=cleaning.min_hole, min_area=cleaning.min_area, valid=raster.valid)
    road_pixels = int(np.count_nonzero(road))
    background = int(np.count_nonzero(raster.valid)) - road_pixels
    if options.polygons:
        with timer.step("output"):
            geoms = pixel_polygons(road, 0, 0)
        return _polygon_result(run, geoms, road_pixels)

    with timer.step("skeletonize"):
        skeleton = skeletonize_mask(road)
    with timer.step("graph"):
        graph = build_graph(skeleton, run.geometry)
        skeleton_pixels = int(np.count_nonzero(skeleton))
        del skeleton
    with timer.step("prune"):
        margin = _keep_margin(road_pixels, skeleton_pixels)
        keep = dead_ends_to_keep(graph, margin, lambda r, c: not raster.valid[r - margin:r + margin + 1,
                                                                            c - margin:c + margin + 1].all())

    def evidence(graph: nx.MultiGraph) -> None:
        add_edge_evidence(graph, {layer: getattr(raster, layer.attribute) for layer in scene.evidence}, raster.valid)

    return _graph_steps(run, graph, keep, evidence, (road_pixels, background))


def _block_pipeline(scene: Scene, options: VectorizeOptions, timer: _Timer) -> VectorizeResult:
    """The pipeline on a scene too large to hold: cleaned and skeletonized block by block into one graph
    (:mod:`roadseg.vector.blocks`), then cleaned as a whole, as :func:`_pipeline` does."""
    run = _start(scene, options, timer)
    cleaning = _cleaning(run)
    layout = BlockLayout(scene.shape, options.block_size, cleaning.margin())
    run.counts["blocks"] = layout.count
    if options.polygons:
        with timer.step("output"):
            geoms, road_pixels = scene_polygons(scene.read, layout, cleaning)
        return _polygon_result(run, geoms, road_pixels)
    with timer.step("skeletonize"):
        skeleton = scene_skeleton(scene.read, layout, cleaning)
    with timer.step("graph"):
        graph = pixels_graph(skeleton.flat, scene.shape, run.geometry)
    with timer.step("prune"):
        margin = _keep_margin(skeleton.road_pixels, skeleton.flat.size)
        keep = dead_ends_to_keep(graph, margin, skeleton_near_nodata(skeleton, scene.shape[1], margin))

    def evidence(graph: nx.MultiGraph) -> None:
        edge_evidence(graph, scene.read, layout, scene.evidence)

    return _graph_steps(run, graph, keep, evidence, (skeleton.road_pixels, skeleton.background_pixels))


def _keep_margin(road_pixels: int, skeleton_pixels: int) -> int:
    """How near the border or nodata a dead end is kept: the mean road width in pixels, at least 2."""
    width_px = road_pixels / skeleton_pixels if skeleton_pixels else 1.0
    return max(2, int(math.ceil(width_px)))


def _graph_steps(run: _Run, graph: nx.MultiGraph, keep: set[int], evidence: Callable[[nx.MultiGraph], None],
                 pixels: tuple[int, int]) -> VectorizeResult:
    """Steps 3 to 6 and the output, on the whole graph; ``pixels``: road and background pixel counts."""
    timer, options, geometry, counts = run.timer, run.options, run.geometry, run.counts
    counts["raw_edges"] = graph.number_of_edges()
    with timer.step("prune"):
        counts["spurs_pruned"] = graph_clean.prune_spurs(graph, options.min_spur, keep=keep, geometry=geometry)
    with timer.step("gaps"):
        counts["gaps_closed"] = graph_clean.close_gaps(graph, options.max_gap, geometry=geometry,
                                                       max_angle=options.max_angle)
    with timer.step("filter"):
        counts["components_dropped"] = graph_clean.drop_short_components(graph, options.min_length)
    with timer.step("simplify"):
        evidence(graph)  # from the pixel paths, which simplifying thins out
        graph_clean.simplify_edges(graph, options.simplify, geometry=geometry)
    with timer.step("output"):
        collection = _line_collection(graph, run.scene, geometry, run.out_crs)
    notes = [] if collection["features"] else [_why_empty(run.scene.source, *pixels)]
    return VectorizeResult(collection, graph, run.out_crs, [run.scene.source], timer.timings, counts, notes)


def _polygon_result(run: _Run, geoms: list, road_pixels: int) -> VectorizeResult:
    """Road areas as the result (no graph)."""
    with run.timer.step("output"):
        collection = _polygon_collection(geoms, run.scene, run.geometry, run.out_crs, run.options.simplify)
    notes = [] if collection["features"] else [f"{run.scene.source}: no road pixels; the output is empty"]
    return VectorizeResult(collection, nx.MultiGraph(), run.out_crs, [run.scene.source], run.timer.timings,
                           run.counts, notes)


def _why_empty(source: str, road_pixels: int, background_pixels: int) -> str:
    """Why a mask gave no lines: no road, road everywhere (a centreline needs background around it),
    or road that cleaning left nothing of (counts of the cleaned mask)."""
    if not road_pixels:
        return f"{source}: no roads found; the output is empty"
    if not background_pixels:
        return (f"{source}: road covers the whole raster (every pixel with data), one blob with no centreline "
                "to find; the output is empty (check that it is a road mask, not an inverted one)")
    return (f"{source}: its {road_pixels} road pixel(s) left no line long enough to keep after cleaning; "
            "the output is empty")


def _to_output(rows: np.ndarray, cols: np.ndarray, raster: Scene, geometry: PixelGeometry,
               out_crs: CRS | None, centres: bool = True):
    """Pixel positions to output coordinates, and to lon/lat for measuring (None without georeferencing)."""
    if not geometry.georeferenced:
        offset = 0.5 if centres else 0.0
        return cols + offset, rows + offset, None, None
    shift = 0.0 if centres else -0.5
    xs, ys = pixel_centres_to_crs(rows + shift, cols + shift, raster.transform)
    out_x, out_y = reproject_xy(xs, ys, raster.crs, out_crs)
    if out_crs == LONLAT:
        return out_x, out_y, out_x, out_y
    lon, lat = reproject_xy(xs, ys, raster.crs, LONLAT)
    return out_x, out_y, lon, lat


def _decimals(crs: CRS | None) -> int:
    if crs is None:
        return 3
    return 9 if crs.is_geographic else 3


def _line_collection(graph: nx.MultiGraph, raster: Scene, geometry: PixelGeometry,
                     out_crs: CRS | None) -> dict:
    edges = list(graph.edges(keys=True, data=True))
    paths = [data["path"] for _, _, _, data in edges]
    starts = [data["start"] for _, _, _, data in edges]
    features = []
    if edges:
        all_rc = np.concatenate(paths)
        xs, ys, lon, lat = _to_output(all_rc[:, 0], all_rc[:, 1], raster, geometry, out_crs)
        bounds = np.cumsum([0] + [len(p) for p in paths])
        digits = _decimals(out_crs)
        boxes = _tile_boxes(raster)
        for index, ((u, v, _key, data), start) in enumerate(zip(edges, starts)):
            a, b = bounds[index], bounds[index + 1]
            coords = np.round(np.column_stack([xs[a:b], ys[a:b]]), digits).tolist()
            if lon is not None:
                length_m = float(lonlat_segment_lengths(lon[a:b], lat[a:b]).sum())
            elif geometry.metric:
                length_m = geometry.path_length(data["path"])
            else:
                length_m = None
            other = v if start == u else u
            properties = {"id": index, "length_m": None if length_m is None else round(length_m, 3),
                          "length_px": round(graph_clean_length_px(data["path"]), 2),
                          "u": int(start), "v": int(other), "source": _source_of(data["path"], raster, boxes)}
            properties.update(_evidence(data, raster))
            if raster.weights:
                properties["weights"] = raster.weights
            data["id"] = index
            data["length_m"] = properties["length_m"]
            data["coords"] = coords
            features.append({"type": "Feature", "id": index, "properties": properties,
                             "geometry": {"type": "LineString", "coordinates": coords}})
        node_ids = list(graph.nodes)
        rc = np.array([graph.nodes[n]["rc"] for n in node_ids], dtype=np.float64).reshape(-1, 2)
        nx_, ny_, _, _ = _to_output(rc[:, 0], rc[:, 1], raster, geometry, out_crs)
        for node, x, y in zip(node_ids, nx_, ny_):
            graph.nodes[node]["x"], graph.nodes[node]["y"] = float(x), float(y)
    return feature_collection(features, out_crs, georeferenced=geometry.georeferenced)


def _evidence(data: dict, raster: Scene) -> dict:
    """An edge's ``gap_closed``, and the fields of the maps the scene carries (``prob_mean``, ``prob_min``,
    ``uncertainty_mean``; None without data)."""
    found: dict = {"gap_closed": bool(data.get("gap_closed", False))}
    for layer in raster.evidence:
        for name in layer.fields:
            value = data.get(name)
            found[name] = None if value is None else round(value, layer.digits)
    return found


def _tile_boxes(raster: Scene) -> np.ndarray | None:
    """Each tile of a mosaic as ``(row0, col0, row1, col1)`` in pixel centres; None for one raster."""
    return np.array([box for _, *box in raster.tiles], dtype=np.float64) - 0.5 if raster.tiles else None


def _source_of(path: np.ndarray, raster: Scene, boxes: np.ndarray | None) -> str:
    """The file a line came from; for a mosaic (``boxes`` its tiles'), the tiles it crosses joined by ';'."""
    if boxes is None:
        return raster.source
    low, high = path.min(axis=0), path.max(axis=0)
    near = np.flatnonzero((low[0] <= boxes[:, 2]) & (high[0] >= boxes[:, 0]) & (low[1] <= boxes[:, 3])
                          & (high[1] >= boxes[:, 1]))  # bounding boxes meet: a cheap test before shapely's
    line = shapely.LineString(path if len(path) > 1 else np.vstack([path, path]))
    names = [raster.tiles[i][0] for i in near if line.intersects(shapely.box(*boxes[i]))]
    return ";".join(names) or raster.source


def graph_clean_length_px(path: np.ndarray) -> float:
    """Length of a row/col path in pixel steps."""
    return float(np.hypot(*np.diff(path, axis=0).T).sum()) if len(path) > 1 else 0.0


def feature_collection(features: list[dict], crs: CRS | None, *, georeferenced: bool = True) -> dict:
    """A FeatureCollection; a ``crs`` member only when the CRS is not RFC 7946's lon/lat default.

    RFC 7946 readers assume WGS 84 lon/lat; GDAL and QGIS read the (pre-RFC) named ``crs`` member, so
    an ``out_crs`` other than EPSG:4326 still opens in the right place there. Rasters without
    georeferencing give pixel coordinates (x right, y down, pixel centres at +0.5), marked by
    ``"coordinates": "pixel"`` and a ``crs`` member naming :data:`PIXEL_CRS`, so that GDAL and QGIS do
    not take them for longitude/latitude.
    """
    collection: dict = {"type": "FeatureCollection", "features": features}
    if not georeferenced:
        collection["coordinates"] = "pixel"
        collection["crs"] = {"type": "name", "properties": {"name": PIXEL_CRS}}
    elif crs is not None and crs != LONLAT:
        epsg = crs.to_epsg()
        name = f"urn:ogc:def:crs:EPSG::{epsg}" if epsg else crs.to_wkt()
        collection["crs"] = {"type": "name", "properties": {"name": name}}
    return collection


def _polygon_collection(geoms: list, raster: Scene, geometry: PixelGeometry, out_crs: CRS | None,
                        tolerance: float) -> dict:
    """Road areas (polygons in pixel corners, x = col, y = row) as features, simplified at ``tolerance``
    in the metric frame."""
    scale = np.array([geometry.col_m, geometry.row_m])
    features = []
    digits = _decimals(out_crs)

    def to_output(xy: np.ndarray) -> np.ndarray:
        xs, ys, _, _ = _to_output(xy[:, 1], xy[:, 0], raster, geometry, out_crs, centres=False)
        return np.column_stack([xs, ys])

    for index, geom in enumerate(geoms):
        metric = shapely.transform(geom, lambda xy: xy * scale)
        if tolerance > 0:
            metric = shapely.simplify(metric, tolerance, preserve_topology=True)
        area = float(metric.area) if geometry.metric else None
        pixel_geom = shapely.transform(metric, lambda xy: xy / scale)
        out = shapely.transform(pixel_geom, to_output)
        out = shapely.set_precision(out, 10.0 ** -digits) if digits else out
        features.append({"type": "Feature", "id": index,
                         "properties": {"id": index, "area_m2": None if area is None else round(area, 2),
                                        "source": raster.source,
                                        **({"weights": raster.weights} if raster.weights else {})},
                         "geometry": shapely.geometry.mapping(out)})
    return feature_collection(features, out_crs, georeferenced=geometry.georeferenced)


def _emit(result: VectorizeResult) -> None:
    for note in result.warnings:
        warnings.warn(note, stacklevel=3)


def vectorize_files(paths: Sequence[str | Path], options: VectorizeOptions | None = None, *,
                    prob: Sequence[str | Path] = (), uncertainty: Sequence[str | Path] = (),
                    progress: Progress | None = None) -> VectorizeResult:
    """Vectorize mask files into one FeatureCollection (mosaicking georeferenced tiles of one area).

    ``prob`` names probability maps on the masks' grids, whose evidence each line then carries, and
    ``uncertainty`` predict's uncertainty maps (``uncertainty_mean``): one for one mask, else each
    ``<stem>_prob`` (``<stem>_uncertainty``) beside its ``<stem>_mask`` (``<stem>_prob`` for probability
    maps read at ``threshold``; see :func:`~roadseg.vector.evidence_maps.match_maps`). Raises
    :class:`BadInputError` naming the first unreadable or unmatched file; warns when the result is empty.
    """
    from roadseg.io.mosaic import group_tiles, mosaic_grid  # stitch imports nothing from here

    opts = options or VectorizeOptions()
    if not paths:
        raise ValueError("no input masks given")
    if prob and opts.threshold is not None:
        raise BadParameterError("prob", "is for masks: inputs read at `threshold` are probability maps, "
                                "their own evidence")
    maps_of = _match_all([Path(p) for p in paths], {PROBABILITY: prob, UNCERTAINTY: uncertainty}, opts)
    timings: dict[str, float] = {}
    timer = _Timer(timings, progress)
    with timer.step("read"):
        groups = group_tiles([Path(p) for p in paths]) if opts.mosaic else [[Path(p)] for p in paths]
    results = []
    for group in groups:
        with timer.step("read"):
            grid = mosaic_grid(group)
        maps = {layer: [found[path] for path in group] for layer, found in maps_of.items()}
        if use_blocks((grid.height, grid.width), opts):
            with open_scene(group, opts.mask_format, opts.threshold, maps) as scene:
                results.append(_block_pipeline(scene, opts, timer))
            continue
        with timer.step("read"):
            raster = attach_maps(_read_mosaic(group, opts), maps)
        results.append(_pipeline(raster, opts, timer))
    result = _combine(results, timings)
    _emit(result)
    return result


def _match_all(masks: list[Path], given: dict[EvidenceLayer, Sequence[str | Path]], opts: VectorizeOptions
               ) -> dict[EvidenceLayer, dict[Path, Path]]:
    """Each given map's file for each mask, by layer (inputs read at ``threshold`` are named ``_prob``)."""
    mask_suffix = "_mask" if opts.threshold is None else PROBABILITY.suffix
    return {layer: match_maps(masks, [Path(p) for p in files], layer, mask_suffix)
            for layer, files in given.items() if files}


def _read_mosaic(group: list[Path], opts: VectorizeOptions) -> MaskRaster:
    """One mask file, or the mosaic of several (probabilities read at ``opts.threshold``)."""
    from roadseg.io.mosaic import mosaic_masks

    if len(group) == 1:
        return read_mask(group[0], mask_format=opts.mask_format, threshold=opts.threshold)
    return mosaic_masks(group, mask_format=opts.mask_format, threshold=opts.threshold)


def _combine(results: list[VectorizeResult], timings: dict[str, float]) -> VectorizeResult:
    """One FeatureCollection from several: ids renumbered, node ids kept unique."""
    if len(results) == 1:
        results[0].timings = timings
        return results[0]
    georef = {"coordinates" not in r.collection for r in results}
    if len(georef) > 1:
        raise BadInputError(f"{', '.join(s for r in results for s in r.sources)}: mixes georeferenced and "
                            "plain images; vectorize them separately")
    crss = {_crs_name(r.crs) for r in results}
    if len(crss) > 1:
        raise BadInputError(f"inputs are in different CRSs ({', '.join(sorted(map(str, crss)))}); with "
                            "`out_crs` source they cannot share one output: pick one with `out_crs` EPSG:XXXX")
    graph = nx.MultiGraph()
    features = []
    counts: dict[str, int] = {}
    notes = []
    node_offset = 0
    for result in results:
        relabel = {n: n + node_offset for n in result.graph.nodes}
        graph.update(nx.relabel_nodes(result.graph, relabel))
        for feature in result.collection["features"]:
            props = dict(feature["properties"])
            props["id"] = len(features)
            if "u" in props:
                props["u"] += node_offset
                props["v"] += node_offset
            features.append({**feature, "id": props["id"], "properties": props})
        node_offset += (max(result.graph.nodes) + 1) if result.graph.number_of_nodes() else 0
        for key, value in result.counts.items():
            counts[key] = counts.get(key, 0) + value
        notes.extend(result.warnings)
    first = results[0]
    collection = {**{k: v for k, v in first.collection.items() if k != "features"}, "features": features}
    return VectorizeResult(collection, graph, first.crs, [s for r in results for s in r.sources], timings,
                           counts, notes)
