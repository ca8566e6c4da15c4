"""``Model`` (functional or subclassed) and ``Sequential``: layers with a training API.

Example (functional, several inputs and outputs):
    >>> image = ember.Input(shape=(64,), name="image")
    >>> tags = ember.Input(shape=(5,), name="tags")
    >>> features = ember.layers.concatenate([ember.layers.Dense(16, activation="relu")(image),
    ...                                      tags])
    >>> priority = ember.layers.Dense(1, name="priority")(features)
    >>> department = ember.layers.Dense(3, activation="softmax", name="department")(features)
    >>> model = ember.Model(inputs=[image, tags], outputs=[priority, department])
    >>> model.output_names
    ['priority', 'department']
    >>> model.compile(optimizer="adam",
    ...               loss={"priority": "mse", "department": "sparse_categorical_crossentropy"},
    ...               loss_weights={"priority": 1.0, "department": 0.2})

Example (subclassed, PyTorch style):
    >>> class MLP(ember.Model):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.hidden = ember.layers.Dense(32, activation="relu")
    ...         self.out = ember.layers.Dense(10)
    ...     def forward(self, x):
    ...         return self.out(self.hidden(x))
    >>> MLP()(np.ones((2, 8))).shape
    (2, 10)
"""

from __future__ import annotations

import re

import numpy as np

import ember.models.saving as saving
from ember import tree
from ember.layers.base import (
    Layer,
    _snake_case,
    layer_from_config,
    layer_spec,
    overridable_property,
)
from ember.layers.core import Input, InputLayer, input_symbol
from ember.layers.node import SymbolicTensor
from ember.models.functional import FunctionalGraph
from ember.models.trainer import NonFiniteLossError, Trainer

__all__ = ["Model", "Sequential", "NonFiniteLossError"]


