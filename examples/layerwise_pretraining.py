"""Greedy layer-wise pre-training: stacked autoencoders give a deep sigmoid net a start it can
learn from.

A deep net of sigmoid layers is hard to train from random weights with plain gradient descent:
the sigmoid's slope is at most 1/4, so the gradient shrinks at every layer on its way down
(``vanishing_gradients.py`` measures it), and the first layers barely move. For a while the
whole net sits on a plateau where it predicts the class frequencies (loss ln 10 ≈ 2.303 for ten
balanced classes). The course's remedy (Hinton & Salakhutdinov 2006, Bengio et al. 2007) is to
pre-train without labels, one layer at a time:

1. train an autoencoder ``input → Dense(h, sigmoid) → Dense(input size, sigmoid)`` to reproduce
   its input (mean squared error), and keep its encoder;
2. pass the data through the encoders kept so far and train the next autoencoder on these
   codes; repeat until every hidden layer has been trained;
3. stack the encoders, put a softmax layer on top and fine-tune the whole net on the labels.

Each layer then starts as a feature detector of the layer below instead of a random
projection. This script trains the same net (5 hidden sigmoid layers) twice, from the same
random weights and with the same optimizer, batch size and number of epochs: once fine-tuned
after pre-training, once directly. The pre-training sees the training images but never their
labels. It reports the test accuracy and the training loss (evaluated on the labelled training
set after the last epoch) of both, with all training labels and with few labels (the same
pre-trained stack, fine-tuned on ``--labels-per-class`` labelled images per class), for
SGD with momentum (the course's optimizer) and, in the full run, Adam. Pre-training costs extra
unsupervised epochs, which are reported apart (the supervised budgets are equal).

What it finds (seed 0, Fashion-MNIST, 5x256): with SGD the random net sits on the plateau for
its first 6 of 10 epochs and ends 11 points of test accuracy behind the pre-trained one; with
1,000 labels it never leaves the plateau (chance accuracy) while the pre-trained net reaches
0.80. Adam, which rescales each weight's step, gets the random net off the plateau at once:
with all labels pre-training then gains only 1.6 points, with 1,000 labels still 5.2. The
claim holds, most strongly for plain SGD and for few labels.

Run from the repository root (``--quick`` is the short variant the tests run, on the bundled
8x8 digits; the full run uses Fashion-MNIST, found in ``--data-dir``, Ember's cache or
``/usr/share/datasets/fashion-mnist``)::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python examples/layerwise_pretraining.py
    OPENBLAS_NUM_THREADS=1 .venv/bin/python examples/layerwise_pretraining.py --quick
    OPENBLAS_NUM_THREADS=1 .venv/bin/python examples/layerwise_pretraining.py --dataset digits

The measured numbers are in ``examples/README.md``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

import ember
from ember import layers

PIXEL_MAX = {"digits": 16.0, "fashion_mnist": 255.0}
OPTIMIZERS = {
    "sgd": ("SGD (lr 0.1, momentum 0.9)", lambda: ember.optimizers.SGD(0.1, momentum=0.9)),
    "adam": ("Adam (lr 1e-3)", lambda: ember.optimizers.Adam(1e-3)),
}
CLEAR_GAIN = 0.01  # a test-accuracy difference below this is reported as no clear difference
PLATEAU = 0.95  # an epoch loss above this fraction of ln(classes) is still on the plateau

FULL = {"dataset": "fashion_mnist", "hidden": 256, "depth": 5, "ae_epochs": 2,
        "ae_learning_rate": 1e-3, "epochs": 10, "few_epochs": 50, "labels_per_class": 100,
        "batch_size": 64, "optimizers": ("sgd", "adam")}  # fmt: skip
QUICK = {"dataset": "digits", "hidden": 64, "depth": 5, "ae_epochs": 5,
         "ae_learning_rate": 1e-2, "epochs": 20, "few_epochs": 60, "labels_per_class": 10,
         "batch_size": 32, "optimizers": ("sgd",)}  # fmt: skip


def load(dataset: str, data_dir: str | None = None) -> tuple[np.ndarray, ...]:
    """``x_train, y_train, x_test, y_test``: flattened float32 images in [0, 1] and labels.

    Example:
        >>> x_train, y_train, x_test, y_test = load("digits")
        >>> x_train.shape, x_test.shape, x_train.dtype, float(x_train.max())
        ((1437, 64), (360, 64), dtype('float32'), 1.0)
    """
    if dataset not in PIXEL_MAX:
        raise ValueError(f"load: dataset must be one of {sorted(PIXEL_MAX)}, got {dataset!r}")
    if dataset == "digits":
        (x_train, y_train), (x_test, y_test) = ember.datasets.digits.load_data()
    else:
        (x_train, y_train), (x_test, y_test) = ember.datasets.fashion_mnist.load_data(
            path=data_dir
        )
    scale = np.float32(PIXEL_MAX[dataset])

    def flat(x: np.ndarray) -> np.ndarray:
        return x.reshape(len(x), -1).astype(np.float32) / scale

    return flat(x_train), y_train.astype(np.int64), flat(x_test), y_test.astype(np.int64)


def labelled_subset(y: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``per_class`` samples of each class of ``y``, drawn without
    replacement: the few labels a classifier is given.

    Example:
        >>> labelled_subset(np.array([0, 1, 0, 1, 0, 1]), 2, np.random.default_rng(0)).size
        4
    """
    classes, counts = np.unique(y, return_counts=True)
    if per_class < 1 or per_class > counts.min():
        raise ValueError(
            f"labelled_subset: per_class must be between 1 and {counts.min()} (the smallest "
            f"class of y has {counts.min()} samples), got {per_class}"
        )
    # a random key per sample, sorted within each class: the first per_class of every class
    order = np.lexsort((rng.random(y.size), y))
    starts = np.searchsorted(y[order], classes)
    picked = order[(starts[:, None] + np.arange(per_class)).reshape(-1)]
    return np.sort(picked)


