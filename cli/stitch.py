"""``roadseg stitch``: mosaic per-tile masks or probability rasters into one GeoTIFF or VRT."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from roadseg.cli.options import CRS_TYPE, gather, json_opt, mask_format_opt, overwrite_opt, quiet_opt, report_unreadable
from roadseg.cli.progress import CountBar, progress_wanted
from roadseg.io.mosaic import StitchOptions


@click.command()
@click.argument("tiles", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Mosaic to write (GeoTIFF, or VRT with --vrt).")
@click.option("--vrt", is_flag=True, default=False, help="Write a GDAL VRT that references the tiles instead.")
@click.option("--crs", type=CRS_TYPE, default=None,
              help="Reproject every tile to this CRS (EPSG:XXXX); needs --res.")
@click.option("--res", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Pixel size of the reprojected mosaic, in --crs units; needs --crs.")
@mask_format_opt
@click.option("-r", "--recursive", is_flag=True, default=False, help="Look for tiles in subdirectories too.")
@overwrite_opt
@json_opt
@quiet_opt
@gather("options", ("vrt", "crs", "res", "mask_format", "overwrite"), StitchOptions)
def stitch(tiles: tuple[str, ...], output: Path, options: StitchOptions, recursive: bool, as_json: bool,
           quiet: bool) -> None:
    """Mosaic masks (road wins, nodata loses to data) or probability maps (mean) into one raster.

    Tiles must share a CRS and pixel size unless --crs and --res are given. Masks are written as
    1 road / 0 background / 255 nodata, probabilities as float32 with NaN nodata. The output is never a
    tile named here; a previous mosaic found in a folder or by a pattern is left out.
    """
    from roadseg.io.atomic import check_writable
    from roadseg.io.inputs import collect_inputs
    from roadseg.io.mosaic import stitch as stitch_tiles
    from roadseg.io.mosaic import without_output

    if (options.crs is None) != (options.res is None):
        raise click.UsageError("give both --crs and --res to reproject, or neither")
    if options.crs == "source":
        raise click.BadParameter("stitch needs an explicit CRS such as EPSG:32611", param_hint="--crs")
    paths = collect_inputs(tiles, suffixes=(".tif", ".tiff", ".vrt"), recursive=recursive)
    if not paths:
        raise click.UsageError("no tiles found in the given paths")
    # a re-run finds its previous mosaic among the tiles; a tile named here is never the output
    tiles_in = without_output(paths, output, named=[tile for tile in tiles if Path(tile).is_file()])
    check_writable(output, options.overwrite)
    bad = report_unreadable(tiles_in)
    if bad:
        click.echo(f"Error: {bad} of {len(tiles_in)} tile(s) unusable; nothing written", err=True)
        sys.exit(1)

    bar = CountBar("block", desc="stitch") if progress_wanted(quiet) and not options.vrt else None
    try:
        result = stitch_tiles(paths, output, options,
                              progress=(lambda done, total: bar.update(done, total, "")) if bar else None)
    finally:
        if bar is not None:
            bar.close()
    if as_json:
        click.echo(json.dumps(result.summary()))
    elif not quiet:
        click.echo(f"wrote {result.width}x{result.height} {result.kind} mosaic of {len(result.inputs)} tile(s) "
                   f"to {output}")
