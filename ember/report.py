"""Training reports: the figures, the numbers and one HTML page of a run.

``ember train ... --report DIR`` calls :func:`write_report`, which can be used on any trained
model too. It fills a folder with:

* ``training_curves.png`` — loss and metrics per epoch, training and validation;
* ``confusion_matrix.png`` — the model's classes against the true ones on the test data (for a
  classifier, when ``x_test``/``y_test`` are given);
* ``gradient_flow.png`` — per-layer gradient norms across training, from the records of a
  :class:`~ember.diagnostics.GradientHealth` callback;
* ``diagnosis.png`` — per-layer gradient norms of a one-shot
  :func:`~ember.diagnostics.diagnose` of the trained model on a sample batch;
* ``predictions.png`` — test images with predicted and true labels (image data);
* ``report.json`` — the configuration, the final metrics (the last epoch of the ``History``),
  the test metrics and the gradient-health numbers (a number that is not finite is ``null``:
  strict JSON);
* ``index.html`` — one self-contained page (inline style, no script, nothing fetched from the
  network; the figures by relative path, so the folder can be moved or archived whole) with the
  configuration, the model summary, the metrics, the figures with captions and the
  gradient-health findings in plain words.

Needs matplotlib (Ember's ``viz`` extra); :func:`require_matplotlib` says how to install it.

Example:
    >>> import json, os, tempfile
    >>> from ember.report import write_report
    >>> ember.manual_seed(0)
    >>> x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    >>> y = (x[:, 0] > 0).astype("int64")
    >>> model = ember.Sequential([ember.Input(shape=(4,)),
    ...                           ember.layers.Dense(2, activation="softmax")])
    >>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
    ...               metrics=["accuracy"])
    >>> history = model.fit(x, y, epochs=2, verbose=0)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     page = write_report(folder, model=model, history=history, config={"epochs": 2},
    ...                         x_test=x, y_test=y)
    ...     print(page.name, sorted(os.listdir(folder)))
    ...     saved = json.loads((page.parent / "report.json").read_text())
    index.html ['confusion_matrix.png', 'diagnosis.png', 'index.html', 'report.json',
                'training_curves.png']
    >>> saved["final_metrics"]["loss"] == history.history["loss"][-1]
    True
"""

from __future__ import annotations

import datetime
import html
import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ember.callbacks import Callback
from ember.diagnostics import GradientHealth, HealthReport, diagnose
from ember.layers.base import Layer
from ember.tensor import Tensor

__all__ = ["StepTimer", "require_matplotlib", "write_report", "FIGURES"]

# The figures a report may hold, in the order of the page; a figure that does not apply to a run
# is not drawn (and a stale file of that name from an earlier report in the folder is removed,
# so the folder never shows a picture of another run).
FIGURES = ("training_curves", "confusion_matrix", "gradient_flow", "diagnosis", "predictions")
_SAMPLE = 256  # samples of a one-shot diagnosis taken from the test data by default
_GRID = 36  # test images in the predictions grid
_FN = "write_report"


