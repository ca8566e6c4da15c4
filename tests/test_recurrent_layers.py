"""The recurrent layers (``ember.layers.recurrent``) against PyTorch and against NumPy.

* LSTM, GRU and SimpleRNN (tanh and relu) match ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` (weights
  copied in, ``batch_first=True``): sequence outputs, final states, and the gradients of the
  input, the initial states and every weight under a random cotangent on every result, float64
  within 1e-10 and float32 within 1e-5;
* masks (Keras' rule: a masked step carries the state, its output is the carried output) against
  PyTorch run on each sample's real steps only; right and left padding; go_backwards;
* Bidirectional in every merge mode against ``bidirectional=True``, with and without masks;
* the step-by-step path (``RNN(cell)``) agrees with the fused ops to 1e-12; GRU(reset_after=False)
  and a relu LSTM (neither fuses) against a NumPy transcription of their formulas, gradients by
  finite differences of that transcription;
* Embedding vs ``nn.Embedding`` with repeated ids; dropout masks; stateful layers;
  TimeDistributed; save/load; a 1000-step sequence; error messages; the seq2seq idiom.
"""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import Tensor, layers

B, T, D, H = 3, 5, 4, 3
KINDS = ["lstm", "gru", "rnn_tanh", "rnn_relu"]
TOL = {np.float64: {"atol": 1e-10, "rtol": 1e-10}, np.float32: {"atol": 1e-5, "rtol": 1e-5}}
MERGES = ["concat", "sum", "mul", "ave", None]
# Each sample's real steps [start, end): full, right-padded, left-padded, padded on both sides.
SEGMENTS = [(0, T), (0, 3), (2, T), (1, 4)]
RIGHT_PADDED = [(0, T), (0, 3), (0, 1)]
LEFT_PADDED = [(0, T), (2, T), (4, T)]


# ------------------------------------------------------------------------------ helpers
def _mask(segments, steps=T) -> np.ndarray:
    mask = np.zeros((len(segments), steps), bool)
    for row, (start, end) in enumerate(segments):
        mask[row, start:end] = True
    return mask


def _leading(mask: np.ndarray) -> np.ndarray:
    """The masked steps before each sample's first real step."""
    return ~np.logical_or.accumulate(mask, axis=1)


def _set_leading_aside(mask, cotangents, *outputs) -> None:
    """Leave the outputs before a sample's first real step out of a comparison: zero their
    cotangent and their values (in place). PyTorch, run on the real steps only, has no output
    there; Ember outputs the initial state's h
    (``test_output_before_the_first_real_step_is_the_initial_state_in_both_paths``)."""
    leading = _leading(mask)
    cotangents[0][leading] = 0.0
    for output in outputs:
        output[leading] = 0.0


def _state_count(kind: str) -> int:
    return 2 if kind == "lstm" else 1


def _layer(kind: str, dtype=np.float64, **options):
    """An unbuilt Ember layer of the kind; ``options`` go to the layer (Keras' flat form)."""
    dtype = np.dtype(dtype).name
    if kind == "lstm":
        return layers.LSTM(H, dtype=dtype, **options)
    if kind == "gru":
        return layers.GRU(H, dtype=dtype, **options)
    return layers.SimpleRNN(H, activation=kind[4:], dtype=dtype, **options)


def _randomize(layer, seed: int, scale: float = 0.6) -> None:
    """Build ``layer`` and give every weight (biases too) random values."""
    if not layer.built:
        layer(np.zeros((1, 2, D), layer.dtype))
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.uniform(-scale, scale, w.shape) for w in layer.weights])


def _data(kind: str, dtype, seed: int = 1, batch=B, steps=T, directions=1):
    """x, initial states (directions * states of (batch, H)), cotangents of [sequence, *states]."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (batch, steps, D)).astype(dtype)
    count = _state_count(kind) * directions
    states = [rng.uniform(-1, 1, (batch, H)).astype(dtype) for _ in range(count)]
    cotangents = [rng.standard_normal((batch, steps, H)).astype(dtype)]
    cotangents += [rng.standard_normal((batch, H)).astype(dtype) for _ in range(count)]
    return x, states, cotangents


def _perm(kind: str) -> np.ndarray:
    """Column order of PyTorch's gate blocks in Keras' layout: GRU is z,r,h vs r,z,n."""
    if kind == "gru":
        return np.concatenate([np.arange(H, 2 * H), np.arange(H), np.arange(2 * H, 3 * H)])
    return np.arange({"lstm": 4}.get(kind, 1) * H)


def _torch_module(torch, kind: str, dtype, cells, bidirectional=False):
    """A PyTorch module with the weights of the Ember ``cells`` (forward, then reverse)."""
    if kind == "lstm":
        module = torch.nn.LSTM(D, H, batch_first=True, bidirectional=bidirectional)
    elif kind == "gru":
        module = torch.nn.GRU(D, H, batch_first=True, bidirectional=bidirectional)
    else:
        module = torch.nn.RNN(
            D, H, batch_first=True, bidirectional=bidirectional, nonlinearity=kind[4:]
        )
    module = module.to(torch.float64 if dtype == np.float64 else torch.float32)
    perm = _perm(kind)
    with torch.no_grad():
        for suffix, cell in zip(("_l0", "_l0_reverse"), cells):
            bias = cell.bias.numpy()
            # LSTM and RNN: PyTorch adds b_ih + b_hh; ours is one bias, so b_hh = 0.
            b_ih, b_hh = (bias[0], bias[1]) if kind == "gru" else (bias, np.zeros_like(bias))
            values = {
                "weight_ih": cell.kernel.numpy()[:, perm].T,
                "weight_hh": cell.recurrent_kernel.numpy()[:, perm].T,
                "bias_ih": b_ih[perm],
                "bias_hh": b_hh[perm],
            }
            for name, value in values.items():
                getattr(module, name + suffix).copy_(torch.from_numpy(np.ascontiguousarray(value)))
    return module


def _torch_weight_grads(kind: str, module, suffix: str = "_l0") -> list[np.ndarray]:
    """The gradients of PyTorch's weights in Ember's layout [kernel, recurrent_kernel, bias]."""
    back = np.argsort(_perm(kind))

    def grad(name):
        return getattr(module, name + suffix).grad.numpy()

    kernel = grad("weight_ih").T[:, back]
    recurrent = grad("weight_hh").T[:, back]
    if kind == "gru":
        bias = np.stack([grad("bias_ih")[back], grad("bias_hh")[back]])
    else:  # b_ih and b_hh get the same gradient (up to rounding): the pre-activation's
        bias = grad("bias_ih")[back]
    return [kernel, recurrent, bias]


def _torch_states(torch, kind, values, rows):
    """PyTorch's hx from per-direction (batch, H) arrays: (directions, rows, H) leaves."""
    count = _state_count(kind)
    directions = len(values) // count
    leaves = [
        torch.tensor(np.stack([values[d * count + k][rows] for d in range(directions)]),
                     requires_grad=True)
        for k in range(count)
    ]  # fmt: skip
    return leaves, (tuple(leaves) if kind == "lstm" else leaves[0])


