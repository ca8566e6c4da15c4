"""The functional API's graph: symbolic tensors and the layer calls (nodes) that connect them.

Calling a layer on :class:`SymbolicTensor` s (``Dense(4)(inputs)``) computes nothing real: it
records a :class:`Node` — the layer, the arguments it was called with (any structure of symbolic
tensors and constants) and its symbolic outputs — and returns those outputs. A functional
``Model(inputs, outputs)`` later replays the nodes in topological order on real tensors.

Output shapes come from running the layer once on a small zero batch (one sample). Axes declared
``None`` (variable length, ``Input(shape=(None, 4))``) are probed with two different sizes: an
output axis whose size follows the probe is reported as ``None`` too.
"""

from __future__ import annotations

import numpy as np

from ember import tree
from ember.tensor import Tensor, no_grad

# Sizes given to ``None`` axes (other than the batch axis) when probing a layer's output shape;
# two different ones tell which output axes follow the input's variable length.
_PROBE_SIZES = (7, 11)


class SymbolicTensor:
    """A placeholder flowing through layers to describe a functional model's graph.

    It carries a shape (``None`` for the batch axis and for variable-length axes), a dtype, and
    the layer call (:class:`Node`) that produced it.

    Example:
        >>> inputs = ember.layers.Input(shape=(4,))
        >>> outputs = ember.layers.Dense(2, name="dense")(inputs)
        >>> outputs
        <SymbolicTensor shape=(None, 2) dtype=float32 from 'dense'>
        >>> outputs.inputs[0] is inputs
        True
    """

    def __init__(self, shape: tuple, dtype, node: Node | None = None, index: int = 0):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.node = node
        self.index = index  # position among the node's flat outputs
        # The symbolic mask (boolean, (batch, time)) when the producing layer masks its output,
        # as Keras' symbolic tensors carry one; the model computes the real mask when it runs.
        self._keras_mask: SymbolicTensor | None = None

    @property
    def layer(self):
        """The layer whose call produced this tensor."""
        return self.node.layer

    @property
    def inputs(self) -> list[SymbolicTensor]:
        """The symbolic tensors the producing call consumed (empty for an ``Input``)."""
        return self.node.flat_inputs

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def name(self) -> str:
        return self.node.layer.name

    def __len__(self) -> int:
        raise TypeError(
            "a SymbolicTensor (a functional-model placeholder) has no length; its shape is "
            f"{self.shape}"
        )

    def __bool__(self) -> bool:
        raise TypeError(
            "a SymbolicTensor (a functional-model placeholder) has no truth value: it holds no "
            "data. Python `if`/`and`/`or` on it cannot be recorded in a functional model; write "
            "such logic inside a layer's call()"
        )

    def __repr__(self) -> str:
        source = "a mask" if self.node is None else repr(self.layer.name)
        return f"<SymbolicTensor shape={self.shape} dtype={self.dtype} from {source}>"


class Node:
    """One call of a layer in a functional graph: its arguments and its symbolic outputs."""

    def __init__(self, layer, args: tuple, kwargs: dict, training: bool | None):
        self.layer = layer
        self.args = args
        self.kwargs = kwargs
        self.training = training  # given explicitly at graph-building time, else None
        self.flat_inputs = [
            t for t in tree.flatten((args, kwargs)) if isinstance(t, SymbolicTensor)
        ]
        self.outputs = None  # set by record_call
        self.flat_outputs: list[SymbolicTensor] = []

    @property
    def parent_nodes(self) -> list[Node]:
        return [t.node for t in self.flat_inputs]

    def __repr__(self) -> str:
        return f"<Node {self.layer.name} inputs={[t.name for t in self.flat_inputs]}>"


def contains_symbolic(args, kwargs) -> bool:
    """True when any argument (or any leaf of a structured one) is symbolic."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, SymbolicTensor):
            return True
        if tree.is_nested(value) and any(
            isinstance(leaf, SymbolicTensor) for leaf in tree.flatten(value)
        ):
            return True
    return False


def _probe_shape(shape: tuple, variable_size: int) -> tuple:
    return tuple(
        1 if axis == 0 else (variable_size if size is None else size)
        for axis, size in enumerate(shape)
    )


def _probe_value(symbolic: SymbolicTensor, variable_size: int) -> Tensor:
    probe = Tensor(np.zeros(_probe_shape(symbolic.shape, variable_size), dtype=symbolic.dtype))
    mask = symbolic._keras_mask
    if mask is not None:  # a masked input: the layer sees a mask (all steps real) when probed
        probe._keras_mask = Tensor(np.ones(_probe_shape(mask.shape, variable_size), dtype=bool))
    return probe


def _symbolic_shape(first: tuple, second: tuple, batch) -> tuple:
    """An output shape from the two probes: axes that followed the variable size are None."""
    return tuple(
        batch if axis == 0 else (None if size != second[axis] else size)
        for axis, size in enumerate(first)
    )


def _run_probe(layer, args, kwargs, training, variable_size: int):
    from ember.layers.base import shape_inference

    def real(value):
        return _probe_value(value, variable_size) if isinstance(value, SymbolicTensor) else value

    probe_args = tree.map_structure(real, list(args))
    probe_kwargs = tree.map_structure(real, dict(kwargs))
    with no_grad(), shape_inference():
        out = layer(*probe_args, training=bool(training), **probe_kwargs)
    layer._losses = []  # the probe's activity penalties are not the model's
    return out


def record_call(layer, args: tuple, kwargs: dict, training: bool | None):
    """Record ``layer(*args, **kwargs)`` on symbolic inputs: probe the output shapes, make the
    node, and return its symbolic outputs (the same structure ``call`` returns)."""
    node = Node(layer, args, kwargs, training)
    out = _run_probe(layer, args, kwargs, training, _PROBE_SIZES[0])
    variable = any(
        size is None for t in node.flat_inputs for size in t.shape[1:]
    )
    second = _run_probe(layer, args, kwargs, training, _PROBE_SIZES[1]) if variable else out
    flat_first, flat_second = tree.flatten(out), tree.flatten(second)
    # A batch size fixed by every input (Input(batch_shape=...)) carries over to the outputs.
    batches = {t.shape[0] for t in node.flat_inputs if t.ndim}
    batch = batches.pop() if len(batches) == 1 else None
    outputs = []
    for index, (a, b) in enumerate(zip(flat_first, flat_second)):
        if not isinstance(a, Tensor):
            raise TypeError(
                f'Layer "{layer.name}" returned a {type(a).__name__} from call(); a layer used in '
                "a functional model must return tensors (or a list/tuple/dict of tensors)"
            )
        symbolic = SymbolicTensor(_symbolic_shape(a.shape, b.shape, batch), a.dtype, node, index)
        if a._keras_mask is not None and b._keras_mask is not None:
            mask_shape = _symbolic_shape(a._keras_mask.shape, b._keras_mask.shape, batch)
            symbolic._keras_mask = SymbolicTensor(mask_shape, np.bool_)
        outputs.append(symbolic)
    node.outputs = tree.pack_sequence_as(out, outputs)
    node.flat_outputs = outputs
    layer._inbound_nodes.append(node)
    return node.outputs
