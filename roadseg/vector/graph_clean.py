"""Clean a skeleton graph into road centrelines: prune spurs, close gaps, drop short pieces, simplify.

The graph is the :func:`roadseg.vector.skeleton_graph.build_graph` kind: a :class:`networkx.MultiGraph` whose
nodes carry ``rc`` (row, col) and whose edges carry ``path`` (row/col array), ``start`` (the node the
path starts at), ``length`` (metres, or pixels for rasters without georeferencing) and ``gap_closed`` (True
on an edge that is, or contains, a join made by :func:`close_gaps`; absent means False). All distances
given to these functions are in the same unit as ``length``; ``geometry`` converts pixel steps to it.
Every function changes the graph in place and returns a count, so a pipeline can report what it did.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx
import numpy as np
import shapely
from scipy.spatial import cKDTree

from roadseg.vector.geo import PixelGeometry

DEFAULT_MAX_ANGLE = 30.0


def oriented_path(graph: nx.MultiGraph, u: int, v: int, key: int, start: int) -> np.ndarray:
    """The edge's row/col path running from node ``start``."""
    data = graph.edges[u, v, key]
    return data["path"] if data["start"] == start else data["path"][::-1]


def _joined(graph: nx.MultiGraph, u: int, v: int, key: int) -> bool:
    """Whether the edge is, or contains, a gap-closing join (its evidence is not in the mask)."""
    return bool(graph.edges[u, v, key].get("gap_closed", False))


def _is_dead_end(graph: nx.MultiGraph, node: int) -> bool:
    return graph.degree(node) == 1


def border_nodes(graph: nx.MultiGraph, margin: float) -> set[int]:
    """Nodes within ``margin`` pixels of the raster's edge: their road goes on beyond the raster."""
    height, width = graph.graph["shape"]
    found = set()
    for node, (r, c) in graph.nodes(data="rc"):
        if min(r, c, height - 1 - r, width - 1 - c) <= margin:
            found.add(node)
    return found


def merge_degree_two(graph: nx.MultiGraph, geometry: PixelGeometry) -> int:
    """Join the two edges at every node with exactly two distinct edges into one edge; return the count.

    Pruning and gap closing leave such pass-through nodes behind; a road between two junctions should be
    one edge (one GeoJSON feature).
    """
    merged = 0
    for node in list(graph.nodes):
        if node not in graph or graph.degree(node) != 2:
            continue
        incident = list(graph.edges(node, keys=True))
        if len(incident) != 2 or any(a == b for a, b, _ in incident):
            continue  # a self-loop alone: a ring keeps its node
        (_, a, ka), (_, b, kb) = incident
        first = oriented_path(graph, node, a, ka, node)[::-1]  # a -> node
        second = oriented_path(graph, node, b, kb, node)  # node -> b
        path = np.concatenate([first, second[1:]])
        joined = _joined(graph, node, a, ka) or _joined(graph, node, b, kb)
        graph.remove_edge(node, a, ka)
        graph.remove_edge(node, b, kb)
        graph.remove_node(node)
        graph.add_edge(a, b, path=path, start=a, length=geometry.path_length(path), gap_closed=joined)
        merged += 1
    return merged


def prune_spurs(graph: nx.MultiGraph, min_spur: float, *, keep: set[int] | None = None,
                geometry: PixelGeometry) -> int:
    """Remove dead-end edges shorter than ``min_spur`` that hang off a junction, repeatedly.

    Dead ends in ``keep`` (nodes at the raster border, see :func:`border_nodes`) are never pruned: their
    road goes on in the next tile. A junction never loses its last two edges to pruning, so a short
    cross-piece is trimmed to a line rather than erased. Self-loops shorter than ``min_spur`` (rings
    around a hole in the mask) go too, and of parallel edges all shorter than ``min_spur`` (a bubble around
    a hole) only the shortest stays. Returns the number of edges removed.
    """
    keep = keep or set()
    removed = 0
    while True:
        spurs = []
        for u, v, key, length in graph.edges(keys=True, data="length"):
            if length >= min_spur:
                continue
            if u == v:
                spurs.append((length, u, v, key, None))
                continue
            for end, other in ((u, v), (v, u)):
                if _is_dead_end(graph, end) and end not in keep and graph.degree(other) >= 3:
                    spurs.append((length, end, other, key, end))
                    break
        changed = _pop_bubbles(graph, min_spur)
        for _length, a, b, key, end in sorted(spurs, key=lambda spur: spur[0]):
            if not graph.has_edge(a, b, key):
                continue
            if end is None:
                graph.remove_edge(a, b, key)
            elif graph.degree(b) >= 3 and graph.degree(end) == 1:
                graph.remove_edge(a, b, key)
                graph.remove_node(end)
            else:
                continue
            changed += 1
        removed += changed
        merge_degree_two(graph, geometry)
        if not changed:
            return removed


