"""Read a scene window by window for block-wise vectorizing: one mask file or a mosaic of tiles, decoded
as the whole-raster readers decode them, and the probability and uncertainty maps given beside the masks.

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

from roadseg.io.masks import MaskFormat, MaskRaster
from roadseg.io.mosaic import MosaicPlan, mask_plan, mosaic_window, plan_tiles
from roadseg.io.raster_open import WEIGHTS_TAG, open_raster
from roadseg.io.raster_read import io_env
from roadseg.vector.blocks import ReadWindow, WindowData
from roadseg.vector.evidence import LAYERS, PROBABILITY, EvidenceLayer
from roadseg.vector.evidence_maps import MapFiles, map_plan


@dataclass(frozen=True)
class Scene:
    """A raster to vectorize, known by its place and read window by window (``read(rows, cols)``);
    ``evidence``: the maps its windows carry (probabilities, TTA variance), which each edge reports."""

    shape: tuple[int, int]
    transform: Affine
    crs: CRS | None
    source: str
    read: ReadWindow
    tiles: list[tuple[str, int, int, int, int]] | None = None
    weights: str | None = None
    evidence: tuple[EvidenceLayer, ...] = ()


def array_scene(raster: MaskRaster) -> Scene:
    """A decoded in-memory raster as a scene (its windows are views)."""
    layers = tuple(layer for layer in LAYERS if getattr(raster, layer.attribute) is not None)

    def read(rows: slice, cols: slice) -> WindowData:
        maps = {layer.attribute: getattr(raster, layer.attribute)[rows, cols] for layer in layers}
        return WindowData(raster.road[rows, cols], raster.valid[rows, cols], **maps)

    return Scene(raster.road.shape, raster.transform, raster.crs, raster.source, read, raster.tiles, raster.weights,
                 layers)


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


@contextlib.contextmanager
def open_scene(group: list[Path], mask_format: MaskFormat, threshold: float | None,
               maps: MapFiles | None = None) -> Iterator[Scene]:
    """The mask file, or mosaic of tiles, ``group`` as a scene; ``maps`` the probability and uncertainty
    maps beside it (checked as :func:`~roadseg.vector.evidence_maps.map_plan` checks them)."""
    plan = mask_plan(group, mask_format=mask_format, threshold=threshold)
    name = str(group[0]) if len(group) == 1 else ";".join(str(i.path) for i in plan.infos)
    plans = {layer: map_plan(paths, layer, plan.grid, name) for layer, paths in (maps or {}).items()}
    with io_env(), _opened(plan) as sources, contextlib.ExitStack() as stack:  # a bounded GDAL block cache
        opened = {layer: (map_, stack.enter_context(_opened(map_))) for layer, map_ in plans.items()}

        def read(rows: slice, cols: slice) -> WindowData:
            window = _window(rows, cols)
            road, valid, probability = mosaic_window(window, plan, sources, threshold)
            found = {"probability": probability}
            for layer, (map_, map_sources) in opened.items():
                _, map_valid, values = mosaic_window(window, map_, map_sources)
                found[layer.attribute] = np.where(map_valid, values, np.nan)
            return WindowData(road, valid, **found)

        own = (PROBABILITY,) if plan.kind == "probability" else ()
        yield Scene((plan.grid.height, plan.grid.width), plan.grid.transform, plan.grid.crs, name, read,
                    None if len(group) == 1 else plan_tiles(plan), _weights(sources),
                    tuple(layer for layer in LAYERS if layer in plans or layer in own))
