"""Layers (Dense, Activation, Flatten, Input, custom layers), regularizers and initializers.

``Dense`` is checked against ``torch.nn.Linear`` with copied weights: Ember's kernel is
``(in, out)`` (Keras' layout) while torch's weight is ``(out, in)``, so ``weight = kernel.T`` and
``kernel.grad == weight.grad.T``. Every comparison contracts the output with a random cotangent.
Catalogue cases are named after their IDs (B1, B4, B8, B9).
"""

from __future__ import annotations

import math
import zlib
from collections import defaultdict

import numpy as np
import pytest

import ember
from ember import initializers, layers, ops, regularizers
from ember.layers import base
from ember.testing import gradcheck

ACTIVATIONS = ["linear", "sigmoid", "tanh", "relu", "softmax"]


@pytest.fixture
def fresh_names(monkeypatch):
    """Layer names restart at ``dense``, as after Keras' ``clear_session()``."""
    monkeypatch.setattr(base, "_name_counts", defaultdict(int))


def _torch_activation(name, torch):
    return {
        "linear": lambda t: t,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": torch.relu,
        "softmax": lambda t: torch.softmax(t, -1),
    }[name]


# ------------------------------------------------------------------------------ Dense vs torch
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4)], ids=["2d", "3d"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_dense_matches_torch_linear(activation, shape, use_bias, dtype, torch):
    rng = np.random.default_rng(zlib.crc32(repr((activation, shape, use_bias, dtype)).encode()))
    x = rng.uniform(-2, 2, size=shape).astype(dtype)
    layer = layers.Dense(3, activation=activation, use_bias=use_bias, dtype=dtype)
    xe = ember.tensor(x, requires_grad=True)
    out = layer(xe)
    assert layer.kernel.shape == (4, 3)  # input size inferred from the first call
    if use_bias:
        layer.bias.data = rng.uniform(-1, 1, size=3).astype(dtype)  # non-zero bias
        out = layer(xe)
    else:
        assert layer.bias is None and len(layer.weights) == 1

    linear = torch.nn.Linear(4, 3, bias=use_bias).to(getattr(torch, dtype))
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(layer.kernel.data.T))
        if use_bias:
            linear.bias.copy_(torch.tensor(layer.bias.data))
    xt = torch.tensor(x, requires_grad=True)
    ref = _torch_activation(activation, torch)(linear(xt))

    tight = dtype == "float64"
    atol, rtol = (1e-12, 1e-10) if tight else (1e-5, 1e-4)
    gatol, grtol = (1e-12, 1e-10) if tight else (1e-4, 1e-3)
    assert out.shape == tuple(ref.shape) and out.dtype == np.dtype(dtype)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), atol=atol, rtol=rtol)

    cotangent = rng.standard_normal(out.shape).astype(dtype)
    (out * ember.tensor(cotangent)).sum().backward()
    (ref * torch.tensor(cotangent)).sum().backward()
    np.testing.assert_allclose(xe.grad, xt.grad.numpy(), atol=gatol, rtol=grtol)
    np.testing.assert_allclose(
        layer.kernel.grad, linear.weight.grad.numpy().T, atol=gatol, rtol=grtol
    )
    assert layer.kernel.grad.dtype == np.dtype(dtype)
    if use_bias:
        np.testing.assert_allclose(
            layer.bias.grad, linear.bias.grad.numpy(), atol=gatol, rtol=grtol
        )
        assert layer.bias.grad.shape == (3,)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_dense_gradcheck_input_kernel_and_bias(activation):
    rng = np.random.default_rng(3)
    layer = layers.Dense(3, activation=activation, dtype="float64")
    x = rng.uniform(0.2, 1.5, size=(4, 5)) * rng.choice([-1.0, 1.0], size=(4, 5))
    layer(x)
    kernel, bias = layer.kernel, layer.bias

    def fn(inputs, k, b):  # route gradcheck's float64 copies through the layer's own call
        layer.kernel, layer.bias = k, b
        try:
            return layer(inputs)
        finally:
            layer.kernel, layer.bias = kernel, bias

    b0 = rng.uniform(-0.5, 0.5, size=3)
    result = gradcheck(fn, x, kernel.data, b0)
    assert result.ok and result.checked_elements == 20 + 15 + 3


