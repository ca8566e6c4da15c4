"""Graphs to learn on: Zachary's karate club and seeded synthetic graphs, as NumPy arrays.

A graph is an ``edge_index`` of shape ``(2, E)`` (sources in row 0, targets in row 1; an
undirected edge listed in both directions, sorted), the convention of :mod:`ember.graph` and
the graph layers (``ember.layers.GCNConv`` ...).

* :func:`karate_club` — Zachary's karate club (34 members, 78 friendships) and the faction each
  member joined when the club split; needs ``networkx`` (``pip install networkx``), which ships
  the graph, so nothing is downloaded;
* :func:`stochastic_block_model` — communities of nodes, densely linked inside and sparsely
  between, with noisy node features that hint at the community (node classification);
* :func:`cycle_graphs` — small random graphs that are trees or contain one cycle of a given
  length, labelled by that length (graph classification).

The generators are vectorized and seeded: the same arguments always give the same arrays.

Example:
    >>> from ember.datasets import graphs
    >>> x, edge_index, labels = graphs.stochastic_block_model((30, 30), 0.3, 0.01, seed=0)
    >>> x.shape, edge_index.shape[0], np.bincount(labels).tolist()
    ((60, 2), 2, [30, 30])
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

from ember.graph import to_undirected

__all__ = ["KARATE_FACTIONS", "cycle_graphs", "karate_club", "stochastic_block_model"]

# The 'club' attribute networkx stores for each member: the faction they joined at the split.
KARATE_FACTIONS = ("Mr. Hi", "Officer")


def karate_club() -> tuple[np.ndarray, np.ndarray]:
    """Zachary's karate club (W. Zachary, 1977): 34 members, an edge for each pair who met
    outside the club, and the faction each member joined when the club split in two — label 0
    for the instructor's (``'Mr. Hi'``, node 0), 1 for the administrator's (``'Officer'``,
    node 33). Read from networkx's ``karate_club_graph()``.

    Returns:
        ``edge_index`` int64 ``(2, 156)`` (the 78 friendships in both directions) and
        ``labels`` int64 ``(34,)``.

    Example:
        >>> from ember.datasets import graphs
        >>> edge_index, labels = graphs.karate_club()
        >>> edge_index.shape, np.bincount(labels).tolist(), int(labels[0]), int(labels[33])
        ((2, 156), [17, 17], 0, 1)
    """
    try:
        import networkx as nx
    except ImportError as err:
        raise ImportError(
            "karate_club: the karate club graph is read from networkx, which is not installed; "
            "install it with `pip install networkx`"
        ) from err
    graph = nx.karate_club_graph()
    nodes = sorted(graph.nodes())
    pairs = np.array(list(graph.edges()), dtype=np.int64).T
    labels = np.array([KARATE_FACTIONS.index(graph.nodes[n]["club"]) for n in nodes], np.int64)
    return to_undirected(pairs).astype(np.int64), labels


# ------------------------------------------------------------------------------ validation
def _check_int(fn: str, name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{fn}: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_probability(fn: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise ValueError(f"{fn}: {name} must be a probability in [0, 1], got {value!r}")
    return float(value)


# ------------------------------------------------------------------------------ SBM
def _lower_triangle_pairs(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``k``-th pair ``(r, c)`` with ``c < r`` in row-major order of the strict lower
    triangle (``k = r (r - 1) / 2 + c``)."""
    r = np.floor((1 + np.sqrt(1 + 8 * k.astype(np.float64))) / 2).astype(np.int64)
    # the square root may round across an integer for large k: step back or forward once
    r -= r * (r - 1) // 2 > k
    r += (r + 1) * r // 2 <= k
    return r, k - r * (r - 1) // 2


def _sample_pairs(total: int, p: float, rng: np.random.Generator) -> np.ndarray:
    """Each of ``total`` candidate pairs kept with probability ``p``: the positions kept (a
    binomial count of distinct positions, which is the same distribution)."""
    count = rng.binomial(total, p)
    return np.sort(rng.choice(total, size=count, replace=False)).astype(np.int64)


