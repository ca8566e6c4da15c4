"""One browser tab's experiment: its data, its Ember model, and the thread that trains it.

A :class:`TrainingSession` owns a background thread, and only that thread touches the model:
the server (or a test) sends it commands -- configure, play, pause, step, reset, save -- through
a queue, and it reports back through a ``publish`` callback with plain dicts (``"ready"`` after a
new configuration, ``"state"`` snapshots, ``"error"`` messages). While playing, snapshots are
published at most every :data:`MIN_PUBLISH_INTERVAL` seconds however fast the batches go, so a
fast model never floods the page; a step or pause publishes at once.

The session also draws backpropagation for its model, one node at a time
(:meth:`TrainingSession.request_backprop`, :meth:`TrainingSession.backprop`): on the first few
training samples, with the current weights, on the training thread between two batches and
without side effects, so the training goes on exactly as it would have.
"""

from __future__ import annotations

import base64
import concurrent.futures
import math
import os
import queue
import secrets
import tempfile
import threading
import time
from collections.abc import Callable

import numpy as np

import ember
from ember.diagnostics import diagnose
from ember.graph_drawing import backprop_steps
from ember.tensor import no_grad

from .config import PlaygroundConfig
from .recipe import EXTENT, build_model, feature_matrix, grid_points, make_data, python_code

__all__ = [
    "TrainingSession",
    "MIN_PUBLISH_INTERVAL",
    "BOUNDARY_GRID",
    "THUMBNAIL_STRIDE",
    "MAX_CURVE_POINTS",
    "MAX_EPOCHS",
    "DIGIT_SAMPLES",
    "MAX_PENDING_COMMANDS",
    "HEALTH_SAMPLES",
    "MAX_UPDATE_RATIO",
    "BACKPROP_SAMPLES",
    "MAX_BACKPROP_SAMPLES",
    "MAX_BACKPROP_NODES",
    "MAX_BACKPROP_BYTES",
    "MIN_BACKPROP_INTERVAL",
]

MIN_PUBLISH_INTERVAL = 0.1
"""Seconds between two snapshots while playing (at most 10 per second reach the page)."""
BOUNDARY_GRID = 40
"""The decision boundary is evaluated on a BOUNDARY_GRID × BOUNDARY_GRID grid of the plane."""
THUMBNAIL_STRIDE = 2
"""Neuron thumbnails take every THUMBNAIL_STRIDE-th grid point (20 × 20 pixels)."""
MAX_CURVE_POINTS = 300
"""Loss curves and gradient-norm histories are thinned to at most this many points."""
MAX_EPOCHS = 10_000
"""Playing pauses by itself after this many epochs, so a forgotten tab stops using the CPU."""
DIGIT_SAMPLES = 24
"""How many test digits the page shows with their predicted labels."""
HEALTH_SAMPLES = 256
"""Training samples :func:`ember.diagnostics.diagnose` looks at for the gradient-health words."""
MAX_UPDATE_RATIO = 0.1
"""Update-to-weight ratio above which the words say the learning rate is too high. Looser than
``diagnose``'s default (0.01, a rule of thumb for large networks): the playground's small nets
train well, and quickly, with steps of a few percent of their weights."""
MAX_PENDING_COMMANDS = 100
"""Commands waiting for the training thread; more are refused (a page sending step after step
faster than they train cannot queue up minutes of work that pause would have to wait for)."""

BACKPROP_SAMPLES = 4
"""Training samples (the first ones) the backprop step-through runs on, unless asked otherwise."""
MAX_BACKPROP_SAMPLES = 16
"""Most samples a step-through may ask for (the graph is the same; tiny tensors show values)."""
MAX_BACKPROP_NODES = 300
"""Largest graph (nodes, weights and inputs included) drawn step by step; one frame per node,
each drawing the whole graph, so the pictures grow with the square of this. The playground's
largest nets (6 hidden layers with a penalty) have about 70."""
MAX_BACKPROP_BYTES = 12_000_000
"""Most characters of SVG (all frames together) one step-through may send to a page."""
MIN_BACKPROP_INTERVAL = 1.0
"""Seconds between two step-through requests of one page (each costs up to a fraction of a
second of the training thread, and megabytes on the socket)."""