def _torch_reference(torch, kind, module, x, states, cotangents, segments=None):
    """What Keras' masking rule gives, computed by PyTorch: a sample's real steps [start, end)
    run through ``module`` from the initial state; before ``start`` there is no output (the
    callers set it aside), after ``end`` it is the last real output (so its cotangent lands on
    step end - 1).

    Returns ([sequence, *final states], [dx, *d states, *d weights]) in Ember's layout."""
    batch, steps = x.shape[:2]
    groups = [(slice(None), 0, steps)] if segments is None else [
        (slice(b, b + 1), start, end) for b, (start, end) in enumerate(segments)
    ]  # fmt: skip
    sequence = np.zeros((batch, steps, H), x.dtype)
    finals = [np.zeros_like(s) for s in states]
    dx, dstates = np.zeros_like(x), [np.zeros_like(s) for s in states]
    module.zero_grad()
    for rows, start, end in groups:
        xt = torch.tensor(x[rows, start:end], requires_grad=True)
        leaves, hx = _torch_states(torch, kind, states, rows)
        out, h_n = module(xt, hx)
        h_n = list(h_n) if kind == "lstm" else [h_n]
        g_out = cotangents[0][rows, start:end].copy()
        g_out[:, -1] += cotangents[0][rows, end:].sum(axis=1)
        loss = (out * torch.tensor(g_out)).sum()
        for k, final in enumerate(h_n):
            loss = loss + (final[0] * torch.tensor(cotangents[1 + k][rows])).sum()
        loss.backward()  # weight gradients accumulate over the samples, as a batch sums them
        o = out.detach().numpy()
        sequence[rows, start:end] = o
        sequence[rows, end:] = o[:, -1:]
        dx[rows, start:end] = xt.grad.numpy()
        for k, (final, leaf) in enumerate(zip(h_n, leaves)):
            finals[k][rows] = final[0].detach().numpy()
            dstates[k][rows] = leaf.grad[0].numpy()
    return [sequence, *finals], [dx, *dstates, *_torch_weight_grads(kind, module)]


def _cell_weights(layer) -> list:
    cell = layer.cell
    return [cell.kernel, cell.recurrent_kernel, cell.bias]


def _ember_run(layer, x, states, cotangents, weights=None, **call_options):
    """Call ``layer`` (with return_state) and back-propagate ``sum(result * cotangent)``.

    Returns ([results], [dx, *d states, *d weights])."""
    weights = _cell_weights(layer) if weights is None else weights
    for w in weights:
        w.grad = None
    xt = Tensor(x.copy(), requires_grad=True)
    leaves = [Tensor(s.copy(), requires_grad=True) for s in states]
    results = layer(xt, initial_state=leaves, **call_options)
    loss = None
    for result, cotangent in zip(results, cotangents):
        term = (result * Tensor(cotangent)).sum()
        loss = term if loss is None else loss + term
    loss.backward()
    grads = [xt.grad, *(s.grad for s in leaves), *(w.grad for w in weights)]
    return [r.numpy() for r in results], grads


def _assert_all_close(actual, expected, dtype, what: str, **tolerance):
    tolerance = tolerance or TOL[np.dtype(dtype).type]
    assert len(actual) == len(expected), what
    for k, (a, e) in enumerate(zip(actual, expected)):
        assert a is not None, f"{what} {k}: no gradient"
        assert a.dtype == np.dtype(dtype), f"{what} {k}: dtype {a.dtype}, expected {dtype}"
        np.testing.assert_allclose(a, e, err_msg=f"{what} {k}", **tolerance)


def _sigmoid(a):
    return 0.5 * np.tanh(0.5 * a) + 0.5


ACTIVATIONS = {"tanh": np.tanh, "relu": lambda a: np.maximum(a, 0.0)}


def _gru_step(h, hd, xw, rk, bias, act, reset_after):
    if reset_after:
        xz, hz = xw + bias[0], hd @ rk + bias[1]
        z = _sigmoid(xz[:, :H] + hz[:, :H])
        r = _sigmoid(xz[:, H : 2 * H] + hz[:, H : 2 * H])
        n = act(xz[:, 2 * H :] + r * hz[:, 2 * H :])
    else:  # Cho et al.: the reset gate multiplies h before its product with U_h
        xz, hz = xw + bias, hd @ rk[:, : 2 * H]
        z = _sigmoid(xz[:, :H] + hz[:, :H])
        r = _sigmoid(xz[:, H : 2 * H] + hz[:, H:])
        n = act(xz[:, 2 * H :] + (r * hd) @ rk[:, 2 * H :])
    return [z * h + (1 - z) * n]


