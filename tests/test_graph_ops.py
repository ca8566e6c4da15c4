"""Graph ops and utilities beyond the op table (``_op_rows_graph.py`` has their gradchecks and
PyTorch parity).

* ``ember.graph``: ``add_self_loops`` (PyG's ``add_remaining_self_loops``: existing and repeated
  loops, weights), ``remove_self_loops``, ``degree``, ``gcn_normalization`` against a dense
  ``D^-1/2 (A + I) D^-1/2`` built in NumPy, ``to_undirected``, ``batch_graphs``, ``from_networkx``
  (Zachary's karate club: 34 nodes, 156 directed edges) — each against exact small arrays.
* The ops' error messages; empty inputs (no edges); float32 forward and backward stay float32;
  ``segment_softmax`` of huge scores stays finite; ``segment_max`` splits the gradient evenly
  between ties (as ``torch.scatter_reduce(..., "amax")``); 10^5 edges on 10^4 nodes against an
  ``np.add.at`` reference, forward and backward.
"""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import Tensor, ops
from ember.graph import (
    add_self_loops,
    batch_graphs,
    check_edge_index,
    degree,
    from_networkx,
    gcn_normalization,
    remove_self_loops,
    to_undirected,
)

# floating-point errors that would mean NaN or inf somewhere (underflow of exp is expected)
STRICT = {"divide": "raise", "invalid": "raise", "over": "raise"}
SEGMENT_OPS = [ops.segment_sum, ops.segment_mean, ops.segment_max, ops.segment_softmax]


def _leaf(array) -> Tensor:
    return Tensor(np.array(array), requires_grad=True)


# ------------------------------------------------------------------------- ember.graph
def test_add_self_loops_keeps_one_loop_per_node_with_its_last_weight():
    # loops: node 1 once (weight 2), node 2 twice (3 then 4); nodes 0 and 3 have none
    edges = [[0, 1, 2, 2, 1], [1, 1, 2, 2, 0]]
    weights = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    with_loops, new_weights = add_self_loops(edges, 4, weights, fill_value=7.0)
    np.testing.assert_array_equal(with_loops, [[0, 1, 0, 1, 2, 3], [1, 0, 0, 1, 2, 3]])
    np.testing.assert_array_equal(new_weights, [1.0, 5.0, 7.0, 2.0, 4.0, 7.0])
    assert new_weights.dtype == np.float64
    unweighted, none = add_self_loops(edges, 4)
    np.testing.assert_array_equal(unweighted, with_loops)
    assert none is None
    # float32 weights stay float32; the default fill is 1
    _, w32 = add_self_loops(edges, 4, weights.astype(np.float32))
    assert w32.dtype == np.float32
    np.testing.assert_array_equal(w32, [1.0, 5.0, 1.0, 2.0, 4.0, 1.0])
    # no edges at all: just the loops
    loops, _ = add_self_loops(np.zeros((2, 0), dtype=int), 3)
    np.testing.assert_array_equal(loops, [[0, 1, 2], [0, 1, 2]])


def test_add_self_loops_errors():
    with pytest.raises(ValueError, match=r"add_self_loops: edge_index refers to node 4, but the "
                       r"graph has 4 nodes"):  # fmt: skip
        add_self_loops([[0, 4], [1, 0]], 4)


def test_degree_checks_node_ids():
    with pytest.raises(ValueError, match="degree"):
        degree([0, 5], 3)  # today: [1, 0, 0, 0, 0, 1], six entries for three nodes
    with pytest.raises(ValueError, match="degree"):
        degree([0, -1], 3)


