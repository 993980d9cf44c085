"""``roadseg predict``: road masks (and probability maps) for scenes of any size, keeping georeferencing."""

from __future__ import annotations

import json
import signal
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import click

from roadseg.cli.options import (
    ModelChoice,
    ParsedType,
    gather,
    image_scaling_options,
    json_opt,
    model_options,
    output_options,
    predict_options,
    quiet_opt,
)
from roadseg.cli.progress import FileBars, progress_wanted
from roadseg.inference.options import OutputOptions, PredictOptions
from roadseg.interrupts import EXIT_STATUS, Terminated
from roadseg.io.inputs import parse_shard
from roadseg.io.raster_read import ImageScaling

OUTPUT_STEM_SUFFIXES = ("_mask", "_prob", "_uncertainty", "_preview")


@dataclass(frozen=True)
class InputSelection:
    """The INPUTS as typed (files, directories, patterns, URLs, STAC items, @lists), whether to look into
    subdirectories, which share of them this process takes (``--shard K/N``), and the STAC asset to read."""

    items: tuple[str, ...]
    recursive: bool
    shard: tuple[int, int] | None
    asset: str | None = None


def _collect(inputs: InputSelection) -> tuple[list, list[tuple[str, str]]]:
    """Inputs found for every item, and the items that found nothing (reported, the batch goes on)."""
    from roadseg.errors import BadInputError
    from roadseg.io.inputs import collect_sources, unique_inputs
    from roadseg.io.remote import is_url, redact

    found: list = []
    missing = []
    for item in inputs.items:
        try:
            found.extend(collect_sources([item], recursive=inputs.recursive, asset=inputs.asset))
        except BadInputError as error:
            missing.append((redact(item) if is_url(item) else Path(item), str(error)))
    return unique_inputs(found), missing


def _named(items: tuple[str, ...]) -> set[Path]:
    """The files named explicitly, on the command line or in an @list."""
    from roadseg.errors import BadInputError
    from roadseg.io.inputs import expand_lists

    named = set()
    for item in items:
        try:
            named.update(Path(entry).resolve() for entry in expand_lists([item]) if Path(entry).is_file())
        except BadInputError:  # a missing list, reported by _collect
            continue
    return named


def _named_outputs(paths: list, named: set[Path]) -> tuple[list, list[Path]]:
    """Split found inputs into inputs and files that look like masks, probability maps or previews.

    Masks found in a directory or by a pattern (``<id>_mask.png`` beside DeepGlobe's ``<id>_sat.jpg``,
    or earlier outputs) are not predicted; a file named explicitly always is.
    """
    keep, ignored = [], []
    for path in paths:
        looks_like_output = isinstance(path, Path) and path.stem.endswith(OUTPUT_STEM_SUFFIXES)
        (ignored if looks_like_output and path.resolve() not in named else keep).append(path)
    return keep, ignored


@click.command("predict")
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for <stem>_mask.tif / <id>_mask.png (and _prob.tif) outputs.")
@click.option("--recursive", is_flag=True, help="Look into subdirectories (and ** in patterns).")
@image_scaling_options
@predict_options
@output_options
@click.option("--shard", type=ParsedType("K/N", parse_shard), default=None,
              help="Process only the K-th of N shares of the sorted inputs (for array jobs).")
@click.option("--asset", default=None, metavar="KEY",
              help="STAC items: the asset to read (default: 'visual', else the red, green and blue assets).")
@gather("inputs", ("inputs", "recursive", "shard", "asset"),
        lambda inputs, recursive, shard, asset: InputSelection(inputs, recursive, shard, asset))
