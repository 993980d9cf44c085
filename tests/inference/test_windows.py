"""Window geometry: every pixel covered, windows inside the image, reflect indices like numpy.pad."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roadseg.inference.windows import reflect_indices, window_grid, window_slices, window_starts, window_stride

sizes = st.integers(min_value=1, max_value=300)
windows = st.integers(min_value=1, max_value=128)
overlaps = st.floats(min_value=0.0, max_value=0.9)


class TestWindowStarts:
    @settings(max_examples=200, deadline=None)
    @given(length=sizes, window=windows, overlap=overlaps)
    def test_cover_the_axis_and_stay_inside(self, length, window, overlap):
        starts = window_starts(length, window, overlap)
        assert starts == sorted(set(starts))
        covered = np.zeros(length, bool)
        for start in starts:
            assert start >= 0
            assert start + window <= max(length, window)
            covered[start:start + window] = True
        assert covered.all()

    @settings(max_examples=100, deadline=None)
    @given(length=sizes, window=windows, overlap=overlaps)
    def test_spacing_never_exceeds_the_stride(self, length, window, overlap):
        starts = window_starts(length, window, overlap)
        stride = window_stride(window, overlap)
        assert all(0 < b - a <= stride for a, b in zip(starts, starts[1:]))

    def test_last_window_is_shifted_back_inside(self):
        assert window_starts(10, 4, 0.0) == [0, 4, 6]
        assert window_starts(8, 4, 0.0) == [0, 4]

    def test_small_axis_gets_one_window(self):
        assert window_starts(3, 4, 0.5) == [0]

    @pytest.mark.parametrize("overlap", [-0.1, 1.0, 1.5])
    def test_rejects_bad_overlap(self, overlap):
        with pytest.raises(ValueError, match="overlap must be a fraction"):
            window_starts(10, 4, overlap)

    def test_rejects_bad_window_and_empty_axis(self):
        with pytest.raises(ValueError, match="window must be a positive"):
            window_starts(10, 0, 0.0)
        with pytest.raises(ValueError, match="at least one pixel"):
            window_starts(0, 4, 0.0)


class TestWindowSlices:
    @settings(max_examples=100, deadline=None)
    @given(height=sizes, width=sizes, window=windows, overlap=overlaps)
    def test_every_pixel_covered_by_clipped_windows(self, height, width, window, overlap):
        counts = np.zeros((height, width), int)
        slices = window_slices((height, width), window, overlap)
        assert len(slices) == window_grid(height, width, window, overlap).count
        for rows, cols in slices:
            assert 0 <= rows.start < rows.stop <= height and 0 <= cols.start < cols.stop <= width
            counts[rows, cols] += 1
        assert (counts >= 1).all()

    def test_no_overlap_tiles_exactly_when_divisible(self):
        counts = np.zeros((64, 96), int)
        for rows, cols in window_slices((64, 96), 32, 0.0):
            counts[rows, cols] += 1
        assert (counts == 1).all()


class TestReflectIndices:
    @settings(max_examples=200, deadline=None)
    @given(length=st.integers(1, 20), start=st.integers(-50, 50), count=st.integers(1, 60))
    def test_matches_numpy_reflect_pad(self, length, start, count):
        pad = 120
        padded = np.pad(np.arange(length), pad, mode="reflect") if length > 1 else np.zeros(length + 2 * pad)
        expected = padded[start + pad:start + pad + count]
        np.testing.assert_array_equal(reflect_indices(start, count, length), expected)