def require_matplotlib(what: str = "ember.report") -> None:
    """Raise an ImportError that says how to install matplotlib when it is missing (call it
    before a long computation whose results are to be drawn).

    >>> require_matplotlib()  # installed: nothing happens
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError as err:
        raise ImportError(
            f"{what} needs matplotlib, which is not installed; install Ember's viz extra with "
            "`pip install 'ember[viz]'` (from a checkout: `pip install -e '.[viz]'`, or "
            "`pip install matplotlib`)"
        ) from err


# ============================================================================== timing
class StepTimer(Callback):
    """The wall-clock time of every training batch (from ``on_train_batch_begin`` to
    ``on_train_batch_end``), to measure what a recording callback such as
    :class:`~ember.diagnostics.GradientHealth` costs: :meth:`overhead` compares the recorded
    batches with the others.

    >>> timer = StepTimer()
    >>> timer.durations = [0.009, 0.003, 0.001, 0.001, 0.001]  # seconds; 0 and 1 were recorded
    >>> cost = timer.overhead([0, 1])
    >>> cost["steps"], cost["recorded_steps"], cost["recorded_ms"], cost["other_ms"]
    (5, 2, 3.0, 1.0)
    >>> cost["extra_seconds"], cost["percent"]  # 2 x 2 ms more, on 5 x 1 ms without recording
    (0.004, 80.0)
    """

    def __init__(self):
        super().__init__()
        self.durations: list[float] = []
        self._start = 0.0

    def on_train_begin(self, logs=None):
        self.durations = []

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.durations.append(time.perf_counter() - self._start)

    def overhead(self, recorded_steps: Sequence[int]) -> dict:
        """What the batches at the indices ``recorded_steps`` (counted from the first batch of
        the ``fit``, as :attr:`GradientHealth.steps` are for a fresh callback) cost beyond the
        others: the median time of each kind (ms), the extra seconds in all (the number of
        recorded batches times the difference of the medians) and that as a percentage of the
        time the batches would have taken without recording (all of them at the median of the
        others). The first batch is left out of both medians: it also allocates the optimizer's
        state and compiles kernels."""
        times = np.asarray(self.durations, dtype=np.float64)
        picked = np.zeros(times.size, dtype=bool)
        try:
            indices = np.asarray(list(recorded_steps), dtype=np.int64)
        except (TypeError, ValueError) as err:
            raise TypeError("StepTimer.overhead: recorded_steps must be batch indices "
                            f"(integers), got {recorded_steps!r}") from err
        picked[indices[(indices >= 0) & (indices < times.size)]] = True
        out = {"steps": int(times.size), "recorded_steps": int(picked.sum())}
        later = np.arange(times.size) > 0
        if not (picked & later).any() or not (~picked & later).any():  # nothing to compare
            return {**out, "recorded_ms": None, "other_ms": None, "extra_seconds": None,
                    "percent": None}
        # medians: a batch slowed by another process on the machine moves a mean, not these
        recorded = float(np.median(times[picked & later]))
        other = float(np.median(times[~picked & later]))
        extra = max(0.0, recorded - other) * int(picked.sum())
        base = other * times.size  # not the sum: one batch stalled by another process
        return {**out, "recorded_ms": round(recorded * 1e3, 3), "other_ms": round(other * 1e3, 3),
                "extra_seconds": round(extra, 4),
                "percent": round(100.0 * extra / base, 2) if base > 0 else None}


# ============================================================================== checks
def _check_args(directory, model, history, config, x_test, y_test, health, class_names,
                x_sample, y_sample) -> tuple[Path, dict[str, list[float]]]:
    """The folder as a Path and the history as a dict of per-epoch lists, after every check."""
    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"{_FN}: directory must be a path (str or os.PathLike), got "
                        f"{type(directory).__name__}")
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"{_FN}: directory {str(directory)!r} exists and is not a folder")
    if not isinstance(model, Layer):
        raise TypeError(f"{_FN}: model must be an Ember model, got {type(model).__name__}")
    logs = getattr(history, "history", history)
    if not isinstance(logs, Mapping) or not all(
            isinstance(k, str) and isinstance(v, (Sequence, np.ndarray)) and not isinstance(v, str)
            for k, v in logs.items()):
        raise TypeError(f"{_FN}: history must be a History (what fit returns) or its .history "
                        f"dict of per-epoch lists, got {type(history).__name__}")
    if not logs or not any(len(v) for v in logs.values()):
        raise ValueError(f"{_FN}: history holds no epoch (train the model first)")
    if not isinstance(config, Mapping) or not all(isinstance(k, str) for k in config):
        raise TypeError(f"{_FN}: config must be a dict with string keys, got "
                        f"{type(config).__name__}")
    for a, b, name in ((x_test, y_test, "test"), (x_sample, y_sample, "sample")):
        if (a is None) != (b is None) and not (name == "sample" and b is None):
            raise ValueError(f"{_FN}: give x_{name} and y_{name} together (got only "
                             f"{'x' if a is not None else 'y'}_{name})")
        if a is not None and b is not None and _length(a) != _length(b):
            raise ValueError(f"{_FN}: x_{name} has {_length(a)} samples but y_{name} has "
                             f"{_length(b)}")
    if health is not None and not isinstance(health, GradientHealth):
        raise TypeError(f"{_FN}: health must be an ember.diagnostics.GradientHealth callback "
                        f"(or None), got {type(health).__name__}")
    if class_names is not None and (isinstance(class_names, str)
                                    or not isinstance(class_names, Sequence)):
        raise TypeError(f"{_FN}: class_names must be a list of names, got "
                        f"{type(class_names).__name__}")
    return directory, {k: [float(v) for v in values] for k, values in logs.items()}


def _length(data) -> int:
    """The number of samples in ``data``: an array, or a list/dict of arrays (several inputs)."""
    if isinstance(data, Mapping) and data:
        return _length(next(iter(data.values())))
    if isinstance(data, (list, tuple)) and data and all(
            isinstance(a, (np.ndarray, Tensor)) for a in data):
        return _length(data[0])
    return int(data.shape[0]) if hasattr(data, "shape") else len(data)


def _array(value) -> np.ndarray:
    return value.numpy() if isinstance(value, Tensor) else np.asarray(value)


def _image_shape(config: Mapping, x: np.ndarray) -> tuple[int, ...] | None:
    """The shape of one image: the data's own (``(n, h, w)`` or ``(n, h, w, 1|3|4)``), or
    ``config["image_shape"]`` for flattened images (checked against the feature count)."""
    given = config.get("image_shape")
    if given is None:
        images = x.ndim == 3 or (x.ndim == 4 and x.shape[-1] in (1, 3, 4))
        return tuple(x.shape[1:]) if images else None
    try:
        shape = tuple(int(s) for s in given)
    except (TypeError, ValueError):
        shape = ()
    if len(shape) not in (2, 3) or math.prod(shape) != math.prod(x.shape[1:]):
        raise ValueError(f"{_FN}: config['image_shape'] must be (height, width) or (height, "
                         f"width, channels) with as many values as one test sample "
                         f"({math.prod(x.shape[1:])}), got {given!r}")
    return shape


# ============================================================================== numbers
def _plain(value):
    """``value`` as strict-JSON data: NumPy numbers as Python ones, non-finite floats as None,
    tuples as lists, paths and other objects as their text."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)


