"""Arithmetic with NumPy broadcasting; each backward sums its gradient back to operand shape."""

from __future__ import annotations

import numpy as np

from ember.backend import xp
from ember.ops._core import as_tensor, gemm, operands, unbroadcast
from ember.tensor import Tensor


def add(a, b) -> Tensor:
    a, b = operands(a, b)

    def backward(g):
        return unbroadcast(g, a.data.shape), unbroadcast(g, b.data.shape)

    return Tensor._from_op(a.data + b.data, (a, b), backward, "add")


def sub(a, b) -> Tensor:
    a, b = operands(a, b)

    def backward(g):
        return unbroadcast(g, a.data.shape), unbroadcast(-g, b.data.shape)

    return Tensor._from_op(a.data - b.data, (a, b), backward, "sub")


def mul(a, b) -> Tensor:
    a, b = operands(a, b)

    def backward(g):
        return (
            unbroadcast(g * b.data, a.data.shape) if a.requires_grad else None,
            unbroadcast(g * a.data, b.data.shape) if b.requires_grad else None,
        )

    return Tensor._from_op(a.data * b.data, (a, b), backward, "mul")


def div(a, b) -> Tensor:
    a, b = operands(a, b)

    def backward(g):
        ga = unbroadcast(g / b.data, a.data.shape) if a.requires_grad else None
        gb = unbroadcast(-g * a.data / (b.data * b.data), b.data.shape) if b.requires_grad else None
        return ga, gb

    return Tensor._from_op(a.data / b.data, (a, b), backward, "div")


def neg(a: Tensor) -> Tensor:
    return Tensor._from_op(-a.data, (a,), lambda g: (-g,), "neg")


def power(base, exponent) -> Tensor:
    """``base ** exponent``; a constant exponent is the common, cheaper case."""
    if not isinstance(exponent, Tensor):
        base = as_tensor(base)
        p = exponent
        x = base.data
        if isinstance(p, (np.ndarray, np.generic)) and x.dtype.kind == "f":
            p = p.astype(x.dtype)  # a float64 NumPy exponent must not up-cast float32
        out = x**p
        if isinstance(p, (int, float)) and p == 2:
            return Tensor._from_op(out, (base,), lambda g: (g * 2 * x,), "pow")

        def backward_const(g):
            with np.errstate(divide="ignore", invalid="ignore"):
                return (g * p * x ** (p - 1),)

        return Tensor._from_op(out, (base,), backward_const, "pow")

    base, exponent = operands(base, exponent)
    out = base.data**exponent.data

    def backward(g):
        gb = ge = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if base.requires_grad:
                gb = unbroadcast(g * exponent.data * base.data ** (exponent.data - 1), base.shape)
            if exponent.requires_grad:
                # d/de b**e = b**e * log b; where b == 0 the product is taken as 0 (PyTorch's rule)
                log_b = xp.where(base.data > 0, xp.log(xp.where(base.data > 0, base.data, 1)), 0)
                ge = unbroadcast(g * out * log_b, exponent.shape)
        return gb, ge

    return Tensor._from_op(out, (base, exponent), backward, "pow")


def matmul(a, b) -> Tensor:
    """Matrix product with NumPy's rules (1-D operands are promoted, batch axes broadcast)."""
    a, b = operands(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(
            f"matmul needs operands with at least 1 dimension, got shapes {a.shape} and {b.shape}; "
            "use * for scalar multiplication"
        )
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} are not aligned: the last axis of the first "
            f"({a.shape[-1]}) must equal the {'second-to-last' if b.ndim > 1 else 'only'} axis of "
            f"the second ({b.shape[-2 if b.ndim > 1 else 0]})"
        )
    out = gemm(a.data, b.data)

    def backward(g):
        x, w = a.data, b.data
        x2 = x[None, :] if x.ndim == 1 else x
        w2 = w[:, None] if w.ndim == 1 else w
        g2 = g
        if w.ndim == 1:  # restore w's dropped last axis first: for 1-D @ 1-D, g is 0-d
            g2 = xp.expand_dims(g2, -1)
        if x.ndim == 1:
            g2 = xp.expand_dims(g2, -2)
        ga = gb = None
        if a.requires_grad:
            ga = gemm(g2, xp.swapaxes(w2, -1, -2))
            ga = unbroadcast(ga, x2.shape).reshape(x.shape)
        if b.requires_grad:
            if x2.ndim == 2 and g2.ndim == 2:
                gb = gemm(x2.T, g2)
            else:
                gb = gemm(xp.swapaxes(x2, -1, -2), g2)
            gb = unbroadcast(gb, w2.shape).reshape(w.shape)
        return ga, gb

    return Tensor._from_op(out, (a, b), backward, "matmul")


def linear(x: Tensor, kernel: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ kernel + bias`` as one graph node (the Dense layer's hot path).

    ``x`` has shape ``(..., in)``, ``kernel`` ``(in, out)``, ``bias`` ``(out,)``. Leading axes
    are folded into one, so a sequence ``(batch, time, in)`` is one ``(batch * time, in)``
    product (a stack of small products is ~2x slower in BLAS), here and in the backward.
    """
    xd = x.data
    folded = xd.ndim != 2  # (..., in) or a single sample (in,)
    rows = xd.reshape(-1, xd.shape[-1]) if folded else xd
    out = gemm(rows, kernel.data)
    if bias is not None:
        out += bias.data  # in place: out is a fresh array
    if folded:
        out = out.reshape(*xd.shape[:-1], out.shape[-1])
    parents = (x, kernel) if bias is None else (x, kernel, bias)

    def backward(g):
        g_rows = g.reshape(-1, g.shape[-1]) if folded else g
        ga = gk = gb = None
        if x.requires_grad:
            ga = gemm(g_rows, kernel.data.T)
            if folded:
                ga = ga.reshape(xd.shape)
        if kernel.requires_grad:
            gk = gemm(rows.T, g_rows)
        if bias is not None and bias.requires_grad:
            gb = g_rows.sum(axis=0)
        return ga, gk, gb

    return Tensor._from_op(out, parents, backward, "linear")
