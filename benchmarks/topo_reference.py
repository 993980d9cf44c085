"""TOPO of roadseg against the public TOPO code of Sat2Graph / SAM-Road on one SpaceNet chip, and their speed.

The case: SpaceNet's road centrelines of AOI_2_Vegas_img990 against OpenStreetMap's lines of the same
chip (``tests/metrics/data/spacenet/``, from CosmiQ's apls repo), each scored as the truth
against the other. The input is stored with the numbers: roadseg's metric graphs of the two files
(``graph_from_geojson`` in one local CRS) as straight segments (:func:`roadseg.metrics.topo.road_segments`),
in metres from the chip's top-left corner, rounded to millimetres. roadseg scores those
(``graph_from_segments``); the reference gets them in Sat2Graph's graph format (a dict from each vertex
``(row, column)`` to its neighbours) as 1 m pixels, the scale the papers evaluate at. So the test that
compares the two does not depend on how graphs are built from GeoJSON.

The public code walks a chain that has no inner vertex from both of its ends, so such chains get every
start point twice (and a twin its ``TOPO121`` step drops still counts against recall). The reference
numbers are therefore taken with every segment cut in two at its midpoint, which gives every chain an
inner vertex and changes no road; roadseg's TOPO is unchanged by such cuts (a property test checks it).
The table also shows the public code on the segments as they are.

Set-up of the reference (what produced ``tests/metrics/data/topo_reference.json``)::

    python3 -m venv /tmp/topo_ref_venv        # CPython 3.11.7
    /tmp/topo_ref_venv/bin/pip install numpy==2.4.6 scipy==1.17.1 rtree==1.4.1 hopcroftkarp==1.2.5 \\
        svgwrite==1.4.3
    # graph.py, topo.py, showTOPO.py of github.com/htcr/sam_road, commit 04b67c503f12,
    # spacenet_metrics/topo/ (SAM-Road's Python 3 port of Sat2Graph's metrics/topo), copied unchanged:
    mkdir /tmp/sam_road_topo && git -C SAM_ROAD_CLONE show HEAD:spacenet_metrics/topo/topo.py > ...

No patch to those files was needed. Their ``main.py`` (which loops over SAM-Road's test split) is
replaced by the driver below, which makes the same calls with the same constants as Sat2Graph's
``metrics/topo/main.py`` on a SpaceNet tile: pseudo-degrees at 111111 px, ``r = 0.00150``,
``step = 0.00005``, ``threshold = 0.00010``, one-to-one matching. The public code writes ``gt.svg``
and ``coverage.svg`` into its working directory: the driver runs in a temporary one.

Run: ``.venv/bin/python benchmarks/topo_reference.py [--reference-python P] [--reference-src D] [--write]
[--survey DIR]`` (``--write`` stores the numbers in tests/metrics/data/topo_reference.json; ``--survey``
also compares both directions of every chip in a folder laid out like CosmiQ's
``apls/data/gt_json_prop_json/AOI_2_Vegas_Train``: on its 7 chips the largest differences were 0.0098 in
precision and 0.0193 in recall, with the same start points and pairings everywhere). Without the reference
set-up it times roadseg alone.
"""

from __future__ import annotations

import argparse
import json
import pickle
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "metrics" / "data"
TRUTH = DATA / "spacenet" / "spacenetroads" / "AOI_2_Vegas_img990.geojson"
PROPOSAL = DATA / "spacenet" / "osm" / "AOI_2_Vegas_img990.geojson"
REFERENCE_JSON = DATA / "topo_reference.json"

DRIVER = r'''
import json, math, pickle, re, sys
sys.path.insert(0, sys.argv[1])
import graph as splfy
import topo

LAT0, LON0 = 41.0, -71.0  # Sat2Graph main.py: lat_top_left, lon_top_left
bounds = {"min_lat": LAT0, "max_lon": LON0}

def latlon(x, y):
    lat = LAT0 - x / 111111.0
    return lat, LON0 + (y / 111111.0) / math.cos(math.radians(LAT0))

def build(adjacency):
    graph, ids = splfy.RoadGraph(), {}
    for n1, neighbours in adjacency.items():
        lat1, lon1 = latlon(*n1)
        bounds["min_lat"] = min(bounds["min_lat"], lat1)
        bounds["max_lon"] = max(bounds["max_lon"], lon1)
        for n2 in neighbours:
            lat2, lon2 = latlon(*n2)
            id1, id2 = ids.setdefault(n1, len(ids)), ids.setdefault(n2, len(ids))
            graph.addEdge(id1, lat1, lon1, id2, lat2, lon2)
    graph.ReverseDirectionLink()
    for node in graph.nodes:
        graph.nodeScore[node] = 100
    for edge in graph.edges:
        graph.edgeScore[edge] = 100
    return graph

truth_adj, proposal_adj = pickle.load(open(sys.argv[2], "rb"))
gt, prop = build(truth_adj), build(proposal_adj)
region = [bounds["min_lat"] - 300 / 111111.0, LON0 - 500 / 111111.0, LAT0 + 300 / 111111.0,
          bounds["max_lon"] + 500 / 111111.0]
gt.region = prop.region = region
starts = topo.TOPOGenerateStartingPoints(gt, region=region, image="NULL", check=False, direction=False,
                                         metaData=None)
pairs = topo.TOPOGeneratePairs(prop, gt, starts, threshold=0.00010, region=region)
kept = topo.TOPOWithPairs(prop, gt, pairs, starts, r=0.00150, step=0.00005, threshold=0.00010,
                          outputfile="topo.txt", one2oneMatching=True, metaData=None)
lines = open("topo.txt").read().splitlines()
per_start = [(float(m.group(1)), float(m.group(2))) for m in
             (re.search(r" Precesion (\S+) Recall (\S+) ", line) for line in lines) if m]
precision, recall = topo.topoAvg(kept)
json.dump({"start_points": len(starts), "paired": len(pairs), "scored": len(per_start),
           "kept_by_topo121": len(kept), "precision": precision,
           "recall": recall * len(kept) / len(starts), "per_start": per_start}, sys.stdout)
'''


