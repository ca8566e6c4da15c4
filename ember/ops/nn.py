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
from ember.tensor import Tensor


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
    result._logits = ("softmax", x, axis)
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
def sparse_softmax_cross_entropy(logits: Tensor, labels: np.ndarray) -> Tensor:
    """Per-sample ``-log softmax(logits)[label]`` for logits ``(N, C)`` and int labels ``(N,)``.

    Never forms ``log(softmax)``; the gradient is ``softmax - onehot`` times the upstream value.
    """
    z = logits.data
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
def sigmoid_binary_cross_entropy(logits: Tensor, targets: np.ndarray) -> Tensor:
    """Elementwise ``-(y log σ(z) + (1-y) log(1-σ(z)))`` as ``max(z,0) - z y + log1p(e^-|z|)``."""
    z = logits.data
    targets = _as_targets(targets, z.dtype)
    out = xp.maximum(z, 0) - z * targets + xp.log1p(xp.exp(-xp.abs(z)))

    def backward(g):
        return (g * (stable_sigmoid(z) - targets),)

    return Tensor._from_op(
        out.astype(z.dtype, copy=False), (logits,), backward, "sigmoid_binary_cross_entropy"
    )
