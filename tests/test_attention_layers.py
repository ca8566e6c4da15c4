"""The attention and Transformer layers (``ember.layers.attention``, ``ember.layers.transformer``).

* ``MultiHeadAttention``, ``TransformerEncoder`` and ``TransformerDecoder`` against PyTorch's
  ``nn.MultiheadAttention`` / ``nn.TransformerEncoderLayer`` / ``nn.TransformerDecoderLayer``
  (``batch_first=True``, dropout 0) with copied weights: outputs, attention weights and the
  gradients of the inputs and of every weight under a random cotangent, float64 to 1e-10 and
  float32 to 1e-5. Masks are translated: Ember's are True where a query MAY attend, PyTorch's bool
  ``attn_mask`` / ``key_padding_mask`` are True where it may NOT.
* Padded queries (Keras' semantics: the query mask joins the attention mask) attend to nothing:
  zero weights, an output equal to the output bias, finite (zero) gradients. PyTorch masks keys
  only, so those rows are left out of the comparison (their cotangent is zero).
* The key/value cache: decoding one token at a time reproduces the full causal computation.
* ``Attention`` / ``AdditiveAttention`` against NumPy transcriptions of Keras' formulas (values
  and finite-difference gradients), position encodings against their formulas, functional
  models that train, save and load, and the error messages.
"""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import Tensor, layers
from ember.testing import gradcheck

TOL = {np.float64: 1e-10, np.float32: 1e-5}
DTYPES = [np.float64, np.float32]
# floating-point errors that would mean NaN or inf somewhere (underflow of exp is expected)
STRICT = {"divide": "raise", "invalid": "raise", "over": "raise"}
B, E, H, F = 2, 8, 2, 16  # batch, features, heads, feed-forward units


def _close(actual, expected, dtype, what: str) -> None:
    tol = TOL[dtype]
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol, err_msg=what)


def _leaf(array) -> Tensor:
    return Tensor(np.array(array), requires_grad=True)


def _t(torch, array, grad: bool = False):
    return torch.tensor(np.array(array), requires_grad=grad)


def _right_padding(lengths, total: int) -> np.ndarray:
    """``(len(lengths), total)`` bools: True for the first ``lengths[b]`` steps of row ``b``."""
    return np.arange(total)[None, :] < np.asarray(lengths)[:, None]


# --------------------------------------------------------------------- weights to PyTorch
def _copy_mha(mha, t, torch) -> None:
    """Ember's MultiHeadAttention weights into ``nn.MultiheadAttention`` ``t``. Ember's kernel
    ``(features, heads, dim)`` is the transpose of PyTorch's ``(heads * dim, features)``."""
    mats = [
        getattr(mha, f"{n}_kernel").numpy().reshape(-1, mha.num_heads * mha.key_dim).T
        for n in ("query", "key", "value")
    ]
    with torch.no_grad():
        if t._qkv_same_embed_dim:
            t.in_proj_weight.copy_(torch.tensor(np.concatenate(mats)))
        else:
            for name, mat in zip(("q", "k", "v"), mats):
                getattr(t, f"{name}_proj_weight").copy_(torch.tensor(mat))
        biases = [getattr(mha, f"{n}_bias").numpy().ravel() for n in ("query", "key", "value")]
        t.in_proj_bias.copy_(torch.tensor(np.concatenate(biases)))
        out_kernel = mha.output_kernel.numpy()
        t.out_proj.weight.copy_(torch.tensor(out_kernel.reshape(-1, out_kernel.shape[-1]).T))
        t.out_proj.bias.copy_(torch.tensor(mha.output_bias.numpy()))


def _mha_grad_pairs(mha, t) -> list:
    """(label, Ember weight, PyTorch's gradient in the Ember weight's layout) for each weight."""
    heads, dim = mha.num_heads, mha.key_dim
    if t._qkv_same_embed_dim:
        mats = np.split(t.in_proj_weight.grad.numpy(), 3)
    else:
        mats = [getattr(t, f"{n}_proj_weight").grad.numpy() for n in ("q", "k", "v")]
    biases = np.split(t.in_proj_bias.grad.numpy(), 3)
    pairs = []
    for name, mat, bias in zip(("query", "key", "value"), mats, biases):
        pairs.append(
            (f"{name}_kernel", getattr(mha, f"{name}_kernel"), mat.T.reshape(-1, heads, dim))
        )
        pairs.append((f"{name}_bias", getattr(mha, f"{name}_bias"), bias.reshape(heads, dim)))
    out_grad = t.out_proj.weight.grad.numpy().T.reshape(heads, dim, -1)
    pairs.append(("output_kernel", mha.output_kernel, out_grad))
    pairs.append(("output_bias", mha.output_bias, t.out_proj.bias.grad.numpy()))
    return [(f"{mha.name}.{label}", w, g) for label, w, g in pairs]


def _copy_dense(dense, t, torch) -> None:
    with torch.no_grad():
        t.weight.copy_(torch.tensor(dense.kernel.numpy().T))
        t.bias.copy_(torch.tensor(dense.bias.numpy()))


def _dense_grad_pairs(dense, t) -> list:
    return [
        (f"{dense.name}.kernel", dense.kernel, t.weight.grad.numpy().T),
        (f"{dense.name}.bias", dense.bias, t.bias.grad.numpy()),
    ]


def _copy_norm(norm, t, torch) -> None:
    with torch.no_grad():
        t.weight.copy_(torch.tensor(norm.gamma.numpy()))
        t.bias.copy_(torch.tensor(norm.beta.numpy()))


def _norm_grad_pairs(norm, t) -> list:
    return [
        (f"{norm.name}.gamma", norm.gamma, t.weight.grad.numpy()),
        (f"{norm.name}.beta", norm.beta, t.bias.grad.numpy()),
    ]


def _block_links(block, t) -> list:
    """(kind, Ember sub-layer, PyTorch sub-module) of a Transformer block."""
    links = [
        ("mha", block.self_attention, t.self_attn),
        ("norm", block.self_attention_norm, t.norm1),
        ("dense", block.feedforward_intermediate, t.linear1),
        ("dense", block.feedforward_output, t.linear2),
    ]
    if hasattr(t, "multihead_attn"):  # decoder: cross-attention between the two norms
        links += [
            ("mha", block.cross_attention, t.multihead_attn),
            ("norm", block.cross_attention_norm, t.norm2),
            ("norm", block.feedforward_norm, t.norm3),
        ]
    else:
        links.append(("norm", block.feedforward_norm, t.norm2))
    return links


_COPY = {"mha": _copy_mha, "dense": _copy_dense, "norm": _copy_norm}
_GRADS = {"mha": _mha_grad_pairs, "dense": _dense_grad_pairs, "norm": _norm_grad_pairs}


def _copy_block(block, t, torch) -> None:
    for kind, ours, theirs in _block_links(block, t):
        _COPY[kind](ours, theirs, torch)


def _block_grad_pairs(block, t) -> list:
    return [
        pair for kind, ours, theirs in _block_links(block, t) for pair in _GRADS[kind](ours, theirs)
    ]


def _compare_grads(pairs, dtype) -> None:
    for label, weight, expected in pairs:
        assert weight.grad is not None, f"{label}: no gradient"
        assert weight.grad.dtype == dtype, f"{label}: gradient dtype {weight.grad.dtype}"
        _close(weight.grad, expected, dtype, f"gradient of {label}")


