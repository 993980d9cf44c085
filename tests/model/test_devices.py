"""Device selection: CPU works, auto picks the best usable, an unusable device names those that are."""

from __future__ import annotations

import pytest

from roadseg.errors import DeviceUnavailableError
from roadseg.model import devices

pytestmark = pytest.mark.mindspore


def test_cpu_is_always_usable_and_listed_last():
    usable = devices.usable_devices()
    assert usable[-1] == "CPU"
    assert usable == [d for d in devices.DEVICE_ORDER if d in usable]


def test_auto_picks_the_first_usable_device():
    assert devices.resolve_device("auto") == devices.usable_devices()[0]


def test_cpu_resolves_case_insensitively():
    assert devices.resolve_device("cpu") == "CPU"


def test_unusable_device_names_the_usable_ones(monkeypatch):
    monkeypatch.setattr(devices, "usable_devices", lambda: ["CPU"])
    with pytest.raises(DeviceUnavailableError, match=r"device Ascend is not usable .*; usable: CPU"):
        devices.resolve_device("Ascend")


def test_a_device_this_machine_lacks_is_refused_for_real():
    missing = [d for d in devices.DEVICE_ORDER if d not in devices.usable_devices()]
    if not missing:
        pytest.skip("every device kind is usable on this machine")
    with pytest.raises(DeviceUnavailableError, match=f"device {missing[0]} is not usable"):
        devices.resolve_device(missing[0])


def test_unknown_device_name_is_refused():
    with pytest.raises(DeviceUnavailableError, match="unknown device 'TPU'"):
        devices.canonical_device("TPU")


def test_configure_keeps_a_runtime_already_started_on_the_same_device():
    import numpy as np

    from roadseg.model.mindspore_runtime import ms

    ms.ops.relu(ms.Tensor(np.ones(2, np.float32)))  # a kernel runs: MindSpore fixes the device
    assert devices.configure_mindspore("CPU", 0) == "CPU"


def test_configure_refuses_to_switch_a_started_runtime(monkeypatch):
    import numpy as np

    from roadseg.model.mindspore_runtime import ms

    ms.ops.relu(ms.Tensor(np.ones(2, np.float32)))
    monkeypatch.setattr(devices, "resolve_device", lambda requested: "CPU")
    with pytest.raises(DeviceUnavailableError, match=r"already runs on CPU:0 .* cannot switch to CPU:1"):
        devices.configure_mindspore("CPU", 1)
