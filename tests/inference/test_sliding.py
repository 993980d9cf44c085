"""The streaming engine: exact stitching of pointwise predictors, nodata skipping, bounded row bands."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roadseg.inference.blending import Blend
from roadseg.inference.options import PredictOptions
from roadseg.inference.predict import predict_array
from roadseg.inference.sliding import ArraySource, SlidingStats, predict_rows
from roadseg.inference.tta import TTA, tta_transforms
from roadseg.inference.windows import window_grid
from roadseg.model.convention import ZOO_CONVENTION

to_network = ZOO_CONVENTION.to_network


def pointwise(batch: np.ndarray) -> np.ndarray:
    """A fixed function of each pixel's input, so any window, flip or rotation must give it back."""
    return 0.5 + 0.5 * np.tanh(batch[:, 0] - 0.3 * batch[:, 2])


def expected(image: np.ndarray) -> np.ndarray:
    return pointwise(to_network(image)[None])[0]


class TestExactStitching:
    @settings(max_examples=60, deadline=None)
    @given(height=st.integers(1, 90), width=st.integers(1, 90), window=st.sampled_from([8, 16, 32, 48]),
           overlap=st.floats(0.0, 0.75), blend=st.sampled_from(list(Blend)), tta=st.sampled_from(list(TTA)),
           batch_size=st.integers(1, 9), seed=st.integers(0, 2**16))
    def test_pointwise_predictor_comes_back(self, height, width, window, overlap, blend, tta, batch_size,
                                            seed):
        image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
        out = predict_array(pointwise, image, PredictOptions(window=window, overlap=overlap, blend=blend, tta=tta,
                                                             batch_size=batch_size))
        assert out.shape == (height, width) and out.dtype == np.float32
        np.testing.assert_allclose(out, expected(image), rtol=0, atol=1e-6)

    def test_single_window_is_bit_exact(self):
        image = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
        out = predict_array(pointwise, image, PredictOptions(window=32, overlap=0.0, tta="none"))
        np.testing.assert_array_equal(out, expected(image))

    def test_position_dependent_predictor_is_blended_not_copied(self):
        # a predictor that sees window positions (constant per window) shows the blending is weighted
        values = iter(np.linspace(0.1, 0.9, 50))

        def per_window(batch):
            return np.stack([np.full(batch.shape[2:], next(values), np.float32) for _ in batch])

        image = np.zeros((20, 40, 3), np.uint8)
        out = predict_array(per_window, image, PredictOptions(window=20, overlap=0.5, blend="constant", tta="none",
                                                              batch_size=1))
        # columns 10..19 are covered by windows 1 and 2 (values v0, v1) -> their plain mean
        v = np.linspace(0.1, 0.9, 50)
        np.testing.assert_allclose(out[:, 0:10], v[0], rtol=1e-6)
        np.testing.assert_allclose(out[:, 10:20], (v[0] + v[1]) / 2, rtol=1e-6)


class TestStreaming:
    def test_rows_come_in_order_and_band_stays_small(self):
        image = np.random.default_rng(2).integers(0, 256, (150, 40, 3), dtype=np.uint8)
        blocks = list(predict_rows(ArraySource(image), pointwise, to_network,
                                   PredictOptions(window=32, overlap=0.25, tta="none")))
        starts = [block.row for block in blocks]
        heights = [block.prob.shape[0] for block in blocks]
        assert starts == list(np.cumsum([0] + heights[:-1]))
        assert sum(heights) == 150 and max(heights) <= 32
        assert len(blocks) == len(window_grid(150, 40, 32, 0.25).rows)

    def test_calls_group_windows_and_variants(self):
        calls = []

        def counting(batch):
            calls.append(batch.shape[0])
            return pointwise(batch)

        image = np.zeros((64, 96, 3), np.uint8)
        stats = SlidingStats()
        options = PredictOptions(window=32, overlap=0.0, tta="d4", batch_size=16)
        list(predict_rows(ArraySource(image), counting, to_network, options, stats=stats))
        # 2 rows x 3 columns of windows; 16 // 8 = 2 windows (16 inputs) per call, 3 columns -> 2 + 1
        assert calls == [16, 8, 16, 8]
        assert stats.windows_run == 6 and stats.predictor_calls == 4 and stats.windows_skipped == 0
        assert len(tta_transforms("d4")) == 8

    def test_nodata_windows_are_not_run_and_come_back_nan(self):
        image = np.full((64, 64, 3), 100, np.uint8)
        valid = np.zeros((64, 64), bool)
        valid[40:, 40:] = True  # only the bottom-right window has data
        seen = []

        def recording(batch):
            seen.append(batch.shape[0])
            return pointwise(batch)

        stats = SlidingStats()
        progress = []
        out = np.full((64, 64), -5.0, np.float32)
        options = PredictOptions(window=32, overlap=0.0, tta="none")
        for block in predict_rows(ArraySource(image, valid), recording, to_network, options, stats=stats,
                                  progress=progress.append):
            out[block.row:block.row + block.prob.shape[0]] = block.prob
            np.testing.assert_array_equal(block.valid, valid[block.row:block.row + block.prob.shape[0]])
        assert stats.windows_run == 1 and stats.windows_skipped == 3 and sum(seen) == 1
        assert sum(progress) == 4
        assert np.isnan(out[~valid]).all()
        np.testing.assert_allclose(out[valid], expected(image)[valid], atol=1e-6)

    def test_image_is_not_modified(self):
        image = np.random.default_rng(3).integers(0, 256, (20, 30, 3), dtype=np.uint8)
        before = image.copy()
        predict_array(pointwise, image, PredictOptions(window=16, overlap=0.5))
        np.testing.assert_array_equal(image, before)

    def test_wrong_predictor_shape_is_reported(self):
        def broken(batch):
            return batch[:, 0, :4, :4]

        with pytest.raises(ValueError, match=r"returned shape \(1, 4, 4\) for 1 windows of 16x16"):
            predict_array(broken, np.zeros((16, 16, 3), np.uint8), PredictOptions(window=16, tta="none"))

    @pytest.mark.parametrize("shape", [(0, 5, 3), (5, 5), (5, 5, 2)])
    def test_bad_images(self, shape):
        with pytest.raises(ValueError, match="image"):
            ArraySource(np.zeros(shape, np.uint8))
