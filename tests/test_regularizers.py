"""Regularizers L1, L2, L1L2 on kernels, biases and activities: values, gradients, names, bad
arguments (B9), and the penalty in the loss reported by ``fit`` and ``evaluate``."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import layers, models, regularizers

W = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -0.25]], dtype=np.float32)


# ------------------------------------------------------------------------------ values
def test_penalty_values_are_hand_computed_sums():
    w = ember.tensor(W)
    # Σ|w| = 1 + 2 + 0.5 + 0 + 3 + 0.25 = 6.75 ; Σw² = 1 + 4 + 0.25 + 0 + 9 + 0.0625 = 14.3125
    assert regularizers.L1(0.1)(w).item() == pytest.approx(0.675, rel=1e-6)
    assert regularizers.L2(0.1)(w).item() == pytest.approx(1.43125, rel=1e-6)
    assert regularizers.L1L2(l1=0.2, l2=0.3)(w).item() == pytest.approx(
        0.2 * 6.75 + 0.3 * 14.3125, rel=1e-6
    )
    assert regularizers.L1L2()(w).item() == 0.0
    assert regularizers.L2(0.1)(w).dtype == np.float32  # no float64 up-cast


def test_penalty_gradients_match_the_formulas_and_finite_differences():
    w = ember.tensor(W, requires_grad=True)
    regularizers.L2(0.1)(w).backward()
    np.testing.assert_allclose(w.grad, 2 * 0.1 * W, rtol=1e-6)
    w = ember.tensor(W, requires_grad=True)
    regularizers.L1(0.1)(w).backward()
    np.testing.assert_allclose(w.grad, 0.1 * np.sign(W), rtol=1e-6)  # sign(0) = 0 at the kink
    smooth = np.array([[0.7, -1.3], [2.1, -0.4]])  # away from the |w| kink
    for reg in (regularizers.L2(0.3), regularizers.L1L2(l1=0.2, l2=0.05)):
        ember.gradcheck(reg, ember.tensor(smooth, requires_grad=True))


def test_string_names_and_keras_defaults():
    assert isinstance(regularizers.get("l1"), regularizers.L1)
    assert regularizers.get("l1").l1 == 0.01
    assert regularizers.get("L2").l2 == 0.01
    for name in ("l1l2", "l1_l2", "L1L2"):
        reg = regularizers.get(name)
        assert type(reg) is regularizers.L1L2 and (reg.l1, reg.l2) == (0.01, 0.01)
    assert regularizers.L1L2().get_config() == {"l1": 0.0, "l2": 0.0}  # class defaults (Keras)
    assert regularizers.get(None) is None
    reg = regularizers.L2(0.3)
    assert regularizers.get(reg) is reg
    assert repr(regularizers.get("l2")) == "L2(l2=0.01)"
    again = regularizers.get(regularizers.serialize(regularizers.L1L2(0.2, 0.3)))
    assert (type(again), again.l1, again.l2) == (regularizers.L1L2, 0.2, 0.3)


def test_B9_bad_regularizer_names_and_values():
    with pytest.raises(ValueError, match="unknown regularizer 'l3'.*Valid regularizer names"):
        regularizers.get("l3")
    with pytest.raises(ValueError, match="Did you mean 'l2'"):
        regularizers.get("l_2")
    with pytest.raises(ValueError, match="L1: l1 must be >= 0 and finite, got l1=-0.1"):
        regularizers.L1(-0.1)
    with pytest.raises(ValueError, match="L2: l2 must be >= 0"):
        regularizers.L2(-1e-4)
    with pytest.raises(ValueError, match="L1L2: l2 must be >= 0 and finite"):
        regularizers.L1L2(l1=0.1, l2=float("nan"))
    with pytest.raises(ValueError, match="L1L2: l1 must be >= 0 and finite"):
        regularizers.L1L2(l1=float("inf"))
    with pytest.raises(TypeError, match="L2: l2 must be a number"):
        regularizers.L2("0.1")
    with pytest.raises(TypeError, match="regularizer must be a name"):
        regularizers.get(0.01)
    with pytest.raises(ValueError, match="unknown regularizer"):
        layers.Dense(2, bias_regularizer="l5")


# ------------------------------------------------------------------------------ in Dense
def _dense_model(**dense_kwargs):
    ember.manual_seed(0)
    model = models.Sequential([layers.Input(shape=(2,)), layers.Dense(3, **dense_kwargs)])
    return model


def test_dense_supports_kernel_bias_and_activity_regularizers():
    model = _dense_model(
        kernel_regularizer=regularizers.L2(0.1),
        bias_regularizer="l1",
        activity_regularizer=regularizers.L1(0.5),
    )
    model.set_weights([W, np.array([1.0, -2.0, 0.0], dtype=np.float32)])
    x = np.array([[1.0, 1.0], [0.0, 2.0]], dtype=np.float32)
    out = model(x)  # [[1, 1, 0.25], [0-2+0, 6-2, -0.5]] + bias
    expected_out = x @ W + np.array([1.0, -2.0, 0.0])
    np.testing.assert_allclose(out.numpy(), expected_out, rtol=1e-6)
    penalties = [p.item() for p in model.losses]
    assert penalties == pytest.approx(
        [0.1 * 14.3125, 0.01 * 3.0, 0.5 * np.abs(expected_out).sum() / 2], rel=1e-6
    )


def test_string_regularizers_in_dense_round_trip_through_config():
    layer = layers.Dense(2, kernel_regularizer="l1l2", activity_regularizer="l2")
    config = layer.get_config()
    rebuilt = layers.Dense.from_config(config)
    assert (rebuilt.kernel_regularizer.l1, rebuilt.kernel_regularizer.l2) == (0.01, 0.01)
    assert rebuilt.activity_regularizer.l2 == 0.01


# ------------------------------------------------------------------------------ in training
def _regression_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 2)).astype(np.float32)
    y = (x @ np.array([[2.0, -1.0, 0.5], [1.0, 0.0, -3.0]], dtype=np.float32)).astype(np.float32)
    return x, y


def test_fit_and_evaluate_report_the_same_loss_with_penalties():
    """With lr = 0 the weights never move, so fit's epoch loss must equal evaluate's loss."""
    x, y = _regression_data()
    model = _dense_model(
        activation="tanh",
        kernel_regularizer=regularizers.L1L2(l1=0.05, l2=0.2),
        bias_regularizer=regularizers.L2(0.3),
        activity_regularizer=regularizers.L2(0.01),
    )
    model.compile(optimizer=ember.optimizers.SGD(learning_rate=0.0), loss="mse")
    history = model.fit(x, y, epochs=1, batch_size=10, shuffle=False, verbose=0)
    evaluated = model.evaluate(x, y, batch_size=10, verbose=0)
    assert history.history["loss"][0] == evaluated
    # and it is the data loss plus the penalties, hand-computed
    k, b = (w.astype(np.float64) for w in model.get_weights())
    out = np.tanh(x.astype(np.float64) @ k + b)
    data = np.mean((out - y) ** 2)
    weights = 0.05 * np.abs(k).sum() + 0.2 * (k**2).sum() + 0.3 * (b**2).sum()
    activity = np.mean([0.01 * (out[i : i + 10] ** 2).sum() / 10 for i in range(0, 30, 10)])
    assert evaluated == pytest.approx(data + weights + activity, rel=1e-5)
    assert weights > 0.1 * data  # the penalty is a visible part of the number
    # validation reports it too
    history = model.fit(
        x, y, epochs=1, batch_size=10, shuffle=False, verbose=0, validation_data=(x, y)
    )
    assert history.history["val_loss"][0] == evaluated


def test_l2_penalty_gradient_enters_the_update():
    """One SGD step with L2(l2) moves the kernel by -lr·2·l2·w more than without it."""
    x, y = _regression_data()
    lr, l2 = 0.1, 0.25

    def one_step(reg):
        model = _dense_model(kernel_regularizer=reg)
        model.compile(optimizer=ember.optimizers.SGD(learning_rate=lr), loss="mse")
        before = model.get_weights()
        model.fit(x, y, epochs=1, batch_size=30, verbose=0)
        return before, model.get_weights()

    (k0, b0), (k_plain, b_plain) = one_step(None)
    (k0_reg, _), (k_reg, b_reg) = one_step(regularizers.L2(l2))
    assert np.array_equal(k0, k0_reg)
    np.testing.assert_allclose(k_reg - k_plain, -lr * 2 * l2 * k0, rtol=1e-4, atol=1e-7)
    np.testing.assert_array_equal(b_reg, b_plain)  # the bias is not regularized


def test_activity_regularization_layer_adds_its_penalty_to_the_loss():
    """Keras' ActivityRegularization(l1, l2): identity forward, and evaluate's loss is the MSE
    plus (l1 * sum|h| + l2 * sum h²) / batch."""
    x = np.array([[1.0, -2.0], [0.5, 0.0], [3.0, 1.0]], np.float32)
    y = np.zeros((3, 2), np.float32)
    model = ember.Sequential(
        [ember.Input(shape=(2,)), ember.layers.ActivityRegularization(l1=0.1, l2=0.01)]
    )
    model.compile("sgd", "mse")
    expected = (x**2).mean() + (0.1 * np.abs(x).sum() + 0.01 * (x**2).sum()) / 3
    assert model.evaluate(x, y, verbose=0) == pytest.approx(expected, rel=1e-6)
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)
    with pytest.raises(ValueError, match="l1 must be a non-negative number, got -1"):
        ember.layers.ActivityRegularization(l1=-1)
