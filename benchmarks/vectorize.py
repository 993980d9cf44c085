"""Benchmark ``roadseg vectorize``: a generated 10000 x 10000 road network, and SpaceNet quality figures.

Targets (issue 4): under 60 s and under 4 GB peak RSS on a 2-core machine for the 10000 x 10000 mask;
skeletonize alone is timed in the same run as the floor of the approach. Run:

    .venv/bin/python benchmarks/vectorize.py [--size 10000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
from skimage.morphology import skeletonize

from roadseg.metrics.lines import line_agreement
from roadseg.vector.vectorize import VectorizeOptions, vectorize, vectorize_files

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
    for axis in (0, 1):
        for base in np.arange(spacing / 2, size, spacing) + rng.uniform(-40, 40, int(size / spacing)):
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

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
    result = vectorize(mask, VectorizeOptions(pixel_size=0.5))
    total_s = time.perf_counter() - t0
    print()
    print(f"{'step':<14}{'seconds':>10}")
    for step, seconds in result.timings.items():
        print(f"{step:<14}{seconds:>10.2f}")
    print(f"{'total':<14}{total_s:>10.2f}")
    print(f"{'skeletonize*':<14}{skeleton_s:>10.2f}   (* alone, the floor of this approach)")
    print()
    print(f"raw edges {result.counts['raw_edges']}, features {result.n_features}, counts {result.counts}")
    rss = peak_rss_gb()
    print(f"peak RSS {rss:.2f} GB (whole process, mask generation included)")
    print(f"target: < 60 s -> {'PASS' if total_s < 60 else 'FAIL'}; < 4 GB -> {'PASS' if rss < 4 else 'FAIL'}")

    mask_path = SPACENET / "sample_road_raster_mask.tif"
    if mask_path.is_file():
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
    else:
        print(f"SpaceNet sample not found at {SPACENET}: quality figures skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
