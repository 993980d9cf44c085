"""``roadseg eval`` through the command group: table, --json, --csv, --error-maps, APLS, errors."""

from __future__ import annotations

import csv
import json
import warnings

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.errors import NotGeoreferencedWarning

from roadseg.cli.main import COMMANDS, cli


def write_png(path, road):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", driver="PNG", width=road.shape[1], height=road.shape[0], count=1,
                           dtype="uint8") as dst:
            dst.write(road.astype(np.uint8)[None] * 255)


@pytest.fixture()
def masks(tmp_path):
    """pred/ and truth/ with ids a (imperfect), b (perfect) and a truth-only id c."""
    pred_dir, truth_dir = tmp_path / "pred", tmp_path / "truth"
    pred_dir.mkdir()
    truth_dir.mkdir()
    truth = np.zeros((8, 8), bool)
    truth[3] = True
    pred = np.zeros((8, 8), bool)
    pred[4] = True  # one row off
    write_png(pred_dir / "a_mask.png", pred)
    write_png(truth_dir / "a_mask.png", truth)
    write_png(pred_dir / "b_mask.png", truth)
    write_png(truth_dir / "b_mask.png", truth)
    return pred_dir, truth_dir


def run(*args):
    return CliRunner().invoke(cli, ["eval", *map(str, args)])


def test_registered():
    assert COMMANDS["eval"] == "roadseg.cli.eval:eval_command"
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exception is None and "eval" in result.output


def test_table(masks):
    result = run(*masks)
    assert result.exception is None, result.output
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split()[:5] == ["image", "acc", "acc_cls", "iou(bg)", "road_iou"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:4]}
    assert set(rows) == {"a", "b", "ALL"}
    assert rows["b"][3] == "1.0000"  # road IoU of the perfect image
    assert rows["a"][3] == "0.0000"
    assert rows["a"][8] == "1.0000"  # relaxed precision at the default slack 3
    assert "slack 3 px" in result.output


def test_json(masks):
    result = run(*masks, "--json", "--slack", "0")
    assert result.exception is None, result.output
    data = json.loads(result.output)
    assert data["slack"] == 0
    assert data["confusion"] == [[48 + 56, 8], [8, 8]]  # a: tn 48, fp 8, fn 8; b: tn 56, tp 8
    assert data["scores"]["road_iou"] == pytest.approx(8 / 24)
    assert data["scores"]["relaxed_precision"] == pytest.approx(0.5)
    assert [image["name"] for image in data["images"]] == ["a", "b"]
    assert data["images"][0]["scores"]["f1"] == 0.0
    assert data["problems"] == []


def test_csv_and_error_maps(masks, tmp_path):
    table, maps = tmp_path / "scores.csv", tmp_path / "maps"
    result = run(*masks, "--csv", table, "--error-maps", maps)
    assert result.exception is None, result.output
    with open(table, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["image"] for row in rows] == ["a", "b"]
    assert (rows[0]["tp"], rows[0]["fp"], rows[0]["fn"]) == ("0", "8", "8")
    assert float(rows[1]["road_iou"]) == 1.0
    assert sorted(p.name for p in maps.iterdir()) == ["a_errors.png", "b_errors.png"]
    again = run(*masks, "--csv", table)
    assert again.exit_code == 1
    assert "scores.csv already exists; pass --overwrite" in again.output
    assert run(*masks, "--csv", table, "--overwrite").exit_code == 0


def test_mismatched_pairs_exit_1_with_names(masks):
    pred_dir, truth_dir = masks
    write_png(truth_dir / "c_mask.png", np.zeros((8, 8), bool))
    result = run(pred_dir, truth_dir)
    assert result.exit_code == 1
    assert "c_mask.png: no prediction with id 'c'" in result.output
    assert "1 problem(s); 2 pair(s) scored" in result.output
    assert "ALL" in result.output  # the others are still scored


