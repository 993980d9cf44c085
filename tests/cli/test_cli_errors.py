"""Bad settings are one line naming the flag, exit 2, before any model is loaded or file read.

The library raises :class:`BadParameterError` with its parameter's name (``scale_range``); the CLI
renders the flag (``--scale-range``). The weights named here do not exist: reaching the model load
would give another error, so these also show the check comes first.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from roadseg.cli.main import cli
from roadseg.errors import BadParameterError, RoadsegError
from roadseg.inference.predict import check_settings

LANDSAT = "RGB.byte.tif"


def run(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


def test_bad_parameter_error_names_the_parameter_and_is_a_value_error():
    with pytest.raises(BadParameterError) as caught:
        check_settings(None, window=48)
    error = caught.value
    assert isinstance(error, ValueError) and isinstance(error, RoadsegError)
    assert error.parameter == "window"
    assert str(error) == f"window {error.problem}"
    assert "--" not in str(error)  # library messages never talk about flags


@pytest.mark.parametrize("low_high", [("5", "1"), ("3", "3"), ("nan", "1"), ("0", "nan")])
def test_predict_refuses_an_empty_scale_range(tmp_path, shared_data, low_high):
    result = run("predict", shared_data / "landsat-rgb" / LANDSAT, "-o", tmp_path / "out", "--scale-range",
                 *low_high, "--weights", tmp_path / "missing.ckpt")
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        f"Error: Invalid value for --scale-range: needs LOW < HIGH (finite numbers), got "
        f"{float(low_high[0]):g} {float(low_high[1]):g}"]
    assert not (tmp_path / "out").exists()


def test_preview_refuses_an_empty_scale_range(tmp_path, shared_data):
    result = run("preview", shared_data / "landsat-rgb" / LANDSAT, "-o", tmp_path / "look.png",
                 "--scale-range", "5", "1")
    assert result.exit_code == 2, result.output
    assert "Error: Invalid value for --scale-range: needs LOW < HIGH" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "look.png").exists()


def test_eval_refuses_a_window_the_network_cannot_take(tmp_path, shared_data):
    result = run("eval", shared_data / "deepglobe" / "train", "--window", "48", "--weights",
                 tmp_path / "missing.ckpt")
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        "Error: Invalid value for --window: must be a positive multiple of 32 pixels (the network's five "
        "stride-2 stages), got 48"]
