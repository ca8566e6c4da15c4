"""Convolution layers (Keras names and arguments): Conv1D, Conv2D, Conv2DTranspose,
DepthwiseConv2D, SeparableConv2D.

Inputs are channels-last by default (``(N, H, W, C)``, Keras' ``data_format="channels_last"``);
``data_format="channels_first"`` accepts ``(N, C, H, W)`` and transposes around the same NHWC
kernels. Kernels are HWIO ``(kh, kw, in_channels, filters)`` as in Keras (``Conv2DTranspose``:
``(kh, kw, filters, in_channels)``).
"""

from __future__ import annotations

import numpy as np

from ember import activations as activations_module
from ember import ops
from ember.layers.base import InputSpec, Layer
from ember.layers.core import (
    set_weight_options,
    weight_options_config,
    weight_options_from_config,
)
from ember.ops.conv import conv2d, conv2d_transpose, depthwise_conv2d

__all__ = ["Conv1D", "Conv2D", "Conv2DTranspose", "DepthwiseConv2D", "SeparableConv2D"]


def _tuple(value, rank: int, name: str, layer: str, minimum: int = 1) -> tuple[int, ...]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (int(value),) * rank
    try:
        value = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(
            f'Layer "{layer}": {name} must be an int or a tuple of {rank} ints, got {value!r}'
        ) from None
    if len(value) != rank or min(value) < minimum:
        raise ValueError(
            f'Layer "{layer}": {name} must be an int >= {minimum} or a tuple of {rank} of them, '
            f"got {value!r}"
        )
    return value


def _data_format(value, layer: str) -> str:
    value = "channels_last" if value is None else str(value).lower()
    if value not in ("channels_last", "channels_first"):
        raise ValueError(
            f'Layer "{layer}": data_format must be "channels_last" or "channels_first", '
            f"got {value!r}"
        )
    return value


_LAYOUTS = {
    (1, "channels_last"): "NWC: batch, steps, channels",
    (1, "channels_first"): "NCW: batch, channels, steps",
    (2, "channels_last"): "NHWC: batch, height, width, channels",
    (2, "channels_first"): "NCHW: batch, channels, height, width",
}


class _Conv(Layer):
    """What every convolution shares: arguments, their checks, weights and config."""

    _single_input = True

    rank = 2
    transposed = False
    _PADDINGS = ("valid", "same")

    def __init__(
        self,
        filters: int,
        kernel_size,
        strides=1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate=1,
        activation=None,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(filters, bool) or not isinstance(filters, (int, np.integer)) or filters < 1:
            raise ValueError(
                f'Layer "{self.name}": filters must be a positive integer, got {filters!r}'
            )
        self.filters = int(filters)
        self.kernel_size = _tuple(kernel_size, self.rank, "kernel_size", self.name)
        self.strides = _tuple(strides, self.rank, "strides", self.name)
        self.dilation_rate = _tuple(dilation_rate, self.rank, "dilation_rate", self.name)
        padding = str(padding).lower()
        if padding not in self._PADDINGS:
            raise ValueError(
                f'Layer "{self.name}": padding must be one of {self._PADDINGS}, got {padding!r}'
            )
        self.padding = padding
        self.data_format = _data_format(data_format, self.name)
        set_weight_options(
            self,
            activation,
            use_bias,
            kernel_initializer,
            bias_initializer,
            kernel_regularizer,
            bias_regularizer,
            activity_regularizer,
        )
        self.input_spec = InputSpec(ndim=self.rank + 2, layout=self._layout())

    def _layout(self) -> str:
        return _LAYOUTS[(self.rank, self.data_format)]

    @property
    def _channel_axis(self) -> int:
        return -1 if self.data_format == "channels_last" else 1

    def _kernel_shape(self, in_channels: int) -> tuple:
        return (*self.kernel_size, in_channels, self.filters)

    def build(self, input_shape):
        in_channels = input_shape[self._channel_axis]
        self.kernel = self.add_weight(
            self._kernel_shape(in_channels),
            self.kernel_initializer,
            name="kernel",
            regularizer=self.kernel_regularizer,
        )
        self._build_bias_and_spec(in_channels)

    def _build_bias_and_spec(self, in_channels: int) -> None:
        """The optional bias, and an input spec that pins the channel count."""
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                (self.filters,),
                self.bias_initializer,
                name="bias",
                regularizer=self.bias_regularizer,
            )
        self.input_spec = InputSpec(
            ndim=self.rank + 2, axes={self._channel_axis: in_channels}, layout=self._layout()
        )

    def _to_nhwc(self, inputs):
        if self.rank == 1:  # (N, L, C) → (N, 1, L, C)
            if self.data_format == "channels_first":
                inputs = ops.transpose(inputs, (0, 2, 1))
            return ops.unsqueeze(inputs, 1)
        if self.data_format == "channels_first":
            return ops.transpose(inputs, (0, 2, 3, 1))
        return inputs

    def _from_nhwc(self, out):
        if self.rank == 1:
            out = ops.squeeze(out, 1)
            return ops.transpose(out, (0, 2, 1)) if self.data_format == "channels_first" else out
        if self.data_format == "channels_first":
            return ops.transpose(out, (0, 3, 1, 2))
        return out

    def _strides_2d(self):
        return (1, *self.strides) if self.rank == 1 else self.strides

    def _dilation_2d(self):
        return (1, *self.dilation_rate) if self.rank == 1 else self.dilation_rate

    def _kernel_2d(self):
        return ops.unsqueeze(self.kernel, 0) if self.rank == 1 else self.kernel

    def _padding_2d(self, x):
        return self.padding

    def _convolve(self, x, relu: bool = False):
        bias = self.bias if self.use_bias else None
        return conv2d(
            x,
            self._kernel_2d(),
            self._strides_2d(),
            self._padding_2d(x),
            self._dilation_2d(),
            bias,
            relu,
        )

    def call(self, inputs):
        # ReLU is fused into the convolution where the subclass supports it (one array, not two)
        nhwc = self._to_nhwc(inputs)
        if self.activation is activations_module.relu and type(self)._convolve is _Conv._convolve:
            out = self._from_nhwc(self._convolve(nhwc, relu=True))
        else:
            out = self.activation(self._from_nhwc(self._convolve(nhwc)))
        if self.activity_regularizer is not None:
            # a batch of zero samples has a zero penalty, not 0/0
            self._losses.append(self.activity_regularizer(out) / max(out.shape[0], 1))
        return out

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": list(self.dilation_rate),
            **weight_options_config(self),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**weight_options_from_config(config))


