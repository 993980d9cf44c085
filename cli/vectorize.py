"""``roadseg vectorize``: road masks to a cleaned centreline graph in GeoJSON."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import click

from roadseg.cli.options import json_opt, mask_format_opt, overwrite_opt, quiet_opt


class CrsType(click.ParamType):
    """``EPSG:XXXX`` (anything rasterio parses) or ``source``."""

    name = "CRS"

    def convert(self, value, param, ctx):
        from roadseg.vector.geo import parse_crs

        if value == "source":
            return value
        try:
            parse_crs(value)
        except ValueError as error:
            self.fail(str(error), param, ctx)
        return value


def _report_bad(paths: list[Path]) -> int:
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


@click.command()
@click.argument("masks", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="GeoJSON file to write.")
@click.option("--threshold", type=click.FloatRange(0, 1), default=None,
              help="Read inputs as probability maps: road where probability >= this.")
@mask_format_opt
@click.option("--min-hole", type=click.FloatRange(min=0), default=20.0, show_default=True,
              help="Fill holes in the mask smaller than this many square metres.")
@click.option("--min-area", type=click.FloatRange(min=0), default=50.0, show_default=True,
              help="Drop road blobs smaller than this many square metres.")
@click.option("--min-spur", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Prune dead-end spurs shorter than this (m); dead ends at the raster border are kept.")
@click.option("--max-gap", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Join dead ends across gaps up to this (m) when the join continues the road (within 30 deg).")
@click.option("--min-length", type=click.FloatRange(min=0), default=20.0, show_default=True,
              help="Drop connected pieces of road shorter in total than this (m).")
@click.option("--simplify", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Douglas-Peucker tolerance (m); 0 keeps every skeleton pixel.")
@click.option("--crs", type=CrsType(), default="EPSG:4326", show_default=True,
              help="Output CRS (EPSG:XXXX), or 'source' to keep the raster's.")
@click.option("--pixel-size", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Ground size of a pixel (m) for images without georeferencing; without it their metre "
                   "options are read as pixels and length_m is null.")
@click.option("--graph", "graph_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the road graph as GraphML.")
@click.option("--polygons", is_flag=True, default=False, help="Write road areas as polygons instead of lines.")
@click.option("--no-mosaic", is_flag=True, default=False,
              help="Vectorize georeferenced tiles one by one instead of mosaicking touching tiles first.")
@click.option("-r", "--recursive", is_flag=True, default=False, help="Look for masks in subdirectories too.")
@overwrite_opt
@json_opt
@quiet_opt
def vectorize(masks, output, threshold, mask_format, min_hole, min_area, min_spur, max_gap, min_length, simplify,
              crs, pixel_size, graph_path, polygons, no_mosaic, recursive, overwrite, as_json, quiet):
    """Turn road masks (or probability maps with --threshold) into road centrelines in GeoJSON.

    Georeferenced tiles of one area (same CRS and pixel grid, touching or overlapping) are mosaicked
    first, so a road crossing tile edges is one line. Any unreadable input: nothing is written, exit 1.
    """
    from roadseg.io.atomic import check_writable
    from roadseg.io.geojson import write_geojson, write_graphml
    from roadseg.io.inputs import collect_masks
    from roadseg.vector.vectorize import vectorize_paths

    # a folder of predict outputs: its *_mask files (*_prob with --threshold), not the previews beside them
    paths = collect_masks(masks, stem_suffix="_mask" if threshold is None else "_prob", recursive=recursive)
    if not paths:
        raise click.UsageError("no mask files found in the given paths")
    check_writable(output, overwrite)
    if graph_path is not None:
        if polygons:
            raise click.UsageError("--graph needs lines: leave out --polygons")
        check_writable(graph_path, overwrite)
    bad = _report_bad(paths)
    if bad:
        click.echo(f"Error: {bad} of {len(paths)} input(s) unusable; nothing written", err=True)
        sys.exit(1)

    bar = None
    if not quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(desc="vectorize", unit="step", file=sys.stderr)

    def progress(step: str) -> None:
        if bar is not None:
            bar.set_description(step)
            bar.update(1)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = vectorize_paths(paths, threshold=threshold, mask_format=mask_format, min_hole=min_hole,
                                     min_area=min_area, min_spur=min_spur, max_gap=max_gap,
                                     min_length=min_length, simplify=simplify, out_crs=crs, pixel_size=pixel_size,
                                     polygons=polygons, mosaic=not no_mosaic, progress=progress)
        finally:
            if bar is not None:
                bar.close()
    for warning in caught:
        if issubclass(warning.category, UserWarning):
            click.echo(f"Warning: {warning.message}", err=True)
    write_geojson(result.collection, output, overwrite=overwrite)
    if graph_path is not None:
        write_graphml(result.graph, result.collection, graph_path, overwrite=overwrite)
    if as_json:
        click.echo(json.dumps({**result.summary(), "output": str(output),
                               "graph": None if graph_path is None else str(graph_path)}))
    elif not quiet:
        kind = "polygons" if polygons else "lines"
        length = result.total_length_m
        about = f", {length / 1000:.2f} km" if length is not None and not polygons else ""
        click.echo(f"wrote {result.n_features} {kind}{about} from {len(paths)} mask(s) to {output}")
