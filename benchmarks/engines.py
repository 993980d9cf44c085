"""CPU inference engines side by side: ONNX Runtime and MindSpore (each transposed-conv formulation and
each oneDNN ISA), against the machine's compute floor, and whole ``roadseg predict --tta d4`` runs.

    python benchmarks/engines.py [--size 1024] [--repeats 3] [--predict-size 2048] [--skip-predict]

Everything is measured in this one run, each case in its own process (oneDNN's ISA is fixed when
MindSpore loads; peak memory and thread pools stay the case's own). Weights are random zoo-layout
tensors: speed does not depend on their values. Targets (issue 12):
- the default ``roadseg predict`` on the CPU within 1.3x of bare ONNX Runtime forwards of the same
  work; tiling, TTA, blending and I/O within 15 % of each engine's own bare forwards;
- MindSpore with no user setting within 1.1x of the best ISA measured, and its transposed
  convolutions at or below the zoo formulation's (``conv3d``) cost;
- two processes side by side slowed no more than their share of the cores.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from predict import random_checkpoint  # benchmarks/predict.py: random DinkNet34 weights  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: Multiply-adds x 2 of one DinkNet34 forward at 1024x1024 (../shared/reference/README.md).
GFLOP_PER_1024 = 212.6
PREDICT_TARGET, OVERHEAD_TARGET, ISA_TARGET = 1.3, 1.15, 1.1


# --- cases, each run in a child process --------------------------------------------------------------

def timed_calls(call, repeats: int) -> dict:
    started = time.perf_counter()
    call()
    first = time.perf_counter() - started
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return {"first_s": first, "times": times, "median_s": statistics.median(times)}


def case_forward(engine: str, form: str, batch: int, size: int, repeats: int, weights: str) -> dict:
    """One engine's forward of a (batch, 3, size, size) input: per-call seconds."""
    x = np.random.default_rng(0).uniform(-1.6, 1.6, (batch, 3, size, size)).astype(np.float32)
    if engine == "onnxruntime":
        from roadseg.model.loaded import ModelRuntime, load_model

        model = load_model(weights, device="CPU", runtime=ModelRuntime(engine="onnxruntime"))
        run = model.runner
    else:
        from roadseg.model.checkpoint import inference_network, read_checkpoint
        from roadseg.model.devices import configure_mindspore
        from roadseg.model.mindspore_runtime import CPU_ISA, ms

        configure_mindspore("CPU")
        network = inference_network(read_checkpoint(weights), "dlinknet34", form)
        tensor = ms.Tensor(x)

        def run(_batch):
            return network(tensor).asnumpy()
        print(json.dumps({"isa": CPU_ISA.isa}), file=sys.stderr)
    return timed_calls(lambda: run(x), repeats)


def case_tconv(repeats: int) -> dict:
    """The five stride-2 transposed convs of a 1024x1024 DinkNet34 forward, batch 1, per formulation.

    All formulations in one process, timed in turn (A B C A B C ...), so drift hits them alike; the
    figure is the summed seconds of the five layers per forward.
    """
    from roadseg.model.devices import configure_mindspore
    from roadseg.model.mindspore_runtime import ms
    from roadseg.model.network import TRANSPOSED_CONV_FORMS, transposed_conv_cell

    configure_mindspore("CPU")
    layers = [(128, 128, 3, 32), (64, 64, 3, 64), (32, 32, 3, 128), (16, 16, 3, 256), (64, 32, 4, 512)]
    rng = np.random.default_rng(0)
    inputs = [ms.Tensor(rng.random((1, cin, size, size), dtype=np.float32)) for cin, _, _, size in layers]
    cells = {form: [transposed_conv_cell(form, cin, cout, k) for cin, cout, k, _ in layers]
             for form in TRANSPOSED_CONV_FORMS}

    def run(form: str) -> None:
        for cell, tensor in zip(cells[form], inputs):
            cell(tensor).asnumpy()

    times: dict[str, list[float]] = {form: [] for form in cells}
    for form in cells:
        run(form)  # compile
    for _ in range(repeats):
        for form in cells:
            started = time.perf_counter()
            run(form)
            times[form].append(time.perf_counter() - started)
    return {form: statistics.median(values) for form, values in times.items()}


