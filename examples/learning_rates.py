"""Learning rate too small, good, too large.

Full-batch gradient descent on a linear regression with mean squared error. The loss is a
quadratic whose Hessian is ``H = 2/N · [X 1]ᵀ[X 1]``; gradient descent is stable only for
``lr < 2/λ_max(H)``. Well below that it creeps (too small), near ``1/λ_max`` it converges to the
noise floor in a few dozen steps (good), and above ``2/λ_max`` every step overshoots further than
the last and the loss grows (too large).

Run: ``python examples/learning_rates.py``
"""

from __future__ import annotations

import numpy as np

import ember
from ember import layers
from ember.models import NonFiniteLossError


def make_data(seed: int = 0, n: int = 256, features: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, features)).astype(np.float32)
    w_true = rng.uniform(-2.0, 2.0, (features, 1))
    y = (x @ w_true + 0.5 + 0.1 * rng.standard_normal((n, 1))).astype(np.float32)
    return x, y


def critical_learning_rate(x: np.ndarray) -> float:
    """``2/λ_max`` of the MSE Hessian: the largest stable gradient-descent step."""
    design = np.hstack([x, np.ones((len(x), 1))]).astype(np.float64)
    hessian = 2.0 / len(x) * design.T @ design
    return float(2.0 / np.linalg.eigvalsh(hessian).max())


def train(x: np.ndarray, y: np.ndarray, learning_rate: float, epochs: int, seed: int) -> list:
    ember.manual_seed(seed)
    model = ember.models.Sequential([layers.Input(shape=(x.shape[1],)), layers.Dense(1)])
    model.compile(optimizer=ember.optimizers.SGD(learning_rate=learning_rate), loss="mse")
    try:
        history = model.fit(x, y, batch_size=len(x), epochs=epochs, verbose=0)
    except NonFiniteLossError:
        return [float("inf")]
    return history.history["loss"]


def main(seed: int = 0, epochs: int = 30) -> dict:
    x, y = make_data(seed)
    critical = critical_learning_rate(x)
    rates = {"too_small": 0.01 * critical, "good": 0.5 * critical, "too_large": 1.1 * critical}
    results: dict = {"critical_learning_rate": critical, "epochs": epochs}
    for name, lr in rates.items():
        losses = train(x, y, lr, epochs, seed)
        results[name] = {"learning_rate": lr, "first_loss": losses[0], "final_loss": losses[-1]}
    return results


if __name__ == "__main__":
    r = main()
    parts = [
        f"{name.replace('_', ' ')} (lr={r[name]['learning_rate']:.3g}): loss "
        f"{r[name]['first_loss']:.3g} -> {r[name]['final_loss']:.3g}"
        for name in ("too_small", "good", "too_large")
    ]
    print(
        f"Learning rates (full-batch GD on linear regression, {r['epochs']} epochs, stability "
        f"limit 2/λ_max = {r['critical_learning_rate']:.3g}): " + "; ".join(parts) + "."
    )
