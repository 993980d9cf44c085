"""Test-time augmentation as a wrapper around a predictor: transform, predict, map back, average.

The original D-LinkNet averaged eight variants, {identity, rot90} x {vertical flip, none} x
{horizontal flip, none}. Transforms act on the last two axes, so the same transform applies to a
network input ``(N, C, h, w)`` and its inverse to the probabilities ``(N, h, w)`` that come back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import numpy as np

Predictor = Callable[[np.ndarray], np.ndarray]
"""``(N, 3, h, w)`` float32 network input -> ``(N, h, w)`` float32 probabilities."""


class TTA(str, Enum):
    """Which set of variants to average."""

    NONE = "none"
    FLIP = "flip"
    D4 = "d4"


TTA_CHOICES = tuple(mode.value for mode in TTA)


@dataclass(frozen=True)
class Transform:
    """Flip left-right (``hflip``), flip up-down (``vflip``), then rotate by ``rot90`` quarter turns."""

    hflip: bool = False
    vflip: bool = False
    rot90: int = 0

    def forward(self, array: np.ndarray) -> np.ndarray:
        if self.hflip:
            array = array[..., :, ::-1]
        if self.vflip:
            array = array[..., ::-1, :]
        if self.rot90:
            array = np.rot90(array, self.rot90, axes=(-2, -1))
        return array

    def inverse(self, array: np.ndarray) -> np.ndarray:
        if self.rot90:
            array = np.rot90(array, -self.rot90, axes=(-2, -1))
        if self.vflip:
            array = array[..., ::-1, :]
        if self.hflip:
            array = array[..., :, ::-1]
        return array

    @property
    def name(self) -> str:
        parts = [part for part, used in (("hflip", self.hflip), ("vflip", self.vflip),
                                         (f"rot{90 * self.rot90}", self.rot90)) if used]
        return "+".join(parts) or "identity"


def tta_transforms(mode: TTA | str) -> tuple[Transform, ...]:
    """The variants of ``mode``: 1 for none, 4 for flip, 8 for d4 (identity first)."""
    mode = TTA(mode)
    flips = [Transform(hflip, vflip) for vflip in (False, True) for hflip in (False, True)]
    if mode is TTA.NONE:
        return (Transform(),)
    if mode is TTA.FLIP:
        return tuple(flips)
    return tuple(flips) + tuple(Transform(t.hflip, t.vflip, 1) for t in flips)


def with_tta(predictor: Predictor, mode: TTA | str) -> Predictor:
    """A predictor that runs every variant of ``mode`` of its input and returns the mean mapped back.

    All variants of all inputs go to ``predictor`` in one call (it decides its own batching), except that
    a non-square input needs a second call for its rotated variants.
    """
    transforms = tta_transforms(mode)
    if len(transforms) == 1:
        return predictor

    def predict(batch: np.ndarray) -> np.ndarray:
        total, _ = _variant_sums(predictor, transforms, batch, squares=False)
        return total / np.float32(len(transforms))

    return predict


def with_tta_spread(predictor: Predictor, mode: TTA | str) -> Predictor:
    """Like :func:`with_tta`, but each input gives ``(2, h, w)``: the mean of the variants and their
    variance (population, about that mean), per pixel. Where the views disagree the network is unsure
    of the pixel, which a single probability of 0.5 cannot tell apart from agreed doubt."""
    transforms = tta_transforms(mode)

    def predict(batch: np.ndarray) -> np.ndarray:
        total, squares = _variant_sums(predictor, transforms, batch, squares=True)
        mean = total / np.float32(len(transforms))
        variance = np.maximum(squares / np.float32(len(transforms)) - mean * mean, np.float32(0.0))
        return np.stack([mean, variance], axis=1)

    return predict


def _variant_sums(predictor: Predictor, transforms: tuple[Transform, ...], batch: np.ndarray, *, squares: bool
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """Σp (and Σp² with ``squares``) over the variants of every input, mapped back: ``(N, h, w)`` each."""
    count = batch.shape[0]
    square = batch.shape[-1] == batch.shape[-2]
    groups = [transforms] if square else [[t for t in transforms if t.rot90 == k] for k in (0, 1)]
    groups = [group for group in groups if group]
    total = np.zeros((count, *batch.shape[-2:]), np.float32)
    total_sq = np.zeros_like(total) if squares else None
    for group in groups:
        stacked = np.concatenate([np.ascontiguousarray(t.forward(batch)) for t in group])
        outputs = np.asarray(predictor(stacked), dtype=np.float32)
        for index, transform in enumerate(group):
            back = transform.inverse(outputs[index * count:(index + 1) * count])
            total += back
            if total_sq is not None:
                total_sq += back * back
    return total, total_sq