def test_dense_forward_hand_value():
    layer = layers.Dense(2, kernel_initializer=initializers.Constant(0.5), bias_initializer="ones")
    out = layer(np.array([[1.0, 2.0, 3.0]]))
    np.testing.assert_array_equal(out.data, [[4.0, 4.0]])  # 0.5 * 6 + 1
    relu = layers.Dense(1, activation="relu", kernel_initializer=initializers.Constant(-1.0))
    np.testing.assert_array_equal(relu(np.array([[1.0], [-2.0]])).data, [[0.0], [2.0]])


def test_dense_input_size_is_inferred_and_fixed_after_build():
    layer = layers.Dense(7)
    assert not layer.built and layer.weights == []
    layer(np.zeros((2, 13)))
    assert layer.built and layer.kernel.shape == (13, 7) and layer.bias.shape == (7,)
    assert layer.count_params() == 13 * 7 + 7
    assert layer(np.zeros((5, 13))).shape == (5, 7)  # another batch size is fine
    model = ember.models.Sequential([layers.Input(shape=(6,)), layers.Dense(4), layers.Dense(2)])
    assert [tuple(w.shape) for w in model.weights] == [(6, 4), (4,), (4, 2), (2,)]


def test_B1_dense_called_with_wrong_feature_count_names_layer_and_shapes(fresh_names):
    first = layers.Dense(3)
    assert first.name == "dense"
    layer = layers.Dense(3)
    layer(np.ones((2, 4)))
    with pytest.raises(ValueError) as info:
        layer(np.ones((2, 5)))
    assert str(info.value) == (
        'Input 0 of layer "dense_1" is incompatible with the layer: expected axis -1 of input '
        "shape to have value 4, but received input with shape (2, 5)"
    )
    with pytest.raises(ValueError, match=r'layer "dense_1".*min_ndim=2, found ndim=1'):
        layer(np.ones(4))


def test_B8_dense_on_rank3_input_transforms_the_last_axis_like_keras():
    """Documented behaviour (Keras): (N, 28, 28) into Dense(5) without Flatten is not an error;
    the kernel is (28, 5) and each of the 28 rows is transformed independently → (N, 28, 5)."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 28, 28)).astype(np.float32)
    layer = layers.Dense(5)
    out = layer(x)
    assert out.shape == (3, 28, 5) and layer.kernel.shape == (28, 5)
    for i in (0, 13, 27):
        np.testing.assert_allclose(out.data[:, i, :], layer(x[:, i, :]).data, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="expected axis -1 of input shape to have value 28"):
        layer(np.ones((3, 28, 27)))
    # with Flatten first, the kernel sees all 784 features
    model = ember.models.Sequential([layers.Flatten(), layers.Dense(5)])
    assert model(x).shape == (3, 5) and model.layers[1].kernel.shape == (784, 5)


def test_B4_float64_inputs_give_float32_outputs_params_and_grads():
    layer = layers.Dense(3)
    x = ember.tensor(np.random.default_rng(0).standard_normal((4, 2)), requires_grad=True)
    assert x.dtype == np.float64
    out = layer(x)
    assert out.dtype == np.float32
    assert all(w.dtype == np.float32 for w in layer.weights)
    out.sum().backward()
    assert layer.kernel.grad.dtype == np.float32
    assert x.grad.dtype == np.float64  # the cast's backward returns the input's dtype
    np.testing.assert_allclose(x.grad, np.tile(layer.kernel.data.sum(axis=1), (4, 1)), rtol=1e-6)
    assert layer(np.ones((1, 2))).dtype == np.float32  # plain float64 arrays too


def test_B4_uint8_and_int_inputs_are_cast_to_float32_values_kept():
    layer = layers.Dense(1, kernel_initializer="ones", use_bias=False)
    images = np.array([[0, 128, 255]], dtype=np.uint8)
    out = layer(images)
    assert out.dtype == np.float32
    assert out.item() == 383.0  # no uint8 wrap-around (383 % 256 would be 127)
    assert layer(np.array([[1, 2, 3]], dtype=np.int64)).item() == 6.0
    flat = layers.Flatten()(np.full((2, 2, 2), 200, dtype=np.uint8))
    assert flat.dtype == np.float32 and flat.data.sum() == 1600.0


@pytest.mark.parametrize(
    "bad",
    [np.array([["a", "b", "c", "d"]] * 2), np.array([[object()] * 4])],
    ids=["str", "object"],
)
def test_B4_str_object_arrays_raise_type_error(bad):
    layer = layers.Dense(3)
    with pytest.raises(TypeError, match="expected numbers"):
        layer(bad)
    assert not layer.built


@pytest.mark.parametrize("wrap", [np.asarray, ember.tensor], ids=["array", "tensor"])
def test_B4_bool_input_means_zeros_and_ones(wrap):
    """Boolean one-hot data (Keras' character-LSTM example builds it) is cast as Keras does."""
    layer = layers.Dense(3)
    flags = np.eye(4, dtype=bool)[:2]
    out = layer(wrap(flags))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out.numpy(), layer(flags.astype(np.float32)).numpy())


