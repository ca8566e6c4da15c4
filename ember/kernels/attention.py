"""The attention softmax and its gradient, one block of scores at a time on both cores.

``ember.ops.attention`` keeps the scores key-major, ``(..., S, L)``: the softmax runs down each
column. NumPy's form (``_softmax_inplace``) is seven passes over all the scores (scale, mask,
maximum, subtraction, exponential, sum, product) on one core; here every ``(S, L)`` block (one
batch entry and head) is read into cache once per kernel and the blocks are split between the
cores. The exponential stays NumPy's (vectorized; numba's is a scalar libm call), between the
two kernels. Same operations in the same order as the reference — the column sums run down
the rows as NumPy's reduction over the axis does — so the probabilities are bit-identical.

The gradient ``p · (dp − Σ dp·p)`` is one kernel; its column sums are taken in another order
than the reference's ``einsum``, so it agrees to float rounding.

Transformer benchmark shapes (batch 32, 4 heads, 128 × 128, causal): the softmax 4.9 → 4.0 ms
(the exponential is 1.2 of it) and its gradient 2.3 → 1.6-1.7 ms; the attention op, forward and
backward, 18.1 → 14.3 ms. Below :data:`MIN_SCORES` the op keeps NumPy's passes: ~1M scores when
each parallel loop costs ~0.15 ms to start (numba's ``workqueue`` threads), 4096 when it costs
microseconds (OpenMP's: ``loops_start_fast``): there the kernels are as fast from 256 scores
on and faster from ~16k (attention forward + backward of 32 × 4 × 64 × 64 scores: 3.7 against
5.0 ms).
"""

from __future__ import annotations

import numpy as np

from ember.kernels._numba import loops_start_fast, njit, prange

#: The op uses these kernels from this many scores on (see the module doc).
MIN_SCORES = 1 << 12 if loops_start_fast() else 1 << 20


@njit(parallel=True, cache=True)
def _shift(scores, scale, blocked, masked, empty):  # pragma: no cover - compiled
    blocks, source, length = scores.shape
    minus_inf = scores.dtype.type(-np.inf)
    for n in prange(blocks):
        block = scores[n]
        peak = np.full(length, minus_inf, scores.dtype)
        for s in range(source):
            row = block[s]
            for j in range(length):
                value = row[j] * scale
                if masked and blocked[s, j]:
                    value = minus_inf
                row[j] = value
                if value > peak[j] or value != value:  # a NaN stays the peak, as np.max's
                    peak[j] = value
        for j in range(length):
            empty[n, j] = peak[j] == minus_inf  # nothing to attend to: the column stays 0
            if empty[n, j]:
                peak[j] = 0
        for s in range(source):
            row = block[s]
            for j in range(length):
                row[j] -= peak[j]


@njit(parallel=True, cache=True)
def _normalize(scores, empty):  # pragma: no cover - compiled
    blocks, source, length = scores.shape
    one = scores.dtype.type(1)
    for n in prange(blocks):
        block = scores[n]
        total = block[0].copy()
        for s in range(1, source):
            row = block[s]
            for j in range(length):
                total[j] += row[j]
        for j in range(length):
            total[j] = one / (one if empty[n, j] else total[j])
        for s in range(source):
            row = block[s]
            for j in range(length):
                row[j] *= total[j]


def softmax_key_major(scores: np.ndarray, scale: float, blocked: np.ndarray | None) -> None:
    """In place: ``scores`` (blocks, S, L) scaled, ``blocked`` (S, L; True = may not attend)
    set to ``-inf``, and the softmax taken down each column; a column with nothing to attend
    to becomes zeros. ``ember.ops.attention._softmax_inplace`` with the scale folded in."""
    dtype = scores.dtype
    masked = blocked is not None
    mask = blocked if masked else np.zeros((1, 1), np.bool_)
    empty = np.empty((scores.shape[0], scores.shape[2]), np.bool_)
    _shift(scores, dtype.type(scale), mask, masked, empty)
    np.exp(scores, out=scores)
    _normalize(scores, empty)


@njit(parallel=True, cache=True)
def _softmax_vjp(dp, p):  # pragma: no cover - compiled
    blocks, source, length = dp.shape
    for n in prange(blocks):
        grad, prob = dp[n], p[n]
        dot = np.zeros(length, dp.dtype)
        for s in range(source):
            for j in range(length):
                dot[j] += grad[s, j] * prob[s, j]
        for s in range(source):
            for j in range(length):
                grad[s, j] = (grad[s, j] - dot[j]) * prob[s, j]


def softmax_vjp_key_major(dp: np.ndarray, p: np.ndarray) -> None:
    """In place: ``dp`` (blocks, S, L) becomes ``p · (dp − Σ_s dp·p)``, the gradient of the
    column softmax ``p`` (``ember.ops.attention._softmax_vjp_inplace`` along axis -2)."""
    _softmax_vjp(dp, p)
