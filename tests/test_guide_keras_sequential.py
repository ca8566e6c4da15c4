"""Keras guide "The Sequential model", re-told on Ember with only the import line changed.

Every test is one snippet of the guide, written in our own words: ``import ember as keras`` and
``from ember import layers`` stand for ``import keras`` / ``from keras import layers``. The
assertions are the facts the guide states (weights after build, layer counts after ``pop``,
output shapes in ``summary``, which weights stay frozen).

The guide's ``ops.ones((3, 3))`` is checked once, in :func:`test_ops_creation_as_in_guide`;
the other tests build their inputs with ``keras.ones`` (Ember's top-level spelling) so that they
keep testing the rest of each snippet while ``ember.ops`` lacks ``ones``.
"""

from __future__ import annotations

import numpy as np
import pytest

import ember as keras
from ember import layers, ops


@pytest.fixture(autouse=True)
def _seed():
    keras.manual_seed(0)


def _summary_text(model) -> str:
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    return "\n".join(lines)


def test_ops_creation_as_in_guide():
    stack = keras.Sequential(
        [
            layers.Dense(2, activation="relu", name="layer1"),
            layers.Dense(3, activation="relu", name="layer2"),
            layers.Dense(4, name="layer3"),
        ]
    )
    batch = ops.ones((3, 3))
    assert stack(batch).shape == (3, 4)
    assert ops.zeros((2, 5)).shape == (2, 5)


def test_sequential_is_the_chain_of_its_layers():
    first = layers.Dense(2, activation="relu", name="layer1")
    second = layers.Dense(3, activation="relu", name="layer2")
    third = layers.Dense(4, name="layer3")
    stack = keras.Sequential([first, second, third])
    batch = keras.ones((3, 3))

    through_model = stack(batch)
    through_layers = third(second(first(batch)))

    assert through_model.shape == (3, 4)
    np.testing.assert_array_equal(through_model.numpy(), through_layers.numpy())
    assert [layer.name for layer in stack.layers] == ["layer1", "layer2", "layer3"]


def test_layers_attribute_lists_the_unbuilt_layers():
    stack = keras.Sequential(
        [layers.Dense(2, activation="relu"), layers.Dense(3, activation="relu"), layers.Dense(4)]
    )
    assert len(stack.layers) == 3
    assert all(isinstance(layer, layers.Dense) for layer in stack.layers)
    assert not any(layer.built for layer in stack.layers)


def test_add_then_pop():
    stack = keras.Sequential()
    stack.add(layers.Dense(2, activation="relu"))
    stack.add(layers.Dense(3, activation="relu"))
    stack.add(layers.Dense(4))
    assert len(stack.layers) == 3

    removed = stack.pop()
    assert len(stack.layers) == 2
    assert removed.units == 4


def test_constructor_takes_a_name():
    stack = keras.Sequential(name="my_sequential")
    stack.add(layers.Dense(2, activation="relu", name="layer1"))
    stack.add(layers.Dense(3, activation="relu", name="layer2"))
    stack.add(layers.Dense(4, name="layer3"))
    assert stack.name == "my_sequential"
    stack(keras.ones((1, 3)))
    assert _summary_text(stack).startswith('Sequential: "my_sequential"')


def test_layer_creates_its_weights_on_first_call():
    dense = layers.Dense(3)
    assert dense.weights == []

    dense(keras.ones((1, 4)))
    assert [tuple(w.shape) for w in dense.weights] == [(4, 3), (3,)]


def test_model_without_input_builds_on_first_call():
    stack = keras.Sequential(
        [layers.Dense(2, activation="relu"), layers.Dense(3, activation="relu"), layers.Dense(4)]
    )
    # Before any data has been seen Keras 3 lists the layers, unbuilt (the guide's comment that
    # summary() cannot be called predates Keras 3).
    text = _summary_text(stack)
    assert text.count("0 (unbuilt)") == 3 and "Total params: 0" in text

    stack(keras.ones((1, 4)))
    assert len(stack.weights) == 6
    # 4*2+2, 2*3+3, 3*4+4
    assert stack.count_params() == 10 + 9 + 16
    assert "Total params: 35" in _summary_text(stack)


def test_input_object_builds_the_model_and_is_not_a_layer():
    stack = keras.Sequential()
    stack.add(keras.Input(shape=(4,)))
    stack.add(layers.Dense(2, activation="relu"))

    assert len(stack.layers) == 1  # the Input is not listed
    assert len(stack.weights) == 2
    text = _summary_text(stack)
    assert "(None, 2)" in text
    assert "Total params: 10" in text


def test_input_shape_argument_of_the_first_layer():
    stack = keras.Sequential()
    stack.add(layers.Dense(2, activation="relu", input_shape=(4,)))
    assert stack.built
    assert len(stack.weights) == 2


