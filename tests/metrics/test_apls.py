"""APLS: identity, hand-computed cases, snapping distance, symmetry, graphs built from GeoJSON, and the rules
SpaceNet's reference follows (shared-vertex junctions, its control points, split points, lines drawn twice).

Parity with the reference's numbers on SpaceNet data is in test_apls_parity.py."""

from __future__ import annotations

import copy
import json
import math
import warnings

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString

from roadseg.errors import BadInputError
from roadseg.metrics.apls import (
    add_control_points,
    apls,
    control_nodes,
    control_positions,
    graph_from_geojson,
    graph_from_lines,
    graph_length,
    local_metric_crs,
    snap_points,
)


def lines_graph(*coords) -> nx.Graph:
    return graph_from_lines([LineString(c) for c in coords])


def _xy(graph: nx.Graph) -> list[tuple]:
    return [(node, data["x"], data["y"]) for node, data in graph.nodes(data=True)]


# a block: a square loop with a road through the middle and a spur, joined at vertices they share
BLOCK = [
    [(0, 0), (100, 0), (200, 0)], [(200, 0), (200, 100), (200, 200)], [(200, 200), (100, 200), (0, 200)],
    [(0, 200), (0, 0)], [(100, 0), (100, 200)], [(200, 100), (320, 100)],
]
CROSS = [[(0, 0), (100, 0)], [(30, -40), (30, 60)]]
"""Two lines crossing at (30, 0) without a vertex there: an overpass, or a file drawn without junctions.
(Their control points, ends and midpoints, lie off the other line: one on both would snap to either.)"""


class TestGraphFromLines:
    def test_a_crossing_without_a_shared_vertex_is_an_overpass(self):
        graph = lines_graph(*CROSS)
        assert graph.number_of_nodes() == 4
        assert graph.number_of_edges() == 2
        assert nx.number_connected_components(graph) == 2
        assert graph_length(graph) == pytest.approx(200)

    def test_node_crossings_joins_them(self):
        graph = graph_from_lines([LineString(c) for c in CROSS], node_crossings=True)
        assert graph.number_of_nodes() == 5
        assert graph.number_of_edges() == 4
        assert sorted(degree for _, degree in graph.degree()) == [1, 1, 1, 1, 4]
        assert graph_length(graph) == pytest.approx(200)

    def test_a_shared_vertex_is_a_junction(self):
        graph = lines_graph([(0, 0), (50, 0), (100, 0)], [(50, -50), (50, 0), (50, 50)])
        assert sorted(degree for _, degree in graph.degree()) == [1, 1, 1, 1, 4]
        tee = lines_graph([(0, 0), (50, 0), (100, 0)], [(50, 0), (50, 50)])
        assert sorted(degree for _, degree in tee.degree()) == [1, 1, 1, 3]

    def test_overpass_scores(self):
        # the truth is an overpass; a proposal drawn with a junction there adds turns the truth lacks
        truth = lines_graph(*CROSS)
        joined = graph_from_lines([LineString(c) for c in CROSS], node_crossings=True)
        assert apls(truth, lines_graph(*CROSS)).apls == pytest.approx(1)
        result = apls(truth, joined)
        assert result.truth_onto_proposal.score == pytest.approx(1)  # each road's own paths are all there
        assert result.proposal_onto_truth.score < 0.7  # paths that turn at the crossing are not

    def test_a_line_drawn_twice_counts_once(self):
        once = lines_graph([(0, 0), (60, 0), (60, 80)])
        for twice in (lines_graph([(0, 0), (60, 0), (60, 80)], [(0, 0), (60, 0), (60, 80)]),
                      lines_graph([(0, 0), (60, 0), (60, 80)], [(60, 80), (60, 0), (0, 0)]),
                      graph_from_lines([LineString([(0, 0), (60, 0), (60, 80)])] * 2, noded=True)):
            assert twice.number_of_edges() == once.number_of_edges() == 1
            assert graph_length(twice) == pytest.approx(140)
            assert apls(once, twice).apls == pytest.approx(1)
        crossed = graph_from_lines([LineString([(0, 0), (60, 0)])] * 2, node_crossings=True)
        assert graph_length(crossed) == pytest.approx(60)

    def test_pieces_meeting_end_to_end_are_merged(self):
        graph = lines_graph([(0, 0), (30, 0)], [(30, 0), (60, 40)])
        assert graph.number_of_edges() == 1
        assert graph_length(graph) == pytest.approx(80)

    def test_loop_and_parallel_edges_survive(self):
        ring = lines_graph([(0, 0), (10, 0), (10, 10), (0, 10), (0, 0)])
        assert graph_length(ring) == pytest.approx(40)
        assert nx.cycle_basis(ring)
        parallel = lines_graph([(0, 0), (10, 0)], [(0, 0), (5, 5), (10, 0)])
        assert graph_length(parallel) == pytest.approx(10 + 2 * math.hypot(5, 5))

    def test_empty(self):
        assert graph_from_lines([]).number_of_nodes() == 0

    @settings(max_examples=30, deadline=None)
    @given(st.lists(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=2, max_size=5),
                    min_size=1, max_size=5))
    def test_shared_vertex_noding(self, polylines):
        # lines on a small grid share vertices often, overlap, cross and repeat themselves
        lines = [LineString([(10.0 * x, 10.0 * y) for x, y in line]) for line in polylines]
        graph = graph_from_lines(lines)
        segments = {frozenset(pair) for line in lines for pair in zip(line.coords[:-1], line.coords[1:])
                    if pair[0] != pair[1]}
        # every distinct segment once, whatever the drawing order or direction
        assert graph_length(graph) == pytest.approx(sum(math.dist(*pair) for pair in segments))
        # no node where lines only cross: every node is a vertex of the input
        vertices = {p for line in lines for p in line.coords}
        assert all((x, y) in vertices for node, x, y in _xy(graph) if not graph.nodes[node].get("split"))


