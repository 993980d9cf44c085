"""The ONNX Runtime engine: the same checkpoint as an ONNX graph, checked against MindSpore before use.

Why: on the CPU, ONNX Runtime runs D-LinkNet about 3x faster than MindSpore 2.10 (near the CPU's
float32 peak). The graph is written from the checkpoint's tensors by :mod:`roadseg.model.onnx_graph`,
because MindSpore's own ONNX exporter writes transposed convolutions that ONNX Runtime refuses. A
graph is only trusted once it gives the MindSpore network's probabilities on a fixed input within
``VERIFY_TOLERANCE``; then it is cached under the weights' sha256, the architecture and the roadseg
version, so the check runs once per weights file.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from roadseg import __version__
from roadseg.errors import EngineError
from roadseg.interrupts import uninterruptible
from roadseg.io.atomic import atomic_output
from roadseg.model.checkpoint import CheckpointContents

logger = logging.getLogger(__name__)

VERIFY_TOLERANCE = 1e-4
#: The fixed verification input: batch 2 and a non-square size, so batching and both axes are exercised.
VERIFY_SHAPE = (2, 3, 96, 128)
INPUT_NAME, OUTPUT_NAME = "image", "probability"


def onnxruntime_available() -> bool:
    """Whether onnxruntime and onnx import here (both are dependencies, but a slim install may lack them)."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def verification_input() -> np.ndarray:
    """A fixed network input spanning the zoo convention's range (-1.6, 1.6)."""
    return np.random.default_rng(20240607).uniform(-1.6, 1.6, VERIFY_SHAPE).astype(np.float32)


def cached_onnx_path(weights_sha256: str, arch: str) -> Path:
    """Where the verified graph of these weights lives in roadseg's cache."""
    from roadseg.model.registry import cache_dir

    return cache_dir() / "onnx" / f"{arch}-{weights_sha256[:16]}-roadseg{__version__}.onnx"


def new_session(model: bytes | Path, threads: int):
    """An ONNX Runtime CPU session with ``threads`` intra-op threads and all graph optimisations."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Spinning threads hold their cores while waiting: two roadseg processes on one machine then slow
    # each other more than their share of the cores (2.13x against 2.0x, measured); alone it gains nothing.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])


@uninterruptible
def mindspore_reference(contents: CheckpointContents, arch: str, batch: np.ndarray, threads: int) -> np.ndarray:
    """The MindSpore network's probabilities for ``batch``: the independent side of the check."""
    from roadseg.model.checkpoint import inference_network
    from roadseg.model.devices import configure_mindspore
    from roadseg.model.mindspore_runtime import ms

    configure_mindspore("CPU", threads=threads)
    return inference_network(contents, arch)(ms.Tensor(batch)).asnumpy()


def verify_graph(graph: bytes, contents: CheckpointContents, arch: str, threads: int) -> float:
    """Max |p_onnx - p_mindspore| on the fixed input; raises :class:`EngineError` above the tolerance."""
    batch = verification_input()
    got = new_session(graph, threads).run([OUTPUT_NAME], {INPUT_NAME: batch})[0]
    expected = mindspore_reference(contents, arch, batch, threads)
    delta = float(np.max(np.abs(got - expected)))
    if not delta <= VERIFY_TOLERANCE:  # NaN fails too
        raise EngineError(f"{contents.path}: the ONNX graph differs from the MindSpore network by {delta:.2e} "
                          f"(tolerance {VERIFY_TOLERANCE:g}); use engine 'mindspore'")
    return delta


@dataclass(frozen=True)
class VerifiedGraph:
    """A cached ONNX file known to match the MindSpore network, and how closely."""

    path: Path
    max_delta: float
    built_now: bool


def verified_onnx(contents: CheckpointContents, arch: str, weights_sha256: str, threads: int) -> VerifiedGraph:
    """The cached, verified ONNX graph of these weights; built and checked first when absent."""
    from roadseg.model.onnx_graph import build_onnx_model

    path = cached_onnx_path(weights_sha256, arch)
    record = path.with_suffix(".json")
    if path.is_file() and record.is_file():
        try:
            return VerifiedGraph(path, float(json.loads(record.read_text())["max_delta"]), built_now=False)
        except (OSError, ValueError, KeyError, TypeError):
            logger.info("%s: unreadable verification record; verifying again", record)
    logger.info("building the ONNX graph of %s and checking it against MindSpore", contents.path)
    graph = build_onnx_model(contents.tensors, arch, str(contents.path)).SerializeToString()
    delta = verify_graph(graph, contents, arch, threads)
    with atomic_output(path, overwrite=True) as temp:
        temp.write_bytes(graph)
    with atomic_output(record, overwrite=True) as temp:
        temp.write_text(json.dumps({"max_delta": delta, "tolerance": VERIFY_TOLERANCE, "arch": arch,
                                    "weights_sha256": weights_sha256, "roadseg": __version__,
                                    "verify_shape": list(VERIFY_SHAPE)}, indent=2))
    return VerifiedGraph(path, delta, built_now=True)


class OnnxRunner:
    """Runs ``(N, 3, h, w)`` float32 batches through an ONNX Runtime session: ``(N, h, w)`` probabilities."""

    def __init__(self, graph: Path, threads: int) -> None:
        self.session = new_session(graph, threads)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0][:, 0]