def _reference(kind, x, states, weights, activation="tanh", reset_after=True, mask=None,
               input_keep=None, recurrent_keep=None):  # fmt: skip
    """Keras' recurrence written out step by step in NumPy: [sequence, *final states]."""
    kernel, rk, bias = weights
    act = ACTIVATIONS[activation]
    mask = np.ones(x.shape[:2], bool) if mask is None else mask
    x = x if input_keep is None else x * input_keep[:, None, :]
    states, carried, outputs = [s.copy() for s in states], states[0].copy(), []
    for t in range(x.shape[1]):
        h = states[0]
        hd = h if recurrent_keep is None else h * recurrent_keep
        xw = x[:, t] @ kernel
        if kind == "lstm":
            i, f, g, o = np.split(xw + hd @ rk + bias, 4, axis=1)
            c = _sigmoid(f) * states[1] + _sigmoid(i) * act(g)
            new = [_sigmoid(o) * act(c), c]
        elif kind == "gru":
            new = _gru_step(h, hd, xw, rk, bias, act, reset_after)
        else:
            new = [act(xw + hd @ rk + bias)]
        keep = mask[:, t : t + 1]
        states = [np.where(keep, n, s) for n, s in zip(new, states)]
        carried = np.where(keep, new[0], carried)
        outputs.append(carried)
    return [np.stack(outputs, axis=1), *states]


def _numeric_grads(fn, arrays, cotangents, eps=1e-6) -> list[np.ndarray]:
    """Central differences of ``sum(fn(*arrays) * cotangents)`` (float64 NumPy, test-only)."""

    def value():
        return sum(float((r * c).sum()) for r, c in zip(fn(*arrays), cotangents))

    grads = []
    for a in arrays:
        grad = np.zeros_like(a)
        for index in np.ndindex(a.shape):
            old = a[index]
            a[index] = old + eps
            up = value()
            a[index] = old - eps
            grad[index] = (up - value()) / (2 * eps)
            a[index] = old
        grads.append(grad)
    return grads


# ------------------------------------------------------------------------------ PyTorch parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("kind", KINDS)
def test_layer_matches_torch_outputs_states_and_all_gradients(torch, kind, dtype):
    layer = _layer(kind, dtype, return_sequences=True, return_state=True)
    _randomize(layer, seed=0)
    assert layer._fused  # the default activations run the fused op
    x, states, cotangents = _data(kind, dtype)
    module = _torch_module(torch, kind, dtype, [layer.cell])
    expected, expected_grads = _torch_reference(torch, kind, module, x, states, cotangents)
    results, grads = _ember_run(layer, x, states, cotangents)
    _assert_all_close(results, expected, dtype, "result")
    _assert_all_close(grads, expected_grads, dtype, "gradient [x, *states, *weights]")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("kind", KINDS)
def test_masked_layer_matches_torch_on_each_samples_real_steps(torch, kind, dtype):
    """Right, left and two-sided padding in one batch: the state stays at the initial state
    until the first real step (the output there is set aside), the output is the carried one
    after the last real step, and padded steps get no input gradient."""
    layer = _layer(kind, dtype, return_sequences=True, return_state=True)
    _randomize(layer, seed=2)
    x, states, cotangents = _data(kind, dtype, seed=3, batch=len(SEGMENTS))
    _set_leading_aside(_mask(SEGMENTS), cotangents)
    module = _torch_module(torch, kind, dtype, [layer.cell])
    expected, expected_grads = _torch_reference(
        torch, kind, module, x, states, cotangents, SEGMENTS
    )
    results, grads = _ember_run(layer, x, states, cotangents, mask=_mask(SEGMENTS))
    _set_leading_aside(_mask(SEGMENTS), cotangents, results[0])
    _assert_all_close(results, expected, dtype, "result")
    _assert_all_close(grads, expected_grads, dtype, "gradient [x, *states, *weights]")
    assert not grads[0][~_mask(SEGMENTS)].any()


@pytest.mark.parametrize("segments", [RIGHT_PADDED, LEFT_PADDED], ids=["right", "left"])
@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
def test_mask_from_masking_layer_matches_torch_on_the_unpadded_part(torch, kind, segments):
    """Padding made of zero vectors, masked by ``Masking``: the mask reaches the RNN."""
    layer = _layer(kind, return_sequences=True, return_state=True)
    _randomize(layer, seed=4)
    mask = _mask(segments)
    x, states, cotangents = _data(kind, np.float64, seed=5)
    x[~mask] = 0.0
    masked = layers.Masking(0.0, dtype="float64")(Tensor(x))
    np.testing.assert_array_equal(masked._keras_mask.numpy(), mask)
    results = layer(masked, initial_state=[Tensor(s) for s in states])
    module = _torch_module(torch, kind, np.float64, [layer.cell])
    expected, _ = _torch_reference(torch, kind, module, x, states, cotangents, segments)
    values = [r.numpy() for r in results]
    _set_leading_aside(mask, cotangents, values[0])
    _assert_all_close(values, expected, np.float64, "result")
    np.testing.assert_array_equal(results[0]._keras_mask.numpy(), mask)  # passed on
    assert results[1]._keras_mask is None  # states are not masked


@pytest.mark.parametrize("kind", KINDS)
def test_go_backwards_matches_torch_on_the_reversed_sequence(torch, kind):
    """Keras returns the outputs in the order they were computed: reversed time."""
    layer = _layer(kind, return_sequences=True, return_state=True, go_backwards=True)
    _randomize(layer, seed=6)
    x, states, cotangents = _data(kind, np.float64, seed=7)
    module = _torch_module(torch, kind, np.float64, [layer.cell])
    reversed_x = np.ascontiguousarray(x[:, ::-1])
    expected, expected_grads = _torch_reference(torch, kind, module, reversed_x, states,
                                                cotangents)  # fmt: skip
    expected_grads[0] = expected_grads[0][:, ::-1]
    results, grads = _ember_run(layer, x, states, cotangents)
    _assert_all_close(results, expected, np.float64, "result")
    _assert_all_close(grads, expected_grads, np.float64, "gradient [x, *states, *weights]")


