"""Training pairs: finding and checking them, the validation split, and the MindSpore input pipeline.

Every problem with the data (an image without a mask, a mask without an image, an unreadable,
truncated or corrupt file, a size mismatch) is found before training starts and reported by file name,
so a long run never dies on file 4,000: the check decodes every file in full, as a JPEG cut short after
its header opens like a good one and fails only when its pixels are read. Each sample's augmentation
uses a generator seeded by (seed, epoch, position), so a run's batches do not depend on how many
workers load them.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from roadseg.errors import BadInputError
from roadseg.model.convention import NETWORK_STRIDE, InputConvention
from roadseg.train.augment import augment

SAT_SUFFIX = "_sat.jpg"
MASK_SUFFIX = "_mask.png"
GEOTIFF_SUFFIXES = (".tif", ".tiff")
#: Files decoded at once by the check: GDAL decodes outside the GIL, and a DeepGlobe pair takes ~35 ms.
CHECK_THREADS = min(8, os.cpu_count() or 1)
#: What GDAL adds to a decoding error that says nothing to someone training: which internal block
#: failed, and the setting that turns libjpeg's errors into warnings.
_GDAL_NOISE = re.compile(r"[^(]*, band \d+: IReadBlock failed at X offset \d+, Y offset \d+: "
                         r"|\s*\(this error can be turned as a warning[^)]*\)")


@dataclass(frozen=True)
class TrainPair:
    """One training sample: an id and its image and mask files."""

    id: str
    image: Path
    mask: Path


@dataclass(frozen=True)
class DataProblem:
    """A file that cannot be trained on, and why."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class PairScan:
    """Usable pairs plus every problem found while pairing and checking."""

    pairs: list[TrainPair] = field(default_factory=list)
    problems: list[DataProblem] = field(default_factory=list)

    def raise_if_problems(self, skip_bad: bool) -> list[DataProblem]:
        """One :class:`BadInputError` listing every problem, unless ``skip_bad``: then the problems, for
        the caller to report (the CLI prints a ``Warning:`` line for each)."""
        if not self.problems or skip_bad:
            return list(self.problems)
        listing = "; ".join(str(problem) for problem in self.problems)
        raise BadInputError(f"{len(self.problems)} problem(s) in the training data: {listing} "
                            "(fix them, or pass `skip_bad` to train on the rest)")


