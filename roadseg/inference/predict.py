"""Road probability maps and masks for arrays and files: the library behind ``roadseg predict``.

``model`` is a loaded :class:`~roadseg.model.loaded.RoadModel` (its ``forward``, ``convention`` and
``batch_size`` are used) or any predictor callable ``(N, 3, h, w) float32 -> (N, h, w)``, fed the
published weights' input convention, which is how tests and benchmarks run without MindSpore. The
settings travel as :class:`PredictOptions`, :class:`ImageScaling` and :class:`OutputOptions`.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from roadseg.errors import BadInputError, BadParameterError, RoadsegError
from roadseg.inference.gsd import AUTO, GsdPlan, plan_gsd
from roadseg.inference.options import OutputOptions, PredictOptions, provenance_settings
from roadseg.inference.resample import resample_rows
from roadseg.inference.sliding import DEFAULT_CALL_SIZE, ArraySource, SlidingStats, WindowSource, predict_rows
from roadseg.inference.tta import Predictor, tta_transforms
from roadseg.inference.windows import window_grid
from roadseg.io.atomic import atomic_output
from roadseg.io.grid import RasterGrid
from roadseg.io.inputs import Input, as_input
from roadseg.io.raster_open import VERSION_TAG, WEIGHTS_TAG, written_by_roadseg
from roadseg.io.raster_read import ImageScaling, RasterSource, io_env
from roadseg.io.raster_write import (
    encode_mask,
    encode_prob,
    open_mask_writer,
    open_prob_writer,
    open_uncertainty_writer,
)
from roadseg.model.convention import ZOO_CONVENTION, InputConvention, check_network_window
from roadseg.model.loaded import RoadModel
from roadseg.preview import render_preview

PLAIN_SUFFIXES = (".jpg", ".jpeg", ".png")

Progress = Callable[[int, int], None]
"""Called with ``(windows just finished, windows in this file)``."""


def _resolve(model, options: PredictOptions) -> tuple[Predictor, InputConvention, PredictOptions]:
    """A predictor, its input convention and the options with the inputs per call settled.

    A RoadModel (or any object with ``forward``, ``convention`` and ``batch_size``) brings its own; a
    bare callable takes the published weights' convention and :data:`DEFAULT_CALL_SIZE`.
    """
    if hasattr(model, "forward") and hasattr(model, "convention"):
        per_call = options.batch_size or int(model.batch_size)
        if per_call == model.batch_size:
            return model.forward, model.convention, replace(options, batch_size=per_call)
        return (lambda batch: model.forward(batch, per_call)), model.convention, replace(options, batch_size=per_call)
    if callable(model):
        return model, ZOO_CONVENTION, replace(options, batch_size=options.batch_size or DEFAULT_CALL_SIZE)
    raise TypeError(f"model must be a RoadModel or a predictor callable, got {type(model).__name__}")


def _as_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) image, got {image.shape}")
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return image[:, :, :3]


def predict_array(model, image: np.ndarray, options: PredictOptions | None = None, *,
                  valid: np.ndarray | None = None, progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Road probability of every pixel of an RGB image in 0-255.

    Parameters
    ----------
    model : RoadModel or callable
        The network, or a predictor ``(N, 3, h, w) -> (N, h, w)`` fed the published weights' input
        (B,G,R ``x/255*3.2-1.6``); any object with ``forward``, ``convention`` and ``batch_size`` works too.
    image : (H, W, 3) array
        RGB in 0-255, any numeric dtype; (H, W) or (H, W, 1) is repeated into three channels and a
        fourth channel is ignored.
    options : PredictOptions, optional
        Window, overlap, blending, TTA and batch size (``threshold`` is not used: this returns
        probabilities; nor is ``gsd``: an array has no georeferencing, so it is predicted as it is).
    valid : (H, W) bool array, optional
        False marks nodata: never road, NaN in the result; windows entirely nodata are not run.

    Returns
    -------
    (H, W) float32 array
        Probabilities in [0, 1], NaN where ``valid`` is False.

    >>> import numpy as np
    >>> halves = lambda batch: np.full((batch.shape[0], *batch.shape[2:]), 0.5, np.float32)
    >>> predict_array(halves, np.zeros((5, 7, 3), np.uint8), PredictOptions(window=4, tta="flip")).shape
    (5, 7)
    """
    predictor, convention, options = _resolve(model, options or PredictOptions())
    source = ArraySource(_as_rgb(image), None if valid is None else np.asarray(valid, bool))
    out = np.empty((source.height, source.width), np.float32)
    for block in predict_rows(source, predictor, convention.to_network, options, progress=progress):
        out[block.row:block.row + block.prob.shape[0]] = block.prob
    return out