def make_encoders(input_dim: int, hidden: int, depth: int, seed: int) -> list:
    """``depth`` built ``Dense(hidden, sigmoid)`` layers (Glorot-uniform weights, zero biases)
    from ``ember.manual_seed(seed)``: the same call gives the same starting weights.

    Example:
        >>> a = make_encoders(4, 3, 2, seed=0); b = make_encoders(4, 3, 2, seed=0)
        >>> [enc.kernel.shape for enc in a], bool((a[1].kernel == b[1].kernel).numpy().all())
        ([(4, 3), (3, 3)], True)
    """
    ember.manual_seed(seed)
    encoders = [layers.Dense(hidden, activation="sigmoid") for _ in range(depth)]
    ember.Sequential([layers.Input(shape=(input_dim,)), *encoders])  # builds the weights
    return encoders


def pretrain(encoders: list, x: np.ndarray, epochs: int, learning_rate: float,
             batch_size: int) -> list[dict]:
    """Greedy layer-wise pre-training of ``encoders`` (in place) on the unlabelled ``x``: each
    is trained as the encoder of a one-hidden-layer autoencoder (sigmoid decoder, mean squared
    error, Adam) on the codes of the ones before it. Returns per layer the reconstruction error
    after the first and the last epoch.

    Example:
        >>> stack = make_encoders(6, 4, 2, seed=0)
        >>> x = np.random.default_rng(0).random((32, 6), dtype=np.float32)
        >>> [sorted(r) for r in pretrain(stack, x, epochs=2, learning_rate=1e-2, batch_size=8)]
        [['mse_first_epoch', 'mse_last_epoch'], ['mse_first_epoch', 'mse_last_epoch']]
    """
    report = []
    codes = x
    for encoder in encoders:
        width = codes.shape[1]
        autoencoder = ember.Sequential([
            layers.Input(shape=(width,)),
            encoder,
            layers.Dense(width, activation="sigmoid"),
        ])
        autoencoder.compile(optimizer=ember.optimizers.Adam(learning_rate), loss="mse")
        curve = autoencoder.fit(codes, codes, epochs=epochs, batch_size=batch_size,
                                verbose=0).history["loss"]  # fmt: skip
        report.append({"mse_first_epoch": float(curve[0]), "mse_last_epoch": float(curve[-1])})
        # the inputs of the next autoencoder: this layer's codes, computed once
        codes = encoder(codes).numpy()
    return report


