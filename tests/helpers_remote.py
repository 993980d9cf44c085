"""A loopback HTTP server for the remote-input tests: serves a folder with Range support, counts the bytes
it sends, and can be told to fail (drop the connection or answer 503) for the first N requests."""

from __future__ import annotations

import contextlib
import http.server
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


@dataclass
class ServerState:
    """What the server was told to do and what it did; the tests read and set it between requests."""

    root: Path
    fail_first: int = 0  # this many requests fail before the server behaves
    fail_from: int = 10 ** 9  # and the requests from this one on (numbered from 1) fail too
    failure: str = "503"  # "503", "drop" (close the connection without an answer) or "stall"
    stall_s: float = 2.0  # how long a stalled request hangs before the connection is closed
    requests: list[str] = field(default_factory=list)  # "METHOD path Range" of every request
    authorizations: list[str] = field(default_factory=list)  # the Authorization headers received
    bytes_served: int = 0  # body bytes sent
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.bytes_served = 0


class _Handler(http.server.BaseHTTPRequestHandler):
    state: ServerState
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _fails(self) -> bool:
        with self.state.lock:
            self.state.requests.append(f"{self.command} {self.path} {self.headers.get('Range', '')}")
            if "Authorization" in self.headers:
                self.state.authorizations.append(self.headers["Authorization"])
            count = len(self.state.requests)
            failing = count <= self.state.fail_first or count >= self.state.fail_from
        if not failing:
            return False
        if self.state.failure == "stall":  # answer nothing until the client gives up
            time.sleep(self.state.stall_s)
            self.close_connection = True
        elif self.state.failure == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
        else:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
        return True

    def _target(self) -> Path | None:
        name = self.path.split("?", 1)[0].lstrip("/")
        path = (self.state.root / name).resolve()
        return path if path.is_file() and self.state.root.resolve() in path.parents else None

    def do_HEAD(self) -> None:  # noqa: N802 (http.server's naming)
        self._answer(body=False)

    def do_GET(self) -> None:  # noqa: N802
        self._answer(body=True)

    def _answer(self, body: bool) -> None:
        if self._fails():
            return
        path = self._target()
        if path is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = path.read_bytes()
        start, end = 0, len(data) - 1
        match = _RANGE.match(self.headers.get("Range", ""))
        if match and (match.group(1) or match.group(2)):
            if match.group(1):
                start = int(match.group(1))
                end = min(int(match.group(2)), end) if match.group(2) else end
            else:  # the last N bytes
                start = max(0, len(data) - int(match.group(2)))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        else:
            self.send_response(200)
        chunk = data[start:end + 1]
        self.send_header("Content-Length", str(len(chunk)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if body:
            self.wfile.write(chunk)
            with self.state.lock:
                self.state.bytes_served += len(chunk)


@contextlib.contextmanager
def serve(root: Path) -> Iterator[tuple[str, ServerState]]:
    """Serve ``root`` on 127.0.0.1 (an ephemeral port) in a thread; yields the base URL and the state."""
    state = ServerState(Path(root))
    handler = type("Handler", (_Handler,), {"state": state})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


HALF_METRE = "EPSG:32618", (0.5, 0.0, 500000.0, 0.0, -0.5, 4000000.0)
"""A UTM grid at 0.5 m, the published weights' GSD: predict runs such scenes at their own pixels."""


def write_cog(path: Path, data, *, nodata: float | None = None, **options) -> Path:
    """``(C, H, W)`` data as a Cloud Optimized GeoTIFF (512-pixel tiles, deflate, overviews) on a 0.5 m grid."""
    import rasterio
    from affine import Affine

    crs, transform = HALF_METRE
    with rasterio.open(path, "w", driver="COG", count=data.shape[0], height=data.shape[1], width=data.shape[2],
                       dtype=data.dtype.name, crs=crs, transform=Affine(*transform), nodata=nodata,
                       compress="deflate", blocksize=512, **options) as dataset:
        dataset.write(data)
    return path


def fast_retries(monkeypatch, retries: int) -> None:
    """GDAL's HTTP retries set to ``retries`` with 10 ms waits, so the failure tests stay fast."""
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", str(retries))
    monkeypatch.setenv("GDAL_HTTP_RETRY_DELAY", "0.01")
