"""Convolution and pooling over channels-last (NHWC) images, each forward beside its backward.

Convolution is one matrix product per call: the receptive fields are gathered with a strided
view (im2col without a Python loop over pixels or samples) into a ``(N·Ho·Wo, kh·kw·C)`` matrix
that multiplies the ``(kh·kw·C, F)`` kernel. The gathered matrix is kept for the kernel gradient,
so backward never builds it a second time. The input gradient, with the fast kernels
(``ember.kernels``), is one GEMM of inner dimension F, ``g @ Kᵀ``, then col2im on every core; on
the NumPy path it is one batched product (one slice per kernel tap) followed by ``kh·kw`` slice
additions onto the image (no ``np.add.at`` scatter), or for stride 1 with F ≤ C one convolution
of ``g`` with the flipped kernel. With the fast kernels, a 3×3 stride-1 convolution with at
least 64 input channels is Winograd's F(2×2, 3×3) instead (``ember.kernels.winograd``: 2.25x
fewer multiplications; it keeps the input's transformed tiles rather than the patch matrix).
See BENCHMARKS.md for where the time goes.

Kernels are HWIO ``(kh, kw, in_channels, filters)`` as in Keras; ``padding="same"`` follows the
TensorFlow rule (the odd extra row/column of padding goes at the bottom/right).
"""

from __future__ import annotations

import numpy as np

from ember import kernels
from ember.backend import xp
from ember.ops._core import as_tensor, gemm
from ember.tensor import Tensor, _grad_mode

__all__ = [
    "conv2d",
    "conv2d_transpose",
    "depthwise_conv2d",
    "upsample_nearest2d",
    "max_pool2d",
    "avg_pool2d",
    "conv_output_size",
    "same_padding",
]


