"""Metrics: plain functions on arrays, and Keras-3-style metric objects for ``fit``/``evaluate``.

A metric object accumulates over batches: ``update_state(...)`` adds a batch, ``result()`` gives
the value over everything seen so far (a Python float), ``reset_state()`` starts again, and
calling the object updates then returns the result. :class:`Metric` is the base class of your
own metrics; :class:`Mean` and :class:`MeanMetricWrapper` cover the common "running mean" case.

``compile(metrics=[...])`` takes names (resolved by :func:`get`), metric objects or functions
``fn(y_true, y_pred)``. ``"accuracy"`` is resolved like Keras does: against the compiled loss
(sparse / categorical / binary cross-entropy pick the matching accuracy), else from the shapes
of targets and predictions.

Example:
    >>> ember.metrics.sparse_categorical_accuracy([0, 1], [[0.9, 0.1], [0.8, 0.2]])
    0.5
    >>> m = ember.metrics.SparseCategoricalAccuracy()
    >>> m.update_state([0, 1], [[0.9, 0.1], [0.8, 0.2]]); m.update_state([1], [[0.3, 0.7]])
    >>> m.result()
    0.666...
"""

from __future__ import annotations

import abc
import re

import numpy as np
from numpy.typing import ArrayLike

from ember._registry import lookup
from ember.ops.elementwise import stable_sigmoid
from ember.ops.nn import check_class_labels
from ember.tensor import Tensor


def _array(x) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def _arrays(y_true, y_pred):
    return _array(y_true), _array(y_pred)


def _like(name: str, y_true: np.ndarray, shape: tuple) -> np.ndarray:
    """``y_true`` in ``shape``: the same number of values is reshaped ((N,) against (N, 1)),
    never broadcast into an N x N table."""
    if y_true.shape == shape:
        return y_true
    if y_true.size == int(np.prod(shape)):
        return y_true.reshape(shape)
    raise ValueError(
        f"{name}: y_true of shape {y_true.shape} does not fit y_pred, which needs targets of "
        f"shape {shape}"
    )


def _per_sample_equal(y_true, y_pred):
    y_true, y_pred = _arrays(y_true, y_pred)
    return (_like("accuracy", y_true, y_pred.shape) == y_pred).astype(np.float64)


def _per_sample_binary(y_true, y_pred, threshold=0.5):
    """One value per sample: the fraction of its outputs on the right side of ``threshold``."""
    y_true, y_pred = _arrays(y_true, y_pred)
    hits = (y_pred > threshold) == (_like("binary_accuracy", y_true, y_pred.shape) > 0.5)
    return hits.mean(axis=tuple(range(1, hits.ndim))) if hits.ndim > 1 else hits.astype(float)


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
    predicted = y_pred.argmax(axis=-1)
    labels = _like("sparse_categorical_accuracy", y_true, predicted.shape)
    return (labels == predicted).astype(np.float64)


def _in_top_k(name: str, scores: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
    """Whether each target class is among the ``k`` highest scores of its row (of the last
    axis). Ties at the boundary count as inside, and a non-finite target score never does."""
    classes = scores.shape[-1]
    flat = scores.reshape(-1, classes)
    targets = check_class_labels(name, targets, classes)
    if targets.shape[0] != flat.shape[0]:
        raise ValueError(
            f"{name}: {targets.shape[0]} targets for {flat.shape[0]} rows of scores (shape "
            f"{scores.shape})"
        )
    picked = flat[np.arange(flat.shape[0]), targets]
    higher = np.count_nonzero(flat > picked[:, None], axis=-1)
    return ((higher < k) & np.isfinite(picked)).reshape(scores.shape[:-1]).astype(np.float64)


def _per_sample_top_k(y_true, y_pred, k: int = 5):
    y_true, y_pred = _arrays(y_true, y_pred)
    name = "top_k_categorical_accuracy"
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"{name}: y_true shape {y_true.shape} must match y_pred shape {y_pred.shape} "
            "(one-hot); for integer labels use sparse_top_k_categorical_accuracy"
        )
    return _in_top_k(name, y_pred, y_true.argmax(axis=-1), k)


