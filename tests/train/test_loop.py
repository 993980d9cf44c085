"""The training loop on the CPU: it learns on real DeepGlobe crops, resumes exactly, writes loadable files.

Resume tolerance: a run stopped and resumed must match an uninterrupted run to 1e-6 absolute in every
parameter and optimizer tensor (on this CPU it matches bit for bit: same seed, same data order, same
augmentation draws, and the Adam moments and step counters come back from last.ckpt).
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio

import roadseg.model.mindspore_runtime  # noqa: E402, F401 - MindSpore loads with the ISA choice
from tests.helpers_ckpt import reference_params
from tests.helpers_images import write_image

pytestmark = pytest.mark.mindspore

RESUME_ATOL = 1e-6


def synthetic_data(directory: Path, count: int = 4, size: int = 64) -> Path:
    """Random images with a bright horizontal 'road' and its mask, in the DeepGlobe layout."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        image = rng.integers(0, 120, (3, size, size), dtype=np.uint8)
        mask = np.zeros((size, size), np.uint8)
        row = int(rng.integers(0, size - 8))
        mask[row:row + 6] = 255
        image[:, mask > 0] = 220
        write_image(directory / f"{i}_sat.png.tmp", image, "PNG")  # lossless, then renamed below
        (directory / f"{i}_sat.png.tmp").rename(directory / f"{i}_sat.jpg")
        write_image(directory / f"{i}_mask.png", mask, "PNG")
    return directory


def _config(tmp_path: Path, data: Path, name: str, **overrides):
    from roadseg.train.loop import TrainConfig

    values = dict(output=str(tmp_path / name), data=str(data), val_split=0.0, epochs=2, batch_size=2,
                  device="CPU", workers=1, seed=7)
    values.update(overrides)
    return TrainConfig(**values)


def _max_difference(a, b) -> float:
    from roadseg.model.checkpoint import read_checkpoint

    first, second = read_checkpoint(a), read_checkpoint(b)
    assert first.tensors.keys() == second.tensors.keys()
    assert first.training_state.keys() == second.training_state.keys()
    worst = 0.0
    for group in ("tensors", "training_state"):
        x, y = getattr(first, group), getattr(second, group)
        for name in x:
            worst = max(worst, float(np.max(np.abs(np.asarray(x[name], np.float64) - np.asarray(y[name])))))
    return worst


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    """An uninterrupted two-epoch run (two steps per epoch at 64x64)."""
    from roadseg.train.loop import run_training

    tmp_path = tmp_path_factory.mktemp("straight")
    data = synthetic_data(tmp_path / "data")
    events = []
    result = run_training(_config(tmp_path, data, "run"), progress=events.append)
    return tmp_path, data, result, events


class TestRunDirectory:
    def test_files_metrics_and_progress(self, straight_run):
        from roadseg.train.loop import EpochRecord, StepEvent

        tmp_path, _, result, events = straight_run
        run = tmp_path / "run"
        assert sorted(p.name for p in run.iterdir()) == ["best.ckpt", "config.yaml", "last.ckpt", "metrics.jsonl"]
        lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert [line["epoch"] for line in lines] == [1, 2]
        assert {"loss", "lr", "val_road_iou", "seconds"} <= lines[0].keys()
        assert [line["loss"] for line in lines] == [r.loss for r in result.history]
        steps = [e for e in events if isinstance(e, StepEvent)]
        assert [(e.epoch, e.step) for e in steps] == [(1, 1), (1, 2), (2, 1), (2, 2)]
        assert np.mean([e.loss for e in steps[:2]]) == pytest.approx(lines[0]["loss"], rel=1e-6)
        assert sum(isinstance(e, EpochRecord) for e in events) == 2
        import yaml

        saved = yaml.safe_load((run / "config.yaml").read_text())
        assert saved["seed"] == 7 and saved["batch_size"] == 2 and saved["epochs"] == 2

    def test_refuses_existing_run_without_overwrite(self, straight_run):
        from roadseg.errors import OutputExistsError
        from roadseg.train.loop import run_training

        tmp_path, data, _, _ = straight_run
        with pytest.raises(OutputExistsError, match="`resume`"):
            run_training(_config(tmp_path, data, "run"))

    def test_best_checkpoint_has_zoo_names_and_loads(self, straight_run):
        from roadseg.model.checkpoint import load_into, read_checkpoint
        from roadseg.model.loaded import load_model
        from roadseg.model.network import DLinkNet34

        tmp_path, _, _, _ = straight_run
        best = tmp_path / "run" / "best.ckpt"
        contents = read_checkpoint(best)
        zoo = {name: shape for name, shape, _ in reference_params("dlinknet34")}
        assert {name: tuple(a.shape) for name, a in contents.tensors.items()} == zoo
        assert contents.training_state == {}  # network only
        network = DLinkNet34()
        load_into(network, contents, "dlinknet34")
        np.testing.assert_array_equal(network.firstconv.weight.asnumpy(), contents.tensors["firstconv.weight"])
        model = load_model(best, device="CPU")
        probs = model.predict_rgb(np.zeros((64, 64, 3), np.uint8))
        assert probs.shape == (64, 64) and np.all((probs >= 0) & (probs <= 1))


