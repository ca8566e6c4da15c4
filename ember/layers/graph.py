"""Graph layers: each node's features are updated from its neighbours' (message passing).

A layer is called as ``layer(x, edge_index)``: ``x`` holds the features of the ``N`` nodes,
``(N, F)``, and ``edge_index`` ``(2, E)`` the edges, sources in row 0 and targets in row 1
(see :mod:`ember.graph`). The whole graph is one "batch": node classification trains with
``batch_size=N`` and the labelled nodes selected by ``sample_weight`` (or with the low-level
``loss.backward()`` loop), and several small graphs are batched as one block-diagonal graph
(:func:`ember.graph.batch_graphs`) whose ``graph_ids`` feed :class:`GlobalGraphPooling`.

* :class:`GCNConv` — Kipf & Welling's graph convolution, ``D^-1/2 (A + I) D^-1/2 X W + b``;
* :class:`MessagePassing` — the base of message-passing layers: ``message`` per edge, then a
  ``sum``, ``mean`` or ``max`` over each node's incoming messages; override ``message``
  for your own layer;
* :class:`SAGEConv` — GraphSAGE: ``W_neigh · aggregate(x_j) + b + W_root · x_i``;
* :class:`GATConv` — graph attention (Veličković et al.): each node attends over its
  neighbours with ``softmax_j(LeakyReLU(a_src · W x_j + a_dst · W x_i))``, several heads;
* :class:`GlobalGraphPooling` — sum, mean or max over the nodes of each graph.

The formulas, parameter layouts and defaults follow PyTorch Geometric's layers of the same
names, and the tests compare the two with copied weights.
"""

from __future__ import annotations

import numpy as np

from ember import initializers as initializers_module
from ember import ops
from ember.graph import _edge_weights, add_self_loops, check_edge_index, gcn_normalization
from ember.layers.base import Layer, check_positive_int, check_rate
from ember.layers.core import set_weight_options, weight_options_config, weight_options_from_config
from ember.random import dropout
from ember.tensor import Tensor

__all__ = ["GATConv", "GCNConv", "GlobalGraphPooling", "MessagePassing", "SAGEConv"]

AGGREGATORS = ("sum", "mean", "max")


def _check_choice(layer: Layer, name: str, value, choices: tuple) -> str:
    if value not in choices:
        raise ValueError(
            f'Layer "{layer.name}": {name} must be one of {", ".join(map(repr, choices))}, '
            f"got {value!r}"
        )
    return value


def _node_features(layer: Layer, inputs: Tensor) -> Tensor:
    if inputs.ndim != 2:
        raise ValueError(
            f'Layer "{layer.name}" ({type(layer).__name__}) expects node features of shape '
            f"(num_nodes, features), got shape {inputs.shape}; several graphs are batched as one "
            "graph with ember.graph.batch_graphs"
        )
    return inputs


class _GraphLayer(Layer):
    """Shared by the graph layers: the kernel options of Dense, validated inputs."""

    def _edges(self, inputs: Tensor, edge_index) -> np.ndarray:
        return check_edge_index(
            f'Layer "{self.name}" ({type(self).__name__})', edge_index, inputs.shape[0]
        )

    def _kernel(self, name: str, shape: tuple) -> Tensor:
        return self.add_weight(
            shape, self.kernel_initializer, name=name, regularizer=self.kernel_regularizer
        )

    def _bias(self, size: int) -> Tensor | None:
        if not self.use_bias:
            return None
        return self.add_weight(
            (size,), self.bias_initializer, name="bias", regularizer=self.bias_regularizer
        )

    def _finish(self, out: Tensor) -> Tensor:
        if self.bias is not None:
            out = out + self.bias
        out = self.activation(out)
        if self.activity_regularizer is not None:
            self._losses.append(self.activity_regularizer(out) / max(out.shape[0], 1))
        return out


