"""How many CPUs this process may use: its affinity mask, capped by the cgroup's CPU quota.

Why: ``os.cpu_count()`` counts the whole machine. Under SLURM (affinity) or Kubernetes and Docker
(a cgroup quota) a process that starts one thread per machine core oversubscribes its share, and
every thread then waits for the others. Thread pools (ONNX Runtime's, MindSpore's CPU kernels) are
sized from :func:`usable_cpu_count` unless the user says otherwise.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_V2_MAX = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1_QUOTA = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
CGROUP_V1_PERIOD = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")


def parse_cgroup_v2_max(text: str) -> float | None:
    """CPUs allowed by a cgroup v2 ``cpu.max`` line (``"quota period"`` or ``"max period"``); None if unlimited."""
    parts = text.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    quota, period = int(parts[0]), int(parts[1])
    return quota / period if quota > 0 and period > 0 else None


def cgroup_cpu_limit() -> float | None:
    """The CPU quota of this process's cgroup in CPUs (v2, else v1), or None when there is none."""
    try:
        return parse_cgroup_v2_max(CGROUP_V2_MAX.read_text())
    except (OSError, ValueError):
        pass
    try:
        quota, period = int(CGROUP_V1_QUOTA.read_text()), int(CGROUP_V1_PERIOD.read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def usable_cpu_count() -> int:
    """CPUs this process may run on: the affinity mask, capped by the cgroup quota (rounded up), at least 1."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    if limit is not None:
        count = min(count, math.ceil(limit))
    return max(1, count)
