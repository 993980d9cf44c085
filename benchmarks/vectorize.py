"""Benchmark ``roadseg vectorize``: a generated road network, whole raster against block by block, a size
sweep of predict-style mask tiles, and SpaceNet quality figures.

Targets: issue 4, under 60 s and 4 GB peak RSS on a 2-core machine for the 10000 x 10000 mask (skeletonize
alone is timed in the same run as the floor of the approach); issue 15, block-wise vectorizing gives the
whole-raster graph on the 10000 x 10000 mask (total length within 0.5 %, same number of connected
components, every edge within 1 px) and a 40000 x 40000 mosaic of predict's mask tiles vectorizes with
peak RSS under 3 GB and time linear in area. Each run of the comparison and of the sweep is a fresh
process, which reports its own peak RSS. Run:

    .venv/bin/python benchmarks/vectorize.py [--size 10000] [--seed 0] [--sweep 10000,20000,40000]
        [--sections steps,compare,sweep,spacenet] [--block-size 4096] [--tile 5000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import networkx as nx
import numpy as np
import shapely
from affine import Affine
from rasterio.crs import CRS
from skimage.morphology import skeletonize

from roadseg.io.grid import RasterGrid
from roadseg.io.raster_write import encode_mask, open_mask_writer
from roadseg.metrics.lines import line_agreement
from roadseg.vector.vectorize import DEFAULT_BLOCK_SIZE, VectorizeOptions, vectorize, vectorize_files

SPACENET = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "spacenet-vegas-pan"


def _stamp(mask: np.ndarray, rows: np.ndarray, cols: np.ndarray, radius: float) -> None:
    """Paint discs of ``radius`` pixels centred on densely sampled centreline points."""
    height, width = mask.shape
    r = int(np.ceil(radius))
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    disc = dy ** 2 + dx ** 2 <= radius ** 2
    rows = np.round(rows).astype(np.int64)
    cols = np.round(cols).astype(np.int64)
    for oy, ox in zip(dy[disc], dx[disc]):
        rr, cc = rows + oy, cols + ox
        ok = (rr >= 0) & (rr < height) & (cc >= 0) & (cc < width)
        mask[rr[ok], cc[ok]] = True


def road_network(size: int = 10000, seed: int = 0) -> np.ndarray:
    """A city-like network: a wavy street grid with missing blocks, curved roads, cul-de-sacs, noise."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((size, size), bool)
    t = np.arange(0, size, 0.5)
    spacing = 300
    bases = np.arange(spacing / 2, size, spacing)
    for axis in (0, 1):
        for base in bases + rng.uniform(-40, 40, bases.size):
            wave = rng.uniform(5, 60) * np.sin(2 * np.pi * t / rng.uniform(1500, 6000) + rng.uniform(0, 6.3))
            across = base + wave
            keep = np.ones(t.size, bool)
            for start in rng.uniform(0, size, 3):  # missing stretches: T-junctions and dead ends
                keep &= ~((t > start) & (t < start + rng.uniform(200, 700)))
            rows, cols = (across, t) if axis == 0 else (t, across)
            _stamp(mask, rows[keep], cols[keep], rng.uniform(1.5, 4.0))
    for _ in range(40):  # curved arterials
        centre = rng.uniform(0, size, 2)
        radius = rng.uniform(500, 3000)
        angle = np.linspace(rng.uniform(0, 6.3), rng.uniform(0, 6.3) + rng.uniform(1, 3), 20000)
        _stamp(mask, centre[0] + radius * np.sin(angle), centre[1] + radius * np.cos(angle), rng.uniform(2, 4.5))
    for _ in range(1500):  # cul-de-sacs off the grid
        row, col = rng.uniform(0, size, 2)
        direction = rng.uniform(0, 2 * np.pi)
        length = rng.uniform(30, 150)
        s = np.arange(0, length, 0.5)
        _stamp(mask, row + s * np.sin(direction), col + s * np.cos(direction), 1.5)
    blobs = rng.integers(0, size, (3000, 2))  # false-positive specks and holes (cars) in roads
    _stamp(mask, blobs[:, 0].astype(float), blobs[:, 1].astype(float), 2)
    holes = np.argwhere(mask[::97, ::89])[:2000] * [97, 89]
    mask[holes[:, 0], holes[:, 1]] = False
    return mask


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2


