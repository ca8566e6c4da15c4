"""Image augmentation layers, active only in training (Keras' ``RandomFlip``,
``RandomTranslation`` and ``RandomRotation``): each sample of a batch gets its own random flip,
shift or angle, drawn in one vectorized step; in inference the input passes through unchanged and
no random number is drawn.
"""

from __future__ import annotations

import math

import numpy as np

from ember import ops
from ember.layers.base import InputSpec
from ember.layers.conv import _data_format
from ember.layers.regularization import _RandomLayer
from ember.ops.image import AFFINE_INTERPOLATIONS, affine_transform, check_interpolation
from ember.ops.image import fold_indices as _map_index
from ember.tensor import Tensor

__all__ = ["RandomFlip", "RandomTranslation", "RandomRotation"]

_FILL_MODES = ("constant", "nearest", "reflect", "wrap")


class _ImageAugmentation(_RandomLayer):
    def _factor(self, name: str, value) -> tuple[float, float]:
        """Keras' rule for a random range: a number ``f`` in [-1, 1] means ``(-|f|, |f|)``; a
        pair ``(low, high)`` is sorted; both ends must lie in [-1, 1]."""
        try:
            if isinstance(value, (bool, np.bool_)):
                raise TypeError
            if np.isscalar(value):
                low, high = -abs(float(value)), abs(float(value))
            else:
                pair = list(value)
                if len(pair) != 2 or any(isinstance(v, (bool, np.bool_)) for v in pair):
                    raise TypeError
                low, high = sorted(float(v) for v in pair)
        except (TypeError, ValueError):
            low = high = math.nan
        if not (-1.0 <= low <= high <= 1.0):
            raise ValueError(
                f'Layer "{self.name}": {name} must be a fraction in [-1, 1] or a pair (low, high) '
                f"of them, got {value!r}"
            )
        return (low, high)

    def __init__(self, data_format=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = _data_format(data_format, self.name)
        layout = "NHWC" if self.data_format == "channels_last" else "NCHW"
        self.input_spec = InputSpec(ndim=4, layout=layout)
        self._init_rng(seed)

    def _axes(self) -> tuple[int, int]:
        """The height and width axes."""
        return (1, 2) if self.data_format == "channels_last" else (2, 3)

    def _gather(self, inputs: Tensor, rows: np.ndarray, cols: np.ndarray) -> Tensor:
        """``out[n, i, j] = inputs[n, rows[n, i], cols[n, j]]`` for every channel, as one
        advanced-indexing op (differentiable)."""
        n = inputs.shape[0]
        batch = np.arange(n)[:, None, None]
        if self.data_format == "channels_last":
            index = (batch, rows[:, :, None], cols[:, None, :])
            return ops.getitem(inputs, index)
        # channels first: gather on (N, H, W) for every channel via a transposed view
        moved = ops.transpose(inputs, (0, 2, 3, 1))
        out = ops.getitem(moved, (batch, rows[:, :, None], cols[:, None, :]))
        return ops.transpose(out, (0, 3, 1, 2))

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format, "seed": self.seed}


class RandomFlip(_ImageAugmentation):
    """Flip each training image left-right and/or up-down with probability ½ per axis.

    Args:
        mode: ``"horizontal"`` (left-right), ``"vertical"`` or ``"horizontal_and_vertical"``
            (Keras' default).
        seed: optional integer for a layer-owned generator.

    Example:
        >>> images = np.random.rand(4, 8, 8, 3).astype("float32")   # (N, H, W, C)
        >>> flip = ember.layers.RandomFlip("horizontal")
        >>> y = flip(images, training=True)    # about half the images mirrored
        >>> y.shape
        (4, 8, 8, 3)
        >>> bool(np.array_equal(flip(images).numpy(), images))   # inference: unchanged
        True
    """

    _MODES = ("horizontal", "vertical", "horizontal_and_vertical")

    def __init__(self, mode: str = "horizontal_and_vertical", seed=None, data_format=None, **kw):
        super().__init__(data_format, seed, **kw)
        if mode not in self._MODES:
            raise ValueError(
                f'Layer "{self.name}": mode must be one of {self._MODES}, got {mode!r}'
            )
        self.mode = mode

    def call(self, inputs, training=False):
        if not training:
            return inputs
        n = inputs.shape[0]
        h_axis, w_axis = self._axes()
        height, width = inputs.shape[h_axis], inputs.shape[w_axis]
        rng = self._generator()
        rows = np.broadcast_to(np.arange(height), (n, height))
        cols = np.broadcast_to(np.arange(width), (n, width))
        if self.mode != "vertical":
            flip = rng.random(n) < 0.5
            cols = np.where(flip[:, None], cols[:, ::-1], cols)
        if self.mode != "horizontal":
            flip = rng.random(n) < 0.5
            rows = np.where(flip[:, None], rows[:, ::-1], rows)
        return self._gather(inputs, rows, cols)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


