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
from tests.cli.test_cli_eval import one_error_line
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


def test_the_output_is_never_the_image_mask_or_roads(tmp_path, scene):
    """Issue 14: -o onto an input replaced it with the preview."""
    image, mask, roads = scene
    picture = write_raster(tmp_path / "picture.png", random_rgb(40, 60), crs=None, driver="PNG")
    before = {path: path.read_bytes() for path in (image, mask, roads, picture)}
    for args in ([picture, "-o", picture], [picture, "--roads", roads, "-o", tmp_path / "." / "picture.png"]):
        line = one_error_line(run(*args, "--overwrite"))
        assert line == f"Error: {args[-1]}: is also an input" + ("" if args[-1] == picture else f" ({picture})") \
            + ", which writing it would replace; write the output to another file"
    (tmp_path / "mask.png").symlink_to(mask)  # a link to the mask named as the output
    line = one_error_line(run(image, "--mask", mask, "-o", tmp_path / "mask.png", "--overwrite"))
    assert line.startswith(f"Error: {tmp_path / 'mask.png'}: is also an input ({mask})")
    assert {path: path.read_bytes() for path in before} == before


def test_a_0_255_mask_tagged_255_is_shown_as_road(shared_data, tmp_path):
    """Issue 14: preview read the roads of a 0/255 mask tagged nodata=255 as nodata, and showed none."""
    from tests.io.test_masks import spacenet_mask, tagged_copy

    label = spacenet_mask(shared_data)
    image = shared_data / "spacenet-vegas-pan" / "road_mask_input.tif"
    tagged = tagged_copy(label, tmp_path / "tagged.tif", 255)
    plain = json.loads(run(image, "--mask", label, "-o", tmp_path / "plain.png", "--json").stdout)
    result = run(image, "--mask", tagged, "-o", tmp_path / "tagged.png", "--json")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        f"Warning: {tagged}: its nodata tag 255 is also the mask's road value, so those pixels are read as road, "
        "not as missing data (missing data needs a value of its own, as predict's 255 beside 0 and 1)"]
    assert json.loads(result.stdout)["mask_pixels"] == plain["mask_pixels"] > 10000


@pytest.mark.parametrize(("dtype", "nodata"), [("float32", 3.4e38), ("float64", 1e300), ("float64", -1e300)])
def test_huge_float_nodata_gives_no_raw_overflow_warning(tmp_path, dtype, nodata):
    """Issue 13: a float image with nodata 3.4e38 (float32) or 1e300 (float64) printed numpy's overflow
    warning with its source line."""
    from roadseg.preview import render_preview

    data = np.linspace(0, 1, 3 * 30 * 40).reshape(3, 30, 40).astype(dtype)
    data[:, :, :5] = nodata
    image = write_raster(tmp_path / "f.tif", data, nodata=nodata)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = render_preview(image, tmp_path / "f.png")
    assert (result.width, result.height) == (40, 30)
    cli_result = run(image, "-o", tmp_path / "g.png")
    assert cli_result.exit_code == 0 and cli_result.stderr == ""


def test_gsd_shows_the_image_as_the_network_sees_it(tmp_path):
    from affine import Affine

    image = write_raster(tmp_path / "fine.tif", random_rgb(200, 100), transform=Affine(0.25, 0, 0, 0, -0.25, 0))
    result = run(image, "-o", tmp_path / "auto.png", "--json")
    assert result.exception is None, result.output
    summary = json.loads(result.stdout)
    assert (summary["height"], summary["width"]) == (100, 50)  # 0.25 m seen at the weights' 0.5 m
    assert summary["gsd"] == {"gsd": "auto", "input_gsd": "0.25", "weights_gsd": "0.5", "network_gsd": "0.5"}
    result = run(image, "-o", tmp_path / "native.png", "--gsd", "native")
    assert result.exception is None, result.output
    assert result.stdout.startswith("wrote 100x200 preview of fine.tif to")
    result = run(image, "-o", tmp_path / "one.png", "--gsd", "1")
    assert "wrote 25x50 preview of fine.tif as the network sees it (1 m per pixel; the image has 0.25 m)" \
        in result.stdout
