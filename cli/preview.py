"""``roadseg preview``: a quick-look PNG of an image with its road mask and road lines drawn on it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import click

from roadseg.cli.options import (
    gather,
    gsd_options,
    image_scaling_options,
    json_opt,
    mask_format_opt,
    overwrite_opt,
    quiet_opt,
)
from roadseg.inference.gsd import GsdOptions
from roadseg.io.raster_read import ImageScaling
from roadseg.preview import DEFAULT_MAX_SIZE


@dataclass(frozen=True)
class Overlays:
    """What is drawn over the image: a road mask (read as ``mask_format`` says) and road lines."""

    mask: Path | None
    roads: Path | None
    mask_format: str


def _png_path(ctx, param, value: Path) -> Path:
    if value.suffix.lower() != ".png":
        raise click.BadParameter(f"{value.name}: the preview is a PNG; name it *.png")
    return value


def _image_input(ctx, param, value: str):
    """A local file as a Path; a URL or a STAC item (.json, read through its visual or R,G,B assets) as
    the input type that reads it (see roadseg.io.inputs.as_input)."""
    from roadseg.io.inputs import as_input

    return as_input(value)


@click.command("preview")
@click.argument("image", type=click.Path(dir_okay=False), callback=_image_input)
@click.option("--mask", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Road mask on the image's grid (predict's _mask.tif/_mask.png, a 0/255 mask, or a "
                   "probability map read at 0.5), shown in translucent magenta.")
@click.option("--roads", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="GeoJSON road lines (e.g. from `roadseg vectorize`), drawn in yellow.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              callback=_png_path, help="PNG file to write.")
@click.option("--max-size", type=click.IntRange(min=1), default=DEFAULT_MAX_SIZE, show_default=True,
              help="Longest side of the preview in pixels (smaller images keep their size).")
@image_scaling_options
@gsd_options
@mask_format_opt
@overwrite_opt
@json_opt
@quiet_opt
@gather("overlays", ("mask", "roads", "mask_format"), Overlays)
@gather("verbosity", ("as_json", "quiet"), lambda as_json, quiet: (as_json, quiet))
def preview(image: Path, overlays: Overlays, output: Path, max_size: int, scaling: ImageScaling, gsd: GsdOptions,
            overwrite: bool, verbosity: tuple[bool, bool]) -> None:
    """Draw IMAGE, scaled to 0-255 as predict scales it, with --mask and --roads on top, into -o PNG.

    Nodata is dark grey, the mask translucent magenta, road lines yellow. The image is read decimated
    to at most --max-size pixels on its longest side, so large scenes stay quick, and no finer than the
    network sees it (--gsd; auto: the published weights' 0.5 m).
    """
    from roadseg.preview import network_view, render_preview

    as_json, quiet = verbosity
    plan = network_view(image, gsd, scaling)
    coarser = plan.resampled and plan.network_gsd > plan.input_gsd and max(plan.shape) < max_size
    if coarser:
        max_size = max(plan.shape)
    mask, roads = overlays.mask, overlays.roads
    result = render_preview(image, output, mask=mask, roads=roads, max_size=max_size, scaling=scaling,
                            mask_format=overlays.mask_format, overwrite=overwrite)
    if as_json:
        click.echo(json.dumps({**result.summary(), "gsd": {key.removeprefix("ROADSEG_").lower(): value
                                                           for key, value in plan.tags().items()}}, indent=2))
    elif not quiet:
        drawn = []
        if mask is not None:
            drawn.append(f"mask {mask.name} ({result.mask_pixels} road pixels shown)")
        if roads is not None:
            drawn.append(f"{result.lines_drawn} of {result.lines} road line(s) from {roads.name}")
        extra = f" with {' and '.join(drawn)}" if drawn else ""
        seen = (f" as the network sees it ({plan.network_gsd:g} m per pixel; the image has "
                f"{plan.input_gsd:.3g} m)" if coarser else "")
        click.echo(f"wrote {result.width}x{result.height} preview of {image.name}{seen}{extra} to {output}")
