"""predict's uncertainty map: the per-pixel variance of the TTA views' probabilities, blended like the
probabilities, resampled with them, written beside the mask (``save_uncertainty``)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roadseg.errors import BadInputError, BadParameterError
from roadseg.inference.options import OutputOptions, PredictOptions
from roadseg.inference.predict import predict_file
from roadseg.inference.sliding import ArraySource, predict_rows
from roadseg.inference.tta import tta_transforms, with_tta, with_tta_spread
from roadseg.io.masks import read_mask
from roadseg.io.raster_open import CONTENT_TAG, UNCERTAINTY
from roadseg.model.convention import ZOO_CONVENTION
from tests.helpers_predict import random_rgb, read_band, write_raster


def oriented(batch: np.ndarray) -> np.ndarray:
    """A predictor that sees which way up its input is: brightness plus a ramp across the window, so
    the views disagree by an amount that depends on the pixel."""
    ramp = np.linspace(0.0, 0.4, batch.shape[-1], dtype=np.float32)[None, None, :]
    return (0.3 + 0.3 * np.tanh(batch[:, 0]) * 0.5 + ramp).astype(np.float32)


def pointwise(batch: np.ndarray) -> np.ndarray:
    """A predictor that treats every pixel alone: all views agree exactly."""
    return (1.0 / (1.0 + np.exp(-4.0 * batch[:, 0]))).astype(np.float32)


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(["flip", "d4"]), st.integers(1, 3), st.integers(2, 9), st.integers(2, 9))
def test_the_spread_is_the_variance_of_the_views_mapped_back(mode, count, height, width):
    batch = np.random.default_rng(height * 10 + width).normal(size=(count, 3, height, width)).astype(np.float32)
    if height != width and mode == "d4":
        batch = batch[..., :min(height, width), :min(height, width)]
    views = np.stack([t.inverse(oriented(np.ascontiguousarray(t.forward(batch)))) for t in tta_transforms(mode)])
    out = with_tta_spread(oriented, mode)(batch)
    assert out.shape == (batch.shape[0], 2, *batch.shape[-2:])
    np.testing.assert_allclose(out[:, 0], views.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(out[:, 1], views.var(axis=0), atol=1e-6)
    np.testing.assert_array_equal(out[:, 0], with_tta(oriented, mode)(batch))  # the same mean, bit for bit
    assert out[:, 1].max() > 1e-4  # the ramp turns with the view: they disagree


def test_views_that_agree_have_no_spread():
    batch = np.random.default_rng(1).normal(size=(2, 3, 16, 16)).astype(np.float32)
    assert np.abs(with_tta_spread(pointwise, "d4")(batch)[:, 1]).max() < 1e-6


def test_one_window_gives_the_views_variance_and_windows_blend_it_within_their_range():
    image = np.random.default_rng(2).integers(0, 256, (40, 56, 3)).astype(np.uint8)
    single = PredictOptions(window=64, overlap=0.0, tta="d4")
    rows = list(predict_rows(ArraySource(image), oriented, ZOO_CONVENTION.to_network, single, spread=True))
    padded = ArraySource(image).read_window(0, 0, 64)[0]
    direct = with_tta_spread(oriented, "d4")(ZOO_CONVENTION.to_network(padded)[None])[0, 1, :40, :56]
    np.testing.assert_allclose(np.concatenate([r.variance for r in rows]), direct, atol=1e-6)

    tiled = PredictOptions(window=16, overlap=0.5, tta="d4", blend="gaussian")
    variance = np.concatenate([r.variance for r in predict_rows(ArraySource(image), oriented,
                                                                ZOO_CONVENTION.to_network, tiled, spread=True)])
    one_window = with_tta_spread(oriented, "d4")(np.zeros((1, 3, 16, 16), np.float32))[0, 1]
    assert variance.shape == (40, 56) and np.isfinite(variance).all()
    assert variance.min() >= 0 and variance.max() <= 0.25  # a variance of numbers in [0, 1]
    assert variance.max() > 0.5 * one_window.max()


def test_the_uncertainty_map_keeps_the_grid_and_nodata_and_is_not_a_mask(tmp_path):
    data = random_rgb(48, 40)
    data[:, :10, :] = 0
    image = write_raster(tmp_path / "scene.tif", data, nodata=0)
    options = PredictOptions(window=32, overlap=0.25, tta="d4")
    result = predict_file(oriented, image, tmp_path / "out", options, output=OutputOptions(save_uncertainty=True))
    path = tmp_path / "out" / "scene_uncertainty.tif"
    assert path in result.outputs and (tmp_path / "out" / "scene_mask.tif") in result.outputs
    values, profile = read_band(path)
    mask, mask_profile = read_band(tmp_path / "out" / "scene_mask.tif")
    assert values.dtype == np.float32 and values.shape == mask.shape == (48, 40)
    assert profile["transform"] == mask_profile["transform"] and profile["crs"] == mask_profile["crs"]
    assert np.isnan(values[:10]).all() and (mask[:10] == 255).all()  # nodata stays nodata
    assert np.isfinite(values[10:]).all() and values[10:].min() >= 0 and values[10:].max() <= 0.25
    assert values[10:].max() > 1e-4
    import rasterio

    with rasterio.open(path) as dataset:
        assert dataset.tags()[CONTENT_TAG] == UNCERTAINTY
    with pytest.raises(BadInputError, match="uncertainty map .* not a mask"):
        read_mask(path, threshold=0.5)


def test_the_uncertainty_map_follows_the_input_grid_when_the_network_sees_another_gsd(tmp_path):
    image = write_raster(tmp_path / "scene.tif", random_rgb(60, 60))  # 2 m pixels (helpers' UTM transform)
    options = PredictOptions(window=32, overlap=0.25, tta="flip", gsd=4.0)
    predict_file(oriented, image, tmp_path / "out", options, output=OutputOptions(save_uncertainty=True))
    values, _ = read_band(tmp_path / "out" / "scene_uncertainty.tif")
    assert values.shape == (60, 60) and np.isfinite(values).all() and values.max() > 1e-4


def test_without_views_to_differ_it_is_refused_before_any_work(tmp_path):
    image = write_raster(tmp_path / "scene.tif", random_rgb(20, 20))
    with pytest.raises(BadParameterError) as caught:
        predict_file(oriented, image, tmp_path / "out", PredictOptions(window=32, tta="none"),
                     output=OutputOptions(save_uncertainty=True))
    assert caught.value.parameter == "save_uncertainty" and "`tta`" in str(caught.value)
    assert not (tmp_path / "out").exists()
