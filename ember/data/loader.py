"""``DataLoader``: PyTorch-style batching over a dataset, built on the pipeline stages."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ember.data.dataset import (
    Dataset,
    IterableDataset,
    TensorSliceDataset,
    _Batch,
    _Shuffle,
    check_bool,
    check_positive_int,
)
from ember.tensor import Tensor

__all__ = ["DataLoader"]


class _MapAdapter(Dataset):
    """A map-style view of an object that is not a Dataset (a list of samples, say)."""

    def __init__(self, data: Any) -> None:
        self._data = data
        if hasattr(data, "__getitems__"):
            self.__getitems__ = data.__getitems__

    def __len__(self) -> int:
        return len(self._data)

    def __getitem__(self, index: int) -> Any:
        return self._data[index]


class _IterAdapter(IterableDataset):
    """An iterable-style view of an iterable that is not a Dataset (a generator, say)."""

    def __init__(self, data: Any) -> None:
        self._data = data

    def __iter__(self) -> Iterator:
        return iter(self._data)


def _as_dataset(data: Any, owner: str) -> Dataset:
    if isinstance(data, Dataset):
        if data._index_source() is None and type(data).__iter__ is Dataset.__iter__:
            raise TypeError(
                f"{owner}: {type(data).__name__} defines neither __getitem__ and __len__ (a "
                "map-style dataset) nor __iter__ (subclass ember.data.IterableDataset)"
            )
        data.cardinality()  # a map-style dataset without __len__ fails here, clearly
        return data
    if isinstance(data, (np.ndarray, Tensor)):
        return TensorSliceDataset(data)
    if hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        return _MapAdapter(data)
    if hasattr(data, "__iter__"):
        return _IterAdapter(data)
    raise TypeError(
        f"{owner}: dataset must be an ember.data.Dataset, an array, a sequence of samples or an "
        f"iterable, got {type(data).__name__}"
    )


class DataLoader:
    """Iterate over a dataset in mini-batches, as PyTorch's ``DataLoader`` does.

    Args:
        dataset: a map-style :class:`~ember.data.Dataset` (``__getitem__`` + ``__len__``), an
            :class:`~ember.data.IterableDataset` or pipeline, a NumPy array, or any sequence
            of samples.
        batch_size: samples per batch, >= 1.
        shuffle: draw a new random order at the start of every pass over the loader, from
            Ember's generator (``ember.manual_seed`` makes it reproducible).
        drop_last: drop the last batch when it has fewer than ``batch_size`` samples.
        collate_fn: ``collate_fn(list_of_samples) -> batch``; defaults to
            :func:`~ember.data.default_collate`, which stacks samples into NumPy arrays keeping
            their tuple/dict structure (Ember Tensors become NumPy arrays too).

    A dataset with ``__getitems__(indices)`` (:class:`~ember.data.TensorDataset`,
    ``Dataset.from_tensor_slices``, a :class:`~ember.data.Subset` of them) gives each batch
    with one call, i.e. one fancy-index per array; other datasets are read one
    ``__getitem__`` per sample. Loading runs in this process (there are no workers).

    ``len(loader)`` is the number of batches per pass, and the loader can be iterated any
    number of times, so it can be handed to ``model.fit``.

    Example:
        >>> x = np.arange(20, dtype="float32").reshape(10, 2)
        >>> y = np.arange(10)
        >>> loader = ember.data.DataLoader(ember.data.TensorDataset(x, y), batch_size=4,
        ...                                shuffle=True)
        >>> len(loader)
        3
        >>> [xb.shape for xb, yb in loader]
        [(4, 2), (4, 2), (2, 2)]
        >>> sorted(np.concatenate([yb for xb, yb in loader]).tolist()) == list(range(10))
        True
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 1,
        shuffle: bool = False,
        *,
        drop_last: bool = False,
        collate_fn: Callable[[list], Any] | None = None,
    ) -> None:
        if batch_size is None:
            raise TypeError(
                "DataLoader: batch_size must be a positive integer, got None (unbatched "
                "loading is not supported; iterate over the dataset itself instead)"
            )
        self.batch_size = check_positive_int("DataLoader", "batch_size", batch_size)
        self.shuffle = check_bool("DataLoader", "shuffle", shuffle)
        self.drop_last = check_bool("DataLoader", "drop_last", drop_last)
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(
                f"DataLoader: collate_fn must be a function of a list of samples or None, "
                f"got {collate_fn!r}"
            )
        self.collate_fn = collate_fn
        self.dataset = dataset
        source = _as_dataset(dataset, "DataLoader")
        if self.shuffle:
            n = source.cardinality()
            if n < 0:
                raise ValueError(
                    "DataLoader: shuffle=True needs a dataset of known length (one with "
                    f"__len__), but {type(dataset).__name__} has none; shuffle inside the "
                    "dataset or use dataset.shuffle(buffer_size) instead"
                )
            source = _Shuffle(source, max(n, 1), seed=None, reshuffle=True)
        self._pipeline = _Batch(source, self.batch_size, self.drop_last, collate_fn)

    def __iter__(self) -> Iterator:
        return iter(self._pipeline)

    def __len__(self) -> int:
        return len(self._pipeline)

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return (
            f"DataLoader({type(self.dataset).__name__}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last})"
        )
