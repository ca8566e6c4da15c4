"""Batches of zero samples (reliability catalogue B6) and inputs without a batch axis.

A batch of 0 rows is legitimate data (the empty tail of a filtered dataset, a bucket with no
members): every layer must map ``(0, ...)`` to ``(0, ...)`` with the trailing shape it gives a
normal batch, without NumPy warnings, and its backward must run. The exceptions, each a clear
``ValueError``:

* ``BatchNormalization`` in training mode: batch statistics of zero values do not exist (the
  mean is 0/0). Ember already refuses a single value per channel, as PyTorch does ("expected more
  than 1 value per channel when training"); zero values are refused by the same check, with the
  same message naming the layer. Inference mode (moving statistics) works on 0 rows.
* ``evaluate`` / ``fit`` on an empty ``x``: there is nothing to average or learn from, so they
  refuse with "x is empty (0 samples)"; ``predict`` returns an empty ``(0, outputs)`` array.
"""

from __future__ import annotations

import contextlib
import inspect
import warnings

import numpy as np
import pytest

import ember
from ember import layers

# Names of ember.layers.__all__ that are not layer classes to push a batch through.
_NOT_LAYERS = {"Layer", "InputSpec", "Parameter", "Input", "InputLayer", "SymbolicTensor"}
_MERGE = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot"}
_INTEGER_INPUTS = {"Embedding", "TokenAndPositionEmbedding"}  # ids: their own tests below
# Several inputs (query and value), or an output that is a constant: their own test below
# (position layers' outputs do not depend on the input's values: no input gradient)
_OWN_TEST = {"MultiHeadAttention", "Attention", "AdditiveAttention", "SinePositionEncoding",
             "PositionEmbedding"}
# cells: call(inputs, states), their own test below
_CELLS = {"SimpleRNNCell", "LSTMCell", "GRUCell", "StackedRNNCells"}
# graph layers: call(node_features, edge_index), their own test below (a graph of zero nodes);
# MessagePassing is the base class users subclass
_GRAPH = {"GCNConv", "SAGEConv", "GATConv", "GlobalGraphPooling", "MessagePassing"}

