"""Options shared by several commands, as decorators (rasterio's ``rio`` style)."""

from __future__ import annotations

import click

from roadseg.io.masks import MASK_FORMATS
from roadseg.model.devices import DEVICE_ORDER
from roadseg.model.loaded import ARCHITECTURE_NAMES, ENGINES

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


def model_options(func):
    """The options every command that runs the network takes."""
    for decorator in reversed((weights_opt, arch_opt, device_opt, device_id_opt, engine_opt, threads_opt,
                               pynative_opt)):
        func = decorator(func)
    return func