@dataclass(frozen=True)
class OutputPaths:
    """Where one input's outputs go; ``prob`` is None without ``save_prob``, ``preview`` without
    ``preview``, ``uncertainty`` without ``save_uncertainty``; ``png`` for plain images."""

    mask: Path
    prob: Path | None
    png: bool
    preview: Path | None = None
    uncertainty: Path | None = None

    def wanted(self) -> list[Path]:
        return [path for path in (self.mask, self.prob, self.uncertainty, self.preview) if path is not None]


def output_paths(path: Input | str, out_dir: Path | str, output: OutputOptions | None = None) -> OutputPaths:
    """``<stem>_mask.tif``/``<stem>_prob.tif``/``<stem>_uncertainty.tif``; for JPG/PNG ``<id>_mask.png``
    (``104_sat.jpg`` -> ``104``); with ``output.preview`` also ``<stem>_preview.png`` (``<id>_preview.png``).

    >>> output_paths("scenes/104_sat.jpg", "out", OutputOptions(save_prob=True)).mask.name
    '104_mask.png'
    """
    output = output or OutputOptions()
    path, out_dir = as_input(path), Path(out_dir)  # a URL or STAC item is named by its stem, too
    stem = path.stem
    png = path.suffix.lower() in PLAIN_SUFFIXES
    if png:
        stem = stem[:-len("_sat")] if stem.endswith("_sat") and len(stem) > len("_sat") else stem
    return OutputPaths(out_dir / f"{stem}_mask.{'png' if png else 'tif'}",
                       out_dir / f"{stem}_prob.tif" if output.save_prob else None, png=png,
                       preview=out_dir / f"{stem}_preview.png" if output.preview else None,
                       uncertainty=out_dir / f"{stem}_uncertainty.tif" if output.save_uncertainty else None)


def pending_outputs(path: Input | str, out_dir: Path | str, output: OutputOptions | None = None) -> list[Path]:
    """The outputs of ``path`` that a run would write (all with ``output.overwrite``, else the missing ones).

    An output in the way that roadseg did not write (no ``ROADSEG_VERSION`` tag: the ground-truth
    ``<id>_mask.png`` of a DeepGlobe folder, say) is neither skipped as done nor replaced:
    :class:`~roadseg.errors.BadInputError` names it.
    """
    output = output or OutputOptions()
    targets = output_paths(path, out_dir, output)
    for target in targets.wanted():
        if target.exists() and not written_by_roadseg(target):
            raise BadInputError(f"{target}: already exists and roadseg did not write it (no ROADSEG tags), so it "
                                f"is neither skipped nor replaced; predict {as_input(path).name} into another folder")
    wanted = targets.wanted()
    return wanted if output.overwrite else [target for target in wanted if not target.exists()]


@dataclass
class FileResult:
    """What :func:`predict_file` did for one input."""

    input: Input
    outputs: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    height: int = 0
    width: int = 0
    windows_run: int = 0
    windows_skipped: int = 0
    seconds: float = 0.0
    preview: Path | None = None  # the quick-look PNG, with ``preview``


def predict_file(model, path: Input | str, out_dir: Path | str, options: PredictOptions | None = None,
                 scaling: ImageScaling | None = None, output: OutputOptions | None = None, *,
                 progress: Progress | None = None) -> FileResult:
    """Predict one raster window by window and write its mask (and probability map) beside each other.

    ``options`` say how the network runs over the scene, ``scaling`` how the image becomes 0-255 RGB,
    ``output`` what is written. Outputs that already exist are left alone and listed in ``skipped``
    unless ``output.overwrite``; if all exist, the input is not even opened. Outputs are written under
    temporary names and renamed, so a failure leaves nothing behind. Raises
    :class:`~roadseg.errors.BadInputError` for unreadable input. With ``output.preview``, a quick-look
    PNG of the image and its mask (:func:`roadseg.preview.render_preview`) follows the mask; it needs
    no model when only the preview is missing.
    """
    options, scaling, output = options or PredictOptions(), scaling or ImageScaling(), output or OutputOptions()
    check_settings(model, options, output)
    started = time.perf_counter()
    path = as_input(path)
    targets = output_paths(path, out_dir, output)
    todo = pending_outputs(path, out_dir, output)
    result = FileResult(path, skipped=[p for p in targets.wanted() if p not in todo], preview=targets.preview)
    predicted = [target for target in todo if target != targets.preview]  # what needs the model
    if predicted:
        stats = _predict_into(model, path, targets, predicted, (options, scaling, output), progress)
        result.height, result.width = stats.height, stats.width
        result.windows_run, result.windows_skipped = stats.windows_run, stats.windows_skipped
    if targets.preview in todo:  # from the image and the mask just written (or already there)
        preview_result = render_preview(path, targets.preview, mask=targets.mask, scaling=scaling,
                                        overwrite=output.overwrite)
        result.height, result.width = preview_result.source_height, preview_result.source_width
    result.outputs = todo
    result.seconds = time.perf_counter() - started
    return result


