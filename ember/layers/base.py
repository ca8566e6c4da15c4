"""The Layer base class (Keras' ``build``/``call``/``add_weight``) and ``Parameter``."""

from __future__ import annotations

import inspect
import operator
import re
import threading
from collections import defaultdict
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np

from ember import initializers as initializers_module
from ember import regularizers as regularizers_module
from ember import tree
from ember._graph import topological_order
from ember.backend import float_dtype
from ember.layers.node import contains_symbolic, record_call
from ember.ops import cast
from ember.tensor import Tensor, _as_array, check_device
from ember.variables import Parameter

_name_counts: defaultdict[str, int] = defaultdict(int)
LAYER_CLASSES: dict[str, type] = {}


class _CallContext(threading.local):
    """The ``training`` value of the layer call in progress (``None`` outside any call), which
    nested calls without ``training=`` inherit, and whether layers are only being probed for
    their output shape."""

    training: bool | None = None
    shape_inference: bool = False


_call_context = _CallContext()


@contextmanager
def shape_inference():
    """Mark layer calls as shape probes (functional API, ``Sequential.build``): a layer that
    cannot compute real outputs yet (an un-adapted ``Normalization``) returns a placeholder of
    the right shape instead of raising."""
    previous = _call_context.shape_inference
    _call_context.shape_inference = True
    try:
        yield
    finally:
        _call_context.shape_inference = previous


def in_shape_inference() -> bool:
    """True inside :func:`shape_inference`."""
    return _call_context.shape_inference


def unique_name(base: str) -> str:
    """``dense``, then ``dense_1``, ``dense_2``… (Keras' naming)."""
    count = _name_counts[base]
    _name_counts[base] += 1
    return base if count == 0 else f"{base}_{count}"


def _snake_case(name: str) -> str:
    """Keras' rule: ``Conv2D`` → ``conv2d``, ``MaxPooling2D`` → ``max_pooling2d``,
    ``BatchNormalization`` → ``batch_normalization``."""
    words = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", words).lower()


class InputSpec:
    """What a layer accepts: ``ndim`` / ``min_ndim`` and fixed sizes of some ``axes``.

    Example:
        >>> class Scale(ember.layers.Layer):
        ...     def build(self, input_shape):
        ...         self.input_spec = ember.layers.InputSpec(ndim=2, axes={-1: input_shape[-1]})
        ...         self.w = self.add_weight((input_shape[-1],), initializer="ones", name="w")
        ...
        ...     def call(self, x):
        ...         return x * self.w
        >>> layer = Scale(name="scale")
        >>> layer(np.ones((2, 3), np.float32)).shape
        (2, 3)
        >>> layer(np.ones((2, 4), np.float32))
        Traceback (most recent call last):
        ...
        ValueError: Input 0 of layer "scale" is incompatible with the layer: expected axis -1 ...
    """

    def __init__(
        self,
        ndim: int | None = None,
        min_ndim: int | None = None,
        axes: dict | None = None,
        layout: str | None = None,
    ):
        self.ndim, self.min_ndim, self.axes, self.layout = ndim, min_ndim, axes or {}, layout


_ABSENT = object()


def overridable_property(getter):
    """A read-only property that an attribute of the same name replaces: PyTorch code names its
    sublayers ``self.output`` or ``self.layers``, which must not clash with Keras' ``output`` /
    ``layers`` properties. Assigning stores the value on the instance; reading returns it."""
    name = getter.__name__

    def read(self):
        own = self.__dict__.get(name, _ABSENT)
        return getter(self) if own is _ABSENT else own

    def write(self, value):
        self.__dict__[name] = value

    return property(read, write, doc=getter.__doc__)