def cpu_description() -> str:
    """CPU model and the vector ISA flags that matter to numpy/scikit-image (Linux; else platform's)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    isa = [f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw") if f in flags]
    return f"{model}, {sum(line.startswith('processor') for line in info.splitlines())} CPUs, {' '.join(isa)}"


SUPER = 10000  # a scene is made of 10000 x 10000 road networks of their own seeds: constant road density
UTM = CRS.from_epsg(32611)


def write_scene_tiles(folder: Path, size: int, seed: int, tile: int) -> list[Path]:
    """A ``size`` x ``size`` mask as predict writes it: ``<stem>_mask.tif`` GeoTIFF tiles of ``tile`` pixels
    (roadseg's own writer and encoding, 0.5 m pixels in UTM 11N), made once and reused."""
    folder.mkdir(parents=True, exist_ok=True)
    done = folder / f"scene_{size}_{seed}_{tile}.done"
    part = min(size, SUPER)
    names = [folder / f"s{size}_r{r:05d}_c{c:05d}_mask.tif" for r in range(0, size, tile) for c in range(0, size, tile)]
    if done.exists():
        return names
    if size % part or part % tile:
        raise SystemExit(f"--tile {tile} must divide {part} and {part} the size {size}")
    for sr in range(0, size, part):
        for sc in range(0, size, part):
            network = road_network(part, seed + sr // part * 1000 + sc // part)
            for r in range(0, part, tile):
                for c in range(0, part, tile):
                    _write_tile(folder / f"s{size}_r{sr + r:05d}_c{sc + c:05d}_mask.tif",
                                network[r:r + tile, c:c + tile], sr + r, sc + c)
    done.write_text("ok")
    return names


def _write_tile(path: Path, mask: np.ndarray, row: int, col: int) -> None:
    transform = Affine(0.5, 0, 600000.0 + col * 0.5, 0, -0.5, 4000000.0 - row * 0.5)
    writer = open_mask_writer(path, RasterGrid(mask.shape[0], mask.shape[1], UTM, transform), png=False)
    valid = np.ones((256, mask.shape[1]), bool)
    for start in range(0, mask.shape[0], 256):
        rows = mask[start:start + 256]
        writer.write(start, encode_mask(rows.astype(np.float32), valid[:len(rows)]))
    writer.close()


def child(spec: dict) -> None:
    """In a fresh process: vectorize the tiles, report time, own peak RSS and the graph; save edge paths."""
    t0 = time.perf_counter()
    result = vectorize_files([Path(p) for p in spec["paths"]],
                             VectorizeOptions(block_size=spec["block_size"], out_crs="source"))
    seconds = time.perf_counter() - t0
    paths = [data["path"] for _, _, data in result.graph.edges(data=True)]
    if spec.get("save"):
        np.savez(spec["save"], rc=np.concatenate(paths) if paths else np.zeros((0, 2)),
                 bounds=np.cumsum([0] + [len(p) for p in paths]))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"seconds": seconds, "cpu_s": usage.ru_utime + usage.ru_stime, "rss_gb": peak_rss_gb(),
                      "timings": {k: round(v, 1) for k, v in result.timings.items()}, "length_m": result.total_length_m,
                      "components": nx.number_connected_components(result.graph), "features": result.n_features,
                      "blocks": result.counts.get("blocks", 0)}))


