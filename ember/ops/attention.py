"""Attention: a fused scaled dot-product attention op and the masked softmax it is built on.

``scaled_dot_product_attention`` is ONE graph node for its output: the forward computes the
scores, the masked softmax and the weighted sum of the values with batched matmuls, and the
backward works from the saved attention weights (and dropout mask) alone, so no intermediate
tensor of shape ``(..., L, S)`` is ever recorded in the graph.

Internally the scores are laid out key-major, ``(..., S, L)`` (computed as ``key @ query^T``),
so the softmax reduces over axis -2. NumPy vectorises a reduction over a non-contiguous axis
across the contiguous one, which is ~3x faster than reducing each short contiguous row: the
row maximum of ``(32, 4, 128, 128)`` float32 scores takes 0.5 ms instead of 1.7 ms. The weights
returned to the user are a transposed view, ``(..., L, S)``.

Masking never produces NaN: a score that may not be attended is set to ``-inf`` *before* the
maximum is taken, the maximum of a row with no finite score is replaced by 0, and the softmax
denominator of such a row (which is then exactly 0) by 1. A fully masked row therefore has
all-zero weights, a zero output and zero gradients (catalogue N4), where a plain softmax of a
row of ``-inf`` gives ``0 / 0``.
"""

from __future__ import annotations

import math

import numpy as np

from ember import kernels
from ember.backend import xp
from ember.ops._core import as_tensor, gemm, unbroadcast
from ember.tensor import Tensor

__all__ = ["scaled_dot_product_attention", "masked_softmax"]

_SDPA = "scaled_dot_product_attention"


# ----------------------------------------------------------------------------- validation
def _floating(fn: str, name: str, value, like: Tensor | None = None) -> Tensor:
    """``value`` as a float tensor; a non-tensor takes ``like``'s dtype (never an up-cast)."""
    tensor = value if isinstance(value, Tensor) else as_tensor(value, like)
    if tensor.dtype.kind != "f":
        raise TypeError(
            f"{fn}: {name} must be a floating tensor (float32 or float64), got dtype "
            f"{tensor.dtype}; cast it with .astype('float32')"
        )
    if like is not None and tensor.dtype != like.dtype:
        raise TypeError(
            f"{fn}: {name} has dtype {tensor.dtype} but query has dtype {like.dtype}; attention "
            "computes in one dtype: cast one of them with .astype(...)"
        )
    return tensor


def _check_shapes(query: Tensor, key: Tensor, value: Tensor) -> tuple[int, ...]:
    """Validate ``(..., L, E)``, ``(..., S, E)``, ``(..., S, Ev)``; return the batch shape."""
    for name, t in (("query", query), ("key", key), ("value", value)):
        if t.ndim < 2:
            raise ValueError(
                f"{_SDPA}: {name} must have at least 2 dimensions (..., length, features), got "
                f"shape {t.shape}"
            )
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(
            f"{_SDPA}: query and key must have the same feature size (last axis), got query "
            f"{query.shape} and key {key.shape}"
        )
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(
            f"{_SDPA}: key and value must have the same length (axis -2), got key {key.shape} "
            f"and value {value.shape}"
        )
    try:
        return np.broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2])
    except ValueError:
        raise ValueError(
            f"{_SDPA}: the leading (batch) axes of query {query.shape}, key {key.shape} and "
            f"value {value.shape} do not broadcast together"
        ) from None


