"""Gradient health (``ember.diagnostics``): ``diagnose`` and the ``GradientHealth`` callback,
asserted on the recorded numbers (issue 14, item 3).

The nets are tiny (8 inputs, 16 units, 256 samples) so the file runs in a few seconds.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import ember
from ember import layers
from ember.diagnostics import GradientHealth, HealthReport, diagnose

DEPTH = 10  # layers with weights
WIDTH = 16


def _data(n: int = 256):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 8)).astype("float32")
    y = (x[:, 0] * x[:, 1] > 0).astype("float32")[:, None]
    return x, y


def _sigmoid_mlp(optimizer="adam"):
    """10 Dense layers with sigmoids, default (Glorot uniform) initialization."""
    ember.manual_seed(0)
    model = ember.Sequential(
        [layers.Input(shape=(8,))]
        + [layers.Dense(WIDTH, activation="sigmoid") for _ in range(DEPTH - 1)]
        + [layers.Dense(1, activation="sigmoid")]
    )
    model.compile(optimizer=optimizer, loss="binary_crossentropy")
    return model


def _relu_bn_mlp():
    """The same depth with He initialization, batch normalization and ReLUs."""
    ember.manual_seed(0)
    stack = [layers.Input(shape=(8,))]
    for _ in range(DEPTH - 1):
        stack += [
            layers.Dense(WIDTH, kernel_initializer="he_normal"),
            layers.BatchNormalization(),
            layers.Activation("relu"),
        ]
    stack.append(layers.Dense(1, activation="sigmoid"))
    model = ember.Sequential(stack)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


def _tiny(optimizer, **dense):
    ember.manual_seed(0)
    model = ember.Sequential(
        [layers.Input(shape=(8,)), layers.Dense(WIDTH, activation="relu", **dense),
         layers.Dense(1)]
    )
    model.compile(optimizer=optimizer, loss="mse")
    return model


def _weights(model):
    return [w.data.copy() for w in model.weights]


def _same_weights(model, saved) -> bool:
    return all(np.array_equal(w.data, s) for w, s in zip(model.weights, saved))


def _no_wrappers(model) -> bool:
    """Nothing the callback or diagnose installs is left on the instances."""
    return (
        "train_step" not in model.__dict__
        and "_apply_updates" not in model.optimizer.__dict__
        and not any("call" in layer.__dict__ for layer in model._all_layers())
    )


# ---------------------------------------------------------------------------- diagnose
def test_deep_sigmoid_mlp_is_flagged_as_vanishing():
    x, y = _data()
    model = _sigmoid_mlp()
    report = diagnose(model, x, y)
    assert [r.name for r in report.layers] == [layer.name for layer in model.layers]
    norms = np.array([r.grad_norm for r in report.layers])
    # the recorded norms are the real ones: recomputed here with ember.grad
    loss = model.compute_loss(x, y, model(x, training=True))
    grads = ember.grad(loss, model.trainable_weights)
    expected = [math.hypot(np.linalg.norm(gk), np.linalg.norm(gb))
                for gk, gb in zip(grads[::2], grads[1::2])]
    np.testing.assert_allclose(norms, expected, rtol=1e-5)
    # the gradient shrinks at every layer going down, by orders of magnitude overall
    assert np.all(np.diff(norms) > 0)
    assert norms[0] < 1e-5 * norms[-1]
    assert norms[1] < 1e-4 * norms[-1]
    assert report.layers[0].grad_ratio == pytest.approx(norms[0] / norms[-1])
    vanishing = report.flags["vanishing"]
    assert vanishing[:2] == [model.layers[0].name, model.layers[1].name]
    assert set(vanishing) == {r.name for r in report.layers if r.grad_ratio < 1e-3}
    assert not report.flags["exploding"] and not report.flags["dead_relu"]
    assert report.findings[0].startswith("the gradient vanishes with depth")
    first = report.layers[0]
    sentence = next(f for f in report.findings if f.startswith(f"layer {first.name}:"))
    assert f"{first.grad_norm:.1e}" in sentence and "vanishes" in sentence
    assert "sigmoid" in sentence
    assert not report.healthy


def test_relu_he_batchnorm_net_is_not_flagged_and_diagnose_changes_nothing():
    x, y = _data()
    model = _relu_bn_mlp()
    before = _weights(model)  # moving means and variances included
    report = diagnose(model, x, y)
    assert report.healthy, report.findings
    assert report.findings == []
    dense = [r for r in report.layers if r.type == "Dense"]
    assert len(dense) == DEPTH
    ratios = np.array([r.grad_ratio for r in report.layers if r.grad_ratio is not None])
    assert ratios.min() > 0.05 and ratios.max() < 10  # no layer far from the output layer's
    relus = [r for r in report.layers if r.activation == "relu"]
    assert len(relus) == DEPTH - 1
    assert all(r.dead_fraction < 0.25 and r.units == WIDTH for r in relus)
    # batch-normalized ReLU inputs: about half of the outputs are 0, the mean is about 0.4
    assert all(0.2 < r.activation_mean < 0.7 for r in relus)
    # the training-mode pass moved the batch-norm statistics; diagnose put them back
    assert _same_weights(model, before)
    assert model.optimizer.iterations == 0 and model.optimizer.params == []


def test_large_initial_weights_are_flagged_as_exploding():
    x, y = _data()
    ember.manual_seed(0)
    big = ember.initializers.RandomNormal(stddev=1.0)  # He would be 0.35 for 16 inputs
    model = ember.Sequential(
        [layers.Input(shape=(8,))]
        + [layers.Dense(WIDTH, activation="relu", kernel_initializer=big)
           for _ in range(DEPTH - 1)]
        + [layers.Dense(1)]
    )
    model.compile(optimizer="sgd", loss="mse")
    report = diagnose(model, x, y)
    norms = [r.grad_norm for r in report.layers]
    assert min(norms) > 1e4  # every layer's gradient is above exploding_norm
    assert report.flags["exploding"] == [r.name for r in report.layers]
    assert any(f"gradient norm {norms[0]:.1e} is above 1.0e+04" in f for f in report.findings)
    # with a higher threshold nothing explodes (the ratios to the output layer are moderate)
    assert diagnose(model, x, y, exploding_norm=1e12).flags["exploding"] == []


def test_sgd_learning_rate_10_is_flagged_too_high():
    x, y = _data()
    model = _tiny(ember.optimizers.SGD(learning_rate=10.0))
    report = diagnose(model, x, y)
    assert report.flags["learning_rate_too_high"] == [r.name for r in report.layers]
    for r in report.layers:  # SGD's dry run is exactly lr·‖g‖/‖w‖
        assert r.update_ratio == pytest.approx(10.0 * r.grad_norm / r.weight_norm, rel=1e-5)
        assert r.update_ratio > 1e-2
    assert report.learning_rate == 10.0
    assert any("learning rate (10) is too high" in f for f in report.findings)
    # the same net with learning rate 1e-3 is not flagged
    calm = diagnose(_tiny(ember.optimizers.SGD(learning_rate=1e-3)), x, y)
    assert calm.flags["learning_rate_too_high"] == []
    assert max(r.update_ratio for r in calm.layers) < 1e-2
    # learning_rate= overrides the optimizer's without touching it
    override = diagnose(model, x, y, learning_rate=1e-3)
    assert override.flags["learning_rate_too_high"] == []
    assert model.optimizer.learning_rate == 10.0


def test_large_negative_bias_shows_dead_relus():
    x, y = _data()
    model = _tiny("sgd", bias_initializer=ember.initializers.Constant(-10.0))
    report = diagnose(model, x, y)
    hidden = report.layers[0]
    assert hidden.activation == "relu" and hidden.units == WIDTH
    assert hidden.dead_fraction == 1.0
    assert hidden.grad_norm == 0.0  # a dead unit passes no gradient
    assert report.flags["dead_relu"] == [hidden.name]
    assert any(f"100 % of its {WIDTH} ReLU units are dead" in f for f in report.findings)
    # the same layer with its default bias has (almost) no dead unit
    healthy = diagnose(_tiny("sgd"), x, y)
    assert healthy.layers[0].dead_fraction < 0.25 and healthy.flags["dead_relu"] == []


def test_saturated_tanh_units_match_the_definition():
    x, y = _data()
    ember.manual_seed(0)
    big = ember.initializers.RandomNormal(stddev=5.0)
    tanh = layers.Dense(WIDTH, activation="tanh", kernel_initializer=big)
    model = ember.Sequential([layers.Input(shape=(8,)), tanh, layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    report = diagnose(model, x, y)
    record = report.layer(tanh.name)
    # by the definition: |t| > 0.95 (margin 0.025 of the range 2) for >= 90 % of the samples
    outputs = np.tanh(x @ tanh.kernel.data + tanh.bias.data)
    expected = np.mean(np.mean(np.abs(outputs) > 0.95, axis=0) >= 0.9)
    assert record.saturated_fraction == pytest.approx(expected)
    assert expected > 0.25
    assert report.flags["saturation"] == [tanh.name]
    assert record.activation_std == pytest.approx(outputs.std(), rel=1e-4)
    # a stricter margin counts fewer saturated units
    strict = diagnose(model, x, y, saturation_margin=0.001)
    assert strict.layer(tanh.name).saturated_fraction < record.saturated_fraction


def test_adam_dry_run_is_the_step_adam_takes():
    x, y = _data(64)
    model = _tiny(ember.optimizers.Adam(learning_rate=1e-3))
    first = diagnose(model, x, y)
    # Adam's first step moves every entry by about lr, whatever the gradient's size
    kernel = first.layers[0].weights[0]
    assert kernel.name.endswith("/kernel")
    assert kernel.update_norm == pytest.approx(1e-3 * math.sqrt(8 * WIDTH), rel=1e-3)
    assert model.optimizer.iterations == 0 and model.optimizer.state == []
    model.train_on_batch(x, y)  # now Adam has moments: the dry run must use them
    moments = [s["m"].copy() for s in model.optimizer.state]
    report = diagnose(model, x, y)
    assert all(np.array_equal(s["m"], m) for s, m in zip(model.optimizer.state, moments))
    assert model.optimizer.iterations == 1
    before = _weights(model)
    model.train_on_batch(x, y)  # the real step on the same batch
    records = [w for r in report.layers for w in r.weights]
    assert len(records) == len(model.trainable_weights) == 4
    for w, old, record in zip(model.trainable_weights, before, records):
        assert record.update_norm == pytest.approx(np.linalg.norm(w.data - old), rel=1e-4)


def test_convolution_units_are_channels():
    ember.manual_seed(0)
    images = np.random.default_rng(1).normal(size=(8, 6, 6, 1)).astype("float32")
    conv = layers.Conv2D(4, 3, activation="relu",
                         bias_initializer=ember.initializers.Constant(-50.0))
    live = layers.Conv2D(5, 3, activation="relu")
    model = ember.Sequential([layers.Input(shape=(6, 6, 1)), conv, live, layers.Flatten(),
                              layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    report = diagnose(model, images, np.zeros((8, 1), "float32"))
    assert report.layer(conv.name).units == 4 and report.layer(conv.name).dead_fraction == 1.0
    # behind a dead layer only the biases reach the next one: every position is the same
    outputs = np.maximum(live.bias.data, 0)
    assert report.layer(live.name).units == 5
    assert report.layer(live.name).dead_fraction == pytest.approx(np.mean(outputs == 0))
    assert conv.name in report.flags["dead_relu"]


def test_model_without_optimizer_uses_the_sgd_formula():
    x, y = _data(64)
    ember.manual_seed(0)
    model = ember.Sequential([layers.Dense(WIDTH, activation="relu"), layers.Dropout(0.5),
                              layers.Dense(1)])
    state = ember.get_rng_state()
    report = diagnose(model, x, y, loss="mse", learning_rate=0.5)
    after = ember.random.uniform((4,))
    ember.set_rng_state(state)  # diagnose left Ember's generator where it was (dropout drew)
    np.testing.assert_array_equal(after.numpy(), ember.random.uniform((4,)).numpy())
    for r in report.layers:
        assert r.update_ratio == pytest.approx(0.5 * r.grad_norm / r.weight_norm, rel=1e-5)
    assert "SGD formula" in report.update_rule
    bare = diagnose(model, x, y, loss="mse")
    assert all(r.update_ratio is None for r in bare.layers)
    assert "not estimated" in bare.update_rule


def test_layers_are_reported_in_forward_order():
    class Net(ember.Model):
        def __init__(self):
            super().__init__()
            self.head = layers.Dense(1)  # assigned first, called last
            self.body = layers.Dense(WIDTH, activation="tanh")

        def call(self, x):
            return self.head(self.body(x))

    x, y = _data(64)
    ember.manual_seed(0)
    net = Net()
    net.compile(optimizer="sgd", loss="mse")
    report = diagnose(net, x, y, batch_size=32)
    assert [r.name for r in report.layers] == [net.body.name, net.head.name]
    assert report.layers[-1].grad_ratio == 1.0
    assert report.layers[0].activation == "tanh" and report.layers[0].units == WIDTH


def test_report_to_dict_and_table():
    x, y = _data(64)
    report = diagnose(_tiny(ember.optimizers.SGD(learning_rate=10.0)), x, y)
    data = json.loads(json.dumps(report.to_dict()))
    assert [r["name"] for r in data["layers"]] == [r.name for r in report.layers]
    assert data["layers"][0]["weights"][0]["grad_norm"] == report.layers[0].weights[0].grad_norm
    assert data["flags"]["learning_rate_too_high"] == report.flags["learning_rate_too_high"]
    assert data["thresholds"]["max_update_ratio"] == 1e-2
    text = str(report)
    assert all(r.name in text for r in report.layers) and "findings:" in text
    assert "update/weight" in text.splitlines()[0]
    with pytest.raises(KeyError, match="no layer named 'nope'"):
        report.layer("nope")
    assert HealthReport(layers=[]).healthy


def test_bad_input_is_rejected_clearly():
    x, y = _data(16)
    model = _tiny("sgd")
    with pytest.raises(TypeError, match="diagnose: model must be an ember Model"):
        diagnose("model", x, y)
    with pytest.raises(ValueError, match="diagnose: batch_size must be an integer >= 1"):
        diagnose(model, x, y, batch_size=0)
    with pytest.raises(ValueError, match="diagnose: learning_rate must be a finite number"):
        diagnose(model, x, y, learning_rate=-1.0)
    with pytest.raises(ValueError, match="diagnose: vanishing_ratio must be a finite number > 0"):
        diagnose(model, x, y, vanishing_ratio=0.0)
    with pytest.raises(ValueError, match=r"dead_fraction must be in \(0, 1\]"):
        diagnose(model, x, y, dead_fraction=2.0)
    with pytest.raises(ValueError, match="diagnose: x .* is required"):
        diagnose(model, None, y)
    with pytest.raises(ValueError, match="diagnose: y .* is required"):
        diagnose(model, x)
    uncompiled = ember.Sequential([layers.Dense(2)])
    with pytest.raises(ValueError, match="diagnose: the model is not compiled"):
        diagnose(uncompiled, x, y)
    with pytest.raises(ValueError, match="GradientHealth: every must be an integer >= 1"):
        GradientHealth(every=0)
    with pytest.raises(TypeError, match="GradientHealth: unexpected argument 'vanish'"):
        GradientHealth(vanish=1e-3)
    with pytest.raises(ValueError, match="GradientHealth.series: name must be one of"):
        GradientHealth().series("bogus")


# ---------------------------------------------------------------------------- the callback
def test_callback_records_the_vanishing_gradient_during_fit():
    x, y = _data()
    model = _sigmoid_mlp(ember.optimizers.SGD(learning_rate=0.1))
    expected = diagnose(model, x, y, batch_size=32)  # the first batch, before any step
    health = GradientHealth(every=2)
    model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0, callbacks=[health])
    assert health.steps == [0, 2, 4, 6] and [r.batch for r in health.records] == [0, 2, 4, 6]
    norms = health.grad_norms
    assert list(norms) == [layer.name for layer in model.layers]
    assert all(len(series) == 4 for series in norms.values())
    # the first record saw the same batch and weights as diagnose did
    first = health.records[0]
    np.testing.assert_allclose([r.grad_norm for r in first.layers],
                               [r.grad_norm for r in expected.layers], rtol=1e-5)
    # the update recorded is the one applied: SGD's lr·‖g‖ (float32 rounding aside)
    out = first.layers[-1]
    assert out.update_norm == pytest.approx(0.1 * out.grad_norm, rel=1e-3)
    for series in norms.values():
        assert all(math.isfinite(v) for v in series)
    first_layer, last_layer = model.layers[0].name, model.layers[-1].name
    assert max(norms[first_layer]) < 1e-4 * min(norms[last_layer])
    summary = health.summary()
    assert first_layer in summary.flags["vanishing"]
    assert health.findings()[0].startswith("the gradient vanishes with depth")
    assert "median of 4 recorded steps" in health.findings()[0]
    assert health.records[-1].flags["vanishing"][0] == first_layer
    assert _no_wrappers(model)


def test_callback_flags_a_learning_rate_of_10():
    x, y = _data(64)
    model = _tiny(ember.optimizers.SGD(learning_rate=10.0))
    health = GradientHealth()
    # two steps: with this learning rate the loss overflows within four
    model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0, callbacks=[health])
    assert len(health.records) == 2
    first = health.records[0]
    for r in first.layers:  # measured on the real step: lr·‖g‖/‖w‖
        assert r.update_ratio == pytest.approx(10.0 * r.grad_norm / r.weight_norm, rel=1e-3)
    assert first.flags["learning_rate_too_high"] == [r.name for r in first.layers]
    assert health.summary().flags["learning_rate_too_high"]
    assert any("learning rate (10) is too high" in f for f in health.findings())
    ratios = health.series("update_ratio")
    assert all(len(v) == 2 and min(v) > 1e-2 for v in ratios.values())
    assert _no_wrappers(model)


class _Boom(layers.Layer):
    """Raises in its third training call (an error in the middle of fit)."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def call(self, x, training=False):
        if training:
            self.calls += 1
            if self.calls == 3:
                raise RuntimeError("boom")
        return x


def test_callback_cleans_up_when_fit_raises():
    x, y = _data(64)
    ember.manual_seed(0)
    model = ember.Sequential([layers.Input(shape=(8,)), layers.Dense(WIDTH, activation="relu"),
                              _Boom(), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    health = GradientHealth()
    with pytest.raises(RuntimeError, match="boom"):
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[health])
    assert len(health.records) == 2
    # the per-step wrappers are gone; only the train_step replacement is left...
    assert "_apply_updates" not in model.optimizer.__dict__
    assert not any("call" in layer.__dict__ for layer in model._all_layers())
    assert "train_step" in model.__dict__
    # ...and it steps aside at the next fit without the callback
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert _no_wrappers(model) and len(health.records) == 2
    # a new fit with the callback records again (the counter goes on after the failed step 2)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[health])
    assert health.steps == [0, 1, 3, 4] and _no_wrappers(model)