def _per_sample_sparse_top_k(y_true, y_pred, k: int = 5):
    y_true, y_pred = _arrays(y_true, y_pred)
    name = "sparse_top_k_categorical_accuracy"
    return _in_top_k(name, y_pred, _like(name, y_true, y_pred.shape[:-1]), k)


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


def top_k_categorical_accuracy(y_true, y_pred, k: int = 5) -> float:
    """Fraction of rows whose one-hot target class is among the ``k`` highest scores.

    Example:
        >>> y_true, scores = [[0, 0, 1], [0, 1, 0]], [[0.5, 0.3, 0.2], [0.2, 0.7, 0.1]]
        >>> ember.metrics.top_k_categorical_accuracy(y_true, scores, k=2)
        0.5
    """
    return float(np.mean(_per_sample_top_k(y_true, y_pred, k)))


def sparse_top_k_categorical_accuracy(y_true, y_pred, k: int = 5) -> float:
    """Fraction of rows whose integer label is among the ``k`` highest scores.

    Example:
        >>> scores = [[0.5, 0.3, 0.2], [0.2, 0.7, 0.1]]
        >>> ember.metrics.sparse_top_k_categorical_accuracy([2, 1], scores, k=2)
        0.5
    """
    return float(np.mean(_per_sample_sparse_top_k(y_true, y_pred, k)))


def _per_sample_squared_error(y_true, y_pred):
    """Elementwise squared errors, in y_pred's shape (the metric objects average them per
    sample)."""
    y_true, y_pred = _arrays(y_true, y_pred)
    y_true = _like("mean_squared_error", y_true, y_pred.shape)
    return (y_pred.astype(np.float64) - y_true) ** 2


def _per_sample_absolute_error(y_true, y_pred):
    y_true, y_pred = _arrays(y_true, y_pred)
    y_true = _like("mean_absolute_error", y_true, y_pred.shape)
    return np.abs(y_pred.astype(np.float64) - y_true)


def mean_squared_error(y_true, y_pred) -> float:
    """Mean of (y_pred - y_true)² over every element.

    Example:
        >>> ember.metrics.mean_squared_error([1.0, 2.0], [1.5, 1.0])
        0.625
    """
    return float(np.mean(_per_sample_squared_error(y_true, y_pred)))


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
        hits = _PER_SAMPLE_ACCURACY[kind](y_true, y_pred)
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


# ------------------------------------------------------------------------------ metric objects
def _snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


class Metric(abc.ABC):
    """Base class of the stateful metrics: accumulate over batches, report over everything seen.

    A subclass implements ``update_state(...)`` (add one batch to the state), ``result()`` (the
    value so far, a Python float) and ``reset_state()`` (forget everything; call it at the end
    of ``__init__`` to create the state). Calling a metric updates it and returns the result.
    ``fit``/``evaluate`` reset compiled metrics at the start of every epoch and call
    ``update_state(y_true, y_pred)`` on each batch. Override ``get_config`` too when
    ``__init__`` takes arguments besides ``name``, so that :func:`clone` can rebuild it.

    Example (a metric that is not a mean: the largest absolute error seen):
        >>> class MaxAbsoluteError(ember.metrics.Metric):
        ...     def __init__(self, name="max_absolute_error"):
        ...         super().__init__(name=name)
        ...         self.reset_state()
        ...
        ...     def update_state(self, y_true, y_pred, sample_weight=None):
        ...         error = np.abs(np.asarray(y_pred, float) - np.asarray(y_true, float))
        ...         self.worst = max(self.worst, float(error.max(initial=0.0)))
        ...
        ...     def result(self):
        ...         return self.worst
        ...
        ...     def reset_state(self):
        ...         self.worst = 0.0
        >>> m = MaxAbsoluteError()
        >>> m.update_state([1.0, 2.0], [1.5, 2.0])
        >>> m([0.0], ember.tensor([-2.0]))  # update, then the result over both batches
        2.0
        >>> m.reset_state(); m.result()
        0.0
    """

    def __new__(cls, *args, **kwargs):
        if cls is Metric and len(args) == 2 and callable(args[1]):
            raise TypeError(
                "Metric is the abstract base class of metric objects; for the running mean of "
                "a per-sample function use ember.metrics.MeanMetricWrapper(fn, name)"
            )
        return super().__new__(cls)

    def __init__(self, name: str | None = None):
        self.name = _snake_case(type(self).__name__) if name is None else str(name)

    @abc.abstractmethod
    def update_state(self, *args, **kwargs) -> None:
        """Add one batch to the state."""

    @abc.abstractmethod
    def result(self) -> float:
        """The metric over every batch since the last reset."""

    @abc.abstractmethod
    def reset_state(self) -> None:
        """Forget every batch seen."""

    def reset_states(self) -> None:
        """Alias of :meth:`reset_state` (the Keras 2 name)."""
        self.reset_state()

    def __call__(self, *args, **kwargs) -> float:
        """``update_state(*args, **kwargs)``, then ``result()``: the value over all batches so
        far, not only this one."""
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self) -> dict:
        """The ``__init__`` arguments that rebuild this metric (see :func:`clone`)."""
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict) -> Metric:
        return cls(**config)

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{key}={value!r}" for key, value in self.get_config().items() if not callable(value)
        )
        return f"{type(self).__name__}({shown})"


