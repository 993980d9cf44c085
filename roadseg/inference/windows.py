"""Window geometry for sliding-window inference: where windows start, and reflect-padded index maps.

Pure integer logic, kept apart from reading and from the model so it can be property-tested alone.
Windows are square, ``window`` pixels wide, spaced ``stride = round(window * (1 - overlap))`` apart;
the last window of a row or column is shifted back inside the image so no window hangs over the edge
(MONAI's ``dense_patch_slices`` does the same). An image smaller than a window gets one window that
is padded by reflection and cropped back afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from roadseg.errors import BadParameterError


def window_stride(window: int, overlap: float) -> int:
    """Distance between window starts: ``window * (1 - overlap)`` rounded, at least 1 pixel."""
    if window < 1:
        raise BadParameterError("window", f"must be a positive number of pixels, got {window}")
    if not 0.0 <= overlap < 1.0:
        raise BadParameterError("overlap", f"must be a fraction in [0, 1), got {overlap}")
    return max(1, int(round(window * (1.0 - overlap))))


def window_starts(length: int, window: int, overlap: float) -> list[int]:
    """Start offsets of the windows along one axis of ``length`` pixels, ascending and unique.

    >>> window_starts(10, 4, 0.0)
    [0, 4, 6]
    >>> window_starts(3, 4, 0.5)
    [0]
    """
    if length < 1:
        raise ValueError(f"an image axis must have at least one pixel, got {length}")
    stride = window_stride(window, overlap)
    if length <= window:
        return [0]
    starts = list(range(0, length - window, stride))
    starts.append(length - window)  # the last window shifted back inside the image
    return sorted(set(starts))


@dataclass(frozen=True)
class WindowGrid:
    """All windows of an image: ``rows[i]`` x ``cols[j]`` are the top-left corners, ``window`` the size."""

    height: int
    width: int
    window: int
    rows: tuple[int, ...]
    cols: tuple[int, ...]

    @property
    def count(self) -> int:
        return len(self.rows) * len(self.cols)

    def crop(self, start: int, length: int) -> int:
        """How many pixels of a window starting at ``start`` lie inside an axis of ``length``."""
        return min(self.window, length - start)


def window_grid(height: int, width: int, window: int, overlap: float) -> WindowGrid:
    """The window grid of an ``height`` x ``width`` image."""
    return WindowGrid(height, width, window, tuple(window_starts(height, window, overlap)),
                      tuple(window_starts(width, window, overlap)))


def window_slices(shape: tuple[int, int], window: int, overlap: float) -> list[tuple[slice, slice]]:
    """``(row_slice, col_slice)`` of every window, clipped to the image, in row-major order."""
    grid = window_grid(shape[0], shape[1], window, overlap)
    return [(slice(y, y + grid.crop(y, shape[0])), slice(x, x + grid.crop(x, shape[1])))
            for y in grid.rows for x in grid.cols]


def reflect_indices(start: int, count: int, length: int) -> np.ndarray:
    """Indices ``start .. start + count - 1`` folded into ``[0, length)`` by reflection (no edge repeat).

    Matches ``numpy.pad(mode="reflect")`` of the whole axis, for any distance outside it; an axis of one
    pixel repeats that pixel.
    """
    index = np.arange(start, start + count, dtype=np.int64)
    if length == 1:
        return np.zeros_like(index)
    period = 2 * (length - 1)
    index = np.mod(index, period)
    return np.where(index >= length, period - index, index)
