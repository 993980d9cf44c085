"""D-LinkNet34 and D-LinkNet50 as ONNX graphs, written node by node from a checkpoint's tensors.

Why not ``mindspore.export``: MindSpore's ONNX exporter gives the transposed convolutions a wrong
``output_shape`` (15x15 where the network needs 16x16 at a 256x256 input), so ONNX Runtime refuses the
file. Writing the graph directly from the zoo-named tensors needs only numpy and ``onnx`` (no
MindSpore), and ONNX Runtime runs it near the CPU's compute floor, 1.6-3.5x faster than MindSpore in
the measurements of ``../shared/reference/README.md``.

The graph follows :mod:`roadseg.model.network` layer for layer: Conv, BatchNormalization (inference form,
eps 1e-4 inside residual blocks and 1e-5 elsewhere, as the zoo), Relu, Pad, MaxPool, Add,
ConvTranspose, Sigmoid; opset 17. Input ``image`` is ``(N, 3, H, W)`` float32 with N, H and W dynamic
(H and W multiples of 32); output ``probability`` is ``(N, 1, H, W)``. Initializers keep the zoo's
tensor names, so a node's weights can be traced back to the checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper

from roadseg.model.checkpoint import check_tensors, is_training_state

OPSET = 17
#: IR version 8 is the one that introduced opset 17; older runtimes read it, newer ones too.
IR_VERSION = 8
INPUT_NAME = "image"
OUTPUT_NAME = "probability"
#: BatchNorm eps of the zoo: 1e-4 inside residual blocks, 1e-5 for the stem, shortcuts and decoder.
BLOCK_EPS = 1e-4
EPS = 1e-5
#: The zero pad of the D-LinkNet34 stem, as an int64 initializer (ONNX ``Pad`` takes pads as an input).
STEM_PADS_NAME = "stem_pad.pads"


@dataclass(frozen=True)
class _Arch:
    """What differs between the two networks: the residual block, the widths, the centre, the stem."""

    bottleneck: bool
    filters: tuple[int, int, int, int]
    centre_levels: int
    stem_zero_pad: bool


ARCHITECTURES: dict[str, _Arch] = {
    "dlinknet34": _Arch(bottleneck=False, filters=(64, 128, 256, 512), centre_levels=4, stem_zero_pad=True),
    "dlinknet50": _Arch(bottleneck=True, filters=(256, 512, 1024, 2048), centre_levels=5, stem_zero_pad=False),
}
ENCODER_BLOCKS = (3, 4, 6, 3)


def conv_transpose_node(inputs: Sequence[str], output: str, *, kernel_size: int, padding: int,
                        output_padding: int) -> onnx.NodeProto:
    """A stride-2 ``ConvTranspose`` node, PyTorch/MindSpore semantics, weight laid out (in, out, k, k).

    The output size comes from ``pads`` and ``output_padding`` (``2 * (H - 1) + k - 2 * padding +
    output_padding``), never from ``output_shape``: a fixed ``output_shape`` is what broke MindSpore's
    own exporter, and it would pin the spatial size of a graph whose H and W are dynamic.
    """
    return helper.make_node("ConvTranspose", list(inputs), [output], name=output,
                            kernel_shape=[kernel_size, kernel_size], strides=[2, 2], pads=[padding] * 4,
                            output_padding=[output_padding] * 2)


def same_max_pool_node(input_name: str, output: str) -> onnx.NodeProto:
    """MindSpore's ``nn.MaxPool2d(3, 2, pad_mode="same")``: output ``ceil(H / 2)``, extra padding at the end.

    MindSpore splits the padding TensorFlow's way (``pad_needed // 2`` before, the rest after), which is
    ONNX's ``SAME_UPPER``; for the even sizes the network sees that is 0 before and 1 after.
    """
    return helper.make_node("MaxPool", [input_name], [output], name=output, kernel_shape=[3, 3], strides=[2, 2],
                            auto_pad="SAME_UPPER")


class _GraphBuilder:
    """Collects nodes and initializers, checking every checkpoint tensor it takes against its shape."""

    def __init__(self, tensors: Mapping[str, np.ndarray], arch: str) -> None:
        self.tensors = tensors
        self.arch = arch
        self.nodes: list[onnx.NodeProto] = []
        #: initializer arrays by name, little-endian float32 (int64 for the pads), added to the model last
        self.initializers: dict[str, np.ndarray] = {}
        self._used_names: set[str] = set()
        #: every checkpoint tensor the graph takes, with the shape the zoo stores it in
        self.expected: dict[str, tuple[int, ...]] = {}

    def param(self, name: str, shape: tuple[int, ...], stored_shape: tuple[int, ...] | None = None) -> str:
        """Add checkpoint tensor ``name`` as an initializer of ``shape``; it must be stored as ``stored_shape``."""
        stored_shape = stored_shape or shape
        self.expected[name] = stored_shape
        array = np.asarray(self.tensors.get(name, np.zeros(0)))
        if tuple(array.shape) != stored_shape:  # reported after the walk, with every other problem
            array = np.zeros(stored_shape, np.float32)
        self.initializers[name] = np.ascontiguousarray(array.reshape(shape), dtype="<f4")
        return name

    def unique(self, hint: str) -> str:
        """``hint``, or ``hint_2``, ``hint_3``... if taken: a fresh name for a node and its output."""
        output, suffix = hint, 1
        while output in self._used_names:
            suffix += 1
            output = f"{hint}_{suffix}"
        self._used_names.add(output)
        return output

    def node(self, op: str, inputs: Sequence[str], hint: str, **attributes) -> str:
        """Append an ``op`` node whose output (and node name) is ``hint``, made unique; returns the output."""
        output = self.unique(hint)
        self.nodes.append(helper.make_node(op, list(inputs), [output], name=output, **attributes))
        return output

    def conv(self, x: str, name: str, shape: tuple[int, int, int], *, stride: int = 1, dilation: int = 1,
             bias: bool = False) -> str:
        """Conv ``name`` with ``shape = (out, in, k)``; padding ``dilation * (k // 2)`` as every conv here."""
        out_channels, in_channels, k = shape
        inputs = [x, self.param(f"{name}.weight", (out_channels, in_channels, k, k))]
        if bias:
            inputs.append(self.param(f"{name}.bias", (out_channels,)))
        return self.node("Conv", inputs, name, kernel_shape=[k, k], strides=[stride, stride],
                         pads=[dilation * (k // 2)] * 4, dilations=[dilation, dilation])

    def batch_norm(self, x: str, name: str, channels: int, eps: float) -> str:
        """Inference BatchNorm from MindSpore's ``gamma``, ``beta``, ``moving_mean``, ``moving_variance``."""
        inputs = [x] + [self.param(f"{name}.{part}", (channels,))
                        for part in ("gamma", "beta", "moving_mean", "moving_variance")]
        return self.node("BatchNormalization", inputs, name, epsilon=eps)

    def conv_transpose(self, x: str, name: str, shape: tuple[int, int, int], *, padding: int,
                       output_padding: int, stored_shape: tuple[int, ...] | None = None) -> str:
        """Stride-2 transposed conv ``name`` with bias; ``shape = (in, out, k)``."""
        in_channels, out_channels, k = shape
        weight = self.param(f"{name}.weight", (in_channels, out_channels, k, k), stored_shape)
        bias = self.param(f"{name}.bias", (out_channels,))
        output = self.unique(name)
        self.nodes.append(conv_transpose_node([x, weight, bias], output, kernel_size=k, padding=padding,
                                              output_padding=output_padding))
        return output

    def relu(self, x: str) -> str:
        return self.node("Relu", [x], f"{x}.relu")

    def add(self, a: str, b: str, hint: str) -> str:
        return self.node("Add", [a, b], hint)


def _shortcut(g: _GraphBuilder, x: str, prefix: str, channels: tuple[int, int], stride: int) -> str:
    """The zoo's ``down_sample_layer`` (1x1 conv, BN eps 1e-5) where a block changes shape, else ``x``."""
    in_channels, out_channels = channels
    if stride == 1 and in_channels == out_channels:
        return x
    name = f"{prefix}.down_sample_layer"
    out = g.conv(x, f"{name}.0", (out_channels, in_channels, 1), stride=stride)
    return g.batch_norm(out, f"{name}.1", out_channels, EPS)


def _basic_block(g: _GraphBuilder, x: str, prefix: str, channels: tuple[int, int], stride: int) -> str:
    """ResNet-34 block: conv1, bn1d, relu, conv2, bn2d, + shortcut, relu (block BN eps 1e-4)."""
    in_channels, out_channels = channels
    identity = _shortcut(g, x, prefix, channels, stride)
    out = g.conv(x, f"{prefix}.conv1", (out_channels, in_channels, 3), stride=stride)
    out = g.relu(g.batch_norm(out, f"{prefix}.bn1d", out_channels, BLOCK_EPS))
    out = g.conv(out, f"{prefix}.conv2", (out_channels, out_channels, 3))
    out = g.batch_norm(out, f"{prefix}.bn2d", out_channels, BLOCK_EPS)
    return g.relu(g.add(out, identity, f"{prefix}.add"))


def _bottleneck(g: _GraphBuilder, x: str, prefix: str, channels: tuple[int, int], stride: int) -> str:
    """ResNet-50 bottleneck: 1x1, 3x3 (carrying the stride), 1x1 expanding by 4, + shortcut (eps 1e-4)."""
    in_channels, out_channels = channels
    mid = out_channels // 4
    identity = _shortcut(g, x, prefix, channels, stride)
    out = g.conv(x, f"{prefix}.conv1", (mid, in_channels, 1))
    out = g.relu(g.batch_norm(out, f"{prefix}.bn1", mid, BLOCK_EPS))
    out = g.conv(out, f"{prefix}.conv2", (mid, mid, 3), stride=stride)
    out = g.relu(g.batch_norm(out, f"{prefix}.bn2", mid, BLOCK_EPS))
    out = g.conv(out, f"{prefix}.conv3", (out_channels, mid, 1))
    out = g.batch_norm(out, f"{prefix}.bn3", out_channels, BLOCK_EPS)
    return g.relu(g.add(out, identity, f"{prefix}.add"))


def _stem(g: _GraphBuilder, spec: _Arch) -> str:
    """7x7 stride-2 conv, BN, ReLU, then the 3x3 stride-2 max-pool the way each zoo network pads it."""
    out = g.conv(INPUT_NAME, "firstconv", (64, 3, 7), stride=2)
    out = g.relu(g.batch_norm(out, "firstbn", 64, EPS))
    if not spec.stem_zero_pad:
        pooled = g.unique("firstmaxpool")
        g.nodes.append(same_max_pool_node(out, pooled))
        return pooled
    g.initializers[STEM_PADS_NAME] = np.array([0, 0, 1, 1, 0, 0, 1, 1], dtype="<i8")
    out = g.node("Pad", [out, STEM_PADS_NAME], "stem_pad", mode="constant")
    return g.node("MaxPool", [out], "firstmaxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 0, 0])


def _centre(g: _GraphBuilder, x: str, channels: int, levels: int) -> str:
    """The dilated cascade ``dblock``: ``x + d1 + ... + dn``; dilations 1, 2, 4, 8 (with bias), 16 (without)."""
    out, level_input = x, x
    for level in range(1, levels + 1):
        name = f"dblock.dilate{level}"
        level_input = g.relu(g.conv(level_input, name, (channels, channels, 3), dilation=2 ** (level - 1),
                                    bias=level <= 4))
        out = g.add(out, level_input, f"dblock.add{level}")
    return out


def _decoder(g: _GraphBuilder, x: str, name: str, in_channels: int, out_channels: int) -> str:
    """1x1 conv, BN, ReLU; 3x3 transposed conv x2 up (weight stored 5-D), BN, ReLU; 1x1 conv, BN, ReLU."""
    mid = in_channels // 4
    out = g.conv(x, f"{name}.conv1", (mid, in_channels, 1), bias=True)
    out = g.relu(g.batch_norm(out, f"{name}.norm1", mid, EPS))
    out = g.conv_transpose(out, f"{name}.deconv3", (mid, mid, 3), padding=1, output_padding=1,
                           stored_shape=(mid, mid, 1, 3, 3))
    out = g.relu(g.batch_norm(out, f"{name}.norm2", mid, EPS))
    out = g.conv(out, f"{name}.conv3", (out_channels, mid, 1), bias=True)
    return g.relu(g.batch_norm(out, f"{name}.norm3", out_channels, EPS))


def _network(g: _GraphBuilder, spec: _Arch) -> None:
    """Stem, four encoders, centre, decoders with skips, head, sigmoid into ``probability``."""
    block = _bottleneck if spec.bottleneck else _basic_block
    f = spec.filters
    x = _stem(g, spec)
    encoded = []
    for index, (in_channels, out_channels, blocks) in enumerate(zip((64, *f[:3]), f, ENCODER_BLOCKS)):
        for i in range(blocks):
            stride = 2 if index > 0 and i == 0 else 1
            x = block(g, x, f"encoder{index + 1}.{i}", (in_channels if i == 0 else out_channels, out_channels),
                      stride)
        encoded.append(x)
    e1, e2, e3, e4 = encoded
    e4 = _centre(g, e4, f[3], spec.centre_levels)
    d4 = g.add(_decoder(g, e4, "decoder4", f[3], f[2]), e3, "decoder4.skip")
    d3 = g.add(_decoder(g, d4, "decoder3", f[2], f[1]), e2, "decoder3.skip")
    d2 = g.add(_decoder(g, d3, "decoder2", f[1], f[0]), e1, "decoder2.skip")
    d1 = _decoder(g, d2, "decoder1", f[0], f[0])
    out = g.relu(g.conv_transpose(d1, "finaldeconv1", (f[0], 32, 4), padding=1, output_padding=0))
    out = g.relu(g.conv(out, "finalconv2", (32, 32, 3), bias=True))
    out = g.conv(out, "finalconv3", (1, 32, 3), bias=True)
    g.nodes.append(helper.make_node("Sigmoid", [out], [g.unique(OUTPUT_NAME)], name=OUTPUT_NAME))


def _add_initializers(graph: onnx.GraphProto, arrays: Mapping[str, np.ndarray]) -> None:
    """Write the arrays straight into the model's graph.

    DinkNet50's weights are 0.9 GB; building TensorProtos first and handing them to ``make_graph`` and
    ``make_model`` copies them twice more (about 10 s and 2 GB extra); here each array is copied once.
    """
    data_types = {np.dtype("<f4"): TensorProto.FLOAT, np.dtype("<i8"): TensorProto.INT64}
    for name, array in arrays.items():
        tensor = graph.initializer.add()
        tensor.name = name
        tensor.data_type = data_types[array.dtype]
        tensor.dims.extend(array.shape)
        tensor.raw_data = array.tobytes()


def build_onnx_model(tensors: Mapping[str, np.ndarray], arch: str, source: str = "checkpoint") -> onnx.ModelProto:
    """The ``arch`` network (``dlinknet34`` or ``dlinknet50``) as a checked ONNX model with ``tensors``' weights.

    ``tensors`` is keyed by the model zoo's names; optimizer and loop state is ignored. Missing, extra
    and mis-shaped network tensors raise one :class:`WeightsError`, worded as for the MindSpore network
    (:func:`roadseg.model.checkpoint.check_tensors`), naming ``source``.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    g = _GraphBuilder(tensors, arch)
    _network(g, ARCHITECTURES[arch])
    network_tensors = {name: array for name, array in tensors.items() if not is_training_state(name)}
    check_tensors(network_tensors, g.expected, source, arch)
    graph = helper.make_graph(
        g.nodes, f"{arch}_roadseg",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", 1, "height", "width"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="roadseg",
                              doc_string=f"{arch}: image (N, 3, H, W) float32, H and W multiples of 32 -> "
                                         "road probability (N, 1, H, W)")
    model.ir_version = IR_VERSION
    _add_initializers(model.graph, g.initializers)
    onnx.checker.check_model(model)
    return model
