"""Road probability maps and masks for arrays and files: the library behind ``roadseg predict``.

``model`` is a loaded :class:`~roadseg.model.loaded.RoadModel` (its ``forward``, ``convention`` and
``batch_size`` are used) or any predictor callable ``(N, 3, h, w) float32 -> (N, h, w)`` with the
input convention given separately, which is how tests and benchmarks run without MindSpore.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from roadseg.errors import BadInputError, RoadsegError
from roadseg.inference.blending import Blend
from roadseg.inference.sliding import ArraySource, SlidingStats, WindowSource, predict_rows
from roadseg.inference.tta import TTA, Predictor
from roadseg.inference.windows import window_grid
from roadseg.io.atomic import atomic_output
from roadseg.io.raster_open import WEIGHTS_TAG
from roadseg.io.raster_read import RasterSource, Scale, check_scale_range, io_env
from roadseg.io.raster_write import (
    OutputGrid,
    ProbDtype,
    encode_mask,
    encode_prob,
    open_mask_writer,
    open_prob_writer,
)
from roadseg.model.convention import ZOO_CONVENTION, InputConvention, check_network_window
from roadseg.model.loaded import RoadModel
from roadseg.preview import render_preview

PLAIN_SUFFIXES = (".jpg", ".jpeg", ".png")
DEFAULT_CALL_SIZE = 8
"""Network inputs per predictor call for a bare predictor (a RoadModel says its own batch size)."""

Progress = Callable[[int, int], None]
"""Called with ``(windows just finished, windows in this file)``."""


def _resolve(model, convention: InputConvention | None, batch_size: int | None
             ) -> tuple[Predictor, InputConvention, int]:
    """A predictor, its input convention and the inputs per call, from a RoadModel or a callable."""
    if hasattr(model, "forward") and hasattr(model, "convention"):
        return model.forward, convention or model.convention, batch_size or int(model.batch_size)
    if callable(model):
        return model, convention or ZOO_CONVENTION, batch_size or DEFAULT_CALL_SIZE
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


def predict_array(model, image: np.ndarray, *, valid: np.ndarray | None = None, window: int = 1024,
                  overlap: float = 0.25, blend: Blend | str = Blend.GAUSSIAN, tta: TTA | str = TTA.D4,
                  convention: InputConvention | None = None, batch_size: int | None = None,
                  progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Road probability of every pixel of an RGB image in 0-255.

    Parameters
    ----------
    model : RoadModel or callable
        The network, or a predictor ``(N, 3, h, w) -> (N, h, w)`` (then ``convention`` applies,
        default the published weights' B,G,R ``x/255*3.2-1.6``).
    image : (H, W, 3) array
        RGB in 0-255, any numeric dtype; (H, W) or (H, W, 1) is repeated into three channels and a
        fourth channel is ignored.
    valid : (H, W) bool array, optional
        False marks nodata: never road, NaN in the result; windows entirely nodata are not run.

    Returns
    -------
    (H, W) float32 array
        Probabilities in [0, 1], NaN where ``valid`` is False.

    >>> import numpy as np
    >>> halves = lambda batch: np.full((batch.shape[0], *batch.shape[2:]), 0.5, np.float32)
    >>> predict_array(halves, np.zeros((5, 7, 3), np.uint8), window=4, tta="flip").shape
    (5, 7)
    """
    predictor, convention, per_call = _resolve(model, convention, batch_size)
    source = ArraySource(_as_rgb(image), None if valid is None else np.asarray(valid, bool))
    out = np.empty((source.height, source.width), np.float32)
    step = None if progress is None else (lambda count: progress(count))
    for block in predict_rows(source, predictor, convention.to_network, window=window, overlap=overlap,
                              blend=blend, tta=tta, batch_size=per_call, progress=step):
        out[block.row:block.row + block.prob.shape[0]] = block.prob
    return out


@dataclass(frozen=True)
class OutputPaths:
    """Where one input's outputs go; ``prob`` is None without ``save_prob``, ``preview`` without
    ``preview``; ``png`` for plain images."""

    mask: Path
    prob: Path | None
    png: bool
    preview: Path | None = None

    def wanted(self) -> list[Path]:
        return [path for path in (self.mask, self.prob, self.preview) if path is not None]


