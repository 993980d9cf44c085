"""roadseg's APLS against CosmiQ's reference (``apls`` 0.1.0, patched and with its duplicate-edge bug
fixed) on the parity cases of tests/metrics/apls_cases.py: SpaceNet truth of four Las Vegas chips against
proposals derived from it, OpenStreetMap lines, and a real model's output (albu, SpaceNet 3).

Run: ``.venv/bin/python benchmarks/apls_parity.py``. The reference numbers are read from
tests/metrics/data/apls_reference.json (made by benchmarks/apls_reference.py in its own venv); roadseg's
are computed here, in the same run, by the same ``evaluate_graphs`` that ``roadseg eval`` calls. The target
is |roadseg - reference| <= 0.01 on every case. The baseline column, measured in the same run, is roadseg
with ``node_crossings`` (lines joined wherever they cross, roadseg's old rule): it shows what the noding
rule alone is worth on the same cases.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REFERENCE = ROOT / "tests" / "metrics" / "data" / "apls_reference.json"
TOLERANCE = 0.01


def roadseg_scores(node_crossings: bool = False) -> dict[str, tuple[float, float, float]]:
    """(APLS, truth onto proposal, proposal onto truth) of every parity case by roadseg."""
    from roadseg.metrics.evaluate import GraphScoring, evaluate_graphs
    from tests.metrics.apls_cases import cases

    scoring = GraphScoring(node_crossings=node_crossings)
    scores = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, (make, truth, _) in cases().items():
            proposal = Path(folder) / f"{name}.geojson"
            proposal.write_text(json.dumps(make()))
            result = evaluate_graphs(proposal, truth, scoring).apls
            scores[name] = (result.apls, result.truth_onto_proposal.score, result.proposal_onto_truth.score)
    return scores


def cpu() -> str:
    """The CPU model and a few ISA flags, from /proc/cpuinfo where there is one."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    return f"{model} ({' '.join(flag for flag in ('avx2', 'avx512f', 'fma') if flag in flags) or 'no AVX2'})"


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    reference = json.loads(REFERENCE.read_text())
    start = time.perf_counter()
    ours = roadseg_scores()
    seconds = time.perf_counter() - start
    crossings = roadseg_scores(node_crossings=True)
    print(f"reference: {reference['reference']['package']}")
    print(f"roadseg: {len(ours)} cases in {seconds:.1f} s on {cpu()} (timing only; the scores do not depend on it)")
    print(f"{'case':16s} {'reference':>9s} {'roadseg':>8s} {'diff':>7s}  {'t->p ref/ours':>15s}  "
          f"{'p->t ref/ours':>15s}  {'node_crossings':>14s} {'diff':>7s}")
    worst = 0.0
    for name, ref in reference["cases"].items():
        total, forward, backward = ours[name]
        diff = total - ref["apls"]
        worst = max(worst, abs(diff))
        flag = "" if abs(diff) <= TOLERANCE else "  > 0.01"
        print(f"{name:16s} {ref['apls']:9.4f} {total:8.4f} {diff:+7.4f}  "
              f"{ref['truth_onto_proposal']:7.4f}/{forward:.4f}  {ref['proposal_onto_truth']:7.4f}/{backward:.4f}  "
              f"{crossings[name][0]:14.4f} "
              f"{crossings[name][0] - ref['apls']:+7.4f}{flag}")
    print(f"largest |roadseg - reference|: {worst:.4f} (target {TOLERANCE}); node_crossings: roadseg's old noding "
          "(lines joined wherever they cross), for comparison")


if __name__ == "__main__":
    main()
