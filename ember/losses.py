"""Loss functions, called Keras-style as ``loss(y_true, y_pred)`` and returning a scalar Tensor.

Each loss averages over the batch (Keras' ``"sum_over_batch_size"``); ``sample_weight`` scales each
sample's loss before averaging. Cross-entropies are computed stably:

* ``from_logits=True`` uses fused log-sum-exp forms whose gradient is exactly ``ŷ - y``;
* with probabilities that come straight from a ``softmax``/``sigmoid`` op, the loss reaches back
  to the logits and uses the same fused form (as Keras does);
* other probabilities are clipped to ``[1e-7, 1 - 1e-7]`` (Keras' convention), so ``p = 0`` for
  the true class gives the finite loss ``-log(1e-7) ≈ 16.12``. Probabilities outside ``[0, 1]`` are
  an error, not silently clipped: they usually mean a missing activation.

Inputs are checked in one vectorized pass: binary cross-entropy targets outside ``[0, 1]`` and
class labels outside ``[0, classes)`` raise ``ValueError`` naming the first offender, and a call
in PyTorch's order ``loss(prediction, target)`` raises ``TypeError``. A batch of zero rows gives
the loss 0 (with a zero-sized gradient).

Example:
    >>> loss = ember.losses.SparseCategoricalCrossentropy(from_logits=True)
    >>> loss([0, 2], ember.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 3.0]]))
    tensor(0.1323...)
"""

from __future__ import annotations

import numpy as np

from ember import _registry, ops
from ember._registry import lookup
from ember.ops import as_tensor
from ember.ops.nn import check_binary_targets, check_class_labels
from ember.tensor import Tensor

EPSILON = 1e-7


class Loss:
    """Base class: subclasses implement ``per_sample(y_true, y_pred) -> Tensor`` (one value per
    sample).

    Example:
        >>> class AbsCube(ember.losses.Loss):
        ...     name = "abs_cube"
        ...
        ...     def per_sample(self, y_true, y_pred):
        ...         return ember.ops.mean(abs(y_pred - y_true) ** 3, axis=-1)
        >>> loss = AbsCube()
        >>> loss([[0.0], [1.0]], ember.tensor([[2.0], [1.0]]))
        tensor(4.)
        >>> loss([[0.0], [1.0]], ember.tensor([[2.0], [1.0]]), sample_weight=[0.5, 1.0])
        tensor(2.)
    """

    name = "loss"

    def __call__(self, y_true, y_pred, sample_weight=None) -> Tensor:
        y_pred = as_tensor(y_pred) if not isinstance(y_pred, Tensor) else y_pred
        per_sample = self.per_sample_losses(y_true, y_pred)
        mask = y_pred._keras_mask
        if mask is not None:
            return _masked_mean(self.name, per_sample, mask, sample_weight)
        if sample_weight is not None:
            weights = np.asarray(sample_weight, dtype=per_sample.dtype).reshape(-1)
            if weights.shape[0] != per_sample.shape[0]:
                raise ValueError(
                    f"{self.name}: sample_weight has {weights.shape[0]} entries for "
                    f"{per_sample.shape[0]} samples"
                )
            # (N,) weights against (N, T) losses (sequence outputs) scale whole samples, as in
            # Keras: align them on the batch axis instead of broadcasting against the last one.
            weights = weights.reshape(weights.shape + (1,) * (per_sample.ndim - 1))
            per_sample = per_sample * weights
        return ops.mean(per_sample) if per_sample.size else ops.sum(per_sample)

    def per_sample_losses(self, y_true, y_pred) -> Tensor:
        """The unreduced losses, one per sample (and step), after the same checks as a call:
        what Keras' function forms (``keras.losses.mean_squared_error``) return."""
        self._check_argument_order(y_true, y_pred)
        y_pred = as_tensor(y_pred)
        if y_pred.dtype.kind != "f":
            y_pred = ops.cast(y_pred, np.float32)
        y_true = y_true.data if isinstance(y_true, Tensor) else np.asarray(y_true)
        if y_pred.ndim == 0:
            raise ValueError(f"{self.name}: y_pred must have a batch axis; got a scalar")
        if y_true.shape[:1] != y_pred.shape[:1]:
            raise ValueError(
                f"{self.name}: y_true has {y_true.shape[0] if y_true.ndim else 0} samples "
                f"(shape {y_true.shape}) but y_pred has {y_pred.shape[0]} (shape {y_pred.shape})"
            )
        return self.per_sample(y_true, y_pred)

    def per_sample(self, y_true: np.ndarray, y_pred: Tensor) -> Tensor:
        raise NotImplementedError

    def _check_argument_order(self, y_true, y_pred) -> None:
        """A target that requires grad next to a prediction that does not is a model output
        passed first, PyTorch's ``loss(input, target)`` habit. A flag test, no pass over data."""
        if (
            isinstance(y_true, Tensor)
            and y_true.requires_grad
            and not (isinstance(y_pred, Tensor) and y_pred.requires_grad)
        ):
            raise _pytorch_order_error(self.name, "y_true requires grad and y_pred does not")

    def get_config(self) -> dict:
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config()})"


