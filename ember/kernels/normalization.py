"""Layer normalization over the last axis, forward and backward, one pass over each row.

NumPy's form (``ember.ops.normalization.normalize``) makes about eight passes over the input
in forward (mean, centring, variance, scaling, γ, β) and as many in backward, each a separate
call; here each row of ``(rows, features)`` is read into cache once and every statistic comes
from it, on both cores (rows split between them). The statistics are the same (two-pass
variance, ε inside the square root); sums are taken in another order, so results agree with
the NumPy reference to float rounding, not bit for bit. The γ and β gradients are summed per
chunk of rows in a fixed number of chunks, so they do not depend on the thread count.
"""

from __future__ import annotations

import numpy as np

from ember.kernels._numba import njit, prange

_CHUNKS = 16


@njit(parallel=True, cache=True)
def _forward(x, gamma, beta, epsilon, out, x_hat, stats):  # pragma: no cover - compiled
    rows, features = x.shape
    for r in prange(rows):
        total = x.dtype.type(0)
        for f in range(features):
            total += x[r, f]
        mean = total / features
        square = x.dtype.type(0)
        for f in range(features):
            centred = x[r, f] - mean
            x_hat[r, f] = centred
            square += centred * centred
        var = square / features
        scale = 1 / np.sqrt(var + epsilon)
        stats[0, r] = mean
        stats[1, r] = var
        stats[2, r] = scale
        for f in range(features):
            standard = x_hat[r, f] * scale
            x_hat[r, f] = standard
            out[r, f] = standard * gamma[f] + beta[f]


@njit(parallel=True, cache=True)
def _backward(g, x_hat, inv_std, gamma, want_x, dx, d_gamma, d_beta):  # pragma: no cover
    rows, features = g.shape
    chunks = d_gamma.shape[0]
    step = (rows + chunks - 1) // chunks
    zero = g.dtype.type(0)
    for k in prange(chunks):
        d_gamma[k] = zero
        d_beta[k] = zero
        for r in range(k * step, min(rows, (k + 1) * step)):
            mean_d = zero
            mean_dx = zero
            for f in range(features):
                d_hat = g[r, f] * gamma[f]
                mean_d += d_hat
                mean_dx += d_hat * x_hat[r, f]
                d_gamma[k, f] += g[r, f] * x_hat[r, f]
                d_beta[k, f] += g[r, f]
            if want_x:
                mean_d /= features
                mean_dx /= features
                for f in range(features):
                    d_hat = g[r, f] * gamma[f]
                    dx[r, f] = inv_std[r] * (d_hat - mean_d - x_hat[r, f] * mean_dx)


def layer_norm_forward(x, gamma, beta, epsilon: float):
    """``(out, x_hat, mean, var, inv_std)`` for ``(rows, features)`` ``x``: the output
    ``γ·x̂ + β``, the standardised input, and per row the mean, the biased variance and ``1/σ``
    (γ = 1, β = 0 when None)."""
    x = np.ascontiguousarray(x)
    features = x.shape[1]
    one = np.ones(features, x.dtype) if gamma is None else gamma.astype(x.dtype, copy=False)
    zero = np.zeros(features, x.dtype) if beta is None else beta.astype(x.dtype, copy=False)
    out, x_hat = np.empty_like(x), np.empty_like(x)
    stats = np.empty((3, x.shape[0]), x.dtype)
    _forward(x, one.ravel(), zero.ravel(), x.dtype.type(epsilon), out, x_hat, stats)
    return out, x_hat, stats[0], stats[1], stats[2]


def layer_norm_backward(g, x_hat, inv_std, gamma, want_x: bool):
    """``(dx or None, dγ, dβ)`` of :func:`layer_norm_forward` for the output gradient ``g``."""
    g = np.ascontiguousarray(g, dtype=x_hat.dtype)
    features = x_hat.shape[1]
    one = np.ones(features, x_hat.dtype) if gamma is None else gamma.astype(x_hat.dtype, copy=False)
    one = one.ravel()
    dx = np.empty_like(x_hat) if want_x else np.empty((0, 0), x_hat.dtype)
    d_gamma = np.empty((_CHUNKS, features), x_hat.dtype)
    d_beta = np.empty((_CHUNKS, features), x_hat.dtype)
    _backward(g, x_hat, inv_std, one, want_x, dx, d_gamma, d_beta)
    return (dx if want_x else None), d_gamma.sum(axis=0), d_beta.sum(axis=0)
