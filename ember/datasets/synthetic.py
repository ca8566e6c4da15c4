"""Seeded toy 2-D classification sets for quick experiments and tests.

Every generator returns ``(x, y)`` with ``x`` float32 of shape ``(n_samples, 2)`` and ``y``
int64 of shape ``(n_samples,)``, shuffled, with classes as balanced as ``n_samples``
allows. The same ``seed`` always gives the same data.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

__all__ = ["blobs", "xor", "circles", "spirals"]


def _check_common(fn: str, n_samples: object, noise: object) -> None:
    if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral):
        raise ValueError(f"{fn}: n_samples must be an int, got {n_samples!r}")
    if n_samples <= 0:
        raise ValueError(f"{fn}: n_samples must be > 0, got {n_samples}")
    if (
        isinstance(noise, bool)
        or not isinstance(noise, numbers.Real)
        or not math.isfinite(noise)
        or noise < 0
    ):
        raise ValueError(f"{fn}: noise must be a finite number >= 0, got {noise!r}")


def _split_counts(n: int, k: int) -> np.ndarray:
    """Split ``n`` samples into ``k`` groups whose sizes differ by at most one."""
    counts = np.full(k, n // k, dtype=np.int64)
    counts[: n % k] += 1
    return counts


def _finish(
    points: np.ndarray, labels: np.ndarray, noise: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    points = points + noise * rng.standard_normal(points.shape)
    # Generators lay classes out in blocks; shuffle so mini-batches are mixed.
    order = rng.permutation(len(labels))
    return points[order].astype(np.float32), labels[order].astype(np.int64)


def blobs(
    n_samples: int = 200,
    noise: float = 1.0,
    centers: Sequence[Sequence[float]] = ((-2.0, -2.0), (2.0, 2.0)),
    seed: int | None = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic Gaussian blobs, one class per centre (two blobs by default).

    Args:
        n_samples: Total number of points, split evenly between the centres.
        noise: Standard deviation of each blob.
        centers: Blob centres, shape ``(k, 2)``; class ``i`` is drawn around ``centers[i]``.
        seed: Seed for ``np.random.default_rng``.

    Example:
        >>> from ember.datasets.synthetic import blobs
        >>> x, y = blobs(n_samples=100, seed=1)
        >>> x.shape, x.dtype, y.dtype, int(y.sum())
        ((100, 2), dtype('float32'), dtype('int64'), 50)
    """
    _check_common("blobs", n_samples, noise)
    c = np.asarray(centers, dtype=np.float64)
    if c.ndim != 2 or c.shape[1] != 2 or c.shape[0] == 0:
        raise ValueError(
            f"blobs: centers must be a non-empty sequence of (x, y) pairs, shape (k, 2); got "
            f"shape {c.shape}"
        )
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(c)), _split_counts(n_samples, len(c)))
    return _finish(c[labels], labels, noise, rng)


def xor(
    n_samples: int = 200, noise: float = 0.1, seed: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Four clusters around ``(±1, ±1)``; the label is the XOR of the centre's signs.

    Clusters at ``(1, 1)`` and ``(-1, -1)`` are class 0, ``(1, -1)`` and ``(-1, 1)`` class 1,
    so no straight line separates the classes. Labels follow the cluster, not the noisy point.

    Args:
        n_samples: Total number of points, split evenly between the four clusters.
        noise: Standard deviation of each cluster.
        seed: Seed for ``np.random.default_rng``.

    Example:
        >>> from ember.datasets.synthetic import xor
        >>> x, y = xor(n_samples=8, noise=0.0)
        >>> bool(((x[:, 0] * x[:, 1] < 0) == (y == 1)).all())
        True
    """
    _check_common("xor", n_samples, noise)
    rng = np.random.default_rng(seed)
    corners = np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]])
    # Alternate classes 0,1,0,1 so an odd remainder does not all land in one class.
    cluster = np.repeat(np.array([0, 2, 1, 3]), _split_counts(n_samples, 4))
    labels = (corners[cluster, 0] * corners[cluster, 1] < 0).astype(np.int64)
    return _finish(corners[cluster], labels, noise, rng)


def circles(
    n_samples: int = 200, noise: float = 0.05, factor: float = 0.5, seed: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Two concentric circles: radius 1 is class 0, radius ``factor`` is class 1.

    Args:
        n_samples: Total number of points (the outer circle gets the odd one).
        noise: Standard deviation of Gaussian noise added to each coordinate.
        factor: Inner radius relative to the outer one, in ``(0, 1)``.
        seed: Seed for ``np.random.default_rng``.

    Example:
        >>> from ember.datasets.synthetic import circles
        >>> x, y = circles(n_samples=100, noise=0.0, factor=0.5)
        >>> r = (x ** 2).sum(axis=1) ** 0.5
        >>> bool(abs(r[y == 0] - 1).max() < 1e-5 and abs(r[y == 1] - 0.5).max() < 1e-5)
        True
    """
    _check_common("circles", n_samples, noise)
    if not (isinstance(factor, numbers.Real) and 0 < factor < 1):
        raise ValueError(
            f"circles: factor must be between 0 and 1 (exclusive), got {factor!r}; it is the "
            "inner circle's radius relative to the outer one"
        )
    rng = np.random.default_rng(seed)
    counts = _split_counts(n_samples, 2)
    parts = []
    for count, radius in zip(counts, (1.0, float(factor)), strict=True):
        angle = np.linspace(0.0, 2.0 * np.pi, count, endpoint=False)
        parts.append(radius * np.stack([np.cos(angle), np.sin(angle)], axis=1))
    labels = np.repeat(np.arange(2), counts)
    return _finish(np.concatenate(parts), labels, noise, rng)


def spirals(
    n_samples: int = 200, noise: float = 0.1, turns: float = 1.5, seed: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved Archimedean spirals, one per class, reaching radius 1.

    Class 1 is class 0 rotated by half a turn. Points are spread evenly along each arm
    starting a little away from the centre, where the arms would otherwise overlap.

    Args:
        n_samples: Total number of points (class 0 gets the odd one).
        noise: Standard deviation of Gaussian noise added to each coordinate.
        turns: How many full turns each arm makes; more turns make the task harder.
        seed: Seed for ``np.random.default_rng``.

    Example:
        >>> from ember.datasets.synthetic import spirals
        >>> x, y = spirals(n_samples=200, seed=0)
        >>> x.shape, sorted(set(y.tolist()))
        ((200, 2), [0, 1])
    """
    _check_common("spirals", n_samples, noise)
    if not (isinstance(turns, numbers.Real) and math.isfinite(turns) and turns > 0):
        raise ValueError(f"spirals: turns must be a finite number > 0, got {turns!r}")
    rng = np.random.default_rng(seed)
    counts = _split_counts(n_samples, 2)
    parts = []
    for label, count in enumerate(counts):
        t = np.linspace(0.1, 1.0, count)
        angle = 2.0 * np.pi * float(turns) * t + np.pi * label
        parts.append(t[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1))
    labels = np.repeat(np.arange(2), counts)
    return _finish(np.concatenate(parts), labels, noise, rng)