def _masked_mean(name: str, losses: Tensor, mask: Tensor, sample_weight) -> Tensor:
    """The mean over the steps the mask keeps (Keras 3): padded steps add nothing to the loss
    nor to the count. ``sample_weight`` ``(N,)`` scales whole samples, ``(N, T)`` single steps."""
    keep = np.asarray(mask.data, dtype=losses.dtype)
    if keep.shape != losses.shape:
        raise ValueError(
            f"{name}: the prediction carries a mask of shape {keep.shape} (from a masking "
            f"layer such as Embedding(mask_zero=True)) but the loss has one value per "
            f"{losses.shape}; a masked loss needs one value per step. Return the sequence "
            "(return_sequences=True) or drop the mask before the output"
        )
    weights = keep
    if sample_weight is not None:
        given = np.asarray(sample_weight, dtype=losses.dtype)
        given = given.reshape(given.shape + (1,) * (keep.ndim - given.ndim))
        weights = keep * given
    kept = keep.sum()
    total = ops.sum(losses * weights)
    return total / kept if kept else total  # every step masked: zero, not 0/0


def _pytorch_order_error(name: str, evidence: str) -> TypeError:
    return TypeError(
        f"{name}: the loss received its arguments in PyTorch's order, loss(prediction, target) "
        f"({evidence}). Ember's losses take (y_true, y_pred), as Keras' do: call "
        f"{name}(targets, predictions)"
    )


def _float_targets(name: str, y_true: np.ndarray, y_pred: Tensor) -> np.ndarray:
    """Targets as floats of the prediction's shape; ``(N,)`` against ``(N, 1)`` is reshaped
    deliberately, never broadcast to an ``N × N`` matrix."""
    if y_true.dtype.kind not in "biuf":
        raise TypeError(f"{name}: y_true must be numeric, got dtype {y_true.dtype}")
    if y_true.shape != y_pred.shape:
        if y_true.size == y_pred.size and y_true.shape[0] == y_pred.shape[0]:
            y_true = y_true.reshape(y_pred.shape)
        else:
            raise ValueError(
                f"{name}: y_true shape {y_true.shape} does not match y_pred shape {y_pred.shape}"
            )
    return y_true.astype(y_pred.dtype, copy=False)


def _check_probabilities(name: str, p: np.ndarray) -> None:
    if not p.size:
        return  # a zero-row batch (catalogue B6)
    low, high = float(np.min(p)), float(np.max(p))
    if not (low >= 0.0 and high <= 1.0):  # also catches NaN
        raise ValueError(
            f"{name}: expected probabilities in [0, 1]; got min {low:g}, max {high:g}. Did you "
            "forget a sigmoid/softmax on the last layer, or mean from_logits=True?"
        )


def _mean_last_axis(t: Tensor) -> Tensor:
    return ops.mean(t, axis=-1) if t.ndim > 1 else t


