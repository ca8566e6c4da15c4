"""Winograd F(2×2, 3×3) (``ember.kernels.winograd``) for conv2d's 3×3, stride-1 convolutions.

Against the NumPy reference (``EMBER_KERNELS=numpy``: im2col, the teaching path) on odd and even
output sizes, every padding form, with and without bias and ReLU, the ReLU + max-pool fusion,
float32 (within 1e-5 of the values' magnitude) and float64 (1e-12); finite differences and
PyTorch for the gradients; the transforms against their matrices; the eligibility rule. Most
tests lower the rule's channel minimum so that small, fast shapes take the Winograd path, and
count the calls to make sure they did.
"""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import conv_under_both_kernels

import ember
from ember import kernels, ops
from ember.ops import conv as conv_ops

pytestmark = pytest.mark.skipif(not kernels.available(), reason="numba is not installed")


@pytest.fixture
def winograd(monkeypatch):
    """The Winograd module, taken from 1 input channel on, its ``forward`` calls counted."""
    from ember.kernels import winograd as module

    monkeypatch.setattr(conv_ops, "_WINOGRAD_MIN_INPUT_CHANNELS", 1)
    monkeypatch.setattr(conv_ops, "_WINOGRAD_MIN_FILTERS", 1)
    calls = []
    original = module.forward
    monkeypatch.setattr(module, "forward", lambda *a: calls.append(1) or original(*a))
    module.calls = calls
    yield module
    del module.calls


def _assert_close(got, expected, dtype, name):
    """Within 1e-5 (float32) or 1e-12 (float64) of the magnitude of the expected values."""
    assert got.dtype == dtype, name
    assert got.shape == expected.shape, name
    tol = (1e-5 if dtype == np.float32 else 1e-12) * max(1.0, float(np.abs(expected).max()))
    error = float(np.abs(got.astype(np.float64) - expected).max())
    assert error <= tol, f"{name}: max error {error:.3g} > {tol:.3g}"


GEOMETRIES = [
    ((2, 9, 8, 5), "valid"),  # output 7 × 6: an odd row of tiles, an even row
    ((2, 8, 9, 5), "valid"),  # 6 × 7
    ((3, 6, 6, 4), "valid"),  # 4 × 4: whole tiles only
    ((2, 7, 6, 3), "same"),  # 7 × 6
    ((1, 5, 5, 2), "same"),  # 5 × 5, more padding than image at the borders' tiles
    ((2, 6, 7, 4), ((2, 0), (1, 3))),  # explicit, uneven: 6 × 9
    ((2, 5, 4, 3), ((0, 1), (3, 0))),  # 4 × 5
    ((1, 3, 3, 2), "valid"),  # a single output pixel: one tile, 3 of its 4 outputs cropped
]


@pytest.mark.parametrize("shape, padding", GEOMETRIES)
@pytest.mark.parametrize("relu, with_bias", [(True, True), (False, False), (False, True)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_winograd_conv2d_equals_the_numpy_reference(shape, padding, relu, with_bias, dtype,
                                                     winograd):  # fmt: skip
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape).astype(dtype)
    k = rng.standard_normal((3, 3, shape[3], 6)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype) if with_bias else None
    fast, ref = conv_under_both_kernels(x, k, b, relu, padding=padding)
    assert len(winograd.calls) == 1
    for name, got, expected in zip(("output", "dx", "dkernel"), fast[:3], ref[:3]):
        _assert_close(got, expected, dtype, name)
    if with_bias:
        _assert_close(fast[3], ref[3], dtype, "dbias")
    if relu:  # the ReLU was applied, and some outputs are exactly 0
        assert (fast[0] == 0).any() and (fast[0] >= 0).all()


def test_winograd_runs_by_default_from_64_input_channels(monkeypatch):
    """The rule as shipped (no patching): C_in = 64 takes Winograd and matches the reference."""
    from ember.kernels import winograd as module

    calls = []
    original = module.forward
    monkeypatch.setattr(module, "forward", lambda *a: calls.append(1) or original(*a))
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 6, 7, 64)).astype(np.float32)
    k = (rng.standard_normal((3, 3, 64, 8)) * 0.1).astype(np.float32)
    fast, ref = conv_under_both_kernels(x, k, np.ones(8, np.float32), True, padding="same")
    assert len(calls) == 1
    for name, got, expected in zip(("output", "dx", "dkernel", "dbias"), fast, ref):
        _assert_close(got, expected, np.float32, name)


