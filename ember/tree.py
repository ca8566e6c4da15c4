"""Nested structures of tensors: lists, tuples and dicts walked by one small utility.

Several inputs, several outputs, a loss or a metric per output, the sources of
``GradientTape.gradient`` — all are *structures* whose leaves are tensors (or arrays, or ``None``).
These three functions handle them once, so the rest of Ember never writes its own recursion:

* :func:`flatten` lists the leaves, depth first; dict entries in sorted-key order (Keras' rule,
  which makes the order independent of how the dict was built);
* :func:`pack_sequence_as` rebuilds a structure from such a list;
* :func:`map_structure` applies a function to the leaves of one or more structures of the same
  shape.

Lists, tuples (named tuples included) and dicts are structures; everything else — tensors,
arrays, numbers, strings, ``None`` — is a leaf.

Example:
    >>> ember.tree.flatten({"b": [1, 2], "a": 3})
    [3, 1, 2]
    >>> ember.tree.pack_sequence_as({"b": [0, 0], "a": 0}, [30, 10, 20])
    {'b': [10, 20], 'a': 30}
    >>> ember.tree.map_structure(lambda x, y: x + y, (1, [2]), (10, [20]))
    (11, [22])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["is_nested", "flatten", "pack_sequence_as", "map_structure", "assert_same_structure"]


def is_nested(structure: Any) -> bool:
    """True for a list, tuple or dict (a structure), False for a leaf."""
    return isinstance(structure, (list, tuple, dict))


def _children(structure) -> list:
    if isinstance(structure, dict):
        return [structure[key] for key in sorted(structure)]
    return list(structure)


def flatten(structure: Any) -> list:
    """The leaves of ``structure``, depth first (a leaf alone gives ``[leaf]``).

    Iterative, so deep structures never hit the recursion limit.
    """
    if not isinstance(structure, (list, tuple, dict)):
        return [structure]  # the common case (one tensor), on every training step
    leaves: list = []
    stack = [structure]
    while stack:
        item = stack.pop()
        if is_nested(item):
            stack.extend(reversed(_children(item)))
        else:
            leaves.append(item)
    return leaves


def _rebuild(template, children: list):
    if isinstance(template, dict):
        values = dict(zip(sorted(template), children))
        return type(template)((key, values[key]) for key in template)
    if isinstance(template, tuple) and hasattr(template, "_fields"):  # a named tuple
        return type(template)(*children)
    return type(template)(children)


def pack_sequence_as(structure: Any, flat: list) -> Any:
    """A structure shaped like ``structure`` whose leaves are ``flat``, in :func:`flatten` order."""
    flat = list(flat)
    count = len(flatten(structure))
    if count != len(flat):
        raise ValueError(
            f"pack_sequence_as: the structure has {count} leaves but {len(flat)} values were "
            "given"
        )
    return _pack(structure, iter(flat))


def _pack(template, leaves):
    # A module-level helper rather than a nested closure: a closure that calls itself is a
    # reference cycle, which would keep every packed tensor alive until the garbage collector
    # runs (memory growing with the number of batches).
    if not is_nested(template):
        return next(leaves)
    return _rebuild(template, [_pack(child, leaves) for child in _children(template)])


def assert_same_structure(first: Any, second: Any, names: tuple[str, str] = ("a", "b")) -> None:
    """Raise ``ValueError`` unless the two structures nest the same way (leaves may differ)."""
    stack = [(first, second, "")]
    while stack:
        a, b, path = stack.pop()
        if is_nested(a) != is_nested(b):
            raise ValueError(
                f"{names[0]} and {names[1]} do not have the same structure at "
                f"{path or 'the top level'}: {type(a).__name__} against {type(b).__name__}"
            )
        if not is_nested(a):
            continue
        if isinstance(a, dict) != isinstance(b, dict):
            raise ValueError(
                f"{names[0]} and {names[1]} do not have the same structure at "
                f"{path or 'the top level'}: {type(a).__name__} against {type(b).__name__}"
            )
        if isinstance(a, dict):
            if sorted(a) != sorted(b):
                raise ValueError(
                    f"{names[0]} and {names[1]} have different keys at {path or 'the top level'}"
                    f": {sorted(a)} against {sorted(b)}"
                )
            keys = sorted(a)
            stack.extend((a[k], b[k], f"{path}[{k!r}]") for k in keys)
        else:
            if len(a) != len(b):
                raise ValueError(
                    f"{names[0]} and {names[1]} have different lengths at "
                    f"{path or 'the top level'}: {len(a)} against {len(b)}"
                )
            stack.extend((x, y, f"{path}[{i}]") for i, (x, y) in enumerate(zip(a, b)))


def map_structure(fn: Callable, *structures: Any) -> Any:
    """``fn`` applied leaf by leaf to structures of the same shape; the result has that shape."""
    if not structures:
        raise TypeError("map_structure needs at least one structure")
    first = structures[0]
    if len(structures) == 1 and not isinstance(first, (list, tuple, dict)):
        return fn(first)  # one leaf: the common case
    for other in structures[1:]:
        assert_same_structure(first, other)
    columns = [flatten(s) for s in structures]
    return pack_sequence_as(first, [fn(*leaves) for leaves in zip(*columns)])
