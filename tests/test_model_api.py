"""The model API every architecture builds on (issue 10): several inputs and outputs, the
functional graph, overridable training steps, freezing that holds, and PyTorch idioms."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ember
from ember import layers


def _digits_like(n=96, features=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32)
    w = rng.normal(size=(features, classes))
    y = np.argmax(x @ w, axis=1)
    return x, y


def _two_in_two_out(seed=0):
    ember.manual_seed(seed)
    image = ember.Input(shape=(6,), name="image")
    meta = ember.Input(shape=(3,), name="meta")
    hidden = layers.Dense(8, activation="relu", name="hidden")(image)
    joined = layers.concatenate([hidden, meta], name="joined")
    score = layers.Dense(1, name="score")(joined)
    label = layers.Dense(3, activation="softmax", name="label")(joined)
    return ember.Model(inputs=[image, meta], outputs=[score, label], name="two_heads")


def _two_in_two_out_data(n=64, seed=1):
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=(n, 6)).astype(np.float32)
    x2 = rng.normal(size=(n, 3)).astype(np.float32)
    score = (x1[:, :1] + x2[:, :1]).astype(np.float32)
    label = (x1[:, 0] > 0).astype(np.int64) + (x2[:, 1] > 0).astype(np.int64)
    return x1, x2, score, label


# ------------------------------------------------------------------ several inputs and outputs
def test_functional_model_with_two_inputs_and_two_outputs_trains_and_reports_per_output():
    model = _two_in_two_out()
    assert model.input_names == ["image", "meta"]
    assert model.output_names == ["score", "label"]
    assert [t.shape for t in model.inputs] == [(None, 6), (None, 3)]
    assert [t.shape for t in model.outputs] == [(None, 1), (None, 3)]
    model.compile(
        optimizer=ember.optimizers.Adam(0.01),
        loss={"score": "mse", "label": "sparse_categorical_crossentropy"},
        loss_weights={"score": 1.0, "label": 0.5},
        metrics={"label": ["accuracy"]},
    )
    x1, x2, score, label = _two_in_two_out_data()
    history = model.fit(
        {"image": x1, "meta": x2}, {"score": score, "label": label},
        epochs=8, batch_size=16, verbose=0,
    )
    logs = history.history
    assert set(logs) == {"loss", "score_loss", "label_loss", "label_accuracy"}
    # the total is the weighted sum of the per-output losses (+ no penalties here); each is an
    # epoch mean weighted by batch size, so the identity holds per epoch
    for total, a, b in zip(logs["loss"], logs["score_loss"], logs["label_loss"]):
        assert total == pytest.approx(a + 0.5 * b, rel=1e-5)
    assert logs["loss"][-1] < 0.6 * logs["loss"][0]
    # evaluate with lists gives the same numbers as with dicts
    as_dict = model.evaluate([x1, x2], [score, label], verbose=0, return_dict=True)
    as_list = model.evaluate({"image": x1, "meta": x2}, {"label": label, "score": score},
                             verbose=0, return_dict=True)
    assert as_dict == as_list
    prediction = model.predict([x1, x2], verbose=0)
    assert isinstance(prediction, list) and [p.shape for p in prediction] == [(64, 1), (64, 3)]


def test_compile_checks_output_names_and_list_lengths():
    model = _two_in_two_out()
    with pytest.raises(ValueError, match="'scores'.*not an output.*score"):
        model.compile(loss={"scores": "mse"})
    with pytest.raises(ValueError, match="3 entries.*2 output"):
        model.compile(loss=["mse", "mse", "mse"])
    with pytest.raises(ValueError, match="loss weight of 'score'"):
        model.compile(loss="mse", loss_weights={"score": -1.0})
    assert not model.compiled  # nothing was assigned by the failed calls


def test_dict_outputs_are_named_by_their_keys():
    inputs = ember.Input(shape=(4,))
    hidden = layers.Dense(5)(inputs)
    outputs = {"mean": layers.Dense(1)(hidden), "logits": layers.Dense(2)(hidden)}
    model = ember.Model(inputs, outputs)
    assert model.output_names == ["logits", "mean"]
    out = model(np.ones((3, 4), np.float32))
    assert set(out) == {"mean", "logits"} and out["mean"].shape == (3, 1)


def test_shared_layer_and_nested_model():
    ember.manual_seed(0)
    encoder_in = ember.Input(shape=(4,))
    encoder = ember.Model(encoder_in, layers.Dense(3, name="code")(encoder_in), name="encoder")
    a, b = ember.Input(shape=(4,)), ember.Input(shape=(4,))
    shared = layers.Dense(4, name="shared")
    distance = layers.subtract([encoder(shared(a)), encoder(shared(b))])
    model = ember.Model([a, b], distance)
    assert len(shared._inbound_nodes) == 2
    with pytest.raises(AttributeError, match="called 2 times"):
        _ = shared.output
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(model.predict([x, x], verbose=0), np.zeros((5, 3)), atol=0)
    # one set of weights each, whatever the number of calls
    assert len(model.weights) == 4
    assert [name for name, _ in model.named_parameters()] == [
        "shared.kernel", "shared.bias", "encoder.code.kernel", "encoder.code.bias"
    ]


def test_layer_input_output_and_feature_extraction_from_a_sequential():
    model = ember.Sequential([
        ember.Input(shape=(6,)),
        layers.Dense(5, activation="relu", name="first"),
        layers.Dense(4, activation="relu", name="middle"),
        layers.Dense(2, name="last"),
    ])
    assert model.get_layer("middle").input is model.get_layer("first").output
    extractor = ember.Model(inputs=model.inputs, outputs=[layer.output for layer in model.layers])
    x = np.ones((3, 6), np.float32)
    features = extractor(x)
    assert [f.shape for f in features] == [(3, 5), (3, 4), (3, 2)]
    np.testing.assert_array_equal(features[-1].numpy(), model(x).numpy())
    with pytest.raises(ValueError, match="no layer named 'midle'"):
        model.get_layer("midle")


def test_variable_length_axis_and_integer_input_dtype():
    sequence = ember.Input(shape=(None, 4), name="sequence")
    assert sequence.shape == (None, None, 4)
    out = layers.Dense(2)(sequence)
    assert out.shape == (None, None, 2)
    model = ember.Model(sequence, out)
    assert model(np.ones((2, 7, 4))).shape == (2, 7, 2)
    assert model(np.ones((2, 11, 4))).shape == (2, 11, 2)
    tokens = ember.Input(shape=(5,), dtype="int32")
    assert tokens.dtype == np.int32
    identity = ember.Model(tokens, tokens)
    assert identity(np.arange(10).reshape(2, 5)).dtype == np.int32


def test_keras2_input_shape_argument_declares_the_sequential_input():
    model = ember.Sequential()
    model.add(layers.Dense(3, activation="relu", input_shape=(4,)))
    model.add(layers.Dense(2))
    assert model.built and len(model.weights) == 4
    assert model.inputs[0].shape == (None, 4)
    with pytest.raises(TypeError, match="unexpected keyword argument 'input_shap'"):
        layers.Dense(3, input_shap=(4,))


def test_sequential_pop_rebuilds_the_graph():
    model = ember.Sequential([ember.Input(shape=(3,)), layers.Dense(4), layers.Dense(2)])
    removed = model.pop()
    assert isinstance(removed, layers.Dense) and removed.units == 2
    assert model.outputs[0].shape == (None, 4)
    assert model(np.ones((1, 3))).shape == (1, 4)
    model.pop()
    with pytest.raises(IndexError):
        model.pop()


def test_summary_shows_connections_of_a_functional_graph():
    model = _two_in_two_out()
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Connected to" in text
    assert "joined (Concatenate)" in text and "hidden, meta" in text
    assert f"Total params: {model.count_params():,}" in text


# ------------------------------------------------------------------ the overridable steps
def test_train_step_returns_logs_and_fit_drives_a_custom_step():
    calls = []

    class Counting(ember.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(1)

        def call(self, x):
            return self.dense(x)

        def train_step(self, data):
            calls.append(len(data[0]))
            return super().train_step(data)

    ember.manual_seed(0)
    model = Counting()
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).normal(size=(10, 2)).astype(np.float32)
    history = model.fit(x, x[:, :1], batch_size=4, epochs=2, verbose=0)
    assert calls == [4, 4, 2, 4, 4, 2]
    assert len(history.history["loss"]) == 2


def test_compile_without_loss_and_add_loss_in_call():
    class SelfSupervised(ember.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(3)

        def call(self, x):
            out = self.dense(x)
            self.add_loss(ember.ops.mean((out - x) ** 2))  # reconstruct the input
            return out

    ember.manual_seed(0)
    model = SelfSupervised()
    model.compile(optimizer=ember.optimizers.Adam(0.05))  # no loss: add_loss is minimized
    x = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32)
    history = model.fit(x, epochs=30, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.1 * history.history["loss"][0]


def test_metric_objects_in_compile_and_on_batch_methods():
    ember.manual_seed(0)
    x, y = _digits_like()
    model = ember.Sequential([ember.Input(shape=(6,)), layers.Dense(3)])
    model.compile(
        optimizer=ember.optimizers.SGD(0.0),
        loss=ember.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[ember.metrics.SparseCategoricalAccuracy()],
    )
    loss, accuracy = model.test_on_batch(x, y)
    logits = model.predict_on_batch(x)
    expected = float(np.mean(np.argmax(logits, axis=1) == y))
    assert accuracy == pytest.approx(expected)
    logs = model.train_on_batch(x, y, return_dict=True)
    assert set(logs) == {"loss", "sparse_categorical_accuracy"}
    assert logs["loss"] == pytest.approx(loss, rel=1e-6)  # lr 0: same weights
    assert model.metrics_names == ["loss", "sparse_categorical_accuracy"]


def test_fit_takes_an_iterable_of_batches_and_a_dataloader():
    ember.manual_seed(0)
    x, y = _digits_like(n=64)
    model = ember.Sequential([ember.Input(shape=(6,)), layers.Dense(3, activation="softmax")])
    model.compile(optimizer=ember.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    loader = ember.data.DataLoader(ember.data.TensorDataset(x, y), batch_size=16, shuffle=True)
    history = model.fit(loader, epochs=15, verbose=0, validation_data=(x, y))
    assert history.history["accuracy"][-1] > 0.85
    batches = [(x[i : i + 16], y[i : i + 16]) for i in range(0, 64, 16)]
    model.fit(batches, epochs=1, verbose=0)
    generator = ((x[i : i + 16], y[i : i + 16]) for _ in range(100) for i in range(0, 64, 16))
    history = model.fit(generator, steps_per_epoch=4, epochs=3, verbose=0)
    assert len(history.history["loss"]) == 3
    assert model.evaluate(loader, verbose=0)[1] > 0.85


class _GAN(ember.Model):
    """A 1-D GAN: the generator maps noise to samples of N(3, 0.5²)."""

    def __init__(self):
        super().__init__()
        self.generator = ember.Sequential([
            ember.Input(shape=(2,)), layers.Dense(16, activation="relu"), layers.Dense(1)
        ])
        self.discriminator = ember.Sequential([
            ember.Input(shape=(1,)), layers.Dense(16, activation="relu"), layers.Dense(1)
        ])
        self.d_loss_tracker = ember.metrics.Mean(name="d_loss")
        self.g_loss_tracker = ember.metrics.Mean(name="g_loss")
        self.bce = ember.losses.BinaryCrossentropy(from_logits=True)

    def call(self, noise):
        return self.generator(noise)

    def compile(self, d_optimizer, g_optimizer):
        super().compile()
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer

    def train_step(self, data):
        real = data[0] if isinstance(data, tuple) else data
        n = len(real)
        noise = ember.random.normal((n, 2))
        fake = self.generator(noise).detach()
        with ember.GradientTape() as tape:
            logits = self.discriminator(ember.concatenate([ember.tensor(real), fake]))
            labels = np.concatenate([np.ones((n, 1)), np.zeros((n, 1))]).astype(np.float32)
            d_loss = self.bce(labels, logits)
        weights = self.discriminator.trainable_weights
        self.d_optimizer.apply(tape.gradient(d_loss, weights), weights)
        with ember.GradientTape() as tape:
            g_loss = self.bce(np.ones((n, 1), np.float32),
                              self.discriminator(self.generator(ember.random.normal((n, 2)))))
        weights = self.generator.trainable_weights
        self.g_optimizer.apply(tape.gradient(g_loss, weights), weights)
        self.d_loss_tracker.update_state(float(d_loss.data))
        self.g_loss_tracker.update_state(float(g_loss.data))
        return {"d_loss": self.d_loss_tracker.result(), "g_loss": self.g_loss_tracker.result()}


def test_gan_trains_through_fit_with_two_optimizers_callbacks_and_a_progress_bar(capsys):
    ember.manual_seed(0)
    real = np.random.default_rng(0).normal(3.0, 0.5, size=(512, 1)).astype(np.float32)
    gan = _GAN()
    gan.compile(d_optimizer=ember.optimizers.Adam(0.005, beta_1=0.5),
                g_optimizer=ember.optimizers.Adam(0.005, beta_1=0.5))
    seen = []
    history = gan.fit(
        real, epochs=40, batch_size=64, verbose=1,
        callbacks=[ember.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(logs))],
    )
    assert set(history.history) == {"d_loss", "g_loss"} and len(seen) == 40
    assert "d_loss" in capsys.readouterr().out  # the progress bar shows the step's logs
    samples = gan.predict(np.random.default_rng(1).normal(size=(2000, 2)), verbose=0)
    # the generator starts near N(0, ·) and learns the real mean (3.0 ± 0.1 measured)
    assert abs(float(samples.mean()) - 3.0) < 0.3
    assert math.isfinite(history.history["d_loss"][-1])


# ------------------------------------------------------------------ freezing (L4, O5)
def _base_with_batchnorm():
    return ember.Sequential([
        ember.Input(shape=(6,)),
        layers.Dense(8, name="features"),
        layers.BatchNormalization(name="bn"),
        layers.Activation("relu"),
    ], name="base")


def test_L4_O5_transfer_learning_frozen_base_stays_bit_exact_then_unfrozen_trains():
    ember.manual_seed(0)
    x, y = _digits_like(n=128, classes=3)
    base = _base_with_batchnorm()
    pretrain = ember.Sequential([base, layers.Dense(3, activation="softmax")])
    pretrain.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    pretrain.fit(x, y, epochs=2, verbose=0)

    base.trainable = False
    inputs = ember.Input(shape=(6,))
    features = base(inputs, training=False)
    outputs = layers.Dense(2, activation="softmax", name="new_head")(features)
    model = ember.Model(inputs, outputs)
    assert len(model.trainable_weights) == 2  # only the new head
    assert len(model.non_trainable_weights) == 6  # kernel, bias, gamma, beta, moving mean/var
    frozen = [w.copy() for w in base.get_weights()]
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y % 2, epochs=3, verbose=0)
    for before, after in zip(frozen, base.get_weights()):
        assert np.array_equal(before, after)  # moving statistics included

    base.trainable = True  # unfreeze without re-compiling: the next step trains the base too
    model.fit(x, y % 2, epochs=1, verbose=0)
    changed = [not np.array_equal(b, a) for b, a in zip(frozen, base.get_weights())]
    # kernel, bias, gamma and beta train; the moving statistics stay, because the graph calls
    # the base with training=False (the Keras guide's advice for fine-tuning with batch norm)
    assert changed == [True, True, True, True, False, False]


def test_L4_frozen_batchnorm_runs_in_inference_mode_inside_fit():
    ember.manual_seed(0)
    bn = layers.BatchNormalization()
    model = ember.Sequential([ember.Input(shape=(3,)), bn, layers.Dense(1)])
    bn.trainable = False
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).normal(5.0, 2.0, size=(32, 3)).astype(np.float32)
    model.fit(x, x[:, :1], epochs=1, verbose=0)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), np.zeros(3, np.float32))


def test_O5_freezing_after_a_first_fit_takes_effect_without_recompiling():
    ember.manual_seed(0)
    x, y = _digits_like()
    model = ember.Sequential([ember.Input(shape=(6,)), layers.Dense(4), layers.Dense(3)])
    model.compile(optimizer="adam",
                  loss=ember.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=1, verbose=0)
    first = model.layers[0]
    first.trainable = False
    before = first.get_weights()
    state_before = [s.copy() if isinstance(s, np.ndarray) else s
                    for s in model.optimizer.state[0].values()]
    model.fit(x, y, epochs=2, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, first.get_weights()))
    state_after = list(model.optimizer.state[0].values())  # its Adam state did not advance
    assert all(np.array_equal(a, b) for a, b in zip(state_before, state_after))


def test_trainable_is_recursive_and_summary_agrees():
    inner = ember.Sequential([ember.Input(shape=(3,)), layers.Dense(3), layers.Dense(3)])
    outer = ember.Sequential([ember.Input(shape=(3,)), inner, layers.Dense(1)])
    inner.trainable = False
    assert all(not layer.trainable for layer in inner.layers)
    assert len(outer.trainable_weights) == 2
    lines = []
    outer.summary(print_fn=lines.append)
    assert "Trainable params: 4 " in lines[0]
    # a layer switched back on inside a frozen container stays frozen (Keras' rule)
    inner.layers[0].trainable = True
    assert len(outer.trainable_weights) == 2


# ------------------------------------------------------------------ PyTorch idioms
class _TorchStyle(ember.Model):
    def __init__(self):
        super().__init__()
        self.flatten = layers.Flatten()
        self.stack = [layers.Dense(8, activation="relu"), layers.Dense(3)]
        self.scale = ember.layers.Parameter(np.ones(3, np.float32))

    def forward(self, x):
        x = self.flatten(x)
        for layer in self.stack:
            x = layer(x)
        return x * self.scale


def test_forward_parameters_registered_on_assignment_and_state_dict_round_trip():
    ember.manual_seed(0)
    model = _TorchStyle()
    x = np.random.default_rng(0).normal(size=(4, 2, 3)).astype(np.float32)
    y = model(x)
    assert y.shape == (4, 3)
    names = list(model.state_dict())
    assert names == ["scale", "stack.0.kernel", "stack.0.bias", "stack.1.kernel",
                     "stack.1.bias"]
    ember.manual_seed(1)
    other = _TorchStyle()
    other(x)
    result = other.load_state_dict(model.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    np.testing.assert_array_equal(other(x).numpy(), y.numpy())
    state = model.state_dict()
    state["stack.0.kernel"] = np.zeros((5, 8), np.float32)
    del state["scale"]
    state["extra"] = np.zeros(1)
    before = other.get_weights()
    with pytest.raises(ValueError, match=r"missing keys: scale.*unexpected keys: extra.*"
                                         r"size mismatch for stack\.0\.kernel"):
        other.load_state_dict(state)
    assert all(np.array_equal(a, b) for a, b in zip(before, other.get_weights()))


def test_pytorch_loop_with_zero_grad_and_in_place_update():
    ember.manual_seed(0)
    model = _TorchStyle()
    x = np.random.default_rng(0).normal(size=(16, 2, 3)).astype(np.float32)
    target = np.random.default_rng(1).normal(size=(16, 3)).astype(np.float32)
    loss_fn = ember.losses.MeanSquaredError()
    first = None
    for _ in range(50):
        model.zero_grad()
        loss = loss_fn(target, model(x))
        loss.backward()
        with ember.no_grad():
            for p in model.parameters():
                p -= 0.05 * p.grad
        first = float(loss.data) if first is None else first
    assert float(loss.data) < 0.8 * first
    assert model.scale.grad is not None


# ------------------------------------------------------------------ bad input (§ 9)
def test_bad_input_fit_arguments_of_the_wrong_type_or_value():
    model = ember.Sequential([ember.Input(shape=(6,)), layers.Dense(3)])
    model.compile(loss="sparse_categorical_crossentropy")
    x, y = _digits_like(n=20)
    with pytest.raises(ValueError, match="initial_epoch must be an integer >= 0, got -1"):
        model.fit(x, y, initial_epoch=-1, verbose=0)
    with pytest.raises(TypeError, match="initial_epoch must be an integer"):
        model.fit(x, y, initial_epoch=1.5, verbose=0)
    with pytest.raises(TypeError, match="validation_split must be a number"):
        model.fit(x, y, validation_split="0.2", verbose=0)
    with pytest.raises(TypeError, match="sample_weight must be an array"):
        model.fit(x, y, sample_weight="balanced", verbose=0)
    with pytest.raises(ValueError, match="sample_weight sizes: 3"):
        model.fit(x, y, sample_weight=np.ones(3), verbose=0)


def test_bad_input_set_weights_validates_everything_before_assigning():
    model = ember.Sequential([ember.Input(shape=(2,)), layers.Dense(2), layers.Dense(1)])
    before = model.get_weights()
    with pytest.raises(TypeError, match="expects a list of 4 arrays"):
        model.set_weights(None)
    good = [w + 1 for w in before]
    with pytest.raises(TypeError, match="array 3 .* is None"):
        model.set_weights(good[:3] + [None])
    with pytest.raises(ValueError, match="has shape \\(1,\\), got an array of shape \\(2,\\)"):
        model.set_weights(good[:3] + [np.zeros(2)])
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_bad_input_layer_given_a_tuple_is_not_silently_stacked():
    a = ember.tensor(np.ones((2, 3), np.float32), requires_grad=True)
    with pytest.raises(ValueError, match='Layer "dense_[0-9]*" .*expects one tensor.*tuple of 2'):
        layers.Dense(2, name=None)((a, a))


def test_B6_fit_and_evaluate_on_empty_data_raise_and_predict_returns_zero_rows():
    model = ember.Sequential([ember.Input(shape=(6,)), layers.Dense(3)])
    model.compile(loss="mse")
    empty = np.zeros((0, 6), np.float32)
    with pytest.raises(ValueError, match=r"x is empty \(0 samples\)"):
        model.fit(empty, np.zeros((0, 3)), verbose=0)
    with pytest.raises(ValueError, match=r"x is empty \(0 samples\)"):
        model.evaluate(empty, np.zeros((0, 3)), verbose=0)
    assert model.predict(empty, verbose=0).shape == (0, 3)


def test_layer_call_passes_several_positional_tensors_and_a_dict():
    class Bilinear(ember.layers.Layer):
        def build(self, a_shape, b_shape):  # Keras 3: the shape of each tensor argument
            self.w = self.add_weight((a_shape[-1], b_shape[-1]), initializer="ones", name="w")

        def call(self, a, b):
            return ember.ops.sum((a @ self.w) * b, axis=-1, keepdims=True)

    class Weighted(ember.layers.Layer):
        def call(self, inputs):
            return inputs["x"] * inputs["scale"]

    layer = Bilinear()
    a = np.ones((2, 3), np.float32)
    b = np.full((2, 4), 2.0, np.float32)
    np.testing.assert_array_equal(layer(a, b).numpy(), np.full((2, 1), 24.0, np.float32))
    assert layer.w.shape == (3, 4)
    # the same layer in a functional graph, with a dict input for another layer
    ia, ib = ember.Input(shape=(3,)), ember.Input(shape=(4,))
    out = Weighted()({"x": layer(ia, ib), "scale": ember.layers.Dense(1)(ia)})
    assert out.shape == (None, 1)
    model = ember.Model([ia, ib], out)
    grads = ember.grad(ember.ops.sum(model([a, b])), model.trainable_weights)
    assert len(grads) == 3 and all(np.all(np.isfinite(g)) and np.any(g != 0) for g in grads)


def test_pytorch_device_moves_are_accepted_on_the_cpu_and_refused_elsewhere():
    model = ember.Sequential([layers.Dense(2)])
    x = ember.ones((1, 3))
    assert model.to("cpu") is model and x.to("cpu") is x and x.to("cpu:0") is x
    assert x.to(dtype="float64").dtype == np.float64
    with pytest.raises(ValueError, match="device 'cuda' is not available"):
        model.to("cuda")
    with pytest.raises(ValueError, match="device 'mps' is not available"):
        x.to("mps")


def test_pytorch_attribute_names_output_and_layers_hold_sublayers():
    class Net(ember.Model):
        def __init__(self):
            super().__init__()
            self.layers = [layers.Dense(4, activation="relu"), layers.Dense(4)]
            self.output = layers.Dense(2)  # PyTorch code often names the last layer so

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return self.output(x)

    net = Net()
    assert net(np.ones((3, 5))).shape == (3, 2)
    assert isinstance(net.output, layers.Dense) and len(net.layers) == 2
    assert [name for name, _ in net.named_parameters()] == [
        "layers.0.kernel", "layers.0.bias", "layers.1.kernel", "layers.1.bias",
        "output.kernel", "output.bias",
    ]


def test_sequential_with_an_integer_input_keeps_ids_integers():
    """Sequential([Input(dtype="int64"), Embedding, ...]) as Keras writes it: the ids reach the
    Embedding as integers (they used to be cast to float32 first and refused)."""
    ember.manual_seed(0)
    model = ember.Sequential([
        layers.Input(shape=(5,), dtype="int64"), layers.Embedding(10, 4), layers.LSTM(3),
    ])  # fmt: skip
    ids = np.array([[1, 2, 3, 4, 5], [5, 4, 0, 0, 0]])
    model.compile("adam", "mse")
    history = model.fit(ids, np.zeros((2, 3)), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    with pytest.raises(TypeError, match="declared as int64 but received float"):
        model.predict(ids.astype(np.float32), verbose=0)
