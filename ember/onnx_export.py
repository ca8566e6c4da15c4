"""Export a trained Ember model to ONNX, to run it in ONNX Runtime or any other ONNX runtime.

:func:`export` writes the inference graph of a ``Sequential`` or functional ``Model`` (nested
models included) as one ``.onnx`` file, built with the ``onnx`` package's helper API: the weights
are initializers, the batch axis is dynamic (``"batch"``), variable-length axes declared ``None``
stay dynamic, and ``onnx.checker.check_model`` (with shape inference) validates the result
before it is written atomically. What ``predict`` computes is what the graph computes: dropout,
noise and augmentation layers are the identity and batch normalization uses its moving
statistics. Floating-point tensors are float32 in the graph (the dtype ONNX Runtime's CPU
kernels all support); a float64 model is exported with its weights rounded to float32.

Layout. Ember's images are channels-last (NHWC, Keras) while ONNX's ``Conv`` and pooling
operators are channels-first (NCHW). The exported graph keeps every tensor in Ember's layout,
so that every other layer (``Flatten``, ``Dense`` on the last axis, ``BatchNormalization(axis=-1)``,
``Concatenate(axis=-1)``) maps one-to-one, and wraps each convolution and pooling in a
``Transpose`` pair. The channels-first form of a tensor is remembered: a convolution reading the
output of a convolution or pooling uses its NCHW form directly, and elementwise activations are
applied before the transpose back, so a stack of convolutions and poolings transposes once on
entry and once on exit. (ONNX Runtime's optimizer removes what transposes remain in pairs.)

Layers with an ONNX form: ``Dense``, ``Activation`` and every activation with an ONNX form
(``relu``, ``sigmoid``, ``tanh``, ``softmax``, ``log_softmax``, ``gelu``, ``elu``, ``selu``,
``leaky_relu``, ``softplus``, ``softsign``, ``silu``/``swish``, ``mish``, ``hard_sigmoid``,
``log_sigmoid``, ``arctan``, ``sinc``, ``binary_step``, ``abs_rectifier``...), the activation
layers (``ReLU``, ``LeakyReLU``, ``ELU``, ``PReLU``, ``Softmax``), ``Conv1D``, ``Conv2D``,
``Conv2DTranspose``, ``DepthwiseConv2D``, ``SeparableConv2D``, the max/average poolings (1-D,
2-D, global), ``BatchNormalization``, ``LayerNormalization``, ``Dropout`` and the other
training-only layers, ``Flatten``, ``Reshape``, ``Permute``, ``RepeatVector``, ``ZeroPadding2D``,
``UpSampling2D``, ``Rescaling``, ``Normalization``, ``Masking``, the merge layers (``Add``,
``Subtract``, ``Multiply``, ``Average``, ``Maximum``, ``Minimum``, ``Concatenate``, ``Dot``),
``Embedding`` (``Gather``), ``SimpleRNN``/``LSTM``/``GRU`` and ``RNN`` over their cells (ONNX's
``RNN``/``LSTM``/``GRU`` operators, gates reordered), ``Bidirectional``, ``TimeDistributed``,
``MultiHeadAttention``, ``Attention``, ``AdditiveAttention`` (``MatMul`` and ``Softmax``), and
the Transformer blocks and position embeddings. Anything else — a custom layer, a subclassed
model, the graph layers, masks (``mask_zero=True``) reaching a layer that uses them — raises
:class:`OnnxExportError` naming the layer and its type, before any file is written.

Example:
    >>> import os, tempfile
    >>> import onnxruntime
    >>> model = ember.Sequential([ember.Input(shape=(4,), name="features"),
    ...                           ember.layers.Dense(3, activation="softmax")])
    >>> x = np.random.rand(2, 4).astype("float32")
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = ember.onnx_export.export(model, os.path.join(folder, "model.onnx"))
    ...     session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ...     (probabilities,) = session.run(None, {"features": x})
    >>> bool(np.allclose(probabilities, model.predict(x, verbose=0), atol=1e-6))
    True
"""

from __future__ import annotations

import hashlib
import inspect
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ember import activations as activations_module
from ember import tree
from ember.layers import activation as activation_layers
from ember.layers import attention as attention_layers
from ember.layers import (
    augmentation,
    conv,
    core,
    merging,
    normalization,
    pooling,
    preprocessing,
    recurrent,
    regularization,
    reshaping,
    transformer,
)
from ember.layers.node import SymbolicTensor
from ember.models.saving import write_bytes_atomically
from ember.ops.activations import SELU_ALPHA, SELU_SCALE
from ember.ops.conv import same_padding

__all__ = ["export", "OnnxExportError", "DEFAULT_OPSET", "MIN_OPSET", "exportable_layers"]

DEFAULT_OPSET = 17  # LayerNormalization's opset; read by every ONNX Runtime since 1.14
MIN_OPSET = 14  # Trilu, and the RNN operators' current form
_MAX_PROTOBUF = 2**31 - 2**20  # one protobuf message is at most 2 GiB (leave room for the graph)
_LOWEST = float(np.finfo(np.float32).min)  # a masked score: exp(lowest - max) is exactly 0


class OnnxExportError(ValueError):
    """A model, or one of its layers, that the ONNX export cannot express; the message names
    the layer and its type.

    Example:
        >>> issubclass(ember.onnx_export.OnnxExportError, ValueError)
        True
    """


def _onnx():
    try:
        import onnx
    except ImportError:  # pragma: no cover - the extra is missing
        raise ImportError(
            "ember.onnx_export.export needs the onnx package: pip install 'ember[onnx]' "
            "(or pip install 'onnx>=1.15')"
        ) from None
    return onnx


# ---------------------------------------------------------------------------- values and builder
@dataclass(frozen=True)
class _Value:
    """A tensor of the ONNX graph: its name, Ember's (symbolic) shape and dtype, and whether
    Ember attaches a mask to it (a layer that uses masks would compute something else)."""

    name: str
    shape: tuple
    dtype: np.dtype
    masked: bool = False

    @property
    def ndim(self) -> int:
        return len(self.shape)


def _is_float(dtype) -> bool:
    return np.dtype(dtype).kind == "f"


