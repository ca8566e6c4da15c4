"""The graph layers (``ember.layers.graph``): ``GCNConv``, ``MessagePassing``, ``SAGEConv``,
``GATConv`` and ``GlobalGraphPooling``.

* Parity with PyTorch Geometric's ``GCNConv`` / ``SAGEConv`` / ``GATConv`` /
  ``global_{add,mean,max}_pool`` with copied weights: the outputs and the gradients of the node
  features and of every weight under a random cotangent (a weighted sum of the outputs as the
  loss), float64 to 1e-10 and float32 to 1e-5. The graph has a repeated edge, self-loops (one of
  them repeated), a node that only sends and an isolated node — what a scatter gets wrong.
* Float64 finite differences (``gradcheck``) of every layer as a function of the node features
  and of its weights; float32 stays float32 (outputs, the gradient reaching the features, the
  weights' gradients).
* A user's ``MessagePassing`` subclass with its own ``message(x_j, x_i)`` against a plain loop
  over the edges; the error messages; configs; save/load of a subclassed model; training.

PyTorch Geometric is a dev extra like torch: these tests skip without it, and fail under
``EMBER_REQUIRE_TORCH=1`` (CI), as the torch parity tests do.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

import ember
from ember import Tensor, layers
from ember.testing import gradcheck

TOL = {np.float64: 1e-10, np.float32: 1e-5}
DTYPES = [np.float64, np.float32]
N, F = 8, 5
# Sources (row 0) send to targets (row 1). 0 -> 1 twice, self-loops 2 -> 2 and 4 -> 4 (twice),
# node 6 only sends (no incoming edge), node 7 has no edge at all.
EDGES = np.array(
    [
        [0, 0, 1, 2, 3, 4, 4, 6, 6, 5, 1, 3, 2, 0],
        [1, 1, 0, 2, 1, 4, 4, 3, 0, 2, 2, 5, 3, 5],
    ]
)
# the graph of each node for the pooling tests: graph 2 has no node
GRAPH_IDS = np.array([0, 0, 1, 1, 1, 3, 3, 3])


def _close(actual, expected, dtype, what: str) -> None:
    tol = TOL[dtype]
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol, err_msg=what)


def _features(dtype, seed: int = 0, shape=(N, F)) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _edge_weight(dtype, seed: int = 0) -> np.ndarray:
    # positive, so that every degree is positive (as a weighted GCN assumes)
    return np.random.default_rng(seed + 100).uniform(0.5, 2.0, EDGES.shape[1]).astype(dtype)


@pytest.fixture(scope="module")
def pyg(torch):
    """PyTorch Geometric, or a skip (an error under EMBER_REQUIRE_TORCH=1, as for torch)."""
    if os.environ.get("EMBER_REQUIRE_TORCH") == "1":
        import torch_geometric.nn  # noqa: F401  (CI: a missing PyG must fail, not skip)
    else:
        pytest.importorskip("torch_geometric.nn")
    import torch_geometric

    return torch_geometric


# ------------------------------------------------------------------ weights to PyG
def _transpose(a):
    return a.T


def _same(a):
    return a


def _add_axis(a):
    return a[None]


def _drop_axis(a):
    return a[0]


def _links(layer, module) -> list:
    """``(Ember weight name, PyG parameter, Ember layout -> PyG, PyG layout -> Ember)`` for
    every weight. Ember's kernels are ``(in, out)``, PyG's ``Linear`` weights ``(out, in)``;
    GAT's attention vectors are ``(heads, units)`` in Ember, ``(1, heads, units)`` in PyG."""
    if isinstance(layer, layers.GCNConv):
        links = [("kernel", module.lin.weight, _transpose, _transpose)]
    elif isinstance(layer, layers.SAGEConv):
        links = [("kernel", module.lin_l.weight, _transpose, _transpose)]
        if layer.root_weight:
            links.append(("root_kernel", module.lin_r.weight, _transpose, _transpose))
        if layer.use_bias:
            links.append(("bias", module.lin_l.bias, _same, _same))
        return links
    else:
        links = [
            ("kernel", module.lin.weight, _transpose, _transpose),
            ("attention_source", module.att_src, _add_axis, _drop_axis),
            ("attention_target", module.att_dst, _add_axis, _drop_axis),
        ]
    if layer.use_bias:
        links.append(("bias", module.bias, _same, _same))
    return links


