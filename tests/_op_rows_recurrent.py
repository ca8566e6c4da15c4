"""Rows of the op table (``test_ops.py``) for the recurrent ops.

Each row's Ember side returns ONE tensor: the op's results flattened and concatenated. The
PyTorch side runs ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` through ``torch.func.functional_call``
with the row's weights as its parameters (so their gradients are compared too): PyTorch stores
``weight_ih = kernel.T`` and has two biases (the LSTM/RNN rows give ``bias_hh`` zeros), and its
GRU orders the gates r, z, n against Keras' z, r, h. End-padded masks with
``zero_output_for_mask=True`` are what ``pack_padded_sequence`` computes, so they get parity
too; other masks and the recurrent mask have no PyTorch counterpart and are gradcheck-only
(``test_recurrent_ops.py`` checks them against step-by-step references).
"""

from __future__ import annotations

import numpy as np

from ember import Tensor, ops
from ember.ops import recurrent

B, T, D, H = 3, 4, 3, 2
# sample 0 is complete, 1 and 2 are padded at the end (lengths 2 and 3)
END_PADDED = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]], dtype=bool)
# sample 1 is padded at the start, sample 2 in the middle
START_PADDED = np.array([[1, 1, 1, 1], [0, 0, 1, 1], [1, 0, 1, 1]], dtype=bool)
RECURRENT_MASK = np.array([[0.0, 2.0], [2.0, 2.0], [2.0, 0.0]])  # dropout of 0.5, scaled


def _op(name):
    """``ember.ops.<name>`` once exported (test_row_calls_its_op counts calls there), else
    ``ember.ops.recurrent.<name>``."""
    return getattr(ops, name, None) or getattr(recurrent, name)


def _flat(results) -> Tensor:
    return ops.concatenate([r.reshape((-1,)) for r in results])


# ------------------------------------------------------------------------------ torch side
def _module(kind: str, activation: str = "tanh"):
    import torch

    if kind == "rnn":
        return torch.nn.RNN(D, H, batch_first=True, nonlinearity=activation)
    return getattr(torch.nn, kind.upper())(D, H, batch_first=True)


def _gru_to_torch(w):
    """Keras' z, r, h gate blocks (last axis) -> PyTorch's r, z, n, as (3H, ...)."""
    import torch

    out = torch.cat([w[..., H : 2 * H], w[..., :H], w[..., 2 * H :]], dim=-1)
    return out.T if out.ndim == 2 else out


def _run_torch(kind, x, state, params, mask=None, activation="tanh"):
    """The module's outputs (zeros after a sample's end when ``mask``) and final states."""
    import torch
    from torch.func import functional_call
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    module = _module(kind, activation)
    if mask is not None:
        lengths = torch.as_tensor(mask.sum(axis=1))
        x = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, final = functional_call(module, params, (x, state))
    if mask is not None:
        out = pad_packed_sequence(out, batch_first=True, total_length=T)[0]
    finals = final if isinstance(final, tuple) else (final,)
    return torch.cat([out.reshape(-1), *[f[0].reshape(-1) for f in finals]])


def _torch_lstm(mask=None):
    def ref(x, h0, c0, w, u, b=None):
        import torch

        zero = torch.zeros(4 * H, dtype=x.dtype)
        params = {
            "weight_ih_l0": w.T,
            "weight_hh_l0": u.T,
            "bias_ih_l0": zero if b is None else b,
            "bias_hh_l0": zero,
        }
        return _run_torch("lstm", x, (h0[None], c0[None]), params, mask)

    return ref


def _torch_gru(mask=None):
    def ref(x, h0, w, u, bi=None, br=None):
        import torch

        zero = torch.zeros(3 * H, dtype=x.dtype)
        params = {
            "weight_ih_l0": _gru_to_torch(w),
            "weight_hh_l0": _gru_to_torch(u),
            "bias_ih_l0": zero if bi is None else _gru_to_torch(bi),
            "bias_hh_l0": zero if br is None else _gru_to_torch(br),
        }
        return _run_torch("gru", x, h0[None], params, mask)

    return ref


