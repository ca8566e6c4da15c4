"""Where one training step of the Keras simple convnet goes, per operation, in Ember and PyTorch.

Run from the repository root::

    .venv/bin/python benchmarks/convnet_profile.py            # both, each in its own process
    .venv/bin/python benchmarks/convnet_profile.py --only ember

Batch 128 of Fashion-MNIST images (28×28×1), the network of ``benchmarks/convnet.py``, Adam.

* **Ember**: first the median of ``model.train_step`` over ``--steps`` steps on random batches
  (the real step), then the same step taken apart: the operations Ember's ``conv2d``,
  ``max_pool2d``, dropout and dense layers run, called one after the other in the order of the
  step, on the same shapes, each timed (medians over the steps). The parts add up to within a
  few per cent of the real step; the rest is the autograd engine, the layers' Python and the
  loss. The kernels in use are the ones ``ember.kernels`` selects (``EMBER_KERNELS``).
* **PyTorch** (2 threads, ``channels_last``): the median step of the same training loop as
  ``benchmarks/train_bench.py``, then ``torch.profiler``'s self CPU time per aten op.

Each framework runs in a child process of its own (this script with ``--worker``), so neither
framework's thread pools disturb the other's. Timings move by ±5 % between runs on a shared
machine; compare the parts within one run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

THREADS = "2"
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, THREADS)

import numpy as np  # noqa: E402

BATCH = 128


def _train_bench():
    """``benchmarks/train_bench.py`` as a module (its data loading and model definitions); it
    parses the command line when imported, so it sees an empty one."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    argv, sys.argv = sys.argv, sys.argv[:1]
    try:
        import train_bench
    finally:
        sys.argv = argv
    return train_bench


def _batches(steps: int, seed: int = 0):
    x_train, y_train, _, _ = _train_bench().load_data("convnet")
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        index = rng.integers(0, len(x_train), BATCH)
        yield x_train[index], y_train[index]


def _median_ms(times: list[float]) -> float:
    return 1000 * float(np.median(times))


class _Parts:
    """Accumulates the time of named parts of a step: ``with parts("gemm"): ...``."""

    def __init__(self):
        self.times: dict[str, list[float]] = {}
        self._name = ""

    def __call__(self, name: str):
        self._name = name
        return self

    def __enter__(self):
        self._t0 = time.perf_counter()

    def __exit__(self, *exc):
        self.times.setdefault(self._name, []).append(time.perf_counter() - self._t0)


def _ember_step_parts(parts: _Parts, x, weights, rng) -> None:
    """One step of the convnet, taken apart into the operations Ember runs (see the doc)."""
    from ember import kernels
    from ember.ops import conv
    from ember.ops._core import gemm  # the products as the ops run them (ember.kernels.gemm)

    conv_k = kernels.get("conv")
    pool_k = kernels.get("pooling")
    k1, b1, k2, b2, w, b = weights
    with parts("conv1 forward: patch matrix (im2col)"):
        cols1 = conv._patch_matrix(conv._windows(x, (3, 3), (1, 1), (1, 1), (26, 26)))
    with parts("conv1 forward: GEMM"):
        out1 = gemm(cols1, k1.reshape(9, 32))
    with parts("conv1 forward: bias + ReLU"):
        conv_k.add_bias_relu(out1, b1, True)
    out1 = out1.reshape(BATCH, 26, 26, 32)
    with parts("pool1 forward"):
        p1, arg1 = pool_k.max_pool_forward(out1, (2, 2), (13, 13), True)
    with parts("conv2 forward: patch matrix (im2col)"):
        cols2 = conv._patch_matrix(conv._windows(p1, (3, 3), (1, 1), (1, 1), (11, 11)))
    with parts("conv2 forward: GEMM"):
        out2 = gemm(cols2, k2.reshape(288, 64))
    with parts("conv2 forward: bias + ReLU"):
        conv_k.add_bias_relu(out2, b2, True)
    out2 = out2.reshape(BATCH, 11, 11, 64)
    with parts("pool2 forward"):
        p2, arg2 = pool_k.max_pool_forward(out2, (2, 2), (5, 5), True)
    with parts("dropout + dense + softmax (forward)"):
        flat = p2.reshape(BATCH, -1)
        keep = rng.random(flat.shape, dtype=np.float32) >= 0.5
        dropped = flat * keep * np.float32(2)
        logits = gemm(dropped, w) + b
    g = (logits - logits.max(axis=1, keepdims=True)).astype(np.float32) / BATCH
    with parts("dense + dropout backward"):
        g_w = gemm(dropped.T, g)
        g_flat = gemm(g, w.T) * keep * np.float32(2)
    with parts("pool2 backward (+ ReLU mask, bias sum)"):
        g2, _ = pool_k.max_pool_backward(g_flat.reshape(p2.shape), arg2, (2, 2), out2.shape, True)
    g2 = g2.reshape(-1, 64)
    with parts("conv2 backward: kernel gradient GEMM"):
        gemm(cols2.T, g2)
    with parts("conv2 backward: input gradient GEMM"):
        patches = gemm(g2, k2.reshape(288, 64).T).reshape(BATCH, 11, 11, 3, 3, 32)
    with parts("conv2 backward: col2im"):
        g_p1 = conv_k.col2im(patches, (BATCH, 13, 13, 32), (1, 1), (1, 1))
    with parts("pool1 backward (+ ReLU mask, bias sum)"):
        g1, _ = pool_k.max_pool_backward(g_p1, arg1, (2, 2), out1.shape, True)
    with parts("conv1 backward: kernel gradient GEMM"):
        gemm(cols1.T, g1.reshape(-1, 32))
    del g_w