def run_child(paths: list[Path], block_size: int, save: Path | None = None) -> dict:
    spec = {"paths": [str(p) for p in paths], "block_size": block_size, "save": str(save) if save else None}
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"child failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _lines(npz: Path) -> list:
    saved = np.load(npz)
    rc, bounds = saved["rc"], saved["bounds"]
    parts = [rc[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    return [shapely.LineString(p if len(p) > 1 else np.vstack([p, p])) for p in parts]


def max_edge_distance(whole: Path, blocks: Path) -> float:
    """Largest distance (pixels) of any point of a block-wise edge from the whole-raster graph."""
    tree = shapely.STRtree(_lines(whole))
    lines = np.array(_lines(blocks), dtype=object)
    long = shapely.length(lines) > 0  # a ring simplified to one point has no segment to cut
    points = shapely.points(np.vstack([shapely.get_coordinates(shapely.segmentize(lines[long], 0.5)),
                                       shapely.get_coordinates(lines[~long])]))
    _, distance = tree.query_nearest(points, return_distance=True, all_matches=False)
    return float(distance.max()) if distance.size else 0.0


def compare_section(folder: Path, args) -> None:
    """Issue 15 target 1: the same scene, whole raster (block_size 0) and block-wise, each in a fresh process."""
    paths = write_scene_tiles(folder, args.size, args.seed, min(args.tile, args.size))
    rows = {}
    for name, block in (("whole", 0), ("block-wise", args.block_size)):
        rows[name] = run_child(paths, block, folder / f"{name}.npz")
    whole, blocks = rows["whole"], rows["block-wise"]
    distance = max_edge_distance(folder / "whole.npz", folder / "block-wise.npz")
    print(f"\nwhole raster vs block-wise ({args.block_size} px cores), {args.size}x{args.size} mask in "
          f"{len(paths)} predict tiles:")
    print(f"{'run':<12}{'length km':>11}{'components':>12}{'features':>10}{'seconds':>9}{'CPU s':>8}"
          f"{'peak RSS GB':>13}")
    for name, row in rows.items():
        print(f"{name:<12}{row['length_m'] / 1000:>11.3f}{row['components']:>12}{row['features']:>10}"
              f"{row['seconds']:>9.1f}{row['cpu_s']:>8.1f}{row['rss_gb']:>13.2f}")
    ratio = abs(blocks["length_m"] / whole["length_m"] - 1)
    print(f"length differs by {ratio:.4%} (target < 0.5 %); components {whole['components']} vs "
          f"{blocks['components']}; max edge distance {distance:.3f} px (target <= 1)")
    ok = ratio < 0.005 and whole["components"] == blocks["components"] and distance <= 1
    print(f"target: {'PASS' if ok else 'FAIL'}")


def sweep_section(folder: Path, args) -> None:
    """Issue 15 target 2: peak RSS flat and time linear in area, block-wise, each size in a fresh process."""
    print(f"\nsize sweep, block-wise ({args.block_size} px cores), predict tiles of {args.tile} px:")
    print(f"{'size':>7}{'MP':>7}{'tiles':>7}{'blocks':>8}{'seconds':>9}{'s/MP':>8}{'CPU s/MP':>10}{'peak RSS GB':>13}"
          f"{'km':>10}")
    for size in args.sweep:
        paths = write_scene_tiles(folder, size, args.seed, min(args.tile, size))
        row = run_child(paths, args.block_size)
        mp = size * size / 1e6
        print(f"{size:>7}{mp:>7.0f}{len(paths):>7}{row['blocks']:>8}{row['seconds']:>9.1f}{row['seconds'] / mp:>8.3f}"
              f"{row['cpu_s'] / mp:>10.3f}{row['rss_gb']:>13.2f}{row['length_m'] / 1000:>10.1f}   {row['timings']}",
              flush=True)
    print("target at 40000: peak RSS < 3 GB; CPU s/MP about constant (time linear in area; wall time also\n"
          "counts the waits of a shared machine)")


def steps_section(args) -> None:
    """Issue 4: one in-memory mask, the pipeline's steps, skeletonize alone as the floor."""
    t0 = time.perf_counter()
    mask = road_network(args.size, args.seed)
    generate_s = time.perf_counter() - t0
    print(f"generated {args.size}x{args.size} mask in {generate_s:.1f} s, road {mask.mean():.2%} of pixels, "
          f"peak RSS so far {peak_rss_gb():.2f} GB")
    t0 = time.perf_counter()
    skeleton = skeletonize(mask)
    skeleton_s = time.perf_counter() - t0
    skeleton_px = int(skeleton.sum())
    del skeleton
    print(f"baseline: skeletonize alone {skeleton_s:.2f} s ({skeleton_px} skeleton pixels)")

    # ~0.5 m pixels, as DeepGlobe: parameters in metres through pixel_size.
    t0 = time.perf_counter()
    result = vectorize(mask, VectorizeOptions(pixel_size=0.5, block_size=args.block_size))
    total_s = time.perf_counter() - t0
    print(f"\n{'step':<14}{'seconds':>10}   (block_size {args.block_size}: {result.counts.get('blocks', 1)} block(s))")
    for step, seconds in result.timings.items():
        print(f"{step:<14}{seconds:>10.2f}")
    print(f"{'total':<14}{total_s:>10.2f}")
    print(f"{'skeletonize*':<14}{skeleton_s:>10.2f}   (* alone, the floor of this approach)")
    print()
    print(f"raw edges {result.counts['raw_edges']}, features {result.n_features}, counts {result.counts}")
    rss = peak_rss_gb()
    print(f"peak RSS {rss:.2f} GB (whole process, mask generation and the whole-raster skeletonize included)")
    print(f"target: < 60 s -> {'PASS' if total_s < 60 else 'FAIL'}; < 4 GB -> {'PASS' if rss < 4 else 'FAIL'}")


def spacenet_section() -> None:
    mask_path = SPACENET / "sample_road_raster_mask.tif"
    if not mask_path.is_file():
        print(f"SpaceNet sample not found at {SPACENET}: quality figures skipped")
        return
    truth = json.loads((SPACENET / "sample_roads_for_masking.geojson").read_text())
    t0 = time.perf_counter()
    found = vectorize_files([mask_path])
    seconds = time.perf_counter() - t0
    agreement = line_agreement(found.collection, truth, tolerance_m=2.0)
    print()
    print(f"SpaceNet Las Vegas sample (CC BY-SA 4.0, SpaceNet/Maxar), {seconds:.2f} s:")
    print(f"  total length {agreement.found_length_m:.1f} m vs true {agreement.true_length_m:.1f} m "
          f"-> ratio {agreement.length_ratio:.3f} (target within 5 %)")
    print(f"  true length within 2 m of an output line: {agreement.recall:.1%} (target >= 95 %)")
    print(f"  output length within 2 m of a true line: {agreement.precision:.1%} (target >= 95 %)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10000, help="mask size of the steps and compare sections")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sections", default="steps,compare,sweep,spacenet",
                        help="comma-separated subset of steps, compare, sweep, spacenet")
    parser.add_argument("--sweep", type=lambda text: [int(x) for x in text.split(",") if x],
                        default=[10000, 20000, 40000], help="sizes of the sweep, e.g. 10000,20000")
    parser.add_argument("--block-size", type=int, default=DEFAULT_BLOCK_SIZE)
    parser.add_argument("--tile", type=int, default=5000, help="size of predict's mask tiles")
    parser.add_argument("--workdir", type=Path, default=None, help="where tiles are written (and reused)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(json.loads(args.child))
        return 0
    sections = set(args.sections.split(","))
    print(f"CPU: {cpu_description()}")
    with tempfile.TemporaryDirectory() as temporary:
        folder = args.workdir or Path(temporary)
        if "steps" in sections:
            steps_section(args)
        if "compare" in sections:
            compare_section(folder / "compare", args)
        if "sweep" in sections:
            sweep_section(folder / "sweep", args)
    if "spacenet" in sections:
        spacenet_section()
    return 0


if __name__ == "__main__":
    sys.exit(main())