def _model_info(model) -> dict:
    """Name, type, parameter count, summary text, optimizer and loss of ``model``."""
    lines: list[str] = []
    try:
        model.summary(print_fn=lines.append)
        summary = "\n".join(lines)
    except (ValueError, NotImplementedError, AttributeError):  # unbuilt or subclassed
        summary = repr(model)
    optimizer = getattr(model, "optimizer", None)
    loss = getattr(model, "loss", None)
    info = {"name": model.name, "type": type(model).__name__,
            "parameters": int(sum(p.size for p in model.weights)), "summary": summary,
            "optimizer": None, "loss": getattr(loss, "name", None) or (loss and repr(loss))}
    if optimizer is not None:
        config = optimizer.get_config() if hasattr(optimizer, "get_config") else {}
        info["optimizer"] = {"type": type(optimizer).__name__, **config,
                             "next_learning_rate": getattr(optimizer, "learning_rate", None)}
    return info


def _predictions(model, x_test, y_test) -> tuple[np.ndarray, np.ndarray] | None:
    """(true, predicted) class indices on the test data, or None when the model is not a
    single-output classifier (regression targets, several outputs)."""
    out = model.predict(x_test, batch_size=256)
    if not isinstance(out, np.ndarray) or out.ndim not in (1, 2):
        return None
    truth = _array(y_test)
    if truth.ndim == 2 and truth.shape[1] > 1:
        truth = truth.argmax(axis=1)  # one-hot rows
    truth = truth.reshape(len(truth), -1)
    if truth.shape[1] != 1 or not np.all(truth == np.round(truth)) or truth.min() < 0:
        return None
    truth = truth[:, 0].astype(np.int64)
    scores = out.reshape(len(out), -1)
    if scores.shape[1] > 1:
        guess = scores.argmax(axis=1)
    elif truth.max() <= 1:  # one output for two classes: a probability, or a logit
        in_unit = scores.min() >= 0 and scores.max() <= 1
        guess = (scores[:, 0] > (0.5 if in_unit else 0.0)).astype(np.int64)
    else:
        return None
    return truth, guess


def _diagnosis(model, x_sample, y_sample, x_test, y_test) -> tuple[HealthReport, int, str] | None:
    """The one-shot diagnosis on the sample (or the first test samples): (report, samples,
    which data)."""
    if x_sample is not None:
        x, y, source = x_sample, y_sample, "the sample batch"
    elif x_test is not None:
        x, y, source = x_test, y_test, f"the first {_SAMPLE} test samples"
    else:
        return None
    n = min(_length(x), _SAMPLE) if x_sample is None else _length(x)
    return diagnose(model, x, y, batch_size=n), n, source


