"""STAC items as inputs: a local item JSON or an item URL, read as the RGB image of its assets.

The item is parsed with :mod:`json` (an item is one small JSON document; pystac would add a dependency
for a dozen lines). Its ``visual`` asset is used, else the assets for red, green and blue (keys
``red``/``green``/``blue``, or assets whose ``eo:bands`` common names say so), else the asset chosen
with ``asset``. Asset hrefs relative to the item are resolved against the item's location. Separate
band assets become one three-band GDAL VRT (an XML string, nothing written), so GDAL still reads each
asset window by window with range requests; the VRT takes the first asset's grid, or the item's
``proj:`` georeferencing where the assets carry none.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TypeVar
from urllib.parse import unquote, urljoin, urlsplit
from xml.etree import ElementTree

from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import RasterioError

from roadseg.errors import BadInputError
from roadseg.io.remote import RemoteRaster, is_url, redact, redact_text, with_retries

T = TypeVar("T")

VISUAL = "visual"
RGB_NAMES = ("red", "green", "blue")
ITEM_TIMEOUT_S = 30
_GDAL_TYPES = {"uint8": "Byte", "int8": "Int8", "uint16": "UInt16", "int16": "Int16", "uint32": "UInt32",
               "int32": "Int32", "float32": "Float32", "float64": "Float64"}


def looks_like_item(text: str) -> bool:
    """Whether an input names a STAC item: a ``.json`` file or URL, or a STAC API ``.../items/<id>`` URL."""
    path = urlsplit(text).path if is_url(text) else str(text)
    if path.lower().endswith(".json"):
        return True
    parts = path.rstrip("/").split("/")
    return is_url(text) and len(parts) >= 2 and parts[-2] == "items" and "." not in parts[-1]


@dataclass(frozen=True)
class StacItem:
    """A STAC item named by a local path or a URL, and the asset to read (None: ``visual`` or R,G,B).

    Named like a file: ``stem`` is the item file's stem (``S2A_..._L2A.json`` -> ``S2A_..._L2A``) or the
    id at the end of an item URL, so outputs, skip-if-done and ``shard`` treat it as they treat files.
    Its outputs are GeoTIFFs on the asset's grid.
    """

    location: str
    asset: str | None = None

    def __str__(self) -> str:
        return redact(self.location) if is_url(self.location) else self.location

    @property
    def name(self) -> str:
        path = urlsplit(self.location).path if is_url(self.location) else self.location
        return unquote(path.rstrip("/").rsplit("/", 1)[-1])

    @property
    def stem(self) -> str:
        return PurePosixPath(self.name).stem if self.name.lower().endswith(".json") else self.name

    @property
    def suffix(self) -> str:
        return ".tif"

    def scrub(self, message: str) -> str:
        """GDAL's ``message`` on one line without query strings (asset hrefs may be signed)."""
        return " ".join(redact_text(message).split())

    def open_with(self, opener: Callable[[str], T]) -> T:
        """The dataset of the chosen asset(s): ``opener`` gets the asset's GDAL path, or a VRT of three."""
        item = load_item(self.location)
        hrefs = choose_assets(item, self.asset, self)
        sources: list = []
        try:
            for href in hrefs:
                sources.append(_open_asset(href, opener))
            if len(sources) == 1 and not _needs_item_grid(sources[0]):
                return sources.pop()
            vrt = rgb_vrt(sources, [_gdal_name(href) for href in hrefs], item_grid(item), str(self))
        finally:
            for source in sources:
                source.close()
        try:
            return opener(vrt)
        except RasterioError as error:  # unchained: GDAL's message may name a signed href
            raise BadInputError(f"{self}: its assets cannot be stacked ({self.scrub(str(error))})") from None


def load_item(location: str) -> dict:
    """The item JSON of a local file or an ``http(s)://`` URL; :class:`BadInputError` naming it otherwise."""
    name = redact(location) if is_url(location) else location
    if is_url(location):
        if urlsplit(location).scheme.lower() not in ("http", "https"):
            raise BadInputError(f"{name}: STAC items are read from local files or http(s) URLs; give the "
                                "item's https URL")
        text = _fetch_text(location, name)
    else:
        try:
            text = Path(location).read_text(encoding="utf-8")
        except OSError as error:
            raise BadInputError(f"{name}: cannot read the STAC item ({error.strerror})") from error
    try:
        item = json.loads(text)
    except ValueError as error:
        raise BadInputError(f"{name}: not JSON ({error})") from error
    if not isinstance(item, dict) or item.get("type") != "Feature" or not isinstance(item.get("assets"), dict):
        raise BadInputError(f"{name}: not a STAC item (a GeoJSON Feature with assets)")
    return item


def _fetch_text(url: str, name: str, *, sleep=time.sleep) -> str:
    """GET ``url``, retrying timeouts, dropped connections and 429/5xx answers with backoff as GDAL does."""
    def attempt(_number: int) -> str:
        with urllib.request.urlopen(url, timeout=ITEM_TIMEOUT_S) as response:  # noqa: S310 (http(s) only)
            return response.read().decode("utf-8")

    def give_up(reason: str, after: str) -> BadInputError:
        return BadInputError(f"{name}: cannot read the STAC item{after} ({reason}); check the URL and the network")

    return with_retries(attempt, _http_failure, give_up, sleep=sleep)


