"""An encoder-decoder Transformer learns to reverse (or sort) strings of digits and letters.

The source is a string of 1..``max_len`` symbols (digits, then letters), padded with id 0 and
masked. The encoder (``TokenAndPositionEmbedding`` → ``TransformerEncoder``) reads it; the
decoder reads the target shifted right, starting with ``<bos>``
(``TokenAndPositionEmbedding`` → ``TransformerDecoder`` attending to the encoder's output →
``Dense(vocab)``) and is trained with teacher forcing to predict the target followed by
``<eos>`` (sparse cross-entropy; the padded steps are masked out of the loss and accuracy).

At test time nothing of the target is given: :func:`decode` encodes the source once, then
``ember.generation.generate`` asks a step function for one token at a time, greedily (or with
beam search, ``--num-beams``), until every row has emitted ``<eos>``. The step function
feeds the decoder only the newest token with the key/value cache of the earlier ones
(``cache=`` and ``start_index=``). The held-out strings never occur in the training set; the
finding is their exact-match rate (the whole string and its ``<eos>`` right) and token
accuracy (per target position, ``<eos>`` included).

Run from the repository root::

    .venv/bin/python examples/transformer_reverse.py                # reverse, the full run
    .venv/bin/python examples/transformer_reverse.py --task sort
    .venv/bin/python examples/transformer_reverse.py --fast         # the CI variant

The numbers measured on a 2-core CPU are in ``examples/README.md``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import ember
from ember import layers
from ember.generation import generate
from ember.text import CharVocabulary

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
TASKS = ("reverse", "sort")
VOCAB = CharVocabulary(special_tokens=("<bos>", "<eos>")).fit(ALPHABET)
PAD, BOS, EOS = VOCAB.pad_id, VOCAB.token_to_id("<bos>"), VOCAB.token_to_id("<eos>")
SYMBOL_IDS = VOCAB.encode(ALPHABET).astype(np.int64)  # ids in alphabet order

# The full run and the CI variant (``--fast``): data, model and training settings.
CONFIGS = {
    "full": dict(
        min_len=1, max_len=20, num_symbols=36, train_size=40_000, test_size=1_000,
        dim=64, heads=4, ff_dim=128, num_layers=2, epochs=5, batch_size=64,
        learning_rate=2e-3,
    ),
    "fast": dict(
        min_len=1, max_len=5, num_symbols=10, train_size=2_000, test_size=300,
        dim=32, heads=2, ff_dim=64, num_layers=1, epochs=8, batch_size=64,
        learning_rate=5e-3,
    ),
}  # fmt: skip


# ------------------------------------------------------------------------------------- data
def _targets(task: str, source: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The padded target ids: each row's first ``length`` ids reversed or sorted."""
    positions = np.arange(source.shape[1])
    valid = positions < lengths[:, None]
    if task == "reverse":
        index = np.clip(lengths[:, None] - 1 - positions, 0, None)
        return np.where(valid, np.take_along_axis(source, index, axis=1), PAD)
    # padding sorts last when it is the largest id
    big = np.iinfo(source.dtype).max
    return np.where(valid, np.sort(np.where(valid, source, big), axis=1), PAD)


def make_data(
    task: str, n: int, min_len: int, max_len: int, num_symbols: int, rng: np.random.Generator
) -> dict:
    """``n`` random strings of ``min_len..max_len`` symbols (the first ``num_symbols`` of
    :data:`ALPHABET`), padded to ``max_len`` with 0, and what the model sees and predicts.

    Returns a dict of int64 arrays: ``source (n, max_len)``, ``decoder_input (n, max_len + 1)``
    (``<bos>`` + target), ``labels (n, max_len + 1)`` (target + ``<eos>``) and ``lengths``.

    Example:
        >>> data = make_data("reverse", 2, 2, 4, 10, np.random.default_rng(0))
        >>> [VOCAB.decode(row, skip_special_tokens=True) for row in data["source"]]
        ['5230', '001']
        >>> VOCAB.decode(data["labels"][1]), VOCAB.decode(data["decoder_input"][1])
        ('100<eos><pad>', '<bos>100<pad>')
    """
    if task not in TASKS:
        raise ValueError(f"make_data: task must be one of {TASKS}, got {task!r}")
    if not 1 <= min_len <= max_len or not 1 <= num_symbols <= len(ALPHABET):
        raise ValueError(
            f"make_data: expected 1 <= min_len <= max_len and 1 <= num_symbols <= "
            f"{len(ALPHABET)}, got min_len={min_len}, max_len={max_len}, "
            f"num_symbols={num_symbols}"
        )
    lengths = rng.integers(min_len, max_len + 1, size=n)
    valid = np.arange(max_len) < lengths[:, None]
    symbols = SYMBOL_IDS[rng.integers(0, num_symbols, size=(n, max_len))]
    source = np.where(valid, symbols, PAD)
    target = _targets(task, source, lengths)
    decoder_input = np.concatenate([np.full((n, 1), BOS), target], axis=1)
    labels = np.concatenate([target, np.full((n, 1), PAD)], axis=1)
    labels[np.arange(n), lengths] = EOS
    return {"source": source, "decoder_input": decoder_input, "labels": labels,
            "lengths": lengths}  # fmt: skip


