"""Errors roadseg raises for problems a user can fix.

Every error here carries a one-line message that names the file or setting at fault and the fix.
The CLI prints ``Error: <message>`` and exits with 1; library users catch :class:`RoadsegError`.
"""

from __future__ import annotations


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
