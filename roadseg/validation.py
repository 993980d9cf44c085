"""Range checks of numeric settings, so that every setting refuses a bad value with one message form."""

from __future__ import annotations

from roadseg.errors import BadParameterError


def require(name: str, value: object, valid: bool, expected: str) -> None:
    """Raise :class:`BadParameterError` ``"<name> must be <expected>, got <value>"`` unless ``valid``.

    >>> require("slack", -1, False, ">= 0 pixels")
    Traceback (most recent call last):
    ...
    roadseg.errors.BadParameterError: slack must be >= 0 pixels, got -1
    """
    if not valid:
        raise BadParameterError(name, f"must be {expected}, got {value!r}")
