"""Fused recurrent ops: a whole LSTM, GRU or simple-RNN sequence is ONE node of the graph.

Each op runs the recurrence in NumPy with its own backward through time, instead of recording
a dozen small nodes per time step. The layout is chosen for speed:

* the input projection of all time steps is one matrix product per gate, ``(T*B, D) @
  kernel_gate`` (plus the bias, added once), written straight into a time-major, gate-major
  buffer ``(gates, T, B, H)``: every gate of a step is then a contiguous ``(B, H)`` block, which
  NumPy's elementwise loops run ~1.5-2x faster than a strided column block of ``(B, gates*H)``
  (the LSTM keeps its gates in the internal order i, f, o, c so the sigmoids are one block);
* a step does one product ``h_{t-1} @ recurrent_kernel`` for all gates together, then the gate
  math in place on buffers allocated once per call (with the float32 kernels,
  ``ember.kernels.recurrent``, the LSTM's gate math and its bias are one pass per step);
* the backward keeps the gate gradients of every step, so that each weight gradient is again
  one matrix product over all steps (``X^T dG``, ``H_prev^T dG``, ``dG @ kernel^T``); per step
  it does only the elementwise derivatives and one product ``dG_t @ recurrent_kernel^T``.

A sigmoid gate is computed as ``0.5 * tanh(a / 2) + 0.5``: the sigmoid columns of the kernels
and biases are halved up front (exact in floating point: a power of two), so that one ``tanh``
call covers every gate of a step and nothing can overflow (``exp`` of a large ``-a`` would).

Masking follows Keras: at a step whose mask is False the state is carried unchanged and the
output is the carried ``h`` (zeros with ``zero_output_for_mask=True``); such a step passes the
state gradient straight through and adds nothing to the weight gradients.

The three results of an op are slices of one packed array ``(B, T + states, H)`` made by one
graph node, so the engine sums their gradients back into the packed gradient.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ember import kernels
from ember.backend import xp
from ember.ops._core import as_tensor, gemm
from ember.tensor import Tensor

__all__ = ["lstm", "gru", "simple_rnn"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# ------------------------------------------------------------------------------ validation
class _Mask(NamedTuple):
    """A time-major (T, B, 1) step mask in the forms the loops use."""

    dead: np.ndarray  # bool: the state is carried at this step
    live_f: np.ndarray  # 1.0 at a real step, in the computation's dtype
    dead_f: np.ndarray  # 1.0 at a masked step
    partial: list  # per step: does any sample skip it?


def _float_tensor(op: str, arg: str, value) -> Tensor:
    tensor = value if isinstance(value, Tensor) else as_tensor(value)
    if tensor.data.dtype not in _FLOATS:
        raise TypeError(
            f"{op}: {arg} must be a float32 or float64 tensor, got dtype {tensor.data.dtype}"
        )
    return tensor


def _check_shape(op: str, arg: str, tensor: Tensor, expected: tuple, meaning: str) -> None:
    if tensor.shape != expected:
        raise ValueError(f"{op}: {arg} must have shape {meaning} = {expected}, got {tensor.shape}")


def _check_dtypes(op: str, named: dict) -> np.dtype:
    dtype = named["inputs"].data.dtype
    for arg, tensor in named.items():
        if tensor.data.dtype != dtype:
            raise TypeError(
                f"{op}: all float arguments must share one dtype; inputs is {dtype} but {arg} "
                f"is {tensor.data.dtype} (cast one of them, e.g. with .astype)"
            )
    return dtype


def _validate(op: str, gates: int, inputs, states: dict, kernel, recurrent_kernel, biases: dict):
    """Tensors for every argument, checked; returns (named tensors, B, T, D, H, dtype)."""
    x = _float_tensor(op, "inputs", inputs)
    if x.ndim != 3:
        raise ValueError(f"{op}: inputs must be 3-D (batch, time, features), got shape {x.shape}")
    batch, steps, features = x.shape
    u = _float_tensor(op, "recurrent_kernel", recurrent_kernel)
    if u.ndim != 2 or u.shape[1] != gates * u.shape[0]:
        raise ValueError(
            f"{op}: recurrent_kernel must have shape (units, {gates} * units), got {u.shape}"
        )
    units = u.shape[0]
    named = {"inputs": x, "kernel": _float_tensor(op, "kernel", kernel), "recurrent_kernel": u}
    _check_shape(
        op, "kernel", named["kernel"], (features, gates * units), f"(features, {gates} * units)"
    )
    for arg, value in states.items():
        if value is None:  # a zero initial state
            value = np.zeros((batch, units), x.data.dtype)
        named[arg] = _float_tensor(op, arg, value)
        _check_shape(op, arg, named[arg], (batch, units), "(batch, units)")
    for arg, value in biases.items():
        if value is not None:
            named[arg] = _float_tensor(op, arg, value)
            _check_shape(op, arg, named[arg], (gates * units,), f"({gates} * units,)")
    dtype = _check_dtypes(op, named)
    return named, batch, steps, features, units, dtype


def _step_mask(op: str, mask, batch: int, steps: int, dtype) -> _Mask | None:
    """The (B, T) mask as time-major arrays; None when there is none or it keeps every step."""
    if mask is None:
        return None
    m = np.asarray(mask.data if isinstance(mask, Tensor) else mask)
    if m.shape != (batch, steps):
        raise ValueError(
            f"{op}: mask must have shape (batch, time) = {(batch, steps)}, got {m.shape}"
        )
    if m.dtype.kind in "iuf":
        if not ((m == 0) | (m == 1)).all():
            raise ValueError(f"{op}: mask must hold booleans or 0/1 values, got other values")
        m = m != 0
    elif m.dtype.kind != "b":
        raise TypeError(f"{op}: mask must be a boolean or 0/1 array, got dtype {m.dtype}")
    if m.all():  # nothing masked: the plain (faster) path is exactly equivalent
        return None
    dead = np.ascontiguousarray(~m.T)[:, :, None]
    live_f = (~dead).astype(dtype)
    return _Mask(dead, live_f, dead.astype(dtype), [bool(d) for d in dead.any(axis=(1, 2))])


def _recurrent_mask(op: str, recurrent_mask, batch: int, units: int, dtype) -> np.ndarray | None:
    if recurrent_mask is None:
        return None
    r = recurrent_mask.data if isinstance(recurrent_mask, Tensor) else recurrent_mask
    r = np.asarray(r)
    if r.shape != (batch, units):
        raise ValueError(
            f"{op}: recurrent_mask must have shape (batch, units) = {(batch, units)}, got {r.shape}"
        )
    if r.dtype.kind not in "biuf":
        raise TypeError(f"{op}: recurrent_mask must be numeric, got dtype {r.dtype}")
    return r.astype(dtype, copy=False)  # a constant: cast to the computation's dtype


# ------------------------------------------------------------------------------ shared pieces
def _halved(w: np.ndarray, columns: slice) -> np.ndarray:
    """A copy of ``w`` with ``columns`` (of the last axis) halved: the sigmoid gates' inputs."""
    out = w.copy()
    out[..., columns] *= 0.5
    return out