def _float_values(values) -> np.ndarray:
    values = np.asarray(_array(values), dtype=np.float64)
    return values.reshape(1) if values.ndim == 0 else values


def _aligned_weights(name: str, sample_weight, shape: tuple) -> np.ndarray:
    """``sample_weight`` broadcast to ``shape``, aligned on the leading (batch) axis: ``(N,)``
    weights scale whole samples of ``(N, D)`` values; trailing size-1 axes are dropped, so
    ``(N, 1)`` weights fit ``(N,)`` values; a scalar weighs every value."""
    weights = np.asarray(_array(sample_weight), dtype=np.float64)
    given = weights.shape
    while weights.ndim > len(shape) and weights.shape[-1] == 1:
        weights = weights[..., 0]
    weights = weights.reshape(weights.shape + (1,) * (len(shape) - weights.ndim))
    try:
        return np.broadcast_to(weights, shape)
    except ValueError:
        raise ValueError(
            f"{name}: sample_weight of shape {given} does not fit values of shape {shape}; pass "
            f"one weight per sample, shape ({shape[0] if shape else 1},)"
        ) from None


class Mean(Metric):
    """Running (weighted) mean of every value passed to ``update_state``.

    ``values`` may be an array, a Tensor, a list or a number. Values of shape ``(N, ...)`` are
    ``N`` samples: each sample counts with its weight (``sample_weight``, aligned on the batch
    axis, or elementwise when it has the values' shape). ``result()`` is ``nan`` before any
    value (or when every weight is 0).

    Example:
        >>> m = ember.metrics.Mean()
        >>> m.update_state([1.0, 3.0]); m.update_state(5.0); m.result()
        3.0
        >>> m.reset_state(); m.update_state([1.0, 3.0], sample_weight=[3, 1]); m.result()
        1.5
    """

    def __init__(self, name: str = "mean"):
        super().__init__(name=name)
        self.reset_state()

    def reset_state(self) -> None:
        self.total = 0.0
        self.count = 0.0

    def update_state(
        self, values: ArrayLike | Tensor, sample_weight: ArrayLike | None = None
    ) -> None:
        if type(values) is float and (sample_weight is None or type(sample_weight) is int):
            # fast path: one number (the loss of a batch, weighted by its size), every step
            weight = 1 if sample_weight is None else sample_weight
            self.total += values * weight
            self.count += float(weight)
            return
        values = _float_values(values)
        if not values.size:
            return
        per_sample = values.size / values.shape[0]  # values per sample: each counts 1/that
        if sample_weight is None:
            self.total += float(values.sum()) / per_sample
            self.count += float(values.shape[0])
            return
        weights = _aligned_weights(self.name, sample_weight, values.shape)
        self.total += float(np.sum(values * weights)) / per_sample
        self.count += float(weights.sum()) / per_sample

    def result(self) -> float:
        return self.total / self.count if self.count else float("nan")