@json_opt
@quiet_opt
@model_options
def predict(inputs: InputSelection, output_dir: Path, scaling: ImageScaling, options: PredictOptions,
            output: OutputOptions, as_json: bool, quiet: bool, model: ModelChoice) -> None:
    """Predict road masks for INPUTS (files, directories, glob patterns, URLs, STAC items) into -o OUTPUT_DIR.

    GeoTIFFs give <stem>_mask.tif (1 road, 0 background, 255 nodata) with the input's CRS, transform
    and size; JPG/PNG give <id>_mask.png with 0/255 (104_sat.jpg -> 104_mask.png); --preview adds a
    quick-look <stem>_preview.png. Existing outputs are skipped unless --overwrite. Exit code 1 if any
    input failed.

    https://, s3:// and gs:// URLs are read window by window with range requests (credentials from
    the usual environment variables); a STAC item (.json file or item URL) is read through its visual
    asset or its red, green and blue assets (--asset picks another); @list.txt names inputs, one a line.
    Outputs are named after the URL's or item's stem.
    """
    from roadseg.inference.predict import check_settings, predict_files
    from roadseg.io.atomic import check_writable
    from roadseg.io.inputs import select_shard

    named = _named(inputs.items)
    found, missing = _collect(inputs)
    for _, reason in missing:
        click.echo(f"Error: {reason}", err=True)
    paths, ignored = _named_outputs(found, named)
    if inputs.shard is not None:
        paths = select_shard(paths, *inputs.shard)
    check_writable(output_dir / "probe", overwrite=True)
    check_settings(None, options, output)  # before the slow model load
    loaded = None  # a missing preview alone needs no model: it is drawn from the image and the mask
    if _needs_model(paths, output_dir, output):
        loaded = model.load()
        _warn_slow_batches(loaded, options)

    bars = FileBars(len(paths)) if progress_wanted(quiet or as_json) else None
    done = _Finished(bars.on_file if bars else _echo_failure)
    try:
        batch = predict_files(loaded, paths, output_dir, options, scaling, output, on_file=done,
                              progress=bars.window_progress if bars else None)
    except (KeyboardInterrupt, Terminated) as stop:
        if bars is not None:
            bars.close()
            bars = None
        done.report_interrupted(len(paths), stop)
    finally:
        if bars is not None:
            bars.close()
    batch.failed[:0] = missing
    _report(batch, ignored, loaded, as_json, quiet)


class _Finished:
    """Passes each input's outcome on, and keeps the outputs written, to name them if interrupted."""

    def __init__(self, on_file) -> None:
        self.on_file, self.inputs, self.written = on_file, 0, []

    def __call__(self, path: Path, result, reason: str | None) -> None:
        self.inputs += 1
        if result is not None:
            self.written.extend(result.outputs)
        self.on_file(path, result, reason)

    def report_interrupted(self, total: int, stop: BaseException) -> None:
        """One line saying what was finished (all of it complete; nothing half-written is left), then
        the exit status of the signal."""
        names = ", ".join(path.name for path in self.written[:5]) + (", ..." if len(self.written) > 5 else "")
        written = f"{len(self.written)} output(s) written ({names})" if self.written else "no output written"
        signum = signal.SIGINT if isinstance(stop, KeyboardInterrupt) else signal.SIGTERM
        click.echo(f"Error: interrupted after {self.inputs} of {total} input(s): {written}, nothing "
                   "half-written left; run the same command again to do the rest", err=True)
        sys.exit(EXIT_STATUS[signum])


def _needs_model(paths: list[Path], output_dir: Path, output: OutputOptions) -> bool:
    """Whether any input still lacks a mask or probability map (a missing preview needs no model)."""
    from roadseg.errors import BadInputError
    from roadseg.inference.predict import pending_outputs

    for path in paths:
        try:
            if pending_outputs(path, output_dir, replace(output, preview=False)):
                return True
        except BadInputError:  # a file in the way, reported when its input is reached
            continue
    return False


def _warn_slow_batches(model, options: PredictOptions) -> None:
    batch_size = options.batch_size or model.batch_size
    if model.engine == "mindspore" and model.device == "CPU" and batch_size > 1:
        click.echo(f"Warning: batch size {batch_size} on the CPU; MindSpore's transposed "
                   "convolutions were seen to run orders of magnitude slower at batch > 1 there "
                   "(see benchmarks/predict.py); --batch-size 1 is the safe choice", err=True)


def _echo_failure(path: Path, result, reason: str | None) -> None:
    if reason is not None:
        click.echo(f"Error: {reason}", err=True)


def _report(batch, ignored: list[Path], model, as_json: bool, quiet: bool) -> None:
    """The summary (JSON or a line), the files not predicted, and exit 1 when an input failed."""
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