class _Builder:
    """Collects nodes and initializers, names tensors uniquely (under the current layer's name)
    and knows the opset, so that converters need not."""

    def __init__(self, onnx, opset: int, reserved: set):
        self.onnx = onnx
        self.helper = onnx.helper
        self.opset = opset
        self.nodes: list = []
        self.initializers: list = []
        self._used = set(reserved)
        self._channels_first: dict[str, str] = {}  # NHWC name -> the NCHW tensor it came from
        self._constants: dict[tuple, str] = {}  # content -> name: a shared layer's weights once
        self.scope = "graph"

    def name(self, hint: str) -> str:
        base = f"{self.scope}/{hint}"
        name, count = base, 0
        while name in self._used:
            count += 1
            name = f"{base}_{count}"
        self._used.add(name)
        return name

    def const(self, array, hint: str = "const", dtype=None) -> str:
        """An initializer: float data as float32, integer data as int64 unless ``dtype``."""
        array = np.asarray(array)
        if dtype is None:
            dtype = np.float32 if array.dtype.kind in "fc" else (
                np.bool_ if array.dtype.kind == "b" else np.int64
            )
        array = np.ascontiguousarray(array, dtype=dtype)
        key = (array.dtype.str, array.shape, hashlib.sha256(array.tobytes()).digest())
        if key not in self._constants:
            name = self.name(hint)
            self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
            self._constants[key] = name
        return self._constants[key]

    def ints(self, values, hint: str = "ints") -> str:
        return self.const(np.asarray(list(values), np.int64), hint)

    def op(self, op_type: str, inputs: list, outputs: int = 1, hint: str | None = None, **attrs):
        """Add one node; returns its output name (a list of them for ``outputs > 1``)."""
        while inputs and inputs[-1] == "":  # trailing optional inputs are left out
            inputs = inputs[:-1]
        names = [self.name(f"{hint or op_type}" + (f"_{i}" if outputs > 1 else ""))
                 for i in range(outputs)]
        self.nodes.append(self.helper.make_node(op_type, inputs, names, name=names[0], **attrs))
        return names if outputs > 1 else names[0]

    # ------------------------------------------------------------ operators that moved in opsets
    def reduce(self, op_type: str, x: str, axes, keepdims: bool) -> str:
        """``ReduceMean``/``ReduceMax``/``ReduceSum`` over ``axes`` (an input from opset 18,
        13 for ReduceSum; an attribute before)."""
        axes = [int(a) for a in axes]
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.op(op_type, [x, self.ints(axes, "axes")], keepdims=int(keepdims))
        return self.op(op_type, [x], axes=axes, keepdims=int(keepdims))

    def unsqueeze(self, x: str, axes) -> str:
        return self.op("Unsqueeze", [x, self.ints(axes, "axes")])

    def squeeze(self, x: str, axes) -> str:
        return self.op("Squeeze", [x, self.ints(axes, "axes")])

    def transpose(self, x: str, perm) -> str:
        return self.op("Transpose", [x], perm=[int(p) for p in perm])

    def reshape(self, x: str, shape) -> str:
        """Reshape; 0 copies the input's size on that axis (the dynamic batch), -1 is inferred."""
        return self.op("Reshape", [x, self.ints(shape, "shape")])

    def cast(self, x: str, dtype) -> str:
        return self.op("Cast", [x], to=_onnx_type(self.onnx, dtype))

    def slice(self, x: str, starts, ends, axes, steps=None) -> str:
        inputs = [x, self.ints(starts, "starts"), self.ints(ends, "ends"), self.ints(axes, "axes")]
        if steps is not None:
            inputs.append(self.ints(steps, "steps"))
        return self.op("Slice", inputs)

    def reversed_axis(self, x: str, axis: int) -> str:
        """``x`` read backwards along ``axis`` (a Slice with step -1)."""
        return self.slice(x, [-1], [-(2**63)], [axis], [-1])

    def dims(self, x: str, start: int, end: int) -> str:
        """The 1-D int64 tensor of ``x``'s sizes on axes ``start:end`` (dynamic sizes too)."""
        return self.slice(self.op("Shape", [x]), [start], [end], [0])

    # ------------------------------------------------------------ channels-first and back
    def channels_first(self, x: str, rank: int) -> str:
        """``x`` (channels-last, ``rank`` spatial axes) as NCHW/NCW, reusing a known one."""
        known = self._channels_first.get(x)
        if known is not None:
            return known
        return self.transpose(x, [0, rank + 1, *range(1, rank + 1)])

    def channels_last(self, y: str, rank: int) -> str:
        out = self.transpose(y, [0, *range(2, rank + 2), 1])
        self._channels_first[out] = y
        return out

    def elementwise(self, values: list, build: Callable[[list, bool], str]) -> str:
        """``build(names, channels_first)`` on the values' channels-first forms when they all
        have one (the output of a convolution or pooling), so that a chain of convolutions,
        batch normalizations, activations and residual sums stays channels-first; else on the
        values themselves."""
        firsts = [self._channels_first.get(v.name) for v in values]
        ndims = {v.ndim for v in values}
        if None in firsts or len(ndims) != 1:
            return build([v.name for v in values], False)
        return self.channels_last(build(firsts, True), ndims.pop() - 2)


def _onnx_type(onnx, dtype) -> int:
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return onnx.TensorProto.FLOAT
    return onnx.helper.np_dtype_to_tensor_dtype(dtype)


# ---------------------------------------------------------------------------- activations
def _gelu(b: _Builder, x: str) -> str:
    if b.opset >= 20:
        return b.op("Gelu", [x])
    half_x = b.op("Mul", [x, b.const(0.5)])
    erf = b.op("Erf", [b.op("Mul", [x, b.const(1 / math.sqrt(2.0))])])
    return b.op("Mul", [half_x, b.op("Add", [erf, b.const(1.0)])])


def _mish(b: _Builder, x: str) -> str:
    if b.opset >= 18:
        return b.op("Mish", [x])
    return b.op("Mul", [x, b.op("Tanh", [b.op("Softplus", [x])])])


def _sinc(b: _Builder, x: str) -> str:
    ratio = b.op("Div", [b.op("Sin", [x]), x])  # NaN at 0, where Where picks the 1
    return b.op("Where", [b.op("Equal", [x, b.const(0.0)]), b.const(1.0), ratio])


def _binary_step(b: _Builder, x: str) -> str:
    return b.cast(b.op("GreaterOrEqual", [x, b.const(0.0)]), np.float32)


# Each built-in activation (by its registered name) as ONNX nodes; x is a tensor name.
_ACTIVATIONS: dict[str, Callable[[_Builder, str], str]] = {
    "linear": lambda b, x: x,
    "identity": lambda b, x: x,
    "sigmoid": lambda b, x: b.op("Sigmoid", [x]),
    "tanh": lambda b, x: b.op("Tanh", [x]),
    "relu": lambda b, x: b.op("Relu", [x]),
    "rectifier": lambda b, x: b.op("Relu", [x]),  # its default alpha=0
    "abs_rectifier": lambda b, x: b.op("Abs", [x]),
    "leaky_relu": lambda b, x: b.op("LeakyRelu", [x], alpha=0.01),
    "elu": lambda b, x: b.op("Elu", [x], alpha=1.0),
    "selu": lambda b, x: b.op("Selu", [x], alpha=SELU_ALPHA, gamma=SELU_SCALE),
    "softplus": lambda b, x: b.op("Softplus", [x]),
    "softsign": lambda b, x: b.op("Softsign", [x]),
    "silu": lambda b, x: b.op("Mul", [x, b.op("Sigmoid", [x])]),
    "swish": lambda b, x: b.op("Mul", [x, b.op("Sigmoid", [x])]),
    "mish": _mish,
    "sinc": _sinc,
    "log_sigmoid": lambda b, x: b.op("Neg", [b.op("Softplus", [b.op("Neg", [x])])]),
    "hard_sigmoid": lambda b, x: b.op("HardSigmoid", [x], alpha=1.0 / 6.0, beta=0.5),
    "gelu": _gelu,
    "arctan": lambda b, x: b.op("Atan", [x]),
    "binary_step": _binary_step,
    "softmax": lambda b, x: b.op("Softmax", [x], axis=-1),
    "log_softmax": lambda b, x: b.op("LogSoftmax", [x], axis=-1),
}
_ALONG_AXIS = ("softmax", "log_softmax")  # not elementwise: they need Ember's layout


def _activation_name(fn, layer) -> str:
    name = activations_module.serialize(fn)
    if name is None or name not in _ACTIVATIONS:
        raise OnnxExportError(
            f'ONNX export: layer "{layer.name}" ({type(layer).__name__}) uses the custom '
            f"activation {getattr(fn, '__name__', fn)!r}, which has no ONNX form; use a built-in "
            f"activation name ({', '.join(sorted(_ACTIVATIONS))})"
        )
    return name


def _activate(b: _Builder, fn, x: str, layer) -> str:
    return _ACTIVATIONS[_activation_name(fn, layer)](b, x)


# ---------------------------------------------------------------------------- converter registry
class _Call:
    """One layer call being converted: the layer, its call arguments bound to the parameter
    names of ``layer.call`` (tensors as :class:`_Value`), and the Ember output shapes."""

    def __init__(self, layer, arguments: dict, first: str, out_shapes):
        self.layer = layer
        self.arguments = arguments
        self.first = first
        self.out_shapes = out_shapes

    @property
    def x(self) -> _Value:
        """The first argument (the inputs)."""
        return self.arguments[self.first]

    def get(self, name: str, default=None):
        return self.arguments.get(name, default)

    def refuse(self, why: str) -> OnnxExportError:
        layer = self.layer
        return OnnxExportError(f'ONNX export: layer "{layer.name}" ({type(layer).__name__}) {why}')


_CONVERTERS: dict[type, Callable[[_Builder, _Call], object]] = {}


def _converts(*classes):
    def register(fn):
        for cls in classes:
            _CONVERTERS[cls] = fn
        return fn

    return register


def exportable_layers() -> list[str]:
    """The names of the layer classes :func:`export` converts (a model is exportable when every
    layer is one of these, or a functional/Sequential model made of them).

    Example:
        >>> "LSTM" in ember.onnx_export.exportable_layers()
        True
    """
    return sorted(cls.__name__ for cls in _CONVERTERS)


