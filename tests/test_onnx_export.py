"""ONNX export (issue 15): every exportable layer and the zoo models round-trip through ONNX
Runtime (CPU) with outputs equal to Ember's ``predict`` within 1e-5; what ONNX cannot express is
refused with an error naming the layer, and nothing is written."""

from __future__ import annotations

import os

import numpy as np
import pytest

import ember
from ember import layers
from ember.models import zoo

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from ember.onnx_export import OnnxExportError, export  # noqa: E402

TOL = 1e-5


# ---------------------------------------------------------------------------- helpers
def _randomize(model, seed: int = 0) -> None:
    """Non-trivial weights everywhere: batch norm's moving statistics too (variances > 0)."""
    rng = np.random.default_rng(seed)
    for name, weight in model.named_parameters():
        shape, dtype = weight.shape, weight.dtype
        if name.endswith("moving_variance") or name.endswith(".variance"):
            weight.data = rng.uniform(0.5, 2.0, shape).astype(dtype)
        else:
            weight.data = (rng.standard_normal(shape) * 0.5).astype(dtype)


def _run(path, inputs: list) -> list:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {spec.name: x for spec, x in zip(session.get_inputs(), inputs)}
    return session.run(None, feeds)


def _roundtrip(model, inputs, tmp_path, name: str = "model.onnx", **options) -> list:
    """Export, run in ONNX Runtime, compare with ``predict``; returns ORT's outputs."""
    inputs = inputs if isinstance(inputs, list) else [inputs]
    path = export(model, tmp_path / name, **options)
    assert path == tmp_path / name and path.is_file()
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    got = _run(path, inputs)
    want = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
    want = want if isinstance(want, (list, tuple)) else [want]
    assert len(got) == len(want)
    for index, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape, f"output {index}: {g.shape} != {w.shape}"
        np.testing.assert_allclose(g, w, rtol=TOL, atol=TOL, err_msg=f"output {index}")
    return got


def _functional(inputs, outputs, seed: int = 0):
    model = ember.Model(inputs, outputs)
    _randomize(model, seed)
    return model


