"""Known weights: where to get them, their sha256, their architecture, input convention and training GSD."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from roadseg.model.convention import ZOO_CONVENTION, InputConvention


@dataclass(frozen=True)
class KnownWeights:
    """A published checkpoint that roadseg can download and verify by name."""

    name: str
    arch: str
    url: str
    sha256: str
    filename: str
    description: str
    license: str
    convention: InputConvention = field(default=ZOO_CONVENTION)
    gsd: float | None = None
    """Metres per pixel of the training imagery; prediction with ``gsd`` auto resamples inputs to it."""


ZOO_DLINKNET34_FILENAME = (
    "dlinknet_ascend_v170_DeepGlobeRoadExtractionDataset_research_cv_acc98.14_acccls89.39_iou98.08.ckpt")

REGISTRY: dict[str, KnownWeights] = {
    "dlinknet34-deepglobe": KnownWeights(
        name="dlinknet34-deepglobe",
        arch="dlinknet34",
        url=f"https://download.mindspore.cn/models/r1.7/{ZOO_DLINKNET34_FILENAME}",
        sha256="102594a59fdc3d53c44aa2bd5573ca5a38a77697c2c7016221917b8f21e9834d",
        filename=ZOO_DLINKNET34_FILENAME,
        description="MindSpore model zoo D-LinkNet34 trained on DeepGlobe Road Extraction (MindSpore 1.7)",
        license="Apache-2.0",
        gsd=0.5,  # DeepGlobe Road Extraction: DigitalGlobe imagery at 50 cm per pixel
    ),
}

DEFAULT_WEIGHTS = "dlinknet34-deepglobe"


def entry_for_file(path: Path | str) -> KnownWeights | None:
    """The entry whose published file name ``path`` has (a downloaded file passed as a path), or None."""
    return next((entry for entry in REGISTRY.values() if entry.filename == Path(path).name), None)


def cache_dir() -> Path:
    """Where downloaded weights live: ``$ROADSEG_CACHE`` if set, else the user cache dir for roadseg."""
    override = os.environ.get("ROADSEG_CACHE")
    return Path(override) if override else Path(platformdirs.user_cache_dir("roadseg"))


def cached_path(entry: KnownWeights) -> Path:
    """The file a downloaded ``entry`` is (or would be) stored at."""
    return cache_dir() / entry.filename