@dataclass
class _RunStats(SlidingStats):
    height: int = 0
    width: int = 0


def _predict_into(model, path: Path, targets: OutputPaths, predicted: list[Path],
                  settings: tuple[PredictOptions, ImageScaling, OutputOptions], progress: Progress | None
                  ) -> _RunStats:
    """Run the model over ``path`` and stream its rows into the outputs in ``predicted``."""
    options, scaling, output = settings
    predictor, convention, options = _resolve(model, options)
    stats = _RunStats()
    with io_env(), RasterSource(path, scaling) as raster:
        stats.height, stats.width = raster.height, raster.width
        grid = RasterGrid(raster.height, raster.width)
        if not raster.is_plain_image and (raster.crs is not None or not raster.transform.is_identity):
            grid = RasterGrid(raster.height, raster.width, raster.crs, raster.transform)
        plan = gsd_plan(model, options, raster)
        source = _network_source(raster, plan)
        total = window_grid(source.height, source.width, options.window, options.overlap).count
        step = None if progress is None else (lambda count: progress(count, total))
        rows = predict_rows(source, predictor, convention.to_network, options, stats=stats, progress=step,
                            spread=targets.uncertainty in predicted)
        if plan.resampled:  # back onto the input's grid, its own nodata mask deciding what is valid
            rows = resample_rows(rows, plan.shape, (raster.height, raster.width), raster.read_validity)
        _write_outputs(rows, targets, predicted, grid, output, threshold=options.threshold,
                       tags={**_provenance(model, options), **plan.tags()})
    return stats


def gsd_plan(model, options: PredictOptions, raster: RasterSource) -> GsdPlan:
    """At which GSD the network sees ``raster`` (see :func:`roadseg.inference.gsd.plan_gsd`).

    A georeferenced input has its GSD; a JPG/PNG or a raster without a CRS has none unless the options
    give ``input_gsd``. The weights' GSD is ``model.gsd`` (None for a bare predictor callable, whose
    ``auto`` is ``native``); weights that record none leave ``auto`` at ``native`` with a warning naming
    the fix.
    """
    weights_gsd = getattr(model, "gsd", None)
    plan = plan_gsd(options.gsd, raster.gsd, weights_gsd, (raster.height, raster.width))
    if (weights_gsd is None and options.gsd.gsd == AUTO and plan.input_gsd is not None
            and hasattr(model, "forward")):
        label = getattr(model, "weights_label", "the model")
        warnings.warn(f"{raster.path}: {label} records no training GSD, so the network sees this "
                      f"{plan.input_gsd:.3g} m input as it is; give `gsd` METRES (the resolution the weights "
                      "were trained at) to resample it", stacklevel=3)
    return plan


def _network_source(raster: RasterSource, plan: GsdPlan) -> WindowSource:
    """What the sliding windows read: the raster, or its resampled view; a JPG/PNG is decoded once (small,
    and slow to seek in)."""
    view = raster if plan.shape is None else raster.resampled(plan.shape)
    return ArraySource(*view.read_all()) if raster.is_plain_image else view


def _provenance(model, options: PredictOptions) -> dict[str, str]:
    """GeoTIFF tags saying which weights and settings made an output, so a mask found later explains
    itself (a smoke-trained or untrained model says so in every file)."""
    from roadseg import __version__

    tags = {VERSION_TAG: __version__}
    if hasattr(model, "weights_label"):
        tags.update({WEIGHTS_TAG: str(model.weights_label), "ROADSEG_ARCH": str(model.arch)})
    tags.update(provenance_settings(options))
    return tags


def _write_outputs(rows, targets: OutputPaths, todo: list[Path], grid: RasterGrid, output: OutputOptions, *,
                   threshold: float, tags: dict[str, str] | None = None) -> None:
    """Stream row blocks into the outputs in ``todo``, each under a temporary name until complete."""
    with contextlib.ExitStack() as stack:
        temps = {target: stack.enter_context(atomic_output(target, output.overwrite)) for target in todo}
        writers = []
        try:
            for target, (open_writer, encode) in _encoders(targets, grid, output, threshold, tags).items():
                if target in temps:
                    writers.append((open_writer(temps[target]), encode))
            for block in rows:
                for writer, encode in writers:
                    writer.write(block.row, encode(block))
            for writer, _ in writers:
                writer.close()
        except BaseException:
            for writer, _ in writers:
                writer.abort()
            raise


