"""Keras guide "Transfer learning & fine-tuning", re-told on Ember with only the import line
changed.

``import ember as keras`` and ``from ember import layers`` replace the Keras imports. The guide's
base model is Xception pre-trained on ImageNet and its new task cats-vs-dogs; offline we
pre-train a small convolutional base (with batch normalization, like Xception) on the bundled
8x8 digits for ten classes and transfer it to a new binary task, fours against nines (ImageNet
has cats and dogs among its classes too). The workflow and what the guide says about it are
kept: freeze the base, train a new head, then unfreeze and fine-tune with a low learning rate
while the base keeps running in inference mode (its batch-normalization statistics stay put).

Left out: ``keras.applications.Xception`` (pre-trained weights need a download).
"""

from __future__ import annotations

import numpy as np
import pytest

import ember as keras
from ember import layers
from ember.datasets import digits


@pytest.fixture(autouse=True)
def _seed():
    keras.manual_seed(0)


def _summary_text(model) -> str:
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    return "\n".join(lines)


def _weight_counts(layer) -> tuple[int, int, int]:
    return len(layer.weights), len(layer.trainable_weights), len(layer.non_trainable_weights)


# ------------------------------------------------------------------ trainable / non-trainable
def test_dense_has_two_trainable_weights():
    layer = keras.layers.Dense(3)
    layer.build((None, 4))  # create the weights
    assert _weight_counts(layer) == (2, 2, 0)


def test_batch_normalization_has_two_non_trainable_weights():
    layer = keras.layers.BatchNormalization()
    layer.build((None, 4))
    assert _weight_counts(layer) == (4, 2, 2)
    assert {w.name for w in layer.non_trainable_weights} == {"moving_mean", "moving_variance"}


def test_freezing_moves_weights_to_non_trainable():
    layer = keras.layers.Dense(3)
    layer.build((None, 4))
    layer.trainable = False  # freeze the layer
    assert _weight_counts(layer) == (2, 0, 2)


def test_fit_leaves_a_frozen_layer_unchanged():
    layer1 = keras.layers.Dense(3, activation="relu")
    layer2 = keras.layers.Dense(3, activation="sigmoid")
    model = keras.Sequential([keras.Input(shape=(3,)), layer1, layer2])

    layer1.trainable = False  # freeze the first layer
    initial_layer1_weights_values = layer1.get_weights()
    initial_layer2_weights_values = layer2.get_weights()

    model.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(0)
    model.fit(rng.random((2, 3)), rng.random((2, 3)), verbose=0)

    final_layer1_weights_values = layer1.get_weights()
    for initial, final in zip(initial_layer1_weights_values, final_layer1_weights_values):
        np.testing.assert_allclose(initial, final)
    for initial, final in zip(initial_layer2_weights_values, layer2.get_weights()):
        assert not np.allclose(initial, final)


def test_trainable_is_set_recursively():
    inner_model = keras.Sequential(
        [
            keras.Input(shape=(3,)),
            keras.layers.Dense(3, activation="relu"),
            keras.layers.Dense(3, activation="relu"),
        ]
    )
    model = keras.Sequential(
        [keras.Input(shape=(3,)), inner_model, keras.layers.Dense(3, activation="sigmoid")]
    )
    model.trainable = False  # freeze the outer model

    assert inner_model.trainable is False  # every layer in `model` is now frozen
    assert inner_model.layers[0].trainable is False  # `trainable` propagates recursively
    assert len(model.trainable_weights) == 0
    assert len(model.non_trainable_weights) == 6


def test_frozen_batch_normalization_runs_in_inference_mode():
    bn = keras.layers.BatchNormalization()
    batch = keras.random.normal((16, 4)) * 3.0 + 1.0
    bn(batch, training=True)  # moves the statistics once
    moving = {w.name: w.numpy().copy() for w in bn.weights}

    bn.trainable = False
    in_training_call = bn(batch, training=True).numpy()
    in_inference_call = bn(batch, training=False).numpy()

    np.testing.assert_array_equal(in_training_call, in_inference_call)
    for weight in bn.weights:
        np.testing.assert_array_equal(moving[weight.name], weight.numpy())


