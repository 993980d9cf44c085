"""roadseg's own signal handling, in fresh processes (it changes the process's signal mask)."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

DEFERRED = """
import os, signal, time
from roadseg.interrupts import deferred, take_over
take_over()
try:
    with deferred():
        os.kill(os.getpid(), signal.{name})
        time.sleep(0.5)
        print("the block finished", flush=True)
    print("not reached", flush=True)
except KeyboardInterrupt:
    print("KeyboardInterrupt after the block", flush=True)
except BaseException as error:
    print(type(error).__name__, "after the block", flush=True)
"""


@pytest.mark.parametrize(("name", "raised"), [("SIGINT", "KeyboardInterrupt"), ("SIGTERM", "Terminated")])
def test_a_signal_inside_a_deferred_block_is_raised_when_the_block_ends(name, raised):
    result = subprocess.run([sys.executable, "-c", DEFERRED.format(name=name)], capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.splitlines() == ["the block finished", f"{raised} after the block"], result.stderr


IGNORED = """
import os, signal, time
from roadseg.interrupts import take_over
take_over()
os.kill(os.getpid(), signal.SIGINT)
time.sleep(0.3)
print("still running", flush=True)
"""


def test_a_signal_the_process_was_started_ignoring_stays_ignored():
    """A background job of a shell script starts with SIGINT ignored; roadseg must not revive it."""
    result = subprocess.run([sys.executable, "-c", IGNORED], capture_output=True, text=True, timeout=60,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert result.returncode == 0 and result.stdout.strip() == "still running", result.stderr


C_LEVEL_HANDLER = """
import ctypes, os, signal, time
from roadseg.interrupts import take_over
take_over()
ctypes.CDLL(None).signal(signal.SIGINT, 0)  # a C library resets SIGINT to "die at once", as MindSpore's does
try:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(1)
    print("no exception", flush=True)
except KeyboardInterrupt:
    print("KeyboardInterrupt", flush=True)
"""


def test_a_c_level_handler_installed_after_take_over_never_sees_the_signal():
    """MindSpore installs its C++ SIGINT handler at every graph run, behind Python's back; the signal is
    blocked in every thread and taken by roadseg's watcher, which tells the main thread instead."""
    result = subprocess.run([sys.executable, "-c", C_LEVEL_HANDLER], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "KeyboardInterrupt", (result.returncode,
                                                                                      result.stderr)


FORKED = """
import os, signal
from roadseg.interrupts import take_over
take_over()
parent_blocks = signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])
pid = os.fork()
if pid == 0:
    os._exit(10 if signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []) else 0)
_, status = os.waitpid(pid, 0)
print(parent_blocks, os.waitstatus_to_exitcode(status))
"""


def test_a_forked_child_gets_the_signals_back():
    """A multiprocessing worker has no watcher thread; with the signals still blocked it could not be
    interrupted at all."""
    result = subprocess.run([sys.executable, "-c", FORKED], capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["True", "0"], result.stderr