def _row_keys(rows: np.ndarray) -> np.ndarray:
    """One opaque, comparable value per row (its bytes), for set operations on rows."""
    rows = np.ascontiguousarray(rows)
    return rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()


def held_out(data: dict, train_source: np.ndarray, n: int) -> dict:
    """The first ``n`` rows of ``data`` whose source does not occur in ``train_source``.

    Example:
        >>> train = np.array([[4, 5, 0], [6, 0, 0]])
        >>> data = {"source": np.array([[6, 0, 0], [4, 6, 0], [4, 5, 0]])}
        >>> held_out(data, train, 5)["source"].tolist()
        [[4, 6, 0]]
    """
    fresh = ~np.isin(_row_keys(data["source"]), _row_keys(train_source))
    keep = np.flatnonzero(fresh)[:n]
    return {key: value[keep] for key, value in data.items()}


# ------------------------------------------------------------------------------------ model
@dataclass
class Seq2Seq:
    """The trainable functional ``model`` and the layers it wires, which :func:`decode` calls
    one token at a time."""

    model: ember.Model
    encoder_embedding: layers.TokenAndPositionEmbedding
    encoders: list
    decoder_embedding: layers.TokenAndPositionEmbedding
    decoders: list
    head: layers.Dense


def build_model(
    max_len: int, dim: int, heads: int, ff_dim: int, num_layers: int, **_: object
) -> Seq2Seq:
    """The encoder-decoder Transformer for strings of up to ``max_len`` symbols.

    Example:
        >>> net = build_model(max_len=5, dim=16, heads=2, ff_dim=32, num_layers=1)
        >>> source, shifted = np.ones((2, 5), np.int32), np.ones((2, 6), np.int32)
        >>> net.model([source, shifted]).shape  # logits over 40 ids: 36 symbols and 4 special
        (2, 6, 40)
    """
    vocab_size = VOCAB.vocab_size
    source = layers.Input(shape=(max_len,), dtype="int32", name="source")
    shifted = layers.Input(shape=(max_len + 1,), dtype="int32", name="decoder_input")
    # Positions: max_len source symbols; <bos> + max_len target symbols in the decoder.
    encoder_embedding = layers.TokenAndPositionEmbedding(
        vocab_size, max_len, dim, mask_zero=True, name="source_embedding"
    )
    decoder_embedding = layers.TokenAndPositionEmbedding(
        vocab_size, max_len + 1, dim, mask_zero=True, name="target_embedding"
    )
    encoders = [layers.TransformerEncoder(ff_dim, heads) for _ in range(num_layers)]
    decoders = [layers.TransformerDecoder(ff_dim, heads) for _ in range(num_layers)]
    head = layers.Dense(vocab_size, name="logits")
    memory = encoder_embedding(source)
    for block in encoders:
        memory = block(memory)
    x = decoder_embedding(shifted)
    for block in decoders:
        x = block(x, memory)
    model = ember.Model([source, shifted], head(x), name=f"transformer_{max_len}")
    return Seq2Seq(model, encoder_embedding, encoders, decoder_embedding, decoders, head)