def _converter_for(layer):
    for cls in type(layer).__mro__:
        fn = _CONVERTERS.get(cls)
        if fn is None:
            continue
        if getattr(type(layer), "call", None) is not cls.call:
            break  # a subclass with its own call computes something the converter does not know
        return fn
    raise OnnxExportError(
        f'ONNX export: layer "{layer.name}" ({type(layer).__name__}) has no ONNX conversion: '
        "ONNX cannot express a layer whose computation is Python code Ember does not know "
        "(ember.onnx_export.exportable_layers() lists the layers it converts)"
    )


def _leaves(structure) -> list:
    return [v for v in tree.flatten(structure) if isinstance(v, _Value)]


def _float_input(b: _Builder, value: _Value) -> _Value:
    """Ember casts integer inputs of most layers to their float dtype (autocast)."""
    if _is_float(value.dtype):
        return value
    return replace(value, name=b.cast(value.name, np.float32), dtype=np.dtype(np.float32))


def _bind(layer, args: list, kwargs: dict) -> tuple[dict, str]:
    signature = inspect.signature(layer.call)
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as exc:  # pragma: no cover - the graph was recorded with these arguments
        raise OnnxExportError(
            f'ONNX export: layer "{layer.name}" ({type(layer).__name__}) was called with '
            f"arguments its call() does not take: {exc}"
        ) from None
    first = next(iter(signature.parameters))
    return dict(bound.arguments), first


def _convert_layer(b: _Builder, layer, args: list, kwargs: dict, out_shapes=None) -> list[str]:
    """Convert one call of ``layer`` on ``args``/``kwargs`` (tensors as :class:`_Value`);
    returns the names of its outputs, flat, in the order of Ember's ``tree.flatten``."""
    from ember.models.model import Model

    if isinstance(layer, Model):
        return _convert_nested_model(b, layer, args)
    fn = _converter_for(layer)
    masked = [v for v in _leaves(args) if v.masked]
    if masked and layer._call_takes_mask:
        raise _mask_refusal(layer)
    if isinstance(kwargs.get("mask"), _Value):
        raise _mask_refusal(layer)
    if layer._autocast_inputs and args:
        args = [tree.map_structure(
            lambda v: _float_input(b, v) if isinstance(v, _Value) else v, args[0]
        ), *args[1:]]
    arguments, first = _bind(layer, args, kwargs)
    outer, b.scope = b.scope, layer.name
    try:
        result = fn(b, _Call(layer, arguments, first, out_shapes))
    finally:
        b.scope = outer
    return list(result) if isinstance(result, (list, tuple)) else [result]


def _mask_refusal(layer) -> OnnxExportError:
    return OnnxExportError(
        f'ONNX export: layer "{layer.name}" ({type(layer).__name__}) receives a mask (from '
        "Embedding(mask_zero=True), Masking or TokenAndPositionEmbedding(mask_zero=True)) that "
        "changes what it computes; the export does not carry masks. Pad without masking, or "
        "feed the mask as an explicit input where the layer takes one (attention_mask)"
    )


# ---------------------------------------------------------------------------- graphs and models
def _convert_graph(b: _Builder, graph, flat_inputs: list[_Value]) -> list[_Value]:
    """Convert a functional graph (a ``Model``'s or ``Sequential``'s) node by node."""
    values: dict[int, _Value] = {}
    for symbol, value in zip(graph.flat_inputs, flat_inputs):
        values[id(symbol)] = _entering(b, symbol, value)

    def real(item):
        return values[id(item)] if isinstance(item, SymbolicTensor) else item

    for node in graph.nodes:
        if not node.flat_inputs:
            continue  # an Input: its value is set above
        if node.training:
            raise OnnxExportError(
                f'ONNX export: layer "{node.layer.name}" ({type(node.layer).__name__}) is called '
                "with training=True in the model's graph, so its output is a training one "
                "(random or batch-dependent); build the model without training=True to export it"
            )
        args = tree.map_structure(real, list(node.args))
        kwargs = tree.map_structure(real, dict(node.kwargs))
        shapes = [s.shape for s in node.flat_outputs]
        names = _convert_layer(b, node.layer, args, kwargs, shapes)
        if len(names) != len(node.flat_outputs):  # pragma: no cover - a converter's bug
            raise AssertionError(f"{node.layer.name}: {len(names)} outputs converted")
        for symbol, name in zip(node.flat_outputs, names):
            values[id(symbol)] = _Value(
                name, symbol.shape, symbol.dtype, symbol._keras_mask is not None
            )
    return [values[id(s)] for s in graph.flat_outputs]


def _entering(b: _Builder, symbol: SymbolicTensor, value: _Value) -> _Value:
    """A value entering a model through its ``Input``, cast to the declared dtype as the
    ``InputLayer`` does."""
    onnx = b.onnx
    if _onnx_type(onnx, value.dtype) == _onnx_type(onnx, symbol.dtype):
        return replace(value, shape=symbol.shape) if value.shape != symbol.shape else value
    if _is_float(value.dtype) and not _is_float(symbol.dtype):
        raise OnnxExportError(
            f'ONNX export: Input "{symbol.layer.name}" is declared as {symbol.dtype} but receives '
            "float values"
        )
    return _Value(b.cast(value.name, symbol.dtype), symbol.shape, symbol.dtype, value.masked)


def _graph_of(model):
    from ember.models.model import Model, Sequential

    graph = getattr(model, "_graph", None)
    if type(model).call not in (Model.call, Sequential.call):
        graph = None  # a subclass with its own call: the recorded graph is not what it computes
    if graph is None:
        kind = type(model).__name__
        if getattr(model, "_stack", None) is not None:
            raise OnnxExportError(
                f'ONNX export: model "{model.name}" ({kind}) has not been built: give it an '
                "input shape (ember.layers.Input(shape=...) first) or call it on a batch, then "
                "export"
            )
        raise OnnxExportError(
            f'ONNX export: model "{model.name}" ({kind}) is a subclassed model: its forward pass '
            "is Python code, which ONNX cannot record. Build it as a Sequential or functional "
            "Model(inputs, outputs) to export it"
        )
    return graph


def _convert_nested_model(b: _Builder, model, args: list) -> list[str]:
    graph = _graph_of(model)
    if any(v.masked for v in _leaves(args)):
        raise _mask_refusal(model)
    flat = graph.match_inputs(args[0], model.name)
    outer, b.scope = b.scope, model.name
    try:
        outputs = _convert_graph(b, graph, flat)
    finally:
        b.scope = outer
    return [v.name for v in outputs]


# ---------------------------------------------------------------------------- core layers
@_converts(core.Dense)
def _dense(b: _Builder, call: _Call):
    layer = call.layer
    y = b.op("MatMul", [call.x.name, b.const(layer.kernel.data, "kernel")])
    if layer.bias is not None:
        y = b.op("Add", [y, b.const(layer.bias.data, "bias")])
    return _activate(b, layer.activation, y, layer)


@_converts(core.Activation)
def _activation(b: _Builder, call: _Call):
    layer = call.layer
    if _activation_name(layer.activation, layer) in _ALONG_AXIS:
        return _activate(b, layer.activation, call.x.name, layer)
    return b.elementwise([call.x], lambda x, _: _activate(b, layer.activation, x[0], layer))


@_converts(
    regularization.Dropout, regularization.SpatialDropout2D, regularization.GaussianNoise,
    regularization.ActivityRegularization, augmentation.RandomFlip,
    augmentation.RandomTranslation, augmentation.RandomRotation,
)  # fmt: skip
def _identity(b: _Builder, call: _Call):
    # Active in training only: the inference output is the input itself.
    return call.x.name


@_converts(core.Flatten)
def _flatten(b: _Builder, call: _Call):
    return b.op("Flatten", [call.x.name], axis=1)


@_converts(reshaping.Reshape)
def _reshape(b: _Builder, call: _Call):
    return b.reshape(call.x.name, [0, *call.layer.target_shape])


@_converts(reshaping.Permute)
def _permute(b: _Builder, call: _Call):
    return b.transpose(call.x.name, [0, *call.layer.dims])


@_converts(reshaping.RepeatVector)
def _repeat_vector(b: _Builder, call: _Call):
    expanded = b.unsqueeze(call.x.name, [1])
    return b.op("Tile", [expanded, b.ints([1, call.layer.n, 1], "repeats")])


@_converts(reshaping.ZeroPadding2D)
def _zero_padding(b: _Builder, call: _Call):
    layer = call.layer
    (top, bottom), (left, right) = layer.padding
    if layer.data_format == "channels_last":
        pads = [0, top, left, 0, 0, bottom, right, 0]
    else:
        pads = [0, 0, top, left, 0, 0, bottom, right]
    return b.op("Pad", [call.x.name, b.ints(pads, "pads")], mode="constant")


