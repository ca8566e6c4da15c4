"""Elementwise math and the common activations, each forward beside its derivative."""

from __future__ import annotations

import numpy as np

from ember.backend import xp
from ember.ops._core import as_tensor, operands, takes_tensor, unbroadcast
from ember.tensor import Tensor


@takes_tensor
def exp(x: Tensor) -> Tensor:
    out = xp.exp(x.data)
    return Tensor._from_op(out, (x,), lambda g: (g * out,), "exp")


@takes_tensor
def log(x: Tensor) -> Tensor:
    """Natural log; ``log(0) = -inf`` with gradient ``+inf`` (NumPy and PyTorch semantics)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = xp.log(x.data)

    def backward(g):
        with np.errstate(divide="ignore", invalid="ignore"):
            return (g / x.data,)

    return Tensor._from_op(out, (x,), backward, "log")


@takes_tensor
def sqrt(x: Tensor) -> Tensor:
    """Square root; at 0 the value is 0 and the gradient ``+inf`` (as PyTorch)."""
    with np.errstate(invalid="ignore"):
        out = xp.sqrt(x.data)

    def backward(g):
        with np.errstate(divide="ignore", invalid="ignore"):
            return (g * 0.5 / out,)

    return Tensor._from_op(out, (x,), backward, "sqrt")


@takes_tensor
def abs(x: Tensor) -> Tensor:  # noqa: A001 (mirrors NumPy's name)
    """Absolute value; the gradient at exactly 0 is 0 (the zero subgradient, as PyTorch)."""
    return Tensor._from_op(xp.abs(x.data), (x,), lambda g: (g * xp.sign(x.data),), "abs")


@takes_tensor
def clip(x: Tensor, min=None, max=None) -> Tensor:  # noqa: A002
    """Clamp to ``[min, max]``; the gradient passes where ``min <= x <= max`` (PyTorch's rule)."""
    if min is None and max is None:
        raise ValueError("clip needs at least one of min and max")
    out = xp.clip(x.data, min, max).astype(x.dtype, copy=False)  # np.float64 bounds up-cast

    def backward(g):
        inside = xp.ones(x.data.shape, dtype=bool)
        if min is not None:
            inside &= x.data >= min
        if max is not None:
            inside &= x.data <= max
        return (g * inside,)

    return Tensor._from_op(out, (x,), backward, "clip")


def _tie_split(a: Tensor, b: Tensor, a_wins: np.ndarray, g: np.ndarray):
    """Route ``g`` to the winning operand; on a tie each gets half (PyTorch's maximum rule)."""
    ties = a.data == b.data
    share_a = (a_wins + 0.5 * ties).astype(g.dtype)  # bool + 0.5 would be float64
    ga = unbroadcast(g * share_a, a.shape) if a.requires_grad else None
    gb = unbroadcast(g * (1 - share_a), b.shape) if b.requires_grad else None
    return ga, gb


def maximum(a, b) -> Tensor:
    a, b = operands(a, b)
    out = xp.maximum(a.data, b.data)
    return Tensor._from_op(out, (a, b), lambda g: _tie_split(a, b, a.data > b.data, g), "maximum")


def minimum(a, b) -> Tensor:
    a, b = operands(a, b)
    out = xp.minimum(a.data, b.data)
    return Tensor._from_op(out, (a, b), lambda g: _tie_split(a, b, a.data < b.data, g), "minimum")


def where(condition, a, b) -> Tensor:
    """Choose ``a`` where ``condition`` holds, else ``b``; each gets gradient only where chosen.

    The gradient of the unchosen branch is zero, but that branch's own backward still runs: in
    ``where(x > 0, sqrt(x), 0)`` a negative ``x`` gives ``0 * nan = nan``, exactly as in PyTorch
    and JAX. Sanitise the branch's input instead: ``sqrt(where(x > 0, x, 1))``.
    """
    cond = condition.data if isinstance(condition, Tensor) else np.asarray(condition)
    cond = cond.astype(bool, copy=False)
    a, b = operands(a, b)
    out = xp.where(cond, a.data, b.data)

    def backward(g):
        zero = xp.zeros((), dtype=g.dtype)
        ga = unbroadcast(xp.where(cond, g, zero), a.shape) if a.requires_grad else None
        gb = unbroadcast(xp.where(cond, zero, g), b.shape) if b.requires_grad else None
        return ga, gb

    return Tensor._from_op(out, (a, b), backward, "where")


@takes_tensor
def cast(x: Tensor, dtype) -> Tensor:
    dtype = np.dtype(dtype)
    if x.dtype == dtype:
        return x
    source = x.dtype
    out = x.data.astype(dtype)
    if dtype.kind != "f":
        return Tensor(out)
    return Tensor._from_op(out, (x,), lambda g: (g.astype(source),), "cast")


# ------------------------------------------------------------------------------- activations
@takes_tensor
def relu(x: Tensor) -> Tensor:
    """max(x, 0); the gradient at exactly 0 is 0 (PyTorch's and micrograd's choice)."""
    out = xp.maximum(x.data, 0)
    return Tensor._from_op(out, (x,), lambda g: (g * (out > 0),), "relu")


def stable_sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x) without overflow: only ever exponentiates -|x|."""
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


@takes_tensor
def sigmoid(x: Tensor) -> Tensor:
    """The logistic function, computed without overflow at ±1000."""
    out = stable_sigmoid(x.data)
    result = Tensor._from_op(out, (x,), lambda g: (g * out * (1 - out),), "sigmoid")
    result._logits = ("sigmoid", x, -1)
    return result


@takes_tensor
def tanh(x: Tensor) -> Tensor:
    out = xp.tanh(x.data)
    return Tensor._from_op(out, (x,), lambda g: (g * (1 - out * out),), "tanh")


# ------------------------------------------------------------------------------- comparisons
def _compare(fn):
    def op(a, b) -> Tensor:
        a, b = operands(a, b)
        return Tensor(fn(a.data, b.data))

    op.__doc__ = f"Elementwise ``{fn.__name__}``; a boolean tensor with no gradient."
    return op


less = _compare(xp.less)
less_equal = _compare(xp.less_equal)
greater = _compare(xp.greater)
greater_equal = _compare(xp.greater_equal)
equal = _compare(xp.equal)
not_equal = _compare(xp.not_equal)

__all__ = [
    "exp",
    "log",
    "sqrt",
    "abs",
    "clip",
    "maximum",
    "minimum",
    "where",
    "cast",
    "relu",
    "sigmoid",
    "tanh",
    "less",
    "less_equal",
    "greater",
    "greater_equal",
    "equal",
    "not_equal",
    "as_tensor",
]