def case_gemm(repeats: int) -> dict:
    """float32 GEMM rates: numpy's BLAS and ONNX Runtime's MatMul on 4096x4096 (GFLOP/s)."""
    import onnx
    from onnx import TensorProto, helper

    from roadseg.model.cpu_budget import usable_cpu_count
    from roadseg.model.onnx_engine import new_session

    n = 4096
    a, b = (np.random.default_rng(i).random((n, n), dtype=np.float32) for i in (1, 2))
    numpy_s = timed_calls(lambda: a @ b, repeats)["median_s"]
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "gemm",
                              [helper.make_tensor_value_info(name, TensorProto.FLOAT, [n, n]) for name in "ab"],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    session = new_session(onnx.ModelProto.SerializeToString(model), usable_cpu_count())
    ort_s = timed_calls(lambda: session.run(None, {"a": a, "b": b}), repeats)["median_s"]
    flop = 2 * n ** 3 / 1e9
    return {"numpy_gflops": flop / numpy_s, "onnxruntime_gflops": flop / ort_s}


# --- the parent: spawn cases, print tables ----------------------------------------------------------------

def child(args: list[str], env: dict[str, str] | None = None, timeout: float = 1800) -> dict | None:
    """Run this script with ``--case`` args in a fresh process; its last stdout line is JSON (None on timeout)."""
    try:
        out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True,
                             env=env, timeout=timeout, cwd=ROOT).stdout
    except subprocess.TimeoutExpired:
        return None
    return json.loads(out.strip().splitlines()[-1])


def cpu_facts() -> dict:
    from roadseg.model.cpu_budget import usable_cpu_count
    from roadseg.model.cpu_isa import cpu_identity

    identity = cpu_identity()
    shown = [flag for flag in identity.flags if flag in ("avx2", "fma", "avx512f", "avx512bw", "avx512vl",
                                                         "avx512_vnni", "avx512_bf16", "amx_tile", "avx_vnni")]
    mhz = 0.0
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("cpu MHz"):
            mhz = float(line.split(":")[1])
            break
    cores = usable_cpu_count()
    per_cycle = 32  # an estimate: two 256-bit FMA pipes, 8 float32 lanes x 2 FLOP each, per core
    return {"model": identity.model, "flags": shown, "cores": cores, "mhz": mhz,
            "peak_gflops": cores * per_cycle * mhz / 1000, "per_cycle": per_cycle}


def write_scene(path: Path, size: int) -> Path:
    """A uint8 RGB GeoTIFF: the DeepGlobe sample tiled when ../shared/data has it, else noise."""
    import rasterio
    from affine import Affine

    sample = ROOT.parent / "shared" / "data" / "deepglobe" / "train" / "104_sat.jpg"
    if sample.is_file():
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with rasterio.open(sample) as src:
                tile = src.read()
    else:
        tile = np.random.default_rng(0).integers(0, 256, (3, 1024, 1024), dtype=np.uint8)
    reps = math.ceil(size / tile.shape[1])
    image = np.tile(tile, (1, reps, reps))[:, :size, :size]
    profile = {"driver": "GTiff", "count": 3, "dtype": "uint8", "height": size, "width": size,
               "crs": "EPSG:32618", "transform": Affine(0.5, 0, 500000, 0, -0.5, 4000000), "tiled": True,
               "blockxsize": 256, "blockysize": 256, "compress": "deflate"}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(image)
    return path


def time_predict(scene: Path, weights: Path, engine: str, out_dir: Path) -> dict:
    command = [sys.executable, "-m", "roadseg.cli", "predict", str(scene), "-o", str(out_dir), "--weights",
               str(weights), "--engine", engine, "--tta", "d4", "--overwrite", "--json"]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    wall = time.perf_counter() - started
    summary = json.loads(result.stdout)
    return {"wall_s": wall, "windows": summary["windows_run"], "engine": summary["model"]["engine"]}


def interleaved(cases: dict[str, tuple[list[str], dict | None]], rounds: int, timeout: float) -> dict[str, dict]:
    """Run each case once per round, in turn (A B C, A B C, ...); pool the timed calls of all rounds.

    A case that times out in round one is not run again (its entry is None).
    """
    pooled: dict[str, dict | None] = {}
    for round_index in range(rounds):
        for key, (args, env) in cases.items():
            if round_index and pooled.get(key) is None:
                continue
            row = child(args, env=env, timeout=timeout)
            if row is None:
                pooled[key] = None
                continue
            if key not in pooled:
                pooled[key] = {"first_s": row["first_s"], "times": []}
            pooled[key]["times"] += row["times"]
    for row in pooled.values():
        if row is not None:
            row["median_s"] = statistics.median(row["times"])
    return pooled


