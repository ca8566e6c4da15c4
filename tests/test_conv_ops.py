"""Convolution and pooling ops (NHWC, HWIO kernels) against PyTorch and finite differences.

PyTorch works in NCHW with OIHW kernels, so its side permutes in and out; TensorFlow's asymmetric
``"same"`` padding is given to PyTorch as an explicit ``F.pad`` (PyTorch's own ``padding="same"``
puts the odd extra row at the top and refuses strides > 1).
"""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.ops.conv import avg_pool2d, conv2d, conv2d_transpose, max_pool2d, same_padding
from ember.testing import assert_matches_torch

CONV_CASES = [
    # (input NHWC, kernel HWIO, strides, padding, dilation)
    ((2, 7, 7, 3), (3, 3, 3, 4), 1, "valid", 1),
    ((2, 7, 7, 3), (3, 3, 3, 4), 1, "same", 1),
    ((2, 8, 9, 3), (3, 3, 3, 4), 2, "valid", 1),
    ((2, 8, 9, 3), (3, 3, 3, 4), 2, "same", 1),
    ((1, 9, 9, 2), (3, 3, 2, 5), 1, "valid", 2),
    ((1, 9, 10, 2), (3, 2, 2, 5), (2, 1), "same", 2),
    ((1, 5, 5, 1), (1, 1, 1, 3), 1, "valid", 1),
    ((3, 6, 6, 2), (4, 4, 2, 3), 2, "same", 1),
]


def _torch_same_pads(shape_hw, kernel_hw, strides, dilation):
    strides = (strides, strides) if isinstance(strides, int) else strides
    dilation = (dilation, dilation) if isinstance(dilation, int) else dilation
    return [same_padding(n, k, s, d) for n, k, s, d in zip(shape_hw, kernel_hw, strides, dilation)]


def _torch_conv(torch, x, k, strides, padding, dilation):
    f = torch.nn.functional
    xt = x.permute(0, 3, 1, 2)
    if padding == "same":
        (top, bottom), (left, right) = _torch_same_pads(
            x.shape[1:3], k.shape[:2], strides, dilation
        )
        xt = f.pad(xt, (left, right, top, bottom))
    y = f.conv2d(xt, k.permute(3, 2, 0, 1), stride=strides, dilation=dilation)
    return y.permute(0, 2, 3, 1)


@pytest.mark.parametrize("x_shape,k_shape,strides,padding,dilation", CONV_CASES)
def test_conv2d_matches_torch(x_shape, k_shape, strides, padding, dilation):
    assert_matches_torch(
        lambda x, k: conv2d(x, k, strides, padding, dilation),
        lambda x, k: _torch_conv(_torch(), x, k, strides, padding, dilation),
        [x_shape, k_shape],
    )


@pytest.mark.parametrize("x_shape,k_shape,strides,padding,dilation", CONV_CASES[:6])
def test_conv2d_gradcheck(x_shape, k_shape, strides, padding, dilation):
    rng = np.random.default_rng(0)
    x = ember.tensor(rng.standard_normal(x_shape), dtype="float64", requires_grad=True)
    k = ember.tensor(rng.standard_normal(k_shape), dtype="float64", requires_grad=True)
    assert ember.gradcheck(lambda a, b: conv2d(a, b, strides, padding, dilation), x, k)


@pytest.mark.parametrize("padding", [((3, 0), (1, 4)), ((2, 2), (0, 0))])
def test_conv2d_explicit_padding_gradients(padding):
    """Stride-1 input gradients come from one convolution of the output gradient unless a pad
    exceeds the kernel's reach (here 3 > 2 and 4 > 2), when the per-tap path runs: both are
    checked against finite differences, and the first case must take the per-tap path."""
    from ember.ops.conv import _input_grad_stride1

    rng = np.random.default_rng(1)
    x = ember.tensor(rng.standard_normal((2, 5, 4, 3)), dtype="float64", requires_grad=True)
    k = ember.tensor(rng.standard_normal((3, 3, 3, 2)), dtype="float64", requires_grad=True)
    assert ember.gradcheck(lambda a, b: conv2d(a, b, 1, padding), x, k)
    g = np.ones(conv2d(x, k, 1, padding).shape)
    fast = _input_grad_stride1(g, k.data, padding, (1, 1), (5, 4))
    assert (fast is None) == (padding[0][0] > 2)


def _torch():
    import torch

    return torch


TRANSPOSE_CASES = [
    ((2, 3, 3, 2), (3, 3, 4, 2), 1, "valid"),
    ((2, 3, 3, 2), (3, 3, 4, 2), 2, "valid"),
    ((1, 4, 5, 3), (3, 3, 2, 3), 2, "same"),
    ((1, 4, 4, 3), (2, 2, 2, 3), 2, "same"),
]


