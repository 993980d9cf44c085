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
from roadseg.inference.options import PredictOptions
from roadseg.inference.predict import check_settings

LANDSAT = "RGB.byte.tif"


def run(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


def test_bad_parameter_error_names_the_parameter_and_is_a_value_error():
    with pytest.raises(BadParameterError) as caught:
        check_settings(None, PredictOptions(window=48))
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


def _message_strings(path):
    """String constants of a module that are not docstrings (the texts of its messages)."""
    import ast

    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
            and isinstance(node.value, str) and id(node) not in docstrings]


def test_library_messages_name_settings_not_flags():
    import re
    from pathlib import Path

    import roadseg

    flag = re.compile(r"(?<![\w-])--[a-z]")
    offenders = [f"{path.name}: {text!r}" for path in Path(roadseg.__file__).parent.rglob("*.py")
                 if "cli" not in path.parts for text in _message_strings(path) if flag.search(text)]
    assert offenders == []


def test_the_cli_shows_each_setting_a_message_names_as_the_flag_typed(tmp_path, shared_data):
    from roadseg.cli.main import as_flags

    flags = {"out_crs": "--crs", "overwrite": "--overwrite"}
    assert as_flags("pick one with `out_crs` EPSG:XXXX; pass `overwrite`",
                    flags.__getitem__) == "pick one with --crs EPSG:XXXX; pass --overwrite"
    mask = tmp_path / "m.tif"
    mask.write_bytes((shared_data / "landsat-rgb" / LANDSAT).read_bytes())
    (tmp_path / "roads.geojson").write_text("{}")
    result = run("preview", mask, "-o", tmp_path / "roads.png")
    assert result.exit_code == 0, result.output
    result = run("preview", mask, "-o", tmp_path / "roads.png")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: {tmp_path / 'roads.png'} already exists; pass --overwrite "
                                                  "to replace it"]
