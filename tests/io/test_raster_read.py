"""Reading windows from rasters: band choice, nodata sources, reflect padding, scaling, bad files."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.enums import ColorInterp

from roadseg.errors import BadInputError
from roadseg.io.raster_read import STATS_SIZE, ImageScaling, RasterSource, Scale, default_bands
from tests.helpers_predict import TRANSFORM, UTM, random_rgb, write_raster


class TestDefaultBands:
    def test_colour_interpretation_wins(self):
        interp = (ColorInterp.blue, ColorInterp.green, ColorInterp.red, ColorInterp.undefined)
        assert default_bands(interp) == (3, 2, 1)

    def test_first_three_else_single_repeated(self):
        assert default_bands((ColorInterp.gray,) * 4) == (1, 2, 3)
        assert default_bands((ColorInterp.gray,)) == (1, 1, 1)
        assert default_bands((ColorInterp.gray, ColorInterp.alpha)) == (1, 1, 1)


class TestWindows:
    def test_inside_window_matches_the_data(self, tmp_path):
        data = random_rgb(40, 50)
        path = write_raster(tmp_path / "a.tif", data, tiled=True, blockxsize=16, blockysize=16)
        with RasterSource(path) as source:
            rgb, valid = source.read_window(5, 7, 16)
        np.testing.assert_array_equal(rgb, np.transpose(data[:, 5:21, 7:23], (1, 2, 0)))
        assert rgb.dtype == np.float32 and valid.all()

    @pytest.mark.parametrize(("y", "x", "size"), [(0, 0, 64), (30, 40, 16), (-5, -3, 12), (35, 45, 30)])
    def test_boundless_reads_reflect(self, tmp_path, y, x, size):
        data = random_rgb(40, 50, seed=1)
        path = write_raster(tmp_path / "a.tif", data)
        padded = np.pad(np.transpose(data, (1, 2, 0)), ((100, 100), (100, 100), (0, 0)), mode="reflect")
        with RasterSource(path) as source:
            rgb, _ = source.read_window(y, x, size)
        np.testing.assert_array_equal(rgb, padded[100 + y:100 + y + size, 100 + x:100 + x + size])

    def test_bands_choice_and_single_band_repeat(self, tmp_path):
        data = random_rgb(8, 9)
        four = np.concatenate([data, data[:1] // 2])
        path = write_raster(tmp_path / "four.tif", four)
        with RasterSource(path, ImageScaling(bands=(4, 2, 1))) as source:
            rgb, _ = source.read_window(0, 0, 8)
        np.testing.assert_array_equal(rgb[..., 0], four[3, :8, :8])
        np.testing.assert_array_equal(rgb[..., 2], four[0, :8, :8])
        with RasterSource(path, ImageScaling(bands=(2,))) as source:
            rgb, _ = source.read_window(0, 0, 8)
        assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 0] == four[1, :8, :8]).all()

    def test_panchromatic_is_repeated(self, tmp_path):
        data = random_rgb(8, 8)[:1]
        with RasterSource(write_raster(tmp_path / "pan.tif", data)) as source:
            rgb, _ = source.read_window(0, 0, 8)
        assert source.bands == (1, 1, 1)
        np.testing.assert_array_equal(rgb, np.repeat(data[0][:, :, None], 3, axis=2))

    def test_colour_interpretation_picks_bands(self, tmp_path):
        data = random_rgb(8, 8)
        path = write_raster(tmp_path / "bgr.tif", data, photometric="MINISBLACK")
        with rasterio.open(path, "r+") as dataset:
            dataset.colorinterp = (ColorInterp.blue, ColorInterp.green, ColorInterp.red)
        with RasterSource(path) as source:
            assert source.bands == (3, 2, 1)


class TestNodata:
    def _expected_valid(self, data):
        return (data != 0).any(axis=0)

    def test_nodata_value(self, tmp_path):
        data = random_rgb(20, 20)
        data[:, :5, :] = 0
        data[0, 10, 10] = 0  # one band zero: still data (GDAL's union of band masks)
        with RasterSource(write_raster(tmp_path / "n.tif", data, nodata=0)) as source:
            _, valid = source.read_window(0, 0, 20)
        assert source.has_mask
        np.testing.assert_array_equal(valid, self._expected_valid(data))

    def test_alpha_band(self, tmp_path):
        data = random_rgb(20, 20)
        alpha = np.full((1, 20, 20), 255, np.uint8)
        alpha[0, 12:, :] = 0
        path = write_raster(tmp_path / "rgba.tif", np.concatenate([data, alpha]), photometric="RGB",
                            alpha="YES")
        with RasterSource(path) as source:
            _, valid = source.read_window(0, 0, 20)
        assert source.bands == (1, 2, 3)
        np.testing.assert_array_equal(valid, alpha[0] > 0)

    def test_internal_mask(self, tmp_path):
        data = random_rgb(20, 20)
        mask = np.full((20, 20), 255, np.uint8)
        mask[:, :7] = 0
        path = tmp_path / "masked.tif"
        with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
            with rasterio.open(path, "w", driver="GTiff", count=3, height=20, width=20, dtype="uint8",
                               crs=UTM, transform=TRANSFORM) as d:
                d.write(data)
                d.write_mask(mask)
            with RasterSource(path) as source:
                _, valid = source.read_window(0, 0, 20)
        assert not list(tmp_path.glob("*.msk"))
        np.testing.assert_array_equal(valid, mask > 0)

    def test_no_mask_is_all_valid(self, tmp_path):
        with RasterSource(write_raster(tmp_path / "a.tif", random_rgb(5, 5))) as source:
            _, valid = source.read_window(0, 0, 5)
        assert not source.has_mask and valid.all()


class TestScaling:
    def test_uint8_is_not_scaled(self, tmp_path):
        data = random_rgb(10, 10) // 4
        with RasterSource(write_raster(tmp_path / "a.tif", data)) as source:
            rgb, _ = source.read_window(0, 0, 10)
        np.testing.assert_array_equal(rgb, np.transpose(data, (1, 2, 0)))

    def test_uint16_defaults_to_percentile(self, tmp_path):
        values = np.linspace(100, 2100, 50 * 50).reshape(1, 50, 50).astype(np.uint16)
        with RasterSource(write_raster(tmp_path / "pan.tif", values)) as source:
            rgb, _ = source.read_window(0, 0, 50)
        low, high = np.percentile(values, [2, 98])
        assert source.scaling.low == pytest.approx((low,) * 3)
        expected = np.clip((values[0].astype(np.float64) - low) / (high - low) * 255, 0, 255)
        np.testing.assert_allclose(rgb[..., 0], expected, atol=1e-3)
        assert (rgb[values[0] <= low] == 0).all() and (rgb[values[0] >= high] == 255).all()

    def test_percentile_ignores_nodata(self, tmp_path):
        values = np.full((1, 30, 30), 1000, np.uint16)
        values[0, :, 15:] = 2000
        values[0, :3] = 0  # nodata rows must not pull the low percentile to 0
        with RasterSource(write_raster(tmp_path / "n.tif", values, nodata=0)) as source:
            assert source.scaling.low[0] == 1000 and source.scaling.high[0] == 2000

    def test_minmax_none_and_explicit_range(self, tmp_path):
        values = np.arange(1, 101, dtype=np.int16).reshape(1, 10, 10) * 10 - 300
        path = write_raster(tmp_path / "s.tif", values)
        with RasterSource(path, ImageScaling(scale=Scale.MINMAX)) as source:
            rgb, _ = source.read_window(0, 0, 10)
        assert rgb.min() == 0 and rgb.max() == 255
        with RasterSource(path, ImageScaling(scale="none")) as source:
            rgb, _ = source.read_window(0, 0, 10)
        np.testing.assert_array_equal(rgb[..., 0], np.clip(values[0], 0, 255))
        with RasterSource(path, ImageScaling(scale_range=(0, 510))) as source:
            rgb, _ = source.read_window(0, 0, 10)
        np.testing.assert_allclose(rgb[..., 1], np.clip(values[0] / 2, 0, 255))

    def test_statistics_come_from_a_decimated_read(self, tmp_path, monkeypatch):
        import roadseg.io.raster_read as raster_read

        shapes = []
        original = raster_read.RasterSource._decimated

        def spy(self):
            values, valid = original(self)
            shapes.append(values.shape)
            return values, valid

        monkeypatch.setattr(raster_read, "STATS_SIZE", 16)
        monkeypatch.setattr(raster_read.RasterSource, "_decimated", spy)
        values = np.random.default_rng(0).integers(0, 4000, (1, 100, 64)).astype(np.uint16)
        with RasterSource(write_raster(tmp_path / "big.tif", values)):
            pass
        assert shapes == [(1, 15, 10)]
        assert STATS_SIZE == 1024

    def test_float_nan_is_nodata_and_not_nan_in_rgb(self, tmp_path):
        values = np.random.default_rng(0).random((3, 12, 12)).astype(np.float32)
        values[:, 0, 0] = np.nan
        with RasterSource(write_raster(tmp_path / "f.tif", values)) as source:
            rgb, valid = source.read_window(0, 0, 12)
        assert not valid[0, 0] and valid.sum() == 143 and np.isfinite(rgb).all()


class TestBadInputs:
    def test_missing_file(self, tmp_path):
        with pytest.raises(BadInputError, match="nope.tif: not a readable raster"):
            RasterSource(tmp_path / "nope.tif")

    def test_not_an_image(self, tmp_path):
        path = tmp_path / "notes.tif"
        path.write_text("these are not pixels")
        with pytest.raises(BadInputError, match="notes.tif: not a readable raster"):
            RasterSource(path)

    def test_empty_file(self, tmp_path):
        path = tmp_path / "empty.png"
        path.touch()
        with pytest.raises(BadInputError, match=r"empty.png: the file is empty \(0 bytes\)"):
            RasterSource(path)

    @pytest.mark.parametrize(("name", "driver"), [("t.tif", "GTiff"), ("t.jpg", "JPEG"), ("t.png", "PNG")])
    def test_truncated(self, tmp_path, name, driver):
        whole = write_raster(tmp_path / f"whole_{name}", random_rgb(300, 300), crs=None, driver=driver)
        path = tmp_path / name
        path.write_bytes(whole.read_bytes()[:whole.stat().st_size // 2])
        with pytest.raises(BadInputError, match=f"{name}: .*truncated"), RasterSource(path) as source:
            source.read_all()

    def test_corrupt_tiles(self, tmp_path):
        whole = write_raster(tmp_path / "whole.tif", random_rgb(256, 256), compress="deflate", tiled=True,
                             blockxsize=64, blockysize=64)
        raw = bytearray(whole.read_bytes())
        raw[len(raw) // 3:len(raw) // 3 + 4000] = b"\x00" * 4000
        path = tmp_path / "corrupt.tif"
        path.write_bytes(bytes(raw))
        with pytest.raises(BadInputError, match="corrupt.tif: reading failed"), RasterSource(path) as source:
            source.read_all()

    def test_too_few_bands(self, tmp_path):
        path = write_raster(tmp_path / "pan.tif", random_rgb(4, 4)[:1])
        with pytest.raises(BadInputError, match=r"pan.tif: has 1 band\(s\) but band 3 was asked for"):
            RasterSource(path, ImageScaling(bands=(3, 2, 1)))

    def test_bad_scale_range(self, tmp_path):
        with pytest.raises(ValueError, match="LOW < HIGH"):
            RasterSource(write_raster(tmp_path / "a.tif", random_rgb(4, 4)), ImageScaling(scale_range=(5, 5)))


class TestRealData:
    def test_landsat_nodata_border(self, shared_data):
        path = shared_data / "landsat-rgb" / "RGB.byte.tif"
        with RasterSource(path) as source, rasterio.open(path) as dataset:
            assert (source.height, source.width) == (718, 791) and source.has_mask
            _, valid = source.read_region(0, 0, source.height, source.width)
            np.testing.assert_array_equal(valid, dataset.dataset_mask() > 0)
        assert 0.1 < 1 - valid.mean() < 0.9

    def test_spacenet_uint16_is_scaled(self, shared_data):
        with RasterSource(shared_data / "spacenet-vegas-pan" / "road_mask_input.tif") as source:
            rgb, _ = source.read_window(100, 100, 256)
            assert source.bands == (1, 1, 1) and source.dtype == np.uint16
        assert rgb.min() >= 0 and rgb.max() <= 255 and rgb.std() > 10
