"""``roadseg predict`` through Click: options, skipping, bad inputs, JSON; the real network at window 256."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.errors import NotGeoreferencedWarning

from roadseg.cli.main import cli
from roadseg.model.convention import ZOO_CONVENTION
from tests.helpers_predict import random_rgb, read_band, write_raster


def pointwise(batch: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-4.0 * batch[:, 0]))).astype(np.float32)


class StandInModel:
    convention = ZOO_CONVENTION
    arch = "stand-in"
    device = "CPU"
    weights_label = "stand-in"
    engine = "mindspore"
    threads = 1

    def __init__(self, batch_size: int = 1) -> None:
        self.batch_size = batch_size
        self.batch_sizes: list[int | None] = []  # the batch size of each forward call

    def forward(self, batch, batch_size=None):
        self.batch_sizes.append(batch_size)
        return pointwise(batch)


@pytest.fixture
def stand_in(monkeypatch):
    """Replace load_model by a stand-in; records the arguments the CLI passed and the models it made."""
    import dataclasses

    import roadseg.model.loaded

    calls = []

    def fake_load_model(weights, arch=None, device="auto", *, runtime):
        calls.append(dict(weights=weights, arch=arch, device=device, **dataclasses.asdict(runtime)))
        model = StandInModel()
        calls[-1]["model"] = model
        return model

    monkeypatch.setattr(roadseg.model.loaded, "load_model", fake_load_model)
    return calls


def run(*args):
    return CliRunner().invoke(cli, ["predict", *map(str, args)])


class TestOptions:
    def test_registered_and_helpful(self):
        result = CliRunner().invoke(cli, ["--help"])
        assert result.exception is None and "predict" in result.output
        result = run("--help")
        assert result.exception is None
        for option in ("--window", "--overlap", "--blend", "--tta", "--bands", "--scale-range", "--cog",
                       "--shard", "--save-prob", "--prob-dtype", "--batch-size", "--weights", "--json"):
            assert option in result.output

    @pytest.mark.parametrize(("args", "message"), [
        (["--window", "100"], "100 is not a multiple of 32"),
        (["--bands", "3,2"], "give three bands in R,G,B order or one band"),
        (["--bands", "a,b,c"], "not a comma-separated list"),
        (["--shard", "4/3"], "1 <= K <= N"),
        (["--overlap", "1"], "--overlap"),
        (["--tta", "d8"], "'d8' is not one of 'none', 'flip', 'd4'"),
        (["--blend", "box"], "'box' is not one of 'gaussian', 'cosine', 'constant'"),
    ])
    def test_usage_errors_exit_2(self, tmp_path, args, message):
        result = run(tmp_path, "-o", tmp_path / "out", *args)
        assert result.exit_code == 2, result.output
        assert message in result.output

    def test_model_options_reach_load_model(self, tmp_path, stand_in):
        write_raster(tmp_path / "a.tif", random_rgb(40, 40))
        result = run(tmp_path / "a.tif", "-o", tmp_path / "out", "--weights", "w.ckpt", "--device", "CPU",
                     "--batch-size", "2", "--arch", "dlinknet50", "--window", "64", "--engine", "mindspore",
                     "--threads", "3", "--quiet")
        assert result.exception is None, result.output
        model = stand_in[0].pop("model")
        assert stand_in == [dict(weights="w.ckpt", arch="dlinknet50", device="CPU", device_id=0,
                                 pynative=False, engine="mindspore", threads=3)]
        assert model.batch_sizes and set(model.batch_sizes) == {2}  # --batch-size reaches every forward
        assert "Warning: batch size 2 on the CPU" in result.output


class TestRuns:
    def test_json_summary_and_skip_on_rerun(self, tmp_path, stand_in):
        (tmp_path / "in").mkdir()
        for name in ("a", "b"):
            write_raster(tmp_path / "in" / f"{name}.tif", random_rgb(70, 90))
        out = tmp_path / "out"
        result = run(tmp_path / "in", "-o", out, "--window", "64", "--tta", "flip", "--save-prob", "--json")
        assert result.exception is None, result.output
        summary = json.loads(result.stdout)
        assert summary["inputs"] == 2 and summary["failed"] == [] and summary["skipped"] == []
        assert sorted(summary["outputs"]) == sorted(str(out / n) for n in
                                                    ("a_mask.tif", "a_prob.tif", "b_mask.tif", "b_prob.tif"))
        assert summary["windows_run"] == 2 * 2 * 2 and summary["model"]["arch"] == "stand-in"
        # a second run skips everything and does not even load the model
        result = run(tmp_path / "in", "-o", out, "--window", "64", "--save-prob", "--json")
        summary = json.loads(result.stdout)
        assert len(summary["skipped"]) == 4 and summary["outputs"] == [] and "model" not in summary
        assert len(stand_in) == 1

    def test_uncertainty_beside_the_mask_skipped_when_done_and_never_an_input(self, tmp_path, stand_in):
        write_raster(tmp_path / "a.tif", random_rgb(40, 40))
        result = run(tmp_path / "a.tif", "-o", tmp_path, "--window", "32", "--save-uncertainty", "--json")
        assert result.exception is None, result.output
        assert sorted(json.loads(result.stdout)["outputs"]) == [str(tmp_path / "a_mask.tif"),
                                                               str(tmp_path / "a_uncertainty.tif")]
        variance, _ = read_band(tmp_path / "a_uncertainty.tif")
        assert variance.shape == (40, 40) and np.abs(variance).max() < 1e-6  # a pointwise model: views agree
        result = run(tmp_path, "-o", tmp_path, "--window", "32", "--save-uncertainty", "--json")
        summary = json.loads(result.stdout)
        assert summary["outputs"] == [] and len(summary["skipped"]) == 2 and len(stand_in) == 1
        assert sorted(summary["ignored"]) == [str(tmp_path / "a_mask.tif"), str(tmp_path / "a_uncertainty.tif")]

    def test_uncertainty_without_tta_views_is_a_usage_error_before_the_model_loads(self, tmp_path, stand_in):
        write_raster(tmp_path / "a.tif", random_rgb(40, 40))
        result = run(tmp_path / "a.tif", "-o", tmp_path / "out", "--save-uncertainty", "--tta", "none")
        assert result.exit_code == 2 and stand_in == []
        assert result.output.strip().splitlines() == [
            "Error: Invalid value for --save-uncertainty: is the variance of the test-time augmentation's views, "
            "and --tta none has one view; use --tta d4 (8 views) or flip"]

    def test_shards_split_the_inputs(self, tmp_path, stand_in):
        (tmp_path / "in").mkdir()
        for index in range(5):
            write_raster(tmp_path / "in" / f"t{index}.tif", random_rgb(32, 32, seed=index))
        seen = []
        for k in (1, 2):
            result = run(tmp_path / "in", "-o", tmp_path / "out", "--window", "32", "--shard", f"{k}/2",
                         "--json")
            assert result.exception is None, result.output
            seen.append({entry["input"] for entry in json.loads(result.stdout)["files"]})
        assert len(seen[0]) == 3 and len(seen[1]) == 2 and not seen[0] & seen[1]

    def test_masks_beside_inputs_are_not_predicted(self, tmp_path, stand_in):
        (tmp_path / "in").mkdir()
        write_raster(tmp_path / "in" / "9_sat.png", random_rgb(32, 32), crs=None, driver="PNG")
        write_raster(tmp_path / "in" / "9_mask.png", random_rgb(32, 32)[:1], crs=None, driver="PNG")
        result = run(tmp_path / "in", "-o", tmp_path / "out", "--window", "32", "--json")
        summary = json.loads(result.stdout)
        assert summary["outputs"] == [str(tmp_path / "out" / "9_mask.png")]
        assert summary["ignored"] == [str(tmp_path / "in" / "9_mask.png")]

    def test_bad_inputs_continue_and_exit_1(self, tmp_path, stand_in):
        (tmp_path / "in").mkdir()
        write_raster(tmp_path / "in" / "good.tif", random_rgb(40, 40))
        (tmp_path / "in" / "bad.tif").write_text("not an image")
        write_raster(tmp_path / "in" / "pan.tif", random_rgb(40, 40)[:1])
        result = run(tmp_path / "in", "-o", tmp_path / "out", "--window", "64", "--bands", "1,2,3")
        assert result.exit_code == 1
        assert "Error: " in result.stderr and "bad.tif: not a readable raster" in result.stderr
        assert "pan.tif: has 1 band(s) but band 2 was asked for" in result.stderr
        assert "3 input(s): 1 output(s) written, 0 skipped" in result.stdout
        assert "2 input(s) failed" in result.stderr
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good_mask.tif"]

    def test_unwritable_output_directory(self, tmp_path, stand_in):
        write_raster(tmp_path / "a.tif", random_rgb(40, 40))
        (tmp_path / "blocker").write_text("a file, not a folder")
        result = run(tmp_path / "a.tif", "-o", tmp_path / "blocker" / "out")
        assert result.exit_code == 1 and "Error: cannot create output directory" in result.stderr
        assert stand_in == []

    def test_missing_input_is_reported_and_the_rest_runs(self, tmp_path, stand_in):
        write_raster(tmp_path / "a.tif", random_rgb(40, 40))
        result = run(tmp_path / "nope.tif", tmp_path / "a.tif", tmp_path / "*.jp2", "-o", tmp_path / "out",
                     "--window", "64", "--json")
        assert result.exit_code == 1
        assert "Error: " in result.stderr and "nope.tif: no such file or directory" in result.stderr
        summary = json.loads(result.stdout)
        assert summary["inputs"] == 3 and summary["outputs"] == [str(tmp_path / "out" / "a_mask.tif")]
        assert [entry["input"] for entry in summary["failed"]] == [str(tmp_path / "nope.tif"),
                                                                  str(tmp_path / "*.jp2")]


class TestPreview:
    def test_preview_beside_each_mask(self, tmp_path, stand_in):
        (tmp_path / "in").mkdir()
        write_raster(tmp_path / "in" / "a.tif", random_rgb(70, 90))
        write_raster(tmp_path / "in" / "5_sat.png", random_rgb(40, 50, seed=1), crs=None, driver="PNG")
        out = tmp_path / "out"
        result = run(tmp_path / "in", "-o", out, "--window", "64", "--tta", "none", "--preview", "--json")
        assert result.exception is None, result.output
        summary = json.loads(result.stdout)
        assert sorted(summary["outputs"]) == sorted(str(out / n) for n in
                                                    ("5_mask.png", "5_preview.png", "a_mask.tif", "a_preview.png"))
        assert {entry["preview"] for entry in summary["files"]} == {str(out / "5_preview.png"),
                                                                   str(out / "a_preview.png")}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(out / "a_preview.png") as dataset:
                assert (dataset.driver, dataset.count, dataset.shape) == ("PNG", 3, (70, 90))
        assert sorted(p.name for p in out.iterdir()) == ["5_mask.png", "5_preview.png", "a_mask.tif",
                                                         "a_preview.png"]

    def test_inputs_sharing_an_output_name_are_refused_not_overwritten(self, tmp_path, stand_in):
        """a.tif and a.jpg give a_mask.tif and a_mask.png but would share a_prob.tif and a_preview.png."""
        (tmp_path / "in").mkdir()
        write_raster(tmp_path / "in" / "a.tif", random_rgb(40, 40))
        write_raster(tmp_path / "in" / "a.png", random_rgb(40, 40, seed=1), crs=None, driver="PNG")
        out = tmp_path / "out"
        result = run(tmp_path / "in", "-o", out, "--window", "64", "--tta", "none", "--preview", "--save-prob",
                     "--json")
        assert result.exit_code == 1
        summary = json.loads(result.stdout)
        (failed,) = summary["failed"]
        assert failed["input"].endswith("a.tif") and "a_prob.tif" in failed["reason"]
        assert "different folders" in failed["reason"]
        assert sorted(p.name for p in out.iterdir()) == ["a_mask.png", "a_preview.png", "a_prob.tif"]

    def test_missing_preview_needs_no_model_and_previews_are_not_inputs(self, tmp_path, stand_in):
        write_raster(tmp_path / "a.tif", random_rgb(40, 40))
        result = run(tmp_path / "a.tif", "-o", tmp_path, "--window", "64", "--quiet")
        assert result.exception is None, result.output
        assert len(stand_in) == 1 and not (tmp_path / "a_preview.png").exists()
        result = run(tmp_path, "-o", tmp_path, "--window", "64", "--preview", "--json")
        assert result.exception is None, result.output
        summary = json.loads(result.stdout)
        assert summary["outputs"] == [str(tmp_path / "a_preview.png")] and "model" not in summary
        assert summary["skipped"] == [str(tmp_path / "a_mask.tif")] and len(stand_in) == 1
        result = run(tmp_path, "-o", tmp_path, "--window", "64", "--preview", "--json")
        summary = json.loads(result.stdout)
        assert summary["outputs"] == [] and len(summary["skipped"]) == 2
        assert sorted(summary["ignored"]) == [str(tmp_path / "a_mask.tif"), str(tmp_path / "a_preview.png")]
        result = run(tmp_path / "a.tif", "-o", tmp_path, "--window", "64", "--preview", "--overwrite", "--json")
        assert json.loads(result.stdout)["outputs"] == [str(tmp_path / "a_mask.tif"),
                                                        str(tmp_path / "a_preview.png")]


@pytest.fixture(scope="module")
def random_checkpoint(tmp_path_factory):
    """A roadseg checkpoint of DLinkNet34 with random weights (the lead's save_checkpoint)."""
    from roadseg.model.checkpoint import save_checkpoint
    from roadseg.model.mindspore_runtime import ms
    from roadseg.model.network import DLinkNet34

    ms.set_seed(3)
    path = tmp_path_factory.mktemp("ckpt") / "random.ckpt"
    save_checkpoint(DLinkNet34(), path, arch="dlinknet34", convention=ZOO_CONVENTION)
    return path


@pytest.mark.mindspore
class TestRealNetwork:
    def test_contract_prob_is_the_network_output(self, tmp_path, random_checkpoint):
        from roadseg.inference.tta import tta_transforms
        from roadseg.model.loaded import load_model

        rgb = random_rgb(256, 256, seed=9)
        write_raster(tmp_path / "IN.png", rgb, crs=None, driver="PNG")
        for tta, out in (("none", "OUT"), ("d4", "OUT_D4")):
            result = run(tmp_path / "IN.png", "-o", tmp_path / out, "--weights", random_checkpoint, "--tta",
                         tta, "--window", "256", "--overlap", "0", "--save-prob", "--quiet")
            assert result.exception is None, result.output
        model = load_model(random_checkpoint)
        x = model.convention.to_network(np.transpose(rgb, (1, 2, 0)))[None]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            plain, profile = read_band(tmp_path / "OUT" / "IN_prob.tif")
            d4, _ = read_band(tmp_path / "OUT_D4" / "IN_prob.tif")
        assert profile["dtype"] == "float32"
        np.testing.assert_array_equal(plain, model.forward(x)[0])
        outputs = [t.inverse(model.forward(np.ascontiguousarray(t.forward(x)))[0])
                   for t in tta_transforms("d4")]
        np.testing.assert_allclose(d4, np.mean(outputs, axis=0), atol=1e-6)
        assert not np.allclose(d4, plain, atol=1e-3)

    def test_landsat_through_the_cli(self, shared_data, tmp_path, random_checkpoint):
        path = shared_data / "landsat-rgb" / "RGB.byte.tif"
        result = run(path, "-o", tmp_path, "--weights", random_checkpoint, "--tta", "none", "--window",
                     "256", "--json")
        assert result.exception is None, result.output
        assert json.loads(result.stdout)["windows_run"] == 16
        mask, profile = read_band(tmp_path / "RGB.byte_mask.tif")
        with rasterio.open(path) as dataset:
            assert profile["crs"] == dataset.crs and profile["transform"] == dataset.transform
            assert mask.shape == dataset.shape
            nodata = dataset.dataset_mask() == 0
        assert (mask[nodata] == 255).all() and set(np.unique(mask[~nodata])) <= {0, 1}

    @pytest.mark.slow
    def test_deepglobe_at_the_training_size(self, shared_data, tmp_path, random_checkpoint):
        path = shared_data / "deepglobe" / "train" / "104_sat.jpg"
        result = run(path, "-o", tmp_path, "--weights", random_checkpoint, "--tta", "none", "--json")
        assert result.exception is None, result.output
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            mask, _ = read_band(tmp_path / "104_mask.png")
        assert mask.shape == (1024, 1024) and set(np.unique(mask)) <= {0, 255}


def test_one_input_under_two_spellings_is_predicted_once(tmp_path, stand_in, monkeypatch):
    write_raster(tmp_path / "a.tif", random_rgb(40, 40))
    monkeypatch.chdir(tmp_path)
    result = run("a.tif", tmp_path / "a.tif", "-o", "out", "--window", "64", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["inputs"] == 1 and summary["failed"] == [] and summary["outputs"] == ["out/a_mask.tif"]


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_predicting_into_the_data_folder_never_touches_its_ground_truth(tmp_path, stand_in, shared_data, overwrite):
    import shutil

    data = tmp_path / "dg"
    shutil.copytree(shared_data / "deepglobe" / "train", data)
    truth = {path.name: path.read_bytes() for path in data.glob("*_mask.png")}
    result = run(data, "-o", data, "--window", "256", "--tta", "none", *overwrite)
    assert result.exit_code == 1
    refused = [line for line in result.output.splitlines() if "roadseg did not write it" in line]
    assert len(refused) == len(truth) == 4
    assert {path.name: path.read_bytes() for path in data.glob("*_mask.png")} == truth
    assert stand_in == []  # nothing to predict: the model was never loaded


class TestGsd:
    """--gsd and --input-gsd reach the library; outputs keep the input's grid and record the GSD used."""

    def _tags(self, path):
        with rasterio.open(path) as dataset:
            return dataset.tags(), dataset.transform, dataset.shape

    def test_metres_resample_and_outputs_keep_the_grid(self, tmp_path, stand_in):
        from tests.helpers_predict import TRANSFORM

        write_raster(tmp_path / "a.tif", random_rgb(40, 50))  # 2 m pixels
        result = run(tmp_path / "a.tif", "-o", tmp_path / "out", "--gsd", "4", "--window", "32", "--tta", "none",
                     "--json")
        assert result.exception is None, result.output
        assert json.loads(result.stdout)["windows_run"] == 1  # 20x25 virtual pixels: one window
        tags, transform, shape = self._tags(tmp_path / "out" / "a_mask.tif")
        assert transform == TRANSFORM and shape == (40, 50)
        assert (tags["ROADSEG_GSD"], tags["ROADSEG_INPUT_GSD"], tags["ROADSEG_NETWORK_GSD"]) == ("4", "2", "4")

    def test_input_gsd_overrides_the_georeferencing(self, tmp_path, stand_in):
        write_raster(tmp_path / "a.tif", random_rgb(40, 40))
        result = run(tmp_path / "a.tif", "-o", tmp_path / "out", "--gsd", "native", "--input-gsd", "0.25",
                     "--window", "32", "--quiet")
        assert result.exception is None, result.output
        tags, _, _ = self._tags(tmp_path / "out" / "a_mask.tif")
        assert (tags["ROADSEG_GSD"], tags["ROADSEG_INPUT_GSD"], tags["ROADSEG_NETWORK_GSD"]) == \
            ("native", "0.25", "0.25")

    def test_weights_without_a_gsd_warn_once_per_input(self, tmp_path, stand_in):
        write_raster(tmp_path / "a.tif", random_rgb(40, 40))
        result = run(tmp_path / "a.tif", "-o", tmp_path / "out", "--window", "32", "--quiet")
        assert result.exception is None, result.output
        assert result.output.count("records no training GSD") == 1
        assert "--gsd METRES" in result.output and "`gsd`" not in result.output  # the flag, as typed

    @pytest.mark.parametrize(("args", "message"), [
        (["--gsd", "fast"], "must be auto, native or metres per pixel"),
        (["--gsd", "-1"], "must be auto, native or metres per pixel"),
        (["--input-gsd", "0"], "--input-gsd"),
    ])
    def test_bad_values_exit_2(self, tmp_path, args, message):
        result = run(tmp_path, "-o", tmp_path / "out", *args)
        assert result.exit_code == 2, result.output
        assert message in result.output
