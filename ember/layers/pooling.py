"""Pooling layers (Keras names): MaxPooling2D, AveragePooling2D, their 1-D forms, and the global
poolings that end a convolutional stack."""

from __future__ import annotations

import numpy as np

from ember import ops
from ember.layers.base import InputSpec, Layer
from ember.layers.conv import _LAYOUTS, _data_format, _tuple
from ember.ops.conv import avg_pool2d, max_pool2d
from ember.tensor import Tensor

__all__ = [
    "MaxPooling1D",
    "MaxPooling2D",
    "AveragePooling1D",
    "AveragePooling2D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
]


class _Pooling(Layer):
    _single_input = True

    rank = 2
    _op = staticmethod(max_pool2d)

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = _tuple(pool_size, self.rank, "pool_size", self.name)
        self.strides = (
            self.pool_size if strides is None else _tuple(strides, self.rank, "strides", self.name)
        )
        padding = str(padding).lower()
        if padding not in ("valid", "same"):
            raise ValueError(
                f'Layer "{self.name}": padding must be "valid" or "same", got {padding!r}'
            )
        self.padding = padding
        self.data_format = _data_format(data_format, self.name)
        self.input_spec = InputSpec(
            ndim=self.rank + 2, layout=_LAYOUTS[(self.rank, self.data_format)]
        )

    def call(self, inputs):
        x = inputs
        first = self.data_format == "channels_first"
        if self.rank == 1:
            x = ops.unsqueeze(ops.transpose(x, (0, 2, 1)) if first else x, 1)
            out = self._op(x, (1, *self.pool_size), (1, *self.strides), self.padding)
            out = ops.squeeze(out, 1)
            return ops.transpose(out, (0, 2, 1)) if first else out
        if first:
            x = ops.transpose(x, (0, 2, 3, 1))
        out = self._op(x, self.pool_size, self.strides, self.padding)
        return ops.transpose(out, (0, 3, 1, 2)) if first else out

    def get_config(self):
        return {
            **super().get_config(),
            "pool_size": list(self.pool_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "data_format": self.data_format,
        }


class MaxPooling2D(_Pooling):
    """Maximum over ``pool_size`` windows (default 2×2, strides = pool_size). The gradient goes
    to the first maximum of each window, as in PyTorch.

    Example:
        >>> ember.layers.MaxPooling2D()(np.zeros((1, 26, 26, 32))).shape
        (1, 13, 13, 32)
    """


class AveragePooling2D(_Pooling):
    """Mean over ``pool_size`` windows; with ``padding="same"`` the padding is not counted.

    Example:
        >>> ember.layers.AveragePooling2D(2)(np.zeros((1, 8, 8, 3))).shape
        (1, 4, 4, 3)
    """

    _op = staticmethod(avg_pool2d)


class MaxPooling1D(_Pooling):
    """Maximum over windows of a ``(batch, steps, channels)`` sequence.

    Example:
        >>> ember.layers.MaxPooling1D(2)(np.zeros((1, 10, 3))).shape
        (1, 5, 3)
    """

    rank = 1


class AveragePooling1D(_Pooling):
    """Mean over windows of a ``(batch, steps, channels)`` sequence.

    Example:
        >>> x = ember.tensor([[[1.0], [2.0], [3.0], [4.0]]])  # (batch=1, steps=4, channels=1)
        >>> ember.layers.AveragePooling1D(pool_size=2)(x)
        tensor([[[1.5],
                 [3.5]]])
    """

    rank = 1
    _op = staticmethod(avg_pool2d)


class _GlobalPooling(Layer):
    _single_input = True

    rank = 2
    _reduce = staticmethod(ops.mean)

    def __init__(self, data_format=None, keepdims: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = _data_format(data_format, self.name)
        self.keepdims = bool(keepdims)
        self.input_spec = InputSpec(
            ndim=self.rank + 2, layout=_LAYOUTS[(self.rank, self.data_format)]
        )

    def call(self, inputs):
        spatial = tuple(range(1, self.rank + 1))
        if self.data_format == "channels_first":
            spatial = tuple(a + 1 for a in spatial)
        return self._reduce(inputs, axis=spatial, keepdims=self.keepdims)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format, "keepdims": self.keepdims}


class GlobalAveragePooling2D(_GlobalPooling):
    """Mean over height and width: ``(N, H, W, C)`` → ``(N, C)``.

    Example:
        >>> ember.layers.GlobalAveragePooling2D()(np.zeros((2, 5, 5, 64))).shape
        (2, 64)
    """


class GlobalMaxPooling2D(_GlobalPooling):
    """Maximum over height and width: ``(N, H, W, C)`` → ``(N, C)``.

    Example:
        >>> x = np.arange(8, dtype=np.float32).reshape(1, 2, 2, 2)  # (N, H, W, C)
        >>> ember.layers.GlobalMaxPooling2D()(x)
        tensor([[6., 7.]])
        >>> ember.layers.GlobalMaxPooling2D(keepdims=True)(x).shape
        (1, 1, 1, 2)
    """

    _reduce = staticmethod(ops.max)


class GlobalAveragePooling1D(_GlobalPooling):
    """Mean over the steps of ``(N, steps, C)`` → ``(N, C)``.

    With a mask (from ``Embedding(mask_zero=True)`` or ``Masking``) the mean is over the real
    steps only, as in Keras; a sample with every step masked gives zeros.

    Example:
        >>> x = ember.tensor([[[1.0], [2.0], [3.0], [4.0]]])  # (batch=1, steps=4, channels=1)
        >>> ember.layers.GlobalAveragePooling1D()(x)
        tensor([[2.5]])
        >>> ember.layers.GlobalAveragePooling1D()(x, mask=np.array([[True, True, False, False]]))
        tensor([[1.5]])
    """

    rank = 1
    supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return super().call(inputs)
        step_axis = 2 if self.data_format == "channels_first" else 1
        keep = np.asarray(mask.data if isinstance(mask, Tensor) else mask, dtype=inputs.dtype)
        keep = np.expand_dims(keep, 1 if step_axis == 2 else -1)
        counts = np.maximum(keep.sum(axis=step_axis, keepdims=self.keepdims), 1)
        return ops.sum(inputs * keep, axis=step_axis, keepdims=self.keepdims) / counts

    def compute_mask(self, inputs, mask=None):
        return None  # the time axis is gone


class GlobalMaxPooling1D(_GlobalPooling):
    """Maximum over the steps of ``(N, steps, C)`` → ``(N, C)``.

    Example:
        >>> x = ember.tensor([[[1.0], [2.0], [3.0], [4.0]]])  # (batch=1, steps=4, channels=1)
        >>> ember.layers.GlobalMaxPooling1D()(x)
        tensor([[4.]])
    """

    rank = 1
    _reduce = staticmethod(ops.max)
