"""A character-level GPT trained on the King James Bible, sampled with and without a KV cache.

The model is GPT-style and decoder-only: ``TokenAndPositionEmbedding`` → ``num_layers`` ×
``TransformerDecoder`` (pre-norm, ReLU, causal self-attention, no encoder) → a final
``LayerNormalization`` → ``Dense(vocab)``, trained to predict every next character of random
``context``-character windows of the first 90 % of the text (Adam with cosine decay,
sparse cross-entropy on the ``(batch, time, vocab)`` logits). The last 10 % is the validation
text: its loss, in nats and in bits per character (nats / ln 2), is reported before and after
training.

Samples are drawn from a few prompts with temperature and top-k sampling
(``ember.generation.generate``, seeded) twice: with a step function that feeds the model one
new token with the key/value cache of the earlier ones (``cache=``, ``start_index=``), and
with one that re-reads the whole sequence at every step (``ember.generation.recompute_step``).
Same model, prompts and seed: the tokens must be identical; the script reports the tokens/s of
both and the speed-up.

The text is the KJV from the Debian package ``sword-text-kjv`` (``ember.datasets.text_corpus``);
without it the script prints the install command and exits with status 1. ``--text PATH``
trains on any UTF-8 text file instead.

Run from the repository root::

    .venv/bin/python examples/char_gpt.py                 # the full run (a few minutes)
    .venv/bin/python examples/char_gpt.py --fast          # the CI variant, on the excerpt
    .venv/bin/python examples/char_gpt.py --text my.txt   # another text

The numbers and samples measured on a 2-core CPU are in ``examples/README.md``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import ember
from ember import layers
from ember.datasets import DatasetUnavailableError, text_corpus
from ember.generation import generate, recompute_step
from ember.text import CharVocabulary

EXCERPT = Path(__file__).resolve().parent.parent / "tests" / "data" / "kjv_excerpt.txt"
PROMPTS = ("And God said", "In the beginning", "And the LORD spake unto Moses")

# The full run and the CI variant (``--fast``, on tests/data/kjv_excerpt.txt by default).
CONFIGS = {
    "full": dict(
        context=128, dim=128, heads=4, ff_dim=512, num_layers=4, batch_size=32,
        rounds=10, steps_per_round=100, learning_rate=4e-3, warmup_steps=50, eval_windows=256,
        samples_per_prompt=2, new_tokens=100, temperature=0.8, top_k=10,
    ),
    "fast": dict(
        context=128, dim=64, heads=4, ff_dim=128, num_layers=2, batch_size=16,
        rounds=1, steps_per_round=40, learning_rate=1e-2, warmup_steps=4, eval_windows=32,
        samples_per_prompt=1, new_tokens=96, temperature=0.8, top_k=10,
    ),
}  # fmt: skip


# ------------------------------------------------------------------------------------- data
def read_text(path: str | None, fast: bool) -> str:
    """The training text: the file at ``path``, else the bundled excerpt (``fast``), else the
    KJV from its Debian package (raises ``DatasetUnavailableError`` naming the package).

    Example:
        >>> read_text(None, fast=True)[:33]
        'In the beginning God created the '
    """
    if path is None and fast:
        path = str(EXCERPT)
    if path is None:
        return text_corpus.load_text("kjv")
    return Path(path).read_text(encoding="utf-8")


def windows(ids: np.ndarray, starts: np.ndarray, context: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``ids[s : s + context]`` and next-character labels ``ids[s + 1 : s + context + 1]``
    for every start ``s``, as two ``(len(starts), context)`` arrays.

    Example:
        >>> x, y = windows(np.arange(10), np.array([0, 5]), 3)
        >>> x.tolist(), y.tolist()
        ([[0, 1, 2], [5, 6, 7]], [[1, 2, 3], [6, 7, 8]])
    """
    index = starts[:, None] + np.arange(context + 1)
    chunk = ids[index]
    return chunk[:, :-1], chunk[:, 1:]