def case_segments(truth: Path, proposal: Path) -> dict[str, dict[str, list]]:
    """Both files' roads as straight segments (:func:`road_segments` of roadseg's metric graphs in one
    local CRS), in metres from their common top-left corner, rounded to millimetres: the stored input."""
    import numpy as np

    from roadseg.metrics.apls import graph_from_geojson, local_metric_crs
    from roadseg.metrics.topo import road_segments

    crs = local_metric_crs(truth, proposal)
    flat = [road_segments(graph_from_geojson(path, crs=crs)) for path in (truth, proposal)]
    every = np.vstack([points for points, _ in flat])
    corner = np.array([every[:, 0].min(), every[:, 1].max()])
    return {name: {"points": np.round(points - corner, 3).tolist(), "ends": ends.tolist()}
            for name, (points, ends) in zip(("spacenet", "osm"), flat)}


def _halved(points, ends):
    """Every segment cut in two at its midpoint: the same roads, with an inner vertex on every chain."""
    import numpy as np

    middle = np.arange(len(points), len(points) + len(ends))
    points = np.vstack([points, (points[ends[:, 0]] + points[ends[:, 1]]) / 2])
    return points, np.vstack([np.column_stack([ends[:, 0], middle]), np.column_stack([middle, ends[:, 1]])])


def sat2graph_format(truth: dict, proposal: dict, halve: bool = True) -> tuple[dict, dict]:
    """Both stored graphs as Sat2Graph's ``{(row, col): [neighbours]}`` (1 m pixels from the top left),
    with every segment cut in two when ``halve`` (see the module docstring)."""
    import numpy as np

    out = []
    for stored in (truth, proposal):
        points, ends = np.asarray(stored["points"], dtype=float), np.asarray(stored["ends"], dtype=int)
        if halve:
            points, ends = _halved(points, ends)
        pixels = [(float(-y), float(x)) for x, y in points]
        adjacency: dict = {}
        for a, b in ends:
            adjacency.setdefault(pixels[a], []).append(pixels[b])
            adjacency.setdefault(pixels[b], []).append(pixels[a])
        out.append(adjacency)
    return out[0], out[1]


def run_reference(python: str, source: str, truth, proposal, halve: bool = True) -> tuple[dict, float]:
    """The public code's numbers on the pair, and its wall time in seconds."""
    with tempfile.TemporaryDirectory() as work:
        graphs_file = Path(work) / "graphs.p"
        graphs_file.write_bytes(pickle.dumps(sat2graph_format(truth, proposal, halve), protocol=2))
        start = time.perf_counter()
        done = subprocess.run([python, "-c", DRIVER, source, str(graphs_file)], cwd=work, check=True,
                              capture_output=True, text=True)
        seconds = time.perf_counter() - start
    return json.loads(done.stdout.splitlines()[-1]), seconds


def roadseg_numbers(truth: dict, proposal: dict) -> tuple[dict, float]:
    """roadseg's TOPO on the stored graphs and its median wall time in seconds over 5 runs."""
    from roadseg.metrics.topo import graph_from_segments, topo_score

    truth_graph = graph_from_segments(truth["points"], truth["ends"])
    proposal_graph = graph_from_segments(proposal["points"], proposal["ends"])
    times = []
    for _ in range(5):
        start = time.perf_counter()
        result = topo_score(proposal_graph, truth_graph)
        times.append(time.perf_counter() - start)
    return result.to_dict(), statistics.median(times)


def cpu() -> str:
    from roadseg.model.cpu_isa import cpu_identity

    identity = cpu_identity()
    return f"{identity.model} ({identity.machine}; {' '.join(identity.flags) or 'no AVX/SSE flags read'})"


def _row(name: str, numbers: dict, seconds: float | None) -> str:
    p, r = numbers["precision"], numbers["recall"]
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    timing = f"{seconds:>9.3f}" if seconds is not None else f"{'':>9}"
    return f"{name:<44}{p:>10.4f}{r:>8.4f}{f1:>8.4f}{numbers['start_points']:>8}{numbers['paired']:>8}{timing}"


