"""``roadseg train``: train or fine-tune D-LinkNet with the zoo's recipe (under msrun for many devices)."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable

import click

from roadseg.cli.options import DEVICE_CHOICES, json_opt, overwrite_opt, quiet_opt
from roadseg.cli.progress import TrainingProgress
from roadseg.interrupts import EXIT_STATUS
from roadseg.model.loaded import ARCHITECTURE_NAMES


def _load_yaml(path: str) -> dict:
    """The options of a ``--config`` file, keys in snake_case; one line naming the file if it is no mapping."""
    from roadseg.train.options import read_yaml_options

    return read_yaml_options(path, "; fix it (see examples/train.yaml)")


def _reporting_skipped(progress: TrainingProgress) -> Callable[[object], None]:
    """``progress`` that also prints a ``Warning:`` line for each file ``--skip-bad`` leaves out (even
    under ``--quiet``: it is data the run will not see)."""
    from roadseg.train.data import DataProblem

    def report(event: object) -> None:
        if isinstance(event, DataProblem):
            click.echo(f"Warning: skipping {event}", err=True)
        else:
            progress(event)

    return report


@click.command(context_settings={"show_default": True})
@click.argument("data", required=False, type=click.Path(file_okay=False))
@click.option("--images", type=click.Path(file_okay=False), help="GeoTIFF images directory (with --masks).")
@click.option("--masks", type=click.Path(file_okay=False), help="GeoTIFF masks directory, matched by stem.")
@click.option("--val-dir", type=click.Path(file_okay=False), help="Validation pairs (DeepGlobe layout).")
@click.option("--val-split", type=click.FloatRange(0, 1, max_open=True),
              help="Fraction held out for validation, by seed and id [default: 0.1].")
@click.option("-o", "--output", type=click.Path(file_okay=False), help="Run directory [default: runs/train].")
@click.option("--arch", type=click.Choice(ARCHITECTURE_NAMES), help="Network [default: dlinknet34].")
@click.option("--init", metavar="NAME|PATH", help="Fine-tune from these weights (a known name or a checkpoint).")
@click.option("--backbone", type=click.Path(dir_okay=False), help="ImageNet ResNet checkpoint for the encoder.")
@click.option("--epochs", type=click.IntRange(min=1), help="Epoch cap [default: 300].")
@click.option("--batch-size", type=click.IntRange(min=1), help="Batch per device [default: 4].")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="Adam learning rate [default: 2e-4].")
@click.option("--crop", type=click.IntRange(min=32), help="Random crops of this size (multiple of 32).")
@click.option("--no-augment", "augment", flag_value=False, default=None, help="Turn the augmentations off.")
@click.option("--seed", type=int, help="Seed for init, split, order and augmentation [default: 0].")
@click.option("--device", type=click.Choice(DEVICE_CHOICES, case_sensitive=False), help="[default: auto]")
@click.option("--device-id", type=click.IntRange(min=0), help="Device index (msrun sets it per worker).")
@click.option("--workers", type=click.IntRange(min=1), help="Data-loading workers [default: 2].")
@click.option("--steps-per-epoch", type=click.IntRange(min=1), help="Cap on steps per epoch.")
@click.option("--skip-bad", is_flag=True, default=None, help="Train on the good pairs, warning about the rest.")
@click.option("--gsd", type=click.FloatRange(min=0, min_open=True), metavar="METRES",
              help="Metres per pixel of training images without georeferencing (JPG/PNG), recorded in the "
                   "checkpoints for `predict --gsd auto` [default: the median of georeferenced images, else "
                   "not recorded].")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True),
              help="YAML file with any of these options; flags override it.")
@click.option("--resume", type=click.Path(file_okay=False, exists=True), metavar="RUN_DIR",
              help="Continue the run in RUN_DIR exactly where it stopped (--epochs may raise the cap).")
@overwrite_opt
@quiet_opt
@json_opt
def train(data, config_path, resume, overwrite, quiet, as_json, **flags):
    """Train D-LinkNet on DATA (every <id>_sat.jpg with its <id>_mask.png) or on --images/--masks.

    Writes RUN_DIR/config.yaml, metrics.jsonl, last.ckpt and best.ckpt. For many devices launch with
    `msrun --worker_num N --local_worker_num N roadseg train ...`.
    """
    from roadseg.train.loop import TrainConfig, load_run_config, run_training

    given = {key: value for key, value in flags.items() if value is not None}
    if data is not None:
        given["data"] = data
    if resume:
        base = load_run_config(resume).to_dict()
        changed = sorted(set(given) - {"epochs", "device", "device_id", "workers"})
        if changed:
            raise click.UsageError(f"--resume continues the saved configuration; only --epochs, --device, "
                                   f"--device-id and --workers may change (got {', '.join(changed)})")
        base.update(given)
        config = TrainConfig.from_dict(base)
    else:
        values = _load_yaml(config_path) if config_path else {}
        config = TrainConfig.from_dict(values, source=config_path, overrides=given)
    result = run_training(config, resume=bool(resume), overwrite=overwrite,
                          progress=_reporting_skipped(TrainingProgress(quiet, as_json)))
    if as_json:
        click.echo(json.dumps({"run_dir": str(result.run_dir), "epochs_completed": result.epochs_completed,
                               "best_loss": result.best_loss, "stopped": result.stopped,
                               "interrupted": result.interrupted,
                               "skipped": [str(problem) for problem in result.skipped]}))
    elif not quiet:
        click.echo(f"{result.run_dir}: {result.epochs_completed} epoch(s), best loss "
                   f"{result.best_loss if result.best_loss is not None else '-'}; {result.stopped}", err=True)
    if result.interrupted:
        sys.exit(EXIT_STATUS[result.signal or signal.SIGINT])
