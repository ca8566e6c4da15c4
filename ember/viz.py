"""Pictures of data and models with matplotlib (the ``viz`` extra: ``pip install ember[viz]``).

Every function draws on a new figure (not registered with pyplot: nothing to close), returns the
:class:`matplotlib.figure.Figure`, and saves it when given ``path`` (PNG or SVG by the suffix;
missing folders are created). Nothing here is imported by the rest of Ember, so matplotlib stays
optional.

What there is to see:

* data: :func:`image_grid` (and :func:`mosaic`), :func:`scatter_2d`,
  :func:`embedding_projection` (a PCA of codes, :func:`pca`);
* functions: :func:`activations` with their derivatives (by Ember's autograd);
* training: :func:`training_curves` (one run or several compared), :func:`gradient_flow`
  (per-layer gradient norms, log scale), :func:`loss_surface` (Li et al. 2018's
  filter-normalized random directions, with the optimizer's path; the numbers come from
  :func:`loss_surface_grid`);
* inside a model: :func:`weight_histograms`, :func:`activation_histograms`,
  :func:`conv_filters`, :func:`feature_maps`, :func:`attention_map`;
* results: :func:`decision_boundary` of a 2-D classifier, :func:`confusion_matrix`,
  :func:`predictions_grid`;
* the computation graph (SVG, no matplotlib; from :mod:`ember.graph_drawing`): :func:`graph`
  behind any tensor, with the gradients after backward (:func:`trace_backward`), and
  :func:`backprop_steps`, backpropagation one node at a time (:func:`to_html` pages them).

>>> import numpy as np
>>> from ember import viz
>>> fig = viz.image_grid(np.zeros((6, 8, 8)), labels=list("abcdef"), ncols=3)
>>> [t.get_text() for t in fig.axes[0].texts]
['a', 'b', 'c', 'd', 'e', 'f']
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ember import activations as _activation_functions
from ember import losses as _losses
from ember import tree
from ember.graph_drawing import backprop_steps, graph, to_html, trace_backward
from ember.layers.attention import MultiHeadAttention
from ember.layers.base import Layer
from ember.layers.core import InputLayer
from ember.models.model import Model, Sequential
from ember.tensor import Tensor, grad, no_grad, tensor

__all__ = [
    "LossSurface",
    "activation_histograms",
    "activations",
    "attention_map",
    "backprop_steps",
    "confusion_matrix",
    "conv_filters",
    "decision_boundary",
    "embedding_projection",
    "feature_maps",
    "gradient_flow",
    "graph",
    "image_grid",
    "loss_surface",
    "loss_surface_grid",
    "mosaic",
    "pca",
    "predictions_grid",
    "save_figure",
    "scatter_2d",
    "to_html",
    "trace_backward",
    "training_curves",
    "weight_histograms",
]

PathLike = str | os.PathLike


def _new_figure(figsize: tuple[float, float]):
    """A matplotlib Figure outside pyplot's global state (nothing to close, no display needed,
    the user's chosen backend untouched), or an ImportError that says how to get matplotlib."""
    try:
        from matplotlib.figure import Figure
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "ember.viz needs matplotlib, which is not installed; install it with "
            "`pip install 'ember[viz]'` (or `pip install matplotlib`)"
        ) from err
    return Figure(figsize=figsize)


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Write ``fig`` to ``path`` (``.png`` or ``.svg``), creating missing folders; the path.

    >>> import tempfile, os
    >>> fig = scatter_2d(np.array([[0.0, 1.0], [1.0, 0.0]]))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     save_figure(fig, os.path.join(d, "sub", "points.png")).stat().st_size > 0
    True
    """
    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg"):
        raise ValueError(f"save_figure: path must end in .png or .svg, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path


def _as_images(images) -> np.ndarray:
    """``images`` as (N, H, W) or (N, H, W, 3|4), with a single channel squeezed."""
    array = np.asarray(images.numpy() if hasattr(images, "numpy") else images)
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 2:  # one image
        array = array[None]
    if array.ndim not in (3, 4) or (array.ndim == 4 and array.shape[-1] not in (3, 4)):
        raise ValueError(
            "image_grid: images must have shape (n, height, width) or (n, height, width, "
            f"channels) with 1, 3 or 4 channels (channels last), got shape {array.shape}"
        )
    if array.shape[0] == 0:
        raise ValueError("image_grid: got no images (the first dimension is 0)")
    return array.astype(np.float32, copy=False)


def mosaic(images, ncols: int, gap: int = 1, fill: float | None = None) -> np.ndarray:
    """``(n, h, w)`` or ``(n, h, w, c)`` images as one array of ``ncols`` columns, separated by
    ``gap`` pixels of ``fill`` (default: the middle of the images' range; the cells after the
    last image are filled too) — one picture to draw, however many images.

    >>> mosaic(np.arange(3 * 2 * 2).reshape(3, 2, 2), ncols=2, gap=1, fill=-1)
    array([[ 0,  1, -1,  4,  5],
           [ 2,  3, -1,  6,  7],
           [-1, -1, -1, -1, -1],
           [ 8,  9, -1, -1, -1],
           [10, 11, -1, -1, -1]])
    """
    array = np.asarray(images)
    if ncols < 1:
        raise ValueError(f"mosaic: ncols must be a positive integer, got {ncols}")
    n, h, w = array.shape[:3]
    channels = array.shape[3:]
    if fill is None:
        fill = (float(array.min()) + float(array.max())) / 2 if array.size else 0.0
    nrows = -(-n // ncols)
    cells = np.full((nrows * ncols, h + gap, w + gap) + channels, fill, dtype=array.dtype)
    cells[:n, :h, :w] = array
    tiled = cells.reshape((nrows, ncols, h + gap, w + gap) + channels).swapaxes(1, 2)
    whole = tiled.reshape((nrows * (h + gap), ncols * (w + gap)) + channels)
    return whole[: -gap or None, : -gap or None]


def image_grid(
    images,
    labels: Sequence[object] | None = None,
    ncols: int | None = None,
    title: str | None = None,
    cmap: str = "gray",
    path: str | os.PathLike | None = None,
):
    """Draw ``images`` in a grid, one cell each, with an optional caption per image.

    Grey images share one colour scale (the minimum and maximum over all of them), so
    reconstructions can be compared with their inputs cell by cell. ``ncols`` defaults to a
    near-square grid. The images are drawn as one :func:`mosaic`, so a grid of hundreds of
    samples is as quick to draw as one image.

    >>> fig = image_grid(np.random.default_rng(0).random((5, 4, 4, 1)), title="noise")
    >>> fig._suptitle.get_text()
    'noise'
    """
    array = _as_images(images)
    n = array.shape[0]
    if labels is not None and len(labels) != n:
        raise ValueError(f"image_grid: got {n} images but {len(labels)} labels")
    ncols = int(ncols) if ncols else int(np.ceil(np.sqrt(n)))
    if ncols < 1:
        raise ValueError(f"image_grid: ncols must be a positive integer, got {ncols}")
    nrows = int(np.ceil(n / ncols))
    height, width = array.shape[1:3]
    cell = 1.2 if labels is not None else max(0.4, min(1.2, 8.0 / ncols))
    fig = _new_figure((cell * ncols, cell * nrows + (0.4 if title else 0.0)))
    ax = fig.add_subplot()
    low, high = float(np.min(array)), float(np.max(array))
    gap = max(1, height // 8)
    if array.ndim == 3:
        ax.imshow(mosaic(array, ncols, gap, fill=high), cmap=cmap, vmin=low,
                  vmax=high if high > low else low + 1)
    else:
        ax.imshow(np.clip(mosaic(array, ncols, gap, fill=1.0), 0.0, 1.0))
    ax.set_axis_off()
    if labels is not None:
        for i, label in enumerate(labels):
            row, col = divmod(i, ncols)
            ax.text(col * (width + gap) + width / 2, row * (height + gap) - gap / 2, str(label),
                    ha="center", va="bottom", fontsize=7)
    if title:
        fig.suptitle(title)
    if path is not None:
        save_figure(fig, path)
    return fig


def scatter_2d(
    points,
    labels: Sequence[object] | np.ndarray | None = None,
    title: str | None = None,
    extra_points=None,
    path: str | os.PathLike | None = None,
):
    """Scatter 2-D ``points`` coloured by ``labels``; ``extra_points`` drawn on top as crosses
    (e.g. a GAN's samples over the real data, or class centres over codes).

    >>> fig = scatter_2d(np.eye(2), labels=[0, 1], extra_points=np.zeros((1, 2)))
    >>> len(fig.axes[0].collections)
    2
    """
    array = np.asarray(points.numpy() if hasattr(points, "numpy") else points, dtype=np.float32)
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"scatter_2d: points must have shape (n, 2), got shape {array.shape}")
    fig = _new_figure((5, 5))
    ax = fig.add_subplot()
    colours = None if labels is None else np.asarray(labels)
    ax.scatter(array[:, 0], array[:, 1], c=colours, s=6, cmap=None if colours is None else "tab10")
    if extra_points is not None:
        extra = np.asarray(extra_points, dtype=np.float32).reshape(-1, 2)
        ax.scatter(extra[:, 0], extra[:, 1], marker="x", s=12, c="black")
    if title:
        ax.set_title(title)
    ax.set_aspect("equal", adjustable="datalim")
    if path is not None:
        save_figure(fig, path)
    return fig


# ============================================================================== shared helpers
def _finish(fig, path: PathLike | None):
    """Save ``fig`` when a path is given; the figure either way."""
    if path is not None:
        save_figure(fig, path)
    return fig


def _array(value, fn: str, arg: str, dtype=np.float64) -> np.ndarray:
    """``value`` (a tensor, an array or nested lists) as a NumPy array of ``dtype``."""
    if isinstance(value, Tensor):
        value = value.numpy()
    try:
        return np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{fn}: {arg} must be an array of numbers (or an ember.Tensor), got "
            f"{type(value).__name__}"
        ) from err


def _subplots(n: int, ncols: int, cell: tuple[float, float] = (3.2, 2.6)):
    """A figure with ``n`` panels on a grid of at most ``ncols`` columns; (figure, panels)."""
    ncols = max(1, min(n, ncols))
    nrows = -(-n // ncols)
    fig = _new_figure((cell[0] * ncols, cell[1] * nrows))
    # fixed gaps that fit a title and tick labels (a layout engine measures every label at
    # each save: several times slower for a grid of panels)
    fig.subplots_adjust(wspace=0.3, hspace=0.45 + 0.1 * (nrows > 2))
    return fig, [fig.add_subplot(nrows, ncols, i + 1) for i in range(n)]


def _check_int(value, fn: str, arg: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{fn}: {arg} must be an integer >= {low}, got {value!r}")
    return int(value)


def _class_labels(y, fn: str, arg: str, n: int | None = None) -> np.ndarray:
    """Integer class labels from labels, one-hot rows or per-class scores (argmax)."""
    array = _array(y, fn, arg)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    elif array.ndim == 2:  # one-hot targets or predicted probabilities: the class is the argmax
        array = np.argmax(array, axis=1).astype(np.float64)
    if array.ndim != 1:
        raise ValueError(
            f"{fn}: {arg} must be class labels (n,), one-hot rows or scores (n, classes), got "
            f"shape {array.shape}"
        )
    if n is not None and array.shape[0] != n:
        raise ValueError(f"{fn}: {arg} has {array.shape[0]} entries, expected {n}")
    if array.size and (np.any(array < 0) or np.any(array != np.round(array))):
        raise ValueError(f"{fn}: {arg} must hold class indices 0, 1, 2, ... (integers >= 0)")
    return array.astype(np.int64)


def _class_colours(k: int) -> np.ndarray:
    """``k`` distinct RGB colours, the same for a class's region and its points."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if k <= 10 else "tab20"]
    return np.asarray([cmap(i % cmap.N)[:3] for i in range(k)])


def _forward(model, x: np.ndarray, fn: str, batch: int = 8192) -> np.ndarray:
    """The outputs of a layer/model (inference mode, no graph) or of a plain function, in
    batches so a fine grid never builds one huge activation array."""
    if not callable(model):
        raise TypeError(f"{fn}: model must be an Ember model or layer, got {type(model).__name__}")
    chunks = []
    with no_grad():
        for start in range(0, len(x), batch):
            part = x[start:start + batch]
            out = model(part, training=False) if isinstance(model, Layer) else model(part)
            if tree.is_nested(out):
                raise TypeError(f"{fn}: model must have one output, it returned {len(out)}")
            chunks.append(_array(out, fn, "the model's output"))
    return np.concatenate(chunks, axis=0)


# ============================================================================== activations
_NOT_ELEMENTWISE = ("softmax", "log_softmax")  # normalize along an axis: no curve f(x)
DEFAULT_ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "silu", "softplus")


