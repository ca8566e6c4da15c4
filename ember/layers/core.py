"""Core layers: Dense, Activation, Flatten, and Input for declaring shapes (functional API)."""

from __future__ import annotations

import math

import numpy as np

from ember import activations as activations_module
from ember import initializers as initializers_module
from ember import ops
from ember import regularizers as regularizers_module
from ember.layers.base import InputSpec, Layer, check_positive_int, per_sample_shape
from ember.layers.node import Node, SymbolicTensor
from ember.tensor import Tensor


class Dense(Layer):
    """A fully connected layer: ``activation(inputs @ kernel + bias)``.

    The input size is inferred on the first call; inputs with more than two axes are transformed
    along the last one (Keras' behaviour).

    Args:
        units: number of outputs (> 0).
        activation: a name (``"relu"``), a callable or ``None`` (linear).
        use_bias: add a learned bias.
        kernel_initializer, bias_initializer: names or initializer objects.
        kernel_regularizer, bias_regularizer, activity_regularizer: penalties added to the loss
            (names such as ``"l2"`` or ``ember.regularizers`` objects). The activity penalty is
            applied to the layer's output (after the activation) and divided by the batch size,
            as tf.keras does, so its weight does not depend on ``batch_size`` (Keras 3 sums it).

    Example:
        >>> layer = ember.layers.Dense(3, activation="relu")
        >>> layer(np.ones((2, 4))).shape
        (2, 3)
    """

    _single_input = True
    supports_masking = True

    def __init__(
        self,
        units: int,
        activation=None,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(
                f'Layer "{self.name}": units must be a positive integer, got {units!r}'
            )
        self.units = int(units)
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
        self.input_spec = InputSpec(min_ndim=2)

    def build(self, input_shape):
        in_features = input_shape[-1]
        self.kernel = self.add_weight(
            (in_features, self.units),
            self.kernel_initializer,
            name="kernel",
            regularizer=self.kernel_regularizer,
        )
        self.bias = (
            self.add_weight(
                (self.units,), self.bias_initializer, name="bias", regularizer=self.bias_regularizer
            )
            if self.use_bias
            else None
        )
        self.input_spec = InputSpec(min_ndim=2, axes={-1: in_features})

    def call(self, inputs):
        out = self.activation(ops.linear(inputs, self.kernel, self.bias))
        if self.activity_regularizer is not None:
            # a batch of zero samples has a zero penalty, not 0/0
            self._losses.append(self.activity_regularizer(out) / max(out.shape[0], 1))
        return out

    def get_config(self):
        return {**super().get_config(), "units": self.units, **weight_options_config(self)}

    @classmethod
    def from_config(cls, config):
        return cls(**weight_options_from_config(config))


def set_weight_options(
    layer,
    activation,
    use_bias,
    kernel_initializer,
    bias_initializer,
    kernel_regularizer,
    bias_regularizer,
    activity_regularizer,
) -> None:
    """Resolve and store the options of a layer with a kernel (Dense and the convolutions)."""
    if isinstance(activation, (int, np.integer)) and not isinstance(activation, bool):
        kind = type(layer).__name__
        raise TypeError(
            f'Layer "{layer.name}" ({kind}): got the integer {activation} as activation. Keras-'
            f"style layers take only the output size; the input size is inferred on the first "
            f"call: PyTorch's Linear(in_features, out_features) is Dense(out_features), PyTorch "
            f"Geometric's GCNConv(in_channels, out_channels) is GCNConv(out_channels)"
        )
    layer.activation = activations_module.get(activation)
    layer.use_bias = bool(use_bias)
    layer.kernel_initializer = initializers_module.get(kernel_initializer)
    layer.bias_initializer = initializers_module.get(bias_initializer)
    layer.kernel_regularizer = regularizers_module.get(kernel_regularizer)
    layer.bias_regularizer = regularizers_module.get(bias_regularizer)
    layer.activity_regularizer = regularizers_module.get(activity_regularizer)


def weight_options_config(layer) -> dict:
    """The config entries of a layer with a kernel: activation, use_bias, initializers and
    regularizers (shared by Dense and the convolutions)."""
    return {
        "activation": _activation_name(layer.activation, layer.name),
        "use_bias": layer.use_bias,
        "kernel_initializer": initializers_module.serialize(layer.kernel_initializer),
        "bias_initializer": initializers_module.serialize(layer.bias_initializer),
        "kernel_regularizer": regularizers_module.serialize(layer.kernel_regularizer),
        "bias_regularizer": regularizers_module.serialize(layer.bias_regularizer),
        "activity_regularizer": regularizers_module.serialize(layer.activity_regularizer),
    }


def weight_options_from_config(config: dict) -> dict:
    """Constructor arguments from a config: every ``*_initializer`` and ``*_regularizer`` entry
    rebuilt from its serialized form (a missing bias initializer means zeros, any other the
    Glorot-uniform default)."""
    config = dict(config)
    for key, value in config.items():
        if key.endswith("_initializer"):
            default = "zeros" if key.startswith("bias") else "glorot_uniform"
            config[key] = initializers_module.deserialize(value, default)
        elif key.endswith("_regularizer"):
            config[key] = regularizers_module.deserialize(value)
    return config


def _activation_name(fn, layer_name: str) -> str:
    name = activations_module.serialize(fn)
    if name is None:
        raise ValueError(
            f'Layer "{layer_name}" uses a custom activation {fn!r} that cannot be saved by name; '
            "use a built-in activation name or save_weights() instead"
        )
    return name


class Activation(Layer):
    """Applies an activation function.

    Example:
        >>> ember.layers.Activation("softmax")(ember.tensor([[0.0, 0.0]]))
        tensor([[0.5, 0.5]])
    """

    _single_input = True
    supports_masking = True

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations_module.get(activation)

    def call(self, inputs):
        return self.activation(inputs)

    def get_config(self):
        return {**super().get_config(), "activation": _activation_name(self.activation, self.name)}


class Flatten(Layer):
    """Flattens every axis but the batch axis: ``(N, 28, 28)`` → ``(N, 784)``.

    A 1-D input ``(N,)`` (one value per sample) becomes ``(N, 1)``, as in Keras; a batch of zero
    samples gives ``(0, features)``. A scalar has no batch axis and raises ``ValueError``.

    Example:
        >>> ember.layers.Flatten()(np.zeros((2, 8, 8))).shape
        (2, 64)
    """

    _single_input = True

    def call(self, inputs):
        if inputs.ndim == 0:
            raise ValueError(
                f'Layer "{self.name}" (Flatten) expects a batch axis: an input of shape '
                f"(batch, ...) with at least 1 axis, got a scalar (shape {tuple(inputs.shape)})"
            )
        # The size is spelled out: NumPy cannot resolve -1 when there are zero samples.
        return ops.reshape(inputs, (inputs.shape[0], math.prod(inputs.shape[1:])))


class Embedding(Layer):
    """Turns integer ids into dense vectors: ``(batch, *ids)`` → ``(batch, *ids, output_dim)``.

    Args:
        input_dim: size of the vocabulary (ids lie in ``[0, input_dim)``; others raise
            ``ValueError``).
        output_dim: size of each vector.
        embeddings_initializer: Keras' default ``"uniform"`` (U(-0.05, 0.05)).
        embeddings_regularizer: a penalty on the table (``"l2"``, …).
        mask_zero: id 0 is padding: the output carries a mask (``False`` where the id is 0)
            that the layers after it (RNNs, attention, pooling, losses) respect. The vocabulary
            must then reserve 0, as in Keras.

    The gradient of an id used several times in a batch is the sum over its uses.

    Example:
        >>> embed = ember.layers.Embedding(10, 3, mask_zero=True)
        >>> out = embed(np.array([[4, 2, 0]]))
        >>> out.shape, out._keras_mask
        ((1, 3, 3), tensor([[ True,  True, False]], dtype=bool))
    """

    _single_input = True
    _autocast_inputs = False  # ids stay integers

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        embeddings_initializer="uniform",
        embeddings_regularizer=None,
        mask_zero: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.input_dim = check_positive_int(self, "input_dim", input_dim)
        self.output_dim = check_positive_int(self, "output_dim", output_dim)
        self.embeddings_initializer = initializers_module.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers_module.get(embeddings_regularizer)
        self.mask_zero = bool(mask_zero)
        self.supports_masking = self.mask_zero

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            (self.input_dim, self.output_dim),
            self.embeddings_initializer,
            name="embeddings",
            regularizer=self.embeddings_regularizer,
        )

    def call(self, inputs):
        return ops.embedding(inputs, self.embeddings, name=f'Layer "{self.name}" (Embedding)')

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        ids = inputs.data if isinstance(inputs, Tensor) else np.asarray(inputs)
        return Tensor(ids != 0)

    def get_config(self):
        return {
            **super().get_config(),
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": initializers_module.serialize(self.embeddings_initializer),
            "embeddings_regularizer": regularizers_module.serialize(self.embeddings_regularizer),
            "mask_zero": self.mask_zero,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**weight_options_from_config(config))


