"""Ctrl-C and SIGTERM that end roadseg cleanly, even while MindSpore runs the network.

Why: MindSpore 2.10 installs its own C++ SIGINT handler at every graph run. It turns Ctrl-C into
SIGTERM, which kills the process (status 143) without running any Python cleanup: hidden temporary
files stay behind, predict does not say what it finished, and train saves no ``last.ckpt``. A
KeyboardInterrupt raised while MindSpore is being imported also ends in "Fatal Python error".

So the command line takes both signals over before any library starts a thread (:func:`take_over`):
SIGINT and SIGTERM are blocked in every thread and a watcher thread takes them with ``sigwait``, so
no handler MindSpore installs ever runs. The watcher turns the first signal into the exception the
main thread expects (KeyboardInterrupt, or :class:`Terminated`), raised at its next Python step (after
a forward pass returns), so the usual cleanup runs: temporary files are removed, a training run saves
its last step. Inside :func:`deferred` (MindSpore's import) the exception waits until the block ends.
A second signal ends the process at once, after removing the temporary files still being written.

A library user who never calls :func:`take_over` keeps Python's own behaviour.
"""

from __future__ import annotations

import _thread
import contextlib
import functools
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}
"""What a shell reports for a process ended by each signal (128 + the signal's number)."""


class Terminated(BaseException):
    """SIGTERM reached roadseg: like KeyboardInterrupt, it passes ``except Exception`` and unwinds."""


class _Watch:
    """The signals taken over, and what the main thread is doing about them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.taken: set[int] = set()
        self.received = 0
        self.deferring = 0
        self.pending: int | None = None
        self.on_exit_now: list[Callable[[], None]] = []


_WATCH = _Watch()


def _raise_terminated(signum, frame) -> None:
    raise exception_for(signum)


def exception_for(signum: int) -> BaseException:
    """The exception the main thread raises for ``signum``."""
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(f"terminated (signal {signum})")


def take_over(signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> None:
    """Take SIGINT and SIGTERM away from every handler but roadseg's (see the module docstring).

    Call it from the main thread before anything starts threads (MindSpore, ONNX Runtime and numpy's
    BLAS all do): threads started earlier keep their own signal masks. A signal the process was started
    with ignored (a background job of a script) stays ignored. Calling it again does nothing.
    """
    if _WATCH.taken or threading.current_thread() is not threading.main_thread():
        return
    taken = {signum for signum in signals if signal.getsignal(signum) is not signal.SIG_IGN}
    if not taken:
        return
    if signal.SIGTERM in taken:
        signal.signal(signal.SIGTERM, _raise_terminated)  # so the main thread can be told of it
    if signal.SIGINT in taken and signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_BLOCK, taken)
    _WATCH.taken = taken
    os.register_at_fork(after_in_child=_release_in_child)
    threading.Thread(target=_watch_signals, name="roadseg-signals", daemon=True).start()


def _release_in_child() -> None:
    """A forked child (a multiprocessing worker) has no watcher thread: give it back the signals."""
    if _WATCH.taken:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _WATCH.taken)
        _WATCH.taken = set()


def _watch_signals() -> None:
    while True:
        _deliver(signal.sigwait(_WATCH.taken))


def _deliver(signum: int) -> None:
    with _WATCH.lock:
        _WATCH.received += 1
        if _WATCH.received > 1:
            _exit_now(signum)
        if _WATCH.deferring:
            _WATCH.pending = signum
            return
    _thread.interrupt_main(signum)


def _exit_now(signum: int) -> None:
    """The second signal: remove what is being written and end without waiting for the main thread."""
    for cleanup in list(_WATCH.on_exit_now):
        with contextlib.suppress(Exception):
            cleanup()
    with contextlib.suppress(Exception):
        sys.stderr.write("Error: interrupted again; stopped at once\n")
        sys.stderr.flush()
    os._exit(EXIT_STATUS.get(signum, 128 + signum))


def on_exit_now(cleanup: Callable[[], None]) -> None:
    """Run ``cleanup`` (quickly, without raising) if a second signal ends the process at once."""
    _WATCH.on_exit_now.append(cleanup)


def uninterruptible(func: Callable[P, R]) -> Callable[P, R]:
    """``func`` run inside :func:`deferred`: for calls into MindSpore, whose Python layers catch every
    exception (KeyboardInterrupt included) and report it as something else ("Failed to read the
    checkpoint file", a graph analysis dump written to the working directory)."""
    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with deferred():
            return func(*args, **kwargs)
    return wrapper


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold a signal that arrives inside the block until it ends (code that must not be interrupted
    halfway, such as importing MindSpore); then raise it. Does nothing unless :func:`take_over` ran."""
    with _WATCH.lock:
        _WATCH.deferring += 1
    try:
        yield
    finally:
        with _WATCH.lock:
            _WATCH.deferring -= 1
            pending = _WATCH.pending if not _WATCH.deferring else None
            if pending is not None:
                _WATCH.pending = None
        if pending is not None:
            raise exception_for(pending)