def _pair(value, name: str) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        value = (value, value)
    value = tuple(int(v) for v in value)
    if len(value) != 2 or min(value) < 1:
        raise ValueError(f"{name} must be a positive int or a pair of them, got {value!r}")
    return value


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's ``"same"`` padding of one axis: output ``ceil(size / stride)``, the total
    padding split with the extra unit at the end."""
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def _paddings(padding, shape_hw, kernel_hw, strides, dilation):
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return (0, 0), (0, 0)
        if mode == "same":
            return tuple(
                same_padding(n, k, s, d)
                for n, k, s, d in zip(shape_hw, kernel_hw, strides, dilation)
            )
        raise ValueError(f'padding must be "valid" or "same", got {padding!r}')
    (top, bottom), (left, right) = padding
    return (int(top), int(bottom)), (int(left), int(right))


def conv_output_size(size: int, kernel: int, stride: int, dilation: int, pads) -> int:
    """Output length along one axis for a padded, strided, dilated window."""
    return (size + pads[0] + pads[1] - ((kernel - 1) * dilation + 1)) // stride + 1


def _geometry(op: str, shape, kernel_hw, strides, padding, dilation):
    """Checked strides and dilation, the paddings and the output size of a convolution."""
    strides, dilation = _pair(strides, "strides"), _pair(dilation, "dilation_rate")
    pads = _paddings(padding, shape[1:3], kernel_hw, strides, dilation)
    out_hw = tuple(
        conv_output_size(n, k, s, d, p)
        for n, k, s, d, p in zip(shape[1:3], kernel_hw, strides, dilation, pads)
    )
    if min(out_hw) < 1:
        raise ValueError(
            f"{op}: a {kernel_hw[0]}x{kernel_hw[1]} kernel (dilation {dilation}) does not fit the "
            f"input of shape {shape} with padding {padding!r}; the output would be {out_hw}"
        )
    return strides, dilation, pads, out_hw


def _pad_hw(data: np.ndarray, pads, value=0.0) -> np.ndarray:
    (top, bottom), (left, right) = pads
    if not (top or bottom or left or right):
        return data
    n, h, w, c = data.shape
    out = xp.full((n, h + top + bottom, w + left + right, c), value, dtype=data.dtype)
    out[:, top : top + h, left : left + w, :] = data
    return out


def _windows(padded: np.ndarray, kernel_hw, strides, dilation, out_hw) -> np.ndarray:
    """A read-only ``(N, Ho, Wo, kh, kw, C)`` view of every receptive field (no copy)."""
    s0, s1, s2, s3 = padded.strides
    n, c = padded.shape[0], padded.shape[3]
    return xp.lib.stride_tricks.as_strided(
        padded,
        shape=(n, out_hw[0], out_hw[1], kernel_hw[0], kernel_hw[1], c),
        strides=(s0, s1 * strides[0], s2 * strides[1], s1 * dilation[0], s2 * dilation[1], s3),
        writeable=False,
    )


def _patch_matrix(windows: np.ndarray) -> np.ndarray:
    """The ``(N·Ho·Wo, kh·kw·C)`` patch matrix (im2col) of a ``_windows`` view.

    With many channels, reshape copies the windows row by row (each row gathers ``kh·kw`` runs
    of ``C`` contiguous values). With one to three channels (a first layer on grey or RGB
    images) those runs are too short to copy fast, so the matrix is built tap by tap instead —
    ``kh·kw·C`` long contiguous copies — and returned as the transposed (Fortran-order) view,
    which BLAS reads without a copy. Keras convnet on 28×28×1 images: 0.17 against 1.3 ms.
    """
    n, out_h, out_w, kh, kw, c_in = windows.shape
    if c_in <= 3:
        tap_major = xp.ascontiguousarray(windows.transpose(3, 4, 5, 0, 1, 2))
        return tap_major.reshape(kh * kw * c_in, n * out_h * out_w).T
    return windows.reshape(n * out_h * out_w, kh * kw * c_in)


def _offset_slices(i, j, strides, dilation, out_hw):
    """Where kernel tap ``(i, j)`` reads in the padded input, for every output position."""
    top, left = i * dilation[0], j * dilation[1]
    return (
        slice(None),
        slice(top, top + strides[0] * (out_hw[0] - 1) + 1, strides[0]),
        slice(left, left + strides[1] * (out_hw[1] - 1) + 1, strides[1]),
        slice(None),
    )


def _col2im(cols: np.ndarray, padded_shape, kernel_hw, strides, dilation, out_hw) -> np.ndarray:
    """Sum the ``(N, Ho, Wo, kh, kw, C)`` patch gradients back onto the padded image: one strided
    slice addition per kernel tap (``kh·kw`` vectorized adds; the kernel gathers per pixel on
    every core, adding the taps in the same order)."""
    fast = kernels.get("conv")
    if fast is not None:
        return fast.col2im(cols, padded_shape, strides, dilation)
    grad = xp.zeros(padded_shape, dtype=cols.dtype)
    for i in range(kernel_hw[0]):
        for j in range(kernel_hw[1]):
            grad[_offset_slices(i, j, strides, dilation, out_hw)] += cols[:, :, :, i, j, :]
    return grad


def _padded_shape(shape, pads) -> tuple:
    return (shape[0], shape[1] + sum(pads[0]), shape[2] + sum(pads[1]), shape[3])


def _input_grad_stride1(g, kernel, pads, dilation, in_hw) -> np.ndarray | None:
    """The input gradient of a stride-1 convolution as one convolution of the output gradient:
    ``dx = g ⋆ flip(K)ᵀ`` over ``g`` padded by ``(k−1)·d − pad`` on each side. One patch copy and
    one GEMM whose inner dimension is ``kh·kw·F`` (the same shape as the forward product, which
    BLAS runs fast) instead of ``kh·kw`` thin products and as many slice additions. ``None`` when
    an explicit padding exceeds ``(k−1)·d`` (the per-tap path handles that)."""
    kh, kw, c_in, filters = kernel.shape
    reach = ((kh - 1) * dilation[0], (kw - 1) * dilation[1])
    g_pads = tuple((reach[a] - pads[a][0], reach[a] - pads[a][1]) for a in range(2))
    if min(min(p) for p in g_pads) < 0:
        return None
    flipped = kernel[::-1, ::-1].transpose(0, 1, 3, 2).reshape(kh * kw * filters, c_in)
    windows = _windows(_pad_hw(g, g_pads), (kh, kw), (1, 1), dilation, in_hw)
    return gemm(windows.reshape(-1, kh * kw * filters), flipped).reshape(
        g.shape[0], in_hw[0], in_hw[1], c_in
    )


def _input_grad(g_2d, kernel, padded_shape, strides, dilation, out_hw) -> np.ndarray:
    """The gradient of a convolution with respect to its (padded) input.

    One batched product gives, for every kernel tap, the contiguous ``(N·Ho·Wo, C)`` gradient of
    the pixels that tap read; each is added onto its strided slice of the image. Compared with
    one ``(N·Ho·Wo, kh·kw·C)`` product followed by col2im, the additions read contiguous memory
    and no patch matrix of the input's im2col size is formed at once.
    """
    kh, kw, c_in, filters = kernel.shape
    per_tap = kernel.reshape(kh * kw, c_in, filters).transpose(0, 2, 1)  # (taps, F, C) view
    taps = gemm(g_2d, per_tap)  # (taps, N·Ho·Wo, C)
    n = padded_shape[0]
    grad = xp.zeros(padded_shape, dtype=taps.dtype)
    for k in range(kh * kw):
        i, j = divmod(k, kw)
        grad[_offset_slices(i, j, strides, dilation, out_hw)] += taps[k].reshape(
            n, out_hw[0], out_hw[1], c_in
        )
    return grad


def _conv2d_input_grad(g, kernel, x_shape, padded_shape, pads, strides, dilation, out_hw,
                       fast: bool) -> np.ndarray:  # fmt: skip
    """d conv2d / d x for the output gradient ``g`` (N, Ho, Wo, F) and an HWIO ``kernel``."""
    kh, kw, c_in, filters = kernel.shape
    g_2d = g.reshape(-1, filters)
    if fast:  # one GEMM of inner dimension F, then col2im on both cores (see the module doc)
        patches = gemm(g_2d, kernel.reshape(-1, filters).T).reshape(*g.shape[:3], kh, kw, c_in)
        return _crop(_col2im(patches, padded_shape, (kh, kw), strides, dilation, out_hw),
                     pads, x_shape)  # fmt: skip
    # the one-convolution form pays only when its patch copy of g (9·F columns) is no wider
    # than the per-tap products' output (9·C): BENCHMARKS.md, commit 3b80db9
    if strides == (1, 1) and filters <= c_in:
        gx = _input_grad_stride1(g, kernel, pads, dilation, x_shape[1:3])
        if gx is not None:
            return gx
    grad = _input_grad(g_2d, kernel, padded_shape, strides, dilation, out_hw)
    return _crop(grad, pads, x_shape)


def _crop(grad: np.ndarray, pads, shape) -> np.ndarray:
    (top, _), (left, _) = pads
    return grad[:, top : top + shape[1], left : left + shape[2], :]


def _operands(op: str, x, kernel, layout: str, channel_axis: int):
    """Tensors for an NHWC input and a 4-D kernel whose ``channel_axis`` matches the input's
    channels, or a ValueError naming the op, the layouts and both shapes."""
    x = as_tensor(x)
    kernel = as_tensor(kernel, x)
    _check_nhwc(op, x.data)
    if kernel.ndim != 4:
        raise ValueError(f"{op}: kernel must be {layout}, got shape {kernel.shape}")
    if kernel.shape[channel_axis] != x.shape[3]:
        raise ValueError(
            f"{op}: input has {x.shape[3]} channels (last axis, NHWC) but the kernel {layout} "
            f"expects {kernel.shape[channel_axis]}; input shape {x.shape}, kernel shape "
            f"{kernel.shape}"
        )
    return x, kernel


def _check_nhwc(op: str, x: np.ndarray) -> None:
    if x.ndim != 4:
        raise ValueError(
            f"{op}: expected a 4-D input (batch, height, width, channels) (NHWC), got shape "
            f"{x.shape}"
        )


# Winograd F(2×2, 3×3) (ember.kernels.winograd) for the 3×3, stride-1 convolutions where it pays:
# its 16 products have inner dimension C_in, which BLAS runs well from about 64 (conv2d forward +
# backward, Winograd / im2col, OpenBLAS' own kernels and the Haswell ones: 0.58-0.98 and
# 0.54-0.77 at C_in ≥ 64, 0.90-1.33 and 0.83-1.03 at 32, up to 1.9 at 8; the Keras convnet, whose
# second convolution has C_in = 32, trained 13-16 % and 5-11 % slower per step with it, and 3-5 %
# and 13-15 % faster with 64 filters in its first layer). Fewer than 8 filters: not measured.
_WINOGRAD_MIN_INPUT_CHANNELS = 64
_WINOGRAD_MIN_FILTERS = 8


def _winograd(fast, x: np.ndarray, kernel: np.ndarray, strides, dilation):
    """The Winograd kernel module when it computes this convolution, else None: the fast kernels
    are on (``fast``), the kernel is 3×3 with stride and dilation 1, input and kernel share a
    float32/float64 dtype, and the channel counts reach the minimums."""
    kh, kw, c_in, filters = kernel.shape
    if fast is None or (kh, kw) != (3, 3) or strides != (1, 1) or dilation != (1, 1):
        return None
    if x.dtype != kernel.dtype or x.dtype not in (np.float32, np.float64):
        return None
    if c_in < _WINOGRAD_MIN_INPUT_CHANNELS or filters < _WINOGRAD_MIN_FILTERS:
        return None
    return kernels.get("winograd")


def _conv2d_im2col(x, kernel, pads, strides, dilation, out_hw, bias, relu, fast):
    """The convolution as one GEMM of the patch matrix (kept for backward) and the kernel, with
    ``+ bias`` and ``max(·, 0)``: ``(output, (padded input shape, patch matrix))``."""
    kh, kw, _, filters = kernel.shape
    padded = _pad_hw(x, pads)
    cols = _patch_matrix(_windows(padded, (kh, kw), strides, dilation, out_hw))
    out = gemm(cols, kernel.reshape(-1, filters))
    if fast is not None and (bias is not None or relu):
        fast.add_bias_relu(out, bias, relu)
    else:
        if bias is not None:
            out += bias
        if relu:
            xp.maximum(out, 0, out=out)
    return out.reshape(x.shape[0], out_hw[0], out_hw[1], filters), (padded.shape, cols)


def _conv2d_im2col_grads(g, kernel, x_shape, saved, pads, strides, dilation, out_hw,
                         want_input: bool, want_kernel: bool, fast: bool):  # fmt: skip
    """``(dx, dkernel)`` of :func:`_conv2d_im2col` for the output gradient ``g`` (after the
    ReLU's mask), each None when not wanted."""
    padded_shape, cols = saved
    gx = gk = None
    if want_kernel:
        gk = gemm(cols.T, g.reshape(-1, kernel.shape[3])).reshape(kernel.shape)
    if want_input:
        gx = _conv2d_input_grad(g, kernel, x_shape, padded_shape, pads, strides, dilation,
                                out_hw, fast)  # fmt: skip
    return gx, gk


def conv2d(
    x, kernel, strides=1, padding="valid", dilation=1, bias=None, relu: bool = False
) -> Tensor:
    """2-D cross-correlation of NHWC ``x`` with an HWIO ``kernel`` (Keras' ``Conv2D`` maths).

    Args:
        x: ``(N, H, W, C)``.
        kernel: ``(kh, kw, C, F)``.
        strides, dilation: an int or ``(h, w)`` pair.
        padding: ``"valid"``, ``"same"`` (TensorFlow's rule) or ``((top, bottom), (left, right))``.
        bias: optional ``(F,)``, added inside the op (no extra graph node or temporary).
        relu: apply ``max(·, 0)`` in place on the result (the fused ``Conv2D(activation="relu")``
            path: no second output array, and the gradient mask comes from the output; a
            :func:`max_pool2d` that reads the result applies that mask in its own backward).

    With the fast kernels, a 3×3 stride-1 convolution with at least 64 input channels runs as
    Winograd's F(2×2, 3×3) (``ember.kernels.winograd``), the others as one GEMM of the patch
    matrix; the NumPy reference (``EMBER_KERNELS=numpy``) always takes the patch matrix.

    Returns:
        ``(N, Ho, Wo, F)``.

    Example:
        >>> y = ember.ops.conv2d(np.ones((1, 5, 5, 1)), np.ones((3, 3, 1, 2)))
        >>> y.shape
        (1, 3, 3, 2)
    """
    x, kernel = _operands("conv2d", x, kernel, "(kh, kw, in_channels, filters)", 2)
    kh, kw, c_in, filters = kernel.shape
    strides, dilation, pads, out_hw = _geometry(
        "conv2d", x.shape, (kh, kw), strides, padding, dilation
    )
    fast = kernels.get("conv")
    if bias is not None:
        bias = as_tensor(bias, x)
    bias_data = None if bias is None else bias.data
    winograd = _winograd(fast, x.data, kernel.data, strides, dilation)
    if winograd is not None:  # saves the input tiles, not the patch matrix
        out, saved = winograd.forward(x.data, kernel.data, pads, out_hw, bias_data, relu)
    else:
        out, saved = _conv2d_im2col(x.data, kernel.data, pads, strides, dilation, out_hw,
                                    bias_data, relu, fast)  # fmt: skip
    # A max pool reading this output applies the ReLU's gradient in its own backward pass and
    # leaves here the array it returned, with its per-filter sums (the bias gradient).
    fusion: dict | None = {} if relu and fast is not None else None

    def backward(g):
        want_bias = bias is not None and bias.requires_grad
        gb = None
        routed = fusion.pop("max_pool2d", None) if fusion is not None else None
        if routed is not None and routed[0] is g:
            gb = routed[1]  # g is the pool's array: the gradient before the ReLU already
        elif relu and fast is not None:  # (a sum with other gradients: masking again is exact)
            g, gb = fast.relu_backward_bias(g.reshape(-1, filters), out.reshape(-1, filters),
                                            want_bias)  # fmt: skip
            g = g.reshape(out.shape)
        elif relu:
            g = g * (out > 0)  # relu's gradient, 0 at exactly 0 as ops.relu
        if want_bias and gb is None:
            gb = g.reshape(-1, filters).sum(axis=0)
        if winograd is not None:
            gx, gk = winograd.backward(g, saved, x.requires_grad, kernel.requires_grad)
        else:
            gx, gk = _conv2d_im2col_grads(g, kernel.data, x.shape, saved, pads, strides,
                                          dilation, out_hw, x.requires_grad,
                                          kernel.requires_grad, fast is not None)  # fmt: skip
        return (gx, gk) if bias is None else (gx, gk, gb)

    parents = (x, kernel) if bias is None else (x, kernel, bias)
    result = Tensor._from_op(out, parents, backward, "conv2d")
    if fusion is not None:
        result._producer = ("relu_conv2d", fusion)
    return result


def depthwise_conv2d(x, kernel, strides=1, padding="valid", dilation=1) -> Tensor:
    """Each input channel convolved with its own ``depth_multiplier`` filters: NHWC ``x`` and a
    Keras ``DepthwiseConv2D`` kernel ``(kh, kw, C, M)``; output channel ``c·M + m`` (Keras'
    order). One batched matrix product over channels.

    Example:
        >>> ember.ops.depthwise_conv2d(np.ones((1, 5, 5, 3)), np.ones((3, 3, 3, 2))).shape
        (1, 3, 3, 6)
    """
    x, kernel = _operands("depthwise_conv2d", x, kernel, "(kh, kw, in_channels, multiplier)", 2)
    kh, kw, c, m = kernel.shape
    strides, dilation, pads, out_hw = _geometry(
        "depthwise_conv2d", x.shape, (kh, kw), strides, padding, dilation
    )
    n = x.shape[0]
    padded = _pad_hw(x.data, pads)
    windows = _windows(padded, (kh, kw), strides, dilation, out_hw)
    cols = windows.transpose(5, 0, 1, 2, 3, 4).reshape(c, -1, kh * kw)  # (C, P, kh·kw)
    kernel_3d = kernel.data.transpose(2, 0, 1, 3).reshape(c, kh * kw, m)  # (C, kh·kw, M)
    out_cpm = gemm(cols, kernel_3d)  # (C, P, M)
    out = out_cpm.transpose(1, 0, 2).reshape(n, out_hw[0], out_hw[1], c * m)

    def backward(g):
        g_cpm = g.reshape(-1, c, m).transpose(1, 0, 2)  # (C, P, M)
        gx = gk = None
        if kernel.requires_grad:
            gk = gemm(cols.transpose(0, 2, 1), g_cpm).reshape(c, kh, kw, m).transpose(1, 2, 0, 3)
        if x.requires_grad:
            patches = gemm(g_cpm, kernel_3d.transpose(0, 2, 1))  # (C, P, kh·kw)
            patches = patches.reshape(c, n, out_hw[0], out_hw[1], kh, kw).transpose(
                1, 2, 3, 4, 5, 0
            )
            full = _col2im(patches, padded.shape, (kh, kw), strides, dilation, out_hw)
            gx = _crop(full, pads, x.shape)
        return gx, gk

    return Tensor._from_op(out, (x, kernel), backward, "depthwise_conv2d")


def conv2d_transpose(x, kernel, strides=1, padding="valid", dilation=1, output_padding=None):
    """The transpose (gradient) of :func:`conv2d` with respect to its input: NHWC ``x`` with a
    Keras ``Conv2DTranspose`` kernel ``(kh, kw, filters, in_channels)``.

    The output size per axis is ``(n − 1)·s + (k − 1)·d + 1 − pads + output_padding``, which
    for ``padding="valid"`` is ``(n − 1)·s + k`` and for ``"same"`` ``n·s`` (Keras' rule).

    Example:
        >>> y = ember.ops.conv2d_transpose(np.ones((1, 3, 3, 2)), np.ones((3, 3, 4, 2)), strides=2)
        >>> y.shape
        (1, 7, 7, 4)
    """
    x, kernel = _operands("conv2d_transpose", x, kernel, "(kh, kw, filters, in_channels)", 3)
    kh, kw, filters, c_in = kernel.shape
    strides, dilation = _pair(strides, "strides"), _pair(dilation, "dilation_rate")
    n, h, w, _ = x.shape
    effective = ((kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1)
    if isinstance(padding, str) and padding.lower() == "same":
        totals = [max(e - s, 0) for e, s in zip(effective, strides)]
        pads = tuple((t // 2, t - t // 2) for t in totals)
    else:
        pads = _paddings(padding, (h, w), (kh, kw), strides, dilation)
    extra = (0, 0) if output_padding is None else _pair_nonneg(output_padding)
    full_hw = [(size - 1) * s + e + o for size, s, e, o in zip((h, w), strides, effective, extra)]
    out_hw = [f - p[0] - p[1] for f, p in zip(full_hw, pads)]
    if min(out_hw) < 1:
        raise ValueError(f"conv2d_transpose: output would be {tuple(out_hw)} for input {x.shape}")
    # The forward conv this transposes maps a (full_h, full_w, filters) image to x.
    full_shape = (n, full_hw[0], full_hw[1], filters)
    kernel_2d = kernel.data.reshape(-1, c_in)  # (kh·kw·filters, c_in)
    x_2d = x.data.reshape(-1, c_in)
    patches = gemm(x_2d, kernel_2d.T).reshape(n, h, w, kh, kw, filters)
    full = _col2im(patches, full_shape, (kh, kw), strides, dilation, (h, w))
    out = xp.ascontiguousarray(_crop(full, pads, (n, out_hw[0], out_hw[1])))

    def backward(g):
        gx = gk = None
        g_full = _pad_hw(g, pads)
        if g_full.shape[1:3] != tuple(full_hw):  # output_padding rows that the crop dropped
            g_full = _pad_hw(g_full, ((0, full_hw[0] - g_full.shape[1]), (0, 0)))
            g_full = _pad_hw(g_full, ((0, 0), (0, full_hw[1] - g_full.shape[2])))
        cols = _windows(g_full, (kh, kw), strides, dilation, (h, w)).reshape(-1, kh * kw * filters)
        if x.requires_grad:
            gx = gemm(cols, kernel_2d).reshape(x.shape)
        if kernel.requires_grad:
            gk = gemm(cols.T, x_2d).reshape(kernel.shape)
        return gx, gk

    return Tensor._from_op(out, (x, kernel), backward, "conv2d_transpose")


def _pair_nonneg(value) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        value = (value, value)
    value = tuple(int(v) for v in value)
    if len(value) != 2 or min(value) < 0:
        raise ValueError(f"output_padding must be a non-negative int or pair, got {value!r}")
    return value


def _pool_geometry(op, x, pool_size, strides, padding):
    _check_nhwc(op, x)
    pool = _pair(pool_size, "pool_size")
    strides = pool if strides is None else strides
    strides, _, pads, out_hw = _geometry(op, x.shape, pool, strides, padding, 1)
    return pool, strides, pads, out_hw


def _tiled(x: np.ndarray, pool, out_hw) -> np.ndarray:
    """``(N, Ho, ph, Wo, pw, C)`` view of the non-overlapping windows (stride = pool, no padding);
    rows and columns past the last whole window are left out."""
    s0, s1, s2, s3 = x.strides
    # built with explicit strides so that it is always a view (a write into it reaches ``x``)
    return xp.lib.stride_tricks.as_strided(
        x,
        shape=(x.shape[0], out_hw[0], pool[0], out_hw[1], pool[1], x.shape[3]),
        strides=(s0, s1 * pool[0], s1, s2 * pool[1], s2, s3),
    )


def _tiled_max_grad(data, out, g, pool, out_hw):
    """Max-pool gradient for non-overlapping windows, in two passes over the input: one compare
    against the broadcast maxima, one product with the broadcast gradient. Only when some window
    holds its maximum twice (common after a ReLU: all-zero windows) are the later hits cleared,
    so that the first maximum alone gets the gradient."""
    view = _tiled(data, pool, out_hw)
    hit = view == out[:, :, None, :, None, :]
    if xp.count_nonzero(hit) > out.size:
        taken = None
        for i in range(pool[0]):
            for j in range(pool[1]):
                tap = hit[:, :, i, :, j, :]
                if taken is None:
                    taken = tap.copy()
                else:
                    tap &= ~taken
                    taken |= tap
    grad = xp.zeros(data.shape, dtype=g.dtype)
    xp.multiply(hit, g[:, :, None, :, None, :], out=_tiled(grad, pool, out_hw))
    return grad


def max_pool2d(x, pool_size=2, strides=None, padding="valid") -> Tensor:
    """Max over each window of NHWC ``x``; the gradient goes to the first maximum of each window
    (as PyTorch and TensorFlow). Non-overlapping windows (the default ``strides = pool_size``)
    take a fast path through a reshaped view.

    Which input won each window is worked out in backward, not forward, so inference pays only
    for the maxima.

    Example:
        >>> ember.ops.max_pool2d(np.arange(16.0).reshape(1, 4, 4, 1)).data.ravel()
        array([ 5.,  7., 13., 15.])
    """
    x = as_tensor(x)
    pool, strides, pads, out_hw = _pool_geometry("max_pool2d", x.data, pool_size, strides, padding)
    taps = [(i, j) for i in range(pool[0]) for j in range(pool[1])]
    plain = strides == pool and pads == ((0, 0), (0, 0))
    fast = kernels.get("pooling") if plain and len(taps) <= 256 else None
    if fast is not None and x.data.dtype.kind == "f":
        producer = x._producer
        relu = producer is not None and producer[0] == "relu_conv2d" and len(taps) < 128
        out, argmax = fast.max_pool_forward(x.data, pool, out_hw, relu)

        def kernel_backward(g):
            # After conv2d's fused ReLU, the gradient returned is the one *before* the ReLU (one
            # pass instead of two full-size ones); the convolution recognises the array. Not when
            # the ReLU's output gradient itself is asked for (GradientTape on an intermediate).
            fused = relu and not _grad_mode.exact_intermediates
            grad, bias_grad = fast.max_pool_backward(g, argmax, pool, x.shape, fused)
            if fused:
                producer[1]["max_pool2d"] = (grad, bias_grad)
            return (grad,)

        return Tensor._from_op(out, (x,), kernel_backward, "max_pool2d")

    def tap_values(data):
        if plain:
            view = _tiled(data, pool, out_hw)
            return [view[:, :, i, :, j, :] for i, j in taps]
        view = _windows(data, pool, strides, (1, 1), out_hw)
        return [view[:, :, :, i, j, :] for i, j in taps]

    source = x.data if plain else _pad_hw(x.data, pads, value=-np.inf)
    values = tap_values(source)
    out = xp.maximum(values[0], values[1]) if len(values) > 1 else values[0].copy()
    for v in values[2:]:
        xp.maximum(out, v, out=out)

    def backward(g):
        if plain:
            return (_tiled_max_grad(x.data, out, g, pool, out_hw),)
        grad = xp.zeros(source.shape, dtype=g.dtype)
        taken = None  # windows whose (first) maximum has been routed already
        for k, v in enumerate(values):
            hit = v == out
            if taken is None:
                taken = hit.copy()
            else:
                hit &= ~taken
                taken |= hit
            grad[_offset_slices(*taps[k], strides, (1, 1), out_hw)] += g * hit
        return (_crop(grad, pads, x.shape),)

    return Tensor._from_op(out, (x,), backward, "max_pool2d")


def avg_pool2d(x, pool_size=2, strides=None, padding="valid") -> Tensor:
    """Mean over each window of NHWC ``x``. With ``padding="same"`` the padded positions are left
    out of each window's count (TensorFlow/Keras; PyTorch's ``count_include_pad=False``).

    Example:
        >>> ember.ops.avg_pool2d(np.arange(16.0).reshape(1, 4, 4, 1)).data.ravel()
        array([ 2.5,  4.5, 10.5, 12.5])
    """
    x = as_tensor(x)
    pool, strides, pads, out_hw = _pool_geometry("avg_pool2d", x.data, pool_size, strides, padding)
    taps = [(i, j) for i in range(pool[0]) for j in range(pool[1])]
    plain = strides == pool and pads == ((0, 0), (0, 0))
    dtype = x.data.dtype if x.data.dtype.kind == "f" else np.float64
    if plain:
        out = _tiled(x.data, pool, out_hw).mean(axis=(2, 4), dtype=dtype)
        scale = None
    else:
        padded = _pad_hw(x.data.astype(dtype, copy=False), pads)
        view = _windows(padded, pool, strides, (1, 1), out_hw)
        total = view.sum(axis=(3, 4))
        ones = _pad_hw(xp.ones((1, x.shape[1], x.shape[2], 1), dtype=dtype), pads)
        counts = _windows(ones, pool, strides, (1, 1), out_hw).sum(axis=(3, 4))
        scale = 1 / counts  # (1, Ho, Wo, 1): how much each window's input counts
        out = total * scale
    out = out.astype(dtype, copy=False)

    def backward(g):
        if plain:
            grad = xp.zeros(x.shape, dtype=g.dtype)
            tiles = _tiled(grad, pool, out_hw)
            share = g / (pool[0] * pool[1])
            for i, j in taps:
                tiles[:, :, i, :, j, :] = share
            return (grad,)
        grad = xp.zeros(_padded_shape(x.shape, pads), dtype=g.dtype)
        share = (g * scale).astype(g.dtype, copy=False)
        for i, j in taps:
            grad[_offset_slices(i, j, strides, (1, 1), out_hw)] += share
        return (_crop(grad, pads, x.shape),)

    return Tensor._from_op(out, (x,), backward, "avg_pool2d")


def upsample_nearest2d(x, size=2) -> Tensor:
    """NHWC nearest-neighbour upsampling: each pixel repeated ``size = (sh, sw)`` times. The
    forward copies one broadcast view; the gradient sums each block (a reshape and a reduction).

    Example:
        >>> ember.ops.upsample_nearest2d(np.ones((1, 2, 2, 3)), 2).shape
        (1, 4, 4, 3)
    """
    x = as_tensor(x)
    _check_nhwc("upsample_nearest2d", x.data)
    sh, sw = _pair(size, "size")
    n, h, w, c = x.shape
    out = xp.broadcast_to(x.data[:, :, None, :, None, :], (n, h, sh, w, sw, c)).reshape(
        n, h * sh, w * sw, c
    )

    def backward(g):
        return (g.reshape(n, h, sh, w, sw, c).sum(axis=(2, 4)),)

    return Tensor._from_op(out, (x,), backward, "upsample_nearest2d")
