"""Training records the GSD of its data in the checkpoints it writes (for ``predict --gsd auto``)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from roadseg.errors import BadParameterError
from roadseg.train.data import TrainPair, training_gsd
from tests.helpers_predict import write_raster


def _geotiff_pair(directory: Path, name: str, gsd: float, crs: str | None = "EPSG:32633") -> TrainPair:
    image = np.full((3, 32, 32), 100, np.uint8)
    transform = Affine(gsd, 0, 400000.0, 0, -gsd, 6000000.0)
    path = write_raster(directory / f"{name}.tif", image, crs=crs, transform=transform)
    return TrainPair(name, path, directory / f"{name}_mask.tif")


def test_median_of_georeferenced_images(tmp_path):
    pairs = [_geotiff_pair(tmp_path, f"t{i}", gsd) for i, gsd in enumerate((0.3, 0.31, 0.5))]
    pairs.append(_geotiff_pair(tmp_path, "plain", 1.0, crs=None))  # no georeferencing: not counted
    pairs.append(TrainPair("jpg", tmp_path / "x_sat.jpg", tmp_path / "x_mask.png"))  # never opened
    assert training_gsd(pairs) == pytest.approx(0.31)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 0.3 agrees with the data within 10 %: no warning
        assert training_gsd(pairs, 0.3) == pytest.approx(0.31)


def test_given_gsd_for_data_without_georeferencing(tmp_path):
    pairs = [TrainPair("a", tmp_path / "a_sat.jpg", tmp_path / "a_mask.png")]
    assert training_gsd(pairs, 0.5) == 0.5
    assert training_gsd(pairs) is None


def test_georeferencing_overrules_a_contradicting_gsd(tmp_path):
    pairs = [_geotiff_pair(tmp_path, "t", 0.3)]
    with pytest.warns(UserWarning, match="`gsd` 0.5 m disagrees with the 0.3 m median"):
        assert training_gsd(pairs, 0.5) == pytest.approx(0.3)


@pytest.mark.parametrize("value", [0, -1.0, float("nan")])
def test_config_refuses_a_bad_gsd(tmp_path, value):
    from roadseg.train.loop import TrainConfig

    with pytest.raises(BadParameterError, match="^gsd must be a positive number"):
        TrainConfig(data=str(tmp_path), gsd=value)


@pytest.mark.mindspore
def test_checkpoints_record_the_gsd(tmp_path):
    from roadseg.model.checkpoint import read_checkpoint
    from roadseg.train.loop import TrainConfig, run_training
    from tests.train.test_loop import synthetic_data

    data = synthetic_data(tmp_path / "data", count=2, size=64)
    config = TrainConfig(output=str(tmp_path / "run"), data=str(data), val_split=0.0, epochs=1, batch_size=2,
                         device="CPU", workers=1, gsd=0.4)
    run_training(config)
    for name in ("best.ckpt", "last.ckpt"):
        assert read_checkpoint(tmp_path / "run" / name).gsd == 0.4
