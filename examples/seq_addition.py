"""Learning to add from characters: the sequence-to-sequence "addition RNN".

The question is a string such as ``"123+45 "`` (two numbers of up to ``digits`` digits, padded
with spaces to ``2 * digits + 1`` characters) and the answer is the string ``"168 "`` (the sum,
padded to ``digits + 1`` characters). The network sees one one-hot character per time step and
has to emit the answer one character per step:

* an encoder LSTM reads the question and keeps only its final output, a fixed-size vector;
* ``layers.RepeatVector`` copies that vector once per answer character;
* a decoder LSTM (``return_sequences=True``) unrolls it into one vector per answer step, and
  ``TimeDistributed(Dense(softmax))`` turns each into a distribution over the 12 characters.

As in the Keras example the question is fed reversed (``" 54+321"``): the last digits of the
two numbers, which are added first, then sit close to each other and to the end of the input.
The pairs are drawn with numbers of 1 to ``digits`` digits equally often; a pair and its swap
count as one question, and the held-out pairs are questions never seen in training. Scores:
per-character accuracy (each answer step on its own) and exact match (the whole answer right).

Run from the repository root (``--quick`` is the 2-digit variant the tests run)::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python examples/seq_addition.py
    OPENBLAS_NUM_THREADS=1 .venv/bin/python examples/seq_addition.py --quick
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np

import ember
from ember import layers

CHARS = "0123456789+ "
PLUS, SPACE = CHARS.index("+"), CHARS.index(" ")

FULL = {"digits": 3, "n_train": 50_000, "n_test": 5_000, "units": 128, "epochs": 30,
        "batch_size": 64, "learning_rate": 3e-3}  # fmt: skip
QUICK = {"digits": 2, "n_train": 3_000, "n_test": 1_000, "units": 64, "epochs": 15,
         "batch_size": 32, "learning_rate": 1e-2}  # fmt: skip


# ------------------------------------------------------------------------------ the data
def digit_count(values: np.ndarray) -> np.ndarray:
    """How many decimal digits each non-negative integer has (0 has one).

    Example:
        >>> digit_count(np.array([0, 7, 10, 999, 1000])).tolist()
        [1, 1, 2, 3, 4]
    """
    values = np.asarray(values)
    return 1 + sum((values >= 10**k).astype(np.int64) for k in range(1, 20))


def write_numbers(chars: np.ndarray, numbers: np.ndarray, start: np.ndarray, width: int) -> None:
    """Write each ``numbers[i]`` in decimal into ``chars[i]`` from column ``start[i]`` (at most
    ``width`` digits; a loop over digit positions, each one vectorized over the samples)."""
    lengths = digit_count(numbers)
    rows = np.arange(len(numbers))
    for j in range(width):
        has = j < lengths
        power = 10 ** np.maximum(lengths - 1 - j, 0)
        chars[rows[has], start[has] + j] = (numbers[has] // power[has]) % 10


def encode(a: np.ndarray, b: np.ndarray, digits: int, reverse: bool = True):
    """Character ids of the questions ``"a+b"`` and of the answers ``a + b``, space-padded.

    Example:
        >>> q, y = encode(np.array([123]), np.array([45]), 3, reverse=False)
        >>> "".join(CHARS[i] for i in q[0]), "".join(CHARS[i] for i in y[0])
        ('123+45 ', '168 ')
    """
    n = len(a)
    questions = np.full((n, 2 * digits + 1), SPACE, np.int64)
    write_numbers(questions, a, np.zeros(n, np.int64), digits)
    len_a = digit_count(a)
    questions[np.arange(n), len_a] = PLUS
    write_numbers(questions, b, len_a + 1, digits)
    answers = np.full((n, digits + 1), SPACE, np.int64)
    write_numbers(answers, a + b, np.zeros(n, np.int64), digits + 1)
    return (questions[:, ::-1].copy() if reverse else questions), answers


def draw_pairs(n: int, digits: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` distinct unordered pairs ``(low, high)``, in random order. Each number has a digit
    count drawn uniformly from 1..``digits``, then a value uniform below ``10**count``.

    Example:
        >>> low, high = draw_pairs(4, 2, np.random.default_rng(0))
        >>> len(set(zip(low.tolist(), high.tolist()))), bool((low <= high).all())
        (4, True)
    """
    top = 10**digits
    distinct = (top + 1) * top // 2
    if n > distinct:
        raise ValueError(
            f"draw_pairs: n must be at most {distinct} (the number of distinct pairs for "
            f"digits={digits}), got {n}"
        )
    keys = np.empty(0, np.int64)
    while len(keys) < n:  # each round draws a batch; duplicates are dropped, order kept
        width = rng.integers(1, digits + 1, (2, 2 * n))
        numbers = rng.integers(0, 10**width)
        low, high = numbers.min(axis=0), numbers.max(axis=0)
        keys = np.concatenate([keys, low * top + high])
        _, first = np.unique(keys, return_index=True)
        keys = keys[np.sort(first)]
    # shuffled, so that a split of them is random (the common pairs come first in ``keys``)
    keys = rng.permutation(keys[:n])
    return keys // top, keys % top


