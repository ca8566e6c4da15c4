"""Rows of the op table (``test_ops.py``) for einsum, tile, split and take (Keras' ops names).

Index arrays that are inputs of a row (integer arrays) reach the op as integer Tensors, so the
Tensor-index path is covered; constant indices and split points are closures of the row.
Behaviour beyond the table (errors, edge cases) is tested in ``test_ops_more.py``.
"""

from __future__ import annotations

import importlib

import numpy as np

from ember import ops

try:
    import torch
except ImportError:  # parity rows then skip (or fail under EMBER_REQUIRE_TORCH=1) in the helper
    torch = None

# By sys.modules: once exported, ``ember.ops.einsum`` is the function and ``ember.ops.shape``
# is Keras' ``ops.shape``, which hide the modules as attributes of the package.
_MODULES = {
    "einsum": importlib.import_module("ember.ops.einsum"),
    "tile": importlib.import_module("ember.ops.shape"),
    "split": importlib.import_module("ember.ops.shape"),
    "take": importlib.import_module("ember.ops.shape"),
}
_REAL = {name: getattr(module, name) for name, module in _MODULES.items()}

# contractions accumulate float32 rounding (catalogue §1.6)
_ACCUMULATING = {"atol": 1e-5, "rtol": 1e-4}


def _op(name: str):
    """The op looked up at call time, so that ``test_row_calls_its_op`` sees the call whether
    it patches ``ember.ops.<name>`` (once exported) or the defining module's attribute."""

    def call(*args, **kwargs):
        for holder in (ops, _MODULES[name]):
            fn = getattr(holder, name, None)
            if callable(fn) and fn is not _REAL[name]:
                return fn(*args, **kwargs)
        return _REAL[name](*args, **kwargs)

    return call


_einsum = _op("einsum")
_tile = _op("tile")
_split = _op("split")
_take = _op("take")