def _pop_bubbles(graph: nx.MultiGraph, min_spur: float) -> int:
    """Where two nodes are joined by several edges all shorter than ``min_spur`` (the skeleton forking
    around a small hole), keep only the shortest. Returns the number of edges removed."""
    removed = 0
    pairs = {(min(u, v), max(u, v)) for u, v in graph.edges() if u != v}
    for u, v in pairs:
        if graph.number_of_edges(u, v) < 2:
            continue
        keys = sorted(graph[u][v], key=lambda k: graph[u][v][k]["length"])
        if graph[u][v][keys[-1]]["length"] >= min_spur:
            continue
        for key in keys[1:]:
            graph.remove_edge(u, v, key)
            removed += 1
    return removed


def _scale(geometry: PixelGeometry) -> np.ndarray:
    return np.array([geometry.row_m, geometry.col_m])


def end_direction(graph: nx.MultiGraph, node: int, look_back: float, geometry: PixelGeometry) -> np.ndarray:
    """Unit vector (metric row/col frame) along which the road leaves its dead end ``node``.

    Taken from the point ``look_back`` back along the edge to the end, which steadies it against the
    pixel staircase of the skeleton.
    """
    (_, other, key), = graph.edges(node, keys=True)
    path = oriented_path(graph, node, other, key, node) * _scale(geometry)  # from the end inwards
    steps = np.hypot(*np.diff(path, axis=0).T)
    along = np.concatenate([[0.0], np.cumsum(steps)])
    back = min(look_back, along[-1])
    point = np.array([np.interp(back, along, path[:, 0]), np.interp(back, along, path[:, 1])])
    vector = path[0] - point
    norm = np.hypot(*vector)
    return vector / norm if norm > 0 else vector


def _angle_ok(direction: np.ndarray, vector: np.ndarray, cos_limit: float) -> bool:
    norm = float(np.hypot(*vector))
    return norm == 0 or float(direction @ vector) / norm >= cos_limit


def _split_edge(graph: nx.MultiGraph, u: int, v: int, key: int, fraction_m: float,
                geometry: PixelGeometry) -> int:
    """Insert a node on an edge at ``fraction_m`` metres from its start; return the new node."""
    data = graph.edges[u, v, key]
    start = data["start"]
    other = v if start == u else u
    path = data["path"]
    metric = path * _scale(geometry)
    along = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(metric, axis=0).T))])
    index = int(np.searchsorted(along, fraction_m, side="right"))
    index = min(max(index, 1), len(path) - 1)
    t = (fraction_m - along[index - 1]) / max(along[index] - along[index - 1], 1e-12)
    point = path[index - 1] + (path[index] - path[index - 1]) * min(max(t, 0.0), 1.0)
    node = graph.graph.get("next_node", max(graph.nodes) + 1)  # max() alone: a scan per split
    graph.graph["next_node"] = node + 1
    graph.add_node(node, rc=(float(point[0]), float(point[1])), kind="junction")
    first = np.vstack([path[:index], point])
    second = np.vstack([point, path[index:]])
    joined = _joined(graph, u, v, key)
    graph.remove_edge(u, v, key)
    graph.add_edge(start, node, path=first, start=start, length=geometry.path_length(first), gap_closed=joined)
    graph.add_edge(node, other, path=second, start=node, length=geometry.path_length(second), gap_closed=joined)
    return node


