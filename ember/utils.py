"""Helpers for hand-written training loops: gradient clipping with PyTorch's semantics, and
Keras' :func:`to_categorical` for one-hot labels, :func:`pad_sequences` (from
:mod:`ember.text`) for batches of sequences, and :func:`array_to_img` / :func:`img_to_array`
between arrays and Pillow images.

Example:
    >>> x, y = np.random.rand(8, 4).astype("float32"), np.random.rand(8, 1).astype("float32")
    >>> model = ember.models.Sequential([ember.layers.Input(shape=(4,)), ember.layers.Dense(1)])
    >>> opt = ember.optimizers.SGD(model.parameters(), learning_rate=0.1)
    >>> loss = ember.losses.mean_squared_error(y, model(x)).mean()
    >>> opt.zero_grad(); loss.backward()
    >>> total = ember.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    >>> opt.step()

Both functions replace ``p.grad`` by a clipped *new* array (``p.grad = clipped``) rather than
writing into the old one: two leaves may share one gradient array, and an in-place write would
clip it twice. From the user's side the effect is PyTorch's: after the call ``p.grad`` holds the
clipped gradient. (The optimizers' own ``clipnorm=``/``clipvalue=``/``global_clipnorm=`` leave
``p.grad`` untouched and clip only the copy they use for the update.)
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ember.backend import xp
from ember.tensor import Tensor
from ember.text import pad_sequences

__all__ = [
    "clip_grad_norm_",
    "clip_grad_value_",
    "grad_norm",
    "clip_coefficient",
    "to_categorical",
    "pad_sequences",
    "array_to_img",
    "img_to_array",
]


def _with_grads(parameters) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p for p in parameters if p.grad is not None]


def grad_norm(grads: Iterable, norm_type: float = 2.0) -> float:
    """The ``norm_type``-norm of all arrays in ``grads`` taken together (as one long vector).

    Example:
        >>> grads = [np.array([3.0, 0.0]), np.array([[4.0]])]
        >>> ember.utils.grad_norm(grads)
        5.0
        >>> ember.utils.grad_norm(grads, norm_type=float("inf"))
        4.0
    """
    norm_type = float(norm_type)
    norms = [float(xp.linalg.norm(xp.ravel(g), ord=norm_type)) for g in grads]
    if not norms:
        return 0.0
    if math.isinf(norm_type):
        return max(norms)
    return float(xp.linalg.norm(xp.asarray(norms, dtype=xp.float64), ord=norm_type))


def clip_coefficient(total_norm: float, max_norm: float) -> float:
    """PyTorch's factor ``min(1, max_norm / (total_norm + 1e-6))`` (the 1e-6 guards ``0/0``).

    Example:
        >>> ember.utils.clip_coefficient(5.0, max_norm=1.0)  # gradients scaled by ≈ 0.2
        0.19999...
        >>> ember.utils.clip_coefficient(0.5, max_norm=1.0)  # already small enough: unchanged
        1.0
    """
    return min(1.0, max_norm / (total_norm + 1e-6))


def clip_grad_norm_(
    parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False
) -> float:
    """Scale the gradients of ``parameters`` so that their joint norm is at most ``max_norm``.

    PyTorch's ``torch.nn.utils.clip_grad_norm_``: the total norm is that of all gradients
    concatenated; every gradient is multiplied by ``min(1, max_norm / (total + 1e-6))``.
    Parameters whose ``.grad`` is ``None`` are ignored. Returns the total norm *before* clipping
    (a float). ``norm_type`` may be ``float('inf')`` (largest absolute entry).

    Example:
        >>> w = ember.tensor([3.0, 4.0], requires_grad=True)
        >>> (w * w).sum().backward()            # w.grad = 2w = [6, 8], norm 10
        >>> ember.utils.clip_grad_norm_([w], max_norm=1.0)
        10.0
        >>> w.grad.round(3)                     # rescaled to norm 1
        array([0.6, 0.8], dtype=float32)
    """
    if max_norm is None or isinstance(max_norm, bool) or not max_norm >= 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be a number >= 0, got {max_norm!r}")
    params = _with_grads(parameters)
    total = grad_norm([p.grad for p in params], norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is {total}; "
            "pass error_if_nonfinite=False to clip anyway"
        )
    coef = clip_coefficient(total, float(max_norm))
    if coef < 1.0:
        for p in params:
            p.grad = p.grad * coef  # a new array: never write into a possibly shared gradient
    return total


def clip_grad_value_(parameters, clip_value: float) -> None:
    """Clip every gradient entry to ``[-clip_value, clip_value]`` (``torch.nn.utils``' semantics).

    Example:
        >>> w = ember.tensor([0.1, 3.0], requires_grad=True)
        >>> (w * w).sum().backward()            # w.grad = 2w = [0.2, 6]
        >>> ember.utils.clip_grad_value_([w], clip_value=0.5)
        >>> w.grad
        array([0.2, 0.5], dtype=float32)
    """
    if clip_value is None or isinstance(clip_value, bool) or not clip_value >= 0:
        raise ValueError(f"clip_grad_value_: clip_value must be a number >= 0, got {clip_value!r}")
    for p in _with_grads(parameters):
        p.grad = xp.clip(p.grad, -clip_value, clip_value)


def to_categorical(
    y, num_classes: int | None = None, dtype: str | type | np.dtype = "float32"
) -> np.ndarray:
    """One-hot encode integer class labels (Keras' ``to_categorical``).

    Labels of shape ``(N,)`` or ``(N, 1)`` give an array of shape ``(N, num_classes)`` with a 1
    in column ``y[i]`` of row ``i`` (in general a trailing axis of size 1 is dropped and a class
    axis is appended). ``num_classes`` defaults to ``max(y) + 1``. Returns a NumPy array of
    ``dtype`` (float32 by default), ready for ``CategoricalCrossentropy``.

    Raises ``ValueError`` for negative labels, labels ``>= num_classes`` and non-integer labels
    (float labels must be whole numbers), naming the first offending index.

    Example:
        >>> ember.utils.to_categorical([0, 2, 1])
        array([[1., 0., 0.],
               [0., 0., 1.],
               [0., 1., 0.]], dtype=float32)
        >>> ember.utils.to_categorical(np.array([[1], [0]]), num_classes=4).shape
        (2, 4)
    """
    labels = np.asarray(y.data if isinstance(y, Tensor) else y)
    if labels.dtype.kind not in "biuf":
        raise TypeError(
            f"to_categorical: y must hold integer class labels, got an array of dtype "
            f"{labels.dtype}; map the labels to 0..num_classes-1 first"
        )
    shape = labels.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    labels = labels.reshape(shape)
    flat = labels.reshape(-1)

    def where(position: int):
        index = np.unravel_index(position, shape) if shape else ()
        return int(index[0]) if len(index) == 1 else tuple(int(i) for i in index)

    if labels.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(flat) | (flat != np.round(flat)))
        if bad.size:
            raise ValueError(
                f"to_categorical: y must hold whole-number class labels; y[{where(bad[0])}] = "
                f"{flat[bad[0]].item()!r}"
            )
    flat = flat.astype(np.int64)
    if num_classes is None:
        if flat.size == 0:
            raise ValueError(
                "to_categorical: y is empty, so num_classes cannot be inferred; pass num_classes"
            )
        num_classes = int(flat.max()) + 1
    elif isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise TypeError(f"to_categorical: num_classes must be an integer, got {num_classes!r}")
    elif num_classes < 1:
        raise ValueError(f"to_categorical: num_classes must be >= 1, got {num_classes}")
    bad = np.flatnonzero((flat < 0) | (flat >= num_classes))
    if bad.size:
        first = int(bad[0])
        raise ValueError(
            f"to_categorical: labels must be in [0, {num_classes - 1}] (num_classes="
            f"{num_classes}); y[{where(first)}] = {flat[first]} is out of range"
            + (" (negative labels are never valid)" if flat[first] < 0 else "")
        )
    one_hot = np.zeros((flat.size, int(num_classes)), dtype=dtype)
    one_hot[np.arange(flat.size), flat] = 1
    return one_hot.reshape(*shape, int(num_classes))


_IMAGE_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def array_to_img(x, scale: bool = True, dtype: str = "float32"):
    """A ``(height, width, channels)`` array or tensor as a Pillow image (``keras.utils.
    array_to_img``): 1 channel gives a grey ``"L"`` image, 3 ``"RGB"``, 4 ``"RGBA"``. With
    ``scale`` the values are shifted and stretched to span 0..255 first; otherwise they must
    already be in 0..255. Needs Pillow (installed with matplotlib, or ``pip install pillow``).

    Example:
        >>> img = ember.utils.array_to_img(np.array([[[0.0], [1.0]]]))
        >>> img.mode, img.size, np.asarray(img).tolist()
        ('L', (2, 1), [[0, 255]])
    """
    try:
        from PIL import Image
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("array_to_img needs Pillow: `pip install pillow`") from err
    array = np.array(x.numpy() if isinstance(x, Tensor) else x, dtype=dtype)
    if array.ndim != 3 or array.shape[-1] not in _IMAGE_MODES:
        raise ValueError(
            "array_to_img: expected an image of shape (height, width, channels) with 1, 3 or 4 "
            f"channels (channels last), got shape {array.shape}; for a batch pick one image, "
            "x[i]"
        )
    if scale:
        array -= array.min()
        if array.max() != 0:
            array /= array.max()
        array *= 255
    pixels = np.clip(array, 0, 255).astype(np.uint8)  # Keras truncates too
    mode = _IMAGE_MODES[array.shape[-1]]
    return Image.fromarray(pixels[..., 0] if mode == "L" else pixels, mode)


def img_to_array(img, dtype: str = "float32") -> np.ndarray:
    """A Pillow image as a ``(height, width, channels)`` array (``keras.utils.img_to_array``).

    Example:
        >>> ember.utils.img_to_array(ember.utils.array_to_img(np.zeros((2, 3, 3)))).shape
        (2, 3, 3)
    """
    array = np.asarray(img, dtype=dtype)
    return array[..., None] if array.ndim == 2 else array