def test_quiet_keeps_table_and_errors(masks):
    pred_dir, truth_dir = masks
    write_png(truth_dir / "c_mask.png", np.zeros((8, 8), bool))
    result = run(pred_dir, truth_dir, "--quiet")
    assert result.exit_code == 1
    assert "ALL" in result.output and "no prediction with id 'c'" in result.output
    assert "slack" not in result.output and "problem(s)" not in result.output


def test_no_masks(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run(tmp_path / "empty", tmp_path / "empty")
    assert result.exit_code == 1
    assert "Error: no masks found" in result.output


def test_missing_path(tmp_path):
    result = run(tmp_path / "nope", tmp_path)
    assert result.exit_code == 1 and "nope: no such file or directory" in result.output


def _roads(path, lines):
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "LineString", "coordinates": line}}
        for line in lines]}))
    return path


def test_apls(tmp_path):
    cross = [[[-115.232, 36.14], [-115.228, 36.14]], [[-115.23, 36.138], [-115.23, 36.142]]]
    truth = _roads(tmp_path / "truth.geojson", cross)
    same = _roads(tmp_path / "same.geojson", cross)
    half = _roads(tmp_path / "half.geojson", cross[:1])
    result = run(same, truth)
    assert result.exception is None, result.output
    assert result.output.splitlines()[0].split() == ["APLS", "1.0000"]
    data = json.loads(run(half, truth, "--json").output)
    assert 0 < data["apls"] < 1
    assert data["apls_proposal_onto_truth"] == pytest.approx(1)
    assert data["truth_length_m"] > data["proposal_length_m"] > 300
    table = tmp_path / "apls.csv"
    assert run(half, truth, "--csv", table).exit_code == 0
    with open(table, newline="") as handle:
        assert float(next(csv.DictReader(handle))["apls"]) == pytest.approx(data["apls"])


def test_topo_beside_apls_in_the_table_json_and_csv(tmp_path):
    cross = [[[-115.232, 36.14], [-115.228, 36.14]], [[-115.23, 36.138], [-115.23, 36.142]]]
    truth = _roads(tmp_path / "truth.geojson", cross)
    half = _roads(tmp_path / "half.geojson", cross[:1])
    table = run(_roads(tmp_path / "same.geojson", cross), truth).output
    topo_line = next(line for line in table.splitlines() if line.startswith("TOPO"))
    assert topo_line.split()[:8] == ["TOPO", "(spacenet)", "precision", "1.0000", "recall", "1.0000", "F1", "1.0000"]
    data = json.loads(run(half, truth, "--json").output)
    assert data["topo_precision"] == pytest.approx(1.0) and data["topo_start_points"] > 8
    assert 0.3 < data["topo_recall"] < 0.7  # one of two equal roads found
    assert data["topo_f1"] == pytest.approx(2 * data["topo_recall"] / (1 + data["topo_recall"]))
    wide = json.loads(run(half, truth, "--json", "--topo", "city-scale").output)
    assert wide["topo_preset"] == "city-scale" and data["topo_preset"] == "spacenet"
    assert run(half, truth, "--csv", tmp_path / "graphs.csv").exit_code == 0
    with open(tmp_path / "graphs.csv", newline="") as handle:
        assert float(next(csv.DictReader(handle))["topo_recall"]) == pytest.approx(data["topo_recall"])


def test_apls_node_crossings(tmp_path):
    # the truth draws a junction vertex where its roads cross; the proposal draws the same roads without one
    junction = [[[-115.232, 36.14], [-115.2305, 36.14], [-115.228, 36.14]],
                [[-115.2305, 36.138], [-115.2305, 36.14], [-115.2305, 36.142]]]
    truth = _roads(tmp_path / "truth.geojson", junction)
    overpass = _roads(tmp_path / "overpass.geojson", [[line[0], line[-1]] for line in junction])
    shared = json.loads(run(overpass, truth, "--json").output)
    assert shared["node_crossings"] is False
    assert shared["apls"] < 0.9  # the proposal's roads do not meet: paths that turn are missing
    joined = json.loads(run(overpass, truth, "--json", "--node-crossings").output)
    assert joined["node_crossings"] is True
    assert joined["apls"] == pytest.approx(1)
    assert "lines joined where they cross" in run(overpass, truth, "--node-crossings").output


