import json

import networkx as nx
import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from click.testing import CliRunner
from rasterio.crs import CRS

from roadseg.cli.main import COMMANDS, cli
from tests.cli.test_cli_eval import one_error_line

UTM = CRS.from_epsg(32611)


def write_mask(path, array, left=600000.0, top=4000000.0):
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[1], height=array.shape[0], count=1,
                       dtype="uint8", crs=UTM, transform=Affine(0.5, 0, left, 0, -0.5, top),
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


def test_a_0_255_mask_tagged_255_keeps_its_roads(shared_data, tmp_path):
    """Issue 14: a 0/255 mask tagged nodata=255 lost all its roads, so vectorize wrote no lines."""
    from tests.io.test_masks import spacenet_mask, tagged_copy

    label = spacenet_mask(shared_data)
    tagged = tagged_copy(label, tmp_path / "tagged.tif", 255)
    plain = run(label, "-o", tmp_path / "plain.geojson", "--json")
    result = run(tagged, "-o", tmp_path / "tagged.geojson", "--json")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        f"Warning: {tagged}: its nodata tag 255 is also the mask's road value, so those pixels are read as road, "
        "not as missing data (missing data needs a value of its own, as predict's 255 beside 0 and 1)"]
    found, expected = json.loads(result.stdout), json.loads(plain.stdout)
    assert found["features"] == expected["features"] > 5
    assert found["total_length_m"] == pytest.approx(expected["total_length_m"])


def test_an_all_road_mask_says_what_happened(shared_data, tmp_path):
    """Issue 14: a mask that is road everywhere was reported as "no roads found"."""
    from tests.io.test_masks import spacenet_mask, tagged_copy

    label = spacenet_mask(shared_data)
    everywhere = tagged_copy(label, tmp_path / "all.tif", None, np.full((1300, 1300), 255))
    result = run(everywhere, "-o", tmp_path / "r.geojson")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        f"Warning: {everywhere}: road covers the whole raster (every pixel with data), one blob with no "
        "centreline to find; the output is empty (check that it is a road mask, not an inverted one)"]


def test_an_output_is_never_an_input(tmp_path):
    """Issue 14: -o or --graph onto the mask replaced the mask with the lines."""
    mask = write_mask(tmp_path / "m.tif", road(cols=(20, 180)))
    before = mask.read_bytes()
    (tmp_path / "link.tif").symlink_to(mask)
    for args in (["-o", mask], ["-o", tmp_path / "r.geojson", "--graph", tmp_path / "link.tif"],
                 ["-o", tmp_path / "sub" / ".." / "m.tif"]):
        line = one_error_line(run(mask, *args, "--overwrite"))
        assert line.startswith(f"Error: {args[-1]}: is also an input") and line.endswith("to another file")
    assert mask.read_bytes() == before and not (tmp_path / "r.geojson").exists()
    result = run(mask, "-o", tmp_path / "r.geojson", "--graph", tmp_path / "r.geojson")
    assert result.exit_code == 2 and "--graph and -o both name" in result.output


def test_one_area_in_two_crss_is_refused_as_stitch_refuses_it(shared_data, tmp_path):
    """Issue 14: vectorize wrote both sets of lines (twice the roads) for tiles stitch refused."""
    from tests.io.test_mosaic import _spacenet_and_its_utm_copy

    lonlat, utm = _spacenet_and_its_utm_copy(shared_data, tmp_path)
    line = one_error_line(run(lonlat, utm, "-o", tmp_path / "r.geojson"))
    stitched = one_error_line(CliRunner().invoke(cli, ["stitch", str(lonlat), str(utm), "-o",
                                                        str(tmp_path / "m.tif")]))
    assert line.split(";")[0] == stitched.split(";")[0] and "CRS" in line
    assert line.endswith("stitch them onto one grid first (stitch's --crs and --res) and vectorize the mosaic")
    assert not (tmp_path / "r.geojson").exists()
    result = run(lonlat, utm, "-o", tmp_path / "r.geojson", "--no-mosaic", "--quiet")  # asked for: one by one
    assert result.exit_code == 0, result.output