def make_data(digits: int, n_train: int, n_test: int, seed: int, reverse: bool = True) -> dict:
    """One-hot questions ``(n, 2*digits+1, 12)`` and answer ids ``(n, digits+1)``; the test
    questions are disjoint from the training ones. The order within a pair is random."""
    rng = np.random.default_rng(seed)
    low, high = draw_pairs(n_train + n_test, digits, rng)
    swap = rng.random(len(low)) < 0.5
    a, b = np.where(swap, high, low), np.where(swap, low, high)
    questions, answers = encode(a, b, digits, reverse)
    onehot = np.eye(len(CHARS), dtype=np.float32)[questions]
    return {
        "x_train": onehot[:n_train], "y_train": answers[:n_train],
        "x_test": onehot[n_train:], "y_test": answers[n_train:],
        "q_test": questions[n_train:],
    }  # fmt: skip


# ------------------------------------------------------------------------------ the model
def build(digits: int, units: int, learning_rate, seed: int) -> ember.Model:
    """Encoder LSTM → RepeatVector → decoder LSTM → per-step softmax over the characters."""
    ember.manual_seed(seed)
    questions = layers.Input(shape=(2 * digits + 1, len(CHARS)))
    summary = layers.LSTM(units)(questions)
    repeated = layers.RepeatVector(digits + 1)(summary)
    decoded = layers.LSTM(units, return_sequences=True)(repeated)
    chars = layers.TimeDistributed(layers.Dense(len(CHARS), activation="softmax"))(decoded)
    model = ember.Model(questions, chars)
    model.compile(optimizer=ember.optimizers.Adam(learning_rate=learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def decode(ids: np.ndarray) -> list[str]:
    """Character ids back to strings."""
    table = np.array(list(CHARS))
    return ["".join(row) for row in table[ids]]


def run(digits: int, n_train: int, n_test: int, units: int, epochs: int, batch_size: int,
        learning_rate: float, seed: int = 0, reverse: bool = True) -> dict:
    """Train on ``n_train`` questions, score the ``n_test`` held-out ones; returns the numbers.
    The learning rate decays along a cosine to 0 over the run, so the last epochs settle."""
    data = make_data(digits, n_train, n_test, seed, reverse)
    steps = -(-n_train // batch_size) * epochs
    model = build(digits, units, ember.optimizers.schedules.CosineDecay(learning_rate, steps),
                  seed)
    start = time.perf_counter()
    history = model.fit(data["x_train"], data["y_train"], epochs=epochs, batch_size=batch_size,
                        verbose=0).history
    seconds = time.perf_counter() - start
    predicted = model.predict(data["x_test"], verbose=0).argmax(axis=-1)
    right = predicted == data["y_test"]
    _, metric_accuracy = model.evaluate(data["x_test"], data["y_test"], verbose=0)
    questions = decode(data["q_test"][:, ::-1] if reverse else data["q_test"])
    return {
        "digits": digits,
        "epochs": epochs,
        "n_train": n_train,
        "n_test": n_test,
        "char_accuracy": float(right.mean()),
        "exact_match": float(right.all(axis=1).mean()),
        "metric_accuracy": float(metric_accuracy),
        "train_accuracy_curve": [float(v) for v in history["accuracy"]],
        "seconds": seconds,
        "samples": list(zip(questions[:5], decode(predicted[:5]), decode(data["y_test"][:5]))),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the fast 2-digit variant (CI)")
    for name in FULL:
        kind = float if name == "learning_rate" else int
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None,
                            help=f"default {FULL[name]} ({QUICK[name]} with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-reverse", action="store_true", help="feed the questions as written")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict:
    """Parse the command line, train, print the finding and return the numbers."""
    args = parse_args(argv)
    settings = dict(QUICK if args.quick else FULL)
    settings.update({k: v for k, v in vars(args).items() if k in settings and v is not None})
    r = run(**settings, seed=args.seed, reverse=not args.no_reverse)
    for question, guess, answer in r["samples"]:
        print(f"  {question} = {guess}  ({'ok' if guess == answer else 'wrong, ' + answer})")
    print(
        f"Addition RNN ({r['digits']}-digit numbers, {r['n_train']} training questions, "
        f"{r['epochs']} epochs, {r['seconds']:.0f} s): on {r['n_test']} held-out questions, "
        f"exact match {r['exact_match']:.4f}, per-character accuracy {r['char_accuracy']:.4f}."
    )
    return r


if __name__ == "__main__":
    main()
