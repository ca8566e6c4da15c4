"""Differentiable image resampling: ``resize`` and ``affine_transform`` (Keras' ``ops.image``
names and conventions), each forward beside its backward.

Both are gathers with index and weight arrays computed once per call, never a Python loop over
pixels: ``resize`` is separable, so it gathers along the height axis and then along the width
axis (two source indices and two weights per output row or column, or one index for
``"nearest"``); ``affine_transform`` maps every output pixel to a point of the input and gathers
its four neighbours (bilinear) or its nearest pixel. The backward passes scatter the upstream
gradient with the same indices and weights (``np.add.at``, so indices hit several times
accumulate).

Conventions (those of ``tf.image.resize`` and Keras 3 without antialiasing, and of
``torch.nn.functional.interpolate(..., align_corners=False)``): pixel ``i`` covers ``[i, i+1)``
and its centre is at ``i + 0.5`` ("half-pixel centres"). Output pixel ``o`` of an axis resized from
``n`` to ``m`` samples the input at ``(o + 0.5) · n/m − 0.5`` (bilinear, clamped to the first and
last pixel) or takes pixel ``floor((o + 0.5) · n/m)`` (nearest).

Images are ``(N, H, W, C)`` (``data_format="channels_last"``, the default) or ``(N, C, H, W)``;
a single 3-D image is accepted as well. Float32 stays float32: index arithmetic is done in
float64 and only the weights, cast to the images' dtype, touch the pixel values.
"""

from __future__ import annotations

import numpy as np

from ember.backend import DEFAULT_FLOAT, xp
from ember.ops._core import as_tensor
from ember.ops.elementwise import cast
from ember.ops.shape import getitem, pad, reshape
from ember.tensor import Tensor

__all__ = [
    "resize",
    "affine_transform",
    "RESIZE_INTERPOLATIONS",
    "AFFINE_INTERPOLATIONS",
    "FILL_MODES",
]

RESIZE_INTERPOLATIONS = ("bilinear", "nearest")
AFFINE_INTERPOLATIONS = ("bilinear", "nearest")
#: How points outside the image are filled (Keras' names):
#: ``"constant"`` ``k k k k | a b c d | k k k k``, ``"nearest"`` ``a a a a | a b c d | d d d d``,
#: ``"reflect"`` ``d c b a | a b c d | d c b a`` and ``"wrap"`` ``a b c d | a b c d | a b c d``.
FILL_MODES = ("constant", "nearest", "reflect", "wrap")
# Keras methods that Ember does not implement: named in the error, so it is not a mere typo.
_NOT_IMPLEMENTED_INTERPOLATIONS = ("bicubic", "area", "lanczos3", "lanczos5", "gaussian")


# --------------------------------------------------------------------------------------------
# Argument checks shared with the image layers.
# --------------------------------------------------------------------------------------------
def check_interpolation(owner: str, value, allowed: tuple[str, ...] = RESIZE_INTERPOLATIONS) -> str:
    """``value`` if it is one of ``allowed``; a ``NotImplementedError`` for a Keras method Ember
    lacks, a ``ValueError`` for anything else. ``owner`` names the op or layer in the message."""
    if isinstance(value, str) and value.lower() in allowed:
        return value.lower()
    if isinstance(value, str) and value.lower() in _NOT_IMPLEMENTED_INTERPOLATIONS:
        raise NotImplementedError(
            f"{owner}: interpolation {value!r} is not implemented in Ember; use one of {allowed}"
        )
    raise ValueError(f"{owner}: interpolation must be one of {allowed}, got {value!r}")


def check_fill_mode(owner: str, value) -> str:
    if isinstance(value, str) and value.lower() in FILL_MODES:
        return value.lower()
    raise ValueError(f"{owner}: fill_mode must be one of {FILL_MODES}, got {value!r}")


def _check_data_format(owner: str, value) -> str:
    value = "channels_last" if value is None else str(value).lower()
    if value not in ("channels_last", "channels_first"):
        raise ValueError(
            f'{owner}: data_format must be "channels_last" or "channels_first", got {value!r}'
        )
    return value


