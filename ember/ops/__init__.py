"""Ember's differentiable operations, grouped by family; each forward sits beside its backward.

Tensor methods and operators (``x + y``, ``x.sum()``, ``x.relu()``) call these functions, which are
also public as ``ember.ops.<name>`` and re-exported at the top level (``ember.exp(x)``).
"""

from ember.ops._core import as_tensor
from ember.ops.arithmetic import add, div, linear, matmul, mul, neg, power, sub
from ember.ops.elementwise import (
    abs,
    cast,
    clip,
    equal,
    exp,
    greater,
    greater_equal,
    less,
    less_equal,
    log,
    maximum,
    minimum,
    not_equal,
    relu,
    sigmoid,
    sqrt,
    tanh,
    where,
)
from ember.ops.nn import (
    log_softmax,
    logsumexp,
    sigmoid_binary_cross_entropy,
    softmax,
    softmax_cross_entropy,
    sparse_softmax_cross_entropy,
)
from ember.ops.reduction import max, mean, min, sum, var
from ember.ops.shape import (
    concatenate,
    flatten,
    getitem,
    pad,
    reshape,
    squeeze,
    stack,
    transpose,
    unsqueeze,
)

__all__ = [
    "as_tensor", "add", "sub", "mul", "div", "neg", "power", "matmul", "linear", "abs", "cast",
    "clip", "exp", "log", "sqrt", "maximum", "minimum", "where", "relu", "sigmoid", "tanh",
    "equal", "not_equal", "less", "less_equal", "greater", "greater_equal", "softmax",
    "log_softmax", "logsumexp", "sparse_softmax_cross_entropy", "softmax_cross_entropy",
    "sigmoid_binary_cross_entropy", "sum", "mean", "max", "min", "var", "reshape", "flatten",
    "transpose", "squeeze", "unsqueeze", "concatenate", "stack", "pad", "getitem",
]