def _encoders(targets: OutputPaths, grid: RasterGrid, output: OutputOptions, threshold: float,
              tags: dict[str, str] | None) -> dict[Path | None, tuple[Callable, Callable]]:
    """For each raster output: how to open its writer on a temporary path, and how to encode a row block."""
    cog = output.cog and not targets.png
    return {
        targets.mask: (lambda temp: open_mask_writer(temp, grid, png=targets.png, cog=output.cog, tags=tags),
                       lambda b: encode_mask(b.prob, b.valid, threshold, png=targets.png)),
        targets.prob: (lambda temp: open_prob_writer(temp, grid, output.prob_dtype, cog=cog, tags=tags),
                       lambda b: encode_prob(b.prob, b.valid, output.prob_dtype)),
        targets.uncertainty: (lambda temp: open_uncertainty_writer(temp, grid, cog=cog, tags=tags),
                              lambda b: encode_prob(b.variance, b.valid)),
    }


@dataclass
class BatchResult:
    """What :func:`predict_files` did for a list of inputs."""

    results: list[FileResult] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def outputs(self) -> list[Path]:
        return [output for result in self.results for output in result.outputs]

    @property
    def skipped(self) -> list[Path]:
        return [output for result in self.results for output in result.skipped]

    @property
    def windows_run(self) -> int:
        return sum(result.windows_run for result in self.results)

    def summary(self) -> dict:
        """A JSON-ready summary: inputs, outputs, skipped, failed with reasons, windows run, seconds."""
        return {
            "inputs": len(self.results) + len(self.failed),
            "outputs": [str(path) for path in self.outputs],
            "skipped": [str(path) for path in self.skipped],
            "failed": [{"input": str(path), "reason": reason} for path, reason in self.failed],
            "windows_run": self.windows_run,
            "windows_skipped": sum(result.windows_skipped for result in self.results),
            "seconds": round(self.seconds, 3),
            "files": [{**asdict(result), "input": str(result.input),
                       "outputs": [str(p) for p in result.outputs],
                       "skipped": [str(p) for p in result.skipped],
                       "preview": None if result.preview is None else str(result.preview),
                       "seconds": round(result.seconds, 3)} for result in self.results],
        }


def _claim_outputs(path: Path, out_dir: Path | str, claimed: dict[Path, Path], output: OutputOptions) -> None:
    """Refuse an input whose outputs another input of the batch writes (``a.tif`` and ``a.jpg`` both give
    ``a_prob.tif`` and ``a_preview.png``), so neither silently replaces nor skips the other's."""
    for target in output_paths(path, out_dir, output).wanted():
        if target in claimed:
            raise BadInputError(f"{path}: its output {target.name} is also {claimed[target].name}'s; rename one "
                                "of them or predict them into different folders")
        claimed[target] = path


def check_settings(model, options: PredictOptions, output: OutputOptions | None = None) -> None:
    """Refuse a window the network cannot take, and an uncertainty map without TTA views to differ, before
    the first file is read. ``model`` None means a :class:`RoadModel` is still to be loaded (check before
    the slow load); a stand-in predictor takes any window. (Everything else was checked when the options
    were made.)"""
    if model is None or isinstance(model, RoadModel):
        check_network_window(options.window)
    if output is not None and output.save_uncertainty and len(tta_transforms(options.tta)) == 1:
        raise BadParameterError("save_uncertainty", "is the variance of the test-time augmentation's views, "
                                f"and `tta` {options.tta.value} has one view; use `tta` d4 (8 views) or flip")


def predict_files(model, paths: Iterable[Input | str], out_dir: Path | str, options: PredictOptions | None = None,
                  scaling: ImageScaling | None = None, output: OutputOptions | None = None, *,
                  on_file: Callable[[Path, FileResult | None, str | None], None] | None = None,
                  progress: Progress | None = None) -> BatchResult:
    """Run :func:`predict_file` over ``paths``, going on past inputs that fail with a roadseg error.

    ``on_file(path, result, reason)`` is called after each input (``reason`` set when it failed).
    """
    options, output = options or PredictOptions(), output or OutputOptions()
    check_settings(model, options, output)
    started = time.perf_counter()
    batch = BatchResult()
    claimed: dict[Path, Path] = {}  # output -> the input of this batch that writes it
    for path in paths:
        path = as_input(path)
        try:
            _claim_outputs(path, out_dir, claimed, output)
            result = predict_file(model, path, out_dir, options, scaling, output, progress=progress)
        except RoadsegError as error:
            batch.failed.append((path, str(error)))
            if on_file is not None:
                on_file(path, None, str(error))
            continue
        batch.results.append(result)
        if on_file is not None:
            on_file(path, result, None)
    batch.seconds = time.perf_counter() - started
    return batch
