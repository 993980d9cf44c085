import json

import numpy as np
import rasterio
from affine import Affine
from click.testing import CliRunner
from rasterio.crs import CRS

from roadseg.cli.main import COMMANDS, cli
from tests.cli.test_cli_eval import one_error_line

UTM = CRS.from_epsg(32611)


def write_mask(path, array, left=600000.0, crs=UTM, res=1.0):
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[1], height=array.shape[0], count=1,
                       dtype="uint8", crs=crs, transform=Affine(res, 0, left, 0, -res, 4000000.0),
                       nodata=255) as dst:
        dst.write(array, 1)
    return path


def run(*args):
    return CliRunner().invoke(cli, ["stitch", *map(str, args)])


def tiles(tmp_path):
    a = np.zeros((4, 6), np.uint8)
    a[1, :] = 1
    b = np.zeros((4, 6), np.uint8)
    b[2, :] = 1
    return write_mask(tmp_path / "a.tif", a), write_mask(tmp_path / "b.tif", b, left=600003.0)


def test_registered():
    assert COMMANDS["stitch"] == "roadseg.cli.stitch:stitch"


def test_stitches_two_overlapping_tiles(tmp_path):
    a, b = tiles(tmp_path)
    out = tmp_path / "m.tif"
    result = run(a, b, "-o", out, "--json")
    assert result.exception is None and result.exit_code == 0
    summary = json.loads(result.output)
    assert (summary["width"], summary["height"], summary["kind"]) == (9, 4, "mask")
    with rasterio.open(out) as src:
        values = src.read(1)
    np.testing.assert_array_equal(values[1], [1, 1, 1, 1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(values[2], [0, 0, 0, 1, 1, 1, 1, 1, 1])


def test_vrt(tmp_path):
    a, b = tiles(tmp_path)
    result = run(a, b, "-o", tmp_path / "m.vrt", "--vrt")
    assert result.exception is None and result.exit_code == 0 and "mosaic of 2 tile(s)" in result.output
    with rasterio.open(tmp_path / "m.vrt") as src:
        assert src.read(1)[1, 3] == 1 and src.read(1)[2, 3] == 1


def test_refuses_different_crs_unless_crs_and_res(tmp_path):
    a = write_mask(tmp_path / "a.tif", np.zeros((4, 4), np.uint8))
    b = write_mask(tmp_path / "b.tif", np.zeros((4, 4), np.uint8), res=2.0)
    result = run(a, b, "-o", tmp_path / "m.tif")
    assert result.exit_code == 1 and "b.tif" in result.output and "--crs and --res" in result.output
    assert not (tmp_path / "m.tif").exists()
    result = run(a, b, "-o", tmp_path / "m.tif", "--crs", "EPSG:32611", "--res", "1")
    assert result.exception is None and result.exit_code == 0
    with rasterio.open(tmp_path / "m.tif") as src:
        assert src.res == (1.0, 1.0) and src.width == 8


def test_usage_errors(tmp_path):
    a, b = tiles(tmp_path)
    result = run(a, b, "-o", tmp_path / "m.tif", "--crs", "EPSG:32611")
    assert result.exit_code == 2 and "--res" in result.output
    result = run(a, b, "-o", tmp_path / "m.vrt", "--vrt", "--crs", "EPSG:32611", "--res", "1")
    assert result.exception is None and result.exit_code == 0
    with rasterio.open(tmp_path / "m.vrt") as src:
        assert src.crs == "EPSG:32611" and src.res == (1.0, 1.0)


def test_bad_tile_and_existing_output(tmp_path):
    a, _ = tiles(tmp_path)
    bad = tmp_path / "bad.tif"
    bad.write_text("no")
    result = run(a, bad, "-o", tmp_path / "m.tif")
    assert result.exit_code == 1 and "bad.tif" in result.output and not (tmp_path / "m.tif").exists()
    (tmp_path / "m.tif").write_text("keep")
    result = run(a, "-o", tmp_path / "m.tif")
    assert result.exit_code == 1 and "--overwrite" in result.output


def test_rerun_into_the_tiles_folder_leaves_out_its_own_output(tmp_path):
    tiles(tmp_path)
    out = tmp_path / "mosaic.vrt"
    assert run(tmp_path, "-o", out, "--vrt").exit_code == 0
    result = run(tmp_path, "-o", out, "--vrt", "--overwrite")
    assert result.exception is None and result.exit_code == 0 and "mosaic of 2 tile(s)" in result.output
    assert "mosaic.vrt" not in out.read_text()
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(1)[1], [1, 1, 1, 1, 1, 1, 0, 0, 0])
    result = run(tmp_path, "-o", tmp_path / "mosaic.tif", "--overwrite")  # the VRT is a tile like any other
    assert result.exception is None and result.exit_code == 0 and "mosaic of 3 tile(s)" in result.output


def test_truncated_tile_is_one_line_and_nothing_written(tmp_path):
    a, _ = tiles(tmp_path)
    big = np.random.default_rng(0).choice(np.array([0, 1], np.uint8), (300, 300))
    bad = write_mask(tmp_path / "t.tif", big, left=600006.0)
    with open(bad, "r+b") as handle:
        handle.truncate(bad.stat().st_size // 2)
    result = CliRunner().invoke(cli, ["stitch", str(a), str(bad), "-o", str(tmp_path / "m.tif")])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)  # not a traceback
    assert result.output.count("\n") == 1
    assert result.output.startswith(f"Error: {bad}: reading failed, the file may be truncated or corrupt (")
    assert not (tmp_path / "m.tif").exists()


def test_failed_stitch_creates_no_output_directory(tmp_path):
    a, _ = tiles(tmp_path)
    other = write_mask(tmp_path / "other.tif", np.zeros((4, 4), np.uint8), crs=CRS.from_epsg(32612))
    result = run(a, other, "-o", tmp_path / "newdir" / "sub" / "x.tif")
    assert result.exit_code == 1 and "other.tif" in result.output
    assert not (tmp_path / "newdir").exists()
    result = run(a, "-o", tmp_path / "newdir" / "sub" / "x.tif")
    assert result.exit_code == 0 and (tmp_path / "newdir" / "sub" / "x.tif").is_file()


def test_a_tile_named_as_the_output_is_refused_and_kept(tmp_path):
    """Issue 14: ``stitch a.tif b.tif -o a.tif --overwrite`` dropped a.tif and wrote "a mosaic of 1 tile"
    of b's pixels over it."""
    a, b = tiles(tmp_path)
    before = a.read_bytes()
    for args in ([a, b, "-o", a], [tmp_path, "-o", a], [a, b, "-o", tmp_path / "." / "a.tif", "--vrt"]):
        line = one_error_line(run(*args, "--overwrite"))
        assert line == f"Error: {a}: is both a tile and the output, which would replace it; write the mosaic to " \
                       "another file"
    assert a.read_bytes() == before


def test_a_previous_mosaic_named_on_the_command_line_is_a_tile_too(tmp_path):
    a, b = tiles(tmp_path)
    out = tmp_path / "m.tif"
    assert run(a, b, "-o", out).exit_code == 0
    before = out.read_bytes()
    line = one_error_line(run(a, b, out, "-o", out, "--overwrite"))
    assert line.startswith(f"Error: {out}: is both a tile and the output") and out.read_bytes() == before
    result = run(tmp_path / "*.tif", "-o", out, "--overwrite")  # found by a pattern: a re-run leaves it out
    assert result.exit_code == 0 and "mosaic of 2 tile(s)" in result.output


def test_a_0_255_label_tagged_255_keeps_its_roads(shared_data, tmp_path):
    """Issue 14: the nodata tag on the road value of a 0/255 mask turned every road into nodata."""
    from tests.io.test_masks import spacenet_mask, tagged_copy

    label = spacenet_mask(shared_data)
    tagged = tagged_copy(label, tmp_path / "tagged.tif", 255)
    result = run(tagged, "-o", tmp_path / "m.tif")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        f"Warning: {tagged}: its nodata tag 255 is also the mask's road value, so those pixels are read as road, "
        "not as missing data (missing data needs a value of its own, as predict's 255 beside 0 and 1)"]
    with rasterio.open(label) as src:
        expected = (src.read(1) > 0).astype(np.uint8)
    with rasterio.open(tmp_path / "m.tif") as src:
        np.testing.assert_array_equal(src.read(1), expected)
        assert src.tags()["ROADSEG_CONTENT"] == "mask" and src.nodata == 255
