"""How much memory this process can still take: the kernel's MemAvailable, capped by the cgroup's limit.

Why: MindSpore 2.10 refuses to read a ``.ckpt`` larger than ``os.sysconf("SC_AVPHYS_PAGES")``, the
*free* pages. Free pages leave out the page cache, which the kernel hands back on demand, so on a
machine that has just read or written a few GB of files (a CI run, a training run saving
checkpoints) a 500 MB checkpoint was refused with 24 GB installed and over 20 GB available.
``MemAvailable`` is the kernel's own estimate of what a new allocation can get, cache included.
"""

from __future__ import annotations

from pathlib import Path

MEMINFO = Path("/proc/meminfo")
CGROUP_V2_MEMORY_MAX = Path("/sys/fs/cgroup/memory.max")
CGROUP_V2_MEMORY_CURRENT = Path("/sys/fs/cgroup/memory.current")


def parse_mem_available(meminfo: str) -> int | None:
    """Bytes in the ``MemAvailable:`` line of a ``/proc/meminfo`` text, or None if it has none."""
    for line in meminfo.splitlines():
        if line.startswith("MemAvailable:"):
            fields = line.split()
            scale = 1024 if len(fields) > 2 and fields[2].lower() == "kb" else 1
            return int(fields[1]) * scale
    return None


def cgroup_memory_headroom() -> int | None:
    """Bytes left under this process's cgroup v2 memory limit, or None when there is no limit."""
    try:
        limit = CGROUP_V2_MEMORY_MAX.read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int(CGROUP_V2_MEMORY_CURRENT.read_text()))
    except (OSError, ValueError):
        return None


def available_memory() -> int | None:
    """Bytes a new allocation can get (page cache counted as available), or None where unknown."""
    try:
        available = parse_mem_available(MEMINFO.read_text())
    except (OSError, ValueError):
        available = None
    headroom = cgroup_memory_headroom()
    if available is None:
        return headroom
    return available if headroom is None else min(available, headroom)
