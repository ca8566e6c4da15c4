"""The fused scaled dot-product attention op and masked softmax (``ember.ops.attention``).

Each configuration (masks, causal, L != S, broadcast batch axes) is checked against float64
finite differences and against ``torch.nn.functional.scaled_dot_product_attention`` (float32 to
1e-5, float64 to 1e-10), for the output and for the gradients of query, key and value under a
random cotangent. Fully masked query rows must give zeros and finite (zero) gradients; PyTorch
may give NaN there, so those rows are asserted to be zero and only the others are compared.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import ember
from ember import Tensor, ops
from ember.ops import attention
from ember.testing import gradcheck

# floating-point errors that would mean NaN or inf somewhere (underflow of exp is expected)
STRICT = {"divide": "raise", "invalid": "raise", "over": "raise"}


def sdpa(*args, **kwargs):
    return attention.scaled_dot_product_attention(*args, **kwargs)


def _random_keep(rng, shape):
    """A random bool mask (True = may attend) in which every query keeps at least key 0."""
    keep = rng.random(shape) > 0.4
    keep[..., 0] = True
    return keep


def _random_bias(rng, shape):
    """A float mask with some -inf entries (never a whole row: key 0 stays finite)."""
    bias = rng.standard_normal(shape)
    bias[rng.random(shape) < 0.3] = -np.inf
    bias[..., 0] = 0.5
    return bias


@dataclasses.dataclass
class Config:
    id: str
    shapes: tuple  # query, key, value
    mask: object = None  # callable rng -> array, or None
    is_causal: bool = False
    scale: float | None = None

    def arrays(self, dtype):
        rng = np.random.default_rng(len(self.id) * 7919 + sum(map(ord, self.id)))
        qkv = [rng.uniform(-2.0, 2.0, size=s).astype(dtype) for s in self.shapes]
        mask = None if self.mask is None else self.mask(rng)
        return qkv, mask

    def ember(self, q, k, v, mask, **kwargs):
        return sdpa(q, k, v, mask, is_causal=self.is_causal, scale=self.scale, **kwargs)


QKV = ((2, 3, 4), (2, 5, 4), (2, 5, 3))
HEADS = ((2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 3))
CONFIGS = [
    Config("no_mask", HEADS),
    Config("no_mask_square", ((2, 4, 3), (2, 4, 3), (2, 4, 2))),
    Config("bool_mask", HEADS, lambda rng: _random_keep(rng, (2, 1, 3, 5))),
    Config("float_mask", HEADS, lambda rng: _random_bias(rng, (3, 5))),
    Config("causal_square", ((2, 4, 3), (2, 4, 3), (2, 4, 2)), is_causal=True),
    Config("causal_l_lt_s", QKV, is_causal=True),
    Config("causal_l_gt_s", ((2, 5, 4), (2, 3, 4), (2, 3, 2)), is_causal=True),
    Config("causal_and_bool_mask", HEADS, lambda rng: _random_keep(rng, (2, 2, 3, 5)), True),
    Config("causal_and_float_mask", QKV, lambda rng: _random_bias(rng, (2, 3, 5)), True),
    Config("broadcast_batch", ((2, 1, 3, 4), (1, 2, 5, 4), (5, 3))),
    Config(
        "broadcast_batch_mask",
        ((2, 1, 3, 4), (1, 2, 5, 4), (5, 3)),
        lambda r: _random_keep(r, (3, 5)),
    ),
    Config("scale", QKV, scale=0.3),
    Config("value_batch_only", ((3, 4), (5, 4), (2, 5, 3))),  # weights (L, S), output batched
    Config("mask_batch_only", ((3, 4), (5, 4), (2, 5, 3)), lambda r: _random_keep(r, (2, 3, 5))),
    Config("key_padding_1d_mask", HEADS, lambda rng: np.array([True, True, False, True, False])),
]
BY_ID = {c.id: c for c in CONFIGS}


def _torch_mask(torch, config, mask, shape, dtype):
    """PyTorch's attn_mask for ``config``: it refuses is_causal with a mask, so the causal part
    (top-left tril, its convention) is folded into the mask here."""
    length, source = shape[-2:]
    causal = np.tril(np.ones((length, source), dtype=bool)) if config.is_causal else None
    if mask is None:
        return None if causal is None else torch.as_tensor(causal)
    mask = np.array(np.broadcast_to(mask, shape))  # PyTorch wants at least (L, S)
    if mask.dtype == bool:
        return torch.as_tensor(mask if causal is None else mask & causal)
    bias = mask if causal is None else np.where(causal, mask, -np.inf)
    return torch.as_tensor(bias.astype(dtype))


def _torch_sdpa(torch, config, q, k, v, mask, cotangent):
    """Output and (q, k, v) gradients of PyTorch's op on the leading axes broadcast explicitly."""
    batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    leaves = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    full = [t.expand(*batch, *t.shape[-2:]) for t in leaves]
    t_mask = _torch_mask(torch, config, mask, (*batch, q.shape[-2], k.shape[-2]), q.dtype)
    out = torch.nn.functional.scaled_dot_product_attention(
        *full, attn_mask=t_mask, scale=config.scale
    )
    (out * torch.as_tensor(cotangent)).sum().backward()
    return out.detach().numpy(), [t.grad.numpy() for t in leaves]


