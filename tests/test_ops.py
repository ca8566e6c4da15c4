"""One op table, in the spirit of PyTorch's OpInfo, drives the gradient tests of every op.

Each row of ``CASES`` names the ``ember.ops`` function it covers, its sample inputs and the Ember
computation with its PyTorch equivalent. Inputs are shapes (drawn uniformly from [-2, 2]),
generators that keep samples away from kinks and poles (``positive``, ``away_from_zero``,
``avoiding``, ``distinct``) or ready arrays; integer arrays are labels/indices and are never
differentiated. Every row is seeded by its id, so the same numbers feed:

* ``test_gradcheck``: ``ember.gradcheck`` in float64 (central differences, random cotangent);
* ``test_matches_torch``: ``assert_matches_torch`` in float32: forward value, shape and dtype,
  and input gradients under a random cotangent;
* ``test_gradients_reaching_inputs_are_float32``: no backward silently computes in float64 for
  a float32 computation (the leaf ``.grad`` cast would hide it);
* ``test_row_calls_its_op``: the row really goes through the op it claims to cover.

``test_every_differentiable_op_has_a_row`` fails as soon as an op is added to
``ember.ops.__all__`` without a row. As OpInfo's own docs warn, a row checks the backward against
the forward and the forward against PyTorch; a convention PyTorch shares is not checked
independently (the hand-computed cases in ``test_autograd.py`` pin those).
"""

from __future__ import annotations

import dataclasses
import operator
import zlib
from collections.abc import Callable

import _op_rows_attention
import _op_rows_graph
import _op_rows_more
import _op_rows_recurrent
import numpy as np
import pytest

from ember import Tensor, ops
from ember.testing import assert_matches_torch, gradcheck

try:
    import torch
    import torch.nn.functional as F  # noqa: N812
except ImportError:  # parity rows then skip (or fail under EMBER_REQUIRE_TORCH=1) in the helper
    torch = F = None


# ------------------------------------------------------------------------------ input specs
def uniform(shape, low=-2.0, high=2.0):
    return lambda rng: np.asarray(rng.uniform(low, high, size=shape))


def positive(shape, low=0.5, high=2.0):
    """For log, sqrt, x**0.5, denominators and bases of a tensor power: no pole within reach."""
    return uniform(shape, low, high)


def away_from_zero(shape, low=0.2, high=2.0):
    """|x| in [low, high] with random sign: keeps abs/relu/x**-1 off their kink or pole at 0."""

    def make(rng):
        return np.asarray(rng.uniform(low, high, size=shape) * rng.choice([-1.0, 1.0], size=shape))

    return make


def avoiding(shape, points, margin=0.05):
    """Uniform in [-2, 2] but at least ``margin`` away from each of ``points`` (clip bounds)."""

    def make(rng):
        x = np.asarray(rng.uniform(-2.0, 2.0, size=shape))
        for p in points:
            x = np.where(np.abs(x - p) < margin, x + 2 * margin, x)
        return x

    return make


def distinct(*shapes):
    """Several arrays whose values are all at least 0.15 apart: no ties for max/min/maximum."""

    def make(rng):
        sizes = [int(np.prod(s)) for s in shapes]
        values = (rng.permutation(sum(sizes)) - sum(sizes) / 2) * 0.2
        values = values + rng.uniform(-0.02, 0.02, size=values.shape)
        out, start = [], 0
        for shape, n in zip(shapes, sizes):
            out.append(values[start : start + n].reshape(shape))
            start += n
        return out

    return make


# ------------------------------------------------------------------------------ the table
@dataclasses.dataclass
class Case:
    id: str
    op: str  # the ember.ops.__all__ name this row covers
    fn: Callable  # Ember computation on Tensors
    ref: Callable | None  # PyTorch computation on torch tensors; None: no parity (see notes)
    inputs: list
    notes: str = ""
    gradcheck: dict | None = dataclasses.field(default_factory=dict)  # None: no gradcheck
    parity: dict = dataclasses.field(default_factory=dict)

    def arrays(self) -> list[np.ndarray]:
        rng = np.random.default_rng(zlib.crc32(self.id.encode()))
        arrays = []
        for spec in self.inputs:
            if isinstance(spec, np.ndarray):
                arrays.append(spec)
            elif callable(spec):
                made = spec(rng)
                arrays.extend(made if isinstance(made, list) else [made])
            else:
                arrays.append(np.asarray(rng.uniform(-2.0, 2.0, size=spec)))
        return arrays


CASES: list[Case] = []


def case(id, op, fn, ref, inputs, notes="", gradcheck=None, parity=None, no_gradcheck=False):  # noqa: A002
    CASES.append(
        Case(
            id,
            op,
            fn,
            ref,
            list(inputs),
            notes,
            None if no_gradcheck else dict(gradcheck or {}),
            dict(parity or {}),
        )
    )


def _e(name):
    """``ember.ops.<name>`` looked up at call time (so test_row_calls_its_op can count calls)."""
    return lambda *args: getattr(ops, name)(*args)


def _t(name):
    """``torch.<name>`` looked up at call time, so the table loads without torch."""
    return lambda *args: getattr(torch, name)(*args)


def _dims(axis, ndim):
    return tuple(range(ndim)) if axis is None else axis


def _torch_index(index):
    if isinstance(index, tuple):
        return tuple(_torch_index(i) for i in index)
    if isinstance(index, Tensor):
        return torch.as_tensor(index.data)
    if isinstance(index, np.ndarray):
        return torch.as_tensor(index)
    return index


# Tolerances from the catalogue (§1.6): matmul and reductions accumulate float32 rounding.
ACCUMULATING = {"atol": 1e-5, "rtol": 1e-4}

# --- binary arithmetic, with the broadcasting patterns of catalogue A3
BROADCASTS = [
    ((3, 4), (3, 4)),
    ((3, 1), (1, 4)),
    ((4,), (2, 3, 4)),
    ((), (3, 4)),
    ((2, 3, 4), (3, 1)),
]
for _sa, _sb in BROADCASTS:
    _tag = f"{_sa}_{_sb}".replace(" ", "")
    case(f"add{_tag}", "add", operator.add, operator.add, [_sa, _sb])
    case(f"sub{_tag}", "sub", operator.sub, operator.sub, [_sa, _sb])
    case(f"mul{_tag}", "mul", operator.mul, operator.mul, [_sa, _sb])
    case(
        f"div{_tag}",
        "div",
        operator.truediv,
        operator.truediv,
        [_sa, positive(_sb)],
        notes="denominator in [0.5, 2]",
    )
    case(
        f"div_denominator_broadcast{_tag}",
        "div",
        operator.truediv,
        operator.truediv,
        [_sb, positive(_sa)],
    )