class Layer:
    """Base class of all layers.

    Subclasses create weights in ``build(input_shape)`` with :meth:`add_weight` and compute
    outputs in ``call(inputs)`` (optionally ``call(inputs, training=False)``). ``build`` runs on
    the first call, so input sizes are inferred. PyTorch users may write ``forward`` instead of
    ``call``, and create weights in ``__init__``: a :class:`Parameter` or a layer assigned as an
    attribute is tracked (registered on assignment, in order), as in ``torch.nn.Module``.

    Several inputs: ``layer(a, b)`` passes both tensors on to ``call(a, b)``, and
    ``layer([a, b])`` (or a tuple or dict) passes the structure as ``inputs``; ``build`` then gets
    the shapes in the same structure. The built-in layers that take one tensor raise a clear error
    when given several.

    Training and inference mode: ``layer(x, training=True/False)`` chooses explicitly. With
    ``training=None`` (the default) a layer called inside another layer's call takes the outer
    call's mode (Keras' call context: ``fit`` calls the model with ``training=True`` and every
    nested layer follows, even through a subclassed model's ``call`` that does not pass it on);
    a top-level call uses the layer's own mode, set PyTorch-style by :meth:`train` /
    :meth:`eval` and inference by default (as a direct Keras call). ``fit`` passes
    ``training=True`` and ``evaluate``/``predict`` ``training=False`` explicitly, so they never
    change the mode attribute.

    Freezing: ``layer.trainable = False`` freezes the layer and every layer inside it (Keras'
    semantics); their weights move to :attr:`non_trainable_weights`, ``fit`` and the optimizers
    leave them untouched, and a frozen ``BatchNormalization`` runs in inference mode.

    Example (the classic Keras custom layer):
        >>> class MyDense(ember.layers.Layer):
        ...     def __init__(self, units):
        ...         super().__init__()
        ...         self.units = units
        ...     def build(self, input_shape):
        ...         self.w = self.add_weight(shape=(input_shape[-1], self.units),
        ...                                  initializer="glorot_uniform")
        ...         self.b = self.add_weight(shape=(self.units,), initializer="zeros")
        ...     def call(self, inputs):
        ...         return inputs @ self.w + self.b
        >>> MyDense(4)(np.ones((2, 3))).shape
        (2, 4)

    Example (PyTorch style: weights made in ``__init__``, ``forward``):
        >>> class Affine(ember.layers.Layer):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.scale = ember.layers.Parameter(np.ones(3, np.float32))
        ...         self.shift = ember.layers.Parameter(np.zeros(3, np.float32))
        ...     def forward(self, x):
        ...         return x * self.scale + self.shift
        >>> layer = Affine()
        >>> [name for name in layer.state_dict()]
        ['scale', 'shift']
    """

    # The built-in layers that compute on one tensor set this; a user's layer receives whatever
    # structure it is given, as in Keras.
    _single_input = False
    # Float inputs are cast to the layer's dtype and integer ones to float (Keras' autocast);
    # layers that consume integer indices (embeddings) turn it off.
    _autocast_inputs = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # A user's class named like one of Ember's (KerasHub's TokenAndPositionEmbedding written
        # out in a tutorial) must not take the built-in's place: checkpoints of the built-in
        # would load as the user's class. It is registered under its full name instead.
        existing = LAYER_CLASSES.get(cls.__name__)
        if existing is None or _is_user_class(existing) or not _is_user_class(cls):
            LAYER_CLASSES[cls.__name__] = cls
        LAYER_CLASSES[f"{cls.__module__}>{cls.__qualname__}"] = cls
        if "forward" in cls.__dict__ and "call" not in cls.__dict__:
            cls.call = cls.__dict__["forward"]  # PyTorch's spelling of call
        call_parameters = inspect.signature(cls.call).parameters
        cls._call_takes_training = "training" in call_parameters
        cls._call_takes_kwargs = any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in call_parameters.values()
        )
        cls._call_takes_mask = "mask" in call_parameters
        # A layer that overrides compute_mask may make a mask from nothing (Embedding with
        # mask_zero=True, Masking); the others only pass on or drop the mask they were given.
        cls._computes_mask = cls.compute_mask is not Layer.compute_mask

    def __init__(
        self,
        name: str | None = None,
        trainable: bool = True,
        dtype=None,
        input_shape=None,
        input_dim: int | None = None,
        **kwargs,
    ):
        if kwargs:
            unknown = next(iter(kwargs))
            raise TypeError(
                f"{type(self).__name__}: unexpected keyword argument {unknown!r}. Layers take "
                "name=, trainable=, dtype= and (in Sequential models, as Keras 2 code writes it) "
                "input_shape= / input_dim=, besides their own arguments"
            )
        object.__setattr__(self, "_weights", [])
        # Names of public attributes that may hold layers (a layer, or a list/tuple/dict that
        # may contain some), in assignment order: the layer tree is walked at every training
        # step, so it reads these few attributes instead of scanning every attribute.
        object.__setattr__(self, "_layer_slots", {})
        self._auto_named = name is None
        self.name = name or unique_name(_snake_case(type(self).__name__))
        self._trainable = bool(trainable)
        self.dtype = np.dtype(float_dtype(dtype))
        self.built = False
        self.input_spec: InputSpec | None = None
        self._losses: list[Tensor] = []
        self._build_shape = None
        self._weight_regularizers: list = []
        self._inbound_nodes: list = []
        self.training = False
        if input_dim is not None:
            input_shape = (input_dim,)
        self._declared_input_shape = (
            None
            if input_shape is None
            else per_sample_shape(input_shape, f'Layer "{self.name}" input_shape')
        )

    # ---------------------------------------------------------------- attribute tracking
    def __setattr__(self, name: str, value) -> None:
        weights = self.__dict__.get("_weights")
        if weights is not None and not name.startswith("_"):
            slots = self.__dict__["_layer_slots"]
            if isinstance(value, (Layer, list, tuple, dict)):
                slots.setdefault(name, None)
            else:
                slots.pop(name, None)
            previous = self.__dict__.get(name)
            if isinstance(previous, Parameter) and previous is not value:
                # Reassigning an attribute replaces the weight it held (PyTorch's behaviour).
                weights[:] = [p for p in weights if p is not previous]
            if isinstance(value, Parameter) and not any(p is value for p in weights):
                if value.name is None:
                    value.name = name
                weights.append(value)
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        value = self.__dict__.get(name)
        if isinstance(value, Parameter):
            self._weights[:] = [p for p in self._weights if p is not value]
        self.__dict__.get("_layer_slots", {}).pop(name, None)
        object.__delattr__(self, name)

    def _layer_attributes(self):
        """``(name, value)`` of the public attributes that may hold layers, in assignment
        order (every public attribute for a layer whose ``__init__`` ran late)."""
        slots = self.__dict__.get("_layer_slots")
        if slots is None:
            return [(k, v) for k, v in self.__dict__.items() if not k.startswith("_")]
        attributes = self.__dict__
        return [(name, attributes[name]) for name in slots if name in attributes]

    # ---------------------------------------------------------------- mode
    def train(self, mode: bool = True) -> Layer:
        """Set training mode (``mode=True``) or inference mode on this layer and every nested
        layer, like ``torch.nn.Module.train``; returns the layer.

        Example:
            >>> model = ember.models.Sequential([ember.layers.Dense(4), ember.layers.Dropout(0.5)])
            >>> _ = model.train()   # Dropout drops, BatchNormalization uses batch statistics
            >>> model.layers[1].training
            True
            >>> _ = model.eval()    # the reverse
            >>> model.layers[1].training
            False
        """
        if not isinstance(mode, (bool, np.bool_)):
            raise TypeError(f"{self.name}.train: mode must be True or False, got {mode!r}")
        for layer in self._all_layers():
            layer.training = bool(mode)
        return self

    def eval(self) -> Layer:
        """Inference mode on this layer and every nested layer (``train(False)``)."""
        return self.train(False)

    @property
    def trainable(self) -> bool:
        """Whether ``fit`` and the optimizers may change this layer's weights.

        Setting it sets every nested layer too (Keras' semantics), so ``base.trainable = False``
        freezes a whole pretrained model; it takes effect at the next training step, with or
        without re-compiling.

        Example:
            >>> model = ember.models.Sequential([ember.layers.Input(shape=(3,)),
            ...                                  ember.layers.Dense(4), ember.layers.Dense(2)])
            >>> model.trainable = False
            >>> len(model.trainable_weights), len(model.non_trainable_weights)
            (0, 4)
            >>> model.layers[1].trainable = True
            >>> model.trainable = True; len(model.trainable_weights)
            4
        """
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{self.name}.trainable must be True or False, got {value!r}")
        for layer in self._all_layers():
            layer._trainable = bool(value)

    # ---------------------------------------------------------------- weights
    def add_weight(
        self,
        shape=(),
        initializer="glorot_uniform",
        trainable: bool = True,
        name: str | None = None,
        regularizer=None,
        dtype=None,
    ) -> Parameter:
        """Create a weight of ``shape``, initialised by ``initializer`` (a name or object)."""
        shape = tuple(int(s) for s in shape)
        init = initializers_module.get(initializer)
        value = np.asarray(init(shape, dtype=dtype or self.dtype))
        if value.shape != shape:
            raise ValueError(f"{self.name}: initializer returned shape {value.shape}, not {shape}")
        param = Parameter(value, name=name or f"weight_{len(self._weights)}", trainable=trainable)
        self._weights.append(param)
        if regularizer is not None:
            self._weight_regularizers.append((param, regularizers_module.get(regularizer)))
        return param

    def _child_layers(self) -> list[tuple[tuple[str, ...], Layer]]:
        """The layers directly inside this one with the path segments that name them: attribute
        names (``("hidden",)``; ``("blocks", "0")`` for a list), in assignment order."""
        found = []
        for attribute, value in self._layer_attributes():
            if isinstance(value, Layer):
                found.append(((attribute,), value))
            elif isinstance(value, (list, tuple)):
                found.extend(
                    ((attribute, str(i)), v) for i, v in enumerate(value) if isinstance(v, Layer)
                )
            elif isinstance(value, dict):
                found.extend(
                    ((attribute, str(k)), v) for k, v in value.items() if isinstance(v, Layer)
                )
        return found

    def _sublayers(self) -> list[Layer]:
        """The layers directly inside this one, in order (what :meth:`_child_layers` names)."""
        found = []
        for _, value in self._layer_attributes():
            if isinstance(value, Layer):
                found.append(value)
            elif isinstance(value, (list, tuple)):
                found.extend(v for v in value if isinstance(v, Layer))
            elif isinstance(value, dict):
                found.extend(v for v in value.values() if isinstance(v, Layer))
        return found

    def _named_layers(self, paths: bool = True) -> list[tuple[tuple[str, ...], Layer, bool]]:
        """``(path, layer, trainable)`` for this layer (path ``()``) and every nested layer, each
        once, parents before children; ``trainable`` is False when the layer or any layer on its
        path is frozen (Keras: a frozen container's weights are all non-trainable). With
        ``paths=False`` the paths are ``None`` (cheaper: the walk ``fit`` makes at every step)."""

        def children(entry):
            path, layer, trainable = entry
            if paths:
                found = [
                    (path + key, child, trainable and child._trainable)
                    for key, child in layer._child_layers()
                ]
            else:
                found = [(None, child, trainable and child._trainable)
                         for child in layer._sublayers()]
            found.reverse()
            return found

        root = ((), self, self._trainable)
        order = topological_order([root], children, key=_entry_layer)
        order.reverse()
        return order

    def _all_layers(self) -> list[Layer]:
        """This layer and every nested layer, each once, parents before children."""
        return [layer for _, layer, _ in self._named_layers(paths=False)]

    def _weights_and_flags(self) -> list[tuple[Parameter, bool]]:
        """``(weight, trainable)`` for every weight, each once, in :attr:`weights` order."""
        found, seen = [], set()
        for _, layer, layer_trainable in self._named_layers(paths=False):
            for p in layer._weights:
                if id(p) not in seen:
                    seen.add(id(p))
                    found.append((p, layer_trainable and p.trainable))
        return found

    def _named_weights(self) -> list[tuple[tuple[str, ...], Parameter, bool]]:
        """``(path, weight, trainable)`` for every weight, each once, in :attr:`weights` order.

        The path is the layer's path plus the weight's name (``("dense_1", "kernel")``), made
        unique within a layer; ``trainable`` combines the weight's own flag with its layers'.
        """
        named, seen = [], set()
        for path, layer, layer_trainable in self._named_layers():
            used: set[str] = set()
            for p in layer._weights:
                if id(p) in seen:
                    continue
                seen.add(id(p))
                name = p.name or "weight"
                unique, count = name, 1
                while unique in used:
                    unique, count = f"{name}_{count}", count + 1
                used.add(unique)
                named.append((path + (unique,), p, layer_trainable and p.trainable))
        return named

    @property
    def weights(self) -> list[Parameter]:
        """All weights of this layer and its sublayers (trainable first within each layer)."""
        return [p for p, _ in self._weights_and_flags()]

    @property
    def trainable_weights(self) -> list[Parameter]:
        """The weights ``fit`` and the optimizers update: trainable weights of layers that are
        trainable, as are all the layers around them."""
        return [p for p, trainable in self._weights_and_flags() if trainable]

    @property
    def non_trainable_weights(self) -> list[Parameter]:
        return [p for p, trainable in self._weights_and_flags() if not trainable]

    trainable_variables = trainable_weights  # TensorFlow's spelling
    non_trainable_variables = non_trainable_weights
    variables = weights

    def parameters(self) -> list[Parameter]:
        """The trainable weights, for an optimizer: ``SGD(model.parameters(), ...)``.

        The list remembers its layer, so an optimizer given it before the layer has built its
        weights (they are made at the first call when the input size is inferred) picks them up
        at its next ``zero_grad()``/``step()``, and leaves layers frozen since then alone.
        """
        return ParameterList(self.trainable_weights, self)

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        """``(dotted path, weight)`` for every weight, as in ``torch.nn.Module``.

        Example:
            >>> model = ember.models.Sequential([ember.layers.Input(shape=(3,)),
            ...                                  ember.layers.Dense(2)])
            >>> [name for name, _ in model.named_parameters()]
            ['dense.kernel', 'dense.bias']
        """
        return [(".".join(path), p) for path, p, _ in self._named_weights()]

    def to(self, device=None) -> Layer:
        """PyTorch's ``model.to(device)``: ``"cpu"`` (Ember's only device) returns the layer."""
        check_device(device)
        return self

    def zero_grad(self) -> None:
        """Reset the ``.grad`` of every weight to ``None`` (``torch.nn.Module.zero_grad``)."""
        for p in self.weights:
            p.grad = None

    def count_params(self) -> int:
        return int(sum(p.size for p in self.weights))

    def get_weights(self) -> list[np.ndarray]:
        return [p.data.copy() for p in self.weights]

    def set_weights(self, values) -> None:
        """Assign arrays to :attr:`weights`, in order. Every array is checked (count, type,
        shape) before any is assigned, so a failed call leaves the layer unchanged."""
        params = self.weights
        if values is None or isinstance(values, (str, bytes, np.ndarray, Tensor)):
            raise TypeError(
                f"{self.name}.set_weights expects a list of {len(params)} arrays (as returned by "
                f"get_weights()), got {type(values).__name__}"
            )
        values = list(values)
        if len(values) != len(params):
            raise ValueError(
                f"{self.name}.set_weights: expected {len(params)} arrays, got {len(values)}"
            )
        arrays = []
        for i, (p, v) in enumerate(zip(params, values)):
            if v is None:
                raise TypeError(
                    f"{self.name}.set_weights: array {i} (weight '{p.name}') is None; expected an "
                    f"array of shape {p.shape}"
                )
            v = np.asarray(v.data if isinstance(v, Tensor) else v)
            if v.dtype.kind not in "biuf":
                raise TypeError(
                    f"{self.name}.set_weights: array {i} (weight '{p.name}') has dtype {v.dtype}; "
                    "expected numbers"
                )
            if v.shape != p.shape:
                raise ValueError(
                    f"{self.name}.set_weights: weight '{p.name}' has shape {p.shape}, "
                    f"got an array of shape {v.shape}"
                )
            arrays.append(v)
        for p, v in zip(params, arrays):
            p.data = np.array(v, dtype=p.dtype, copy=True)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every weight by dotted path (``"hidden.kernel"``), as copies — PyTorch's
        ``state_dict``; :meth:`load_state_dict` puts it back.

        Example:
            >>> layer = ember.layers.Dense(2)
            >>> _ = layer(np.ones((1, 3)))
            >>> {k: v.shape for k, v in layer.state_dict().items()}
            {'kernel': (3, 2), 'bias': (2,)}
        """
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state_dict: dict, strict: bool = True) -> LoadResult:
        """Load arrays by dotted path. Every entry is checked first (missing and unexpected keys
        with ``strict=True``, shapes always); on any problem a ``ValueError`` lists them all and
        nothing is assigned. Returns ``(missing_keys, unexpected_keys)``. A model whose weights
        do not exist yet (its layers infer their input size at the first call) keeps the state
        and loads it at that first call, before computing the output.

        Example:
            >>> a, b = ember.layers.Dense(2), ember.layers.Dense(2)
            >>> _ = a(np.ones((1, 3))), b(np.ones((1, 3)))
            >>> b.load_state_dict(a.state_dict())
            LoadResult(missing_keys=[], unexpected_keys=[])
            >>> bool(np.array_equal(a.kernel.numpy(), b.kernel.numpy()))
            True
        """
        if not isinstance(state_dict, dict):
            raise TypeError(
                f"{self.name}.load_state_dict expects a dict of arrays by name (from "
                f"state_dict()), got {type(state_dict).__name__}"
            )
        named = dict(self.named_parameters())
        if not named and not self.built and state_dict:
            # PyTorch's flow on a model whose layers infer their input size: the weights do not
            # exist yet. Keep the state; the first call makes the weights, loads it (checked as
            # below) and computes its output with the loaded values.
            self._pending_state = (dict(state_dict), strict)
            return LoadResult([], [])
        missing = [k for k in named if k not in state_dict]
        unexpected = [k for k in state_dict if k not in named]
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(str(k) for k in unexpected))
        arrays = {}
        for key, p in named.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            value = np.asarray(value.data if isinstance(value, Tensor) else value)
            if value.shape != p.shape:
                problems.append(
                    f"size mismatch for {key}: the state has shape {value.shape}, the layer's "
                    f"weight has shape {p.shape}"
                )
            elif value.dtype.kind not in "biuf":
                problems.append(f"{key} has dtype {value.dtype}; expected numbers")
            else:
                arrays[key] = value
        if problems:
            if not named and not self.built:
                problems.append(
                    "this layer has no weights yet: its layers make them at the first call, "
                    "when the input size is known; call it on a batch first (or declare "
                    "ember.Input(shape=...))"
                )
            raise ValueError(
                f"{self.name}.load_state_dict: nothing was loaded: " + "; ".join(problems)
            )
        for key, value in arrays.items():
            named[key].data = np.array(value, dtype=named[key].dtype, copy=True)
        return LoadResult(missing, unexpected)

    @property
    def losses(self) -> list[Tensor]:
        """Penalties of the last forward pass: weight regularizers, activity regularizers and
        everything passed to :meth:`add_loss` during the layers' ``call``."""
        out = []
        for layer in self._all_layers():
            out.extend(reg(p) for p, reg in layer._weight_regularizers)
            out.extend(layer._losses)
        return out

    def add_loss(self, loss) -> None:
        """Add a scalar penalty to the training loss from inside ``call`` (Keras): an activity
        penalty, a VAE's KL term. It is counted in the loss of the forward pass that made it.

        Example:
            >>> class ActivityL1(ember.layers.Layer):
            ...     def call(self, x):
            ...         self.add_loss(0.01 * abs(x).sum())
            ...         return x
            >>> layer = ActivityL1()
            >>> _ = layer(np.ones((2, 3)))
            >>> layer.losses
            [tensor(0.06)]
        """
        if not isinstance(loss, Tensor):
            loss = Tensor(np.asarray(loss, dtype=self.dtype))
        if loss.size != 1:
            raise ValueError(
                f"{self.name}.add_loss expects a scalar (one value), got a tensor of shape "
                f"{loss.shape}; reduce it first, e.g. with .sum() or .mean()"
            )
        self._losses.append(loss.reshape(()))

    # ---------------------------------------------------------------- functional graph
    @overridable_property
    def input(self):
        """The symbolic input of this layer in a functional graph (its one call's first
        argument); an error when the layer was never called on symbolic tensors, or several
        times."""
        return self._only_node("input").args[0]

    @overridable_property
    def output(self):
        """The symbolic output of this layer's one call in a functional graph."""
        return self._only_node("output").outputs

    def _only_node(self, what: str):
        if not self._inbound_nodes:
            raise AttributeError(
                f'Layer "{self.name}" has no {what} yet: it has not been called on a symbolic '
                "input (ember.layers.Input or another layer's output)"
            )
        if len(self._inbound_nodes) > 1:
            raise AttributeError(
                f'Layer "{self.name}" has been called {len(self._inbound_nodes)} times (it is '
                f"shared), so it has several {what}s; use get_{what}_at(node_index)"
            )
        return self._inbound_nodes[0]

    def get_input_at(self, node_index: int):
        """The symbolic input of this layer's ``node_index``-th call."""
        return self._inbound_nodes[node_index].args[0]

    def get_output_at(self, node_index: int):
        """The symbolic output of this layer's ``node_index``-th call."""
        return self._inbound_nodes[node_index].outputs

    # ---------------------------------------------------------------- calling
    def build(self, input_shape) -> None:
        """Create the weights, knowing the input shape (batch axis included)."""

    def call(self, inputs):
        raise NotImplementedError(
            f"{type(self).__name__} must implement call(inputs) (or forward(inputs))"
        )

    def __call__(self, *args, training: bool | None = None, **kwargs):
        if not args:
            if "inputs" not in kwargs:
                raise TypeError(f'Layer "{self.name}" was called without inputs')
            args = (kwargs.pop("inputs"),)
        if len(args) == 1 and not kwargs and type(args[0]) is Tensor:
            input_mask = args[0]._keras_mask  # read before a cast makes a new tensor
            inputs = self._convert_inputs(args[0])  # the common case: one tensor, nothing else
            args = (inputs,)
        else:
            if contains_symbolic(args, kwargs):  # functional API: record the call, not compute
                return record_call(self, args, kwargs, training)
            input_mask = kwargs["mask"] if "mask" in kwargs else _mask_of(args[0])
            if "mask" in kwargs and not self._call_takes_mask:
                kwargs.pop("mask")  # given for compute_mask only (Keras accepts it too)
            inputs = self._convert_inputs(args[0])
            dtype = self.dtype if self._autocast_inputs else None
            args = (inputs,) + tuple(_convert_argument(a, dtype) for a in args[1:])
            for key, value in kwargs.items():
                kwargs[key] = _convert_argument(value, dtype)
        if input_mask is not None and self._call_takes_mask and "mask" not in kwargs:
            kwargs["mask"] = input_mask  # Keras passes the inputs' mask to call(..., mask=)
        if not self.built:
            self._check_input(inputs)
            self._build_from(args)
        self._check_input(inputs)
        self.__dict__["_losses"] = []  # (directly: this runs at every call of every layer)
        if training is None:
            training = _call_context.training
            if training is None:
                training = self.training
        training = bool(training)
        if self._call_takes_training:
            kwargs["training"] = training
        previous = _call_context.training
        _call_context.training = training  # nested calls without training= follow this one
        try:
            out = self.call(*args, **kwargs)
            if self.__dict__.get("_pending_state") is not None:
                state, strict = self.__dict__.pop("_pending_state")
                self.load_state_dict(state, strict)
                self._losses = []
                out = self.call(*args, **kwargs)
            if input_mask is not None or self._computes_mask:
                _set_output_mask(out, self.compute_mask(inputs, input_mask))
            return out
        finally:
            _call_context.training = previous

    # ---------------------------------------------------------------- masks
    supports_masking = False  # True: the output keeps the input's mask (Keras' flag)

    def compute_mask(self, inputs, mask=None):
        """The mask of this layer's output, given its inputs and their mask (Keras 3).

        The default passes ``mask`` on when :attr:`supports_masking` is true and drops it
        otherwise. Masks are boolean tensors, ``(batch, time)`` for sequences, ``True`` for a
        real step; a layer sets one on its output tensors (``tensor._keras_mask``), and the
        layers after it receive it as ``call(..., mask=)`` when their ``call`` takes ``mask``.
        Losses and metrics leave masked steps out.

        Example:
            >>> embed = ember.layers.Embedding(10, 4, mask_zero=True)
            >>> embed.compute_mask(np.array([[3, 1, 0, 0]]))
            tensor([[ True,  True, False, False]], dtype=bool)
        """
        return mask if self.supports_masking else None

    def _build_from(self, args: tuple) -> None:
        shapes = tree.map_structure(_shape_of, args[0])
        extra = {}
        if len(args) > 1:
            # Keras 3: build(query_shape, value_shape) gets the shapes of call's other tensors
            build_parameters = list(inspect.signature(self.build).parameters)
            call_parameters = list(inspect.signature(self.call).parameters)
            for name, value in zip(call_parameters[1:], args[1:]):
                if f"{name}_shape" in build_parameters[1:]:
                    extra[f"{name}_shape"] = tree.map_structure(_shape_of, value)
        self._build_shape = shapes
        self.build(shapes, **extra)
        self.built = True

    def _convert_inputs(self, inputs):
        """The first argument as a Tensor, or as a structure of Tensors."""
        if tree.is_nested(inputs) and any(
            isinstance(leaf, (Tensor, np.ndarray)) for leaf in tree.flatten(inputs)
        ):
            if self._single_input:
                shapes = ", ".join(str(tuple(np.shape(t))) for t in tree.flatten(inputs))
                raise ValueError(
                    f'Layer "{self.name}" ({type(self).__name__}) expects one tensor as input, '
                    f"but received a {type(inputs).__name__} of {len(tree.flatten(inputs))} "
                    f"tensors (shapes {shapes}). To combine several tensors use a merge layer "
                    "first, e.g. ember.layers.Concatenate()([a, b]) or ember.layers.Add()([a, b])"
                )
            return tree.map_structure(self._convert_input, inputs)
        return self._convert_input(inputs)

    def _convert_input(self, inputs) -> Tensor:
        if inputs is None:
            return None
        if isinstance(inputs, Tensor):
            if not self._autocast_inputs:
                return inputs
            if inputs.dtype.kind == "f" and inputs.dtype == self.dtype:
                return inputs
            if inputs.dtype.kind in "biuf":
                converted = cast(inputs, self.dtype)
                converted._keras_mask = inputs._keras_mask  # the same steps: the same mask
                return converted
        array = _as_array(inputs)
        if array.dtype.kind not in "iufb":
            raise TypeError(
                f'Input of layer "{self.name}" has dtype {array.dtype}; expected numbers '
                "(float, or bool/int/uint8 which are cast to the layer's float dtype)"
            )
        if not self._autocast_inputs:
            return Tensor(array)
        # float64 / uint8 / bool (one-hot) data is cast to the layer's dtype, as Keras' autocast
        # does.
        return Tensor(array.astype(self.dtype, copy=False))

    def _check_input(self, inputs) -> None:
        spec = self.input_spec
        if spec is None or not isinstance(inputs, Tensor):
            return
        shape = inputs.shape
        layout = f" ({spec.layout})" if spec.layout else ""
        if spec.ndim is not None and len(shape) != spec.ndim:
            raise ValueError(
                f'Input 0 of layer "{self.name}" is incompatible with the layer: expected '
                f"ndim={spec.ndim}{layout}, found ndim={len(shape)}. Full shape received: {shape}"
            )
        if spec.min_ndim is not None and len(shape) < spec.min_ndim:
            raise ValueError(
                f'Input 0 of layer "{self.name}" is incompatible with the layer: expected '
                f"min_ndim={spec.min_ndim}{layout}, found ndim={len(shape)}. Full shape "
                f"received: {shape}"
            )
        for axis, size in spec.axes.items():
            if size is not None and shape[axis] != size:
                raise ValueError(
                    f'Input 0 of layer "{self.name}" is incompatible with the layer: expected '
                    f"axis {axis} of input shape to have value {size}, but received input with "
                    f"shape {shape}"
                )

    # ---------------------------------------------------------------- config
    def get_config(self) -> dict:
        return {"name": self.name, "trainable": self.trainable, "dtype": self.dtype.name}

    @classmethod
    def from_config(cls, config: dict) -> Layer:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}, built={self.built}>"