def pair_deepglobe(directory: Path | str) -> PairScan:
    """Pair every ``<id>_sat.jpg`` with ``<id>_mask.png`` in ``directory`` (the DeepGlobe layout)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise BadInputError(f"{directory}: no such data directory")
    images = {p.name[:-len(SAT_SUFFIX)]: p for p in directory.iterdir() if p.name.endswith(SAT_SUFFIX)}
    masks = {p.name[:-len(MASK_SUFFIX)]: p for p in directory.iterdir() if p.name.endswith(MASK_SUFFIX)}
    return _match(images, masks, directory, f"*{SAT_SUFFIX} / *{MASK_SUFFIX}")


def pair_by_stem(images_dir: Path | str, masks_dir: Path | str) -> PairScan:
    """Pair GeoTIFF images and masks in two directories by file stem (``a.tif`` with ``a.tif``)."""
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    for directory in (images_dir, masks_dir):
        if not directory.is_dir():
            raise BadInputError(f"{directory}: no such directory")
    images = {p.stem: p for p in images_dir.iterdir() if p.suffix.lower() in GEOTIFF_SUFFIXES}
    masks = {p.stem: p for p in masks_dir.iterdir() if p.suffix.lower() in GEOTIFF_SUFFIXES}
    return _match(images, masks, images_dir, "*.tif")


def _match(images: dict[str, Path], masks: dict[str, Path], where: Path, pattern: str) -> PairScan:
    scan = PairScan()
    for key in sorted(set(images) | set(masks)):
        if key not in masks:
            scan.problems.append(DataProblem(images[key], "image without a mask"))
        elif key not in images:
            scan.problems.append(DataProblem(masks[key], "mask without an image"))
        else:
            scan.pairs.append(TrainPair(key, images[key], masks[key]))
    if not scan.pairs and not scan.problems:
        raise BadInputError(f"{where}: no training pairs ({pattern}) found")
    return scan


def _read(path: Path, bands: list[int] | None = None) -> np.ndarray:
    """Every pixel of ``bands`` (all when None), (bands, height, width); one :class:`BadInputError` naming
    the file when it cannot be opened or decoded to the end.

    GDAL's whole-image shortcut for PNG is off: it reads a PNG cut short without an error (and hands back
    whatever memory held), where its row-by-row reading fails as it should, at no cost in speed.
    """
    import rasterio

    from roadseg.io.raster_open import open_raster, reading

    try:
        with rasterio.Env(GDAL_PNG_WHOLE_IMAGE_OPTIM="NO"), open_raster(path) as src, reading(path):
            return src.read(bands)
    except BadInputError as error:
        raise BadInputError(_GDAL_NOISE.sub("", str(error))) from error


def _decoded(path: Path) -> np.ndarray:
    """All of ``path``'s pixels, (bands, height, width); the :class:`BadInputError` says why not without
    the file's name (the caller's :class:`DataProblem` names it)."""
    try:
        return _read(path)
    except BadInputError as error:
        raise BadInputError(f"unreadable: {str(error).removeprefix(f'{path}: ')}") from error


def _pair_problem(pair: TrainPair) -> DataProblem | None:
    """Why ``pair`` cannot be trained on (the first problem found), or None."""
    arrays = []
    for path in (pair.image, pair.mask):
        try:
            arrays.append(_decoded(path))
        except BadInputError as error:
            return DataProblem(path, str(error))
    image, mask = arrays
    if image.shape[0] < 3:
        return DataProblem(pair.image, f"has {image.shape[0]} band(s), need 3 (RGB)")
    if image.dtype != np.uint8:
        return DataProblem(pair.image, f"pixel type {image.dtype}; training needs 8-bit RGB images")
    if image.shape[1:] != mask.shape[1:]:
        return DataProblem(pair.mask, f"size {mask.shape[2]}x{mask.shape[1]} does not match its image "
                                      f"{pair.image.name} ({image.shape[2]}x{image.shape[1]})")
    return None


def check_pairs(scan: PairScan, threads: int = CHECK_THREADS) -> PairScan:
    """Decode every pair in full (``threads`` files at once): drop unreadable, truncated or corrupt
    files, images that are not 3-band, and size mismatches. Pairs and problems keep their order."""
    checked = PairScan(problems=list(scan.problems))
    with ThreadPoolExecutor(max(1, threads)) as pool:
        for pair, problem in zip(scan.pairs, pool.map(_pair_problem, scan.pairs)):
            if problem is None:
                checked.pairs.append(pair)
            else:
                checked.problems.append(problem)
    return checked


def training_gsd(pairs: Sequence[TrainPair], given: float | None = None) -> float | None:
    """The GSD a run records in its checkpoints: the median metres per pixel of the georeferenced images
    among ``pairs``, else ``given`` (images without georeferencing: JPG/PNG), else None (unknown).

    A ``given`` GSD that the georeferencing contradicts (by more than the 10 % prediction tolerates) is
    overruled by it, with a warning.
    """
    from roadseg.inference.gsd import differs, raster_gsd
    from roadseg.io.raster_open import open_raster

    found = []
    for pair in pairs:
        if pair.image.suffix.lower() not in GEOTIFF_SUFFIXES:
            continue  # plain images carry no georeferencing roadseg uses
        with open_raster(pair.image) as dataset:
            gsd = raster_gsd(dataset.crs, dataset.transform, dataset.height, dataset.width)
        if gsd is not None:
            found.append(gsd)
    if not found:
        return given
    median = float(np.median(found))
    if given is not None and differs(given, median):
        warnings.warn(f"`gsd` {given:g} m disagrees with the {median:.3g} m median of the training images' "
                      "georeferencing; recording their median", stacklevel=2)
    return median


def split_validation(pairs: Sequence[TrainPair], fraction: float, seed: int
                     ) -> tuple[list[TrainPair], list[TrainPair]]:
    """(train, validation): the ``round(fraction * n)`` pairs whose hash of (seed, id) is smallest.

    Depends only on the seed and the ids, never on listing order, so adding files moves few others.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    count = int(round(fraction * len(pairs)))
    if fraction > 0 and len(pairs) > 1:
        count = min(max(count, 1), len(pairs) - 1)

    def rank(pair: TrainPair) -> tuple[bytes, str]:
        return hashlib.sha256(f"{seed}:{pair.id}".encode()).digest(), pair.id

    ordered = sorted(pairs, key=rank)
    chosen = {pair.id for pair in ordered[:count]}
    train = sorted((p for p in pairs if p.id not in chosen), key=lambda p: p.id)
    valid = sorted((p for p in pairs if p.id in chosen), key=lambda p: p.id)
    return train, valid


