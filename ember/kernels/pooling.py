"""Max pooling over non-overlapping windows (stride = pool size, no padding), NHWC.

The forward keeps, per output, which tap of its window won (``argmax``, one byte); the backward
writes each output's gradient to that tap and zeros elsewhere — one pass each, on both cores.
The NumPy reference (``ember.ops.conv.max_pool2d``) finds the winners again in backward with a
compare against the broadcast maxima, two passes over the input, and a third when a window holds
its maximum twice. Ties go to the first tap in row-major order in both; NaN propagates as in
``np.maximum``. Measured on a (128, 26, 26, 32) float32 batch (2 × 2 windows, the Keras
convnet's pool), median of 20: forward 0.31 ms against 1.3 ms, backward 0.32 ms against ~5 ms.
"""

from __future__ import annotations

import numpy as np

from ember.kernels._numba import njit, prange


@njit(parallel=True, cache=True)
def _max_pool_forward(x, ph, pw, out, argmax):  # pragma: no cover - compiled
    ho, wo, channels = out.shape[1], out.shape[2], out.shape[3]
    for b in prange(x.shape[0]):
        for i in range(ho):
            for j in range(wo):
                for ch in range(channels):  # the first tap; channels innermost: vectorized
                    out[b, i, j, ch] = x[b, i * ph, j * pw, ch]
                    argmax[b, i, j, ch] = 0
                for di in range(ph):
                    for dj in range(pw):
                        if di == 0 and dj == 0:
                            continue
                        tap = di * pw + dj
                        for ch in range(channels):
                            v = x[b, i * ph + di, j * pw + dj, ch]
                            best = out[b, i, j, ch]
                            # strictly greater: the first maximum wins; a NaN wins and stays
                            better = v > best or (v != v and best == best)
                            out[b, i, j, ch] = v if better else best
                            argmax[b, i, j, ch] = tap if better else argmax[b, i, j, ch]


@njit(parallel=True, cache=True)
def _max_pool_backward(g, argmax, ph, pw, grad):  # pragma: no cover - compiled
    ho, wo, channels = g.shape[1], g.shape[2], g.shape[3]
    zero = grad.dtype.type(0)
    for b in prange(g.shape[0]):
        for i in range(ho):
            for j in range(wo):
                for di in range(ph):
                    for dj in range(pw):
                        tap = di * pw + dj
                        for ch in range(channels):
                            hit = argmax[b, i, j, ch] == tap
                            grad[b, i * ph + di, j * pw + dj, ch] = g[b, i, j, ch] if hit else zero
        # rows and columns past the last whole window get no gradient
        for r in range(ho * ph, grad.shape[1]):
            grad[b, r] = zero
        for r in range(ho * ph):
            for c in range(wo * pw, grad.shape[2]):
                grad[b, r, c] = zero


def max_pool_forward(x: np.ndarray, pool: tuple[int, int], out_hw: tuple[int, int]):
    """``(maxima, argmax)`` of the ``pool`` windows of contiguous NHWC ``x``."""
    out = np.empty((x.shape[0], out_hw[0], out_hw[1], x.shape[3]), dtype=x.dtype)
    argmax = np.empty(out.shape, dtype=np.uint8)
    _max_pool_forward(np.ascontiguousarray(x), pool[0], pool[1], out, argmax)
    return out, argmax


def max_pool_backward(
    g: np.ndarray, argmax: np.ndarray, pool: tuple[int, int], shape
) -> np.ndarray:
    """The input gradient: each output's gradient at the tap that won its window."""
    grad = np.empty(shape, dtype=g.dtype)
    _max_pool_backward(np.ascontiguousarray(g), argmax, pool[0], pool[1], grad)
    return grad