def _sigmoid_from_tanh(view: np.ndarray) -> None:
    """In place: ``tanh(a / 2)`` (already there) becomes ``sigmoid(a) = 0.5 * tanh(a/2) + 0.5``."""
    view *= 0.5
    view += 0.5


def _initial_buffer(first: np.ndarray, steps: int) -> np.ndarray:
    """(T + 1, B, H) with the initial state at index 0: index t + 1 is the state after step t."""
    out = xp.empty((steps + 1, *first.shape), first.dtype)
    out[0] = first
    return out


def _carry(new: np.ndarray, old: np.ndarray, mask: _Mask | None, t: int) -> None:
    """Keep the previous state in the rows whose step ``t`` is masked."""
    if mask is not None and mask.partial[t]:
        np.copyto(new, old, where=mask.dead[t])


def _output_grad(dh: np.ndarray, g: np.ndarray, t: int, mask, zero_output: bool) -> None:
    """dh += the gradient of output t (none at a masked step when it outputs zeros)."""
    if zero_output and mask is not None and mask.partial[t]:
        dh += g[:, t] * mask.live_f[t]
    else:
        dh += g[:, t]


def _split_masked(dh: np.ndarray, dc, mask: _Mask | None, t: int):
    """At a partly masked step: set aside the carried rows' state gradients (returned) and zero
    them in ``dh``/``dc``, so that the step's math sees only the real rows."""
    if mask is None or not mask.partial[t]:
        return None
    kept = [dh * mask.dead_f[t]] + ([] if dc is None else [dc * mask.dead_f[t]])
    dh *= mask.live_f[t]
    if dc is not None:
        dc *= mask.live_f[t]
    return kept


def _pack(h_all: np.ndarray, finals: list, mask, zero_output: bool) -> np.ndarray:
    """(B, T + len(finals), H): outputs at every step, then the final states."""
    steps = h_all.shape[0] - 1
    packed = xp.empty((h_all.shape[1], steps + len(finals), h_all.shape[2]), h_all.dtype)
    outputs = packed[:, :steps].transpose(1, 0, 2)
    if zero_output and mask is not None:
        np.multiply(h_all[1:], mask.live_f, out=outputs)
    else:
        outputs[...] = h_all[1:]
    for k, state in enumerate(finals):
        packed[:, steps + k] = state
    return packed