def _images(*shape, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------------------- activations
ACTIVATIONS = [
    "linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "softplus", "softsign",
    "silu", "swish", "mish", "gelu", "hard_sigmoid", "log_sigmoid", "arctan", "sinc",
    "binary_step", "abs_rectifier", "rectifier", "softmax", "log_softmax",
]  # fmt: skip


@pytest.mark.parametrize("opset", [14, 17, 20])
def test_every_activation_function(tmp_path, opset):
    """Applied to extreme and ordinary values (0 exactly for sinc and the step), and inside
    Dense; opset 14 writes gelu and mish out, 20 uses ONNX's Gelu."""
    inputs = ember.Input(shape=(9,))
    outputs = []
    for name in ACTIVATIONS:
        outputs.append(layers.Activation(name)(inputs))
        outputs.append(layers.Dense(3, activation=name)(inputs))
    model = _functional(inputs, outputs)
    x = np.array([[-1000, -3, -1, -0.5, 0, 0.5, 1, 3, 1000]], np.float32)
    x = np.concatenate([x, _images(4, 9)])
    _roundtrip(model, x, tmp_path, opset=opset)


def test_activation_layers(tmp_path):
    inputs = ember.Input(shape=(4, 6))
    outputs = [
        layers.ReLU()(inputs),
        layers.ReLU(max_value=0.8, negative_slope=0.1)(inputs),
        layers.ReLU(max_value=1.0, negative_slope=0.2, threshold=0.3)(inputs),
        layers.LeakyReLU(0.3)(inputs),
        layers.ELU(0.7)(inputs),
        layers.PReLU()(inputs),
        layers.PReLU(shared_axes=[1])(inputs),
        layers.Softmax(axis=1)(inputs),
        layers.Softmax()(inputs),
    ]
    _roundtrip(_functional(inputs, outputs), _images(3, 4, 6), tmp_path)


# ---------------------------------------------------------------------------- convolutions
def test_conv2d_padding_strides_dilation(tmp_path):
    inputs = ember.Input(shape=(9, 7, 3))
    outputs = [
        layers.Conv2D(4, 3)(inputs),
        layers.Conv2D(4, 3, padding="same", activation="relu")(inputs),
        layers.Conv2D(5, (3, 2), strides=2, padding="same", use_bias=False)(inputs),
        layers.Conv2D(4, 3, strides=(2, 3), activation="tanh")(inputs),
        layers.Conv2D(4, 3, dilation_rate=2, padding="same")(inputs),
        layers.Conv2D(2, (2, 3), dilation_rate=(2, 1), activation="softmax")(inputs),
        layers.Conv2D(4, 4, strides=2, padding="same", activation="gelu")(inputs),
    ]
    _roundtrip(_functional(inputs, outputs), _images(2, 9, 7, 3), tmp_path)


def test_conv2d_channels_first_and_dynamic_size(tmp_path):
    """NCHW inputs convolve without transposes; spatial sizes declared None stay dynamic."""
    first = ember.Input(shape=(3, 8, 6))
    dynamic = ember.Input(shape=(None, None, 2))
    outputs = [
        layers.Conv2D(4, 3, padding="same", data_format="channels_first")(first),
        layers.MaxPooling2D(2, data_format="channels_first")(first),
        layers.Conv2D(3, 3, padding="same", strides=2, activation="relu")(dynamic),
    ]
    model = _functional([first, dynamic], outputs)
    _roundtrip(model, [_images(2, 3, 8, 6), _images(2, 7, 5, 2)], tmp_path)
    _roundtrip(model, [_images(1, 3, 8, 6), _images(1, 10, 4, 2)], tmp_path, "again.onnx")


def test_other_convolutions(tmp_path):
    images, sequences = ember.Input(shape=(8, 7, 4)), ember.Input(shape=(11, 3))
    outputs = [
        layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same")(images),
        layers.DepthwiseConv2D(3, strides=2, activation="relu")(images),
        layers.SeparableConv2D(5, 3, padding="same", depth_multiplier=2)(images),
        layers.Conv2DTranspose(3, 3, strides=2, padding="same")(images),
        layers.Conv2DTranspose(3, 3, strides=2, activation="relu")(images),
        layers.Conv2DTranspose(2, 2, strides=3, padding="same")(images),
        layers.Conv1D(4, 3)(sequences),
        layers.Conv1D(4, 3, padding="same", strides=2)(sequences),
        layers.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="relu")(sequences),
    ]
    model = _functional([images, sequences], outputs)
    _roundtrip(model, [_images(2, 8, 7, 4), _images(2, 11, 3)], tmp_path)


def test_pooling(tmp_path):
    images, sequences = ember.Input(shape=(9, 8, 3)), ember.Input(shape=(10, 4))
    outputs = [
        layers.MaxPooling2D(2)(images),
        layers.MaxPooling2D(3, strides=2, padding="same")(images),
        layers.AveragePooling2D(2)(images),
        layers.AveragePooling2D((3, 2), strides=2, padding="same")(images),
        layers.GlobalAveragePooling2D()(images),
        layers.GlobalMaxPooling2D(keepdims=True)(images),
        layers.GlobalAveragePooling2D(data_format="channels_first")(images),
        layers.MaxPooling1D(3, strides=2, padding="same")(sequences),
        layers.AveragePooling1D(2)(sequences),
        layers.GlobalAveragePooling1D()(sequences),
        layers.GlobalMaxPooling1D()(sequences),
    ]
    model = _functional([images, sequences], outputs)
    _roundtrip(model, [_images(2, 9, 8, 3), _images(2, 10, 4)], tmp_path)


