"""Evidence on every edge: prob_mean / prob_min over the pixels a line runs through, and gap_closed."""

from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from roadseg.errors import BadInputError, BadParameterError
from roadseg.io.masks import MaskRaster
from roadseg.vector.evidence import PROBABILITY, UNCERTAINTY, add_edge_evidence, edge_pixels, path_pixels
from roadseg.vector.evidence_maps import match_maps
from roadseg.vector.vectorize import VectorizeOptions, vectorize

PIXELS = VectorizeOptions(pixel_size=1.0)


def band(gap: tuple[int, int] | None = None) -> np.ndarray:
    """A 4-pixel-wide horizontal road across a 40 x 80 raster, cut at columns ``gap``."""
    road = np.zeros((40, 80), bool)
    road[18:22, :] = True
    if gap is not None:
        road[:, gap[0]:gap[1]] = False
    return road


def by_column(values: np.ndarray) -> np.ndarray:
    """A probability map whose value depends on the column only, so a line's evidence is that of its columns."""
    return np.tile(values.astype(np.float32), (40, 1))


def end_columns(feature: dict) -> tuple[int, int]:
    """The first and last pixel column of a line in pixel coordinates (pixel centres at +0.5)."""
    xs = [round(x - 0.5) for x, _ in feature["geometry"]["coordinates"]]
    return min(xs), max(xs)


def test_path_pixels_keeps_skeleton_steps_and_fills_a_straight_join():
    steps = np.array([[5, 5], [5, 6], [6, 7], [7, 7]], float)
    assert path_pixels(steps).tolist() == steps.astype(int).tolist()
    join = path_pixels(np.array([[2.0, 1.0], [2.0, 7.0]]))
    assert join.tolist() == [[2, c] for c in range(1, 8)]