def test_pixel_coordinates_are_marked_for_gis_software_and_said(shared_data, tmp_path):
    """Issue 14: lines of a mask without georeferencing were pixels that GDAL and QGIS read as lon/lat."""
    from rasterio.crs import CRS as RasterioCRS

    label = shared_data / "deepglobe" / "train" / "104_mask.png"
    if not label.is_file():
        pytest.skip(f"{label} not found")
    out = tmp_path / "roads.geojson"
    result = run(label, "-o", out)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        f"Warning: {out}: in pixel coordinates (x right, y down), as the mask has no georeferencing; marked with "
        "a local pixel-grid CRS, so GIS software will not place it on a map (a georeferenced mask gives "
        "longitude/latitude)"]
    collection = json.loads(out.read_text())
    assert collection["coordinates"] == "pixel" and collection["features"]
    marked = RasterioCRS.from_user_input(collection["crs"]["properties"]["name"])  # GDAL reads it as GDAL would
    assert not marked.is_geographic and not marked.is_projected and marked.to_epsg() is None
    preview = CliRunner().invoke(cli, ["preview", str(label.with_name("104_sat.jpg")), "--roads", str(out), "-o",
                                       str(tmp_path / "look.png"), "--json"])
    assert preview.exit_code == 0, preview.output
    summary = json.loads(preview.stdout)
    assert summary["lines_drawn"] == summary["lines"] == len(collection["features"])