def output_paths(path: Path | str, out_dir: Path | str, *, save_prob: bool = False,
                 preview: bool = False) -> OutputPaths:
    """``<stem>_mask.tif``/``<stem>_prob.tif``; for JPG/PNG ``<id>_mask.png`` (``104_sat.jpg`` -> ``104``);
    with ``preview`` also ``<stem>_preview.png`` (``<id>_preview.png``).

    >>> output_paths("scenes/104_sat.jpg", "out", save_prob=True).mask.name
    '104_mask.png'
    """
    path, out_dir = Path(path), Path(out_dir)
    stem = path.stem
    png = path.suffix.lower() in PLAIN_SUFFIXES
    if png:
        stem = stem[:-len("_sat")] if stem.endswith("_sat") and len(stem) > len("_sat") else stem
    return OutputPaths(out_dir / f"{stem}_mask.{'png' if png else 'tif'}",
                       out_dir / f"{stem}_prob.tif" if save_prob else None, png=png,
                       preview=out_dir / f"{stem}_preview.png" if preview else None)


def pending_outputs(path: Path | str, out_dir: Path | str, *, save_prob: bool = False, preview: bool = False,
                    overwrite: bool = False) -> list[Path]:
    """The outputs of ``path`` that a run would write (all with ``overwrite``, else the missing ones)."""
    wanted = output_paths(path, out_dir, save_prob=save_prob, preview=preview).wanted()
    return wanted if overwrite else [output for output in wanted if not output.exists()]


@dataclass
class FileResult:
    """What :func:`predict_file` did for one input."""

    input: Path
    outputs: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    height: int = 0
    width: int = 0
    windows_run: int = 0
    windows_skipped: int = 0
    seconds: float = 0.0
    preview: Path | None = None  # the quick-look PNG, with ``preview``


def predict_file(model, path: Path | str, out_dir: Path | str, *, window: int = 1024, overlap: float = 0.25,
                 blend: Blend | str = Blend.GAUSSIAN, tta: TTA | str = TTA.D4, threshold: float = 0.5,
                 bands: Sequence[int] | None = None, scale: Scale | str | None = None,
                 scale_range: tuple[float, float] | None = None, save_prob: bool = False,
                 prob_dtype: ProbDtype | str = ProbDtype.FLOAT32, cog: bool = False,
                 overwrite: bool = False, preview: bool = False, convention: InputConvention | None = None,
                 batch_size: int | None = None, progress: Progress | None = None) -> FileResult:
    """Predict one raster window by window and write its mask (and probability map) beside each other.

    Outputs that already exist are left alone and listed in ``skipped`` unless ``overwrite``; if all
    exist, the input is not even opened. Outputs are written under temporary names and renamed, so a
    failure leaves nothing behind. Raises :class:`~roadseg.errors.BadInputError` for unreadable input.
    With ``preview``, a quick-look PNG of the image and its mask (:func:`roadseg.preview.render_preview`)
    follows the mask; it needs no model when only the preview is missing.
    """
    check_settings(model, window=window, scale_range=scale_range)
    started = time.perf_counter()
    path = Path(path)
    targets = output_paths(path, out_dir, save_prob=save_prob, preview=preview)
    todo = pending_outputs(path, out_dir, save_prob=save_prob, preview=preview, overwrite=overwrite)
    result = FileResult(path, skipped=[p for p in targets.wanted() if p not in todo], preview=targets.preview)
    predicted = [output for output in todo if output != targets.preview]  # what needs the model
    if predicted:
        predictor, convention, per_call = _resolve(model, convention, batch_size)
        with io_env(), RasterSource(path, bands=None if bands is None else tuple(bands), scale=scale,
                                    scale_range=scale_range) as raster:
            result.height, result.width = raster.height, raster.width
            source: WindowSource = raster
            grid = OutputGrid(raster.height, raster.width)
            if raster.is_plain_image:  # small and slow to seek in: decode once
                source = ArraySource(*raster.read_all())
            elif raster.crs is not None or not raster.transform.is_identity:
                grid = OutputGrid(raster.height, raster.width, raster.crs, raster.transform)
            total = window_grid(raster.height, raster.width, window, overlap).count
            step = None if progress is None else (lambda count: progress(count, total))
            stats = SlidingStats()
            rows = predict_rows(source, predictor, convention.to_network, window=window, overlap=overlap,
                                blend=blend, tta=tta, batch_size=per_call, stats=stats, progress=step)
            provenance = _provenance(model, tta=tta, threshold=threshold, window=window, overlap=overlap,
                                     blend=blend)
            _write_outputs(rows, targets, predicted, grid, threshold=threshold, prob_dtype=prob_dtype, cog=cog,
                           overwrite=overwrite, tags=provenance)
        result.windows_run, result.windows_skipped = stats.windows_run, stats.windows_skipped
    if targets.preview in todo:  # from the image and the mask just written (or already there)
        preview_result = render_preview(path, targets.preview, mask=targets.mask, bands=bands, scale=scale,
                                        scale_range=scale_range, overwrite=overwrite)
        result.height, result.width = preview_result.source_height, preview_result.source_width
    result.outputs = todo
    result.seconds = time.perf_counter() - started
    return result