def _as_images(owner: str, images) -> Tensor:
    x = as_tensor(images)
    if x.ndim not in (3, 4):
        raise ValueError(
            f"{owner}: expected images of rank 4 (a batch) or 3 (one image), got shape {x.shape}"
        )
    if x.dtype.kind != "f":
        x = cast(x, DEFAULT_FLOAT)  # integer pixels (uint8) are resampled as floats
    return x


def fold_indices(index: np.ndarray, size: int, fill_mode: str) -> np.ndarray:
    """Map integer pixel indices that fall outside ``[0, size)`` back inside, as ``fill_mode``
    says; ``"constant"`` indices are clipped here and masked by the caller.

    Example:
        >>> ember.ops.image.fold_indices(np.arange(-3, 7), 4, "reflect")
        array([2, 1, 0, 0, 1, 2, 3, 3, 2, 1])
    """
    if fill_mode in ("constant", "nearest"):
        return np.clip(index, 0, size - 1)
    if fill_mode == "wrap":
        return np.mod(index, size)
    # reflect about the outer border of the edge pixels: ... 2 1 0 | 0 1 2 ... (Keras' "reflect")
    period = 2 * size
    folded = np.mod(index, period)
    return np.where(folded < size, folded, period - 1 - folded)


# --------------------------------------------------------------------------------------------
# resize: one gather per spatial axis.
# --------------------------------------------------------------------------------------------
def _axis_plan(in_size: int, out_size: int, interpolation: str):
    """Where each of ``out_size`` output positions reads the ``in_size`` input positions of an
    axis: ``(lower, upper, fraction)``, the output being ``(1 − fraction)·x[lower] +
    fraction·x[upper]``; ``upper``/``fraction`` are None for nearest. None for an unchanged axis.
    """
    if in_size == out_size:
        return None
    centres = (np.arange(out_size, dtype=np.float64) + 0.5) * (in_size / out_size)
    if interpolation == "nearest":
        return np.minimum(np.floor(centres).astype(np.intp), in_size - 1), None, None
    source = np.maximum(centres - 0.5, 0.0)  # before the first centre: the first pixel
    lower = np.minimum(np.floor(source).astype(np.intp), in_size - 1)
    upper = np.minimum(lower + 1, in_size - 1)  # past the last centre: the last pixel
    return lower, upper, source - lower


def _along(weights: np.ndarray, axis: int, ndim: int, dtype) -> np.ndarray:
    shape = [1] * ndim
    shape[axis] = -1
    return weights.astype(dtype).reshape(shape)


def _gather_axis(data: np.ndarray, axis: int, plan) -> np.ndarray:
    if plan is None:
        return data
    lower, upper, fraction = plan
    out = xp.take(data, lower, axis=axis)
    if upper is None:
        return out
    t = _along(fraction, axis, data.ndim, data.dtype)
    return out * (1 - t) + xp.take(data, upper, axis=axis) * t


def _scatter_axis(g: np.ndarray, axis: int, size: int, plan) -> np.ndarray:
    """The transpose of :func:`_gather_axis`: each output position's gradient goes back to the
    input positions it read, with the same weights."""
    if plan is None:
        return g
    lower, upper, fraction = plan
    shape = list(g.shape)
    shape[axis] = size
    full = xp.zeros(shape, dtype=g.dtype)
    target = xp.moveaxis(full, axis, 0)  # a view: adding into it fills `full`
    moved = xp.moveaxis(g, axis, 0)
    if upper is None:
        xp.add.at(target, lower, moved)
        return full
    t = _along(fraction, 0, g.ndim, g.dtype)
    xp.add.at(target, lower, moved * (1 - t))
    xp.add.at(target, upper, moved * t)
    return full