def _check_parity(torch, layer, module, args: tuple, targs: tuple, dtype, seed: int = 1):
    """Build ``layer`` on the graph, give it random weights, copy them into ``module`` and
    compare outputs and all gradients. ``args``/``targs``: the call's arguments after ``x``."""
    rng = np.random.default_rng(seed)
    x = _features(dtype, seed)
    layer(x, *args)  # builds the weights
    layer.set_weights([rng.normal(0.0, 0.6, w.shape) for w in layer.weights])
    module = module.to(getattr(torch, np.dtype(dtype).name))
    links = _links(layer, module)
    assert {id(p) for _, p, _, _ in links} == {id(p) for p in module.parameters()}
    with torch.no_grad():
        for name, param, to_pyg, _ in links:
            param.copy_(torch.tensor(to_pyg(getattr(layer, name).numpy())))

    layer.zero_grad()
    xe = Tensor(x.copy(), requires_grad=True)
    xt = torch.tensor(x.copy(), requires_grad=True)
    out = layer(xe, *args)
    t_out = module(xt, *targs)
    assert out.dtype == dtype and out.shape == tuple(t_out.shape)
    _close(out.numpy(), t_out.detach().numpy(), dtype, "forward")

    cotangent = rng.standard_normal(out.shape).astype(dtype)
    (out * Tensor(cotangent)).sum().backward()
    (t_out * torch.tensor(cotangent)).sum().backward()
    assert xe.grad.dtype == dtype
    _close(xe.grad, xt.grad.numpy(), dtype, "gradient of x")
    for name, param, _, to_ember in links:
        grad = getattr(layer, name).grad
        assert grad is not None and grad.dtype == dtype, name
        _close(grad, to_ember(param.grad.numpy()), dtype, f"gradient of {name}")
    return out


# ------------------------------------------------------------------------ GCNConv parity
GCN_CASES = {
    "default": ({}, {}, False),
    "no_bias": ({"use_bias": False}, {"bias": False}, False),
    "edge_weight": ({}, {}, True),
    "no_self_loops": ({"add_self_loops": False}, {"add_self_loops": False}, False),
    "no_self_loops_weighted": ({"add_self_loops": False}, {"add_self_loops": False}, True),
    # PyG's normalize=False implies no self-loops (it refuses the combination)
    "not_normalized": ({"normalize": False, "add_self_loops": False}, {"normalize": False}, False),
    "not_normalized_weighted": (
        {"normalize": False, "add_self_loops": False},
        {"normalize": False},
        True,
    ),
}


@pytest.mark.parity
@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("case", list(GCN_CASES))
def test_gcn_conv_matches_pyg(torch, pyg, case, dtype):
    kwargs, t_kwargs, weighted = GCN_CASES[case]
    layer = layers.GCNConv(3, dtype=np.dtype(dtype).name, **kwargs)
    module = pyg.nn.GCNConv(F, 3, **t_kwargs)
    args, targs = (EDGES,), (torch.tensor(EDGES),)
    if weighted:
        w = _edge_weight(dtype)
        args, targs = (EDGES, w), (torch.tensor(EDGES), torch.tensor(w))
    _check_parity(torch, layer, module, args, targs, dtype)


