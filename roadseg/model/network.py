"""D-LinkNet34 and D-LinkNet50 as MindSpore Cells, tensor for tensor compatible with the model zoo.

Parameter names and shapes equal the zoo checkpoint's (``../shared/reference/*.tsv``), so a zoo
checkpoint loads with no renaming and a checkpoint saved from these Cells loads into the zoo's code.
Numerics follow the zoo: BatchNorm eps 1e-4 inside residual blocks and 1e-5 elsewhere, a 1-pixel zero
pad before the valid 3x3 max-pool of the D-LinkNet34 stem, a dilated centre cascade, and a sigmoid head.

The stride-2 transposed convolutions (decoder ``deconv3`` and head ``finaldeconv1``) come in three
exact formulations (:data:`TRANSPOSED_CONV_FORMS`), all checked against numpy in the tests. The
default, :class:`SingletonDepthTransposedConv2d`, is the zoo's own op (a 3-D transposed convolution
over a singleton depth), run one image at a time: MindSpore 2.10's CPU transposed-conv kernels slow
down by orders of magnitude at batch > 1, and its ``Conv2dTranspose`` fills ``output_padding``'s last
row and column with zeros (:class:`DirectTransposedConv2d` crops asymmetrically instead).
"""

from __future__ import annotations

import numpy as np

from roadseg.model.mindspore_runtime import HeUniform, Parameter, Tensor, initializer, nn, ops

ZOO_BN_MOMENTUM = 0.9


def _conv(in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1, padding: int = 0,
          dilation: int = 1, has_bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, pad_mode="pad", padding=padding,
                     dilation=dilation, has_bias=has_bias,
                     weight_init=HeUniform(mode="fan_out", nonlinearity="relu"))


def _bn(channels: int, eps: float) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=eps, momentum=ZOO_BN_MOMENTUM)


def _phase_taps(kernel_size: int, padding: int, stride: int) -> tuple[int, np.ndarray]:
    """Index of the transposed-conv kernel tap each (output phase, input offset) pair uses.

    Output pixel ``o = stride * j + phase`` of a transposed convolution with cropping ``padding``
    receives input pixel ``j + d`` through kernel tap ``t = phase + padding - stride * d``. Returns the
    smallest offset ``d`` used and a ``(stride, n_offsets)`` table of taps, with ``kernel_size`` marking
    "no tap" (it indexes a zero appended to the kernel).
    """
    offsets = [d for d in range(-kernel_size, kernel_size + 1)
               if any(0 <= phase + padding - stride * d < kernel_size for phase in range(stride))]
    first = min(offsets)
    span = max(offsets) - first + 1
    table = np.full((stride, span), kernel_size, dtype=np.int32)
    for phase in range(stride):
        for index in range(span):
            tap = phase + padding - stride * (first + index)
            if 0 <= tap < kernel_size:
                table[phase, index] = tap
    return first, table


class _StrideTwoTransposedConv(nn.Cell):
    """Weight and bias of a stride-2 transposed convolution in the zoo's checkpoint layout.

    The output is ``2 * H`` high, as PyTorch's ``ConvTranspose2d(in, out, k, stride=2, padding=p,
    output_padding=2 + 2p - k)`` for the zoo's two configurations (k 3, p 1 and k 4, p 1).
    ``weight_shape`` lets the weight keep the zoo's layout, e.g. ``(C, C, 1, 3, 3)`` for the decoder's
    transposed conv, which the zoo builds as a 3-D op over a singleton depth; subclasses reshape it to
    ``(in, out, k, k)`` when they run.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, padding: int,
                 weight_shape: tuple[int, ...] | None = None) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.padding = padding
        shape = weight_shape or (in_channels, out_channels, kernel_size, kernel_size)
        if int(np.prod(shape)) != in_channels * out_channels * kernel_size * kernel_size:
            raise ValueError(f"weight_shape {shape} does not hold a {kernel_size}x{kernel_size} kernel")
        he_uniform = HeUniform(mode="fan_out", nonlinearity="relu")
        self.weight = Parameter(initializer(he_uniform, shape), name="weight")
        self.bias = Parameter(initializer("zeros", (out_channels,)), name="bias")

    def kernel(self, dtype):
        """The weight as ``(in, out, k, k)`` in ``dtype``: amp O2 casts the inputs of MindSpore's own
        layers, not this Parameter, so the kernel follows the input's dtype here."""
        k = self.kernel_size
        return ops.cast(ops.reshape(self.weight, (self.in_channels, self.out_channels, k, k)), dtype)

    def add_bias(self, x):
        return x + ops.reshape(ops.cast(self.bias, x.dtype), (1, -1, 1, 1))

    def one_image(self, x, kernel):
        """The transposed convolution of a batch of one, without bias (subclasses)."""
        raise NotImplementedError

    def construct(self, x):
        # MindSpore 2.10's CPU transposed-conv kernels were seen to take minutes at batch > 1, so a batch
        # runs one image at a time (the shape is static in GRAPH mode: the loop unrolls).
        kernel = self.kernel(x.dtype)
        if x.shape[0] == 1:
            return self.add_bias(self.one_image(x, kernel))
        return self.add_bias(ops.concat([self.one_image(x[i:i + 1], kernel) for i in range(x.shape[0])], 0))