@_converts(reshaping.UpSampling2D)
def _upsampling(b: _Builder, call: _Call):
    layer = call.layer
    sh, sw = layer.size
    scales = [1, sh, sw, 1] if layer.data_format == "channels_last" else [1, 1, sh, sw]
    # nearest with "asymmetric" coordinates and floor: output pixel i reads input i // size
    return b.op(
        "Resize", [call.x.name, "", b.const(np.asarray(scales, np.float32), "scales")],
        mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor",
    )  # fmt: skip


@_converts(core.Embedding)
def _embedding(b: _Builder, call: _Call):
    ids = call.x
    index = ids.name if ids.dtype.kind in "iu" else b.cast(ids.name, np.int64)
    return b.op("Gather", [b.const(call.layer.embeddings.data, "embeddings"), index], axis=0)


@_converts(core.Masking)
def _masking(b: _Builder, call: _Call):
    x = call.x.name
    differs = b.op("Not", [b.op("Equal", [x, b.const(call.layer.mask_value)])])
    keep = b.reduce("ReduceMax", b.cast(differs, np.float32), [-1], keepdims=True)
    return b.op("Mul", [x, keep])


@_converts(preprocessing.Rescaling)
def _rescaling(b: _Builder, call: _Call):
    layer = call.layer
    scaled = b.op("Mul", [call.x.name, b.const(np.asarray(layer.scale), "scale")])
    return b.op("Add", [scaled, b.const(np.asarray(layer.offset), "offset")])


@_converts(preprocessing.Normalization)
def _normalization(b: _Builder, call: _Call):
    layer = call.layer
    if not layer.adapted:
        raise call.refuse("has no statistics yet: adapt() it or give mean= and variance=")
    # the constants exactly as the layer's call computes them
    mean = layer.mean.data.reshape(layer._broadcast)
    std = np.maximum(np.sqrt(layer.variance.data), layer.dtype.type(preprocessing.EPSILON))
    std = std.reshape(layer._broadcast)
    mean, std = b.const(mean, "mean"), b.const(std, "std")
    if layer.invert:
        return b.op("Add", [b.op("Mul", [call.x.name, std]), mean])
    return b.op("Div", [b.op("Sub", [call.x.name, mean]), std])


# ---------------------------------------------------------------------------- activation layers
@_converts(activation_layers.ReLU)
def _relu_layer(b: _Builder, call: _Call):
    return b.elementwise([call.x], lambda x, _: _relu_nodes(b, call.layer, x[0]))


def _relu_nodes(b: _Builder, layer, x: str) -> str:
    if layer.threshold == 0.0:
        out = (
            b.op("Relu", [x]) if layer.negative_slope == 0.0
            else b.op("LeakyRelu", [x], alpha=layer.negative_slope)
        )  # fmt: skip
    else:
        shifted = b.op("Sub", [x, b.const(layer.threshold)])
        below = b.op("Mul", [shifted, b.const(layer.negative_slope)])
        above = b.op("GreaterOrEqual", [x, b.const(layer.threshold)])
        out = b.op("Where", [above, x, below])
    if layer.max_value is not None:
        out = b.op("Min", [out, b.const(layer.max_value)])
    return out


@_converts(activation_layers.LeakyReLU)
def _leaky_relu_layer(b: _Builder, call: _Call):
    slope = call.layer.negative_slope
    return b.elementwise([call.x], lambda x, _: b.op("LeakyRelu", x, alpha=slope))


@_converts(activation_layers.ELU)
def _elu_layer(b: _Builder, call: _Call):
    alpha = call.layer.alpha
    return b.elementwise([call.x], lambda x, _: b.op("Elu", x, alpha=alpha))


@_converts(activation_layers.PReLU)
def _prelu_layer(b: _Builder, call: _Call):
    return b.op("PRelu", [call.x.name, b.const(call.layer.alpha.data, "alpha")])


@_converts(activation_layers.Softmax)
def _softmax_layer(b: _Builder, call: _Call):
    return b.op("Softmax", [call.x.name], axis=call.layer.axis)


# ---------------------------------------------------------------------------- normalization
@_converts(normalization.BatchNormalization)
def _batch_norm(b: _Builder, call: _Call):
    # Inference: (x − mean) · scale + β, Ember's order, with scale = γ / sqrt(var + ε)
    layer, x = call.layer, call.x
    dtype = layer.moving_mean.dtype
    inv_std = 1.0 / np.sqrt(layer.moving_variance.data + dtype.type(layer.epsilon))
    scale = inv_std if layer.gamma is None else inv_std * layer.gamma.data
    constants = [layer.moving_mean.data, scale, None if layer.beta is None else layer.beta.data]

    def build(names: list, first: bool) -> str:
        # channels-first, the per-channel constants are (C, 1, ..., 1)
        shape = (-1, *[1] * (x.ndim - 2)) if first else layer._stat_shape
        mean, factor, beta = [None if c is None else np.reshape(c, shape) for c in constants]
        out = b.op("Sub", [names[0], b.const(mean, "mean")])
        out = b.op("Mul", [out, b.const(factor, "scale")])
        return out if beta is None else b.op("Add", [out, b.const(beta, "beta")])

    if layer._axis == x.ndim - 1 and x.ndim > 2:
        return b.elementwise([x], build)
    return build([x.name], False)


@_converts(normalization.LayerNormalization)
def _layer_norm(b: _Builder, call: _Call):
    layer, x = call.layer, call.x
    axes = layer._axes
    trailing = axes == tuple(range(axes[0], x.ndim))
    if trailing and b.opset >= 17:
        shape = tuple(x.shape[a] for a in axes)
        gamma = layer.gamma.data if layer.gamma is not None else np.ones(shape, np.float32)
        inputs = [x.name, b.const(gamma, "gamma")]
        if layer.beta is not None:
            inputs.append(b.const(layer.beta.data, "beta"))
        return b.op("LayerNormalization", inputs, axis=axes[0], epsilon=layer.epsilon)
    # Before opset 17, or over axes that do not end the shape: the two-pass formula
    mean = b.reduce("ReduceMean", x.name, axes, keepdims=True)
    centred = b.op("Sub", [x.name, mean])
    variance = b.reduce("ReduceMean", b.op("Mul", [centred, centred]), axes, keepdims=True)
    std = b.op("Sqrt", [b.op("Add", [variance, b.const(layer.epsilon)])])
    out = b.op("Div", [centred, std])
    if layer.gamma is not None:
        out = b.op("Mul", [out, b.const(layer.gamma.data.reshape(layer._param_shape), "gamma")])
    if layer.beta is not None:
        out = b.op("Add", [out, b.const(layer.beta.data.reshape(layer._param_shape), "beta")])
    return out


# ---------------------------------------------------------------------------- merging
def _chain(b: _Builder, op_type: str, names: list[str]) -> str:
    """``((a op b) op c) ...``: the order in which Ember combines them."""
    out = names[0]
    for name in names[1:]:
        out = b.op(op_type, [out, name])
    return out


def _merge(op_type: str):
    def convert(b: _Builder, call: _Call):
        values = list(call.x)
        return b.elementwise(values, lambda names, _: _chain(b, op_type, names))

    return convert


_converts(merging.Add)(_merge("Add"))
_converts(merging.Subtract)(_merge("Sub"))
_converts(merging.Multiply)(_merge("Mul"))
_converts(merging.Maximum)(_merge("Max"))
_converts(merging.Minimum)(_merge("Min"))


@_converts(merging.Average)
def _average(b: _Builder, call: _Call):
    values = list(call.x)
    return b.elementwise(values, lambda names, _: b.op(
        "Mul", [_chain(b, "Add", names), b.const(1.0 / len(names))]
    ))


@_converts(merging.Concatenate)
def _concatenate(b: _Builder, call: _Call):
    return b.op("Concat", [v.name for v in call.x], axis=call.layer.axis)


