"""Two ways to make an autoencoder learn something better than copying: noise and sparsity.

An autoencoder whose code is not much smaller than its input can learn to copy the image,
noise included. Two remedies, each measured here against the same network without it (same
layers, seed, optimizer and epochs), on the bundled 8×8 digits (pixels scaled to [0, 1]):

* **Denoising** (Vincent et al., 2008): train on corrupted inputs with the *clean* images as
  targets. A ``GaussianNoise`` layer in front of the encoder adds fresh noise to every training
  batch (and nothing at inference), and ``fit(x, x)`` keeps the clean target. To undo the noise
  the network must learn what digits look like. Measured: the mean squared error against the
  clean test images when the *noisy* test images are fed in (one fixed noise draw), for the
  denoising autoencoder and for a plain one trained on clean images; as references, the error
  of the noisy images themselves and of predicting the mean training image, and both
  autoencoders' error on clean test inputs (what denoising costs there).
* **Sparsity**: an L1 penalty on the code's activations (``activity_regularizer=L1(λ)`` on the
  ReLU code layer: λ · Σ|h| per image, added to the loss by ``fit``) pushes most code units to
  exactly zero for a given image, so each image is described by a few active units. Measured:
  the fraction of near-zero code activations on the test set (at most 1 % of the net's 99th
  percentile activation: the scale is the net's own, since the penalty also shrinks the scale
  of the code and the decoder can grow to compensate), the fraction of *dead* units (near zero
  on every test image) and the reconstruction error, for each λ against λ = 0.

``--quick`` (what CI runs) trains one noise level and one λ briefly; the full run two noise
levels and three values of λ. ``--plots DIR`` saves a grid of clean, noisy and denoised test
images and a picture of the codes with and without the penalty. The measured numbers are in
``examples/README.md``.

Run from the repository root::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python examples/denoising_sparse_autoencoders.py
    OPENBLAS_NUM_THREADS=1 .venv/bin/python examples/denoising_sparse_autoencoders.py --quick
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

import ember
from ember import layers

FULL = {"noise_levels": (0.25, 0.5), "l1_values": (1e-4, 3e-4, 1e-3), "epochs": 60,
        "denoising_code": 32, "sparse_code": 64, "hidden": 128}  # fmt: skip
QUICK = {"noise_levels": (0.5,), "l1_values": (3e-4,), "epochs": 15,
         "denoising_code": 32, "sparse_code": 64, "hidden": 128}  # fmt: skip
NEAR_ZERO = 0.01  # a code activation counts as near zero below 1 % of the net's 99th percentile


def load_digits() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flattened digits ``(n, 64)`` float32 in [0, 1]: training images, test images, test
    labels.

    Example:
        >>> x_train, x_test, y_test = load_digits()
        >>> x_train.shape, x_test.dtype, float(x_test.max())
        ((1437, 64), dtype('float32'), 1.0)
    """
    (x_train, _), (x_test, y_test) = ember.datasets.digits.load_data()
    scale = np.float32(16.0)
    return (x_train.reshape(len(x_train), -1).astype(np.float32) / scale,
            x_test.reshape(len(x_test), -1).astype(np.float32) / scale, y_test)  # fmt: skip


