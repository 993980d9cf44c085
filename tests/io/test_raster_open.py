"""Opening rasters: one error line naming the file, and no not-georeferenced noise, also from threads."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest
from rasterio.errors import NotGeoreferencedWarning

from roadseg.errors import BadInputError
from roadseg.io.raster_open import open_raster
from tests.helpers_images import write_image


def test_unreadable_file_is_one_error_naming_it_and_the_fix(tmp_path):
    path = tmp_path / "junk.tif"
    path.write_bytes(b"not a raster")
    with pytest.raises(BadInputError, match=r"junk.tif: not a readable raster \(.+\); give a GeoTIFF$"):
        open_raster(path, "give a GeoTIFF")


def test_plain_images_opened_from_many_threads_raise_no_warning(tmp_path):
    """The training data pipeline opens PNG/JPEG tiles from several worker threads at once; their
    not-georeferenced warning must stay silenced although the filter list is process-wide."""
    path = tmp_path / "tile.png"
    write_image(path, np.zeros((8, 8), np.uint8), "PNG")

    def open_many() -> None:
        for _ in range(500):
            with open_raster(path) as dataset:
                assert dataset.width == 8

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NotGeoreferencedWarning)
        threads = [threading.Thread(target=open_many) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not [w for w in caught if issubclass(w.category, NotGeoreferencedWarning)]
