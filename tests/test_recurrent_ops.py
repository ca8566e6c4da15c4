"""The fused recurrent ops (``ember.ops.recurrent``): gradients, PyTorch parity, Keras masking.

* gradcheck (float64 central differences) of every op w.r.t. every argument, plain and with
  masks (a sample padded at the end, one at the start, one in the middle), a recurrent mask and
  ``zero_output_for_mask``;
* parity with ``torch.nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` (weights copied in, initial states,
  a cotangent on every result): values and the gradients of inputs, states and weights, float64
  within 1e-10 and float32 within 1e-5;
* masking against references: a step-by-step implementation made of ordinary Ember ops, and
  the op itself run on the unmasked part of a sample's sequence;
* error messages, dtypes, a 1000-step sequence and its memory.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import ember
from ember import Tensor, ops
from ember.ops import recurrent
from ember.testing import gradcheck

B, T, D, H = 3, 5, 4, 3
GATES = {"lstm": 4, "gru": 3, "simple_rnn": 1, "simple_rnn_relu": 1}
END = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0]], dtype=bool)
START = np.array([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1], [0, 1, 1, 1, 1]], dtype=bool)
MIDDLE = np.array([[1, 0, 1, 1, 1], [1, 1, 0, 0, 1], [0, 1, 1, 0, 1]], dtype=bool)
RMASK = np.array([[2.0, 0.0, 2.0], [2.0, 2.0, 0.0], [0.0, 2.0, 2.0]])


# ------------------------------------------------------------------------------ helpers
def _arrays(kind: str, seed: int = 0, batch=B, steps=T, scale=0.6, dtype=np.float64):
    """Inputs in the op's argument order: x, states, kernel, recurrent kernel, biases."""
    rng = np.random.default_rng(seed)
    g = GATES[kind] * H
    shapes = [(batch, steps, D), (batch, H)]
    shapes += [(batch, H)] if kind == "lstm" else []
    shapes += [(D, g), (H, g), (g,)]
    shapes += [(g,)] if kind == "gru" else []
    return [
        (rng.uniform(-1, 1, s) * (1.0 if i < 2 else scale)).astype(dtype)
        for i, s in enumerate(shapes)
    ]


def _call(kind: str, *args, **kwargs):
    if kind == "simple_rnn_relu":
        return recurrent.simple_rnn(*args, activation="relu", **kwargs)
    return getattr(recurrent, kind)(*args, **kwargs)


def _flat(results) -> Tensor:
    return ops.concatenate([r.reshape((-1,)) for r in results])


def _leaves(arrays, requires_grad=True):
    return [Tensor(a.copy(), requires_grad=requires_grad) for a in arrays]


def _reference(kind, x, h0, *rest, mask=None, recurrent_mask=None, zero_output_for_mask=False):
    """The recurrence step by step from ordinary Ember ops (the engine differentiates it)."""
    c0 = rest[0] if kind == "lstm" else None
    w, u, *biases = rest[1:] if kind == "lstm" else rest
    h, c, outputs = h0, c0, []
    for t in range(x.shape[1]):
        h_in = h if recurrent_mask is None else h * Tensor(recurrent_mask)
        xw = x[:, t] @ w + biases[0]
        if kind == "lstm":
            a = xw + h_in @ u
            i, f, o = (ops.sigmoid(a[:, k * H : (k + 1) * H]) for k in (0, 1, 3))
            c_new = f * c + i * ops.tanh(a[:, 2 * H : 3 * H])
            h_new = o * ops.tanh(c_new)
        elif kind == "gru":
            r_ = h_in @ u + biases[1]
            z = ops.sigmoid(xw[:, :H] + r_[:, :H])
            r = ops.sigmoid(xw[:, H : 2 * H] + r_[:, H : 2 * H])
            n = ops.tanh(xw[:, 2 * H :] + r * r_[:, 2 * H :])
            h_new = z * h + (1 - z) * n
        else:
            a = xw + h_in @ u
            h_new = ops.relu(a) if kind == "simple_rnn_relu" else ops.tanh(a)
        if mask is None:
            h, out = h_new, h_new
        else:
            live = Tensor(mask[:, t : t + 1])
            h = ops.where(live, h_new, h)
            c = None if c is None else ops.where(live, c_new, c)
            out = ops.where(live, h, 0.0) if zero_output_for_mask else h
        c = c_new if mask is None and kind == "lstm" else c
        outputs.append(out)
    finals = (h, c) if kind == "lstm" else (h,)
    return (ops.stack(outputs, axis=1), *finals)


