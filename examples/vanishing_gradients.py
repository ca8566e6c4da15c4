"""Vanishing gradients: per-layer gradient norms of a 10-layer network at initialization.

Backpropagation multiplies the gradient, layer by layer, by the weights and by the activation's
derivative. The sigmoid's derivative is at most 1/4, so in a deep sigmoid network (Glorot init)
the gradient reaching the first layers is orders of magnitude smaller than at the last one: the
first layers barely learn. ReLU (derivative 0 or 1) with He initialization (variance 2/fan_in,
which keeps the signal's scale through ReLUs) keeps the per-layer norms within a small factor,
and so does batch normalization, which rescales every layer's pre-activations to unit variance
whatever the weights' scale.

The script builds the three networks (10 Dense layers of 64 units, then a softmax output), runs
one batch of 256 digits (64 pixels, so every hidden kernel is 64×64 and the norms compare
like with like) forward with ``training=True``, backpropagates the cross-entropy
and reports the Frobenius norm of the gradient of each Dense kernel (layer 1 = input side).

Run: ``python examples/vanishing_gradients.py``
"""

from __future__ import annotations

import numpy as np

import ember
from ember import layers
from ember.datasets import digits

DEPTH, WIDTH = 10, 64


def build(kind: str) -> ember.models.Sequential:
    stack: list = [layers.Input(shape=(WIDTH,))]
    for _ in range(DEPTH):
        if kind == "sigmoid":
            stack.append(layers.Dense(WIDTH, activation="sigmoid"))
        elif kind == "relu_he":
            stack.append(layers.Dense(WIDTH, activation="relu", kernel_initializer="he_normal"))
        elif kind == "sigmoid_bn":
            stack += [layers.Dense(WIDTH), layers.BatchNormalization(),
                      layers.Activation("sigmoid")]
        elif kind == "relu_bn":
            stack += [layers.Dense(WIDTH), layers.BatchNormalization(), layers.Activation("relu")]
        else:
            raise ValueError(f"unknown network kind {kind!r}")
    stack.append(layers.Dense(10, activation="softmax"))
    return ember.models.Sequential(stack)


def kernel_gradient_norms(kind: str, x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Gradient norm of each hidden Dense kernel (input side first) on one batch."""
    ember.manual_seed(seed)
    model = build(kind)
    loss_fn = ember.losses.SparseCategoricalCrossentropy()
    loss = loss_fn(y, model(x, training=True))
    dense = [layer for layer in model.layers if isinstance(layer, layers.Dense)][:DEPTH]
    grads = ember.grad(loss, [layer.kernel for layer in dense])
    return np.array([np.linalg.norm(g) for g in grads])


def main(seed: int = 0, batch: int = 256) -> dict:
    (x, y), _ = digits.load_data()
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(x), batch, replace=False)
    x, y = x[pick].reshape(batch, -1).astype(np.float32) / 16.0, y[pick]
    results = {}
    for kind in ("sigmoid", "relu_he", "sigmoid_bn", "relu_bn"):
        norms = kernel_gradient_norms(kind, x, y, seed)
        results[kind] = {"norms": norms, "first_over_last": float(norms[0] / norms[-1])}
    return results


if __name__ == "__main__":
    r = main()
    labels = {
        "sigmoid": "sigmoid (Glorot)",
        "relu_he": "ReLU + He",
        "sigmoid_bn": "sigmoid + BatchNorm",
        "relu_bn": "ReLU + BatchNorm (Glorot)",
    }
    for kind, label in labels.items():
        norms = " ".join(f"{v:.1e}" for v in r[kind]["norms"])
        print(f"  {label:27s} layer 1..{DEPTH}: {norms}")
    print(
        "Vanishing gradients: first/last layer gradient-norm ratio at initialization — "
        + ", ".join(f"{label} {r[k]['first_over_last']:.2g}" for k, label in labels.items())
        + "."
    )
