import json

import networkx as nx
import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner
from rasterio.crs import CRS

from roadseg.cli.main import COMMANDS, cli

UTM = CRS.from_epsg(32611)


def write_mask(path, array, left=600000.0):
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[1], height=array.shape[0], count=1,
                       dtype="uint8", crs=UTM, transform=Affine(0.5, 0, left, 0, -0.5, 4000000.0),
                       nodata=255) as dst:
        dst.write(array, 1)
    return path


def road(cols=(0, 200)):
    mask = np.zeros((200, 200), np.uint8)
    mask[95:105, cols[0]:cols[1]] = 1
    return mask


def run(*args):
    return CliRunner().invoke(cli, ["vectorize", *map(str, args)])


def test_registered():
    assert COMMANDS["vectorize"] == "roadseg.cli.vectorize:vectorize"


def test_writes_geojson_and_graphml(tmp_path):
    mask = write_mask(tmp_path / "m.tif", road(cols=(20, 180)))
    out, graph = tmp_path / "roads.geojson", tmp_path / "roads.graphml"
    result = run(mask, "-o", out, "--graph", graph)
    assert result.exception is None, result.output
    assert result.exit_code == 0
    fc = json.loads(out.read_text())
    (feature,) = fc["features"]
    assert -118 < feature["geometry"]["coordinates"][0][0] < -115  # longitude first
    g = nx.read_graphml(graph)
    assert g.number_of_nodes() == 2 and g.number_of_edges() == 1
    assert all(data["degree"] == 1 and "x" in data for _, data in g.nodes(data=True))
    assert "wrote 1 lines" in result.output


def test_json_summary_and_crs_source(tmp_path):
    mask = write_mask(tmp_path / "m.tif", road(cols=(20, 180)))
    result = run(mask, "-o", tmp_path / "r.geojson", "--crs", "source", "--json")
    assert result.exception is None and result.exit_code == 0
    summary = json.loads(result.output)
    assert summary["features"] == 1 and summary["crs"] == "EPSG:32611"
    assert set(summary["timings_s"]) >= {"skeletonize", "graph", "prune", "gaps", "simplify"}
    fc = json.loads((tmp_path / "r.geojson").read_text())
    assert fc["crs"]["properties"]["name"].endswith("32611")


def test_tiles_in_a_directory_are_joined(tmp_path):
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    write_mask(tiles / "a.tif", road())
    write_mask(tiles / "b.tif", road(), left=600100.0)
    result = run(tiles, "-o", tmp_path / "r.geojson", "--quiet")
    assert result.exception is None and result.exit_code == 0
    assert result.output == ""
    assert len(json.loads((tmp_path / "r.geojson").read_text())["features"]) == 1


def test_empty_mask_warns_and_exits_zero(tmp_path):
    mask = write_mask(tmp_path / "m.tif", np.zeros((50, 50), np.uint8))
    result = run(mask, "-o", tmp_path / "r.geojson")
    assert result.exception is None and result.exit_code == 0
    assert "Warning:" in result.output and "empty" in result.output
    assert json.loads((tmp_path / "r.geojson").read_text()) == {"type": "FeatureCollection", "features": []}


def test_bad_input_one_line_no_output(tmp_path):
    good = write_mask(tmp_path / "m.tif", road())
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"II*\x00garbage")
    out = tmp_path / "r.geojson"
    result = run(good, bad, "-o", out)
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert any("broken.tif" in line and "not a readable raster" in line for line in errors)
    assert not out.exists() and not list(tmp_path.glob(".r*"))


def test_image_instead_of_mask_is_refused(tmp_path):
    image = tmp_path / "img.tif"
    with rasterio.open(image, "w", driver="GTiff", width=20, height=20, count=1, dtype="uint16", crs=UTM,
                       transform=Affine(0.5, 0, 600000, 0, -0.5, 4000000)) as dst:
        dst.write(np.arange(400, dtype=np.uint16).reshape(20, 20) * 5, 1)
    result = run(image, "-o", tmp_path / "r.geojson")
    assert result.exit_code == 1 and "img.tif" in result.output and "not a mask" in result.output
    assert not (tmp_path / "r.geojson").exists()