_entry_layer = operator.itemgetter(1)  # a walk entry's layer (layers hash by identity)


class ParameterList(list):
    """A list of weights that also names the layer they came from (``owner``)."""

    def __init__(self, weights, owner: Layer):
        super().__init__(weights)
        self.owner = owner


class LoadResult(NamedTuple):
    """What :meth:`Layer.load_state_dict` matched: keys the state lacked, keys it had extra."""

    missing_keys: list
    unexpected_keys: list


def _shape_of(value):
    return tuple(value.shape) if value is not None and hasattr(value, "shape") else None


def per_sample_shape(shape, owner: str) -> tuple:
    """A per-sample shape (batch axis excluded) as a tuple of positive ints and ``None``s (a
    variable length); ``owner`` names the layer or argument in errors."""
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        shape = tuple(shape)
    except TypeError:
        raise TypeError(
            f"{owner}: the shape must be a tuple of sizes such as (784,) or (None, 4), got "
            f"{shape!r}"
        ) from None
    for size in shape:
        if size is not None and (
            isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0
        ):
            raise ValueError(
                f"{owner}: the shape must hold positive sizes (or None for a variable length), "
                f"got {shape}"
            )
    return tuple(None if s is None else int(s) for s in shape)


def _is_user_class(cls: type) -> bool:
    return not cls.__module__.startswith("ember.")