case("add_functional_0d", "add", _e("add"), _t("add"), [(), ()])
case("radd_python_scalar", "add", lambda x: 1.5 + x, lambda x: 1.5 + x, [(3,)])
case(
    "sub_float64_numpy_operand",
    "sub",
    lambda x: x - np.arange(4.0),
    lambda x: x - torch.arange(4.0, dtype=x.dtype),
    [(3, 4)],
    notes="a float64 NumPy operand keeps the tensor's dtype",
)
case("rsub_python_scalar", "sub", lambda x: 1.5 - x, lambda x: 1.5 - x, [(3,)])
case("rmul_python_scalar", "mul", lambda x: 2.5 * x, lambda x: 2.5 * x, [(3,)])
case("rdiv_python_scalar", "div", lambda x: 1.0 / x, lambda x: 1.0 / x, [positive((3,))])
case("div_by_python_scalar", "div", lambda x: x / 4.0, lambda x: x / 4.0, [(3,)])
case("neg_operator", "neg", operator.neg, operator.neg, [(3, 4)])
case("neg_functional_0d", "neg", _e("neg"), _t("neg"), [()])

# --- power
case("pow_2", "power", lambda x: x**2, lambda x: x**2, [(3, 4)])
case("pow_3", "power", lambda x: x**3, lambda x: x**3, [(3, 4)])
case(
    "pow_half",
    "power",
    lambda x: x**0.5,
    lambda x: x**0.5,
    [positive((3, 4))],
    notes="positive inputs: x**0.5 has a pole in its derivative at 0",
)
case("pow_minus_1", "power", lambda x: x**-1, lambda x: x**-1, [away_from_zero((3, 4))])
case("pow_1_5_functional", "power", lambda x: ops.power(x, 1.5), lambda x: x**1.5, [positive((5,))])
case(
    "pow_tensor_exponent",
    "power",
    operator.pow,
    operator.pow,
    [positive((3, 4)), (3, 4)],
    notes="base in [0.5, 2] so that log(base) exists",
)
case("pow_tensor_exponent_broadcast", "power", operator.pow, operator.pow, [positive((3, 1)), (4,)])
case("rpow_scalar_base", "power", lambda x: 2.0**x, lambda x: 2.0**x, [(3, 4)])
case(
    "pow_functional_scalar_base",
    "power",
    lambda x: ops.power(3.0, x),
    lambda x: torch.pow(3.0, x),
    [(5,)],
)

# --- matmul and linear
for _sa, _sb in [
    ((3, 4), (4, 5)),
    ((4,), (4, 5)),
    ((3, 4), (4,)),
    ((4,), (4,)),
    ((2, 3, 4), (4, 5)),
    ((3, 4), (2, 4, 5)),
    ((2, 3, 4), (2, 4, 5)),
    ((2, 1, 3, 4), (5, 4, 2)),
]:
    case(
        f"matmul{_sa}@{_sb}".replace(" ", ""),
        "matmul",
        operator.matmul,
        operator.matmul,
        [_sa, _sb],
        parity=ACCUMULATING,
    )
case(
    "matmul_functional", "matmul", _e("matmul"), _t("matmul"), [(2, 3), (3, 2)], parity=ACCUMULATING
)
case(
    "linear_bias_2d",
    "linear",
    _e("linear"),
    lambda x, k, b: x @ k + b,
    [(3, 4), (4, 5), (5,)],
    parity=ACCUMULATING,
)
case(
    "linear_no_bias_2d",
    "linear",
    _e("linear"),
    lambda x, k: x @ k,
    [(3, 4), (4, 5)],
    parity=ACCUMULATING,
)
case(
    "linear_bias_3d",
    "linear",
    _e("linear"),
    lambda x, k, b: x @ k + b,
    [(2, 3, 4), (4, 5), (5,)],
    parity=ACCUMULATING,
)
case(
    "linear_no_bias_3d",
    "linear",
    _e("linear"),
    lambda x, k: x @ k,
    [(2, 3, 4), (4, 5)],
    parity=ACCUMULATING,
)
case(
    "linear_bias_1d_input",
    "linear",
    _e("linear"),
    lambda x, k, b: x @ k + b,
    [(4,), (4, 5), (5,)],
    parity=ACCUMULATING,
)

# --- elementwise math and activations
case("exp", "exp", lambda x: x.exp(), _t("exp"), [(3, 4)])
case("exp_0d", "exp", _e("exp"), _t("exp"), [()])
case(
    "log",
    "log",
    lambda x: x.log(),
    _t("log"),
    [positive((3, 4))],
    notes="positive inputs (pole at 0)",
)
case(
    "sqrt",
    "sqrt",
    lambda x: x.sqrt(),
    _t("sqrt"),
    [positive((3, 4))],
    notes="positive inputs (infinite slope at 0)",
)
case(
    "abs",
    "abs",
    lambda x: abs(x),
    _t("abs"),
    [away_from_zero((3, 4))],
    notes="kink at 0 tested by hand (N10)",
)
case("abs_functional_0d", "abs", _e("abs"), _t("abs"), [away_from_zero(())])
case(
    "clip_min_only",
    "clip",
    lambda x: x.clip(-0.5),
    lambda x: torch.clamp(x, min=-0.5),
    [avoiding((3, 4), [-0.5])],
    notes="inputs kept 0.05 away from the bound",
)
case(
    "clip_max_only",
    "clip",
    lambda x: x.clip(max=0.7),
    lambda x: torch.clamp(x, max=0.7),
    [avoiding((3, 4), [0.7])],
)
case(
    "clip_both",
    "clip",
    lambda x: ops.clip(x, -0.5, 0.7),
    lambda x: torch.clamp(x, -0.5, 0.7),
    [avoiding((4, 5), [-0.5, 0.7])],
)
case(
    "maximum",
    "maximum",
    _e("maximum"),
    _t("maximum"),
    [distinct((3, 4), (3, 4))],
    notes="no ties (ties are pinned in test_autograd A6)",
)
case(
    "maximum_broadcast",
    "maximum",
    lambda a, b: a.maximum(b),
    _t("maximum"),
    [distinct((3, 1), (1, 4))],
)
case(
    "maximum_python_scalar",
    "maximum",
    lambda x: ops.maximum(x, 0.3),
    lambda x: torch.maximum(x, torch.tensor(0.3, dtype=x.dtype)),
    [avoiding((3, 4), [0.3])],
)
case("minimum", "minimum", _e("minimum"), _t("minimum"), [distinct((3, 4), (3, 4))])
case(
    "minimum_broadcast",
    "minimum",
    lambda a, b: a.minimum(b),
    _t("minimum"),
    [distinct((4,), (2, 3, 4))],
)