@pytest.mark.parametrize("units", [0, -3, 2.5, True, "4", None])
def test_B9_dense_bad_units_raise_value_error(units):
    with pytest.raises(ValueError, match=r"units must be a positive integer, got"):
        layers.Dense(units)


def test_B9_unknown_activation_suggests_the_closest():
    with pytest.raises(ValueError) as info:
        layers.Dense(3, activation="rleu")
    message = str(info.value)
    assert "unknown activation 'rleu'" in message and "Did you mean 'relu'?" in message
    # the message lists every valid name, sorted
    listed = message.split("Valid activation names: ")[1].split(", ")
    assert listed == sorted(ember.activations._ACTIVATIONS)
    assert {"linear", "relu", "sigmoid", "softmax", "tanh", "gelu", "swish"} <= set(listed)
    with pytest.raises(ValueError, match="Did you mean 'softmax'"):
        layers.Activation("sofmax")
    with pytest.raises(ValueError, match="Did you mean 'glorot_uniform'"):
        layers.Dense(3, kernel_initializer="glorot_unifrom")
    with pytest.raises(ValueError, match="Did you mean 'l2'"):
        layers.Dense(3, kernel_regularizer="l_2")


# ------------------------------------------------------------------------------ custom layer
class Linear(layers.Layer):
    """The classic Keras custom layer, line for line (``keras.io``: "Making new layers")."""

    def __init__(self, units=32):
        super().__init__()
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(
            shape=(input_shape[-1], self.units), initializer="random_normal", trainable=True
        )
        self.b = self.add_weight(shape=(self.units,), initializer="zeros", trainable=True)

    def call(self, inputs):
        return ops.matmul(inputs, self.w) + self.b


def test_custom_layer_builds_lazily_and_trains_with_fit():
    ember.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(256, 3)).astype(np.float32)
    y = x @ np.array([[2.0], [-1.0], [0.5]], np.float32) + 0.3

    layer = Linear(1)
    assert layer.name.startswith("linear") and not layer.built
    model = ember.models.Sequential([layer])
    model.compile(optimizer="sgd", loss="mse")
    before = model.evaluate(x, y, verbose=0)
    history = model.fit(x, y, epochs=40, batch_size=16, verbose=0, shuffle=False)
    losses = history.history["loss"]
    assert len(losses) == 40 and all(np.isfinite(losses))
    assert losses[-1] < losses[0] / 100, losses  # at least a 100× decrease (≈8000× seen)
    assert layer.built and layer.w.shape == (3, 1) and layer.b.shape == (1,)
    assert {id(p) for p in model.parameters()} == {id(layer.w), id(layer.b)}
    np.testing.assert_allclose(layer.w.data[:, 0], [2.0, -1.0, 0.5], atol=0.05)
    assert model.evaluate(x, y, verbose=0) < before / 100


def test_custom_layer_gets_snake_case_names(fresh_names):
    class MyDense(layers.Layer):
        def call(self, inputs):
            return inputs

    assert [MyDense().name, MyDense().name, MyDense(name="head").name] == [
        "my_dense",
        "my_dense_1",
        "head",
    ]


