"""Tensor creation: ``zeros``, ``ones``, ``full``, ``arange``, ``linspace``, ``eye``, the
``*_like`` variants and the random ``rand``/``randn``, with NumPy's, Keras' and PyTorch's names.

All are re-exported at the top level (``ember.zeros(2, 3)``). Conventions:

* A shape is a tuple (``ember.zeros((2, 3))``, NumPy and Keras) or separate integers
  (``ember.zeros(2, 3)``, PyTorch). ``dtype`` is always a keyword.
* Floating results are float32 unless ``dtype="float64"`` is asked for. ``arange`` with integer
  arguments and ``full`` with an integer fill value give int64 (as NumPy and PyTorch); a bool
  fill value gives bool.
* ``rand``/``randn`` draw from Ember's generator (:func:`ember.default_rng`), so
  :func:`ember.manual_seed` makes them reproducible; :mod:`ember.random` has the Keras-style
  functions with ``seed=``.

Example:
    >>> ember.zeros(2, 3).shape == ember.zeros((2, 3)).shape == (2, 3)
    True
    >>> ember.arange(4), ember.linspace(0, 1, 3)
    (tensor([0, 1, 2, 3], dtype=int64), tensor([0. , 0.5, 1. ]))
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ember.backend import DEFAULT_FLOAT, float_dtype
from ember.tensor import Tensor, default_rng

__all__ = [
    "zeros",
    "ones",
    "full",
    "arange",
    "linspace",
    "eye",
    "zeros_like",
    "ones_like",
    "full_like",
    "rand",
    "randn",
]

Shape = int | Sequence[int]
DType = str | type | np.dtype | None


# ------------------------------------------------------------------------------ validation
def as_shape(fn: str, shape, sizes: tuple = ()) -> tuple[int, ...]:
    """``shape`` (an int or a sequence of ints) plus PyTorch-style extra ``sizes`` → a tuple.

    Example:
        >>> from ember.creation import as_shape
        >>> as_shape("zeros", 2, (3,)), as_shape("zeros", (2, 3)), as_shape("zeros", ())
        ((2, 3), (2, 3), ())
        >>> as_shape("zeros", (2, -1))
        Traceback (most recent call last):
        ...
        ValueError: zeros: shape must not contain negative sizes, got (2, -1)
    """
    if sizes:
        if not _is_size(shape):
            raise TypeError(
                f"{fn}: give the shape either as one tuple, {fn}((2, 3)), or as separate "
                f"integers, {fn}(2, 3); got {shape!r} followed by {sizes!r}"
            )
        items = (shape, *sizes)
    elif isinstance(shape, (Sequence, np.ndarray)) and not isinstance(shape, (str, bytes)):
        items = tuple(shape)
    else:
        items = (shape,)
    for position, size in enumerate(items):
        if not _is_size(size):
            hint = " (pass dtype= as a keyword)" if isinstance(size, (str, type, np.dtype)) else ""
            raise ValueError(
                f"{fn}: shape must contain integers, got {size!r} at position {position} of "
                f"{items!r}{hint}"
            )
    shape = tuple(int(size) for size in items)
    if any(size < 0 for size in shape):
        raise ValueError(f"{fn}: shape must not contain negative sizes, got {shape}")
    return shape


def _is_size(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _count(fn: str, name: str, value) -> int:
    """A non-negative integer argument (``num``, ``n``, ``m``), or a ValueError naming it."""
    if not _is_size(value) or value < 0:
        raise ValueError(f"{fn}: {name} must be a non-negative integer, got {value!r}")
    return int(value)


def _number(fn: str, name: str, value) -> int | float | bool:
    """A real Python/NumPy scalar, or a TypeError naming the argument."""
    if isinstance(value, Tensor) and value.size == 1:
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    if not isinstance(value, (bool, int, float)):
        raise TypeError(f"{fn}: {name} must be a real number, got {value!r}")
    return value


def _dtype(fn: str, dtype: DType, default) -> np.dtype:
    """Resolve ``dtype``: bool, integer, float32 or float64; ``None`` gives ``default``."""
    if dtype is None:
        return np.dtype(default)
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if (
        resolved is None
        or resolved.kind not in "biuf"
        or (resolved.kind == "f" and resolved not in (np.float32, np.float64))
    ):
        raise TypeError(
            f"{fn}: dtype must be 'float32', 'float64', an integer dtype or 'bool', got {dtype!r}"
        )
    return resolved


def _make(array: np.ndarray, requires_grad: bool) -> Tensor:
    return Tensor(array, requires_grad=requires_grad)


# ------------------------------------------------------------------------------ constant fills
def zeros(shape: Shape, *sizes: int, dtype: DType = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros (float32 unless ``dtype`` says otherwise).

    Example:
        >>> ember.zeros(2, 3)
        tensor([[0., 0., 0.],
                [0., 0., 0.]])
        >>> ember.zeros((2,), dtype="int32")
        tensor([0, 0], dtype=int32)
    """
    shape = as_shape("zeros", shape, sizes)
    return _make(np.zeros(shape, _dtype("zeros", dtype, DEFAULT_FLOAT)), requires_grad)