def _ember_sdpa(config, q, k, v, mask, cotangent):
    leaves = [Tensor(a, requires_grad=True) for a in (q, k, v)]
    out = config.ember(*leaves, mask)
    out.backward(cotangent)
    return out, [t.grad for t in leaves]


# ------------------------------------------------------------------------- the op itself
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.id)
def test_gradcheck(config):
    (q, k, v), mask = config.arrays(np.float64)
    result = gradcheck(lambda q, k, v: config.ember(q, k, v, mask), q, k, v)
    assert result.ok and result.checked_elements == q.size + k.size + v.size


@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-5), (np.float64, 1e-10)])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.id)
def test_matches_torch(config, dtype, tol, torch):
    (q, k, v), mask = config.arrays(dtype)
    batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    shape = (*batch, q.shape[-2], v.shape[-1])
    cotangent = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    out, grads = _ember_sdpa(config, q, k, v, mask, cotangent)
    t_out, t_grads = _torch_sdpa(torch, config, q, k, v, mask, cotangent)
    assert out.dtype == dtype and out.shape == t_out.shape
    np.testing.assert_allclose(out.data, t_out, atol=tol, rtol=tol)
    for name, g, t_g in zip("qkv", grads, t_grads):
        assert g.dtype == dtype, name
        np.testing.assert_allclose(g, t_g, atol=tol, rtol=tol, err_msg=f"d{name}")


def test_output_is_one_node_and_weights_a_node_on_query_and_key():
    q, k, v = (Tensor(np.ones(s, np.float32), requires_grad=True) for s in QKV)
    out, weights = sdpa(q, k, v, return_weights=True)
    assert out._op == "scaled_dot_product_attention"
    assert [id(p) for p in out._parents] == [id(q), id(k), id(v)]  # every input directly
    assert [id(p) for p in weights._parents] == [id(q), id(k)]
    assert weights.shape == (2, 3, 5) and weights.dtype == np.float32
    np.testing.assert_allclose(weights.data.sum(-1), 1.0, rtol=1e-6)


@pytest.mark.parametrize(
    "config",
    [BY_ID[i] for i in ("bool_mask", "causal_and_bool_mask", "broadcast_batch")],
    ids=lambda c: c.id,
)
def test_gradcheck_through_weights(config):
    (q, k, v), mask = config.arrays(np.float64)

    def both(q, k, v):
        out, w = config.ember(q, k, v, mask, return_weights=True)
        return ops.concatenate([out.reshape((-1,)), w.reshape((-1,))])

    def weights_only(q, k, v):  # the output node is not in the graph at all
        return config.ember(q, k, v, mask, return_weights=True)[1]

    assert gradcheck(both, q, k, v).ok
    assert gradcheck(weights_only, q, k, v).ok


