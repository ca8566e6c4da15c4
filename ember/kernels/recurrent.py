"""The LSTM's per-step elementwise work, fused (the ``tanh`` calls stay NumPy's: its vectorized
``tanh`` is ~4x faster than the scalar one numba compiles).

A step of the LSTM's backward through time is ~20 NumPy calls on ``(batch, units)`` arrays
(each a pass with its own call overhead); :func:`lstm_step_back` is one pass doing the same
float operations in the same order, so the gate gradients are bit-identical to the reference
(``ember.ops.recurrent._lstm_step_back``). One thread: a step's arrays are small (64 × 256 in
the LSTM benchmark) and a parallel loop's start costs more than it saves.
"""

from __future__ import annotations

from ember.kernels._numba import njit


@njit(cache=True)
def _lstm_cell(gates, c_prev, c):  # pragma: no cover - compiled
    half = gates.dtype.type(0.5)
    batch, units = c.shape
    for b in range(batch):
        for k in range(units):
            i = gates[0, b, k] * half + half  # σ(a) = ½ tanh(a/2) + ½, from the tanh already there
            f = gates[1, b, k] * half + half
            gates[2, b, k] = gates[2, b, k] * half + half
            gates[0, b, k] = i
            gates[1, b, k] = f
            c[b, k] = f * c_prev[b, k] + i * gates[3, b, k]


def lstm_cell(gates, c_prev, c) -> None:
    """The step's sigmoid gates from their ``tanh(a/2)`` (in place in ``gates``, order i, f, o,
    c) and the new cell state ``c = f·c_prev + i·cand``, in one pass (the reference:
    ``_sigmoid_from_tanh`` and three NumPy products and sums in ``_lstm_forward``)."""
    _lstm_cell(gates, c_prev, c)


@njit(cache=True)
def _lstm_step_back(dh, dc, d, gates, c_prev, tanh_c):  # pragma: no cover - compiled
    batch, units = dh.shape
    one = dh.dtype.type(1)
    for b in range(batch):
        for k in range(units):
            i, f, o, cand = gates[0, b, k], gates[1, b, k], gates[2, b, k], gates[3, b, k]
            tc = tanh_c[b, k]
            dh_o = dh[b, k] * o
            d[b, 2 * units + k] = dh_o * ((one - o) * tc)  # d o: σ' = o (1 − o)
            full_dc = dc[b, k] + (one - tc * tc) * dh_o  # the gradient w.r.t. c_t
            dc_i = full_dc * i
            d[b, k] = dc_i * ((one - i) * cand)  # d i
            d[b, 3 * units + k] = dc_i * (one - cand * cand)  # d cand: tanh' = 1 − t²
            d[b, units + k] = full_dc * ((one - f) * f * c_prev[b, k])  # d f
            dc[b, k] = full_dc * f  # on to c_{t−1}, through the forget gate


def lstm_step_back(dh, dc, d, gates, c_prev, tanh_c) -> None:
    """``_lstm_step_back`` of ``ember.ops.recurrent`` in one pass: the gate gradients of the
    step into ``d`` (B, 4H; order i, f, o, c) and ``dc`` becomes the gradient w.r.t. c_{t−1}."""
    _lstm_step_back(dh, dc, d, gates, c_prev, tanh_c)
