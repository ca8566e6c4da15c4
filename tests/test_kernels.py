"""The fast kernels (``ember.kernels``, numba) against their NumPy references in ``ember.ops``:
forward values and gradients must be identical (a max and a routed gradient are exact), on odd
shapes (rows and columns past the last window), ties, NaN, float64 and non-contiguous inputs.
Also the selection itself: ``EMBER_KERNELS`` / ``ember.backend.use_kernels``."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from _helpers import conv_under_both_kernels

import ember
from ember import kernels, ops

pytestmark = pytest.mark.skipif(not kernels.available(), reason="numba is not installed")


def _pool_both(x: np.ndarray, pool, g_seed: int = 1):
    """(output, input gradient) of max_pool2d under the kernels and under NumPy."""
    results = []
    for choice in ("numba", "numpy"):
        with kernels.use(choice):
            t = ember.Tensor(x, requires_grad=True)
            y = ops.max_pool2d(t, pool)
            g = np.random.default_rng(g_seed).standard_normal(y.shape).astype(x.dtype)
            y.backward(g)
            results.append((y.numpy(), t.grad))
    return results


@pytest.mark.parametrize(
    "shape, pool",
    [
        ((2, 4, 4, 3), 2),
        ((3, 7, 9, 5), 2),  # a row and a column past the last window
        ((2, 9, 8, 4), 3),
        ((1, 6, 7, 2), (2, 3)),
        ((4, 5, 5, 1), 1),
        ((2, 26, 26, 32), 2),  # the Keras convnet's first pool
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_kernel_equals_the_numpy_reference(shape, pool, dtype):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    (y_fast, g_fast), (y_ref, g_ref) = _pool_both(x, pool)
    assert y_fast.dtype == g_fast.dtype == dtype
    np.testing.assert_array_equal(y_fast, y_ref)
    np.testing.assert_array_equal(g_fast, g_ref)


def test_max_pool_kernel_ties_go_to_the_first_tap_as_in_the_reference():
    """After a ReLU whole windows are 0: the gradient goes to the window's first element."""
    x = np.maximum(np.random.default_rng(2).standard_normal((3, 6, 6, 4)), 0).astype(np.float32)
    x[:, :2, :2, :] = 0.0
    x[0, 2:4, 2:4, 0] = 1.5  # a tie at the maximum, not at zero
    (y_fast, g_fast), (y_ref, g_ref) = _pool_both(x, 2)
    np.testing.assert_array_equal(y_fast, y_ref)
    np.testing.assert_array_equal(g_fast, g_ref)
    assert np.count_nonzero(g_fast[:, :2, :2, :]) == np.count_nonzero(g_ref[:, :2, :2, :])


def test_max_pool_kernel_propagates_nan_like_np_maximum():
    x = np.zeros((1, 4, 4, 2), np.float32)
    x[0, 1, 0, 0] = np.nan
    x[0, 2, 3, 1] = np.nan
    x[0, 3, 3, 1] = 5.0  # a larger value after the NaN does not hide it
    with kernels.use("numba"):
        fast = ops.max_pool2d(x).numpy()
    with kernels.use("numpy"):
        ref = ops.max_pool2d(x).numpy()
    np.testing.assert_array_equal(np.isnan(fast), np.isnan(ref))
    np.testing.assert_array_equal(np.nan_to_num(fast), np.nan_to_num(ref))


def test_max_pool_kernel_takes_non_contiguous_input():
    base = np.random.default_rng(3).standard_normal((4, 8, 6, 2)).astype(np.float32)
    x = base.transpose(0, 2, 1, 3)  # (4, 6, 8, 2), a strided view
    (y_fast, g_fast), (y_ref, g_ref) = _pool_both(x, 2)
    np.testing.assert_array_equal(y_fast, y_ref)
    np.testing.assert_array_equal(g_fast, g_ref)


def test_padded_or_overlapping_pools_keep_the_numpy_path():
    """Only non-overlapping, unpadded windows have a kernel; the others give the same result
    under either selection."""
    x = np.random.default_rng(4).standard_normal((2, 5, 5, 3)).astype(np.float32)
    for kwargs in ({"strides": 1}, {"padding": "same"}):
        with kernels.use("numba"):
            fast = ops.max_pool2d(x, 2, **kwargs).numpy()
        with kernels.use("numpy"):
            ref = ops.max_pool2d(x, 2, **kwargs).numpy()
        np.testing.assert_array_equal(fast, ref)