def _health_numbers(health: GradientHealth | None) -> dict | None:
    if health is None or not health.records:
        return None
    summary = health.summary()
    return {"every": health.every, "steps": health.steps, "grad_norms": health.grad_norms,
            "update_ratios": health.series("update_ratio"), "summary": summary.to_dict(),
            "findings": summary.findings, "flags": summary.flags}


# ============================================================================== figures
def _draw_figures(directory: Path, logs, health, predictions, diagnosis, images,
                  class_names) -> dict[str, str]:
    """Draw what applies; the captions of the figures written, by name."""
    from ember import viz

    captions: dict[str, str] = {}

    def save(name: str, fig, caption: str) -> None:
        viz.save_figure(fig, directory / f"{name}.png")
        captions[name] = caption

    save("training_curves", viz.training_curves(logs),
         "Loss and metrics after each epoch: training (solid) and validation (dashed). A "
         "validation curve that turns up while the training one keeps falling is overfitting.")
    if predictions is not None:
        truth, guess = predictions
        names = list(class_names) if class_names is not None else None
        if names is not None and len(names) <= max(truth.max(), guess.max()):
            names = None  # fewer names than classes: indices rather than an error at the end
        save("confusion_matrix", viz.confusion_matrix(truth, guess, class_names=names),
             f"Confusion matrix on the {truth.size} test samples: a row is the true class, a "
             f"column the predicted one; the diagonal holds the {np.mean(truth == guess):.1%} "
             "that are right.")
    if health is not None and health.records:
        save("gradient_flow", viz.gradient_flow(health),
             f"Gradient norm of each layer at {len(health.records)} training steps (one "
             f"recorded every {health.every} batches), log scale, from the input layer (dark) "
             "to the output layer (light). Lines far below the others near the input are a "
             "vanishing gradient; lines climbing by orders of magnitude, an exploding one.")
    if diagnosis is not None:
        report, n, source = diagnosis
        save("diagnosis", viz.gradient_flow(report, title=f"gradient norm per layer ({n} "
                                                          "samples, after training)"),
             f"Gradient norm of each layer on {source} ({n} samples) after training: a "
             "one-shot diagnosis, which leaves the model unchanged.")
    if images is not None:
        pictures, truth, guess = images
        names = list(class_names) if class_names is not None else None
        if names is not None and len(names) <= max(truth.max(), guess.max()):
            names = None
        save("predictions", viz.predictions_grid(pictures, truth, guess, class_names=names),
             f"The first {len(truth)} test samples with the predicted label; a mistake is "
             f"framed in red with the true label ({int(np.sum(truth != guess))} here).")
    return captions


