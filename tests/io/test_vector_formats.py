"""Vectorize results in the formats GIS users open (roadseg.io.vector_formats.write_roads), read back with
pyogrio (and ``ogrinfo`` where it is installed)."""

from __future__ import annotations

import math
import shutil
import subprocess
import warnings

import numpy as np
import pyogrio
import pyogrio.raw
import pytest
import shapely
from affine import Affine
from pyogrio.raw import read

from roadseg.errors import BadParameterError, OutputError, OutputExistsError
from roadseg.io.geojson import write_geojson
from roadseg.io.vector_formats import VECTOR_FORMATS, write_roads
from roadseg.vector.vectorize import VectorizeOptions, vectorize

UTM_TRANSFORM = Affine(0.5, 0, 600000.0, 0, -0.5, 4000000.0)
GDAL_FORMATS = [(suffix, fmt) for suffix, fmt in VECTOR_FORMATS.items() if fmt.driver is not None]


def needs_driver(driver: str) -> None:
    """Skip, saying why, where pyogrio's GDAL cannot write ``driver``."""
    if "w" not in pyogrio.list_drivers().get(driver, ""):
        pytest.skip(f"pyogrio {pyogrio.__version__}'s GDAL {pyogrio.__gdal_version_string__} has no {driver} "
                    "driver to write with")


def crossroads():
    """A T of roads in UTM zone 11N: three edges meeting at one junction (degree 3) and three dead ends."""
    mask = np.zeros((200, 200), np.uint8)
    mask[95:105, 10:190] = 1
    mask[100:190, 95:105] = 1
    return vectorize(mask, VectorizeOptions(out_crs="source"), transform=UTM_TRANSFORM, crs="EPSG:32611")


def same_value(read_back, written) -> bool:
    """A field read back equals the property written (a null is NaN or None, numbers to float precision)."""
    if written is None:
        return read_back is None or (isinstance(read_back, float) and math.isnan(read_back))
    if isinstance(written, (int, float)):
        return float(read_back) == pytest.approx(float(written))
    return read_back == written


def assert_roads_round_trip(path, collection, crs, driver, layer="roads"):
    """``path``'s roads layer holds ``collection``'s features: count, type, CRS, every property, every vertex."""
    info = pyogrio.read_info(path, layer=layer)
    features = collection["features"]
    assert info["driver"] == driver and info["crs"] == crs
    assert info["geometry_type"] == features[0]["geometry"]["type"]
    meta, _, wkb, fields = read(path, layer=layer)
    assert len(wkb) == len(features) and sorted(meta["fields"]) == sorted(features[0]["properties"])
    by_id = {int(i): row for row, i in enumerate(fields[list(meta["fields"]).index("id")])}
    geometries = pyogrio_geometries(wkb)
    for feature in features:
        row = by_id[feature["properties"]["id"]]
        for name, values in zip(meta["fields"], fields):
            assert same_value(values[row], feature["properties"][name]), (name, feature["properties"])
        written = shapely.get_coordinates(shapely.geometry.shape(feature["geometry"]))
        np.testing.assert_allclose(geometries[row], written, rtol=0, atol=1e-6)


def pyogrio_geometries(wkb):
    """The vertices of each geometry read back, as ``(N, 2)`` arrays."""
    return [shapely.get_coordinates(geometry) for geometry in shapely.from_wkb(wkb)]


def ogrinfo_summary(path) -> str:
    """``ogrinfo -so -al`` of a written file, as the GDAL command-line tools read it."""
    if shutil.which("ogrinfo") is None:
        pytest.skip("the ogrinfo binary (GDAL's command-line tools) is not on PATH")
    done = subprocess.run(["ogrinfo", "-so", "-al", str(path)], capture_output=True, text=True, check=True)
    return done.stdout