def test_build_with_a_batch_shape():
    stack = keras.Sequential()
    stack.add(layers.Dense(8))
    stack.add(layers.Dense(4))
    stack.build((None, 16))
    assert len(stack.weights) == 4
    assert [tuple(w.shape) for w in stack.weights] == [(16, 8), (8,), (8, 4), (4,)]


def test_debugging_workflow_with_add_and_summary():
    stack = keras.Sequential()
    stack.add(keras.Input(shape=(250, 250, 3)))  # 250x250 RGB images
    stack.add(layers.Conv2D(32, 5, strides=2, activation="relu"))
    stack.add(layers.Conv2D(32, 3, activation="relu"))
    stack.add(layers.MaxPooling2D(3))
    text = _summary_text(stack)
    assert "(None, 123, 123, 32)" in text
    assert "(None, 121, 121, 32)" in text
    assert "(None, 40, 40, 32)" in text

    stack.add(layers.Conv2D(32, 3, activation="relu"))
    stack.add(layers.Conv2D(32, 3, activation="relu"))
    stack.add(layers.MaxPooling2D(3))
    stack.add(layers.Conv2D(32, 3, activation="relu"))
    stack.add(layers.Conv2D(32, 3, activation="relu"))
    stack.add(layers.MaxPooling2D(2))
    assert stack.output.shape == (None, 4, 4, 32)
    assert "(None, 4, 4, 32)" in _summary_text(stack)

    stack.add(layers.GlobalMaxPooling2D())
    stack.add(layers.Dense(10))
    assert stack.output.shape == (None, 10)
    # 5*5*3*32+32 for the first convolution, 3*3*32*32+32 for each of the five others
    assert stack.count_params() == 2432 + 5 * 9248 + (32 * 10 + 10)


def test_feature_extraction_from_every_layer():
    initial = keras.Sequential(
        [
            keras.Input(shape=(250, 250, 3)),
            layers.Conv2D(32, 5, strides=2, activation="relu"),
            layers.Conv2D(32, 3, activation="relu"),
            layers.Conv2D(32, 3, activation="relu"),
        ]
    )
    extractor = keras.Model(
        inputs=initial.inputs, outputs=[layer.output for layer in initial.layers]
    )
    image = keras.ones((1, 250, 250, 3))
    features = extractor(image)

    assert [tuple(f.shape) for f in features] == [
        (1, 123, 123, 32),
        (1, 121, 121, 32),
        (1, 119, 119, 32),
    ]
    np.testing.assert_allclose(features[-1].numpy(), initial(image).numpy(), rtol=1e-6)


def test_feature_extraction_from_one_named_layer():
    initial = keras.Sequential(
        [
            keras.Input(shape=(250, 250, 3)),
            layers.Conv2D(32, 5, strides=2, activation="relu"),
            layers.Conv2D(32, 3, activation="relu", name="my_intermediate_layer"),
            layers.Conv2D(32, 3, activation="relu"),
        ]
    )
    extractor = keras.Model(
        inputs=initial.inputs,
        outputs=initial.get_layer(name="my_intermediate_layer").output,
    )
    image = keras.ones((1, 250, 250, 3))
    features = extractor(image)

    assert features.shape == (1, 121, 121, 32)
    first, middle = initial.layers[0], initial.layers[1]
    np.testing.assert_allclose(features.numpy(), middle(first(image)).numpy(), rtol=1e-6)


def test_transfer_learning_freezes_all_layers_but_the_last():
    stack = keras.Sequential(
        [
            keras.Input(shape=(784,)),
            layers.Dense(32, activation="relu"),
            layers.Dense(32, activation="relu"),
            layers.Dense(32, activation="relu"),
            layers.Dense(10),
        ]
    )
    # Presumably the first layers were pre-trained; freeze them.
    for layer in stack.layers[:-1]:
        layer.trainable = False
    assert len(stack.trainable_weights) == 2
    assert len(stack.non_trainable_weights) == 6

    frozen_before = [w.numpy().copy() for layer in stack.layers[:-1] for w in layer.weights]
    head_before = [w.numpy().copy() for w in stack.layers[-1].weights]

    # Re-compile and train: only the last layer's weights move.
    rng = np.random.default_rng(0)
    features = rng.random((64, 784)).astype("float32")
    labels = rng.integers(0, 10, 64)
    stack.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    stack.fit(features, labels, epochs=1, batch_size=32, verbose=0)

    frozen_after = [w.numpy() for layer in stack.layers[:-1] for w in layer.weights]
    for before, after in zip(frozen_before, frozen_after):
        np.testing.assert_array_equal(before, after)
    for before, weight in zip(head_before, stack.layers[-1].weights):
        assert not np.array_equal(before, weight.numpy())
