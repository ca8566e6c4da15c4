"""Random tensors with Keras' ``keras.random`` names (and PyTorch's ``randint`` spelling).

Every function draws from Ember's generator (:func:`ember.default_rng`), so
``ember.manual_seed(n)`` (or its alias here, :func:`seed`) makes a run reproducible, and
successive calls give different numbers. With ``seed=<int>`` a function draws from a private
generator built from that seed instead: the result depends only on the seed (the same seed gives
the same numbers on every call, as Keras' integer seeds) and Ember's generator does not advance,
so weight initialisation, shuffling and dropout are unaffected. ``seed=`` also takes a
``np.random.Generator``, which is used (and advanced) as given.

Results are float32 unless ``dtype="float64"`` (``randint``: int32 unless another integer dtype).

Example:
    >>> ember.random.seed(0); a = ember.random.normal((2, 3))
    >>> ember.random.seed(0); b = ember.random.normal((2, 3))
    >>> bool((a == b).numpy().all()), a.dtype
    (True, dtype('float32'))
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ember import ops
from ember.backend import float_dtype
from ember.creation import Shape, as_shape
from ember.tensor import Tensor, default_rng, manual_seed

__all__ = [
    "normal",
    "uniform",
    "randint",
    "shuffle",
    "dropout",
    "seed",
    "manual_seed",
    "SeedGenerator",
]


class SeedGenerator:
    """A stream of random numbers of its own (Keras 3's ``keras.random.SeedGenerator``): pass it
    as ``seed=`` and each call draws fresh numbers from it, independently of Ember's generator.

    Example:
        >>> gen = ember.random.SeedGenerator(1337)
        >>> a = ember.random.normal((2,), seed=gen); b = ember.random.normal((2,), seed=gen)
        >>> bool((a == b).numpy().all())      # successive draws differ
        False
        >>> again = ember.random.SeedGenerator(1337)
        >>> bool((ember.random.normal((2,), seed=again) == a).numpy().all())  # reproducible
        True
    """

    def __init__(self, seed: int | None = None):
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0
        ):
            raise ValueError(f"SeedGenerator: seed must be a non-negative integer, got {seed!r}")
        initial = int(default_rng().integers(2**63)) if seed is None else int(seed)
        self.generator = np.random.default_rng(initial)

    def __repr__(self) -> str:
        return "SeedGenerator()"


Seed = int | np.random.Generator | SeedGenerator | None


def seed(value: int) -> None:
    """Seed Ember's generator: the same as :func:`ember.manual_seed`.

    Example:
        >>> ember.random.seed(42); a = ember.random.uniform((3,))
        >>> ember.manual_seed(42); b = ember.random.uniform((3,))
        >>> bool((a == b).numpy().all())
        True
    """
    manual_seed(value)


def _generator(fn: str, seed: Seed) -> np.random.Generator:
    """Ember's generator, or a private one for ``seed=`` (an int or a Generator)."""
    if seed is None:
        return default_rng()
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, SeedGenerator):
        return seed.generator
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(
            f"{fn}: seed must be a non-negative integer, a np.random.Generator or None (Ember's "
            f"generator), got {seed!r}"
        )
    return np.random.default_rng(int(seed))


def _real(fn: str, name: str, value) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"{fn}: {name} must be a real number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{fn}: {name} must be finite, got {value!r}")
    return float(value)


def normal(
    shape: Shape,
    mean: float = 0.0,
    stddev: float = 1.0,
    dtype: str | None = None,
    seed: Seed = None,
) -> Tensor:
    """Samples from the normal distribution with ``mean`` and standard deviation ``stddev``.

    Example:
        >>> x = ember.random.normal((10_000,), mean=2.0, stddev=0.5, dtype="float64")
        >>> round(float(x.numpy().mean()), 1), round(float(x.numpy().std()), 1)
        (2.0, 0.5)
        >>> a = ember.random.normal((3,), seed=7); b = ember.random.normal((3,), seed=7)
        >>> bool((a == b).numpy().all())
        True
    """
    shape = as_shape("normal", shape)
    mean = _real("normal", "mean", mean)
    stddev = _real("normal", "stddev", stddev)
    if stddev < 0:
        raise ValueError(f"normal: stddev must be >= 0, got {stddev}")
    resolved = float_dtype(dtype)
    draws = _generator("normal", seed).standard_normal(shape, dtype=resolved)
    return Tensor((draws * resolved(stddev) + resolved(mean)).astype(resolved, copy=False))


