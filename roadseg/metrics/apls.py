"""APLS (Average Path Length Similarity), the SpaceNet road-network metric, on graphs in metres.

A road graph here is an undirected :class:`networkx.Graph` whose nodes carry ``x`` and ``y`` (metres
in a local metric CRS) and whose edges carry ``length`` (metres) and optionally ``geometry`` (a shapely
``LineString`` in the same metres). APLS as SpaceNet defines it (Van Etten et al., 2018), following the
rules of CosmiQ's reference implementation (``apls`` 0.1.0):

1. graph: lines join at the vertices they share, as in SpaceNet's labels; a line that crosses another
   without a shared vertex is an overpass, not a junction (``node_crossings`` joins every crossing, for
   line files drawn without junction vertices). Points where exactly two lines meet are merged away, so
   nodes are junctions and ends. A loop or a second road between the same two junctions is cut to fit a
   simple graph; those cut points are marked ``split`` and are never control points;
2. control points: the nodes, plus points along every road by the reference's rule
   (:func:`control_positions`): none on a road shorter than ``0.75 * spacing``, its midpoint up to
   ``spacing`` (50 m), else ``ceil(length / spacing) - 1`` points evenly spaced, with no short stub;
3. each control point is snapped onto the other graph, at the nearest point of its edges if that lies
   within ``snap`` metres (4), inserting a node there; a control point with nothing in reach is missing;
4. for every pair of control points joined by a path, the cost is ``min(1, |L - L'| / L)``, ``L`` the
   shortest path in the graph scored and ``L'`` between the snapped points (1 when either is missing
   or they are not connected); the direction scores ``1 - mean(cost)``;
5. this is done from the ground truth onto the proposal and back, and the two are combined by their
   harmonic mean.

One deliberate difference: a line (or a segment) drawn twice counts once here. The reference means to
drop such duplicates too, but its ``create_edge_linestrings`` flags a duplicate twice (it matches the
seen geometry and its reverse) and so deletes both copies, losing the road. Smaller differences remain
(the largest on the parity cases of tests/metrics/test_apls_parity.py is 0.0011): the reference keeps
every vertex of a ring that touches no other road as a node, drops components whose paths are all under
5 m, and measures in UTM; with its command line's ``allow_renaming`` a control point snapping within
5 cm of another takes its node (roadseg keeps both, as ``make_graphs``' default does).

Graphs built from GeoJSON (:func:`graph_from_geojson`) report their length measured on the WGS 84
ellipsoid from longitude/latitude, so a graph's reported length never depends on the projection it is
scored in, or on the other file of the comparison.
"""

from __future__ import annotations

import itertools
import json
import math
import warnings
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import shapely
from shapely.errors import ShapelyError
from shapely.geometry import LineString, Point
from shapely.ops import substring

from roadseg.errors import BadInputError, BadParameterError
from roadseg.io.geojson import geojson_lines

CONTROL_SPACING_M = 50.0
SNAP_DISTANCE_M = 4.0
_EPS = 1e-6


# ---------------------------------------------------------------------------------------------------
# building graphs

def _edge_line(graph: nx.Graph, u: Hashable, v: Hashable) -> LineString:
    """The edge's geometry oriented from ``u`` to ``v`` (a straight segment when it has none)."""
    start = (graph.nodes[u]["x"], graph.nodes[u]["y"])
    line = graph.edges[u, v].get("geometry")
    if line is None:
        return LineString([start, (graph.nodes[v]["x"], graph.nodes[v]["y"])])
    first, last = line.coords[0], line.coords[-1]
    if math.dist(first, start) <= math.dist(last, start):
        return line
    return LineString(list(line.coords)[::-1])