def _conv_relu_pool(x, k, b, choice, extra_consumer=False):
    """max_pool2d(conv2d(x, k, bias=b, relu=True)) against fixed weights: dx, dk, db."""
    with kernels.use(choice):
        tx, tk, tb = (ember.Tensor(a, requires_grad=True) for a in (x, k, b))
        y = ops.conv2d(tx, tk, bias=tb, relu=True)
        p = ops.max_pool2d(y, 2)
        loss = (p * np.random.default_rng(3).standard_normal(p.shape).astype(x.dtype)).sum()
        if extra_consumer:  # a second path from the ReLU's output: the fusion must step aside
            loss = loss + (y * y).sum() * 0.5
        loss.backward()
        return tx.grad, tk.grad, tb.grad


@pytest.mark.parametrize("extra_consumer", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_max_pool_fusion_through_winograd(extra_consumer, dtype, winograd, monkeypatch):
    """conv2d(relu) → max_pool2d: the pool hands the convolution the gradient before the ReLU
    and the bias gradient (no mask pass in the convolution), unless the ReLU's output feeds
    another op too; either way the gradients equal the NumPy reference's."""
    from ember.kernels import conv as conv_kernels

    masks = []
    original = conv_kernels.relu_backward_bias
    monkeypatch.setattr(
        conv_kernels, "relu_backward_bias", lambda *a: masks.append(1) or original(*a)
    )
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 11, 10, 4)).astype(dtype)  # output 9 × 8: a row past the pool
    k = rng.standard_normal((3, 3, 4, 6)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    fast = _conv_relu_pool(x, k, b, "numba", extra_consumer)
    assert len(winograd.calls) == 1
    assert len(masks) == (1 if extra_consumer else 0)
    ref = _conv_relu_pool(x, k, b, "numpy", extra_consumer)
    for name, got, expected in zip(("dx", "dkernel", "dbias"), fast, ref):
        _assert_close(got, expected, dtype, name)


@pytest.mark.parametrize("padding", ["valid", "same", ((2, 1), (0, 2))])
@pytest.mark.parametrize("relu", [False, True])
def test_winograd_gradcheck(padding, relu, winograd):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 6, 3))
    k = rng.standard_normal((3, 3, 3, 2))
    b = rng.standard_normal(2)
    with kernels.use("numba"):
        result = ember.gradcheck(
            lambda a, w, c: ops.conv2d(a, w, padding=padding, bias=c, relu=relu), x, k, b
        )
    assert result.ok and result.checked_elements > 0
    assert winograd.calls  # the gradients checked were Winograd's


@pytest.mark.parametrize(
    "kernel_hw, geometry, kernel_dtype",
    [
        ((5, 5), {}, np.float32),
        ((3, 3), {"strides": 2}, np.float32),
        ((3, 3), {"strides": (1, 2)}, np.float32),
        ((3, 3), {"dilation": 2}, np.float32),
        ((3, 2), {}, np.float32),
        ((3, 3), {}, np.float64),  # a float64 kernel on a float32 input
    ],
)
def test_only_3x3_stride_1_convolutions_take_winograd(kernel_hw, geometry, kernel_dtype,
                                                       winograd):  # fmt: skip
    rng = np.random.default_rng(2)
    x = ember.Tensor(rng.standard_normal((2, 9, 9, 4)).astype(np.float32))
    k = ember.Tensor(rng.standard_normal((*kernel_hw, 4, 5)).astype(kernel_dtype))
    with kernels.use("numba"):
        ops.conv2d(x, k, **geometry)
    assert winograd.calls == []
    with kernels.use("numba"):  # the same input with a float32 3×3 kernel: taken
        ops.conv2d(x, rng.standard_normal((3, 3, 4, 5)).astype(np.float32))
    assert len(winograd.calls) == 1


