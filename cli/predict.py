"""``roadseg predict``: road masks (and probability maps) for scenes of any size, keeping georeferencing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from roadseg.cli.options import json_opt, model_options, overwrite_opt, quiet_opt
from roadseg.inference.blending import BLEND_CHOICES
from roadseg.inference.tta import TTA_CHOICES
from roadseg.io.raster_read import SCALE_CHOICES
from roadseg.io.raster_write import PROB_DTYPE_CHOICES

OUTPUT_STEM_SUFFIXES = ("_mask", "_prob", "_preview")
NETWORK_MULTIPLE = 32


class BandsType(click.ParamType):
    """``3,2,1`` (R,G,B order) or a single band ``1`` (repeated into three); 1-based."""

    name = "BANDS"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            bands = tuple(int(part) for part in str(value).split(","))
        except ValueError:
            self.fail(f"{value!r} is not a comma-separated list of band numbers (e.g. 3,2,1)", param, ctx)
        if len(bands) not in (1, 3) or min(bands) < 1:
            self.fail(f"{value!r}: give three bands in R,G,B order or one band, numbered from 1", param, ctx)
        return bands


class ShardType(click.ParamType):
    """``K/N``: the K-th (1-based) of N deterministic shares of the sorted inputs."""

    name = "K/N"

    def convert(self, value, param, ctx):
        from roadseg.io.inputs import parse_shard

        if isinstance(value, tuple):
            return value
        try:
            return parse_shard(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


def image_scaling_options(func):
    """--bands, --scale and --scale-range: how an image becomes 0-255 RGB (shared with ``preview``)."""
    decorators = (
        click.option("--bands", type=BandsType(), default=None,
                     help="1-based bands in R,G,B order (e.g. 3,2,1), or one band to repeat. "
                          "Default: red/green/blue by colour interpretation, else 1,2,3."),
        click.option("--scale", type=click.Choice(SCALE_CHOICES), default=None,
                     help="How values become 0-255. Default: none for uint8, percentile (2-98 %) otherwise."),
        click.option("--scale-range", type=(float, float), default=None, metavar="LOW HIGH",
                     help="Map LOW..HIGH to 0..255 in every band (overrides --scale)."),
    )
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def _window_multiple(ctx, param, value: int) -> int:
    if value % NETWORK_MULTIPLE:
        raise click.BadParameter(f"{value} is not a multiple of {NETWORK_MULTIPLE} (the network's stride); "
                                 f"try {max(NETWORK_MULTIPLE, value // NETWORK_MULTIPLE * NETWORK_MULTIPLE)}")
    return value


def _collect(inputs, recursive: bool) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Inputs found for every item, and the items that found nothing (reported, the batch goes on)."""
    from roadseg.errors import BadInputError
    from roadseg.io.inputs import collect_inputs

    found: set[Path] = set()
    missing = []
    for item in inputs:
        try:
            found.update(collect_inputs([item], recursive=recursive))
        except BadInputError as error:
            missing.append((Path(item), str(error)))
    return sorted(found), missing


def _named_outputs(paths: list[Path], named: set[Path]) -> tuple[list[Path], list[Path]]:
    """Split found inputs into inputs and files that look like masks, probability maps or previews.

    Masks found in a directory or by a pattern (``<id>_mask.png`` beside DeepGlobe's ``<id>_sat.jpg``,
    or earlier outputs) are not predicted; a file named explicitly always is.
    """
    keep, ignored = [], []
    for path in paths:
        looks_like_output = path.stem.endswith(OUTPUT_STEM_SUFFIXES)
        (ignored if looks_like_output and path.resolve() not in named else keep).append(path)
    return keep, ignored


class _Bars:
    """tqdm bars over files and over windows of the current file (terminal only)."""

    def __init__(self, total_files: int) -> None:
        from tqdm import tqdm

        self.files = tqdm(total=total_files, unit="file", file=sys.stderr, position=0)
        self.windows = tqdm(total=0, unit="window", file=sys.stderr, position=1, leave=False)

    def window_progress(self, count: int, total: int) -> None:
        if self.windows.total != total:
            self.windows.reset(total=total)
        self.windows.update(count)

    def file_done(self, path: Path) -> None:
        self.files.set_postfix_str(path.name)
        self.files.update(1)
        self.windows.reset(total=0)

    def close(self) -> None:
        self.windows.close()
        self.files.close()


@click.command("predict")
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for <stem>_mask.tif / <id>_mask.png (and _prob.tif) outputs.")
@click.option("--recursive", is_flag=True, help="Look into subdirectories (and ** in patterns).")
@image_scaling_options
@click.option("--window", type=click.IntRange(min=NETWORK_MULTIPLE), default=1024, show_default=True,
              callback=_window_multiple, help="Window size in pixels (a multiple of 32).")
@click.option("--overlap", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.25, show_default=True,
              help="Overlap of neighbouring windows, as a fraction of the window.")
@click.option("--blend", type=click.Choice(BLEND_CHOICES), default="gaussian",
              show_default=True, help="Weighting of overlapping windows.")
