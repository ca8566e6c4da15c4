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


def _finite(owner: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{owner}: {name} must be a real number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{owner}: {name} must be finite, got {value!r}")
    return float(value)


def _positive(owner: str, name: str, value) -> float:
    value = _finite(owner, name, value)
    if not value > 0:
        raise ValueError(f"{owner}: {name} must be a positive number, got {value!r}")
    return value


class Initializer:
    """Base class: ``initializer(shape, dtype="float32") -> np.ndarray``.

    Example:
        >>> class Halves(ember.initializers.Initializer):
        ...     def __call__(self, shape, dtype=None):
        ...         return np.full(shape, 0.5, dtype=dtype or "float32")
        >>> Halves()((2, 2))
        array([[0.5, 0.5],
               [0.5, 0.5]], dtype=float32)
        >>> layer = ember.layers.Dense(2, kernel_initializer=Halves())
        >>> layer.build((None, 3)); layer.kernel
        Parameter(name='kernel', shape=(3, 2), dtype=float32)
    """

    def __call__(self, shape, dtype=None) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config()})"


class Zeros(Initializer):
    """All zeros (the default for biases).

    Example:
        >>> ember.initializers.Zeros()((2, 3))
        array([[0., 0., 0.],
               [0., 0., 0.]], dtype=float32)
    """

    def __call__(self, shape, dtype=None):
        return np.zeros(shape, dtype=float_dtype(dtype))


class Ones(Initializer):
    """All ones.

    Example:
        >>> ember.initializers.Ones()((2,), dtype="float64")
        array([1., 1.])
    """

    def __call__(self, shape, dtype=None):
        return np.ones(shape, dtype=float_dtype(dtype))


class Constant(Initializer):
    """Every element equal to ``value``.

    Example:
        >>> ember.initializers.Constant(0.25)((2, 2))
        array([[0.25, 0.25],
               [0.25, 0.25]], dtype=float32)
    """

    def __init__(self, value: float = 0.0):
        self.value = _finite("Constant", "value", value)

    def __call__(self, shape, dtype=None):
        return np.full(shape, self.value, dtype=float_dtype(dtype))

    def get_config(self):
        return {"value": self.value}


class RandomNormal(Initializer):
    """N(mean, stddev²).

    Example:
        >>> ember.manual_seed(0)
        >>> w = ember.initializers.RandomNormal(stddev=0.01)((1000,))
        >>> round(float(w.std()), 3), w.dtype
        (0.01, dtype('float32'))
    """

    def __init__(self, mean: float = 0.0, stddev: float = 0.05):
        self.mean = _finite("RandomNormal", "mean", mean)
        self.stddev = _positive("RandomNormal", "stddev", stddev)

    def __call__(self, shape, dtype=None):
        dtype = float_dtype(dtype)
        return (default_rng().standard_normal(shape, dtype=dtype) * self.stddev + self.mean).astype(
            dtype, copy=False
        )

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev}


class RandomUniform(Initializer):
    """U(minval, maxval).

    Example:
        >>> ember.manual_seed(0)
        >>> w = ember.initializers.RandomUniform(-0.1, 0.1)((1000,))
        >>> bool(w.min() >= -0.1 and w.max() <= 0.1), w.dtype
        (True, dtype('float32'))
    """

    def __init__(self, minval: float = -0.05, maxval: float = 0.05):
        self.minval = _finite("RandomUniform", "minval", minval)
        self.maxval = _finite("RandomUniform", "maxval", maxval)
        if not self.minval < self.maxval:
            raise ValueError(
                f"RandomUniform: minval must be below maxval, got minval={minval!r}, "
                f"maxval={maxval!r}"
            )

    def __call__(self, shape, dtype=None):
        return (
            default_rng().uniform(self.minval, self.maxval, size=shape).astype(float_dtype(dtype))
        )

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval}


# Standard deviation of N(0, 1) truncated to [-2, 2]: dividing by it restores the intended
# variance after truncation (Keras' ``VarianceScaling`` correction).
TRUNCATED_STD = 0.87962566103423978


