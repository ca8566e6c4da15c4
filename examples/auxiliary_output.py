"""Multi-level supervision: an auxiliary classifier on an inner layer of a deep sigmoid network.

In a deep stack of sigmoid layers the gradient of the loss shrinks at every layer on its way
down (the sigmoid's slope is at most 1/4), so the first layers of a plain network barely learn
(see ``vanishing_gradients.py``). GoogLeNet's answer was *deep supervision*: attach a small
softmax classifier to an inner layer and add its loss, with a small weight, to the main one.
The auxiliary loss reaches the first layers through a few layers instead of all of them, so
they get a usable gradient from the start; the auxiliary head is not needed at test time.

The script builds a functional ``ember.Model`` with two named outputs: ``main`` (a softmax
after 10 sigmoid Dense layers of 64 units, Glorot-initialized) and ``aux`` (a softmax on layer
5, the middle), compiled with ``loss={"main": ..., "aux": ...}`` and
``loss_weights={"main": 1.0, "aux": 0.3}``, and the same network without the ``aux`` output.
Both start from bit-identical weights (same seed; the auxiliary head is created last) and are
trained with the same optimizer (Adam 3e-3), batches and epochs. It prints

* the mechanism: the norm of the gradient reaching each hidden kernel at initialization, of the
  loss each network minimizes (``main`` alone; ``main + 0.3 aux``), on the whole training set.
  Layers above the auxiliary head get the same gradient in both; below it the auxiliary term
  dominates by orders of magnitude;
* the outcome: the main output's test accuracy of both networks after training (and the
  auxiliary head's own).

Adam rescales every weight's step by its gradient's running RMS, which would undo a uniformly
small gradient, but not below its ε = 1e-7: the plain network's first-layer gradient has an RMS
per weight of about 1e-8 (norm ~1e-6 over 64 x 64 weights). With SGD and momentum
(``--optimizer sgd``, lr 0.1) neither network gets off chance on the digits within 30 epochs
(the 10-layer sigmoid stack is too hard for it either way), and with ``--activation tanh``
there is no vanishing gradient to fix (both reach ~0.97 on the digits with SGD at lr 0.01):
the auxiliary output helps where the gradient vanishes.

Run from the repository root (``--quick`` is the short variant the tests run, on the bundled
8x8 digits; the full run uses Fashion-MNIST)::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python examples/auxiliary_output.py
    OPENBLAS_NUM_THREADS=1 .venv/bin/python examples/auxiliary_output.py --quick
    OPENBLAS_NUM_THREADS=1 .venv/bin/python examples/auxiliary_output.py --plots plots/

``--plots DIR`` saves ``aux_gradients.png`` (the gradient norm of every hidden kernel at
initialization, with and without the auxiliary loss) and ``aux_accuracy.png`` (the main
output's test accuracy after every epoch).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np

import ember
from ember import layers

LOSS = "sparse_categorical_crossentropy"
LOSS_WEIGHTS = {"main": 1.0, "aux": 0.3}

FULL = {"dataset": "fashion_mnist", "depth": 10, "width": 64, "aux_layer": 5, "epochs": 10,
        "batch_size": 128, "activation": "sigmoid", "optimizer": "adam", "learning_rate": 3e-3,
        "momentum": 0.9}  # fmt: skip
QUICK = {"dataset": "digits", "depth": 10, "width": 64, "aux_layer": 5, "epochs": 30,
         "batch_size": 32, "activation": "sigmoid", "optimizer": "adam", "learning_rate": 3e-3,
         "momentum": 0.9}  # fmt: skip


def load(dataset: str):
    """Flattened float32 images in [0, 1] and labels: ``(x_train, y_train), (x_test, y_test)``."""
    if dataset == "digits":
        (x_train, y_train), (x_test, y_test) = ember.datasets.digits.load_data()
        scale = np.float32(16.0)
    elif dataset == "fashion_mnist":
        (x_train, y_train), (x_test, y_test) = ember.datasets.fashion_mnist.load_data()
        scale = np.float32(255.0)
    else:
        raise ValueError(f"load: dataset must be 'digits' or 'fashion_mnist', got {dataset!r}")

    def flat(x):
        return x.reshape(len(x), -1).astype(np.float32) / scale

    return (flat(x_train), y_train.astype(np.int64)), (flat(x_test), y_test.astype(np.int64))


def build(inputs: int, depth: int, width: int, aux_layer: int | None, seed: int,
          activation: str = "sigmoid") -> ember.Model:
    """``depth`` Dense layers of ``width`` units (sigmoid unless ``activation`` says otherwise)
    and a softmax output named ``main``; with ``aux_layer``
    (1-based) also a softmax output named ``aux`` on that layer. The auxiliary head is created
    after all the others, so with the same seed both variants start from the same weights.

    Example:
        >>> model = build(8, depth=4, width=5, aux_layer=2, seed=0)
        >>> model.output_names, [layer.name for layer in hidden_layers(model)]
        (['main', 'aux'], ['dense_1', 'dense_2', 'dense_3', 'dense_4'])
    """
    if aux_layer is not None and not 1 <= aux_layer < depth:
        raise ValueError(f"build: aux_layer must be between 1 and {depth - 1} (depth - 1), "
                         f"got {aux_layer}")  # fmt: skip
    ember.manual_seed(seed)
    x = inputs_ = layers.Input(shape=(inputs,))
    hidden = []
    for i in range(depth):
        x = layers.Dense(width, activation=activation, name=f"dense_{i + 1}")(x)
        hidden.append(x)
    main = layers.Dense(10, activation="softmax", name="main")(x)
    if aux_layer is None:
        return ember.Model(inputs_, main, name="plain")
    aux = layers.Dense(10, activation="softmax", name="aux")(hidden[aux_layer - 1])
    return ember.Model(inputs_, [main, aux], name="with_aux")


def hidden_layers(model: ember.Model) -> list:
    """The hidden Dense layers, input side first."""
    return [layer for layer in model.layers if layer.name.startswith("dense_")]


def compile_model(model: ember.Model, optimizer: str = "adam", learning_rate: float = 3e-3,
                  momentum: float = 0.9) -> None:
    """Adam (or SGD with momentum) on the cross-entropy; with an ``aux`` output, on the weighted
    sum of both outputs' cross-entropies (:data:`LOSS_WEIGHTS`).

    Example:
        >>> model = build(4, depth=3, width=5, aux_layer=1, seed=0)
        >>> compile_model(model)
        >>> sorted(model.evaluate(np.ones((2, 4), np.float32), {"main": np.arange(2),
        ...                       "aux": np.arange(2)}, verbose=0, return_dict=True))
        ['aux_accuracy', 'aux_loss', 'loss', 'main_accuracy', 'main_loss']
    """
    if optimizer == "adam":
        optimizer = ember.optimizers.Adam(learning_rate=learning_rate)
    else:
        optimizer = ember.optimizers.SGD(learning_rate=learning_rate, momentum=momentum)
    if "aux" in model.output_names:
        model.compile(optimizer=optimizer, loss={"main": LOSS, "aux": LOSS},
                      loss_weights=LOSS_WEIGHTS, metrics={"main": ["accuracy"],
                                                          "aux": ["accuracy"]})  # fmt: skip
    else:
        model.compile(optimizer=optimizer, loss=LOSS, metrics=["accuracy"])


def targets(model: ember.Model, y: np.ndarray):
    """``y`` for every output of ``model``: a dict keyed by output name when there are two."""
    return {name: y for name in model.output_names} if len(model.output_names) > 1 else y


def kernel_gradient_norms(model: ember.Model, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Norm of the gradient of the compiled loss (weighted sum for two outputs) with respect to
    every hidden kernel, input side first, in training mode on ``(x, y)``.

    Example:
        >>> model = build(3, depth=2, width=4, aux_layer=None, seed=0)
        >>> compile_model(model)
        >>> x, y = np.ones((5, 3), np.float32), np.arange(5)
        >>> kernel_gradient_norms(model, x, y).shape
        (2,)
    """
    y_pred = model(x, training=True)
    loss = model.compute_loss(x, targets(model, y), y_pred)
    grads = ember.grad(loss, [layer.kernel for layer in hidden_layers(model)])
    return np.array([np.linalg.norm(g) for g in grads])


