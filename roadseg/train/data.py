"""Training pairs: finding and checking them, the validation split, and the MindSpore input pipeline.

Every problem with the data (an image without a mask, a mask without an image, an unreadable file, a
size mismatch) is found before training starts and reported by file name, so a long run never dies
on file 4,000. Each sample's augmentation uses a generator seeded by (seed, epoch, position), so a
run's batches do not depend on how many workers load them.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from roadseg.errors import BadInputError
from roadseg.model.convention import NETWORK_STRIDE, InputConvention
from roadseg.train.augment import augment

SAT_SUFFIX = "_sat.jpg"
MASK_SUFFIX = "_mask.png"
GEOTIFF_SUFFIXES = (".tif", ".tiff")


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

    def raise_if_problems(self, skip_bad: bool) -> None:
        """One :class:`BadInputError` listing every problem, unless ``skip_bad`` (then only warn)."""
        if not self.problems:
            return
        listing = "; ".join(str(problem) for problem in self.problems)
        if skip_bad:
            warnings.warn(f"skipping {len(self.problems)} bad training file(s): {listing}", stacklevel=2)
            return
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


def _shape(path: Path) -> tuple[int, int, int]:
    """(bands, height, width) from the file header; raises BadInputError for unreadable files (the
    caller's :class:`DataProblem` names the file)."""
    from roadseg.io.raster_open import open_raster

    try:
        with open_raster(path) as src:
            return src.count, src.height, src.width
    except BadInputError as error:
        raise BadInputError(f"unreadable ({error.__cause__})") from error


def check_pairs(scan: PairScan) -> PairScan:
    """Open every pair's headers: drop unreadable files, images that are not 3-band, size mismatches."""
    checked = PairScan(problems=list(scan.problems))
    for pair in scan.pairs:
        try:
            image_shape = _shape(pair.image)
        except BadInputError as error:
            checked.problems.append(DataProblem(pair.image, str(error)))
            continue
        try:
            mask_shape = _shape(pair.mask)
        except BadInputError as error:
            checked.problems.append(DataProblem(pair.mask, str(error)))
            continue
        if image_shape[0] < 3:
            checked.problems.append(DataProblem(pair.image, f"has {image_shape[0]} band(s), need 3 (RGB)"))
        elif image_shape[1:] != mask_shape[1:]:
            checked.problems.append(DataProblem(
                pair.mask, f"size {mask_shape[2]}x{mask_shape[1]} does not match its image "
                           f"{pair.image.name} ({image_shape[2]}x{image_shape[1]})"))
        else:
            checked.pairs.append(pair)
    return checked


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
    from roadseg.io.raster_open import open_raster, reading

    arrays = []
    for path, bands in ((pair.image, [1, 2, 3]), (pair.mask, [1])):
        with open_raster(path, "it changed since training started; restore it and `resume`") as src, reading(path):
            arrays.append(src.read(bands))
    image, mask = arrays
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

    def __len__(self) -> int:
        return len(self.order) - self.start

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        position = self.start + int(index)
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