def add_noise(x: np.ndarray, stddev: float, rng: np.random.Generator) -> np.ndarray:
    """``x`` plus Gaussian noise of standard deviation ``stddev``, in ``x``'s dtype, not
    clipped (as the ``GaussianNoise`` layer does in training).

    Example:
        >>> noisy = add_noise(np.zeros((1000, 64), np.float32), 0.5, np.random.default_rng(0))
        >>> noisy.dtype, round(float(noisy.std()), 2)
        (dtype('float32'), 0.5)
    """
    return x + np.float32(stddev) * rng.standard_normal(x.shape, dtype=np.float32)


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error over every pixel of every image.

    Example:
        >>> mse(np.zeros((1, 4)), np.array([[1.0, 1.0, 0.0, 0.0]]))
        0.5
    """
    return float(np.mean(np.square(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def near_zero_fraction(codes: np.ndarray, relative: float = NEAR_ZERO) -> float:
    """Fraction of the entries of ``codes`` whose magnitude is at most ``relative`` times the
    99th percentile of all magnitudes (a scale-free threshold; exact zeros always count).

    Example:
        >>> near_zero_fraction(np.array([[0.0, 0.001, 2.0, 3.0]]), relative=0.01)
        0.5
    """
    magnitudes = np.abs(codes)
    return float(np.mean(magnitudes <= relative * np.percentile(magnitudes, 99)))


def dead_fraction(codes: np.ndarray, relative: float = NEAR_ZERO) -> float:
    """Fraction of code units (columns) that are near zero (as in :func:`near_zero_fraction`)
    for every image (row).

    Example:
        >>> dead_fraction(np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 2.0]]))
        0.3333333333333333
    """
    magnitudes = np.abs(codes)
    near = magnitudes <= relative * np.percentile(magnitudes, 99)
    return float(np.mean(near.all(axis=0)))


def build_autoencoder(code_size: int, hidden: int, noise: float = 0.0,
                      l1: float = 0.0) -> tuple[ember.Model, ember.Model]:  # fmt: skip
    """``(autoencoder, encoder)`` for flattened 64-pixel images: [GaussianNoise(noise)] →
    ReLU(hidden) → ReLU code (with an L1 activity penalty λ = ``l1`` when > 0) → ReLU(hidden)
    → sigmoid pixels, compiled with Adam 3e-3 and the MSE.

    Example:
        >>> ae, encoder = build_autoencoder(8, 16, noise=0.5, l1=1e-3)
        >>> [type(layer).__name__ for layer in ae.layers][:3], encoder.output_shape
        (['InputLayer', 'GaussianNoise', 'Dense'], (None, 8))
    """
    inputs = layers.Input(shape=(64,))
    h = layers.GaussianNoise(noise)(inputs) if noise > 0 else inputs
    h = layers.Dense(hidden, activation="relu")(h)
    penalty = ember.regularizers.L1(l1) if l1 > 0 else None
    code = layers.Dense(code_size, activation="relu", activity_regularizer=penalty,
                        name="code")(h)  # fmt: skip
    h = layers.Dense(hidden, activation="relu")(code)
    outputs = layers.Dense(64, activation="sigmoid")(h)
    autoencoder = ember.Model(inputs, outputs)
    autoencoder.compile(optimizer=ember.optimizers.Adam(learning_rate=3e-3), loss="mse")
    return autoencoder, ember.Model(inputs, code)


def train(x_train: np.ndarray, code_size: int, hidden: int, epochs: int, seed: int,
          noise: float = 0.0, l1: float = 0.0) -> tuple[ember.Model, ember.Model]:  # fmt: skip
    """A freshly seeded autoencoder trained to give back the clean ``x_train``."""
    ember.manual_seed(seed)
    autoencoder, encoder = build_autoencoder(code_size, hidden, noise, l1)
    autoencoder.fit(x_train, x_train, epochs=epochs, batch_size=32, verbose=0)
    return autoencoder, encoder


def denoising(x_train: np.ndarray, x_test: np.ndarray, settings: dict, seed: int) -> dict:
    """Per noise level: the clean-target MSE of the plain and the denoising autoencoder on noisy
    and on clean test inputs, the references, and a few images for the figure."""
    common = (settings["denoising_code"], settings["hidden"], settings["epochs"], seed)
    plain, _ = train(x_train, *common)
    clean_plain = plain.predict(x_test, verbose=0)
    result = {}
    for stddev in settings["noise_levels"]:
        noisy = add_noise(x_test, stddev, np.random.default_rng(seed))
        dae, _ = train(x_train, *common, noise=stddev)
        from_noisy = {"plain": plain.predict(noisy, verbose=0),
                      "denoising": dae.predict(noisy, verbose=0)}  # fmt: skip
        result[stddev] = {
            "noisy_input": mse(noisy, x_test),
            "mean_image": mse(x_train.mean(axis=0), x_test),
            "plain": mse(from_noisy["plain"], x_test),
            "denoising": mse(from_noisy["denoising"], x_test),
            "plain_clean_input": mse(clean_plain, x_test),
            "denoising_clean_input": mse(dae.predict(x_test, verbose=0), x_test),
            "examples": {"clean": x_test[:10], f"noisy (σ = {stddev})": noisy[:10],
                         "plain AE": from_noisy["plain"][:10],
                         "denoising AE": from_noisy["denoising"][:10]},
        }  # fmt: skip
    return result


def sparsity(x_train: np.ndarray, x_test: np.ndarray, settings: dict, seed: int) -> dict:
    """Per λ (0 first): near-zero and dead fractions of the code on the test set, the mean
    number of active units per image, the test MSE, and the codes of 30 test images."""
    result = {}
    for l1 in (0.0, *settings["l1_values"]):
        autoencoder, encoder = train(x_train, settings["sparse_code"], settings["hidden"],
                                     settings["epochs"], seed, l1=l1)  # fmt: skip
        codes = encoder.predict(x_test, verbose=0)
        near = near_zero_fraction(codes)
        result[l1] = {
            "near_zero": near,
            "exact_zero": float(np.mean(codes == 0)),
            "dead_units": dead_fraction(codes),
            "active_per_image": (1.0 - near) * codes.shape[1],
            "mse": mse(autoencoder.predict(x_test, verbose=0), x_test),
            "codes": codes[:30],
        }
    return result


def save_denoising_grid(path: Path, examples: dict) -> Path:
    """One row per entry of ``examples``, clipped to [0, 1] for display."""
    from ember import viz

    rows = list(examples)
    images = np.clip(np.concatenate([examples[r] for r in rows]), 0.0, 1.0).reshape(-1, 8, 8)
    labels = [r if i == 0 else "" for r in rows for i in range(len(examples[rows[0]]))]
    viz.image_grid(images, labels=labels, ncols=len(examples[rows[0]]),
                   title="Noisy test digits, cleaned by a plain and a denoising autoencoder",
                   path=path)  # fmt: skip
    return path


def save_codes_figure(path: Path, sparse: dict) -> Path:
    """The codes of 30 test images (rows) for λ = 0 and the largest λ, each scaled by its own
    maximum: the penalty leaves most entries at zero."""
    from matplotlib.figure import Figure

    from ember import viz

    shown = (0.0, max(sparse))
    fig = Figure(figsize=(9, 3.6))
    for i, l1 in enumerate(shown):
        ax = fig.add_subplot(1, 2, i + 1)
        codes = sparse[l1]["codes"]
        ax.imshow(codes / max(float(codes.max()), 1e-12), cmap="magma", aspect="auto")
        ax.set_title(f"L1 λ = {l1:g}: {sparse[l1]['near_zero']:.0%} near zero", fontsize=9)
        ax.set_xlabel("code unit")
        ax.set_ylabel("test image")
    return viz.save_figure(fig, path)


def report(den: dict, sparse: dict, settings: dict) -> str:
    """Print the tables and return the finding."""
    print(f"Denoising (code {settings['denoising_code']}, {settings['epochs']} epochs): MSE "
          "against the clean test digits")  # fmt: skip
    print(f"  {'σ':>5}{'noisy input':>13}{'mean image':>12}{'plain AE':>10}{'denoising AE':>14}"
          f"{'plain, clean in':>17}{'denoising, clean in':>21}")  # fmt: skip
    for s, v in den.items():
        print(f"  {s:>5}{v['noisy_input']:>13.4f}{v['mean_image']:>12.4f}{v['plain']:>10.4f}"
              f"{v['denoising']:>14.4f}{v['plain_clean_input']:>17.4f}"
              f"{v['denoising_clean_input']:>21.4f}")  # fmt: skip
    print(f"Sparse (ReLU code of {settings['sparse_code']} units, L1 activity penalty λ):")
    print(f"  {'λ':>7}{'near zero':>11}{'exactly 0':>11}{'dead units':>12}{'active/image':>14}"
          f"{'test MSE':>10}")  # fmt: skip
    for l1, v in sparse.items():
        print(f"  {l1:>7g}{v['near_zero']:>11.3f}{v['exact_zero']:>11.3f}{v['dead_units']:>12.3f}"
              f"{v['active_per_image']:>14.1f}{v['mse']:>10.4f}")  # fmt: skip
    def listed(rows, key: str, fmt: str) -> str:
        return ", ".join(format(v[key], fmt) for v in rows)

    noisy = list(den.values())
    better = all(v["denoising"] < v["plain"] for v in noisy)
    first = (
        f"Digits, noise σ = {', '.join(f'{s:g}' for s in den)} on the test inputs: the "
        f"denoising autoencoder's MSE against the clean images is "
        f"{listed(noisy, 'denoising', '.4f')}, {'below' if better else 'NOT always below'} the "
        f"plain autoencoder's {listed(noisy, 'plain', '.4f')} (the noisy inputs themselves "
        f"{listed(noisy, 'noisy_input', '.4f')}, the mean image {noisy[0]['mean_image']:.4f})."
    )
    base = sparse[0.0]
    penalized = [v for l1, v in sparse.items() if l1 != 0.0]
    sparser = all(v["near_zero"] > base["near_zero"] for v in penalized)
    second = (
        f"An L1 activity penalty λ = {', '.join(f'{l1:g}' for l1 in sparse if l1 != 0.0)} on "
        f"the code leaves {listed(penalized, 'near_zero', '.1%')} of its activations near zero, "
        f"{'more' if sparser else 'NOT always more'} than {base['near_zero']:.1%} without it "
        f"(dead units {listed(penalized, 'dead_units', '.1%')} against "
        f"{base['dead_units']:.1%}; test MSE {listed(penalized, 'mse', '.4f')} against "
        f"{base['mse']:.4f})."
    )
    return f"{first} {second}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one noise level, one λ (CI)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plots", metavar="DIR", default=None,
                        help="save the figures as PNG files into DIR")  # fmt: skip
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"default {FULL['epochs']} ({QUICK['epochs']} with --quick)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict:
    """Train the plain, denoising and sparse autoencoders, print the finding and return
    ``{"denoising": {σ: {...}}, "sparsity": {λ: {...}}, "plots": [paths]}``."""
    args = parse_args(argv)
    settings = dict(QUICK if args.quick else FULL)
    if args.epochs is not None:
        settings["epochs"] = args.epochs
    x_train, x_test, _ = load_digits()
    den = denoising(x_train, x_test, settings, args.seed)
    sparse = sparsity(x_train, x_test, settings, args.seed)
    finding = report(den, sparse, settings)
    plots = []
    if args.plots:
        strongest = max(den)
        plots.append(save_denoising_grid(Path(args.plots) / "denoising_autoencoder.png",
                                         den[strongest]["examples"]))  # fmt: skip
        plots.append(save_codes_figure(Path(args.plots) / "sparse_autoencoder_codes.png", sparse))
    print(finding)
    return {"denoising": den, "sparsity": sparse, "plots": plots}


if __name__ == "__main__":
    main()
