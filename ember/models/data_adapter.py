"""What ``fit``, ``evaluate`` and ``predict`` accept as data, turned into batches.

* Arrays (NumPy, lists, ember Tensors) — or lists and dicts of them for models with several
  inputs and outputs — are checked once (numbers, finite, a batch axis, the same number of samples
  everywhere) and cut into batches by index, shuffled each epoch with Ember's generator.
* Any iterable of batches — an ``ember.data.DataLoader`` or ``Dataset``, a list of batches, a
  generator — is iterated as it comes; each batch is ``x``, ``(x,)``, ``(x, y)`` or
  ``(x, y, sample_weight)`` (Keras' convention). Its ``len()``, when it has one, gives the steps
  per epoch; a generator without one needs ``steps_per_epoch`` (it is then drawn on across
  epochs).
"""

from __future__ import annotations

import itertools
import math
import numbers

import numpy as np

from ember import tree
from ember.tensor import Tensor, default_rng


def pack_batch(x, y=None, sample_weight=None):
    """The batch a ``train_step``/``test_step``/``predict_step`` receives, as Keras packs it:
    ``x`` alone when there are no targets and weights (a VAE's ``train_step(data)`` reads the
    images as ``data``), ``(x,)`` when ``x`` itself is a tuple or list (several inputs),
    ``(x, y)`` without weights, else ``(x, y, sample_weight)``. :func:`unpack_batch` inverts it.

    Example:
        >>> from ember.models.data_adapter import pack_batch
        >>> pack_batch(np.ones(2)).shape, len(pack_batch(np.ones(2), np.ones(2)))
        ((2,), 2)
    """
    if y is None and sample_weight is None:
        return (x,) if isinstance(x, (tuple, list)) else x
    if sample_weight is None:
        return (x, y)
    return (x, y, sample_weight)


def unpack_batch(data):
    """``(x, y, sample_weight)`` from one batch: ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, w)``.

    Example:
        >>> from ember.models.data_adapter import unpack_batch
        >>> unpack_batch((np.ones(2), np.zeros(2)))[1]
        array([0., 0.])
    """
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return data, None, None
    if len(data) == 1:
        return data[0], None, None
    if len(data) == 2:
        return data[0], data[1], None
    if len(data) == 3:
        return data
    raise ValueError(
        f"a batch must be x, (x,), (x, y) or (x, y, sample_weight); got a tuple of {len(data)} "
        "items"
    )


def is_array_like(value) -> bool:
    """An array, a tensor, or (nested) lists of plain numbers — one array, not a structure."""
    if isinstance(value, (np.ndarray, Tensor)):
        return True
    if isinstance(value, (list, tuple)):
        leaves = tree.flatten(value)
        return bool(leaves) and all(isinstance(v, numbers.Number) for v in leaves)
    return False


def _leaf_array(
    value, what: str, method: str, float_dtype, cast: bool, finite: bool
) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.data
    try:
        array = np.asarray(value)
    except ValueError as exc:
        raise ValueError(f"{method}: {what} could not be read as an array ({exc})") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"{method}: {what} has dtype {array.dtype}; expected numbers (float, or integer such "
            "as uint8 images, which are cast to float32)"
        )
    if array.ndim == 0:
        raise ValueError(f"{method}: {what} must have a batch axis; got a scalar")
    if cast and array.dtype.kind == "f" and array.dtype != float_dtype:
        array = array.astype(float_dtype)
    # min/max propagate NaN and expose ±inf without an O(N) mask; the mask is built only to
    # report the first bad row.
    if (
        finite
        and array.dtype.kind == "f"
        and array.size
        and not (np.isfinite(array.min()) and np.isfinite(array.max()))
    ):
        bad = ~np.isfinite(array)
        rows = np.flatnonzero(bad.reshape(len(array), -1).any(axis=1))
        raise ValueError(
            f"{method}: {what} contains {int(bad.sum())} non-finite value(s) (NaN or inf), first "
            f"at row {int(rows[0])}; clean or impute the data first"
        )
    return array


