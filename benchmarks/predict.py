"""`roadseg predict`: TTA/tiling overhead, seconds per megapixel, and peak memory against raster size.

Run: ``.venv/bin/python benchmarks/predict.py`` (about 10 minutes on 2 CPU cores, most of it the
8192x8192 memory case; ``--large 4096`` or ``--skip-large`` for a quicker run).

Targets (issue 3), all measured in this run:
- overhead: ``predict_file`` with ``--tta d4`` on a 1024x1024 tile <= 1.15 x (8 x one bare 1024x1024
  forward of the same model);
- memory: peak RSS for an 8192x8192 uint8 RGB GeoTIFF (overlap 0.25) <= 1.25 x the peak for a 1024x1024
  input, and below 3 GB. Measured with ``--tta none`` to keep it to minutes (TTA changes the number of
  forwards, not the buffers that grow with the raster);
- seconds per megapixel for ``--tta none``, ``flip`` and ``d4``.

Each memory case runs in its own subprocess (``ru_maxrss`` of that process). Without ``--weights``
a DLinkNet34 with random weights is saved to a temporary checkpoint: speed and memory do not depend on
the values of the weights.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OVERHEAD_TARGET = 1.15
MEMORY_RATIO_TARGET = 1.25
MEMORY_LIMIT_MB = 3 * 1024


def random_checkpoint(folder: Path) -> Path:
    from roadseg.model.checkpoint import save_checkpoint
    from roadseg.model.convention import ZOO_CONVENTION
    from roadseg.model.mindspore_runtime import ms
    from roadseg.model.network import DLinkNet34

    ms.set_seed(0)
    path = folder / "random-dlinknet34.ckpt"
    save_checkpoint(DLinkNet34(), path, arch="dlinknet34", convention=ZOO_CONVENTION)
    return path


def write_scene(path: Path, size: int, seed: int = 0) -> Path:
    """A tiled uint8 RGB GeoTIFF of ``size`` x ``size`` written in strips (never whole in memory)."""
    import rasterio
    from affine import Affine

    rng = np.random.default_rng(seed)
    profile = {"driver": "GTiff", "count": 3, "dtype": "uint8", "height": size, "width": size,
               "crs": "EPSG:32618", "transform": Affine(0.5, 0, 500000, 0, -0.5, 4000000),
               "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate"}
    with rasterio.open(path, "w", **profile) as dataset:
        for row in range(0, size, 512):
            rows = min(512, size - row)
            # smooth-ish texture so deflate and the network see something image-like
            base = rng.integers(0, 256, (3, rows // 8 + 1, size // 8 + 1), dtype=np.uint8)
            block = np.repeat(np.repeat(base, 8, axis=1), 8, axis=2)[:, :rows, :size]
            dataset.write(block, window=rasterio.windows.Window(0, row, size, rows))
    return path


def median_seconds(func, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def child_memory(args: argparse.Namespace) -> None:
    """Subprocess body: load the model, predict one file, print peak RSS (MB) and seconds as JSON."""
    from roadseg.inference.options import PredictOptions
    from roadseg.inference.predict import predict_file
    from roadseg.model.loaded import load_model

    model = load_model(args.weights, device="CPU")
    with tempfile.TemporaryDirectory() as out:
        result = predict_file(model, args.child_memory, out, PredictOptions(window=1024, overlap=0.25, tta=args.tta))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_mb": peak_mb, "seconds": result.seconds, "windows": result.windows_run}))


def measure_memory(weights: Path, scene: Path, tta: str) -> dict:
    command = [sys.executable, __file__, "--child-memory", str(scene), "--weights", str(weights), "--tta", tta]
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", type=Path, default=None, help="checkpoint (default: random weights)")
    parser.add_argument("--large", type=int, default=8192, help="side of the large memory case")
    parser.add_argument("--skip-large", action="store_true", help="skip the large memory case")
    parser.add_argument("--repeat", type=int, default=3, help="repeats of each timing (median)")
    parser.add_argument("--child-memory", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--tta", default="none", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_memory is not None:
        child_memory(args)
        return

    from roadseg.inference.options import OutputOptions, PredictOptions
    from roadseg.inference.predict import predict_file
    from roadseg.model.loaded import load_model

    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        weights = args.weights or random_checkpoint(folder)
        tile = write_scene(folder / "tile1024.tif", 1024)
        model = load_model(weights, device="CPU")
        print(f"model: {model.arch} on {model.device}, batch size {model.batch_size}, "
              f"weights {model.weights_label}; {os.cpu_count()} CPU(s)")

        x = model.convention.to_network(np.zeros((1024, 1024, 3), np.uint8))[None]
        model.forward(x)  # compile
        variants = {"none": 1, "flip": 4, "d4": 8}
        times: dict[str, list[float]] = {"forward": [], **{tta: [] for tta in variants}}
        ratios: dict[str, list[float]] = {tta: [] for tta in variants}
        for _ in range(args.repeat):  # interleaved, so load from other processes hits every case alike
            forward = median_seconds(lambda: model.forward(x), 2)
            times["forward"].append(forward)
            for tta, count in variants.items():
                seconds = median_seconds(
                    lambda tta=tta: predict_file(model, tile, folder / f"out-{tta}",
                                                 PredictOptions(window=1024, overlap=0.25, tta=tta),
                                                 output=OutputOptions(save_prob=True, overwrite=True)), 1)
                times[tta].append(seconds)
                ratios[tta].append(seconds / (count * forward))

        print(f"\n== speed (median of {args.repeat} interleaved rounds; 1024x1024 = 1.05 MP) ==")
        print(f"{'case':<46} {'seconds':>8} {'/ bare forwards':>16} {'s/MP':>7}")
        forward = statistics.median(times["forward"])
        print(f"{'bare forward 1024x1024 (1 input)':<46} {forward:>8.2f} {'':>16} {forward / 1.048576:>7.2f}")
        for tta in variants:
            seconds = statistics.median(times[tta])
            print(f"{'predict_file --tta ' + tta + ' (mask + prob)':<46} {seconds:>8.2f} "
                  f"{statistics.median(ratios[tta]):>16.3f} {seconds / 1.048576:>7.2f}")
        overhead = statistics.median(ratios["d4"])
        print(f"overhead of d4 predict_file vs 8 bare forwards: {overhead:.3f} "
              f"(target <= {OVERHEAD_TARGET}: {'PASS' if overhead <= OVERHEAD_TARGET else 'FAIL'})")

        print("\n== peak RSS, one subprocess per case, --tta none, window 1024, overlap 0.25 ==")
        small = measure_memory(weights, tile, "none")
        print(f"{'1024x1024':>12}: {small['peak_mb']:8.0f} MB  ({small['windows']} windows, "
              f"{small['seconds']:.1f} s)")
        if args.skip_large:
            print("large case skipped (--skip-large)")
            return
        large_path = write_scene(folder / f"scene{args.large}.tif", args.large)
        large = measure_memory(weights, large_path, "none")
        ratio = large["peak_mb"] / small["peak_mb"]
        size = f"{args.large}x{args.large}"
        print(f"{size:>12}: {large['peak_mb']:8.0f} MB  ({large['windows']} windows, {large['seconds']:.1f} s, "
              f"{large['seconds'] / (args.large ** 2 / 2 ** 20):.2f} s/MP)")
        verdict = ratio <= MEMORY_RATIO_TARGET and large["peak_mb"] < MEMORY_LIMIT_MB
        print(f"ratio {ratio:.3f} (target <= {MEMORY_RATIO_TARGET} and < {MEMORY_LIMIT_MB} MB: "
              f"{'PASS' if verdict else 'FAIL'})")


if __name__ == "__main__":
    main()