def truncated_standard_normal(shape) -> np.ndarray:
    """float64 draws of N(0, 1) truncated to ``[-2, 2]`` (Keras' 2σ cut), by rejection sampling:
    out-of-range values are redrawn, which keeps the truncated distribution exact."""
    values = default_rng().standard_normal(shape)
    bad = np.abs(values) > 2
    while bad.any():
        values[bad] = default_rng().standard_normal(int(bad.sum()))
        bad = np.abs(values) > 2
    return values


class TruncatedNormal(Initializer):
    """N(mean, stddev²) cut at ``mean ± 2·stddev`` (redrawn, as Keras), so the actual standard
    deviation is about ``0.88·stddev``.

    Example:
        >>> ember.initializers.TruncatedNormal(stddev=0.02)((3, 4)).shape
        (3, 4)
    """

    def __init__(self, mean: float = 0.0, stddev: float = 0.05):
        self.mean = float(mean)
        self.stddev = _positive("TruncatedNormal", "stddev", stddev)

    def __call__(self, shape, dtype=None):
        values = truncated_standard_normal(shape) * self.stddev + self.mean
        return values.astype(float_dtype(dtype))

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev}


class VarianceScaling(Initializer):
    """Keras' family behind Glorot, He and LeCun: variance ``scale / n`` with ``n`` = fan_in,
    fan_out or their average (``mode``), drawn from a truncated normal (divided by the truncated
    standard deviation so the variance is exact), an untruncated normal, or U(±√(3·scale/n)).

    Example:
        >>> init = ember.initializers.VarianceScaling(2.0, "fan_in", "uniform")  # He uniform
        >>> init
        VarianceScaling({'scale': 2.0, 'mode': 'fan_in', 'distribution': 'uniform'})
        >>> bool(abs(init((100, 10))).max() <= (6 / 100) ** 0.5)
        True
    """

    _MODES = ("fan_in", "fan_out", "fan_avg")
    _DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")

    def __init__(
        self, scale: float = 1.0, mode: str = "fan_in", distribution: str = "truncated_normal"
    ):
        self.scale = _positive(type(self).__name__, "scale", scale)
        if mode not in self._MODES:
            raise ValueError(f"VarianceScaling: mode must be one of {self._MODES}, got {mode!r}")
        if distribution == "normal":
            distribution = "truncated_normal"  # Keras' legacy spelling
        if distribution not in self._DISTRIBUTIONS:
            raise ValueError(
                f"VarianceScaling: distribution must be one of {self._DISTRIBUTIONS}, got "
                f"{distribution!r}"
            )
        self.mode, self.distribution = mode, distribution

    def __call__(self, shape, dtype=None):
        fan_in, fan_out = compute_fans(tuple(shape))
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, n)
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            values = default_rng().uniform(-limit, limit, size=shape)
        elif self.distribution == "truncated_normal":
            values = truncated_standard_normal(shape) * (math.sqrt(variance) / TRUNCATED_STD)
        else:
            values = default_rng().standard_normal(shape) * math.sqrt(variance)
        return values.astype(float_dtype(dtype))

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution}


class _Preset(VarianceScaling):
    """A named VarianceScaling with fixed arguments (its config is empty, as in Keras)."""

    _ARGS: tuple = ()

    def __init__(self):
        super().__init__(*self._ARGS)

    def get_config(self):
        return {}


class GlorotUniform(_Preset):
    """Glorot/Xavier uniform: U(±√(6 / (fan_in + fan_out))) — the Keras default for kernels.

    Example:
        >>> w = ember.initializers.GlorotUniform()((300, 100))
        >>> bool(abs(w).max() <= (6 / (300 + 100)) ** 0.5)
        True
    """

    _ARGS = (1.0, "fan_avg", "uniform")


class GlorotNormal(_Preset):
    """Glorot/Xavier normal: truncated normal with stddev √(2 / (fan_in + fan_out)) after Keras'
    truncation correction.

    Example:
        >>> ember.manual_seed(0)
        >>> w = ember.initializers.get("glorot_normal")((256, 128))
        >>> round(float(w.std()), 2)  # √(2 / 384) ≈ 0.072
        0.07
    """

    _ARGS = (1.0, "fan_avg", "truncated_normal")


