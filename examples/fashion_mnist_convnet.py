"""Convolutional networks on Fashion-MNIST (or MNIST, or the bundled digits), end to end.

Two recipes, both seeded (``--seed``, default 0):

* ``simple``: the Keras "simple MNIST convnet" (Conv32-Pool-Conv64-Pool-Dropout-Dense,
  34,826 parameters), Adam 3e-3 with cosine decay, batch 128, 30 epochs (the Keras example's
  constant 1e-3 for 12 epochs reached 0.9015, and 1e-3 with cosine decay for 20 epochs 0.9023:
  with Dropout(0.5) this small net underfits, so it needs more and larger steps);
* ``strong``: two conv-BN-ReLU blocks per width (32, 64 filters), a Dense(128) ReLU head,
  random left-right flips (clothes; digits get random shifts instead), Adam 3e-3 with cosine
  decay, batch 128, 12 epochs (with shifts of up to 10 % as well it underfit: 0.9230).

Run from the repository root::

    .venv/bin/python examples/fashion_mnist_convnet.py --recipe simple
    .venv/bin/python examples/fashion_mnist_convnet.py --recipe strong
    .venv/bin/python examples/fashion_mnist_convnet.py --dataset digits --recipe simple
    .venv/bin/python examples/fashion_mnist_convnet.py --dataset mnist --data-dir ~/mnist

Fashion-MNIST is found in ``--data-dir``, Ember's cache or ``/usr/share/datasets/fashion-mnist``
(Debian's ``dataset-fashion-mnist``), else downloaded. The results measured on a 2-core CPU are
in the README. The course's > 99 % on MNIST needs the MNIST files, which the machine these
numbers come from cannot obtain: the same script runs on them unchanged.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import ember
from ember.models import zoo

RECIPES = {
    # dataset-independent settings; epochs can be overridden with --epochs
    "simple": {"model": "convnet", "learning_rate": 3e-3, "schedule": "cosine", "epochs": 30},
    "strong": {"model": "convnet_bn", "learning_rate": 3e-3, "schedule": "cosine", "epochs": 12},
}
PIXEL_MAX = {"digits": 16.0, "fashion_mnist": 255.0, "mnist": 255.0}


def load(dataset: str, data_dir: str | None):
    """NHWC float32 images in [0, 1] and integer labels."""
    module = getattr(ember.datasets, dataset)
    if dataset == "digits":
        (x_train, y_train), (x_test, y_test) = module.load_data()
    else:
        (x_train, y_train), (x_test, y_test) = module.load_data(path=data_dir)
    scale = np.float32(PIXEL_MAX[dataset])

    def images(x):
        return x.reshape(len(x), x.shape[1], x.shape[2], 1).astype(np.float32) / scale

    return (images(x_train), y_train), (images(x_test), y_test)


def main(
    dataset: str = "fashion_mnist",
    recipe: str = "simple",
    epochs: int | None = None,
    batch_size: int = 128,
    seed: int = 0,
    data_dir: str | None = None,
    verbose: int = 1,
) -> dict:
    """Train one recipe and return its test accuracy, loss and training time."""
    settings = RECIPES[recipe]
    epochs = settings["epochs"] if epochs is None else epochs
    (x_train, y_train), (x_test, y_test) = load(dataset, data_dir)
    ember.manual_seed(seed)
    if settings["model"] == "convnet_bn":
        model = zoo.convnet_bn(x_train.shape[1:], 10, **zoo.augmentation_for(dataset))
    else:
        model = zoo.simple_convnet(x_train.shape[1:], 10)
    learning_rate = settings["learning_rate"]
    if settings["schedule"] == "cosine":
        steps = -(-len(x_train) // batch_size) * epochs
        learning_rate = ember.optimizers.schedules.CosineDecay(learning_rate, steps)
    model.compile(
        optimizer=ember.optimizers.Adam(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    if verbose:
        model.summary()
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=verbose)
    seconds = time.perf_counter() - start
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=500, verbose=0)
    return {"accuracy": accuracy, "loss": loss, "seconds": seconds, "epochs": epochs}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=tuple(PIXEL_MAX), default="fashion_mnist")
    parser.add_argument("--recipe", choices=tuple(RECIPES), default="simple")
    parser.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None, help="directory with the IDX files")
    parser.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))
    args = parser.parse_args()
    result = main(
        args.dataset, args.recipe, args.epochs, args.batch_size, args.seed, args.data_dir,
        args.verbose,
    )  # fmt: skip
    print(
        f"{args.recipe} convnet on {args.dataset}, {result['epochs']} epochs, seed {args.seed}: "
        f"trained in {result['seconds']:.0f} s; test loss {result['loss']:.4f}"
    )
    print(f"test accuracy: {result['accuracy']:.4f}")