def _logits_of(y_pred: Tensor, kind: str):
    info = y_pred._producer
    if info is None or info[0] != kind:
        return None
    logits, axis = info[1], info[2]
    if axis not in (-1, y_pred.ndim - 1):
        return None
    return logits


class MeanSquaredError(Loss):
    """Mean over the last axis of (y_pred - y_true)², averaged over the batch.

    Example:
        >>> ember.losses.MeanSquaredError()([[1.0], [2.0]], ember.tensor([[1.5], [2.0]]))
        tensor(0.125)
    """

    name = "mean_squared_error"

    def per_sample(self, y_true, y_pred):
        diff = y_pred - _float_targets(self.name, y_true, y_pred)
        return _mean_last_axis(diff * diff)


class BinaryCrossentropy(Loss):
    """-(y log p + (1 - y) log(1 - p)), mean over the last axis.

    Args:
        from_logits: ``y_pred`` holds logits z (p = sigmoid(z)); computed as
            ``max(z, 0) - z y + log(1 + e^-|z|)``, exact and stable.

    Example:
        >>> bce = ember.losses.BinaryCrossentropy(from_logits=True)
        >>> bce([[1.0], [0.0]], ember.tensor([[3.0], [-3.0]]))
        tensor(0.0485...)
    """

    name = "binary_crossentropy"

    def __init__(self, from_logits: bool = False):
        self.from_logits = bool(from_logits)

    def per_sample(self, y_true, y_pred):
        targets = _float_targets(self.name, y_true, y_pred)
        logits = y_pred if self.from_logits else _logits_of(y_pred, "sigmoid")
        if logits is not None:  # the fused op checks the targets, naming this loss
            return _mean_last_axis(
                ops.sigmoid_binary_cross_entropy(logits, targets, name=self.name)
            )
        check_binary_targets(self.name, targets)
        _check_probabilities(self.name, y_pred.data)
        p = ops.clip(y_pred, EPSILON, 1 - EPSILON)
        return _mean_last_axis(-(targets * ops.log(p) + (1 - targets) * ops.log(1 - p)))

    def get_config(self):
        return {"from_logits": self.from_logits}


class CategoricalCrossentropy(Loss):
    """-Σ y log p over the class axis, for one-hot (or soft) targets ``y``.

    Probabilities that do not sum to 1 are normalised per row first (Keras' rule).
    Use :class:`SparseCategoricalCrossentropy` for integer labels.

    Example:
        >>> cce = ember.losses.CategoricalCrossentropy(from_logits=True)
        >>> cce([[0.0, 1.0]], ember.tensor([[0.0, 2.0]]))
        tensor(0.126...)
    """

    name = "categorical_crossentropy"

    def __init__(self, from_logits: bool = False):
        self.from_logits = bool(from_logits)

    def per_sample(self, y_true, y_pred):
        if y_true.shape != y_pred.shape:
            raise ValueError(
                f"{self.name}: expected one-hot targets of shape {y_pred.shape} (like y_pred), got "
                f"shape {y_true.shape}. For integer class labels use "
                "'sparse_categorical_crossentropy' (or one-hot encode with to_categorical)"
            )
        targets = _float_targets(self.name, y_true, y_pred)
        logits = y_pred if self.from_logits else _logits_of(y_pred, "softmax")
        if logits is not None:
            return ops.softmax_cross_entropy(logits, targets)
        _check_probabilities(self.name, y_pred.data)
        p = y_pred / ops.sum(y_pred, axis=-1, keepdims=True)
        p = ops.clip(p, EPSILON, 1 - EPSILON)
        return -ops.sum(targets * ops.log(p), axis=-1)

    def get_config(self):
        return {"from_logits": self.from_logits}


