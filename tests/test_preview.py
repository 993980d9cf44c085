"""Preview compositing (pure numpy) and render_preview on synthetic and real rasters."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import rasterio
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.errors import NotGeoreferencedWarning
from rasterio.warp import transform as warp_transform
from scipy import ndimage

import roadseg.io.raster_read as raster_read
from roadseg.errors import BadInputError, OutputExistsError
from roadseg.io.grid import RasterGrid
from roadseg.io.raster_read import ImageScaling, RasterSource
from roadseg.io.raster_write import encode_prob, open_prob_writer
from roadseg.preview import (
    MASK_ALPHA,
    MASK_COLOUR,
    NODATA_COLOUR,
    ROAD_COLOUR,
    PreviewStyle,
    compose_preview,
    draw_polylines,
    geojson_crs,
    geojson_polylines,
    overlay_mask,
    polyline_inside,
    polyline_pixels,
    preview_shape,
    render_preview,
    shade_nodata,
)
from tests.helpers_predict import TRANSFORM, UTM, random_rgb, write_raster

sizes = st.integers(1, 20000)
GREY = 100


def read_png(path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as dataset:
            assert dataset.driver == "PNG" and dataset.count == 3 and dataset.crs is None
            return np.transpose(dataset.read(), (1, 2, 0))


def is_colour(rgb: np.ndarray, colour) -> np.ndarray:
    return (rgb == np.asarray(colour, np.uint8)).all(axis=-1)


class TestPreviewShape:
    @settings(max_examples=300, deadline=None)
    @given(height=sizes, width=sizes, max_size=st.integers(1, 4096))
    def test_fits_and_keeps_aspect(self, height, width, max_size):
        h, w = preview_shape(height, width, max_size)
        assert max(h, w) == min(max_size, max(height, width))
        assert 1 <= h <= height and 1 <= w <= width
        assert abs(h * width - w * height) <= height + width  # each side rounded by at most a pixel

    def test_small_images_keep_their_size(self):
        assert preview_shape(1300, 1300, 2048) == (1300, 1300)
        assert preview_shape(4096, 1024, 2048) == (2048, 512)

    @pytest.mark.parametrize(("args", "message"), [((0, 5, 10), "image size must be positive"),
                                                   ((5, 5, 0), "max_size must be >= 1")])
    def test_rejects(self, args, message):
        with pytest.raises(ValueError, match=message):
            preview_shape(*args)


class TestOverlayMask:
    @settings(max_examples=100, deadline=None)
    @given(seed=st.integers(0, 2**16), alpha=st.floats(0.0, 1.0),
           colour=st.tuples(*[st.integers(0, 255)] * 3))
    def test_alpha_arithmetic(self, seed, alpha, colour):
        rng = np.random.default_rng(seed)
        rgb = rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)
        mask = rng.random((6, 7)) < 0.5
        before = rgb.copy()
        out = overlay_mask(rgb, mask, colour, alpha)
        np.testing.assert_array_equal(rgb, before)  # input not modified
        expected = (1 - alpha) * rgb.astype(float) + alpha * np.asarray(colour, float)
        assert np.abs(out[mask].astype(float) - expected[mask]).max(initial=0) <= 0.5 + 1e-9
        np.testing.assert_array_equal(out[~mask], rgb[~mask])

    def test_alpha_ends(self):
        rgb = np.full((2, 2, 3), 100, np.uint8)
        mask = np.array([[True, False], [False, True]])
        np.testing.assert_array_equal(overlay_mask(rgb, mask, (255, 0, 255), 0.0), rgb)
        assert is_colour(overlay_mask(rgb, mask, (255, 0, 255), 1.0), (255, 0, 255)).sum() == 2

    @pytest.mark.parametrize(("rgb", "mask", "alpha", "message"), [
        (np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), bool), 0.5, "uint8"),
        (np.zeros((4, 4), np.uint8), np.zeros((4, 4), bool), 0.5, r"\(H, W, 3\)"),
        (np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5), bool), 0.5, r"mask has shape \(4, 5\)"),
        (np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), bool), 1.5, r"alpha must be in \[0, 1\]"),
    ])
    def test_rejects(self, rgb, mask, alpha, message):
        with pytest.raises(ValueError, match=message):
            overlay_mask(rgb, mask, alpha=alpha)


class TestShadeNodata:
    def test_nodata_is_dark_grey_and_data_untouched(self):
        rgb = random_rgb(5, 6).transpose(1, 2, 0).copy()
        valid = np.ones((5, 6), bool)
        valid[:, :2] = False
        out = shade_nodata(rgb, valid)
        assert is_colour(out[:, :2], NODATA_COLOUR).all()
        np.testing.assert_array_equal(out[:, 2:], rgb[:, 2:])

    def test_compose_order(self):
        rgb = np.full((4, 4, 3), 200, np.uint8)
        valid = np.ones((4, 4), bool)
        valid[0] = False
        mask = np.zeros((4, 4), bool)
        mask[:, 1] = True
        line = [np.array([[3.5, 0.5], [3.5, 3.5]])]
        out = compose_preview(rgb, valid=valid, mask=mask, polylines=line, style=PreviewStyle(road_width=1))
        assert is_colour(out[0, [0, 2]], NODATA_COLOUR).all()
        assert is_colour(out[:, 3], ROAD_COLOUR).all()  # lines on top of nodata and mask
        np.testing.assert_array_equal(out[1:, 1], overlay_mask(rgb, mask)[1:, 1])
        np.testing.assert_array_equal(out[1:, [0, 2]], rgb[1:, [0, 2]])
        assert (rgb == 200).all()


class TestPolylines:
    def test_horizontal_line_hits_its_row(self):
        pixels = polyline_pixels((10, 12), [np.array([[0.5, 4.5], [11.5, 4.5]])], width=1)
        assert pixels[4].all() and pixels.sum() == 12

    def test_width_two_is_two_pixels_thick(self):
        pixels = polyline_pixels((10, 12), [np.array([[2.5, 4.5], [9.5, 4.5]])], width=2)
        assert np.flatnonzero(pixels.any(axis=1)).tolist() == [4, 5]
        assert pixels[4, 2:10].all() and pixels[5, 2:10].all()

    def test_lines_are_clipped_to_the_image(self):
        far = [np.array([[-1e6, 5.5], [1e6, 5.5]])]
        assert polyline_pixels((10, 12), far, width=1)[5].all()
        outside = [np.array([[-50.0, -5.0], [-1.0, -20.0]])]
        assert not polyline_pixels((10, 12), outside).any()
        assert not polyline_inside(outside[0], (10, 12)) and polyline_inside(far[0], (10, 12))

    def test_a_single_point_and_non_finite_points(self):
        pixels = polyline_pixels((6, 6), [np.array([[2.2, 3.7]])], width=1)
        assert pixels.sum() == 1 and pixels[3, 2]
        broken = np.array([[0.5, 0.5], [5.5, 0.5], [np.nan, np.nan], [0.5, 5.5]])
        assert polyline_pixels((6, 6), [broken], width=1).sum() == 6

    @settings(max_examples=150, deadline=None)
    @given(points=st.lists(st.tuples(st.floats(0, 39.99), st.floats(0, 29.99)), min_size=2, max_size=2),
           width=st.integers(1, 4))
    def test_ends_are_drawn_and_nothing_strays(self, points, width):
        (x0, y0), (x1, y1) = points
        pixels = polyline_pixels((30, 40), [np.array(points)], width=width)
        assert pixels[int(y0), int(x0)] and pixels[int(y1), int(x1)]
        rows, cols = np.nonzero(pixels)
        # distance from each pixel centre to the segment: within the line's half width plus a pixel
        p = np.column_stack([cols + 0.5, rows + 0.5])
        a, b = np.array([x0, y0]), np.array([x1, y1])
        t = np.clip(((p - a) @ (b - a)) / max((b - a) @ (b - a), 1e-12), 0, 1)
        distance = np.linalg.norm(p - (a + t[:, None] * (b - a)), axis=1)
        assert distance.max() <= width / 2 * math.sqrt(2) + math.sqrt(2)

    def test_draw_polylines_paints_the_colour_and_keeps_the_input(self):
        rgb = np.zeros((5, 5, 3), np.uint8)
        out = draw_polylines(rgb, [np.array([[0.5, 2.5], [4.5, 2.5]])], colour=(0, 255, 255), width=1)
        assert is_colour(out[2], (0, 255, 255)).all() and not rgb.any()
        with pytest.raises(ValueError, match="width must be >= 1"):
            polyline_pixels((5, 5), [], width=0)


class TestGeojson:
    def test_lines_rings_and_points(self):
        data = {"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1, 5]]}},
            {"type": "Feature", "geometry": {"type": "MultiLineString", "coordinates": [[[0, 0], [2, 0]],
                                                                                        [[3, 3], [4, 4]]]}},
            {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}},
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [0, 0]}},
            {"type": "Feature", "geometry": None},
        ]}
        lines = geojson_polylines(data)
        assert [len(line) for line in lines] == [2, 2, 2, 4] and lines[0].shape == (2, 2)
        with pytest.raises(ValueError, match="malformed coordinates"):
            geojson_polylines({"type": "LineString", "coordinates": [1, 2]})

    def test_crs(self):
        assert geojson_crs({"type": "FeatureCollection", "coordinates": "pixel"}) is None
        assert geojson_crs({"type": "FeatureCollection"}).to_string() == "OGC:CRS84"
        named = {"crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32618"}}}
        assert geojson_crs(named).to_epsg() == 32618
        with pytest.raises(ValueError, match="unknown CRS 'nowhere'"):
            geojson_crs({"crs": {"type": "name", "properties": {"name": "nowhere"}}})


# -- render_preview on synthetic files ------------------------------------------------------------------

def lonlat_line(rows_cols, transform=TRANSFORM, crs=UTM):
    """A GeoJSON FeatureCollection with one LineString through pixel positions (row, col), in lon/lat."""
    xs = [transform.c + transform.a * col for _, col in rows_cols]
    ys = [transform.f + transform.e * row for row, _ in rows_cols]
    lon, lat = warp_transform(crs, "EPSG:4326", xs, ys)
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "LineString",
                                                           "coordinates": [list(p) for p in zip(lon, lat)]}}]}


@pytest.fixture
def georeferenced(tmp_path):
    """A grey 200x300 UTM GeoTIFF, a mask with a road band over rows 90-109, a lon/lat line along row 100."""
    image = write_raster(tmp_path / "scene.tif", np.full((3, 200, 300), GREY, np.uint8))
    mask = np.zeros((1, 200, 300), np.uint8)
    mask[0, 90:110] = 1
    mask_path = write_raster(tmp_path / "scene_mask.tif", mask, nodata=255)
    roads = tmp_path / "roads.geojson"
    roads.write_text(json.dumps(lonlat_line([(100.5, 10.5), (100.5, 290.5)])))
    return image, mask_path, roads


class TestRenderPreview:
    def test_georeferenced_image_mask_and_lon_lat_line(self, tmp_path, georeferenced):
        image, mask, roads = georeferenced
        out = tmp_path / "out" / "preview.png"
        result = render_preview(image, out, mask=mask, roads=roads, max_size=100)
        assert (result.height, result.width, result.source_height, result.source_width) == (67, 100, 200, 300)
        assert (result.lines, result.lines_drawn) == (1, 1) and result.output == out
        rgb = read_png(out)
        assert rgb.shape == (67, 100, 3)
        line = is_colour(rgb, ROAD_COLOUR)
        rows = np.flatnonzero(line.any(axis=1))
        assert rows.tolist() == [33, 34]  # row 100.5 of 200 -> 33.5 of 67, two pixels thick
        assert line[33, 4:97].all() and not line[:, :3].any() and not line[:, 98:].any()
        band = np.zeros((67, 100), bool)
        band[30:37] = True  # rows 90-109 of 200 on the 67-row grid
        blended = np.rint((1 - MASK_ALPHA) * GREY + MASK_ALPHA * np.asarray(MASK_COLOUR))
        assert is_colour(rgb[band & ~line], blended).all() and (rgb[~band & ~line] == GREY).all()
        assert sorted(p.name for p in out.parent.iterdir()) == ["preview.png"]  # no .aux.xml, no temp

    def test_scaling_is_predicts(self, tmp_path):
        data = np.random.default_rng(4).integers(100, 4000, (3, 40, 50)).astype(np.uint16)
        data[:, :, :5] = 0
        image = write_raster(tmp_path / "u16.tif", data, nodata=0)
        render_preview(image, tmp_path / "p.png", scaling=ImageScaling(bands=(3, 2, 1)))
        rgb = read_png(tmp_path / "p.png")
        with RasterSource(image, ImageScaling(bands=(3, 2, 1))) as source:
            expected, valid = source.read_all()
        np.testing.assert_array_equal(rgb[valid], np.rint(expected[valid]).astype(np.uint8))
        assert is_colour(rgb[~valid], NODATA_COLOUR).all() and (~valid).sum() == 40 * 5

    def test_large_image_is_read_decimated(self, tmp_path, monkeypatch):
        image = write_raster(tmp_path / "big.tif", random_rgb(900, 600), tiled=True, blockxsize=64,
                             blockysize=64)

        def refuse(self, *args):
            raise AssertionError("the preview must not read full-resolution regions")

        monkeypatch.setattr(raster_read.RasterSource, "read_region", refuse)
        result = render_preview(image, tmp_path / "p.png", max_size=90)
        assert (result.height, result.width) == (90, 60) and read_png(tmp_path / "p.png").shape == (90, 60, 3)

    def test_plain_image_with_pixel_geojson_and_png_mask(self, tmp_path):
        image = write_raster(tmp_path / "7_sat.png", random_rgb(64, 80), crs=None, driver="PNG")
        mask = np.zeros((1, 64, 80), np.uint8)
        mask[0, :, 30:34] = 255
        mask_path = write_raster(tmp_path / "7_mask.png", mask, crs=None, driver="PNG")
        roads = tmp_path / "r.geojson"
        roads.write_text(json.dumps({"type": "FeatureCollection", "coordinates": "pixel", "features": [
            {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[32.5, 0.5], [32.5, 63.5]]}}]}))
        result = render_preview(image, tmp_path / "p.png", mask=mask_path, roads=roads)
        rgb = read_png(tmp_path / "p.png")
        assert np.flatnonzero(is_colour(rgb, ROAD_COLOUR).any(axis=0)).tolist() == [32, 33]
        assert result.mask_pixels == 64 * 4

    @pytest.mark.parametrize("dtype", ["float32", "uint8"])
    def test_probability_map_at_one_half(self, tmp_path, georeferenced, dtype):
        image, _, _ = georeferenced
        prob = np.full((200, 300), 0.2, np.float32)
        prob[:, :100] = 0.7
        prob[:, 100:110] = 0.5
        valid = np.ones((200, 300), bool)
        valid[:10] = False
        path = tmp_path / "scene_prob.tif"
        writer = open_prob_writer(path, RasterGrid(200, 300, UTM, TRANSFORM), dtype)  # as predict writes it
        writer.write(0, encode_prob(prob, valid, dtype))
        writer.close()
        result = render_preview(image, tmp_path / "p.png", mask=path)
        assert result.mask_pixels == 190 * 110

    def test_mask_at_another_resolution_over_the_same_ground(self, tmp_path, georeferenced):
        image, _, _ = georeferenced
        coarse = Affine(4.0, 0.0, TRANSFORM.c, 0.0, -4.0, TRANSFORM.f)
        path = write_raster(tmp_path / "coarse.tif", np.ones((1, 100, 150), np.uint8), transform=coarse,
                            nodata=255)
        assert render_preview(image, tmp_path / "p.png", mask=path).mask_pixels == 200 * 300

    @pytest.mark.parametrize(("kind", "message"), [
        ("size", "it is 299x200, the image 300x200"),
        ("crs", "its CRS EPSG:32611 is not the image's EPSG:32618"),
        ("shift", "it covers other ground"),
    ])
    def test_mask_on_another_grid(self, tmp_path, georeferenced, kind, message):
        image, _, _ = georeferenced
        mask = np.zeros((1, 200, 300), np.uint8)
        if kind == "size":
            path = write_raster(tmp_path / "m.tif", mask[:, :, :299], crs=None)
        elif kind == "crs":
            path = write_raster(tmp_path / "m.tif", mask, crs="EPSG:32611")
        else:
            path = write_raster(tmp_path / "m.tif", mask, transform=TRANSFORM @ Affine.translation(10, 0))
        with pytest.raises(BadInputError, match=rf"m.tif: not on the grid of .*scene.tif \({message}"):
            render_preview(image, tmp_path / "p.png", mask=path)
        assert not (tmp_path / "p.png").exists()

    def test_existing_output(self, tmp_path, georeferenced):
        image, _, _ = georeferenced
        out = tmp_path / "p.png"
        out.write_text("old")
        with pytest.raises(OutputExistsError, match="p.png already exists; pass `overwrite`"):
            render_preview(image, out)
        assert out.read_text() == "old"
        render_preview(image, out, overwrite=True)
        assert read_png(out).shape == (200, 300, 3)

    def test_bad_inputs(self, tmp_path, georeferenced):
        image, mask, _ = georeferenced
        (tmp_path / "bad.geojson").write_text("{not json")
        with pytest.raises(BadInputError, match="bad.geojson: not a readable GeoJSON file"):
            render_preview(image, tmp_path / "p.png", roads=tmp_path / "bad.geojson")
        (tmp_path / "notes.tif").write_text("not pixels")
        with pytest.raises(BadInputError, match="notes.tif: not a readable raster"):
            render_preview(tmp_path / "notes.tif", tmp_path / "p.png")
        with pytest.raises(BadInputError, match="notes.tif: not a readable raster .*; give a mask or probability"):
            render_preview(image, tmp_path / "p.png", mask=tmp_path / "notes.tif")
        labels = write_raster(tmp_path / "labels.tif", np.arange(60000, dtype=np.uint8).reshape(1, 200, 300))
        with pytest.raises(BadInputError, match="labels.tif: holds .* distinct values"):
            render_preview(image, tmp_path / "p.png", mask=labels)
        with pytest.raises(ValueError, match="name it \\*.png"):
            render_preview(image, tmp_path / "p.jpg")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.geojson", "labels.tif", "notes.tif",
                                                             "roads.geojson", "scene.tif", "scene_mask.tif"]

    def test_lines_elsewhere_warn(self, tmp_path, georeferenced):
        image, _, _ = georeferenced
        roads = tmp_path / "far.geojson"
        roads.write_text(json.dumps({"type": "LineString", "coordinates": [[10.0, 50.0], [10.1, 50.1]]}))
        with pytest.warns(UserWarning, match="none of its 1 line"):
            result = render_preview(image, tmp_path / "p.png", roads=roads)
        assert (result.lines, result.lines_drawn) == (1, 0)
        assert not is_colour(read_png(tmp_path / "p.png"), ROAD_COLOUR).any()


class TestRealData:
    def test_spacenet_lines_lie_on_the_mask(self, shared_data, tmp_path):
        folder = shared_data / "spacenet-vegas-pan"
        image, mask = folder / "road_mask_input.tif", folder / "sample_road_raster_mask.tif"
        roads = folder / "sample_roads_for_masking.geojson"
        for path in (image, mask, roads):
            if not path.is_file():
                pytest.skip(f"SpaceNet sample {path} not found")
        result = render_preview(image, tmp_path / "p.png", mask=mask, roads=roads, max_size=650)
        assert (result.height, result.width) == (650, 650) and result.lines == result.lines_drawn == 9
        rgb = read_png(tmp_path / "p.png")
        line = is_colour(rgb, ROAD_COLOUR)
        with rasterio.open(mask) as dataset:
            road = dataset.read(1, out_shape=(650, 650), resampling=rasterio.enums.Resampling.nearest) > 0
        assert line.sum() > 2000
        near_road = ndimage.binary_dilation(road, iterations=2)
        assert near_road[line].mean() > 0.98
        tinted = rgb[road & ~line].astype(int)  # grey imagery under magenta: red and blue above green
        assert ((tinted[:, 0] > tinted[:, 1]) & (tinted[:, 2] > tinted[:, 1])).mean() > 0.95
