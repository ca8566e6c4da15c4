"""The training API of a model: ``compile``, the overridable steps, and the loops that drive them.

As in Keras 3, the work of one batch lives in three methods a user may override —
:meth:`Trainer.train_step`, :meth:`Trainer.test_step` and :meth:`Trainer.predict_step`, each given
the batch as it comes (``(x, y)``, ``(x, y, sample_weight)`` or ``x``) and the first two returning
a dict of logs — and ``fit``/``evaluate``/``predict`` only prepare the data, loop over epochs and
batches, and call the callbacks and the progress bar. A GAN overrides ``train_step`` with two
optimizers and still trains through ``fit``.

The default ``train_step`` differentiates the loss with respect to the model's trainable weights
*as they are at that step*, so freezing or unfreezing a layer between (or during) calls to ``fit``
takes effect at once, with or without re-compiling.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from ember import losses as losses_module
from ember import metrics as metrics_module
from ember import optimizers as optimizers_module
from ember import tree
from ember.callbacks import Callback, CallbackList, History
from ember.models.compile_utils import (
    CompileLoss,
    CompileMetrics,
    add_penalties,
    flatten_targets,
)
from ember.models.data_adapter import (
    ArrayBatches,
    IterableBatches,
    check_arrays,
    is_batch_iterable,
    num_samples,
    pack_batch,
    take,
    unpack_batch,
)
from ember.tensor import Tensor, _run_backward, no_grad


class NonFiniteLossError(FloatingPointError):
    """Training stopped because the loss became NaN or infinite."""


class Trainer:
    """``compile``/``fit``/``evaluate``/``predict`` and the steps they drive (mixed into
    :class:`~ember.models.Model`)."""

    # Set by ``fit(..., distribute=True)`` on a world of several ranks (ember.distributed).
    _replicas = None

    def _init_trainer(self) -> None:
        self.optimizer = None
        self.loss = None
        self.compiled = False
        self.stop_training = False
        self.history: History | None = None
        self._compile_loss: CompileLoss | None = None
        self._compile_metrics: CompileMetrics | None = None
        self._compile_args: dict = {}
        self._loss_tracker = None
        self._output_loss_trackers: dict = {}

    # ---------------------------------------------------------------- compile
    def compile(
        self,
        optimizer="adam",
        loss=None,
        metrics=None,
        loss_weights=None,
        weighted_metrics=None,
        run_eagerly=None,
        steps_per_execution=1,
        jit_compile=None,
    ) -> None:
        """Choose the optimizer, the loss(es) and the metrics reported by ``fit``/``evaluate``.

        Args:
            optimizer: a name (``"adam"``, ``"sgd"``) or an optimizer object.
            loss: a name (``"mse"``, ``"sparse_categorical_crossentropy"``…), a Loss object or a
                function ``fn(y_true, y_pred) -> Tensor``; for several outputs also a list (one
                per output) or a dict keyed by output name. ``None`` is allowed for a model whose
                ``train_step`` computes its own loss (a GAN).
            metrics: names (``["accuracy"]``), functions or metric objects; for several outputs
                a list applies to every output, a dict or a list of lists chooses per output.
            loss_weights: a number per output (list or dict): the loss minimized is the
                weighted sum.
            weighted_metrics: metrics (same forms as ``metrics``) that also take the
                ``sample_weight`` (and ``class_weight``) given to ``fit``/``evaluate`` — e.g.
                accuracy over the labelled nodes of a graph only; ``metrics`` ignore them.
            run_eagerly, steps_per_execution, jit_compile: accepted for Keras compatibility;
                Ember always runs eagerly, one step at a time.

        Example:
            >>> model = ember.Sequential([ember.Input(shape=(4,)), ember.layers.Dense(3)])
            >>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
            ...               metrics=["accuracy"])
        """
        optimizer = optimizers_module.get(optimizer)
        args = {
            "loss": loss,
            "metrics": metrics,
            "loss_weights": loss_weights,
            "weighted_metrics": weighted_metrics,
        }
        # Resolve everything that can be resolved now, before assigning anything: a failed
        # compile leaves the model as it was.
        names = self._known_output_names()
        compile_loss = compile_metrics = None
        if names is not None:
            compile_loss, compile_metrics = _make_compiled(args, names)
        else:
            _make_compiled(args, ["output"]) if not _is_structured(loss) else None
        self.optimizer = optimizer
        # One loss is kept resolved (a callable Loss object, handy in hand-written loops); a
        # list or dict of losses as given.
        self.loss = loss if loss is None or _is_structured(loss) else losses_module.get(loss)
        self._compile_args = args
        self._compile_loss, self._compile_metrics = compile_loss, compile_metrics
        self._loss_tracker = metrics_module.Mean(name="loss")
        self._output_loss_trackers = {}
        self.compiled = True

    def _known_output_names(self) -> list[str] | None:
        """Output names when the architecture fixes them (functional, Sequential), else None."""
        return None

    def _ensure_compiled_for(self, y_pred) -> None:
        """Build the loss and metric containers of a subclassed model from its first output."""
        if self._compile_loss is not None or self._compile_args.get("loss") is None:
            args = self._compile_args
            if self._compile_metrics is None and _has_metrics(args):
                names = self._output_names_of(y_pred)
                self._compile_metrics = CompileMetrics(
                    args.get("metrics"), names, self._compile_loss, args.get("weighted_metrics")
                )
            return
        names = self._output_names_of(y_pred)
        self._compile_loss, self._compile_metrics = _make_compiled(self._compile_args, names)

    def _output_names_of(self, y_pred) -> list[str]:
        known = self._known_output_names()
        if known is not None:
            return known
        if isinstance(y_pred, dict):
            return sorted(y_pred)
        flat = tree.flatten(y_pred)
        return ["output"] if len(flat) == 1 else [f"output_{i + 1}" for i in range(len(flat))]

    def _require_compiled(self, method: str) -> None:
        if not self.compiled:
            raise RuntimeError(
                f"{self.name}.{method}: the model must be compiled first, e.g. "
                'model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")'
            )

    # ---------------------------------------------------------------- metrics
    @property
    def metrics(self) -> list:
        """The metric objects ``fit`` reports: the loss, per-output losses, the compiled metrics,
        and any metric object assigned as an attribute of the model (for a custom step)."""
        found = []
        tracker = self._loss_tracker
        # The loss is reported when there is one: compiled, or added by add_loss (a custom
        # train_step that never updates it, a GAN's, does not show an empty "loss").
        if tracker is not None and (self._compile_loss is not None or tracker.count > 0):
            found.append(tracker)
        found.extend(self._output_loss_trackers.values())
        if self._compile_metrics is not None:
            found.extend(self._compile_metrics.metrics)
        attributes = self.__dict__
        for name in attributes.get("_metric_attributes", ()):
            value = attributes.get(name)
            if isinstance(value, metrics_module.Metric) and value not in found:
                found.append(value)
        return found

    def __setattr__(self, name: str, value) -> None:
        # Metric objects assigned as attributes (a custom train_step's trackers) are reported
        # by `metrics`; remembering their names spares a scan of every attribute per step.
        if isinstance(value, metrics_module.Metric):
            self.__dict__.setdefault("_metric_attributes", {})[name] = None
        super().__setattr__(name, value)

    @property
    def metrics_names(self) -> list[str]:
        return [m.name for m in self.metrics]

    def reset_metrics(self) -> None:
        """Reset every metric in :attr:`metrics` (``fit`` does it at each epoch's start)."""
        for metric in self.metrics:
            metric.reset_state()

    def get_metrics_result(self) -> dict:
        """``{name: current value}`` of every metric in :attr:`metrics`, as Python floats."""
        return {m.name: _to_float(m.result()) for m in self.metrics}

    # ---------------------------------------------------------------- loss and metrics
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The loss to minimize for one batch: the compiled loss(es), weighted, plus every
        regularization penalty and ``add_loss`` term of the forward pass. ``None`` when there is
        nothing to minimize."""
        self._ensure_compiled_for(y_pred)
        total = None
        if self._compile_loss is not None:
            names = self._compile_loss.output_names
            y_true_flat = flatten_targets(y, names)
            y_pred_flat = _flat_outputs(y_pred, names)
            weights_flat = _flat_sample_weights(sample_weight, names)
            total, per_output = self._compile_loss(y_true_flat, y_pred_flat, weights_flat)
            if len(names) > 1:
                batch = _batch_size(y_pred)
                for name, value in per_output.items():
                    tracker = self._output_loss_trackers.get(name)
                    if tracker is None:
                        tracker = metrics_module.Mean(name=f"{name}_loss")
                        self._output_loss_trackers[name] = tracker
                    tracker.update_state(float(value.data), sample_weight=batch)
        return add_penalties(total, self.losses)

    def compute_metrics(self, x, y, y_pred, sample_weight=None) -> dict:
        """Update the compiled metrics with one batch and return :meth:`get_metrics_result`."""
        self._ensure_compiled_for(y_pred)
        if self._compile_metrics is not None and y is not None:
            names = self._compile_metrics.output_names
            self._compile_metrics.update_state(
                flatten_targets(y, names),
                _flat_outputs(y_pred, names),
                _flat_sample_weights(sample_weight, names),
            )
        return self.get_metrics_result()

    # ---------------------------------------------------------------- the steps
    def train_step(self, data) -> dict:
        """One optimizer step on one batch; returns the logs (running means over the epoch).

        Override it for custom training (a GAN, a VAE); ``fit`` then drives yours.
        """
        x, y, sample_weight = unpack_batch(data)
        y_pred = self(x, training=True)
        loss = self.compute_loss(x, y, y_pred, sample_weight, training=True)
        if loss is None:
            raise ValueError(
                f"{self.name}: there is no loss to minimize: compile(loss=...), call add_loss() "
                "in the model, or override train_step"
            )
        value = float(loss.data)
        if self._loss_tracker is not None:
            self._loss_tracker.update_state(value, sample_weight=_batch_size(y_pred))
        if self._replicas is not None:  # fit(distribute=True): the ranks average, step together
            self._replicas.apply_gradients(self, loss, value)
            return self.compute_metrics(x, y, y_pred, sample_weight)
        if not math.isfinite(value):
            return self.get_metrics_result()  # the update is skipped; fit decides what follows
        weights = self._weights_and_flags()
        variables = [p for p, trainable in weights if trainable]
        if variables:  # a model without trainable weights (only add_loss terms) just reports
            # With frozen weights the backward is pruned to the trainable ones (a frozen base
            # costs nothing); without, every leaf is wanted and the pruning pass is skipped.
            prune = len(variables) != len(weights)
            gradients = self._gradients(loss, variables, value, prune)
            self.optimizer.apply(gradients, variables)
        return self.compute_metrics(x, y, y_pred, sample_weight)

    def test_step(self, data) -> dict:
        """The loss and metrics of one batch in inference mode; returns the logs."""
        x, y, sample_weight = unpack_batch(data)
        y_pred = self(x, training=False)
        loss = self.compute_loss(x, y, y_pred, sample_weight, training=False)
        if self._loss_tracker is not None and loss is not None:
            self._loss_tracker.update_state(float(loss.data), sample_weight=_batch_size(y_pred))
        return self.compute_metrics(x, y, y_pred, sample_weight)

    def predict_step(self, data):
        """The model's outputs for one batch (inference mode)."""
        x, _, _ = unpack_batch(data)
        return self(x, training=False)

    def _gradients(self, loss: Tensor, variables: list, value: float, prune: bool = True) -> list:
        """d loss / d variable (``None`` where the loss does not depend on one); an inf/NaN
        gradient raises before any update."""
        if not variables:
            return []
        by_id = _run_backward(loss, None, False, targets=variables, prune=prune)
        gradients = [by_id.get(id(p)) for p in variables]
        for p, g in zip(variables, gradients):
            # One BLAS pass screens the gradient: g·g is finite unless some entry is NaN or inf
            # (or so large that its square overflows, which the exact test then clears).
            # Measured for a 784x256 float32 gradient: 14 µs, against 18 for max and min and
            # 36 for a sum.
            flat = None if g is None else g.reshape(-1)
            if (
                flat is not None
                and not math.isfinite(np.dot(flat, flat))
                and not np.isfinite(g).all()
            ):
                raise NonFiniteLossError(
                    f"the gradient of weight {p.name!r} {p.shape} is not finite although the "
                    f"loss is {value}; the update was skipped"
                )
        return gradients

    # ---------------------------------------------------------------- data
    def _check_data(self, x, y, sample_weight, method: str, cast: bool):
        """Arrays (or structures of arrays) checked, with their common number of samples."""
        if x is None:
            raise ValueError(f"{method}: x (the inputs) is required")
        x = check_arrays(x, "x", method, self.dtype, cast)
        # Targets are not screened for NaN: a NaN target surfaces as a NaN loss, which fit
        # reports with the batch (and TerminateOnNaN can act on).
        y = check_arrays(y, "y", method, self.dtype, cast=False, finite=False)
        if sample_weight is not None:
            if isinstance(sample_weight, (str, bytes)) or not (
                isinstance(sample_weight, (np.ndarray, Tensor, list, tuple, dict))
            ):
                raise TypeError(
                    f"{method}: sample_weight must be an array of one weight per sample (or a "
                    f"dict/list of them per output), got {type(sample_weight).__name__}"
                )
            sample_weight = check_arrays(sample_weight, "sample_weight", method, self.dtype, True)
            sample_weight = tree.map_structure(
                lambda w: np.asarray(w, dtype=self.dtype).reshape(len(w), -1)[:, 0]
                if np.ndim(w) > 1 and np.shape(w)[1:] == (1,) * (np.ndim(w) - 1)
                else np.asarray(w, dtype=self.dtype),
                sample_weight,
            )
        n = num_samples(("x", x), ("y", y), ("sample_weight", sample_weight), method=method)
        return x, y, sample_weight, n

    def _check_training_data(self, x, y, sample_weight, method: str, cast: bool, verb: str):
        """:meth:`_check_data` plus what training and evaluation need: samples, and targets
        when a loss is compiled."""
        x, y, sample_weight, n = self._check_data(x, y, sample_weight, method, cast)
        if n == 0:
            raise ValueError(f"{method}: x is empty (0 samples); nothing to {verb}")
        if y is None and self._compile_loss is not None:
            raise ValueError(f"{method}: y (the targets) is required")
        return x, y, sample_weight, n

    def _fit_batches(self, x, y, sample_weight, class_weight, batch_size, shuffle,
                     validation_split, validation_data, steps_per_epoch, method):
        """(training batches, validation batches or None) for ``fit``."""
        if is_batch_iterable(x):
            if y is not None:
                raise ValueError(
                    f"{method}: y must not be given when x is an iterable of batches (a "
                    "DataLoader or Dataset yields (x, y) pairs itself)"
                )
            if validation_split:
                raise ValueError(
                    f"{method}: validation_split needs arrays; with an iterable of batches pass "
                    "validation_data instead"
                )
            train = IterableBatches(x, steps_per_epoch, method)
            if class_weight is not None:
                train = _ClassWeighted(train, class_weight, self, method)
        else:
            x, y, sample_weight, n = self._check_training_data(
                x, y, sample_weight, method, cast=True, verb="fit"
            )
            if validation_data is None and validation_split > 0:
                n_val = int(n * validation_split)
                if n_val == 0 or n_val == n:
                    raise ValueError(
                        f"{method}: validation_split={validation_split} of {n} samples leaves "
                        f"{n - n_val} for training and {n_val} for validation; both need >= 1"
                    )
                train_index, val_index = slice(0, n - n_val), slice(n - n_val, n)
                validation_data = (
                    take(x, val_index),
                    take(y, val_index),
                    take(sample_weight, val_index),
                )
                x, y = take(x, train_index), take(y, train_index)
                sample_weight = take(sample_weight, train_index)
            if class_weight is not None:
                weights = class_sample_weights(class_weight, y, method, self.dtype)
                sample_weight = weights if sample_weight is None else sample_weight * weights
            train = ArrayBatches(x, y, sample_weight, batch_size, shuffle)
        validation = None
        if validation_data is not None:
            validation = self._eval_batches(
                validation_data, batch_size, f"{method} validation_data"
            )
        return train, validation

    def _eval_batches(self, data, batch_size: int, method: str, steps=None):
        if is_batch_iterable(data):
            return IterableBatches(data, steps, method)
        if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
            raise ValueError(f"{method} must be (x_val, y_val) or (x_val, y_val, sample_weight)")
        x, y, w, n = self._check_data(*unpack_batch(tuple(data)), method, cast=False)
        if n == 0:
            raise ValueError(f"{method}: x is empty (0 samples); nothing to evaluate")
        return ArrayBatches(x, y, w, batch_size, shuffle=False)

    # ---------------------------------------------------------------- fit
    def fit(
        self,
        x=None,
        y=None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose="auto",
        callbacks=None,
        validation_split: float = 0.0,
        validation_data=None,
        shuffle: bool = True,
        class_weight: dict | None = None,
        sample_weight=None,
        initial_epoch: int = 0,
        steps_per_epoch: int | None = None,
        distribute: bool = False,
    ) -> History:
        """Train for ``epochs`` passes over the data, calling :meth:`train_step` per batch.

        ``x``/``y`` are arrays (lists or dicts of arrays for several inputs/outputs), or ``x`` is
        an iterable of batches (an ``ember.data.DataLoader`` or ``Dataset``, a generator) and
        ``y`` is not given. ``validation_split`` takes the *last* fraction of the samples
        (before shuffling) as validation data, as Keras does; the last partial batch of each
        epoch is kept. Reported epoch losses and metrics are sample-weighted means over the
        epoch (the logs of the epoch's last ``train_step``).

        A non-finite loss stops training with :class:`NonFiniteLossError` naming the epoch and
        batch; the weights stay those of the last finite step — unless a callback sets
        ``model.stop_training`` in ``on_train_batch_end`` when it sees the non-finite loss (as
        :class:`~ember.callbacks.TerminateOnNaN` does): then the epoch ends, the remaining
        callbacks run and the History is returned without raising.

        The reported loss includes the regularization penalties (as ``evaluate``'s does).
        Layers run with ``training=True`` here and ``training=False`` in validation; ``fit``
        never changes a layer's own mode, so the model's mode is the same afterwards, also when
        an exception is raised.

        ``class_weight`` (``{class index: weight}``) multiplies each training sample's weight by
        the weight of its class (labels as integers, one-hot rows or one 0/1 column); with
        ``sample_weight`` the two are multiplied. Every class in ``y`` needs a weight.
        Validation data is not class-weighted (Keras).

        ``distribute=True`` trains data-parallel on the ranks started by an MPI launcher
        (``mpiexec -n 4 python train.py``, every rank calling ``fit``): each rank takes its shard
        of every global batch of ``batch_size`` samples and the gradients are averaged, so the
        run follows the single-process one; only rank 0 prints and writes checkpoints. Without a
        launcher it is the same as ``distribute=False``. See :mod:`ember.distributed`.

        Returns:
            A :class:`~ember.callbacks.History` whose ``.history`` maps ``"loss"``, each metric
            and their ``"val_"`` versions to per-epoch lists.
        """
        method = f"{self.name}.fit"
        self._require_compiled("fit")
        batch_size = _check_int("batch_size", 32 if batch_size is None else batch_size, method, 1)
        epochs = _check_int("epochs", epochs, method, 0)
        initial_epoch = _check_int("initial_epoch", initial_epoch, method, 0)
        verbose = _check_verbose(verbose, method)
        if steps_per_epoch is not None:
            steps_per_epoch = _check_int("steps_per_epoch", steps_per_epoch, method, 1)
        if isinstance(validation_split, bool) or not isinstance(
            validation_split, (int, float, np.integer, np.floating)
        ):
            raise TypeError(
                f"{method}: validation_split must be a number in [0, 1), got "
                f"{type(validation_split).__name__} {validation_split!r}"
            )
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(
                f"{method}: validation_split must be in [0, 1), got {validation_split}"
            )
        if validation_data is not None and not is_batch_iterable(validation_data):
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError(
                    f"{method}: validation_data must be (x_val, y_val) or (x_val, y_val, "
                    "sample_weight), or an iterable of batches"
                )
        if not isinstance(distribute, bool):
            raise TypeError(f"{method}: distribute must be True or False, got {distribute!r}")
        train, validation = self._fit_batches(
            x, y, sample_weight, class_weight, batch_size, shuffle, validation_split,
            validation_data, steps_per_epoch, method,
        )
        if not distribute:
            return self._fit_epochs(train, validation, callbacks, epochs, initial_epoch, verbose)
        from ember import distributed  # here: mpi4py is imported only under an MPI launcher

        with distributed.replicate(self, method) as replicas:
            if replicas is not None:  # several ranks: shard the data, rank 0 alone prints
                train, validation, callbacks, verbose = replicas.prepare(
                    train, validation, callbacks, verbose
                )
            return self._fit_epochs(train, validation, callbacks, epochs, initial_epoch, verbose)

    def _fit_epochs(self, train, validation, callbacks, epochs, initial_epoch, verbose) -> History:
        """The epochs of ``fit``, with its callbacks and progress bar; returns the History."""
        method = f"{self.name}.fit"
        if isinstance(callbacks, Callback):  # a single callback, as Keras accepts
            callbacks = [callbacks]
        history = History()
        # History runs last (Keras): it records keys other callbacks add, e.g. learning_rate.
        callback_list = CallbackList(
            [*(callbacks or []), history],
            self,
            {"epochs": epochs, "steps": train.steps, "verbose": verbose},
        )
        self.history = history
        self.stop_training = False
        callback_list.on_train_begin()
        logs: dict = {}
        for epoch in range(initial_epoch, epochs):
            self.reset_metrics()
            callback_list.on_epoch_begin(epoch)
            bar = progress_bar(verbose, train.steps, f"Epoch {epoch + 1}/{epochs}")
            try:
                logs = self._run_epoch(train, epoch, epochs, callback_list, bar, method)
                if self._replicas is not None:  # batch-norm statistics: alike on every rank
                    self._replicas.sync_non_trainable(self)
                if validation is not None:
                    callback_list.on_test_begin()
                    val_logs = self._evaluate_batches(validation, callback_list)
                    if self._replicas is not None:
                        val_logs = self._replicas.reduce_logs(self, val_logs)
                    callback_list.on_test_end(val_logs)
                    logs.update({f"val_{k}": v for k, v in val_logs.items()})
                if bar is not None:  # the epoch's line ends with its validation results
                    bar.set_postfix_str(format_logs(logs), refresh=False)
            finally:
                if bar is not None:
                    bar.close()
            if verbose == 2:
                print(f"Epoch {epoch + 1}/{epochs} - {format_logs(logs)}", flush=True)
            callback_list.on_epoch_end(epoch, logs)
            if self._replicas is not None:  # a stop requested on any rank stops them all
                self.stop_training = self._replicas.agree(self.stop_training)
            if self.stop_training:
                break
        callback_list.on_train_end(logs)  # the last epoch's logs, as Keras passes
        return history

    def _run_epoch(self, train, epoch, epochs, callback_list, bar, method) -> dict:
        """One pass of ``train_step`` over the training batches; the epoch's logs."""
        logs: dict = {}
        step = -1
        for step, batch in enumerate(train.epoch()):
            callback_list.on_train_batch_begin(step)
            try:
                if self._replicas is None:
                    logs = _floats(self.train_step(pack_batch(*batch)))
                else:  # this rank's shard of the batch; logs reduced over the ranks
                    logs = self._replicas.train_batch(self, batch)
                value = logs.get("loss")
                finite = value is None or math.isfinite(value)
                problem = None if finite else f"the loss became {value}"
            except NonFiniteLossError as exc:
                problem, value = str(exc), None
            if problem is not None:
                if value is not None:
                    # The step was not applied; a callback (TerminateOnNaN) may choose to
                    # end training cleanly instead of the exception below.
                    callback_list.on_train_batch_end(step, logs)
                    if self.stop_training:
                        break
                steps = "?" if train.steps is None else train.steps
                raise NonFiniteLossError(
                    f"{method}: {problem} at epoch {epoch + 1}, batch {step + 1} of {steps}; "
                    "training stopped and the weights are those after the last finite step. "
                    "Lower the learning rate, scale the inputs, or check the data and labels"
                )
            if bar is not None:
                bar.set_postfix_str(format_logs(logs), refresh=False)
                bar.update(1)
            callback_list.on_train_batch_end(step, logs)
            if self._replicas is not None:
                self.stop_training = self._replicas.agree(self.stop_training)
            if self.stop_training:
                break
        if step < 0:
            raise ValueError(
                f"{method}: the training data gave no batch in epoch {epoch + 1}; a generator is "
                "used up after one pass: pass steps_per_epoch, or a DataLoader/Dataset, which can "
                "be iterated again"
            )
        return dict(logs)

    # ---------------------------------------------------------------- evaluate / predict
    def _evaluate_batches(self, batches, callbacks=None) -> dict:
        self.reset_metrics()
        logs: dict = {}
        with no_grad():
            for step, batch in enumerate(batches.epoch()):
                if callbacks is not None:
                    callbacks.on_test_batch_begin(step)
                logs = _floats(self.test_step(pack_batch(*batch)))
                if callbacks is not None:
                    callbacks.on_test_batch_end(step, logs)
        return dict(logs)

    def evaluate(
        self,
        x=None,
        y=None,
        batch_size: int | None = None,
        verbose="auto",
        sample_weight=None,
        steps: int | None = None,
        callbacks=None,
        return_dict: bool = False,
    ):
        """Loss (plus penalties) and metrics on the data, computed without a graph.

        Returns the loss as a float, or ``[loss, *metrics]`` when metrics were compiled (or a
        dict with ``return_dict=True``), like Keras. The loss includes the regularization
        penalties, as in ``fit``; layers run with ``training=False``. ``callbacks`` get the
        ``on_test_*`` events.
        """
        method = f"{self.name}.evaluate"
        self._require_compiled("evaluate")
        batch_size = _check_int("batch_size", 32 if batch_size is None else batch_size, method, 1)
        verbose = _check_verbose(verbose, method)
        if is_batch_iterable(x):
            batches = IterableBatches(x, steps, method)
        else:
            # No whole-array cast: each batch is cast as it is used (memory does not grow with N)
            x, y, sample_weight, _ = self._check_training_data(
                x, y, sample_weight, method, cast=False, verb="evaluate"
            )
            batches = ArrayBatches(x, y, sample_weight, batch_size, shuffle=False)
        callback_list = None
        if callbacks:
            callback_list = CallbackList(callbacks, self, {"verbose": verbose})
            callback_list.on_test_begin()
        logs = self._evaluate_batches(batches, callback_list)
        if callback_list is not None:
            callback_list.on_test_end(logs)
        if verbose:
            print(format_logs(logs), flush=True)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size: int | None = None, verbose=0, steps=None, callbacks=None):
        """Outputs for ``x`` as NumPy arrays (a list or dict of them for several outputs), in
        batches and without building a graph, so memory does not grow with the number of
        samples. Layers run with ``training=False``; ``callbacks`` get the ``on_predict_*``
        events."""
        method = f"{self.name}.predict"
        batch_size = _check_int("batch_size", 32 if batch_size is None else batch_size, method, 1)
        verbose = _check_verbose(verbose, method)
        total = None
        if is_batch_iterable(x):
            batches = IterableBatches(x, steps, method)
        else:
            x, _, _, total = self._check_data(x, None, None, method, cast=False)
            if total == 0:
                with no_grad():
                    return _numpy(self(x, training=False))
            batches = ArrayBatches(x, None, None, batch_size, shuffle=False)
        callback_list = None
        if callbacks:
            callback_list = CallbackList(callbacks, self, {"verbose": verbose})
            callback_list.on_predict_begin()
        chunks, result = [], None
        bar = progress_bar(verbose, batches.steps, "predict")
        try:
            with no_grad():
                for step, batch in enumerate(batches.epoch()):
                    if callback_list is not None:
                        callback_list.on_predict_batch_begin(step)
                    out = _numpy(self.predict_step(pack_batch(*batch)), copy=total is None)
                    if total is not None:
                        result = _place(result, out, step * batch_size, total)
                    else:
                        chunks.append(out)
                    if bar is not None:
                        bar.update(1)
                    if callback_list is not None:
                        callback_list.on_predict_batch_end(step, {"outputs": out})
        finally:
            if bar is not None:
                bar.close()
        if callback_list is not None:
            callback_list.on_predict_end()
        if total is None:
            if not chunks:
                raise ValueError(f"{method}: the data gave no batch")
            result = tree.map_structure(lambda *parts: np.concatenate(parts), *chunks)
        return result

    # ---------------------------------------------------------------- one batch
    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None,
                       return_dict: bool = False):
        """One :meth:`train_step` on exactly this batch; the loss (and metrics) of that batch."""
        method = f"{self.name}.train_on_batch"
        self._require_compiled("train_on_batch")
        x, y, sample_weight, _ = self._check_training_data(
            x, y, sample_weight, method, cast=True, verb="train on"
        )
        if class_weight is not None:
            weights = class_sample_weights(class_weight, y, method, self.dtype)
            sample_weight = weights if sample_weight is None else sample_weight * weights
        self.reset_metrics()
        logs = _floats(self.train_step(pack_batch(x, y, sample_weight)))
        return _logs_result(logs, return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict: bool = False):
        """One :meth:`test_step` on exactly this batch; its loss (and metrics)."""
        method = f"{self.name}.test_on_batch"
        self._require_compiled("test_on_batch")
        x, y, sample_weight, _ = self._check_training_data(
            x, y, sample_weight, method, cast=False, verb="test on"
        )
        self.reset_metrics()
        with no_grad():
            logs = _floats(self.test_step(pack_batch(x, y, sample_weight)))
        return _logs_result(logs, return_dict)

    def predict_on_batch(self, x):
        """The outputs for exactly this batch, as NumPy arrays."""
        x, _, _, _ = self._check_data(x, None, None, f"{self.name}.predict_on_batch", cast=False)
        with no_grad():
            return _numpy(self.predict_step(pack_batch(x)))


