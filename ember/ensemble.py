"""Ensembles of networks trained from different seeds.

Backpropagation only finds a local minimum, and which one depends on the initial weights and the
order of the mini-batches. Training several members from different seeds and averaging their
predictions (or keeping the member that does best on validation data) is the classic remedy.

Each member ``i`` is built and trained right after ``ember.manual_seed(seeds[i])``, so its initial
weights, dropout masks and shuffling all come from its own seed and the ensemble is reproducible.

Example:
    >>> import ember
    >>> from ember.datasets import synthetic
    >>> x, y = synthetic.spirals(n_samples=300, seed=0)
    >>> def build():
    ...     return ember.models.Sequential([
    ...         ember.layers.Input(shape=(2,)),
    ...         ember.layers.Dense(16, activation="tanh"),
    ...         ember.layers.Dense(2, activation="softmax"),
    ...     ])
    >>> ens = ember.ensemble.train_ensemble(
    ...     build, x, y, n_members=5,
    ...     compile_kwargs={"optimizer": "adam", "loss": "sparse_categorical_crossentropy",
    ...                     "metrics": ["accuracy"]},
    ...     fit_kwargs={"epochs": 20, "verbose": 0})
    >>> probabilities = ens.predict(x)              # mean of the members' outputs
    >>> labels = ens.predict(x, method="vote")      # majority vote of the members' classes
    >>> ens.evaluate(x, y)
    {'loss': ..., 'accuracy': ...}
    >>> best = ens.best(x, y, monitor="accuracy")   # the single best member (a Model)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ember import losses as ember_losses
from ember import metrics as metrics_module
from ember.callbacks import History
from ember.tensor import Tensor, manual_seed, no_grad

__all__ = ["Ensemble", "train_ensemble"]

_MAX_WORDS = ("acc", "auc", "precision", "recall", "f1")


class Ensemble:
    """A list of trained models whose predictions are combined.

    Args:
        members: compiled ``ember.models.Model`` objects with outputs of the same shape.
        seeds: the seed each member was trained from (for the record), or ``None``.
        histories: each member's ``History`` from ``fit``, or ``None``.

    Example:
        >>> def build():
        ...     model = ember.models.Sequential([ember.layers.Dense(3, activation="softmax")])
        ...     model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        ...     return model
        >>> model_a, model_b = build(), build()
        >>> x = np.random.rand(8, 4).astype("float32")
        >>> ens = ember.ensemble.Ensemble([model_a, model_b])
        >>> p = ens.predict(x)              # (model_a.predict(x) + model_b.predict(x)) / 2
        >>> p.shape, bool(np.allclose(p.sum(axis=1), 1.0))
        ((8, 3), True)
    """

    def __init__(
        self,
        members: Sequence,
        seeds: Sequence[int] | None = None,
        histories: Sequence[History] | None = None,
    ):
        from ember.models.model import Model

        members = list(members)
        if not members:
            raise ValueError("Ensemble: needs at least one member, got an empty list")
        for i, m in enumerate(members):
            if not isinstance(m, Model):
                raise TypeError(
                    f"Ensemble: member {i} must be an ember.models.Model, got {type(m).__name__}"
                )
        self.members = members
        self.seeds = None if seeds is None else [int(s) for s in seeds]
        self.histories = None if histories is None else list(histories)

    def __len__(self) -> int:
        return len(self.members)

    def __repr__(self) -> str:
        return f"Ensemble(n_members={len(self.members)}, seeds={self.seeds})"

    def member_predictions(self, x, batch_size: int = 32) -> np.ndarray:
        """Every member's ``predict(x)``, stacked: shape ``(n_members, N, ...)``."""
        return np.stack([m.predict(x, batch_size=batch_size, verbose=0) for m in self.members])

    def predict(self, x, method: str = "mean", batch_size: int = 32) -> np.ndarray:
        """Combine the members' predictions.

        Args:
            method: ``"mean"`` — the element-wise mean of the outputs (probabilities or
                regression values), in the outputs' dtype; ``"vote"`` — each member's predicted
                class (argmax, or ``output > 0.5`` for a single output column) and the most
                frequent class per sample (ties go to the lowest class index), as int64 labels.
        """
        if method not in ("mean", "vote"):
            raise ValueError(f"Ensemble.predict: method must be 'mean' or 'vote', got {method!r}")
        outputs = self.member_predictions(x, batch_size)
        if method == "mean":
            return outputs.mean(axis=0, dtype=outputs.dtype)
        return _vote(outputs)

    def _compiled_reference(self, method: str):
        reference = self.members[0]
        if not reference.compiled:
            raise RuntimeError(
                f"Ensemble.{method}: the members must be compiled (the loss and metrics of the "
                "first member are used)"
            )
        return reference

    def evaluate(self, x, y, batch_size: int = 32) -> dict:
        """Loss and metrics of the *averaged* prediction, with the first member's compiled loss
        and metrics; returns a dict such as ``{"loss": 0.21, "accuracy": 0.94}``."""
        reference = self._compiled_reference("evaluate")
        y = y.data if isinstance(y, Tensor) else np.asarray(y)
        mean = self.predict(x, method="mean", batch_size=batch_size)
        if len(y) != len(mean):
            raise ValueError(f"Ensemble.evaluate: x has {len(mean)} samples but y has {len(y)}")
        loss_fn = ember_losses.get(reference.loss)
        with no_grad():
            loss = float(loss_fn(y, Tensor(mean)).data)
        logs = {"loss": loss}
        specs = reference._compile_args.get("metrics") or []
        for spec in [specs] if isinstance(specs, str) else specs:
            metric = metrics_module.get(spec, loss_fn, y.shape, mean.shape)
            metric.update_state(y, mean)
            logs[metric.name] = metric.result()
        return logs

    def evaluate_members(self, x, y, batch_size: int = 32) -> list[dict]:
        """Each member's own ``evaluate(x, y, return_dict=True)``."""
        return [
            m.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True)
            for m in self.members
        ]

    def best(self, x_val, y_val, monitor: str = "loss", mode: str = "auto", batch_size: int = 32):
        """The member that does best on ``(x_val, y_val)``.

        Args:
            monitor: ``"loss"`` or the name of a compiled metric (``"accuracy"``).
            mode: ``"min"``, ``"max"`` or ``"auto"`` (max for accuracy-like names, min
                otherwise). Ties go to the first such member.
        """
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"Ensemble.best: mode must be 'auto', 'min' or 'max', got {mode!r}")
        self._compiled_reference("best")
        results = self.evaluate_members(x_val, y_val, batch_size)
        if monitor not in results[0]:
            raise ValueError(
                f"Ensemble.best: monitor={monitor!r} is not reported by evaluate; available: "
                f"{', '.join(results[0])}"
            )
        if mode == "auto":
            mode = "max" if any(w in monitor.lower() for w in _MAX_WORDS) else "min"
        values = np.array([r[monitor] for r in results], dtype=np.float64)
        index = int(np.argmax(values) if mode == "max" else np.argmin(values))
        return self.members[index]


