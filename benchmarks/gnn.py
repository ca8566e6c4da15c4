"""Graph neural networks on a graph of 10^4 nodes and 10^5 edges: Ember against PyTorch Geometric.

Claim checked: "graphs of 10^5 edges train in seconds". One training epoch of full-batch node
classification (forward over the whole graph, cross-entropy over all nodes, backward, one Adam
step) is timed for three 2-layer networks:

* ``gcn``: ``GCNConv(64) -> ReLU -> GCNConv(classes)`` (normalization recomputed every call,
  as PyG's default ``cached=False``);
* ``sage``: ``SAGEConv(64, mean) -> ReLU -> SAGEConv(classes, mean)``;
* ``gat``: ``GATConv(16, heads=4)`` (concatenated: 64 features) ``-> ELU -> GATConv(classes,
  heads=1)``, attention dropout 0.

The graph: ``--nodes`` 10,000 nodes and ``--edges`` 100,000 edge-index entries — 50,000 random
node pairs (no self-loops) listed in both directions, the ``(2, 100000)`` ``edge_index`` both
frameworks take — with ``--features`` 64 Gaussian features per node and random labels among
``--classes`` 16. The same arrays go to both.

Engines (``--only``, repeatable):

* ``ember``: the low-level loop, ``logits = model(x, training=True)``,
  ``ops.sparse_softmax_cross_entropy(logits, y).mean()``, ``zero_grad``, ``backward``,
  ``Adam(model.parameters()).step()``;
* ``ember_fit``: the same model class (same initial weights) through ``model.fit(x, y,
  batch_size=N, shuffle=False)``, the graph held by the model, one epoch per ``fit`` call,
  timed from ``on_epoch_begin`` to ``on_epoch_end`` (one batch = the whole graph);
* ``torch``: the same network in PyTorch Geometric (``torch_geometric.nn``), Ember's initial
  weights copied in (``lin.weight = kernel.T``; SAGE ``lin_l`` = kernel and bias, ``lin_r`` =
  root kernel; GAT ``att_src``/``att_dst`` = attention_source/target), ``F.cross_entropy``,
  ``torch.optim.Adam``.

All use Adam lr 1e-3, eps 1e-8. With the same weights and data the losses agree to float32
rounding, which the report shows (first epoch's loss per engine).

Timing, as ``_seq_common.py``: ``--warmup`` untimed epochs per engine, then ``--repeats`` blocks
of ``--steps`` epochs per engine, the engines taking turns block by block (the order reversed
every other block); the report gives the median over blocks (and the best) in ms/epoch, and
the Ember/PyG ratio of medians, and the median CPU time of the process per epoch
(``time.process_time``: less sensitive to other processes on a shared machine, summed over
threads). ``--threads`` (default 2) sets ``OPENBLAS_NUM_THREADS``,
``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` before NumPy is imported and
``torch.set_num_threads``. ``--profile`` prints, for the Ember loop, the time per op type
(``_seq_common.OpProfiler``). Peak memory is not measured here. Nothing is asserted by the
test-suite: timings are too noisy for CI.

Run from the repository root::

    .venv/bin/python benchmarks/gnn.py
    .venv/bin/python benchmarks/gnn.py --models gcn --steps 5 --repeats 3 --json /tmp/gnn.json
    .venv/bin/python benchmarks/gnn.py --models gat --only ember --profile
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _seq_common as common  # noqa: E402 (stdlib only: NumPy is not loaded yet)

MODELS = ("gcn", "sage", "gat")
ENGINES = ("ember", "ember_fit", "torch")
LABELS = {"ember": "Ember loop", "ember_fit": "Ember fit", "torch": "PyG"}
HIDDEN = 64
GAT_HEADS = 4
LEARNING_RATE = 1e-3
EPSILON = 1e-8


def parse_args(argv=None) -> argparse.Namespace:
    """The command line; sets the BLAS thread variables, so call it before importing NumPy."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--models", nargs="+", choices=MODELS, default=list(MODELS))
    add("--only", choices=ENGINES, action="append", help="run only these engines (repeatable)")
    add("--nodes", type=int, default=10_000)
    add("--edges", type=int, default=100_000, help="edge_index entries (both directions)")
    add("--features", type=int, default=64)
    add("--classes", type=int, default=16)
    add("--steps", type=int, default=5, help="timed epochs per block (default 5)")
    add("--repeats", type=int, default=5, help="timed blocks per engine; median (default 5)")
    add("--warmup", type=int, default=2, help="untimed epochs per engine first (default 2)")
    add("--threads", type=int, default=2, help="BLAS / torch intra-op threads (default 2)")
    add("--seed", type=int, default=0)
    add("--profile", action="store_true", help="print where the Ember loop's time goes")
    add("--json", metavar="PATH", help="also write the raw results as JSON")
    args = parser.parse_args(argv)
    for name in ("nodes", "features", "classes", "steps", "repeats", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if args.edges < 2 or args.edges % 2:
        parser.error("--edges must be an even number >= 2 (each pair in both directions)")
    if args.warmup < 0:
        parser.error("--warmup must be >= 0")
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    return args


# ------------------------------------------------------------------------------ data
def make_graph(args):
    """``x`` float32 ``(nodes, features)``, ``edge_index`` int64 ``(2, edges)`` (random pairs,
    no self-loops, both directions) and int64 labels."""
    import numpy as np

    rng = np.random.default_rng(args.seed)
    pairs = args.edges // 2
    source = rng.integers(0, args.nodes, pairs)
    # a uniform target other than the source: shift by 1 .. nodes - 1
    target = (source + rng.integers(1, args.nodes, pairs)) % args.nodes
    edge_index = np.concatenate([np.stack([source, target]), np.stack([target, source])], axis=1)
    x = rng.standard_normal((args.nodes, args.features), dtype=np.float32)
    labels = rng.integers(0, args.classes, args.nodes)
    return x, edge_index.astype(np.int64), labels


# ------------------------------------------------------------------------------ models
def ember_model(kind: str, edge_index, classes: int):
    """A 2-layer Ember network of ``kind`` over the fixed graph: ``model(x)`` -> logits."""
    import ember
    from ember import layers

    class TwoLayerGNN(ember.Model):
        def __init__(self):
            super().__init__()
            self.edge_index = edge_index
            if kind == "gcn":
                self.first = layers.GCNConv(HIDDEN, activation="relu")
                self.second = layers.GCNConv(classes)
            elif kind == "sage":
                self.first = layers.SAGEConv(HIDDEN, activation="relu")
                self.second = layers.SAGEConv(classes)
            else:
                self.first = layers.GATConv(HIDDEN // GAT_HEADS, heads=GAT_HEADS,
                                            activation="elu")
                self.second = layers.GATConv(classes)

        def call(self, x, training=False):
            return self.second(self.first(x, self.edge_index), self.edge_index)

    return TwoLayerGNN()


def torch_model(kind: str, features: int, classes: int):
    """The same network in PyTorch Geometric."""
    import torch
    from torch_geometric import nn as gnn

    class TwoLayerGNN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            if kind == "gcn":
                self.first = gnn.GCNConv(features, HIDDEN)
                self.second = gnn.GCNConv(HIDDEN, classes)
                self.act = torch.relu
            elif kind == "sage":
                self.first = gnn.SAGEConv(features, HIDDEN, aggr="mean")
                self.second = gnn.SAGEConv(HIDDEN, classes, aggr="mean")
                self.act = torch.relu
            else:
                self.first = gnn.GATConv(features, HIDDEN // GAT_HEADS, heads=GAT_HEADS)
                self.second = gnn.GATConv(HIDDEN, classes, heads=1)
                self.act = torch.nn.functional.elu

        def forward(self, x, edge_index):
            return self.second(self.act(self.first(x, edge_index)), edge_index)

    return TwoLayerGNN()


def _layer_pairs(kind: str, ours, theirs) -> list:
    """(PyG parameter, NumPy value) pairs for one layer."""
    if kind == "gcn":
        return [(theirs.lin.weight, ours.kernel.numpy().T), (theirs.bias, ours.bias.numpy())]
    if kind == "sage":
        return [
            (theirs.lin_l.weight, ours.kernel.numpy().T),
            (theirs.lin_l.bias, ours.bias.numpy()),
            (theirs.lin_r.weight, ours.root_kernel.numpy().T),
        ]
    return [
        (theirs.lin.weight, ours.kernel.numpy().T),
        (theirs.att_src, ours.attention_source.numpy()),
        (theirs.att_dst, ours.attention_target.numpy()),
        (theirs.bias, ours.bias.numpy()),
    ]


def copy_weights(kind: str, model, module) -> None:
    """Ember's weights into the PyG module."""
    import torch

    pairs = _layer_pairs(kind, model.first, module.first)
    pairs += _layer_pairs(kind, model.second, module.second)
    with torch.no_grad():
        for target, value in pairs:
            target.copy_(torch.from_numpy(value.copy()).reshape(target.shape))


# ------------------------------------------------------------------------------ engines
class EmberLoop:
    """The low-level loop; ``run(n)`` trains ``n`` epochs and returns (seconds, losses)."""

    def __init__(self, model, data):
        import ember

        self.ember, self.model = ember, model
        self.x, self.labels = data[0], data[2]
        self.optimizer = ember.optimizers.Adam(model.parameters(), lr=LEARNING_RATE, eps=EPSILON)

    def step(self) -> float:
        logits = self.model(self.x, training=True)
        loss = self.ember.ops.sparse_softmax_cross_entropy(logits, self.labels).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return float(loss.data)

    def run(self, epochs: int):
        t0, c0 = time.perf_counter(), time.process_time()
        losses = [self.step() for _ in range(epochs)]
        return time.perf_counter() - t0, time.process_time() - c0, losses


class EmberFit:
    """``model.fit`` for ``n`` epochs, the graph as one batch; the time is the sum of the
    epochs' times taken by a callback."""

    def __init__(self, model, data):
        import ember

        self.model, self.x, self.labels = model, data[0], data[2]
        model.compile(optimizer=ember.optimizers.Adam(learning_rate=LEARNING_RATE,
                                                      epsilon=EPSILON),
                      loss=ember.losses.SparseCategoricalCrossentropy(from_logits=True))
        times, cpu = self.times, self.cpu = [], []

        class Timer(ember.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                times.append(-time.perf_counter())
                cpu.append(-time.process_time())

            def on_epoch_end(self, epoch, logs=None):
                times[-1] += time.perf_counter()
                cpu[-1] += time.process_time()

        self.timer = Timer()

    def run(self, epochs: int):
        self.times.clear()
        self.cpu.clear()
        n = self.x.shape[0]
        history = self.model.fit(self.x, self.labels, batch_size=n, epochs=epochs,
                                 shuffle=False, verbose=0, callbacks=[self.timer])
        return sum(self.times), sum(self.cpu), [float(v) for v in history.history["loss"]]


class TorchLoop:
    """The PyG loop: ``F.cross_entropy``, ``torch.optim.Adam``."""

    def __init__(self, module, data):
        import torch

        self.torch, self.module = torch, module
        self.x = torch.from_numpy(data[0])
        self.edge_index = torch.from_numpy(data[1])
        self.labels = torch.from_numpy(data[2])
        self.optimizer = torch.optim.Adam(module.parameters(), lr=LEARNING_RATE, eps=EPSILON)
        module.train()

    def step(self) -> float:
        self.optimizer.zero_grad()
        logits = self.module(self.x, self.edge_index)
        loss = self.torch.nn.functional.cross_entropy(logits, self.labels)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def run(self, epochs: int):
        t0, c0 = time.perf_counter(), time.process_time()
        losses = [self.step() for _ in range(epochs)]
        return time.perf_counter() - t0, time.process_time() - c0, losses


def build_engines(kind: str, engines: tuple, data, args) -> dict:
    """One engine per name, all from the initial weights of one Ember model."""
    import ember

    ember.manual_seed(args.seed)
    base = ember_model(kind, data[1], args.classes)
    base(data[0])  # builds the weights, which the other engines copy
    built = {}
    if "ember" in engines:
        built["ember"] = EmberLoop(base, data)
    if "ember_fit" in engines:
        model = base
        if "ember" in engines:
            model = ember_model(kind, data[1], args.classes)
            model(data[0])
            model.set_weights(base.get_weights())
        built["ember_fit"] = EmberFit(model, data)
    if "torch" in engines:
        import torch

        torch.set_num_threads(args.threads)
        module = torch_model(kind, args.features, args.classes)
        copy_weights(kind, base, module)
        built["torch"] = TorchLoop(module, data)
    return built


# ------------------------------------------------------------------------------ driver
def bench_model(kind: str, engines: tuple, data, args) -> dict:
    """Warm-up, then the timed blocks taking turns; per engine the block times and losses."""
    runners = build_engines(kind, engines, data, args)
    first_loss = {}
    for name, runner in runners.items():
        first_loss[name] = runner.run(max(args.warmup, 1))[2][0]
    blocks: dict = {name: [] for name in runners}
    cpu: dict = {name: [] for name in runners}
    for r in range(args.repeats):
        order = engines if r % 2 == 0 else tuple(reversed(engines))
        for name in order:
            wall, cpu_seconds, _ = runners[name].run(args.steps)
            blocks[name].append(wall / args.steps)
            cpu[name].append(cpu_seconds / args.steps)
        print(f"  {kind} block {r + 1}/{args.repeats}: " + ", ".join(
            f"{n} {1000 * blocks[n][-1]:.0f} ms/epoch" for n in engines), flush=True)
    result = {}
    for name in engines:
        times = blocks[name]
        result[name] = {
            "ms_per_epoch_median": 1000 * common._median(times),
            "ms_per_epoch_min": 1000 * min(times),
            "block_ms_per_epoch": [1000 * t for t in times],
            "cpu_ms_per_epoch_median": 1000 * common._median(cpu[name]),
            "loss_first_epoch": first_loss[name],
        }
    if args.profile and "ember" in runners:
        result["profile"] = profile(runners["ember"], kind)
    return result


def profile(loop: EmberLoop, kind: str, steps: int = 3) -> dict:
    """Self time per Ember op type over ``steps`` epochs of the loop (forward and backward)."""
    with common.OpProfiler() as prof:
        t0 = time.perf_counter()
        for _ in range(steps):
            loop.step()
        total = time.perf_counter() - t0
    rows = sorted(prof.stats.items(), key=lambda kv: -(kv[1][0] + kv[1][2]))
    print(f"\n  Ember {kind}, per op type ({steps} profiled epochs, "
          f"{1000 * total / steps:.1f} ms/epoch with the timers on; ms per epoch):")
    print(f"  | {'op':<28} | fwd ms | bwd ms |")
    print(f"  |{'-' * 30}|-------:|-------:|")
    for name, (fwd, _, bwd, _) in rows[:12]:
        print(f"  | {name:<28} | {1000 * fwd / steps:6.1f} | {1000 * bwd / steps:6.1f} |")
    return {k: [1000 * r[0] / steps, 1000 * r[2] / steps] for k, r in rows}


def print_report(results: dict, engines: tuple) -> None:
    """Wall-clock ms/epoch, median (best), the ratios to PyG, the CPU time and the losses."""
    rows = [["model", *(f"{LABELS[e]} ms/epoch" for e in engines)]]
    if "torch" in engines:
        rows[0] += [f"{LABELS[e]}/PyG" for e in engines if e != "torch"]
    rows[0] += [f"{LABELS[e]} CPU ms" for e in engines] + ["first-epoch loss per engine"]
    for kind, by_engine in results.items():
        row = [kind]
        for e in engines:
            v = by_engine[e]
            row.append(f"{v['ms_per_epoch_median']:.1f} ({v['ms_per_epoch_min']:.1f})")
        if "torch" in engines:
            torch_ms = by_engine["torch"]["ms_per_epoch_median"]
            row += [f"{by_engine[e]['ms_per_epoch_median'] / torch_ms:.2f}x"
                    for e in engines if e != "torch"]
        row += [f"{by_engine[e]['cpu_ms_per_epoch_median']:.1f}" for e in engines]
        row.append(" / ".join(f"{by_engine[e]['loss_first_epoch']:.5f}" for e in engines))
        rows.append(row)
    print("\nms per epoch (forward + backward + Adam step): wall clock, median over blocks (best);")
    print("CPU ms: the process's CPU time per epoch, median (all threads: with --threads 2 it can")
    print("exceed the wall clock)")
    common._table(rows)


def main(argv=None) -> dict:
    args = parse_args(argv)
    engines = tuple(e for e in ENGINES if e in (args.only or ENGINES))
    load_before = os.getloadavg()[0]
    data = make_graph(args)
    print(f"graph: {args.nodes} nodes, {data[1].shape[1]} edge-index entries, {args.features} "
          f"features, {args.classes} classes; hidden {HIDDEN} (GAT: {GAT_HEADS} heads x "
          f"{HIDDEN // GAT_HEADS}); {args.warmup} warm-up epoch(s), then {args.repeats} block(s) "
          f"x {args.steps} epochs per engine; {args.threads} thread(s)", flush=True)
    results = {kind: bench_model(kind, engines, data, args) for kind in args.models}
    print_report(results, engines)
    env = common.environment(args, load_before, os.getloadavg()[0])
    if "torch" in engines:
        import torch_geometric

        env["torch_geometric"] = torch_geometric.__version__
        print(f"\nPyTorch Geometric {torch_geometric.__version__}")
    common.print_environment(env)
    out = {"results": results, "env": env, "args": vars(args)}
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump(out, f, indent=2, default=str)
    return out


if __name__ == "__main__":
    main()
