"""Fused normalization ops: one graph node each, with the closed-form backward.

Batch and layer normalization both standardise ``x`` over some ``axes`` and then apply a
per-feature affine map. Written as a chain of small ops this would record ~8 nodes and keep as
many temporaries; the fused form keeps only ``x̂`` and ``1/σ`` and computes the input gradient as

    dx = (1/σ) · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ · x̂)),   dx̂ = g · γ

with the means taken over the normalised axes (the standard derivation, e.g. Ioffe & Szegedy
2015, written for any set of axes).

Example:
    >>> from ember.ops import normalize
    >>> x = ember.tensor(np.random.randn(8, 3), requires_grad=True)
    >>> out, mean, var = normalize(x, axes=(0,), epsilon=1e-3)
    >>> out.shape, mean.shape
    ((8, 3), (1, 3))
"""

from __future__ import annotations

import numpy as np

from ember import kernels
from ember.backend import xp
from ember.tensor import Tensor

__all__ = ["normalize", "normalize_inference"]


def _param(p: Tensor | None, shape: tuple) -> np.ndarray | None:
    return None if p is None else p.data.reshape(shape)


def _or_placeholder(p: Tensor | None, dtype) -> Tensor:
    """A constant stand-in parent for an absent ``gamma``/``beta`` (it never gets a gradient)."""
    return Tensor(np.zeros((), dtype)) if p is None else p


def _param_grad(values: np.ndarray, reduce_axes: tuple, param: Tensor) -> np.ndarray:
    """Sum a full-size array over the axes a parameter is broadcast along, in its shape."""
    if reduce_axes:
        values = values.sum(axis=reduce_axes)
    return values.reshape(param.shape)


def normalize(
    x: Tensor,
    axes: tuple,
    gamma: Tensor | None = None,
    beta: Tensor | None = None,
    epsilon: float = 1e-3,
    param_shape: tuple | None = None,
) -> tuple[Tensor, np.ndarray, np.ndarray]:
    """``γ · (x − mean) / sqrt(var + ε) + β`` with mean and **biased** variance over ``axes``.

    Args:
        x: input tensor.
        axes: the axes the statistics are taken over (non-negative, sorted).
        gamma, beta: optional scale and offset; their data is reshaped to ``param_shape``
            (which must broadcast against ``x``) and their gradients come back in their own shape.
        epsilon: added to the variance (> 0), so a constant feature gives finite values.
        param_shape: broadcast shape of ``gamma``/``beta``; default: ``x.shape`` with 1 on ``axes``.

    Returns:
        ``(output, mean, variance)``; the statistics are NumPy arrays with ``keepdims`` shape
        (used by batch normalization for its moving averages; not part of the graph).
    """
    data = x.data
    axes = tuple(axes)
    stat_shape = tuple(1 if i in axes else n for i, n in enumerate(data.shape))
    param_shape = stat_shape if param_shape is None else tuple(param_shape)
    param_axes = tuple(i for i, n in enumerate(param_shape) if n == 1 and data.shape[i] != 1)
    eps = data.dtype.type(epsilon)
    fast = kernels.get("normalization")
    if fast is not None and _is_layer_norm(data, axes, param_shape):
        return _layer_norm_fast(fast, x, gamma, beta, eps, stat_shape)

    mean = data.mean(axis=axes, keepdims=True)
    x_hat = data - mean  # centred now, standardised in place below
    # Two-pass variance: mean((x - μ)²) is exact for a constant feature, unlike E[x²] − μ².
    var = xp.mean(x_hat * x_hat, axis=axes, keepdims=True)
    inv_std = 1.0 / xp.sqrt(var + eps)
    x_hat *= inv_std
    g_arr, b_arr = _param(gamma, param_shape), _param(beta, param_shape)
    out = x_hat if g_arr is None else x_hat * g_arr
    if b_arr is not None:
        out = out + b_arr if g_arr is None else xp.add(out, b_arr, out=out)
    # Batch norm's case: one γ, β per position of the non-normalised axes. Then γ is constant
    # over each mean below and sum(g), sum(g·x̂) are dβ, dγ: each full-size reduction runs once.
    per_statistic = param_shape == stat_shape

    def backward(g):
        d_gamma = d_beta = d_x = None
        if per_statistic:
            count = x_hat.size // inv_std.size
            sum_g = g.sum(axis=axes, keepdims=True)
            sum_gx = (g * x_hat).sum(axis=axes, keepdims=True)
            if gamma is not None and gamma.requires_grad:
                d_gamma = sum_gx.reshape(gamma.shape)
            if beta is not None and beta.requires_grad:
                d_beta = sum_g.reshape(beta.shape)
            if x.requires_grad:
                # (γ/σ)(g − mean(g) − x̂·mean(g·x̂)), the formula above with γ taken out
                d_x = x_hat * (sum_gx / count)
                xp.subtract(g, d_x, out=d_x)
                d_x -= sum_g / count
                d_x *= inv_std if g_arr is None else inv_std * g_arr
            return d_x, d_gamma, d_beta
        if gamma is not None and gamma.requires_grad:
            d_gamma = _param_grad(g * x_hat, param_axes, gamma)
        if beta is not None and beta.requires_grad:
            d_beta = _param_grad(g, param_axes, beta)
        if x.requires_grad:
            d_hat = g if g_arr is None else g * g_arr
            mean_d = d_hat.mean(axis=axes, keepdims=True)
            mean_dx = (d_hat * x_hat).mean(axis=axes, keepdims=True)
            d_x = inv_std * (d_hat - mean_d - x_hat * mean_dx)
        return d_x, d_gamma, d_beta

    parents = (x, _or_placeholder(gamma, data.dtype), _or_placeholder(beta, data.dtype))
    return Tensor._from_op(out, parents, backward, "normalize"), mean, var