# class name -> configurations (constructor kwargs, per-sample input shape). The first row of each
# class is its plain configuration; further rows cover the index arithmetic that could go wrong on
# an empty batch (strides, padding, dilation, layouts, noise shapes, regularizers...).
_CASES: dict[str, list[tuple[dict, tuple]]] = {
    "Dense": [
        ({"units": 3}, (4,)),
        ({"units": 3, "activation": "relu"}, (5, 4)),  # 3-D input: along the last axis
        ({"units": 3, "activity_regularizer": "l2", "kernel_regularizer": "l1"}, (4,)),
    ],
    "Activation": [({"activation": "relu"}, (4,)), ({"activation": "softmax"}, (2, 4))],
    "Flatten": [({}, (3, 4)), ({}, (2, 3, 4)), ({}, ())],  # (N,) -> (N, 1)
    "BatchNormalization": [({}, (4,)), ({"axis": 1}, (3, 4, 4))],
    "LayerNormalization": [({}, (4,)), ({"axis": [1, 2]}, (3, 4))],
    "Dropout": [({"rate": 0.5, "seed": 1}, (4,)), ({"rate": 0.5, "noise_shape": [None, 1]}, (4,))],
    "GaussianNoise": [({"stddev": 0.1, "seed": 1}, (4,))],
    "ActivityRegularization": [({"l1": 0.01, "l2": 0.1}, (4,))],
    "PReLU": [({}, (4,)), ({"shared_axes": [1, 2]}, (3, 3, 2))],
    "LeakyReLU": [({}, (4,))],
    "ELU": [({}, (4,))],
    "ReLU": [({"max_value": 1.0}, (4,))],
    "Softmax": [({}, (4,)), ({"axis": 1}, (3, 4))],
    "Normalization": [({"mean": 0.5, "variance": 2.0}, (4,)), ({"mean": 1.0, "variance": 4.0,
                                                              "invert": True}, (3, 2))],
    "Conv1D": [
        ({"filters": 2, "kernel_size": 3}, (8, 3)),
        ({"filters": 2, "kernel_size": 3, "padding": "causal", "dilation_rate": 2}, (8, 3)),
        ({"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"}, (8, 3)),
    ],
    "Conv2D": [
        ({"filters": 2, "kernel_size": 3}, (6, 6, 3)),
        ({"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same",
          "activation": "relu"}, (7, 7, 3)),
        ({"filters": 2, "kernel_size": 3, "dilation_rate": 2}, (7, 7, 3)),
        ({"filters": 2, "kernel_size": 3, "data_format": "channels_first",
          "activity_regularizer": "l2"}, (3, 6, 6)),
    ],
    "Conv2DTranspose": [
        ({"filters": 2, "kernel_size": 3}, (5, 5, 3)),
        ({"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"}, (4, 4, 3)),
    ],
    "DepthwiseConv2D": [
        ({"kernel_size": 3}, (6, 6, 3)),
        ({"kernel_size": 3, "strides": 2, "padding": "same", "depth_multiplier": 2}, (6, 6, 3)),
    ],
    "SeparableConv2D": [({"filters": 2, "kernel_size": 3}, (6, 6, 3))],
    "MaxPooling1D": [({}, (8, 3)), ({"pool_size": 3, "strides": 2, "padding": "same"}, (7, 3))],
    "MaxPooling2D": [
        ({}, (6, 6, 3)),
        ({"pool_size": 3, "strides": 2, "padding": "same"}, (7, 7, 3)),
        ({"data_format": "channels_first"}, (3, 6, 6)),
    ],
    "AveragePooling1D": [({}, (8, 3))],
    "AveragePooling2D": [({}, (6, 6, 3)), ({"pool_size": 3, "padding": "same"}, (7, 7, 3))],
    "GlobalAveragePooling1D": [({}, (8, 3)), ({"keepdims": True}, (8, 3))],
    "GlobalAveragePooling2D": [({}, (6, 6, 3)), ({"data_format": "channels_first"}, (3, 6, 6))],
    "GlobalMaxPooling1D": [({}, (8, 3)), ({"keepdims": True}, (8, 3))],
    "GlobalMaxPooling2D": [({}, (6, 6, 3)), ({"data_format": "channels_first"}, (3, 6, 6))],
    "Reshape": [({"target_shape": (12,)}, (3, 4)), ({"target_shape": (2, -1)}, (3, 4))],
    "ZeroPadding2D": [({}, (4, 4, 3)), ({"padding": ((1, 2), (0, 1))}, (4, 4, 3))],
    "UpSampling2D": [({}, (4, 4, 3)), ({"size": (2, 3), "data_format": "channels_first"},
                                       (3, 4, 4))],
    "SpatialDropout2D": [({"rate": 0.5, "seed": 1}, (4, 4, 3))],
    "RandomFlip": [({"seed": 1}, (4, 4, 3)), ({"mode": "horizontal", "seed": 1}, (4, 4, 3))],
    "RandomTranslation": [
        ({"height_factor": 0.2, "width_factor": 0.2, "seed": 1}, (6, 6, 3)),
        ({"height_factor": 0.3, "width_factor": 0.3, "fill_mode": "constant", "seed": 1},
         (6, 6, 3)),
    ],
    "RandomRotation": [
        ({"factor": 0.2, "seed": 1}, (6, 6, 3)),
        ({"factor": (-0.1, 0.3), "fill_mode": "constant", "fill_value": 1.0,
          "interpolation": "nearest", "data_format": "channels_first", "seed": 1}, (3, 6, 5)),
    ],
    "RNN": [({"cell": layers.GRUCell(3, reset_after=False)}, (5, 4)),
            ({"cell": [layers.LSTMCell(3), layers.SimpleRNNCell(2)], "return_sequences": True},
             (5, 4))],
    "SimpleRNN": [({"units": 3}, (5, 4)), ({"units": 3, "activation": "sigmoid"}, (5, 4))],
    "LSTM": [({"units": 3, "return_sequences": True}, (5, 4)),
             ({"units": 3, "dropout": 0.5, "recurrent_dropout": 0.5, "seed": 1}, (5, 4))],
    "GRU": [({"units": 3, "go_backwards": True}, (5, 4))],
    "Bidirectional": [({"layer": layers.LSTM(3, return_sequences=True)}, (5, 4)),
                      ({"layer": layers.GRU(3), "merge_mode": "ave"}, (5, 4))],
    "TimeDistributed": [({"layer": layers.Dense(2)}, (5, 4))],
    "TransformerEncoder": [({"intermediate_dim": 8, "num_heads": 2}, (5, 4)),
                           ({"intermediate_dim": 8, "num_heads": 2, "normalize_first": True,
                             "dropout": 0.5}, (5, 4))],
    "TransformerDecoder": [({"intermediate_dim": 8, "num_heads": 2}, (5, 4))],
    "RepeatVector": [({"n": 3}, (4,))],
    "Permute": [({"dims": (2, 1)}, (5, 4)), ({"dims": (3, 1, 2)}, (2, 3, 4))],
    "Masking": [({}, (3, 4)), ({"mask_value": 1.0}, (3, 4))],
    "Rescaling": [({"scale": 1 / 255}, (4,)),
                  ({"scale": [1.0, 2.0, 3.0], "offset": [0.0, -1.0, 0.5]}, (4, 4, 3))],
    "Resizing": [
        ({"height": 8, "width": 8}, (4, 4, 3)),
        ({"height": 3, "width": 5, "interpolation": "nearest", "crop_to_aspect_ratio": True,
          "data_format": "channels_first"}, (3, 6, 4)),
        ({"height": 4, "width": 4, "pad_to_aspect_ratio": True, "fill_value": 1.0}, (6, 3, 2)),
    ],
}


