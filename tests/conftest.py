"""Shared fixtures: where the real sample data lives, and skips with a clear reason where it is absent."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ROADSEG_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))


def _private_cache() -> Path:
    """A cache directory of the test run's own, so the ONNX graphs of its random weights (120 MB each)
    never land in the user's cache. The measured CPU instruction-set decision is copied in from the
    user's cache when there is one, so the run does not measure it again."""
    from roadseg.model.registry import cache_dir

    users = cache_dir() / "cpu-isa"
    private = Path(tempfile.mkdtemp(prefix="roadseg-test-cache-"))
    if users.is_dir():
        shutil.copytree(users, private / "cpu-isa", ignore=shutil.ignore_patterns(".lock"))
    return private


os.environ["ROADSEG_CACHE"] = str(_private_cache())
atexit.register(shutil.rmtree, os.environ["ROADSEG_CACHE"], ignore_errors=True)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real imagery of ``../shared/data`` (DeepGlobe, SpaceNet Las Vegas, Landsat)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real sample data not found at {SHARED_DATA} (set ROADSEG_SHARED_DATA to its folder)")
    return SHARED_DATA