def _activation_curve(identifier, xs: np.ndarray) -> tuple[str, np.ndarray, np.ndarray]:
    """(name, f(xs), f'(xs)) of one activation; f' by Ember's autograd (the gradient of Σ f(x)
    is f'(x) elementwise, since each output depends on its own input only)."""
    if isinstance(identifier, str):
        key = identifier.lower().replace("-", "_")
        if key in _NOT_ELEMENTWISE:
            raise ValueError(
                f"activations: {identifier!r} is not elementwise (it normalizes along an axis), "
                "so it has no curve f(x) to draw; choose elementwise activations"
            )
    try:
        function = _activation_functions.get(identifier)
    except (TypeError, ValueError) as err:
        raise ValueError(f"activations: names: {err}") from None
    name = identifier if isinstance(identifier, str) else getattr(function, "__name__", "f")
    x = tensor(xs, requires_grad=True, dtype="float64")
    y = function(x)
    if not isinstance(y, Tensor) or y.shape != x.shape:
        raise ValueError(
            f"activations: {name!r} must map a tensor to one of the same shape, got "
            f"{getattr(y, 'shape', type(y).__name__)} from shape {x.shape}"
        )
    (slope,) = grad(y.sum(), [x])
    return name, y.numpy().astype(np.float64), np.asarray(slope, dtype=np.float64)


def activations(
    names: Sequence[object] | str = DEFAULT_ACTIVATIONS,
    x_range: tuple[float, float] = (-5.0, 5.0),
    points: int = 401,
    ncols: int = 4,
    path: PathLike | None = None,
):
    """Each activation ``f`` (by Ember's name, e.g. ``"gelu"``, or a callable) and its derivative
    ``f'`` over ``x_range``, one panel each; ``f'`` is computed by Ember's autograd, so the
    picture shows what backpropagation really multiplies by (a flat ``f'`` means vanishing
    gradients, e.g. the sigmoid's at |x| > 4).

    Each panel's first two lines are ``f`` (label ``"f(x)"``) and ``f'`` (label ``"f'(x)"``).

    >>> fig = activations(["sigmoid", "relu"], points=5, x_range=(-2, 2))
    >>> [ax.get_title() for ax in fig.axes]
    ['sigmoid', 'relu']
    >>> fig.axes[1].lines[1].get_ydata()      # relu' at -2, -1, 0, 1, 2
    array([0., 0., 0., 1., 1.])
    """
    if isinstance(names, str) or callable(names):
        names = [names]
    names = list(names)
    if not names:
        raise ValueError("activations: names is empty; give at least one name such as 'relu'")
    try:
        low, high = (float(v) for v in x_range)
    except (TypeError, ValueError):
        raise ValueError(
            f"activations: x_range must be two numbers (low, high), got {x_range!r}"
        ) from None
    if not low < high:
        raise ValueError(f"activations: x_range must have low < high, got {x_range!r}")
    points = _check_int(points, "activations", "points", 2)
    xs = np.linspace(low, high, points)
    curves = [_activation_curve(name, xs) for name in names]  # all checked before drawing
    fig, axes = _subplots(len(curves), _check_int(ncols, "activations", "ncols", 1))
    for ax, (name, values, slopes) in zip(axes, curves):
        ax.plot(xs, values, color="tab:blue", label="f(x)")
        ax.plot(xs, slopes, color="tab:orange", linestyle="--", label="f'(x)")
        ax.axhline(0.0, color="0.85", linewidth=0.8, zorder=0)  # drawn below, listed after
        ax.axvline(0.0, color="0.85", linewidth=0.8, zorder=0)
        ax.set_title(str(name))
        ax.set_xlim(low, high)
    axes[0].legend(loc="best", fontsize=8)
    return _finish(fig, path)


# ============================================================================== decision boundary
def _probabilities(out: np.ndarray) -> np.ndarray:
    """A classifier's outputs as class probabilities ``(n, classes)``: one sigmoid column is
    binary (P(class 1)), logits (values outside [0, 1], rows not summing to 1) are squashed."""
    if out.ndim == 1:
        out = out[:, None]
    if out.ndim != 2:
        raise ValueError(
            "decision_boundary: the model must output (n, 1) for a binary classifier or "
            f"(n, classes) for a softmax one, got shape {out.shape}"
        )
    if out.shape[1] == 1:
        p = out[:, 0]
        if p.min() < 0.0 or p.max() > 1.0:  # logits of a from_logits model
            p = 1.0 / (1.0 + np.exp(-np.clip(p, -500, 500)))
        return np.column_stack([1.0 - p, p])
    if out.min() < 0.0 or np.abs(out.sum(axis=1) - 1.0).max() > 1e-3:
        shifted = np.exp(out - out.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)
    return out


def _grid_over(points: np.ndarray, resolution: int) -> tuple[np.ndarray, tuple]:
    """A ``resolution``² grid covering the points with a 10% margin; (grid points, extent)."""
    low, high = points.min(axis=0), points.max(axis=0)
    margin = np.maximum((high - low) * 0.1, 1e-3)
    low, high = low - margin, high + margin
    gx, gy = np.meshgrid(np.linspace(low[0], high[0], resolution),
                         np.linspace(low[1], high[1], resolution))
    grid = np.column_stack([gx.ravel(), gy.ravel()]).astype(np.float32)
    return grid, (low[0], high[0], low[1], high[1])