class Model(Trainer, Layer):
    """A layer with a training API. Build it functionally — ``Model(inputs, outputs)`` with one
    input/output or lists/dicts of them — or subclass it and define ``call`` (or ``forward``);
    see the module docstring."""

    def __init__(self, inputs=None, outputs=None, name: str | None = None, **kwargs):
        super().__init__(name=name, **kwargs)
        self._init_trainer()
        self._graph: FunctionalGraph | None = None
        if inputs is not None or outputs is not None:
            if inputs is None or outputs is None:
                raise TypeError(
                    f"{type(self).__name__}(inputs, outputs): give both, e.g. "
                    "Model(inputs=ember.Input(shape=(4,)), outputs=Dense(1)(...))"
                )
            self._init_graph(FunctionalGraph(inputs, outputs, self.name))

    def _init_graph(self, graph: FunctionalGraph) -> None:
        self._graph = graph
        self._autocast_inputs = False  # the Input layers cast to their declared dtypes
        self._build_shape = tree.map_structure(lambda t: t.shape, graph.inputs)
        self.built = True

    # ---------------------------------------------------------------- structure
    def _child_layers(self):
        if self._graph is None:
            return super()._child_layers()
        return _container_keys(self._graph.layers)

    def _sublayers(self) -> list[Layer]:
        if self._graph is None:
            return super()._sublayers()
        return list(self._graph.layers)

    @overridable_property
    def layers(self) -> list[Layer]:
        """The layers of the model, in order (a functional model's ``Input`` layers first)."""
        if self._graph is not None:
            return list(self._graph.layers)
        return self._sublayers()

    @property
    def inputs(self) -> list[SymbolicTensor]:
        """The symbolic inputs (a list), for a model with a known input shape."""
        return tree.flatten(self._require_graph("inputs").inputs)

    @property
    def outputs(self) -> list[SymbolicTensor]:
        """The symbolic outputs (a list)."""
        return tree.flatten(self._require_graph("outputs").outputs)

    @overridable_property
    def input(self):
        """The symbolic input(s), in the structure given to ``Model(inputs, ...)``."""
        return self._require_graph("input").inputs

    @overridable_property
    def output(self):
        """The symbolic output(s), in the structure given to ``Model(..., outputs)``."""
        return self._require_graph("output").outputs

    @property
    def input_shape(self):
        """The input shape(s) (``None`` for the batch and variable axes), in the structure of
        :attr:`input` (Keras)."""
        return tree.map_structure(lambda t: t.shape, self._require_graph("input_shape").inputs)

    @property
    def output_shape(self):
        """The output shape(s), in the structure of :attr:`output` (Keras).

        Example:
            >>> inputs = ember.Input(shape=(None, 4))
            >>> ember.Model(inputs, ember.layers.Dense(2)(inputs)).output_shape
            (None, None, 2)
        """
        return tree.map_structure(lambda t: t.shape, self._require_graph("output_shape").outputs)

    @property
    def input_names(self) -> list[str]:
        return self._require_graph("input_names").input_names

    @property
    def output_names(self) -> list[str] | None:
        """Names of the outputs (the producing layers' names, or the keys of a dict of
        outputs); ``None`` for a subclassed model."""
        graph = self._graph
        return None if graph is None else graph.output_names

    def _known_output_names(self):
        return self.output_names

    def _require_graph(self, what: str) -> FunctionalGraph:
        if self._graph is None:
            raise AttributeError(
                f'Model "{self.name}" has no symbolic {what}: it is a subclassed model (its '
                "graph is Python code) or it has not been built with an input shape"
            )
        return self._graph

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """A layer by ``name`` or by ``index`` into :attr:`layers`.

        Example:
            >>> model = ember.Sequential([ember.Input(shape=(3,)),
            ...                           ember.layers.Dense(2, name="out")])
            >>> model.get_layer("out") is model.get_layer(index=0)
            True
        """
        layers = self.layers
        if (name is None) == (index is None):
            raise ValueError(f"{self.name}.get_layer: give exactly one of name= or index=")
        if index is not None:
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
                raise TypeError(f"{self.name}.get_layer: index must be an integer, got {index!r}")
            if not -len(layers) <= index < len(layers):
                raise ValueError(
                    f"{self.name}.get_layer: index {index} is out of range; the model has "
                    f"{len(layers)} layers"
                )
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        raise ValueError(
            f"{self.name}.get_layer: no layer named {name!r}; the layers are "
            f"{[layer.name for layer in layers]}"
        )

    # ---------------------------------------------------------------- calling
    def call(self, inputs, training=None):
        if self._graph is None:
            raise NotImplementedError(
                f"{type(self).__name__}: build the model with Model(inputs, outputs) or subclass "
                "Model and define call(self, inputs) (or forward)"
            )
        flat = self._graph.match_inputs(inputs, self.name)
        return self._graph.run(flat, training)

    def _convert_inputs(self, inputs):
        if self._graph is not None and isinstance(inputs, (list, tuple)):
            if len(self._graph.flat_inputs) == 1 and len(inputs) == 1:
                inputs = inputs[0]  # [x] for a one-input model, as Keras accepts
        return super()._convert_inputs(inputs)

    # ---------------------------------------------------------------- description
    def _summary_rows(self) -> list[tuple[str, str, int, str]]:
        """(name (type), output shape, parameter count, connected to) per layer."""
        if self._graph is None:
            return [
                (
                    f"{layer.name} ({type(layer).__name__})",
                    "?",
                    layer.count_params() if layer.built else "0 (unbuilt)",
                    "",
                )
                for layer in self._sublayers()
            ]
        rows, shown = [], set()
        for layer in self._graph.layers:
            for node in layer._inbound_nodes:
                if id(node) not in shown and node in self._graph_nodes():
                    shown.add(id(node))
                    rows.append(
                        (
                            f"{layer.name} ({type(layer).__name__})",
                            _shape_text(node.outputs),
                            layer.count_params() if len(shown) else 0,
                            ", ".join(t.layer.name for t in node.flat_inputs),
                        )
                    )
        return rows

    def _graph_nodes(self) -> list:
        return self._graph.nodes

    def _row_trainable(self, row_name: str) -> bool:
        layer_name = row_name.rsplit(" (", 1)[0]
        for _, layer, trainable in self._named_layers():
            if layer.name == layer_name:
                return trainable
        return self.trainable

    def summary(
        self,
        line_length: int | None = None,
        positions=None,
        print_fn=None,
        expand_nested: bool = False,
        show_trainable: bool = False,
        layer_range=None,
    ) -> None:
        """Print the layers, their output shapes, parameter counts and (for a functional model)
        what each layer is connected to, like Keras. ``show_trainable=True`` adds a column
        saying whether each layer is trainable. ``line_length``, ``positions``,
        ``expand_nested`` and ``layer_range`` are accepted for Keras compatibility; the layout
        is fixed."""
        print_fn = print_fn or print
        if not self.built and not isinstance(self, Sequential):  # Keras lists unbuilt layers
            raise ValueError(
                f"{self.name}.summary: this model has not yet been built. Give it an input shape "
                "(ember.layers.Input(shape=...)) or call it on a batch of data first"
            )
        rows = self._summary_rows()
        connected = self._graph is not None and not isinstance(self, Sequential)
        trainable_flags = [self._row_trainable(name) for name, *_ in rows] if show_trainable else []
        widths = [max(34, 2 + max((len(r[0]) for r in rows), default=0)), 26, 12]
        if connected:
            widths.append(max(16, 2 + max(len(r[3]) for r in rows)))
        line = "─" * sum(widths)
        header = f"{'Layer (type)':<{widths[0]}}{'Output Shape':<{widths[1]}}"
        header += f"{'Param #':>{widths[2]}}"
        if connected:
            header += f"  {'Connected to':<{widths[3] - 2}}"
        if show_trainable:
            header += "  Trainable"
        title = "Sequential" if isinstance(self, Sequential) else "Model"
        out = [f'{title}: "{self.name}"', line, header, "═" * sum(widths)]
        for i, (name, shape, count, inbound) in enumerate(rows):
            count = f"{count:,}" if isinstance(count, int) else count
            text = f"{name:<{widths[0]}}{shape:<{widths[1]}}{count:>{widths[2]}}"
            if connected:
                text += f"  {inbound:<{widths[3] - 2}}"
            if show_trainable:
                text += "  " + ("Y" if trainable_flags[i] else "N")
            out.append(text.rstrip())
        out.append(line)
        total = self.count_params()
        trainable = int(sum(p.size for p in self.trainable_weights))
        itemsize = self.dtype.itemsize
        out.append(f" Total params: {total:,} ({_human_bytes(total * itemsize)})")
        out.append(f" Trainable params: {trainable:,} ({_human_bytes(trainable * itemsize)})")
        out.append(
            f" Non-trainable params: {total - trainable:,} "
            f"({_human_bytes((total - trainable) * itemsize)})"
        )
        print_fn("\n".join(out))

    # ---------------------------------------------------------------- config
    def get_config(self) -> dict:
        if self._graph is None:
            raise NotImplementedError(
                f"{self.name}: a subclassed Model cannot be saved with its architecture; use "
                "model.save_weights(path) and rebuild the model in code before load_weights"
            )
        return {"name": self.name, "trainable": self.trainable, **self._graph.get_config()}

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> Model:
        """Rebuild a functional model from :meth:`get_config`; ``custom_objects`` maps the names
        of custom layer classes to the classes (those defined with ``class ...(Layer)`` are
        found without it)."""
        config = dict(config)
        if "input_shape" in config and "inputs" not in config:
            config = _upgrade_v1_functional(config)
        inputs, outputs = FunctionalGraph.from_config(
            config, lambda spec: layer_from_config(spec, custom_objects)
        )
        model = cls(inputs, outputs, name=config.get("name"))
        if config.get("trainable") is False:
            model.trainable = False
        return model

    # ---------------------------------------------------------------- persistence
    def save(self, path) -> None:
        """Write architecture, weights, compile settings and optimizer state to one file,
        atomically (a crash never leaves a half-written file). Reload with
        :func:`ember.models.load_model`."""
        saving.save_model(self, path)

    def save_weights(self, path) -> None:
        """Write the weights (by name) to one file, atomically."""
        saving.save_weights(self, path)

    def load_weights(self, path) -> None:
        """Load weights saved by ``save``/``save_weights`` (or a ``.safetensors`` / Keras
        ``.weights.h5`` file); on any error the model is unchanged."""
        saving.load_weights(self, path)

    def export(self, filepath, format: str = "onnx", verbose=None, input_signature=None,
               opset_version: int | None = None):  # fmt: skip
        """Export for inference in another runtime — ONNX (Keras 3's ``Model.export`` with
        ``format="onnx"``; the ``onnx`` extra). ``input_signature``: per-sample input shapes
        that fix axes declared ``None`` (the batch axis stays dynamic). Returns the path.
        A layer ONNX cannot express raises :class:`ember.onnx.OnnxExportError` naming it."""
        if format != "onnx":
            raise ValueError(f"{self.name}.export: format must be 'onnx', got {format!r}")
        from ember.onnx_export import export  # imported on use: onnx is an optional extra

        path = export(self, filepath, opset=opset_version, input_shapes=input_signature)
        if verbose:
            print(f"Saved artifact at '{path}'.")
        return path


