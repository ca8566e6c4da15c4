"""``Model`` (functional or subclassed) and ``Sequential``: compile, fit, evaluate, predict.

Example (functional):
    >>> inputs = ember.layers.Input(shape=(64,))
    >>> hidden = ember.layers.Dense(32, activation="relu")(inputs)
    >>> outputs = ember.layers.Dense(10, activation="softmax")(hidden)
    >>> model = ember.models.Model(inputs, outputs)
    >>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
    ...               metrics=["accuracy"])

Example (subclassed, PyTorch style):
    >>> class MLP(ember.models.Model):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.hidden = ember.layers.Dense(32, activation="relu")
    ...         self.out = ember.layers.Dense(10)
    ...     def call(self, x):
    ...         return self.out(self.hidden(x))
"""

from __future__ import annotations

import math
import sys

import numpy as np

from ember import losses as losses_module
from ember import metrics as metrics_module
from ember import ops
from ember import optimizers as optimizers_module
from ember.callbacks import Callback, CallbackList, History
from ember.layers.base import Layer, shape_inference
from ember.layers.core import InputLayer, SymbolicTensor
from ember.tensor import Tensor, default_rng, no_grad


class NonFiniteLossError(FloatingPointError):
    """Training stopped because the loss became NaN or infinite."""


class Model(Layer):
    """A layer with a training API. Build it functionally — ``Model(inputs, outputs)`` — or
    subclass it and define ``call`` (see the module docstring)."""

    def __init__(self, inputs=None, outputs=None, name: str | None = None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.optimizer = None
        self.loss = None
        self.compiled = False
        self.stop_training = False
        self.history: History | None = None
        self._metric_specs: list = []
        self._metrics: list | None = None
        self._nodes: list | None = None
        if inputs is not None or outputs is not None:
            self._init_functional(inputs, outputs)

    # ---------------------------------------------------------------- functional graph
    def _init_functional(self, inputs, outputs) -> None:
        if not isinstance(inputs, SymbolicTensor) or not isinstance(outputs, SymbolicTensor):
            raise TypeError(
                "Model(inputs, outputs) expects ember.layers.Input(...) as inputs and the result "
                "of calling layers on it as outputs (one input and one output)"
            )
        order, seen, stack = [], set(), [(outputs, False)]
        while stack:  # iterative post-order: inputs before the nodes that use them
            node, done = stack.pop()
            if done:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((parent, False) for parent in node.inputs)
        if order[0] is not inputs:
            raise ValueError("the model's outputs are not computed from its inputs")
        self._nodes = order
        self._input = inputs
        self._output = outputs
        self._layers = []
        for node in order[1:]:
            if node.layer not in self._layers:
                self._layers.append(node.layer)
        self._build_shape = (None,) + inputs.shape[1:]
        self.built = True

    @property
    def layers(self) -> list[Layer]:
        if self._nodes is not None:
            return list(self._layers)
        return [layer for layer in self._sublayers()]

    def call(self, inputs, training=False):
        if self._nodes is None:
            raise NotImplementedError(
                f"{type(self).__name__}: build the model with Model(inputs, outputs) or subclass "
                "Model and define call(self, inputs)"
            )
        self._input.layer._check_input(inputs)
        values = {id(self._input): inputs}
        for node in self._nodes[1:]:
            args = [values[id(p)] for p in node.inputs]
            values[id(node)] = node.layer(*args, training=training, **node.kwargs)
        return values[id(self._output)]

    def __call__(self, inputs, training: bool | None = None, **kwargs):
        return super().__call__(inputs, training=training, **kwargs)

    # ---------------------------------------------------------------- compile
    def compile(self, optimizer="adam", loss=None, metrics=None) -> None:
        """Choose the optimizer, the loss and the metrics reported by ``fit``/``evaluate``.

        Args:
            optimizer: a name (``"adam"``, ``"sgd"``) or an optimizer object.
            loss: a name (``"mse"``, ``"sparse_categorical_crossentropy"``…), a Loss object or
                a function ``fn(y_true, y_pred) -> Tensor``.
            metrics: a list of names (``["accuracy"]``) or functions.
        """
        if loss is None:
            raise ValueError(f'{self.name}.compile: a loss is required, e.g. loss="mse"')
        # Resolve everything before assigning: a failed compile leaves the model as it was.
        optimizer = optimizers_module.get(optimizer)
        loss = losses_module.get(loss)
        if isinstance(metrics, (str, bytes)) or callable(metrics):
            metrics = [metrics]
        metric_specs = metrics_module.validate_names(metrics or [])
        self.optimizer, self.loss, self._metric_specs = optimizer, loss, metric_specs
        self._metrics = None
        self.compiled = True

    def _require_compiled(self, method: str) -> None:
        if not self.compiled:
            raise RuntimeError(
                f"{self.name}.{method}: the model must be compiled first, e.g. "
                'model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")'
            )

    def _metric_objects(self, y_true: np.ndarray, y_pred: np.ndarray) -> list:
        if self._metrics is None:
            self._metrics = [
                metrics_module.get(m, self.loss, y_true.shape, y_pred.shape)
                for m in self._metric_specs
            ]
        return self._metrics

    # ---------------------------------------------------------------- data checks
    def _check_x(self, x, method: str, cast: bool = True) -> np.ndarray:
        if isinstance(x, Tensor):
            x = x.data
        try:
            x = np.asarray(x)
        except ValueError as exc:
            raise ValueError(f"{method}: x could not be read as an array ({exc})") from None
        if x.dtype.kind not in "biuf" or x.dtype.kind == "b":
            raise TypeError(
                f"{method}: x has dtype {x.dtype}; expected numbers (float, or integer such as "
                "uint8 images, which are cast to float32)"
            )
        if x.ndim == 0:
            raise ValueError(f"{method}: x must have a batch axis; got a scalar")
        if cast and x.dtype != self.dtype:
            x = x.astype(self.dtype)
        # min/max propagate NaN and expose ±inf without an O(N) mask; the mask is built only
        # to report the first bad row.
        if x.dtype.kind == "f" and x.size and not (np.isfinite(x.min()) and np.isfinite(x.max())):
            bad = ~np.isfinite(x)
            if bad.any():
                rows = np.flatnonzero(bad.reshape(len(x), -1).any(axis=1))
                raise ValueError(
                    f"{method}: x contains {int(bad.sum())} non-finite value(s) (NaN or inf), "
                    f"first at row {int(rows[0])}; clean or impute the data first"
                )
        return x

    def _check_xy(self, x, y, method: str, sample_weight=None, cast: bool = True):
        x = self._check_x(x, method, cast)
        if y is None:
            raise ValueError(f"{method}: y (the targets) is required")
        y = y.data if isinstance(y, Tensor) else np.asarray(y)
        if y.dtype.kind not in "biuf":
            raise TypeError(f"{method}: y has dtype {y.dtype}; expected numbers")
        if y.ndim == 0 or len(y) != len(x):
            raise ValueError(
                f"{method}: data cardinality is ambiguous: x sizes: {len(x)}, y sizes: "
                f"{y.shape[0] if y.ndim else 'scalar'}. Make sure all arrays contain the same "
                "number of samples"
            )
        if len(x) == 0:
            raise ValueError(
                f"{method}: x is empty (0 samples); nothing to {method.split('.')[-1]}"
            )
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=self.dtype).reshape(-1)
            if len(sample_weight) != len(x):
                raise ValueError(
                    f"{method}: sample_weight has {len(sample_weight)} entries for {len(x)} samples"
                )
        return x, y, sample_weight

    @staticmethod
    def _check_positive_int(name: str, value, method: str, allow_zero: bool = False) -> int:
        low = 0 if allow_zero else 1
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{method}: {name} must be an integer >= {low}, got {value!r}")
        return int(value)

    def _with_penalties(self, loss: Tensor) -> Tensor:
        """The data loss plus every regularization penalty of the last forward pass.

        ``fit`` and ``evaluate`` both report this sum (Keras does too), computed the same way in
        float32, so with frozen weights fit's epoch loss equals evaluate's loss.
        """
        penalties = self.losses
        if penalties:
            loss = loss + ops.stack([ops.reshape(p, ()) for p in penalties]).sum()
        return loss

    def _class_sample_weights(self, class_weight, y: np.ndarray, method: str) -> np.ndarray:
        """Per-sample weights ``class_weight[label]`` (Keras' ``class_weight`` semantics).

        Labels are integer class indices, or one-hot / probability rows (argmax), or a single
        column of 0/1 targets (binary). Every class present in ``y`` must be in the dict.
        """
        if not isinstance(class_weight, dict) or not class_weight:
            raise TypeError(
                f"{method}: class_weight must be a non-empty dict {{class index: weight}}, "
                f"got {class_weight!r}"
            )
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
        if labels.dtype.kind == "f":
            if not np.array_equal(labels, np.round(labels)):
                raise ValueError(
                    f"{method}: class_weight needs integer class labels; y has non-integer "
                    "values (class_weight is for classification)"
                )
        labels = labels.astype(np.int64)
        order = np.argsort(keys)
        sorted_keys = np.asarray(keys, dtype=np.int64)[order]
        sorted_values = np.asarray(values, dtype=self.dtype)[order]
        index = np.clip(np.searchsorted(sorted_keys, labels), 0, len(sorted_keys) - 1)
        found = sorted_keys[index] == labels
        if not found.all():
            missing = sorted(int(c) for c in np.unique(labels[~found]))
            raise ValueError(
                f"{method}: class_weight has no weight for class(es) {missing} present in y; "
                f"it covers {sorted(keys)}"
            )
        return sorted_values[index]

    # ---------------------------------------------------------------- training
    def train_step(self, x_batch, y_batch, sample_weight=None) -> tuple[float, np.ndarray]:
        """One optimizer step on a batch; returns the loss (with penalties) and the predictions."""
        y_pred = self(x_batch, training=True)
        loss = self._with_penalties(self.loss(y_batch, y_pred, sample_weight))
        value = float(loss.data)
        if not math.isfinite(value):
            return value, y_pred.data
        if not self.optimizer.params:
            self.optimizer.add_params(self.parameters())
        self.optimizer.zero_grad()
        loss.backward()
        for p in self.optimizer.params:  # a finite loss can still have an inf/NaN gradient
            g = p.grad
            # one cheap pass (a sum propagates NaN/inf); the exact test only when it fails
            if g is not None and not math.isfinite(g.sum()) and not np.isfinite(g).all():
                self.optimizer.zero_grad()
                raise NonFiniteLossError(
                    f"the gradient of weight {p.name!r} {p.shape} is not finite although the "
                    f"loss is {value}; the update was skipped"
                )
        self.optimizer.step()
        return value, y_pred.data

    def fit(
        self,
        x=None,
        y=None,
        batch_size: int = 32,
        epochs: int = 1,
        verbose: int = 1,
        callbacks=None,
        validation_split: float = 0.0,
        validation_data=None,
        shuffle: bool = True,
        sample_weight=None,
        initial_epoch: int = 0,
        class_weight: dict | None = None,
    ) -> History:
        """Train for ``epochs`` passes over ``(x, y)`` in shuffled mini-batches.

        ``validation_split`` takes the *last* fraction of the samples (before shuffling) as
        validation data, as Keras does; the last partial batch of each epoch is kept. Reported
        epoch losses and metrics are sample-weighted means over the epoch. A non-finite loss
        stops training with :class:`NonFiniteLossError` naming the epoch and batch; the weights
        stay those of the last finite step — unless a callback sets ``model.stop_training`` in
        ``on_train_batch_end`` when it sees the non-finite batch loss (as
        :class:`~ember.callbacks.TerminateOnNaN` does): then the epoch ends, the remaining
        callbacks run and the History is returned without raising.

        The reported loss includes the regularization penalties (as ``evaluate``'s does).
        Layers run with ``training=True`` here and ``training=False`` in validation; ``fit``
        never changes a layer's own mode, so the model's mode is the same afterwards, also when
        an exception is raised.

        ``class_weight`` (``{class index: weight}``) multiplies each training sample's weight by
        the weight of its class (labels as integers, one-hot rows or one 0/1 column); with
        ``sample_weight`` the two are multiplied. Every class in ``y`` needs a weight. Validation
        data is not class-weighted (Keras).

        Returns:
            A :class:`~ember.callbacks.History` whose ``.history`` maps ``"loss"``, each metric
            and their ``"val_"`` versions to per-epoch lists.
        """
        method = f"{self.name}.fit"
        self._require_compiled("fit")
        batch_size = self._check_positive_int("batch_size", batch_size, method)
        epochs = self._check_positive_int("epochs", epochs, method, allow_zero=True)
        x, y, sample_weight = self._check_xy(x, y, method, sample_weight)
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(
                f"{method}: validation_split must be in [0, 1), got {validation_split}"
            )
        if validation_data is not None:
            if len(validation_data) not in (2, 3):
                raise ValueError(f"{method}: validation_data must be (x_val, y_val)")
            x_val, y_val, w_val = self._check_xy(
                *validation_data[:2], f"{method} validation_data", *validation_data[2:]
            )
        elif validation_split > 0:
            n_val = int(len(x) * validation_split)
            if n_val == 0 or n_val == len(x):
                raise ValueError(
                    f"{method}: validation_split={validation_split} of {len(x)} samples leaves "
                    f"{len(x) - n_val} for training and {n_val} for validation; both need >= 1"
                )
            x, x_val = x[:-n_val], x[-n_val:]
            y, y_val = y[:-n_val], y[-n_val:]
            w_val = None
            if sample_weight is not None:
                sample_weight, w_val = sample_weight[:-n_val], sample_weight[-n_val:]
        else:
            x_val = None
        if class_weight is not None:
            weights = self._class_sample_weights(class_weight, y, method)
            sample_weight = weights if sample_weight is None else sample_weight * weights

        if isinstance(callbacks, Callback):  # a single callback, as Keras accepts
            callbacks = [callbacks]
        history = History()
        n = len(x)
        steps = math.ceil(n / batch_size)
        # History runs last (Keras): it records keys other callbacks add, e.g. learning_rate.
        callback_list = CallbackList(
            [*(callbacks or []), history],
            self,
            {"epochs": epochs, "steps": steps, "verbose": verbose},
        )
        self.history = history
        self.stop_training = False
        callback_list.on_train_begin()
        logs: dict = {}
        for epoch in range(initial_epoch, epochs):
            callback_list.on_epoch_begin(epoch)
            order = default_rng().permutation(n) if shuffle else np.arange(n)
            bar = _progress_bar(verbose, steps, f"Epoch {epoch + 1}/{epochs}")
            total_loss = 0.0
            metrics = None
            try:
                for step in range(steps):
                    callback_list.on_train_batch_begin(step)
                    index = order[step * batch_size : (step + 1) * batch_size]
                    xb, yb = x[index], y[index]
                    wb = None if sample_weight is None else sample_weight[index]
                    try:
                        value, y_pred = self.train_step(xb, yb, wb)
                        problem = None if math.isfinite(value) else f"the loss became {value}"
                    except NonFiniteLossError as exc:
                        value, problem = None, str(exc)
                    if problem is not None:
                        if value is not None:
                            # The step was not applied; a callback (TerminateOnNaN) may choose
                            # to end training cleanly instead of the exception below.
                            callback_list.on_train_batch_end(step, {"loss": value})
                            if self.stop_training:
                                total_loss += value * len(index)
                                break
                        raise NonFiniteLossError(
                            f"{method}: {problem} at epoch {epoch + 1}, batch "
                            f"{step + 1} of {steps}; training stopped and the weights are those "
                            "after the last finite step. Lower the learning rate, scale the "
                            "inputs, or check the data and labels"
                        )
                    if metrics is None:
                        metrics = self._metric_objects(yb, y_pred)
                        for m in metrics:
                            m.reset_state()
                    for m in metrics:
                        m.update_state(yb, y_pred)
                    total_loss += value * len(index)
                    if bar is not None:
                        bar.set_postfix_str(
                            f"loss: {total_loss / min(n, (step + 1) * batch_size):.4f}",
                            refresh=False,
                        )
                        bar.update(1)
                    callback_list.on_train_batch_end(step, {"loss": value})
                    if self.stop_training:
                        break
                logs = {"loss": total_loss / min(n, (step + 1) * batch_size)}
                logs.update({m.name: m.result() for m in metrics or []})
                if x_val is not None:
                    callback_list.on_test_begin()
                    val_logs = self._evaluate_arrays(x_val, y_val, batch_size, w_val, callback_list)
                    callback_list.on_test_end(val_logs)
                    logs.update({f"val_{k}": v for k, v in val_logs.items()})
                if bar is not None:
                    bar.set_postfix_str(_format_logs(logs), refresh=False)
            finally:
                if bar is not None:
                    bar.close()
            if verbose == 2:
                print(f"Epoch {epoch + 1}/{epochs} - {_format_logs(logs)}", flush=True)
            callback_list.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        callback_list.on_train_end(logs)  # the last epoch's logs, as Keras passes
        return history

    # ---------------------------------------------------------------- inference
    def _evaluate_arrays(self, x, y, batch_size, sample_weight=None, callbacks=None) -> dict:
        total, metrics = 0.0, None
        with no_grad():
            for batch, start in enumerate(range(0, len(x), batch_size)):
                if callbacks is not None:
                    callbacks.on_test_batch_begin(batch)
                xb, yb = x[start : start + batch_size], y[start : start + batch_size]
                wb = None if sample_weight is None else sample_weight[start : start + batch_size]
                out = self(xb, training=False)
                value = float(self._with_penalties(self.loss(yb, out, wb)).data)
                total += value * len(xb)
                if callbacks is not None:
                    callbacks.on_test_batch_end(batch, {"loss": value})
                if metrics is None:
                    metrics = [
                        metrics_module.get(spec, self.loss, yb.shape, out.shape)
                        for spec in self._metric_specs
                    ]
                for m in metrics:
                    m.update_state(yb, out.data)
        logs = {"loss": total / len(x)}
        logs.update({m.name: m.result() for m in metrics or []})
        return logs

    def evaluate(
        self,
        x=None,
        y=None,
        batch_size: int = 32,
        verbose: int = 1,
        sample_weight=None,
        return_dict: bool = False,
        callbacks=None,
    ):
        """Loss (plus penalties) and metrics on ``(x, y)``, computed without a graph.

        Returns the loss as a float, or ``[loss, *metrics]`` when metrics were compiled (or a
        dict with ``return_dict=True``), like Keras. The loss includes the regularization
        penalties, as in ``fit``; layers run with ``training=False``. ``callbacks`` get the
        ``on_test_*`` events.
        """
        method = f"{self.name}.evaluate"
        self._require_compiled("evaluate")
        batch_size = self._check_positive_int("batch_size", batch_size, method)
        # No whole-array cast: each batch is cast as it is used, so memory does not grow with N.
        x, y, sample_weight = self._check_xy(x, y, method, sample_weight, cast=False)
        callback_list = None
        if callbacks:
            callback_list = CallbackList(callbacks, self, {"verbose": verbose})
            callback_list.on_test_begin()
        logs = self._evaluate_arrays(x, y, batch_size, sample_weight, callback_list)
        if callback_list is not None:
            callback_list.on_test_end(logs)
        if verbose:
            print(_format_logs(logs), flush=True)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size: int = 32, verbose: int = 0, callbacks=None) -> np.ndarray:
        """Outputs for ``x`` as a NumPy array, in batches and without building a graph, so memory
        does not grow with the number of samples. Layers run with ``training=False``;
        ``callbacks`` get the ``on_predict_*`` events."""
        method = f"{self.name}.predict"
        batch_size = self._check_positive_int("batch_size", batch_size, method)
        x = self._check_x(x, method, cast=False)  # each batch is cast as it is used
        callback_list = None
        if callbacks:
            callback_list = CallbackList(callbacks, self, {"verbose": verbose})
            callback_list.on_predict_begin()
        result = None
        bar = _progress_bar(verbose, math.ceil(len(x) / batch_size), "predict")
        try:
            with no_grad():
                if len(x) == 0:
                    return self(x, training=False).data.copy()
                for batch, start in enumerate(range(0, len(x), batch_size)):
                    if callback_list is not None:
                        callback_list.on_predict_batch_begin(batch)
                    chunk = self(x[start : start + batch_size], training=False).data
                    if result is None:  # filled in place: no list of chunks plus a copy
                        result = np.empty((len(x),) + chunk.shape[1:], dtype=chunk.dtype)
                    result[start : start + len(chunk)] = chunk
                    if bar is not None:
                        bar.update(1)
                    if callback_list is not None:
                        callback_list.on_predict_batch_end(batch, {"outputs": chunk})
        finally:
            if bar is not None:
                bar.close()
        if callback_list is not None:
            callback_list.on_predict_end()
        return result

    def predict_on_batch(self, x) -> np.ndarray:
        with no_grad():
            return self(self._check_x(x, f"{self.name}.predict_on_batch"), training=False).numpy()

    # ---------------------------------------------------------------- description
    def _layer_output_shapes(self) -> list[tuple[Layer, tuple]]:
        """(layer, output shape with None batch) for each layer, from a one-sample probe."""
        if self._nodes is None:
            raise NotImplementedError
        rows = [(self._input.layer, self._input.shape)]
        rows += [(node.layer, node.shape) for node in self._nodes[1:]]
        return rows

    def summary(self, print_fn=None) -> None:
        """Print the layers, their output shapes and parameter counts, like Keras."""
        print_fn = print_fn or print
        if not self.built:
            raise ValueError(
                f"{self.name}.summary: this model has not yet been built. Give it an input shape "
                "(ember.layers.Input(shape=...)) or call it on a batch of data first"
            )
        title = "Sequential" if type(self).__name__ == "Sequential" else "Model"
        try:
            rows = [
                (f"{layer.name} ({type(layer).__name__})", str(shape), layer.count_params())
                for layer, shape in self._layer_output_shapes()
            ]
        except NotImplementedError:
            rows = [
                (f"{layer.name} ({type(layer).__name__})", "?", layer.count_params())
                for layer in self._sublayers()
            ]
        widths = (max(34, 2 + max((len(r[0]) for r in rows), default=0)), 26, 12)
        line = "─" * sum(widths)
        out = [
            f'{title}: "{self.name}"',
            line,
            f"{'Layer (type)':<{widths[0]}}{'Output Shape':<{widths[1]}}{'Param #':>{widths[2]}}",
            "═" * sum(widths),
        ]
        for name, shape, count in rows:
            out.append(f"{name:<{widths[0]}}{shape:<{widths[1]}}{count:>{widths[2]},}")
        out.append(line)
        total = self.count_params()
        trainable = int(sum(p.size for p in self.trainable_weights))
        itemsize = self.dtype.itemsize
        out.append(f" Total params: {total:,} ({_human_bytes(total * itemsize)})")
        out.append(f" Trainable params: {trainable:,} ({_human_bytes(trainable * itemsize)})")
        out.append(
            f" Non-trainable params: {total - trainable:,} "
            f"({_human_bytes((total - trainable) * itemsize)})"
        )
        print_fn("\n".join(out))

    # ---------------------------------------------------------------- persistence
    def save(self, path) -> None:
        """Write architecture, weights, compile settings and optimizer state to one file,
        atomically (a crash never leaves a half-written file). Reload with
        :func:`ember.models.load_model`."""
        from ember.models.saving import save_model

        save_model(self, path)

    def save_weights(self, path) -> None:
        from ember.models.saving import save_weights

        save_weights(self, path)

    def load_weights(self, path) -> None:
        """Load weights saved by ``save``/``save_weights``; on any error the model is unchanged."""
        from ember.models.saving import load_weights

        load_weights(self, path)