def test_a_geopackage_holds_the_roads_and_their_junctions_in_the_rasters_crs(tmp_path):
    result = crossroads()
    path = write_roads(result.collection, tmp_path / "roads.gpkg", graph=result.graph)
    assert pyogrio.list_layers(path).tolist() == [["roads", "LineString"], ["junctions", "Point"]]
    assert_roads_round_trip(path, result.collection, "EPSG:32611", "GPKG")
    assert result.n_features == 3

    meta, _, wkb, fields = read(path, layer="junctions")
    columns = dict(zip(meta["fields"], fields))
    ends = {p["u"] for p in (f["properties"] for f in result.collection["features"])} | \
           {p["v"] for p in (f["properties"] for f in result.collection["features"])}
    assert set(columns["id"].tolist()) == ends == set(result.graph.nodes)
    assert sorted(columns["degree"].tolist()) == [1, 1, 1, 3]
    assert {int(i): int(d) for i, d in zip(columns["id"], columns["degree"])} == dict(result.graph.degree)
    for node, point in zip(columns["id"], pyogrio_geometries(wkb)):
        data = result.graph.nodes[int(node)]
        np.testing.assert_allclose(point[0], [data["x"], data["y"]])
        assert columns["kind"][list(columns["id"]).index(node)] == data["kind"]


@pytest.mark.parametrize("suffix,fmt", [pair for pair in GDAL_FORMATS if pair[0] != ".gpkg"],
                         ids=lambda value: getattr(value, "name", value))
def test_single_layer_formats_hold_the_roads(tmp_path, suffix, fmt):
    needs_driver(fmt.driver)
    result = crossroads()
    path = write_roads(result.collection, tmp_path / f"roads{suffix}", graph=result.graph)
    assert len(pyogrio.list_layers(path)) == 1
    assert_roads_round_trip(path, result.collection, "EPSG:32611", fmt.driver, layer=0)


def test_the_crs_is_the_collections_wgs84_when_it_names_none(tmp_path):
    mask = np.zeros((200, 200), np.uint8)
    mask[95:105, 10:190] = 1
    result = vectorize(mask, transform=UTM_TRANSFORM, crs="EPSG:32611")  # out_crs EPSG:4326, as RFC 7946
    path = write_roads(result.collection, tmp_path / "roads.fgb")
    assert_roads_round_trip(path, result.collection, "EPSG:4326", "FlatGeobuf", layer=0)
    assert -118 < pyogrio.read_info(path)["total_bounds"][0] < -115  # longitude first


def write_pixel_roads(path):
    """A road across a mask without georeferencing, written to ``path``, and the warning that says so."""
    mask = np.zeros((40, 80), bool)
    mask[18:22, :] = True
    result = vectorize(mask)
    with pytest.warns(UserWarning, match=rf"{path.name}: in pixel coordinates .* written without a CRS"):
        write_roads(result.collection, path, graph=result.graph)
    return result


def test_pixel_coordinates_are_written_without_a_crs_and_said(tmp_path):
    path = tmp_path / "roads.gpkg"
    result = write_pixel_roads(path)
    assert pyogrio.read_info(path, layer="roads")["crs"] is None
    assert pyogrio.read_info(path, layer="junctions")["crs"] is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_roads_round_trip(path, result.collection, None, "GPKG")  # length_m is null: no pixel size


def test_polygons_and_an_empty_result_keep_their_layers(tmp_path):
    mask = np.zeros((200, 200), np.uint8)
    mask[95:105, 10:190] = 1
    polygons = vectorize(mask, VectorizeOptions(polygons=True), transform=UTM_TRANSFORM, crs="EPSG:32611")
    path = write_roads(polygons.collection, tmp_path / "areas.gpkg")
    assert pyogrio.list_layers(path).tolist() == [["roads", "Polygon"]]
    assert_roads_round_trip(path, polygons.collection, "EPSG:4326", "GPKG")
    with pytest.warns(UserWarning, match="empty"):
        empty = vectorize(np.zeros((50, 50), np.uint8), transform=UTM_TRANSFORM, crs="EPSG:32611")
    path = write_roads(empty.collection, tmp_path / "none.gpkg", graph=empty.graph)
    assert pyogrio.list_layers(path).tolist() == [["roads", "LineString"], ["junctions", "Point"]]
    assert pyogrio.read_info(path, layer="roads")["features"] == 0
    assert pyogrio.read_info(path, layer="junctions")["features"] == 0


