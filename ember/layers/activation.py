"""Activation layers (Keras' names): ``PReLU`` with a learnable slope, and ``LeakyReLU``,
``ELU``, ``ReLU``, ``Softmax`` with fixed hyper-parameters, all on :mod:`ember.ops`."""

from __future__ import annotations

import math

import numpy as np

from ember import initializers as initializers_module
from ember import ops
from ember import regularizers as regularizers_module
from ember.initializers import Constant
from ember.layers.base import InputSpec, Layer

__all__ = ["PReLU", "LeakyReLU", "ELU", "ReLU", "Softmax"]


def _finite(layer: str, name: str, value, minimum: float | None = None) -> float:
    try:
        result = float(value)
    except (TypeError, ValueError):
        result = math.nan
    if (
        isinstance(value, bool)
        or not math.isfinite(result)
        or (minimum is not None and result < minimum)
    ):
        bound = "" if minimum is None else f" >= {minimum:g}"
        raise ValueError(f'Layer "{layer}": {name} must be a finite number{bound}, got {value!r}')
    return result


class PReLU(Layer):
    """Parametric ReLU: ``x`` for ``x > 0``, ``alpha · x`` otherwise, with ``alpha`` learned.

    ``alpha`` has the input's per-sample shape, one slope per element, except along
    ``shared_axes`` (axes of the full input, the batch axis being 0), where one slope is shared:
    for ``(N, H, W, C)`` images ``shared_axes=[1, 2]`` gives one slope per channel;
    ``torch.nn.PReLU(C)`` on NCHW is ``shared_axes=[2, 3]``.

    ``alpha_initializer`` defaults to ``Constant(0.25)`` (He et al. 2015 and PyTorch; Keras'
    default is zeros, which starts as a plain ReLU).

    Example:
        >>> prelu = ember.layers.PReLU()
        >>> prelu(np.array([[-2.0, 3.0]])).numpy()
        array([[-0.5,  3. ]], dtype=float32)
    """

    _single_input = True
    supports_masking = True

    def __init__(self, alpha_initializer=None, alpha_regularizer=None, shared_axes=None, **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = initializers_module.get(
            Constant(0.25) if alpha_initializer is None else alpha_initializer
        )
        self.alpha_regularizer = regularizers_module.get(alpha_regularizer)
        if shared_axes is None:
            self.shared_axes = None
        else:
            axes = [shared_axes] if isinstance(shared_axes, (int, np.integer)) else shared_axes
            if not isinstance(axes, (list, tuple)) or any(
                isinstance(a, bool) or not isinstance(a, (int, np.integer)) for a in axes
            ):
                raise TypeError(
                    f'Layer "{self.name}": shared_axes must be an integer or a list of integers, '
                    f"got {shared_axes!r}"
                )
            self.shared_axes = [int(a) for a in axes]

    def build(self, input_shape):
        ndim = len(input_shape)
        if ndim < 2:
            raise ValueError(
                f'Layer "{self.name}": expected inputs with a batch axis and at least one feature '
                f"axis, got shape {tuple(input_shape)}"
            )
        param_shape = list(input_shape[1:])
        for a in self.shared_axes or []:
            if not -ndim <= a < ndim or a % ndim == 0:
                raise ValueError(
                    f'Layer "{self.name}": shared axis {a} is not a feature axis of inputs of '
                    f"shape {tuple(input_shape)} (axis 0 is the batch)"
                )
            param_shape[a % ndim - 1] = 1
        self.alpha = self.add_weight(
            tuple(param_shape),
            self.alpha_initializer,
            name="alpha",
            regularizer=self.alpha_regularizer,
        )
        self.input_spec = InputSpec(
            ndim=ndim, axes={i + 1: n for i, n in enumerate(param_shape) if n != 1}
        )

    def call(self, inputs):
        return ops.prelu(inputs, self.alpha)

    def get_config(self):
        return {
            **super().get_config(),
            "alpha_initializer": initializers_module.serialize(self.alpha_initializer),
            "alpha_regularizer": regularizers_module.serialize(self.alpha_regularizer),
            "shared_axes": self.shared_axes,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        spec = config.get("alpha_initializer")
        config["alpha_initializer"] = (
            None if spec is None else initializers_module.deserialize(spec)
        )
        config["alpha_regularizer"] = regularizers_module.deserialize(
            config.get("alpha_regularizer")
        )
        return cls(**config)


class LeakyReLU(Layer):
    """``x`` for ``x > 0``, ``negative_slope · x`` otherwise.

    ``negative_slope`` defaults to 0.01, the default of ``ember.activations.leaky_relu`` and of
    PyTorch (Keras' layer defaults to 0.3): the layer and the function agree.

    Example:
        >>> ember.layers.LeakyReLU(0.1)(np.array([[-1.0, 2.0]])).numpy()
        array([[-0.1,  2. ]], dtype=float32)
    """

    _single_input = True
    supports_masking = True

    def __init__(self, negative_slope: float = 0.01, **kwargs):
        super().__init__(**kwargs)
        self.negative_slope = _finite(self.name, "negative_slope", negative_slope, 0.0)

    def call(self, inputs):
        return ops.leaky_relu(inputs, self.negative_slope)

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(Layer):
    """``x`` for ``x > 0``, ``alpha · (e^x − 1)`` otherwise.

    Example:
        >>> ember.layers.ELU(alpha=1.0)(np.array([[0.0, 1.0]])).numpy()
        array([[0., 1.]], dtype=float32)
    """

    _single_input = True
    supports_masking = True

    def __init__(self, alpha: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = _finite(self.name, "alpha", alpha)

    def call(self, inputs):
        return ops.elu(inputs, self.alpha)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


class ReLU(Layer):
    """Keras' ReLU layer: ``min(x, max_value)`` for ``x >= threshold``, else
    ``negative_slope · (x − threshold)``. The defaults give the plain ``max(x, 0)``.

    Example:
        >>> ember.layers.ReLU(max_value=6.0)(np.array([[-1.0, 8.0]])).numpy()
        array([[0., 6.]], dtype=float32)
    """

    _single_input = True
    supports_masking = True

    def __init__(
        self,
        max_value: float | None = None,
        negative_slope: float = 0.0,
        threshold: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.max_value = (
            None if max_value is None else _finite(self.name, "max_value", max_value, 0.0)
        )
        self.negative_slope = _finite(self.name, "negative_slope", negative_slope, 0.0)
        self.threshold = _finite(self.name, "threshold", threshold)

    def call(self, inputs):
        if self.threshold == 0.0:
            out = (
                ops.relu(inputs)
                if self.negative_slope == 0.0
                else ops.leaky_relu(inputs, self.negative_slope)
            )
        else:
            shifted = ops.sub(inputs, self.threshold)
            out = ops.where(
                inputs.data >= self.threshold, inputs, ops.mul(shifted, self.negative_slope)
            )
        if self.max_value is not None:
            out = ops.minimum(out, self.max_value)
        return out

    def get_config(self):
        return {
            **super().get_config(),
            "max_value": self.max_value,
            "negative_slope": self.negative_slope,
            "threshold": self.threshold,
        }


class Softmax(Layer):
    """Softmax over ``axis`` (default the last), stable for huge logits.

    Example:
        >>> ember.layers.Softmax()(np.array([[0.0, 0.0]])).numpy()
        array([[0.5, 0.5]], dtype=float32)
    """

    _single_input = True
    supports_masking = True

    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f'Layer "{self.name}": axis must be an integer, got {axis!r}')
        self.axis = int(axis)

    def call(self, inputs):
        if not -inputs.ndim <= self.axis < inputs.ndim:
            raise ValueError(
                f'Layer "{self.name}": axis {self.axis} is out of range for inputs of shape '
                f"{tuple(inputs.shape)}"
            )
        return ops.softmax(inputs, self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
