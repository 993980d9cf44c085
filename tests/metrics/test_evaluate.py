"""Evaluation: pairing by id, reading PNG and GeoTIFF masks, grid checks, scores over real DeepGlobe masks."""

from __future__ import annotations

import hashlib
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning

from roadseg.errors import BadInputError
from roadseg.inference.options import PredictOptions
from roadseg.metrics.error_maps import FN_COLOUR, FP_COLOUR, TP_COLOUR
from roadseg.metrics.evaluate import (
    ScoreOptions,
    collect_masks,
    evaluate_masks,
    mask_key,
    pair_masks,
    predict_and_evaluate,
    read_mask,
)

DEEPGLOBE_IDS = ("104", "113", "343", "388")
GRID = Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 4000000.0)  # UTM, 0.5 m pixels


def write_png(path: Path, road: np.ndarray, channels: int = 3) -> Path:
    """A DeepGlobe-style mask: 0/255 in ``channels`` identical bands."""
    data = np.repeat((road.astype(np.uint8) * 255)[None], channels, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", driver="PNG", width=road.shape[1], height=road.shape[0],
                           count=channels, dtype="uint8") as dst:
            dst.write(data)
    return path


def write_tif(path: Path, values: np.ndarray, *, nodata: float | None = 255, transform=GRID,
              crs: str | None = "EPSG:32618") -> Path:
    """A mask as ``roadseg predict`` writes GeoTIFFs: 1 road, 0 background, 255 nodata (tagged)."""
    with rasterio.open(path, "w", driver="GTiff", width=values.shape[1], height=values.shape[0], count=1,
                       dtype="uint8", nodata=nodata, crs=crs, transform=transform) as dst:
        dst.write(values.astype(np.uint8)[None])
    return path


def digest(paths) -> dict[str, str]:
    return {str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}