def test_the_spacenet_mask_as_a_geopackage_matches_its_geojson(shared_data, tmp_path):
    """Issue 15: GeoPackage holds the GeoJSON's lines and properties, plus the junctions the lines' u/v name."""
    import pyogrio

    from tests.io.test_masks import spacenet_mask
    from tests.io.test_vector_formats import assert_roads_round_trip

    label = spacenet_mask(shared_data)
    result = run(label, "-o", tmp_path / "roads.geojson", "--crs", "source", "--quiet")
    assert result.exit_code == 0, result.output
    collection = json.loads((tmp_path / "roads.geojson").read_text())
    out = tmp_path / "roads.gpkg"
    result = run(label, "-o", out, "--graph", tmp_path / "roads.graphml", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["output"] == str(out) and len(collection["features"]) > 5
    with rasterio.open(label) as src:
        source_crs = f"EPSG:{src.crs.to_epsg()}"
    assert_roads_round_trip(out, collection, source_crs, "GPKG")  # the raster's CRS without --crs
    ends = {f["properties"][end] for f in collection["features"] for end in ("u", "v")}
    _, _, _, (ids, degrees, *_) = pyogrio.raw.read(out, layer="junctions")
    assert set(ids.tolist()) == ends and degrees.max() >= 3
    graph = nx.read_graphml(tmp_path / "roads.graphml")
    assert {int(n): d["degree"] for n, d in graph.nodes(data=True)} == dict(zip(ids.tolist(), degrees.tolist()))
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def _single_layer(path):
    """(CRS, feature count, geometry type, layer count) of a FlatGeobuf (read by GDAL) or GeoParquet file
    (read by geopandas: pyogrio's GDAL may lack the Parquet driver)."""
    import pyogrio

    if path.suffix == ".parquet":
        from tests.io.test_vector_formats import read_geoparquet

        frame, geo = read_geoparquet(path)
        crs = None if frame.crs is None else f"EPSG:{frame.crs.to_epsg()}"
        return crs, len(frame), geo["columns"]["geometry"]["geometry_types"][0], 1
    info = pyogrio.read_info(path)
    return info["crs"], info["features"], info["geometry_type"], len(pyogrio.list_layers(path))


@pytest.mark.parametrize("suffix", [".fgb", ".parquet"])
def test_single_layer_formats_keep_the_rasters_crs_unless_crs_says(tmp_path, suffix):
    mask = write_mask(tmp_path / "m.tif", road(cols=(20, 180)))
    result = run(mask, "-o", tmp_path / f"utm{suffix}", "--quiet")
    assert result.exit_code == 0, result.output
    assert _single_layer(tmp_path / f"utm{suffix}") == ("EPSG:32611", 1, "LineString", 1)
    result = run(mask, "-o", tmp_path / f"lonlat{suffix}", "--crs", "EPSG:4326", "--quiet")
    assert result.exit_code == 0, result.output
    assert _single_layer(tmp_path / f"lonlat{suffix}")[0] == "EPSG:4326"
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_an_unknown_extension_lists_the_known_ones(tmp_path):
    mask = write_mask(tmp_path / "m.tif", road())
    result = run(mask, "-o", tmp_path / "roads.shp")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.strip().splitlines() == [
        "Error: Invalid value for --output: must end in one of .geojson, .json, .gpkg, .parquet, .fgb (the format "
        "follows the extension), got 'roads.shp'"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tif"]


def test_polygons_as_a_geopackage_have_no_junctions(tmp_path):
    import pyogrio

    mask = write_mask(tmp_path / "m.tif", road(cols=(20, 180)))
    result = run(mask, "-o", tmp_path / "areas.gpkg", "--polygons", "--quiet")
    assert result.exit_code == 0, result.output
    assert pyogrio.list_layers(tmp_path / "areas.gpkg").tolist() == [["roads", "Polygon"]]
    assert pyogrio.read_info(tmp_path / "areas.gpkg")["crs"] == "EPSG:32611"


def write_prob(path, array, like):
    """A float probability map on the grid of the raster ``like``."""
    with rasterio.open(like) as src:
        profile = {**src.profile, "dtype": "float32", "nodata": None}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array.astype(np.float32), 1)
    return path


def test_prob_beside_the_spacenet_mask_gives_every_road_its_evidence(tmp_path, shared_data):
    mask_path = shared_data / "spacenet-vegas-pan" / "sample_road_raster_mask.tif"
    with rasterio.open(mask_path) as src:
        road = src.read(1) > 0
    prob = np.where(road, 0.9, 0.2)
    prob_path = write_prob(tmp_path / "sample_prob.tif", prob, mask_path)
    out = tmp_path / "roads.geojson"
    result = run(mask_path, "--prob", prob_path, "-o", out)
    assert result.exit_code == 0, result.output
    features = json.loads(out.read_text())["features"]
    assert features
    for props in (f["properties"] for f in features):
        assert 0.2 - 1e-6 <= props["prob_min"] <= props["prob_mean"] <= 0.9 + 1e-6
        assert isinstance(props["gap_closed"], bool) and props["length_m"] > 0
    plain = tmp_path / "plain.geojson"
    assert run(mask_path, "-o", plain).exit_code == 0
    plain_props = [f["properties"] for f in json.loads(plain.read_text())["features"]]
    assert [p["gap_closed"] for p in plain_props] == [f["properties"]["gap_closed"] for f in features]
    assert all("prob_mean" not in p for p in plain_props)


def test_prob_on_another_grid_is_refused_naming_it(tmp_path):
    mask = write_mask(tmp_path / "m.tif", road(cols=(20, 180)))
    other = write_mask(tmp_path / "o.tif", road(), left=700000.0)
    prob = write_prob(tmp_path / "p.tif", np.full((200, 200), 0.5), other)
    line = one_error_line(run(mask, "--prob", prob, "-o", tmp_path / "r.geojson"))
    assert str(prob) in line and "grid" in line and "--prob" in line


def test_prob_that_is_a_mask_or_beside_threshold_is_refused(tmp_path):
    mask = write_mask(tmp_path / "m.tif", road(cols=(20, 180)))
    line = one_error_line(run(mask, "--prob", mask, "-o", tmp_path / "r.geojson"))
    assert "not probabilities" in line
    prob = write_prob(tmp_path / "p.tif", np.full((200, 200), 0.5), mask)
    result = run(prob, "--threshold", "0.5", "--prob", prob, "-o", tmp_path / "r.geojson")
    assert result.exit_code != 0 and "--prob" in result.output and "Traceback" not in result.output


def test_prob_folder_matches_mosaicked_masks_by_stem(tmp_path):
    masks, probs = tmp_path / "masks", tmp_path / "probs"
    masks.mkdir(), probs.mkdir()
    left = write_mask(masks / "a_mask.tif", road())
    right = write_mask(masks / "b_mask.tif", road(), left=600100.0)  # touching: one mosaic
    write_prob(probs / "a_prob.tif", np.full((200, 200), 0.8), left)
    write_prob(probs / "b_prob.tif", np.full((200, 200), 0.4), right)
    out = tmp_path / "r.geojson"
    result = run(masks, "--prob", probs, "-o", out)
    assert result.exit_code == 0, result.output
    (feature,) = json.loads(out.read_text())["features"]
    props = feature["properties"]
    assert props["prob_min"] == pytest.approx(0.4, abs=1e-4)
    assert 0.4 < props["prob_mean"] < 0.8 and props["gap_closed"] is False
    (probs / "b_prob.tif").unlink()
    line = one_error_line(run(masks, "--prob", probs, "-o", tmp_path / "s.geojson"))
    assert "b_mask.tif" in line and "--prob" in line


def test_a_mosaic_vectorized_in_blocks_is_the_whole_mosaic(tmp_path):
    """Four 200 px tiles (a 400 x 400 mosaic) with roads across the tile and block seams, in 64 px blocks."""
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    mosaic = np.zeros((400, 400), np.uint8)
    mosaic[195:205, 10:390] = 1  # along the tiles' seam
    mosaic[10:390, 120:128] = 1
    rows = np.arange(20, 380)
    for width in range(-4, 5):  # a diagonal through the corner the four tiles share
        mosaic[rows, np.clip(rows + width, 0, 399)] = 1
    for r in (0, 200):
        for c in (0, 200):
            write_mask(tiles / f"t{r}_{c}_mask.tif", mosaic[r:r + 200, c:c + 200].copy(),
                       left=600000.0 + c * 0.5, top=4000000.0 - r * 0.5)
    runs = {}
    for name, flag in (("whole", "whole"), ("blocks", "64")):
        out = tmp_path / f"{name}.geojson"
        result = run(tiles, "-o", out, "--block-size", flag, "--json", "--crs", "source")
        assert result.exit_code == 0, result.output
        runs[name] = (json.loads(result.output), json.loads(out.read_text())["features"])
    (whole, whole_features), (blocks, block_features) = runs["whole"], runs["blocks"]
    assert blocks["counts"]["blocks"] == 49 and "blocks" not in whole["counts"]
    assert blocks["features"] == whole["features"] > 3
    assert blocks["total_length_m"] == pytest.approx(whole["total_length_m"], rel=0.005)
    lines = [shapely.MultiLineString([f["geometry"]["coordinates"] for f in features])
             for features in (whole_features, block_features)]
    assert lines[0].hausdorff_distance(lines[1]) <= 0.5  # 1 px of 0.5 m


def test_block_size_is_pixels_or_whole(tmp_path):
    mask = write_mask(tmp_path / "m.tif", road())
    result = run(mask, "-o", tmp_path / "r.geojson", "--block-size", "8")
    assert result.exit_code == 2 and "at least 16 pixels" in result.output
    result = run(mask, "-o", tmp_path / "r.geojson", "--block-size", "big")
    assert result.exit_code == 2 and "'whole'" in result.output


def write_predict_outputs(folder, stem, prob, variance, left=600000.0):
    """What ``predict --save-uncertainty`` writes for one image, through roadseg's own writers: ``<stem>_mask``
    and ``<stem>_uncertainty`` on one 0.5 m UTM grid."""
    from roadseg.io.grid import RasterGrid
    from roadseg.io.raster_write import encode_mask, encode_prob, open_mask_writer, open_uncertainty_writer

    grid = RasterGrid(*prob.shape, UTM, Affine(0.5, 0, left, 0, -0.5, 4000000.0))
    valid = ~np.isnan(variance)
    for writer, block in ((open_mask_writer(folder / f"{stem}_mask.tif", grid, png=False), encode_mask(prob, valid)),
                          (open_uncertainty_writer(folder / f"{stem}_uncertainty.tif", grid),
                           encode_prob(variance, valid))):
        writer.write(0, block)
        writer.close()
    return folder / f"{stem}_mask.tif", folder / f"{stem}_uncertainty.tif"


def band_variance(values):
    """A TTA variance that depends on the column only (a road's mean is then that of its columns)."""
    return np.tile(np.asarray(values, np.float32), (200, 1))


@pytest.fixture
def predicted(tmp_path):
    """Two tiles of one road, side by side, as predict writes them into ``masks/``, with their variance."""
    folder = tmp_path / "masks"
    folder.mkdir()
    prob = np.where(road() == 1, 0.9, 0.1).astype(np.float32)
    write_predict_outputs(folder, "a", prob, band_variance(np.full(200, 0.02)))
    write_predict_outputs(folder, "b", prob, band_variance(np.linspace(0.0, 0.2, 200)), left=600100.0)
    return folder


@pytest.mark.parametrize("suffix", [".gpkg", ".geojson", ".fgb", ".parquet"])
def test_uncertainty_folder_beside_predicts_masks_gives_uncertainty_mean(tmp_path, predicted, suffix):
    import geopandas

    out = tmp_path / f"roads{suffix}"
    result = run(predicted, "--uncertainty", predicted, "-o", out, "--crs", "source")
    assert result.exception is None and result.exit_code == 0, result.output
    roads = geopandas.read_file(out) if suffix != ".parquet" else geopandas.read_parquet(out)
    assert len(roads) == 1 and roads["uncertainty_mean"].dtype == np.float64
    xs = shapely.get_coordinates(roads.geometry.iloc[0])[:, 0]
    cols = np.arange(np.floor((xs.min() - 600000.0) * 2), np.floor((xs.max() - 600000.0) * 2) + 1).astype(int)
    variance = np.concatenate([np.full(200, 0.02), np.linspace(0.0, 0.2, 200)])  # of the mosaic's 400 columns
    assert roads["uncertainty_mean"].iloc[0] == pytest.approx(variance[cols].mean(), abs=1e-5)
    assert "prob_mean" not in roads.columns
    if suffix == ".gpkg":  # window by window, the same
        blocks = tmp_path / "blocks.geojson"
        result = run(predicted, "--uncertainty", predicted, "-o", blocks, "--crs", "source", "--block-size", "64")
        assert result.exit_code == 0, result.output
        (feature,) = json.loads(blocks.read_text())["features"]
        assert feature["properties"]["uncertainty_mean"] == pytest.approx(roads["uncertainty_mean"].iloc[0], abs=1e-9)


def test_uncertainty_beside_probability_maps_read_at_a_threshold(tmp_path, predicted):
    for stem in ("a", "b"):
        write_prob(predicted / f"{stem}_prob.tif", np.where(road() == 1, 0.8, 0.1), predicted / f"{stem}_mask.tif")
    out = tmp_path / "roads.geojson"
    result = run(predicted, "--threshold", "0.5", "--uncertainty", predicted, "-o", out)
    assert result.exit_code == 0, result.output
    (feature,) = json.loads(out.read_text())["features"]
    props = feature["properties"]
    assert props["source"].endswith("a_prob.tif;" + str(predicted / "b_prob.tif"))
    assert props["prob_mean"] == pytest.approx(0.8, abs=1e-4) and 0.02 < props["uncertainty_mean"] < 0.2


def test_uncertainty_without_data_along_a_road_is_null_in_a_geopackage(tmp_path):
    import pyogrio

    prob = np.where(road() == 1, 0.9, 0.1).astype(np.float32)
    variance = band_variance(np.full(200, 0.01))
    mask, _ = write_predict_outputs(tmp_path, "a", prob, variance)
    other = write_mask(tmp_path / "c_mask.tif", road((0, 100)), left=600200.0)  # apart: vectorized on its own
    empty = tmp_path / "c_uncertainty.tif"
    with rasterio.open(tmp_path / "a_uncertainty.tif") as src:
        profile, tags = src.profile, src.tags()
    with rasterio.open(empty, "w", **{**profile, "transform": Affine(0.5, 0, 600200.0, 0, -0.5, 4000000.0)}) as dst:
        dst.write(np.full((1, 200, 200), np.nan, np.float32))
        dst.update_tags(**tags)
    out = tmp_path / "roads.gpkg"
    result = run(mask, other, "--uncertainty", tmp_path / "a_uncertainty.tif", "--uncertainty", empty, "-o", out)
    assert result.exit_code == 0, result.output
    table = pyogrio.read_dataframe(out, layer="roads")
    assert table["uncertainty_mean"].isna().sum() == 1 and table["uncertainty_mean"].notna().sum() == 1
    assert pyogrio.read_info(out, layer="roads")["dtypes"][list(table.columns).index("uncertainty_mean")] == "float64"


def test_uncertainty_refusals_are_one_line_and_write_nothing(tmp_path, predicted):
    out = tmp_path / "roads.gpkg"
    mask = predicted / "a_mask.tif"
    prob = write_prob(tmp_path / "a_prob.tif", np.full((200, 200), 0.5), mask)
    line = one_error_line(run(mask, "--uncertainty", prob, "-o", out))  # a probability map is no variance
    assert str(prob) in line and "not an uncertainty map" in line and "--save-uncertainty" in line
    line = one_error_line(run(mask, "--prob", predicted / "a_uncertainty.tif", "-o", out))
    assert "a_uncertainty.tif: is predict's uncertainty map" in line and "--uncertainty" in line
    shifted = tmp_path / "shifted"
    shifted.mkdir()
    _, elsewhere = write_predict_outputs(shifted, "a", np.zeros((200, 200), np.float32),
                                         band_variance(np.zeros(200)), left=600300.0)
    line = one_error_line(run(mask, "--uncertainty", elsewhere, "-o", out))
    assert str(elsewhere) in line and "grid" in line and "--uncertainty" in line
    (predicted / "b_uncertainty.tif").unlink()
    line = one_error_line(run(predicted, "--uncertainty", predicted, "-o", out))
    assert "b_mask.tif: no uncertainty map b_uncertainty" in line and "--uncertainty" in line
    (predicted / "b_uncertainty.tif").write_bytes((predicted / "a_uncertainty.tif").read_bytes())
    (predicted / "sub").mkdir()
    (predicted / "sub" / "a_uncertainty.tif").write_bytes((predicted / "a_uncertainty.tif").read_bytes())
    line = one_error_line(run(predicted, "--uncertainty", predicted, "-r", "-o", out))
    assert "a second uncertainty map for stem 'a'" in line
    assert not out.exists()
    (tmp_path / "empty").mkdir()
    result = run(mask, "--uncertainty", tmp_path / "empty", "-o", out)
    assert result.exit_code == 2 and "no uncertainty maps found" in result.output and not out.exists()