@pytest.mark.parity
@pytest.mark.parametrize("normalize", [True, False], ids=["normalized", "plain"])
def test_gcn_edge_weight_gradient_matches_pyg(torch, pyg, normalize):
    """Learned edge weights: their gradient flows through the degrees and the self-loops (the
    existing loops 2 -> 2 and 4 -> 4 keep their own, trained, weight), as in PyG."""
    dtype = np.float64
    layer = layers.GCNConv(3, dtype="float64", normalize=normalize, add_self_loops=normalize)
    module = pyg.nn.GCNConv(F, 3, normalize=normalize, add_self_loops=normalize).double()
    x, w = _features(dtype), _edge_weight(dtype)
    layer(x, EDGES, w)
    with torch.no_grad():
        for name, param, to_pyg, _ in _links(layer, module):
            param.copy_(torch.tensor(to_pyg(getattr(layer, name).numpy())))
    we = Tensor(w.copy(), requires_grad=True)
    wt = torch.tensor(w.copy(), requires_grad=True)
    cotangent = np.random.default_rng(5).standard_normal((N, 3))
    (layer(x, EDGES, we) * Tensor(cotangent)).sum().backward()
    (module(torch.tensor(x), torch.tensor(EDGES), wt) * torch.tensor(cotangent)).sum().backward()
    _close(we.grad, wt.grad.numpy(), dtype, "gradient of edge_weight")
    if normalize:
        # node 4's only edges are its two loops: the last replaces the first (gradient exactly
        # 0), and the kept one cancels in w / sqrt(w * w) (0 up to rounding)
        assert we.grad[5] == 0 and abs(we.grad[6]) < 1e-12
        trained = np.delete(we.grad, [5, 6])
    else:
        trained = we.grad  # a plain weighted sum: every edge counts
    assert np.all(np.abs(trained) > 1e-6)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_gcn_conv_without_normalization_adds_loops_to_a_plain_sum(dtype):
    """Ember's ``normalize=False, add_self_loops=True`` (which PyG refuses): ``(A + I) X W + b``
    with a node's existing loop kept once, with the weight of its last loop."""
    x, w = _features(dtype), _edge_weight(dtype)
    layer = layers.GCNConv(3, normalize=False, dtype=np.dtype(dtype).name)
    out = layer(x, EDGES, w).numpy()
    adjacency = np.zeros((N, N))
    loops = EDGES[0] == EDGES[1]
    np.add.at(adjacency, (EDGES[1][~loops], EDGES[0][~loops]), w[~loops])
    diagonal = np.ones(N)
    diagonal[EDGES[0][loops]] = w[loops]  # the last loop of node 4 wins
    adjacency[np.arange(N), np.arange(N)] = diagonal
    expected = adjacency @ (x.astype(np.float64) @ layer.kernel.numpy()) + layer.bias.numpy()
    assert out.dtype == dtype
    _close(out, expected, dtype, "(A + I) X W + b")


# ----------------------------------------------------------------------- SAGEConv parity
SAGE_CASES = {
    "mean": ({}, {}),
    "sum": ({"aggregator": "sum"}, {"aggr": "sum"}),
    "max": ({"aggregator": "max"}, {"aggr": "max"}),
    "no_root_weight": ({"root_weight": False}, {"root_weight": False}),
    "normalize": ({"normalize": True}, {"normalize": True}),
    "no_bias_max_normalize": (
        {"aggregator": "max", "normalize": True, "use_bias": False},
        {"aggr": "max", "normalize": True, "bias": False},
    ),
}


@pytest.mark.parity
@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("case", list(SAGE_CASES))
def test_sage_conv_matches_pyg(torch, pyg, case, dtype):
    kwargs, t_kwargs = SAGE_CASES[case]
    layer = layers.SAGEConv(3, dtype=np.dtype(dtype).name, **kwargs)
    module = pyg.nn.SAGEConv(F, 3, **t_kwargs)
    _check_parity(torch, layer, module, (EDGES,), (torch.tensor(EDGES),), dtype)


# ------------------------------------------------------------------------ GATConv parity
GAT_CASES = {
    "one_head": {"heads": 1},
    "three_heads_concat": {"heads": 3},
    "three_heads_mean": {"heads": 3, "concat": False},
    "negative_slope": {"heads": 3, "negative_slope": 0.05},
    "no_self_loops": {"heads": 3, "add_self_loops": False},
    "one_head_mean_no_bias": {"heads": 1, "concat": False, "use_bias": False},
}


