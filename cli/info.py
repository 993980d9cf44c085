"""``roadseg info``: versions, usable devices, cache and known weights."""

from __future__ import annotations

import json
import platform

import click

from roadseg.cli.options import json_opt


def _onnxruntime_version() -> str | None:
    from roadseg.model.onnx_engine import onnxruntime_available

    if not onnxruntime_available():
        return None
    import onnxruntime

    return onnxruntime.__version__


def gather_info() -> dict:
    from roadseg import __version__
    from roadseg.model.cpu_budget import usable_cpu_count
    from roadseg.model.devices import usable_devices
    from roadseg.model.mindspore_runtime import CPU_ISA
    from roadseg.model.mindspore_runtime import ms as mindspore
    from roadseg.model.registry import REGISTRY, cache_dir, cached_path

    return {
        "roadseg": __version__,
        "mindspore": mindspore.__version__,
        "python": platform.python_version(),
        "devices": usable_devices(),
        "cpu_isa": CPU_ISA.as_dict(),
        "onnxruntime": _onnxruntime_version(),
        "usable_cpus": usable_cpu_count(),
        "cache_dir": str(cache_dir()),
        "weights": [{"name": entry.name, "arch": entry.arch, "sha256": entry.sha256,
                     "cached": cached_path(entry).is_file(), "path": str(cached_path(entry))}
                    for entry in REGISTRY.values()],
    }


@click.command()
@json_opt
def info(as_json: bool) -> None:
    """Show roadseg and MindSpore versions, usable devices, the cache and known weights."""
    facts = gather_info()
    if as_json:
        click.echo(json.dumps(facts, indent=2))
        return
    click.echo(f"roadseg    {facts['roadseg']}")
    click.echo(f"mindspore  {facts['mindspore']} (Python {facts['python']})")
    click.echo(f"devices    {', '.join(facts['devices'])} (auto picks {facts['devices'][0]})")
    engine = (f"onnxruntime {facts['onnxruntime']} for CPU work (--engine auto), MindSpore elsewhere"
              if facts["onnxruntime"] else "MindSpore (onnxruntime is not installed)")
    click.echo(f"engine     {engine}; {facts['usable_cpus']} usable CPU(s)")
    isa = facts["cpu_isa"]
    shown = "oneDNN's own choice" if isa["isa"] == "DEFAULT" else f"ONEDNN_MAX_CPU_ISA={isa['isa']}"
    click.echo(f"cpu isa    {shown} ({isa['source']}: {isa['reason']})")
    click.echo(f"cache      {facts['cache_dir']}")
    for entry in facts["weights"]:
        state = "cached" if entry["cached"] else "not cached"
        click.echo(f"weights    {entry['name']} ({entry['arch']}, {state})")
