"""Graphs as edge lists: building, normalizing and batching them for the graph layers.

A graph with ``N`` nodes is given by its node features ``x`` ``(N, F)`` and an ``edge_index``
of shape ``(2, E)``: ``edge_index[0]`` holds the source ``j`` of each edge and ``edge_index[1]``
its target ``i``; a layer sends messages from ``j`` to ``i`` (PyTorch Geometric's convention).
An undirected graph lists each edge in both directions (:func:`to_undirected`).

Everything here works on NumPy arrays (no gradients flow through a graph's structure):

* :func:`check_edge_index` — validation with errors that say what is wrong;
* :func:`add_self_loops`, :func:`remove_self_loops`, :func:`degree`, :func:`to_undirected`;
* :func:`gcn_normalization` — Kipf & Welling's ``D^-1/2 (A + I) D^-1/2`` as edge weights;
* :func:`batch_graphs` — several graphs as one block-diagonal graph plus a ``graph_ids``
  vector (which graph each node belongs to) for graph-level pooling;
* :func:`from_networkx` — the edge list of a networkx graph.

>>> edge_index = ember.graph.to_undirected([[0, 1], [1, 2]])  # the path 0 - 1 - 2
>>> edge_index.tolist()
[[0, 1, 1, 2], [1, 0, 2, 1]]
>>> ember.graph.degree(edge_index[1], 3).tolist()
[1.0, 2.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ember import ops
from ember.ops.graph import _index_vector
from ember.tensor import Tensor

__all__ = [
    "add_self_loops",
    "batch_graphs",
    "check_edge_index",
    "degree",
    "from_networkx",
    "gcn_normalization",
    "remove_self_loops",
    "to_undirected",
]


def check_edge_index(fn: str, edge_index, num_nodes: int | None = None) -> np.ndarray:
    """``edge_index`` as an ``(2, E)`` integer array with every node id in ``[0, num_nodes)``,
    or a ``ValueError``/``TypeError`` naming ``fn``.

    >>> ember.graph.check_edge_index("GCNConv", [[0, 1], [1, 5]], num_nodes=3)
    Traceback (most recent call last):
    ...
    ValueError: GCNConv: edge_index refers to node 5, but the graph has 3 nodes (ids 0..2); ...
    """
    array = np.asarray(edge_index.data if hasattr(edge_index, "data") else edge_index)
    if array.size == 0:
        return np.zeros((2, 0), dtype=np.intp)
    if array.dtype.kind == "f" and np.array_equal(array, np.rint(array)):
        array = array.astype(np.intp)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{fn}: edge_index must hold integer node ids, got dtype {array.dtype}")
    if array.ndim != 2 or array.shape[0] != 2:
        hint = " (transpose it: edge_index.T)" if array.ndim == 2 and array.shape[1] == 2 else ""
        raise ValueError(
            f"{fn}: edge_index must have shape (2, num_edges) — sources in row 0, targets in "
            f"row 1 — got shape {array.shape}{hint}"
        )
    if array.min() < 0:
        raise ValueError(f"{fn}: edge_index holds a negative node id ({int(array.min())})")
    if num_nodes is not None and array.max() >= num_nodes:
        raise ValueError(
            f"{fn}: edge_index refers to node {int(array.max())}, but the graph has {num_nodes} "
            f"nodes (ids 0..{num_nodes - 1}); the node features must have one row per node"
        )
    return array.astype(np.intp, copy=False)


def degree(index, num_nodes: int, weights=None, dtype=np.float32) -> np.ndarray:
    """How many times each node id in ``[0, num_nodes)`` occurs in ``index`` (the in-degree
    for ``edge_index[1]``), or the sum of its ``weights``.

    >>> ember.graph.degree([0, 2, 2], 4).tolist()
    [1.0, 0.0, 2.0, 0.0]
    """
    ids = _index_vector("degree", "index", np.asarray(index).reshape(-1), num_nodes)
    counts = np.bincount(
        ids, weights=None if weights is None else np.asarray(weights), minlength=num_nodes
    )
    return counts.astype(dtype, copy=False)


def remove_self_loops(edge_index, edge_weight=None):
    """The edges whose source differs from their target (and their weights).

    >>> ember.graph.remove_self_loops([[0, 1, 1], [0, 0, 1]])[0].tolist()
    [[1], [0]]
    """
    edges = check_edge_index("remove_self_loops", edge_index)
    keep = np.flatnonzero(edges[0] != edges[1])
    if edge_weight is None:
        return edges[:, keep], None
    return edges[:, keep], _pick(_edge_weights("remove_self_loops", edge_weight, edges), keep)


def _edge_weights(fn: str, edge_weight, edges: np.ndarray, dtype=None):
    """``edge_weight`` as a 1-D tensor (kept, so its gradient flows) or array, one per edge."""
    weights = edge_weight if isinstance(edge_weight, Tensor) else np.asarray(edge_weight, dtype)
    if weights.ndim != 1 or weights.shape[0] != edges.shape[1]:
        raise ValueError(
            f"{fn}: edge_weight has {weights.shape[0] if weights.ndim else 'no'} entries for "
            f"{edges.shape[1]} edges (shape {tuple(weights.shape)}); give one weight per edge"
        )
    if dtype is not None and weights.dtype != dtype:
        weights = ops.cast(weights, dtype) if isinstance(weights, Tensor) else weights
    return weights


def _pick(weights, positions: np.ndarray):
    """``weights[positions]``, differentiable when ``weights`` is a tensor."""
    if isinstance(weights, Tensor):
        return ops.take(weights, positions, axis=0)
    return weights[positions]


def add_self_loops(edge_index, num_nodes: int, edge_weight=None, fill_value: float = 1.0):
    """One self-loop ``i -> i`` per node, after the other edges: a node that already had loops
    keeps one, with the weight of its last one; the others get ``fill_value`` (PyTorch
    Geometric's ``add_remaining_self_loops``, so ``A + I`` never counts a loop twice). Returns
    ``(edge_index, edge_weight)``; the weights are ``None`` when none were given, and a tensor
    (whose gradient reaches the given one) when a tensor was given.

    >>> edges, weights = ember.graph.add_self_loops([[0, 1], [1, 1]], 3, [2.0, 5.0])
    >>> edges.tolist(), weights.tolist()
    ([[0, 0, 1, 2], [1, 0, 1, 2]], [2.0, 1.0, 5.0, 1.0])
    """
    edges = check_edge_index("add_self_loops", edge_index, num_nodes)
    is_loop = edges[0] == edges[1]
    nodes = np.arange(num_nodes)
    with_loops = np.concatenate([edges[:, ~is_loop], np.stack([nodes, nodes])], axis=1)
    if edge_weight is None:
        return with_loops, None
    weights = _edge_weights("add_self_loops", edge_weight, edges)
    # Each new edge's weight is read from [weights, fills]: an old loop's own weight (the last
    # of repeated loops wins) or its node's fill value.
    last_loop = np.full(num_nodes, -1)
    np.maximum.at(last_loop, edges[0][is_loop], np.flatnonzero(is_loop))  # fancy assignment
    source = np.where(last_loop >= 0, last_loop, edges.shape[1] + nodes)  # leaves ties undefined
    positions = np.concatenate([np.flatnonzero(~is_loop), source])
    fills = np.full(num_nodes, fill_value, dtype=weights.dtype)
    if isinstance(weights, Tensor):
        return with_loops, _pick(ops.concatenate([weights, Tensor(fills)]), positions)
    return with_loops, np.concatenate([weights, fills])[positions]


def gcn_normalization(
    edge_index, num_nodes: int, edge_weight=None, add_loops: bool = True, dtype=np.float32
):
    """The edges of ``D^-1/2 (A + I) D^-1/2`` (Kipf & Welling) and their weights: with self-loops
    added (:func:`add_self_loops`), the degree ``d_i`` of each target summed over its incoming
    edge weights, and edge ``j -> i`` weighted ``w_ji / sqrt(d_j d_i)``. A node of degree 0
    contributes 0, never ``inf``. Given a tensor ``edge_weight``, the weights come back as a
    tensor through which its gradient flows (learned edge weights); else as an array.

    >>> edges, norm = ember.graph.gcn_normalization([[0, 1], [1, 0]], 2)
    >>> np.round(norm, 6).tolist()  # every node has degree 2 (its neighbour and itself)
    [0.5, 0.5, 0.5, 0.5]
    """
    edges = check_edge_index("gcn_normalization", edge_index, num_nodes)
    dtype = np.dtype(dtype)
    weights = (
        np.ones(edges.shape[1], dtype=dtype)
        if edge_weight is None
        else _edge_weights("gcn_normalization", edge_weight, edges, dtype)
    )
    if add_loops:
        edges, weights = add_self_loops(edges, num_nodes, weights, fill_value=1.0)
    weights = weights if isinstance(weights, Tensor) else Tensor(weights)
    deg = ops.segment_sum(weights, edges[1], num_nodes)
    # 1/sqrt(d) where d > 0, else 0: the square root sees 1 there, so no inf * 0 in backward
    positive = deg.data > 0
    inv_sqrt = ops.where(positive, 1.0 / ops.sqrt(ops.where(positive, deg, 1.0)), 0.0)
    norm = _pick(inv_sqrt, edges[0]) * weights * _pick(inv_sqrt, edges[1])
    return edges, norm if isinstance(edge_weight, Tensor) else norm.numpy()


def to_undirected(edge_index) -> np.ndarray:
    """Every edge in both directions, each once, sorted by (source, target).

    >>> ember.graph.to_undirected([[0, 1, 1], [1, 0, 2]]).tolist()
    [[0, 1, 1, 2], [1, 0, 2, 1]]
    """
    edges = check_edge_index("to_undirected", edge_index)
    both = np.concatenate([edges, edges[::-1]], axis=1)
    return np.unique(both, axis=1)


def batch_graphs(
    node_features: Sequence[np.ndarray], edge_indices: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Several graphs as one block-diagonal graph: the node features stacked, the edge indices
    shifted by the number of nodes before them, and ``graph_ids`` naming each node's graph (the
    ``segment_ids`` of a graph-level pooling).

    >>> x, edges, ids = ember.graph.batch_graphs(
    ...     [np.ones((2, 3)), np.ones((3, 3))], [[[0], [1]], [[0, 2], [1, 1]]])
    >>> x.shape, edges.tolist(), ids.tolist()
    ((5, 3), [[0, 2, 4], [1, 3, 3]], [0, 0, 1, 1, 1])
    """
    if len(node_features) != len(edge_indices):
        raise ValueError(
            f"batch_graphs: got {len(node_features)} node-feature arrays and "
            f"{len(edge_indices)} edge indices; give one of each per graph"
        )
    if not node_features:
        raise ValueError("batch_graphs: got no graphs")
    sizes = [np.shape(x)[0] for x in node_features]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    shifted = [
        check_edge_index(f"batch_graphs (graph {k})", e, n) + offset
        for k, (e, n, offset) in enumerate(zip(edge_indices, sizes, offsets))
    ]
    features = np.concatenate([np.asarray(x) for x in node_features], axis=0)
    graph_ids = np.repeat(np.arange(len(sizes)), sizes)
    return features, np.concatenate(shifted, axis=1), graph_ids


def from_networkx(graph) -> tuple[np.ndarray, list]:
    """The ``edge_index`` of a networkx graph (an undirected graph's edges in both directions)
    and its node list (the id ``k`` in ``edge_index`` is ``nodes[k]``).

    >>> import networkx as nx
    >>> edges, nodes = ember.graph.from_networkx(nx.path_graph(3))
    >>> edges.tolist(), nodes
    ([[0, 1, 1, 2], [1, 0, 2, 1]], [0, 1, 2])
    """
    nodes = list(graph.nodes())
    position = {node: k for k, node in enumerate(nodes)}
    pairs = np.array([[position[a], position[b]] for a, b in graph.edges()], dtype=np.intp)
    edges = pairs.T if pairs.size else np.zeros((2, 0), dtype=np.intp)
    if not graph.is_directed():
        edges = to_undirected(edges)
    return edges, nodes
