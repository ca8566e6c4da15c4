"""keras-io text examples re-told on Ember with only the import lines changed.

``import ember as keras`` and ``from ember import layers, ops`` stand for the Keras imports.
Four examples, each with its architecture, shapes and parameter counts asserted, and its training
on small local data asserted to reach a number:

* "Text classification with Transformer": the example's ``TransformerBlock`` and
  ``TokenAndPositionEmbedding`` layers, written as it writes them; IMDB (25,000 reviews) is
  replaced by a synthetic keyword task: a "review" is positive when it holds token 1 and
  negative when it holds token 2, among random tokens.
* "Character-level text generation with LSTM": the model and the ``sample()`` helper on 3,000
  characters of seeded sentences from a small grammar (the example reads Nietzsche, ~600k
  characters, and trains 40 epochs).
* "Sequence to sequence learning for performing number addition": its ``CharacterTable``, data
  generation and ``RepeatVector`` model (2,000 questions instead of 50,000).
* "Bidirectional LSTM on IMDB": the model's summary at the example's sizes, and training on the
  keyword task (480 reviews of up to 16 tokens) with a 1,000-word vocabulary instead of 20,000.

The examples' boolean one-hot arrays (``np.zeros(..., dtype=bool)``) are fed to ``fit`` as they
are (cast to 0/1 floats, as Keras does). A user's layer class named like a built-in one (the
example's ``TokenAndPositionEmbedding``) does not replace the built-in: saved models using the
built-in still load.
"""

from __future__ import annotations

import numpy as np
import pytest

import ember as keras
from ember import layers, ops
from ember.layers.base import LAYER_CLASSES


@pytest.fixture(autouse=True)
def _seed():
    keras.manual_seed(0)


@pytest.fixture
def _numpy_global_seed():
    """``sample()`` draws with NumPy's global generator, as the example does: seed it, and put
    its state back afterwards."""
    state = np.random.get_state()
    np.random.seed(0)
    yield
    np.random.set_state(state)


def _summary_text(model) -> str:
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    return "\n".join(lines)


def _assert_counts(text: str, *counts: str) -> None:
    for count in counts:
        assert count in text, f"{count!r} not in the summary:\n{text}"


# ------------------------------------------------------------------------------ transformer
class TransformerBlock(layers.Layer):
    def __init__(self, embed_dim, num_heads, ff_dim, rate=0.1):
        super().__init__()
        self.att = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
        self.ffn = keras.Sequential(
            [
                layers.Dense(ff_dim, activation="relu"),
                layers.Dense(embed_dim),
            ]
        )
        self.layernorm1 = layers.LayerNormalization(epsilon=1e-6)
        self.layernorm2 = layers.LayerNormalization(epsilon=1e-6)
        self.dropout1 = layers.Dropout(rate)
        self.dropout2 = layers.Dropout(rate)

    def call(self, inputs):
        attn_output = self.att(inputs, inputs)
        attn_output = self.dropout1(attn_output)
        out1 = self.layernorm1(inputs + attn_output)
        ffn_output = self.ffn(out1)
        ffn_output = self.dropout2(ffn_output)
        return self.layernorm2(out1 + ffn_output)


class TokenAndPositionEmbedding(layers.Layer):
    def __init__(self, maxlen, vocab_size, embed_dim):
        super().__init__()
        self.token_emb = layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
        self.pos_emb = layers.Embedding(input_dim=maxlen, output_dim=embed_dim)

    def call(self, x):
        maxlen = ops.shape(x)[-1]
        positions = ops.arange(start=0, stop=maxlen, step=1)
        positions = self.pos_emb(positions)
        x = self.token_emb(x)
        return x + positions


EMBED_DIM = 32  # Embedding size for each token
NUM_HEADS = 2  # Number of attention heads
FF_DIM = 32  # Hidden layer size in feed forward network inside transformer


def _transformer_classifier(maxlen: int, vocab_size: int):
    inputs = layers.Input(shape=(maxlen,))
    embedding_layer = TokenAndPositionEmbedding(maxlen, vocab_size, EMBED_DIM)
    x = embedding_layer(inputs)
    transformer_block = TransformerBlock(EMBED_DIM, NUM_HEADS, FF_DIM)
    x = transformer_block(x)
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dropout(0.1)(x)
    x = layers.Dense(20, activation="relu")(x)
    x = layers.Dropout(0.1)(x)
    outputs = layers.Dense(2, activation="softmax")(x)
    return keras.Model(inputs=inputs, outputs=outputs)


