"""Vectorize a scene block by block: the skeleton of a raster too large to hold, gathered from windows.

Cleaning the mask and skeletonizing it are local: a pixel's outcome depends only on the mask around it.
Each block is read as a *window*, its *core* grown by a *margin* on every side (clipped to the raster),
cleaned and skeletonized whole, and only the skeleton pixels inside the core are kept: the cores tile
the raster, so every skeleton pixel is owned by exactly one block. The margin is wide enough that the
core's outcome is the whole raster's:

* cleaning drops blobs (fills holes) of fewer than ``min_area`` (``min_hole``) pixels. A blob that
  reaches from a pixel to the edge of the window holds at least as many pixels as that distance, so a
  margin of that many pixels never takes a large blob, cut by the window, for a small one;
* thinning moves in from the mask's boundary one pixel a pass, so a window's cut edge reaches only as
  far into the window as the road is wide: :data:`SKELETON_MARGIN` pixels cover roads and squares
  twice as wide as that.

The skeleton pixels of the whole scene, as flat positions (8 bytes each, a small fraction of the
raster), are then made into one graph (:func:`roadseg.vector.skeleton_graph.pixels_graph`): a road
crossing a seam joins up there as it does in the whole raster, so reconciling blocks needs no matching
of ends. Pure numpy: reading windows is the caller's (:mod:`roadseg.vector.block_read`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np
import shapely
from affine import Affine
from rasterio.features import shapes
from scipy.ndimage import distance_transform_cdt

from roadseg.vector.evidence import EvidenceLayer, edge_pixels, set_edge_stats
from roadseg.vector.mask_clean import clean_mask
from roadseg.vector.skeleton_graph import skeletonize_mask

SKELETON_MARGIN = 64
"""Pixels of mask around a core that its skeleton depends on (roads up to about twice as wide)."""
FAR = np.iinfo(np.uint16).max
"""Distance to nodata of a pixel with none in its window."""

Window = tuple[slice, slice]
"""Rows and columns of a window on the raster."""
ReadWindow = Callable[[slice, slice], "WindowData"]
"""Reads one window of the scene: road, validity and (when known) probabilities."""


@dataclass(frozen=True)
class WindowData:
    """One window of a scene as read: road and data pixels, and the probabilities and TTA variance when
    known (else None; see :mod:`roadseg.vector.evidence`)."""

    road: np.ndarray
    valid: np.ndarray
    probability: np.ndarray | None = None
    uncertainty: np.ndarray | None = None


@dataclass(frozen=True)
class Block:
    """A core (the pixels this block owns) and the window read around it (the core and its margin)."""

    core: Window
    window: Window

    def core_in_window(self) -> Window:
        """The core as slices of the window's array."""
        (r, c), (wr, wc) = self.core, self.window
        return slice(r.start - wr.start, r.stop - wr.start), slice(c.start - wc.start, c.stop - wc.start)


@dataclass(frozen=True)
class BlockLayout:
    """Square cores of ``core`` pixels tiling a raster of ``shape``, each read with ``margin`` around it."""

    shape: tuple[int, int]
    core: int
    margin: int

    def blocks(self) -> Iterator[Block]:
        """Every block, row by row."""
        height, width = self.shape
        for r in range(0, height, self.core):
            for c in range(0, width, self.core):
                r1, c1 = min(r + self.core, height), min(c + self.core, width)
                window = (slice(max(r - self.margin, 0), min(r1 + self.margin, height)),
                          slice(max(c - self.margin, 0), min(c1 + self.margin, width)))
                yield Block((slice(r, r1), slice(c, c1)), window)

    @property
    def count(self) -> int:
        return math.ceil(self.shape[0] / self.core) * math.ceil(self.shape[1] / self.core)


@dataclass(frozen=True)
class Cleaning:
    """Mask cleaning in pixels (:func:`roadseg.vector.mask_clean.clean_mask`)."""

    min_hole: float
    min_area: float

    def margin(self) -> int:
        """The margin a core needs for its cleaned mask and skeleton to be the whole raster's."""
        return SKELETON_MARGIN + int(math.ceil(max(self.min_hole, self.min_area, 0.0)))


@dataclass
class SceneSkeleton:
    """A scene's skeleton gathered from its blocks, and the counts the pipeline needs of its mask."""

    flat: np.ndarray
    """Sorted flat positions (``row * width + col``) of the skeleton pixels."""
    nodata_distance: np.ndarray
    """Per skeleton pixel: chessboard distance to the nearest nodata pixel (:data:`FAR` when beyond the margin)."""
    road_pixels: int = 0
    """Road pixels after cleaning."""
    background_pixels: int = 0
    """Pixels with data that are not road after cleaning."""


def block_skeleton(data: WindowData, block: Block, cleaning: Cleaning, width: int
                   ) -> tuple[np.ndarray, np.ndarray, int, int]:
    """The core's skeleton pixels (flat positions in a raster ``width`` wide), their distance to nodata,
    and the core's road and background pixel counts after cleaning."""
    road = clean_mask(data.road, min_hole=cleaning.min_hole, min_area=cleaning.min_area, valid=data.valid)
    core = block.core_in_window()
    core_road = road[core]
    road_pixels = int(np.count_nonzero(core_road))
    background = int(np.count_nonzero(data.valid[core])) - road_pixels
    skeleton = skeletonize_mask(road)
    del road
    rows, cols = np.nonzero(skeleton[core])
    del skeleton
    if data.valid.all():
        distance = np.full(rows.size, FAR, np.uint16)
    else:
        to_nodata = distance_transform_cdt(data.valid, metric="chessboard")[core]
        distance = np.minimum(to_nodata[rows, cols], FAR).astype(np.uint16)
    flat = (rows + block.core[0].start).astype(np.int64) * width + cols + block.core[1].start
    return flat, distance, road_pixels, background


