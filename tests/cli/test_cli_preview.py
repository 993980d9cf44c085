"""``roadseg preview`` through Click: the PNG, text and JSON output, one-line errors, usage errors."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.errors import NotGeoreferencedWarning

from roadseg.cli.main import COMMANDS, cli
from roadseg.preview import ROAD_COLOUR
from tests.helpers_predict import random_rgb, write_raster


def run(*args):
    return CliRunner().invoke(cli, ["preview", *map(str, args)])


@pytest.fixture
def scene(tmp_path):
    """A 120x160 UTM GeoTIFF, its mask, and a pixel-coordinate GeoJSON line along row 60."""
    image = write_raster(tmp_path / "scene.tif", random_rgb(120, 160))
    mask = np.zeros((1, 120, 160), np.uint8)
    mask[0, 55:65] = 1
    mask_path = write_raster(tmp_path / "scene_mask.tif", mask, nodata=255)
    roads = tmp_path / "roads.geojson"
    roads.write_text(json.dumps({"type": "FeatureCollection", "coordinates": "pixel", "features": [
        {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[0.5, 60.5], [159.5, 60.5]]}}]}))
    return image, mask_path, roads


def test_registered_and_helpful():
    assert COMMANDS["preview"] == "roadseg.cli.preview:preview"
    result = run("--help")
    assert result.exception is None and result.exit_code == 0
    for option in ("--mask", "--roads", "--output", "--max-size", "--bands", "--scale", "--scale-range",
                   "--mask-format", "--overwrite", "--json", "--quiet"):
        assert option in result.output


def test_writes_the_png_and_says_where(tmp_path, scene):
    image, mask, roads = scene
    out = tmp_path / "out" / "p.png"
    result = run(image, "--mask", mask, "--roads", roads, "-o", out, "--max-size", "80")
    assert result.exception is None, result.output
    assert result.exit_code == 0
    assert result.stdout.strip() == (f"wrote 80x60 preview of scene.tif with mask scene_mask.tif (400 road pixels "
                                     f"shown) and 1 of 1 road line(s) from roads.geojson to {out}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(out) as dataset:
            rgb = np.transpose(dataset.read(), (1, 2, 0))
    assert rgb.shape == (60, 80, 3)
    line_rows = np.flatnonzero((rgb == np.asarray(ROAD_COLOUR, np.uint8)).all(axis=-1).any(axis=1))
    assert line_rows.tolist() == [30, 31]


def test_json_and_quiet(tmp_path, scene):
    image, mask, _ = scene
    result = run(image, "--mask", mask, "-o", tmp_path / "p.png", "--json")
    assert result.exception is None, result.output
    summary = json.loads(result.stdout)
    assert summary["output"] == str(tmp_path / "p.png") and summary["mask"] == str(mask)
    assert (summary["width"], summary["height"], summary["mask_pixels"], summary["roads"]) == (160, 120, 1600, None)
    result = run(image, "-o", tmp_path / "q.png", "--quiet")
    assert result.exception is None and result.output == "" and (tmp_path / "q.png").is_file()


def test_bad_input_is_one_line_exit_1(tmp_path, scene):
    image, _, _ = scene
    (tmp_path / "bad.tif").write_text("not an image")
    result = run(image, "--mask", tmp_path / "bad.tif", "-o", tmp_path / "p.png")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and "bad.tif: not a readable raster" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "p.png").exists()


def test_mask_on_another_grid_names_both_files(tmp_path, scene):
    image, _, _ = scene
    small = write_raster(tmp_path / "small.png", np.zeros((1, 10, 10), np.uint8), crs=None, driver="PNG")
    result = run(image, "--mask", small, "-o", tmp_path / "p.png")
    assert result.exit_code == 1
    assert "small.png: not on the grid of" in result.stderr and "scene.tif" in result.stderr


def test_existing_output_needs_overwrite(tmp_path, scene):
    image, _, _ = scene
    (tmp_path / "p.png").write_text("old")
    result = run(image, "-o", tmp_path / "p.png")
    assert result.exit_code == 1 and "p.png already exists; pass --overwrite" in result.stderr
    result = run(image, "-o", tmp_path / "p.png", "--overwrite", "--quiet")
    assert result.exception is None and result.exit_code == 0
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(("args", "message"), [
    (["-o", "p.jpg"], "p.jpg: the preview is a PNG; name it *.png"),
    (["-o", "p.png", "--max-size", "0"], "--max-size"),
    (["-o", "p.png", "--bands", "3,2"], "give three bands in R,G,B order or one band"),
    (["-o", "p.png", "--scale", "log"], "'log' is not one of"),
    ([], "Missing option '-o'"),
])
def test_usage_errors_exit_2(tmp_path, scene, args, message):
    image, _, _ = scene
    result = CliRunner().invoke(cli, ["preview", str(image), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