# -------------------------------------------------------------------- helpers
def _is_structured(loss) -> bool:
    return isinstance(loss, (list, tuple, dict))


def _make_compiled(args: dict, names: list[str]):
    loss = args["loss"]
    compile_loss = None if loss is None else CompileLoss(loss, args["loss_weights"], names)
    compile_metrics = None
    if _has_metrics(args):
        compile_metrics = CompileMetrics(
            args.get("metrics"), names, compile_loss, args.get("weighted_metrics")
        )
    return compile_loss, compile_metrics


def _has_metrics(args: dict) -> bool:
    return bool(args.get("metrics")) or bool(args.get("weighted_metrics"))


def _flat_outputs(y_pred, names: list[str]) -> list:
    if isinstance(y_pred, dict):
        return [y_pred[name] for name in names]
    flat = tree.flatten(y_pred)
    if len(flat) != len(names):
        raise ValueError(
            f"the model returned {len(flat)} output(s) but was compiled for {len(names)} "
            f"({names})"
        )
    return flat


def _flat_sample_weights(sample_weight, names: list[str]) -> list:
    if sample_weight is None:
        return [None] * len(names)
    if isinstance(sample_weight, (dict, list, tuple)) and not isinstance(
        sample_weight, np.ndarray
    ) and (isinstance(sample_weight, dict) or len(names) > 1):
        return flatten_targets(sample_weight, names, "sample_weight")
    return [sample_weight] * len(names)


