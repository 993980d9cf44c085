"""A loaded D-LinkNet ready for inference: numpy in, road probabilities out, on the chosen device."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from roadseg.errors import BadParameterError, EngineError, WeightsError
from roadseg.interrupts import uninterruptible
from roadseg.model.checkpoint import CheckpointContents
from roadseg.model.convention import NETWORK_STRIDE, ZOO_CONVENTION, InputConvention
from roadseg.model.download import ProgressCallback
from roadseg.model.registry import DEFAULT_WEIGHTS

if TYPE_CHECKING:
    from roadseg.inference.options import PredictOptions

logger = logging.getLogger(__name__)

#: Inputs per network call when the user does not choose: a single 1024x1024 input already keeps a
#: CPU's cores busy, while GPUs and NPUs need several to fill up.
DEFAULT_BATCH_SIZE = {"CPU": 1, "GPU": 4, "Ascend": 4}


ENGINES = ("auto", "mindspore", "onnxruntime")
#: The architectures roadseg builds (:data:`roadseg.model.network.ARCHITECTURES` has their classes).
ARCHITECTURE_NAMES = ("dlinknet34", "dlinknet50")


class MindSporeRunner:
    """Runs ``(N, 3, h, w)`` float32 batches through a MindSpore Cell: ``(N, h, w)`` probabilities."""

    def __init__(self, network) -> None:
        self.network = network

    @uninterruptible
    def __call__(self, batch: np.ndarray) -> np.ndarray:
        from roadseg.model.mindspore_runtime import ms

        return self.network(ms.Tensor(batch)).asnumpy()[:, 0]


@dataclass
class RoadModel:
    """A D-LinkNet on one engine, with the input convention of its weights and a batch size for its device.

    ``runner`` maps an ``(N, 3, h, w)`` batch to ``(N, h, w)`` probabilities; ``network`` is the MindSpore
    Cell (None on the ONNX Runtime engine), which training and MindSpore's exporter need.
    """

    network: object
    arch: str
    convention: InputConvention
    device: str
    weights_label: str
    batch_size: int = 1
    engine: str = "mindspore"
    runner: Callable[[np.ndarray], np.ndarray] | None = None
    threads: int = 1
    gsd: float | None = None
    """Metres per pixel of the imagery the weights were trained on (None: not recorded)."""

    def __post_init__(self) -> None:
        if self.runner is None:
            self.runner = MindSporeRunner(self.network)

    def forward(self, batch: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """``(N, 3, h, w)`` float32 network input -> ``(N, h, w)`` float32 road probabilities.

        Runs ``batch_size`` inputs per network call (default the model's own); a short last chunk is
        padded to the full batch so GRAPH mode reuses the graph it compiled for that shape instead of
        compiling another.
        """
        per_call = batch_size or self.batch_size
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise ValueError(f"expected an (N, 3, h, w) batch, got shape {batch.shape}")
        if batch.shape[2] % NETWORK_STRIDE or batch.shape[3] % NETWORK_STRIDE:
            raise ValueError(f"network input height and width must be multiples of {NETWORK_STRIDE}, "
                             f"got {batch.shape[2:]}")
        outputs = np.empty((batch.shape[0], batch.shape[2], batch.shape[3]), dtype=np.float32)
        for start in range(0, batch.shape[0], per_call):
            chunk = batch[start:start + per_call]
            count = chunk.shape[0]
            if count < per_call and start > 0:
                chunk = np.concatenate([chunk, np.zeros((per_call - count, *chunk.shape[1:]), dtype=np.float32)])
            outputs[start:start + count] = self.runner(chunk)[:count]
        return outputs

    __call__ = forward

    def predict(self, image: np.ndarray, options: PredictOptions | None = None, *,
                valid: np.ndarray | None = None) -> np.ndarray:
        """Road probabilities of an ``(H, W, 3)`` RGB image in 0-255 of any size: sliding windows,
        blending and TTA as ``options`` say (see :func:`roadseg.inference.predict.predict_array`)."""
        from roadseg.inference.predict import predict_array

        return predict_array(self, image, options, valid=valid)

    def predict_rgb(self, rgb: np.ndarray) -> np.ndarray:
        """One ``(H, W, 3)`` RGB image in 0-255 (H, W multiples of 32) -> ``(H, W)`` probabilities."""
        return self.forward(self.convention.to_network(rgb)[None])[0]


@dataclass(frozen=True)
class ModelRuntime:
    """How the network runs once loaded: the ``engine`` (``auto`` runs CPU work on ONNX Runtime, the
    rest on MindSpore), which device of its kind (``device_id``), how many CPU ``threads`` (default:
    the CPUs this process may use), and MindSpore's PYNATIVE mode instead of a compiled graph
    (``pynative``, for debugging). The batch size belongs to the prediction
    (:class:`~roadseg.inference.options.PredictOptions`); the model only knows its device's default."""

    device_id: int = 0
    engine: str = "auto"
    threads: int | None = None
    pynative: bool = False

    def __post_init__(self) -> None:
        if self.device_id < 0:
            raise BadParameterError("device_id", f"must be >= 0, got {self.device_id}")
        if self.engine not in ENGINES:
            raise BadParameterError("engine", f"must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.threads is not None and self.threads < 1:
            raise BadParameterError("threads", f"must be at least 1, got {self.threads}")


@dataclass(frozen=True)
class ChosenWeights:
    """A checkpoint's tensors with the architecture and input convention roadseg will use for them."""

    contents: CheckpointContents
    arch: str
    convention: InputConvention
    label: str
    gsd: float | None = None


def choose_weights(weights: str | Path, arch: str | None, *, allow_download: bool = True,
                   progress: ProgressCallback | None = None) -> ChosenWeights:
    """Read weights; the architecture is ``arch``, else the registry's, the checkpoint's, or dlinknet34.

    The input convention comes from the registry for known weights, else the checkpoint, else the zoo's;
    the training GSD from the registry (a known name, or a file under its published name), else the
    checkpoint's record, else None (unknown).
    """
    from roadseg.model.checkpoint import read_checkpoint
    from roadseg.model.registry import entry_for_file
    from roadseg.model.weights import resolve_weights

    resolved = resolve_weights(weights, allow_download=allow_download, progress=progress)
    contents = read_checkpoint(resolved.path)
    chosen_arch = arch or (resolved.entry.arch if resolved.entry else None) or contents.arch or "dlinknet34"
    if chosen_arch not in ARCHITECTURE_NAMES:
        raise WeightsError(f"{resolved.path}: unknown architecture {chosen_arch!r}; "
                           f"choose one of {', '.join(ARCHITECTURE_NAMES)}")
    convention = (resolved.entry.convention if resolved.entry else None) or contents.convention
    if convention is None:
        logger.info("%s records no input convention; using the zoo's (BGR, x/255*3.2-1.6)", resolved.path)
        convention = ZOO_CONVENTION
    entry = resolved.entry or entry_for_file(resolved.path)
    gsd = (entry.gsd if entry else None) or contents.gsd
    return ChosenWeights(contents, chosen_arch, convention, resolved.label, gsd)


def resolve_engine(engine: str, device: str) -> str:
    """``auto`` -> ONNX Runtime for CPU work when it is installed, else MindSpore; refuse impossible pairs."""
    from roadseg.model.devices import canonical_device, resolve_device
    from roadseg.model.onnx_engine import onnxruntime_available

    if engine not in ENGINES:
        raise EngineError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine == "mindspore":
        return engine
    requested = canonical_device(device)
    if engine == "onnxruntime":
        if requested not in ("auto", "CPU"):
            raise EngineError(f"engine onnxruntime runs on the CPU, not {requested}; use device CPU or "
                              "engine mindspore")
        if not onnxruntime_available():
            raise EngineError("engine onnxruntime needs the onnx and onnxruntime packages: "
                              "pip install onnx onnxruntime")
        return engine
    on_cpu = requested == "CPU" or (requested == "auto" and resolve_device("auto") == "CPU")
    return "onnxruntime" if on_cpu and onnxruntime_available() else "mindspore"


def load_model(weights: str | Path = DEFAULT_WEIGHTS, arch: str | None = None, device: str = "auto", *,
               runtime: ModelRuntime | None = None, allow_download: bool = True,
               progress: ProgressCallback | None = None) -> RoadModel:
    """Load weights (a known name, a zoo checkpoint or a roadseg checkpoint) onto an engine and device.

    See :func:`choose_weights` for the architecture and input convention, and :class:`ModelRuntime`
    for the engine, threads and mode. ONNX Runtime runs a graph verified against MindSpore first
    (:mod:`roadseg.model.onnx_engine`).
    """
    from roadseg.model.cpu_budget import usable_cpu_count

    runtime = runtime or ModelRuntime()
    threads = runtime.threads or usable_cpu_count()
    chosen = choose_weights(weights, arch, allow_download=allow_download, progress=progress)
    described = dict(arch=chosen.arch, convention=chosen.convention, weights_label=chosen.label, threads=threads,
                     gsd=chosen.gsd)
    if resolve_engine(runtime.engine, device) == "onnxruntime":
        runner = _onnx_runner(chosen.contents, chosen.arch, threads, fall_back=runtime.engine == "auto")
        if runner is not None:
            return RoadModel(network=None, device="CPU", batch_size=DEFAULT_BATCH_SIZE["CPU"],
                             engine="onnxruntime", runner=runner, **described)
    from roadseg.model.checkpoint import inference_network
    from roadseg.model.devices import configure_mindspore

    used_device = configure_mindspore(device, runtime.device_id, pynative=runtime.pynative, threads=threads)
    return RoadModel(network=inference_network(chosen.contents, chosen.arch), device=used_device,
                     batch_size=DEFAULT_BATCH_SIZE.get(used_device, 1), **described)


def _onnx_runner(contents, arch: str, threads: int, *, fall_back: bool):
    """The ONNX Runtime runner of verified weights; None (MindSpore takes over) if ``fall_back`` and it fails."""
    from roadseg.model.download import sha256_of
    from roadseg.model.onnx_engine import OnnxRunner, verified_onnx

    try:
        graph = verified_onnx(contents, arch, sha256_of(contents.path), threads)
    except EngineError as error:
        if not fall_back:
            raise
        logger.warning("%s; running on MindSpore instead", error)
        return None
    return OnnxRunner(graph.path, threads)