class TestResume:
    def test_stopped_after_epoch_one_then_resumed_matches(self, straight_run, tmp_path):
        from roadseg.train.loop import load_run_config, run_training

        straight_dir, data, _, _ = straight_run
        first = run_training(_config(tmp_path, data, "run", epochs=1))
        assert first.epochs_completed == 1
        config = dataclasses.replace(load_run_config(tmp_path / "run"), epochs=2)
        resumed = run_training(config, resume=True)
        assert resumed.epochs_completed == 2
        assert _max_difference(straight_dir / "run" / "last.ckpt", tmp_path / "run" / "last.ckpt") <= RESUME_ATOL
        lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(line)["epoch"] for line in lines] == [1, 2]

    def test_ctrl_c_mid_epoch_saves_and_resumes_exactly(self, straight_run, tmp_path):
        from roadseg.train.loop import StepEvent, load_run_config, run_training

        straight_dir, data, _, _ = straight_run

        def interrupt(event):
            if isinstance(event, StepEvent) and (event.epoch, event.step) == (2, 1):
                raise KeyboardInterrupt

        stopped = run_training(_config(tmp_path, data, "run"), progress=interrupt)
        assert stopped.interrupted and "epoch 2 step 1" in stopped.stopped
        resumed = run_training(load_run_config(tmp_path / "run"), resume=True)
        assert not resumed.interrupted
        assert resumed.parameter_digest  # the loop finished
        assert _max_difference(straight_dir / "run" / "last.ckpt", tmp_path / "run" / "last.ckpt") <= RESUME_ATOL

    def test_resume_without_checkpoint(self, tmp_path):
        from roadseg.errors import BadInputError
        from roadseg.train.loop import run_training

        data = synthetic_data(tmp_path / "data")
        with pytest.raises(BadInputError, match="no last.ckpt to resume from; start a new run without `resume`"):
            run_training(_config(tmp_path, data, "empty"), resume=True)


