"""The maps given beside masks (``prob``, ``uncertainty``): matched to their masks by stem, checked to
be what they claim and on their mask's grid, and read whole (window by window: :mod:`.block_read`).

One set of rules for both kinds of map (:class:`~roadseg.vector.evidence.EvidenceLayer`): predict
writes ``<stem>_mask``, ``<stem>_prob`` and ``<stem>_uncertainty`` side by side, so a map goes with the
mask of its stem, and a map that matches no mask, or a mask left without its map, is refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from roadseg.errors import BadInputError
from roadseg.io.grid import RasterGrid, grid_mismatch
from roadseg.io.masks import MaskRaster
from roadseg.io.mosaic import MosaicPlan, mask_plan, mosaic_masks
from roadseg.io.raster_open import UNCERTAINTY as UNCERTAINTY_CONTENT
from roadseg.vector.evidence import PROBABILITY, UNCERTAINTY, EvidenceLayer

MapFiles = Mapping[EvidenceLayer, Sequence[Path]]
"""The map files given beside a group of masks, by layer."""


def _stem_key(path: Path, suffix: str) -> str:
    """A file's stem less ``suffix`` (``a_mask`` -> ``a``), which pairs predict's outputs of one image."""
    stem = path.stem
    return stem[: -len(suffix)] if stem.lower().endswith(suffix) else stem


def match_maps(masks: Sequence[Path], maps: Sequence[Path], layer: EvidenceLayer = PROBABILITY,
               mask_suffix: str = "_mask") -> dict[Path, Path]:
    """Each mask's map of ``layer``: the one given for one mask, else ``<stem>_prob`` (the layer's suffix)
    for ``<stem>_mask`` (``mask_suffix``: ``_prob`` for probability maps read at a threshold).

    Refuses, with one line naming the file, a mask without its map, a map matching no mask, and two maps
    of one stem.
    """
    if not maps:
        return {}
    if len(masks) == 1 and len(maps) == 1:
        return {masks[0]: maps[0]}
    by_stem: dict[str, Path] = {}
    for path in maps:
        key = _stem_key(path, layer.suffix)
        if key in by_stem:
            raise BadInputError(f"{path}: a second {layer.noun} for stem {key!r} (after {by_stem[key]}); "
                                f"give one `{layer.setting}` per mask")
        by_stem[key] = path
    keys = {mask: _stem_key(mask, mask_suffix) for mask in masks}
    for mask, key in keys.items():
        if key not in by_stem:
            raise BadInputError(f"{mask}: no {layer.noun} {key}{layer.suffix} among `{layer.setting}`; give one "
                                f"per mask, named <stem>{layer.suffix} beside <stem>{mask_suffix}")
    unused = sorted(set(by_stem) - set(keys.values()))
    if unused:
        raise BadInputError(f"{by_stem[unused[0]]}: matches no mask (<stem>{layer.suffix} goes with "
                            f"<stem>{mask_suffix})")
    return {mask: by_stem[key] for mask, key in keys.items()}


def _wrong_content(plan: MosaicPlan, layer: EvidenceLayer) -> str | None:
    """Why a map's tiles are not of ``layer``'s kind (a mask, or the other map), or None."""
    for info in plan.infos:
        uncertainty = info.content == UNCERTAINTY_CONTENT
        if layer == UNCERTAINTY and not uncertainty:
            return (f"{info.path}: not an uncertainty map roadseg wrote (no ROADSEG_CONTENT=uncertainty tag); "
                    "`uncertainty` takes predict's <stem>_uncertainty.tif, written with `save_uncertainty`")
        if layer == PROBABILITY and uncertainty:
            return (f"{info.path}: is predict's uncertainty map (the variance of its TTA views), not "
                    "probabilities; give it as `uncertainty`")
        if layer == PROBABILITY and info.kind != "probability":
            return (f"{info.path}: holds a mask, not probabilities; `prob` needs a probability map (floats, or "
                    "predict's _prob)")
    return None


def map_plan(paths: Sequence[Path], layer: EvidenceLayer, grid: RasterGrid, mask_name: str) -> MosaicPlan:
    """The plan of the map files (one, or tiles) standing beside the mask ``mask_name`` on ``grid``;
    refuses, naming the file, a map of another kind or on another grid."""
    plan = mask_plan(paths, threshold=1.0)
    problem = _wrong_content(plan, layer)
    if problem is not None:
        raise BadInputError(problem)
    kind = grid_mismatch(grid, plan.grid)
    if kind is not None:
        name = ";".join(str(i.path) for i in plan.infos)
        raise BadInputError(f"{name}: not on the grid of {mask_name} (the {kind} differs); `{layer.setting}` "
                            f"must be a {layer.noun} of the same grid as its mask")
    return plan


def attach_maps(raster: MaskRaster, maps: MapFiles) -> MaskRaster:
    """``raster`` with the values of its maps (NaN where they have no data; tiles mosaicked), each
    checked by :func:`map_plan`."""
    grid = RasterGrid(*raster.road.shape, raster.crs, raster.transform)
    found = {}
    for layer, paths in maps.items():
        map_plan(paths, layer, grid, raster.source)
        read = mosaic_masks(paths, threshold=1.0)
        found[layer.attribute] = np.where(read.valid, read.probability, np.nan).astype(np.float32)
    return dataclasses.replace(raster, **found)
