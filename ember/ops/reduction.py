"""Reductions over any axes, with ``keepdims``; the backward broadcasts back to the input shape."""

from __future__ import annotations

import builtins

from ember.backend import xp
from ember.ops._core import expand_reduced, normalize_axes, takes_tensor
from ember.tensor import Tensor


@takes_tensor
def sum(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001
    axes = normalize_axes(axis, x.ndim)
    out = xp.sum(x.data, axis=axes, keepdims=keepdims)
    shape = x.shape
    return Tensor._from_op(
        xp.asarray(out), (x,), lambda g: (expand_reduced(g, shape, axes, keepdims),), "sum"
    )


@takes_tensor
def mean(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """Arithmetic mean. The mean of an empty tensor is NaN (NumPy warns), as in PyTorch."""
    axes = normalize_axes(axis, x.ndim)
    out = xp.mean(x.data, axis=axes, keepdims=keepdims)
    count = 1
    for a in axes:
        count *= x.shape[a]
    shape = x.shape

    def backward(g):
        # builtins.max: this module's own max() shadows the builtin
        return (expand_reduced(g / builtins.max(count, 1), shape, axes, keepdims),)

    return Tensor._from_op(xp.asarray(out, dtype=x.dtype), (x,), backward, "mean")


def _extremum(x: Tensor, axis, keepdims: bool, fn, name: str) -> Tensor:
    if x.size == 0:
        raise ValueError(f"{name}() of an empty tensor (shape {x.shape}) has no value")
    axes = normalize_axes(axis, x.ndim)
    out = fn(x.data, axis=axes, keepdims=True)

    def backward(g):
        # Ties share the gradient evenly, so it always sums to the upstream value (torch.amax).
        winners = x.data == out
        count = winners.sum(axis=axes, keepdims=True).astype(g.dtype)  # int count would up-cast
        return (expand_reduced(g, x.shape, axes, keepdims) * winners / count,)

    result = out if keepdims else out.reshape([n for i, n in enumerate(x.shape) if i not in axes])
    return Tensor._from_op(xp.asarray(result), (x,), backward, name)


@takes_tensor
def max(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Maximum over ``axis``; tied maxima split the gradient evenly (it sums to 1)."""
    return _extremum(x, axis, keepdims, xp.max, "max")


@takes_tensor
def min(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Minimum over ``axis``; tied minima split the gradient evenly (it sums to 1)."""
    return _extremum(x, axis, keepdims, xp.min, "min")


@takes_tensor
def var(x: Tensor, axis=None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    """Variance (biased by default, ``ddof=1`` for the unbiased estimator)."""
    axes = normalize_axes(axis, x.ndim)
    centered = x.data - x.data.mean(axis=axes, keepdims=True)
    count = 1
    for a in axes:
        count *= x.shape[a]
    out = (centered * centered).sum(axis=axes, keepdims=keepdims) / (count - ddof)

    def backward(g):
        return (expand_reduced(g, x.shape, axes, keepdims) * centered * (2 / (count - ddof)),)

    return Tensor._from_op(xp.asarray(out, dtype=x.dtype), (x,), backward, "var")