def ember_worker(steps: int) -> None:
    import ember
    from ember import kernels

    if not kernels.active():
        print("Ember: the kernels are off (EMBER_KERNELS=numpy); the parts below need them")
        return
    model = _train_bench().ember_build("convnet", 0)
    batches = list(_batches(steps + 5))
    step_times = []
    for i, (x, y) in enumerate(batches):
        t0 = time.perf_counter()
        model.train_step((ember.tensor(x), ember.tensor(y)))
        if i >= 5:
            step_times.append(time.perf_counter() - t0)
    weights = [p.numpy() for p in model.weights]
    parts, rng = _Parts(), np.random.default_rng(0)
    for i, (x, _) in enumerate(batches):
        if i == 5:
            parts.times.clear()  # the first steps warm up caches and allocations
        _ember_step_parts(parts, x, weights, rng)
    print(f"Ember train_step: {_median_ms(step_times):.1f} ms (median of {steps} steps)")
    total = 0.0
    print("| Ember operation | ms |\n|---|---:|")
    for name, times in parts.times.items():
        total += _median_ms(times)
        print(f"| {name} | {_median_ms(times):.2f} |")
    print(f"| **sum of the parts** | **{total:.1f}** |")


def torch_worker(steps: int) -> None:
    import torch
    from torch import nn
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(int(THREADS))
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.5), nn.Linear(1600, 10),
    ).to(memory_format=torch.channels_last)  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-8)
    loss_fn = nn.CrossEntropyLoss()
    batches = [
        (torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(y))
        for x, y in _batches(2 * steps + 5)
    ]

    def step(xb, yb):
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        return loss.item()

    step_times = []
    for i, (xb, yb) in enumerate(batches[: steps + 5]):
        t0 = time.perf_counter()
        step(xb, yb)
        if i >= 5:
            step_times.append(time.perf_counter() - t0)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for xb, yb in batches[steps + 5 :]:
            step(xb, yb)
    print(f"PyTorch channels_last step: {_median_ms(step_times):.1f} ms (median of {steps} steps)")
    rows = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    print("| PyTorch aten op (self CPU time) | ms per step |\n|---|---:|")
    for event in rows[:14]:
        print(f"| {event.key} | {event.self_cpu_time_total / 1000 / steps:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps (default 30)")
    parser.add_argument("--only", choices=("ember", "torch"), help="profile one framework")
    parser.add_argument("--worker", choices=("ember", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        (ember_worker if args.worker == "ember" else torch_worker)(args.steps)
        return
    for framework in [args.only] if args.only else ["ember", "torch"]:
        command = [sys.executable, os.path.abspath(__file__), "--worker", framework]
        subprocess.run([*command, "--steps", str(args.steps)], check=True)
        print()
    blas = {v: os.environ.get(v, "unset") for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    print("OpenBLAS: " + ", ".join(f"{k}={v}" for k, v in blas.items()))
    print(f"load average: {os.getloadavg()[0]:.2f}; command: {' '.join(sys.argv)}")


if __name__ == "__main__":
    main()