def test_apls_usage_errors(tmp_path, masks):
    truth = _roads(tmp_path / "truth.geojson", [[[-115.232, 36.14], [-115.228, 36.14]]])
    result = run(truth, truth, "--error-maps", tmp_path / "maps")
    assert result.exit_code == 2 and "--error-maps and --images apply to masks" in result.output
    result = run(truth, masks[1] / "a_mask.png")
    assert result.exit_code == 2 and "needs the ground truth as road centrelines" in result.output
    result = run(masks[0], truth)
    assert result.exit_code == 2 and "takes one file of road lines or one mask file as PRED" in result.output


def test_roads_in_every_format_vectorize_writes_score_as_their_geojson(shared_data, tmp_path):
    folder = shared_data / "spacenet-vegas-pan"
    truth = folder / "sample_roads_for_masking.geojson"
    scores = {}
    for suffix in (".geojson", ".gpkg", ".fgb", ".parquet"):
        roads = tmp_path / f"roads{suffix}"
        done = CliRunner().invoke(cli, ["vectorize", str(folder / "sample_road_raster_mask.tif"), "-o", str(roads),
                                        "--quiet"])
        assert done.exit_code == 0, done.output
        result = run(roads, truth, "--json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.output)
        scores[suffix] = (data["apls"], data["topo_f1"], round(data["proposal_length_m"], 3))
    assert scores[".geojson"][0] > 0.9
    for suffix in (".gpkg", ".fgb", ".parquet"):  # the source CRS (UTM) read back and measured alike
        assert scores[suffix] == pytest.approx(scores[".geojson"], abs=1e-4), suffix


def test_road_lines_without_a_crs_are_refused_in_one_line(tmp_path):
    mask = np.zeros((40, 80), np.uint8)
    mask[18:22, :] = 1
    image = tmp_path / "m.png"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(image, "w", driver="PNG", width=80, height=40, count=1, dtype="uint8") as out:
            out.write(mask * 255, 1)
    assert CliRunner().invoke(cli, ["vectorize", str(image), "-o", str(tmp_path / "px.gpkg"), "--quiet"]).exit_code == 0
    truth = _roads(tmp_path / "truth.geojson", [[[-115.232, 36.14], [-115.228, 36.14]]])
    result = run(tmp_path / "px.gpkg", truth)
    assert result.exit_code == 1
    assert [line for line in result.output.splitlines() if line.startswith("Error")] == [
        f"Error: {tmp_path / 'px.gpkg'}: its lines have no CRS (pixel coordinates?), so they have no place on the "
        "map; vectorize a georeferenced mask"]


def test_apls_of_a_mask_vectorized(shared_data):
    folder = shared_data / "spacenet-vegas-pan"
    result = run(folder / "sample_road_raster_mask.tif", folder / "sample_roads_for_masking.geojson", "--json")
    assert result.exception is None, result.output
    data = json.loads(result.output[result.output.index("{"):])
    assert data["vectorized"] is True
    # the mask is the same centrelines burnt 4 m wide: its centrelines come back within the snap distance
    assert data["apls"] > 0.9
    assert data["proposal_length_m"] == pytest.approx(data["truth_length_m"], rel=0.05)


@pytest.mark.filterwarnings("ignore:.*no roads found")
def test_apls_of_an_unreferenced_mask(tmp_path, masks):
    truth = _roads(tmp_path / "truth.geojson", [[[-115.232, 36.14], [-115.228, 36.14]]])
    result = run(masks[1] / "a_mask.png", truth)
    assert result.exit_code == 1 and "a_mask.png: not georeferenced" in result.output


def test_predict_options_refused_without_data_dir(masks):
    result = run(*masks, "--tta", "none")
    assert result.exit_code == 2 and "--tta applies to `roadseg eval DATA_DIR`" in result.output
    result = run(*masks, "--weights", "x.ckpt")
    assert result.exit_code == 2 and "--weights applies to" in result.output


def _cross(size=64):
    road = np.zeros((size, size), bool)
    road[size // 2 - 2:size // 2 + 2] = True
    road[:, 10:13] = True
    return road


@pytest.fixture()
def deepglobe_layout(tmp_path):
    """Two grey <id>_sat.png images whose bright pixels are the roads of their <id>_mask.png."""
    data = tmp_path / "data"
    data.mkdir()
    for key, road in (("1", _cross()), ("2", _cross().T)):
        image = np.where(road, 230, 40).astype(np.uint8)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(data / f"{key}_sat.png", "w", driver="PNG", width=64, height=64, count=3,
                               dtype="uint8") as dst:
                dst.write(np.repeat(image[None], 3, axis=0))
        write_png(data / f"{key}_mask.png", road)
    return data


def bright_is_road(batch):
    """A stand-in network: road probability 1 where the (scaled) first channel is above mid-grey."""
    return (batch[:, 0] > 0).astype(np.float32)


def test_predict_then_score(deepglobe_layout, tmp_path, monkeypatch):
    import roadseg.model.loaded

    calls = []

    def fake_load_model(weights, arch=None, device="auto", **kwargs):
        calls.append((weights, arch, device))
        return bright_is_road

    monkeypatch.setattr(roadseg.model.loaded, "load_model", fake_load_model)
    kept = tmp_path / "predicted"
    result = run(deepglobe_layout, "--weights", "my.ckpt", "--device", "CPU", "--tta", "none",
                 "--window", "64", "--predictions", kept, "--json", "--error-maps", tmp_path / "maps")
    assert result.exception is None, result.output
    assert calls == [("my.ckpt", None, "CPU")]
    data = json.loads(result.output)
    assert [image["name"] for image in data["images"]] == ["1", "2"]
    assert data["scores"]["road_iou"] == 1.0 and data["scores"]["acc"] == 1.0
    assert sorted(p.name for p in kept.iterdir()) == ["1_mask.png", "2_mask.png"]
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == ["1_errors.png", "2_errors.png"]


def test_predict_then_score_reports_missing_truth(deepglobe_layout, monkeypatch):
    import roadseg.model.loaded

    monkeypatch.setattr(roadseg.model.loaded, "load_model", lambda *args, **kwargs: bright_is_road)
    (deepglobe_layout / "2_mask.png").unlink()
    result = run(deepglobe_layout, "--tta", "none", "--window", "64")
    assert result.exit_code == 1
    # the image is named, not a temporary prediction (issue 14), and it is not predicted
    assert f"Error: {deepglobe_layout / '2_sat.png'}: no ground-truth mask with id '2' beside it" in result.output
    assert "roadseg-eval-" not in result.output
    assert "1 problem(s); 1 pair(s) scored" in result.output


def test_predict_needs_images(tmp_path, monkeypatch):
    import roadseg.model.loaded

    def no_model(*args, **kwargs):
        raise AssertionError("the model is loaded only when there are images to predict")

    monkeypatch.setattr(roadseg.model.loaded, "load_model", no_model)
    result = run(tmp_path)
    assert result.exit_code == 1 and "no <id>_sat.* images found" in result.output


def test_bad_slack(masks):
    result = run(*masks, "--slack", "-1")
    assert result.exit_code == 2


@pytest.mark.mindspore
def test_predict_then_score_with_mindspore(shared_data, tmp_path):
    """The whole road through load_model and MindSpore: random zoo-shaped weights on a real 256 px crop."""
    from tests.helpers_ckpt import write_zoo_checkpoint

    train = shared_data / "deepglobe" / "train"
    data = tmp_path / "data"
    data.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(train / "104_sat.jpg") as src:
            image = src.read(window=((0, 256), (0, 256)))
        with rasterio.open(train / "104_mask.png") as src:
            road = src.read(1, window=((0, 256), (0, 256))) > 0
        with rasterio.open(data / "104_sat.png", "w", driver="PNG", width=256, height=256, count=3,
                           dtype="uint8") as dst:
            dst.write(image)
    write_png(data / "104_mask.png", road)
    checkpoint = tmp_path / "random.ckpt"
    write_zoo_checkpoint(checkpoint)
    result = run(data, "--weights", checkpoint, "--device", "CPU", "--tta", "none", "--window", "256", "--json")
    assert result.exception is None, result.output
    report = json.loads(result.output[result.output.index("{"):])
    assert [image["name"] for image in report["images"]] == ["104"]
    assert sum(map(sum, report["confusion"])) == 256 * 256
    (_, _), (fn, tp) = report["confusion"]
    assert fn + tp == int(road.sum())
    assert 0 <= report["scores"]["acc"] <= 1


def _no_model(*args, **kwargs):
    raise AssertionError("the model must not load: the run is refused first")


def _digests(folder):
    import hashlib

    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir())}


