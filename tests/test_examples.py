"""The files in examples/: the training config, the launch scripts and the QGIS walkthrough stay true to the CLI."""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml

from roadseg.cli.main import cli
from roadseg.cli.train import _load_yaml
from roadseg.cli.train import train as train_command
from roadseg.train.loop import TrainConfig

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TRAIN_YAML = EXAMPLES / "train.yaml"
ASCEND_SCRIPT = EXAMPLES / "train_ascend_distributed.sh"
SLURM_SCRIPT = EXAMPLES / "predict_slurm_array.sh"
WALKTHROUGH = EXAMPLES / "qgis_walkthrough.md"
SCRIPTS = [ASCEND_SCRIPT, SLURM_SCRIPT]
BIN = Path(sys.executable).parent
ROADSEG = BIN / "roadseg"

#: `roadseg train` options that belong to one invocation, not to the configuration.
TRAIN_CLI_ONLY = {"config_path", "resume", "overwrite", "quiet", "as_json", "help"}
COMMENTED_KEY = re.compile(r"^#\s?([a-z][a-z0-9_]*):\s")


def _script_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("SLURM_", "NODE", "MASTER_", "NPUS", "SHARDS", "RESUME", "ROADSEG", "MSRUN"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def _run_script(script: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script), *args], env=_script_env(**env), capture_output=True, text=True,
                          timeout=60)


def _printed_command(result: subprocess.CompletedProcess) -> list[str]:
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    return shlex.split(lines[0])


class TestTrainYaml:
    def _keys(self) -> tuple[set[str], set[str]]:
        values = yaml.safe_load(TRAIN_YAML.read_text())
        commented = {match.group(1) for line in TRAIN_YAML.read_text().splitlines()
                     if (match := COMMENTED_KEY.match(line))}
        return set(values), commented

    def test_every_config_field_appears(self):
        active, commented = self._keys()
        fields = {field.name for field in dataclasses.fields(TrainConfig)}
        assert fields - active - commented == set()
        assert (active | commented) - fields == set()

    def test_every_train_option_is_a_config_field(self):
        fields = {field.name for field in dataclasses.fields(TrainConfig)}
        names = {param.name for param in train_command.params} - TRAIN_CLI_ONLY
        assert names == fields

    def test_loader_accepts_it_with_the_defaults(self):
        values = _load_yaml(str(TRAIN_YAML))
        config = TrainConfig.from_dict(values)
        assert config == TrainConfig(data=values["data"])

    def test_commented_alternatives_are_accepted(self):
        """Uncommenting the GeoTIFF pair, the validation directory and each starting point loads too."""
        text = TRAIN_YAML.read_text()
        for keys in (("images", "masks"), ("val_dir",), ("init",), ("backbone",)):
            lines = [line[2:] if COMMENTED_KEY.match(line) and COMMENTED_KEY.match(line).group(1) in keys
                     else line for line in text.splitlines()]
            values = {key.replace("-", "_"): value for key, value in yaml.safe_load("\n".join(lines)).items()}
            if "images" in keys:
                del values["data"]
            config = TrainConfig.from_dict(values)
            for key in keys:
                assert getattr(config, key) is not None


class TestScriptsStatic:
    @pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
    def test_bash_syntax(self, script):
        result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr

    @pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
    def test_executable_with_strict_mode(self, script):
        assert os.access(script, os.X_OK)
        text = script.read_text()
        assert text.startswith("#!/usr/bin/env bash\n")
        assert "\nset -euo pipefail\n" in text

    @pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
    def test_shellcheck(self, script):
        if shutil.which("shellcheck") is None:
            pytest.skip("shellcheck is not installed")
        result = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout

    @pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
    def test_usage_without_arguments(self, script):
        result = _run_script(script)
        assert result.returncode == 2
        assert "Usage:" in result.stderr


