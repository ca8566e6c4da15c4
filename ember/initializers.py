"""Weight initializers, by name (``"glorot_uniform"``) or object; all draw from Ember's seeded
generator, so ``ember.manual_seed`` makes them reproducible.

Fans follow Keras: for a kernel of shape ``(..., fan_in, fan_out)`` the receptive field (the
leading axes) multiplies both fans.

Example:
    >>> ember.manual_seed(0)
    >>> w = ember.initializers.get("glorot_uniform")((784, 256))
    >>> w.shape, w.dtype
    ((784, 256), dtype('float32'))
"""

from __future__ import annotations

import math

import numpy as np

from ember import _registry
from ember._registry import lookup
from ember.backend import float_dtype
from ember.tensor import default_rng


def compute_fans(shape: tuple) -> tuple[int, int]:
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    """Base class: ``initializer(shape, dtype="float32") -> np.ndarray``."""

    def __call__(self, shape, dtype=None) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}


class Zeros(Initializer):
    """All zeros (the default for biases)."""

    def __call__(self, shape, dtype=None):
        return np.zeros(shape, dtype=float_dtype(dtype))


class Ones(Initializer):
    """All ones."""

    def __call__(self, shape, dtype=None):
        return np.ones(shape, dtype=float_dtype(dtype))


class Constant(Initializer):
    """Every element equal to ``value``. Example: ``Constant(0.25)``."""

    def __init__(self, value: float = 0.0):
        self.value = float(value)

    def __call__(self, shape, dtype=None):
        return np.full(shape, self.value, dtype=float_dtype(dtype))

    def get_config(self):
        return {"value": self.value}


class RandomNormal(Initializer):
    """N(mean, stddev²). Example: ``RandomNormal(stddev=0.01)``."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05):
        self.mean, self.stddev = float(mean), float(stddev)

    def __call__(self, shape, dtype=None):
        dtype = float_dtype(dtype)
        return (default_rng().standard_normal(shape, dtype=dtype) * self.stddev + self.mean).astype(
            dtype, copy=False
        )

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev}


class RandomUniform(Initializer):
    """U(minval, maxval)."""

    def __init__(self, minval: float = -0.05, maxval: float = 0.05):
        self.minval, self.maxval = float(minval), float(maxval)

    def __call__(self, shape, dtype=None):
        return (
            default_rng().uniform(self.minval, self.maxval, size=shape).astype(float_dtype(dtype))
        )

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval}


class GlorotUniform(Initializer):
    """Glorot/Xavier uniform: U(±√(6 / (fan_in + fan_out))) — the Keras default for kernels."""

    def __call__(self, shape, dtype=None):
        fan_in, fan_out = compute_fans(tuple(shape))
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        return default_rng().uniform(-limit, limit, size=shape).astype(float_dtype(dtype))


class HeNormal(Initializer):
    """He normal: N(0, 2 / fan_in), truncated at 2σ like Keras; suited to ReLU layers."""

    def __call__(self, shape, dtype=None):
        fan_in, _ = compute_fans(tuple(shape))
        std = math.sqrt(2.0 / fan_in) / 0.87962566103423978  # std of N(0,1) truncated at ±2
        values = default_rng().standard_normal(shape)
        bad = np.abs(values) > 2
        while bad.any():  # redraw the tails: rejection sampling keeps the distribution exact
            values[bad] = default_rng().standard_normal(int(bad.sum()))
            bad = np.abs(values) > 2
        return (values * std).astype(float_dtype(dtype))


_INITIALIZERS = {
    "zeros": Zeros,
    "ones": Ones,
    "constant": Constant,
    "random_normal": RandomNormal,
    "random_uniform": RandomUniform,
    "glorot_uniform": GlorotUniform,
    "he_normal": HeNormal,
}


def get(identifier) -> Initializer:
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        return lookup("initializer", identifier, _INITIALIZERS)()
    if callable(identifier):
        return identifier
    raise TypeError(f"initializer must be a name or an Initializer, got {identifier!r}")


def serialize(initializer) -> dict | None:
    """A built-in initializer's name and config; ``None`` for a custom one (saved weights make
    it unnecessary to re-run)."""
    return _registry.serialize("initializer", initializer, _INITIALIZERS, strict=False)


def deserialize(spec, default: str = "glorot_uniform"):
    if spec is None or isinstance(spec, str):
        return get(spec or default)
    return _registry.deserialize("initializer", spec, _INITIALIZERS)
