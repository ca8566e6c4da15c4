"""Shape ops: views and rearrangements whose backward undoes the rearrangement."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ember.backend import xp
from ember.ops._core import as_tensor, takes_tensor
from ember.tensor import Tensor


@takes_tensor
def reshape(x: Tensor, shape) -> Tensor:
    shape = tuple(shape)
    try:
        out = x.data.reshape(shape)
    except ValueError:
        raise ValueError(
            f"cannot reshape a tensor of shape {x.shape} ({x.size} elements) into {shape}"
        ) from None
    source = x.shape
    return Tensor._from_op(out, (x,), lambda g: (g.reshape(source),), "reshape")


@takes_tensor
def flatten(x: Tensor, start_axis: int = 0) -> Tensor:
    """Merge every axis from ``start_axis`` on into one (``start_axis=1`` keeps the batch)."""
    start_axis %= max(x.ndim, 1)
    # The merged size is spelled out: NumPy cannot resolve -1 for a tensor of zero elements.
    return reshape(x, x.shape[:start_axis] + (math.prod(x.shape[start_axis:]),))


@takes_tensor
def transpose(x: Tensor, axes=None) -> Tensor:
    if axes is not None:
        axes = tuple(axes)
        if sorted(a % x.ndim for a in axes) != list(range(x.ndim)):
            raise ValueError(f"axes {axes} are not a permutation of a {x.ndim}-d tensor's axes")
    out = xp.transpose(x.data, axes)
    inverse = None if axes is None else tuple(np.argsort([a % x.ndim for a in axes]))
    return Tensor._from_op(out, (x,), lambda g: (xp.transpose(g, inverse),), "transpose")


@takes_tensor
def squeeze(x: Tensor, axis=None) -> Tensor:
    if axis is not None:
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        for a in axes:
            if x.shape[a] != 1:
                raise ValueError(f"cannot squeeze axis {a} of shape {x.shape}: its size is not 1")
    out = xp.squeeze(x.data, axis=axis)
    source = x.shape
    return Tensor._from_op(out, (x,), lambda g: (g.reshape(source),), "squeeze")


@takes_tensor
def unsqueeze(x: Tensor, axis: int) -> Tensor:
    out = xp.expand_dims(x.data, axis)
    source = x.shape
    return Tensor._from_op(out, (x,), lambda g: (g.reshape(source),), "unsqueeze")


def _split_back(g, tensors: Sequence[Tensor], axis: int):
    bounds = np.cumsum([t.shape[axis] for t in tensors])[:-1]
    return tuple(xp.split(g, bounds, axis=axis))


def concatenate(tensors: Sequence, axis: int = 0) -> Tensor:
    """Join tensors along an existing axis."""
    tensors = _as_tensors(tensors, "concatenate")
    try:
        out = xp.concatenate([t.data for t in tensors], axis=axis)
    except ValueError as exc:
        shapes = [t.shape for t in tensors]
        raise ValueError(
            f"concatenate along axis {axis}: incompatible shapes {shapes}: {exc}"
        ) from None
    return Tensor._from_op(
        out, tuple(tensors), lambda g: _split_back(g, tensors, axis % out.ndim), "concatenate"
    )


def stack(tensors: Sequence, axis: int = 0) -> Tensor:
    """Join same-shaped tensors along a new axis."""
    tensors = _as_tensors(tensors, "stack")
    shapes = {t.shape for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack needs tensors of one shape, got {[t.shape for t in tensors]}")
    out = xp.stack([t.data for t in tensors], axis=axis)
    ax = axis % out.ndim

    def backward(g):
        return tuple(xp.take(g, i, axis=ax) for i in range(len(tensors)))

    return Tensor._from_op(out, tuple(tensors), backward, "stack")


def _as_tensors(tensors, name: str) -> list[Tensor]:
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{name} needs at least one tensor")
    like = next((t for t in tensors if isinstance(t, Tensor)), None)
    return [as_tensor(t, like) for t in tensors]


@takes_tensor
def pad(x: Tensor, pad_width, constant_values=0.0) -> Tensor:
    """Constant padding with NumPy's ``pad_width`` convention (``((before, after), ...)``)."""
    widths = np.broadcast_to(np.asarray(pad_width, dtype=int), (x.ndim, 2))
    if (widths < 0).any():
        raise ValueError(f"pad widths must be non-negative, got {pad_width}")
    out = xp.pad(x.data, widths, mode="constant", constant_values=constant_values)
    window = tuple(slice(int(b), int(b) + n) for (b, _), n in zip(widths, x.shape))
    return Tensor._from_op(out, (x,), lambda g: (g[window],), "pad")


def _is_advanced(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, (list, np.ndarray, Tensor)) for p in parts)


def _unwrap_index(index):
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(p.data if isinstance(p, Tensor) else p for p in index)
    return index


@takes_tensor
def getitem(x: Tensor, index) -> Tensor:
    """Indexing and slicing; repeated integer indices accumulate their gradients."""
    index = _unwrap_index(index)
    try:
        out = x.data[index]
    except IndexError as exc:
        raise IndexError(
            f"index {index!r} is invalid for a tensor of shape {x.shape}: {exc}"
        ) from None
    advanced = _is_advanced(index)
    if advanced and not isinstance(out, np.ndarray):
        out = np.asarray(out)
    if not advanced:
        out = np.asarray(out)  # a view; freezing it in _from_op leaves the parent writable

    def backward(g):
        full = xp.zeros(x.shape, dtype=g.dtype)
        if advanced:
            xp.add.at(full, index, g)  # `full[index] += g` would apply a repeated index once
        else:
            full[index] = g
        return (full,)

    return Tensor._from_op(out, (x,), backward, "getitem")
