"""``roadseg predict`` and ``preview`` on URLs, @lists and STAC items, through a loopback HTTP server."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from roadseg.cli.main import cli
from tests.cli.test_cli_predict import stand_in  # noqa: F401 (the stand-in model fixture)
from tests.helpers_remote import fast_retries, serve, write_cog

pytestmark = pytest.mark.usefixtures("stand_in")


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    fast_retries(monkeypatch, 2)


@pytest.fixture(scope="module")
def www(tmp_path_factory):
    root = tmp_path_factory.mktemp("www")
    for index, name in enumerate(("a", "b", "c")):
        write_cog(root / f"{name}.tif", np.random.default_rng(index).integers(1, 256, (3, 96, 128), dtype=np.uint8))
    (root / "item.json").write_text(json.dumps({
        "type": "Feature", "id": "item", "properties": {}, "geometry": None,
        "assets": {"visual": {"href": "a.tif"}, "other": {"href": "b.tif"}}}))
    return root


@pytest.fixture
def server(www):
    with serve(www) as (url, state):
        yield url, state


def predict(*args):
    return CliRunner().invoke(cli, ["predict", *map(str, args), "--window", "64", "--tta", "none"])


def test_a_url_list_with_a_failing_url(server, tmp_path):
    url, state = server
    listing = tmp_path / "urls.txt"
    listing.write_text(f"# two scenes and a missing one\n{url}/a.tif?sig=SECRET\n\n{url}/missing.tif?sig=SECRET\n"
                       f"{url}/b.tif\n")
    result = predict(f"@{listing}", "-o", tmp_path / "out", "--json")
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert sorted(summary["outputs"]) == [str(tmp_path / "out" / "a_mask.tif"), str(tmp_path / "out" / "b_mask.tif")]
    assert summary["failed"][0]["input"] == f"{url}/missing.tif"
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [f"Error: {url}/missing.tif: cannot read it (HTTP response code: 404); check the URL, the "
                      "network and the credentials in the environment"]
    assert "SECRET" not in result.output
    # a second run skips what is done without reading those scenes, and tries the missing one again
    state.reset()
    again = predict(f"@{listing}", "-o", tmp_path / "out", "--json")
    assert len(json.loads(again.stdout)["skipped"]) == 2 and again.exit_code == 1
    assert all("/missing.tif" in request for request in state.requests) and state.bytes_served == 0


@pytest.mark.parametrize("failure", ["503", "drop"])
def test_an_unavailable_server_is_retried_then_one_line(www, server, tmp_path, failure):
    url, state = server
    state.fail_first, state.failure = 1000, failure
    result = predict(f"{url}/a.tif?X-Amz-Signature=SECRET", www / "b.tif", "-o", tmp_path / "out")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and errors[0].startswith(f"Error: {url}/a.tif: cannot read it")
    assert (tmp_path / "out" / "b_mask.tif").is_file()
    assert "SECRET" not in result.output and 3 <= len(state.requests) <= 12


def test_shards_of_a_url_list(server, tmp_path):
    url, _ = server
    seen = []
    for k in (1, 2):
        result = predict(f"{url}/c.tif", f"{url}/a.tif", f"{url}/b.tif", "-o", tmp_path, "--shard", f"{k}/2", "--json")
        assert result.exception is None, result.output
        seen.append([entry["input"] for entry in json.loads(result.stdout)["files"]])
    assert seen == [[f"{url}/a.tif", f"{url}/c.tif"], [f"{url}/b.tif"]]


def test_stac_items_local_and_remote_with_asset(www, server, tmp_path):
    url, _ = server
    local = predict(www / "item.json", "-o", tmp_path / "local", "--json")
    assert local.exception is None, local.output
    remote = predict(f"{url}/item.json", "-o", tmp_path / "remote", "--asset", "other", "--json")
    assert remote.exception is None, remote.output
    plain = predict(www / "a.tif", www / "b.tif", "-o", tmp_path / "plain")
    assert plain.exception is None, plain.output
    for folder, expected in (("local", "a"), ("remote", "b")):
        assert (tmp_path / folder / "item_mask.tif").read_bytes() == (tmp_path / "plain" / f"{expected}_mask.tif"
                                                                      ).read_bytes()


def test_a_missing_asset_is_one_line(www, tmp_path):
    result = predict(www / "item.json", "-o", tmp_path, "--asset", "nir")
    assert result.exit_code == 1
    assert "Error: " + str(www / "item.json") + ": has no asset 'nir' (it has other, visual)" in result.stderr


def test_preview_of_a_url(server, tmp_path):
    url, state = server
    result = CliRunner().invoke(cli, ["preview", f"{url}/a.tif?sig=SECRET", "-o", str(tmp_path / "a.png")])
    assert result.exception is None, result.output
    assert (tmp_path / "a.png").is_file() and "SECRET" not in result.output and state.bytes_served > 0


def test_eval_scores_masks_at_urls_as_it_scores_the_files(tmp_path):
    from tests.helpers_predict import write_raster

    masks = tmp_path / "www"
    masks.mkdir()
    rng = np.random.default_rng(5)
    truth = (rng.random((1, 64, 80)) < 0.2).astype(np.uint8)
    pred = truth.copy()
    pred[0, :8] = 1 - pred[0, :8]
    write_raster(masks / "p_mask.tif", pred)
    write_raster(masks / "t_mask.tif", truth)
    local = CliRunner().invoke(cli, ["eval", str(masks / "p_mask.tif"), str(masks / "t_mask.tif"), "--json"])
    assert local.exit_code == 0, local.output
    with serve(masks) as (url, _):
        remote = CliRunner().invoke(cli, ["eval", f"{url}/p_mask.tif?token=SECRET", f"{url}/t_mask.tif", "--json",
                                          "--csv", str(tmp_path / "scores.csv")])
        assert remote.exit_code == 0, remote.output
        missing = CliRunner().invoke(cli, ["eval", f"{url}/nope_mask.tif?token=SECRET", f"{url}/t_mask.tif"])
    local, remote = json.loads(local.output), json.loads(remote.output)
    assert remote["confusion"] == local["confusion"] and remote["scores"] == local["scores"]
    assert remote["images"][0]["prediction"] == f"{url}/p_mask.tif"  # named without its query string
    assert "SECRET" not in json.dumps(remote) and "SECRET" not in (tmp_path / "scores.csv").read_text()
    assert missing.exit_code == 1 and "SECRET" not in missing.output
    assert f"{url}/nope_mask.tif" in missing.output
