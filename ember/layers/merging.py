"""Merge layers: combine a list of tensors into one (Keras' ``Concatenate``, ``Add``, ``Dot``...).

Each layer is called on a list (or tuple) of tensors — ``Add()([a, b])`` — and has a lower-case
functional form doing the same in one call — ``add([a, b])``. Elementwise merges broadcast like
NumPy; gradients flow to every input through the ops they use (a tie in ``Maximum``/``Minimum``
splits the gradient, Ember's convention for ``maximum``).

Example:
    >>> a, b = ember.layers.Input(shape=(4,)), ember.layers.Input(shape=(4,))
    >>> ember.layers.concatenate([a, b]).shape
    (None, 8)
    >>> ember.layers.Add()([np.ones((2, 3)), np.ones((2, 3))])
    tensor([[2., 2., 2.],
            [2., 2., 2.]])
"""

from __future__ import annotations

import numpy as np

from ember import ops
from ember.layers.base import Layer
from ember.tensor import Tensor


class _Merge(Layer):
    """Shared checks: a list of at least ``min_inputs`` tensors (exactly ``exact`` if set)."""

    min_inputs = 1
    exact: int | None = None

    def _check_list(self, inputs) -> list[Tensor]:
        if isinstance(inputs, Tensor) or not isinstance(inputs, (list, tuple)):
            raise ValueError(
                f'Layer "{self.name}" ({type(self).__name__}) must be called on a list of '
                f"tensors, e.g. {type(self).__name__}()([a, b]); got {type(inputs).__name__}"
            )
        if self.exact is not None and len(inputs) != self.exact:
            raise ValueError(
                f'Layer "{self.name}" ({type(self).__name__}) takes exactly {self.exact} '
                f"inputs, got {len(inputs)}"
            )
        if len(inputs) < self.min_inputs:
            raise ValueError(
                f'Layer "{self.name}" ({type(self).__name__}) needs at least {self.min_inputs} '
                f"input(s), got {len(inputs)}"
            )
        return list(inputs)

    def _convert_inputs(self, inputs):
        self._check_list(inputs)  # one tensor or an empty list is refused before build
        return super()._convert_inputs(inputs)

    def build(self, input_shape) -> None:
        self._check_shapes([tuple(s) for s in input_shape])

    def _check_shapes(self, shapes: list[tuple]) -> None:
        """Elementwise merges: the shapes must broadcast together."""
        try:
            np.broadcast_shapes(*shapes)
        except ValueError:
            raise ValueError(
                f'Layer "{self.name}" ({type(self).__name__}) cannot combine inputs of shapes '
                f"{shapes}: they must be equal (or broadcastable)"
            ) from None

    def call(self, inputs):
        tensors = self._check_list(inputs)
        self._check_shapes([tuple(t.shape) for t in tensors])
        return self._merge(tensors)

    def _merge(self, tensors: list[Tensor]) -> Tensor:
        raise NotImplementedError


class Add(_Merge):
    """Sum of the inputs, elementwise.

    Example:
        >>> ember.layers.Add()([np.ones((1, 2)), 2 * np.ones((1, 2))])
        tensor([[3., 3.]])
    """

    def _merge(self, tensors):
        total = tensors[0]
        for t in tensors[1:]:
            total = total + t
        return total


class Subtract(_Merge):
    """The first input minus the second (exactly two inputs).

    Example:
        >>> ember.layers.Subtract()([np.ones((1, 2)), 2 * np.ones((1, 2))])
        tensor([[-1., -1.]])
    """

    exact = 2

    def _merge(self, tensors):
        return tensors[0] - tensors[1]


class Multiply(_Merge):
    """Product of the inputs, elementwise.

    Example:
        >>> ember.layers.Multiply()([2 * np.ones((1, 2)), 3 * np.ones((1, 2))])
        tensor([[6., 6.]])
    """

    def _merge(self, tensors):
        product = tensors[0]
        for t in tensors[1:]:
            product = product * t
        return product