def _layer_classes() -> list[str]:
    names = []
    for name in layers.__all__:
        obj = getattr(layers, name)
        skipped = _NOT_LAYERS | _MERGE | _INTEGER_INPUTS | _CELLS | _OWN_TEST | _GRAPH
        if name in skipped or not inspect.isclass(obj):
            continue  # helpers, functional forms (add, concatenate...) and merge layers
        names.append(name)
    return names


@contextlib.contextmanager
def _strict():
    """Any NumPy floating-point warning (0/0, overflow...) or Python warning is an error."""
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def test_zero_row_table_has_no_stale_rows():
    stale = sorted(set(_CASES) - set(_layer_classes()))
    assert not stale, f"_CASES rows for names ember.layers does not export: {stale}"


def _run_zero_rows(name: str, kwargs: dict, shape: tuple, training: bool):
    rng = np.random.default_rng(0)
    layer = getattr(layers, name)(**kwargs)
    normal = layer(rng.standard_normal((3, *shape)).astype(np.float32), training=False)
    weights_before = [w.data.copy() for w in layer.weights]

    empty = ember.Tensor(np.zeros((0, *shape), np.float32), requires_grad=True)
    with _strict():
        out = layer(empty, training=training)
        losses = [float(loss.item()) for loss in layer.losses]
        out.sum().backward()
    assert out.shape == (0, *normal.shape[1:]), (
        f"{name}{kwargs}: zero rows gave shape {out.shape}, a normal batch {normal.shape}"
    )
    assert out.dtype == normal.dtype == np.float32
    assert empty.grad is not None and empty.grad.shape == empty.shape
    assert empty.grad.dtype == np.float32
    for w in layer.trainable_weights:  # no samples: nothing to learn, but no NaN either
        assert w.grad is None or (w.grad.shape == w.shape and not w.grad.any()), (name, w.name)
    # Penalties are finite: an activity penalty of no samples is 0, not 0/0.
    assert all(np.isfinite(v) for v in losses), (name, losses)
    # State (moving statistics) is untouched by an empty batch.
    for before, w in zip(weights_before, layer.weights):
        np.testing.assert_array_equal(before, w.data, err_msg=f"{name}: {w.name} changed")


