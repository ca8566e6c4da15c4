"""The functional graph of a ``Model(inputs, outputs)``: validation, execution and config.

The graph is the set of layer calls (:class:`~ember.layers.node.Node`) between the inputs and the
outputs, replayed in topological order (the project's one sort, ``ember._graph``). Inputs and
outputs may be one symbolic tensor, a list, or a dict (keyed by name). A layer may be called
several times (shared layers) and a model may be used as a layer inside another.

The config (what ``model.get_config()`` returns and ``load_model`` rebuilds from) lists the
layers and, for each node, the index of its layer and its arguments with every symbolic tensor
replaced by a reference ``{"node": i, "index": j}`` to the ``j``-th output of node ``i``.
"""

from __future__ import annotations

import numpy as np

from ember import tree
from ember._graph import topological_order
from ember.layers.base import Layer, layer_spec
from ember.layers.core import InputLayer, input_symbol
from ember.layers.node import SymbolicTensor


def _check_symbolic(structure, what: str) -> list[SymbolicTensor]:
    flat = tree.flatten(structure)
    if not flat:
        raise ValueError(f"Model(inputs, outputs): {what} is empty")
    for item in flat:
        if not isinstance(item, SymbolicTensor):
            raise TypeError(
                f"Model(inputs, outputs): {what} must be ember.layers.Input(...) tensors (for "
                "inputs) or results of calling layers on them (for outputs), or lists/dicts of "
                f"them; got a {type(item).__name__}"
            )
    return flat


