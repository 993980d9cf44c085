"""Training options as YAML: reading a file, and turning each value into its option's type.

PyYAML reads YAML 1.1, where ``1e-4`` is text (its floats need a dot), and a file written by hand can
hold any type at all; each value is converted here, so a bad one fails with one line that names the
file and the key instead of a ``TypeError`` deep inside training.
"""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Callable
from pathlib import Path

from roadseg.errors import BadInputError, BadParameterError

TRUE_WORDS = frozenset({"true", "yes", "on"})
FALSE_WORDS = frozenset({"false", "no", "off"})


def read_yaml_options(path: Path | str, advice: str = "") -> dict[str, object]:
    """The mapping in YAML file ``path`` with snake_case keys (``batch-size`` reads as ``batch_size``).

    Anything else (unreadable, not YAML, not a mapping) is one :class:`BadInputError` naming the file,
    followed by ``advice`` (``"; ..."``), which says what to do about it.
    """
    import yaml

    try:
        values = yaml.safe_load(Path(path).read_bytes())
    except OSError as error:
        raise BadInputError(f"{path}: cannot be read ({error.strerror}){advice}") from error
    except yaml.YAMLError as error:
        raise BadInputError(f"{path}: not valid YAML ({yaml_problem(error)}){advice}") from error
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise BadInputError(f"{path}: holds a {type(values).__name__}, not a mapping of option: value{advice}")
    return {str(key).replace("-", "_"): value for key, value in values.items()}


def yaml_problem(error: Exception) -> str:
    """PyYAML's several-line error as one line: the problem and where it is."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return " ".join(f"{problem}{where}".split())


def parse_option(name: str, kind: object, value: object) -> object:
    """``value`` as option ``name`` of type ``kind`` (``int``, ``float``, ``bool`` or ``str``, or one of
    them ``| None``); :class:`BadParameterError` naming ``name`` when it is not one."""
    allowed = typing.get_args(kind) if isinstance(kind, types.UnionType) else (kind,)
    if value is None and type(None) in allowed:
        return None
    base = next(option for option in allowed if option is not type(None))
    parse, wanted = PARSERS[base]
    try:
        return parse(value)
    except (TypeError, ValueError):
        raise BadParameterError(name, f"must be {wanted}, got {value!r}") from None


def _whole(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(value)
    return int(value)


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(value)
    return float(value)  # text too: YAML 1.1 reads 1e-4 as a string


def _switch(value: object) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower() if isinstance(value, str) else None
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return word in TRUE_WORDS
    raise ValueError(value)


def _text(value: object) -> str:
    if isinstance(value, str | os.PathLike):
        return os.fspath(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(value)
    return str(value)


PARSERS: dict[type, tuple[Callable[[object], object], str]] = {
    int: (_whole, "a whole number"),
    float: (_number, "a number"),
    bool: (_switch, "true or false"),
    str: (_text, "text"),
}
"""Each option type: how a value becomes one, and what to call it when it cannot."""
