"""Blending overlapping window predictions: importance maps and a row-band Σw·p / Σw accumulator.

Each output pixel is ``Σ w·p / Σ w`` over the windows covering it, with ``w`` an importance map that
down-weights window borders (where a fully convolutional network sees the least context). Summing and
dividing once per pixel makes the result independent of the order windows run in. The accumulator
only holds the band of rows that windows still to come can touch, so memory does not grow with the
raster's height.
"""

from __future__ import annotations

from enum import Enum
from functools import lru_cache

import numpy as np

from roadseg.errors import BadParameterError

MIN_WEIGHT = 1e-4
"""Floor of every importance map (relative to its maximum 1): each covered pixel keeps a real weight."""


class Blend(str, Enum):
    """How a window's pixels are weighted when windows overlap."""

    GAUSSIAN = "gaussian"
    COSINE = "cosine"
    CONSTANT = "constant"


BLEND_CHOICES = tuple(mode.value for mode in Blend)


@lru_cache(maxsize=8)
def _importance_map(window: int, mode: Blend, sigma_scale: float) -> np.ndarray:
    centre = (np.arange(window, dtype=np.float64) + 0.5) - window / 2.0
    if mode is Blend.CONSTANT:
        profile = np.ones(window)
    elif mode is Blend.GAUSSIAN:
        sigma = sigma_scale * window
        profile = np.exp(-0.5 * (centre / sigma) ** 2)
    else:  # cosine (a Hann window sampled at pixel centres, never exactly zero)
        profile = np.sin(np.pi * (np.arange(window) + 0.5) / window)
    weights = np.outer(profile, profile)
    weights /= weights.max()
    weights = np.maximum(weights, MIN_WEIGHT).astype(np.float32)
    weights.setflags(write=False)
    return weights


def importance_map(window: int, mode: Blend | str = Blend.GAUSSIAN, *, sigma_scale: float = 0.125
                   ) -> np.ndarray:
    """A read-only ``(window, window)`` float32 weight map, maximum 1, every value >= ``MIN_WEIGHT``.

    ``sigma_scale`` is the Gaussian's standard deviation as a fraction of the window (MONAI's default).
    """
    if window < 1:
        raise BadParameterError("window", f"must be a positive number of pixels, got {window}")
    return _importance_map(int(window), Blend(mode), float(sigma_scale))


class RowBandAccumulator:
    """Σw·p, Σw and validity for the rows ``[top, top + capacity)`` of an image ``width`` pixels wide.

    Windows add into the band; :meth:`flush` hands out finished rows (normalised, NaN where no valid
    pixel was predicted) and slides the band down. Windows must lie inside the band.
    """

    def __init__(self, width: int, capacity: int) -> None:
        self.width = width
        self.capacity = capacity
        self.top = 0
        # Σw·p in float64: a pixel covered by one window then comes back as exactly p (w·p / w).
        self._weighted = np.zeros((capacity, width), np.float64)
        self._weight = np.zeros((capacity, width), np.float32)
        self._valid = np.zeros((capacity, width), bool)

    def _rows(self, y: int, height: int) -> slice:
        start = y - self.top
        if start < 0 or start + height > self.capacity:
            raise ValueError(f"rows {y}..{y + height} are outside the open band "
                             f"{self.top}..{self.top + self.capacity}")
        return slice(start, start + height)

    def mark_valid(self, y: int, x: int, valid: np.ndarray) -> None:
        """Record which pixels of a window are data (the same for every window covering a pixel)."""
        rows = self._rows(y, valid.shape[0])
        self._valid[rows, x:x + valid.shape[1]] = valid

    def add(self, y: int, x: int, prob: np.ndarray, weight: np.ndarray) -> None:
        """Add one window's ``prob`` (h, w) with its ``weight`` (h, w) at image position ``(y, x)``."""
        rows = self._rows(y, prob.shape[0])
        cols = slice(x, x + prob.shape[1])
        self._weighted[rows, cols] += np.multiply(weight, prob, dtype=np.float64)
        self._weight[rows, cols] += weight

    def flush(self, until: int) -> tuple[int, np.ndarray, np.ndarray]:
        """Finish rows ``[top, until)``: return ``(top, prob, valid)``; the band then starts at ``until``.

        ``prob`` is float32, ``Σw·p / Σw`` where the pixel is valid and was predicted, NaN elsewhere.
        """
        count = until - self.top
        if not 0 <= count <= self.capacity:
            raise ValueError(f"cannot flush to row {until}: the band starts at {self.top}")
        weight = self._weight[:count]
        valid = self._valid[:count] & (weight > 0)
        prob = np.full((count, self.width), np.nan, np.float32)
        np.divide(self._weighted[:count], weight, out=prob, where=valid)
        valid = valid.copy()
        for buffer in (self._weighted, self._weight, self._valid):
            buffer[:self.capacity - count] = buffer[count:]  # numpy buffers overlapping copies itself
            buffer[self.capacity - count:] = 0
        top, self.top = self.top, until
        return top, prob, valid
