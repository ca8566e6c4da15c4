"""Normalization layers: ``BatchNormalization`` and ``LayerNormalization`` (Keras' names, defaults
and weight names), both on the fused op :func:`ember.ops.normalization.normalize`."""

from __future__ import annotations

import math

import numpy as np

from ember import initializers as initializers_module
from ember import regularizers as regularizers_module
from ember.layers.base import InputSpec, Layer
from ember.ops.normalization import normalize, normalize_inference

__all__ = ["BatchNormalization", "LayerNormalization"]


def _check_epsilon(layer: str, epsilon) -> float:
    try:
        value = float(epsilon)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(epsilon, bool) or not (value > 0 and math.isfinite(value)):
        raise ValueError(f'Layer "{layer}": epsilon must be a positive number, got {epsilon!r}')
    return value


def _check_flag(layer: str, name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f'Layer "{layer}": {name} must be True or False, got {value!r}')
    return bool(value)


def _initializer_config(config: dict, defaults: dict) -> dict:
    config = dict(config)
    for key, default in defaults.items():
        config[key] = initializers_module.deserialize(config.get(key), default)
    return config


class BatchNormalization(Layer):
    """Normalizes each feature with batch statistics while training and with moving averages
    of them in inference: ``γ · (x − μ) / sqrt(σ² + ε) + β``.

    * **Statistics.** Over every axis except ``axis`` (``axis=-1`` for ``(N, features)`` or NHWC
      images, ``axis=1`` for NCHW). Normalization uses the biased batch variance (divide by n).
    * **Moving averages** (Keras' convention, not PyTorch's):
      ``moving = momentum · moving + (1 − momentum) · batch``. ``moving_variance`` is fed the
      **biased** batch variance, as Keras does; PyTorch feeds the unbiased one (× n/(n−1)), so
      ``torch.nn.BatchNorm*(momentum=1 − momentum)`` matches the moving mean exactly and the
      moving variance up to that factor. They change only in training calls, never in inference.
    * **Mode.** ``training=True`` (``fit``) uses batch statistics, ``training=False``
      (``predict``/``evaluate``) the moving ones. As in Keras, ``trainable=False`` makes the layer
      run in inference mode even in a training call (frozen BN for fine-tuning): the moving
      statistics stay put and γ, β are not trained.
    * A training batch with a single value per feature raises ``ValueError`` (its variance is 0
      and the output would silently be β), as PyTorch does; inference works on any batch.

    Weights: ``gamma``, ``beta`` (trainable), ``moving_mean``, ``moving_variance``
    (non-trainable, saved with the model, never given gradients).

    Example:
        >>> bn = ember.layers.BatchNormalization()
        >>> y = bn(np.random.randn(32, 4), training=True)   # batch statistics, updates moving_*
        >>> y = bn(np.random.randn(1, 4))                    # inference: moving statistics
    """

    _single_input = True
    supports_masking = True

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        moving_mean_initializer="zeros",
        moving_variance_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(
                f'Layer "{self.name}": axis must be an integer (the feature axis), got {axis!r}'
            )
        self.axis = int(axis)
        try:
            m = float(momentum)
        except (TypeError, ValueError):
            m = math.nan
        if isinstance(momentum, bool) or not 0.0 <= m <= 1.0:
            raise ValueError(
                f'Layer "{self.name}": momentum must be in [0, 1] (Keras convention: moving = '
                f"momentum * moving + (1 - momentum) * batch, default 0.99), got {momentum!r}"
            )
        self.momentum = m
        self.epsilon = _check_epsilon(self.name, epsilon)
        self.center = _check_flag(self.name, "center", center)
        self.scale = _check_flag(self.name, "scale", scale)
        self.beta_initializer = initializers_module.get(beta_initializer)
        self.gamma_initializer = initializers_module.get(gamma_initializer)
        self.moving_mean_initializer = initializers_module.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers_module.get(moving_variance_initializer)
        self.beta_regularizer = regularizers_module.get(beta_regularizer)
        self.gamma_regularizer = regularizers_module.get(gamma_regularizer)
        self.gamma = self.beta = None

    def build(self, input_shape):
        ndim = len(input_shape)
        if not -ndim <= self.axis < ndim or ndim < 2:
            raise ValueError(
                f'Layer "{self.name}": axis {self.axis} is out of range for inputs of shape '
                f"{tuple(input_shape)} (a batch axis plus at least one feature axis is needed)"
            )
        axis = self.axis % ndim
        if axis == 0:
            raise ValueError(
                f'Layer "{self.name}": axis 0 is the batch axis; give the feature axis '
                "(-1 for (N, features) or NHWC, 1 for NCHW)"
            )
        size = input_shape[axis]
        self._axis = axis
        self._reduce_axes = tuple(i for i in range(ndim) if i != axis)
        self._stat_shape = tuple(size if i == axis else 1 for i in range(ndim))
        if self.scale:
            self.gamma = self.add_weight(
                (size,), self.gamma_initializer, name="gamma", regularizer=self.gamma_regularizer
            )
        if self.center:
            self.beta = self.add_weight(
                (size,), self.beta_initializer, name="beta", regularizer=self.beta_regularizer
            )
        self.moving_mean = self.add_weight(
            (size,), self.moving_mean_initializer, trainable=False, name="moving_mean"
        )
        self.moving_variance = self.add_weight(
            (size,), self.moving_variance_initializer, trainable=False, name="moving_variance"
        )
        # State, not parameters: no gradient may ever reach them.
        self.moving_mean.requires_grad = False
        self.moving_variance.requires_grad = False
        self.input_spec = InputSpec(ndim=ndim, axes={axis: size})

    def call(self, inputs, training=False):
        if training and self.trainable:
            n = math.prod(inputs.shape[i] for i in self._reduce_axes)
            if n <= 1:
                raise ValueError(
                    f'Layer "{self.name}" (BatchNormalization): expected more than 1 value per '
                    f"channel when training, got input of shape {tuple(inputs.shape)}. Use a "
                    "batch size > 1 (e.g. drop the last partial batch) or call with "
                    "training=False"
                )
            out, mean, var = normalize(
                inputs, self._reduce_axes, self.gamma, self.beta, self.epsilon, self._stat_shape
            )
            m = self.moving_mean.dtype.type(self.momentum)
            one_minus = self.moving_mean.dtype.type(1.0 - self.momentum)
            # New arrays, not in-place updates: an earlier inference graph may hold the old ones.
            self.moving_mean.data = (
                self.moving_mean.data * m
                + mean.reshape(-1).astype(self.moving_mean.dtype) * one_minus
            )
            self.moving_variance.data = (
                self.moving_variance.data * m
                + var.reshape(-1).astype(self.moving_variance.dtype) * one_minus
            )
            return out
        return normalize_inference(
            inputs,
            self.moving_mean.data.reshape(self._stat_shape),
            self.moving_variance.data.reshape(self._stat_shape),
            self.gamma,
            self.beta,
            self.epsilon,
        )

    def get_config(self):
        ser = initializers_module.serialize
        return {
            **super().get_config(),
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": ser(self.beta_initializer),
            "gamma_initializer": ser(self.gamma_initializer),
            "moving_mean_initializer": ser(self.moving_mean_initializer),
            "moving_variance_initializer": ser(self.moving_variance_initializer),
            "beta_regularizer": regularizers_module.serialize(self.beta_regularizer),
            "gamma_regularizer": regularizers_module.serialize(self.gamma_regularizer),
        }

    @classmethod
    def from_config(cls, config):
        config = _initializer_config(
            config,
            {
                "beta_initializer": "zeros",
                "gamma_initializer": "ones",
                "moving_mean_initializer": "zeros",
                "moving_variance_initializer": "ones",
            },
        )
        for key in ("beta_regularizer", "gamma_regularizer"):
            config[key] = regularizers_module.deserialize(config.get(key))
        return cls(**config)