def uniform(
    shape: Shape,
    minval: float = 0.0,
    maxval: float = 1.0,
    dtype: str | None = None,
    seed: Seed = None,
) -> Tensor:
    """Samples drawn uniformly from ``[minval, maxval)`` (``maxval`` itself never occurs, also
    after rounding to float32).

    Example:
        >>> x = ember.random.uniform((1000,), minval=-1.0, maxval=1.0)
        >>> bool(x.numpy().min() >= -1.0), bool(x.numpy().max() < 1.0), x.dtype
        (True, True, dtype('float32'))
    """
    shape = as_shape("uniform", shape)
    low = _real("uniform", "minval", minval)
    high = _real("uniform", "maxval", maxval)
    if not low < high:
        raise ValueError(f"uniform: minval must be < maxval, got minval={low}, maxval={high}")
    resolved = float_dtype(dtype)
    unit = _generator("uniform", seed).random(shape)  # float64: one rounding, at the end
    out = (low + (high - low) * unit).astype(resolved)
    # float32 rounding can land exactly on maxval: move those onto the largest value below it
    below = np.nextafter(resolved(high), resolved(low))
    return Tensor(np.minimum(out, below).astype(resolved, copy=False))


def _is_shape(value) -> bool:
    return isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, (str, bytes))


def randint(
    *args: int | Sequence[int],
    shape: Sequence[int] | None = None,
    minval: int | None = None,
    maxval: int | None = None,
    size: Sequence[int] | None = None,
    low: int | None = None,
    high: int | None = None,
    dtype: str = "int32",
    seed: Seed = None,
) -> Tensor:
    """Random integers in ``[minval, maxval)``, in Keras' or in PyTorch's spelling.

    * Keras: ``randint(shape, minval, maxval, dtype="int32", seed=None)``;
    * PyTorch: ``randint(high, size)`` (from 0) or ``randint(low, high, size)``.

    The rule that tells them apart: the shape must be a tuple or list (never a bare int). When
    the first positional argument is one, or ``shape=``/``minval=``/``maxval=`` is given, it is
    Keras' spelling; otherwise the shape is the last positional argument or ``size=``
    (PyTorch's). Mixing the two families of keywords raises ``TypeError``. The dtype is int32 by
    default in both spellings (Keras' default; PyTorch's is int64: pass ``dtype="int64"``).

    Example:
        >>> x = ember.random.randint((2, 3), 0, 10)          # Keras
        >>> x.shape, x.dtype, bool(((x.numpy() >= 0) & (x.numpy() < 10)).all())
        ((2, 3), dtype('int32'), True)
        >>> ember.random.randint(5, (4,)).shape              # PyTorch: high, size
        (4,)
        >>> int(ember.random.randint(3, 4, (6,)).numpy().max())   # PyTorch: low, high, size
        3
    """
    keras = {"shape": shape, "minval": minval, "maxval": maxval}
    keras = {name: value for name, value in keras.items() if value is not None}
    pytorch = {"size": size, "low": low, "high": high}
    pytorch = {name: value for name, value in pytorch.items() if value is not None}
    if keras and pytorch:
        raise TypeError(
            f"randint got Keras' keywords {sorted(keras)} and PyTorch's {sorted(pytorch)}; use "
            "randint(shape, minval, maxval) or randint(low, high, size)"
        )
    if keras or (args and _is_shape(args[0])):
        bounds = _bind("randint", ("shape", "minval", "maxval"), args, keras)
        missing = [name for name in ("shape", "minval", "maxval") if name not in bounds]
        if missing:
            raise TypeError(
                f"randint(shape, minval, maxval) is missing {', '.join(missing)}; Keras' "
                "spelling needs all three, e.g. randint((2, 3), 0, 10)"
            )
        shape, low, high = bounds["shape"], bounds["minval"], bounds["maxval"]
    else:
        values = list(args)
        if "size" not in pytorch:
            if not values or not _is_shape(values[-1]):
                raise TypeError(
                    "randint needs a shape as a tuple or list: randint(shape, minval, maxval) "
                    f"(Keras) or randint(low, high, size) (PyTorch); got arguments {args!r}"
                )
            pytorch["size"] = values.pop()
        names = ("low", "high") if len(values) >= 2 or "high" in pytorch else ("high",)
        bounds = _bind("randint", names, values, pytorch)
        if "high" not in bounds:
            raise TypeError("randint(low, high, size) is missing high (the exclusive upper bound)")
        shape, low, high = bounds["size"], bounds.get("low", 0), bounds["high"]
    shape = as_shape("randint", shape)
    for name, value in (("minval", low), ("maxval", high)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"randint: {name} must be an integer, got {value!r}")
    if not low < high:
        raise ValueError(f"randint: minval must be < maxval, got minval={low}, maxval={high}")
    resolved = np.dtype(dtype)
    if resolved.kind not in "iu":
        raise TypeError(f"randint: dtype must be an integer dtype such as 'int32', got {dtype!r}")
    generator = _generator("randint", seed)
    return Tensor(generator.integers(int(low), int(high), size=shape, dtype=resolved))


