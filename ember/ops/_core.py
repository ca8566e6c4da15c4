"""Helpers every op uses: operand conversion and reducing broadcast gradients."""

from __future__ import annotations

import functools

import numpy as np

from ember import kernels
from ember.backend import DEFAULT_FLOAT, xp
from ember.tensor import Tensor


def as_tensor(value, like: Tensor | None = None) -> Tensor:
    """Wrap a non-tensor operand; a float ``like`` tensor imposes its dtype, so that a float64
    NumPy scalar or array never up-casts a float32 computation. Without ``like``, Python floats
    and lists become float32 (the default), NumPy arrays keep their dtype."""
    if isinstance(value, Tensor):
        return value
    array = np.asarray(value)
    if (
        like is None
        and array.dtype == np.float64
        and not isinstance(value, (np.ndarray, np.generic))
    ):
        # Python floats and lists default to float32, as ember.tensor([...]) does; NumPy float64
        # arrays keep their dtype (float64 on request)
        array = array.astype(DEFAULT_FLOAT)
    if like is not None and like.data.dtype.kind == "f" and array.dtype != like.data.dtype:
        if array.dtype.kind in "biuf":
            array = array.astype(like.data.dtype)
    return Tensor(array)


def operands(a, b) -> tuple[Tensor, Tensor]:
    """Both operands of a binary op as tensors; a non-tensor takes a float tensor's dtype."""
    if isinstance(a, Tensor):
        return a, as_tensor(b, a)
    if isinstance(b, Tensor):
        return as_tensor(a, b), b
    a = as_tensor(a)  # neither is a tensor: ops.add(np.ones(2), 1.0)
    return a, as_tensor(b, a)


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``grad`` over the axes along which an operand of ``shape`` was broadcast."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        i + extra for i, n in enumerate(shape) if n == 1 and grad.shape[i + extra] != 1
    )
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def normalize_axes(axis, ndim: int) -> tuple[int, ...]:
    """Axis spec (None, int, tuple, negative) → sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (int(axis),)
    result = []
    for a in axis:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimension(s)")
        result.append(a % ndim if ndim else 0)
    if len(set(result)) != len(result):
        raise ValueError(f"repeated axis in {axis}")
    return tuple(sorted(result))


def expand_reduced(grad: np.ndarray, shape: tuple, axes: tuple, keepdims: bool) -> np.ndarray:
    """Broadcast the gradient of a reduction back to the input's shape."""
    if not keepdims and axes:
        grad = xp.expand_dims(grad, axes)
    return xp.broadcast_to(grad, shape)


def takes_tensor(fn):
    """Let an op whose first argument is a tensor also take a NumPy array, list or number (as
    ``ember.exp(np.ones(3))``): it is wrapped by :func:`as_tensor` first."""

    @functools.wraps(fn)
    def wrapper(x, *args, **kwargs):
        return fn(x if isinstance(x, Tensor) else as_tensor(x), *args, **kwargs)

    return wrapper


def gemm(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``np.matmul(a, b, out=out)`` for the ops: with the fast kernels on, the products run on
    the kernels' threads (``ember.kernels.gemm``: one pool of threads for products and kernels),
    else NumPy's. Every matrix product of the ops goes through here, but for ``einsum``'s
    contractions (NumPy's path optimizer calls its BLAS itself)."""
    fast = kernels.get("gemm")
    if fast is None:
        return np.matmul(a, b, out=out)
    return fast.matmul(a, b, out=out)