class Conv2D(_Conv):
    """2-D convolution: ``activation(conv(inputs, kernel) + bias)``, one matrix product per call.

    Args:
        filters: number of output channels.
        kernel_size: int or ``(kh, kw)``.
        strides, dilation_rate: int or pair.
        padding: ``"valid"`` or ``"same"`` (TensorFlow's rule: an odd extra row/column of
            padding goes at the bottom/right).
        data_format: ``"channels_last"`` (NHWC, default) or ``"channels_first"`` (NCHW).
        activation, use_bias, *_initializer, *_regularizer: as in :class:`Dense`.

    A 3×3 convolution over C channels has ``9·C + 1`` parameters per filter.

    Example:
        >>> layer = ember.layers.Conv2D(32, 3, activation="relu")
        >>> layer(np.zeros((2, 28, 28, 1))).shape
        (2, 26, 26, 32)
    """


class Conv1D(_Conv):
    """1-D convolution over ``(batch, steps, channels)`` sequences; ``padding="causal"`` pads
    only on the left, so output step t sees inputs up to t (WaveNet, Keras).

    Example:
        >>> ember.layers.Conv1D(8, 5, padding="causal")(np.zeros((2, 20, 3))).shape
        (2, 20, 8)
    """

    rank = 1
    _PADDINGS = ("valid", "same", "causal")

    def _padding_2d(self, x):
        if self.padding != "causal":
            return self.padding
        left = (self.kernel_size[0] - 1) * self.dilation_rate[0]
        return ((0, 0), (left, 0))


class Conv2DTranspose(_Conv):
    """Transposed ("fractionally strided") 2-D convolution, the gradient of :class:`Conv2D` with
    respect to its input — the upsampling layer of autoencoders and GAN generators.

    The kernel is ``(kh, kw, filters, in_channels)`` as in Keras. Output size per axis:
    ``(n − 1)·stride + kernel`` with ``"valid"``, ``n·stride`` with ``"same"``.

    Example:
        >>> up = ember.layers.Conv2DTranspose(16, 3, strides=2, padding="same")
        >>> up(np.zeros((1, 7, 7, 8))).shape
        (1, 14, 14, 16)
    """

    def _kernel_shape(self, in_channels):
        return (*self.kernel_size, self.filters, in_channels)

    def _convolve(self, x):
        out = conv2d_transpose(x, self.kernel, self.strides, self.padding, self.dilation_rate)
        return out + self.bias if self.use_bias else out