# -------------------------------------------------------------- MultiHeadAttention parity
class MhaCase:
    """One MultiHeadAttention configuration; ``source=None`` is self-attention."""

    def __init__(self, id, length=5, source=None, *, separate_key=False, kv_features=E,
                 value_mask=False, keras_mask=False, key_mask=False, attention_mask=False,
                 causal=False):  # fmt: skip
        self.id, self.length, self.source = id, length, source
        self.separate_key, self.kv_features = separate_key, kv_features
        self.value_mask, self.keras_mask, self.key_mask = value_mask, keras_mask, key_mask
        self.attention_mask, self.causal = attention_mask, causal

    def arrays(self, dtype):
        """Inputs, cotangents and masks; every query keeps key 0 (no fully masked row, where
        PyTorch gives NaN)."""
        rng = np.random.default_rng(sum(map(ord, self.id)))
        length = self.length
        source = length if self.source is None else self.source
        query = rng.standard_normal((B, length, E)).astype(dtype)
        value = key = None
        if self.source is not None:
            value = rng.standard_normal((B, source, self.kv_features)).astype(dtype)
            key = rng.standard_normal(value.shape).astype(dtype) if self.separate_key else None
        keep = {}
        for flag in ("value_mask", "key_mask"):
            if getattr(self, flag) or (flag == "value_mask" and self.keras_mask):
                keep[flag] = rng.random((B, source)) > 0.4
                keep[flag][:, 0] = True
        if self.attention_mask:
            keep["attention_mask"] = rng.random((B, length, source)) > 0.4
            keep["attention_mask"][..., 0] = True
        cotangents = (
            rng.standard_normal((B, length, E)).astype(dtype),
            rng.standard_normal((B, H, length, source)).astype(dtype),
        )
        return (query, value, key), keep, cotangents


MHA_CASES = [
    MhaCase("self"),
    MhaCase("cross", 4, 6),
    MhaCase("cross_separate_key", 4, 6, separate_key=True),
    MhaCase("cross_kv_features", 4, 6, separate_key=True, kv_features=6),
    MhaCase("value_mask", 4, 6, value_mask=True),
    MhaCase("keras_mask_of_value", 4, 6, keras_mask=True),
    MhaCase("key_and_value_mask", 4, 6, separate_key=True, value_mask=True, key_mask=True),
    MhaCase("attention_mask", 4, 6, attention_mask=True),
    MhaCase("causal", causal=True),
    MhaCase("causal_and_padding", causal=True, value_mask=True),
    MhaCase("all_masks", causal=True, value_mask=True, attention_mask=True),
]


def _ember_mha(mha, case, inputs, keep, scores):
    query, value, key = inputs
    query = _leaf(query)
    value = query if value is None else _leaf(value)
    key = None if key is None else _leaf(key)
    kwargs = {k: v for k, v in keep.items() if not (k == "value_mask" and case.keras_mask)}
    if case.keras_mask:
        value._keras_mask = Tensor(keep["value_mask"])
    result = mha(
        query, value, key=key, use_causal_mask=case.causal, return_attention_scores=scores,
        **kwargs,
    )  # fmt: skip
    leaves = [query] + ([] if value is query else [value]) + ([] if key is None else [key])
    return result, leaves


def _torch_mha(torch, t, case, inputs, keep, scores):
    query, value, key = inputs
    tq = _t(torch, query, True)
    tv = tq if value is None else _t(torch, value, True)
    tk = tv if key is None else _t(torch, key, True)
    padding = None
    for name in ("value_mask", "key_mask"):
        if name in keep:
            padding = keep[name] if padding is None else padding & keep[name]
    allowed = np.ones((case.length, tk.shape[1]), bool)
    if case.causal:
        allowed = np.tril(allowed)
    if "attention_mask" in keep:
        allowed = np.repeat(keep["attention_mask"] & allowed, H, axis=0)  # (B * H, L, S)
    out, weights = t(
        tq, tk, tv,
        key_padding_mask=None if padding is None else _t(torch, ~padding),
        attn_mask=None if allowed.all() else _t(torch, ~allowed),  # True = may NOT attend
        need_weights=scores, average_attn_weights=False,
    )  # fmt: skip
    leaves = [tq] + ([] if value is None else [tv]) + ([] if key is None else [tk])
    return (out, weights), leaves


