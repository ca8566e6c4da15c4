"""``compile(weighted_metrics=...)`` as in Keras: those metrics take the ``sample_weight`` (and
``class_weight``) given to ``fit``/``evaluate``, the plain ``metrics`` do not. The use that
needs it: accuracy over the labelled nodes of a graph only, where the whole graph is one batch
and the unlabelled nodes have weight 0."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import layers


def _fixed_model(outputs: int = 2):
    """Predicts class 0 for every sample (zero kernel, bias favouring class 0)."""
    model = ember.Sequential(
        [
            ember.Input(shape=(3,)),
            layers.Dense(outputs, kernel_initializer="zeros", bias_initializer="zeros"),
        ]
    )
    model.layers[-1].bias.data[...] = [1.0, 0.0][:outputs]
    return model


X = np.ones((4, 3), np.float32)
Y = np.array([0, 0, 1, 1])
W = np.array([1.0, 1.0, 0.0, 0.0])  # only the first two samples count


def test_weighted_metric_uses_the_sample_weight_and_the_plain_one_does_not():
    model = _fixed_model()
    model.compile(
        "sgd",
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
        weighted_metrics=["accuracy"],
    )
    logs = model.evaluate(X, Y, sample_weight=W, return_dict=True, verbose=0)
    assert logs["accuracy"] == 0.5  # all four samples
    assert logs["weighted_accuracy"] == 1.0  # the two with weight 1, both right
    # without a name clash the weighted metric keeps its own name
    model.compile("sgd", "sparse_categorical_crossentropy", weighted_metrics=["accuracy"])
    logs = model.evaluate(X, Y, sample_weight=W, return_dict=True, verbose=0)
    assert logs == pytest.approx({"loss": logs["loss"], "accuracy": 1.0})
    # fractional weights give the weighted mean: (1 * 1 + 0.5 * 0) / 1.5
    logs = model.evaluate(X, Y, sample_weight=[1.0, 0.0, 0.5, 0.0], return_dict=True, verbose=0)
    assert logs["accuracy"] == pytest.approx(2 / 3)


def test_weighted_metrics_in_fit_with_class_weight():
    """class_weight becomes a per-sample weight, which weighted metrics see (Keras)."""
    model = _fixed_model()
    model.compile("sgd", "sparse_categorical_crossentropy", weighted_metrics=["accuracy"])
    history = model.fit(X, Y, class_weight={0: 1.0, 1: 0.0}, epochs=1, batch_size=4, verbose=0)
    assert history.history["accuracy"] == [1.0]  # evaluated before the update: class 1 weighs 0


def test_weighted_metrics_with_a_sequence_mask():
    """A (batch,) weight and the (batch, steps) padding mask multiply."""
    inputs = ember.Input(shape=(3,), dtype="int32")
    x = layers.Embedding(5, 2, mask_zero=True)(inputs)
    outputs = layers.Dense(2, kernel_initializer="zeros")(x)
    model = ember.Model(inputs, outputs)
    model.layers[-1].bias.data[...] = [1.0, 0.0]
    model.compile("sgd", "sparse_categorical_crossentropy", weighted_metrics=["accuracy"])
    ids = np.array([[1, 2, 0], [3, 0, 0]])
    targets = np.array([[0, 1, 1], [1, 1, 1]])  # padded steps would all count as wrong
    logs = model.evaluate(ids, targets, sample_weight=[1.0, 0.0], return_dict=True, verbose=0)
    assert logs["accuracy"] == 0.5  # the two real steps of sample 0: one right, one wrong


def test_weighted_metrics_per_output_names_and_a_checkpoint(tmp_path):
    inputs = ember.Input(shape=(3,))
    a = layers.Dense(2, "softmax", name="a", kernel_initializer="zeros")(inputs)
    b = layers.Dense(2, "softmax", name="b", kernel_initializer="zeros")(inputs)
    model = ember.Model(inputs, {"a": a, "b": b})
    model.compile(
        "sgd",
        {"a": "sparse_categorical_crossentropy", "b": "sparse_categorical_crossentropy"},
        weighted_metrics={"a": ["accuracy"]},
    )
    logs = model.evaluate(X, {"a": Y, "b": Y}, sample_weight=W, return_dict=True, verbose=0)
    assert "a_accuracy" in logs and "b_accuracy" not in logs
    path = tmp_path / "m.ember"
    model.save(path)
    loaded = ember.models.load_model(path)
    again = loaded.evaluate(X, {"a": Y, "b": Y}, sample_weight=W, return_dict=True, verbose=0)
    assert again == pytest.approx(logs)


def test_bad_weighted_metric_name_is_refused_at_compile():
    model = _fixed_model()
    with pytest.raises(ValueError, match="accurracy"):
        model.compile("sgd", "mse", weighted_metrics=["accurracy"])
