"""Resolve ``--weights NAME|PATH`` to a checkpoint file, downloading known weights when needed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from roadseg.errors import DownloadError, WeightsError, WeightsNotAvailableError
from roadseg.model.download import ProgressCallback, download, sha256_of
from roadseg.model.registry import REGISTRY, KnownWeights, cached_path


@dataclass(frozen=True)
class ResolvedWeights:
    """A checkpoint file, and the registry entry it came from (None for a user's own file)."""

    path: Path
    entry: KnownWeights | None

    @property
    def label(self) -> str:
        return self.entry.name if self.entry else str(self.path)


def download_known(entry: KnownWeights, *, url: str | None = None, progress: ProgressCallback | None = None,
                   overwrite: bool = False) -> Path:
    """Download ``entry`` (or the same file from a mirror ``url``) into the cache, sha256-checked."""
    return download(url or entry.url, cached_path(entry), sha256=entry.sha256, progress=progress,
                    overwrite=overwrite)


def offline_help(entry: KnownWeights) -> str:
    """How to get known weights onto a machine that cannot download them itself."""
    return (f"get them with `roadseg weights download {entry.name}` where there is network access "
            f"(then copy the file to {cached_path(entry)}), or download {entry.url} yourself and pass "
            "`weights` PATH")


def resolve_weights(weights: str | Path, *, allow_download: bool = True,
                    progress: ProgressCallback | None = None) -> ResolvedWeights:
    """A known name (cached, else downloaded) or an existing checkpoint path."""
    entry = REGISTRY.get(str(weights))
    if entry is None:
        path = Path(weights)
        if path.is_file():
            return ResolvedWeights(path, None)
        raise WeightsError(f"{weights}: neither a checkpoint file nor a known weights name "
                           f"({', '.join(REGISTRY)}); see `roadseg weights list`")
    path = cached_path(entry)
    if path.is_file():
        return ResolvedWeights(path, entry)
    if not allow_download:
        raise WeightsNotAvailableError(f"weights {entry.name} are not cached; {offline_help(entry)}")
    try:
        download_known(entry, progress=progress)
    except DownloadError as error:
        reason = str(error).removeprefix(f"{entry.url}: ")
        raise WeightsNotAvailableError(
            f"weights {entry.name} are not cached and could not be downloaded ({reason}); "
            f"{offline_help(entry)}") from error
    return ResolvedWeights(path, entry)


def verify_sha256(path: Path) -> KnownWeights | None:
    """The registry entry whose sha256 the file has, or None for a file roadseg does not know."""
    digest = sha256_of(path)
    return next((entry for entry in REGISTRY.values() if entry.sha256 == digest), None)