def test_missing_input(tmp_path):
    result = run(tmp_path / "nope.tif", "-o", tmp_path / "r.geojson")
    assert result.exit_code == 1 and "nope.tif: no such file" in result.output


def test_existing_output_needs_overwrite(tmp_path):
    mask = write_mask(tmp_path / "m.tif", road())
    out = tmp_path / "r.geojson"
    out.write_text("keep")
    result = run(mask, "-o", out)
    assert result.exit_code == 1 and "--overwrite" in result.output and out.read_text() == "keep"
    result = run(mask, "-o", out, "--overwrite", "--quiet")
    assert result.exit_code == 0 and json.loads(out.read_text())["type"] == "FeatureCollection"


def test_usage_errors_exit_2(tmp_path):
    mask = write_mask(tmp_path / "m.tif", road())
    result = run(mask, "-o", tmp_path / "r.geojson", "--crs", "EPSG:nope")
    assert result.exit_code == 2 and "not a CRS" in result.output
    result = run(mask, "-o", tmp_path / "r.geojson", "--min-spur", "-3")
    assert result.exit_code == 2
    result = run(mask, "-o", tmp_path / "r.geojson", "--polygons", "--graph", tmp_path / "g.graphml")
    assert result.exit_code == 2 and "--polygons" in result.output


def test_polygons(tmp_path):
    mask = write_mask(tmp_path / "m.tif", road(cols=(20, 180)))
    result = run(mask, "-o", tmp_path / "p.geojson", "--polygons")
    assert result.exception is None and result.exit_code == 0
    (feature,) = json.loads((tmp_path / "p.geojson").read_text())["features"]
    assert feature["geometry"]["type"] == "Polygon" and feature["properties"]["area_m2"] > 300


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # the PNG preview
def test_folder_of_predict_outputs_reads_its_masks_or_with_threshold_its_probabilities(tmp_path):
    """predict writes <stem>_mask, _prob and _preview side by side: the preview is never read as a mask."""
    folder = tmp_path / "out"
    folder.mkdir()
    write_mask(folder / "a_mask.tif", road(cols=(20, 180)))
    noise = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    with rasterio.open(folder / "a_preview.png", "w", driver="PNG", width=200, height=200, count=3,
                       dtype="uint8") as dst:
        dst.write(noise.transpose(2, 0, 1))
    prob = np.zeros((200, 200), np.float32)
    prob[40:50, 20:180] = 0.9  # a different road than the mask's, to tell which file was read
    with rasterio.open(folder / "a_prob.tif", "w", driver="GTiff", width=200, height=200, count=1,
                       dtype="float32", crs=UTM, transform=Affine(0.5, 0, 600000.0, 0, -0.5, 4000000.0),
                       nodata=float("nan")) as dst:
        dst.write(prob, 1)
    result = run(folder, "-o", tmp_path / "masks.geojson", "--crs", "source")
    assert result.exit_code == 0, result.output
    (feature,) = json.loads((tmp_path / "masks.geojson").read_text())["features"]
    assert feature["properties"]["source"].endswith("a_mask.tif")
    assert 4000000.0 - 0.5 * 105 < feature["geometry"]["coordinates"][0][1] < 4000000.0 - 0.5 * 95
    result = run(folder, "-o", tmp_path / "prob.geojson", "--crs", "source", "--threshold", "0.5")
    assert result.exit_code == 0, result.output
    (feature,) = json.loads((tmp_path / "prob.geojson").read_text())["features"]
    assert feature["properties"]["source"].endswith("a_prob.tif")
    assert 4000000.0 - 0.5 * 50 < feature["geometry"]["coordinates"][0][1] < 4000000.0 - 0.5 * 40
