"""Elementwise math and the common activations, each forward beside its derivative."""

from __future__ import annotations

import numpy as np

from ember.backend import DEFAULT_FLOAT, xp
from ember.ops._core import as_tensor, operands, takes_tensor, unbroadcast
from ember.ops.arithmetic import power
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
    result._producer = ("sigmoid", x, -1)
    return result


@takes_tensor
def tanh(x: Tensor) -> Tensor:
    out = xp.tanh(x.data)
    return Tensor._from_op(out, (x,), lambda g: (g * (1 - out * out),), "tanh")


# ------------------------------------------------------------------ more math (PyTorch/Keras names)
def _float_data(x: Tensor) -> np.ndarray:
    """The data of ``x`` as floats: integer and bool inputs compute in the default float32."""
    return x.data if x.data.dtype.kind == "f" else x.data.astype(DEFAULT_FLOAT)


@takes_tensor
def square(x: Tensor) -> Tensor:
    """``x * x``, elementwise; the derivative is ``2x``. Integer tensors stay integer.

    Example:
        >>> x = ember.tensor([-1.0, 3.0], requires_grad=True)
        >>> y = ember.square(x)
        >>> y
        tensor([1., 9.], grad_fn=square)
        >>> y.sum().backward(); x.grad
        array([-2.,  6.], dtype=float32)
    """
    data = x.data
    return Tensor._from_op(data * data, (x,), lambda g: (g * (2 * data),), "square")


def pow(base, exponent) -> Tensor:  # noqa: A001 (PyTorch's name)
    """PyTorch's and Keras' name for :func:`power`: ``base ** exponent``, elementwise.

    Example:
        >>> ember.pow(ember.tensor([1.0, 2.0, 3.0]), 2)
        tensor([1., 4., 9.])
        >>> ember.tensor([4.0]).pow(0.5)
        tensor([2.])
    """
    return power(base, exponent)


@takes_tensor
def sin(x: Tensor) -> Tensor:
    """Sine (radians); the derivative is ``cos(x)``.

    Example:
        >>> x = ember.tensor([0.0, np.pi], requires_grad=True)
        >>> ember.sin(x).sum().backward()
        >>> x.grad
        array([ 1., -1.], dtype=float32)
    """
    data = _float_data(x)
    return Tensor._from_op(xp.sin(data), (x,), lambda g: (g * xp.cos(data),), "sin")


@takes_tensor
def cos(x: Tensor) -> Tensor:
    """Cosine (radians); the derivative is ``-sin(x)``.

    Example:
        >>> x = ember.tensor([np.pi / 2, -np.pi / 2], requires_grad=True)
        >>> ember.cos(x).sum().backward()
        >>> x.grad
        array([-1.,  1.], dtype=float32)
    """
    data = _float_data(x)
    return Tensor._from_op(xp.cos(data), (x,), lambda g: (-g * xp.sin(data),), "cos")


@takes_tensor
def tan(x: Tensor) -> Tensor:
    """Tangent (radians); the derivative is ``1 + tan(x)²``.

    Example:
        >>> x = ember.tensor([0.0, np.pi / 4], requires_grad=True)
        >>> ember.tan(x).sum().backward()
        >>> np.round(x.grad, 5)
        array([1., 2.], dtype=float32)
    """
    out = xp.tan(_float_data(x))
    return Tensor._from_op(out, (x,), lambda g: (g * (1 + out * out),), "tan")


@takes_tensor
def log1p(x: Tensor) -> Tensor:
    """``log(1 + x)``, accurate for tiny ``x`` (where ``log(1 + x)`` would round to 0); the
    derivative is ``1 / (1 + x)``. ``log1p(-1) = -inf``, as in NumPy and PyTorch.

    Example:
        >>> ember.log1p(ember.tensor([1e-10], dtype="float64")).item()   # 1e-10 - 5e-21
        9.999999999500001e-11
        >>> ember.log(1 + ember.tensor([1e-10], dtype="float64")).item()  # 1 + x rounds first
        1.000000082690371e-10
    """
    data = _float_data(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = xp.log1p(data)

    def backward(g):
        with np.errstate(divide="ignore", invalid="ignore"):
            return (g / (1 + data),)

    return Tensor._from_op(out, (x,), backward, "log1p")


@takes_tensor
def expm1(x: Tensor) -> Tensor:
    """``exp(x) - 1``, accurate for tiny ``x``; the derivative is ``exp(x)``.

    Example:
        >>> ember.expm1(ember.tensor([1e-10], dtype="float64")).item()
        1.00000000005e-10
    """
    out = xp.expm1(_float_data(x))
    return Tensor._from_op(out, (x,), lambda g: (g * (out + 1),), "expm1")


@takes_tensor
def reciprocal(x: Tensor) -> Tensor:
    """``1 / x``; the derivative is ``-1 / x²``. ``1 / 0 = inf`` (no warning), as in PyTorch.

    Example:
        >>> x = ember.tensor([2.0, -4.0], requires_grad=True)
        >>> ember.reciprocal(x)
        tensor([ 0.5 , -0.25], grad_fn=reciprocal)
        >>> ember.reciprocal(x).sum().backward(); x.grad
        array([-0.25  , -0.0625], dtype=float32)
    """
    with np.errstate(divide="ignore"):
        out = 1 / _float_data(x)
    return Tensor._from_op(out, (x,), lambda g: (-g * out * out,), "reciprocal")


@takes_tensor
def clone(x: Tensor) -> Tensor:
    """A copy of ``x`` that stays in the graph: the gradient flows back to ``x`` unchanged
    (``detach()`` is the copy that leaves the graph). Writing into the copy never changes ``x``.

    Example:
        >>> x = ember.tensor([1.0, 2.0], requires_grad=True)
        >>> y = x.clone()
        >>> (y * 3).sum().backward(); x.grad
        array([3., 3.], dtype=float32)
        >>> z = ember.tensor([1.0, 2.0]); c = z.clone(); c[0] = 5.0; z
        tensor([1., 2.])
    """
    return Tensor._from_op(x.data.copy(), (x,), lambda g: (g,), "clone")


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
    "square",
    "pow",
    "sin",
    "cos",
    "tan",
    "log1p",
    "expm1",
    "reciprocal",
    "clone",
    "less",
    "less_equal",
    "greater",
    "greater_equal",
    "equal",
    "not_equal",
    "as_tensor",
]