@pytest.mark.parametrize("x_shape,k_shape,strides,padding", TRANSPOSE_CASES)
def test_conv2d_transpose_matches_torch(x_shape, k_shape, strides, padding):
    torch = _torch()
    kh, kw = k_shape[:2]

    def torch_fn(x, k):
        # Keras kernel (kh, kw, filters, in) → torch (in, filters, kh, kw)
        y = torch.nn.functional.conv_transpose2d(
            x.permute(0, 3, 1, 2), k.permute(3, 2, 0, 1), stride=strides
        )
        if padding == "same":
            top = max(kh - strides, 0) // 2
            left = max(kw - strides, 0) // 2
            y = y[:, :, top : top + x.shape[1] * strides, left : left + x.shape[2] * strides]
        return y.permute(0, 2, 3, 1)

    assert_matches_torch(
        lambda x, k: conv2d_transpose(x, k, strides, padding), torch_fn, [x_shape, k_shape]
    )


def test_conv2d_transpose_is_the_adjoint_of_conv2d():
    rng = np.random.default_rng(1)
    k = rng.standard_normal((3, 3, 2, 4))  # conv: 2 → 4 channels; its transpose: 4 → 2
    x = rng.standard_normal((2, 8, 8, 2))
    y = rng.standard_normal((2, 4, 4, 4))
    conv = conv2d(x, k, 2, "same").data
    # <conv(x), y> == <x, conv_T(y)> with the transpose kernel laid out (kh, kw, out=2, in=4)
    back = conv2d_transpose(y, k, 2, "same").data
    np.testing.assert_allclose(np.sum(conv * y), np.sum(x * back), rtol=1e-10)


POOL_CASES = [
    ((2, 6, 6, 3), 2, None, "valid"),
    ((2, 7, 5, 3), 2, None, "valid"),
    ((2, 7, 7, 3), 3, 2, "valid"),
    ((1, 7, 6, 2), 2, None, "same"),
    ((1, 7, 7, 2), 3, 2, "same"),
    ((1, 5, 5, 1), (2, 3), (1, 2), "valid"),
]


def _torch_pool(torch, x, pool, strides, padding, kind):
    f = torch.nn.functional
    pool = (pool, pool) if isinstance(pool, int) else pool
    strides = pool if strides is None else strides
    strides = (strides, strides) if isinstance(strides, int) else strides
    xt = x.permute(0, 3, 1, 2)
    if padding == "same":
        (top, bottom), (left, right) = _torch_same_pads(x.shape[1:3], pool, strides, 1)
        if kind == "max":
            xt = f.pad(xt, (left, right, top, bottom), value=-float("inf"))
        else:  # count only real pixels: pool the sums and the counts separately
            ones = torch.ones_like(xt[:1, :1])
            s = f.avg_pool2d(f.pad(xt, (left, right, top, bottom)), pool, strides)
            c = f.avg_pool2d(f.pad(ones, (left, right, top, bottom)), pool, strides)
            return (s / c).permute(0, 2, 3, 1)
    fn = f.max_pool2d if kind == "max" else f.avg_pool2d
    return fn(xt, pool, strides).permute(0, 2, 3, 1)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("x_shape,pool,strides,padding", POOL_CASES)
def test_pooling_matches_torch(kind, x_shape, pool, strides, padding):
    op = max_pool2d if kind == "max" else avg_pool2d
    assert_matches_torch(
        lambda x: op(x, pool, strides, padding),
        lambda x: _torch_pool(_torch(), x, pool, strides, padding, kind),
        [x_shape],
    )


def test_max_pool_gradient_goes_to_the_first_maximum_like_torch():
    torch = _torch()
    x = np.zeros((1, 4, 4, 1), dtype=np.float32)  # all ties, e.g. after a ReLU
    x[0, 1, 1, 0] = x[0, 0, 3, 0] = 1.0
    assert_matches_torch(
        lambda t: max_pool2d(t, 2),
        lambda t: torch.nn.functional.max_pool2d(t.permute(0, 3, 1, 2), 2).permute(0, 2, 3, 1),
        [x],
    )


