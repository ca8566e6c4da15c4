"""Every layer class survives ``from_config(get_config())``: the rebuilt layer, given the
original's weights, computes the same outputs (what ``save``/``load_model`` rely on). The rows
are those of the zero-row table, which covers every class ``ember.layers`` exports."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_zero_rows import _CASES

import ember
from ember import layers


def _rows():
    for name, rows in _CASES.items():
        for i, (kwargs, shape) in enumerate(rows):
            yield pytest.param(name, kwargs, shape, id=f"{name}-{i}")


@pytest.mark.parametrize("name, kwargs, shape", list(_rows()))
def test_config_round_trip_computes_the_same(name, kwargs, shape):
    ember.manual_seed(0)
    layer = getattr(layers, name)(**kwargs)
    x = np.random.default_rng(0).standard_normal((2, *shape)).astype(np.float32)
    before = layer(x, training=False).numpy()
    config = layer.get_config()
    json.dumps(config)  # a checkpoint stores it as JSON
    rebuilt = type(layer).from_config(config)
    rebuilt(x, training=False)
    rebuilt.set_weights(layer.get_weights())
    np.testing.assert_array_equal(rebuilt(x, training=False).numpy(), before, err_msg=name)


def test_a_users_class_named_like_a_built_in_does_not_replace_it(tmp_path):
    """A tutorial's own ``TokenAndPositionEmbedding`` next to the built-in: each checkpoint
    loads as the class it was saved from."""
    builtin = layers.TokenAndPositionEmbedding

    class TokenAndPositionEmbedding(layers.Layer):  # the KerasHub-less tutorial's own layer
        def __init__(self, maxlen=4, vocab_size=10, embed_dim=3, **kwargs):
            super().__init__(**kwargs)
            self.token_emb = layers.Embedding(vocab_size, embed_dim)
            self.maxlen, self.vocab_size, self.embed_dim = maxlen, vocab_size, embed_dim

        def call(self, x):
            return self.token_emb(x)

        def get_config(self):
            return {**super().get_config(), "maxlen": self.maxlen,
                    "vocab_size": self.vocab_size, "embed_dim": self.embed_dim}  # fmt: skip

    assert layers.layer_from_config({"class_name": "TokenAndPositionEmbedding", "config": {
        "vocabulary_size": 10, "sequence_length": 4, "embedding_dim": 3}}).__class__ is builtin
    ids = np.array([[1, 2, 3, 0]])
    for cls, args in ((builtin, (10, 4, 3)), (TokenAndPositionEmbedding, ())):
        inputs = layers.Input(shape=(4,), dtype="int32")
        model = ember.Model(inputs, cls(*args)(inputs))
        path = tmp_path / f"{cls.__module__}.ember"
        model.save(path)
        loaded = ember.models.load_model(path)
        assert type(loaded.layers[1]) is cls
        np.testing.assert_array_equal(loaded.predict(ids, verbose=0), model.predict(ids, verbose=0))