@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-5), (np.float64, 1e-10)])
def test_weights_match_torch_softmax(dtype, tol, torch):
    config = BY_ID["causal_and_bool_mask"]  # (2, 2) heads
    (q, k, v), mask = config.arrays(dtype)
    cotangent = np.random.default_rng(2).standard_normal((2, 2, 3, 5)).astype(dtype)
    e_q, e_k = Tensor(q, requires_grad=True), Tensor(k, requires_grad=True)
    weights = config.ember(e_q, e_k, v, mask, return_weights=True)[1]
    weights.backward(cotangent)
    t_q, t_k = torch.tensor(q, requires_grad=True), torch.tensor(k, requires_grad=True)
    keep = _torch_mask(torch, config, mask, (2, 2, 3, 5), dtype)
    scores = t_q @ t_k.transpose(-1, -2) / 2.0  # E = 4
    t_w = torch.softmax(scores.masked_fill(~keep, -torch.inf), dim=-1)
    (t_w * torch.as_tensor(cotangent)).sum().backward()
    np.testing.assert_allclose(weights.data, t_w.detach().numpy(), atol=tol, rtol=tol)
    np.testing.assert_allclose(e_q.grad, t_q.grad.numpy(), atol=tol, rtol=tol)
    np.testing.assert_allclose(e_k.grad, t_k.grad.numpy(), atol=tol, rtol=tol)


def test_mask_may_be_a_tensor_and_needs_no_gradient():
    (q, k, v), mask = BY_ID["bool_mask"].arrays(np.float32)
    as_array = sdpa(q, k, v, mask)
    as_tensor = sdpa(q, k, v, Tensor(mask))
    np.testing.assert_array_equal(as_tensor.data, as_array.data)
    bias = Tensor(np.where(mask, 0.0, -np.inf).astype(np.float32), requires_grad=True)
    out = sdpa(Tensor(q, requires_grad=True), k, v, bias)
    np.testing.assert_allclose(out.data, as_array.data, rtol=1e-6, atol=1e-7)
    out.sum().backward()
    assert bias.grad is None  # the mask is a constant of the op


def test_float32_stays_float32_with_float64_mask():
    (q, k, v), _ = BY_ID["no_mask"].arrays(np.float32)
    leaves = [Tensor(a, requires_grad=True) for a in (q, k, v)]
    bias = np.zeros((3, 5))  # float64
    out, w = sdpa(*leaves, bias, return_weights=True, dropout=0.2, seed=0)
    assert out.dtype == w.dtype == np.float32
    (out.sum() + w.sum()).backward()
    assert all(t.grad.dtype == np.float32 for t in leaves)


# -------------------------------------------------------------------- fully masked rows
def _dead_row_masks(rng):
    """(config, mask) pairs in which some query rows may attend to no key at all."""
    keep = _random_keep(rng, (2, 2, 3, 5))
    keep[0, 1, 2] = keep[1, :, 0] = False
    bias = _random_bias(rng, (2, 2, 3, 5))
    bias[1, 0, 1] = -np.inf
    causal_keep = _random_keep(rng, (3, 5))
    causal_keep[1] = [False, False, True, True, True]  # row 1 may only see keys 2..4 (> 1)
    return [
        (Config("dead_bool", HEADS), keep),
        (Config("dead_float", HEADS), bias),
        (Config("dead_causal", HEADS, is_causal=True), causal_keep),
    ]


def _effective_mask(torch, config, mask, shape, dtype):
    """(dead rows, a mask for PyTorch without is_causal in which dead rows attend everywhere):
    PyTorch then defines every row, and with a zero cotangent there the dead rows add nothing
    to its gradients, as they should add nothing to Ember's."""
    full = np.broadcast_to(_torch_mask(torch, config, mask, shape, dtype).numpy(), shape)
    if full.dtype == bool:
        dead = ~full.any(-1)
        return dead, full | dead[..., None]
    dead = np.isneginf(full).all(-1)
    return dead, np.where(dead[..., None], 0.0, full).astype(dtype)