@_converts(merging.Dot)
def _dot(b: _Builder, call: _Call):
    # Ember's batch dot: x as (batch, rows, n), y as (batch, n, columns), one MatMul
    layer = call.layer
    x, y = call.x
    ax, ay = layer._dot_axes([x.shape, y.shape])
    if any(s is None for s in (*x.shape[1:], *y.shape[1:])):
        raise call.refuse("needs inputs with fixed sizes (besides the batch axis) to export")
    xn, yn = x.name, y.name
    if layer.normalize:
        xn, yn = _l2_normalize(b, xn, ax), _l2_normalize(b, yn, ay)
    n = x.shape[ax]
    x_rest = [s for i, s in enumerate(x.shape) if i not in (0, ax)]
    y_rest = [s for i, s in enumerate(y.shape) if i not in (0, ay)]
    xn = b.transpose(xn, [0] + [i for i in range(1, x.ndim) if i != ax] + [ax])
    yn = b.transpose(yn, [0, ay] + [i for i in range(1, y.ndim) if i != ay])
    xn = b.reshape(xn, [0, math.prod(x_rest), n])
    yn = b.reshape(yn, [0, n, math.prod(y_rest)])
    out = b.op("MatMul", [xn, yn])
    return b.reshape(out, [0, *x_rest, *y_rest] if x_rest or y_rest else [0, 1])


def _l2_normalize(b: _Builder, x: str, axis: int) -> str:
    squared = b.reduce("ReduceSum", b.op("Mul", [x, x]), [axis], keepdims=True)
    return b.op("Div", [x, b.op("Sqrt", [b.op("Max", [squared, b.const(1e-12)])])])


# ---------------------------------------------------------------------------- convolutions
def _spatial_pads(layer, x: _Value, kernel, strides, dilation) -> dict:
    """ONNX's pads (all begins, then all ends) for Ember's padding of a conv or pooling."""
    rank = len(kernel)
    if layer.padding == "valid":
        return {"pads": [0] * (2 * rank)}
    if layer.padding == "causal":  # Conv1D: everything on the left
        return {"pads": [(kernel[0] - 1) * dilation[0], 0]}
    first = getattr(layer, "data_format", "channels_last") == "channels_first"
    sizes = x.shape[2:] if first else x.shape[1:-1]
    if any(s is None for s in sizes):
        return {"auto_pad": "SAME_UPPER"}  # TensorFlow's rule too: the odd unit at the end
    pairs = [same_padding(n, k, s, d) for n, k, s, d in zip(sizes, kernel, strides, dilation)]
    return {"pads": [p[0] for p in pairs] + [p[1] for p in pairs]}


def _to_first(b: _Builder, layer, x: str, rank: int) -> str:
    return x if layer.data_format == "channels_first" else b.channels_first(x, rank)


def _to_last(b: _Builder, layer, y: str, rank: int) -> str:
    return y if layer.data_format == "channels_first" else b.channels_last(y, rank)


def _conv_weight(layer) -> np.ndarray:
    """The kernel in ONNX's (out, in / groups, *spatial) layout."""
    kernel = np.asarray(layer.kernel.data)
    if isinstance(layer, conv.DepthwiseConv2D):  # (kh, kw, C, M) -> (C*M, 1, kh, kw)
        kh, kw, c, m = kernel.shape
        return kernel.reshape(kh, kw, 1, c * m).transpose(3, 2, 0, 1)
    if isinstance(layer, conv.Conv2DTranspose):  # (kh, kw, out, in) -> (in, out, kh, kw)
        return kernel.transpose(3, 2, 0, 1)
    axes = tuple(range(kernel.ndim))  # (*spatial, in, out) -> (out, in, *spatial)
    return kernel.transpose(axes[-1], axes[-2], *axes[:-2])


def _conv_attrs(layer, x: _Value) -> dict:
    attrs = _spatial_pads(layer, x, layer.kernel_size, layer.strides, layer.dilation_rate)
    attrs.update(strides=list(layer.strides), dilations=list(layer.dilation_rate))
    return attrs


def _finish_conv(b: _Builder, layer, y: str, rank: int) -> str:
    """Bias is in; apply the activation (elementwise ones while channels-first) and return to
    Ember's layout."""
    name = _activation_name(layer.activation, layer)
    if name not in _ALONG_AXIS:
        return _to_last(b, layer, _ACTIVATIONS[name](b, y), rank)
    return _ACTIVATIONS[name](b, _to_last(b, layer, y, rank))


@_converts(conv.Conv1D, conv.Conv2D, conv.DepthwiseConv2D)
def _conv(b: _Builder, call: _Call):
    layer, x = call.layer, call.x
    rank = layer.rank
    inputs = [_to_first(b, layer, x.name, rank), b.const(_conv_weight(layer), "kernel")]
    if layer.bias is not None:
        inputs.append(b.const(layer.bias.data, "bias"))
    group = 1
    if isinstance(layer, conv.DepthwiseConv2D):
        group = x.shape[1 if layer.data_format == "channels_first" else -1]
    y = b.op("Conv", inputs, group=group, **_conv_attrs(layer, x))
    return _finish_conv(b, layer, y, rank)


@_converts(conv.SeparableConv2D)
def _separable_conv(b: _Builder, call: _Call):
    layer, x = call.layer, call.x
    channels = x.shape[1 if layer.data_format == "channels_first" else -1]
    kh, kw, c, m = layer.depthwise_kernel.shape
    depthwise = np.asarray(layer.depthwise_kernel.data).reshape(kh, kw, 1, c * m)
    y = b.op(
        "Conv", [_to_first(b, layer, x.name, 2), b.const(depthwise.transpose(3, 2, 0, 1))],
        group=channels, **_conv_attrs(layer, x),
    )  # fmt: skip
    pointwise = [y, b.const(np.asarray(layer.pointwise_kernel.data).transpose(3, 2, 0, 1))]
    if layer.bias is not None:
        pointwise.append(b.const(layer.bias.data, "bias"))
    return _finish_conv(b, layer, b.op("Conv", pointwise), 2)


