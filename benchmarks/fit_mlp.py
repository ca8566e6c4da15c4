"""Train the benchmark MLP on Fashion-MNIST through ``fit`` for a few epochs, and nothing else.

For timing the whole process from outside, e.g. two versions of Ember in turn (the second from a
``git worktree`` of an older commit put first on ``PYTHONPATH``)::

    hyperfine -w 1 -r 5 '.venv/bin/python benchmarks/fit_mlp.py' \\
        'PYTHONPATH=/tmp/ember_base .venv/bin/python benchmarks/fit_mlp.py'

The process includes importing Ember and reading the data, which both versions share.
"""

from __future__ import annotations

import argparse

import ember
from ember import layers
from ember.datasets import fashion_mnist


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    (x, y), _ = fashion_mnist.load_data()
    x = x.reshape(-1, 784).astype("float32") / 255.0
    ember.manual_seed(0)
    model = ember.models.Sequential(
        [
            layers.Input(shape=(784,)),
            layers.Dense(256, activation="relu"),
            layers.Dense(128, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        ember.optimizers.Adam(1e-3, epsilon=1e-8),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(x, y, batch_size=128, epochs=args.epochs, verbose=0)


if __name__ == "__main__":
    main()
