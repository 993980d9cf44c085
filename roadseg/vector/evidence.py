"""How well the maps beside a mask back each road edge: pure numpy over the graph, no file I/O.

Two maps can stand beside a mask (:class:`EvidenceLayer`): the road probability (each edge carries
``prob_mean`` and ``prob_min``) and the variance of predict's TTA views (``uncertainty_mean``). An
edge's evidence is taken over the pixels its path runs through: the skeleton pixels of a traced road,
and, for a join made by gap closing, the straight run of pixels between its ends (where the map is
usually weak, which is why the join was needed). It is computed on the pixel paths before
Douglas-Peucker, so simplifying a line never changes it. The whole raster and the block-wise path
(:func:`roadseg.vector.blocks.edge_evidence`) gather the same pixels in the same order and reduce them
with :func:`set_edge_stats`, so both give the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import networkx as nx
import numpy as np


@dataclass(frozen=True)
class EvidenceLayer:
    """A per-pixel map each edge reports statistics of.

    ``setting`` names it (the library keyword, the CLI flag, the prefix of its fields and, after an
    underscore, the suffix of predict's file: ``<stem>_prob``); ``attribute`` is where a
    :class:`~roadseg.io.masks.MaskRaster` or a window holds it; its values lie in ``[0, upper]``.
    """

    setting: str
    attribute: str
    stats: tuple[str, ...]
    upper: float
    what: str  # what its values are, for messages
    noun: str  # what its file is, for messages
    digits: int  # decimals kept in the output

    @property
    def suffix(self) -> str:
        return f"_{self.setting}"

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(f"{self.setting}_{stat}" for stat in self.stats)


PROBABILITY = EvidenceLayer("prob", "probability", ("mean", "min"), 1.0, "probabilities", "probability map", 4)
UNCERTAINTY = EvidenceLayer("uncertainty", "uncertainty", ("mean",), 0.25, "variances", "uncertainty map", 6)
"""The variance of the TTA views' probabilities (predict ``save_uncertainty``): at most 0.25. Its mean
alone: one pixel's variance of a few views is noisy, and the weakest point of a line is ``prob_min``'s."""
LAYERS = (PROBABILITY, UNCERTAINTY)


def _trace(paths: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(owner, pixels)``: the (row, col) pixels each row/col path runs through, in order, each step at
    most one pixel, and the index of the path each belongs to; all paths at once (no loop per path)."""
    points = np.concatenate([np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in paths])
    of_point = np.repeat(np.arange(len(paths)), [len(np.asarray(p).reshape(-1, 2)) for p in paths])
    diff = np.zeros_like(points)
    joined = of_point[1:] == of_point[:-1]  # a segment to the next point of the same path
    diff[:-1][joined] = np.diff(points, axis=0)[joined]
    steps = np.maximum(np.ceil(np.abs(diff).max(axis=1)).astype(np.int64), 1)  # a path's last point: once
    segment = np.repeat(np.arange(len(points)), steps)
    offset = np.arange(int(steps.sum())) - np.repeat(np.cumsum(steps) - steps, steps)
    pixels = np.floor(points[segment] + diff[segment] * (offset / steps[segment])[:, None] + 0.5).astype(np.int64)
    owner = of_point[segment]
    keep = np.concatenate([[True], (owner[1:] != owner[:-1]) | np.any(np.diff(pixels, axis=0) != 0, axis=1)])
    return owner[keep], pixels[keep]


def path_pixels(path: np.ndarray) -> np.ndarray:
    """The (row, col) pixels a row/col path runs through, in order, each step at most one pixel.

    Segments longer than a pixel (gap-closing joins, split points) are sampled at unit steps, so a
    join's evidence counts every pixel it crosses; consecutive repeats are dropped.
    """
    return _trace([path])[1]


def edge_pixels(edges: list, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``(owner, rc)``: the pixels inside a raster of ``shape`` that the ``edges`` (``(u, v, key, data)``)
    run through (:func:`path_pixels`), and the index of the edge each belongs to."""
    if not edges:
        return np.zeros(0, np.int64), np.zeros((0, 2), np.int64)
    owner, rc = _trace([data["path"] for _, _, _, data in edges])
    inside = (rc[:, 0] >= 0) & (rc[:, 0] < shape[0]) & (rc[:, 1] >= 0) & (rc[:, 1] < shape[1])
    return owner[inside], rc[inside]


def set_edge_stats(edges: list, owner: np.ndarray, values: np.ndarray, layer: EvidenceLayer) -> None:
    """Set ``layer``'s fields (``prob_mean``, ...) on each edge from its ``values`` that are not NaN
    (``owner``: the edge of each value); None where it has none."""
    held = ~np.isnan(values)
    owner, values = owner[held], values[held]
    count = np.bincount(owner, minlength=len(edges))
    found = {"mean": np.bincount(owner, weights=values, minlength=len(edges)) / np.maximum(count, 1)}
    if "min" in layer.stats:
        found["min"] = np.full(len(edges), np.inf)
        np.minimum.at(found["min"], owner, values)
    for index, (_, _, _, data) in enumerate(edges):
        for stat, name in zip(layer.stats, layer.fields):
            data[name] = float(found[stat][index]) if count[index] else None


def add_edge_evidence(graph: nx.MultiGraph, maps: Mapping[EvidenceLayer, np.ndarray], valid: np.ndarray) -> None:
    """Set each layer's fields (``prob_mean``, ...) on every edge from its map in ``maps``, over the pixels
    where ``valid`` and not NaN (None where an edge's pixels hold no data); the pixels are traced once.

    Call it before simplifying: it reads the pixel paths, which Douglas-Peucker thins out.
    """
    edges = list(graph.edges(keys=True, data=True))
    if not edges or not maps:
        return
    owner, rc = edge_pixels(edges, valid.shape)
    rows, cols = rc[:, 0], rc[:, 1]
    held = valid[rows, cols]
    for layer, values in maps.items():
        set_edge_stats(edges, owner, np.where(held, values[rows, cols], np.nan).astype(np.float64), layer)
