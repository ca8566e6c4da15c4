"""Fashion-MNIST (Zalando): 60,000 training and 10,000 test 28×28 grayscale clothing images.

A drop-in replacement for MNIST with ten clothing classes, see :data:`CLASS_NAMES`.
Files are looked up in ``path``, then the cache (``<cache_dir>/fashion-mnist``), then
``/usr/share/datasets/fashion-mnist`` (installed by Debian's ``dataset-fashion-mnist``
package), and downloaded from :data:`MIRRORS` only when missing; see :func:`load_data`.
"""

from __future__ import annotations

import os

import numpy as np

from ._idx_dataset import IdxDatasetSpec, load_idx_dataset

__all__ = ["load_data", "CLASS_NAMES", "MIRRORS", "SHA256", "SYSTEM_DIRS"]

CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

MIRRORS: list[str] = [
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
]

# SHA-256 of the gzipped files as published upstream and served by the mirrors, in
# `sha256sum -c` format. Debian's package re-compresses them (no file name in the gzip
# header), so its copies hash differently while holding identical data; local copies are
# therefore not hash-checked.
_SHA256SUMS = """\
3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84  train-images-idx3-ubyte.gz
a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845  train-labels-idx1-ubyte.gz
346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073  t10k-images-idx3-ubyte.gz
67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5  t10k-labels-idx1-ubyte.gz
"""
SHA256: dict[str, str] = {name: digest for digest, name in map(str.split, _SHA256SUMS.splitlines())}

SYSTEM_DIRS: list[str] = ["/usr/share/datasets/fashion-mnist"]


def load_data(
    path: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load Fashion-MNIST as ``(x_train, y_train), (x_test, y_test)``, like Keras.

    Args:
        path: Directory holding the four IDX files (``train-images-idx3-ubyte.gz``,
            ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``,
            ``t10k-labels-idx1-ubyte.gz``, or the same names without ``.gz``). When given,
            only this directory is used.
        cache_dir: Cache root; defaults to ``$EMBER_HOME/datasets`` or ``~/.ember/datasets``.
            Files live in its ``fashion-mnist`` subdirectory.
        download: Whether to download missing files from the mirrors.

    Returns:
        ``x`` arrays of uint8 with shape ``(N, 28, 28)`` and ``y`` arrays of uint8 labels
        0-9 (names in :data:`CLASS_NAMES`) with shape ``(N,)``; N is 60,000 for train and
        10,000 for test.

    Raises:
        DatasetUnavailableError: If the files are missing and cannot be downloaded; the
            message says which files to put where.
        ValueError: If a file is truncated, corrupted or of the wrong kind.

    Example:
        >>> from ember.datasets import fashion_mnist
        >>> (x_train, y_train), _ = fashion_mnist.load_data()  # doctest: +SKIP
        >>> fashion_mnist.CLASS_NAMES[y_train[0]]  # doctest: +SKIP
        'Ankle boot'
    """
    spec = IdxDatasetSpec("Fashion-MNIST", "fashion-mnist", MIRRORS, SHA256, SYSTEM_DIRS)
    return load_idx_dataset(spec, path=path, cache_dir=cache_dir, download=download)
