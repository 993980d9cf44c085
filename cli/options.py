"""Options shared by several commands, as decorators (rasterio's ``rio`` style).

A group of options that makes one library settings object is declared once here and handed to the
command as that object (:func:`gather`): ``predict`` gets one :class:`PredictOptions`, not six
values, and the library checks them where it makes the object.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from roadseg.inference.blending import BLEND_CHOICES
from roadseg.inference.gsd import AUTO, GsdOptions, parse_gsd
from roadseg.inference.options import OutputOptions, PredictOptions
from roadseg.inference.tta import TTA_CHOICES
from roadseg.io.masks import MASK_FORMATS
from roadseg.io.raster_read import SCALE_CHOICES, ImageScaling
from roadseg.io.raster_write import PROB_DTYPE_CHOICES
from roadseg.model.convention import NETWORK_STRIDE
from roadseg.model.devices import DEVICE_ORDER
from roadseg.model.loaded import ARCHITECTURE_NAMES, ENGINES, ModelRuntime


def gather(into: str, names: Sequence[str], factory: Callable[..., object]):
    """Hand the command ``into=factory(**values)`` instead of the options ``names`` one by one.

    Put it below the options it gathers (it wraps the function they decorate).
    """
    def decorate(command):
        @functools.wraps(command)
        def wrapper(*args, **kwargs):
            kwargs[into] = factory(**{name: kwargs.pop(name) for name in names})
            return command(*args, **kwargs)
        return wrapper
    return decorate


def apply(decorators: Sequence[Callable], command):
    """``command`` decorated by ``decorators`` as if they were written above it in this order."""
    for decorator in reversed(decorators):
        command = decorator(command)
    return command

DEVICE_CHOICES = ("auto", *DEVICE_ORDER)

device_opt = click.option(
    "--device", type=click.Choice(DEVICE_CHOICES, case_sensitive=False), default="auto", show_default=True,
    help="Where the model runs; auto picks Ascend, then GPU, then CPU.")
device_id_opt = click.option(
    "--device-id", type=click.IntRange(min=0), default=0, show_default=True,
    help="Which device of that kind (for machines with several GPUs or NPUs).")
weights_opt = click.option(
    "--weights", default="dlinknet34-deepglobe", show_default=True, metavar="NAME|PATH",
    help="A known weights name (see `roadseg weights list`) or a checkpoint file.")
arch_opt = click.option(
    "--arch", type=click.Choice(ARCHITECTURE_NAMES), default=None,
    help="Network for a checkpoint file (default: what the checkpoint records, else dlinknet34).")
overwrite_opt = click.option(
    "--overwrite", is_flag=True, default=False, help="Replace outputs that already exist.")
json_opt = click.option(
    "--json", "as_json", is_flag=True, default=False, help="Print a machine-readable JSON result.")
quiet_opt = click.option(
    "--quiet", is_flag=True, default=False, help="No progress bars or summaries (errors still print).")
mask_format_opt = click.option(
    "--mask-format", type=click.Choice(MASK_FORMATS), default="auto", show_default=True,
    help="predict: 1 road, 0 background, 255 nodata; binary: any non-zero value is road (0/255 masks); "
         "auto: predict when the nodata tag is 255 or the value 1 occurs.")
pynative_opt = click.option(
    "--pynative", is_flag=True, default=False,
    help="Debug: run MindSpore in PYNATIVE mode instead of compiling a graph.")


engine_opt = click.option(
    "--engine", type=click.Choice(ENGINES), default="auto", show_default=True,
    help="What runs the network: auto uses ONNX Runtime for CPU work (a graph of the same weights, checked "
         "against MindSpore before first use) and MindSpore on GPU and Ascend.")
threads_opt = click.option(
    "--threads", type=click.IntRange(min=1), default=None,
    help="CPU threads for the network (default: the CPUs this process may use, honouring affinity and "
         "cgroup limits).")


@dataclass(frozen=True)
class ModelChoice:
    """The weights, network and device the user chose, with how the network runs there."""

    weights: str
    arch: str | None
    device: str
    runtime: ModelRuntime

    def load(self, **overrides):
        """:func:`roadseg.model.loaded.load_model` of this choice; ``overrides`` replace runtime fields."""
        from dataclasses import replace

        from roadseg.model.loaded import load_model

        return load_model(self.weights, self.arch, self.device, runtime=replace(self.runtime, **overrides))


def model_options(command):
    """The options every command that runs the network takes, handed over as ``model: ModelChoice``."""
    def choice(weights, arch, device, device_id, engine, threads, pynative) -> ModelChoice:
        return ModelChoice(weights, arch, device, ModelRuntime(device_id, engine, threads, pynative))

    return apply((weights_opt, arch_opt, device_opt, device_id_opt, engine_opt, threads_opt, pynative_opt,
                  gather("model", ("weights", "arch", "device", "device_id", "engine", "threads", "pynative"),
                         choice)), command)


class ParsedType(click.ParamType):
    """A value parsed from its text by ``parse``, whose ValueError becomes Click's usage error (exit 2)."""

    def __init__(self, name: str, parse: Callable[[str], object]) -> None:
        self.name, self.parse = name, parse

    def convert(self, value, param, ctx):
        if not isinstance(value, str):  # a default, or a value Click converted already
            return value
        try:
            return self.parse(value)
        except ValueError as error:
            self.fail(str(error), param, ctx)