def test_geojson_is_written_as_before(tmp_path):
    result = crossroads()
    write_geojson(result.collection, tmp_path / "before.geojson")
    write_roads(result.collection, tmp_path / "after.geojson", graph=result.graph)
    assert (tmp_path / "after.geojson").read_bytes() == (tmp_path / "before.geojson").read_bytes()


def test_an_unknown_extension_is_one_line_listing_the_known_ones(tmp_path):
    with pytest.raises(BadParameterError) as caught:
        write_roads(crossroads().collection, tmp_path / "roads.shp")
    error = caught.value
    assert error.parameter == "output" and "\n" not in str(error) and "roads.shp" in str(error)
    assert all(suffix in error.problem for suffix in VECTOR_FORMATS)
    assert list(tmp_path.iterdir()) == []


def test_a_format_gdal_cannot_write_is_refused_in_one_line(tmp_path, monkeypatch):
    drivers = {name: mode for name, mode in pyogrio.list_drivers().items() if name != "FlatGeobuf"}
    monkeypatch.setattr(pyogrio, "list_drivers", lambda: drivers)
    with pytest.raises(OutputError) as caught:
        write_roads(crossroads().collection, tmp_path / "roads.fgb")
    message = str(caught.value)
    assert "\n" not in message and message.startswith("FlatGeobuf needs GDAL's FlatGeobuf driver")
    assert list(tmp_path.iterdir()) == []


def read_geoparquet(path):
    """A GeoParquet file as geopandas reads it, and its ``geo`` metadata (GeoParquet's own schema)."""
    import json

    import geopandas
    import pyarrow.parquet

    return geopandas.read_parquet(path), json.loads(pyarrow.parquet.read_metadata(path).metadata[b"geo"])


def test_geoparquet_holds_the_roads_with_their_crs_and_geoparquet_metadata(tmp_path):
    result = crossroads()
    path = write_roads(result.collection, tmp_path / "roads.parquet", graph=result.graph)
    frame, geo = read_geoparquet(path)
    assert geo["version"].startswith("1.") and geo["primary_column"] == "geometry"
    assert geo["columns"]["geometry"]["encoding"] == "WKB"
    assert geo["columns"]["geometry"]["geometry_types"] == ["LineString"]
    assert frame.crs.to_epsg() == 32611 and len(frame) == result.n_features == 3
    for feature in result.collection["features"]:
        row = frame[frame["id"] == feature["properties"]["id"]].iloc[0]
        for name, value in feature["properties"].items():
            assert same_value(row[name], value), (name, feature["properties"])
        np.testing.assert_allclose(shapely.get_coordinates(row.geometry),
                                   shapely.get_coordinates(shapely.geometry.shape(feature["geometry"])), atol=1e-9)
    if "r" in pyogrio.list_drivers().get("Parquet", ""):  # GDAL reads it too, where it has the driver
        assert_roads_round_trip(path, result.collection, "EPSG:32611", "Parquet", layer=0)


def test_geoparquet_keeps_nulls_null_and_booleans_boolean(tmp_path):
    line = {"type": "LineString", "coordinates": [[600000.0, 4000000.0], [600010.0, 4000000.0]]}
    collection = {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "EPSG:32611"}},
                  "features": [{"type": "Feature", "geometry": line, "properties": props} for props in
                               ({"id": 1, "gap_closed": True, "u": None, "prob_mean": 0.5, "source": "a.tif"},
                                {"id": 2, "gap_closed": None, "u": 7, "prob_mean": None, "source": None})]}
    frame, _ = read_geoparquet(write_roads(collection, tmp_path / "roads.parquet"))
    assert str(frame["gap_closed"].dtype) == "boolean" and str(frame["u"].dtype) == "Int64"
    assert frame["gap_closed"].tolist()[0] is True and frame["gap_closed"].isna().tolist() == [False, True]
    assert frame["u"].isna().tolist() == [True, False] and int(frame["u"].iloc[1]) == 7
    assert frame["prob_mean"].isna().tolist() == [False, True] and frame["source"].isna().tolist() == [False, True]


