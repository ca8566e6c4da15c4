"""The ``ember`` command: train and evaluate models on the bundled and standard datasets.

Examples::

    ember train --dataset digits --model mlp --epochs 20
    ember train --dataset fashion_mnist --model convnet --epochs 12 --batch-size 128
    ember train --dataset fashion_mnist --model convnet_bn --epochs 12 --schedule cosine
    ember evaluate digits_mlp.ember --dataset digits
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

DATASETS = ("digits", "fashion_mnist", "mnist")
MODELS = ("mlp", "linear", "convnet", "convnet_bn")
SCHEDULES = ("constant", "cosine", "linear", "exponential")
# Pixel scale of each dataset: inputs are divided by it so they lie in [0, 1].
_PIXEL_MAX = {"digits": 16.0, "fashion_mnist": 255.0, "mnist": 255.0}


def load_dataset(name: str, data_dir: str | None = None, images: bool = False):
    """((x_train, y_train), (x_test, y_test)) with float32 inputs in [0, 1]: flattened, or NHWC
    images ``(N, H, W, 1)`` with ``images=True`` (for the convnets)."""
    from ember import datasets

    if name == "digits":
        (x_train, y_train), (x_test, y_test) = datasets.digits.load_data()
    else:
        module = getattr(datasets, name)
        (x_train, y_train), (x_test, y_test) = module.load_data(path=data_dir)
    scale = np.float32(_PIXEL_MAX[name])

    def prepare(x):
        shape = (len(x), *x.shape[1:3], 1) if images else (len(x), -1)
        return (x.reshape(shape).astype(np.float32) / scale).astype(np.float32)

    return (prepare(x_train), y_train.astype(np.int64)), (prepare(x_test), y_test.astype(np.int64))


def build_model(kind: str, input_shape: tuple, num_classes: int, dataset: str = "digits"):
    """The architecture ``kind`` from :mod:`ember.models.zoo` (``convnet_bn`` with the
    dataset's augmentation)."""
    from ember.models import zoo

    if kind == "convnet_bn":
        return zoo.convnet_bn(input_shape, num_classes, **zoo.augmentation_for(dataset))
    return zoo.build(kind, input_shape, num_classes)


def _learning_rate(args, steps_per_epoch: int):
    from ember.optimizers import schedules

    total = steps_per_epoch * args.epochs
    if args.schedule == "cosine":
        return schedules.CosineDecay(args.learning_rate, total)
    if args.schedule == "linear":
        return schedules.LinearDecay(args.learning_rate, total, args.learning_rate / 100)
    if args.schedule == "exponential":
        return schedules.ExponentialDecay(args.learning_rate, steps_per_epoch, 0.9)
    return args.learning_rate


def _train(args) -> int:
    import ember

    if args.report is not None and not _report_ready(args.report):
        return 2  # before any training: the report could not be written
    ember.manual_seed(args.seed)
    images = args.model.startswith("convnet")
    (x_train, y_train), (x_test, y_test) = load_dataset(args.dataset, args.data_dir, images)
    model = build_model(args.model, x_train.shape[1:], int(y_train.max()) + 1, args.dataset)
    n_train = len(x_train) - int(len(x_train) * args.validation_split)
    steps = -(-n_train // args.batch_size)
    optimizer = ember.optimizers.get(args.optimizer)
    optimizer.learning_rate = _learning_rate(args, steps)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    if args.verbose:
        model.summary()
    callbacks = _report_callbacks(steps * args.epochs) if args.report is not None else []
    start = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        batch_size=args.batch_size,
        epochs=args.epochs,
        validation_split=args.validation_split,
        verbose=args.verbose,
        callbacks=callbacks,
    )
    elapsed = time.perf_counter() - start
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=256, verbose=0)
    output = Path(args.output or f"{args.dataset}_{args.model}.ember")
    model.save(output)
    print(f"trained in {elapsed:.1f} s; test loss: {loss:.4f}; saved to {output}")
    if args.report is not None:
        data = (x_train, y_train, x_test, y_test)
        print(f"report: {_write_report(args, model, history, callbacks, data, elapsed)}")
    print(f"test accuracy: {accuracy:.4f}")
    return 0


# ------------------------------------------------------------------------------ --report DIR
# A step recorded by GradientHealth costs about 1.7x a plain one for the digits MLP and 2.7x for
# the convnet (measured on 2 cores): recording one batch in 20 or more (at most ~100 records in a
# run) keeps the overhead near 4 % (MLP) and 9 % (convnet) at worst; each report states its own.
_HEALTH_EVERY, _HEALTH_RECORDS = 20, 100
_IMAGE = {"digits": (8, 8), "fashion_mnist": (28, 28), "mnist": (28, 28)}  # of a flat sample


