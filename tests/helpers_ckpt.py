"""Checkpoints built inside tests from the reference's names and shapes (no data committed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REFERENCE_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "reference"


def reference_params(arch: str) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, shape, kind) of every tensor of the zoo checkpoint, from ``../shared/reference``."""
    name = {"dlinknet34": "dinknet34_params.tsv", "dlinknet50": "dinknet50_params.tsv"}[arch]
    path = REFERENCE_DIR / name
    if not path.is_file():
        pytest.skip(f"zoo reference list {path} not found (../shared/reference beside the project)")
    rows = []
    for line in path.read_text().splitlines():
        tensor, shape_text, kind = line.split("\t")
        shape = tuple(int(part) for part in shape_text.strip("()").split(",") if part.strip())
        rows.append((tensor, shape, kind))
    return rows


def write_zoo_checkpoint(path: Path, arch: str = "dlinknet34", *, seed: int = 0, drop: str | None = None,
                         reshape: str | None = None, optimizer: bool = False,
                         signal: bool = False) -> dict[str, np.ndarray]:
    """A checkpoint with the zoo's names and shapes and random values, as the zoo's code would save it.

    ``signal`` rescales the values (:func:`with_signal`) so the output depends on the input.
    """
    from roadseg.model.mindspore_runtime import ms

    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {}
    for name, shape, _kind in reference_params(arch):
        if name == drop:
            continue
        if name == reshape:
            shape = (*shape[:-1], shape[-1] + 1)
        values = rng.normal(0, 0.05, size=shape).astype(np.float32)
        if name.endswith("moving_variance"):
            values = np.abs(values) + 1.0
        tensors[name] = values
    if signal:
        tensors = with_signal(tensors)
    entries = [{"name": name, "data": ms.Tensor(array)} for name, array in tensors.items()]
    if optimizer:
        for name, array in list(tensors.items())[:20]:
            entries.append({"name": f"moment1.{name}", "data": ms.Tensor(np.zeros_like(array))})
            entries.append({"name": f"moment2.{name}", "data": ms.Tensor(np.zeros_like(array))})
        for name in ("beta1_power", "beta2_power", "learning_rate", "global_step"):
            entries.append({"name": name, "data": ms.Tensor(np.array(0.5, dtype=np.float32))})
    ms.save_checkpoint(entries, str(path))
    return tensors


def _fan_in(name: str, shape: tuple[int, ...]) -> float:
    """Inputs summed into one output value: a stride-2 transposed conv's (in, out, ..., k, k) sees a quarter."""
    if "deconv" in name:
        return shape[0] * float(np.prod(shape[2:])) / 4
    return float(np.prod(shape[1:]))


def with_signal(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The same random tensors rescaled so the output depends on the input (what makes parity mean something).

    With the zoo-layout helper's values as they are (N(0, 0.05) everywhere, BN gamma included), each BN
    shrinks its activations 20-fold: the sigmoid saw little more than the biases (p in 0.505-0.521, the
    same to 7 digits for two different inputs), so a wrong stem or encoder could hide under 1e-4. Conv
    weights at std 1/sqrt(fan_in) and gamma = 1 + N(0, 0.05) give p spread over about 0.4-0.7.
    """
    rescaled = {}
    for name, array in tensors.items():
        if name.endswith(".weight"):
            array = array * (1.0 / np.sqrt(_fan_in(name, array.shape)) / 0.05)
        elif name.endswith(".gamma"):
            array = 1.0 + array
        rescaled[name] = array.astype(np.float32)
    return rescaled
