"""Classification and regression metrics: precision / recall / F1 (binary and macro), the confusion
matrix, zero-one loss, RMSE and MAE; hand-computed values, scikit-learn when it happens to be
installed (it is not a dependency), running accumulators across batches, and names reaching
``compile(metrics=[...])`` through ``fit``/``evaluate``."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ember
from ember import layers, metrics

# 8 samples; predicted positive (> 0.5): [1, 1, 0, 1, 0, 1, 1, 0] → TP 3 (0, 3, 6), FP 2 (1, 5),
# FN 1 (2), TN 2.
Y_TRUE = np.array([1, 0, 1, 1, 0, 0, 1, 0])
Y_PROB = np.array([0.9, 0.6, 0.4, 0.8, 0.2, 0.7, 0.55, 0.1])

# Multi-class: confusion matrix [[2, 1, 1], [0, 2, 0], [0, 1, 0]].
MC_TRUE = np.array([0, 0, 0, 0, 1, 1, 2])
MC_PRED = np.array([0, 0, 1, 2, 1, 1, 1])


# ------------------------------------------------------------------------------ binary
def test_precision_recall_f1_hand_values():
    assert metrics.precision(Y_TRUE, Y_PROB) == pytest.approx(3 / 5)
    assert metrics.recall(Y_TRUE, Y_PROB) == pytest.approx(3 / 4)
    assert metrics.f1_score(Y_TRUE, Y_PROB) == pytest.approx(2 * 0.6 * 0.75 / (0.6 + 0.75))
    # threshold 0.65: predicted [1, 0, 0, 1, 0, 1, 0, 0] → TP 2, FP 1, FN 2
    assert metrics.precision(Y_TRUE, Y_PROB, threshold=0.65) == pytest.approx(2 / 3)
    assert metrics.recall(Y_TRUE, Y_PROB, threshold=0.65) == pytest.approx(1 / 2)
    assert metrics.f1_score(Y_TRUE, Y_PROB, threshold=0.65) == pytest.approx(4 / 7)
    # (N, 1) columns and Tensors are accepted
    column = ember.tensor(Y_PROB[:, None])
    assert metrics.precision(Y_TRUE[:, None], column) == pytest.approx(3 / 5)


def test_zero_division_gives_zero_like_keras():
    nothing_predicted = np.zeros(4)
    assert metrics.precision([1, 0, 1, 0], nothing_predicted) == 0.0
    assert metrics.f1_score([1, 0, 1, 0], nothing_predicted) == 0.0
    assert metrics.recall([0, 0, 0, 0], [0.9, 0.1, 0.2, 0.3]) == 0.0


def test_binary_metric_with_mismatched_sizes_raises():
    with pytest.raises(
        ValueError, match=r"precision: binary metric needs one prediction per.*average='macro'"
    ):
        metrics.precision([1, 0], [[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])
    with pytest.raises(ValueError, match="average must be 'binary' or 'macro', got 'micro'"):
        metrics.recall(Y_TRUE, Y_PROB, average="micro")


# ------------------------------------------------------------------------------ multi-class
def test_macro_averaging_hand_values():
    scores = np.eye(3)[MC_PRED] * 0.8 + 0.05  # class scores whose arg-max is MC_PRED
    # per class: precision [2/2, 2/4, 0/1], recall [2/4, 2/2, 0/1], F1 [2/3, 2/3, 0]
    assert metrics.precision(MC_TRUE, scores, average="macro") == pytest.approx(0.5)
    assert metrics.recall(MC_TRUE, MC_PRED, average="macro") == pytest.approx(0.5)
    assert metrics.f1_score(np.eye(3)[MC_TRUE], scores, average="macro") == pytest.approx(4 / 9)


def test_confusion_matrix_hand_values_and_input_forms():
    expected = np.array([[2, 1, 1], [0, 2, 0], [0, 1, 0]])
    np.testing.assert_array_equal(metrics.confusion_matrix(MC_TRUE, MC_PRED), expected)
    scores = np.random.default_rng(0).uniform(0, 0.4, size=(7, 3)) + np.eye(3)[MC_PRED]
    np.testing.assert_array_equal(metrics.confusion_matrix(np.eye(3)[MC_TRUE], scores), expected)
    padded = metrics.confusion_matrix(MC_TRUE, MC_PRED, n_classes=4)
    assert padded.shape == (4, 4) and padded[:3, :3].tolist() == expected.tolist()
    assert padded[3].sum() == padded[:, 3].sum() == 0
    # a probability column is thresholded at 0.5: rows true, columns predicted, [[TN, FP], [FN, TP]]
    np.testing.assert_array_equal(
        metrics.confusion_matrix(Y_TRUE, Y_PROB[:, None]), [[2, 2], [1, 3]]
    )
    assert metrics.confusion_matrix(Y_TRUE, Y_PROB).dtype == np.int64


def test_confusion_matrix_errors():
    with pytest.raises(ValueError, match=r"label 3 is outside \[0, 3\)"):
        metrics.confusion_matrix([0, 3], [0, 1], n_classes=3)
    with pytest.raises(ValueError, match=r"label -1 is outside"):
        metrics.confusion_matrix([0, -1], [0, 1])
    with pytest.raises(ValueError, match="3 targets but 2 predictions"):
        metrics.confusion_matrix([0, 1, 1], [0, 1])


def test_against_scikit_learn_when_installed():
    skm = pytest.importorskip("sklearn.metrics")  # not a dependency: only checked when present
    rng = np.random.default_rng(1)
    y, p = rng.integers(0, 2, 200), rng.uniform(0, 1, 200)
    hard = (p > 0.5).astype(int)
    assert metrics.precision(y, p) == pytest.approx(skm.precision_score(y, hard))
    assert metrics.recall(y, p) == pytest.approx(skm.recall_score(y, hard))
    assert metrics.f1_score(y, p) == pytest.approx(skm.f1_score(y, hard))
    yc, pc = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    np.testing.assert_array_equal(
        metrics.confusion_matrix(yc, pc), skm.confusion_matrix(yc, pc, labels=range(4))
    )
    for fn, ref in [
        (metrics.precision, skm.precision_score),
        (metrics.recall, skm.recall_score),
        (metrics.f1_score, skm.f1_score),
    ]:
        expected = ref(yc, pc, average="macro", zero_division=0)
        assert fn(yc, pc, average="macro") == pytest.approx(expected)


# ------------------------------------------------------------------------------ zero-one loss
def test_zero_one_loss_is_one_minus_accuracy():
    assert metrics.zero_one_loss(Y_TRUE, Y_PROB[:, None]) == pytest.approx(3 / 8)
    assert metrics.zero_one_loss(Y_TRUE, Y_PROB[:, None]) == pytest.approx(
        1 - metrics.binary_accuracy(Y_TRUE, Y_PROB[:, None])
    )
    scores = np.eye(3)[MC_PRED] + 0.1
    assert metrics.zero_one_loss(MC_TRUE, scores) == pytest.approx(3 / 7)
    assert metrics.zero_one_loss(np.eye(3)[MC_TRUE], scores) == pytest.approx(3 / 7)
    running = metrics.get("zero_one_loss", None, MC_TRUE.shape, scores.shape)
    running.update_state(MC_TRUE[:3], scores[:3])
    running.update_state(MC_TRUE[3:], scores[3:])
    assert running.name == "zero_one_loss" and running.result() == pytest.approx(3 / 7)


# ------------------------------------------------------------------------------ regression
def test_rmse_and_mae_hand_values():
    y, p = np.array([[0.0, 1.0], [2.0, 2.0]]), np.array([[3.0, 1.0], [2.0, -2.0]])
    assert metrics.root_mean_squared_error(y, p) == pytest.approx(math.sqrt(25 / 4))
    assert metrics.mean_absolute_error(y, p) == pytest.approx(7 / 4)


# ------------------------------------------------------------------------------ accumulators
@pytest.mark.parametrize(
    "name, one_shot",
    [
        ("precision", metrics.precision),
        ("recall", metrics.recall),
        ("f1_score", metrics.f1_score),
        ("rmse", metrics.root_mean_squared_error),
        ("mae", metrics.mean_absolute_error),
    ],
)
def test_running_metric_over_batches_equals_the_one_shot_value(name, one_shot):
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, size=(50, 1)).astype(np.float64)
    p = rng.uniform(0, 1, size=(50, 1))
    metric = metrics.get(name)
    assert metric.name == name
    metric.update_state(y[:7], p[:7])
    metric.reset_state()  # forgets the first pass
    for start, stop in [(0, 7), (7, 30), (30, 50)]:  # unequal batches
        metric.update_state(y[start:stop], p[start:stop])
    expected = one_shot(y, p)
    assert metric.result() == pytest.approx(expected, rel=1e-12)
    batch_means = np.mean([one_shot(y[a:b], p[a:b]) for a, b in [(0, 7), (7, 30), (30, 50)]])
    assert batch_means != pytest.approx(expected, rel=1e-6)  # the data tells the two apart


def test_metric_classes_and_their_names():
    assert isinstance(metrics.get("f1"), metrics.F1Score)
    assert isinstance(metrics.get("root_mean_squared_error"), metrics.RootMeanSquaredError)
    assert metrics.get("root_mean_squared_error").name == "root_mean_squared_error"
    m = metrics.Precision(threshold=0.65)
    m.update_state(Y_TRUE, Y_PROB)
    assert m.result() == pytest.approx(2 / 3)
    assert math.isnan(metrics.RootMeanSquaredError().result())  # nothing seen yet


def test_B9_metric_names_and_threshold():
    for typo, closest in [("precison", "precision"), ("f1score", "f1_score"), ("rmes", "rmse")]:
        with pytest.raises(
            ValueError, match=rf"unknown metric '{typo}'\. Did you mean '{closest}'"
        ):
            metrics.get(typo)
    with pytest.raises(ValueError, match="Did you mean 'recall'"):
        metrics.validate_names(["accuracy", "recal"])
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="precision: threshold must be a finite number"):
            metrics.Precision(threshold=bad)


# ------------------------------------------------------------------------------ through fit
def test_compile_metrics_by_name_through_fit_and_evaluate():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((120, 4)).astype(np.float32)
    y = (x[:, :1] + 0.5 * x[:, 1:2] > 0).astype(np.float32)
    ember.manual_seed(0)
    model = ember.models.Sequential(
        [layers.Input(shape=(4,)), layers.Dense(8, activation="tanh"), layers.Dense(1, "sigmoid")]
    )
    names = ["accuracy", "precision", "recall", "f1_score", "mae", "rmse"]
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=names)
    history = model.fit(x, y, batch_size=32, epochs=3, verbose=0)
    for name in names:
        assert len(history.history[name]) == 3
        assert 0.0 <= history.history[name][-1] <= 1.0
    loss, *values = model.evaluate(x, y, batch_size=50, verbose=0)
    p = model.predict(x)
    expected = [
        metrics.binary_accuracy(y, p),
        metrics.precision(y, p),
        metrics.recall(y, p),
        metrics.f1_score(y, p),
        metrics.mean_absolute_error(y, p),
        metrics.root_mean_squared_error(y, p),
    ]
    np.testing.assert_allclose(values, expected, rtol=1e-6)
    assert 0 < expected[1] < 1 and 0 < expected[2] <= 1  # a real, non-degenerate classifier
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert list(logs) == ["loss", *names]