def _unpack(packed: np.ndarray, parents: tuple, backward, op: str, states: int) -> tuple:
    node = Tensor._from_op(packed, parents, backward, op)
    steps = packed.shape[1] - states
    return (node[:, :steps], *(node[:, steps + k] for k in range(states)))


def _previous_states(h_all: np.ndarray, rmask) -> np.ndarray:
    """(T * B, H): the h_{t-1} each step multiplied into the recurrent kernel."""
    prev = h_all[:-1]
    if rmask is not None:
        prev = prev * rmask
    return prev.reshape(-1, prev.shape[-1])


def _input_grads(dg: np.ndarray, x_tm: np.ndarray, kernel: np.ndarray, need_x: bool, need_w: bool):
    """(dInputs (B, T, D), dKernel) from the gate gradients of all steps, one product each."""
    steps, batch, features = x_tm.shape
    dg2 = dg.reshape(steps * batch, dg.shape[-1])  # sizes spelled out: T = 0 is valid
    dx = dw = None
    if need_x:
        dx = gemm(dg2, kernel.T).reshape(steps, batch, features).transpose(1, 0, 2)
        dx = np.ascontiguousarray(dx)
    if need_w:
        dw = gemm(x_tm.reshape(steps * batch, features).T, dg2)
    return dx, dw


def _parents(named: dict, order: tuple) -> tuple[tuple, tuple]:
    names = tuple(n for n in order if n in named)
    return names, tuple(named[n] for n in names)


def _prepare(op, gates, inputs, states, kernel, recurrent_kernel, biases, mask, recurrent_mask):
    named, batch, steps, _, units, dtype = _validate(
        op, gates, inputs, states, kernel, recurrent_kernel, biases
    )
    step_mask = _step_mask(op, mask, batch, steps, dtype)
    rmask = _recurrent_mask(op, recurrent_mask, batch, units, dtype)
    # time-major copy of the inputs: the projection's rows come out in step order
    x_tm = np.ascontiguousarray(named["inputs"].data.transpose(1, 0, 2))
    return named, x_tm, units, step_mask, rmask


# ------------------------------------------------------------------------------ LSTM
def _lstm_order(w: np.ndarray, units: int) -> np.ndarray:
    """Keras' gate blocks i, f, c, o (last axis) -> i, f, o, c: the three sigmoids side by side.
    Swapping the last two blocks is its own inverse, so this also maps back."""
    return xp.concatenate(
        [w[..., : 2 * units], w[..., 3 * units :], w[..., 2 * units : 3 * units]], axis=-1
    )


def _project_gates(x_tm: np.ndarray, kernel: np.ndarray, bias, count: int) -> np.ndarray:
    """The input projection of all steps, gate-major ``(count, T, B, H)``: one product per gate
    written straight in place, and the bias added once."""
    steps, batch, features = x_tm.shape
    units = kernel.shape[1] // count
    gates = xp.empty((count, steps, batch, units), x_tm.dtype)
    rows = x_tm.reshape(steps * batch, features)
    for k in range(count):
        gemm(rows, kernel[:, k * units : (k + 1) * units], out=gates[k].reshape(-1, units))
    if bias is not None:
        gates += bias.reshape(count, 1, 1, units)
    return gates


def _recurrent_product(h, recurrent, rmask, scratch, out) -> None:
    """``h_{t-1} @ recurrent`` into ``out``; with recurrent dropout, ``h * rmask`` first (into
    ``scratch``)."""
    if rmask is not None:
        h = np.multiply(h, rmask, out=scratch)
    gemm(h, recurrent, out=out)