def registered_name(cls: type) -> str:
    """The name a checkpoint stores for a layer class: its class name, or ``module>qualname``
    for a user's class that shares its name with one of Ember's."""
    if LAYER_CLASSES.get(cls.__name__) is cls:
        return cls.__name__
    return f"{cls.__module__}>{cls.__qualname__}"


def layer_spec(layer: Layer) -> dict:
    """``{"class_name": ..., "config": ...}``: what :func:`layer_from_config` rebuilds from.

    Example:
        >>> ember.layers.layer_spec(ember.layers.Dense(3))["class_name"]
        'Dense'
    """
    return {"class_name": registered_name(type(layer)), "config": layer.get_config()}


def check_positive_int(layer: Layer, name: str, value) -> int:
    """``value`` as an int, or a ``ValueError`` naming the layer and the argument.

    Example:
        >>> ember.layers.base.check_positive_int(ember.layers.Layer(name="l"), "units", 3)
        3
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(
            f'Layer "{layer.name}" ({type(layer).__name__}): {name} must be a positive integer, '
            f"got {value!r}"
        )
    return int(value)


def check_rate(layer: Layer, name: str, value) -> float:
    """A dropout rate in ``[0, 1)`` as a float, or a ``ValueError`` naming the layer.

    Example:
        >>> ember.layers.base.check_rate(ember.layers.Layer(name="l"), "dropout", 0.1)
        0.1
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(
            f'Layer "{layer.name}" ({type(layer).__name__}): {name} must be a number in [0, 1), '
            f"got {value!r}"
        )
    return float(value)


