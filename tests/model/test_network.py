"""The network: zoo names and shapes, transposed convolutions against numpy, forward shapes and range."""

from __future__ import annotations

import numpy as np
import pytest

from roadseg.model.mindspore_runtime import ms  # noqa: E402
from tests.helpers_ckpt import reference_params

pytestmark = pytest.mark.mindspore

from roadseg.model.network import (  # noqa: E402
    TRANSPOSED_CONV_FORMS,
    DLinkNet34,
    DLinkNet50,
    PhaseTransposedConv2d,
    build_network,
)


def transposed_conv_reference(x, weight, bias, *, stride, padding, output_padding):
    """Plain scatter-add definition of a 2-D transposed convolution (PyTorch's ConvTranspose2d)."""
    n, _, height, width = x.shape
    k = weight.shape[-1]
    full = np.zeros((n, weight.shape[1], (height - 1) * stride + k + output_padding,
                     (width - 1) * stride + k + output_padding))
    for ky in range(k):
        for kx in range(k):
            contribution = np.einsum("nchw,co->nohw", x, weight[:, :, ky, kx])
            full[:, :, ky:ky + stride * height:stride, kx:kx + stride * width:stride] += contribution
    out_h = (height - 1) * stride - 2 * padding + k + output_padding
    out_w = (width - 1) * stride - 2 * padding + k + output_padding
    return full[:, :, padding:padding + out_h, padding:padding + out_w] + bias[None, :, None, None]


@pytest.fixture(scope="module")
def net34():
    ms.set_context(mode=ms.GRAPH_MODE)
    network = DLinkNet34()
    network.set_train(False)
    return network


@pytest.mark.parametrize("arch, cls", [("dlinknet34", DLinkNet34), ("dlinknet50", DLinkNet50)])
def test_checkpoint_names_and_shapes_equal_the_zoo(arch, cls):
    network = cls()
    mine = [(p.name, tuple(p.shape)) for p in network.get_parameters()]
    reference = [(name, shape) for name, shape, _ in reference_params(arch)]
    assert sorted(mine) == sorted(reference)
    assert len(mine) == {"dlinknet34": 266, "dlinknet50": 352}[arch]


def test_dlinknet34_value_count_matches_the_reference(net34):
    assert sum(int(np.prod(p.shape)) for p in net34.get_parameters()) == 31_115_137


def test_decoder_transposed_conv_weight_is_stored_5d(net34):
    assert tuple(net34.decoder4.deconv3.weight.shape) == (128, 128, 1, 3, 3)
    assert tuple(net34.finaldeconv1.weight.shape) == (64, 32, 4, 4)


@pytest.fixture(scope="module")
def net34_by_form():
    return {form: DLinkNet34(form) for form in TRANSPOSED_CONV_FORMS}


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("form", sorted(TRANSPOSED_CONV_FORMS))
@pytest.mark.parametrize("mode", ["GRAPH", "PYNATIVE"])
@pytest.mark.parametrize("cell_name", ["decoder4", "decoder3", "decoder2", "decoder1", "finaldeconv1"])
def test_every_transposed_conv_matches_numpy_including_last_row_and_column(net34_by_form, form, cell_name, mode,
                                                                           batch):
    ms.set_context(mode=ms.GRAPH_MODE if mode == "GRAPH" else ms.PYNATIVE_MODE)
    try:
        cell = getattr(net34_by_form[form], cell_name)
        cell = cell.deconv3 if cell_name.startswith("decoder") else cell
        output_padding = 1 if cell_name.startswith("decoder") else 0
        rng = np.random.default_rng(1)
        cell.bias.set_data(ms.Tensor(rng.normal(size=cell.out_channels).astype(np.float32)))
        x = rng.normal(size=(batch, cell.in_channels, 5, 7)).astype(np.float32)  # odd, non-square
        got = cell(ms.Tensor(x)).asnumpy()
        weight = cell.weight.asnumpy().reshape(cell.in_channels, cell.out_channels, cell.kernel_size,
                                               cell.kernel_size)
        expected = transposed_conv_reference(x.astype(np.float64), weight.astype(np.float64),
                                             cell.bias.asnumpy(), stride=2, padding=1,
                                             output_padding=output_padding)
        assert got.shape == expected.shape == (batch, cell.out_channels, 10, 14)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
        # the row and column MindSpore's CPU Conv2dTranspose got wrong: more than the bias there
        assert not np.allclose(got[:, :, -1, :], cell.bias.asnumpy()[None, :, None])
        assert not np.allclose(got[:, :, :, -1], cell.bias.asnumpy()[None, :, None])
    finally:
        ms.set_context(mode=ms.GRAPH_MODE)


def test_phase_transposed_conv_rejects_a_weight_shape_that_does_not_fit():
    with pytest.raises(ValueError, match="does not hold a 3x3 kernel"):
        PhaseTransposedConv2d(4, 4, 3, padding=1, weight_shape=(4, 4, 2, 3, 3))


def test_forward_256_gives_one_channel_probabilities_of_the_input_size(net34):
    x = np.random.default_rng(0).uniform(-1.6, 1.6, size=(1, 3, 256, 256)).astype(np.float32)
    y = net34(ms.Tensor(x)).asnumpy()
    assert y.shape == (1, 1, 256, 256)
    assert np.isfinite(y).all() and y.min() >= 0.0 and y.max() <= 1.0


@pytest.mark.slow
def test_forward_1024_gives_one_channel_probabilities_of_the_input_size(net34):
    x = np.random.default_rng(0).uniform(-1.6, 1.6, size=(1, 3, 1024, 1024)).astype(np.float32)
    y = net34(ms.Tensor(x)).asnumpy()
    assert y.shape == (1, 1, 1024, 1024)
    assert np.isfinite(y).all() and y.min() >= 0.0 and y.max() <= 1.0


def test_build_network_refuses_unknown_architecture():
    with pytest.raises(ValueError, match="unknown architecture 'dlinknet18'"):
        build_network("dlinknet18")


def test_architecture_names_without_mindspore_match_the_network_classes():
    """roadseg.model.loaded names the architectures without importing MindSpore (CLI choices come from it)."""
    from roadseg.model.loaded import ARCHITECTURE_NAMES
    from roadseg.model.network import ARCHITECTURES

    assert tuple(ARCHITECTURES) == ARCHITECTURE_NAMES
