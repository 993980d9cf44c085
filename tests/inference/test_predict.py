"""predict_array / predict_file / predict_files with stand-in predictors (no MindSpore)."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest
import rasterio
from rasterio.errors import NotGeoreferencedWarning

import roadseg.io.raster_read as raster_read
from roadseg.errors import BadInputError
from roadseg.inference.options import OutputOptions, PredictOptions
from roadseg.inference.predict import output_paths, pending_outputs, predict_array, predict_file, predict_files
from roadseg.inference.tta import tta_transforms
from roadseg.inference.windows import window_slices
from roadseg.io.raster_read import ImageScaling
from roadseg.io.raster_write import MASK_NODATA, decode_prob_uint8
from roadseg.model.convention import ZOO_CONVENTION, InputConvention
from tests.helpers_predict import TRANSFORM, UTM, random_rgb, read_band, write_raster


def pointwise(batch: np.ndarray) -> np.ndarray:
    """Road where the network input's first channel (blue under the zoo convention) is bright."""
    return (1.0 / (1.0 + np.exp(-4.0 * batch[:, 0]))).astype(np.float32)


def expected_prob(rgb: np.ndarray, convention: InputConvention = ZOO_CONVENTION) -> np.ndarray:
    return pointwise(convention.to_network(rgb.astype(np.float32))[None])[0]


class FakeModel:
    """What predict needs of a RoadModel: forward, convention, batch_size."""

    def __init__(self, convention: InputConvention, batch_size: int = 2) -> None:
        self.convention = convention
        self.batch_size = batch_size
        self.calls: list[int] = []

    def forward(self, batch):
        self.calls.append(batch.shape[0])
        return pointwise(batch)


class TestPredictArray:
    @pytest.mark.parametrize("tta", ["none", "flip", "d4"])
    def test_pointwise_predictor_exact(self, tta):
        image = np.random.default_rng(0).integers(0, 256, (70, 50, 3), dtype=np.uint8)
        out = predict_array(pointwise, image, PredictOptions(window=32, overlap=0.3, tta=tta))
        np.testing.assert_allclose(out, expected_prob(image), atol=1e-6)

    def test_model_convention_and_batch_size_are_used(self):
        rgb_order = InputConvention("RGB", 1 / 255, 0.0)
        model = FakeModel(rgb_order, batch_size=16)
        image = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        out = predict_array(model, image, PredictOptions(window=32, overlap=0.0, tta="d4"))
        np.testing.assert_allclose(out, expected_prob(image, rgb_order), atol=1e-6)
        assert model.calls == [16, 16]  # 2 windows x 8 variants per call
        assert not np.allclose(out, expected_prob(image))

    def test_valid_mask_gives_nan(self):
        image = np.full((40, 40, 3), 200, np.uint8)
        valid = np.ones((40, 40), bool)
        valid[:10] = False
        out = predict_array(pointwise, image, PredictOptions(window=32, tta="none"), valid=valid)
        assert np.isnan(out[:10]).all() and np.isfinite(out[10:]).all()

    @pytest.mark.parametrize("shape", [(20, 30), (20, 30, 1)])
    def test_single_band_is_repeated(self, shape):
        image = np.random.default_rng(2).integers(0, 256, shape, dtype=np.uint8)
        out = predict_array(pointwise, image, PredictOptions(window=32, tta="none"))
        rgb = np.repeat(image.reshape(20, 30, 1), 3, axis=2)
        np.testing.assert_allclose(out, expected_prob(rgb), atol=1e-6)

    def test_rejects_bad_shapes_and_models(self):
        with pytest.raises(ValueError, match=r"got \(4, 4, 2\)"):
            predict_array(pointwise, np.zeros((4, 4, 2)))
        with pytest.raises(TypeError, match="RoadModel or a predictor callable"):
            predict_array(42, np.zeros((4, 4, 3)))


