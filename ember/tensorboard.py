"""TensorBoard logging for ``fit``: the :class:`TensorBoard` callback (Keras' name and arguments).

It writes real TensorBoard event files through `tensorboardX
<https://github.com/lanpa/tensorboardX>`_ (a maintained writer that needs neither TensorFlow
nor PyTorch), laid out as Keras lays them out::

    log_dir/train/events.out.tfevents...       epoch_loss, epoch_<metric>, epoch_learning_rate,
                                               batch_<...>, histograms, images, model_summary
    log_dir/validation/events.out.tfevents...  epoch_loss, epoch_<metric> (from val_* logs),
                                               evaluation_<name>_vs_iterations

so ``tensorboard --logdir log_dir`` shows train and validation curves on one chart. It needs the
``tensorboard`` extra (``pip install 'ember[tensorboard]'``: tensorboardX and Pillow); viewing
the files needs the ``tensorboard`` package itself.

Example:
    >>> import os, tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> x, y = np.random.rand(32, 4).astype("float32"), np.random.rand(32, 1).astype("float32")
    >>> model = ember.models.Sequential([ember.layers.Input(shape=(4,)), ember.layers.Dense(1)])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> tb = TensorBoard(log_dir=tmp.name, histogram_freq=1)
    >>> history = model.fit(x, y, epochs=2, validation_split=0.25, callbacks=[tb], verbose=0)
    >>> sorted(os.listdir(tmp.name))
    ['train', 'validation']
    >>> from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    >>> run = EventAccumulator(os.path.join(tmp.name, "train")).Reload()
    >>> sorted(run.Tags()["scalars"])
    ['epoch_learning_rate', 'epoch_loss']
    >>> [event.step for event in run.Scalars("epoch_loss")]
    [0, 1]
    >>> sorted(run.Tags()["histograms"])   # weights, and gradients of each epoch's last step
    ['dense/bias/gradient', 'dense/bias/histogram', 'dense/kernel/gradient', ...]
    >>> tmp.cleanup()
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import time
from collections.abc import Callable

import numpy as np

from ember.callbacks import Callback
from ember.tensor import Tensor

_INSTALL_HINT = "pip install 'ember[tensorboard]' (tensorboardX and Pillow)"
_SUMMARY_TAG = "model_summary"
# tensorboardX names an event file by the second it was opened and the host only: two writers of
# one directory opened in the same second (a fit, then tb.image(...)) would share one file and the
# second would overwrite the first. A per-process counter in the suffix keeps them apart.
_FILE_NUMBERS = itertools.count()


class TensorBoard(Callback):
    """Write TensorBoard event files while ``fit`` runs: scalars, histograms, images, the summary.

    Written to the ``train`` run (``log_dir/train``) unless said otherwise:

    - every epoch (step = epoch index): ``epoch_<key>`` for each key of the epoch logs, and
      ``epoch_learning_rate`` (the optimizer's rate when no callback logged one); the ``val_*``
      keys go to the ``validation`` run without their prefix, so train and validation loss are
      one chart; after each validation pass, ``evaluation_<key>_vs_iterations`` (step = the
      optimizer's step count) in the ``validation`` run, as Keras does;
    - with ``update_freq="batch"`` or an integer ``N``: ``batch_<key>`` every ``N`` batches (step =
      batches trained so far in this ``fit``, from 1; Ember's batch logs are running means over
      the epoch, as Keras');
    - every ``histogram_freq`` epochs (epochs 0, N, 2N...): ``<layer>/<weight>/histogram`` of every
      weight and ``<layer>/<weight>/gradient`` of the gradient that the optimizer applied at that
      epoch's last step;
    - with ``write_images=True``: ``<layer>/<weight>/image``, each weight as a grey-level image
      (min black, max white; a convolution kernel as a grid of filters, one row per input channel,
      one column per output channel), at the histogram epochs (every epoch when
      ``histogram_freq=0``);
    - with ``write_graph=True`` (Ember has no graph in TensorFlow's sense, so this is what it
      stands for): the text of ``model.summary()`` as ``model_summary``, once per ``fit``.

    Files are flushed after every epoch (TensorBoard can watch a run live) and closed when
    training ends. If ``fit`` raises, call :meth:`close` (or reuse the callback: the next ``fit``
    starts cleanly).

    How gradients are seen: ``fit`` never hands them to callbacks, so while training runs the
    callback listens to the model's optimizers (``model.optimizer`` and any optimizer attribute of
    the model, such as a GAN's ``d_optimizer``): every update (``step``, ``apply`` or
    ``apply_gradients``) goes through ``Optimizer._apply_updates``, whose call is wrapped on the
    optimizer instance and restored at the end of training. So the histograms show the gradients
    training really used (before clipping), with no extra forward or backward pass and with any
    ``train_step`` override; they are copied only at the last step of a histogram epoch.

    Args:
        log_dir: the directory of the runs (created when the first event is written).
        histogram_freq: every how many epochs to write weight and gradient histograms; 0 = never.
        write_graph: write the model summary as text.
        write_images: write the weights as images.
        write_steps_per_second: also write ``epoch_steps_per_second`` (and
            ``batch_steps_per_second`` with batch-level logging).
        update_freq: ``"epoch"``, ``"batch"`` (= 1) or an integer N >= 1: batch-level scalars
            every N batches.
        profile_batch, embeddings_freq, embeddings_metadata: accepted for Keras compatibility;
            profiling and the embedding projector are not available (only 0 / ``None``).

    Besides ``fit``'s own logging, :meth:`scalar`, :meth:`histogram`, :meth:`image` and
    :meth:`text` write anything else (generated samples, a custom loss) to the same runs.

    Example:
        >>> import os, tempfile
        >>> tmp = tempfile.TemporaryDirectory()
        >>> x = np.random.rand(64, 8, 8, 1).astype("float32")
        >>> y = np.random.randint(0, 3, 64)
        >>> model = ember.models.Sequential([
        ...     ember.layers.Input(shape=(8, 8, 1)), ember.layers.Conv2D(4, 3),
        ...     ember.layers.Flatten(), ember.layers.Dense(3, activation="softmax")])
        >>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
        ...               metrics=["accuracy"])
        >>> tb = TensorBoard(tmp.name, write_images=True, update_freq="batch")
        >>> _ = model.fit(x, y, batch_size=32, epochs=2, callbacks=[tb], verbose=0)
        >>> tb.image("samples/first", x[0, :, :, 0])   # any array, e.g. generated samples
        >>> tb.close()
        >>> from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        >>> run = EventAccumulator(os.path.join(tmp.name, "train")).Reload()
        >>> sorted(run.Tags()["scalars"])
        ['batch_accuracy', 'batch_loss', 'epoch_accuracy', 'epoch_learning_rate', 'epoch_loss']
        >>> [event.step for event in run.Scalars("batch_loss")]    # 2 batches per epoch
        [1, 2, 3, 4]
        >>> sorted(run.Tags()["images"])
        ['conv2d/bias/image', 'conv2d/kernel/image', 'dense/bias/image', ..., 'samples/first']
        >>> run.Tags()["tensors"]
        ['model_summary/text_summary']
        >>> tmp.cleanup()
    """

    def __init__(
        self,
        log_dir: str | os.PathLike = "logs",
        histogram_freq: int = 0,
        write_graph: bool = True,
        write_images: bool = False,
        write_steps_per_second: bool = False,
        update_freq: str | int = "epoch",
        profile_batch: int = 0,
        embeddings_freq: int = 0,
        embeddings_metadata: str | dict | None = None,
    ):
        super().__init__()
        owner = "TensorBoard"
        if importlib.util.find_spec("tensorboardX") is None:
            raise ImportError(f"{owner}: writing event files needs tensorboardX: {_INSTALL_HINT}")
        if not isinstance(log_dir, (str, os.PathLike)) or not os.fspath(log_dir):
            raise TypeError(f"{owner}: log_dir must be a non-empty path, got {log_dir!r}")
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = _check_count(owner, "histogram_freq", histogram_freq, 0)
        self.write_graph = _check_flag(owner, "write_graph", write_graph)
        self.write_images = _check_flag(owner, "write_images", write_images)
        self.write_steps_per_second = _check_flag(
            owner, "write_steps_per_second", write_steps_per_second
        )
        self.update_freq = _check_update_freq(owner, update_freq)
        for name, value in (("profile_batch", profile_batch), ("embeddings_freq", embeddings_freq)):
            if value not in (0, None):
                raise ValueError(
                    f"{owner}: {name}={value!r} is not supported (Ember has no profiler or "
                    f"embedding projector export); leave {name}=0"
                )
        if embeddings_metadata is not None:
            raise ValueError(
                f"{owner}: embeddings_metadata is not supported (no embedding projector export); "
                f"got {embeddings_metadata!r}"
            )
        self._writers: dict = {}
        self._training = False
        self._hooked: list = []
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._global_batch = 0
        self._epoch_steps = 0
        self._epoch_start = self._batch_start = time.perf_counter()
        self._histogram_epoch = False
        self._capture = False
        self._gradients: dict[int, np.ndarray] = {}
        self._summary_pending = False

    # ---------------------------------------------------------------- writers
    def _writer(self, run: str):
        """The tensorboardX writer of ``log_dir/<run>``, opened at its first use."""
        writer = self._writers.get(run)
        if writer is None:
            from tensorboardX import SummaryWriter  # imported here: `import ember` stays light

            suffix = f".{os.getpid()}.{next(_FILE_NUMBERS):05d}.ember"
            writer = SummaryWriter(logdir=os.path.join(self.log_dir, run), filename_suffix=suffix)
            self._writers[run] = writer
        return writer

    def _flush(self) -> None:
        for writer in self._writers.values():
            writer.flush()

    def close(self) -> None:
        """Flush and close the event files and stop listening to the optimizers (idempotent).

        ``fit`` calls it when training ends; call it yourself after writing with :meth:`scalar`
        and the like outside ``fit``, or after ``fit`` raised.

        Example:
            >>> import tempfile
            >>> tmp = tempfile.TemporaryDirectory()
            >>> tb = TensorBoard(tmp.name)
            >>> tb.scalar("answer", 42.0, step=0)
            >>> tb.close(); tb.close()
            >>> tmp.cleanup()
        """
        self._unhook_optimizers()
        writers, self._writers = self._writers, {}
        for writer in writers.values():
            writer.close()
        self._training = False

    # ---------------------------------------------------------------- public writing helpers
    def scalar(self, tag: str, value, step: int = 0, run: str = "train") -> None:
        """Write one number under ``tag`` at ``step`` in ``log_dir/<run>``.

        Example:
            >>> import tempfile
            >>> tmp = tempfile.TemporaryDirectory()
            >>> tb = TensorBoard(tmp.name)
            >>> for step in range(3):
            ...     tb.scalar("custom/gan_loss", 1.0 / (step + 1), step=step)
            >>> tb.close()
            >>> tmp.cleanup()
        """
        tag, step, run = _check_target("TensorBoard.scalar", tag, step, run)
        number = _scalar_value(value)
        if number is None:
            raise TypeError(
                f"TensorBoard.scalar: value must be a real number, got {type(value).__name__} "
                f"{value!r}"
            )
        self._writer(run).add_scalar(tag, number, step)
        self._flush_outside_fit()

    def histogram(self, tag: str, values, step: int = 0, run: str = "train") -> None:
        """Write the histogram of an array's finite values under ``tag`` at ``step``.

        Example:
            >>> import tempfile
            >>> tmp = tempfile.TemporaryDirectory()
            >>> tb = TensorBoard(tmp.name)
            >>> tb.histogram("codes", np.random.randn(1000), step=0)
            >>> tb.close()
            >>> tmp.cleanup()
        """
        tag, step, run = _check_target("TensorBoard.histogram", tag, step, run)
        array = _numeric_array("TensorBoard.histogram", "values", values)
        if not self._write_histogram(self._writer(run), tag, array, step):
            raise ValueError(
                f"TensorBoard.histogram: values must contain at least one finite number, got "
                f"an array of shape {array.shape}"
            )
        self._flush_outside_fit()

    def image(self, tag: str, data, step: int = 0, run: str = "train") -> None:
        """Write one image under ``tag`` at ``step``.

        ``data`` is ``(height, width)`` (grey levels) or ``(height, width, channels)`` with 1,
        3 (RGB) or 4 (RGBA) channels: ``uint8`` in [0, 255], or floats in [0, 1] (TensorFlow's
        convention; values outside are clipped).

        Example:
            >>> import tempfile
            >>> tmp = tempfile.TemporaryDirectory()
            >>> tb = TensorBoard(tmp.name)
            >>> gradient = np.tile(np.linspace(0.0, 1.0, 32), (16, 1))   # 16 x 32, black to white
            >>> tb.image("ramp", gradient)
            >>> tb.close()
            >>> tmp.cleanup()
        """
        tag, step, run = _check_target("TensorBoard.image", tag, step, run)
        pixels = _image_pixels("TensorBoard.image", data)
        self._writer(run).add_image(tag, pixels, step, dataformats="HWC")
        self._flush_outside_fit()

    def text(self, tag: str, text: str, step: int = 0, run: str = "train") -> None:
        """Write a text (Markdown, as TensorBoard renders it) under ``tag`` at ``step``; the
        stored tag is ``<tag>/text_summary`` (tensorboardX's suffix).

        Example:
            >>> import tempfile
            >>> tmp = tempfile.TemporaryDirectory()
            >>> tb = TensorBoard(tmp.name)
            >>> tb.text("notes", "learning rate **1e-3**, batch 32")
            >>> tb.close()
            >>> tmp.cleanup()
        """
        tag, step, run = _check_target("TensorBoard.text", tag, step, run)
        if not isinstance(text, str):
            raise TypeError(f"TensorBoard.text: text must be a str, got {type(text).__name__}")
        self._writer(run).add_text(tag, text, step)
        self._flush_outside_fit()

    def _flush_outside_fit(self) -> None:
        # During fit, the epoch end flushes; outside, a write must reach the disk by itself.
        if not self._training:
            self._flush()

    # ---------------------------------------------------------------- fit's hooks
    def on_train_begin(self, logs=None):
        self.close()  # a previous fit that raised left files open and optimizers hooked
        self._reset_counters()
        self._training = True
        if self.histogram_freq:
            self._hook_optimizers()
        if self.write_graph:
            # An unbuilt model (a subclassed one before its first call) has no shapes and
            # weights yet: its summary is written after the first batch.
            self._summary_pending = True
            if getattr(self.model, "built", False):
                self._write_summary()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()
        self._epoch_steps = 0
        self._histogram_epoch = bool(self.histogram_freq) and epoch % self.histogram_freq == 0
        self._gradients = {}

    def on_train_batch_begin(self, batch, logs=None):
        self._global_batch += 1
        self._batch_start = time.perf_counter()
        steps = self.params.get("steps")
        # Copy gradients at the epoch's last step only, when the number of steps is known.
        self._capture = self._histogram_epoch and (steps is None or batch == steps - 1)

    def on_train_batch_end(self, batch, logs=None):
        self._epoch_steps += 1
        if self._summary_pending:
            self._write_summary()
        if self.update_freq == "epoch" or self._global_batch % self.update_freq:
            return
        writer, step = self._writer("train"), self._global_batch
        if self.write_steps_per_second:
            elapsed = time.perf_counter() - self._batch_start
            writer.add_scalar("batch_steps_per_second", 1.0 / max(elapsed, 1e-9), step)
        for name, value in _scalars(logs).items():
            writer.add_scalar(f"batch_{name}", value, step)

    def on_test_end(self, logs=None):
        iterations = getattr(getattr(self.model, "optimizer", None), "iterations", None)
        if iterations is None:
            return
        writer = self._writer("validation")
        for name, value in _scalars(logs).items():
            writer.add_scalar(f"evaluation_{name}_vs_iterations", value, int(iterations))
        if not self._training:  # evaluate(callbacks=[tb]) outside fit: nothing else will close
            self.close()

    def on_epoch_end(self, epoch, logs=None):
        self._write_epoch_scalars(epoch, logs or {})
        if self._histogram_epoch:
            self._write_histograms(epoch)
        if self.write_images and (self._histogram_epoch or not self.histogram_freq):
            self._write_weight_images(epoch)
        self._flush()

    def on_train_end(self, logs=None):
        self.close()

    # ---------------------------------------------------------------- what is written
    def _write_summary(self) -> None:
        self._summary_pending = False
        lines: list[str] = []
        self.model.summary(print_fn=lines.append)
        # Indented by four spaces: a Markdown code block, so TensorBoard keeps the columns.
        body = "\n".join("    " + line for text in lines for line in text.splitlines())
        self._writer("train").add_text(_SUMMARY_TAG, body, 0)

    def _write_epoch_scalars(self, epoch: int, logs: dict) -> None:
        values = _scalars(logs)
        train = {k: v for k, v in values.items() if not k.startswith("val_")}
        validation = {k[4:]: v for k, v in values.items() if k.startswith("val_")}
        if "learning_rate" not in train:
            rate = _scalar_value(getattr(getattr(self.model, "optimizer", None),
                                         "learning_rate", None))
            if rate is not None:
                train["learning_rate"] = rate
        if self.write_steps_per_second:
            elapsed = time.perf_counter() - self._epoch_start
            train["steps_per_second"] = self._epoch_steps / max(elapsed, 1e-9)
        for run, scalars in (("train", train), ("validation", validation)):
            if scalars:
                writer = self._writer(run)
                for name, value in scalars.items():
                    writer.add_scalar(f"epoch_{name}", value, epoch)

    def _write_histograms(self, epoch: int) -> None:
        writer = self._writer("train")
        for tag, weight in _named_weights(self.model):
            self._write_histogram(writer, f"{tag}/histogram", weight.data, epoch)
            gradient = self._gradients.get(id(weight))
            if gradient is not None:
                self._write_histogram(writer, f"{tag}/gradient", gradient, epoch)
        self._gradients = {}

    @staticmethod
    def _write_histogram(writer, tag: str, values: np.ndarray, step: int) -> bool:
        """Histogram of the finite entries (a NaN has no bucket); False when there are none."""
        flat = np.asarray(values, dtype=np.float64).reshape(-1)
        if not np.isfinite(flat).all():
            flat = flat[np.isfinite(flat)]
        if flat.size == 0:
            return False
        writer.add_histogram(tag, flat, step)
        return True

    def _write_weight_images(self, epoch: int) -> None:
        writer = self._writer("train")
        for tag, weight in _named_weights(self.model):
            pixels = weight_image(weight.data)
            if pixels is not None:
                writer.add_image(f"{tag}/image", pixels, epoch, dataformats="HWC")

    # ---------------------------------------------------------------- gradients
    def _optimizers(self) -> list:
        """``model.optimizer`` and the optimizers held as attributes of the model, each once."""
        from ember.optimizers import Optimizer

        found: list = []
        candidates = [getattr(self.model, "optimizer", None), *vars(self.model).values()]
        for candidate in candidates:
            if isinstance(candidate, Optimizer) and all(candidate is not o for o in found):
                found.append(candidate)
        return found

    def _hook_optimizers(self) -> None:
        for optimizer in self._optimizers():
            _add_update_listener(optimizer, self._on_update)
            self._hooked.append(optimizer)

    def _unhook_optimizers(self) -> None:
        hooked, self._hooked = self._hooked, []
        for optimizer in hooked:
            _remove_update_listener(optimizer, self._on_update)

    def _on_update(self, entries: list) -> None:
        """Called with an optimizer's ``(param, state, gradient)`` entries before it updates."""
        if not self._capture:
            return
        for param, _state, gradient in entries:
            if gradient is not None:
                # A copy: the gradient buffer may be reused or changed once the step is done.
                self._gradients[id(param)] = np.array(gradient, copy=True)


# -------------------------------------------------------------------- optimizer listening
class _UpdateHook:
    """Stands for one optimizer's ``_apply_updates``: calls the listeners, then the original."""

    def __init__(self, optimizer):
        # An instance attribute already there (another wrapper) is kept and put back at the end.
        self.previous = optimizer.__dict__.get("_apply_updates")
        self.original = optimizer._apply_updates
        self.listeners: list[Callable] = []

    def __call__(self, entries):
        for listener in list(self.listeners):
            listener(entries)
        return self.original(entries)


def _add_update_listener(optimizer, listener: Callable) -> None:
    hook = optimizer.__dict__.get("_apply_updates")
    if not isinstance(hook, _UpdateHook):
        hook = _UpdateHook(optimizer)
        optimizer._apply_updates = hook
    if listener not in hook.listeners:
        hook.listeners.append(listener)


def _remove_update_listener(optimizer, listener: Callable) -> None:
    hook = optimizer.__dict__.get("_apply_updates")
    if not isinstance(hook, _UpdateHook):
        return
    if listener in hook.listeners:
        hook.listeners.remove(listener)
    if not hook.listeners:
        if hook.previous is None:
            del optimizer._apply_updates  # the class's method shows again
        else:
            optimizer._apply_updates = hook.previous


# -------------------------------------------------------------------- images of weights
def weight_image(weight: np.ndarray) -> np.ndarray | None:
    """A weight array as a ``uint8`` grey-level image ``(height, width, 1)``, min black, max white.

    A vector is one row; a matrix is shown wider than tall (transposed if it has more rows than
    columns, as Keras does); a convolution kernel ``(*spatial, in_channels, out_channels)``
    becomes a grid of filters with a one-pixel gap: a row per input channel, a column per output
    channel, each filter ``spatial[-1]`` pixels wide (earlier spatial axes stacked vertically).
    ``None`` for a scalar or an empty array. A constant array is mid-grey.

    Example:
        >>> kernel = np.arange(3 * 3 * 2 * 4, dtype="float32").reshape(3, 3, 2, 4)
        >>> image = weight_image(kernel)
        >>> image.shape, image.dtype          # 2 rows of 3x3 filters, 4 columns, 1-pixel gaps
        ((7, 15, 1), dtype('uint8'))
        >>> int(image.min()), int(image.max())
        (0, 255)
        >>> weight_image(np.zeros((5, 2))).shape    # 5 x 2 shown as 2 x 5
        (2, 5, 1)
    """
    array = np.asarray(weight, dtype=np.float64)
    if array.ndim == 0 or array.size == 0:
        return None
    if array.ndim == 1:
        grid = array[None, :]
    elif array.ndim == 2:
        grid = array.T if array.shape[0] > array.shape[1] else array
    else:
        *spatial, cin, cout = array.shape
        tile_h, tile_w = int(np.prod(spatial[:-1], dtype=np.int64)), spatial[-1]
        tiles = array.reshape(tile_h, tile_w, cin, cout)
        # NaN in the gaps marks them; they are painted black after scaling.
        grid = np.full((cin * (tile_h + 1) - 1, cout * (tile_w + 1) - 1), np.nan)
        for i in range(cin):
            for j in range(cout):
                top, left = i * (tile_h + 1), j * (tile_w + 1)
                grid[top : top + tile_h, left : left + tile_w] = tiles[:, :, i, j]
    return _scale_to_uint8(grid)[:, :, None]


def _scale_to_uint8(grid: np.ndarray) -> np.ndarray:
    finite = np.isfinite(grid)
    if not finite.any():
        return np.zeros(grid.shape, np.uint8)
    low, high = grid[finite].min(), grid[finite].max()
    if high > low:
        scaled = (grid - low) / (high - low) * 255.0
    else:
        scaled = np.full(grid.shape, 128.0)
    return np.where(finite, np.rint(scaled), 0.0).astype(np.uint8)


# -------------------------------------------------------------------- checks and conversions
def _named_weights(model) -> list[tuple[str, object]]:
    """``("dense/kernel", weight)`` for every weight of the model: its dotted path as a tag
    (TensorBoard groups tags by their first ``/`` component, here the layer)."""
    return [(name.replace(".", "/"), weight) for name, weight in model.named_parameters()]


def _scalar_value(value) -> float | None:
    """``value`` as a float when it is one real number (Python, NumPy, 0-d or 1-element array,
    an ember Tensor), else ``None``."""
    data = value.data if isinstance(value, Tensor) else value
    if isinstance(data, (bool, np.bool_)) or data is None:
        return None
    try:
        array = np.asarray(data)
    except Exception:  # noqa: BLE001 - an object NumPy cannot take is simply not a scalar
        return None
    if array.size != 1 or array.dtype.kind not in "iuf":
        return None
    return float(array.reshape(()))


def _scalars(logs) -> dict[str, float]:
    """The entries of ``logs`` that are single numbers (a custom step may log other things)."""
    if not isinstance(logs, dict):
        return {}
    found = {}
    for name, value in logs.items():
        number = _scalar_value(value)
        if number is not None:
            found[str(name)] = number
    return found


def _check_count(owner: str, name: str, value, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{owner}: {name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{owner}: {name} must be an integer >= {minimum}, got {value}")
    return int(value)


def _check_flag(owner: str, name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: {name} must be True or False, got {value!r}")
    return bool(value)


def _check_update_freq(owner: str, value) -> str | int:
    if value == "batch":
        return 1
    if value == "epoch":
        return "epoch"
    if isinstance(value, str):
        raise ValueError(
            f"{owner}: update_freq must be 'epoch', 'batch' or an integer >= 1, got {value!r}"
        )
    return _check_count(owner, "update_freq", value, 1)


def _check_target(owner: str, tag, step, run) -> tuple[str, int, str]:
    if not isinstance(tag, str) or not tag:
        raise TypeError(f"{owner}: tag must be a non-empty str, got {tag!r}")
    step = _check_count(owner, "step", step, 0)
    if not isinstance(run, str) or not run or os.sep in run or "/" in run or run in (".", ".."):
        raise ValueError(
            f"{owner}: run must be a directory name inside log_dir such as 'train' or "
            f"'validation', got {run!r}"
        )
    return tag, step, run


def _numeric_array(owner: str, name: str, values) -> np.ndarray:
    array = np.asarray(values.data if isinstance(values, Tensor) else values)
    if array.dtype.kind not in "iuf" or array.size == 0:
        raise TypeError(
            f"{owner}: {name} must be a non-empty array of real numbers, got dtype "
            f"{array.dtype} and shape {array.shape}"
        )
    return array


def _image_pixels(owner: str, data) -> np.ndarray:
    """``data`` as ``uint8`` ``(height, width, channels)``, checked."""
    array = np.asarray(data.data if isinstance(data, Tensor) else data)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or 0 in array.shape:
        raise ValueError(
            f"{owner}: data must be (height, width) or (height, width, channels) with 1, 3 or "
            f"4 channels, got shape {array.shape}"
        )
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{owner}: data must be uint8 or floats in [0, 1], got dtype {array.dtype}")
    if not np.isfinite(array).all():
        raise ValueError(f"{owner}: data contains NaN or infinite values")
    if array.dtype.kind in "iu":
        if array.min() < 0 or array.max() > 255:
            raise ValueError(
                f"{owner}: integer data must be in [0, 255], got values in "
                f"[{array.min()}, {array.max()}]"
            )
        return array.astype(np.uint8)
    return np.rint(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)