class _GraphBuilder:
    """Adds lines to a simple graph, merging end points that coincide.

    A loop or a second road between the same two nodes does not fit a simple graph, so it is cut into
    pieces; the cut points are nodes marked ``split`` (see :func:`_is_split`), which are not control
    points. A line already in the graph (the same vertices, either way round) is not added twice.
    """

    def __init__(self, graph: nx.Graph | None = None, tolerance: float = 1e-3) -> None:
        self.graph = graph if graph is not None else nx.Graph()
        self.tolerance = tolerance
        self._by_key: dict[tuple[int, int], Hashable] = {}
        self._drawn: set[tuple] = set()
        self._next = 0
        for node, data in self.graph.nodes(data=True):
            self._by_key.setdefault(self._key(data["x"], data["y"]), node)
            if isinstance(node, int):
                self._next = max(self._next, node + 1)

    def _key(self, x: float, y: float) -> tuple[int, int]:
        return round(x / self.tolerance), round(y / self.tolerance)

    def node_at(self, x: float, y: float) -> Hashable:
        key = self._key(x, y)
        node = self._by_key.get(key)
        if node is None:
            while self._next in self.graph:
                self._next += 1
            node = self._next
            self.graph.add_node(node, x=float(x), y=float(y))
            self._by_key[key] = node
        return node

    def _add_pieces(self, line: LineString, u: Hashable, v: Hashable, cuts: list[float]) -> None:
        """Add ``line`` from ``u`` to ``v`` cut at ``cuts`` (metres along it) by new nodes marked ``split``:
        nodes of this line alone, which no other line joins, since no input vertex is there."""
        ends = [u]
        for position in cuts:
            point = line.interpolate(position)
            while self._next in self.graph:
                self._next += 1
            self.graph.add_node(self._next, x=point.x, y=point.y, split=True)
            ends.append(self._next)
        ends.append(v)
        bounds = [0.0, *cuts, line.length]
        for a, b, n1, n2 in zip(bounds[:-1], bounds[1:], ends[:-1], ends[1:]):
            piece = substring(line, a, b)
            self.graph.add_edge(n1, n2, length=float(piece.length), geometry=piece)

    def add_line(self, line: LineString) -> None:
        if line.is_empty or line.length <= _EPS:
            return
        coords = tuple(line.coords)
        key = min(coords, coords[::-1])
        if key in self._drawn:
            return  # the same road drawn twice counts once
        self._drawn.add(key)
        u = self.node_at(*line.coords[0])
        v = self.node_at(*line.coords[-1])
        if u == v:  # a loop: three pieces keep the graph simple
            self._add_pieces(line, u, v, [line.length / 3, 2 * line.length / 3])
        elif self.graph.has_edge(u, v):  # a parallel road: split it so both survive
            self._add_pieces(line, u, v, [line.length / 2])
        else:
            self.graph.add_edge(u, v, length=float(line.length), geometry=line)


def _is_split(graph: nx.Graph, node: Hashable) -> bool:
    """Whether ``node`` only cuts a loop or a parallel road to fit a simple graph: it is no control point."""
    return bool(graph.nodes[node].get("split")) and graph.degree(node) == 2


def _unique_segments(lines: list[LineString]) -> list[LineString]:
    """The distinct segments of ``lines`` (a segment drawn twice, either way round, once)."""
    ends = [np.stack([coords[:-1], coords[1:]], axis=1)
            for coords in (shapely.get_coordinates(line) for line in lines) if len(coords) > 1]
    segments = np.concatenate(ends)  # (n, 2 ends, 2)
    segments = segments[np.any(segments[:, 0] != segments[:, 1], axis=1)]
    flip = (segments[:, 0, 0] > segments[:, 1, 0]) | (
        (segments[:, 0, 0] == segments[:, 1, 0]) & (segments[:, 0, 1] > segments[:, 1, 1]))
    segments[flip] = segments[flip][:, ::-1]
    unique = np.unique(segments.reshape(-1, 4), axis=0).reshape(-1, 2, 2)
    return list(shapely.linestrings(unique))