def _real(name: str, value, valid, expected: str) -> float:
    """A real number (not a bool) for which ``valid`` holds, else a TypeError / ValueError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"{_SDPA}: {name} must be a real number, got {value!r}")
    if not valid(float(value)):  # False for NaN too
        raise ValueError(f"{_SDPA}: {name} must be {expected}, got {value!r}")
    return float(value)


def _mask_array(fn: str, mask, target: tuple[int, ...], float_ok: bool) -> np.ndarray:
    """The mask's array, checked to be bool (or float when allowed) and to broadcast to
    ``target`` without enlarging it. A mask tensor is a constant: it receives no gradient."""
    array = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    if array.dtype != np.bool_ and not (float_ok and array.dtype.kind == "f"):
        expected = "bool (True = may attend) or float (added to the scores)" if float_ok else "bool"
        raise TypeError(
            f"{fn}: mask must be {expected}, got dtype {array.dtype}; for a 0/1 integer mask "
            "pass mask.astype(bool)"
        )
    try:
        fits = np.broadcast_shapes(array.shape, target) == target
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(
            f"{fn}: mask of shape {array.shape} does not broadcast to the shape {target} of the "
            "scores" + (" (..., L, S)" if float_ok else "")
        )
    return array


# ------------------------------------------------------------------------- array kernels
def _softmax_inplace(s: np.ndarray, blocked: np.ndarray | None, axis: int) -> np.ndarray:
    """Masked softmax of the fresh array ``s`` along ``axis``, computed in place.

    ``blocked`` (True = masked out) entries get probability 0. A row whose every entry is
    blocked or ``-inf`` has no finite maximum: that maximum is replaced by 0 (so ``s - max``
    stays ``-inf`` and its exponential 0, with no ``inf - inf``) and the row's denominator,
    exactly 0, by 1: the row is all zeros instead of ``0 / 0``. Any other row has a
    denominator >= 1 (its maximum contributes ``exp(0)``).
    """
    if blocked is not None:
        xp.copyto(s, -xp.inf, where=blocked)
    peak = s.max(axis=axis, keepdims=True, initial=-xp.inf)  # no entries at all: fully masked
    empty = xp.isneginf(peak)
    if empty.any():
        peak[empty] = 0
    s -= peak
    xp.exp(s, out=s)
    total = s.sum(axis=axis, keepdims=True)
    if empty.any():
        total[empty] = 1
    # one reciprocal per row, then a multiply: cheaper than dividing every entry
    s *= xp.reciprocal(total, out=total)
    return s


def _softmax_vjp_inplace(dp: np.ndarray, p: np.ndarray, axis: int) -> np.ndarray:
    """``p * (dp - sum(dp * p))`` along ``axis``, written into the fresh array ``dp``.

    Masked entries have ``p == 0`` and so get a zero gradient, fully masked rows too.
    """
    # einsum: the row sums without a temporary product of the full size
    if axis in (-1, dp.ndim - 1):
        row_dot = xp.einsum("...j,...j->...", dp, p)[..., None]
    elif axis in (-2, dp.ndim - 2):
        row_dot = xp.einsum("...jl,...jl->...l", dp, p)[..., None, :]
    else:
        row_dot = (dp * p).sum(axis=axis, keepdims=True)
    dp -= row_dot
    dp *= p
    return dp


def _score_grads(ds_t: np.ndarray, query: Tensor, key: Tensor, scale: float):
    """dQ = dS K scale and dK = dS^T Q scale from ``ds_t`` = dS^T ``(..., S, L)``, each summed
    back over broadcast batch axes; ``ds_t`` (a fresh array) is scaled in place, once."""
    ds_t *= scale
    dq = dk = None
    if query.requires_grad:
        dq = unbroadcast(gemm(xp.swapaxes(ds_t, -1, -2), key.data), query.shape)
    if key.requires_grad:
        dk = unbroadcast(gemm(ds_t, query.data), key.shape)
    return dq, dk


def _softmax_kernels(scores: np.ndarray, blocked, bias):
    """``ember.kernels.attention`` when it can take these key-major scores: kernels active, a
    large contiguous float array, no additive mask, and a boolean mask (if any) that is one
    ``(S, L)`` plane shared by every batch entry and head (a causal mask, say)."""
    if bias is not None or scores.ndim < 2 or not scores.flags.c_contiguous:
        return None
    fast = kernels.get("attention")
    if fast is None or scores.size < fast.MIN_SCORES:  # NumPy's passes win below (kernel doc)
        return None
    if blocked is not None and _plane(blocked).shape != scores.shape[-2:]:
        return None
    return fast


def _plane(blocked):
    """A mask broadcast only along leading length-1 axes, as its ``(S, L)`` plane, else the
    mask unchanged (``None`` stays ``None``)."""
    if blocked is None or blocked.ndim < 2 or any(n != 1 for n in blocked.shape[:-2]):
        return blocked
    return np.ascontiguousarray(blocked.reshape(blocked.shape[-2:]))


def _blocks(scores: np.ndarray) -> np.ndarray:
    """A contiguous ``(..., S, L)`` array as ``(blocks, S, L)`` (a view)."""
    return scores.reshape(-1, *scores.shape[-2:])


# -------------------------------------------------------------------------------- masks
def _attention_masks(mask, is_causal: bool, scores_shape: tuple[int, ...], dtype):
    """(blocked, bias) in the key-major layout ``(..., S, L)``: a bool array, True where a query
    may NOT attend (or None), and a float array added to the scores (or None), both
    broadcastable to the transpose of ``scores_shape`` ``(..., L, S)``."""
    if not isinstance(is_causal, (bool, np.bool_)):
        raise TypeError(f"{_SDPA}: is_causal must be True or False, got {is_causal!r}")
    blocked = bias = None
    if mask is not None:
        array = _mask_array(_SDPA, mask, scores_shape, float_ok=True)
        array = xp.swapaxes(array.reshape((1,) * (2 - array.ndim) + array.shape), -1, -2)
        if array.dtype == np.bool_:
            blocked = ~array
        else:
            bias = array.astype(dtype, copy=False)  # a float64 mask must not up-cast float32
    if is_causal:
        length, source = scores_shape[-2:]
        # PyTorch's convention: top-left aligned, query i sees keys j <= i (also when L != S)
        causal = xp.arange(source)[:, None] > xp.arange(length)[None, :]  # (S, L)
        blocked = causal if blocked is None else blocked | causal
    return blocked, bias


# ------------------------------------------------------------------------------- public ops
def masked_softmax(x: Tensor, mask=None, axis: int = -1) -> Tensor:
    """Softmax along ``axis`` over the entries where the bool ``mask`` is True.

    Masked entries (``False``) get probability exactly 0; a row with no kept entry (or whose
    kept entries are all ``-inf``) is all zeros with a zero gradient, never NaN. Stable: the
    maximum over the kept entries is subtracted first, so logits of ±1000 are fine. The mask
    broadcasts to ``x``'s shape and is a constant (no gradient). Without a mask this is the
    ordinary softmax (except that an all ``-inf`` row gives zeros, not NaN).

    Args:
        x: the logits (a float tensor or array).
        mask: bool array or tensor broadcastable to ``x.shape``; True = keep.
        axis: the axis to normalise over.

    Returns:
        The probabilities, a tensor of ``x``'s shape and dtype.

    Example:
        >>> from ember.ops.attention import masked_softmax
        >>> x = ember.tensor([[1.0, 2.0, 1000.0], [0.0, 0.0, 0.0]])
        >>> keep = np.array([[True, True, False], [False, False, False]])
        >>> masked_softmax(x, keep)
        tensor([[0.2689..., 0.7310..., 0.    ...],
                [0.    ..., 0.    ..., 0.    ...]])
    """
    x = _floating("masked_softmax", "x", x)
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"masked_softmax: axis must be an integer, got {axis!r}")
    if x.ndim == 0:
        raise ValueError("masked_softmax: x must have at least one dimension, got a 0-d tensor")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(
            f"masked_softmax: axis {axis} is out of range for x of shape {x.shape} "
            f"({x.ndim} dimension(s))"
        )
    axis = int(axis)
    blocked = None
    if mask is not None:
        blocked = ~_mask_array("masked_softmax", mask, x.shape, float_ok=False)
    out = _softmax_inplace(x.data.copy(), blocked, axis)

    def backward(g):
        return (_softmax_vjp_inplace(g.copy(), out, axis),)

    return Tensor._from_op(out, (x,), backward, "masked_softmax")


def scaled_dot_product_attention(
    query,
    key,
    value,
    mask=None,
    *,
    is_causal: bool = False,
    dropout: float = 0.0,
    scale: float | None = None,
    seed=None,
    return_weights: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """``softmax(query @ key^T * scale + mask) @ value``, fused into one graph node.

    Shapes: ``query (..., L, E)``, ``key (..., S, E)``, ``value (..., S, Ev)``, whose leading
    (batch) axes broadcast together, typically ``(batch, heads, length, features)``. The output
    is ``(..., L, Ev)``. All three must share one float dtype (float32 or float64; arrays and
    lists take the query's).

    Args:
        query, key, value: the attention inputs (tensors or arrays).
        mask: broadcastable to the scores ``(..., L, S)``, a constant (no gradient). Either
            **bool**, True = may attend (PyTorch's bool ``attn_mask`` and Keras'
            ``attention_mask`` convention), or **float**, added to the scores (PyTorch's float
            mask; ``-inf`` allowed).
        is_causal: query ``i`` may attend only to keys ``j <= i``. PyTorch's convention: the
            causal mask is aligned at the top left, also when ``L != S`` (``tril`` of an
            ``(L, S)`` matrix of ones). Unlike PyTorch it combines with ``mask``.
        dropout: probability of zeroing each attention weight (after the softmax); the kept
            ones are scaled by ``1 / (1 - dropout)``. Applied whenever it is > 0 (a layer
            passes 0 outside training); 0 draws no random numbers.
        scale: multiplies the scores; ``1 / sqrt(E)`` by default.
        seed: for the dropout mask: None draws from Ember's generator; an int (or
            ``np.random.Generator`` / ``ember.random.SeedGenerator``) as in ``ember.random``,
            so that an int gives the same mask on every call.
        return_weights: also return the attention weights ``(..., L, S)`` (batch axes those of
            query, key and mask), post-softmax and pre-dropout, as Keras'
            ``return_attention_scores``. They are differentiable (a node on query and key).

    A query row that may attend to no key (fully masked, or all scores ``-inf``) gets zero
    weights and a zero output row, with zero gradients (never NaN).

    Returns:
        The output, or ``(output, weights)`` with ``return_weights=True``.

    Example:
        >>> from ember.ops.attention import scaled_dot_product_attention
        >>> q = ember.ones((1, 2, 4)); k = ember.ones((1, 3, 4))
        >>> v = ember.tensor([[[1.0], [2.0], [3.0]]])
        >>> scaled_dot_product_attention(q, k, v)  # equal scores: the mean of the values
        tensor([[[2.],
                 [2.]]])
        >>> scaled_dot_product_attention(q, k, v, is_causal=True)  # j <= i
        tensor([[[1. ],
                 [1.5]]])
        >>> keep = np.array([[True, False, True], [False, False, False]])
        >>> out, w = scaled_dot_product_attention(q, k, v, keep, return_weights=True)
        >>> out  # the second query may attend to nothing: a zero row
        tensor([[[2.],
                 [0.]]])
        >>> w
        tensor([[[0.5, 0. , 0.5],
                 [0. , 0. , 0. ]]])
    """
    query = _floating(_SDPA, "query", query)
    key = _floating(_SDPA, "key", key, like=query)
    value = _floating(_SDPA, "value", value, like=query)
    batch = _check_shapes(query, key, value)
    length, source, features = query.shape[-2], key.shape[-2], query.shape[-1]
    dtype = query.dtype
    scale = (
        1.0 / math.sqrt(features)
        if scale is None
        else _real("scale", scale, math.isfinite, "a finite number")
    )
    rate = _real("dropout", dropout, lambda p: 0.0 <= p < 1.0, "a probability in [0, 1)")
    blocked, bias = _attention_masks(mask, is_causal, (*batch, length, source), dtype)

    scores = gemm(key.data, xp.swapaxes(query.data, -1, -2))  # key-major (..., S, L)
    full = np.broadcast_shapes(scores.shape, *(m.shape for m in (blocked, bias) if m is not None))
    if full != scores.shape:  # the mask has batch axes that query and key lack (rare)
        scores = xp.broadcast_to(scores, full).copy()
    fast = _softmax_kernels(scores, blocked, bias)
    if fast is not None:  # the same operations, a block of scores at a time on both cores
        weights = scores
        fast.softmax_key_major(_blocks(scores), scale, _plane(blocked))
    else:
        scores *= scale
        if bias is not None:
            scores += bias
        weights = _softmax_inplace(scores, blocked, -2)
    keep = None
    dropped = weights
    if rate > 0.0:
        from ember.random import _generator  # here: ember.random imports ember.ops

        draws = _generator(_SDPA, seed).random(weights.shape, dtype=dtype)
        keep = draws >= dtype.type(rate)
        dropped = weights * keep
        dropped *= dtype.type(1.0 / (1.0 - rate))
    out = gemm(xp.swapaxes(dropped, -1, -2), value.data)
    return _attention_nodes(
        query, key, value, out, weights, dropped, keep, rate, scale, return_weights
    )


def _attention_nodes(query, key, value, out, weights, dropped, keep, rate, scale, with_weights):
    """Record the output node on (query, key, value) and, when asked, the weights node on
    (query, key); both backwards read the saved weights only (nothing is recomputed).
    ``weights``, ``dropped`` and ``keep`` are key-major ``(..., S, L)``."""
    dtype = out.dtype

    def backward(g):
        dv = None
        if value.requires_grad:
            dv = unbroadcast(gemm(dropped, g), value.shape)
        dq = dk = None
        if query.requires_grad or key.requires_grad:
            dp = gemm(value.data, xp.swapaxes(g, -1, -2))  # dP^T
            if keep is not None:
                xp.multiply(dp, keep, out=dp)
                dp *= dtype.type(1.0 / (1.0 - rate))
            fast = _softmax_kernels(dp, None, None) if weights.shape == dp.shape else None
            if fast is not None:
                fast.softmax_vjp_key_major(_blocks(dp), _blocks(weights))
            else:
                _softmax_vjp_inplace(dp, weights, -2)
            dq, dk = _score_grads(dp, query, key, scale)
        return dq, dk, dv

    output = Tensor._from_op(out, (query, key, value), backward, _SDPA)
    if not with_weights:
        return output

    public = xp.swapaxes(weights, -1, -2)  # (..., L, S): a view

    def weights_backward(g):
        ds = _softmax_vjp_inplace(g.copy(), public, -1)  # g's own layout: no transposed copy
        return _score_grads(xp.swapaxes(ds, -1, -2), query, key, scale)

    if output.requires_grad:
        public.flags.writeable = False  # saved for the output's backward: no in-place edits
    probabilities = Tensor._from_op(public, (query, key), weights_backward, "attention_weights")
    return output, probabilities
