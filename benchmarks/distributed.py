"""Data-parallel scaling on this machine: ``fit(..., distribute=True)`` on N = 1 and 2 ranks.

For each N the script starts ``mpiexec -n N`` on itself (the MPICH wheel's launcher, from the
``dist`` extra), one BLAS/numba thread per rank, and reports from rank 0:

* throughput (training samples per second, after a warm-up fit that compiles the kernels) and
  the speed-up over N = 1;
* the time per step and the part of it spent in the gradient Allreduce (measured around the
  one bucketed collective of each step, waiting for the slowest rank included);
* the bucket's size (the bytes each rank sends per step) and two raw Allreduce timings on the
  same communicator: one number (the latency term) and one bucket (latency plus bandwidth).

The data are synthetic (Fashion-MNIST's shapes, drawn from a seed): no download. The global
batch is the same for every N, so every N computes the same trajectory (ember.distributed).
Keep runs short on a shared machine: the defaults take a few seconds per model and N::

    python benchmarks/distributed.py                     # the MLP and the convnet, N = 1, 2
    python benchmarks/distributed.py --models mlp --ranks 1 2 --epochs 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import ember
from ember import distributed, layers

MODELS = ("mlp", "convnet")


def build(name: str):
    ember.manual_seed(0)
    if name == "mlp":  # the MLP of benchmarks/mlp.py: 784-256-128-10, 235,146 weights
        model = ember.models.Sequential([
            layers.Input(shape=(784,)),
            layers.Dense(256, activation="relu"),
            layers.Dense(128, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ])
    else:  # Keras' simple MNIST convnet, 34,826 weights (no dropout: deterministic steps)
        model = ember.models.zoo.simple_convnet((28, 28, 1), 10, dropout=0.0)
    model.compile(ember.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def data(name: str, samples: int):
    rng = np.random.default_rng(0)
    x = rng.random((samples, 784), dtype=np.float32)
    y = rng.integers(0, 10, samples)
    return (x if name == "mlp" else x.reshape(-1, 28, 28, 1)), y


class AllreduceTimer:
    """Times the world's gradient Allreduce calls (the one bucketed collective of each step)."""

    def __init__(self, world):
        self.world, self.original = world, world.allreduce
        self.seconds, self.calls, self.bytes = 0.0, 0, 0

    def __call__(self, buffer, op, what):
        start = time.perf_counter()
        self.original(buffer, op, what)
        if what == "averaging the gradients":
            self.seconds += time.perf_counter() - start
            self.calls += 1
            self.bytes = buffer.nbytes


def raw_allreduce(world, count: int, dtype, repeats: int) -> float:
    """Mean seconds of one Allreduce(SUM) of ``count`` numbers, after a warm-up call."""
    buffer = np.ones(count, dtype=dtype)
    world.allreduce(buffer, "sum", "benchmark")
    distributed.barrier()
    start = time.perf_counter()
    for _ in range(repeats):
        world.allreduce(buffer, "sum", "benchmark")
    return (time.perf_counter() - start) / repeats


def worker(args) -> None:
    info = distributed.init(seed=0)
    world = distributed._world
    timer = None
    if info.size > 1:
        timer = world.allreduce = AllreduceTimer(world)
    results = {}
    for name in args.models:
        x, y = data(name, args.samples)
        model = build(name)
        model.fit(x[: 4 * args.batch_size], y[: 4 * args.batch_size], batch_size=args.batch_size,
                  epochs=1, verbose=0, distribute=True)  # warm-up: kernels, buffers
        if timer is not None:
            timer.seconds, timer.calls = 0.0, 0
        distributed.barrier()
        start = time.perf_counter()
        model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=0,
                  distribute=True)
        seconds = time.perf_counter() - start
        steps = args.epochs * -(-args.samples // args.batch_size)
        weights = sum(p.size for p in model.trainable_weights)
        entry = {"samples_per_s": args.epochs * args.samples / seconds,
                 "ms_per_step": 1e3 * seconds / steps, "weights": weights,
                 "allreduce_ms_per_step": 0.0, "bucket_bytes": 0}
        if timer is not None:
            entry["allreduce_ms_per_step"] = 1e3 * timer.seconds / max(timer.calls, 1)
            entry["bucket_bytes"] = timer.bytes
            entry["raw_1_float_us"] = 1e6 * raw_allreduce(world, 1, np.float32, 200)
            entry["raw_bucket_ms"] = 1e3 * raw_allreduce(world, weights, np.float32, 20)
        results[name] = entry
    if info.rank == 0:
        write_json(args.json, {"ranks": info.size, "results": results})


def write_json(path: str, payload: dict) -> None:
    """Write atomically (temporary file + rename), so a reader never sees half a file."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f)
    os.replace(tmp, path)


def launch(args, ranks: int, out: str) -> dict:
    launcher = Path(sys.executable).parent / "mpiexec"
    if not launcher.exists():
        sys.exit(f"no mpiexec next to {sys.executable}: pip install 'ember[dist]'")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")
    command = [str(launcher), "-n", str(ranks), sys.executable, __file__, "--worker",
               "--json", out, "--samples", str(args.samples), "--epochs", str(args.epochs),
               "--batch-size", str(args.batch_size), "--models", *args.models]
    subprocess.run(command, check=True, env=env, timeout=600)
    with open(out) as f:
        return json.load(f)


def report(runs: list[dict], args) -> None:
    print(f"global batch {args.batch_size}, {args.samples} samples x {args.epochs} epochs, "
          f"1 thread per rank, {os.cpu_count()} cores")
    header = (f"{'model':8} {'N':>2} {'samples/s':>10} {'speed-up':>8} {'ms/step':>8} "
              f"{'allreduce ms':>12} {'% of step':>9} {'bucket KB':>9} {'1-float us':>10} "
              f"{'raw bucket ms':>13}")
    print(header)
    for name in args.models:
        base = runs[0]["results"][name]["samples_per_s"]
        for run in runs:
            r = run["results"][name]
            share = 100 * r["allreduce_ms_per_step"] / r["ms_per_step"]
            print(f"{name:8} {run['ranks']:>2} {r['samples_per_s']:>10.0f} "
                  f"{r['samples_per_s'] / base:>8.2f} {r['ms_per_step']:>8.2f} "
                  f"{r['allreduce_ms_per_step']:>12.3f} {share:>9.1f} "
                  f"{r['bucket_bytes'] / 1024:>9.0f} {r.get('raw_1_float_us', 0):>10.1f} "
                  f"{r.get('raw_bucket_ms', 0):>13.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        runs = [launch(args, n, os.path.join(tmp, f"ranks{n}.json")) for n in args.ranks]
    report(runs, args)


if __name__ == "__main__":
    main()
