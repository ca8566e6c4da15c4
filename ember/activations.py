"""Activation functions, usable by name (``activation="relu"``) or as functions on tensors.

Example:
    >>> import ember
    >>> ember.activations.get("relu")(ember.tensor([-1.0, 2.0]))
    tensor([0., 2.])
"""

from __future__ import annotations

from collections.abc import Callable

from ember import ops
from ember._registry import lookup
from ember.ops import as_tensor
from ember.tensor import Tensor


def linear(x) -> Tensor:
    """The identity, f(x) = x (Keras' ``"linear"``)."""
    return as_tensor(x)


def sigmoid(x) -> Tensor:
    """The logistic function 1 / (1 + e^-x), stable at ±1000; f' = f (1 - f)."""
    return ops.sigmoid(as_tensor(x))


def tanh(x) -> Tensor:
    """Hyperbolic tangent; f' = 1 - f²."""
    return ops.tanh(as_tensor(x))


def relu(x) -> Tensor:
    """max(x, 0); f' = 1 for x > 0 and 0 otherwise (0 at exactly 0)."""
    return ops.relu(as_tensor(x))


def softmax(x, axis: int = -1) -> Tensor:
    """exp(x) / Σ exp(x) along ``axis`` (default: the last), computed from x - max(x)."""
    return ops.softmax(as_tensor(x), axis)


_ACTIVATIONS: dict[str, Callable] = {
    "linear": linear,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "relu": relu,
    "softmax": softmax,
}


def get(identifier) -> Callable[[Tensor], Tensor]:
    """Resolve ``None``, a name or a callable to an activation function."""
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        return lookup("activation", identifier, _ACTIVATIONS)
    if callable(identifier):
        return identifier
    raise TypeError(
        f"activation must be a name such as 'relu', a callable or None; got {identifier!r}"
    )


def serialize(fn: Callable) -> str | None:
    """The name under which ``fn`` can be looked up again, or None for a custom callable."""
    for name, value in _ACTIVATIONS.items():
        if value is fn:
            return name
    return None