class Sum(Metric):
    """Running (weighted) sum of every value passed to ``update_state``; 0 before any value.

    Example:
        >>> m = ember.metrics.Sum()
        >>> m.update_state([1.0, 3.0]); m.update_state([[2.0, 2.0]], sample_weight=[0.5])
        >>> m.result()
        6.0
    """

    def __init__(self, name: str = "sum"):
        super().__init__(name=name)
        self.reset_state()

    def reset_state(self) -> None:
        self.total = 0.0

    def update_state(
        self, values: ArrayLike | Tensor, sample_weight: ArrayLike | None = None
    ) -> None:
        values = _float_values(values)
        if sample_weight is not None and values.size:
            values = values * _aligned_weights(self.name, sample_weight, values.shape)
        self.total += float(values.sum())

    def result(self) -> float:
        return self.total


class MeanMetricWrapper(Mean):
    """Running mean of ``fn(y_true, y_pred, **kwargs)`` over every sample seen.

    ``fn`` receives NumPy arrays (Tensors are unwrapped) and returns one value per sample
    (``(N,)``, or ``(N, ...)``, averaged per sample). A function that returns a single number
    for the batch (a batch mean) counts as that value for each of the batch's samples, so
    batches of different sizes are weighed by their size.

    Example:
        >>> abs_err = lambda y_true, y_pred: np.abs(y_pred - y_true)
        >>> m = ember.metrics.MeanMetricWrapper(abs_err, name="abs_err")
        >>> m.update_state([0.0, 0.0], [1.0, 3.0]); m.update_state([0.0], [5.0]); m.result()
        3.0
        >>> m.reset_state(); m([0.0, 0.0], [1.0, 3.0], sample_weight=[1.0, 0.0])
        1.0
    """

    def __init__(self, fn, name: str | None = None, **kwargs):
        if not callable(fn):
            raise TypeError(f"MeanMetricWrapper: fn must be callable, got {fn!r}")
        if name is None:
            name = getattr(fn, "__name__", None) or getattr(fn, "name", None) or "metric"
        super().__init__(name=name)
        self._fn = fn
        self._fn_kwargs = kwargs

    def update_state(
        self,
        y_true: ArrayLike | Tensor,
        y_pred: ArrayLike | Tensor,
        sample_weight: ArrayLike | None = None,
    ) -> None:
        y_true, y_pred = _arrays(y_true, y_pred)
        values = np.asarray(_array(self._fn(y_true, y_pred, **self._fn_kwargs)), np.float64)
        if values.ndim == 0:  # one number for the batch: it stands for each of its samples
            values = np.full(len(y_pred) if y_pred.ndim else 1, values)
        super().update_state(values, sample_weight)

    def get_config(self) -> dict:
        return {"name": self.name, "fn": self._fn, **self._fn_kwargs}


class _FixedFunctionMetric(MeanMetricWrapper):
    """A :class:`MeanMetricWrapper` whose class fixes the function: its config is its name (and
    whatever arguments a subclass adds), not the function."""

    get_config = Metric.get_config


class Accuracy(_FixedFunctionMetric):
    """How often predictions equal the targets exactly (for class labels predicted as labels).

    Example:
        >>> m = ember.metrics.Accuracy()
        >>> m([1, 2, 3, 4], [0, 2, 3, 4])
        0.75
        >>> m.reset_state(); m([1, 2, 3, 4], [0, 2, 3, 4], sample_weight=[1, 1, 0, 0])
        0.5
    """

    def __init__(self, name: str = "accuracy"):
        super().__init__(_per_sample_equal, name=name)


class BinaryAccuracy(MeanMetricWrapper):
    """How often ``y_pred > threshold`` agrees with ``y_true > 0.5`` (multi-label outputs: the
    fraction of right labels per sample).

    Example:
        >>> m = ember.metrics.BinaryAccuracy()
        >>> m([[1], [1], [0], [0]], [[0.98], [1.0], [0.0], [0.6]])
        0.75
        >>> ember.metrics.BinaryAccuracy(threshold=0.7)([[1], [0]], [[0.6], [0.6]])
        0.5
    """

    def __init__(self, threshold: float = 0.5, name: str = "binary_accuracy"):
        threshold = float(threshold)
        if not np.isfinite(threshold):
            raise ValueError(f"{name}: threshold must be a finite number, got {threshold!r}")
        super().__init__(_per_sample_binary, name=name, threshold=threshold)
        self.threshold = threshold

    def get_config(self) -> dict:
        return {"name": self.name, "threshold": self.threshold}


