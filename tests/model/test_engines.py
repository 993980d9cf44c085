"""The ONNX Runtime engine: verified against MindSpore before use, cached, chosen by auto on the CPU,
and giving MindSpore's probabilities on real imagery with and without TTA."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from roadseg.errors import EngineError
from roadseg.model import onnx_engine
from roadseg.model.cpu_budget import usable_cpu_count
from roadseg.model.loaded import ModelRuntime, load_model, resolve_engine
from tests.helpers_ckpt import write_zoo_checkpoint

pytest.importorskip("onnxruntime")
pytestmark = [pytest.mark.mindspore,
              pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")]

PARITY = 1e-4
CROP = 384


@pytest.fixture(scope="module")
def signal_checkpoint(tmp_path_factory) -> Path:
    """Random zoo-layout weights whose output depends on the input (no published weights here)."""
    path = tmp_path_factory.mktemp("weights") / "signal.ckpt"
    write_zoo_checkpoint(path, "dlinknet34", seed=3, signal=True)
    return path


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture()
def isolated_cache(cache_root, monkeypatch) -> Path:
    monkeypatch.setenv("ROADSEG_CACHE", str(cache_root))
    return cache_root


@pytest.fixture(scope="module")
def engines(signal_checkpoint, cache_root):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ROADSEG_CACHE", str(cache_root))
        onnx_model = load_model(signal_checkpoint, device="CPU", runtime=ModelRuntime(engine="onnxruntime"))
        mindspore_model = load_model(signal_checkpoint, device="CPU", runtime=ModelRuntime(engine="mindspore"))
    return {"onnxruntime": onnx_model, "mindspore": mindspore_model}


def _deepglobe_crop(shared_data: Path) -> np.ndarray:
    with rasterio.open(shared_data / "deepglobe" / "train" / "104_sat.jpg") as src:
        return np.moveaxis(src.read(window=Window(300, 200, CROP, CROP)), 0, -1)


def _spacenet_crop(shared_data: Path) -> np.ndarray:
    with rasterio.open(shared_data / "spacenet-vegas-pan" / "road_mask_input.tif") as src:
        pan = src.read(1, window=Window(500, 400, CROP, CROP)).astype(np.float32)
    return np.repeat((np.clip(pan / 2047.0, 0, 1) * 255)[..., None], 3, axis=2)


def test_load_model_runs_onnxruntime_from_a_verified_cached_graph(engines, isolated_cache):
    model = engines["onnxruntime"]
    assert (model.engine, model.device, model.network) == ("onnxruntime", "CPU", None)
    assert model.threads == usable_cpu_count()  # the default: this process's share of the CPUs
    graphs = sorted((isolated_cache / "onnx").glob("*.onnx"))
    assert len(graphs) == 1
    record = json.loads(graphs[0].with_suffix(".json").read_text())
    assert record["max_delta"] <= onnx_engine.VERIFY_TOLERANCE
    assert record["arch"] == "dlinknet34"
    assert len(record["weights_sha256"]) == 64


def test_the_cached_graph_is_reused_not_rebuilt(engines, signal_checkpoint, isolated_cache, monkeypatch):
    from roadseg.model.checkpoint import read_checkpoint
    from roadseg.model.download import sha256_of

    def no_rebuild(*_args, **_kwargs):
        raise AssertionError("the verified graph was rebuilt")

    monkeypatch.setattr("roadseg.model.onnx_graph.build_onnx_model", no_rebuild)
    contents = read_checkpoint(signal_checkpoint)
    graph = onnx_engine.verified_onnx(contents, "dlinknet34", sha256_of(signal_checkpoint), 1)
    assert graph.built_now is False
    assert graph.path.parent == isolated_cache / "onnx"


def test_a_graph_that_disagrees_with_mindspore_is_refused_and_auto_falls_back(
        signal_checkpoint, tmp_path, monkeypatch, caplog):
    """A graph from other weights must fail the check; nothing is cached; auto runs MindSpore instead."""
    from roadseg.model.onnx_graph import build_onnx_model

    other = write_zoo_checkpoint(tmp_path / "other.ckpt", seed=9, signal=True)
    monkeypatch.setattr("roadseg.model.onnx_graph.build_onnx_model",
                        lambda _tensors, arch, source: build_onnx_model(other, arch, source))
    monkeypatch.setenv("ROADSEG_CACHE", str(tmp_path / "cache"))
    with pytest.raises(EngineError, match=r"signal\.ckpt: the ONNX graph differs from the MindSpore network"):
        load_model(signal_checkpoint, device="CPU", runtime=ModelRuntime(engine="onnxruntime"))
    assert not list((tmp_path / "cache").rglob("*.onnx"))
    model = load_model(signal_checkpoint, device="CPU", runtime=ModelRuntime(engine="auto"))
    assert model.engine == "mindspore"
    assert "running on MindSpore instead" in caplog.text


def test_auto_picks_onnxruntime_on_the_cpu_and_refuses_it_elsewhere():
    assert resolve_engine("auto", "CPU") == "onnxruntime"
    assert resolve_engine("auto", "auto") == "onnxruntime"  # this machine has only the CPU
    assert resolve_engine("mindspore", "CPU") == "mindspore"
    with pytest.raises(EngineError, match="engine onnxruntime runs on the CPU, not GPU"):
        resolve_engine("onnxruntime", "GPU")
    with pytest.raises(EngineError, match="unknown engine 'tensorrt'"):
        resolve_engine("tensorrt", "CPU")


@pytest.mark.parametrize("tta", ["none", "d4"])
@pytest.mark.parametrize("scene", ["deepglobe", "spacenet"])
def test_engines_agree_on_real_imagery(engines, shared_data, scene, tta):
    from roadseg.inference.options import PredictOptions
    from roadseg.inference.predict import predict_array

    image = _deepglobe_crop(shared_data) if scene == "deepglobe" else _spacenet_crop(shared_data)
    probabilities = {name: predict_array(model, image, PredictOptions(window=256, overlap=0.25, tta=tta))
                     for name, model in engines.items()}
    onnx_p, mindspore_p = probabilities["onnxruntime"], probabilities["mindspore"]
    assert onnx_p.shape == image.shape[:2]
    assert np.ptp(mindspore_p) > 0.05  # the weights respond to the scene: parity means something
    assert float(np.max(np.abs(onnx_p - mindspore_p))) <= PARITY


def test_onnxruntime_batches_give_the_same_probabilities(engines):
    """ONNX Runtime's dynamic batch axis: a batch of 3 equals three single forwards."""
    model = engines["onnxruntime"]
    batch = np.random.default_rng(4).uniform(-1.6, 1.6, (3, 3, 64, 96)).astype(np.float32)
    together = model.runner(batch)
    apart = np.concatenate([model.runner(batch[i:i + 1]) for i in range(3)])
    np.testing.assert_allclose(together, apart, atol=1e-5)


def test_export_onnx_writes_the_verified_graph(signal_checkpoint, isolated_cache, tmp_path, engines):
    import onnxruntime as ort

    output = tmp_path / "out" / "roads.onnx"
    result = subprocess.run([sys.executable, "-m", "roadseg.cli", "export", "--weights", str(signal_checkpoint),
                             "--format", "ONNX", "-o", str(output)], capture_output=True, text=True,
                            timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    assert "ONNX graph of dlinknet34" in result.stdout
    cached = next((isolated_cache / "onnx").glob("*.onnx"))
    assert output.read_bytes() == cached.read_bytes()
    session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(8).uniform(-1.6, 1.6, (1, 3, 96, 64)).astype(np.float32)
    np.testing.assert_allclose(session.run(None, {"image": x})[0][:, 0], engines["mindspore"].forward(x),
                               atol=PARITY)