def _zero_row_cases():
    for name in _layer_classes():
        if name not in _CASES:  # a new layer class: the test fails until it gets a row
            yield pytest.param(name, None, None, False, id=f"{name}-missing")
    for name, rows in _CASES.items():
        for i, (kwargs, shape) in enumerate(rows):
            for training in (False, True):
                yield pytest.param(name, kwargs, shape, training, id=f"{name}-{i}-train{training}")


@pytest.mark.parametrize("name, kwargs, shape, training", list(_zero_row_cases()))
def test_B6_zero_row_batch_through_every_layer(name, kwargs, shape, training):
    if kwargs is None:
        pytest.fail(
            f"ember.layers.{name} has no row in _CASES of {__file__}: add a constructor and an "
            "input shape, so the zero-row test keeps covering every layer"
        )
    if name == "BatchNormalization" and training:
        # The chosen behaviour (see the module docstring): batch statistics of zero values do not
        # exist, so training mode refuses, naming the layer; inference mode is tested below.
        layer = layers.BatchNormalization(name="bn_zero", **kwargs)
        layer(np.ones((3, *shape), np.float32))
        with pytest.raises(ValueError, match=r'"bn_zero".*more than 1 value per channel'):
            layer(np.zeros((0, *shape), np.float32), training=True)
        # ...but a frozen BatchNormalization runs in inference mode, also when training.
        layer.trainable = False
        with _strict():
            out = layer(np.zeros((0, *shape), np.float32), training=True)
        assert out.shape == (0, *shape)
        return
    _run_zero_rows(name, kwargs, shape, training)


def test_B6_zero_rows_dense_values_and_weight_gradients():
    """Real numbers: an empty batch gives zero weight gradients of the right shapes (the sum over
    no samples), and a non-empty batch next to it is unaffected."""
    dense = layers.Dense(2, kernel_initializer="ones")
    dense(np.ones((1, 3), np.float32))
    out = dense(np.zeros((0, 3), np.float32))
    out.sum().backward()
    np.testing.assert_array_equal(dense.kernel.grad, np.zeros((3, 2), np.float32))
    np.testing.assert_array_equal(dense.bias.grad, np.zeros(2, np.float32))
    np.testing.assert_array_equal(dense(np.ones((1, 3), np.float32)).numpy(), [[3.0, 3.0]])

    # The activity penalty (divided by the batch size, as tf.keras) of no samples is 0, not 0/0.
    for layer, shape in ((layers.Dense(2, activity_regularizer="l2"), (3,)),
                         (layers.Conv1D(2, 3, activity_regularizer="l1"), (5, 2))):
        layer(np.ones((2, *shape), np.float32))
        with _strict():
            layer(np.zeros((0, *shape), np.float32))
        assert [loss.item() for loss in layer.losses] == [0.0]


def _mlp():
    ember.random.seed(0)
    model = ember.models.Sequential(
        [layers.Input(shape=(4,)), layers.Dense(8, activation="relu"), layers.Dropout(0.2),
         layers.Dense(3)]
    )
    model.compile(optimizer="sgd", loss="mse")
    return model


