"""How fast `roadseg eval` scores 1024x1024 masks, against straightforward baselines measured in the same run.

Run: ``.venv/bin/python benchmarks/eval_metrics.py`` (uses ../shared/data when present, else synthetic masks).
Target: pixel metrics of one 1024x1024 pair well under 50 ms, so scoring never rivals prediction (~2 s).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ROADSEG_SHARED_DATA", ROOT.parent / "shared" / "data"))


def timed(func, repeat: int = 7) -> float:
    """Median wall time in milliseconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def masks() -> tuple[np.ndarray, np.ndarray, str]:
    from roadseg.metrics.evaluate import read_mask

    path = SHARED / "deepglobe" / "train" / "113_mask.png"
    if path.is_file():
        truth = read_mask(path).road
        source = f"DeepGlobe {path.name}"
    else:
        rng = np.random.default_rng(0)
        truth = np.zeros((1024, 1024), bool)
        for row in rng.integers(0, 1024, 8):
            truth[row:row + 6] = True
        source = "synthetic stripes"
    pred = np.zeros_like(truth)
    pred[:, 2:] = truth[:, :-2]
    return pred, truth, source


def bincount_confusion(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    codes = truth.astype(np.uint8) * 2 + pred.astype(np.uint8)
    return np.bincount(codes.ravel(), minlength=4).reshape(2, 2)


def four_counts_confusion(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return np.array([[np.count_nonzero(~truth & ~pred), np.count_nonzero(~truth & pred)],
                     [np.count_nonzero(truth & ~pred), np.count_nonzero(truth & pred)]])


def dilation_relaxed(pred: np.ndarray, truth: np.ndarray, slack: int) -> tuple[int, int]:
    from scipy import ndimage
    from skimage.morphology import disk

    footprint = disk(slack).astype(bool)
    return (int(np.count_nonzero(pred & ndimage.binary_dilation(truth, footprint))),
            int(np.count_nonzero(truth & ndimage.binary_dilation(pred, footprint))))


def edt_relaxed(pred: np.ndarray, truth: np.ndarray, slack: int) -> tuple[int, int]:
    from scipy import ndimage

    return (int(np.count_nonzero(pred & (ndimage.distance_transform_edt(~truth) <= slack))),
            int(np.count_nonzero(truth & (ndimage.distance_transform_edt(~pred) <= slack))))


def networkx_apls_direction(source, target, spacing: float = 50.0, snap: float = 4.0) -> float:
    """Baseline for the path stage: one networkx Dijkstra per control point and a Python loop over pairs."""
    import networkx as nx

    from roadseg.metrics.apls import add_control_points, snap_points

    controlled = add_control_points(source, spacing)
    points = {node: (data["x"], data["y"]) for node, data in controlled.nodes(data=True)}
    snapped, mapping = snap_points(target, points, snap)
    order = {node: i for i, node in enumerate(controlled)}
    cost, paths = 0.0, 0
    for a in controlled:
        here = nx.single_source_dijkstra_path_length(controlled, a, weight="length")
        there = nx.single_source_dijkstra_path_length(snapped, mapping[a], weight="length") if a in mapping else {}
        for b, length in here.items():
            if order[b] > order[a] and length > 1e-6:
                paths += 1
                other = there.get(mapping[b]) if b in mapping else None
                cost += 1.0 if other is None else min(1.0, abs(length - other) / length)
    return 1 - cost / paths


def grid_graphs():
    """A 2 km x 2 km street grid with 100 m blocks, and a copy missing every 7th street segment."""
    from shapely.geometry import LineString

    from roadseg.metrics.apls import graph_from_lines

    lines = [LineString([(0, y), (2000, y)]) for y in range(0, 2001, 100)]
    lines += [LineString([(x, 0), (x, 2000)]) for x in range(0, 2001, 100)]
    truth = graph_from_lines(lines, node_crossings=True)  # the streets are drawn without junction vertices
    proposal = truth.copy()
    proposal.remove_edges_from(list(proposal.edges())[::7])
    return truth, proposal


def main() -> int:
    from roadseg.metrics.pixel import confusion_matrix, relaxed_counts

    pred, truth, source = masks()
    matrix = confusion_matrix(pred, truth)
    assert np.array_equal(matrix, bincount_confusion(pred, truth))
    assert np.array_equal(matrix, four_counts_confusion(pred, truth))
    ours = relaxed_counts(pred, truth, slack=3)
    assert (ours.pred_road_near_truth, ours.true_road_near_pred) == dilation_relaxed(pred, truth, 3)
    assert (ours.pred_road_near_truth, ours.true_road_near_pred) == edt_relaxed(pred, truth, 3)

    rows = [
        ("confusion_matrix (count_nonzero)", timed(lambda: confusion_matrix(pred, truth))),
        ("  baseline: bincount of class codes", timed(lambda: bincount_confusion(pred, truth))),
        ("  baseline: four masked counts", timed(lambda: four_counts_confusion(pred, truth))),
        ("relaxed_counts, slack 3 (row runs)", timed(lambda: relaxed_counts(pred, truth, slack=3))),
        ("  baseline: scipy dilation by disk(3)", timed(lambda: dilation_relaxed(pred, truth, 3), repeat=3)),
        ("  baseline: scipy distance transform", timed(lambda: edt_relaxed(pred, truth, 3), repeat=3)),
    ]
    train = SHARED / "deepglobe" / "train"
    if train.is_dir():
        from roadseg.metrics.evaluate import evaluate_masks

        rows.append(("evaluate_masks, 4 pairs incl. reading", timed(lambda: evaluate_masks([train], [train]), 3)))
    geojson = SHARED / "spacenet-vegas-pan" / "sample_roads_for_masking.geojson"
    if geojson.is_file():
        from roadseg.metrics.apls import apls, graph_from_geojson

        graph = graph_from_geojson(geojson)
        rows.append(("APLS, SpaceNet sample vs itself (1 km)", timed(lambda: apls(graph, graph), 3)))
    from roadseg.metrics.apls import _direction

    truth, proposal = grid_graphs()
    ours = _direction(truth, proposal, 50.0, 4.0)
    assert abs(ours.score - networkx_apls_direction(truth, proposal)) < 1e-9
    rows.append((f"APLS one direction, 2 km grid ({ours.control_points} points)",
                 timed(lambda: _direction(truth, proposal, 50.0, 4.0), 3)))
    rows.append(("  baseline: networkx Dijkstra per point", timed(lambda: networkx_apls_direction(truth, proposal), 1)))

    print(f"masks: {source}, {pred.shape[1]}x{pred.shape[0]}, prediction shifted 2 px; median of runs")
    print(f"{'step':42} {'ms':>9}")
    for name, ms in rows:
        print(f"{name:42} {ms:9.2f}")
    if train.is_dir() or geojson.is_file():
        print("data: DeepGlobe 2018 Road Extraction (DigitalGlobe imagery, research use); "
              "SpaceNet 3 Las Vegas roads (CC BY-SA 4.0, SpaceNet/Maxar)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
