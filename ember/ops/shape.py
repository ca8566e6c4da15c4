"""Shape ops: views and rearrangements whose backward undoes the rearrangement."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ember.backend import xp
from ember.ops._core import as_tensor, takes_tensor
from ember.ops.graph import _sum_rows
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


# ------------------------------------------------------------------ Keras' take, tile and split
def _axis_of(name: str, axis, ndim: int) -> int:
    """``axis`` as a non-negative int, or a ValueError naming ``name`` (the op)."""
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{name}: axis must be an int, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"{name}: axis {axis} is out of range for a tensor with {ndim} dimension(s) "
            f"(valid: {-ndim}..{ndim - 1})"
        )
    return int(axis) % ndim


def _int_indices(name: str, indices) -> np.ndarray:
    """Indices (list, array, Tensor) as an integer array; floats and bools are refused."""
    array = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
    if array.dtype.kind not in "iu" and not (array.size == 0 and array.dtype.kind == "f"):
        raise TypeError(f"{name}: indices must be integers, got dtype {array.dtype}")
    return array.astype(np.intp, copy=False)


@takes_tensor
def take(x: Tensor, indices, axis: int | None = None) -> Tensor:
    """Gather the entries of ``x`` at ``indices`` along ``axis`` (``keras.ops.take``).

    ``axis=None`` reads ``x`` flattened. The result has shape
    ``x.shape[:axis] + indices.shape + x.shape[axis + 1:]``. Negative indices count from the
    end (as NumPy); out-of-range ones raise ``ValueError``. A repeated index accumulates the
    gradients of all its copies. ``indices`` (ints, array or Tensor) receive no gradient.

    Example:
        >>> from ember.ops.shape import take
        >>> x = ember.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
        >>> y = take(x, [2, 2, -3], axis=1)
        >>> y
        tensor([[3., 3., 1.],
                [6., 6., 4.]], grad_fn=take)
        >>> y.sum().backward()
        >>> x.grad
        array([[1., 0., 2.],
               [1., 0., 2.]], dtype=float32)
        >>> take(x, np.array([[0], [5]])).shape  # axis=None: indices into x.flatten()
        (2, 1)
    """
    index = _int_indices("take", indices)
    source = x.shape
    if axis is None:
        ax, size, flat = 0, x.size, x.data.reshape(-1)
    else:
        if x.ndim == 0:
            raise ValueError(f"take: axis={axis} given for a 0-d tensor; use axis=None")
        ax = _axis_of("take", axis, x.ndim)
        size, flat = x.shape[ax], x.data
    if index.size and (index.min() < -size or index.max() >= size):
        bad = index.reshape(-1)[(index.reshape(-1) < -size) | (index.reshape(-1) >= size)][0]
        where = "the flattened tensor" if axis is None else f"axis {axis}"
        raise ValueError(
            f"take: index {bad} is out of range for {where} of size {size} "
            f"(valid: {-size}..{size - 1}); x has shape {source}"
        )
    out = xp.take(flat, index, axis=ax)

    def backward(g):
        if ax == 0:  # rows gathered (a graph's nodes, an embedding's tokens): a sparse sum
            rows = index.reshape(-1) % max(size, 1)
            summed = _sum_rows(g.reshape((rows.shape[0],) + flat.shape[1:]), rows, size)
            return (summed.reshape(source),)
        full = xp.zeros(flat.shape, dtype=g.dtype)
        # `full[index] += g` would add a repeated index once; add.at adds every copy
        xp.add.at(full, (slice(None),) * ax + (index,), g)
        return (full.reshape(source),)

    return Tensor._from_op(out, (x,), backward, "take")


def _repeats(repeats) -> tuple[int, ...]:
    reps = (repeats,) if np.ndim(repeats) == 0 else tuple(np.asarray(repeats).reshape(-1))
    for r in reps:
        if isinstance(r, (bool, np.bool_)) or not isinstance(r, (int, np.integer)):
            raise TypeError(f"tile: repeats must be ints, got {repeats!r}")
        if r < 0:
            raise ValueError(f"tile: repeats must be non-negative, got {repeats!r}")
    return tuple(int(r) for r in reps)


@takes_tensor
def tile(x: Tensor, repeats) -> Tensor:
    """Repeat ``x`` ``repeats[i]`` times along each axis ``i`` (``np.tile``, ``keras.ops.tile``).

    ``repeats`` is an int or a sequence of ints; when it is shorter than ``x.ndim`` it applies to
    the last axes, when longer ``x`` gains leading axes of size 1. The gradient sums the tiles.

    Example:
        >>> from ember.ops.shape import tile
        >>> x = ember.tensor([1.0, 2.0], requires_grad=True)
        >>> y = tile(x, (2, 3))
        >>> y
        tensor([[1., 2., 1., 2., 1., 2.],
                [1., 2., 1., 2., 1., 2.]], grad_fn=tile)
        >>> y.sum().backward()
        >>> x.grad
        array([6., 6.], dtype=float32)
    """
    reps = _repeats(repeats)
    ndim = max(x.ndim, len(reps))
    shape = (1,) * (ndim - x.ndim) + x.shape
    reps = (1,) * (ndim - len(reps)) + reps
    out = xp.tile(x.data, reps)
    source = x.shape

    def backward(g):
        # out axis i holds reps[i] copies of x's axis i: split it as (copy, position), sum copies
        interleaved = tuple(n for pair in zip(reps, shape) for n in pair)
        copies = tuple(range(0, 2 * ndim, 2))
        return (g.reshape(interleaved).sum(axis=copies).reshape(source),)

    return Tensor._from_op(out, (x,), backward, "tile")


def _split_points(indices_or_sections, size: int) -> list[int]:
    """Boundaries of ``np.split``: ``[0, *points, size]`` (points may be negative or past the
    end: they are slice bounds, as in NumPy)."""
    if np.ndim(indices_or_sections) == 0:
        sections = indices_or_sections
        if isinstance(sections, (bool, np.bool_)) or not isinstance(sections, (int, np.integer)):
            raise TypeError(
                f"split: indices_or_sections must be an int or a list of ints, got {sections!r}"
            )
        if sections <= 0 or size % sections:
            raise ValueError(
                f"split: cannot split an axis of size {size} into {sections} equal sections; "
                "pass a number of sections that divides it, or a list of split points"
            )
        step = size // int(sections)
        return [k * step for k in range(int(sections) + 1)]
    points = list(np.asarray(indices_or_sections).reshape(-1))
    for p in points:
        if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, np.integer)):
            raise TypeError(f"split: split points must be ints, got {indices_or_sections!r}")
    return [0, *(int(p) for p in points), size]


@takes_tensor
def split(x: Tensor, indices_or_sections, axis: int = 0) -> list[Tensor]:
    """Cut ``x`` along ``axis`` into pieces (``np.split``, ``keras.ops.split``).

    An int ``n`` gives ``n`` equal pieces (it must divide the axis); a list of points
    ``[i, j]`` gives ``x[:i], x[i:j], x[j:]`` along ``axis``. Each piece is a differentiable
    slice of ``x``: its gradient lands in its window of ``x``.

    Example:
        >>> from ember.ops.shape import split
        >>> x = ember.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
        >>> left, right = split(x, [1], axis=1)
        >>> right
        tensor([[2., 3.],
                [5., 6.]], grad_fn=split)
        >>> (2 * left.sum() + right.sum()).backward()
        >>> x.grad
        array([[2., 1., 1.],
               [2., 1., 1.]], dtype=float32)
        >>> [piece.shape for piece in split(x, 2)]
        [(1, 3), (1, 3)]
    """
    if x.ndim == 0:
        raise ValueError("split: cannot split a 0-d tensor; it has no axis")
    ax = _axis_of("split", axis, x.ndim)
    bounds = _split_points(indices_or_sections, x.shape[ax])
    return [_piece(x, ax, slice(a, b)) for a, b in zip(bounds[:-1], bounds[1:])]


def _piece(x: Tensor, ax: int, window: slice) -> Tensor:
    index = (slice(None),) * ax + (window,)
    source = x.shape

    def backward(g):
        full = xp.zeros(source, dtype=g.dtype)
        full[index] = g
        return (full,)

    # a view of x: _from_op freezes the view only, x stays writable
    return Tensor._from_op(x.data[index], (x,), backward, "split")
