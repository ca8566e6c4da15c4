"""Autoencoders: learning a short code of an image with no labels, and what the code is worth.

An autoencoder is two networks trained as one: an *encoder* maps an image to a short code (here
8 numbers for a 64-pixel digit, 32 for a 784-pixel Fashion-MNIST image) and a *decoder* maps
the code back to an image; the pair is trained to give back its input, ``fit(x, x)`` with the
mean squared error. The bottleneck forces the code to keep what matters most about the images.

* With a linear encoder and decoder the best code is PCA's: the projection on the top
  principal components. Nonlinear layers (ReLU hidden layers) can do better with the same code
  size, because the images lie near a curved surface rather than a flat one (Hinton and
  Salakhutdinov, 2006). The script measures the test-set reconstruction error of a dense
  autoencoder and of a convolutional one (strided ``Conv2D`` encoder; decoder of
  ``Conv2DTranspose`` layers, or of ``UpSampling2D`` + ``Conv2D``) against PCA with the same
  code size and against predicting the mean training image.
* The code is learnt without labels, so it can be used to classify with few labels: a softmax
  regression (the same classifier, the same training) is fitted on 10 or 50 labelled images per
  class, on the raw pixels, on the PCA code and on each autoencoder's code, and scored on the
  whole test set (the mean over several random draws of the labelled images). This is the
  course's "unsupervised pre-training helps when labels are scarce"; the script prints the
  numbers whichever way they come out.

The full run uses the bundled digits (three autoencoders) and Fashion-MNIST (dense, and
convolutional with ``Conv2DTranspose``; the ``UpSampling2D`` decoder does four times the
multiply-adds of the transposed one, about 80 s against 16 s per Fashion-MNIST epoch on this
machine, so it runs on the digits only). Fashion-MNIST is read from ``--data-dir``, or else
Ember's cache or ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``), and
downloaded only with ``--download``; when it is missing, that part is skipped with a message.
``--quick`` (what CI runs) trains the dense and the ``Conv2DTranspose`` autoencoders on the
digits only, briefly. ``--plots DIR`` saves a grid of test images and their reconstructions per
data set. The measured numbers are in ``examples/README.md``.

Run from the repository root::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python examples/autoencoders.py
    OPENBLAS_NUM_THREADS=1 .venv/bin/python examples/autoencoders.py --quick --plots plots
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
DECODER_LAYERS = {"transpose": "Conv2DTranspose", "upsample": "UpSampling2D"}

FULL = {
    "digits": {"code_size": 8, "hidden": 128, "epochs": 100, "batch_size": 32,
               "learning_rate": 3e-3, "conv_decoders": ("transpose", "upsample")},
    "fashion_mnist": {"code_size": 32, "hidden": 256, "epochs": 8, "batch_size": 128,
                      "learning_rate": 2e-3, "conv_decoders": ("transpose",)},
    "labels_per_class": (10, 50), "draws": 5, "probe_epochs": 200,
}  # fmt: skip
QUICK = {
    "digits": {"code_size": 8, "hidden": 128, "epochs": 15, "batch_size": 32,
               "learning_rate": 3e-3, "conv_decoders": ("transpose",)},
    "fashion_mnist": None,
    "labels_per_class": (10,), "draws": 3, "probe_epochs": 200,
}  # fmt: skip


# ------------------------------------------------------------------------------ data
def load(dataset: str, data_dir: str | None = None, download: bool = False) -> tuple | None:
    """``(x_train, y_train), (x_test, y_test)``: NHWC float32 images in [0, 1] and integer
    labels; ``None`` when Fashion-MNIST is not on this machine (and ``download`` is off).

    Example:
        >>> (x_train, y_train), (x_test, y_test) = load("digits")
        >>> x_train.shape, x_train.dtype, float(x_train.max()), x_test.shape
        ((1437, 8, 8, 1), dtype('float32'), 1.0, (360, 8, 8, 1))
    """
    if dataset == "digits":
        (x_train, y_train), (x_test, y_test) = ember.datasets.digits.load_data()
    else:
        try:
            (x_train, y_train), (x_test, y_test) = ember.datasets.fashion_mnist.load_data(
                path=data_dir, download=download
            )
        except ember.datasets.DatasetUnavailableError:
            return None
    scale = np.float32(PIXEL_MAX[dataset])
    return ((x_train[..., None].astype(np.float32) / scale, y_train.astype(np.int64)),
            (x_test[..., None].astype(np.float32) / scale, y_test.astype(np.int64)))  # fmt: skip


def few_label_indices(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``per_class`` images of every class, drawn without replacement.

    Example:
        >>> y = np.array([0, 1, 0, 1, 0, 1, 2, 2])
        >>> idx = few_label_indices(y, 2, np.random.default_rng(0))
        >>> sorted(y[idx].tolist())
        [0, 0, 1, 1, 2, 2]
    """
    classes = np.unique(labels)
    counts = np.array([np.sum(labels == c) for c in classes])
    if per_class < 1 or per_class > counts.min():
        raise ValueError(
            f"few_label_indices: per_class must be between 1 and {counts.min()} (the smallest "
            f"class), got {per_class}"
        )
    return np.concatenate(
        [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in classes]
    )


