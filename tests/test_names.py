"""Names a user of NumPy, PyTorch or Keras guesses exist (issue 10, item 7): the top-level
re-exports, tensor creation, ``ember.random``, the math ops and their Tensor methods, PyTorch's
``dim=``/``keepdim=`` spellings, Keras' lower-case regularizers and ``to_categorical``.

Each test checks numbers or behaviour, not only that a name exists. Gradients of the new ops are
checked by their rows in the op table (``test_ops.py``); here, their spellings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ember
from ember import layers, models, regularizers

DOCS = Path(__file__).resolve().parent.parent / "docs" / "aliases.md"


def _same(a, b) -> bool:
    a = a.numpy() if isinstance(a, ember.Tensor) else np.asarray(a)
    b = b.numpy() if isinstance(b, ember.Tensor) else np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)


# ------------------------------------------------------------------------------ top level
def test_every_name_in_dunder_all_exists():
    missing = [name for name in ember.__all__ if not hasattr(ember, name)]
    assert missing == []


def test_models_and_input_at_the_top_level_are_the_real_classes():
    assert ember.Sequential is models.Sequential
    assert ember.Model is models.Model
    assert ember.Input is layers.Input
    model = ember.Sequential([ember.Input(shape=(3,)), layers.Dense(2)])
    assert model(np.ones((4, 3), dtype=np.float32)).shape == (4, 2)


def test_variables_at_the_top_level():
    from ember import variables

    assert ember.Variable is variables.Variable and ember.Parameter is variables.Parameter
    v = ember.Variable([1.0, 2.0])
    v.assign_add(1.0)
    assert _same(v.numpy(), np.array([2.0, 3.0], dtype=np.float32))
    assert ember.Parameter(np.zeros(2, np.float32)).requires_grad


def test_gradient_tape_at_the_top_level():
    from ember.tensor import GradientTape

    assert ember.GradientTape is GradientTape
    x = ember.tensor([1.0, 3.0], requires_grad=True)
    with ember.GradientTape() as tape:
        y = (x * x).sum()
    np.testing.assert_array_equal(tape.gradient(y, x), [2.0, 6.0])


def test_modules_at_the_top_level():
    import importlib

    for name in ("random", "tree", "data"):
        assert getattr(ember, name) is importlib.import_module(f"ember.{name}"), name
        assert name in ember.__all__
    x, y = np.arange(10.0).reshape(5, 2), np.arange(5)
    batches = list(ember.data.DataLoader(ember.data.TensorDataset(x, y), batch_size=2))
    assert len(batches) == 3
    assert ember.tree.flatten({"a": 1, "b": [2, 3]}) == [1, 2, 3]


def test_top_level_math_is_the_ops():
    for name in ("square", "pow", "sin", "cos", "tan", "log1p", "expm1", "reciprocal", "clone"):
        assert getattr(ember, name) is getattr(ember.ops, name), name
    for name in ("sum", "mean", "max", "min", "var", "power"):
        assert getattr(ember, name) is getattr(ember.ops, name), name


# ------------------------------------------------------------------------------ creation
def test_zeros_and_ones_take_a_tuple_or_varargs_and_are_float32():
    for make, value in ((ember.zeros, 0.0), (ember.ones, 1.0)):
        a, b, c = make(2, 3), make((2, 3)), make(shape=[2, 3])
        assert _same(a, b) and _same(b, c)
        assert a.dtype == np.float32 and np.all(a.numpy() == value)
        assert make(()).shape == () and make(0).shape == (0,)
        assert make(np.int64(2)).shape == (2,)
    assert ember.zeros(2, dtype="float64").dtype == np.float64
    assert ember.ones(2, dtype="int32").dtype == np.int32


def test_created_tensor_can_require_grad():
    w = ember.ones(3, requires_grad=True)
    (w * ember.tensor([1.0, 2.0, 3.0])).sum().backward()
    np.testing.assert_array_equal(w.grad, [1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="floating-point"):
        ember.zeros(2, dtype="int64", requires_grad=True)


@pytest.mark.parametrize(
    "bad, fragment",
    [((2, -1), "negative"), ((2.0, 3), "integers"), ((True,), "integers"), (("3",), "integers")],
)
def test_bad_shapes_raise_value_error_naming_shape(bad, fragment):
    for make in (ember.zeros, ember.ones, ember.rand, ember.randn):
        with pytest.raises(ValueError, match=f"shape.*{fragment}|{fragment}.*shape"):
            make(bad)
    with pytest.raises(ValueError, match="shape"):
        ember.full(bad, 1.0)


def test_dtype_given_positionally_gets_a_hint_and_tuple_plus_sizes_is_refused():
    with pytest.raises(ValueError, match="dtype= as a keyword"):
        ember.zeros(2, "float64")
    with pytest.raises(TypeError, match="either as one tuple"):
        ember.zeros((2, 3), 4)


def test_unsupported_dtypes_raise_type_error_naming_dtype():
    for dtype in ("float16", "complex64", "U3"):
        with pytest.raises(TypeError, match="dtype"):
            ember.zeros(2, dtype=dtype)
    with pytest.raises(TypeError, match="dtype"):
        ember.rand(2, dtype="int32")


def test_full_dtype_follows_the_fill_value():
    assert _same(ember.full((2,), 0.5), np.full(2, 0.5, dtype=np.float32))
    assert _same(ember.full(3, 7), np.full(3, 7, dtype=np.int64))
    assert _same(ember.full(2, True), np.full(2, True))
    assert _same(ember.full(2, 7, dtype="float64"), np.full(2, 7.0))
    with pytest.raises(TypeError, match="fill_value"):
        ember.full(2, "seven")


def test_arange_is_integer_for_integers_and_float32_otherwise():
    assert _same(ember.arange(5), np.arange(5, dtype=np.int64))
    assert _same(ember.arange(1, 10, 3), np.array([1, 4, 7], dtype=np.int64))
    assert _same(ember.arange(5, 0, -2), np.array([5, 3, 1], dtype=np.int64))
    assert _same(ember.arange(0, 1, 0.25), np.array([0, 0.25, 0.5, 0.75], dtype=np.float32))
    assert _same(ember.arange(2.0), np.array([0.0, 1.0], dtype=np.float32))
    assert ember.arange(3, dtype="float64").dtype == np.float64
    assert ember.arange(0.0, 3.0, requires_grad=True).requires_grad
    with pytest.raises(ValueError, match="step"):
        ember.arange(0, 5, 0)
    with pytest.raises(ValueError, match="stop"):
        ember.arange(0, float("inf"))
    with pytest.raises(TypeError, match="start"):
        ember.arange(True, 4)


def test_linspace_values_and_float32():
    x = ember.linspace(0, 1, 5)
    assert _same(x, np.array([0.0, 0.25, 0.5, 0.75, 1.0], dtype=np.float32))
    assert ember.linspace(0, 1).shape == (50,)
    assert _same(ember.linspace(0, 1, 4, endpoint=False), np.arange(4, dtype=np.float32) / 4)
    assert _same(ember.linspace(-1, 1, steps=3), np.array([-1.0, 0.0, 1.0], dtype=np.float32))
    assert ember.linspace(0, 1, 3, dtype="float64").dtype == np.float64
    # the end is exact in float32 even when float32 arithmetic would not land on it
    assert ember.linspace(0.1, 0.7, 7).numpy()[-1] == np.float32(0.7)
    with pytest.raises(TypeError, match="num=4 and steps=5"):
        ember.linspace(0, 1, 4, steps=5)
    with pytest.raises(ValueError, match="num"):
        ember.linspace(0, 1, -1)
    with pytest.raises(ValueError, match="num"):
        ember.linspace(0, 1, 2.5)


def test_eye():
    assert _same(ember.eye(3), np.eye(3, dtype=np.float32))
    assert _same(ember.eye(2, 3, k=1), np.eye(2, 3, 1, dtype=np.float32))
    assert _same(ember.eye(2, dtype="float64"), np.eye(2))
    with pytest.raises(ValueError, match="n must"):
        ember.eye(-1)
    with pytest.raises(ValueError, match="m must"):
        ember.eye(2, 1.5)


def test_like_functions_keep_shape_and_dtype():
    x = ember.tensor(np.arange(6.0).reshape(2, 3))  # float64 array: stays float64
    assert _same(ember.zeros_like(x), np.zeros((2, 3)))
    assert _same(ember.ones_like(x), np.ones((2, 3)))
    assert _same(ember.full_like(x, 2.5), np.full((2, 3), 2.5))
    assert _same(ember.zeros_like(x, dtype="float32"), np.zeros((2, 3), dtype=np.float32))
    assert _same(ember.ones_like([1.0, 2.0]), np.ones(2, dtype=np.float32))  # list: float32
    assert _same(ember.ones_like(np.array([1, 2])), np.ones(2, dtype=np.int64))
    assert _same(ember.full_like(np.zeros(2, dtype=np.int32), 2.5), np.full(2, 2, np.int32))


def test_rand_and_randn_are_reproducible_and_distributed():
    ember.manual_seed(3)
    a, n = ember.rand(2, 3), ember.randn(4)
    ember.manual_seed(3)
    b, m = ember.rand((2, 3)), ember.randn(4)
    assert _same(a, b) and _same(n, m)
    assert a.dtype == np.float32 and n.dtype == np.float32
    assert not _same(ember.rand(2, 3), a)  # no reseed: the generator moved on
    big = ember.rand(20_000, dtype="float64").numpy()
    assert big.dtype == np.float64 and big.min() >= 0 and big.max() < 1
    assert abs(big.mean() - 0.5) < 0.01
    normal = ember.randn(20_000, dtype="float64").numpy()
    assert abs(normal.mean()) < 0.03 and abs(normal.std() - 1) < 0.03


# ------------------------------------------------------------------------------ ember.random
def test_random_normal_is_reproducible_under_manual_seed_and_differs_without_reseed():
    ember.manual_seed(0)
    a = ember.random.normal((3, 4))
    ember.manual_seed(0)
    b = ember.random.normal((3, 4))
    c = ember.random.normal((3, 4))
    assert _same(a, b) and a.dtype == np.float32 and a.shape == (3, 4)
    assert not np.array_equal(a.numpy(), c.numpy())
    ember.random.seed(0)  # the alias reseeds the same generator
    assert _same(ember.random.normal((3, 4)), a)


def test_random_normal_mean_and_stddev():
    x = ember.random.normal((40_000,), mean=3.0, stddev=0.5, dtype="float64").numpy()
    assert x.dtype == np.float64
    assert abs(x.mean() - 3.0) < 0.02 and abs(x.std() - 0.5) < 0.02
    with pytest.raises(ValueError, match="stddev"):
        ember.random.normal((2,), stddev=-1.0)
    with pytest.raises(TypeError, match="mean"):
        ember.random.normal((2,), mean="zero")


def test_seed_argument_does_not_advance_embers_generator():
    ember.manual_seed(5)
    state = ember.get_rng_state()
    for draw in (
        lambda: ember.random.normal((3,), seed=1),
        lambda: ember.random.uniform((3,), seed=1),
        lambda: ember.random.randint((3,), 0, 9, seed=1),
        lambda: ember.random.shuffle(ember.arange(5), seed=1),
    ):
        first, second = draw(), draw()
        assert _same(first, second)  # an int seed always gives the same numbers
        assert ember.get_rng_state() == state
    assert not _same(ember.random.normal((3,), seed=1), ember.random.normal((3,), seed=2))
    with pytest.raises(ValueError, match="seed"):
        ember.random.normal((3,), seed=-1)


def test_random_uniform_bounds_and_never_maxval():
    x = ember.random.uniform((10_000,), minval=-2.0, maxval=3.0)
    assert x.dtype == np.float32
    assert x.numpy().min() >= -2.0 and x.numpy().max() < 3.0
    assert x.numpy().max() > 2.9 and x.numpy().min() < -1.9

    class AlmostOne(np.random.Generator):
        """Draws just below 1: the float32 result would round up onto maxval."""

        def random(self, size=None, dtype=np.float64):
            return np.full(size, 1 - 1e-12)

    y = ember.random.uniform((2,), 0.0, 1.0, seed=AlmostOne(np.random.PCG64(0)))
    assert np.all(y.numpy() < 1.0) and np.all(y.numpy() > 0.9999)
    with pytest.raises(ValueError, match="minval must be < maxval"):
        ember.random.uniform((2,), 1.0, 1.0)


def test_randint_spellings():
    ember.manual_seed(0)
    keras = ember.random.randint((2, 3), 0, 10)
    ember.manual_seed(0)
    keyword = ember.random.randint(shape=(2, 3), minval=0, maxval=10)
    ember.manual_seed(0)
    pytorch = ember.random.randint(0, 10, (2, 3))
    ember.manual_seed(0)
    pytorch_high_only = ember.random.randint(10, (2, 3))
    ember.manual_seed(0)
    pytorch_keywords = ember.random.randint(low=0, high=10, size=(2, 3))
    for other in (keyword, pytorch, pytorch_high_only, pytorch_keywords):
        assert _same(other, keras)
    assert keras.dtype == np.int32
    values = ember.random.randint((2000,), -3, 4).numpy()
    assert set(values.tolist()) == set(range(-3, 4))
    assert ember.random.randint(2, 5, (3,), dtype="int64").dtype == np.int64
    assert ember.randint is ember.random.randint


@pytest.mark.parametrize(
    "args, kwargs, error, fragment",
    [
        ((0, 10), {}, TypeError, "shape as a tuple"),
        (((2,), 0), {}, TypeError, "missing maxval"),
        (((2,),), {"minval": 0, "high": 3}, TypeError, "Keras' keywords"),
        (((2,), 5, 5), {}, ValueError, "minval must be < maxval"),
        (((2,), 0.5, 3), {}, TypeError, "minval must be an integer"),
        (((2,), 0, 3), {"dtype": "float32"}, TypeError, "integer dtype"),
        ((1, 2, 3, (2,)), {}, TypeError, "at most 2 positional"),
    ],
)
def test_randint_errors(args, kwargs, error, fragment):
    with pytest.raises(error, match=fragment):
        ember.random.randint(*args, **kwargs)


def test_shuffle_permutes_along_an_axis_and_keeps_the_gradient():
    x = ember.tensor(np.arange(12.0).reshape(4, 3), requires_grad=True)
    y = ember.random.shuffle(x, seed=0)
    assert sorted(map(tuple, y.tolist())) == sorted(map(tuple, x.tolist()))
    assert not _same(y.detach(), x.detach())
    (y * ember.tensor(np.arange(12.0).reshape(4, 3))).sum().backward()
    order = [int(row[0]) // 3 for row in y.tolist()]
    expected = np.zeros((4, 3))
    expected[order] = np.arange(12.0).reshape(4, 3)
    np.testing.assert_array_equal(x.grad, expected)
    columns = ember.random.shuffle(x.detach(), axis=-1, seed=0)
    assert sorted(columns.numpy()[0].tolist()) == [0.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="axis 2"):
        ember.random.shuffle(x, axis=2)


# ------------------------------------------------------------------------------ math ops
X = np.array([[-1.5, -0.2, 0.3], [0.7, 1.1, 2.0]], dtype=np.float32)


@pytest.mark.parametrize(
    "name, reference",
    [
        ("square", np.square),
        ("sin", np.sin),
        ("cos", np.cos),
        ("tan", np.tan),
        ("log1p", lambda a: np.log1p(np.abs(a))),
        ("expm1", np.expm1),
        ("reciprocal", np.reciprocal),
    ],
)
def test_math_ops_and_methods_compute_numpys_values_in_float32(name, reference):
    data = np.abs(X) if name == "log1p" else X
    x = ember.tensor(data)
    for result in (getattr(ember, name)(x), getattr(x, name)(), getattr(ember.ops, name)(data)):
        assert result.dtype == np.float32
        np.testing.assert_allclose(result.numpy(), reference(data), rtol=1e-6)
    assert getattr(ember, name)(x.double()).dtype == np.float64


def test_trigonometry_of_integers_is_float32():
    assert ember.sin(ember.arange(3)).dtype == np.float32
    assert ember.square(ember.arange(3)).dtype == np.int64  # stays integer, as NumPy and torch


def test_pow_is_power():
    x = ember.tensor(X)
    assert _same(ember.pow(x, 3), x**3)
    assert _same(x.pow(2), ember.power(x, 2))
    assert _same(ember.pow(2.0, x), 2.0**x)


def test_clone_stays_in_the_graph_and_does_not_share_memory():
    x = ember.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x.clone()
    assert y.requires_grad and not y.is_leaf
    (y * y).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 4.0, 6.0])
    plain = ember.tensor([1.0, 2.0])
    copy = plain.clone()
    copy[0] = 9.0
    assert plain.tolist() == [1.0, 2.0]


def test_view_numel_dim_float_double():
    x = ember.arange(12.0)
    assert _same(x.view(3, -1), x.reshape(3, 4))
    assert _same(x.view((2, 6)), x.reshape(2, 6))
    assert x.view(2, 2, 3).shape == (2, 2, 3)
    assert x.numel() == 12 and x.view(3, 4).dim() == 2 and ember.tensor(1.0).dim() == 0
    assert x.size == 12  # NumPy's property, not PyTorch's size() method (docs/aliases.md)
    ints = ember.arange(3)
    assert _same(ints.float(), np.arange(3, dtype=np.float32))
    assert _same(ints.double(), np.arange(3, dtype=np.float64))
    w = ember.tensor([1.0, 2.0], requires_grad=True)
    (w.double() * 3).sum().backward()
    assert w.grad.dtype == np.float32
    np.testing.assert_array_equal(w.grad, [3.0, 3.0])
    assert w.float() is w  # already float32: no copy, as PyTorch


# ------------------------------------------------------------------------------ dim= / keepdim=
REDUCTIONS = ["sum", "mean", "max", "min", "var"]
Y = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)


@pytest.mark.parametrize("name", REDUCTIONS)
def test_dim_and_keepdim_equal_axis_and_keepdims(name):
    op = getattr(ember, name)
    x = ember.tensor(Y)
    for axis in (None, 1, -1, (0, 2)):
        for keep in (False, True):
            expected = op(x, axis=axis, keepdims=keep)
            assert _same(op(x, dim=axis, keepdim=keep), expected)
            assert _same(op(x, axis, dim=None, keepdim=keep), expected)
    assert _same(op(x, dim=1), op(x, 1))


@pytest.mark.parametrize("name", REDUCTIONS)
def test_both_spellings_raise_type_error(name):
    op = getattr(ember, name)
    x = ember.tensor(Y)
    with pytest.raises(TypeError, match="axis=1 and dim=0"):
        op(x, axis=1, dim=0)
    with pytest.raises(TypeError, match="axis=1 and dim=1"):
        op(x, 1, dim=1)  # positional axis counts too
    with pytest.raises(TypeError, match="keepdims=True and keepdim=False"):
        op(x, keepdims=True, keepdim=False)


@pytest.mark.parametrize("name", REDUCTIONS)
def test_tensor_methods_accept_dim_and_keepdim(name):
    x = ember.tensor(Y)
    assert _same(getattr(x, name)(dim=1, keepdim=True), getattr(x, name)(axis=1, keepdims=True))


# ------------------------------------------------------------------------------ regularizers
def test_lower_case_regularizers():
    w = ember.tensor([1.0, -2.0])
    assert type(regularizers.l1(0.1)) is regularizers.L1
    assert regularizers.l1(0.1)(w).item() == pytest.approx(0.3)
    assert regularizers.l2(0.1)(w).item() == pytest.approx(0.5)
    assert regularizers.l1_l2(l1=0.1, l2=0.1)(w).item() == pytest.approx(0.8)
    assert regularizers.l1().get_config() == {"l1": 0.01}
    assert regularizers.l2().get_config() == {"l2": 0.01}
    assert regularizers.l1_l2().get_config() == {"l1": 0.01, "l2": 0.01}
    for name in ("l1", "l2", "l1_l2", "l1l2", "L1_L2"):
        assert (
            regularizers.get(name).get_config()
            == getattr(regularizers, name.lower().replace("l1l2", "l1_l2"))().get_config()
        )
    with pytest.raises(ValueError, match="l2"):
        regularizers.l2(-1.0)


# ------------------------------------------------------------------------------ to_categorical
def test_to_categorical_values_and_shapes():
    to_categorical = ember.utils.to_categorical
    one_hot = to_categorical(np.array([2, 0, 1, 2]))
    assert _same(one_hot, np.eye(3, dtype=np.float32)[[2, 0, 1, 2]])
    column = to_categorical(np.array([[1], [3]]), num_classes=5)
    assert _same(column, np.eye(5, dtype=np.float32)[[1, 3]])
    assert to_categorical([0, 1], dtype="float64").dtype == np.float64
    assert _same(to_categorical(np.array([1.0, 0.0])), np.eye(2, dtype=np.float32)[[1, 0]])
    assert _same(to_categorical(ember.tensor([0, 1])), np.eye(2, dtype=np.float32))
    grid = to_categorical(np.array([[0, 1], [1, 0]]))
    assert grid.shape == (2, 2, 2) and grid[0, 1].tolist() == [0.0, 1.0]
    assert to_categorical(np.zeros(0, dtype=int), num_classes=3).shape == (0, 3)


@pytest.mark.parametrize(
    "y, kwargs, error, fragment",
    [
        ([0, 2, -1, -2], {}, ValueError, r"y\[2\] = -1"),
        ([0, 3, 1, 4], {"num_classes": 3}, ValueError, r"y\[1\] = 3"),
        ([[0, 1], [5, 0]], {"num_classes": 2}, ValueError, r"y\[\(1, 0\)\] = 5"),
        ([0.0, 1.5], {}, ValueError, r"whole-number.*y\[1\] = 1.5"),
        ([], {}, ValueError, "pass num_classes"),
        ([0, 1], {"num_classes": 0}, ValueError, "num_classes must be >= 1"),
        ([0, 1], {"num_classes": 2.0}, TypeError, "num_classes must be an integer"),
        (["a", "b"], {}, TypeError, "integer class labels"),
    ],
)
def test_to_categorical_errors_name_the_first_bad_index(y, kwargs, error, fragment):
    with pytest.raises(error, match=fragment):
        ember.utils.to_categorical(y, **kwargs)


# ------------------------------------------------------------------------------ docs
def test_aliases_doc_lists_the_spellings_added_here():
    text = DOCS.read_text(encoding="utf-8")
    for spelling in (
        "dim=",
        "keepdim=",
        "ember.pow",
        "x.view(",
        "x.numel()",
        "x.dim()",
        "x.clone()",
        "x.float()",
        "x.double()",
        "regularizers.l1_l2",
        "ember.randint",
        "ember.random.seed",
        "steps=",
        "size()",
        "swish",
        "identity",
        "lr",
    ):
        assert spelling in text, spelling