def _grads(fn, arrays, cotangent_seed=1):
    """Values of ``fn`` (a flat tensor) and the gradients of every argument under a cotangent."""
    leaves = _leaves(arrays)
    out = fn(*leaves)
    cot = np.random.default_rng(cotangent_seed).standard_normal(out.shape).astype(out.dtype)
    (out * Tensor(cot)).sum().backward()
    return out.data, [t.grad for t in leaves]


# ------------------------------------------------------------------------------ gradcheck
SETTINGS = {
    "plain": {},
    "end_padded": {"mask": END},
    "start_padded": {"mask": START},
    "middle_masked_zero_output": {"mask": MIDDLE, "zero_output_for_mask": True},
    "recurrent_mask": {"recurrent_mask": RMASK},
    "everything": {"mask": MIDDLE, "recurrent_mask": RMASK, "zero_output_for_mask": True},
}


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("kind", GATES)
def test_gradcheck_every_argument(kind, setting):
    kwargs = SETTINGS[setting]
    result = gradcheck(lambda *a: _flat(_call(kind, *a, **kwargs)), *_arrays(kind))
    assert result.ok and result.checked_elements == sum(a.size for a in _arrays(kind))


@pytest.mark.parametrize("kind", GATES)
def test_gradcheck_without_biases(kind):
    args = _arrays(kind)[: len(_arrays(kind)) - (2 if kind == "gru" else 1)]
    assert gradcheck(lambda *a: _flat(_call(kind, *a, mask=START)), *args).ok


# ------------------------------------------------------------------------------ semantics
@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("kind", GATES)
def test_matches_step_by_step_reference(kind, setting):
    """Values and all gradients equal those of the same recurrence written with Ember ops."""
    kwargs = SETTINGS[setting]
    arrays = _arrays(kind, seed=3)
    fused, fused_grads = _grads(lambda *a: _flat(_call(kind, *a, **kwargs)), arrays)
    ref, ref_grads = _grads(lambda *a: _flat(_reference(kind, *a, **kwargs)), arrays)
    np.testing.assert_allclose(fused, ref, rtol=1e-12, atol=1e-12)
    for k, (g, r) in enumerate(zip(fused_grads, ref_grads)):
        np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-12, err_msg=f"argument {k}")


