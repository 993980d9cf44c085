"""Pairing and checking training data (every problem by name), the validation split, the sample source."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roadseg.errors import BadInputError
from roadseg.model.convention import ZOO_CONVENTION
from roadseg.train.data import (
    AugmentedSource,
    SampleRecipe,
    TrainPair,
    check_pairs,
    epoch_order,
    pair_by_stem,
    pair_deepglobe,
    read_pair,
    split_validation,
)
from tests.helpers_images import write_image


def _deepglobe_pair(directory: Path, key: str, size: int = 32, mask_size: int | None = None,
                    mask_channels: int = 1) -> None:
    rng = np.random.default_rng(abs(hash(key)) % 1000)
    write_image(directory / f"{key}_sat.jpg", rng.integers(0, 256, (3, size, size), dtype=np.uint8), "JPEG")
    mask_size = mask_size or size
    mask = np.zeros((mask_channels, mask_size, mask_size), np.uint8)
    mask[:, 4:8] = 255
    write_image(directory / f"{key}_mask.png", mask, "PNG")


class TestPairing:
    def test_pairs_and_every_problem_by_name(self, tmp_path):
        _deepglobe_pair(tmp_path, "good")
        _deepglobe_pair(tmp_path, "rgbmask", mask_channels=3)
        _deepglobe_pair(tmp_path, "lonely")
        (tmp_path / "lonely_mask.png").unlink()
        _deepglobe_pair(tmp_path, "orphan")
        (tmp_path / "orphan_sat.jpg").unlink()
        _deepglobe_pair(tmp_path, "broken")
        (tmp_path / "broken_sat.jpg").write_bytes(b"not a jpeg")
        _deepglobe_pair(tmp_path, "small", mask_size=16)
        scan = check_pairs(pair_deepglobe(tmp_path))
        assert [p.id for p in scan.pairs] == ["good", "rgbmask"]
        problems = {problem.path.name: problem.reason for problem in scan.problems}
        assert problems.keys() == {"lonely_sat.jpg", "orphan_mask.png", "broken_sat.jpg", "small_mask.png"}
        assert "without a mask" in problems["lonely_sat.jpg"]
        assert "without an image" in problems["orphan_mask.png"]
        assert "unreadable" in problems["broken_sat.jpg"]
        assert "does not match" in problems["small_mask.png"]
        with pytest.raises(BadInputError, match=r"4 problem\(s\).*lonely_sat\.jpg.*`skip_bad`"):
            scan.raise_if_problems(skip_bad=False)

    def test_skip_bad_returns_the_problems_without_a_python_warning(self, tmp_path):
        """The CLI prints one ``Warning:`` line per file from the list; a Python warning would add its
        ``warnings.warn(...)`` source line to the output."""
        _deepglobe_pair(tmp_path, "good")
        _deepglobe_pair(tmp_path, "lonely")
        (tmp_path / "lonely_mask.png").unlink()
        scan = check_pairs(pair_deepglobe(tmp_path))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            skipped = scan.raise_if_problems(skip_bad=True)
        assert [(p.path.name, p.reason) for p in skipped] == [("lonely_sat.jpg", "image without a mask")]
        assert [p.id for p in scan.pairs] == ["good"]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert check_pairs(pair_deepglobe(tmp_path)).pairs == scan.pairs  # clean data: nothing skipped
        clean = check_pairs(pair_deepglobe(tmp_path))
        clean.problems.clear()
        assert clean.raise_if_problems(skip_bad=True) == []

    def test_geotiff_pairs_by_stem(self, tmp_path):
        images, masks = tmp_path / "img", tmp_path / "msk"
        images.mkdir()
        masks.mkdir()
        for stem in ("a", "b"):
            write_image(images / f"{stem}.tif", np.zeros((3, 32, 32), np.uint8), "GTiff")
        write_image(masks / "a.tif", np.ones((32, 32), np.uint8), "GTiff")
        write_image(masks / "c.tif", np.ones((32, 32), np.uint8), "GTiff")
        write_image(images / "gray.tif", np.zeros((1, 32, 32), np.uint8), "GTiff")
        write_image(masks / "gray.tif", np.ones((32, 32), np.uint8), "GTiff")
        scan = check_pairs(pair_by_stem(images, masks))
        assert [p.id for p in scan.pairs] == ["a"]
        problems = {(p.path.parent.name, p.path.name): p.reason for p in scan.problems}
        assert "without a mask" in problems[("img", "b.tif")]
        assert "without an image" in problems[("msk", "c.tif")]
        assert "need 3" in problems[("img", "gray.tif")]

    def test_images_that_are_not_8_bit_are_found_by_the_check(self, tmp_path):
        images, masks = tmp_path / "img", tmp_path / "msk"
        images.mkdir()
        masks.mkdir()
        write_image(images / "deep.tif", np.zeros((3, 32, 32), np.uint16), "GTiff")
        write_image(masks / "deep.tif", np.ones((32, 32), np.uint8), "GTiff")
        scan = check_pairs(pair_by_stem(images, masks))
        assert scan.pairs == []
        assert [(p.path.name, p.reason) for p in scan.problems] == [
            ("deep.tif", "pixel type uint16; training needs 8-bit RGB images")]

    def test_empty_and_missing_directories(self, tmp_path):
        with pytest.raises(BadInputError, match="no training pairs"):
            pair_deepglobe(tmp_path)
        with pytest.raises(BadInputError, match="no such data directory"):
            pair_deepglobe(tmp_path / "nope")

    def test_read_pair_masks(self, tmp_path):
        _deepglobe_pair(tmp_path, "x", mask_channels=3)
        image, mask = read_pair(TrainPair("x", tmp_path / "x_sat.jpg", tmp_path / "x_mask.png"))
        assert image.shape == (32, 32, 3) and image.dtype == np.uint8
        assert mask.dtype == np.float32 and mask.sum() == 4 * 32 and mask[4:8].all()


def _cut(source: Path, target: Path, length: int) -> None:
    target.write_bytes(source.read_bytes()[:length])


def _scan_header_end(jpeg: bytes) -> int:
    """Where a JPEG's entropy-coded scan data starts: just past its start-of-scan (FFDA) segment."""
    start = jpeg.index(b"\xff\xda")
    return start + 2 + int.from_bytes(jpeg[start + 2:start + 4], "big")