# Ember's weight initializers draw from one process-wide generator, which build_model seeds and
# diagnose saves and restores: one session at a time, or one session's build would draw from
# another's state.
_RNG_LOCK = threading.Lock()
# The worst finding first: the verdict shown next to the words.
_VERDICTS = {
    "exploding": "exploding",
    "vanishing": "vanishing",
    "learning_rate_too_high": "learning rate too high",
    "dead_relu": "dead ReLUs",
    "saturation": "saturated units",
}


class _TrainingError(RuntimeError):
    """Training cannot go on (the loss or a gradient stopped being finite)."""


class _Refused(ValueError):
    """A request refused on the training thread that leaves the training as it was (playing
    goes on): the page gets an error message naming the command in ``"about"``."""


def _b64(values: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(values, dtype=np.uint8).tobytes()).decode()


def _signed_bytes(values: np.ndarray) -> tuple[str, float]:
    """Values scaled by their largest magnitude into bytes (127.5 is zero), and that scale."""
    scale = float(np.max(np.abs(values))) if values.size else 0.0
    if not (scale > 0 and math.isfinite(scale)):  # all zero, or NaN/inf after a blow-up
        return _b64(np.full(values.shape, 128)), 0.0
    return _b64(np.round(np.clip(values / scale, -1, 1) * 127.5 + 127.5)), scale


