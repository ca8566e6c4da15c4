"""Keras guide "Writing a training loop from scratch", re-told on Ember with only the import line
changed.

``import ember as keras`` and ``from ember import layers, ops`` replace the Keras imports; the
guide's backend-specific pieces take Ember's spelling of the same idea: ``tf.GradientTape`` is
``keras.GradientTape``, ``tf.data.Dataset`` is ``keras.data.Dataset``, ``tf.random.normal`` is
``keras.random.normal``. The ``@tf.function`` decorator is dropped (Ember runs eagerly), the
step functions stay. MNIST is replaced by the bundled 8x8 digits (64 features, scaled to
[0, 1]), and the GAN is shrunk to 8x8 images so that it runs in a fraction of a second.
"""

from __future__ import annotations

import numpy as np
import pytest

import ember as keras
from ember import layers, ops
from ember.datasets import digits

BATCH_SIZE = 32


@pytest.fixture(autouse=True)
def _seed():
    keras.manual_seed(0)


def get_model():
    inputs = keras.Input(shape=(64,), name="digits")
    x1 = keras.layers.Dense(64, activation="relu")(inputs)
    x2 = keras.layers.Dense(64, activation="relu")(x1)
    outputs = keras.layers.Dense(10, name="predictions")(x2)
    return keras.Model(inputs=inputs, outputs=outputs)


def _datasets():
    (x_train, y_train), (x_test, y_test) = digits.load_data()
    x_train = np.reshape(x_train, (-1, 64)).astype("float32") / 16
    x_test = np.reshape(x_test, (-1, 64)).astype("float32") / 16
    # Reserve 300 samples for validation.
    x_val, y_val = x_train[-300:], y_train[-300:]
    x_train, y_train = x_train[:-300], y_train[:-300]

    train_dataset = keras.data.Dataset.from_tensor_slices((x_train, y_train))
    train_dataset = train_dataset.shuffle(buffer_size=1024).batch(BATCH_SIZE)
    val_dataset = keras.data.Dataset.from_tensor_slices((x_val, y_val)).batch(BATCH_SIZE)
    return train_dataset, val_dataset, (x_test, y_test)


def test_gradient_tape_loop_trains_the_model():
    model = get_model()
    optimizer = keras.optimizers.Adam(learning_rate=1e-3)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    train_dataset, _, (x_test, y_test) = _datasets()
    assert len(train_dataset) == 36  # 1,137 samples in batches of 32

    epoch_losses = []
    for _epoch in range(3):
        seen = 0
        batch_losses = []
        for step, (x_batch_train, y_batch_train) in enumerate(train_dataset):
            with keras.GradientTape() as tape:
                logits = model(x_batch_train, training=True)  # logits for this minibatch
                loss_value = loss_fn(y_batch_train, logits)
            grads = tape.gradient(loss_value, model.trainable_weights)
            optimizer.apply(grads, model.trainable_weights)
            seen = (step + 1) * BATCH_SIZE
            batch_losses.append(float(loss_value))
        assert seen >= 1137
        epoch_losses.append(np.mean(batch_losses))

    assert len(grads) == len(model.trainable_weights) == 6
    assert [g.shape for g in grads] == [w.shape for w in model.trainable_weights]
    assert epoch_losses[0] > epoch_losses[1] > epoch_losses[2]
    assert optimizer.iterations == 3 * 36
    test_accuracy = np.mean(np.argmax(model(x_test).numpy(), axis=1) == y_test)
    assert test_accuracy > 0.8  # 0.89 with seed 0, after 108 small steps