def test_selection_context_and_environment():
    assert kernels.selection() in ("auto", "numba", "numpy")
    with kernels.use("numpy"):
        assert not kernels.active() and kernels.get("pooling") is None
    with kernels.use("numba"):
        assert kernels.active() and kernels.get("pooling") is not None
    with pytest.raises(ValueError, match="choice must be one of auto, numba, numpy, got 'gpu'"):
        with kernels.use("gpu"):
            pass
    env = {**os.environ, "EMBER_KERNELS": "numpy"}
    code = "import ember; print(ember.kernels.selection(), ember.kernels.active())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["numpy", "False"], out.stderr
    env["EMBER_KERNELS"] = "fast"
    out = subprocess.run([sys.executable, "-c", "import ember"], env=env, capture_output=True,
                         text=True)  # fmt: skip
    assert "EMBER_KERNELS must be one of auto, numba, numpy, got 'fast'" in out.stderr


@pytest.mark.parametrize(
    "geometry",
    [
        {},
        {"padding": "same"},
        {"strides": 2, "padding": "same"},
        {"strides": (2, 1), "dilation": 1},
        {"dilation": 2, "padding": "same"},
    ],
    ids=["valid", "same", "stride2", "stride21", "dilation2"],
)
@pytest.mark.parametrize("relu, with_bias", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_kernels_equal_the_numpy_reference(geometry, relu, with_bias, dtype):
    """Bias + ReLU and the fused ReLU backward with the bias gradient: the forward and the
    kernel gradient are bit-identical (same GEMMs on the same operands); the input gradient
    (another GEMM, then col2im) and the bias gradient are summed in another order (within float
    rounding)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 9, 8, 4)).astype(dtype)
    k = rng.standard_normal((3, 3, 4, 5)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype) if with_bias else None
    fast, ref = conv_under_both_kernels(x, k, b, relu, **geometry)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for name, a, r in zip(("output", "dx", "dkernel"), fast[:3], ref[:3]):
        assert a.dtype == dtype, name
        if name == "dx":
            np.testing.assert_allclose(a, r, rtol=tol, atol=tol, err_msg=name)
        else:
            np.testing.assert_array_equal(a, r, err_msg=name)
    if with_bias:
        np.testing.assert_allclose(fast[3], ref[3], rtol=tol, atol=tol)
    if relu:  # the ReLU was applied (and some outputs are exactly 0)
        assert (fast[0] == 0).any() and (fast[0] >= 0).all()


def test_bias_relu_kernel_keeps_nan_like_np_maximum():
    from ember.kernels import conv

    out = np.array([[np.nan, -1.0, 2.0]], np.float32)
    conv.add_bias_relu(out, np.zeros(3, np.float32), relu=True)
    assert np.isnan(out[0, 0]) and out[0, 1:].tolist() == [0.0, 2.0]


@pytest.mark.parametrize(
    "image, kernel_hw, strides, dilation",
    [
        ((2, 7, 6, 3), (3, 3), (1, 1), (1, 1)),
        ((3, 9, 8, 5), (3, 2), (2, 1), (1, 1)),
        ((1, 11, 10, 2), (3, 3), (2, 3), (2, 1)),
        ((2, 13, 13, 32), (3, 3), (1, 1), (1, 1)),  # the Keras convnet's second convolution
        ((2, 5, 5, 4), (1, 1), (2, 2), (1, 1)),  # pixels no window reads get 0
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_col2im_kernel_equals_the_reference_bit_for_bit(image, kernel_hw, strides, dilation, dtype):
    """The kernel gathers per pixel and adds the taps in the reference's order: same sums."""
    from ember.kernels import conv as fast
    from ember.ops import conv as ref

    out_hw = tuple(
        ref.conv_output_size(n, k, s, d, (0, 0))
        for n, k, s, d in zip(image[1:3], kernel_hw, strides, dilation)
    )
    rng = np.random.default_rng(11)
    cols = rng.standard_normal((image[0], *out_hw, *kernel_hw, image[3])).astype(dtype)
    with kernels.use("numpy"):
        expected = ref._col2im(cols, image, kernel_hw, strides, dilation, out_hw)
    got = fast.col2im(cols[::1], image, strides, dilation)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, expected)


