"""Adagrad's premature learning-rate decay against RMSprop on a non-convex problem.

The Rosenbrock function ``f(a, b) = (1 − a)² + 100 (b − a²)²`` is non-convex: from (−1.5, 2)
the first steps see gradients in the hundreds, then the path follows a long, flat, curved
valley to the minimum at (1, 1). Adagrad divides each step by ``√(Σ g²)`` summed over *all* past
steps, so the large early gradients shrink its effective step ``lr / √s`` for good and it stalls in
the valley. RMSprop divides by the root of an exponential moving average of ``g²``, which forgets
the early gradients: its effective step grows back in the flat valley and it keeps moving.

Both use the same learning rate and a PyTorch-style loop over an Ember tensor; the script reports
the loss after N steps, the effective step size per coordinate at the end and the distance
travelled in the last 10% of the steps.

Run: ``python examples/adagrad_vs_rmsprop.py``
"""

from __future__ import annotations

import numpy as np

import ember

START = (-1.5, 2.0)


def rosenbrock(w: ember.Tensor) -> ember.Tensor:
    a, b = w[0], w[1]
    return (1 - a) ** 2 + 100 * (b - a * a) ** 2


def run(name: str, learning_rate: float, steps: int) -> dict:
    w = ember.tensor(list(START), dtype="float64", requires_grad=True)
    if name == "Adagrad":
        opt = ember.optimizers.Adagrad([w], learning_rate=learning_rate)
    else:
        opt = ember.optimizers.RMSprop([w], learning_rate=learning_rate)
    path = [w.data.copy()]
    losses = []
    for _ in range(steps):
        loss = rosenbrock(w)
        losses.append(float(loss.item()))
        opt.zero_grad()
        loss.backward()
        opt.step()
        path.append(w.data.copy())
    state = opt.state[0]
    accumulator = state["sum"] if name == "Adagrad" else state["square_avg"]
    effective_step = learning_rate / (np.sqrt(accumulator) + opt.epsilon)
    tail = np.asarray(path[-(steps // 10 + 1):])
    return {
        "initial_loss": losses[0],
        "final_loss": float(rosenbrock(w).item()),
        "final_point": w.data.copy(),
        "effective_step": effective_step,
        "tail_distance": float(np.linalg.norm(np.diff(tail, axis=0), axis=1).sum()),
    }


def main(learning_rate: float = 0.01, steps: int = 1000) -> dict:
    return {
        "learning_rate": learning_rate,
        "steps": steps,
        "Adagrad": run("Adagrad", learning_rate, steps),
        "RMSprop": run("RMSprop", learning_rate, steps),
    }


if __name__ == "__main__":
    r = main()
    parts = []
    for name in ("Adagrad", "RMSprop"):
        s = r[name]
        parts.append(
            f"{name} ends at loss {s['final_loss']:.3g} at ({s['final_point'][0]:.2f}, "
            f"{s['final_point'][1]:.2f}), effective step lr/√· = "
            f"[{s['effective_step'][0]:.2g}, {s['effective_step'][1]:.2g}], moved "
            f"{s['tail_distance']:.3g} in the last {r['steps'] // 10} steps"
        )
    print(
        f"Adagrad vs RMSprop on Rosenbrock from {START} (lr={r['learning_rate']}, "
        f"{r['steps']} steps, initial loss {r['Adagrad']['initial_loss']:.3g}): "
        + "; ".join(parts) + "."
    )
