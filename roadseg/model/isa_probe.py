"""A short convolution workload, timed in a fresh process under one oneDNN ISA setting.

Run by :mod:`roadseg.model.cpu_isa` as ``python -m roadseg.model.isa_probe`` with ``ONEDNN_MAX_CPU_ISA`` set (or
not) in its environment. It prints one JSON line, ``{"seconds": ...}``: the best of three runs of
convolutions shaped like D-LinkNet's (3x3 on 64 channels at high resolution, 3x3 on 256 channels at
low resolution, a 1x1 reduction), after one warm-up run. This is the one module that imports
MindSpore directly: it must see the ISA its parent chose, not settle one itself.
"""

from __future__ import annotations

import json
import time

import numpy as np


def main() -> None:
    import mindspore as ms

    ms.set_device("CPU")
    ms.set_context(mode=ms.PYNATIVE_MODE)
    rng = np.random.default_rng(0)
    layers = [(ms.nn.Conv2d(64, 64, 3, pad_mode="pad", padding=1), (1, 64, 96, 96)),
              (ms.nn.Conv2d(256, 256, 3, pad_mode="pad", padding=1), (1, 256, 24, 24)),
              (ms.nn.Conv2d(256, 64, 1), (1, 256, 48, 48))]
    inputs = [ms.Tensor(rng.random(shape, dtype=np.float32)) for _, shape in layers]

    def run() -> float:
        started = time.perf_counter()
        for (layer, _), tensor in zip(layers, inputs):
            layer(tensor).asnumpy()
        return time.perf_counter() - started

    run()
    print(json.dumps({"seconds": min(run() for _ in range(3))}), flush=True)


if __name__ == "__main__":
    main()
