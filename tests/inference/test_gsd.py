"""The network sees the resolution its weights were trained at: GSD arithmetic, resampling, and predict.

The key test renders one synthetic road scene at 0.3 m and at 0.5 m and predicts both with a stand-in
that only answers for bright lines 4-6 pixels wide (the 2.5 m roads are 5 px at 0.5 m, 8.3 px at 0.3 m).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import rasterio
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.crs import CRS
from scipy import ndimage

from roadseg.errors import BadParameterError
from roadseg.inference.gsd import GsdOptions, metres_per_degree, parse_gsd, plan_gsd, raster_gsd
from roadseg.inference.options import OutputOptions, PredictOptions
from roadseg.inference.predict import predict_file
from roadseg.inference.resample import axis_weights, resample_array, resample_rows
from roadseg.inference.sliding import RowBlock
from roadseg.io.raster_read import RasterSource
from roadseg.model.convention import ZOO_CONVENTION
from tests.helpers_predict import UTM, read_band, write_raster

ROAD_WIDTH_M = 2.5
SCENE_M = 120.0
BRIGHT, DARK = 220.0, 40.0


def _coverage(edges: np.ndarray, start: float, stop: float) -> np.ndarray:
    """Fraction of each pixel ``[edges[i], edges[i + 1])`` inside ``[start, stop)``."""
    low, high = np.maximum(edges[:-1], start), np.minimum(edges[1:], stop)
    return np.clip(high - low, 0, None) / np.diff(edges)


def road_scene(gsd: float) -> np.ndarray:
    """``(3, n, n)`` uint8: dark ground with bright 2.5 m roads, area-sampled at ``gsd`` metres per pixel.

    Vertical roads in the left half and horizontal ones in the right half (no crossings: a crossing is
    wider than a road), edges off the pixel lattice of both resolutions."""
    size = round(SCENE_M / gsd)
    edges = np.arange(size + 1) * gsd
    image = np.zeros((size, size))
    for x0 in (12.3, 31.7, 47.1):  # vertical roads, y from 10 m to 110 m
        image += np.outer(_coverage(edges, 10.0, 110.0), _coverage(edges, x0, x0 + ROAD_WIDTH_M))
    for y0 in (14.2, 52.9, 88.6):  # horizontal roads, x from 65 m to 112 m
        image += np.outer(_coverage(edges, y0, y0 + ROAD_WIDTH_M), _coverage(edges, 65.0, 112.0))
    rgb = np.rint(DARK + (BRIGHT - DARK) * np.clip(image, 0, 1)).astype(np.uint8)
    return np.repeat(rgb[None], 3, axis=0)


def width_detector(batch: np.ndarray) -> np.ndarray:
    """1 on bright features 4 to 6 pixels wide, 0 elsewhere: survives an opening by a 4x4 square but not
    one by a 7x7 square. Fed the zoo's network input (x/255*3.2-1.6, BGR)."""
    out = np.zeros((batch.shape[0], *batch.shape[2:]), np.float32)
    for index, image in enumerate(batch):
        bright = image.mean(axis=0) > (0.5 * (BRIGHT + DARK) / 255.0 * 3.2 - 1.6)
        narrow = ndimage.binary_opening(bright, np.ones((4, 4)), border_value=1)
        wide = ndimage.binary_opening(bright, np.ones((7, 7)), border_value=1)
        out[index] = narrow & ~wide
    return out


class WidthModel:
    """A stand-in RoadModel whose weights were trained at ``gsd`` metres per pixel."""

    convention = ZOO_CONVENTION
    batch_size = 4
    weights_label = "width-stand-in"
    arch = "stand-in"

    def __init__(self, gsd: float | None) -> None:
        self.gsd = gsd

    def forward(self, batch):
        return width_detector(batch)


def _scene_file(tmp_path, gsd: float):
    transform = Affine(gsd, 0.0, 500000.0, 0.0, -gsd, 4000000.0)
    return write_raster(tmp_path / f"scene_{gsd:g}.tif", road_scene(gsd), transform=transform)


