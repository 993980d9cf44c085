"""``roadseg export``: the network in MINDIR or AIR through MindSpore's exporter, or as a verified ONNX graph."""

from __future__ import annotations

from pathlib import Path

import click

from roadseg.cli.options import ModelChoice, model_options, overwrite_opt
from roadseg.model.convention import NETWORK_STRIDE
from roadseg.model.export import FORMATS


@click.command()
@model_options
@click.option("--format", "file_format", type=click.Choice(tuple(FORMATS), case_sensitive=False),
              default="MINDIR", show_default=True, help="Export format.")
@click.option("--size", type=click.IntRange(min=32), default=1024, show_default=True,
              help="Input height and width (a multiple of 32).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="File to write.")
@overwrite_opt
def export(model: ModelChoice, file_format: str, size: int, output: Path, overwrite: bool) -> None:
    """Export the network with its weights for deployment.

    ONNX is the graph ONNX Runtime runs in roadseg (dynamic batch, height and width; checked against
    MindSpore before it is written). MINDIR and AIR come from MindSpore's exporter for a fixed
    1x3xSIZExSIZE input.
    """
    from roadseg.io.atomic import check_writable

    if size % NETWORK_STRIDE:
        raise click.BadParameter(f"{size} is not a multiple of {NETWORK_STRIDE}", param_hint="--size")
    check_writable(output, overwrite)  # fail before the slow load
    if file_format.upper() == "ONNX":
        from roadseg.model.export import export_onnx

        result = export_onnx(model.weights, output, arch=model.arch, threads=model.runtime.threads,
                             overwrite=overwrite)
        click.echo(f"{result.path}: ONNX graph of {result.arch} ({result.weights_label}), input Nx3xHxW "
                   f"(H, W multiples of 32); max |p - p_mindspore| {result.max_delta:.1e} on the check input")
        return
    from roadseg.model.export import export_model

    loaded = model.load(engine="mindspore")  # MindSpore's exporter needs the MindSpore network
    path = export_model(loaded, output, file_format=file_format, size=size, overwrite=overwrite)
    click.echo(f"{path}: {file_format.upper()} export of {loaded.arch} ({loaded.weights_label}), "
               f"input 1x3x{size}x{size}")