class GCNConv(_GraphLayer):
    """Graph convolution (Kipf & Welling, 2017): ``activation(Â X W + b)`` with
    ``Â = D^-1/2 (A + I) D^-1/2``, the adjacency with self-loops, symmetrically normalized by
    the degrees — each node averages its neighbours' and its own transformed features.

    Args:
        units: output features per node.
        activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
            bias_regularizer, activity_regularizer: as :class:`~ember.layers.Dense`.
        add_self_loops: add ``i -> i`` to nodes without one (the ``+ I``).
        normalize: apply the ``D^-1/2 ... D^-1/2`` normalization (else plain sums of
            neighbours weighted by ``edge_weight``).

    Call: ``layer(x, edge_index, edge_weight=None)`` with ``x`` ``(N, F)``; returns
    ``(N, units)``.

    Example:
        >>> conv = ember.layers.GCNConv(4)
        >>> conv(np.ones((3, 2)), np.array([[0, 1, 1, 2], [1, 0, 2, 1]])).shape
        (3, 4)
    """

    def __init__(
        self,
        units: int,
        activation=None,
        use_bias: bool = True,
        add_self_loops: bool = True,
        normalize: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = check_positive_int(self, "units", units)
        self.add_self_loops = bool(add_self_loops)
        self.normalize = bool(normalize)
        set_weight_options(
            self,
            activation,
            use_bias,
            kernel_initializer,
            bias_initializer,
            kernel_regularizer,
            bias_regularizer,
            activity_regularizer,
        )

    def build(self, input_shape):
        self.kernel = self._kernel("kernel", (input_shape[-1], self.units))
        self.bias = self._bias(self.units)

    def call(self, inputs, edge_index, edge_weight=None):
        x = _node_features(self, inputs)
        n = x.shape[0]
        edges = self._edges(x, edge_index)
        weights = edge_weight  # a tensor (the layer converts arrays): learned weights train
        if weights is not None:
            weights = _edge_weights(f'Layer "{self.name}" (GCNConv)', weights, edges, x.dtype)
        if self.normalize:
            edges, weights = gcn_normalization(edges, n, weights, self.add_self_loops, x.dtype)
        elif self.add_self_loops:
            edges, weights = add_self_loops(edges, n, weights)
        # Â (X W): transform first, so the sparse product runs on `units` columns
        h = ops.matmul(x, self.kernel)
        return self._finish(ops.sparse_matmul(edges[::-1], weights, h, (n, n)))

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "add_self_loops": self.add_self_loops,
            "normalize": self.normalize,
            **weight_options_config(self),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**weight_options_from_config(config))


class MessagePassing(_GraphLayer):
    """The base of message-passing layers: every edge ``j -> i`` carries a message
    ``message(x_j, x_i)`` (by default ``x_j``), and each node receives the ``sum``, ``mean``
    or ``max`` of its incoming messages (0 for a node without any). Subclasses call
    :meth:`propagate` in ``call`` and may override :meth:`message`.

    With the default message, ``sum`` and ``mean`` run as one sparse matrix product.

    Example:
        >>> class Neighbours(ember.layers.MessagePassing):
        ...     def call(self, x, edge_index):
        ...         return self.propagate(x, edge_index)
        >>> layer = Neighbours(aggregator="max")
        >>> layer(np.array([[1.0], [5.0], [3.0]]), np.array([[1, 2], [0, 0]])).numpy().tolist()
        [[5.0], [0.0], [0.0]]
    """

    def __init__(self, aggregator: str = "mean", **kwargs):
        super().__init__(**kwargs)
        self.aggregator = _check_choice(self, "aggregator", aggregator, AGGREGATORS)

    def message(self, x_j: Tensor, x_i: Tensor) -> Tensor:
        """The message of each edge from its source features ``x_j`` and target ``x_i``
        (``(E, F)`` each); the default passes ``x_j`` on."""
        del x_i
        return x_j

    def propagate(self, x: Tensor, edge_index) -> Tensor:
        """Aggregate the messages of ``edge_index``'s edges at their targets: ``(N, ...)``."""
        edges = self._edges(x, edge_index)
        n = x.shape[0]
        source, target = edges
        if type(self).message is MessagePassing.message and self.aggregator != "max":
            weights = None
            if self.aggregator == "mean":
                counts = np.maximum(np.bincount(target, minlength=n), 1).astype(x.dtype)
                weights = (1.0 / counts)[target]
            return ops.sparse_matmul(edges[::-1], weights, x, (n, n))
        messages = self.message(ops.take(x, source, axis=0), ops.take(x, target, axis=0))
        reduce = {"sum": ops.segment_sum, "mean": ops.segment_mean, "max": ops.segment_max}
        return reduce[self.aggregator](messages, target, n)

    def get_config(self):
        return {**super().get_config(), "aggregator": self.aggregator}