def read_pair(pair: TrainPair) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 RGB and (H, W) float32 0/1 mask (value/255 >= 0.5 is road; 0/1 masks as such)."""
    image, mask = _read(pair.image, [1, 2, 3]), _read(pair.mask, [1])
    if image.dtype != np.uint8:
        raise BadInputError(f"{pair.image}: pixel type {image.dtype}; training needs 8-bit RGB images")
    mask = mask[0]
    road = mask > 0 if mask.max(initial=0) <= 1 else mask.astype(np.float32) / 255.0 >= 0.5
    return np.transpose(image, (1, 2, 0)), road.astype(np.float32)


def epoch_order(count: int, *, seed: int, epoch: int, rank: int = 0, group_size: int = 1) -> list[int]:
    """This rank's sample indices for one epoch: a seeded shuffle dealt out to ranks in turn.

    Dealing (rank r takes shuffled items r, r + N, r + 2N, ...) makes step k's global batch over N
    ranks with batch b exactly the items a single worker with batch N*b sees at its step k.
    """
    permutation = np.random.default_rng([seed, epoch]).permutation(count)
    usable = count // group_size * group_size
    return [int(i) for i in permutation[:usable][rank::group_size]]


@dataclass(frozen=True)
class SampleRecipe:
    """How a training pair becomes a network sample: random ``crop`` (pixels, or the whole image),
    the zoo's augmentation when ``augment``, then the weights' input ``convention``."""

    convention: InputConvention
    crop: int | None = None
    augment: bool = True


class AugmentedSource:
    """Random-access source for ``GeneratorDataset``: item k is sample ``order[k]``, augmented.

    The generator for item k is seeded by (seed, epoch, global position), so the result is the same
    whichever worker, process or rank produces it.
    """

    def __init__(self, pairs: Sequence[TrainPair], order: Sequence[int], recipe: SampleRecipe, *, seed: int,
                 epoch: int, rank: int = 0, group_size: int = 1, start: int = 0) -> None:
        self.pairs = list(pairs)
        self.order = list(order)
        self.recipe = recipe
        self.seed, self.epoch, self.start = seed, epoch, start
        self.rank, self.group_size = rank, group_size
        #: What an item raised last: MindSpore's pipeline hands it on only as text in its own error.
        self.failure: BadInputError | None = None

    def __len__(self) -> int:
        return len(self.order) - self.start

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        try:
            return self._item(self.start + int(index))
        except BadInputError as error:
            self.failure = error
            raise

    def _item(self, position: int) -> tuple[np.ndarray, np.ndarray]:
        image, mask = read_pair(self.pairs[self.order[position]])
        rng = np.random.default_rng([self.seed, self.epoch, position * self.group_size + self.rank])
        recipe = self.recipe
        if recipe.augment:
            image, mask = augment(image, mask, rng, crop=recipe.crop)
        elif recipe.crop is not None:
            from roadseg.train.augment import random_crop
            image, mask = random_crop(image, mask, recipe.crop, rng)
        if image.shape[0] % NETWORK_STRIDE or image.shape[1] % NETWORK_STRIDE:
            raise BadInputError(f"{self.pairs[self.order[position]].image}: {image.shape[1]}x{image.shape[0]}"
                                f" is not a multiple of {NETWORK_STRIDE}; pass `crop`")
        return recipe.convention.to_network(image), mask[None].astype(np.float32)


def make_dataset(source: AugmentedSource, batch_size: int, *, workers: int = 2,
                 multiprocessing: bool = False):
    """A batched ``mindspore.dataset.GeneratorDataset`` over ``source`` in its own order (no reshuffle)."""
    from roadseg.model.mindspore_runtime import ms

    ds = ms.dataset

    dataset = ds.GeneratorDataset(source, column_names=["image", "mask"], shuffle=False,
                                  num_parallel_workers=max(1, workers),
                                  python_multiprocessing=multiprocessing)
    return dataset.batch(batch_size, drop_remainder=True)