def decision_boundary(
    model,
    x,
    y,
    resolution: int = 200,
    title: str | None = None,
    path: PathLike | None = None,
):
    """The decision regions of a classifier of 2-D inputs over its data ``x`` ``(n, 2)``
    coloured by the labels ``y`` (class indices or one-hot rows).

    A binary model (one sigmoid output) shows P(class 1) as a heat map with the 0.5 contour;
    a softmax model shows each grid point in its predicted class's colour, paler where the
    model is less sure. ``model`` is any Ember model or layer (or a function of an array).

    >>> model = ember.Sequential([ember.Input(shape=(2,)), ember.layers.Dense(3, "softmax")])
    >>> pts = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    >>> fig = decision_boundary(model, pts, [0, 1, 2], resolution=20)
    >>> fig.axes[0].images[0].get_array().shape       # the RGB map of the grid
    (20, 20, 3)
    """
    fn = "decision_boundary"
    points = _array(x, fn, "x")
    if points.ndim != 2 or points.shape[1] != 2 or len(points) == 0:
        raise ValueError(f"{fn}: x must have shape (n, 2) with n >= 1, got {points.shape}")
    labels = _class_labels(y, fn, "y", len(points))
    resolution = _check_int(resolution, fn, "resolution", 2)
    grid, extent = _grid_over(points, resolution)
    probs = _probabilities(_forward(model, grid, fn))
    fig = _new_figure((5.6, 5))
    ax = fig.add_subplot()
    k = max(probs.shape[1], int(labels.max()) + 1 if labels.size else 0)
    if probs.shape[1] == 2:
        if labels.size and labels.max() > 1:
            raise ValueError(
                f"{fn}: the model is a binary classifier but y has labels up to "
                f"{labels.max()}; expected 0 and 1"
            )
        p1 = probs[:, 1].reshape(resolution, resolution)
        image = ax.imshow(p1, origin="lower", extent=extent, cmap="RdBu_r", vmin=0, vmax=1,
                          alpha=0.75, aspect="auto", interpolation="bilinear")
        ax.contour(p1, levels=[0.5], colors="black", linewidths=1.0, extent=extent)
        fig.colorbar(image, ax=ax, label="P(class 1)")
        ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="RdBu_r", vmin=0, vmax=1, s=14,
                   edgecolors="black", linewidths=0.4)
    else:
        colours = _class_colours(k)
        chosen = probs.argmax(axis=1)
        # confidence 1/k (a guess) → pale, 1 → the class colour at 70%: the boundary stands out
        sure = (probs.max(axis=1) - 1.0 / probs.shape[1]) / (1.0 - 1.0 / probs.shape[1])
        strength = (0.15 + 0.55 * np.clip(sure, 0.0, 1.0))[:, None]
        rgb = 1.0 - strength * (1.0 - colours[chosen])
        ax.imshow(rgb.reshape(resolution, resolution, 3), origin="lower", extent=extent,
                  aspect="auto", interpolation="nearest")
        ax.scatter(points[:, 0], points[:, 1], c=colours[labels], s=14, edgecolors="black",
                   linewidths=0.4)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_title(title or "decision boundary")
    return _finish(fig, path)


# ============================================================================== training curves
def _is_history(value) -> bool:
    return isinstance(getattr(value, "history", None), dict)


def _is_log_dict(value) -> bool:
    """A ``History.history`` dict: metric name → sequence of per-epoch numbers."""
    return isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, (Sequence, np.ndarray)) and not isinstance(v, str)
        for k, v in value.items()
    )


def _one_run(value, fn: str) -> dict[str, np.ndarray]:
    logs = value.history if _is_history(value) else value
    if not _is_log_dict(logs) or not logs:
        raise TypeError(
            f"{fn}: expected a History (what fit returns), its .history dict of per-epoch lists, "
            f"or a list/dict of those; got {type(value).__name__}"
            + (" with no epochs recorded" if isinstance(logs, Mapping) and not logs else "")
        )
    return {key: _array(values, fn, f"the {key!r} values").ravel() for key, values in logs.items()}


def _runs(histories, labels, fn: str) -> list[tuple[str, dict[str, np.ndarray]]]:
    """``(label, logs)`` per run from one History/dict, a list of them or a dict label → run."""
    if _is_history(histories) or _is_log_dict(histories):
        runs = [("", _one_run(histories, fn))]
    elif isinstance(histories, Mapping):
        runs = [(str(key), _one_run(value, fn)) for key, value in histories.items()]
    elif isinstance(histories, (list, tuple)):
        runs = [(f"run {i}", _one_run(value, fn)) for i, value in enumerate(histories)]
    else:
        raise TypeError(
            f"{fn}: expected a History, its .history dict, or a list/dict of them; got "
            f"{type(histories).__name__}"
        )
    if not runs:
        raise ValueError(f"{fn}: got no runs to draw")
    if labels is not None:
        labels = [labels] if isinstance(labels, str) else list(labels)
        if len(labels) != len(runs):
            raise ValueError(f"{fn}: got {len(runs)} runs but {len(labels)} labels")
        runs = [(str(label), logs) for label, (_, logs) in zip(labels, runs)]
    return runs


def _metric_names(runs, metrics, fn: str) -> list[str]:
    """The metrics to draw (without ``val_``): the given ones, checked, or all, loss first."""
    available: list[str] = []
    for _, logs in runs:
        for key in logs:
            base = key[4:] if key.startswith("val_") else key
            if base not in available:
                available.append(base)
    if metrics is None:
        return sorted(available, key=lambda name: name != "loss")  # stable: loss, then the rest
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [m for m in metrics if m not in available]
    if unknown or not metrics:
        raise ValueError(
            f"{fn}: metrics {unknown or metrics} not recorded; the histories have {available}"
        )
    return metrics


def training_curves(
    history_or_histories,
    metrics: Sequence[str] | str | None = None,
    labels: Sequence[str] | None = None,
    ncols: int = 3,
    path: PathLike | None = None,
):
    """Per-epoch loss and metrics, one panel each: training solid, validation (``val_``)
    dashed. Several runs — a list of histories or a dict ``label → history`` (e.g. one per
    learning rate) — are drawn in one colour each on the same panels.

    Each argument may be a ``History`` (what ``fit`` returns) or its ``.history`` dict;
    ``metrics`` picks names (``"loss"``, ``"accuracy"``; default: all), ``labels`` names the
    runs.

    >>> runs = {"lr=0.1": {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]},
    ...         "lr=1.0": {"loss": [1.0, 2.0], "val_loss": [1.2, 2.5]}}
    >>> fig = training_curves(runs)
    >>> [line.get_label() for line in fig.axes[0].lines]
    ['lr=0.1 train', 'lr=0.1 val', 'lr=1.0 train', 'lr=1.0 val']
    """
    fn = "training_curves"
    from matplotlib.ticker import MaxNLocator

    runs = _runs(history_or_histories, labels, fn)
    names = _metric_names(runs, metrics, fn)
    fig, axes = _subplots(len(names), _check_int(ncols, fn, "ncols", 1), cell=(3.8, 2.8))
    colours = _class_colours(len(runs))
    for ax, name in zip(axes, names):
        for (label, logs), colour in zip(runs, colours):
            for key, style, part in ((name, "-", "train"), (f"val_{name}", "--", "val")):
                if key in logs and logs[key].size:
                    values = logs[key]
                    text = f"{label} {part}" if label else ("validation" if part == "val" else part)
                    ax.plot(np.arange(1, values.size + 1), values, style, color=colour,
                            label=text, marker="o" if values.size == 1 else None)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 2.5
        ax.legend(fontsize=7)
    return _finish(fig, path)


# ============================================================================== inside a model
def _graph_outputs(model: Model, fn: str) -> list[tuple[str, Layer, object]]:
    """``(name, layer, symbolic output)`` of every layer call in a functional model's graph.

    The public feature-extractor route (Keras'): each layer's ``output`` symbol; a shared layer
    has one per call (``get_output_at``), of which those reachable from this model's inputs
    belong to its graph (building a model on another model's call raises "disconnected").
    """
    try:
        inputs = model.input
    except AttributeError:
        raise TypeError(
            f"{fn}: {model.name!r} is a subclassed model (its layers are called by its Python "
            "code, which has no graph to read); pass a Sequential or a functional "
            "Model(inputs, outputs), or call the layers one by one"
        ) from None
    found = []
    for layer in model.layers:
        if isinstance(layer, InputLayer):
            continue
        try:
            found.append((layer.name, layer, layer.output))
            continue
        except AttributeError:  # shared: called several times
            pass
        for index in itertools.count():
            try:
                symbol = layer.get_output_at(index)
            except IndexError:
                break
            try:
                Model(inputs, symbol, name="viz_reachability_check")
            except (TypeError, ValueError):
                continue  # a call in another model's graph
            found.append((f"{layer.name}#{index}", layer, symbol))
    return found


