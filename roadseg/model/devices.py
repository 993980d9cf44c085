"""Which MindSpore devices are usable, and putting MindSpore on one of them."""

from __future__ import annotations

import logging

from roadseg.errors import DeviceUnavailableError
from roadseg.interrupts import uninterruptible

logger = logging.getLogger(__name__)

#: Preference order for ``auto``: the fastest kind present wins.
DEVICE_ORDER = ("Ascend", "GPU", "CPU")


def canonical_device(name: str) -> str:
    """``cpu``/``Cpu`` -> ``CPU``; ``auto`` stays ``auto``; anything else is refused."""
    for known in (*DEVICE_ORDER, "auto"):
        if name.lower() == known.lower():
            return known
    raise DeviceUnavailableError(f"unknown device {name!r}; choose auto, {', '.join(DEVICE_ORDER)}")


def usable_devices() -> list[str]:
    """Devices the installed MindSpore can run on here, in preference order (CPU is always usable)."""
    from roadseg.model.mindspore_runtime import ms

    return [device for device in DEVICE_ORDER if device == "CPU" or ms.hal.is_available(device)]


def resolve_device(requested: str) -> str:
    """Turn ``auto`` into the best usable device; refuse an unusable one, naming those that are usable."""
    device = canonical_device(requested)
    usable = usable_devices()
    if device == "auto":
        return usable[0]
    if device not in usable:
        raise DeviceUnavailableError(
            f"device {device} is not usable with this MindSpore installation; usable: {', '.join(usable)} "
            "(use `device` auto, or install MindSpore's build for that device)")
    return device


def set_cpu_threads(threads: int) -> bool:
    """Size MindSpore's CPU kernel thread pool (its default, 25, oversubscribes small machines and shares).

    MindSpore accepts this once per process; returns False when it was set already (the first wins).
    """
    from roadseg.model.mindspore_runtime import ms

    try:
        ms.device_context.cpu.op_tuning.threads_num(threads)
    except RuntimeError:
        return False
    return True


@uninterruptible
def configure_mindspore(device: str, device_id: int = 0, *, pynative: bool = False,
                        threads: int | None = None) -> str:
    """Select the device, execution mode and CPU threads; returns the device actually used.

    GRAPH mode compiles the network once per input shape and runs it fastest; PYNATIVE runs op by op,
    for debugging. ``threads`` defaults to the CPUs this process may use (affinity and cgroup quota).
    """
    from roadseg.model.cpu_budget import usable_cpu_count
    from roadseg.model.mindspore_runtime import ms

    set_cpu_threads(threads or usable_cpu_count())

    resolved = resolve_device(device)
    try:
        ms.set_device(resolved, device_id)
    except RuntimeError as error:
        # MindSpore fixes the device once a kernel has run in the process; keeping that runtime is
        # right when it is the one asked for, and a clear error otherwise.
        current = tuple(ms.get_current_device())
        if current != (resolved, device_id):
            raise DeviceUnavailableError(
                f"MindSpore already runs on {current[0]}:{current[1]} in this process and cannot switch to "
                f"{resolved}:{device_id}; choose the device before running any MindSpore code") from error
    ms.set_context(mode=ms.PYNATIVE_MODE if pynative else ms.GRAPH_MODE)
    logger.info("MindSpore on %s:%d in %s mode", resolved, device_id, "PYNATIVE" if pynative else "GRAPH")
    return resolved