# ------------------------------------------------------------------------------ naming
def test_layer_naming_follows_keras(fresh_names):
    names = [
        layers.Dense(2).name,
        layers.Dense(2).name,
        layers.Flatten().name,
        layers.Dense(2).name,
    ]
    assert names == ["dense", "dense_1", "flatten", "dense_2"]
    assert layers.Activation("relu").name == "activation"
    assert layers.Dense(2, name="out").name == "out"
    assert layers.Dense(2).name == "dense_3"  # an explicit name does not consume a number


# ------------------------------------------------------------------------------ Flatten, Input
def test_flatten_shapes_and_gradient():
    x = np.arange(2 * 3 * 4, dtype=np.float64).reshape(2, 3, 4)
    flat = layers.Flatten(dtype="float64")
    out = flat(x)
    assert out.shape == (2, 12)
    np.testing.assert_array_equal(out.data, x.reshape(2, 12))
    assert flat(np.ones((5, 7))).shape == (5, 7)
    assert flat(np.ones((3,))).shape == (3, 1)  # Keras: (batch,) gains a feature axis
    assert gradcheck(flat, np.random.default_rng(0).standard_normal((2, 3, 4))).ok
    assert flat.weights == []


def test_activation_layer_applies_the_named_function():
    x = np.array([[-1.0, 0.5, 2.0]], np.float32)
    for name in ACTIVATIONS:
        out = layers.Activation(name)(x)
        np.testing.assert_allclose(out.data, ember.activations.get(name)(ember.tensor(x)).data)
    out = layers.Activation("softmax")(x).data
    np.testing.assert_allclose(out.sum(), 1.0, rtol=1e-6)
    custom = layers.Activation(lambda t: t * 2.0)
    np.testing.assert_array_equal(custom(x).data, 2 * x)
    assert layers.Activation("tanh").get_config()["activation"] == "tanh"
    with pytest.raises(ValueError, match="custom activation"):
        custom.get_config()


def test_input_declares_the_per_sample_shape():
    inputs = layers.Input(shape=(4,))
    assert inputs.shape == (None, 4)
    assert layers.Input(7).shape == (None, 7)
    assert layers.Input(shape=(28, 28)).shape == (None, 28, 28)
    outputs = layers.Dense(2)(inputs)
    assert outputs.shape == (None, 2)
    model = ember.models.Model(inputs, outputs)
    assert model(np.ones((3, 4))).shape == (3, 2)
    with pytest.raises(ValueError, match=r"expected axis 1 of input shape to have value 4"):
        model(np.ones((3, 5)))
    with pytest.raises(ValueError, match="positive sizes"):
        layers.Input(shape=(0, 3))


def test_input_in_sequential_builds_every_layer_up_front():
    model = ember.models.Sequential([layers.Input(shape=(5,)), layers.Dense(3), layers.Dense(1)])
    assert all(layer.built for layer in model.layers)
    assert model.layers[0].kernel.shape == (5, 3)


# ------------------------------------------------------------------------------ weights
def test_get_weights_set_weights_round_trip():
    layer = layers.Dense(3)
    layer(np.ones((1, 4)))
    original = layer.get_weights()
    assert [w.shape for w in original] == [(4, 3), (3,)]
    original[0][...] = 99.0  # get_weights returns copies
    assert not np.any(layer.kernel.data == 99.0)

    rng = np.random.default_rng(1)
    new = [rng.standard_normal((4, 3)), rng.standard_normal(3)]  # float64 in
    layer.set_weights(new)
    got = layer.get_weights()
    assert all(w.dtype == np.float32 for w in got)  # the layer keeps its dtype
    for g, n in zip(got, new):
        np.testing.assert_array_equal(g, n.astype(np.float32))
    new[0][...] = 0.0  # set_weights copies
    assert np.array_equal(layer.get_weights()[0], got[0])

    other = layers.Dense(3)
    other(np.ones((1, 4)))
    other.set_weights(layer.get_weights())
    x = rng.standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_array_equal(other(x).data, layer(x).data)


def test_set_weights_shape_and_count_errors_leave_weights_unchanged():
    layer = layers.Dense(2)
    layer(np.ones((1, 3)))
    before = layer.get_weights()
    with pytest.raises(ValueError, match=r"expected 2 arrays, got 1"):
        layer.set_weights([np.ones((3, 2))])
    with pytest.raises(
        ValueError, match=r"weight 'bias' has shape \(2,\), got an array of shape \(3,\)"
    ):
        layer.set_weights([np.ones((3, 2)), np.ones(3)])  # the kernel is fine, the bias is not
    for b, a in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(a, b)  # all-or-nothing


