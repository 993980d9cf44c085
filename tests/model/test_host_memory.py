"""Available memory: the kernel's MemAvailable (page cache counted), capped by a cgroup limit."""

from __future__ import annotations

import os

import pytest

from roadseg.model import host_memory
from roadseg.model.host_memory import available_memory, parse_mem_available

MEMINFO_SAMPLE = """MemTotal:       24683520 kB
MemFree:          379104 kB
MemAvailable:   23980000 kB
Buffers:            1024 kB
"""


def test_mem_available_is_read_in_bytes_not_the_free_line():
    assert parse_mem_available(MEMINFO_SAMPLE) == 23980000 * 1024


def test_a_meminfo_without_mem_available_gives_none():
    assert parse_mem_available("MemTotal: 100 kB\nMemFree: 50 kB\n") is None


@pytest.mark.skipif(not host_memory.MEMINFO.is_file(), reason="no /proc/meminfo (not Linux)")
def test_available_memory_lies_between_zero_and_the_installed_memory():
    installed = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert 0 < available_memory() <= installed


def test_a_cgroup_limit_caps_what_is_available(tmp_path, monkeypatch):
    (tmp_path / "memory.max").write_text("1073741824\n")
    (tmp_path / "memory.current").write_text("1000000000\n")
    monkeypatch.setattr(host_memory, "CGROUP_V2_MEMORY_MAX", tmp_path / "memory.max")
    monkeypatch.setattr(host_memory, "CGROUP_V2_MEMORY_CURRENT", tmp_path / "memory.current")
    assert available_memory() == 1073741824 - 1000000000


def test_an_unlimited_cgroup_leaves_mem_available_alone(tmp_path, monkeypatch):
    (tmp_path / "memory.max").write_text("max\n")
    monkeypatch.setattr(host_memory, "CGROUP_V2_MEMORY_MAX", tmp_path / "memory.max")
    assert host_memory.cgroup_memory_headroom() is None