def _torch_rnn(activation="tanh", mask=None):
    def ref(x, h0, w, u, b=None):
        import torch

        zero = torch.zeros(H, dtype=x.dtype)
        params = {
            "weight_ih_l0": w.T,
            "weight_hh_l0": u.T,
            "bias_ih_l0": zero if b is None else b,
            "bias_hh_l0": zero,
        }
        return _run_torch("rnn", x, h0[None], params, mask, activation)

    return ref


# ------------------------------------------------------------------------------ rows
def _lstm(**kwargs):
    return lambda *args: _flat(_op("lstm")(*args, **kwargs))


def _gru(**kwargs):
    return lambda *args: _flat(_op("gru")(*args, **kwargs))


def _rnn(**kwargs):
    return lambda *args: _flat(_op("simple_rnn")(*args, **kwargs))


LSTM_IN = [(B, T, D), (B, H), (B, H), (D, 4 * H), (H, 4 * H), (4 * H,)]
GRU_IN = [(B, T, D), (B, H), (D, 3 * H), (H, 3 * H), (3 * H,), (3 * H,)]
RNN_IN = [(B, T, D), (B, H), (D, H), (H, H), (H,)]
_NO_TORCH = "no PyTorch counterpart (masked steps inside or before a sequence, or a recurrent "
_NO_TORCH += "mask): gradcheck only; test_recurrent_ops.py checks it against step-by-step runs"
_PACKED = "end padding with zero outputs = PyTorch's pack_padded_sequence"


def add_rows(case) -> None:
    """Append this family's rows with ``case(id, op, fn, ref, inputs, ...)`` (see test_ops.py)."""
    tol = {"atol": 1e-5, "rtol": 1e-4}  # sums over steps and gates, as matmul rows
    case("lstm_basic", "lstm", _lstm(), _torch_lstm(), LSTM_IN, parity=tol)
    case("lstm_no_bias", "lstm", _lstm(), _torch_lstm(), LSTM_IN[:5], parity=tol)
    case(
        "lstm_end_padded_zero_output",
        "lstm",
        _lstm(mask=END_PADDED, zero_output_for_mask=True),
        _torch_lstm(END_PADDED),
        LSTM_IN,
        notes=_PACKED,
        parity=tol,
    )
    case(
        "lstm_start_padded_recurrent_mask",
        "lstm",
        _lstm(mask=START_PADDED, recurrent_mask=RECURRENT_MASK),
        None,
        LSTM_IN,
        notes=_NO_TORCH,
    )
    case("gru_basic", "gru", _gru(), _torch_gru(), GRU_IN, parity=tol)
    case("gru_no_bias", "gru", _gru(), _torch_gru(), GRU_IN[:4], parity=tol)
    case(
        "gru_end_padded_zero_output",
        "gru",
        _gru(mask=END_PADDED, zero_output_for_mask=True),
        _torch_gru(END_PADDED),
        GRU_IN,
        notes=_PACKED,
        parity=tol,
    )
    case(
        "gru_start_padded_recurrent_mask",
        "gru",
        _gru(mask=START_PADDED, recurrent_mask=RECURRENT_MASK),
        None,
        GRU_IN,
        notes=_NO_TORCH,
    )
    case("simple_rnn_tanh", "simple_rnn", _rnn(), _torch_rnn(), RNN_IN, parity=tol)
    case(
        "simple_rnn_relu",
        "simple_rnn",
        _rnn(activation="relu"),
        _torch_rnn("relu"),
        RNN_IN,
        notes="relu: random samples sit at the kink with probability 0",
        parity=tol,
    )
    case(
        "simple_rnn_end_padded_zero_output",
        "simple_rnn",
        _rnn(mask=END_PADDED, zero_output_for_mask=True),
        _torch_rnn(mask=END_PADDED),
        RNN_IN,
        notes=_PACKED,
        parity=tol,
    )
    case(
        "simple_rnn_start_padded_recurrent_mask",
        "simple_rnn",
        _rnn(mask=START_PADDED, recurrent_mask=RECURRENT_MASK),
        None,
        RNN_IN,
        notes=_NO_TORCH,
    )