_COND = np.random.default_rng(7).uniform(size=(3, 4)) > 0.5
case(
    "where",
    "where",
    lambda a, b: ops.where(_COND, a, b),
    lambda a, b: torch.where(torch.as_tensor(_COND), a, b),
    [(3, 4), (3, 4)],
)
case(
    "where_tensor_condition_broadcast",
    "where",
    lambda a, b: ops.where(Tensor(_COND), a, b),
    lambda a, b: torch.where(torch.as_tensor(_COND), a, b),
    [(3, 1), (4,)],
)
case(
    "where_python_scalar_branch",
    "where",
    lambda x: ops.where(_COND, x, 0.0),
    lambda x: torch.where(torch.as_tensor(_COND), x, 0.0),
    [(3, 4)],
)
case(
    "where_comparison_condition",
    "where",
    lambda a, b: ops.where(a > b, a, b * 2),
    lambda a, b: torch.where(a > b, a, b * 2),
    [distinct((3, 4), (3, 4))],
)
case(
    "relu",
    "relu",
    lambda x: x.relu(),
    _t("relu"),
    [away_from_zero((3, 4))],
    notes="kink at 0 (relu'(0) = 0 pinned in test_autograd A6)",
)
case("sigmoid", "sigmoid", lambda x: x.sigmoid(), _t("sigmoid"), [uniform((3, 4), -6, 6)])
case("sigmoid_0d", "sigmoid", _e("sigmoid"), _t("sigmoid"), [()])
case("tanh", "tanh", lambda x: x.tanh(), _t("tanh"), [uniform((3, 4), -3, 3)])

# --- more math with PyTorch's and Keras' names (tests/test_names.py checks the spellings)
case("square", "square", lambda x: x.square(), _t("square"), [(3, 4)])
case("square_functional_0d", "square", _e("square"), _t("square"), [()])
case("pow_alias_of_power", "pow", lambda x: ops.pow(x, 3), lambda x: torch.pow(x, 3), [(3, 4)])
case(
    "pow_alias_tensor_exponent",
    "pow",
    _e("pow"),
    _t("pow"),
    [positive((3, 4)), (3, 4)],
    notes="base in [0.5, 2] so that log(base) exists",
)
case("sin", "sin", lambda x: x.sin(), _t("sin"), [uniform((3, 4), -4, 4)])
case("sin_functional_0d", "sin", _e("sin"), _t("sin"), [()])
case("cos", "cos", lambda x: x.cos(), _t("cos"), [uniform((3, 4), -4, 4)])
case("cos_functional", "cos", _e("cos"), _t("cos"), [(2, 3, 2)])
case(
    "tan",
    "tan",
    lambda x: x.tan(),
    _t("tan"),
    [uniform((3, 4), -1.2, 1.2)],
    notes="|x| <= 1.2, away from the poles at ±π/2",
)
case(
    "log1p",
    "log1p",
    lambda x: x.log1p(),
    _t("log1p"),
    [uniform((3, 4), -0.5, 2.0)],
    notes="x > -1 (pole at -1)",
)
case(
    "log1p_tiny",
    "log1p",
    _e("log1p"),
    _t("log1p"),
    [uniform((5,), -1e-6, 1e-6)],
    notes="where log(1 + x) would lose every digit",
)
case("expm1", "expm1", lambda x: x.expm1(), _t("expm1"), [(3, 4)])
case("expm1_tiny", "expm1", _e("expm1"), _t("expm1"), [uniform((5,), -1e-6, 1e-6)])
case(
    "reciprocal",
    "reciprocal",
    lambda x: x.reciprocal(),
    _t("reciprocal"),
    [away_from_zero((3, 4))],
    notes="|x| >= 0.2 (pole at 0)",
)
case("clone", "clone", lambda x: x.clone() * 2.0, lambda x: x.clone() * 2.0, [(3, 4)])
case(
    "clone_functional_reused",
    "clone",
    lambda x: ops.clone(x) * x,
    lambda x: torch.clone(x) * x,
    [(3, 4)],
    notes="x reaches the output through the clone and directly: the gradients add up",
)

# --- kinks and ties: not differentiable, so no gradcheck; parity pins PyTorch's subgradients
_KINK = "exactly at a kink or tie: gradcheck is meaningless, parity pins PyTorch's subgradient"
_AT_ZERO = np.array([-1.0, 0.0, 0.0, 2.0])
case("relu_at_zero", "relu", lambda x: x.relu(), _t("relu"), [_AT_ZERO], _KINK, no_gradcheck=True)
case("abs_at_zero", "abs", lambda x: abs(x), _t("abs"), [_AT_ZERO], _KINK, no_gradcheck=True)
case(
    "clip_at_bounds",
    "clip",
    lambda x: x.clip(-0.5, 0.75),
    lambda x: torch.clamp(x, -0.5, 0.75),
    [np.array([-1.0, -0.5, 0.0, 0.75, 1.0])],
    _KINK,
    no_gradcheck=True,
)
case(
    "maximum_ties",
    "maximum",
    _e("maximum"),
    _t("maximum"),
    [np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 3.0])],
    _KINK,
    no_gradcheck=True,
)
case(
    "minimum_ties",
    "minimum",
    _e("minimum"),
    _t("minimum"),
    [np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 3.0])],
    _KINK,
    no_gradcheck=True,
)
_TIES = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
case("max_ties", "max", lambda x: x.max(), lambda x: x.amax(), [_TIES], _KINK, no_gradcheck=True)
case(
    "max_ties_axis1",
    "max",
    lambda x: x.max(axis=1),
    lambda x: x.amax(1),
    [_TIES],
    _KINK,
    no_gradcheck=True,
)
case(
    "min_ties_axis0",
    "min",
    lambda x: x.min(axis=0),
    lambda x: x.amin(0),
    [_TIES],
    _KINK,
    no_gradcheck=True,
)

# --- cast: gradcheck runs in float64, parity in float32, so each row keeps the meaningful half
case(
    "cast_f64_to_f32_and_back",
    "cast",
    lambda x: x.astype("float32").astype("float64"),
    None,
    [(3, 4)],
    gradcheck={"eps": 1e-2},
    notes="gradcheck only: float64 -> float32 -> float64; eps steps over float32 rounding "
    "(the round trip is linear up to it). Parity is meaningless: float32 inputs make the first "
    "cast a no-op",
)
case(
    "cast_f32_to_f64",
    "cast",
    lambda x: ops.cast(x, np.float64),
    lambda x: x.double(),
    [(3, 4)],
    no_gradcheck=True,
    notes="parity only (grad comes back as float32); gradcheck inputs are float64 already, so "
    "the cast would be the identity",
)