def layer_from_config(spec: dict, custom_objects: dict | None = None) -> Layer:
    """A layer rebuilt from ``{"class_name": ..., "config": ...}`` (classes known to Ember or
    defined by the user before loading, or given in ``custom_objects``).

    Example:
        >>> spec = {"class_name": "Dense", "config": {"units": 3}}
        >>> ember.layers.layer_from_config(spec).units
        3
    """
    name = spec.get("class_name")
    cls = (custom_objects or {}).get(name) or LAYER_CLASSES.get(name)
    if cls is None:
        raise ValueError(
            f"unknown layer class {name!r}; import the module that defines this custom layer "
            "before loading the model"
        )
    return cls.from_config(spec["config"])


def _mask_of(value):
    """The mask carried by a call's first argument: one tensor's, or a list of them for a
    structure (``None`` where a tensor has none), or ``None`` when nothing is masked."""
    if isinstance(value, Tensor):
        return value._keras_mask
    if isinstance(value, (list, tuple)):
        masks = [v._keras_mask if isinstance(v, Tensor) else None for v in value]
        if any(m is not None for m in masks):
            return masks
    return None


def _set_output_mask(outputs, mask) -> None:
    """Attach ``mask`` to the output tensor(s). A list of masks pairs with a list of outputs
    (an RNN with ``return_state`` masks only its sequence output). ``None`` leaves outputs as
    they are: a model used as a layer keeps the masks its inner layers set."""
    if mask is None:
        return
    if isinstance(outputs, Tensor):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        outputs._keras_mask = mask if mask is None or isinstance(mask, Tensor) else Tensor(mask)
        return
    if isinstance(outputs, (list, tuple)):
        masks = mask if isinstance(mask, (list, tuple)) else [mask] + [None] * (len(outputs) - 1)
        for output, output_mask in zip(outputs, masks):
            if isinstance(output, Tensor) and output_mask is not None:
                _set_output_mask(output, output_mask)


