"""Gradient checking by central finite differences, in float64.

Example:
    >>> import ember
    >>> x = ember.tensor([[0.5, -1.0], [2.0, 3.0]], dtype="float64", requires_grad=True)
    >>> result = ember.gradcheck(lambda t: (t.tanh() * t).sum(axis=1), x)
    >>> result.ok
    True
    >>> print(result)
    gradcheck passed over 4 elements, max |error| ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ember.tensor import Tensor, _set_grad_enabled

__all__ = ["gradcheck", "GradcheckResult", "GradcheckError"]


class GradcheckError(AssertionError):
    """Raised by :func:`gradcheck` when analytic and numeric gradients disagree."""


@dataclass
class GradcheckResult:
    """What :func:`gradcheck` found; ``worst_*`` describe the element with the largest error."""

    ok: bool
    max_abs_error: float
    worst_input: int | None
    worst_index: tuple | None
    analytic: float | None
    numeric: float | None
    checked_elements: int

    def __str__(self) -> str:
        verdict = "passed" if self.ok else "FAILED"
        where = (
            f"; worst: input {self.worst_input} element {self.worst_index}: analytic "
            f"{self.analytic:.8g} vs numeric {self.numeric:.8g}"
            if self.worst_index is not None
            else ""
        )
        return (
            f"gradcheck {verdict} over {self.checked_elements} elements, max |error| "
            f"{self.max_abs_error:.3g}{where}"
        )


def gradcheck(
    fn: Callable[..., Tensor],
    *inputs,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    max_elements: int = 1000,
    seed: int = 0,
    raise_exception: bool = True,
) -> GradcheckResult:
    """Compare the gradients of ``fn`` with central finite differences in float64.

    ``fn`` maps tensors to a tensor of any shape. Its output is contracted with a fixed random
    cotangent ``c`` (not ``.sum()``, so a backward that forgets to multiply by its upstream
    gradient fails), and for every input element ``i`` the analytic ``d(c·fn)/dx_i`` is compared
    with ``(c·fn(x + h e_i) - c·fn(x - h e_i)) / 2h``. Inputs larger than ``max_elements`` are
    checked on a random subset of elements. Also checks that each gradient has its input's shape
    and dtype and that ``fn`` does not modify its inputs.

    Inputs may be tensors or arrays; they are copied to float64 and made to require gradients.
    Non-float inputs (labels, indices) are passed through unchanged.

    Returns a :class:`GradcheckResult`; raises :class:`GradcheckError` on mismatch unless
    ``raise_exception=False``.
    """
    rng = np.random.default_rng(seed)
    tensors = []
    for value in inputs:
        array = value.data if isinstance(value, Tensor) else np.asarray(value)
        if array.dtype.kind == "f":
            tensors.append(Tensor(array.astype(np.float64), requires_grad=True))
        else:
            tensors.append(value if isinstance(value, Tensor) else Tensor(array))
    snapshots = [t.data.copy() for t in tensors]

    with _set_grad_enabled(True):
        out = fn(*tensors)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return an ember.Tensor, got {type(out).__name__}")
    if out.dtype != np.float64:
        raise GradcheckError(
            f"gradcheck: fn returned dtype {out.dtype} for float64 inputs; an op silently casts "
            "(float64 must be kept end to end)"
        )
    cotangent = rng.standard_normal(out.shape)

    def projected(*args) -> float:
        with _set_grad_enabled(False):
            return float(np.sum(fn(*args).data * cotangent))

    differentiable = [i for i, t in enumerate(tensors) if t.requires_grad]
    for t in tensors:
        t.grad = None
    if out.requires_grad:
        out.backward(cotangent)

    worst = GradcheckResult(True, 0.0, None, None, None, None, 0)
    worst_excess = -np.inf
    for i in differentiable:
        t = tensors[i]
        analytic = t.grad if t.grad is not None else np.zeros_like(t.data)
        if analytic.shape != t.shape or analytic.dtype != t.dtype:
            raise GradcheckError(
                f"gradcheck: gradient of input {i} has shape {analytic.shape} and dtype "
                f"{analytic.dtype}; expected {t.shape} and {t.dtype}"
            )
        flat = t.data.reshape(-1)  # a view: perturbing it perturbs the input
        positions = np.arange(flat.size)
        if flat.size > max_elements:
            positions = rng.choice(flat.size, size=max_elements, replace=False)
        for pos in positions:
            original = flat[pos]
            flat[pos] = original + eps
            plus = projected(*tensors)
            flat[pos] = original - eps
            minus = projected(*tensors)
            flat[pos] = original
            numeric = (plus - minus) / (2 * eps)
            value = analytic.reshape(-1)[pos]
            error = abs(value - numeric)
            if not np.isfinite(value) or not np.isfinite(numeric):
                error = 0.0 if value == numeric else np.inf
            excess = error - (atol + rtol * abs(numeric))
            worst.checked_elements += 1
            if excess > worst_excess:
                worst_excess = excess
                worst.worst_input = i
                worst.worst_index = tuple(int(k) for k in np.unravel_index(pos, t.shape))
                worst.analytic = float(value)
                worst.numeric = float(numeric)
            worst.max_abs_error = max(worst.max_abs_error, float(error))
    worst.ok = bool(worst_excess <= 0)  # a Python bool, not np.bool_, as the field says
    for i, (t, snap) in enumerate(zip(tensors, snapshots)):
        if not np.array_equal(t.data, snap, equal_nan=True):
            raise GradcheckError(f"gradcheck: fn modified its input {i} in place")
    if not worst.ok and raise_exception:
        raise GradcheckError(str(worst))
    return worst