def stochastic_block_model(
    sizes: Sequence[int] = (250, 250, 250, 250),
    p_in: float = 0.04,
    p_out: float = 0.002,
    num_features: int | None = None,
    feature_signal: float = 1.0,
    seed: int | None = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A stochastic block model: ``len(sizes)`` communities; each pair of nodes is linked with
    probability ``p_in`` inside a community and ``p_out`` across, independently. Each node also
    gets noisy features that hint at its community: standard normal noise, plus
    ``feature_signal`` on the feature whose index is its community.

    Node ids are shuffled (the community is not the position). With the defaults a node has
    on average ``249 * 0.04 ≈ 10`` neighbours in its community and ``750 * 0.002 = 1.5``
    outside it, and its features alone name its community ~55 % of the time (the best guess
    from them: the largest feature).

    Args:
        sizes: the number of nodes of each community.
        p_in, p_out: the edge probabilities inside a community and between two.
        num_features: features per node (default: one per community); at least ``len(sizes)``.
        feature_signal: the shift of the community's feature (0: features are pure noise).
        seed: seed for ``np.random.default_rng``.

    Returns:
        ``x`` float32 ``(N, num_features)``, ``edge_index`` int64 ``(2, 2 * edges)`` (both
        directions, sorted, no self-loops) and ``labels`` int64 ``(N,)``.

    Example:
        >>> from ember.datasets import graphs
        >>> x, edge_index, labels = graphs.stochastic_block_model((40, 40, 40), 0.25, 0.0)
        >>> bool((labels[edge_index[0]] == labels[edge_index[1]]).all())  # no edge across
        True
        >>> x.shape, x.dtype, labels.dtype
        ((120, 3), dtype('float32'), dtype('int64'))
    """
    fn = "stochastic_block_model"
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence) or not sizes:
        raise ValueError(f"{fn}: sizes must be a non-empty sequence of community sizes, got "
                         f"{sizes!r}")  # fmt: skip
    sizes = [_check_int(fn, "each of sizes", s, 1) for s in sizes]
    p_in, p_out = _check_probability(fn, "p_in", p_in), _check_probability(fn, "p_out", p_out)
    k = len(sizes)
    num_features = k if num_features is None else _check_int(fn, "num_features", num_features, k)
    if isinstance(feature_signal, bool) or not isinstance(feature_signal, numbers.Real):
        raise ValueError(f"{fn}: feature_signal must be a number, got {feature_signal!r}")
    rng = np.random.default_rng(seed)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    sources, targets = [], []
    for a in range(k):  # one draw per pair of communities, not per node
        for b in range(a, k):
            if a == b:
                total = sizes[a] * (sizes[a] - 1) // 2
                r, c = _lower_triangle_pairs(_sample_pairs(total, p_in, rng))
            else:
                position = _sample_pairs(sizes[a] * sizes[b], p_out, rng)
                r, c = position // sizes[b], position % sizes[b]
            sources.append(offsets[a] + r)
            targets.append(offsets[b] + c)
    n = int(offsets[-1])
    block_labels = np.repeat(np.arange(k), sizes)
    new_id = rng.permutation(n)  # node i of the block layout becomes node new_id[i]
    labels = np.empty(n, dtype=np.int64)
    labels[new_id] = block_labels
    edges = new_id[np.stack([np.concatenate(sources), np.concatenate(targets)])]
    x = rng.standard_normal((n, num_features), dtype=np.float32)
    x[np.arange(n), labels] += np.float32(feature_signal)
    return x, to_undirected(edges).astype(np.int64), labels


# ------------------------------------------------------------------------------ cycles
def _check_cycle_lengths(fn: str, cycle_lengths, min_nodes: int) -> np.ndarray:
    lengths = np.asarray(cycle_lengths)
    if lengths.ndim != 1 or lengths.size < 2 or lengths.dtype.kind not in "iu":
        raise ValueError(f"{fn}: cycle_lengths must list at least two integers (one class "
                         f"each), got {cycle_lengths!r}")  # fmt: skip
    bad = lengths[((lengths > 0) & (lengths < 3)) | (lengths < 0) | (lengths > min_nodes)]
    if bad.size:
        raise ValueError(f"{fn}: a cycle length must be 0 (a tree) or from 3 to min_nodes = "
                         f"{min_nodes}, got {int(bad[0])}")  # fmt: skip
    if np.unique(lengths).size != lengths.size:
        raise ValueError(f"{fn}: cycle_lengths must be distinct, got {cycle_lengths!r}")
    return lengths.astype(np.int64)


def cycle_graphs(
    num_graphs: int = 1000,
    cycle_lengths: Sequence[int] = (0, 3, 4, 5, 6),
    min_nodes: int = 10,
    max_nodes: int = 20,
    seed: int | None = 0,
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Small connected random graphs that contain exactly one cycle, of a length given by the
    class — or none (a tree) for a length of 0 — for graph classification.

    Graph ``g`` of class ``c`` has ``n`` nodes (uniform in ``[min_nodes, max_nodes]``): a ring of
    ``L = cycle_lengths[c]`` nodes (a single node if ``L = 0``), then each further node joins
    one node drawn uniformly from those already there (a random recursive tree grows on the
    ring). So a tree has ``n - 1`` edges and every other graph ``n``, whatever ``L``: the edge
    count tells a tree from a cycle, and only the shape tells the cycles apart. The classes
    are balanced (``num_graphs // len(cycle_lengths)`` each, give or take one) and come in a
    random order; each graph's node ids are shuffled.

    Returns:
        ``edge_indices``, a list of ``num_graphs`` int64 ``(2, 2 * edges)`` arrays (node ids
        ``0 .. n - 1`` of that graph, both directions, sorted), ``num_nodes`` int64
        ``(num_graphs,)`` and ``labels`` int64 ``(num_graphs,)``, the index into
        ``cycle_lengths``.

    Example:
        >>> from ember.datasets import graphs
        >>> edges, num_nodes, labels = graphs.cycle_graphs(4, (0, 3), 5, 5, seed=1)
        >>> labels.tolist(), [e.shape[1] // 2 for e in edges]  # a tree has one edge fewer
        ([0, 1, 0, 1], [4, 5, 4, 5])
    """
    fn = "cycle_graphs"
    num_graphs = _check_int(fn, "num_graphs", num_graphs, 1)
    min_nodes = _check_int(fn, "min_nodes", min_nodes, 1)
    max_nodes = _check_int(fn, "max_nodes", max_nodes, min_nodes)
    lengths = _check_cycle_lengths(fn, cycle_lengths, min_nodes)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(num_graphs) % lengths.size).astype(np.int64)
    num_nodes = rng.integers(min_nodes, max_nodes + 1, num_graphs).astype(np.int64)
    ring = lengths[labels]
    offsets = np.concatenate([[0], np.cumsum(num_nodes)[:-1]])
    graph = np.repeat(np.arange(num_graphs), num_nodes)
    local = np.arange(int(num_nodes.sum())) - offsets[graph]
    # the growing tree: every node past the ring joins an earlier node of its graph
    joins = local >= np.maximum(ring, 1)[graph]
    parent = np.floor(rng.random(local.shape[0]) * local).astype(np.int64)
    tree = np.stack([local[joins], parent[joins]]) + offsets[graph[joins]]
    # the ring: node k of the first L is linked to node k + 1 (mod L)
    on_ring = local < ring[graph]
    successor = (local[on_ring] + 1) % ring[graph[on_ring]]
    cycle = np.stack([local[on_ring], successor]) + offsets[graph[on_ring]]
    # shuffle the node ids inside each graph: sorting by graph + a random fraction
    order = np.argsort(graph + rng.random(graph.shape[0]), kind="stable")
    new_id = np.empty_like(order)
    new_id[order] = np.arange(order.shape[0])
    edges = to_undirected(new_id[np.concatenate([tree, cycle], axis=1)])
    owner = graph[edges[0]]  # sorted by source, so by graph
    pieces = np.split(edges - offsets[owner], np.cumsum(np.bincount(owner, minlength=num_graphs)),
                      axis=1)
    return [p.astype(np.int64) for p in pieces[:num_graphs]], num_nodes, labels
