"""Preprocessing layers: ``Normalization`` (input standardization adapted on training data),
``Rescaling`` (``x · scale + offset``) and ``Resizing`` (images to a fixed height and width)."""

from __future__ import annotations

import math

import numpy as np

from ember import ops
from ember.layers.base import InputSpec, Layer, in_shape_inference
from ember.layers.conv import _data_format
from ember.ops.image import check_interpolation, resize
from ember.tensor import Tensor

__all__ = ["Normalization", "Rescaling", "Resizing"]

#: Keras' ``backend.epsilon()``: the floor of the standard deviation.
EPSILON = 1e-7


class Normalization(Layer):
    """Standardizes inputs feature-wise: ``(x − mean) / max(sqrt(variance), 1e-7)`` (Keras'
    formula; the floor keeps a constant feature finite), or the inverse with ``invert=True``.

    The statistics come from ``mean=`` and ``variance=``, or from :meth:`adapt` on training data
    (mean and biased variance over every axis except ``axis``). They are stored as the
    non-trainable weights ``mean`` and ``variance``, so ``model.save`` keeps them; calling the
    layer before either raises a ``ValueError``.

    Args:
        axis: the feature axis (or axes) that keep separate statistics; ``None`` for one scalar
            mean and variance.
        mean, variance: fixed statistics (scalars or arrays broadcastable to the feature shape).
        invert: map standardized values back: ``x · std + mean``.

    Example:
        >>> x_train = np.random.normal(5.0, 2.0, size=(100, 4)).astype("float32")
        >>> norm = ember.layers.Normalization()
        >>> norm.adapt(x_train)                 # per-feature mean and variance
        >>> z = norm(x_train).numpy()           # standardized: mean 0, std 1 per feature
        >>> np.allclose(z.mean(axis=0), 0, atol=1e-5), np.allclose(z.std(axis=0), 1, atol=1e-4)
        (True, True)
        >>> model = ember.models.Sequential([ember.layers.Input(shape=(4,)), norm,
        ...                                  ember.layers.Dense(1)])
    """

    _single_input = True

    def __init__(self, axis=-1, mean=None, variance=None, invert: bool = False, **kwargs):
        super().__init__(**kwargs)
        if axis is None:
            axes: tuple = ()
        elif isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
            axes = (int(axis),)
        elif isinstance(axis, (list, tuple)) and all(
            isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axis
        ):
            axes = tuple(int(a) for a in axis)
        else:
            raise TypeError(
                f'Layer "{self.name}": axis must be an integer, a list of integers or None, got '
                f"{axis!r}"
            )
        self.axis = axis if axis is None or isinstance(axis, int) else list(axes)
        self._axes_spec = axes
        if (mean is None) != (variance is None):
            raise ValueError(
                f'Layer "{self.name}": pass both mean and variance, or neither (and call adapt)'
            )
        self._init_mean = None if mean is None else np.asarray(mean, dtype=np.float64)
        self._init_variance = None if variance is None else np.asarray(variance, dtype=np.float64)
        if self._init_variance is not None and (
            not np.isfinite(self._init_variance).all() or (self._init_variance < 0).any()
        ):
            raise ValueError(
                f'Layer "{self.name}": variance must be finite and non-negative, got {variance!r}'
            )
        if self._init_mean is not None and not np.isfinite(self._init_mean).all():
            raise ValueError(f'Layer "{self.name}": mean must be finite, got {mean!r}')
        if not isinstance(invert, (bool, np.bool_)):
            raise TypeError(f'Layer "{self.name}": invert must be True or False, got {invert!r}')
        self.invert = bool(invert)
        self._unset = None

    # ---------------------------------------------------------------- shapes
    def _feature_axes(self, ndim: int) -> tuple:
        axes = []
        for a in self._axes_spec:
            if not -ndim <= a < ndim or a % ndim == 0:
                raise ValueError(
                    f'Layer "{self.name}": axis {a} is not a feature axis of {ndim}-d inputs '
                    "(axis 0 is the batch)"
                )
            axes.append(a % ndim)
        return tuple(sorted(set(axes)))

    def build(self, input_shape):
        ndim = len(input_shape)
        self._kept = self._feature_axes(ndim)
        shape = tuple(input_shape[a] for a in self._kept)
        self._broadcast = tuple(input_shape[i] if i in self._kept else 1 for i in range(ndim))
        self.mean = self.add_weight(shape, "zeros", trainable=False, name="mean")
        self.variance = self.add_weight(shape, "ones", trainable=False, name="variance")
        for p in (self.mean, self.variance):
            p.requires_grad = False  # statistics of the data, never trained
        # Every way of giving statistics (adapt, mean=, set_weights, load_weights) replaces this
        # array object, so "still the placeholder" means "never given statistics".
        self._unset = self.mean.data
        if self._init_mean is not None:
            self._set_stats(self._init_mean, self._init_variance, shape)
        self.input_spec = InputSpec(ndim=ndim, axes={a: input_shape[a] for a in self._kept})

    def _set_stats(self, mean, variance, shape) -> None:
        try:
            mean = np.broadcast_to(mean, shape)
            variance = np.broadcast_to(variance, shape)
        except ValueError:
            raise ValueError(
                f'Layer "{self.name}": mean/variance of shape {np.shape(mean)} do not match the '
                f"feature shape {shape}"
            ) from None
        self.mean.data = np.array(mean, dtype=self.dtype)
        self.variance.data = np.array(variance, dtype=self.dtype)

    # ---------------------------------------------------------------- adapt
    def adapt(self, data) -> None:
        """Compute the mean and (biased) variance of ``data`` per feature, in float64, and store
        them as the layer's weights. ``data`` is an array of samples (batch axis first)."""
        array = data.data if isinstance(data, Tensor) else np.asarray(data)
        if array.dtype.kind not in "iuf" or array.ndim == 0 or len(array) == 0:
            raise ValueError(
                f'Layer "{self.name}".adapt: expected a non-empty numeric array of samples, got '
                f"shape {array.shape} and dtype {array.dtype}"
            )
        array = array.astype(np.float64)
        if not np.isfinite(array).all():
            raise ValueError(f'Layer "{self.name}".adapt: the data contains NaN or inf')
        if not self.built:
            self._check_input(Tensor(array[:1]))
            self._build_shape = (None,) + tuple(array.shape[1:])
            self.build(tuple(array.shape))
            self.built = True
        self._check_input(Tensor(array[:1]))
        reduce = tuple(i for i in range(array.ndim) if i not in self._kept)
        mean = array.mean(axis=reduce)
        variance = ((array - array.mean(axis=reduce, keepdims=True)) ** 2).mean(axis=reduce)
        self._set_stats(mean, variance, self.mean.shape)

    @property
    def adapted(self) -> bool:
        """True once the layer has statistics (from ``adapt``, ``mean=``/``variance=`` or loaded
        weights)."""
        return self._init_mean is not None or (self.built and self.mean.data is not self._unset)

    # ---------------------------------------------------------------- call
    def call(self, inputs):
        if not self.adapted:
            if in_shape_inference():
                return inputs
            raise ValueError(
                f'Layer "{self.name}" (Normalization) has no statistics: call '
                f"{self.name}.adapt(training_data) or pass mean= and variance= first"
            )
        mean = Tensor(self.mean.data.reshape(self._broadcast))
        std = Tensor(
            np.maximum(np.sqrt(self.variance.data), self.dtype.type(EPSILON)).reshape(
                self._broadcast
            )
        )
        if self.invert:
            return ops.add(ops.mul(inputs, std), mean)
        return ops.div(ops.sub(inputs, mean), std)

    def get_config(self):
        config = {**super().get_config(), "axis": self.axis, "invert": self.invert}
        if self.built and self.adapted:
            # The statistics in the config let load_model rebuild an adapted layer before the
            # weights (identical values) are restored.
            config["mean"] = self.mean.data.astype(np.float64).tolist()
            config["variance"] = self.variance.data.astype(np.float64).tolist()
        elif self._init_mean is not None:
            config["mean"] = self._init_mean.tolist()
            config["variance"] = self._init_variance.tolist()
        return config


