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

Version counters (in-place safety, PyTorch's mechanism). Every tensor carries a version number
that grows each time its data changes in place or is replaced: assigning ``t.data`` (so the
optimizer idiom ``p.data -= lr * g`` counts, through the property's setter), ``t[i] = v``, the
in-place operators ``+= -= *= /= **=``, ``Variable.assign*`` and ``_bump_version()`` (which
optimizers call after an update). When an op records the graph it remembers the versions of its
parents; before a node's backward runs, :meth:`Tensor.backward`, :func:`grad` and
``GradientTape.gradient`` compare them with the current ones and raise ``RuntimeError`` naming
the changed tensor if they differ, instead of silently computing a gradient from modified data.

This is deliberately a little stricter than PyTorch, which checks only the tensors an op actually
saved for its backward: Ember checks *every* parent of every node it runs, because its backward
closures read their inputs' ``.data`` when they run, and knowing which ones an op really needs
would mean annotating every op. The price is an occasional error where PyTorch would not raise
(changing ``x`` in place after ``y = x + 1`` but before ``y``'s backward); the fix is the same
in both cases: make the change after backward, or work on a ``clone()``.

``detach()`` shares both the data and the version counter with its source (as in PyTorch), so
an in-place change through a detached tensor is noticed as well; a tensor whose array is
replaced (``t.data = other``, or the copy made before writing into a read-only array) gets a
counter of its own, since it no longer shares memory with anything.
"""

from __future__ import annotations

import operator
import threading
from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np

from ember import tree as _tree
from ember._graph import topological_order
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
    "GradientTape",
]


class _GradMode(threading.local):
    enabled = True
    tapes: tuple = ()  # the GradientTapes open in this thread, innermost last
    # True while a backward pass returns the gradient of an intermediate (non-leaf) tensor: each
    # op must then hand its inputs their own gradients, with no pass fused across an op boundary
    # (e.g. a max pool passing on the gradient before the ReLU it follows)
    exact_intermediates = False


_grad_mode = _GradMode()

# Bumped together with every tensor's version: a node recorded at the current epoch has parents
# that cannot have changed, so backward compares versions only when the epoch has moved.
_epoch = [0]


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
        data = data._data
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


def _describe(t: Tensor) -> str:
    """``Parameter 'dense/kernel' (shape (3, 2), dtype float32)``, for error messages."""
    kind = "tensor" if type(t) is Tensor else type(t).__name__
    name = f" {t.name!r}" if t.name else ""
    origin = f", output of the op '{t._op}'" if t._op is not None else ""
    return f"{kind}{name} (shape {t.shape}, dtype {t.dtype}{origin})"


def _fill_zero(data: np.ndarray, value, out: np.ndarray) -> None:
    out.fill(0)


def _zeros_like(t: Tensor, value) -> Tensor:
    return Tensor(xp.zeros_like(t._data))


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    Args:
        data: anything ``np.asarray`` accepts (a list, a scalar, an array, another Tensor).
        requires_grad: record operations on this tensor so that ``backward`` can fill ``.grad``.
        dtype: ``"float32"`` or ``"float64"``. Default: float arrays keep float32/float64,
            Python floats and lists become float32, integer and bool data keep their dtype.

    In-place operators (``+= -= *= /= **=``, ``zero_()``) follow PyTorch's rules. When no graph
    is recorded for the operation (inside ``ember.no_grad()``, or when neither operand requires
    grad) they write into the tensor's own array (a copy first if it is read-only), keep its
    dtype, bump its version and return the same object, so ``with ember.no_grad(): p -= lr *
    p.grad`` updates the parameter ``p`` itself. While recording, a leaf that requires grad
    refuses (``RuntimeError``: updating it would corrupt its gradient), and any other tensor
    gets the out-of-place result: Python rebinds the name to a new tensor, so unlike PyTorch the
    object identity changes (the graph is right either way).

    Example:
        >>> x = ember.tensor([1.0, 2.0, 3.0], requires_grad=True)
        >>> y = (x * x).sum()
        >>> y.backward()
        >>> x.grad
        array([2., 4., 6.], dtype=float32)
        >>> with ember.no_grad():
        ...     x -= 0.5 * x.grad
        >>> x
        tensor([0., 0., 0.], requires_grad=True)
    """

    __slots__ = (
        "_data",
        "grad",
        "requires_grad",
        "name",
        "_parents",
        "_backward",
        "_op",
        "_producer",  # (kind, ...) an op leaves for a consumer that can fuse with it, or None
        "_keras_mask",  # (batch, time) bool array set by a masking layer on its output, or None
        "_version_counter",  # [int], shared with detach() copies and unrecorded views
        "_saved_versions",  # the parents' versions when the op was recorded (None: no check)
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
        self._data = data
        self._version_counter = [0]
        self._saved_versions = None
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.name = name
        self._parents = ()
        self._backward = None
        self._op = None
        self._producer = None
        self._keras_mask = None

    @classmethod
    def _from_op(cls, data, parents, backward, op: str) -> Tensor:
        """Wrap an op's result, recording the graph only when some parent needs a gradient."""
        out = cls.__new__(cls)
        out._data = data
        out._version_counter = [0]
        out.grad = None
        out.name = None
        out._producer = None
        out._keras_mask = None
        mode = _grad_mode
        record = False
        if mode.enabled:
            for parent in parents:  # a loop, not any(generator): this is the hottest path
                if parent.requires_grad:
                    record = True
                    break
        if record:
            out.requires_grad = True
            out._parents = parents
            out._backward = backward
            out._op = op
            # The parents' versions now: backward refuses to run if one changed in the meantime.
            # The first entry is the global epoch: if it has not moved by backward time, no
            # tensor anywhere has changed and the per-parent comparison is skipped.
            if len(parents) == 2:
                first, second = parents
                out._saved_versions = (
                    _epoch[0],
                    first._version_counter[0],
                    second._version_counter[0],
                )
            elif len(parents) == 1:
                out._saved_versions = (_epoch[0], parents[0]._version_counter[0])
            else:
                out._saved_versions = (_epoch[0], *[p._version_counter[0] for p in parents])
            # Saved arrays must not change before backward; freezing the fresh result makes an
            # accidental in-place write fail loudly instead of corrupting gradients.
            if isinstance(data, np.ndarray):
                data.flags.writeable = False
            if mode.tapes:
                _note_accessed(mode.tapes, parents)
        else:
            out.requires_grad = False
            out._parents = ()
            out._backward = None
            out._op = None
            out._saved_versions = None
            if type(data) is np.ndarray and data.base is not None:
                # An unrecorded view (slicing, reshape under no_grad) writes through to its
                # parent's array: share the parent's counter so such a write is noticed.
                base = data.base
                for parent in parents:
                    parent_data = parent._data
                    if parent_data is base or parent_data.base is base:
                        out._version_counter = parent._version_counter
                        break
        return out

    # ---------------------------------------------------------------- data and its version
    def _set_data(self, value) -> None:
        try:
            counter = self._version_counter
            if value is self._data:
                counter[0] += 1  # the same array, changed in place (`t.data -= x`)
                _epoch[0] += 1
                return
        except AttributeError:  # a bare Tensor.__new__ being filled in
            counter = None
        if not isinstance(value, np.ndarray):
            value = _as_array(value)
        self._data = value
        # A new array shares no memory with a detach() copy or a view: a counter of its own.
        self._version_counter = [0 if counter is None else counter[0] + 1]
        _epoch[0] += 1

    # The getter is a C-level attrgetter, not a Python function: ``.data`` is read by every op
    # and every backward (~30 reads per step of a small MLP), and this is the cheapest property
    # (measured: about 1% of such a step over a plain slot).
    data = property(
        operator.attrgetter("_data"),
        _set_data,
        doc="""The underlying NumPy array.

        Assigning it (``t.data = array``, or ``t.data -= lr * g``, which writes into the array
        and then assigns it back) bumps the tensor's version, so a graph that used the old value
        refuses to backpropagate instead of silently using the new one.
        """,
    )

    @property
    def _version(self) -> int:
        """How many times this tensor's data has been changed in place or replaced."""
        return self._version_counter[0]

    def _bump_version(self) -> None:
        """Record an in-place change of the data (optimizers call it after each update)."""
        self._version_counter[0] += 1
        _epoch[0] += 1

    def _writable_data(self) -> np.ndarray:
        """The array, copied first when it is read-only (a graph's saved array is never
        written); the copy gets a counter of its own."""
        data = self._data
        if not data.flags.writeable:
            data = data.copy()
            self._data = data
            self._version_counter = [self._version_counter[0]]
        return data

    # ---------------------------------------------------------------- basic properties
    @property
    def shape(self) -> tuple:
        return self._data.shape

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def size(self) -> int:
        return self._data.size

    @property
    def is_leaf(self) -> bool:
        """True for tensors created by the user (not by an op that recorded a graph)."""
        return self._backward is None

    @property
    def T(self) -> Tensor:  # noqa: N802 (NumPy's name)
        return _ops.transpose(self)

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self._data)

    def __repr__(self) -> str:
        body = np.array2string(self._data, separator=", ", prefix="tensor(")
        extra = ""
        if self._data.dtype != DEFAULT_FLOAT:
            extra += f", dtype={self._data.dtype}"
        if self._op is not None:
            extra += f", grad_fn={self._op}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (a writable copy when the array is frozen by a graph)."""
        return self._data if self._data.flags.writeable else self._data.copy()

    def item(self) -> float:
        """The value of a one-element tensor as a Python number."""
        if self._data.size != 1:
            raise ValueError(
                f"item() needs a tensor with exactly one element; this one has shape {self.shape}"
            )
        return self._data.item()

    def tolist(self):
        return self._data.tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        """An integer one-element tensor indexes a list (``classes[pred.argmax()]``)."""
        if self.dtype.kind not in "iub":
            raise TypeError(
                f"only integer tensors can be used as an index; this one has dtype {self.dtype}"
            )
        return int(self.item())

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise ValueError(
                f"the truth value of a tensor with {self._data.size} elements is ambiguous; "
                "use .any() or .all() on .numpy()"
            )
        return bool(self._data)

    def __array__(self, dtype=None, copy=None):
        return self._data if dtype is None else self._data.astype(dtype)

    def __hash__(self) -> int:
        return id(self)

    def astype(self, dtype) -> Tensor:
        """A copy converted to ``dtype`` (float dtypes keep the gradient flowing)."""
        return _ops.cast(self, dtype)

    def detach(self) -> Tensor:
        """A tensor sharing this one's data but cut from the graph (``requires_grad=False``).

        The data is shared, not copied, like PyTorch's ``detach``, and so is the version
        counter: changing the detached tensor in place changes this one too, and a graph that
        used this one notices. Use ``clone()`` (or ``ember.tensor(t)``) for an independent copy.
        """
        out = Tensor(self._data)
        out._version_counter = self._version_counter
        return out

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self._data.dtype.kind != "f":
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

    # ---------------------------------------------------------------- in-place changes
    def __setitem__(self, index, value) -> None:
        """``t[index] = value``: writes into the array (a copy first if it is read-only, so a
        graph's saved array never changes) and bumps the version."""
        if self.requires_grad and _grad_mode.enabled:
            raise RuntimeError(
                f"in-place assignment `t[...] = value` into {_describe(self)}, which requires "
                "grad, would make its gradient wrong; build a new tensor with ember.where or "
                "concatenate instead, or, for a leaf (e.g. to initialise a weight), assign inside "
                "`with ember.no_grad():`"
            )
        data = self._writable_data()
        data[index] = value._data if isinstance(value, Tensor) else value
        self._version_counter[0] += 1
        _epoch[0] += 1

    def _in_place(self, other, ufunc, out_of_place, symbol: str) -> Tensor:
        """The rule shared by ``+= -= *= /= **=`` (see the class docstring)."""
        if _grad_mode.enabled and (
            self.requires_grad or (isinstance(other, Tensor) and other.requires_grad)
        ):
            if self.requires_grad and self._backward is None:
                raise RuntimeError(
                    f"a leaf tensor that requires grad ({_describe(self)}) is used in an "
                    f"in-place operation `{symbol}`: that would overwrite a value gradients are "
                    "taken with respect to. Wrap the update in `with ember.no_grad():` (as an "
                    "optimizer step does), or for an ember.Variable call assign_add/assign_sub"
                )
            # Recording through a non-leaf: out of place (the caller's name is rebound to the
            # new tensor, which is what keeps the graph right).
            return out_of_place(self, other)
        value = other._data if isinstance(other, Tensor) else other
        shape = np.shape(value)
        if shape != self._data.shape and shape != ():
            try:
                fits = np.broadcast_shapes(shape, self._data.shape) == self._data.shape
            except ValueError:
                fits = False
            if not fits:
                raise ValueError(
                    f"in-place `{symbol}` on {_describe(self)} with an operand of shape {shape}: "
                    "the result would not have the tensor's shape; use the out-of-place form "
                    f"(`t = t {symbol[:-1]} other`) to get a broadcast result"
                )
        data = self._writable_data()
        try:
            ufunc(data, value, out=data)
        except TypeError as exc:  # NumPy's casting error: e.g. an int tensor /= 2
            raise TypeError(
                f"in-place `{symbol}` cannot store its result in {_describe(self)} (an in-place "
                f"operation keeps the dtype): {exc}. Use the out-of-place form or cast first "
                "with .astype('float32')"
            ) from None
        self._version_counter[0] += 1
        _epoch[0] += 1
        return self

    def __iadd__(self, other):
        """``t += other``: in place when no graph is recorded, see :meth:`_in_place`."""
        return self._in_place(other, np.add, _ops.add, "+=")

    def __isub__(self, other):
        return self._in_place(other, np.subtract, _ops.sub, "-=")

    def __imul__(self, other):
        return self._in_place(other, np.multiply, _ops.mul, "*=")

    def __itruediv__(self, other):
        return self._in_place(other, np.true_divide, _ops.div, "/=")

    def __ipow__(self, other):
        return self._in_place(other, np.power, _ops.power, "**=")

    def zero_(self) -> Tensor:
        """Set every element to 0 in place (PyTorch's ``zero_``); same rules as ``-=``.

        Example:
            >>> t = ember.tensor([1.0, 2.0])
            >>> t.zero_()
            tensor([0., 0.])
        """
        return self._in_place(0, _fill_zero, _zeros_like, "zero_()")

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

    # dim= / keepdim= are PyTorch's spellings of axis= / keepdims= (see docs/aliases.md)
    def sum(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None):
        return _ops.sum(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def mean(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None):
        return _ops.mean(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def max(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None):
        return _ops.max(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def min(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None):
        return _ops.min(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def var(self, axis=None, keepdims: bool = False, ddof: int = 0, *, dim=None, keepdim=None):
        return _ops.var(self, axis, keepdims, ddof, dim=dim, keepdim=keepdim)

    def argmax(self, axis=None):
        return Tensor(xp.argmax(self._data, axis=axis))

    def argmin(self, axis=None):
        return Tensor(xp.argmin(self._data, axis=axis))

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

    # ---- PyTorch / Keras spellings (docs/aliases.md lists every alias Ember accepts)
    def square(self) -> Tensor:
        """``self * self`` (:func:`ember.square`).

        Example:
            >>> ember.tensor([-2.0, 3.0]).square()
            tensor([4., 9.])
        """
        return _ops.square(self)

    def pow(self, exponent) -> Tensor:
        """``self ** exponent`` (PyTorch's name; :func:`ember.pow`).

        Example:
            >>> ember.tensor([2.0, 3.0]).pow(2)
            tensor([4., 9.])
        """
        return _ops.pow(self, exponent)

    def sin(self) -> Tensor:
        """Sine (:func:`ember.sin`).

        Example:
            >>> ember.tensor([0.0]).sin()
            tensor([0.])
        """
        return _ops.sin(self)

    def cos(self) -> Tensor:
        """Cosine (:func:`ember.cos`).

        Example:
            >>> ember.tensor([0.0]).cos()
            tensor([1.])
        """
        return _ops.cos(self)

    def tan(self) -> Tensor:
        """Tangent (:func:`ember.tan`).

        Example:
            >>> ember.tensor([0.0]).tan()
            tensor([0.])
        """
        return _ops.tan(self)

    def log1p(self) -> Tensor:
        """``log(1 + self)``, accurate near 0 (:func:`ember.log1p`).

        Example:
            >>> ember.tensor([0.0]).log1p()
            tensor([0.])
        """
        return _ops.log1p(self)

    def expm1(self) -> Tensor:
        """``exp(self) - 1``, accurate near 0 (:func:`ember.expm1`).

        Example:
            >>> ember.tensor([0.0]).expm1()
            tensor([0.])
        """
        return _ops.expm1(self)

    def reciprocal(self) -> Tensor:
        """``1 / self`` (:func:`ember.reciprocal`).

        Example:
            >>> ember.tensor([4.0]).reciprocal()
            tensor([0.25])
        """
        return _ops.reciprocal(self)

    def clone(self) -> Tensor:
        """A copy that stays in the graph (the gradient flows back); ``detach()`` leaves it.

        Example:
            >>> x = ember.tensor([1.0, 2.0], requires_grad=True)
            >>> x.clone().sum().backward(); x.grad
            array([1., 1.], dtype=float32)
        """
        return _ops.clone(self)

    def view(self, *shape) -> Tensor:
        """PyTorch's name for :meth:`reshape` (``x.view(2, -1)``, ``x.view((2, -1))``).

        Unlike PyTorch's ``view``, the result is not promised to share memory with ``self``.

        Example:
            >>> ember.arange(6).view(2, -1).shape
            (2, 3)
        """
        return self.reshape(*shape)

    def numel(self) -> int:
        """The number of elements (PyTorch's name for ``size``).

        Example:
            >>> ember.zeros(2, 3).numel()
            6
        """
        return self.data.size

    def dim(self) -> int:
        """The number of dimensions (PyTorch's name for ``ndim``).

        Example:
            >>> ember.zeros(2, 3).dim()
            2
        """
        return self.data.ndim

    def float(self) -> Tensor:
        """This tensor as float32 (itself when it already is); the gradient flows through.

        Example:
            >>> ember.arange(3).float()
            tensor([0., 1., 2.])
        """
        return _ops.cast(self, np.float32)

    def double(self) -> Tensor:
        """This tensor as float64 (itself when it already is); the gradient flows through.

        Example:
            >>> ember.tensor([1.0]).double().dtype
            dtype('float64')
        """
        return _ops.cast(self, np.float64)

    def to(self, device=None, dtype=None) -> Tensor:
        """PyTorch's ``x.to(device)``: Ember computes on the CPU, so ``"cpu"`` (or ``None``)
        returns the tensor itself; another device is an error. ``dtype=`` casts.

        Example:
            >>> x = ember.ones((2,))
            >>> x.to("cpu") is x
            True
        """
        check_device(device)
        return self if dtype is None else _ops.cast(self, dtype)


def check_device(device) -> None:
    """Accept the CPU (the only device Ember computes on), refuse any other clearly."""
    name = str(device).split(":")[0] if device is not None else "cpu"
    if name != "cpu":
        raise ValueError(
            f"Ember computes on the CPU with NumPy; device {device!r} is not available. Use "
            "'cpu' (e.g. device = 'cpu' where PyTorch code picks 'cuda' or 'mps')"
        )


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


_parents_of = operator.attrgetter("_parents")


def _note_accessed(tapes: tuple, parents) -> None:
    """Called by a recording op while a tape is open: remember the leaves it read."""
    for parent in parents:
        if parent.requires_grad and parent._backward is None:
            for tape in tapes:
                if tape._watch_accessed:
                    tape._variables.setdefault(id(parent), parent)


def _version_error(node: Tensor, parent: Tensor, recorded: int) -> RuntimeError:
    return RuntimeError(
        "a tensor needed to compute the gradient was modified in place after it was used: "
        f"{_describe(parent)}, an input of the op '{node._op}', was at version {recorded} when "
        f"the op recorded it and is at version {parent._version_counter[0]} now (changed by "
        "`.data = ...` or `.data -= ...`, `t[i] = v`, an in-place operator such as `+=`, "
        "Variable.assign* or an optimizer step). Make the change after backward() / "
        "tape.gradient(), or give the op a copy made with .clone() and change the original "
        "(a .detach()ed tensor shares the data and its version, so changing it counts as "
        "changing the original)"
    )


def _seed(root: Tensor, gradient, implicit_ones: bool) -> np.ndarray:
    if gradient is None:
        if root._data.size != 1 and not implicit_ones:
            raise RuntimeError(
                f"grad can be implicitly created only for scalar outputs; this tensor has shape "
                f"{root.shape}. Pass backward(gradient) with an array of that shape, or reduce "
                "it first (e.g. .sum() or .mean())"
            )
        return xp.ones_like(root._data)
    seed = _as_array(gradient)
    if seed.shape != root.shape:
        raise ValueError(
            f"the upstream gradient has shape {seed.shape} but the tensor it is for has shape "
            f"{root.shape}; they must match"
        )
    return seed.astype(root.dtype, copy=False)


def _run_backward(root: Tensor, gradient, retain_graph: bool, targets, prune: bool = True):
    """Propagate from ``root``. With ``targets`` (a list of tensors), return a dict from
    ``id(target)`` to its gradient instead of touching any ``.grad``. ``prune=False`` (for a
    caller that knows every leaf needing a gradient is a target, as ``fit`` does when no weight
    is frozen) runs the whole graph and skips the pass that finds the nodes to leave out."""
    if not isinstance(root, Tensor):
        raise TypeError(f"backward needs a Tensor, got {type(root).__name__}")
    if not root.requires_grad:
        raise RuntimeError(
            "this tensor does not require grad and has no graph: nothing to differentiate. "
            "Create the inputs with requires_grad=True (and not inside no_grad())"
        )
    if root._backward is _FREED:
        raise RuntimeError(_SECOND_BACKWARD)
    return _propagate([root], [_seed(root, gradient, False)], retain_graph, targets, prune)


def _propagate(
    roots: list, seeds: list, retain_graph: bool, targets, prune: bool = True
) -> dict | None:
    """The engine: reverse topological order from ``roots`` (each requiring grad), seeded with
    ``seeds``. Without ``targets`` every leaf's ``.grad`` accumulates; with ``targets`` only the
    nodes from which some target is reachable run their backward (the rest of the graph is
    neither run nor freed) and the targets' gradients are returned by ``id``."""
    # Dependencies first. Parents that need no gradient are walked too (constants are leaves,
    # so this costs one visit each), which lets a C-level attrgetter list the dependencies.
    order = topological_order(roots, _parents_of)
    grads: dict[int, np.ndarray] = {}
    for root, seed in zip(roots, seeds):
        previous = grads.get(id(root))
        grads[id(root)] = seed if previous is None else previous + seed
    wanted = None
    needed: set[int] = set()
    results: dict[int, np.ndarray] = {}
    if targets is not None:
        wanted = {id(t) for t in targets}
    if targets is not None and prune:
        for node in order:  # parents come first, so `needed` is complete for them
            for parent in node._parents:
                key = id(parent)
                if parent.requires_grad and (key in wanted or key in needed):
                    needed.add(id(node))
                    break

    exact = targets is not None and any(t._backward is not None for t in targets)
    previous_exact, _grad_mode.exact_intermediates = _grad_mode.exact_intermediates, exact
    try:
        _backward_in_order(order, grads, wanted, needed, results, retain_graph, prune)
    finally:
        _grad_mode.exact_intermediates = previous_exact
    return results if wanted is not None else None


def _backward_in_order(order, grads, wanted, needed, results, retain_graph, prune) -> None:
    """Run the backward closures from the last node of ``order`` to the first (``_propagate``'s
    loop: ``grads`` holds the pending gradients by ``id``, ``results`` receives the targets')."""
    epoch = _epoch[0]  # no version changes during a backward pass
    for node in reversed(order):
        key = id(node)
        g = grads.pop(key, None)
        if g is None:
            continue
        if wanted is not None and key in wanted:
            results[key] = g
        backward = node._backward
        if backward is None:  # a leaf
            if wanted is None:
                _accumulate_leaf(node, g)
            continue
        if prune and wanted is not None and key not in needed:
            # No target below this node: skip it (and keep its graph). A freed node has lost
            # its parents, so whether a target lies below is unknown: refuse, unless it is
            # itself a target (its own gradient is complete).
            if backward is _FREED and key not in wanted:
                raise RuntimeError(_SECOND_BACKWARD)
            continue
        if backward is _FREED:
            raise RuntimeError(_SECOND_BACKWARD)
        saved = node._saved_versions
        if saved is not None and saved[0] != epoch:  # something changed since it was recorded
            for parent, recorded in zip(node._parents, saved[1:]):
                if parent._version_counter[0] != recorded:
                    raise _version_error(node, parent, recorded)
        parent_grads = backward(g)
        for parent, pg in zip(node._parents, parent_grads):
            if pg is None or not parent.requires_grad:
                continue
            parent_key = id(parent)
            previous = grads.get(parent_key)
            # out-of-place: the same array may have been handed to a sibling (a + a)
            grads[parent_key] = pg if previous is None else previous + pg
        if not retain_graph:
            node._parents = ()
            node._backward = _FREED
            node._saved_versions = None


def _accumulate_leaf(leaf: Tensor, g: np.ndarray) -> None:
    if g.shape != leaf._data.shape:  # an op returned a gradient of the wrong shape: our bug
        raise RuntimeError(
            f"internal error: gradient of shape {g.shape} for a tensor of shape {leaf.shape}"
        )
    if leaf.grad is None:
        # Always own the stored gradient: the engine may hand the same array to several leaves.
        leaf.grad = np.array(g, dtype=leaf._data.dtype, copy=True)
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
    that ``output`` does not depend on gets a zero array. Only the part of the graph between
    ``output`` and ``inputs`` runs (and, without ``retain_graph``, is freed).

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
    grads = [result.get(id(t)) for t in inputs]
    return [
        xp.zeros_like(t._data) if g is None else g.astype(t.dtype, copy=False)
        for t, g in zip(inputs, grads)
    ]


class GradientTape:
    """TensorFlow's ``GradientTape``: record a computation, then ask for its gradients.

    Ember records the graph whenever an input requires grad, tape or not, so the tape's work
    is to *watch* plain tensors and to return gradients without touching any ``.grad``:

    * ``tape.watch(t)`` makes a tensor that does not require grad (a constant, an input batch)
      record from now on: it requires grad for the tape's lifetime and is restored when the
      ``with`` block ends. Only floating-point tensors can be watched (``TypeError``).
    * ``tape.gradient(target, sources)`` returns ember Tensors (without graph) in the structure
      of ``sources`` (one tensor, or a list/tuple/dict of them), ``None`` for a source the
      target does not depend on (TF's behaviour; ``unconnected_gradients="zero"`` gives zeros,
      and :func:`ember.grad` always does). A non-scalar target is summed (its gradient seeded
      with ones), and a structure of targets sums their gradients, as in TF; pass
      ``output_gradients`` (same structure and shapes as ``target``) to weight them.
      Only the part of the graph between the targets and the sources runs.
    * A tape that is not ``persistent`` can compute gradients once: the graph it ran is freed
      and a second call raises ``RuntimeError``. A persistent tape keeps the graph
      (``retain_graph``) for further calls. The graph belongs to the tensors, not to the tape:
      the tape holds no reference to it, so it is released as soon as the target tensors are
      (leaving the function, rebinding ``loss`` in the next iteration, ``del``). Nested tapes
      share that one graph, so an inner tape whose nodes an outer tape will need again must be
      persistent.
    * Entering the tape turns graph recording on (even inside ``ember.no_grad()``, since a
      tape always records); use ``ember.no_grad()`` inside the block to pause it.

    ``watch_accessed_variables`` approximates TensorFlow's. With ``True`` (the default), every
    leaf that requires grad read by an op inside the block (parameters, trainable
    :class:`ember.Variable` s, ``requires_grad=True`` tensors) is "accessed" and listed
    by :meth:`watched_variables`; gradients flow to any tensor that requires grad, even one only
    used before the ``with`` block (where TensorFlow would return ``None``), because Ember's
    graph does not depend on the tape. With ``False`` only explicitly watched tensors count: a
    leaf source that requires grad but was not watched gets ``None``. Ember still records ops on
    such leaves (it cannot tell an op "inside the tape" apart), so a gradient with respect to an
    intermediate tensor computed from them is computed, where TensorFlow would return ``None``.

    Non-trainable :class:`ember.Variable` s do not require grad: like in TF they are
    constants for the tape unless watched. Gradients are first-order only (the returned
    tensors carry no graph).

    A source may be any tensor of the graph, not only a leaf: after ``w = w - lr * dw`` (a
    rebinding, where TensorFlow code would write ``w.assign_sub(lr * dw)``) ``w`` is the output
    of an op, and the next step's ``tape.gradient(loss, w)`` stops at it. That loop works, but
    every ``w`` keeps the previous one alive through the graph (and each step walks that
    history once), so prefer ``w.assign_sub(lr * dw)`` or an update under ``ember.no_grad()``.

    Example:
        >>> x = ember.tensor([1.0, 2.0, 3.0])
        >>> with ember.GradientTape() as tape:
        ...     tape.watch(x)
        ...     y = (x * x).sum()
        >>> tape.gradient(y, x)
        tensor([2., 4., 6.])
        >>> x.requires_grad  # restored when the block ended
        False
        >>> w = ember.tensor([[1.0], [2.0]], requires_grad=True)
        >>> b = ember.tensor([0.5], requires_grad=True)
        >>> with ember.GradientTape(persistent=True) as tape:
        ...     loss = ((np.ones((4, 2), np.float32) @ w + b) ** 2).mean()
        >>> grads = tape.gradient(loss, {"w": w, "b": b})
        >>> grads["b"]
        tensor([7.])
        >>> tape.gradient(loss, [w, ember.tensor([1.0], requires_grad=True)])
        [tensor([[7.],
               [7.]]), None]
    """

    def __init__(self, persistent: bool = False, watch_accessed_variables: bool = True):
        self._persistent = bool(persistent)
        self._watch_accessed = bool(watch_accessed_variables)
        self._watched: dict[int, Tensor] = {}  # explicitly watched, in order
        self._variables: dict[int, Tensor] = {}  # watched or accessed, in order
        self._turned_on: dict[int, Tensor] = {}  # tensors whose requires_grad watch() set
        self._recording = False
        self._used = False
        self._grad_mode_before = True

    def __repr__(self) -> str:
        return (
            f"GradientTape(persistent={self._persistent}, "
            f"watch_accessed_variables={self._watch_accessed})"
        )

    def __enter__(self) -> GradientTape:
        if self._recording:
            raise RuntimeError("this GradientTape is already recording (nested `with tape:`)")
        mode = _grad_mode
        self._grad_mode_before = mode.enabled
        mode.enabled = True
        mode.tapes = (*mode.tapes, self)
        self._recording = True
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        mode = _grad_mode
        mode.tapes = tuple(t for t in mode.tapes if t is not self)
        mode.enabled = self._grad_mode_before
        self._recording = False
        for key, tensor in self._turned_on.items():
            # Another open tape that watches it keeps it recording (and restores it later).
            heir = next((t for t in mode.tapes if key in t._watched), None)
            if heir is not None:
                heir._turned_on[key] = tensor
            elif tensor._backward is None:
                tensor.requires_grad = False
        self._turned_on = {}

    def watch(self, tensor) -> None:
        """Record operations on ``tensor`` (a Tensor, or a list/tuple/dict of them) from now on.

        Example:
            >>> c = ember.tensor(3.0)
            >>> with ember.GradientTape() as tape:
            ...     tape.watch(c)
            ...     y = c * c
            >>> tape.gradient(y, c)
            tensor(6.)
        """
        if not self._recording:
            raise RuntimeError(
                "GradientTape.watch() must be called inside the tape's block: "
                "`with ember.GradientTape() as tape: tape.watch(x)`"
            )
        for i, t in enumerate(_tree.flatten(tensor)):
            if not isinstance(t, Tensor):
                raise TypeError(
                    f"GradientTape.watch expects ember Tensors (or a list/tuple/dict of them); "
                    f"item {i} is a {type(t).__name__}. Wrap arrays with ember.tensor(...) first"
                )
            if t.dtype.kind != "f":
                raise TypeError(
                    f"GradientTape.watch: cannot watch {_describe(t)}; only floating-point "
                    "tensors have gradients. Cast it first, e.g. t.astype('float32')"
                )
            self._watched.setdefault(id(t), t)
            self._variables.setdefault(id(t), t)
            if not t.requires_grad:
                t.requires_grad = True  # a tensor without grad is a leaf
                self._turned_on[id(t)] = t

    def watched_variables(self) -> tuple:
        """The tensors watched explicitly or (``watch_accessed_variables=True``) leaves that
        require grad read by an op inside the block, in the order they were first seen.

        Example:
            >>> w = ember.tensor([1.0], requires_grad=True)
            >>> with ember.GradientTape() as tape:
            ...     y = w * 2.0
            >>> len(tape.watched_variables()), tape.watched_variables()[0] is w
            (1, True)
        """
        return tuple(self._variables.values())

    def gradient(
        self,
        target,
        sources,
        output_gradients=None,
        unconnected_gradients: str = "none",
    ):
        """Gradients of ``target`` (summed over its elements, and over several targets) with
        respect to ``sources``, as ember Tensors in the structure of ``sources``.

        Args:
            target: a Tensor, or a list/tuple/dict of them.
            sources: a Tensor, or a list/tuple/dict of them.
            output_gradients: upstream gradients, one per target (same structure and shapes);
                default ones.
            unconnected_gradients: ``"none"`` (TF's default: ``None`` for a source the target
                does not depend on) or ``"zero"``.

        Example:
            >>> w = ember.tensor([1.0, 2.0], requires_grad=True)
            >>> with ember.GradientTape() as tape:
            ...     y = w * w  # not a scalar: its elements are summed
            >>> tape.gradient(y, [w])
            [tensor([2., 4.])]
        """
        if self._used:
            raise RuntimeError(
                "this GradientTape is not persistent and has already computed gradients (and "
                "freed the graph it used). Call gradient() once per non-persistent tape, or "
                "create it with ember.GradientTape(persistent=True)"
            )
        if unconnected_gradients not in ("none", "zero"):
            raise ValueError(
                f"unconnected_gradients must be 'none' or 'zero', got {unconnected_gradients!r}"
            )
        targets = _tree.flatten(target)
        if not targets:
            raise ValueError("GradientTape.gradient: target is empty")
        for i, t in enumerate(targets):
            if not isinstance(t, Tensor):
                raise TypeError(
                    f"GradientTape.gradient: target item {i} is a {type(t).__name__}, expected "
                    "an ember Tensor (compute the loss with ember ops inside the tape)"
                )
        if output_gradients is None:
            upstream = [None] * len(targets)
        else:
            upstream = _tree.flatten(output_gradients)
            if len(upstream) != len(targets):
                raise ValueError(
                    f"GradientTape.gradient: {len(upstream)} output_gradients for "
                    f"{len(targets)} targets; give one per target"
                )
        flat_sources = _tree.flatten(sources)
        for i, s in enumerate(flat_sources):
            if not isinstance(s, Tensor):
                raise TypeError(
                    f"GradientTape.gradient: source {i} is a {type(s).__name__}, expected an "
                    "ember Tensor (a Variable, a parameter or a watched tensor)"
                )
        roots, seeds = [], []
        for t, g in zip(targets, upstream):
            if g is None:
                seed = _seed(t, None, True)
            else:
                seed = _seed(t, g.numpy() if isinstance(g, Tensor) else g, False)
            if t.requires_grad:  # a constant target contributes no gradient
                if t._backward is _FREED:
                    raise RuntimeError(_SECOND_BACKWARD)
                roots.append(t)
                seeds.append(seed)
        if not self._persistent:
            self._used = True
        # Watched tensors whose requires_grad was restored when the block ended.
        revived = [t for t in self._watched.values() if not t.requires_grad and t.is_leaf]
        for t in revived:
            t.requires_grad = True
        try:
            found = _propagate(roots, seeds, self._persistent, flat_sources) if roots else {}
        finally:
            for t in revived:
                t.requires_grad = False
        results, owned = [], {id(s) for s in seeds}
        for s in flat_sources:
            g = found.get(id(s))
            if g is not None and not self._watch_accessed and s.is_leaf:
                if id(s) not in self._watched:
                    g = None  # an unwatched variable: not recorded, in TF's terms
            if g is None:
                results.append(
                    Tensor(xp.zeros_like(s._data)) if unconnected_gradients == "zero" else None
                )
                continue
            g = g.astype(s.dtype, copy=False)
            if not g.flags.writeable or id(g) in owned:
                g = g.copy()  # every returned tensor owns its own, writable array
            owned.add(id(g))
            results.append(Tensor(g))
        return _tree.pack_sequence_as(sources, results)


# Tensor's operators and methods call the ops through this module variable, which ember.ops sets
# when it is imported (ember/__init__.py imports it right after this module): the ops import
# Tensor, and this module never imports the ops, so the import graph has no cycle.
_ops = None
