"""Clean a binary road mask before skeletonizing: fill small holes, drop small blobs.

Holes (cars, shadows, trees over a road) make the skeleton fork around them into small loops; specks
of false positives become short stray lines. Both are fixed far more cheaply on the mask than on the
graph. Sizes are in pixels here; :mod:`roadseg.vector.vectorize` converts the user's square metres.
"""

from __future__ import annotations

import math

import numpy as np
from skimage.morphology import remove_small_holes, remove_small_objects


def clean_mask(road: np.ndarray, *, min_hole: float = 0, min_area: float = 0,
               valid: np.ndarray | None = None) -> np.ndarray:
    """Return a copy of ``road`` with holes smaller than ``min_hole`` pixels filled and 8-connected
    road blobs smaller than ``min_area`` pixels removed.

    Parameters
    ----------
    road : (H, W) bool array
        True where there is road. Not modified. Background touching the edge is never a hole.
    min_hole, min_area : float
        Areas in pixels; a hole or blob is changed only if it has strictly fewer pixels. 0 disables.
    valid : (H, W) bool array, optional
        False for nodata pixels: they never become road, even inside a filled hole.

    >>> m = np.ones((5, 5), bool); m[2, 2] = False
    >>> clean_mask(m, min_hole=2)[2, 2]
    True
    """
    road = np.asarray(road)
    if road.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {road.shape}")
    out = road.astype(bool, copy=True)
    if min_hole > 1:
        # Background touching the raster edge is not a hole (the next tile may go on): a frame of
        # background joins it to the outside. remove_small_holes removes holes of at most max_size.
        framed = np.pad(out, 1)
        remove_small_holes(framed, max_size=math.ceil(min_hole) - 1, connectivity=1, out=framed)
        out = framed[1:-1, 1:-1].copy()
        del framed
    if min_area > 1:
        remove_small_objects(out, max_size=math.ceil(min_area) - 1, connectivity=2, out=out)
    if valid is not None:
        out &= np.asarray(valid, dtype=bool)
    return out