paths = st.lists(arrays(np.float64, st.tuples(st.integers(1, 8), st.just(2)),
                        elements=st.floats(-20, 60, allow_nan=False)), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(paths=paths)
def test_edges_traced_together_are_each_traced_alone_and_step_one_pixel(paths):
    graph = one_edge(*paths)
    edges = list(graph.edges(keys=True, data=True))
    owner, rc = edge_pixels(edges, (40, 40))
    for index, (_, _, _, data) in enumerate(edges):
        alone = path_pixels(data["path"])
        assert (np.abs(np.diff(alone, axis=0)).max(axis=1) == 1).all()  # 8-connected steps, no repeats
        assert alone[0].tolist() == np.floor(data["path"][0] + 0.5).tolist()
        assert alone[-1].tolist() == np.floor(data["path"][-1] + 0.5).tolist()
        inside = alone[((alone >= 0) & (alone < 40)).all(axis=1)]
        assert rc[owner == index].tolist() == inside.tolist()


def one_edge(*paths) -> nx.MultiGraph:
    """A graph of one edge per row/col path."""
    graph = nx.MultiGraph()
    for index, path in enumerate(paths):
        graph.add_edge(2 * index, 2 * index + 1, path=np.array(path, float))
    return graph


def test_edge_evidence_skips_nodata_and_nan():
    prob = np.array([[0.2, np.nan, 0.8, 0.4]], np.float32)
    valid = np.array([[True, True, True, False]])
    graph = one_edge([[0, 0], [0, 3]], [[0, 3], [0, 3]])
    add_edge_evidence(graph, {PROBABILITY: prob, UNCERTAINTY: prob / 4}, valid)
    (_, _, first), (_, _, last) = graph.edges(data=True)
    assert first["prob_mean"] == pytest.approx(0.5) and first["prob_min"] == pytest.approx(0.2)
    assert last["prob_mean"] is None and last["prob_min"] is None and last["uncertainty_mean"] is None
    assert first["uncertainty_mean"] == pytest.approx(0.125) and "uncertainty_min" not in first


@pytest.mark.parametrize("simplify", [0.0, 1.0, 5.0])
def test_straight_road_carries_the_mean_and_min_of_its_pixels(simplify):
    values = np.random.default_rng(3).uniform(0.5, 1.0, 80)
    options = VectorizeOptions(pixel_size=1.0, simplify=simplify)
    (feature,) = vectorize(band(), options, prob=by_column(values)).collection["features"]
    c0, c1 = end_columns(feature)
    props = feature["properties"]
    assert props["prob_mean"] == pytest.approx(values[c0:c1 + 1].mean(), abs=1e-4)
    assert props["prob_min"] == pytest.approx(values[c0:c1 + 1].min(), abs=1e-4)
    assert props["gap_closed"] is False


def test_a_closed_gap_is_flagged_and_its_weak_pixels_lower_the_evidence():
    values = np.full(80, 0.9)
    values[38:44] = 0.1  # the gap: no road in the mask, little in the probabilities
    gaps = VectorizeOptions(pixel_size=1.0, max_gap=15.0)
    (feature,) = vectorize(band(gap=(38, 44)), gaps, prob=by_column(values)).collection["features"]
    c0, c1 = end_columns(feature)
    props = feature["properties"]
    assert props["gap_closed"] is True
    assert props["prob_min"] == pytest.approx(0.1, abs=1e-4)
    assert props["prob_mean"] == pytest.approx(values[c0:c1 + 1].mean(), abs=1e-4)
    without = vectorize(band(gap=(38, 44)), gaps).collection["features"][0]["properties"]
    assert without["gap_closed"] is True and "prob_mean" not in without


def test_a_probability_map_read_at_a_threshold_is_its_own_evidence():
    prob = np.where(band(), np.linspace(0.6, 1.0, 80)[None, :], 0.1).astype(np.float32)
    (feature,) = vectorize(prob, VectorizeOptions(pixel_size=1.0, threshold=0.5)).collection["features"]
    c0, c1 = end_columns(feature)
    assert feature["properties"]["prob_min"] == pytest.approx(prob[20, c0], abs=1e-4)
    assert feature["properties"]["prob_mean"] == pytest.approx(prob[20, c0:c1 + 1].mean(), abs=1e-4)


def test_a_mask_raster_carries_its_probabilities():
    road = band()
    raster = MaskRaster(road=road, valid=np.ones(road.shape, bool), transform=Affine.identity(), crs=None,
                        source="r", probability=by_column(np.full(80, 0.7)))
    (feature,) = vectorize(raster, PIXELS).collection["features"]
    assert feature["properties"]["prob_min"] == pytest.approx(0.7, abs=1e-4)


@pytest.mark.parametrize("prob, problem", [(np.zeros((4, 4)), "shape"), (np.full((40, 80), 2.0), "[0, 1]")])
def test_bad_probabilities_are_refused_by_parameter_name(prob, problem):
    with pytest.raises(BadParameterError) as error:
        vectorize(band(), PIXELS, prob=prob)
    assert error.value.parameter == "prob" and problem in str(error.value)


def test_match_maps_pairs_by_stem_and_refuses_what_does_not_match():
    masks = [Path("d/a_mask.tif"), Path("d/b_mask.tif")]
    probs = [Path("p/b_prob.tif"), Path("p/a_prob.tif")]
    assert match_maps(masks, probs) == {masks[0]: probs[1], masks[1]: probs[0]}
    assert match_maps(masks[:1], [Path("any.tif")]) == {masks[0]: Path("any.tif")}
    with pytest.raises(BadInputError, match="b_mask.tif: no probability map b_prob"):
        match_maps(masks, probs[1:])
    with pytest.raises(BadInputError, match="c_prob.tif: matches no mask"):
        match_maps(masks, [*probs, Path("p/c_prob.tif")])
    with pytest.raises(BadInputError, match="a second probability map"):
        match_maps(masks, [*probs, Path("q/a_prob.tif")])


def test_match_maps_pairs_uncertainty_with_masks_or_thresholded_probability_maps():
    maps = [Path("u/b_uncertainty.tif"), Path("u/a_uncertainty.tif")]
    masks = [Path("d/a_mask.tif"), Path("d/b_mask.tif")]
    assert match_maps(masks, maps, UNCERTAINTY) == {masks[0]: maps[1], masks[1]: maps[0]}
    probs = [Path("d/a_prob.tif"), Path("d/b_prob.tif")]
    assert match_maps(probs, maps, UNCERTAINTY, "_prob") == {probs[0]: maps[1], probs[1]: maps[0]}
    with pytest.raises(BadInputError, match=r"b_mask.tif: no uncertainty map b_uncertainty among `uncertainty`"):
        match_maps(masks, maps[1:], UNCERTAINTY)
    with pytest.raises(BadInputError, match=r"a_uncertainty.tif: a second uncertainty map for stem .a. \(after u/"):
        match_maps(masks, [*maps, Path("v/a_uncertainty.tif")], UNCERTAINTY)


@pytest.mark.filterwarnings("ignore:array. its:UserWarning")
@settings(max_examples=25, deadline=None)
@given(road=arrays(bool, (24, 24)), prob=arrays(np.float32, (24, 24), elements=st.floats(0, 1, width=32)))
def test_evidence_is_a_probability_and_min_never_exceeds_mean(road, prob):
    options = VectorizeOptions(pixel_size=1.0, min_hole=0, min_area=0, min_spur=0, min_length=0, max_gap=5)
    for feature in vectorize(road, options, prob=prob).collection["features"]:
        props = feature["properties"]
        assert isinstance(props["gap_closed"], bool)
        if props["prob_mean"] is not None:
            assert 0 <= props["prob_min"] <= props["prob_mean"] + 1e-9 <= 1 + 1e-9


class TestUncertainty:
    """``uncertainty_mean``: the mean TTA variance over the pixels ``prob_mean`` uses, checked against numpy."""

    OPEN = VectorizeOptions(pixel_size=1.0, min_hole=0, min_area=0, min_spur=0, min_length=0, max_gap=0, simplify=3)

    @pytest.mark.parametrize("corners", [[(5, 5), (5, 60)], [(3, 4), (30, 31)], [(5, 5), (5, 30), (30, 55)]])
    def test_the_mean_over_a_drawn_line_is_numpys(self, corners):
        """A one-pixel road drawn with skimage is its own skeleton: one edge over exactly those pixels."""
        from skimage.draw import line as draw_line

        road = np.zeros((40, 70), bool)
        for (r0, c0), (r1, c1) in zip(corners, corners[1:]):
            road[draw_line(r0, c0, r1, c1)] = True
        variance = np.random.default_rng(len(corners)).uniform(0, 0.25, road.shape).astype(np.float32)
        variance[:, 50:55] = np.nan  # no data there: left out of the mean
        (feature,) = vectorize(road, self.OPEN, uncertainty=variance).collection["features"]
        expected = np.nanmean(variance[road].astype(np.float64))
        assert feature["properties"]["uncertainty_mean"] == pytest.approx(expected, abs=1e-6)
        assert "prob_mean" not in feature["properties"]

    def test_beside_probabilities_on_the_same_pixels_and_none_without_data(self):
        values = np.random.default_rng(5).uniform(0, 0.25, 80)
        variance = by_column(values)
        variance[:, :40] = np.nan
        valid = np.ones((40, 80), bool)
        valid[:, 40:] = False  # the map's data lies where the mask has none
        result = vectorize(band(), PIXELS, prob=by_column(np.full(80, 0.8)), uncertainty=variance, valid=valid)
        (feature,) = result.collection["features"]
        props = feature["properties"]
        assert props["uncertainty_mean"] is None and props["prob_mean"] == pytest.approx(0.8, abs=1e-4)
        (feature,) = vectorize(band(), PIXELS, uncertainty=by_column(values)).collection["features"]
        c0, c1 = end_columns(feature)
        assert feature["properties"]["uncertainty_mean"] == pytest.approx(values[c0:c1 + 1].mean(), abs=1e-6)

    def test_a_closed_gap_counts_its_join(self):
        values = np.full(80, 0.01)
        values[38:44] = 0.2  # the views disagree across the gap
        gaps = VectorizeOptions(pixel_size=1.0, max_gap=15.0)
        (feature,) = vectorize(band(gap=(38, 44)), gaps, uncertainty=by_column(values)).collection["features"]
        c0, c1 = end_columns(feature)
        assert feature["properties"]["gap_closed"] is True
        assert feature["properties"]["uncertainty_mean"] == pytest.approx(values[c0:c1 + 1].mean(), abs=1e-6)

    def test_a_mask_raster_carries_its_uncertainty(self):
        road = band()
        raster = MaskRaster(road=road, valid=np.ones(road.shape, bool), transform=Affine.identity(), crs=None,
                            source="r", uncertainty=by_column(np.full(80, 0.125)))
        (feature,) = vectorize(raster, PIXELS).collection["features"]
        assert feature["properties"]["uncertainty_mean"] == pytest.approx(0.125)
        with pytest.raises(BadParameterError, match="uncertainty"):
            vectorize(raster, PIXELS, uncertainty=np.zeros(road.shape))

    @pytest.mark.parametrize("variance, problem", [(np.zeros((4, 4)), "shape"),
                                                   (np.full((40, 80), 0.5), "variances in [0, 0.25]")])
    def test_bad_maps_are_refused_by_parameter_name(self, variance, problem):
        with pytest.raises(BadParameterError) as error:
            vectorize(band(), PIXELS, uncertainty=variance)
        assert error.value.parameter == "uncertainty" and problem in str(error.value)