def _conv_relu_pool(x, k, b, choice, extra_consumer=False, intermediate=False):
    """max_pool2d(conv2d(x, k, bias=b, relu=True)) summed against a fixed weight: the gradients of
    x, k and b (and of the conv's output when ``intermediate``) under one kernel selection."""
    with kernels.use(choice):
        tx, tk, tb = (ember.Tensor(a, requires_grad=True) for a in (x, k, b))
        y = ops.conv2d(tx, tk, bias=tb, relu=True)
        p = ops.max_pool2d(y, 2)
        w = np.random.default_rng(3).standard_normal(p.shape).astype(x.dtype)
        loss = (p * w).sum()
        if extra_consumer:  # a second path from the ReLU's output: its gradient is added
            loss = loss + (y * y).sum() * 0.5
        if intermediate:
            return (*ember.grad(loss, [y, tk, tb]), y.numpy())
        loss.backward()
        return tx.grad, tk.grad, tb.grad


@pytest.mark.parametrize("extra_consumer", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_after_a_relu_conv_passes_the_gradient_before_the_relu(
    extra_consumer, dtype, monkeypatch
):
    """conv2d(relu) → max_pool2d: the pool's backward applies the ReLU's mask and sums the bias
    gradient, and the convolution skips its own mask pass (unless the ReLU's output also feeds
    another op). The gradients equal the NumPy reference (no fusion) either way."""
    from ember.kernels import conv as conv_kernels

    masks = []
    original = conv_kernels.relu_backward_bias
    monkeypatch.setattr(
        conv_kernels, "relu_backward_bias", lambda *a: masks.append(1) or original(*a)
    )
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 11, 10, 3)).astype(dtype)  # a row and a column past the windows
    k = rng.standard_normal((3, 3, 3, 6)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    fast = _conv_relu_pool(x, k, b, "numba", extra_consumer)
    assert len(masks) == (1 if extra_consumer else 0)
    ref = _conv_relu_pool(x, k, b, "numpy", extra_consumer)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for name, a, r in zip(("dx", "dkernel", "dbias"), fast, ref):
        assert a.dtype == dtype, name
        np.testing.assert_allclose(a, r, rtol=tol, atol=tol, err_msg=name)


def test_the_relu_outputs_own_gradient_is_exact_when_asked_for():
    """ember.grad on the ReLU's output (an intermediate) gets d loss / d relu-output, not the
    pre-ReLU gradient the fused pool hands the convolution: zero-maximum windows keep theirs."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 8, 8, 1))
    k = rng.standard_normal((3, 3, 1, 4))
    b = rng.standard_normal(4) - 2.0  # many all-negative windows: maxima of exactly 0
    fast = _conv_relu_pool(x, k, b, "numba", intermediate=True)
    ref = _conv_relu_pool(x, k, b, "numpy", intermediate=True)
    for a, r in zip(fast[:3], ref[:3]):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-12)
    relu_output, relu_output_grad = fast[3], fast[0]
    # the windows whose maximum is 0 route their gradient to the ReLU's output all the same
    assert np.count_nonzero((relu_output == 0) & (relu_output_grad != 0)) > 10


def _adam_run(choice, dtype, amsgrad=False, weight_decay=None, transposed_grad=False):
    """Five Adam(W) steps on two weights under one kernel selection: the weights and moments."""
    rng = np.random.default_rng(12)
    with kernels.use(choice):
        w = ember.Tensor(rng.standard_normal((7, 5)).astype(dtype), requires_grad=True)
        b = ember.Tensor(rng.standard_normal(5).astype(dtype), requires_grad=True)
        options = {"amsgrad": amsgrad}
        if weight_decay is not None:
            options["weight_decay"] = weight_decay
        opt = ember.optimizers.Adam([w, b], learning_rate=0.05, epsilon=1e-8, **options)
        for _ in range(5):
            g_w = rng.standard_normal((5, 7)).astype(dtype)
            g_w = g_w.T if transposed_grad else np.ascontiguousarray(g_w.T)  # a strided view
            opt.apply([g_w, rng.standard_normal(5).astype(dtype)], [w, b])
        return [w.numpy(), b.numpy(), *(s[k] for s in opt.state for k in ("m", "v"))]


@pytest.mark.parametrize(
    "options",
    [{}, {"weight_decay": 0.1}, {"transposed_grad": True}, {"amsgrad": True}],
    ids=["adam", "adamw", "strided-grad", "amsgrad-numpy-path"],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threaded", [False, True], ids=["one-thread", "threaded"])
def test_fused_adam_is_bit_identical_to_the_numpy_update(options, dtype, threaded, monkeypatch):
    """Also shared among the threads (blocks of the parameter; large weights only by default)."""
    from ember.kernels import optimizers as fused

    if threaded:
        monkeypatch.setattr(fused, "PARALLEL_MIN_SIZE", 0)
    fast = _adam_run("numba", dtype, **options)
    ref = _adam_run("numpy", dtype, **options)
    for a, r in zip(fast, ref):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, r)


def test_fused_adam_runs_only_where_it_applies(monkeypatch):
    """The kernel takes plain Adam on contiguous weights; amsgrad keeps the NumPy update."""
    from ember.kernels import optimizers as fused

    calls = []
    original = fused.adam
    monkeypatch.setattr(fused, "adam", lambda *a: calls.append(1) or original(*a))
    _adam_run("numba", np.float32)
    assert len(calls) == 10  # 2 weights × 5 steps
    calls.clear()
    _adam_run("numba", np.float32, amsgrad=True)
    assert calls == []


def _lstm_run(choice, dtype, masked=False):
    """Outputs and every gradient of ember.ops.lstm under one kernel selection."""
    rng = np.random.default_rng(13)
    with kernels.use(choice):
        arrays = [rng.standard_normal(shape).astype(dtype) for shape in
                  [(3, 7, 5), (3, 4), (3, 4), (5, 16), (4, 16), (16,)]]  # fmt: skip
        x, h0, c0, k, u, b = (ember.Tensor(a, requires_grad=True) for a in arrays)
        mask = None
        if masked:
            mask = np.ones((3, 7), bool)
            mask[0, 4:] = False  # padded steps carry the state
        outputs = ops.lstm(x, h0, c0, k, u, b, mask=mask)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        sum((y * y).sum() for y in outputs).backward()
        return [y.numpy() for y in outputs] + [t.grad for t in (x, h0, c0, k, u, b)]


@pytest.fixture(params=[False, True], ids=["one-thread", "threaded"])
def lstm_rows_threaded(request, monkeypatch):
    """The LSTM step kernels on one thread, or with the batch's rows shared among the threads
    (large steps only by default)."""
    from ember.kernels import recurrent as fused

    if request.param:
        monkeypatch.setattr(fused, "PARALLEL_MIN_VALUES", 0)
    return request.param


@pytest.mark.parametrize("masked", [False, True])
def test_lstm_kernels_in_float64_are_bit_identical_to_the_numpy_steps(masked, lstm_rows_threaded):
    """float64 (gradcheck's dtype) keeps NumPy's forward and the fused step back, which does the
    reference's float operations in its order: outputs and gradients identical, not merely close."""
    fast, ref = _lstm_run("numba", np.float64, masked), _lstm_run("numpy", np.float64, masked)
    assert len(fast) == len(ref)
    for a, r in zip(fast, ref):
        assert a.dtype == np.float64
        np.testing.assert_array_equal(a, r)


@pytest.mark.parametrize("masked", [False, True])
def test_lstm_kernels_in_float32_match_the_numpy_steps(masked, monkeypatch, lstm_rows_threaded):
    """float32 runs the fused forward step (its own tanh, within ~5 ulp of the true one) and
    the fused step back: outputs and gradients agree with the reference to float32 rounding."""
    from ember.kernels import recurrent as fused

    calls = []
    original = fused.lstm_forward_step
    monkeypatch.setattr(fused, "lstm_forward_step", lambda *a: calls.append(1) or original(*a))
    fast = _lstm_run("numba", np.float32, masked)
    assert len(calls) == 7  # one per step
    ref = _lstm_run("numpy", np.float32, masked)
    for a, r in zip(fast, ref):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, r, rtol=2e-5, atol=2e-5 * np.abs(r).max())


def test_lstm_backward_step_is_bit_identical_to_the_numpy_step(lstm_rows_threaded):
    """One step back from the same saved state: the kernel (output gradient added inside) and
    ``_output_grad`` + ``_lstm_step_back`` give identical gate and cell-state gradients."""
    from ember.kernels import recurrent as fused
    from ember.ops import recurrent as ref

    rng = np.random.default_rng(3)
    batch, steps, units = 5, 4, 37  # an odd width: the vector loops' remainders
    gates = np.tanh(rng.standard_normal((4, steps, batch, units), dtype=np.float32))
    c_all = rng.standard_normal((steps + 1, batch, units), dtype=np.float32)
    tanh_c = np.tanh(c_all[1:])
    out_grad = rng.standard_normal((batch, steps + 2, units), dtype=np.float32)
    dh0 = rng.standard_normal((batch, units), dtype=np.float32)
    dc0 = rng.standard_normal((batch, units), dtype=np.float32)
    t = 2
    dh, dc, d = dh0.copy(), dc0.copy(), np.zeros((batch, 4 * units), np.float32)
    fused.lstm_backward_step(dh, dc, d, gates, t, c_all, tanh_c, out_grad)
    dh_r, dc_r, d_r = dh0.copy(), dc0.copy(), np.zeros((batch, 4 * units), np.float32)
    ref._output_grad(dh_r, out_grad, t, None, False)
    scratch = [np.empty_like(dh0) for _ in range(2)]
    ref._lstm_step_back(dh_r, dc_r, d_r, gates[:, t], c_all[t], tanh_c[t], *scratch)
    np.testing.assert_array_equal(d, d_r)
    np.testing.assert_array_equal(dc, dc_r)
    np.testing.assert_array_equal(dh, dh_r)


def test_kernel_tanh_is_within_a_few_ulp_of_the_true_tanh():
    """The float32 tanh the LSTM step inlines, on 2 million points from 1e-12 to 12 and
    their negatives, against float64 tanh rounded: at most 6 ulp (NumPy's float32: ~1.4);
    odd, exactly 0 at 0, ±1 beyond the clamp and at ±inf, NaN stays NaN."""
    from ember.kernels.recurrent import tanh_f32

    x = np.concatenate([np.linspace(0, 12, 1_000_001), np.logspace(-12, 1, 200_001)])
    x = np.concatenate([x, -x]).astype(np.float32)
    exact = np.tanh(x.astype(np.float64))
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    error_ulp = np.abs(tanh_f32(x) - exact) / ulp
    assert error_ulp.max() <= 6.0, error_ulp.max()
    np.testing.assert_array_equal(tanh_f32(-x), -tanh_f32(x))
    special = tanh_f32(np.array([0.0, 9.5, -50.0, np.inf, -np.inf, np.nan], np.float32))
    np.testing.assert_array_equal(special[:5], [0.0, 1.0, -1.0, 1.0, -1.0])
    assert np.isnan(special[5])


def test_parameters_are_stored_row_major():
    """A column-major initial value (e.g. Orthogonal's transposed QR factor) is stored C-order,
    so that the fused optimizer update takes every weight."""
    w = ember.Parameter(np.asfortranarray(np.ones((4, 3), np.float32)))
    assert w.data.flags.c_contiguous
    layer = ember.layers.LSTM(8)
    layer.build((None, 5, 3))
    assert all(p.data.flags.c_contiguous for p in layer.weights)


def _layer_norm_run(choice, x, with_gamma, with_beta, x_needs_grad=True):
    from ember.ops.normalization import normalize

    rng = np.random.default_rng(14)
    features = x.shape[-1]
    with kernels.use(choice):
        tx = ember.Tensor(x, requires_grad=x_needs_grad)
        gamma = ember.Tensor(rng.standard_normal(features).astype(x.dtype), requires_grad=True)
        beta = ember.Tensor(rng.standard_normal(features).astype(x.dtype), requires_grad=True)
        out, mean, var = normalize(
            tx, (x.ndim - 1,), gamma if with_gamma else None, beta if with_beta else None,
            1e-5, (1,) * (x.ndim - 1) + (features,),
        )  # fmt: skip
        weights = rng.standard_normal(out.shape).astype(x.dtype)
        (out * weights).sum().backward()
        grads = [tx.grad, gamma.grad if with_gamma else None, beta.grad if with_beta else None]
        return [out.numpy(), mean, var, *grads]


@pytest.mark.parametrize("shape", [(4, 5, 16), (7, 3), (1, 33)])
@pytest.mark.parametrize("with_gamma, with_beta", [(True, True), (False, True), (True, False)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_norm_kernel_matches_the_numpy_reference(shape, with_gamma, with_beta, dtype):
    """Output, statistics and every gradient within float rounding (sums in another order)."""
    x = (np.random.default_rng(15).standard_normal(shape) * 3 + 1).astype(dtype)
    fast = _layer_norm_run("numba", x, with_gamma, with_beta)
    ref = _layer_norm_run("numpy", x, with_gamma, with_beta)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    for a, r in zip(fast, ref):
        if r is None:
            assert a is None
            continue
        assert a.dtype == dtype and a.shape == r.shape
        np.testing.assert_allclose(a, r, rtol=tol, atol=tol)


def test_layer_norm_kernel_takes_strided_input_and_frozen_input():
    base = np.random.default_rng(16).standard_normal((6, 10, 8)).astype(np.float32)
    x = base.transpose(1, 0, 2)  # a strided view
    fast = _layer_norm_run("numba", x, True, True, x_needs_grad=False)
    ref = _layer_norm_run("numpy", x, True, True, x_needs_grad=False)
    assert fast[3] is None and ref[3] is None
    for a, r in zip(fast[:3] + fast[4:], ref[:3] + ref[4:]):
        np.testing.assert_allclose(a, r, rtol=2e-5, atol=2e-5)


def _attention_run(choice, dtype, shape=(2, 3, 6, 4), with_weights=False, **kwargs):
    """Output, weights (when asked) and the q, k, v gradients of scaled_dot_product_attention
    under one kernel selection."""
    rng = np.random.default_rng(17)
    with kernels.use(choice):
        q, k, v = (ember.Tensor(rng.standard_normal(shape).astype(dtype) * 2,
                                requires_grad=True) for _ in range(3))  # fmt: skip
        out = ops.scaled_dot_product_attention(q, k, v, return_weights=with_weights, **kwargs)
        out, weights = out if with_weights else (out, None)
        loss = (out * out).sum()
        if weights is not None:
            loss = loss + (weights * weights).sum()
        loss.backward()
        values = [out.numpy()] + ([] if weights is None else [weights.numpy()])
        return values + [t.grad for t in (q, k, v)]


_KEEP = np.random.default_rng(5).random((6, 6)) > 0.4
_KEEP[2] = False  # a query that may attend to nothing: zeros, never NaN


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"is_causal": True}, {"mask": _KEEP}, {"mask": _KEEP[None, None]},
     {"mask": _KEEP, "is_causal": True, "with_weights": True}, {"scale": 0.3}],
    ids=["plain", "causal", "mask_2d", "mask_4d_ones", "mask_causal_weights", "scale"],
)  # fmt: skip
def test_attention_softmax_kernels_match_the_numpy_reference(dtype, kwargs, monkeypatch):
    """The fused column softmax does the reference's operations in its order (bit-identical
    probabilities); its gradient sums in another order (float rounding). A fully masked query
    gives a zero row and finite gradients under both."""
    from ember.kernels import attention as fused

    monkeypatch.setattr(fused, "MIN_SCORES", 0)  # small shapes take them too
    calls = []
    original = fused.softmax_key_major
    monkeypatch.setattr(fused, "softmax_key_major", lambda *a: calls.append(1) or original(*a))
    fast = _attention_run("numba", dtype, **kwargs)
    assert calls == [1]
    ref = _attention_run("numpy", dtype, **kwargs)
    np.testing.assert_array_equal(fast[0], ref[0])  # the output: bit-identical weights
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for a, r in zip(fast, ref):
        assert np.isfinite(a).all()
        np.testing.assert_allclose(a, r, rtol=tol, atol=tol * np.abs(r).max())
    if "mask" in kwargs:
        np.testing.assert_array_equal(fast[0][:, :, 2], 0.0)


