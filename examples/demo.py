"""`make demo`: roadseg's main job end to end on the sample imagery, printing each command and output.

Steps: show the environment; get weights (the published checkpoint when it is cached or can be
downloaded; otherwise an untrained checkpoint, labelled as such everywhere, so every command still
runs); predict road masks for DeepGlobe tiles and a georeferenced SpaceNet GeoTIFF; vectorize the
GeoTIFF mask to GeoJSON; score the DeepGlobe masks against their ground truth.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "demo-output"
DATA = Path(os.environ.get("ROADSEG_SHARED_DATA", ROOT.parent / "shared" / "data"))
ROADSEG = [sys.executable, "-m", "roadseg.cli"]


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    print(f"\n$ roadseg {shlex.join(args)}", flush=True)
    result = subprocess.run([*ROADSEG, *args], text=True, capture_output=True)
    print((result.stdout + result.stderr).rstrip())
    if check and result.returncode != 0:
        sys.exit(f"demo: `roadseg {args[0]}` failed with exit code {result.returncode}")
    return result


def get_weights() -> tuple[str, str]:
    """The published weights if obtainable, else an untrained checkpoint; returns (weights, label)."""
    result = run("weights", "download", "dlinknet34-deepglobe", "--quiet", check=False)
    if result.returncode == 0:
        return "dlinknet34-deepglobe", "published dlinknet34-deepglobe weights"
    print("demo: the published weights cannot be downloaded here (no route to the MindSpore download "
          "site); continuing with an UNTRAINED network so every command runs: its masks are not roads")
    from roadseg.checkpoint import save_checkpoint
    from roadseg.convention import ZOO_CONVENTION
    from roadseg.network import DLinkNet34

    path = OUT / "UNTRAINED-demo-weights.ckpt"
    if not path.exists():
        save_checkpoint(DLinkNet34(), path, arch="dlinknet34", convention=ZOO_CONVENTION)
    return str(path), "UNTRAINED weights (pipeline check only)"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    run("info")
    weights, label = get_weights()
    deepglobe = DATA / "deepglobe" / "train"
    spacenet = DATA / "spacenet-vegas-pan" / "road_mask_input.tif"
    if not deepglobe.is_dir() or not spacenet.is_file():
        sys.exit(f"demo: sample imagery not found under {DATA} (set ROADSEG_SHARED_DATA)")
    masks = OUT / "masks"
    run("predict", str(deepglobe / "*_sat.jpg"), str(spacenet), "-o", str(masks), "--weights", weights,
        "--tta", "none", "--save-prob", "--overwrite")
    roads = OUT / "roads.geojson"
    run("vectorize", str(masks / "road_mask_input_mask.tif"), "-o", str(roads), "--overwrite")
    run("eval", str(masks), str(deepglobe), "--csv", str(OUT / "scores.csv"))
    print(f"\ndemo finished with {label}. Outputs in {OUT}:")
    for path in sorted(OUT.rglob("*")):
        if path.is_file():
            print(f"  {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
