"""The Layer base class (Keras' ``build``/``call``/``add_weight``) and ``Parameter``."""

from __future__ import annotations

import inspect
import re
import threading
from collections import defaultdict
from contextlib import contextmanager

import numpy as np

from ember import initializers as initializers_module
from ember import regularizers as regularizers_module
from ember.backend import float_dtype
from ember.ops import cast
from ember.tensor import Tensor, _as_array, no_grad

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


class Parameter(Tensor):
    """A trainable (or frozen) weight owned by a layer; always a leaf requiring a gradient.

    ``trainable=False`` keeps ``requires_grad`` (so gradients can still flow to earlier layers) but
    optimizers and ``fit`` leave the value untouched.

    Example:
        >>> w = ember.layers.Parameter(np.zeros((2, 3), np.float32), name="w")
        >>> w, w.requires_grad, w.trainable
        (Parameter(name='w', shape=(2, 3), dtype=float32), True, True)
        >>> (w * 2.0).sum().backward()
        >>> w.grad
        array([[2., 2., 2.],
               [2., 2., 2.]], dtype=float32)
    """

    __slots__ = ("trainable",)

    def __init__(self, data, name: str | None = None, trainable: bool = True):
        super().__init__(data, requires_grad=True, name=name)
        self.trainable = trainable

    def __repr__(self) -> str:
        return f"Parameter(name={self.name!r}, shape={self.shape}, dtype={self.dtype})"


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


