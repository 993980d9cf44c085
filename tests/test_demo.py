"""`make demo` end to end (examples/demo.py), with its outputs checked as issue 7 lists them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.warp import transform_bounds

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.mindspore]


def _network_or_shared_data(shared_data_dir: Path) -> bool:
    import urllib.request

    if (shared_data_dir / "spacenet-vegas-pan" / "road_mask_input.tif").is_file():
        return True
    try:
        urllib.request.urlopen("https://pypi.org/simple/", timeout=10).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    shared = Path(os.environ.get("ROADSEG_SHARED_DATA", ROOT.parent / "shared" / "data"))
    if not _network_or_shared_data(shared):
        pytest.skip("no network to PyPI and no ../shared/data copy of the SpaceNet sample: the demo has no imagery")
    out = tmp_path_factory.mktemp("demo") / "demo-output"
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "demo.py"), "--output", str(out)],
                            text=True, capture_output=True, cwd=ROOT, timeout=1500)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = next(out.glob("results*"))
    return out, results, result.stdout


def test_masks_keep_the_inputs_georeferencing(demo):
    out, results, _ = demo
    with rasterio.open(out / "sample" / "road_mask_input.tif") as image:
        crs, transform, shape = image.crs, image.transform, image.shape
    for name in ("road_mask_input_mask.tif", "road_mask_input_prob.tif"):
        with rasterio.open(results / "masks" / name) as mask:
            assert (mask.crs, mask.transform, mask.shape) == (crs, transform, shape), name
            tags = mask.tags()
    if "SMOKE" in results.name:
        assert "SMOKE" in tags["ROADSEG_WEIGHTS"]


def test_roads_are_lon_lat_lines_inside_the_tile(demo):
    out, results, _ = demo
    collection = json.loads((results / "roads.geojson").read_text())
    assert collection["type"] == "FeatureCollection" and "crs" not in collection
    assert collection["features"], "the demo's GeoJSON has no roads"
    with rasterio.open(out / "sample" / "road_mask_input.tif") as image:
        west, south, east, north = transform_bounds(image.crs, "EPSG:4326", *image.bounds)
    coords = np.array([xy for feature in collection["features"] for xy in feature["geometry"]["coordinates"]])
    assert {feature["geometry"]["type"] for feature in collection["features"]} == {"LineString"}
    assert (coords[:, 0] >= west).all() and (coords[:, 0] <= east).all()
    assert (coords[:, 1] >= south).all() and (coords[:, 1] <= north).all()
    if "SMOKE" in results.name:
        assert all("SMOKE" in feature["properties"]["weights"] for feature in collection["features"])


def test_eval_table_and_scores_are_printed(demo):
    _, results, stdout = demo
    assert "road_iou" in stdout or "road IoU" in stdout
    assert "APLS" in stdout and "pixel scores vs the burnt labels: road iou" in stdout
    rows = (results / "pixel_scores.csv").read_text().splitlines()
    assert len(rows) >= 2 and "road_iou" in rows[0]
    assert "apls" in (results / "apls_scores.csv").read_text().splitlines()[0]


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # a PNG preview has no grid
def test_previews_are_pngs_of_the_tile(demo):
    _, results, _ = demo
    for path in (results / "preview.png", results / "masks" / "road_mask_input_preview.png"):
        with rasterio.open(path) as preview:
            assert preview.driver == "PNG" and preview.count == 3 and preview.shape == (1300, 1300)
            picture = preview.read()
        assert picture.std() > 10  # an image, not a blank canvas
