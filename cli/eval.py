"""``roadseg eval``: score predicted masks (pixel metrics) or road vectors (APLS) against ground truth."""

from __future__ import annotations

import csv
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from roadseg.cli.options import (
    ModelChoice,
    gather,
    json_opt,
    model_options,
    overwrite_opt,
    predict_options,
    quiet_opt,
)
from roadseg.cli.progress import CountBar, progress_wanted
from roadseg.inference.options import PredictOptions
from roadseg.metrics.evaluate import GraphScoring, ScoreOptions, is_road_vector
from roadseg.metrics.topo import TOPO_PRESETS

PREDICT_ONLY = ("weights", "arch", "device", "device_id", "engine", "threads", "pynative", "window", "overlap",
                "blend", "tta", "threshold", "batch_size", "gsd", "input_gsd", "predictions_dir")
"""Options of the predict-first form only."""

PIXEL_COLUMNS = (
    ("acc", "acc"), ("acc_cls", "acc_cls"), ("iou", "iou(bg)"), ("road_iou", "road_iou"),
    ("mean_iou", "mIoU"), ("precision", "prec"), ("recall", "recall"), ("f1", "f1"),
    ("relaxed_precision", "r_prec"), ("relaxed_recall", "r_recall"), ("relaxed_f1", "r_f1"),
)


