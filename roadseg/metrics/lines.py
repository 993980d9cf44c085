"""How well one set of road lines matches another, in metres: total length, and length within a tolerance.

Used by the vectorize quality test and benchmark against SpaceNet centrelines. Lines are taken from
lon/lat to a local equirectangular frame in metres around their common centre, accurate to well under
a millimetre per metre over the few kilometres of a tile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely

from roadseg.io.geojson import geojson_lines
from roadseg.vector.geo import metres_per_degree


@dataclass(frozen=True)
class LineAgreement:
    """``recall``: share of true length within ``tolerance_m`` of a found line; ``precision``: the reverse."""

    found_length_m: float
    true_length_m: float
    recall: float
    precision: float
    tolerance_m: float

    @property
    def length_ratio(self) -> float:
        return self.found_length_m / self.true_length_m if self.true_length_m else float("nan")


def _lines(collection_or_geoms) -> list:
    """Shapely lines of a GeoJSON dict (read by :func:`roadseg.io.geojson.geojson_lines`), or the geometries given."""
    if isinstance(collection_or_geoms, dict):
        return [shapely.LineString(line) for line in geojson_lines(collection_or_geoms).lines]
    return list(collection_or_geoms)


def to_local_metres(geoms: Sequence, lon0: float, lat0: float) -> list:
    """Lon/lat geometries in metres east and north of ``(lon0, lat0)``."""
    per_lon, per_lat = metres_per_degree(lat0)
    return [shapely.transform(g, lambda xy: (xy - [lon0, lat0]) * [per_lon, per_lat]) for g in geoms]


def line_agreement(found, truth, *, tolerance_m: float = 2.0) -> LineAgreement:
    """Compare lon/lat lines (FeatureCollection dicts or shapely geometries) in metres."""
    found_geoms, true_geoms = _lines(found), _lines(truth)
    every = shapely.GeometryCollection(found_geoms + true_geoms)
    lon0, lat0 = np.asarray(every.centroid.coords[0]) if not every.is_empty else (0.0, 0.0)
    found_m = shapely.union_all(to_local_metres(found_geoms, lon0, lat0))
    true_m = shapely.union_all(to_local_metres(true_geoms, lon0, lat0))
    found_len, true_len = float(found_m.length), float(true_m.length)
    near_found = float(true_m.intersection(found_m.buffer(tolerance_m)).length)
    near_true = float(found_m.intersection(true_m.buffer(tolerance_m)).length)
    recall = near_found / true_len if true_len else float("nan")
    precision = near_true / found_len if found_len else float("nan")
    return LineAgreement(found_len, true_len, recall, precision, tolerance_m)
