"""Rasters read by URL through a loopback HTTP server: same outputs as the local file, range requests only,
transient failures retried then reported in one line, and no secret of a signed URL ever shown."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import rasterio
from hypothesis import given
from hypothesis import strategies as st

from roadseg.errors import BadInputError
from roadseg.inference.options import OutputOptions, PredictOptions
from roadseg.inference.predict import output_paths, predict_file, predict_files
from roadseg.io.inputs import as_input, collect_sources, expand_lists, select_shard
from roadseg.io.raster_read import RasterSource, io_env
from roadseg.io.remote import RemoteRaster, open_remote, redact, redact_text
from roadseg.io.stac import StacItem
from tests.helpers_remote import fast_retries, serve, write_cog

FAST = PredictOptions(window=512, overlap=0.0, tta="none")


def pointwise(batch: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-4.0 * batch[:, 0]))).astype(np.float32)


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    """Retries as in production (3)."""
    fast_retries(monkeypatch, 3)


@pytest.fixture(scope="module")
def www(tmp_path_factory):
    """A folder with a 2048x2048 COG whose top-left quarter only is valid (nodata 0 elsewhere, empty tiles
    left out of the file), and one fully valid."""
    root = tmp_path_factory.mktemp("www")
    data = np.random.default_rng(0).integers(1, 256, (3, 2048, 2048), dtype=np.uint8)
    write_cog(root / "full.tif", data)
    data[:, 1024:, :] = 0
    data[:, :, 1024:] = 0
    write_cog(root / "quarter.tif", data, nodata=0, sparse_ok=True)
    return root


@pytest.fixture
def server(www):
    with serve(www) as (url, state):
        yield url, state


class TestNaming:
    @pytest.mark.parametrize(("url", "shown", "gdal"), [
        ("https://user:pw@example.com/a/scene.tif?X-Amz-Signature=abc#f", "https://example.com/a/scene.tif",
         "/vsicurl/https://user:pw@example.com/a/scene.tif?X-Amz-Signature=abc#f"),
        ("s3://bucket/dir/scene.tif", "s3://bucket/dir/scene.tif", "/vsis3/bucket/dir/scene.tif"),
        ("gs://bucket/scene%20one.tif", "gs://bucket/scene%20one.tif", "/vsigs/bucket/scene%20one.tif"),
    ])
    def test_shown_without_secrets_and_opened_through_gdal(self, url, shown, gdal):
        remote = RemoteRaster(url)
        assert str(remote) == shown == redact(url)
        assert remote.gdal_path() == gdal

    def test_outputs_are_named_by_the_url_stem_query_ignored(self, tmp_path):
        targets = output_paths("https://example.com/x/104_sat.jpg?sig=1", tmp_path, OutputOptions(save_prob=True))
        assert targets.mask == tmp_path / "104_mask.png" and targets.prob == tmp_path / "104_prob.tif"
        assert output_paths("s3://b/k/scene.tif", tmp_path).mask == tmp_path / "scene_mask.tif"

    @pytest.mark.parametrize("url", ["s3://bucket", "https://example.com/", "ftp://example.com/a.tif"])
    def test_urls_naming_no_file_are_refused(self, url):
        with pytest.raises(BadInputError, match="URL"):
            RemoteRaster(url)

    def test_redact_text_strips_queries_of_every_url(self):
        text = "HTTP error code: 503 - http://h:1/a.tif?sig=SECRET. Retrying; see s3://b/k.tif#frag too"
        assert redact_text(text) == "HTTP error code: 503 - http://h:1/a.tif Retrying; see s3://b/k.tif too"
        text = "B02.tif?se=2024&sig=SECRET, band 1: IReadBlock failed at X offset 0"
        assert redact_text(text) == "B02.tif, band 1: IReadBlock failed at X offset 0"


class TestInputLists:
    def test_lists_urls_stac_items_and_files_sorted_once(self, tmp_path):
        (tmp_path / "b.tif").write_bytes(b"x")
        (tmp_path / "item.json").write_text("{}")
        listing = tmp_path / "urls.txt"
        listing.write_text("# scenes\n\nhttps://h/z.tif?sig=1\n  https://h/a.tif  \nhttps://h/z.tif?sig=1\n"
                           f"{tmp_path / 'b.tif'}\n{tmp_path / 'item.json'}\nhttps://h/items/S2A_1\n")
        found = collect_sources([f"@{listing}"], asset="B08")
        assert found == [tmp_path / "b.tif", StacItem(str(tmp_path / "item.json"), "B08"), RemoteRaster("https://h/a.tif"),
                         StacItem("https://h/items/S2A_1", "B08"), RemoteRaster("https://h/z.tif?sig=1")]
        assert expand_lists(["a.tif", f"@{listing}"])[:2] == ["a.tif", "https://h/z.tif?sig=1"]

    def test_a_missing_list_is_one_line(self, tmp_path):
        with pytest.raises(BadInputError, match=r"missing\.txt: cannot read the input list"):
            collect_sources([f"@{tmp_path / 'missing.txt'}"])

    @given(st.lists(st.sampled_from(["a.tif", "b/c.tif", "https://h/x.tif", "https://h/y.tif?s=1",
                                     "https://h/items/i1", "s3://b/k.tif"]), unique=True),
           st.integers(1, 5))
    def test_shards_of_mixed_inputs_partition_them(self, names, n):
        inputs = [as_input(name) for name in names]
        shares = [select_shard(inputs, k, n) for k in range(1, n + 1)]
        flat = [str(item) for share in shares for item in share]
        assert sorted(flat) == sorted(map(str, inputs)) and len(set(flat)) == len(flat)
        assert shares == [select_shard(list(reversed(inputs)), k, n) for k in range(1, n + 1)]

    def test_shards_of_urls_are_disjoint_and_cover_all(self):
        inputs = [as_input(f"https://h/{name}.tif") for name in "edcba"]
        shares = [select_shard(inputs, k, 2) for k in (1, 2)]
        assert [str(item) for item in shares[0]] == ["https://h/a.tif", "https://h/c.tif", "https://h/e.tif"]
        assert sorted(map(str, shares[0] + shares[1])) == sorted(map(str, inputs))


class TestPredictThroughHttp:
    def test_outputs_identical_to_the_local_file(self, www, server, tmp_path):
        url, _ = server
        output = OutputOptions(save_prob=True)
        local = predict_file(pointwise, www / "full.tif", tmp_path / "local", FAST, output=output)
        remote = predict_file(pointwise, f"{url}/full.tif?sig=SECRET", tmp_path / "remote", FAST, output=output)
        assert [p.name for p in remote.outputs] == [p.name for p in local.outputs] == ["full_mask.tif",
                                                                                       "full_prob.tif"]
        for ours, theirs in zip(local.outputs, remote.outputs):
            assert ours.read_bytes() == theirs.read_bytes()
        assert remote.windows_run == 16

    def test_only_the_valid_part_is_downloaded(self, www, server, tmp_path):
        url, state = server
        size = (www / "quarter.tif").stat().st_size
        with rasterio.open(www / "quarter.tif") as dataset:  # the bytes of the full-resolution tiles with data
            tiles = [dataset.get_tag_item(f"BLOCK_SIZE_{x}_{y}", "TIFF", bidx=1) for x in range(4) for y in range(4)]
        data_bytes = sum(int(tile) for tile in tiles if tile)
        result = predict_file(pointwise, f"{url}/quarter.tif", tmp_path, FAST)
        assert result.windows_run == 4 and result.windows_skipped == 12
        assert all(request.startswith(("HEAD", "GET")) and ("Range" in request or "bytes=" in request)
                   for request in state.requests if request.startswith("GET"))
        assert state.bytes_served < size
        assert state.bytes_served <= data_bytes + 64 * 1024  # the tiles with data and the header, no overviews

    @pytest.mark.parametrize("failure", ["503", "drop"])
    def test_transient_failures_are_retried(self, server, tmp_path, failure):
        url, state = server
        state.fail_first, state.failure = 2, failure
        result = predict_file(pointwise, f"{url}/full.tif", tmp_path, FAST)
        assert result.windows_run == 16 and len(state.requests) > 2

    @pytest.mark.parametrize("failure", ["503", "drop"])
    def test_persistent_failures_are_one_line_naming_the_url(self, server, tmp_path, failure, caplog):
        url, state = server
        state.fail_first, state.failure = 1000, failure
        with caplog.at_level(logging.DEBUG), pytest.raises(BadInputError) as raised:
            predict_file(pointwise, f"{url}/full.tif?sig=SECRET", tmp_path, FAST)
        message = str(raised.value)
        assert message.startswith(f"{url}/full.tif: cannot read it") and "\n" not in message
        assert ("after 4 tries (CURL error: Empty reply from server)" if failure == "drop" else
                "(HTTP response code: 503)") in message
        assert "SECRET" not in message and "SECRET" not in caplog.text
        assert 3 <= len(state.requests) <= 16  # bounded
        assert not list(tmp_path.iterdir())

    def test_timeouts_are_retried_by_gdal_then_reported(self, server, tmp_path, monkeypatch):
        url, state = server
        monkeypatch.setenv("GDAL_HTTP_TIMEOUT", "1")
        monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "1")
        state.fail_first, state.failure, state.stall_s = 1, "stall", 1.5
        assert predict_file(pointwise, f"{url}/full.tif?try=1", tmp_path / "a", FAST).windows_run == 16
        state.reset()
        state.fail_first = 1000
        with pytest.raises(BadInputError, match=rf"^{url}/full.tif: cannot read it \(CURL error: Operation timed out"):
            predict_file(pointwise, f"{url}/full.tif?try=2", tmp_path / "b", FAST)
        assert len(state.requests) == 2  # one try and GDAL's one retry; roadseg adds none to a timeout

    def test_a_failure_after_the_open_is_one_line_too(self, server, tmp_path):
        url, state = server
        state.fail_from = 3  # the header is read, the tiles are not
        with pytest.raises(BadInputError) as raised:
            predict_file(pointwise, f"{url}/full.tif?sig=SECRET", tmp_path, FAST)
        message = str(raised.value)
        assert message.startswith(f"{url}/full.tif: reading failed") and "\n" not in message
        assert "SECRET" not in message and not list(tmp_path.iterdir())

    def test_a_batch_goes_on_past_a_failed_url(self, www, server, tmp_path):
        url, _ = server
        batch = predict_files(pointwise, [f"{url}/missing.tif", f"{url}/full.tif"], tmp_path, FAST)
        assert [str(path) for path, _ in batch.failed] == [f"{url}/missing.tif"]
        assert "404" in batch.failed[0][1]
        assert [path.name for path in batch.outputs] == ["full_mask.tif"]

    def test_skip_if_done_does_not_touch_the_network(self, server, tmp_path):
        url, state = server
        predict_file(pointwise, f"{url}/full.tif?sig=1", tmp_path, FAST)
        state.reset()
        again = predict_file(pointwise, f"{url}/full.tif?sig=2", tmp_path, FAST)
        assert again.outputs == [] and again.skipped == [tmp_path / "full_mask.tif"] and state.requests == []


def test_open_remote_backs_off_exponentially_and_gives_up(server, monkeypatch):
    url, state = server
    state.fail_first, state.failure = 1000, "drop"
    waits: list[float] = []
    with pytest.raises(BadInputError, match="after 4 tries"):
        open_remote(RemoteRaster(f"{url}/full.tif"), rasterio.open, sleep=waits.append)
    assert waits == [0.01, 0.02, 0.04]


def test_window_reads_match_the_local_file(www, server):
    url, _ = server
    with io_env(), RasterSource(www / "full.tif") as local, RasterSource(as_input(f"{url}/full.tif")) as remote:
        for y, x in [(0, 0), (1500, 1700), (2000, -20)]:
            np.testing.assert_array_equal(remote.read_window(y, x, 300)[0], local.read_window(y, x, 300)[0])


@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_buckets_through_gdal_with_credentials_from_the_environment(www, tmp_path, monkeypatch, scheme):
    """s3:// and gs:// go through GDAL's /vsis3/ and /vsigs/, pointed at the loopback server; S3 requests are
    signed with the key in the environment (roadseg never sees or passes it)."""
    (tmp_path / "root" / "bucket").mkdir(parents=True)
    (tmp_path / "root" / "bucket" / "scene.tif").write_bytes((www / "quarter.tif").read_bytes())
    with serve(tmp_path / "root") as (url, state):
        monkeypatch.setenv("AWS_S3_ENDPOINT", url.split("//")[1])
        for key, value in dict(AWS_HTTPS="NO", AWS_VIRTUAL_HOSTING="FALSE", AWS_REGION="us-east-1",
                               AWS_ACCESS_KEY_ID="AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY="SECRETKEY",
                               CPL_GS_ENDPOINT=f"{url}/", GS_NO_SIGN_REQUEST="YES").items():
            monkeypatch.setenv(key, value)
        result = predict_file(pointwise, f"{scheme}://bucket/scene.tif", tmp_path / "out", FAST)
    assert result.outputs == [tmp_path / "out" / "scene_mask.tif"] and result.windows_run == 4
    assert state.requests[0].startswith("GET /bucket/scene.tif bytes=0-")
    if scheme == "s3":
        assert state.authorizations and all("Credential=AKIDEXAMPLE/" in header and "SECRETKEY" not in header
                                            for header in state.authorizations)