def train(model: ember.Model, data, settings: dict) -> dict:
    """Fit with the test set as validation data; the main output's test accuracy per epoch and
    at the end (and the auxiliary head's at the end)."""
    (x, y), (x_test, y_test) = data
    history = model.fit(x, targets(model, y), epochs=settings["epochs"],
                        batch_size=settings["batch_size"],
                        validation_data=(x_test, targets(model, y_test)), verbose=0).history
    scores = model.evaluate(x_test, targets(model, y_test), batch_size=1000, verbose=0,
                            return_dict=True)  # fmt: skip
    two = "aux" in model.output_names
    return {
        "accuracy": float(scores["main_accuracy" if two else "accuracy"]),
        "aux_accuracy": float(scores["aux_accuracy"]) if two else None,
        "curve": [float(a) for a in history["val_main_accuracy" if two else "val_accuracy"]],
    }  # fmt: skip


def initial_weights(model: ember.Model) -> dict:
    """``{layer name: [arrays]}`` of every layer with weights."""
    return {layer.name: layer.get_weights() for layer in model.layers if layer.weights}


def same_start(plain: dict, with_aux: dict) -> bool:
    """Whether the layers both networks have (all but ``aux``) hold bit-identical weights.

    Example:
        >>> a = initial_weights(build(5, depth=3, width=4, aux_layer=None, seed=0))
        >>> b = initial_weights(build(5, depth=3, width=4, aux_layer=1, seed=0))
        >>> same_start(a, b), sorted(set(b) - set(a))
        (True, ['aux'])
    """
    return set(plain) <= set(with_aux) and all(
        len(plain[name]) == len(with_aux[name])
        and all(np.array_equal(p, q) for p, q in zip(plain[name], with_aux[name]))
        for name in plain
    )