def _is_layer_norm(data: np.ndarray, axes: tuple, param_shape: tuple) -> bool:
    """Statistics over the last axis only, γ/β (if any) per feature of that axis, floats."""
    return (
        data.dtype.kind == "f"
        and data.ndim >= 1
        and data.size > 0
        and axes == (data.ndim - 1,)
        and all(n == 1 for n in param_shape[:-1])
        and param_shape[-1] == data.shape[-1]
    )


def _layer_norm_fast(fast, x: Tensor, gamma, beta, eps, stat_shape: tuple):
    """``normalize`` over the last axis with the fused kernels (``ember.kernels.normalization``)."""
    data = x.data
    features = data.shape[-1]
    g_arr = None if gamma is None else gamma.data.reshape(-1)
    b_arr = None if beta is None else beta.data.reshape(-1)
    out, x_hat, mean, var, inv_std = fast.layer_norm_forward(
        data.reshape(-1, features), g_arr, b_arr, eps
    )

    def backward(g):
        want_x = x.requires_grad
        dx, d_gamma, d_beta = fast.layer_norm_backward(
            g.reshape(-1, features), x_hat, inv_std, g_arr, want_x
        )
        return (
            None if dx is None else dx.reshape(data.shape),
            d_gamma.reshape(gamma.shape) if gamma is not None and gamma.requires_grad else None,
            d_beta.reshape(beta.shape) if beta is not None and beta.requires_grad else None,
        )

    parents = (x, _or_placeholder(gamma, data.dtype), _or_placeholder(beta, data.dtype))
    result = Tensor._from_op(out.reshape(data.shape), parents, backward, "normalize")
    return result, mean.reshape(stat_shape), var.reshape(stat_shape)


def normalize_inference(
    x: Tensor,
    mean: np.ndarray,
    variance: np.ndarray,
    gamma: Tensor | None = None,
    beta: Tensor | None = None,
    epsilon: float = 1e-3,
) -> Tensor:
    """``γ · (x − mean) / sqrt(variance + ε) + β`` with fixed statistics (batch normalization in
    inference). ``mean``/``variance`` are constants with ``x``'s number of axes (keepdims shape,
    1 on the normalized axes), taken in ``x``'s dtype; ``gamma``/``beta`` are reshaped to the
    shape of ``mean``. Each output element depends only on its own input
    element, so a row's output does not depend on the rest of the batch."""
    data = x.data
    # constants in x's dtype: float64 statistics must not up-cast a float32 computation
    mean = xp.asarray(mean, dtype=data.dtype)
    variance = xp.asarray(variance, dtype=data.dtype)
    if mean.ndim != data.ndim:
        raise ValueError(
            f"normalize_inference: mean must have the input's {data.ndim} axes (keepdims shape), "
            f"got shape {mean.shape} for input {data.shape}"
        )
    shape = mean.shape
    param_axes = tuple(i for i, n in enumerate(shape) if n == 1 and data.shape[i] != 1)
    inv_std = 1.0 / xp.sqrt(variance + data.dtype.type(epsilon))
    g_arr, b_arr = _param(gamma, shape), _param(beta, shape)
    scale = inv_std if g_arr is None else inv_std * g_arr
    centered = data - mean
    out = centered * scale
    if b_arr is not None:
        out = out + b_arr

    def backward(g):
        d_gamma = d_beta = d_x = None
        if gamma is not None and gamma.requires_grad:
            d_gamma = _param_grad(g * centered * inv_std, param_axes, gamma)
        if beta is not None and beta.requires_grad:
            d_beta = _param_grad(g, param_axes, beta)
        if x.requires_grad:
            d_x = g * scale
        return d_x, d_gamma, d_beta

    parents = (x, _or_placeholder(gamma, data.dtype), _or_placeholder(beta, data.dtype))
    return Tensor._from_op(out, parents, backward, "normalize_inference")
