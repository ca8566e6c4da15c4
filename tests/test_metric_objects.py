"""Keras-3-style metric objects: ``update_state`` / ``result`` / ``reset_state`` / ``__call__``.

Hand-computed values for every class (plain and sample-weighted), accumulation over unequal
batches against one update with everything, reset, the stateful call, clones that share no
state, Tensors and lists as inputs, and the lower-case names of ``compile(metrics=[...])``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import ember
from ember import metrics

# Shared small inputs. One-hot / label targets for two rows of three class scores:
# row 0: scores [0.1, 0.9, 0.8], true class 2 (second best); row 1: true class 1 (the best).
SCORES = [[0.1, 0.9, 0.8], [0.05, 0.95, 0.0]]
ONE_HOT = [[0, 0, 1], [0, 1, 0]]
LABELS = [2, 1]

# (metric factory, y_true, y_pred, expected, sample_weight, weighted expected); comments give
# the hand computation.
HAND_CASES = {
    # equal at 1, 2, 3 (of 4); weights keep samples 0 and 1: (0 + 1) / 2
    "accuracy": (metrics.Accuracy, [1, 2, 3, 4], [0, 2, 3, 4], 0.75, [1, 1, 0, 0], 0.5),
    # > 0.5: [1, 1, 0, 1] against [1, 1, 0, 0] → 3/4; weights keep samples 0 and 3 → 1/2
    "binary_accuracy": (
        metrics.BinaryAccuracy,
        [[1], [1], [0], [0]],
        [[0.98], [1.0], [0.0], [0.6]],
        0.75,
        [1, 0, 0, 1],
        0.5,
    ),
    # multi-label: per sample the fraction right, [1/2, 1] → 3/4; weights 3, 1 → (1.5 + 1) / 4
    "binary_accuracy_multilabel": (
        metrics.BinaryAccuracy,
        [[1, 0], [1, 1]],
        [[0.8, 0.7], [0.6, 0.9]],
        0.75,
        [3, 1],
        0.625,
    ),
    # arg-max right on row 1 only → 1/2; weights 0.7, 0.3 → 0.3
    "categorical_accuracy": (metrics.CategoricalAccuracy, ONE_HOT, SCORES, 0.5, [0.7, 0.3], 0.3),
    "sparse_categorical_accuracy": (
        metrics.SparseCategoricalAccuracy,
        LABELS,
        SCORES,
        0.5,
        [0.7, 0.3],
        0.3,
    ),
    # top-1 is the arg-max: as above; top-2 has class 2 of row 0 too → 1
    "top_1": (lambda: metrics.TopKCategoricalAccuracy(k=1), ONE_HOT, SCORES, 0.5, [0.7, 0.3], 0.3),
    "top_2": (lambda: metrics.TopKCategoricalAccuracy(k=2), ONE_HOT, SCORES, 1.0, [0.7, 0.3], 1.0),
    "sparse_top_1": (
        lambda: metrics.SparseTopKCategoricalAccuracy(k=1),
        LABELS,
        SCORES,
        0.5,
        [0.7, 0.3],
        0.3,
    ),
    "sparse_top_2": (
        lambda: metrics.SparseTopKCategoricalAccuracy(k=2),
        LABELS,
        SCORES,
        1.0,
        [0.7, 0.3],
        1.0,
    ),
    # squared errors [[1, 0], [4, 0]]: per sample [0.5, 2] → 1.25; weights 3, 1 → 3.5 / 4
    "mse": (
        metrics.MeanSquaredError,
        [[0.0, 1.0], [0.0, 0.0]],
        [[1.0, 1.0], [2.0, 0.0]],
        1.25,
        [3, 1],
        0.875,
    ),
    # absolute errors [[1, 0], [3, 0]]: per sample [0.5, 1.5] → 1; weights 3, 1 → 3 / 4
    "mae": (
        metrics.MeanAbsoluteError,
        [[0.0, 1.0], [0.0, 0.0]],
        [[1.0, 1.0], [-3.0, 0.0]],
        1.0,
        [3, 1],
        0.75,
    ),
    "rmse": (
        metrics.RootMeanSquaredError,
        [[0.0, 1.0], [0.0, 0.0]],
        [[1.0, 1.0], [2.0, 0.0]],
        math.sqrt(1.25),
        [3, 1],
        math.sqrt(0.875),
    ),
    # predicted [1, 0, 1] for [1, 1, 0]: TP 1, FN 1, FP 1; weights 3, 1, 2: TP 3, FN 1, FP 2
    "precision": (metrics.Precision, [1, 1, 0], [0.9, 0.2, 0.7], 0.5, [3, 1, 2], 3 / 5),
    "recall": (metrics.Recall, [1, 1, 0], [0.9, 0.2, 0.7], 0.5, [3, 1, 2], 3 / 4),
    "f1_score": (metrics.F1Score, [1, 1, 0], [0.9, 0.2, 0.7], 0.5, [3, 1, 2], 6 / 9),
    # pairs (positive, negative): 0.35 > 0.1, 0.35 < 0.4, 0.8 beats both → 3/4; with weights
    # [1, 1, 2, 1] the pair weights are w_pos * w_neg: (2 + 0 + 1 + 1) / (3 * 2)
    "auc": (metrics.AUC, [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 0.75, [1, 1, 2, 1], 4 / 6),
}


@pytest.mark.parametrize("case", sorted(HAND_CASES))
def test_hand_computed_values(case):
    make, y_true, y_pred, expected, _, _ = HAND_CASES[case]
    m = make()
    m.update_state(y_true, y_pred)
    result = m.result()
    assert type(result) is float
    assert result == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("case", sorted(HAND_CASES))
def test_hand_computed_sample_weighted_values(case):
    make, y_true, y_pred, plain, weights, expected = HAND_CASES[case]
    m = make()
    m.update_state(y_true, y_pred, sample_weight=weights)
    assert m.result() == pytest.approx(expected, rel=1e-12)
    m.reset_state()
    m.update_state(y_true, y_pred, sample_weight=np.ones(len(weights)))  # ones = no weights
    assert m.result() == pytest.approx(plain, rel=1e-12)


def test_mean_and_sum_weights_broadcast_against_values():
    m = metrics.Mean()
    m.update_state([1.0, 3.0])
    m.update_state(5.0)  # a Python number is one value
    assert m.result() == 3.0
    values = np.array([[1.0, 2.0], [3.0, 5.0]])  # per-sample means 1.5 and 4
    m.reset_state()
    m.update_state(values, sample_weight=[1.0, 0.0])  # (N,) weights scale whole samples
    assert m.result() == 1.5
    m.reset_state()
    m.update_state(values, sample_weight=[[1.0, 0.0], [0.0, 1.0]])  # elementwise weights
    assert m.result() == 3.0  # (1 + 5) / 2
    m.reset_state()
    m.update_state([2.0, 4.0], sample_weight=[[3.0], [1.0]])  # (N, 1) weights, (N,) values
    assert m.result() == 2.5
    m.reset_state()
    m.update_state(values, sample_weight=2.0)  # a scalar weighs every value alike
    assert m.result() == 2.75
    with pytest.raises(ValueError, match=r"mean: sample_weight of shape \(3,\) does not fit"):
        m.update_state(values, sample_weight=[1.0, 2.0, 3.0])
    s = metrics.Sum()
    assert s.result() == 0.0
    s.update_state(values, sample_weight=[1.0, 0.5])  # 3 + 4
    s.update_state(ember.tensor([1.0, 2.0]))
    assert s.result() == 10.0


def test_mean_of_nothing_is_nan_and_zero_weights_count_nothing():
    m = metrics.Mean()
    assert math.isnan(m.result())
    m.update_state(np.zeros((0, 3)))  # a zero-row batch
    assert math.isnan(m.result())
    m.update_state([4.0, 8.0], sample_weight=[0.0, 0.0])
    assert math.isnan(m.result())
    assert math.isnan(metrics.SparseCategoricalAccuracy().result())
    assert math.isnan(metrics.RootMeanSquaredError().result())
    # ratios of counts follow Keras: 0 when the denominator is 0
    assert metrics.Precision().result() == 0.0
    assert metrics.AUC().result() == 0.0


# ------------------------------------------------------------------------------ accumulation
def _data(kind, rng, n):
    """(y_true, y_pred) of ``n`` samples for one kind of metric."""
    if kind in ("binary", "counts", "auc"):
        y = rng.integers(0, 2, size=(n, 1)).astype(np.float64)
        return y, np.clip(0.35 * y + rng.uniform(0, 0.65, size=(n, 1)), 0, 1)
    if kind == "regression":
        return rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    if kind == "equal":
        return rng.integers(0, 3, size=n), rng.integers(0, 3, size=n)
    labels = rng.integers(0, 5, size=n)
    scores = rng.uniform(size=(n, 5)) + 0.6 * np.eye(5)[labels]
    return (np.eye(5)[labels] if kind == "one_hot" else labels), scores


RUNNING = [
    (metrics.Accuracy, "equal"),
    (metrics.BinaryAccuracy, "binary"),
    (metrics.CategoricalAccuracy, "one_hot"),
    (metrics.SparseCategoricalAccuracy, "sparse"),
    (lambda: metrics.TopKCategoricalAccuracy(k=2), "one_hot"),
    (lambda: metrics.SparseTopKCategoricalAccuracy(k=2), "sparse"),
    (metrics.MeanSquaredError, "regression"),
    (metrics.MeanAbsoluteError, "regression"),
    (metrics.RootMeanSquaredError, "regression"),
    (metrics.Precision, "counts"),
    (metrics.Recall, "counts"),
    (metrics.F1Score, "counts"),
    (lambda: metrics.AUC(num_thresholds=50), "auc"),
]


def _running_id(item):
    made = item[0]()
    return f"{type(made).__name__}-{made.get_config()}"


@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "weighted"])
@pytest.mark.parametrize("make, kind", RUNNING, ids=[_running_id(r) for r in RUNNING])
def test_accumulation_over_unequal_batches_equals_one_update(make, kind, weighted):
    rng = np.random.default_rng(7)
    y, p = _data(kind, rng, 60)
    w = rng.uniform(0.1, 2.0, size=60) if weighted else None
    batches = [(0, 5), (5, 33), (33, 60)]
    running = make()
    for a, b in batches:
        running.update_state(y[a:b], p[a:b], sample_weight=None if w is None else w[a:b])
    whole = make()
    whole.update_state(y, p, sample_weight=w)
    assert running.result() == pytest.approx(whole.result(), rel=1e-12, abs=1e-15)
    # the data tells a running value from the mean of per-batch values
    per_batch = []
    for a, b in batches:
        one = make()
        one.update_state(y[a:b], p[a:b], sample_weight=None if w is None else w[a:b])
        per_batch.append(one.result())
    assert np.mean(per_batch) != pytest.approx(whole.result(), rel=1e-9)


def test_reset_forgets_everything_and_reset_states_is_an_alias():
    m = metrics.SparseCategoricalAccuracy()
    m.update_state(LABELS, SCORES)
    m.reset_state()
    assert math.isnan(m.result())
    m.update_state([1], [[0.1, 0.8, 0.1]])
    assert m.result() == 1.0  # only the batch after the reset
    m.reset_states()
    assert math.isnan(m.result())
    p = metrics.Precision()
    p.update_state([1, 0], [0.9, 0.8])
    p.reset_states()
    p.update_state([1, 1], [0.9, 0.8])
    assert p.result() == 1.0
    auc = metrics.AUC()
    auc.update_state([0, 1], [0.9, 0.1])  # all wrong
    auc.reset_state()
    assert auc.result() == 0.0
    auc.update_state([0, 1], [0.1, 0.9])
    assert auc.result() == 1.0


def test_call_updates_then_returns_the_running_result():
    m = metrics.BinaryAccuracy()
    assert m([1, 0], [0.9, 0.8]) == 0.5  # first batch: 1 of 2
    assert m([1, 1], [0.9, 0.8]) == 0.75  # running: 3 of 4, not this batch's 1.0
    assert m.result() == 0.75
    r = metrics.Recall()
    assert r([1, 1], [0.9, 0.1], sample_weight=[1, 3]) == 0.25


# ------------------------------------------------------------------------------ clone
CLONED = [
    (metrics.BinaryAccuracy(threshold=0.7, name="acc70"), "binary"),
    (metrics.SparseTopKCategoricalAccuracy(k=3, name="top3"), "sparse"),
    (metrics.TopKCategoricalAccuracy(k=2), "one_hot"),
    (metrics.RootMeanSquaredError(name="rmse"), "regression"),
    (metrics.Precision(threshold=0.4), "counts"),
    (metrics.F1Score(threshold=0.6, name="f1"), "counts"),
    (metrics.AUC(num_thresholds=30, name="auc30"), "auc"),
    (metrics.MeanMetricWrapper(lambda y, p: np.abs(y - p), name="abs"), "regression"),
]


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.parametrize("metric, kind", CLONED, ids=[type(m).__name__ for m, _ in CLONED])
def test_clone_is_fresh_same_config_and_shares_no_state(metric, kind):
    rng = np.random.default_rng(3)
    y1, p1 = _data(kind, rng, 20)
    y2, p2 = _data(kind, rng, 20)
    metric.reset_state()
    metric.update_state(y1, p1)
    before = metric.result()
    copy = metrics.clone(metric)
    assert type(copy) is type(metric) and copy is not metric
    assert copy.get_config() == metric.get_config()
    assert _same(copy.result(), type(metric).from_config(metric.get_config()).result())  # fresh
    copy.update_state(y2, p2)
    assert metric.result() == before  # the original did not see the clone's batch
    reference = metrics.clone(metric)
    reference.update_state(y2, p2)
    assert copy.result() == reference.result()
    metric.update_state(y2, p2)
    assert copy.result() == reference.result()  # nor the clone the original's


def test_clone_of_a_custom_metric_needs_its_config():
    class AtLeast(metrics.Metric):
        def __init__(self, bound, name="at_least"):
            super().__init__(name=name)
            self.bound = bound
            self.reset_state()

        def update_state(self, y_true, y_pred, sample_weight=None):
            self.hits += int(np.sum(np.asarray(y_pred) >= self.bound))

        def result(self):
            return float(self.hits)

        def reset_state(self):
            self.hits = 0

    m = AtLeast(0.5)
    with pytest.raises(TypeError, match=r"clone: cannot rebuild AtLeast.*must return them from"):
        metrics.clone(m)
    AtLeast.get_config = lambda self: {"name": self.name, "bound": self.bound}
    m.update_state(None, [0.4, 0.6, 0.9])
    copy = metrics.clone(m)
    assert copy.bound == 0.5 and copy.result() == 0.0 and m.result() == 2.0


# ------------------------------------------------------------------------------ inputs
@pytest.mark.parametrize("case", sorted(HAND_CASES))
def test_tensors_and_lists_are_accepted(case):
    make, y_true, y_pred, _, weights, expected = HAND_CASES[case]
    y_pred = np.asarray(y_pred, dtype=np.float64)
    as_tensor = ember.tensor(y_pred, requires_grad=True)  # a model output, graph and all
    m = make()
    weight_tensor = ember.tensor(np.asarray(weights, dtype=np.float64))
    m.update_state(ember.tensor(np.asarray(y_true)), as_tensor, sample_weight=weight_tensor)
    assert m.result() == pytest.approx(expected, rel=1e-12)
    m.reset_state()
    m.update_state(list(y_true), y_pred.tolist(), sample_weight=list(weights))
    assert m.result() == pytest.approx(expected, rel=1e-12)


def test_top_k_ties_count_inside_and_non_finite_scores_never_do():
    scores = np.array([[0.5, 0.5, 0.1], [np.nan, 0.2, 0.1], [1.0, 2.0, 3.0]])
    m = metrics.SparseTopKCategoricalAccuracy(k=1)
    m.update_state([1, 0, 0], scores)
    assert m.result() == pytest.approx(1 / 3)  # the tie only
    m = metrics.SparseTopKCategoricalAccuracy(k=2)  # k=2 on 3 classes: row 2's class 0 is 3rd
    m.update_state([1, 0, 0], scores)
    assert m.result() == pytest.approx(1 / 3)
    assert metrics.SparseTopKCategoricalAccuracy()([0, 1, 2], scores[[0, 0, 2]]) == 1.0  # k ≥ C
    with pytest.raises(ValueError, match=r"label 3 is outside the valid range \[0, 3\)"):
        metrics.SparseTopKCategoricalAccuracy(k=1)([3, 0, 0], scores)
    with pytest.raises(ValueError, match="k must be a positive integer, got 0"):
        metrics.TopKCategoricalAccuracy(k=0)


def test_sequence_outputs_are_averaged_per_sample():
    # labels (N, T) against scores (N, T, C): sample 0 gets 2 of 2 right, sample 1 0 of 2
    scores = np.array([[[0.9, 0.1], [0.2, 0.8]], [[0.9, 0.1], [0.9, 0.1]]])
    labels = np.array([[0, 1], [1, 1]])
    m = metrics.SparseCategoricalAccuracy()
    assert m(labels, scores, sample_weight=[3.0, 1.0]) == 0.75


def test_mismatched_target_shapes_raise_instead_of_broadcasting():
    with pytest.raises(ValueError, match=r"mean_squared_error: y_true of shape \(3,\) does not"):
        metrics.MeanSquaredError()([1.0, 2.0, 3.0], [[1.0], [2.0]])
    with pytest.raises(ValueError, match=r"must match y_pred shape.*sparse_top_k"):
        metrics.TopKCategoricalAccuracy()(LABELS, SCORES)


def test_auc_is_exact_when_no_bucket_mixes_classes_and_checks_probabilities():
    rng = np.random.default_rng(5)
    y = np.repeat([0.0, 1.0], 40)
    # scores on distinct buckets of 1/(200-1): the trapezoid equals the rank statistic
    p = (rng.permutation(199)[:80] + 0.5) / 199
    pos, neg = p[y == 1], p[y == 0]
    exact = np.mean(pos[:, None] > neg[None, :])
    auc = metrics.AUC()
    auc.update_state(y[::2], p[::2])
    auc.update_state(y[1::2], p[1::2])
    assert auc.result() == pytest.approx(exact, rel=1e-12)
    logits = np.log(p / (1 - p))
    assert metrics.AUC(from_logits=True)(y, logits) == pytest.approx(exact, rel=1e-12)
    with pytest.raises(ValueError, match=r"auc: expected probabilities in \[0, 1\].*from_logits"):
        metrics.AUC()(y, logits)


# ------------------------------------------------------------------------------ base class
def test_metric_is_abstract_and_a_subclass_is_a_user_metric():
    with pytest.raises(TypeError, match="abstract"):
        metrics.Metric()
    with pytest.raises(TypeError, match=r"use ember\.metrics\.MeanMetricWrapper\(fn, name\)"):
        metrics.Metric("abs", lambda y, p: abs(p - y))  # the former Metric(name, fn)

    class Incomplete(metrics.Metric):
        def update_state(self, y_true, y_pred):
            pass

    with pytest.raises(TypeError, match="reset_state"):
        Incomplete()

    class Largest(metrics.Metric):
        def __init__(self, name=None):
            super().__init__(name=name)
            self.reset_state()

        def update_state(self, y_true, y_pred, sample_weight=None):
            self.value = max(self.value, float(np.max(y_pred)))

        def result(self):
            return self.value

        def reset_state(self):
            self.value = -math.inf

    m = Largest()
    assert m.name == "largest"  # default name from the class name
    assert metrics.get(m) is m
    assert m(None, [1.0, 4.0]) == 4.0 and m(None, [2.0]) == 4.0
    m.reset_states()
    assert m.result() == -math.inf
    assert m.get_config() == {"name": "largest"} and repr(m) == "Largest(name='largest')"


def test_mean_metric_wrapper_weighs_batch_means_by_batch_size():
    def batch_mean_error(y_true, y_pred):  # one number per batch
        return float(np.mean(np.abs(y_pred - y_true)))

    m = metrics.MeanMetricWrapper(batch_mean_error)
    assert m.name == "batch_mean_error"
    m.update_state([0.0], [4.0])
    m.update_state([0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
    assert m.result() == 1.0  # 4 over 4 samples, not the mean of batch means (2.0)
    scaled = metrics.MeanMetricWrapper(lambda y, p, scale: scale * np.abs(p - y), scale=10.0)
    assert scaled([0.0, 0.0], [1.0, 2.0]) == 15.0
    assert scaled.get_config()["scale"] == 10.0
    with pytest.raises(TypeError, match="fn must be callable"):
        metrics.MeanMetricWrapper("mae")


# ------------------------------------------------------------------------------ names
NAMES = {
    "binary_accuracy": metrics.BinaryAccuracy,
    "categorical_accuracy": metrics.CategoricalAccuracy,
    "sparse_categorical_accuracy": metrics.SparseCategoricalAccuracy,
    "top_k_categorical_accuracy": metrics.TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": metrics.SparseTopKCategoricalAccuracy,
    "mse": metrics.MeanSquaredError,
    "mean_squared_error": metrics.MeanSquaredError,
    "mae": metrics.MeanAbsoluteError,
    "mean_absolute_error": metrics.MeanAbsoluteError,
    "rmse": metrics.RootMeanSquaredError,
    "root_mean_squared_error": metrics.RootMeanSquaredError,
    "precision": metrics.Precision,
    "recall": metrics.Recall,
    "f1_score": metrics.F1Score,
    "f1": metrics.F1Score,
    "auc": metrics.AUC,
}


@pytest.mark.parametrize("name", sorted(NAMES))
def test_each_lower_case_name_resolves_to_a_fresh_object_of_its_class(name):
    m = metrics.get(name)
    assert type(m) is NAMES[name] and m.name == name
    assert metrics.get(name) is not m
    assert metrics.validate_names([name]) == [name]
    assert type(metrics.get(name.upper().replace("_", "-"))) is NAMES[name]


@pytest.mark.parametrize(
    "loss, y_shape, expected",
    [
        (ember.losses.SparseCategoricalCrossentropy(), (4,), metrics.SparseCategoricalAccuracy),
        (ember.losses.CategoricalCrossentropy(), (4, 3), metrics.CategoricalAccuracy),
        (ember.losses.BinaryCrossentropy(), (4, 3), metrics.BinaryAccuracy),
    ],
)
def test_accuracy_names_resolve_by_the_loss(loss, y_shape, expected):
    for name in ("accuracy", "acc"):
        m = metrics.get(name, loss, y_shape, (4, 3))
        assert type(m) is expected and m.name == name
    assert type(metrics.get("zero_one_loss", loss, y_shape, (4, 3))) is metrics.MeanMetricWrapper


def test_get_objects_classes_and_functions():
    m = metrics.SparseCategoricalAccuracy(name="sca")
    assert metrics.get(m) is m  # the object itself; clone() makes copies
    assert type(metrics.get(metrics.AUC)) is metrics.AUC
    wrapped = metrics.get(metrics.mean_absolute_error)
    assert type(wrapped) is metrics.MeanMetricWrapper and wrapped.name == "mean_absolute_error"
    assert wrapped([[1.0], [2.0]], [[1.5], [1.0]]) == 0.75
    from_loss = metrics.get(ember.losses.MeanSquaredError())
    assert from_loss.name == "mean_squared_error"
    assert from_loss([[1.0], [2.0]], [[1.5], [2.0]]) == pytest.approx(0.125)
    with pytest.raises(TypeError, match="metric must be a name, a Metric object or a function"):
        metrics.get(3)
    with pytest.raises(TypeError, match="metric must be a name, a Metric object or a function"):
        metrics.validate_names(["mae", 3])
    assert metrics.validate_names([m, metrics.AUC, len]) == [m, metrics.AUC, len]