# ============================================================================== the page
_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.meta { color: #666; margin-top: 0; }
pre { background: #f6f8fa; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #444; font-size: 0.9em; max-width: 60em; }
li.finding { margin-bottom: 0.3em; } .ok { color: #1a7f37; } .bad { color: #b42318; }
"""


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _number(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        return str(value)
    value = float(value)
    if not math.isfinite(value) or value == 0.0:
        return str(value) if value else "0"
    if float(value).is_integer() and abs(value) < 1e9:
        return f"{int(value):,}"
    return f"{value:.4g}" if 1e-3 <= abs(value) < 1e5 else f"{value:.2e}"


def _table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """An HTML table; numbers right-aligned and formatted, everything escaped."""
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            numeric = isinstance(cell, (int, float, np.number)) and not isinstance(cell, bool)
            cells.append(f'<td class="num">{_esc(_number(cell))}</td>' if numeric
                         else f"<td>{_esc('-' if cell is None else cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _config_value(value) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k.replace('_', ' ')}: {_config_value(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return " × ".join(str(v) for v in value) if all(
            isinstance(v, (int, np.integer)) for v in value) and value else str(list(value))
    return _number(value)


def _metrics_html(final: dict, test: dict | None) -> str:
    """One row per metric: its last training epoch, validation and test values."""
    names = [k for k in final if not k.startswith("val_")]
    names += [k[4:] for k in final if k.startswith("val_") and k[4:] not in names]
    for k in test or {}:
        if k not in names:
            names.append(k)
    rows = [(k, final.get(k), final.get(f"val_{k}"), (test or {}).get(k)) for k in names]
    return _table(("metric", "training (last epoch)", "validation (last epoch)", "test"), rows)


_HEALTH_COLUMNS = ("layer", "type", "activation", "gradient norm", "ratio to output layer",
                   "weight norm", "update / weight", "dead ReLU units", "saturated units")


def _health_table(report: HealthReport) -> str:
    def percent(value):
        return "-" if value is None else f"{100.0 * value:.0f} %"

    rows = [(r.name, r.type, r.activation or "-", r.grad_norm, r.grad_ratio, r.weight_norm,
             r.update_ratio, percent(r.dead_fraction), percent(r.saturated_fraction))
            for r in report.layers]
    return _table(_HEALTH_COLUMNS, rows)


def _findings_html(findings: Sequence[str], report: HealthReport) -> str:
    if findings:
        items = "".join(f'<li class="finding bad">{_esc(f)}</li>' for f in findings)
        return f"<ul>{items}</ul>"
    layers = [r for r in report.layers if r.grad_norm is not None]
    words = "No layer is flagged: no vanishing or exploding gradient, no learning rate too " \
            "high, no dead or saturated layer."
    if len(layers) > 1 and layers[-1].grad_norm:
        words += (f" The first layer's gradient norm ({layers[0].name}, "
                  f"{_number(layers[0].grad_norm)}) is {_number(layers[0].grad_ratio)} times "
                  f"the output layer's ({layers[-1].name}, {_number(layers[-1].grad_norm)}).")
    return f'<p class="ok">{_esc(words)}</p>'


def _health_html(health: GradientHealth | None, diagnosis) -> str:
    parts = ["<h2>Gradient health</h2>"]
    if health is not None and health.records:
        summary = health.summary()
        parts.append(f"<h3>During training ({len(health.records)} steps recorded, one every "
                     f"{health.every} batches; each number is the median over them)</h3>")
        parts.append(_findings_html(summary.findings, summary))
        parts.append(_health_table(summary))
    if diagnosis is not None:
        report, n, source = diagnosis
        parts.append(f"<h3>After training: one batch ({_esc(source)}, {n} samples, loss "
                     f"{_esc(_number(report.loss))})</h3>")
        parts.append(_findings_html(report.findings, report))
        parts.append(_health_table(report))
        parts.append(f"<p>Updates: {_esc(report.update_rule)}.</p>")
    if len(parts) == 1:
        parts.append("<p>Not recorded (no GradientHealth callback and no sample data).</p>")
    return "\n".join(parts)


def _page(data: dict, captions: dict[str, str], health, diagnosis) -> str:
    """The whole HTML page."""
    config, info = data["config"], data["model"]
    title = "Ember training report"
    if config.get("dataset") or config.get("model"):
        title += ": " + " / ".join(str(config[k]) for k in ("dataset", "model") if config.get(k))
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{_esc(title)}</title>", f"<style>{_STYLE}</style>", "</head>", "<body>",
             f"<h1>{_esc(title)}</h1>",
             f'<p class="meta">Written {_esc(data["created"])} by Ember '
             f'{_esc(data["ember_version"])}; {data["epochs"]} epoch(s) of training.</p>']
    if config.get("command"):
        parts.append(f"<h2>Command</h2><pre><code>{_esc(config['command'])}</code></pre>")
    rows = [(k.replace("_", " "), _config_value(v)) for k, v in config.items() if k != "command"]
    optimizer = info["optimizer"] or {}
    rows += [("model summary", f"{info['type']} {info['name']!r}, "
                               f"{info['parameters']:,} parameters (below)"),
             ("loss", info["loss"] or "-"),
             ("optimizer", _config_value(optimizer) if optimizer else "-")]
    parts += ["<h2>Configuration</h2>", _table(("setting", "value"), rows)]
    parts += ["<h2>Results</h2>", _metrics_html(data["final_metrics"], data["test_metrics"])]
    parts.append("<h2>Figures</h2>")
    for name, caption in captions.items():
        parts.append(f'<figure id="{name}"><img src="{name}.png" alt="{_esc(caption)}">'
                     f"<figcaption>{_esc(caption)}</figcaption></figure>")
    parts.append(_health_html(health, diagnosis))
    parts += ["<h2>Model</h2>", f"<pre>{_esc(info['summary'])}</pre>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"


# ============================================================================== entry point
def write_report(
    directory: str | os.PathLike,
    *,
    model,
    history,
    config: Mapping,
    x_test=None,
    y_test=None,
    health: GradientHealth | None = None,
    class_names: Sequence[object] | None = None,
    x_sample=None,
    y_sample=None,
) -> Path:
    """Write a report of a training run into ``directory`` (created if missing); the path of
    its ``index.html``. The files are listed in :mod:`ember.report`.

    Args:
        directory: the folder; files of a former report there are replaced.
        model: the trained model (compiled: its loss and metrics give the test metrics).
        history: what ``fit`` returned (a ``History``) or its ``.history`` dict.
        config: the run's settings, shown on the page and saved in ``report.json`` (any
            JSON-able values). Two keys have a use of their own: ``"command"`` (the command
            line, shown first) and ``"image_shape"`` (the ``(height, width[, channels])`` of
            one sample when flattened images are given, for the predictions grid).
            ``"dataset"`` and ``"model"`` make the page's title.
        x_test, y_test: test data: the test metrics (``model.evaluate``), the confusion matrix
            and, for images, the predictions grid (classifiers only).
        health: a :class:`~ember.diagnostics.GradientHealth` callback that ran during ``fit``:
            the gradient-flow figure and the findings over training.
        class_names: the names of the classes, for the confusion matrix and the grid.
        x_sample, y_sample: a batch for the one-shot :func:`~ember.diagnostics.diagnose`
            after training (default: the first 256 test samples; neither: no diagnosis).

    Returns:
        the path of ``index.html``.

    Example:
        >>> import tempfile
        >>> ember.manual_seed(0)
        >>> x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
        >>> model = ember.Sequential([ember.Input(shape=(3,)), ember.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> history = model.fit(x, x[:, :1], epochs=1, verbose=0)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     page = write_report(folder, model=model, history=history, config={})
        ...     "training_curves.png" in page.read_text()
        True
    """
    directory, logs = _check_args(directory, model, history, config, x_test, y_test, health,
                                  class_names, x_sample, y_sample)
    require_matplotlib(_FN)
    test_metrics = predictions = images = None
    if x_test is not None:
        if getattr(model, "compiled", False):
            test_metrics = model.evaluate(x_test, y_test, batch_size=256, verbose=0,
                                          return_dict=True)
        predictions = _predictions(model, x_test, y_test)
        one_input = isinstance(x_test, (np.ndarray, Tensor))  # not several inputs
        shape = None
        if predictions is not None and one_input:
            shape = _image_shape(config, _array(x_test))
        if shape is not None:
            n = min(_GRID, len(predictions[0]))
            images = (_array(x_test)[:n].reshape((n, *shape)), *(p[:n] for p in predictions))
    diagnosis = _diagnosis(model, x_sample, y_sample, x_test, y_test)
    directory.mkdir(parents=True, exist_ok=True)
    captions = _draw_figures(directory, logs, health, predictions, diagnosis, images,
                             class_names)
    for name in FIGURES:  # a picture left by an earlier report that does not apply to this run
        if name not in captions:
            (directory / f"{name}.png").unlink(missing_ok=True)
    from ember import __version__

    data = _plain({
        "ember_version": __version__,
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "config": dict(config),
        "model": _model_info(model),
        "epochs": max(len(v) for v in logs.values()),
        "final_metrics": {k: v[-1] for k, v in logs.items() if v},
        "test_metrics": test_metrics,
        "history": logs,
        "gradient_health": _health_numbers(health),
        "diagnosis": None if diagnosis is None else {
            "samples": diagnosis[1], "data": diagnosis[2], **diagnosis[0].to_dict()},
        "figures": {name: f"{name}.png" for name in captions},
        "captions": captions,
    })
    (directory / "report.json").write_text(json.dumps(data, indent=2, allow_nan=False) + "\n",
                                           encoding="utf-8")
    page = directory / "index.html"
    page.write_text(_page(data, captions, health, diagnosis), encoding="utf-8")
    return page