# ------------------------------------------------------------------ the typical workflow
def _digit_images():
    (x_train, y_train), (x_test, y_test) = digits.load_data()
    x_train = (x_train.astype("float32") / 16)[..., None]  # (N, 8, 8, 1)
    x_test = (x_test.astype("float32") / 16)[..., None]
    return (x_train, y_train), (x_test, y_test)


def _fours_and_nines(x, y):
    """The new task's data: label 1.0 for a nine, 0.0 for a four (our cats and dogs)."""
    keep = np.isin(y, (4, 9))
    return x[keep], (y[keep] == 9).astype("float32")


def _pretrained_base():
    """A small convolutional base trained on the ten digit classes: our stand-in for the guide's
    ImageNet-trained Xception."""
    (x_train, y_train), _ = _digit_images()
    base_model = keras.Sequential(
        [
            keras.Input(shape=(8, 8, 1)),
            layers.Conv2D(16, 3, padding="same", activation="relu"),
            layers.BatchNormalization(momentum=0.9),  # short pre-training: faster statistics
            layers.Conv2D(32, 3, activation="relu"),
        ],
        name="base",
    )
    classifier = keras.Sequential([base_model, layers.GlobalAveragePooling2D(), layers.Dense(10)])
    classifier.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    classifier.fit(x_train, y_train, batch_size=64, epochs=3, verbose=0)
    _, (x_test, y_test) = _digit_images()
    _, accuracy = classifier.evaluate(x_test, y_test, verbose=0)
    assert accuracy > 0.85  # a useful base: 0.93 with seed 0
    return base_model


def test_freeze_train_head_then_fine_tune():
    base_model = _pretrained_base()
    (x_train, y_train), (x_test, y_test) = _digit_images()
    x_train, y_train = _fours_and_nines(x_train, y_train)
    x_test, y_test = _fours_and_nines(x_test, y_test)
    train_ds = keras.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(1024).batch(64)
    validation_ds = keras.data.Dataset.from_tensor_slices((x_test, y_test)).batch(64)

    # Freeze the base model.
    base_model.trainable = False

    # A new model on top: the base runs in inference mode (training=False), which matters for
    # its batch normalization when we fine-tune below.
    inputs = keras.Input(shape=(8, 8, 1))
    x = base_model(inputs, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(1)(x)
    model = keras.Model(inputs, outputs)
    assert len(model.trainable_weights) == 2  # only the new Dense head
    assert "Trainable params: 33" in _summary_text(model)

    base_before = [w.numpy().copy() for w in base_model.weights]
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy()],
    )
    history = model.fit(train_ds, epochs=6, validation_data=validation_ds, verbose=0)
    assert sorted(history.history) == [
        "binary_accuracy",
        "loss",
        "val_binary_accuracy",
        "val_loss",
    ]
    head_accuracy = history.history["val_binary_accuracy"][-1]
    assert head_accuracy > 0.9  # 0.97 with seed 0
    for before, weight in zip(base_before, base_model.weights):
        np.testing.assert_array_equal(before, weight.numpy())

    # Fine-tuning: unfreeze the base model, recompile with a very low learning rate.
    base_model.trainable = True
    assert len(model.trainable_weights) == 2 + 6  # conv, gamma/beta, conv
    model.compile(
        optimizer=keras.optimizers.Adam(1e-5),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy()],
    )
    history = model.fit(train_ds, epochs=1, validation_data=validation_ds, verbose=0)

    bn = base_model.layers[1]
    moving_before = {w.name: before for w, before in zip(base_model.weights, base_before)}
    for weight in bn.non_trainable_weights:  # inference mode: statistics untouched
        np.testing.assert_array_equal(moving_before[weight.name], weight.numpy())
    first_conv_kernel = base_model.layers[0].weights[0]
    assert not np.array_equal(base_before[0], first_conv_kernel.numpy())
    assert np.abs(base_before[0] - first_conv_kernel.numpy()).max() < 1e-3  # small steps
    assert history.history["val_binary_accuracy"][-1] > head_accuracy - 0.05

    loss, accuracy = model.evaluate(validation_ds, verbose=0)
    assert accuracy == pytest.approx(history.history["val_binary_accuracy"][-1])


