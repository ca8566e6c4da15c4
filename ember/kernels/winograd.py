"""Winograd's F(2×2, 3×3): a 3×3, stride-1 convolution with 2.25x fewer multiplications.

**The idea, in one dimension.** Two outputs of a 3-tap filter ``g`` over four inputs ``d``,
``y0 = d0·g0 + d1·g1 + d2·g2`` and ``y1 = d1·g0 + d2·g1 + d3·g2``, take 6 multiplications. F(2, 3)
needs 4: ``m0 = (d0 − d2)·g0``, ``m1 = (d1 + d2)·(g0 + g1 + g2)/2``, ``m2 = (d2 − d1)·(g0 − g1 +
g2)/2``, ``m3 = (d1 − d3)·g2``, then ``y0 = m0 + m1 + m2`` and ``y1 = m1 − m2 − m3``. In matrix
form ``y = Aᵀ·[(G·g) ⊙ (Bᵀ·d)]`` with::

         ⎡1  0 −1  0⎤        ⎡ 1    0    0 ⎤
    Bᵀ = ⎢0  1  1  0⎥    G = ⎢1/2  1/2  1/2⎥    Aᵀ = ⎡1  1  1  0⎤
         ⎢0 −1  1  0⎥        ⎢1/2 −1/2  1/2⎥         ⎣0  1 −1 −1⎦
         ⎣0  1  0 −1⎦        ⎣ 0    0    1 ⎦

**In two dimensions** the same nests: a 2×2 output tile ``Y`` comes from a 4×4 input tile ``d``
(tiles step by 2, so neighbours overlap by 2 pixels) as ``Y = Aᵀ·[(G·g·Gᵀ) ⊙ (Bᵀ·d·B)]·A`` — 16
multiplications instead of 36, **2.25x fewer**. Over channels the ⊙ is summed over the input
channels ``c``, so for each of the 16 points ξ of the 4×4 transformed tile it is one matrix
product: ``M[ξ] (P × F) = V[ξ] (P × C) @ U[ξ] (C × F)``, where ``V = Bᵀ·d·B`` of every tile (P
tiles in the batch), ``U = G·g·Gᵀ`` of every filter. That is 16·P·C·F multiply-adds against the
patch-matrix (im2col) GEMM's 9·4P·C·F. An odd ``Ho`` or ``Wo`` gets a last tile whose extra row or
column reads zeros and is never written.

**Backward** is the adjoint of each step, so the gradients are the convolution's exact
gradients up to rounding: ``dM = A·dY·Aᵀ`` per tile (zero where the output was cropped),
``dU[ξ] = V[ξ]ᵀ·dM[ξ]`` and ``dV[ξ] = dM[ξ]·U[ξ]ᵀ``, the kernel gradient ``Gᵀ·dU·G`` and the input
gradient ``B·dV·Bᵀ`` summed over the overlapping tiles (each image by one thread, its tiles in
order: deterministic). ``V`` and ``U`` are kept from forward, not the patch matrix (``V`` holds
about 4·Ho·Wo·C numbers per image, the patch matrix 9·Ho·Wo·C).

**Accuracy.** The transforms only add, subtract and halve (exact in binary), and the sums are
short: float32 errors stay at the direct method's level — on three layer shapes (C = 32-256),
max error over max |value| against a float64 reference 2.6-7.9e-7 (output, input and kernel
gradients) against 2.1-6.5e-7 for im2col; float64 ~1e-15. (Larger tiles, F(4×4, 3×3), save
more, but their matrices hold 1/6, 1/24 and 8, and float32 loses digits to them.)

**Where it pays** (``ember.ops.conv`` takes it from 64 input channels). The transform kernels
(numba, images split over the cores) are memory-bound passes over arrays 4x the size of the
input (``V``, ``dV``) or of the output (``M``, ``dM``): 0.69, 0.88, 0.98 and 0.79 ms on the
convnet's second convolution (128 × 13 × 13 × 32 → 64), about twice that inside a training step,
where OpenBLAS' worker thread still spins from the previous product. The products have inner
dimension C, which BLAS runs at a fraction of its rate when C is small: there 16 × (4608 × 32 @
32 × 64) takes 2.5 ms (120 GFLOP/s) against 3.3 ms (170 GFLOP/s) for im2col's 2.25x larger GEMM
— the three Winograd products 7.1-7.5 ms against 8.8-9.3 with OpenBLAS' own kernels, 8.0-8.8
against 11.5-12.5 with ``OPENBLAS_CORETYPE=Haswell``, too little to pay for the transforms: that
network trained 13-16 % (Haswell: 5-11 %) slower per step with it. Forward + backward of one
``conv2d(relu=True)`` with 8-128 filters, time with Winograd over time with im2col (batches of
64 × 16 × 16, 16 × 32 × 32 and 256 × 8 × 8 images): from C = 64 0.58-0.98 (Haswell 0.54-0.77),
at C = 32 0.90-1.33 (Haswell 0.83-1.03), at C = 8 and 16 up to 1.9. The Keras convnet with 64
filters in its first layer (the second then has C = 64) trained 3-5 % faster per step (Haswell:
13-15 %), its peak memory during a step 100 MiB against 114.

The 16 matrices of a (16, P, ·) array are laid out by :func:`point_matrices` (4 KiB aliasing).
Tried and dropped: one fused kernel per image (transform, 16 small products through numba's
``np.dot``, transform back; nothing large in memory): 2.3-3 ms forward alone, but in the step
24 % (Haswell 55 %) slower than im2col, and 3-6x slower at 128-256 channels, where products
small enough to keep OpenBLAS single-threaded inside numba's threads are too small to run fast.
"""