def parse_bands(text: str) -> tuple[int, ...]:
    """``3,2,1`` (R,G,B order) or a single band ``1`` (repeated into three); 1-based."""
    try:
        bands = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"{text!r} is not a comma-separated list of band numbers (e.g. 3,2,1)") from None
    if len(bands) not in (1, 3) or min(bands) < 1:
        raise ValueError(f"{text!r}: give three bands in R,G,B order or one band, numbered from 1")
    return bands


def image_scaling_options(command):
    """--bands, --scale and --scale-range, handed over as ``scaling: ImageScaling`` (predict, preview)."""
    return apply((
        click.option("--bands", type=ParsedType("BANDS", parse_bands), default=None,
                     help="1-based bands in R,G,B order (e.g. 3,2,1), or one band to repeat. "
                          "Default: red/green/blue by colour interpretation, else 1,2,3."),
        click.option("--scale", type=click.Choice(SCALE_CHOICES), default=None,
                     help="How values become 0-255. Default: none for uint8, percentile (2-98 %) otherwise."),
        click.option("--scale-range", type=(float, float), default=None, metavar="LOW HIGH",
                     help="Map LOW..HIGH to 0..255 in every band (overrides --scale)."),
        gather("scaling", ("bands", "scale", "scale_range"), ImageScaling),
    ), command)


def _network_window(ctx, param, value: int | None) -> int | None:
    if value is not None and value % NETWORK_STRIDE:
        raise click.BadParameter(f"{value} is not a multiple of {NETWORK_STRIDE} (the network's stride); "
                                 f"try {max(NETWORK_STRIDE, value // NETWORK_STRIDE * NETWORK_STRIDE)}")
    return value


GSD_OPTION_NAMES = ("gsd", "input_gsd")


def _gsd_decorators(defaults: bool = True, note: str = "") -> tuple[Callable, Callable]:
    """--gsd and --input-gsd, as predict, eval (its predict-first form) and preview take them."""
    return (
        click.option("--gsd", type=ParsedType("auto|native|METRES", parse_gsd), default=AUTO if defaults else None,
                     show_default=defaults,
                     help=f"{note}Resolution the network sees a georeferenced input at: auto = the weights' "
                          "training GSD (0.5 m for the published weights) when the input's differs by more "
                          "than 10 %, native = the input's own pixels, or metres per pixel. Outputs keep the "
                          "input's grid."),
        click.option("--input-gsd", type=click.FloatRange(min=0, min_open=True), default=None, metavar="METRES",
                     help=f"{note}Metres per pixel of the inputs, overriding their georeferencing (JPG/PNG and "
                          "rasters without a CRS are otherwise used at native resolution)."),
    )


def _gsd_options(gsd: str | float | None, input_gsd: float | None) -> GsdOptions:
    """GsdOptions from the flags given; ``--gsd`` left out (None) keeps the library's default."""
    return GsdOptions(AUTO if gsd is None else gsd, input_gsd)


def gsd_options(command):
    """--gsd and --input-gsd alone, handed over as ``gsd: GsdOptions`` (preview)."""
    return apply((*_gsd_decorators(), gather("gsd", GSD_OPTION_NAMES, _gsd_options)), command)


PREDICT_OPTION_NAMES = ("window", "overlap", "blend", "tta", "batch_size", "threshold", *GSD_OPTION_NAMES)