def _http_failure(error: Exception) -> tuple[str, bool] | None:
    """Why a GET failed, and whether trying again may help (429/5xx answers, timeouts, dropped connections)."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code}", error.code == 429 or error.code >= 500
    if isinstance(error, (urllib.error.URLError, OSError)):
        return " ".join(str(getattr(error, "reason", error)).split()), True
    return None


def _asset_href(asset: dict, key: str, item: StacItem) -> str:
    href = asset.get("href") if isinstance(asset, dict) else None
    if not isinstance(href, str) or not href:
        raise BadInputError(f"{item}: asset {key!r} has no href")
    if is_url(href) or Path(href).is_absolute():
        return href
    if is_url(item.location):
        return urljoin(item.location, href)
    return str(Path(item.location).parent / href)


def _common_name(asset: dict) -> str | None:
    """The band's common name (``red``) from ``eo:bands`` (STAC 1.0) or ``bands`` (1.1) of one-band assets."""
    for bands, key in ((asset.get("eo:bands"), "common_name"), (asset.get("bands"), "eo:common_name")):
        if isinstance(bands, list) and len(bands) == 1 and isinstance(bands[0], dict):
            return bands[0].get(key)
    return None


def choose_assets(item: dict, asset: str | None, where: StacItem) -> list[str]:
    """The href of ``asset``, else of ``visual``, else the hrefs of the red, green and blue assets."""
    assets = item["assets"]
    available = ", ".join(sorted(assets))
    if asset is not None:
        if asset not in assets:
            raise BadInputError(f"{where}: has no asset {asset!r} (it has {available}); choose one with `asset`")
        return [_asset_href(assets[asset], asset, where)]
    if VISUAL in assets:
        return [_asset_href(assets[VISUAL], VISUAL, where)]
    by_name = {name: key for key in sorted(assets) for name in [_common_name(assets[key])] if name}
    keys = [name if name in assets else by_name.get(name) for name in RGB_NAMES]
    if None in keys:
        raise BadInputError(f"{where}: has neither a 'visual' asset nor red, green and blue band assets (it has "
                            f"{available}); choose one with `asset`")
    return [_asset_href(assets[key], key, where) for key in keys]


def _gdal_name(href: str) -> str:
    return RemoteRaster(href).gdal_path() if is_url(href) else href


def _open_asset(href: str, opener: Callable[[str], T]) -> T:
    if is_url(href):
        return RemoteRaster(href).open_with(opener)
    try:
        return opener(href)
    except RasterioError as error:
        raise BadInputError(f"{href}: not a readable raster ({error})") from error


def item_grid(item: dict) -> tuple[CRS, Affine] | None:
    """The item's ``proj:`` CRS and transform (projection extension), None where it gives neither."""
    props = item.get("properties", {})
    transform = props.get("proj:transform")
    crs_text = props.get("proj:wkt2") or props.get("proj:code") or (
        f"EPSG:{props['proj:epsg']}" if props.get("proj:epsg") else None)
    if not crs_text or not isinstance(transform, list) or len(transform) < 6:
        return None
    return CRS.from_user_input(crs_text), Affine(*transform[:6])


def _needs_item_grid(dataset) -> bool:
    return dataset.crs is None and dataset.transform.is_identity


def rgb_vrt(sources: list, names: list[str], grid: tuple[CRS, Affine] | None, label: str = "") -> str:
    """A VRT (XML text) stacking the first band of each source (one source: its first three bands), with the
    sources' georeferencing, or ``grid`` where they have none."""
    first = sources[0]
    for source in sources[1:]:
        if (source.height, source.width) != (first.height, first.width):
            raise BadInputError(f"{label}: the band assets differ in size ({first.width}x{first.height}"
                                f" and {source.width}x{source.height}); choose one with `asset`")
    crs, transform = (first.crs, first.transform) if not _needs_item_grid(first) or grid is None else grid
    root = ElementTree.Element("VRTDataset", rasterXSize=str(first.width), rasterYSize=str(first.height))
    if crs is not None:
        ElementTree.SubElement(root, "SRS").text = crs.to_wkt()
    ElementTree.SubElement(root, "GeoTransform").text = ", ".join(repr(v) for v in transform.to_gdal())
    layers = ([(sources[0], names[0], band) for band in range(1, min(3, first.count) + 1)] if len(sources) == 1
              else [(source, name, 1) for source, name in zip(sources, names)])
    for index, (source, name, band) in enumerate(layers, start=1):
        dtype = _GDAL_TYPES[source.dtypes[band - 1]]
        node = ElementTree.SubElement(root, "VRTRasterBand", dataType=dtype, band=str(index))
        ElementTree.SubElement(node, "ColorInterp").text = ("Red", "Green", "Blue")[index - 1]
        if source.nodatavals[band - 1] is not None:
            ElementTree.SubElement(node, "NoDataValue").text = repr(float(source.nodatavals[band - 1]))
        simple = ElementTree.SubElement(node, "SimpleSource")
        ElementTree.SubElement(simple, "SourceFilename", relativeToVRT="0").text = name
        ElementTree.SubElement(simple, "SourceBand").text = str(band)
        block_y, block_x = source.block_shapes[band - 1]
        ElementTree.SubElement(simple, "SourceProperties", RasterXSize=str(source.width),
                               RasterYSize=str(source.height), DataType=dtype, BlockXSize=str(block_x),
                               BlockYSize=str(block_y))
    return ElementTree.tostring(root, encoding="unicode")
