"""The ONNX graph written from zoo tensors: parity with the MindSpore network, deconvs against numpy, shapes, errors."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from roadseg.errors import WeightsError
from roadseg.model.onnx_graph import (
    INPUT_NAME,
    IR_VERSION,
    OPSET,
    OUTPUT_NAME,
    STEM_PADS_NAME,
    build_onnx_model,
    conv_transpose_node,
    same_max_pool_node,
)
from tests.helpers_ckpt import reference_params, with_signal, write_zoo_checkpoint

ort = pytest.importorskip("onnxruntime")

TOLERANCE = 1e-4
ALLOWED_OPS = {"Conv", "BatchNormalization", "Relu", "Pad", "MaxPool", "Add", "ConvTranspose", "Sigmoid"}


def _session(model: onnx.ModelProto):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _one_node_model(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def random_tensors(arch: str, seed: int) -> dict[str, np.ndarray]:
    """Zoo-named random tensors made with numpy alone (no checkpoint, no MindSpore), signal-carrying."""
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, shape, _kind in reference_params(arch):
        values = rng.normal(0, 0.05, size=shape).astype(np.float32)
        tensors[name] = np.abs(values) + 1.0 if name.endswith("moving_variance") else values
    return with_signal(tensors)


def assert_zoo_batch_norm_eps(model: onnx.ModelProto, arch: str) -> None:
    """eps 1e-4 in residual blocks (bn1d/bn2d, bn1-bn3), 1e-5 elsewhere: one node per zoo BatchNorm.

    Checked on the graph because parity cannot see it: with moving variances >= 1 the two eps values
    change the output by less than the tolerance.
    """
    eps = {node.name: attribute.f for node in model.graph.node if node.op_type == "BatchNormalization"
           for attribute in node.attribute if attribute.name == "epsilon"}
    zoo = {name.rsplit(".", 1)[0] for name, _, _ in reference_params(arch) if name.endswith(".moving_mean")}
    assert set(eps) == zoo
    for name, value in eps.items():
        block_norm = re.search(r"^encoder\d\.\d+\.bn(1d|2d|1|2|3)$", name)
        assert value == pytest.approx(1e-4 if block_norm else 1e-5, rel=1e-6), name


@pytest.fixture(scope="module")
def tensors34() -> dict[str, np.ndarray]:
    return random_tensors("dlinknet34", seed=5)


@pytest.fixture(scope="module")
def model34(tensors34) -> onnx.ModelProto:
    extras = {"moment1.firstconv.weight": np.zeros((1, 2, 3), np.float32), "learning_rate": np.float32(2e-4),
              "global_step": np.array([7], np.int32)}
    return build_onnx_model({**tensors34, **extras}, "dlinknet34")


@pytest.fixture(scope="module")
def mindspore_cpu():
    from roadseg.model.devices import configure_mindspore

    configure_mindspore("CPU")  # GRAPH mode, as roadseg runs the network


# --- parity with the MindSpore network --------------------------------------------------------------------

@pytest.mark.mindspore
@pytest.mark.parametrize("arch, batches", [
    ("dlinknet34", [(2, 64, 96), (1, 128, 128)]),
    ("dlinknet50", [(1, 64, 64)]),
])
def test_onnx_model_matches_the_mindspore_network(tmp_path: Path, mindspore_cpu, arch, batches):
    from roadseg.model.checkpoint import load_into, read_checkpoint
    from roadseg.model.mindspore_runtime import ms
    from roadseg.model.network import build_network

    written = set(write_zoo_checkpoint(tmp_path / "zoo.ckpt", arch, seed=11))  # names only: DinkNet50 is 0.9 GB
    contents = read_checkpoint(tmp_path / "zoo.ckpt")
    assert set(contents.tensors) == written
    contents.tensors = with_signal(contents.tensors)
    network = build_network(arch)
    load_into(network, contents, arch)
    network.set_train(False)
    model = build_onnx_model(contents.tensors, arch)
    assert_zoo_batch_norm_eps(model, arch)
    session = _session(model)
    del model, contents  # the network and the session hold their own copies
    rng = np.random.default_rng(2)
    for n, height, width in batches:
        image = rng.uniform(-1.6, 1.6, size=(n, 3, height, width)).astype(np.float32)
        expected = network(ms.Tensor(image)).asnumpy()
        got = session.run([OUTPUT_NAME], {INPUT_NAME: image})[0]
        assert got.shape == expected.shape == (n, 1, height, width)
        delta = float(np.abs(got - expected).max())
        print(f"{arch} {n}x3x{height}x{width}: max |delta| {delta:.3g}, p {expected.min():.3f}-{expected.max():.3f}")
        assert delta <= TOLERANCE
        # the comparison has power: the output spreads and follows the input
        assert expected.std() > 1e-2
    other = rng.uniform(-1.6, 1.6, size=image.shape).astype(np.float32)
    assert np.abs(session.run([OUTPUT_NAME], {INPUT_NAME: other})[0] - got).max() > 1e-2


@pytest.mark.mindspore
@pytest.mark.parametrize("shape", [(1, 2, 8, 8), (2, 3, 7, 10), (1, 1, 9, 5)])
def test_same_max_pool_matches_mindspore_pad_mode_same(mindspore_cpu, shape):
    from roadseg.model.mindspore_runtime import ms, nn

    graph = helper.make_graph(
        [same_max_pool_node("x", "y")], "pool",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", "c", "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", "c", "oh", "ow"])])
    x = np.random.default_rng(4).normal(size=shape).astype(np.float32)  # negatives too: -inf padding
    got = _session(_one_node_model(graph)).run(None, {"x": x})[0]
    expected = nn.MaxPool2d(kernel_size=3, stride=2, pad_mode="same")(ms.Tensor(x)).asnumpy()
    assert got.shape == expected.shape == (*shape[:2], -(-shape[2] // 2), -(-shape[3] // 2))
    np.testing.assert_array_equal(got, expected)


# --- transposed convolution against an independent numpy definition ---------------------------------------

def transposed_conv_numpy(x, weight, bias, *, padding, output_padding, stride=2):
    """Scatter-add definition: input pixel (i, j) adds ``x[i, j] @ w[ky, kx]`` at output (s*i+ky-p, s*j+kx-p)."""
    n, _, height, width = x.shape
    k = weight.shape[-1]
    out_h = (height - 1) * stride - 2 * padding + k + output_padding
    out_w = (width - 1) * stride - 2 * padding + k + output_padding
    out = np.zeros((n, weight.shape[1], out_h, out_w))
    for i in range(height):
        for j in range(width):
            for ky in range(k):
                for kx in range(k):
                    y, z = stride * i + ky - padding, stride * j + kx - padding
                    if 0 <= y < out_h and 0 <= z < out_w:
                        out[:, :, y, z] += x[:, :, i, j] @ weight[:, :, ky, kx]
    return out + bias[None, :, None, None]


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("kernel_size, output_padding", [(3, 1), (4, 0)])  # decoder deconv3, head finaldeconv1
def test_conv_transpose_node_matches_numpy_including_last_row_and_column(batch, kernel_size, output_padding):
    rng = np.random.default_rng(kernel_size * 10 + batch)
    in_channels, out_channels, height, width = 5, 4, 5, 7
    weight = rng.normal(size=(in_channels, out_channels, kernel_size, kernel_size)).astype(np.float32)
    bias = rng.normal(size=out_channels).astype(np.float32)
    node = conv_transpose_node(["x", "w", "b"], "y", kernel_size=kernel_size, padding=1,
                               output_padding=output_padding)
    assert not any(attribute.name == "output_shape" for attribute in node.attribute)
    graph = helper.make_graph(
        [node], "deconv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", in_channels, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", "c", "oh", "ow"])],
        initializer=[numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")])
    x = rng.normal(size=(batch, in_channels, height, width)).astype(np.float32)
    got = _session(_one_node_model(graph)).run(None, {"x": x})[0]
    expected = transposed_conv_numpy(x.astype(np.float64), weight.astype(np.float64), bias.astype(np.float64),
                                     padding=1, output_padding=output_padding)
    assert got.shape == expected.shape == (batch, out_channels, 2 * height, 2 * width)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    # the last row and column are computed, not bias only (MindSpore's CPU Conv2dTranspose got that wrong)
    for edge in (got[:, :, -1, :], got[:, :, :, -1]):
        assert np.abs(edge - bias[None, :, None]).max() > 0.1


# --- the model's interface ----------------------------------------------------------------------------------

def test_model_declares_dynamic_image_in_and_probability_out(model34):
    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    assert [value.name for value in model34.graph.input] == [INPUT_NAME]
    assert [value.name for value in model34.graph.output] == [OUTPUT_NAME]
    assert dims(model34.graph.input[0]) == ["batch", 3, "height", "width"]
    assert dims(model34.graph.output[0]) == ["batch", 1, "height", "width"]
    assert [(entry.domain, entry.version) for entry in model34.opset_import] == [("", 17)]
    assert {node.op_type for node in model34.graph.node} <= ALLOWED_OPS
    assert not any(attribute.name == "output_shape" for node in model34.graph.node for attribute in node.attribute)


def test_batch_norm_eps_follows_the_zoo(model34):
    assert_zoo_batch_norm_eps(model34, "dlinknet34")


def test_initializers_are_exactly_the_zoo_tensors_and_extras_are_ignored(model34):
    names = [initializer.name for initializer in model34.graph.initializer]
    assert len(names) == len(set(names))
    assert set(names) == {name for name, _, _ in reference_params("dlinknet34")} | {STEM_PADS_NAME}
    deconv = next(i for i in model34.graph.initializer if i.name == "decoder4.deconv3.weight")
    assert list(deconv.dims) == [128, 128, 3, 3]  # the zoo's 5-D (C, C, 1, 3, 3), flattened to 2-D


def test_one_model_runs_at_two_sizes_in_one_session(model34):
    session = _session(model34)
    rng = np.random.default_rng(0)
    for n, height, width in [(1, 64, 64), (2, 96, 160)]:
        image = rng.uniform(-1.6, 1.6, size=(n, 3, height, width)).astype(np.float32)
        probability = session.run([OUTPUT_NAME], {INPUT_NAME: image})[0]
        assert probability.shape == (n, 1, height, width)
        assert probability.dtype == np.float32
        assert np.all((probability >= 0) & (probability <= 1))


# --- errors ---------------------------------------------------------------------------------------------------

def test_unknown_architecture_is_a_value_error(tensors34):
    with pytest.raises(ValueError, match="dlinknet34"):
        build_onnx_model(tensors34, "dlinknet101")


@pytest.mark.parametrize("name", ["firstbn.moving_variance", "encoder3.2.conv2.weight",
                                  "dblock.dilate4.bias", "decoder1.deconv3.weight", "finalconv3.bias"])
def test_missing_tensor_is_named(tensors34, name):
    tensors = {key: value for key, value in tensors34.items() if key != name}
    with pytest.raises(WeightsError, match=rf"^checkpoint does not match dlinknet34: 1 missing: {re.escape(name)}$"):
        build_onnx_model(tensors, "dlinknet34")


@pytest.mark.parametrize("name, shape", [
    ("encoder2.0.down_sample_layer.0.weight", (128, 64, 3, 3)),
    ("decoder2.norm2.gamma", (33,)),
    ("decoder3.deconv3.weight", (64, 64, 3, 3)),  # 4-D where the zoo stores (C, C, 1, 3, 3)
    ("finaldeconv1.weight", (32, 64, 4, 4)),  # (out, in) instead of (in, out)
])
def test_misshaped_tensor_is_named(tensors34, name, shape):
    tensors = {**tensors34, name: np.zeros(shape, np.float32)}
    with pytest.raises(WeightsError, match=rf"1 mis-shaped: {re.escape(name)} \({shape[0]},"):
        build_onnx_model(tensors, "dlinknet34")