def _predict(tmp_path, gsd: float, setting: str, model=None) -> tuple[np.ndarray, dict, dict]:
    path = _scene_file(tmp_path, gsd)
    out = tmp_path / f"out_{setting}"
    predict_file(model or WidthModel(0.5), path, out,
                 PredictOptions(window=128, tta="none", gsd=GsdOptions(setting)))
    mask, profile = read_band(out / f"{path.stem}_mask.tif")
    with rasterio.open(out / f"{path.stem}_mask.tif") as dataset:
        tags = dataset.tags()
    return mask, profile, tags


def _on_grid(mask: np.ndarray, gsd: float, target: float) -> np.ndarray:
    """``mask`` sampled at the centres of the ``target``-metre pixels of the same footprint (nearest)."""
    size = round(SCENE_M / target)
    index = np.minimum(((np.arange(size) + 0.5) * target / gsd).astype(int), mask.shape[0] - 1)
    return mask[np.ix_(index, index)]


def _within_a_pixel(a: np.ndarray, b: np.ndarray) -> bool:
    """Every road pixel of each mask is at most one pixel (8-neighbourhood) from a road pixel of the other."""
    grow = np.ones((3, 3), bool)
    return bool((a <= ndimage.binary_dilation(b, grow)).all() and (b <= ndimage.binary_dilation(a, grow)).all())


class TestSameRoadsAtEveryResolution:
    def test_auto_finds_the_same_roads_at_0_3_and_0_5_m(self, tmp_path):
        coarse, _, _ = _predict(tmp_path, 0.5, "auto")
        fine, profile, tags = _predict(tmp_path, 0.3, "auto")
        assert profile["transform"] == Affine(0.3, 0.0, 500000.0, 0.0, -0.3, 4000000.0)
        assert fine.shape == (400, 400) and coarse.shape == (240, 240)
        road_pixels = 6 * 5 * 90  # six roads, 5 px wide, about 94 and 100 px long at 0.5 m
        assert (coarse == 1).sum() > road_pixels
        assert _within_a_pixel(_on_grid(fine == 1, 0.3, 0.5), coarse == 1)
        assert tags["ROADSEG_GSD"] == "auto" and tags["ROADSEG_WEIGHTS_GSD"] == "0.5"
        assert float(tags["ROADSEG_INPUT_GSD"]) == pytest.approx(0.3)
        assert float(tags["ROADSEG_NETWORK_GSD"]) == pytest.approx(0.5)

    def test_native_does_not(self, tmp_path):
        coarse, _, _ = _predict(tmp_path, 0.5, "native")
        fine, _, tags = _predict(tmp_path, 0.3, "native")
        assert (coarse == 1).sum() > 0
        assert not _within_a_pixel(_on_grid(fine == 1, 0.3, 0.5), coarse == 1)
        assert tags["ROADSEG_GSD"] == "native" and float(tags["ROADSEG_NETWORK_GSD"]) == pytest.approx(0.3)

    def test_metres_override_the_weights(self, tmp_path):
        """Weights that record nothing, told to run at 0.5 m, find the roads of the 0.3 m scene too."""
        coarse, _, _ = _predict(tmp_path, 0.5, "native", WidthModel(None))
        fine, _, _ = _predict(tmp_path, 0.3, "0.5", WidthModel(None))
        assert _within_a_pixel(_on_grid(fine == 1, 0.3, 0.5), coarse == 1)

    def test_unknown_weights_gsd_warns_and_stays_native(self, tmp_path):
        with pytest.warns(UserWarning, match="records no training GSD.*`gsd` METRES"):
            fine, _, tags = _predict(tmp_path, 0.3, "auto", WidthModel(None))
        assert tags["ROADSEG_WEIGHTS_GSD"] == "unknown"
        assert float(tags["ROADSEG_NETWORK_GSD"]) == pytest.approx(0.3)


