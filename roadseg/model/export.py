"""Export the network: MINDIR and AIR through MindSpore's exporter, ONNX as roadseg's verified graph."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from roadseg.errors import ExportError
from roadseg.io.atomic import atomic_output, check_writable
from roadseg.model.convention import NETWORK_STRIDE
from roadseg.model.loaded import RoadModel

FORMATS = {"MINDIR": ".mindir", "ONNX": ".onnx", "AIR": ".air"}


def export_model(model: RoadModel, output: Path | str, *, file_format: str = "MINDIR", size: int = 1024,
                 batch_size: int = 1, overwrite: bool = False) -> Path:
    """Write the network for a fixed ``(batch_size, 3, size, size)`` input to ``output``.

    MindSpore appends the format's suffix itself, so the export runs in a temporary directory and the
    finished file is moved to ``output``; a failed export leaves nothing behind.
    """
    from roadseg.model.mindspore_runtime import ms

    file_format = file_format.upper()
    if file_format not in FORMATS:
        raise ExportError(f"unknown export format {file_format!r}; choose one of {', '.join(FORMATS)}")
    if file_format == "ONNX":  # MindSpore 2.10's ONNX exporter writes deconvolutions ONNX Runtime refuses
        raise ExportError("ONNX is written by export_onnx (the graph roadseg verifies against MindSpore), "
                          "not by MindSpore's exporter")
    if file_format == "AIR" and model.device != "Ascend":
        raise ExportError(f"AIR export needs an Ascend device (the model is on {model.device}); "
                          "use `file_format` MINDIR or ONNX, or run on Ascend")
    if size <= 0 or size % NETWORK_STRIDE:
        raise ExportError(f"`size` must be a positive multiple of {NETWORK_STRIDE} (five stride-2 stages), "
                          f"got {size}")
    output = Path(output)
    check_writable(output, overwrite)
    output.parent.mkdir(parents=True, exist_ok=True)  # check_writable creates nothing; the work dir goes there
    example = ms.Tensor(np.zeros((batch_size, 3, size, size), dtype=np.float32))
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=".export-") as work_dir:
        stem = os.path.join(work_dir, "model")
        try:
            ms.export(model.network, example, file_name=stem, file_format=file_format)
        except (RuntimeError, TypeError, ValueError) as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ExportError(f"MindSpore {ms.__version__} cannot export this network to {file_format} on "
                              f"{model.device}: {first_line}") from error
        produced = Path(stem + FORMATS[file_format])
        if not produced.is_file():
            raise ExportError(f"MindSpore reported success but wrote no {file_format} file")
        shutil.move(os.fspath(produced), os.fspath(output))
    return output


@dataclass(frozen=True)
class OnnxExport:
    """What ``export_onnx`` wrote: the file, the network, the weights and the verified agreement."""

    path: Path
    arch: str
    weights_label: str
    max_delta: float


def export_onnx(weights: str | Path, output: Path | str, *, arch: str | None = None, threads: int | None = None,
                overwrite: bool = False) -> OnnxExport:
    """Write the ONNX graph roadseg's ONNX Runtime engine runs (dynamic N, H, W), verified first.

    It is the cached graph of :func:`roadseg.model.onnx_engine.verified_onnx`: the same file, checked against
    the MindSpore network on a fixed input, so an exported model and ``--engine onnxruntime`` agree.
    """
    from roadseg.model.cpu_budget import usable_cpu_count
    from roadseg.model.download import sha256_of
    from roadseg.model.loaded import choose_weights
    from roadseg.model.onnx_engine import verified_onnx

    output = Path(output)
    check_writable(output, overwrite)
    chosen = choose_weights(weights, arch)
    graph = verified_onnx(chosen.contents, chosen.arch, sha256_of(chosen.contents.path),
                          threads or usable_cpu_count())
    with atomic_output(output, overwrite=overwrite) as temp:
        shutil.copyfile(graph.path, temp)
    return OnnxExport(output, chosen.arch, chosen.label, graph.max_delta)