def _layer_outputs(model, x, fn: str) -> list[tuple[str, Layer, np.ndarray]]:
    """Every layer's output for the input ``x`` (inference mode), in order.

    A Sequential runs its layers one by one (it need not have been built with an Input); a
    functional model is replayed through a feature extractor on its own graph; a plain layer
    gives its own output. A layer with several outputs gives one entry each (``name/i``).
    """
    if not isinstance(model, Layer):
        raise TypeError(f"{fn}: model must be an Ember model or layer, got {type(model).__name__}")
    with no_grad():
        if isinstance(model, Sequential):
            entries, value = [], x
            for layer in model.layers:
                value = layer(value, training=False)
                entries.append((layer.name, layer, value))
        elif isinstance(model, Model):
            symbols = _graph_outputs(model, fn)
            extractor = Model(model.input, [s for _, _, s in symbols], name=f"{model.name}_taps")
            values = extractor(x, training=False)
            entries = [(name, layer, values[i]) for i, (name, layer, _) in enumerate(symbols)]
        else:
            entries = [(model.name, model, model(x, training=False))]
    result = []
    for name, layer, value in entries:
        leaves = tree.flatten(value)
        for i, leaf in enumerate(leaves):
            label = name if len(leaves) == 1 else f"{name}/{i}"
            result.append((label, layer, _array(leaf, fn, f"the output of {name!r}", None)))
    return result


def weight_histograms(
    model: Layer, bins: int = 40, ncols: int = 3, path: PathLike | None = None
):
    """A histogram of every layer's weights, one panel per layer (its kernel, bias, ... drawn
    over each other, with their standard deviations): too-wide or collapsing weight
    distributions show at a glance.

    >>> model = ember.Sequential([ember.Input(shape=(4,)), ember.layers.Dense(3, name="hidden"),
    ...                           ember.layers.Dense(1, name="out")])
    >>> fig = weight_histograms(model)
    >>> [ax.get_title() for ax in fig.axes]
    ['hidden', 'out']
    >>> [text.get_text() for text in fig.axes[1].get_legend().get_texts()]
    ['kernel (std ...)', 'bias (std 0)']
    """
    fn = "weight_histograms"
    if not isinstance(model, Layer):
        raise TypeError(f"{fn}: model must be an Ember model or layer, got {type(model).__name__}")
    bins = _check_int(bins, fn, "bins", 1)
    groups: dict[str, list[tuple[str, np.ndarray]]] = {}
    shown: set[int] = set()
    for layer in model.layers if isinstance(model, Model) else []:
        for name, weight in layer.named_parameters():
            groups.setdefault(layer.name, []).append((name, weight.numpy()))
            shown.add(id(weight))
    own = [p for p in model.weights if id(p) not in shown]  # a subclassed model's add_weight
    if own:
        groups[model.name] = [(p.name or "weight", p.numpy()) for p in own]
    if not groups:
        raise ValueError(
            f"{fn}: {model.name!r} has no weights yet; build it first (give it an Input or call "
            "it on a batch)"
        )
    fig, axes = _subplots(len(groups), _check_int(ncols, fn, "ncols", 1))
    for ax, (owner, weights) in zip(axes, groups.items()):
        for short, values in weights:
            values = values.ravel().astype(np.float64)
            ax.hist(values, bins=bins, histtype="stepfilled", alpha=0.55,
                    label=f"{short} (std {values.std():.3g})")
        ax.set_title(owner)
        ax.legend(fontsize=7)
    return _finish(fig, path)


def activation_histograms(
    model: Layer, x, bins: int = 40, ncols: int = 3, path: PathLike | None = None
):
    """A histogram of every layer's output on the batch ``x``, one panel per layer, with the
    fraction of exact zeros (dead ReLU units) in the title; saturated sigmoid or tanh units show
    as piles at the ends of the range.

    Works for a Sequential (its layers run one by one), a functional model (replayed through a
    feature extractor on its graph) or a single layer.

    >>> model = ember.Sequential([ember.Input(shape=(4,)),
    ...                           ember.layers.Dense(8, "relu", name="hidden"),
    ...                           ember.layers.Dense(1, "sigmoid", name="out")])
    >>> fig = activation_histograms(model, np.random.randn(32, 4))
    >>> [ax.get_title().split(":")[0] for ax in fig.axes]
    ['hidden', 'out']
    """
    fn = "activation_histograms"
    bins = _check_int(bins, fn, "bins", 1)
    outputs = [e for e in _layer_outputs(model, x, fn) if e[2].dtype.kind == "f"]
    if not outputs:
        raise ValueError(f"{fn}: {model.name!r} produced no floating-point layer outputs")
    fig, axes = _subplots(len(outputs), _check_int(ncols, fn, "ncols", 1))
    for ax, (name, _, values) in zip(axes, outputs):
        values = values.ravel().astype(np.float64)
        finite = values[np.isfinite(values)]
        ax.hist(finite if finite.size else [0.0], bins=bins, color="tab:green", alpha=0.8)
        zeros = float(np.mean(values == 0.0)) if values.size else 0.0
        ax.set_title(f"{name}: {zeros:.0%} zeros", fontsize=9)
    return _finish(fig, path)


# ============================================================================== gradients
def _records_mapping(records, fn: str) -> Mapping:
    """Layer name → norm(s) from a mapping, an object with ``.grad_norms`` (a gradient-health
    callback) or a report with ``.layers`` whose entries have ``.name`` and ``.grad_norm``."""
    records = getattr(records, "grad_norms", records)
    if not isinstance(records, Mapping) and isinstance(getattr(records, "layers", None), list):
        records = {r.name: r.grad_norm for r in records.layers
                   if getattr(r, "grad_norm", None) is not None}
    if not isinstance(records, Mapping) or not records:
        raise TypeError(
            f"{fn}: records must be a non-empty mapping layer name → gradient norms (or an "
            f"object with such a .grad_norms), got {type(records).__name__}"
            + (" (empty)" if isinstance(records, Mapping) else "")
        )
    return records


def _norm_records(records, fn: str) -> tuple[list[str], list[np.ndarray], bool]:
    """(layer names, norms per layer, one value each?), checked."""
    records = _records_mapping(records, fn)
    names = [str(name) for name in records]
    values = [_array(v, fn, f"the norms of {name!r}") for name, v in records.items()]
    scalars = [v.ndim == 0 for v in values]
    if any(scalars) and not all(scalars):
        raise ValueError(
            f"{fn}: records must map every layer to a sequence of norms (one per recorded "
            "step) or every layer to one number, not a mix"
        )
    if any(v.ndim > 1 for v in values):
        raise ValueError(f"{fn}: each layer's norms must be a flat sequence of numbers")
    if not all(scalars) and not any(v.size for v in values):
        raise ValueError(f"{fn}: no norms recorded yet (every sequence is empty)")
    return names, [v.ravel() for v in values], all(scalars)


def _step_axis(records, steps, length: int, fn: str) -> tuple[np.ndarray, str]:
    """The x values of the lines: ``steps``, the records' own ``.steps``, or 0, 1, 2, ..."""
    given = steps is not None
    steps = steps if given else getattr(records, "steps", None)
    if steps is None:
        return np.arange(length), "recorded step"
    steps = _array(steps, fn, "steps").ravel()
    if steps.size != length:
        if given:
            raise ValueError(f"{fn}: got {steps.size} steps for {length} recorded norms")
        return np.arange(length), "recorded step"
    return steps, "training step"


