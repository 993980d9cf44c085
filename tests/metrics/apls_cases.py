"""The APLS parity cases: SpaceNet truth and proposals derived from it, made the same way by the reference
script (benchmarks/apls_reference.py, in its own venv) and by the parity test.

Pure Python with numpy and shapely only (no roadseg import), so that the venv of CosmiQ's 2019 ``apls``
package can run it too. Every derivation is deterministic: geometry in a local metric frame around the
truth, and "random" offsets from a fixed linear congruential generator instead of a numpy stream.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import shapely
import shapely.ops
from shapely.geometry import LineString

DATA = Path(__file__).resolve().parent / "data" / "spacenet"
CHIPS = ("AOI_2_Vegas_img990", "AOI_2_Vegas_img995", "AOI_2_Vegas_img997", "AOI_2_Vegas_img999")
ALBU_CHIP = "AOI_2_Vegas_img0"
ALBU_GEOTRANSFORM = (-115.1706276, 2.7000000000043656e-06, 36.2406177, -2.7000000769233496e-06)
"""Origin and pixel size (lon0, dlon, lat0, dlat) of RGB-PanSharpen_AOI_2_Vegas_img0.tif (read once with
rasterio; the 2.9 MB image is not kept): pixel (col, row) is at (lon0 + col * dlon, lat0 + row * dlat), the
reference's own ``apls_utils.pixelToGeoCoord`` rule."""
_CRS84 = {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}


def _collection(lines: list[list[tuple[float, float]]]) -> dict:
    return {"type": "FeatureCollection", "crs": _CRS84, "features": [
        {"type": "Feature", "properties": {},
         "geometry": {"type": "LineString", "coordinates": [list(p) for p in line]}} for line in lines]}


def read_lines(data: dict) -> list[list[tuple[float, float]]]:
    """The LineStrings of a FeatureCollection as lists of (lon, lat) (MultiLineStrings split)."""
    lines = []
    for feature in data["features"]:
        geometry = feature.get("geometry") or {}
        parts = {"LineString": [geometry.get("coordinates")],
                 "MultiLineString": geometry.get("coordinates")}.get(geometry.get("type"), [])
        lines.extend([[(float(p[0]), float(p[1])) for p in part] for part in parts if part and len(part) > 1])
    return lines


class _Frame:
    """A local equirectangular frame in metres about a point: good to a few mm over a 400 m chip, and its
    own exact inverse, which is all the derivations need."""

    def __init__(self, lines: list[list[tuple[float, float]]]) -> None:
        lons = [p[0] for line in lines for p in line]
        lats = [p[1] for line in lines for p in line]
        self.lon0, self.lat0 = (min(lons) + max(lons)) / 2, (min(lats) + max(lats)) / 2
        self.kx = 111320.0 * math.cos(math.radians(self.lat0))
        self.ky = 110574.0

    def to_m(self, line):
        return [((lon - self.lon0) * self.kx, (lat - self.lat0) * self.ky) for lon, lat in line]

    def to_deg(self, line):
        return [(self.lon0 + x / self.kx, self.lat0 + y / self.ky) for x, y in line]


def _lcg(seed: int) -> Iterator[float]:
    """Numbers in [0, 1) from a fixed linear congruential generator: the same on every platform and numpy."""
    state = seed
    while True:
        state = (1103515245 * state + 12345) % 2**31
        yield state / 2**31


def shifted(lines, frame, dx: float = 2.5, dy: float = 1.5):
    """Every line moved ``dx`` m east and ``dy`` m north (2.9 m, inside the 4 m snap)."""
    return [[(x + dx, y + dy) for x, y in line] for line in lines]


def _shared_vertices(lines) -> set[tuple[float, float]]:
    count: dict[tuple[float, float], int] = {}
    for line in lines:
        for i, p in enumerate(line):
            count[p] = count.get(p, 0) + (1 if i in (0, len(line) - 1) else 2)
    return {p for p, n in count.items() if n > 2}


def thinned(lines, frame, tolerance: float = 3.0):
    """Douglas-Peucker with a 3 m tolerance, keeping the vertices lines share (junctions stay junctions)."""
    shared = _shared_vertices(lines)
    out = []
    for line in lines:
        cuts = [0] + [i for i, p in enumerate(line[1:-1], 1) if p in shared] + [len(line) - 1]
        kept: list[tuple[float, float]] = [line[0]]
        for a, b in zip(cuts[:-1], cuts[1:]):
            piece = shapely.simplify(LineString(line[a:b + 1]), tolerance, preserve_topology=False)
            kept.extend([tuple(p) for p in piece.coords][1:])
        out.append(kept)
    return out


def gapped(lines, frame, gap: float = 12.0, longer_than: float = 60.0):
    """A ``gap`` m hole in the middle of every line longer than ``longer_than`` m."""
    out = []
    for line in lines:
        geom = LineString(line)
        if geom.length <= longer_than:
            out.append(line)
            continue
        half = geom.length / 2
        for a, b in ((0.0, half - gap / 2), (half + gap / 2, geom.length)):
            out.append([tuple(p) for p in shapely.ops.substring(geom, a, b).coords])
    return out


