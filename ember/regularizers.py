"""Weight penalties added to the training loss (and reported in it).

Example:
    >>> layer = ember.layers.Dense(8, kernel_regularizer=ember.regularizers.L2(1e-4))
"""

from __future__ import annotations

from ember import _registry, ops
from ember._registry import lookup
from ember.tensor import Tensor


class Regularizer:
    def __call__(self, weight: Tensor) -> Tensor:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}


class L1L2(Regularizer):
    """l1 · Σ|w| + l2 · Σw² (Keras' definition: no factor ½)."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        if l1 < 0 or l2 < 0:
            raise ValueError(f"regularization factors must be >= 0, got l1={l1}, l2={l2}")
        self.l1, self.l2 = float(l1), float(l2)

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
    """l1 · Σ|w|."""

    def __init__(self, l1: float = 0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """l2 · Σw²."""

    def __init__(self, l2: float = 0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


_REGULARIZERS = {"l1": L1, "l2": L2, "l1_l2": L1L2, "l1l2": L1L2}


def get(identifier):
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        return lookup("regularizer", identifier, _REGULARIZERS)()
    if callable(identifier):
        return identifier
    raise TypeError(f"regularizer must be a name or a Regularizer, got {identifier!r}")


def serialize(regularizer) -> dict | None:
    if regularizer is None:
        return None
    return _registry.serialize("regularizer", regularizer, _REGULARIZERS)


def deserialize(spec):
    if spec is None:
        return None
    return _registry.deserialize("regularizer", spec, _REGULARIZERS)