class DirectTransposedConv2d(_StrideTwoTransposedConv):
    """MindSpore's own ``Conv2DTranspose`` with the output padding folded into an asymmetric crop.

    ``nn.Conv2dTranspose``'s ``output_padding`` appends zeros instead of computing the last row and
    column (MindSpore 2.10), so the crop is ``p`` before and ``p - output_padding`` after instead.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, padding: int,
                 weight_shape: tuple[int, ...] | None = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=padding, weight_shape=weight_shape)
        output_padding = 2 + 2 * padding - kernel_size
        after = padding - output_padding
        self.transpose = ops.Conv2DTranspose(out_channel=in_channels, kernel_size=kernel_size, mode=1,
                                             pad_mode="pad", pad=(padding, after, padding, after), stride=2)

    def one_image(self, x, kernel):
        _, _, h, w = x.shape
        return self.transpose(x, kernel, (1, self.out_channels, 2 * h, 2 * w))


class SingletonDepthTransposedConv2d(_StrideTwoTransposedConv):
    """The zoo's decoder formulation: a 3-D transposed convolution over a singleton depth.

    The default: the zoo's own op, so its cost is the zoo's at batch 1 (``benchmarks/engines.py``
    measures it beside the others), run one image at a time where the zoo's took minutes at batch > 1.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, padding: int,
                 weight_shape: tuple[int, ...] | None = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=padding, weight_shape=weight_shape)
        output_padding = 2 + 2 * padding - kernel_size
        self.transpose = ops.Conv3DTranspose(in_channels, out_channels, (1, kernel_size, kernel_size),
                                             pad_mode="pad", pad=(0, 0) + (padding,) * 4, stride=(1, 2, 2),
                                             output_padding=(0, output_padding, output_padding))

    def one_image(self, x, kernel):
        return ops.squeeze(self.transpose(ops.expand_dims(x, 2), ops.expand_dims(kernel, 2)), 2)