def test_geoparquet_in_pixel_coordinates_has_no_crs_and_an_existing_file_is_kept(tmp_path):
    path = tmp_path / "roads.parquet"
    write_pixel_roads(path)
    frame, _ = read_geoparquet(path)
    assert frame.crs is None and len(frame) == 1
    before = path.read_bytes()
    with pytest.raises(OutputExistsError), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_roads(crossroads().collection, path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["roads.parquet"]


def test_written_atomically_and_never_over_an_output_without_overwrite(tmp_path, monkeypatch):
    result = crossroads()
    path = tmp_path / "roads.gpkg"
    path.write_text("keep")
    with pytest.raises(OutputExistsError, match="`overwrite`"):
        write_roads(result.collection, path, graph=result.graph)
    assert path.read_text() == "keep"
    write_roads(result.collection, path, graph=result.graph, overwrite=True)
    assert pyogrio.read_info(path, layer="roads")["features"] == 3

    def fail_halfway(temp, *args, **kwargs):
        (tmp_path / "seen").write_text(str(temp))
        raise pyogrio.errors.DataSourceError(f"{temp}: disk\nhiccup")

    monkeypatch.setattr(pyogrio.raw, "write", fail_halfway)
    with pytest.raises(OutputError) as caught:
        write_roads(result.collection, tmp_path / "other.fgb")
    temp = (tmp_path / "seen").read_text()
    assert str(caught.value).startswith(f"{tmp_path / 'other.fgb'}: GDAL could not write the roads layer")
    assert temp not in str(caught.value) and "\n" not in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["roads.gpkg", "seen"]


@pytest.mark.parametrize("suffix,fmt", [*GDAL_FORMATS, (".parquet", VECTOR_FORMATS[".parquet"])],
                         ids=lambda value: getattr(value, "name", value))
def test_gdal_tools_read_what_was_written(tmp_path, suffix, fmt):
    if fmt.driver is not None:
        needs_driver(fmt.driver)
    result = crossroads()
    path = write_roads(result.collection, tmp_path / f"roads{suffix}", graph=result.graph)
    if suffix == ".parquet" and shutil.which("ogrinfo") and "Parquet" not in subprocess.run(
            ["ogrinfo", "--formats"], capture_output=True, text=True).stdout:
        pytest.skip("this ogrinfo's GDAL has no Parquet driver to read GeoParquet with")
    summary = ogrinfo_summary(path)
    assert "Feature Count: 3" in summary and "32611" in summary and "Geometry: Line String" in summary
    assert ("Layer name: junctions" in summary) == ("junctions" in fmt.layers)


@pytest.mark.parametrize("suffix, fmt", GDAL_FORMATS)
def test_evidence_round_trips_as_boolean_and_real_fields(tmp_path, suffix, fmt):
    needs_driver(fmt.driver)
    mask = np.zeros((200, 200), np.uint8)
    mask[95:105, 10:90] = mask[95:105, 96:190] = 1  # a gap that closing joins
    prob = np.where(mask > 0, 0.9, 0.3)
    result = vectorize(mask, VectorizeOptions(out_crs="source"), transform=UTM_TRANSFORM, crs="EPSG:32611",
                       prob=prob)
    (feature,) = result.collection["features"]
    path = write_roads(result.collection, tmp_path / f"roads{suffix}")
    meta, _, _, fields = read(path, layer="roads")
    column = dict(zip(meta["fields"], fields))
    assert column["gap_closed"].dtype == bool and column["gap_closed"].tolist() == [True]
    for name in ("prob_mean", "prob_min"):
        assert column[name].dtype.kind == "f"
        assert column[name][0] == pytest.approx(feature["properties"][name])
    assert feature["properties"]["prob_min"] == pytest.approx(0.3, abs=1e-4)
