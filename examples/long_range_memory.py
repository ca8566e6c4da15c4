"""Why gates matter: remembering the first step of a long, noisy sequence.

Each sequence has ``T`` steps of 10 features. At step 0 one of the first two features is 1 —
which one is the label (a bit) — and the other features are 0; at every later step the first
two features are 0 and the other 8 are Gaussian noise (σ = 1). The label must be read at the
end of the sequence, so the network has to carry one bit across ``T - 1`` steps of noise.

SimpleRNN, LSTM and GRU layers (16 units each, then a softmax Dense) are trained with the same
data, seed, optimizer (Adam 3e-3) and number of steps, with Keras' default initializers, plus a
GRU whose update-gate bias starts at 1 instead of 0:

* the SimpleRNN's state is rewritten by every noisy input and its gradient through the
  ``tanh`` recurrence shrinks at every step: with 8000 sequences it finds the bit at T = 20,
  and from T = 30 on it stays at chance;
* the LSTM's cell state is carried by the forget gate and written only when the input gate
  opens. Its forget-gate bias starts at 1 (``unit_forget_bias=True``), so from the start it
  keeps about σ(1) ≈ 73 % of its cell state per step: the bit's gradient gets through, and the
  gates learn to hold it (up to T = 60, the longest default length);
* the GRU's update gate plays the same role (``h = z * h_prev + (1 - z) * candidate``), but
  with Keras' zero bias it starts near σ(0) = 0.5, keeping about half per step: it gets
  10 steps further than the SimpleRNN and fails from T = 40 on. Started at bias 1 — the GRU's
  counterpart of ``unit_forget_bias`` — it solves every length the LSTM solves: the gate makes
  long memory possible, and its initial bias decides whether training finds it.

Training accuracy creeps above chance for a model that fails: it memorizes the noise of its
training set; the test set (fresh sequences) shows it has learnt nothing. The measured numbers
are in ``examples/README.md``.

Run from the repository root (``--quick`` is the short variant the tests run)::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python examples/long_range_memory.py
    OPENBLAS_NUM_THREADS=1 .venv/bin/python examples/long_range_memory.py --quick
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np

import ember
from ember import layers

KINDS = ("SimpleRNN", "LSTM", "GRU", "GRU (update bias 1)")
NOISE_FEATURES = 8
SOLVED = 0.95  # test accuracy that counts as having found the bit

FULL = {"lengths": (20, 30, 40, 60), "n_train": 8000, "n_test": 2000, "units": 16, "epochs": 15,
        "batch_size": 32, "learning_rate": 3e-3}  # fmt: skip
QUICK = {"lengths": (30,), "n_train": 2000, "n_test": 1000, "units": 16, "epochs": 8,
         "batch_size": 32, "learning_rate": 3e-3}  # fmt: skip


def make_data(n: int, steps: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` sequences ``(n, steps, 2 + 8)`` float32 and their bits: the one-hot bit at step 0,
    Gaussian noise in the last 8 features of every later step.

    Example:
        >>> x, bits = make_data(4, 5, np.random.default_rng(0))
        >>> x.shape, bool((x[np.arange(4), 0, bits] == 1).all()), float(x[:, 1:, :2].sum())
        ((4, 5, 10), True, 0.0)
    """
    bits = rng.integers(0, 2, n)
    x = np.zeros((n, steps, 2 + NOISE_FEATURES), np.float32)
    x[:, 1:, 2:] = rng.standard_normal((n, steps - 1, NOISE_FEATURES), dtype=np.float32)
    x[np.arange(n), 0, bits] = 1.0
    return x, bits


def update_gate_bias(units: int):
    """A bias initializer for a GRU (``reset_after=True``: bias ``(2, 3 * units)``, the input
    bias then the recurrent one, gates in Keras' order z, r, h) that starts the update gate's
    input bias at 1 and everything else at 0, as ``unit_forget_bias`` does for the LSTM.

    Example:
        >>> gru = ember.layers.GRU(2, bias_initializer=update_gate_bias(2))
        >>> _ = gru(np.zeros((1, 3, 4), np.float32))
        >>> gru.cell.bias.numpy()
        array([[1., 1., 0., 0., 0., 0.],
               [0., 0., 0., 0., 0., 0.]], dtype=float32)
    """

    def initial(shape, dtype=None):
        bias = np.zeros(shape, dtype=dtype or np.float32)
        bias[0, :units] = 1.0
        return bias

    return initial