def scene_skeleton(read: ReadWindow, layout: BlockLayout, cleaning: Cleaning) -> SceneSkeleton:
    """The skeleton of a whole scene, read window by window (see the module docstring)."""
    flats, distances = [], []
    scene = SceneSkeleton(np.zeros(0, np.int64), np.zeros(0, np.uint16))
    for block in layout.blocks():
        flat, distance, road_pixels, background = block_skeleton(read(*block.window), block, cleaning,
                                                                 layout.shape[1])
        flats.append(flat)
        distances.append(distance)
        scene.road_pixels += road_pixels
        scene.background_pixels += background
    flat = np.concatenate(flats)
    order = np.argsort(flat, kind="stable")
    scene.flat, scene.nodata_distance = flat[order], np.concatenate(distances)[order]
    return scene


def dead_ends_to_keep(graph: nx.MultiGraph, margin: int, near_nodata: Callable[[int, int], bool]) -> set[int]:
    """Dead ends within ``margin`` pixels of the raster's edge, or where ``near_nodata(row, col)`` says
    nodata is that near: their road goes on, so pruning keeps them."""
    height, width = graph.graph["shape"]
    keep = set()
    for node in graph.nodes:
        if graph.degree(node) != 1:
            continue
        r, c = (int(round(x)) for x in graph.nodes[node]["rc"])
        if r - margin < 0 or c - margin < 0 or r + margin + 1 > height or c + margin + 1 > width or near_nodata(r, c):
            keep.add(node)
    return keep


def skeleton_near_nodata(scene: SceneSkeleton, width: int, margin: int) -> Callable[[int, int], bool]:
    """Whether nodata lies within ``margin`` of a pixel, measured at the skeleton pixel there (the next one
    in raster order where a junction's centre is no skeleton pixel)."""
    def near(r: int, c: int) -> bool:
        index = min(int(np.searchsorted(scene.flat, r * width + c)), scene.flat.size - 1)
        return bool(scene.nodata_distance[index] <= margin)
    return near


def edge_evidence(graph: nx.MultiGraph, read: ReadWindow, layout: BlockLayout,
                  layers: Sequence[EvidenceLayer]) -> None:
    """Set each of ``layers``' fields (``prob_mean``, ...) on every edge from maps read window by window:
    the block-wise twin of :func:`roadseg.vector.evidence.add_edge_evidence` (same pixels, same rule)."""
    edges = list(graph.edges(keys=True, data=True))
    if not edges or not layers:
        return
    owner, rc = edge_pixels(edges, layout.shape)
    values = {layer: np.full(len(rc), np.nan) for layer in layers}
    width = layout.shape[1]
    cell = (rc[:, 0] // layout.core) * math.ceil(width / layout.core) + rc[:, 1] // layout.core
    order = np.argsort(cell, kind="stable")
    bounds = np.searchsorted(cell[order], np.arange(layout.count + 1))
    for index, block in enumerate(layout.blocks()):  # row by row, so a block's index is its cell
        here = order[bounds[index]:bounds[index + 1]]
        if here.size == 0:
            continue
        rows, cols = block.core
        data = read(rows, cols)
        r, c = rc[here, 0] - rows.start, rc[here, 1] - cols.start
        for layer, found in values.items():
            found[here] = np.where(data.valid[r, c], getattr(data, layer.attribute)[r, c], np.nan)
    for layer, found in values.items():
        set_edge_stats(edges, owner, found, layer)


def pixel_polygons(road: np.ndarray, row0: int, col0: int) -> list:
    """Road areas of a boolean array as shapely polygons in pixel corners (x = col, y = row) of a raster
    where the array's first pixel is ``(row0, col0)`` (rasterio's shapes, 8-connected)."""
    road = np.asarray(road, dtype=bool)
    found = shapes(road.astype(np.uint8), mask=road, connectivity=8, transform=Affine.translation(col0, row0))
    return [shapely.geometry.shape(geom) for geom, _ in found]


def scene_polygons(read: ReadWindow, layout: BlockLayout, cleaning: Cleaning) -> tuple[list, int]:
    """Road areas of a whole scene, block by block, and its road pixel count after cleaning: each core's
    cleaned mask as polygons, those touching a seam between cores merged with their neighbours."""
    kept, seamed = [], []
    road_pixels = 0
    height, width = layout.shape
    for block in layout.blocks():
        data = read(*block.window)
        road = clean_mask(data.road, min_hole=cleaning.min_hole, min_area=cleaning.min_area, valid=data.valid)
        core = road[block.core_in_window()]
        road_pixels += int(np.count_nonzero(core))
        for polygon in pixel_polygons(core, block.core[0].start, block.core[1].start):
            x0, y0, x1, y1 = polygon.bounds
            on_seam = ((x0 > 0 and x0 % layout.core == 0) or (x1 < width and x1 % layout.core == 0)
                       or (y0 > 0 and y0 % layout.core == 0) or (y1 < height and y1 % layout.core == 0))
            (seamed if on_seam else kept).append(polygon)
    if seamed:
        merged = shapely.union_all(seamed)
        kept.extend(shapely.get_parts(merged).tolist())
    return kept, road_pixels