def _pyg_gat_kwargs(kwargs: dict) -> dict:
    return {("bias" if k == "use_bias" else k): v for k, v in kwargs.items()}


@pytest.mark.parity
@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("case", list(GAT_CASES))
def test_gat_conv_matches_pyg(torch, pyg, case, dtype):
    kwargs = GAT_CASES[case]
    layer = layers.GATConv(2, dtype=np.dtype(dtype).name, **kwargs)
    module = pyg.nn.GATConv(F, 2, **_pyg_gat_kwargs(kwargs))
    out = _check_parity(torch, layer, module, (EDGES,), (torch.tensor(EDGES),), dtype)
    assert out.shape == (N, 2 * kwargs["heads"] if kwargs.get("concat", True) else 2)


@pytest.mark.parity
def test_gat_dropout_only_in_training(torch, pyg):
    """Attention dropout: inference ignores it (equal to PyG in eval mode), training changes the
    output and still back-propagates."""
    ember.manual_seed(0)
    layer = layers.GATConv(2, heads=3, dropout=0.5, dtype="float64")
    module = pyg.nn.GATConv(F, 2, heads=3, dropout=0.5).eval()
    inference = _check_parity(torch, layer, module, (EDGES,), (torch.tensor(EDGES),), np.float64)
    x = _features(np.float64, 1)
    np.testing.assert_array_equal(layer(x, EDGES, training=False).numpy(), inference.numpy())
    np.testing.assert_array_equal(layer(x, EDGES).numpy(), inference.numpy())  # default: off
    xe = Tensor(x.copy(), requires_grad=True)
    trained = layer(xe, EDGES, training=True)
    assert not np.allclose(trained.numpy(), inference.numpy())
    trained.sum().backward()
    assert np.all(np.isfinite(xe.grad)) and np.any(xe.grad != 0)


# -------------------------------------------------------------- GlobalGraphPooling parity
POOLS = {"sum": "global_add_pool", "mean": "global_mean_pool", "max": "global_max_pool"}


@pytest.mark.parity
@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("mode", list(POOLS))
def test_global_graph_pooling_matches_pyg(torch, pyg, mode, dtype):
    x = _features(dtype, 2)
    pool = layers.GlobalGraphPooling(mode, dtype=np.dtype(dtype).name)
    xe = Tensor(x.copy(), requires_grad=True)
    xt = torch.tensor(x.copy(), requires_grad=True)
    out = pool(xe, GRAPH_IDS, 4)  # graph 2 is empty: 0 in every mode
    t_out = getattr(pyg.nn, POOLS[mode])(xt, torch.tensor(GRAPH_IDS), 4)
    assert out.dtype == dtype and out.shape == (4, F)
    _close(out.numpy(), t_out.detach().numpy(), dtype, "forward")
    np.testing.assert_array_equal(out.numpy()[2], 0.0)
    cotangent = np.random.default_rng(3).standard_normal(out.shape).astype(dtype)
    (out * Tensor(cotangent)).sum().backward()
    (t_out * torch.tensor(cotangent)).sum().backward()
    _close(xe.grad, xt.grad.numpy(), dtype, "gradient of x")
    # num_graphs defaults to max(graph_ids) + 1
    assert pool(x, GRAPH_IDS).shape == (4, F)


# ------------------------------------------------------------------- finite differences
WEIGHT_NAMES = ("kernel", "root_kernel", "attention_source", "attention_target", "bias")
TINY_EDGES = np.array([[0, 0, 1, 2, 2, 3], [1, 1, 2, 2, 0, 1]])  # repeated edge, a loop


def _tiny_layers() -> dict:
    return {
        "gcn": layers.GCNConv(2, dtype="float64"),
        "gcn_raw": layers.GCNConv(2, normalize=False, dtype="float64"),
        "sage_mean": layers.SAGEConv(2, dtype="float64"),
        "sage_max_normalize": layers.SAGEConv(
            2, aggregator="max", normalize=True, dtype="float64"
        ),
        "sage_sum": layers.SAGEConv(2, aggregator="sum", dtype="float64"),
        "gat": layers.GATConv(2, heads=2, negative_slope=0.1, dtype="float64"),
        "gat_mean": layers.GATConv(2, heads=2, concat=False, dtype="float64"),
    }


