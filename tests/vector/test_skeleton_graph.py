import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage
from skimage.draw import circle_perimeter, disk, line

from roadseg.vector.geo import PixelGeometry
from roadseg.vector.skeleton_graph import build_graph, skeleton_to_graph, skeletonize_mask


def kinds(graph):
    return sorted(kind for _, kind in graph.nodes(data="kind"))


def lengths(graph):
    return sorted(round(length, 1) for _, _, length in graph.edges(data="length"))


class TestBuildGraphHandDrawn:
    def test_cross(self):
        s = np.zeros((21, 21), bool)
        s[10, :] = True
        s[:, 10] = True
        g = build_graph(s)
        assert kinds(g) == ["end"] * 4 + ["junction"]
        assert lengths(g) == [10.0] * 4
        (junction,) = [n for n, k in g.nodes(data="kind") if k == "junction"]
        assert g.nodes[junction]["rc"] == (10.0, 10.0) and g.degree(junction) == 4

    def test_t(self):
        s = np.zeros((21, 21), bool)
        s[2, :] = True
        s[2:, 10] = True
        g = build_graph(s)
        assert kinds(g) == ["end"] * 3 + ["junction"]
        assert lengths(g) == [10.0, 10.0, 18.0]

    def test_ring_is_a_self_loop(self):
        s = np.zeros((41, 41), bool)
        rr, cc = circle_perimeter(20, 20, 12)
        s[rr, cc] = True
        g = build_graph(s)
        assert g.number_of_nodes() == 1 and kinds(g) == ["loop"]
        (u, v, data), = g.edges(data=True)
        assert u == v
        assert 2 * np.pi * 12 * 0.9 < data["length"] < 2 * np.pi * 12 * 1.15
        np.testing.assert_array_equal(data["path"][0], data["path"][-1])

    def test_ring_with_a_tail_keeps_the_loop(self):
        s = np.zeros((41, 41), bool)
        rr, cc = circle_perimeter(20, 20, 12)
        s[rr, cc] = True
        s[20, 32:41] = True
        g = build_graph(s)
        assert kinds(g) == ["end", "junction"]
        assert sum(1 for u, v in g.edges() if u == v) == 1

    def test_two_roads_between_two_junctions_are_parallel_edges(self):
        s = np.zeros((30, 40), bool)
        s[10, 0:40] = True
        s[20, 10:31] = True
        s[10:21, 10] = True
        s[10:21, 30] = True
        g = build_graph(s)
        junctions = [n for n, k in g.nodes(data="kind") if k == "junction"]
        assert len(junctions) == 2
        assert g.number_of_edges(*junctions) == 2

    def test_line_touching_the_border(self):
        s = np.zeros((10, 30), bool)
        s[5, :] = True
        g = build_graph(s)
        ends = sorted(rc for _, rc in g.nodes(data="rc"))
        assert ends == [(5.0, 0.0), (5.0, 29.0)]

    def test_staircase_corner_is_not_a_junction(self):
        s = np.zeros((10, 10), bool)
        s[2, 1:5] = True
        s[3, 4:9] = True  # a step: (2,4) and (3,4) meet orthogonally, (2,4)-(3,5) diagonally as well
        g = build_graph(s)
        assert kinds(g) == ["end", "end"]

    def test_paths_run_from_start_node(self):
        s = np.zeros((21, 21), bool)
        s[2, :] = True
        s[2:, 10] = True
        g = build_graph(s)
        for u, v, data in g.edges(data=True):
            other = v if data["start"] == u else u
            np.testing.assert_allclose(data["path"][0], g.nodes[data["start"]]["rc"])
            np.testing.assert_allclose(data["path"][-1], g.nodes[other]["rc"])

    def test_lengths_use_pixel_geometry(self):
        s = np.zeros((3, 11), bool)
        s[1, :] = True
        g = build_graph(s, PixelGeometry(0.5, 2.0, georeferenced=True))
        assert lengths(g) == [5.0]


