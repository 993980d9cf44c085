"""APLS (Average Path Length Similarity), the SpaceNet road-network metric, on graphs in metres.

A road graph here is an undirected :class:`networkx.Graph` whose nodes carry ``x`` and ``y`` (metres
in a local metric CRS) and whose edges carry ``length`` (metres) and optionally ``geometry`` (a shapely
``LineString`` in the same metres). APLS as SpaceNet defines it (Van Etten et al., 2018):

1. control points: every edge of the graph being scored is cut every ``spacing`` metres (50) and the
   cuts become nodes, beside the junctions and ends;
2. each control point is snapped onto the other graph, at the nearest point of its edges if that lies
   within ``snap`` metres (4), inserting a node there; a control point with nothing in reach is missing;
3. for every pair of control points joined by a path, the cost is ``min(1, |L - L'| / L)``, ``L`` the
   shortest path in the graph scored and ``L'`` between the snapped points (1 when either is missing
   or they are not connected); the direction scores ``1 - mean(cost)``;
4. this is done from the ground truth onto the proposal and back, and the two are combined by their
   harmonic mean.

Graphs built from GeoJSON (:func:`graph_from_geojson`) report their length measured on the WGS 84
ellipsoid from longitude/latitude, so a graph's reported length never depends on the projection it is
scored in, or on the other file of the comparison.
"""

from __future__ import annotations

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
    """Adds lines to a graph, merging end points that coincide and splitting loops and parallel edges."""

    def __init__(self, graph: nx.Graph | None = None, tolerance: float = 1e-3) -> None:
        self.graph = graph if graph is not None else nx.Graph()
        self.tolerance = tolerance
        self._by_key: dict[tuple[int, int], Hashable] = {}
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

    def add_line(self, line: LineString) -> None:
        if line.is_empty or line.length <= _EPS:
            return
        u = self.node_at(*line.coords[0])
        v = self.node_at(*line.coords[-1])
        if u == v:  # a loop: three pieces keep the graph simple
            third = line.length / 3
            for piece in (substring(line, 0, third), substring(line, third, 2 * third),
                          substring(line, 2 * third, line.length)):
                self.add_line(piece)
        elif self.graph.has_edge(u, v):  # a parallel road: split it so both survive
            half = line.length / 2
            self.add_line(substring(line, 0, half))
            self.add_line(substring(line, half, line.length))
        else:
            self.graph.add_edge(u, v, length=float(line.length), geometry=line)


def node_lines(lines: Iterable[LineString]) -> list[LineString]:
    """Split lines where they cross or touch and merge them through points where exactly two meet.

    A road drawn as several features becomes one piece between junctions.
    """
    parts = [line for line in lines if not line.is_empty]
    if not parts:
        return []
    merged = shapely.line_merge(shapely.unary_union(parts))
    return [piece for piece in getattr(merged, "geoms", [merged]) if isinstance(piece, LineString)]


def graph_from_lines(lines: Iterable[LineString], *, tolerance: float = 1e-3,
                     noded: bool = False) -> nx.Graph:
    """Build the road graph of metric lines: junctions and ends as nodes, the lines as edges.

    Lines are noded first (:func:`node_lines`) unless ``noded`` says they already are. End points closer
    than ``tolerance`` metres are one node.
    """
    builder = _GraphBuilder(nx.Graph(), tolerance)
    for piece in (list(lines) if noded else node_lines(lines)):
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
    """Read a GeoJSON file (or pass a parsed dict through), with a one-line error naming the file."""
    if isinstance(source, Mapping):
        return dict(source)
    path = Path(source)
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


def graph_from_geojson(source: Mapping[str, Any] | Path | str, *, crs: str | None = None) -> nx.Graph:
    """Build a metric road graph from the LineStrings of a GeoJSON file or dict.

    Coordinates are read in the file's ``crs`` member (longitude/latitude WGS 84 when absent, as RFC
    7946 says) and projected to ``crs``, a metric CRS; by default :func:`local_metric_crs` of the data.
    Give both graphs of a comparison the same ``crs``. Other geometry types are skipped with a warning.
    The graph's ``length_m`` (what :func:`graph_length` reports) is measured on the ellipsoid.
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
    lines = node_lines(lines)  # in the file's own coordinates, where junctions were drawn exactly
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

def add_control_points(graph: nx.Graph, spacing: float = CONTROL_SPACING_M) -> nx.Graph:
    """A copy of ``graph`` with a node every ``spacing`` metres along each edge (from its first end)."""
    if spacing <= 0:
        raise ValueError(f"control-point spacing must be > 0 metres, got {spacing}")
    out = graph.copy()
    builder = _GraphBuilder(out)
    for u, v in list(graph.edges()):
        line = _edge_line(graph, u, v)
        length = line.length
        cuts = np.arange(spacing, length - _EPS, spacing)
        if cuts.size == 0:
            continue
        out.remove_edge(u, v)
        bounds = [0.0, *cuts.tolist(), length]
        for a, b in zip(bounds[:-1], bounds[1:]):
            builder.add_line(substring(line, a, b))
    return out


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
    nodes = list(controlled.nodes())
    points = {node: (data["x"], data["y"]) for node, data in controlled.nodes(data=True)}
    snapped_graph, mapping = snap_points(target, points, snap)
    target_nodes = list(snapped_graph.nodes())
    target_index = {node: i for i, node in enumerate(target_nodes)}
    snapped_to = np.array([target_index[mapping[node]] if node in mapping else -1 for node in nodes], dtype=int)
    source_csr, target_csr = _csr(controlled, nodes), _csr(snapped_graph, target_nodes)
    count = len(nodes)
    columns = np.arange(count)
    has_snap = snapped_to >= 0
    total_cost = 0.0
    paths = 0
    for start in range(0, count, _BLOCK_ROWS):
        rows = columns[start:start + _BLOCK_ROWS]
        source_lengths = dijkstra(source_csr, directed=False, indices=rows)
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