def fine_tune(encoders: list, n_classes: int, optimizer: str, x: np.ndarray, y: np.ndarray,
              test: tuple[np.ndarray, np.ndarray], epochs: int, batch_size: int,
              seed: int) -> dict:
    """Stack ``encoders`` under a softmax layer and train the whole net on ``(x, y)``. The head
    and the shuffling come from ``ember.manual_seed(seed)``, so they are the same for the
    pre-trained and the random stack. Returns the test accuracy and loss, the training loss
    evaluated after the last epoch, the per-epoch training-loss curve, the number of epochs
    spent on the plateau (:func:`plateau_epochs`) and the seconds taken."""
    ember.manual_seed(seed)
    model = ember.Sequential([
        layers.Input(shape=(x.shape[1],)),
        *encoders,
        layers.Dense(n_classes, activation="softmax"),
    ])
    model.compile(optimizer=OPTIMIZERS[optimizer][1](),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])  # fmt: skip
    start = time.perf_counter()
    curve = model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0).history["loss"]
    seconds = time.perf_counter() - start
    train_loss, _ = model.evaluate(x, y, batch_size=1000, verbose=0)
    test_loss, test_accuracy = model.evaluate(*test, batch_size=1000, verbose=0)
    return {"test_accuracy": float(test_accuracy), "test_loss": float(test_loss),
            "train_loss": float(train_loss), "loss_curve": [float(v) for v in curve],
            "plateau_epochs": plateau_epochs(curve, n_classes), "seconds": seconds}  # fmt: skip


def run(dataset: str, hidden: int, depth: int, ae_epochs: int, ae_learning_rate: float,
        epochs: int, few_epochs: int, labels_per_class: int, batch_size: int,
        optimizers: Sequence[str], seed: int = 0, data_dir: str | None = None) -> dict:
    """Pre-train once, then fine-tune the pre-trained and the random stack for every optimizer
    on all labels and on few. Returns ``{"pretraining": [...], "pretraining_seconds",
    "n_train", "n_few", "runs": {optimizer: {"all"|"few": {"random"|"pretrained": {...}}}}}``
    (the inner dicts as :func:`fine_tune` returns them)."""
    x_train, y_train, x_test, y_test = load(dataset, data_dir)
    n_classes = int(y_train.max()) + 1
    few = labelled_subset(y_train, labels_per_class, np.random.default_rng(seed))
    regimes = {"all": (x_train, y_train, epochs), "few": (x_train[few], y_train[few], few_epochs)}
    start = time.perf_counter()
    encoders = make_encoders(x_train.shape[1], hidden, depth, seed)
    pretraining = pretrain(encoders, x_train, ae_epochs, ae_learning_rate, batch_size)
    pretraining_seconds = time.perf_counter() - start
    pretrained = [encoder.get_weights() for encoder in encoders]
    runs: dict = {}
    for optimizer in optimizers:
        runs[optimizer] = {}
        for regime, (x, y, n_epochs) in regimes.items():
            runs[optimizer][regime] = {}
            for init in ("random", "pretrained"):
                # a fresh stack from the same random weights the pre-training started from
                stack = make_encoders(x_train.shape[1], hidden, depth, seed)
                if init == "pretrained":
                    for encoder, weights in zip(stack, pretrained):
                        encoder.set_weights(weights)
                runs[optimizer][regime][init] = fine_tune(
                    stack, n_classes, optimizer, x, y, (x_test, y_test), n_epochs, batch_size,
                    seed + 1,
                )
    return {"dataset": dataset, "n_train": int(len(x_train)), "n_few": int(few.size),
            "pretraining": pretraining, "pretraining_seconds": pretraining_seconds,
            "runs": runs}  # fmt: skip


def plateau_epochs(curve: Sequence[float], n_classes: int) -> int:
    """How many epochs, from the first, a net sat on the plateau where it predicts the class
    frequencies: epoch losses above ``PLATEAU`` times ln(n_classes), the loss of that guess
    for balanced classes.

    Example:
        >>> plateau_epochs([2.40, 2.31, 2.30, 1.70, 2.30], 10)  # ln 10 = 2.303; 0.95 of it 2.19
        3
    """
    above = np.asarray(curve) > PLATEAU * np.log(n_classes)
    return int(above.size if above.all() else np.argmin(above))


def verdict(pretrained_accuracy: float, random_accuracy: float) -> str:
    """How the pre-trained net compares, in words, by test accuracy (a difference below
    ``CLEAR_GAIN`` counts as none).

    Example:
        >>> verdict(0.90, 0.70), verdict(0.801, 0.80), verdict(0.70, 0.75)
        ('pre-training helps', 'no clear difference', 'pre-training hurts')
    """
    gain = pretrained_accuracy - random_accuracy
    if abs(gain) < CLEAR_GAIN:
        return "no clear difference"
    return "pre-training helps" if gain > 0 else "pre-training hurts"