class TrainingSession:
    """The model, data and training thread of one playground tab.

    Every method returns at once except :meth:`state`, :meth:`save_model`, :meth:`backprop`
    and :meth:`close`, which wait for the thread (with a timeout). ``publish`` is called from
    the training thread with each message (a dict with a ``"type"``); it must not block.

    Example:
        >>> from ember.playground import PlaygroundConfig, TrainingSession
        >>> session = TrainingSession(PlaygroundConfig.from_dict({"samples": 100}))
        >>> before = session.state()["test_loss"]
        >>> session.step("epoch")
        >>> after = session.state()
        >>> after["step"], after["test_loss"] < before
        (4, True)
        >>> session.close()
    """

    def __init__(
        self,
        config: PlaygroundConfig | None = None,
        publish: Callable[[dict], None] | None = None,
        min_interval: float = MIN_PUBLISH_INTERVAL,
    ):
        if config is not None and not isinstance(config, PlaygroundConfig):
            raise TypeError(
                f"TrainingSession: config must be a PlaygroundConfig or None, got "
                f"{type(config).__name__}"
            )
        self.id = secrets.token_urlsafe(12)
        self._publish_fn = publish
        self._min_interval = float(min_interval)
        self._commands: queue.Queue = queue.Queue(MAX_PENDING_COMMANDS)
        self._run_state: _Run | None = None
        self._playing = False
        self._closing = False
        self._play_started = 0
        self._last_publish = 0.0
        self._backprop_pending = False
        self._last_backprop = -math.inf
        self._thread = threading.Thread(
            target=self._loop, name=f"ember-playground-{self.id}", daemon=True
        )
        self._thread.start()
        if config is not None:
            self.configure(config)

    # ------------------------------------------------------------------ commands (any thread)
    def configure(self, config: PlaygroundConfig) -> None:
        """Build fresh data and a fresh model for ``config`` (pauses; publishes ``"ready"``)."""
        if not isinstance(config, PlaygroundConfig):
            raise TypeError(
                f"TrainingSession.configure: config must be a PlaygroundConfig, got "
                f"{type(config).__name__}"
            )
        self._send("configure", config)

    def play(self) -> None:
        """Train batch after batch until :meth:`pause`."""
        self._send("play")

    def pause(self) -> None:
        """Stop after the current batch."""
        self._send("pause")

    def step(self, unit: str = "batch") -> None:
        """Pause, then train one batch (``unit="batch"``) or up to the end of the epoch
        (``"epoch"``)."""
        if unit not in ("batch", "epoch"):
            raise ValueError(f"TrainingSession.step: unit must be 'batch' or 'epoch', got {unit!r}")
        self._send("step", unit)

    def reset(self) -> None:
        """Back to the initial weights of the current config (same seed, same start)."""
        self._send("reset")

    def state(self, timeout: float = 30.0) -> dict:
        """A fresh ``"state"`` snapshot (waits for the current batch to finish)."""
        return self._ask("state", timeout)

    def request_backprop(self, samples: int = BACKPROP_SAMPLES) -> None:
        """Ask for the backprop step-through of the current weights (see :meth:`backprop`); it
        is published as a ``"backprop"`` message, or an ``"error"`` with ``"about":
        "backprop"``. For pages: one request at a time, at most one per
        :data:`MIN_BACKPROP_INTERVAL` seconds; more raise ``RuntimeError``."""
        _check_samples(samples, "TrainingSession.request_backprop")
        if self._backprop_pending:
            raise RuntimeError(
                "TrainingSession.request_backprop: the previous step-through is still being "
                "drawn; wait for it"
            )
        now = time.monotonic()
        if now - self._last_backprop < MIN_BACKPROP_INTERVAL:
            raise RuntimeError(
                f"TrainingSession.request_backprop: at most one step-through per "
                f"{MIN_BACKPROP_INTERVAL:g} s (MIN_BACKPROP_INTERVAL); try again in a moment"
            )
        self._backprop_pending, self._last_backprop = True, now
        try:
            self._send("backprop", samples)
        except RuntimeError:
            self._backprop_pending = False
            raise

    def backprop(self, samples: int = BACKPROP_SAMPLES, timeout: float = 30.0) -> dict:
        """Backpropagation through the model's loss on the first ``samples`` training samples,
        with the current weights, one SVG frame per graph node
        (:func:`ember.graph_drawing.backprop_steps`), as the ``"backprop"`` message: ``frames``,
        ``nodes`` (their number), ``loss``, ``samples``, ``labels``, ``step``, ``epoch`` and
        ``query``. Waits for the current batch; the training is left exactly as it was (no
        ``.grad``, optimizer or random-generator change). Raises ``ValueError`` if the graph has
        more than :data:`MAX_BACKPROP_NODES` nodes or the frames more than
        :data:`MAX_BACKPROP_BYTES` characters.

        Example:
            >>> from ember.playground import PlaygroundConfig, TrainingSession
            >>> session = TrainingSession(PlaygroundConfig.from_dict({"hidden_layers": [3]}))
            >>> steps = session.backprop(samples=2)
            >>> steps["nodes"], len(steps["frames"]), steps["frames"][0].startswith("<svg")
            (11, 11, True)
            >>> session.close()
        """
        _check_samples(samples, "TrainingSession.backprop")
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._send("backprop", samples, future)
        return future.result(timeout)

    def save_model(self, timeout: float = 30.0) -> bytes:
        """The current model as the bytes of an Ember file (``ember.models.load_model``)."""
        return self._ask("save", timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread and drop the model; idempotent."""
        # The flag makes the thread stop after its current command, ahead of any queued ones;
        # the message wakes it if it is waiting.
        self._closing = True
        if self._thread.is_alive():
            try:
                self._commands.put_nowait(("close", None, None))
            except queue.Full:  # then the thread is busy and will see the flag
                pass
            self._thread.join(timeout)

    @property
    def closed(self) -> bool:
        """True once the training thread has stopped."""
        return not self._thread.is_alive()

    def _send(self, name: str, argument: object = None, future=None) -> None:
        if self.closed:
            raise RuntimeError(f"TrainingSession.{name}: the session is closed")
        try:
            self._commands.put_nowait((name, argument, future))
        except queue.Full:
            raise RuntimeError(
                f"TrainingSession.{name}: {MAX_PENDING_COMMANDS} commands are already waiting "
                "(MAX_PENDING_COMMANDS); wait for them to finish"
            ) from None

    def _ask(self, name: str, timeout: float):
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._send(name, None, future)
        return future.result(timeout)

    # ------------------------------------------------------------------ the training thread
    def _loop(self) -> None:
        # A diverging model overflows: that is reported in words, not as NumPy warnings.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            self._serve_commands()
        self._run_state = None
        # Questions that came in while closing get an answer, not a wait for their timeout.
        while True:
            try:
                name, _, future = self._commands.get_nowait()
            except queue.Empty:
                break
            if future is not None:
                future.set_exception(RuntimeError(f"TrainingSession.{name}: the session closed"))

    def _serve_commands(self) -> None:
        while True:
            try:
                # Block while idle; while playing only look for a waiting command.
                name, argument, future = self._commands.get(block=not self._playing)
            except queue.Empty:
                name, argument, future = "train", None, None
            if name == "close" or self._closing:
                if future is not None:
                    future.set_exception(RuntimeError(f"TrainingSession.{name}: closed"))
                break
            try:
                result = self._handle(name, argument)
                if future is not None:
                    future.set_result(result)
                elif isinstance(result, dict):  # a message asked for by a page
                    self._emit(result)
            except _Refused as exc:  # nothing changed: training goes on as it was
                if future is not None:
                    future.set_exception(exc)
                else:
                    self._emit({"type": "error", "message": str(exc), "about": name})
            except Exception as exc:  # the thread must survive anything a command raises
                self._playing = False
                if future is not None:
                    future.set_exception(exc)
                else:
                    self._emit({"type": "error", "message": _describe(name, exc)})
                    self._emit_state_quietly()

    def _handle(self, name: str, argument: object):
        if name == "configure":
            self._playing = False
            self._start_run(argument)
            return None
        if name == "backprop":
            return self._backprop(argument)
        run = self._require_run(name)
        if name == "reset":
            self._playing = False
            self._start_run(run.config)
        elif name == "play":
            self._playing = True
            self._play_started = run.epoch
            self._emit(run.snapshot(True))
        elif name == "pause":
            self._playing = False
            self._emit(run.snapshot(False))
        elif name == "step":
            self._playing = False
            run.train_batch()
            while argument == "epoch" and run.cursor != 0:
                run.train_batch()
            self._emit(run.snapshot(False))
        elif name == "train":
            self._train_while_playing(run)
        elif name == "state":
            return run.snapshot(self._playing)
        elif name == "save":
            return run.model_bytes()
        else:
            raise ValueError(f"unknown command {name!r}")
        return None

    def _backprop(self, samples: int) -> dict:
        """The step-through message; whatever goes wrong is refused without stopping play."""
        try:
            return self._require_run("backprop").backprop_message(samples)
        except _Refused:
            raise
        except ValueError as exc:  # no configuration yet
            raise _Refused(str(exc)) from exc
        except Exception as exc:  # a drawing that fails must not stop the training
            raise _Refused(f"backprop failed: {type(exc).__name__}: {exc}") from exc
        finally:  # before the answer goes out: the page may ask again as soon as it has it
            self._backprop_pending = False

    def _require_run(self, command: str) -> _Run:
        if self._run_state is None:
            raise ValueError(f"cannot {command} before a configuration is chosen")
        return self._run_state

    def _start_run(self, config: PlaygroundConfig) -> None:
        run = _Run(config)  # if this fails, the previous run stays as it was
        self._run_state = run
        self._emit(run.ready_message())
        self._emit(run.snapshot(False))

    def _train_while_playing(self, run: _Run) -> None:
        run.train_batch()
        if run.epoch - self._play_started >= MAX_EPOCHS:
            self._playing = False
            self._emit({"type": "error", "message": f"paused after {MAX_EPOCHS} epochs of play "
                        "(MAX_EPOCHS); press play to go on"})
            self._emit(run.snapshot(False))
        elif time.monotonic() - self._last_publish >= self._min_interval:
            self._emit(run.snapshot(True))

    def _emit_state_quietly(self) -> None:
        """After an error: the page's picture shows paused (a failing snapshot is dropped)."""
        try:
            if self._run_state is not None:
                self._emit(self._run_state.snapshot(False))
        except Exception:  # the error message already went out; nothing more to say
            pass

    def _emit(self, message: dict) -> None:
        if message.get("type") == "state":
            self._last_publish = time.monotonic()
        if self._publish_fn is not None:
            self._publish_fn(message)


def _check_samples(samples: object, caller: str) -> None:
    if (isinstance(samples, bool) or not isinstance(samples, int)
            or not 1 <= samples <= MAX_BACKPROP_SAMPLES):
        raise ValueError(
            f"{caller}: samples must be an integer from 1 to {MAX_BACKPROP_SAMPLES} "
            f"(MAX_BACKPROP_SAMPLES), got {samples!r}"
        )


def _graph_size(tensor, limit: int) -> int:
    """The number of nodes of the graph behind ``tensor``, counting no further than
    ``limit + 1`` (a huge graph is refused without being walked to the end)."""
    seen, stack = {id(tensor)}, [tensor]
    while stack and len(seen) <= limit:
        for parent in stack.pop()._parents:
            if id(parent) not in seen:
                seen.add(id(parent))
                stack.append(parent)
    return len(seen)


def _describe(command: str, exc: Exception) -> str:
    if isinstance(exc, _TrainingError):
        return f"training paused: {exc}"
    if isinstance(exc, ValueError):  # a refused command: its message says why
        return str(exc)
    return f"{command} failed: {type(exc).__name__}: {exc}"


class _Run:
    """One configuration's data, model and training progress (used by the training thread)."""

    def __init__(self, config: PlaygroundConfig):
        self.config = config
        self.data = make_data(config)
        n_inputs = self.data.x_train.shape[1]
        with _RNG_LOCK:
            saved = ember.get_rng_state()
            try:
                self.model = build_model(config, n_inputs, self.data.n_classes)
            finally:
                ember.set_rng_state(saved)  # other users of the generator are not disturbed
        self.dense = list(self.model.layers)
        self.variables = list(self.model.trainable_weights)
        self.groups = [
            [i for i, v in enumerate(self.variables) if any(v is w for w in layer.weights)]
            for layer in self.dense
        ]
        self.rng = np.random.default_rng(config.seed)
        self.batch_size = min(config.batch_size, len(self.data.y_train))
        self.batches = -(-len(self.data.y_train) // self.batch_size)
        self.order = self.rng.permutation(len(self.data.y_train))
        self.cursor = 0
        self.step = 0
        self.epoch = 0
        self.curve: dict[str, list[float]] = {"epoch": [], "train": [], "test": []}
        self.grad_history: list[list[float]] = [[] for _ in self.dense]
        self.grad_norms = [0.0] * len(self.dense)
        self.update_ratios = [0.0] * len(self.dense)
        self.grid_inputs = feature_matrix(grid_points(BOUNDARY_GRID), config.features)
        self._recorded_step = -1

    # ------------------------------------------------------------------ training
    def train_batch(self) -> None:
        """One optimizer step on the next batch, recording per-layer gradient norms."""
        n = len(self.data.y_train)
        index = self.order[self.cursor : self.cursor + self.batch_size]
        x, y = self.data.x_train[index], self.data.y_train[index]
        y_pred = self.model(x, training=True)
        loss = self.model.compute_loss(x, y, y_pred, training=True)
        value = float(loss.data)
        if not math.isfinite(value):
            raise _TrainingError(
                f"the loss became {value} at step {self.step}; lower the learning rate and reset"
            )
        grads = ember.grad(loss, self.variables)
        before = [v.numpy().copy() for v in self.variables]
        self.model.optimizer.apply(grads, self.variables)
        self._record_gradients(grads, before)
        self.step += 1
        self.cursor += self.batch_size
        if self.cursor >= n:
            self.cursor = 0
            self.epoch += 1
            self.order = self.rng.permutation(n)

    def _record_gradients(self, grads: list, before: list) -> None:
        for k, indices in enumerate(self.groups):
            g2 = sum(float(np.sum(np.square(grads[i], dtype=np.float64))) for i in indices)
            w2 = sum(float(np.sum(np.square(before[i], dtype=np.float64))) for i in indices)
            d2 = sum(
                float(np.sum(np.square(self.variables[i].numpy() - before[i], dtype=np.float64)))
                for i in indices
            )
            self.grad_norms[k] = math.sqrt(g2)
            self.update_ratios[k] = math.sqrt(d2) / math.sqrt(w2) if w2 > 0 else 0.0

    # ------------------------------------------------------------------ messages
    def ready_message(self) -> dict:
        """Sent once per configuration: the config, its URL form, the data points, the input
        features' thumbnails and the network's shape."""
        config, data = self.config, self.data
        message = {
            "type": "ready",
            "config": config.to_dict(),
            "query": config.to_query(),
            "layer_sizes": [data.x_train.shape[1], *(layer.units for layer in self.dense)],
            "layer_names": [layer.name for layer in self.dense],
            "batches_per_epoch": self.batches,
            "n_train": len(data.y_train),
            "n_test": len(data.y_test),
            "extent": EXTENT,
        }
        if config.is_2d:
            message["points"] = {
                "train": _points(data.points_train, data.y_train),
                "test": _points(data.points_test, data.y_test),
            }
            message["inputs"] = [
                {"name": name, **_thumbnail(self.grid_inputs[:, j])}
                for j, name in enumerate(config.features)
            ]
        else:
            images = data.x_test[:DIGIT_SAMPLES] * 255.0
            message["digits"] = {"images": _b64(np.round(images)), "labels":
                                 data.y_test[:DIGIT_SAMPLES].tolist()}
            message["inputs"] = [{"name": "64 pixels"}]
        return message

    def snapshot(self, playing: bool) -> dict:
        """The live picture: losses, curves, boundary, neurons, weights, gradient health."""
        with no_grad():
            train = self._evaluate(self.data.x_train, self.data.y_train)
            test = self._evaluate(self.data.x_test, self.data.y_test)
            pictures = self._pictures()
        health = self._health()  # differentiates: outside no_grad
        self._record_curve(train[0], test[0])
        return {
            "type": "state",
            "playing": playing,
            "step": self.step,
            "epoch": self.epoch + self.cursor / max(len(self.data.y_train), 1),
            "train_loss": train[0],
            "test_loss": test[0],
            "train_accuracy": train[1],
            "test_accuracy": test[1],
            "curve": {key: list(values) for key, values in self.curve.items()},  # a copy
            **pictures,
            "weights": [
                {"kernel": _rounded(layer.kernel.numpy()), "bias": _rounded(layer.bias.numpy())}
                for layer in self.dense
            ],
            "gradients": {
                "norms": list(self.grad_norms),
                "update_ratios": list(self.update_ratios),
                "history": [list(h) for h in self.grad_history],
                **health,
            },
            # The code retrains for as many epochs as this run has (begun to) train.
            "code": python_code(self.config, epochs=max(1, -(-self.step // self.batches))),
        }

    def _health(self) -> dict:
        """``verdict`` and ``words`` from :func:`ember.diagnostics.diagnose` on the first
        training samples (gradient norms by layer, update sizes, dead and saturated units)."""
        x = self.data.x_train[:HEALTH_SAMPLES]
        y = self.data.y_train[:HEALTH_SAMPLES]
        try:
            with _RNG_LOCK:
                report = diagnose(self.model, x, y, max_update_ratio=MAX_UPDATE_RATIO)
        except Exception as exc:  # a diverged model: the error message already says why
            return {"verdict": "unknown", "words": [f"no diagnosis: {exc}"]}
        kind = next((k for k in _VERDICTS if report.flags.get(k)), None)
        if kind is None:
            norms = [r.grad_norm for r in report.layers if r.grad_norm is not None]
            words = [f"No layer is flagged: gradient norms from {min(norms):.2g} to "
                     f"{max(norms):.2g}, updates moderate."] if norms else []
            return {"verdict": "healthy", "words": words}
        return {"verdict": _VERDICTS[kind], "words": list(report.findings)}

    def _evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """(data loss, accuracy) over a whole set; the loss leaves out the weight penalty."""
        y_pred = self.model(x)
        loss = float(self.model.loss(y, y_pred).data)
        p = y_pred.numpy()
        predicted = (p[:, 0] > 0.5).astype(np.int64) if p.shape[1] == 1 else p.argmax(axis=1)
        return loss, float(np.mean(predicted == y))

    def _pictures(self) -> dict:
        """Each layer's outputs: over the plane (2-D sets) or per digit class (digits)."""
        if self.config.is_2d:
            outputs = self._layer_outputs(self.grid_inputs)
            side = BOUNDARY_GRID
            neurons = []
            for out in outputs:
                small = out.reshape(side, side, -1)[::THUMBNAIL_STRIDE, ::THUMBNAIL_STRIDE]
                neurons.append([_thumbnail(small[..., j]) for j in range(out.shape[1])])
            boundary = np.round(np.clip(np.nan_to_num(outputs[-1][:, 0], nan=0.5), 0, 1) * 255)
            return {"boundary": _b64(boundary), "grid": side, "neurons": neurons}
        outputs = self._layer_outputs(self.data.x_test)
        labels = self.data.y_test
        neurons = []
        for out in outputs:
            means = np.stack([out[labels == c].mean(axis=0) for c in range(10)], axis=1)
            neurons.append([_thumbnail(row) for row in means])
        predictions = outputs[-1][:DIGIT_SAMPLES].argmax(axis=1).tolist()
        return {"boundary": None, "neurons": neurons, "predictions": predictions}

    def _layer_outputs(self, x: np.ndarray) -> list[np.ndarray]:
        outputs, h = [], x
        for layer in self.dense:
            h = layer(h)
            outputs.append(h.numpy())
        return outputs

    def _record_curve(self, train_loss: float, test_loss: float) -> None:
        if self.step == self._recorded_step:
            return
        self._recorded_step = self.step
        epoch = self.epoch + self.cursor / max(len(self.data.y_train), 1)
        for key, value in (("epoch", epoch), ("train", train_loss), ("test", test_loss)):
            self.curve[key].append(round(float(value), 6))
        for k, norm in enumerate(self.grad_norms):
            self.grad_history[k].append(float(f"{norm:.4g}"))
        if len(self.curve["epoch"]) > MAX_CURVE_POINTS:
            # Keep every other point (and always the latest): the curve keeps its shape.
            for key in self.curve:
                self.curve[key] = self.curve[key][-1::-2][::-1]
            self.grad_history = [h[-1::-2][::-1] for h in self.grad_history]

    # ------------------------------------------------------------------ backprop step-through
    def backprop_message(self, samples: int) -> dict:
        """The ``"backprop"`` message: the frames of backpropagation through the training loss
        (penalties included, as in :meth:`train_batch`) on the first ``samples`` training
        samples, with the current weights. Nothing the training uses changes: the engine's
        gradients come from ``ember.grad`` (no ``.grad``, no optimizer step), the data order
        is not drawn from, and Ember's generator is restored after the forward pass."""
        n = min(samples, len(self.data.y_train))
        x, y = self.data.x_train[:n], self.data.y_train[:n]
        with _RNG_LOCK:
            saved = ember.get_rng_state()
            try:
                y_pred = self.model(x, training=True)
                loss = self.model.compute_loss(x, y, y_pred, training=True)
            finally:
                ember.set_rng_state(saved)
        value = float(loss.data)
        if not math.isfinite(value):
            raise _Refused(
                f"backprop: the loss on the first {n} training samples is {value}; there are "
                "no gradients to follow. Lower the learning rate and reset"
            )
        nodes = _graph_size(loss, MAX_BACKPROP_NODES)
        if nodes > MAX_BACKPROP_NODES:
            raise _Refused(
                f"backprop: this model's loss has a graph of more than {MAX_BACKPROP_NODES} "
                f"nodes (MAX_BACKPROP_NODES); the step-through draws smaller nets: use fewer "
                "hidden layers"
            )
        frames = [str(frame) for frame in backprop_steps(loss, max_nodes=MAX_BACKPROP_NODES)]
        size = sum(len(frame) for frame in frames)
        if size > MAX_BACKPROP_BYTES:
            raise _Refused(
                f"backprop: the {len(frames)} frames of this model would be {size / 1e6:.1f} MB "
                f"of SVG, more than MAX_BACKPROP_BYTES ({MAX_BACKPROP_BYTES / 1e6:g} MB); use "
                "fewer hidden layers"
            )
        return {
            "type": "backprop",
            "frames": frames,
            "nodes": len(frames),
            "loss": value,
            "samples": n,
            "labels": y.tolist(),
            "step": self.step,
            "epoch": self.epoch + self.cursor / max(len(self.data.y_train), 1),
            "query": self.config.to_query(),
        }

    def model_bytes(self) -> bytes:
        """The model written by ``model.save`` (architecture, weights, optimizer state)."""
        with tempfile.TemporaryDirectory(prefix="ember-playground-") as folder:
            path = os.path.join(folder, "playground.ember")
            self.model.save(path)
            with open(path, "rb") as file:
                return file.read()


def _thumbnail(values: np.ndarray) -> dict:
    data, scale = _signed_bytes(np.asarray(values, dtype=np.float64).ravel())
    return {"b64": data, "scale": scale}


def _points(points: np.ndarray, labels: np.ndarray) -> list[list[float]]:
    return [[round(float(a), 3), round(float(b), 3), int(c)] for (a, b), c in zip(points, labels)]


def _rounded(values: np.ndarray) -> list:
    return np.round(values.astype(np.float64), 4).tolist()
