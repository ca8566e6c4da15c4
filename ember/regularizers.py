"""Weight penalties added to the training loss (and reported in it).

A regularizer maps a weight (or a layer's output, for ``activity_regularizer``) to a scalar
penalty. Layers collect their penalties in ``layer.losses`` after each forward pass; ``fit``
adds them to the loss it minimises, and both ``fit`` and ``evaluate`` report the loss *with* the
penalties (Keras).

L2 regularization is **not** the same as an optimizer's ``weight_decay``: an L2 penalty
``l2·Σw²`` adds ``2·l2·w`` to the gradient, which adaptive optimizers such as Adam then rescale,
while ``weight_decay`` (``AdamW``, and every Keras 3 optimizer) shrinks the weight directly,
``w -= lr·wd·w``, outside the gradient. They coincide only for plain SGD (with ``wd = 2·l2``).

Names for ``get``: ``"l1"`` (``L1(0.01)``), ``"l2"`` (``L2(0.01)``) and ``"l1_l2"`` / ``"l1l2"``
(``L1L2(l1=0.01, l2=0.01)``, Keras' ``l1_l2()`` defaults; the class itself defaults to 0, 0).

Example:
    >>> layer = ember.layers.Dense(8, kernel_regularizer=ember.regularizers.L2(1e-4),
    ...                            bias_regularizer="l1", activity_regularizer="l2")
    >>> ember.regularizers.L2(0.1)(ember.tensor([[1.0, -2.0]])).item()   # 0.1 · (1 + 4)
    0.5
"""

from __future__ import annotations

import math

import numpy as np

from ember import _registry, ops
from ember._registry import lookup
from ember.tensor import Tensor


class Regularizer:
    """Base class: ``__call__(weight) -> scalar Tensor`` and ``get_config``.

    Example (a custom penalty):
        >>> class SumSquares(ember.regularizers.Regularizer):
        ...     def __call__(self, w):
        ...         return 0.5 * ember.ops.sum(w * w)
    """

    def __call__(self, weight: Tensor) -> Tensor:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _check_factor(owner: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{owner}: {name} must be a number >= 0, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{owner}: {name} must be >= 0 and finite, got {name}={value}")
    return float(value)


class L1L2(Regularizer):
    """``l1 · Σ|w| + l2 · Σw²`` (Keras' definition: no factor ½).

    Example:
        >>> ember.regularizers.L1L2(l1=0.1, l2=0.1)(ember.tensor([1.0, -2.0])).item()
        0.800000011920929
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        owner = type(self).__name__
        self.l1 = _check_factor(owner, "l1", l1)
        self.l2 = _check_factor(owner, "l2", l2)

    def __call__(self, weight):
        penalty = None
        if self.l1:
            penalty = self.l1 * ops.sum(ops.abs(weight))
        if self.l2:
            term = self.l2 * ops.sum(weight * weight)
            penalty = term if penalty is None else penalty + term
        return penalty if penalty is not None else ops.sum(weight * 0.0)

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """``l1 · Σ|w|`` (lasso; drives weights to exactly zero). Keras default ``l1=0.01``.

    Example:
        >>> round(ember.regularizers.L1(0.1)(ember.tensor([1.0, -2.0])).item(), 6)
        0.3
    """

    def __init__(self, l1: float = 0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """``l2 · Σw²`` (ridge / Tikhonov; gradient ``2·l2·w``). Keras default ``l2=0.01``.

    Example:
        >>> ember.regularizers.L2(0.1)(ember.tensor([1.0, -2.0])).item()
        0.5
    """

    def __init__(self, l2: float = 0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


def l1(l1: float = 0.01) -> L1:
    """Keras' lower-case spelling: ``ember.regularizers.l1(0.01)`` is ``L1(0.01)``.

    Example:
        >>> ember.regularizers.l1(0.001)
        L1(l1=0.001)
    """
    return L1(l1)


def l2(l2: float = 0.01) -> L2:
    """Keras' lower-case spelling: ``ember.regularizers.l2(0.01)`` is ``L2(0.01)``.

    Example:
        >>> ember.regularizers.l2(0.001)
        L2(l2=0.001)
    """
    return L2(l2)


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> L1L2:
    """Keras' lower-case spelling of :class:`L1L2`, with the defaults of Keras' ``l1_l2()``
    helper and of the name ``"l1_l2"`` (0.01 each; the class itself defaults to 0, 0).

    Example:
        >>> ember.regularizers.l1_l2(l2=0.001)
        L1L2(l1=0.01, l2=0.001)
    """
    return L1L2(l1=l1, l2=l2)


_REGULARIZERS = {"l1": L1, "l2": L2, "l1_l2": L1L2, "l1l2": L1L2}
# What a bare string name builds: Keras' l1()/l2()/l1_l2() helpers all default to 0.01.
_BY_NAME = {
    "l1": lambda: L1(0.01),
    "l2": lambda: L2(0.01),
    "l1_l2": lambda: L1L2(l1=0.01, l2=0.01),
    "l1l2": lambda: L1L2(l1=0.01, l2=0.01),
}


def get(identifier):
    """A regularizer from a name (``"l1"``, ``"l2"``, ``"l1l2"``), an object, a callable or
    ``None``.

    Example:
        >>> ember.regularizers.get("l2")
        L2(l2=0.01)
    """
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        return lookup("regularizer", identifier, _BY_NAME)()
    if isinstance(identifier, dict) and "name" in identifier:
        return deserialize(identifier)
    if callable(identifier):
        return identifier
    raise TypeError(
        f"regularizer must be a name ({', '.join(sorted(_BY_NAME))}), a Regularizer or None, "
        f"got {identifier!r}"
    )


def serialize(regularizer) -> dict | None:
    """A built-in regularizer's ``{'name': ..., 'config': ...}``; ``None`` stays ``None``.

    Example:
        >>> ember.regularizers.serialize(ember.regularizers.L2(0.001))
        {'name': 'l2', 'config': {'l2': 0.001}}
    """
    if regularizer is None:
        return None
    return _registry.serialize("regularizer", regularizer, _REGULARIZERS)


def deserialize(spec):
    """Rebuild a regularizer from :func:`serialize`'s output; ``None`` stays ``None``.

    Example:
        >>> ember.regularizers.deserialize({"name": "l2", "config": {"l2": 0.001}})
        L2(l2=0.001)
    """
    if spec is None:
        return None
    return _registry.deserialize("regularizer", spec, _REGULARIZERS)
