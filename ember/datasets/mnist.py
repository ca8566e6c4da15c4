"""MNIST handwritten digits: 60,000 training and 10,000 test images, 28×28 grayscale.

Files are looked up in ``path``, then the cache (``<cache_dir>/mnist``), then
``/usr/share/datasets/mnist``, and downloaded from :data:`MIRRORS` only when missing; see
:func:`load_data`.
"""

from __future__ import annotations

import os

import numpy as np

from ._idx_dataset import IdxDatasetSpec, load_idx_dataset

__all__ = ["load_data", "MIRRORS", "SHA256", "SYSTEM_DIRS"]

# Tried in order; the original yann.lecun.com host now often refuses downloads.
MIRRORS: list[str] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
]

# SHA-256 of the gzipped files the mirrors serve, in `sha256sum -c` format.
_SHA256SUMS = """\
440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609  train-images-idx3-ubyte.gz
3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c  train-labels-idx1-ubyte.gz
8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6  t10k-images-idx3-ubyte.gz
f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6  t10k-labels-idx1-ubyte.gz
"""
SHA256: dict[str, str] = {name: digest for digest, name in map(str.split, _SHA256SUMS.splitlines())}

SYSTEM_DIRS: list[str] = ["/usr/share/datasets/mnist"]


def load_data(
    path: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load MNIST as ``(x_train, y_train), (x_test, y_test)``, like ``keras.datasets.mnist``.

    Args:
        path: Directory holding the four IDX files (``train-images-idx3-ubyte.gz``,
            ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``,
            ``t10k-labels-idx1-ubyte.gz``, or the same names without ``.gz``). When given,
            only this directory is used.
        cache_dir: Cache root; defaults to ``$EMBER_HOME/datasets`` or ``~/.ember/datasets``.
            Files live in its ``mnist`` subdirectory.
        download: Whether to download missing files from the mirrors.

    Returns:
        ``x`` arrays of uint8 with shape ``(N, 28, 28)`` and ``y`` arrays of uint8 labels
        0-9 with shape ``(N,)``; N is 60,000 for train and 10,000 for test.

    Raises:
        DatasetUnavailableError: If the files are missing and cannot be downloaded; the
            message says which files to put where.
        ValueError: If a file is truncated, corrupted or of the wrong kind.

    Example:
        >>> from ember.datasets import mnist
        >>> (x_train, y_train), (x_test, y_test) = mnist.load_data()  # doctest: +SKIP
        >>> x_train.shape, y_test[:5]  # doctest: +SKIP
        ((60000, 28, 28), array([7, 2, 1, 0, 4], dtype=uint8))
    """
    spec = IdxDatasetSpec("MNIST", "mnist", MIRRORS, SHA256, SYSTEM_DIRS)
    return load_idx_dataset(spec, path=path, cache_dir=cache_dir, download=download)
