"""The perceptron learns AND and OR but never XOR.

Rosenblatt's perceptron: ``ŷ = step(w·x + b)`` with the binary step activation, trained by the
perceptron learning rule ``w ← w + η (y − ŷ) x``, ``b ← b + η (y − ŷ)``, one sample at a time.
The step's derivative is zero everywhere, so backpropagation gets a zero gradient and cannot
train it (the script checks that with ``ember.grad``); the rule needs no gradient. By the
perceptron convergence theorem it finds a separating line in finitely many updates when one
exists (AND, OR); for XOR none exists, so every epoch makes at least one mistake, forever.

Run: ``python examples/perceptron.py``
"""

from __future__ import annotations

import numpy as np

import ember
from ember.activations import binary_step

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
TARGETS = {
    "AND": np.array([0, 0, 0, 1], dtype=np.float32),
    "OR": np.array([0, 1, 1, 1], dtype=np.float32),
    "XOR": np.array([0, 1, 1, 0], dtype=np.float32),
}


def train_perceptron(y: np.ndarray, epochs: int = 100, learning_rate: float = 0.1) -> dict:
    """Run the perceptron rule from zero weights; returns the mistakes made in each epoch and
    the epoch (1-based) of the first error-free pass, or ``None``."""
    w = ember.tensor(np.zeros(2, dtype=np.float32))
    b = ember.tensor(np.zeros((), dtype=np.float32))
    errors_per_epoch = []
    first_clean = None
    for epoch in range(1, epochs + 1):
        errors = 0
        # Online on purpose: the rule updates after each sample, so the loop is the algorithm.
        for xi, yi in zip(X, y):
            y_hat = float(binary_step(ember.tensor(xi) @ w + b).item())
            delta = learning_rate * (float(yi) - y_hat)
            if delta:
                errors += 1
                w.data += delta * xi
                b.data += delta
        errors_per_epoch.append(errors)
        if errors == 0:
            first_clean = epoch
            break
    return {
        "errors_per_epoch": errors_per_epoch,
        "first_error_free_epoch": first_clean,
        "weights": w.data.copy(),
        "bias": float(b.item()),
    }


def step_gradient_norm(seed: int = 0) -> float:
    """The backprop gradient of a squared error through the step activation: exactly zero."""
    rng = np.random.default_rng(seed)
    w = ember.tensor(rng.standard_normal(2).astype(np.float32), requires_grad=True)
    y_hat = binary_step(ember.tensor(X) @ w)
    loss = ((y_hat - ember.tensor(TARGETS["AND"])) ** 2).mean()
    (dw,) = ember.grad(loss, [w])
    return float(np.abs(dw).sum())


def main(epochs: int = 100, learning_rate: float = 0.1) -> dict:
    results = {name: train_perceptron(y, epochs, learning_rate) for name, y in TARGETS.items()}
    results["step_gradient_norm"] = step_gradient_norm()
    return results


if __name__ == "__main__":
    r = main()
    xor_errors = r["XOR"]["errors_per_epoch"]
    print(
        f"Perceptron: AND is learned error-free in epoch {r['AND']['first_error_free_epoch']}, "
        f"OR in epoch {r['OR']['first_error_free_epoch']}; XOR is never error-free in "
        f"{len(xor_errors)} epochs (mistakes per epoch: min {min(xor_errors)}, "
        f"max {max(xor_errors)}). The backprop gradient through the step is "
        f"{r['step_gradient_norm']:.1f}, so gradient descent cannot train it."
    )
