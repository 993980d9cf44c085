"""``roadseg eval``: score predicted masks (pixel metrics) or road vectors (APLS) against ground truth."""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import click

from roadseg.cli.options import json_opt, model_options, overwrite_opt, quiet_opt
from roadseg.inference.blending import BLEND_CHOICES
from roadseg.inference.tta import TTA_CHOICES

VECTOR_SUFFIXES = (".geojson", ".json")
PREDICT_ONLY = ("weights", "arch", "device", "device_id", "engine", "threads", "pynative", "window", "overlap",
                "blend", "tta", "threshold", "predictions_dir")
"""Options of the predict-first form only."""

PIXEL_COLUMNS = (
    ("acc", "acc"), ("acc_cls", "acc_cls"), ("iou", "iou(bg)"), ("road_iou", "road_iou"),
    ("mean_iou", "mIoU"), ("precision", "prec"), ("recall", "recall"), ("f1", "f1"),
    ("relaxed_precision", "r_prec"), ("relaxed_recall", "r_recall"), ("relaxed_f1", "r_f1"),
)


def _fmt(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def _is_vector(path: str) -> bool:
    return Path(path).suffix.lower() in VECTOR_SUFFIXES


def _progress_bar(quiet: bool, as_json: bool):
    """A tqdm bar and a ``progress(done, total, name)`` callback driving it, on a terminal; else Nones."""
    if quiet or as_json or not sys.stderr.isatty():
        return None, None
    from tqdm import tqdm

    bar = tqdm(unit="image", file=sys.stderr, leave=False)

    def update(done: int, total: int, name: str) -> None:
        bar.total = total
        bar.set_postfix_str(name)
        bar.update(done - bar.n)

    return update, bar


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


def _run_graphs(prediction: str, truth: str, spacing: float, snap: float, as_json: bool,
                csv_path: Path | None, overwrite: bool) -> None:
    from roadseg.metrics.evaluate import evaluate_graphs

    evaluation = evaluate_graphs(prediction, truth, spacing=spacing, snap=snap)
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
    }
    row = {key: (None if isinstance(value, float) and math.isnan(value) else value) for key, value in row.items()}
    if csv_path is not None:
        from roadseg.io.atomic import atomic_output

        with atomic_output(csv_path, overwrite=overwrite) as temp, \
                open(temp, "w", newline="", encoding="utf-8") as out:
            writer = csv.DictWriter(out, fieldnames=list(row))
            writer.writeheader()
            writer.writerow({key: "" if value is None else value for key, value in row.items()})
    if as_json:
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
               f"  (control points every {spacing:g} m, snap {snap:g} m)")


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
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write per-image scores (or the APLS row) to this CSV file.")
@click.option("--spacing", type=click.FloatRange(min=0, min_open=True), default=50.0, show_default=True,
              help="APLS: control points every this many metres along the roads.")
@click.option("--snap", type=click.FloatRange(min=0), default=4.0, show_default=True,
              help="APLS: snap control points onto the other graph within this many metres.")
@click.option("--predictions", "predictions_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="With DATA_DIR: keep the predicted masks here (reused when present) "
                                 "instead of in a temporary directory.")
@click.option("--window", type=click.IntRange(min=32), default=None,
              help="With DATA_DIR: predict window size in pixels (default: as roadseg predict).")
@click.option("--overlap", type=click.FloatRange(min=0, max=1, max_open=True), default=None,
              help="With DATA_DIR: window overlap fraction (default: as roadseg predict).")
@click.option("--blend", type=click.Choice(BLEND_CHOICES), default=None,
              help="With DATA_DIR: how overlapping windows are blended (default: as roadseg predict).")
@click.option("--tta", type=click.Choice(TTA_CHOICES), default=None,
              help="With DATA_DIR: test-time augmentation (default: as roadseg predict; the zoo used none).")
@click.option("--threshold", type=click.FloatRange(min=0, max=1), default=None,
              help="With DATA_DIR: road probability threshold (default: as roadseg predict).")