class TestControlPoints:
    def test_evenly_spaced(self):
        # SpaceNet's rule: ceil(120 / 50) = 3 equal pieces, not cuts at 50 and 100 leaving a 20 m stub
        graph = add_control_points(lines_graph([(0, 0), (120, 0)]), 50)
        xs = sorted(x for _, x in graph.nodes(data="x"))
        assert xs == pytest.approx([0, 40, 80, 120])
        assert graph_length(graph) == pytest.approx(120)

    def test_no_sub_metre_stub(self):
        # 100.5 m: cutting every 50 m from one end left a 0.5 m stub; now three pieces of 33.5 m
        graph = add_control_points(lines_graph([(0, 0), (100.5, 0)]), 50)
        assert sorted(length for *_, length in graph.edges(data="length")) == pytest.approx([33.5] * 3)

    def test_midpoint_on_a_short_edge(self):
        graph = add_control_points(lines_graph([(0, 0), (30, 40)]), 50)  # 50 m
        assert sorted((round(x, 6), round(y, 6)) for _, x, y in _xy(graph)) == [(0, 0), (15, 20), (30, 40)]
        assert add_control_points(lines_graph([(0, 0), (30, 0)]), 50).number_of_nodes() == 2  # under 37.5 m

    @settings(max_examples=40, deadline=None)
    @given(st.floats(0.1, 2000), st.floats(1, 200))
    def test_positions(self, length, spacing):
        positions = control_positions(length, spacing)
        if length < 0.75 * spacing:
            assert positions == []
        elif length <= spacing:
            assert positions == pytest.approx([length / 2])
        else:
            gaps = [b - a for a, b in zip([0.0, *positions], [*positions, length])]
            assert gaps == pytest.approx([gaps[0]] * len(gaps))  # evenly spaced, no stub
            assert spacing / 2 <= gaps[0] <= spacing * (1 + 1e-9)

    def test_loop_split_points_are_not_control_points(self):
        # a 120 m square loop hanging off a 30 m road: the loop is one road of 120 m from its junction
        square = [(30, 0), (60, 0), (60, 30), (30, 30), (30, 0)]
        graph = lines_graph([(0, 0), (30, 0)], square)
        splits = [node for node in graph if node not in control_nodes(graph)]
        assert len(splits) == 2  # the loop was cut in three to fit a simple graph
        controlled = add_control_points(graph, 50)
        points = sorted((round(x, 6), round(y, 6)) for node, x, y in _xy(controlled)
                        if node in control_nodes(controlled))
        # ends (0, 0) and (30, 0), and the loop's 3 pieces of 40 m from (30, 0): (60, 10), (40, 30)
        assert points == [(0, 0), (30, 0), (40, 30), (60, 10)]
        assert graph_length(controlled) == pytest.approx(150)

    def test_parallel_road_split_point_is_not_a_control_point(self):
        # two roads between the junctions (0, 0) and (30, 0): 30 m straight and a 50 m bend (one is split to
        # fit a simple graph), with a 40 m spur at either end
        graph = lines_graph([(-40, 0), (0, 0)], [(0, 0), (30, 0)], [(0, 0), (15, 20), (30, 0)], [(30, 0), (70, 0)])
        assert graph.number_of_nodes() == 5 and len(control_nodes(graph)) == 4
        controlled = add_control_points(graph, 50)
        points = sorted((round(x, 6), round(y, 6)) for node, x, y in _xy(controlled)
                        if node in control_nodes(controlled))
        # the spurs' and the bend's midpoints by the rule; the 30 m straight has none
        assert points == [(-40, 0), (-20, 0), (0, 0), (15, 20), (30, 0), (50, 0), (70, 0)]
        result = apls(graph, graph)
        assert result.truth_onto_proposal.control_points == 7
        assert result.apls == pytest.approx(1)

    def test_input_not_modified(self):
        graph = lines_graph(*BLOCK)
        before = (sorted(graph.nodes()), sorted(graph.edges()))
        add_control_points(graph, 50)
        snap_points(graph, {"p": (50, 1)}, 4)
        apls(graph, lines_graph([(0, 0), (200, 0)]))
        assert (sorted(graph.nodes()), sorted(graph.edges())) == before

    def test_snap_inserts_node_on_edge(self):
        points = {"a": (30, 3), "b": (30, 5), "c": (0, 1)}
        graph, mapping = snap_points(lines_graph([(0, 0), (100, 0)]), points, 4)
        assert set(mapping) == {"a", "c"}  # b is 5 m away
        node = mapping["a"]
        assert (graph.nodes[node]["x"], graph.nodes[node]["y"]) == pytest.approx((30, 0))
        assert nx.shortest_path_length(graph, mapping["c"], node, weight="length") == pytest.approx(30)


