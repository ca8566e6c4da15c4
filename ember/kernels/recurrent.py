"""The LSTM's per-step elementwise work, fused: one kernel call per step and direction.

Forward (:func:`lstm_forward_step`, float32): after the step's recurrent product, NumPy would
take ~10 passes over the ``(batch, 4·units)`` gates (add the product and the bias, ``tanh``,
the sigmoids, the cell update, ``tanh(c)``, ``h``). The kernel does them row by row while a row
is in the L1 cache, with its own vectorizable float32 ``tanh`` (:func:`tanh_f32`): numba's
``math.tanh`` is a scalar libm call (~18 ns an element, 4x NumPy's SIMD ``tanh``) because the
PyPI llvmlite has no vector math library. LSTM benchmark shapes (batch 64, 256 units, 100
steps, 64 features): the op's forward 40-43 → 32 ms, of which 16-18 ms are the recurrent
products; a step's kernel takes 43 µs with its data in cache, ~85 µs in the loop (the saved
gates stream from memory).

Backward (:func:`lstm_backward_step`, any float dtype): the ~20 NumPy calls of
``ember.ops.recurrent._lstm_step_back`` (plus the output gradient's addition) as one call doing
the same float operations in the same order, so the gate gradients are bit-identical to the
reference: 23 µs a step in cache (the old one-loop kernel: 140 µs in the loop), ~110 µs in the
loop, where it streams the step's saved gates, cell states and output gradient from memory.

Each row is split into short loops that touch few arrays: LLVM vectorizes a loop only after
proving at run time that its arrays do not overlap, and gives up when a loop reads and writes
too many of them (one loop over the whole step ran 2.2x slower, unvectorized). From
``PARALLEL_MIN_VALUES`` state values the batch's rows are shared among the threads, when their
loops start in microseconds (``loops_start_fast``; under ``workqueue`` a start costs ~100 µs):
the LSTM benchmark's step 105 → 92 ms.
"""

from __future__ import annotations

import numba
import numpy as np

from ember.kernels._numba import loops_start_fast, njit, prange

#: A step's rows are shared among the threads from this many state values (batch × units) on.
PARALLEL_MIN_VALUES = 1 << 12

# tanh(x) ≈ x·P(x²) / Q(x²) on |x| ≤ _TANH_LIMIT, fitted for Ember to float64 tanh (a
# linearized least-squares rational fit on Chebyshev nodes, reweighted towards equal relative
# error). Evaluated in float32 it is within 5.6 ulp of the true tanh (NumPy's float32 tanh:
# 1.4 ulp); tests/test_kernels.py checks it on a dense grid. Past the limit float32's tanh is
# ±1, and so is the fit's value there: the argument is clamped.
_TANH_P = tuple(
    np.float32(c)
    for c in (
        9.9999998926748135e-01,
        1.3082102792013700e-01,
        3.1018591106808514e-03,
        1.1133281170490382e-05,
        -2.0145138695882760e-08,
        5.2420071595351136e-11,
        -8.4024087833824734e-14,
    )
)
_TANH_Q = tuple(
    np.float32(c)
    for c in (1.0, 4.6415428208072218e-01, 2.4486735551074421e-02, 2.5431453225194136e-04)
)
_TANH_LIMIT = np.float32(9.02)  # float32 tanh rounds to ±1 from ±9.01 on
_P0, _P1, _P2, _P3, _P4, _P5, _P6 = _TANH_P
_Q0, _Q1, _Q2, _Q3 = _TANH_Q


@njit(inline="always")
def _tanh(x):  # pragma: no cover - compiled
    # comparisons rather than min/max: a NaN stays NaN (both tests are false)
    if x > _TANH_LIMIT:
        x = _TANH_LIMIT
    elif x < -_TANH_LIMIT:
        x = -_TANH_LIMIT
    s = x * x
    num = ((((((_P6 * s + _P5) * s + _P4) * s + _P3) * s + _P2) * s + _P1) * s + _P0) * x
    return num / (((_Q3 * s + _Q2) * s + _Q1) * s + _Q0)


@njit(cache=True)
def _tanh_array(values, out):  # pragma: no cover - compiled
    flat_in, flat_out = values.ravel(), out.ravel()
    for k in range(flat_in.size):
        flat_out[k] = _tanh(flat_in[k])


def tanh_f32(values: np.ndarray) -> np.ndarray:
    """The kernels' float32 ``tanh`` (a rational approximation within ~5 ulp), elementwise.

    Exposed for the tests; the LSTM step inlines it.

    >>> from ember.kernels.recurrent import tanh_f32
    >>> x = np.array([0.0, 0.5, -3.0, -20.0, np.nan], np.float32)
    >>> tanh_f32(x)[[0, 3, 4]]
    array([ 0., -1., nan], dtype=float32)
    >>> bool(np.abs(tanh_f32(x[:4]) - np.tanh(x[:4])).max() < 1e-6)
    True
    """
    values = np.ascontiguousarray(values, dtype=np.float32)
    out = np.empty_like(values)
    _tanh_array(values, out)
    return out


