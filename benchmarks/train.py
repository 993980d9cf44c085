"""Training step time at 512x512 batch 2 on the CPU: ``roadseg train`` against a bare MindSpore step.

Run: ``.venv/bin/python benchmarks/train.py [--steps 8]``. Both sides train DLinkNet34 with the same
BCE + Dice loss and Adam, in GRAPH mode, in this one process. roadseg's figure is the time between
consecutive steps as its progress callback sees them, so it includes reading, augmenting and batching
the images; the baseline is ``mindspore.value_and_grad`` + Adam under ``mindspore.jit`` on tensors
already in memory. The issue's target: roadseg at most 10 % slower.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def _write_data(directory: Path, count: int, size: int) -> None:
    import rasterio

    rng = np.random.default_rng(0)
    for i in range(count):
        image = rng.integers(0, 255, (3, size, size), dtype=np.uint8)
        mask = np.zeros((1, size, size), np.uint8)
        mask[:, size // 3:size // 3 + 12] = 255
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for path, array, driver in ((directory / f"{i}_sat.jpg", image, "JPEG"),
                                        (directory / f"{i}_mask.png", mask, "PNG")):
                with rasterio.open(path, "w", driver=driver, width=size, height=size, count=array.shape[0],
                                   dtype="uint8") as dst:
                    dst.write(array)


def bench_roadseg(data: Path, out: Path, steps: int, batch: int) -> list[float]:
    from roadseg.train.loop import StepEvent, TrainConfig, run_training

    seconds: list[float] = []
    config = TrainConfig(output=str(out), data=str(data), val_split=0.0, epochs=1, batch_size=batch,
                         device="CPU", workers=2, steps_per_epoch=steps + 1)
    run_training(config, progress=lambda e: seconds.append(e.seconds) if isinstance(e, StepEvent) else None)
    return seconds[1:]  # the first step includes graph compilation


def bench_bare(steps: int, batch: int, size: int) -> list[float]:
    from roadseg.model.mindspore_runtime import ms, nn
    from roadseg.model.network import build_network
    from roadseg.train.losses import BceDiceLoss

    ms.set_seed(0)
    network = build_network("dlinknet34")
    network.set_train(True)
    loss_fn = BceDiceLoss()
    optimizer = nn.Adam(network.trainable_params(), learning_rate=2e-4)

    def forward(x, y):
        return loss_fn(network(x), y)

    grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)

    @ms.jit
    def step(x, y):
        loss, grads = grad_fn(x, y)
        optimizer(grads)
        return loss

    rng = np.random.default_rng(0)
    x = ms.Tensor(rng.normal(size=(batch, 3, size, size)).astype(np.float32))
    y = ms.Tensor((rng.random((batch, 1, size, size)) < 0.05).astype(np.float32))
    step(x, y).asnumpy()  # compile
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        step(x, y).asnumpy()
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6, help="timed steps per side (after one warm-up)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", type=int, default=2)
    args = parser.parse_args()

    from roadseg.model.mindspore_runtime import ms

    ms.set_device("CPU")
    ms.set_context(mode=ms.GRAPH_MODE)
    with tempfile.TemporaryDirectory() as temp:
        data = Path(temp) / "data"
        data.mkdir()
        _write_data(data, args.batch * (args.steps + 1), args.size)
        bare = bench_bare(args.steps, args.batch, args.size)
        ours = bench_roadseg(data, Path(temp) / "run", args.steps, args.batch)
    rows = [("bare value_and_grad + jit (tensors in memory)", bare),
            ("roadseg train (TrainOneStepCell, data loading included)", ours)]
    print(f"DLinkNet34 training step, {args.size}x{args.size}, batch {args.batch}, CPU, {args.steps} timed steps")
    print(f"{'variant':58s} {'median s':>9s} {'min s':>7s} {'max s':>7s}")
    for name, values in rows:
        print(f"{name:58s} {statistics.median(values):9.3f} {min(values):7.3f} {max(values):7.3f}")
    ratio = statistics.median(ours) / statistics.median(bare)
    print(f"roadseg / bare: {ratio:.3f} ({(ratio - 1) * 100:+.1f} %; target at most +10 %)")


if __name__ == "__main__":
    main()