def test_apply_and_apply_gradients_take_the_same_steps():
    first = get_model()
    second = get_model()
    second.set_weights(first.get_weights())
    optimizer_a = keras.optimizers.Adam(learning_rate=1e-3)
    optimizer_b = keras.optimizers.Adam(learning_rate=1e-3)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    train_dataset, _, _ = _datasets()

    for x_batch, y_batch in train_dataset.take(5):
        with keras.GradientTape() as tape:
            loss_value = loss_fn(y_batch, first(x_batch, training=True))
        grads = tape.gradient(loss_value, first.trainable_weights)
        optimizer_a.apply(grads, first.trainable_weights)

        with keras.GradientTape() as tape:
            loss_value = loss_fn(y_batch, second(x_batch, training=True))
        grads = tape.gradient(loss_value, second.trainable_weights)
        optimizer_b.apply_gradients(zip(grads, second.trainable_weights))

    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_backward_then_apply_the_grads_as_in_the_torch_variant():
    # The guide's PyTorch-backend loop: backward() fills each weight's .grad, which is then
    # handed to optimizer.apply (the guide reads it as `v.value.grad`).
    model = get_model()
    twin = get_model()
    twin.set_weights(model.get_weights())
    optimizer = keras.optimizers.Adam(learning_rate=1e-3)
    twin_optimizer = keras.optimizers.Adam(learning_rate=1e-3)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    (x_train, y_train), _ = digits.load_data()
    x_train = np.reshape(x_train, (-1, 64)).astype("float32") / 16
    dataset = keras.data.TensorDataset(x_train[:256], y_train[:256])
    train_dataloader = keras.data.DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=False)

    for inputs, targets in train_dataloader:
        logits = model(inputs, training=True)
        loss = loss_fn(targets, logits)
        model.zero_grad()  # clear the gradients of the previous step
        loss.backward()
        trainable_weights = [v for v in model.trainable_weights]
        gradients = [v.grad for v in trainable_weights]
        with keras.no_grad():
            optimizer.apply(gradients, trainable_weights)

        with keras.GradientTape() as tape:
            twin_loss = loss_fn(targets, twin(inputs, training=True))
        twin_optimizer.apply(
            tape.gradient(twin_loss, twin.trainable_weights), twin.trainable_weights
        )

    assert optimizer.iterations == 8
    for a, b in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_metrics_by_hand_and_compiled_step_functions():
    model = get_model()
    optimizer = keras.optimizers.Adam(learning_rate=1e-3)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    train_acc_metric = keras.metrics.SparseCategoricalAccuracy()
    val_acc_metric = keras.metrics.SparseCategoricalAccuracy()
    train_dataset, val_dataset, _ = _datasets()

    def train_step(x, y):
        with keras.GradientTape() as tape:
            logits = model(x, training=True)
            loss_value = loss_fn(y, logits)
        grads = tape.gradient(loss_value, model.trainable_weights)
        optimizer.apply(grads, model.trainable_weights)
        train_acc_metric.update_state(y, logits)
        return loss_value

    def test_step(x, y):
        val_logits = model(x, training=False)
        val_acc_metric.update_state(y, val_logits)

    train_accuracies, val_accuracies = [], []
    for _epoch in range(3):
        for x_batch_train, y_batch_train in train_dataset:
            loss_value = train_step(x_batch_train, y_batch_train)
        train_acc = train_acc_metric.result()
        train_accuracies.append(float(train_acc))
        train_acc_metric.reset_state()  # at the end of each epoch

        for x_batch_val, y_batch_val in val_dataset:
            test_step(x_batch_val, y_batch_val)
        val_acc = val_acc_metric.result()
        val_accuracies.append(float(val_acc))
        val_acc_metric.reset_state()

    assert np.isfinite(float(loss_value))
    assert train_accuracies[0] < train_accuracies[-1]
    assert val_accuracies[-1] > 0.8  # 0.89 with seed 0
    # The metric's value is the accuracy of everything it saw since the last reset.
    x_val = np.concatenate([x for x, _ in val_dataset])
    y_val = np.concatenate([y for _, y in val_dataset])
    for x_batch_val, y_batch_val in val_dataset:
        test_step(x_batch_val, y_batch_val)
    expected = np.mean(np.argmax(model(x_val).numpy(), axis=1) == y_val)
    assert float(val_acc_metric.result()) == pytest.approx(expected)


class ActivityRegularizationLayer(keras.layers.Layer):
    def call(self, inputs):
        self.add_loss(1e-2 * ops.sum(inputs))
        return inputs


def test_losses_tracked_by_the_model_join_the_loss():
    inputs = keras.Input(shape=(64,), name="digits")
    x = keras.layers.Dense(64, activation="relu")(inputs)
    # Insert activity regularization as a layer
    x = ActivityRegularizationLayer()(x)
    x = keras.layers.Dense(64, activation="relu")(x)
    outputs = keras.layers.Dense(10, name="predictions")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    assert model.losses == []

    optimizer = keras.optimizers.Adam(learning_rate=1e-3)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    train_dataset, _, _ = _datasets()
    x_batch, y_batch = next(iter(train_dataset))

    hidden = model.layers[1](x_batch).numpy()  # the activity the extra loss penalizes
    with keras.GradientTape() as tape:
        logits = model(x_batch, training=True)
        loss_value = loss_fn(y_batch, logits)
        data_loss = float(loss_value)
        # Add any extra losses created during the forward pass.
        loss_value += sum(model.losses)
    grads = tape.gradient(loss_value, model.trainable_weights)
    optimizer.apply(grads, model.trainable_weights)

    assert len(model.losses) == 1
    penalty = 1e-2 * hidden.sum()
    assert float(model.losses[0]) == pytest.approx(penalty, rel=1e-5)
    assert float(loss_value) == pytest.approx(data_loss + penalty, rel=1e-5)

    # Training pushes the penalized activity down.
    for _ in range(20):
        with keras.GradientTape() as tape:
            loss_value = loss_fn(y_batch, model(x_batch, training=True)) + sum(model.losses)
        grads = tape.gradient(loss_value, model.trainable_weights)
        optimizer.apply(grads, model.trainable_weights)
    assert model.layers[1](x_batch).numpy().sum() < hidden.sum()


