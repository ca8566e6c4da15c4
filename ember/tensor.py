"""Tensor, the computation graph and reverse-mode automatic differentiation.

A :class:`Tensor` wraps an array. When gradient recording is on and any input requires a gradient,
every op stores on its output a tuple of parent tensors and a small ``backward`` closure mapping the
output's gradient to one gradient per parent. :meth:`Tensor.backward` walks that graph in reverse
topological order with an explicit stack (no recursion, linear in the number of nodes), accumulates
into the leaves' ``.grad`` and then frees the graph so its saved arrays can be released.

Conventions worth knowing:

* ``.grad`` is a NumPy array of the tensor's own shape and dtype (or ``None``).
* Arrays produced by an op while the graph is being recorded are read-only: writing into one
  would silently corrupt the gradient of everything computed from it. Use ``.numpy()`` (a writable
  copy in that case) or ``detach()`` to get data you may modify.
* Mixing a tensor with a Python or NumPy scalar or array keeps the tensor's dtype: a float32 tensor
  times a float64 NumPy array is float32, so float32 models never up-cast by accident.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np

from ember.backend import DEFAULT_FLOAT, float_dtype, xp

__all__ = [
    "Tensor",
    "tensor",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "grad",
    "manual_seed",
    "default_rng",
    "get_rng_state",
    "set_rng_state",
]


class _GradMode(threading.local):
    enabled = True


_grad_mode = _GradMode()


def is_grad_enabled() -> bool:
    """True when ops record the graph needed by :meth:`Tensor.backward`."""
    return _grad_mode.enabled


@contextmanager
def _set_grad_enabled(enabled: bool):
    previous = _grad_mode.enabled
    _grad_mode.enabled = enabled
    try:
        yield
    finally:
        # Restored even when the body raises, so an exception never leaves grad mode off.
        _grad_mode.enabled = previous


def no_grad():
    """Context manager (and decorator) that stops graph recording, like ``torch.no_grad``.

    Example:
        >>> w = ember.tensor([1.0, 2.0], requires_grad=True)
        >>> with ember.no_grad():
        ...     y = w * 2
        >>> y.requires_grad
        False
    """
    return _set_grad_enabled(False)


def enable_grad():
    """Context manager that turns graph recording back on inside a ``no_grad`` block."""
    return _set_grad_enabled(True)


# --------------------------------------------------------------------------------------------
# Random numbers. One generator owned by Ember, so that code elsewhere that calls np.random.*
# cannot perturb Ember's initialisation, shuffling or dropout (and vice versa).
# --------------------------------------------------------------------------------------------
_rng = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Seed Ember's random generator (weights, shuffling, dropout) for reproducible runs.

    Example:
        >>> ember.manual_seed(0)
    """
    global _rng
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"manual_seed expects a non-negative integer, got {seed!r}")
    _rng = np.random.default_rng(int(seed))


def default_rng() -> np.random.Generator:
    """The generator Ember draws from; reseeded by :func:`manual_seed`."""
    return _rng


def get_rng_state() -> dict:
    """The state of Ember's generator as plain JSON-able data (checkpoints store it)."""
    return _rng.bit_generator.state


def set_rng_state(state: dict) -> None:
    """Restore a state from :func:`get_rng_state`, so shuffling and dropout continue exactly."""
    global _rng
    generator = np.random.default_rng()
    try:
        generator.bit_generator.state = state
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"not a valid Ember RNG state: {exc}") from None
    _rng = generator