@_converts(conv.Conv2DTranspose)
def _conv_transpose(b: _Builder, call: _Call):
    layer, x = call.layer, call.x
    effective = [(k - 1) * d + 1 for k, d in zip(layer.kernel_size, layer.dilation_rate)]
    if layer.padding == "same":  # Ember crops max(k_eff - s, 0), the odd unit at the end
        totals = [max(e - s, 0) for e, s in zip(effective, layer.strides)]
        pads = [t // 2 for t in totals] + [t - t // 2 for t in totals]
    else:
        pads = [0, 0, 0, 0]
    inputs = [_to_first(b, layer, x.name, 2), b.const(_conv_weight(layer), "kernel")]
    if layer.bias is not None:
        inputs.append(b.const(layer.bias.data, "bias"))
    y = b.op(
        "ConvTranspose", inputs, pads=pads, strides=list(layer.strides),
        dilations=list(layer.dilation_rate),
    )  # fmt: skip
    return _finish_conv(b, layer, y, 2)


# ---------------------------------------------------------------------------- pooling
@_converts(
    pooling.MaxPooling1D, pooling.MaxPooling2D, pooling.AveragePooling1D,
    pooling.AveragePooling2D,
)  # fmt: skip
def _pool(b: _Builder, call: _Call):
    layer, x = call.layer, call.x
    rank = layer.rank
    op_type = "MaxPool" if layer._op.__name__ == "max_pool2d" else "AveragePool"
    attrs = _spatial_pads(layer, x, layer.pool_size, layer.strides, (1,) * rank)
    # Ember's "same" average leaves the padding out of the count (ONNX's default too)
    y = b.op(
        op_type, [_to_first(b, layer, x.name, rank)], kernel_shape=list(layer.pool_size),
        strides=list(layer.strides), **attrs,
    )  # fmt: skip
    return _to_last(b, layer, y, rank)


@_converts(
    pooling.GlobalAveragePooling1D, pooling.GlobalAveragePooling2D,
    pooling.GlobalMaxPooling1D, pooling.GlobalMaxPooling2D,
)  # fmt: skip
def _global_pool(b: _Builder, call: _Call):
    layer = call.layer
    spatial = list(range(1, layer.rank + 1))
    if layer.data_format == "channels_first":
        spatial = [a + 1 for a in spatial]
    op_type = "ReduceMax" if layer._reduce.__name__ == "max" else "ReduceMean"
    return b.reduce(op_type, call.x.name, spatial, keepdims=layer.keepdims)


# ---------------------------------------------------------------------------- recurrent layers
# ONNX's names for the activations its RNN operators take (ONNX Runtime's subset)
_RNN_ACTIVATIONS = {
    "sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu", "softsign": "Softsign",
    "softplus": "Softplus",
}  # fmt: skip
_LSTM_GATES = (0, 3, 1, 2)  # Keras i, f, c, o -> ONNX i, o, f, c
_CELLS = (recurrent.SimpleRNNCell, recurrent.LSTMCell, recurrent.GRUCell)


def _rnn_activation(call: _Call, cell, fn) -> str:
    name = activations_module.serialize(fn)
    if name not in _RNN_ACTIVATIONS:
        raise call.refuse(
            f"uses the activation {name or fn!r} in its cell, which ONNX's recurrent operators "
            f"do not take; they take {', '.join(sorted(_RNN_ACTIVATIONS))}"
        )
    return _RNN_ACTIVATIONS[name]


def _gate_blocks(matrix: np.ndarray, units: int, order) -> np.ndarray:
    """Keras' (inputs, gates·units) matrix as ONNX's (1, gates·units, inputs), gates reordered."""
    blocks = [matrix[:, g * units : (g + 1) * units] for g in order]
    return np.concatenate(blocks, axis=1).T[None]


def _cell_weights(cell) -> tuple[str, list[np.ndarray], dict]:
    """The ONNX operator, its W, R, B and attributes for one built-in cell."""
    units = cell.units
    kernel, recurrent_kernel = np.asarray(cell.kernel.data), np.asarray(cell.recurrent_kernel.data)
    bias = None if cell.bias is None else np.asarray(cell.bias.data)
    if isinstance(cell, recurrent.LSTMCell):
        order, op_type, attrs = _LSTM_GATES, "LSTM", {}
    elif isinstance(cell, recurrent.GRUCell):
        order, op_type = (0, 1, 2), "GRU"  # z, r, h in both
        attrs = {"linear_before_reset": int(cell.reset_after)}
    else:
        order, op_type, attrs = (0,), "RNN", {}
    w = _gate_blocks(kernel, units, order)
    r = _gate_blocks(recurrent_kernel, units, order)
    width = len(order) * units
    if bias is None:
        b_in = b_rec = np.zeros(width, kernel.dtype)
    elif bias.ndim == 2:  # GRU reset_after: the input bias and the recurrent bias
        b_in, b_rec = bias[0], bias[1]
    else:
        b_in, b_rec = bias, np.zeros(width, bias.dtype)
    b = np.concatenate([_gate_blocks(b_in[None], units, order)[0, :, 0],
                        _gate_blocks(b_rec[None], units, order)[0, :, 0]])[None]
    return op_type, [w, r, b], attrs


def _run_cell(b: _Builder, call: _Call, cell, steps: str, states: list | None):
    """One ONNX recurrent node over ``steps`` (time-major); returns the time-major outputs and
    the final states (batch, units)."""
    if type(cell) not in _CELLS:
        raise call.refuse(
            f"runs the cell {cell.name!r} ({type(cell).__name__}); only SimpleRNNCell, LSTMCell "
            "and GRUCell have ONNX operators"
        )
    op_type, (w, r, bias), attrs = _cell_weights(cell)
    names = [_rnn_activation(call, cell, cell.activation)]
    if op_type != "RNN":
        gate = _rnn_activation(call, cell, cell.recurrent_activation)
        names = [gate, names[0], names[0]] if op_type == "LSTM" else [gate, names[0]]
    inputs = [steps, b.const(w, "W"), b.const(r, "R"), b.const(bias, "B"), ""]
    count = 2 if op_type == "LSTM" else 1
    if states is not None:
        inputs += [b.unsqueeze(s.name, [0]) for s in states]
    outputs = b.op(op_type, inputs, outputs=1 + count, hidden_size=cell.units,
                   activations=names, **attrs)  # fmt: skip
    sequence = b.squeeze(outputs[0], [1])  # (time, 1 direction, batch, units) -> (time, ...)
    return sequence, [b.squeeze(s, [0]) for s in outputs[1:]]


def _cells_of(layer) -> list:
    cell = layer.cell
    return list(cell.cells) if isinstance(cell, recurrent.StackedRNNCells) else [cell]


@_converts(recurrent.RNN, recurrent.SimpleRNN, recurrent.LSTM, recurrent.GRU)
def _rnn(b: _Builder, call: _Call):
    layer = call.layer
    if layer.stateful:
        raise call.refuse("is stateful (it carries states from batch to batch); ONNX graphs do not")
    x = call.x.name
    if layer.go_backwards:  # Ember reads the sequence reversed and returns it in that order
        x = b.reversed_axis(x, 1)
    steps = b.transpose(x, [1, 0, 2])  # ONNX's time-major layout
    given = call.get("initial_state")
    if given is not None:
        given = list(given) if isinstance(given, (list, tuple)) else [given]
    final = []
    for cell in _cells_of(layer):
        own = None
        if given is not None:
            count = len(recurrent.StackedRNNCells._sizes(cell))
            own, given = given[:count], given[count:]
        steps, states = _run_cell(b, call, cell, steps, own)
        final += states
    if layer.return_sequences:
        result = b.transpose(steps, [1, 0, 2])
    else:
        result = final[0] if len(_cells_of(layer)) == 1 else _last_output(b, steps)
    return [result, *final] if layer.return_state else result


def _last_output(b: _Builder, steps: str) -> str:
    return b.squeeze(b.slice(steps, [-1], [2**62], [0]), [0])


@_converts(recurrent.Bidirectional)
def _bidirectional(b: _Builder, call: _Call):
    layer = call.layer
    given = call.get("initial_state")
    halves = [None, None]
    if given is not None:
        half = len(given) // 2
        halves = [list(given[:half]), list(given[half:])]
    results = []
    for direction, states in zip((layer.forward_layer, layer.backward_layer), halves):
        kwargs = {} if states is None else {"initial_state": states}
        results.append(_convert_layer(b, direction, [call.x], kwargs))
    (forward, *forward_states), (backward, *backward_states) = results
    if layer.return_sequences:
        backward = b.reversed_axis(backward, 1)  # back in forward time order
    mode = layer.merge_mode
    if mode is None:
        merged = [forward, backward]
    elif mode == "concat":
        merged = [b.op("Concat", [forward, backward], axis=-1)]
    elif mode == "ave":
        merged = [b.op("Mul", [b.op("Add", [forward, backward]), b.const(0.5)])]
    else:
        merged = [b.op({"sum": "Add", "mul": "Mul"}[mode], [forward, backward])]
    states = [*forward_states, *backward_states] if layer.return_state else []
    return [*merged, *states]


@_converts(recurrent.TimeDistributed)
def _time_distributed(b: _Builder, call: _Call):
    layer, x = call.layer, call.x
    inner_shape, out_shape = x.shape[2:], (call.out_shapes or [None])[0]
    if any(s is None for s in inner_shape) or out_shape is None or None in out_shape[2:]:
        raise call.refuse("needs fixed sizes after the time axis to export")
    merged = b.reshape(x.name, [-1, *inner_shape])  # (batch * time, ...)
    inner = _Value(merged, (None, *inner_shape), x.dtype)
    (out,) = _convert_layer(b, layer.layer, [inner], {}, [(None, *out_shape[2:])])
    target = b.op("Concat", [b.dims(x.name, 0, 2), b.ints(out_shape[2:], "sizes")], axis=0)
    return b.op("Reshape", [out, target])


# ---------------------------------------------------------------------------- attention
def _causal_keep(b: _Builder, scores: str) -> str:
    """Bool (L, S): query i may see key j <= i (the lower triangle of the scores' last axes)."""
    ones = b.op("ConstantOfShape", [b.dims(scores, -2, 2**62)],
                value=b.onnx.numpy_helper.from_array(np.ones(1, np.float32)))  # fmt: skip
    return b.cast(b.op("Trilu", [ones], upper=0), np.bool_)


def _masked_softmax(b: _Builder, scores: str, keep: str | None) -> str:
    """Ember's masked softmax: masked entries exactly 0, a row with no kept entry all 0."""
    if keep is None:
        return b.op("Softmax", [scores], axis=-1)
    blocked = b.op("Where", [keep, scores, b.const(_LOWEST)])
    weights = b.op("Softmax", [blocked], axis=-1)
    return b.op("Mul", [weights, b.cast(keep, np.float32)])


def _combine_keep(b: _Builder, *parts) -> str | None:
    parts = [p for p in parts if p is not None]
    keep = parts[0] if parts else None
    for part in parts[1:]:
        keep = b.op("And", [keep, part])
    return keep


def _heads(b: _Builder, x: str, kernel, bias, perm) -> str:
    """(batch, length, features) -> heads, as MultiHeadAttention projects (one MatMul)."""
    features, heads, dim = kernel.shape
    y = b.op("MatMul", [x, b.const(np.asarray(kernel.data).reshape(features, heads * dim))])
    if bias is not None:
        y = b.op("Add", [y, b.const(np.asarray(bias.data).reshape(heads * dim))])
    return b.transpose(b.reshape(y, [0, 0, heads, dim]), perm)


@_converts(attention_layers.MultiHeadAttention)
def _multi_head_attention(b: _Builder, call: _Call):
    layer = call.layer
    query, value = call.get("query"), call.get("value")
    key = call.get("key") or value
    for name in ("query_mask", "value_mask", "key_mask", "cache"):
        if call.get(name) is not None:
            raise call.refuse(f"is called with {name}=, which the export does not support")
    if query.masked or value.masked or key.masked:
        raise _mask_refusal(layer)
    q = _heads(b, query.name, layer.query_kernel, layer.query_bias, [0, 2, 1, 3])
    k = _heads(b, key.name, layer.key_kernel, layer.key_bias, [0, 2, 3, 1])  # (N, H, D, S)
    v = _heads(b, value.name, layer.value_kernel, layer.value_bias, [0, 2, 1, 3])
    scores = b.op("MatMul", [q, k])
    scores = b.op("Mul", [scores, b.const(1.0 / math.sqrt(layer.key_dim))])
    explicit = call.get("attention_mask")
    if explicit is not None:  # (batch, L, S), True = may attend; the same for every head
        explicit = b.unsqueeze(b.cast(explicit.name, np.bool_), [1])
    causal = _causal_keep(b, scores) if call.get("use_causal_mask") else None
    weights = _masked_softmax(b, scores, _combine_keep(b, explicit, causal))
    attended = b.transpose(b.op("MatMul", [weights, v]), [0, 2, 1, 3])
    merged = b.reshape(attended, [0, 0, layer.num_heads * layer.value_dim])
    kernel = np.asarray(layer.output_kernel.data)
    out = b.op("MatMul", [merged, b.const(kernel.reshape(-1, kernel.shape[-1]), "output")])
    if layer.output_bias is not None:
        out = b.op("Add", [out, b.const(layer.output_bias.data, "output_bias")])
    return [out, weights] if call.get("return_attention_scores") else out


@_converts(attention_layers.Attention, attention_layers.AdditiveAttention)
def _score_attention(b: _Builder, call: _Call):
    layer = call.layer
    parts = list(call.x)
    query, value = parts[0], parts[1]
    key = parts[2] if len(parts) == 3 else value
    if isinstance(layer, attention_layers.AdditiveAttention) or layer.score_mode == "concat":
        summed = b.op("Add", [b.unsqueeze(query.name, [2]), b.unsqueeze(key.name, [1])])
        is_additive = isinstance(layer, attention_layers.AdditiveAttention)
        if not is_additive and layer.scale is not None:
            summed = b.op("Mul", [summed, b.const(layer.scale.data, "scale")])
        summed = b.op("Tanh", [summed])
        if is_additive and layer.scale is not None:
            summed = b.op("Mul", [summed, b.const(layer.scale.data, "scale")])
        scores = b.reduce("ReduceSum", summed, [-1], keepdims=False)
        if not is_additive:
            weight = b.const(layer.concat_score_weight.data, "concat_score_weight")
            scores = b.op("Mul", [weight, scores])
    else:
        scores = b.op("MatMul", [query.name, b.transpose(key.name, [0, 2, 1])])
        if layer.scale is not None:
            scores = b.op("Mul", [scores, b.const(layer.scale.data, "scale")])
    keep = _causal_keep(b, scores) if call.get("use_causal_mask") else None
    weights = _masked_softmax(b, scores, keep)
    out = b.op("MatMul", [weights, value.name])
    return [out, weights] if call.get("return_attention_scores") else out


# ---------------------------------------------------------------------------- transformer blocks
def _sub(b: _Builder, layer, *args: _Value, **kwargs) -> _Value:
    """Convert a sub-layer of a block; its output has the shape of its first input."""
    (name,) = _convert_layer(b, layer, list(args), kwargs)
    return replace(args[0], name=name, masked=False)


def _residual(b: _Builder, block, x: _Value, norm, sublayer) -> _Value:
    """``norm(x + sublayer(x))``, or ``x + sublayer(norm(x))`` pre-norm (dropout: inference)."""
    inner = _sub(b, norm, x) if block.normalize_first else x
    out = replace(x, name=b.op("Add", [x.name, sublayer(inner).name]))
    return out if block.normalize_first else _sub(b, norm, out)


def _feedforward(b: _Builder, block, x: _Value) -> _Value:
    def network(h):
        return _sub(b, block.feedforward_output, _sub(b, block.feedforward_intermediate, h))

    return _residual(b, block, x, block.feedforward_norm, network)


def _no_masks(call: _Call, *names: str) -> None:
    if call.x.masked or any(call.get(n) is not None for n in names):
        raise _mask_refusal(call.layer)


@_converts(transformer.TransformerEncoder)
def _transformer_encoder(b: _Builder, call: _Call):
    block = call.layer
    _no_masks(call, "padding_mask")
    explicit = call.get("attention_mask")
    extra = {} if explicit is None else {"attention_mask": explicit}

    def attend(h):
        return _sub(b, block.self_attention, h, h, **extra)

    x = _residual(b, block, call.x, block.self_attention_norm, attend)
    return _feedforward(b, block, x).name


@_converts(transformer.TransformerDecoder)
def _transformer_decoder(b: _Builder, call: _Call):
    block = call.layer
    _no_masks(call, "decoder_padding_mask", "encoder_padding_mask")
    if call.get("cache") is not None:
        raise call.refuse("is called with a key/value cache, which the export does not support")
    extra = {"use_causal_mask": bool(call.get("use_causal_mask", True))}
    if call.get("decoder_attention_mask") is not None:
        extra["attention_mask"] = call.get("decoder_attention_mask")

    def attend_self(h):
        return _sub(b, block.self_attention, h, h, **extra)

    x = _residual(b, block, call.x, block.self_attention_norm, attend_self)
    memory = call.get("encoder_sequence")
    if memory is not None:
        if memory.masked:
            raise _mask_refusal(block)
        cross = {}
        if call.get("encoder_attention_mask") is not None:
            cross["attention_mask"] = call.get("encoder_attention_mask")

        def attend_memory(h):
            return _sub(b, block.cross_attention, h, memory, **cross)

        x = _residual(b, block, x, block.cross_attention_norm, attend_memory)
    return _feedforward(b, block, x).name


def _start_index(call: _Call) -> int:
    start = call.get("start_index", 0)
    if isinstance(start, _Value):
        raise call.refuse("is called with a tensor start_index; the export takes an integer")
    return int(start)


@_converts(transformer.PositionEmbedding)
def _position_embedding(b: _Builder, call: _Call):
    start, x = _start_index(call), call.x.name
    length = b.dims(x, -2, -1)
    end = b.op("Add", [length, b.ints([start], "start")])
    table = b.const(call.layer.position_embeddings.data, "embeddings")
    rows = b.op("Slice", [table, b.ints([start], "starts"), end, b.ints([0], "axes")])
    return b.op("Expand", [rows, b.op("Shape", [x])])  # rows + zeros_like(inputs)


@_converts(transformer.SinePositionEncoding)
def _sine_position_encoding(b: _Builder, call: _Call):
    # Computed in double as Ember does (positions may be dynamic), then rounded to float32
    layer, start, x = call.layer, _start_index(call), call.x
    features = x.shape[-1]
    if features is None:
        raise call.refuse("needs a fixed feature size to export")
    length = b.squeeze(b.dims(x.name, -2, -1), [0])  # a scalar, as Range takes
    first = b.const(np.int64(start), "start")
    end = b.op("Add", [length, first])
    positions = b.op("Range", [first, end, b.const(np.int64(1), "delta")])
    double = b.onnx.TensorProto.DOUBLE
    positions = b.unsqueeze(b.op("Cast", [positions], to=double), [1])
    pair = np.arange(features) // 2 * 2
    denominator = layer.max_wavelength ** (pair / features)
    angles = b.op("Div", [positions, b.const(denominator, "denominator", dtype=np.float64)])
    even = b.const(np.arange(features) % 2 == 0, "even")
    encoding = b.op("Where", [even, b.op("Sin", [angles]), b.op("Cos", [angles])])
    encoding = b.op("Cast", [encoding], to=b.onnx.TensorProto.FLOAT)
    return b.op("Expand", [encoding, b.op("Shape", [x.name])])


@_converts(transformer.TokenAndPositionEmbedding)
def _token_and_position(b: _Builder, call: _Call):
    layer = call.layer
    tokens = _sub(b, layer.token_embedding, call.x)
    tokens = replace(tokens, shape=(*call.x.shape, layer.embedding_dim), dtype=np.dtype("float32"))
    kwargs = {"start_index": _start_index(call)}
    positions = _sub(b, layer.position_embedding, tokens, **kwargs)
    return b.op("Add", [tokens.name, positions.name])


# ---------------------------------------------------------------------------- the model
def _check_opset(opset, onnx) -> int:
    if opset is None:
        return DEFAULT_OPSET
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)):
        raise TypeError(f"export: opset must be an integer or None, got {opset!r}")
    if not MIN_OPSET <= opset <= newest:
        raise ValueError(
            f"export: opset must be between {MIN_OPSET} and {newest} (the newest this onnx "
            f"package knows), got {opset}"
        )
    return int(opset)


