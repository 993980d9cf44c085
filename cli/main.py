"""The ``roadseg`` command group: logging set-up, error rendering and command registration only."""

from __future__ import annotations

import importlib
import logging
import re
import signal
import sys
import warnings
from collections.abc import Callable

import click

from roadseg import __version__
from roadseg.errors import BadParameterError, RoadsegError
from roadseg.interrupts import EXIT_STATUS, Terminated, take_over

_python_showwarning = warnings.showwarning

SETTING = re.compile(r"`([a-z][a-z0-9_]*)`")
"""How a library message names a setting: its parameter name in backticks."""

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
            flags = _flags_of(self, ctx)
            click.echo(f"Error: Invalid value for {flags(error.parameter)}: {as_flags(error.problem, flags)}",
                       err=True)
            sys.exit(2)
        except RoadsegError as error:
            click.echo(f"Error: {as_flags(str(error), _flags_of(self, ctx))}", err=True)
            sys.exit(1)
        except (KeyboardInterrupt, Terminated) as stop:  # a command with more to say handles it itself
            click.echo("Error: interrupted; nothing half-written was left behind", err=True)
            sys.exit(EXIT_STATUS[signal.SIGINT if isinstance(stop, KeyboardInterrupt) else signal.SIGTERM])


def _flags_of(group: click.Group, ctx: click.Context) -> Callable[[str], str]:
    """The flags of the command that ran (see :func:`_command_flags`)."""
    return _command_flags(group.get_command(ctx, ctx.invoked_subcommand) if ctx.invoked_subcommand else None)


def _command_flags(command: click.Command | None) -> Callable[[str], str]:
    """The flag of each parameter of ``command`` (its longest option string); a name no option of that
    command has is shown as ``--name-with-dashes``."""
    flags = {param.name: max(param.opts, key=len) for param in (command.params if command else ())
             if isinstance(param, click.Option)}
    return lambda name: flags.get(name, "--" + name.replace("_", "-"))


def as_flags(message: str, flag: Callable[[str], str]) -> str:
    """A library message with each setting it names (`` `name` ``, see :mod:`roadseg.errors`) as its flag."""
    return SETTING.sub(lambda match: flag(match.group(1)), message)


@click.group(cls=RoadsegGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="roadseg")
@click.option("-v", "--verbose", count=True, help="More log output (repeat for debug).")
@click.option("-q", "--quiet", "quiet_logs", count=True, help="Less log output.")
def cli(verbose: int, quiet_logs: int) -> None:
    """Extract roads from satellite imagery with MindSpore's D-LinkNet."""
    warnings.showwarning = _one_line_warning
    warnings.simplefilter("always", UserWarning)  # one line per file a warning is about, not per code line
    level = logging.WARNING - 10 * (verbose - quiet_logs)
    logging.basicConfig(level=max(logging.DEBUG, min(level, logging.CRITICAL)),
                        format="%(levelname)s %(name)s: %(message)s")


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as the user should read it: ``Warning: <message>``, without Python's source line, the
    settings it names as the running command's flags. Deprecation warnings keep Python's form: they are
    for developers, not about the user's data."""
    if issubclass(category, (UserWarning, RuntimeWarning)) and not issubclass(category, DeprecationWarning):
        context = click.get_current_context(silent=True)  # the running command's, naming its flags
        click.echo(f"Warning: {as_flags(str(message), _command_flags(context.command if context else None))}",
                   err=True)
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


def main() -> None:
    """The ``roadseg`` command: signals are taken over first (before any library starts a thread), so
    Ctrl-C and SIGTERM end every command cleanly (see :mod:`roadseg.interrupts`)."""
    take_over()
    cli(prog_name="roadseg")