class TestGridsAndNodata:
    @pytest.mark.parametrize("gsd", [0.2, 1.0])
    def test_outputs_keep_the_input_grid_and_its_nodata(self, tmp_path, gsd):
        data = road_scene(0.5)[:, :200, :170].copy()
        data[:, 20:60, 30:90] = 0  # nodata hole
        transform = Affine(gsd, 0.0, 300000.0, 0.0, -gsd, 5000000.0)
        path = write_raster(tmp_path / "hole.tif", data, transform=transform, nodata=0)
        result = predict_file(WidthModel(0.5), path, tmp_path / "out",
                              PredictOptions(window=64, tta="none"), output=OutputOptions(save_prob=True))
        virtual = plan_gsd(GsdOptions(), gsd, 0.5, (200, 170)).shape
        assert virtual == (round(200 * gsd / 0.5), round(170 * gsd / 0.5))
        mask, profile = read_band(tmp_path / "out" / "hole_mask.tif")
        prob, _ = read_band(tmp_path / "out" / "hole_prob.tif")
        assert profile["transform"] == transform and profile["crs"] == CRS.from_string(UTM)
        assert mask.shape == prob.shape == (200, 170) and (result.height, result.width) == (200, 170)
        hole = (data == 0).all(axis=0)
        assert (mask[hole] == 255).all() and (mask[~hole] != 255).all()
        assert np.isnan(prob[hole]).all() and np.isfinite(prob[~hole]).all()
        assert result.windows_run >= 1

    def test_plain_image_with_input_gsd_is_resampled(self, tmp_path):
        path = write_raster(tmp_path / "scene.png", road_scene(0.3), crs=None, driver="PNG")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            predict_file(WidthModel(0.5), path, tmp_path / "native", PredictOptions(window=128, tta="none"))
            predict_file(WidthModel(0.5), path, tmp_path / "told",
                         PredictOptions(window=128, tta="none", gsd=GsdOptions(input_gsd=0.3)))
            native, _ = read_band(tmp_path / "native" / "scene_mask.png")
            told, _ = read_band(tmp_path / "told" / "scene_mask.png")
        assert native.shape == told.shape == (400, 400)
        assert (native == 255).sum() < (told == 255).sum() / 10  # 8 px roads: found only when resampled


class TestRasterGsd:
    def test_projected_units(self):
        feet = CRS.from_epsg(2263)  # New York Long Island, US survey feet
        assert raster_gsd(feet, Affine(2.0, 0, 0, 0, -2.0, 0), 10, 10) == pytest.approx(2 * 0.3048006096)
        assert raster_gsd(CRS.from_string(UTM), Affine(0.3, 0, 0, 0, -0.3, 0), 10, 10) == pytest.approx(0.3)

    def test_geographic_at_the_scene_centre(self):
        # 1e-5 degree pixels centred on 60 N: 0.557 m east-west, 1.114 m north-south
        transform = Affine(1e-5, 0, 10.0, 0, -1e-5, 60.0 + 50e-5)
        per_lon, per_lat = metres_per_degree(60.0)
        expected = math.sqrt(1e-5 * per_lon * 1e-5 * per_lat)
        assert raster_gsd(CRS.from_epsg(4326), transform, 100, 100) == pytest.approx(expected, rel=1e-9)
        assert per_lon == pytest.approx(55800, rel=2e-3) and per_lat == pytest.approx(111412, rel=1e-3)

    def test_no_georeferencing(self):
        assert raster_gsd(None, Affine.identity(), 10, 10) is None
        assert raster_gsd(CRS.from_string(UTM), Affine.identity(), 10, 10) is None

    @pytest.mark.parametrize("text", ["fast", "0", "-1", "nan", "inf"])
    def test_bad_settings(self, text):
        with pytest.raises(ValueError, match="auto, native or metres per pixel"):
            parse_gsd(text)
        with pytest.raises(BadParameterError, match="^gsd "):
            GsdOptions(text)

    def test_bad_input_gsd(self):
        with pytest.raises(BadParameterError, match="^input_gsd must be metres per pixel"):
            GsdOptions(input_gsd=0)