def one_error_line(result):
    """The one ``Error:`` line of a refused run (exit 1, no traceback); other CLI tests use it too."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    (line,) = result.output.strip().splitlines()
    return line


@pytest.mark.parametrize("tag", [0, 255])
def test_a_nodata_tag_on_a_class_of_the_truth_is_not_taken_for_missing_data(shared_data, tmp_path, tag):
    """Issue 14: truth tagged nodata=0 lost its background (an all-road prediction scored 1.0000), and a
    0/255 truth tagged 255 lost its roads (accuracy 1.0 for all road)."""
    from tests.io.test_masks import spacenet_mask, tagged_copy

    label = spacenet_mask(shared_data)
    with rasterio.open(label) as src:
        road = src.read(1) > 0
    all_road = tagged_copy(label, tmp_path / "pred.tif", None, np.full(road.shape, 255))
    truth = tagged_copy(label, tmp_path / "truth.tif", tag)
    result = CliRunner().invoke(cli, ["eval", str(all_road), str(truth), "--json"])
    assert result.exit_code == 0, result.output
    assert result.stderr.strip().splitlines() == [
        f"Warning: {truth}: its nodata tag {tag} is also the mask's {'road' if tag else 'background'} value, so "
        f"those pixels are read as {'road' if tag else 'background'}, not as missing data (missing data needs a "
        "value of its own, as predict's 255 beside 0 and 1)"]
    scores = json.loads(result.stdout)["scores"]
    assert scores["acc"] == pytest.approx(road.mean()) and scores["road_iou"] == pytest.approx(road.mean())
    assert scores["precision"] == pytest.approx(road.mean()) and scores["recall"] == 1.0


@pytest.fixture()
def deepglobe_copy(shared_data, tmp_path):
    """DeepGlobe's training tile 104 (image and label) in a folder of its own."""
    train = shared_data / "deepglobe" / "train"
    if not (train / "104_mask.png").is_file():
        pytest.skip(f"DeepGlobe sample not found in {train}")
    data = tmp_path / "dg"
    data.mkdir()
    for name in ("104_sat.jpg", "104_mask.png"):
        (data / name).write_bytes((train / name).read_bytes())
    return data