class DepthwiseConv2D(_Conv):
    """Depthwise 2-D convolution: each input channel is convolved with its own
    ``depth_multiplier`` filters (no mixing across channels); output channels ``C·M`` in Keras'
    order. Kernel ``(kh, kw, C, M)``.

    Example:
        >>> ember.layers.DepthwiseConv2D(3, depth_multiplier=2)(np.zeros((1, 8, 8, 4))).shape
        (1, 6, 6, 8)
    """

    def __init__(
        self,
        kernel_size,
        strides=1,
        padding="valid",
        depth_multiplier: int = 1,
        data_format=None,
        dilation_rate=1,
        activation=None,
        use_bias: bool = True,
        depthwise_initializer="glorot_uniform",
        bias_initializer="zeros",
        depthwise_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        **kwargs,
    ):
        if (
            isinstance(depth_multiplier, bool)
            or not isinstance(depth_multiplier, (int, np.integer))
            or depth_multiplier < 1
        ):
            raise ValueError(
                f"DepthwiseConv2D: depth_multiplier must be a positive integer, got "
                f"{depth_multiplier!r}"
            )
        self.depth_multiplier = int(depth_multiplier)
        super().__init__(
            1,
            kernel_size,
            strides,
            padding,
            data_format,
            dilation_rate,
            activation,
            use_bias,
            depthwise_initializer,
            bias_initializer,
            depthwise_regularizer,
            bias_regularizer,
            activity_regularizer,
            **kwargs,
        )

    def build(self, input_shape):
        self.filters = input_shape[self._channel_axis] * self.depth_multiplier
        super().build(input_shape)

    def _kernel_shape(self, in_channels):
        return (*self.kernel_size, in_channels, self.depth_multiplier)

    def _convolve(self, x):
        out = depthwise_conv2d(x, self.kernel, self.strides, self.padding, self.dilation_rate)
        return out + self.bias if self.use_bias else out

    def get_config(self):
        config = super().get_config()
        del config["filters"]
        config["depth_multiplier"] = self.depth_multiplier
        for old, new in (
            ("kernel_initializer", "depthwise_initializer"),
            ("kernel_regularizer", "depthwise_regularizer"),
        ):
            config[new] = config.pop(old)
        return config


class SeparableConv2D(_Conv):
    """Depthwise separable 2-D convolution: a :class:`DepthwiseConv2D` per channel, then a 1×1
    convolution mixing the channels into ``filters`` outputs (far fewer parameters than a full
    convolution). Weights ``depthwise_kernel (kh, kw, C, M)`` and ``pointwise_kernel
    (1, 1, C·M, filters)``.

    Example:
        >>> ember.layers.SeparableConv2D(16, 3, padding="same")(np.zeros((1, 8, 8, 4))).shape
        (1, 8, 8, 16)
    """

    def __init__(self, filters, kernel_size, depth_multiplier: int = 1, **kwargs):
        if (
            isinstance(depth_multiplier, bool)
            or not isinstance(depth_multiplier, (int, np.integer))
            or depth_multiplier < 1
        ):
            raise ValueError(
                f"SeparableConv2D: depth_multiplier must be a positive integer, got "
                f"{depth_multiplier!r}"
            )
        self.depth_multiplier = int(depth_multiplier)
        super().__init__(filters, kernel_size, **kwargs)

    def build(self, input_shape):
        in_channels = input_shape[self._channel_axis]
        self.depthwise_kernel = self.add_weight(
            (*self.kernel_size, in_channels, self.depth_multiplier),
            self.kernel_initializer,
            name="depthwise_kernel",
            regularizer=self.kernel_regularizer,
        )
        self.pointwise_kernel = self.add_weight(
            (1, 1, in_channels * self.depth_multiplier, self.filters),
            self.kernel_initializer,
            name="pointwise_kernel",
            regularizer=self.kernel_regularizer,
        )
        self._build_bias_and_spec(in_channels)

    def _convolve(self, x):
        depthwise = depthwise_conv2d(
            x, self.depthwise_kernel, self.strides, self.padding, self.dilation_rate
        )
        return conv2d(depthwise, self.pointwise_kernel, bias=self.bias)

    def get_config(self):
        return {**super().get_config(), "depth_multiplier": self.depth_multiplier}
