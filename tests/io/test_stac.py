"""STAC items as inputs: the visual asset, red/green/blue band assets stacked in a VRT, ``asset`` to choose,
relative hrefs resolved against a local file or a URL, and the item's proj: georeferencing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import rasterio

from roadseg.errors import BadInputError
from roadseg.inference.predict import predict_file
from roadseg.io.inputs import as_input
from roadseg.io.stac import StacItem, looks_like_item
from tests.helpers_predict import write_raster
from tests.helpers_remote import HALF_METRE, serve, write_cog
from tests.io.test_remote import FAST, pointwise


def item(assets: dict, **properties) -> dict:
    return {"type": "Feature", "stac_version": "1.0.0", "id": "scene", "geometry": None,
            "properties": {"datetime": "2024-01-01T00:00:00Z", **properties}, "assets": assets}


def band(href: str, common_name: str) -> dict:
    return {"href": href, "type": "image/tiff; application=geotiff", "eo:bands": [{"common_name": common_name}]}


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> Path:
    """scene.tif (RGB), its bands as B04/B03/B02 (+ a B08), and items naming them by relative hrefs."""
    root = tmp_path_factory.mktemp("stac")
    data = np.random.default_rng(3).integers(1, 256, (3, 600, 700), dtype=np.uint8)
    write_cog(root / "scene.tif", data)
    (root / "bands").mkdir()
    for index, name in enumerate(("B04", "B03", "B02", "B08")):
        write_cog(root / "bands" / f"{name}.tif", data[[index % 3]])
    (root / "visual.json").write_text(json.dumps(item({"visual": {"href": "./scene.tif"},
                                                       "thumbnail": {"href": "thumb.png"}})))
    (root / "bands.json").write_text(json.dumps(item({
        "B02": band("bands/B02.tif", "blue"), "B03": band("bands/B03.tif", "green"),
        "B04": band("bands/B04.tif", "red"), "B08": band("bands/B08.tif", "nir")})))
    return root


def mask_of(path: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as dataset:
        return dataset.read(1), {"crs": dataset.crs, "transform": dataset.transform}


@pytest.fixture
def reference(catalog, tmp_path) -> tuple[np.ndarray, dict]:
    return mask_of(predict_file(pointwise, catalog / "scene.tif", tmp_path / "ref", FAST).outputs[0])


class TestLocalItems:
    def test_the_visual_asset_is_read(self, catalog, tmp_path, reference):
        result = predict_file(pointwise, str(catalog / "visual.json"), tmp_path, FAST)
        assert result.outputs == [tmp_path / "visual_mask.tif"]
        mask, grid = mask_of(result.outputs[0])
        np.testing.assert_array_equal(mask, reference[0])
        assert grid == reference[1]

    def test_red_green_blue_assets_are_stacked(self, catalog, tmp_path, reference):
        result = predict_file(pointwise, catalog / "bands.json", tmp_path, FAST)
        mask, grid = mask_of(result.outputs[0])
        np.testing.assert_array_equal(mask, reference[0])
        assert grid == reference[1]

    def test_asset_chooses_another(self, catalog, tmp_path, reference):
        result = predict_file(pointwise, StacItem(str(catalog / "bands.json"), "B08"), tmp_path, FAST)
        mask, _ = mask_of(result.outputs[0])
        assert mask.shape == reference[0].shape and not np.array_equal(mask, reference[0])

    def test_a_missing_asset_names_those_there(self, catalog, tmp_path):
        with pytest.raises(BadInputError, match=r"visual\.json: has no asset 'B08' \(it has thumbnail, visual\); "
                                                 r"choose one with `asset`"):
            predict_file(pointwise, StacItem(str(catalog / "visual.json"), "B08"), tmp_path, FAST)

    def test_an_item_without_rgb_is_refused(self, catalog, tmp_path):
        path = tmp_path / "nir.json"
        path.write_text(json.dumps(item({"B08": band(str(catalog / "bands" / "B08.tif"), "nir")})))
        with pytest.raises(BadInputError, match="neither a 'visual' asset nor red, green and blue"):
            predict_file(pointwise, path, tmp_path, FAST)

    @pytest.mark.parametrize("text", ["[1, 2]", '{"type": "FeatureCollection"}', "not json"])
    def test_not_an_item(self, tmp_path, text):
        path = tmp_path / "x.json"
        path.write_text(text)
        with pytest.raises(BadInputError, match=r"x\.json: not"):
            predict_file(pointwise, path, tmp_path, FAST)

    def test_the_items_georeferencing_where_the_asset_has_none(self, tmp_path):
        data = np.random.default_rng(4).integers(1, 256, (3, 64, 80), dtype=np.uint8)
        write_raster(tmp_path / "plain.tif", data, crs=None, transform=None)
        crs, transform = HALF_METRE
        path = tmp_path / "item.json"
        path.write_text(json.dumps(item({"visual": {"href": "plain.tif"}}, **{
            "proj:epsg": int(crs.split(":")[1]), "proj:transform": list(transform)})))
        result = predict_file(pointwise, path, tmp_path / "out", FAST)
        _, grid = mask_of(result.outputs[0])
        assert grid["crs"] == rasterio.crs.CRS.from_user_input(crs) and tuple(grid["transform"])[:6] == transform


class TestRemoteItems:
    def test_an_item_url_with_relative_hrefs(self, catalog, tmp_path, reference):
        with serve(catalog) as (url, state):
            result = predict_file(pointwise, f"{url}/bands.json?token=SECRET", tmp_path, FAST)
            assert any(request.startswith("GET /bands/B02.tif") for request in state.requests)
        assert result.outputs == [tmp_path / "bands_mask.tif"] and str(result.input) == f"{url}/bands.json"
        np.testing.assert_array_equal(mask_of(result.outputs[0])[0], reference[0])

    def test_an_unreachable_item_is_one_line(self, catalog, tmp_path, monkeypatch):
        monkeypatch.setenv("GDAL_HTTP_RETRY_DELAY", "0.01")
        with serve(catalog) as (url, state):
            state.fail_first = 1000
            with pytest.raises(BadInputError, match=rf"^{url}/visual\.json: cannot read the STAC item after 4 tries "
                                                     r"\(HTTP 503\)"):
                predict_file(pointwise, f"{url}/visual.json?token=SECRET", tmp_path, FAST)

    @pytest.mark.parametrize(("text", "is_item"), [
        ("https://earth-search.aws.element84.com/v1/collections/sentinel-2-l2a/items/S2B_13SDV_20240101_0_L2A", True),
        ("https://example.com/catalog/item.json?sig=1", True), ("https://example.com/scene.tif", False),
        ("items.tif", False), ("local/item.JSON", True)])
    def test_which_inputs_are_items(self, text, is_item):
        assert looks_like_item(text) is is_item
        assert isinstance(as_input(text), StacItem) is is_item or not text.startswith("https")


class TestDocs:
    """The STAC walkthrough and the README's "Your imagery" section stay true to the CLI and the library."""

    ROOT = Path(__file__).resolve().parents[2]

    def _imagery_section(self) -> str:
        readme = (self.ROOT / "README.md").read_text()
        return readme[readme.index("## Your imagery"):readme.index("\n## ", readme.index("## Your imagery") + 1)]

    @pytest.mark.parametrize("where", ["walkthrough", "readme"])
    def test_every_command_and_option_exists(self, where):
        from tests.test_examples import _check_invocation, _code_blocks, _roadseg_invocations

        text = ((self.ROOT / "examples" / "stac_walkthrough.md").read_text() if where == "walkthrough"
                else self._imagery_section())
        text = re.sub(r"^( *)[A-Z_]+=\S+ +(?=roadseg )", r"\1", text.replace("\n  ```", "\n```"), flags=re.M)
        blocks = [block.replace("\n  ", "\n") for block in _code_blocks(text)]
        invocations = [args for block in blocks if "import " not in block for args in _roadseg_invocations(block)]
        assert len(invocations) >= 6
        for args in invocations:
            _check_invocation(args)

    def test_the_example_item_reads_its_visual_asset(self):
        from roadseg.io.stac import choose_assets

        text = (self.ROOT / "examples" / "stac_walkthrough.md").read_text()
        example = json.loads(text.split("```json\n", 1)[1].split("```", 1)[0])
        assert choose_assets(example, None, StacItem("docs/scene.json")) == ["docs/scene_visual.tif"]

    def test_the_python_example_compiles(self):
        text = (self.ROOT / "examples" / "stac_walkthrough.md").read_text()
        compile(text.split("```python\n", 1)[1].split("```", 1)[0], "stac_walkthrough.md", "exec")
