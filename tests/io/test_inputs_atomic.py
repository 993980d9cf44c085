"""Input collection, sharding and atomic writes."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import roadseg.io.atomic
from roadseg.errors import BadInputError, OutputExistsError
from roadseg.io.atomic import atomic_output, check_writable
from roadseg.io.inputs import collect_inputs, parse_shard, select_shard


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_collect_expands_dirs_globs_and_files_sorted_without_duplicates(tmp_path):
    a = touch(tmp_path / "a.tif")
    b = touch(tmp_path / "b.png")
    touch(tmp_path / "notes.txt")
    touch(tmp_path / ".a.partial.tif")
    nested = touch(tmp_path / "sub" / "c.jpg")
    assert collect_inputs([tmp_path]) == [a, b]
    assert collect_inputs([tmp_path], recursive=True) == [a, b, nested]
    assert collect_inputs([str(tmp_path / "*.tif"), a]) == [a]
    assert collect_inputs([tmp_path / "notes.txt"]) == [tmp_path / "notes.txt"]  # named files are kept


def test_collect_refuses_missing_paths_and_empty_globs(tmp_path):
    with pytest.raises(BadInputError, match="nothing.tif: no such file or directory"):
        collect_inputs([tmp_path / "nothing.tif"])
    with pytest.raises(BadInputError, match="the pattern matches no files"):
        collect_inputs([str(tmp_path / "*.tif")])


@given(st.integers(0, 40), st.integers(1, 7))
def test_shards_are_disjoint_and_cover_everything(count, shards):
    paths = [Path(f"f{i:03d}.tif") for i in range(count)]
    parts = [select_shard(paths, k, shards) for k in range(1, shards + 1)]
    assert sorted(p for part in parts for p in part) == sorted(paths)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


@pytest.mark.parametrize("text", ["0/3", "4/3", "a/b", "3"])
def test_bad_shards_are_refused(text):
    with pytest.raises(ValueError, match="shard"):
        parse_shard(text)


def test_atomic_output_renames_on_success_and_cleans_up_on_error(tmp_path):
    target = tmp_path / "out" / "mask.tif"
    with atomic_output(target) as temp:
        assert temp.parent == target.parent and temp.suffix == ".tif" and temp.name.startswith(".")
        temp.write_bytes(b"done")
    assert target.read_bytes() == b"done"
    with pytest.raises(OutputExistsError, match="already exists; pass `overwrite`"), atomic_output(target):
        pass
    with pytest.raises(RuntimeError), atomic_output(tmp_path / "failed.tif") as temp:
        temp.write_bytes(b"half")
        raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert [p.name for p in target.parent.iterdir()] == ["mask.tif"]


def test_atomic_output_has_the_usual_file_mode(tmp_path):
    """mkstemp's private 0600 must not leak into outputs other users of a shared disk need to read."""
    previous = os.umask(0o022)
    try:
        with atomic_output(tmp_path / "out.txt") as temp:
            temp.write_text("x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o644


def test_check_writable_creates_nothing_and_atomic_output_creates_the_directories(tmp_path):
    """A command checks its output before its inputs; failing on an input must leave no empty folders."""
    target = tmp_path / "new" / "sub" / "x.tif"
    check_writable(target, overwrite=False)
    assert list(tmp_path.iterdir()) == []
    with atomic_output(target) as temp:
        temp.write_text("x")
    assert target.read_text() == "x"


def test_check_writable_refuses_a_file_in_the_way(tmp_path):
    blocker = touch(tmp_path / "blocker")
    expected = (f"cannot create output directory {blocker / 'sub'}: {blocker} is not a directory; choose another "
                "output location")
    with pytest.raises(BadInputError, match=f"^{re.escape(expected)}$"):
        check_writable(blocker / "sub" / "x.tif", overwrite=False)
    with pytest.raises(BadInputError, match=f"^{re.escape(f'output directory {blocker} is not a directory')}"):
        check_writable(blocker / "x.tif", overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["blocker"]


def test_check_writable_refuses_an_unwritable_ancestor(tmp_path, monkeypatch):
    """Judged on the nearest folder that exists, since the missing ones would be created in it."""
    asked = []

    def no_access(path, mode):  # as root (CI containers) os.access says yes to everything
        asked.append(path)
        return False

    monkeypatch.setattr(roadseg.io.atomic.os, "access", no_access)
    expected = (f"cannot create output directory {tmp_path / 'a' / 'b'}: {tmp_path} is not writable; "
                "choose another output location")
    with pytest.raises(BadInputError, match=f"^{re.escape(expected)}$"):
        check_writable(tmp_path / "a" / "b" / "x.tif", overwrite=False)
    assert asked == [tmp_path]


def _dead_pid() -> int:
    """The pid of a process that has ended (a child waited for)."""
    import subprocess
    import sys

    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                           text=True, check=True)
    return int(child.stdout)


def test_a_dead_writers_leftovers_are_removed_and_a_live_ones_kept(tmp_path):
    from roadseg.io.atomic import _owner

    host = _owner().rpartition("-")[0]
    dead = touch(tmp_path / f".mask.{host}-{_dead_pid()}.abc123.partial.tif")
    dead_sidecar = touch(tmp_path / f"{dead.name}.aux.xml")
    live = touch(tmp_path / f".mask.{_owner()}.def456.partial.tif")  # this very process: still writing
    other = touch(tmp_path / ".mask.elsewhere-4242.ghi789.partial.tif")  # another machine's, on a shared disk
    unrelated = touch(tmp_path / ".masks.x-1.jkl.partial.tif")
    named = r"mask\.elsewhere-4242.*left by another machine's or an older roadseg"
    with pytest.warns(UserWarning, match=named), atomic_output(tmp_path / "mask.tif") as temp:
        temp.write_text("new")
    assert not dead.exists() and not dead_sidecar.exists()
    assert live.exists() and other.exists() and unrelated.exists()
    assert (tmp_path / "mask.tif").read_text() == "new"


def test_a_full_disk_is_reported_against_the_output_not_the_temporary_file(tmp_path):
    import errno

    from roadseg.errors import OutputError

    target = tmp_path / "mask.tif"
    with pytest.raises(OutputError) as caught, atomic_output(target) as temp:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(temp))
    message = str(caught.value)
    assert message.startswith(f"{target}: no space left") and ".partial" not in message
    assert list(tmp_path.iterdir()) == []


def test_one_file_named_twice_is_one_input(tmp_path, monkeypatch):
    a = touch(tmp_path / "a.tif")
    monkeypatch.chdir(tmp_path)
    assert collect_inputs(["a.tif", a, str(tmp_path / "." / "a.tif")]) == [Path("a.tif")]
