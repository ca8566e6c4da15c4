"""Ember: a deep-learning framework written from first principles on NumPy.

Two levels, one engine:

* low level (PyTorch style): ``ember.tensor``, ``loss.backward()``, ``optimizer.step()``;
* high level (Keras style): ``ember.models.Sequential``, ``compile``, ``fit``, ``evaluate``.

The names users of NumPy, PyTorch and Keras reach for first are at the top level: tensor
creation (``ember.zeros``, ``ember.arange``, ``ember.randn``), math and reductions
(``ember.sin``, ``ember.mean(x, dim=1)``), ``ember.Sequential``, ``ember.Model``,
``ember.Input``, and the modules ``ember.random``, ``ember.tree`` and ``ember.data``.
``docs/aliases.md`` lists every alternative spelling Ember accepts.

Example:
    >>> x = ember.linspace(0, 1, 5)
    >>> ember.mean(ember.square(x), dim=0)
    tensor(0.375)
"""

from ember.tensor import (  # noqa: I001 (tensor must load before ops)
    GradientTape,
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
    clone,
    concatenate,
    cos,
    exp,
    expm1,
    linear,
    log,
    log1p,
    log_softmax,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    pad,
    pow,
    power,
    reciprocal,
    relu,
    sigmoid,
    sin,
    softmax,
    sqrt,
    square,
    stack,
    sum,
    tan,
    tanh,
    var,
    where,
)
from ember import creation as _creation
from ember.creation import *  # noqa: F403 (the creation functions, listed once in creation.__all__)
from ember.random import randint
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
    "clone",
    "cos",
    "expm1",
    "log1p",
    "max",
    "mean",
    "min",
    "pow",
    "power",
    "reciprocal",
    "sin",
    "square",
    "sum",
    "tan",
    "var",
    "randint",
    "Sequential",
    "Model",
    "Input",
    "Layer",
    "Variable",
    "Parameter",
    "GradientTape",
    "__version__",
    "activations",
    "callbacks",
    "data",
    "datasets",
    "ensemble",
    "initializers",
    "layers",
    "losses",
    "metrics",
    "models",
    "optimizers",
    "random",
    "regularizers",
    "schedules",
    "text",
    "generation",
    "graph",
    "tree",
    "utils",
    "diagnostics",
    "distributed",
    "interchange",
    "report",
    *_creation.__all__,
]

from ember import (  # noqa: E402
    activations,
    callbacks,
    data,
    datasets,
    diagnostics,
    distributed,
    ensemble,
    generation,
    graph,
    initializers,
    interchange,
    layers,
    losses,
    metrics,
    models,
    optimizers,
    random,
    regularizers,
    report,
    schedules,
    text,
    tree,
    utils,
)
from ember.layers import Input, Layer  # noqa: E402
from ember.models import Model, Sequential  # noqa: E402
from ember.variables import Parameter, Variable  # noqa: E402