def test_attention_kernels_leave_additive_and_per_sample_masks_to_numpy(monkeypatch):
    """A float (additive) mask, or a boolean mask that differs between samples, takes the
    NumPy path; the results are the reference's."""
    from ember.kernels import attention as fused

    monkeypatch.setattr(fused, "MIN_SCORES", 0)
    monkeypatch.setattr(fused, "softmax_key_major", lambda *a: pytest.fail("kernel used"))
    per_sample = np.random.default_rng(2).random((2, 1, 6, 6)) > 0.3
    additive = np.random.default_rng(3).standard_normal((6, 6))
    for mask in (per_sample, additive):
        fast = _attention_run("numba", np.float64, mask=mask)
        ref = _attention_run("numpy", np.float64, mask=mask)
        for a, r in zip(fast, ref):
            np.testing.assert_array_equal(a, r)


def test_attention_softmax_kernel_propagates_nan_like_numpy():
    """A NaN score makes its whole column NaN, as the reference's maximum and sum do."""
    from ember.kernels import attention as fused
    from ember.ops import attention as reference

    scores = np.random.default_rng(4).standard_normal((2, 5, 4)).astype(np.float32)
    scores[1, 3, 2] = np.nan
    blocked = np.zeros((5, 4), bool)
    blocked[:, 1] = True  # and one column with nothing to attend to
    ref = reference._softmax_inplace(scores * np.float32(0.5), blocked, -2)
    fast = scores.copy()
    fused.softmax_key_major(fast, 0.5, blocked)
    np.testing.assert_array_equal(fast, ref)
    assert np.isnan(fast[1, :, 2]).all() and (fast[:, :, 1] == 0).all()