class SAGEConv(MessagePassing):
    """GraphSAGE (Hamilton et al., 2017): ``activation(W_neigh · agg_j(x_j) + b + W_root · x_i)``
    with ``agg`` the ``mean`` (default), ``sum`` or ``max`` of the neighbours' features; with
    ``normalize=True`` each output row is scaled to unit L2 norm.

    Weights: ``kernel`` (neighbours, with ``bias``) and ``root_kernel`` (the node itself; absent
    when ``root_weight=False``) — PyTorch Geometric's ``lin_l`` and ``lin_r``.

    Example:
        >>> sage = ember.layers.SAGEConv(2, aggregator="max")
        >>> sage(np.ones((3, 4)), np.array([[0, 1], [1, 2]])).shape
        (3, 2)
    """

    def __init__(
        self,
        units: int,
        aggregator: str = "mean",
        root_weight: bool = True,
        normalize: bool = False,
        activation=None,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        **kwargs,
    ):
        super().__init__(aggregator=aggregator, **kwargs)
        self.units = check_positive_int(self, "units", units)
        self.root_weight = bool(root_weight)
        self.normalize = bool(normalize)
        set_weight_options(
            self,
            activation,
            use_bias,
            kernel_initializer,
            bias_initializer,
            kernel_regularizer,
            bias_regularizer,
            activity_regularizer,
        )

    def build(self, input_shape):
        features = input_shape[-1]
        self.kernel = self._kernel("kernel", (features, self.units))
        self.bias = self._bias(self.units)
        self.root_kernel = (
            self._kernel("root_kernel", (features, self.units)) if self.root_weight else None
        )

    def call(self, inputs, edge_index):
        x = _node_features(self, inputs)
        out = ops.linear(self.propagate(x, edge_index), self.kernel, self.bias)
        if self.root_kernel is not None:
            out = out + ops.matmul(x, self.root_kernel)
        if self.normalize:
            norm = ops.sqrt(ops.sum(out * out, axis=-1, keepdims=True))
            out = out / ops.maximum(norm, 1e-12)
        out = self.activation(out)
        if self.activity_regularizer is not None:
            self._losses.append(self.activity_regularizer(out) / max(out.shape[0], 1))
        return out

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "root_weight": self.root_weight,
            "normalize": self.normalize,
            **weight_options_config(self),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**weight_options_from_config(config))


