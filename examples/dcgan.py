"""A DCGAN: a convolutional generator and discriminator playing the GAN game on images.

The DCGAN recipe (Radford et al., 2015) made GANs on images train reliably: the generator
*upsamples* noise with stride-2 transposed convolutions (``Conv2DTranspose``), each followed by
batch normalization and ReLU, ending in ``tanh`` (images scaled to [-1, 1]); the discriminator
*downsamples* with strided convolutions (no pooling) and LeakyReLU(0.2), ending in one logit;
both train with Adam, ``beta_1 = 0.5``. Here the rate starts at 5e-4 and decays to 0 along a
cosine. The game is the one of ``examples/gan_ring.py``: per batch, one discriminator step (real
images labelled 1, or ``1 - label_smoothing`` with ``--label-smoothing``; generated ones 0),
then one generator step with the non-saturating loss ``-log D(G(z))`` (or ``--g-loss
minimax``).

A GAN has no loss that says how good its images are (its two losses only say who is winning),
so the script judges the images with a small convolutional classifier trained on the real ones:

* *recognised*: the fraction of generated images the classifier puts in some class with a
  softmax above 0.9 — a blurred or in-between image gets no confident class. The same
  fraction is reported for real test images (what a perfect generator would reach) and for
  the untrained generator;
* *Fréchet distance* (the idea of FID, in this classifier's 32-feature penultimate layer rather
  than Inception's): fit a Gaussian to the features of the real test images and one to those
  of 1,000 generated images, and compute ``|mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))``;
  0 for identical statistics. The distance between the real training and test images is the
  floor set by sampling noise. It is printed per epoch and should fall.

The class counts of the recognised images show whether every digit is generated (a collapsed
GAN makes a few classes only).

Trained on the 8x8 digits (the default, always available) or Fashion-MNIST (28x28,
``--dataset fashion_mnist``, when installed; far slower on a CPU, so it trains on 12,800 images
for 8 epochs), in two styles that compute the same numbers: ``--loop fit`` (a :class:`GAN`
``ember.Model`` with ``compile(d_optimizer=, g_optimizer=, ...)`` and an overridden
``train_step``, trained by ``fit``) or ``--loop manual`` (``loss.backward()`` and
``optimizer.step()`` by hand). ``--plots DIR`` saves a grid of 64 samples from fixed noise after
each epoch (``DIR/dcgan_epoch_NN.png``, captioned with the classifier's class and confidence)
and the curves (``DIR/dcgan_curves.png``). The measured numbers are in ``examples/README.md``.

Run from the repository root (``--quick`` is the short variant the tests run)::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python examples/dcgan.py --plots plots
    OPENBLAS_NUM_THREADS=1 .venv/bin/python examples/dcgan.py --loop manual
    OPENBLAS_NUM_THREADS=1 .venv/bin/python examples/dcgan.py --quick
    OPENBLAS_NUM_THREADS=1 .venv/bin/python examples/dcgan.py --dataset fashion_mnist
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# The game itself (both losses, the GAN model and the hand-written loop) is gan_ring.py's, next
# to this file: only the networks and the data differ.
from gan_ring import GAN, discriminator_loss, generator_loss, train_manual  # noqa: F401

import ember
from ember import layers

G_LOSSES = ("non_saturating", "minimax")
CONFIDENT = 0.9  # softmax above which the classifier "recognises" an image
EVAL_SAMPLES = 1000

# An "epoch" is `repeats` passes over the training images (10 x 1,437 digits = 225 batches of
# 64), so that the per-epoch report and sample grid come at a useful pace.
FULL = {"dataset": "digits", "n_train": None, "repeats": 10, "epochs": 20, "batch_size": 64,
        "latent_dim": 32, "filters": 32, "learning_rate": 5e-4,
        "classifier_epochs": 40}  # fmt: skip
QUICK = {"dataset": "digits", "n_train": None, "repeats": 2, "epochs": 5, "batch_size": 64,
         "latent_dim": 32, "filters": 16, "learning_rate": 1e-3,
         "classifier_epochs": 10}  # fmt: skip
# Fashion-MNIST's 28x28 images cost ~10 times more per step on a CPU: a subset and fewer epochs
# (5-8 minutes on one core), with the classic DCGAN rate 2e-4.
FASHION = {"dataset": "fashion_mnist", "n_train": 12_800, "repeats": 1, "epochs": 8,
           "batch_size": 64, "latent_dim": 32, "filters": 32, "learning_rate": 2e-4,
           "classifier_epochs": 3}  # fmt: skip


# ------------------------------------------------------------------------------ data
def load_images(dataset: str, n_train: int | None = None) -> dict:
    """Train and test images scaled to [-1, 1], ``(n, side, side, 1)`` float32, with labels.

    Example:
        >>> d = load_images("digits", n_train=100)
        >>> d["x_train"].shape, float(d["x_train"].min()), float(d["x_train"].max())
        ((100, 8, 8, 1), -1.0, 1.0)
    """
    if dataset == "digits":
        (x_train, y_train), (x_test, y_test) = ember.datasets.digits.load_data()
        scale = 16.0
    elif dataset == "fashion_mnist":
        (x_train, y_train), (x_test, y_test) = ember.datasets.fashion_mnist.load_data()
        scale = 255.0
    else:
        raise ValueError(f"load_images: dataset must be 'digits' or 'fashion_mnist', got "
                         f"{dataset!r}")  # fmt: skip

    def prepare(x):
        return (x.astype(np.float32) * (2.0 / scale) - 1.0)[..., None]

    if n_train is not None:
        x_train, y_train = x_train[:n_train], y_train[:n_train]
    return {"x_train": prepare(x_train), "y_train": y_train.astype(np.int64),
            "x_test": prepare(x_test), "y_test": y_test.astype(np.int64)}  # fmt: skip


# ------------------------------------------------------------------------------ networks, losses
def build_generator(latent_dim: int, side: int, filters: int) -> ember.Sequential:
    """Noise → ``(side, side, 1)`` images in [-1, 1]. A dense projection to a small map
    (4x4 for 8x8 images, 7x7 for 28x28), then stride-2 transposed convolutions that double
    its side and halve its channels, each followed by batch normalization and ReLU, and a 3x3
    convolution to one ``tanh`` channel.

    Example:
        >>> build_generator(8, 8, 4)(np.zeros((2, 8), np.float32)).shape
        (2, 8, 8, 1)
        >>> build_generator(8, 28, 4)(np.zeros((2, 8), np.float32)).shape
        (2, 28, 28, 1)
    """
    if side not in (8, 28):
        raise ValueError(f"build_generator: side must be 8 or 28, got {side}")
    upsamplings = 1 if side == 8 else 2
    start, channels = side >> upsamplings, filters << upsamplings
    # momentum 0.9 (PyTorch's 0.1): the moving statistics used to generate at inference time
    # follow the fast-changing generator within ~10 steps instead of ~100.
    stack = [
        layers.Input(shape=(latent_dim,)),
        layers.Dense(start * start * channels, use_bias=False),
        layers.BatchNormalization(momentum=0.9),
        layers.ReLU(),
        layers.Reshape((start, start, channels)),
    ]
    for _ in range(upsamplings):
        channels //= 2
        stack += [
            layers.Conv2DTranspose(channels, 4, strides=2, padding="same", use_bias=False),
            layers.BatchNormalization(momentum=0.9),
            layers.ReLU(),
        ]
    stack.append(layers.Conv2D(1, 3, padding="same", activation="tanh"))
    return ember.Sequential(stack, name="generator")


def build_discriminator(side: int, filters: int) -> ember.Sequential:
    """``(side, side, 1)`` images → one logit: two stride-2 convolutions with LeakyReLU(0.2)
    (no pooling, no batch normalization: real and fake batches go through separately).

    Example:
        >>> build_discriminator(8, 4)(np.zeros((2, 8, 8, 1), np.float32)).shape
        (2, 1)
    """
    return ember.Sequential([
        layers.Input(shape=(side, side, 1)),
        layers.Conv2D(filters, 4, strides=2, padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Conv2D(2 * filters, 4, strides=2, padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Flatten(),
        layers.Dense(1),
    ], name="discriminator")  # fmt: skip


_BCE = ember.losses.BinaryCrossentropy(from_logits=True)


def build_classifier(side: int, classes: int = 10) -> ember.Model:
    """A small convnet for the real images; its 32-unit ``"features"`` layer feeds the
    Fréchet distance.

    Example:
        >>> build_classifier(8).get_layer("features").units
        32
    """
    inputs = layers.Input(shape=(side, side, 1))
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    if side > 8:  # 28x28: halve twice more before flattening
        x = layers.MaxPooling2D(2)(x)
        x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(x)
    features = layers.Dense(32, activation="relu", name="features")(layers.Flatten()(x))
    outputs = layers.Dense(classes, activation="softmax")(features)
    return ember.Model(inputs, outputs, name="classifier")


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to the rows of ``a`` and of ``b``:
    ``|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))``. ``Tr (S_a S_b)^(1/2)`` is computed
    as ``Tr (R S_b R)^(1/2)`` with ``R = S_a^(1/2)``: a symmetric matrix, so two eigenvalue
    decompositions do it (no SciPy).

    Example:
        >>> a = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
        >>> round(frechet_distance(a, a), 6), round(frechet_distance(a, 2 * a + 1), 6)
        (0.0, 10.666667)
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    middle = root_a @ cov_b @ root_a
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum()
    distance = ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root
    return float(max(distance, 0.0))


class Judge:
    """The classifier trained on the real images, and what it says about a set of images.

    Example:
        >>> judge = Judge(load_images("digits"), epochs=2, seed=0)
        >>> judge.test_accuracy > 0.8
        True
        >>> scores = judge.score(load_images("digits")["x_test"][:100])
        >>> sorted(scores), len(scores["labels"])
        (['classes', 'frechet', 'labels', 'recognised'], 100)
    """

    def __init__(self, data: dict, epochs: int, seed: int):
        ember.manual_seed(seed)
        side = data["x_train"].shape[1]
        self.model = build_classifier(side)
        self.model.compile(optimizer=ember.optimizers.Adam(2e-3),
                           loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        self.model.fit(data["x_train"], data["y_train"], epochs=epochs, batch_size=64,
                       verbose=0)  # fmt: skip
        self.features = ember.Model(self.model.input, self.model.get_layer("features").output)
        self.test_accuracy = float(self.model.evaluate(data["x_test"], data["y_test"],
                                                       verbose=0)[1])  # fmt: skip
        self.real_features = self.features.predict(data["x_test"], batch_size=500)

    def score(self, images: np.ndarray) -> dict:
        """``{"recognised": fraction with max softmax > 0.9, "frechet": distance to the real
        test images, "classes": per-class counts of the recognised images, "labels": each
        image's class and confidence}``."""
        probabilities = self.model.predict(images, batch_size=500)
        confidence, label = probabilities.max(axis=1), probabilities.argmax(axis=1)
        sure = confidence > CONFIDENT
        features = self.features.predict(images, batch_size=500)
        return {
            "recognised": float(sure.mean()),
            "frechet": frechet_distance(self.real_features, features),
            "classes": np.bincount(label[sure], minlength=probabilities.shape[1]).tolist(),
            "labels": [f"{c} ({p:.2f})" for c, p in zip(label, confidence)],
        }


# ------------------------------------------------------------------------------ the experiment
def train(generator, discriminator, images: np.ndarray, settings: dict, loop: str = "fit",
          label_smoothing: float = 0.0, g_loss: str = "non_saturating",
          on_epoch_end=None) -> dict:  # fmt: skip
    """Train the two networks on ``images`` in the chosen style; the per-epoch mean losses.

    Both networks' rates decay to 0 along a cosine over the whole run: the late, small steps
    refine the samples instead of chasing the other network around. ``on_epoch_end(epoch,
    logs)`` is called after each epoch, as a Keras callback is.

    Example:
        >>> ember.manual_seed(0)
        >>> g, d = build_generator(4, 8, 2), build_discriminator(8, 2)
        >>> history = train(g, d, np.zeros((32, 8, 8, 1), np.float32),
        ...                 {**QUICK, "epochs": 2, "latent_dim": 4}, loop="manual")
        >>> len(history["d_loss"]), len(history["g_loss"])
        (2, 2)
    """
    s = settings
    steps = s["epochs"] * -(-len(images) // s["batch_size"])
    rate = ember.schedules.CosineDecay(s["learning_rate"], steps)

    def adam(net=None):
        params = None if net is None else net.parameters()
        return ember.optimizers.Adam(params, learning_rate=rate, beta_1=0.5)

    if loop == "fit":
        gan = GAN(generator, discriminator, s["latent_dim"])
        gan.compile(d_optimizer=adam(), g_optimizer=adam(), label_smoothing=label_smoothing,
                    g_loss=g_loss)  # fmt: skip
        callback = ember.callbacks.LambdaCallback(on_epoch_end=on_epoch_end)
        return gan.fit(images, batch_size=s["batch_size"], epochs=s["epochs"], verbose=0,
                       callbacks=[callback] if on_epoch_end else None).history  # fmt: skip
    if loop == "manual":
        return train_manual(generator, discriminator, images, s["epochs"], s["batch_size"],
                            s["latent_dim"], adam(discriminator), adam(generator),
                            label_smoothing, g_loss, on_epoch_end=on_epoch_end)  # fmt: skip
    raise ValueError(f"train: loop must be 'fit' or 'manual', got {loop!r}")


def run(settings: dict, g_loss: str = "non_saturating", label_smoothing: float = 0.0,
        loop: str = "fit", seed: int = 0, plots: Path | None = None) -> dict:
    """Train the judge, then the GAN, scoring 1,000 samples from fixed noise after each epoch
    (printed as it goes).

    Returns the judge's ``"classifier_accuracy"``, the ``"real_recognised"`` fraction and
    ``"real_frechet"`` (training vs test images), the ``"untrained"`` generator's scores, the
    per-epoch ``"recognised_curve"``, ``"frechet_curve"``, ``"d_loss"`` and ``"g_loss"``, the
    final ``"recognised"``, ``"frechet"`` and ``"classes"``, the ``"steps"`` and ``"seconds"``
    of GAN training, and the ``"generator"`` and ``"discriminator"``.
    """
    s = settings
    data = load_images(s["dataset"], s["n_train"])
    judge = Judge(data, s["classifier_epochs"], seed)
    real = judge.score(data["x_test"])
    real_frechet = frechet_distance(judge.features.predict(data["x_train"], batch_size=500),
                                    judge.real_features)  # fmt: skip
    print(f"  classifier (judge): test accuracy {judge.test_accuracy:.4f}; real test images "
          f"recognised {real['recognised']:.3f}; Fréchet distance real train vs test "
          f"{real_frechet:.3f}")  # fmt: skip
    ember.manual_seed(seed)
    side = data["x_train"].shape[1]
    generator = build_generator(s["latent_dim"], side, s["filters"])
    discriminator = build_discriminator(side, s["filters"])
    # Fixed evaluation noise from NumPy: measuring never draws from Ember's generator, so the
    # two training styles see the same random numbers.
    eval_noise = np.random.default_rng(seed).standard_normal(
        (EVAL_SAMPLES, s["latent_dim"])).astype(np.float32)  # fmt: skip
    scores: list[dict] = []

    def measure(epoch=None, logs=None) -> None:
        images = generator.predict(eval_noise, batch_size=500)
        scores.append(judge.score(images))
        if epoch is None:
            return
        print(f"  {epoch + 1:5d}  {logs['d_loss']:6.3f}  {logs['g_loss']:6.3f}  "
              f"{scores[-1]['recognised']:10.3f}  {scores[-1]['frechet']:7.3f}", flush=True)
        if plots is not None:
            plot_samples(images[:64], scores[-1]["labels"][:64], epoch + 1,
                         plots / f"dcgan_epoch_{epoch + 1:02d}.png")  # fmt: skip

    measure()  # the untrained generator
    untrained = scores.pop()
    print(f"  untrained generator: recognised {untrained['recognised']:.3f}, Fréchet distance "
          f"{untrained['frechet']:.2f}\n  epoch  d_loss  g_loss  recognised  Fréchet")
    images = np.tile(data["x_train"], (s["repeats"], 1, 1, 1))
    start = time.perf_counter()
    history = train(generator, discriminator, images, s, loop, label_smoothing, g_loss, measure)
    return {
        "classifier_accuracy": judge.test_accuracy,
        "real_recognised": real["recognised"],
        "real_frechet": real_frechet,
        "untrained": {k: untrained[k] for k in ("recognised", "frechet")},
        "recognised_curve": [v["recognised"] for v in scores],
        "frechet_curve": [v["frechet"] for v in scores],
        "d_loss": list(history["d_loss"]),
        "g_loss": list(history["g_loss"]),
        "recognised": scores[-1]["recognised"],
        "frechet": scores[-1]["frechet"],
        "classes": scores[-1]["classes"],
        "seconds": time.perf_counter() - start,
        "steps": s["epochs"] * -(-len(images) // s["batch_size"]),
        "generator": generator,
        "discriminator": discriminator,
    }


def plot_samples(images: np.ndarray, labels: list[str], epoch: int, path: Path) -> None:
    """A grid of generated images captioned with the judge's class and confidence."""
    from ember import viz

    viz.image_grid((images + 1.0) / 2.0, labels=labels, ncols=8,
                   title=f"DCGAN samples after epoch {epoch}", path=path)  # fmt: skip


def plot_curves(r: dict, path: Path) -> None:
    """The recognised fraction and the Fréchet distance per epoch, with the real-data levels."""
    from matplotlib.figure import Figure

    from ember import viz

    fig = Figure(figsize=(10, 4), layout="constrained")
    epochs = np.arange(1, len(r["frechet_curve"]) + 1)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    left.plot(epochs, r["recognised_curve"], marker="o", label="generated")
    left.axhline(r["real_recognised"], color="gray", linestyle="--", label="real test images")
    left.set(xlabel="epoch", ylabel=f"fraction with max softmax > {CONFIDENT}", ylim=(0, 1))
    right.plot(epochs, r["frechet_curve"], marker="o", label="generated vs real test")
    right.axhline(r["real_frechet"], color="gray", linestyle="--", label="real train vs test")
    right.set(xlabel="epoch", ylabel="Fréchet distance (classifier features)", yscale="log")
    for ax in (left, right):
        ax.legend()
    viz.save_figure(fig, path)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the short variant (CI)")
    parser.add_argument("--dataset", choices=("digits", "fashion_mnist"), default=None)
    parser.add_argument("--loop", choices=("fit", "manual"), default="fit",
                        help="train with fit and GAN.train_step, or with a hand-written loop")
    parser.add_argument("--g-loss", choices=G_LOSSES, default="non_saturating")
    parser.add_argument("--label-smoothing", type=float, default=0.0,
                        help="real labels become 1 - this (one-sided; try 0.1)")
    for name, kind in (("n_train", int), ("repeats", int), ("epochs", int), ("batch_size", int),
                       ("filters", int), ("learning_rate", float),
                       ("classifier_epochs", int)):  # fmt: skip
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None,
                            help=f"default {FULL[name]} ({QUICK[name]} with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plots", default=None, help="save the figures into this folder")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict:
    """Train the judge and the DCGAN, print the per-epoch scores and the finding, return the
    numbers."""
    args = parse_args(argv)
    if args.dataset == "fashion_mnist":
        settings = dict(FASHION)
        if args.quick:
            settings.update(n_train=1280, epochs=2, classifier_epochs=1)
    else:
        settings = dict(QUICK if args.quick else FULL)
    settings.update({k: v for k, v in vars(args).items() if k in settings and v is not None})
    plots = None if args.plots is None else Path(args.plots)
    r = run(settings, args.g_loss, args.label_smoothing, args.loop, args.seed, plots)
    if plots is not None:
        plot_curves(r, plots / "dcgan_curves.png")
    best = int(np.argmin(r["frechet_curve"])) + 1
    falls = r["frechet"] < r["untrained"]["frechet"] and r["frechet"] < r["frechet_curve"][0]
    print(
        f"DCGAN on {settings['dataset']} ({args.g_loss} loss, {args.loop}, "
        f"{r['steps']} steps, {r['seconds']:.0f} s): the classifier recognises "
        f"{r['recognised']:.1%} of 1000 generated images with confidence > {CONFIDENT} (real "
        f"test images {r['real_recognised']:.1%}, untrained generator "
        f"{r['untrained']['recognised']:.1%}); the Fréchet distance in its feature space "
        + ("fell" if falls else "did NOT fall")
        + f" from {r['untrained']['frechet']:.2f} (untrained) and {r['frechet_curve'][0]:.2f} "
        f"(epoch 1) to {r['frechet']:.2f} (best {min(r['frechet_curve']):.2f} at epoch {best}; "
        f"real train vs test {r['real_frechet']:.2f}). Recognised images per class: "
        f"{r['classes']}."
    )
    return {k: v for k, v in r.items() if k not in ("generator", "discriminator")}


if __name__ == "__main__":
    main()