def run(settings: dict, seed: int = 0) -> dict:
    """Both networks: gradient norms at initialization, then training. Returns ``{"plain":
    ..., "aux": ..., "same_start": bool}``, each with ``grad_norms`` (per hidden layer, of the
    loss that network minimizes), ``accuracy`` (main output), ``aux_accuracy``, ``curve`` (main
    output's test accuracy per epoch) and ``seconds``."""
    data = load(settings["dataset"])
    (x, y), _ = data
    result: dict = {}
    start_weights = {}
    for kind, aux_layer in (("plain", None), ("aux", settings["aux_layer"])):
        model = build(x.shape[1], settings["depth"], settings["width"], aux_layer, seed,
                      settings["activation"])
        compile_model(model, settings["optimizer"], settings["learning_rate"],
                      settings["momentum"])
        start_weights[kind] = initial_weights(model)
        start = time.perf_counter()
        norms = kernel_gradient_norms(model, x, y)
        ember.manual_seed(seed)  # the same batch order for both
        result[kind] = {"grad_norms": norms, **train(model, data, settings),
                        "seconds": time.perf_counter() - start}  # fmt: skip
    result["same_start"] = same_start(start_weights["plain"], start_weights["aux"])
    return result


def plot(result: dict, settings: dict, directory: str) -> list:
    """Save the gradient-norm and accuracy figures; the paths."""
    from matplotlib.figure import Figure

    from ember import viz

    names = {"plain": "without aux", "aux": f"with aux on layer {settings['aux_layer']}"}
    fig = Figure(figsize=(5, 3.5))
    ax = fig.add_subplot()
    depth = np.arange(1, settings["depth"] + 1)
    for kind, name in names.items():
        ax.semilogy(depth, result[kind]["grad_norms"], "o-", label=name)
    ax.set_xlabel("layer (1 = input side)")
    ax.set_ylabel("kernel gradient norm at init")
    ax.legend()
    paths = [viz.save_figure(fig, f"{directory}/aux_gradients.png")]
    fig = Figure(figsize=(5, 3.5))
    ax = fig.add_subplot()
    for kind, name in names.items():
        curve = result[kind]["curve"]
        ax.plot(np.arange(1, len(curve) + 1), curve, "o-", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("main output, test accuracy")
    ax.legend()
    paths.append(viz.save_figure(fig, f"{directory}/aux_accuracy.png"))
    return paths


def describe_optimizer(settings: dict) -> str:
    """The optimizer in words, for the printed finding.

    Example:
        >>> describe_optimizer({"optimizer": "sgd", "learning_rate": 0.1, "momentum": 0.9})
        'SGD (lr 0.1, momentum 0.9)'
    """
    if settings["optimizer"] == "adam":
        return f"Adam (lr {settings['learning_rate']:g})"
    return f"SGD (lr {settings['learning_rate']:g}, momentum {settings['momentum']:g})"


def report(result: dict, settings: dict) -> None:
    """Print the per-layer norms and the finding."""
    plain, aux = result["plain"], result["aux"]
    for kind in ("plain", "aux"):
        norms = " ".join(f"{v:.1e}" for v in result[kind]["grad_norms"])
        print(f"  {kind:>5}: kernel gradient norms at init, layer 1..{settings['depth']}: {norms}")
    print(f"  the shared layers start from bit-identical weights: {result['same_start']}")
    first_ratio = aux["grad_norms"][0] / plain["grad_norms"][0]
    dataset = "Fashion-MNIST" if settings["dataset"] == "fashion_mnist" else "digits"
    gain = aux["accuracy"] - plain["accuracy"]
    verdict = ("the auxiliary output helps the main one" if gain > 0 else
               "the auxiliary output does NOT help the main one here")  # fmt: skip
    print(
        f"Multi-level supervision on {dataset} ({settings['depth']} {settings['activation']} "
        f"layers of {settings['width']}, aux softmax on layer {settings['aux_layer']}, loss "
        f"weights 1.0 and 0.3): at initialization the gradient reaching layer 1 has norm "
        f"{aux['grad_norms'][0]:.2e} with the auxiliary loss against {plain['grad_norms'][0]:.2e} "
        f"without ({first_ratio:.3g}x); after {settings['epochs']} epochs of "
        f"{describe_optimizer(settings)} the main output's test accuracy is "
        f"{aux['accuracy']:.4f} with it against {plain['accuracy']:.4f} without ({gain:+.4f}: "
        f"{verdict}; the auxiliary head itself scores {aux['aux_accuracy']:.4f})."
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the short variant (CI): digits")
    parser.add_argument("--dataset", choices=("digits", "fashion_mnist"), default=None,
                        help="default fashion_mnist (digits with --quick)")
    for name in ("depth", "aux_layer", "epochs", "learning_rate"):
        parser.add_argument(f"--{name.replace('_', '-')}", default=None,
                            type=float if name == "learning_rate" else int,
                            help=f"default {FULL[name]} ({QUICK[name]} with --quick)")
    parser.add_argument("--activation", choices=("sigmoid", "tanh"), default=None,
                        help="of the hidden layers (default sigmoid)")
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default=None,
                        help="default adam; sgd is SGD with momentum 0.9")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plots", default=None, help="save the figures as PNG into this folder")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict:
    """Parse the command line, train both networks, print the finding and return the
    numbers."""
    args = parse_args(argv)
    settings = dict(QUICK if args.quick else FULL)
    settings.update({k: v for k, v in vars(args).items() if k in settings and v is not None})
    result = run(settings, seed=args.seed)
    result["settings"] = settings
    report(result, settings)
    if args.plots:
        result["plots"] = [str(p) for p in plot(result, settings, args.plots)]
    return result


if __name__ == "__main__":
    main()