class TestEdgeCases:
    def test_empty(self):
        g = build_graph(np.zeros((5, 5), bool))
        assert g.number_of_nodes() == 0 and g.graph["shape"] == (5, 5)

    def test_isolated_pixel_has_no_edges(self):
        s = np.zeros((5, 5), bool)
        s[2, 2] = True
        assert build_graph(s).number_of_edges() == 0

    def test_wrong_ndim(self):
        with pytest.raises(ValueError, match="2-D"):
            build_graph(np.zeros((2, 2, 2), bool))
        with pytest.raises(ValueError, match="2-D"):
            skeletonize_mask(np.zeros(4, bool))

    def test_input_not_modified(self):
        m = np.zeros((30, 30), bool)
        m[10:16, :] = True
        before = m.copy()
        skeleton_to_graph(m)
        np.testing.assert_array_equal(m, before)


def test_thick_cross_mask():
    m = np.zeros((100, 100), bool)
    m[45:55, :] = True
    m[:, 45:55] = True
    g = skeleton_to_graph(m)
    assert kinds(g) == ["end"] * 4 + ["junction"]
    assert all(40 < length <= 50 for length in lengths(g))


def test_thick_ring_mask_is_kept_as_loop():
    m = np.zeros((100, 100), bool)
    m[disk((50, 50), 30)] = True
    m[disk((50, 50), 24)] = False
    g = skeleton_to_graph(m)
    assert [k for _, k in g.nodes(data="kind")] == ["loop"]
    assert 2 * np.pi * 27 * 0.9 < lengths(g)[0] < 2 * np.pi * 27 * 1.15


@st.composite
def road_drawings(draw):
    s = np.zeros((40, 40), bool)
    for _ in range(draw(st.integers(1, 5))):
        r0, c0, r1, c1 = (draw(st.integers(0, 39)) for _ in range(4))
        s[line(r0, c0, r1, c1)] = True
    return s


@settings(max_examples=25, deadline=None)
@given(road_drawings())
def test_every_skeleton_pixel_is_on_exactly_one_edge_or_a_node(drawing):
    """Edge interiors partition the skeleton's two-neighbour pixels; paths step between 8-neighbours."""
    skel = skeletonize_mask(drawing)
    g = build_graph(skel)
    seen = {}
    for index, (_, _, data) in enumerate(g.edges(data=True)):
        path = data["path"]
        interior = path[1:-1].astype(int)
        assert np.all(np.abs(np.diff(path[1:-1], axis=0)) <= 1.0)  # interior steps join 8-neighbours
        assert skel[interior[:, 0], interior[:, 1]].all()
        for pixel in map(tuple, interior):
            assert pixel not in seen
            seen[pixel] = index
    node_px = {tuple(np.round(rc).astype(int)) for _, rc in g.nodes(data="rc")}

    def near_a_node(pixel) -> bool:
        return any(abs(pixel[0] - r) <= 1 and abs(pixel[1] - c) <= 1 for r, c in node_px)

    # A junction node stands for a whole cluster of touching pixels with three or more neighbours,
    # which can reach further than one pixel from its centre: the cluster must hold a node.
    neighbours = ndimage.convolve(skel.astype(int), np.ones((3, 3), int), mode="constant") - 1
    clusters, _ = ndimage.label(skel & (neighbours >= 3), structure=np.ones((3, 3)))
    for pixel in map(tuple, np.argwhere(skel)):
        isolated = skel[max(pixel[0] - 1, 0):pixel[0] + 2, max(pixel[1] - 1, 0):pixel[1] + 2].sum() == 1
        cluster = clusters[pixel]
        in_junction = cluster > 0 and any(near_a_node(p) for p in map(tuple, np.argwhere(clusters == cluster)))
        assert pixel in seen or near_a_node(pixel) or isolated or in_junction
    for node in g.nodes:
        kind = g.nodes[node]["kind"]
        if kind == "end":
            assert g.degree(node) == 1
        elif kind == "junction":
            assert g.degree(node) >= 3