def crossing(lines, frame, every: int = 2, length: float = 60.0):
    """The truth plus a ``length`` m line across the middle of every ``every``-th line, at right angles
    and sharing no vertex with it (an overpass, or a line file drawn without junction vertices)."""
    extra = []
    for line in lines[::every]:
        geom = LineString(line)
        if geom.length < 20:
            continue
        mid = geom.interpolate(0.5, normalized=True)
        ahead = geom.interpolate(min(geom.length, geom.project(mid) + 1.0))
        behind = geom.interpolate(max(0.0, geom.project(mid) - 1.0))
        dx, dy = ahead.x - behind.x, ahead.y - behind.y
        norm = math.hypot(dx, dy) or 1.0
        nx_, ny_ = -dy / norm * length / 2, dx / norm * length / 2
        extra.append([(mid.x - nx_, mid.y - ny_), (mid.x + nx_, mid.y + ny_)])
    return [list(line) for line in lines] + extra


def jittered(lines, frame, amplitude: float = 1.5, step: float = 10.0):
    """Lines densified to a vertex every ``step`` m, each vertex moved up to ``amplitude`` m; a vertex lines
    share moves the same way for all of them, so junctions stay junctions."""
    numbers = _lcg(12345)
    moves: dict[tuple[float, float], tuple[float, float]] = {}
    out = []
    for line in lines:
        geom = shapely.segmentize(LineString(line), step)
        moved = []
        for p in geom.coords:
            key = (round(p[0], 6), round(p[1], 6))
            if key not in moves:
                moves[key] = ((2 * next(numbers) - 1) * amplitude, (2 * next(numbers) - 1) * amplitude)
            moved.append((p[0] + moves[key][0], p[1] + moves[key][1]))
        out.append(moved)
    return out


def doubled(lines, frame, every: int = 3):
    """The truth with every ``every``-th line drawn a second time, the other way round (the reference
    without its duplicate-edge fix drops both copies)."""
    return [list(line) for line in lines] + [list(line)[::-1] for line in lines[::every]]


DERIVATIONS: dict[str, tuple[Callable, str]] = {
    "shifted": (shifted, "every truth line moved 2.5 m east and 1.5 m north"),
    "thinned": (thinned, "Douglas-Peucker, 3 m tolerance, shared vertices kept"),
    "gapped": (gapped, "a 12 m gap in the middle of every truth line longer than 60 m"),
    "crossing": (crossing, "truth plus a 60 m line across the middle of every 2nd truth line, no shared vertex"),
    "jittered": (jittered, "densified to 10 m, every vertex moved up to 1.5 m (fixed LCG), junctions kept"),
    "doubled": (doubled, "truth plus every 3rd truth line drawn again, reversed"),
}


def truth_path(chip: str) -> Path:
    return DATA / "spacenetroads" / f"{chip}.geojson"


def derived(chip: str, how: str) -> dict:
    """The proposal ``how`` (a key of DERIVATIONS) derived from ``chip``'s SpaceNet truth, in CRS84."""
    lines = read_lines(json.loads(truth_path(chip).read_text()))
    frame = _Frame(lines)
    made = DERIVATIONS[how][0]([frame.to_m(line) for line in lines], frame)
    return _collection([frame.to_deg(line) for line in made])


def albu_proposal() -> dict:
    """The albu model's WKT-pixel lines for img0 (SpaceNet 3 sample submission) placed in CRS84."""
    lon0, dlon, lat0, dlat = ALBU_GEOTRANSFORM
    lines = []
    with open(DATA / "sn3_sample_submission_albu.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["ImageId"] != ALBU_CHIP or "EMPTY" in row["WKT_Pix"]:
                continue
            geom = shapely.from_wkt(row["WKT_Pix"])
            lines.append([(lon0 + x * dlon, lat0 + y * dlat) for x, y in geom.coords])
    return _collection(lines)


def cases() -> dict[str, tuple[Callable[[], dict], Path, str]]:
    """Every parity case: name -> (make the proposal dict, truth file, how the proposal was made)."""
    table: dict[str, tuple[Callable[[], dict], Path, str]] = {}
    for chip in CHIPS:
        short = chip.rsplit("_", 1)[-1]
        for how, (_, text) in DERIVATIONS.items():
            table[f"{short}-{how}"] = (lambda c=chip, h=how: derived(c, h), truth_path(chip), text)
        osm = DATA / "osm" / f"{chip}.geojson"
        table[f"{short}-osm"] = (lambda p=osm: json.loads(p.read_text()), truth_path(chip),
                                 "OpenStreetMap lines of the same chip (CosmiQ sample data)")
    table["img0-albu"] = (albu_proposal, DATA / "ground_truth_randomized" / f"{ALBU_CHIP}.geojson",
                          "albu's SpaceNet 3 sample submission (WKT pixels placed with the chip's geotransform)")
    return table
