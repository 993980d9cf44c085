"""Progress adapters: the library's callbacks move the bars by what was done."""

from __future__ import annotations

from pathlib import Path

from roadseg.cli.progress import CountBar, FileBars, progress_wanted


def test_progress_bars_track_files_and_windows():
    bars = FileBars(2)
    bars.window_progress(1, 4)
    bars.window_progress(3, 4)
    assert (bars.windows.n, bars.windows.total) == (4, 4)
    bars.on_file(Path("a.tif"), None, None)
    assert bars.files.n == 1 and bars.windows.n == 0
    bars.close()


def test_count_bar_follows_done_and_steps():
    bar = CountBar("image")
    bar.update(2, 5, "b")
    assert (bar.bar.n, bar.bar.total) == (2, 5)
    bar.step("c")
    assert bar.bar.n == 3
    bar.close()


def test_no_bars_when_quiet_or_off_a_terminal():
    assert not progress_wanted(True)
    assert not progress_wanted(False)  # pytest captures stderr: not a terminal
