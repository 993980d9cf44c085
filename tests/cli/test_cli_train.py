"""``roadseg train`` through Click, and two data-parallel CPU workers under msrun."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from roadseg.cli.main import COMMANDS, cli
from tests.helpers_images import write_image
from tests.train.test_data import _scan_header_end
from tests.train.test_loop import synthetic_data


def _roadseg(*args, cwd: Path, before: str = "") -> subprocess.CompletedProcess:
    """``python -m roadseg.cli ARGS`` in a process of its own: all a user sees, MindSpore's output too.
    ``before``: Python run first, standing in for what a test cannot arrange from outside."""
    code = f"{before}\nimport runpy\nrunpy.run_module('roadseg.cli', run_name='__main__')"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=400)


def _error_line(completed: subprocess.CompletedProcess) -> str:
    """The one line a failed command printed; fails on a traceback or on anything else printed."""
    assert "Traceback" not in completed.stderr, completed.stderr[-3000:]
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), completed.stderr[-3000:]
    return lines[0]


def _cut_jpeg_data(directory: Path) -> tuple[Path, bytes]:
    """synthetic_data whose 1_sat.jpg is a real JPEG cut halfway through its scan data (its header
    whole); (the directory, the JPEG's whole bytes)."""
    data = synthetic_data(directory)
    image = data / "1_sat.jpg"
    pixels = np.random.default_rng(1).integers(0, 120, (3, 64, 64), dtype=np.uint8)
    pixels[:, 20:26] = 220
    write_image(image, pixels, "JPEG")
    whole = image.read_bytes()
    start = _scan_header_end(whole)
    image.write_bytes(whole[:(start + len(whole)) // 2])
    return data, whole


def test_registered():
    assert COMMANDS["train"] == "roadseg.cli.train:train"


class TestUsage:
    def test_help_lists_options(self):
        result = CliRunner().invoke(cli, ["train", "--help"])
        assert result.exception is None
        for option in ("--images", "--masks", "--val-dir", "--val-split", "--init", "--backbone", "--crop",
                       "--resume", "--config", "--seed", "--epochs", "--batch-size", "--skip-bad"):
            assert option in result.output

    def test_needs_data(self, tmp_path):
        result = CliRunner().invoke(cli, ["train", "-o", str(tmp_path / "run")])
        assert result.exit_code == 1
        assert "give either a DATA directory" in result.output

    def test_data_problems_named_before_training(self, tmp_path):
        data = synthetic_data(tmp_path / "data")
        (data / "0_mask.png").unlink()
        (data / "1_sat.jpg").write_bytes(b"garbage")
        result = CliRunner().invoke(cli, ["train", str(data), "-o", str(tmp_path / "run"), "--device", "CPU"])
        assert result.exit_code == 1
        assert "0_sat.jpg: image without a mask" in result.output
        assert "1_sat.jpg: unreadable" in result.output
        assert not (tmp_path / "run").exists()

    def test_unknown_config_key(self, tmp_path):
        config = tmp_path / "train.yaml"
        config.write_text("epochs: 3\nbogus: 1\n")
        data = synthetic_data(tmp_path / "data")
        result = CliRunner().invoke(cli, ["train", str(data), "--config", str(config)])
        assert result.exit_code == 1
        assert "unknown training option(s) bogus" in result.output

    def test_data_source_on_the_command_line_replaces_the_configs(self, tmp_path):
        """examples/train.yaml names a DATA directory; --images/--masks (or DATA) given as flags win."""
        config = tmp_path / "train.yaml"
        config.write_text(f"data: {tmp_path / 'nowhere'}\n")
        images, masks = tmp_path / "images", tmp_path / "masks"
        images.mkdir()
        masks.mkdir()
        (images / "a.tif").write_bytes(b"garbage")
        result = CliRunner().invoke(cli, ["train", "--config", str(config), "--images", str(images),
                                          "--masks", str(masks), "-o", str(tmp_path / "run"), "--device", "CPU"])
        assert result.exit_code == 1
        assert "give either" not in result.output and "a.tif" in result.output
        config.write_text(f"images: {images}\nmasks: {masks}\n")
        data = synthetic_data(tmp_path / "data")
        (data / "0_mask.png").unlink()
        result = CliRunner().invoke(cli, ["train", str(data), "--config", str(config), "-o", str(tmp_path / "run"),
                                          "--device", "CPU"])
        assert result.exit_code == 1
        assert "give either" not in result.output and "0_sat.jpg: image without a mask" in result.output

    def test_config_value_of_the_wrong_type_is_one_line_naming_file_and_key(self, tmp_path):
        data = synthetic_data(tmp_path / "data", count=1, size=32)
        (tmp_path / "train.yaml").write_text("lr: 1e-4\nepochs: abc\n")
        completed = _roadseg("train", data, "--config", "train.yaml", "-o", "run", cwd=tmp_path)
        assert completed.returncode == 1
        assert _error_line(completed) == "Error: train.yaml: key 'epochs' must be a whole number, got 'abc'"
        assert not (tmp_path / "run").exists()

    def test_resume_of_a_run_whose_config_is_corrupt_is_one_line(self, tmp_path):
        run = tmp_path / "run"
        run.mkdir()
        (run / "config.yaml").write_text("data: data\nepochs: [3\n")
        completed = _roadseg("train", "--resume", "run", cwd=tmp_path)
        assert completed.returncode == 1
        assert _error_line(completed) == (
            "Error: run/config.yaml: not valid YAML (expected ',' or ']', but got '<stream end>' at line 3, "
            "column 1); repair it (the run's options, as YAML) or start the run again with --overwrite")

    def test_truncated_jpeg_is_named_before_training(self, tmp_path):
        """Cut partway through its scan data, the JPEG's header still opens: only decoding finds it."""
        _cut_jpeg_data(tmp_path / "data")
        completed = _roadseg("train", "data", "-o", "run", "--device", "CPU", cwd=tmp_path)
        assert completed.returncode == 1
        line = _error_line(completed)
        assert line.startswith("Error: 1 problem(s) in the training data: ")
        assert "data/1_sat.jpg: unreadable: reading failed, the file may be truncated or corrupt" in line
        assert line.endswith("(fix them, or pass --skip-bad to train on the rest)")
        assert not (tmp_path / "run").exists()

    def test_resume_refuses_changed_recipe(self, tmp_path):
        run = tmp_path / "run"
        run.mkdir()
        (run / "config.yaml").write_text(f"data: {tmp_path}\nepochs: 2\n")
        result = CliRunner().invoke(cli, ["train", "--resume", str(run), "--lr", "0.1"])
        assert result.exit_code == 2
        assert "only --epochs" in result.output


def test_ctrl_c_exits_130_after_saving(tmp_path, monkeypatch):
    import roadseg.train.loop
    from roadseg.train.loop import TrainResult

    seen = {}

    def fake_run(config, *, resume, overwrite, progress):
        seen.update(config=config, resume=resume)
        return TrainResult(Path(config.output), 1, 0.5, "interrupted at epoch 2 step 3", interrupted=True)

    monkeypatch.setattr(roadseg.train.loop, "run_training", fake_run)
    data = synthetic_data(tmp_path / "data", count=1, size=32)
    result = CliRunner().invoke(cli, ["train", str(data), "-o", str(tmp_path / "run"), "--epochs", "3"])
    assert result.exit_code == 130
    assert "interrupted at epoch 2 step 3" in result.output
    assert seen["config"].epochs == 3 and seen["config"].lr == 2e-4 and not seen["resume"]


def test_config_exponent_without_a_dot_is_a_number(tmp_path, monkeypatch):
    """YAML 1.1 reads ``1e-4`` as text; the option is a float all the same."""
    import roadseg.train.loop
    from roadseg.train.loop import TrainResult

    seen = {}

    def fake_run(config, *, resume, overwrite, progress):
        seen["config"] = config
        return TrainResult(Path(config.output), 1, 0.5, "reached 1 epochs")

    monkeypatch.setattr(roadseg.train.loop, "run_training", fake_run)
    (tmp_path / "train.yaml").write_text(f"data: {tmp_path}\nlr: 1e-4\nval_split: 5e-2\nepochs: '2'\n")
    result = CliRunner().invoke(cli, ["train", "--config", str(tmp_path / "train.yaml"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (seen["config"].lr, seen["config"].val_split, seen["config"].epochs) == (1e-4, 0.05, 2)


@pytest.mark.mindspore
def test_skip_bad_prints_one_warning_line_per_skipped_file(tmp_path):
    data, _ = _cut_jpeg_data(tmp_path / "data")
    (data / "2_mask.png").unlink()
    completed = _roadseg("train", "data", "-o", "run", "--skip-bad", "--device", "CPU", "--val-split", "0",
                         "--epochs", "1", "--batch-size", "1", "--steps-per-epoch", "1", "--workers", "1",
                         "--json", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stderr.strip().splitlines() == [
        "Warning: skipping data/2_sat.jpg: image without a mask",
        "Warning: skipping data/1_sat.jpg: unreadable: reading failed, the file may be truncated or corrupt "
        "(libjpeg: Premature end of JPEG file)"]
    summary = json.loads(completed.stdout)
    assert summary["epochs_completed"] == 1 and len(summary["skipped"]) == 2


@pytest.mark.mindspore
def test_file_failing_in_the_first_epoch_is_one_line_and_the_command_runs_again(tmp_path):
    """A JPEG damaged after the check passed it (the check is switched off here to let it through)
    stops training with one line naming it; the new run leaves nothing, so the same command runs again."""
    data, whole = _cut_jpeg_data(tmp_path / "data")
    command = ("train", "data", "-o", "run", "--device", "CPU", "--val-split", "0", "--epochs", "1",
               "--batch-size", "2", "--workers", "1", "--quiet")
    slipped = _roadseg(*command, cwd=tmp_path,
                       before="import roadseg.train.data as data\ndata._pair_problem = lambda pair: None")
    assert slipped.returncode == 1
    line = _error_line(slipped)
    assert line.startswith("Error: data/1_sat.jpg: reading failed, the file may be truncated or corrupt")
    assert line.endswith("(training stopped in epoch 1; once that is fixed, nothing was saved, so run the "
                         "same command again)")
    assert not (tmp_path / "run").exists()
    (data / "1_sat.jpg").write_bytes(whole)
    again = _roadseg(*command, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (tmp_path / "run" / "last.ckpt").is_file()


@pytest.mark.mindspore
def test_config_file_with_flag_override_and_json(tmp_path):
    data = synthetic_data(tmp_path / "data")
    config = tmp_path / "train.yaml"
    config.write_text(f"data: {data}\nval-split: 0\nepochs: 5\nbatch_size: 2\ndevice: CPU\nworkers: 1\n"
                      "steps_per_epoch: 1\nseed: 3\n")
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "--config", str(config), "--epochs", "1", "-o", str(run), "--json"])
    assert result.exception is None, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["epochs_completed"] == 1 and not summary["interrupted"]
    import yaml

    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["epochs"] == 1 and saved["seed"] == 3 and saved["steps_per_epoch"] == 1
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.mindspore
@pytest.mark.slow
def test_msrun_two_cpu_workers(tmp_path):
    """Two data-parallel workers (batch 1 each) against one worker with batch 2, two epochs of 2 steps.

    Both ranks must end with identical parameters (gradients averaged every step; BatchNorm statistics
    averaged every epoch), only rank 0 writes, and the epoch losses match the single worker's within
    2 %: the global batches hold the same samples with the same augmentation, and what differs is
    that each rank's BatchNorm and Dice see one image instead of two.
    """
    bin_dir = Path(sys.executable).parent
    msrun, roadseg = bin_dir / "msrun", bin_dir / "roadseg"
    if not msrun.exists():
        pytest.skip(f"msrun not found beside {sys.executable}")
    data = synthetic_data(tmp_path / "data")
    common = [str(data), "--val-split", "0", "--epochs", "2", "--device", "CPU", "--workers", "1", "--seed", "5"]
    logs = tmp_path / "logs"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    # msrun runs `python <script> ...`: the venv's python on PATH and its roadseg entry-point script
    completed = subprocess.run(
        [str(msrun), "--worker_num=2", "--local_worker_num=2", f"--master_port={_free_port()}",
         f"--log_dir={logs}", "--join=True", str(roadseg), "-v", "train", *common,
         "--batch-size", "1", "-o", str(tmp_path / "dist")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=500)
    worker_logs = {path.name: path.read_text(errors="replace") for path in sorted(logs.glob("worker_*.log"))}
    assert completed.returncode == 0, (completed.stdout[-2000:], {k: v[-2000:] for k, v in worker_logs.items()})
    digests = {}
    for name, text in worker_logs.items():
        match = re.search(r"rank (\d) of 2 finished: parameter digest ([0-9a-f]{64})", text)
        assert match, f"{name} has no parameter digest"
        digests[int(match.group(1))] = match.group(2)
    assert sorted(digests) == [0, 1] and digests[0] == digests[1]
    # one set of outputs, written by rank 0 only
    assert sorted(p.name for p in (tmp_path / "dist").iterdir()) == [
        "best.ckpt", "config.yaml", "last.ckpt", "metrics.jsonl"]
    assert not list(tmp_path.glob("dist*/.*partial*"))
    assert sum("epoch 1:" in text for text in worker_logs.values()) == 1
    distributed = [json.loads(line) for line in (tmp_path / "dist" / "metrics.jsonl").read_text().splitlines()]
    single_run = CliRunner().invoke(cli, ["train", *common, "--batch-size", "2", "-o", str(tmp_path / "one"),
                                          "--quiet"])
    assert single_run.exception is None, single_run.output
    single = [json.loads(line) for line in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    assert [d["steps"] for d in distributed] == [s["steps"] for s in single] == [2, 2]
    np.testing.assert_allclose([d["loss"] for d in distributed], [s["loss"] for s in single], rtol=0.02)
    shutil.rmtree(tmp_path / "one")