class Layer:
    """Base class of all layers.

    Subclasses create weights in ``build(input_shape)`` with :meth:`add_weight` and compute
    outputs in ``call(inputs)`` (optionally ``call(inputs, training=False)``). ``build`` runs on
    the first call, so input sizes are inferred.

    Training and inference mode: ``layer(x, training=True/False)`` chooses explicitly. With
    ``training=None`` (the default) a layer called inside another layer's call takes the outer
    call's mode (Keras' call context: ``fit`` calls the model with ``training=True`` and every
    nested layer follows, even through a subclassed model's ``call`` that does not pass it on);
    a top-level call uses the layer's own mode, set PyTorch-style by :meth:`train` /
    :meth:`eval` and inference by default (as a direct Keras call). ``fit`` passes
    ``training=True`` and ``evaluate``/``predict`` ``training=False`` explicitly, so they never
    change the mode attribute.

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
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        LAYER_CLASSES[cls.__name__] = cls
        cls._call_takes_training = "training" in inspect.signature(cls.call).parameters

    def __init__(self, name: str | None = None, trainable: bool = True, dtype=None):
        self.name = name or unique_name(_snake_case(type(self).__name__))
        self.trainable = trainable
        self.dtype = np.dtype(float_dtype(dtype))
        self.built = False
        self.input_spec: InputSpec | None = None
        self._weights: list[Parameter] = []
        self._losses: list[Tensor] = []
        self._build_shape: tuple | None = None
        self._weight_regularizers: list = []
        self.training = False

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

    def _sublayers(self) -> list[Layer]:
        found = []
        for value in self.__dict__.values():
            if isinstance(value, Layer):
                found.append(value)
            elif isinstance(value, (list, tuple)):
                found.extend(v for v in value if isinstance(v, Layer))
        return found

    def _all_layers(self) -> list[Layer]:
        """This layer and every nested layer, each once, depth first (iteratively)."""
        seen, order, stack = set(), [], [self]
        while stack:
            layer = stack.pop()
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            order.append(layer)
            stack.extend(reversed(layer._sublayers()))
        return order

    @property
    def weights(self) -> list[Parameter]:
        """All weights of this layer and its sublayers (trainable first within each layer)."""
        params, seen = [], set()
        for layer in self._all_layers():
            for p in layer._weights:
                if id(p) not in seen:
                    seen.add(id(p))
                    params.append(p)
        return params

    @property
    def trainable_weights(self) -> list[Parameter]:
        return [p for p in self.weights if p.trainable and self._owner_trainable(p)]

    @property
    def non_trainable_weights(self) -> list[Parameter]:
        trainable = {id(p) for p in self.trainable_weights}
        return [p for p in self.weights if id(p) not in trainable]

    def _owner_trainable(self, param) -> bool:
        for layer in self._all_layers():
            if any(p is param for p in layer._weights):
                return layer.trainable
        return True

    def parameters(self) -> list[Parameter]:
        """The trainable weights, for an optimizer: ``SGD(model.parameters(), ...)``."""
        return self.trainable_weights

    def count_params(self) -> int:
        return int(sum(p.size for p in self.weights))

    def get_weights(self) -> list[np.ndarray]:
        return [p.data.copy() for p in self.weights]

    def set_weights(self, values) -> None:
        params = self.weights
        values = list(values)
        if len(values) != len(params):
            raise ValueError(
                f"{self.name}.set_weights: expected {len(params)} arrays, got {len(values)}"
            )
        for p, v in zip(params, values):
            v = np.asarray(v)
            if v.shape != p.shape:
                raise ValueError(
                    f"{self.name}.set_weights: weight '{p.name}' has shape {p.shape}, "
                    f"got an array of shape {v.shape}"
                )
        for p, v in zip(params, values):
            p.data = np.array(v, dtype=p.dtype, copy=True)

    @property
    def losses(self) -> list[Tensor]:
        """Regularization penalties of the last forward pass (weights and activities)."""
        out = []
        for layer in self._all_layers():
            out.extend(reg(p) for p, reg in layer._weight_regularizers)
            out.extend(layer._losses)
        return out

    # ---------------------------------------------------------------- calling
    def build(self, input_shape: tuple) -> None:
        """Create the weights, knowing the input shape (batch axis included)."""

    def call(self, inputs):
        raise NotImplementedError(f"{type(self).__name__} must implement call(inputs)")

    def __call__(self, inputs, training: bool | None = None, **kwargs):
        if isinstance(inputs, SymbolicTensor):  # functional API: record the call, don't compute
            return inputs.apply(self, kwargs)
        inputs = self._convert_input(inputs)
        if not self.built:
            self._check_input(inputs)
            self._build_shape = tuple(inputs.shape)
            self.build(tuple(inputs.shape))
            self.built = True
        self._check_input(inputs)
        self._losses = []
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
            return self.call(inputs, **kwargs)
        finally:
            _call_context.training = previous

    def _convert_input(self, inputs) -> Tensor:
        if isinstance(inputs, Tensor):
            if inputs.dtype.kind == "f" and inputs.dtype == self.dtype:
                return inputs
            if inputs.dtype.kind in "iuf":
                return cast(inputs, self.dtype)
        array = _as_array(inputs)
        if array.dtype.kind not in "iuf":
            raise TypeError(
                f'Input of layer "{self.name}" has dtype {array.dtype}; expected numbers '
                "(float, or int/uint8 which are cast to the layer's float dtype)"
            )
        # float64 / uint8 data is cast to the layer's dtype, as Keras' autocast does.
        return Tensor(array.astype(self.dtype, copy=False))

    def _check_input(self, inputs: Tensor) -> None:
        spec = self.input_spec
        if spec is None:
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
            if shape[axis] != size:
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


Layer._call_takes_training = False
Layer.training = False  # also for subclasses that set attributes before Layer.__init__


class SymbolicTensor:
    """A placeholder flowing through layers to describe a functional model's graph.

    It carries a shape with ``None`` for the batch axis and the layer call that produced it.

    Example:
        >>> inputs = ember.layers.Input(shape=(4,))
        >>> outputs = ember.layers.Dense(2, name="dense")(inputs)
        >>> outputs
        <SymbolicTensor shape=(None, 2) from 'dense'>
        >>> outputs.inputs[0] is inputs
        True
    """

    def __init__(self, shape: tuple, layer: Layer, inputs: tuple, kwargs: dict | None = None):
        self.shape = shape
        self.layer = layer
        self.inputs = inputs
        self.kwargs = kwargs or {}

    def apply(self, layer: Layer, kwargs: dict) -> SymbolicTensor:
        # Shape inference by running the layer on a zero batch of one sample.
        probe = Tensor(np.zeros((1,) + self.shape[1:], dtype=layer.dtype))
        with no_grad(), shape_inference():
            out = layer(probe, training=False, **kwargs)
        return SymbolicTensor((None,) + tuple(out.shape[1:]), layer, (self,), kwargs)

    def __repr__(self) -> str:
        return f"<SymbolicTensor shape={self.shape} from {self.layer.name!r}>"
