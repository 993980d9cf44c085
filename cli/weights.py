"""``roadseg weights``: list, download and verify checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import click

from roadseg.cli.options import arch_opt, json_opt, overwrite_opt, quiet_opt
from roadseg.cli.progress import DownloadBar, progress_wanted


@click.group()
def weights() -> None:
    """Known weights: list them, download them into the cache, verify a checkpoint file."""


@weights.command("list")
@json_opt
def list_weights(as_json: bool) -> None:
    """Name, architecture, sha256 and cache state of every known weights entry."""
    from roadseg.model.registry import REGISTRY, cached_path

    rows = [{"name": e.name, "arch": e.arch, "gsd_m": e.gsd, "sha256": e.sha256, "cached": cached_path(e).is_file(),
             "path": str(cached_path(e)), "url": e.url, "license": e.license} for e in REGISTRY.values()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        state = f"cached at {row['path']}" if row["cached"] else "not cached"
        gsd = f"trained at {row['gsd_m']} m/pixel" if row["gsd_m"] else "training GSD unknown"
        click.echo(f"{row['name']}  {row['arch']}  {gsd}  sha256 {row['sha256']}  {state}")


@weights.command()
@click.argument("name")
@click.option("--url", default=None, help="Download the same file from a mirror (still sha256-checked).")
@overwrite_opt
@quiet_opt
def download(name: str, url: str | None, overwrite: bool, quiet: bool) -> None:
    """Download known weights NAME into the cache (streamed, sha256-checked)."""
    from roadseg.model.registry import REGISTRY, cached_path
    from roadseg.model.weights import download_known

    entry = REGISTRY.get(name)
    if entry is None:
        raise click.BadParameter(f"unknown weights {name!r}; known: {', '.join(REGISTRY)}", param_hint="NAME")
    if cached_path(entry).is_file() and not overwrite:
        click.echo(f"{name} is already cached at {cached_path(entry)} (--overwrite to fetch again)")
        return
    bar = DownloadBar(name, enabled=progress_wanted(quiet))
    try:
        path = download_known(entry, url=url, progress=bar, overwrite=overwrite)
    finally:
        bar.close()
    if not quiet:
        click.echo(f"{name}: saved to {path} (sha256 verified)")


@weights.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@arch_opt
@json_opt
def verify(file: Path, arch: str | None, as_json: bool) -> None:
    """Check FILE: its sha256 against known weights, and every tensor against the network."""
    from roadseg.model.checkpoint import check_tensors, expected_shapes, read_checkpoint
    from roadseg.model.network import build_network
    from roadseg.model.weights import verify_sha256

    contents = read_checkpoint(file)
    known = verify_sha256(file)
    chosen_arch = arch or (known.arch if known else None) or contents.arch or "dlinknet34"
    check_tensors(contents.tensors, expected_shapes(build_network(chosen_arch)), str(file), chosen_arch)
    result = {"file": str(file), "known_as": known.name if known else None, "arch": chosen_arch,
              "tensors": len(contents.tensors), "training_state_entries": len(contents.training_state),
              "values": int(sum(array.size for array in contents.tensors.values()))}
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        origin = f"sha256 matches {known.name}" if known else "sha256 not in the registry (your own weights)"
        click.echo(f"{file}: OK, {result['tensors']} tensors match {chosen_arch}; {origin}")