def _check_label_order(name: str, y_true, y_pred) -> None:
    """Sparse losses: float ``(N, C)`` scores as y_true and integer ``(N,)`` labels as y_pred are
    the PyTorch order ``cross_entropy(logits, labels)``. Looks at dtypes and shapes only."""
    y_true = y_true.data if isinstance(y_true, Tensor) else np.asarray(y_true)
    y_pred = y_pred.data if isinstance(y_pred, Tensor) else np.asarray(y_pred)
    floats_then_ints = y_true.dtype.kind == "f" and y_pred.dtype.kind in "iu"
    if floats_then_ints and y_true.ndim == 2 and y_pred.ndim == 1:
        raise _pytorch_order_error(
            name,
            f"y_true holds float scores of shape {y_true.shape} and y_pred integer labels of "
            f"shape {y_pred.shape}",
        )


class SparseCategoricalCrossentropy(Loss):
    """-log p[label] for integer class labels ``y_true`` of shape ``(N,)`` or ``(N, 1)``.

    Labels are checked: out of range (including -1, which NumPy would silently read as the last
    class) or non-integral labels raise ``ValueError`` naming the first offender.

    Example:
        >>> scce = ember.losses.SparseCategoricalCrossentropy(from_logits=True)
        >>> scce([1], ember.tensor([[0.0, 2.0]]))
        tensor(0.126...)
    """

    name = "sparse_categorical_crossentropy"

    def __init__(self, from_logits: bool = False):
        self.from_logits = bool(from_logits)

    def _check_argument_order(self, y_true, y_pred) -> None:
        super()._check_argument_order(y_true, y_pred)
        _check_label_order(self.name, y_true, y_pred)

    def per_sample(self, y_true, y_pred):
        if y_pred.ndim < 2:
            raise ValueError(f"{self.name}: y_pred must be (batch, classes), got {y_pred.shape}")
        # Sequences (batch, time, classes) are rows too: one loss per (sample, step).
        *leading, classes = y_pred.shape
        leading = tuple(leading)
        if y_true.shape not in (leading, leading + (1,)):
            expected = leading if len(leading) > 1 else f"({leading[0]},)"
            raise ValueError(
                f"{self.name}: expected integer labels of shape {expected}, got shape "
                f"{y_true.shape}. For one-hot targets use 'categorical_crossentropy'"
            )
        labels = y_true.reshape(-1)
        logits = y_pred if self.from_logits else _logits_of(y_pred, "softmax")
        if logits is not None:  # the fused op checks the labels, naming this loss
            if logits.ndim > 2:
                logits = ops.reshape(logits, (-1, classes))
            losses = ops.sparse_softmax_cross_entropy(logits, labels, name=self.name)
        else:
            labels = check_class_labels(self.name, labels, classes)
            _check_probabilities(self.name, y_pred.data)
            p = y_pred / ops.sum(y_pred, axis=-1, keepdims=True)
            if p.ndim > 2:
                p = ops.reshape(p, (-1, classes))
            picked = ops.getitem(p, (np.arange(labels.shape[0]), labels))
            losses = -ops.log(ops.clip(picked, EPSILON, 1 - EPSILON))
        return losses if y_pred.ndim == 2 else ops.reshape(losses, leading)

    def get_config(self):
        return {"from_logits": self.from_logits}


class HalfMeanSquaredError(Loss):
    """½ · mean over the last axis of (y_pred - y_true)²: the course's backprop form, whose
    gradient is simply ``(ŷ - y) / (N · D)``.

    Example:
        >>> ember.losses.HalfMeanSquaredError()([[1.0], [2.0]], ember.tensor([[1.5], [2.0]]))
        tensor(0.0625)
    """

    name = "half_mse"

    def per_sample(self, y_true, y_pred):
        diff = y_pred - _float_targets(self.name, y_true, y_pred)
        return 0.5 * _mean_last_axis(diff * diff)