def _lstm_forward(x_tm, h0, c0, kernel, recurrent, bias, mask, rmask):
    """Run the LSTM; returns the activated gates, gate-major (4, T, B, H) in the order i, f, o,
    c (each gate of a step is a contiguous block), h and c (T+1, B, H), and tanh(c_t)."""
    steps, batch = x_tm.shape[:2]
    units = recurrent.shape[0]
    sig = slice(0, 3 * units)
    w = _halved(_lstm_order(kernel, units), sig)
    u = _halved(_lstm_order(recurrent, units), sig)
    bias = None if bias is None else _halved(_lstm_order(bias, units), sig)
    fast = kernels.get("recurrent") if x_tm.dtype == np.float32 else None
    # the kernel adds the bias in its pass over the step: not a pass over all steps here
    gates = _project_gates(x_tm, w, None if fast is not None else bias, 4)
    if fast is not None and bias is None:
        bias = xp.zeros(4 * units, x_tm.dtype)
    h_all, c_all = _initial_buffer(h0, steps), _initial_buffer(c0, steps)
    tanh_c = xp.empty((steps, batch, units), x_tm.dtype)
    rec = xp.empty((batch, 4 * units), x_tm.dtype)
    rec_by_gate = rec.reshape(batch, 4, units).transpose(1, 0, 2)
    tmp = xp.empty_like(h0)
    h_in = None if rmask is None else xp.empty_like(h0)
    for t in range(steps):
        _recurrent_product(h_all[t], u, rmask, h_in, rec)
        c = c_all[t + 1]
        if fast is not None:  # the step's gate math in one pass (float32)
            fast.lstm_forward_step(gates, t, rec, bias, c_all, tanh_c, h_all)
        else:
            g = gates[:, t]
            g += rec_by_gate
            np.tanh(g, out=g)
            _sigmoid_from_tanh(g[:3])
            np.multiply(g[1], c_all[t], out=c)
            c += np.multiply(g[0], g[3], out=tmp)
            np.multiply(g[2], np.tanh(c, out=tanh_c[t]), out=h_all[t + 1])
        _carry(c, c_all[t], mask, t)
        _carry(h_all[t + 1], h_all[t], mask, t)
    return gates, h_all, c_all, tanh_c


def _lstm_step_back(dh, dc, d, g, c_prev, tanh_c, tmp, tmp2) -> None:
    """One step back: dG_t into ``d`` (B, 4H; order i, f, o, c) from dh, dc (gradients w.r.t.
    h_t, c_t); dc becomes the gradient w.r.t. c_{t-1} (through the forget gate only). The
    factors are built in contiguous buffers; only the last product of each gate writes into
    its (strided) block of ``d``."""
    units = dh.shape[1]
    i, f, o, cand = g
    di, df, do, dcand = (d[:, k * units : (k + 1) * units] for k in range(4))
    # sigmoid'(a) = s (1 - s), tanh'(a) = 1 - t^2; dh * o and dc * i serve two gates each
    np.multiply(dh, o, out=tmp2)
    np.subtract(1, o, out=tmp)
    tmp *= tanh_c
    np.multiply(tmp2, tmp, out=do)
    np.multiply(tanh_c, tanh_c, out=tmp)
    np.subtract(1, tmp, out=tmp)
    tmp *= tmp2
    dc += tmp  # now the full gradient w.r.t. c_t
    np.multiply(dc, i, out=tmp2)
    np.subtract(1, i, out=tmp)
    tmp *= cand
    np.multiply(tmp2, tmp, out=di)
    np.multiply(cand, cand, out=tmp)
    np.subtract(1, tmp, out=tmp)
    np.multiply(tmp2, tmp, out=dcand)
    np.subtract(1, f, out=tmp)
    tmp *= f
    tmp *= c_prev
    np.multiply(dc, tmp, out=df)
    dc *= f


def _lstm_backward_through_time(g, saved, recurrent, mask, rmask, zero_output):
    """Gate gradients of every step (T, B, 4H; order i, f, o, c) and the initial states'."""
    gates, _, c_all, tanh_c = saved
    steps, units = gates.shape[1], gates.shape[3]
    dh = np.array(g[:, steps], copy=True)
    dc = np.array(g[:, steps + 1], copy=True)
    dg = xp.empty((steps, dh.shape[0], 4 * units), dh.dtype)
    # contiguous: measured ~25 % faster per-step products than the transposed view
    u_t = np.ascontiguousarray(_lstm_order(recurrent, units).T)
    tmp, tmp2 = xp.empty_like(dh), xp.empty_like(dh)
    fast = kernels.get("recurrent")
    # the kernel adds the output gradient itself unless masked steps need _output_grad's care
    out_grad = np.ascontiguousarray(g) if fast is not None and mask is None else None
    for t in range(steps - 1, -1, -1):
        if out_grad is None:
            _output_grad(dh, g, t, mask, zero_output)
        kept = _split_masked(dh, dc, mask, t)
        if fast is not None:  # the same operations in one pass
            fast.lstm_backward_step(dh, dc, dg[t], gates, t, c_all, tanh_c, out_grad)
        else:
            _lstm_step_back(dh, dc, dg[t], gates[:, t], c_all[t], tanh_c[t], tmp, tmp2)
        gemm(dg[t], u_t, out=dh)
        if rmask is not None:
            dh *= rmask
        if kept is not None:
            dh += kept[0]
            dc += kept[1]
    return dg, dh, dc