class Masking(Layer):
    """Masks the time steps whose features all equal ``mask_value`` (Keras' ``Masking``).

    For inputs ``(batch, time, features)`` a step is masked when every feature equals
    ``mask_value``; the output is the input with masked steps set to zero, and carries the mask
    ``(batch, time)`` for the layers after it.

    Example:
        >>> x = np.array([[[1.0, 2.0], [0.0, 0.0], [3.0, 0.0]]])
        >>> ember.layers.Masking(0.0)(x)._keras_mask
        tensor([[ True, False,  True]], dtype=bool)
    """

    _single_input = True
    supports_masking = True

    def __init__(self, mask_value: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = float(mask_value)

    def compute_mask(self, inputs, mask=None):
        if inputs.ndim < 2:
            raise ValueError(
                f'Layer "{self.name}" (Masking) expects (batch, time, ...) inputs, got shape '
                f"{inputs.shape}"
            )
        return Tensor((inputs.data != self.mask_value).any(axis=-1))

    def call(self, inputs):
        keep = (inputs.data != self.mask_value).any(axis=-1, keepdims=True)
        return inputs * keep.astype(inputs.dtype)

    def get_config(self):
        return {**super().get_config(), "mask_value": self.mask_value}


class InputLayer(Layer):
    """Declares the per-sample input shape (and dtype) of a model (created by :func:`Input`).

    ``None`` in the shape marks a variable-length axis (``(None, 4)``: sequences of any length).

    Example:
        >>> model = ember.models.Sequential([ember.layers.InputLayer((3,)), ember.layers.Dense(2)])
        >>> model(np.ones((4, 3), np.float32)).shape
        (4, 2)
        >>> ember.layers.InputLayer((3,), name="features")(np.ones((2, 4), np.float32))
        Traceback (most recent call last):
        ...
        ValueError: Input 0 of layer "features" is incompatible with the layer: expected axis 1 ...
    """

    _single_input = True
    _autocast_inputs = False  # the declared dtype decides (integer indices stay integers)

    def __init__(self, shape=None, input_dtype=None, batch_size=None, **kwargs):
        dtype = kwargs.pop("dtype", None)
        if input_dtype is None:
            input_dtype = dtype
        # The layer's own dtype is a float one; the data it declares may be integer.
        float_kind = input_dtype is None or np.dtype(input_dtype).kind == "f"
        super().__init__(dtype=input_dtype if float_kind else None, **kwargs)
        if shape is None:
            raise TypeError(f'InputLayer "{self.name}" needs a shape, e.g. shape=(784,)')
        self.shape = per_sample_shape(shape, f'Input "{self.name}"')
        self.batch_size = None if batch_size is None else int(batch_size)
        self.input_dtype = self.dtype if input_dtype is None else np.dtype(input_dtype)
        if self.input_dtype.kind not in "biuf":
            raise TypeError(
                f'Input "{self.name}": dtype must be a number type (float32, int32, ...), got '
                f"{self.input_dtype}"
            )
        self.input_spec = InputSpec(
            ndim=len(self.shape) + 1, axes={i + 1: s for i, s in enumerate(self.shape)}
        )
        self.built = True

    @property
    def input(self):
        """An input layer's input is its output: the model's symbolic input."""
        return input_symbol(self)

    def call(self, inputs):
        if inputs.dtype != self.input_dtype and inputs.dtype.kind in "biuf":
            if self.input_dtype.kind in "iub" and inputs.dtype.kind == "f":
                raise TypeError(
                    f'Input "{self.name}" is declared as {self.input_dtype} but received float '
                    f"data ({inputs.dtype}); pass integer data or declare Input(dtype=...)"
                )
            return ops.cast(inputs, self.input_dtype)
        return inputs

    def get_config(self):
        config = {**super().get_config(), "shape": [s for s in self.shape]}
        config["input_dtype"] = self.input_dtype.name
        if self.batch_size is not None:
            config["batch_size"] = self.batch_size
        return config


def Input(  # noqa: N802 (Keras' name)
    shape=None, batch_size=None, dtype=None, name: str | None = None, batch_shape=None
) -> SymbolicTensor:
    """Declare a model input of per-sample ``shape`` (batch axis excluded).

    ``None`` marks a variable-length axis; ``dtype="int32"`` declares integer data (token ids).

    Example:
        >>> inputs = ember.layers.Input(shape=(784,))
        >>> outputs = ember.layers.Dense(10)(inputs)
        >>> model = ember.models.Model(inputs, outputs)
        >>> ember.layers.Input(shape=(None, 4), dtype="float64", name="sequence")
        <SymbolicTensor shape=(None, None, 4) dtype=float64 from 'sequence'>
    """
    if shape is None and batch_shape is not None:
        shape = tuple(batch_shape)[1:]
        batch_size = tuple(batch_shape)[0]
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
        or batch_size <= 0
    ):
        raise ValueError(f"Input: batch_size must be a positive integer, got {batch_size!r}")
    return input_symbol(
        InputLayer(shape, input_dtype=dtype, name=name, batch_size=batch_size)
    )


def input_symbol(layer: InputLayer) -> SymbolicTensor:
    """The symbolic tensor an ``InputLayer`` produces (made once, then reused)."""
    if layer._inbound_nodes:
        return layer._inbound_nodes[0].outputs
    node = Node(layer, (), {}, None)
    symbol = SymbolicTensor((layer.batch_size,) + layer.shape, layer.input_dtype, node, 0)
    node.outputs, node.flat_outputs = symbol, [symbol]
    layer._inbound_nodes.append(node)
    return symbol