class RootMeanSquaredError(Loss):
    """√(mean squared error): the (sample-weighted) batch MSE, then the square root.

    The square root is not differentiable at 0 (its slope is infinite, and ``0 · ∞`` would give
    NaN): a perfect fit returns 0 with the zero subgradient instead.

    Example:
        >>> ember.losses.RootMeanSquaredError()([[0.0], [0.0]], ember.tensor([[3.0], [-3.0]]))
        tensor(3.)
    """

    name = "root_mean_squared_error"

    def __call__(self, y_true, y_pred, sample_weight=None) -> Tensor:
        mse = super().__call__(y_true, y_pred, sample_weight)
        positive = mse.data > 0
        return ops.where(positive, ops.sqrt(ops.where(positive, mse, 1.0)), 0.0)

    def per_sample(self, y_true, y_pred):
        diff = y_pred - _float_targets(self.name, y_true, y_pred)
        return _mean_last_axis(diff * diff)


class MeanAbsoluteError(Loss):
    """Mean over the last axis of |y_pred - y_true| (the gradient at exactly 0 is 0).

    Example:
        >>> ember.losses.MeanAbsoluteError()([[1.0], [2.0]], ember.tensor([[1.5], [1.0]]))
        tensor(0.75)
    """

    name = "mean_absolute_error"

    def per_sample(self, y_true, y_pred):
        return _mean_last_axis(ops.abs(y_pred - _float_targets(self.name, y_true, y_pred)))


class Huber(Loss):
    """Huber loss: ½x² for |x| ≤ δ, else δ(|x| - ½δ), with x = y_pred - y_true; mean over the
    last axis. Computed as ``½q² + δ(|x| - q)`` with ``q = min(|x|, δ)``: no overflow at ±1000.

    Args:
        delta: where the quadratic turns linear (> 0; Keras and PyTorch default 1.0).

    Example:
        >>> ember.losses.Huber(delta=1.0)([[0.0], [0.0]], ember.tensor([[0.5], [3.0]]))
        tensor(1.3125)
    """

    name = "huber"

    def __init__(self, delta: float = 1.0):
        delta = float(delta)
        if not (delta > 0 and np.isfinite(delta)):
            raise ValueError(f"huber: delta must be a positive number, got {delta!r}")
        self.delta = delta

    def per_sample(self, y_true, y_pred):
        err = ops.abs(y_pred - _float_targets(self.name, y_true, y_pred))
        quad = ops.minimum(err, self.delta)
        return _mean_last_axis(0.5 * quad * quad + self.delta * (err - quad))

    def get_config(self):
        return {"delta": self.delta}


class NegativeLogLikelihood(Loss):
    """-log p[label] for log-probabilities ``y_pred`` (e.g. from ``log_softmax``) of shape
    ``(N, C)`` and integer labels ``(N,)`` — PyTorch's ``NLLLoss``. Labels are checked like
    :class:`SparseCategoricalCrossentropy`'s.

    Example:
        >>> logp = ember.ops.log_softmax(ember.tensor([[0.0, 2.0]]))
        >>> ember.losses.NegativeLogLikelihood()([1], logp)
        tensor(0.126...)
    """

    name = "negative_log_likelihood"

    def _check_argument_order(self, y_true, y_pred) -> None:
        super()._check_argument_order(y_true, y_pred)
        _check_label_order(self.name, y_true, y_pred)

    def per_sample(self, y_true, y_pred):
        if y_pred.ndim != 2:
            raise ValueError(f"{self.name}: y_pred must be (batch, classes), got {y_pred.shape}")
        n, classes = y_pred.shape
        if y_true.shape not in ((n,), (n, 1)):
            raise ValueError(
                f"{self.name}: expected integer labels of shape ({n},), got shape {y_true.shape}"
            )
        labels = check_class_labels(self.name, y_true, classes)
        return -ops.getitem(y_pred, (np.arange(n), labels))


class Hinge(Loss):
    """mean(max(1 - y·ŷ, 0)) over the last axis, for labels in {-1, 1}; labels in {0, 1} are
    converted to {-1, 1} first (Keras' rule).

    Example:
        >>> ember.losses.Hinge()([[1.0], [0.0]], ember.tensor([[0.3], [0.5]]))
        tensor(1.1)
    """

    name = "hinge"

    def per_sample(self, y_true, y_pred):
        targets = _float_targets(self.name, y_true, y_pred)
        if targets.size and np.all((targets == 0) | (targets == 1)):
            targets = 2 * targets - 1
        return _mean_last_axis(ops.relu(1 - targets * y_pred))