class LayerNormalization(Layer):
    """Normalizes each sample over its feature axes: ``γ · (x − μ) / sqrt(σ² + ε) + β`` with the
    mean and biased variance of that sample (the same in training and inference).

    ``axis`` (int or list of ints, default ``-1``) names the axes normalized over; ``gamma`` and
    ``beta`` have their sizes. ``epsilon`` defaults to Keras' ``1e-3`` (PyTorch's ``LayerNorm``
    uses ``1e-5``: pass ``eps`` to compare).

    Example:
        >>> ln = ember.layers.LayerNormalization()
        >>> ln(np.random.randn(2, 5)).shape
        (2, 5)
    """

    _single_input = True
    supports_masking = True

    def __init__(
        self,
        axis=-1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        axes = [axis] if isinstance(axis, (int, np.integer)) else axis
        if (
            not isinstance(axes, (list, tuple))
            or not axes
            or any(isinstance(a, bool) or not isinstance(a, (int, np.integer)) for a in axes)
        ):
            raise TypeError(
                f'Layer "{self.name}": axis must be an integer or a list of integers, got {axis!r}'
            )
        self.axis = int(axis) if isinstance(axis, (int, np.integer)) else [int(a) for a in axes]
        self.epsilon = _check_epsilon(self.name, epsilon)
        self.center = _check_flag(self.name, "center", center)
        self.scale = _check_flag(self.name, "scale", scale)
        self.beta_initializer = initializers_module.get(beta_initializer)
        self.gamma_initializer = initializers_module.get(gamma_initializer)
        self.beta_regularizer = regularizers_module.get(beta_regularizer)
        self.gamma_regularizer = regularizers_module.get(gamma_regularizer)
        self.gamma = self.beta = None

    def build(self, input_shape):
        ndim = len(input_shape)
        axes = [self.axis] if isinstance(self.axis, int) else self.axis
        if any(not -ndim <= a < ndim for a in axes):
            raise ValueError(
                f'Layer "{self.name}": axis {self.axis} is out of range for inputs of shape '
                f"{tuple(input_shape)}"
            )
        axes = sorted({a % ndim for a in axes})
        if 0 in axes:
            raise ValueError(
                f'Layer "{self.name}": axis 0 is the batch axis and cannot be normalized'
            )
        self._axes = tuple(axes)
        shape = tuple(input_shape[a] for a in axes)
        self._param_shape = tuple(input_shape[i] if i in axes else 1 for i in range(ndim))
        if self.scale:
            self.gamma = self.add_weight(
                shape, self.gamma_initializer, name="gamma", regularizer=self.gamma_regularizer
            )
        if self.center:
            self.beta = self.add_weight(
                shape, self.beta_initializer, name="beta", regularizer=self.beta_regularizer
            )
        self.input_spec = InputSpec(ndim=ndim, axes={a: input_shape[a] for a in axes})

    def call(self, inputs):
        out, _, _ = normalize(
            inputs, self._axes, self.gamma, self.beta, self.epsilon, self._param_shape
        )
        return out

    def get_config(self):
        ser = initializers_module.serialize
        return {
            **super().get_config(),
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": ser(self.beta_initializer),
            "gamma_initializer": ser(self.gamma_initializer),
            "beta_regularizer": regularizers_module.serialize(self.beta_regularizer),
            "gamma_regularizer": regularizers_module.serialize(self.gamma_regularizer),
        }

    @classmethod
    def from_config(cls, config):
        config = _initializer_config(
            config, {"beta_initializer": "zeros", "gamma_initializer": "ones"}
        )
        for key in ("beta_regularizer", "gamma_regularizer"):
            config[key] = regularizers_module.deserialize(config.get(key))
        return cls(**config)
