"""``roadseg preview``: a quick-look PNG of an image with its road mask and road lines drawn on it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import click

from roadseg.cli.options import gather, image_scaling_options, json_opt, mask_format_opt, overwrite_opt, quiet_opt
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


@click.command("preview")
@click.argument("image", type=click.Path(dir_okay=False, path_type=Path))
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
@mask_format_opt
@overwrite_opt
@json_opt
@quiet_opt
@gather("overlays", ("mask", "roads", "mask_format"), Overlays)
def preview(image: Path, overlays: Overlays, output: Path, max_size: int, scaling: ImageScaling,
            overwrite: bool, as_json: bool, quiet: bool) -> None:
    """Draw IMAGE, scaled to 0-255 as predict scales it, with --mask and --roads on top, into -o PNG.

    Nodata is dark grey, the mask translucent magenta, road lines yellow. The image is read decimated
    to at most --max-size pixels on its longest side, so large scenes stay quick.
    """
    from roadseg.preview import render_preview

    mask, roads = overlays.mask, overlays.roads
    result = render_preview(image, output, mask=mask, roads=roads, max_size=max_size, scaling=scaling,
                            mask_format=overlays.mask_format, overwrite=overwrite)
    if as_json:
        click.echo(json.dumps(result.summary(), indent=2))
    elif not quiet:
        drawn = []
        if mask is not None:
            drawn.append(f"mask {mask.name} ({result.mask_pixels} road pixels shown)")
        if roads is not None:
            drawn.append(f"{result.lines_drawn} of {result.lines} road line(s) from {roads.name}")
        extra = f" with {' and '.join(drawn)}" if drawn else ""
        click.echo(f"wrote {result.width}x{result.height} preview of {image.name}{extra} to {output}")