class CategoricalAccuracy(_FixedFunctionMetric):
    """How often the arg-max of ``y_pred`` is the arg-max of the one-hot ``y_true``.

    Example:
        >>> m = ember.metrics.CategoricalAccuracy()
        >>> m([[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.0], [0.05, 0.95, 0.0]])
        0.5
    """

    def __init__(self, name: str = "categorical_accuracy"):
        super().__init__(_per_sample_categorical, name=name)


class SparseCategoricalAccuracy(_FixedFunctionMetric):
    """How often the arg-max of ``y_pred`` equals the integer label ``y_true`` (``(N,)`` or
    ``(N, 1)``; sequences ``(N, T)`` against ``(N, T, C)`` too).

    Example:
        >>> m = ember.metrics.SparseCategoricalAccuracy()
        >>> m([2, 1], [[0.1, 0.6, 0.3], [0.05, 0.95, 0.0]])
        0.5
    """

    def __init__(self, name: str = "sparse_categorical_accuracy"):
        super().__init__(_per_sample_sparse, name=name)


def _check_k(name: str, k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"{name}: k must be a positive integer, got {k!r}")
    return int(k)


def _init_top_k(metric, per_sample, k, name: str) -> None:
    """What both top-k accuracies do at construction: check ``k`` and wrap ``per_sample``."""
    k = _check_k(name, k)
    MeanMetricWrapper.__init__(metric, per_sample, name=name, k=k)
    metric.k = k


def _top_k_config(self) -> dict:
    return {"name": self.name, "k": self.k}


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the one-hot target class is among the ``k`` highest scores (ties at the k-th
    score count as inside).

    Example:
        >>> m = ember.metrics.TopKCategoricalAccuracy(k=1)
        >>> m([[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0.0]])
        0.5
        >>> ember.metrics.TopKCategoricalAccuracy(k=2)([[0, 0, 1]], [[0.1, 0.9, 0.8]])
        1.0
    """

    def __init__(self, k: int = 5, name: str = "top_k_categorical_accuracy"):
        _init_top_k(self, _per_sample_top_k, k, name)

    get_config = _top_k_config


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the integer label is among the ``k`` highest scores; labels outside
    ``[0, classes)`` raise ``ValueError``.

    Example:
        >>> m = ember.metrics.SparseTopKCategoricalAccuracy(k=1)
        >>> m([2, 1], [[0.1, 0.9, 0.8], [0.05, 0.95, 0.0]])
        0.5
    """

    def __init__(self, k: int = 5, name: str = "sparse_top_k_categorical_accuracy"):
        _init_top_k(self, _per_sample_sparse_top_k, k, name)

    get_config = _top_k_config


class MeanSquaredError(_FixedFunctionMetric):
    """Running mean of (y_pred - y_true)² (per sample: the mean over its outputs).

    Example:
        >>> m = ember.metrics.MeanSquaredError()
        >>> m([[0.0, 1.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 0.0]])
        0.5
    """

    def __init__(self, name: str = "mean_squared_error"):
        super().__init__(_per_sample_squared_error, name=name)


class MeanAbsoluteError(_FixedFunctionMetric):
    """Running mean of |y_pred - y_true| (per sample: the mean over its outputs).

    Example:
        >>> m = ember.metrics.MeanAbsoluteError()
        >>> m([[0.0, 1.0], [0.0, 0.0]], [[1.0, 1.0], [-3.0, 0.0]])
        1.0
    """

    def __init__(self, name: str = "mean_absolute_error"):
        super().__init__(_per_sample_absolute_error, name=name)


