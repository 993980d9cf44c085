"""The training augmentations of the D-LinkNet recipe, as pure numpy on an (image, mask) pair.

Each transform is applied with probability 0.5 and draws every random number from the
``numpy.random.Generator`` it is given, so a pair augmented with the same generator state always
comes out the same, whatever process or thread runs it (that is what makes ``--seed`` repeatable).
Images are ``(H, W, 3)`` uint8 RGB, masks ``(H, W)`` float32 in {0, 1}.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: The recipe's limits: hue +-30 (OpenCV's 0-180 hue scale), saturation +-5, value +-15 (0-255 scales).
HUE_LIMIT = 30.0
SAT_LIMIT = 5.0
VAL_LIMIT = 15.0
#: Shift (fraction of the size), scale and aspect-ratio limits of shift-scale-rotate (rotation 0).
SHIFT_LIMIT = 0.1
SCALE_LIMIT = 0.1
ASPECT_LIMIT = 0.1
PROBABILITY = 0.5


def _check_pair(image: np.ndarray, mask: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {image.shape}")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image shape {image.shape[:2]}")


def hsv_shift(image: np.ndarray, hue: float, saturation: float, value: float) -> np.ndarray:
    """Add ``hue`` (0-180 scale, wrapping), ``saturation`` and ``value`` (0-255 scales) in HSV space."""
    from skimage.color import hsv2rgb, rgb2hsv

    hsv = rgb2hsv(image)
    hsv[..., 0] = (hsv[..., 0] + hue / 180.0) % 1.0
    hsv[..., 1] = np.clip(hsv[..., 1] + saturation / 255.0, 0.0, 1.0)
    hsv[..., 2] = np.clip(hsv[..., 2] + value / 255.0, 0.0, 1.0)
    return np.clip(np.rint(hsv2rgb(hsv) * 255.0), 0, 255).astype(np.uint8)


def shift_scale(image: np.ndarray, mask: np.ndarray, *, shift: tuple[float, float], scale: float,
                aspect: float) -> tuple[np.ndarray, np.ndarray]:
    """Scale about the centre (x by ``scale*sqrt(aspect)``, y by ``scale/sqrt(aspect)``) then shift.

    ``shift`` is (dy, dx) as fractions of height and width. Pixels that come from outside the input
    are 0 (the recipe's constant border); the image is resampled bilinearly, the mask by nearest
    neighbour so it stays binary.
    """
    height, width = mask.shape
    sy, sx = scale / np.sqrt(aspect), scale * np.sqrt(aspect)
    centre = np.array([(height - 1) / 2.0, (width - 1) / 2.0])
    offset_px = np.array([shift[0] * height, shift[1] * width])
    # affine_transform maps output coords o to input coords: i = M @ o + offset
    matrix = np.array([1.0 / sy, 1.0 / sx])
    offset = centre - matrix * (centre + offset_px)
    out_image = np.stack([
        ndimage.affine_transform(image[..., c].astype(np.float32), matrix, offset=offset, order=1,
                                 mode="constant", cval=0.0)
        for c in range(3)], axis=-1)
    out_mask = ndimage.affine_transform(mask.astype(np.float32), matrix, offset=offset, order=0,
                                        mode="constant", cval=0.0)
    return np.clip(np.rint(out_image), 0, 255).astype(np.uint8), out_mask.astype(np.float32)


def random_crop(image: np.ndarray, mask: np.ndarray, size: int, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray]:
    """A ``size`` x ``size`` window at a uniformly random position (the pair itself if already that size)."""
    _check_pair(image, mask)
    height, width = mask.shape
    if size > height or size > width:
        raise ValueError(f"crop {size} is larger than the {height}x{width} image")
    top = int(rng.integers(0, height - size + 1))
    left = int(rng.integers(0, width - size + 1))
    return image[top:top + size, left:left + size], mask[top:top + size, left:left + size]


def augment(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, *, crop: int | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
    """The recipe: optional random crop, then HSV shift, shift-scale, h-flip, v-flip, rot90, each p=0.5.

    Returns new arrays (the inputs are never modified). The number of random draws does not depend
    on which transforms fire, so one pair's outcome never shifts another's.
    """
    _check_pair(image, mask)
    mask = np.asarray(mask, dtype=np.float32)
    if crop is not None:
        image, mask = random_crop(image, mask, crop, rng)
    fire = rng.random(5) < PROBABILITY
    hsv = rng.uniform(-1.0, 1.0, 3) * np.array([HUE_LIMIT, SAT_LIMIT, VAL_LIMIT])
    dy, dx, scale, aspect = rng.uniform(-1.0, 1.0, 4) * np.array(
        [SHIFT_LIMIT, SHIFT_LIMIT, SCALE_LIMIT, ASPECT_LIMIT])
    if fire[0]:
        image = hsv_shift(image, *hsv)
    if fire[1]:
        image, mask = shift_scale(image, mask, shift=(dy, dx), scale=1.0 + scale, aspect=1.0 + aspect)
    if fire[2]:
        image, mask = image[:, ::-1], mask[:, ::-1]
    if fire[3]:
        image, mask = image[::-1], mask[::-1]
    if fire[4]:
        image, mask = np.rot90(image), np.rot90(mask)
    return np.ascontiguousarray(image), np.ascontiguousarray(mask, dtype=np.float32)