class TestApls:
    def test_identity(self):
        graph = lines_graph(*BLOCK)
        result = apls(graph, copy.deepcopy(graph))
        assert result.apls == pytest.approx(1)
        assert result.truth_onto_proposal.score == pytest.approx(1)
        assert result.proposal_onto_truth.score == pytest.approx(1)

    def test_half_road_by_hand(self):
        # truth 0-100 m: control points 0, 50, 100; the proposal covers 0-50 m, so 100 finds nothing.
        # truth onto proposal: pairs (0,50) cost 0, (0,100) and (50,100) cost 1 -> 1/3.
        # proposal onto truth: only the pair (0,50), exact -> 1. Harmonic mean: 2*(1/3)/(4/3) = 1/2.
        result = apls(lines_graph([(0, 0), (100, 0)]), lines_graph([(0, 0), (50, 0)]))
        assert result.truth_onto_proposal.score == pytest.approx(1 / 3)
        assert result.proposal_onto_truth.score == pytest.approx(1)
        assert result.apls == pytest.approx(0.5)

    def test_detour_costs_its_relative_length(self):
        # truth 0-36 m straight (under 37.5 m: no control point inside); the proposal joins the same ends
        # by a 2 x 30 m detour whose midpoint (18, 24) is too far from the truth to snap.
        truth = lines_graph([(0, 0), (36, 0)])
        proposal = lines_graph([(0, 0), (18, 24), (36, 0)])
        result = apls(truth, proposal)
        # truth onto proposal: one pair, 1 - |36 - 60| / 36 = 1/3. proposal onto truth: pairs (0, 60)
        # with truth path 36 -> 1 - 24/60; the two pairs with the unsnapped midpoint cost 1.
        assert result.truth_onto_proposal.score == pytest.approx(1 - 24 / 36)
        assert result.proposal_onto_truth.score == pytest.approx((1 - 24 / 60) / 3)

    def test_removed_edge_scores_below_one(self):
        truth = lines_graph(*BLOCK)
        proposal = truth.copy()
        u, v = next((u, v) for u, v in truth.edges() if truth.degree(u) > 1 and truth.degree(v) > 1)
        proposal.remove_edge(u, v)
        result = apls(truth, proposal)
        assert 0 < result.apls < 1
        assert result.truth_onto_proposal.score < 1

    def test_snapping_within_4_m(self):
        truth = lines_graph(*BLOCK)
        near = graph_from_lines([LineString([(x + 3, y) for x, y in line]) for line in BLOCK[:1]])
        far = graph_from_lines([LineString([(x, y + 5) for x, y in line]) for line in BLOCK[:1]])
        line = lines_graph(BLOCK[0])
        assert apls(line, near).apls == pytest.approx(1, abs=0.05)
        assert apls(line, far).apls == 0.0
        assert apls(line, far, snap=6).apls == pytest.approx(1)
        assert apls(truth, near).apls < 1

    def test_gap_breaks_paths(self):
        truth = lines_graph([(0, 0), (200, 0)])
        gapped = lines_graph([(0, 0), (90, 0)], [(110, 0), (200, 0)])
        result = apls(truth, gapped)
        assert result.apls < 0.6
        assert result.truth_onto_proposal.snapped == 4  # 100 m is 10 m from either piece

    def test_empty_proposal(self):
        result = apls(lines_graph(*BLOCK), nx.Graph())
        assert result.apls == 0.0
        assert result.truth_onto_proposal.score == 0.0
        assert math.isnan(result.proposal_onto_truth.score)
        assert math.isnan(apls(nx.Graph(), nx.Graph()).apls)

    def test_symmetric_cases(self):
        truth = lines_graph(*BLOCK)
        partial = lines_graph(*BLOCK[:4])
        forward, backward = apls(truth, partial), apls(partial, truth)
        assert forward.apls == pytest.approx(backward.apls)
        assert forward.truth_onto_proposal == backward.proposal_onto_truth
        assert forward.proposal_onto_truth == backward.truth_onto_proposal

    def test_bad_options(self):
        graph = lines_graph(BLOCK[0])
        with pytest.raises(ValueError, match="snap distance must be >= 0"):
            apls(graph, graph, snap=-1)
        with pytest.raises(ValueError, match="spacing must be > 0"):
            apls(graph, graph, spacing=0)

    @settings(max_examples=15, deadline=None)
    @given(st.lists(st.sampled_from(range(len(BLOCK))), min_size=1, max_size=6, unique=True),
           st.lists(st.sampled_from(range(len(BLOCK))), min_size=1, max_size=6, unique=True))
    def test_properties(self, first, second):
        a = lines_graph(*[BLOCK[i] for i in first])
        b = lines_graph(*[BLOCK[i] for i in second])
        ab, ba = apls(a, b), apls(b, a)
        assert 0 <= ab.apls <= 1 + 1e-9
        assert ab.apls == pytest.approx(ba.apls)
        if set(first) == set(second):
            assert ab.apls == pytest.approx(1)


