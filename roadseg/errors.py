"""Errors roadseg raises for problems a user can fix.

Every error here carries a one-line message that names the file or setting at fault and the fix.
A message names a setting by its parameter name in backticks (``pass `overwrite` to replace it``),
never by a command-line flag: the CLI shows each as the flag the user typed (``--overwrite``) when it
prints ``Error: <message>`` and exits with 1 (2 for a bad setting). Library users catch
:class:`RoadsegError`.
"""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

Choice = TypeVar("Choice", bound=Enum)

class RoadsegError(Exception):
    """Base class: a problem with the user's input, weights, device or environment."""


class BadParameterError(RoadsegError, ValueError):
    """A setting's value is out of range or inconsistent. ``parameter`` is the library's name for it
    (``scale_range``), which the CLI renders as its flag (``--scale-range``); ``problem`` says what is
    wrong without naming it. Also a ``ValueError``, as bad arguments are in Python."""

    def __init__(self, parameter: str, problem: str) -> None:
        super().__init__(f"{parameter} {problem}")
        self.parameter = parameter
        self.problem = problem


def parse_choice(kind: type[Choice], value: object, parameter: str) -> Choice:
    """``value`` (a member or its string) as a member of the enum ``kind``; else a one-line
    :class:`BadParameterError` that lists the choices, so settings objects need no check of their own."""
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(str(member.value) for member in kind)
        raise BadParameterError(parameter, f"must be one of {choices}, got {value!r}") from None


class BadInputError(RoadsegError):
    """An input file is unreadable, corrupt, or not the kind of data the command needs."""


class WeightsError(RoadsegError):
    """A checkpoint does not match the network (missing, extra or mis-shaped tensors) or is unreadable."""


class WeightsNotAvailableError(WeightsError):
    """Named weights are not cached and could not be downloaded."""


class DownloadError(RoadsegError):
    """A download failed (network error, connection dropped, or checksum mismatch)."""


class ChecksumMismatchError(DownloadError):
    """A downloaded or local file does not have the sha256 the registry records."""


class DeviceUnavailableError(RoadsegError):
    """The requested device (CPU, GPU, Ascend) is not usable with the installed MindSpore."""


class ExportError(RoadsegError):
    """The installed MindSpore or device cannot export to the requested format."""


class OutputError(RoadsegError):
    """An output cannot be written where it was asked for."""


class OutputExistsError(OutputError):
    """An output file already exists and ``overwrite`` was not given."""


class TrainingError(RoadsegError):
    """Training cannot go on (diverged, or its run directory does not fit the run)."""


class EngineError(RoadsegError):
    """An inference engine is missing, cannot run on the chosen device, or disagrees with MindSpore."""