def predict_options(command=None, *, defaults: bool = True, note: str = ""):
    """--window, --overlap, --blend, --tta, --batch-size, --threshold, --gsd and --input-gsd, handed over
    as ``options: PredictOptions``.

    With ``defaults=False`` (eval, whose options apply to its predict-first form only) an option left
    out keeps PredictOptions' default, the help starts with ``note``, and the window is checked by the
    command once it knows the form, not while Click parses it."""
    def shown(value):
        return value if defaults else None

    def decorate(command):
        return apply((
            click.option("--window", type=click.IntRange(min=NETWORK_STRIDE), default=shown(1024),
                         show_default=defaults, callback=_network_window if defaults else None,
                         help=f"{note}Window size in pixels (a multiple of {NETWORK_STRIDE})."),
            click.option("--overlap", type=click.FloatRange(0.0, 1.0, max_open=True), default=shown(0.25),
                         show_default=defaults, help=f"{note}Overlap of neighbouring windows, as a fraction "
                                                     "of the window."),
            click.option("--blend", type=click.Choice(BLEND_CHOICES), default=shown("gaussian"),
                         show_default=defaults, help=f"{note}Weighting of overlapping windows."),
            click.option("--tta", type=click.Choice(TTA_CHOICES), default=shown("d4"), show_default=defaults,
                         help=f"{note}Test-time augmentation: none, 4 flips, or the 8 flips and rotations "
                              "of D-LinkNet (the zoo's evaluation used none)."),
            click.option("--batch-size", type=click.IntRange(min=1), default=None,
                         help=f"{note}Network inputs per forward call (default: 1 on CPU, 4 on GPU/Ascend)."),
            click.option("--threshold", type=click.FloatRange(0.0, 1.0), default=shown(0.5),
                         show_default=defaults, help=f"{note}Probability above which a pixel is road."),
            *_gsd_decorators(defaults, note),
            gather("options", PREDICT_OPTION_NAMES, _predict_options),
        ), command)

    return decorate if command is None else decorate(command)


def _predict_options(**values) -> PredictOptions:
    """PredictOptions from the flags given; a flag left out (None) keeps the library's default."""
    gsd = _gsd_options(values.pop("gsd"), values.pop("input_gsd"))
    return PredictOptions(**{name: value for name, value in values.items() if value is not None}, gsd=gsd)


def output_options(command):
    """--save-prob, --prob-dtype, --cog, --preview, --save-uncertainty and --overwrite, handed over as
    ``output: OutputOptions``."""
    return apply((
        click.option("--save-prob", is_flag=True, help="Also write the probability map <stem>_prob.tif."),
        click.option("--prob-dtype", type=click.Choice(PROB_DTYPE_CHOICES), default="float32",
                     show_default=True, help="float32 (0-1, NaN nodata) or uint8 (0-254 for 0-1, 255 nodata)."),
        click.option("--cog", is_flag=True, help="Write GeoTIFF outputs as Cloud Optimized GeoTIFFs with "
                                                 "overviews."),
        click.option("--preview", is_flag=True, help="Also write <stem>_preview.png: the image with its mask, "
                                                     "at most 2048 px (see `roadseg preview`)."),
        click.option("--save-uncertainty", is_flag=True,
                     help="Also write <stem>_uncertainty.tif: per pixel, the variance of the probabilities of "
                          "the TTA views (needs --tta flip or d4); vectorize reports its mean along each road."),
        overwrite_opt,
        gather("output", ("save_prob", "prob_dtype", "cog", "preview", "overwrite", "save_uncertainty"),
               OutputOptions),
    ), command)


def parse_crs_option(text: str) -> str:
    """``source`` or any CRS rasterio parses (``EPSG:XXXX``), kept as typed for the library."""
    from roadseg.vector.geo import parse_crs

    if text != "source":
        parse_crs(text)
    return text


CRS_TYPE = ParsedType("CRS", parse_crs_option)


def report_unreadable(paths: list[Path]) -> int:
    """Open every input's header; print one line per unusable file; return how many were bad."""
    from roadseg.errors import BadInputError
    from roadseg.io.mosaic import tile_info

    bad = 0
    for path in paths:
        try:
            tile_info(path)
        except BadInputError as error:
            click.echo(f"Error: {error}", err=True)
            bad += 1
    return bad