def _batch_size(y_pred) -> int:
    first = tree.flatten(y_pred)[0]
    return int(first.shape[0]) if first.ndim else 1


def _to_float(value):
    if isinstance(value, Tensor):
        value = value.data
    if isinstance(value, np.ndarray) and value.size == 1:
        return float(value.reshape(()))
    if isinstance(value, (np.floating, np.integer, int)) and not isinstance(value, bool):
        return float(value)
    return value


def _floats(logs) -> dict:
    if not isinstance(logs, dict):
        raise TypeError(
            f"train_step/test_step must return a dict of logs (name -> value), got "
            f"{type(logs).__name__}"
        )
    return {key: _to_float(value) for key, value in logs.items()}


def _numpy(outputs, copy: bool = True):
    """The arrays of a structure of tensors (copies unless the caller copies them anyway)."""
    return tree.map_structure(
        lambda t: (t.data.copy() if copy else t.data) if isinstance(t, Tensor) else np.asarray(t),
        outputs,
    )


def _place(result, out, start: int, total: int):
    """Write a batch of outputs into preallocated arrays (made at the first batch): no list of
    chunks plus a copy."""
    if result is None:
        result = tree.map_structure(
            lambda chunk: np.empty((total,) + chunk.shape[1:], dtype=chunk.dtype), out
        )
    for target, chunk in zip(tree.flatten(result), tree.flatten(out)):
        target[start : start + len(chunk)] = chunk
    return result


