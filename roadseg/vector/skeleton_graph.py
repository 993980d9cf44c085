"""Skeleton to graph: junction and end nodes, edges as pixel paths, loops kept.

A skeleton of a 10000 x 10000 mask has millions of pixels, too many to walk one by one in Python. The
graph is built with array operations only:

1. 8-neighbour adjacency of skeleton pixels by looking up the eight shifted positions (a diagonal link is
   dropped when the two pixels also meet through a shared 4-neighbour, so an L-shaped corner is a path,
   not a triangle, and only true forks get three or more neighbours);
2. pixels with one neighbour are end nodes, with three or more junction pixels (touching junction pixels
   form one node), and a cycle without any node gets one "loop" node so it is kept as a self-loop;
3. every link becomes a directed half-edge whose successor is the half-edge leaving its head pixel on the
   other side; pointer jumping (list ranking) finds, in ``log2(longest edge)`` array passes, the half-edge
   each chain ends with and every half-edge's distance to that end, which orders each edge's pixels.

Only the resulting edges (thousands) are visited in Python, to put them into a :mod:`networkx` graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from skimage.morphology import skeletonize

from roadseg.vector.geo import PixelGeometry

_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))
UNIT_PIXELS = PixelGeometry(1.0, 1.0, georeferenced=False, metric=False)
_CHUNK = 1 << 20  # skeleton pixels whose links are looked up at once


def skeletonize_mask(road: np.ndarray) -> np.ndarray:
    """One-pixel-wide skeleton of a boolean road mask (scikit-image, Zhang's method)."""
    road = np.asarray(road, dtype=bool)
    if road.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {road.shape}")
    return skeletonize(road)


def _lookup(flat: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which ``query`` positions are skeleton pixels (``flat`` sorted), and their pixel numbers."""
    index = np.minimum(np.searchsorted(flat, query), flat.size - 1)
    return flat[index] == query, index


def _index_type(n: int) -> type:
    """The integer type of pixel and link numbers: int32 (half the memory) unless there are too many."""
    return np.int32 if 2 * 8 * n < np.iinfo(np.int32).max else np.int64


def _pixel_links(flat: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Directed links ``(src, dst)`` between skeleton pixels, as pixel numbers (indices into ``flat``, the
    sorted flat positions of the pixels), sorted by ``src`` then ``dst``: looked up in ``flat``, so no
    raster is needed, a chunk of pixels at a time, so the lookups' scratch arrays stay small."""
    index_type = _index_type(flat.size)
    sources, targets = [], []
    for start in range(0, flat.size, _CHUNK):
        found = _neighbours(flat, flat[start:start + _CHUNK], shape, index_type)
        linked = found >= 0
        sources.append(np.repeat(np.arange(start, start + len(found), dtype=index_type),
                                 np.count_nonzero(linked, axis=1)))
        targets.append(found[linked])
    return np.concatenate(sources), np.concatenate(targets)


def _neighbours(flat: np.ndarray, part: np.ndarray, shape: tuple[int, int], index_type: type) -> np.ndarray:
    """For each pixel of ``part`` (flat positions), the pixel number of its linked neighbour in each of the
    eight directions, -1 for none. Directions go in raster order, so each pixel's links come out sorted."""
    height, width = shape
    found = np.full((part.size, len(_OFFSETS)), -1, dtype=index_type)
    rows, cols = np.divmod(part, width)
    for k, (dr, dc) in enumerate(_OFFSETS):
        inside = np.flatnonzero((rows + dr >= 0) & (rows + dr < height) & (cols + dc >= 0) & (cols + dc < width))
        hit, index = _lookup(flat, part[inside] + dr * width + dc)
        hit, index = inside[hit], index[hit]
        if dr and dc:
            via_corner = _lookup(flat, part[hit] + dr * width)[0] | _lookup(flat, part[hit] + dc)[0]
            hit, index = hit[~via_corner], index[~via_corner]
        found[hit, k] = index
    return found


def build_graph(skel: np.ndarray, geometry: PixelGeometry = UNIT_PIXELS) -> nx.MultiGraph:
    """Graph of a one-pixel-wide skeleton.

    Parameters
    ----------
    skel : (H, W) bool array
        A skeleton, e.g. from :func:`skeletonize_mask`.
    geometry : PixelGeometry
        Ground size of a pixel, used for the ``length`` of each edge (default: lengths in pixels).

    Returns
    -------
    networkx.MultiGraph
        Nodes carry ``rc`` (row, col as floats; the centroid of a junction's pixels) and ``kind``
        (``"end"``, ``"junction"`` or ``"loop"``). Edges carry ``path``, a ``(K, 2)`` float array of
        row/col positions from node ``start`` to the other end (both node positions included), and ``length``. Two
        junctions joined by two roads give parallel edges; a closed ring gives a self-loop.
        ``graph.graph["shape"]`` is the raster's shape.

    >>> s = np.zeros((3, 5), bool); s[1, :] = True
    >>> g = build_graph(s)
    >>> g.number_of_nodes(), g.number_of_edges(), g.edges[0, 1, 0]["length"]
    (2, 1, 4.0)
    """
    skel = np.asarray(skel, dtype=bool)
    if skel.ndim != 2:
        raise ValueError(f"expected a 2-D skeleton, got shape {skel.shape}")
    return pixels_graph(np.flatnonzero(skel), skel.shape, geometry)


def pixels_graph(flat: np.ndarray, shape: tuple[int, int], geometry: PixelGeometry = UNIT_PIXELS
                 ) -> nx.MultiGraph:
    """:func:`build_graph` of a skeleton given as the sorted flat positions ``flat`` of its pixels in a
    raster of ``shape``: a scene's skeleton gathered block by block, never held as a raster."""
    graph = nx.MultiGraph(shape=tuple(shape))
    flat = np.asarray(flat, dtype=np.int64)
    if flat.size == 0:
        return graph
    src, dst = _pixel_links(flat, shape)
    nodes = _find_nodes(src, dst, flat.size)
    _add_nodes(graph, nodes, flat, shape[1])
    src, dst = src[~nodes.internal], dst[~nodes.internal]  # half-edges; a link inside a junction is no edge
    if src.size:
        edges = _edge_pixels(src, dst, nodes.is_node, flat.size)
        del src, dst
        _add_edges(graph, edges, nodes.node_of, flat, geometry)
    return graph


@dataclass(frozen=True)
class _SkeletonNodes:
    """Where a skeleton's edges start and stop, and which node each of those pixels belongs to."""

    is_node: np.ndarray
    """Per pixel: an end, junction or loop pixel, where edges start and stop."""
    node_of: np.ndarray
    """Per pixel: its node's id; -1 along an edge."""
    kinds: np.ndarray
    """Per node: ``"junction"`` (numbered first), ``"end"`` or ``"loop"``."""
    internal: np.ndarray
    """Per link: both pixels belong to one junction, so the link is inside the node, not an edge."""


def _components(src: np.ndarray, dst: np.ndarray, n: int) -> np.ndarray:
    """Connected-component label of each of ``n`` pixels joined by the links ``src -> dst``."""
    adjacency = coo_matrix((np.ones(src.size, np.int8), (src, dst)), shape=(n, n))
    return connected_components(adjacency, directed=False)[1]


def _loop_pixels(src: np.ndarray, dst: np.ndarray, degree: np.ndarray) -> np.ndarray:
    """The first pixel of each cycle with no end or junction: the node that keeps a ring as a self-loop."""
    comp = _components(src, dst, degree.size)
    comp_has_node = np.zeros(comp.max() + 1, bool)
    comp_has_node[comp[degree != 2]] = True
    first_pixel = np.unique(comp, return_index=True)[1]
    return first_pixel[~comp_has_node[comp[first_pixel]] & (degree[first_pixel] == 2)]


def _find_nodes(src: np.ndarray, dst: np.ndarray, n: int) -> _SkeletonNodes:
    """Node pixels by their neighbour count: one neighbour an end, three or more a junction (touching
    junction pixels are one node), and one loop pixel on each cycle without either."""
    degree = np.bincount(src, minlength=n)
    junction = degree >= 3
    internal = junction[src] & junction[dst]
    loops = _loop_pixels(src, dst, degree)
    is_node = degree != 2
    is_node[loops] = True
    node_of = np.full(n, -1, dtype=_index_type(n))
    j_pixels = np.flatnonzero(junction)
    _, j_ids = np.unique(_components(src[internal], dst[internal], n)[j_pixels], return_inverse=True)
    node_of[j_pixels] = j_ids
    junctions = int(j_ids.max()) + 1 if j_ids.size else 0
    others = np.flatnonzero(is_node & ~junction & (degree > 0))
    node_of[others] = np.arange(junctions, junctions + others.size)
    kinds = np.full(junctions + others.size, "end", dtype=object)
    kinds[:junctions] = "junction"
    kinds[node_of[loops]] = "loop"
    return _SkeletonNodes(is_node, node_of, kinds, internal)


def _add_nodes(graph: nx.MultiGraph, nodes: _SkeletonNodes, flat: np.ndarray, width: int) -> None:
    """Add each node with its kind at the centroid of its pixels (a junction can span several)."""
    count = nodes.kinds.size
    members = np.flatnonzero(nodes.node_of >= 0)
    ids = nodes.node_of[members]
    rows, cols = np.divmod(flat[members], width)
    pixels = np.bincount(ids, minlength=count)
    node_r = np.bincount(ids, weights=rows, minlength=count) / pixels
    node_c = np.bincount(ids, weights=cols, minlength=count) / pixels
    for node in range(count):
        graph.add_node(node, rc=(float(node_r[node]), float(node_c[node])), kind=nodes.kinds[node])


def _chain_ends(src: np.ndarray, dst: np.ndarray, is_node: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """For each half-edge, the last half-edge of its chain (the one reaching a node) and its distance
    there, by pointer jumping: about log2(longest edge) array passes instead of a walk per pixel."""
    m = src.size
    index_type = src.dtype
    first_out = np.searchsorted(src, np.arange(n, dtype=index_type)).astype(index_type)[dst]
    terminal = is_node[dst]
    second_out = np.minimum(first_out + 1, m - 1)
    # The successor of p->q leaves q towards q's other neighbour (q has exactly two when not a node).
    successor = np.where(dst[first_out] == src, second_out, first_out)
    del first_out, second_out
    nxt = np.where(terminal, np.arange(m, dtype=index_type), successor)
    del successor
    dist = (~terminal).astype(index_type)
    while True:
        jumped = nxt[nxt]
        if np.array_equal(jumped, nxt):
            return nxt, dist
        dist += dist[nxt]
        nxt = jumped


def _edge_pixels(src: np.ndarray, dst: np.ndarray, is_node: np.ndarray, n: int) -> list[np.ndarray]:
    """The pixel numbers along each edge, from one node to the other; every edge once."""
    nxt, dist = _chain_ends(src, dst, is_node, n)
    starts = np.flatnonzero(is_node[src])
    keys = src.astype(np.int64) * n + dst
    reverse_of_start = np.searchsorted(keys, dst[starts].astype(np.int64) * n + src[starts])
    # Each edge is found from both of its ends; keep the direction whose last half-edge has the lower id.
    kept = starts[nxt[starts] < reverse_of_start]
    chosen_end = np.zeros(src.size, bool)
    chosen_end[nxt[kept]] = True
    member = np.flatnonzero(chosen_end[nxt])
    member = member[np.lexsort((-dist[member], nxt[member]))]
    chains = np.split(member, np.flatnonzero(np.diff(nxt[member])) + 1)
    return [np.append(src[chain], dst[chain[-1]]) for chain in chains]


def _add_edges(graph: nx.MultiGraph, edge_pixels: list[np.ndarray], node_of: np.ndarray,
               flat: np.ndarray, geometry: PixelGeometry) -> None:
    """Add each edge with its row/col path, its ends moved onto their nodes' centroids, and its length."""
    width = graph.graph["shape"][1]
    for pixels in edge_pixels:
        u, v = int(node_of[pixels[0]]), int(node_of[pixels[-1]])
        path = np.column_stack(np.divmod(flat[pixels], width)).astype(np.float64)
        path[0] = graph.nodes[u]["rc"]
        path[-1] = graph.nodes[v]["rc"]
        graph.add_edge(u, v, path=path, start=u, length=geometry.path_length(path))


def skeleton_to_graph(road: np.ndarray, geometry: PixelGeometry = UNIT_PIXELS) -> nx.MultiGraph:
    """Skeletonize a road mask and build its graph (:func:`skeletonize_mask` then :func:`build_graph`)."""
    return build_graph(skeletonize_mask(road), geometry)