def test_trainable_false_hides_weights_from_the_optimizer():
    layer = layers.Dense(2, trainable=False)
    layer(np.ones((1, 3)))
    assert layer.parameters() == [] and len(layer.non_trainable_weights) == 2


def test_dense_config_round_trip():
    layer = layers.Dense(
        4,
        activation="tanh",
        use_bias=False,
        kernel_initializer=initializers.RandomNormal(stddev=0.1),
        kernel_regularizer=regularizers.L2(0.05),
    )
    clone = layers.Dense.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert clone.units == 4 and clone.activation is ember.activations.tanh and not clone.use_bias


# ------------------------------------------------------------------------------ regularizers
def test_regularizer_penalties_appear_in_layer_losses():
    layer = layers.Dense(
        3,
        kernel_regularizer=regularizers.L2(0.1),
        bias_regularizer=regularizers.L1(0.5),
        bias_initializer=initializers.Constant(-2.0),
    )
    assert layer.losses == []  # no weights yet
    layer(np.ones((2, 4)))
    k = layer.kernel.data.astype(np.float64)
    penalties = [p.item() for p in layer.losses]
    assert len(penalties) == 2
    assert penalties[0] == pytest.approx(0.1 * np.sum(k**2), rel=1e-6)  # l2·Σw², no ½
    assert penalties[1] == pytest.approx(0.5 * 3 * 2.0, rel=1e-6)  # l1·Σ|w|
    layer.losses[0].backward()
    np.testing.assert_allclose(layer.kernel.grad, 2 * 0.1 * layer.kernel.data, rtol=1e-6)


def test_activity_regularizer_is_averaged_over_the_batch():
    layer = layers.Dense(
        2, kernel_initializer="ones", activity_regularizer=regularizers.L1(0.01), use_bias=False
    )
    layer(np.array([[1.0, 1.0], [2.0, 2.0]]))  # outputs [[2, 2], [4, 4]]: Σ|a| = 12
    assert [p.item() for p in layer.losses] == [pytest.approx(0.01 * 12 / 2)]
    layer(np.array([[1.0, 1.0]]))  # recomputed per call, not accumulated
    assert [p.item() for p in layer.losses] == [pytest.approx(0.01 * 4 / 1)]


def test_regularizer_objects_and_names():
    w = ember.tensor([[1.0, -2.0], [3.0, 0.0]])
    assert regularizers.L1(0.1)(w).item() == pytest.approx(0.6)
    assert regularizers.L2(0.1)(w).item() == pytest.approx(1.4)
    assert regularizers.L1L2(l1=0.1, l2=0.1)(w).item() == pytest.approx(2.0)
    assert regularizers.L1L2()(w).item() == 0.0
    assert regularizers.get("l2").l2 == 0.01 and regularizers.get("l1").l1 == 0.01
    assert regularizers.get(None) is None
    with pytest.raises(ValueError, match="must be >= 0"):
        regularizers.L2(-0.1)
    again = regularizers.deserialize(regularizers.serialize(regularizers.L1L2(0.2, 0.3)))
    assert (again.l1, again.l2) == (0.2, 0.3)


def test_regularized_model_loss_includes_the_penalty():
    ember.manual_seed(0)
    model = ember.models.Sequential(
        [layers.Input(shape=(2,)), layers.Dense(1, kernel_regularizer=regularizers.L2(1.0))]
    )
    model.compile(optimizer=ember.optimizers.SGD(learning_rate=0.0), loss="mse")
    x, y = np.ones((4, 2), np.float32), np.zeros((4, 1), np.float32)
    pred = model.predict(x, verbose=0)  # lr = 0: the step below leaves the weights as they are
    value = model.train_step((x, y))["loss"]
    data_loss = float(np.mean(pred**2))
    penalty = float(np.sum(model.layers[0].kernel.data.astype(np.float64) ** 2))
    assert value == pytest.approx(data_loss + penalty, rel=1e-5)


