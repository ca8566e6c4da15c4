"""Datasets: the map-style base class, tensor slices, subsets, and chainable pipelines.

One :class:`Dataset` class is both PyTorch's base class (subclass it and define
``__getitem__``/``__len__``) and tf.data's entry point (``Dataset.from_tensor_slices(...)``
followed by ``.shuffle().batch().map()...``). Every dataset can be chained, including your own
map-style subclasses, and :class:`~ember.data.DataLoader` is built from the same pipeline
stages, so shuffling and batching have one implementation.

How a pipeline runs. A map-style dataset is addressed by index, so while a pipeline only
shuffles, repeats, takes or skips, it moves arrays of *indices*, never samples. ``.batch()``
then fetches each batch at once: from a dataset that defines ``__getitems__(indices)`` (as
:class:`TensorSliceDataset`, :class:`TensorDataset` and :class:`Subset` of them do) that is one
fancy-index per array; other datasets are read one ``__getitem__`` at a time and the samples
are stacked (:func:`~ember.data.default_collate`). After ``.map()`` or ``.batch()`` the
elements are values and later stages pass them along one by one (cheap: after ``.batch()``
an element is a whole batch).

``__getitems__(indices)`` receives a 1-D int64 NumPy array and may return either a *list* of
samples (PyTorch's convention; they are then collated) or an already batched structure: an
array, a tuple or a dict of arrays whose leading axis has ``len(indices)`` entries.

Example:
    >>> x = np.arange(10, dtype="float32").reshape(5, 2)
    >>> y = np.array([0, 1, 0, 1, 1])
    >>> ds = ember.data.Dataset.from_tensor_slices((x, y)).shuffle(5).batch(2)
    >>> len(ds)
    3
    >>> [xb.shape for xb, yb in ds]
    [(2, 2), (2, 2), (1, 2)]
"""

from __future__ import annotations

import itertools
import math
import numbers
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ember.data.collate import default_collate, leaves_with_paths, map_structure, unbatch
from ember.tensor import Tensor, default_rng

__all__ = [
    "Dataset",
    "IterableDataset",
    "TensorSliceDataset",
    "TensorDataset",
    "Subset",
    "random_split",
    "AUTOTUNE",
    "INFINITE_CARDINALITY",
    "UNKNOWN_CARDINALITY",
]

#: ``cardinality()`` of a dataset that never ends (``.repeat()`` without a count).
INFINITE_CARDINALITY = -1
#: ``cardinality()`` of a dataset whose length is not known before iterating it.
UNKNOWN_CARDINALITY = -2
#: Accepted wherever tf.data takes a parallelism or buffer setting (``prefetch``, ``map``).
AUTOTUNE = -1

_SHUFFLE_CHUNK = 64  # elements pulled at a time when shuffling a stream of values
_INDEX_PIECE = 1 << 16  # indices turned into a Python list at a time (bounds memory)


# --------------------------------------------------------------------------------------------
# Argument checks.
# --------------------------------------------------------------------------------------------
def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_positive_int(owner: str, name: str, value: Any) -> int:
    if not _is_int(value):
        raise TypeError(f"{owner}: {name} must be a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer (>= 1), got {value}")
    return int(value)