@dataclass(frozen=True)
class _GapRule:
    """How long and how straight a join across a gap may be."""

    max_gap: float
    cos_limit: float
    """Cosine of the largest angle between a dead end's direction and its join."""


@dataclass(frozen=True, eq=False)
class _DeadEnd:
    """A dead end that may be joined: its node, position and direction in the metric row/col frame."""

    node: int
    point: np.ndarray
    direction: np.ndarray


@dataclass(frozen=True, eq=False)
class _EdgeIndex:
    """The graph's edges as metric lines in a spatial index, for one round of joins onto edges."""

    edges: list[tuple[int, int, int]]
    lines: np.ndarray
    tree: shapely.STRtree


def close_gaps(graph: nx.MultiGraph, max_gap: float, *, geometry: PixelGeometry,
               max_angle: float = DEFAULT_MAX_ANGLE, look_back: float | None = None) -> int:
    """Join dead ends across gaps up to ``max_gap`` when the join continues the road; return joins made.

    A dead end is joined to another dead end when the straight join leaves each of them within
    ``max_angle`` degrees of its own direction (two collinear pieces of one road), otherwise to the
    nearest point of an edge when the join is within ``max_angle`` of the end's direction (a road that
    stops short of the road it meets). Perpendicular or backward joins are refused. Closest joins are
    made first and each dead end is joined at most once.
    """
    if max_gap <= 0:
        return 0
    rule = _GapRule(max_gap, math.cos(math.radians(max_angle)))
    ends = _dead_ends(graph, max_gap if look_back is None else look_back, geometry)
    if not ends:
        return 0
    joins, waiting = _join_end_pairs(graph, ends, rule, geometry)
    joins += _join_ends_to_edges(graph, waiting, rule, geometry)
    merge_degree_two(graph, geometry)
    return joins


def _dead_ends(graph: nx.MultiGraph, look_back: float, geometry: PixelGeometry) -> list[_DeadEnd]:
    """Every dead end of the graph with its metric position and direction (see :func:`end_direction`)."""
    scale = _scale(geometry)
    return [_DeadEnd(n, np.array(graph.nodes[n]["rc"]) * scale, end_direction(graph, n, look_back, geometry))
            for n in graph.nodes if _is_dead_end(graph, n)]


def _join_end_pairs(graph: nx.MultiGraph, ends: list[_DeadEnd], rule: _GapRule,
                    geometry: PixelGeometry) -> tuple[int, list[_DeadEnd]]:
    """Join dead ends to each other, closest pairs first; the joins made and the ends left unjoined."""
    points = np.array([end.point for end in ends])
    used: set[int] = set()
    pairs = sorted(cKDTree(points).query_pairs(rule.max_gap, output_type="ndarray").tolist(),
                   key=lambda ij: float(np.hypot(*(points[ij[0]] - points[ij[1]]))))
    for i, j in pairs:
        a, b = ends[i], ends[j]
        if a.node in used or b.node in used or graph.has_edge(a.node, b.node):
            continue
        vector = b.point - a.point
        if _angle_ok(a.direction, vector, rule.cos_limit) and _angle_ok(b.direction, -vector, rule.cos_limit):
            _add_join(graph, a.node, b.node, geometry)
            used.update((a.node, b.node))
    return len(used) // 2, [end for end in ends if end.node not in used]


def _join_ends_to_edges(graph: nx.MultiGraph, waiting: list[_DeadEnd], rule: _GapRule,
                        geometry: PixelGeometry) -> int:
    """Join dead ends to the nearest point of another edge, in rounds so that an edge split by one join
    is looked up afresh for the next; return the joins made."""
    joins = 0
    while waiting and graph.number_of_edges():
        made, retry = _join_round(graph, waiting, _edge_index(graph, geometry), rule, geometry)
        joins += made
        waiting = retry if made else []
    return joins