def test_go_backwards_with_a_mask_reverses_the_mask_too():
    layer = _layer("lstm", return_sequences=True, return_state=True, go_backwards=True)
    _randomize(layer, seed=8)
    forward = _layer("lstm", return_sequences=True, return_state=True)
    _randomize(forward, seed=8)
    x, states, _ = _data("lstm", np.float64, seed=9)
    mask = _mask(RIGHT_PADDED)
    results = layer(x, initial_state=states, mask=mask)
    expected = forward(x[:, ::-1].copy(), initial_state=states, mask=mask[:, ::-1].copy())
    _assert_all_close([r.numpy() for r in results], [e.numpy() for e in expected],
                      np.float64, "result", atol=1e-14, rtol=0)  # fmt: skip
    np.testing.assert_array_equal(results[0]._keras_mask.numpy(), mask[:, ::-1])


# ------------------------------------------------------------------------------ Bidirectional
def _merge(mode, forward, backward, concatenate=np.concatenate):
    if mode == "concat":
        return [concatenate([forward, backward], -1)]
    if mode == "sum":
        return [forward + backward]
    if mode == "mul":
        return [forward * backward]
    if mode == "ave":
        return [(forward + backward) * 0.5]
    return [forward, backward]


def _bidirectional(kind, dtype, merge_mode, return_sequences, seed):
    inner = _layer(kind, dtype, return_sequences=return_sequences, return_state=True)
    bi = layers.Bidirectional(inner, merge_mode=merge_mode, dtype=np.dtype(dtype).name)
    _randomize(bi, seed=seed)
    return bi


def _merged_cotangents(rng, merge_mode, shape, dtype):
    count = 2 if merge_mode is None else 1
    width = 2 * H if merge_mode == "concat" else H
    return [rng.standard_normal((*shape, width)).astype(dtype) for _ in range(count)]


