"""Probabilities predicted on a virtual grid (the network's GSD), streamed back onto the input's grid.

Both grids cover the same footprint; along each axis, pixel ``j`` of an axis of ``dst`` pixels covers
``[j, j + 1) * src / dst`` of an axis of ``src`` pixels. Resampling is separable and linear, a sparse
``(dst, src)`` matrix per axis (:func:`axis_weights`): the area average of the source pixels a target
pixel overlaps when shrinking, bilinear interpolation between pixel centres when enlarging (GDAL's
conventions for ``average`` and ``bilinear``). Invalid source pixels (NaN) take no part: every target
pixel is ``Σ w·p / Σ w`` over the valid ones. Rows stream through a band no taller than the support of
one block, so memory does not grow with the raster's height.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np
from scipy import sparse

from roadseg.inference.sliding import RowBlock


def axis_weights(src: int, dst: int) -> sparse.csr_matrix:
    """``(dst, src)`` weights, each row summing to 1: area average when ``dst < src``, else bilinear.

    >>> axis_weights(4, 2).toarray()
    array([[0.5, 0.5, 0. , 0. ],
           [0. , 0. , 0.5, 0.5]])
    >>> axis_weights(2, 4).toarray()
    array([[1.  , 0.  ],
           [0.75, 0.25],
           [0.25, 0.75],
           [0.  , 1.  ]])
    """
    if src < 1 or dst < 1:
        raise ValueError(f"axis lengths must be positive, got {src} -> {dst}")
    scale = src / dst
    if dst < src:
        return _area_weights(src, dst, scale)
    centre = np.clip((np.arange(dst) + 0.5) * scale - 0.5, 0.0, src - 1.0)
    low = np.minimum(np.floor(centre).astype(np.int64), src - 1)
    high = np.minimum(low + 1, src - 1)
    frac = centre - low
    rows = np.repeat(np.arange(dst), 2)
    cols = np.column_stack([low, high]).ravel()
    values = np.column_stack([1.0 - frac, frac]).ravel()
    return sparse.csr_matrix((values, (rows, cols)), shape=(dst, src))  # duplicates (low == high) add up


def _area_weights(src: int, dst: int, scale: float) -> sparse.csr_matrix:
    """Each target pixel: the overlap of its footprint ``[j, j + 1) * scale`` with every source pixel."""
    starts = np.arange(dst) * scale
    stops = starts + scale
    first = np.floor(starts).astype(np.int64)
    last = np.minimum(np.ceil(stops).astype(np.int64), src)  # exclusive
    span = int((last - first).max())
    cols = first[:, None] + np.arange(span)[None, :]
    overlap = np.minimum(cols + 1, stops[:, None]) - np.maximum(cols, starts[:, None])
    keep = (cols < last[:, None]) & (overlap > 0)
    rows = np.broadcast_to(np.arange(dst)[:, None], cols.shape)
    values = overlap[keep] / scale
    return sparse.csr_matrix((values, (rows[keep], cols[keep])), shape=(dst, src))


def _support(weights: sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """First and one-past-last source index each target row uses (every row uses at least one)."""
    starts = weights.indptr[:-1]
    return (np.minimum.reduceat(weights.indices, starts).astype(np.int64),
            np.maximum.reduceat(weights.indices, starts).astype(np.int64) + 1)


def resample_array(prob: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``(h, w)`` float probabilities (NaN: none) on a ``shape`` grid over the same footprint, NaN where no
    valid source pixel contributes (the whole-array form of :func:`resample_rows`)."""
    block = RowBlock(0, np.asarray(prob, np.float32), np.isfinite(prob))
    rows = resample_rows([block], prob.shape, shape)
    return np.concatenate([out.prob for out in rows]) if shape[0] else np.empty(shape, np.float32)


def resample_rows(blocks: Iterable[RowBlock], src_shape: tuple[int, int], dst_shape: tuple[int, int],
                  valid: Callable[[int, int], np.ndarray] | None = None) -> Iterator[RowBlock]:
    """Row blocks of a ``src_shape`` grid, top to bottom, as row blocks of ``dst_shape`` over the same ground.

    ``valid(row, count)`` gives the target grid's own validity of rows ``[row, row + count)`` (the input's
    nodata mask): a target pixel is valid where it says so, whatever the source; its probability is the
    weighted mean of the valid source pixels, 0 where none reaches it. Without ``valid``, a target pixel
    is valid where some valid source pixel reaches it. A block's ``variance`` is resampled the same way.
    """
    rows_w = axis_weights(src_shape[0], dst_shape[0])
    cols_t = axis_weights(src_shape[1], dst_shape[1]).T.tocsr()
    low, high = _support(rows_w)
    band_top, band_weight = 0, np.zeros((0, src_shape[1]))
    band_sums: list[np.ndarray] | None = None  # Σ of the probabilities, and of the variances when blocks have them
    done = 0
    for block in blocks:
        usable = block.valid & np.isfinite(block.prob)
        values = [block.prob] + ([] if block.variance is None else [block.variance])
        band_sums = [np.zeros((0, src_shape[1]))] * len(values) if band_sums is None else band_sums
        band_sums = [np.concatenate([band, np.where(usable, value, 0.0)]) for band, value in zip(band_sums, values)]
        band_weight = np.concatenate([band_weight, usable.astype(np.float64)])
        available = band_top + band_weight.shape[0]
        end = done
        while end < dst_shape[0] and high[end] <= available:
            end += 1
        if end == done:
            continue
        part = rows_w[done:end, band_top:available]
        totals = [np.asarray((part @ band) @ cols_t) for band in band_sums]
        yield _finish(done, totals, np.asarray((part @ band_weight) @ cols_t), valid)
        done = end
        keep_from = int(low[done]) if done < dst_shape[0] else available
        band_sums = [band[keep_from - band_top:] for band in band_sums]
        band_weight = band_weight[keep_from - band_top:]
        band_top = keep_from
    if done != dst_shape[0]:
        raise ValueError(f"the source rows ended before target row {done} of {dst_shape[0]} was complete")


def _finish(row: int, totals: list[np.ndarray], weight: np.ndarray,
            valid: Callable[[int, int], np.ndarray] | None) -> RowBlock:
    reached = weight > 1e-12
    mask = reached if valid is None else np.asarray(valid(row, weight.shape[0]), bool)
    means = []
    for total in totals:
        mean = np.zeros(total.shape, np.float32)
        np.divide(total, weight, out=mean, where=reached, casting="unsafe")
        means.append(np.where(mask, mean, np.float32(np.nan)).astype(np.float32))
    return RowBlock(row, means[0], mask, means[1] if len(means) > 1 else None)
