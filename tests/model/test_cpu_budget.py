"""CPUs a process may use: affinity (SLURM, taskset) and cgroup quota (Kubernetes, Docker) both count."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from roadseg.model import cpu_budget
from roadseg.model.cpu_budget import parse_cgroup_v2_max, usable_cpu_count


@pytest.mark.parametrize(("text", "expected"), [
    ("max 100000\n", None), ("150000 100000\n", 1.5), ("50000 100000", 0.5), ("garbage", None),
])
def test_parse_cgroup_v2_max(text, expected):
    assert parse_cgroup_v2_max(text) == expected


def test_a_quota_caps_the_affinity_mask(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3})
    monkeypatch.setattr(cpu_budget, "cgroup_cpu_limit", lambda: 1.5)
    assert usable_cpu_count() == 2  # 1.5 CPUs of quota: two threads, not four
    monkeypatch.setattr(cpu_budget, "cgroup_cpu_limit", lambda: 0.25)
    assert usable_cpu_count() == 1
    monkeypatch.setattr(cpu_budget, "cgroup_cpu_limit", lambda: None)
    assert usable_cpu_count() == 4


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this platform")
def test_a_process_pinned_to_one_cpu_counts_one():
    """A real child process started under an affinity mask of one CPU, as SLURM or taskset would."""
    first = min(os.sched_getaffinity(0))
    code = "from roadseg.model.cpu_budget import usable_cpu_count; print(usable_cpu_count())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            preexec_fn=lambda: os.sched_setaffinity(0, {first}), check=True)
    assert result.stdout.split() == ["1"]