def keyword_reviews(count: int, vocab_size: int, maxlen: int, seed: int = 0):
    """Token-id "reviews" of 4..maxlen tokens (ids 3.. are filler words): label 1 holds the
    keyword 1 somewhere, label 0 the keyword 2; pre-padded with 0 to ``maxlen``, as the
    examples pad IMDB."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(4, maxlen + 1, count)
    labels = rng.integers(0, 2, count)
    reviews = []
    for length, label in zip(lengths, labels):
        review = rng.integers(3, vocab_size, length)
        review[rng.integers(0, length)] = 1 if label else 2
        reviews.append(review)
    return keras.utils.pad_sequences(reviews, maxlen=maxlen), labels


def test_transformer_classifier_summary_at_the_examples_sizes():
    vocab_size = 20000  # Only consider the top 20k words
    maxlen = 200  # Only consider the first 200 words of each movie review
    model = _transformer_classifier(maxlen, vocab_size)
    text = _summary_text(model)

    # token 20000*32 + position 200*32; attention 4*(32*2*32) + 3*2*32 + 32, feed-forward
    # 2*(32*32+32), two layer norms 2*64; Dense(20) 32*20+20; Dense(2) 20*2+2
    _assert_counts(text, "(None, 200, 32)", "646,400", "10,656", "660", "42")
    _assert_counts(text, "Total params: 657,758")
    assert model.count_params() == 657758

    block = model.layers[2]
    assert isinstance(block, TransformerBlock)
    assert block.att.count_params() == 8416
    assert block.ffn.count_params() == 2112
    assert model(np.zeros((2, 200), "int32")).shape == (2, 2)


def test_transformer_classifier_learns_the_keyword_task():
    vocab_size, maxlen = 200, 20
    x, y = keyword_reviews(1200, vocab_size, maxlen)
    x_train, y_train, x_val, y_val = x[:1000], y[:1000], x[1000:], y[1000:]

    model = _transformer_classifier(maxlen, vocab_size)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(
        x_train, y_train, batch_size=32, epochs=2, validation_data=(x_val, y_val), verbose=0
    )
    assert history.history["loss"][1] < history.history["loss"][0]
    assert history.history["val_accuracy"][-1] > 0.9  # 1.0 with seed 0

    probabilities = model.predict(x_val[:4], verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_a_user_layer_named_like_a_builtin_keeps_models_loadable(tmp_path):
    inputs = keras.Input(shape=(4,), dtype="int32")
    outputs = layers.TokenAndPositionEmbedding(10, 4, 8)(inputs)
    path = tmp_path / "builtin.keras"
    keras.Model(inputs, outputs).save(path)
    # the same class statement as the example's, once more: the built-in keeps its name
    type("TokenAndPositionEmbedding", (TokenAndPositionEmbedding,), {})
    loaded = keras.models.load_model(path)
    assert type(loaded.layers[1]) is layers.TokenAndPositionEmbedding
    assert LAYER_CLASSES["TokenAndPositionEmbedding"] is layers.TokenAndPositionEmbedding


# ------------------------------------------------------------------------------ character LSTM
MAXLEN = 40  # cut the text in semi-redundant sequences of MAXLEN characters
STEP = 3


def _nietzsche_stand_in() -> str:
    """About 3,000 characters of seeded sentences from a small grammar: a local text with
    enough regularity for a few epochs to show."""
    rng = np.random.default_rng(0)
    subjects = ["the miller", "a wanderer", "the old judge", "his daughter", "every sailor"]
    verbs = ["watched", "carried", "forgot", "praised", "followed"]
    objects = ["the grey river", "a heavy lantern", "the long road", "their quiet house"]
    endings = [" at dawn", " in silence", "", " before the storm", " without a word"]
    sentences = []
    while sum(len(s) for s in sentences) < 3000:
        parts = (subjects, verbs, objects, endings)
        words = [part[rng.integers(len(part))] for part in parts]
        sentences.append(f"{words[0]} {words[1]} {words[2]}{words[3]}. ")
    return "".join(sentences)[:3000]


def _vectorized(text: str):
    chars = sorted(list(set(text)))
    char_indices = dict((c, i) for i, c in enumerate(chars))
    indices_char = dict((i, c) for i, c in enumerate(chars))

    sentences = []
    next_chars = []
    for i in range(0, len(text) - MAXLEN, STEP):
        sentences.append(text[i : i + MAXLEN])
        next_chars.append(text[i + MAXLEN])

    x = np.zeros((len(sentences), MAXLEN, len(chars)), dtype=bool)
    y = np.zeros((len(sentences), len(chars)), dtype=bool)
    for i, sentence in enumerate(sentences):
        for t, char in enumerate(sentence):
            x[i, t, char_indices[char]] = 1
        y[i, char_indices[next_chars[i]]] = 1
    return chars, char_indices, indices_char, x, y


def _char_model(num_chars: int):
    model = keras.Sequential(
        [
            keras.Input(shape=(MAXLEN, num_chars)),
            layers.LSTM(128),
            layers.Dense(num_chars, activation="softmax"),
        ]
    )
    optimizer = keras.optimizers.RMSprop(learning_rate=0.01)
    model.compile(loss="categorical_crossentropy", optimizer=optimizer)
    return model


def sample(preds, temperature=1.0):
    # helper function to sample an index from a probability array
    preds = np.asarray(preds).astype("float64")
    preds = np.log(preds) / temperature
    exp_preds = np.exp(preds)
    preds = exp_preds / np.sum(exp_preds)
    probas = np.random.multinomial(1, preds, 1)
    return np.argmax(probas)


def test_sample_reweights_by_temperature(_numpy_global_seed):
    preds = np.array([0.1, 0.6, 0.3], np.float32)
    assert all(sample(preds, 0.01) == 1 for _ in range(20))  # almost greedy when cold
    draws = np.bincount([sample(preds, 1.0) for _ in range(3000)], minlength=3) / 3000
    np.testing.assert_allclose(draws, preds, atol=0.03)  # temperature 1: the model's own odds


def test_character_lstm_learns_and_generates(_numpy_global_seed):
    text = _nietzsche_stand_in()
    chars, char_indices, indices_char, x, y = _vectorized(text)
    assert x.shape == (len(range(0, len(text) - MAXLEN, STEP)), MAXLEN, len(chars))

    model = _char_model(len(chars))
    n = len(chars)
    summary = _summary_text(model)
    _assert_counts(summary, f"{4 * (128 * (n + 128) + 128):,}", f"{128 * n + n:,}")

    # (the boolean arrays go in as they are, as in the example)
    losses = []
    start_index = 0
    for _epoch in range(3):
        losses += model.fit(x, y, batch_size=128, epochs=1, verbose=0).history["loss"]
        for diversity in [0.2, 1.0]:
            generated = ""
            sentence = text[start_index : start_index + MAXLEN]
            for _ in range(10):
                x_pred = np.zeros((1, MAXLEN, len(chars)))
                for t, char in enumerate(sentence):
                    x_pred[0, t, char_indices[char]] = 1.0
                preds = model.predict(x_pred, verbose=0)[0]
                next_index = sample(preds, diversity)
                next_char = indices_char[next_index]
                sentence = sentence[1:] + next_char
                generated += next_char
            assert len(generated) == 10 and set(generated) <= set(chars)

    # 3.37, 2.78, 2.69 with seed 0: below the cross-entropy of guessing by the frequencies of
    # the next characters (2.82), so the LSTM uses the context
    assert losses[-1] < 0.9 * losses[0]
    frequencies = y.mean(axis=0)
    frequencies = frequencies[frequencies > 0]
    assert losses[-1] < -(frequencies * np.log(frequencies)).sum()
    np.testing.assert_allclose(preds.sum(), 1.0, rtol=1e-5)


def test_boolean_one_hot_inputs_as_the_examples_build_them():
    chars, _, _, x, y = _vectorized(_nietzsche_stand_in()[:400])
    model = _char_model(len(chars))
    history = model.fit(x, y, batch_size=128, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


# ------------------------------------------------------------------------------ addition RNN
TRAINING_SIZE = 2000  # the example: 50,000
DIGITS = 3
REVERSE = True
# Maximum length of input is 'int + int' (e.g., '345+678'). Maximum length of int is DIGITS.
QUESTION_LEN = DIGITS + 1 + DIGITS


class CharacterTable:
    """Given a set of characters:
    + Encode them to a one-hot integer representation
    + Decode the one-hot or integer representation to their character output
    + Decode a vector of probabilities to their character output
    """

    def __init__(self, chars):
        self.chars = sorted(set(chars))
        self.char_indices = dict((c, i) for i, c in enumerate(self.chars))
        self.indices_char = dict((i, c) for i, c in enumerate(self.chars))

    def encode(self, C, num_rows):
        """One-hot encode the string C into num_rows rows."""
        x = np.zeros((num_rows, len(self.chars)))
        for i, c in enumerate(C):
            x[i, self.char_indices[c]] = 1
        return x

    def decode(self, x, calc_argmax=True):
        """Decode one-hot rows or probabilities (or indices, with calc_argmax=False)."""
        if calc_argmax:
            x = x.argmax(axis=-1)
        return "".join(self.indices_char[x] for x in x)


# All the numbers, plus sign and space for padding.
ADDITION_CHARS = "0123456789+ "


def _addition_data(ctable):
    rng = np.random.default_rng(0)  # the example draws from np.random's global generator
    questions, expected, seen = [], [], set()
    while len(questions) < TRAINING_SIZE:

        def f():
            digits = rng.integers(1, DIGITS + 1)
            return int("".join(rng.choice(list("0123456789")) for i in range(digits)))

        a, b = f(), f()
        # Skip any addition questions we've already seen; also x+Y == Y+x (hence the sorting).
        key = tuple(sorted((a, b)))
        if key in seen:
            continue
        seen.add(key)
        # Pad the data with spaces such that it is always QUESTION_LEN.
        q = f"{a}+{b}"
        query = q + " " * (QUESTION_LEN - len(q))
        ans = str(a + b)
        # Answers can be of maximum size DIGITS + 1.
        ans += " " * (DIGITS + 1 - len(ans))
        if REVERSE:
            # Reverse the query, e.g., '12+345  ' becomes '  543+21'.
            query = query[::-1]
        questions.append(query)
        expected.append(ans)

    x = np.zeros((len(questions), QUESTION_LEN, len(ADDITION_CHARS)), dtype="float32")
    y = np.zeros((len(questions), DIGITS + 1, len(ADDITION_CHARS)), dtype="float32")
    for i, sentence in enumerate(questions):
        x[i] = ctable.encode(sentence, QUESTION_LEN)
    for i, sentence in enumerate(expected):
        y[i] = ctable.encode(sentence, DIGITS + 1)
    return questions, expected, x, y


def _addition_model():
    num_layers = 1
    model = keras.Sequential()
    # "Encode" the input sequence using a LSTM, producing an output of size 128.
    model.add(layers.LSTM(128, input_shape=(QUESTION_LEN, len(ADDITION_CHARS))))
    # As the decoder RNN's input, repeatedly provide with the last output of RNN for each
    # time step: DIGITS + 1 times, the maximum length of output (999+999=1998).
    model.add(layers.RepeatVector(DIGITS + 1))
    for _ in range(num_layers):
        model.add(layers.LSTM(128, return_sequences=True))
    # For each step of the output sequence, decide which character should be chosen.
    model.add(layers.Dense(len(ADDITION_CHARS), activation="softmax"))
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def test_addition_model_with_repeat_vector():
    ctable = CharacterTable(ADDITION_CHARS)
    questions, expected, x, y = _addition_data(ctable)
    assert ctable.decode(x[0]) == questions[0] and ctable.decode(y[0]) == expected[0]
    a, b = questions[0][::-1].split("+")
    assert int(a) + int(b) == int(expected[0])

    model = _addition_model()
    text = _summary_text(model)
    # 4*(128*(12+128)+128); RepeatVector none; 4*(128*(128+128)+128); 128*12+12
    _assert_counts(text, "(None, 4, 128)", "72,192", "131,584", "1,548", "(None, 4, 12)")
    _assert_counts(text, "Total params: 205,324")

    # Explicitly set apart 10% for validation data that we never train over.
    split_at = len(x) - len(x) // 10
    (x_train, x_val), (y_train, y_val) = (x[:split_at], x[split_at:]), (y[:split_at], y[split_at:])
    history = model.fit(
        x_train, y_train, batch_size=32, epochs=2, validation_data=(x_val, y_val), verbose=0
    )
    assert history.history["loss"][1] < history.history["loss"][0]
    # per-character accuracy; 1/12 by chance, 0.38 after two short epochs with seed 0
    assert history.history["val_accuracy"][-1] > 0.3

    rowx = x_val[np.array([0])]
    preds = np.argmax(model.predict(rowx, verbose=0), axis=-1)
    guess = ctable.decode(preds[0], calc_argmax=False)
    assert len(guess) == DIGITS + 1 and set(guess) <= set(ADDITION_CHARS)


# ------------------------------------------------------------------------------ bidirectional
def _bidirectional_lstm(max_features: int):
    # Input for variable-length sequences of integers
    inputs = keras.Input(shape=(None,), dtype="int32")
    # Embed each integer in a 128-dimensional vector
    x = layers.Embedding(max_features, 128)(inputs)
    # Add 2 bidirectional LSTMs
    x = layers.Bidirectional(layers.LSTM(64, return_sequences=True))(x)
    x = layers.Bidirectional(layers.LSTM(64))(x)
    # Add a classifier
    outputs = layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs)


def test_bidirectional_lstm_summary_and_training():
    text = _summary_text(_bidirectional_lstm(20000))
    # 20000*128; 2 * 4*(64*(128+64)+64) twice; 128+1
    _assert_counts(text, "2,560,000", "98,816", "(None, None, 128)", "129")
    _assert_counts(text, "Total params: 2,757,761")

    max_features, maxlen = 1000, 16
    x, y = keyword_reviews(600, max_features, maxlen, seed=1)
    model = _bidirectional_lstm(max_features)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(
        x[:480], y[:480], batch_size=32, epochs=2, validation_data=(x[480:], y[480:]), verbose=0
    )
    assert history.history["loss"][1] < history.history["loss"][0]
    assert history.history["val_accuracy"][-1] > 0.85  # 0.96 with seed 0
