"""Activation functions, usable by name (``activation="relu"``) or as functions on tensors.

The catalogue: ``linear`` (alias ``identity``), ``binary_step``, ``sigmoid``, ``tanh``,
``arctan``, ``relu``, ``leaky_relu``, ``rectifier`` (generalized, ``alpha=-1`` is
``abs_rectifier``), ``elu``, ``selu``, ``softplus``, ``softsign``, ``silu`` (alias ``swish``),
``mish``, ``sinc``, ``log_sigmoid``, ``hard_sigmoid``, ``gelu``, ``softmax``, ``log_softmax``.
Each is stable at ±1000 in float32 and float64 (no warning, no NaN in value or gradient);
the parametric ``prelu`` is the op ``ember.ops.prelu`` (and its layer).

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
    """The identity, f(x) = x (Keras' ``"linear"``).

    Example:
        >>> ember.activations.linear(ember.tensor([-2.0, 0.0, 2.0]))
        tensor([-2.,  0.,  2.])
        >>> ember.activations.identity is ember.activations.linear
        True
    """
    return as_tensor(x)


identity = linear


def sigmoid(x) -> Tensor:
    """The logistic function 1 / (1 + e^-x), stable at ±1000; f' = f (1 - f).

    Example:
        >>> ember.activations.sigmoid(ember.tensor([-2.0, 0.0, 2.0]))
        tensor([0.11920292, 0.5       , 0.880797  ])
    """
    return ops.sigmoid(as_tensor(x))


def tanh(x) -> Tensor:
    """Hyperbolic tangent; f' = 1 - f².

    Example:
        >>> ember.activations.tanh(ember.tensor([-2.0, 0.0, 2.0]))
        tensor([-0.9640276,  0.       ,  0.9640276])
    """
    return ops.tanh(as_tensor(x))


def relu(x) -> Tensor:
    """max(x, 0); f' = 1 for x > 0 and 0 otherwise (0 at exactly 0).

    Example:
        >>> ember.activations.relu(ember.tensor([-2.0, 0.0, 2.0]))
        tensor([0., 0., 2.])
    """
    return ops.relu(as_tensor(x))


def softmax(x, axis: int = -1) -> Tensor:
    """exp(x) / Σ exp(x) along ``axis`` (default: the last), computed from x - max(x).

    A row of all ``-inf`` (every entry masked) gives NaN, exactly as ``torch.softmax``
    (catalogue N4, pytorch#25110); masked attention will use a separate safe variant that
    returns zeros for such rows (as PyTorch's ``_safe_softmax``).

    Example:
        >>> ember.activations.softmax(ember.tensor([[0.0, 0.0]]), axis=-1)
        tensor([[0.5, 0.5]])
    """
    return ops.softmax(as_tensor(x), axis)


def log_softmax(x, axis: int = -1) -> Tensor:
    """x - logsumexp(x) along ``axis``: exact for huge logits, never forms log(softmax).

    Example:
        >>> ember.activations.log_softmax(ember.tensor([[1000.0, 0.0]]))
        tensor([[    0., -1000.]])
    """
    return ops.log_softmax(as_tensor(x), axis)


def binary_step(x, threshold: float = 0.0) -> Tensor:
    """The Heaviside step: 1 where ``x >= threshold`` (default 0), else 0.

    Its derivative is 0 everywhere (undefined at the threshold), so no gradient flows through
    it: backprop cannot train it (the perceptron uses its own learning rule).

    Example:
        >>> ember.activations.binary_step(ember.tensor([-1.0, 0.0, 0.4]), threshold=0.5)
        tensor([0., 0., 0.])
    """
    return ops.binary_step(as_tensor(x), threshold)


def arctan(x) -> Tensor:
    """arctan(x); f' = 1 / (1 + x²).

    Example:
        >>> ember.activations.arctan(ember.tensor([-2.0, 0.0, 2.0]))
        tensor([-1.1071488,  0.       ,  1.1071488])
    """
    return ops.arctan(as_tensor(x))


def leaky_relu(x, negative_slope: float = 0.01) -> Tensor:
    """x for x > 0, ``negative_slope · x`` otherwise (default slope 0.01 as PyTorch and the
    course; Keras 3's ``leaky_relu`` defaults to 0.2).

    Example:
        >>> ember.activations.leaky_relu(ember.tensor([-1.0, 2.0]), negative_slope=0.1)
        tensor([-0.1,  2. ])
    """
    return ops.leaky_relu(as_tensor(x), negative_slope)


def rectifier(x, alpha: float = 0.0) -> Tensor:
    """The generalized rectifier ``max(0, x) + alpha · min(0, x)``.

    ``alpha=0`` is ReLU, ``alpha=-1`` absolute-value rectification |x|, a small positive
    ``alpha`` leaky ReLU. The gradient at exactly 0 is 0.

    Example:
        >>> ember.activations.rectifier(ember.tensor([-2.0, 0.0, 2.0]), alpha=0.5)
        tensor([-1.,  0.,  2.])
    """
    return ops.rectifier(as_tensor(x), alpha)


def abs_rectifier(x) -> Tensor:
    """Absolute-value rectification |x| = ``rectifier(x, alpha=-1)``.

    Example:
        >>> ember.activations.abs_rectifier(ember.tensor([-2.0, 0.0, 2.0]))
        tensor([2., 0., 2.])
    """
    return ops.rectifier(as_tensor(x), -1.0)


def elu(x, alpha: float = 1.0) -> Tensor:
    """Exponential linear unit: x for x > 0, ``alpha · (e^x - 1)`` otherwise.

    Example:
        >>> ember.activations.elu(ember.tensor([-2.0, 0.0, 2.0]))
        tensor([-0.86466473,  0.        ,  2.        ])
    """
    return ops.elu(as_tensor(x), alpha)


def selu(x) -> Tensor:
    """Scaled ELU ``λ · elu(x, α)``, λ ≈ 1.0507, α ≈ 1.67326; pair with ``lecun_normal``.

    Example:
        >>> ember.activations.selu(ember.tensor([-2.0, 0.0, 2.0]))
        tensor([-1.5201665,  0.       ,  2.101402 ])
    """
    return ops.selu(as_tensor(x))


def softplus(x) -> Tensor:
    """log(1 + e^x), stable at ±1000; f' = sigmoid(x).

    Example:
        >>> ember.activations.softplus(ember.tensor([-2.0, 0.0, 2.0]))
        tensor([0.126928 , 0.6931472, 2.126928 ])
    """
    return ops.softplus(as_tensor(x))


def softsign(x) -> Tensor:
    """x / (1 + |x|); f' = 1 / (1 + |x|)².

    Example:
        >>> ember.activations.softsign(ember.tensor([-2.0, 0.0, 2.0]))
        tensor([-0.6666667,  0.       ,  0.6666667])
    """
    return ops.softsign(as_tensor(x))


def silu(x) -> Tensor:
    """x · sigmoid(x); ``"swish"`` is the same function.

    Example:
        >>> ember.activations.get("swish") is ember.activations.silu
        True
    """
    return ops.silu(as_tensor(x))


swish = silu


def mish(x) -> Tensor:
    """x · tanh(softplus(x)).

    Example:
        >>> ember.activations.mish(ember.tensor([-2.0, 0.0, 2.0]))
        tensor([-0.25250146,  0.        ,  1.9439589 ])
    """
    return ops.mish(as_tensor(x))


def sinc(x) -> Tensor:
    """sin(x) / x with sinc(0) = 1 and sinc'(0) = 0 (unnormalised; NumPy's sinc is sin(πx)/(πx)).

    Example:
        >>> ember.activations.sinc(ember.tensor([-2.0, 0.0, 2.0]))
        tensor([0.4546487, 1.       , 0.4546487])
    """
    return ops.sinc(as_tensor(x))


def log_sigmoid(x) -> Tensor:
    """log(sigmoid(x)) = -softplus(-x), exact for large negative x.

    Example:
        >>> ember.activations.log_sigmoid(ember.tensor([-2.0, 0.0, 2.0]))
        tensor([-2.126928 , -0.6931472, -0.126928 ])
    """
    return ops.log_sigmoid(as_tensor(x))


def hard_sigmoid(x) -> Tensor:
    """Keras 3's ``relu6(x + 3) / 6``: 0 for x <= -3, 1 for x >= 3, linear in between.

    Example:
        >>> ember.activations.hard_sigmoid(ember.tensor([-3.0, 0.0, 1.5, 3.0]))
        tensor([0.  , 0.5 , 0.75, 1.  ])
    """
    return ops.hard_sigmoid(as_tensor(x))


def gelu(x, approximate: bool = False) -> Tensor:
    """Gaussian error linear unit x · Φ(x): the exact erf form by default, the tanh
    approximation with ``approximate=True``.

    Example:
        >>> ember.activations.gelu(ember.tensor([0.0]))
        tensor([0.])
    """
    return ops.gelu(as_tensor(x), approximate)


_ACTIVATIONS: dict[str, Callable] = {
    "linear": linear,
    "identity": linear,
    "binary_step": binary_step,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "arctan": arctan,
    "relu": relu,
    "leaky_relu": leaky_relu,
    "rectifier": rectifier,
    "abs_rectifier": abs_rectifier,
    "elu": elu,
    "selu": selu,
    "softplus": softplus,
    "softsign": softsign,
    "silu": silu,
    "swish": silu,
    "mish": mish,
    "sinc": sinc,
    "log_sigmoid": log_sigmoid,
    "hard_sigmoid": hard_sigmoid,
    "gelu": gelu,
    "softmax": softmax,
    "log_softmax": log_softmax,
}


def get(identifier) -> Callable[[Tensor], Tensor]:
    """Resolve ``None``, a name or a callable to an activation function.

    Example:
        >>> ember.activations.get("relu") is ember.activations.relu
        True
        >>> ember.activations.get(None) is ember.activations.linear
        True
    """
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
    """The name under which ``fn`` can be looked up again, or None for a custom callable.

    Example:
        >>> ember.activations.serialize(ember.activations.relu)
        'relu'
        >>> ember.activations.serialize(lambda x: x) is None
        True
    """
    for name, value in _ACTIVATIONS.items():
        if value is fn:
            return name
    return None