class Sequential(Model):
    """A plain stack of layers, each feeding the next.

    Example:
        >>> x_train = np.random.rand(100, 64).astype("float32")
        >>> y_train = np.random.randint(0, 10, 100)      # 10 classes
        >>> model = ember.models.Sequential([
        ...     ember.layers.Input(shape=(64,)),
        ...     ember.layers.Dense(32, activation="relu"),
        ...     ember.layers.Dense(10, activation="softmax"),
        ... ])
        >>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
        ...               metrics=["accuracy"])
        >>> history = model.fit(x_train, y_train, epochs=2, validation_split=0.1, verbose=0)
        >>> sorted(history.history)
        ['accuracy', 'loss', 'val_accuracy', 'val_loss']
        >>> model.predict(x_train[:3], verbose=0).shape   # class probabilities
        (3, 10)
    """

    def __init__(self, layers=None, name: str | None = None, **kwargs):
        super().__init__(name=name, **kwargs)
        self._stack: list[Layer] = []
        self._input_layer: InputLayer | None = None
        for layer in layers or []:
            self.add(layer)

    def add(self, layer) -> None:
        """Append a layer (or an ``Input(shape=...)`` to declare the input shape first)."""
        if isinstance(layer, SymbolicTensor) and isinstance(layer.layer, InputLayer):
            if self._stack or self._input_layer is not None:
                raise ValueError(f"{self.name}: Input(...) must come first in a Sequential model")
            self._input_layer = layer.layer
            return
        if isinstance(layer, InputLayer):
            self._input_layer = layer
            return
        if not isinstance(layer, Layer):
            raise TypeError(
                f"{self.name}.add: expected a Layer, got {type(layer).__name__} ({layer!r})"
            )
        self._stack.append(layer)
        if self._input_layer is not None:
            self.build((None,) + self._input_layer.shape)

    @property
    def layers(self) -> list[Layer]:
        return list(self._stack)

    def _sublayers(self) -> list[Layer]:
        return list(self._stack)

    def build(self, input_shape=None) -> None:
        """Create every layer's weights for per-sample inputs of ``input_shape[1:]``."""
        if input_shape is None:
            if self._input_layer is None:
                raise ValueError(f"{self.name}.build needs an input shape")
            input_shape = (None,) + self._input_layer.shape
        probe = Tensor(np.zeros((1,) + tuple(input_shape[1:]), dtype=self.dtype))
        with no_grad(), shape_inference():
            for layer in self._stack:
                probe = layer(probe, training=False)
        self._build_shape = (None,) + tuple(input_shape[1:])
        self.built = bool(self._stack)

    def __call__(self, inputs, training: bool | None = None, **kwargs):
        if not self.built and not isinstance(inputs, SymbolicTensor):
            array = inputs.data if isinstance(inputs, Tensor) else np.asarray(inputs)
            self.build((None,) + array.shape[1:])
        return super().__call__(inputs, training=training, **kwargs)

    def call(self, inputs, training=False):
        if self._input_layer is not None:
            self._input_layer._check_input(inputs)
        for layer in self._stack:
            inputs = layer(inputs, training=training)
        return inputs

    def _layer_output_shapes(self):
        probe = Tensor(np.zeros((1,) + tuple(self._build_shape[1:]), dtype=self.dtype))
        rows = []
        with no_grad(), shape_inference():
            for layer in self._stack:
                probe = layer(probe, training=False)
                rows.append((layer, (None,) + tuple(probe.shape[1:])))
        return rows

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "input_shape": None if self._build_shape is None else list(self._build_shape[1:]),
            "layers": [
                {"class_name": type(l).__name__, "config": l.get_config()} for l in self._stack
            ],
        }


def _progress_bar(verbose: int, total: int, desc: str):
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


def _format_logs(logs: dict) -> str:
    return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())


def _human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return f"{n:.2f} GB"
