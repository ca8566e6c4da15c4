"""Rows of the op table (``test_ops.py``) for the graph ops: sparse_matmul and the segment
reductions. Every row has repeated indices (a node with several incoming edges) and most an
empty segment (a node with none), the two cases a scatter gets wrong. PyTorch references are
written from the definitions: a dense matrix built with ``index_put(accumulate=True)``,
``index_add`` and ``scatter_reduce``. Behaviour beyond the table is in ``test_graph_ops.py``.
"""

from __future__ import annotations

import numpy as np

from ember import ops

try:
    import torch
except ImportError:  # parity rows then skip (or fail under EMBER_REQUIRE_TORCH=1) in the helper
    torch = None

_ACCUMULATING = {"atol": 1e-5, "rtol": 1e-4}

# 5 target nodes, 6 source rows; (0, 1) appears twice, target 3 has no entry
_ROWS = np.array([0, 0, 1, 2, 4, 4, 0])
_COLS = np.array([1, 1, 0, 5, 2, 3, 4])
# segment ids of 7 rows into 5 segments: 0 and 4 repeated, segment 3 empty
_IDS = np.array([4, 0, 2, 0, 1, 4, 0])


def _dense_matrix(values, shape):
    matrix = torch.zeros(shape, dtype=values.dtype)
    index = (torch.as_tensor(_ROWS), torch.as_tensor(_COLS))
    return matrix.index_put(index, values, accumulate=True)


def _torch_segment_sum(data, count=5):
    return torch.zeros((count,) + tuple(data.shape[1:]), dtype=data.dtype).index_add(
        0, torch.as_tensor(_IDS), data
    )


def _torch_segment_max(data, count=5):
    index = torch.as_tensor(_IDS).reshape((-1,) + (1,) * (data.ndim - 1)).expand_as(data)
    out = torch.zeros((count,) + tuple(data.shape[1:]), dtype=data.dtype)
    return out.scatter_reduce(0, index, data, "amax", include_self=False)


def _torch_segment_softmax(scores):
    ids = torch.as_tensor(_IDS)
    shift = _torch_segment_max(scores.detach())[ids]
    exps = torch.exp(scores - shift)
    return exps / _torch_segment_sum(exps)[ids]


def _sparse_rows(case) -> None:
    pairs = np.stack([_ROWS, _COLS])
    case(
        "sparse_matmul_values_and_dense",
        "sparse_matmul",
        lambda values, dense: ops.sparse_matmul(pairs, values, dense, (5, 6)),
        lambda values, dense: _dense_matrix(values, (5, 6)) @ dense,
        [(7,), (6, 3)],
        notes="a repeated position adds up; row 3 of the result is empty; values get gradients",
        parity=_ACCUMULATING,
    )
    case(
        "sparse_matmul_3d_dense_no_values",
        "sparse_matmul",
        lambda dense: ops.sparse_matmul(pairs, None, dense, (5, 6)),
        lambda dense: torch.einsum(
            "mk,kab->mab", _dense_matrix(torch.ones(7, dtype=dense.dtype), (5, 6)), dense
        ),
        [(6, 2, 3)],
        notes="values=None means ones; trailing axes of dense are carried through",
        parity=_ACCUMULATING,
    )


def _segment_rows(case) -> None:
    case(
        "segment_sum_2d",
        "segment_sum",
        lambda data: ops.segment_sum(data, _IDS, 5),
        _torch_segment_sum,
        [(7, 3)],
        notes="repeated ids accumulate; segment 3 is empty (zeros)",
    )
    case(
        "segment_sum_3d_default_count",
        "segment_sum",
        lambda data: ops.segment_sum(data, _IDS),
        _torch_segment_sum,
        [(7, 2, 2)],
        notes="num_segments defaults to max(id) + 1",
    )
    case(
        "segment_mean",
        "segment_mean",
        lambda data: ops.segment_mean(data, _IDS, 5),
        lambda data: _torch_segment_sum(data)
        / torch.bincount(torch.as_tensor(_IDS), minlength=5).clamp(min=1)[:, None],
        [(7, 3)],
        notes="an empty segment's mean is 0, not NaN",
    )
    case(
        "segment_max",
        "segment_max",
        lambda data: ops.segment_max(data, _IDS, 5),
        _torch_segment_max,
        [(7, 3)],
        notes="an empty segment gives 0; the gradient goes to the maximal row",
    )
    case(
        "segment_softmax_1d",
        "segment_softmax",
        lambda scores: ops.segment_softmax(scores, _IDS, 5) * np.arange(1.0, 8.0),
        lambda scores: _torch_segment_softmax(scores) * torch.arange(1.0, 8.0, dtype=scores.dtype),
        [(7,)],
        notes="weighted, so the gradient is not the zero gradient of a sum of softmaxes",
    )
    case(
        "segment_softmax_heads",
        "segment_softmax",
        lambda scores: ops.segment_softmax(scores, _IDS, 5) * np.arange(14.0).reshape(7, 2),
        lambda scores: _torch_segment_softmax(scores)
        * torch.arange(14.0, dtype=scores.dtype).reshape(7, 2),
        [(7, 2)],
        notes="(edges, heads) scores: a softmax per segment and head",
    )


def add_rows(case) -> None:
    """Append this family's rows with ``case(id, op, fn, ref, inputs, ...)`` (see test_ops.py)."""
    _sparse_rows(case)
    _segment_rows(case)