class TestPlan:
    @given(st.floats(0.05, 5.0), st.floats(0.05, 5.0), st.integers(1, 5000), st.integers(1, 5000))
    def test_virtual_grid(self, input_gsd, weights_gsd, height, width):
        plan = plan_gsd(GsdOptions(), input_gsd, weights_gsd, (height, width))
        if abs(input_gsd - weights_gsd) <= 0.1 * weights_gsd:
            assert plan.shape is None and plan.network_gsd == input_gsd
        else:
            assert plan.network_gsd == weights_gsd
            for size, virtual in zip((height, width), plan.shape):
                # round(size * ratio) rows, but at least one (a sliver of a scene is still a row)
                assert virtual >= 1 and abs(virtual - max(size * input_gsd / weights_gsd, 1.0)) <= 0.5 + 1e-9

    def test_native_and_unknown_never_resample(self):
        assert plan_gsd(GsdOptions("native"), 0.3, 0.5, (10, 10)).shape is None
        assert plan_gsd(GsdOptions(), None, 0.5, (10, 10)).shape is None
        assert plan_gsd(GsdOptions(), 0.3, None, (10, 10)).shape is None
        assert plan_gsd(GsdOptions(input_gsd=0.25), None, 0.5, (10, 10)).shape == (5, 5)


def _blocks(prob: np.ndarray, cuts: list[int]) -> list[RowBlock]:
    edges = [0, *sorted(set(cut % prob.shape[0] for cut in cuts) - {0}), prob.shape[0]]
    return [RowBlock(a, prob[a:b], np.isfinite(prob[a:b])) for a, b in zip(edges[:-1], edges[1:])]


