"""``roadseg stitch``: mosaic per-tile masks or probability rasters into one GeoTIFF or VRT."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from roadseg.cli.options import json_opt, mask_format_opt, overwrite_opt, quiet_opt
from roadseg.cli.vectorize import CrsType, _report_bad


@click.command()
@click.argument("tiles", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Mosaic to write (GeoTIFF, or VRT with --vrt).")
@click.option("--vrt", is_flag=True, default=False, help="Write a GDAL VRT that references the tiles instead.")
@click.option("--crs", type=CrsType(), default=None,
              help="Reproject every tile to this CRS (EPSG:XXXX); needs --res.")
@click.option("--res", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Pixel size of the reprojected mosaic, in --crs units; needs --crs.")
@mask_format_opt
@click.option("-r", "--recursive", is_flag=True, default=False, help="Look for tiles in subdirectories too.")
@overwrite_opt
@json_opt
@quiet_opt
def stitch(tiles, output, vrt, crs, res, mask_format, recursive, overwrite, as_json, quiet):
    """Mosaic masks (road wins, nodata loses to data) or probability maps (mean) into one raster.

    Tiles must share a CRS and pixel size unless --crs and --res are given. Masks are written as
    1 road / 0 background / 255 nodata, probabilities as float32 with NaN nodata.
    """
    from roadseg.io.atomic import check_writable
    from roadseg.io.inputs import collect_inputs
    from roadseg.io.mosaic import stitch_paths, without_output

    if (crs is None) != (res is None):
        raise click.UsageError("give both --crs and --res to reproject, or neither")
    if crs == "source":
        raise click.BadParameter("stitch needs an explicit CRS such as EPSG:32611", param_hint="--crs")
    paths = collect_inputs(tiles, suffixes=(".tif", ".tiff", ".vrt"), recursive=recursive)
    if not paths:
        raise click.UsageError("no tiles found in the given paths")
    check_writable(output, overwrite)
    tiles_in = without_output(paths, output)  # a re-run finds its previous output among the tiles
    bad = _report_bad(tiles_in)
    if bad:
        click.echo(f"Error: {bad} of {len(tiles_in)} tile(s) unusable; nothing written", err=True)
        sys.exit(1)

    bar = None
    if not quiet and not vrt and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(desc="stitch", unit="block", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.update(1)

    try:
        result = stitch_paths(paths, output, vrt=vrt, crs=crs, res=res, mask_format=mask_format,
                              overwrite=overwrite, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    if as_json:
        click.echo(json.dumps(result.summary()))
    elif not quiet:
        click.echo(f"wrote {result.width}x{result.height} {result.kind} mosaic of {len(result.inputs)} tile(s) "
                   f"to {output}")