def lstm(
    inputs: Tensor,
    initial_h: Tensor | None,
    initial_c: Tensor | None,
    kernel: Tensor,
    recurrent_kernel: Tensor,
    bias: Tensor | None = None,
    *,
    mask=None,
    recurrent_mask=None,
    zero_output_for_mask: bool = False,
) -> tuple[Tensor, Tensor, Tensor]:
    """A whole LSTM sequence as one op (Keras' ``LSTM`` and PyTorch's ``nn.LSTM`` cell).

    Gates along the 4H axis in the order i, f, c (candidate g), o -- Keras' order, the same as
    PyTorch's i, f, g, o::

        i = sigmoid(x W_i + h U_i + b_i), f = sigmoid(...), g = tanh(...), o = sigmoid(...)
        c' = f * c + i * g,  h' = o * tanh(c')

    Args:
        inputs: (batch, time, features).
        initial_h, initial_c: (batch, units); None means zeros.
        kernel: (features, 4 * units); recurrent_kernel: (units, 4 * units).
        bias: (4 * units,) or None. (PyTorch's two biases add up to this one.)
        mask: optional (batch, time) booleans or 0/1, True at a real step. At a masked step the
            state is carried unchanged and the output is the carried h (zeros with
            ``zero_output_for_mask=True``). A constant: it gets no gradient.
        recurrent_mask: optional (batch, units) array multiplied onto h_{t-1} before the
            recurrent product at every step (recurrent dropout, already scaled). A constant.

    Returns:
        ``(outputs (batch, time, units), h_T (batch, units), c_T (batch, units))``. With a mask,
        h_T is the last carried state, not necessarily ``outputs[:, -1]``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> def normal(*shape):
        ...     return ember.tensor(rng.standard_normal(shape, dtype=np.float32) * 0.5,
        ...                         requires_grad=True)
        >>> x, h0, c0 = normal(2, 5, 3), normal(2, 4), normal(2, 4)
        >>> w, u, b = normal(3, 16), normal(4, 16), normal(16)
        >>> out, h, c = ember.ops.recurrent.lstm(x, h0, c0, w, u, b)
        >>> out.shape, h.shape, c.shape, out.dtype
        ((2, 5, 4), (2, 4), (2, 4), dtype('float32'))
        >>> bool(np.array_equal(out.data[:, -1], h.data))
        True
        >>> (out.sum() + c.sum()).backward()
        >>> w.grad.shape, x.grad.dtype
        ((3, 16), dtype('float32'))

        The second sample is padded at its end: its state stops at step 3.

        >>> mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=bool)
        >>> out, h, c = ember.ops.recurrent.lstm(x, h0, c0, w, u, b, mask=mask)
        >>> bool(np.array_equal(h.data[1], out.data[1, 2]))
        True
    """
    op = "lstm"
    named, x_tm, units, step_mask, rmask = _prepare(
        op,
        4,
        inputs,
        {"initial_h": initial_h, "initial_c": initial_c},
        kernel,
        recurrent_kernel,
        {"bias": bias},
        mask,
        recurrent_mask,
    )
    w, u = named["kernel"].data, named["recurrent_kernel"].data
    b = named["bias"].data if "bias" in named else None
    saved = _lstm_forward(
        x_tm, named["initial_h"].data, named["initial_c"].data, w, u, b, step_mask, rmask
    )
    names, parents = _parents(
        named, ("inputs", "initial_h", "initial_c", "kernel", "recurrent_kernel", "bias")
    )

    def backward(g):
        need = {n: p.requires_grad for n, p in zip(names, parents)}
        dg, dh0, dc0 = _lstm_backward_through_time(
            g, saved, u, step_mask, rmask, zero_output_for_mask
        )
        # dg's gates are in the internal order i, f, o, c: so is the kernel it meets, and the
        # weight gradients go back to Keras' order
        dx, dw = _input_grads(dg, x_tm, _lstm_order(w, units), need["inputs"], need["kernel"])
        dg2 = dg.reshape(-1, dg.shape[-1])
        grads = {"inputs": dx, "initial_h": dh0, "initial_c": dc0}
        grads["kernel"] = None if dw is None else _lstm_order(dw, units)
        if need["recurrent_kernel"]:
            du = gemm(_previous_states(saved[1], rmask).T, dg2)
            grads["recurrent_kernel"] = _lstm_order(du, units)
        if need.get("bias"):
            grads["bias"] = _lstm_order(dg2.sum(axis=0), units)
        return tuple(grads.get(n) for n in names)

    packed = _pack(saved[1], [saved[1][-1], saved[2][-1]], step_mask, zero_output_for_mask)
    return _unpack(packed, parents, backward, op, 2)