def _convnet():
    ember.random.seed(0)
    model = ember.models.Sequential(
        [
            layers.Input(shape=(8, 8, 1)),
            layers.Conv2D(4, 3, activation="relu"),
            layers.BatchNormalization(),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(5),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


@pytest.mark.parametrize(
    "make, x_shape, units", [(_mlp, (4,), 3), (_convnet, (8, 8, 1), 5)], ids=["mlp", "convnet"]
)
def test_B6_predict_on_zero_rows_returns_an_empty_batch(make, x_shape, units):
    model = make()
    with _strict():
        out = model.predict(np.zeros((0, *x_shape), np.float32), verbose=0)
        direct = model(np.zeros((0, *x_shape), np.float32))
    assert isinstance(out, np.ndarray) and out.shape == (0, units) and out.dtype == np.float32
    assert direct.shape == (0, units)
    # The model still works on real data afterwards.
    assert model.predict(np.ones((2, *x_shape), np.float32), verbose=0).shape == (2, units)


def test_B6_evaluate_and_fit_refuse_an_empty_x():
    model = _mlp()
    x, y = np.zeros((0, 4), np.float32), np.zeros((0, 3), np.float32)
    weights = model.get_weights()
    with pytest.raises(ValueError, match=r"x is empty \(0 samples\)"):
        model.evaluate(x, y, verbose=0)
    with pytest.raises(ValueError, match=r"x is empty \(0 samples\)"):
        model.fit(x, y, epochs=1, verbose=0)
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)

    convnet = _convnet()
    with pytest.raises(ValueError, match="empty"):
        convnet.fit(np.zeros((0, 8, 8, 1), np.float32), np.zeros((0,), np.int64), verbose=0)


@pytest.mark.parametrize(
    "merge, shapes, out_shape",
    [
        (layers.Add(), [(4,), (4,), (4,)], (4,)),
        (layers.Subtract(), [(4,), (4,)], (4,)),
        (layers.Multiply(), [(4,), (1,)], (4,)),
        (layers.Average(), [(2, 4), (2, 4)], (2, 4)),
        (layers.Maximum(), [(4,), (4,)], (4,)),
        (layers.Minimum(), [(4,), (4,)], (4,)),
        (layers.Concatenate(), [(2, 3), (2, 5)], (2, 8)),
        (layers.Concatenate(axis=1), [(2, 3), (4, 3)], (6, 3)),
        (layers.Dot(axes=1), [(4,), (4,)], (1,)),
        (layers.Dot(axes=(2, 1), normalize=True), [(2, 3), (3, 5)], (2, 5)),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, layers.Layer) else None,
)
def test_B6_merge_layers_on_zero_rows(merge, shapes, out_shape):
    rng = np.random.default_rng(0)
    merge([rng.standard_normal((2, *s)).astype(np.float32) for s in shapes])  # build
    inputs = [ember.Tensor(np.zeros((0, *s), np.float32), requires_grad=True) for s in shapes]
    with _strict():
        out = merge(inputs)
        out.sum().backward()
    assert out.shape == (0, *out_shape)
    for t in inputs:
        assert t.grad is not None and t.grad.shape == t.shape


def test_B6_functional_merge_model_predicts_zero_rows():
    a, b = layers.Input(shape=(3,)), layers.Input(shape=(2,))
    out = layers.Dense(2)(layers.concatenate([layers.Dense(4)(a), layers.Dense(4)(b)]))
    model = ember.Model([a, b], out)
    with _strict():
        result = model.predict([np.zeros((0, 3), np.float32), np.zeros((0, 2), np.float32)],
                               verbose=0)
    assert result.shape == (0, 2)


def test_B6_reductions_over_an_empty_batch_axis():
    """The ops under the global poolings: a kept empty axis is fine, an empty reduced axis is not
    (there is no maximum of nothing)."""
    x = ember.Tensor(np.zeros((0, 5, 3), np.float32), requires_grad=True)
    with _strict():
        m = ember.ops.max(x, axis=1)
        m.sum().backward()
    assert m.shape == (0, 3) and x.grad.shape == (0, 5, 3)
    with pytest.raises(ValueError, match=r"max\(\).*\(0, 5, 3\).*empty axis"):
        ember.ops.max(x, axis=0)
    with pytest.raises(ValueError, match="empty"):
        ember.ops.min(x)
    assert ember.ops.flatten(x, 1).shape == (0, 15)


def test_B6_normalization_adapt_refuses_empty_data():
    norm = layers.Normalization(name="norm_empty")
    with pytest.raises(ValueError, match=r'"norm_empty".adapt.*non-empty.*\(0, 4\)'):
        norm.adapt(np.zeros((0, 4), np.float32))


def test_bad_input_scalar_into_flatten():
    flatten = layers.Flatten(name="flat")
    for scalar in (np.float32(3.0), 3.0, ember.tensor(3.0)):
        with pytest.raises(ValueError, match=r'"flat" \(Flatten\) expects a batch axis.*scalar'):
            flatten(scalar)
    # The rule for 1-D (Keras'): (N,) is N samples of one value each -> (N, 1).
    out = flatten(np.array([1.0, 2.0, 3.0], np.float32))
    assert out.shape == (3, 1)
    np.testing.assert_array_equal(out.numpy(), [[1.0], [2.0], [3.0]])
    assert flatten(np.zeros((0,), np.float32)).shape == (0, 1)
    # And values are kept in C order for the usual case.
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    np.testing.assert_array_equal(flatten(x).numpy(), x.reshape(2, 12))


def test_B6_zero_rows_embedding():
    """No ids: a (0, T, D) output and its mask, and a zero gradient for the table."""
    layer = layers.Embedding(5, 3, mask_zero=True)
    with _strict():
        out = layer(np.zeros((0, 4), np.int64))
        out.sum().backward()
    assert out.shape == (0, 4, 3) and out.dtype == np.float32
    assert out._keras_mask.shape == (0, 4)
    assert layer.embeddings.grad.shape == (5, 3) and not layer.embeddings.grad.any()


@pytest.mark.parametrize("cell", ["SimpleRNNCell", "LSTMCell", "GRUCell"])
def test_B6_zero_rows_recurrent_cells(cell):
    layer = getattr(layers, cell)(3)
    count = 2 if cell == "LSTMCell" else 1
    states = [ember.Tensor(np.zeros((0, 3), np.float32)) for _ in range(count)]
    empty = ember.Tensor(np.zeros((0, 4), np.float32), requires_grad=True)
    with _strict():
        out, new_states = layer(empty, states)
        out.sum().backward()
    assert out.shape == (0, 3) and len(new_states) == len(states)
    assert empty.grad.shape == (0, 4)


def test_B6_zero_rows_attention_layers():
    """Query and value of zero samples: zero-sample outputs, no NaN, zero weight gradients."""
    query = ember.Tensor(np.zeros((0, 3, 4), np.float32), requires_grad=True)
    value = ember.Tensor(np.zeros((0, 5, 4), np.float32), requires_grad=True)
    for layer, call in (
        (layers.MultiHeadAttention(2, 2), lambda m: m(query, value, use_causal_mask=True)),
        (layers.Attention(use_scale=True), lambda m: m([query, value])),
        (layers.AdditiveAttention(), lambda m: m([query, value])),
    ):
        with _strict():
            out = call(layer)
            out.sum().backward()
        assert out.shape == (0, 3, 4), type(layer).__name__
        assert all(w.grad is None or not w.grad.any() for w in layer.trainable_weights)


@pytest.mark.parametrize(
    "layer",
    [layers.GCNConv(3), layers.SAGEConv(3, aggregator="max"), layers.GATConv(3, heads=2)],
    ids=lambda layer: type(layer).__name__,
)
def test_B6_graph_of_zero_nodes(layer):
    """A graph with no nodes and no edges: a (0, units) output and a backward that runs."""
    nodes = ember.Tensor(np.zeros((0, 4), np.float32), requires_grad=True)
    with _strict():
        out = layer(nodes, np.zeros((2, 0), int), training=True)
        out.sum().backward()
        pooled = layers.GlobalGraphPooling("max")(out, np.zeros(0, int), num_graphs=2)
    assert out.shape[0] == 0 and out.dtype == np.float32
    assert nodes.grad.shape == (0, 4)
    assert pooled.numpy().tolist() == [[0.0] * out.shape[1]] * 2  # empty graphs pool to 0


def test_B6_zero_rows_position_layers():
    with _strict():
        encoding = layers.SinePositionEncoding()(np.zeros((0, 5, 4), np.float32))
        tokens = layers.TokenAndPositionEmbedding(7, 6, 4, mask_zero=True)(np.zeros((0, 5), int))
        positions = layers.PositionEmbedding(6)(np.zeros((0, 5, 4), np.float32))
    assert encoding.shape == tokens.shape == positions.shape == (0, 5, 4)
    assert tokens._keras_mask.shape == (0, 5)