# einsum rows: (id, subscripts, operand shapes, notes)
_EINSUMS = [
    ("matmul", "ij,jk->ik", [(3, 4), (4, 5)], ""),
    ("batch_matmul", "bij,bjk->bik", [(2, 3, 4), (2, 4, 5)], ""),
    ("attention_scores", "bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)], ""),
    ("outer", "i,j->ij", [(3,), (4,)], ""),
    ("trace", "ii->", [(4, 4)], "gradient written onto the diagonal"),
    ("diagonal", "ii->i", [(4, 4)], "gradient written onto the diagonal"),
    ("batch_diagonal", "...ii->...i", [(2, 3, 3)], "ellipsis and diagonal together"),
    ("diagonal_then_contract", "iij,jk->ik", [(3, 3, 4), (4, 2)], "diagonal of a 3-d operand"),
    ("sum_all", "ij->", [(3, 4)], "letters summed out are broadcast back"),
    ("summed_in_one_operand", "ij,k->jk", [(3, 4), (2,)], "'i' appears in operand 0 only"),
    ("transpose", "ij->ji", [(3, 4)], ""),
    (
        "ellipsis_broadcast",
        "...ij,...jk->...ik",
        [(2, 1, 3, 4), (5, 4, 2)],
        "batch shapes (2, 1) and (5,) broadcast: gradients summed back to each operand",
    ),
    (
        "size1_letter_broadcast",
        "ij,jk->ik",
        [(2, 1), (3, 4)],
        "a letter of size 1 broadcasts against 3, as in NumPy and PyTorch",
    ),
    ("three_operands", "ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)], "optimized path"),
    ("implicit", "ij,jk", [(3, 4), (4, 5)], "implicit output 'ik'"),
    ("implicit_ellipsis", "...ij,...jk", [(2, 3, 4), (2, 4, 3)], "implicit output '...ik'"),
]


def _einsum_rows(case) -> None:
    for name, subscripts, shapes, notes in _EINSUMS:
        case(
            f"einsum_{name}",
            "einsum",
            lambda *xs, s=subscripts: _einsum(s, *xs),
            lambda *xs, s=subscripts: torch.einsum(s, *xs),
            shapes,
            notes=notes,
            parity=_ACCUMULATING,
        )


def _tile_rows(case) -> None:
    for name, repeats, shape in [
        ("int", 3, (2, 3)),
        ("per_axis", (2, 3), (2, 3)),
        ("more_repeats_than_axes", (2, 1, 3), (2, 3)),
        ("fewer_repeats_than_axes", (2,), (2, 3, 2)),
    ]:
        reps = (repeats,) if isinstance(repeats, int) else repeats
        case(
            f"tile_{name}",
            "tile",
            lambda x, r=repeats: _tile(x, r),
            lambda x, r=reps: torch.tile(x, r),
            [shape],
            notes="the gradient sums the tiles",
        )


def _weighted_concat(pieces):
    """The pieces flattened and scaled by distinct weights, so that a piece's gradient landing
    in another piece's window changes the numbers even for equal cotangents."""
    return [p.reshape((-1,)) * float(k + 1) for k, p in enumerate(pieces)]


def _split_rows(case) -> None:
    for name, spec, axis, shape, ref in [
        ("sections_axis0", 3, 0, (6, 4), lambda x: torch.split(x, 2, 0)),
        ("points_axis1", [1, 3], 1, (3, 5), lambda x: torch.tensor_split(x, [1, 3], 1)),
        (
            "negative_point_and_axis",
            [2, -1],
            -1,
            (2, 3, 6),
            lambda x: (x[..., :2], x[..., 2:-1], x[..., -1:]),
        ),
    ]:
        case(
            f"split_{name}",
            "split",
            lambda x, s=spec, a=axis: ops.concatenate(_weighted_concat(_split(x, s, a))),
            lambda x, r=ref: torch.cat(_weighted_concat(r(x))),
            [shape],
            notes="pieces concatenated with distinct weights: every piece's gradient is checked",
        )


def _index_select(x, index, axis):
    """torch.index_select for an index of any shape and negative entries (wrapped, as NumPy)."""
    axis %= x.ndim
    n = x.shape[axis]
    flat = torch.remainder(torch.as_tensor(index).reshape(-1), n)
    picked = torch.index_select(x, axis, flat)
    return picked.reshape(x.shape[:axis] + tuple(np.shape(index)) + x.shape[axis + 1 :])


def _take_rows(case) -> None:
    flat_index = np.array([[0, 5, -1], [5, 5, 2]])
    case(
        "take_flat_repeated_negative",
        "take",
        lambda x, i: _take(x, i),
        lambda x, i: torch.take(x, torch.remainder(i, x.numel())),
        [(2, 3), flat_index],
        notes="axis=None reads x flattened; repeated indices accumulate",
    )
    case(
        "take_axis0_repeated",
        "take",
        lambda x, i: _take(x, i, 0),
        lambda x, i: torch.index_select(x, 0, i),
        [(3, 4), np.array([2, 0, 2, 2])],
        notes="repeated indices accumulate (np.add.at)",
    )
    index_2d = [[1, -1], [0, 1]]
    case(
        "take_axis1_2d_negative",
        "take",
        lambda x: _take(x, index_2d, axis=1),
        lambda x: _index_select(x, index_2d, 1),
        [(2, 4, 3)],
        notes="a 2-d list of indices with a negative one, along a middle axis",
    )
    case(
        "take_negative_axis",
        "take",
        lambda x: _take(x, np.array([3, 0, 3]), axis=-1),
        lambda x: _index_select(x, [3, 0, 3], -1),
        [(2, 3, 4)],
    )
    case(
        "take_scalar_index",
        "take",
        lambda x: _take(x, 1, axis=0),
        lambda x: x[1],
        [(3, 4)],
        notes="a scalar index drops the axis, as np.take",
    )


def add_rows(case) -> None:
    """Append this family's rows with ``case(id, op, fn, ref, inputs, ...)`` (see test_ops.py)."""
    _einsum_rows(case)
    _tile_rows(case)
    _split_rows(case)
    _take_rows(case)