# ------------------------------------------------------------------------------ GRU
def _gru_forward(x_tm, h0, kernel, recurrent, input_bias, recurrent_bias, mask, rmask):
    """Run the GRU; returns the activated gates, gate-major (3, T, B, H) in the order z, r, n,
    h (T+1, B, H) and the recurrent part of the candidate, h U_h + rb_h (T, B, H)."""
    steps, batch = x_tm.shape[:2]
    units = recurrent.shape[0]
    sig = slice(0, 2 * units)  # z, r
    w = _halved(kernel, sig)
    gates = _project_gates(x_tm, w, None if input_bias is None else _halved(input_bias, sig), 3)
    u = _halved(recurrent, sig)
    rb = None if recurrent_bias is None else _halved(recurrent_bias, sig)
    h_all = _initial_buffer(h0, steps)
    rec_n = xp.empty((steps, batch, units), x_tm.dtype)
    rec = xp.empty((batch, 3 * units), x_tm.dtype)
    rec_by_gate = rec.reshape(batch, 3, units).transpose(1, 0, 2)
    tmp = xp.empty_like(h0)
    h_in = None if rmask is None else xp.empty_like(h0)
    for t in range(steps):
        _recurrent_product(h_all[t], u, rmask, h_in, rec)
        if rb is not None:
            rec += rb
        g = gates[:, t]
        zr = g[:2]
        zr += rec_by_gate[:2]
        _sigmoid_from_tanh(np.tanh(zr, out=zr))
        z, r, n = g
        np.copyto(rec_n[t], rec_by_gate[2])
        n += np.multiply(r, rec_n[t], out=tmp)
        np.tanh(n, out=n)
        # h' = z h + (1 - z) n = n + z (h - n)
        np.subtract(h_all[t], n, out=tmp)
        tmp *= z
        np.add(n, tmp, out=h_all[t + 1])
        _carry(h_all[t + 1], h_all[t], mask, t)
    return gates, h_all, rec_n


def _gru_step_back(dh, d, dn, g, h_prev, rec_n, tmp, tmp2) -> None:
    """One step back: the recurrent-side gate gradients into ``d`` (B, 3H: z, r, and r * dn for
    the candidate), the input-side candidate gradient into ``dn``; dh keeps its value. The
    factors are built in contiguous buffers; only the last product of each gate writes into
    its (strided) block of ``d``."""
    units = dh.shape[1]
    z, r, n = g
    dz, dr, dn_rec = (d[:, k * units : (k + 1) * units] for k in range(3))
    np.subtract(1, z, out=tmp2)
    # dn = dh (1 - z) (1 - n^2)
    np.multiply(n, n, out=tmp)
    np.subtract(1, tmp, out=tmp)
    tmp *= dh
    np.multiply(tmp, tmp2, out=dn)
    # dz = dh (h - n) z (1 - z)
    np.subtract(h_prev, n, out=tmp)
    tmp *= dh
    tmp *= z
    np.multiply(tmp, tmp2, out=dz)
    # dr = dn (h U_h + rb_h) r (1 - r)
    np.subtract(1, r, out=tmp)
    tmp *= r
    tmp *= rec_n
    np.multiply(dn, tmp, out=dr)
    np.multiply(dn, r, out=dn_rec)


def _gru_backward_through_time(g, saved, recurrent, mask, rmask, zero_output):
    """Recurrent-side gate gradients (T, B, 3H), the input-side candidate gradients (T, B, H)
    and the initial state's gradient."""
    gates, h_all, rec_n = saved
    steps, units = gates.shape[1], gates.shape[3]
    dh = np.array(g[:, steps], copy=True)
    dg = xp.empty((steps, dh.shape[0], 3 * units), dh.dtype)
    dn = xp.empty_like(rec_n)
    u_t = np.ascontiguousarray(recurrent.T)  # measured: ~25 % faster per-step products
    tmp, tmp2, direct = xp.empty_like(dh), xp.empty_like(dh), xp.empty_like(dh)
    for t in range(steps - 1, -1, -1):
        _output_grad(dh, g, t, mask, zero_output)
        kept = _split_masked(dh, None, mask, t)
        _gru_step_back(dh, dg[t], dn[t], gates[:, t], h_all[t], rec_n[t], tmp, tmp2)
        np.multiply(dh, gates[0, t], out=direct)  # h_{t-1} reaches h_t through z h
        gemm(dg[t], u_t, out=dh)
        if rmask is not None:
            dh *= rmask
        dh += direct
        if kept is not None:
            dh += kept[0]
    return dg, dn, dh