def test_conv_stack_transposes_once_each_way(tmp_path):
    """Conv, batch norm, activation, pooling and a residual sum stay channels-first."""
    inputs = ember.Input(shape=(8, 8, 2))
    x = layers.Conv2D(4, 3, padding="same")(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    y = layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    x = layers.Add()([x, y])
    x = layers.MaxPooling2D(2)(x)
    outputs = layers.Dense(3)(layers.Flatten()(x))
    model = _functional(inputs, outputs)
    _roundtrip(model, _images(3, 8, 8, 2), tmp_path)
    ops = [node.op_type for node in onnx.load(str(tmp_path / "model.onnx")).graph.node]
    assert ops.count("Transpose") == 2
    assert ops.count("Conv") == 2 and ops.count("MaxPool") == 1


# ---------------------------------------------------------------------------- normalization
def test_batch_and_layer_normalization(tmp_path):
    flat, seq = ember.Input(shape=(5,)), ember.Input(shape=(4, 6))
    images = ember.Input(shape=(5, 5, 3))
    outputs = [
        layers.BatchNormalization()(flat),
        layers.BatchNormalization(axis=1, center=False)(seq),
        layers.BatchNormalization(scale=False)(images),
        layers.LayerNormalization()(seq),
        layers.LayerNormalization(axis=[1, 2], epsilon=1e-5)(seq),
        layers.LayerNormalization(axis=1, center=False)(seq),
        layers.LayerNormalization(scale=False)(flat),
    ]
    model = _functional([flat, seq, images], outputs)
    data = [_images(3, 5), _images(3, 4, 6, seed=2), _images(3, 5, 5, 3, seed=3)]
    _roundtrip(model, data, tmp_path)
    _roundtrip(model, data, tmp_path, "opset14.onnx", opset=14)  # LayerNorm written out


def test_training_only_layers_are_identities(tmp_path):
    inputs = ember.Input(shape=(6, 6, 2))
    x = layers.RandomFlip("horizontal")(inputs)
    x = layers.RandomTranslation(0.2, 0.2)(x)
    x = layers.RandomRotation(0.1)(x)
    x = layers.SpatialDropout2D(0.5)(x)
    x = layers.GaussianNoise(1.0)(x)
    x = layers.Dropout(0.5)(x)
    x = layers.ActivityRegularization(l1=0.1)(x)
    _roundtrip(_functional(inputs, layers.Dense(2)(x)), _images(2, 6, 6, 2), tmp_path)


def test_preprocessing_and_masking(tmp_path):
    pixels, features = ember.Input(shape=(4, 4, 3), dtype="uint8"), ember.Input(shape=(5, 3))
    norm = layers.Normalization(mean=[0.5, -1.0, 2.0], variance=[4.0, 0.25, 1.0])
    outputs = [
        layers.Rescaling(1 / 127.5, offset=-1)(pixels),
        layers.Rescaling([0.1, 0.2, 0.3], offset=[1.0, 0.0, -1.0])(pixels),
        norm(features),
        layers.Normalization(mean=1.0, variance=4.0, invert=True)(features),
        layers.Dense(2)(layers.Masking(0.0)(features)),
    ]
    model = _functional([pixels, features], outputs)
    x = np.random.default_rng(0).integers(0, 256, (2, 4, 4, 3)).astype(np.uint8)
    seq = _images(2, 5, 3)
    seq[0, 2] = 0.0  # a masked step
    _roundtrip(model, [x, seq], tmp_path)


# ---------------------------------------------------------------------------- shapes and merges
def test_reshaping_layers(tmp_path):
    flat, images = ember.Input(shape=(12,)), ember.Input(shape=(3, 4, 2))
    outputs = [
        layers.Reshape((3, -1))(flat),
        layers.Reshape((2, 2, 3))(flat),
        layers.Flatten()(images),
        layers.Permute((3, 1, 2))(images),
        layers.RepeatVector(3)(flat),
        layers.ZeroPadding2D(((1, 2), (0, 1)))(images),
        layers.ZeroPadding2D(1, data_format="channels_first")(images),
        layers.UpSampling2D((2, 3))(images),
        layers.UpSampling2D(2, data_format="channels_first")(images),
    ]
    model = _functional([flat, images], outputs)
    _roundtrip(model, [_images(2, 12), _images(2, 3, 4, 2)], tmp_path)


def test_merge_layers(tmp_path):
    a, b, c = (ember.Input(shape=(4,)) for _ in range(3))
    s, t = ember.Input(shape=(3, 5)), ember.Input(shape=(5, 2))
    outputs = [
        layers.Add()([a, b, c]),
        layers.Subtract()([a, b]),
        layers.Multiply()([a, b, c]),
        layers.Average()([a, b, c]),
        layers.Maximum()([a, b, c]),
        layers.Minimum()([a, b]),
        layers.Concatenate()([a, b, c]),
        layers.Concatenate(axis=1)([s, s]),
        layers.Dot(axes=1)([a, b]),
        layers.Dot(axes=1, normalize=True)([a, c]),
        layers.Dot(axes=(2, 1))([s, t]),
    ]
    model = _functional([a, b, c, s, t], outputs)
    data = [_images(3, 4, seed=i) for i in range(3)] + [_images(3, 3, 5), _images(3, 5, 2)]
    _roundtrip(model, data, tmp_path)


def test_embedding(tmp_path):
    ids32, ids_float = ember.Input(shape=(5,), dtype="int32"), ember.Input(shape=(3,))
    table = layers.Embedding(20, 4)
    outputs = [table(ids32), layers.Embedding(7, 2)(ids_float)]
    model = _functional([ids32, ids_float], outputs)
    rng = np.random.default_rng(0)
    data = [rng.integers(0, 20, (2, 5)).astype(np.int32), rng.integers(0, 7, (2, 3)).astype(
        np.float32)]
    _roundtrip(model, data, tmp_path)


# ---------------------------------------------------------------------------- recurrent layers
def test_recurrent_layers(tmp_path):
    inputs = ember.Input(shape=(6, 3))
    outputs = [
        layers.LSTM(4)(inputs),
        layers.LSTM(4, return_sequences=True, go_backwards=True)(inputs),
        *layers.LSTM(3, return_sequences=True, return_state=True, use_bias=False)(inputs),
        layers.GRU(4)(inputs),
        layers.GRU(4, return_sequences=True, reset_after=False)(inputs),
        *layers.GRU(2, return_state=True, go_backwards=True)(inputs),
        layers.SimpleRNN(4, return_sequences=True)(inputs),
        layers.SimpleRNN(3, activation="relu")(inputs),
        layers.RNN(layers.LSTMCell(3))(inputs),
        *layers.RNN([layers.GRUCell(3), layers.LSTMCell(2)], return_sequences=True,
                    return_state=True)(inputs),
        layers.LSTM(2, activation="softsign", recurrent_activation="tanh")(inputs),
    ]  # fmt: skip
    model = _functional(inputs, outputs)
    _roundtrip(model, _images(2, 6, 3), tmp_path)


def test_recurrent_initial_states_and_wrappers(tmp_path):
    sequence = ember.Input(shape=(None, 3))
    h, c = ember.Input(shape=(4,)), ember.Input(shape=(4,))
    outputs = [
        layers.LSTM(4, return_sequences=True)(sequence, initial_state=[h, c]),
        layers.GRU(4)(sequence, initial_state=h),
        layers.Bidirectional(layers.LSTM(3, return_sequences=True))(sequence),
        layers.Bidirectional(layers.GRU(3), merge_mode="sum")(sequence),
        layers.Bidirectional(layers.SimpleRNN(2, return_sequences=True), merge_mode="ave")(
            sequence),
        *layers.Bidirectional(layers.LSTM(2, return_state=True), merge_mode=None)(sequence),
        layers.TimeDistributed(layers.Dense(5, activation="relu"))(sequence),
    ]
    model = _functional([sequence, h, c], outputs)
    _roundtrip(model, [_images(2, 5, 3), _images(2, 4), _images(2, 4, seed=2)], tmp_path)
    # the time axis was declared None: another length runs too
    _roundtrip(model, [_images(2, 8, 3), _images(2, 4), _images(2, 4)], tmp_path, "b.onnx")


def test_time_distributed_convolution(tmp_path):
    frames = ember.Input(shape=(3, 6, 6, 1))
    x = layers.TimeDistributed(layers.Conv2D(2, 3, activation="relu"))(frames)
    x = layers.TimeDistributed(layers.Flatten())(x)
    _roundtrip(_functional(frames, layers.LSTM(3)(x)), _images(2, 3, 6, 6, 1), tmp_path)


# ---------------------------------------------------------------------------- attention
def test_multi_head_attention(tmp_path):
    query, memory = ember.Input(shape=(5, 8)), ember.Input(shape=(7, 6))
    allowed = ember.Input(shape=(5, 7), dtype="bool")
    mha = layers.MultiHeadAttention(num_heads=2, key_dim=3)
    cross = layers.MultiHeadAttention(2, 4, value_dim=3, output_shape=5, use_bias=False)
    outputs = [
        mha(query, query),
        layers.MultiHeadAttention(2, 4)(query, query, use_causal_mask=True),
        *cross(query, memory, return_attention_scores=True, attention_mask=allowed),
        layers.MultiHeadAttention(1, 4)(query, memory, memory, use_causal_mask=True),
    ]
    model = _functional([query, memory, allowed], outputs)
    mask = np.random.default_rng(0).random((2, 5, 7)) < 0.6
    mask[0, 1] = False  # a query that may attend to nothing: zero weights, zero output
    _roundtrip(model, [_images(2, 5, 8), _images(2, 7, 6), mask], tmp_path)


def test_dot_product_and_additive_attention(tmp_path):
    query, value = ember.Input(shape=(4, 6)), ember.Input(shape=(5, 6))
    key = ember.Input(shape=(5, 6))
    outputs = [
        layers.Attention()([query, value]),
        layers.Attention(use_scale=True)([query, value, key], use_causal_mask=True),
        *layers.Attention(score_mode="concat", use_scale=True)(
            [query, value], return_attention_scores=True),
        layers.AdditiveAttention()([query, value, key]),
        layers.AdditiveAttention(use_scale=False)([query, value], use_causal_mask=True),
    ]
    model = _functional([query, value, key], outputs)
    _roundtrip(model, [_images(2, 4, 6), _images(2, 5, 6, seed=2), _images(2, 5, 6)], tmp_path)


def test_transformer_blocks(tmp_path):
    ids = ember.Input(shape=(6,), dtype="int32")
    target = ember.Input(shape=(None, 8))
    encoded = layers.TokenAndPositionEmbedding(30, 10, 8)(ids)
    encoded = layers.TransformerEncoder(16, num_heads=2)(encoded)
    encoded = layers.TransformerEncoder(16, 2, normalize_first=True, activation="gelu")(encoded)
    decoded = layers.add([target, layers.SinePositionEncoding()(target)])
    decoded = layers.add([layers.PositionEmbedding(12)(decoded), decoded])
    decoded = layers.TransformerDecoder(16, num_heads=2)(decoded, encoded)
    decoded = layers.TransformerDecoder(12, 4, normalize_first=True)(decoded)
    outputs = [layers.GlobalAveragePooling1D()(encoded), decoded]
    model = _functional([ids, target], outputs)
    tokens = np.random.default_rng(0).integers(0, 30, (2, 6)).astype(np.int32)
    _roundtrip(model, [tokens, _images(2, 5, 8)], tmp_path)
    _roundtrip(model, [tokens, _images(2, 9, 8)], tmp_path, "longer.onnx")


# ---------------------------------------------------------------------------- whole models
@pytest.mark.parametrize("name", sorted(zoo.ARCHITECTURES))
@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1)])
def test_zoo_models(tmp_path, name, shape):
    """Every zoo architecture exports (augmentation layers are inference identities)."""
    ember.manual_seed(0)
    model = zoo.build(name, shape, 10)
    _randomize(model)
    got = _roundtrip(model, _images(3, *shape), tmp_path)
    np.testing.assert_allclose(got[0].sum(axis=1), 1.0, rtol=1e-5)  # softmax outputs


