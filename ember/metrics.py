"""Metrics: plain functions on arrays plus stateful accumulators used by ``fit``/``evaluate``.

``"accuracy"`` is resolved like Keras does: against the compiled loss (sparse / categorical /
binary cross-entropy pick the matching accuracy), else from the shapes of targets and predictions.

Example:
    >>> ember.metrics.sparse_categorical_accuracy([0, 1], [[0.9, 0.1], [0.8, 0.2]])
    0.5
"""

from __future__ import annotations

import numpy as np

from ember._registry import lookup
from ember.tensor import Tensor


def _arrays(y_true, y_pred):
    y_true = y_true.data if isinstance(y_true, Tensor) else np.asarray(y_true)
    y_pred = y_pred.data if isinstance(y_pred, Tensor) else np.asarray(y_pred)
    return y_true, y_pred


def _per_sample_binary(y_true, y_pred, threshold=0.5):
    y_true, y_pred = _arrays(y_true, y_pred)
    y_true = y_true.reshape(y_pred.shape) if y_true.size == y_pred.size else y_true
    hits = (y_pred > threshold) == (y_true > 0.5)
    return hits.reshape(len(hits), -1).mean(axis=1) if hits.ndim > 1 else hits.astype(float)


def _per_sample_categorical(y_true, y_pred):
    y_true, y_pred = _arrays(y_true, y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"categorical_accuracy: y_true shape {y_true.shape} must match y_pred shape "
            f"{y_pred.shape} (one-hot); for integer labels use sparse_categorical_accuracy"
        )
    return (y_true.argmax(axis=-1) == y_pred.argmax(axis=-1)).astype(float)


def _per_sample_sparse(y_true, y_pred):
    y_true, y_pred = _arrays(y_true, y_pred)
    return (y_true.reshape(-1) == y_pred.argmax(axis=-1).reshape(-1)).astype(float)


def binary_accuracy(y_true, y_pred, threshold: float = 0.5) -> float:
    """Fraction of predictions on the right side of ``threshold``.

    Example:
        >>> ember.metrics.binary_accuracy([1, 0, 1], [0.9, 0.6, 0.4])
        0.333...
        >>> ember.metrics.binary_accuracy([1, 0, 1], [0.9, 0.6, 0.4], threshold=0.7)
        0.666...
    """
    return float(np.mean(_per_sample_binary(y_true, y_pred, threshold)))


def categorical_accuracy(y_true, y_pred) -> float:
    """Fraction of rows whose arg-max matches the one-hot target's.

    Example:
        >>> ember.metrics.categorical_accuracy([[0, 1], [1, 0]], [[0.2, 0.8], [0.4, 0.6]])
        0.5
    """
    return float(np.mean(_per_sample_categorical(y_true, y_pred)))


def sparse_categorical_accuracy(y_true, y_pred) -> float:
    """Fraction of rows whose arg-max equals the integer label.

    Example:
        >>> ember.metrics.sparse_categorical_accuracy([1, 0], [[0.2, 0.8], [0.4, 0.6]])
        0.5
    """
    return float(np.mean(_per_sample_sparse(y_true, y_pred)))


def _per_sample_squared_error(y_true, y_pred):
    y_true, y_pred = _arrays(y_true, y_pred)
    y_true = y_true.reshape(y_pred.shape) if y_true.size == y_pred.size else y_true
    err = (np.asarray(y_pred, np.float64) - y_true) ** 2
    return err.reshape(len(err), -1).mean(axis=1) if err.ndim > 1 else err


def _per_sample_absolute_error(y_true, y_pred):
    y_true, y_pred = _arrays(y_true, y_pred)
    y_true = y_true.reshape(y_pred.shape) if y_true.size == y_pred.size else y_true
    err = np.abs(np.asarray(y_pred, np.float64) - y_true)
    return err.reshape(len(err), -1).mean(axis=1) if err.ndim > 1 else err


def mean_absolute_error(y_true, y_pred) -> float:
    """Mean of |y_pred - y_true| over every element.

    Example:
        >>> ember.metrics.mean_absolute_error([1.0, 2.0], [1.5, 1.0])
        0.75
    """
    return float(np.mean(_per_sample_absolute_error(y_true, y_pred)))


def root_mean_squared_error(y_true, y_pred) -> float:
    """√(mean of (y_pred - y_true)² over every element).

    Example:
        >>> ember.metrics.root_mean_squared_error([0.0, 0.0], [3.0, 4.0])
        3.535...
    """
    return float(np.sqrt(np.mean(_per_sample_squared_error(y_true, y_pred))))


