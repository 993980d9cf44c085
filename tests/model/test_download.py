"""Downloads against a server on 127.0.0.1 started by the test: success, hash mismatch, dropped connection."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from roadseg.errors import ChecksumMismatchError, DownloadError, WeightsNotAvailableError
from roadseg.model import registry
from roadseg.model.download import download
from roadseg.model.registry import KnownWeights
from roadseg.model.weights import resolve_weights

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, several chunks


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path == "/drop":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 3])
            self.wfile.flush()
            self.connection.shutdown(2)  # hang up midway
            return
        if self.path != "/weights.ckpt":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


GOOD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_download_succeeds_and_reports_progress(server, tmp_path):
    seen = []
    path = download(f"{server}/weights.ckpt", tmp_path / "w.ckpt", sha256=GOOD_SHA,
                    progress=lambda done, total: seen.append((done, total)))
    assert path.read_bytes() == PAYLOAD
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD)) and len(seen) >= 1
    assert leftovers(tmp_path) == ["w.ckpt"]


def test_hash_mismatch_deletes_the_file_and_says_so(server, tmp_path):
    with pytest.raises(ChecksumMismatchError, match="sha256 mismatch .* the file was deleted"):
        download(f"{server}/weights.ckpt", tmp_path / "w.ckpt", sha256="0" * 64)
    assert leftovers(tmp_path) == []


def test_dropped_connection_leaves_no_file(server, tmp_path):
    with pytest.raises(DownloadError, match="connection dropped after"):
        download(f"{server}/drop", tmp_path / "w.ckpt", sha256=GOOD_SHA)
    assert leftovers(tmp_path) == []


def test_existing_file_is_not_overwritten(server, tmp_path):
    (tmp_path / "w.ckpt").write_bytes(b"mine")
    with pytest.raises(Exception, match="already exists; pass `overwrite`"):
        download(f"{server}/weights.ckpt", tmp_path / "w.ckpt", sha256=GOOD_SHA)
    assert (tmp_path / "w.ckpt").read_bytes() == b"mine"


def test_uncached_weights_without_network_say_exactly_how_to_get_them(server, tmp_path, monkeypatch):
    entry = KnownWeights(name="test-weights", arch="dlinknet34", url=f"{server}/missing.ckpt", sha256=GOOD_SHA,
                         filename="test.ckpt", description="", license="")
    monkeypatch.setitem(registry.REGISTRY, "test-weights", entry)
    monkeypatch.setenv("ROADSEG_CACHE", str(tmp_path / "cache"))
    with pytest.raises(WeightsNotAvailableError) as info:
        resolve_weights("test-weights")
    message = str(info.value)
    assert "roadseg weights download test-weights" in message
    assert entry.url in message and "`weights` PATH" in message
    assert "\n" not in message


def test_known_weights_download_into_the_cache_then_resolve_without_network(server, tmp_path, monkeypatch):
    entry = KnownWeights(name="test-weights", arch="dlinknet34", url=f"{server}/weights.ckpt", sha256=GOOD_SHA,
                         filename="test.ckpt", description="", license="")
    monkeypatch.setitem(registry.REGISTRY, "test-weights", entry)
    monkeypatch.setenv("ROADSEG_CACHE", str(tmp_path / "cache"))
    resolved = resolve_weights("test-weights")
    assert resolved.path == tmp_path / "cache" / "test.ckpt" and resolved.path.read_bytes() == PAYLOAD
    again = resolve_weights("test-weights", allow_download=False)
    assert again.path == resolved.path and again.label == "test-weights"