class RootMeanSquaredError(_FixedFunctionMetric):
    """√ of the running mean squared error (not the mean of per-batch RMSEs).

    Example:
        >>> m = ember.metrics.RootMeanSquaredError()
        >>> m.update_state([0.0, 0.0], [3.0, 3.0]); m.update_state([0.0], [0.0]); m.result()
        2.449...
    """

    def __init__(self, name: str = "root_mean_squared_error"):
        super().__init__(_per_sample_squared_error, name=name)

    def result(self) -> float:
        return float(np.sqrt(super().result()))


def _check_threshold(name: str, threshold) -> float:
    threshold = float(threshold)
    if not np.isfinite(threshold):
        raise ValueError(f"{name}: threshold must be a finite number, got {threshold!r}")
    return threshold


def _binary_decisions(name, y_true, y_pred, threshold, sample_weight):
    """(truth, predicted, weights) flattened, for the count-based binary metrics; ``weights`` is
    None without ``sample_weight``."""
    y_true, y_pred = _arrays(y_true, y_pred)
    if y_true.size != y_pred.size:
        _binary_labels(name, y_true, y_pred, threshold)  # raises the explanatory error
    truth = y_true.reshape(y_pred.shape) > 0.5
    predicted = y_pred > threshold
    weights = None
    if sample_weight is not None:
        weights = _aligned_weights(name, sample_weight, y_pred.shape).reshape(-1)
    return truth.reshape(-1), predicted.reshape(-1), weights


def _weighted_count(mask: np.ndarray, weights) -> float:
    return float(np.count_nonzero(mask)) if weights is None else float(weights[mask].sum())


class _BinaryCounts(Metric):
    """Accumulates (weighted) TP, FP and FN over batches; subclasses turn them into a ratio."""

    def __init__(self, name: str, threshold: float = 0.5):
        self.threshold = _check_threshold(name, threshold)
        super().__init__(name=name)
        self.reset_state()

    def reset_state(self) -> None:
        self.true_positives = self.false_positives = self.false_negatives = 0.0

    def update_state(
        self,
        y_true: ArrayLike | Tensor,
        y_pred: ArrayLike | Tensor,
        sample_weight: ArrayLike | None = None,
    ) -> None:
        truth, predicted, weights = _binary_decisions(
            self.name, y_true, y_pred, self.threshold, sample_weight
        )
        self.true_positives += _weighted_count(truth & predicted, weights)
        self.false_positives += _weighted_count(~truth & predicted, weights)
        self.false_negatives += _weighted_count(truth & ~predicted, weights)

    def get_config(self) -> dict:
        return {"name": self.name, "threshold": self.threshold}


class Precision(_BinaryCounts):
    """Running :func:`precision` over every batch seen: TP / (TP + FP), 0 when nothing was
    predicted positive. Binary (positive: ``y_true > 0.5``, ``y_pred > threshold``).

    Example:
        >>> m = ember.metrics.Precision(threshold=0.3)
        >>> m.update_state([1, 1, 0], [0.9, 0.2, 0.7]); m.result()
        0.5
        >>> m.reset_state(); m([1, 1, 0], [0.9, 0.2, 0.7], sample_weight=[3, 1, 1])
        0.75
    """

    def __init__(self, threshold: float = 0.5, name: str = "precision"):
        super().__init__(name, threshold)

    def result(self) -> float:
        return _ratio(self.true_positives, self.true_positives + self.false_positives)


class Recall(_BinaryCounts):
    """Running :func:`recall` over every batch seen: TP / (TP + FN), 0 when there were no
    positive targets.

    Example:
        >>> m = ember.metrics.Recall()
        >>> m.update_state([1, 1, 0], [0.9, 0.2, 0.7]); m.update_state([1], [0.6]); m.result()
        0.666...
    """

    def __init__(self, threshold: float = 0.5, name: str = "recall"):
        super().__init__(name, threshold)

    def result(self) -> float:
        return _ratio(self.true_positives, self.true_positives + self.false_negatives)


