"""Weights as objects: ``Parameter`` (a layer's weight, PyTorch's ``nn.Parameter``) and
``Variable`` (TensorFlow / Keras 3's ``Variable``, with ``assign``).

Both are tensors that stay leaves of the graph: every update happens in place, on the same
object, and bumps its version (see :mod:`ember.tensor`), so a graph recorded before the update
refuses to backpropagate through the old value instead of silently using the new one.
"""

from __future__ import annotations

import numpy as np

from ember.tensor import Tensor, _as_array, _describe

__all__ = ["Parameter", "Variable"]


class Parameter(Tensor):
    """A trainable (or frozen) weight owned by a layer; always a leaf requiring a gradient.

    ``trainable=False`` keeps ``requires_grad`` (so gradients can still flow to earlier layers) but
    optimizers and ``fit`` leave the value untouched. ``assign``, ``assign_add`` and
    ``assign_sub`` change the value in place, as on a Keras variable (e.g. a running total in a
    layer's ``call``).

    Example:
        >>> w = ember.Parameter(np.zeros((2, 3), np.float32), name="w")
        >>> w, w.requires_grad, w.trainable
        (Parameter(name='w', shape=(2, 3), dtype=float32), True, True)
        >>> (w * 2.0).sum().backward()
        >>> w.grad
        array([[2., 2., 2.],
               [2., 2., 2.]], dtype=float32)
    """

    __slots__ = ("trainable",)

    def __init__(self, data, name: str | None = None, trainable: bool = True):
        super().__init__(data, requires_grad=True, name=name)
        if not self._data.flags.c_contiguous:  # row-major storage: the fused optimizer kernels
            self._data = np.ascontiguousarray(self._data)  # update it in one flat pass
        self.trainable = trainable

    def __repr__(self) -> str:
        return f"Parameter(name={self.name!r}, shape={self.shape}, dtype={self.dtype})"

    # ------------------------------------------------------------------ writing
    def assign(self, value) -> Parameter:
        """Set the value in place (shape and dtype kept); returns the variable."""
        return self._write(value, "assign", _copy_into)

    def assign_add(self, delta) -> Parameter:
        """Add ``delta`` in place; returns the variable."""
        return self._write(delta, "assign_add", _add_into)

    def assign_sub(self, delta) -> Parameter:
        """Subtract ``delta`` in place; returns the variable."""
        return self._write(delta, "assign_sub", _subtract_into)

    def _write(self, value, method: str, write) -> Parameter:
        kind = type(self).__name__
        label = f"{kind} {self.name!r}" if self.name else kind
        array = value._data if isinstance(value, Tensor) else np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise TypeError(
                f"{label}.{method}: expected numbers, got a value of dtype {array.dtype}"
            )
        try:
            fits = np.broadcast_shapes(array.shape, self.shape) == self.shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(
                f"{label}.{method}: the value has shape {array.shape}, which does not broadcast "
                f"to the variable's shape {self.shape}; a variable's shape never changes"
            )
        data = self._writable_data()
        try:
            write(data, array)
        except TypeError as exc:  # NumPy's casting error: a float value into an int variable
            raise TypeError(
                f"{label}.{method}: cannot store a {array.dtype} value in {_describe(self)} "
                f"(its dtype never changes): {exc}"
            ) from None
        self._bump_version()
        return self


_trainable_slot = Parameter.__dict__["trainable"]  # the slot that Variable's property wraps