def _logs_result(logs: dict, return_dict: bool):
    if return_dict:
        return logs
    values = list(logs.values())
    return values[0] if len(values) == 1 else values


def _check_int(name: str, value, method: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"{method}: {name} must be an integer >= {low}, got {type(value).__name__} {value!r}"
        )
    if value < low:
        raise ValueError(f"{method}: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_verbose(verbose, method: str) -> int:
    if verbose == "auto":
        return 1
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise ValueError(f"{method}: verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
    return int(verbose)


class _ClassWeighted:
    """Batches of an iterable with class weights folded into their sample weights."""

    def __init__(self, batches, class_weight, model, method):
        self.batches, self.class_weight = batches, class_weight
        self.model, self.method = model, method
        self.steps = batches.steps

    def epoch(self):
        for x, y, w in self.batches.epoch():
            weights = class_sample_weights(self.class_weight, np.asarray(y), self.method,
                                           self.model.dtype)
            yield x, y, weights if w is None else np.asarray(w) * weights


def class_sample_weights(class_weight, y, method: str, dtype) -> np.ndarray:
    """Per-sample weights ``class_weight[label]`` (Keras' ``class_weight`` semantics).

    Labels are integer class indices, or one-hot / probability rows (argmax), or a single column
    of 0/1 targets (binary). Every class present in ``y`` must be in the dict.
    """
    if not isinstance(class_weight, dict) or not class_weight:
        raise TypeError(
            f"{method}: class_weight must be a non-empty dict {{class index: weight}}, "
            f"got {class_weight!r}"
        )
    if tree.is_nested(y):
        raise ValueError(f"{method}: class_weight is only supported for models with one output")
    keys, values = [], []
    for key, value in class_weight.items():
        if isinstance(key, bool) or not isinstance(key, (int, np.integer)):
            raise TypeError(
                f"{method}: class_weight keys must be integer class indices, got {key!r}"
            )
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float, np.integer, np.floating))
            or not math.isfinite(value)
            or value < 0
        ):
            raise ValueError(
                f"{method}: class_weight[{key}] must be a finite number >= 0, got {value!r}"
            )
        keys.append(int(key))
        values.append(float(value))
    if y.ndim == 1:
        labels = y
    elif y.ndim == 2 and y.shape[1] == 1:
        labels = y[:, 0]
    elif y.ndim == 2:
        labels = np.argmax(y, axis=1)
    else:
        raise ValueError(
            f"{method}: class_weight needs class labels of shape (N,), (N, 1) or one-hot "
            f"(N, classes); y has shape {y.shape}"
        )
    if labels.dtype.kind == "f" and not np.array_equal(labels, np.round(labels)):
        raise ValueError(
            f"{method}: class_weight needs integer class labels; y has non-integer values "
            "(class_weight is for classification)"
        )
    labels = labels.astype(np.int64)
    order = np.argsort(keys)
    sorted_keys = np.asarray(keys, dtype=np.int64)[order]
    sorted_values = np.asarray(values, dtype=dtype)[order]
    index = np.clip(np.searchsorted(sorted_keys, labels), 0, len(sorted_keys) - 1)
    found = sorted_keys[index] == labels
    if not found.all():
        missing = sorted(int(c) for c in np.unique(labels[~found]))
        raise ValueError(
            f"{method}: class_weight has no weight for class(es) {missing} present in y; "
            f"it covers {sorted(keys)}"
        )
    return sorted_values[index]


def progress_bar(verbose: int, total: int | None, desc: str):
    if verbose != 1:
        return None
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit="batch",
        file=sys.stdout,
        leave=True,
        dynamic_ncols=True,
        mininterval=0.2,
    )


def format_logs(logs: dict) -> str:
    return " - ".join(
        f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}" for k, v in logs.items()
    )