def report(r: dict, settings: dict) -> None:
    """Print the table and the finding, one sentence per optimizer and label regime."""
    print(f"  pre-training ({settings['ae_epochs']} epochs per layer, no labels, "
          f"{r['pretraining_seconds']:.1f} s): reconstruction MSE per layer "
          + ", ".join(f"{p['mse_last_epoch']:.4f}" for p in r["pretraining"]))  # fmt: skip
    print(f"  {'optimizer':<28}{'labels':>7}{'epochs':>7}   test accuracy (training loss) "
          "[epochs on the plateau]")
    print(f"  {'':<42}{'random':>12}{'pre-trained':>24}")
    sentences = []
    for optimizer, by_regime in r["runs"].items():
        name = OPTIMIZERS[optimizer][0]
        for regime, by_init in by_regime.items():
            n_labels = r["n_train"] if regime == "all" else r["n_few"]
            n_epochs = settings["epochs"] if regime == "all" else settings["few_epochs"]
            rand, pre = by_init["random"], by_init["pretrained"]
            cells = "".join(f"{v['test_accuracy']:>10.4f} ({v['train_loss']:.3f}) "
                            f"[{v['plateau_epochs']}]" for v in (rand, pre))  # fmt: skip
            print(f"  {name:<28}{n_labels:>7}{n_epochs:>7}{cells}")
            stuck = rand["plateau_epochs"]
            plateau = (
                "" if not stuck else
                f", the random net on the plateau for all {n_epochs} epochs" if stuck == n_epochs
                else f", the random net on the plateau for its first {stuck} epochs"
            )  # fmt: skip
            sentences.append(
                f"{name}, {n_labels} labels, {n_epochs} epochs: "
                f"{verdict(pre['test_accuracy'], rand['test_accuracy'])} — test accuracy "
                f"{pre['test_accuracy']:.4f} pre-trained vs {rand['test_accuracy']:.4f} random, "
                f"training loss {pre['train_loss']:.3f} vs {rand['train_loss']:.3f}{plateau}"
            )
    print(
        f"Layer-wise pre-training of a {settings['depth']}x{settings['hidden']} sigmoid net on "
        f"{r['dataset']} (same initial weights, optimizer and epochs for both; the plateau is "
        f"a training loss near ln 10 = 2.303): " + "; ".join(sentences) + "."
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the short variant (CI), digits")
    parser.add_argument("--dataset", choices=tuple(PIXEL_MAX), default=None,
                        help="default fashion_mnist (digits with --quick)")  # fmt: skip
    parser.add_argument("--data-dir", default=None, help="folder with the Fashion-MNIST files")
    parser.add_argument("--optimizers", nargs="+", choices=tuple(OPTIMIZERS), default=None,
                        help="default sgd adam (sgd with --quick)")  # fmt: skip
    for name in ("hidden", "depth", "ae_epochs", "ae_learning_rate", "epochs", "few_epochs",
                 "labels_per_class", "batch_size"):  # fmt: skip
        kind = float if name == "ae_learning_rate" else int
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None,
                            help=f"default {FULL[name]} ({QUICK[name]} with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plots", default=None, metavar="DIR",
                        help="save the training-loss curves as PNG into DIR")
    return parser.parse_args(argv)


def plot_curves(r: dict, path: str | Path) -> None:
    """The per-epoch training loss of every run, random (dashed) against pre-trained."""
    from matplotlib.figure import Figure

    from ember import viz

    runs = [(opt, regime, by_init) for opt, by_regime in r["runs"].items()
            for regime, by_init in by_regime.items()]  # fmt: skip
    fig = Figure(figsize=(4.5 * len(runs), 3.6), layout="constrained")
    for i, (optimizer, regime, by_init) in enumerate(runs, 1):
        ax = fig.add_subplot(1, len(runs), i)
        for init, style in (("random", "--"), ("pretrained", "-")):
            curve = by_init[init]["loss_curve"]
            ax.plot(range(1, len(curve) + 1), curve, style, label=init)
        n_labels = r["n_train"] if regime == "all" else r["n_few"]
        ax.set_title(f"{optimizer}, {n_labels} labels", fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss")
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    viz.save_figure(fig, path)


def main(argv: Sequence[str] | None = None) -> dict:
    """Parse the command line, pre-train, fine-tune, print the finding and return the
    numbers."""
    args = parse_args(argv)
    settings = dict(QUICK if args.quick else FULL)
    settings.update({k: v for k, v in vars(args).items() if k in settings and v is not None})
    settings["optimizers"] = tuple(settings["optimizers"])
    r = run(**settings, seed=args.seed, data_dir=args.data_dir)
    report(r, settings)
    if args.plots:
        plot_curves(r, Path(args.plots) / "pretraining_loss_curves.png")
    return r


if __name__ == "__main__":
    main()
