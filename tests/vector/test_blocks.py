"""Block-wise vectorizing gives the whole raster's graph: roads crossing seams at any angle, through seam
corners and along seams, dead ends at nodata, evidence, polygons, and mosaics of files."""

import dataclasses
import math
from unittest import mock

import networkx as nx
import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.crs import CRS
from scipy.ndimage import binary_dilation
from skimage.draw import line as draw_line
from skimage.morphology import disk, skeletonize

from roadseg.errors import BadParameterError
from roadseg.vector import blocks, skeleton_graph
from roadseg.vector.blocks import BlockLayout
from roadseg.vector.skeleton_graph import build_graph, pixels_graph
from roadseg.vector.vectorize import VectorizeOptions, use_blocks, vectorize, vectorize_files

PIXELS = VectorizeOptions(min_hole=8, min_area=8, min_spur=6, max_gap=6, min_length=10, simplify=0.5,
                          block_size=0)
"""Sizes in pixels (no georeferencing), small enough for small rasters."""
SIZE, BLOCK = 192, 32


def draw_roads(shape, roads) -> np.ndarray:
    """A mask of straight roads ``(r0, c0, r1, c1, radius)``, clipped to the raster."""
    mask = np.zeros(shape, bool)
    for r0, c0, r1, c1, radius in roads:
        centre = np.zeros(shape, bool)
        rr, cc = draw_line(int(round(r0)), int(round(c0)), int(round(r1)), int(round(c1)))
        inside = (rr >= 0) & (rr < shape[0]) & (cc >= 0) & (cc < shape[1])
        centre[rr[inside], cc[inside]] = True
        mask |= binary_dilation(centre, disk(radius))
    return mask


def through(point, angle, half_length, radius):
    """A road through ``point`` at ``angle`` (radians), ``half_length`` each way."""
    dr, dc = math.sin(angle) * half_length, math.cos(angle) * half_length
    return (point[0] - dr, point[1] - dc, point[0] + dr, point[1] + dc, radius)