class KLDivergence(Loss):
    """Σ y · log(y / ŷ) over the last axis, for probability distributions ``y_true`` and
    ``y_pred``; both are clipped to ``[1e-7, 1]`` first (Keras' convention), so zeros give finite
    values. PyTorch's ``KLDivLoss(reduction="batchmean")`` takes ``log ŷ`` instead of ``ŷ``.

    Example:
        >>> ember.losses.KLDivergence()([[0.5, 0.5]], ember.tensor([[0.25, 0.75]]))
        tensor(0.143...)
    """

    name = "kl_divergence"

    def per_sample(self, y_true, y_pred):
        targets = np.clip(_float_targets(self.name, y_true, y_pred), EPSILON, 1)
        p = ops.clip(y_pred, EPSILON, 1)
        return ops.sum(targets * (np.log(targets) - ops.log(p)), axis=-1)


_LOSSES = {
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "binary_crossentropy": BinaryCrossentropy,
    "bce": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "half_mse": HalfMeanSquaredError,
    "half_mean_squared_error": HalfMeanSquaredError,
    "root_mean_squared_error": RootMeanSquaredError,
    "rmse": RootMeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "huber": Huber,
    "nll": NegativeLogLikelihood,
    "negative_log_likelihood": NegativeLogLikelihood,
    "hinge": Hinge,
    "kl_divergence": KLDivergence,
    "kld": KLDivergence,
    "kullback_leibler_divergence": KLDivergence,
}