def _input_shapes(graph, input_shapes) -> list[tuple]:
    """Per-sample shapes of the graph's inputs: the declared ones, with ``None`` axes fixed
    where ``input_shapes`` gives sizes."""
    declared = [tuple(t.shape[1:]) for t in graph.flat_inputs]
    if input_shapes is None:
        return declared
    given = input_shapes
    if isinstance(given, dict):
        missing = [n for n in graph.input_names if n not in given]
        if missing or len(given) != len(declared):
            raise ValueError(
                f"export: input_shapes must give a shape for each input {graph.input_names}, "
                f"got keys {sorted(given)}"
            )
        given = [given[n] for n in graph.input_names]
    elif len(declared) == 1 and given and not isinstance(given[0], (list, tuple)):
        given = [given]
    if not isinstance(given, (list, tuple)) or len(given) != len(declared):
        raise ValueError(
            f"export: input_shapes must hold {len(declared)} per-sample shape(s) (batch axis "
            f"excluded) for the inputs {graph.input_names}, got {input_shapes!r}"
        )
    shapes = []
    for name, want, got in zip(graph.input_names, declared, given):
        got = tuple(None if s is None else int(s) for s in got)
        fits = len(got) == len(want) and all(
            w is None or g == w for w, g in zip(want, got)
        ) and all(g is None or g > 0 for g in got)
        if not fits:
            raise ValueError(
                f"export: input_shapes for input {name!r} must match its declared per-sample "
                f"shape {want} (sizes may replace None), got {got}"
            )
        shapes.append(got)
    return shapes