@model_options
@json_opt
@quiet_opt
@overwrite_opt
@click.pass_context
def eval_command(ctx: click.Context, prediction: str, truth: str | None, slack: float,
                 error_maps: Path | None, image_dirs: tuple[str, ...], csv_path: Path | None, spacing: float,
                 snap: float, predictions_dir: Path | None, window: int | None, overlap: float | None,
                 blend: str | None, tta: str | None, threshold: float | None, weights: str, arch: str | None,
                 device: str, device_id: int, engine: str, threads: int | None, pynative: bool, as_json: bool,
                 quiet: bool,
                 overwrite: bool) -> None:
    """Score predictions PRED against ground truth GT, or predict DATA_DIR first and score that.

    \b
    Masks: PRED and GT are mask files or directories, paired by id (<id>_mask.png with <id>_mask.png;
    GeoTIFFs by stem, on an identical grid). Reports the zoo's acc, acc_cls and iou (the background
    class), road IoU, mean IoU, precision, recall, F1 and relaxed precision/recall, over all pixels
    of all images and per image.
    Predict first: roadseg eval [--weights W] DATA_DIR runs predict on the <id>_sat.jpg of a
    DeepGlobe-layout directory and scores the masks against its <id>_mask.png.
    Vectors: PRED and GT are GeoJSON road centrelines; reports APLS (SpaceNet). A mask as PRED is
    vectorized first with the vectorize defaults.
    """
    from roadseg.io.atomic import check_writable

    predict_given = [param.opts[0] for param in ctx.command.params if param.name in PREDICT_ONLY
                     and ctx.get_parameter_source(param.name) is not click.core.ParameterSource.DEFAULT]
    if truth is not None and predict_given:
        raise click.UsageError(f"{predict_given[0]} applies to `roadseg eval DATA_DIR` (predict, then score); "
                               "scoring PRED against GT runs no model")
    if csv_path is not None:
        check_writable(csv_path, overwrite)
    if truth is None:
        if _is_vector(prediction):
            raise click.UsageError("a GeoJSON PRED needs a GeoJSON GT to compare with")
        options = {name: value for name, value in (("window", window), ("overlap", overlap), ("blend", blend),
                                                   ("tta", tta), ("threshold", threshold))
                   if value is not None}
        model_args = {"weights": weights, "arch": arch, "device": device, "device_id": device_id,
                      "engine": engine, "threads": threads, "pynative": pynative}
        result = _run_predict(prediction, predictions_dir, model_args, options, slack, error_maps,
                              list(image_dirs) or None, overwrite, quiet, as_json)
        _render_pixels(result, csv_path, overwrite, as_json, quiet, f"no masks scored in {prediction}")
        return

    if _is_vector(truth) or _is_vector(prediction):
        if not _is_vector(truth):
            raise click.UsageError("APLS needs the ground truth as GeoJSON road centrelines "
                                   "(PRED.geojson|PRED_MASK GT.geojson)")
        if not _is_vector(prediction) and not Path(prediction).is_file():
            raise click.UsageError(f"{prediction}: APLS takes one GeoJSON file or one mask file as PRED")
        if error_maps is not None or image_dirs:
            raise click.UsageError("--error-maps and --images apply to masks, not to GeoJSON roads")
        _run_graphs(prediction, truth, spacing, snap, as_json, csv_path, overwrite)
        return

    from roadseg.metrics.evaluate import evaluate_masks

    progress, bar = _progress_bar(quiet, as_json)
    try:
        result = evaluate_masks([prediction], [truth], slack=slack, error_maps=error_maps,
                                images=list(image_dirs) or None, overwrite=overwrite, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    _render_pixels(result, csv_path, overwrite, as_json, quiet,
                   f"no masks found in {prediction} and {truth}; give mask files or directories")


def _run_predict(data: str, predictions_dir: Path | None, model_args: dict, options: dict, slack: float,
                 error_maps: Path | None, images: list[str] | None, overwrite: bool, quiet: bool,
                 as_json: bool):
    """Load the model, predict DATA_DIR into ``predictions_dir`` (or a temporary one) and score it."""
    import tempfile

    from roadseg.inference.predict import check_settings
    from roadseg.metrics.evaluate import predict_and_evaluate, satellite_images
    from roadseg.model.loaded import load_model

    total = len(satellite_images(data))  # fail on an empty directory before loading the model
    if "window" in options:
        check_settings(None, window=options["window"])
    model = load_model(model_args["weights"], model_args["arch"], model_args["device"],
                       device_id=model_args["device_id"], pynative=model_args["pynative"],
                       engine=model_args["engine"], threads=model_args["threads"])
    _, bar = _progress_bar(quiet, as_json)
    on_file = None
    if bar is not None:
        bar.total = total

        def on_file(path, result, reason):
            bar.set_postfix_str(Path(path).name)
            bar.update(1)

    try:
        with tempfile.TemporaryDirectory(prefix="roadseg-eval-") as temp:
            return predict_and_evaluate(model, data, predictions_dir or Path(temp), slack=slack,
                                        error_maps=error_maps, images=images, overwrite=overwrite,
                                        on_file=on_file, **options)
    finally:
        if bar is not None:
            bar.close()


def _render_pixels(result, csv_path: Path | None, overwrite: bool, as_json: bool, quiet: bool,
                   empty_message: str) -> None:
    """Print the table or JSON, write the CSV, report problems; exit 1 when there were any."""
    from roadseg.errors import BadInputError

    if not result.images and not result.problems:
        raise BadInputError(empty_message)
    if csv_path is not None:
        _write_pixel_csv(csv_path, result, overwrite)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    elif result.images:
        click.echo(_pixel_table(result, legend=not quiet))
    for problem in result.problems:
        click.echo(f"Error: {problem.message}", err=True)
    if result.problems:
        if not quiet:
            click.echo(f"{len(result.problems)} problem(s); {len(result.images)} pair(s) scored", err=True)
        sys.exit(1)
