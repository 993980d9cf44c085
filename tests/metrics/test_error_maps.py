"""Error maps: three colours in the right places, imagery underneath, atomic writing."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
from rasterio.errors import NotGeoreferencedWarning

from roadseg.errors import OutputExistsError
from roadseg.metrics.error_maps import (
    FN_COLOUR,
    FP_COLOUR,
    NODATA_COLOUR,
    TP_COLOUR,
    error_map,
    to_display_rgb,
    write_error_map,
)

PRED = np.array([[1, 1, 0, 0]], bool)
TRUTH = np.array([[1, 0, 1, 0]], bool)


def read_png(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as dataset:
            return np.transpose(dataset.read(), (1, 2, 0))


class TestErrorMap:
    def test_colours(self):
        out = error_map(PRED, TRUTH)
        assert out.shape == (1, 4, 3) and out.dtype == np.uint8
        assert [tuple(pixel) for pixel in out[0]] == [TP_COLOUR, FP_COLOUR, FN_COLOUR, (0, 0, 0)]
        assert len({TP_COLOUR, FP_COLOUR, FN_COLOUR}) == 3

    def test_dimmed_image_under_background(self):
        image = np.full((1, 4, 3), 200, np.uint8)
        out = error_map(PRED, TRUTH, image=image)
        assert tuple(out[0, 3]) == (100, 100, 100)
        assert tuple(out[0, 0]) == TP_COLOUR

    def test_nodata(self):
        valid = np.array([[1, 0, 1, 1]], bool)
        out = error_map(PRED, TRUTH, valid)
        assert tuple(out[0, 1]) == NODATA_COLOUR
        assert tuple(out[0, 2]) == FN_COLOUR

    def test_input_not_modified(self):
        image = np.arange(12, dtype=np.uint8).reshape(1, 4, 3)
        before = image.copy()
        pred, truth = PRED.copy(), TRUTH.copy()
        error_map(pred, truth, image=image)
        assert np.array_equal(image, before)
        assert np.array_equal(pred, PRED) and np.array_equal(truth, TRUTH)

    def test_shape_mismatch(self):
        with pytest.raises(ValueError, match=r"image shape \(2, 4\) differs from mask shape \(1, 4\)"):
            error_map(PRED, TRUTH, image=np.zeros((2, 4, 3), np.uint8))
        with pytest.raises(ValueError, match="expected two 2-D masks of one shape"):
            error_map(PRED, TRUTH[:, :3])


class TestDisplayRgb:
    @pytest.mark.parametrize("shape", [(5, 6), (5, 6, 1), (5, 6, 3), (5, 6, 4)])
    def test_shapes(self, shape):
        assert to_display_rgb(np.zeros(shape, np.uint8)).shape == (5, 6, 3)

    def test_uint16_stretched(self):
        pan = np.linspace(1, 2047, 100).astype(np.uint16).reshape(10, 10)
        rgb = to_display_rgb(pan)
        assert rgb.dtype == np.uint8
        assert rgb.min() == 0 and rgb.max() == 255
        assert np.all(np.diff(rgb[:, :, 0].ravel().astype(int)) >= 0)  # order kept

    def test_bad_shape(self):
        with pytest.raises(ValueError, match="expected an"):
            to_display_rgb(np.zeros((5, 6, 2), np.uint8))


class TestWrite:
    def test_round_trip_and_no_leftovers(self, tmp_path):
        picture = error_map(PRED, TRUTH)
        path = write_error_map(tmp_path / "a_errors.png", picture)
        assert np.array_equal(read_png(path), picture)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a_errors.png"]

    def test_refuses_to_overwrite(self, tmp_path):
        path = tmp_path / "a_errors.png"
        path.write_bytes(b"keep")
        with pytest.raises(OutputExistsError, match="a_errors.png already exists; pass `overwrite`"):
            write_error_map(path, error_map(PRED, TRUTH))
        assert path.read_bytes() == b"keep"
        write_error_map(path, error_map(PRED, TRUTH), overwrite=True)
        assert read_png(path).shape == (1, 4, 3)