# --- the activation catalogue (ember/ops/activations.py)
def _wide(shape, low, high, avoid=(), margin=0.1):
    """Uniform in [low, high], at least ``margin`` away from each kink in ``avoid``."""

    def make(rng):
        x = np.asarray(rng.uniform(low, high, size=shape))
        for p in avoid:
            x = np.where(np.abs(x - p) < margin, x + 2 * margin, x)
        return x

    return make


case(
    "binary_step",
    "binary_step",
    _e("binary_step"),
    lambda x: torch.heaviside(x, torch.ones((), dtype=x.dtype)),
    [away_from_zero((3, 4))],
    notes="value-only parity: torch.heaviside has no backward; Ember's gradient is 0 everywhere",
    parity={"grad": False},
)
case(
    "binary_step_at_zero",
    "binary_step",
    _e("binary_step"),
    lambda x: torch.heaviside(x, torch.ones((), dtype=x.dtype)),
    [_AT_ZERO],
    notes="step(0) = 1, as heaviside(0, 1); a jump, so no gradcheck",
    no_gradcheck=True,
    parity={"grad": False},
)
case(
    "binary_step_threshold",
    "binary_step",
    lambda x: ops.binary_step(x, threshold=0.5),
    lambda x: torch.heaviside(x - 0.5, torch.ones((), dtype=x.dtype)),
    [np.array([-1.0, 0.2, 0.5, 0.55, 1.5])],
    notes="value-only parity: torch.heaviside has no backward; x = threshold included",
    parity={"grad": False},
    no_gradcheck=True,
)
case("arctan", "arctan", _e("arctan"), _t("atan"), [_wide((3, 4), -5, 5)])
case(
    "leaky_relu_default",
    "leaky_relu",
    _e("leaky_relu"),
    lambda x: F.leaky_relu(x, 0.01),
    [away_from_zero((3, 4))],
)
case(
    "leaky_relu_0_2",
    "leaky_relu",
    lambda x: ops.leaky_relu(x, negative_slope=0.2),
    lambda x: F.leaky_relu(x, 0.2),
    [away_from_zero((3, 4))],
)
case(
    "leaky_relu_at_zero",
    "leaky_relu",
    _e("leaky_relu"),
    lambda x: F.leaky_relu(x, 0.01),
    [_AT_ZERO],
    _KINK,
    no_gradcheck=True,
)
case("rectifier_relu", "rectifier", _e("rectifier"), _t("relu"), [away_from_zero((3, 4))])
case(
    "rectifier_abs",
    "rectifier",
    lambda x: ops.rectifier(x, -1.0),
    _t("abs"),
    [away_from_zero((3, 4))],
)
case(
    "rectifier_abs_at_zero",
    "rectifier",
    lambda x: ops.rectifier(x, -1.0),
    _t("abs"),
    [_AT_ZERO],
    _KINK,
    no_gradcheck=True,
)
case(
    "rectifier_leaky_0_3",
    "rectifier",
    lambda x: ops.rectifier(x, 0.3),
    lambda x: F.leaky_relu(x, 0.3),
    [away_from_zero((3, 4))],
)
case(
    "rectifier_alpha_2",
    "rectifier",
    lambda x: ops.rectifier(x, 2.0),
    lambda x: torch.where(x > 0, x, 2.0 * x),
    [away_from_zero((2, 3, 4))],
)
case(
    "prelu_per_channel",
    "prelu",
    _e("prelu"),
    F.prelu if F is not None else None,
    [away_from_zero((5, 4)), uniform((4,), 0.0, 0.5)],
)
case(
    "prelu_shared",
    "prelu",
    _e("prelu"),
    F.prelu if F is not None else None,
    [away_from_zero((5, 4)), uniform((1,), 0.0, 0.5)],
)
case(
    "prelu_channels_last_3d",
    "prelu",
    _e("prelu"),
    lambda x, a: torch.where(x > 0, x, a * x),
    [away_from_zero((2, 3, 4)), uniform((1, 1, 4), 0.0, 0.5)],
)
case(
    "prelu_at_zero",
    "prelu",
    _e("prelu"),
    lambda x, a: F.prelu(x, a),
    [_AT_ZERO.reshape(1, 4), np.array([0.25])],
    _KINK,
    no_gradcheck=True,
)
case("elu", "elu", _e("elu"), F.elu if F is not None else None, [away_from_zero((3, 4))])
case(
    "elu_alpha_0_5",
    "elu",
    lambda x: ops.elu(x, alpha=0.5),
    lambda x: F.elu(x, alpha=0.5),
    [away_from_zero((3, 4))],
)
case(
    "elu_at_zero",
    "elu",
    lambda x: ops.elu(x, alpha=0.5),
    lambda x: F.elu(x, alpha=0.5),
    [_AT_ZERO],
    _KINK,
    no_gradcheck=True,
)
case("selu", "selu", _e("selu"), _t("selu"), [away_from_zero((3, 4), 0.2, 3.0)])
case("softplus", "softplus", _e("softplus"), F.softplus if F else None, [_wide((3, 4), -8, 8)])
case(
    "log_sigmoid",
    "log_sigmoid",
    _e("log_sigmoid"),
    F.logsigmoid if F is not None else None,
    [_wide((3, 4), -8, 8)],
)
case("softsign", "softsign", _e("softsign"), F.softsign if F else None, [_wide((3, 4), -5, 5)])
case("silu", "silu", _e("silu"), F.silu if F is not None else None, [_wide((3, 4), -6, 6)])
case("mish", "mish", _e("mish"), F.mish if F is not None else None, [_wide((3, 4), -6, 6)])
case(
    "sinc",
    "sinc",
    _e("sinc"),
    lambda x: torch.sin(x) / x,
    [away_from_zero((3, 4), 0.6, 6.0)],
    notes="torch.sinc is normalised (sin(πx)/(πx)); sin(x)/x away from 0",
)
case(
    "sinc_near_zero",
    "sinc",
    _e("sinc"),
    None,
    [np.array([0.0, 1e-6, -1e-3, 0.05, -0.3, 0.49, 0.51])],
    notes="the Taylor branch (|x| < 0.5) and x = 0: PyTorch's sin(x)/x cannot be evaluated or "
    "differentiated accurately there",
)
case(
    "hard_sigmoid",
    "hard_sigmoid",
    _e("hard_sigmoid"),
    F.hardsigmoid if F is not None else None,
    [_wide((4, 5), -5, 5, avoid=(-3, 3))],
    notes="inputs off the kinks at ±3 (Keras 3's relu6(x + 3) / 6, as torch)",
)
case(
    "hard_sigmoid_at_kinks",
    "hard_sigmoid",
    _e("hard_sigmoid"),
    F.hardsigmoid if F is not None else None,
    [np.array([-3.0, 3.0, 0.0, -4.0, 4.0])],
    _KINK,
    no_gradcheck=True,
)
case("gelu_exact", "gelu", _e("gelu"), F.gelu if F is not None else None, [_wide((4, 5), -4, 4)])
case(
    "gelu_exact_tails",
    "gelu",
    _e("gelu"),
    F.gelu if F is not None else None,
    [away_from_zero((4, 5), 3.6, 9.0)],
    notes="|x| / √2 > 2.5: the continued-fraction branch of erf",
)
case(
    "gelu_tanh",
    "gelu",
    lambda x: ops.gelu(x, approximate=True),
    lambda x: F.gelu(x, approximate="tanh"),
    [_wide((4, 5), -4, 4)],
)