class FunctionalGraph:
    """The nodes of a functional model in execution order, with its inputs and outputs."""

    def __init__(self, inputs, outputs, model_name: str):
        self.inputs = inputs
        self.outputs = outputs
        self.flat_inputs = _check_symbolic(inputs, "inputs")
        self.flat_outputs = _check_symbolic(outputs, "outputs")
        for t in self.flat_inputs:
            if not isinstance(t.layer, InputLayer):
                raise ValueError(
                    f"Model(inputs, outputs) of {model_name!r}: every input must come from "
                    f"ember.layers.Input(...); {t.layer.name!r} is a {type(t.layer).__name__} "
                    "output. To use intermediate tensors as inputs, build a new Input instead"
                )
        self.nodes = topological_order(
            [t.node for t in self.flat_outputs], lambda node: node.parent_nodes
        )
        input_nodes = {id(t.node) for t in self.flat_inputs}
        for node in self.nodes:
            if isinstance(node.layer, InputLayer) and not node.flat_inputs:
                if id(node) not in input_nodes:
                    raise ValueError(
                        f"Model(inputs, outputs) of {model_name!r}: graph disconnected: the "
                        f"outputs need the input {node.layer.name!r}, which is not among the "
                        f"model's inputs {[t.layer.name for t in self.flat_inputs]}"
                    )
        layers: list[Layer] = [t.layer for t in self.flat_inputs]
        seen = {id(layer) for layer in layers}
        for node in self.nodes:
            if id(node.layer) not in seen:
                seen.add(id(node.layer))
                layers.append(node.layer)
        self.layers = layers

    # ---------------------------------------------------------------- names
    @property
    def input_names(self) -> list[str]:
        if isinstance(self.inputs, dict):
            return sorted(self.inputs)
        return [t.layer.name for t in self.flat_inputs]

    @property
    def output_names(self) -> list[str]:
        if isinstance(self.outputs, dict):
            return sorted(self.outputs)
        names, used = [], set()
        for t in self.flat_outputs:
            name = t.layer.name
            if name in used:  # one layer giving several outputs: number them
                name = f"{name}_{t.index}"
            used.add(name)
            names.append(name)
        return names

    # ---------------------------------------------------------------- execution
    def match_inputs(self, inputs, model_name: str) -> list:
        """The given inputs in the order of :attr:`flat_inputs`."""
        n = len(self.flat_inputs)
        if isinstance(inputs, dict):
            by_name = dict(zip(self.input_names, self.flat_inputs))
            missing = [name for name in by_name if name not in inputs]
            if missing:
                raise ValueError(
                    f'Model "{model_name}" expects inputs {list(by_name)}; the dict given has '
                    f"no {missing[0]!r} (it has {sorted(inputs)})"
                )
            flat = [inputs[name] for name in by_name]
            return [flat[list(by_name.values()).index(t)] for t in self.flat_inputs]
        if isinstance(inputs, (list, tuple)):
            if len(inputs) != n:
                raise ValueError(
                    f'Model "{model_name}" expects {n} input(s) {self.input_names}, but was '
                    f"called with a {type(inputs).__name__} of {len(inputs)}"
                )
            return list(inputs)
        if n != 1:
            raise ValueError(
                f'Model "{model_name}" expects {n} inputs {self.input_names}, but was called '
                "with one tensor; pass a list (in that order) or a dict keyed by input name"
            )
        return [inputs]

    def run(self, flat_values: list, training):
        values: dict[int, object] = {}
        for symbol, value in zip(self.flat_inputs, flat_values):
            values[id(symbol)] = symbol.layer(value)

        def real(item):
            return values[id(item)] if isinstance(item, SymbolicTensor) else item

        for node in self.nodes:
            if not node.flat_inputs:
                continue  # an Input: its value is set above
            args = tree.map_structure(real, list(node.args))
            kwargs = tree.map_structure(real, dict(node.kwargs))
            node_training = training if node.training is None else node.training
            out = node.layer(*args, training=node_training, **kwargs)
            for symbol, value in zip(node.flat_outputs, tree.flatten(out)):
                values[id(symbol)] = value
        return tree.map_structure(real, self.outputs)

    # ---------------------------------------------------------------- config
    def get_config(self) -> dict:
        layer_index = {id(layer): i for i, layer in enumerate(self.layers)}
        node_index = {id(node): i for i, node in enumerate(self.nodes)}

        def encode(item):
            if isinstance(item, SymbolicTensor):
                return {"__symbolic__": [node_index[id(item.node)], item.index]}
            if isinstance(item, (np.generic,)):
                return item.item()
            if item is None or isinstance(item, (bool, int, float, str)):
                return item
            raise TypeError(
                f"cannot save this model's graph: a layer call has an argument of type "
                f"{type(item).__name__} ({item!r}); only tensors, numbers, strings and None can "
                "be stored"
            )

        nodes = []
        for node in self.nodes:
            nodes.append(
                {
                    "layer": layer_index[id(node.layer)],
                    "args": tree.map_structure(encode, list(node.args)),
                    "kwargs": tree.map_structure(encode, dict(node.kwargs)),
                    "training": node.training,
                }
            )
        return {
            "layers": [layer_spec(layer) for layer in self.layers],
            "nodes": nodes,
            "inputs": tree.map_structure(encode, self.inputs),
            "outputs": tree.map_structure(encode, self.outputs),
        }

    @staticmethod
    def from_config(config: dict, layer_from_config) -> tuple:
        """``(inputs, outputs)`` structures of symbolic tensors rebuilt from :meth:`get_config`."""
        layers = [layer_from_config(spec) for spec in config["layers"]]
        produced: list = []

        def decode(item):
            if isinstance(item, dict) and set(item) == {"__symbolic__"}:
                node, index = item["__symbolic__"]
                return tree.flatten(produced[node])[index]
            return item

        for spec in config["nodes"]:
            layer = layers[spec["layer"]]
            if isinstance(layer, InputLayer):
                produced.append(input_symbol(layer))
                continue
            args = _decode_structure(spec["args"], decode)
            kwargs = _decode_structure(spec["kwargs"], decode)
            produced.append(layer(*args, training=spec["training"], **kwargs))
        return (
            _decode_structure(config["inputs"], decode),
            _decode_structure(config["outputs"], decode),
        )


def _decode_structure(structure, decode):
    """Like ``tree.map_structure(decode, ...)``, but a reference dict counts as a leaf."""
    if isinstance(structure, dict) and set(structure) == {"__symbolic__"}:
        return decode(structure)
    if isinstance(structure, dict):
        return {key: _decode_structure(value, decode) for key, value in structure.items()}
    if isinstance(structure, list):
        return [_decode_structure(value, decode) for value in structure]
    return decode(structure)