def test_fine_tuning_with_a_custom_training_loop():
    base_model = _pretrained_base()
    (x_train, y_train), _ = _digit_images()
    x_train, y_train = _fours_and_nines(x_train, y_train)
    new_dataset = keras.data.Dataset.from_tensor_slices((x_train, y_train)).batch(64)

    base_model.trainable = False
    inputs = keras.Input(shape=(8, 8, 1))
    x = base_model(inputs, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(1)(x)
    model = keras.Model(inputs, outputs)

    loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)
    optimizer = keras.optimizers.Adam(1e-2)
    base_before = [w.numpy().copy() for w in base_model.weights]

    losses = []
    for _epoch in range(6):
        for inputs, targets in new_dataset:
            with keras.GradientTape() as tape:
                predictions = model(inputs)  # forward pass
                loss_value = loss_fn(targets, predictions)
            gradients = tape.gradient(loss_value, model.trainable_weights)
            optimizer.apply_gradients(zip(gradients, model.trainable_weights))
            losses.append(float(loss_value))

    assert len(gradients) == 2
    for before, weight in zip(base_before, base_model.weights):
        np.testing.assert_array_equal(before, weight.numpy())
    steps = len(new_dataset)  # 289 images in batches of 64: 5 steps an epoch
    assert len(losses) == 6 * steps
    first_epoch, last_epoch = np.mean(losses[:steps]), np.mean(losses[-steps:])
    assert last_epoch < first_epoch
    assert last_epoch < 0.35


# ------------------------------------------------------------------ the end-to-end example
def test_resizing_layer_for_the_input_pipeline():
    resize_fn = keras.layers.Resizing(16, 16)
    images = keras.ones((2, 8, 8, 1))
    assert resize_fn(images).shape == (2, 16, 16, 1)


def test_augmentation_with_flip_and_rotation():
    data_augmentation = keras.Sequential(
        [layers.RandomFlip("horizontal"), layers.RandomRotation(0.1)]
    )
    images = keras.random.uniform((4, 8, 8, 1))
    assert data_augmentation(images, training=True).shape == (4, 8, 8, 1)
    np.testing.assert_array_equal(data_augmentation(images, training=False).numpy(), images.numpy())


def test_rescaling_layer_maps_pixels_to_minus_one_one():
    scale_layer = keras.layers.Rescaling(scale=1 / 127.5, offset=-1)
    pixels = keras.tensor([[0.0, 127.5, 255.0]])
    np.testing.assert_allclose(scale_layer(pixels).numpy(), [[-1.0, 0.0, 1.0]], atol=1e-6)


def test_summary_shows_which_layers_are_trainable():
    base_model = keras.Sequential(
        [keras.Input(shape=(8, 8, 1)), layers.Conv2D(4, 3)], name="frozen_base"
    )
    base_model.trainable = False
    inputs = keras.Input(shape=(8, 8, 1))
    x = base_model(inputs, training=False)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(1)(x)
    model = keras.Model(inputs, outputs)

    lines: list[str] = []
    model.summary(show_trainable=True, print_fn=lines.append)
    text = "\n".join(lines)
    assert "Trainable" in text.splitlines()[2]
    frozen_row = next(line for line in text.splitlines() if "frozen_base" in line)
    assert frozen_row.rstrip().endswith("N")


def test_batched_pipeline_with_prefetch_and_cache():
    (x_train, y_train), _ = _digit_images()
    x_train, y_train = _fours_and_nines(x_train, y_train)
    batch_size = 64
    train_ds = keras.data.Dataset.from_tensor_slices((x_train, y_train))
    train_ds = train_ds.batch(batch_size).prefetch(keras.data.AUTOTUNE).cache()
    assert len(train_ds) == 5
    first_pass = [y for _, y in train_ds]
    second_pass = [y for _, y in train_ds]
    for a, b in zip(first_pass, second_pass):
        np.testing.assert_array_equal(a, b)