class RandomTranslation(_ImageAugmentation):
    """Shift each training image by a random whole number of pixels, up to
    ``height_factor · H`` rows and ``width_factor · W`` columns either way.

    Shifts are rounded to whole pixels (Keras interpolates fractional shifts bilinearly; on
    28×28 images a factor of 0.1 means up to 2–3 pixels either way). Uncovered pixels are filled
    by ``fill_mode``: ``"reflect"`` (Keras' default), ``"constant"`` (``fill_value``),
    ``"nearest"`` or ``"wrap"``.

    Args:
        height_factor, width_factor: a fraction ``f`` (shifts in ``[-f, f]``) or a pair
            ``(low, high)`` with ``-1 <= low <= high <= 1``.
        fill_mode, fill_value: see above.
        seed: optional integer for a layer-owned generator.

    Example:
        >>> images = np.random.rand(4, 8, 8, 3).astype("float32")   # (N, H, W, C)
        >>> shift = ember.layers.RandomTranslation(0.1, 0.1, fill_mode="constant")
        >>> y = shift(images, training=True)
        >>> y.shape
        (4, 8, 8, 3)
    """

    def __init__(
        self,
        height_factor,
        width_factor,
        fill_mode: str = "reflect",
        fill_value: float = 0.0,
        seed=None,
        data_format=None,
        **kwargs,
    ):
        super().__init__(data_format, seed, **kwargs)
        self.height_factor = self._factor("height_factor", height_factor)
        self.width_factor = self._factor("width_factor", width_factor)
        if fill_mode not in _FILL_MODES:
            raise ValueError(
                f'Layer "{self.name}": fill_mode must be one of {_FILL_MODES}, got {fill_mode!r}'
            )
        self.fill_mode = fill_mode
        self.fill_value = float(fill_value)

    def call(self, inputs, training=False):
        if not training:
            return inputs
        n = inputs.shape[0]
        h_axis, w_axis = self._axes()
        height, width = inputs.shape[h_axis], inputs.shape[w_axis]
        rng = self._generator()
        shift_rows = np.rint(rng.uniform(*self.height_factor, size=n) * height).astype(np.intp)
        shift_cols = np.rint(rng.uniform(*self.width_factor, size=n) * width).astype(np.intp)
        source_rows = np.arange(height)[None, :] - shift_rows[:, None]  # (N, H)
        source_cols = np.arange(width)[None, :] - shift_cols[:, None]  # (N, W)
        rows = _map_index(source_rows, height, self.fill_mode)
        cols = _map_index(source_cols, width, self.fill_mode)
        out = self._gather(inputs, rows, cols)
        if self.fill_mode != "constant":
            return out
        inside = ((source_rows >= 0) & (source_rows < height))[:, :, None] & (
            (source_cols >= 0) & (source_cols < width)
        )[:, None, :]  # (N, H, W)
        shape = (
            (n, height, width, 1) if self.data_format == "channels_last" else (n, 1, height, width)
        )
        inside = inside.reshape(shape)
        dtype = inputs.dtype
        fill = np.where(inside, 0, self.fill_value).astype(dtype)
        return ops.add(ops.mul(out, Tensor(inside.astype(dtype))), Tensor(fill))

    def get_config(self):
        return {
            **super().get_config(),
            "height_factor": list(self.height_factor),
            "width_factor": list(self.width_factor),
            "fill_mode": self.fill_mode,
            "fill_value": self.fill_value,
        }