def _bidirectional_torch(torch, kind, bi, x, states, merged_cotangents, state_cotangents,
                         merge_mode, return_sequences, segments=None):  # fmt: skip
    """PyTorch's bidirectional module on each group of rows (all, or one sample's real
    steps), merged as Ember merges; returns (results, grads) in Ember's layout."""
    dtype = x.dtype
    module = _torch_module(torch, kind, dtype, [bi.forward_layer.cell, bi.backward_layer.cell],
                           bidirectional=True)  # fmt: skip
    groups = [(slice(None), 0, T)] if segments is None else [
        (slice(b, b + 1), s, e) for b, (s, e) in enumerate(segments)
    ]  # fmt: skip
    results, dx, dstates = None, np.zeros_like(x), [np.zeros_like(s) for s in states]
    count = _state_count(kind)
    for rows, start, end in groups:
        xt = torch.tensor(x[rows, start:end], requires_grad=True)
        leaves, hx = _torch_states(torch, kind, states, rows)
        out, h_n = module(xt, hx)
        h_n = list(h_n) if kind == "lstm" else [h_n]
        finals = [final[d] for d in range(2) for final in h_n]  # Ember: forward, then backward
        if return_sequences:  # zeros at padded steps: Bidirectional sets zero_output_for_mask
            out = torch.nn.functional.pad(out, (0, 0, start, T - end))
            forward, backward = out[..., :H], out[..., H:]
        else:
            forward, backward = out[:, -1, :H], out[:, 0, H:]
        merged = _merge(merge_mode, forward, backward, torch.cat)
        loss = sum((m * torch.tensor(c[rows])).sum() for m, c in zip(merged, merged_cotangents))
        loss = loss + sum((f * torch.tensor(c[rows])).sum()
                          for f, c in zip(finals, state_cotangents))  # fmt: skip
        loss.backward()
        values = [v.detach().numpy() for v in [*merged, *finals]]
        if results is None:
            results = [np.zeros((x.shape[0], *v.shape[1:]), dtype) for v in values]
        for r, v in zip(results, values):
            r[rows] = v
        dx[rows, start:end] = xt.grad.numpy()
        for k in range(len(states)):
            dstates[k][rows] = leaves[k % count].grad[k // count].numpy()
    weights = _torch_weight_grads(kind, module) + _torch_weight_grads(kind, module, "_l0_reverse")
    return results, [dx, *dstates, *weights]


@pytest.mark.parametrize("return_sequences", [True, False], ids=["sequences", "last"])
@pytest.mark.parametrize("merge_mode", MERGES, ids=str)
@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
def test_bidirectional_matches_torch_bidirectional(torch, kind, merge_mode, return_sequences):
    bi = _bidirectional(kind, np.float64, merge_mode, return_sequences, seed=10)
    x, states, state_cotangents = _data(kind, np.float64, seed=11, directions=2)
    state_cotangents = state_cotangents[1:]
    shape = (B, T) if return_sequences else (B,)
    merged_cotangents = _merged_cotangents(np.random.default_rng(12), merge_mode, shape,
                                           np.float64)  # fmt: skip
    expected, expected_grads = _bidirectional_torch(
        torch, kind, bi, x, states, merged_cotangents, state_cotangents, merge_mode,
        return_sequences,
    )  # fmt: skip
    weights = _cell_weights(bi.forward_layer) + _cell_weights(bi.backward_layer)
    results, grads = _ember_run(bi, x, states, merged_cotangents + state_cotangents, weights)
    _assert_all_close(results, expected, np.float64, "result")
    _assert_all_close(grads, expected_grads, np.float64, "gradient [x, *states, *weights]")


@pytest.mark.parametrize("return_sequences", [True, False], ids=["sequences", "last"])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_masked_bidirectional_matches_torch_on_each_samples_real_steps(
    torch, kind, return_sequences
):
    """Right- and left-padded samples: each direction reads only the real steps (the backward
    one starts at the last real step), padded steps output zeros."""
    bi = _bidirectional(kind, np.float64, "concat", return_sequences, seed=13)
    x, states, state_cotangents = _data(kind, np.float64, seed=14, batch=len(SEGMENTS),
                                        directions=2)  # fmt: skip
    state_cotangents = state_cotangents[1:]
    shape = (len(SEGMENTS), T) if return_sequences else (len(SEGMENTS),)
    merged_cotangents = _merged_cotangents(np.random.default_rng(15), "concat", shape,
                                           np.float64)  # fmt: skip
    expected, expected_grads = _bidirectional_torch(
        torch, kind, bi, x, states, merged_cotangents, state_cotangents, "concat",
        return_sequences, SEGMENTS,
    )  # fmt: skip
    weights = _cell_weights(bi.forward_layer) + _cell_weights(bi.backward_layer)
    results, grads = _ember_run(bi, x, states, merged_cotangents + state_cotangents, weights,
                                mask=_mask(SEGMENTS))  # fmt: skip
    _assert_all_close(results, expected, np.float64, "result")
    _assert_all_close(grads, expected_grads, np.float64, "gradient [x, *states, *weights]")


def test_bidirectional_float32_matches_torch(torch):
    bi = _bidirectional("lstm", np.float32, "concat", True, seed=16)
    x, states, state_cotangents = _data("lstm", np.float32, seed=17, directions=2)
    merged_cotangents = _merged_cotangents(np.random.default_rng(18), "concat", (B, T),
                                           np.float32)  # fmt: skip
    expected, expected_grads = _bidirectional_torch(
        torch, "lstm", bi, x, states, merged_cotangents, state_cotangents[1:], "concat", True
    )
    weights = _cell_weights(bi.forward_layer) + _cell_weights(bi.backward_layer)
    results, grads = _ember_run(bi, x, states, merged_cotangents + state_cotangents[1:], weights)
    _assert_all_close(results, expected, np.float32, "result")
    _assert_all_close(grads, expected_grads, np.float32, "gradient [x, *states, *weights]")


def test_bidirectional_result_structure_and_masks():
    x = np.random.default_rng(19).uniform(-1, 1, (2, 4, D)).astype(np.float32)
    mask = np.array([[True, True, True, False], [True, True, True, True]])
    both = layers.Bidirectional(layers.GRU(H, return_sequences=True), merge_mode=None)(x, mask=mask)
    assert [o.shape for o in both] == [(2, 4, H), (2, 4, H)]
    assert all(np.array_equal(o._keras_mask.numpy(), mask) for o in both)
    assert not both[0].numpy()[0, 3].any() and not both[1].numpy()[0, 3].any()
    bi = layers.Bidirectional(layers.LSTM(H, return_state=True), merge_mode="sum")
    assert [o.shape for o in bi(x)] == [(2, H)] * 5  # merged, h_f, c_f, h_b, c_b
    assert bi.backward_layer.go_backwards and not bi.forward_layer.go_backwards


# ------------------------------------------------------------------------------ generic path
def _generic(kind: str, fused, dtype=np.float64, **options):
    """``RNN(cell)`` with the options and the weights of the fused layer ``fused``."""
    cell_class = {"lstm": layers.LSTMCell, "gru": layers.GRUCell}.get(kind, layers.SimpleRNNCell)
    extra = {"activation": kind[4:]} if kind.startswith("rnn") else {}
    cell = cell_class(H, dtype=np.dtype(dtype).name, **extra, **options)
    layer = layers.RNN(cell, return_sequences=True, return_state=True,
                       dtype=np.dtype(dtype).name)  # fmt: skip
    layer(np.zeros((1, 2, D), dtype))
    layer.set_weights(fused.get_weights())
    return layer


@pytest.mark.parametrize("kind", KINDS)
def test_step_by_step_path_agrees_with_the_fused_op(kind):
    fused = _layer(kind, return_sequences=True, return_state=True)
    _randomize(fused, seed=20)
    generic = _generic(kind, fused)
    assert fused._fused and not generic._fused
    x, states, cotangents = _data(kind, np.float64, seed=21, batch=len(SEGMENTS))
    for mask in (None, _mask(SEGMENTS)):
        if mask is not None:
            _set_leading_aside(mask, cotangents)
        expected, expected_grads = _ember_run(fused, x, states, cotangents, mask=mask)
        results, grads = _ember_run(generic, x, states, cotangents, mask=mask)
        if mask is not None:
            _set_leading_aside(mask, cotangents, expected[0], results[0])
        _assert_all_close(results, expected, np.float64, "result", atol=1e-12, rtol=0)
        _assert_all_close(grads, expected_grads, np.float64, "gradient", atol=1e-12, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_output_before_the_first_real_step_is_the_initial_state_in_both_paths(kind):
    """A masked step repeats the previous output; before the first real step that is the
    initial state's h (Keras' JAX and NumPy backends; its TensorFlow backend outputs zeros)."""
    fused = _layer(kind, return_sequences=True, return_state=True)
    _randomize(fused, seed=42)
    generic = _generic(kind, fused)
    x, states, _ = _data(kind, np.float64, seed=43)
    mask = _mask(LEFT_PADDED)
    step = generic(x, initial_state=states, mask=mask)[0].numpy()
    leading = _leading(mask)
    assert leading.any()
    expected = np.broadcast_to(states[0][:, None, :], step.shape)
    np.testing.assert_array_equal(step[leading], expected[leading])
    fast = fused(x, initial_state=states, mask=mask)[0].numpy()
    np.testing.assert_allclose(fast, step, atol=1e-12, rtol=0)


@pytest.mark.parametrize("kind", ["lstm", "rnn_tanh"])
def test_zero_output_for_mask_agrees_between_paths(kind):
    fused = _layer(kind, return_sequences=True, return_state=True, zero_output_for_mask=True)
    _randomize(fused, seed=22)
    generic = _generic(kind, fused)
    generic.zero_output_for_mask = True
    x, states, cotangents = _data(kind, np.float64, seed=23, batch=len(SEGMENTS))
    mask = _mask(SEGMENTS)
    expected, expected_grads = _ember_run(fused, x, states, cotangents, mask=mask)
    results, grads = _ember_run(generic, x, states, cotangents, mask=mask)
    assert not results[0][~mask].any()
    _assert_all_close(results, expected, np.float64, "result", atol=1e-12, rtol=0)
    _assert_all_close(grads, expected_grads, np.float64, "gradient", atol=1e-12, rtol=0)


def _check_against_numpy(layer, kind, seed, **reference_options):
    """Forward against ``_reference`` and every gradient against its finite differences."""
    x, states, cotangents = _data(kind, np.float64, seed=seed, batch=2, steps=4)
    mask = np.array([[True, True, True, False], [False, True, True, True]])
    weights = [w.numpy() for w in _cell_weights(layer)]
    results, grads = _ember_run(layer, x, states, cotangents, mask=mask)

    def reference(x, *rest):
        return _reference(kind, x, list(rest[: len(states)]), rest[len(states) :], mask=mask,
                          **reference_options)  # fmt: skip

    arrays = [x.copy(), *(s.copy() for s in states), *(w.copy() for w in weights)]
    _assert_all_close(results, reference(*arrays), np.float64, "result", atol=1e-12, rtol=0)
    numeric = _numeric_grads(reference, arrays, cotangents)
    _assert_all_close(grads, numeric, np.float64, "gradient", atol=1e-7, rtol=1e-6)


def test_gru_reset_after_false_matches_the_papers_formula():
    layer = layers.GRU(H, reset_after=False, return_sequences=True, return_state=True,
                       dtype="float64")  # fmt: skip
    _randomize(layer, seed=24)
    assert layer.cell.bias.shape == (3 * H,) and not layer._fused
    _check_against_numpy(layer, "gru", seed=25, reset_after=False)


def test_lstm_with_relu_takes_the_step_path_and_matches_numpy():
    layer = layers.LSTM(H, activation="relu", return_sequences=True, return_state=True,
                        dtype="float64")  # fmt: skip
    _randomize(layer, seed=26)
    assert not layer._fused
    _check_against_numpy(layer, "lstm", seed=27, activation="relu")


def test_float32_layer_keeps_float32_gradients_inside_the_graph(grad_probe):
    seen = []
    layer = _layer("lstm", np.float32, return_sequences=True)
    x = Tensor(np.random.default_rng(28).uniform(-1, 1, (B, T, D)).astype(np.float32),
               requires_grad=True)  # fmt: skip
    out = layer(grad_probe(x, seen))
    (out * Tensor(np.ones(out.shape, np.float32))).sum().backward()
    assert out.dtype == np.float32 and seen == [np.float32]
    assert all(w.grad.dtype == np.float32 for w in layer.weights)


# ------------------------------------------------------------------------------ Embedding
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_embedding_matches_torch_and_accumulates_repeated_ids(torch, dtype):
    ids = np.array([[1, 3, 1, 1, 0], [3, 3, 2, 1, 0]])
    embed = layers.Embedding(6, 4, dtype=np.dtype(dtype).name)
    embed(ids)
    rng = np.random.default_rng(29)
    embed.set_weights([rng.uniform(-1, 1, (6, 4))])
    module = torch.nn.Embedding(6, 4).to(torch.float64 if dtype == np.float64 else torch.float32)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(embed.embeddings.numpy()))
    cotangent = rng.standard_normal((2, 5, 4)).astype(dtype)
    out = embed(ids)
    (out * Tensor(cotangent)).sum().backward()
    t_out = module(torch.from_numpy(ids))
    (t_out * torch.from_numpy(cotangent)).sum().backward()
    tolerance = TOL[np.dtype(dtype).type]
    np.testing.assert_allclose(out.numpy(), t_out.detach().numpy(), **tolerance)
    grad = embed.embeddings.grad
    assert grad.dtype == np.dtype(dtype)
    np.testing.assert_allclose(grad, module.weight.grad.numpy(), **tolerance)
    # id 1 is used four times: its gradient is the sum of its four cotangent rows
    uses = cotangent[ids == 1].sum(axis=0)
    np.testing.assert_allclose(grad[1], uses, **tolerance)
    assert not grad[[4, 5]].any()


# ------------------------------------------------------------------------------ dropout
def test_dropout_is_off_in_inference_and_reproducible_with_a_seed_in_training():
    x = np.random.default_rng(30).uniform(-1, 1, (B, T, D)).astype(np.float32)
    plain = layers.LSTM(H, return_sequences=True)
    plain(x)
    twins = [layers.LSTM(H, dropout=0.4, recurrent_dropout=0.3, seed=7, return_sequences=True)
             for _ in range(2)]  # fmt: skip
    for layer in twins:
        layer(x)
        layer.set_weights(plain.get_weights())
    expected = plain(x).numpy()
    np.testing.assert_array_equal(twins[0](x).numpy(), expected)
    np.testing.assert_array_equal(twins[0](x, training=False).numpy(), expected)
    trained = [layer(x, training=True).numpy() for layer in twins]
    np.testing.assert_array_equal(trained[0], trained[1])  # same seed, same masks
    assert not np.allclose(trained[0], expected)
    again = twins[0](x, training=True).numpy()  # the next sequence draws new masks
    assert not np.array_equal(again, trained[0])


def test_cell_draws_its_input_dropout_mask_once_per_sequence():
    cell = layers.LSTMCell(H, dropout=0.5, recurrent_dropout=0.5, seed=3)
    x_t = Tensor(np.ones((B, D), np.float32))
    h = Tensor(np.ones((B, H), np.float32))
    assert cell.input_dropout_mask(x_t, training=False) is None
    first = cell.input_dropout_mask(x_t, training=True)
    assert first.shape == (B, D) and first.dtype == np.float32
    assert set(np.unique(first)) <= {0.0, 2.0} and 0 < first.sum() < 2 * first.size
    assert cell.input_dropout_mask(x_t, training=True) is first  # the next step: same mask
    recurrent = cell.recurrent_dropout_mask(h, training=True)
    assert cell.recurrent_dropout_mask(h, training=True) is recurrent
    cell.reset_dropout_mask()  # what the RNN layer does before each sequence
    assert not np.array_equal(cell.input_dropout_mask(x_t, training=True), first)


@pytest.mark.parametrize("generic", [False, True], ids=["fused", "step"])
def test_the_same_dropout_masks_are_used_at_every_step(generic):
    """The training output equals the NumPy recurrence with the cell's (one) input mask applied
    to every step and its (one) recurrent mask to every previous state."""
    rng = np.random.default_rng(31)
    x = rng.uniform(-1, 1, (B, 6, D))
    options = {"dropout": 0.5, "recurrent_dropout": 0.4, "seed": 5}
    if generic:
        layer = layers.RNN(layers.SimpleRNNCell(H, dtype="float64", **options),
                           return_sequences=True, dtype="float64")  # fmt: skip
    else:
        layer = layers.SimpleRNN(H, return_sequences=True, dtype="float64", **options)
    _randomize(layer, seed=32)
    out = layer(x, training=True).numpy()
    cell = layer.cell
    input_keep, recurrent_keep = cell._input_keep, cell._recurrent_keep
    assert input_keep.shape == (B, D) and recurrent_keep.shape == (B, H)
    assert (input_keep == 0).any() and (recurrent_keep == 0).any()
    weights = [w.numpy() for w in _cell_weights(layer)]
    expected = _reference("rnn", x, [np.zeros((B, H))], weights, input_keep=input_keep,
                          recurrent_keep=recurrent_keep)[0]  # fmt: skip
    np.testing.assert_allclose(out, expected, atol=1e-12, rtol=0)


def test_fused_and_step_paths_draw_the_same_dropout_masks():
    options = {"dropout": 0.3, "recurrent_dropout": 0.3, "seed": 11}
    fused = layers.GRU(H, return_sequences=True, return_state=True, dtype="float64", **options)
    _randomize(fused, seed=33)
    generic = _generic("gru", fused, **options)
    x, states, cotangents = _data("gru", np.float64, seed=34)
    expected, expected_grads = _ember_run(fused, x, states, cotangents, training=True)
    results, grads = _ember_run(generic, x, states, cotangents, training=True)
    _assert_all_close(results, expected, np.float64, "result", atol=1e-12, rtol=0)
    _assert_all_close(grads, expected_grads, np.float64, "gradient", atol=1e-12, rtol=0)


# ------------------------------------------------------------------------------ stateful, wrappers
def test_stateful_layer_carries_state_between_calls_until_reset():
    rng = np.random.default_rng(35)
    x1, x2 = rng.uniform(-1, 1, (2, B, T, D))
    layer = layers.LSTM(H, stateful=True, return_sequences=True, dtype="float64")
    _randomize(layer, seed=36)
    whole = layers.LSTM(H, return_sequences=True, dtype="float64")
    _randomize(whole, seed=36)
    expected = whole(np.concatenate([x1, x2], axis=1)).numpy()
    np.testing.assert_allclose(layer(x1).numpy(), expected[:, :T], atol=1e-12, rtol=0)
    np.testing.assert_allclose(layer(x2).numpy(), expected[:, T:], atol=1e-12, rtol=0)
    layer.reset_states()
    np.testing.assert_allclose(layer(x2).numpy(), whole(x2).numpy(), atol=1e-12, rtol=0)


def test_time_distributed_dense_equals_dense_per_step_and_passes_masks():
    rng = np.random.default_rng(37)
    x = rng.uniform(-1, 1, (B, T, D))
    x[0, 3:] = 0.0
    td = layers.TimeDistributed(layers.Dense(2, activation="tanh", dtype="float64"),
                                dtype="float64")  # fmt: skip
    inputs = Tensor(x, requires_grad=True)
    out = td(layers.Masking(0.0, dtype="float64")(inputs))
    dense = td.layer
    steps = [Tensor(x[:, t], requires_grad=True) for t in range(T)]
    expected = [dense(s) for s in steps]
    np.testing.assert_allclose(out.numpy(), np.stack([e.numpy() for e in expected], axis=1),
                               atol=1e-12, rtol=0)  # fmt: skip
    np.testing.assert_array_equal(out._keras_mask.numpy(), (x != 0).any(-1))
    cotangent = rng.standard_normal(out.shape)
    (out * Tensor(cotangent)).sum().backward()
    td_kernel_grad = dense.kernel.grad.copy()
    dense.kernel.grad = None
    sum((e * Tensor(cotangent[:, t])).sum() for t, e in enumerate(expected)).backward()
    np.testing.assert_allclose(td_kernel_grad, dense.kernel.grad, atol=1e-12, rtol=0)


# ------------------------------------------------------------------------------ models
def _ids():
    return np.array([[4, 2, 7, 0, 0], [1, 3, 3, 5, 9], [6, 0, 0, 0, 0]])


def _round_trip(model, x, tmp_path):
    expected = model.predict(x, verbose=0)
    path = tmp_path / "model.ember"
    model.save(path)
    loaded = ember.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)
    return loaded