def node_lines(lines: Iterable[LineString], *, crossings: bool = False) -> list[LineString]:
    """The roads between junctions: lines cut at junctions and merged through points where exactly two meet.

    A junction is a vertex that lines share (SpaceNet's rule: a line crossing another without a shared
    vertex is an overpass); with ``crossings``, every point where lines cross or touch is one. Parts drawn
    twice count once. A road drawn as several features becomes one piece between junctions.
    """
    parts = [line for line in lines if not line.is_empty]
    if not parts:
        return []
    if crossings:
        noded = shapely.unary_union(parts)
    else:
        segments = _unique_segments(parts)
        if not segments:
            return []
        noded = shapely.MultiLineString(segments)
    merged = shapely.line_merge(noded)
    return [piece for piece in getattr(merged, "geoms", [merged]) if isinstance(piece, LineString)]


def graph_from_lines(lines: Iterable[LineString], *, tolerance: float = 1e-3,
                     noded: bool = False, node_crossings: bool = False) -> nx.Graph:
    """Build the road graph of metric lines: junctions and ends as nodes, the lines as edges.

    Lines are noded first (:func:`node_lines`: at shared vertices, or also where they cross with
    ``node_crossings``) unless ``noded`` says they already are. End points closer than ``tolerance``
    metres are one node.
    """
    builder = _GraphBuilder(nx.Graph(), tolerance)
    for piece in (list(lines) if noded else node_lines(lines, crossings=node_crossings)):
        builder.add_line(piece)
    return builder.graph


def _crs_of(data: Mapping[str, Any], where: str = "GeoJSON"):
    """The CRS a GeoJSON's coordinates are in: its (pre-RFC 7946) ``crs`` member, else lon/lat WGS 84.

    Pixel coordinates (vectorize's output for a mask without georeferencing) have no place on the map.
    """
    from roadseg.vector.geo import geojson_member_crs

    if data.get("coordinates") == "pixel":
        raise BadInputError(f"{where}: its coordinates are pixels, not places on the map; APLS needs lines in "
                            "longitude/latitude or a metric CRS (vectorize a georeferenced mask)")
    try:
        return geojson_member_crs(data)
    except ValueError as error:
        raise BadInputError(f"{where}: {error}; give coordinates in longitude/latitude (RFC 7946)") from error


def _lines_of(data: Mapping[str, Any], where: str = "GeoJSON") -> tuple[list[LineString], int]:
    """LineStrings of a FeatureCollection, Feature or geometry, and how many other geometries were skipped."""
    try:
        coords, skipped = geojson_lines(data)
        return [LineString(line) for line in coords], skipped
    except (ValueError, ShapelyError) as error:
        raise BadInputError(f"{where}: a geometry is not valid GeoJSON ({error}); "
                            "give LineString features") from error


def _where(source: Mapping[str, Any] | Path | str) -> str:
    return "GeoJSON" if isinstance(source, Mapping) else str(source)


