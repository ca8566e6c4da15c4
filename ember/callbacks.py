"""Callbacks: hooks into ``fit`` (Keras' protocol) and the ``History`` it returns.

Built in: :class:`History`, :class:`LambdaCallback`, :class:`EarlyStopping`,
:class:`ModelCheckpoint`, :class:`LearningRateScheduler`, :class:`ReduceLROnPlateau`,
:class:`CSVLogger` and :class:`TerminateOnNaN`, with Keras 3 names, defaults and semantics;
:class:`TensorBoard` (event files, ``ember.tensorboard``) and :class:`GradientHealth` (per-layer
gradient health, ``ember.diagnostics``) load from their modules on first use.

Monitored quantities (``monitor="val_loss"``) are keys of the epoch logs. A key that is not in
the logs raises ``ValueError`` listing the keys that are (Keras only warns, which lets a typo such
as ``"val_acc"`` silently disable early stopping).

Example:
    >>> class PrintLoss(ember.callbacks.Callback):
    ...     def on_epoch_end(self, epoch, logs=None):
    ...         print(f"epoch {epoch}: loss {logs['loss']:.3f}")
    >>> x, y = np.random.rand(32, 4).astype("float32"), np.random.rand(32, 1).astype("float32")
    >>> model = ember.models.Sequential([ember.layers.Dense(1)])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> model.fit(x, y, epochs=2, callbacks=[PrintLoss()], verbose=0)
    epoch 0: loss ...
    epoch 1: loss ...
    History(epochs=2, keys=['loss'])
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np


class Callback:
    """Base class; override any ``on_*`` method. ``self.model`` is set by ``fit``.

    ``fit`` calls ``on_train_begin/end``, ``on_epoch_begin/end``, ``on_train_batch_begin/end``
    and, around validation, ``on_test_begin/end``; ``evaluate(callbacks=...)`` calls
    ``on_test_*`` and ``predict(callbacks=...)`` calls ``on_predict_*``.

    Example:
        >>> class LossHistory(ember.callbacks.Callback):
        ...     def on_train_begin(self, logs=None):
        ...         self.losses = []
        ...
        ...     def on_epoch_end(self, epoch, logs=None):
        ...         self.losses.append(logs["loss"])
        >>> model = ember.models.Sequential([ember.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> history = LossHistory()
        >>> x, y = np.ones((8, 2)), np.zeros((8, 1))
        >>> _ = model.fit(x, y, epochs=3, verbose=0, callbacks=[history])
        >>> len(history.losses), history.model is model, history.params["epochs"]
        (3, True, 3)
    """

    def __init__(self):
        self.model = None
        self.params: dict = {}

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: dict) -> None:
        self.params = dict(params)

    def on_train_begin(self, logs=None): ...

    def on_train_end(self, logs=None): ...

    def on_epoch_begin(self, epoch, logs=None): ...

    def on_epoch_end(self, epoch, logs=None): ...

    def on_train_batch_begin(self, batch, logs=None): ...

    def on_train_batch_end(self, batch, logs=None): ...

    def on_test_begin(self, logs=None): ...

    def on_test_end(self, logs=None): ...

    def on_test_batch_begin(self, batch, logs=None): ...

    def on_test_batch_end(self, batch, logs=None): ...

    def on_predict_begin(self, logs=None): ...

    def on_predict_end(self, logs=None): ...

    def on_predict_batch_begin(self, batch, logs=None): ...

    def on_predict_batch_end(self, batch, logs=None): ...


class History(Callback):
    """Records every epoch's logs: ``history.history["val_loss"]`` is a list of floats.

    ``fit`` runs it after the user's callbacks (as Keras does), so keys they add to the logs,
    such as ``"learning_rate"`` from :class:`ReduceLROnPlateau`, are recorded too.

    Example:
        >>> x, y = np.random.rand(32, 4).astype("float32"), np.random.rand(32, 1).astype("float32")
        >>> model = ember.models.Sequential([ember.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> history = model.fit(x, y, epochs=3, validation_split=0.25, verbose=0)
        >>> history
        History(epochs=3, keys=['loss', 'val_loss'])
        >>> len(history.history["val_loss"])
        3
    """

    def __init__(self):
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None):
        self.history, self.epoch = {}, []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"


class LambdaCallback(Callback):
    """A callback from plain functions.

    Example:
        >>> x, y = np.random.rand(32, 4).astype("float32"), np.random.rand(32, 1).astype("float32")
        >>> model = ember.models.Sequential([ember.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> losses = []
        >>> cb = ember.callbacks.LambdaCallback(
        ...     on_epoch_end=lambda epoch, logs: losses.append(logs["loss"]))
        >>> _ = model.fit(x, y, epochs=2, callbacks=[cb], verbose=0)
        >>> len(losses)
        2
    """

    def __init__(self, **hooks):
        super().__init__()
        for name, fn in hooks.items():
            if not name.startswith("on_") or not hasattr(Callback, name):
                valid = sorted(n for n in vars(Callback) if n.startswith("on_"))
                raise ValueError(
                    f"LambdaCallback: unknown hook {name!r}; valid hooks: {', '.join(valid)}"
                )
            if not callable(fn):
                raise TypeError(f"LambdaCallback: hook {name!r} must be callable, got {fn!r}")
            setattr(self, name, fn)


class CallbackList:
    """Dispatches each event to every callback in order.

    Example:
        >>> class Printer(ember.callbacks.Callback):
        ...     def on_epoch_end(self, epoch, logs=None):
        ...         print(f"epoch {epoch}: {logs}")
        >>> callbacks = ember.callbacks.CallbackList([Printer(), Printer()], model=None)
        >>> callbacks.on_epoch_end(0, {"loss": 0.5})
        epoch 0: {'loss': 0.5}
        epoch 0: {'loss': 0.5}
    """

    def __init__(self, callbacks, model, params: dict | None = None):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be ember.callbacks.Callback objects, got {cb!r}")
            cb.set_model(model)
            if params is not None:
                cb.set_params(params)

    def __getattr__(self, event):
        if not event.startswith("on_"):
            raise AttributeError(event)

        def dispatch(*args, **kwargs):
            for cb in self.callbacks:
                getattr(cb, event)(*args, **kwargs)

        return dispatch


# ------------------------------------------------------------------------------ helpers
_MAX_WORDS = ("acc", "auc", "precision", "recall", "f1")


def _check_mode(owner: str, mode) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    return mode


def _resolve_mode(mode: str, monitor: str) -> str:
    """``"auto"`` → ``"max"`` for accuracy-like names (acc, auc, precision, recall, f1)."""
    if mode != "auto":
        return mode
    name = monitor.lower()
    return "max" if any(word in name for word in _MAX_WORDS) else "min"


def _monitor_value(owner: str, monitor: str, logs) -> float:
    logs = logs or {}
    if monitor not in logs:
        available = ", ".join(sorted(logs)) or "none"
        hint = ""
        if monitor.startswith("val_"):
            hint = " (val_ keys need validation_data= or validation_split= in fit)"
        raise ValueError(
            f"{owner}: monitor={monitor!r} is not in the epoch logs{hint}; available keys: "
            f"{available}"
        )
    return float(logs[monitor])


def _check_number(
    owner: str,
    name: str,
    value,
    low=None,
    high=None,
    *,
    integer=False,
    low_open=False,
    high_open=False,
):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}")
    if integer and int(value) != value:
        raise ValueError(f"{owner}: {name} must be an integer, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{owner}: {name} must be finite, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{owner}: {name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and (value >= high if high_open else value > high):
        raise ValueError(
            f"{owner}: {name} must be {'<' if high_open else '<='} {high}, got {value}"
        )
    return int(value) if integer else float(value)


def _optimizer(owner: str, model):
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not hasattr(optimizer, "learning_rate"):
        raise ValueError(f"{owner}: the model needs a compiled optimizer with a learning_rate")
    return optimizer


def _schedule_of(optimizer):
    """The optimizer's learning-rate schedule, or None when its rate is a plain number."""
    schedule = getattr(optimizer, "schedule", None)
    if schedule is None and callable(getattr(optimizer, "learning_rate", None)):
        schedule = optimizer.learning_rate
    return schedule


def _get_lr(owner: str, model) -> float:
    optimizer = _optimizer(owner, model)
    lr = optimizer.learning_rate
    if callable(lr):  # an optimizer that exposes the schedule itself: the coming step's value
        lr = lr(getattr(optimizer, "iterations", 0))
    return float(np.asarray(lr))


def _set_lr(owner: str, model, value: float) -> None:
    optimizer = _optimizer(owner, model)
    schedule = _schedule_of(optimizer)
    if schedule is not None:
        # Keras raises here too: silently replacing the schedule by a constant would be a surprise
        raise TypeError(
            f"{owner}: the optimizer's learning rate is a schedule ({type(schedule).__name__}), "
            "which this callback would overwrite with a constant; use a float learning_rate "
            "with this callback, or the schedule alone"
        )
    optimizer.learning_rate = value


# ------------------------------------------------------------------------------ callbacks
class EarlyStopping(Callback):
    """Stop training when ``monitor`` has stopped improving (Keras 3 semantics).

    An epoch improves when ``current`` beats the best value by more than ``min_delta`` (in the
    direction of ``mode``). After ``patience`` epochs in a row without improvement training stops.
    With ``baseline``, the patience counter is only reset by values that also beat the baseline.
    Epochs before ``start_from_epoch`` are ignored.

    ``restore_best_weights=True`` sets the weights of the best epoch at the end of training —
    **also when training was not stopped early** (Keras 3; Keras 2 restored only on a stop).

    Args:
        monitor: a key of the epoch logs, e.g. ``"val_loss"`` or ``"val_accuracy"``.
        min_delta: minimum change counted as an improvement (its absolute value is used).
        patience: epochs without improvement before stopping (>= 0).
        verbose: 1 prints when it stops and when it restores weights.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (max for names containing acc, auc,
            precision, recall or f1; min otherwise).
        baseline: a value the monitored quantity must beat.
        restore_best_weights: restore the best epoch's weights at the end of training.
        start_from_epoch: number of warm-up epochs not monitored.

    Example:
        >>> x, y = np.random.rand(32, 4).astype("float32"), np.random.rand(32, 1).astype("float32")
        >>> model = ember.models.Sequential([ember.layers.Dense(16, activation="relu"),
        ...                                  ember.layers.Dense(1)])
        >>> model.compile(optimizer=ember.optimizers.Adam(learning_rate=0.05), loss="mse")
        >>> stop = ember.callbacks.EarlyStopping(monitor="val_loss", patience=3,
        ...                                       restore_best_weights=True)
        >>> history = model.fit(x, y, epochs=100, validation_split=0.25, callbacks=[stop],
        ...                     verbose=0)
        >>> len(history.epoch) < 100     # stopped early: random targets soon overfit
        True
        >>> stop.stopped_epoch - stop.best_epoch   # 3 epochs (patience) without improvement
        3
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ):
        super().__init__()
        owner = "EarlyStopping"
        if not isinstance(monitor, str):
            raise TypeError(f"{owner}: monitor must be a string, got {monitor!r}")
        self.monitor = monitor
        self.min_delta = abs(_check_number(owner, "min_delta", min_delta))
        self.patience = _check_number(owner, "patience", patience, 0, integer=True)
        self.verbose = verbose
        self.mode = _check_mode(owner, mode)
        self.baseline = None if baseline is None else _check_number(owner, "baseline", baseline)
        self.restore_best_weights = bool(restore_best_weights)
        self.start_from_epoch = _check_number(
            owner, "start_from_epoch", start_from_epoch, 0, integer=True
        )
        self._direction = _resolve_mode(self.mode, monitor)
        self._reset()

    def _reset(self) -> None:
        self.wait = 0
        self.stopped_epoch = 0
        self.best: float | None = None
        self.best_weights = None
        self.best_epoch = 0

    def _is_improvement(self, value: float, reference: float | None) -> bool:
        if reference is None:
            return True
        # better than the reference by more than min_delta (Keras: monitor_op(v ∓ Δ, ref))
        if self._direction == "min":
            return value + self.min_delta < reference
        return value - self.min_delta > reference

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        current = _monitor_value("EarlyStopping", self.monitor, logs)
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # Until something is better, the first monitored epoch's weights are the best.
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping", flush=True)
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(
                    "Restoring model weights from the end of the best epoch: "
                    f"{self.best_epoch + 1}.",
                    flush=True,
                )
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model (or only its weights) during training, atomically.

    ``filepath`` may contain ``str.format`` fields filled from ``epoch`` (1-based, as Keras) and
    the epoch logs: ``"ckpt-{epoch:02d}-{val_loss:.4f}.ember"``. Files are written by
    ``model.save`` / ``model.save_weights``, which write a temporary file and rename it over the
    target, so an interrupted save never leaves a half-written checkpoint.

    Args:
        filepath: target path (a format string, see above).
        monitor: the log key compared when ``save_best_only=True``.
        verbose: 1 prints a line per save.
        save_best_only: save only when ``monitor`` improves on the best value so far.
        save_weights_only: use ``save_weights`` instead of ``save``.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (as :class:`EarlyStopping`).
        save_freq: ``"epoch"`` or a positive integer number of batches.
        initial_value_threshold: a best value to beat before the first save.

    Example:
        >>> import os, tempfile
        >>> tmp = tempfile.TemporaryDirectory()
        >>> path = os.path.join(tmp.name, "best.ember")
        >>> x, y = np.random.rand(32, 4).astype("float32"), np.random.rand(32, 1).astype("float32")
        >>> model = ember.models.Sequential([ember.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> ckpt = ember.callbacks.ModelCheckpoint(path, save_best_only=True)
        >>> _ = model.fit(x, y, epochs=3, validation_split=0.25, callbacks=[ckpt], verbose=0)
        >>> best = ember.models.load_model(path)
        >>> best.predict(x, verbose=0).shape
        (32, 1)
        >>> tmp.cleanup()
    """

    def __init__(
        self,
        filepath,
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        save_freq="epoch",
        initial_value_threshold: float | None = None,
    ):
        super().__init__()
        owner = "ModelCheckpoint"
        if not isinstance(filepath, (str, os.PathLike)) or not str(filepath):
            raise TypeError(f"{owner}: filepath must be a non-empty path, got {filepath!r}")
        if not isinstance(monitor, str):
            raise TypeError(f"{owner}: monitor must be a string, got {monitor!r}")
        if save_freq != "epoch":
            save_freq = _check_number(owner, "save_freq", save_freq, 1, integer=True)
        self.filepath = os.fspath(filepath)
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        self.mode = _check_mode(owner, mode)
        self.save_freq = save_freq
        self._direction = _resolve_mode(self.mode, monitor)
        self.best = (
            None
            if initial_value_threshold is None
            else _check_number(owner, "initial_value_threshold", initial_value_threshold)
        )
        self._batches_seen = 0
        self._epoch = 0

    def _format_path(self, epoch: int, logs: dict, batch: int | None = None) -> str:
        fields = dict(logs)
        fields["epoch"] = epoch + 1
        if batch is not None:
            fields["batch"] = batch + 1
        try:
            return self.filepath.format(**fields)
        except KeyError as exc:
            raise ValueError(
                f"ModelCheckpoint: filepath {self.filepath!r} uses {exc} which is not available; "
                f"fields: {', '.join(sorted(fields))}"
            ) from None

    def _save(self, epoch: int, logs: dict, batch: int | None = None) -> None:
        logs = dict(logs or {})
        if self.save_best_only:
            current = _monitor_value("ModelCheckpoint", self.monitor, logs)
            better = self.best is None or (
                current < self.best if self._direction == "min" else current > self.best
            )
            if not better:
                if self.verbose > 0:
                    print(
                        f"Epoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}",
                        flush=True,
                    )
                return
            previous, self.best = self.best, current
            if self.verbose > 0:
                print(
                    f"Epoch {epoch + 1}: {self.monitor} improved from {previous} to "
                    f"{current:.5f}, saving model",
                    flush=True,
                )
        path = Path(self._format_path(epoch, logs, batch))
        if self.verbose > 0 and not self.save_best_only:
            print(f"Epoch {epoch + 1}: saving model to {path}", flush=True)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)

    def on_train_begin(self, logs=None):
        self._batches_seen = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._batches_seen += 1
        if self._batches_seen % self.save_freq == 0:
            self._save(self._epoch, logs or {}, batch)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, logs or {})


class LearningRateScheduler(Callback):
    """Set the optimizer's learning rate at the start of each epoch from ``schedule``.

    ``schedule(epoch, lr) -> new_lr`` gets the 0-based epoch and the current learning rate (a
    one-argument ``schedule(epoch)`` is accepted too). The rate used in each epoch is logged as
    ``"learning_rate"`` (so it appears in ``History``), as Keras 3 does.

    Example:
        >>> def halve_every_10(epoch, lr):
        ...     return lr * 0.5 if epoch and epoch % 10 == 0 else lr
        >>> x, y = np.random.rand(32, 4).astype("float32"), np.random.rand(32, 1).astype("float32")
        >>> model = ember.models.Sequential([ember.layers.Dense(1)])
        >>> model.compile(optimizer=ember.optimizers.SGD(learning_rate=0.1), loss="mse")
        >>> cb = ember.callbacks.LearningRateScheduler(halve_every_10)
        >>> history = model.fit(x, y, epochs=30, callbacks=[cb], verbose=0)
        >>> [round(lr, 4) for lr in history.history["learning_rate"][::10]]
        [0.1, 0.05, 0.025]
    """

    def __init__(self, schedule: Callable, verbose: int = 0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(
                f"LearningRateScheduler: schedule must be a function (epoch, lr) -> lr, "
                f"got {schedule!r}"
            )
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        owner = "LearningRateScheduler"
        lr = _get_lr(owner, self.model)
        try:
            new_lr = self.schedule(epoch, lr)
        except TypeError:  # the older one-argument form schedule(epoch)
            new_lr = self.schedule(epoch)
        if isinstance(new_lr, np.ndarray) and new_lr.ndim == 0:
            new_lr = new_lr.item()
        if isinstance(new_lr, bool) or not isinstance(
            new_lr, (int, float, np.integer, np.floating)
        ):
            raise ValueError(
                f"{owner}: the schedule must return a number, got {new_lr!r} at epoch {epoch}"
            )
        if not math.isfinite(new_lr) or new_lr < 0:
            raise ValueError(
                f"{owner}: the schedule returned learning rate {new_lr} at epoch {epoch}; "
                "expected a finite number >= 0"
            )
        _set_lr(owner, self.model, float(new_lr))
        if self.verbose > 0:
            print(
                f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {new_lr}.",
                flush=True,
            )

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = _get_lr("LearningRateScheduler", self.model)


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` has stopped improving.

    After ``patience`` epochs without an improvement larger than ``min_delta``, the rate becomes
    ``max(lr * factor, min_lr)``; then ``cooldown`` epochs pass before counting resumes. The rate
    used in each epoch is logged as ``"learning_rate"`` (Keras 3).

    Args:
        monitor: a key of the epoch logs.
        factor: multiplier in [0, 1).
        patience: epochs without improvement before a reduction (>= 0).
        verbose: 1 prints each reduction.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (as :class:`EarlyStopping`).
        min_delta: threshold of a significant improvement.
        cooldown: epochs to wait after a reduction.
        min_lr: lower bound of the learning rate.

    Example:
        >>> x, y = np.random.rand(32, 4).astype("float32"), np.random.rand(32, 1).astype("float32")
        >>> model = ember.models.Sequential([ember.layers.Dense(16, activation="relu"),
        ...                                  ember.layers.Dense(1)])
        >>> model.compile(optimizer=ember.optimizers.Adam(learning_rate=0.05), loss="mse")
        >>> cb = ember.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2,
        ...                                         min_lr=1e-5)
        >>> history = model.fit(x, y, epochs=20, validation_split=0.25, callbacks=[cb], verbose=0)
        >>> lrs = history.history["learning_rate"]
        >>> lrs[0], lrs[-1] < lrs[0]     # halved after each plateau of 2 epochs
        (0.05, True)
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
    ):
        super().__init__()
        owner = "ReduceLROnPlateau"
        if not isinstance(monitor, str):
            raise TypeError(f"{owner}: monitor must be a string, got {monitor!r}")
        self.monitor = monitor
        factor = _check_number(owner, "factor", factor)
        if not 0.0 <= factor < 1.0:
            raise ValueError(
                f"{owner}: factor must be in [0, 1) (a factor >= 1 would not reduce the "
                f"learning rate), got factor={factor}"
            )
        self.factor = factor
        self.patience = _check_number(owner, "patience", patience, 0, integer=True)
        self.verbose = verbose
        self.mode = _check_mode(owner, mode)
        self.min_delta = abs(_check_number(owner, "min_delta", min_delta))
        self.cooldown = _check_number(owner, "cooldown", cooldown, 0, integer=True)
        self.min_lr = _check_number(owner, "min_lr", min_lr, 0)
        self._direction = _resolve_mode(self.mode, monitor)
        self._reset()

    def _reset(self) -> None:
        self.best = math.inf if self._direction == "min" else -math.inf
        self.wait = 0
        self.cooldown_counter = 0

    def _improved(self, current: float) -> bool:
        if self._direction == "min":
            return current < self.best - self.min_delta
        return current > self.best + self.min_delta

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        owner = "ReduceLROnPlateau"
        logs = logs if logs is not None else {}
        logs["learning_rate"] = _get_lr(owner, self.model)
        current = _monitor_value(owner, self.monitor, logs)
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(current):
            self.best = current
            self.wait = 0
        elif self.cooldown_counter == 0:
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = _get_lr(owner, self.model)
                # compared in float32, as the optimizer's rate can be a rounded float32
                if old_lr > np.float32(self.min_lr):
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    _set_lr(owner, self.model, new_lr)
                    if self.verbose > 0:
                        print(
                            f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to "
                            f"{new_lr}.",
                            flush=True,
                        )
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


class CSVLogger(Callback):
    """Write one CSV row per epoch: ``epoch`` then the log keys in sorted order.

    The file is flushed after every row, so it can be read while training runs. With
    ``append=True`` rows are added to an existing file (no second header).

    Example:
        >>> import csv, os, tempfile
        >>> tmp = tempfile.TemporaryDirectory()
        >>> log = os.path.join(tmp.name, "train.csv")
        >>> x, y = np.random.rand(32, 4).astype("float32"), np.random.rand(32, 1).astype("float32")
        >>> model = ember.models.Sequential([ember.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> _ = model.fit(x, y, epochs=3, callbacks=[ember.callbacks.CSVLogger(log)], verbose=0)
        >>> with open(log) as f:
        ...     rows = list(csv.DictReader(f))
        >>> len(rows), list(rows[0])
        (3, ['epoch', 'loss'])
        >>> tmp.cleanup()
    """

    def __init__(self, filename, separator: str = ",", append: bool = False):
        super().__init__()
        if not isinstance(filename, (str, os.PathLike)) or not str(filename):
            raise TypeError(f"CSVLogger: filename must be a non-empty path, got {filename!r}")
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"CSVLogger: separator must be one character, got {separator!r}")
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = bool(append)
        self.keys: list[str] | None = None
        self._write_header = True

    def on_train_begin(self, logs=None):
        self._write_header = True
        if self.append and os.path.exists(self.filename):
            with open(self.filename, encoding="utf-8") as f:
                self._write_header = not f.readline()
        self.keys = None
        Path(self.filename).parent.mkdir(parents=True, exist_ok=True)
        if not self.append:
            open(self.filename, "w", encoding="utf-8").close()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
        row = {"epoch": epoch}
        # repr keeps every digit, so the CSV reads back to the logged float exactly
        row.update({k: repr(float(logs[k])) if k in logs else "NA" for k in self.keys})
        # Opened per row and closed at once: every row is on disk when the epoch ends, and an
        # exception in fit leaves no open file behind.
        with open(self.filename, "a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["epoch", *self.keys], delimiter=self.sep)
            if self._write_header:
                writer.writeheader()
                self._write_header = False
            writer.writerow(row)


class TerminateOnNaN(Callback):
    """Stop training cleanly when a batch loss is NaN or infinite.

    Without it, ``fit`` raises :class:`ember.models.NonFiniteLossError` on a non-finite loss.
    With it, the failing step is not applied, ``model.stop_training`` is set, the epoch ends (its
    logged ``"loss"`` is NaN/inf, as in Keras), ``on_epoch_end``/``on_train_end`` still run and
    ``fit`` returns the ``History`` without raising; the weights are those after the last finite
    step. (A finite loss with a non-finite *gradient* still raises.)

    Example:
        >>> def nan_loss(y_true, y_pred):   # a loss that turns NaN, as a diverging run does
        ...     return ((y_pred - y_true) ** 2).mean() * float("nan")
        >>> x, y = np.random.rand(32, 4).astype("float32"), np.random.rand(32, 1).astype("float32")
        >>> model = ember.models.Sequential([ember.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss=nan_loss)
        >>> history = model.fit(x, y, epochs=50, callbacks=[ember.callbacks.TerminateOnNaN()],
        ...                     verbose=0)
        Batch 0: invalid loss nan, terminating training
        >>> model.stop_training, history.epoch   # it fired in the first epoch
        (True, [0])
    """

    def __init__(self):
        super().__init__()
        self.stopped_batch: int | None = None

    def on_train_begin(self, logs=None):
        self.stopped_batch = None

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            print(f"Batch {batch}: invalid loss {loss}, terminating training", flush=True)
            self.stopped_batch = batch
            self.model.stop_training = True


# Callbacks that live in their own modules (which import this one), loaded on first use.
_ELSEWHERE = {"GradientHealth": "ember.diagnostics", "TensorBoard": "ember.tensorboard"}


def __getattr__(name: str):
    if name in _ELSEWHERE:
        import importlib

        return getattr(importlib.import_module(_ELSEWHERE[name]), name)
    raise AttributeError(f"module 'ember.callbacks' has no attribute {name!r}")
