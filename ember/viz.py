"""Pictures of data and models with matplotlib (the ``viz`` extra: ``pip install ember[viz]``).

Every function draws on a new figure (not registered with pyplot: nothing to close), returns the
:class:`matplotlib.figure.Figure`, and saves it when given ``path`` (PNG or SVG by the suffix;
missing folders are created). Nothing here is imported by the rest of Ember, so matplotlib stays
optional.

>>> import numpy as np
>>> from ember import viz
>>> fig = viz.image_grid(np.zeros((6, 8, 8)), labels=list("abcdef"), ncols=3)
>>> [t.get_text() for t in fig.axes[0].texts]
['a', 'b', 'c', 'd', 'e', 'f']
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["image_grid", "mosaic", "save_figure", "scatter_2d"]


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