# ------------------------------------------------------------------------------ initializers
def test_compute_fans_follow_keras():
    assert initializers.compute_fans((20, 30)) == (20, 30)
    assert initializers.compute_fans((3, 3, 16, 32)) == (144, 288)
    assert initializers.compute_fans((7,)) == (7, 7)
    assert initializers.compute_fans(()) == (1, 1)


def test_glorot_uniform_limit_and_variance():
    ember.manual_seed(0)
    shape = (400, 600)
    w = initializers.get("glorot_uniform")(shape)
    assert w.shape == shape and w.dtype == np.float32
    limit = math.sqrt(6 / (400 + 600))
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.999 * limit  # the full range is used
    assert abs(w.mean()) < 0.01 * limit
    assert np.var(w.astype(np.float64)) == pytest.approx(2 / (400 + 600), rel=0.02)


def test_he_normal_variance_and_truncation():
    ember.manual_seed(0)
    fan_in = 500
    w = initializers.get("he_normal")((fan_in, 400)).astype(np.float64)
    assert np.var(w) == pytest.approx(2 / fan_in, rel=0.03)
    assert abs(w.mean()) < 0.01 * math.sqrt(2 / fan_in)
    # truncated at two standard deviations of the underlying normal (Keras)
    underlying = math.sqrt(2 / fan_in) / 0.87962566103423978
    assert np.abs(w).max() <= 2 * underlying + 1e-7
    assert np.abs(w).max() > 1.95 * underlying


def test_random_normal_and_uniform_statistics():
    ember.manual_seed(0)
    n = initializers.RandomNormal(mean=1.0, stddev=0.5)((500, 400)).astype(np.float64)
    assert n.mean() == pytest.approx(1.0, abs=0.005) and n.std() == pytest.approx(0.5, rel=0.01)
    u = initializers.RandomUniform(-0.2, 0.6)((500, 400))
    assert u.min() >= -0.2 and u.max() <= 0.6
    assert u.astype(np.float64).mean() == pytest.approx(0.2, abs=0.005)


def test_zeros_ones_constant():
    assert np.array_equal(initializers.get("zeros")((2, 3)), np.zeros((2, 3)))
    assert np.array_equal(initializers.get("ones")((4,)), np.ones(4))
    c = initializers.Constant(0.25)((3, 2), dtype="float64")
    assert c.dtype == np.float64 and np.all(c == 0.25)
    assert initializers.get("constant")((2,)).tolist() == [0.0, 0.0]
    assert initializers.get("zeros")((2,)).dtype == np.float32
    layer = layers.Dense(2, kernel_initializer="ones", bias_initializer=initializers.Constant(3.0))
    layer(np.ones((1, 2)))
    assert np.all(layer.kernel.data == 1.0) and np.all(layer.bias.data == 3.0)


def test_default_dense_initialization_is_glorot_kernel_and_zero_bias():
    ember.manual_seed(0)
    layer = layers.Dense(300)
    layer(np.ones((1, 200)))
    limit = math.sqrt(6 / 500)
    assert np.all(layer.bias.data == 0)
    assert np.abs(layer.kernel.data).max() <= limit
    assert np.var(layer.kernel.data.astype(np.float64)) == pytest.approx(2 / 500, rel=0.03)


def test_manual_seed_makes_initialization_reproducible():
    def build(seed):
        ember.manual_seed(seed)
        model = ember.models.Sequential(
            [
                layers.Input(shape=(8,)),
                layers.Dense(16, kernel_initializer="he_normal"),
                layers.Dense(4),
            ]
        )
        return model.get_weights()

    first, second, other = build(0), build(0), build(1)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert not np.array_equal(first[0], other[0]) and not np.array_equal(first[2], other[2])
    ember.manual_seed(0)
    a = initializers.get("glorot_uniform")((5, 5))
    np.random.seed(123)  # NumPy's global state does not perturb Ember's generator
    np.random.standard_normal(10)
    ember.manual_seed(0)
    assert np.array_equal(initializers.get("glorot_uniform")((5, 5)), a)


def test_unknown_initializer_name():
    with pytest.raises(
        ValueError, match=r"unknown initializer 'he_norm'.*Did you mean 'he_normal'"
    ):
        initializers.get("he_norm")
