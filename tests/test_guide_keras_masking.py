"""Keras guide "Understanding masking & padding", re-told on Ember with only the imports changed.

``import ember as keras`` and ``from ember import layers, ops`` stand for the Keras 3 imports.
Each test is one snippet of the guide. Where the guide prints a mask, the test asserts its exact
values; where it says a layer "will ignore the masked values", the test checks that an LSTM
gives a padded sequence the same result as the unpadded one.

Where Ember breaks and Keras works, the snippet is kept as Keras code and marked
``xfail(strict=True)`` with what breaks, and (when the rest of the snippet is still worth
testing) a second test runs it with the smallest change that works on Ember, named in its
docstring. The breaks: ``ops.tile``, ``ops.split`` and ``ops.take`` are missing;
``ops.not_equal`` fails when its first operand is not a tensor (a NumPy array); the symbolic
tensors of a functional model carry no ``_keras_mask``, and a layer called on them receives
``mask=None`` (the guide's ``TemporalSoftmax`` asserts the mask is there).

``TemporalSoftmax`` is written as the guide describes it — a softmax over the time axis that
leaves masked steps out. (The guide's Keras 3 code sums over the last axis, of size 1, which
makes every unmasked output 1 and every masked one 0/0.)
"""

from __future__ import annotations

import numpy as np
import pytest

import ember as keras
from ember import layers, ops


@pytest.fixture(autouse=True)
def _seed():
    keras.manual_seed(0)


RAW_INPUTS = [
    [711, 632, 71],
    [73, 8, 3215, 55, 927],
    [83, 91, 1, 645, 1253, 927],
]
POST_MASK = np.array(
    [
        [True, True, True, False, False, False],
        [True, True, True, True, True, False],
        [True, True, True, True, True, True],
    ]
)


def _padded_inputs():
    return keras.utils.pad_sequences(RAW_INPUTS, padding="post")


def _unmasked_embedding(padded_inputs):
    """The guide's simulated embedding lookup, with NumPy's tile for ``ops.tile``."""
    return np.tile(np.expand_dims(padded_inputs, axis=-1), [1, 1, 10]).astype("float32")