def _fmt(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def _pixel_table(result, legend: bool = True) -> str:
    names = [image.name for image in result.images] + ["ALL"]
    width = max(len(name) for name in names + ["image"])
    header = "image".ljust(width) + "".join(f" {label:>9}" for _, label in PIXEL_COLUMNS)
    lines = [header]
    for image in result.images:
        lines.append(image.name.ljust(width)
                     + "".join(f" {_fmt(getattr(image.scores, key)):>9}" for key, _ in PIXEL_COLUMNS))
    lines.append("ALL".ljust(width)
                 + "".join(f" {_fmt(getattr(result.scores, key)):>9}" for key, _ in PIXEL_COLUMNS))
    if legend:
        lines.append(f"{len(result.images)} image(s); iou(bg) is the zoo's 'iou' (background class), "
                     f"road_iou the road class; relaxed scores at slack {result.slack:g} px")
    return "\n".join(lines)


def _write_pixel_csv(path: Path, result, overwrite: bool) -> None:
    from roadseg.io.atomic import atomic_output

    fields = ["image", "prediction", "truth", "tn", "fp", "fn", "tp", *(key for key, _ in PIXEL_COLUMNS)]
    with atomic_output(path, overwrite=overwrite) as temp, \
            open(temp, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(fields)
        for image in result.images:
            (tn, fp), (fn, tp) = image.confusion
            scores = [getattr(image.scores, key) for key, _ in PIXEL_COLUMNS]
            writer.writerow([image.name, image.prediction, image.truth, tn, fp, fn, tp,
                             *("" if math.isnan(value) else f"{value:.6f}" for value in scores)])


def _report_graphs(evaluation, report: Report) -> None:
    """Print APLS (a table or JSON) and write its CSV row."""
    prediction, truth = str(evaluation.prediction), str(evaluation.truth)
    spacing, snap = evaluation.spacing_m, evaluation.snap_m
    result = evaluation.apls
    row = {
        "prediction": prediction, "truth": truth, "apls": result.apls,
        "apls_truth_onto_proposal": result.truth_onto_proposal.score,
        "apls_proposal_onto_truth": result.proposal_onto_truth.score,
        "truth_length_m": result.truth_length_m, "proposal_length_m": result.proposal_length_m,
        "truth_control_points": result.truth_onto_proposal.control_points,
        "proposal_control_points": result.proposal_onto_truth.control_points,
        "truth_paths": result.truth_onto_proposal.paths, "proposal_paths": result.proposal_onto_truth.paths,
        "vectorized": evaluation.vectorized, "spacing_m": spacing, "snap_m": snap,
        "node_crossings": evaluation.node_crossings,
        **_topo_columns(evaluation),
    }
    row = {key: (None if isinstance(value, float) and math.isnan(value) else value) for key, value in row.items()}
    if report.csv_path is not None:
        from roadseg.io.atomic import atomic_output

        with atomic_output(report.csv_path, overwrite=report.overwrite) as temp, \
                open(temp, "w", newline="", encoding="utf-8") as out:
            writer = csv.DictWriter(out, fieldnames=list(row))
            writer.writeheader()
            writer.writerow({key: "" if value is None else value for key, value in row.items()})
    if report.as_json:
        click.echo(json.dumps(row, indent=2))
        return
    if evaluation.vectorized:
        click.echo(f"{prediction} vectorized with the vectorize defaults")
    click.echo(f"APLS                     {_fmt(result.apls)}")
    for label, direction in (("truth onto proposal", result.truth_onto_proposal),
                             ("proposal onto truth", result.proposal_onto_truth)):
        click.echo(f"  {label}    {_fmt(direction.score)}  ({direction.paths} paths, "
                   f"{direction.snapped}/{direction.control_points} control points snapped)")
    click.echo(f"length truth / proposal  {result.truth_length_m:.1f} m / {result.proposal_length_m:.1f} m"
               f"  (control points every {spacing:g} m, snap {snap:g} m"
               f"{', lines joined where they cross' if evaluation.node_crossings else ''})")
    topo = evaluation.topo
    click.echo(f"TOPO ({evaluation.topo_preset})".ljust(25) + f"precision {_fmt(topo.precision)}  recall "
               f"{_fmt(topo.recall)}  F1 {_fmt(topo.f1)}  ({topo.start_points} start points, {topo.paired} "
               f"paired, {topo.kept} kept)")


def _topo_columns(evaluation) -> dict:
    """TOPO's scores and counts as flat ``topo_*`` columns (one CSV row, one JSON object)."""
    topo = evaluation.topo
    return {"topo_preset": evaluation.topo_preset, "topo_precision": topo.precision, "topo_recall": topo.recall,
            "topo_f1": topo.f1, "topo_start_points": topo.start_points, "topo_paired": topo.paired,
            "topo_kept": topo.kept}


@dataclass(frozen=True)
class Report:
    """How eval's results reach the user: a CSV file, JSON or a table, quiet or not."""

    csv_path: Path | None
    as_json: bool
    quiet: bool
    overwrite: bool


def _score_options(slack: float, error_maps: Path | None, image_dirs: tuple[str, ...]) -> ScoreOptions:
    return ScoreOptions(slack, error_maps, tuple(image_dirs) or None)


@click.command("eval")
@click.argument("prediction", metavar="PRED|DATA_DIR")
@click.argument("truth", metavar="[GT]", required=False)
@click.option("--slack", type=click.FloatRange(min=0), default=3.0, show_default=True,
              help="Relaxed precision/recall tolerance in pixels (Mnih and Hinton use 3).")
@click.option("--error-maps", "error_maps", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write <id>_errors.png per image: true positives green, false positives red, "
                   "false negatives blue, over the image.")
@click.option("--images", "image_dirs", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Where the imagery under --error-maps is (<id>_sat.* or <id>.*); default: GT's directory.")
@gather("scoring", ("slack", "error_maps", "image_dirs"), _score_options)
@click.option("--spacing", type=click.FloatRange(min=0, min_open=True), default=50.0, show_default=True,
              help="APLS: control points every this many metres along the roads.")
@click.option("--snap", type=click.FloatRange(min=0), default=4.0, show_default=True,
              help="APLS: snap control points onto the other graph within this many metres.")
@click.option("--node-crossings", "node_crossings", is_flag=True, default=False,
              help="APLS: join lines wherever they cross, for line files drawn without junction vertices. "
                   "By default they join only at shared vertices, as in SpaceNet: a crossing without one "
                   "is an overpass.")
@click.option("--topo", "topo", type=click.Choice(sorted(TOPO_PRESETS)), default="spacenet", show_default=True,
              help="TOPO's parameters, as graph papers use them: spacenet (400 m tiles, 167 m radius) or "
                   "city-scale (2 km tiles, 333 m radius).")
@gather("graph_scoring", ("spacing", "snap", "node_crossings", "topo"), GraphScoring)
@click.option("--predictions", "predictions_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="With DATA_DIR: keep the predicted masks here (reused when present) "
                                 "instead of in a temporary directory.")
@predict_options(defaults=False, note="With DATA_DIR: ")
@model_options
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write per-image scores (or the APLS row) to this CSV file.")
@json_opt
@quiet_opt
@overwrite_opt
@gather("report", ("csv_path", "as_json", "quiet", "overwrite"), Report)
def eval_command(prediction: str, truth: str | None, scoring: ScoreOptions, graph_scoring: GraphScoring,
                 predictions_dir: Path | None, options: PredictOptions, model: ModelChoice, report: Report) -> None:
    """Score predictions PRED against ground truth GT, or predict DATA_DIR first and score that.

    \b
    Masks: PRED and GT are mask files or directories, paired by id (<id>_mask.png with <id>_mask.png;
    GeoTIFFs by stem, on an identical grid). Reports the zoo's acc, acc_cls and iou (the background
    class), road IoU, mean IoU, precision, recall, F1 and relaxed precision/recall, over all pixels
    of all images and per image.
    Predict first: roadseg eval [--weights W] DATA_DIR runs predict on the <id>_sat.jpg of a
    DeepGlobe-layout directory and scores the masks against its <id>_mask.png.
    Vectors: PRED and GT are road centrelines (GeoJSON, GeoPackage, FlatGeobuf, GeoParquet); reports
    APLS (SpaceNet's, lines joined at shared vertices) and TOPO precision, recall and F1 (as
    graph-extraction papers report it). A mask as PRED is vectorized first with the vectorize defaults.
    """
    from roadseg.io.atomic import check_apart, check_writable

    form = _form(prediction, truth, scoring)
    if report.csv_path is not None:
        check_apart([report.csv_path], _input_files(prediction, truth))
        check_writable(report.csv_path, report.overwrite)
    if form == "predict":
        result = _run_predict(prediction, predictions_dir, model, options, scoring, report)
    elif form == "graphs":
        from roadseg.metrics.evaluate import evaluate_graphs

        result = evaluate_graphs(prediction, truth, graph_scoring)
    else:
        result = _run_masks(prediction, truth, scoring, report)
    if form == "graphs":
        _report_graphs(result, report)
    else:
        empty = (f"no masks scored in {prediction}" if form == "predict"
                 else f"no masks found in {prediction} and {truth}; give mask files or directories")
        _render_pixels(result, report, empty)


def _form(prediction: str, truth: str | None, scoring: ScoreOptions) -> str:
    """Which eval this is, ``predict`` (DATA_DIR), ``graphs`` (APLS) or ``masks``; usage errors for
    options and arguments that do not fit it."""
    ctx = click.get_current_context()
    predict_given = [param.opts[0] for param in ctx.command.params if param.name in PREDICT_ONLY
                     and ctx.get_parameter_source(param.name) is not click.core.ParameterSource.DEFAULT]
    if truth is not None and predict_given:
        raise click.UsageError(f"{predict_given[0]} applies to `roadseg eval DATA_DIR` (predict, then score); "
                               "scoring PRED against GT runs no model")
    if truth is None:
        if is_road_vector(prediction):
            raise click.UsageError("road lines as PRED need road lines as GT to compare with")
        return "predict"
    if not (is_road_vector(truth) or is_road_vector(prediction)):
        return "masks"
    if not is_road_vector(truth):
        raise click.UsageError("APLS needs the ground truth as road centrelines, GeoJSON, GeoPackage, FlatGeobuf "
                               "or GeoParquet (PRED.geojson|PRED_MASK GT.geojson)")
    if not is_road_vector(prediction) and not Path(prediction).is_file():
        raise click.UsageError(f"{prediction}: APLS takes one file of road lines or one mask file as PRED")
    if scoring.error_maps is not None or scoring.images:
        raise click.UsageError("--error-maps and --images apply to masks, not to road lines")
    return "graphs"


def _input_files(prediction: str, truth: str | None) -> list[Path]:
    """The files eval reads: those named, and those in the folders named (a CSV must not replace one)."""
    from roadseg.io.inputs import collect_inputs
    from roadseg.io.remote import is_url

    items = [item for item in (prediction, truth) if item is not None and not is_url(item)]  # a URL is no file
    folders = [item for item in items if Path(item).is_dir()]
    return [Path(item) for item in items if item not in folders] + (collect_inputs(folders) if folders else [])


def _run_masks(prediction: str, truth: str, scoring: ScoreOptions, report: Report):
    """Score the masks PRED against GT, with a bar on a terminal."""
    from roadseg.metrics.evaluate import evaluate_masks

    bar = CountBar("image") if progress_wanted(report.quiet or report.as_json) else None
    try:
        return evaluate_masks([prediction], [truth], scoring, overwrite=report.overwrite,
                              progress=bar.update if bar else None)
    finally:
        if bar is not None:
            bar.close()


def _run_predict(data: str, predictions_dir: Path | None, model: ModelChoice, options: PredictOptions,
                 scoring: ScoreOptions, report: Report):
    """Load the model, predict DATA_DIR into ``predictions_dir`` (or a temporary one) and score it."""
    import tempfile

    from roadseg.inference.predict import check_settings
    from roadseg.metrics.evaluate import plan_predict_eval, predict_and_evaluate

    # before the model loads: images, their ground truth, and predictions that would be the truth
    total = len(plan_predict_eval(data, predictions_dir).images)
    check_settings(None, options)
    loaded = model.load()
    bar = CountBar("image") if progress_wanted(report.quiet or report.as_json) else None
    on_file = None
    if bar is not None:
        bar.bar.total = total

        def on_file(path, result, reason):
            bar.step(Path(path).name)

    try:
        with tempfile.TemporaryDirectory(prefix="roadseg-eval-") as temp:
            return predict_and_evaluate(loaded, data, predictions_dir or Path(temp), options, scoring,
                                        overwrite=report.overwrite, on_file=on_file)
    finally:
        if bar is not None:
            bar.close()


def _render_pixels(result, report: Report, empty_message: str) -> None:
    """Print the table or JSON, write the CSV, report problems; exit 1 when there were any."""
    from roadseg.errors import BadInputError

    if not result.images and not result.problems:
        raise BadInputError(empty_message)
    if report.csv_path is not None:
        _write_pixel_csv(report.csv_path, result, report.overwrite)
    if report.as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    elif result.images:
        click.echo(_pixel_table(result, legend=not report.quiet))
    for problem in result.problems:
        click.echo(f"Error: {problem.message}", err=True)
    if result.problems:
        if not report.quiet:
            click.echo(f"{len(result.problems)} problem(s); {len(result.images)} pair(s) scored", err=True)
        sys.exit(1)
