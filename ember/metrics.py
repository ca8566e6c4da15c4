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
    """Fraction of predictions on the right side of ``threshold``."""
    return float(np.mean(_per_sample_binary(y_true, y_pred, threshold)))


def categorical_accuracy(y_true, y_pred) -> float:
    """Fraction of rows whose arg-max matches the one-hot target's."""
    return float(np.mean(_per_sample_categorical(y_true, y_pred)))


def sparse_categorical_accuracy(y_true, y_pred) -> float:
    """Fraction of rows whose arg-max equals the integer label."""
    return float(np.mean(_per_sample_sparse(y_true, y_pred)))


class Metric:
    """A running, sample-weighted mean of a per-sample metric (``update_state``/``result``)."""

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


_METRICS = {
    "binary_accuracy": _per_sample_binary,
    "categorical_accuracy": _per_sample_categorical,
    "sparse_categorical_accuracy": _per_sample_sparse,
}
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
    """A fresh :class:`Metric` for a name; ``"accuracy"``/``"acc"`` is resolved by the loss."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        name = identifier.lower()
        if name in ("accuracy", "acc"):
            fn = _METRICS[resolve_accuracy(loss, y_true_shape, y_pred_shape)]
            return Metric(name, fn)
        return Metric(name, lookup("metric", name, {**_METRICS, "accuracy": None}))
    if callable(identifier):
        name = getattr(identifier, "__name__", "metric")
        return Metric(name, lambda yt, yp: np.atleast_1d(identifier(*_arrays(yt, yp))))
    raise TypeError(f"metric must be a name or a callable, got {identifier!r}")


def validate_names(identifiers) -> list:
    """Fail early (at compile time) on an unknown metric name."""
    valid = {**_METRICS, "accuracy": None, "acc": None}
    for identifier in identifiers:
        if isinstance(identifier, str):
            lookup("metric", identifier.lower(), valid)
        elif not (callable(identifier) or isinstance(identifier, Metric)):
            raise TypeError(f"metric must be a name or a callable, got {identifier!r}")
    return list(identifiers)