def test_predictions_into_the_ground_truth_folder_are_refused_before_the_model_loads(deepglobe_copy, monkeypatch):
    """Issue 14: ``eval --predictions dg dg`` reused the labels as predictions and reported 1.0000."""
    import roadseg.model.loaded

    monkeypatch.setattr(roadseg.model.loaded, "load_model", _no_model)
    before = _digests(deepglobe_copy)
    for extra in ([], ["--overwrite"]):
        result = run(deepglobe_copy, "--weights", "w.ckpt", "--predictions", deepglobe_copy, *extra)
        assert one_error_line(result) == (f"Error: {deepglobe_copy}: the prediction of 104_sat.jpg would be "
                                           f"{deepglobe_copy / '104_mask.png'}, its own ground truth; give "
                                           "--predictions a folder of its own")
    assert _digests(deepglobe_copy) == before


def test_the_same_files_as_prediction_and_truth_are_refused(deepglobe_copy, tmp_path):
    label = deepglobe_copy / "104_mask.png"
    (tmp_path / "link.png").symlink_to(label)
    for sides in ((deepglobe_copy, deepglobe_copy), (label, tmp_path / "link.png")):
        line = one_error_line(run(*sides))
        assert line.startswith("Error: ") and "is both the prediction and the ground truth" in line
    roads = _roads(tmp_path / "roads.geojson", [[[-115.232, 36.14], [-115.228, 36.14]]])
    line = one_error_line(run(roads, tmp_path / "." / "roads.geojson"))
    assert line == f"Error: {roads}: is both the prediction and the ground truth; give predictions and ground " \
                   "truth as different files"