def _vote(outputs: np.ndarray) -> np.ndarray:
    if outputs.ndim == 2 or (outputs.ndim == 3 and outputs.shape[-1] == 1):
        classes = (outputs.reshape(outputs.shape[0], -1) > 0.5).astype(np.int64)
        n_classes = 2
    elif outputs.ndim == 3:
        classes = np.argmax(outputs, axis=-1)
        n_classes = outputs.shape[-1]
    else:
        raise ValueError(
            "Ensemble.predict: method='vote' needs class outputs of shape (N, classes) or "
            f"(N, 1); the members output shape {outputs.shape[1:]}"
        )
    # counts[c, i] = number of members voting class c for sample i
    counts = (classes[None, :, :] == np.arange(n_classes)[:, None, None]).sum(axis=1)
    return np.argmax(counts, axis=0).astype(np.int64)


def train_ensemble(
    build_fn: Callable[[], object],
    x,
    y,
    n_members: int = 5,
    seeds: Sequence[int] | None = None,
    fit_kwargs: dict | None = None,
    compile_kwargs: dict | None = None,
) -> Ensemble:
    """Build and train ``n_members`` models, member ``i`` from ``ember.manual_seed(seeds[i])``.

    Args:
        build_fn: a function with no arguments returning a new (compiled or not) model.
        x, y: the training data, passed to every member's ``fit``.
        n_members: number of members (>= 1); ignored when ``seeds`` is given.
        seeds: one integer seed per member; default ``0, 1, …, n_members - 1``.
        fit_kwargs: keyword arguments for ``fit`` (``epochs``, ``batch_size``, ``verbose``,
            ``validation_data``…); ``verbose`` defaults to 0.
        compile_kwargs: keyword arguments for ``compile``; required unless ``build_fn`` returns
            compiled models. Pass optimizer *names*: an optimizer object would be shared.

    Returns:
        An :class:`Ensemble` with ``.members``, ``.seeds`` and ``.histories``.

    Example:
        >>> def build():
        ...     return ember.models.Sequential([ember.layers.Dense(1)])
        >>> x, y = np.ones((8, 2), np.float32), np.zeros((8, 1), np.float32)
        >>> ens = ember.ensemble.train_ensemble(
        ...     build, x, y, n_members=3, fit_kwargs={"epochs": 2},
        ...     compile_kwargs={"optimizer": "sgd", "loss": "mse"})
        >>> len(ens.members), ens.seeds, ens.predict(x).shape
        (3, [0, 1, 2], (8, 1))
    """
    from ember.models.model import Model

    if not callable(build_fn):
        raise TypeError(f"train_ensemble: build_fn must be a function, got {build_fn!r}")
    if seeds is None:
        if (
            isinstance(n_members, bool)
            or not isinstance(n_members, (int, np.integer))
            or (n_members < 1)
        ):
            raise ValueError(
                f"train_ensemble: n_members must be an integer >= 1, got {n_members!r}"
            )
        seeds = list(range(int(n_members)))
    else:
        seeds = list(seeds)
        if not seeds:
            raise ValueError("train_ensemble: seeds must contain at least one seed")
        for s in seeds:
            if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0:
                raise ValueError(
                    f"train_ensemble: seeds must be integers >= 0, got {s!r} in {seeds}"
                )
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"train_ensemble: seeds must be distinct, got {seeds}")
    fit_kwargs = {"verbose": 0, **(fit_kwargs or {})}
    for reserved in ("x", "y"):
        if reserved in fit_kwargs:
            raise ValueError(f"train_ensemble: pass {reserved} directly, not in fit_kwargs")
    if compile_kwargs is not None and not isinstance(compile_kwargs.get("optimizer", "adam"), str):
        raise ValueError(
            "train_ensemble: compile_kwargs['optimizer'] must be a name such as 'adam' (an "
            "optimizer object would be shared by every member); to use an object, compile "
            "inside build_fn"
        )
    members, histories = [], []
    for seed in seeds:
        manual_seed(int(seed))
        model = build_fn()
        if not isinstance(model, Model):
            raise TypeError(
                f"train_ensemble: build_fn must return an ember.models.Model, got "
                f"{type(model).__name__}"
            )
        if any(model is m for m in members):
            raise ValueError("train_ensemble: build_fn must return a new model on every call")
        if compile_kwargs is not None:
            model.compile(**compile_kwargs)
        elif not model.compiled:
            raise ValueError(
                "train_ensemble: the model from build_fn is not compiled; pass compile_kwargs "
                "(e.g. {'optimizer': 'adam', 'loss': 'mse'}) or compile inside build_fn"
            )
        histories.append(model.fit(x, y, **fit_kwargs))
        members.append(model)
    return Ensemble(members, seeds=seeds, histories=histories)