def _report_ready(directory: str) -> bool:
    """Whether a report can be written into ``directory`` (else print why): matplotlib is
    installed and the path is not a file."""
    from ember.report import require_matplotlib

    try:
        require_matplotlib("ember train --report")
    except ImportError as err:
        print(f"ember train: error: {err}", file=sys.stderr)
        return False
    if Path(directory).exists() and not Path(directory).is_dir():
        print(
            f"ember train: error: --report: {directory} is a file, expected a folder",
            file=sys.stderr,
        )
        return False
    return True


def _report_callbacks(total_steps: int) -> list:
    """[GradientHealth, StepTimer] for a run of ``total_steps`` training batches."""
    from ember.diagnostics import GradientHealth
    from ember.report import StepTimer

    every = max(_HEALTH_EVERY, -(-total_steps // _HEALTH_RECORDS))
    return [GradientHealth(every=every), StepTimer()]


def _command_line(args) -> str:
    """The command as typed when this process is that command (the console script or
    ``python -m ember.cli``), else an equivalent one with every option spelled out."""
    import contextlib
    import io
    import shlex

    typed = sys.argv[1:]
    if typed[:1] == ["train"]:
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                if vars(make_parser().parse_args(typed)) == vars(args):
                    return shlex.join(["ember", *typed])
        except SystemExit:  # sys.argv is another program's (a test runner's)
            pass
    words = ["ember", "train"]
    for dest, value in vars(args).items():
        if dest not in ("command", "run") and value is not None:
            words += ["--" + dest.replace("_", "-"), str(value)]
    return shlex.join(words)


def _write_report(args, model, history, callbacks, data, elapsed: float) -> Path:
    """Write the report of this run into ``args.report``; the path of its page."""
    from ember.report import write_report

    health, timer = callbacks
    x_train, y_train, x_test, y_test = data
    n_train = len(x_train) - int(len(x_train) * args.validation_split)
    overhead = timer.overhead(health.steps)
    config = {
        "command": _command_line(args),
        "dataset": args.dataset,
        "model": args.model,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "optimizer": args.optimizer,
        "learning_rate": args.learning_rate,
        "schedule": args.schedule,
        "validation_split": args.validation_split,
        "seed": args.seed,
        "samples": {"training": n_train, "validation": len(x_train) - n_train, "test": len(x_test)},
        "image_shape": tuple(x_train.shape[1:]) if x_train.ndim == 4 else _IMAGE[args.dataset],
        "training_seconds": round(elapsed, 2),
        "gradient_health_recording": {"every": health.every, **overhead},
        "saved_model": args.output or f"{args.dataset}_{args.model}.ember",
    }
    names = None
    if args.dataset == "fashion_mnist":
        from ember.datasets import fashion_mnist

        names = list(fashion_mnist.CLASS_NAMES)
    return write_report(
        args.report,
        model=model,
        history=history,
        config=config,
        x_test=x_test,
        y_test=y_test,
        health=health,
        class_names=names,
        x_sample=x_train[:256],
        y_sample=y_train[:256],
    )


def _evaluate(args) -> int:
    import ember

    model = ember.models.load_model(args.model_path)
    images = model._build_shape is not None and len(model._build_shape) == 4  # a convnet
    _, (x_test, y_test) = load_dataset(args.dataset, args.data_dir, images)
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
        help="mlp: two ReLU hidden layers (256, 128); linear: softmax regression; convnet: the "
        "Keras simple convnet (Conv32-Pool-Conv64-Pool-Dropout-Dense); convnet_bn: two "
        "conv-BN-ReLU blocks of 32 and 64 filters and a Dense(128) head, with left-right flips "
        "(fashion_mnist) or shifts (digits, mnist) in training (default: mlp)",
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
        "--schedule",
        choices=SCHEDULES,
        default="constant",
        help="learning-rate schedule over the whole run: constant, cosine (CosineDecay to 0), "
        "linear (LinearDecay to 1%% of the rate), exponential (x0.9 per epoch) "
        "(default: constant)",
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
    train.add_argument(
        "--report",
        metavar="DIR",
        default=None,
        help="also write a report into DIR: training curves, confusion matrix, gradient health "
        "(recorded every 20 batches or more: a few %% of the training time) and DIR/index.html "
        "with the configuration and figures; needs matplotlib (pip install 'ember[viz]')",
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

    playground = sub.add_parser(
        "playground",
        help="train small nets live in the browser",
        description="Start the playground: a local web page (127.0.0.1) that trains Ember models "
        "live; needs aiohttp (pip install 'ember[playground]').",
    )
    playground.add_argument("--port", type=int, default=0, help="port to listen on (0: a free one)")
    playground.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    playground.set_defaults(run=_playground)
    return parser


def _playground(args: argparse.Namespace) -> int:
    from ember import playground  # imported on demand: aiohttp is an optional extra

    return playground.main(
        ["--port", str(args.port), *(["--no-browser"] if args.no_browser else [])]
    )


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, OSError, TypeError) as exc:
        print(f"ember {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