def shifted(mask: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``mask`` moved right by ``dx`` and down by ``dy`` pixels, with zeros coming in (no wrap-around)."""
    out = np.zeros_like(mask)
    h, w = mask.shape
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        mask[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


class TestPairing:
    def test_mask_key(self):
        assert mask_key("a/104_mask.png") == "104"
        assert mask_key("scene_7_mask.tif") == "scene_7"
        assert mask_key("scene_7.tif") == "scene_7"

    def test_mismatched_pairs_reported_by_name(self):
        pairing = pair_masks([Path("p/1_mask.png"), Path("p/2_mask.png")],
                             [Path("t/1_mask.png"), Path("t/3_mask.png")])
        assert [(pair.key, pair.prediction.name, pair.truth.name) for pair in pairing.pairs] == \
            [("1", "1_mask.png", "1_mask.png")]
        messages = [problem.message for problem in pairing.problems]
        assert messages == ["p/2_mask.png: no ground-truth mask with id '2'",
                            "t/3_mask.png: no prediction with id '3'"]

    def test_geotiff_stem_matches_its_mask(self):
        pairing = pair_masks([Path("out/scene_mask.tif")], [Path("labels/scene.tif")])
        assert [pair.key for pair in pairing.pairs] == ["scene"] and not pairing.problems

    def test_ambiguous_ids(self):
        pairing = pair_masks([Path("p/1_mask.png"), Path("p/1_mask.tif")], [Path("t/1_mask.png")])
        assert not pairing.pairs
        assert any("several prediction masks share the id '1'" in p.message for p in pairing.problems)

    def test_deepglobe_directory_yields_only_masks(self, tmp_path):
        road = np.zeros((4, 4), bool)
        for key in ("1", "2"):
            write_png(tmp_path / f"{key}_mask.png", road)
            write_png(tmp_path / f"{key}_sat.png", road)  # imagery beside the masks
        (tmp_path / "notes.txt").write_text("x")
        assert [p.name for p in collect_masks([tmp_path])] == ["1_mask.png", "2_mask.png"]

    def test_missing_input(self, tmp_path):
        with pytest.raises(BadInputError, match="nowhere: no such file or directory"):
            evaluate_masks([tmp_path / "nowhere"], [tmp_path])


class TestReadMask:
    def test_png_255_is_road(self, tmp_path):
        road = np.array([[1, 0], [0, 1]], bool)
        mask = read_mask(write_png(tmp_path / "a_mask.png", road))
        assert np.array_equal(mask.road, road)
        assert mask.valid is None and not mask.grid.georeferenced

    def test_geotiff_nodata_tag_excludes_255(self, tmp_path):
        values = np.array([[1, 0], [255, 1]], np.uint8)
        mask = read_mask(write_tif(tmp_path / "a_mask.tif", values))
        assert mask.road.tolist() == [[True, False], [False, True]]
        assert mask.valid.tolist() == [[True, True], [False, True]]
        assert mask.grid.georeferenced and mask.grid.crs == "EPSG:32618"

    def test_untagged_255_is_road(self, tmp_path):
        values = np.array([[1, 0], [255, 1]], np.uint8)
        mask = read_mask(write_tif(tmp_path / "a_mask.tif", values, nodata=None))
        assert mask.road.tolist() == [[True, False], [True, True]] and mask.valid is None

    def test_probability_map_refused(self, tmp_path):
        path = tmp_path / "a_mask.tif"
        with rasterio.open(path, "w", driver="GTiff", width=2, height=2, count=1, dtype="float32",
                           crs="EPSG:32618", transform=GRID) as dst:
            dst.write(np.full((1, 2, 2), 0.3, np.float32))
        with pytest.raises(BadInputError, match="a_mask.tif: holds probabilities, not a mask"):
            read_mask(path)

    def test_unreadable(self, tmp_path):
        path = tmp_path / "bad_mask.png"
        path.write_text("not an image")
        with pytest.raises(BadInputError, match="bad_mask.png: not a readable raster"):
            read_mask(path)


class TestEvaluateMasks:
    def test_hand_computed_over_two_images(self, tmp_path):
        (tmp_path / "p").mkdir()
        (tmp_path / "t").mkdir()
        truth_a = np.array([[1, 1, 0], [0, 0, 0]], bool)
        pred_a = np.array([[1, 0, 0], [0, 0, 1]], bool)
        truth_b = np.zeros((2, 3), bool)
        pred_b = np.zeros((2, 3), bool)
        for key, pred, truth in (("a", pred_a, truth_a), ("b", pred_b, truth_b)):
            write_png(tmp_path / "p" / f"{key}_mask.png", pred, channels=1)
            write_png(tmp_path / "t" / f"{key}_mask.png", truth)
        result = evaluate_masks([tmp_path / "p"], [tmp_path / "t"], ScoreOptions(slack=0))
        assert result.ok
        assert [image.name for image in result.images] == ["a", "b"]
        # a: tn 3, fp 1, fn 1, tp 1; b: tn 6
        assert result.images[0].confusion == [[3, 1], [1, 1]]
        assert result.images[1].confusion == [[6, 0], [0, 0]]
        assert result.confusion == [[9, 1], [1, 1]]
        assert result.scores.acc == pytest.approx(10 / 12)
        assert result.scores.iou == pytest.approx(9 / 11)
        assert result.scores.road_iou == pytest.approx(1 / 3)
        assert np.isnan(result.images[1].scores.road_iou)
        assert result.to_dict()["images"][1]["scores"]["road_iou"] is None

    def test_nodata_pixels_excluded(self, tmp_path):
        truth = np.array([[1, 1, 0, 0]], bool)
        pred = np.array([[1, 255, 255, 0]], np.uint8)
        write_tif(tmp_path / "s_mask.tif", pred)
        write_tif(tmp_path / "s.tif", truth.astype(np.uint8) * 255, nodata=None)
        result = evaluate_masks([tmp_path / "s_mask.tif"], [tmp_path / "s.tif"])
        assert result.ok, result.problems
        assert result.confusion == [[1, 0], [0, 1]]

    def test_different_grids_reported_and_others_scored(self, tmp_path):
        (tmp_path / "p").mkdir()
        (tmp_path / "t").mkdir()
        values = np.zeros((4, 4), np.uint8)
        write_tif(tmp_path / "p" / "same_mask.tif", values)
        write_tif(tmp_path / "t" / "same.tif", values)
        moved = Affine(0.5, 0.0, 500001.0, 0.0, -0.5, 4000000.0)
        write_tif(tmp_path / "p" / "moved_mask.tif", values, transform=moved)
        write_tif(tmp_path / "t" / "moved.tif", values)
        write_tif(tmp_path / "p" / "crs_mask.tif", values, crs="EPSG:32617")
        write_tif(tmp_path / "t" / "crs.tif", values)
        write_tif(tmp_path / "p" / "size_mask.tif", values[:3])
        write_tif(tmp_path / "t" / "size.tif", values)
        result = evaluate_masks([tmp_path / "p"], [tmp_path / "t"])
        assert [image.name for image in result.images] == ["same"]
        problems = {problem.name: problem.message for problem in result.problems}
        assert set(problems) == {"moved", "crs", "size"}
        assert "moved_mask.tif and" in problems["moved"] and "different grids" in problems["moved"]
        assert "has CRS EPSG:32617" in problems["crs"]
        assert "is 4x3 pixels but" in problems["size"] and "size.tif is 4x4" in problems["size"]
        assert not result.ok

    def test_two_files_are_paired_whatever_their_names(self, tmp_path):
        road = np.eye(4, dtype=bool)
        write_png(tmp_path / "scene_mask.png", road)
        write_png(tmp_path / "labels_burnt.png", road)
        result = evaluate_masks([tmp_path / "scene_mask.png"], [tmp_path / "labels_burnt.png"])
        assert result.ok and [image.name for image in result.images] == ["scene"]
        assert result.scores.road_iou == 1.0

    def test_unreadable_pair_does_not_stop_the_batch(self, tmp_path):
        (tmp_path / "p").mkdir()
        (tmp_path / "t").mkdir()
        road = np.eye(3, dtype=bool)
        for key in ("a", "b"):
            write_png(tmp_path / "t" / f"{key}_mask.png", road)
        write_png(tmp_path / "p" / "a_mask.png", road)
        (tmp_path / "p" / "b_mask.png").write_text("broken")
        result = evaluate_masks([tmp_path / "p"], [tmp_path / "t"])
        assert [image.name for image in result.images] == ["a"]
        assert [problem.name for problem in result.problems] == ["b"]
        assert "b_mask.png: not a readable raster" in result.problems[0].message

    def test_error_maps_and_progress(self, tmp_path):
        (tmp_path / "p").mkdir()
        (tmp_path / "t").mkdir()
        truth = np.zeros((5, 5), bool)
        truth[2] = True
        pred = np.zeros((5, 5), bool)
        pred[2, :3] = True
        pred[0, 0] = True
        write_png(tmp_path / "p" / "x_mask.png", pred)
        write_png(tmp_path / "t" / "x_mask.png", truth)
        calls = []
        result = evaluate_masks([tmp_path / "p"], [tmp_path / "t"], ScoreOptions(error_maps=tmp_path / "maps"),
                                progress=lambda done, total, name: calls.append((done, total, name)))
        assert calls == [(1, 1, "x")]
        path = result.images[0].error_map
        assert path == tmp_path / "maps" / "x_errors.png" and path.is_file()
        again = evaluate_masks([tmp_path / "p"], [tmp_path / "t"], ScoreOptions(error_maps=tmp_path / "maps"))
        assert "x_errors.png already exists" in again.problems[0].message
        assert evaluate_masks([tmp_path / "p"], [tmp_path / "t"], ScoreOptions(error_maps=tmp_path / "maps"),
                              overwrite=True).ok


@pytest.fixture(scope="module")
def deepglobe_dirs(shared_data, tmp_path_factory):
    """The four DeepGlobe labels, and copies shifted by 1 and 2 pixels, as prediction directories."""
    train = shared_data / "deepglobe" / "train"
    masks = [train / f"{key}_mask.png" for key in DEEPGLOBE_IDS]
    if not all(path.is_file() for path in masks):
        pytest.skip(f"DeepGlobe sample masks not found in {train}")
    root = tmp_path_factory.mktemp("deepglobe")
    dirs = {"truth": train}
    for dx, dy in ((1, 0), (2, 1)):
        out = root / f"shift_{dx}_{dy}"
        out.mkdir()
        for path in masks:
            write_png(out / path.name, shifted(read_mask(path).road, dx, dy))
        dirs[(dx, dy)] = out
    return dirs


class TestDeepGlobe:
    def test_against_copies_of_themselves(self, deepglobe_dirs, tmp_path):
        train = deepglobe_dirs["truth"]
        for key in DEEPGLOBE_IDS:
            shutil.copy(train / f"{key}_mask.png", tmp_path / f"{key}_mask.png")
        before = digest(train.iterdir())
        result = evaluate_masks([tmp_path], [train])
        assert result.ok
        assert [image.name for image in result.images] == list(DEEPGLOBE_IDS)
        for scores in [result.scores, *(image.scores for image in result.images)]:
            assert scores.acc == scores.acc_cls == scores.iou == scores.road_iou == 1.0
            assert scores.precision == scores.recall == scores.f1 == 1.0
            assert scores.relaxed_precision == scores.relaxed_recall == 1.0
        # roads cover 0.7-1.9 % of the pixels (data README)
        for image in result.images:
            (_, _), (_, tp) = image.confusion
            assert 0.005 < tp / 1024**2 < 0.02
        assert digest(train.iterdir()) == before

    @pytest.mark.parametrize("shift", [(1, 0), (2, 1)])
    def test_against_a_shifted_copy(self, deepglobe_dirs, shift):
        result = evaluate_masks([deepglobe_dirs[shift]], [deepglobe_dirs["truth"]], ScoreOptions(slack=3))
        assert result.ok
        assert result.scores.road_iou < 0.95
        assert result.scores.relaxed_precision > 0.99
        assert result.scores.relaxed_recall > 0.99
        # the background dominates: the zoo's iou and acc barely move
        assert result.scores.iou > 0.99 and result.scores.acc > 0.99
        strict = evaluate_masks([deepglobe_dirs[shift]], [deepglobe_dirs["truth"]], ScoreOptions(slack=0))
        assert strict.scores.relaxed_precision == pytest.approx(strict.scores.precision)

    def test_two_pixel_shift_is_worse_than_one(self, deepglobe_dirs):
        one = evaluate_masks([deepglobe_dirs[(1, 0)]], [deepglobe_dirs["truth"]]).scores.road_iou
        two = evaluate_masks([deepglobe_dirs[(2, 1)]], [deepglobe_dirs["truth"]]).scores.road_iou
        assert two < one < 1

    def test_error_maps_over_the_imagery(self, deepglobe_dirs, tmp_path):
        result = evaluate_masks([deepglobe_dirs[(2, 1)]], [deepglobe_dirs["truth"]], ScoreOptions(error_maps=tmp_path))
        assert sorted(p.name for p in tmp_path.iterdir()) == [f"{key}_errors.png" for key in DEEPGLOBE_IDS]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(result.images[0].error_map) as dataset:
                picture = np.transpose(dataset.read(), (1, 2, 0))
        colours = {tuple(c) for c in picture.reshape(-1, 3)[::97]}
        assert len(colours) > 50  # the satellite image shows through, not a flat background
        painted = {tuple(c) for c in np.unique(picture.reshape(-1, 3), axis=0)}
        assert {TP_COLOUR, FP_COLOUR, FN_COLOUR} <= painted  # a 2 px shift leaves all three

    def test_copied_layout_with_imagery_beside(self, deepglobe_dirs, tmp_path):
        train = deepglobe_dirs["truth"]
        for side in ("pred", "truth"):
            (tmp_path / side).mkdir()
            for path in train.iterdir():
                if path.name.startswith("104_"):
                    shutil.copy(path, tmp_path / side / path.name)
        result = evaluate_masks([tmp_path / "pred"], [tmp_path / "truth"])
        assert [image.name for image in result.images] == ["104"] and result.ok

    @pytest.mark.parametrize("form", ["folder", "file", "link"])
    def test_the_truth_is_never_its_own_prediction(self, deepglobe_dirs, tmp_path, form):
        """Issue 14: DATA_DIR given as both sides scored every label against itself, 1.0000 everywhere."""
        train = deepglobe_dirs["truth"]
        truth = train / "104_mask.png"
        if form == "link":
            (tmp_path / "104_mask.png").symlink_to(truth)
        sides = {"folder": ([train], [train]), "file": ([truth], [truth]),
                 "link": ([tmp_path], [train])}[form]
        with pytest.raises(BadInputError, match=r"104_mask.png: is both the prediction and the ground truth"):
            evaluate_masks(*sides)


class TestPredictAndEvaluate:
    @staticmethod
    def bright_is_road(batch):
        return (batch[:, 0] > 0).astype(np.float32)

    def test_failed_image_reported_others_scored(self, tmp_path):
        data, out = tmp_path / "data", tmp_path / "out"
        data.mkdir()
        road = np.zeros((32, 32), bool)
        road[:, 8:11] = True
        write_png(data / "a_sat.png", road)  # 0/255 grey: bright pixels are the road
        write_png(data / "a_mask.png", road)
        (data / "b_sat.png").write_text("not an image")
        write_png(data / "b_mask.png", road)
        before = digest(data.iterdir())
        result = predict_and_evaluate(self.bright_is_road, data, out, PredictOptions(window=32, tta="none"))
        assert [image.name for image in result.images] == ["a"]
        assert result.images[0].scores.road_iou == 1.0
        names = [problem.name for problem in result.problems]
        assert names[0] == "b" and "b_sat.png" in result.problems[0].message
        assert "b_mask.png: no prediction with id 'b'" in result.problems[-1].message
        assert sorted(p.name for p in out.iterdir()) == ["a_mask.png"]
        assert digest(data.iterdir()) == before

    def test_no_images(self, tmp_path):
        with pytest.raises(BadInputError, match="no <id>_sat.. images found; give a DeepGlobe-layout"):
            predict_and_evaluate(self.bright_is_road, tmp_path, tmp_path / "out")

    def test_georeferenced_prediction_with_nodata(self, shared_data, tmp_path):
        """predict's GeoTIFF (1 road, 0 background, 255 nodata outside the scene) scored on its own grid."""
        from roadseg.inference.predict import predict_file

        scene = shared_data / "landsat-rgb" / "RGB.byte.tif"
        if not scene.is_file():
            pytest.skip(f"{scene} not found")
        out = tmp_path / "out"
        predict_file(self.bright_is_road, scene, out, PredictOptions(window=256, tta="none"))
        predicted = out / "RGB.byte_mask.tif"
        with rasterio.open(predicted) as dataset:
            values, profile = dataset.read(1), dataset.profile
        assert profile["nodata"] == 255 and (values == 255).any() and (values == 1).any()
        truth_path = tmp_path / "truth" / "RGB.byte.tif"
        truth_path.parent.mkdir()
        write_tif(truth_path, np.where(values == 1, 255, 0), nodata=None, transform=profile["transform"],
                  crs=profile["crs"].to_string())
        result = evaluate_masks([out], [truth_path.parent])
        assert result.ok, result.problems
        assert result.scores.road_iou == 1.0 and result.scores.acc == 1.0
        assert sum(map(sum, result.confusion)) == int(np.count_nonzero(values != 255))


class TestPredictPlan:
    """Issue 14/15: the ground truth is checked before anything is predicted, and never taken for a prediction."""

    @staticmethod
    def layout(folder: Path, keys=("a", "b"), truth=("a",)) -> Path:
        folder.mkdir()
        road = np.zeros((32, 32), bool)
        road[:, 8:11] = True
        for key in keys:
            write_png(folder / f"{key}_sat.png", road)
        for key in truth:
            write_png(folder / f"{key}_mask.png", road)
        return folder

    def test_images_without_truth_are_named_and_not_predicted(self, tmp_path):
        data = self.layout(tmp_path / "data")
        seen = []

        def network(batch):
            seen.append(batch.shape[0])
            return (batch[:, 0] > 0).astype(np.float32)

        result = predict_and_evaluate(network, data, tmp_path / "out", PredictOptions(window=32, tta="none"))
        assert [image.name for image in result.images] == ["a"] and result.images[0].scores.road_iou == 1.0
        assert [problem.message for problem in result.problems] == [
            f"{data / 'b_sat.png'}: no ground-truth mask with id 'b' beside it; not predicted"]
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_mask.png"] and len(seen) == 1

    def test_no_truth_at_all_is_refused(self, tmp_path):
        data = self.layout(tmp_path / "data", truth=())
        with pytest.raises(BadInputError, match=r"data: none of its 2 <id>_sat.\* image\(s\) has an <id>_mask"):
            predict_and_evaluate(TestPredictAndEvaluate.bright_is_road, data, tmp_path / "out")
        assert not (tmp_path / "out").exists()

    @pytest.mark.parametrize("how", ["same", "link", "relative"])
    def test_predicting_into_the_truth_is_refused(self, tmp_path, how, monkeypatch):
        data = self.layout(tmp_path / "data")
        before = digest(data.iterdir())
        monkeypatch.chdir(tmp_path)
        predictions = {"same": data, "link": tmp_path / "link", "relative": Path("data")}[how]
        if how == "link":
            predictions.symlink_to(data)
        with pytest.raises(BadInputError, match=r"the prediction of a_sat.png would be .*a_mask.png, its own "
                                                r"ground truth; give `predictions` a folder of its own"):
            predict_and_evaluate(TestPredictAndEvaluate.bright_is_road, data, predictions, overwrite=True)
        assert digest(data.iterdir()) == before


class TestGraphScoring:
    """APLS settings reach the graphs: shared-vertex junctions by default, crossings joined on request."""

    @staticmethod
    def roads(path: Path, lines) -> Path:
        import json

        path.write_text(json.dumps({"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {}, "geometry": {"type": "LineString", "coordinates": line}}
            for line in lines]}))
        return path

    def test_node_crossings(self, tmp_path):
        from roadseg.metrics.evaluate import GraphScoring, evaluate_graphs

        plus = [[[-115.232, 36.14], [-115.2305, 36.14], [-115.228, 36.14]],
                [[-115.2305, 36.138], [-115.2305, 36.14], [-115.2305, 36.142]]]
        truth = self.roads(tmp_path / "truth.geojson", plus)
        overpass = self.roads(tmp_path / "overpass.geojson", [[line[0], line[-1]] for line in plus])
        assert GraphScoring().node_crossings is False
        shared = evaluate_graphs(overpass, truth)
        joined = evaluate_graphs(overpass, truth, GraphScoring(node_crossings=True))
        assert (shared.node_crossings, joined.node_crossings) == (False, True)
        assert shared.apls.apls < 0.9
        assert joined.apls.apls == pytest.approx(1)
        assert joined.to_dict()["node_crossings"] is True

    def test_topo_of_the_same_graphs_and_its_preset(self, tmp_path):
        from roadseg.errors import BadParameterError
        from roadseg.metrics.apls import graph_from_geojson, local_metric_crs
        from roadseg.metrics.evaluate import GraphScoring, evaluate_graphs
        from roadseg.metrics.topo import TOPO_PRESETS, topo_score

        plus = [[[-115.232, 36.14], [-115.2305, 36.14], [-115.228, 36.14]],
                [[-115.2305, 36.138], [-115.2305, 36.14], [-115.2305, 36.142]]]
        truth = self.roads(tmp_path / "truth.geojson", plus)
        bent = self.roads(tmp_path / "bent.geojson", [plus[0], [[-115.2305, 36.14], [-115.2295, 36.142]]])
        result = evaluate_graphs(bent, truth, GraphScoring(topo="city-scale"))
        crs = local_metric_crs(truth, bent)
        alone = topo_score(graph_from_geojson(bent, crs=crs), graph_from_geojson(truth, crs=crs),
                           TOPO_PRESETS["city-scale"])
        assert result.topo == alone and result.topo_preset == "city-scale"  # the same graphs APLS scored
        assert 0 < result.topo.recall < 1 and result.to_dict()["topo"]["f1"] == alone.f1
        with pytest.raises(BadParameterError, match="spacenet, city-scale"):
            GraphScoring(topo="paper")
