"""Numerically stable building blocks of classifiers: softmax family and fused cross-entropies.

Every exponential here is of a non-positive number (inputs are shifted by their maximum or
folded through ``-|x|``), so logits of ±1000 never overflow, and the fused losses have the exact
gradient ``softmax(z) - y`` (or ``sigmoid(z) - y``).
"""

from __future__ import annotations

import numpy as np

from ember.backend import xp
from ember.ops._core import takes_tensor
from ember.ops.elementwise import stable_sigmoid
from ember.ops.graph import _sum_rows
from ember.tensor import Tensor


def _shown(value) -> object:
    """A label or target as it should read in a message: ``10``, ``-1``, ``0.5``, ``nan``."""
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def check_class_labels(name: str, labels, num_classes: int) -> np.ndarray:
    """Integer class labels ``(N,)`` (from ints or whole floats), each in ``[0, num_classes)``.

    Shared by the fused op :func:`sparse_softmax_cross_entropy` and the losses built on it, so
    that a bad label fails the same way wherever it enters. ``-1`` is rejected like ``10``:
    NumPy would silently read it as the last class. One vectorized pass (min / max) on valid
    labels; the first offender is located only when there is one.

    Args:
        name: what to name in the message (the loss or the op).
        labels: array-like of class indices, any shape (it is flattened).
        num_classes: the number of classes (columns of the logits).

    Returns:
        The labels as a flat ``np.intp`` array.

    Example:
        >>> ember.ops.nn.check_class_labels("my_loss", np.array([0.0, 2.0]), 3)
        array([0, 2])
        >>> ember.ops.nn.check_class_labels("my_loss", [0, 3], 3)
        Traceback (most recent call last):
        ...
        ValueError: my_loss: label 3 is outside the valid range [0, 3) (first bad label at index...
    """
    labels = np.asarray(labels.data if isinstance(labels, Tensor) else labels).reshape(-1)
    if labels.dtype.kind not in "biuf":
        raise TypeError(
            f"{name}: labels must be integers (class indices), got dtype {labels.dtype}; "
            "convert them with np.asarray(labels, dtype=int)"
        )
    if labels.dtype.kind == "f" and not np.array_equal(labels, np.rint(labels)):
        bad = int(np.flatnonzero(labels != np.rint(labels))[0])  # NaN != NaN: found too
        raise ValueError(
            f"{name}: labels must be whole class indices; label at index {bad} is "
            f"{_shown(labels[bad])!r}. Round or cast the labels to integers"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = int(np.flatnonzero((labels < 0) | (labels >= num_classes))[0])
        raise ValueError(
            f"{name}: label {_shown(labels[bad])} is outside the valid range [0, {num_classes}) "
            f"(first bad label at index {bad}); labels must be class indices "
            f"0..{num_classes - 1} for {num_classes} classes: check the labels, or the number "
            "of outputs of the last layer"
        )
    return labels.astype(np.intp, copy=False)


def check_binary_targets(name: str, targets: np.ndarray) -> None:
    """Raise ``ValueError`` for binary cross-entropy targets that are label mistakes: a whole
    number other than 0 and 1 (labels in {-1, 1}, class ids) or a NaN/infinity.

    Fractional targets are used as given, even slightly outside ``[0, 1]``, as Keras and PyTorch
    do: Keras' DCGAN guide adds ``0.05 * uniform`` noise to labels of 1. One vectorized pass
    (min / max) when every target lies in ``[0, 1]``; the first bad value is located only when
    there is one.

    Example:
        >>> ember.ops.nn.check_binary_targets("my_loss", np.array([0.0, 0.3, 1.0, 1.04]))
        >>> ember.ops.nn.check_binary_targets("my_loss", np.array([[0.0, 1.0], [-1.0, 1.0]]))
        Traceback (most recent call last):
        ...
        ValueError: my_loss: targets (y_true) must be probabilities in [0, 1]; got -1 at index...
    """
    if not targets.size:
        return
    low, high = targets.min(), targets.max()
    if low >= 0 and high <= 1:  # False for NaN
        return
    outside = (targets < 0) | (targets > 1)
    mistaken = ~np.isfinite(targets) | (outside & (targets == np.round(targets)))
    if not mistaken.any():
        return  # noisy or smoothed labels just outside [0, 1]
    bad = np.unravel_index(int(np.flatnonzero(mistaken)[0]), targets.shape)
    where = f" at index {int(bad[0]) if len(bad) == 1 else tuple(int(i) for i in bad)}"
    raise ValueError(
        f"{name}: targets (y_true) must be probabilities in [0, 1]; got {_shown(targets[bad])}"
        f"{where if bad else ''}. Labels in {{-1, 1}} map to {{0, 1}} with (y + 1) / 2; class "
        "ids need a categorical loss; for other values use a regression loss such as 'mse'"
    )


def _as_targets(targets, dtype) -> np.ndarray:
    """Targets as an array of the logits' dtype: float64 targets must not up-cast float32."""
    return np.asarray(targets.data if isinstance(targets, Tensor) else targets, dtype=dtype)


def _safe_max(z: np.ndarray, axis: int) -> np.ndarray:
    m = z.max(axis=axis, keepdims=True)
    if not xp.isfinite(m).all():
        # An all -inf row stays NaN (as PyTorch); a +inf entry is handled like a huge value.
        m = xp.where(xp.isfinite(m), m, 0)
    return m


def _shifted(z: np.ndarray, axis: int):
    return z - _safe_max(z, axis)


@takes_tensor
def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along ``axis``, computed from ``x - max(x)``.

    A row of all ``-inf`` gives NaN, as ``torch.softmax`` does (documented choice; masked attention
    will use a safe variant).
    """
    shifted = _shifted(x.data, axis)
    with np.errstate(invalid="ignore"):
        e = xp.exp(shifted)
        out = e / e.sum(axis=axis, keepdims=True)

    def backward(g):
        # J^T g for softmax: y * (g - sum(g * y))
        return (out * (g - (g * out).sum(axis=axis, keepdims=True)),)

    result = Tensor._from_op(out, (x,), backward, "softmax")
    result._producer = ("softmax", x, axis)
    return result


@takes_tensor
def logsumexp(x: Tensor, axis: int = -1, keepdims: bool = False) -> Tensor:
    m = _safe_max(x.data, axis)  # keepdims shape, so that `s + m` stays reduced
    shifted = x.data - m
    s = xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
    out = s + m

    def backward(g):
        if not keepdims:
            g = xp.expand_dims(g, axis)
        return (g * xp.exp(shifted - s),)

    return Tensor._from_op(out if keepdims else out.squeeze(axis), (x,), backward, "logsumexp")


@takes_tensor
def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """x - logsumexp(x): exact for huge logits (``[1000, 0, -1000]`` → ``[0, -1000, -2000]``)."""
    shifted = _shifted(x.data, axis)
    out = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))

    def backward(g):
        return (g - xp.exp(out) * g.sum(axis=axis, keepdims=True),)

    return Tensor._from_op(out, (x,), backward, "log_softmax")


@takes_tensor
def sparse_softmax_cross_entropy(
    logits: Tensor, labels: np.ndarray, *, name: str = "sparse_softmax_cross_entropy"
) -> Tensor:
    """Per-sample ``-log softmax(logits)[label]`` for logits ``(N, C)`` and int labels ``(N,)``.

    Never forms ``log(softmax)``; the gradient is ``softmax - onehot`` times the upstream value.
    Labels are checked by :func:`check_class_labels` (``-1`` or ``C`` raise ``ValueError``
    instead of reading the wrong class); ``name`` is what the error messages name.

    Example:
        >>> logits = ember.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 3.0]])
        >>> ember.ops.sparse_softmax_cross_entropy(logits, [0, 2])
        tensor([0.1698..., 0.0949...])
        >>> ember.ops.sparse_softmax_cross_entropy(logits, [0, 3])
        Traceback (most recent call last):
        ...
        ValueError: sparse_softmax_cross_entropy: label 3 is outside the valid range [0, 3) ...
    """
    z = logits.data
    if z.ndim != 2:
        raise ValueError(f"{name}: logits must be (batch, classes), got shape {z.shape}")
    labels = check_class_labels(name, labels, z.shape[1])
    if labels.shape[0] != z.shape[0]:
        raise ValueError(
            f"{name}: expected one label per row of the logits ({z.shape[0]}), got "
            f"{labels.shape[0]}"
        )
    shifted = _shifted(z, -1)
    lse = xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))
    rows = xp.arange(z.shape[0])
    out = lse[:, 0] - shifted[rows, labels]

    def backward(g):
        grad = xp.exp(shifted - lse)
        grad[rows, labels] -= 1
        grad *= g[:, None]
        return (grad,)

    return Tensor._from_op(out, (logits,), backward, "sparse_softmax_cross_entropy")


@takes_tensor
def softmax_cross_entropy(logits: Tensor, targets: np.ndarray, axis: int = -1) -> Tensor:
    """Per-sample ``-sum(y * log softmax(z))`` for target distributions ``y`` (one-hot or soft)."""
    z = logits.data
    targets = _as_targets(targets, z.dtype)
    shifted = _shifted(z, axis)
    lse = xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
    log_p = shifted - lse
    # 0 * (-inf) must count as 0: a class with zero target weight contributes nothing.
    out = -xp.where(targets != 0, targets * log_p, 0).sum(axis=axis)

    def backward(g):
        g = xp.expand_dims(g, axis)
        return (g * (xp.exp(log_p) * targets.sum(axis=axis, keepdims=True) - targets),)

    return Tensor._from_op(
        out.astype(z.dtype, copy=False), (logits,), backward, "softmax_cross_entropy"
    )


@takes_tensor
def sigmoid_binary_cross_entropy(
    logits: Tensor, targets: np.ndarray, *, name: str = "sigmoid_binary_cross_entropy"
) -> Tensor:
    """Elementwise ``-(y log σ(z) + (1-y) log(1-σ(z)))`` as ``max(z,0) - z y + log1p(e^-|z|)``.

    Targets are probabilities in ``[0, 1]`` (label mistakes are refused by
    :func:`check_binary_targets`; ``name`` is what the error message names).

    Example:
        >>> ember.ops.sigmoid_binary_cross_entropy(ember.tensor([3.0, -3.0]), [1.0, 0.0])
        tensor([0.0485..., 0.0485...])
    """
    z = logits.data
    targets = _as_targets(targets, z.dtype)
    check_binary_targets(name, targets)
    out = xp.maximum(z, 0) - z * targets + xp.log1p(xp.exp(-xp.abs(z)))

    def backward(g):
        return (g * (stable_sigmoid(z) - targets),)

    return Tensor._from_op(
        out.astype(z.dtype, copy=False), (logits,), backward, "sigmoid_binary_cross_entropy"
    )


def check_indices(name: str, indices, size: int) -> np.ndarray:
    """Integer indices (from ints or whole floats), each in ``[0, size)``, as an ``np.intp`` array
    of the same shape. ``-1`` is rejected like ``size``: NumPy would read it as the last row.

    Example:
        >>> ember.ops.nn.check_indices("Embedding", [[1, 0]], 3)
        array([[1, 0]])
        >>> ember.ops.nn.check_indices("Embedding", [3], 3)
        Traceback (most recent call last):
        ...
        ValueError: Embedding: index 3 is outside the valid range [0, 3) (first bad index at...
    """
    array = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
    if array.dtype.kind == "f" and np.array_equal(array, np.rint(array)):
        array = array.astype(np.intp)  # whole floats (token ids loaded as float) are fine
    if array.dtype.kind not in "iub":
        raise TypeError(
            f"{name}: indices must be integers (token or row ids), got dtype {array.dtype}; "
            "convert them with np.asarray(ids, dtype='int32')"
        )
    if array.size and (array.min() < 0 or array.max() >= size):
        flat = array.reshape(-1)
        bad = int(np.flatnonzero((flat < 0) | (flat >= size))[0])
        where = np.unravel_index(bad, array.shape)
        raise ValueError(
            f"{name}: index {int(flat[bad])} is outside the valid range [0, {size}) (first bad "
            f"index at position {tuple(int(i) for i in where)}); the table has {size} rows: "
            "raise input_dim, or check the vocabulary"
        )
    return array.astype(np.intp, copy=False)


def embedding(indices, table: Tensor, *, name: str = "embedding") -> Tensor:
    """Rows of ``table`` ``(V, D)`` picked by integer ``indices`` of any shape: ``(*shape, D)``.

    The gradient of a row picked several times is the sum of the picked copies' gradients
    (catalogue A5); indices outside ``[0, V)`` raise ``ValueError`` naming ``name``.

    Example:
        >>> table = ember.tensor([[0.0, 1.0], [2.0, 3.0]], requires_grad=True)
        >>> out = ember.ops.embedding([[1, 1, 0]], table)
        >>> out.sum().backward()
        >>> table.grad
        array([[1., 1.],
               [2., 2.]], dtype=float32)
    """
    if not isinstance(table, Tensor) or table.ndim != 2:
        raise ValueError(
            f"{name}: the table must be a (rows, features) tensor, got "
            f"{getattr(table, 'shape', type(table).__name__)}"
        )
    rows = check_indices(name, indices, table.shape[0])
    out = xp.take(table.data, rows, axis=0)

    def backward(g):
        # every copy of a repeated row adds its gradient (a sparse sum, not `full[rows] += g`)
        return (_sum_rows(g.reshape(-1, table.shape[1]), rows.reshape(-1), table.shape[0]),)

    return Tensor._from_op(out, (table,), backward, "embedding")
