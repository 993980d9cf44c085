"""Writers: encodings, tiled GeoTIFF with georeferencing, COG with overviews, PNG masks, row order."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from roadseg.io.grid import RasterGrid
from roadseg.io.raster_write import (
    MASK_NODATA,
    TILE,
    BandEncoding,
    GeoTiffRowWriter,
    decode_prob_uint8,
    encode_mask,
    encode_prob,
    open_mask_writer,
    open_prob_writer,
)
from tests.helpers_predict import TRANSFORM, UTM, read_band


class TestEncoding:
    def test_mask_values(self):
        prob = np.array([[0.2, 0.5, 0.51, np.nan]], np.float32)
        valid = np.array([[True, True, True, False]])
        np.testing.assert_array_equal(encode_mask(prob, valid), [[0, 0, 1, MASK_NODATA]])
        np.testing.assert_array_equal(encode_mask(prob, valid, png=True), [[0, 0, 255, 0]])
        np.testing.assert_array_equal(encode_mask(prob, valid, threshold=0.1), [[1, 1, 1, 255]])

    def test_prob_float_and_uint8_round_trip(self):
        prob = np.array([[0.0, 0.25, 1.0, 0.7]], np.float32)
        valid = np.array([[True, True, True, False]])
        floats = encode_prob(prob, valid)
        assert floats.dtype == np.float32 and np.isnan(floats[0, 3])
        np.testing.assert_array_equal(floats[0, :3], prob[0, :3])
        small = encode_prob(prob, valid, "uint8")
        np.testing.assert_array_equal(small, [[0, 64, 254, 255]])
        back = decode_prob_uint8(small)
        np.testing.assert_allclose(back[0, :3], prob[0, :3], atol=0.5 / 254)
        assert np.isnan(back[0, 3])


def _write_in_blocks(writer, data, heights):
    row = 0
    for height in heights:
        writer.write(row, data[row:row + height])
        row += height
    writer.close()


class TestGeoTiff:
    @pytest.mark.parametrize("heights", [[300], [100, 100, 100], [1] * 300, [255, 2, 43]])
    def test_rows_in_any_blocking_and_georeferencing(self, tmp_path, heights):
        data = np.random.default_rng(0).integers(0, 2, (300, 270)).astype(np.uint8)
        grid = RasterGrid(300, 270, UTM, TRANSFORM)
        path = tmp_path / "m.tif"
        _write_in_blocks(open_mask_writer(path, grid, png=False), data, heights)
        values, profile = read_band(path)
        np.testing.assert_array_equal(values, data)
        assert profile["crs"] == rasterio.crs.CRS.from_string(UTM) and profile["transform"] == TRANSFORM
        assert profile["tiled"] and profile["blockxsize"] == TILE and profile["compress"] == "deflate"
        assert profile["nodata"] == MASK_NODATA

    def test_prob_float_nodata_is_nan(self, tmp_path):
        data = np.full((20, 30), 0.5, np.float32)
        data[0, 0] = np.nan
        path = tmp_path / "p.tif"
        _write_in_blocks(open_prob_writer(path, RasterGrid(20, 30)), data, [20])
        values, profile = read_band(path)
        assert profile["dtype"] == "float32" and np.isnan(profile["nodata"]) and np.isnan(values[0, 0])
        assert profile["crs"] is None

    @pytest.mark.parametrize("cog", [False, True])
    def test_outputs_say_what_they_hold(self, tmp_path, cog):
        """uint8 probabilities must not pass for masks: a content tag, and GDAL's scale for QGIS."""
        grid = RasterGrid(300, 270, UTM, TRANSFORM)
        prob = np.random.default_rng(2).random((300, 270)).astype(np.float32)
        _write_in_blocks(open_prob_writer(tmp_path / "p.tif", grid, "uint8", cog=cog),
                         encode_prob(prob, np.ones(prob.shape, bool), "uint8"), [300])
        _write_in_blocks(open_mask_writer(tmp_path / "m.tif", grid, png=False, cog=cog),
                         np.zeros((300, 270), np.uint8), [300])
        with rasterio.open(tmp_path / "p.tif") as dataset:
            assert dataset.tags()["ROADSEG_CONTENT"] == "probability" and dataset.scales == (1 / 254,)
            np.testing.assert_allclose(dataset.read(1) * dataset.scales[0], prob, atol=0.5 / 254 + 1e-7)
        with rasterio.open(tmp_path / "m.tif") as dataset:
            assert dataset.tags()["ROADSEG_CONTENT"] == "mask" and dataset.scales == (1.0,)

    def test_rows_out_of_order_are_refused(self, tmp_path):
        writer = GeoTiffRowWriter(tmp_path / "x.tif", RasterGrid(10, 10), BandEncoding("uint8", 255))
        writer.write(0, np.zeros((3, 10), np.uint8))
        with pytest.raises(ValueError, match="expected row 3, got 5"):
            writer.write(5, np.zeros((3, 10), np.uint8))
        writer.abort()

    def test_missing_rows_are_an_error(self, tmp_path):
        writer = GeoTiffRowWriter(tmp_path / "x.tif", RasterGrid(10, 10), BandEncoding("uint8", 255))
        writer.write(0, np.zeros((3, 10), np.uint8))
        with pytest.raises(ValueError, match="3 of 10 rows were written"):
            writer.close()

    def test_cog_has_overviews_and_no_leftovers(self, tmp_path):
        data = np.random.default_rng(1).random((1100, 900)).astype(np.float32)
        path = tmp_path / "p.tif"
        _write_in_blocks(open_prob_writer(path, RasterGrid(1100, 900, UTM, TRANSFORM), cog=True), data,
                         [400, 400, 300])
        values, profile = read_band(path)
        np.testing.assert_array_equal(values, data)
        assert profile["overviews"] and profile["transform"] == TRANSFORM
        with rasterio.open(path) as dataset:
            assert dataset.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert [p.name for p in tmp_path.iterdir()] == ["p.tif"]


class TestPng:
    def test_png_mask(self, tmp_path):
        data = np.where(np.random.default_rng(2).random((40, 50)) > 0.5, 255, 0).astype(np.uint8)
        path = tmp_path / "m.png"
        _write_in_blocks(open_mask_writer(path, RasterGrid(40, 50), png=True), data, [25, 15])
        values, profile = read_band(path)
        assert profile["driver"] == "PNG" and profile["count"] == 1
        np.testing.assert_array_equal(values, data)