seam = st.integers(1, SIZE // BLOCK - 1).map(lambda k: k * BLOCK)
angles = st.floats(0, math.pi)
radii = st.integers(1, 3)
anywhere = st.builds(through, st.tuples(st.floats(0, SIZE), st.floats(0, SIZE)), angles, st.floats(10, 150), radii)
at_corner = st.builds(through, st.tuples(seam, seam), angles, st.floats(10, 150), radii)
along_seam = st.builds(lambda k, d, vertical, radius: (0, k + d, SIZE, k + d, radius) if vertical
                       else (k + d, 0, k + d, SIZE, radius), seam, st.integers(-3, 3), st.booleans(), radii)
road_sets = st.lists(st.one_of(anywhere, at_corner, along_seam), min_size=1, max_size=7)


def lines(graph: nx.MultiGraph) -> list:
    return [shapely.LineString(p if len(p) > 1 else np.vstack([p, p])) for _, _, p in graph.edges(data="path")]


def max_distance(graph: nx.MultiGraph, reference: nx.MultiGraph) -> float:
    """Largest distance (pixels) of a point of ``graph``'s edges from ``reference``'s edges."""
    mine = np.array(lines(graph), dtype=object)
    if mine.size == 0:
        return 0.0
    long = shapely.length(mine) > 0
    points = np.vstack([shapely.get_coordinates(shapely.segmentize(mine[long], 0.5)),
                        shapely.get_coordinates(mine[~long])])
    return float(shapely.distance(shapely.points(points), shapely.union_all(lines(reference))).max())


def total_length(graph: nx.MultiGraph) -> float:
    return sum(length for _, _, length in graph.edges(data="length"))


def assert_same_graph(whole, blockwise) -> None:
    """The issue's targets: total length within 0.5 %, the same components, every edge within 1 px."""
    assert total_length(blockwise.graph) == pytest.approx(total_length(whole.graph), rel=0.005, abs=1e-9)
    assert nx.number_connected_components(blockwise.graph) == nx.number_connected_components(whole.graph)
    assert max_distance(blockwise.graph, whole.graph) <= 1.0
    assert max_distance(whole.graph, blockwise.graph) <= 1.0


def both(mask, options=PIXELS, block=BLOCK, **kwargs):
    """The whole-raster and the block-wise result of one mask."""
    whole = vectorize(mask, options, **kwargs)
    blockwise = vectorize(mask, dataclasses.replace(options, block_size=block), **kwargs)
    assert blockwise.counts["blocks"] == math.ceil(mask.shape[0] / block) * math.ceil(mask.shape[1] / block)
    return whole, blockwise


@settings(max_examples=25, deadline=None)
@given(roads=road_sets, nodata=st.one_of(st.none(), st.tuples(st.integers(0, SIZE - 40), st.integers(0, SIZE - 40))))
def test_blockwise_graph_is_the_whole_raster_graph(roads, nodata):
    mask = draw_roads((SIZE, SIZE), roads)
    valid = np.ones(mask.shape, bool)
    if nodata is not None:  # a nodata square: dead ends at it are kept, block-wise too
        valid[nodata[0]:nodata[0] + 40, nodata[1]:nodata[1] + 40] = False
    with mock.patch.object(blocks, "SKELETON_MARGIN", 12):  # windows far smaller than the raster
        whole, blockwise = both(mask, valid=valid)
    assert_same_graph(whole, blockwise)


def test_default_margin_on_a_dense_network():
    rng = np.random.default_rng(3)
    roads = [through(rng.uniform(0, 480, 2), rng.uniform(0, math.pi), rng.uniform(40, 300), int(rng.integers(1, 5)))
             for _ in range(30)]
    mask = draw_roads((480, 480), roads)
    prob = np.clip(mask * 0.7 + rng.uniform(0, 0.3, mask.shape), 0, 1).astype(np.float32)
    variance = rng.uniform(0, 0.25, mask.shape).astype(np.float32)
    variance[:120, :120] = np.nan  # lines there report None, block-wise too
    valid = np.ones(mask.shape, bool)
    valid[300:, :90] = False
    whole, blockwise = both(mask, valid=valid, prob=prob, uncertainty=variance, block=96)
    assert_same_graph(whole, blockwise)
    evidence = [sorted((f["properties"]["length_px"], f["properties"]["prob_mean"], f["properties"]["prob_min"],
                        str(f["properties"]["uncertainty_mean"])) for f in result.collection["features"])
                for result in (whole, blockwise)]
    assert evidence[0] == evidence[1] and all(row[1] is not None for row in evidence[1])
    assert {row[3] == "None" for row in evidence[1]} == {True, False}


@settings(max_examples=20, deadline=None)
@given(shape=st.tuples(st.integers(1, 300), st.integers(1, 300)), core=st.integers(1, 80),
       margin=st.integers(0, 50))
def test_cores_tile_the_raster_once_and_windows_hold_their_margin(shape, core, margin):
    layout = BlockLayout(shape, core, margin)
    owned = np.zeros(shape, np.int32)
    for block in layout.blocks():
        owned[block.core] += 1
        (r, c), (wr, wc) = block.core, block.window
        assert wr.start == max(r.start - margin, 0) and wr.stop == min(r.stop + margin, shape[0])
        assert wc.start == max(c.start - margin, 0) and wc.stop == min(c.stop + margin, shape[1])
    assert (owned == 1).all()
    assert sum(1 for _ in layout.blocks()) == layout.count


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2 ** 16), density=st.floats(0.05, 0.6))
def test_graph_of_pixel_positions_is_the_graph_of_the_raster(seed, density):
    skeleton = skeletonize(np.random.default_rng(seed).random((40, 50)) < density)
    dense = build_graph(skeleton)
    with mock.patch.object(skeleton_graph, "_CHUNK", 7):  # links looked up a few pixels at a time
        sparse = pixels_graph(np.flatnonzero(skeleton), skeleton.shape)
    assert dict(dense.nodes(data=True)) == dict(sparse.nodes(data=True))
    assert sorted((u, v, tuple(map(tuple, p))) for u, v, p in dense.edges(data="path")) == \
        sorted((u, v, tuple(map(tuple, p))) for u, v, p in sparse.edges(data="path"))


def test_polygons_blockwise_are_the_whole_raster_areas():
    rng = np.random.default_rng(5)
    mask = draw_roads((SIZE, SIZE), [through(rng.uniform(0, SIZE, 2), rng.uniform(0, math.pi), 120, 2)
                                     for _ in range(6)])
    options = dataclasses.replace(PIXELS, polygons=True, simplify=0)
    whole, blockwise = both(mask, options)
    areas = [shapely.union_all([shapely.geometry.shape(f["geometry"]) for f in result.collection["features"]])
             for result in (whole, blockwise)]
    assert areas[0].area == pytest.approx(float(mask.sum()), rel=0.05)
    assert areas[0].symmetric_difference(areas[1]).area < 1e-6
    assert len(blockwise.collection["features"]) == len(whole.collection["features"])


UTM = CRS.from_epsg(32611)


def write_tiles(folder, mask, tile, suffix="mask", prob=None, **tags):
    """Predict-style tiles of ``mask`` (1 road, 0 background, 255 nodata) on a 0.5 m UTM grid, or of the
    float map ``prob`` (NaN nodata), each file tagged with ``tags``."""
    paths = []
    for r in range(0, mask.shape[0], tile):
        for c in range(0, mask.shape[1], tile):
            part = mask[r:r + tile, c:c + tile] if prob is None else prob[r:r + tile, c:c + tile]
            path = folder / f"t_{r}_{c}_{suffix}.tif"
            with rasterio.open(path, "w", driver="GTiff", width=part.shape[1], height=part.shape[0], count=1,
                               dtype=part.dtype, crs=UTM, nodata=255 if prob is None else float("nan"),
                               transform=Affine(0.5, 0, 600000.0 + c * 0.5, 0, -0.5, 4000000.0 - r * 0.5)) as dst:
                dst.write(part, 1)
                dst.update_tags(**tags)
            paths.append(path)
    return paths