def test_channel_minimums_and_the_numpy_selection_keep_im2col(winograd, monkeypatch):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 6, 6, 8)).astype(np.float32)
    k = rng.standard_normal((3, 3, 8, 8)).astype(np.float32)
    with kernels.use("numpy"):  # the reference never takes it
        ops.conv2d(x, k)
    monkeypatch.setattr(conv_ops, "_WINOGRAD_MIN_INPUT_CHANNELS", 9)
    with kernels.use("numba"):
        ops.conv2d(x, k)
    monkeypatch.setattr(conv_ops, "_WINOGRAD_MIN_INPUT_CHANNELS", 8)
    monkeypatch.setattr(conv_ops, "_WINOGRAD_MIN_FILTERS", 9)
    with kernels.use("numba"):
        ops.conv2d(x, k)
    assert winograd.calls == []
    monkeypatch.setattr(conv_ops, "_WINOGRAD_MIN_FILTERS", 8)
    with kernels.use("numba"):
        ops.conv2d(x, k)
    assert len(winograd.calls) == 1


def _tiles(padded, out_hw):
    """The (P, 4, 4, C) input tiles of a padded NHWC batch, zero-extended for odd outputs."""
    n, _, _, c = padded.shape
    th, tw = (out_hw[0] + 1) // 2, (out_hw[1] + 1) // 2
    full = np.zeros((n, 2 * th + 2, 2 * tw + 2, c))
    full[:, : padded.shape[1], : padded.shape[2]] = padded
    tiles = [full[:, 2 * i : 2 * i + 4, 2 * j : 2 * j + 4] for i in range(th) for j in range(tw)]
    return np.stack(tiles, axis=1).reshape(-1, 4, 4, c)


def test_transforms_are_the_winograd_matrices():
    """V = Bᵀ·d·B, U = G·g·Gᵀ and Y = Aᵀ·M·A, written out with the matrices, point ξ = 4·i + j."""
    from ember.kernels import winograd as w

    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 7, 8, 3))
    out_hw = (5, 6)
    v = w.input_transform(x, ((0, 0), (0, 0)), out_hw)
    tiles = _tiles(x, out_hw)
    expected_v = np.einsum("ia,pabc,jb->ijpc", w.B_T, tiles, w.B_T).reshape(16, -1, 3)
    np.testing.assert_allclose(v, expected_v, rtol=0, atol=1e-13)
    k = rng.standard_normal((3, 3, 3, 4))
    u = w.kernel_transform(k)
    np.testing.assert_allclose(
        u, np.einsum("ia,abcf,jb->ijcf", w.G, k, w.G).reshape(16, 3, 4), rtol=0, atol=1e-13
    )
    m = rng.standard_normal((16, v.shape[1], 4))
    out = w.output_transform(m, None, False, (2, *out_hw, 4))
    y = np.einsum("ai,ijpf,bj->pabf", w.A_T, m.reshape(4, 4, -1, 4), w.A_T)
    y = y.reshape(2, 3, 3, 2, 2, 4).transpose(0, 1, 3, 2, 4, 5).reshape(2, 6, 6, 4)
    np.testing.assert_allclose(out, y[:, :5, :6], rtol=0, atol=1e-13)  # the last row cropped


def test_backward_transforms_are_the_exact_adjoints():
    """⟨T(a), b⟩ = ⟨a, T*(b)⟩ for each transform T and its adjoint, to float64 rounding."""
    from ember.kernels import winograd as w

    rng = np.random.default_rng(5)
    pads, out_hw, x_shape = ((1, 2), (2, 0)), (5, 7), (2, 5, 7, 3)  # padded 8 × 9
    x = rng.standard_normal(x_shape)
    dv = rng.standard_normal((16, 2 * 3 * 4, 3))
    np.testing.assert_allclose(
        np.vdot(w.input_transform(x, pads, out_hw), dv),
        np.vdot(x, w.input_grad(dv, pads, out_hw, x_shape)), rtol=1e-12,
    )  # fmt: skip
    m = rng.standard_normal((16, 2 * 3 * 4, 4))
    g = rng.standard_normal((2, *out_hw, 4))
    np.testing.assert_allclose(
        np.vdot(w.output_transform(m, None, False, g.shape), g),
        np.vdot(m, w.output_grad(g)), rtol=1e-12,
    )  # fmt: skip
    k = rng.standard_normal((3, 3, 3, 4))
    du = rng.standard_normal((16, 3, 4))
    np.testing.assert_allclose(
        np.vdot(w.kernel_transform(k), du), np.vdot(k, w.kernel_grad(du)), rtol=1e-12
    )