@click.option("--tta", type=click.Choice(TTA_CHOICES), default="d4", show_default=True,
              help="Test-time augmentation: none, 4 flips, or the 8 flips and rotations of D-LinkNet.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Network inputs per forward call (default: 1 on CPU, 4 on GPU/Ascend).")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
              help="Probability above which a pixel is road.")
@click.option("--save-prob", is_flag=True, help="Also write the probability map <stem>_prob.tif.")
@click.option("--prob-dtype", type=click.Choice(PROB_DTYPE_CHOICES), default="float32", show_default=True,
              help="float32 (0-1, NaN nodata) or uint8 (0-254 for 0-1, 255 nodata).")
@click.option("--cog", is_flag=True, help="Write GeoTIFF outputs as Cloud Optimized GeoTIFFs with overviews.")
@click.option("--preview", is_flag=True,
              help="Also write <stem>_preview.png: the image with its mask, at most 2048 px (see `roadseg preview`).")
@click.option("--shard", type=ShardType(), default=None,
              help="Process only the K-th of N shares of the sorted inputs (for array jobs).")
@overwrite_opt
@json_opt
@quiet_opt
@model_options
def predict(inputs, output_dir, recursive, bands, scale, scale_range, window, overlap, blend, tta, batch_size,
            threshold, save_prob, prob_dtype, cog, preview, shard, overwrite, as_json, quiet, weights, arch,
            device, device_id, engine, threads, pynative):
    """Predict road masks for INPUTS (files, directories, glob patterns) into -o OUTPUT_DIR.

    GeoTIFFs give <stem>_mask.tif (1 road, 0 background, 255 nodata) with the input's CRS, transform
    and size; JPG/PNG give <id>_mask.png with 0/255 (104_sat.jpg -> 104_mask.png); --preview adds a
    quick-look <stem>_preview.png. Existing outputs are skipped unless --overwrite. Exit code 1 if any
    input failed.
    """
    from roadseg.inference.predict import check_settings, pending_outputs, predict_files
    from roadseg.io.atomic import check_writable
    from roadseg.io.inputs import select_shard

    named = {Path(item).resolve() for item in inputs if Path(item).is_file()}
    found, missing = _collect(inputs, recursive)
    for _, reason in missing:
        click.echo(f"Error: {reason}", err=True)
    paths, ignored = _named_outputs(found, named)
    if shard is not None:
        paths = select_shard(paths, *shard)
    check_writable(output_dir / "probe", overwrite=True)
    options = dict(window=window, overlap=overlap, blend=blend, tta=tta, threshold=threshold, bands=bands,
                   scale=scale, scale_range=scale_range, save_prob=save_prob, prob_dtype=prob_dtype,
                   cog=cog, overwrite=overwrite, preview=preview)

    check_settings(None, window=window, scale_range=scale_range)  # before the slow model load
    model = None  # a missing preview alone needs no model: it is drawn from the image and the mask
    if any(pending_outputs(path, output_dir, save_prob=save_prob, overwrite=overwrite) for path in paths):
        from roadseg.model.loaded import load_model

        model = load_model(weights, arch, device, device_id=device_id, batch_size=batch_size,
                           pynative=pynative, engine=engine, threads=threads)
        if model.engine == "mindspore" and model.device == "CPU" and model.batch_size > 1:
            click.echo(f"Warning: batch size {model.batch_size} on the CPU; MindSpore's transposed "
                       "convolutions were seen to run orders of magnitude slower at batch > 1 there "
                       "(see benchmarks/predict.py); --batch-size 1 is the safe choice", err=True)

    bars = _Bars(len(paths)) if not (quiet or as_json) and sys.stderr.isatty() else None

    def on_file(path: Path, result, reason: str | None) -> None:
        if reason is not None:
            (bars.files.write if bars else lambda text: click.echo(text, err=True))(f"Error: {reason}")
        if bars is not None:
            bars.file_done(path)

    try:
        batch = predict_files(model, paths, output_dir, on_file=on_file,
                              progress=bars.window_progress if bars else None, **options)
    finally:
        if bars is not None:
            bars.close()

    batch.failed[:0] = missing
    summary = batch.summary()
    summary["ignored"] = [str(path) for path in ignored]
    if model is not None:
        summary["model"] = {"arch": model.arch, "device": model.device, "engine": model.engine,
                            "threads": model.threads, "weights": model.weights_label,
                            "batch_size": model.batch_size}
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    elif not quiet:
        click.echo(f"{summary['inputs']} input(s): {len(batch.outputs)} output(s) written, "
                   f"{len(batch.skipped)} skipped (already there; --overwrite replaces them), "
                   f"{len(batch.failed)} failed; {batch.windows_run} window(s) in {batch.seconds:.1f} s")
        if ignored:
            click.echo(f"{len(ignored)} file(s) named like masks, probability maps or previews were not predicted "
                       f"(name them explicitly to include them)", err=True)
    if batch.failed:
        if not as_json:
            click.echo(f"{len(batch.failed)} input(s) failed (errors above); the others were processed",
                       err=True)
        sys.exit(1)