def _bind(fn: str, names: tuple, positional: Sequence, keywords: dict) -> dict:
    """Assign positional values to ``names`` in order, refusing duplicates and extras."""
    if len(positional) > len(names):
        raise TypeError(
            f"{fn} takes at most {len(names)} positional values ({', '.join(names)}) here, got "
            f"{len(positional)}: {tuple(positional)!r}"
        )
    bound = dict(keywords)
    for name, value in zip(names, positional):
        if name in bound:
            raise TypeError(f"{fn} got {name} both by position and as a keyword")
        bound[name] = value
    return bound


def shuffle(x, axis: int = 0, seed: Seed = None) -> Tensor:
    """``x`` with its entries along ``axis`` in a random order (Keras' ``random.shuffle``).

    The result stays in the graph: the gradient flows back to the original positions.

    Example:
        >>> x = ember.arange(6).reshape(3, 2)
        >>> y = ember.random.shuffle(x, seed=1)
        >>> sorted(map(tuple, y.tolist())) == sorted(map(tuple, x.tolist()))
        True
    """
    if not isinstance(x, Tensor):
        x = ops.as_tensor(x)
    if x.ndim == 0:
        raise ValueError("shuffle: x must have at least one dimension, got a 0-d tensor")
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"shuffle: axis must be an integer, got {axis!r}")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"shuffle: axis {axis} is out of range for a {x.ndim}-d tensor")
    order = _generator("shuffle", seed).permutation(x.shape[axis])
    index = (slice(None),) * (int(axis) % x.ndim) + (order,)
    return ops.getitem(x, index)


def dropout(inputs, rate: float, noise_shape=None, seed: Seed = None) -> Tensor:
    """Inverted dropout (``keras.random.dropout``): each element is zeroed with probability
    ``rate`` and the rest scaled by ``1 / (1 - rate)``; the gradient flows through the kept ones.
    ``noise_shape`` (broadcast against the input) shares one decision along axes of size 1.

    Example:
        >>> x = ember.ones((2, 4))
        >>> y = ember.random.dropout(x, rate=0.5, seed=0)
        >>> sorted(set(y.numpy().ravel().tolist())) in ([0.0, 2.0], [0.0], [2.0])
        True
    """
    x = inputs if isinstance(inputs, Tensor) else ops.as_tensor(inputs)
    if (
        isinstance(rate, bool)
        or not isinstance(rate, (int, float, np.floating))
        or not (0.0 <= rate < 1.0)
    ):
        raise ValueError(f"dropout: rate must be a number in [0, 1), got {rate!r}")
    if rate == 0.0:
        return x
    shape = (
        x.shape
        if noise_shape is None
        else tuple(x.shape[i] if s is None else int(s) for i, s in enumerate(noise_shape))
    )
    keep = _generator("dropout", seed).random(shape) >= rate
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
    return x * (keep.astype(dtype) * dtype.type(1.0 / (1.0 - rate)))