class Variable(Parameter):
    """A mutable tensor with TensorFlow / Keras 3's API: ``assign``, ``assign_add``,
    ``assign_sub``, ``numpy()``, ``value``.

    Args:
        initial_value: an array, a list, a number, a Tensor, or a callable returning one. The
            variable keeps its own copy.
        trainable: a trainable floating-point variable requires grad, so every op that reads it
            records the graph and ``GradientTape.gradient`` / ``backward`` reach it. A
            non-trainable one (or an integer one, e.g. a step counter) does not: like in
            TensorFlow, a tape treats it as a constant unless ``tape.watch(v)`` is called inside
            the block. Setting ``v.trainable`` later updates ``requires_grad`` accordingly. Either
            way the variable is a leaf of the graph.
        name: used in ``repr`` and in error messages.
        dtype: ``"float32"`` or ``"float64"``; default as :class:`ember.Tensor` (Python floats
            and lists become float32, NumPy float arrays keep their dtype, integers stay
            integers).

    The ``assign*`` methods write in place (the shape and dtype never change; the value may be
    anything that broadcasts to the shape), bump the version and return the variable, so that
    ``w.assign_sub(lr * dw)`` is the TensorFlow way to write a gradient-descent step. Unlike
    ``Parameter``, ``numpy()`` always returns a copy (TensorFlow's semantics): writing into it
    never changes the variable behind its version counter's back.

    Example:
        >>> v = ember.Variable([1.0, 2.0], name="v")
        >>> v
        Variable(name='v', shape=(2,), dtype=float32)
        >>> with ember.GradientTape() as tape:
        ...     loss = (v * v).sum()
        >>> dv = tape.gradient(loss, v)
        >>> dv
        tensor([2., 4.])
        >>> v.assign_sub(0.25 * dv).numpy()
        array([0.5, 1. ], dtype=float32)
        >>> v.assign([3.0, 4.0]).assign_add(1.0).numpy()
        array([4., 5.], dtype=float32)
        >>> v.assign(np.zeros(3))
        Traceback (most recent call last):
        ...
        ValueError: Variable 'v'.assign: the value has shape (3,), which does not broadcast to ...
        >>> step = ember.Variable(0, trainable=False, name="step")
        >>> step.assign_add(1).numpy(), step.requires_grad
        (array(1), False)
    """

    __slots__ = ()

    def __init__(
        self,
        initial_value,
        trainable: bool = True,
        name: str | None = None,
        dtype=None,
    ):
        if callable(initial_value) and not isinstance(initial_value, Tensor):
            initial_value = initial_value()
        array = np.array(_as_array(initial_value, dtype), copy=True)  # the variable's own copy
        Tensor.__init__(self, array, name=name)
        self.trainable = trainable

    @property
    def trainable(self) -> bool:
        """Whether training (optimizers, ``fit``, the tape's automatic watching) updates it."""
        return _trainable_slot.__get__(self, type(self))

    @trainable.setter
    def trainable(self, value: bool) -> None:
        value = bool(value)
        _trainable_slot.__set__(self, value)
        data = getattr(self, "_data", None)
        if data is not None:  # (absent while copy/pickle restore the slots one by one)
            self.requires_grad = value and data.dtype.kind == "f"

    def __repr__(self) -> str:
        extra = "" if self.trainable else ", trainable=False"
        return f"Variable(name={self.name!r}, shape={self.shape}, dtype={self.dtype}{extra})"

    # ------------------------------------------------------------------ reading
    def numpy(self) -> np.ndarray:
        """A copy of the current value."""
        return self._data.copy()

    @property
    def value(self) -> Tensor:
        """The current value as a Tensor: a snapshot (a later ``assign`` does not change it)
        through which the gradient still flows back to the variable when it requires grad."""
        out = Tensor._from_op(self._data.copy(), (self,), _identity_backward, "value")
        out._saved_versions = None  # the backward never reads the variable: no version check
        return out

def _identity_backward(g: np.ndarray) -> tuple:
    return (g,)


def _copy_into(data: np.ndarray, array: np.ndarray) -> None:
    np.copyto(data, array, casting="same_kind")


def _add_into(data: np.ndarray, array: np.ndarray) -> None:
    np.add(data, array, out=data, casting="same_kind")


def _subtract_into(data: np.ndarray, array: np.ndarray) -> None:
    np.subtract(data, array, out=data, casting="same_kind")