def test_input_gradient_does_not_depend_on_the_thread_count(winograd):
    """Each image's overlapping tiles are summed by one thread in tile order: bit for bit."""
    import numba

    rng = np.random.default_rng(6)
    x = rng.standard_normal((5, 9, 8, 6)).astype(np.float32)
    k = rng.standard_normal((3, 3, 6, 7)).astype(np.float32)
    g = rng.standard_normal((5, 9, 8, 7)).astype(np.float32)
    grads = []
    before = numba.get_num_threads()
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(threads)
            with kernels.use("numba"):
                tx, tk = ember.Tensor(x, requires_grad=True), ember.Tensor(k, requires_grad=True)
                ops.conv2d(tx, tk, padding="same").backward(g)
            grads.append((tx.grad, tk.grad))
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(grads[0][0], grads[1][0])
    np.testing.assert_array_equal(grads[0][1], grads[1][1])


def test_backward_keeps_the_input_tiles_not_the_patch_matrix(winograd):
    """What the graph holds after forward: the output and V (about 4·Ho·Wo·C numbers per image)
    instead of the output and the patch matrix (9·Ho·Wo·C)."""
    import tracemalloc

    rng = np.random.default_rng(7)
    x = ember.Tensor(rng.standard_normal((4, 18, 18, 16)).astype(np.float32), requires_grad=True)
    k = ember.Tensor(rng.standard_normal((3, 3, 16, 16)).astype(np.float32), requires_grad=True)
    held = {}
    for path, minimum in (("winograd", 1), ("im2col", 10**9)):
        conv_ops._WINOGRAD_MIN_INPUT_CHANNELS = minimum  # (the fixture restores it)
        with kernels.use("numba"):
            ops.conv2d(x, k)  # warm-up: compiled kernels and caches are not counted
            tracemalloc.start()
            y = ops.conv2d(x, k)
            held[path] = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            del y
    patch_matrix = 4 * 16 * 16 * 9 * 16 * 4  # bytes
    assert held["im2col"] >= patch_matrix
    assert held["winograd"] < 0.6 * held["im2col"], held


@pytest.mark.parity
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_winograd_matches_torch(padding, winograd, torch):
    """Forward and all three gradients against torch.nn.functional.conv2d (float32, NCHW)."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 9, 8, 5)).astype(np.float32)
    k = rng.standard_normal((3, 3, 5, 6)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    with kernels.use("numba"):
        tx, tk, tb = (ember.Tensor(a, requires_grad=True) for a in (x, k, b))
        y = ops.conv2d(tx, tk, padding=padding, bias=tb, relu=True)
        g = rng.standard_normal(y.shape).astype(np.float32)
        y.backward(g)
    assert len(winograd.calls) == 1
    px, pk, pb = (torch.tensor(a, requires_grad=True) for a in (x, k, b))
    py = torch.relu(torch.nn.functional.conv2d(
        px.permute(0, 3, 1, 2), pk.permute(3, 2, 0, 1), pb, padding=1 if padding == "same" else 0
    )).permute(0, 2, 3, 1)  # fmt: skip
    py.backward(torch.tensor(g))
    for name, got, expected in [("output", y.numpy(), py), ("dx", tx.grad, px.grad),
                                ("dkernel", tk.grad, pk.grad), ("dbias", tb.grad, pb.grad)]:
        _assert_close(got, expected.detach().numpy().astype(np.float64), np.float32, name)
