"""Faults injected into real processes: signals, a full disk, read-only outputs, truncated inputs.

Each test runs ``roadseg`` as a user would, in a subprocess, and checks what the user is left with:
their files intact, every output either complete or absent, no hidden temporary file, one error line
and the exit status a shell script can act on.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.helpers_ckpt import write_zoo_checkpoint

pytestmark = pytest.mark.mindspore

SCENE = Path("deepglobe") / "train" / "104_sat.jpg"


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "w.ckpt"
    write_zoo_checkpoint(path, signal=True)
    return path


@pytest.fixture
def scenes(tmp_path, shared_data) -> Path:
    """Three copies of a real 1024x1024 DeepGlobe tile, each a few seconds of MindSpore forward."""
    folder = tmp_path / "scenes"
    folder.mkdir()
    for name in ("a", "b", "c"):
        shutil.copy(shared_data / SCENE, folder / f"{name}_sat.jpg")
    return folder


def roadseg(*args, limits: dict[int, tuple[int, int]] | None = None) -> subprocess.Popen:
    """``roadseg ARGS`` in a new process, as the installed command runs (signals taken over)."""
    def apply_limits() -> None:
        for which, value in (limits or {}).items():
            resource.setrlimit(which, value)

    return subprocess.Popen([sys.executable, "-m", "roadseg.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=apply_limits if limits else None)


def hidden_files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.rglob(".*")) if folder.exists() else []


def wait_for(condition, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the process never reached the state the test waits for")
        time.sleep(0.05)


def predict_args(scenes: Path, out: Path, weights: Path) -> list:
    return ["predict", scenes, "-o", out, "--weights", weights, "--engine", "mindspore", "--tta", "none"]


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_mid_forward_ends_predict_cleanly_and_names_what_was_finished(scenes, tmp_path, weights,
                                                                              signum, status):
    out = tmp_path / "out"
    process = roadseg(*predict_args(scenes, out, weights))
    # the second scene's temporary mask appears when its forward begins: the first is finished then
    wait_for(lambda: any(name.startswith(".b_mask") for name in hidden_files(out)))
    time.sleep(0.5)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == status, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: interrupted after 1 of 3 input(s)"), stderr
    assert "a_mask.png" in lines[0] and "Fatal" not in stderr
    assert hidden_files(out) == [] and sorted(p.name for p in out.iterdir()) == ["a_mask.png"]
    # what was finished is complete: a re-run keeps it and does the rest
    rerun = roadseg(*predict_args(scenes, out, weights), "--json")
    stdout, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr
    assert '"skipped": [\n    "' + str(out / "a_mask.png") in stdout
    assert sorted(p.name for p in out.iterdir()) == ["a_mask.png", "b_mask.png", "c_mask.png"]


def test_ctrl_c_during_start_up_ends_cleanly(scenes, tmp_path, weights):
    """While MindSpore is being imported: no "Fatal Python error", no traceback."""
    for delay in (0.3, 1.0, 2.0):
        process = roadseg(*predict_args(scenes, tmp_path / "out", weights))
        time.sleep(delay)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 130, stderr
        assert len(stderr.strip().splitlines()) == 1 and stderr.startswith("Error: interrupted"), stderr
        assert hidden_files(tmp_path / "out") == []


def test_a_second_ctrl_c_stops_at_once_and_still_removes_temporary_files(scenes, tmp_path, weights):
    out = tmp_path / "out"
    process = roadseg(*predict_args(scenes, out, weights))
    wait_for(lambda: hidden_files(out) != [])
    time.sleep(1.0)  # inside the first forward pass, which the first Ctrl-C waits for
    process.send_signal(signal.SIGINT)
    time.sleep(0.3)  # two signals sent at once arrive as one
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "Error: interrupted again; stopped at once"
    assert hidden_files(out) == []


def test_sigkill_leftovers_are_removed_by_the_next_run_of_the_same_output(scenes, tmp_path, weights):
    out = tmp_path / "out"
    process = roadseg(*predict_args(scenes, out, weights))
    wait_for(lambda: hidden_files(out) != [])
    process.kill()  # no cleanup can run: the temporary file stays
    process.communicate(timeout=60)
    left = hidden_files(out)
    assert left and all(".partial" in name for name in left)
    rerun = roadseg(*predict_args(scenes, out, weights))
    _, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr
    assert hidden_files(out) == [] and "Warning" not in stderr
    assert sorted(p.name for p in out.iterdir()) == ["a_mask.png", "b_mask.png", "c_mask.png"]


def test_a_full_disk_names_the_output_and_leaves_nothing_behind(shared_data, tmp_path, weights):
    """RLIMIT_FSIZE stands in for a full disk (mounting a small tmpfs needs privileges tests lack)."""
    scene = shared_data / "spacenet-vegas-pan" / "road_mask_input.tif"
    out = tmp_path / "out"
    out.mkdir()
    kept = out / "notes.txt"
    kept.write_text("the user's own file")
    process = roadseg("predict", scene, "-o", out, "--weights", weights, "--engine", "mindspore", "--tta",
                      "none", "--window", "512", "--save-prob", limits={resource.RLIMIT_FSIZE: (20_000, 20_000)})
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 1, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    assert errors[0].startswith(f"Error: {out / 'road_mask_input_'}") and ".partial" not in stderr, stderr
    assert "check free space" in errors[0] and "Traceback" not in stderr
    assert hidden_files(out) == [] and sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert kept.read_text() == "the user's own file"


def _unprivileged() -> list[str]:
    """As root, for whom no folder is read-only: run the command as the user nobody (util-linux's
    setpriv, which keeps the interpreter reachable); as anyone else, nothing to add."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without util-linux's setpriv to drop to an unprivileged user")
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def test_a_read_only_output_folder_is_refused_before_any_work(scenes, weights):
    """As root (CI), the command runs as the user nobody in a folder it may read but not write; as a
    normal user, in a folder made read-only."""
    prefix = _unprivileged()
    place = Path(tempfile.mkdtemp(prefix="roadseg-readonly-"))  # outside root's private pytest folder
    try:
        for path in (place / "scenes", place / "out"):
            path.mkdir()
        shutil.copy(scenes / "a_sat.jpg", place / "scenes")
        shutil.copy(weights, place / "w.ckpt")
        for path in (place, place / "scenes", place / "out", *place.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
        if not prefix:
            (place / "out").chmod(0o555)
        before = sorted(p.name for p in place.rglob("*"))
        process = subprocess.run([*prefix, sys.executable, "-m", "roadseg.cli", "predict", place / "scenes", "-o",
                                  place / "out", "--weights", place / "w.ckpt", "--engine", "mindspore"],
                                 capture_output=True, text=True, timeout=300, cwd=place,
                                 env={**os.environ, "HOME": str(place)})
        assert process.returncode == 1, process.stderr
        assert process.stderr.strip().splitlines() == [f"Error: output directory {place / 'out'} is not writable; "
                                                       "choose another output location"]
        assert sorted(p.name for p in place.rglob("*")) == before
    finally:
        (place / "out").chmod(0o755)
        shutil.rmtree(place)


@pytest.mark.parametrize("fraction", [0.02, 0.3, 0.7, 0.98])
def test_truncated_inputs_fail_alone_with_one_line(scenes, tmp_path, weights, shared_data, fraction):
    whole = (scenes / "a_sat.jpg").read_bytes()
    (scenes / "a_sat.jpg").write_bytes(whole[:int(len(whole) * fraction)])
    tif = (shared_data / "landsat-rgb" / "RGB.byte.tif").read_bytes()
    (scenes / "d.tif").write_bytes(tif[:int(len(tif) * fraction)])
    (scenes / "c_sat.jpg").unlink()
    out = tmp_path / "out"
    process = roadseg(*predict_args(scenes, out, weights), "--window", "256")
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 1, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    assert any("a_sat.jpg" in line for line in errors) and any("d.tif" in line for line in errors), stderr
    assert "Traceback" not in stderr
    assert sorted(p.name for p in out.iterdir()) == ["b_mask.png"] and hidden_files(out) == []


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_mid_training_saves_the_last_step_and_resume_finishes(tmp_path, signum, status):
    """MindSpore's own SIGINT handler used to kill training with no last.ckpt (status 143)."""
    from tests.train.test_loop import synthetic_data

    data = synthetic_data(tmp_path / "data", count=8, size=96)
    run = tmp_path / "run"
    process = roadseg("train", data, "-o", run, "--device", "CPU", "--epochs", "40", "--batch-size", "2",
                      "--val-split", "0", "--workers", "1")
    seen = []
    for line in process.stderr:  # the first epoch's summary: the run is well into its steps now
        seen.append(line)
        if line.startswith("epoch 1:"):
            break
    time.sleep(0.3)
    process.send_signal(signum)
    _, rest = process.communicate(timeout=300)
    assert process.returncode == status, "".join(seen) + rest
    assert "interrupted at epoch" in rest and "Traceback" not in rest and "Fatal" not in rest
    assert (run / "last.ckpt").is_file() and hidden_files(run) == []
    resumed = roadseg("train", "--resume", run, "--epochs", "3")
    _, stderr = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, stderr
    assert "3 epoch(s)" in stderr
