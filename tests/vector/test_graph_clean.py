import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roadseg.vector import graph_clean
from roadseg.vector.geo import PixelGeometry
from roadseg.vector.skeleton_graph import build_graph

PX = PixelGeometry(1.0, 1.0, georeferenced=False, metric=False)


def graph_of(skel):
    return build_graph(skel, PX)


def total_length(graph):
    return sum(length for _, _, length in graph.edges(data="length"))


def skeleton(shape, *pieces):
    """A boolean raster with the pixels of each index expression (``np.s_[row, cols]``) set."""
    s = np.zeros(shape, bool)
    for piece in pieces:
        s[piece] = True
    return s


def gaps_closed(shape, *pieces, max_gap=10, geometry=PX):
    """The graph of a drawn skeleton after close_gaps, and the joins close_gaps reported."""
    g = build_graph(skeleton(shape, *pieces), geometry)
    return graph_clean.close_gaps(g, max_gap, geometry=geometry), g


class TestPruneSpurs:
    def make(self):
        s = np.zeros((60, 100), bool)
        s[30, 10:90] = True  # main road, ends 10 px from the left and right border
        s[24:30, 40] = True  # 6 px spur
        s[30:50, 70] = True  # 20 px side road
        return s

    def test_removes_short_spurs_and_merges_the_road(self):
        g = graph_of(self.make())
        removed = graph_clean.prune_spurs(g, 10, geometry=PX)
        assert removed == 1
        assert g.number_of_edges() == 3  # the spur's junction dissolved into the main road
        assert sorted(k for _, k in g.nodes(data="kind")) == ["end", "end", "end", "junction"]

    def test_keeps_long_side_roads(self):
        g = graph_of(self.make())
        graph_clean.prune_spurs(g, 15, geometry=PX)
        assert any(round(rc[0]) == 49 for _, rc in g.nodes(data="rc"))

    def test_repeats_until_no_spur_is_left(self):
        s = np.zeros((60, 100), bool)
        s[30, 10:90] = True
        s[22:30, 40] = True  # 8 px spur with a 3 px spur on it
        s[24, 41:44] = True
        g = graph_of(s)
        graph_clean.prune_spurs(g, 10, geometry=PX)
        assert g.number_of_edges() == 1 and total_length(g) == pytest.approx(79, abs=1)

    def test_keeps_border_dead_ends(self):
        s = np.zeros((60, 100), bool)
        s[30, 10:90] = True
        s[0:30, 40] = True  # 30 px... but shorter than min_spur below, and touching the top border
        g = graph_of(s)
        keep = graph_clean.border_nodes(g, margin=1)
        graph_clean.prune_spurs(g, 50, keep=keep, geometry=PX)
        assert any(rc[0] == 0 for _, rc in g.nodes(data="rc"))
        g2 = graph_of(s)
        graph_clean.prune_spurs(g2, 50, geometry=PX)
        assert not any(rc[0] == 0 for _, rc in g2.nodes(data="rc"))

    def test_a_lone_short_segment_is_not_a_spur(self):
        s = np.zeros((20, 20), bool)
        s[10, 5:9] = True
        g = graph_of(s)
        assert graph_clean.prune_spurs(g, 10, geometry=PX) == 0
        assert g.number_of_edges() == 1

    def test_short_cross_keeps_a_line(self):
        s = np.zeros((21, 21), bool)
        s[10, 5:16] = True
        s[5:16, 10] = True  # four 5 px arms
        g = graph_of(s)
        graph_clean.prune_spurs(g, 8, geometry=PX)
        assert g.number_of_edges() == 1 and total_length(g) == pytest.approx(10)


    def test_small_bubble_becomes_one_edge_but_a_block_stays(self):
        s = np.zeros((40, 100), bool)
        s[20, 5:95] = True
        s[17, 42:49] = True  # a 3 px high bubble above the road between columns 41 and 49
        s[17:20, 41] = True
        s[17:20, 49] = True
        g = graph_of(s)
        assert g.number_of_edges() == 4
        graph_clean.prune_spurs(g, 15, geometry=PX)  # both sides (8 and 14 px) shorter than min_spur
        assert g.number_of_edges() == 1 and total_length(g) == pytest.approx(89)
        g = graph_of(s)
        graph_clean.prune_spurs(g, 10, geometry=PX)  # a loop with a side longer than min_spur stays
        assert g.number_of_edges() == 4


