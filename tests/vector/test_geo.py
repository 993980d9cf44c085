import math

import numpy as np
import pytest
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.crs import CRS
from rasterio.transform import xy

from roadseg.vector import geo


class TestPixelCentres:
    def test_known_pixel_in_utm(self):
        transform = Affine(0.5, 0, 600000, 0, -0.5, 4000000)
        x, y = geo.pixel_centres_to_crs(np.array([0, 10]), np.array([0, 20]), transform)
        np.testing.assert_allclose(x, [600000.25, 600010.25])
        np.testing.assert_allclose(y, [3999999.75, 3999994.75])

    def test_known_pixel_to_lonlat(self):
        # UTM zone 11N, easting 500000 is the central meridian -117; northing 0 is the equator.
        transform = Affine(1, 0, 499999.5, 0, -1, 0.5)
        x, y = geo.pixel_centres_to_crs(np.array([0]), np.array([0]), transform)
        lon, lat = geo.reproject_xy(x, y, CRS.from_epsg(32611), geo.LONLAT)
        assert lon[0] == pytest.approx(-117.0, abs=1e-9)
        assert lat[0] == pytest.approx(0.0, abs=1e-9)

    @settings(max_examples=30, deadline=None)
    @given(st.floats(0.1, 100), st.floats(-5, 5), st.floats(-1e6, 1e6), st.floats(-5, 5), st.floats(-100, -0.1),
           st.floats(-1e6, 1e6), st.integers(0, 5000), st.integers(0, 5000))
    def test_matches_rasterio_centres(self, a, b, c, d, e, f, row, col):
        transform = Affine(a, b, c, d, e, f)
        x, y = geo.pixel_centres_to_crs(np.array([row]), np.array([col]), transform)
        rx, ry = xy(transform, row, col, offset="center")
        assert x[0] == pytest.approx(rx, rel=1e-12, abs=1e-6)
        assert y[0] == pytest.approx(ry, rel=1e-12, abs=1e-6)


class TestGroundLengths:
    @pytest.mark.parametrize("lat, per_lon, per_lat", [
        (0.0, 111319.49, 110574.27),  # published WGS 84 values
        (45.0, 78846.81, 111131.75),
        (60.0, 55799.98, 111412.24),
    ])
    def test_metres_per_degree(self, lat, per_lon, per_lat):
        got_lon, got_lat = geo.metres_per_degree(lat)
        assert got_lon == pytest.approx(per_lon, rel=1e-5)
        assert got_lat == pytest.approx(per_lat, rel=1e-5)

    def test_utm_line_length_is_about_planar(self):
        xs = np.array([600000.0, 601000.0])
        ys = np.array([4000000.0, 4000000.0])
        # UTM scale factor near 100 km from the central meridian is ~0.9997: within 0.1 %
        assert geo.ground_length(xs, ys, CRS.from_epsg(32611)) == pytest.approx(1000, rel=1e-3)

    def test_web_mercator_metres_are_not_ground_metres(self):
        lon0, lat0 = 10.0, 60.0
        x, y = geo.reproject_xy(np.array([lon0]), np.array([lat0]), geo.LONLAT, CRS.from_epsg(3857))
        xs, ys = np.array([x[0], x[0] + 1000]), np.array([y[0], y[0]])
        # Mercator's scale on the ellipsoid is sec(lat) * sqrt(1 - e2 sin2(lat)): 1000 m of map is ~501 m
        e2 = 0.00669437999014
        expected = 1000 * math.cos(math.radians(lat0)) / math.sqrt(1 - e2 * math.sin(math.radians(lat0)) ** 2)
        assert geo.ground_length(xs, ys, CRS.from_epsg(3857)) == pytest.approx(expected, rel=1e-4)

    @settings(max_examples=30, deadline=None)
    @given(st.floats(-80, 80), st.floats(-179, 179), st.floats(0, 2 * math.pi), st.floats(1, 500))
    def test_lonlat_segment_matches_haversine(self, lat, lon, bearing, metres):
        per_lon, per_lat = geo.metres_per_degree(lat)
        lon2 = lon + metres * math.sin(bearing) / per_lon
        lat2 = lat + metres * math.cos(bearing) / per_lat
        got = geo.lonlat_segment_lengths(np.array([lon, lon2]), np.array([lat, lat2]))[0]
        # haversine on a sphere of the local mean radius: an independent estimate, good to ~0.5 %
        p1, p2 = math.radians(lat), math.radians(lat2)
        dlon = math.radians(lon2 - lon)
        h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dlon / 2) ** 2
        radius = math.sqrt(per_lon / math.cos(p1) * per_lat) * 180 / math.pi
        assert got == pytest.approx(2 * radius * math.asin(math.sqrt(h)), rel=5e-3)


class TestPixelGeometry:
    def test_lonlat_pixels_differ_in_x_and_y(self):
        # SpaceNet Las Vegas grid: 2.7e-6 degree pixels at 36.14 N
        transform = Affine(2.7e-6, 0, -115.2338076, 0, -2.7e-6, 36.1423377)
        g = geo.pixel_geometry(transform, geo.LONLAT, (1300, 1300))
        per_lon, per_lat = geo.metres_per_degree(36.14058)
        assert g.col_m == pytest.approx(2.7e-6 * per_lon, rel=1e-4)
        assert g.row_m == pytest.approx(2.7e-6 * per_lat, rel=1e-4)
        assert g.col_m < g.row_m and g.georeferenced

    def test_projected_pixels(self):
        g = geo.pixel_geometry(Affine(0.5, 0, 600000, 0, -0.5, 4000000), CRS.from_epsg(32611), (100, 100))
        assert g.col_m == pytest.approx(0.5, rel=1e-3) and g.row_m == pytest.approx(0.5, rel=1e-3)

    def test_no_georeferencing_means_pixels(self):
        g = geo.pixel_geometry(Affine.identity(), None, (10, 10))
        assert (g.col_m, g.row_m, g.georeferenced, g.metric) == (1.0, 1.0, False, False)
        g = geo.pixel_geometry(Affine.identity(), None, (10, 10), pixel_size=0.5)
        assert g.metres_to_pixels(10) == 20 and g.metric

    def test_path_length_is_anisotropic(self):
        g = geo.PixelGeometry(2.0, 3.0, georeferenced=True)
        assert g.path_length(np.array([[0, 0], [0, 4], [4, 4]])) == pytest.approx(8 + 12)


def test_parse_crs():
    assert geo.parse_crs("EPSG:32611").to_epsg() == 32611
    with pytest.raises(ValueError, match="not a CRS"):
        geo.parse_crs("EPSG:nope")