# --- softmax family and fused losses
for _shape, _axis in [((3, 4), -1), ((3, 4), 0), ((2, 3, 4), 1)]:
    _tag = f"{_shape}_axis{_axis}".replace(" ", "")
    case(
        f"softmax{_tag}",
        "softmax",
        lambda x, a=_axis: x.softmax(a),
        lambda x, a=_axis: torch.softmax(x, a),
        [_shape],
    )
    case(
        f"log_softmax{_tag}",
        "log_softmax",
        lambda x, a=_axis: ops.log_softmax(x, a),
        lambda x, a=_axis: torch.log_softmax(x, a),
        [_shape],
    )
for _shape, _axis, _kd in [
    ((3, 4), -1, False),
    ((3, 4), 0, True),
    ((2, 3, 4), 1, False),
    ((2, 3, 4), -1, True),
]:
    case(
        f"logsumexp{_shape}_axis{_axis}_keepdims{_kd}".replace(" ", ""),
        "logsumexp",
        lambda x, a=_axis, k=_kd: ops.logsumexp(x, a, k),
        lambda x, a=_axis, k=_kd: torch.logsumexp(x, a, keepdim=k),
        [_shape],
    )
case(
    "logsumexp_large_values",
    "logsumexp",
    lambda x: ops.logsumexp(x * 100.0),
    lambda x: torch.logsumexp(x * 100.0, -1),
    [(3, 4)],
    notes="exp(200) overflows float32: only the shifted form survives parity",
)

_LABELS = np.array([1, 0, 4, 1])
case(
    "sparse_softmax_cross_entropy",
    "sparse_softmax_cross_entropy",
    _e("sparse_softmax_cross_entropy"),
    lambda z, y: F.cross_entropy(z, y, reduction="none"),
    [(4, 5), _LABELS],
    notes="labels are an integer second input (never differentiated)",
)
_trng = np.random.default_rng(11)
_SOFT = _trng.dirichlet(np.ones(5), size=4)
_ONEHOT = np.eye(5)[[2, 0, 4, 4]]
_SOFT_3D = _trng.dirichlet(np.ones(3), size=(2, 4)).transpose(0, 2, 1)  # classes on axis 1
_UNNORMALISED = _trng.uniform(0.0, 2.0, size=(4, 5))  # rows do not sum to 1: the sum(y) factor
for _name, _target in [("soft", _SOFT), ("onehot", _ONEHOT), ("unnormalised", _UNNORMALISED)]:
    case(
        f"softmax_cross_entropy_{_name}",
        "softmax_cross_entropy",
        lambda z, t=_target: ops.softmax_cross_entropy(z, t),
        lambda z, t=_target: F.cross_entropy(
            z, torch.as_tensor(t, dtype=z.dtype), reduction="none"
        ),
        [(4, 5)],
        notes="targets are float64 constants: they must not up-cast float32 logits",
    )
case(
    "softmax_cross_entropy_axis1",
    "softmax_cross_entropy",
    lambda z: ops.softmax_cross_entropy(z, _SOFT_3D, axis=1),
    lambda z: F.cross_entropy(z, torch.as_tensor(_SOFT_3D, dtype=z.dtype), reduction="none"),
    [(2, 3, 4)],
)
_BIN = _trng.uniform(size=(3, 4))
case(
    "sigmoid_binary_cross_entropy",
    "sigmoid_binary_cross_entropy",
    lambda z: ops.sigmoid_binary_cross_entropy(z, _BIN),
    lambda z: F.binary_cross_entropy_with_logits(
        z, torch.as_tensor(_BIN, dtype=z.dtype), reduction="none"
    ),
    [uniform((3, 4), -5, 5)],
)

# --- reductions: axis None / int / negative / tuple / negative tuple, keepdims both
_AXES = [None, 1, -1, (0, 2), (-1, -3)]
for _axis in _AXES:
    for _kd in (False, True):
        _tag = f"axis{_axis}_keepdims{_kd}".replace(" ", "")
        case(
            f"sum_{_tag}",
            "sum",
            lambda x, a=_axis, k=_kd: x.sum(axis=a, keepdims=k),
            lambda x, a=_axis, k=_kd: torch.sum(x, _dims(a, x.ndim), keepdim=k),
            [(2, 3, 4)],
            parity=ACCUMULATING,
        )
        case(
            f"mean_{_tag}",
            "mean",
            lambda x, a=_axis, k=_kd: ops.mean(x, a, k),
            lambda x, a=_axis, k=_kd: torch.mean(x, _dims(a, x.ndim), keepdim=k),
            [(2, 3, 4)],
            parity=ACCUMULATING,
        )
        case(
            f"max_{_tag}",
            "max",
            lambda x, a=_axis, k=_kd: x.max(axis=a, keepdims=k),
            lambda x, a=_axis, k=_kd: torch.amax(x, _dims(a, x.ndim), keepdim=k),
            [distinct((2, 3, 4))],
            notes="distinct values: ties pinned in A6",
        )
        case(
            f"min_{_tag}",
            "min",
            lambda x, a=_axis, k=_kd: ops.min(x, a, k),
            lambda x, a=_axis, k=_kd: torch.amin(x, _dims(a, x.ndim), keepdim=k),
            [distinct((2, 3, 4))],
        )
        for _ddof in (0, 1):
            case(
                f"var_ddof{_ddof}_{_tag}",
                "var",
                lambda x, a=_axis, k=_kd, d=_ddof: x.var(axis=a, keepdims=k, ddof=d),
                lambda x, a=_axis, k=_kd, d=_ddof: torch.var(
                    x, _dims(a, x.ndim), correction=d, keepdim=k
                ),
                [(2, 3, 4)],
                parity=ACCUMULATING,
            )