class Sequential(Model):
    """A plain stack of layers, each feeding the next.

    Example:
        >>> x_train = np.random.rand(100, 64).astype("float32")
        >>> y_train = np.random.randint(0, 10, 100)      # 10 classes
        >>> model = ember.models.Sequential([
        ...     ember.layers.Input(shape=(64,)),
        ...     ember.layers.Dense(32, activation="relu"),
        ...     ember.layers.Dense(10, activation="softmax"),
        ... ])
        >>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
        ...               metrics=["accuracy"])
        >>> history = model.fit(x_train, y_train, epochs=2, validation_split=0.1, verbose=0)
        >>> sorted(history.history)
        ['accuracy', 'loss', 'val_accuracy', 'val_loss']
        >>> model.predict(x_train[:3], verbose=0).shape   # class probabilities
        (3, 10)
        >>> removed = model.pop()   # the softmax layer
        >>> len(model.layers), model.output_names == [model.layers[0].name]
        (1, True)
    """

    def __init__(self, layers=None, name: str | None = None, **kwargs):
        super().__init__(name=name, **kwargs)
        self._stack: list[Layer] = []
        self._input_layer: InputLayer | None = None
        for layer in layers or []:
            self.add(layer)

    def add(self, layer) -> None:
        """Append a layer (or an ``Input(shape=...)`` to declare the input shape first)."""
        if isinstance(layer, SymbolicTensor) and isinstance(layer.layer, InputLayer):
            layer = layer.layer
        if isinstance(layer, InputLayer):
            if self._stack or self._input_layer is not None:
                raise ValueError(f"{self.name}: Input(...) must come first in a Sequential model")
            self._input_layer = layer
            return
        if not isinstance(layer, Layer):
            raise TypeError(
                f"{self.name}.add: expected a Layer, got {type(layer).__name__} ({layer!r})"
            )
        if not self._stack and self._input_layer is None and layer._declared_input_shape:
            # Keras 2: Dense(..., input_shape=(4,)) as the first layer declares the input.
            self._input_layer = InputLayer(layer._declared_input_shape)
        self._stack.append(layer)
        if self._graph is not None:  # extend the built graph by one call
            output = layer(self._graph.outputs)
            _check_one_tensor(output, layer, self.name)
            self._init_graph(FunctionalGraph(self._graph.inputs, output, self.name))
        elif self._input_layer is not None:
            self._rebuild()

    def pop(self) -> Layer:
        """Remove and return the last layer."""
        if not self._stack:
            raise IndexError(f"{self.name}.pop: there are no layers to remove")
        layer = self._stack.pop()
        self._forget_graph()
        if self._stack and self._input_layer is not None:
            self._rebuild()
        else:
            self.built = False
        return layer

    @property
    def layers(self) -> list[Layer]:
        return list(self._stack)

    def _child_layers(self):
        return _container_keys(self._stack)

    def _sublayers(self) -> list[Layer]:
        return list(self._stack)

    def _known_output_names(self):
        return [self._stack[-1].name] if self._stack else None

    @property
    def output_names(self):
        return self._known_output_names()

    def _forget_graph(self) -> None:
        """Drop the symbolic calls this model recorded on its layers (before rebuilding)."""
        if self._graph is not None:
            mine = {id(node) for node in self._graph.nodes}
            for layer in self._stack + [self._input_layer]:
                if layer is not None:
                    layer._inbound_nodes[:] = [
                        n for n in layer._inbound_nodes
                        if id(n) not in mine or isinstance(layer, InputLayer)
                    ]
        self._graph = None

    def _rebuild(self) -> None:
        self._forget_graph()
        symbol = input_symbol(self._input_layer)
        inputs = symbol
        for layer in self._stack:
            symbol = layer(symbol)
            _check_one_tensor(symbol, layer, self.name)
        self._init_graph(FunctionalGraph(inputs, symbol, self.name))

    def build(self, input_shape=None) -> None:
        """Create every layer's weights for per-sample inputs of ``input_shape[1:]``."""
        if input_shape is None:
            if self._input_layer is None:
                raise ValueError(f"{self.name}.build needs an input shape")
        elif self._input_layer is None or tuple(self._input_layer.shape) != tuple(input_shape[1:]):
            self._input_layer = InputLayer(tuple(input_shape[1:]))
        if self._stack:
            self._rebuild()

    def __call__(self, *args, training: bool | None = None, **kwargs):
        if not self.built and args and not isinstance(args[0], SymbolicTensor):
            first = args[0]
            array = first.data if hasattr(first, "data") else np.asarray(first)
            self.build((None,) + tuple(array.shape[1:]))
        return super().__call__(*args, training=training, **kwargs)

    def call(self, inputs, training=None):
        input_layer = self._input_layer
        if input_layer is not None:  # its checks and dtype cast, without a full layer call
            input_layer._check_input(inputs)
            inputs = input_layer.call(inputs)
        for layer in self._stack:
            inputs = layer(inputs, training=training)
        return inputs

    def _graph_nodes(self) -> list:
        return self._graph.nodes

    def _summary_rows(self):
        if self._graph is None:
            return super()._summary_rows()
        return [
            (
                f"{layer.name} ({type(layer).__name__})",
                _shape_text(node.outputs),
                layer.count_params(),
                "",
            )
            for layer, node in zip(self._stack, self._graph.nodes[1:])
        ]

    def get_config(self) -> dict:
        shape = None if self._input_layer is None else list(self._input_layer.shape)
        config = {
            "name": self.name,
            "input_shape": shape,
            "layers": [layer_spec(layer) for layer in self._stack],
        }
        if self._input_layer is not None and self._input_layer.input_dtype != self.dtype:
            config["input_dtype"] = self._input_layer.input_dtype.name
        if not self.trainable:
            config["trainable"] = False
        return config

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> Sequential:
        model = cls(name=config.get("name"))
        if config.get("input_shape") is not None:
            model.add(Input(tuple(config["input_shape"]), dtype=config.get("input_dtype")))
        for spec in config["layers"]:
            model.add(layer_from_config(spec, custom_objects))
        if config.get("trainable") is False:
            model.trainable = False
        return model


