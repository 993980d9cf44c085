"""BCE + soft Dice (Dice over the whole batch) against an independent float64 computation."""

from __future__ import annotations

import numpy as np
import pytest

import roadseg.model.mindspore_runtime  # noqa: E402, F401 - MindSpore loads with the ISA choice

pytestmark = pytest.mark.mindspore


@pytest.fixture(scope="module", autouse=True)
def _cpu():
    # choose the device before the first kernel runs: MindSpore refuses set_device afterwards
    from roadseg.model.devices import configure_mindspore

    configure_mindspore("CPU", 0)


def _loss(prob, target):
    from roadseg.model.mindspore_runtime import ms
    from roadseg.train.losses import BceDiceLoss

    return float(BceDiceLoss()(ms.Tensor(prob), ms.Tensor(target)).asnumpy())


class TestBceDiceLoss:
    def test_matches_direct_formula(self):
        rng = np.random.default_rng(0)
        prob = rng.uniform(0.01, 0.99, (2, 1, 8, 8)).astype(np.float32)
        target = (rng.random((2, 1, 8, 8)) < 0.3).astype(np.float32)
        p, t = prob.astype(np.float64), target.astype(np.float64)
        bce = -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))
        dice = (2 * np.sum(p * t) + 1) / (p.sum() + t.sum() + 1)
        assert _loss(prob, target) == pytest.approx(bce + 1 - dice, rel=1e-5)

    def test_dice_is_over_the_whole_batch(self):
        # image 0 has no road and one half-wrong pixel; image 1 is all road, predicted right: a Dice per
        # image then averaged would lose ~0.17 on image 0, the batch Dice loses ~0.015
        prob = np.full((2, 1, 4, 4), 1e-6, np.float32)
        prob[1] = 1 - 1e-6
        prob[0, 0, 0, 0] = 0.5
        target = np.zeros((2, 1, 4, 4), np.float32)
        target[1] = 1
        p, t = prob.astype(np.float64), target.astype(np.float64)
        bce = -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))
        batch_dice = (2 * np.sum(p * t) + 1) / (p.sum() + t.sum() + 1)
        per_image = np.mean([(2 * np.sum(p[i] * t[i]) + 1) / (p[i].sum() + t[i].sum() + 1) for i in range(2)])
        assert _loss(prob, target) - bce == pytest.approx(1 - batch_dice, abs=1e-4)
        assert abs((1 - per_image) - (1 - batch_dice)) > 0.1

    def test_perfect_prediction_is_near_zero_and_saturation_is_finite(self):
        target = np.zeros((1, 1, 4, 4), np.float32)
        target[0, 0, :2] = 1
        assert _loss(target.copy(), target) < 1e-3
        assert np.isfinite(_loss(1 - target, target))