# ------------------------------------------------------------------------------ baselines
def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error over every pixel of every image.

    Example:
        >>> mse(np.zeros((2, 2)), np.array([[1.0, 0.0], [0.0, 1.0]]))
        0.5
    """
    return float(np.mean(np.square(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def pca_fit(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The mean of the rows of ``x`` (images flattened) and its top ``k`` principal directions
    ``(k, features)`` (orthonormal rows, by decreasing variance): the best linear code of size
    ``k`` for the squared error.

    Example:
        >>> x = np.array([[0.0, 0.0], [2.0, 2.0], [1.0, 1.0]])
        >>> mean, components = pca_fit(x, 1)
        >>> mean.tolist(), np.abs(components).round(4).tolist()
        ([1.0, 1.0], [[0.7071, 0.7071]])
    """
    flat = x.reshape(len(x), -1)
    mean = flat.mean(axis=0)
    centred = flat - mean
    # eigenvectors of the (features x features) covariance: cheaper than an SVD of the data
    # when there are many more images than pixels
    values, vectors = np.linalg.eigh(centred.T @ centred / len(flat))
    return mean, vectors[:, np.argsort(values)[::-1][:k]].T.astype(flat.dtype)


def pca_encode(x: np.ndarray, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
    """The PCA code ``(n, k)`` of the images ``x``.

    Example:
        >>> pca_encode(np.array([[3.0, 1.0]]), np.array([1.0, 1.0]), np.array([[1.0, 0.0]]))
        array([[2.]])
    """
    return (x.reshape(len(x), -1) - mean) @ components.T


def pca_reconstruct(x: np.ndarray, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
    """The images ``x`` projected on the principal directions (their PCA reconstruction).

    Example:
        >>> pca_reconstruct(np.array([[3.0, 1.0]]), np.array([1.0, 1.0]),
        ...                 np.array([[1.0, 0.0]]))
        array([[3., 1.]])
    """
    code = pca_encode(x, mean, components)
    return (code @ components + mean).reshape(x.shape)


# ------------------------------------------------------------------------------ models
def build_dense_autoencoder(image_shape: tuple, code_size: int,
                            hidden: int) -> tuple[ember.Model, ember.Model]:  # fmt: skip
    """``(autoencoder, encoder)``: pixels → ReLU(hidden) → linear code → ReLU(hidden) →
    sigmoid pixels; the encoder is the first half as its own functional model (shared layers).

    Example:
        >>> ae, encoder = build_dense_autoencoder((8, 8, 1), 4, 16)
        >>> ae.output_shape, encoder.output_shape
        ((None, 8, 8, 1), (None, 4))
    """
    pixels = int(np.prod(image_shape))
    inputs = layers.Input(shape=image_shape)
    h = layers.Flatten()(inputs)
    h = layers.Dense(hidden, activation="relu")(h)
    code = layers.Dense(code_size, name="code")(h)
    h = layers.Dense(hidden, activation="relu")(code)
    h = layers.Dense(pixels, activation="sigmoid")(h)
    outputs = layers.Reshape(image_shape)(h)
    return ember.Model(inputs, outputs, name="dense_ae"), ember.Model(inputs, code)


def build_conv_autoencoder(image_shape: tuple, code_size: int, decoder: str = "transpose",
                           filters: tuple[int, int] = (16, 32)
                           ) -> tuple[ember.Model, ember.Model]:  # fmt: skip
    """``(autoencoder, encoder)``: two stride-2 3×3 ``Conv2D`` (the image shrinks 4×), a linear
    code, then a Dense back to the small feature maps and a decoder that doubles their size
    twice: ``"transpose"`` (two stride-2 ``Conv2DTranspose``) or ``"upsample"``
    (``UpSampling2D`` then a 3×3 ``Conv2D``, twice). Height and width must divide by 4.

    Example:
        >>> ae, encoder = build_conv_autoencoder((8, 8, 1), 4, "upsample")
        >>> ae.output_shape, encoder.output_shape
        ((None, 8, 8, 1), (None, 4))
    """
    if decoder not in DECODER_LAYERS:
        raise ValueError(
            f"build_conv_autoencoder: decoder must be one of {sorted(DECODER_LAYERS)}, got "
            f"{decoder!r}"
        )
    height, width, channels = image_shape
    if height % 4 or width % 4:
        raise ValueError(
            f"build_conv_autoencoder: image height and width must divide by 4, got {image_shape}"
        )
    small = (height // 4, width // 4, filters[1])
    inputs = layers.Input(shape=image_shape)
    h = layers.Conv2D(filters[0], 3, strides=2, padding="same", activation="relu")(inputs)
    h = layers.Conv2D(filters[1], 3, strides=2, padding="same", activation="relu")(h)
    code = layers.Dense(code_size, name="code")(layers.Flatten()(h))
    h = layers.Reshape(small)(layers.Dense(int(np.prod(small)), activation="relu")(code))
    if decoder == "transpose":
        h = layers.Conv2DTranspose(filters[0], 3, strides=2, padding="same", activation="relu")(h)
        outputs = layers.Conv2DTranspose(channels, 3, strides=2, padding="same",
                                         activation="sigmoid")(h)  # fmt: skip
    else:
        h = layers.Conv2D(filters[0], 3, padding="same", activation="relu")(
            layers.UpSampling2D(2)(h)
        )
        outputs = layers.Conv2D(channels, 3, padding="same", activation="sigmoid")(
            layers.UpSampling2D(2)(h)
        )
    return ember.Model(inputs, outputs, name=f"conv_ae_{decoder}"), ember.Model(inputs, code)


def probe_accuracy(f_train: np.ndarray, y_train: np.ndarray, f_test: np.ndarray,
                   y_test: np.ndarray, epochs: int, seed: int) -> float:  # fmt: skip
    """Test accuracy of a 10-class softmax regression fitted (full batch, Adam 1e-2, ``epochs``
    steps) on the labelled features ``f_train``; the features are standardized with the
    statistics of ``f_train``.

    Example:
        >>> f = np.array([[0.0], [0.1], [1.0], [1.1]], np.float32)
        >>> probe_accuracy(f, np.array([0, 0, 1, 1]), f, np.array([0, 0, 1, 1]), 100, 0)
        1.0
    """
    mean, std = f_train.mean(axis=0), f_train.std(axis=0) + np.float32(1e-6)
    ember.manual_seed(seed)
    model = ember.Sequential([layers.Input(shape=(f_train.shape[1],)),
                              layers.Dense(10, activation="softmax")])  # fmt: skip
    model.compile(optimizer=ember.optimizers.Adam(learning_rate=1e-2),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])  # fmt: skip
    model.fit((f_train - mean) / std, y_train, epochs=epochs, batch_size=len(f_train), verbose=0)
    _, accuracy = model.evaluate((f_test - mean) / std, y_test, batch_size=1000, verbose=0)
    return float(accuracy)


# ------------------------------------------------------------------------------ experiment
def train_autoencoders(data, settings: dict, seed: int) -> dict:
    """Train the dense and the convolutional autoencoder(s) on the training images (no
    labels). Returns ``{name: (autoencoder, encoder, seconds)}``."""
    (x_train, _), _ = data
    image_shape = x_train.shape[1:]
    builders = {"dense": lambda: build_dense_autoencoder(image_shape, settings["code_size"],
                                                         settings["hidden"])}  # fmt: skip
    for decoder in settings["conv_decoders"]:
        builders[f"conv ({DECODER_LAYERS[decoder]})"] = (
            lambda decoder=decoder: build_conv_autoencoder(image_shape, settings["code_size"],
                                                           decoder)  # fmt: skip
        )
    trained = {}
    for name, build in builders.items():
        ember.manual_seed(seed)
        autoencoder, encoder = build()
        autoencoder.compile(optimizer=ember.optimizers.Adam(settings["learning_rate"]), loss="mse")
        start = time.perf_counter()
        autoencoder.fit(x_train, x_train, epochs=settings["epochs"],
                        batch_size=settings["batch_size"], verbose=0)  # fmt: skip
        trained[name] = (autoencoder, encoder, time.perf_counter() - start)
    return trained


def few_label_table(features: dict, data, labels_per_class: Sequence[int], draws: int,
                    probe_epochs: int, seed: int) -> dict:  # fmt: skip
    """``{per_class: {features name: test accuracy of each draw}}``: the same draws of
    labelled training images for every kind of features."""
    (_, y_train), (_, y_test) = data
    table = {}
    for per_class in labels_per_class:
        rng = np.random.default_rng(seed)
        picks = [few_label_indices(y_train, per_class, rng) for _ in range(draws)]
        table[per_class] = {
            name: [probe_accuracy(f_train[idx], y_train[idx], f_test, y_test, probe_epochs, seed)
                   for idx in picks]
            for name, (f_train, f_test) in features.items()
        }  # fmt: skip
    return table


def run_dataset(data, settings: dict, labels_per_class: Sequence[int], draws: int,
                probe_epochs: int, seed: int) -> dict:  # fmt: skip
    """Everything measured on one data set: reconstruction MSE of each model and baseline,
    the few-label accuracies, the training times, and the reconstructions of 10 test images
    (one per class) for the figure."""
    (x_train, _), (x_test, y_test) = data
    trained = train_autoencoders(data, settings, seed)
    mean, components = pca_fit(x_train, settings["code_size"])
    reconstructions = {"PCA": pca_reconstruct(x_test, mean, components)}
    reconstructions.update({name: ae.predict(x_test, batch_size=500, verbose=0)
                            for name, (ae, _, _) in trained.items()})  # fmt: skip
    errors = {"mean image": mse(x_train.mean(axis=0), x_test)}
    errors.update({name: mse(rec, x_test) for name, rec in reconstructions.items()})
    flat = len(x_train), len(x_test)
    features = {"raw pixels": (x_train.reshape(flat[0], -1), x_test.reshape(flat[1], -1)),
                "PCA code": (pca_encode(x_train, mean, components),
                             pca_encode(x_test, mean, components))}  # fmt: skip
    for name, (_, encoder, _) in trained.items():
        features[f"{name} code"] = (encoder.predict(x_train, batch_size=500, verbose=0),
                                    encoder.predict(x_test, batch_size=500, verbose=0))  # fmt: skip
    draws_table = few_label_table(features, data, labels_per_class, draws, probe_epochs, seed)
    shown = np.array([np.flatnonzero(y_test == c)[0] for c in range(10)])
    return {
        "code_size": settings["code_size"],
        "pixels": int(np.prod(x_train.shape[1:])),
        "n_train": len(x_train),
        "n_test": len(x_test),
        "mse": errors,
        "few_labels": {per_class: {name: float(np.mean(runs)) for name, runs in row.items()}
                       for per_class, row in draws_table.items()},
        "few_labels_std": {per_class: {name: float(np.std(runs)) for name, runs in row.items()}
                           for per_class, row in draws_table.items()},
        "few_labels_draws": draws_table,
        "draws": draws,
        "seconds": {name: seconds for name, (_, _, seconds) in trained.items()},
        "examples": {"input": x_test[shown],
                     **{name: rec[shown] for name, rec in reconstructions.items()}},
    }  # fmt: skip


# ------------------------------------------------------------------------------ report
def save_grid(path: Path, examples: dict, title: str) -> Path:
    """One row per entry of ``examples`` (the inputs, then each reconstruction), the row's name
    above its first image."""
    from ember import viz

    rows = list(examples)
    # PCA's reconstructions leave [0, 1]; clipped here (only in the picture) so that they do not
    # stretch the grey scale the grid shares between all images
    images = np.clip(np.concatenate([examples[name] for name in rows]), 0.0, 1.0)
    ncols = len(examples[rows[0]])
    labels = [name if col == 0 else "" for name in rows for col in range(ncols)]
    viz.image_grid(images, labels=labels, ncols=ncols, title=title, path=path)
    return path


def report(name: str, r: dict) -> str:
    """Print the tables of one data set and return its finding as a sentence."""
    errors = r["mse"]
    print(f"\n{name}: {r['n_train']} training images (no labels used), {r['n_test']} test "
          f"images, code of {r['code_size']} numbers for {r['pixels']} pixels")  # fmt: skip
    print("  test reconstruction MSE (pixels in [0, 1]):")
    for model, value in errors.items():
        seconds = r["seconds"].get(model)
        print(f"    {model:<26}{value:.5f}" + (f"   ({seconds:.1f} s)" if seconds else ""))
    kinds = list(next(iter(r["few_labels"].values())))
    print(f"  softmax regression on few labels (test accuracy, mean ± std over {r['draws']} "
          "draws of the labelled images):")  # fmt: skip
    print("    labels/class" + "".join(f"{k:>28}" for k in kinds))
    for per_class, row in r["few_labels"].items():
        spread = r["few_labels_std"][per_class]
        cells = (f"{row[k]:.4f} ± {spread[k]:.4f}" for k in kinds)
        print(f"    {per_class:>12}" + "".join(f"{cell:>28}" for cell in cells))
    autoencoders = [m for m in errors if m not in ("mean image", "PCA")]
    best = min(autoencoders, key=errors.get)
    verdict = "beats" if errors[best] < errors["PCA"] else "does NOT beat"
    parts = [
        f"{name}: with a code of {r['code_size']} numbers, the best autoencoder ({best}) reaches "
        f"test MSE {errors[best]:.4f}, {verdict} PCA ({errors['PCA']:.4f}, "
        f"{errors['PCA'] / errors[best]:.2f}x its error) and the mean image "
        f"({errors['mean image']:.4f})"
    ]
    for per_class, row in r["few_labels"].items():
        codes = {k: v for k, v in row.items() if k.endswith("code") and k != "PCA code"}
        best_code = max(codes, key=codes.get)
        compare = "above" if codes[best_code] > row["raw pixels"] else "NOT above"
        runs = r["few_labels_draws"][per_class]
        wins = sum(c > p for c, p in zip(runs[best_code], runs["raw pixels"]))
        parts.append(
            f"with {per_class} labels per class, the best autoencoder code ({best_code}) scores "
            f"{codes[best_code]:.4f} test accuracy, {compare} raw pixels "
            f"({row['raw pixels']:.4f}; PCA code {row['PCA code']:.4f}; the code wins "
            f"{wins} of {len(runs['raw pixels'])} draws)"
        )
    return "; ".join(parts) + "."


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="digits only, briefly (CI)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plots", metavar="DIR", default=None,
                        help="save the reconstruction grids as PNG files into DIR")
    parser.add_argument("--data-dir", default=None, help="folder holding the Fashion-MNIST files")
    parser.add_argument("--download", action="store_true",
                        help="download Fashion-MNIST when it is not found locally")
    return parser.parse_args(argv)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> dict:
    """Train the autoencoders on each data set, print the tables and the finding, return the
    numbers: ``{"digits": {...}, "fashion_mnist": {...} or None, "skipped": str | None,
    "plots": [paths]}``."""
    args = parse_args(argv)
    config = QUICK if args.quick else FULL
    result = {"skipped": None, "plots": [], "fashion_mnist": None}
    findings = []
    for dataset in ("digits", "fashion_mnist"):
        settings = config[dataset]
        if settings is None:
            continue
        data = load(dataset, args.data_dir, args.download)
        if data is None:
            where = (args.data_dir if args.data_dir
                     else "Ember's cache and /usr/share/datasets/fashion-mnist")  # fmt: skip
            result["skipped"] = (
                f"Fashion-MNIST is not available (looked in {where}): its part is skipped. "
                "Install Debian's dataset-fashion-mnist, pass --data-dir, or run with --download."
            )
            print(result["skipped"])
            continue
        r = run_dataset(data, settings, config["labels_per_class"], config["draws"],
                        config["probe_epochs"], args.seed)  # fmt: skip
        name = "Fashion-MNIST" if dataset == "fashion_mnist" else "Digits"
        findings.append(report(name, r))
        if args.plots:
            path = Path(args.plots) / f"autoencoders_{dataset}.png"
            title = f"{name}: test images (top row) and their reconstructions"
            result["plots"].append(save_grid(path, r["examples"], title))
        result[dataset] = r
    print()
    for finding in findings:
        print(finding)
    return result


if __name__ == "__main__":
    main()
