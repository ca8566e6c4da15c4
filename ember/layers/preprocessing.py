"""Preprocessing layers: ``Normalization``, input standardization adapted on training data."""

from __future__ import annotations

import numpy as np

from ember import ops
from ember.layers.base import InputSpec, Layer, in_shape_inference
from ember.tensor import Tensor

__all__ = ["Normalization"]

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