def test_remove_self_loops():
    edges, weights = remove_self_loops([[0, 1, 2, 2], [0, 2, 2, 1]], [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(edges, [[1, 2], [2, 1]])
    np.testing.assert_array_equal(weights, [2.0, 4.0])
    assert remove_self_loops([[0, 1], [1, 0]])[1] is None


def test_degree_counts_and_weights():
    np.testing.assert_array_equal(degree([0, 2, 2], 4), [1.0, 0.0, 2.0, 0.0])
    assert degree([0, 2, 2], 4).dtype == np.float32
    weighted = degree([0, 2, 2], 4, weights=[0.5, 1.0, 2.0], dtype=np.float64)
    np.testing.assert_array_equal(weighted, [0.5, 0.0, 3.0, 0.0])
    assert weighted.dtype == np.float64
    np.testing.assert_array_equal(degree(np.array([], dtype=int), 3), [0.0, 0.0, 0.0])


# A graph for the normalization: a repeated edge (0 -> 1 twice), a weighted loop (2 -> 2),
# node 3 only sends, node 4 is isolated.
NORM_EDGES = np.array([[0, 0, 1, 2, 2, 3, 1], [1, 1, 2, 2, 0, 1, 0]])
NORM_WEIGHTS = np.array([1.0, 2.0, 0.5, 3.0, 1.5, 1.0, 2.0])


def _dense_gcn(edges, weights, n, add_loops: bool) -> np.ndarray:
    """``D^-1/2 (A + I) D^-1/2`` with ``A[i, j]`` the weight of ``j -> i``; the ``+ I`` keeps an
    existing loop's weight (once) and puts 1 elsewhere; a node of degree 0 gets ``D^-1/2 = 0``."""
    adjacency = np.zeros((n, n))
    loops = edges[0] == edges[1]
    np.add.at(adjacency, (edges[1][~loops], edges[0][~loops]), weights[~loops])
    if add_loops:
        diagonal = np.ones(n)
        diagonal[edges[0][loops]] = weights[loops]
    else:
        diagonal = np.zeros(n)
        np.add.at(diagonal, edges[0][loops], weights[loops])
    adjacency[np.arange(n), np.arange(n)] = diagonal
    deg = adjacency.sum(axis=1)
    inv_sqrt = np.where(deg > 0, 1.0 / np.sqrt(np.where(deg > 0, deg, 1.0)), 0.0)
    return inv_sqrt[:, None] * adjacency * inv_sqrt[None, :]


def _densify(edges, values, n) -> np.ndarray:
    matrix = np.zeros((n, n))
    np.add.at(matrix, (edges[1], edges[0]), values)
    return matrix


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("add_loops", [True, False], ids=["loops", "no_loops"])
def test_gcn_normalization_matches_the_dense_formula(add_loops, weighted):
    weights = NORM_WEIGHTS if weighted else np.ones(NORM_EDGES.shape[1])
    with np.errstate(**STRICT):
        edges, norm = gcn_normalization(
            NORM_EDGES, 5, weights if weighted else None, add_loops=add_loops, dtype=np.float64
        )
    assert norm.dtype == np.float64 and norm.shape == (edges.shape[1],)
    expected = _dense_gcn(NORM_EDGES, weights, 5, add_loops)
    np.testing.assert_allclose(_densify(edges, norm, 5), expected, rtol=1e-14, atol=1e-15)
    if add_loops:
        assert expected[4, 4] == 1.0  # the isolated node keeps its own features
    else:
        assert np.all(expected[:, 3] == 0.0) and np.all(expected[4] == 0.0)  # degree 0 -> 0


def test_gcn_normalization_exact_values_and_dtype():
    edges, norm = gcn_normalization([[0, 1], [1, 0]], 3)
    np.testing.assert_array_equal(edges, [[0, 1, 0, 1, 2], [1, 0, 0, 1, 2]])
    assert norm.dtype == np.float32
    np.testing.assert_allclose(norm, [0.5, 0.5, 0.5, 0.5, 1.0], rtol=1e-7)  # (1/sqrt 2)^2
    with pytest.raises(ValueError, match="gcn_normalization: edge_weight has 1 entries for 2"):
        gcn_normalization([[0, 1], [1, 0]], 3, [1.0])


def test_to_undirected_both_directions_once_sorted():
    result = to_undirected([[0, 1, 1, 3, 2], [1, 0, 2, 3, 2]])
    np.testing.assert_array_equal(result, [[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 2, 3]])
    assert to_undirected(np.zeros((2, 0), dtype=int)).shape == (2, 0)


def test_check_edge_index_messages():
    with pytest.raises(ValueError, match=r"f: edge_index must have shape \(2, num_edges\).*got "
                       r"shape \(3, 2\) \(transpose it: edge_index\.T\)"):  # fmt: skip
        check_edge_index("f", [[0, 1], [1, 2], [2, 0]])
    with pytest.raises(ValueError, match=r"got shape \(2, 2, 1\)$"):
        check_edge_index("f", np.zeros((2, 2, 1), dtype=int))
    with pytest.raises(ValueError, match=r"f: edge_index refers to node 3, but the graph has 3"):
        check_edge_index("f", [[0, 1], [1, 3]], num_nodes=3)
    with pytest.raises(ValueError, match=r"f: edge_index holds a negative node id \(-2\)"):
        check_edge_index("f", [[0, -2], [1, 0]])
    with pytest.raises(TypeError, match="f: edge_index must hold integer node ids, got dtype"):
        check_edge_index("f", [[0.5, 1.0], [1.0, 0.0]])
    checked = check_edge_index("f", np.array([[0, 1], [1, 2]], dtype=np.int32), 3)
    assert checked.dtype == np.intp


def test_batch_graphs_offsets_and_graph_ids():
    features = [np.full((2, 3), 1.0), np.full((3, 3), 2.0), np.full((1, 3), 3.0)]
    edges = [[[0], [1]], [[0, 2, 1], [1, 1, 2]], np.zeros((2, 0), dtype=int)]
    x, edge_index, graph_ids = batch_graphs(features, edges)
    np.testing.assert_array_equal(x[:, 0], [1, 1, 2, 2, 2, 3])
    assert x.shape == (6, 3)
    np.testing.assert_array_equal(edge_index, [[0, 2, 4, 3], [1, 3, 3, 4]])
    np.testing.assert_array_equal(graph_ids, [0, 0, 1, 1, 1, 2])
    with pytest.raises(ValueError, match="batch_graphs: got 2 node-feature arrays and 1 edge"):
        batch_graphs(features[:2], edges[:1])
    with pytest.raises(ValueError, match="batch_graphs: got no graphs"):
        batch_graphs([], [])
    with pytest.raises(ValueError, match=r"batch_graphs \(graph 1\): edge_index refers to node 3,"
                       r" but the graph has 3 nodes"):  # fmt: skip
        batch_graphs(features, [edges[0], [[0, 3], [1, 1]], edges[2]])


def test_batched_graphs_pool_per_graph():
    """A layer on the batch equals the layer on each graph alone (no edge crosses graphs)."""
    rng = np.random.default_rng(0)
    graphs = [(rng.standard_normal((n, 4)), rng.integers(0, n, (2, 2 * n))) for n in (3, 5, 2)]
    x, edge_index, graph_ids = batch_graphs(*zip(*graphs))
    conv = ember.layers.GCNConv(3, dtype="float64")
    pool = ember.layers.GlobalGraphPooling("sum", dtype="float64")
    batched = pool(conv(x, edge_index), graph_ids).numpy()
    for k, (features, edges) in enumerate(graphs):
        alone = conv(features, edges).numpy().sum(axis=0)
        np.testing.assert_allclose(batched[k], alone, rtol=1e-12, atol=1e-12)


def test_from_networkx_karate_club():
    nx = pytest.importorskip("networkx")
    graph = nx.karate_club_graph()
    edges, nodes = from_networkx(graph)
    assert nodes == list(range(34))
    assert edges.shape == (2, 156) and edges.dtype.kind == "i"
    pairs = set(map(tuple, edges.T.tolist()))
    assert len(pairs) == 156  # each undirected edge once per direction
    assert pairs == {(b, a) for a, b in pairs}
    assert pairs == {(a, b) for a, b in graph.edges()} | {(b, a) for a, b in graph.edges()}
    assert not np.any(edges[0] == edges[1])
    expected_degree = [graph.degree(v) for v in nodes]
    np.testing.assert_array_equal(degree(edges[1], 34), expected_degree)
    assert expected_degree[0] == 16 and expected_degree[33] == 17


def test_from_networkx_directed_and_labelled():
    nx = pytest.importorskip("networkx")
    edges, nodes = from_networkx(nx.DiGraph([(0, 1), (2, 1)]))
    np.testing.assert_array_equal(edges, [[0, 2], [1, 1]])  # a directed graph keeps directions
    edges, nodes = from_networkx(nx.Graph([("b", "a"), ("a", "c")]))
    assert nodes == ["b", "a", "c"]
    np.testing.assert_array_equal(edges, [[0, 1, 1, 2], [1, 0, 2, 1]])
    empty, nodes = from_networkx(nx.empty_graph(3))
    assert empty.shape == (2, 0) and nodes == [0, 1, 2]


# -------------------------------------------------------------------------- op errors
@pytest.mark.parametrize("op", SEGMENT_OPS, ids=lambda op: op.__name__)
def test_segment_op_errors(op):
    name = op.__name__
    argument = "scores" if op is ops.segment_softmax else "data"
    data = np.ones((3, 2))
    with pytest.raises(ValueError, match=rf"{name}: segment_ids must have one id per row of "
                       rf"{argument}: got 2 ids for {argument} of shape \(3, 2\)"):  # fmt: skip
        op(data, [0, 1])
    with pytest.raises(TypeError, match=rf"{name}: segment_ids must be integers, got dtype float"):
        op(data, [0.5, 1.0, 0.0])
    with pytest.raises(ValueError, match=rf"{name}: segment_ids contains 5, outside the valid "
                       r"range \[0, 3\)"):  # fmt: skip
        op(data, [0, 5, 1], num_segments=3)
    with pytest.raises(ValueError, match=rf"{name}: segment_ids contains -1, outside"):
        op(data, [0, -1, 1], num_segments=3)
    with pytest.raises(ValueError, match=rf"{name}: segment_ids must be 1-D, got shape \(1, 3\)"):
        op(data, [[0, 0, 1]])
    with pytest.raises(ValueError, match=rf"{name}: num_segments must be a non-negative integer"):
        op(data, [0, 0, 1], num_segments=-1)
    with pytest.raises(TypeError, match=rf"{name}: {argument} must be a float tensor, got dtype"):
        op(np.ones((3, 2), dtype=int), [0, 0, 1])
    with pytest.raises(ValueError, match=rf"{name}: \w+ must have at least one dimension"):
        op(np.float64(1.0), [0])


@pytest.mark.parametrize("op", SEGMENT_OPS, ids=lambda op: op.__name__)
def test_negative_segment_ids_without_num_segments(op):
    with pytest.raises(ValueError, match=rf"{op.__name__}: segment_ids contains -1"):
        op(np.arange(6.0).reshape(3, 2), [0, -1, 1])


def test_segment_softmax_scalar_error_names_scores():
    with pytest.raises(ValueError, match="segment_softmax: scores must have at least one dim"):
        ops.segment_softmax(np.float64(1.0), [0])


def test_sparse_matmul_errors():
    dense = np.ones((3, 2))
    with pytest.raises(ValueError, match=r"sparse_matmul: indices must have shape \(2, nnz\), "
                       r"got shape \(3, 2\)"):  # fmt: skip
        ops.sparse_matmul(np.zeros((3, 2), dtype=int), None, dense)
    with pytest.raises(ValueError, match=r"indices must have shape \(2, nnz\), got shape \(4,\)"):
        ops.sparse_matmul(np.zeros(4, dtype=int), None, dense)
    with pytest.raises(ValueError, match=r"sparse_matmul: the sparse matrix has 4 columns but "
                       r"dense has 3 rows \(dense shape \(3, 2\)\)"):  # fmt: skip
        ops.sparse_matmul([[0, 1], [0, 1]], None, dense, (2, 4))
    with pytest.raises(ValueError, match=r"sparse_matmul: values must have one entry per index "
                       r"pair, shape \(2,\), got \(1,\)"):  # fmt: skip
        ops.sparse_matmul([[0, 1], [0, 1]], [1.0], dense, (2, 3))
    with pytest.raises(ValueError, match=r"indices\[1\] contains 3, outside the valid range"):
        ops.sparse_matmul([[0, 1], [0, 3]], None, dense, (2, 3))
    with pytest.raises(ValueError, match=r"indices\[0\] contains 2, outside the valid range"):
        ops.sparse_matmul([[0, 2], [0, 1]], None, dense, (2, 3))
    with pytest.raises(TypeError, match=r"sparse_matmul: indices\[0\] must be integers"):
        ops.sparse_matmul([[0, 1.5], [0, 1]], None, dense, (2, 3))
    with pytest.raises(TypeError, match="sparse_matmul: dense must be a float tensor"):
        ops.sparse_matmul([[0, 1], [0, 1]], None, np.ones((3, 2), dtype=int), (2, 3))


# --------------------------------------------------------------------------- no edges
@pytest.mark.parametrize("op", SEGMENT_OPS, ids=lambda op: op.__name__)
def test_segment_ops_on_no_rows(op):
    data = _leaf(np.zeros((0, 3)))
    out = op(data, np.zeros(0, dtype=int), num_segments=4)
    rows = 0 if op is ops.segment_softmax else 4  # a softmax keeps one entry per row
    assert out.shape == (rows, 3) and out.dtype == np.float64
    np.testing.assert_array_equal(out.numpy(), 0.0)
    (out * 2.0).sum().backward()
    assert data.grad.shape == (0, 3)
    assert op(np.zeros((0, 3)), np.zeros(0, dtype=int)).shape == (0, 3)  # 0 segments


def test_segment_ops_leave_empty_segments_at_zero_with_zero_gradient():
    data = _leaf(np.arange(6.0).reshape(3, 2) - 4.0)  # negative rows: max is not clipped at 0
    for op in (ops.segment_sum, ops.segment_mean, ops.segment_max):
        out = op(data, [0, 0, 3], num_segments=5)
        np.testing.assert_array_equal(out.numpy()[[1, 2, 4]], 0.0)
        data.grad = None
        out.sum().backward()
        assert np.all(np.isfinite(data.grad))
    np.testing.assert_array_equal(ops.segment_max(data, [0, 0, 3], 5).numpy()[0], [-2.0, -1.0])


def test_sparse_matmul_with_no_entries():
    dense, values = _leaf(np.ones((3, 2))), _leaf(np.zeros(0))
    out = ops.sparse_matmul(np.zeros((2, 0), dtype=int), values, dense, (4, 3))
    assert out.shape == (4, 2)
    np.testing.assert_array_equal(out.numpy(), 0.0)
    out.sum().backward()
    np.testing.assert_array_equal(dense.grad, np.zeros((3, 2)))
    assert values.grad.shape == (0,)
    assert ops.sparse_matmul(np.zeros((2, 0), dtype=int), None, np.ones((3, 2))).shape == (0, 2)
    assert ops.sparse_matmul([[], []], None, np.ones((3, 2)), (4, 3)).shape == (4, 2)


# ----------------------------------------------------------------------------- float32
def _float32_cases():
    ids = np.array([2, 0, 2, 1, 0])
    pairs = np.array([[0, 0, 1, 3, 3], [1, 1, 0, 2, 4]])
    return {
        "sparse_matmul": lambda d, v: ops.sparse_matmul(pairs, v, d, (4, 5)),
        "segment_sum": lambda d, v: ops.segment_sum(d * v[:, None], ids, 4),
        "segment_mean": lambda d, v: ops.segment_mean(d * v[:, None], ids, 4),
        "segment_max": lambda d, v: ops.segment_max(d * v[:, None], ids, 4),
        "segment_softmax": lambda d, v: ops.segment_softmax(d * v[:, None], ids, 4),
    }


@pytest.mark.parametrize("name", list(_float32_cases()))
def test_float32_stays_float32(name, grad_probe):
    rng = np.random.default_rng(0)
    dense = _leaf(rng.standard_normal((5, 3)).astype(np.float32))
    values = _leaf(rng.standard_normal(5).astype(np.float32))
    seen_dense: list = []
    seen_values: list = []
    out = _float32_cases()[name](grad_probe(dense, seen_dense), grad_probe(values, seen_values))
    assert out.dtype == np.float32
    (out * Tensor(rng.standard_normal(out.shape).astype(np.float32))).sum().backward()
    assert seen_dense == [np.float32] and seen_values == [np.float32]
    assert dense.grad.dtype == np.float32 and values.grad.dtype == np.float32


def test_sparse_matmul_mixed_dtypes_follow_dense():
    """float64 values with float32 features: the product is float32 (the features' dtype),
    each gradient has its input's dtype."""
    dense = _leaf(np.ones((3, 2), dtype=np.float32))
    values = _leaf(np.array([0.5, 2.0]))
    out = ops.sparse_matmul([[0, 1], [2, 2]], values, dense, (2, 3))
    assert out.dtype == np.float32
    out.sum().backward()
    assert dense.grad.dtype == np.float32 and values.grad.dtype == np.float64
    np.testing.assert_array_equal(dense.grad, [[0, 0], [0, 0], [2.5, 2.5]])
    np.testing.assert_array_equal(values.grad, [2.0, 2.0])


# ---------------------------------------------------------------------------- stability
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_segment_softmax_of_huge_scores_stays_finite(dtype):
    scores = _leaf(np.array([1e4, 1e4 - 1.0, -1e4, 3e4, 1e4, -3e4], dtype=dtype))
    ids = [0, 0, 0, 1, 2, 2]
    with np.errstate(**STRICT):
        out = ops.segment_softmax(scores, ids, 4)
        cotangent = np.array([1.0, -2.0, 0.5, 3.0, 1.0, -1.0], dtype=dtype)
        (out * Tensor(cotangent)).sum().backward()
    e = np.exp(-1.0)
    expected = [1 / (1 + e), e / (1 + e), 0.0, 1.0, 1.0, 0.0]
    tol = 1e-12 if dtype == np.float64 else 1e-6
    assert out.dtype == dtype
    np.testing.assert_allclose(out.numpy(), expected, rtol=tol, atol=tol)
    p, same = np.asarray(expected), np.equal.outer(ids, ids)
    # the softmax's backward: p * (g - sum over the segment of p * g)
    np.testing.assert_allclose(scores.grad, p * (cotangent - same @ (p * cotangent)), atol=tol)
    # (edges, heads) scores: the same per column
    two = ops.segment_softmax(np.stack([scores.numpy(), -scores.numpy()], axis=1), ids, 4)
    assert np.all(np.isfinite(two.numpy()))
    np.testing.assert_allclose(ops.segment_sum(two, ids, 4).numpy()[:3], 1.0, rtol=tol)


def test_segment_max_ties_split_the_gradient_evenly():
    # segment 0: column 0 ties rows 1 and 2 (3.0), column 1 ties rows 0 and 1 (5.0);
    # segment 1: row 3 alone, its column 1 ties rows 3 and 4 at 0.0; segment 2 is empty
    data = _leaf([[1.0, 5.0], [3.0, 5.0], [3.0, 0.0], [2.0, 0.0], [-1.0, 0.0]])
    out = ops.segment_max(data, [0, 0, 0, 1, 1], 3)
    np.testing.assert_array_equal(out.numpy(), [[3.0, 5.0], [2.0, 0.0], [0.0, 0.0]])
    (out * Tensor(np.array([[2.0, 4.0], [3.0, 6.0], [7.0, 7.0]]))).sum().backward()
    expected = [[0.0, 2.0], [1.0, 2.0], [1.0, 0.0], [3.0, 3.0], [0.0, 3.0]]
    np.testing.assert_array_equal(data.grad, expected)


@pytest.mark.parity
def test_segment_max_ties_match_torch_scatter_reduce(torch):
    rng = np.random.default_rng(1)
    # many ties, all positive: where a tied maximum is 0, PyTorch's backward of
    # include_self=False also counts the zero it started from (1/3 each for two tied rows);
    # Ember splits between the rows only (1/2 each, the hand test above)
    data = rng.integers(1, 4, (12, 4)).astype(np.float64)
    ids = rng.integers(0, 5, 12)
    ids[ids == 3] = 4  # segment 3 empty
    cotangent = rng.standard_normal((5, 4))
    x = _leaf(data)
    (ops.segment_max(x, ids, 5) * Tensor(cotangent)).sum().backward()
    tx = torch.tensor(data, requires_grad=True)
    index = torch.as_tensor(ids)[:, None].expand(12, 4)
    t_out = torch.zeros(5, 4, dtype=torch.float64).scatter_reduce(
        0, index, tx, "amax", include_self=False
    )
    (t_out * torch.tensor(cotangent)).sum().backward()
    np.testing.assert_allclose(ops.segment_max(data, ids, 5).numpy(), t_out.detach().numpy())
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------- scale
def test_large_graph_matches_np_add_at():
    """10^5 edges on 10^4 nodes, 32 features: forward and backward of sparse_matmul and
    segment_sum against scatter-adds written with np.add.at."""
    rng = np.random.default_rng(0)
    n, e, f = 10_000, 100_000, 32
    source, target = rng.integers(0, n, e), rng.integers(0, n, e)
    features = rng.standard_normal((n, f))
    weights = rng.standard_normal(e)
    cotangent = rng.standard_normal((n, f))

    dense, values = _leaf(features), _leaf(weights)
    out = ops.sparse_matmul(np.stack([target, source]), values, dense, (n, n))
    expected = np.zeros((n, f))
    np.add.at(expected, target, weights[:, None] * features[source])
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-10)
    (out * Tensor(cotangent)).sum().backward()
    grad_dense = np.zeros((n, f))
    np.add.at(grad_dense, source, weights[:, None] * cotangent[target])
    np.testing.assert_allclose(dense.grad, grad_dense, rtol=1e-10, atol=1e-10)
    grad_values = np.einsum("ef,ef->e", cotangent[target], features[source])
    np.testing.assert_allclose(values.grad, grad_values, rtol=1e-10, atol=1e-10)

    messages = _leaf(features[source])  # (E, F): one message per edge
    summed = ops.segment_sum(messages, target, n)
    expected = np.zeros((n, f))
    np.add.at(expected, target, features[source])
    np.testing.assert_allclose(summed.numpy(), expected, rtol=1e-10, atol=1e-10)
    (summed * Tensor(cotangent)).sum().backward()
    np.testing.assert_array_equal(messages.grad, cotangent[target])
