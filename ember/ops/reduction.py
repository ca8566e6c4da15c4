"""Reductions over any axes, with ``keepdims``; the backward broadcasts back to the input shape.

Every reduction also accepts PyTorch's spellings ``dim=`` and ``keepdim=`` (keyword only) for
``axis=`` and ``keepdims=``: ``ember.mean(x, dim=1, keepdim=True)`` is ``ember.mean(x, axis=1,
keepdims=True)``. Giving both spellings of one argument (``axis`` other than None together with
``dim``, or ``keepdims=True`` together with ``keepdim``) raises ``TypeError``.
"""

from __future__ import annotations

import builtins

from ember.backend import xp
from ember.ops._core import expand_reduced, normalize_axes, takes_tensor
from ember.tensor import Tensor


def torch_names(op: str, axis, keepdims, dim, keepdim) -> tuple:
    """Resolve PyTorch's ``dim``/``keepdim`` into ``axis``/``keepdims``, refusing both spellings.

    Example:
        >>> from ember.ops.reduction import torch_names
        >>> torch_names("sum", None, False, 1, True)
        (1, True)
        >>> torch_names("sum", 0, False, 1, None)
        Traceback (most recent call last):
        ...
        TypeError: sum() got axis=0 and dim=1: they are two spellings of one argument ...
    """
    if dim is not None:
        if axis is not None:
            raise TypeError(
                f"{op}() got axis={axis!r} and dim={dim!r}: they are two spellings of one "
                "argument (NumPy/Keras and PyTorch); pass only one of them"
            )
        axis = dim
    if keepdim is not None:
        if keepdims:
            raise TypeError(
                f"{op}() got keepdims={keepdims!r} and keepdim={keepdim!r}: they are two "
                "spellings of one argument (NumPy/Keras and PyTorch); pass only one of them"
            )
        keepdims = keepdim
    return axis, bool(keepdims)


@takes_tensor
def sum(  # noqa: A001
    x: Tensor, axis=None, keepdims: bool = False, *, dim=None, keepdim: bool | None = None
) -> Tensor:
    """Sum over ``axis`` (all axes by default); ``dim``/``keepdim`` are PyTorch's spellings.

    Example:
        >>> x = ember.tensor([[1.0, 2.0], [3.0, 4.0]])
        >>> ember.sum(x, axis=0)
        tensor([4., 6.])
        >>> ember.sum(x, dim=1, keepdim=True)
        tensor([[3.],
                [7.]])
    """
    if dim is not None or keepdim is not None:
        axis, keepdims = torch_names("sum", axis, keepdims, dim, keepdim)
    axes = normalize_axes(axis, x.ndim)
    out = xp.sum(x.data, axis=axes, keepdims=keepdims)
    shape = x.shape
    return Tensor._from_op(
        xp.asarray(out), (x,), lambda g: (expand_reduced(g, shape, axes, keepdims),), "sum"
    )


@takes_tensor
def mean(
    x: Tensor, axis=None, keepdims: bool = False, *, dim=None, keepdim: bool | None = None
) -> Tensor:
    """Arithmetic mean. The mean of an empty tensor is NaN (NumPy warns), as in PyTorch.

    Example:
        >>> x = ember.tensor([[1.0, 2.0], [3.0, 4.0]])
        >>> ember.mean(x)
        tensor(2.5)
        >>> ember.mean(x, dim=0)
        tensor([2., 3.])
    """
    if dim is not None or keepdim is not None:
        axis, keepdims = torch_names("mean", axis, keepdims, dim, keepdim)
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
    axes = normalize_axes(axis, x.ndim)
    if any(x.shape[a] == 0 for a in axes):
        # Reducing over an empty axis has no value; an empty kept axis (zero samples) is fine.
        raise ValueError(
            f"{name}() over axes {axes} of a tensor of shape {x.shape} reduces an empty axis "
            "and has no value"
        )
    out = fn(x.data, axis=axes, keepdims=True)

    def backward(g):
        # Ties share the gradient evenly, so it always sums to the upstream value (torch.amax).
        winners = x.data == out
        count = winners.sum(axis=axes, keepdims=True).astype(g.dtype)  # int count would up-cast
        return (expand_reduced(g, x.shape, axes, keepdims) * winners / count,)

    result = out if keepdims else out.reshape([n for i, n in enumerate(x.shape) if i not in axes])
    return Tensor._from_op(xp.asarray(result), (x,), backward, name)


@takes_tensor
def max(  # noqa: A001
    x: Tensor, axis=None, keepdims: bool = False, *, dim=None, keepdim: bool | None = None
) -> Tensor:
    """Maximum over ``axis``; tied maxima split the gradient evenly (it sums to 1).

    Only the values are returned (``torch.amax``'s semantics, also with ``dim=``): use
    ``x.argmax(axis)`` for the positions.

    Example:
        >>> ember.max(ember.tensor([[1.0, 2.0], [3.0, 4.0]]), dim=1)
        tensor([2., 4.])
    """
    if dim is not None or keepdim is not None:
        axis, keepdims = torch_names("max", axis, keepdims, dim, keepdim)
    return _extremum(x, axis, keepdims, xp.max, "max")


@takes_tensor
def min(  # noqa: A001
    x: Tensor, axis=None, keepdims: bool = False, *, dim=None, keepdim: bool | None = None
) -> Tensor:
    """Minimum over ``axis``; tied minima split the gradient evenly (it sums to 1).

    Only the values are returned (``torch.amin``'s semantics, also with ``dim=``): use
    ``x.argmin(axis)`` for the positions.

    Example:
        >>> ember.min(ember.tensor([[1.0, 2.0], [3.0, 4.0]]), dim=1)
        tensor([1., 3.])
    """
    if dim is not None or keepdim is not None:
        axis, keepdims = torch_names("min", axis, keepdims, dim, keepdim)
    return _extremum(x, axis, keepdims, xp.min, "min")


@takes_tensor
def var(
    x: Tensor,
    axis=None,
    keepdims: bool = False,
    ddof: int = 0,
    *,
    dim=None,
    keepdim: bool | None = None,
) -> Tensor:
    """Variance (biased by default, ``ddof=1`` for the unbiased estimator).

    NumPy's and Keras' default (``ddof=0``) even when spelled ``dim=``: ``torch.var`` defaults
    to the unbiased estimator, so pass ``ddof=1`` for PyTorch's numbers.

    Example:
        >>> x = ember.tensor([1.0, 2.0, 3.0, 4.0])
        >>> ember.var(x), ember.var(x, ddof=1)
        (tensor(1.25), tensor(1.6666666))
    """
    if dim is not None or keepdim is not None:
        axis, keepdims = torch_names("var", axis, keepdims, dim, keepdim)
    axes = normalize_axes(axis, x.ndim)
    centered = x.data - x.data.mean(axis=axes, keepdims=True)
    count = 1
    for a in axes:
        count *= x.shape[a]
    out = (centered * centered).sum(axis=axes, keepdims=keepdims) / (count - ddof)

    def backward(g):
        return (expand_reduced(g, x.shape, axes, keepdims) * centered * (2 / (count - ddof)),)

    return Tensor._from_op(xp.asarray(out, dtype=x.dtype), (x,), backward, "var")
