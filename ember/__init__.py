"""Ember: a deep-learning framework written from first principles on NumPy.

Two levels, one engine:

* low level (PyTorch style): ``ember.tensor``, ``loss.backward()``, ``optimizer.step()``;
* high level (Keras style): ``ember.models.Sequential``, ``compile``, ``fit``, ``evaluate``.
"""

from ember.tensor import (  # noqa: I001 (tensor must load before ops)
    Tensor,
    default_rng,
    enable_grad,
    get_rng_state,
    grad,
    is_grad_enabled,
    manual_seed,
    no_grad,
    set_rng_state,
    tensor,
)
from ember import ops
from ember.ops import (
    abs,
    clip,
    concatenate,
    exp,
    linear,
    log,
    log_softmax,
    logsumexp,
    matmul,
    maximum,
    minimum,
    pad,
    relu,
    sigmoid,
    softmax,
    sqrt,
    stack,
    tanh,
    where,
)
from ember.testing import gradcheck

__version__ = "0.1.0"

__all__ = [
    "Tensor",
    "tensor",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "grad",
    "manual_seed",
    "default_rng",
    "get_rng_state",
    "set_rng_state",
    "gradcheck",
    "ops",
    "abs",
    "clip",
    "concatenate",
    "exp",
    "linear",
    "log",
    "log_softmax",
    "logsumexp",
    "matmul",
    "maximum",
    "minimum",
    "pad",
    "relu",
    "sigmoid",
    "softmax",
    "sqrt",
    "stack",
    "tanh",
    "where",
    "__version__",
    "activations",
    "callbacks",
    "datasets",
    "ensemble",
    "initializers",
    "layers",
    "losses",
    "metrics",
    "models",
    "optimizers",
    "regularizers",
    "schedules",
    "utils",
]

from ember import (  # noqa: E402
    activations,
    callbacks,
    datasets,
    ensemble,
    initializers,
    layers,
    losses,
    metrics,
    models,
    optimizers,
    regularizers,
    schedules,
    utils,
)