def check_bool(owner: str, name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: {name} must be True or False, got {value!r}")
    return bool(value)


def _check_count(owner: str, name: str, value: Any) -> int:
    """A count that may be -1 (meaning "all" / "forever", as in tf.data)."""
    if not _is_int(value):
        raise TypeError(f"{owner}: {name} must be an integer (-1 for all), got {value!r}")
    if value < -1:
        raise ValueError(f"{owner}: {name} must be >= 0, or -1 for all, got {value}")
    return int(value)


# --------------------------------------------------------------------------------------------
# The streaming pieces shared by every pipeline (and so by DataLoader).
# --------------------------------------------------------------------------------------------
def _buffered_shuffle(
    chunks: Iterable[list], buffer_size: int, rng: np.random.Generator
) -> Iterator[list]:
    """Shuffle a stream arriving in chunks (lists) with a buffer of ``buffer_size`` items.

    The buffer fills with the first items; then each new item takes the slot of a uniformly
    chosen buffered item, which is emitted; at the end the buffer is emitted in random order.
    With ``buffer_size`` >= the stream's length this is a uniform random permutation.
    """
    buffer: list = []
    for chunk in chunks:
        room = buffer_size - len(buffer)
        if room > 0:
            buffer.extend(chunk[:room])
            chunk = chunk[room:]
        if not chunk:
            continue
        out = []
        for item, slot in zip(chunk, rng.integers(0, buffer_size, size=len(chunk)).tolist()):
            out.append(buffer[slot])
            buffer[slot] = item
        yield out
    yield [buffer[j] for j in rng.permutation(len(buffer)).tolist()]


def _chunked(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _index_batches(blocks: Iterable[np.ndarray], size: int, drop_remainder: bool):
    """Regroup a stream of index arrays into arrays of ``size`` indices (the last may be short)."""
    carry = np.empty(0, dtype=np.int64)
    for block in blocks:
        if carry.size:
            block = np.concatenate([carry, block])
        full = len(block) // size * size
        for start in range(0, full, size):
            yield block[start : start + size]
        carry = block[full:]
    if carry.size and not drop_remainder:
        yield carry


def _truncate_blocks(blocks: Iterable[np.ndarray], count: int) -> Iterator[np.ndarray]:
    """The first ``count`` indices of a stream of index arrays."""
    left = count
    for block in blocks:
        if left <= 0:
            return
        yield block[:left]
        left -= len(block)


def _skip_blocks(blocks: Iterable[np.ndarray], count: int) -> Iterator[np.ndarray]:
    """A stream of index arrays without its first ``count`` indices."""
    left = count
    for block in blocks:
        if left >= len(block):
            left -= len(block)
            continue
        yield block[left:]
        left = 0


def _index_lists(blocks: Iterable[np.ndarray]) -> Iterator[list[int]]:
    """A stream of index arrays as lists of Python ints, in pieces of bounded size."""
    for block in blocks:
        for start in range(0, len(block), _INDEX_PIECE):
            yield block[start : start + _INDEX_PIECE].tolist()


def _fetch_each(source: Any, blocks: Iterable[np.ndarray]) -> Iterator:
    for indices in _index_lists(blocks):
        for i in indices:
            yield source[i]


def _fetch_batch(source: Any, indices: np.ndarray, collate_fn: Callable | None) -> Any:
    """One batch of ``source``: a single ``__getitems__`` call when the dataset has one."""
    getitems = getattr(source, "__getitems__", None)
    if getitems is None:
        samples = [source[i] for i in indices.tolist()]
        return (collate_fn or default_collate)(samples)
    batch = getitems(indices)
    if isinstance(batch, list):  # a list of samples, PyTorch's convention
        return (collate_fn or default_collate)(batch)
    if collate_fn is None:
        return batch
    return collate_fn(unbatch(batch, len(indices)))


def _apply(fn: Callable, element: Any) -> Any:
    """tf.data's calling convention: a tuple element is unpacked into positional arguments."""
    return fn(*element) if isinstance(element, tuple) else fn(element)


def _is_map_style(dataset: Any) -> bool:
    getitem = getattr(type(dataset), "__getitem__", None)
    return (
        getitem is not None
        and getitem is not Dataset.__getitem__
        and not isinstance(dataset, IterableDataset)
    )


def _map_style_length(dataset: Any) -> int:
    if not hasattr(type(dataset), "__len__"):
        raise TypeError(
            f"{type(dataset).__name__} defines __getitem__ but no __len__; a map-style dataset "
            "needs both (or subclass ember.data.IterableDataset and define __iter__)"
        )
    return len(dataset)


# --------------------------------------------------------------------------------------------
# The base class.
# --------------------------------------------------------------------------------------------
class Dataset:
    """Base class of datasets, and the entry point of tf.data-style pipelines.

    *Map-style* (PyTorch): subclass it and define ``__getitem__(index)`` returning one sample
    and ``__len__()``; optionally ``__getitems__(indices)`` returning a whole batch at once,
    which :class:`~ember.data.DataLoader` then uses instead of one call per sample.
    *Iterable-style*: subclass :class:`IterableDataset` and define ``__iter__``.

    *Pipelines* (tf.data): :meth:`from_tensor_slices` builds a dataset from arrays, and every
    dataset — your subclasses included — chains :meth:`shuffle`, :meth:`batch`, :meth:`map`,
    :meth:`repeat`, :meth:`take`, :meth:`skip`, :meth:`cache` and :meth:`prefetch`. Each call
    returns a new dataset and leaves the original unchanged. Iterating a dataset yields its
    elements: samples for a map-style dataset, batches after ``.batch()``, all as NumPy data.

    Example:
        >>> class Squares(ember.data.Dataset):
        ...     def __len__(self):
        ...         return 4
        ...     def __getitem__(self, i):
        ...         return np.float32(i), i * i
        >>> for x, y in ember.data.DataLoader(Squares(), batch_size=3):
        ...     print(x, y)
        [0. 1. 2.] [0 1 4]
        [3.] [9]
        >>> [y for x, y in Squares().batch(2).map(lambda x, y: (x, y + 1))]
        [array([1, 2]), array([ 5, 10])]
    """

    __class_getitem__ = classmethod(types.GenericAlias)  # Dataset[T] in type hints

    def __getitem__(self, index: Any) -> Any:
        raise NotImplementedError(
            f"{type(self).__name__} must define __getitem__(index) and __len__() (a map-style "
            "dataset), or subclass ember.data.IterableDataset and define __iter__()"
        )

    def __iter__(self) -> Iterator:
        return self._elements()

    def __bool__(self) -> bool:  # never fall back to __len__, which infinite datasets lack
        return True

    # ------------------------------------------------------------ the pipeline protocol
    def _index_source(self) -> Any:
        """The map-style dataset whose indices this dataset streams, or None (values)."""
        return self if _is_map_style(self) else None

    def _blocks(self) -> Iterator[np.ndarray]:
        """The stream of indices into ``_index_source()``, as arrays, for one pass."""
        return iter((np.arange(_map_style_length(self), dtype=np.int64),))

    def _elements(self) -> Iterator:
        source = self._index_source()
        if source is not None:
            return _fetch_each(source, self._blocks())
        if type(self).__iter__ is not Dataset.__iter__:  # iterable-style without IterableDataset
            return iter(self)
        raise TypeError(
            f"{type(self).__name__} cannot be iterated: it defines neither __getitem__ and "
            "__len__ (a map-style dataset) nor __iter__ (an iterable-style one)"
        )

    def cardinality(self) -> int:
        """The number of elements; ``INFINITE_CARDINALITY`` (-1) or ``UNKNOWN_CARDINALITY`` (-2).

        Example:
            >>> ds = ember.data.Dataset.from_tensor_slices(np.arange(10))
            >>> ds.batch(4).cardinality(), ds.repeat().cardinality()
            (3, -1)
        """
        if _is_map_style(self):
            return _map_style_length(self)
        if hasattr(type(self), "__len__"):
            return len(self)
        return UNKNOWN_CARDINALITY

    # ------------------------------------------------------------ tf.data construction
    @staticmethod
    def from_tensor_slices(data: Any) -> TensorSliceDataset:
        """A dataset whose elements are the slices of ``data`` along its first axis.

        ``data`` is an array (or list, or Ember Tensor), or a tuple or dict of them, nested as
        you like: ``(x, y)`` gives elements ``(x[i], y[i])`` and ``{"a": a, "b": b}`` gives
        ``{"a": a[i], "b": b[i]}``. A *list* is data (converted with ``np.asarray``), not a
        structure, as in tf.data. See :class:`TensorSliceDataset`.

        Example:
            >>> ds = ember.data.Dataset.from_tensor_slices({"a": np.arange(3), "b": [1.5, 2, 3]})
            >>> next(iter(ds.batch(2)))
            {'a': array([0, 1]), 'b': array([1.5, 2. ])}
        """
        return TensorSliceDataset(data)

    # ------------------------------------------------------------ tf.data transformations
    def shuffle(
        self, buffer_size: int, seed: int | None = None, reshuffle_each_iteration: bool = True
    ) -> Dataset:
        """Shuffle the elements with a buffer of ``buffer_size`` elements (tf.data's algorithm).

        The buffer holds the next ``buffer_size`` elements and each output is drawn uniformly
        from it, so a buffer at least as large as the dataset gives a uniform random
        permutation (what ``DataLoader(shuffle=True)`` does) and a smaller one only mixes
        nearby elements. Before ``.batch()`` this shuffles indices, not data, so a full buffer
        costs nothing extra.

        Args:
            buffer_size: elements in the buffer, >= 1.
            seed: without one, each pass draws its order from Ember's generator (so
                ``ember.manual_seed`` makes runs reproducible); with one, the sequence of
                orders of this dataset is fixed by the seed.
            reshuffle_each_iteration: ``False`` repeats the same order on every pass.

        Example:
            >>> ds = ember.data.Dataset.from_tensor_slices(np.arange(6)).shuffle(6, seed=1)
            >>> sorted(ds) == list(range(6)), list(ds) != list(ds)
            (True, True)
        """
        buffer_size = check_positive_int("shuffle", "buffer_size", buffer_size)
        if seed is not None and (not _is_int(seed) or seed < 0):
            raise ValueError(f"shuffle: seed must be a non-negative integer or None, got {seed!r}")
        reshuffle = check_bool("shuffle", "reshuffle_each_iteration", reshuffle_each_iteration)
        return _Shuffle(self, buffer_size, seed, reshuffle)

    def batch(self, batch_size: int, drop_remainder: bool = False) -> Dataset:
        """Group consecutive elements into batches of ``batch_size`` (the last may be smaller).

        Samples are stacked by :func:`~ember.data.default_collate`: an element ``(x, y)``
        gives batches ``(x_batch, y_batch)``, a dict a dict, an array an array.

        Args:
            batch_size: elements per batch, >= 1.
            drop_remainder: drop a last batch smaller than ``batch_size``.

        Example:
            >>> ds = ember.data.Dataset.from_tensor_slices(np.arange(5))
            >>> list(ds.batch(2)), len(ds.batch(2, drop_remainder=True))
            ([array([0, 1]), array([2, 3]), array([4])], 2)
        """
        batch_size = check_positive_int("batch", "batch_size", batch_size)
        drop_remainder = check_bool("batch", "drop_remainder", drop_remainder)
        return _Batch(self, batch_size, drop_remainder)

    def map(
        self,
        map_func: Callable,
        num_parallel_calls: int | None = None,
        deterministic: bool | None = None,
    ) -> Dataset:
        """Apply ``map_func`` to every element; a tuple element is unpacked into arguments.

        Placed after ``.batch()`` the function sees whole batches, so NumPy code runs once per
        batch (fast, and the way to write augmentation here); placed before, it runs once per
        sample and ``.batch()`` then stacks its results. ``num_parallel_calls`` and
        ``deterministic`` are accepted for tf.data compatibility; calls run in order, in this
        process.

        Example:
            >>> ds = ember.data.Dataset.from_tensor_slices((np.arange(4.0), np.arange(4)))
            >>> ds = ds.batch(2).map(lambda x, y: (x / 2, y))
            >>> next(iter(ds))
            (array([0. , 0.5]), array([0, 1]))
        """
        if not callable(map_func):
            raise TypeError(f"map: map_func must be callable, got {map_func!r}")
        return _Map(self, map_func)

    def repeat(self, count: int | None = None) -> Dataset:
        """Repeat the dataset ``count`` times, or forever with ``None`` (or -1).

        Each repetition is a new pass, so an upstream ``shuffle`` gives a new order. A batch
        may span two passes when ``.batch()`` comes after ``.repeat()``.

        Example:
            >>> np.array(list(ember.data.Dataset.from_tensor_slices(np.arange(2)).repeat(2)))
            array([0, 1, 0, 1])
        """
        count = -1 if count is None else _check_count("repeat", "count", count)
        return _Repeat(self, count)

    def take(self, count: int) -> Dataset:
        """The first ``count`` elements (all of them with -1).

        Example:
            >>> np.array(list(ember.data.Dataset.from_tensor_slices(np.arange(5)).take(2)))
            array([0, 1])
        """
        return _Take(self, _check_count("take", "count", count))

    def skip(self, count: int) -> Dataset:
        """All but the first ``count`` elements (none with -1).

        Example:
            >>> np.array(list(ember.data.Dataset.from_tensor_slices(np.arange(5)).skip(3)))
            array([3, 4])
        """
        return _Skip(self, _check_count("skip", "count", count))

    def prefetch(self, buffer_size: int = AUTOTUNE) -> Dataset:
        """Returns the dataset itself: accepted for tf.data compatibility (no background work).

        Example:
            >>> ds = ember.data.Dataset.from_tensor_slices(np.arange(3))
            >>> ds.prefetch(ember.data.AUTOTUNE) is ds
            True
        """
        if not _is_int(buffer_size) or buffer_size < -1:
            raise ValueError(
                f"prefetch: buffer_size must be a non-negative integer or AUTOTUNE, "
                f"got {buffer_size!r}"
            )
        return self

    def cache(self, filename: str = "") -> Dataset:
        """Record the elements of the first complete pass in memory and replay them on every
        later pass (tf.data's ``cache()``), so the work upstream (``.map()``, a slow
        ``__getitem__``) runs once.

        Place it after the expensive steps and before ``.shuffle()``: a shuffle after the cache
        still draws a new order every pass, while one before it is frozen by it (the first
        pass's order is replayed), as is random augmentation done by ``.map()`` before it. A
        pass that stops early records nothing, and the next pass records again. Replayed
        elements are copies, so changing a batch in place never changes the cache. Over
        in-memory arrays (``from_tensor_slices``) only the order of the indices needs recording,
        and batches are still fetched with one fancy-index each.

        Args:
            filename: only ``""`` (memory): Ember has no file cache.

        Example:
            >>> calls = []
            >>> def slow_square(x):
            ...     calls.append(1)
            ...     return x * x
            >>> ds = ember.data.Dataset.from_tensor_slices(np.arange(4)).map(slow_square).cache()
            >>> ds = ds.shuffle(4).batch(2)
            >>> epoch_1, epoch_2 = np.concatenate(list(ds)), np.concatenate(list(ds))
            >>> sorted(epoch_2.tolist()), len(calls), len(ds)   # map ran once per element
            ([0, 1, 4, 9], 4, 2)
        """
        if not isinstance(filename, str):
            raise TypeError(f"cache: filename must be a string, got {filename!r}")
        if filename:
            raise NotImplementedError(
                f"cache: Ember caches in memory only; got filename={filename!r}, call cache() "
                "without a filename"
            )
        return _Cache(self)

    def as_numpy_iterator(self) -> Iterator:
        """An iterator over the elements (they already are NumPy data).

        Example:
            >>> it = ember.data.Dataset.from_tensor_slices(np.arange(2)).as_numpy_iterator()
            >>> [int(v) for v in it]
            [0, 1]
        """
        return iter(self)


class IterableDataset(Dataset):
    """Base class of datasets that can only be iterated: subclass it and define ``__iter__``.

    Such a dataset has no indices, so a :class:`~ember.data.DataLoader` batches consecutive
    elements in the order ``__iter__`` yields them (``shuffle=True`` needs ``__len__``, and
    ``.shuffle(buffer_size)`` mixes within a buffer). Define ``__len__`` if the number of
    elements is known: ``len()`` of a loader or pipeline built on it then works.

    Example:
        >>> class Countdown(ember.data.IterableDataset):
        ...     def __iter__(self):
        ...         return iter(range(5, 0, -1))
        >>> list(ember.data.DataLoader(Countdown(), batch_size=2))
        [array([5, 4]), array([3, 2]), array([1])]
    """

    def __iter__(self) -> Iterator:
        raise NotImplementedError(f"{type(self).__name__} must define __iter__()")

    def __getitem__(self, index: Any) -> Any:
        raise TypeError(
            f"{type(self).__name__} is an iterable dataset and cannot be indexed; iterate over "
            "it (for element in dataset) instead"
        )

    def _index_source(self) -> None:
        return None

    def _elements(self) -> Iterator:
        return iter(self)


class _Pipeline(IterableDataset):
    """A stage of a chained pipeline; ``parent`` is the dataset it transforms."""

    name = "Dataset"

    def __init__(self, parent: Dataset) -> None:
        self._parent = parent

    def __iter__(self) -> Iterator:
        return self._elements()

    def __len__(self) -> int:
        n = self.cardinality()
        if n == INFINITE_CARDINALITY:
            raise TypeError(
                f"the {self.name} is infinite (it repeats forever), so it has no len(); "
                "use .take(n) or repeat(count), or tell fit how many steps make an epoch"
            )
        if n < 0:
            raise TypeError(
                f"the length of the {self.name} is unknown before iterating it (its source "
                "defines no __len__)"
            )
        return n

    def __repr__(self) -> str:
        n = self.cardinality()
        size = {INFINITE_CARDINALITY: "infinite", UNKNOWN_CARDINALITY: "unknown"}.get(n, n)
        return f"<{self.name} cardinality={size}>"

    def _index_source(self) -> Any:
        return self._parent._index_source()

    def _elements(self) -> Iterator:
        source = self._index_source()
        if source is not None:
            return _fetch_each(source, self._blocks())
        return self._values()

    def _blocks(self) -> Iterator[np.ndarray]:  # stages that keep indices override this
        raise NotImplementedError

    def _values(self) -> Iterator:  # the stage applied to the parent's elements
        raise NotImplementedError

    def cardinality(self) -> int:
        return self._parent.cardinality()


class _Shuffle(_Pipeline):
    name = "ShuffleDataset"

    def __init__(self, parent: Dataset, buffer_size: int, seed: int | None, reshuffle: bool):
        super().__init__(parent)
        self._buffer_size = buffer_size
        self._seeds = None if seed is None else np.random.default_rng(seed)
        self._fixed_seed = None if reshuffle else self._draw_seed()

    def _draw_seed(self) -> int:
        source = self._seeds if self._seeds is not None else default_rng()
        return int(source.integers(2**63))

    def _rng(self) -> np.random.Generator:
        """The generator of one pass. Drawn when the pass yields its first element (not when
        the iterator is created), so an iterator that is made and dropped draws nothing."""
        seed = self._fixed_seed if self._fixed_seed is not None else self._draw_seed()
        return np.random.default_rng(seed)

    def _blocks(self) -> Iterator[np.ndarray]:
        rng = self._rng()
        n = self._parent.cardinality()
        if 0 <= n <= self._buffer_size:
            # The whole pass fits in the buffer, where the algorithm below amounts to a uniform
            # permutation: draw it directly, on arrays (no Python list of n indices).
            blocks = list(self._parent._blocks())
            order = np.concatenate(blocks) if blocks else np.empty(0, dtype=np.int64)
            yield order[rng.permutation(len(order))]
            return
        chunks = _index_lists(self._parent._blocks())
        for out in _buffered_shuffle(chunks, self._buffer_size, rng):
            yield np.asarray(out, dtype=np.int64)

    def _values(self) -> Iterator:
        rng = self._rng()
        chunks = _chunked(self._parent._elements(), _SHUFFLE_CHUNK)
        for out in _buffered_shuffle(chunks, self._buffer_size, rng):
            yield from out


class _Batch(_Pipeline):
    name = "BatchDataset"

    def __init__(
        self,
        parent: Dataset,
        batch_size: int,
        drop_remainder: bool,
        collate_fn: Callable | None = None,
    ) -> None:
        super().__init__(parent)
        self._batch_size, self._drop_remainder = batch_size, drop_remainder
        self._collate_fn = collate_fn

    def _index_source(self) -> None:
        return None  # the elements are batches, no longer samples of the source

    def _values(self) -> Iterator:
        source = self._parent._index_source()
        if source is not None:
            batches = _index_batches(self._parent._blocks(), self._batch_size, self._drop_remainder)
            return (_fetch_batch(source, indices, self._collate_fn) for indices in batches)
        collate = self._collate_fn or default_collate
        groups = _chunked(self._parent._elements(), self._batch_size)
        return (
            collate(group)
            for group in groups
            if not (self._drop_remainder and len(group) < self._batch_size)
        )

    def cardinality(self) -> int:
        n = self._parent.cardinality()
        if n < 0:
            return n
        if self._drop_remainder:
            return n // self._batch_size
        return math.ceil(n / self._batch_size)


class _Map(_Pipeline):
    name = "MapDataset"

    def __init__(self, parent: Dataset, fn: Callable) -> None:
        super().__init__(parent)
        self._fn = fn

    def _index_source(self) -> None:
        return None

    def _values(self) -> Iterator:
        fn = self._fn
        return (_apply(fn, element) for element in self._parent._elements())


class _Repeat(_Pipeline):
    name = "RepeatDataset"

    def __init__(self, parent: Dataset, count: int) -> None:
        super().__init__(parent)
        self._count = count

    def _passes(self, one_pass: Callable[[], Iterator], size: Callable[[Any], int]) -> Iterator:
        passes = itertools.count() if self._count < 0 else range(self._count)
        for _ in passes:
            empty = True
            for item in one_pass():
                empty = empty and size(item) == 0
                yield item
            if empty:  # repeating an empty dataset forever would hang
                return

    def _blocks(self) -> Iterator[np.ndarray]:
        return self._passes(self._parent._blocks, len)

    def _values(self) -> Iterator:
        return self._passes(self._parent._elements, lambda _: 1)

    def cardinality(self) -> int:
        n = self._parent.cardinality()
        if n == 0 or self._count == 0:
            return 0
        if self._count < 0:
            return INFINITE_CARDINALITY if n > 0 else n
        return n * self._count if n > 0 else n


class _Take(_Pipeline):
    name = "TakeDataset"

    def __init__(self, parent: Dataset, count: int) -> None:
        super().__init__(parent)
        self._count = count

    def _blocks(self) -> Iterator[np.ndarray]:
        blocks = self._parent._blocks()
        return blocks if self._count < 0 else _truncate_blocks(blocks, self._count)

    def _values(self) -> Iterator:
        values = self._parent._elements()
        return values if self._count < 0 else itertools.islice(values, self._count)

    def cardinality(self) -> int:
        n = self._parent.cardinality()
        if self._count < 0:
            return n
        if n == INFINITE_CARDINALITY:
            return self._count
        return n if n < 0 else min(n, self._count)


class _Skip(_Pipeline):
    name = "SkipDataset"

    def __init__(self, parent: Dataset, count: int) -> None:
        super().__init__(parent)
        self._count = count

    def _blocks(self) -> Iterator[np.ndarray]:
        if self._count < 0:
            return iter(())
        return _skip_blocks(self._parent._blocks(), self._count)

    def _values(self) -> Iterator:
        if self._count < 0:
            return iter(())
        return itertools.islice(self._parent._elements(), self._count, None)

    def cardinality(self) -> int:
        n = self._parent.cardinality()
        if self._count < 0:
            return 0
        return n if n < 0 else max(0, n - self._count)


def _copy_element(element: Any) -> Any:
    return map_structure(lambda v: v.copy() if isinstance(v, np.ndarray) else v, element)


class _Cache(_Pipeline):
    name = "CacheDataset"

    def __init__(self, parent: Dataset) -> None:
        super().__init__(parent)
        # Indexing in-memory arrays again is cheap and gives the same samples, so over them the
        # cache records the stream of indices and the batched fetch stays one fancy-index.
        self._indices = isinstance(parent._index_source(), TensorSliceDataset)
        self._recorded: list | None = None

    def _index_source(self) -> Any:
        return self._parent._index_source() if self._indices else None

    def _record(self, stream: Iterable, copy: Callable[[Any], Any]) -> Iterator:
        """Pass ``stream`` on while recording it; the record is kept only if the pass ends."""
        recorded = []
        for item in stream:
            recorded.append(copy(item))
            yield item
        if self._recorded is None:
            self._recorded = recorded

    def _blocks(self) -> Iterator[np.ndarray]:
        if self._recorded is not None:
            return iter(self._recorded)  # index arrays are never handed to the user
        return self._record(self._parent._blocks(), lambda block: block)

    def _values(self) -> Iterator:
        if self._recorded is not None:
            return (_copy_element(element) for element in self._recorded)
        return self._record(self._parent._elements(), _copy_element)


# --------------------------------------------------------------------------------------------
# Datasets held in memory.
# --------------------------------------------------------------------------------------------
def _as_leaf(value: Any, owner: str, where: str) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.data
    elif not isinstance(value, np.ndarray):
        try:
            value = np.asarray(value)
        except ValueError as exc:  # ragged nested lists
            raise ValueError(
                f"{owner}: {where} cannot be turned into an array ({exc}); give arrays of "
                "equal-length rows"
            ) from None
    if value.dtype == object:
        raise ValueError(
            f"{owner}: {where} holds Python objects (dtype object), e.g. ragged rows; give "
            "numeric or string arrays"
        )
    if value.ndim == 0:
        raise ValueError(
            f"{owner}: {where} is a scalar, which has no first axis to slice; give an array "
            "with one entry per element"
        )
    return value


def _slices_structure(data: Any, owner: str, where: str) -> Any:
    """Validate and convert ``data`` to a tuple/dict structure of arrays."""
    if isinstance(data, tuple):
        if not data:
            raise ValueError(f"{owner}: {where} is an empty tuple; give at least one array")
        parts = [_slices_structure(d, owner, f"{where}[{i}]") for i, d in enumerate(data)]
        return type(data)(*parts) if hasattr(type(data), "_fields") else tuple(parts)
    if isinstance(data, Mapping):
        if not data:
            raise ValueError(f"{owner}: {where} is an empty dict; give at least one array")
        return {k: _slices_structure(v, owner, f"{where}[{k!r}]") for k, v in data.items()}
    return _as_leaf(data, owner, where)


def _common_length(structure: Any, owner: str, describe: Callable[[str], str]) -> int:
    leaves = leaves_with_paths(structure)
    lengths = [(path, len(leaf)) for path, leaf in leaves]
    if len({n for _, n in lengths}) > 1:
        listing = ", ".join(f"{describe(path)} has {n}" for path, n in lengths)
        raise ValueError(
            f"{owner}: the arrays have different lengths (first dimensions): {listing}; every "
            "array needs one entry per element"
        )
    return lengths[0][1]


class TensorSliceDataset(Dataset):
    """A map-style dataset over in-memory arrays: element ``i`` is the structure sliced at ``i``.

    Built by :meth:`Dataset.from_tensor_slices`. ``data`` is an array (lists and Ember
    Tensors are converted to NumPy arrays, the latter without a copy), or a tuple or dict of
    them, nested as you like; all arrays need the same first dimension. Elements are views
    into the arrays; batches, fetched by :meth:`__getitems__` with one fancy-index per array,
    are fresh copies that keep the arrays' dtypes.

    Example:
        >>> x, y = np.zeros((6, 2), "float32"), np.arange(6)
        >>> ds = ember.data.Dataset.from_tensor_slices((x, y))
        >>> len(ds), int(ds[5][1])
        (6, 5)
        >>> xb, yb = ds.__getitems__(np.array([4, 0]))
        >>> xb.shape, xb.dtype, yb
        ((2, 2), dtype('float32'), array([4, 0]))
    """

    def __init__(self, data: Any) -> None:
        owner = "Dataset.from_tensor_slices"
        self._structure = _slices_structure(data, owner, "data")
        self._length = _common_length(self._structure, owner, lambda p: f"data{p}")

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: Any) -> Any:
        return map_structure(lambda leaf: leaf[index], self._structure)

    def __getitems__(self, indices: Any) -> Any:
        """The batch of the elements at ``indices``: one fancy-index per array."""
        indices = np.asarray(indices, dtype=np.intp)
        return map_structure(lambda leaf: leaf[indices], self._structure)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} cardinality={self._length}>"