def _assert_ignores_padding(lstm, embedded_padded, embedded_alone) -> None:
    """Each row of a padded batch gives what the sequence gives alone (LSTM skips masked steps)."""
    batch = lstm(embedded_padded).numpy()
    for row, alone in enumerate(embedded_alone):
        np.testing.assert_allclose(batch[row], lstm(alone).numpy()[0], rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------------------ padding
def test_pad_sequences_post_and_pre():
    padded_inputs = keras.utils.pad_sequences(RAW_INPUTS, padding="post")
    np.testing.assert_array_equal(
        padded_inputs,
        [[711, 632, 71, 0, 0, 0], [73, 8, 3215, 55, 927, 0], [83, 91, 1, 645, 1253, 927]],
    )
    assert padded_inputs.dtype == np.int32

    # "pre" padding (at the beginning) is the default; the "value" parameter sets the filler
    np.testing.assert_array_equal(
        keras.utils.pad_sequences(RAW_INPUTS),
        [[0, 0, 0, 711, 632, 71], [0, 73, 8, 3215, 55, 927], [83, 91, 1, 645, 1253, 927]],
    )
    np.testing.assert_array_equal(
        keras.utils.pad_sequences(RAW_INPUTS, padding="post", value=-1)[0],
        [711, 632, 71, -1, -1, -1],
    )
    # truncating long samples (from the start by default)
    np.testing.assert_array_equal(
        keras.utils.pad_sequences(RAW_INPUTS, maxlen=4),
        [[0, 711, 632, 71], [8, 3215, 55, 927], [1, 645, 1253, 927]],
    )


# ------------------------------------------------------------------------------ mask makers
def test_embedding_with_mask_zero_attaches_the_mask():
    padded_inputs = _padded_inputs()
    embedding = layers.Embedding(input_dim=5000, output_dim=16, mask_zero=True)
    masked_output = embedding(padded_inputs)

    mask = masked_output._keras_mask
    assert mask.shape == (3, 6) and mask.dtype == np.bool_
    np.testing.assert_array_equal(mask.numpy(), POST_MASK)
    np.testing.assert_array_equal(embedding.compute_mask(padded_inputs).numpy(), POST_MASK)


def test_masking_layer_as_in_guide():
    padded_inputs = _padded_inputs()
    masking_layer = layers.Masking()
    # Simulate the embedding lookup by expanding the 2D input to 3D, embedding dimension 10.
    unmasked_embedding = ops.cast(
        ops.tile(ops.expand_dims(padded_inputs, axis=-1), [1, 1, 10]),
        dtype="float32",
    )
    masked_embedding = masking_layer(unmasked_embedding)
    np.testing.assert_array_equal(masked_embedding._keras_mask.numpy(), POST_MASK)


def test_masking_layer_marks_all_zero_steps():
    """The guide's Masking snippet with NumPy's ``tile`` for ``ops.tile``."""
    padded_inputs = _padded_inputs()
    masking_layer = layers.Masking()
    unmasked_embedding = _unmasked_embedding(padded_inputs)

    masked_embedding = masking_layer(unmasked_embedding)
    assert masked_embedding.shape == (3, 6, 10)
    np.testing.assert_array_equal(masked_embedding._keras_mask.numpy(), POST_MASK)
    np.testing.assert_array_equal(masked_embedding.numpy(), unmasked_embedding)

    # An LSTM after the Masking layer skips the padded steps.
    model = keras.Sequential([keras.Input((None, 10)), layers.Masking(), layers.LSTM(8)])
    lstm = model.layers[-1]
    alone = [unmasked_embedding[i : i + 1, : len(seq)] for i, seq in enumerate(RAW_INPUTS)]
    outputs = model(unmasked_embedding).numpy()
    for row, sequence in enumerate(alone):
        np.testing.assert_allclose(outputs[row], lstm(sequence).numpy()[0], rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------------------ propagation
def test_mask_propagates_in_a_sequential_model():
    model = keras.Sequential(
        [
            layers.Embedding(input_dim=5000, output_dim=16, mask_zero=True),
            layers.LSTM(32),
        ]
    )
    padded_inputs = _padded_inputs()
    outputs = model(padded_inputs).numpy()
    assert outputs.shape == (3, 32)

    embedding, lstm = model.layers
    for row, sequence in enumerate(RAW_INPUTS):
        alone = lstm(embedding(np.array([sequence]))).numpy()[0]
        np.testing.assert_allclose(outputs[row], alone, rtol=1e-6, atol=1e-7)
    # without the mask the padded rows would differ (detach: a new tensor, without the mask)
    unmasked = lstm(embedding(padded_inputs).detach()).numpy()
    assert not np.allclose(unmasked[0], outputs[0])


@pytest.mark.parametrize("padding", ["post", "pre"])
def test_mask_propagates_in_a_functional_model(padding):
    inputs = keras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(input_dim=5000, output_dim=16, mask_zero=True)(inputs)
    outputs = layers.LSTM(32)(x)
    model = keras.Model(inputs, outputs)

    batch = model(keras.utils.pad_sequences(RAW_INPUTS, padding=padding)).numpy()
    for row, sequence in enumerate(RAW_INPUTS):
        alone = model(np.array([sequence])).numpy()[0]
        np.testing.assert_allclose(batch[row], alone, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(
        model.predict(keras.utils.pad_sequences(RAW_INPUTS, padding=padding), verbose=0),
        batch,
        rtol=1e-6,
        atol=1e-7,
    )


class MyLayer(layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.embedding = layers.Embedding(input_dim=5000, output_dim=16, mask_zero=True)
        self.lstm = layers.LSTM(32)

    def call(self, inputs):
        x = self.embedding(inputs)
        # Note that you could also prepare a `mask` tensor manually.
        # It only needs to be a boolean tensor
        # with the right shape, i.e. (batch_size, timesteps).
        mask = self.embedding.compute_mask(inputs)
        output = self.lstm(x, mask=mask)  # The layer will ignore the masked values
        return output


def test_mask_passed_by_hand_to_a_layer():
    layer = MyLayer()
    x = np.random.default_rng(0).random((32, 10)) * 100
    x = x.astype("int32")
    x[:, 7:] = 0  # pad the last steps, so that the mask matters
    result = layer(x).numpy()
    assert result.shape == (32, 32)

    for row in (0, 5, 31):
        real = x[row : row + 1, :7]
        alone = layer.lstm(layer.embedding(real)).numpy()[0]
        np.testing.assert_allclose(result[row], alone, rtol=1e-6, atol=1e-7)
    # a boolean array made by hand works the same
    embedded = layer.embedding(x).detach()  # detach: a new tensor, without the attached mask
    by_hand = layer.lstm(embedded, mask=x != 0).numpy()
    np.testing.assert_allclose(by_hand, result, rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------------------ custom layers
class TemporalSplit(keras.layers.Layer):
    """Split the input tensor into 2 tensors along the time dimension."""

    def call(self, inputs):
        # Expect the input to be 3D and mask to be 2D, split the input tensor into 2
        # subtensors along the time axis (axis 1).
        return ops.split(inputs, 2, axis=1)

    def compute_mask(self, inputs, mask=None):
        # Also split the mask into 2 if it presents.
        if mask is None:
            return None
        return ops.split(mask, 2, axis=1)


def test_temporal_split_as_in_guide():
    masked_embedding = layers.Masking()(_unmasked_embedding(_padded_inputs()))
    first_half, second_half = TemporalSplit()(masked_embedding)
    np.testing.assert_array_equal(first_half._keras_mask.numpy(), POST_MASK[:, :3])
    np.testing.assert_array_equal(second_half._keras_mask.numpy(), POST_MASK[:, 3:])


class SlicingTemporalSplit(keras.layers.Layer):
    """``TemporalSplit`` with slices for ``ops.split`` (the input's time axis is even)."""

    def call(self, inputs):
        half = inputs.shape[1] // 2
        return [inputs[:, :half], inputs[:, half:]]

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        half = mask.shape[1] // 2
        return [mask[:, :half], mask[:, half:]]


def test_a_layer_that_changes_the_mask():
    masked_embedding = layers.Masking()(_unmasked_embedding(_padded_inputs()))
    first_half, second_half = SlicingTemporalSplit()(masked_embedding)
    assert first_half.shape == second_half.shape == (3, 3, 10)
    np.testing.assert_array_equal(first_half._keras_mask.numpy(), POST_MASK[:, :3])
    np.testing.assert_array_equal(second_half._keras_mask.numpy(), POST_MASK[:, 3:])

    # no mask in, no mask out
    plain_first, _ = SlicingTemporalSplit()(_unmasked_embedding(_padded_inputs()))
    assert plain_first._keras_mask is None


class CustomEmbedding(keras.layers.Layer):
    def __init__(self, input_dim, output_dim, mask_zero=False, **kwargs):
        super().__init__(**kwargs)
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.mask_zero = mask_zero

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            shape=(self.input_dim, self.output_dim),
            initializer="random_normal",
            dtype="float32",
        )

    def call(self, inputs):
        inputs = ops.cast(inputs, "int32")
        return ops.take(self.embeddings, inputs)

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        return ops.not_equal(inputs, 0)


def _guide_ids():
    x = np.random.default_rng(0).random((3, 10)) * 9
    x = x.astype("int32")
    x[:, 8:] = 0
    return x


def test_custom_embedding_lookup_as_in_guide():
    """The guide's ``ops.take(self.embeddings, inputs)`` has no axis: Keras' take then reads the
    table flattened (the guide only looks at the mask), and so does Ember's."""
    layer = CustomEmbedding(10, 32, mask_zero=True)
    x = _guide_ids()
    y = layer(x)
    np.testing.assert_array_equal(y.numpy(), layer.embeddings.numpy().ravel()[x])
    rows = ops.take(layer.embeddings, ops.cast(x, "int32"), axis=0)  # the lookup it means
    np.testing.assert_array_equal(rows.numpy(), layer.embeddings.numpy()[x])


def test_custom_embedding_compute_mask_on_numpy_ids():
    layer = CustomEmbedding(10, 32, mask_zero=True)
    x = _guide_ids()
    mask = layer.compute_mask(x)
    np.testing.assert_array_equal(mask.numpy(), x != 0)


class LookupCustomEmbedding(CustomEmbedding):
    """``CustomEmbedding`` with Ember's ``ops.embedding`` for ``ops.take``."""

    def call(self, inputs):
        inputs = ops.cast(inputs, "int32")
        return ops.embedding(inputs, self.embeddings)


def test_a_custom_layer_that_makes_a_mask():
    layer = LookupCustomEmbedding(10, 32, mask_zero=True)
    x = _guide_ids()
    y = layer(x)
    np.testing.assert_array_equal(y.numpy(), layer.embeddings.numpy()[x])
    # the layer's compute_mask made the output's mask
    np.testing.assert_array_equal(y._keras_mask.numpy(), x != 0)
    assert LookupCustomEmbedding(10, 32)(x)._keras_mask is None  # mask_zero=False: none

    # ...and it reaches an LSTM in a Sequential model.
    model = keras.Sequential([layer, layers.LSTM(6)])
    outputs = model(x).numpy()
    lstm = model.layers[-1]
    for row in range(3):
        real = x[row : row + 1][x[row : row + 1] != 0][None, :]
        alone = lstm(layer(real)).numpy()[0]
        np.testing.assert_allclose(outputs[row], alone, rtol=1e-6, atol=1e-7)


class MyActivation(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # Signal that the layer is safe for mask propagation
        self.supports_masking = True

    def call(self, inputs):
        return ops.relu(inputs)


class MaskDroppingActivation(keras.layers.Layer):
    """``MyActivation`` without ``supports_masking``: the default destroys the mask."""

    def call(self, inputs):
        return ops.relu(inputs)


def test_opting_in_to_mask_propagation():
    ids = np.random.default_rng(0).integers(0, 5000, size=(32, 100))
    ids[:, 90:] = 0
    embedding = layers.Embedding(input_dim=5000, output_dim=16, mask_zero=True)
    embedded = embedding(ids)
    passed = MyActivation()(embedded)
    np.testing.assert_array_equal(passed._keras_mask.numpy(), ids != 0)
    assert MaskDroppingActivation()(embedded)._keras_mask is None

    inputs = keras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(input_dim=5000, output_dim=16, mask_zero=True)(inputs)
    x = MyActivation()(x)  # Will pass the mask along
    outputs = layers.LSTM(32)(x)  # Will receive the mask
    model = keras.Model(inputs, outputs)

    y = model(ids).numpy()
    assert y.shape == (32, 32)
    for row in (0, 17):
        alone = model(ids[row : row + 1, :90]).numpy()[0]
        np.testing.assert_allclose(y[row], alone, rtol=1e-6, atol=1e-7)


def test_mask_found_on_a_symbolic_tensor():
    inputs = keras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(input_dim=5000, output_dim=16, mask_zero=True)(inputs)
    x = MyActivation()(x)  # Will pass the mask along
    mask = x._keras_mask
    assert mask is not None and mask.shape == (None, None)


class TemporalSoftmax(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        assert mask is not None
        broadcast_float_mask = ops.expand_dims(ops.cast(mask, "float32"), -1)
        inputs_exp = ops.exp(inputs) * broadcast_float_mask
        inputs_sum = ops.sum(inputs_exp * broadcast_float_mask, axis=1, keepdims=True)
        return inputs_exp / inputs_sum


def _assert_masked_softmax_over_time(ids, dense_out, y) -> None:
    keep = ids != 0
    np.testing.assert_array_equal(y[~keep], 0.0)
    for row in (0, 9, 31):
        logits = dense_out[row, keep[row], 0]
        expected = np.exp(logits - logits.max())
        expected /= expected.sum()
        np.testing.assert_allclose(y[row, keep[row], 0], expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(y.sum(axis=1)[:, 0], 1.0, rtol=1e-5)


def _softmax_model(softmax_layer):
    inputs = keras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(input_dim=10, output_dim=32, mask_zero=True)(inputs)
    x = layers.Dense(1)(x)
    outputs = softmax_layer(x)
    return keras.Model(inputs, outputs)


def test_temporal_softmax_as_in_guide():
    model = _softmax_model(TemporalSoftmax())
    ids = np.random.default_rng(0).integers(0, 10, size=(32, 100))
    y = model(ids)
    dense_out = keras.Model(model.inputs, model.layers[-2].output)(ids).numpy()
    _assert_masked_softmax_over_time(ids, dense_out, y.numpy())


class TolerantTemporalSoftmax(TemporalSoftmax):
    """``TemporalSoftmax`` without the ``assert``: while the functional model is built the mask
    is ``None`` and every step counts; on real data the mask arrives."""

    def call(self, inputs, mask=None):
        if mask is None:
            mask = ops.ones(inputs.shape[:2])
        return super().call(inputs, mask=mask)


def test_a_layer_that_consumes_the_mask():
    model = _softmax_model(TolerantTemporalSoftmax())
    ids = np.random.default_rng(0).integers(0, 10, size=(32, 100))
    y = model(ids)
    assert y.shape == (32, 100, 1)
    np.testing.assert_array_equal(y._keras_mask.numpy(), ids != 0)  # supports_masking
    dense_out = keras.Model(model.inputs, model.layers[-2].output)(ids).numpy()
    _assert_masked_softmax_over_time(ids, dense_out, y.numpy())
