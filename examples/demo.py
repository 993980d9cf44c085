"""`make demo`: roadseg's whole job on real imagery, printing every command, where each output is, and the scores.

1. Sample imagery: the SpaceNet 3 Las Vegas tile, its road centrelines and their burnt mask ship in the
   ``solaris==0.4.0`` wheel on PyPI. The wheel is downloaded (checked against its sha256) and only those
   three data files are unpacked; solaris is never installed. (pip 24.1 and later refuse to download
   that wheel because of its metadata, so the file is fetched through PyPI's simple index directly.)
   Offline, a copy in ``../shared/data`` (or ``$ROADSEG_SHARED_DATA``) is used if there is one.
2. Weights: the published checkpoint when it is cached or can be downloaded. When it cannot, a SMOKE
   model is trained with ``roadseg train`` on tiles of the sample itself for a few minutes, and every
   output says so (its folder name, the GeoTIFF tags, each GeoJSON line's ``weights`` property).
3. predict (with a preview) -> vectorize -> eval (pixels against the burnt mask, APLS against the
   centrelines) -> preview with the lines drawn on.

Usage: python examples/demo.py [--output DIR] [--train-epochs N]
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from roadseg.errors import RoadsegError
from roadseg.model.download import download, sha256_of

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ROADSEG_SHARED_DATA", ROOT.parent / "shared" / "data"))
ROADSEG = [sys.executable, "-m", "roadseg.cli"]

WHEEL = "solaris-0.4.0-py3-none-any.whl"
WHEEL_SHA256 = "09445946221410ebb2ae807580cf7dea9fe3c9aa3bf045947b61a162d2d3a8df"
INDEX = os.environ.get("ROADSEG_DEMO_INDEX", "https://pypi.org/simple")
# file in the wheel -> sha256, so a cached or copied sample is checked as well as a downloaded one
SAMPLE_FILES = {
    "road_mask_input.tif": "7c561b4a96190dfacc324a03667301935e8868bddacf0496dd7d369224f0ea87",
    "sample_road_raster_mask.tif": "d545452e2d92a9b46f38375eeadc600345da16a021739a58bf8f5425b5371a09",
    "sample_roads_for_masking.geojson": "84d82ae890300552cee93ed60e18d31361f1db51d08c21a1adc566338632e5d8",
}
ATTRIBUTION = "SpaceNet 3 Las Vegas sample (SpaceNet/Maxar, CC BY-SA 4.0), from the solaris 0.4.0 wheel"
TILE = 128


def say(text: str) -> None:
    print(f"demo: {text}", flush=True)


def run(*args: str, check: bool = True, echo: bool = True) -> subprocess.CompletedProcess:
    """Run ``roadseg ARGS``, echoing the command line and streaming its output (``echo=False``: silent)."""
    if echo:
        print(f"\n$ roadseg {shlex.join(args)}", flush=True)
    result = subprocess.run([*ROADSEG, *args], text=True,
                            **({} if echo else {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}))
    if check and result.returncode != 0:
        sys.exit(f"demo: `roadseg {args[0]}` failed with exit code {result.returncode}")
    return result


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() and sha256_of(folder / name) == digest
               for name, digest in SAMPLE_FILES.items())


def _wheel_url() -> str:
    """The wheel's URL from PyPI's simple index (PEP 691 JSON)."""
    request = urllib.request.Request(f"{INDEX.rstrip('/')}/solaris/",
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        files = json.load(response)["files"]
    for entry in files:
        if entry["filename"] == WHEEL:
            return entry["url"]
    raise OSError(f"{WHEEL} is not listed in {INDEX}")


def _download_wheel(dest: Path) -> None:
    with tempfile.TemporaryDirectory(dir=dest.parent) as folder:
        wheel = download(_wheel_url(), Path(folder) / WHEEL, sha256=WHEEL_SHA256)  # streamed, checked
        with zipfile.ZipFile(wheel) as archive:
            for name in SAMPLE_FILES:
                with archive.open(f"solaris/data/{name}") as src, open(Path(folder) / name, "wb") as out:
                    shutil.copyfileobj(src, out)
        for name in SAMPLE_FILES:
            os.replace(Path(folder) / name, dest / name)


def get_sample(dest: Path) -> Path:
    """The three sample files in ``dest``: cached, downloaded from PyPI, or copied from shared data."""
    dest.mkdir(parents=True, exist_ok=True)
    if _complete(dest):
        say(f"sample imagery already in {dest}")
        return dest
    say(f"downloading {WHEEL} from {INDEX} (17.8 MB) and unpacking its road sample (not installing it)")
    try:
        _download_wheel(dest)
    except (RoadsegError, OSError, http.client.HTTPException, KeyError, zipfile.BadZipFile,
            json.JSONDecodeError) as error:
        local = SHARED_DATA / "spacenet-vegas-pan"
        if not (local / "road_mask_input.tif").is_file():
            sys.exit(f"demo: cannot download the sample imagery ({error}); check the network to PyPI, or set "
                     "ROADSEG_SHARED_DATA to a folder holding spacenet-vegas-pan/")
        say(f"cannot download the wheel ({error}); using the same files from {local}")
        for name in SAMPLE_FILES:
            shutil.copyfile(local / name, dest / name)
    if not _complete(dest):
        sys.exit(f"demo: the sample files in {dest} do not match their sha256; delete the folder and rerun")
    return dest


def published_weights() -> bool:
    """True when the published checkpoint is cached or could be downloaded now."""
    result = run("weights", "download", "dlinknet34-deepglobe", "--quiet", check=False, echo=False)
    return result.returncode == 0


def make_training_tiles(sample: Path, dest: Path) -> int:
    """Cut the sample into overlapping 8-bit RGB tiles, scaled as predict scales it, with mask tiles.

    Tiles with road are all kept, and every fourth tile without: a smoke model has minutes to learn, so
    it sees mostly road. Returns the number of tiles.
    """
    import numpy as np
    import rasterio
    from rasterio.windows import Window

    from roadseg.io.raster_read import RasterSource

    with RasterSource(sample / "road_mask_input.tif") as source:
        rgb, _ = source.read_all()  # (H, W, 3) float 0..255, percentile-stretched like predict
        transform, crs = source.transform, source.crs
    image = np.transpose(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), (2, 0, 1))
    with rasterio.open(sample / "sample_road_raster_mask.tif") as src:
        mask = src.read(1)
    for kind in ("images", "masks"):
        (dest / kind).mkdir(parents=True, exist_ok=True)
    height, width = mask.shape
    count = background = 0
    for row in range(0, height - TILE + 1, TILE // 2):
        for col in range(0, width - TILE + 1, TILE // 2):
            tile_mask = mask[row:row + TILE, col:col + TILE]
            if not tile_mask.any():
                background += 1
                if background % 4:
                    continue
            window = Window(col, row, TILE, TILE)
            profile = {"driver": "GTiff", "width": TILE, "height": TILE, "dtype": "uint8", "crs": crs,
                       "transform": rasterio.windows.transform(window, transform)}
            name = f"tile_{row:04d}_{col:04d}.tif"
            with rasterio.open(dest / "images" / name, "w", count=3, **profile) as out:
                out.write(image[:, row:row + TILE, col:col + TILE])
            with rasterio.open(dest / "masks" / name, "w", count=1, **profile) as out:
                out.write(tile_mask, 1)
            count += 1
    return count


def smoke_weights(sample: Path, out: Path, epochs: int) -> Path:
    """Train a SMOKE model on the sample's own tiles; good enough to exercise every command, no more."""
    tiles = out / "smoke-training-tiles"
    if not tiles.is_dir():  # cut into a scratch folder and renamed, so an interrupted cut is not reused
        scratch = Path(tempfile.mkdtemp(prefix=".smoke-training-tiles.", dir=out))
        make_training_tiles(sample, scratch)
        os.replace(scratch, tiles)
    run_dir = out / "SMOKE-MODEL-trained-on-the-demo-tile"
    best = run_dir / "best.ckpt"
    finished = run_dir / f"finished-{epochs}-epochs"  # a run cut short, or of other epochs, is redone
    if best.is_file() and finished.is_file():
        say(f"reusing the smoke model in {run_dir}")
        return best
    say(f"training a SMOKE model for {epochs} epochs on 128-pixel tiles of the sample itself "
        "(a few minutes on 2 cores)")
    run("train", "--images", str(tiles / "images"), "--masks", str(tiles / "masks"), "-o", str(run_dir),
        "--batch-size", "4", "--no-augment", "--lr", "2e-3", "--epochs", str(epochs),
        "--val-split", "0.1", "--seed", "0", "--overwrite")
    finished.touch()
    return best


