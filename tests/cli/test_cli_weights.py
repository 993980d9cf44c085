"""``roadseg info``, ``weights`` and ``export`` through Click's runner."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from roadseg.cli.main import cli
from tests.helpers_ckpt import write_zoo_checkpoint

pytestmark = pytest.mark.mindspore


@pytest.fixture
def runner(tmp_path, monkeypatch):
    monkeypatch.setenv("ROADSEG_CACHE", str(tmp_path / "cache"))
    return CliRunner()


def test_info_json_lists_versions_devices_cache_and_weights(runner, tmp_path):
    result = runner.invoke(cli, ["info", "--json"])
    assert result.exception is None and result.exit_code == 0
    facts = json.loads(result.output)
    assert facts["mindspore"].startswith("2.") and "CPU" in facts["devices"]
    assert facts["cache_dir"] == str(tmp_path / "cache")
    assert facts["weights"][0]["name"] == "dlinknet34-deepglobe" and facts["weights"][0]["cached"] is False


def test_weights_list_shows_name_arch_gsd_sha_and_cache_state(runner):
    result = runner.invoke(cli, ["weights", "list"])
    assert result.exit_code == 0
    assert "dlinknet34-deepglobe  dlinknet34  trained at 0.5 m/pixel  sha256 102594a59fdc3d53" in result.output
    assert "not cached" in result.output
    listed = json.loads(runner.invoke(cli, ["weights", "list", "--json"]).output)
    assert listed[0]["gsd_m"] == 0.5


def test_weights_download_unknown_name_is_a_usage_error(runner):
    result = runner.invoke(cli, ["weights", "download", "nope"])
    assert result.exit_code == 2 and "unknown weights 'nope'" in result.output


def test_weights_verify_accepts_a_zoo_checkpoint_and_refuses_a_broken_one(runner, tmp_path):
    write_zoo_checkpoint(tmp_path / "zoo.ckpt", optimizer=True)
    result = runner.invoke(cli, ["weights", "verify", str(tmp_path / "zoo.ckpt"), "--json"])
    assert result.exception is None, result.output
    report = json.loads(result.output)
    assert report["arch"] == "dlinknet34" and report["tensors"] == 266 and report["known_as"] is None
    assert report["values"] == 31_115_137 and report["training_state_entries"] > 0
    write_zoo_checkpoint(tmp_path / "broken.ckpt", drop="firstbn.gamma")
    result = runner.invoke(cli, ["weights", "verify", str(tmp_path / "broken.ckpt")])
    assert result.exit_code == 1
    assert result.output.strip().startswith("Error:") and "1 missing: firstbn.gamma" in result.output


def test_model_commands_refuse_an_unusable_device_in_one_line(runner, tmp_path):
    write_zoo_checkpoint(tmp_path / "zoo.ckpt")
    from roadseg.model.devices import DEVICE_ORDER, usable_devices

    missing = [d for d in DEVICE_ORDER if d not in usable_devices()]
    if not missing:
        pytest.skip("every device kind is usable here")
    result = runner.invoke(cli, ["export", "--weights", str(tmp_path / "zoo.ckpt"), "--device", missing[0],
                                 "-o", str(tmp_path / "m.mindir")])
    assert result.exit_code == 1
    assert f"device {missing[0]} is not usable" in result.output and "usable: " in result.output
    assert not (tmp_path / "m.mindir").exists()


def test_default_weights_offline_error_says_how_to_get_them(runner, tmp_path, monkeypatch):
    from roadseg.model import registry
    entry = registry.REGISTRY["dlinknet34-deepglobe"]
    monkeypatch.setitem(registry.REGISTRY, entry.name,
                        registry.KnownWeights(**{**entry.__dict__, "url": "http://127.0.0.1:9/zoo.ckpt"}))
    result = runner.invoke(cli, ["export", "-o", str(tmp_path / "m.mindir")])
    assert result.exit_code == 1
    assert "roadseg weights download dlinknet34-deepglobe" in result.output and "--weights PATH" in result.output


def test_export_mindir_writes_the_file_and_air_is_refused_off_ascend(runner, tmp_path):
    write_zoo_checkpoint(tmp_path / "zoo.ckpt")
    out = tmp_path / "new" / "model.mindir"  # a folder that does not exist yet
    result = runner.invoke(cli, ["export", "--weights", str(tmp_path / "zoo.ckpt"), "--size", "64",
                                 "-o", str(out)])
    assert result.exception is None, result.output
    assert out.stat().st_size > 100_000_000  # carries the 31M float32 weights
    result = runner.invoke(cli, ["export", "--weights", str(tmp_path / "zoo.ckpt"), "--size", "64",
                                 "-o", str(out)])
    assert result.exit_code == 1 and "already exists" in result.output
    result = runner.invoke(cli, ["export", "--weights", str(tmp_path / "zoo.ckpt"), "--format", "AIR",
                                 "--size", "64", "-o", str(tmp_path / "model.air")])
    assert result.exit_code == 1 and "AIR export needs an Ascend device" in result.output
    assert not (tmp_path / "model.air").exists()
    assert not [p.name for p in (*tmp_path.iterdir(), *out.parent.iterdir()) if p.name.startswith(".")]  # no leftovers