def _resize_core(x: Tensor, out_h: int, out_w: int, interpolation: str, h_axis: int) -> Tensor:
    w_axis = h_axis + 1
    in_h, in_w = x.shape[h_axis], x.shape[w_axis]
    rows = _axis_plan(in_h, out_h, interpolation)
    cols = _axis_plan(in_w, out_w, interpolation)
    out = _gather_axis(_gather_axis(x.data, h_axis, rows), w_axis, cols)
    if out is x.data:
        out = out.copy()

    def backward(g):
        return (_scatter_axis(_scatter_axis(g, w_axis, in_w, cols), h_axis, in_h, rows),)

    return Tensor._from_op(out, (x,), backward, "resize")


def _positive_size(owner: str, size) -> tuple[int, int]:
    try:
        height, width = size
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: size must be a pair (height, width), got {size!r}") from None
    for name, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return int(height), int(width)


def resize(
    images,
    size,
    interpolation: str = "bilinear",
    antialias: bool = False,
    crop_to_aspect_ratio: bool = False,
    pad_to_aspect_ratio: bool = False,
    fill_mode: str = "constant",
    fill_value: float = 0.0,
    data_format: str | None = None,
) -> Tensor:
    """Resize images to ``size = (height, width)`` (Keras' ``ops.image.resize``).

    ``interpolation`` is ``"bilinear"`` (half-pixel centres, as ``tf.image.resize`` and
    ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``) or ``"nearest"``
    (pixel ``floor((o + 0.5) · in/out)``, PyTorch's ``"nearest-exact"``). ``antialias=True`` is
    accepted when no axis shrinks (it changes nothing then) and refused otherwise.
    ``crop_to_aspect_ratio`` first crops the largest centred window with the target's aspect
    ratio; ``pad_to_aspect_ratio`` instead pads the image (centred) with ``fill_value`` to that
    aspect ratio, so nothing is distorted.

    Differentiable: the gradient goes back to the pixels each output pixel read, with the
    interpolation weights.

    Example:
        >>> image = np.array([[0.0, 4.0], [8.0, 12.0]], np.float32).reshape(1, 2, 2, 1)
        >>> ember.ops.image.resize(image, (4, 4)).numpy()[0, :, :, 0]
        array([[ 0.,  1.,  3.,  4.],
               [ 2.,  3.,  5.,  6.],
               [ 6.,  7.,  9., 10.],
               [ 8.,  9., 11., 12.]], dtype=float32)
    """
    owner = "resize"
    out_h, out_w = _positive_size(owner, size)
    interpolation = check_interpolation(owner, interpolation)
    data_format = _check_data_format(owner, data_format)
    if fill_mode != "constant":
        raise ValueError(f'{owner}: fill_mode must be "constant" (the padding), got {fill_mode!r}')
    if crop_to_aspect_ratio and pad_to_aspect_ratio:
        raise ValueError(
            f"{owner}: crop_to_aspect_ratio and pad_to_aspect_ratio exclude each other"
        )
    x = _as_images(owner, images)
    batched = x.ndim == 4
    if not batched:
        x = reshape(x, (1, *x.shape))
    h_axis = 1 if data_format == "channels_last" else 2
    height, width = x.shape[h_axis], x.shape[h_axis + 1]
    if crop_to_aspect_ratio and height and width:
        crop_h = max(min(height, width * out_h // out_w), 1)
        crop_w = max(min(width, height * out_w // out_h), 1)
        top, left = (height - crop_h) // 2, (width - crop_w) // 2
        window = [slice(None)] * 4
        window[h_axis] = slice(top, top + crop_h)
        window[h_axis + 1] = slice(left, left + crop_w)
        x = getitem(x, tuple(window))
    elif pad_to_aspect_ratio and height and width:
        padded_h = max(height, width * out_h // out_w)
        padded_w = max(width, height * out_w // out_h)
        top, left = (padded_h - height) // 2, (padded_w - width) // 2
        widths = [(0, 0)] * 4
        widths[h_axis] = (top, padded_h - height - top)
        widths[h_axis + 1] = (left, padded_w - width - left)
        x = pad(x, widths, constant_values=float(fill_value))
    if antialias and (x.shape[h_axis] > out_h or x.shape[h_axis + 1] > out_w):
        raise NotImplementedError(
            f"{owner}: antialias=True is not implemented for downsampling (from "
            f"{x.shape[h_axis]}x{x.shape[h_axis + 1]} to {out_h}x{out_w}); pass antialias=False"
        )
    out = _resize_core(x, out_h, out_w, interpolation, h_axis)
    return out if batched else reshape(out, out.shape[1:])


# --------------------------------------------------------------------------------------------
# affine_transform: one 2-D gather with per-image coordinates.
# --------------------------------------------------------------------------------------------
def _source_points(transform: np.ndarray, height: int, width: int):
    """Input coordinates ``(rows, cols)``, each ``(N, H, W)`` float64, that every output pixel
    maps to, and a mask of the points whose projective denominator is 0 (filled)."""
    a0, a1, a2, b0, b1, b2, c0, c1 = (transform[:, i, None, None] for i in range(8))
    y = np.arange(height, dtype=np.float64)[None, :, None]
    x = np.arange(width, dtype=np.float64)[None, None, :]
    k = c0 * x + c1 * y + 1.0
    degenerate = k == 0
    k = np.where(degenerate, 1.0, k)
    cols = (a0 * x + a1 * y + a2) / k
    rows = (b0 * x + b1 * y + b2) / k
    return rows, cols, degenerate


def _to_index(coord: np.ndarray, size: int, fill_mode: str) -> np.ndarray:
    """Integral float coordinates to integer indices inside ``[0, size)`` per ``fill_mode``,
    reduced before the integer conversion so that far-away points cannot overflow."""
    if fill_mode == "wrap":
        coord = np.mod(coord, size)
    elif fill_mode == "reflect":
        coord = np.mod(coord, 2 * size)
    else:  # constant (masked by the caller) and nearest
        coord = np.clip(coord, 0, size - 1)
    return fold_indices(coord.astype(np.intp), size, fill_mode)


def _snap(coord: np.ndarray) -> np.ndarray:
    """Coordinates within 1e-9 of a whole pixel are that pixel: cos(pi/2) is 6e-17, not 0, and
    a quarter turn should copy pixels exactly rather than mix in a 1e-16 of a neighbour."""
    nearest = np.rint(coord)
    return np.where(np.abs(coord - nearest) < 1e-9, nearest, coord)


def _corners(rows, cols, degenerate, height, width, interpolation, fill_mode):
    """The pixels each output pixel reads: a list of ``(row, col, weight, inside)`` with integer
    ``(N, H, W)`` indices already folded inside the image, float64 weights and the mask of reads
    that fall inside the image and away from degenerate points."""
    rows, cols = _snap(rows), _snap(cols)
    if interpolation == "nearest":
        taps = [(np.floor(rows + 0.5), np.floor(cols + 0.5), np.ones_like(rows))]
    else:
        r0, c0 = np.floor(rows), np.floor(cols)
        fr, fc = rows - r0, cols - c0
        taps = [
            (r0, c0, (1 - fr) * (1 - fc)),
            (r0, c0 + 1, (1 - fr) * fc),
            (r0 + 1, c0, fr * (1 - fc)),
            (r0 + 1, c0 + 1, fr * fc),
        ]
    corners = []
    for r, c, weight in taps:
        inside = (r >= 0) & (r < height) & (c >= 0) & (c < width) & ~degenerate
        corners.append(
            (_to_index(r, height, fill_mode), _to_index(c, width, fill_mode), weight, inside)
        )
    return corners


def affine_transform(
    images,
    transform,
    interpolation: str = "bilinear",
    fill_mode: str = "constant",
    fill_value: float = 0.0,
    data_format: str | None = None,
) -> Tensor:
    """Apply a projective transform to each image (Keras' ``ops.image.affine_transform``).

    ``transform`` is ``[a0, a1, a2, b0, b1, b2, c0, c1]`` (one row per image, or one row for
    all): output pixel ``(x, y)`` (column, row) takes the input at
    ``((a0·x + a1·y + a2) / k, (b0·x + b1·y + b2) / k)`` with ``k = c0·x + c1·y + 1``.
    ``interpolation`` is ``"bilinear"`` (the four neighbours) or ``"nearest"`` (the closest pixel,
    halves rounded up). Reads outside the image follow ``fill_mode`` (see :data:`FILL_MODES`);
    with ``"constant"`` every neighbour outside the image reads ``fill_value``.

    Differentiable with respect to ``images`` (not ``transform``): the gradient is scattered back
    to the pixels read, with the interpolation weights.

    Example:
        >>> image = np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1)
        >>> shift_right = [1, 0, -1, 0, 1, 0, 0, 0]     # output (x, y) reads input (x - 1, y)
        >>> ember.ops.image.affine_transform(image, shift_right).numpy()[0, :, :, 0]
        array([[0., 0., 1.],
               [0., 3., 4.],
               [0., 6., 7.]], dtype=float32)
    """
    owner = "affine_transform"
    interpolation = check_interpolation(owner, interpolation, AFFINE_INTERPOLATIONS)
    fill_mode = check_fill_mode(owner, fill_mode)
    data_format = _check_data_format(owner, data_format)
    x = _as_images(owner, images)
    batched = x.ndim == 4
    if not batched:
        x = reshape(x, (1, *x.shape))
    matrix = np.asarray(transform.data if isinstance(transform, Tensor) else transform)
    if matrix.dtype.kind not in "iuf":
        raise TypeError(f"{owner}: transform must hold numbers, got dtype {matrix.dtype}")
    matrix = matrix.astype(np.float64)
    if matrix.ndim == 1:
        matrix = matrix[None]
    n = x.shape[0]
    if matrix.ndim != 2 or matrix.shape[1] != 8 or matrix.shape[0] not in (1, n):
        raise ValueError(
            f"{owner}: transform must have shape (8,) or ({n}, 8) for {n} images, got "
            f"{np.shape(transform)}"
        )
    if not np.isfinite(matrix).all():
        raise ValueError(f"{owner}: transform contains NaN or inf")
    matrix = np.broadcast_to(matrix, (n, 8))
    try:
        fill = float(fill_value)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: fill_value must be a number, got {fill_value!r}") from None

    channels_first = data_format == "channels_first"
    data = xp.moveaxis(x.data, 1, -1) if channels_first else x.data  # (N, H, W, C)
    _, height, width, channels = data.shape
    rows, cols, degenerate = _source_points(matrix, height, width)
    corners = _corners(rows, cols, degenerate, height, width, interpolation, fill_mode)
    batch = np.arange(n)[:, None, None] * (height * width)
    flat = data.reshape(n * height * width, channels)
    dtype = x.dtype
    taps = []  # (flat indices (N, H, W), weights (N, H, W, 1) in the images' dtype)
    outside = np.zeros(rows.shape, dtype=np.float64)
    for r, c, weight, inside in corners:
        # reads that get fill_value: outside the image with "constant"; in every mode, the
        # points a projective transform sends to infinity (k = 0)
        read = inside if fill_mode == "constant" else ~degenerate
        outside += np.where(read, 0.0, weight)
        taps.append((batch + r * width + c, np.where(read, weight, 0.0).astype(dtype)[..., None]))
    out = xp.zeros((n, height, width, channels), dtype=dtype)
    for index, weight in taps:
        out += flat[index] * weight
    if fill != 0.0 and outside.any():
        out += (outside * fill).astype(dtype)[..., None]
    if channels_first:
        out = xp.ascontiguousarray(xp.moveaxis(out, -1, 1))

    def backward(g):
        grad = xp.moveaxis(g, 1, -1) if channels_first else g
        full = xp.zeros((n * height * width, channels), dtype=g.dtype)
        for index, weight in taps:
            xp.add.at(full, index.reshape(-1), (grad * weight).reshape(-1, channels))
        full = full.reshape(n, height, width, channels)
        return (xp.ascontiguousarray(xp.moveaxis(full, -1, 1)) if channels_first else full,)

    result = Tensor._from_op(out, (x,), backward, "affine_transform")
    return result if batched else reshape(result, result.shape[1:])