def validation_windows(ids: np.ndarray, context: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``limit`` non-overlapping windows of the validation ids, evenly spread.

    Example:
        >>> x, y = validation_windows(np.arange(20), 4, limit=2)
        >>> x.tolist(), y[:, -1].tolist()
        ([[0, 1, 2, 3], [12, 13, 14, 15]], [4, 16])
    """
    count = (len(ids) - 1) // context
    if count < 1:
        raise ValueError(
            f"char_gpt: the validation text has {len(ids)} characters, fewer than one "
            f"window of context={context} + 1; use a longer text or a shorter context"
        )
    chosen = np.linspace(0, count - 1, min(count, limit)).astype(np.int64)
    return windows(ids, chosen * context, context)


# ------------------------------------------------------------------------------------ model
@dataclass
class CharGPT:
    """The trainable functional ``model`` and its layers, which the step functions call."""

    model: ember.Model
    embedding: layers.TokenAndPositionEmbedding
    blocks: list
    norm: layers.LayerNormalization
    head: layers.Dense


def build_model(
    vocab_size: int, context: int, dim: int, heads: int, ff_dim: int, num_layers: int,
    **_: object,
) -> CharGPT:  # fmt: skip
    """A GPT-style decoder-only Transformer over ``context`` characters.

    Example:
        >>> gpt = build_model(vocab_size=30, context=16, dim=16, heads=2, ff_dim=32,
        ...                   num_layers=2)
        >>> gpt.model(np.ones((3, 16), np.int32)).shape, len(gpt.blocks)
        ((3, 16, 30), 2)
    """
    tokens = layers.Input(shape=(context,), dtype="int32", name="characters")
    embedding = layers.TokenAndPositionEmbedding(vocab_size, context, dim, name="embedding")
    # Pre-norm blocks (GPT-2's) want a final normalization before the head. ReLU rather than
    # GPT-2's GELU: Ember's GELU made a training step 2.4x (tanh form) to 4x (exact) slower.
    blocks = [
        layers.TransformerDecoder(ff_dim, heads, normalize_first=True) for _ in range(num_layers)
    ]
    norm = layers.LayerNormalization(epsilon=1e-5, name="final_norm")
    head = layers.Dense(vocab_size, name="logits")
    x = embedding(tokens)
    for block in blocks:
        x = block(x)
    model = ember.Model(tokens, head(norm(x)), name="char_gpt")
    return CharGPT(model, embedding, blocks, norm, head)


def _check_length(gpt: CharGPT, length: int) -> None:
    limit = gpt.embedding.sequence_length
    if length > limit:
        raise ValueError(
            f"char_gpt: the model knows {limit} positions, but the sequence would reach "
            f"{length}; ask for fewer new tokens or a shorter prompt"
        )


def cached_step(gpt: CharGPT) -> Callable:
    """A step function that feeds only the new tokens, at positions ``start_index`` onwards,
    with every block's key/value cache: ``step_fn(new_tokens, cache) -> (logits, cache)``.

    Example:
        >>> gpt = build_model(vocab_size=30, context=16, dim=16, heads=2, ff_dim=32,
        ...                   num_layers=2)
        >>> step_fn = cached_step(gpt)
        >>> logits, cache = step_fn(np.array([[3, 4, 5]]), None)   # the prompt
        >>> logits, cache = step_fn(np.array([[6]]), cache)        # then one token at a time
        >>> logits.shape, len(cache), cache[0]["key"].shape        # 2 blocks, 4 positions
        ((1, 30), 2, (1, 2, 4, 8))
    """

    def step_fn(new_tokens: np.ndarray, cache: list | None):
        cache = [{} for _ in gpt.blocks] if cache is None else cache
        start = cache[0]["key"].shape[2] if cache[0] else 0  # positions already cached
        _check_length(gpt, start + new_tokens.shape[1])
        x = gpt.embedding(new_tokens, start_index=start, training=False)
        new_cache = []
        for block, block_cache in zip(gpt.blocks, cache):
            x, block_cache = block(x, cache=block_cache, training=False)
            new_cache.append(block_cache)
        logits = gpt.head(gpt.norm(x[:, -1:, :], training=False), training=False)
        return logits.numpy()[:, 0, :], new_cache

    return step_fn


def recomputed_step(gpt: CharGPT) -> Callable:
    """A step function that runs the whole sequence so far through the model at every step.

    Example:
        >>> gpt = build_model(vocab_size=30, context=16, dim=16, heads=2, ff_dim=32,
        ...                   num_layers=1)
        >>> prompt = np.array([[3, 4, 5]])
        >>> a = ember.generation.generate(cached_step(gpt), prompt, max_new_tokens=8)
        >>> b = ember.generation.generate(recomputed_step(gpt), prompt, max_new_tokens=8)
        >>> a.shape, bool((a == b).all())
        ((1, 11), True)
    """

    def next_logits(sequence: np.ndarray) -> np.ndarray:
        _check_length(gpt, sequence.shape[1])
        x = gpt.embedding(sequence, training=False)
        for block in gpt.blocks:
            x = block(x, training=False)
        return gpt.head(gpt.norm(x[:, -1:, :], training=False), training=False).numpy()[:, 0]

    return recompute_step(next_logits)


# ------------------------------------------------------------------------------- generation
def sample_both_ways(gpt: CharGPT, vocab: CharVocabulary, config: dict, seed: int) -> dict:
    """Sample every prompt with the cached and the recomputing step function (same seeds);
    returns the texts, whether the tokens agree, and tokens/s of both."""
    results = {"samples": [], "identical": True, "seconds": {"cached": 0.0, "recomputed": 0.0}}
    tokens_made = 0
    for number, prompt in enumerate(PROMPTS):
        ids = np.tile(vocab.encode(prompt).astype(np.int64), (config["samples_per_prompt"], 1))
        outputs = {}
        for name, make_step in (("cached", cached_step), ("recomputed", recomputed_step)):
            start = time.perf_counter()
            outputs[name] = generate(
                make_step(gpt), ids, max_new_tokens=config["new_tokens"], method="sample",
                temperature=config["temperature"], top_k=config["top_k"], seed=seed + number,
            )  # fmt: skip
            results["seconds"][name] += time.perf_counter() - start
        results["identical"] &= bool(np.array_equal(outputs["cached"], outputs["recomputed"]))
        tokens_made += outputs["cached"].shape[0] * (outputs["cached"].shape[1] - ids.shape[1])
        results["samples"] += [vocab.decode(row) for row in outputs["cached"]]
    results["tokens"] = tokens_made
    for name in ("cached", "recomputed"):
        results[f"{name}_tokens_per_second"] = tokens_made / results["seconds"][name]
    results["speedup"] = results["seconds"]["recomputed"] / results["seconds"]["cached"]
    return results


# ------------------------------------------------------------------------------------- main
def _evaluate(gpt: CharGPT, validation) -> float:
    loss = gpt.model.evaluate(*validation, batch_size=64, verbose=0)
    return float(loss[0] if isinstance(loss, list) else loss)


def train(gpt: CharGPT, train_ids: np.ndarray, validation, config: dict, seed: int,
          verbose: int) -> list[float]:  # fmt: skip
    """``rounds`` × ``steps_per_round`` Adam steps on fresh random windows; returns the
    validation loss after each round."""
    rng = np.random.default_rng(seed)
    total = config["rounds"] * config["steps_per_round"]
    # linear warm-up to the peak rate, then cosine decay to a tenth of it
    warmup = config["warmup_steps"]
    schedule = ember.optimizers.schedules.CosineDecay(
        0.0, total - warmup, alpha=0.1, warmup_target=config["learning_rate"],
        warmup_steps=warmup,
    )  # fmt: skip
    gpt.model.compile(
        optimizer=ember.optimizers.Adam(learning_rate=schedule),
        loss=ember.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    curve = []
    per_round = config["steps_per_round"] * config["batch_size"]
    for round_number in range(config["rounds"]):
        starts = rng.integers(0, len(train_ids) - config["context"], size=per_round)
        x, y = windows(train_ids, starts, config["context"])
        history = gpt.model.fit(x, y, batch_size=config["batch_size"], epochs=1, verbose=0)
        curve.append(_evaluate(gpt, validation))
        if verbose:
            steps = (round_number + 1) * config["steps_per_round"]
            print(f"step {steps}: train loss {history.history['loss'][-1]:.3f}, "
                  f"validation loss {curve[-1]:.3f} nats", flush=True)  # fmt: skip
    return curve


def main(text: str | None = None, fast: bool = False, seed: int = 0, verbose: int = 1,
         **overrides) -> dict:  # fmt: skip
    """Train on ``text`` (the KJV when ``None``; the excerpt file when ``fast``), sample, and
    time cached against recomputed decoding. ``overrides`` replace entries of
    :data:`CONFIGS`."""
    config = {**CONFIGS["fast" if fast else "full"], **overrides}
    corpus = read_text(text, fast)
    vocab = CharVocabulary().fit(corpus)
    ids = vocab.encode(corpus).astype(np.int64)
    split = int(0.9 * len(ids))
    train_ids, validation_ids = ids[:split], ids[split:]
    if len(train_ids) <= config["context"]:
        raise ValueError(
            f"char_gpt: the training text (90 % of {len(ids)} characters) must be longer than "
            f"the context of {config['context']} characters"
        )
    validation = validation_windows(validation_ids, config["context"], config["eval_windows"])
    ember.manual_seed(seed)
    gpt = build_model(vocab.vocab_size, **config)
    gpt.model.compile(loss=ember.losses.SparseCategoricalCrossentropy(from_logits=True))
    initial = _evaluate(gpt, validation)
    start = time.perf_counter()
    curve = train(gpt, train_ids, validation, config, seed, verbose)
    train_seconds = time.perf_counter() - start
    sampled = sample_both_ways(gpt, vocab, config, seed)
    return {
        "characters": len(ids), "vocab_size": vocab.vocab_size,
        "parameters": gpt.model.count_params(),
        "initial_val_loss": initial, "final_val_loss": curve[-1], "val_curve": curve,
        "initial_bpc": initial / math.log(2), "final_bpc": curve[-1] / math.log(2),
        "train_seconds": train_seconds, "config": config, **sampled,
    }  # fmt: skip


def report(r: dict) -> str:
    """The finding as printed by the script."""
    c = r["config"]
    steps = c["rounds"] * c["steps_per_round"]
    lines = [
        f"{r['characters']:,} characters ({r['vocab_size']} ids), {r['parameters']:,} "
        f"parameters, {steps} steps of {c['batch_size']} x {c['context']} characters in "
        f"{r['train_seconds']:.0f} s.",
        f"Validation loss {r['initial_val_loss']:.3f} -> {r['final_val_loss']:.3f} nats/char "
        f"({r['initial_bpc']:.2f} -> {r['final_bpc']:.2f} bits per character).",
        f"Samples (temperature {c['temperature']}, top-k {c['top_k']}):",
        *(f"  {sample!r}" for sample in r["samples"]),
        f"Decoding {r['tokens']} tokens: KV cache {r['cached_tokens_per_second']:.0f} tokens/s, "
        f"recomputing {r['recomputed_tokens_per_second']:.0f} tokens/s: {r['speedup']:.1f}x "
        f"faster with the cache; identical tokens: {r['identical']}.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--text", default=None, help="train on this UTF-8 file instead")
    parser.add_argument("--fast", action="store_true", help="the small CI variant")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=None, help="override the rounds")
    args = parser.parse_args()
    extra = {} if args.rounds is None else {"rounds": args.rounds}
    try:
        r = main(args.text, args.fast, args.seed, **extra)
    except DatasetUnavailableError as error:
        print(f"char_gpt: {error}", file=sys.stderr)
        sys.exit(1)
    print(report(r))
