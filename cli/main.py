"""The ``roadseg`` command group: logging set-up, error rendering and command registration only."""

from __future__ import annotations

import importlib
import logging
import sys

import click

from roadseg import __version__
from roadseg.errors import BadParameterError, RoadsegError

# command name -> "module:attribute"; imported only when the command runs or help lists it.
COMMANDS: dict[str, str] = {
    "info": "roadseg.cli.info:info",
    "weights": "roadseg.cli.weights:weights",
    "export": "roadseg.cli.export:export",
    "vectorize": "roadseg.cli.vectorize:vectorize",
    "stitch": "roadseg.cli.stitch:stitch",
    "eval": "roadseg.cli.eval:eval_command",
    "train": "roadseg.cli.train:train",
    "predict": "roadseg.cli.predict:predict",
    "preview": "roadseg.cli.preview:preview",
}


class RoadsegGroup(click.Group):
    """A group that loads its commands lazily and turns :class:`RoadsegError` into one line and exit 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        return getattr(importlib.import_module(module_name), attribute)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BadParameterError as error:  # the library names parameters; the user typed flags
            flag = "--" + error.parameter.replace("_", "-")
            click.echo(f"Error: Invalid value for {flag}: {error.problem}", err=True)
            sys.exit(2)
        except RoadsegError as error:
            click.echo(f"Error: {error}", err=True)
            sys.exit(1)


@click.group(cls=RoadsegGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="roadseg")
@click.option("-v", "--verbose", count=True, help="More log output (repeat for debug).")
@click.option("-q", "--quiet", "quiet_logs", count=True, help="Less log output.")
def cli(verbose: int, quiet_logs: int) -> None:
    """Extract roads from satellite imagery with MindSpore's D-LinkNet."""
    level = logging.WARNING - 10 * (verbose - quiet_logs)
    logging.basicConfig(level=max(logging.DEBUG, min(level, logging.CRITICAL)),
                        format="%(levelname)s %(name)s: %(message)s")