@pytest.mark.parametrize("case", range(3))
@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-5), (np.float64, 1e-10)])
def test_fully_masked_rows_are_zero_and_match_torch_elsewhere(case, dtype, tol, torch):
    config, mask = _dead_row_masks(np.random.default_rng(5))[case]
    (q, k, v), _ = config.arrays(dtype)
    dead, live_mask = _effective_mask(torch, config, mask, (2, 2, 3, 5), dtype)
    assert dead.any() and not dead.all()
    cotangent = np.random.default_rng(3).standard_normal((2, 2, 3, 3)).astype(dtype)
    cotangent[dead] = 0
    with np.errstate(**STRICT):  # no 0/0, no inf - inf anywhere
        out, grads = _ember_sdpa(config, q, k, v, mask, cotangent)
        weights = config.ember(q, k, v, mask, return_weights=True)[1]
    assert np.all(out.data[dead] == 0) and np.all(weights.data[dead] == 0)
    assert all(np.isfinite(g).all() for g in grads)
    t_out, t_grads = _torch_sdpa(torch, Config("live", HEADS), q, k, v, live_mask, cotangent)
    np.testing.assert_allclose(out.data[~dead], t_out[~dead], atol=tol, rtol=tol)
    for name, g, t_g in zip("qkv", grads, t_grads):
        np.testing.assert_allclose(g, t_g, atol=tol, rtol=tol, err_msg=f"d{name}")


@pytest.mark.parametrize("case", range(3))
def test_fully_masked_rows_gradcheck_and_zero_query_gradient(case):
    config, mask = _dead_row_masks(np.random.default_rng(5))[case]
    (q, k, v), _ = config.arrays(np.float64)
    assert gradcheck(lambda q, k, v: config.ember(q, k, v, mask), q, k, v).ok
    leaves = [Tensor(a, requires_grad=True) for a in (q, k, v)]
    out, weights = config.ember(*leaves, mask, return_weights=True)
    (out.sum() + weights.sum()).backward()  # a cotangent on the dead rows too
    dead = ~(weights.data != 0).any(-1)
    assert dead.any()
    assert np.all(leaves[0].grad[dead] == 0)  # a query that attends to nothing
    assert all(np.isfinite(t.grad).all() for t in leaves)


# ---------------------------------------------------------------------------- dropout
def _uniform_attention(p, seed, dtype=np.float32, size=64):
    """Zero queries and keys give weights 1/S everywhere; with value = I the output IS the
    dropped weight matrix."""
    q = np.zeros((4, size, 8), dtype)
    v = np.eye(size, dtype=dtype)
    return sdpa(q, q, v, dropout=p, seed=seed).data