def _csv_row(path: Path) -> dict[str, str]:
    """The last row of an eval CSV (the only one for a single pair)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return rows[-1] if rows else {}


def _figure(value: str | None) -> str:
    return "n/a" if value in (None, "") else f"{float(value):.3f}"


def summarise(out: Path, results: Path, label: str, scores: dict[str, str], apls: dict[str, str]) -> None:
    """Print this run's outputs (only ``results``: another weights outcome's folder may sit beside it)."""
    print(f"\n=== demo finished: weights = {label}")
    print(f"imagery: {ATTRIBUTION}")
    for path in sorted(results.rglob("*")):
        if path.is_file():
            print(f"  {path.relative_to(out.parent) if out.parent in path.parents else path}")
    print("pixel scores vs the burnt labels: " + ", ".join(
        f"{name.replace('_', ' ')} {_figure(scores.get(name))}"
        for name in ("road_iou", "f1", "relaxed_precision", "relaxed_recall")))
    print(f"APLS vs the SpaceNet centrelines: {_figure(apls.get('apls'))}")
    if "SMOKE" in label:
        print("These scores come from a SMOKE model trained minutes ago on this very tile: they show the "
              "pipeline works end to end, not how good D-LinkNet is. Use the published weights for that.")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "demo-output", help="output folder")
    parser.add_argument("--train-epochs", type=int, default=6, help="epochs of the smoke model")
    args = parser.parse_args(argv)
    out = args.output.resolve()
    out.mkdir(parents=True, exist_ok=True)

    run("info")
    sample = get_sample(out / "sample")
    image = sample / "road_mask_input.tif"
    if published_weights():
        weights, label, results = "dlinknet34-deepglobe", "published dlinknet34-deepglobe", out / "results"
        tta, view = "d4", "auto"  # the preview draws the image as the network sees it: at the weights' 0.5 m
    else:
        say("the published weights are not cached and cannot be downloaded here (`roadseg weights download "
            "dlinknet34-deepglobe` failed); training a SMOKE model instead, labelled as such in every output")
        weights = str(smoke_weights(sample, out, args.train_epochs))
        label, results, tta = f"SMOKE model {weights} (not the published weights)", out / "results-SMOKE-MODEL", "none"
        view = "native"  # trained on this tile's own pixels

    masks = results / "masks"
    run("predict", str(image), "-o", str(masks), "--weights", weights, "--tta", tta, "--save-prob",
        "--preview", "--overwrite")
    mask = masks / "road_mask_input_mask.tif"
    roads = results / "roads.geojson"
    run("vectorize", str(mask), "-o", str(roads), "--graph", str(results / "roads.graphml"), "--overwrite")
    run("eval", str(mask), str(sample / "sample_road_raster_mask.tif"), "--csv", str(results / "pixel_scores.csv"),
        "--overwrite")
    run("eval", str(roads), str(sample / "sample_roads_for_masking.geojson"), "--csv",
        str(results / "apls_scores.csv"), "--overwrite")
    run("preview", str(image), "--mask", str(mask), "--roads", str(roads), "-o", str(results / "preview.png"),
        "--gsd", view, "--overwrite")
    summarise(out, results, label, _csv_row(results / "pixel_scores.csv"), _csv_row(results / "apls_scores.csv"))


if __name__ == "__main__":
    main()