case("sum_0d", "sum", lambda x: x.sum(), lambda x: x.sum(), [()])
case("mean_1d_axis0", "mean", lambda x: x.mean(0), lambda x: x.mean(0), [(5,)])
case("max_1d", "max", lambda x: x.max(), lambda x: x.amax(), [distinct((6,))])
# PyTorch's spellings dim= / keepdim= (the reductions accept both; test_names.py pins conflicts)
case(
    "sum_dim_keepdim",
    "sum",
    lambda x: ops.sum(x, dim=(0, 2), keepdim=True),
    lambda x: torch.sum(x, (0, 2), keepdim=True),
    [(2, 3, 4)],
    parity=ACCUMULATING,
)
case(
    "mean_dim",
    "mean",
    lambda x: ops.mean(x, dim=-1),
    lambda x: torch.mean(x, -1),
    [(2, 3, 4)],
    parity=ACCUMULATING,
)
case(
    "max_dim_keepdim",
    "max",
    lambda x: ops.max(x, dim=1, keepdim=True),
    lambda x: torch.amax(x, 1, keepdim=True),
    [distinct((2, 3, 4))],
)
case(
    "min_dim",
    "min",
    lambda x: ops.min(x, dim=0),
    lambda x: torch.amin(x, 0),
    [distinct((2, 3, 4))],
)
case(
    "var_dim_keepdim_ddof1",
    "var",
    lambda x: ops.var(x, ddof=1, dim=1, keepdim=True),
    lambda x: torch.var(x, 1, keepdim=True),
    [(2, 3, 4)],
    parity=ACCUMULATING,
    notes="torch.var is unbiased by default: Ember needs ddof=1 for the same numbers",
)

# --- shape ops
case(
    "reshape_tuple", "reshape", lambda x: x.reshape((6, 4)), lambda x: x.reshape(6, 4), [(2, 3, 4)]
)
case(
    "reshape_varargs_minus1",
    "reshape",
    lambda x: x.reshape(4, -1),
    lambda x: x.reshape(4, -1),
    [(2, 3, 4)],
)
case(
    "reshape_functional_to_1d",
    "reshape",
    lambda x: ops.reshape(x, (24,)),
    lambda x: x.reshape(24),
    [(2, 3, 4)],
)
case("transpose_2d_default", "transpose", lambda x: x.transpose(), lambda x: x.t(), [(3, 4)])
case(
    "transpose_3d_default_reverses",
    "transpose",
    _e("transpose"),
    lambda x: x.permute(2, 1, 0),
    [(2, 3, 4)],
)
case(
    "transpose_axes_102",
    "transpose",
    lambda x: x.transpose(1, 0, 2),
    lambda x: x.permute(1, 0, 2),
    [(2, 3, 4)],
)
case(
    "transpose_axes_201",
    "transpose",
    lambda x: ops.transpose(x, (2, 0, 1)),
    lambda x: x.permute(2, 0, 1),
    [(2, 3, 4)],
)
case(
    "transpose_negative_axes",
    "transpose",
    lambda x: x.transpose((-1, 0, 1)),
    lambda x: x.permute(2, 0, 1),
    [(2, 3, 4)],
)
case("T_2d", "transpose", lambda x: x.T, lambda x: x.T, [(3, 4)])
case("T_3d_reverses", "transpose", lambda x: x.T, lambda x: x.permute(2, 1, 0), [(2, 3, 4)])
case("squeeze_axis", "squeeze", lambda x: x.squeeze(1), lambda x: x.squeeze(1), [(3, 1, 4)])
case(
    "squeeze_negative_axis",
    "squeeze",
    lambda x: ops.squeeze(x, -2),
    lambda x: x.squeeze(-2),
    [(3, 1, 4)],
)
case("squeeze_all", "squeeze", lambda x: x.squeeze(), lambda x: x.squeeze(), [(1, 3, 1)])
case("unsqueeze_0", "unsqueeze", lambda x: x.unsqueeze(0), lambda x: x.unsqueeze(0), [(3, 4)])
case(
    "unsqueeze_minus1",
    "unsqueeze",
    lambda x: ops.unsqueeze(x, -1),
    lambda x: x.unsqueeze(-1),
    [(3, 4)],
)
case("unsqueeze_middle", "unsqueeze", lambda x: x.unsqueeze(1), lambda x: x.unsqueeze(1), [(3, 4)])
case("flatten_all", "flatten", lambda x: x.flatten(), lambda x: x.flatten(), [(2, 3, 4)])
case(
    "flatten_keep_batch",
    "flatten",
    lambda x: ops.flatten(x, 1),
    lambda x: x.flatten(1),
    [(2, 3, 4)],
)
case(
    "concatenate_axis0",
    "concatenate",
    lambda *xs: ops.concatenate(xs, axis=0),
    lambda *xs: torch.cat(xs, 0),
    [(2, 3), (4, 3)],
)
case(
    "concatenate_axis1_three",
    "concatenate",
    lambda *xs: ops.concatenate(xs, axis=1),
    lambda *xs: torch.cat(xs, 1),
    [(2, 3), (2, 1), (2, 2)],
)
case(
    "concatenate_axis_minus1_3d",
    "concatenate",
    lambda *xs: ops.concatenate(list(xs), -1),
    lambda *xs: torch.cat(xs, -1),
    [(2, 3, 1), (2, 3, 2)],
)
for _axis in (0, 1, -1):
    case(
        f"stack_axis{_axis}",
        "stack",
        lambda *xs, a=_axis: ops.stack(xs, axis=a),
        lambda *xs, a=_axis: torch.stack(xs, a),
        [(2, 3), (2, 3), (2, 3)],
    )
case("pad_2d", "pad", lambda x: x.pad(((1, 2), (0, 1))), lambda x: F.pad(x, (0, 1, 1, 2)), [(2, 3)])
case(
    "pad_constant_value",
    "pad",
    lambda x: ops.pad(x, ((0, 1), (2, 0)), 0.5),
    lambda x: F.pad(x, (2, 0, 0, 1), value=0.5),
    [(2, 3)],
)
case("pad_int_width", "pad", lambda x: x.pad(1), lambda x: F.pad(x, (1, 1, 1, 1)), [(2, 3)])
case(
    "pad_3d",
    "pad",
    lambda x: x.pad(((0, 0), (1, 0), (2, 1))),
    lambda x: F.pad(x, (2, 1, 1, 0)),
    [(2, 3, 2)],
)