def test_conv_errors_name_the_layout_and_shapes():
    with pytest.raises(ValueError, match=r"NHWC.*\(5, 5, 3\)"):
        conv2d(np.ones((5, 5, 3)), np.ones((3, 3, 3, 2)))
    with pytest.raises(ValueError, match="4 channels.*expects 3"):
        conv2d(np.ones((1, 5, 5, 4)), np.ones((3, 3, 3, 2)))
    with pytest.raises(ValueError, match="does not fit"):
        conv2d(np.ones((1, 2, 2, 3)), np.ones((3, 3, 3, 2)))
    with pytest.raises(ValueError, match="strides"):
        conv2d(np.ones((1, 5, 5, 3)), np.ones((3, 3, 3, 2)), strides=0)
    with pytest.raises(ValueError, match="padding"):
        max_pool2d(np.ones((1, 4, 4, 1)), 2, padding="full")


def test_conv_keeps_float32():
    y = conv2d(
        np.ones((1, 5, 5, 2), np.float32),
        ember.tensor(np.ones((3, 3, 2, 2), np.float32), requires_grad=True),
    )
    assert y.dtype == np.float32
    assert max_pool2d(y).dtype == np.float32 and avg_pool2d(y, 2, 1, "same").dtype == np.float32


def test_conv2d_fused_bias_matches_torch():
    assert_matches_torch(
        lambda x, k, b: conv2d(x, k, 2, "same", bias=b),
        lambda x, k, b: _torch_conv(_torch(), x, k, 2, "same", 1) + b,
        [(2, 7, 6, 3), (3, 3, 3, 4), (4,)],
    )


@pytest.mark.parametrize(
    "x_shape,k_shape,strides,padding,dilation",
    [
        ((2, 7, 7, 3), (3, 3, 3, 2), 1, "valid", 1),
        ((2, 8, 7, 3), (3, 3, 3, 1), 2, "same", 1),
        ((1, 9, 9, 2), (3, 3, 2, 3), 1, "same", 2),
    ],
)
def test_depthwise_conv2d_matches_torch(x_shape, k_shape, strides, padding, dilation):
    from ember.ops.conv import depthwise_conv2d

    torch = _torch()
    kh, kw, c, m = k_shape

    def torch_fn(x, k):
        xt = x.permute(0, 3, 1, 2)
        if padding == "same":
            (top, bottom), (left, right) = _torch_same_pads(
                x.shape[1:3], (kh, kw), strides, dilation
            )
            xt = torch.nn.functional.pad(xt, (left, right, top, bottom))
        w = k.permute(2, 3, 0, 1).reshape(c * m, 1, kh, kw)  # output channel c·M + m
        y = torch.nn.functional.conv2d(xt, w, stride=strides, dilation=dilation, groups=c)
        return y.permute(0, 2, 3, 1)

    assert_matches_torch(
        lambda x, k: depthwise_conv2d(x, k, strides, padding, dilation),
        torch_fn,
        [x_shape, k_shape],
    )
    rng = np.random.default_rng(0)
    x = ember.tensor(rng.standard_normal(x_shape), dtype="float64", requires_grad=True)
    k = ember.tensor(rng.standard_normal(k_shape), dtype="float64", requires_grad=True)
    assert ember.gradcheck(lambda a, b: depthwise_conv2d(a, b, strides, padding, dilation), x, k)


@pytest.mark.parametrize("x_shape,pool,strides,padding", POOL_CASES)
def test_pooling_gradcheck(x_shape, pool, strides, padding):
    rng = np.random.default_rng(2)
    x = ember.tensor(rng.standard_normal(x_shape), dtype="float64", requires_grad=True)
    assert ember.gradcheck(lambda t: max_pool2d(t, pool, strides, padding), x)
    assert ember.gradcheck(lambda t: avg_pool2d(t, pool, strides, padding), x)


@pytest.mark.parametrize("x_shape,k_shape,strides,padding", TRANSPOSE_CASES)
def test_conv2d_transpose_gradcheck(x_shape, k_shape, strides, padding):
    rng = np.random.default_rng(3)
    x = ember.tensor(rng.standard_normal(x_shape), dtype="float64", requires_grad=True)
    k = ember.tensor(rng.standard_normal(k_shape), dtype="float64", requires_grad=True)
    assert ember.gradcheck(lambda a, b: conv2d_transpose(a, b, strides, padding), x, k)


@pytest.mark.parametrize("x_shape,strides", [((1, 3, 4, 2), 1), ((2, 3, 3, 2), 2)])
def test_conv2d_transpose_dilated_matches_torch(x_shape, strides):
    torch = _torch()
    assert_matches_torch(
        lambda x, k: conv2d_transpose(x, k, strides, "valid", dilation=2),
        lambda x, k: torch.nn.functional.conv_transpose2d(
            x.permute(0, 3, 1, 2), k.permute(3, 2, 0, 1), stride=strides, dilation=2
        ).permute(0, 2, 3, 1),
        [x_shape, (3, 3, 4, 2)],
    )