class F1Score(_BinaryCounts):
    """Running binary :func:`f1_score` over every batch seen: 2TP / (2TP + FP + FN).

    Binary only (one output per target, positive above ``threshold``), unlike Keras 3's
    ``F1Score``, which is per class; for several classes use
    ``ember.metrics.f1_score(y_true, y_pred, average="macro")`` on the whole predictions.

    Example:
        >>> m = ember.metrics.F1Score()
        >>> m.update_state([1, 1, 0], [0.9, 0.2, 0.7]); m.result()
        0.5
    """

    def __init__(self, threshold: float = 0.5, name: str = "f1_score"):
        super().__init__(name, threshold)

    def result(self) -> float:
        tp = self.true_positives
        return _ratio(2 * tp, 2 * tp + self.false_positives + self.false_negatives)


class AUC(Metric):
    """Area under the ROC curve, accumulated over batches at ``num_thresholds`` fixed thresholds.

    Binary targets (positive when ``y_true > 0.5``) and probabilities in ``[0, 1]`` (or logits
    with ``from_logits=True``); multi-label outputs are flattened. Each prediction is bucketed
    between consecutive thresholds (``0 - 1e-7``, ``1/(n-1)``, ..., ``1 + 1e-7``), and the ROC
    curve through the bucket boundaries is integrated with the trapezoidal rule, so the memory
    is fixed however many batches are seen. A positive and a negative in the same bucket count
    as a tie (½), as in the exact Mann-Whitney statistic: the result is exact whenever no
    bucket holds both. 0 before both classes have been seen (Keras' convention).

    Example:
        >>> m = ember.metrics.AUC()
        >>> m([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        0.75
    """

    def __init__(self, num_thresholds: int = 200, from_logits: bool = False, name: str = "auc"):
        integral = isinstance(num_thresholds, (int, np.integer)) and not isinstance(
            num_thresholds, bool
        )
        if not integral or num_thresholds < 2:
            raise ValueError(
                f"{name}: num_thresholds must be an integer > 1, got {num_thresholds!r}"
            )
        self.num_thresholds = int(num_thresholds)
        self.from_logits = bool(from_logits)
        inner = np.arange(1, self.num_thresholds - 1) / (self.num_thresholds - 1)
        self.thresholds = np.concatenate(([-1e-7], inner, [1 + 1e-7]))
        super().__init__(name=name)
        self.reset_state()

    def reset_state(self) -> None:
        self.true_positives = np.zeros(self.num_thresholds)
        self.false_positives = np.zeros(self.num_thresholds)
        self.positives = self.negatives = 0.0

    def update_state(
        self,
        y_true: ArrayLike | Tensor,
        y_pred: ArrayLike | Tensor,
        sample_weight: ArrayLike | None = None,
    ) -> None:
        y_true, y_pred = _arrays(y_true, y_pred)
        scores = y_pred.astype(np.float64)
        if self.from_logits:
            scores = stable_sigmoid(scores)
        elif scores.size and not (scores.min() >= 0 and scores.max() <= 1):
            raise ValueError(
                f"{self.name}: expected probabilities in [0, 1]; got min {scores.min():g}, max "
                f"{scores.max():g}. Add a sigmoid to the last layer or use from_logits=True"
            )
        truth, _, weights = _binary_decisions(self.name, y_true, y_pred, 0.5, sample_weight)
        weights = np.ones(truth.shape) if weights is None else weights
        # bucket m holds the scores above exactly m thresholds: positive at thresholds j < m
        bucket = np.searchsorted(self.thresholds, scores.reshape(-1), side="left")
        size = self.num_thresholds + 1
        pos = np.bincount(bucket, weights=weights * truth, minlength=size)
        neg = np.bincount(bucket, weights=weights * ~truth, minlength=size)
        self.true_positives += np.cumsum(pos[::-1])[::-1][1:]
        self.false_positives += np.cumsum(neg[::-1])[::-1][1:]
        self.positives += float(pos.sum())
        self.negatives += float(neg.sum())

    def result(self) -> float:
        if not (self.positives > 0 and self.negatives > 0):
            return 0.0
        tpr = self.true_positives / self.positives
        fpr = self.false_positives / self.negatives
        return float(np.sum((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:])) / 2)

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "num_thresholds": self.num_thresholds,
            "from_logits": self.from_logits,
        }


