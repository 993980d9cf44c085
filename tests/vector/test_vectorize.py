import json
import warnings

import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.crs import CRS

from roadseg.cli.main import cli
from roadseg.errors import BadInputError
from roadseg.io.masks import read_mask
from roadseg.metrics.lines import line_agreement
from roadseg.vector.geo import reproject_xy
from roadseg.vector.vectorize import VectorizeOptions, vectorize, vectorize_files

UTM = CRS.from_epsg(32611)
ORIGIN = (600000.0, 4000000.0)


def utm_transform(left=ORIGIN[0], top=ORIGIN[1], res=0.5):
    return Affine(res, 0, left, 0, -res, top)


def write_tif(path, array, *, transform=None, crs=UTM, nodata=255):
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[1], height=array.shape[0], count=1,
                       dtype=array.dtype, crs=crs, transform=transform or utm_transform(), nodata=nodata) as dst:
        dst.write(array, 1)
    return path


def horizontal_road(shape=(200, 400), row=100, width=10, cols=(50, 350)):
    mask = np.zeros(shape, np.uint8)
    mask[row - width // 2:row + width // 2, cols[0]:cols[1]] = 1
    return mask


class TestGeoJSON:
    def test_rfc7946_longitude_first_and_valid(self):
        fc = vectorize(horizontal_road(), transform=utm_transform(), crs=UTM).collection
        assert fc["type"] == "FeatureCollection" and "crs" not in fc
        (feature,) = fc["features"]
        geom = shapely.geometry.shape(feature["geometry"])
        assert feature["geometry"]["type"] == "LineString" and geom.is_valid
        lon, lat = reproject_xy(np.array([ORIGIN[0] + 100]), np.array([ORIGIN[1] - 50]), UTM, CRS.from_epsg(4326))
        first = feature["geometry"]["coordinates"][0]
        assert first[0] == pytest.approx(lon[0], abs=1e-3) and first[1] == pytest.approx(lat[0], abs=1e-3)

    def test_properties_and_true_length(self):
        fc = vectorize(horizontal_road(), transform=utm_transform(), crs=UTM).collection
        (feature,) = fc["features"]
        props = feature["properties"]
        assert set(props) >= {"id", "length_m", "u", "v", "source"}
        assert props["source"] == "array" and props["u"] != props["v"]
        # 300 px = 150 m of road; the skeleton stops about half a width (2.5 m) short at each end
        assert 140 < props["length_m"] <= 150.5

    def test_crs_source_keeps_utm_and_names_it(self):
        fc = vectorize(horizontal_road(), VectorizeOptions(out_crs="source"), transform=utm_transform(),
                       crs=UTM).collection
        assert fc["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32611"
        x, y = fc["features"][0]["geometry"]["coordinates"][0]
        assert ORIGIN[0] < x < ORIGIN[0] + 200 and ORIGIN[1] - 100 < y < ORIGIN[1]


class TestPipeline:
    def test_empty_mask_gives_empty_collection_and_warning(self):
        with pytest.warns(UserWarning, match="no roads found"):
            fc = vectorize(np.zeros((50, 50), np.uint8), transform=utm_transform(), crs=UTM).collection
        assert fc == {"type": "FeatureCollection", "features": []}

    def test_input_not_modified(self):
        mask = horizontal_road()
        before = mask.copy()
        vectorize(mask, transform=utm_transform(), crs=UTM)
        np.testing.assert_array_equal(mask, before)

    def test_probabilities_with_threshold(self):
        prob = horizontal_road().astype(np.float32) * 0.7
        assert len(vectorize(prob, VectorizeOptions(threshold=0.5), transform=utm_transform(),
                             crs=UTM).collection["features"]) == 1
        with pytest.warns(UserWarning):
            assert vectorize(prob, VectorizeOptions(threshold=0.8), transform=utm_transform(),
                             crs=UTM).collection["features"] == []

    def test_short_border_stub_survives_but_inner_spur_does_not(self):
        mask = horizontal_road(shape=(200, 400), row=100, cols=(0, 400))
        mask[80:100, 100:108] = 1  # inner spur, ~7 m at 0.5 m pixels
        mask[100:200, 300:308] = 1  # side road reaching the bottom border
        result = vectorize(mask, transform=utm_transform(), crs=UTM)
        ends = [rc for n, rc in result.graph.nodes(data="rc") if result.graph.degree(n) == 1]
        assert any(r > 190 for r, _ in ends)  # the bottom border dead end is kept
        assert not any(75 < r < 95 for r, _ in ends)  # the inner spur is pruned
        assert result.counts["spurs_pruned"] >= 1

    def test_gap_closed_in_metres(self):
        mask = horizontal_road(cols=(20, 180)) | horizontal_road(cols=(190, 380))  # 5 m gap
        fc = vectorize(mask, transform=utm_transform(), crs=UTM).collection
        assert len(fc["features"]) == 1
        fc = vectorize(mask, VectorizeOptions(max_gap=2), transform=utm_transform(), crs=UTM).collection
        assert len(fc["features"]) == 2

    def test_short_components_dropped(self):
        mask = horizontal_road() | horizontal_road(row=30, cols=(10, 40))  # second piece ~13 m
        assert len(vectorize(mask, transform=utm_transform(), crs=UTM).collection["features"]) == 1

    def test_no_georeferencing_gives_pixels(self):
        fc = vectorize(horizontal_road()).collection
        assert fc["coordinates"] == "pixel"
        (feature,) = fc["features"]
        assert feature["properties"]["length_m"] is None
        x0, y0 = feature["geometry"]["coordinates"][0]
        assert y0 == pytest.approx(100, abs=1) and 50 <= min(x0, feature["geometry"]["coordinates"][-1][0]) < 60
        fc = vectorize(horizontal_road(), VectorizeOptions(pixel_size=0.5)).collection
        assert 140 < fc["features"][0]["properties"]["length_m"] <= 150.5

    def test_polygons(self):
        fc = vectorize(horizontal_road(), VectorizeOptions(polygons=True), transform=utm_transform(),
                       crs=UTM).collection
        (feature,) = fc["features"]
        assert feature["geometry"]["type"] == "Polygon"
        assert feature["properties"]["area_m2"] == pytest.approx(150 * 5, rel=0.01)

    @pytest.mark.parametrize("field, value, match", [
        ("min_spur", -1, "min_spur"), ("max_angle", 95, "max_angle"), ("threshold", 2, "threshold"),
        ("out_crs", "EPSG:nope", "not a CRS"), ("pixel_size", 0, "pixel_size"),
    ])
    def test_bad_options(self, field, value, match):
        with pytest.raises(ValueError, match=match):
            VectorizeOptions(**{field: value})


class TestFiles:
    def test_predict_mask_nodata_is_not_road(self, tmp_path):
        mask = horizontal_road()
        mask[:, 200:] = 255
        raster = read_mask(write_tif(tmp_path / "m.tif", mask))
        assert not raster.road[:, 200:].any() and not raster.valid[:, 200:].any()
        assert raster.road[100, 100]

    def test_binary_mask_255_is_road(self, tmp_path):
        path = write_tif(tmp_path / "b.tif", horizontal_road() * 255, nodata=None)
        raster = read_mask(path)
        assert raster.road[100, 100] and raster.valid.all()
        assert len(vectorize_files([path]).collection["features"]) == 1

    def test_image_is_refused(self, tmp_path):
        image = np.arange(200 * 400, dtype=np.uint16).reshape(200, 400)
        path = write_tif(tmp_path / "img.tif", image, nodata=None)
        with pytest.raises(BadInputError, match="img.tif.*not a mask"):
            vectorize_files([path])

    def test_probability_file_needs_threshold(self, tmp_path):
        path = write_tif(tmp_path / "p.tif", horizontal_road().astype(np.float32), nodata=None)
        with pytest.raises(BadInputError, match="p.tif.*`threshold`"):
            vectorize_files([path])
        assert len(vectorize_files([path], VectorizeOptions(threshold=0.5)).collection["features"]) == 1

    def test_uint8_probability_file_is_a_probability_map(self, tmp_path):
        from roadseg.io.grid import RasterGrid
        from roadseg.io.raster_write import encode_prob, open_prob_writer

        prob = horizontal_road().astype(np.float32) * 0.7
        path = tmp_path / "p_prob.tif"
        writer = open_prob_writer(path, RasterGrid(*prob.shape, UTM, utm_transform()), "uint8")
        writer.write(0, encode_prob(prob, np.ones(prob.shape, bool), "uint8"))
        writer.close()
        with pytest.raises(BadInputError, match="p_prob.tif.*`threshold`"):
            vectorize_files([path])
        assert len(vectorize_files([path], VectorizeOptions(threshold=0.5)).collection["features"]) == 1
        with pytest.warns(UserWarning, match="no roads found"):
            assert vectorize_files([path], VectorizeOptions(threshold=0.8)).collection["features"] == []

    def test_weights_recorded_by_predict_reach_every_line(self, tmp_path):
        path = write_tif(tmp_path / "m.tif", horizontal_road())
        with rasterio.open(path, "r+") as dataset:
            dataset.update_tags(ROADSEG_WEIGHTS="smoke.ckpt (SMOKE model)")
        (feature,) = vectorize_files([path]).collection["features"]
        assert feature["properties"]["weights"] == "smoke.ckpt (SMOKE model)"
        plain = write_tif(tmp_path / "plain.tif", horizontal_road())
        assert "weights" not in vectorize_files([plain]).collection["features"][0]["properties"]

    def test_two_adjacent_tiles_give_one_line(self, tmp_path):
        road = horizontal_road(shape=(200, 200), cols=(0, 200))
        left = write_tif(tmp_path / "a.tif", road, transform=utm_transform())
        right = write_tif(tmp_path / "b.tif", road, transform=utm_transform(left=ORIGIN[0] + 100))
        result = vectorize_files([left, right])
        (feature,) = result.collection["features"]
        assert feature["properties"]["source"] == f"{left};{right}"
        assert 190 < feature["properties"]["length_m"] <= 200  # one line over both 100 m tiles
        separate = vectorize_files([left, right], VectorizeOptions(mosaic=False))
        assert len(separate.collection["features"]) == 2
        assert {f["properties"]["u"] for f in separate.collection["features"]}.isdisjoint(
            {f["properties"]["v"] for f in separate.collection["features"]})

    @pytest.mark.parametrize("threshold", [None, 0.5])
    def test_truncated_file_is_one_error(self, tmp_path, threshold):
        """The header opens but the pixels do not (a broken copy): BadInputError, not rasterio's traceback."""
        path = write_tif(tmp_path / "t.tif", horizontal_road())
        with open(path, "r+b") as handle:
            handle.truncate(path.stat().st_size // 2)
        with pytest.raises(BadInputError, match=r"t.tif: reading failed, the file may be truncated or corrupt \(.+\)$"):
            read_mask(path, threshold=threshold)
        result = CliRunner().invoke(cli, ["vectorize", str(path), "--threshold", "0.5", "-o",
                                          str(tmp_path / "o.geojson")])
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit)  # not a traceback
        assert result.output.startswith(f"Error: {path}: reading failed, the file may be truncated or corrupt (")
        assert result.output.count("\n") == 1
        assert sorted(p.name for p in tmp_path.iterdir()) == ["t.tif"]


def test_spacenet_quality(shared_data):
    """The real SpaceNet Las Vegas centrelines, burnt 4 m wide, come back (CC BY-SA 4.0, SpaceNet/Maxar)."""
    folder = shared_data / "spacenet-vegas-pan"
    mask_path = folder / "sample_road_raster_mask.tif"
    if not mask_path.is_file():
        pytest.skip(f"{mask_path} not found")
    truth = json.loads((folder / "sample_roads_for_masking.geojson").read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = vectorize_files([mask_path]).collection
    agreement = line_agreement(found, truth, tolerance_m=2.0)
    print(f"\nSpaceNet: length ratio {agreement.length_ratio:.3f}, true within 2 m {agreement.recall:.1%}, "
          f"output within 2 m {agreement.precision:.1%}")
    assert abs(agreement.length_ratio - 1) <= 0.05
    assert agreement.recall >= 0.95
    assert agreement.precision >= 0.95
    total = sum(f["properties"]["length_m"] for f in found["features"])
    assert total == pytest.approx(agreement.found_length_m, rel=0.01)  # length_m is ground metres


class TestIssue14:
    def test_all_road_says_there_is_no_centreline(self):
        with pytest.warns(UserWarning, match=r"array: road covers the whole raster .*no centreline to find"):
            assert vectorize(np.ones((60, 80), bool), transform=utm_transform(), crs=UTM).n_features == 0
        valid = np.ones((60, 80), bool)
        valid[:, :10] = False  # road everywhere the mask has data is the same blob
        with pytest.warns(UserWarning, match="road covers the whole raster"):
            vectorize(np.ones((60, 80), bool), transform=utm_transform(), crs=UTM, valid=valid)

    def test_pixel_coordinates_name_a_local_crs_that_is_no_map(self):
        from roadseg.vector.vectorize import PIXEL_CRS

        collection = vectorize(horizontal_road()).collection
        assert collection["coordinates"] == "pixel"
        assert collection["crs"] == {"type": "name", "properties": {"name": PIXEL_CRS}}
        marked = CRS.from_user_input(PIXEL_CRS)
        assert not marked.is_geographic and not marked.is_projected

    def test_tiles_of_one_area_in_two_crss_are_refused(self, shared_data, tmp_path):
        """Both sets of lines were written: 0.40 km of roads for 0.20 km of truth."""
        from tests.io.test_mosaic import _spacenet_and_its_utm_copy

        lonlat, utm = _spacenet_and_its_utm_copy(shared_data, tmp_path)
        with pytest.raises(BadInputError, match=r"CRS .* differs from .*; stitch them onto one grid first"):
            vectorize_files([lonlat, utm])
        one = vectorize_files([lonlat]).total_length_m
        apart = vectorize_files([lonlat, utm], VectorizeOptions(mosaic=False)).total_length_m
        assert apart == pytest.approx(2 * one, rel=0.05)  # what vectorizing them one by one gives

    @settings(max_examples=20, deadline=None)
    @given(st.floats(0.05, 0.95), st.integers(-150, 150))
    def test_tiles_off_the_grid_by_a_fraction_of_a_pixel_are_refused(self, tmp_path_factory, fraction, offset):
        folder = tmp_path_factory.mktemp("offgrid")
        road = horizontal_road(shape=(200, 200), cols=(0, 200))
        left = write_tif(folder / "a.tif", road)
        shifted = write_tif(folder / "b.tif", road, transform=utm_transform(left=ORIGIN[0] + (offset + fraction) * 0.5))
        with pytest.raises(BadInputError, match="b.tif: pixels are not on .*a.tif's grid"):
            vectorize_files([left, shifted])
