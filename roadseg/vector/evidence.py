"""How much the probability map backs each road edge: pure numpy over the graph, no file I/O.

An edge's evidence is taken over the pixels its path runs through: the skeleton pixels of a traced road,
and, for a join made by gap closing, the straight run of pixels between its ends (where the map is
usually weak, which is why the join was needed). It is computed on the pixel paths before
Douglas-Peucker, so simplifying a line never changes it.
"""

from __future__ import annotations

import networkx as nx
import numpy as np


def path_pixels(path: np.ndarray) -> np.ndarray:
    """The (row, col) pixels a row/col path runs through, in order, each step at most one pixel.

    Segments longer than a pixel (gap-closing joins, split points) are sampled at unit steps, so a
    join's evidence counts every pixel it crosses; consecutive repeats are dropped.
    """
    path = np.asarray(path, dtype=np.float64).reshape(-1, 2)
    if len(path) > 1:
        diff = np.diff(path, axis=0)
        steps = np.maximum(np.ceil(np.abs(diff).max(axis=1)).astype(np.int64), 1)
        segment = np.repeat(np.arange(len(diff)), steps)
        offset = np.arange(int(steps.sum())) - np.repeat(np.cumsum(steps) - steps, steps)
        along = (offset / steps[segment])[:, None]
        path = np.vstack([path[segment] + diff[segment] * along, path[-1:]])
    pixels = np.floor(path + 0.5).astype(np.int64)
    keep = np.concatenate([[True], np.any(np.diff(pixels, axis=0) != 0, axis=1)])
    return pixels[keep]


def pixel_evidence(pixels: np.ndarray, probability: np.ndarray, valid: np.ndarray) -> tuple[float, float] | None:
    """``(mean, min)`` probability over ``pixels`` that hold data (``valid`` and not NaN); None when none does."""
    height, width = probability.shape
    rows, cols = pixels[:, 0], pixels[:, 1]
    inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    rows, cols = rows[inside], cols[inside]
    values = probability[rows, cols][valid[rows, cols]].astype(np.float64)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return None
    return float(values.mean()), float(values.min())


def add_edge_evidence(graph: nx.MultiGraph, probability: np.ndarray, valid: np.ndarray) -> None:
    """Set ``prob_mean`` and ``prob_min`` on every edge (None where its pixels hold no data).

    Call it before simplifying: it reads the pixel paths, which Douglas-Peucker thins out.
    """
    for _u, _v, data in graph.edges(data=True):
        evidence = pixel_evidence(path_pixels(data["path"]), probability, valid)
        data["prob_mean"], data["prob_min"] = evidence if evidence is not None else (None, None)