def build(kind: str, steps: int, units: int, learning_rate: float, seed: int):
    """One recurrent layer (its last output) and a 2-way softmax."""
    ember.manual_seed(seed)
    if kind == "GRU (update bias 1)":
        recurrent = layers.GRU(units, bias_initializer=update_gate_bias(units))
    else:
        recurrent = getattr(layers, kind)(units)
    model = ember.models.Sequential([
        layers.Input(shape=(steps, 2 + NOISE_FEATURES)),
        recurrent,
        layers.Dense(2, activation="softmax"),
    ])
    model.compile(optimizer=ember.optimizers.Adam(learning_rate=learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def run(lengths: Sequence[int], n_train: int, n_test: int, units: int, epochs: int,
        batch_size: int, learning_rate: float, seed: int = 0) -> dict:
    """For each length: the four models trained on the same sequences from the same seed.
    Returns ``{T: {kind: {"test_accuracy", "train_accuracy_curve", "solved_epoch",
    "seconds"}}}`` (``solved_epoch``: first epoch with training accuracy >= 0.99, or None)."""
    result = {}
    for steps in lengths:
        rng = np.random.default_rng(seed)
        x_train, y_train = make_data(n_train, steps, rng)
        x_test, y_test = make_data(n_test, steps, rng)
        result[steps] = {}
        for kind in KINDS:
            model = build(kind, steps, units, learning_rate, seed)
            start = time.perf_counter()
            curve = model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size,
                              verbose=0).history["accuracy"]
            seconds = time.perf_counter() - start
            _, accuracy = model.evaluate(x_test, y_test, batch_size=500, verbose=0)
            solved = [epoch for epoch, a in enumerate(curve, 1) if a >= 0.99]
            result[steps][kind] = {
                "test_accuracy": float(accuracy),
                "train_accuracy_curve": [float(a) for a in curve],
                "solved_epoch": solved[0] if solved else None,
                "seconds": seconds,
            }
    return result


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the short variant (CI)")
    parser.add_argument("--lengths", type=int, nargs="+", default=None,
                        help=f"sequence lengths T (default {' '.join(map(str, FULL['lengths']))})")
    for name in ("n_train", "n_test", "units", "epochs", "batch_size", "learning_rate"):
        kind = float if name == "learning_rate" else int
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None,
                            help=f"default {FULL[name]} ({QUICK[name]} with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict:
    """Parse the command line, train the four models per length, print the finding and return
    the numbers."""
    args = parse_args(argv)
    settings = dict(QUICK if args.quick else FULL)
    settings.update({k: v for k, v in vars(args).items() if k in settings and v is not None})
    r = run(**settings, seed=args.seed)
    print("  test accuracy (first epoch with training accuracy >= 0.99); chance is 0.5")
    print("  " + f"{'T':>4}" + "".join(f"{kind:>22}" for kind in KINDS))
    for steps, by_kind in r.items():
        cells = []
        for kind in KINDS:
            v = by_kind[kind]
            when = "never" if v["solved_epoch"] is None else f"epoch {v['solved_epoch']}"
            cells.append(f"{v['test_accuracy']:.3f} ({when})")
        print("  " + f"{steps:>4}" + "".join(f"{cell:>22}" for cell in cells))
    solved = {kind: [t for t in r if r[t][kind]["test_accuracy"] >= SOLVED] for kind in KINDS}
    summary = "; ".join(
        f"{kind} at " + (f"T = {', '.join(map(str, lengths))}" if lengths else "no length")
        for kind, lengths in solved.items()
    )
    print(
        f"Long-range memory ({settings['n_train']} training sequences, {settings['epochs']} "
        f"epochs, {settings['units']} units, same data and seed for all): the bit is found (test "
        f"accuracy >= {SOLVED}) by {summary}."
    )
    return r


if __name__ == "__main__":
    main()