class GATConv(_GraphLayer):
    """Graph attention (Veličković et al., 2018): with ``h = x W`` split into ``heads`` heads,
    each edge ``j -> i`` scores ``e_ij = LeakyReLU(a_src · h_j + a_dst · h_i)``, a softmax over
    each node's incoming edges gives the weights ``α_ij`` (dropped out with ``dropout`` in
    training), and ``out_i = Σ_j α_ij h_j``; the heads are concatenated (``concat=True``,
    ``heads * units`` outputs) or averaged, then the bias is added. Self-loops are added so every
    node attends to itself too.

    Weights: ``kernel`` ``(F, heads * units)``, ``attention_source`` and ``attention_target``
    ``(heads, units)``, ``bias``.

    Example:
        >>> gat = ember.layers.GATConv(3, heads=2)
        >>> gat(np.ones((4, 5)), np.array([[0, 1, 2], [1, 2, 3]])).shape
        (4, 6)
    """

    def __init__(
        self,
        units: int,
        heads: int = 1,
        concat: bool = True,
        negative_slope: float = 0.2,
        dropout: float = 0.0,
        add_self_loops: bool = True,
        activation=None,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        attention_initializer="glorot_uniform",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = check_positive_int(self, "units", units)
        self.heads = check_positive_int(self, "heads", heads)
        self.concat = bool(concat)
        self.negative_slope = float(negative_slope)
        self.dropout = check_rate(self, "dropout", dropout)
        self.add_self_loops = bool(add_self_loops)
        set_weight_options(
            self,
            activation,
            use_bias,
            kernel_initializer,
            bias_initializer,
            kernel_regularizer,
            bias_regularizer,
            activity_regularizer,
        )
        self.attention_initializer = initializers_module.get(attention_initializer)

    def build(self, input_shape):
        self.kernel = self._kernel("kernel", (input_shape[-1], self.heads * self.units))
        self.attention_source = self.add_weight(
            (self.heads, self.units), self.attention_initializer, name="attention_source"
        )
        self.attention_target = self.add_weight(
            (self.heads, self.units), self.attention_initializer, name="attention_target"
        )
        self.bias = self._bias(self.heads * self.units if self.concat else self.units)

    def call(self, inputs, edge_index, training=False):
        x = _node_features(self, inputs)
        n = x.shape[0]
        edges = self._edges(x, edge_index)
        if self.add_self_loops:
            edges = add_self_loops(edges, n)[0]  # replaces any existing loops, as PyG
        source, target = edges
        h = ops.reshape(ops.matmul(x, self.kernel), (n, self.heads, self.units))
        score_source = ops.sum(h * self.attention_source, axis=-1)  # (N, heads)
        score_target = ops.sum(h * self.attention_target, axis=-1)
        scores = ops.leaky_relu(
            ops.take(score_source, source, axis=0) + ops.take(score_target, target, axis=0),
            self.negative_slope,
        )
        alpha = ops.segment_softmax(scores, target, n)  # (E, heads)
        if training and self.dropout > 0.0:
            alpha = dropout(alpha, self.dropout)
        heads = [
            ops.sparse_matmul(edges[::-1], alpha[:, k], h[:, k, :], (n, n))
            for k in range(self.heads)
        ]
        if self.concat:
            out = ops.concatenate(heads, axis=-1)
        else:
            out = ops.stack(heads, axis=0).mean(axis=0)
        return self._finish(out)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "heads": self.heads,
            "concat": self.concat,
            "negative_slope": self.negative_slope,
            "dropout": self.dropout,
            "add_self_loops": self.add_self_loops,
            "attention_initializer": initializers_module.serialize(self.attention_initializer),
            **weight_options_config(self),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**weight_options_from_config(config))


class GlobalGraphPooling(Layer):
    """One vector per graph from the nodes of a batch of graphs: the ``sum``, ``mean`` (default)
    or ``max`` over the nodes with the same ``graph_ids`` entry (from
    :func:`ember.graph.batch_graphs`). ``num_graphs`` defaults to ``max(graph_ids) + 1``.

    Example:
        >>> pool = ember.layers.GlobalGraphPooling("sum")
        >>> pool(np.ones((5, 2)), np.array([0, 0, 1, 1, 1])).numpy().tolist()
        [[2.0, 2.0], [3.0, 3.0]]
    """

    def __init__(self, mode: str = "mean", **kwargs):
        super().__init__(**kwargs)
        self.mode = _check_choice(self, "mode", mode, AGGREGATORS)

    def call(self, inputs, graph_ids, num_graphs: int | None = None):
        x = _node_features(self, inputs)
        reduce = {"sum": ops.segment_sum, "mean": ops.segment_mean, "max": ops.segment_max}
        return reduce[self.mode](x, graph_ids, num_graphs)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