def _edge_index(graph: nx.MultiGraph, geometry: PixelGeometry) -> _EdgeIndex:
    edges = list(graph.edges(keys=True))
    scale = _scale(geometry)
    lines = _lines([graph.edges[e]["path"] * scale for e in edges])
    return _EdgeIndex(edges, lines, shapely.STRtree(lines))


def _join_round(graph: nx.MultiGraph, waiting: list[_DeadEnd], index: _EdgeIndex, rule: _GapRule,
                geometry: PixelGeometry) -> tuple[int, list[_DeadEnd]]:
    """One round of joins onto edges, at most one per edge; the joins made and the ends to retry."""
    touched: set[tuple[int, int, int]] = set()
    retry = []
    for end in waiting:
        if graph.degree(end.node) != 1:
            continue
        target = _nearest_edge_target(graph, end, index, rule)
        if target is None:
            continue
        u, v, key, along = target
        if (u, v, key) in touched:
            retry.append(end)
            continue
        touched.add((u, v, key))
        _add_join(graph, end.node, _split_edge(graph, u, v, key, along, geometry), geometry)
    return len(touched), retry


def _lines(paths: list[np.ndarray]) -> np.ndarray:
    """Shapely LineStrings of paths of different lengths (a one-point path is doubled)."""
    out = np.empty(len(paths), dtype=object)
    out[:] = [shapely.LineString(p if len(p) > 1 else np.vstack([p, p])) for p in paths]
    return out


def _add_join(graph: nx.MultiGraph, a: int, b: int, geometry: PixelGeometry) -> None:
    path = np.array([graph.nodes[a]["rc"], graph.nodes[b]["rc"]], dtype=np.float64)
    graph.add_edge(a, b, path=path, start=a, length=geometry.path_length(path), gap_closed=True)


def _nearest_edge_target(graph: nx.MultiGraph, end: _DeadEnd, index: _EdgeIndex,
                         rule: _GapRule) -> tuple[int, int, int, float] | None:
    """Best ``(u, v, key, metres along from the path start)`` to join ``end`` to, or None."""
    probe = shapely.Point(end.point)
    best = None
    for i in index.tree.query(probe, predicate="dwithin", distance=rule.max_gap):
        u, v, key = index.edges[i]
        if end.node in (u, v) or not graph.has_edge(u, v, key):
            continue
        line = index.lines[i]
        along = float(line.project(probe))
        nearest = np.array(line.interpolate(along).coords[0])
        vector = nearest - end.point
        distance = float(np.hypot(*vector))
        if distance > rule.max_gap or distance == 0 or not _angle_ok(end.direction, vector, rule.cos_limit):
            continue
        if best is None or distance < best[0]:
            best = (distance, u, v, key, along)
    return None if best is None else best[1:]


def drop_short_components(graph: nx.MultiGraph, min_length: float) -> int:
    """Remove connected components whose edges total less than ``min_length``; return how many."""
    dropped = 0
    for component in list(nx.connected_components(graph)):
        total = sum(length for _, _, length in graph.subgraph(component).edges(data="length"))
        if total < min_length:
            graph.remove_nodes_from(component)
            dropped += 1
    return dropped


def simplify_edges(graph: nx.MultiGraph, tolerance: float, *, geometry: PixelGeometry) -> int:
    """Douglas-Peucker each edge's path at ``tolerance`` (in the metric frame), keeping its end nodes.

    Returns the number of path vertices removed.
    """
    if tolerance <= 0 or graph.number_of_edges() == 0:
        return 0
    scale = _scale(geometry)
    keys = list(graph.edges(keys=True))
    lines = _lines([graph.edges[e]["path"] * scale for e in keys])
    simplified = shapely.simplify(lines, tolerance, preserve_topology=False)
    removed = 0
    for edge, line in zip(keys, simplified):
        data = graph.edges[edge]
        path = shapely.get_coordinates(line) / scale
        if len(path) < 2:  # a closed ring can collapse to its start: keep the original path
            continue
        path[0], path[-1] = data["path"][0], data["path"][-1]
        removed += len(data["path"]) - len(path)
        data["path"] = path
        data["length"] = geometry.path_length(path)
    return removed