@njit(cache=True)
def _lstm_forward_step(gates, t, rec, bias, c_all, tanh_c, h_all, lo, hi):
    # pragma: no cover - compiled
    units = gates.shape[3]
    half = np.float32(0.5)
    for b in range(lo, hi):
        for gate in range(4):  # pre-activations are halved for the sigmoids: σ(a) = ½tanh(a/2)+½
            row = gates[gate, t, b]
            product = rec[b, gate * units : (gate + 1) * units]
            shift = bias[gate * units : (gate + 1) * units]
            if gate < 3:
                for k in range(units):
                    row[k] = _tanh(row[k] + product[k] + shift[k]) * half + half
            else:
                for k in range(units):
                    row[k] = _tanh(row[k] + product[k] + shift[k])
        i, f, o, cand = gates[0, t, b], gates[1, t, b], gates[2, t, b], gates[3, t, b]
        c_prev, c = c_all[t, b], c_all[t + 1, b]
        for k in range(units):
            c[k] = f[k] * c_prev[k] + i[k] * cand[k]
        tc, h = tanh_c[t, b], h_all[t + 1, b]
        for k in range(units):
            tc[k] = _tanh(c[k])
        for k in range(units):
            h[k] = o[k] * tc[k]


def lstm_forward_step(gates, t, rec, bias, c_all, tanh_c, h_all) -> None:
    """Step ``t`` of the LSTM after its recurrent product ``rec`` (B, 4H), float32, in place.

    ``gates`` (4, T, B, H; order i, f, o, c) holds the input projection without the bias; its
    step ``t`` becomes the activated gates. ``bias`` (4H,) is added here (zeros when the layer
    has none). The sigmoid gates' projections, products and biases are halved (see
    ``ember.ops.recurrent``). Writes ``c_all[t + 1]``, ``tanh_c[t]`` and ``h_all[t + 1]``.
    """
    blocks = _blocks(h_all.shape[1], h_all.shape[2])
    if blocks > 1:
        _lstm_forward_rows(gates, t, rec, bias, c_all, tanh_c, h_all, blocks)
    else:
        _lstm_forward_step(gates, t, rec, bias, c_all, tanh_c, h_all, 0, h_all.shape[1])


@njit(parallel=True, cache=True)
def _lstm_forward_rows(gates, t, rec, bias, c_all, tanh_c, h_all, blocks):
    # pragma: no cover - compiled
    rows = h_all.shape[1]
    for block in prange(blocks):
        _lstm_forward_step(gates, t, rec, bias, c_all, tanh_c, h_all, rows * block // blocks,
                           rows * (block + 1) // blocks)  # fmt: skip


@njit(cache=True)
def _lstm_backward_step(
    dh, dc, d, gates, t, c_all, tanh_c, out_grad, add_output, lo, hi
):  # pragma: no cover - compiled
    units = dh.shape[1]
    one = dh.dtype.type(1)
    for b in range(lo, hi):
        grad_h, grad_c = dh[b], dc[b]
        if add_output:
            g_out = out_grad[b, t]
            for k in range(units):
                grad_h[k] += g_out[k]
        i, f, o, cand = gates[0, t, b], gates[1, t, b], gates[2, t, b], gates[3, t, b]
        tc, c_prev = tanh_c[t, b], c_all[t, b]
        di = d[b, :units]
        df = d[b, units : 2 * units]
        do = d[b, 2 * units : 3 * units]
        dcand = d[b, 3 * units :]
        for k in range(units):
            dh_o = grad_h[k] * o[k]
            do[k] = dh_o * ((one - o[k]) * tc[k])  # σ' = o (1 − o)
            grad_c[k] += (one - tc[k] * tc[k]) * dh_o  # now the gradient w.r.t. c_t
        for k in range(units):
            dc_i = grad_c[k] * i[k]
            di[k] = dc_i * ((one - i[k]) * cand[k])
            dcand[k] = dc_i * (one - cand[k] * cand[k])  # tanh' = 1 − t²
        for k in range(units):
            df[k] = grad_c[k] * ((one - f[k]) * f[k] * c_prev[k])
            grad_c[k] *= f[k]  # on to c_{t−1}, through the forget gate


def lstm_backward_step(dh, dc, d, gates, t, c_all, tanh_c, out_grad=None) -> None:
    """Step ``t`` of the LSTM's backward through time, in place: ``dh += out_grad[:, t]`` (when
    given; (B, T, H) or wider), then the gate gradients into ``d`` (B, 4H; order i, f, o, c),
    and ``dc`` becomes the gradient w.r.t. c_{t−1}. The same operations, in the same order, as
    ``_output_grad`` and ``_lstm_step_back`` of ``ember.ops.recurrent``."""
    add_output = out_grad is not None
    if out_grad is None:
        out_grad = dh.reshape(dh.shape[0], 1, dh.shape[1])  # not read; one compiled signature
    blocks = _blocks(*dh.shape)
    if blocks > 1:
        _lstm_backward_rows(dh, dc, d, gates, t, c_all, tanh_c, out_grad, add_output, blocks)
    else:
        _lstm_backward_step(dh, dc, d, gates, t, c_all, tanh_c, out_grad, add_output, 0,
                            dh.shape[0])  # fmt: skip


@njit(parallel=True, cache=True)
def _lstm_backward_rows(dh, dc, d, gates, t, c_all, tanh_c, out_grad, add_output, blocks):
    # pragma: no cover - compiled
    rows = dh.shape[0]
    for block in prange(blocks):
        _lstm_backward_step(dh, dc, d, gates, t, c_all, tanh_c, out_grad, add_output,
                            rows * block // blocks, rows * (block + 1) // blocks)  # fmt: skip


def _blocks(rows: int, units: int) -> int:
    """Blocks of rows a step is shared out in: one per thread from ``PARALLEL_MIN_VALUES`` state
    values on, when numba's threads start a loop in microseconds."""
    if rows < 2 or rows * units < PARALLEL_MIN_VALUES or not loops_start_fast():
        return 1
    return min(rows, numba.get_num_threads())