def test_mosaic_of_files_blockwise_with_evidence(tmp_path):
    rng = np.random.default_rng(7)
    mask = draw_roads((240, 240), [through(rng.uniform(0, 240, 2), rng.uniform(0, math.pi), 150, 3)
                                   for _ in range(8)]).astype(np.uint8)
    mask[200:, 200:] = 255
    prob = np.where(mask == 1, 0.9, 0.1).astype(np.float32)
    masks = write_tiles(tmp_path, mask, 120)
    probs = write_tiles(tmp_path, mask, 120, "prob", prob)
    variance = rng.uniform(0, 0.25, mask.shape).astype(np.float32)
    variances = write_tiles(tmp_path, mask, 120, "uncertainty", variance, ROADSEG_CONTENT="uncertainty")
    options = VectorizeOptions(block_size=0, out_crs="source")
    whole = vectorize_files(masks, options, prob=probs, uncertainty=variances)
    blockwise = vectorize_files(masks, dataclasses.replace(options, block_size=48), prob=probs, uncertainty=variances)
    assert blockwise.counts["blocks"] == 25 and "blocks" not in whole.counts
    assert_same_graph(whole, blockwise)
    evidence = [sorted((f["properties"]["length_px"], f["properties"]["prob_mean"], f["properties"]["gap_closed"],
                        f["properties"]["uncertainty_mean"]) for f in result.collection["features"])
                for result in (whole, blockwise)]
    assert evidence[0] == evidence[1]
    assert all(mean > 0.8 for _, mean, joined, _ in evidence[1] if not joined)
    assert all(0 < spread < 0.25 for *_, spread in evidence[1])
    assert sorted(f["properties"]["source"] for f in whole.collection["features"]) == \
        sorted(f["properties"]["source"] for f in blockwise.collection["features"])


def test_probability_tiles_read_at_a_threshold_blockwise(tmp_path):
    rng = np.random.default_rng(11)
    mask = draw_roads((200, 200), [through(rng.uniform(0, 200, 2), rng.uniform(0, math.pi), 120, 3)
                                   for _ in range(6)])
    prob = np.clip(np.where(mask, 0.8, 0.2) + rng.normal(0, 0.05, mask.shape), 0, 1).astype(np.float32)
    prob[:30, :30] = np.nan
    probs = write_tiles(tmp_path, mask, 100, "prob", prob)
    options = VectorizeOptions(threshold=0.5, block_size=0, out_crs="source")
    whole = vectorize_files(probs, options)
    blockwise = vectorize_files(probs, dataclasses.replace(options, block_size=40))
    assert_same_graph(whole, blockwise)
    means = [sorted(f["properties"]["prob_mean"] for f in r.collection["features"]) for r in (whole, blockwise)]
    assert means[0] == pytest.approx(means[1]) and len(means[1]) > 0


def test_a_plain_image_blockwise_in_pixel_coordinates(tmp_path):
    mask = np.zeros((300, 300), np.uint8)
    mask[140:150, :] = 255
    mask[:, 40:48] = 255
    with rasterio.open(tmp_path / "m.png", "w", driver="PNG", width=300, height=300, count=1, dtype="uint8") as dst:
        dst.write(mask, 1)
    options = VectorizeOptions(block_size=0, pixel_size=0.5)
    whole = vectorize_files([tmp_path / "m.png"], options)
    blockwise = vectorize_files([tmp_path / "m.png"], dataclasses.replace(options, block_size=64))
    assert blockwise.collection["coordinates"] == whole.collection["coordinates"] == "pixel"
    assert blockwise.counts["blocks"] == 25 and blockwise.n_features == whole.n_features
    assert_same_graph(whole, blockwise)


def test_blocks_only_above_the_block_size():
    options = VectorizeOptions(block_size=100)
    assert not use_blocks((100, 100), options) and use_blocks((101, 5), options)
    assert not use_blocks((10 ** 6, 10 ** 6), VectorizeOptions(block_size=0))
    road = np.zeros((60, 150), bool)
    road[28:33, :] = True
    whole, blockwise = both(road, block=50)
    assert blockwise.counts["blocks"] == 6 and blockwise.n_features == whole.n_features == 1
    assert blockwise.collection["features"][0]["properties"]["length_px"] > 140  # one line across all blocks


@pytest.mark.parametrize("size", [-1, 1, 15])
def test_block_size_is_checked(size):
    with pytest.raises(BadParameterError, match="block_size must be 0"):
        VectorizeOptions(block_size=size)