# ------------------------------------------------------------------------------------ Rescaling
def _constant(layer: str, name: str, value):
    """A finite number or array of numbers: a float (kept as given for the config) or an array."""
    message = f'Layer "{layer}": {name} must be a number or an array of numbers, got {value!r}'
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(message)
    try:
        array = np.asarray(value.data if isinstance(value, Tensor) else value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(message) from None
    if not np.isfinite(array).all():
        raise ValueError(f'Layer "{layer}": {name} must be finite, got {value!r}')
    return float(array) if array.ndim == 0 else array


class Rescaling(Layer):
    """Multiply the inputs by ``scale`` and add ``offset``: ``x · scale + offset``.

    Typically the first layer of an image model: ``Rescaling(1/255)`` maps pixels in
    ``[0, 255]`` to ``[0, 1]`` and ``Rescaling(1/127.5, offset=-1)`` to ``[-1, 1]``. Integer
    (uint8) images are cast to the layer's float dtype first. Works on inputs of any shape.

    Args:
        scale: a number, or an array of numbers broadcast against each sample from the last axis
            (one value per channel: ``scale=[1/0.229, 1/0.224, 1/0.225]``).
        offset: a number or an array, likewise.

    Example:
        >>> rescale = ember.layers.Rescaling(scale=1 / 127.5, offset=-1)
        >>> rescale(np.array([[0, 127.5, 255]])).numpy()
        array([[-1.,  0.,  1.]], dtype=float32)
        >>> per_channel = ember.layers.Rescaling([1.0, 10.0], offset=[0.0, 0.5])
        >>> per_channel(np.ones((1, 2, 2))).numpy()[0]
        array([[ 1. , 10.5],
               [ 1. , 10.5]], dtype=float32)
    """

    _single_input = True

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = _constant(self.name, "scale", scale)
        self.offset = _constant(self.name, "offset", offset)

    def build(self, input_shape):
        sample = tuple(input_shape[1:])
        for name, value in (("scale", self.scale), ("offset", self.offset)):
            shape = np.shape(value)
            fits = len(shape) <= len(sample) and all(
                s in (1, n) or n is None for s, n in zip(shape[::-1], sample[::-1])
            )
            if not fits:
                raise ValueError(
                    f'Layer "{self.name}": {name} of shape {shape} does not broadcast against '
                    f"samples of shape {sample} (it is aligned on the last axis)"
                )

    def call(self, inputs):
        dtype = inputs.dtype
        out = ops.mul(inputs, Tensor(np.asarray(self.scale, dtype=dtype)))
        return ops.add(out, Tensor(np.asarray(self.offset, dtype=dtype)))

    def get_config(self):
        def plain(value):
            return value if isinstance(value, float) else value.tolist()

        return {**super().get_config(), "scale": plain(self.scale), "offset": plain(self.offset)}


# ------------------------------------------------------------------------------------- Resizing
def _check_flag(layer: str, name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f'Layer "{layer}": {name} must be True or False, got {value!r}')
    return bool(value)


class Resizing(Layer):
    """Resize a batch of images to ``(height, width)``.

    ``interpolation="bilinear"`` (the default) samples with half-pixel centres, as Keras 3 /
    ``tf.image.resize`` (without antialiasing) and PyTorch's
    ``interpolate(mode="bilinear", align_corners=False)``; ``"nearest"`` takes pixel
    ``floor((i + 0.5) · in/out)``. The layer is differentiable (gradients flow back to the input
    pixels with the interpolation weights) and has no weights.

    Args:
        height, width: the output size, positive integers.
        interpolation: ``"bilinear"`` or ``"nearest"``.
        crop_to_aspect_ratio: first crop the largest centred window with the output's aspect
            ratio, so the image is not distorted.
        pad_to_aspect_ratio: instead, pad the image (centred) with ``fill_value`` to that aspect
            ratio.
        fill_mode, fill_value: the padding: ``"constant"`` (the only mode) with ``fill_value``.
        antialias: Keras' flag; ``True`` is refused when an axis shrinks (not implemented) and
            changes nothing otherwise.
        data_format: ``"channels_last"`` (NHWC, default) or ``"channels_first"`` (NCHW).

    Example:
        >>> digits = np.random.rand(4, 8, 8, 1).astype("float32")
        >>> ember.layers.Resizing(32, 32)(digits).shape
        (4, 32, 32, 1)
        >>> image = np.array([[0.0, 4.0], [8.0, 12.0]], np.float32).reshape(1, 2, 2, 1)
        >>> ember.layers.Resizing(4, 4)(image).numpy()[0, :, :, 0]
        array([[ 0.,  1.,  3.,  4.],
               [ 2.,  3.,  5.,  6.],
               [ 6.,  7.,  9., 10.],
               [ 8.,  9., 11., 12.]], dtype=float32)
        >>> ember.layers.Resizing(1, 4, interpolation="nearest")(image).numpy()[0, :, :, 0]
        array([[ 8.,  8., 12., 12.]], dtype=float32)
    """

    _single_input = True

    def __init__(
        self,
        height: int,
        width: int,
        interpolation: str = "bilinear",
        crop_to_aspect_ratio: bool = False,
        pad_to_aspect_ratio: bool = False,
        fill_mode: str = "constant",
        fill_value: float = 0.0,
        antialias: bool = False,
        data_format: str | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        owner = f'Layer "{self.name}"'
        for name, value in (("height", height), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
        self.height, self.width = int(height), int(width)
        self.interpolation = check_interpolation(owner, interpolation)
        self.crop_to_aspect_ratio = _check_flag(self.name, "crop_to_aspect_ratio",
                                                crop_to_aspect_ratio)
        self.pad_to_aspect_ratio = _check_flag(self.name, "pad_to_aspect_ratio",
                                               pad_to_aspect_ratio)
        if self.crop_to_aspect_ratio and self.pad_to_aspect_ratio:
            raise ValueError(
                f"{owner}: crop_to_aspect_ratio and pad_to_aspect_ratio exclude each other"
            )
        if fill_mode != "constant":
            raise ValueError(
                f'{owner}: fill_mode must be "constant" (the padding), got {fill_mode!r}'
            )
        self.fill_mode = fill_mode
        try:
            self.fill_value = float(fill_value)
        except (TypeError, ValueError):
            self.fill_value = math.nan
        if isinstance(fill_value, bool) or not math.isfinite(self.fill_value):
            raise ValueError(f"{owner}: fill_value must be a finite number, got {fill_value!r}")
        self.antialias = _check_flag(self.name, "antialias", antialias)
        self.data_format = _data_format(data_format, self.name)
        layout = "NHWC" if self.data_format == "channels_last" else "NCHW"
        self.input_spec = InputSpec(ndim=4, layout=layout)

    def call(self, inputs):
        try:
            return resize(
                inputs,
                (self.height, self.width),
                interpolation=self.interpolation,
                antialias=self.antialias,
                crop_to_aspect_ratio=self.crop_to_aspect_ratio,
                pad_to_aspect_ratio=self.pad_to_aspect_ratio,
                fill_value=self.fill_value,
                data_format=self.data_format,
            )
        except NotImplementedError as exc:
            raise NotImplementedError(f'Layer "{self.name}" (Resizing): {exc}') from None

    def get_config(self):
        return {
            **super().get_config(),
            "height": self.height,
            "width": self.width,
            "interpolation": self.interpolation,
            "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
            "pad_to_aspect_ratio": self.pad_to_aspect_ratio,
            "fill_mode": self.fill_mode,
            "fill_value": self.fill_value,
            "antialias": self.antialias,
            "data_format": self.data_format,
        }
