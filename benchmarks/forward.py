"""Forward-pass speed and memory of D-LinkNet34 on one device, raw Cell against roadseg's model API.

Each case runs in its own subprocess so its peak RSS is its own: the raw GRAPH-mode Cell call (a
network-ready tensor in, numpy out), roadseg's ``RoadModel.predict_rgb`` (uint8 RGB in, probability map
out, channel order and scaling included) and the Cell in PYNATIVE mode. Target: the API path within 5 %
of the raw call measured in the same run.

    python benchmarks/forward.py [--size 1024] [--repeats 5] [--device CPU]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile

from engines import timed_calls  # benchmarks/engines.py: one timing loop for both  # noqa: E402


def run_case(case: str, size: int, repeats: int, device: str, weights: str) -> dict:
    import numpy as np

    from roadseg.model.loaded import ModelRuntime, load_model

    model = load_model(weights, device=device,
                       runtime=ModelRuntime(engine="mindspore", pynative=(case == "pynative")))
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    if case == "api":
        call = lambda: model.predict_rgb(rgb)  # noqa: E731
    else:
        from roadseg.model.mindspore_runtime import ms

        tensor = ms.Tensor(model.convention.to_network(rgb)[None])
        call = lambda: model.network(tensor).asnumpy()  # noqa: E731
    timing = timed_calls(call, repeats)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"case": case, **timing, "min_s": min(timing["times"]), "peak_rss_mb": peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="CPU")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.size, args.repeats, args.device, args.weights)))
        return

    from roadseg.model.checkpoint import save_checkpoint
    from roadseg.model.convention import ZOO_CONVENTION
    from roadseg.model.network import DLinkNet34

    with tempfile.TemporaryDirectory() as work:
        weights = os.path.join(work, "bench.ckpt")
        save_checkpoint(DLinkNet34(), weights, arch="dlinknet34", convention=ZOO_CONVENTION)
        results = {}
        for case in ("raw", "api", "pynative"):
            out = subprocess.run([sys.executable, __file__, "--case", case, "--size", str(args.size),
                                  "--repeats", str(args.repeats), "--device", args.device, "--weights", weights],
                                 capture_output=True, text=True, check=True).stdout
            results[case] = json.loads(out.strip().splitlines()[-1])
    print(f"D-LinkNet34 forward, {args.size}x{args.size}, batch 1, {args.device}, {os.cpu_count()} cores, "
          f"median of {args.repeats}")
    print(f"{'path':<34}{'first call s':>14}{'median s':>10}{'min s':>8}{'peak RSS MB':>13}{'vs raw':>8}")
    labels = {"raw": "raw Cell, GRAPH", "api": "roadseg predict_rgb, GRAPH", "pynative": "raw Cell, PYNATIVE"}
    raw = results["raw"]["median_s"]
    for case, row in results.items():
        print(f"{labels[case]:<34}{row['first_s']:>14.2f}{row['median_s']:>10.2f}{row['min_s']:>8.2f}"
              f"{row['peak_rss_mb']:>13.0f}{row['median_s'] / raw:>8.3f}")
    overhead = results["api"]["median_s"] / raw - 1
    verdict = "within" if overhead <= 0.05 else "OVER"
    print(f"roadseg API overhead vs raw call: {overhead:+.1%} ({verdict} the 5 % target)")


if __name__ == "__main__":
    main()