def zero_one_loss(y_true, y_pred, threshold: float = 0.5) -> float:
    """Fraction of misclassified samples: ``1 - accuracy``, with the accuracy chosen from the
    shapes as ``"accuracy"`` is (binary with ``threshold`` for one output column, sparse for
    integer labels, categorical for one-hot targets).

    Example:
        >>> ember.metrics.zero_one_loss([0, 1, 1], [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])
        0.333...
    """
    y_true, y_pred = _arrays(y_true, y_pred)
    kind = resolve_accuracy(None, y_true.shape, y_pred.shape)
    if kind == "binary_accuracy":
        hits = _per_sample_binary(y_true, y_pred, threshold)
    else:
        hits = _METRICS[kind](y_true, y_pred)
    return float(1.0 - np.mean(hits))


def _binary_labels(name, y_true, y_pred, threshold):
    y_true, y_pred = _arrays(y_true, y_pred)
    if y_true.size != y_pred.size:
        raise ValueError(
            f"{name}: binary metric needs one prediction per target; got y_true shape "
            f"{y_true.shape} and y_pred shape {y_pred.shape}. For several classes use "
            f"ember.metrics.{name}(y_true, y_pred, average='macro')"
        )
    return y_true.reshape(-1) > 0.5, y_pred.reshape(-1) > threshold


def _counts(name, y_true, y_pred, threshold):
    truth, predicted = _binary_labels(name, y_true, y_pred, threshold)
    tp = int(np.sum(truth & predicted))
    return tp, int(np.sum(~truth & predicted)), int(np.sum(truth & ~predicted))


def _ratio(num, den):
    return num / den if den else 0.0


def _macro(name, y_true, y_pred, ratio) -> float:
    """Unweighted mean over classes of a per-class ratio from the confusion matrix (classes absent
    from both targets and predictions count, with ratio 0, as in scikit-learn's
    ``zero_division=0``)."""
    matrix = confusion_matrix(y_true, y_pred)
    tp = np.diag(matrix).astype(np.float64)
    fp = matrix.sum(axis=0) - tp
    fn = matrix.sum(axis=1) - tp
    num, den = ratio(tp, fp, fn)
    per_class = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return float(per_class.mean())


def _averaged(name, y_true, y_pred, threshold, average, ratio) -> float:
    if average == "binary":
        num, den = ratio(*_counts(name, y_true, y_pred, threshold))
        return _ratio(num, den)
    if average == "macro":
        return _macro(name, y_true, y_pred, ratio)
    raise ValueError(f"{name}: average must be 'binary' or 'macro', got {average!r}")


def _precision_ratio(tp, fp, fn):
    return tp, tp + fp


def _recall_ratio(tp, fp, fn):
    return tp, tp + fn


def _f1_ratio(tp, fp, fn):
    return 2 * tp, 2 * tp + fp + fn


def precision(y_true, y_pred, threshold: float = 0.5, average: str = "binary") -> float:
    """TP / (TP + FP) for binary targets (positive when ``y_true > 0.5``) and predictions
    (positive when ``y_pred > threshold``); 0 when nothing is predicted positive (as Keras).

    ``average="macro"`` is the multi-class form: per-class precision from
    :func:`confusion_matrix` (labels, one-hot rows or class scores), then their unweighted mean.

    Example:
        >>> ember.metrics.precision([1, 0, 1, 0], [0.9, 0.8, 0.2, 0.1])
        0.5
    """
    return _averaged("precision", y_true, y_pred, threshold, average, _precision_ratio)


def recall(y_true, y_pred, threshold: float = 0.5, average: str = "binary") -> float:
    """TP / (TP + FN); 0 when there are no positive targets. ``average="macro"`` as in
    :func:`precision`.

    Example:
        >>> ember.metrics.recall([1, 0, 1, 0], [0.9, 0.8, 0.2, 0.1])
        0.5
    """
    return _averaged("recall", y_true, y_pred, threshold, average, _recall_ratio)


def f1_score(y_true, y_pred, threshold: float = 0.5, average: str = "binary") -> float:
    """Harmonic mean of precision and recall, 2TP / (2TP + FP + FN); 0 when both are 0.
    ``average="macro"`` averages the per-class F1 scores (scikit-learn's definition).

    Example:
        >>> ember.metrics.f1_score([1, 0, 1, 1], [0.9, 0.8, 0.2, 0.7])
        0.666...
    """
    return _averaged("f1_score", y_true, y_pred, threshold, average, _f1_ratio)