def load_geojson(source: Mapping[str, Any] | Path | str) -> dict[str, Any]:
    """Read a GeoJSON file (or pass a parsed dict through), with a one-line error naming the file; a
    GeoPackage, FlatGeobuf or GeoParquet file is read as GeoJSON in longitude/latitude
    (:func:`roadseg.io.vector_formats.read_roads`)."""
    if isinstance(source, Mapping):
        return dict(source)
    path = Path(source)
    if path.suffix.lower() in (".gpkg", ".fgb", ".parquet"):
        from roadseg.io.vector_formats import read_roads

        return read_roads(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadInputError(f"{path}: not a readable GeoJSON file ({error}); "
                            "give a FeatureCollection of LineStrings") from error
    if not isinstance(data, dict) or "type" not in data:
        raise BadInputError(f"{path}: not GeoJSON (no 'type' member); "
                            "give a FeatureCollection of LineStrings")
    return data


def _lonlat_box(source: Mapping[str, Any] | Path | str) -> list[tuple[float, float]]:
    """The corners of the bounding box of a GeoJSON's lines, in longitude/latitude (none without lines)."""
    from rasterio.warp import transform

    data = load_geojson(source)
    lines, _ = _lines_of(data, _where(source))
    if not lines:
        return []
    minx, miny, maxx, maxy = shapely.total_bounds(lines)
    xs, ys = [minx, maxx, minx, maxx], [miny, miny, maxy, maxy]
    src = _crs_of(data, _where(source))
    if not src.is_geographic:
        xs, ys = transform(src, "OGC:CRS84", xs, ys)
    return list(zip(xs, ys))


def local_metric_crs(*sources: Mapping[str, Any] | Path | str) -> str:
    """An azimuthal equidistant CRS centred on the lines of all ``sources`` together: distances near the
    centre are true metres.

    Give it every file of a comparison, and use it for all their graphs: they then share coordinates,
    and no file is measured far from the centre (an empty ground truth does not put it at 0, 0).
    """
    corners = [corner for source in sources for corner in _lonlat_box(source)]
    if not corners:
        return "+proj=aeqd +lat_0=0 +lon_0=0 +datum=WGS84 +units=m +no_defs"
    lon, lat = np.asarray(corners).T
    cx, cy = (lon.min() + lon.max()) / 2, (lat.min() + lat.max()) / 2
    return f"+proj=aeqd +lat_0={cy:.8f} +lon_0={cx:.8f} +datum=WGS84 +units=m +no_defs"


def _ground_length(coords: list[np.ndarray], src) -> float:
    """Length in metres of lines in ``src`` coordinates, measured on the WGS 84 ellipsoid: the same
    whatever CRS the graph is then projected to."""
    from roadseg.vector.geo import LONLAT, lonlat_segment_lengths, reproject_xy

    total = 0.0
    for part in coords:
        lon, lat = (part[:, 0], part[:, 1]) if src.is_geographic else reproject_xy(part[:, 0], part[:, 1], src, LONLAT)
        total += float(lonlat_segment_lengths(lon, lat).sum())
    return total


def graph_from_geojson(source: Mapping[str, Any] | Path | str, *, crs: str | None = None,
                       node_crossings: bool = False) -> nx.Graph:
    """Build a metric road graph from the LineStrings of a GeoJSON file or dict.

    Coordinates are read in the file's ``crs`` member (longitude/latitude WGS 84 when absent, as RFC
    7946 says) and projected to ``crs``, a metric CRS; by default :func:`local_metric_crs` of the data.
    Give both graphs of a comparison the same ``crs``. Other geometry types are skipped with a warning.
    The graph's ``length_m`` (what :func:`graph_length` reports) is measured on the ellipsoid. Lines join
    where they share a vertex; also where they cross with ``node_crossings`` (see :func:`node_lines`).
    """
    from rasterio.crs import CRS
    from rasterio.warp import transform

    data = load_geojson(source)
    lines, skipped = _lines_of(data, _where(source))
    if skipped:
        warnings.warn(f"{_where(source)}: {skipped} geometries that are not lines skipped", stacklevel=2)
    target = CRS.from_user_input(crs if crs is not None else local_metric_crs(data))
    if not target.is_projected:
        raise BadParameterError("crs", f"must be a projected (metric) CRS, got {crs!r}")
    src = _crs_of(data, _where(source))
    projected: list[LineString] = []
    # noded in the file's own coordinates, where junctions were drawn exactly
    lines = node_lines(lines, crossings=node_crossings)
    if lines:
        coords = [np.asarray(line.coords)[:, :2] for line in lines]
        stacked = np.concatenate(coords)
        xs, ys = transform(src, target, stacked[:, 0].tolist(), stacked[:, 1].tolist())
        xy = np.column_stack([xs, ys])
        factor = target.linear_units_factor[1] if target.is_projected else 1.0
        xy = xy * factor
        start = 0
        for part in coords:
            projected.append(LineString(xy[start:start + len(part)]))
            start += len(part)
    graph = graph_from_lines(projected, noded=True)
    graph.graph["crs"] = target.to_string()
    graph.graph["length_m"] = _ground_length(coords, src) if lines else 0.0
    return graph


# ---------------------------------------------------------------------------------------------------
# control points and snapping

def control_positions(length: float, spacing: float = CONTROL_SPACING_M) -> list[float]:
    """Where the control points of an edge ``length`` metres long go, in metres from one end (SpaceNet's
    rule, ``create_graph_midpoints``): none under ``0.75 * spacing``, the midpoint up to ``spacing``, else
    ``ceil(length / spacing) - 1`` points evenly spaced, so that no piece is shorter than the others.

    >>> control_positions(30), control_positions(50), control_positions(120)
    ([], [25.0], [40.0, 80.0])
    """
    if length < 0.75 * spacing:
        return []
    if length <= spacing:
        return [length / 2]
    count = math.ceil(length / spacing)
    return [length * i / count for i in range(1, count)]


def _roads(graph: nx.Graph) -> list[tuple[list[Hashable], LineString]]:
    """Each road of ``graph`` as its chain of nodes and its line: an edge, or the pieces a loop or a
    parallel road was cut into, joined again through their split nodes."""
    seen: set[frozenset] = set()
    roads = []
    for start in graph.nodes():
        if _is_split(graph, start):
            continue
        for first in graph.neighbors(start):
            if frozenset((start, first)) in seen:
                continue
            chain = [start, first]
            while _is_split(graph, chain[-1]):
                chain.append(next(n for n in graph.neighbors(chain[-1]) if n != chain[-2]))
            seen.update(frozenset(pair) for pair in zip(chain[:-1], chain[1:]))
            coords = [_edge_line(graph, a, b).coords for a, b in zip(chain[:-1], chain[1:])]
            roads.append((chain, LineString([coords[0][0], *(p for part in coords for p in part[1:])])))
    return roads


def add_control_points(graph: nx.Graph, spacing: float = CONTROL_SPACING_M) -> nx.Graph:
    """A copy of ``graph`` with control points as nodes along each road, placed by
    :func:`control_positions` (loops and parallel roads measured whole, their split nodes left out).

    Each control point is a node of its own road: two roads that cross without a junction stay apart
    even where their control points fall on the same spot.
    """
    if spacing <= 0:
        raise ValueError(f"control-point spacing must be > 0 metres, got {spacing}")
    out = graph.copy()
    fresh = itertools.count(max((node + 1 for node in graph if isinstance(node, int)), default=0))
    for chain, line in _roads(graph):
        positions = control_positions(line.length, spacing)
        if not positions:
            continue
        out.remove_edges_from(zip(chain[:-1], chain[1:]))
        out.remove_nodes_from(chain[1:-1])
        ends = [chain[0]]
        for position in positions:
            point = line.interpolate(position)
            ends.append(next(fresh))
            out.add_node(ends[-1], x=point.x, y=point.y)
        ends.append(chain[-1])
        bounds = [0.0, *positions, line.length]
        for a, b, u, v in zip(bounds[:-1], bounds[1:], ends[:-1], ends[1:]):
            pieces = [(u, v, substring(line, a, b))]
            if out.has_edge(u, v):  # the second half of a loop with one control point
                middle = line.interpolate((a + b) / 2)
                split = next(fresh)
                out.add_node(split, x=middle.x, y=middle.y, split=True)
                pieces = [(u, split, substring(line, a, (a + b) / 2)), (split, v, substring(line, (a + b) / 2, b))]
            for n1, n2, piece in pieces:
                out.add_edge(n1, n2, length=float(piece.length), geometry=piece)
    return out


def control_nodes(graph: nx.Graph) -> list[Hashable]:
    """The nodes of ``graph`` that are control points: all but the split nodes of loops and parallel roads."""
    return [node for node in graph.nodes() if not _is_split(graph, node)]


def snap_points(graph: nx.Graph, points: Mapping[Hashable, tuple[float, float]],
                snap: float = SNAP_DISTANCE_M) -> tuple[nx.Graph, dict[Hashable, Hashable]]:
    """Insert each point as a node of a copy of ``graph`` at the nearest point of its edges within ``snap``.

    Returns the new graph and ``{point key: node}`` for the points that found an edge in reach.
    """
    out = graph.copy()
    edges = list(graph.edges())
    mapping: dict[Hashable, Hashable] = {}
    if not edges or not points:
        return out, mapping
    lines = [_edge_line(graph, u, v) for u, v in edges]
    tree = shapely.STRtree(lines)
    keys = list(points)
    geoms = [Point(points[key]) for key in keys]
    (point_index, line_index), _ = tree.query_nearest(geoms, max_distance=snap, return_distance=True,
                                                       all_matches=False)
    cuts: dict[int, list[tuple[float, Hashable]]] = {}
    for p, e in zip(point_index.tolist(), line_index.tolist()):
        cuts.setdefault(e, []).append((lines[e].project(geoms[p]), keys[p]))
    for e, items in cuts.items():
        u, v = edges[e]
        line = lines[e]
        length = line.length
        inner: list[float] = []
        for position, key in sorted(items, key=lambda item: item[0]):
            if position <= _EPS:
                mapping[key] = u
            elif position >= length - _EPS:
                mapping[key] = v
            else:
                if not inner or position - inner[-1] > _EPS:
                    inner.append(position)
                mapping[key] = ("snap", e, len(inner) - 1)
        if not inner:
            continue
        out.remove_edge(u, v)
        chain = [u, *[("snap", e, i) for i in range(len(inner))], v]
        for i, position in enumerate(inner):
            point = line.interpolate(position)
            out.add_node(("snap", e, i), x=point.x, y=point.y)
        bounds = [0.0, *inner, length]
        for (a, b), (n1, n2) in zip(zip(bounds[:-1], bounds[1:]), zip(chain[:-1], chain[1:])):
            piece = substring(line, a, b)
            out.add_edge(n1, n2, length=float(piece.length), geometry=piece)
    return out, mapping


# ---------------------------------------------------------------------------------------------------
# the metric

@dataclass(frozen=True)
class DirectionScore:
    """One direction of APLS: control points of ``source`` snapped onto ``target``."""

    score: float
    """``1 - mean(cost)`` over connected pairs of control points; nan when there are none."""
    paths: int
    """Connected pairs of control points in the source graph."""
    control_points: int
    snapped: int
    """Control points that found the other graph within the snap distance."""


@dataclass(frozen=True)
class AplsResult:
    """APLS and its two directions; lengths in metres."""

    apls: float
    truth_onto_proposal: DirectionScore
    proposal_onto_truth: DirectionScore
    truth_length_m: float
    proposal_length_m: float


def graph_length(graph: nx.Graph) -> float:
    """The road length of ``graph`` in metres: its ``length_m`` measured on the ellipsoid when it was built
    from GeoJSON, else the total length of its edges."""
    if "length_m" in graph.graph:
        return float(graph.graph["length_m"])
    return float(sum(length for _, _, length in graph.edges(data="length", default=0.0)))


_BLOCK_ROWS = 256
"""Shortest-path rows computed at once: bounds memory at 256 x nodes float64 per graph."""


def _csr(graph: nx.Graph, nodes: list[Hashable]):
    """The graph as a symmetric sparse matrix of edge lengths over ``nodes`` (in that order)."""
    from scipy.sparse import csr_matrix

    index = {node: i for i, node in enumerate(nodes)}
    rows, cols, lengths = [], [], []
    for u, v, length in graph.edges(data="length"):
        rows.append(index[u])
        cols.append(index[v])
        lengths.append(max(float(length), 1e-9))  # sparse graphs read an explicit 0 as "no edge"
    size = len(nodes)
    return csr_matrix((lengths, (rows, cols)), shape=(size, size))


def _direction(source: nx.Graph, target: nx.Graph, spacing: float, snap: float) -> DirectionScore:
    """Control points of ``source`` snapped onto ``target``; all pairs' path costs, in blocks of rows."""
    from scipy.sparse.csgraph import dijkstra

    controlled = add_control_points(source, spacing)
    controls = control_nodes(controlled)
    count = len(controls)  # the control points come first, the split nodes after them
    nodes = controls + [node for node in controlled.nodes() if _is_split(controlled, node)]
    points = {node: (controlled.nodes[node]["x"], controlled.nodes[node]["y"]) for node in controls}
    snapped_graph, mapping = snap_points(target, points, snap)
    target_nodes = list(snapped_graph.nodes())
    target_index = {node: i for i, node in enumerate(target_nodes)}
    snapped_to = np.array([target_index[mapping[node]] if node in mapping else -1 for node in controls], dtype=int)
    source_csr, target_csr = _csr(controlled, nodes), _csr(snapped_graph, target_nodes)
    columns = np.arange(count)
    has_snap = snapped_to >= 0
    total_cost = 0.0
    paths = 0
    for start in range(0, count, _BLOCK_ROWS):
        rows = columns[start:start + _BLOCK_ROWS]
        source_lengths = dijkstra(source_csr, directed=False, indices=rows)[:, :count]
        pairs = (columns[None, :] > rows[:, None]) & np.isfinite(source_lengths) & (source_lengths > _EPS)
        target_lengths = np.full(source_lengths.shape, np.inf)
        row_has_snap = has_snap[rows]
        if row_has_snap.any():
            from_snapped = dijkstra(target_csr, directed=False, indices=snapped_to[rows][row_has_snap])
            block = np.full((from_snapped.shape[0], count), np.inf)
            block[:, has_snap] = from_snapped[:, snapped_to[has_snap]]
            target_lengths[row_has_snap] = block
        length, other = source_lengths[pairs], target_lengths[pairs]
        with np.errstate(invalid="ignore"):
            cost = np.where(np.isfinite(other), np.minimum(1.0, np.abs(length - other) / length), 1.0)
        total_cost += float(cost.sum())
        paths += int(pairs.sum())
    score = 1.0 - total_cost / paths if paths else math.nan
    return DirectionScore(score=score, paths=paths, control_points=count, snapped=len(mapping))


def apls(truth: nx.Graph, proposal: nx.Graph, *, spacing: float = CONTROL_SPACING_M,
         snap: float = SNAP_DISTANCE_M) -> AplsResult:
    """APLS of ``proposal`` against ``truth`` (both metric graphs, see the module docstring).

    1 for identical graphs; 0 when one graph has paths and the other none; nan when neither has any.
    Symmetric: swapping the graphs swaps the two directions and keeps ``apls``.

    >>> g = graph_from_lines([LineString([(0, 0), (120, 0)])])
    >>> apls(g, g).apls
    1.0
    """
    if snap < 0:
        raise ValueError(f"snap distance must be >= 0 metres, got {snap}")
    forward = _direction(truth, proposal, spacing, snap)
    backward = _direction(proposal, truth, spacing, snap)
    a, b = forward.score, backward.score
    if math.isnan(a) and math.isnan(b):
        value = math.nan
    elif math.isnan(a) or math.isnan(b):
        value = 0.0
    else:
        value = 2 * a * b / (a + b) if a + b > 0 else 0.0
    return AplsResult(apls=value, truth_onto_proposal=forward, proposal_onto_truth=backward,
                      truth_length_m=graph_length(truth), proposal_length_m=graph_length(proposal))
