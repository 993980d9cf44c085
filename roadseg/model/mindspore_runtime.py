"""The one door through which roadseg imports MindSpore.

oneDNN, inside MindSpore, reads its instruction-set limit once, when MindSpore loads; importing
MindSpore here, right after :func:`roadseg.model.cpu_isa.settle_cpu_isa`, guarantees the measured choice is
in force wherever roadseg runs the network (predict, eval, train, export, benchmarks, tests). Every
other module takes ``ms`` (and the names below) from here; a test checks that none imports MindSpore
itself.
"""

from __future__ import annotations

import os

from roadseg.interrupts import deferred
from roadseg.model.cpu_isa import settle_cpu_isa

# MindSpore logs a warning for every backend plugin it cannot load (GPU, Ascend on a CPU machine);
# show only its errors unless the user chose a level. Set here, not on `import roadseg`, which leaves
# the environment alone.
os.environ.setdefault("GLOG_v", "3")
CPU_ISA = settle_cpu_isa()

with deferred():  # a KeyboardInterrupt halfway through MindSpore's import ends in "Fatal Python error"
    import mindspore as ms  # noqa: E402 - oneDNN must see the ISA choice when MindSpore loads
    from mindspore import Parameter, Tensor, amp, nn, ops  # noqa: E402
    from mindspore.common.initializer import HeUniform, initializer  # noqa: E402

from roadseg.model.host_memory import available_memory  # noqa: E402


def _count_page_cache_as_available() -> None:
    """Make MindSpore's checkpoint size check count the page cache as available memory.

    MindSpore 2.10 compares a ``.ckpt``'s size with the *free* pages only, and refused a 500 MB
    training checkpoint on a 24 GB machine whose page cache held the rest (see host_memory). Its
    check then reads the kernel's MemAvailable instead; where this MindSpore has no such check,
    nothing changes. roadseg's own check, with a message that names the file, is in
    :func:`roadseg.model.checkpoint.read_checkpoint`.
    """
    from mindspore.train import serialization

    if callable(getattr(serialization, "_get_available_memory", None)):
        serialization._get_available_memory = available_memory


_count_page_cache_as_available()

__all__ = ["CPU_ISA", "HeUniform", "Parameter", "Tensor", "amp", "initializer", "ms", "nn", "ops"]