def _class_labels(y, name, threshold=0.5):
    y = np.asarray(y)
    if y.ndim >= 2 and y.shape[-1] > 1:
        return y.argmax(axis=-1).reshape(-1)
    y = y.reshape(-1)
    if y.dtype.kind == "f" and np.any(y != np.round(y)):
        return (y > threshold).astype(np.intp)  # one probability column
    if y.dtype.kind not in "biuf":
        raise TypeError(f"{name}: labels must be numeric, got dtype {y.dtype}")
    return y.astype(np.intp)


def confusion_matrix(y_true, y_pred, n_classes: int | None = None) -> np.ndarray:
    """``(n_classes, n_classes)`` integer counts: rows are true classes, columns predicted ones
    (the scikit-learn / TensorFlow layout).

    ``y_true`` and ``y_pred`` may be integer labels, one-hot rows or class scores (arg-max is
    taken), or a single probability column (thresholded at 0.5). ``n_classes`` defaults to
    ``1 + the largest label seen`` (or the number of score columns).

    Example:
        >>> ember.metrics.confusion_matrix([0, 1, 1, 2], [0, 2, 1, 2])
        array([[1, 0, 0],
               [0, 1, 1],
               [0, 0, 1]])
    """
    y_true, y_pred = _arrays(y_true, y_pred)
    truth = _class_labels(y_true, "confusion_matrix")
    predicted = _class_labels(y_pred, "confusion_matrix")
    if truth.shape != predicted.shape:
        raise ValueError(f"confusion_matrix: {truth.size} targets but {predicted.size} predictions")
    if n_classes is None:
        columns = [a.shape[-1] for a in (y_true, y_pred) if a.ndim >= 2 and a.shape[-1] > 1]
        seen = int(max(truth.max(initial=-1), predicted.max(initial=-1))) + 1
        n_classes = max(columns + [seen, 1])
    n_classes = int(n_classes)
    for labels in (truth, predicted):
        outside = (labels < 0) | (labels >= n_classes)
        if outside.any():
            raise ValueError(
                f"confusion_matrix: label {labels[outside][0]} is outside [0, {n_classes})"
            )
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    return matrix


class Metric:
    """A running, sample-weighted mean of a per-sample metric (``update_state``/``result``).

    Example:
        >>> abs_err = lambda y_true, y_pred: np.abs(np.subtract(y_pred, y_true))
        >>> m = ember.metrics.Metric("abs_err", abs_err)
        >>> m.update_state([0.0, 0.0], [1.0, 3.0]); m.update_state([0.0], [5.0]); m.result()
        3.0
        >>> m.reset_state(); m.result()
        nan
    """

    def __init__(self, name: str, per_sample_fn):
        self.name = name
        self._fn = per_sample_fn
        self.reset_state()

    def reset_state(self) -> None:
        self._total = 0.0
        self._count = 0

    def update_state(self, y_true, y_pred) -> None:
        values = self._fn(y_true, y_pred)
        self._total += float(np.sum(values))
        self._count += len(values)

    def result(self) -> float:
        return self._total / self._count if self._count else float("nan")

    def __repr__(self) -> str:
        return f"Metric({self.name!r})"


class RootMeanSquaredError(Metric):
    """√ of the running mean squared error (not the mean of per-batch RMSEs).

    Example:
        >>> m = ember.metrics.RootMeanSquaredError()
        >>> m.update_state([0.0, 0.0], [3.0, 3.0]); m.update_state([0.0], [0.0]); m.result()
        2.449...
    """

    def __init__(self, name: str = "rmse"):
        super().__init__(name, _per_sample_squared_error)

    def result(self) -> float:
        return float(np.sqrt(super().result()))


class _BinaryCounts(Metric):
    """Accumulates TP, FP and FN over batches; subclasses turn them into a ratio."""

    def __init__(self, name: str, threshold: float = 0.5):
        threshold = float(threshold)
        if not np.isfinite(threshold):
            raise ValueError(f"{name}: threshold must be a finite number, got {threshold!r}")
        self.threshold = threshold
        super().__init__(name, None)

    def reset_state(self) -> None:
        self._tp = self._fp = self._fn = 0

    def update_state(self, y_true, y_pred) -> None:
        tp, fp, fn = _counts(self.name, y_true, y_pred, self.threshold)
        self._tp += tp
        self._fp += fp
        self._fn += fn


class Precision(_BinaryCounts):
    """Running :func:`precision` over every batch seen.

    Example:
        >>> m = ember.metrics.Precision(threshold=0.3)
        >>> m.update_state([1, 1, 0], [0.9, 0.2, 0.7]); m.result()
        0.5
    """

    def __init__(self, threshold: float = 0.5, name: str = "precision"):
        super().__init__(name, threshold)

    def result(self) -> float:
        return _ratio(self._tp, self._tp + self._fp)