from __future__ import annotations

import numpy as np

from ember.kernels._numba import njit, prange
from ember.kernels.gemm import matmul

# The three matrices of F(2×2, 3×3): Bᵀ takes a 4×4 input tile into the transform domain, G a
# 3×3 filter, Aᵀ brings a 4×4 product back as a 2×2 output tile. Every entry is 0, ±1 or ±½:
# the transforms are additions (and exact halvings), only the products multiply.
B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)

POINTS = 16  # the points of a 4×4 transformed tile, ξ = 4·i + j


# ------------------------------------------------------------------ the 1-D transforms
# Each applies one matrix X to the four (or two) numbers of a tile's column or row: applied to
# every column of a tile T, then to every row of the result, it gives the 2-D transform X·T·Xᵀ.
@njit
def _bt(d0, d1, d2, d3):  # pragma: no cover - compiled
    """Bᵀ·d."""
    return d0 - d2, d1 + d2, d2 - d1, d1 - d3


@njit
def _b(e0, e1, e2, e3):  # pragma: no cover - compiled
    """B·e, the adjoint of Bᵀ."""
    return e0, e1 - e2 + e3, e1 + e2 - e0, -e3


@njit
def _at(m0, m1, m2, m3):  # pragma: no cover - compiled
    """Aᵀ·m."""
    return m0 + m1 + m2, m1 - m2 - m3


@njit
def _a(y0, y1):  # pragma: no cover - compiled
    """A·y, the adjoint of Aᵀ."""
    return y0, y0 + y1, y0 - y1, -y1


