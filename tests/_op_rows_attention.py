"""Rows of the op table (``test_ops.py``) for the attention ops.

Masks are constants of the row (closures), not inputs: the table makes every float input
differentiable, and a mask receives no gradient. Each bool mask keeps at least one key per query,
so that PyTorch and Ember agree on every row (fully masked rows are tested in
``test_attention_ops.py``, where only the rows PyTorch defines are compared).
"""

from __future__ import annotations

import numpy as np

from ember import ops
from ember.ops import attention

try:
    import torch
    import torch.nn.functional as F  # noqa: N812
except ImportError:  # parity rows then skip (or fail under EMBER_REQUIRE_TORCH=1) in the helper
    torch = F = None

# matmuls and a softmax accumulate float32 rounding (catalogue §1.6)
_ACCUMULATING = {"atol": 1e-5, "rtol": 1e-4}
_REAL = {name: getattr(attention, name) for name in attention.__all__}

_KEEP = np.array(
    [
        [True, False, True, True, False],
        [False, True, False, False, False],
        [True, True, True, False, True],
    ]
)
_BIAS = np.array(
    [
        [0.5, -np.inf, 0.0, -1.0, 2.0],
        [-np.inf, -np.inf, 1.0, 0.25, -0.5],
        [0.0, 1.5, -np.inf, -2.0, 0.0],
    ]
)


def _op(name: str):
    """The attention op looked up at call time through a module attribute, so that
    ``test_row_calls_its_op`` sees the call whether it patches ``ember.ops.<name>`` (once the op
    is exported there) or ``ember.ops.attention.<name>``: a patched attribute is the one that
    differs from the function defined in ``ember.ops.attention``."""

    def call(*args, **kwargs):
        for holder in (ops, attention):
            fn = getattr(holder, name, None)
            if fn is not None and fn is not _REAL[name]:
                return fn(*args, **kwargs)
        return getattr(attention, name)(*args, **kwargs)

    return call


_sdpa = _op("scaled_dot_product_attention")
_masked_softmax = _op("masked_softmax")


def _t_sdpa(**kwargs):
    """F.scaled_dot_product_attention with NumPy masks made torch tensors at call time."""

    def ref(q, k, v):
        mask = kwargs.get("attn_mask")
        extra = dict(kwargs)
        if mask is not None:
            dtype = torch.bool if mask.dtype == bool else q.dtype
            extra["attn_mask"] = torch.as_tensor(mask, dtype=dtype)
        return F.scaled_dot_product_attention(q, k, v, **extra)

    return ref


def _t_weights(q, k, keep):
    scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    return torch.softmax(scores.masked_fill(~torch.as_tensor(keep), -torch.inf), dim=-1)


def _t_masked_softmax(keep, axis):
    def ref(x):
        return torch.softmax(x.masked_fill(~torch.as_tensor(keep), -torch.inf), dim=axis)

    return ref


def _weights_and_output(q, k, v):
    out, w = _sdpa(q, k, v, _KEEP, return_weights=True)
    return ops.concatenate([out.reshape((-1,)), w.reshape((-1,))])


def _t_weights_and_output(q, k, v):
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=torch.as_tensor(_KEEP))
    return torch.cat([out.reshape(-1), _t_weights(q, k, _KEEP).reshape(-1)])


def add_rows(case) -> None:
    """Append this family's rows with ``case(id, op, fn, ref, inputs, ...)`` (see test_ops.py)."""
    sdpa = "scaled_dot_product_attention"
    qkv = [(2, 3, 4), (2, 5, 4), (2, 5, 3)]
    case("sdpa_no_mask", sdpa, _sdpa, _t_sdpa(), qkv, parity=_ACCUMULATING)
    case(
        "sdpa_bool_mask",
        sdpa,
        lambda q, k, v: _sdpa(q, k, v, _KEEP),
        _t_sdpa(attn_mask=_KEEP),
        qkv,
        parity=_ACCUMULATING,
    )
    case(
        "sdpa_float_mask",
        sdpa,
        lambda q, k, v: _sdpa(q, k, v, _BIAS),
        _t_sdpa(attn_mask=_BIAS),
        qkv,
        notes="float64 mask with -inf entries: added to float32 scores without up-casting",
        parity=_ACCUMULATING,
    )
    case(
        "sdpa_causal_square",
        sdpa,
        lambda q, k, v: _sdpa(q, k, v, is_causal=True),
        _t_sdpa(is_causal=True),
        [(2, 4, 3), (2, 4, 3), (2, 4, 2)],
        parity=_ACCUMULATING,
    )
    case(
        "sdpa_causal_l_ne_s",
        sdpa,
        lambda q, k, v: _sdpa(q, k, v, is_causal=True),
        _t_sdpa(is_causal=True),
        qkv,
        notes="top-left aligned causal mask (j <= i), PyTorch's convention",
        parity=_ACCUMULATING,
    )
    case(
        "sdpa_heads_scale",
        sdpa,
        lambda q, k, v: _sdpa(q, k, v, scale=0.3),
        _t_sdpa(scale=0.3),
        [(2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 3)],
        parity=_ACCUMULATING,
    )
    case(
        "sdpa_broadcast_batch",
        sdpa,
        _sdpa,
        lambda q, k, v: F.scaled_dot_product_attention(
            q.expand(2, 2, 3, 4), k.expand(2, 2, 5, 4), v.expand(2, 2, 5, 3)
        ),
        [(2, 1, 3, 4), (1, 2, 5, 4), (5, 3)],
        notes="leading axes broadcast; gradients summed back to each input's shape",
        parity=_ACCUMULATING,
    )
    case(
        "sdpa_return_weights",
        sdpa,
        _weights_and_output,
        _t_weights_and_output,
        qkv,
        notes="output and weights concatenated: the gradient flows through both nodes",
        parity=_ACCUMULATING,
    )
    softmax = "masked_softmax"
    case(
        "masked_softmax_last_axis",
        softmax,
        lambda x: _masked_softmax(x, _KEEP),
        _t_masked_softmax(_KEEP, -1),
        [(2, 3, 5)],
    )
    case(
        "masked_softmax_axis0",
        softmax,
        lambda x: _masked_softmax(x, _KEEP.T, 0),
        _t_masked_softmax(_KEEP.T, 0),
        [(5, 3)],
    )
    case(
        "masked_softmax_no_mask",
        softmax,
        lambda x: _masked_softmax(x),
        lambda x: torch.softmax(x, dim=-1),
        [(3, 4)],
    )