def _haversine(lon1, lat1, lon2, lat2):
    r = 6371008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(h))


def _feature_collection(lines):
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "LineString", "coordinates": line}}
        for line in lines]}


class TestGeojson:
    def test_lengths_in_metres(self):
        # a T junction near Las Vegas: 0.002 degrees of longitude and of latitude
        data = _feature_collection([[[-115.232, 36.14], [-115.231, 36.14], [-115.230, 36.14]],
                                    [[-115.231, 36.14], [-115.231, 36.142]]])
        graph = graph_from_geojson(data)
        expected = (_haversine(-115.232, 36.14, -115.230, 36.14)
                    + _haversine(-115.231, 36.14, -115.231, 36.142))
        assert graph_length(graph) == pytest.approx(expected, rel=2e-3)
        assert graph.number_of_edges() == 3

    def test_junctions_at_shared_vertices_or_crossings(self):
        # the stem ends on the bar between two of its vertices: no junction unless crossings are joined
        data = _feature_collection([[[-115.232, 36.14], [-115.230, 36.14]],
                                    [[-115.231, 36.14], [-115.231, 36.142]]])
        assert graph_from_geojson(data).number_of_edges() == 2
        assert graph_from_geojson(data, node_crossings=True).number_of_edges() == 3

    def test_shared_crs_lets_a_shifted_copy_snap(self):
        truth = _feature_collection([[[-115.232, 36.14], [-115.228, 36.14]]])
        # 2e-5 degrees of latitude is about 2.2 m
        shifted = _feature_collection([[[-115.232, 36.14002], [-115.228, 36.14002]]])
        crs = local_metric_crs(truth)
        result = apls(graph_from_geojson(truth, crs=crs), graph_from_geojson(shifted, crs=crs))
        assert result.apls == pytest.approx(1, abs=1e-3)

    def test_non_lines_skipped_with_warning(self):
        data = _feature_collection([[[-115.232, 36.14], [-115.230, 36.14]]])
        data["features"].append({"type": "Feature", "properties": {},
                                 "geometry": {"type": "Point", "coordinates": [-115.23, 36.14]}})
        with pytest.warns(UserWarning, match="1 geometries that are not lines skipped"):
            graph = graph_from_geojson(data)
        assert graph.number_of_edges() == 1

    def test_projected_crs_member(self):
        # 1 km due north in UTM 11N near Las Vegas; UTM's scale error there is well under 0.1 %
        data = _feature_collection([[[664000.0, 4000000.0], [664000.0, 4001000.0]]])
        data["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32611"}}
        assert graph_length(graph_from_geojson(data)) == pytest.approx(1000, rel=1e-3)

    def test_unknown_crs(self):
        data = _feature_collection([[[0, 0], [1, 1]]])
        data["crs"] = {"type": "name", "properties": {"name": "EPSG:999999"}}
        with pytest.raises(BadInputError, match="unknown CRS 'EPSG:999999'"):
            graph_from_geojson(data)

    def test_bad_geometry(self):
        data = _feature_collection([[[0, 0]]])  # a LineString needs two positions
        with pytest.raises(BadInputError, match="GeoJSON: a geometry is not valid GeoJSON"):
            graph_from_geojson(data)

    def test_geographic_target_refused(self):
        data = _feature_collection([[[-115.232, 36.14], [-115.230, 36.14]]])
        with pytest.raises(ValueError, match="crs must be a projected"):
            graph_from_geojson(data, crs="EPSG:4326")

    def test_bad_file(self, tmp_path):
        path = tmp_path / "roads.geojson"
        path.write_text("{not json")
        with pytest.raises(BadInputError, match="roads.geojson: not a readable GeoJSON file"):
            graph_from_geojson(path)
        with pytest.raises(BadInputError, match="missing.geojson: no such file"):
            graph_from_geojson(tmp_path / "missing.geojson")

    def test_spacenet_sample_against_itself(self, shared_data, tmp_path):
        path = shared_data / "spacenet-vegas-pan" / "sample_roads_for_masking.geojson"
        data = json.loads(path.read_text())
        expected = sum(_haversine(*a, *b) for feature in data["features"]
                       for a, b in zip(feature["geometry"]["coordinates"][:-1],
                                       feature["geometry"]["coordinates"][1:]))
        graph = graph_from_geojson(path)
        assert graph_length(graph) == pytest.approx(expected, rel=2e-3)
        assert apls(graph, graph_from_geojson(path)).apls == pytest.approx(1)
        # dropping one road lowers it
        fewer = dict(data, features=data["features"][1:])
        assert apls(graph, graph_from_geojson(fewer, crs=graph.graph["crs"])).apls < 0.99


