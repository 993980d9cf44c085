"""The one mask decoder (roadseg.io.masks): its nodata rule never turns a class value into "no data"."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from hypothesis import given, settings
from hypothesis import strategies as st

from roadseg.io.masks import decode_mask, read_mask

SPACENET_MASK = ("spacenet-vegas-pan", "sample_road_raster_mask.tif")


def tagged_copy(source: Path, target: Path, nodata: float | None, values: np.ndarray | None = None,
                tags: dict[str, str] | None = None) -> Path:
    """``source`` (or ``values`` on its grid) written to ``target`` with the nodata tag ``nodata``."""
    with rasterio.open(source) as src:
        profile, data = src.profile, src.read(1)
    data = data if values is None else values.astype(profile["dtype"])
    with rasterio.open(target, "w", **{**profile, "nodata": nodata}) as dst:
        dst.write(data, 1)
        if tags:
            dst.update_tags(**tags)
    return target


def spacenet_mask(shared_data: Path) -> Path:
    path = shared_data.joinpath(*SPACENET_MASK)
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


def masks_with_two_values(draw, low: int, high: int) -> np.ndarray:
    """A small mask of ``low`` and ``high``, each present at least once."""
    shape = (draw(st.integers(2, 12)), draw(st.integers(2, 12)))
    flags = np.array(draw(st.lists(st.booleans(), min_size=shape[0] * shape[1], max_size=shape[0] * shape[1])))
    flags[0], flags[-1] = True, False
    return np.where(flags.reshape(shape), high, low).astype(np.uint8)


@st.composite
def binary_masks_tagged_with_a_class(draw):
    """(values, tag, road value): a 0/V mask whose nodata tag is 0 or V."""
    road = draw(st.integers(1, 255))
    return masks_with_two_values(draw, 0, road), draw(st.sampled_from([0, road])), road


@settings(max_examples=60, deadline=None)
@given(binary_masks_tagged_with_a_class())
def test_a_nodata_tag_on_a_class_value_stays_that_class(case):
    """Issue 14: a label tagged nodata=0 lost its background, a 0/255 mask tagged 255 its roads."""
    values, tag, road_value = case
    with pytest.warns(UserWarning, match=f"nodata tag {tag} is also the mask's"):
        road, valid = decode_mask(values, tag)
    np.testing.assert_array_equal(road, values == road_value)
    assert valid.all()


@settings(max_examples=40, deadline=None)
@given(st.data(), st.sampled_from([0, 1]))
def test_a_predict_mask_tagged_with_its_background_or_road_keeps_them(data, tag):
    values = masks_with_two_values(data.draw, 0, 1)
    nodata_row = np.where(np.array(data.draw(st.lists(st.booleans(), min_size=values.shape[1],
                                                      max_size=values.shape[1]))), 255, 0)
    values = np.vstack([values, nodata_row]).astype(np.uint8)  # a row with predict's own nodata, or none
    with pytest.warns(UserWarning, match=f"nodata tag {tag}"):
        road, valid = decode_mask(values, tag, mask_format="predict")
    np.testing.assert_array_equal(valid, values != 255)
    np.testing.assert_array_equal(road, values == 1)


@settings(max_examples=40, deadline=None)
@given(st.data(), st.integers(2, 254))
def test_a_nodata_value_of_its_own_is_still_nodata(data, tag):
    """The rule is no loophole: a tag on a value that is no class (beside 0 and 255) still marks nodata."""
    values = masks_with_two_values(data.draw, 0, 255)
    values = np.vstack([values, np.full((1, values.shape[1]), tag, np.uint8)])  # a row of nodata
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        road, valid = decode_mask(values, tag)
    np.testing.assert_array_equal(valid, values != tag)
    np.testing.assert_array_equal(road, values == 255)


def test_predict_masks_keep_255_as_nodata_without_a_word(tmp_path, shared_data):
    source = spacenet_mask(shared_data)
    with rasterio.open(source) as src:
        label = src.read(1)
    predicted = np.where(label > 0, 1, 0).astype(np.uint8)
    predicted[:, :100] = 255
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mask = read_mask(tagged_copy(source, tmp_path / "p.tif", 255, predicted))
        # predict's own GeoTIFF (tagged) without any road: 0 and 255 only, and 255 is still nodata
        no_road = np.where(predicted == 1, 0, predicted)
        empty = read_mask(tagged_copy(source, tmp_path / "e.tif", 255, no_road, {"ROADSEG_CONTENT": "mask"}))
    np.testing.assert_array_equal(mask.valid, predicted != 255)
    np.testing.assert_array_equal(mask.road, predicted == 1)
    assert not empty.road.any() and not empty.valid[:, :100].any() and empty.valid[:, 100:].all()


@pytest.mark.parametrize("tag", [0, 255])
def test_the_spacenet_label_tagged_with_either_class_keeps_both(tmp_path, shared_data, tag):
    source = spacenet_mask(shared_data)
    plain = read_mask(source)
    with pytest.warns(UserWarning, match=rf"t.tif: its nodata tag {tag} is also the mask's "
                                         rf"{'road' if tag else 'background'} value"):
        tagged = read_mask(tagged_copy(source, tmp_path / "t.tif", tag))
    np.testing.assert_array_equal(tagged.road, plain.road)
    assert tagged.valid.all() and 0.02 < plain.road.mean() < 0.05