def forward_table(weights: Path, size: int, repeats: int, rounds: int, floor: float) -> dict[str, dict]:
    """Forward rows per engine, formulation and batch, interleaved over ``rounds``; prints the table."""
    gflop = GFLOP_PER_1024 * (size / 1024) ** 2
    cases = {f"{engine}/{form}/{batch}": (["--case", "forward", engine, form, str(batch), str(size), str(repeats),
                                           str(weights)], None)
             for engine, form, batch in [("onnxruntime", "-", 1), ("onnxruntime", "-", 2), ("mindspore", "conv3d", 1),
                                         ("mindspore", "direct", 1), ("mindspore", "phase", 1),
                                         ("mindspore", "conv3d", 2)]}
    rows = interleaved(cases, rounds, timeout=900)
    print(f"\nForward, DinkNet34 {size}x{size}: median of {rounds} rounds x {repeats} calls, interleaved")
    print(f"{'engine':<13}{'transposed conv':<17}{'batch':>6}{'first s':>9}{'s/image':>9}{'GFLOP/s':>9}"
          f"{'vs GEMM':>9}")
    for key, row in rows.items():
        engine, form, batch = key.split("/")
        if row is None:
            print(f"{engine:<13}{form:<17}{batch:>6}{'> 900 s':>9}")
            continue
        row["per_image_s"] = row["median_s"] / int(batch)
        rate = gflop / row["per_image_s"]
        print(f"{engine:<13}{form:<17}{batch:>6}{row['first_s']:>9.2f}{row['per_image_s']:>9.2f}{rate:>9.0f}"
              f"{rate / floor:>9.2f}")
    print("GFLOP/s counts a direct convolution's multiply-adds; kernels that do fewer (Winograd) can exceed GEMM")
    tconv = child(["--case", "tconv", str(repeats * rounds)])
    zoo = tconv["conv3d"]
    shown = ", ".join(f"{form} {seconds:.3f} s ({seconds / zoo:.2f}x the zoo's conv3d)"
                      for form, seconds in tconv.items())
    print(f"The five transposed convolutions alone (1024x1024 forward, batch 1, interleaved): {shown}")
    return rows


def isa_table(weights: Path, size: int, repeats: int, rounds: int) -> None:
    """MindSpore's direct forward under each ISA setting and under roadseg's own decision, interleaved."""
    base = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA",
                                                              "ROADSEG_CPU_ISA_CHOICE")}
    args = ["--case", "forward", "mindspore", "conv3d", "1", str(size), str(repeats), str(weights)]
    cases = {"roadseg's choice (no setting)": (args, base)}
    for isa in ("AVX2", "AVX512_CORE", "ALL"):
        cases[f"ONEDNN_MAX_CPU_ISA={isa}"] = (args, dict(base, ONEDNN_MAX_CPU_ISA=isa))
    limit = 90.0
    rows = interleaved(cases, rounds, timeout=limit)
    print(f"\nMindSpore forward {size}x{size} by oneDNN ISA (default transposed conv, batch 1; ALL is oneDNN's "
          f"own choice), {rounds} rounds x {repeats} calls, interleaved")
    for label, row in rows.items():
        shown = f"> {limit:.0f} s a process (stopped)" if row is None else f"{row['median_s']:.2f} s"
        print(f"  {label:<34}{shown}")
    measured = [row["median_s"] for row in rows.values() if row is not None]
    chosen = rows["roadseg's choice (no setting)"]
    if chosen is not None and measured:
        ratio = chosen["median_s"] / min(measured)
        verdict = "within" if ratio <= ISA_TARGET else "OVER"
        print(f"  no setting vs best ISA: {ratio:.2f}x ({verdict} the {ISA_TARGET}x target)")


def side_by_side(weights: Path, size: int, repeats: int, alone: float) -> None:
    """Two ONNX Runtime processes at once, each with its default threads, against one alone."""
    args = ["--case", "forward", "onnxruntime", "-", "1", str(size), str(repeats), str(weights)]
    procs = [subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True, cwd=ROOT)
             for _ in range(2)]
    times = [json.loads(proc.communicate()[0].strip().splitlines()[-1])["median_s"] for proc in procs]
    # each process alone uses all its usable cores; two at once each get half of them: 2x is their share
    share = 2.0
    worst = max(times) / alone
    verdict = "within" if worst <= share * 1.1 else "OVER"
    print(f"\nTwo ONNX Runtime processes side by side ({size}x{size}, default threads): {times[0]:.2f} s and "
          f"{times[1]:.2f} s per forward, against {alone:.2f} s alone: {worst:.2f}x ({verdict} their share of the "
          f"cores, {share:.1f}x, +10 %)")