def _convert_argument(value, dtype):
    """Other arguments of a call (positional or keyword): arrays become tensors, and float
    tensors are cast to the layer's float ``dtype`` when it has one (Keras' autocast of every
    tensor argument: a float32 attention layer given float64 key and value computes in float32).
    Integer and boolean ones (ids, masks) and everything else pass as they are."""

    def convert(leaf):
        if isinstance(leaf, np.ndarray):
            leaf = Tensor(leaf)
        if (
            dtype is not None
            and isinstance(leaf, Tensor)
            and leaf.dtype.kind == "f"
            and leaf.dtype != dtype
        ):
            mask = leaf._keras_mask
            leaf = cast(leaf, dtype)
            leaf._keras_mask = mask  # the cast is the same sequence: it keeps the mask
        return leaf

    if isinstance(value, (np.ndarray, Tensor)):
        return convert(value)
    if tree.is_nested(value) and any(
        isinstance(v, (np.ndarray, Tensor)) for v in tree.flatten(value)
    ):
        return tree.map_structure(convert, value)
    return value


Layer._call_takes_training = False
Layer.training = False  # also for subclasses that set attributes before Layer.__init__


Layer._call_takes_kwargs = False
Layer._trainable = True
Layer._call_takes_mask = False
Layer._computes_mask = False