def test_lstm_text_classifier_after_training(tmp_path):
    ember.manual_seed(0)
    rng = np.random.default_rng(0)
    model = ember.Sequential([
        ember.Input(shape=(12,), dtype="int32"),
        layers.Embedding(50, 8),
        layers.Bidirectional(layers.LSTM(8, return_sequences=True)),
        layers.Dropout(0.2),
        layers.LSTM(6),
        layers.Dense(3, activation="softmax"),
    ])  # fmt: skip
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    ids = rng.integers(0, 50, (32, 12)).astype(np.int32)
    model.fit(ids, rng.integers(0, 3, 32), batch_size=16, epochs=1, verbose=0)
    _roundtrip(model, ids[:5], tmp_path)


def test_nested_and_shared_layers(tmp_path):
    encoder = ember.Sequential([ember.Input(shape=(6,)), layers.Dense(5, activation="relu"),
                                layers.BatchNormalization()], name="encoder")  # fmt: skip
    a, b = ember.Input(shape=(6,), name="left"), ember.Input(shape=(6,), name="right")
    shared = layers.Dense(4, name="shared")
    merged = layers.concatenate([shared(encoder(a)), shared(encoder(b))])
    head = ember.Model([a, b], {"score": layers.Dense(1, name="score")(merged),
                                "code": layers.Dense(2, name="code")(merged)})  # fmt: skip
    _randomize(head)
    x = [_images(4, 6), _images(4, 6, seed=5)]
    path = export(head, tmp_path / "nested.onnx")
    loaded = onnx.load(str(path))
    assert [i.name for i in loaded.graph.input] == ["left", "right"]
    assert [o.name for o in loaded.graph.output] == ["code", "score"]
    got = _run(path, x)
    want = head.predict(x, verbose=0)
    for g, name in zip(got, ["code", "score"]):
        np.testing.assert_allclose(g, want[name], rtol=TOL, atol=TOL)


