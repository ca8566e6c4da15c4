"""The 1,797 8×8 handwritten digits of the UCI "Optical Recognition of Handwritten Digits" set.

Each image is an 8×8 grid of integers 0–16: the count of ink pixels in each 4×4 block of a
32×32 bitmap. Small enough to ship with Ember and to train on in seconds, so it needs no
network.

Provenance: ``data/digits.csv.gz`` (57,523 bytes, SHA-256
``09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22``) is the file bundled
with scikit-learn 1.9.1 as ``sklearn/datasets/data/digits.csv.gz`` (BSD-3-Clause), copied
unchanged. It is the test set of the UCI dataset by E. Alpaydin and C. Kaynak (1998),
https://archive.ics.uci.edu/dataset/80. One row per image: 64 pixel values, then the label.
Loading it does not import scikit-learn.
"""

from __future__ import annotations

import gzip
from importlib import resources

import numpy as np

from .utils import train_test_split

__all__ = ["load_data", "load_all", "N_SAMPLES"]

N_SAMPLES = 1797
_DATA_FILE = "digits.csv.gz"


def load_all() -> tuple[np.ndarray, np.ndarray]:
    """Return all 1,797 digits as ``(x, y)``, like scikit-learn's ``load_digits``.

    Returns:
        ``x`` uint8 of shape ``(1797, 8, 8)`` with values 0–16, ``y`` uint8 labels 0–9.

    Example:
        >>> from ember.datasets import digits
        >>> x, y = digits.load_all()
        >>> x.shape, y[:5].tolist()
        ((1797, 8, 8), [0, 1, 2, 3, 4])
    """
    ref = resources.files(__package__).joinpath("data", _DATA_FILE)
    with ref.open("rb") as raw, gzip.open(raw, "rt") as text:
        table = np.loadtxt(text, delimiter=",", dtype=np.uint8)
    if table.shape != (N_SAMPLES, 65):
        raise ValueError(
            f"{ref}: expected {N_SAMPLES} rows of 64 pixels and a label, found shape "
            f"{table.shape}; the packaged data file is damaged — reinstall ember"
        )
    return table[:, :64].reshape(-1, 8, 8).copy(), table[:, 64].copy()


def load_data(
    test_split: float = 0.2, seed: int | None = 0
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load the digits as ``(x_train, y_train), (x_test, y_test)``.

    The split is a seeded *stratified* shuffle split: every digit keeps (to within one
    sample) the same share in train and test, and the same ``seed`` always gives the same
    split.

    Args:
        test_split: Fraction of samples for the test set, in ``(0, 1)``; the test size is
            rounded up (0.2 gives 360 test and 1,437 train images).
        seed: Seed for the shuffle; ``None`` gives a different split on every call.

    Returns:
        ``x`` uint8 arrays of shape ``(N, 8, 8)`` with values 0–16, ``y`` uint8 labels 0–9.

    Example:
        >>> from ember.datasets import digits
        >>> (x_train, y_train), (x_test, y_test) = digits.load_data(test_split=0.2, seed=0)
        >>> x_train.shape, x_test.shape
        ((1437, 8, 8), (360, 8, 8))
    """
    if isinstance(test_split, bool) or not (
        isinstance(test_split, float | int) and 0 < test_split < 1
    ):
        raise ValueError(
            f"test_split must be a fraction strictly between 0 and 1, got {test_split!r}; "
            "use e.g. 0.2, or load_all() for the whole set"
        )
    x, y = load_all()
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=float(test_split), seed=seed, stratify=y
    )
    return (x_train, y_train), (x_test, y_test)
