"""The command group: every registered command resolves, help is fast, errors become one line."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from roadseg.cli.main import COMMANDS, cli


def test_every_registered_command_resolves_and_has_help():
    runner = CliRunner()
    for name in COMMANDS:
        result = runner.invoke(cli, [name, "--help"])
        assert result.exception is None, (name, result.output)
        assert result.exit_code == 0 and "Usage:" in result.output


def test_group_help_lists_every_command():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output


def test_help_does_not_import_mindspore():
    code = ("import sys; from click.testing import CliRunner; from roadseg.cli.main import cli; "
            "r = CliRunner().invoke(cli, ['--help']); assert r.exit_code == 0, r.output; "
            "print('mindspore' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_top_level_api_names_resolve():
    import roadseg
    from roadseg.inference.predict import predict_array, predict_file

    assert roadseg.predict_array is predict_array and roadseg.predict_file is predict_file
    assert callable(roadseg.load_model)