@pytest.mark.parametrize("opset", [14, 18, 20])
def test_opsets_where_operators_changed(tmp_path, opset):
    """Reductions take their axes as an input from opset 18 (an attribute before)."""
    seq, flat = ember.Input(shape=(5, 4)), ember.Input(shape=(4,))
    outputs = [
        layers.GlobalAveragePooling1D()(seq),
        layers.GlobalMaxPooling1D(keepdims=True)(seq),
        layers.LayerNormalization(axis=1)(seq),
        layers.Dense(2)(layers.Masking(0.0)(seq)),
        layers.Dot(axes=1, normalize=True)([flat, flat]),
        layers.Attention(score_mode="concat")([seq, seq]),
        layers.Dense(3, activation="gelu")(flat),
    ]
    model = _functional([seq, flat], outputs)
    _roundtrip(model, [_images(2, 5, 4), _images(2, 4)], tmp_path, opset=opset)


# ---------------------------------------------------------------------------- the file
def test_names_inputs_and_outputs_like_the_model(tmp_path):
    inputs = ember.Input(shape=(3,), name="x")
    model = _functional(inputs, [inputs, layers.Dense(2, name="y")(inputs)])
    _roundtrip(model, _images(2, 3), tmp_path)
    graph = onnx.load(str(tmp_path / "model.onnx")).graph
    assert [i.name for i in graph.input] == ["x"]
    assert [o.name for o in graph.output] == ["x_output", "y"]  # ONNX names are unique