@pytest.mark.parametrize("name", list(_tiny_layers()))
def test_layer_gradcheck_features_and_weights(name):
    layer = _tiny_layers()[name]
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 3))
    layer(x, TINY_EDGES)
    names = [n for n in WEIGHT_NAMES if getattr(layer, n, None) is not None]
    assert len(names) == len(layer.weights)
    originals = [getattr(layer, n) for n in names]
    values = [rng.normal(0.0, 0.7, w.shape) for w in originals]

    def fn(inputs, *weights):  # route gradcheck's float64 copies through the layer's call
        for n, w in zip(names, weights):
            setattr(layer, n, w)
        try:
            return layer(inputs, TINY_EDGES)
        finally:
            for n, w in zip(names, originals):
                setattr(layer, n, w)

    result = gradcheck(fn, x, *values)
    assert result.ok and result.checked_elements == x.size + sum(v.size for v in values)


def test_pooling_gradcheck():
    x = np.random.default_rng(6).standard_normal((8, 3))
    for mode in POOLS:
        pool = layers.GlobalGraphPooling(mode, dtype="float64")
        assert gradcheck(lambda v, p=pool: p(v, GRAPH_IDS, 4), x).ok


# ---------------------------------------------------------------------- float32 stays
FLOAT32_LAYERS = {
    "gcn": lambda: layers.GCNConv(3),
    "gcn_raw": lambda: layers.GCNConv(3, normalize=False),
    "sage_max": lambda: layers.SAGEConv(3, aggregator="max"),
    "sage_normalize": lambda: layers.SAGEConv(3, normalize=True),
    "gat": lambda: layers.GATConv(2, heads=2),
    "gat_mean_dropout": lambda: layers.GATConv(2, heads=2, concat=False, dropout=0.3),
}


@pytest.mark.parametrize("name", list(FLOAT32_LAYERS))
def test_float32_is_never_up_cast(name, grad_probe):
    layer = FLOAT32_LAYERS[name]()
    x = Tensor(_features(np.float32), requires_grad=True)
    seen: list = []
    args = (EDGES,)
    if isinstance(layer, layers.GCNConv):
        args = (EDGES, _edge_weight(np.float64))  # float64 weights are cast, not promoted
    out = layer(grad_probe(x, seen), *args, training=True)
    assert out.dtype == np.float32
    out.sum().backward()
    assert seen == [np.float32]
    assert x.grad.dtype == np.float32
    assert all(w.dtype == np.float32 and w.grad.dtype == np.float32 for w in layer.weights)
    # float64 features given to a float32 layer are cast to float32 (Keras' autocast)
    assert layer(_features(np.float64), *args).dtype == np.float32


def test_float32_pooling_and_message_passing(grad_probe):
    x = Tensor(_features(np.float32), requires_grad=True)
    for module in (layers.GlobalGraphPooling("max"), _Difference(aggregator="mean")):
        seen: list = []
        other = GRAPH_IDS if isinstance(module, layers.GlobalGraphPooling) else EDGES
        out = module(grad_probe(x, seen), other)
        assert out.dtype == np.float32
        out.sum().backward()
        assert seen == [np.float32]


# --------------------------------------------------------- a user's MessagePassing layer
class _Difference(layers.MessagePassing):
    """Messages ``x_j - x_i``: each node gathers how its neighbours differ from it."""

    def message(self, x_j, x_i):
        return x_j - x_i

    def call(self, x, edge_index):
        return self.propagate(x, edge_index)


class _Both(layers.MessagePassing):
    """Messages ``[x_j, x_i * x_j]``: twice the features, so the aggregation keeps the width
    of the messages rather than that of ``x``."""

    def message(self, x_j, x_i):
        return ember.ops.concatenate([x_j, x_i * x_j], axis=-1)

    def call(self, x, edge_index):
        return self.propagate(x, edge_index)