def test_embedding_lstm_dense_model_saves_loads_and_ignores_padding(tmp_path):
    ember.manual_seed(0)
    inputs = layers.Input(shape=(None,), dtype="int32")
    hidden = layers.Embedding(10, 4, mask_zero=True)(inputs)
    hidden = layers.LSTM(5)(hidden)
    model = ember.Model(inputs, layers.Dense(2)(hidden))
    ids = _ids()
    loaded = _round_trip(model, ids, tmp_path)
    assert loaded.layers[1].mask_zero and isinstance(loaded.layers[2], layers.LSTM)
    padded = model.predict(ids, verbose=0)
    for row, length in enumerate((3, 5, 1)):  # the padding changes nothing
        alone = model.predict(ids[row : row + 1, :length], verbose=0)
        np.testing.assert_allclose(padded[row], alone[0], atol=1e-6, rtol=1e-6)


def test_bidirectional_gru_model_saves_and_loads(tmp_path):
    ember.manual_seed(1)
    inputs = layers.Input(shape=(None, D))
    hidden = layers.Bidirectional(layers.GRU(H, return_sequences=True), merge_mode="ave")(inputs)
    model = ember.Model(inputs, layers.TimeDistributed(layers.Dense(2))(hidden))
    x = np.random.default_rng(38).uniform(-1, 1, (2, T, D)).astype(np.float32)
    loaded = _round_trip(model, x, tmp_path)
    bi = loaded.layers[1]
    assert isinstance(bi, layers.Bidirectional) and bi.merge_mode == "ave"
    assert isinstance(bi.backward_layer, layers.GRU) and bi.backward_layer.go_backwards


