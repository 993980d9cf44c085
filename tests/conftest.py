"""Shared fixtures: where the real sample data lives, and skips with a clear reason where it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ROADSEG_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real imagery of ``../shared/data`` (DeepGlobe, SpaceNet Las Vegas, Landsat)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real sample data not found at {SHARED_DATA} (set ROADSEG_SHARED_DATA to its folder)")
    return SHARED_DATA