def test_a_folder_without_ground_truth_is_refused_before_the_model_loads(shared_data, monkeypatch):
    """Issue 15: eval DATA_DIR on images without masks predicted all of them, then failed with temporary paths."""
    import roadseg.model.loaded

    valid = shared_data / "deepglobe" / "valid"
    if not valid.is_dir():
        pytest.skip(f"{valid} not found")
    monkeypatch.setattr(roadseg.model.loaded, "load_model", _no_model)
    line = one_error_line(run(valid, "--weights", "w.ckpt"))
    assert line == (f"Error: {valid}: none of its 4 <id>_sat.* image(s) has an <id>_mask.* ground truth beside "
                    "it; give a DeepGlobe-layout directory (<id>_sat.jpg with <id>_mask.png)")


def test_csv_and_error_maps_never_replace_an_input(masks, tmp_path):
    """Issue 14: the outputs of eval could be written over the masks it scores."""
    pred_dir, truth_dir = masks
    truth = truth_dir / "a_mask.png"
    before = _digests(pred_dir), _digests(truth_dir)
    line = one_error_line(run(pred_dir / "a_mask.png", truth, "--csv", truth, "--overwrite"))
    assert line == f"Error: {truth}: is also an input, which writing it would replace; write the output to another file"
    assert (_digests(pred_dir), _digests(truth_dir)) == before
    # masks keyed by their stems: the error map of pair "b", b_errors.png, is the prediction of "b_errors"
    plain_pred, plain_truth = tmp_path / "plain_pred", tmp_path / "plain_truth"
    for folder in (plain_pred, plain_truth):
        folder.mkdir()
        for name in ("b.png", "b_errors.png"):
            write_png(folder / name, np.eye(8, dtype=bool))
    before = _digests(plain_pred), _digests(plain_truth)
    line = one_error_line(run(plain_pred, plain_truth, "--error-maps", plain_pred, "--overwrite"))
    assert line.startswith(f"Error: {plain_pred / 'b_errors.png'}: is also an input")
    assert (_digests(plain_pred), _digests(plain_truth)) == before


def test_skipped_polygons_are_one_clean_warning(tmp_path):
    """Issue 13: APLS printed Python's warning with its source line."""
    line = [[-115.232, 36.14], [-115.228, 36.14]]
    truth = _roads(tmp_path / "truth.geojson", [line])
    data = json.loads(truth.read_text())
    ring = [[-115.23, 36.14], [-115.229, 36.14], [-115.229, 36.141], [-115.23, 36.14]]
    data["features"].append({"type": "Feature", "properties": {},
                             "geometry": {"type": "Polygon", "coordinates": [ring]}})
    truth.write_text(json.dumps(data))
    result = CliRunner().invoke(cli, ["eval", str(_roads(tmp_path / "p.geojson", [line])), str(truth)])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [f"Warning: {truth}: 1 geometries that are not lines skipped"]