class _Plain(layers.MessagePassing):
    """The default message (``x_j``): the sparse-product fast path for sum and mean."""

    def call(self, x, edge_index):
        return self.propagate(x, edge_index)


LOOP_MESSAGES = {
    _Difference: lambda xj, xi: xj - xi,
    _Both: lambda xj, xi: np.concatenate([xj, xi * xj]),
    _Plain: lambda xj, xi: xj,
}


def _loop_reference(x, edges, aggregator, message) -> np.ndarray:
    """Message passing written out edge by edge (fine in a test)."""
    incoming = {i: [] for i in range(x.shape[0])}
    for j, i in edges.T:
        incoming[i].append(message(x[j], x[i]))
    width = len(message(x[0], x[0]))
    out = np.zeros((x.shape[0], width))
    reduce = {"sum": np.sum, "mean": np.mean, "max": np.max}[aggregator]
    for i, messages in incoming.items():
        if messages:  # a node without incoming edges gets 0
            out[i] = reduce(np.stack(messages), axis=0)
    return out


@pytest.mark.parametrize("aggregator", ["sum", "mean", "max"])
@pytest.mark.parametrize("cls", [_Difference, _Both, _Plain], ids=lambda c: c.__name__)
def test_message_passing_subclass_matches_a_loop_over_edges(cls, aggregator):
    x = _features(np.float64, 7)
    layer = cls(aggregator=aggregator, dtype="float64")
    out = layer(x, EDGES)
    expected = _loop_reference(x, EDGES, aggregator, LOOP_MESSAGES[cls])
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(out.numpy()[[6, 7]], 0.0)  # no incoming edge
    small = x[:4, :2]
    assert gradcheck(lambda v: layer(v, TINY_EDGES), small).ok