def _rotation_transforms(angles: np.ndarray, height: int, width: int) -> np.ndarray:
    """One ``affine_transform`` row per angle (radians): the rotation about the image centre
    ``((W − 1)/2, (H − 1)/2)``; a positive angle turns the picture counter-clockwise."""
    cos, sin = np.cos(angles), np.sin(angles)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    # output (x, y) reads input c + R(angle)·((x, y) − c), with y pointing down
    x_offset = cx - (cos * cx - sin * cy)
    y_offset = cy - (sin * cx + cos * cy)
    zeros = np.zeros_like(angles)
    return np.stack([cos, -sin, x_offset, sin, cos, y_offset, zeros, zeros], axis=1)


class RandomRotation(_ImageAugmentation):
    """Rotate each training image by its own random angle, drawn uniformly from
    ``[low · 2π, high · 2π]``; a positive angle turns the image counter-clockwise.

    The rotation is about the image centre and keeps the image size: corners that turn out of
    the picture are lost, and the uncovered area is filled by ``fill_mode``: ``"reflect"``
    (Keras' default, ``d c b a | a b c d | d c b a``), ``"constant"`` (``fill_value``),
    ``"nearest"`` (the edge pixel) or ``"wrap"``. Pixels are read with ``"bilinear"``
    interpolation (default) or ``"nearest"``. In inference the input passes through unchanged
    and no random number is drawn.

    Args:
        factor: a fraction of a full turn: ``f`` draws angles in ``[-f·2π, f·2π]`` (``0.1`` is up
            to ±36°), a pair ``(low, high)`` in ``[low·2π, high·2π]``; every value in ``[-1, 1]``.
        fill_mode, interpolation, fill_value: see above.
        seed: optional integer for a layer-owned generator; otherwise Ember's generator
            (``ember.manual_seed``).
        data_format: ``"channels_last"`` (NHWC, default) or ``"channels_first"`` (NCHW).

    Example:
        >>> images = np.random.rand(4, 8, 8, 3).astype("float32")   # (N, H, W, C)
        >>> rotate = ember.layers.RandomRotation(0.1, fill_mode="constant")
        >>> rotate(images, training=True).shape     # each image turned by up to ±36°
        (4, 8, 8, 3)
        >>> quarter = ember.layers.RandomRotation((0.25, 0.25))   # exactly 90°
        >>> square = np.arange(9, dtype="float32").reshape(1, 3, 3, 1)
        >>> quarter(square, training=True).numpy()[0, :, :, 0]   # counter-clockwise
        array([[2., 5., 8.],
               [1., 4., 7.],
               [0., 3., 6.]], dtype=float32)
    """

    def __init__(
        self,
        factor,
        fill_mode: str = "reflect",
        interpolation: str = "bilinear",
        seed=None,
        fill_value: float = 0.0,
        data_format=None,
        **kwargs,
    ):
        super().__init__(data_format, seed, **kwargs)
        self.factor = self._factor("factor", factor)
        if fill_mode not in _FILL_MODES:
            raise ValueError(
                f'Layer "{self.name}": fill_mode must be one of {_FILL_MODES}, got {fill_mode!r}'
            )
        self.fill_mode = fill_mode
        self.interpolation = check_interpolation(
            f'Layer "{self.name}"', interpolation, AFFINE_INTERPOLATIONS
        )
        try:
            self.fill_value = float(fill_value)
        except (TypeError, ValueError):
            self.fill_value = math.nan
        if isinstance(fill_value, bool) or not math.isfinite(self.fill_value):
            raise ValueError(
                f'Layer "{self.name}": fill_value must be a finite number, got {fill_value!r}'
            )

    def call(self, inputs, training=False):
        if not training or self.factor == (0.0, 0.0):
            return inputs
        h_axis, w_axis = self._axes()
        height, width = inputs.shape[h_axis], inputs.shape[w_axis]
        angles = self._generator().uniform(*self.factor, size=inputs.shape[0]) * (2 * math.pi)
        return affine_transform(
            inputs,
            _rotation_transforms(angles, height, width),
            interpolation=self.interpolation,
            fill_mode=self.fill_mode,
            fill_value=self.fill_value,
            data_format=self.data_format,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "factor": list(self.factor),
            "fill_mode": self.fill_mode,
            "interpolation": self.interpolation,
            "fill_value": self.fill_value,
        }