class TestCloseGaps:
    def test_joins_collinear_ends(self):
        joins, g = gaps_closed((40, 100), np.s_[20, 5:45], np.s_[20, 52:95])
        assert joins == 1
        assert g.number_of_edges() == 1 and nx.is_connected(g)
        assert total_length(g) == pytest.approx(89)

    def test_refuses_gap_longer_than_max_gap(self):
        joins, _ = gaps_closed((40, 100), np.s_[20, 5:45], np.s_[20, 60:95])
        assert joins == 0

    def test_refuses_perpendicular_ends(self):
        joins, g = gaps_closed((60, 60),
                               np.s_[30, 5:30],  # ends at (30, 29) heading east
                               np.s_[35:58, 34])  # ends at (35, 34) heading north: perpendicular, 6.4 px apart
        assert joins == 0
        assert nx.number_connected_components(g) == 2

    def test_refuses_offset_ends_beyond_the_angle(self):
        joins, _ = gaps_closed((60, 100), np.s_[20, 5:45],
                               np.s_[26, 50:95])  # 5 px along, 6 px across: 50 degrees off
        assert joins == 0

    def test_joins_an_end_to_the_edge_it_points_at(self):
        joins, g = gaps_closed((60, 60), np.s_[30, 2:58],
                               np.s_[36:58, 25])  # heads north and stops 6 px short of the road
        assert joins == 1
        assert nx.is_connected(g)
        junction = [n for n in g.nodes if g.degree(n) == 3]
        assert len(junction) == 1 and g.nodes[junction[0]]["rc"] == pytest.approx((30, 25))

    def test_does_not_join_an_edge_beside_the_end(self):
        joins, _ = gaps_closed((60, 60), np.s_[30, 2:58],
                               np.s_[36, 5:25])  # parallel road 6 px away: its ends point along, not at, the road
        assert joins == 0

    def test_metric_gap_uses_pixel_size(self):
        joins, _ = gaps_closed((40, 100), np.s_[20, 5:45],
                               np.s_[20, 52:95],  # 7 px gap = 14 m at 2 m pixels
                               geometry=PixelGeometry(2.0, 2.0, georeferenced=True))
        assert joins == 0


class TestComponentsAndSimplify:
    def test_drops_short_components_only(self):
        s = np.zeros((40, 100), bool)
        s[5, 5:90] = True
        s[20, 5:15] = True
        s[30, 5:40] = True
        g = graph_of(s)
        assert graph_clean.drop_short_components(g, 20) == 1
        assert sorted(round(x) for x in (length for *_, length in g.edges(data="length"))) == [34, 84]

    def test_component_length_is_the_total_of_its_edges(self):
        s = np.zeros((40, 40), bool)
        s[20, 10:21] = True
        s[10:21, 15] = True  # T of 10 + 5 + 5 + ... edges: total 20 px
        g = graph_of(s)
        assert graph_clean.drop_short_components(g, 20.5) == 1
        g = graph_of(s)
        assert graph_clean.drop_short_components(g, 19.5) == 0

    def test_simplify_keeps_end_nodes_and_straightens(self):
        s = np.zeros((20, 60), bool)
        s[10, 0:30] = True
        s[11, 30:60] = True  # one-pixel step
        g = graph_of(s)
        graph_clean.simplify_edges(g, 1.0, geometry=PX)
        (_, _, data), = g.edges(data=True)
        assert len(data["path"]) == 2
        assert sorted(map(tuple, data["path"][[0, -1]].tolist())) == [(10, 0), (11, 59)]

    def test_simplify_zero_keeps_every_vertex(self):
        s = np.zeros((20, 60), bool)
        s[10, 0:30] = True
        s[11, 30:60] = True
        g = graph_of(s)
        assert graph_clean.simplify_edges(g, 0, geometry=PX) == 0


@settings(max_examples=30, deadline=None)
@given(st.integers(3, 30), st.integers(1, 25), st.floats(0, 25))
def test_pruning_never_disconnects_and_never_grows(spur_len, side, min_spur):
    s = np.zeros((40, 80), bool)
    s[20, 5:75] = True
    s[20 - min(spur_len, 19):20, 30] = True
    s[20:20 + min(side, 19), 50] = True
    g = graph_of(s)
    before = total_length(g)
    graph_clean.prune_spurs(g, min_spur, geometry=PX)
    assert nx.number_connected_components(g) == 1
    assert total_length(g) <= before + 1e-9
    # nothing left that is a prunable spur
    for u, v, length in g.edges(data="length"):
        for end, other in ((u, v), (v, u)):
            if g.degree(end) == 1 and g.degree(other) >= 3:
                assert length >= min_spur
