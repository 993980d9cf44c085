"""Progress adapters: the library reports progress through plain callbacks; these turn them into tqdm
bars on a terminal and into nothing off one or under ``--quiet``/``--json``."""

from __future__ import annotations

import sys
from pathlib import Path

import click


def progress_wanted(quiet: bool) -> bool:
    """Bars only for a person watching: on a terminal, and not asked to be quiet."""
    return not quiet and sys.stderr.isatty()


def _bar(**kwargs):
    from tqdm import tqdm

    return tqdm(file=sys.stderr, **kwargs)


class FileBars:
    """Two bars: files of a batch, and windows of the current file (``predict``)."""

    def __init__(self, total_files: int) -> None:
        self.files = _bar(total=total_files, unit="file", position=0)
        self.windows = _bar(total=0, unit="window", position=1, leave=False)

    def window_progress(self, count: int, total: int) -> None:
        if self.windows.total != total:
            self.windows.reset(total=total)
        self.windows.update(count)

    def on_file(self, path: Path, result, reason: str | None) -> None:
        """After each input: its error above the bars, then the bars moved on."""
        if reason is not None:
            self.files.write(f"Error: {reason}")
        self.files.set_postfix_str(path.name)
        self.files.update(1)
        self.windows.reset(total=0)

    def close(self) -> None:
        self.windows.close()
        self.files.close()


class CountBar:
    """One bar of ``unit`` items, driven by ``update(done, total, name)`` or ``step(name)``."""

    def __init__(self, unit: str, desc: str | None = None) -> None:
        self.bar = _bar(unit=unit, desc=desc, leave=False)

    def update(self, done: int, total: int, name: str) -> None:
        self.bar.total = total
        self.bar.set_postfix_str(name)
        self.bar.update(done - self.bar.n)

    def step(self, name: str) -> None:
        self.bar.set_description(name)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


class DownloadBar:
    """Bytes of a download; the bar appears with the first callback (the total is known by then)."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label, self.enabled, self.bar = label, enabled, None

    def __call__(self, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            self.bar = _bar(total=total, unit="B", unit_scale=True, desc=self.label)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class TrainingProgress:
    """A bar per epoch on a terminal; one summary line per epoch unless quiet or JSON."""

    def __init__(self, quiet: bool, as_json: bool) -> None:
        self.quiet, self.as_json = quiet, as_json
        self.bar = None
        self.tty = progress_wanted(quiet)

    def __call__(self, event) -> None:
        from roadseg.train.loop import EpochRecord, StepEvent

        if isinstance(event, StepEvent) and self.tty:
            if self.bar is None:
                self.bar = _bar(total=event.steps, desc=f"epoch {event.epoch}", unit="step", leave=False)
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{event.loss:.4f}", s_per_step=f"{event.seconds:.2f}")
        elif isinstance(event, EpochRecord):
            if self.bar is not None:
                self.bar.close()
                self.bar = None
            if not self.quiet and not self.as_json:
                iou = "-" if event.val_road_iou is None else f"{event.val_road_iou:.4f}"
                click.echo(f"epoch {event.epoch}: loss {event.loss:.4f}  lr {event.lr:.3g}  val road IoU {iou}  "
                           f"{event.seconds:.1f} s{'  best' if event.improved else ''}"
                           f"{'  ' + event.note if event.note else ''}", err=True)
