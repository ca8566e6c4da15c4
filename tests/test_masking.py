"""Masks (Keras 3 semantics): made by Embedding(mask_zero=True) and Masking, passed on by the
layers that support them, received by ``call(..., mask=)``, and respected by losses, metrics and
pooling: a padded step changes nothing."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import layers

IDS = np.array([[4, 2, 0, 0], [1, 3, 3, 5]])
KEEP = IDS != 0


def test_embedding_makes_a_mask_and_dense_dropout_layernorm_pass_it_on():
    embed = layers.Embedding(6, 3, mask_zero=True)
    x = embed(IDS)
    np.testing.assert_array_equal(x._keras_mask.data, KEEP)
    for layer in (layers.Dense(2), layers.Dropout(0.5), layers.LayerNormalization()):
        y = layer(x)
        np.testing.assert_array_equal(y._keras_mask.data, KEEP, err_msg=type(layer).__name__)
    assert layers.Flatten()(x)._keras_mask is None  # the time axis is gone
    assert layers.Embedding(6, 3)(IDS)._keras_mask is None  # mask_zero=False


def test_masking_layer_masks_all_equal_steps_and_zeroes_them():
    x = np.array([[[1.0, 2.0], [-1.0, -1.0], [0.0, -1.0]]], np.float32)
    out = layers.Masking(mask_value=-1.0)(x)
    np.testing.assert_array_equal(out._keras_mask.data, [[True, False, True]])
    np.testing.assert_array_equal(out.numpy(), [[[1.0, 2.0], [0.0, 0.0], [0.0, -1.0]]])


def test_call_receives_the_mask_and_an_explicit_mask_wins():
    seen = []

    class Probe(layers.Layer):
        supports_masking = True

        def call(self, inputs, mask=None):
            seen.append(None if mask is None else np.asarray(mask.data if hasattr(mask, "data")
                                                            else mask))
            return inputs * 1.0

    x = layers.Embedding(6, 3, mask_zero=True)(IDS)
    probe = Probe()
    probe(x)
    np.testing.assert_array_equal(seen[-1], KEEP)
    mine = np.ones_like(KEEP)
    out = probe(x, mask=mine)
    np.testing.assert_array_equal(seen[-1], mine)
    np.testing.assert_array_equal(out._keras_mask.data, mine)


def test_masked_loss_is_the_mean_over_real_steps():
    rng = np.random.default_rng(0)
    logits = ember.tensor(rng.standard_normal((2, 4, 5)).astype(np.float32), requires_grad=True)
    logits._keras_mask = ember.Tensor(KEEP)
    labels = np.array([[1, 2, 0, 0], [4, 3, 3, 0]])
    loss = ember.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    z = logits.numpy()
    lse = np.log(np.exp(z).sum(-1))
    per_step = lse - np.take_along_axis(z, labels[..., None], -1)[..., 0]
    expected = per_step[KEEP].mean()
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-5)
    loss.backward()
    assert not logits.grad[~KEEP].any()  # padded steps get no gradient


def test_masked_loss_with_sample_weights_and_all_masked():
    y_pred = ember.tensor(np.full((2, 3, 1), 2.0, np.float32))
    y_pred._keras_mask = ember.Tensor(np.array([[True, False, False], [True, True, False]]))
    y_true = np.zeros((2, 3, 1), np.float32)
    loss = ember.losses.MeanSquaredError()(y_true, y_pred, sample_weight=[1.0, 0.5])
    np.testing.assert_allclose(loss.item(), (4.0 + 0.5 * 4.0 * 2) / 3)
    y_pred._keras_mask = ember.Tensor(np.zeros((2, 3), bool))
    assert ember.losses.MeanSquaredError()(y_true, y_pred).item() == 0.0


def test_masked_loss_rejects_a_loss_without_steps():
    y_pred = ember.tensor(np.ones((2, 3), np.float32))
    y_pred._keras_mask = ember.Tensor(KEEP[:, :3])
    with pytest.raises(ValueError, match="mask of shape \\(2, 3\\).*one value per step"):
        ember.losses.MeanSquaredError()(np.zeros((2, 3)), y_pred)


def test_global_average_pooling_1d_averages_real_steps_only():
    x = layers.Embedding(6, 3, mask_zero=True)(IDS)
    pooled = layers.GlobalAveragePooling1D()(x)
    expected = np.stack([x.numpy()[0, :2].mean(0), x.numpy()[1].mean(0)])
    np.testing.assert_allclose(pooled.numpy(), expected, rtol=1e-6)
    assert pooled._keras_mask is None


def _padded_task(seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, 10, size=(64, 6))
    ids[:32, 4:] = 0
    return ids, ids % 3


def test_fit_ignores_targets_at_padded_steps():
    """The padded steps' targets can be anything: loss and accuracy do not move."""
    ember.manual_seed(0)
    ids, targets = _padded_task()
    inputs = layers.Input(shape=(None,), dtype="int32")
    hidden = layers.Embedding(10, 8, mask_zero=True)(inputs)
    model = ember.Model(inputs, layers.Dense(3, activation="softmax")(hidden))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(ids, targets, epochs=40, batch_size=16, verbose=0)
    other = np.where(ids == 0, (targets + 1) % 3, targets)
    loss, accuracy = model.evaluate(ids, targets, verbose=0)
    assert [loss, accuracy] == model.evaluate(ids, other, verbose=0)
    assert accuracy == 1.0  # the real steps' class is a function of the id


def test_embedding_rejects_out_of_range_and_fractional_ids():
    embed = layers.Embedding(5, 2, name="tokens")
    with pytest.raises(ValueError, match=r'"tokens".*index 5 is outside the valid range \[0, 5\)'):
        embed(np.array([[1, 5]]))
    with pytest.raises(ValueError, match="index -1"):
        embed(np.array([[-1, 2]]))
    with pytest.raises(TypeError, match="indices must be integers"):
        embed(np.array([[0.5, 1.0]]))
    assert embed(np.array([[1.0, 2.0]])).shape == (1, 2, 2)  # whole floats are ids


def test_embedding_model_saves_and_loads(tmp_path):
    ember.manual_seed(0)
    inputs = layers.Input(shape=(None,), dtype="int32")
    hidden = layers.Embedding(6, 3, mask_zero=True)(inputs)
    model = ember.Model(inputs, layers.GlobalAveragePooling1D()(hidden))
    path = tmp_path / "embed.ember"
    model.save(path)
    loaded = ember.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(IDS, verbose=0), model.predict(IDS, verbose=0))
    assert loaded.layers[1].mask_zero is True
