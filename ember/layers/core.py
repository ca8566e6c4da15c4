"""Core layers: Dense, Activation, Flatten, and Input for declaring shapes (functional API)."""

from __future__ import annotations

import numpy as np

from ember import activations as activations_module
from ember import initializers as initializers_module
from ember import ops
from ember import regularizers as regularizers_module
from ember.layers.base import InputSpec, Layer, SymbolicTensor


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
            self._losses.append(self.activity_regularizer(out) / out.shape[0])
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

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations_module.get(activation)

    def call(self, inputs):
        return self.activation(inputs)

    def get_config(self):
        return {**super().get_config(), "activation": _activation_name(self.activation, self.name)}


class Flatten(Layer):
    """Flattens every axis but the batch axis: ``(N, 28, 28)`` → ``(N, 784)``.

    Example:
        >>> ember.layers.Flatten()(np.zeros((2, 8, 8))).shape
        (2, 64)
    """

    def call(self, inputs):
        return ops.reshape(inputs, (inputs.shape[0], -1))


class InputLayer(Layer):
    """Declares the per-sample input shape of a model (created by :func:`Input`).

    Example:
        >>> model = ember.models.Sequential([ember.layers.InputLayer((3,)), ember.layers.Dense(2)])
        >>> model(np.ones((4, 3), np.float32)).shape
        (4, 2)
        >>> ember.layers.InputLayer((3,), name="features")(np.ones((2, 4), np.float32))
        Traceback (most recent call last):
        ...
        ValueError: Input 0 of layer "features" is incompatible with the layer: expected axis 1 ...
    """

    def __init__(self, shape, **kwargs):
        super().__init__(**kwargs)
        self.shape = tuple(int(s) for s in shape)
        if any(s <= 0 for s in self.shape):
            raise ValueError(f"Input shape must contain positive sizes, got {shape}")
        self.input_spec = InputSpec(
            ndim=len(self.shape) + 1, axes={i + 1: s for i, s in enumerate(self.shape)}
        )

    def call(self, inputs):
        return inputs

    def get_config(self):
        return {**super().get_config(), "shape": list(self.shape)}


def Input(shape, name: str | None = None, dtype=None) -> SymbolicTensor:  # noqa: N802 (Keras)
    """Declare a model input of per-sample ``shape`` (batch axis excluded).

    Example:
        >>> inputs = ember.layers.Input(shape=(784,))
        >>> outputs = ember.layers.Dense(10)(inputs)
        >>> model = ember.models.Model(inputs, outputs)
    """
    if isinstance(shape, int):
        shape = (shape,)
    layer = InputLayer(shape, name=name, dtype=dtype)
    layer.built = True
    return SymbolicTensor((None,) + layer.shape, layer, ())
