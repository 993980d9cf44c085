"""A loaded D-LinkNet ready for inference: numpy in, road probabilities out, on the chosen device."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from roadseg.convention import ZOO_CONVENTION, InputConvention
from roadseg.download import ProgressCallback
from roadseg.errors import WeightsError
from roadseg.registry import DEFAULT_WEIGHTS

logger = logging.getLogger(__name__)

#: Inputs per network call when the user does not choose: a single 1024x1024 input already keeps a
#: CPU's cores busy, while GPUs and NPUs need several to fill up.
DEFAULT_BATCH_SIZE = {"CPU": 1, "GPU": 4, "Ascend": 4}


@dataclass
class RoadModel:
    """A D-LinkNet Cell with the input convention of its weights and a batch size for its device."""

    network: object
    arch: str
    convention: InputConvention
    device: str
    weights_label: str
    batch_size: int = 1

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """``(N, 3, h, w)`` float32 network input -> ``(N, h, w)`` float32 road probabilities.

        Runs ``batch_size`` inputs per call; a short last chunk is padded to the full batch so GRAPH
        mode reuses the graph it compiled for that shape instead of compiling another.
        """
        from roadseg.mindspore_runtime import ms

        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise ValueError(f"expected an (N, 3, h, w) batch, got shape {batch.shape}")
        if batch.shape[2] % 32 or batch.shape[3] % 32:
            raise ValueError(f"network input height and width must be multiples of 32, got {batch.shape[2:]}")
        outputs = np.empty((batch.shape[0], batch.shape[2], batch.shape[3]), dtype=np.float32)
        for start in range(0, batch.shape[0], self.batch_size):
            chunk = batch[start:start + self.batch_size]
            count = chunk.shape[0]
            if count < self.batch_size and start > 0:
                chunk = np.concatenate([chunk, np.zeros((self.batch_size - count, *chunk.shape[1:]),
                                                        dtype=np.float32)])
            result = self.network(ms.Tensor(chunk)).asnumpy()
            outputs[start:start + count] = result[:count, 0]
        return outputs

    __call__ = forward

    def predict_rgb(self, rgb: np.ndarray) -> np.ndarray:
        """One ``(H, W, 3)`` RGB image in 0-255 (H, W multiples of 32) -> ``(H, W)`` probabilities."""
        return self.forward(self.convention.to_network(rgb)[None])[0]


def load_model(weights: str | Path = DEFAULT_WEIGHTS, arch: str | None = None, device: str = "auto", *,
               device_id: int = 0, batch_size: int | None = None, pynative: bool = False,
               allow_download: bool = True, progress: ProgressCallback | None = None) -> RoadModel:
    """Load weights (a known name, a zoo checkpoint or a roadseg checkpoint) onto a device.

    The architecture comes from ``arch``, else what the checkpoint records, else its tensors. The input
    convention comes from the registry for known weights, else the checkpoint, else the zoo's.
    """
    from roadseg.checkpoint import load_into, read_checkpoint
    from roadseg.devices import configure_mindspore
    from roadseg.network import ARCHITECTURES, build_network
    from roadseg.weights import resolve_weights

    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    resolved = resolve_weights(weights, allow_download=allow_download, progress=progress)
    contents = read_checkpoint(resolved.path)
    chosen_arch = arch or (resolved.entry.arch if resolved.entry else None) or contents.arch or "dlinknet34"
    if chosen_arch not in ARCHITECTURES:
        raise WeightsError(f"{resolved.path}: unknown architecture {chosen_arch!r}; "
                           f"choose one of {', '.join(ARCHITECTURES)}")
    convention = (resolved.entry.convention if resolved.entry else None) or contents.convention
    if convention is None:
        logger.info("%s records no input convention; using the zoo's (BGR, x/255*3.2-1.6)", resolved.path)
        convention = ZOO_CONVENTION
    used_device = configure_mindspore(device, device_id, pynative=pynative)
    network = build_network(chosen_arch)
    load_into(network, contents, chosen_arch)
    network.set_train(False)
    return RoadModel(network=network, arch=chosen_arch, convention=convention, device=used_device,
                     weights_label=resolved.label,
                     batch_size=batch_size or DEFAULT_BATCH_SIZE.get(used_device, 1))
