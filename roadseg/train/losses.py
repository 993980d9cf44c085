"""The D-LinkNet training loss: mean binary cross-entropy plus (1 - soft Dice), Dice over the whole batch."""

from __future__ import annotations

import numpy as np

from roadseg.model.mindspore_runtime import nn, ops

#: Keeps log() finite where the sigmoid saturates at exactly 0 or 1.
EPS = 1e-7


class BceDiceLoss(nn.Cell):
    """``loss(prob, target)`` for ``(N, 1, H, W)`` road probabilities and 0/1 targets.

    Dice sums over every pixel of every image in the batch (as the recipe does), so a batch whose
    tiles hold few road pixels still gets a useful Dice term; ``smooth`` keeps it defined when both
    prediction and target are empty.
    """

    def __init__(self, smooth: float = 1.0) -> None:
        super().__init__()
        self.smooth = smooth

    def construct(self, prob, target):
        prob = ops.clip_by_value(prob, EPS, 1.0 - EPS)
        bce = -ops.reduce_mean(target * ops.log(prob) + (1.0 - target) * ops.log(1.0 - prob))
        intersection = ops.reduce_sum(prob * target)
        dice = (2.0 * intersection + self.smooth) / (ops.reduce_sum(prob) + ops.reduce_sum(target) + self.smooth)
        return bce + (1.0 - dice)


def bce_dice_numpy(prob: np.ndarray, target: np.ndarray, smooth: float = 1.0) -> float:
    """The same loss in float64 numpy, as an independent reference."""
    prob = np.clip(prob.astype(np.float64), EPS, 1.0 - EPS)
    target = target.astype(np.float64)
    bce = -np.mean(target * np.log(prob) + (1.0 - target) * np.log(1.0 - prob))
    dice = (2.0 * np.sum(prob * target) + smooth) / (np.sum(prob) + np.sum(target) + smooth)
    return float(bce + 1.0 - dice)