def _provenance(model, **settings) -> dict[str, str]:
    """GeoTIFF tags saying which weights and settings made an output, so a mask found later explains
    itself (a smoke-trained or untrained model says so in every file)."""
    from roadseg import __version__

    tags = {"ROADSEG_VERSION": __version__}
    if hasattr(model, "weights_label"):
        tags.update({WEIGHTS_TAG: str(model.weights_label), "ROADSEG_ARCH": str(model.arch)})
    for name, value in settings.items():
        tags[f"ROADSEG_{name.upper()}"] = str(getattr(value, "value", value))
    return tags


def _write_outputs(rows, targets: OutputPaths, todo: list[Path], grid: OutputGrid, *, threshold: float,
                   prob_dtype: ProbDtype | str, cog: bool, overwrite: bool, tags: dict[str, str] | None = None
                   ) -> None:
    """Stream row blocks into the outputs in ``todo``, each under a temporary name until complete."""
    with atomic_output(todo[0], overwrite) as first_temp, \
            _maybe_atomic(todo[1] if len(todo) > 1 else None, overwrite) as second_temp:
        temps = dict(zip(todo, (first_temp, second_temp)))
        writers = []
        try:
            if targets.mask in temps:
                mask_writer = open_mask_writer(temps[targets.mask], grid, png=targets.png, cog=cog, tags=tags)
                writers.append((mask_writer, lambda b: encode_mask(b.prob, b.valid, threshold,
                                                                   png=targets.png)))
            if targets.prob in temps:
                prob_writer = open_prob_writer(temps[targets.prob], grid, prob_dtype,
                                               cog=cog and not targets.png, tags=tags)
                writers.append((prob_writer, lambda b: encode_prob(b.prob, b.valid, prob_dtype)))
            for block in rows:
                for writer, encode in writers:
                    writer.write(block.row, encode(block))
            for writer, _ in writers:
                writer.close()
        except BaseException:
            for writer, _ in writers:
                writer.abort()
            raise


def _maybe_atomic(path: Path | None, overwrite: bool):
    """The temporary path of an output that is wanted, or None (nothing to write) when it is not."""
    return contextlib.nullcontext() if path is None else atomic_output(path, overwrite)


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


def _claim_outputs(path: Path, out_dir: Path | str, claimed: dict[Path, Path], options: dict) -> None:
    """Refuse an input whose outputs another input of the batch writes (``a.tif`` and ``a.jpg`` both give
    ``a_prob.tif`` and ``a_preview.png``), so neither silently replaces nor skips the other's."""
    targets = output_paths(path, out_dir, save_prob=options.get("save_prob", False),
                           preview=options.get("preview", False)).wanted()
    for target in targets:
        if target in claimed:
            raise BadInputError(f"{path}: its output {target.name} is also {claimed[target].name}'s; rename one "
                                "of them or predict them into different folders")
    claimed.update(dict.fromkeys(targets, path))


def check_settings(model, *, window: int, scale_range=None) -> None:
    """Refuse settings that would fail on every file, before the first is read: a window the network
    cannot take and an empty scale range. ``model`` None means a :class:`RoadModel` is still to be
    loaded (check before the slow load); a stand-in predictor takes any window."""
    if model is None or isinstance(model, RoadModel):
        check_network_window(window)
    if scale_range is not None:
        check_scale_range(scale_range)


def predict_files(model, paths: Iterable[Path | str], out_dir: Path | str, *,
                  on_file: Callable[[Path, FileResult | None, str | None], None] | None = None,
                  **options) -> BatchResult:
    """Run :func:`predict_file` over ``paths``, going on past inputs that fail with a roadseg error.

    ``on_file(path, result, reason)`` is called after each input (``reason`` set when it failed).
    ``options`` are those of :func:`predict_file`.
    """
    check_settings(model, window=options.get("window", 1024), scale_range=options.get("scale_range"))
    started = time.perf_counter()
    batch = BatchResult()
    claimed: dict[Path, Path] = {}  # output -> the input of this batch that writes it
    for path in paths:
        path = Path(path)
        try:
            _claim_outputs(path, out_dir, claimed, options)
            result = predict_file(model, path, out_dir, **options)
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