def get(identifier) -> Loss:
    """Resolve a name (``"mse"``), a :class:`Loss` instance or a ``fn(y_true, y_pred)``.

    Example:
        >>> ember.losses.get("mse")
        MeanSquaredError({})
        >>> ember.losses.get(ember.losses.Huber(delta=2.0))
        Huber({'delta': 2.0})
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        return lookup("loss", identifier, _LOSSES)()
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier):
        return _FunctionLoss(identifier)
    raise TypeError(f"loss must be a name, a Loss or a callable; got {identifier!r}")


def serialize(loss: Loss) -> dict:
    """The ``{'name': ..., 'config': ...}`` spec of a built-in loss.

    Example:
        >>> ember.losses.serialize(ember.losses.Huber(delta=2.0))
        {'name': 'huber', 'config': {'delta': 2.0}}
    """
    return _registry.serialize("loss", loss, _LOSSES)


def deserialize(spec: dict) -> Loss:
    """Rebuild a loss from the spec made by :func:`serialize`.

    Example:
        >>> ember.losses.deserialize({"name": "huber", "config": {"delta": 2.0}})
        Huber({'delta': 2.0})
    """
    return _registry.deserialize("loss", spec, _LOSSES)


class _FunctionLoss(Loss):
    def __init__(self, fn):
        self.fn = fn
        self.name = getattr(fn, "__name__", "loss")

    def __call__(self, y_true, y_pred, sample_weight=None):
        out = self.fn(y_true, as_tensor(y_pred))
        if sample_weight is not None or out.ndim != 0:
            weights = 1 if sample_weight is None else np.asarray(sample_weight, np.float32)
            out = ops.mean(out * weights)
        return out


# Keras' function forms: ember.losses.mse(y_true, y_pred) returns one loss per sample (the mean
# over the last axis), as keras.losses.mean_squared_error does; reduce it (.mean()) before
# backward(). Ember's own half_mean_squared_error, root_mean_squared_error and
# negative_log_likelihood return the batch mean, as PyTorch's functional losses.
def mean_squared_error(y_true, y_pred) -> Tensor:
    """Function form of :class:`MeanSquaredError` (alias ``mse``).

    Example:
        >>> ember.losses.mse([[1.0], [2.0]], ember.tensor([[1.5], [2.0]]))  # one per sample
        tensor([0.25, 0.  ])
    """
    return MeanSquaredError().per_sample_losses(y_true, y_pred)


mse = mean_squared_error


def binary_crossentropy(y_true, y_pred, from_logits: bool = False) -> Tensor:
    """Function form of :class:`BinaryCrossentropy`.

    Example:
        >>> ember.losses.binary_crossentropy([[1.0], [0.0]], ember.tensor([[0.9], [0.2]]))
        tensor([0.10536055, 0.22314353])
    """
    return BinaryCrossentropy(from_logits).per_sample_losses(y_true, y_pred)


def categorical_crossentropy(y_true, y_pred, from_logits: bool = False) -> Tensor:
    """Function form of :class:`CategoricalCrossentropy`.

    Example:
        >>> ember.losses.categorical_crossentropy([[0.0, 1.0]], ember.tensor([[0.25, 0.75]]))
        tensor([0.2876821])
    """
    return CategoricalCrossentropy(from_logits).per_sample_losses(y_true, y_pred)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits: bool = False) -> Tensor:
    """Function form of :class:`SparseCategoricalCrossentropy`.

    Example:
        >>> logits = ember.tensor([[0.0, 2.0]])
        >>> ember.losses.sparse_categorical_crossentropy([1], logits, from_logits=True)
        tensor([0.12692805])
    """
    return SparseCategoricalCrossentropy(from_logits).per_sample_losses(y_true, y_pred)


def half_mean_squared_error(y_true, y_pred) -> Tensor:
    """Function form of :class:`HalfMeanSquaredError`.

    Example:
        >>> ember.losses.half_mean_squared_error([[1.0], [2.0]], ember.tensor([[1.5], [2.0]]))
        tensor(0.0625)
    """
    return HalfMeanSquaredError()(y_true, y_pred)


def root_mean_squared_error(y_true, y_pred) -> Tensor:
    """Function form of :class:`RootMeanSquaredError`.

    Example:
        >>> ember.losses.root_mean_squared_error([[0.0], [0.0]], ember.tensor([[3.0], [4.0]]))
        tensor(3.535534)
    """
    return RootMeanSquaredError()(y_true, y_pred)


def mean_absolute_error(y_true, y_pred) -> Tensor:
    """Function form of :class:`MeanAbsoluteError` (alias ``mae``).

    Example:
        >>> ember.losses.mae([[1.0], [2.0]], ember.tensor([[1.5], [1.0]]))
        tensor([0.5, 1. ])
    """
    return MeanAbsoluteError().per_sample_losses(y_true, y_pred)


mae = mean_absolute_error


def huber(y_true, y_pred, delta: float = 1.0) -> Tensor:
    """Function form of :class:`Huber`.

    Example:
        >>> ember.losses.huber([[0.0], [0.0]], ember.tensor([[0.5], [3.0]]), delta=2.0)
        tensor([0.125, 4.   ])
    """
    return Huber(delta).per_sample_losses(y_true, y_pred)


def negative_log_likelihood(y_true, y_pred) -> Tensor:
    """Function form of :class:`NegativeLogLikelihood` (alias ``nll``).

    Example:
        >>> ember.losses.nll([1], ember.ops.log_softmax(ember.tensor([[0.0, 2.0]])))
        tensor(0.12692805)
    """
    return NegativeLogLikelihood()(y_true, y_pred)


nll = negative_log_likelihood


def hinge(y_true, y_pred) -> Tensor:
    """Function form of :class:`Hinge`.

    Example:
        >>> ember.losses.hinge([[1.0], [0.0]], ember.tensor([[0.3], [0.5]]))
        tensor([0.7, 1.5])
    """
    return Hinge().per_sample_losses(y_true, y_pred)


def kl_divergence(y_true, y_pred) -> Tensor:
    """Function form of :class:`KLDivergence` (alias ``kld``).

    Example:
        >>> ember.losses.kld([[0.5, 0.5]], ember.tensor([[0.25, 0.75]]))
        tensor([0.14384104])
    """
    return KLDivergence().per_sample_losses(y_true, y_pred)


kld = kl_divergence