def test_dropout_is_reproducible_with_a_seed():
    a, b, c = (_uniform_attention(0.3, s) for s in (7, 7, 8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    ember.manual_seed(11)
    d = _uniform_attention(0.3, None)
    e = _uniform_attention(0.3, None)  # Ember's generator advanced: another mask
    ember.manual_seed(11)
    np.testing.assert_array_equal(_uniform_attention(0.3, None), d)
    assert not np.array_equal(d, e)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_drops_the_expected_fraction_with_inverted_scaling(dtype):
    out = _uniform_attention(0.3, 0, dtype)
    assert out.dtype == dtype
    dropped = np.mean(out == 0)
    assert abs(dropped - 0.3) < 0.02  # 16384 draws: the standard deviation is 0.0036
    kept = out[out != 0]
    np.testing.assert_allclose(kept, 1 / 64 / 0.7, rtol=1e-6)


def test_dropout_zero_is_exactly_no_dropout_and_draws_nothing():
    (q, k, v), mask = BY_ID["bool_mask"].arrays(np.float32)
    state = ember.get_rng_state()
    with_zero = sdpa(q, k, v, mask, dropout=0.0)
    after = ember.get_rng_state()
    np.testing.assert_array_equal(with_zero.data, sdpa(q, k, v, mask).data)
    assert after == state  # no random number drawn


@pytest.mark.parametrize(
    "config", [BY_ID["no_mask"], BY_ID["causal_and_bool_mask"]], ids=lambda c: c.id
)
def test_gradcheck_with_dropout_and_fixed_seed(config):
    (q, k, v), mask = config.arrays(np.float64)

    def fn(q, k, v):
        out, w = config.ember(q, k, v, mask, dropout=0.4, seed=3, return_weights=True)
        return ops.concatenate([out.reshape((-1,)), w.reshape((-1,))])

    reference = config.ember(q, k, v, mask).data
    assert not np.allclose(fn(q, k, v).data[: reference.size], reference.ravel())  # it drops
    assert gradcheck(fn, q, k, v).ok


# ----------------------------------------------------------------------- masked softmax
KEEP = np.array([[True, False, True, True], [False, False, False, False], [True] * 4])


@pytest.mark.parametrize(
    "shape, mask, axis",
    [((2, 3, 4), KEEP, -1), ((4, 3), KEEP.T, 0), ((3, 4), None, -1), ((3, 4), KEEP, 1)],
)
def test_masked_softmax_gradcheck(shape, mask, axis):
    x = np.random.default_rng(4).uniform(-2, 2, shape)
    assert gradcheck(lambda x: attention.masked_softmax(x, mask, axis), x).ok


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_masked_softmax_fully_masked_row_and_torch(dtype, torch):
    x = np.array([[1.0, 2.0, 1000.0, -1000.0], [5.0, 6.0, 7.0, 8.0], [0.0, 1.0, 2.0, 3.0]], dtype)
    t = Tensor(x, requires_grad=True)
    with np.errstate(**STRICT):
        y = attention.masked_softmax(t, KEEP)
        y.backward(np.arange(12.0, dtype=dtype).reshape(3, 4))
    assert y.dtype == t.grad.dtype == dtype
    np.testing.assert_array_equal(y.data[1], 0)
    np.testing.assert_array_equal(t.grad[1], 0)
    np.testing.assert_array_equal(y.data[~KEEP], 0)
    t_x = torch.tensor(x, requires_grad=True)
    t_y = torch.softmax(t_x.masked_fill(~torch.as_tensor(KEEP), -torch.inf), dim=-1)
    (t_y * torch.arange(12.0, dtype=t_y.dtype).reshape(3, 4)).sum().backward()
    live = [0, 2]
    np.testing.assert_allclose(y.data[live], t_y.detach().numpy()[live], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(t.grad[live], t_x.grad.numpy()[live], rtol=1e-5, atol=1e-6)


def test_masked_softmax_of_all_minus_inf_row_is_zero_not_nan():
    x = np.array([[-np.inf, -np.inf], [0.0, -np.inf]], np.float32)
    np.testing.assert_array_equal(attention.masked_softmax(x).data, [[0.0, 0.0], [1.0, 0.0]])


# ------------------------------------------------------------------------------ errors
def _q():
    return np.ones((2, 3, 4), np.float32)


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: sdpa(np.ones((2, 3, 4), int), _q(), _q()), TypeError, "query must be a floating"),
        (
            lambda: sdpa(Tensor(_q()), Tensor(np.ones((2, 3, 4))), _q()),
            TypeError,
            "key has dtype float64 but query has dtype float32",
        ),
        (
            lambda: sdpa(np.ones(4, np.float32), _q(), _q()),
            ValueError,
            "query must have at least 2",
        ),
        (lambda: sdpa(_q(), np.ones((2, 3, 5), np.float32), _q()), ValueError, "feature size"),
        (lambda: sdpa(_q(), _q(), np.ones((2, 4, 4), np.float32)), ValueError, "same length"),
        (lambda: sdpa(_q(), np.ones((3, 3, 4), np.float32), _q()), ValueError, "do not broadcast"),
        (lambda: sdpa(_q(), _q(), _q(), np.ones((3, 4), bool)), ValueError, "mask of shape (3, 4)"),
        (lambda: sdpa(_q(), _q(), _q(), np.ones((3, 3), int)), TypeError, "mask must be bool"),
        (lambda: sdpa(_q(), _q(), _q(), dropout=1.0), ValueError, "dropout must be a probability"),
        (lambda: sdpa(_q(), _q(), _q(), dropout="0.1"), TypeError, "dropout must be a real"),
        (lambda: sdpa(_q(), _q(), _q(), scale=np.nan), ValueError, "scale must be a finite"),
        (lambda: sdpa(_q(), _q(), _q(), is_causal=1), TypeError, "is_causal must be True"),
        (lambda: sdpa(_q(), _q(), _q(), dropout=0.5, seed=-1), ValueError, "seed must be"),
        (lambda: attention.masked_softmax(_q(), axis=3), ValueError, "axis 3 is out of range"),
        (lambda: attention.masked_softmax(_q(), np.ones(4)), TypeError, "mask must be bool"),
        (
            lambda: attention.masked_softmax(_q(), np.ones(5, bool)),
            ValueError,
            "does not broadcast",
        ),
    ],
)
def test_errors_name_function_and_argument(call, error, words):
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    assert words in message
    assert message.startswith(("scaled_dot_product_attention:", "masked_softmax:"))