@pytest.mark.parametrize("aggregator", ["sum", "mean", "max"])
@pytest.mark.parametrize("cls", [_Difference, _Plain], ids=lambda c: c.__name__)
def test_message_passing_carries_trailing_feature_axes(cls, aggregator):
    """``propagate`` on ``(N, heads, F)`` features (as an attention layer has) aggregates each
    (head, feature) pair on its own."""
    x = _features(np.float64, 9, (N, 2, 3))
    out = cls(aggregator=aggregator, dtype="float64")(x, EDGES)
    assert out.shape == (N, 2, 3)
    flat = _loop_reference(x.reshape(N, 6), EDGES, aggregator, LOOP_MESSAGES[cls])
    np.testing.assert_allclose(out.numpy().reshape(N, 6), flat, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------ errors
GRAPH_LAYERS = {
    "GCNConv": lambda: layers.GCNConv(3),
    "SAGEConv": lambda: layers.SAGEConv(3),
    "GATConv": lambda: layers.GATConv(3),
    "MessagePassing": lambda: _Difference(),
}


@pytest.mark.parametrize("name", list(GRAPH_LAYERS))
def test_edge_index_errors_name_the_layer_and_the_fix(name):
    x = _features(np.float32)
    cls = "_Difference" if name == "MessagePassing" else name
    with pytest.raises(ValueError, match=rf"\({cls}\): edge_index must have shape \(2, num_edges\)"
                       r".*got shape \(14, 2\) \(transpose it: edge_index\.T\)"):
        GRAPH_LAYERS[name]()(x, EDGES.T)
    with pytest.raises(ValueError, match=r"refers to node 8, but the graph has 8 nodes"):
        GRAPH_LAYERS[name]()(x, np.where(EDGES == 5, 8, EDGES))
    with pytest.raises(ValueError, match=r"negative node id \(-1\)"):
        GRAPH_LAYERS[name]()(x, np.where(EDGES == 5, -1, EDGES))
    with pytest.raises(TypeError, match="edge_index must hold integer node ids"):
        GRAPH_LAYERS[name]()(x, EDGES + 0.5)
    with pytest.raises(ValueError, match=r"must have shape \(2, num_edges\).*got shape \(3, 4\)$"):
        GRAPH_LAYERS[name]()(x, np.zeros((3, 4), dtype=int))  # no transpose hint: not (E, 2)
    if name == "MessagePassing":
        return  # propagate takes (N, ...) features: the user's call decides what it accepts
    for bad in (np.ones((2, N, F)), np.ones(N)):
        expected = f"expects node features of shape (num_nodes, features), got shape {bad.shape}"
        with pytest.raises(ValueError, match=re.escape(expected)):
            GRAPH_LAYERS[name]()(bad, EDGES)


def test_pooling_errors():
    pool = layers.GlobalGraphPooling()
    with pytest.raises(ValueError, match=r"GlobalGraphPooling\) expects node features of shape"):
        pool(np.ones((2, N, F)), GRAPH_IDS)
    with pytest.raises(ValueError, match="segment_ids must have one id per row of data: got 5"):
        pool(np.ones((N, F)), GRAPH_IDS[:5])
    with pytest.raises(ValueError, match=r"contains 3, outside the valid range \[0, 3\)"):
        pool(np.ones((N, F)), GRAPH_IDS, 3)


def test_option_errors():
    cases = [
        (lambda: layers.SAGEConv(3, aggregator="avg"),
         r"aggregator must be one of 'sum', 'mean', 'max', got 'avg'"),
        (lambda: _Difference(aggregator="min"), r"aggregator must be one of .*got 'min'"),
        (lambda: layers.GlobalGraphPooling("median"),
         r"mode must be one of 'sum', 'mean', 'max', got 'median'"),
        (lambda: layers.GCNConv(-2), r"\(GCNConv\): units must be a positive integer, got -2"),
        (lambda: layers.SAGEConv(0), r"\(SAGEConv\): units must be a positive integer, got 0"),
        (lambda: layers.GATConv(-1), r"\(GATConv\): units must be a positive integer, got -1"),
        (lambda: layers.GATConv(2, heads=0), r"heads must be a positive integer, got 0"),
        (lambda: layers.GATConv(2, dropout=1.5), r"dropout must be a number in \[0, 1\)"),
    ]  # fmt: skip
    for make, message in cases:
        with pytest.raises(ValueError, match=message):
            make()


@pytest.mark.parametrize("make", [lambda: layers.GCNConv(34, 4), lambda: layers.Dense(34, 4)])
def test_pytorch_style_in_and_out_sizes_get_a_hint(make):
    """GCNConv(in_channels, out_channels) as PyG writes it puts 4 in `activation`."""
    hint = r"got the integer 4 as activation.*GCNConv\(out_channels\)"
    with pytest.raises(TypeError, match=hint):
        make()


def test_gcn_edge_weight_of_the_wrong_length():
    x = _features(np.float32)
    with pytest.raises(ValueError, match="edge_weight has 3 entries for 14 edges"):
        layers.GCNConv(3)(x, EDGES, np.ones(3))


@pytest.mark.parametrize("loops", [True, False], ids=["self_loops", "no_self_loops"])
def test_gcn_unnormalized_edge_weight_of_the_wrong_length(loops):
    layer = layers.GCNConv(3, normalize=False, add_self_loops=loops)
    with pytest.raises(ValueError, match=r"GCNConv.*edge_weight.*3.*14 edges"):
        layer(_features(np.float32), EDGES, np.ones(3))


# ------------------------------------------------------------------------------ configs
CONFIG_LAYERS = [
    layers.GCNConv(3, activation="relu", use_bias=False, add_self_loops=False, normalize=False),
    layers.SAGEConv(3, aggregator="max", root_weight=False, normalize=True, activation="tanh"),
    layers.GATConv(
        2, heads=3, concat=False, negative_slope=0.1, dropout=0.25, add_self_loops=False,
        attention_initializer="he_normal",
    ),
    layers.GlobalGraphPooling("max"),
]  # fmt: skip


@pytest.mark.parametrize("layer", CONFIG_LAYERS, ids=lambda layer: type(layer).__name__)
def test_config_round_trip(layer):
    x = _features(np.float32, 4)
    other = GRAPH_IDS if isinstance(layer, layers.GlobalGraphPooling) else EDGES
    before = layer(x, other).numpy()
    spec = layers.layer_spec(layer)
    json.dumps(spec)  # a checkpoint stores it as JSON
    rebuilt = layers.layer_from_config(json.loads(json.dumps(spec)))
    assert type(rebuilt) is type(layer)
    assert rebuilt.get_config() == layer.get_config()
    rebuilt(x, other)
    rebuilt.set_weights(layer.get_weights())
    np.testing.assert_array_equal(rebuilt(x, other).numpy(), before)


def test_message_passing_subclass_config_round_trip():
    layer = _Difference(aggregator="max", name="diff")
    config = layer.get_config()
    assert config["aggregator"] == "max" and config["name"] == "diff"
    rebuilt = _Difference.from_config(json.loads(json.dumps(config)))
    assert rebuilt.get_config() == config
    x = _features(np.float32, 4)
    np.testing.assert_array_equal(rebuilt(x, EDGES).numpy(), layer(x, EDGES).numpy())


# ------------------------------------------------------------------ a model: save, train
class _GraphNet(ember.Model):
    """GCN -> SAGE -> GAT -> pooling per graph -> Dense: every graph layer with weights."""

    def __init__(self):
        super().__init__()
        self.gcn = layers.GCNConv(6, activation="relu")
        self.sage = layers.SAGEConv(6, aggregator="max", activation="relu")
        self.gat = layers.GATConv(3, heads=2)
        self.pool = layers.GlobalGraphPooling("mean")
        self.head = layers.Dense(2)

    def call(self, x, edge_index, graph_ids):
        h = self.gat(self.sage(self.gcn(x, edge_index), edge_index), edge_index)
        return self.head(self.pool(h, graph_ids, 4))


def test_subclassed_model_save_weights_load_weights(tmp_path):
    ember.manual_seed(0)
    x = _features(np.float32, 8)
    model = _GraphNet()
    before = model(x, EDGES, GRAPH_IDS).numpy()
    model.save_weights(tmp_path / "graph.weights")
    ember.manual_seed(1)
    other = _GraphNet()
    other(x, EDGES, GRAPH_IDS)
    assert not np.allclose(other(x, EDGES, GRAPH_IDS).numpy(), before)
    other.load_weights(tmp_path / "graph.weights")
    assert len(other.weights) == len(model.weights) == 11
    for a, b in zip(other.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(other(x, EDGES, GRAPH_IDS).numpy(), before)


class _TwoLayerGCN(ember.Model):
    def __init__(self, classes: int):
        super().__init__()
        self.conv1 = layers.GCNConv(16, activation="relu")
        self.conv2 = layers.GCNConv(classes)

    def call(self, x, edge_index):
        return self.conv2(self.conv1(x, edge_index), edge_index)


def test_two_layer_gcn_trains_with_backward_and_an_optimizer():
    """Two communities, features that only hint at them: the loss on the labelled nodes
    falls through ``loss.backward()`` and Adam."""
    ember.manual_seed(0)
    rng = np.random.default_rng(0)
    n, classes = 40, 2
    labels = np.repeat(np.arange(classes), n // classes)
    inside = rng.random((n, n)) < np.where(labels[:, None] == labels[None, :], 0.25, 0.02)
    edges = ember.graph.to_undirected(np.stack(np.nonzero(np.triu(inside, 1))))
    x = (rng.normal(size=(n, 8)) + 0.5 * labels[:, None]).astype(np.float32)
    model = _TwoLayerGCN(classes)
    model(x, edges)
    optimizer = ember.optimizers.Adam(model.parameters(), learning_rate=0.02)
    loss_fn = ember.losses.SparseCategoricalCrossentropy(from_logits=True)
    losses = []
    for _ in range(40):
        loss = loss_fn(labels, model(x, edges))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0]
    accuracy = np.mean(np.argmax(model(x, edges).numpy(), axis=-1) == labels)
    assert accuracy > 0.9
