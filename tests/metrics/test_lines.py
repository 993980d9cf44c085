"""line_agreement reads FeatureCollections with the shared GeoJSON line reader."""

import pytest
import shapely

from roadseg.metrics.lines import line_agreement

EAST = [[-115.232, 36.14], [-115.228, 36.14]]


def collection(*geometries):
    return {"type": "FeatureCollection",
            "features": [{"type": "Feature", "properties": {}, "geometry": g} for g in geometries]}


def test_a_collection_agrees_with_its_own_geometries():
    data = collection({"type": "LineString", "coordinates": EAST})
    agreement = line_agreement(data, [shapely.LineString(EAST)], tolerance_m=1.0)
    assert agreement.recall == pytest.approx(1) and agreement.precision == pytest.approx(1)
    assert agreement.length_ratio == pytest.approx(1) and 350 < agreement.true_length_m < 370


def test_multilinestrings_count_and_points_do_not():
    half = [EAST[0], [-115.230, 36.14]]
    split = collection({"type": "MultiLineString", "coordinates": [half, [half[1], EAST[1]]]},
                       {"type": "Point", "coordinates": EAST[0]})
    agreement = line_agreement(split, collection({"type": "LineString", "coordinates": EAST}))
    assert agreement.length_ratio == pytest.approx(1) and agreement.recall == pytest.approx(1)
