"""``roadseg preview``: a quick-look PNG of an image with its road mask and road lines drawn on it."""

from __future__ import annotations

import json
from pathlib import Path

import click

from roadseg.cli.options import json_opt, mask_format_opt, overwrite_opt, quiet_opt
from roadseg.cli.predict import image_scaling_options
from roadseg.preview import DEFAULT_MAX_SIZE


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
def preview(image, mask, roads, output, max_size, bands, scale, scale_range, mask_format, overwrite, as_json,
            quiet):
    """Draw IMAGE, scaled to 0-255 as predict scales it, with --mask and --roads on top, into -o PNG.

    Nodata is dark grey, the mask translucent magenta, road lines yellow. The image is read decimated
    to at most --max-size pixels on its longest side, so large scenes stay quick.
    """
    from roadseg.preview import render_preview

    result = render_preview(image, output, mask=mask, roads=roads, max_size=max_size, bands=bands, scale=scale,
                            scale_range=scale_range, mask_format=mask_format, overwrite=overwrite)
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