class TensorDataset(TensorSliceDataset):
    """Samples ``(a[i], b[i], ...)`` of arrays of equal first dimension (PyTorch's name).

    Args:
        *arrays: NumPy arrays, nested lists or Ember Tensors, one entry per sample.

    The arrays are kept in ``.tensors``. Samples are tuples even for one array, so
    ``for (x,) in loader`` and ``for x, y in loader`` work as in PyTorch. Batching from a
    :class:`~ember.data.DataLoader` indexes each array once per batch.

    Example:
        >>> x, y = np.arange(8.0).reshape(4, 2), np.array([0, 1, 1, 0])
        >>> ds = ember.data.TensorDataset(x, y)
        >>> x_1, y_1 = ds[1]
        >>> x_1, int(y_1)
        (array([2., 3.]), 1)
        >>> [yb for xb, yb in ember.data.DataLoader(ds, batch_size=3)]
        [array([0, 1, 1]), array([0])]
    """

    def __init__(self, *arrays: Any) -> None:
        owner = "TensorDataset"
        if not arrays:
            raise ValueError(f"{owner}: give at least one array, e.g. TensorDataset(x, y)")
        tensors = []
        for i, a in enumerate(arrays):
            if isinstance(a, (tuple, Mapping)):
                raise TypeError(
                    f"{owner}: array {i} is a tuple or dict; give each array as a separate "
                    "argument, or use Dataset.from_tensor_slices for nested structures"
                )
            tensors.append(_as_leaf(a, owner, f"array {i}"))
        self.tensors = tuple(tensors)
        self._structure = self.tensors
        self._length = _common_length(self._structure, owner, lambda p: f"array {p.strip('[]')}")


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order (PyTorch's name).

    Batches of a subset of a dataset with ``__getitems__`` are fetched with one call too.

    Args:
        dataset: a map-style dataset (anything with ``__getitem__`` and ``__len__``).
        indices: integer positions in ``dataset``.

    Example:
        >>> ds = ember.data.TensorDataset(np.arange(10) * 10)
        >>> sub = ember.data.Subset(ds, [3, 1])
        >>> len(sub), next(iter(ember.data.DataLoader(sub, batch_size=2)))
        (2, (array([30, 10]),))
    """

    def __init__(self, dataset: Any, indices: Sequence[int] | np.ndarray) -> None:
        indices = np.asarray(indices)
        if indices.size == 0:
            indices = indices.astype(np.int64)
        if indices.ndim != 1 or indices.dtype.kind not in "iu":
            raise TypeError(
                f"Subset: indices must be a 1-D sequence of integers, got an array of shape "
                f"{indices.shape} and dtype {indices.dtype}"
            )
        n = len(dataset)
        bad = np.flatnonzero((indices < -n) | (indices >= n))
        if bad.size:
            raise IndexError(
                f"Subset: index {indices[bad[0]]} (position {bad[0]}) is out of range for a "
                f"dataset of {n} samples"
            )
        self.dataset = dataset
        self.indices = indices.astype(np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: Any) -> Any:
        return self.dataset[int(self.indices[index])]

    def __getitems__(self, indices: Any) -> Any:
        """The batch at ``indices``: forwarded to ``dataset.__getitems__`` when it has one."""
        positions = self.indices[np.asarray(indices, dtype=np.intp)]
        getitems = getattr(self.dataset, "__getitems__", None)
        if getitems is not None:
            return getitems(positions)
        return [self.dataset[i] for i in positions.tolist()]


def _split_counts(lengths: Sequence, n: int) -> list[int]:
    values = list(lengths)
    if not values:
        raise ValueError("random_split: lengths is empty; give counts or fractions")
    if all(_is_int(v) for v in values):
        if any(v < 0 for v in values) or sum(values) != n:
            raise ValueError(
                f"random_split: the counts {values} must be non-negative and sum to the "
                f"dataset's length {n} (they sum to {sum(values)}); or give fractions such as "
                "[0.8, 0.2]"
            )
        return [int(v) for v in values]
    if all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
        fractions = [float(v) for v in values]
        if any(not 0.0 <= f <= 1.0 for f in fractions) or not math.isclose(
            sum(fractions), 1.0, abs_tol=1e-6
        ):
            raise ValueError(
                f"random_split: the fractions {values} must each be in [0, 1] and sum to 1 "
                f"(they sum to {sum(fractions)})"
            )
        counts = [math.floor(n * f) for f in fractions]
        for i in range(n - sum(counts)):  # hand out the rounding remainder one by one
            counts[i % len(counts)] += 1
        return counts
    raise TypeError(
        f"random_split: lengths must be all integers (counts) or all numbers in [0, 1] "
        f"(fractions), got {values!r}"
    )


def random_split(dataset: Any, lengths: Sequence[int | float]) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random :class:`Subset` s (PyTorch's name).

    Args:
        dataset: a map-style dataset.
        lengths: sample counts summing to ``len(dataset)``, or fractions summing to 1 (the
            counts are rounded down, and the samples left over go one each to the first
            subsets).

    The permutation is drawn from Ember's generator (``ember.manual_seed`` fixes it).

    Example:
        >>> ds = ember.data.TensorDataset(np.arange(10))
        >>> train, val = ember.data.random_split(ds, [0.8, 0.2])
        >>> len(train), len(val)
        (8, 2)
        >>> sorted(np.concatenate([train.indices, val.indices]).tolist()) == list(range(10))
        True
    """
    n = len(dataset)
    counts = _split_counts(lengths, n)
    order = default_rng().permutation(n)
    bounds = np.cumsum([0] + counts)
    return [Subset(dataset, order[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
