"""oneDNN's instruction set: decided by measurement before MindSpore loads, honoured by fresh processes."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from roadseg.model import cpu_isa
from roadseg.model.cpu_isa import DEFAULT, CpuIdentity, cpu_identity, isa_candidates, parse_cpuinfo, pick_fastest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
GATES = {Path("roadseg/model/mindspore_runtime.py"), Path("roadseg/model/isa_probe.py")}

# A conv run through roadseg's gate, with oneDNN telling which ISA it dispatched to.
CONV_THROUGH_GATE = """
import json, os
import numpy as np
from roadseg.model.mindspore_runtime import CPU_ISA, ms
ms.set_device("CPU")
ms.nn.Conv2d(8, 8, 3)(ms.Tensor(np.ones((1, 8, 16, 16), np.float32))).asnumpy()
print("CHOICE " + json.dumps({"isa": CPU_ISA.isa, "source": CPU_ISA.source,
                              "env": os.environ.get("ONEDNN_MAX_CPU_ISA")}), flush=True)
"""


def _run_gate(tmp_path: Path, **env_changes: str | None) -> tuple[dict, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in (*cpu_isa.ISA_VARIABLES, cpu_isa.CHOICE_MARKER)}
    env.update({"ROADSEG_CACHE": str(tmp_path / "cache"), "ONEDNN_VERBOSE": "1", "GLOG_v": "3"})
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    result = subprocess.run([sys.executable, "-c", CONV_THROUGH_GATE], env=env, capture_output=True, text=True,
                            timeout=300, cwd=PROJECT_ROOT, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    choice = json.loads(result.stdout.split("CHOICE ", 1)[1].splitlines()[0])
    isa_line = re.search(r"onednn_verbose,.*info,cpu,isa:(.*)", result.stdout + result.stderr)
    assert isa_line, "oneDNN printed no ISA line"
    return choice, isa_line.group(1).strip()


def _forge_cached_choice(identity: CpuIdentity, cache_root: Path, isa: str) -> None:
    directory = cache_root / "cpu-isa"
    directory.mkdir(parents=True)
    record = {"isa": isa, "source": "measured", "reason": "forged by the test", "cpu": identity.model,
              "timings": {isa: 0.01}, "cache_file": ""}
    (directory / f"{identity.key()}.json").write_text(json.dumps(record))


IMPORTING_CALLS = {"importorskip", "import_module", "__import__"}


def _called_name(call: ast.Call) -> str:
    return call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")


def test_no_module_imports_mindspore_around_the_gate():
    offenders = []
    for folder in ("roadseg", "cli", "tests", "benchmarks", "examples"):
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py")):
            relative = path.relative_to(PROJECT_ROOT)
            if relative in GATES:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                if isinstance(node, ast.Call) and _called_name(node) in IMPORTING_CALLS and node.args \
                        and isinstance(node.args[0], ast.Constant):
                    names = [str(node.args[0].value)]
                offenders += [f"{relative}:{node.lineno}" for name in names
                              if name == "mindspore" or name.startswith("mindspore.")]
    assert offenders == [], "import MindSpore through roadseg.model.mindspore_runtime: " + ", ".join(offenders)


def test_parse_cpuinfo_takes_the_first_processor():
    text = "processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: sse avx2 avx512f fpu\n\n" \
           "processor\t: 1\nmodel name\t: Other\nflags\t\t: sse\n"
    assert parse_cpuinfo(text) == ("Test CPU", ("avx2", "avx512f", "fpu", "sse"))
    assert cpu_isa.isa_flags(("avx2", "avx512f", "fpu", "sse")) == ("avx2", "avx512f", "sse")


def test_only_avx512_cpus_have_a_choice_to_measure():
    assert isa_candidates(("avx", "avx2", "fma")) == [DEFAULT]
    assert isa_candidates(("avx2", "avx512f", "avx512bw")) == ["AVX2", "AVX512_CORE", DEFAULT]


@pytest.mark.parametrize(("timings", "expected"), [
    ({"AVX2": 0.03, "AVX512_CORE": None, DEFAULT: None}, "AVX2"),
    ({"AVX2": 0.03, "AVX512_CORE": 2.1, DEFAULT: 2.2}, "AVX2"),
    ({"AVX2": 0.030, DEFAULT: 0.031}, DEFAULT),        # within 5 %: leave oneDNN's own choice
    ({"AVX2": 0.05, "AVX512_CORE": 0.02, DEFAULT: 0.04}, "AVX512_CORE"),
    ({"AVX2": None, DEFAULT: None}, DEFAULT),          # nothing measured: change nothing
])
def test_pick_fastest(timings, expected):
    assert pick_fastest(timings) == expected


def test_a_variable_roadseg_set_is_not_the_users():
    assert cpu_isa.user_isa_setting({"ONEDNN_MAX_CPU_ISA": "AVX"}) == "ONEDNN_MAX_CPU_ISA=AVX"
    assert cpu_isa.user_isa_setting({"DNNL_MAX_CPU_ISA": "SSE41"}) == "DNNL_MAX_CPU_ISA=SSE41"
    assert cpu_isa.user_isa_setting({"ONEDNN_MAX_CPU_ISA": "AVX2", cpu_isa.CHOICE_MARKER: "AVX2"}) is None
    assert cpu_isa.user_isa_setting({cpu_isa.CHOICE_MARKER: DEFAULT}) is None


@pytest.mark.mindspore
def test_a_fresh_process_runs_oneDNN_with_the_cached_choice(tmp_path):
    identity = cpu_identity()
    if len(isa_candidates(identity.flags)) == 1:
        choice, dispatched = _run_gate(tmp_path)
        assert (choice["isa"], choice["source"], choice["env"]) == (DEFAULT, "single candidate", None)
        assert "AVX-512" not in dispatched
        return
    # A choice roadseg would never measure (plain AVX) proves the cached decision is what oneDNN uses.
    _forge_cached_choice(identity, tmp_path / "cache", "AVX")
    choice, dispatched = _run_gate(tmp_path)
    assert (choice["isa"], choice["source"], choice["env"]) == ("AVX", "cache", "AVX")
    assert dispatched == "Intel AVX"


@pytest.mark.mindspore
def test_the_users_own_setting_is_never_overridden(tmp_path):
    identity = cpu_identity()
    if len(isa_candidates(identity.flags)) > 1:
        _forge_cached_choice(identity, tmp_path / "cache", "AVX2")  # the cache must lose to the user
    choice, dispatched = _run_gate(tmp_path, ONEDNN_MAX_CPU_ISA="SSE41")
    assert (choice["isa"], choice["source"], choice["env"]) == ("SSE41", "user", "SSE41")
    assert dispatched == "Intel SSE4.1"


@pytest.mark.mindspore
def test_child_processes_inherit_roadsegs_choice_as_roadsegs(tmp_path):
    choice, dispatched = _run_gate(tmp_path, ONEDNN_MAX_CPU_ISA="AVX", **{cpu_isa.CHOICE_MARKER: "AVX"})
    assert (choice["isa"], choice["source"]) == ("AVX", "inherited")
    assert dispatched == "Intel AVX"


@pytest.mark.mindspore
def test_measuring_picks_the_fastest_candidate_and_caches_it(tmp_path, monkeypatch):
    """The real measurement on this CPU (a few seconds on AVX-512 machines; nothing to measure elsewhere)."""
    monkeypatch.setenv("ROADSEG_CACHE", str(tmp_path))
    identity = cpu_identity()
    first = cpu_isa.measured_choice(identity)
    candidates = isa_candidates(identity.flags)
    if len(candidates) == 1:
        assert (first.isa, first.source) == (DEFAULT, "single candidate")
        return
    assert first.source == "measured"
    assert list(first.timings) == candidates
    assert first.isa == pick_fastest(first.timings)
    assert first.timings[first.isa] is not None or first.isa == DEFAULT
    again = cpu_isa.measured_choice(identity)
    assert (again.isa, again.source, again.timings) == (first.isa, "cache", first.timings)