# --------------------------------------------------------------------------------------------
# Conversion of user data.
# --------------------------------------------------------------------------------------------
def _as_array(data, dtype=None) -> np.ndarray:
    """Turn user data (Tensor, array, list, scalar, DataFrame) into an ndarray, clearly."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        dtype = float_dtype(dtype)
    from_python = not isinstance(data, np.ndarray)
    if from_python:
        try:
            data = np.asarray(data)
        except ValueError as exc:
            raise ValueError(
                f"cannot make a tensor from {type(data).__name__}: {exc}. Nested lists must be "
                "rectangular (every row the same length)"
            ) from None
    kind = data.dtype.kind
    if kind in "OUSV" or kind == "M" or kind == "m":
        raise TypeError(
            f"cannot make a tensor from an array of dtype {data.dtype}; expected numbers "
            "(bool, int or float). Convert strings/objects to numeric arrays first"
        )
    if dtype is not None:
        if data.dtype != dtype:
            data = data.astype(dtype)
    elif kind == "f":
        # Python floats and lists become float32 (the default), float arrays keep their dtype.
        if from_python or data.dtype not in (np.float32, np.float64):
            data = data.astype(DEFAULT_FLOAT)
    elif kind == "c":
        raise TypeError("complex tensors are not supported")
    return data


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    Args:
        data: anything ``np.asarray`` accepts (a list, a scalar, an array, another Tensor).
        requires_grad: record operations on this tensor so that ``backward`` can fill ``.grad``.
        dtype: ``"float32"`` or ``"float64"``. Default: float arrays keep float32/float64,
            Python floats and lists become float32, integer and bool data keep their dtype.

    Example:
        >>> x = ember.tensor([1.0, 2.0, 3.0], requires_grad=True)
        >>> y = (x * x).sum()
        >>> y.backward()
        >>> x.grad
        array([2., 4., 6.], dtype=float32)
    """

    __slots__ = (
        "data",
        "grad",
        "requires_grad",
        "name",
        "_parents",
        "_backward",
        "_op",
        "_logits",
        "__weakref__",
    )
    __array_priority__ = 1000  # so that ndarray + Tensor calls Tensor.__radd__

    def __init__(self, data, requires_grad: bool = False, dtype=None, name: str | None = None):
        data = _as_array(data, dtype)
        if requires_grad and data.dtype.kind != "f":
            raise TypeError(
                f"only floating-point tensors can require gradients; got dtype {data.dtype}. "
                "Pass dtype='float32' (or a float array) to make a trainable tensor"
            )
        self.data = data
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.name = name
        self._parents = ()
        self._backward = None
        self._op = None
        self._logits = None

    @classmethod
    def _from_op(cls, data, parents, backward, op: str) -> Tensor:
        """Wrap an op's result, recording the graph only when some parent needs a gradient."""
        out = cls.__new__(cls)
        out.data = data
        out.grad = None
        out.name = None
        out._logits = None
        if _grad_mode.enabled and any(p.requires_grad for p in parents):
            out.requires_grad = True
            out._parents = parents
            out._backward = backward
            out._op = op
            # Saved arrays must not change before backward; freezing the fresh result makes an
            # accidental in-place write fail loudly instead of corrupting gradients.
            if isinstance(data, np.ndarray):
                data.flags.writeable = False
        else:
            out.requires_grad = False
            out._parents = ()
            out._backward = None
            out._op = None
        return out

    # ---------------------------------------------------------------- basic properties
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        """True for tensors created by the user (not by an op that recorded a graph)."""
        return self._backward is None

    @property
    def T(self) -> Tensor:  # noqa: N802 (NumPy's name)
        return _ops.transpose(self)

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extra = ""
        if self.data.dtype != DEFAULT_FLOAT:
            extra += f", dtype={self.data.dtype}"
        if self._op is not None:
            extra += f", grad_fn={self._op}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (a writable copy when the array is frozen by a graph)."""
        return self.data if self.data.flags.writeable else self.data.copy()

    def item(self) -> float:
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(
                f"item() needs a tensor with exactly one element; this one has shape {self.shape}"
            )
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(
                f"the truth value of a tensor with {self.data.size} elements is ambiguous; "
                "use .any() or .all() on .numpy()"
            )
        return bool(self.data)

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)

    def __hash__(self) -> int:
        return id(self)

    def astype(self, dtype) -> Tensor:
        """A copy converted to ``dtype`` (float dtypes keep the gradient flowing)."""
        return _ops.cast(self, dtype)

    def detach(self) -> Tensor:
        """A tensor sharing this one's data but cut from the graph (``requires_grad=False``).

        The data is shared, not copied, like PyTorch's ``detach``.
        """
        return Tensor(self.data)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(
                f"only floating-point tensors can require gradients; got dtype {self.dtype}"
            )
        if not self.is_leaf:
            raise RuntimeError(
                "requires_grad_ can only change leaf tensors; detach() this one first"
            )
        self.requires_grad = requires_grad
        return self

    def zero_grad(self) -> None:
        self.grad = None

    # ---------------------------------------------------------------- in-place assignment
    def __setitem__(self, index, value) -> None:
        if self.requires_grad:
            raise RuntimeError(
                "in-place assignment into a tensor that requires grad would make its gradient "
                "wrong; build a new tensor with ember.where or concatenate instead, or assign "
                "under no_grad into .data of a leaf"
            )
        if not self.data.flags.writeable:
            self.data = self.data.copy()
        self.data[index] = value.data if isinstance(value, Tensor) else value

    # ---------------------------------------------------------------- autograd
    def backward(self, gradient=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``.grad`` of every leaf that requires a gradient.

        Args:
            gradient: the upstream gradient, needed when ``self`` is not a scalar. Same shape.
            retain_graph: keep the graph so that backward can be called through it again.

        Example:
            >>> w = ember.tensor([2.0], requires_grad=True)
            >>> (w ** 3).sum().backward()
            >>> w.grad
            array([12.], dtype=float32)
        """
        _run_backward(self, gradient, retain_graph, targets=None)

    # ---------------------------------------------------------------- operators
    def __add__(self, other):
        return _ops.add(self, other)

    def __radd__(self, other):
        return _ops.add(other, self)

    def __sub__(self, other):
        return _ops.sub(self, other)

    def __rsub__(self, other):
        return _ops.sub(other, self)

    def __mul__(self, other):
        return _ops.mul(self, other)

    def __rmul__(self, other):
        return _ops.mul(other, self)

    def __truediv__(self, other):
        return _ops.div(self, other)

    def __rtruediv__(self, other):
        return _ops.div(other, self)

    def __neg__(self):
        return _ops.neg(self)

    def __pos__(self):
        return self

    def __pow__(self, exponent):
        return _ops.power(self, exponent)

    def __rpow__(self, base):
        return _ops.power(base, self)

    def __matmul__(self, other):
        return _ops.matmul(self, other)

    def __rmatmul__(self, other):
        return _ops.matmul(other, self)

    def __abs__(self):
        return _ops.abs(self)

    def __getitem__(self, index):
        return _ops.getitem(self, index)

    # comparisons return boolean tensors and never carry a gradient
    def __lt__(self, other):
        return _ops.less(self, other)

    def __le__(self, other):
        return _ops.less_equal(self, other)

    def __gt__(self, other):
        return _ops.greater(self, other)

    def __ge__(self, other):
        return _ops.greater_equal(self, other)

    def __eq__(self, other):  # type: ignore[override]
        return _ops.equal(self, other)

    def __ne__(self, other):  # type: ignore[override]
        return _ops.not_equal(self, other)

    # ---------------------------------------------------------------- math methods
    def exp(self):
        return _ops.exp(self)

    def log(self):
        return _ops.log(self)

    def sqrt(self):
        return _ops.sqrt(self)

    def abs(self):
        return _ops.abs(self)

    def clip(self, min=None, max=None):  # noqa: A002 (NumPy's names)
        return _ops.clip(self, min, max)

    def maximum(self, other):
        return _ops.maximum(self, other)

    def minimum(self, other):
        return _ops.minimum(self, other)

    def sum(self, axis=None, keepdims: bool = False):
        return _ops.sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims: bool = False):
        return _ops.mean(self, axis, keepdims)

    def max(self, axis=None, keepdims: bool = False):
        return _ops.max(self, axis, keepdims)

    def min(self, axis=None, keepdims: bool = False):
        return _ops.min(self, axis, keepdims)

    def var(self, axis=None, keepdims: bool = False, ddof: int = 0):
        return _ops.var(self, axis, keepdims, ddof)

    def argmax(self, axis=None):
        return Tensor(xp.argmax(self.data, axis=axis))

    def argmin(self, axis=None):
        return Tensor(xp.argmin(self.data, axis=axis))

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _ops.reshape(self, shape)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return _ops.transpose(self, axes or None)

    def squeeze(self, axis=None):
        return _ops.squeeze(self, axis)

    def unsqueeze(self, axis: int):
        return _ops.unsqueeze(self, axis)

    def flatten(self, start_axis: int = 0):
        return _ops.flatten(self, start_axis)

    def pad(self, pad_width, constant_values=0.0):
        return _ops.pad(self, pad_width, constant_values)

    def relu(self):
        return _ops.relu(self)

    def sigmoid(self):
        return _ops.sigmoid(self)

    def tanh(self):
        return _ops.tanh(self)

    def softmax(self, axis: int = -1):
        return _ops.softmax(self, axis)

    def log_softmax(self, axis: int = -1):
        return _ops.log_softmax(self, axis)


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """Create a :class:`Tensor` (``ember.tensor([1., 2.], requires_grad=True)``).

    Unlike ``Tensor(array)``, which wraps a NumPy array without copying, this always copies, so
    later changes to ``data`` never reach the tensor.

    Example:
        >>> ember.tensor([[1, 2], [3, 4]], dtype="float64").shape
        (2, 2)
    """
    array = _as_array(data, dtype)
    return Tensor(np.array(array, copy=True), requires_grad=requires_grad)


# --------------------------------------------------------------------------------------------
# The backward engine.
# --------------------------------------------------------------------------------------------
_FREED = object()  # marks a node whose graph was already consumed by a backward pass


def _topological_order(root: Tensor) -> list[Tensor]:
    """Nodes reachable from ``root`` that need a gradient, parents after children.

    Explicit-stack depth-first post-order: linear in the graph size, no recursion limit.
    """
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for parent in node._parents:
            if parent.requires_grad and id(parent) not in visited:
                stack.append((parent, False))
    order.reverse()
    return order


def _run_backward(root: Tensor, gradient, retain_graph: bool, targets):
    """Propagate from ``root``. With ``targets`` (a list of tensors), return their gradients
    instead of touching any ``.grad``."""
    if not isinstance(root, Tensor):
        raise TypeError(f"backward needs a Tensor, got {type(root).__name__}")
    if not root.requires_grad:
        raise RuntimeError(
            "this tensor does not require grad and has no graph: nothing to differentiate. "
            "Create the inputs with requires_grad=True (and not inside no_grad())"
        )
    if root._backward is _FREED:
        raise RuntimeError(_SECOND_BACKWARD)
    if gradient is None:
        if root.data.size != 1:
            raise RuntimeError(
                f"grad can be implicitly created only for scalar outputs; this tensor has shape "
                f"{root.shape}. Pass backward(gradient) with an array of that shape, or reduce "
                "it first (e.g. .sum() or .mean())"
            )
        seed = xp.ones_like(root.data)
    else:
        seed = _as_array(gradient)
        if seed.shape != root.shape:
            raise ValueError(
                f"backward(gradient): gradient has shape {seed.shape} but the tensor has shape "
                f"{root.shape}; they must match"
            )
        seed = seed.astype(root.dtype, copy=False)

    order = _topological_order(root)
    target_ids = None if targets is None else {id(t): i for i, t in enumerate(targets)}
    target_grads = None if targets is None else [None] * len(targets)
    grads: dict[int, np.ndarray] = {id(root): seed}

    for node in order:
        g = grads.pop(id(node), None)
        if target_ids is not None and id(node) in target_ids:
            i = target_ids[id(node)]
            target_grads[i] = g if target_grads[i] is None else target_grads[i] + g
        backward = node._backward
        if backward is None:  # a leaf
            if targets is None and g is not None:
                _accumulate_leaf(node, g)
            continue
        if backward is _FREED:
            raise RuntimeError(_SECOND_BACKWARD)
        if g is None:
            continue
        parent_grads = backward(g)
        for parent, pg in zip(node._parents, parent_grads):
            if pg is None or not parent.requires_grad:
                continue
            key = id(parent)
            previous = grads.get(key)
            # out-of-place: the same array may have been handed to a sibling (a + a)
            grads[key] = pg if previous is None else previous + pg
        if not retain_graph:
            node._parents = ()
            node._backward = _FREED
    return target_grads


def _accumulate_leaf(leaf: Tensor, g: np.ndarray) -> None:
    if g.shape != leaf.data.shape:  # an op returned a gradient of the wrong shape: our bug
        raise RuntimeError(
            f"internal error: gradient of shape {g.shape} for a tensor of shape {leaf.shape}"
        )
    if leaf.grad is None:
        # Always own the stored gradient: the engine may hand the same array to several leaves.
        leaf.grad = np.array(g, dtype=leaf.data.dtype, copy=True)
    else:
        leaf.grad += g


_SECOND_BACKWARD = (
    "trying to backward through the graph a second time (or directly access saved values after "
    "they have already been freed). Saved intermediate values of the graph are freed when you "
    "call backward(); specify backward(retain_graph=True) if you need to backward a second time"
)


def grad(output: Tensor, inputs: Sequence[Tensor], gradient=None, retain_graph: bool = False):
    """Gradients of ``output`` with respect to ``inputs``, without touching any ``.grad``.

    The functional form of Keras' ``GradientTape.gradient`` / ``torch.autograd.grad``. An input
    that ``output`` does not depend on gets a zero array.

    Example:
        >>> w = ember.tensor([1.0, 2.0], requires_grad=True)
        >>> loss = (w * w).sum()
        >>> (dw,) = ember.grad(loss, [w])
        >>> dw
        array([2., 4.], dtype=float32)
    """
    if isinstance(inputs, Tensor):
        raise TypeError("ember.grad expects a list of tensors as inputs, e.g. [w1, w2]")
    inputs = list(inputs)
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"inputs[{i}] is a {type(t).__name__}, expected an ember.Tensor")
    result = _run_backward(output, gradient, retain_graph, targets=inputs)
    return [
        xp.zeros_like(t.data) if g is None else g.astype(t.dtype, copy=False)
        for t, g in zip(inputs, result)
    ]


# The ops import Tensor from this module; importing them last breaks the cycle.
from ember import ops as _ops  # noqa: E402
