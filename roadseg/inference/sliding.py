"""The streaming sliding-window engine: read windows, predict them in groups, blend, hand out finished rows.

Windows run row by row, top to bottom. After a row of windows, every image row above the next row of
windows is final (no later window touches it), so it is normalised and yielded at once; only a band
of at most ``window`` rows is ever accumulated. With a source that reads windows from a file, a raster
larger than a window is never read or accumulated whole.

The engine knows nothing about files or MindSpore: a *source* supplies reflect-padded windows and
their validity, a *predictor* turns network inputs into probabilities (see :mod:`roadseg.inference.tta`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from roadseg.inference.blending import RowBandAccumulator, importance_map
from roadseg.inference.options import PredictOptions
from roadseg.inference.tta import Predictor, tta_transforms, with_tta, with_tta_spread
from roadseg.inference.windows import reflect_indices, window_grid

DEFAULT_CALL_SIZE = 8
"""Network inputs per predictor call when the options leave it open (a RoadModel says its own)."""

ToNetwork = Callable[[np.ndarray], np.ndarray]
"""``(h, w, 3)`` RGB in 0-255 -> ``(3, h, w)`` float32 network input (an InputConvention's to_network)."""


class WindowSource(Protocol):
    """Anything that can read square, reflect-padded windows of an RGB image in 0-255."""

    height: int
    width: int

    def read_window(self, y: int, x: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        """``(size, size, 3)`` RGB and ``(size, size)`` bool validity at ``(y, x)``, reflected past edges."""
        ...


class ArraySource:
    """A :class:`WindowSource` over an in-memory ``(H, W, 3)`` image and optional ``(H, W)`` validity."""

    def __init__(self, image: np.ndarray, valid: np.ndarray | None = None) -> None:
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) image, got shape {image.shape}")
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise ValueError(f"the image is empty (shape {image.shape})")
        if valid is not None and valid.shape != image.shape[:2]:
            raise ValueError(f"valid mask shape {valid.shape} does not match the image {image.shape[:2]}")
        self.image = image
        self.valid = valid
        self.height, self.width = image.shape[:2]

    def read_window(self, y: int, x: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        rows = reflect_indices(y, size, self.height)[:, None]
        cols = reflect_indices(x, size, self.width)[None, :]
        rgb = self.image[rows, cols].astype(np.float32, copy=False)
        valid = np.ones((size, size), bool) if self.valid is None else self.valid[rows, cols]
        return rgb, valid


@dataclass
class SlidingStats:
    """What a run did: windows through the model, windows skipped as all-nodata, predictor calls."""

    windows_run: int = 0
    windows_skipped: int = 0
    predictor_calls: int = 0


@dataclass(frozen=True)
class RowBlock:
    """Finished rows ``[row, row + len(prob))``: float32 probability (NaN where not valid) and validity;
    with ``spread``, also the variance of the TTA views (blended as the probabilities are)."""

    row: int
    prob: np.ndarray
    valid: np.ndarray
    variance: np.ndarray | None = None


def predict_rows(source: WindowSource, predictor: Predictor, to_network: ToNetwork,
                 options: PredictOptions, *, stats: SlidingStats | None = None,
                 progress: Callable[[int], None] | None = None, spread: bool = False) -> Iterator[RowBlock]:
    """Predict ``source`` window by window and yield its rows, top to bottom, as soon as they are final.

    ``options.batch_size`` is how many network inputs (windows x TTA variants) one ``predictor`` call
    gets (default :data:`DEFAULT_CALL_SIZE`); a call always holds at least one window with all its
    variants. ``progress`` is called with the number of windows just finished; ``stats`` (if given) is
    updated in place. ``options.threshold`` plays no part: rows carry probabilities. With ``spread`` rows
    also carry the per-pixel variance of the TTA views (``options.tta`` must have more than one).
    """
    stats = stats if stats is not None else SlidingStats()
    window = options.window
    grid = window_grid(source.height, source.width, window, options.overlap)
    weights = importance_map(window, options.blend)
    wrapped = (with_tta_spread if spread else with_tta)(predictor, options.tta)
    per_call = max(1, (options.batch_size or DEFAULT_CALL_SIZE) // len(tta_transforms(options.tta)))
    band = RowBandAccumulator(source.width, min(window, source.height))
    spread_band = RowBandAccumulator(source.width, min(window, source.height)) if spread else None
    for row_index, y in enumerate(grid.rows):
        height = grid.crop(y, source.height)
        for first in range(0, len(grid.cols), per_call):
            group = grid.cols[first:first + per_call]
            inputs, placed = [], []
            for x in group:
                rgb, valid = source.read_window(y, x, window)
                width = grid.crop(x, source.width)
                inside = valid[:height, :width]
                band.mark_valid(y, x, inside)
                if not inside.any():
                    stats.windows_skipped += 1
                    continue
                inputs.append(to_network(rgb))
                placed.append((x, width))
            if inputs:
                probs = np.asarray(wrapped(np.stack(inputs)), dtype=np.float32)
                stats.predictor_calls += 1
                if probs.shape != (len(inputs), *((2,) if spread else ()), window, window):
                    raise ValueError(f"the predictor returned shape {probs.shape} for "
                                     f"{len(inputs)} windows of {window}x{window}")
                for prob, (x, width) in zip(probs, placed):
                    if spread_band is not None:
                        prob, variance = prob
                        spread_band.add(y, x, variance[:height, :width], weights[:height, :width])
                    band.add(y, x, prob[:height, :width], weights[:height, :width])
                stats.windows_run += len(inputs)
            if progress is not None:
                progress(len(group))
        until = grid.rows[row_index + 1] if row_index + 1 < len(grid.rows) else source.height
        row, prob, valid = band.flush(until)
        variance = None
        if spread_band is not None:
            spread_band.mark_valid(row, 0, valid)
            variance = spread_band.flush(until)[1]
        yield RowBlock(row, prob, valid, variance)
