"""``ember.generation`` driving real Ember decoders: a recurrent language model whose cache is
its LSTM state, and a Transformer decoder whose cache holds its keys and values. Decoding with
the cache must give exactly the tokens of recomputing the whole sequence at every step, for
greedy search, seeded sampling and beam search (whose cache is reordered between beams)."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import generation, layers

VOCAB, EOS = 12, 1


def _prompt():
    return np.array([[2, 5, 7], [3, 3, 9]])


class RecurrentLM:
    """Embedding → LSTM → Dense; the cache is the LSTM's ``[h, c]``."""

    def __init__(self):
        ember.manual_seed(0)
        self.embed = layers.Embedding(VOCAB, 8, dtype="float64")
        self.lstm = layers.LSTM(16, return_sequences=True, return_state=True, dtype="float64")
        self.head = layers.Dense(VOCAB, dtype="float64")

    def full(self, tokens):
        outputs, _, _ = self.lstm(self.embed(tokens))
        return self.head(outputs[:, -1]).numpy()

    def step(self, new_tokens, cache):
        outputs, h, c = self.lstm(self.embed(new_tokens), initial_state=cache)
        return self.head(outputs[:, -1]), [h, c]


class TransformerLM:
    """TokenAndPositionEmbedding → 2 TransformerDecoder blocks → Dense; the cache holds each
    block's keys and values and the position reached."""

    def __init__(self):
        ember.manual_seed(0)
        self.embed = layers.TokenAndPositionEmbedding(VOCAB, 32, 16, dtype="float64")
        self.blocks = [layers.TransformerDecoder(32, 2, dtype="float64") for _ in range(2)]
        self.head = layers.Dense(VOCAB, dtype="float64")

    def full(self, tokens):
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x)
        return self.head(x[:, -1]).numpy()

    def step(self, new_tokens, cache):
        start = 0 if cache is None else int(cache["position"][0])
        x = self.embed(new_tokens, start_index=start)
        caches = []
        for i, block in enumerate(self.blocks):
            x, block_cache = block(x, cache={} if cache is None else cache[f"block_{i}"])
            caches.append(block_cache)
        position = np.full(new_tokens.shape[0], start + new_tokens.shape[1])
        new_cache = {f"block_{i}": c for i, c in enumerate(caches)}
        new_cache["position"] = position
        return self.head(x[:, -1]), new_cache


@pytest.mark.parametrize("model_class", [RecurrentLM, TransformerLM], ids=["lstm", "transformer"])
@pytest.mark.parametrize(
    "options",
    [
        {"method": "greedy"},
        {"method": "sample", "temperature": 0.8, "top_k": 5, "seed": 3},
        {"method": "sample", "top_p": 0.9, "seed": 4},
        {"method": "beam", "num_beams": 3},
    ],
    ids=["greedy", "top_k", "top_p", "beam"],
)
def test_cached_decoding_gives_the_tokens_of_recomputing(model_class, options):
    model = model_class()
    with ember.no_grad():
        cached = generation.generate(
            model.step, _prompt(), max_new_tokens=6, eos_token_id=EOS, **options
        )
        recomputed = generation.generate(
            generation.recompute_step(model.full), _prompt(), max_new_tokens=6,
            eos_token_id=EOS, **options,
        )  # fmt: skip
    np.testing.assert_array_equal(cached, recomputed)
    assert cached.shape[0] == 2 and 3 < cached.shape[1] <= 9
    np.testing.assert_array_equal(cached[:, :3], _prompt())


def test_greedy_decoding_follows_the_models_argmax():
    model = TransformerLM()
    with ember.no_grad():
        tokens = generation.generate(model.step, _prompt(), max_new_tokens=4)
        sequence = _prompt()
        for _ in range(4):
            sequence = np.concatenate([sequence, model.full(sequence).argmax(-1)[:, None]], 1)
    np.testing.assert_array_equal(tokens, sequence)
