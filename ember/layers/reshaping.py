"""Layers that only move values around: Reshape, ZeroPadding2D, UpSampling2D."""

from __future__ import annotations

import math

import numpy as np

from ember import ops
from ember.layers.base import InputSpec, Layer, check_positive_int
from ember.layers.conv import _LAYOUTS, _data_format
from ember.ops.conv import upsample_nearest2d

__all__ = ["Reshape", "RepeatVector", "Permute", "ZeroPadding2D", "UpSampling2D"]


class Reshape(Layer):
    """Reshape each sample to ``target_shape`` (batch axis excluded; one entry may be -1).

    Example:
        >>> ember.layers.Reshape((7, 7, 16))(np.zeros((2, 784))).shape
        (2, 7, 7, 16)
    """

    _single_input = True

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        target_shape = tuple(int(s) for s in target_shape)
        if sum(s == -1 for s in target_shape) > 1 or any(s == 0 or s < -1 for s in target_shape):
            raise ValueError(
                f'Layer "{self.name}": target_shape must hold positive sizes and at most one -1, '
                f"got {target_shape}"
            )
        self.target_shape = target_shape

    def call(self, inputs):
        per_sample = math.prod(inputs.shape[1:])
        known = math.prod(s for s in self.target_shape if s != -1)
        fits = per_sample % known == 0 if -1 in self.target_shape else per_sample == known
        if not fits:
            raise ValueError(
                f'Layer "{self.name}": cannot reshape input of shape {inputs.shape} '
                f"({per_sample} values per sample) to target_shape {self.target_shape}"
            )
        # -1 is resolved here: NumPy cannot resolve it when there are zero samples.
        target = tuple(per_sample // known if s == -1 else s for s in self.target_shape)
        return ops.reshape(inputs, (inputs.shape[0], *target))

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class RepeatVector(Layer):
    """Repeats each sample's vector ``n`` times: ``(batch, features)`` → ``(batch, n,
    features)`` (an encoder's summary fed to every step of a decoder).

    Example:
        >>> ember.layers.RepeatVector(3)(np.ones((2, 4))).shape
        (2, 3, 4)
    """

    _single_input = True

    def __init__(self, n: int, **kwargs):
        super().__init__(**kwargs)
        self.n = check_positive_int(self, "n", n)

    def call(self, inputs):
        if inputs.ndim != 2:
            raise ValueError(
                f'Layer "{self.name}" (RepeatVector) expects (batch, features) inputs, got shape '
                f"{inputs.shape}"
            )
        return ops.stack([inputs] * self.n, axis=1)

    def get_config(self):
        return {**super().get_config(), "n": self.n}


class Permute(Layer):
    """Permutes the axes of each sample; ``dims`` numbers them from 1 (the batch axis stays
    first), as Keras does: ``Permute((2, 1))`` swaps time and features.

    Example:
        >>> ember.layers.Permute((2, 1))(np.ones((2, 5, 3))).shape
        (2, 3, 5)
    """

    _single_input = True
    supports_masking = False

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        dims = tuple(int(d) for d in dims)
        if sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError(
                f'Layer "{self.name}" (Permute): dims must be a permutation of 1..{len(dims)} '
                f"(axis 0 is the batch), got {dims}"
            )
        self.dims = dims

    def call(self, inputs):
        if inputs.ndim != len(self.dims) + 1:
            raise ValueError(
                f'Layer "{self.name}" (Permute) with dims {self.dims} expects inputs with '
                f"{len(self.dims) + 1} axes, got shape {inputs.shape}"
            )
        return ops.transpose(inputs, (0, *self.dims))

    def get_config(self):
        return {**super().get_config(), "dims": list(self.dims)}


def _padding_pairs(padding, name) -> tuple[tuple[int, int], tuple[int, int]]:
    if isinstance(padding, (int, np.integer)):
        padding = ((padding, padding), (padding, padding))
    padding = tuple(padding)
    if len(padding) == 2 and all(isinstance(p, (int, np.integer)) for p in padding):
        padding = ((padding[0], padding[0]), (padding[1], padding[1]))
    try:
        pairs = tuple((int(a), int(b)) for a, b in padding)
    except (TypeError, ValueError):
        pairs = ()
    if len(pairs) != 2 or min(min(p) for p in pairs) < 0:
        raise ValueError(
            f'Layer "{name}": padding must be an int, (rows, cols) or ((top, bottom), '
            f"(left, right)) of non-negative ints, got {padding!r}"
        )
    return pairs


class ZeroPadding2D(Layer):
    """Pad height and width with zeros: an int, ``(rows, cols)`` or
    ``((top, bottom), (left, right))``.

    Example:
        >>> ember.layers.ZeroPadding2D(1)(np.zeros((1, 28, 28, 1))).shape
        (1, 30, 30, 1)
    """

    _single_input = True

    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.padding = _padding_pairs(padding, self.name)
        self.data_format = _data_format(data_format, self.name)
        self.input_spec = InputSpec(ndim=4, layout=_LAYOUTS[(2, self.data_format)])

    def call(self, inputs):
        (top, bottom), (left, right) = self.padding
        if self.data_format == "channels_last":
            widths = ((0, 0), (top, bottom), (left, right), (0, 0))
        else:
            widths = ((0, 0), (0, 0), (top, bottom), (left, right))
        return ops.pad(inputs, widths)

    def get_config(self):
        return {
            **super().get_config(),
            "padding": [list(p) for p in self.padding],
            "data_format": self.data_format,
        }


class UpSampling2D(Layer):
    """Repeat rows and columns ``size`` times (nearest-neighbour upsampling).

    Example:
        >>> ember.layers.UpSampling2D(2)(np.zeros((1, 7, 7, 3))).shape
        (1, 14, 14, 3)
    """

    _single_input = True

    def __init__(self, size=2, data_format=None, interpolation: str = "nearest", **kwargs):
        super().__init__(**kwargs)
        if isinstance(size, (int, np.integer)):
            size = (size, size)
        size = tuple(int(s) for s in size)
        if len(size) != 2 or min(size) < 1:
            raise ValueError(
                f'Layer "{self.name}": size must be a positive int or pair, got {size}'
            )
        if interpolation != "nearest":
            raise ValueError(
                f'Layer "{self.name}": only interpolation="nearest" is supported, got '
                f"{interpolation!r}"
            )
        self.size = size
        self.data_format = _data_format(data_format, self.name)
        self.interpolation = interpolation
        self.input_spec = InputSpec(ndim=4, layout=_LAYOUTS[(2, self.data_format)])

    def call(self, inputs):
        first = self.data_format == "channels_first"
        x = ops.transpose(inputs, (0, 2, 3, 1)) if first else inputs
        out = upsample_nearest2d(x, self.size)
        return ops.transpose(out, (0, 3, 1, 2)) if first else out

    def get_config(self):
        return {
            **super().get_config(),
            "size": list(self.size),
            "data_format": self.data_format,
            "interpolation": self.interpolation,
        }