# ------------------------------------------------------------------ one image's tiles
# Tile t of an image (row-major) covers output rows 2·(t // tiles_w) + {0, 1} and columns
# 2·(t % tiles_w) + {0, 1}, and reads the 4×4 padded-input pixels from there.
@njit(cache=True)
def _input_tiles(image, tiles_w, v):  # pragma: no cover - compiled
    """``v[ξ, t] = (Bᵀ·d·B)[ξ]`` for the 4×4 tiles ``d`` of the zero-padded ``image``."""
    for t in range(v.shape[1]):
        r, s = 2 * (t // tiles_w), 2 * (t % tiles_w)
        for c in range(v.shape[2]):  # channels innermost: the loop is vectorized
            # Bᵀ·d, column by column
            c0 = _bt(image[r, s, c], image[r + 1, s, c], image[r + 2, s, c], image[r + 3, s, c])
            c1 = _bt(image[r, s + 1, c], image[r + 1, s + 1, c], image[r + 2, s + 1, c],
                     image[r + 3, s + 1, c])  # fmt: skip
            c2 = _bt(image[r, s + 2, c], image[r + 1, s + 2, c], image[r + 2, s + 2, c],
                     image[r + 3, s + 2, c])  # fmt: skip
            c3 = _bt(image[r, s + 3, c], image[r + 1, s + 3, c], image[r + 2, s + 3, c],
                     image[r + 3, s + 3, c])  # fmt: skip
            # (Bᵀ·d)·B, row by row
            for i in range(4):
                v[4 * i, t, c], v[4 * i + 1, t, c], v[4 * i + 2, t, c], v[4 * i + 3, t, c] = (
                    _bt(c0[i], c1[i], c2[i], c3[i])
                )


@njit(cache=True)
def _input_grad_tiles(dv, tiles_w, image):  # pragma: no cover - compiled
    """The adjoint of :func:`_input_tiles`: ``B·dV·Bᵀ`` of each tile added onto ``image``."""
    for t in range(dv.shape[1]):
        r, s = 2 * (t // tiles_w), 2 * (t % tiles_w)
        for c in range(dv.shape[2]):
            # B·dV, column by column
            c0 = _b(dv[0, t, c], dv[4, t, c], dv[8, t, c], dv[12, t, c])
            c1 = _b(dv[1, t, c], dv[5, t, c], dv[9, t, c], dv[13, t, c])
            c2 = _b(dv[2, t, c], dv[6, t, c], dv[10, t, c], dv[14, t, c])
            c3 = _b(dv[3, t, c], dv[7, t, c], dv[11, t, c], dv[15, t, c])
            # (B·dV)·Bᵀ, row by row; overlapping tiles add in tile order (deterministic)
            for i in range(4):
                d0, d1, d2, d3 = _b(c0[i], c1[i], c2[i], c3[i])
                image[r + i, s, c] += d0
                image[r + i, s + 1, c] += d1
                image[r + i, s + 2, c] += d2
                image[r + i, s + 3, c] += d3


@njit(cache=True)
def _output_tiles(m, tiles_w, bias, relu, out):  # pragma: no cover - compiled
    """``Aᵀ·M·A`` of each tile, ``+ bias``, ``max(·, 0)`` if ``relu`` (NaN stays NaN, as in
    ``np.maximum``), into the image's ``out`` (Ho, Wo, F); a last odd row or column is cropped."""
    out_h, out_w = out.shape[0], out.shape[1]
    zero = out.dtype.type(0)
    for t in range(m.shape[1]):
        r, s = 2 * (t // tiles_w), 2 * (t % tiles_w)
        second_row, second_col = r + 1 < out_h, s + 1 < out_w
        for f in range(m.shape[2]):  # filters innermost: the loop is vectorized
            # Aᵀ·M, column by column
            c0 = _at(m[0, t, f], m[4, t, f], m[8, t, f], m[12, t, f])
            c1 = _at(m[1, t, f], m[5, t, f], m[9, t, f], m[13, t, f])
            c2 = _at(m[2, t, f], m[6, t, f], m[10, t, f], m[14, t, f])
            c3 = _at(m[3, t, f], m[7, t, f], m[11, t, f], m[15, t, f])
            for i in range(2):  # (Aᵀ·M)·A, row by row
                if i == 1 and not second_row:
                    break
                y0, y1 = _at(c0[i], c1[i], c2[i], c3[i])
                y0 += bias[f]
                y1 += bias[f]
                if relu:
                    y0 = y0 if y0 > zero or y0 != y0 else zero
                    y1 = y1 if y1 > zero or y1 != y1 else zero
                out[r + i, s, f] = y0
                if second_col:
                    out[r + i, s + 1, f] = y1


@njit(cache=True)
def _output_grad_tiles(g, tiles_w, dm):  # pragma: no cover - compiled
    """The adjoint of :func:`_output_tiles` (without bias and ReLU): ``dM = A·dY·Aᵀ`` of each
    2×2 tile of the image's gradient ``g`` (Ho, Wo, F), 0 where the output was cropped."""
    out_h, out_w = g.shape[0], g.shape[1]
    zero = g.dtype.type(0)
    for t in range(dm.shape[1]):
        r, s = 2 * (t // tiles_w), 2 * (t % tiles_w)
        second_row, second_col = r + 1 < out_h, s + 1 < out_w
        for f in range(dm.shape[2]):
            g00 = g[r, s, f]
            g01 = g[r, s + 1, f] if second_col else zero
            g10 = g[r + 1, s, f] if second_row else zero
            g11 = g[r + 1, s + 1, f] if second_row and second_col else zero
            c0, c1 = _a(g00, g10), _a(g01, g11)  # A·dY, column by column
            for i in range(4):  # (A·dY)·Aᵀ, row by row
                dm[4 * i, t, f], dm[4 * i + 1, t, f], dm[4 * i + 2, t, f], dm[4 * i + 3, t, f] = (
                    _a(c0[i], c1[i])
                )


@njit(cache=True)
def _padded_image(x, top, left, tiles_h, tiles_w):  # pragma: no cover - compiled
    """``x`` (H, W, C) zero-padded to the ``2·tiles + 2`` rows and columns the tiles read."""
    h, w, channels = x.shape
    image = np.zeros((2 * tiles_h + 2, 2 * tiles_w + 2, channels), dtype=x.dtype)
    image[top : top + h, left : left + w] = x
    return image


# ------------------------------------------------------------------ whole batches
# V, M, dM and dV are (16, P, ·) arrays, P = N·tiles; image b owns tiles b·tiles … (b+1)·tiles.
def point_matrices(rows: int, cols: int, dtype) -> np.ndarray:
    """An empty ``(16, rows, cols)`` array: one C-contiguous matrix per transform point (what
    BLAS multiplies), their starts 64 bytes apart modulo 4 KiB.

    The transform kernels read or write the 16 matrices at once, one stream each. Packed end to
    end (``rows·cols·itemsize`` a multiple of 4 KiB, as for 4608 × 32 float32) the 16 streams
    fall into the same L1 cache sets and evict each other: the input transform of the convnet's
    second convolution took 3.8 ms instead of 0.69.
    """
    itemsize = np.dtype(dtype).itemsize
    page = 4096 // itemsize
    step = -(-rows * cols // page) * page + 64 // itemsize
    flat = np.empty(POINTS * step, dtype=dtype)
    strides = (step * itemsize, cols * itemsize, itemsize)
    return np.lib.stride_tricks.as_strided(flat, (POINTS, rows, cols), strides)


@njit(parallel=True, cache=True)
def _input_transform(x, top, left, tiles_h, tiles_w, v):  # pragma: no cover - compiled
    tiles = tiles_h * tiles_w
    for b in prange(x.shape[0]):
        image = _padded_image(x[b], top, left, tiles_h, tiles_w)
        _input_tiles(image, tiles_w, v[:, b * tiles : (b + 1) * tiles])


@njit(parallel=True, cache=True)
def _input_grad(dv, top, left, tiles_h, tiles_w, dx):  # pragma: no cover - compiled
    n, h, w, channels = dx.shape
    tiles = tiles_h * tiles_w
    for b in prange(n):  # one image per thread: its tiles add in a fixed order
        grad = np.zeros((2 * tiles_h + 2, 2 * tiles_w + 2, channels), dtype=dx.dtype)
        _input_grad_tiles(dv[:, b * tiles : (b + 1) * tiles], tiles_w, grad)
        dx[b] = grad[top : top + h, left : left + w]


@njit(parallel=True, cache=True)
def _output_transform(m, bias, relu, out):  # pragma: no cover - compiled
    tiles_w = (out.shape[2] + 1) // 2
    tiles = (out.shape[1] + 1) // 2 * tiles_w
    for b in prange(out.shape[0]):
        _output_tiles(m[:, b * tiles : (b + 1) * tiles], tiles_w, bias, relu, out[b])


@njit(parallel=True, cache=True)
def _output_grad(g, dm):  # pragma: no cover - compiled
    tiles_w = (g.shape[2] + 1) // 2
    tiles = (g.shape[1] + 1) // 2 * tiles_w
    for b in prange(g.shape[0]):
        _output_grad_tiles(g[b], tiles_w, dm[:, b * tiles : (b + 1) * tiles])


def input_transform(x: np.ndarray, pads, out_hw) -> np.ndarray:
    """``V`` (16, P, C): ``Bᵀ·d·B`` of every 4×4 tile ``d`` of the zero-padded NHWC ``x``."""
    tiles_h, tiles_w = tile_counts(out_hw)
    v = point_matrices(x.shape[0] * tiles_h * tiles_w, x.shape[3], x.dtype)
    _input_transform(np.ascontiguousarray(x), pads[0][0], pads[1][0], tiles_h, tiles_w, v)
    return v


def input_grad(dv: np.ndarray, pads, out_hw, x_shape) -> np.ndarray:
    """The adjoint of :func:`input_transform`: ``B·dV·Bᵀ`` of every tile summed onto the image,
    the padding cropped: the ``x_shape`` input gradient."""
    tiles_h, tiles_w = tile_counts(out_hw)
    dx = np.empty(x_shape, dtype=dv.dtype)
    _input_grad(dv, pads[0][0], pads[1][0], tiles_h, tiles_w, dx)
    return dx


def output_transform(m: np.ndarray, bias: np.ndarray | None, relu: bool, out_shape) -> np.ndarray:
    """The (N, Ho, Wo, F) output: ``Aᵀ·M·A`` of every tile of ``m`` (16, P, F), ``+ bias``, then
    ``max(·, 0)`` if ``relu``."""
    out = np.empty(out_shape, dtype=m.dtype)
    bias = np.zeros(out_shape[3], m.dtype) if bias is None else bias.astype(m.dtype, copy=False)
    _output_transform(m, bias, relu, out)
    return out


def output_grad(g: np.ndarray) -> np.ndarray:
    """The adjoint of :func:`output_transform` (without bias and ReLU): ``dM`` (16, P, F)."""
    tiles_h, tiles_w = tile_counts(g.shape[1:3])
    dm = point_matrices(g.shape[0] * tiles_h * tiles_w, g.shape[3], g.dtype)
    _output_grad(np.ascontiguousarray(g), dm)
    return dm


def tile_counts(out_hw) -> tuple[int, int]:
    """Tiles per column and per row: ``ceil(Ho / 2)``, ``ceil(Wo / 2)``."""
    return (out_hw[0] + 1) // 2, (out_hw[1] + 1) // 2


def kernel_transform(kernel: np.ndarray) -> np.ndarray:
    """``U`` (16, C, F): ``G·g·Gᵀ`` of every 3×3 filter ``g`` of the HWIO ``kernel``, as one
    product: entry (4·i + j, 3·a + b) of ``G ⊗ G`` (Kronecker) is ``G[i, a]·G[j, b]``."""
    c_in, filters = kernel.shape[2:]
    both = np.kron(G, G).astype(kernel.dtype)  # (16, 9)
    return matmul(both, kernel.reshape(9, c_in * filters)).reshape(POINTS, c_in, filters)


def kernel_grad(du: np.ndarray) -> np.ndarray:
    """The adjoint of :func:`kernel_transform`: ``Gᵀ·dU·G`` as the (3, 3, C, F) gradient."""
    c_in, filters = du.shape[1:]
    both = np.kron(G, G).astype(du.dtype)
    return matmul(both.T, du.reshape(POINTS, c_in * filters)).reshape(3, 3, c_in, filters)


# ------------------------------------------------------------------ the convolution
def forward(x: np.ndarray, kernel: np.ndarray, pads, out_hw, bias: np.ndarray | None,
            relu: bool) -> tuple[np.ndarray, tuple]:  # fmt: skip
    """The 3×3, stride-1 convolution of NHWC ``x`` with the HWIO ``kernel`` (``pads`` as
    ``((top, bottom), (left, right))``), ``+ bias``, ``max(·, 0)`` if ``relu``.

    Returns the ``(N, Ho, Wo, F)`` output and what :func:`backward` needs: the input tiles ``V``
    and the transformed kernel ``U``.
    """
    v = input_transform(x, pads, out_hw)
    u = kernel_transform(kernel)
    m = point_matrices(v.shape[1], u.shape[2], v.dtype)
    matmul(v, u, out=m)  # 16 products (P × C) @ (C × F), one per transform point
    out = output_transform(m, bias, relu, (x.shape[0], out_hw[0], out_hw[1], u.shape[2]))
    return out, (v, u, pads, x.shape)


def backward(g: np.ndarray, saved: tuple, want_input: bool, want_kernel: bool):
    """``(dx, dkernel)`` for the output gradient ``g`` (the ReLU's mask applied, no bias), each
    None when not wanted."""
    v, u, pads, x_shape = saved
    dm = output_grad(g.astype(v.dtype, copy=False))
    dx = dk = None
    if want_kernel:
        # dU = Vᵀ·dM per point, computed as (dMᵀ·V)ᵀ: OpenBLAS' own kernels run that orientation
        # faster (the convnet's second convolution: 2.6-3.1 against 3.5-3.9 ms), the Haswell
        # ones about as fast (2.7-3.4 against 3.2-3.6)
        dk = kernel_grad(matmul(dm.transpose(0, 2, 1), v).transpose(0, 2, 1))
    if want_input:
        dv = point_matrices(v.shape[1], v.shape[2], v.dtype)
        matmul(dm, u.transpose(0, 2, 1), out=dv)
        dx = input_grad(dv, pads, g.shape[1:3], x_shape)
    return dx, dk