def gru(
    inputs: Tensor,
    initial_h: Tensor | None,
    kernel: Tensor,
    recurrent_kernel: Tensor,
    input_bias: Tensor | None = None,
    recurrent_bias: Tensor | None = None,
    *,
    mask=None,
    recurrent_mask=None,
    zero_output_for_mask: bool = False,
) -> tuple[Tensor, Tensor]:
    """A whole GRU sequence as one op: Keras' ``GRU(reset_after=True)``, i.e. ``nn.GRU``.

    Gates along the 3H axis in Keras' order z, r, h (PyTorch orders them r, z, n)::

        z = sigmoid(x W_z + b_z + h U_z + rb_z),  r = sigmoid(x W_r + b_r + h U_r + rb_r)
        n = tanh(x W_h + b_h + r * (h U_h + rb_h)),  h' = z * h + (1 - z) * n

    Args:
        inputs: (batch, time, features); initial_h: (batch, units) or None (zeros).
        kernel: (features, 3 * units); recurrent_kernel: (units, 3 * units).
        input_bias, recurrent_bias: (3 * units,) each, or None (PyTorch's b_ih and b_hh).
        mask, recurrent_mask, zero_output_for_mask: as for :func:`lstm` (the recurrent mask
            multiplies h_{t-1} in the recurrent product only, not in ``z * h``).

    Returns:
        ``(outputs (batch, time, units), h_T (batch, units))``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = ember.tensor(rng.standard_normal((2, 4, 3)), dtype="float32")
        >>> w = ember.tensor(rng.uniform(-1, 1, (3, 6)), requires_grad=True, dtype="float32")
        >>> u = ember.tensor(rng.uniform(-1, 1, (2, 6)), requires_grad=True, dtype="float32")
        >>> out, h = ember.ops.recurrent.gru(x, None, w, u, mask=[[1, 1, 1, 1], [0, 1, 1, 1]])
        >>> out.shape, h.shape
        ((2, 4, 2), (2, 2))
        >>> out.data[1, 0]  # padded at the start: the initial (zero) state is carried
        array([0., 0.], dtype=float32)
        >>> h.sum().backward()
        >>> u.grad.shape
        (2, 6)
    """
    op = "gru"
    named, x_tm, units, step_mask, rmask = _prepare(
        op,
        3,
        inputs,
        {"initial_h": initial_h},
        kernel,
        recurrent_kernel,
        {"input_bias": input_bias, "recurrent_bias": recurrent_bias},
        mask,
        recurrent_mask,
    )
    w, u = named["kernel"].data, named["recurrent_kernel"].data
    bi = named["input_bias"].data if "input_bias" in named else None
    br = named["recurrent_bias"].data if "recurrent_bias" in named else None
    saved = _gru_forward(x_tm, named["initial_h"].data, w, u, bi, br, step_mask, rmask)
    names, parents = _parents(
        named, ("inputs", "initial_h", "kernel", "recurrent_kernel", "input_bias", "recurrent_bias")
    )

    def backward(g):
        need = {n: p.requires_grad for n, p in zip(names, parents)}
        dg, dn, dh0 = _gru_backward_through_time(
            g, saved, u, step_mask, rmask, zero_output_for_mask
        )
        grads = {"initial_h": dh0}
        dg2 = dg.reshape(-1, dg.shape[-1])
        if need["recurrent_kernel"]:
            grads["recurrent_kernel"] = gemm(_previous_states(saved[1], rmask).T, dg2)
        if need.get("recurrent_bias"):
            grads["recurrent_bias"] = dg2.sum(axis=0)
        dg[..., 2 * units :] = dn  # the input side sees the candidate's gradient without r
        grads["inputs"], grads["kernel"] = _input_grads(dg, x_tm, w, need["inputs"], need["kernel"])
        if need.get("input_bias"):
            grads["input_bias"] = dg2.sum(axis=0)
        return tuple(grads.get(n) for n in names)

    packed = _pack(saved[1], [saved[1][-1]], step_mask, zero_output_for_mask)
    return _unpack(packed, parents, backward, op, 1)


# ------------------------------------------------------------------------------ simple RNN
_ACTIVATIONS = ("tanh", "relu")


def _rnn_forward(x_tm, h0, kernel, recurrent, bias, activation, mask, rmask):
    """Run the RNN; returns h (T+1, B, H), h[0] = h0 (the activations are the states)."""
    h_all = _initial_buffer(h0, len(x_tm))
    steps, batch, features = x_tm.shape
    # the projections go straight into the state buffer; each step activates its slice in place
    gemm(
        x_tm.reshape(steps * batch, features),
        kernel,
        out=h_all[1:].reshape(steps * batch, h0.shape[1]),
    )
    if bias is not None:
        h_all[1:] += bias
    rec = xp.empty(h0.shape, h0.dtype)
    h_in = None if rmask is None else xp.empty(h0.shape, h0.dtype)
    for t in range(steps):
        _recurrent_product(h_all[t], recurrent, rmask, h_in, rec)
        a = h_all[t + 1]
        a += rec
        if activation == "tanh":
            np.tanh(a, out=a)
        else:
            np.maximum(a, 0, out=a)
        _carry(a, h_all[t], mask, t)
    return h_all


