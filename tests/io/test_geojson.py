"""The one reader of GeoJSON lines (roadseg.io.geojson.geojson_lines) behind APLS, line agreement and previews."""

import numpy as np
import pytest

from roadseg.io.geojson import DRAWN_TYPES, geojson_lines, geometry_lines

LINE = {"type": "LineString", "coordinates": [[0, 0], [1, 1, 7]]}
RING = [[0, 0], [1, 0], [1, 1], [0, 0]]


def feature(geometry):
    return {"type": "Feature", "properties": {}, "geometry": geometry}


def collection(*geometries):
    return {"type": "FeatureCollection", "features": [feature(g) for g in geometries]}


def test_lines_of_a_collection_a_feature_and_a_bare_geometry():
    for data in (collection(LINE), feature(LINE), LINE):
        lines, skipped = geojson_lines(data)
        assert [line.tolist() for line in lines] == [[[0, 0], [1, 1]]] and skipped == 0


def test_other_geometries_are_counted_and_null_ones_ignored():
    data = collection(LINE, {"type": "MultiLineString", "coordinates": [[[0, 0], [2, 0]], [[3, 3], [4, 4]]]},
                      {"type": "Point", "coordinates": [0, 0]}, {"type": "Polygon", "coordinates": [RING]},
                      {"type": "GeometryCollection", "geometries": [LINE]}, None)
    lines, skipped = geojson_lines(data)
    assert len(lines) == 3 and skipped == 3
    assert all(line.shape[1] == 2 and line.dtype == np.float64 for line in lines)


def test_drawn_types_add_rings_and_collection_members():
    data = collection({"type": "MultiPolygon", "coordinates": [[RING, RING]]},
                      {"type": "GeometryCollection", "geometries": [LINE, {"type": "Point", "coordinates": [0, 0]}]})
    lines, skipped = geojson_lines(data, DRAWN_TYPES)
    assert [len(line) for line in lines] == [4, 4, 2] and skipped == 1


def test_malformed_coordinates_and_odd_members():
    with pytest.raises(ValueError, match="a LineString has malformed coordinates"):
        geometry_lines({"type": "LineString", "coordinates": [1, 2]})
    assert geojson_lines({"type": "FeatureCollection", "features": None}) == ([], 0)
    assert geojson_lines({"type": "FeatureCollection", "features": ["not a feature"]}) == ([], 0)
    assert geometry_lines({"type": "LineString"}) == ([], 0)


def test_pixel_coordinates_are_written_with_a_warning(tmp_path):
    """Issue 14: GeoJSON in pixels was written silently, and GIS software read the pixels as lon/lat."""
    import json
    import warnings

    from roadseg.io.geojson import write_geojson
    from roadseg.vector.vectorize import feature_collection

    pixels = feature_collection([feature(LINE)], None, georeferenced=False)
    with pytest.warns(UserWarning, match=r"pixels.geojson: in pixel coordinates \(x right, y down\)"):
        write_geojson(pixels, tmp_path / "pixels.geojson")
    assert json.loads((tmp_path / "pixels.geojson").read_text()) == pixels
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_geojson(feature_collection([feature(LINE)], None), tmp_path / "lonlat.geojson")