class Recall(_BinaryCounts):
    """Running :func:`recall` over every batch seen.

    Example:
        >>> m = ember.metrics.Recall()
        >>> m.update_state([1, 1, 0], [0.9, 0.2, 0.7]); m.update_state([1], [0.6]); m.result()
        0.666...
    """

    def __init__(self, threshold: float = 0.5, name: str = "recall"):
        super().__init__(name, threshold)

    def result(self) -> float:
        return _ratio(self._tp, self._tp + self._fn)


class F1Score(_BinaryCounts):
    """Running binary :func:`f1_score` over every batch seen.

    Example:
        >>> m = ember.metrics.F1Score()
        >>> m.update_state([1, 1, 0], [0.9, 0.2, 0.7]); m.result()
        0.5
    """

    def __init__(self, threshold: float = 0.5, name: str = "f1_score"):
        super().__init__(name, threshold)

    def result(self) -> float:
        return _ratio(2 * self._tp, 2 * self._tp + self._fp + self._fn)


_METRICS = {
    "binary_accuracy": _per_sample_binary,
    "categorical_accuracy": _per_sample_categorical,
    "sparse_categorical_accuracy": _per_sample_sparse,
    "mae": _per_sample_absolute_error,
    "mean_absolute_error": _per_sample_absolute_error,
}
# Metrics that are not a mean of per-sample values: built by their class.
_METRIC_CLASSES = {
    "rmse": RootMeanSquaredError,
    "root_mean_squared_error": RootMeanSquaredError,
    "precision": Precision,
    "recall": Recall,
    "f1_score": F1Score,
    "f1": F1Score,
}
# Names resolved from the compiled loss and the shapes (handled in get()).
_RESOLVED = {"accuracy": None, "acc": None, "zero_one_loss": None}
_ACCURACY_FOR_LOSS = {
    "SparseCategoricalCrossentropy": "sparse_categorical_accuracy",
    "CategoricalCrossentropy": "categorical_accuracy",
    "BinaryCrossentropy": "binary_accuracy",
}


def resolve_accuracy(loss, y_true_shape: tuple, y_pred_shape: tuple) -> str:
    """Which accuracy ``"accuracy"`` means for this loss and these shapes (Keras' rule)."""
    by_loss = _ACCURACY_FOR_LOSS.get(type(loss).__name__)
    if by_loss:
        return by_loss
    if y_pred_shape[-1:] == (1,) or len(y_pred_shape) == 1:
        return "binary_accuracy"
    if len(y_true_shape) == 1 or y_true_shape[-1:] == (1,):
        return "sparse_categorical_accuracy"
    return "categorical_accuracy"


def get(identifier, loss=None, y_true_shape=(), y_pred_shape=()) -> Metric:
    """A fresh :class:`Metric` for a name; ``"accuracy"``/``"acc"`` is resolved by the loss.

    Example:
        >>> acc = ember.metrics.get("accuracy", loss=ember.losses.SparseCategoricalCrossentropy())
        >>> acc.update_state([1, 0], [[0.2, 0.8], [0.4, 0.6]]); acc.result()
        0.5
        >>> ember.metrics.get("rmse")
        Metric('rmse')
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        name = identifier.lower()
        if name in ("accuracy", "acc"):
            fn = _METRICS[resolve_accuracy(loss, y_true_shape, y_pred_shape)]
            return Metric(name, fn)
        if name == "zero_one_loss":
            hit = _METRICS[resolve_accuracy(loss, y_true_shape, y_pred_shape)]
            return Metric(name, lambda yt, yp: 1.0 - hit(yt, yp))
        found = lookup("metric", name, {**_METRICS, **_METRIC_CLASSES, **_RESOLVED})
        if isinstance(found, type):
            return found(name=name.replace("-", "_"))
        return Metric(name, found)
    if callable(identifier):
        name = getattr(identifier, "__name__", "metric")
        return Metric(name, lambda yt, yp: np.atleast_1d(identifier(*_arrays(yt, yp))))
    raise TypeError(f"metric must be a name or a callable, got {identifier!r}")


def validate_names(identifiers) -> list:
    """Fail early (at compile time) on an unknown metric name."""
    valid = {**_METRICS, **_METRIC_CLASSES, **_RESOLVED}
    for identifier in identifiers:
        if isinstance(identifier, str):
            lookup("metric", identifier.lower(), valid)
        elif not (callable(identifier) or isinstance(identifier, Metric)):
            raise TypeError(f"metric must be a name or a callable, got {identifier!r}")
    return list(identifiers)