class HeNormal(_Preset):
    """He normal: N(0, 2 / fan_in), truncated at 2σ like Keras; suited to ReLU layers.

    Example:
        >>> ember.manual_seed(0)
        >>> w = ember.initializers.HeNormal()((500, 200))
        >>> round(float(w.std()), 3)  # √(2 / 500) ≈ 0.063
        0.063
    """

    _ARGS = (2.0, "fan_in", "truncated_normal")


class HeUniform(_Preset):
    """He uniform: U(±√(6 / fan_in)); suited to ReLU layers.

    Example:
        >>> bool(ember.initializers.get("he_uniform")((100, 10)).max() <= 6 ** 0.5 / 10)
        True
    """

    _ARGS = (2.0, "fan_in", "uniform")


class LeCunNormal(_Preset):
    """LeCun normal: truncated normal with stddev √(1 / fan_in) (the initializer for SELU).

    Example:
        >>> ember.manual_seed(0)
        >>> round(float(ember.initializers.LeCunNormal()((400, 10)).std()), 2)  # √(1 / 400)
        0.05
    """

    _ARGS = (1.0, "fan_in", "truncated_normal")


class LeCunUniform(_Preset):
    """LeCun uniform: U(±√(3 / fan_in)).

    Example:
        >>> w = ember.initializers.LeCunUniform()((300, 10))
        >>> bool(abs(w).max() <= (3 / 300) ** 0.5)
        True
        >>> ember.initializers.LecunUniform is ember.initializers.LeCunUniform
        True
    """

    _ARGS = (1.0, "fan_in", "uniform")


# Keras' spellings of the class names.
LecunNormal, LecunUniform = LeCunNormal, LeCunUniform


class Orthogonal(Initializer):
    """A (semi-)orthogonal matrix times ``gain``, from the QR decomposition of a Gaussian matrix
    with the signs of R's diagonal folded in (uniform over orthogonal matrices; Keras' method).
    The shape is flattened to ``(prod(shape[:-1]), shape[-1])``: columns are orthonormal when
    there are at least as many rows, rows otherwise.

    Example:
        >>> w = ember.initializers.Orthogonal()((5, 3))
        >>> np.allclose(w.T @ w, np.eye(3), atol=1e-6)
        True
    """

    def __init__(self, gain: float = 1.0):
        self.gain = _finite("Orthogonal", "gain", gain)

    def __call__(self, shape, dtype=None):
        shape = tuple(shape)
        if len(shape) < 2:
            raise ValueError(f"Orthogonal needs a shape of at least 2 dimensions, got {shape}")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = default_rng().standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q = q * np.where(np.diag(r) < 0, -1.0, 1.0)
        if rows < cols:
            q = q.T
        return np.ascontiguousarray((self.gain * q).reshape(shape), dtype=float_dtype(dtype))

    def get_config(self):
        return {"gain": self.gain}


class Identity(Initializer):
    """``gain`` times the identity matrix (2-D shapes only; rectangular ones get ones on the
    main diagonal).

    Example:
        >>> ember.initializers.Identity(gain=2.0)((2, 3))
        array([[2., 0., 0.],
               [0., 2., 0.]], dtype=float32)
    """

    def __init__(self, gain: float = 1.0):
        self.gain = _finite("Identity", "gain", gain)

    def __call__(self, shape, dtype=None):
        shape = tuple(shape)
        if len(shape) != 2:
            raise ValueError(f"Identity needs a 2-D shape, got {shape}")
        return (self.gain * np.eye(*shape)).astype(float_dtype(dtype))

    def get_config(self):
        return {"gain": self.gain}


