"""Read a scene window by window for block-wise vectorizing: one mask file or a mosaic of tiles, decoded
as the whole-raster readers decode them, and the probability maps given beside the masks.

A scene is what :func:`roadseg.vector.vectorize.vectorize_files` would otherwise read whole
(:func:`roadseg.io.masks.read_mask`, :func:`roadseg.io.mosaic.mosaic_masks`); here only the tiles'
windows under the window asked for are read, through the same mosaic plan, so memory stays that of a
window whatever the scene's size.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from roadseg.errors import BadInputError
from roadseg.io.grid import grid_mismatch
from roadseg.io.masks import MaskFormat, MaskRaster
from roadseg.io.mosaic import MosaicPlan, mask_plan, mosaic_window, plan_tiles
from roadseg.io.raster_open import WEIGHTS_TAG, open_raster
from roadseg.io.raster_read import io_env
from roadseg.vector.blocks import ReadWindow, WindowData


@dataclass(frozen=True)
class Scene:
    """A raster to vectorize, known by its place and read window by window (``read(rows, cols)``)."""

    shape: tuple[int, int]
    transform: Affine
    crs: CRS | None
    source: str
    read: ReadWindow
    tiles: list[tuple[str, int, int, int, int]] | None = None
    weights: str | None = None
    has_probability: bool = False


def array_scene(raster: MaskRaster) -> Scene:
    """A decoded in-memory raster as a scene (its windows are views)."""
    probability = raster.probability

    def read(rows: slice, cols: slice) -> WindowData:
        return WindowData(raster.road[rows, cols], raster.valid[rows, cols],
                          None if probability is None else probability[rows, cols])

    return Scene(raster.road.shape, raster.transform, raster.crs, raster.source, read, raster.tiles, raster.weights,
                 probability is not None)


def _window(rows: slice, cols: slice) -> Window:
    return Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)


@contextlib.contextmanager
def _opened(plan: MosaicPlan) -> Iterator[list]:
    """The plan's tiles opened, in order, for as long as the scene is read."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(open_raster(info.path, "give masks or probability maps (GeoTIFF, PNG)"))
               for info in plan.infos]


def _weights(sources: list) -> str | None:
    """The weights labels the tiles carry, joined as the whole-raster readers join them."""
    labels: list[str] = []
    for src in sources:
        label = src.tags().get(WEIGHTS_TAG)
        if label and label not in labels:
            labels.append(label)
    return ";".join(labels) or None


def _check_prob_plan(prob: MosaicPlan, plan: MosaicPlan) -> None:
    """A probability map beside a mask must hold probabilities, on the mask's grid (as whole)."""
    name = ";".join(str(i.path) for i in prob.infos)
    if prob.kind != "probability":
        raise BadInputError(f"{name}: holds a mask, not probabilities; `prob` needs a probability map "
                            "(floats, or predict's _prob)")
    kind = grid_mismatch(plan.grid, prob.grid)
    if kind is not None:
        raise BadInputError(f"{name}: not on the grid of {';'.join(str(i.path) for i in plan.infos)} (the {kind} "
                            "differs); `prob` must be a probability map of the same grid as its mask")


@contextlib.contextmanager
def open_scene(group: list[Path], mask_format: MaskFormat, threshold: float | None,
               prob: list[Path] | None = None) -> Iterator[Scene]:
    """The mask file, or mosaic of tiles, ``group`` as a scene; ``prob`` the probability maps beside it."""
    plan = mask_plan(group, mask_format=mask_format, threshold=threshold)
    prob_plan = mask_plan(prob, threshold=1.0) if prob else None
    if prob_plan is not None:
        _check_prob_plan(prob_plan, plan)
    with io_env(), _opened(plan) as sources, contextlib.ExitStack() as stack:  # a bounded GDAL block cache
        prob_sources = stack.enter_context(_opened(prob_plan)) if prob_plan is not None else None

        def read(rows: slice, cols: slice) -> WindowData:
            window = _window(rows, cols)
            road, valid, probability = mosaic_window(window, plan, sources, threshold)
            if prob_sources is not None:
                _, prob_valid, probability = mosaic_window(window, prob_plan, prob_sources)
                probability = np.where(prob_valid, probability, np.nan)
            return WindowData(road, valid, probability)

        single = len(group) == 1
        yield Scene((plan.grid.height, plan.grid.width), plan.grid.transform, plan.grid.crs,
                    str(group[0]) if single else ";".join(str(i.path) for i in plan.infos), read,
                    None if single else plan_tiles(plan), _weights(sources),
                    prob_plan is not None or plan.kind == "probability")