# ------------------------------------------------------------------ the GAN, at 8x8
LATENT_DIM = 16


def _gan():
    discriminator = keras.Sequential(
        [
            keras.Input(shape=(8, 8, 1)),
            layers.Conv2D(16, (3, 3), strides=(2, 2), padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(32, (3, 3), strides=(2, 2), padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.GlobalMaxPooling2D(),
            layers.Dense(1),
        ],
        name="discriminator",
    )
    generator = keras.Sequential(
        [
            keras.Input(shape=(LATENT_DIM,)),
            # We want to generate 32 coefficients to reshape into a 2x2x8 map
            layers.Dense(2 * 2 * 8),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Reshape((2, 2, 8)),
            layers.Conv2DTranspose(16, (4, 4), strides=(2, 2), padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2DTranspose(16, (4, 4), strides=(2, 2), padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(1, (7, 7), padding="same", activation="sigmoid"),
        ],
        name="generator",
    )
    return discriminator, generator


@pytest.mark.parametrize(
    "label_noise",
    [
        pytest.param(
            0.05,
            # the guide's label noise puts targets up to 1.05: used as given, as Keras does
            id="noisy-labels-as-in-guide",
        ),
        pytest.param(0.0, id="plain-labels"),
    ],
)
def test_gan_train_step_updates_each_network_in_turn(label_noise):
    discriminator, generator = _gan()
    assert generator.output.shape == (None, 8, 8, 1)
    d_optimizer = keras.optimizers.Adam(learning_rate=0.0003)
    g_optimizer = keras.optimizers.Adam(learning_rate=0.0004)
    loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)
    snapshots = {}

    def train_step(real_images):
        # Sample random points in the latent space and decode them to fake images
        batch_size = real_images.shape[0]
        random_latent_vectors = keras.random.normal(shape=(batch_size, LATENT_DIM))
        generated_images = generator(random_latent_vectors)
        # Combine them with real images
        combined_images = ops.concatenate([generated_images, real_images], axis=0)
        # Labels: 1 for fake, 0 for real, with a little noise (an important trick)
        labels = ops.concatenate(
            [keras.ones((batch_size, 1)), keras.zeros((batch_size, 1))], axis=0
        )
        labels += label_noise * keras.random.uniform(labels.shape)

        # Train the discriminator
        snapshots["before_d"] = (discriminator.get_weights(), generator.get_weights())
        with keras.GradientTape() as tape:
            predictions = discriminator(combined_images)
            d_loss = loss_fn(labels, predictions)
        grads = tape.gradient(d_loss, discriminator.trainable_weights)
        d_optimizer.apply(grads, discriminator.trainable_weights)
        snapshots["after_d"] = (discriminator.get_weights(), generator.get_weights())

        # Train the generator (without updating the discriminator): "all real images"
        random_latent_vectors = keras.random.normal(shape=(batch_size, LATENT_DIM))
        misleading_labels = keras.zeros((batch_size, 1))
        with keras.GradientTape() as tape:
            predictions = discriminator(generator(random_latent_vectors))
            g_loss = loss_fn(misleading_labels, predictions)
        grads = tape.gradient(g_loss, generator.trainable_weights)
        g_optimizer.apply(grads, generator.trainable_weights)
        snapshots["after_g"] = (discriminator.get_weights(), generator.get_weights())
        return d_loss, g_loss, generated_images

    (x_train, _), _ = digits.load_data()
    all_digits = (x_train[:64].astype("float32") / 16).reshape(-1, 8, 8, 1)
    dataset = keras.data.Dataset.from_tensor_slices(all_digits).shuffle(buffer_size=64).batch(16)

    d_losses = []
    for step, real_images in enumerate(dataset):
        d_loss, g_loss, generated_images = train_step(real_images)
        d_losses.append(float(d_loss))
        if step == 0:
            # The discriminator step moves only the discriminator, and the reverse.
            d_before, g_before = snapshots["before_d"]
            d_after, g_after = snapshots["after_d"]
            assert all(not np.array_equal(a, b) for a, b in zip(d_before, d_after))
            assert all(np.array_equal(a, b) for a, b in zip(g_before, g_after))
            d_final, g_final = snapshots["after_g"]
            assert all(np.array_equal(a, b) for a, b in zip(d_after, d_final))
            assert all(not np.array_equal(a, b) for a, b in zip(g_after, g_final))

    assert step == 3
    assert generated_images.shape == (16, 8, 8, 1)
    pixels = generated_images.numpy()
    assert pixels.min() >= 0.0 and pixels.max() <= 1.0  # sigmoid output
    assert np.isfinite(d_losses).all() and np.isfinite(float(g_loss))
    # An untrained discriminator is near chance: binary cross-entropy close to log(2).
    assert d_losses[0] == pytest.approx(np.log(2), abs=0.15)