def _rnn_backward_through_time(g, h_all, recurrent, activation, mask, rmask, zero_output):
    """Pre-activation gradients of every step (T, B, H) and the initial state's gradient."""
    steps = h_all.shape[0] - 1
    dh = np.array(g[:, steps], copy=True)
    dp = xp.empty((steps, *h_all.shape[1:]), h_all.dtype)
    u_t = np.ascontiguousarray(recurrent.T)  # measured: ~25 % faster per-step products
    for t in range(steps - 1, -1, -1):
        _output_grad(dh, g, t, mask, zero_output)
        kept = _split_masked(dh, None, mask, t)
        d, a = dp[t], h_all[t + 1]
        if activation == "tanh":
            np.multiply(a, a, out=d)
            np.subtract(1, d, out=d)
            d *= dh
        else:
            np.multiply(dh, a > 0, out=d)  # relu' from the output, as PyTorch's threshold
        gemm(d, u_t, out=dh)
        if rmask is not None:
            dh *= rmask
        if kept is not None:
            dh += kept[0]
    return dp, dh


def simple_rnn(
    inputs: Tensor,
    initial_h: Tensor | None,
    kernel: Tensor,
    recurrent_kernel: Tensor,
    bias: Tensor | None = None,
    *,
    activation: str = "tanh",
    mask=None,
    recurrent_mask=None,
    zero_output_for_mask: bool = False,
) -> tuple[Tensor, Tensor]:
    """A whole simple-RNN sequence as one op: ``h' = act(x W + h U + b)`` (``nn.RNN``).

    Args:
        inputs: (batch, time, features); initial_h: (batch, units) or None (zeros).
        kernel: (features, units); recurrent_kernel: (units, units); bias: (units,) or None.
        activation: ``"tanh"`` or ``"relu"`` (PyTorch's ``nonlinearity``).
        mask, recurrent_mask, zero_output_for_mask: as for :func:`lstm`.

    Returns:
        ``(outputs (batch, time, units), h_T (batch, units))``.

    Example:
        >>> x = ember.tensor(np.ones((1, 3, 2)), dtype="float32")
        >>> w, u = ember.tensor([[0.5], [0.5]]), ember.tensor([[-0.5]])
        >>> out, h = ember.ops.recurrent.simple_rnn(x, None, w, u, activation="relu")
        >>> out.data[0, :, 0], h.data
        (array([1.  , 0.5 , 0.75], dtype=float32), array([[0.75]], dtype=float32))
    """
    op = "simple_rnn"
    if activation not in _ACTIVATIONS:
        raise ValueError(f"{op}: activation must be 'tanh' or 'relu', got {activation!r}")
    named, x_tm, units, step_mask, rmask = _prepare(
        op,
        1,
        inputs,
        {"initial_h": initial_h},
        kernel,
        recurrent_kernel,
        {"bias": bias},
        mask,
        recurrent_mask,
    )
    w, u = named["kernel"].data, named["recurrent_kernel"].data
    b = named["bias"].data if "bias" in named else None
    h_all = _rnn_forward(x_tm, named["initial_h"].data, w, u, b, activation, step_mask, rmask)
    names, parents = _parents(named, ("inputs", "initial_h", "kernel", "recurrent_kernel", "bias"))

    def backward(g):
        need = {n: p.requires_grad for n, p in zip(names, parents)}
        dp, dh0 = _rnn_backward_through_time(
            g, h_all, u, activation, step_mask, rmask, zero_output_for_mask
        )
        dx, dw = _input_grads(dp, x_tm, w, need["inputs"], need["kernel"])
        dp2 = dp.reshape(-1, units)
        grads = {"inputs": dx, "initial_h": dh0, "kernel": dw}
        if need["recurrent_kernel"]:
            grads["recurrent_kernel"] = gemm(_previous_states(h_all, rmask).T, dp2)
        if need.get("bias"):
            grads["bias"] = dp2.sum(axis=0)
        return tuple(grads.get(n) for n in names)

    packed = _pack(h_all, [h_all[-1]], step_mask, zero_output_for_mask)
    return _unpack(packed, parents, backward, op, 1)
