"""``roadseg vectorize``: road masks to a cleaned centreline graph in GeoJSON, GeoPackage, GeoParquet or FlatGeobuf."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from roadseg.cli.options import (
    CRS_TYPE,
    ParsedType,
    apply,
    gather,
    json_opt,
    mask_format_opt,
    overwrite_opt,
    quiet_opt,
    report_unreadable,
)
from roadseg.cli.progress import CountBar, progress_wanted
from roadseg.io.vector_formats import VECTOR_FORMATS, VectorFormat
from roadseg.vector.vectorize import MIN_BLOCK_SIZE, VectorizeOptions

DEFAULTS = VectorizeOptions()
METRE_SETTINGS = (
    ("min_hole", "Fill holes in the mask smaller than this many square metres."),
    ("min_area", "Drop road blobs smaller than this many square metres."),
    ("min_spur", "Prune dead-end spurs shorter than this (m); dead ends at the raster border are kept."),
    ("max_gap", "Join dead ends across gaps up to this (m) when the join continues the road (within 30 deg)."),
    ("min_length", "Drop connected pieces of road shorter in total than this (m)."),
    ("simplify", "Douglas-Peucker tolerance (m); 0 keeps every skeleton pixel."),
)
"""The pipeline's size settings, each a --flag with VectorizeOptions' default."""


def metre_options(command):
    """--min-hole ... --simplify: the pipeline's sizes in metres (square metres for areas)."""
    return apply([click.option(f"--{name.replace('_', '-')}", type=click.FloatRange(min=0),
                               default=getattr(DEFAULTS, name), show_default=True, help=text)
                  for name, text in METRE_SETTINGS], command)


def parse_block_size(text: str) -> int:
    """``--block-size``: pixels, or ``whole`` (or 0) for the whole raster at once."""
    if text.strip().lower() == "whole":
        return 0
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number of pixels or 'whole'") from None
    if value != 0 and value < MIN_BLOCK_SIZE:
        raise ValueError(f"{value}: give 0 or 'whole' (the whole raster), or at least {MIN_BLOCK_SIZE} pixels")
    return value


def _vectorize_options(no_mosaic: bool, out_crs: str | None, **values) -> VectorizeOptions:
    """The pipeline's settings from the flags (--no-mosaic is the opposite of ``mosaic``; without --crs,
    the GeoJSON default until :func:`_crs_for_format` sees the output's format)."""
    return VectorizeOptions(mosaic=not no_mosaic, out_crs=out_crs or DEFAULTS.out_crs, **values)


def _crs_for_format(options: VectorizeOptions, fmt: VectorFormat) -> VectorizeOptions:
    """Without --crs, the format's own default: WGS 84 for GeoJSON (RFC 7946), the raster's CRS otherwise."""
    source = click.get_current_context().get_parameter_source("out_crs")
    if source is not ParameterSource.DEFAULT:
        return options
    return dataclasses.replace(options, out_crs=fmt.default_crs)


@dataclasses.dataclass(frozen=True)
class _Inputs:
    """The masks to read (``masks``, folders searched ``recursive``ly) and the probability and uncertainty
    maps given beside them with --prob and --uncertainty, gathered so the command keeps few parameters."""

    masks: tuple[str, ...]
    prob: tuple[str, ...]
    uncertainty: tuple[str, ...]
    recursive: bool

    def mask_paths(self, threshold: float | None) -> list[Path]:
        """A folder of predict outputs gives its *_mask files (*_prob with --threshold), not the previews."""
        from roadseg.io.inputs import collect_masks

        suffix = "_mask" if threshold is None else "_prob"
        return collect_masks(self.masks, stem_suffix=suffix, recursive=self.recursive)

    def map_paths(self, setting: str) -> list[Path]:
        """The files of --prob or --uncertainty (``setting``), a folder giving its *_prob (*_uncertainty) files."""
        from roadseg.io.inputs import collect_masks

        given = getattr(self, setting)
        found = collect_masks(given, stem_suffix=f"_{setting}", recursive=self.recursive)
        if given and not found:
            raise click.UsageError(f"no {setting} maps found in the paths given to --{setting}")
        return found


def _vectorize_and_write(paths: list[Path], options: VectorizeOptions, output: Path, graph_path: Path | None,
                         overwrite: bool, quiet: bool, maps: dict[str, list[Path]]):
    """Vectorize ``paths`` (a progress bar on a terminal) and write the roads (in ``output``'s format) and
    the graph."""
    from roadseg.io.geojson import write_graphml
    from roadseg.io.vector_formats import write_roads
    from roadseg.vector.vectorize import vectorize_files

    bar = CountBar("step", desc="vectorize") if progress_wanted(quiet) else None
    try:
        result = vectorize_files(paths, options, **maps, progress=bar.step if bar else None)
    finally:
        if bar is not None:
            bar.close()
    write_roads(result.collection, output, graph=None if options.polygons else result.graph, overwrite=overwrite)
    if graph_path is not None:
        write_graphml(result.graph, result.collection, graph_path, overwrite=overwrite)
    return result


