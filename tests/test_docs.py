"""The examples of docs/api.md and of the library's docstrings run, and print what they say."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import roadseg
from tests.helpers_ckpt import write_zoo_checkpoint

ROOT = Path(__file__).resolve().parents[1]
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@pytest.mark.mindspore
def test_api_guide_examples_run(tmp_path):
    weights = tmp_path / "weights.ckpt"
    write_zoo_checkpoint(weights, signal=True)
    result = doctest.testfile(str(ROOT / "docs" / "api.md"), module_relative=False, globs={"weights": weights},
                              optionflags=FLAGS, verbose=False)
    assert result.attempted > 20 and result.failed == 0, f"{result.failed} example(s) of docs/api.md failed"


def _library_modules() -> list[str]:
    return [info.name for info in pkgutil.walk_packages(roadseg.__path__, "roadseg.")
            if not info.name.startswith("roadseg.cli")]


@pytest.mark.parametrize("name", _library_modules())
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=FLAGS, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"