@pytest.mark.parametrize("kind", GATES)
def test_end_padding_equals_the_prefix_and_start_padding_the_suffix(kind):
    """A sample whose last (first) k steps are masked ends in the state of a run on its first
    (last) T - k steps; a masked step outputs the carried h and the inputs there get no
    gradient. The weight gradients of a loss on the final states are those of the short run."""
    arrays = _arrays(kind, seed=5, batch=1)
    x, rest = arrays[0], arrays[1:]
    for mask, part in [
        (np.array([[1, 1, 1, 0, 0]], bool), slice(0, 3)),
        (np.array([[0, 0, 1, 1, 1]], bool), slice(2, 5)),
    ]:
        leaves = _leaves(arrays)
        full = _call(kind, *leaves, mask=mask)
        short_leaves = _leaves([x[:, part], *rest])
        short = _call(kind, *short_leaves)
        for final, expected in zip(full[1:], short[1:]):
            np.testing.assert_allclose(final.data, expected.data, rtol=1e-13, atol=1e-14)
        carried = full[0].data[0, ~mask[0]]  # the carried h: h0 before the start, h_T after
        expected_carried = rest[0][0] if part.start else short[1].data[0]
        np.testing.assert_allclose(carried, np.broadcast_to(expected_carried, carried.shape))
        sum(f.sum() for f in full[1:]).backward()
        sum(f.sum() for f in short[1:]).backward()
        assert not leaves[0].grad[0, ~mask[0]].any()
        np.testing.assert_allclose(leaves[0].grad[:, part], short_leaves[0].grad, rtol=1e-12)
        for long_leaf, short_leaf in zip(leaves[1:], short_leaves[1:]):
            np.testing.assert_allclose(long_leaf.grad, short_leaf.grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_zero_output_for_mask_zeroes_outputs_but_keeps_the_state(kind):
    arrays = _arrays(kind, seed=7)
    carried = _call(kind, *_leaves(arrays), mask=END)
    zeroed = _call(kind, *_leaves(arrays), mask=END, zero_output_for_mask=True)
    assert not zeroed[0].data[~END].any()
    np.testing.assert_array_equal(zeroed[0].data[END], carried[0].data[END])
    for a, b in zip(carried[1:], zeroed[1:]):
        np.testing.assert_array_equal(a.data, b.data)
    # h_T of an end-padded sample is its last real output, not outputs[:, -1]
    np.testing.assert_array_equal(carried[1].data[1], carried[0].data[1, 2])
    assert not np.allclose(carried[1].data[1], _call(kind, *_leaves(arrays))[0].data[1, -1])


@pytest.mark.parametrize("kind", GATES)
def test_mask_forms_and_defaults(kind):
    """A 0/1 or Tensor mask equals the boolean one, an all-True mask equals none, a None
    initial state is zeros."""
    arrays = _arrays(kind, seed=9)
    expected = _flat(_call(kind, *arrays, mask=START)).data
    for form in (START.astype(int), START.astype(float), Tensor(START)):
        np.testing.assert_array_equal(_flat(_call(kind, *arrays, mask=form)).data, expected)
    np.testing.assert_array_equal(
        _flat(_call(kind, *arrays, mask=np.ones((B, T)))).data, _flat(_call(kind, *arrays)).data
    )
    states = 2 if kind == "lstm" else 1
    zeros = [np.zeros((B, H))] * states
    with_none = _call(kind, arrays[0], *[None] * states, *arrays[1 + states :])
    np.testing.assert_array_equal(
        _flat(with_none).data, _flat(_call(kind, arrays[0], *zeros, *arrays[1 + states :])).data
    )


@pytest.mark.parametrize("kind", GATES)
def test_only_some_arguments_require_grad(kind):
    arrays = _arrays(kind, seed=11)
    _, all_grads = _grads(lambda *a: _flat(_call(kind, *a, mask=MIDDLE)), arrays)
    for wanted in range(len(arrays)):
        leaves = [Tensor(a, requires_grad=k == wanted) for k, a in enumerate(arrays)]
        out = _flat(_call(kind, *leaves, mask=MIDDLE))
        cot = np.random.default_rng(1).standard_normal(out.shape)
        (out * Tensor(cot)).sum().backward()
        np.testing.assert_allclose(leaves[wanted].grad, all_grads[wanted], rtol=1e-13)
        assert all(t.grad is None for k, t in enumerate(leaves) if k != wanted)


@pytest.mark.parametrize("kind", GATES)
def test_zero_steps_return_the_initial_state(kind):
    arrays = _arrays(kind, steps=0)
    leaves = _leaves(arrays)
    results = _call(kind, *leaves)
    assert results[0].shape == (B, 0, H)
    states = 2 if kind == "lstm" else 1
    for final, initial in zip(results[1:], arrays[1 : 1 + states]):
        np.testing.assert_array_equal(final.data, initial)
    sum(r.sum() for r in results).backward()
    assert all(t.grad.shape == t.shape for t in leaves)
    assert not leaves[1 + states].grad.any()  # the kernel saw no step


def test_backward_twice_with_retained_graph_gives_the_same_gradients():
    for kind in GATES:
        leaves = _leaves(_arrays(kind))
        out = _flat(_call(kind, *leaves, mask=END, recurrent_mask=RMASK))
        out.sum().backward(retain_graph=True)
        first = [t.grad.copy() for t in leaves]
        out.sum().backward()
        for t, g in zip(leaves, first):
            np.testing.assert_allclose(t.grad, 2 * g, rtol=1e-14)


# ------------------------------------------------------------------------------ PyTorch parity
def _to_torch_gru(a: np.ndarray) -> np.ndarray:
    """Keras' z, r, h blocks along the last axis -> PyTorch's r, z, n (and back: the swap of
    the first two blocks is its own inverse)."""
    return np.concatenate([a[..., H : 2 * H], a[..., :H], a[..., 2 * H :]], axis=-1)


def _torch_module(torch, kind, arrays, bias_hh, dtype):
    """The PyTorch module with the weights copied in; returns (module, ember biases)."""
    if kind == "lstm":
        x, h0, c0, w, u, b = arrays
        module = torch.nn.LSTM(D, H, batch_first=True)
        tw, tu, tbi, tbh = w.T, u.T, b - bias_hh, bias_hh  # ember's bias = b_ih + b_hh
    elif kind == "gru":
        x, h0, w, u, bi, bh = arrays
        module = torch.nn.GRU(D, H, batch_first=True)
        tw, tu = _to_torch_gru(w).T, _to_torch_gru(u).T
        tbi, tbh = _to_torch_gru(bi), _to_torch_gru(bh)
    else:
        x, h0, w, u, b = arrays
        act = "relu" if kind == "simple_rnn_relu" else "tanh"
        module = torch.nn.RNN(D, H, batch_first=True, nonlinearity=act)
        tw, tu, tbi, tbh = w.T, u.T, b - bias_hh, bias_hh
    module = module.to(torch.float64 if dtype == np.float64 else torch.float32)
    with torch.no_grad():
        for name, value in zip(
            ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"], [tw, tu, tbi, tbh]
        ):
            getattr(module, name).copy_(torch.as_tensor(np.ascontiguousarray(value)))
    return module


def _torch_weight_grads(module, kind):
    """The module's gradients in Ember's layout: kernel, recurrent kernel, bias(es)."""
    grads = [
        getattr(module, n).grad.numpy()
        for n in ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    ]
    if kind == "gru":
        return [_to_torch_gru(grads[0].T), _to_torch_gru(grads[1].T)] + [
            _to_torch_gru(g) for g in grads[2:]
        ]
    # b_ih and b_hh receive the same gradient (up to PyTorch's float32 rounding)
    np.testing.assert_allclose(grads[2], grads[3], rtol=1e-5, atol=1e-6)
    return [grads[0].T, grads[1].T, grads[2]]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", GATES)
def test_matches_torch_modules(kind, dtype, torch):
    arrays = _arrays(kind, seed=13, dtype=dtype, steps=7)
    bias_hh = np.random.default_rng(2).uniform(-0.5, 0.5, arrays[-1].shape).astype(dtype)
    module = _torch_module(torch, kind, arrays, bias_hh, dtype)
    states = 2 if kind == "lstm" else 1
    leaves = _leaves(arrays)
    ours = _call(kind, *leaves)
    t_x = torch.tensor(arrays[0], requires_grad=True)
    t_states = [torch.tensor(a[None], requires_grad=True) for a in arrays[1 : 1 + states]]
    t_out, t_final = module(t_x, tuple(t_states) if states == 2 else t_states[0])
    theirs = [t_out, *(t_final if states == 2 else (t_final,))]
    tol = {"rtol": 1e-10, "atol": 1e-10} if dtype == np.float64 else {"rtol": 1e-5, "atol": 1e-5}
    rng = np.random.default_rng(3)
    for e, t in zip(ours, theirs):
        t = t.detach().numpy().reshape(e.shape)
        assert e.dtype == dtype
        np.testing.assert_allclose(e.data, t, **tol)
    cots = [rng.standard_normal(e.shape).astype(dtype) for e in ours]
    sum((e * Tensor(c)).sum() for e, c in zip(ours, cots)).backward()
    sum((t * torch.tensor(c).reshape(t.shape)).sum() for t, c in zip(theirs, cots)).backward()
    expected = [t_x.grad.numpy(), *(s.grad.numpy()[0] for s in t_states)]
    expected += _torch_weight_grads(module, kind)
    for k, (leaf, want) in enumerate(zip(leaves, expected)):
        assert leaf.grad.dtype == dtype
        np.testing.assert_allclose(leaf.grad, want, **tol, err_msg=f"gradient of argument {k}")


# ------------------------------------------------------------------------------ dtypes, errors
@pytest.mark.parametrize("kind", GATES)
def test_float32_stays_float32(kind, grad_probe):
    leaves = _leaves(_arrays(kind, dtype=np.float32))
    seen: list = []
    # the recurrent mask is float64: a constant, it must not up-cast the computation
    probed = [grad_probe(t, seen) for t in leaves]
    results = _call(kind, *probed, mask=MIDDLE, recurrent_mask=RMASK)
    assert all(r.dtype == np.float32 for r in results)
    sum(r.sum() for r in results).backward()
    assert seen == [np.float32] * len(leaves)
    assert all(t.grad.dtype == np.float32 for t in leaves)


def _bad(kind, index, value):
    args = _arrays(kind)
    args[index] = value
    return args


@pytest.mark.parametrize(
    "kind, index, value, error, message",
    [
        (
            "lstm",
            0,
            np.zeros((B, D)),
            ValueError,
            r"lstm: inputs must be 3-D \(batch, time, features\), got shape \(3, 4\)",
        ),
        (
            "lstm",
            4,
            np.zeros((H, 3 * H)),
            ValueError,
            r"lstm: recurrent_kernel must have shape \(units, 4 \* units\), got \(3, 9\)",
        ),
        (
            "lstm",
            3,
            np.zeros((D + 1, 4 * H)),
            ValueError,
            r"lstm: kernel must have shape \(features, 4 \* units\) = \(4, 12\), got \(5, 12\)",
        ),
        (
            "lstm",
            2,
            np.zeros((B, H + 1)),
            ValueError,
            r"lstm: initial_c must have shape \(batch, units\) = \(3, 3\), got \(3, 4\)",
        ),
        (
            "gru",
            5,
            np.zeros(4 * H),
            ValueError,
            r"gru: recurrent_bias must have shape \(3 \* units,\) = \(9,\), got \(12,\)",
        ),
        (
            "simple_rnn",
            1,
            np.zeros((B + 1, H)),
            ValueError,
            r"simple_rnn: initial_h must have shape \(batch, units\) = \(3, 3\), got \(4, 3\)",
        ),
        (
            "lstm",
            3,
            np.zeros((D, 4 * H), np.float32),
            TypeError,
            "lstm: all float arguments must share one dtype; inputs is float64 but kernel is "
            "float32",
        ),
        (
            "gru",
            0,
            np.zeros((B, T, D), int),
            TypeError,
            "gru: inputs must be a float32 or float64 tensor, got dtype int64",
        ),
    ],
)
def test_bad_arguments_are_named(kind, index, value, error, message):
    with pytest.raises(error, match=message):
        _call(kind, *_bad(kind, index, value))


def test_bad_masks_and_activation_are_named():
    args = _arrays("gru")
    with pytest.raises(ValueError, match=r"gru: mask must have shape \(batch, time\) = \(3, 5\)"):
        recurrent.gru(*args, mask=END[:, :4])
    with pytest.raises(ValueError, match="gru: mask must hold booleans or 0/1 values"):
        recurrent.gru(*args, mask=END * 2)
    with pytest.raises(TypeError, match="gru: mask must be a boolean or 0/1 array"):
        recurrent.gru(*args, mask=np.full((B, T), "a"))
    with pytest.raises(ValueError, match=r"gru: recurrent_mask must have shape \(batch, units\)"):
        recurrent.gru(*args, recurrent_mask=np.ones((B, H + 1)))
    with pytest.raises(ValueError, match="simple_rnn: activation must be 'tanh' or 'relu', got"):
        recurrent.simple_rnn(*_arrays("simple_rnn"), activation="sigmoid")


# ------------------------------------------------------------------------------ long sequences
def _peak_bytes(kind: str, steps: int) -> tuple[int, list]:
    arrays = _arrays(kind, seed=17, batch=2, steps=steps, dtype=np.float32)
    leaves = _leaves(arrays)
    tracemalloc.start()
    try:
        results = _call(kind, *leaves, mask=np.arange(steps) < np.array([[steps], [steps - 7]]))
        sum(r.sum() for r in results).backward()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak, [t.grad for t in leaves]


@pytest.mark.parametrize("kind", ["lstm", "gru", "simple_rnn"])
def test_a_thousand_steps_run_with_memory_linear_in_time(kind):
    peak_short, _ = _peak_bytes(kind, 250)
    peak, grads = _peak_bytes(kind, 1000)
    assert all(np.isfinite(g).all() for g in grads)
    assert np.abs(grads[0][:, 0]).sum() > 0  # the gradient reaches the first step
    # saved per step: activated gates and a few states, (gates + 4) * B * H floats; plus x
    per_step = (GATES[kind] * H + 4 * H + D) * 2 * 4
    assert peak < 4 * 1000 * per_step + 200_000
    assert peak < 4.6 * peak_short  # linear (4x the steps), not quadratic


def test_the_ops_are_exported_in_their_module():
    assert recurrent.__all__ == ["lstm", "gru", "simple_rnn"]
    assert ember.ops.recurrent.lstm is recurrent.lstm