class Sparse(Initializer):
    """The course's sparse initialization: in each unit's incoming weights (one kernel column;
    the shape is flattened to ``(prod(shape[:-1]), shape[-1])``) exactly
    ``round(sparsity · fan_in)`` entries are zero, at random positions, and the rest are drawn
    from N(0, stddev²) — like ``torch.nn.init.sparse_`` (same default stddev), except that
    PyTorch zeroes ``ceil(sparsity · fan_in)`` entries where Ember rounds to the nearest count.

    Args:
        sparsity: fraction of zeros per unit, in ``[0, 1]``.
        stddev: standard deviation of the non-zero weights (> 0).

    Example:
        >>> w = ember.initializers.Sparse(sparsity=0.9)((100, 16))
        >>> (w == 0).sum(axis=0)  # 90 zeros in every column
        array([90, 90, ...])
    """

    def __init__(self, sparsity: float = 0.9, stddev: float = 0.01):
        sparsity = _finite("Sparse", "sparsity", sparsity)
        if not 0.0 <= sparsity <= 1.0:
            raise ValueError(f"Sparse: sparsity must be in [0, 1], got {sparsity!r}")
        self.sparsity = sparsity
        self.stddev = _positive("Sparse", "stddev", stddev)

    def __call__(self, shape, dtype=None):
        shape = tuple(shape)
        if len(shape) < 2:
            raise ValueError(f"Sparse needs a kernel shape (fan_in, units), got {shape}")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        zeros = round(self.sparsity * rows)
        values = default_rng().standard_normal((rows, cols)) * self.stddev
        # A random permutation of the rows of each column; its first `zeros` entries are zeroed.
        order = np.argsort(default_rng().random((rows, cols)), axis=0)
        values[order[:zeros], np.arange(cols)] = 0.0
        return values.reshape(shape).astype(float_dtype(dtype))

    def get_config(self):
        return {"sparsity": self.sparsity, "stddev": self.stddev}


_INITIALIZERS = {
    "zeros": Zeros,
    "ones": Ones,
    "constant": Constant,
    "random_normal": RandomNormal,
    "random_uniform": RandomUniform,
    "uniform": RandomUniform,  # Keras 3's short names (Embedding's default is "uniform")
    "normal": RandomNormal,
    "truncated_normal": TruncatedNormal,
    "variance_scaling": VarianceScaling,
    "glorot_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal,
    "he_normal": HeNormal,
    "he_uniform": HeUniform,
    "lecun_normal": LeCunNormal,
    "lecun_uniform": LeCunUniform,
    "orthogonal": Orthogonal,
    "identity": Identity,
    "sparse": Sparse,
}


def get(identifier) -> Initializer:
    """An initializer from a name (``"he_normal"``), a class, an instance or a
    ``fn(shape, dtype)``; names with hyper-parameters take their defaults.

    Example:
        >>> ember.initializers.get("he_normal")
        HeNormal({})
        >>> ember.initializers.get(ember.initializers.Constant(0.5))
        Constant({'value': 0.5})
    """
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        return lookup("initializer", identifier, _INITIALIZERS)()
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if callable(identifier):
        return identifier
    raise TypeError(f"initializer must be a name or an Initializer, got {identifier!r}")


def serialize(initializer) -> dict | None:
    """A built-in initializer's name and config; ``None`` for a custom one (saved weights make
    it unnecessary to re-run).

    Example:
        >>> ember.initializers.serialize(ember.initializers.Constant(0.5))
        {'name': 'constant', 'config': {'value': 0.5}}
        >>> ember.initializers.serialize(lambda shape, dtype=None: np.zeros(shape)) is None
        True
    """
    return _registry.serialize("initializer", initializer, _INITIALIZERS, strict=False)


def deserialize(spec, default: str = "glorot_uniform"):
    """Rebuild an initializer from :func:`serialize`'s spec; ``None`` gives ``default``.

    Example:
        >>> ember.initializers.deserialize({"name": "constant", "config": {"value": 0.5}})
        Constant({'value': 0.5})
        >>> ember.initializers.deserialize(None)
        GlorotUniform({})
    """
    if spec is None or isinstance(spec, str):
        return get(spec or default)
    return _registry.deserialize("initializer", spec, _INITIALIZERS)