def encode(net: Seq2Seq, source: np.ndarray) -> ember.Tensor:
    """The encoder's output ``(batch, max_len, dim)`` (a tensor carrying the padding mask).

    Example:
        >>> net = build_model(max_len=5, dim=16, heads=2, ff_dim=32, num_layers=1)
        >>> memory = encode(net, np.array([[4, 5, 0, 0, 0]]))
        >>> memory.shape, memory._keras_mask.numpy().tolist()
        ((1, 5, 16), [[True, True, False, False, False]])
    """
    memory = net.encoder_embedding(source, training=False)
    for block in net.encoders:
        memory = block(memory, training=False)
    return memory


def make_step_fn(net: Seq2Seq, memory: ember.Tensor, memory_mask: np.ndarray) -> Callable:
    """A step function for ``ember.generation``: ``step_fn(new_tokens, cache) -> (logits,
    cache)``. It feeds the decoder only ``new_tokens`` (``<bos>`` first, then the token just
    chosen), at positions ``start_index`` onwards; the cache holds every decoder block's keys and
    values, and the encoder's output and mask: all with the batch on axis 0, so that beam search
    can reorder them too.

    Example:
        >>> net = build_model(max_len=5, dim=16, heads=2, ff_dim=32, num_layers=1)
        >>> source = np.array([[4, 5, 0, 0, 0], [6, 7, 8, 0, 0]])
        >>> step_fn = make_step_fn(net, encode(net, source), source != PAD)
        >>> logits, cache = step_fn(np.full((2, 1), BOS), None)
        >>> logits, cache = step_fn(np.array([[5], [8]]), cache)
        >>> logits.shape, cache["blocks"][0]["key"].shape  # (batch, heads, positions, key_dim)
        ((2, 40), (2, 2, 2, 8))
    """

    def step_fn(new_tokens: np.ndarray, cache: dict | None):
        if cache is None:
            cache = {"memory": memory, "memory_mask": memory_mask,
                     "blocks": [{} for _ in net.decoders]}  # fmt: skip
        blocks = cache["blocks"]
        start = blocks[0]["key"].shape[2] if blocks[0] else 0  # positions already cached
        x = net.decoder_embedding(new_tokens, start_index=start, training=False)
        new_blocks = []
        for block, block_cache in zip(net.decoders, blocks):
            x, block_cache = block(
                x, cache["memory"], encoder_padding_mask=cache["memory_mask"],
                cache=block_cache, training=False,
            )  # fmt: skip
            new_blocks.append(block_cache)
        logits = net.head(x[:, -1:, :], training=False)  # only the last position is needed
        new_cache = {"memory": cache["memory"], "memory_mask": cache["memory_mask"],
                     "blocks": new_blocks}  # fmt: skip
        return logits.numpy()[:, 0, :], new_cache

    return step_fn


def decode(net: Seq2Seq, source: np.ndarray, max_len: int, num_beams: int = 1) -> np.ndarray:
    """Greedy decoding (``num_beams=1``) or beam search of a batch of sources; returns
    ``(n, max_len + 1)`` predicted ids, ``<eos>`` included, padded with 0 after it.

    Example:
        >>> net = build_model(max_len=5, dim=16, heads=2, ff_dim=32, num_layers=1)
        >>> decode(net, np.array([[4, 5, 0, 0, 0]]), max_len=5).shape  # untrained: any ids
        (1, 6)
    """
    with ember.no_grad():
        memory = encode(net, source)
    step_fn = make_step_fn(net, memory, source != PAD)
    prompt = np.full((len(source), 1), BOS)
    beam = {} if num_beams == 1 else {"method": "beam", "num_beams": num_beams}
    tokens = generate(step_fn, prompt, max_new_tokens=max_len + 1, eos_token_id=EOS,
                      pad_token_id=PAD, **beam)  # fmt: skip
    predicted = np.full((len(source), max_len + 1), PAD, dtype=np.int64)
    predicted[:, : tokens.shape[1] - 1] = tokens[:, 1:]
    return predicted