_MASK = np.random.default_rng(3).uniform(size=(4, 5)) > 0.4
_INDICES = {
    "slice_rows": np.s_[1:3],
    "slice_step_columns": np.s_[:, ::2],
    "integer": 1,
    "ellipsis_negative": np.s_[..., -1],
    "newaxis_mixed": np.s_[None, 1:, 2],
    "scalar_element": (-1, -2),
    "int_array_repeated": np.array([0, 0, 2]),
    "int_list_repeated": [3, 3, 3, 1],
    "int_array_2d_repeated": np.array([[0, 1], [1, 1]]),
    "int_arrays_both_axes_repeated_pairs": (np.array([0, 0, 2, 0]), np.array([1, 1, 4, 1])),
    "tensor_index_repeated": Tensor(np.array([2, 2, 0])),
    "boolean_mask": _MASK,
    "boolean_row_mask": np.array([True, False, True, True]),
    "mixed_int_list_and_slice": ([0, 2, 2], slice(1, 4)),
    "mixed_slice_and_int_list": (slice(1, None), [0, 0, 3]),
    "mixed_int_array_and_step": (np.array([1, 1]), slice(None, None, 2)),
}
for _name, _index in _INDICES.items():
    case(
        f"getitem_{_name}",
        "getitem",
        lambda x, i=_index: x[i],
        lambda x, i=_index: x[_torch_index(i)],
        [(4, 5)],
        notes="repeated indices must accumulate (np.add.at), catalogue A5",
    )
case(
    "getitem_functional",
    "getitem",
    lambda x: ops.getitem(x, (slice(None), 2)),
    lambda x: x[:, 2],
    [(4, 5)],
)


# ------------------------------------------------------------------ convolution and pooling
# Ember is NHWC with HWIO kernels; PyTorch NCHW with OIHW: the references permute in and out.
def _nchw(x):
    return x.permute(0, 3, 1, 2)


def _nhwc(x):
    return x.permute(0, 2, 3, 1)


case(
    "conv2d_valid_stride1",
    "conv2d",
    lambda x, k: ops.conv2d(x, k),
    lambda x, k: _nhwc(F.conv2d(_nchw(x), k.permute(3, 2, 0, 1))),
    [(2, 6, 5, 3), (3, 3, 3, 4)],
    notes="strides, 'same' padding and dilation are swept in test_conv_ops.py",
)
case(
    "conv2d_stride2_dilated_bias",
    "conv2d",
    lambda x, k, b: ops.conv2d(x, k, 2, "valid", 2, bias=b),
    lambda x, k, b: _nhwc(F.conv2d(_nchw(x), k.permute(3, 2, 0, 1), b, stride=2, dilation=2)),
    [(1, 9, 8, 2), (2, 3, 2, 3), (3,)],
)
case(
    "conv2d_fused_bias_relu",
    "conv2d",
    lambda x, k, b: ops.conv2d(x, k, 1, "same", bias=b, relu=True),
    lambda x, k, b: _nhwc(F.relu(F.conv2d(_nchw(x), k.permute(3, 2, 0, 1), b, padding=1))),
    [(2, 5, 6, 3), (3, 3, 3, 4), (4,)],
    notes="gradcheck samples rarely sit at the kink; the relu mask comes from the output",
)
case(
    "conv2d_transpose_stride2",
    "conv2d_transpose",
    lambda x, k: ops.conv2d_transpose(x, k, 2),
    lambda x, k: _nhwc(F.conv_transpose2d(_nchw(x), k.permute(3, 2, 0, 1), stride=2)),
    [(2, 3, 4, 2), (3, 3, 4, 2)],
    notes="Keras kernel (kh, kw, filters, in) is torch's (in, filters, kh, kw)",
)
case(
    "depthwise_conv2d_multiplier2",
    "depthwise_conv2d",
    lambda x, k: ops.depthwise_conv2d(x, k),
    lambda x, k: _nhwc(F.conv2d(_nchw(x), k.permute(2, 3, 0, 1).reshape(6, 1, 3, 3), groups=3)),
    [(2, 5, 6, 3), (3, 3, 3, 2)],
)
case(
    "max_pool2d_2x2",
    "max_pool2d",
    lambda x: ops.max_pool2d(x, 2),
    lambda x: _nhwc(F.max_pool2d(_nchw(x), 2)),
    [distinct((2, 5, 4, 3))],
)
case(
    "max_pool2d_overlapping",
    "max_pool2d",
    lambda x: ops.max_pool2d(x, 3, 2),
    lambda x: _nhwc(F.max_pool2d(_nchw(x), 3, 2)),
    [distinct((1, 7, 6, 2))],
)
case(
    "avg_pool2d_2x2",
    "avg_pool2d",
    lambda x: ops.avg_pool2d(x, 2),
    lambda x: _nhwc(F.avg_pool2d(_nchw(x), 2)),
    [(2, 5, 4, 3)],
)
case(
    "avg_pool2d_overlapping",
    "avg_pool2d",
    lambda x: ops.avg_pool2d(x, 3, 2),
    lambda x: _nhwc(F.avg_pool2d(_nchw(x), 3, 2)),
    [(1, 7, 6, 2)],
)
case(
    "upsample_nearest2d",
    "upsample_nearest2d",
    lambda x: ops.upsample_nearest2d(x, (2, 3)),
    lambda x: _nhwc(F.interpolate(_nchw(x), scale_factor=(2, 3), mode="nearest")),
    [(2, 3, 2, 4)],
)


# ------------------------------------------------------------------ normalization
def _torch_batch_norm(x, g, b):
    return F.batch_norm(x, None, None, g, b, training=True, eps=1e-3)


case(
    "normalize_batch_axis0",
    "normalize",
    lambda x, g, b: ops.normalize(x, (0,), g, b, 1e-3)[0],
    _torch_batch_norm,
    [(6, 4), (4,), (4,)],
)
case(
    "normalize_layer_last_axis",
    "normalize",
    lambda x, g, b: ops.normalize(x, (2,), g, b, 1e-3, param_shape=(1, 1, 5))[0],
    lambda x, g, b: F.layer_norm(x, (5,), g, b, eps=1e-3),
    [(2, 3, 5), (5,), (5,)],
)
_MOVING_MEAN = np.array([[0.5, -0.2, 0.1, 0.0]])
_MOVING_VAR = np.array([[1.5, 0.7, 2.0, 1.0]])
case(
    "normalize_inference",
    "normalize_inference",
    lambda x, g, b: ops.normalize_inference(x, _MOVING_MEAN, _MOVING_VAR, g, b, 1e-3),
    lambda x, g, b: F.batch_norm(
        x,
        torch.as_tensor(_MOVING_MEAN[0], dtype=x.dtype),
        torch.as_tensor(_MOVING_VAR[0], dtype=x.dtype),
        g,
        b,
        training=False,
        eps=1e-3,
    ),
    [(6, 4), (4,), (4,)],
    notes="moving statistics are float64 constants: they must not up-cast float32",
)