def test_dynamic_batch_and_fixed_axes(tmp_path):
    inputs = ember.Input(shape=(None, 4), name="steps")
    model = _functional(inputs, layers.GlobalAveragePooling1D()(layers.Dense(3)(inputs)))
    path = export(model, tmp_path / "dynamic.onnx")
    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", "steps_dim1", 4]
    for batch, steps in ((1, 3), (7, 9)):
        x = _images(batch, steps, 4)
        np.testing.assert_allclose(_run(path, [x])[0], model.predict(x, verbose=0), atol=TOL)
    fixed = export(model, tmp_path / "fixed.onnx", input_shapes=(5, 4))
    dims = onnx.load(str(fixed)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 5, 4]
    with pytest.raises(ValueError, match=r"input_shapes for input 'steps'.*\(5, 3\)"):
        export(model, tmp_path / "bad.onnx", input_shapes=(5, 3))


def test_replaces_a_file_atomically(tmp_path):
    model = _functional(inp := ember.Input(shape=(3,)), layers.Dense(2)(inp))
    target = tmp_path / "sub" / "m.onnx"
    target.parent.mkdir()
    target.write_bytes(b"old")
    export(model, str(target))
    assert onnx.load(str(target)).producer_name == "ember"
    assert os.listdir(target.parent) == ["m.onnx"]  # no temporary file left


# ---------------------------------------------------------------------------- refusals
class Doubler(layers.Layer):
    def call(self, inputs):
        return inputs * 2


