"""The shape of the house, kept: small functions, MindSpore only in model/ and train/, commands apart."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_PARAMETERS = 8
MAX_LINES = 80


def _sources(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_function_takes_more_than_eight_parameters_or_runs_past_eighty_lines():
    too_big = []
    for path in _sources("roadseg", "cli"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args
                named = args.posonlyargs + args.args + args.kwonlyargs
                count = len(named) - (1 if named and named[0].arg in ("self", "cls") else 0)
                length = node.end_lineno - node.lineno + 1
                if count > MAX_PARAMETERS or length > MAX_LINES:
                    too_big.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} "
                                   f"({count} parameters, {length} lines)")
    assert too_big == []


def test_only_model_and_train_reach_mindspore():
    outside = [str(path.relative_to(ROOT)) for path in _sources("roadseg")
               if "roadseg.model.mindspore_runtime" in _imported_modules(path)
               and path.parent.name not in ("model", "train")]
    assert outside == []


def test_no_command_imports_another():
    shared = {"roadseg.cli.options", "roadseg.cli.progress"}
    commands = {f"roadseg.cli.{path.stem}" for path in _sources("cli")} - shared - {"roadseg.cli.__init__"}
    crossing = [f"{path.name} imports {module}" for path in _sources("cli") if path.stem not in ("main", "__main__")
                for module in _imported_modules(path) & commands if module != f"roadseg.cli.{path.stem}"]
    assert crossing == []


def test_the_library_never_imports_the_cli():
    offenders = [str(path.relative_to(ROOT)) for path in _sources("roadseg")
                 if any(module.startswith("roadseg.cli") for module in _imported_modules(path))]
    assert offenders == []
