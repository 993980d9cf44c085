import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from roadseg.vector.mask_clean import clean_mask


class TestCleanMask:
    def test_fills_holes_smaller_than_min_hole_only(self):
        road = np.ones((20, 20), bool)
        road[3:5, 3:5] = False  # 4-pixel hole
        road[10:13, 10:13] = False  # 9-pixel hole
        out = clean_mask(road, min_hole=5)
        assert out[3:5, 3:5].all()
        assert not out[10:13, 10:13].any()
        assert not clean_mask(road, min_hole=4)[3:5, 3:5].any()  # strictly smaller

    def test_drops_blobs_smaller_than_min_area(self):
        road = np.zeros((20, 20), bool)
        road[1, 1] = True
        road[5:8, 5:8] = True
        out = clean_mask(road, min_area=5)
        assert not out[1, 1]
        assert out[5:8, 5:8].all()
        assert not clean_mask(road, min_area=10).any()

    def test_diagonal_pixels_are_one_blob(self):
        road = np.zeros((6, 6), bool)
        road[[1, 2, 3], [1, 2, 3]] = True
        assert clean_mask(road, min_area=3).sum() == 3

    def test_nodata_never_becomes_road(self):
        road = np.ones((9, 9), bool)
        road[4, 4] = False
        valid = np.ones((9, 9), bool)
        valid[4, 4] = False
        valid[0, :] = False
        out = clean_mask(road, min_hole=10, valid=valid)
        assert not out[4, 4] and not out[0].any()

    def test_input_not_modified(self):
        road = np.zeros((10, 10), bool)
        road[2, 2] = True
        before = road.copy()
        clean_mask(road, min_area=5, min_hole=5)
        np.testing.assert_array_equal(road, before)

    def test_wrong_ndim(self):
        with pytest.raises(ValueError, match="2-D"):
            clean_mask(np.zeros((2, 2, 2), bool))

    @settings(max_examples=25, deadline=None)
    @given(arrays(bool, (16, 16)), st.integers(0, 12), st.integers(0, 12))
    def test_no_small_blob_or_hole_survives(self, road, min_hole, min_area):
        out = clean_mask(road, min_hole=min_hole, min_area=min_area)
        labels, n = ndimage.label(out, structure=np.ones((3, 3)))
        sizes = np.bincount(labels.ravel())[1:]
        if min_area > 1:
            assert (sizes >= min_area).all()
        # removing blobs only ever removes road; filling only adds road where road was absent
        assert not (out & ~road & ~ndimage.binary_fill_holes(road)).any()


def test_background_at_the_edge_is_not_a_hole():
    road = np.zeros((8, 8), bool)
    road[:3, 3] = True
    road[:3, 5] = True
    road[2, 3:6] = True  # a U open towards the top edge: column 4, rows 0-1 touch the edge
    out = clean_mask(road, min_hole=10)
    assert not out[:2, 4].any()