class PhaseTransposedConv2d(_StrideTwoTransposedConv):
    """A stride-2 transposed convolution computed as one convolution over the four output phases.

    Exactly the transposed convolution (same taps, same sums), with a depth-to-space interleaving the
    phases; it uses only ``Conv2D``, so its cost grows linearly with the batch.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, padding: int,
                 weight_shape: tuple[int, ...] | None = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=padding, weight_shape=weight_shape)
        stride = 2
        first, table = _phase_taps(kernel_size, padding, stride)
        span = table.shape[1]
        self.taps = Tensor(table.reshape(-1))
        self.span = span
        before, after = -first, span - 1 + first
        self.phase_conv = ops.Conv2D(4 * out_channels, span, pad_mode="pad",
                                     pad=(before, after, before, after))
        self.depth_to_space = ops.DepthToSpace(stride)

    def phase_kernel(self):
        """The ``(4 * out, in, span, span)`` kernel of the equivalent phase convolution."""
        span = self.span
        weight = ops.reshape(self.weight, (self.in_channels, self.out_channels, self.kernel_size, self.kernel_size))
        # a zero tap appended on both kernel axes, so "no tap" is an ordinary gather index
        weight = ops.concat((weight, ops.zeros_like(weight[:, :, :1, :])), 2)
        weight = ops.concat((weight, ops.zeros_like(weight[:, :, :, :1])), 3)
        rows = ops.gather(weight, self.taps, 2)          # (in, out, 2*span, k+1)
        taps = ops.gather(rows, self.taps, 3)            # (in, out, 2*span, 2*span)
        taps = ops.reshape(taps, (self.in_channels, self.out_channels, 2, span, 2, span))
        # -> (phase_y, phase_x, out, in, dy, dx), the channel order DepthToSpace expects.
        taps = ops.transpose(taps, (2, 4, 1, 0, 3, 5))
        return ops.reshape(taps, (4 * self.out_channels, self.in_channels, span, span))

    def construct(self, x):
        # The kernel is computed from the Parameter, so mixed precision (amp O2, which casts the
        # inputs of MindSpore's own layers) does not reach it: follow the input's dtype here.
        phases = self.phase_conv(x, ops.cast(self.phase_kernel(), x.dtype))
        return self.add_bias(self.depth_to_space(phases))


#: Formulations of the stride-2 transposed convolutions; all give the same numbers and the zoo's
#: checkpoint layout. ``conv3d`` (the zoo's op, one image at a time) and ``direct`` cost the same on
#: the CPU within measurement noise, ``phase`` about 3x more (``benchmarks/engines.py``).
TRANSPOSED_CONV_FORMS: dict[str, type[_StrideTwoTransposedConv]] = {
    "conv3d": SingletonDepthTransposedConv2d, "direct": DirectTransposedConv2d, "phase": PhaseTransposedConv2d}
DEFAULT_TRANSPOSED_CONV = "conv3d"


def transposed_conv_cell(form: str, in_channels: int, out_channels: int, kernel_size: int,
                         weight_shape: tuple[int, ...] | None = None) -> _StrideTwoTransposedConv:
    """One of D-LinkNet's x2 up-sampling layers (crop 1 on each side) in the chosen formulation."""
    try:
        cell_type = TRANSPOSED_CONV_FORMS[form]
    except KeyError:
        raise ValueError(f"unknown transposed convolution form {form!r}; choose one of "
                         f"{', '.join(TRANSPOSED_CONV_FORMS)}") from None
    return cell_type(in_channels, out_channels, kernel_size, padding=1, weight_shape=weight_shape)


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.SequentialCell | None:
    """The zoo's ``down_sample_layer`` (1x1 conv, BN eps 1e-5) where a block changes shape, else None."""
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.SequentialCell([_conv(in_channels, out_channels, 1, stride=stride), _bn(out_channels, 1e-5)])


class _ResidualBlock(nn.Cell):
    """What both ResNet blocks end with: the zoo's ``relu`` and optional ``down_sample_layer`` shortcut,
    added after the convolutions so the parameters keep the zoo's order."""

    def _add_shortcut(self, in_channels: int, out_channels: int, stride: int) -> None:
        self.relu = nn.ReLU()
        self.down_sample_layer = _shortcut(in_channels, out_channels, stride)
        self.has_down_sample = self.down_sample_layer is not None

    def _join(self, out, x):
        """ReLU of the block's output plus its input (projected when the shape changes)."""
        identity = self.down_sample_layer(x) if self.has_down_sample else x
        return self.relu(out + identity)