def _roadseg_output(path):
    """A raster tagged as roadseg tags its outputs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8") as dataset:
            dataset.update_tags(ROADSEG_VERSION="0.1.0")
            dataset.write(np.zeros((1, 4, 4), np.uint8))
    return path


class TestOutputPaths:
    @pytest.mark.parametrize(("name", "mask", "prob"), [
        ("104_sat.jpg", "104_mask.png", "104_prob.tif"),
        ("tile.PNG", "tile_mask.png", "tile_prob.tif"),
        ("_sat.jpeg", "_sat_mask.png", "_sat_prob.tif"),
        ("scene_sat.tif", "scene_sat_mask.tif", "scene_sat_prob.tif"),
        ("scene.tiff", "scene_mask.tif", "scene_prob.tif"),
    ])
    def test_names(self, tmp_path, name, mask, prob):
        paths = output_paths(tmp_path / "in" / name, tmp_path / "out", OutputOptions(save_prob=True))
        assert (paths.mask, paths.prob) == (tmp_path / "out" / mask, tmp_path / "out" / prob)
        assert output_paths(name, tmp_path, OutputOptions(save_prob=False)).prob is None

    def test_preview_names(self, tmp_path):
        assert output_paths("in/104_sat.jpg", tmp_path,
                            OutputOptions(preview=True)).preview == tmp_path / "104_preview.png"
        assert output_paths("in/scene.tif", tmp_path, OutputOptions(preview=True)).wanted() == [
            tmp_path / "scene_mask.tif", tmp_path / "scene_preview.png"]
        assert output_paths("in/scene.tif", tmp_path).preview is None

    def test_pending(self, tmp_path):
        _roadseg_output(tmp_path / "a_mask.tif")
        assert pending_outputs("a.tif", tmp_path, OutputOptions(save_prob=True)) == [tmp_path / "a_prob.tif"]
        assert len(pending_outputs("a.tif", tmp_path, OutputOptions(save_prob=True, overwrite=True))) == 2

    def test_a_preview_roadseg_did_not_write_is_not_replaced(self, tmp_path):
        mine = write_raster(tmp_path / "scene_preview.png", random_rgb(8, 8), crs=None, driver="PNG")
        with pytest.raises(BadInputError, match="scene_preview.png: already exists and roadseg did not write it"):
            pending_outputs("scene.tif", tmp_path, OutputOptions(preview=True, overwrite=True))
        assert mine.exists()

    @pytest.mark.parametrize("overwrite", [False, True])
    def test_a_file_roadseg_did_not_write_is_neither_skipped_nor_replaced(self, tmp_path, overwrite):
        truth = write_raster(tmp_path / "104_mask.png", random_rgb(8, 8)[:1], crs=None, driver="PNG")
        before = truth.read_bytes()
        with pytest.raises(BadInputError, match="104_mask.png: already exists and roadseg did not write it"):
            pending_outputs("in/104_sat.jpg", tmp_path, OutputOptions(overwrite=overwrite))
        batch = predict_files(pointwise, [write_raster(tmp_path / "104_sat.png", random_rgb(64, 64), crs=None,
                                                       driver="PNG")], tmp_path,
                              PredictOptions(window=64, tta="none"), output=OutputOptions(overwrite=overwrite))
        assert [reason for _, reason in batch.failed] and not batch.outputs
        assert truth.read_bytes() == before


@pytest.fixture
def scene(tmp_path):
    """A 300x260 UTM GeoTIFF with a nodata (0) band on the left and bright/dark halves."""
    data = random_rgb(300, 260, seed=5)
    data[:, :, :40] = 0
    data[:, 150:, 40:] = np.maximum(data[:, 150:, 40:] // 8, 1)
    return write_raster(tmp_path / "scene.tif", data, nodata=0, tiled=True, blockxsize=64, blockysize=64), data


class TestPredictFile:
    def test_geotiff_mask_and_prob(self, tmp_path, scene):
        path, data = scene
        out = tmp_path / "out"
        result = predict_file(pointwise, path, out, PredictOptions(window=64, overlap=0.25, tta="flip"),
                              output=OutputOptions(save_prob=True))
        assert result.outputs == [out / "scene_mask.tif", out / "scene_prob.tif"] and not result.skipped
        assert (result.height, result.width) == (300, 260)
        mask, profile = read_band(out / "scene_mask.tif")
        prob, prob_profile = read_band(out / "scene_prob.tif")
        for p in (profile, prob_profile):
            assert p["crs"] == rasterio.crs.CRS.from_string(UTM) and p["transform"] == TRANSFORM
            assert (p["height"], p["width"]) == (300, 260)
        nodata = (data == 0).all(axis=0)
        assert (mask[nodata] == MASK_NODATA).all() and np.isnan(prob[nodata]).all()
        expected = expected_prob(np.transpose(data, (1, 2, 0)))
        np.testing.assert_allclose(prob[~nodata], expected[~nodata], atol=1e-6)
        np.testing.assert_array_equal(mask[~nodata], (expected[~nodata] > 0.5).astype(np.uint8))
        assert set(np.unique(mask)) == {0, 1, 255}
        assert sorted(p.name for p in out.iterdir()) == ["scene_mask.tif", "scene_prob.tif"]

    def test_outputs_record_weights_and_settings(self, tmp_path, scene):
        path, _ = scene
        model = FakeModel(ZOO_CONVENTION)
        model.weights_label, model.arch = "runs/smoke/best.ckpt (SMOKE model)", "dlinknet34"
        predict_file(model, path, tmp_path, PredictOptions(window=64, tta="none", threshold=0.4),
                     output=OutputOptions(save_prob=True))
        for name in ("scene_mask.tif", "scene_prob.tif"):
            with rasterio.open(tmp_path / name) as dataset:
                tags = dataset.tags()
            assert tags["ROADSEG_WEIGHTS"] == "runs/smoke/best.ckpt (SMOKE model)", name
            assert (tags["ROADSEG_ARCH"], tags["ROADSEG_TTA"], tags["ROADSEG_THRESHOLD"]) == ("dlinknet34", "none",
                                                                                               "0.4")
            assert tags["ROADSEG_WINDOW"] == "64" and tags["ROADSEG_VERSION"]

    def test_all_nodata_windows_are_skipped(self, tmp_path):
        data = random_rgb(64, 128)
        data[:, :, :64] = 0
        calls = []

        def recording(batch):
            calls.append(batch.shape[0])
            return pointwise(batch)

        path = write_raster(tmp_path / "half.tif", data, nodata=0)
        result = predict_file(recording, path, tmp_path / "out", PredictOptions(window=64, overlap=0.0, tta="none"))
        assert (result.windows_run, result.windows_skipped) == (1, 1) and sum(calls) == 1
        mask, _ = read_band(tmp_path / "out" / "half_mask.tif")
        assert (mask[:, :64] == 255).all() and (mask[:, 64:] != 255).all()

    def test_uint8_prob_and_threshold(self, tmp_path, scene):
        path, data = scene
        predict_file(pointwise, path, tmp_path, PredictOptions(window=64, tta="none", threshold=0.9),
                     output=OutputOptions(save_prob=True, prob_dtype="uint8"))
        prob, profile = read_band(tmp_path / "scene_prob.tif")
        mask, _ = read_band(tmp_path / "scene_mask.tif")
        assert profile["dtype"] == "uint8" and profile["nodata"] == 255
        decoded = decode_prob_uint8(prob)
        valid = ~(data == 0).all(axis=0)
        np.testing.assert_allclose(decoded[valid], expected_prob(np.transpose(data, (1, 2, 0)))[valid],
                                   atol=0.5 / 254 + 1e-6)
        expected = expected_prob(np.transpose(data, (1, 2, 0)))
        np.testing.assert_array_equal(mask[valid], (expected[valid] > 0.9).astype(np.uint8))
        assert 0 < mask[valid].mean() < 1

    def test_cog(self, tmp_path, scene):
        path, _ = scene
        predict_file(pointwise, path, tmp_path / "out", PredictOptions(window=64, tta="none"),
                     output=OutputOptions(save_prob=True, cog=True))
        for name in ("scene_mask.tif", "scene_prob.tif"):
            with rasterio.open(tmp_path / "out" / name) as dataset:
                assert dataset.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
                assert dataset.crs == rasterio.crs.CRS.from_string(UTM)
        assert len(list((tmp_path / "out").iterdir())) == 2

    def test_existing_outputs_are_skipped_then_completed(self, tmp_path, scene):
        path, _ = scene
        out = tmp_path / "out"
        out.mkdir()
        old = _roadseg_output(out / "scene_mask.tif").read_bytes()  # an earlier run's mask

        def failing(batch):
            raise AssertionError("the model must not run when every output exists")

        result = predict_file(failing, path, out, PredictOptions(window=64))
        assert result.skipped == [out / "scene_mask.tif"] and result.outputs == []
        result = predict_file(pointwise, path, out, PredictOptions(window=64, tta="none"),
                              output=OutputOptions(save_prob=True))
        assert result.outputs == [out / "scene_prob.tif"] and result.skipped == [out / "scene_mask.tif"]
        assert (out / "scene_mask.tif").read_bytes() == old
        result = predict_file(pointwise, path, out, PredictOptions(window=64, tta="none"),
                              output=OutputOptions(overwrite=True))
        assert result.outputs == [out / "scene_mask.tif"]
        assert read_band(out / "scene_mask.tif")[0].shape == (300, 260)

    def test_failure_leaves_nothing_behind(self, tmp_path, scene):
        path, _ = scene
        count = iter(range(100))

        def dies_later(batch):
            if next(count) == 3:
                raise RuntimeError("device lost")
            return pointwise(batch)

        with pytest.raises(RuntimeError, match="device lost"):
            predict_file(dies_later, path, tmp_path / "out", PredictOptions(window=64, tta="none", batch_size=1),
                         output=OutputOptions(save_prob=True, cog=True))
        assert list((tmp_path / "out").iterdir()) == []

    def test_large_raster_is_read_in_windows(self, tmp_path, monkeypatch):
        path = write_raster(tmp_path / "tall.tif", random_rgb(700, 150), tiled=True, blockxsize=64,
                            blockysize=64)
        reads = []
        original = raster_read.RasterSource.read_region

        def spy(self, y, x, height, width):
            reads.append((height, width))
            return original(self, y, x, height, width)

        monkeypatch.setattr(raster_read.RasterSource, "read_region", spy)
        predict_file(pointwise, path, tmp_path / "out", PredictOptions(window=64, tta="none"))
        assert reads and max(h * w for h, w in reads) == 64 * 64

    def test_plain_image_gives_png_mask(self, tmp_path):
        data = random_rgb(100, 120)
        path = write_raster(tmp_path / "7_sat.png", data, crs=None, driver="PNG")
        result = predict_file(pointwise, path, tmp_path / "out", PredictOptions(window=64, tta="d4"),
                              output=OutputOptions(save_prob=True))
        assert [p.name for p in result.outputs] == ["7_mask.png", "7_prob.tif"]
        mask, profile = read_band(tmp_path / "out" / "7_mask.png")
        assert profile["driver"] == "PNG" and mask.shape == (100, 120) and set(np.unique(mask)) == {0, 255}
        prob, prob_profile = read_band(tmp_path / "out" / "7_prob.tif")
        assert prob_profile["crs"] is None and prob.dtype == np.float32
        np.testing.assert_allclose(prob, expected_prob(np.transpose(data, (1, 2, 0))), atol=1e-6)
        assert not list((tmp_path / "out").glob("*.aux.xml"))

    def test_progress_counts_every_window(self, tmp_path, scene):
        path, _ = scene
        reports = []
        predict_file(pointwise, path, tmp_path, PredictOptions(window=64, overlap=0.5, tta="none"),
                     progress=lambda done, total: reports.append((done, total)))
        total = len(window_slices((300, 260), 64, 0.5))
        assert {t for _, t in reports} == {total} and sum(d for d, _ in reports) == total

    def test_preview_follows_the_mask(self, tmp_path, scene):
        from roadseg.preview import MASK_ALPHA, MASK_COLOUR, NODATA_COLOUR

        path, data = scene
        out = tmp_path / "out"
        result = predict_file(pointwise, path, out, PredictOptions(window=64, tta="none"),
                              output=OutputOptions(preview=True))
        assert result.outputs == [out / "scene_mask.tif", out / "scene_preview.png"]
        assert result.preview == out / "scene_preview.png"
        mask, _ = read_band(out / "scene_mask.tif")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(out / "scene_preview.png") as dataset:
                preview = np.transpose(dataset.read(), (1, 2, 0))
        assert preview.shape == (300, 260, 3)
        rgb = np.transpose(data, (1, 2, 0)).astype(float)
        road = mask == 1
        blended = np.rint((1 - MASK_ALPHA) * rgb + MASK_ALPHA * np.asarray(MASK_COLOUR, float))
        np.testing.assert_array_equal(preview[road], blended[road])
        np.testing.assert_array_equal(preview[mask == 0], data.transpose(1, 2, 0)[mask == 0])
        assert (preview[mask == MASK_NODATA] == NODATA_COLOUR).all()
        assert sorted(p.name for p in out.iterdir()) == ["scene_mask.tif", "scene_preview.png"]

    def test_bands_option_reaches_the_reader(self, tmp_path):
        data = random_rgb(40, 40)
        path = write_raster(tmp_path / "a.tif", data)
        predict_file(pointwise, path, tmp_path / "o1", PredictOptions(window=64, tta="none"),
                     scaling=ImageScaling(bands=(3, 2, 1)), output=OutputOptions(save_prob=True))
        prob, _ = read_band(tmp_path / "o1" / "a_prob.tif")
        np.testing.assert_allclose(prob, expected_prob(np.transpose(data[::-1], (1, 2, 0))), atol=1e-6)


def _bad_inputs(tmp_path):
    """Every kind of bad input of the issue, as (path, expected reason pattern)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    good = write_raster(tmp_path / "good.tif", random_rgb(200, 200))
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(good.read_bytes()[:good.stat().st_size // 3])
    raw = bytearray(write_raster(tmp_path / "src.tif", random_rgb(256, 256), compress="deflate",
                                 tiled=True, blockxsize=64, blockysize=64).read_bytes())
    raw[len(raw) // 3:len(raw) // 3 + 4000] = b"\x00" * 4000
    corrupt = tmp_path / "corrupt.tif"
    corrupt.write_bytes(bytes(raw))
    (tmp_path / "src.tif").unlink()
    text = tmp_path / "notes.png"
    text.write_text("not pixels")
    empty = tmp_path / "empty.tif"
    empty.touch()
    unreadable = tmp_path / "missing_dir" / "gone.tif"
    return good, {
        truncated: "truncated.tif: reading failed",
        corrupt: "corrupt.tif: reading failed",
        text: "notes.png: not a readable raster",
        empty: r"empty.tif: the file is empty \(0 bytes\)",
        unreadable: "gone.tif: not a readable raster",
    }


class TestPredictFiles:
    def test_batch_goes_on_past_bad_inputs(self, tmp_path):
        good, bad = _bad_inputs(tmp_path / "in")
        out = tmp_path / "out"
        seen = []
        batch = predict_files(pointwise, [*bad, good], out, PredictOptions(window=64, tta="none"), on_file=lambda p,
                              r, e: seen.append((p, e)))
        assert [r.input for r in batch.results] == [good]
        assert {path for path, _ in batch.failed} == set(bad)
        for path, reason in batch.failed:
            assert re.search(bad[path], reason), reason
        assert len(seen) == len(bad) + 1
        assert sorted(p.name for p in out.iterdir()) == ["good_mask.tif"]
        summary = json.loads(json.dumps(batch.summary()))
        assert summary["inputs"] == len(bad) + 1 and len(summary["failed"]) == len(bad)
        assert summary["outputs"] == [str(out / "good_mask.tif")] and summary["windows_run"] == 16

    def test_too_few_bands(self, tmp_path):
        path = write_raster(tmp_path / "pan.tif", random_rgb(20, 20)[:1])
        batch = predict_files(pointwise, [path], tmp_path / "out", PredictOptions(window=64),
                              scaling=ImageScaling(bands=(3, 2, 1)))
        assert "pan.tif: has 1 band(s) but band 3 was asked for" in batch.failed[0][1]

    def test_unwritable_output_directory(self, tmp_path):
        path = write_raster(tmp_path / "a.tif", random_rgb(20, 20))
        blocker = tmp_path / "file"
        blocker.write_text("a file where the output folder should be")
        batch = predict_files(pointwise, [path], blocker / "out", PredictOptions(window=64))
        assert "cannot create output directory" in batch.failed[0][1]
        with pytest.raises(BadInputError, match="cannot create output directory"):
            predict_file(pointwise, path, blocker / "out", PredictOptions(window=64))


class TestRealData:
    def test_landsat_keeps_georeferencing_and_nodata(self, shared_data, tmp_path):
        path = shared_data / "landsat-rgb" / "RGB.byte.tif"
        result = predict_file(pointwise, path, tmp_path, PredictOptions(window=128, tta="flip"),
                              output=OutputOptions(save_prob=True))
        mask, profile = read_band(tmp_path / "RGB.byte_mask.tif")
        prob, _ = read_band(tmp_path / "RGB.byte_prob.tif")
        with rasterio.open(path) as dataset:
            assert profile["crs"] == dataset.crs and profile["transform"] == dataset.transform
            assert (profile["height"], profile["width"]) == (dataset.height, dataset.width)
            nodata = dataset.dataset_mask() == 0
        assert nodata.any() and (mask[nodata] == 255).all() and (mask[~nodata] != 255).all()
        assert np.isnan(prob[nodata]).all() and np.isfinite(prob[~nodata]).all()
        empty = sum(not (~nodata[rows, cols]).any() for rows, cols in window_slices(nodata.shape, 128, 0.25))
        assert result.windows_skipped == empty > 0  # corners of the rotated footprint

    def test_spacenet_panchromatic_uint16(self, shared_data, tmp_path):
        path = shared_data / "spacenet-vegas-pan" / "road_mask_input.tif"
        predict_file(pointwise, path, tmp_path, PredictOptions(window=512, tta="none"))
        mask, profile = read_band(tmp_path / "road_mask_input_mask.tif")
        with rasterio.open(path) as dataset:
            assert profile["crs"] == dataset.crs and profile["transform"] == dataset.transform
            assert mask.shape == (dataset.height, dataset.width) == (1300, 1300)
            nodata = dataset.dataset_mask() == 0
        assert (mask[nodata] == 255).all()
        assert set(np.unique(mask[~nodata])) == {0, 1}  # scaled data spans both sides of the threshold

    def test_deepglobe_samples_give_png_masks(self, shared_data, tmp_path):
        paths = sorted((shared_data / "deepglobe" / "train").glob("*_sat.jpg"))[:2]
        batch = predict_files(pointwise, paths, tmp_path, PredictOptions(window=1024, tta="none"))
        assert not batch.failed
        for path in paths:
            ident = path.name[:-len("_sat.jpg")]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                mask, profile = read_band(tmp_path / f"{ident}_mask.png")
            assert profile["driver"] == "PNG" and mask.shape == (1024, 1024)
            assert set(np.unique(mask)) <= {0, 255} and 0 < mask.mean() < 255


def test_tta_count_is_eight():
    assert len(tta_transforms("d4")) == 8