@click.command()
@click.argument("masks", nargs=-1, required=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help=f"File to write; its extension picks the format: {', '.join(VECTOR_FORMATS)} "
                   "(GeoJSON, GeoPackage with a junctions layer too, GeoParquet, FlatGeobuf).")
@click.option("--threshold", type=click.FloatRange(0, 1), default=None,
              help="Read inputs as probability maps: road where probability >= this.")
@mask_format_opt
@metre_options
@click.option("--crs", "out_crs", type=CRS_TYPE, default=None,
              help="Output CRS (EPSG:XXXX), or 'source' to keep the raster's. Default: EPSG:4326 for GeoJSON, "
                   "source for the other formats.")
@click.option("--pixel-size", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Ground size of a pixel (m) for images without georeferencing; without it their metre "
                   "options are read as pixels and length_m is null.")
@click.option("--graph", "graph_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the road graph as GraphML.")
@click.option("--polygons", is_flag=True, default=False, help="Write road areas as polygons instead of lines.")
@click.option("--no-mosaic", is_flag=True, default=False,
              help="Vectorize georeferenced tiles one by one instead of mosaicking touching tiles first.")
@click.option("--block-size", type=ParsedType("PIXELS|whole", parse_block_size), default=DEFAULTS.block_size,
              show_default=True,
              help="Rasters (or mosaics) larger than this many pixels a side are vectorized in blocks of this "
                   "size, reading one window at a time, so memory does not grow with the raster; the result "
                   "is the whole raster's. 0 or 'whole': always the whole raster at once.")
@gather("options", ("threshold", "mask_format", "min_hole", "min_area", "min_spur", "max_gap", "min_length",
                    "simplify", "out_crs", "pixel_size", "polygons", "no_mosaic", "block_size"), _vectorize_options)
@click.option("--prob", multiple=True,
              help="A probability map on the mask's grid (repeatable, or a folder), so each road carries "
                   "prob_mean and prob_min; with several masks, <stem>_prob goes with <stem>_mask.")
@click.option("--uncertainty", multiple=True,
              help="predict's uncertainty map (--save-uncertainty: the variance of its TTA views) on the mask's "
                   "grid (repeatable, or a folder), so each road carries uncertainty_mean; with several masks, "
                   "<stem>_uncertainty goes with <stem>_mask (<stem>_prob with --threshold).")
@click.option("-r", "--recursive", is_flag=True, default=False, help="Look for masks in subdirectories too.")
@gather("inputs", ("masks", "prob", "uncertainty", "recursive"), _Inputs)
@overwrite_opt
@json_opt
@quiet_opt
def vectorize(inputs: _Inputs, output: Path, options: VectorizeOptions, graph_path: Path | None,
              overwrite: bool, as_json: bool, quiet: bool) -> None:
    """Turn road masks (or probability maps with --threshold) into road centrelines in GeoJSON (or the
    format -o's extension names: .gpkg, .parquet, .fgb).

    Georeferenced tiles of one area (touching or overlapping) are mosaicked first, so a road crossing
    tile edges is one line; they must share a CRS and pixel grid, as for stitch. Each road carries
    gap_closed, prob_mean and prob_min when probabilities are known (--threshold, or --prob), and
    uncertainty_mean with --uncertainty. Any unreadable input: nothing is written, exit 1.
    """
    from roadseg.io.atomic import check_apart, check_writable, same_file
    from roadseg.io.vector_formats import vector_format

    paths = inputs.mask_paths(options.threshold)
    maps = {setting: inputs.map_paths(setting) for setting in ("prob", "uncertainty")}
    given = [path for found in maps.values() for path in found]
    if not paths:
        raise click.UsageError("no mask files found in the given paths")
    if graph_path is not None and options.polygons:
        raise click.UsageError("--graph needs lines: leave out --polygons")
    if graph_path is not None and same_file(graph_path, output):
        raise click.UsageError(f"--graph and -o both name {output}; give the graph a file of its own")
    for setting, found in maps.items():
        if found and options.polygons:
            raise click.UsageError(f"--{setting} gives lines their evidence: leave out --polygons")
    check_apart([output, graph_path], paths + given)
    options = _crs_for_format(options, vector_format(output))
    check_writable(output, overwrite)
    if graph_path is not None:
        check_writable(graph_path, overwrite)
    bad = report_unreadable(paths + given)
    if bad:
        click.echo(f"Error: {bad} of {len(paths)} input(s) unusable; nothing written", err=True)
        sys.exit(1)

    result = _vectorize_and_write(paths, options, output, graph_path, overwrite, quiet, maps)
    if as_json:
        click.echo(json.dumps({**result.summary(), "output": str(output),
                               "graph": None if graph_path is None else str(graph_path)}))
    elif not quiet:
        kind = "polygons" if options.polygons else "lines"
        length = result.total_length_m
        about = f", {length / 1000:.2f} km" if length is not None and not options.polygons else ""
        click.echo(f"wrote {result.n_features} {kind}{about} from {len(paths)} mask(s) to {output}")