def ones(shape: Shape, *sizes: int, dtype: DType = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones (float32 unless ``dtype`` says otherwise).

    Example:
        >>> w = ember.ones(3, requires_grad=True)
        >>> (w * 2).sum().backward(); w.grad
        array([2., 2., 2.], dtype=float32)
    """
    shape = as_shape("ones", shape, sizes)
    return _make(np.ones(shape, _dtype("ones", dtype, DEFAULT_FLOAT)), requires_grad)


def _fill_dtype(value) -> type:
    """The dtype a fill value implies: bool, int64 or the default float32."""
    if isinstance(value, bool):
        return np.bool_
    if isinstance(value, int):
        return np.int64
    return DEFAULT_FLOAT


def full(
    shape: Shape, fill_value: float, *, dtype: DType = None, requires_grad: bool = False
) -> Tensor:
    """A tensor of ``shape`` filled with ``fill_value``.

    Without ``dtype`` the fill value decides: a float gives float32, an int gives int64, a bool
    gives bool (NumPy's and PyTorch's rule, with Ember's float32).

    Example:
        >>> ember.full((2, 2), 0.5)
        tensor([[0.5, 0.5],
                [0.5, 0.5]])
        >>> ember.full(3, 7).dtype
        dtype('int64')
    """
    fill_value = _number("full", "fill_value", fill_value)
    shape = as_shape("full", shape)
    resolved = _dtype("full", dtype, _fill_dtype(fill_value))
    return _make(np.full(shape, fill_value, dtype=resolved), requires_grad)


# ------------------------------------------------------------------------------ ranges
def arange(
    start: float,
    stop: float | None = None,
    step: float = 1,
    *,
    dtype: DType = None,
    requires_grad: bool = False,
) -> Tensor:
    """Evenly spaced values in ``[start, stop)``; ``arange(n)`` is ``0, 1, …, n - 1``.

    Integer arguments give an int64 tensor (as NumPy and PyTorch); any float argument gives
    float32 (Ember's default float), or ``dtype``.

    Example:
        >>> ember.arange(5)
        tensor([0, 1, 2, 3, 4], dtype=int64)
        >>> ember.arange(0, 1, 0.25)
        tensor([0.  , 0.25, 0.5 , 0.75])
        >>> ember.arange(3, dtype="float64")
        tensor([0., 1., 2.], dtype=float64)
    """
    if stop is None:
        start, stop = 0, start
    values = {"start": start, "stop": stop, "step": step}
    for name, value in values.items():
        value = _number("arange", name, value)
        if isinstance(value, bool):
            raise TypeError(f"arange: {name} must be a real number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"arange: {name} must be finite, got {value!r}")
        values[name] = value
    if values["step"] == 0:
        raise ValueError("arange: step must not be 0")
    integral = all(isinstance(v, int) for v in values.values())
    resolved = _dtype("arange", dtype, np.int64 if integral else DEFAULT_FLOAT)
    array = np.arange(values["start"], values["stop"], values["step"])
    return _make(array.astype(resolved, copy=False), requires_grad)


def linspace(
    start: float,
    stop: float,
    num: int = 50,
    *,
    endpoint: bool = True,
    steps: int | None = None,
    dtype: DType = None,
    requires_grad: bool = False,
) -> Tensor:
    """``num`` evenly spaced values from ``start`` to ``stop`` (included unless
    ``endpoint=False``), float32 by default. ``steps=`` is PyTorch's name for ``num``.

    Computed in float64 and rounded once to the result's dtype, so the ends are exact.

    Example:
        >>> ember.linspace(0, 1, 5)
        tensor([0.  , 0.25, 0.5 , 0.75, 1.  ])
        >>> ember.linspace(-1, 1, steps=3, dtype="float64")
        tensor([-1.,  0.,  1.], dtype=float64)
    """
    if steps is not None:
        if num != 50:
            raise TypeError(
                f"linspace got num={num!r} and steps={steps!r}: they are two spellings of one "
                "argument (NumPy/Keras and PyTorch); pass only one of them"
            )
        num = steps
    num = _count("linspace", "num", num)
    bounds = []
    for name, value in (("start", start), ("stop", stop)):
        value = _number("linspace", name, value)
        if isinstance(value, bool) or not math.isfinite(value):
            raise ValueError(f"linspace: {name} must be a finite real number, got {value!r}")
        bounds.append(value)
    array = np.linspace(bounds[0], bounds[1], num, endpoint=endpoint, dtype=np.float64)
    return _make(array.astype(_dtype("linspace", dtype, DEFAULT_FLOAT)), requires_grad)


def eye(
    n: int,
    m: int | None = None,
    k: int = 0,
    *,
    dtype: DType = None,
    requires_grad: bool = False,
) -> Tensor:
    """An ``n × m`` matrix (``m = n`` by default) with ones on diagonal ``k`` (0: the main one).

    Example:
        >>> ember.eye(2)
        tensor([[1., 0.],
                [0., 1.]])
        >>> ember.eye(2, 3, k=1)
        tensor([[0., 1., 0.],
                [0., 0., 1.]])
    """
    n = _count("eye", "n", n)
    m = n if m is None else _count("eye", "m", m)
    if not _is_size(k):
        raise ValueError(f"eye: k must be an integer (the diagonal's offset), got {k!r}")
    return _make(np.eye(n, m, int(k), dtype=_dtype("eye", dtype, DEFAULT_FLOAT)), requires_grad)


# ------------------------------------------------------------------------------ *_like
def _like(fn: str, x, dtype: DType) -> tuple[tuple, np.dtype]:
    source = x.data if isinstance(x, Tensor) else Tensor(x).data
    return source.shape, _dtype(fn, dtype, source.dtype)


def zeros_like(x, *, dtype: DType = None, requires_grad: bool = False) -> Tensor:
    """Zeros with the shape and (unless ``dtype`` is given) the dtype of ``x``.

    ``x`` may be a tensor, an array or a list (a list of Python floats counts as float32).

    Example:
        >>> ember.zeros_like(ember.ones(2, 2, dtype="float64"))
        tensor([[0., 0.],
                [0., 0.]], dtype=float64)
    """
    shape, resolved = _like("zeros_like", x, dtype)
    return _make(np.zeros(shape, resolved), requires_grad)


def ones_like(x, *, dtype: DType = None, requires_grad: bool = False) -> Tensor:
    """Ones with the shape and (unless ``dtype`` is given) the dtype of ``x``.

    Example:
        >>> ember.ones_like([[1, 2, 3]])
        tensor([[1, 1, 1]], dtype=int64)
    """
    shape, resolved = _like("ones_like", x, dtype)
    return _make(np.ones(shape, resolved), requires_grad)


def full_like(x, fill_value: float, *, dtype: DType = None, requires_grad: bool = False) -> Tensor:
    """``fill_value`` with the shape and (unless ``dtype`` is given) the dtype of ``x``.

    The dtype is ``x``'s even when it cannot hold ``fill_value`` exactly (an integer ``x`` and
    ``2.5`` give 2, as NumPy and PyTorch); pass ``dtype=`` to choose.

    Example:
        >>> ember.full_like(ember.zeros(3), 2.5)
        tensor([2.5, 2.5, 2.5])
    """
    fill_value = _number("full_like", "fill_value", fill_value)
    shape, resolved = _like("full_like", x, dtype)
    return _make(np.full(shape, fill_value, dtype=resolved), requires_grad)


# ------------------------------------------------------------------------------ random
def rand(shape: Shape, *sizes: int, dtype: DType = None, requires_grad: bool = False) -> Tensor:
    """Uniform samples in ``[0, 1)`` from Ember's generator (seeded by ``ember.manual_seed``).

    Example:
        >>> ember.manual_seed(0); a = ember.rand(2, 3)
        >>> ember.manual_seed(0); b = ember.rand((2, 3))
        >>> bool((a == b).numpy().all()), a.dtype
        (True, dtype('float32'))
    """
    shape = as_shape("rand", shape, sizes)
    resolved = float_dtype(dtype)
    return _make(default_rng().random(shape, dtype=resolved), requires_grad)


def randn(shape: Shape, *sizes: int, dtype: DType = None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples (mean 0, standard deviation 1) from Ember's generator.

    Example:
        >>> x = ember.randn(10_000, dtype="float64")
        >>> round(float(x.numpy().mean()), 1), round(float(x.numpy().std()), 1)
        (0.0, 1.0)
    """
    shape = as_shape("randn", shape, sizes)
    resolved = float_dtype(dtype)
    return _make(default_rng().standard_normal(shape, dtype=resolved), requires_grad)