class TestResample:
    @given(st.integers(1, 40), st.integers(1, 40), st.integers(1, 40), st.integers(1, 40))
    def test_rows_sum_to_one(self, src, dst, src2, dst2):
        for a, b in ((src, dst), (src2, dst2)):
            weights = axis_weights(a, b)
            assert weights.shape == (b, a) and np.allclose(weights.sum(axis=1), 1.0)
            assert weights.min() >= 0

    @settings(max_examples=60, deadline=None)
    @given(st.integers(1, 30), st.integers(1, 30), st.integers(1, 30), st.integers(1, 30),
           st.lists(st.integers(0, 29), max_size=5), st.integers(0, 2**31 - 1))
    def test_streaming_equals_whole(self, height, width, dst_h, dst_w, cuts, seed):
        """Rows arriving in blocks of any height give exactly the whole-array result, on the target grid."""
        rng = np.random.default_rng(seed)
        prob = rng.random((height, width)).astype(np.float32)
        prob[rng.random((height, width)) < 0.2] = np.nan
        whole = resample_array(prob, (dst_h, dst_w))
        streamed = list(resample_rows(_blocks(prob, cuts), (height, width), (dst_h, dst_w)))
        assert [block.row for block in streamed] == sorted(block.row for block in streamed)
        joined = np.concatenate([block.prob for block in streamed])
        assert joined.shape == (dst_h, dst_w)
        np.testing.assert_allclose(joined, whole, rtol=1e-6, atol=1e-7)
        assert not np.isfinite(prob).any() or np.nanmin(whole) >= np.nanmin(prob) - 1e-6

    @settings(max_examples=40, deadline=None)
    @given(st.integers(1, 30), st.integers(1, 30), st.integers(1, 30), st.integers(1, 30), st.floats(0, 1))
    def test_constant_survives_and_validity_follows_the_target(self, height, width, dst_h, dst_w, value):
        prob = np.full((height, width), value, np.float32)
        target_valid = np.random.default_rng(height * width).random((dst_h, dst_w)) > 0.3
        out = np.concatenate([block.prob for block in resample_rows(
            _blocks(prob, [height // 2]), (height, width), (dst_h, dst_w),
            lambda row, count: target_valid[row:row + count])])
        np.testing.assert_allclose(out[target_valid], value, atol=1e-6)
        assert np.isnan(out[~target_valid]).all()


class TestResampledReads:
    def test_virtual_windows_match_a_whole_read(self, tmp_path):
        """Windows of the virtual grid read one by one equal the same pixels of one read of it all."""
        path = _scene_file(tmp_path, 0.3)
        with RasterSource(path) as raster:
            view = raster.resampled((240, 240))
            whole, _ = view.read_all()
            window, valid = view.read_window(100, 130, 64)
        np.testing.assert_allclose(window, whole[100:164, 130:194], atol=1e-3)
        assert valid.all()
        expected = road_scene(0.5).transpose(1, 2, 0).astype(np.float32)
        assert np.abs(whole - expected).mean() < 1.0  # GDAL's average is the 0.5 m rendering, up to rounding


def test_a_resampled_raster_is_still_read_in_windows(tmp_path, monkeypatch):
    """Memory stays flat: every read is one virtual window, and the rows written back come in bands."""
    from roadseg.io import raster_read

    data = np.repeat(road_scene(0.3)[:, :, :150], 2, axis=1)  # 800 x 150 at 0.3 m
    path = write_raster(tmp_path / "tall.tif", data, transform=Affine(0.3, 0, 0, 0, -0.3, 0), tiled=True,
                        blockxsize=64, blockysize=64, nodata=0)
    reads, bands = [], []
    original_read, original_valid = raster_read.RasterSource._read_grid, raster_read.RasterSource.read_validity

    def spy_read(self, y, x, size, grid):
        reads.append((size, grid))
        return original_read(self, y, x, size, grid)

    def spy_valid(self, row, height):
        bands.append(height)
        return original_valid(self, row, height)

    monkeypatch.setattr(raster_read.RasterSource, "_read_grid", spy_read)
    monkeypatch.setattr(raster_read.RasterSource, "read_validity", spy_valid)
    predict_file(WidthModel(0.5), path, tmp_path / "out", PredictOptions(window=64, tta="none"))
    assert {grid for _, grid in reads} == {(480, 90)} and {size for size, _ in reads} == {(64, 64)}
    assert sum(bands) == 800 and max(bands) <= 64 / 0.6 + 2  # a window's rows, back on the input grid
    mask, _ = read_band(tmp_path / "out" / "tall_mask.tif")
    assert mask.shape == (800, 150) and (mask != 255).all()


def test_spacenet_geographic_scene_keeps_its_grid(shared_data, tmp_path):
    """SpaceNet Las Vegas panchromatic (EPSG:4326, 2.7e-6 degree pixels at 36 N): 0.27 m at the scene
    centre, seen at 0.5 m, written back on the scene's own grid with its nodata."""
    path = shared_data / "spacenet-vegas-pan" / "road_mask_input.tif"
    predict_file(WidthModel(0.5), path, tmp_path, PredictOptions(window=256, tta="none"),
                 output=OutputOptions(save_prob=True))
    mask, profile = read_band(tmp_path / "road_mask_input_mask.tif")
    with rasterio.open(tmp_path / "road_mask_input_prob.tif") as dataset:
        tags, prob = dataset.tags(), dataset.read(1)
    with rasterio.open(path) as dataset:
        assert profile["crs"] == dataset.crs and profile["transform"] == dataset.transform
        assert mask.shape == (dataset.height, dataset.width)
        nodata = dataset.dataset_mask() == 0
    assert float(tags["ROADSEG_INPUT_GSD"]) == pytest.approx(0.27, abs=0.005)
    assert tags["ROADSEG_NETWORK_GSD"] == "0.5"
    assert (mask[nodata] == 255).all() and (mask[~nodata] != 255).all() and np.isfinite(prob[~nodata]).all()
