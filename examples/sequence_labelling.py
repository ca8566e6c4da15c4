"""Tagging every word of variable-length sentences, with the padding masked out.

A synthetic part-of-speech task. The vocabulary has determiners (``the``), adjectives
(``red``), nouns (``dog``), verbs (``sees``) and homographs (``book``, ``watch``) that are a
noun or a verb depending on their neighbours:

* a homograph right after a determiner or an adjective is a NOUN (``the book``);
* otherwise it is a VERB when a determiner or an adjective follows it (``book the ...``);
* otherwise it is a NOUN;
* every other word has its class's tag (DET, ADJ, NOUN, VERB).

Sentences are random words, 4 to ``max_len`` of them, padded with id 0 to ``max_len``.
``Embedding(mask_zero=True)`` turns id 0 into a mask that the LSTM, the loss and the accuracy
respect: a padded step gets no gradient and counts for nothing in the metrics, whatever its
target says. Two taggers with the same budget:

* a forward ``LSTM``: when it tags a word it has not read the next one yet, so it can only
  guess NOUN for a homograph whose left neighbour does not decide it. The best any
  left-to-right tagger can do is computed on the test set ("ceiling");
* ``Bidirectional(LSTM)``: each step sees both neighbours and can be exact.

The padding is shown not to count three ways: ``evaluate``'s accuracy equals the accuracy of
``predict`` computed by hand on the real words; the same predictions scored over every step
(padding included, as an unmasked metric would) give a different, meaningless number; and
replacing the targets at padded steps with random tags leaves the loss and accuracy unchanged.

Run from the repository root (``--quick`` is the small variant the tests run)::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python examples/sequence_labelling.py
    OPENBLAS_NUM_THREADS=1 .venv/bin/python examples/sequence_labelling.py --quick
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np

import ember
from ember import layers

TAGS = ("DET", "ADJ", "NOUN", "VERB")
DET, ADJ, NOUN, VERB = range(4)
HOMOGRAPH = 4  # a word class, not a tag
LEXICON = {
    DET: ("the", "a", "this"),
    ADJ: ("big", "red", "old", "new", "small", "green"),
    NOUN: ("cat", "dog", "car", "house", "tree", "bird", "idea", "city", "road", "ship"),
    VERB: ("sees", "likes", "takes", "finds", "eats", "moves"),
    HOMOGRAPH: ("book", "watch", "run", "fly", "fish", "play"),
}
WORDS = ("<pad>",) + tuple(w for c in sorted(LEXICON) for w in LEXICON[c])
# WORD_CLASS[id] is the class of word ``id``; id 0 (padding) gets -1, which no rule matches
WORD_CLASS = np.array([-1] + [c for c in sorted(LEXICON) for _ in LEXICON[c]])
VOCAB = len(WORDS)

FULL = {"n_train": 8000, "n_test": 2000, "max_len": 40, "units": 32, "epochs": 8,
        "batch_size": 32, "learning_rate": 3e-3}  # fmt: skip
QUICK = {"n_train": 1000, "n_test": 500, "max_len": 20, "units": 16, "epochs": 6,
         "batch_size": 32, "learning_rate": 1e-2}  # fmt: skip


# ------------------------------------------------------------------------------ the data
def tag(ids: np.ndarray) -> np.ndarray:
    """The tags of padded sentences ``(n, time)`` of word ids (0 at padded steps, whose tag is
    set to 0; the masked loss and metrics never read it).

    Example:
        >>> ids = np.array([[WORDS.index(w) for w in ("the", "book", "book", "a", "fly")] + [0]])
        >>> [TAGS[t] for t in tag(ids)[0, :5]]
        ['DET', 'NOUN', 'VERB', 'DET', 'NOUN']
    """
    word_class = WORD_CLASS[ids]
    modifier = (word_class == DET) | (word_class == ADJ)
    before = np.zeros_like(modifier)
    before[:, 1:] = modifier[:, :-1]  # the word to the left is a DET or ADJ
    after = np.zeros_like(modifier)
    after[:, :-1] = modifier[:, 1:]  # the word to the right (never padding) is a DET or ADJ
    homograph_tag = np.where(before, NOUN, np.where(after, VERB, NOUN))
    tags = np.where(word_class == HOMOGRAPH, homograph_tag, word_class)
    return np.where(ids == 0, 0, tags)


def make_sentences(n: int, max_len: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """``n`` random sentences of 4..``max_len`` words, padded with 0: ``(ids, tags)``.

    Example:
        >>> ids, tags = make_sentences(3, 6, np.random.default_rng(0))
        >>> ids.shape, bool(((ids != 0).sum(axis=1) >= 4).all())
        ((3, 6), True)
    """
    lengths = rng.integers(4, max_len + 1, n)
    ids = rng.integers(1, VOCAB, (n, max_len))
    ids[np.arange(max_len) >= lengths[:, None]] = 0
    return ids, tag(ids)


# ------------------------------------------------------------------------------ the model
def build(kind: str, units: int, learning_rate: float, seed: int) -> ember.Model:
    """Embedding(mask_zero) → LSTM or Bidirectional(LSTM) over every step → per-step softmax."""
    ember.manual_seed(seed)
    ids = layers.Input(shape=(None,), dtype="int32")
    hidden = layers.Embedding(VOCAB, 16, mask_zero=True)(ids)
    lstm = layers.LSTM(units, return_sequences=True)
    hidden = (layers.Bidirectional(lstm) if kind == "bidirectional" else lstm)(hidden)
    tags = layers.Dense(len(TAGS), activation="softmax")(hidden)
    model = ember.Model(ids, tags)
    model.compile(optimizer=ember.optimizers.Adam(learning_rate=learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def score(model: ember.Model, ids: np.ndarray, tags: np.ndarray, rng: np.random.Generator,
          example: int = 0) -> dict:
    """The accuracies of one trained tagger, the checks that padding counts for nothing, and
    its tags for sentence ``example``."""
    real = ids != 0
    loss, accuracy = model.evaluate(ids, tags, verbose=0)
    predicted = model.predict(ids, verbose=0).argmax(axis=-1)
    right = predicted == tags
    scrambled = np.where(real, tags, rng.integers(0, len(TAGS), tags.shape))
    loss_scrambled, accuracy_scrambled = model.evaluate(ids, scrambled, verbose=0)
    homograph = WORD_CLASS[ids] == HOMOGRAPH
    return {
        "accuracy": float(accuracy),  # evaluate(): masked, real words only
        "loss": float(loss),
        "real_token_accuracy": float(right[real].mean()),  # by hand from predict()
        "all_steps_accuracy": float(right.mean()),  # what an unmasked metric would say
        "homograph_accuracy": float(right[homograph].mean()),
        "scrambled_padding_loss": float(loss_scrambled),
        "scrambled_padding_accuracy": float(accuracy_scrambled),
        "example": predicted[example],
    }


def run(n_train: int, n_test: int, max_len: int, units: int, epochs: int, batch_size: int,
        learning_rate: float, seed: int = 0) -> dict:
    """Train both taggers on the same sentences from the same seed; score them on new ones."""
    rng = np.random.default_rng(seed)
    x_train, y_train = make_sentences(n_train, max_len, rng)
    x_test, y_test = make_sentences(n_test, max_len, rng)
    real = x_test != 0
    verb_homographs = (WORD_CLASS[x_test] == HOMOGRAPH) & (y_test == VERB)
    # the sentence to show: the first short one with a homograph that only its right
    # neighbour makes a VERB (the case that separates the two taggers)
    candidates = np.flatnonzero(verb_homographs.any(axis=1) & (real.sum(axis=1) <= 12))
    example = int(candidates[0]) if len(candidates) else 0
    result = {
        "padding_fraction": float(1.0 - real.mean()),
        "homograph_fraction": float((WORD_CLASS[x_test] == HOMOGRAPH)[real].mean()),
        # A left-to-right tagger cannot see the word that makes a homograph a VERB; NOUN is
        # its best guess there, so it must miss exactly those.
        "forward_ceiling": float(1.0 - verb_homographs.sum() / real.sum()),
        "sentence": x_test[example],
        "gold": y_test[example],
    }
    for kind in ("forward", "bidirectional"):
        model = build(kind, units, learning_rate, seed)
        start = time.perf_counter()
        model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, verbose=0)
        seconds = time.perf_counter() - start
        result[kind] = {**score(model, x_test, y_test, rng, example), "seconds": seconds}
    return result


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the small variant (CI)")
    for name in FULL:
        kind = float if name == "learning_rate" else int
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None,
                            help=f"default {FULL[name]} ({QUICK[name]} with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def _tagged(ids: np.ndarray, tags: np.ndarray) -> str:
    return " ".join(f"{WORDS[i]}/{TAGS[t]}" for i, t in zip(ids, tags) if i != 0)


def main(argv: Sequence[str] | None = None) -> dict:
    """Parse the command line, train both taggers, print the finding and return the numbers."""
    args = parse_args(argv)
    settings = dict(QUICK if args.quick else FULL)
    settings.update({k: v for k, v in vars(args).items() if k in settings and v is not None})
    r = run(**settings, seed=args.seed)
    print(f"  gold:          {_tagged(r['sentence'], r['gold'])}")
    for kind in ("forward", "bidirectional"):
        print(f"  {kind + ':':14} {_tagged(r['sentence'], r[kind]['example'])}")
    fwd, bi = r["forward"], r["bidirectional"]
    print(
        f"Sequence labelling ({settings['n_train']} sentences of 4-{settings['max_len']} words, "
        f"{settings['epochs']} epochs; {r['padding_fraction']:.0%} of the test steps are "
        f"padding): per-word accuracy on the real words of held-out sentences: forward LSTM "
        f"{fwd['accuracy']:.4f} (the best a left-to-right tagger can do: "
        f"{r['forward_ceiling']:.4f}; homographs {fwd['homograph_accuracy']:.4f}), "
        f"Bidirectional LSTM {bi['accuracy']:.4f} (homographs {bi['homograph_accuracy']:.4f}). "
        f"The padding does not count: computed by hand on the real words the Bidirectional "
        f"tagger scores {bi['real_token_accuracy']:.4f}, scored over every step including "
        f"padding {bi['all_steps_accuracy']:.4f}; with random targets at the padded steps the "
        f"loss and accuracy stay {bi['scrambled_padding_loss']:.6g} and "
        f"{bi['scrambled_padding_accuracy']:.4f} (against {bi['loss']:.6g} and "
        f"{bi['accuracy']:.4f})."
    )
    return r


if __name__ == "__main__":
    main()