def check_arrays(
    data, what: str, method: str, float_dtype, cast: bool = False, finite: bool = True
):
    """``data`` (an array or a structure of arrays) as NumPy arrays, checked: numbers with a
    batch axis, float ones cast to ``float_dtype`` when ``cast``, and (with ``finite``) free of
    NaN and inf."""
    if data is None:
        return None
    if tree.is_nested(data) and not is_array_like(data):
        names = _leaf_names(data, what)
        arrays = [
            _leaf_array(leaf, name, method, float_dtype, cast, finite)
            for leaf, name in zip(tree.flatten(data), names)
        ]
        return tree.pack_sequence_as(data, arrays)
    return _leaf_array(data, what, method, float_dtype, cast, finite)


def _leaf_names(data, what: str) -> list[str]:
    if isinstance(data, dict):
        return [f"{what}[{key!r}]" for key in sorted(data)] if not any(
            tree.is_nested(v) for v in data.values()
        ) else [what] * len(tree.flatten(data))
    if isinstance(data, (list, tuple)) and not any(tree.is_nested(v) for v in data):
        return [f"{what}[{i}]" for i in range(len(data))]
    return [what] * len(tree.flatten(data))


def num_samples(*structures, method: str) -> int:
    """The common number of samples of every array in the structures; an error if they
    differ."""
    sizes = []
    for name, structure in structures:
        if structure is None:
            continue
        for leaf in tree.flatten(structure):
            if leaf is not None:
                sizes.append((name, len(leaf)))
    counts = {n for _, n in sizes}
    if len(counts) > 1:
        detail = ", ".join(f"{name} sizes: {n}" for name, n in sizes)
        raise ValueError(
            f"{method}: data cardinality is ambiguous: {detail}. Make sure all arrays contain "
            "the same number of samples"
        )
    return sizes[0][1] if sizes else 0


def take(structure, index):
    """Rows ``index`` (a slice or an index array) of every array in ``structure``."""
    if structure is None:
        return None
    if isinstance(structure, np.ndarray):
        return structure[index]
    return tree.map_structure(lambda a: None if a is None else a[index], structure)


class ArrayBatches:
    """Batches of in-memory arrays, cut by index (shuffled each epoch when asked)."""

    def __init__(self, x, y, sample_weight, batch_size: int, shuffle: bool):
        self.x, self.y, self.sample_weight = x, y, sample_weight
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.num_samples = num_samples(("x", x), ("y", y), method="")
        self.steps = math.ceil(self.num_samples / batch_size)

    def epoch(self):
        n, size = self.num_samples, self.batch_size
        order = default_rng().permutation(n) if self.shuffle else None
        for step in range(self.steps):
            index = (
                slice(step * size, (step + 1) * size)
                if order is None
                else order[step * size : (step + 1) * size]
            )
            yield (
                take(self.x, index),
                take(self.y, index),
                take(self.sample_weight, index),
            )


class IterableBatches:
    """Batches from an iterable (a DataLoader, a Dataset, a list of batches, a generator)."""

    def __init__(self, iterable, steps_per_epoch: int | None, method: str):
        self.iterable = iterable
        self.shuffle = False
        length = None
        try:
            length = len(iterable)
        except TypeError:
            pass
        self.one_shot = iter(iterable) is iterable  # a generator or iterator: drawn on once
        if steps_per_epoch is None and self.one_shot and length is None:
            self.steps = None  # one pass until exhausted
        else:
            self.steps = steps_per_epoch if steps_per_epoch is not None else length
        self._iterator = iter(iterable) if self.one_shot else None

    def epoch(self):
        source = self._iterator if self.one_shot else iter(self.iterable)
        if self.steps is not None:
            source = itertools.islice(source, self.steps)
        for batch in source:
            yield unpack_batch(batch)


def is_batch_iterable(x) -> bool:
    """True for data given as an iterable of batches rather than arrays."""
    if isinstance(x, list) and x and all(isinstance(item, tuple) for item in x):
        return True  # a list of (x, y) batches (a list of arrays would be several inputs)
    if x is None or isinstance(x, (np.ndarray, Tensor, dict, list, tuple, str, bytes)):
        return False
    return hasattr(x, "__iter__") or hasattr(x, "__next__")
