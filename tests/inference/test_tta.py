"""TTA transforms invert exactly; the wrapper averages mapped-back outputs in one predictor call."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from roadseg.inference.tta import TTA, Transform, tta_transforms, with_tta

shapes = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 9), st.integers(1, 9))


class TestTransforms:
    @pytest.mark.parametrize(("mode", "count"), [("none", 1), ("flip", 4), ("d4", 8)])
    def test_counts_and_distinct(self, mode, count):
        transforms = tta_transforms(mode)
        assert len(transforms) == count and transforms[0] == Transform()
        image = np.arange(16).reshape(4, 4)
        assert len({t.forward(image).tobytes() for t in transforms}) == count

    @settings(max_examples=100, deadline=None)
    @given(array=arrays(np.float32, shapes, elements=st.floats(-1e3, 1e3, width=32)),
           index=st.integers(0, 7))
    def test_inverse_restores_input(self, array, index):
        transform = tta_transforms(TTA.D4)[index]
        restored = transform.inverse(transform.forward(array))
        np.testing.assert_array_equal(restored, array)

    def test_d4_is_the_dihedral_group(self):
        image = np.arange(9).reshape(3, 3)
        expected = {np.rot90(m, k).tobytes() for m in (image, image.T) for k in range(4)}
        assert {t.forward(image).tobytes() for t in tta_transforms("d4")} == expected

    def test_unknown_mode(self):
        with pytest.raises(ValueError, match="'d8' is not a valid TTA"):
            tta_transforms("d8")


class TestWithTTA:
    @pytest.mark.parametrize("mode", list(TTA))
    @pytest.mark.parametrize("shape", [(2, 3, 6, 6), (1, 3, 4, 7)])
    def test_equivariant_predictor_is_unchanged(self, mode, shape):
        calls = []

        def predictor(batch):
            calls.append(batch.shape[0])
            return np.tanh(batch[:, 0])

        batch = np.random.default_rng(0).normal(size=shape).astype(np.float32)
        out = with_tta(predictor, mode)(batch)
        np.testing.assert_allclose(out, np.tanh(batch[:, 0]), rtol=1e-6)
        square = shape[-1] == shape[-2]
        expected_calls = 1 if mode == "none" or square or mode == "flip" else 2
        assert len(calls) == expected_calls
        assert sum(calls) == shape[0] * len(tta_transforms(mode))

    def test_mean_of_mapped_back_outputs(self):
        # a position-dependent predictor: the answer is the mean over the 8 mapped-back ramps
        ramp = np.arange(16, dtype=np.float32).reshape(4, 4)

        def predictor(batch):
            return np.broadcast_to(ramp, (batch.shape[0], 4, 4)).copy()

        out = with_tta(predictor, "d4")(np.zeros((1, 3, 4, 4), np.float32))
        expected = np.mean([t.inverse(ramp) for t in tta_transforms("d4")], axis=0)
        np.testing.assert_allclose(out[0], expected)
        assert not np.allclose(out[0], ramp)