def _tensor_info(onnx, name: str, dtype, shape: tuple, dynamic: str):
    dims = ["batch"] + [
        f"{dynamic}_dim{axis}" if (s is None and dynamic) else s
        for axis, s in enumerate(shape, start=1)
    ]
    return onnx.helper.make_tensor_value_info(name, _onnx_type(onnx, dtype), dims)


def _prune(nodes: list, initializers: list, outputs: list[str]) -> tuple[list, list]:
    """Drop the nodes (and constants) no output depends on, e.g. unused transposes."""
    needed = set(outputs)
    kept = []
    for node in reversed(nodes):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(i for i in node.input if i)
    return kept[::-1], [t for t in initializers if t.name in needed]


def _build_model(model, opset: int, input_shapes, onnx):
    graph = _graph_of(model)
    in_names, out_names = list(graph.input_names), list(graph.output_names or [])
    if len(out_names) != len(graph.flat_outputs):  # pragma: no cover - names come from layers
        out_names = [f"output_{i}" for i in range(len(graph.flat_outputs))]
    # an output that is an input passed through keeps the input's name: ONNX names are unique
    out_names = [f"{n}_output" if n in in_names else n for n in out_names]
    b = _Builder(onnx, opset, set(in_names) | set(out_names))
    shapes = _input_shapes(graph, input_shapes)
    inputs, infos = [], []
    for name, symbol, shape in zip(in_names, graph.flat_inputs, shapes):
        inputs.append(_Value(name, (None, *shape), symbol.dtype))
        infos.append(_tensor_info(onnx, name, symbol.dtype, shape, name))
    outputs = _convert_graph(b, graph, inputs)
    nodes, out_infos = b.nodes, []
    for name, value in zip(out_names, outputs):
        nodes.append(onnx.helper.make_node("Identity", [value.name], [name], name=name))
        out_infos.append(_tensor_info(onnx, name, value.dtype, value.shape[1:], ""))
    nodes, initializers = _prune(nodes, b.initializers, out_names)
    size = sum(t.ByteSize() for t in initializers)
    if size > _MAX_PROTOBUF:
        raise ValueError(
            f'export: model "{model.name}" has {size / 2**30:.2f} GiB of weights; one ONNX file '
            "holds at most 2 GiB (protobuf's limit)"
        )
    onnx_graph = onnx.helper.make_graph(
        nodes, model.name, infos, out_infos, initializer=initializers
    )
    opsets = [onnx.helper.make_opsetid("", opset)]
    result = onnx.helper.make_model(
        onnx_graph, opset_imports=opsets, producer_name="ember",
        ir_version=onnx.helper.find_min_ir_version_for(opsets),
    )  # fmt: skip
    onnx.checker.check_model(result, full_check=True)
    return result


def export(model, path, opset: int | None = None, input_shapes=None) -> Path:
    """Write ``model``'s inference graph to ``path`` as an ONNX model; returns the path.

    Args:
        model: a built ``Sequential`` or functional ``Model`` (nested models are inlined).
        path: the file to write (``str`` or path-like), atomically; parent directories are made.
        opset: the ONNX opset (default :data:`DEFAULT_OPSET` = 17; from :data:`MIN_OPSET` = 14
            up to the newest the installed ``onnx`` knows). Newer opsets use ONNX's ``Gelu``
            (20) and ``Mish`` (18) operators; older ones write them out.
        input_shapes: optional per-sample shapes (batch axis excluded) of the inputs — one tuple
            for a one-input model, a list in input order or a dict by input name — to fix the
            axes the model declares ``None`` (the other sizes must match). By default those axes
            stay dynamic. The batch axis is always dynamic.

    The graph's inputs and outputs are named like the model's (``model.input_names``,
    ``model.output_names``); outputs equal ``model.predict``'s within float32 rounding.

    Raises:
        OnnxExportError: a layer (named in the message) ONNX cannot express, a subclassed or
            unbuilt model, or a mask reaching a layer that uses it. Nothing is written.
        TypeError, ValueError: bad arguments.

    Example:
        >>> import os, tempfile
        >>> import onnx
        >>> inputs = ember.Input(shape=(8, 8, 1), name="image")
        >>> x = ember.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
        >>> x = ember.layers.GlobalAveragePooling2D()(x)
        >>> model = ember.Model(inputs, ember.layers.Dense(10, name="digit")(x))
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = ember.onnx_export.export(model, os.path.join(folder, "cnn.onnx"))
        ...     graph = onnx.load(str(path)).graph
        >>> [i.name for i in graph.input], [o.name for o in graph.output]
        (['image'], ['digit'])
        >>> [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
        ['batch', 8, 8, 1]
    """
    from ember.models.model import Model

    onnx = _onnx()
    if not isinstance(model, Model):
        raise TypeError(
            "export: model must be an ember Model or Sequential, got "
            f"{type(model).__name__}; a single layer can be wrapped: "
            "ember.Sequential([ember.Input(shape=...), layer])"
        )
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"export: path must be a str or path-like, got {type(path).__name__}")
    target = Path(os.path.expanduser(os.fspath(path)))
    if target.is_dir():
        raise ValueError(f"export: path must be a file, '{target}' is a directory")
    opset = _check_opset(opset, onnx)
    proto = _build_model(model, opset, input_shapes, onnx)
    write_bytes_atomically(target, proto.SerializeToString())
    return target