def predict_table(weights: Path, size: int, forwards: dict[str, dict], work: Path) -> None:
    scene = write_scene(work / f"scene{size}.tif", size)
    print(f"\nroadseg predict --tta d4 on a {size}x{size} uint8 GeoTIFF (window 1024, overlap 0.25), whole command")
    print(f"{'--engine':<12}{'ran on':<13}{'windows':>8}{'wall s':>9}{'bare fwd s':>11}{'vs own':>8}"
          f"{'vs bare ORT':>12}")
    bare_ort = forwards.get("onnxruntime/-/1", {}).get("per_image_s")
    for engine in ("auto", "mindspore"):
        row = time_predict(scene, weights, engine, work / f"out-{engine}")
        key = "onnxruntime/-/1" if row["engine"] == "onnxruntime" else "mindspore/conv3d/1"
        bare = row["windows"] * 8 * forwards[key]["per_image_s"]
        versus_ort = row["wall_s"] / (row["windows"] * 8 * bare_ort) if bare_ort else float("nan")
        print(f"{engine:<12}{row['engine']:<13}{row['windows']:>8}{row['wall_s']:>9.1f}{bare:>11.1f}"
              f"{row['wall_s'] / bare:>8.2f}{versus_ort:>12.2f}")
    print(f"targets: auto (the default) <= {PREDICT_TARGET}x bare ONNX Runtime; each engine <= "
          f"{OVERHEAD_TARGET}x its own bare forwards")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per case and round")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of every case")
    parser.add_argument("--predict-size", type=int, default=2048)
    parser.add_argument("--skip-predict", action="store_true")
    parser.add_argument("--case", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        kind, *rest = args.case
        if kind == "gemm":
            print(json.dumps(case_gemm(int(rest[0]))))
        elif kind == "tconv":
            print(json.dumps(case_tconv(int(rest[0]))))
        else:
            engine, form, batch, size, repeats, weights = rest
            print(json.dumps(case_forward(engine, form, int(batch), int(size), int(repeats), weights)))
        return

    facts = cpu_facts()
    from roadseg.model.mindspore_runtime import CPU_ISA

    print(f"CPU: {facts['model']}, {facts['cores']} usable core(s) at {facts['mhz']:.0f} MHz; "
          f"flags: {' '.join(facts['flags'])}")
    print(f"roadseg's oneDNN ISA choice: {CPU_ISA.isa} ({CPU_ISA.source}: {CPU_ISA.reason})")
    gemm = child(["--case", "gemm", str(args.repeats)])
    floor = max(gemm["numpy_gflops"], gemm["onnxruntime_gflops"])
    print(f"float32 GEMM 4096^2: numpy {gemm['numpy_gflops']:.0f} GFLOP/s, ONNX Runtime MatMul "
          f"{gemm['onnxruntime_gflops']:.0f} GFLOP/s (the floor below: {floor:.0f}); theoretical peak about "
          f"{facts['peak_gflops']:.0f} GFLOP/s ({facts['cores']} x {facts['per_cycle']} FLOP/cycle x clock)")
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        weights = random_checkpoint(work)
        try:
            forwards = forward_table(weights, args.size, args.repeats, args.rounds, floor)
            isa_table(weights, args.size, args.repeats, args.rounds + 1)
            if "onnxruntime/-/1" in forwards:
                side_by_side(weights, args.size, args.repeats, forwards["onnxruntime/-/1"]["median_s"])
            if not args.skip_predict:
                predict_table(weights, args.predict_size, forwards, work)
        finally:
            forget_graph(weights)


def forget_graph(weights: Path) -> None:
    """Remove the cached ONNX graph of the throw-away weights (120 MB that nobody will use again)."""
    from roadseg.model.download import sha256_of
    from roadseg.model.onnx_engine import cached_onnx_path

    graph = cached_onnx_path(sha256_of(weights), "dlinknet34")
    for path in (graph, graph.with_suffix(".json")):
        path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