def _check_one_tensor(output, layer: Layer, model_name: str) -> None:
    if not isinstance(output, SymbolicTensor):
        raise ValueError(
            f"{model_name}: layer {layer.name!r} returns several tensors; a Sequential model "
            "needs one tensor between layers (use the functional API)"
        )


def _container_keys(layers: list[Layer]) -> list:
    """Path segments of a container's layers: a name given by the user, else the class-based
    name counted within this container (``dense``, ``dense_1``), so the paths of a model built
    twice — or in another process, or rebuilt from its config — are the same. A name of the
    generated form (``dense_7`` for a Dense) counts as generated even when it came from a config.
    """
    keys, counts, used = [], {}, set()
    for layer in layers:
        base = _auto_base(layer)
        if getattr(layer, "_auto_named", False) or re.fullmatch(rf"{base}(_\d+)?", layer.name):
            count = counts.get(base, 0)
            key = base if count == 0 else f"{base}_{count}"
            while key in used:
                count += 1
                key = f"{base}_{count}"
            counts[base] = count + 1
        else:
            key = layer.name
            suffix = 1
            while key in used:
                key, suffix = f"{layer.name}_{suffix}", suffix + 1
        used.add(key)
        keys.append(((key,), layer))
    return keys


def _auto_base(layer: Layer) -> str:
    """The generated-name base of a layer's class (``max_pooling2d``), computed once per class."""
    cls = type(layer)
    base = cls.__dict__.get("_snake_name")
    if base is None:
        base = _snake_case(cls.__name__)
        cls._snake_name = base
    return base


def _shape_text(outputs) -> str:
    shapes = [t.shape for t in tree.flatten(outputs)]
    return str(shapes[0]) if len(shapes) == 1 else str(shapes)


def _human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return f"{n:.2f} GB"


def _upgrade_v1_functional(config: dict) -> dict:
    """The functional config of checkpoint format v1 (one input, a chain of single-input nodes)
    in today's form."""
    layers = [{"class_name": "InputLayer", "config": {"shape": config["input_shape"]}}]
    layers += config["layers"]
    nodes = [{"layer": 0, "args": [], "kwargs": {}, "training": None}]
    for node in config["nodes"]:
        nodes.append(
            {
                "layer": node["layer"] + 1,
                "args": [{"__symbolic__": [node["input"], 0]}],
                "kwargs": {},
                "training": None,
            }
        )
    return {
        "name": config.get("name"),
        "layers": layers,
        "nodes": nodes,
        "inputs": {"__symbolic__": [0, 0]},
        "outputs": {"__symbolic__": [len(nodes) - 1, 0]},
    }
