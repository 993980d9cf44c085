"""Pixel metrics: confusion matrices and scores computed by hand, relaxed scores, nodata, input untouched."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from roadseg.metrics.pixel import (
    RelaxedCounts,
    confusion_matrix,
    disk_radii,
    relaxed_counts,
    scores_from_confusion,
)

PRED = np.array([[1, 1, 0],
                 [0, 1, 0]], dtype=bool)
TRUTH = np.array([[1, 0, 0],
                  [1, 1, 0]], dtype=bool)


class TestConfusionMatrix:
    def test_hand_computed(self):
        # tn: (0,2) (1,2); fp: (0,1); fn: (1,0); tp: (0,0) (1,1)
        assert confusion_matrix(PRED, TRUTH).tolist() == [[2, 1], [1, 2]]

    def test_rows_are_truth_columns_prediction(self):
        pred = np.array([[1, 1, 1, 0]], bool)
        truth = np.array([[0, 0, 0, 0]], bool)
        assert confusion_matrix(pred, truth).tolist() == [[1, 3], [0, 0]]
        assert confusion_matrix(truth, pred).tolist() == [[1, 0], [3, 0]]

    def test_valid_mask_leaves_pixels_out(self):
        valid = np.array([[1, 0, 1],
                          [0, 1, 1]], dtype=bool)  # drops the fp at (0,1) and the fn at (1,0)
        assert confusion_matrix(PRED, TRUTH, valid).tolist() == [[2, 0], [0, 2]]

    @pytest.mark.parametrize("dtype", [bool, np.uint8, np.int32, np.float32])
    def test_dtypes(self, dtype):
        assert confusion_matrix(PRED.astype(dtype), TRUTH.astype(dtype)).tolist() == [[2, 1], [1, 2]]

    def test_empty_image(self):
        empty = np.zeros((0, 0), bool)
        assert confusion_matrix(empty, empty).tolist() == [[0, 0], [0, 0]]

    def test_shape_mismatch(self):
        with pytest.raises(ValueError, match=r"prediction shape \(2, 3\) differs from ground-truth shape"):
            confusion_matrix(PRED, TRUTH[:, :2])

    def test_wrong_ndim(self):
        with pytest.raises(ValueError, match="expected 2-D masks"):
            confusion_matrix(PRED[None], TRUTH[None])

    @settings(max_examples=40, deadline=None)
    @given(st.integers(1, 12).flatmap(lambda h: st.integers(1, 12).flatmap(lambda w: st.tuples(
        arrays(bool, (h, w)), arrays(bool, (h, w)), arrays(bool, (h, w))))))
    def test_matches_pixel_by_pixel_count(self, masks):
        pred, truth, valid = masks
        expected = [[0, 0], [0, 0]]
        for p, t, v in zip(pred.ravel(), truth.ravel(), valid.ravel()):
            if v:
                expected[int(t)][int(p)] += 1
        assert confusion_matrix(pred, truth, valid).tolist() == expected

    def test_input_not_modified(self):
        pred, truth, valid = PRED.copy(), TRUTH.copy(), np.ones_like(PRED)
        confusion_matrix(pred, truth, valid)
        relaxed_counts(pred, truth, valid, slack=2)
        assert np.array_equal(pred, PRED) and np.array_equal(truth, TRUTH) and valid.all()


class TestScores:
    def test_zoo_figures_by_hand(self):
        # 10 pixels: tn 6, fp 1, fn 1, tp 2
        scores = scores_from_confusion(np.array([[6, 1], [1, 2]]))
        assert scores.acc == pytest.approx(8 / 10)
        assert scores.acc_cls == pytest.approx((6 / 7 + 2 / 3) / 2)
        assert scores.iou == pytest.approx(6 / 8)  # the zoo's iou: background class
        assert scores.road_iou == pytest.approx(2 / 4)
        assert scores.mean_iou == pytest.approx((6 / 8 + 2 / 4) / 2)
        assert scores.precision == pytest.approx(2 / 3)
        assert scores.recall == pytest.approx(2 / 3)
        assert scores.f1 == pytest.approx(2 / 3)

    def test_unequal_precision_recall(self):
        # tp 3, fp 1, fn 3: precision 3/4, recall 1/2, f1 = 2*0.375/1.25
        scores = scores_from_confusion(np.array([[10, 1], [3, 3]]))
        assert (scores.precision, scores.recall) == (pytest.approx(0.75), pytest.approx(0.5))
        assert scores.f1 == pytest.approx(0.6)

    def test_undefined_ratios_are_nan(self):
        scores = scores_from_confusion(np.array([[5, 0], [0, 0]]))  # no road anywhere
        assert scores.acc == 1.0 and scores.iou == 1.0
        assert math.isnan(scores.road_iou) and math.isnan(scores.precision) and math.isnan(scores.recall)
        assert math.isnan(scores.f1)
        # classes without pixels are left out of the means, as nanmean does in the zoo's scoring
        assert scores.acc_cls == 1.0 and scores.mean_iou == 1.0
        assert math.isnan(scores.relaxed_precision)

    def test_all_wrong(self):
        scores = scores_from_confusion(np.array([[0, 4], [4, 0]]))
        assert scores.acc == 0.0 and scores.road_iou == 0.0 and scores.iou == 0.0
        assert scores.f1 == 0.0

    def test_bad_matrix(self):
        with pytest.raises(ValueError, match=r"expected a \(2, 2\) confusion matrix"):
            scores_from_confusion(np.zeros((3, 3)))


class TestRelaxed:
    @staticmethod
    def vertical_line(column: int) -> np.ndarray:
        mask = np.zeros((9, 9), bool)
        mask[1:8, column] = True
        return mask

    def test_one_pixel_shift(self):
        truth, pred = self.vertical_line(4), self.vertical_line(5)
        at0 = relaxed_counts(pred, truth, slack=0)
        assert (at0.precision, at0.recall) == (0.0, 0.0)
        for slack in (1, 2, 3):
            relaxed = relaxed_counts(pred, truth, slack=slack)
            assert (relaxed.precision, relaxed.recall) == (1.0, 1.0)
        # while the strict scores see nothing right
        assert scores_from_confusion(confusion_matrix(pred, truth)).road_iou == 0.0

    def test_slack_zero_equals_strict(self):
        rng = np.random.default_rng(0)
        pred, truth = rng.random((16, 16)) < 0.3, rng.random((16, 16)) < 0.3
        relaxed = relaxed_counts(pred, truth, slack=0)
        strict = scores_from_confusion(confusion_matrix(pred, truth))
        assert relaxed.precision == pytest.approx(strict.precision)
        assert relaxed.recall == pytest.approx(strict.recall)

    def test_distance_is_euclidean(self):
        pred = np.zeros((6, 6), bool)
        truth = np.zeros((6, 6), bool)
        pred[2, 2], truth[3, 3] = True, True  # sqrt(2) apart
        assert relaxed_counts(pred, truth, slack=1).precision == 0.0
        assert relaxed_counts(pred, truth, slack=1.5).precision == 1.0

    def test_counts_by_hand(self):
        truth = np.zeros((1, 10), bool)
        pred = np.zeros((1, 10), bool)
        truth[0, [0, 9]] = True
        pred[0, [2, 5]] = True
        counts = relaxed_counts(pred, truth, slack=2)
        # pred 2 is 2 from truth 0; pred 5 is 4 from both. truth 0 is 2 from pred 2; truth 9 is 4 away.
        assert counts == RelaxedCounts(pred_road=2, pred_road_near_truth=1,
                                       true_road=2, true_road_near_pred=1)

    def test_nodata_pixels_not_counted(self):
        truth = self.vertical_line(4)
        pred = self.vertical_line(4) | self.vertical_line(8)
        valid = np.ones_like(truth)
        valid[:, 8] = False
        assert relaxed_counts(pred, truth, valid, slack=1).precision == 1.0
        assert relaxed_counts(pred, truth, slack=1).precision == pytest.approx(7 / 14)

    def test_counts_add_up(self):
        a = RelaxedCounts(1, 2, 3, 4)
        assert a + a == RelaxedCounts(2, 4, 6, 8)

    def test_negative_slack(self):
        with pytest.raises(ValueError, match="slack must be >= 0"):
            relaxed_counts(PRED, TRUTH, slack=-1)

    @settings(max_examples=60, deadline=None)
    @given(st.integers(1, 14).flatmap(lambda h: st.integers(1, 14).flatmap(lambda w: st.tuples(
        arrays(bool, (h, w)), arrays(bool, (h, w))))), st.floats(0, 20))
    def test_matches_distance_transform(self, masks, slack):
        pred, truth = masks

        def near(mask):  # independent: Euclidean distance transform of the background
            return ndimage.distance_transform_edt(~mask) <= slack if mask.any() else mask

        counts = relaxed_counts(pred, truth, slack=slack)
        assert counts.pred_road_near_truth == np.count_nonzero(pred & near(truth))
        assert counts.true_road_near_pred == np.count_nonzero(truth & near(pred))

    def test_disk_radii(self):
        assert disk_radii(0) == [0]
        assert disk_radii(1) == [1, 0]
        assert disk_radii(1.5) == [1, 1]  # (1, 1) is sqrt(2) <= 1.5 away
        assert disk_radii(5) == [5, 4, 4, 4, 3, 0]  # 3-4-5 triangle: (4, 3) is exactly 5 away

    @settings(max_examples=30, deadline=None)
    @given(arrays(bool, (10, 10)), arrays(bool, (10, 10)), st.floats(0, 4))
    def test_relaxed_at_least_strict_and_monotone(self, pred, truth, slack):
        strict = relaxed_counts(pred, truth, slack=0)
        loose = relaxed_counts(pred, truth, slack=slack)
        looser = relaxed_counts(pred, truth, slack=slack + 1)
        assert strict.pred_road_near_truth <= loose.pred_road_near_truth <= looser.pred_road_near_truth
        assert strict.true_road_near_pred <= loose.true_road_near_pred <= looser.true_road_near_pred
        assert strict.pred_road_near_truth == np.count_nonzero(pred & truth)
