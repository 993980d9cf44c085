"""Read, check and write D-LinkNet checkpoints in the model zoo's layout.

A zoo checkpoint holds the network tensors under the zoo's names (no prefix), possibly followed by the
optimizer state its training loop saved; roadseg takes the network tensors and ignores the rest. A
checkpoint roadseg writes holds the same tensors plus string entries recording the architecture and
the input convention, which the zoo's loader ignores, so files move freely in both directions.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from roadseg.errors import WeightsError
from roadseg.interrupts import uninterruptible
from roadseg.io.atomic import atomic_output
from roadseg.model.convention import InputConvention
from roadseg.model.host_memory import available_memory

ARCH_KEY = "roadseg_arch"
CONVENTION_KEY = "roadseg_convention"
FORMAT_KEY = "roadseg_format"
GSD_KEY = "roadseg_gsd"
FORMAT_VERSION = 1

#: Prefixes and names of training state that zoo and MindSpore optimizers save beside the network.
OPTIMIZER_PREFIXES = ("moment1.", "moment2.", "moments.", "accum.", "vhat.", "adam_m.", "adam_v.")
OPTIMIZER_NAMES = frozenset({
    "beta1_power", "beta2_power", "learning_rate", "global_step", "scale_sense", "epoch_num", "step_num",
    "current_iterator_step", "last_overflow_iterator_step", "loss_scale", "cur_step_num", "cur_epoch_num",
})
FIRST_OFFENDERS = 5


@dataclass
class CheckpointContents:
    """A checkpoint file split into network tensors, training state and roadseg's own metadata."""

    path: Path
    tensors: dict[str, np.ndarray]
    training_state: dict[str, object] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def arch(self) -> str | None:
        """The recorded architecture, else a guess from the tensors (only DinkNet50 has ``dilate5``)."""
        if ARCH_KEY in self.metadata:
            return self.metadata[ARCH_KEY]
        if "dblock.dilate5.weight" in self.tensors:
            return "dlinknet50"
        if "dblock.dilate1.weight" in self.tensors:
            return "dlinknet34"
        return None

    @property
    def convention(self) -> InputConvention | None:
        text = self.metadata.get(CONVENTION_KEY)
        return InputConvention.from_json(text) if text else None

    @property
    def gsd(self) -> float | None:
        """The recorded training GSD in metres per pixel; None when the checkpoint records none (the zoo's
        files, runs on data without georeferencing) or records something unusable."""
        try:
            value = float(self.metadata.get(GSD_KEY, "nan"))
        except ValueError:
            return None
        return value if math.isfinite(value) and value > 0 else None


def is_training_state(name: str) -> bool:
    """True for optimizer and loop state a training run saves beside the network tensors."""
    return name in OPTIMIZER_NAMES or name.startswith(OPTIMIZER_PREFIXES) or name.startswith("roadseg_train_")


def check_memory_for(path: Path) -> None:
    """Refuse, naming the file, a checkpoint larger than the memory left: MindSpore reads it whole."""
    size, available = path.stat().st_size, available_memory()
    if available is not None and size > available:
        raise WeightsError(f"{path}: reading this {size / 2**20:.0f} MiB checkpoint needs that much memory and "
                           f"only {available / 2**20:.0f} MiB is available; close other programs or use a "
                           "machine with more memory")


@uninterruptible
def read_checkpoint(path: Path | str) -> CheckpointContents:
    """Load a MindSpore checkpoint file into numpy arrays; one-line :class:`WeightsError` if unreadable."""
    from roadseg.model.mindspore_runtime import ms

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise WeightsError(f"{path}: the file is empty, not a MindSpore checkpoint; download it again")
    check_memory_for(path)
    try:
        raw = ms.load_checkpoint(os.fspath(path))
    except (ValueError, RuntimeError, TypeError) as error:
        raise WeightsError(f"{path}: not a readable MindSpore checkpoint (truncated or not a .ckpt file); "
                           "download it again or check the path") from error
    contents = CheckpointContents(path=path, tensors={})
    for name, value in raw.items():
        if isinstance(value, str):
            contents.metadata[name] = value
        elif is_training_state(name):
            contents.training_state[name] = value.asnumpy() if hasattr(value, "asnumpy") else value
        else:
            contents.tensors[name] = value.asnumpy()
    if not contents.tensors:
        raise WeightsError(f"{path}: the checkpoint holds no network tensors")
    return contents