def gradient_flow(
    records,
    steps: Sequence[int] | None = None,
    title: str | None = None,
    path: PathLike | None = None,
):
    """The gradient norm of each layer on a log scale: one line per layer across the recorded
    steps (``records``: layer name → sequence of norms, e.g. a gradient-health callback's
    ``.grad_norms``; the callback itself may be passed, and then its ``.steps`` are the x
    axis, as ``steps`` are when given), or one bar per layer (layer name → one norm, or a
    one-shot diagnosis report whose ``.layers`` have ``.name`` and ``.grad_norm``). Layers are
    coloured from the input (dark) to the output (light), so gradients shrinking towards the
    input (vanishing) or growing (exploding) show as an ordered fan of lines. Zero norms are
    drawn at the bottom of the axis; missing ones (NaN) leave a gap.

    >>> fig = gradient_flow({"dense": [1e-6, 1e-5], "dense_1": [1e-2, 1e-2]})
    >>> fig.axes[0].get_yscale(), len(fig.axes[0].lines)
    ('log', 2)
    """
    fn = "gradient_flow"
    names, norms, one_each = _norm_records(records, fn)
    finite = np.concatenate([v[np.isfinite(v) & (v > 0)] for v in norms] + [np.ones(0)])
    floor = finite.min() / 10.0 if finite.size else 1e-12  # where zeros go on a log axis
    from matplotlib import colormaps

    colours = colormaps["viridis"](np.linspace(0.0, 0.9, len(names)))
    fig = _new_figure((max(5.0, 0.45 * len(names)) if one_each else 6.4, 4.2))
    ax = fig.add_subplot()
    ax.set_yscale("log")
    ax.set_ylabel("gradient norm")
    if one_each:
        heights = np.array([v[0] if v[0] != 0 else floor for v in norms])
        ax.bar(np.arange(len(names)), heights, color=colours)
        ax.set_xticks(np.arange(len(names)), names, rotation=60, ha="right", fontsize=7)
    else:
        x, label = _step_axis(records, steps, max(v.size for v in norms), fn)
        for name, values, colour in zip(names, norms, colours):
            shown = np.where(values == 0, floor, values)
            ax.plot(x[:values.size], shown, color=colour, label=name,
                    marker="o" if values.size == 1 else None)
        ax.set_xlabel(label)
        ax.legend(fontsize=7, ncols=1 + len(names) // 12)
    ax.set_title(title or "gradient norm per layer")
    return _finish(fig, path)


# ============================================================================== results
_NORMALIZE = {None: None, "true": 1, "pred": 0, "all": (0, 1)}


def confusion_matrix(
    y_true,
    y_pred,
    class_names: Sequence[object] | None = None,
    normalize: str | None = None,
    path: PathLike | None = None,
):
    """The confusion matrix: row = true class, column = predicted class, the count in every
    cell. ``normalize`` (scikit-learn's choices) colours and labels by the fraction of each
    true class (``"true"``: rows sum to 1, the recall on the diagonal), of each predicted class
    (``"pred"``) or of all samples (``"all"``), with the count below. Labels may be class
    indices, one-hot rows or predicted probabilities (the argmax).

    >>> fig = confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2])
    >>> fig.axes[0].images[0].get_array().data
    array([[1., 0., 0.],
           [0., 1., 1.],
           [0., 0., 1.]])
    """
    fn = "confusion_matrix"
    truth = _class_labels(y_true, fn, "y_true")
    guess = _class_labels(y_pred, fn, "y_pred", len(truth))
    if normalize not in _NORMALIZE:
        raise ValueError(
            f"{fn}: normalize must be None, 'true', 'pred' or 'all', got {normalize!r}"
        )
    k = max(int(truth.max(initial=-1)), int(guess.max(initial=-1))) + 1
    if class_names is not None:
        class_names = [str(name) for name in class_names]
        if len(class_names) < k:
            raise ValueError(f"{fn}: got {len(class_names)} class_names but labels up to {k - 1}")
        k = len(class_names)
    if k == 0:
        raise ValueError(f"{fn}: y_true is empty")
    counts = np.bincount(truth * k + guess, minlength=k * k).reshape(k, k).astype(np.float64)
    shown = counts
    if normalize is not None:
        totals = counts.sum(axis=_NORMALIZE[normalize], keepdims=normalize != "all")
        shown = counts / np.where(totals == 0, 1.0, totals)
    size = min(12.0, 1.5 + 0.5 * k)
    fig = _new_figure((size + 1.0, size))
    ax = fig.add_subplot()
    image = ax.imshow(shown, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax, fraction=0.046)
    threshold = shown.max() / 2.0
    for (i, j), value in np.ndenumerate(shown):
        count = int(counts[i, j])
        text = f"{count}" if normalize is None else f"{value:.2f}\n({count})"
        ax.text(j, i, text, ha="center", va="center", fontsize=max(5, 10 - k // 4),
                color="white" if value > threshold else "black")
    names = class_names or [str(i) for i in range(k)]
    ax.set_xticks(range(k), names, rotation=45 if k > 5 else 0, ha="right" if k > 5 else "center")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion matrix" + (f" (normalized: {normalize})" if normalize else ""))
    return _finish(fig, path)


def predictions_grid(
    images,
    y_true,
    y_pred,
    class_names: Sequence[object] | None = None,
    ncols: int | None = None,
    path: PathLike | None = None,
):
    """Images with their predicted labels (an :func:`image_grid`); a mistake has its caption
    ``"predicted (true t)"`` in red and a red frame. ``y_true``/``y_pred`` are class indices,
    one-hot rows or probabilities (the argmax); ``class_names`` turns indices into names.

    >>> fig = predictions_grid(np.zeros((3, 8, 8)), [0, 1, 2], [0, 2, 2])
    >>> [(t.get_text(), t.get_color()) for t in fig.axes[0].texts]
    [('0', 'black'), ('2 (true 1)', 'red'), ('2', 'black')]
    """
    fn = "predictions_grid"
    try:
        array = _as_images(images)
    except ValueError as err:  # the checks are image_grid's: name this function instead
        raise ValueError(str(err).replace("image_grid:", f"{fn}:", 1)) from None
    n, height, width = array.shape[:3]
    truth = _class_labels(y_true, fn, "y_true", n)
    guess = _class_labels(y_pred, fn, "y_pred", n)
    if class_names is not None:
        top = max(int(truth.max()), int(guess.max()))
        if len(class_names) <= top:
            raise ValueError(f"{fn}: got {len(class_names)} class_names but labels up to {top}")

    def name(i: int) -> str:
        return str(class_names[i]) if class_names is not None else str(i)

    wrong = truth != guess
    captions = [f"{name(g)} (true {name(t)})" if w else name(g)
                for t, g, w in zip(truth, guess, wrong)]
    ncols = int(ncols) if ncols else int(np.ceil(np.sqrt(n)))
    fig = image_grid(array, labels=captions, ncols=ncols,
                     title=f"{int(wrong.sum())} mistake(s) in {n}")
    ax = fig.axes[0]
    gap = max(1, height // 8)  # as image_grid lays the cells out
    from matplotlib.patches import Rectangle

    for i in np.flatnonzero(wrong):
        ax.texts[i].set_color("red")
        row, col = divmod(int(i), ncols)
        ax.add_patch(Rectangle((col * (width + gap) - 0.5, row * (height + gap) - 0.5), width,
                               height, fill=False, edgecolor="red", linewidth=1.5))
    for i in np.flatnonzero(~wrong):
        ax.texts[i].set_color("black")
    return _finish(fig, path)


# ============================================================================== convolutions
def _draw_tiles(ax, tiles: np.ndarray, ncols: int, cmap: str = "RdBu_r") -> None:
    """Grey tiles as one mosaic on one colour scale for all: symmetric about 0 (white = 0) when
    there are negative values, so a weight's sign and size read the same in every tile; from 0
    when there are none (e.g. after a ReLU)."""
    finite = np.abs(tiles[np.isfinite(tiles)])
    bound = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    low = -bound if finite.size and np.nanmin(tiles) < 0 else 0.0
    gap = max(1, tiles.shape[1] // 6)
    image = ax.imshow(mosaic(tiles, ncols, gap, fill=np.nan), vmin=low, vmax=bound,
                      cmap=cmap if low < 0 else "magma")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, shrink=0.8)
    ax.set_xticks([])
    ax.set_yticks([])


def conv_filters(layer_or_kernel, max_filters: int = 64, path: PathLike | None = None):
    """A convolution's filters as small images: the kernel ``(kh, kw, in, out)`` of a
    ``Conv2D`` (HWIO, Keras' layout; a ``Conv1D``'s ``(k, in, out)`` is drawn as 1-pixel-high
    images), or the kernel array itself.

    With 3 input channels each filter is one colour image (scaled to its own range); otherwise
    row ``i``, column ``j`` is the weights from input channel ``i`` to filter ``j``
    (one input channel: a near-square grid of filters), red positive and blue negative.
    At most ``max_filters`` filters (and 16 input channels) are drawn.

    >>> conv = ember.layers.Conv2D(4, 3)
    >>> _ = conv(np.zeros((1, 8, 8, 2)))
    >>> fig = conv_filters(conv)
    >>> fig.axes[0].images[0].get_array().shape     # 2 rows x 4 columns of 3x3, 1-pixel gaps
    (7, 15)
    """
    fn = "conv_filters"
    if isinstance(layer_or_kernel, Layer) and not layer_or_kernel.built:
        raise ValueError(f"{fn}: layer {layer_or_kernel.name!r} has not built its kernel yet; "
                         "call it on a batch first")
    kernel = getattr(layer_or_kernel, "kernel", layer_or_kernel)
    if isinstance(layer_or_kernel, Layer) and kernel is layer_or_kernel:
        raise TypeError(f"{fn}: layer {layer_or_kernel.name!r} has no kernel (not a convolution)")
    kernel = _array(kernel, fn, "layer_or_kernel")
    if kernel.ndim == 3:
        kernel = kernel[None]  # Conv1D (k, in, out): one row of k pixels
    if kernel.ndim != 4:
        raise ValueError(
            f"{fn}: expected a Conv2D layer or a kernel of shape (kh, kw, in, out), got shape "
            f"{kernel.shape}"
        )
    max_filters = _check_int(max_filters, fn, "max_filters", 1)
    kernel = kernel[..., :max_filters]
    kh, kw, cin, cout = kernel.shape
    if cin == 3:  # an RGB filter: each scaled to [0, 1] on its own, as a picture
        images = np.moveaxis(kernel, 3, 0)
        low = images.min(axis=(1, 2, 3), keepdims=True)
        span = images.max(axis=(1, 2, 3), keepdims=True) - low
        fig = image_grid((images - low) / np.where(span == 0, 1.0, span), title="filters (RGB)")
        return _finish(fig, path)
    shown_in = min(cin, 16)
    tiles = np.transpose(kernel[:, :, :shown_in], (2, 3, 0, 1)).reshape(-1, kh, kw)
    ncols = cout if shown_in > 1 else int(np.ceil(np.sqrt(cout)))
    nrows = -(-tiles.shape[0] // ncols)
    scale = max(0.25, min(0.8, 9.0 / max(ncols, nrows)))
    fig = _new_figure((1.2 + scale * ncols * (kw + 1) / (kh + 1), 0.6 + scale * nrows))
    ax = fig.add_subplot()
    _draw_tiles(ax, tiles, ncols)
    if shown_in > 1:
        ax.set_xlabel("filter (output channel) →")
        ax.set_ylabel("← input channel")
    ax.set_title(f"{cout} filters of {kh}x{kw} over {cin} input channel(s)", fontsize=9)
    return _finish(fig, path)


def _pick_output(outputs, layer, fn: str):
    """The entry of :func:`_layer_outputs` for ``layer`` (a name, an index into the layers
    that give image-shaped outputs, or a Layer); by default the first image-shaped one."""
    maps = [e for e in outputs if e[2].ndim == 4]
    if not maps:
        raise ValueError(f"{fn}: no layer of the model gives a (batch, height, width, channels) "
                         "output")
    if layer is None:
        return maps[0]
    for entry in maps:
        if entry[1] is layer or entry[0] == layer:
            return entry
    if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
        if -len(maps) <= layer < len(maps):
            return maps[int(layer)]
    names = [e[0] for e in maps]
    raise ValueError(f"{fn}: layer {layer!r} is not one of the layers with feature maps {names}")


def feature_maps(
    model_or_layer: Layer,
    image,
    layer: str | int | Layer | None = None,
    max_channels: int = 64,
    path: PathLike | None = None,
):
    """The channels of a convolutional layer's output for one ``image`` ``(h, w, c)`` (or
    ``(h, w)``), each as a small picture, on one colour scale (red positive, blue negative).

    ``model_or_layer`` is a convolution layer, or a model: then ``layer`` picks which of its
    layers with image-shaped outputs (a name, a Layer, or an index among those layers;
    default: the first), and the image runs through the model up to it.

    >>> model = ember.Sequential([ember.Input(shape=(8, 8, 1)),
    ...                           ember.layers.Conv2D(4, 3, activation="relu", name="c1")])
    >>> fig = feature_maps(model, np.random.rand(8, 8, 1))
    >>> fig.axes[0].get_title()
    'c1: 4 channels of 6x6'
    """
    fn = "feature_maps"
    array = _array(image, fn, "image", np.float32)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3:
        raise ValueError(f"{fn}: image must be one image (h, w, channels) or (h, w), got shape "
                         f"{array.shape}")
    batch = array[None]
    if isinstance(model_or_layer, Model) or layer is not None:
        name, owner, out = _pick_output(_layer_outputs(model_or_layer, batch, fn), layer, fn)
    else:
        name, owner, out = _layer_outputs(model_or_layer, batch, fn)[0]
        if out.ndim != 4:
            raise ValueError(f"{fn}: {name!r} gives outputs of shape {out.shape}, not "
                             "(batch, height, width, channels) feature maps")
    maps = out[0]
    if getattr(owner, "data_format", "channels_last") != "channels_first":
        maps = np.moveaxis(maps, -1, 0)
    channels = maps.shape[0]
    maps = maps[:_check_int(max_channels, fn, "max_channels", 1)]
    ncols = int(np.ceil(np.sqrt(maps.shape[0])))
    nrows = -(-maps.shape[0] // ncols)
    scale = max(0.5, min(1.2, 8.0 / ncols))
    fig = _new_figure((1.0 + scale * ncols, 0.5 + scale * nrows))
    ax = fig.add_subplot()
    _draw_tiles(ax, maps.astype(np.float64), ncols)
    ax.set_title(f"{name}: {channels} channels of {maps.shape[1]}x{maps.shape[2]}")
    return _finish(fig, path)


# ============================================================================== attention
def _attention_scores(layer_or_scores, query, value, sample: int, fn: str) -> np.ndarray:
    """Attention weights ``(heads, Tq, Tk)`` of one sample: from a MultiHeadAttention layer
    called on ``query``/``value``, or from given scores (2-, 3- or 4-D)."""
    if isinstance(layer_or_scores, Layer):
        if not isinstance(layer_or_scores, MultiHeadAttention):
            raise TypeError(
                f"{fn}: expected a MultiHeadAttention layer or an array of scores, got a "
                f"{type(layer_or_scores).__name__} layer"
            )
        if query is None:
            raise ValueError(f"{fn}: a layer needs query= (batch, Tq, features) to attend over")
        q = _array(query, fn, "query", np.float32)
        v = q if value is None else _array(value, fn, "value", np.float32)
        if q.ndim == 2:  # one sequence: a batch of one
            q, v = q[None], (v[None] if v.ndim == 2 else v)
        with no_grad():
            _, scores = layer_or_scores(q, v, return_attention_scores=True, training=False)
        scores = scores.numpy()
    else:
        scores = _array(layer_or_scores, fn, "layer_or_scores")
    if scores.ndim == 2:
        scores = scores[None]
    elif scores.ndim == 4:
        if not -scores.shape[0] <= sample < scores.shape[0]:
            raise ValueError(f"{fn}: sample {sample} is out of range for a batch of "
                             f"{scores.shape[0]}")
        scores = scores[sample]
    if scores.ndim != 3:
        raise ValueError(f"{fn}: scores must be (Tq, Tk), (heads, Tq, Tk) or (batch, heads, Tq, "
                         f"Tk), got shape {scores.shape}")
    return scores


def _token_labels(tokens, tq: int, tk: int, fn: str) -> tuple[list | None, list | None]:
    """Query and key tick labels: one list for self-attention, or a pair (query, key)."""
    if tokens is None:
        return None, None
    if (len(tokens) == 2 and all(isinstance(t, (list, tuple, np.ndarray)) for t in tokens)):
        query_tokens, key_tokens = list(tokens[0]), list(tokens[1])
    else:
        query_tokens = key_tokens = list(tokens)
    if len(query_tokens) != tq or len(key_tokens) != tk:
        raise ValueError(
            f"{fn}: tokens give {len(query_tokens)} query and {len(key_tokens)} key labels but "
            f"the scores are {tq} x {tk}; pass one list (self-attention) or a pair of lists"
        )
    return [str(t) for t in query_tokens], [str(t) for t in key_tokens]


def attention_map(
    layer_or_scores,
    query=None,
    value=None,
    tokens: Sequence[object] | None = None,
    head: int | None = None,
    sample: int = 0,
    path: PathLike | None = None,
):
    """Attention weights as heat maps, one panel per head (or only ``head``): row = query
    position, column = key position, each row summing to 1.

    Give a ``MultiHeadAttention`` layer with ``query`` ``(batch, Tq, features)`` (or one
    sequence ``(Tq, features)``) and optionally ``value`` (default: the query, self-attention);
    it is called with ``return_attention_scores=True``. Or give the scores: ``(Tq, Tk)``,
    ``(heads, Tq, Tk)`` or ``(batch, heads, Tq, Tk)`` (``sample`` picks the batch entry).
    ``tokens`` labels the axes: one list, or a pair ``(query_tokens, key_tokens)``.

    >>> mha = ember.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    >>> fig = attention_map(mha, np.random.rand(5, 8), tokens=list("abcde"))
    >>> [ax.get_title() for ax in fig.axes if ax.get_title()]
    ['head 0', 'head 1']
    """
    fn = "attention_map"
    scores = _attention_scores(layer_or_scores, query, value, sample, fn)
    heads = list(range(scores.shape[0]))
    if head is not None:
        if isinstance(head, bool) or not isinstance(head, (int, np.integer)) or not (
            -len(heads) <= head < len(heads)
        ):
            raise ValueError(f"{fn}: head must be an integer in [0, {len(heads)}), got {head!r}")
        heads = [heads[head]]
    tq, tk = scores.shape[1:]
    query_labels, key_labels = _token_labels(tokens, tq, tk, fn)
    cell = (max(2.6, 0.3 * tk + 1.0), max(2.4, 0.3 * tq + 0.8))
    fig, axes = _subplots(len(heads), 4, cell=cell)
    top = float(scores[heads].max()) if scores.size else 1.0
    for i, (ax, h) in enumerate(zip(axes, heads)):
        image = ax.imshow(scores[h], cmap="viridis", vmin=0.0, vmax=top if top > 0 else 1.0)
        ax.set_title(f"head {h}")
        if key_labels is not None:
            ax.set_xticks(range(tk), key_labels, rotation=90, fontsize=7)
            ax.set_yticks(range(tq), query_labels, fontsize=7)
        ax.set_xlabel("key")
        if i % 4 == 0:  # the rows are the same queries in every panel: label them once a row
            ax.set_ylabel("query")
        else:
            ax.tick_params(labelleft=False)
    fig.colorbar(image, ax=axes, shrink=0.8)
    return _finish(fig, path)


# ============================================================================== loss surface
class LossSurface(NamedTuple):
    """The numbers behind :func:`loss_surface`.

    ``losses[i, j]`` is the loss at weights ``θ + alphas[j]·d1 + betas[i]·d2`` (the centre,
    ``alphas == 0`` and ``betas == 0``, is the model's own weights); ``directions`` holds
    ``d1`` and ``d2`` (one array per trainable weight; random directions are zero for biases
    and other 1-D weights);
    ``path`` is the ``(k, 2)`` coordinates of the given weight snapshots (or ``None``).
    """

    alphas: np.ndarray
    betas: np.ndarray
    losses: np.ndarray
    directions: tuple[list[np.ndarray], list[np.ndarray]]
    path: np.ndarray | None


def _filter_normalized(weights: list[np.ndarray], rng) -> list[np.ndarray]:
    """A Gaussian direction with each filter's norm set to the norm of the same filter of the
    weights (Li et al. 2018), so the plot's scale means the same for every layer whatever its
    weights' size. A filter is a slice along the last axis (an output unit of a Dense
    ``(in, out)`` kernel, an output channel of an HWIO conv kernel); 1-D weights (biases,
    normalization scales) get zeros, as in the paper."""
    directions = []
    for w in weights:
        if w.ndim <= 1:
            directions.append(np.zeros_like(w, dtype=np.float64))
            continue
        d = rng.standard_normal(w.shape).reshape(-1, w.shape[-1])
        w_norms = np.linalg.norm(w.reshape(-1, w.shape[-1]).astype(np.float64), axis=0)
        d *= w_norms / np.maximum(np.linalg.norm(d, axis=0), 1e-12)
        directions.append(d.reshape(w.shape))
    return directions


def _snapshot_arrays(snapshot, model: Layer, fn: str) -> list[np.ndarray]:
    """One weight snapshot as the model's trainable weights, in order: a ``state_dict()``
    (dotted names) or a list as ``get_weights()`` (every weight) or of the trainable ones."""
    trainable = model.trainable_weights
    if isinstance(snapshot, Mapping):
        names = {id(p): name for name, p in model.named_parameters()}
        missing = [names[id(p)] for p in trainable if names[id(p)] not in snapshot]
        if missing:
            raise ValueError(f"{fn}: a path_weights snapshot has no {missing[0]!r}")
        arrays = [snapshot[names[id(p)]] for p in trainable]
    else:
        arrays = list(snapshot)
        every = model.weights
        if len(arrays) == len(every) and len(every) != len(trainable):
            wanted = {id(p) for p in trainable}
            arrays = [a for a, p in zip(arrays, every) if id(p) in wanted]
        if len(arrays) != len(trainable):
            raise ValueError(
                f"{fn}: a path_weights snapshot has {len(arrays)} arrays; expected "
                f"{len(every)} (as get_weights()) or {len(trainable)} (the trainable weights)"
            )
    arrays = [_array(a, fn, "path_weights") for a in arrays]
    for a, p in zip(arrays, trainable):
        if a.shape != p.shape:
            raise ValueError(f"{fn}: a path_weights snapshot has shape {a.shape} for weight "
                             f"{p.name!r} of shape {p.shape}")
    return arrays


def _path_offsets(snapshots, model, origin, fn: str) -> np.ndarray:
    """``(k, P)``: each snapshot's trainable weights minus the current ones, flattened."""
    flat_origin = np.concatenate([w.ravel() for w in origin]).astype(np.float64)
    return np.stack([
        np.concatenate([a.ravel() for a in _snapshot_arrays(s, model, fn)]) - flat_origin
        for s in snapshots
    ])


def _project_path(offsets: np.ndarray, directions) -> np.ndarray:
    """Each offset's coordinates, least-squares, in the plane of the two directions."""
    flat_dirs = np.stack([np.concatenate([d.ravel() for d in ds]) for ds in directions], axis=1)
    coords, *_ = np.linalg.lstsq(flat_dirs, offsets.T, rcond=None)
    return coords.T


def _pca_directions(offsets: np.ndarray, origin: list[np.ndarray], fn: str):
    """The top two principal directions (unit vectors) of the path's offsets from the final
    weights (Li et al. 2018, section 7), split back into one array per weight."""
    if offsets.shape[0] < 2:
        raise ValueError(f"{fn}: directions='pca' needs at least 2 path_weights snapshots")
    _, singular, vt = np.linalg.svd(offsets, full_matrices=False)
    if singular.size < 2 or singular[1] <= 1e-12 * max(singular[0], 1e-300):
        raise ValueError(f"{fn}: the path_weights snapshots span fewer than 2 directions (the "
                         "weights moved along a line or not at all); use directions='random'")
    sizes = np.cumsum([w.size for w in origin])[:-1]
    return tuple([piece.reshape(w.shape) for piece, w in zip(np.split(vt[i], sizes), origin)]
                 for i in range(2))


def _loss_function(model, loss, fn: str):
    """``f(x, y) -> float``: the given loss, or the compiled one (with the model's
    regularization penalties, as ``evaluate`` reports it)."""
    if loss is not None:
        loss_fn = _losses.get(loss)
        return lambda x, y: float(loss_fn(y, model(x, training=False)).numpy())

    def compiled(x, y):
        value = model.compute_loss(x, y, model(x, training=False), training=False)
        if value is None:
            raise ValueError(
                f"{fn}: {model.name!r} has no loss; compile it with one or pass loss= "
                "(e.g. loss='sparse_categorical_crossentropy')"
            )
        return float(value.numpy())

    if not hasattr(model, "compute_loss"):
        raise TypeError(f"{fn}: a plain layer has no compiled loss; pass loss=")
    return compiled


def _subset(x, y, max_samples: int, seed: int, fn: str):
    """At most ``max_samples`` samples of ``x`` and ``y`` (arrays, or structures of them)."""
    n = len(tree.flatten(x)[0])
    if n == 0:
        raise ValueError(f"{fn}: x is empty")
    if n <= max_samples:
        return x, y
    rows = np.sort(np.random.default_rng(seed).choice(n, max_samples, replace=False))
    pick = lambda a: _array(a, fn, "x or y", None)[rows]  # noqa: E731
    return tree.map_structure(pick, x), None if y is None else tree.map_structure(pick, y)


def _check_surface_args(model, steps, span, max_samples, fn: str) -> tuple[int, float, int]:
    if not isinstance(model, Layer):
        raise TypeError(f"{fn}: model must be an Ember model or layer, got {type(model).__name__}")
    try:
        span = float(span)
    except (TypeError, ValueError):
        span = float("nan")
    if not (math.isfinite(span) and span > 0):
        raise ValueError(f"{fn}: span must be a positive number, got {span!r}")
    return (_check_int(steps, fn, "steps", 2), span,
            _check_int(max_samples, fn, "max_samples", 1))


def _surface_plane(model, origin, path_weights, directions: str, seed: int, span: float,
                   fn: str):
    """(the two directions, the path's coordinates or None, the grid's half-width)."""
    offsets = None if path_weights is None else _path_offsets(path_weights, model, origin, fn)
    if directions == "pca":
        if offsets is None:
            raise ValueError(f"{fn}: directions='pca' needs path_weights (the snapshots' PCA)")
        chosen = _pca_directions(offsets, origin, fn)
    else:
        rng = np.random.default_rng(seed)
        chosen = (_filter_normalized(origin, rng), _filter_normalized(origin, rng))
    coords = None if offsets is None else _project_path(offsets, chosen)
    if coords is not None and coords.size and np.all(np.isfinite(coords)):
        extent = 1.1 * float(np.abs(coords).max())
        span = span * extent if directions == "pca" else max(span, extent)
    return chosen, coords, span


def _sweep(params, origin, chosen, grid: np.ndarray, evaluate, x, y) -> np.ndarray:
    """The loss at every grid point; the weights' own arrays are put back, even on an error."""
    moving = [k for k in range(len(params)) if chosen[0][k].any() or chosen[1][k].any()]
    losses = np.empty((grid.size, grid.size))
    try:
        with no_grad():
            for i, beta in enumerate(grid):
                for j, alpha in enumerate(grid):
                    for k in moving:  # whole-array updates: one NumPy expression per weight
                        shifted = origin[k] + alpha * chosen[0][k] + beta * chosen[1][k]
                        params[k].data = shifted.astype(params[k].dtype)
                    losses[i, j] = evaluate(x, y)
    finally:
        for p, array in zip(params, origin):
            p.data = array
    return losses


def loss_surface_grid(
    model: Layer,
    x,
    y,
    steps: int = 25,
    span: float = 1.0,
    path_weights: Sequence[object] | None = None,
    seed: int = 0,
    loss=None,
    max_samples: int = 256,
    directions: str = "random",
) -> LossSurface:
    """The loss on a ``steps`` × ``steps`` grid of weights ``θ + α·d1 + β·d2`` around the
    model's weights ``θ``, for ``α, β`` in ``[-span, span]``; see :class:`LossSurface` and
    :func:`loss_surface`.

    ``directions="random"``: two Gaussian directions, filter-normalized (Li et al. 2018,
    "Visualizing the Loss Landscape of Neural Nets"), the range widened to hold the projected
    ``path_weights``. Random directions in many dimensions are nearly orthogonal to the path
    training took, so its projection stays close to the centre; ``directions="pca"`` uses the
    top two principal directions of the snapshots' offsets from ``θ`` instead (the paper's
    section 7), and then ``span`` is in units of the path's extent (1.1 × its largest
    coordinate).

    The loss is the compiled one (as ``evaluate`` reports it) or ``loss`` (a name or
    function), on at most ``max_samples`` samples of ``x`` (a seeded random subset). The model
    runs ``steps²`` times in inference mode. Its weights are restored afterwards — the very
    arrays, even when an evaluation raises.

    >>> model = ember.Sequential([ember.Input(shape=(2,)), ember.layers.Dense(1)])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> x, y = np.random.rand(16, 2), np.random.rand(16, 1)
    >>> grid = loss_surface_grid(model, x, y, steps=5)
    >>> grid.losses.shape, bool(np.isclose(grid.losses[2, 2], model.evaluate(x, y, verbose=0)))
    ((5, 5), True)
    """
    fn = "loss_surface"
    steps, span, max_samples = _check_surface_args(model, steps, span, max_samples, fn)
    if directions not in ("random", "pca"):
        raise ValueError(f"{fn}: directions must be 'random' or 'pca', got {directions!r}")
    x, y = _subset(x, y, max_samples, seed, fn)
    evaluate = _loss_function(model, loss, fn)
    with no_grad():
        evaluate(x, y)  # builds the weights of a model never called yet
    params = model.trainable_weights
    if not params:
        raise ValueError(f"{fn}: {model.name!r} has no trainable weights to move")
    origin = [p.data for p in params]  # the arrays themselves, to put back untouched
    chosen, coords, span = _surface_plane(model, origin, path_weights, directions, seed, span,
                                          fn)
    # symmetric about an exact 0, so an odd number of steps has the weights themselves at the
    # centre (linspace's middle point can be off by an ulp)
    grid = (np.arange(steps) - (steps - 1) / 2) * (2.0 * span / (steps - 1))
    losses = _sweep(params, origin, chosen, grid, evaluate, x, y)
    return LossSurface(grid, grid.copy(), losses, chosen, coords)


def loss_surface(
    model: Layer,
    x,
    y,
    steps: int = 25,
    span: float = 1.0,
    path_weights: Sequence[object] | None = None,
    seed: int = 0,
    path: PathLike | None = None,
    loss=None,
    max_samples: int = 256,
    directions: str = "random",
):
    """A contour plot of the loss around the model's weights along two random
    filter-normalized directions (:func:`loss_surface_grid` computes it, and explains
    ``directions="pca"``, the plane the path itself spans), the weights at the centre (a red
    star); with ``path_weights`` — weight snapshots taken during training, each a
    ``model.get_weights()`` list or a ``state_dict()`` — the optimizer's path projected onto
    the two directions, from a white circle to a white cross. The colours follow a log scale
    when the loss spans more than two orders of magnitude.

    >>> model = ember.Sequential([ember.Input(shape=(2,)), ember.layers.Dense(1)])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> x, y = np.random.rand(16, 2), np.random.rand(16, 1)
    >>> snapshots = [model.get_weights()]
    >>> _ = model.fit(x, y, epochs=2, verbose=0)
    >>> fig = loss_surface(model, x, y, steps=5, path_weights=snapshots + [model.get_weights()])
    >>> len(fig.axes[0].lines)      # the centre, the path, its start and its end
    4
    """
    surface = loss_surface_grid(model, x, y, steps, span, path_weights, seed, loss, max_samples,
                                directions)
    from matplotlib.colors import LogNorm

    alphas, betas, losses = surface.alphas, surface.betas, surface.losses
    finite = losses[np.isfinite(losses)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    shown = np.where(np.isfinite(losses), losses, high)  # diverged points: the top colour
    fig = _new_figure((6.2, 5.0))
    ax = fig.add_subplot()
    if high <= low:
        high = low + 1e-12 + abs(low) * 1e-6  # a flat surface still gets levels
    if low > 0 and high / low > 100:
        levels, norm = np.geomspace(low, high, 21), LogNorm(low, high)
    else:
        levels, norm = np.linspace(low, high, 21), None
    filled = ax.contourf(alphas, betas, shown, levels=levels, norm=norm, cmap="viridis")
    ax.contour(alphas, betas, shown, levels=levels, norm=norm, colors="black", linewidths=0.3)
    fig.colorbar(filled, ax=ax, label="loss")
    ax.plot([0.0], [0.0], marker="*", color="red", markersize=12, linestyle="none")
    if surface.path is not None and len(surface.path):
        px, py = surface.path[:, 0], surface.path[:, 1]
        ax.plot(px, py, "-", color="white", linewidth=1.2, marker=".", markersize=4)
        ax.plot(px[:1], py[:1], "o", color="white", markersize=6)
        ax.plot(px[-1:], py[-1:], "x", color="white", markersize=8, markeredgewidth=2)
    kind = "filter-normalized" if directions == "random" else "PCA of the path"
    ax.set_xlabel(f"direction 1 ({kind})")
    ax.set_ylabel(f"direction 2 ({kind})")
    ax.set_title("loss surface")
    ax.set_aspect("equal")
    return _finish(fig, path)


# ============================================================================== embeddings
def pca(codes, n_components: int = 2) -> np.ndarray:
    """``codes`` ``(n, d)`` (or ``(n, ...)``, flattened) projected on their top
    ``n_components`` principal components, by NumPy's SVD of the centred data. Each
    component's sign is fixed so that its largest loading is positive (a deterministic
    picture: SVD may flip signs between machines).

    >>> pca(np.array([[0.0, 0.0], [2.0, 0.0], [4.0, 0.0]]), 1)
    array([[-2.],
           [ 0.],
           [ 2.]])
    """
    fn = "pca"
    data = _array(codes, fn, "codes")
    if data.ndim < 2 or data.shape[0] < 2:
        raise ValueError(f"{fn}: codes must be (n, features) with n >= 2, got {data.shape}")
    data = data.reshape(data.shape[0], -1)
    n_components = _check_int(n_components, fn, "n_components", 1)
    if n_components > min(data.shape):
        raise ValueError(f"{fn}: n_components must be <= min(n, features) = {min(data.shape)}, "
                         f"got {n_components}")
    centred = data - data.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    components = vt[:n_components]
    signs = np.sign(components[np.arange(n_components), np.abs(components).argmax(axis=1)])
    return centred @ (components * np.where(signs == 0, 1.0, signs)[:, None]).T


def embedding_projection(
    codes,
    labels: Sequence[object] | np.ndarray | None = None,
    method: str = "pca",
    title: str | None = None,
    path: PathLike | None = None,
):
    """Learned codes or embeddings ``(n, d)`` projected to 2-D (``method="pca"``: the top two
    principal components, :func:`pca`) and scattered, coloured by ``labels`` (a
    :func:`scatter_2d`); the title gives the share of the variance the two components keep.

    >>> codes = np.random.default_rng(0).normal(size=(50, 8))
    >>> fig = embedding_projection(codes, labels=np.arange(50) % 3)
    >>> fig.axes[0].collections[0].get_offsets().shape
    (50, 2)
    """
    fn = "embedding_projection"
    if method != "pca":
        raise ValueError(f"{fn}: method must be 'pca' (the only projection available), got "
                         f"{method!r}")
    data = _array(codes, fn, "codes")
    if data.ndim >= 2:
        data = data.reshape(data.shape[0], -1)
    if data.ndim != 2 or data.shape[1] < 2:
        raise ValueError(f"{fn}: codes must be (n, d) with d >= 2, got shape {data.shape}")
    if labels is not None and len(labels) != len(data):
        raise ValueError(f"{fn}: got {len(data)} codes but {len(labels)} labels")
    points = pca(data, 2)
    total = float(((data - data.mean(axis=0)) ** 2).sum())
    kept = float((points ** 2).sum()) / total if total > 0 else 1.0
    return scatter_2d(points, labels=labels,
                      title=title or f"PCA of {data.shape[1]}-D codes ({kept:.0%} of variance)",
                      path=path)