class TestAscendScript:
    def test_one_machine(self):
        command = _printed_command(_run_script(ASCEND_SCRIPT, "data/dg", "runs/x y", "--epochs", "3",
                                               DRY_RUN="1"))
        assert command[0] == "msrun"
        roadseg_at = command.index(str(ROADSEG))
        launcher, task = command[:roadseg_at], command[roadseg_at + 1:]
        assert launcher == ["msrun", "--worker_num=8", "--local_worker_num=8", "--master_port=8118",
                            "--log_dir=runs/x y/msrun", "--join=True"]
        assert task == ["train", "data/dg", "--device", "Ascend", "-o", "runs/x y", "--epochs", "3"]

    def test_devices_port_and_executables(self, tmp_path):
        fake = tmp_path / "bin" / "roadseg"
        fake.parent.mkdir()
        fake.write_text("#!/bin/sh\n")
        fake.chmod(0o755)
        command = _printed_command(_run_script(ASCEND_SCRIPT, "data", "run", DRY_RUN="1", NPUS="4",
                                               PORT="9000", ROADSEG=str(fake), MSRUN="/opt/ms/msrun"))
        assert command[:4] == ["/opt/ms/msrun", "--worker_num=4", "--local_worker_num=4", "--master_port=9000"]
        assert str(fake) in command

    def test_several_machines(self):
        command = _printed_command(_run_script(ASCEND_SCRIPT, "", "runs/x", "--images", "a", "--masks", "b",
                                               DRY_RUN="1", NPUS="4", NODES="3", MASTER_ADDR="10.0.0.1",
                                               NODE_RANK="2"))
        assert "--worker_num=12" in command
        assert "--local_worker_num=4" in command
        assert "--master_addr=10.0.0.1" in command
        assert "--node_rank=2" in command
        assert "--log_dir=runs/x/msrun/node2" in command
        task = command[command.index(str(ROADSEG)) + 1:]
        assert task == ["train", "--device", "Ascend", "-o", "runs/x", "--images", "a", "--masks", "b"]

    def test_several_machines_need_master_and_rank(self):
        result = _run_script(ASCEND_SCRIPT, "data", "run", DRY_RUN="1", NODES="2", NODE_RANK="0")
        assert result.returncode != 0
        assert "MASTER_ADDR" in result.stderr
        result = _run_script(ASCEND_SCRIPT, "data", "run", DRY_RUN="1", NODES="2", MASTER_ADDR="h", NODE_RANK="2")
        assert result.returncode == 2
        assert "NODE_RANK=2 must be 0..1" in result.stderr

    def test_resume(self):
        command = _printed_command(_run_script(ASCEND_SCRIPT, "", "runs/x", "--epochs", "400", DRY_RUN="1",
                                               RESUME="1"))
        task = command[command.index(str(ROADSEG)) + 1:]
        assert task == ["train", "--resume", "runs/x", "--device", "Ascend", "--epochs", "400"]

    def test_bad_count(self):
        result = _run_script(ASCEND_SCRIPT, "data", "run", DRY_RUN="1", NPUS="0")
        assert result.returncode == 2
        assert "NPUS=0 is not a positive integer" in result.stderr

    def test_runs_msrun(self, tmp_path):
        """Without DRY_RUN the printed command runs: a stand-in msrun records its arguments."""
        record = tmp_path / "args.txt"
        msrun = tmp_path / "msrun"
        msrun.write_text(f'#!/usr/bin/env bash\nprintf "%s\\n" "$@" > {shlex.quote(str(record))}\n')
        msrun.chmod(0o755)
        run = tmp_path / "run"
        result = _run_script(ASCEND_SCRIPT, "data", str(run), NPUS="2", MSRUN=str(msrun))
        assert result.returncode == 0, result.stderr
        assert record.read_text().splitlines()[:2] == ["--worker_num=2", "--local_worker_num=2"]
        assert (run / "msrun").is_dir()

    def test_msrun_knows_the_flags(self):
        """Every msrun flag the script can emit is one that the installed msrun accepts."""
        msrun = BIN / "msrun"
        if not msrun.exists():
            pytest.skip("msrun is not installed next to this Python")
        result = subprocess.run([str(msrun), "--help"], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        for flag in ("--worker_num", "--local_worker_num", "--master_addr", "--master_port", "--node_rank",
                     "--log_dir", "--join"):
            assert flag in result.stdout
            assert flag in ASCEND_SCRIPT.read_text()


class TestSlurmScript:
    def test_array_task_is_a_one_based_shard(self):
        command = _printed_command(_run_script(SLURM_SCRIPT, "scenes", "out dir", "--tta", "none", DRY_RUN="1",
                                               SLURM_ARRAY_TASK_ID="3", SLURM_ARRAY_TASK_COUNT="8",
                                               SLURM_ARRAY_TASK_MIN="0"))
        assert command == [str(ROADSEG), "predict", "scenes", "-o", "out dir", "--shard", "4/8", "--quiet", "--json",
                           "--tta", "none", ">", "out dir/summaries/task_4_of_8.json"]

    @pytest.mark.parametrize(("task", "shard"), [("0", "1/8"), ("7", "8/8")])
    def test_first_and_last_task(self, task, shard):
        command = _printed_command(_run_script(SLURM_SCRIPT, "in", "out", DRY_RUN="1", SLURM_ARRAY_TASK_ID=task,
                                               SLURM_ARRAY_TASK_COUNT="8"))
        assert command[command.index("--shard") + 1] == shard

    def test_rerun_of_some_tasks_keeps_the_shard_count(self):
        command = _printed_command(_run_script(SLURM_SCRIPT, "in", "out", DRY_RUN="1", SHARDS="8",
                                               SLURM_ARRAY_TASK_ID="5", SLURM_ARRAY_TASK_COUNT="2",
                                               SLURM_ARRAY_TASK_MIN="3"))
        assert command[command.index("--shard") + 1] == "6/8"

    def test_array_not_from_zero_refused(self):
        result = _run_script(SLURM_SCRIPT, "in", "out", DRY_RUN="1", SLURM_ARRAY_TASK_ID="8",
                             SLURM_ARRAY_TASK_COUNT="8", SLURM_ARRAY_TASK_MIN="1")
        assert result.returncode == 2
        assert "the array starts at 1" in result.stderr

    def test_outside_slurm_refused(self):
        result = _run_script(SLURM_SCRIPT, "in", "out", DRY_RUN="1")
        assert result.returncode != 0
        assert "not in a SLURM array job" in result.stderr

    def test_shard_option_accepts_what_the_script_passes(self):
        from roadseg.io.inputs import parse_shard, select_shard

        assert parse_shard("1/8") == (1, 8)
        with pytest.raises(ValueError, match="1 <= K <= N"):
            parse_shard("0/8")
        files = [Path(f"{i:02d}.tif") for i in range(20)]
        shares = [select_shard(files, k, 8) for k in range(1, 9)]
        assert sorted(path for share in shares for path in share) == files

    def test_header(self):
        header = [line for line in SLURM_SCRIPT.read_text().splitlines() if line.startswith("#SBATCH")]
        options = {line.split()[1].split("=")[0] for line in header}
        assert options >= {"--job-name", "--array", "--cpus-per-task", "--mem", "--time", "--output"}


def _code_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```[a-z]*\n(.*?)^```", markdown, flags=re.S | re.M)


def _roadseg_invocations(block: str) -> list[list[str]]:
    """Every ``roadseg ...`` command of a shell block: continuation lines joined, split at ``&&``, ``;``, ``|``."""
    invocations = []
    for line in block.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        current: list[str] = []
        for token in [*lexer, ";"]:
            if set(token) <= set("();<>|&"):
                if current and current[0] == "roadseg":
                    invocations.append(current)
                current = []
            else:
                current.append(token)
    return invocations


def _check_invocation(args: list[str]) -> None:
    command: click.Command = cli
    ctx = click.Context(cli)
    words = args[1:]
    while isinstance(command, click.Group):
        assert words, f"{shlex.join(args)}: no subcommand"
        sub = command.get_command(ctx, words[0])
        assert sub is not None, f"{shlex.join(args)}: no command {words[0]!r}"
        command, words = sub, words[1:]
    known = {opt for param in command.get_params(ctx) for opt in (*param.opts, *param.secondary_opts)}
    for word in words:
        if word.startswith("-") and word != "-":
            assert word.split("=")[0] in known, f"{shlex.join(args)}: {command.name} has no option {word}"


class TestWalkthrough:
    def test_it_has_commands(self):
        blocks = _code_blocks(WALKTHROUGH.read_text())
        found = [args[1] for block in blocks for args in _roadseg_invocations(block)]
        assert {"predict", "vectorize", "eval", "stitch", "weights"} <= set(found)

    def test_every_command_and_option_exists(self):
        blocks = [block for block in _code_blocks(WALKTHROUGH.read_text()) if "import " not in block]
        invocations = [args for block in blocks for args in _roadseg_invocations(block)]
        assert invocations
        for args in invocations:
            _check_invocation(args)

    def test_checker_catches_mistakes(self):
        with pytest.raises(AssertionError, match="no option --bogus"):
            _check_invocation(["roadseg", "predict", "x.tif", "-o", "out", "--bogus"])
        with pytest.raises(AssertionError, match="no command 'fly'"):
            _check_invocation(["roadseg", "fly"])
        with pytest.raises(AssertionError, match="no command 'upload'"):
            _check_invocation(["roadseg", "weights", "upload", "x"])
        assert _roadseg_invocations("roadseg a --x 1 \\\n  --y 2  # note --z\nmkdir w && roadseg b --q") == [
            ["roadseg", "a", "--x", "1", "--y", "2"], ["roadseg", "b", "--q"]]

    def test_python_snippet_runs_on_a_graph_roadseg_writes(self, shared_data, tmp_path, monkeypatch):
        """The networkx snippet, run as written on the GraphML of the SpaceNet label mask, finds a route."""
        from click.testing import CliRunner

        snippets = [block for block in _code_blocks(WALKTHROUGH.read_text()) if "import networkx" in block]
        assert len(snippets) == 1
        mask = shared_data / "spacenet-vegas-pan" / "sample_road_raster_mask.tif"
        monkeypatch.chdir(tmp_path)
        result = CliRunner().invoke(cli, ["vectorize", str(mask), "-o", "work/roads.geojson",
                                          "--graph", "work/roads.graphml", "--quiet"])
        assert result.exception is None, result.output
        assert result.exit_code == 0
        exec(compile(snippets[0], "walkthrough", "exec"), {})
        route = yaml.safe_load((tmp_path / "work" / "route.geojson").read_text())  # JSON is YAML
        assert route["features"]
        assert all(f["geometry"]["type"] == "LineString" for f in route["features"])
