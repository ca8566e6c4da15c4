"""Small data-preparation helpers: one-hot labels, feature standardisation, train/test split."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ember.utils import to_categorical  # one implementation, also ember.utils' name

__all__ = ["to_categorical", "Standardizer", "train_test_split"]


class Standardizer:
    """Scale features to zero mean and unit variance, computed over axis 0.

    Constant features (all samples equal) get a standard deviation of 1 so they map to 0
    instead of dividing by zero. Outputs are float32 unless the input is float64.

    Attributes:
        mean_: Per-feature mean, shape ``x.shape[1:]`` (float64), set by :meth:`fit`.
        std_: Per-feature standard deviation with zeros replaced by 1 (float64).

    Example:
        >>> import numpy as np
        >>> from ember.datasets import Standardizer
        >>> s = Standardizer().fit(np.array([[0.0, 5.0], [2.0, 5.0]]))
        >>> s.transform(np.array([[1.0, 5.0], [3.0, 5.0]])).tolist()
        [[0.0, 0.0], [2.0, 0.0]]
    """

    def __init__(self) -> None:
        self.mean_: np.ndarray | None = None
        self.std_: np.ndarray | None = None

    def __repr__(self) -> str:
        shape = None if self.mean_ is None else self.mean_.shape
        return f"Standardizer(fitted={self.mean_ is not None}, feature_shape={shape})"

    @staticmethod
    def _as_float(x: Any, what: str) -> np.ndarray:
        arr = np.asarray(x)
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"Standardizer.{what} expects numbers, got dtype {arr.dtype}")
        if arr.ndim < 1:
            raise ValueError(
                f"Standardizer.{what} expects an array of samples (at least 1-D), got a scalar"
            )
        return arr

    def fit(self, x: Any) -> Standardizer:
        """Compute per-feature mean and std of ``x`` over axis 0; return ``self``.

        Example:
            >>> import numpy as np
            >>> from ember.datasets import Standardizer
            >>> Standardizer().fit(np.array([[1.0], [3.0]])).mean_.tolist()
            [2.0]
        """
        arr = self._as_float(x, "fit")
        if arr.shape[0] == 0:
            raise ValueError("Standardizer.fit needs at least one sample, got an empty array")
        data = arr.astype(np.float64, copy=False)
        mean = data.mean(axis=0)
        std = data.std(axis=0)
        # Test constancy exactly: the computed mean of a constant column can be off by an
        # ulp, leaving a tiny nonzero std and x - mean != 0. Use the value itself instead.
        constant = np.ptp(data, axis=0) == 0
        mean[constant] = data[0][constant]
        std[constant] = 1.0
        self.mean_ = mean
        self.std_ = std
        return self

    def _check(self, arr: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
        if self.mean_ is None or self.std_ is None:
            raise RuntimeError(f"Standardizer.{what} called before fit; call fit(x) first")
        if arr.shape[1:] != self.mean_.shape:
            raise ValueError(
                f"Standardizer.{what}: fitted on samples of shape {self.mean_.shape}, got "
                f"samples of shape {arr.shape[1:]} (array shape {arr.shape}); use data with "
                "the same features or fit again"
            )
        return self.mean_, self.std_

    @staticmethod
    def _out_dtype(arr: np.ndarray) -> type:
        return np.float64 if arr.dtype == np.float64 else np.float32

    def transform(self, x: Any) -> np.ndarray:
        """Return ``(x - mean_) / std_``.

        Example:
            >>> import numpy as np
            >>> from ember.datasets import Standardizer
            >>> Standardizer().fit([[0.0], [2.0]]).transform([[4.0]]).tolist()
            [[3.0]]
        """
        arr = self._as_float(x, "transform")
        mean, std = self._check(arr, "transform")
        return ((arr - mean) / std).astype(self._out_dtype(arr))

    def fit_transform(self, x: Any) -> np.ndarray:
        """Fit on ``x`` and return it standardised.

        Example:
            >>> import numpy as np
            >>> from ember.datasets import Standardizer
            >>> Standardizer().fit_transform(np.array([[1.0], [3.0]])).ravel().tolist()
            [-1.0, 1.0]
        """
        return self.fit(x).transform(x)

    def inverse_transform(self, x: Any) -> np.ndarray:
        """Undo :meth:`transform`: return ``x * std_ + mean_``.

        Example:
            >>> import numpy as np
            >>> from ember.datasets import Standardizer
            >>> s = Standardizer().fit(np.array([[1.0], [3.0]]))
            >>> s.inverse_transform(s.transform([[5.0]])).tolist()
            [[5.0]]
        """
        arr = self._as_float(x, "inverse_transform")
        mean, std = self._check(arr, "inverse_transform")
        return (arr * std + mean).astype(self._out_dtype(arr))


def _stratified_test_indices(
    labels: np.ndarray, n_test: int, rng: np.random.Generator
) -> np.ndarray:
    """Pick ``n_test`` indices so every class keeps its share (largest-remainder rounding)."""
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    n = labels.shape[0]
    if counts.min() < 2:
        rare = classes[int(np.argmin(counts))].tolist()
        raise ValueError(
            f"stratify: class {rare!r} has only 1 sample, so it cannot appear in both train and "
            "test; drop or merge rare classes, or pass stratify=None"
        )
    n_train = n - n_test
    if n_test < len(classes) or n_train < len(classes):
        raise ValueError(
            f"stratify: a split of {n_train} train / {n_test} test samples cannot hold all "
            f"{len(classes)} classes on both sides; choose test_size so both parts have at "
            f"least {len(classes)} samples"
        )
    exact = counts * (n_test / n)
    take = np.floor(exact).astype(np.int64)
    # Hand out the rounding remainder to the classes closest to their next sample; ties are
    # broken randomly so no class is systematically favoured.
    order = np.lexsort((rng.permutation(len(classes)), -(exact - take)))
    take[order[: n_test - int(take.sum())]] += 1
    # Keep at least one sample of every class on each side.
    take = np.clip(take, 1, counts - 1)
    while take.sum() > n_test:
        take[np.argmax(np.where(take > 1, take - exact, -np.inf))] -= 1
    while take.sum() < n_test:
        take[np.argmax(np.where(take < counts - 1, exact - take, -np.inf))] += 1
    picked = []
    for k in range(len(classes)):
        members = np.flatnonzero(inverse == k)
        picked.append(rng.permutation(members)[: take[k]])
    return np.concatenate(picked)


def train_test_split(
    *arrays: Any,
    test_size: float | int = 0.25,
    shuffle: bool = True,
    seed: int | None = 0,
    stratify: Any = None,
) -> list[np.ndarray]:
    """Split arrays into random train and test subsets, like scikit-learn's function.

    Args:
        *arrays: One or more array-likes with the same length (first axis).
        test_size: Fraction of samples in ``(0, 1)`` (rounded up) or an absolute count.
        shuffle: Shuffle before splitting; if ``False`` the last samples form the test set.
        seed: Seed for ``np.random.default_rng``; ``None`` gives a different split each call.
        stratify: Labels to keep class proportions equal in both parts (needs ``shuffle``).

    Returns:
        ``[a_train, a_test, b_train, b_test, ...]`` as NumPy arrays.

    Raises:
        ValueError: On mismatched lengths (naming the sizes), a bad ``test_size``, or a
            stratification that cannot be satisfied.

    Example:
        >>> import numpy as np
        >>> from ember.datasets import train_test_split
        >>> x, y = np.arange(10).reshape(5, 2), np.arange(5)
        >>> x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.4)
        >>> x_train.shape, y_test.shape
        ((3, 2), (2,))
    """
    if not arrays:
        raise ValueError("train_test_split needs at least one array, got none")
    arrs = [np.asarray(a) for a in arrays]
    if any(a.ndim == 0 for a in arrs):
        raise ValueError("train_test_split expects arrays of samples, got a scalar")
    sizes = [a.shape[0] for a in arrs]
    if len(set(sizes)) > 1:
        raise ValueError(
            f"train_test_split: all arrays must have the same number of samples, got sizes "
            f"{sizes}; pass arrays whose first dimensions match"
        )
    n = sizes[0]
    n_test = _n_test(test_size, n)
    rng = np.random.default_rng(seed)
    if stratify is not None:
        if not shuffle:
            raise ValueError(
                "stratify needs shuffle=True (an unshuffled split cannot balance classes)"
            )
        labels = np.asarray(stratify)
        if labels.shape[0] != n:
            raise ValueError(
                f"stratify has {labels.shape[0]} labels but the arrays have {n} samples; "
                "pass one label per sample"
            )
        if labels.ndim > 1:
            # One-hot or multi-column labels: stratify on whole rows.
            labels = np.unique(labels.reshape(n, -1), axis=0, return_inverse=True)[1].ravel()
        test_idx = rng.permutation(_stratified_test_indices(labels, n_test, rng))
        mask = np.ones(n, dtype=bool)
        mask[test_idx] = False
        train_idx = rng.permutation(np.flatnonzero(mask))
    elif shuffle:
        perm = rng.permutation(n)
        train_idx, test_idx = perm[: n - n_test], perm[n - n_test :]
    else:
        train_idx, test_idx = np.arange(n - n_test), np.arange(n - n_test, n)
    out: list[np.ndarray] = []
    for a in arrs:
        out.extend((a[train_idx], a[test_idx]))
    return out


def _n_test(test_size: float | int, n: int) -> int:
    if isinstance(test_size, bool) or not isinstance(test_size, int | float | np.number):
        raise ValueError(f"test_size must be a float in (0, 1) or an int, got {test_size!r}")
    if isinstance(test_size, int | np.integer):
        n_test = int(test_size)
        if not 1 <= n_test <= n - 1:
            raise ValueError(
                f"test_size={n_test} must leave at least one sample on each side of a split "
                f"of {n} samples; use an int between 1 and {n - 1}"
            )
        return n_test
    if not 0.0 < test_size < 1.0:
        raise ValueError(
            f"test_size as a fraction must be in (0, 1), got {test_size}; use e.g. 0.25, or an "
            "int for an absolute number of test samples"
        )
    n_test = math.ceil(float(test_size) * n)
    if n_test >= n:
        raise ValueError(
            f"test_size={test_size} of {n} samples leaves no training samples; use a smaller "
            "test_size"
        )
    return n_test
