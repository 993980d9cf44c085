"""Evidence on every edge: prob_mean / prob_min over the pixels a line runs through, and gap_closed."""

from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from roadseg.errors import BadInputError, BadParameterError
from roadseg.io.masks import MaskRaster
from roadseg.vector.evidence import path_pixels, pixel_evidence
from roadseg.vector.vectorize import VectorizeOptions, match_prob, vectorize

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


def test_pixel_evidence_skips_nodata_and_nan():
    prob = np.array([[0.2, np.nan, 0.8, 0.4]], np.float32)
    valid = np.array([[True, True, True, False]])
    mean, low = pixel_evidence(np.array([[0, 0], [0, 1], [0, 2], [0, 3]]), prob, valid)
    assert mean == pytest.approx(0.5) and low == pytest.approx(0.2)
    assert pixel_evidence(np.array([[0, 3]]), prob, valid) is None


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


def test_match_prob_pairs_by_stem_and_refuses_what_does_not_match():
    masks = [Path("d/a_mask.tif"), Path("d/b_mask.tif")]
    probs = [Path("p/b_prob.tif"), Path("p/a_prob.tif")]
    assert match_prob(masks, probs) == {masks[0]: probs[1], masks[1]: probs[0]}
    assert match_prob(masks[:1], [Path("any.tif")]) == {masks[0]: Path("any.tif")}
    with pytest.raises(BadInputError, match="b_mask.tif: no probability map b_prob"):
        match_prob(masks, probs[1:])
    with pytest.raises(BadInputError, match="c_prob.tif: matches no mask"):
        match_prob(masks, [*probs, Path("p/c_prob.tif")])
    with pytest.raises(BadInputError, match="a second probability map"):
        match_prob(masks, [*probs, Path("q/a_prob.tif")])


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
