"""The input convention: channel order and scaling of the zoo weights."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from roadseg.model.convention import ZOO_CONVENTION, InputConvention


@given(arrays(np.uint8, st.tuples(st.integers(1, 6), st.integers(1, 6), st.just(3))))
def test_zoo_convention_is_bgr_scaled_to_plus_minus_1_6(rgb):
    out = ZOO_CONVENTION.to_network(rgb)
    assert out.dtype == np.float32 and out.shape == (3, *rgb.shape[:2])
    expected = rgb[:, :, ::-1].transpose(2, 0, 1).astype(np.float64) / 255 * 3.2 - 1.6
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_extremes_map_to_the_zoo_range():
    out = ZOO_CONVENTION.to_network(np.array([[[0, 255, 0]]], dtype=np.uint8))
    np.testing.assert_allclose(out[:, 0, 0], [-1.6, 1.6, -1.6], atol=1e-6)


def test_json_round_trip_and_validation():
    convention = InputConvention("RGB", 0.5, 1.0)
    assert InputConvention.from_json(convention.to_json()) == convention
    with pytest.raises(ValueError, match="permutation of 'RGB'"):
        InputConvention("RGX")
    with pytest.raises(ValueError, match=r"expected an \(H, W, 3\) RGB array"):
        ZOO_CONVENTION.to_network(np.zeros((4, 4), dtype=np.uint8))
