"""Datasets for Ember, Keras-style: ``(x_train, y_train), (x_test, y_test) = mnist.load_data()``.

* :mod:`digits` — 1,797 8×8 digits shipped with Ember (no network needed).
* :mod:`mnist`, :mod:`fashion_mnist` — 70,000 28×28 images each, found locally or
  downloaded once into the cache (``$EMBER_HOME/datasets`` or ``~/.ember/datasets``).
* :mod:`synthetic` — seeded 2-D toy problems: blobs, xor, circles, spirals.
* :mod:`graphs` — Zachary's karate club (from networkx), stochastic block models and a
  graph-classification set (trees and single cycles), for the graph layers.
* :mod:`text_corpus` — public-domain text for language models (the King James Bible from the
  Debian package ``sword-text-kjv``).
* helpers: :func:`to_categorical`, :class:`Standardizer`, :func:`train_test_split`, and the
  IDX reader/writer and downloader the loaders are built on.

Apart from :mod:`graphs` (which builds on :mod:`ember.graph`), this package depends only on
NumPy and the standard library.

Example:
    >>> from ember.datasets import digits, to_categorical
    >>> (x_train, y_train), (x_test, y_test) = digits.load_data()
    >>> to_categorical(y_train).shape
    (1437, 10)
"""

from . import digits, fashion_mnist, graphs, mnist, synthetic, text_corpus, utils
from ._download import DatasetUnavailableError, ember_cache_dir, get_file
from ._idx import read_idx, write_idx
from .utils import Standardizer, to_categorical, train_test_split

__all__ = [
    "digits",
    "fashion_mnist",
    "graphs",
    "mnist",
    "synthetic",
    "text_corpus",
    "utils",
    "DatasetUnavailableError",
    "ember_cache_dir",
    "get_file",
    "read_idx",
    "write_idx",
    "Standardizer",
    "to_categorical",
    "train_test_split",
]