def compare(args: argparse.Namespace, stored: dict, truth_name: str, proposal_name: str) -> dict:
    """Print the table rows of one direction of the case; return its record."""
    truth, proposal = stored[truth_name], stored[proposal_name]
    ours, our_seconds = roadseg_numbers(truth, proposal)
    record = {"truth": truth_name, "proposal": proposal_name}
    if Path(args.reference_python).is_file() and (Path(args.reference_src) / "topo.py").is_file():
        ref, ref_seconds = run_reference(args.reference_python, args.reference_src, truth, proposal)
        raw, _ = run_reference(args.reference_python, args.reference_src, truth, proposal, halve=False)
        print(_row("  public code, segments halved (baseline)", ref, ref_seconds))
        print(_row("  public code, segments as they are", raw, None))
        keys = ("precision", "recall", "start_points", "paired", "kept_by_topo121")
        record["reference"] = {key: ref[key] for key in keys}
        record["reference_segments_not_halved"] = {key: raw[key] for key in keys}
    print(_row("  roadseg.metrics.topo", ours, our_seconds))
    record["roadseg_when_written"] = {key: ours[key] for key in ("precision", "recall", "f1", "start_points",
                                                                 "paired", "kept")}
    return record


def survey(args: argparse.Namespace, folder: Path) -> None:
    """Both directions of every chip in ``folder`` (CosmiQ's layout: ``spacenetroads/`` and ``osm/``
    with the same file names): the public code's and roadseg's numbers and their largest differences."""
    worst = [0.0, 0.0]
    print(f"{'chip, truth':<44}{'ref p':>8}{'ours p':>8}{'ref r':>8}{'ours r':>8}{'starts':>8}{'same':>6}")
    for truth_path in sorted((folder / "spacenetroads").glob("*.geojson")):
        stored = case_segments(truth_path, folder / "osm" / truth_path.name)
        for truth_name, proposal_name in (("spacenet", "osm"), ("osm", "spacenet")):
            ours, _ = roadseg_numbers(stored[truth_name], stored[proposal_name])
            ref, _ = run_reference(args.reference_python, args.reference_src, stored[truth_name],
                                   stored[proposal_name])
            worst = [max(worst[0], abs(ours["precision"] - ref["precision"])),
                     max(worst[1], abs(ours["recall"] - ref["recall"]))]
            agree = (ours["start_points"], ours["paired"]) == (ref["start_points"], ref["paired"])
            print(f"{truth_path.stem + ', ' + truth_name:<44}{ref['precision']:>8.4f}{ours['precision']:>8.4f}"
                  f"{ref['recall']:>8.4f}{ours['recall']:>8.4f}{ref['start_points']:>8}{'yes' if agree else 'no':>6}")
    print(f"largest differences: precision {worst[0]:.4f}, recall {worst[1]:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-python", default="/tmp/topo_ref_venv/bin/python")
    parser.add_argument("--reference-src", default="/tmp/sam_road_topo")
    parser.add_argument("--write", action="store_true", help=f"store the numbers in {REFERENCE_JSON}")
    parser.add_argument("--survey", type=Path, help="also compare on every chip of this folder "
                        "(apls/data/gt_json_prop_json/AOI_2_Vegas_Train of CosmiQ's apls repo)")
    args = parser.parse_args()
    print(f"CPU: {cpu()}; Python {platform.python_version()}")
    print(f"{'implementation':<44}{'precision':>10}{'recall':>8}{'f1':>8}{'starts':>8}{'paired':>8}{'seconds':>9}")
    stored = case_segments(TRUTH, PROPOSAL)
    cases = []
    for truth_name, proposal_name in (("spacenet", "osm"), ("osm", "spacenet")):
        print(f"{truth_name} truth, {proposal_name} proposal")
        cases.append(compare(args, stored, truth_name, proposal_name))
    if args.write and all("reference" in case for case in cases):
        from roadseg.io.atomic import atomic_output

        record = {
            "implementation": "github.com/htcr/sam_road@04b67c503f120ecff2b2dc5a2041ea6d300e306a "
                              "spacenet_metrics/topo (Python 3 port of Sat2Graph metrics/topo), unpatched",
            "recipe": "benchmarks/topo_reference.py (its docstring: venv, versions, driver)",
            "parameters": {"r": 0.0015, "step": 0.00005, "threshold": 0.0001, "pseudo_degree_px": 111111,
                           "one2oneMatching": True, "metres_per_px": 1.0},
            "note": "reference: every segment cut in two at its midpoint on both sides, so that the public "
                    "code walks no chain from both ends (its duplicate start points); roadseg ignores the cut",
            "files": {"spacenet": str(TRUTH.relative_to(ROOT)), "osm": str(PROPOSAL.relative_to(ROOT))},
            "cases": cases,
            "graphs": stored,
        }
        with atomic_output(REFERENCE_JSON, overwrite=True) as temporary:
            temporary.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {REFERENCE_JSON.relative_to(ROOT)}")
    if args.survey:
        survey(args, args.survey)


if __name__ == "__main__":
    sys.exit(main())
