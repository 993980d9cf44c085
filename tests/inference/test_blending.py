"""Importance maps and the row-band accumulator: positive weights, full weight everywhere, order-free."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roadseg.inference.blending import MIN_WEIGHT, Blend, RowBandAccumulator, importance_map
from roadseg.inference.windows import window_grid


class TestImportanceMap:
    @pytest.mark.parametrize("mode", list(Blend))
    @pytest.mark.parametrize("window", [1, 2, 7, 64])
    def test_positive_bounded_symmetric(self, mode, window):
        weights = importance_map(window, mode)
        assert weights.shape == (window, window) and weights.dtype == np.float32
        assert weights.min() >= np.float32(MIN_WEIGHT) and weights.max() == pytest.approx(1.0)
        np.testing.assert_allclose(weights, weights[::-1, ::-1], rtol=1e-6)
        np.testing.assert_allclose(weights, weights.T, rtol=1e-6)

    @pytest.mark.parametrize("mode", [Blend.GAUSSIAN, Blend.COSINE])
    def test_centre_outweighs_border(self, mode):
        weights = importance_map(64, mode)
        assert weights[32, 32] > 10 * weights[0, 32] > 0

    def test_constant_is_flat(self):
        assert (importance_map(16, "constant") == 1).all()

    def test_read_only(self):
        with pytest.raises(ValueError):
            importance_map(8)[0, 0] = 5

    def test_rejects_unknown_mode(self):
        with pytest.raises(ValueError, match="'box' is not a valid Blend"):
            importance_map(8, "box")


def _accumulate(height, width, window, overlap, mode, values, order):
    """Run the accumulator the way the engine does, windows of each row in ``order``."""
    grid = window_grid(height, width, window, overlap)
    weights = importance_map(window, mode)
    band = RowBandAccumulator(width, min(window, height))
    out = np.full((height, width), -7.0, np.float32)
    for index, y in enumerate(grid.rows):
        h = grid.crop(y, height)
        for x in order(list(grid.cols)):
            w = grid.crop(x, width)
            band.mark_valid(y, x, np.ones((h, w), bool))
            band.add(y, x, values[y:y + h, x:x + w], weights[:h, :w])
        until = grid.rows[index + 1] if index + 1 < len(grid.rows) else height
        row, prob, valid = band.flush(until)
        assert valid.all()
        out[row:row + prob.shape[0]] = prob
    return out


class TestRowBandAccumulator:
    @settings(max_examples=60, deadline=None)
    @given(height=st.integers(1, 70), width=st.integers(1, 70), window=st.integers(1, 32),
           overlap=st.floats(0, 0.8), mode=st.sampled_from(list(Blend)))
    def test_normalised_weights_sum_to_one(self, height, width, window, overlap, mode):
        ones = np.ones((height, width), np.float32)
        out = _accumulate(height, width, window, overlap, mode, ones, lambda cols: cols)
        np.testing.assert_allclose(out, 1.0, rtol=1e-5)

    @settings(max_examples=40, deadline=None)
    @given(seed=st.integers(0, 1000), mode=st.sampled_from(list(Blend)))
    def test_window_order_does_not_matter(self, seed, mode):
        values = np.random.default_rng(seed).random((50, 45), dtype=np.float32)
        forward = _accumulate(50, 45, 16, 0.5, mode, values, lambda cols: cols)
        backward = _accumulate(50, 45, 16, 0.5, mode, values, lambda cols: cols[::-1])
        np.testing.assert_allclose(forward, backward, rtol=1e-6)
        np.testing.assert_allclose(forward, values, rtol=1e-5)

    def test_unpredicted_pixels_are_nan_and_invalid(self):
        band = RowBandAccumulator(4, 2)
        band.mark_valid(0, 0, np.array([[True, True, False, False], [True, True, True, True]]))
        band.add(0, 0, np.full((2, 2), 0.25, np.float32), np.ones((2, 2), np.float32))
        row, prob, valid = band.flush(2)
        assert row == 0
        np.testing.assert_array_equal(valid, [[True, True, False, False], [True, True, False, False]])
        assert np.isnan(prob[~valid]).all() and (prob[valid] == 0.25).all()

    def test_refuses_rows_outside_the_band(self):
        band = RowBandAccumulator(4, 2)
        band.flush(1)
        with pytest.raises(ValueError, match="outside the open band 1..3"):
            band.add(0, 0, np.zeros((1, 1), np.float32), np.ones((1, 1), np.float32))