def score(predicted: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Exact-match rate (every position right, padding after ``<eos>`` included) and token
    accuracy (over the target positions and ``<eos>``, not the padding).

    Example:
        >>> labels = np.array([[5, 6, 3, 0], [7, 3, 0, 0]])
        >>> score(np.array([[5, 6, 3, 0], [7, 8, 3, 0]]), labels)
        (0.5, 0.8)
    """
    exact = float((predicted == labels).all(axis=1).mean())
    real = labels != PAD
    return exact, float((predicted == labels)[real].mean())


# ------------------------------------------------------------------------------------- main
def main(task: str = "reverse", fast: bool = False, seed: int = 0, verbose: int = 1,
         num_beams: int = 1, **overrides) -> dict:  # fmt: skip
    """Train on ``task`` and score the decoding (greedy, or beam search with ``num_beams``) of
    held-out strings.

    ``fast`` picks the CI settings; ``overrides`` replace entries of :data:`CONFIGS`. Returns
    the exact-match rate and token accuracy of the decoded test strings, the teacher-forced
    test accuracy, the final training loss, a few decoded examples and the times.
    """
    config = {**CONFIGS["fast" if fast else "full"], **overrides}
    rng = np.random.default_rng(seed)
    shape = (config["min_len"], config["max_len"], config["num_symbols"])
    train = make_data(task, config["train_size"], *shape, rng)
    test = held_out(make_data(task, 3 * config["test_size"], *shape, rng), train["source"],
                    config["test_size"])  # fmt: skip
    ember.manual_seed(seed)
    net = build_model(**config)
    steps = -(-config["train_size"] // config["batch_size"]) * config["epochs"]
    net.model.compile(
        optimizer=ember.optimizers.Adam(
            learning_rate=ember.optimizers.schedules.CosineDecay(config["learning_rate"], steps)
        ),
        loss=ember.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    history = net.model.fit(
        [train["source"], train["decoder_input"]], train["labels"],
        batch_size=config["batch_size"], epochs=config["epochs"], verbose=verbose,
    )  # fmt: skip
    train_seconds = time.perf_counter() - start
    _, teacher_forced = net.model.evaluate(
        [test["source"], test["decoder_input"]], test["labels"], batch_size=500, verbose=0
    )
    start = time.perf_counter()
    predicted = decode(net, test["source"], config["max_len"], num_beams)
    decode_seconds = time.perf_counter() - start
    exact, token_accuracy = score(predicted, test["labels"])
    examples = [
        (VOCAB.decode(s, True), VOCAB.decode(p, True), bool((p == y).all()))
        for s, p, y in zip(test["source"][:4], predicted[:4], test["labels"][:4])
    ]
    return {
        "task": task, "exact_match": exact, "token_accuracy": token_accuracy,
        "teacher_forced_accuracy": float(teacher_forced),
        "final_train_loss": float(history.history["loss"][-1]),
        "test_size": len(test["source"]), "examples": examples,
        "train_seconds": train_seconds, "decode_seconds": decode_seconds,
        "parameters": net.model.count_params(), "config": config, "num_beams": num_beams,
    }  # fmt: skip


def report(r: dict) -> str:
    """The finding as printed by the script."""
    c = r["config"]
    how = "Greedy decoding" if r["num_beams"] == 1 else f"Beam search ({r['num_beams']} beams)"
    lines = [
        f"{r['task']}: strings of {c['min_len']}-{c['max_len']} of {c['num_symbols']} symbols, "
        f"{c['train_size']} training strings, {c['epochs']} epochs, {r['parameters']:,} "
        f"parameters, trained in {r['train_seconds']:.0f} s.",
        f"{how} of {r['test_size']} held-out strings ({r['decode_seconds']:.1f} s): "
        f"exact match {r['exact_match']:.3f}, token accuracy {r['token_accuracy']:.3f} "
        f"(teacher-forced token accuracy {r['teacher_forced_accuracy']:.3f}).",
    ]
    lines += [f"  {s} -> {p} {'ok' if ok else 'WRONG'}" for s, p, ok in r["examples"]]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=TASKS, default="reverse")
    parser.add_argument("--fast", action="store_true", help="the small CI variant")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--num-beams", type=int, default=1, help="1: greedy; more: beam search")
    parser.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))
    args = parser.parse_args()
    extra = {} if args.epochs is None else {"epochs": args.epochs}
    r = main(args.task, args.fast, args.seed, args.verbose, args.num_beams, **extra)
    print(report(r))