class TestRunStoppedEarly:
    """What a run leaves when it stops before its first checkpoint, and what can be done with it."""

    def test_a_directory_with_only_its_config_is_replaced_or_resumed_from_the_start(self, tmp_path):
        """A run killed in its first epoch leaves config.yaml alone: nothing of value, so a new run
        replaces it without `overwrite`, and `resume` (which "already holds a run" points to) starts
        it from epoch 1 instead of refusing."""
        import yaml

        from roadseg.train.loop import load_run_config, run_training

        data = synthetic_data(tmp_path / "data")
        run = tmp_path / "run"
        run.mkdir()
        (run / "config.yaml").write_text(yaml.safe_dump(_config(tmp_path, data, "run", epochs=9).to_dict()))
        result = run_training(_config(tmp_path, data, "run", epochs=1, steps_per_epoch=1))
        assert result.epochs_completed == 1
        assert yaml.safe_load((run / "config.yaml").read_text())["epochs"] == 1
        for name in ("last.ckpt", "best.ckpt", "metrics.jsonl"):
            (run / name).unlink()
        resumed = run_training(load_run_config(run), resume=True)
        assert resumed.epochs_completed == 1 and [r.epoch for r in resumed.history] == [1]
        assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1]

    def test_a_new_run_failing_before_its_first_checkpoint_leaves_nothing(self, tmp_path):
        """With `overwrite` the old run's files go when the new run starts (a failed new run must not
        leave its config beside the old checkpoint, which `resume` would then mix); what the new run
        wrote goes when it fails, so the directory is as if the command had never run."""
        from roadseg.errors import BadInputError
        from roadseg.train.loop import run_training

        data = synthetic_data(tmp_path / "data")
        run_training(_config(tmp_path, data, "run", epochs=1, steps_per_epoch=1))
        odd = synthetic_data(tmp_path / "odd", size=40)  # passes the check, fails in the first step
        with pytest.raises(BadInputError, match=r"is not a multiple of 32; pass `crop` \(training stopped in "
                                                r"epoch 1; once that is fixed, nothing was saved, so run the same"):
            run_training(_config(tmp_path, odd, "run", epochs=1), overwrite=True)
        assert list((tmp_path / "run").iterdir()) == []
        with pytest.raises(BadInputError, match="not a multiple of 32"):
            run_training(_config(tmp_path, odd, "fresh", epochs=1))
        assert not (tmp_path / "fresh").exists()

    def test_a_file_damaged_after_a_checkpoint_names_itself_and_resume_goes_on(self, tmp_path):
        """The check passed the file; it is cut once epoch 1 is saved. Epoch 2 stops with one line naming
        it and pointing to `resume`, which continues once the file is back."""
        from roadseg.errors import BadInputError
        from roadseg.train.loop import EpochRecord, load_run_config, run_training

        data = synthetic_data(tmp_path / "data")
        image = data / "2_sat.jpg"
        whole = image.read_bytes()

        def cut_after_epoch_one(event):
            if isinstance(event, EpochRecord) and event.epoch == 1:
                image.write_bytes(whole[:len(whole) // 3])

        config = _config(tmp_path, data, "run", steps_per_epoch=2)
        with pytest.raises(BadInputError) as caught:
            run_training(config, progress=cut_after_epoch_one)
        message = str(caught.value)
        assert message.startswith(f"{image}: reading failed, the file may be truncated or corrupt")
        assert message.endswith(f"(training stopped in epoch 2; once that is fixed, pass `resume` "
                                f"{tmp_path / 'run'} to continue from the last checkpoint)")
        assert "\n" not in message
        image.write_bytes(whole)
        resumed = run_training(load_run_config(tmp_path / "run"), resume=True)
        assert resumed.epochs_completed == 2 and [r.epoch for r in resumed.history] == [2]


def test_backbone_checkpoint_fills_the_encoder(tmp_path):
    """An ImageNet ResNet-34 checkpoint in the MindSpore zoo's names lands in the matching encoder tensors."""
    from roadseg.errors import WeightsError
    from roadseg.model.mindspore_runtime import ms
    from roadseg.model.network import DLinkNet34
    from roadseg.train.loop import load_backbone

    rng = np.random.default_rng(0)
    target = DLinkNet34()
    renames = {"firstconv.": "conv1.", "firstbn.": "bn1.", "encoder": "layer", ".bn1d.": ".bn1.", ".bn2d.": ".bn2."}
    entries, expected = [], {}
    for parameter in target.get_parameters():
        if not parameter.name.startswith(("firstconv", "firstbn", "encoder")):
            continue
        name = parameter.name
        for old, new in renames.items():
            name = name.replace(old, new)
        array = rng.normal(size=parameter.shape).astype(np.float32)
        entries.append({"name": name, "data": ms.Tensor(array)})
        expected[parameter.name] = array
    entries.append({"name": "end_point.weight", "data": ms.Tensor(np.zeros((1000, 512), np.float32))})
    path = tmp_path / "resnet34.ckpt"
    ms.save_checkpoint(entries, str(path))
    decoder_before = target.decoder1.conv1.weight.asnumpy().copy()
    assert load_backbone(target, path) == len(expected)
    loaded = {p.name: p.asnumpy() for p in target.get_parameters()}
    for name, array in expected.items():
        np.testing.assert_array_equal(loaded[name], array)
    np.testing.assert_array_equal(target.decoder1.conv1.weight.asnumpy(), decoder_before)
    other = tmp_path / "other.ckpt"
    ms.save_checkpoint([{"name": "head.weight", "data": ms.Tensor(np.zeros(3, np.float32))}], str(other))
    with pytest.raises(WeightsError, match="no tensor matches"):
        load_backbone(DLinkNet34(), other)


def test_mixed_precision_step_compiles_and_learns():
    """The GPU/Ascend step (amp O2) on the CPU, with the fixed loss scale MindSpore allows there.

    It compiles only if every layer follows the float16 input (the phase transposed convolutions build
    their kernel from a Parameter, out of amp's reach); the weights stay float32 so best.ckpt keeps the
    zoo's layout, and the float16 forward stays close to the float32 one of a network amp never touched.
    """
    from roadseg.model.devices import configure_mindspore
    from roadseg.model.mindspore_runtime import amp, ms, nn
    from roadseg.model.network import DLinkNet34
    from roadseg.train.loop import mixed_precision_train_cell

    configure_mindspore("CPU")
    ms.set_seed(0)
    rng = np.random.default_rng(0)
    x = ms.Tensor(rng.random((2, 3, 64, 64)).astype(np.float32))
    y = ms.Tensor((rng.random((2, 1, 64, 64)) < 0.1).astype(np.float32))
    network = DLinkNet34()
    network.set_train(True)
    before = {p.name: p.asnumpy().copy() for p in network.get_parameters()}  # BatchNorm statistics too
    optimizer = nn.Adam(network.trainable_params(), learning_rate=1e-3)
    step = mixed_precision_train_cell(network, optimizer, amp.FixedLossScaleManager(1024.0, drop_overflow_update=False))
    losses = [float(step(x, y).asnumpy()) for _ in range(3)]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert {str(p.dtype) for p in network.trainable_params()} == {"Float32"}
    assert any(not np.array_equal(p.asnumpy(), before[p.name]) for p in network.trainable_params())
    for p in network.get_parameters():
        p.set_data(ms.Tensor(before[p.name]))
    network.set_train(False)
    half = network(x).asnumpy()
    assert half.dtype == np.float16
    reference = DLinkNet34()  # a network amp never touched, with the same weights
    for p in reference.get_parameters():
        p.set_data(ms.Tensor(before[p.name]))
    reference.set_train(False)
    difference = np.abs(half.astype(np.float32) - reference(x).asnumpy())
    assert difference.max() < 0.05  # float16 rounding gave 0.012 here; a broken layer gives ~0.5


def _road_crops(deepglobe: Path, out: Path, size: int = 256, per_image: int = 5) -> Path:
    """The ``per_image`` windows of each real tile with the most road, written as DeepGlobe pairs."""
    out.mkdir()
    for sat in sorted(deepglobe.glob("*_sat.jpg")):
        key = sat.name[:-len("_sat.jpg")]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # plain JPEG/PNG: not georeferenced
            with rasterio.open(sat) as src:
                image = src.read()
            with rasterio.open(deepglobe / f"{key}_mask.png") as src:
                mask = src.read(1)
        step = size // 2
        windows = sorted(((mask[r:r + size, c:c + size] > 127).sum(), r, c)
                         for r in range(0, mask.shape[0] - size + 1, step)
                         for c in range(0, mask.shape[1] - size + 1, step))[::-1][:per_image]
        for index, (_, r, c) in enumerate(windows):
            write_image(out / f"{key}-{index}_sat.jpg.tmp", image[:, r:r + size, c:c + size], "PNG")
            (out / f"{key}-{index}_sat.jpg.tmp").rename(out / f"{key}-{index}_sat.jpg")
            write_image(out / f"{key}-{index}_mask.png", mask[r:r + size, c:c + size], "PNG")
    return out


@pytest.mark.slow
def test_forty_steps_on_real_crops_learn_roads(shared_data, tmp_path):
    """40 CPU steps (20 epochs x 2 steps, batch 2, 256x256) from scratch on real road crops.

    No weights can be downloaded here, so the network starts from scratch; to learn visibly in 40
    steps it trains on the four crops richest in road (one per DeepGlobe tile), without augmentation,
    at lr 1e-3. A random network calls nearly everything road (IoU = road fraction); it must end
    clearly above that, with the loss far below its start.
    """
    from roadseg.model.convention import ZOO_CONVENTION
    from roadseg.model.devices import configure_mindspore
    from roadseg.model.mindspore_runtime import ms
    from roadseg.model.network import build_network
    from roadseg.train.loop import StepEvent, _road_iou, gather_data, run_training

    crops = _road_crops(shared_data / "deepglobe" / "train", tmp_path / "crops", per_image=1)
    config = _config(tmp_path, crops, "run", epochs=20, val_dir=str(crops), workers=2, seed=0, lr=1e-3,
                     augment=False)
    configure_mindspore("CPU", 0)
    ms.set_seed(config.seed)
    before = _road_iou(build_network("dlinknet34"), gather_data(config).valid, None, ZOO_CONVENTION)
    events = []
    result = run_training(config, progress=events.append)
    losses = [e.loss for e in events if isinstance(e, StepEvent)]
    assert len(losses) == 40
    first, last = np.mean(losses[:4]), np.mean(losses[-4:])
    after = result.history[-1].val_road_iou
    assert last < 0.5 * first, (first, last)
    assert after > before + 0.1, (before, after)