class TestTruncatedFiles:
    """A JPEG cut after its header opens like a good one (size, bands) and fails only when decoded."""

    def test_the_check_finds_jpegs_and_pngs_cut_anywhere(self, shared_data, tmp_path):
        train = shared_data / "deepglobe" / "train"
        jpeg, png = train / "104_sat.jpg", train / "104_mask.png"
        size, scan_start = jpeg.stat().st_size, _scan_header_end(jpeg.read_bytes())
        cuts = {"header": scan_start, "early": scan_start + 1000, "half": size // 2, "end": size - 2}
        for name, length in cuts.items():
            _cut(jpeg, tmp_path / f"{name}_sat.jpg", length)
            shutil.copy(png, tmp_path / f"{name}_mask.png")
        shutil.copy(jpeg, tmp_path / "good_sat.jpg")
        shutil.copy(png, tmp_path / "good_mask.png")
        shutil.copy(jpeg, tmp_path / "cutmask_sat.jpg")
        _cut(png, tmp_path / "cutmask_mask.png", png.stat().st_size // 2)
        scan = check_pairs(pair_deepglobe(tmp_path))
        assert [p.id for p in scan.pairs] == ["good"]
        problems = {problem.path.name: problem.reason for problem in scan.problems}
        assert problems.keys() == {f"{name}_sat.jpg" for name in cuts} | {"cutmask_mask.png"}
        for reason in problems.values():
            assert reason.startswith("unreadable: reading failed, the file may be truncated or corrupt")
            assert "\n" not in reason and "GDAL_ERROR_ON_LIBJPEG_WARNING" not in reason  # GDAL's own advice
            assert "IReadBlock" not in reason  # GDAL's internal block numbers
        assert "Premature end of JPEG file" in problems["half_sat.jpg"]

    def test_small_pngs_cut_short_are_found_every_time(self, tmp_path):
        """GDAL reads a small PNG whole, and then reports no error for one cut short (handing back
        whatever memory held, different at each read): the check must still find every cut."""
        rng = np.random.default_rng(3)
        write_image(tmp_path / "whole.png", rng.integers(0, 256, (3, 64, 64), dtype=np.uint8), "PNG")
        whole = (tmp_path / "whole.png").read_bytes()
        cuts = [len(whole) // 4, len(whole) // 3, len(whole) // 2, len(whole) - 200]
        for index, length in enumerate(cuts):
            (tmp_path / f"p{index}_sat.jpg").write_bytes(whole[:length])  # DeepGlobe names; PNG inside
            write_image(tmp_path / f"p{index}_mask.png", np.zeros((64, 64), np.uint8), "PNG")
        for _ in range(3):
            scan = check_pairs(pair_deepglobe(tmp_path))
            assert scan.pairs == []
            assert sorted(p.path.name for p in scan.problems) == [f"p{i}_sat.jpg" for i in range(len(cuts))]
            assert all("truncated or corrupt" in p.reason for p in scan.problems)

    def test_a_file_cut_after_the_check_names_itself_when_read(self, shared_data, tmp_path):
        """What slips past the check (a file damaged while training runs) fails naming the file, and
        the source keeps the error: MindSpore's pipeline passes it on only as text."""
        train = shared_data / "deepglobe" / "train"
        shutil.copy(train / "104_sat.jpg", tmp_path / "a_sat.jpg")
        shutil.copy(train / "104_mask.png", tmp_path / "a_mask.png")
        pairs = check_pairs(pair_deepglobe(tmp_path)).pairs
        source = AugmentedSource(pairs, [0], SampleRecipe(ZOO_CONVENTION, crop=256), seed=0, epoch=0)
        assert source[0][0].shape == (3, 256, 256) and source.failure is None
        _cut(train / "104_sat.jpg", tmp_path / "a_sat.jpg", 5000)
        with pytest.raises(BadInputError, match=r"a_sat\.jpg: reading failed.*truncated") as caught:
            source[0]
        assert source.failure is caught.value


def _pairs(ids):
    return [TrainPair(i, Path(f"{i}_sat.jpg"), Path(f"{i}_mask.png")) for i in ids]


class TestSplit:
    @settings(max_examples=40, deadline=None)
    @given(ids=st.sets(st.text("abcdef0123", min_size=1, max_size=6), min_size=2, max_size=40),
           fraction=st.floats(0.01, 0.5), seed=st.integers(0, 100))
    def test_partition_independent_of_order(self, ids, fraction, seed):
        pairs = _pairs(sorted(ids))
        train, valid = split_validation(pairs, fraction, seed)
        train2, valid2 = split_validation(list(reversed(pairs)), fraction, seed)
        assert (train, valid) == (train2, valid2)
        assert {p.id for p in train} | {p.id for p in valid} == ids
        assert not {p.id for p in train} & {p.id for p in valid}
        assert 1 <= len(valid) <= len(ids) - 1
        assert len(valid) == min(max(round(fraction * len(ids)), 1), len(ids) - 1)

    def test_adding_a_file_moves_at_most_one(self):
        ids = [f"{i:04d}" for i in range(100)]
        _, valid = split_validation(_pairs(ids), 0.1, 3)
        _, valid_more = split_validation(_pairs(ids + ["9999"]), 0.1, 3)
        assert len({p.id for p in valid} ^ {p.id for p in valid_more}) <= 2

    def test_seed_changes_the_split(self):
        ids = [f"{i:04d}" for i in range(100)]
        assert split_validation(_pairs(ids), 0.1, 1)[1] != split_validation(_pairs(ids), 0.1, 2)[1]

    def test_zero_fraction(self):
        train, valid = split_validation(_pairs(["a", "b"]), 0.0, 0)
        assert len(train) == 2 and valid == []


class TestEpochOrder:
    @settings(max_examples=40, deadline=None)
    @given(count=st.integers(1, 60), size=st.integers(1, 4), seed=st.integers(0, 50), epoch=st.integers(0, 5))
    def test_ranks_partition_a_permutation(self, count, size, seed, epoch):
        orders = [epoch_order(count, seed=seed, epoch=epoch, rank=r, group_size=size) for r in range(size)]
        flat = [i for order in orders for i in order]
        assert len(set(flat)) == len(flat) == count // size * size
        assert all(len(order) == count // size for order in orders)

    @settings(max_examples=30, deadline=None)
    @given(count=st.integers(4, 40), size=st.integers(1, 4), batch=st.integers(1, 3))
    def test_global_batch_equals_single_worker_batch(self, count, size, batch):
        single = epoch_order(count // size * size, seed=0, epoch=0)
        orders = [epoch_order(count // size * size, seed=0, epoch=0, rank=r, group_size=size)
                  for r in range(size)]
        steps = count // size // batch
        for k in range(steps):
            global_batch = {i for order in orders for i in order[k * batch:(k + 1) * batch]}
            assert global_batch == set(single[k * size * batch:(k + 1) * size * batch])


class TestAugmentedSource:
    def test_items_independent_of_access_order_and_start(self, tmp_path):
        for key in "abcd":
            _deepglobe_pair(tmp_path, key)
        pairs = pair_deepglobe(tmp_path).pairs
        order = epoch_order(4, seed=1, epoch=0)
        source = AugmentedSource(pairs, order, SampleRecipe(ZOO_CONVENTION, crop=None), seed=1, epoch=0)
        items = [source[i] for i in range(4)]
        assert [a.shape for a, _ in items] == [(3, 32, 32)] * 4
        assert [m.shape for _, m in items] == [(1, 32, 32)] * 4
        again = [source[i] for i in reversed(range(4))][::-1]
        for (a, m), (b, n) in zip(items, again):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(m, n)
        resumed = AugmentedSource(pairs, order, SampleRecipe(ZOO_CONVENTION, crop=None), seed=1, epoch=0, start=2)
        assert len(resumed) == 2
        np.testing.assert_array_equal(resumed[0][0], items[2][0])

    def test_size_not_multiple_of_32(self, tmp_path):
        _deepglobe_pair(tmp_path, "odd", size=40)
        pairs = pair_deepglobe(tmp_path).pairs
        source = AugmentedSource(pairs, [0], SampleRecipe(ZOO_CONVENTION, crop=None), seed=0, epoch=0)
        with pytest.raises(BadInputError, match="odd_sat.jpg.*`crop`"):
            source[0]