class BasicBlock(_ResidualBlock):
    """ResNet-34 residual block with the zoo's names (``bn1d``, ``bn2d``) and eps 1e-4."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = _conv(in_channels, out_channels, 3, stride=stride, padding=1)
        self.bn1d = _bn(out_channels, 1e-4)
        self.conv2 = _conv(out_channels, out_channels, 3, padding=1)
        self.bn2d = _bn(out_channels, 1e-4)
        self._add_shortcut(in_channels, out_channels, stride)

    def construct(self, x):
        out = self.relu(self.bn1d(self.conv1(x)))
        return self._join(self.bn2d(self.conv2(out)), x)


class Bottleneck(_ResidualBlock):
    """ResNet-50 bottleneck block with the zoo's names (``bn1``..``bn3``); stride on the 3x3 conv."""

    expansion = 4

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        mid = out_channels // self.expansion
        self.conv1 = _conv(in_channels, mid, 1)
        self.bn1 = _bn(mid, 1e-4)
        self.conv2 = _conv(mid, mid, 3, stride=stride, padding=1)
        self.bn2 = _bn(mid, 1e-4)
        self.conv3 = _conv(mid, out_channels, 1)
        self.bn3 = _bn(out_channels, 1e-4)
        self._add_shortcut(in_channels, out_channels, stride)

    def construct(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self._join(self.bn3(self.conv3(out)), x)


def _encoder(block: type, in_channels: int, out_channels: int, blocks: int, stride: int) -> nn.SequentialCell:
    layers = [block(in_channels, out_channels, stride)]
    layers += [block(out_channels, out_channels, 1) for _ in range(blocks - 1)]
    return nn.SequentialCell(layers)


class DilatedCentre(nn.Cell):
    """The centre ``dblock``: a cascade of dilated 3x3 convs whose ReLU outputs are all added to the input.

    DinkNet34 uses dilations 1, 2, 4, 8 (all with bias); DinkNet50 adds a fifth, dilation 16, without bias.
    """

    def __init__(self, channels: int, five_levels: bool = False) -> None:
        super().__init__()
        self.five_levels = five_levels
        self.dilate1 = _conv(channels, channels, 3, padding=1, dilation=1, has_bias=True)
        self.dilate2 = _conv(channels, channels, 3, padding=2, dilation=2, has_bias=True)
        self.dilate3 = _conv(channels, channels, 3, padding=4, dilation=4, has_bias=True)
        self.dilate4 = _conv(channels, channels, 3, padding=8, dilation=8, has_bias=True)
        if five_levels:
            self.dilate5 = _conv(channels, channels, 3, padding=16, dilation=16, has_bias=False)
        self.relu = nn.ReLU()

    def construct(self, x):
        d1 = self.relu(self.dilate1(x))
        d2 = self.relu(self.dilate2(d1))
        d3 = self.relu(self.dilate3(d2))
        d4 = self.relu(self.dilate4(d3))
        out = x + d1 + d2 + d3 + d4
        if self.five_levels:
            out = out + self.relu(self.dilate5(d4))
        return out


class DecoderBlock(nn.Cell):
    """1x1 conv, BN, ReLU; transposed conv x2 up, BN, ReLU; 1x1 conv, BN, ReLU (decoder norms eps 1e-5)."""

    def __init__(self, in_channels: int, out_channels: int, transposed_conv: str = DEFAULT_TRANSPOSED_CONV) -> None:
        super().__init__()
        mid = in_channels // 4
        self.conv1 = _conv(in_channels, mid, 1, has_bias=True)
        self.norm1 = _bn(mid, 1e-5)
        self.deconv3 = transposed_conv_cell(transposed_conv, mid, mid, 3, weight_shape=(mid, mid, 1, 3, 3))
        self.norm2 = _bn(mid, 1e-5)
        self.conv3 = _conv(mid, out_channels, 1, has_bias=True)
        self.norm3 = _bn(out_channels, 1e-5)
        self.relu = nn.ReLU()

    def construct(self, x):
        x = self.relu(self.norm1(self.conv1(x)))
        x = self.relu(self.norm2(self.deconv3(x)))
        return self.relu(self.norm3(self.conv3(x)))


class _DLinkNet(nn.Cell):
    """Shared encoder-centre-decoder-head wiring; subclasses pick the backbone."""

    filters: tuple[int, int, int, int]

    def _build_decoder_and_head(self, transposed_conv: str) -> None:
        f = self.filters
        self.decoder4 = DecoderBlock(f[3], f[2], transposed_conv)
        self.decoder3 = DecoderBlock(f[2], f[1], transposed_conv)
        self.decoder2 = DecoderBlock(f[1], f[0], transposed_conv)
        self.decoder1 = DecoderBlock(f[0], f[0], transposed_conv)
        self.finaldeconv1 = transposed_conv_cell(transposed_conv, f[0], 32, 4)
        self.finalconv2 = _conv(32, 32, 3, padding=1, has_bias=True)
        self.finalconv3 = _conv(32, 1, 3, padding=1, has_bias=True)
        self.relu = nn.ReLU()
        self.sigmoid = nn.Sigmoid()

    def stem(self, x):
        raise NotImplementedError

    def construct(self, x):
        x = self.stem(x)
        e1 = self.encoder1(x)
        e2 = self.encoder2(e1)
        e3 = self.encoder3(e2)
        e4 = self.dblock(self.encoder4(e3))
        d4 = self.decoder4(e4) + e3
        d3 = self.decoder3(d4) + e2
        d2 = self.decoder2(d3) + e1
        d1 = self.decoder1(d2)
        out = self.relu(self.finaldeconv1(d1))
        out = self.relu(self.finalconv2(out))
        return self.sigmoid(self.finalconv3(out))


class DLinkNet34(_DLinkNet):
    """D-LinkNet with a ResNet-34 encoder: ``(N, 3, H, W)`` input, ``(N, 1, H, W)`` road probability.

    H and W must be multiples of 32 (five stride-2 stages).
    """

    filters = (64, 128, 256, 512)

    def __init__(self, transposed_conv: str = DEFAULT_TRANSPOSED_CONV) -> None:
        super().__init__()
        self.firstconv = _conv(3, 64, 7, stride=2, padding=3)
        self.firstbn = _bn(64, 1e-5)
        # as the zoo: zero-pad by 1, then a 3x3 stride-2 max-pool without padding
        self.stem_pad = ops.Pad(((0, 0), (0, 0), (1, 1), (1, 1)))
        self.firstmaxpool = nn.MaxPool2d(kernel_size=3, stride=2, pad_mode="valid")
        self.encoder1 = _encoder(BasicBlock, 64, 64, 3, 1)
        self.encoder2 = _encoder(BasicBlock, 64, 128, 4, 2)
        self.encoder3 = _encoder(BasicBlock, 128, 256, 6, 2)
        self.encoder4 = _encoder(BasicBlock, 256, 512, 3, 2)
        self.dblock = DilatedCentre(512)
        self._build_decoder_and_head(transposed_conv)

    def stem(self, x):
        return self.firstmaxpool(self.stem_pad(self.relu(self.firstbn(self.firstconv(x)))))


class DLinkNet50(_DLinkNet):
    """D-LinkNet with a ResNet-50 encoder and the five-level dilated centre of the zoo's DinkNet50."""

    filters = (256, 512, 1024, 2048)

    def __init__(self, transposed_conv: str = DEFAULT_TRANSPOSED_CONV) -> None:
        super().__init__()
        self.firstconv = _conv(3, 64, 7, stride=2, padding=3)
        self.firstbn = _bn(64, 1e-5)
        self.firstmaxpool = nn.MaxPool2d(kernel_size=3, stride=2, pad_mode="same")
        self.encoder1 = _encoder(Bottleneck, 64, 256, 3, 1)
        self.encoder2 = _encoder(Bottleneck, 256, 512, 4, 2)
        self.encoder3 = _encoder(Bottleneck, 512, 1024, 6, 2)
        self.encoder4 = _encoder(Bottleneck, 1024, 2048, 3, 2)
        self.dblock = DilatedCentre(2048, five_levels=True)
        self._build_decoder_and_head(transposed_conv)

    def stem(self, x):
        return self.firstmaxpool(self.relu(self.firstbn(self.firstconv(x))))


ARCHITECTURES: dict[str, type[_DLinkNet]] = {"dlinknet34": DLinkNet34, "dlinknet50": DLinkNet50}


def build_network(arch: str, transposed_conv: str = DEFAULT_TRANSPOSED_CONV) -> _DLinkNet:
    """A freshly initialised network of the named architecture (``dlinknet34`` or ``dlinknet50``)."""
    try:
        return ARCHITECTURES[arch](transposed_conv)
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}") from None