def clone(metric: Metric) -> Metric:
    """A fresh, reset metric of the same class and configuration (rebuilt from
    ``get_config()``): the way to give each model output its own copy of a metric object.

    Example:
        >>> m = ember.metrics.BinaryAccuracy(threshold=0.7, name="acc70")
        >>> m.update_state([1], [0.9])
        >>> copy = ember.metrics.clone(m)
        >>> copy, copy.result()
        (BinaryAccuracy(name='acc70', threshold=0.7), nan)
    """
    if not isinstance(metric, Metric):
        raise TypeError(f"clone: expected an ember.metrics.Metric, got {metric!r}")
    config = metric.get_config()
    try:
        fresh = type(metric).from_config(config)
    except TypeError as error:
        raise TypeError(
            f"clone: cannot rebuild {type(metric).__name__} from its get_config() {config}: "
            f"{error}. A metric whose __init__ takes arguments must return them from get_config()"
        ) from error
    fresh.reset_state()
    return fresh


_PER_SAMPLE_ACCURACY = {
    "binary_accuracy": _per_sample_binary,
    "categorical_accuracy": _per_sample_categorical,
    "sparse_categorical_accuracy": _per_sample_sparse,
}
_ACCURACY_CLASSES = {
    "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
}
# Names that build a metric object of this class (with the name as given).
_METRIC_CLASSES = {
    **_ACCURACY_CLASSES,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "rmse": RootMeanSquaredError,
    "root_mean_squared_error": RootMeanSquaredError,
    "precision": Precision,
    "recall": Recall,
    "f1_score": F1Score,
    "f1": F1Score,
    "auc": AUC,
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


def _misses(hit):
    def zero_one_loss(y_true, y_pred):
        return 1.0 - hit(y_true, y_pred)

    return zero_one_loss


def get(identifier, loss=None, y_true_shape: tuple = (), y_pred_shape: tuple = ()) -> Metric:
    """The metric object for an entry of ``compile(metrics=[...])``.

    * a name: a FRESH object every call (``"mse"`` → :class:`MeanSquaredError` named ``"mse"``);
      ``"accuracy"``/``"acc"`` is resolved by the loss and the shapes (see
      :func:`resolve_accuracy`);
    * a :class:`Metric` object: that object itself (use :func:`clone` for a copy);
    * a :class:`Metric` subclass: a new instance with its defaults;
    * a function ``fn(y_true, y_pred)``: a :class:`MeanMetricWrapper` named after it.

    Example:
        >>> acc = ember.metrics.get("accuracy", loss=ember.losses.SparseCategoricalCrossentropy())
        >>> acc.update_state([1, 0], [[0.2, 0.8], [0.4, 0.6]]); acc.result()
        0.5
        >>> acc
        SparseCategoricalAccuracy(name='accuracy')
        >>> ember.metrics.get("rmse")
        RootMeanSquaredError(name='rmse')
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if isinstance(identifier, str):
        name = identifier.lower().replace("-", "_")
        if name in _RESOLVED:
            kind = resolve_accuracy(loss, y_true_shape, y_pred_shape)
            if name == "zero_one_loss":
                return MeanMetricWrapper(_misses(_PER_SAMPLE_ACCURACY[kind]), name=name)
            return _ACCURACY_CLASSES[kind](name=name)
        return lookup("metric", name, {**_METRIC_CLASSES, **_RESOLVED})(name=name)
    if callable(identifier):
        return MeanMetricWrapper(identifier)
    raise TypeError(
        f"metric must be a name, a Metric object or a function fn(y_true, y_pred); got "
        f"{identifier!r}"
    )


def validate_names(identifiers) -> list:
    """Fail early (at compile time) on an unknown metric name or a value that is no metric."""
    valid = {**_METRIC_CLASSES, **_RESOLVED}
    for identifier in identifiers:
        if isinstance(identifier, str):
            lookup("metric", identifier.lower(), valid)
        elif not (callable(identifier) or isinstance(identifier, Metric)):
            raise TypeError(
                f"metric must be a name, a Metric object or a function fn(y_true, y_pred); got "
                f"{identifier!r}"
            )
    return list(identifiers)
