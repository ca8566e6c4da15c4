"""Helpers for hand-written training loops: gradient clipping with PyTorch's semantics.

Example:
    >>> x, y = np.random.rand(8, 4).astype("float32"), np.random.rand(8, 1).astype("float32")
    >>> model = ember.models.Sequential([ember.layers.Input(shape=(4,)), ember.layers.Dense(1)])
    >>> opt = ember.optimizers.SGD(model.parameters(), learning_rate=0.1)
    >>> loss = ember.losses.mean_squared_error(y, model(x))
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

from ember.backend import xp
from ember.tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_", "grad_norm", "clip_coefficient"]


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