@pytest.mark.parametrize("scores", [False, True], ids=["output", "with_scores"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("case", MHA_CASES, ids=lambda c: c.id)
def test_mha_matches_torch(torch, case, dtype, scores):
    inputs, keep, (c_out, c_weights) = case.arrays(dtype)
    mha = layers.MultiHeadAttention(H, E // H, bias_initializer="glorot_uniform", dtype=dtype)
    result, leaves = _ember_mha(mha, case, inputs, keep, scores)
    t = torch.nn.MultiheadAttention(
        E, H, batch_first=True, kdim=case.kv_features, vdim=case.kv_features,
        dtype=getattr(torch, dtype.__name__),
    )  # fmt: skip
    _copy_mha(mha, t, torch)
    (t_out, t_weights), t_leaves = _torch_mha(torch, t, case, inputs, keep, scores)

    out = result[0] if scores else result
    assert out.dtype == dtype and out.shape == (B, case.length, E)
    _close(out.numpy(), t_out.detach().numpy(), dtype, "output")
    loss = (out * Tensor(c_out)).sum()
    t_loss = (t_out * _t(torch, c_out)).sum()
    if scores:
        assert result[1].dtype == dtype
        _close(result[1].numpy(), t_weights.detach().numpy(), dtype, "attention scores")
        loss = loss + (result[1] * Tensor(c_weights)).sum()
        t_loss = t_loss + (t_weights * _t(torch, c_weights)).sum()
    loss.backward()
    t_loss.backward()
    for i, (ours, theirs) in enumerate(zip(leaves, t_leaves, strict=True)):
        assert ours.grad.dtype == dtype
        _close(ours.grad, theirs.grad.numpy(), dtype, f"gradient of input {i}")
    _compare_grads(_mha_grad_pairs(mha, t), dtype)


# ------------------------------------------------------- padded queries, fully masked rows
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_mha_padded_queries_attend_to_nothing(torch, dtype):
    """Self-attention on a right-padded batch (the mask on the input, as an Embedding with
    mask_zero=True leaves it): padded queries get zero weights and the output bias; the real
    rows and all gradients match PyTorch's key_padding_mask when the padded rows' cotangent is
    zero; with a non-zero one the padded rows still pass no gradient to the input."""
    rng = np.random.default_rng(1)
    length = 5
    keep = _right_padding([5, 3], length)
    x_np = rng.standard_normal((B, length, E)).astype(dtype)
    cotangent = rng.standard_normal((B, length, E)).astype(dtype) * keep[..., None]
    mha = layers.MultiHeadAttention(H, E // H, bias_initializer="glorot_uniform", dtype=dtype)
    x = _leaf(x_np)
    x._keras_mask = Tensor(keep)
    with np.errstate(**STRICT):
        out, scores = mha(x, x, return_attention_scores=True)
        (out * Tensor(cotangent)).sum().backward()
    np.testing.assert_array_equal(out._keras_mask.numpy(), keep)  # the query's mask goes on
    padded = ~keep
    np.testing.assert_array_equal(scores.numpy().transpose(0, 2, 1, 3)[padded], 0.0)
    np.testing.assert_allclose(
        out.numpy()[padded], np.broadcast_to(mha.output_bias.numpy(), (2, E))
    )

    t = torch.nn.MultiheadAttention(E, H, batch_first=True, dtype=getattr(torch, dtype.__name__))
    _copy_mha(mha, t, torch)
    tx = _t(torch, x_np, True)
    t_out, _ = t(tx, tx, tx, key_padding_mask=_t(torch, padded), need_weights=False)
    (t_out * _t(torch, cotangent)).sum().backward()
    _close(out.numpy()[keep], t_out.detach().numpy()[keep], dtype, "real rows")
    _close(x.grad, tx.grad.numpy(), dtype, "gradient of the input")
    _compare_grads(_mha_grad_pairs(mha, t), dtype)

    x.grad = None
    full = rng.standard_normal((B, length, E)).astype(dtype)
    with np.errstate(**STRICT):
        (mha(x, x) * Tensor(full)).sum().backward()
    assert np.isfinite(x.grad).all()
    np.testing.assert_array_equal(x.grad[padded], 0.0)  # padded steps: neither key nor query


def test_mha_fully_masked_rows_are_zero_with_finite_gradients():
    """A query whose every key is masked (a whole batch row by value_mask, one query by
    attention_mask): zero weights, output = output bias, finite gradients that agree with
    finite differences, and the other rows as if those rows were not there."""
    rng = np.random.default_rng(2)
    length, source = 3, 4
    query = rng.standard_normal((B, length, E))
    value = rng.standard_normal((B, source, E))
    value_mask = np.array([[True, True, False, True], [False, False, False, False]])
    attention_mask = np.ones((B, length, source), bool)
    attention_mask[0, 1] = False
    mha = layers.MultiHeadAttention(H, 3, bias_initializer="glorot_uniform", dtype="float64")

    def run(q, v, mask=attention_mask):
        return mha(q, v, value_mask=value_mask, attention_mask=mask, return_attention_scores=True)

    q, v = _leaf(query), _leaf(value)
    with np.errstate(**STRICT):
        out, scores = run(q, v)
        (out.sum() + (scores * scores).sum()).backward()
    empty = np.zeros((B, length), bool)
    empty[0, 1] = empty[1, :] = True
    np.testing.assert_array_equal(scores.numpy().transpose(0, 2, 1, 3)[empty], 0.0)
    bias = mha.output_bias.numpy()
    np.testing.assert_allclose(out.numpy()[empty], np.broadcast_to(bias, (4, E)), atol=1e-15)
    for grad in (q.grad, v.grad, *(w.grad for w in mha.trainable_weights)):
        assert np.isfinite(grad).all()
    np.testing.assert_array_equal(q.grad[empty], 0.0)
    np.testing.assert_array_equal(v.grad[1], 0.0)  # batch row 1 attends to nothing
    opened = attention_mask.copy()
    opened[0, 1] = True  # rows are independent: unmasking row (0, 1) changes only that row
    np.testing.assert_array_equal(run(query, value, opened)[0].numpy()[~empty], out.numpy()[~empty])
    with np.errstate(**STRICT):
        gradcheck(lambda a, b: run(a, b)[0], query, value)
        gradcheck(lambda a, b: run(a, b)[1], query, value)


# ------------------------------------------------------------------------ key/value cache
def _step_slices(length: int):
    """A 2-step prompt, then one position at a time."""
    return [slice(0, 2)] + [slice(i, i + 1) for i in range(2, length)]


@pytest.mark.parametrize("padded", [False, True], ids=["unpadded", "padded"])
def test_mha_cache_matches_full_causal(padded):
    rng = np.random.default_rng(3)
    length = 6
    x = rng.standard_normal((B, length, E))
    keep = _right_padding([6, 4], length) if padded else None

    def masks(part):
        return {} if keep is None else {"query_mask": keep[:, part], "value_mask": keep[:, part]}

    mha = layers.MultiHeadAttention(H, E // H, dtype="float64")
    full, full_scores, full_cache = mha(
        x, x, use_causal_mask=True, return_attention_scores=True, cache={}, **masks(slice(None))
    )
    np.testing.assert_array_equal(
        full.numpy(), mha(x, x, use_causal_mask=True, **masks(slice(None))).numpy()
    )
    cache, outputs = {}, []
    for part in _step_slices(length):
        out, scores, cache = mha(
            x[:, part], x[:, part], use_causal_mask=True, return_attention_scores=True,
            cache=cache, **masks(part),
        )  # fmt: skip
        outputs.append(out.numpy())
        stop = part.stop
        np.testing.assert_allclose(
            scores.numpy(), full_scores.numpy()[:, :, part, :stop], rtol=0, atol=1e-12
        )
        assert np.abs(full_scores.numpy()[:, :, part, stop:]).max(initial=0) == 0  # causal
    np.testing.assert_allclose(np.concatenate(outputs, axis=1), full.numpy(), rtol=0, atol=1e-12)
    assert sorted(cache) == sorted(full_cache)
    for name in cache:
        np.testing.assert_allclose(
            np.asarray(getattr(cache[name], "data", cache[name])),
            np.asarray(getattr(full_cache[name], "data", full_cache[name])),
            rtol=0, atol=1e-12, err_msg=name,
        )  # fmt: skip
    assert cache["key"].shape == (B, H, length, E // H)


@pytest.mark.parametrize("normalize_first", [False, True], ids=["post_norm", "pre_norm"])
@pytest.mark.parametrize("with_encoder", [False, True], ids=["decoder_only", "with_encoder"])
def test_decoder_cache_matches_full_causal(with_encoder, normalize_first):
    rng = np.random.default_rng(4)
    length = 5
    x = rng.standard_normal((B, length, E))
    memory = rng.standard_normal((B, 4, E)) if with_encoder else None
    extra = {}
    if with_encoder:
        extra["encoder_padding_mask"] = _right_padding([4, 2], 4)
    padding = _right_padding([5, 4], length)
    dec = layers.TransformerDecoder(F, H, normalize_first=normalize_first, dtype="float64")
    full = dec(x, memory, decoder_padding_mask=padding, **extra)
    same, full_cache = dec(x, memory, decoder_padding_mask=padding, cache={}, **extra)
    np.testing.assert_array_equal(same.numpy(), full.numpy())
    cache, outputs = {}, []
    for part in _step_slices(length):
        out, cache = dec(
            x[:, part], memory, decoder_padding_mask=padding[:, part], cache=cache, **extra
        )
        outputs.append(out.numpy())
    np.testing.assert_allclose(np.concatenate(outputs, axis=1), full.numpy(), rtol=0, atol=1e-12)
    for name in ("key", "value"):
        np.testing.assert_allclose(
            cache[name].numpy(), full_cache[name].numpy(), rtol=0, atol=1e-12
        )
    assert hasattr(dec, "cross_attention") == with_encoder


# ------------------------------------------------------------------ Transformer blocks
def _torch_dtype(torch, dtype):
    return getattr(torch, np.dtype(dtype).name)


@pytest.mark.parametrize("normalize_first", [False, True], ids=["post_norm", "pre_norm"])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_encoder_matches_torch(torch, dtype, activation, normalize_first):
    """With src_key_padding_mask: the padded rows differ by design (Ember's padded queries
    attend to nothing, PyTorch's attend to the real keys), so they get a zero cotangent and
    are left out of the output comparison; nothing else depends on them."""
    rng = np.random.default_rng(5)
    length = 5
    keep = _right_padding([5, 3], length)
    x_np = rng.standard_normal((B, length, E)).astype(dtype)
    cotangent = rng.standard_normal((B, length, E)).astype(dtype) * keep[..., None]
    enc = layers.TransformerEncoder(
        F, H, activation=activation, normalize_first=normalize_first,
        bias_initializer="glorot_uniform", dtype=dtype,
    )  # fmt: skip
    x = _leaf(x_np)
    out = enc(x, padding_mask=keep)
    (out * Tensor(cotangent)).sum().backward()

    t = torch.nn.TransformerEncoderLayer(
        E, H, F, dropout=0.0, activation=activation, batch_first=True,
        norm_first=normalize_first, dtype=_torch_dtype(torch, dtype),
    )  # fmt: skip
    _copy_block(enc, t, torch)
    tx = _t(torch, x_np, True)
    t_out = t(tx, src_key_padding_mask=_t(torch, ~keep))
    (t_out * _t(torch, cotangent)).sum().backward()
    assert out.dtype == dtype
    _close(out.numpy()[keep], t_out.detach().numpy()[keep], dtype, "output (real rows)")
    _close(x.grad, tx.grad.numpy(), dtype, "gradient of the input")
    _compare_grads(_block_grad_pairs(enc, t), dtype)
    x_masked = Tensor(x_np)
    x_masked._keras_mask = Tensor(keep)  # the input's mask is the default padding mask
    np.testing.assert_array_equal(enc(x_masked).numpy(), out.numpy())


def test_encoder_attention_mask_matches_torch_src_mask(torch):
    rng = np.random.default_rng(6)
    length = 4
    x_np = rng.standard_normal((B, length, E))
    allowed = rng.random((B, length, length)) > 0.5
    allowed[..., 0] = True
    cotangent = rng.standard_normal((B, length, E))
    enc = layers.TransformerEncoder(F, H, dtype="float64")
    x = _leaf(x_np)
    (enc(x, attention_mask=allowed) * Tensor(cotangent)).sum().backward()
    t = torch.nn.TransformerEncoderLayer(
        E, H, F, dropout=0.0, batch_first=True, dtype=torch.float64
    )
    _copy_block(enc, t, torch)
    tx = _t(torch, x_np, True)
    t_out = t(tx, src_mask=_t(torch, ~np.repeat(allowed, H, axis=0)))
    (t_out * _t(torch, cotangent)).sum().backward()
    _close(enc(x_np, attention_mask=allowed).numpy(), t_out.detach().numpy(), np.float64, "output")
    _close(x.grad, tx.grad.numpy(), np.float64, "gradient of the input")
    _compare_grads(_block_grad_pairs(enc, t), np.float64)


@pytest.mark.parametrize("normalize_first", [False, True], ids=["post_norm", "pre_norm"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_decoder_matches_torch(torch, dtype, normalize_first):
    """Causal tgt_mask, tgt_key_padding_mask and memory_key_padding_mask; the padded target
    rows are left out as in the encoder test."""
    rng = np.random.default_rng(7)
    length, source = 5, 6
    keep = _right_padding([5, 3], length)
    memory_keep = _right_padding([6, 4], source)
    x_np = rng.standard_normal((B, length, E)).astype(dtype)
    m_np = rng.standard_normal((B, source, E)).astype(dtype)
    cotangent = rng.standard_normal((B, length, E)).astype(dtype) * keep[..., None]
    dec = layers.TransformerDecoder(
        F, H, activation="gelu", normalize_first=normalize_first,
        bias_initializer="glorot_uniform", dtype=dtype,
    )  # fmt: skip
    x, m = _leaf(x_np), _leaf(m_np)
    out = dec(x, m, decoder_padding_mask=keep, encoder_padding_mask=memory_keep)
    (out * Tensor(cotangent)).sum().backward()

    t = torch.nn.TransformerDecoderLayer(
        E, H, F, dropout=0.0, activation="gelu", batch_first=True, norm_first=normalize_first,
        dtype=_torch_dtype(torch, dtype),
    )  # fmt: skip
    _copy_block(dec, t, torch)
    tx, tm = _t(torch, x_np, True), _t(torch, m_np, True)
    t_out = t(
        tx, tm, tgt_mask=_t(torch, np.triu(np.ones((length, length), bool), 1)),
        tgt_key_padding_mask=_t(torch, ~keep), memory_key_padding_mask=_t(torch, ~memory_keep),
    )  # fmt: skip
    (t_out * _t(torch, cotangent)).sum().backward()
    assert out.dtype == dtype
    _close(out.numpy()[keep], t_out.detach().numpy()[keep], dtype, "output (real rows)")
    _close(x.grad, tx.grad.numpy(), dtype, "gradient of the target")
    _close(m.grad, tm.grad.numpy(), dtype, "gradient of the memory")
    _compare_grads(_block_grad_pairs(dec, t), dtype)
    masked_memory = Tensor(m_np)
    masked_memory._keras_mask = Tensor(memory_keep)  # the memory's mask is the default
    np.testing.assert_array_equal(
        dec(x_np, masked_memory, decoder_padding_mask=keep).numpy(), out.numpy()
    )


def test_decoder_without_causal_mask_matches_torch(torch):
    rng = np.random.default_rng(8)
    x_np, m_np = rng.standard_normal((B, 4, E)), rng.standard_normal((B, 3, E))
    dec = layers.TransformerDecoder(F, H, dtype="float64")
    out = dec(x_np, m_np, use_causal_mask=False)
    t = torch.nn.TransformerDecoderLayer(
        E, H, F, dropout=0.0, batch_first=True, dtype=torch.float64
    )
    _copy_block(dec, t, torch)
    _close(out.numpy(), t(_t(torch, x_np), _t(torch, m_np)).detach().numpy(), np.float64, "output")


# ----------------------------------------------------- Attention and AdditiveAttention
def _keras_scores(layer, query, key, weights):
    """Keras' score functions, transcribed: ``weights`` are the layer's weight values."""
    q, k = query[:, :, None, :], key[:, None, :, :]
    if isinstance(layer, layers.AdditiveAttention):
        scale = weights[0] if layer.use_scale else 1.0
        return np.sum(scale * np.tanh(q + k), axis=-1)
    scale = weights[0] if layer.use_scale else None
    if layer.score_mode == "dot":
        scores = query @ key.transpose(0, 2, 1)
        return scores if scale is None else scores * scale
    summed = q + k if scale is None else scale * (q + k)
    return weights[-1] * np.sum(np.tanh(summed), axis=-1)


def _keras_attention(layer, query, value, key, weights, masks=(None, None), causal=False):
    """Keras' Attention._apply_scores: masked scores lose 1e9, softmax, weights @ value, the
    query mask zeroes padded queries. Returns (output, weights)."""
    scores = _keras_scores(layer, query, key, weights)
    keep = np.ones(scores.shape, bool)
    if masks[1] is not None:
        keep &= masks[1][:, None, :]
    if causal:
        keep &= np.tril(np.ones(scores.shape[-2:], bool))  # Keras: row i sees columns j <= i
    scores = scores - 1e9 * ~keep
    probabilities = np.exp(scores - scores.max(axis=-1, keepdims=True))
    probabilities /= probabilities.sum(axis=-1, keepdims=True)
    output = probabilities @ value
    if masks[0] is not None:
        output = output * masks[0][..., None]
    return output, probabilities


SCORE_LAYERS = {
    "dot": lambda **kw: layers.Attention(**kw),
    "dot_scaled": lambda **kw: layers.Attention(use_scale=True, **kw),
    "concat": lambda **kw: layers.Attention(score_mode="concat", **kw),
    "concat_scaled": lambda **kw: layers.Attention(use_scale=True, score_mode="concat", **kw),
    "additive": lambda **kw: layers.AdditiveAttention(**kw),
    "additive_unscaled": lambda **kw: layers.AdditiveAttention(use_scale=False, **kw),
}


def _score_setup(kind, dtype, length=4, source=5, dim=3):
    rng = np.random.default_rng(sum(map(ord, kind)))
    arrays = [rng.standard_normal((B, n, dim)).astype(dtype) for n in (length, source, source)]
    layer = SCORE_LAYERS[kind](dtype=dtype)
    layer(arrays)  # build, then give the weights values that are not 1
    layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(dtype) for w in layer.get_weights()])
    value_mask = rng.random((B, source)) > 0.4
    value_mask[:, 0] = True
    query_mask = _right_padding([length, length - 1], length)
    return layer, arrays, (query_mask, value_mask), rng


@pytest.mark.parametrize("causal", [False, True], ids=["", "causal"])
@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("kind", list(SCORE_LAYERS))
def test_score_attention_matches_keras_formula(kind, dtype, masked, causal):
    layer, (query, value, key), masks, _ = _score_setup(kind, dtype, length=5)
    masks = masks if masked else (None, None)
    kwargs = {"mask": list(masks)} if masked else {}
    out, weights = layer(
        [query, value, key], return_attention_scores=True, use_causal_mask=causal, **kwargs
    )
    expected = _keras_attention(
        layer, *(a.astype(np.float64) for a in (query, value, key)),
        [w.astype(np.float64) for w in layer.get_weights()], masks, causal,
    )  # fmt: skip
    assert out.dtype == dtype and weights.dtype == dtype
    _close(out.numpy(), expected[0], dtype, "output")
    _close(weights.numpy(), expected[1], dtype, "attention scores")
    if masked:
        np.testing.assert_array_equal(out._keras_mask.numpy(), masks[0])  # the query's mask


@pytest.mark.parametrize("kind", list(SCORE_LAYERS))
def test_score_attention_gradients(kind):
    """Input gradients against finite differences (gradcheck); weight gradients against
    central differences of the NumPy formula."""
    layer, (query, value, key), masks, rng = _score_setup(kind, np.float64)
    c_out, c_w = rng.standard_normal((B, 4, 3)), rng.standard_normal((B, 4, 5))

    def combined(q, v, k):  # the output and the weights, flattened into one tensor
        out, w = layer([q, v, k], mask=list(masks), return_attention_scores=True)
        flat = [ember.ops.reshape(t, (-1,)) for t in (out, w)]
        return ember.ops.concatenate(flat)

    gradcheck(combined, query, value, key)
    if not layer.trainable_weights:
        return
    layer.zero_grad()  # gradcheck's own backward passes reached the weights too
    out, w = layer([query, value, key], mask=list(masks), return_attention_scores=True)
    ((out * Tensor(c_out)).sum() + (w * Tensor(c_w)).sum()).backward()
    values = layer.get_weights()

    def loss(weight_values):
        o, p = _keras_attention(layer, query, value, key, weight_values, masks)
        return np.sum(o * c_out) + np.sum(p * c_w)

    eps = 1e-6
    for i, weight in enumerate(layer.trainable_weights):
        numeric = np.zeros(values[i].shape)
        for index in np.ndindex(values[i].shape):
            plus = [v.copy() for v in values]
            minus = [v.copy() for v in values]
            plus[i][index] += eps
            minus[i][index] -= eps
            numeric[index] = (loss(plus) - loss(minus)) / (2 * eps)
        np.testing.assert_allclose(weight.grad, numeric, rtol=1e-6, atol=1e-7, err_msg=weight.name)


def test_score_attention_masks_come_from_the_inputs():
    """[query_mask, value_mask] default to the inputs' own masks (Embedding(mask_zero=True));
    a key with no mask of its own takes none."""
    layer, (query, value, key), (query_mask, value_mask), _ = _score_setup("dot", np.float64)
    expected = layer([query, value, key], mask=[query_mask, value_mask]).numpy()
    q, v = Tensor(query), Tensor(value)
    q._keras_mask, v._keras_mask = Tensor(query_mask), Tensor(value_mask)
    out = layer([q, v, Tensor(key)])
    np.testing.assert_array_equal(out.numpy(), expected)
    np.testing.assert_array_equal(out._keras_mask.numpy(), query_mask)
    assert layer([query, value]).shape == (B, 4, 3)  # two inputs: the value is the key


@pytest.mark.parametrize("kind", ["dot", "additive"])
def test_score_attention_fully_masked_query_is_zero_and_finite(kind):
    """Keras' -1e9 bias would spread such a row uniformly over the masked keys; Ember gives
    zero weights and a zero output (documented), with finite gradients."""
    layer, (query, value, key), _, _ = _score_setup(kind, np.float64)
    value_mask = np.ones((B, 5), bool)
    value_mask[1] = False
    q, v, k = _leaf(query), _leaf(value), _leaf(key)
    with np.errstate(**STRICT):
        out, weights = layer([q, v, k], mask=[None, value_mask], return_attention_scores=True)
        (out.sum() + (weights * weights).sum()).backward()
    np.testing.assert_array_equal(out.numpy()[1], 0.0)
    np.testing.assert_array_equal(weights.numpy()[1], 0.0)
    for grad in (q.grad, v.grad, k.grad, *(w.grad for w in layer.trainable_weights)):
        assert np.isfinite(grad).all()
    np.testing.assert_array_equal(q.grad[1], 0.0)


# ---------------------------------------------------------------------------- dropout
def test_score_attention_dropout_scales_kept_weights_and_is_seeded():
    """With value = identity the output IS the dropped weight matrix: each entry is 0 or the
    weight / (1 - rate). Same seed, same mask; inference uses no dropout."""
    rng = np.random.default_rng(9)
    length, source, rate = 4, 6, 0.5
    query = rng.standard_normal((B, length, source))
    key = rng.standard_normal((B, source, source))
    identity = np.broadcast_to(np.eye(source), (B, source, source))
    inputs = [query, identity, key]
    plain, weights = layers.Attention(dtype="float64")(inputs, return_attention_scores=True)
    first = layers.Attention(dropout=rate, seed=3, dtype="float64")
    second = layers.Attention(dropout=rate, seed=3, dtype="float64")
    dropped, scores = first(inputs, training=True, return_attention_scores=True)
    np.testing.assert_array_equal(scores.numpy(), weights.numpy())  # scores: pre-dropout
    kept = dropped.numpy() != 0
    assert 0 < kept.mean() < 1
    np.testing.assert_allclose(dropped.numpy()[kept], weights.numpy()[kept] / (1 - rate))
    np.testing.assert_array_equal(second(inputs, training=True).numpy(), dropped.numpy())
    np.testing.assert_array_equal(first(inputs, training=False).numpy(), plain.numpy())
    np.testing.assert_array_equal(first(inputs).numpy(), plain.numpy())  # inference default
    additive = layers.AdditiveAttention(dropout=rate, seed=4, use_scale=False, dtype="float64")
    np.testing.assert_array_equal(
        additive(inputs).numpy(),
        layers.AdditiveAttention(use_scale=False, dtype="float64")(inputs).numpy(),
    )
    assert not np.array_equal(additive(inputs, training=True).numpy(), additive(inputs).numpy())


def test_mha_dropout_is_seeded_and_inactive_at_inference():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((B, 5, E))
    plain = layers.MultiHeadAttention(H, E // H, dtype="float64")
    expected = plain(x, x).numpy()
    seeded = [
        layers.MultiHeadAttention(H, E // H, dropout=0.3, seed=7, dtype="float64") for _ in "ab"
    ]
    for layer in seeded:
        layer(x, x)
        layer.set_weights(plain.get_weights())
    np.testing.assert_array_equal(seeded[0](x, x).numpy(), expected)
    np.testing.assert_array_equal(seeded[0](x, x, training=False).numpy(), expected)
    trained = seeded[0](x, x, training=True).numpy()
    assert not np.allclose(trained, expected)
    np.testing.assert_array_equal(seeded[1](x, x, training=True).numpy(), trained)
    ember.manual_seed(11)  # no seed: Ember's generator, reproducible through manual_seed
    unseeded = layers.MultiHeadAttention(H, E // H, dropout=0.3, dtype="float64")
    unseeded(x, x)
    unseeded.set_weights(plain.get_weights())
    ember.manual_seed(11)
    again = unseeded(x, x, training=True).numpy()
    ember.manual_seed(11)
    np.testing.assert_array_equal(unseeded(x, x, training=True).numpy(), again)


def test_transformer_dropout_only_in_training():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((B, 5, E)).astype(np.float32)
    block = layers.TransformerEncoder(F, H, dropout=0.2)
    inference = block(x).numpy()
    np.testing.assert_array_equal(block(x, training=False).numpy(), inference)
    assert not np.allclose(block(x, training=True).numpy(), inference)
    decoder = layers.TransformerDecoder(F, H, dropout=0.2)
    np.testing.assert_array_equal(decoder(x).numpy(), decoder(x, training=False).numpy())
    assert not np.allclose(decoder(x, training=True).numpy(), decoder(x).numpy())


# ------------------------------------------------------------------ position encodings
@pytest.mark.parametrize("features", [6, 7])
def test_sine_position_encoding_formula(features):
    layer = layers.SinePositionEncoding()
    x = np.random.default_rng(13).standard_normal((B, 9, features)).astype(np.float32)
    encoding = layer(x)
    assert encoding.shape == x.shape and encoding.dtype == np.float32
    assert not layer.weights
    positions = np.arange(9)[:, None]
    j = np.arange(features)[None, :]
    angles = positions / 10000.0 ** (2 * (j // 2) / features)
    expected = np.where(j % 2 == 0, np.sin(angles), np.cos(angles))  # sin even, cos odd
    np.testing.assert_allclose(encoding.numpy(), np.broadcast_to(expected, x.shape), atol=1e-6)
    shifted = layer(x[:, :4], start_index=5)
    np.testing.assert_array_equal(shifted.numpy(), encoding.numpy()[:, 5:9])
    short = layers.SinePositionEncoding(max_wavelength=100.0)(np.zeros((1, 9, features)))
    angles = positions / 100.0 ** (2 * (j // 2) / features)
    np.testing.assert_allclose(
        short.numpy()[0], np.where(j % 2 == 0, np.sin(angles), np.cos(angles)), atol=1e-6
    )


def test_position_embedding_values_gradient_and_limit():
    layer = layers.PositionEmbedding(sequence_length=6, name="positions", dtype="float64")
    x = np.zeros((B, 4, 3))
    out = layer(x)
    table = layer.position_embeddings.numpy()
    np.testing.assert_array_equal(out.numpy(), np.broadcast_to(table[:4], (B, 4, 3)))
    np.testing.assert_array_equal(layer(x[:, :2], start_index=4).numpy()[0], table[4:6])
    cotangent = np.random.default_rng(14).standard_normal((B, 4, 3))
    (out * Tensor(cotangent)).sum().backward()
    expected = np.zeros_like(table)
    expected[:4] = cotangent.sum(axis=0)
    np.testing.assert_allclose(layer.position_embeddings.grad, expected)
    with pytest.raises(ValueError, match=r'"positions".*6 positions.*0\.\.6.*sequence_length'):
        layer(np.zeros((B, 7, 3)))
    with pytest.raises(ValueError, match=r'"positions".*positions 4\.\.6'):
        layer(x[:, :3], start_index=4)
    with pytest.raises(ValueError, match=r'"positions".*start_index'):
        layer(x, start_index=-1)
    with pytest.raises(ValueError, match="sequence_length must be a positive integer"):
        layers.PositionEmbedding(sequence_length=0)


def test_token_and_position_embedding_values_and_mask():
    ids = np.array([[3, 1, 4, 0, 0], [2, 7, 1, 8, 0]])
    layer = layers.TokenAndPositionEmbedding(10, 8, 4, mask_zero=True, dtype="float64")
    out = layer(ids)
    tokens = layer.token_embedding.embeddings.numpy()
    positions = layer.position_embedding.position_embeddings.numpy()
    np.testing.assert_allclose(out.numpy(), tokens[ids] + positions[:5], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(out._keras_mask.numpy(), ids != 0)
    shifted = layer(ids[:, :2], start_index=3)
    np.testing.assert_allclose(shifted.numpy(), tokens[ids[:, :2]] + positions[3:5], atol=1e-15)
    assert layers.TokenAndPositionEmbedding(10, 8, 4)(ids)._keras_mask is None
    # the mask flows on: an encoder after it uses it as its padding mask
    encoder = layers.TransformerEncoder(F, 2, dtype="float64")
    np.testing.assert_array_equal(
        encoder(out).numpy(), encoder(out.numpy(), padding_mask=ids != 0).numpy()
    )


# ------------------------------------------------------------- models: fit, save, load
def _token_task(rng, n=48, length=6, vocab=12):
    """Right-padded id sequences (0 = padding) and whether token 1 occurs in each."""
    ids = rng.integers(2, vocab, size=(n, length))
    ids[rng.random((n, length)) < 0.15] = 1
    lengths = rng.integers(3, length + 1, size=n)
    ids[~_right_padding(lengths, length)] = 0
    return ids, (ids == 1).any(axis=1).astype(np.int64)


def _fit_improves(model, x, y, epochs=4):
    before = model.evaluate(x, y, verbose=0)
    history = model.fit(x, y, epochs=epochs, batch_size=16, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all()
    after = model.evaluate(x, y, verbose=0)
    before, after = (v[0] if isinstance(v, list) else v for v in (before, after))
    assert after < before


def test_encoder_classifier_fits_saves_and_loads(tmp_path):
    ember.manual_seed(0)
    ids, labels = _token_task(np.random.default_rng(15))
    inputs = layers.Input(shape=(None,), dtype="int32")
    hidden = layers.TokenAndPositionEmbedding(12, 16, 8, mask_zero=True)(inputs)
    hidden = layers.TransformerEncoder(16, 2, dropout=0.1)(hidden)
    outputs = layers.Dense(2, activation="softmax")(layers.GlobalAveragePooling1D()(hidden))
    model = ember.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    _fit_improves(model, ids, labels)
    predictions = model.predict(ids, verbose=0)
    # padding is invisible: two more padded steps change no prediction
    wider = np.concatenate([ids, np.zeros((len(ids), 2), ids.dtype)], axis=1)
    np.testing.assert_allclose(model.predict(wider, verbose=0), predictions, atol=1e-6)
    path = tmp_path / "encoder.ember"
    model.save(path)
    loaded = ember.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(ids, verbose=0), predictions)
    encoder = next(layer for layer in loaded.layers if isinstance(layer, layers.TransformerEncoder))
    assert (encoder.dropout, encoder.num_heads, encoder.intermediate_dim) == (0.1, 2, 16)


def test_decoder_only_language_model_fits_saves_and_loads(tmp_path):
    ember.manual_seed(1)
    ids, _ = _token_task(np.random.default_rng(16), length=7)
    x, y = ids[:, :-1], ids[:, 1:]
    inputs = layers.Input(shape=(None,), dtype="int32")
    hidden = layers.TokenAndPositionEmbedding(12, 16, 8, mask_zero=True)(inputs)
    hidden = layers.TransformerDecoder(16, 2, normalize_first=True)(hidden)
    model = ember.Model(inputs, layers.Dense(12, activation="softmax")(hidden))
    model.compile("adam", "sparse_categorical_crossentropy")
    _fit_improves(model, x, y)
    predictions = model.predict(x, verbose=0)
    changed = x.copy()
    changed[:, 3:] = np.where(changed[:, 3:] > 0, changed[:, 3:] % 11 + 1, 0)  # other later ids
    np.testing.assert_allclose(
        model.predict(changed, verbose=0)[:, :3], predictions[:, :3], atol=1e-6
    )
    path = tmp_path / "decoder.ember"
    model.save(path)
    np.testing.assert_array_equal(ember.models.load_model(path).predict(x, verbose=0), predictions)


def test_models_with_attention_layers_save_and_load(tmp_path):
    """Masks from an Embedding through MultiHeadAttention (causal), Attention, AdditiveAttention,
    and an encoder-decoder with a sine position encoding."""
    ember.manual_seed(2)
    ids = np.array([[3, 1, 4, 1, 5], [9, 2, 6, 0, 0]])
    inputs = layers.Input(shape=(None,), dtype="int32")
    hidden = layers.Embedding(12, 8, mask_zero=True)(inputs)
    attended = layers.MultiHeadAttention(2, 4, dropout=0.1, seed=5)(
        hidden, hidden, use_causal_mask=True
    )
    attended = layers.Attention(use_scale=True, score_mode="concat")([attended, hidden])
    attended = layers.AdditiveAttention()([attended, hidden])
    model = ember.Model(inputs, layers.Dense(3)(layers.GlobalAveragePooling1D()(attended)))

    source = layers.Input(shape=(None,), dtype="int32")
    target = layers.Input(shape=(None,), dtype="int32")
    memory = layers.Embedding(12, 8, mask_zero=True)(source)
    memory = layers.Add()([memory, layers.SinePositionEncoding()(memory)])
    memory = layers.TransformerEncoder(16, 2)(memory)
    decoded = layers.TokenAndPositionEmbedding(12, 16, 8, mask_zero=True)(target)
    decoded = layers.TransformerDecoder(16, 2)(decoded, memory)
    seq2seq = ember.Model([source, target], layers.Dense(12)(decoded))
    for name, net, x in (("mixed", model, ids), ("seq2seq", seq2seq, [ids, ids[:, :4]])):
        predictions = net.predict(x, verbose=0)
        assert np.isfinite(predictions).all()
        net.save(tmp_path / f"{name}.ember")
        loaded = ember.models.load_model(tmp_path / f"{name}.ember")
        np.testing.assert_array_equal(loaded.predict(x, verbose=0), predictions, err_msg=name)


CONFIG_LAYERS = {
    "mha": lambda: layers.MultiHeadAttention(
        2, 3, value_dim=5, output_shape=7, dropout=0.2, use_bias=False, seed=4
    ),  # fmt: skip
    "attention": lambda: layers.Attention(use_scale=True, score_mode="concat", dropout=0.1),
    "additive": lambda: layers.AdditiveAttention(use_scale=True, seed=2),
    "encoder": lambda: layers.TransformerEncoder(
        12, 2, dropout=0.1, activation="gelu", layer_norm_epsilon=1e-6, normalize_first=True
    ),
    "decoder": lambda: layers.TransformerDecoder(12, 2, activation="gelu"),
    "sine": lambda: layers.SinePositionEncoding(max_wavelength=500.0),
    "position": lambda: layers.PositionEmbedding(9, initializer="he_normal"),
    "token_position": lambda: layers.TokenAndPositionEmbedding(10, 9, 4, mask_zero=True),
}


def _config_call(kind, layer, x, ids):
    if kind == "mha":
        return layer(x, x[:, :3], use_causal_mask=True)
    if kind in ("attention", "additive"):
        return layer([x, x[:, :3]], mask=[None, ids[:, :3] > 0])
    if kind == "decoder":
        return layer(x, x[:, :3])
    return layer(ids if kind == "token_position" else x)


@pytest.mark.parametrize("kind", list(CONFIG_LAYERS))
def test_layer_config_round_trip(kind):
    """get_config -> from_config -> the same weights give the same output (and mask)."""
    rng = np.random.default_rng(17)
    x = rng.standard_normal((B, 5, 4)).astype(np.float32)
    ids = np.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 0]])
    layer = CONFIG_LAYERS[kind]()
    out = _config_call(kind, layer, x, ids)
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    _config_call(kind, clone, x, ids)
    clone.set_weights(layer.get_weights())
    again = _config_call(kind, clone, x, ids)
    np.testing.assert_array_equal(again.numpy(), out.numpy())
    mask = out._keras_mask
    assert (again._keras_mask is None) == (mask is None)
    if mask is not None:
        np.testing.assert_array_equal(again._keras_mask.numpy(), mask.numpy())


# ------------------------------------------------------------------------ float32 stays
def test_float32_gradients_stay_float32(grad_probe):
    """No float64 computation inside a float32 layer: the gradients reaching the inputs (seen
    inside the graph, before a leaf's .grad would cast them) and the outputs are float32."""
    rng = np.random.default_rng(18)
    x = _leaf(rng.standard_normal((B, 4, E)).astype(np.float32))
    m = _leaf(rng.standard_normal((B, 3, E)).astype(np.float32))
    keep = _right_padding([4, 2], 4)
    calls = {
        "mha": lambda a, b: layers.MultiHeadAttention(H, 4)(
            a, b, query_mask=keep, return_attention_scores=True
        ),
        "encoder": lambda a, b: layers.TransformerEncoder(F, H, dropout=0.1)(
            a, padding_mask=keep, training=True
        ),
        "decoder": lambda a, b: layers.TransformerDecoder(F, H)(a, b, decoder_padding_mask=keep),
        "attention": lambda a, b: layers.Attention(use_scale=True, score_mode="concat")(
            [a, b], mask=[keep, None], return_attention_scores=True
        ),
        "additive": lambda a, b: layers.AdditiveAttention(dropout=0.2)([a, b], training=True),
    }
    for name, call in calls.items():
        seen = []
        result = call(grad_probe(x, seen), grad_probe(m, seen))
        outputs = result if isinstance(result, tuple) else (result,)
        assert all(o.dtype == np.float32 for o in outputs), name
        sum(((o * o).sum() for o in outputs[1:]), outputs[0].sum()).backward()
        assert seen and all(d == np.float32 for d in seen), (name, seen)


# -------------------------------------------------------------------------------- errors
def test_heads_must_divide_the_feature_size():
    for cls in (layers.TransformerEncoder, layers.TransformerDecoder):
        with pytest.raises(ValueError, match=rf'"block" \({cls.__name__}\): the feature size 8 '
                                             r"must be divisible by num_heads=3"):  # fmt: skip
            cls(16, 3, name="block")(np.ones((B, 4, E), np.float32))
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=r'"mha" \(MultiHeadAttention\): num_heads must be'):
            layers.MultiHeadAttention(bad, 4, name="mha")
        with pytest.raises(ValueError, match=r'"enc" \(TransformerEncoder\): num_heads must be'):
            layers.TransformerEncoder(16, bad, name="enc")
    with pytest.raises(ValueError, match=r'"mha" \(MultiHeadAttention\): key_dim must be'):
        layers.MultiHeadAttention(2, 0, name="mha")
    with pytest.raises(ValueError, match=r'"dec" \(TransformerDecoder\): intermediate_dim must'):
        layers.TransformerDecoder(0, 2, name="dec")


def test_inputs_must_be_three_dimensional():
    x2, x3 = np.ones((B, E), np.float32), np.ones((B, 4, E), np.float32)
    with pytest.raises(ValueError, match=r'"mha" \(MultiHeadAttention\): query must be \(batch, '
                                         r"length, features\), got shape \(2, 8\)"):  # fmt: skip
        layers.MultiHeadAttention(H, 4, name="mha")(x2, x2)
    with pytest.raises(ValueError, match=r'"mha2" \(MultiHeadAttention\): value must be'):
        layers.MultiHeadAttention(H, 4, name="mha2")(x3, x2)
    with pytest.raises(ValueError, match=r'"enc_self_attention" \(MultiHeadAttention\): query'):
        layers.TransformerEncoder(F, H, name="enc")(x2)
    with pytest.raises(ValueError, match=r'"dec_self_attention" \(MultiHeadAttention\): query'):
        layers.TransformerDecoder(F, H, name="dec")(x2)
    with pytest.raises(ValueError, match=r"key and value must have the same length"):
        layers.MultiHeadAttention(H, 4)(x3, x3, key=np.ones((B, 5, E), np.float32))


def test_score_attention_rejects_two_dimensional_inputs_by_name():
    x2 = np.ones((B, E), np.float32)
    with pytest.raises(ValueError, match=r'"att"'):
        layers.Attention(name="att")([x2, x2])


def test_additive_attention_rejects_a_single_tensor_by_name():
    with pytest.raises(ValueError, match=r'"add" \(AdditiveAttention\) takes a list'):
        layers.AdditiveAttention(name="add")(np.ones((B, 4, E), np.float32))


def test_score_attention_errors():
    x = np.ones((B, 4, E), np.float32)
    with pytest.raises(ValueError, match=r'"att" \(Attention\) takes a list \[query, value\]'):
        layers.Attention(name="att")([x])
    with pytest.raises(ValueError, match=r'"att" \(Attention\): score_mode must be "dot" or'):
        layers.Attention(score_mode="general", name="att")
    wrong = np.ones((B, 5), bool)  # 5 keys for 4
    with pytest.raises(ValueError, match=r'"att" \(Attention\): the value.s mask must have shape'):
        layers.Attention(name="att")([x, x], mask=[None, wrong], use_causal_mask=True)
    with pytest.raises(ValueError, match=r'"mha" \(MultiHeadAttention\): the value.s mask must'):
        layers.MultiHeadAttention(H, 4, name="mha")(x, x, value_mask=wrong, use_causal_mask=True)
    with pytest.raises(ValueError, match=r'"mha" \(MultiHeadAttention\): only attention over'):
        layers.MultiHeadAttention(H, 4, attention_axes=(1, 2), name="mha")


def test_a_single_mask_of_the_wrong_shape_is_reported_by_the_layer():
    x = np.ones((B, 4, E), np.float32)
    with pytest.raises(ValueError, match=r'"att"'):
        layers.Attention(name="att")([x, x], mask=[None, np.ones((B, 5), bool)])
    with pytest.raises(ValueError, match=r'"mha"'):
        layers.MultiHeadAttention(H, 4, name="mha")(x, x, attention_mask=np.ones((B, 4, 3), bool))


def test_bad_dropout_is_rejected_by_name():
    for cls, args in (
        (layers.MultiHeadAttention, (H, 4)), (layers.Attention, ()),
        (layers.AdditiveAttention, ()),
    ):  # fmt: skip
        for bad in (1.0, -0.1, 1.5, "0.1", None, True):
            with pytest.raises(ValueError, match=rf'"bad" \({cls.__name__}\): dropout must be a '
                                                 r"number in \[0, 1\)"):  # fmt: skip
                cls(*args, dropout=bad, name="bad")
    # the blocks check their dropout when constructed, naming themselves
    for cls in (layers.TransformerEncoder, layers.TransformerDecoder):
        for bad in (1.5, "abc", True):
            with pytest.raises(ValueError, match=rf'"block" \({cls.__name__}\): dropout must be'):
                cls(F, H, dropout=bad, name="block")


def test_transformer_blocks_validate_dropout_when_constructed():
    for cls in (layers.TransformerEncoder, layers.TransformerDecoder):
        for bad in (1.5, "abc", True):
            with pytest.raises(
                (ValueError, TypeError), match=rf'"block" \({cls.__name__}\).*dropout'
            ):
                cls(F, H, dropout=bad, name="block")


# -------------------------------------------------------------- Keras parity: known gaps
@pytest.mark.parametrize("kind", ["mha", "attention"])
def test_causal_mask_with_fewer_queries_than_keys_is_keras_lower_triangular(kind):
    rng = np.random.default_rng(19)
    query, value = rng.standard_normal((B, 3, E)), rng.standard_normal((B, 5, E))
    if kind == "mha":
        layer = layers.MultiHeadAttention(H, 4, dtype="float64")
        _, weights = layer(query, value, use_causal_mask=True, return_attention_scores=True)
        pattern = weights.numpy()[0, 0] > 0
    else:
        layer = layers.Attention(dtype="float64")
        _, weights = layer([query, value], use_causal_mask=True, return_attention_scores=True)
        pattern = weights.numpy()[0] > 0
    np.testing.assert_array_equal(pattern, np.tril(np.ones((3, 5), bool)))


def test_float32_layers_autocast_float64_arrays():
    x, memory = np.ones((B, 4, E)), np.ones((B, 3, E))  # float64, as np.random gives them
    assert layers.MultiHeadAttention(H, 4)(x, memory).dtype == np.float32
    assert layers.TransformerDecoder(F, H)(x, memory).dtype == np.float32


def test_token_and_position_embedding_short_sequence_length_on_variable_input():
    inputs = layers.Input(shape=(None,), dtype="int32")
    outputs = layers.TokenAndPositionEmbedding(12, 8, 4, mask_zero=True)(inputs)
    model = ember.Model(inputs, outputs)
    assert model.predict(np.array([[1, 2, 3, 0]]), verbose=0).shape == (1, 4, 4)