def expected_shapes(network) -> dict[str, tuple[int, ...]]:
    """Every tensor the network's checkpoint holds, by name, with its shape (the zoo layout)."""
    return {parameter.name: tuple(parameter.shape) for parameter in network.get_parameters()}


def check_tensors(tensors: Mapping[str, np.ndarray], expected: Mapping[str, tuple[int, ...]],
                  source: str, arch: str) -> None:
    """Raise one :class:`WeightsError` naming the first missing, extra and mis-shaped tensors."""
    missing = [name for name in expected if name not in tensors]
    extra = [name for name in tensors if name not in expected]
    misshaped = [f"{name} {tuple(tensors[name].shape)} != {expected[name]}"
                 for name in expected if name in tensors and tuple(tensors[name].shape) != expected[name]]
    problems = []
    for label, names in (("missing", missing), ("not in the network", extra), ("mis-shaped", misshaped)):
        if names:
            shown = ", ".join(names[:FIRST_OFFENDERS]) + (f" (+{len(names) - FIRST_OFFENDERS} more)"
                                                         if len(names) > FIRST_OFFENDERS else "")
            problems.append(f"{len(names)} {label}: {shown}")
    if problems:
        raise WeightsError(f"{source} does not match {arch}: " + "; ".join(problems))


def load_into(network, contents: CheckpointContents, arch: str) -> None:
    """Check ``contents`` against ``network`` and copy every tensor into it."""
    from roadseg.model.mindspore_runtime import ms

    check_tensors(contents.tensors, expected_shapes(network), str(contents.path), arch)
    parameters = {name: ms.Parameter(ms.Tensor(array), name=name) for name, array in contents.tensors.items()}
    ms.load_param_into_net(network, parameters, strict_load=True)


@uninterruptible
def inference_network(contents: CheckpointContents, arch: str, transposed_conv: str | None = None):
    """A fresh ``arch`` network holding ``contents``' tensors, in inference mode (BatchNorm statistics)."""
    from roadseg.model.network import DEFAULT_TRANSPOSED_CONV, build_network

    network = build_network(arch, transposed_conv or DEFAULT_TRANSPOSED_CONV)
    load_into(network, contents, arch)
    network.set_train(False)
    return network


@uninterruptible
def save_checkpoint(network, path: Path | str, *, arch: str, convention: InputConvention,
                    extra: Mapping[str, object] | None = None, overwrite: bool = True,
                    gsd: float | None = None) -> Path:
    """Write the network's tensors under the zoo's names plus roadseg's metadata, atomically.

    ``gsd``: the metres per pixel of the training imagery, recorded so that prediction can show inputs
    to the network at that resolution (None: not known, nothing recorded).

    ``extra`` adds training state (names must satisfy :func:`is_training_state`, so loaders skip it):
    tensors or numbers become checkpoint tensors, strings (e.g. JSON) become string entries that
    :func:`read_checkpoint` returns in ``metadata``.
    """
    from roadseg.model.mindspore_runtime import ms

    path = Path(path)
    if path.suffix != ".ckpt":
        raise ValueError(f"checkpoint files must end in .ckpt (MindSpore adds it otherwise), got {path}")
    entries = [{"name": parameter.name, "data": parameter} for parameter in network.get_parameters()]
    metadata = {ARCH_KEY: arch, CONVENTION_KEY: convention.to_json(), FORMAT_KEY: str(FORMAT_VERSION)}
    if gsd is not None:
        metadata[GSD_KEY] = repr(float(gsd))
    for name, value in (extra or {}).items():
        if not is_training_state(name):
            raise ValueError(f"extra checkpoint entry {name!r} would be read as a network tensor")
        if isinstance(value, str):
            metadata[name] = value
            continue
        data = value if isinstance(value, (ms.Tensor, ms.Parameter)) else ms.Tensor(np.asarray(value))
        entries.append({"name": name, "data": data})
    with atomic_output(path, overwrite=overwrite) as temp_path:
        ms.save_checkpoint(entries, os.fspath(temp_path), append_dict=metadata)
    return path