# --- embedding lookup: repeated indices accumulate (catalogue A5)
_TOKENS = np.array([[1, 0, 3], [3, 3, 2]])
case(
    "embedding_repeated",
    "embedding",
    lambda table: ops.embedding(_TOKENS, table),
    lambda table: F.embedding(torch.as_tensor(_TOKENS), table),
    [(4, 5)],
)

# The sequence families keep their rows in their own modules (one file per family).
_op_rows_recurrent.add_rows(case)
_op_rows_attention.add_rows(case)
_op_rows_more.add_rows(case)
_op_rows_graph.add_rows(case)

# Keras spellings: creation functions and aliases of ops that have rows (expand_dims = unsqueeze)
NON_DIFFERENTIABLE = set(ops._KERAS_SPELLINGS) | {
    "as_tensor",
    "equal",
    "not_equal",
    "less",
    "less_equal",
    "greater",
    "greater_equal",
}
GRADCHECK_CASES = [c for c in CASES if c.gradcheck is not None]
PARITY_CASES = [c for c in CASES if c.ref is not None]


def _ids(c: Case) -> str:
    return c.id


def _float32(arrays):
    return [a.astype(np.float32) if a.dtype.kind == "f" else a for a in arrays]


# ------------------------------------------------------------------------------ table tests
def test_every_differentiable_op_has_a_row():
    assert NON_DIFFERENTIABLE <= set(ops.__all__), "the exclusion list names an op that is gone"
    differentiable = set(ops.__all__) - NON_DIFFERENTIABLE
    covered = {c.op for c in CASES}
    assert differentiable - covered == set(), "ops without a row in the op table"
    assert covered - differentiable == set(), "rows naming an op that is not in ops.__all__"


def test_table_is_well_formed():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate row ids"
    for c in CASES:
        assert c.gradcheck is not None or c.ref is not None, f"{c.id} checks nothing"
        if c.gradcheck is None or c.ref is None:
            assert c.notes, f"{c.id} skips a check without saying why"
    assert len(GRADCHECK_CASES) > 150 and len(PARITY_CASES) > 150


@pytest.mark.parametrize("case", GRADCHECK_CASES, ids=_ids)
def test_gradcheck(case):
    result = gradcheck(case.fn, *case.arrays(), **case.gradcheck)
    assert result.ok, str(result)
    assert result.checked_elements > 0


@pytest.mark.parity
@pytest.mark.parametrize("case", PARITY_CASES, ids=_ids)
def test_matches_torch(case):
    assert_matches_torch(case.fn, case.ref, _float32(case.arrays()), **case.parity)


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_gradients_reaching_inputs_are_float32(case, grad_probe):
    arrays = _float32(case.arrays())
    leaves = [Tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    seen: list = []
    probed = [grad_probe(t, seen) if t.requires_grad else t for t in leaves]
    out = case.fn(*probed)
    assert out.dtype.kind == "f"
    cotangent = np.random.default_rng(0).standard_normal(out.shape).astype(out.dtype)
    (out * Tensor(cotangent)).sum().backward()
    assert len(seen) == sum(t.requires_grad for t in leaves)
    assert all(d == np.float32 for d in seen), f"gradient dtypes {seen}"
    for t in leaves:
        if t.requires_grad:
            assert t.grad.dtype == np.float32 and t.grad.shape == t.shape


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_row_calls_its_op(case, monkeypatch):
    real = getattr(ops, case.op)
    calls = []

    def counting(*args, **kwargs):
        calls.append(case.op)
        return real(*args, **kwargs)

    monkeypatch.setattr(ops, case.op, counting)
    case.fn(*[Tensor(a, requires_grad=a.dtype.kind == "f") for a in case.arrays()])
    assert calls, f"row {case.id} never calls ember.ops.{case.op}"


# ------------------------------------------------------------------------------ other op tests
@pytest.mark.parametrize(
    "name, symbol",
    [
        ("equal", operator.eq),
        ("not_equal", operator.ne),
        ("less", operator.lt),
        ("less_equal", operator.le),
        ("greater", operator.gt),
        ("greater_equal", operator.ge),
    ],
)
def test_comparisons_return_bool_tensors_without_grad(name, symbol):
    a = Tensor(
        np.array([[0.5, 1.0, -2.0, 3.0], [1.0, 1.0, 0.0, 0.5]], dtype=np.float32),
        requires_grad=True,
    )
    b = Tensor(np.array([1.0, 1.0, 0.0, 0.5], dtype=np.float32), requires_grad=True)
    np_fn = getattr(np, name)
    for result, expected in [
        (getattr(ops, name)(a, b), np_fn(a.data, b.data)),
        (symbol(a, b), np_fn(a.data, b.data)),
        (symbol(a, 1.0), np_fn(a.data, 1.0)),
        (symbol(a.data, b), np_fn(a.data, b.data)),  # ndarray on the left: Tensor wins
    ]:
        assert isinstance(result, Tensor)
        assert result.dtype == np.bool_
        assert not result.requires_grad and result.is_leaf
        np.testing.assert_array_equal(result.data, expected)
    assert expected.any() and not expected.all()  # the sample has both outcomes


def test_cast_float64_to_float32_returns_gradient_in_float64():
    x = Tensor(np.array([1.0, -2.5, 3.25]), requires_grad=True)
    y = x.astype("float32")
    assert y.dtype == np.float32
    c = np.array([0.5, 2.0, -1.0], dtype=np.float32)
    (y * Tensor(c)).sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_array_equal(x.grad, c.astype(np.float64))
    assert x.astype("float64") is x  # casting to the same dtype adds no node
    as_int = x.astype(np.int64)
    assert as_int.dtype == np.int64 and not as_int.requires_grad


@pytest.mark.parametrize(
    "name",
    [
        "exp",
        "sqrt",
        "abs",
        "relu",
        "sigmoid",
        "tanh",
        "sum",
        "mean",
        "max",
        "var",
        "flatten",
        "transpose",
        "softmax",
        "log_softmax",
        "logsumexp",
    ],
)
def test_ops_accept_arrays_and_lists_with_float32_default(name):
    op = getattr(ops, name)
    from_list = op([[1.0, 2.0], [3.0, 4.0]])
    from_array = op(np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32))
    assert from_list.dtype == np.float32  # Python floats: the float32 default
    np.testing.assert_array_equal(from_list.data, from_array.data)
    assert op(np.ones((2, 2))).dtype == np.float64  # a float64 array is float64 on request
