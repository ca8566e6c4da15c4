"""The ``ember`` command: train and evaluate models on the bundled and standard datasets.

Examples::

    ember train --dataset digits --model mlp --epochs 20
    ember train --dataset fashion_mnist --model mlp --epochs 5 --batch-size 128
    ember evaluate digits_mlp.ember --dataset digits
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

DATASETS = ("digits", "fashion_mnist", "mnist")
MODELS = ("mlp", "linear")
# Pixel scale of each dataset: inputs are divided by it so they lie in [0, 1].
_PIXEL_MAX = {"digits": 16.0, "fashion_mnist": 255.0, "mnist": 255.0}


def load_dataset(name: str, data_dir: str | None = None):
    """((x_train, y_train), (x_test, y_test)) with flattened float32 inputs in [0, 1]."""
    from ember import datasets

    if name == "digits":
        (x_train, y_train), (x_test, y_test) = datasets.digits.load_data()
    else:
        module = getattr(datasets, name)
        (x_train, y_train), (x_test, y_test) = module.load_data(path=data_dir)
    scale = np.float32(_PIXEL_MAX[name])

    def prepare(x):
        return (x.reshape(len(x), -1).astype(np.float32) / scale).astype(np.float32)

    return (prepare(x_train), y_train.astype(np.int64)), (prepare(x_test), y_test.astype(np.int64))


def build_model(kind: str, num_inputs: int, num_classes: int):
    from ember import layers, models

    if kind == "mlp":
        hidden = [layers.Dense(256, activation="relu"), layers.Dense(128, activation="relu")]
    else:
        hidden = []
    return models.Sequential(
        [
            layers.Input(shape=(num_inputs,)),
            *hidden,
            layers.Dense(num_classes, activation="softmax"),
        ],
        name=f"{kind}",
    )


def _train(args) -> int:
    import ember

    ember.manual_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = load_dataset(args.dataset, args.data_dir)
    model = build_model(args.model, x_train.shape[1], int(y_train.max()) + 1)
    optimizer = ember.optimizers.get(args.optimizer)
    optimizer.learning_rate = args.learning_rate
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    if args.verbose:
        model.summary()
    start = time.perf_counter()
    model.fit(
        x_train,
        y_train,
        batch_size=args.batch_size,
        epochs=args.epochs,
        validation_split=args.validation_split,
        verbose=args.verbose,
    )
    elapsed = time.perf_counter() - start
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=256, verbose=0)
    output = Path(args.output or f"{args.dataset}_{args.model}.ember")
    model.save(output)
    print(f"trained in {elapsed:.1f} s; test loss: {loss:.4f}; saved to {output}")
    print(f"test accuracy: {accuracy:.4f}")
    return 0


def _evaluate(args) -> int:
    import ember

    model = ember.models.load_model(args.model_path)
    _, (x_test, y_test) = load_dataset(args.dataset, args.data_dir)
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=256, verbose=0)
    print(f"test loss: {loss:.4f}")
    print(f"test accuracy: {accuracy:.4f}")
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ember", description="Train and evaluate Ember models from the command line."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser(
        "train",
        help="train a model and save it",
        description="Train a model on a dataset, report its test accuracy and save it to one file.",
    )
    train.add_argument(
        "--dataset",
        choices=DATASETS,
        default="digits",
        help="digits: bundled 8x8 UCI digits (no network); fashion_mnist / mnist: "
        "IDX files from --data-dir, the cache or a download (default: digits)",
    )
    train.add_argument(
        "--model",
        choices=MODELS,
        default="mlp",
        help="mlp: two ReLU hidden layers (256, 128); linear: softmax regression (default: mlp)",
    )
    train.add_argument(
        "--epochs",
        type=_positive_int,
        default=20,
        help="passes over the training data (default: 20)",
    )
    train.add_argument(
        "--batch-size",
        type=_positive_int,
        default=32,
        help="samples per gradient step (default: 32)",
    )
    train.add_argument("--optimizer", default="adam", help="optimizer name (default: adam)")
    train.add_argument(
        "--learning-rate", type=float, default=1e-3, help="learning rate (default: 0.001)"
    )
    train.add_argument(
        "--validation-split",
        type=float,
        default=0.1,
        help="fraction of training data held out for validation, taken from the end (default: 0.1)",
    )
    train.add_argument(
        "--seed", type=int, default=0, help="random seed for weights and shuffling (default: 0)"
    )
    train.add_argument(
        "--output", default=None, help="where to save the model (default: <dataset>_<model>.ember)"
    )
    train.add_argument(
        "--data-dir",
        default=None,
        help="directory holding the dataset's IDX files (fashion_mnist/mnist)",
    )
    train.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=1,
        help="0 silent, 1 progress bar, 2 one line per epoch (default: 1)",
    )
    train.set_defaults(run=_train)

    evaluate = sub.add_parser(
        "evaluate",
        help="evaluate a saved model",
        description="Reload a saved model and report its test accuracy.",
    )
    evaluate.add_argument("model_path", help="a file written by 'ember train' or model.save()")
    evaluate.add_argument(
        "--dataset",
        choices=DATASETS,
        default="digits",
        help="dataset whose test split is used (default: digits)",
    )
    evaluate.add_argument(
        "--data-dir",
        default=None,
        help="directory holding the dataset's IDX files (fashion_mnist/mnist)",
    )
    evaluate.set_defaults(run=_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, OSError, TypeError) as exc:
        print(f"ember {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