def _write(path, data):
    path.write_text(json.dumps(data))
    return path


def _haversine_length(lines):
    return sum(_haversine(*a, *b) for line in lines for a, b in zip(line[:-1], line[1:]))


class TestLengthsOfEachFileAlone:
    """Issue 14: against an empty or polygon-only truth, APLS measured the proposal in a projection centred
    on (0, 0): 238.2 m for 195.1 m of road. Each file's length is now its own."""

    @settings(max_examples=25, deadline=None)
    @given(st.floats(-170, 170), st.floats(-75, 75), st.floats(-3, 3), st.floats(-3, 3))
    def test_a_proposal_length_does_not_depend_on_the_truth(self, tmp_path_factory, lon, lat, east, north):
        from roadseg.metrics.evaluate import evaluate_graphs

        folder = tmp_path_factory.mktemp("lengths")
        road = [[lon, lat], [lon + 0.002, lat + 0.001], [lon + 0.003, lat - 0.001]]
        ring = [[lon, lat], [lon + 0.001, lat], [lon + 0.001, lat + 0.001], [lon, lat]]
        truths = {
            "empty": {"type": "FeatureCollection", "features": []},
            "polygon": {"type": "FeatureCollection", "features": [
                {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}]},
            "elsewhere": _feature_collection([[[lon + east, lat + north], [lon + east + 0.01, lat + north]]]),
            "itself": _feature_collection([road]),
        }
        proposal = _write(folder / "proposal.geojson", _feature_collection([road]))
        lengths = {}
        for name, truth in truths.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # the polygon is skipped, with a warning
                result = evaluate_graphs(proposal, _write(folder / f"{name}.geojson", truth)).apls
            lengths[name] = result.proposal_length_m
        expected = _haversine_length([road])
        for name, length in lengths.items():
            assert length == pytest.approx(lengths["itself"], rel=1e-9), name
        assert lengths["itself"] == pytest.approx(expected, rel=6e-3)  # ellipsoid against a sphere

    def test_spacenet_road_against_an_empty_or_polygon_only_truth(self, shared_data, tmp_path):
        from roadseg.metrics.evaluate import evaluate_graphs

        path = shared_data / "spacenet-vegas-pan" / "sample_roads_for_masking.geojson"
        if not path.is_file():
            pytest.skip(f"{path} not found")
        data = json.loads(path.read_text())
        one = _write(tmp_path / "one.geojson", dict(data, features=data["features"][:1]))
        polygon = {"type": "Polygon", "coordinates": [[[-115.23, 36.14], [-115.229, 36.14], [-115.229, 36.141],
                                                       [-115.23, 36.14]]]}
        empty = _write(tmp_path / "empty.geojson", dict(data, features=[]))
        polygons = _write(tmp_path / "polygons.geojson", dict(data, features=[
            {"type": "Feature", "properties": {}, "geometry": polygon}]))
        expected = _haversine_length([data["features"][0]["geometry"]["coordinates"]])
        with pytest.warns(UserWarning, match="polygons.geojson: 1 geometries that are not lines skipped"):
            against_polygons = evaluate_graphs(one, polygons).apls
        for result in (evaluate_graphs(one, empty).apls, against_polygons, evaluate_graphs(one, path).apls):
            assert result.proposal_length_m == pytest.approx(expected, rel=3e-3)

    def test_pixel_coordinates_are_refused_naming_the_file(self, tmp_path):
        pixels = dict(_feature_collection([[[0.5, 0.5], [0.9, 0.5]]]), coordinates="pixel")
        truth = _write(tmp_path / "truth.geojson", _feature_collection([[[-115.232, 36.14], [-115.228, 36.14]]]))
        proposal = _write(tmp_path / "pixels.geojson", pixels)
        from roadseg.metrics.evaluate import evaluate_graphs

        with pytest.raises(BadInputError, match="pixels.geojson: its coordinates are pixels, not places on the map"):
            evaluate_graphs(proposal, truth)