class Average(_Merge):
    """Mean of the inputs, elementwise.

    Example:
        >>> ember.layers.Average()([np.zeros((1, 2)), 2 * np.ones((1, 2))])
        tensor([[1., 1.]])
    """

    def _merge(self, tensors):
        return Add._merge(self, tensors) * (1.0 / len(tensors))


class Maximum(_Merge):
    """Largest input, elementwise.

    Example:
        >>> ember.layers.Maximum()([np.array([[1.0, 5.0]]), np.array([[3.0, 2.0]])])
        tensor([[3., 5.]])
    """

    def _merge(self, tensors):
        result = tensors[0]
        for t in tensors[1:]:
            result = ops.maximum(result, t)
        return result


class Minimum(_Merge):
    """Smallest input, elementwise.

    Example:
        >>> ember.layers.Minimum()([np.array([[1.0, 5.0]]), np.array([[3.0, 2.0]])])
        tensor([[1., 2.]])
    """

    def _merge(self, tensors):
        result = tensors[0]
        for t in tensors[1:]:
            result = ops.minimum(result, t)
        return result


class Concatenate(_Merge):
    """Join the inputs along ``axis`` (the last by default); the other axes must match.

    Example:
        >>> ember.layers.Concatenate()([np.zeros((2, 3)), np.ones((2, 1))]).shape
        (2, 4)
    """

    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f'Layer "{self.name}": axis must be an integer, got {axis!r}')
        self.axis = int(axis)

    def _check_shapes(self, shapes):
        ndims = {len(s) for s in shapes}
        if len(ndims) != 1:
            raise ValueError(
                f'Layer "{self.name}" (Concatenate) needs inputs with the same number of axes, '
                f"got shapes {shapes}"
            )
        ndim = ndims.pop()
        if not -ndim <= self.axis < ndim:
            raise ValueError(
                f'Layer "{self.name}" (Concatenate): axis {self.axis} is out of range for inputs '
                f"with {ndim} axes"
            )
        axis = self.axis % ndim
        for i in range(ndim):
            sizes = {s[i] for s in shapes if s[i] is not None}
            if i != axis and len(sizes) > 1:
                raise ValueError(
                    f'Layer "{self.name}" (Concatenate) requires inputs with matching shapes '
                    f"except for the concatenation axis {self.axis}; got shapes {shapes}"
                )

    def _merge(self, tensors):
        return ops.concatenate(tensors, axis=self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class Dot(_Merge):
    """Dot product of two inputs along ``axes`` per sample (Keras' batch dot).

    ``axes`` is one axis for both inputs or a pair; ``normalize=True`` first scales each input to
    unit L2 norm along its dot axis, which gives the cosine similarity. Two ``(batch, n)`` inputs
    give ``(batch, 1)``; ``(batch, m, n)`` and ``(batch, n, k)`` with ``axes=(2, 1)`` give
    ``(batch, m, k)``.

    Example:
        >>> a = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
        >>> ember.layers.Dot(axes=1)([a, a])
        tensor([[ 5.],
                [25.]])
    """

    exact = 2

    def __init__(self, axes, normalize: bool = False, **kwargs):
        super().__init__(**kwargs)
        pair = tuple(axes) if isinstance(axes, (list, tuple)) else (axes, axes)
        if len(pair) != 2 or any(
            isinstance(a, bool) or not isinstance(a, (int, np.integer)) for a in pair
        ):
            raise TypeError(
                f'Layer "{self.name}" (Dot): axes must be an integer or a pair of integers, got '
                f"{axes!r}"
            )
        self.axes = tuple(int(a) for a in pair)
        self.normalize = bool(normalize)

    def _dot_axes(self, shapes) -> tuple[int, int]:
        result = []
        for axis, shape in zip(self.axes, shapes):
            ndim = len(shape)
            if not -ndim <= axis < ndim or axis % ndim == 0:
                raise ValueError(
                    f'Layer "{self.name}" (Dot): axis {axis} is not a feature axis of an input '
                    f"of shape {shape} (axis 0 is the batch)"
                )
            result.append(axis % ndim)
        return result[0], result[1]

    def _check_shapes(self, shapes):
        if any(len(s) < 2 for s in shapes):
            raise ValueError(
                f'Layer "{self.name}" (Dot) needs inputs with a feature axis, got {shapes}'
            )
        ax, ay = self._dot_axes(shapes)
        if None not in (shapes[0][0], shapes[1][0]) and shapes[0][0] != shapes[1][0]:
            raise ValueError(
                f'Layer "{self.name}" (Dot) needs inputs with the same batch size, got shapes '
                f"{shapes}"
            )
        if shapes[0][ax] is not None and shapes[1][ay] is not None and (
            shapes[0][ax] != shapes[1][ay]
        ):
            raise ValueError(
                f'Layer "{self.name}" (Dot): dimension incompatibility: {shapes[0][ax]} (axis '
                f"{ax} of {shapes[0]}) against {shapes[1][ay]} (axis {ay} of {shapes[1]})"
            )

    def _merge(self, tensors):
        x, y = tensors
        ax, ay = self._dot_axes([x.shape, y.shape])
        if self.normalize:
            x = _l2_normalize(x, ax)
            y = _l2_normalize(y, ay)
        batch, n = x.shape[0], x.shape[ax]
        x_rest = [s for i, s in enumerate(x.shape) if i not in (0, ax)]
        y_rest = [s for i, s in enumerate(y.shape) if i not in (0, ay)]
        # x as (batch, rows, n) and y as (batch, n, columns): one batched matrix product
        x = ops.transpose(x, [0] + [i for i in range(1, x.ndim) if i != ax] + [ax])
        y = ops.transpose(y, [0, ay] + [i for i in range(1, y.ndim) if i != ay])
        x = ops.reshape(x, (batch, int(np.prod(x_rest, dtype=np.int64)), n))
        y = ops.reshape(y, (batch, n, int(np.prod(y_rest, dtype=np.int64))))
        out = ops.matmul(x, y)
        return ops.reshape(out, (batch, *x_rest, *y_rest) if x_rest or y_rest else (batch, 1))

    def get_config(self):
        return {**super().get_config(), "axes": list(self.axes), "normalize": self.normalize}


def _l2_normalize(x: Tensor, axis: int) -> Tensor:
    squared = ops.sum(x * x, axis=axis, keepdims=True)
    return x / ops.sqrt(ops.maximum(squared, 1e-12))


def _functional(cls, inputs, **kwargs):
    return cls(**kwargs)(inputs)


def add(inputs, **kwargs):
    """``Add(**kwargs)(inputs)``: the elementwise sum of a list of tensors."""
    return _functional(Add, inputs, **kwargs)


def subtract(inputs, **kwargs):
    """``Subtract(**kwargs)(inputs)``: the first of two tensors minus the second."""
    return _functional(Subtract, inputs, **kwargs)


def multiply(inputs, **kwargs):
    """``Multiply(**kwargs)(inputs)``: the elementwise product of a list of tensors."""
    return _functional(Multiply, inputs, **kwargs)


def average(inputs, **kwargs):
    """``Average(**kwargs)(inputs)``: the elementwise mean of a list of tensors."""
    return _functional(Average, inputs, **kwargs)


def maximum(inputs, **kwargs):
    """``Maximum(**kwargs)(inputs)``: the elementwise maximum of a list of tensors."""
    return _functional(Maximum, inputs, **kwargs)


def minimum(inputs, **kwargs):
    """``Minimum(**kwargs)(inputs)``: the elementwise minimum of a list of tensors."""
    return _functional(Minimum, inputs, **kwargs)


def concatenate(inputs, axis: int = -1, **kwargs):
    """``Concatenate(axis, **kwargs)(inputs)``: a list of tensors joined along ``axis``."""
    return _functional(Concatenate, inputs, axis=axis, **kwargs)


def dot(inputs, axes, normalize: bool = False, **kwargs):
    """``Dot(axes, normalize, **kwargs)(inputs)``: the per-sample dot product of two tensors."""
    return _functional(Dot, inputs, axes=axes, normalize=normalize, **kwargs)