def test_rnn_of_an_lstm_cell_model_saves_and_loads(tmp_path):
    ember.manual_seed(2)
    inputs = layers.Input(shape=(None, D))
    hidden = layers.RNN(layers.LSTMCell(H, unit_forget_bias=False), go_backwards=True)(inputs)
    model = ember.Model(inputs, layers.Dense(2)(hidden))
    x = np.random.default_rng(39).uniform(-1, 1, (2, T, D)).astype(np.float32)
    loaded = _round_trip(model, x, tmp_path)
    rnn = loaded.layers[1]
    assert type(rnn) is layers.RNN and isinstance(rnn.cell, layers.LSTMCell)
    assert rnn.go_backwards and rnn.cell.unit_forget_bias is False


def test_seq2seq_encoder_states_initialize_the_decoder_and_fit():
    ember.manual_seed(3)
    encoder_in = layers.Input(shape=(None, 3))
    decoder_in = layers.Input(shape=(None, 2))
    encoder = layers.LSTM(16, return_state=True)
    _, h, c = encoder(encoder_in)
    decoder = layers.LSTM(16, return_sequences=True)
    decoder_out = decoder(decoder_in, initial_state=[h, c])
    dense = layers.Dense(2)
    model = ember.Model([encoder_in, decoder_in], dense(decoder_out))
    rng = np.random.default_rng(40)
    x_enc = rng.uniform(-1, 1, (16, 6, 3)).astype(np.float32)
    x_dec = rng.uniform(-1, 1, (16, 4, 2)).astype(np.float32)
    y = np.repeat(x_enc[:, -1:, :2], 4, axis=1)  # only the encoder saw the target
    # the model is the layers called directly
    _, h_e, c_e = encoder(x_enc)
    direct = dense(decoder(x_dec, initial_state=[h_e, c_e])).numpy()
    np.testing.assert_allclose(model.predict([x_enc, x_dec], verbose=0), direct, atol=1e-6)
    before = encoder.get_weights()
    model.compile("adam", "mse")
    history = model.fit([x_enc, x_dec], y, epochs=8, batch_size=8, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    assert all(not np.array_equal(a, b) for a, b in zip(before, encoder.get_weights()))


def test_a_1000_step_sequence_trains_without_recursion_errors():
    rng = np.random.default_rng(41)
    x = Tensor(rng.uniform(-1, 1, (2, 1000, 3)).astype(np.float32), requires_grad=True)
    for layer in (layers.LSTM(8), layers.RNN(layers.GRUCell(4))):
        x.grad = None
        out = layer(x)
        (out * Tensor(rng.standard_normal(out.shape).astype(np.float32))).sum().backward()
        grads = [x.grad, *(w.grad for w in layer.weights)]
        assert all(np.isfinite(g).all() and g.dtype == np.float32 for g in grads)
        assert np.abs(x.grad[:, -1]).sum() > 0 and layer.cell.kernel.grad.any()


# ------------------------------------------------------------------------------ errors
def test_errors_name_the_layer():
    x = np.zeros((2, T, D), np.float32)
    lstm = layers.LSTM(H, name="encoder")
    with pytest.raises(ValueError, match=r'"encoder" \(LSTM\) has 2 state\(s\).*has 1'):
        lstm(x, initial_state=[np.zeros((2, H), np.float32)])
    with pytest.raises(ValueError, match=r'"encoder".*initial state must have shape.*\(2, 3\)'):
        lstm(x, initial_state=[np.zeros((2, H + 1), np.float32)] * 2)
    with pytest.raises(ValueError, match=r'"encoder".*expected ndim=3.*found ndim=2'):
        lstm(np.zeros((2, D), np.float32))
    with pytest.raises(ValueError, match=r'"encoder".*mask must have shape'):
        lstm(x, mask=np.ones((2, T + 1), bool))
    with pytest.raises(ValueError, match=r'"both" \(Bidirectional\): merge_mode.*got .max.'):
        layers.Bidirectional(layers.GRU(H), merge_mode="max", name="both")
    with pytest.raises(TypeError, match=r'"both" \(Bidirectional\) wraps a recurrent layer'):
        layers.Bidirectional(layers.Dense(H), name="both")
    with pytest.raises(ValueError, match=r'"dec_cell" \(GRUCell\): dropout must be.*\[0, 1\)'):
        layers.GRU(H, dropout=1.0, name="dec")
    with pytest.raises(ValueError, match=r'"c" \(LSTMCell\): recurrent_dropout.*-0.1'):
        layers.LSTMCell(H, recurrent_dropout=-0.1, name="c")
    with pytest.raises(ValueError, match=r"units must be a positive integer"):
        layers.SimpleRNN(0)
