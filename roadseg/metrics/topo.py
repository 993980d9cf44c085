"""TOPO, the sampled sub-graph matching metric of road-graph papers, on graphs in metres.

TOPO (Biagioni & Eriksson, 2012) as Sat2Graph, RNGDet++ and SAM-Road compute it (the ``metrics/topo``
code that Sat2Graph published and the others reuse):

1. start points: every chain of the ground truth (a path between nodes that are not of degree 2) longer
   than ``start_spacing_m / 2`` gets ``n = max(1, floor(length / start_spacing_m))`` start points at
   ``k / (n + 1)`` of its length, ``k = 1..n``; no randomness is involved, so the score is deterministic;
2. each start point is paired with the nearest proposal segment closer than ``match_distance_m`` whose
   direction is within ``start_angle_deg`` of the truth's there; an unpaired start point counts as recall 0;
3. from the start point on the truth and from its projection on the proposal, both graphs are explored
   up to ``radius_m`` along the roads, dropping a point ("hole" on the truth, "marble" on the proposal)
   wherever the distance along the roads is a multiple of ``interval_m``;
4. marbles and holes are matched one to one (a maximum bipartite matching) when closer than
   ``match_distance_m`` and within ``match_angle_deg`` of each other's direction; per start point,
   precision = matched marbles / marbles and recall = matched holes / holes. For precision each hole may
   take ``hole_capacity`` marbles (Sat2Graph counts every hole of a two-way road twice);
5. one to one between roads: best precision first, a start point keeps the proposal around its location
   (``one_to_one_m`` along the proposal); a later start point whose location falls there is dropped
   unless its precision reaches ``one_to_one_precision`` (Sat2Graph's ``TOPO121``);
6. ``precision`` is the mean over the start points kept, ``recall`` the mean over them times the
   fraction of all start points kept, ``f1`` their harmonic mean.

Units: the public code works in pixels expressed as pseudo-degrees (111111 pixels to the degree) on 1 m
imagery, so its thresholds are in metres here: 0.00005 degrees is a 5.56 m interval, 0.0001 an 11.1 m
matching distance, 0.0015 a 166.7 m radius on SpaceNet tiles (0.003, 333.3 m, on city-scale tiles),
0.0005 a 55.6 m start spacing and 0.0002 a 22.2 m one-to-one distance. Its angle tests
``1 - |cos| < 0.04`` and ``< 0.29`` are 16.3 and 44.8 degrees. The README there rounds these to 5 m,
10 m, 150 m / 300 m; the defaults are the values its code used for the published numbers.

Differences from the public code, all small (``tests/metrics/data/topo_reference.json`` holds a measured
case, ``benchmarks/topo_reference.py`` computes it): each chain is walked once (the public code walks a
chain without inner vertices from both ends, so its start points appear twice, and a dropped twin costs
recall), pure cycles also get start points, marbles start at the projection of the start point (not at
the start point itself), holes and marbles lie exactly where the distance along the roads is a multiple
of the interval, a duplicated hole sits on the hole (not 1.4 m beside it), and distances between
proposal locations are true shortest paths. (CosmiQ's ``apls/topo_metric.py`` is another variant, with
random start nodes, holes every 30 m and 5 m wide; the graph papers do not report it.)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Hashable
from dataclasses import dataclass

import networkx as nx
import numpy as np

from roadseg.errors import BadParameterError

PSEUDO_DEGREE = 111111.0
"""Pixels (metres on 1 m imagery) per pseudo-degree in the public TOPO code."""

_KEY_DIGITS = 6
"""Vertices closer than a micrometre are one vertex; marbles and holes too."""


@dataclass(frozen=True)
class TopoOptions:
    """TOPO's parameters, in metres and degrees; the defaults are those of Sat2Graph's code on SpaceNet."""

    radius_m: float = 0.0015 * PSEUDO_DEGREE
    """How far along the roads from a start point holes and marbles are laid (166.7 m)."""
    interval_m: float = 0.00005 * PSEUDO_DEGREE
    """Spacing of holes and marbles along the roads (5.56 m)."""
    match_distance_m: float = 0.0001 * PSEUDO_DEGREE
    """A marble fills a hole closer than this; a start point pairs with a proposal this close (11.1 m)."""
    match_angle_deg: float = math.degrees(math.acos(0.71))
    """Largest angle between a marble's road and its hole's road (44.8 degrees)."""
    start_spacing_m: float = 0.0005 * PSEUDO_DEGREE
    """Spacing of start points along the truth's chains (55.6 m)."""
    start_angle_deg: float = math.degrees(math.acos(0.96))
    """Largest angle between the truth at a start point and the proposal segment it pairs with (16.3)."""
    hole_capacity: int = 2
    """Marbles one hole may take when measuring precision (1 for a strict one-to-one precision)."""
    one_to_one_m: float = 0.0002 * PSEUDO_DEGREE
    """Scored start points whose proposal locations are closer than this along the proposal compete for
    them (22.2 m; 0 turns the filter off): see ``one_to_one_precision``."""
    one_to_one_precision: float = 0.9
    """Best precision first, a start point that a kept competitor claimed is dropped (its share of recall
    lost) unless its own precision reaches this: one proposal road cannot pass for two truth roads."""

    def __post_init__(self) -> None:
        for name in ("radius_m", "interval_m", "match_distance_m", "start_spacing_m"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise BadParameterError(name, f"must be a finite number of metres > 0, got {value!r}")
        if not (isinstance(self.one_to_one_m, (int, float)) and math.isfinite(self.one_to_one_m)
                and self.one_to_one_m >= 0):
            raise BadParameterError("one_to_one_m",
                                    f"must be a finite number of metres >= 0, got {self.one_to_one_m!r}")
        if not (isinstance(self.one_to_one_precision, (int, float)) and 0 <= self.one_to_one_precision <= 1):
            raise BadParameterError("one_to_one_precision", f"must be from 0 to 1, got {self.one_to_one_precision!r}")
        for name in ("match_angle_deg", "start_angle_deg"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 <= value <= 90):
                raise BadParameterError(name, f"must be an angle from 0 to 90 degrees, got {value!r}")
        if isinstance(self.hole_capacity, bool) or not isinstance(self.hole_capacity, int) or self.hole_capacity < 1:
            raise BadParameterError("hole_capacity", f"must be a whole number >= 1, got {self.hole_capacity!r}")


TOPO_PRESETS: dict[str, TopoOptions] = {
    "spacenet": TopoOptions(),
    "city-scale": TopoOptions(radius_m=0.003 * PSEUDO_DEGREE),
}
"""The papers' two settings: SpaceNet's 400 m tiles, and the 2 km city-scale tiles (333.3 m radius; the
public code takes it for tiles over 0.01 pseudo-degrees, 1111 pixels, from top to bottom)."""


@dataclass(frozen=True)
class TopoResult:
    """TOPO precision, recall and F1 of a proposal, with the counts behind them."""

    precision: float
    """Mean over the kept start points of matched marbles / marbles; 0 when none was kept."""
    recall: float
    """Mean over the kept start points of matched holes / holes, times ``kept / start_points``; 0 when
    none was kept."""
    f1: float
    start_points: int
    paired: int
    """Start points that found the proposal (and so were scored)."""
    kept: int
    """Paired start points left by the one-to-one filter: the means and the counts below are over these."""
    marbles: int
    holes: int
    matched_marbles: int
    """Each hole taking up to ``hole_capacity`` marbles (``matched_holes``: one)."""
    matched_holes: int

    def to_dict(self) -> dict:
        """Plain types for JSON."""
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------------------
# graphs as straight segments

@dataclass(frozen=True)
class _Segments:
    """A road graph flattened to straight segments between the vertices of its edges' geometries."""

    points: np.ndarray
    """(n, 2) vertex coordinates."""
    ends: np.ndarray
    """(m, 2) vertex indices of each segment."""
    lengths: np.ndarray
    """(m,) segment lengths."""

    @property
    def directions(self) -> np.ndarray:
        """(m, 2) unit vectors from each segment's first vertex to its second."""
        delta = self.points[self.ends[:, 1]] - self.points[self.ends[:, 0]]
        return delta / self.lengths[:, None]


def _edge_coords(graph: nx.Graph, u: Hashable, v: Hashable) -> np.ndarray:
    """The edge's vertices from ``u`` to ``v``, its ends put exactly on the nodes."""
    start = (graph.nodes[u]["x"], graph.nodes[u]["y"])
    end = (graph.nodes[v]["x"], graph.nodes[v]["y"])
    line = graph.edges[u, v].get("geometry")
    if line is None:
        return np.array([start, end], dtype=float)
    coords = np.asarray(line.coords, dtype=float)[:, :2]
    if math.dist(coords[-1], start) < math.dist(coords[0], start):
        coords = coords[::-1]
    coords[0], coords[-1] = start, end
    return coords


def road_segments(graph: nx.Graph) -> tuple[np.ndarray, np.ndarray]:
    """The graph's roads as straight segments: ``(points (n, 2), ends (m, 2))`` with shared vertices merged.

    This is how TOPO sees a graph; zero-length segments and repeated segments are dropped.
    """
    index: dict[tuple[float, float], int] = {}
    points: list[tuple[float, float]] = []
    ends: set[tuple[int, int]] = set()
    for u, v in graph.edges():
        ids = []
        for x, y in _edge_coords(graph, u, v):
            key = (round(float(x), _KEY_DIGITS), round(float(y), _KEY_DIGITS))
            if key not in index:
                index[key] = len(points)
                points.append((float(x), float(y)))
            ids.append(index[key])
        ends.update((min(a, b), max(a, b)) for a, b in zip(ids[:-1], ids[1:]) if a != b)
    return np.asarray(points, dtype=float).reshape(-1, 2), np.asarray(sorted(ends), dtype=int).reshape(-1, 2)


def graph_from_segments(points: np.ndarray, ends: np.ndarray) -> nx.Graph:
    """The road graph of straight segments ``ends`` (m, 2) between ``points`` (n, 2): the inverse of
    :func:`road_segments`, for graphs stored as plain arrays."""
    points, ends = np.asarray(points, dtype=float).reshape(-1, 2), np.asarray(ends, dtype=int).reshape(-1, 2)
    graph = nx.Graph()
    graph.add_nodes_from((i, {"x": float(x), "y": float(y)}) for i, (x, y) in enumerate(points))
    graph.add_edges_from((int(a), int(b), {"length": float(np.linalg.norm(points[a] - points[b]))})
                         for a, b in ends if a != b)
    return graph


def _segments(graph: nx.Graph) -> _Segments:
    points, ends = road_segments(graph)
    lengths = np.linalg.norm(points[ends[:, 1]] - points[ends[:, 0]], axis=1) if len(ends) else np.zeros(0)
    return _Segments(points, ends, lengths)


def _csr(segments: _Segments):
    """The segments as an undirected sparse graph of lengths, for shortest paths."""
    from scipy.sparse import csr_matrix

    size = len(segments.points)
    return csr_matrix((segments.lengths, (segments.ends[:, 0], segments.ends[:, 1])), shape=(size, size))


def _chains(segments: _Segments) -> list[list[int]]:
    """Vertex paths between vertices not of degree 2, then around what is left (pure cycles)."""
    neighbours: list[list[tuple[int, int]]] = [[] for _ in range(len(segments.points))]
    for k, (a, b) in enumerate(segments.ends):
        neighbours[a].append((int(b), k))
        neighbours[b].append((int(a), k))
    used = np.zeros(len(segments.ends), dtype=bool)
    order = sorted(range(len(neighbours)), key=lambda v: len(neighbours[v]) == 2)
    chains = []
    for first in order:
        for vertex, k in neighbours[first]:
            if used[k]:
                continue
            path = [first]
            while True:
                used[k] = True
                path.append(vertex)
                if len(neighbours[vertex]) != 2 or vertex == first:
                    break
                vertex, k = next((w, s) for w, s in neighbours[vertex] if s != k)
                if used[k]:
                    break
            chains.append(path)
    return chains


def _start_points(segments: _Segments, options: TopoOptions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start points along the chains: ``(positions (s, 2), segment ids (s,), offsets from the segments'
    first vertices (s,))``."""
    segment_of = {(int(a), int(b)): k for k, (a, b) in enumerate(segments.ends)}
    positions, ids, offsets = [], [], []
    for path in _chains(segments):
        keys = [(min(a, b), max(a, b)) for a, b in zip(path[:-1], path[1:])]
        lengths = np.array([segments.lengths[segment_of[key]] for key in keys])
        cumulative = np.concatenate([[0.0], np.cumsum(lengths)])
        total = cumulative[-1]
        if total < options.start_spacing_m / 2:
            continue
        count = max(int(total / options.start_spacing_m), 1)
        for along in total * np.arange(1, count + 1) / (count + 1):
            j = min(int(np.searchsorted(cumulative, along, side="right")) - 1, len(keys) - 1)
            into = along - cumulative[j]
            k = segment_of[keys[j]]
            start, end = segments.points[path[j]], segments.points[path[j + 1]]
            positions.append(start + (end - start) * (into / lengths[j]))
            ids.append(k)
            offsets.append(into if segments.ends[k, 0] == path[j] else lengths[j] - into)
    return (np.asarray(positions, dtype=float).reshape(-1, 2), np.asarray(ids, dtype=int),
            np.asarray(offsets, dtype=float))


def _pair(points: np.ndarray, directions: np.ndarray, target: _Segments,
          options: TopoOptions) -> tuple[np.ndarray, np.ndarray]:
    """For each point, the nearest ``target`` segment within the matching distance and the start angle:
    ``(segment ids, -1 where none; offsets of the projections from the segments' first vertices)``."""
    import shapely

    ids = np.full(len(points), -1, dtype=int)
    offsets = np.zeros(len(points))
    if not len(points) or not len(target.ends):
        return ids, offsets
    lines = shapely.linestrings(target.points[target.ends])
    which, candidates = shapely.STRtree(lines).query(shapely.points(points), predicate="dwithin",
                                                      distance=options.match_distance_m)
    first = target.points[target.ends[candidates, 0]]
    unit = target.directions[candidates]
    along = np.clip(np.einsum("ij,ij->i", points[which] - first, unit), 0.0, target.lengths[candidates])
    distance = np.linalg.norm(points[which] - (first + unit * along[:, None]), axis=1)
    cosine = np.abs(np.einsum("ij,ij->i", directions[which], unit))
    ok = (distance < options.match_distance_m) & (cosine > math.cos(math.radians(options.start_angle_deg)))
    best = np.full(len(points), np.inf)
    for i, k, d, t in zip(which[ok], candidates[ok], distance[ok], along[ok]):
        if d < best[i]:
            best[i], ids[i], offsets[i] = d, k, t
    return ids, offsets


def _points_along(origins: np.ndarray, units: np.ndarray, first: np.ndarray, last: np.ndarray,
                  options: TopoOptions) -> tuple[np.ndarray, np.ndarray]:
    """Points at offsets ``first`` to ``last`` (arrays, one row per piece of road) spaced by the
    interval, as ``(positions, directions)``; ``first`` lies on the interval grid."""
    step = options.interval_m
    counts = np.where(last >= first, np.floor((last - first) / step + 1e-9) + 1, 0).astype(int)
    rows = np.repeat(np.arange(len(counts)), counts)
    rank = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    along = first[rows] + rank * step
    return origins[rows] + units[rows] * along[:, None], units[rows]


def _reach(segments: _Segments, graph, segment: int, offset: float, limit: float) -> np.ndarray:
    """Distance along the roads from the point ``offset`` along ``segment`` to every vertex, capped at
    ``limit`` (vertices farther away read ``limit``)."""
    from scipy.sparse.csgraph import dijkstra

    a, b = segments.ends[segment]
    length = segments.lengths[segment]
    from_ends = dijkstra(graph, directed=False, indices=[a, b], limit=limit + length)
    return np.minimum(np.minimum(offset + from_ends[0], length - offset + from_ends[1]), limit)


def _lay(segments: _Segments, graph, segment: int, offset: float,
         options: TopoOptions) -> tuple[np.ndarray, np.ndarray]:
    """Holes (or marbles) from a point ``offset`` along ``segment``: every point of the roads whose
    distance along them from there is a multiple of the interval and at most the radius, as
    ``(positions (k, 2), unit directions of their segments (k, 2))``."""
    a, b = segments.ends[segment]
    length, radius, step = segments.lengths[segment], options.radius_m, options.interval_m
    # beyond twice the radius only "out of reach" matters: capping keeps the arithmetic below finite
    reach = _reach(segments, graph, segment, offset, 2 * radius)
    unit = segments.directions[segment]
    here = segments.points[a] + unit * offset
    # the start segment is cut in two at the start point; each piece runs from the start point outwards
    keep = np.flatnonzero(np.minimum(reach[segments.ends[:, 0]], reach[segments.ends[:, 1]]) <= radius)
    keep = keep[keep != segment]
    origins = np.vstack([segments.points[segments.ends[keep, 0]], [here, here]])
    units = np.vstack([segments.directions[keep], [-unit, unit]])
    lengths = np.concatenate([segments.lengths[keep], [offset, length - offset]])
    near = np.concatenate([reach[segments.ends[keep, 0]], [0.0, 0.0]])
    far = np.concatenate([reach[segments.ends[keep, 1]], [reach[a], reach[b]]])
    middle = np.clip((far + lengths - near) / 2, 0.0, lengths)  # where the two ends' distances meet
    # from the near end up to the middle, then from the far end back to (not onto) the middle
    first_near = np.ceil(near / step - 1e-9) * step - near
    first_far = np.ceil(far / step - 1e-9) * step - far
    out = _points_along(origins, units, first_near, np.minimum(middle, radius - near), options)
    back = _points_along(origins + units * lengths[:, None], -units, first_far,
                         np.minimum(lengths - middle - 1e-9, radius - far), options)
    positions = np.vstack([out[0], back[0]])
    directions = np.vstack([out[1], back[1]])
    # one point per place and road direction: a junction reached along two roads keeps both directions
    flip = (directions[:, 0] < 0) | ((directions[:, 0] == 0) & (directions[:, 1] < 0))
    axis = np.where(flip[:, None], -directions, directions)
    keys = np.round(np.hstack([positions, axis]), _KEY_DIGITS)
    _, unique = np.unique(keys, axis=0, return_index=True)
    unique.sort()
    return positions[unique], directions[unique]


def _matched(marbles: tuple[np.ndarray, np.ndarray], holes: tuple[np.ndarray, np.ndarray],
             options: TopoOptions, capacity: int) -> int:
    """Size of a maximum matching of marbles to holes (each taking ``capacity`` marbles) closer than the
    matching distance and within the matching angle."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import maximum_bipartite_matching
    from scipy.spatial import cKDTree

    (marble_xy, marble_dir), (hole_xy, hole_dir) = marbles, holes
    if not len(marble_xy) or not len(hole_xy):
        return 0
    near = cKDTree(hole_xy).query_ball_point(marble_xy, r=options.match_distance_m)
    rows = np.repeat(np.arange(len(marble_xy)), [len(found) for found in near])
    cols = np.fromiter((j for found in near for j in found), dtype=int, count=len(rows))
    distance = np.linalg.norm(marble_xy[rows] - hole_xy[cols], axis=1)
    cosine = np.abs(np.einsum("ij,ij->i", marble_dir[rows], hole_dir[cols]))
    ok = (distance < options.match_distance_m) & (cosine > math.cos(math.radians(options.match_angle_deg)))
    rows, cols = np.repeat(rows[ok], capacity), (cols[ok, None] * capacity + np.arange(capacity)).ravel()
    if not len(rows):
        return 0
    graph = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(marble_xy), len(hole_xy) * capacity))
    return int((maximum_bipartite_matching(graph, perm_type="column") >= 0).sum())


def _one_to_one(starts: np.ndarray, ids: np.ndarray, offsets: np.ndarray, precisions: np.ndarray,
                proposal: _Segments, graph, options: TopoOptions) -> np.ndarray:
    """Which scored start points stay: best precision first, each kept one claims the start points whose
    proposal locations are within ``one_to_one_m`` along the proposal (and whose truth start points are
    within 1.5 times that on each axis); a claimed one stays only with precision >= ``one_to_one_precision``
    (the public code's ``TOPO121``)."""
    count = len(precisions)
    kept = np.ones(count, dtype=bool)
    if options.one_to_one_m == 0 or count < 2:
        return kept
    claims = []
    for i in range(count):
        near = np.flatnonzero(np.abs(starts - starts[i]).max(axis=1) <= 1.5 * options.one_to_one_m)
        reach = _reach(proposal, graph, ids[i], offsets[i], options.one_to_one_m)
        a, b = proposal.ends[ids[near], 0], proposal.ends[ids[near], 1]
        along = np.minimum(reach[a] + offsets[near], reach[b] + proposal.lengths[ids[near]] - offsets[near])
        along = np.where(ids[near] == ids[i], np.abs(offsets[near] - offsets[i]), along)
        claims.append(near[along < options.one_to_one_m])
    claimed = np.zeros(count, dtype=bool)
    for i in np.argsort(precisions, kind="stable")[::-1]:
        if claimed[i] and precisions[i] < options.one_to_one_precision:
            kept[i] = False
            continue
        claimed[claims[i]] = True
    return kept


def topo_score(proposal: nx.Graph, truth: nx.Graph, options: TopoOptions | None = None) -> TopoResult:
    """TOPO of ``proposal`` against ``truth`` (metric road graphs, see the module docstring).

    1, 1, 1 for identical graphs. With no start point paired (an empty proposal, or an empty truth)
    precision, recall and F1 are all 0, as in the public code; the counts tell the cases apart.

    >>> from shapely.geometry import LineString
    >>> from roadseg.metrics.apls import graph_from_lines
    >>> road = graph_from_lines([LineString([(0, 0), (300, 0)])])
    >>> topo_score(road, road).f1
    1.0
    """
    options = options or TopoOptions()
    truth_segments, proposal_segments = _segments(truth), _segments(proposal)
    starts, start_ids, start_offsets = _start_points(truth_segments, options)
    pair_ids, pair_offsets = _pair(starts, truth_segments.directions[start_ids] if len(start_ids)
                                   else np.zeros((0, 2)), proposal_segments, options)
    truth_graph, proposal_graph = _csr(truth_segments), _csr(proposal_segments)
    paired = np.flatnonzero(pair_ids >= 0)
    counts = np.zeros((len(paired), 4), dtype=int)  # marbles, holes, matched marbles, matched holes
    for row, k in enumerate(paired):
        holes = _lay(truth_segments, truth_graph, start_ids[k], start_offsets[k], options)
        marbles = _lay(proposal_segments, proposal_graph, pair_ids[k], pair_offsets[k], options)
        counts[row] = (len(marbles[0]), len(holes[0]), _matched(marbles, holes, options, options.hole_capacity),
                       _matched(marbles, holes, options, 1))
    precisions = counts[:, 2] / np.maximum(counts[:, 0], 1)
    recalls = counts[:, 3] / np.maximum(counts[:, 1], 1)
    kept = _one_to_one(starts[paired], pair_ids[paired], pair_offsets[paired], precisions, proposal_segments,
                       proposal_graph, options)
    n_kept = int(kept.sum())
    precision = float(precisions[kept].mean()) if n_kept else 0.0
    recall = float(recalls[kept].mean()) * n_kept / len(starts) if n_kept else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    totals = counts[kept].sum(axis=0)
    return TopoResult(precision=precision, recall=recall, f1=f1, start_points=len(starts), paired=len(paired),
                      kept=n_kept, marbles=int(totals[0]), holes=int(totals[1]), matched_marbles=int(totals[2]),
                      matched_holes=int(totals[3]))
