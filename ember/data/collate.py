"""Nested structures of arrays, and the default way to stack samples into a batch.

A *structure* is a tuple (named tuples included) or a mapping whose values are structures, or a
leaf. Tuples and dicts describe the shape of a sample or batch: ``(x, y)``, ``(x, y, w)``,
``{"image": ..., "label": ...}``, ``((x1, x2), y)``. Everything else is a leaf (an array, a
number, an Ember Tensor, a string).

Example:
    >>> from ember.data import default_collate
    >>> batch = default_collate([(np.zeros(3), 1), (np.ones(3), 0)])
    >>> batch[0].shape, batch[1]
    ((2, 3), array([1, 0]))
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ember.tensor import Tensor

__all__ = ["default_collate"]


def _is_namedtuple(value: Any) -> bool:
    return isinstance(value, tuple) and hasattr(type(value), "_fields")


def _rebuild_tuple(like: tuple, values: list) -> tuple:
    """A tuple of ``values`` of the same kind as ``like`` (a named tuple stays a named tuple)."""
    return type(like)(*values) if _is_namedtuple(like) else tuple(values)


def map_structure(fn: Callable[[Any], Any], structure: Any) -> Any:
    """Apply ``fn`` to every leaf of a nested tuple/dict structure; the nesting is kept."""
    if isinstance(structure, tuple):
        return _rebuild_tuple(structure, [map_structure(fn, s) for s in structure])
    if isinstance(structure, Mapping):
        return {key: map_structure(fn, value) for key, value in structure.items()}
    return fn(structure)


def leaves_with_paths(structure: Any, path: str = "") -> list[tuple[str, Any]]:
    """The leaves of a structure with readable paths such as ``[0]`` or ``['image']``."""
    if isinstance(structure, tuple):
        out = []
        for i, item in enumerate(structure):
            out.extend(leaves_with_paths(item, f"{path}[{i}]"))
        return out
    if isinstance(structure, Mapping):
        out = []
        for key, item in structure.items():
            out.extend(leaves_with_paths(item, f"{path}[{key!r}]"))
        return out
    return [(path, structure)]


def unbatch(batch: Any, size: int) -> list:
    """Split a batch structure (leaves with a leading axis of ``size``) into ``size`` samples."""
    return [map_structure(lambda leaf, i=i: leaf[i], batch) for i in range(size)]


_NUMERIC_LEAVES = (np.ndarray, np.generic, numbers.Number, Tensor)


def _kind(value: Any) -> str:
    if isinstance(value, _NUMERIC_LEAVES):
        return "array"
    if isinstance(value, (str, bytes)):
        return "string"
    if isinstance(value, Mapping):
        return "dict"
    if isinstance(value, (tuple, list)):
        return "sequence"
    return type(value).__name__


def _stack(samples: Sequence, where: str) -> np.ndarray:
    arrays = [s.data if isinstance(s, Tensor) else s for s in samples]
    first_shape = np.shape(arrays[0])
    for i, a in enumerate(arrays):
        if np.shape(a) != first_shape:
            raise ValueError(
                f"cannot stack {where} into a batch: sample 0 has shape {first_shape} but sample "
                f"{i} has shape {np.shape(a)}. Samples of one batch need equal shapes; pad or "
                "crop them in the dataset, or pass a collate_fn that does (e.g. "
                "DataLoader(..., collate_fn=my_pad_fn))"
            )
    return np.stack(arrays)


def _collate(samples: Sequence, where: str) -> Any:
    first = samples[0]
    kind = _kind(first)
    for i, s in enumerate(samples):
        if _kind(s) != kind:
            raise TypeError(
                f"cannot collate {where}: sample 0 is {_describe(first)} but sample {i} is "
                f"{_describe(s)}; every sample of a dataset needs the same structure"
            )
    if kind == "array":
        return _stack(samples, where)
    if kind == "string":
        return list(samples)
    if kind == "dict":
        keys = list(first.keys())
        for i, s in enumerate(samples):
            if set(s.keys()) != set(keys):
                raise ValueError(
                    f"cannot collate {where}: sample 0 has keys {sorted(map(str, keys))} but "
                    f"sample {i} has keys {sorted(map(str, s.keys()))}; every sample needs the "
                    "same keys"
                )
        return {k: _collate([s[k] for s in samples], f"{where}[{k!r}]") for k in keys}
    if kind == "sequence":
        n = len(first)
        for i, s in enumerate(samples):
            if len(s) != n:
                raise ValueError(
                    f"cannot collate {where}: sample 0 has {n} parts but sample {i} has "
                    f"{len(s)}; every sample needs the same number of parts"
                )
        parts = [_collate([s[j] for s in samples], f"{where}[{j}]") for j in range(n)]
        return _rebuild_tuple(first, parts) if isinstance(first, tuple) else tuple(parts)
    raise TypeError(
        f"cannot collate {where}: samples of type {type(first).__name__} are not supported "
        "by the default collate (it stacks arrays, numbers and Ember Tensors inside "
        "tuples, lists and dicts); pass collate_fn= to DataLoader to batch them yourself"
    )


def _describe(value: Any) -> str:
    kind = _kind(value)
    return {"array": "an array/number", "string": "a string", "dict": "a dict"}.get(
        kind, "a tuple/list" if kind == "sequence" else f"a {kind}"
    )


def default_collate(samples: Sequence) -> Any:
    """Stack a list of samples into one batch, keeping the samples' structure.

    * arrays, NumPy scalars, Python numbers and Ember Tensors are stacked with ``np.stack``
      into one NumPy array with a new leading batch axis (Tensors become NumPy arrays: batches
      are plain data, which ``model.fit`` and the layers accept; wrap with ``ember.tensor`` if
      a hand-written loop needs a Tensor). Python ints give int64, floats float64, bools bool;
      NumPy values keep their dtype;
    * a tuple or list sample gives a tuple of collated parts (a named tuple stays one);
    * a dict sample gives a dict with the same keys;
    * strings are gathered into a list;
    * nested structures are collated recursively.

    Args:
        samples: a non-empty sequence of samples of identical structure.

    Returns:
        The batch: a structure like one sample whose leaves have a leading axis of
        ``len(samples)``.

    Raises:
        ValueError: if ``samples`` is empty, or the samples' shapes, keys or lengths differ.
        TypeError: if the samples' structures or types differ, or a type cannot be stacked.

    Example:
        >>> from ember.data import default_collate
        >>> batch = default_collate([{"x": np.zeros(2, "float32"), "y": 3},
        ...                          {"x": np.ones(2, "float32"), "y": 4}])
        >>> batch["x"]
        array([[0., 0.],
               [1., 1.]], dtype=float32)
        >>> batch["y"]
        array([3, 4])
    """
    samples = list(samples)
    if not samples:
        raise ValueError("default_collate: got no samples; a batch needs at least one")
    return _collate(samples, "the samples")