class MyDense(layers.Dense):
    def call(self, inputs):
        return super().call(inputs) + 1


def _refused(model, tmp_path, pattern: str) -> None:
    target = tmp_path / "refused.onnx"
    with pytest.raises(OnnxExportError, match=pattern):
        export(model, target)
    assert not target.exists() and not os.listdir(tmp_path)


def test_refuses_layers_onnx_cannot_express(tmp_path):
    inputs = ember.Input(shape=(4,))
    model = ember.Model(inputs, layers.Dense(2)(Doubler(name="doubler")(inputs)))
    _refused(model, tmp_path, r'layer "doubler" \(Doubler\) has no ONNX conversion')
    subclass = ember.Model(inputs, MyDense(2, name="mine")(inputs))
    _refused(subclass, tmp_path, r'layer "mine" \(MyDense\) has no ONNX conversion')
    images = ember.Input(shape=(8, 8, 1))
    resize = ember.Model(images, layers.Resizing(4, 4, name="resize")(images))
    _refused(resize, tmp_path, r'"resize" \(Resizing\)')
    custom = ember.Model(inputs, layers.Dense(2, activation=lambda x: x * 3, name="d")(inputs))
    _refused(custom, tmp_path, r'layer "d" \(Dense\) uses the custom activation')


def test_refuses_masks_state_and_training_calls(tmp_path):
    ids = ember.Input(shape=(5,), dtype="int32")
    embedded = layers.Embedding(10, 4, mask_zero=True)(ids)
    masked = ember.Model(ids, layers.LSTM(3, name="reader")(embedded))
    _refused(masked, tmp_path, r'layer "reader" \(LSTM\) receives a mask')
    sequence = ember.Input(shape=(5, 2), batch_size=2)
    stateful = ember.Model(sequence, layers.GRU(3, stateful=True, name="memory")(sequence))
    _refused(stateful, tmp_path, r'layer "memory" \(GRU\) is stateful')
    inputs = ember.Input(shape=(4,))
    noisy = ember.Model(inputs, layers.Dropout(0.5, name="drop")(inputs, training=True))
    _refused(noisy, tmp_path, r'layer "drop" \(Dropout\) is called with training=True')
    rnn = ember.Model(sequence, layers.LSTM(2, activation="gelu", name="odd")(sequence))
    _refused(rnn, tmp_path, r'layer "odd" \(LSTM\) uses the activation \'gelu\'')


def test_refuses_models_without_a_graph_and_bad_arguments(tmp_path):
    class Net(ember.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    net = Net()
    net(np.ones((1, 3), np.float32))
    _refused(net, tmp_path, r"subclassed model")
    unbuilt = ember.Sequential([layers.Dense(2)], name="empty")
    _refused(unbuilt, tmp_path, r'model "empty" \(Sequential\) has not been built')
    model = _functional(inp := ember.Input(shape=(3,)), layers.Dense(2)(inp))
    with pytest.raises(TypeError, match="export: model must be an ember Model"):
        export(layers.Dense(2), tmp_path / "x.onnx")
    with pytest.raises(TypeError, match="export: path must be a str or path-like"):
        export(model, 3)
    with pytest.raises(ValueError, match="export: opset must be between 14 and"):
        export(model, tmp_path / "x.onnx", opset=9)
    with pytest.raises(ValueError, match="export: input_shapes must hold 1"):
        export(model, tmp_path / "x.onnx", input_shapes=[(3,), (3,)])
    assert not os.listdir(tmp_path)


def test_model_export_and_ember_onnx_are_the_same_exporter(tmp_path):
    """Keras 3's ``model.export(path, format="onnx")`` and ``ember.onnx.export`` write the same
    graph; another format is refused by name."""
    import ember.onnx

    model = ember.models.Sequential([ember.layers.Input(shape=(3,)), ember.layers.Dense(2)])
    first = model.export(tmp_path / "a.onnx")
    second = ember.onnx.export(model, tmp_path / "b.onnx")
    assert first.read_bytes() == second.read_bytes()
    with pytest.raises(ValueError, match="format must be 'onnx'"):
        model.export(tmp_path / "c", format="tf_saved_model")
