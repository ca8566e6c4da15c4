"""Ember's differentiable operations, grouped by family; each forward sits beside its backward.

Tensor methods and operators (``x + y``, ``x.sum()``, ``x.relu()``) call these functions, which are
also public as ``ember.ops.<name>`` and re-exported at the top level (``ember.exp(x)``).
"""

import numpy as np

from ember.ops._core import as_tensor
from ember.ops.activations import (
    arctan,
    binary_step,
    elu,
    gelu,
    hard_sigmoid,
    leaky_relu,
    log_sigmoid,
    mish,
    prelu,
    rectifier,
    selu,
    silu,
    sinc,
    softplus,
    softsign,
)
from ember.ops.arithmetic import add, div, linear, matmul, mul, neg, power, sub
from ember.ops.attention import masked_softmax, scaled_dot_product_attention
from ember.ops.conv import (
    avg_pool2d,
    conv2d,
    conv2d_transpose,
    depthwise_conv2d,
    max_pool2d,
    upsample_nearest2d,
)
from ember.ops.einsum import einsum
from ember.ops.elementwise import (
    abs,
    cast,
    clip,
    clone,
    cos,
    equal,
    exp,
    expm1,
    greater,
    greater_equal,
    less,
    less_equal,
    log,
    log1p,
    maximum,
    minimum,
    not_equal,
    pow,
    reciprocal,
    relu,
    sigmoid,
    sin,
    sqrt,
    square,
    tan,
    tanh,
    where,
)
from ember.ops.graph import (
    segment_max,
    segment_mean,
    segment_softmax,
    segment_sum,
    sparse_matmul,
)
from ember.ops.nn import (
    embedding,
    log_softmax,
    logsumexp,
    sigmoid_binary_cross_entropy,
    softmax,
    softmax_cross_entropy,
    sparse_softmax_cross_entropy,
)
from ember.ops.normalization import normalize, normalize_inference
from ember.ops.recurrent import gru, lstm, simple_rnn
from ember.ops.reduction import max, mean, min, sum, var
from ember.ops.shape import (
    concatenate,
    flatten,
    getitem,
    pad,
    reshape,
    split,
    squeeze,
    stack,
    take,
    tile,
    transpose,
    unsqueeze,
)
from ember.tensor import Tensor

__all__ = [
    "as_tensor",
    "add",
    "sub",
    "mul",
    "div",
    "neg",
    "power",
    "matmul",
    "linear",
    "abs",
    "cast",
    "clip",
    "exp",
    "log",
    "sqrt",
    "maximum",
    "minimum",
    "where",
    "square",
    "pow",
    "sin",
    "cos",
    "tan",
    "log1p",
    "expm1",
    "reciprocal",
    "clone",
    "relu",
    "sigmoid",
    "tanh",
    "binary_step",
    "arctan",
    "leaky_relu",
    "rectifier",
    "prelu",
    "elu",
    "selu",
    "softplus",
    "log_sigmoid",
    "softsign",
    "silu",
    "mish",
    "sinc",
    "hard_sigmoid",
    "gelu",
    "embedding",
    "masked_softmax",
    "scaled_dot_product_attention",
    "lstm",
    "gru",
    "simple_rnn",
    "equal",
    "not_equal",
    "less",
    "less_equal",
    "greater",
    "greater_equal",
    "softmax",
    "log_softmax",
    "logsumexp",
    "sparse_softmax_cross_entropy",
    "softmax_cross_entropy",
    "sigmoid_binary_cross_entropy",
    "normalize",
    "normalize_inference",
    "conv2d",
    "conv2d_transpose",
    "depthwise_conv2d",
    "max_pool2d",
    "avg_pool2d",
    "upsample_nearest2d",
    "sum",
    "mean",
    "max",
    "min",
    "var",
    "reshape",
    "flatten",
    "transpose",
    "squeeze",
    "unsqueeze",
    "concatenate",
    "stack",
    "pad",
    "getitem",
    "einsum",
    "segment_max",
    "segment_mean",
    "segment_softmax",
    "segment_sum",
    "sparse_matmul",
    "tile",
    "split",
    "take",
    # Keras' ops spellings (below); not graph ops
    "arange",
    "eye",
    "full",
    "full_like",
    "linspace",
    "ones",
    "ones_like",
    "zeros",
    "zeros_like",
    "shape",
    "convert_to_tensor",
    "convert_to_numpy",
    "expand_dims",
]


# ------------------------------------------------------------------------------ Keras' ops names
# Keras 3 code writes `from keras import ops; ops.ones((3, 3)); ops.shape(x)`. The creation
# functions live in ember.creation (they make leaves, not graph nodes); `shape` is a function
# here, as in Keras, although ember/ops/shape.py is also the module of the shape ops (Python
# binds the attribute to the function defined last).
from ember.creation import (  # noqa: E402
    arange,
    eye,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    zeros,
    zeros_like,
)


def shape(x) -> tuple:  # noqa: F811 (Keras' ops.shape; the module stays importable by path)
    """The shape of a tensor or array, as a tuple (``keras.ops.shape``).

    Example:
        >>> ember.ops.shape(ember.zeros((2, 3)))
        (2, 3)
    """
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


def convert_to_tensor(x, dtype=None) -> Tensor:
    """``x`` as an ember Tensor (``keras.ops.convert_to_tensor``); a Tensor is returned as is.

    Example:
        >>> ember.ops.convert_to_tensor([1.0, 2.0])
        tensor([1., 2.])
    """
    if isinstance(x, Tensor) and dtype is None:
        return x
    return Tensor(x, dtype=dtype)


def convert_to_numpy(x) -> np.ndarray:
    """``x`` as a NumPy array (``keras.ops.convert_to_numpy``).

    Example:
        >>> ember.ops.convert_to_numpy(ember.ones((2,)))
        array([1., 1.], dtype=float32)
    """
    return x.numpy() if isinstance(x, Tensor) else np.asarray(x)


expand_dims = unsqueeze  # Keras' name


_KERAS_SPELLINGS = [
    "arange", "eye", "full", "full_like", "linspace", "ones", "ones_like", "zeros", "zeros_like",
    "shape", "convert_to_tensor", "convert_to_numpy", "expand_dims",
]


def _install_tensor_operators() -> None:
    """Give tensor.py its ops: Tensor's operators and methods call them through the module
    variable ``ember.tensor._ops``, set here, so that tensor.py never imports the ops (which
    import Tensor): the import graph has no cycle."""
    import sys

    # (by sys.modules: the package attribute ember.tensor is the function ember.tensor())
    sys.modules["ember.tensor"]._ops = sys.modules[__name__]


_install_tensor_operators()
