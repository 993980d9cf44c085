"""The recipe's augmentations: determinism, geometry kept in step between image and mask, value ranges."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roadseg.train.augment import augment, hsv_shift, random_crop, shift_scale


def _pair(seed: int, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    mask = (rng.random((size, size)) < 0.2).astype(np.float32)
    return image, mask


class TestAugment:
    @settings(max_examples=25, deadline=None)
    @given(seed=st.integers(0, 2**32 - 1), data_seed=st.integers(0, 1000))
    def test_same_generator_state_same_result(self, seed, data_seed):
        image, mask = _pair(data_seed)
        a = augment(image, mask, np.random.default_rng(seed))
        b = augment(image, mask, np.random.default_rng(seed))
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])

    @settings(max_examples=25, deadline=None)
    @given(seed=st.integers(0, 2**32 - 1), crop=st.sampled_from([None, 16]))
    def test_outputs_keep_types_ranges_and_binary_mask(self, seed, crop):
        image, mask = _pair(seed % 1000)
        out_image, out_mask = augment(image, mask, np.random.default_rng(seed), crop=crop)
        size = crop or 32
        assert out_image.shape == (size, size, 3) and out_image.dtype == np.uint8
        assert out_mask.shape == (size, size) and out_mask.dtype == np.float32
        assert set(np.unique(out_mask)) <= {0.0, 1.0}

    @settings(max_examples=25, deadline=None)
    @given(seed=st.integers(0, 2**32 - 1))
    def test_geometry_moves_image_and_mask_together(self, seed):
        # an image whose every channel equals 255 * mask: any geometric transform must keep that
        # relation wherever the image was not colour-shifted (HSV leaves grey 0 / 255 pixels grey)
        _, mask = _pair(seed % 1000)
        image = np.repeat((mask * 255).astype(np.uint8)[..., None], 3, axis=2)
        out_image, out_mask = augment(image, mask, np.random.default_rng(seed))
        # bilinear resampling blurs edges; away from edges the image must be 0 where the mask is 0
        # and bright where the mask is 1
        assert np.mean(out_image[..., 0][out_mask == 1] > 100) > 0.5 or out_mask.sum() == 0
        assert np.mean(out_image[..., 0][out_mask == 0] < 155) > 0.9

    def test_input_not_modified(self):
        image, mask = _pair(3)
        image_copy, mask_copy = image.copy(), mask.copy()
        for seed in range(10):
            augment(image, mask, np.random.default_rng(seed), crop=16)
        np.testing.assert_array_equal(image, image_copy)
        np.testing.assert_array_equal(mask, mask_copy)

    def test_each_transform_fires_about_half_the_time(self):
        image, mask = _pair(5)
        unchanged = sum(np.array_equal(augment(image, mask, np.random.default_rng(s))[0], image)
                        for s in range(200))
        # all five transforms off: probability 1/32 -> about 6 of 200
        assert 1 <= unchanged <= 20

    def test_mismatched_mask_is_refused(self):
        image, mask = _pair(1)
        with pytest.raises(ValueError, match="does not match"):
            augment(image, mask[:-1], np.random.default_rng(0))


class TestShiftScale:
    def test_identity(self):
        image, mask = _pair(2)
        out_image, out_mask = shift_scale(image, mask, shift=(0.0, 0.0), scale=1.0, aspect=1.0)
        np.testing.assert_array_equal(out_image, image)
        np.testing.assert_array_equal(out_mask, mask)

    @given(dy=st.integers(-3, 3), dx=st.integers(-3, 3))
    @settings(max_examples=20, deadline=None)
    def test_integer_shift_is_a_roll_with_zero_border(self, dy, dx):
        image, mask = _pair(4)
        out_image, out_mask = shift_scale(image, mask, shift=(dy / 32, dx / 32), scale=1.0, aspect=1.0)
        expected = np.zeros_like(mask)
        src = mask[max(0, -dy):32 - max(0, dy), max(0, -dx):32 - max(0, dx)]
        expected[max(0, dy):max(0, dy) + src.shape[0], max(0, dx):max(0, dx) + src.shape[1]] = src
        np.testing.assert_array_equal(out_mask, expected)
        assert out_image[..., 0][expected == 0].sum() <= image[..., 0].sum()

    def test_zoom_in_keeps_centre(self):
        mask = np.zeros((33, 33), np.float32)
        mask[16, 16] = 1.0
        image = np.zeros((33, 33, 3), np.uint8)
        _, out_mask = shift_scale(image, mask, shift=(0, 0), scale=1.1, aspect=1.0)
        assert out_mask[16, 16] == 1.0


class TestHsvShift:
    def test_zero_shift_is_identity(self):
        image, _ = _pair(6)
        np.testing.assert_allclose(hsv_shift(image, 0, 0, 0).astype(int), image.astype(int), atol=1)

    def test_value_shift_brightens_grey(self):
        grey = np.full((4, 4, 3), 100, np.uint8)
        assert np.all(hsv_shift(grey, 0, 0, 15) == 115)

    def test_full_hue_turn_is_identity(self):
        image, _ = _pair(7)
        np.testing.assert_allclose(hsv_shift(image, 180, 0, 0).astype(int), image.astype(int), atol=1)


class TestRandomCrop:
    @given(seed=st.integers(0, 2**32 - 1), size=st.integers(1, 32))
    @settings(max_examples=30, deadline=None)
    def test_crop_is_a_window_of_the_pair(self, seed, size):
        image, mask = _pair(8)
        crop_image, crop_mask = random_crop(image, mask, size, np.random.default_rng(seed))
        assert crop_image.shape == (size, size, 3)
        # find the window: the image is random, so its position is unique
        hits = [(t, left) for t in range(33 - size) for left in range(33 - size)
                if np.array_equal(image[t:t + size, left:left + size], crop_image)]
        assert hits
        t, left = hits[0]
        np.testing.assert_array_equal(mask[t:t + size, left:left + size], crop_mask)

    def test_too_large_crop(self):
        image, mask = _pair(9)
        with pytest.raises(ValueError, match="larger than"):
            random_crop(image, mask, 64, np.random.default_rng(0))
