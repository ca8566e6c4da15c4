"""Shared harness of the sequence-model benchmarks (``lstm_lm.py``, ``transformer.py``).

A benchmark script describes its model with a :class:`Spec` (how to build it in Ember, how to
build it in PyTorch, how to copy Ember's initial weights into the PyTorch model) and hands it to
:func:`main`; everything else — threads, data, timing, peak memory, the per-op profile and the
report — lives here, so that both scripts measure the same way as ``train_bench.py`` does.

Engines (``--only``, repeatable; all three by default):

* ``ember``: a hand-written loop on the low-level API —
  ``logits = model(x, training=True)``, ``ops.sparse_softmax_cross_entropy(...).mean()``,
  ``opt.zero_grad(); loss.backward(); opt.step()`` with ``Adam(model.parameters(), ...)``;
* ``ember_fit``: the same model (same initial weights) through ``model.fit`` (``compile`` with
  ``SparseCategoricalCrossentropy(from_logits=True)``, no metrics, ``shuffle=False``);
* ``torch``: the same network in PyTorch with Ember's initial weights copied in, a plain loop
  (``F.cross_entropy`` on the flattened logits, ``torch.optim.Adam``).

All use Adam (lr 1e-3, eps 1e-8, PyTorch's formula) and see the same batches in the same order:
random token ids (a fixed pool of ``--pool`` batches, cycled), the target of a step being the
next token. With the same weights and data the three losses agree to float32 rounding, which
the report shows (loss of the first step and mean loss of the last block).

Timing: ``--warmup`` steps per engine first (untimed), then ``--repeats`` blocks of ``--steps``
steps per engine; the engines take turns block by block (the order reversed every other block)
so that a burst of load from other processes hits all of them. Each block is timed as a whole
with ``perf_counter`` (for ``fit``: from ``on_epoch_begin`` to ``on_epoch_end`` of a callback,
so fit's one-off input checks are not counted); the report gives the median over blocks (and
the best) as ms/step and tokens/s (batch × sequence length target tokens per step), and the
Ember/PyTorch ratio of median step times plus the median of the per-block paired ratios.

Peak memory: each engine is run again in a child process (the script with ``--worker``) for
``--warmup`` + ``--memory-steps`` steps before the parent imports Ember, torch or the data; the
child's peak RSS is read with ``os.wait4`` (``ru_maxrss``) and cross-checked with its own
``VmHWM``. The Ember children never import torch; the PyTorch child never imports Ember (it keeps
PyTorch's default initial weights: the same shapes, so the same memory). The figure includes
the interpreter, NumPy and the framework's import; the RSS after the imports is printed too.

Threads: ``--threads N`` (default 2) is written to ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``
and ``MKL_NUM_THREADS`` by :func:`parse_args`, which the scripts call before anything imports
NumPy (this module imports NumPy only inside functions for that reason); PyTorch gets
``torch.set_num_threads(N)``. ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` are left as the
caller set them (unset on a user's machine; ``OPENBLAS_CORETYPE=Haswell`` forces the older
kernels, see BENCHMARKS.md) and are printed with the kernel OpenBLAS actually picked.

Profile: ``--profile`` runs ``--profile-steps`` more steps of the ``ember`` loop with every
public function of ``ember/ops/*`` wrapped by a timer (self time: nested ops are subtracted)
and every backward closure timed through ``Tensor._from_op``, and prints, per op type, the
forward and backward milliseconds per step next to the step's phases (forward, loss, backward,
optimizer); then the same steps under ``cProfile`` (top functions by own time).

Nothing here is asserted by the test-suite: timings are too noisy for CI.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

ENGINES = ("ember", "ember_fit", "torch")
LABELS = {"ember": "Ember loop", "ember_fit": "Ember fit", "torch": "PyTorch"}
LEARNING_RATE = 1e-3
EPSILON = 1e-8


@dataclass
class Spec:
    """What a benchmark script contributes: its title and the model hooks.

    ``ember_build(args)`` returns an Ember model that maps ``(batch, time)`` int64 ids to
    ``(batch, time, vocab)`` logits; ``torch_build(args)`` the PyTorch module doing the same;
    ``copy_weights(ember_model, torch_module)`` copies Ember's weights into the module.

    Example:
        >>> spec = Spec("toy", lambda a: None, lambda a: None, lambda m, t: None)
        >>> spec.title
        'toy'
    """

    title: str
    ember_build: Callable
    torch_build: Callable
    copy_weights: Callable
    describe: Callable | None = None  # args -> one line about the network, for the report


def parse_args(description: str, defaults: dict, extra: Callable | None = None):
    """Parse the command line and set the BLAS thread variables; call before importing NumPy.

    ``defaults`` may set ``vocab``, ``batch_size``, ``seq_len``, ``steps``; ``extra(parser)`` adds
    a script's own options (their values are passed on to the memory children when listed
    in ``parser.forwarded``, a list of destination names).
    """
    parser = argparse.ArgumentParser(description=description)
    add = parser.add_argument
    add("--steps", type=int, default=defaults.get("steps", 10), help="timed steps per block")
    add("--repeats", type=int, default=3, help="timed blocks per engine; median (default 3)")
    add("--warmup", type=int, default=2, help="untimed steps per engine first (default 2)")
    add("--threads", type=int, default=2, help="BLAS / torch intra-op threads (default 2)")
    add("--batch-size", type=int, default=defaults.get("batch_size", 64))
    add("--seq-len", type=int, default=defaults.get("seq_len", 100), help="time steps")
    add("--vocab", type=int, default=defaults.get("vocab", 64), help="vocabulary size")
    add("--pool", type=int, default=8, help="distinct random batches, cycled (default 8)")
    add("--seed", type=int, default=0)
    add("--only", choices=ENGINES, action="append", help="run only these engines (repeatable)")
    add("--skip-memory", action="store_true", help="no peak-memory child processes")
    add("--memory-steps", type=int, default=3, help="steps after warm-up in a memory child")
    add("--profile", action="store_true", help="print where Ember's time goes, per op type")
    add("--profile-steps", type=int, default=3, help="steps of the profiled loop (default 3)")
    add("--json", metavar="PATH", help="also write the raw results as JSON")
    add("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    if extra is not None:
        extra(parser)
    args = parser.parse_args()
    args.forwarded = {dest: getattr(args, dest) for dest in getattr(parser, "forwarded", ())}
    for name in ("steps", "repeats", "threads", "batch_size", "seq_len", "pool", "profile_steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    for name in ("warmup", "memory_steps"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must be >= 0")
    if args.vocab < 2:
        parser.error("--vocab must be >= 2")
    # Must happen before NumPy (and so OpenBLAS) is loaded anywhere in this process.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    return args


# ------------------------------------------------------------------------------ machine
def proc_status_mb(field: str) -> float:
    """A memory field of /proc/self/status (``VmRSS``, ``VmHWM``) in MiB; NaN off Linux.

    Example:
        >>> proc_status_mb("VmRSS") > 0
        True
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def blas_summary() -> dict:
    """NumPy's BLAS (name, version, build line) and the threads and kernel it really uses."""
    import glob

    import numpy as np

    info: dict = {"name": "?", "version": "?", "config": "", "threads": None, "via": None}
    try:
        blas = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})
        info.update(name=blas.get("name", "?"), version=blas.get("version", "?"))
        info["config"] = blas.get("openblas configuration", "")
    except Exception as exc:  # noqa: BLE001 (best effort: only used for the report)
        info["config"] = f"show_config failed: {exc}"
    try:
        from threadpoolctl import threadpool_info

        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if pools:
            info.update(threads=pools[0]["num_threads"], via="threadpoolctl")
            info["core"] = pools[0].get("architecture")
            return info
    except ImportError:
        pass
    import ctypes  # no threadpoolctl: ask NumPy's bundled OpenBLAS (already loaded)

    for path in glob.glob(os.path.join(os.path.dirname(np.__file__) + ".libs", "*openblas*")):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_openblas", "64_"), ("scipy_openblas", ""), ("openblas", "")):
            fn = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            if fn is None:
                continue
            fn.restype = ctypes.c_int
            info.update(threads=fn(), via=f"ctypes {os.path.basename(path)}")
            core = getattr(lib, f"{prefix}_get_corename{suffix}", None)
            if core is not None:
                core.restype = ctypes.c_char_p
                info["core"] = core().decode()
            return info
    return info


def cpu_model() -> str:
    """The CPU's model name from ``lscpu`` (``?`` when unavailable)."""
    import platform
    import subprocess

    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


# ------------------------------------------------------------------------------ data
def make_batches(args):
    """``(pool, batch, seq_len + 1)`` int64 random token ids: step ``i`` reads batch ``i % pool``
    as inputs ``[:, :-1]`` and next-token targets ``[:, 1:]``."""
    import numpy as np

    rng = np.random.default_rng(args.seed)
    return rng.integers(0, args.vocab, (args.pool, args.batch_size, args.seq_len + 1))


# ------------------------------------------------------------------------------ engines
class _Engine:
    """Trains one model on the shared batches; ``run(n)`` does ``n`` steps and returns their
    wall time and per-step losses. Every engine keeps its own cursor into the batch pool, so
    all of them see the same batch at the same step."""

    def __init__(self, batches, args):
        self.batches, self.args = batches, args
        self.cursor = 0
        self.losses: list[float] = []
        self.block_times: list[float] = []
        self.block_losses: list[float] = []

    def _next(self):
        batch = self.batches[self.cursor % len(self.batches)]
        self.cursor += 1
        return batch[:, :-1], batch[:, 1:]

    def run(self, steps: int, timed: bool = True) -> float:
        seconds, losses = self._run(steps)
        self.losses += losses
        if timed:
            self.block_times.append(seconds)
            self.block_losses.append(sum(losses) / len(losses))
        return seconds


class EmberLoop(_Engine):
    """The low-level loop: forward, fused sparse softmax cross-entropy, backward, Adam."""

    def __init__(self, model, batches, args):
        import ember

        super().__init__(batches, args)
        self.ember, self.model = ember, model
        self.optimizer = ember.optimizers.Adam(model.parameters(), lr=LEARNING_RATE, eps=EPSILON)

    def loss(self, x, y):
        logits = self.model(x, training=True)
        flat = self.ember.ops.reshape(logits, (-1, self.args.vocab))
        return self.ember.ops.sparse_softmax_cross_entropy(flat, y.reshape(-1)).mean()

    def step(self, x, y) -> float:
        loss = self.loss(x, y)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return float(loss.data)

    def _run(self, steps: int):
        import time

        batches = [self._next() for _ in range(steps)]
        t0 = time.perf_counter()
        losses = [self.step(x, y) for x, y in batches]
        return time.perf_counter() - t0, losses


class EmberFit(_Engine):
    """``model.fit`` over ``steps`` batches per call (one epoch, ``shuffle=False``); the time is
    the epoch's, taken by a callback, and the per-step losses are recovered from the running
    mean ``fit`` reports after each batch."""

    def __init__(self, model, batches, args):
        import time

        import ember

        super().__init__(batches, args)
        self.model = model
        model.compile(
            optimizer=ember.optimizers.Adam(learning_rate=LEARNING_RATE, epsilon=EPSILON),
            loss=ember.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        record = self.record = {"t": [], "means": []}
        clock = time.perf_counter

        class Recorder(ember.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                record["t"] = [clock()]
                record["means"] = []

            def on_train_batch_end(self, batch, logs=None):
                record["means"].append(float(logs["loss"]))

            def on_epoch_end(self, epoch, logs=None):
                record["t"].append(clock())

        self.recorder = Recorder()

    def _run(self, steps: int):
        import numpy as np

        pairs = [self._next() for _ in range(steps)]
        x = np.concatenate([p[0] for p in pairs])
        y = np.concatenate([p[1] for p in pairs])
        self.model.fit(
            x, y, batch_size=self.args.batch_size, epochs=1, shuffle=False, verbose=0,
            callbacks=[self.recorder],
        )  # fmt: skip
        means = self.record["means"]
        # running mean m_k of equal-size batches: loss_k = k m_k - (k - 1) m_{k-1}
        losses = [(k + 1) * m - k * (means[k - 1] if k else 0.0) for k, m in enumerate(means)]
        return self.record["t"][1] - self.record["t"][0], losses


class TorchLoop(_Engine):
    """The PyTorch loop: ``F.cross_entropy`` on the flattened logits, ``torch.optim.Adam``."""

    def __init__(self, module, batches, args):
        import torch

        super().__init__(batches, args)
        self.torch, self.model = torch, module
        self.batches = torch.from_numpy(batches)  # int64, shared with NumPy
        self.optimizer = torch.optim.Adam(module.parameters(), lr=LEARNING_RATE, eps=EPSILON)
        module.train()

    def _run(self, steps: int):
        import time

        torch, model, optimizer, vocab = self.torch, self.model, self.optimizer, self.args.vocab
        cross_entropy = torch.nn.functional.cross_entropy
        batches = [self._next() for _ in range(steps)]
        losses = []
        t0 = time.perf_counter()
        for x, y in batches:
            optimizer.zero_grad()
            loss = cross_entropy(model(x).reshape(-1, vocab), y.reshape(-1))
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return time.perf_counter() - t0, losses


def build_engines(spec: Spec, engines: tuple, batches, args) -> tuple[dict, object]:
    """One engine per name, all starting from the weights of one Ember model; returns the
    engines and that model."""
    import ember

    ember.manual_seed(args.seed)
    base = spec.ember_build(args)
    built: dict = {}
    if "ember" in engines:
        built["ember"] = EmberLoop(base, batches, args)
    if "ember_fit" in engines:
        model = base
        if "ember" in engines:  # a second model with the same initial weights
            model = spec.ember_build(args)
            model.set_weights(base.get_weights())
        built["ember_fit"] = EmberFit(model, batches, args)
    if "torch" in engines:
        import torch

        torch.set_num_threads(args.threads)
        torch.manual_seed(args.seed)
        module = spec.torch_build(args)
        spec.copy_weights(base, module)
        built["torch"] = TorchLoop(module, batches, args)
    return built, base


# ------------------------------------------------------------------------------ memory
def worker(spec: Spec, engine: str, args) -> None:
    """Child process for the memory figure: imports one framework, trains, reports its RSS."""
    import json

    if engine == "torch":
        import torch

        rss_imports = proc_status_mb("VmRSS")
        torch.set_num_threads(args.threads)
        torch.manual_seed(args.seed)
        runner = TorchLoop(spec.torch_build(args), make_batches(args), args)
    else:
        import ember

        rss_imports = proc_status_mb("VmRSS")
        ember.manual_seed(args.seed)
        cls = EmberLoop if engine == "ember" else EmberFit
        runner = cls(spec.ember_build(args), make_batches(args), args)
    if args.warmup:
        runner.run(args.warmup, timed=False)
    if args.memory_steps:
        runner.run(args.memory_steps)
    result = {"rss_after_imports_mb": rss_imports, "vmhwm_mb": proc_status_mb("VmHWM")}
    print("RESULT " + json.dumps(result), flush=True)


def measure_memory(script: str, engine: str, args) -> dict:
    """Run ``script --worker engine``; the child's peak RSS (``ru_maxrss`` via ``os.wait4``).

    A child's ``ru_maxrss`` is never below its parent's RSS at fork time, so :func:`main` calls
    this before it imports Ember, torch or makes the data.
    """
    import json
    import subprocess

    keep = ("--batch-size", "--seq-len", "--vocab", "--pool", "--seed", "--threads")
    cmd = [sys.executable, os.path.abspath(script), "--worker", engine]
    for flag in keep:
        cmd += [flag, str(getattr(args, flag[2:].replace("-", "_")))]
    cmd += ["--warmup", str(args.warmup), "--memory-steps", str(args.memory_steps)]
    cmd += [f"--{k.replace('_', '-')}={v}" for k, v in getattr(args, "forwarded", {}).items()]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    if proc.returncode != 0:
        raise RuntimeError(f"memory worker for {engine} failed ({proc.returncode})")
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # KiB on Linux
    return result


# ------------------------------------------------------------------------------ profile
class OpProfiler:
    """Time Ember per op type while installed: forward self time of every public function of
    ``ember/ops/*`` (wrapped where any ``ember`` module refers to it) and the time of every
    backward closure (wrapped as ``Tensor._from_op`` records it), keyed by the op's name.

    Nested timed calls are subtracted from their caller, so the self times add up. Functions
    held elsewhere than a module attribute (e.g. inside a dict) are not wrapped: their time
    counts as framework overhead around the ops.

    Example:
        >>> with OpProfiler() as prof:
        ...     _ = (ember.tensor([1.0, 2.0], requires_grad=True) * 2).sum()
        >>> "mul" in prof.stats
        True
    """

    def __init__(self):
        self.stats: dict[str, list] = {}  # name -> [fwd s, fwd calls, bwd s, bwd calls]
        self._stack: list[list] = []
        self._restore: list = []

    def _record(self, name: str, slot: int, elapsed: float, child: float) -> None:
        row = self.stats.setdefault(name, [0.0, 0, 0.0, 0])
        row[slot] += elapsed - child
        row[slot + 1] += 1
        if self._stack:
            self._stack[-1][0] += elapsed

    def _timed(self, fn, name: str, slot: int):
        import functools
        import time

        clock, stack, record = time.perf_counter, self._stack, self._record

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            frame = [0.0]
            stack.append(frame)
            t0 = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = clock() - t0
                stack.pop()
                record(name, slot, elapsed, frame[0])

        return timed

    def __enter__(self) -> OpProfiler:
        import types

        from ember.tensor import Tensor

        wrapped: dict[int, Callable] = {}
        for mod_name, module in list(sys.modules.items()):
            if module is None or not (mod_name == "ember" or mod_name.startswith("ember.")):
                continue
            for attr, fn in list(vars(module).items()):
                origin = getattr(fn, "__module__", None) or ""
                if not isinstance(fn, types.FunctionType) or not origin.startswith("ember.ops."):
                    continue
                if attr.startswith("_") or origin == "ember.ops._core":
                    continue
                if id(fn) not in wrapped:
                    wrapped[id(fn)] = self._timed(fn, fn.__name__, 0)
                self._restore.append((module, attr, fn))
                setattr(module, attr, wrapped[id(fn)])
        original = Tensor.__dict__["_from_op"]
        timed = self._timed

        def from_op(cls, data, parents, backward, op):
            return original.__func__(cls, data, parents, timed(backward, op, 2), op)

        self._restore.append((Tensor, "_from_op", original))
        Tensor._from_op = classmethod(from_op)
        return self

    def __exit__(self, *exc) -> None:
        for owner, attr, value in reversed(self._restore):
            setattr(owner, attr, value)
        self._restore.clear()


def _profile_phases(loop: EmberLoop, steps: int) -> dict:
    """Run ``steps`` steps of the loop timing its phases; seconds per phase (summed)."""
    import time

    ops, vocab, clock = loop.ember.ops, loop.args.vocab, time.perf_counter
    phases = dict.fromkeys(("forward (model call)", "loss", "backward", "optimizer"), 0.0)
    for _ in range(steps):
        x, y = loop._next()
        t0 = clock()
        logits = loop.model(x, training=True)
        t1 = clock()
        loss = ops.sparse_softmax_cross_entropy(ops.reshape(logits, (-1, vocab)), y.reshape(-1))
        loss = loss.mean()
        t2 = clock()
        loop.optimizer.zero_grad()
        loss.backward()
        t3 = clock()
        loop.optimizer.step()
        float(loss.data)
        t4 = clock()
        for key, dt in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            phases[key] += dt
    return phases


def profile(loop: EmberLoop, steps: int, top: int = 18) -> dict:
    """Print where the loop's time goes per op type, then a cProfile of the same steps."""
    import cProfile
    import io
    import pstats

    with OpProfiler() as prof:
        phases = _profile_phases(loop, steps)
    step_ms = 1000 * sum(phases.values()) / steps
    rows = sorted(prof.stats.items(), key=lambda kv: -(kv[1][0] + kv[1][2]))
    ops_fwd = sum(r[0] for _, r in rows)
    ops_bwd = sum(r[2] for _, r in rows)
    print(f"\nEmber per op type ({steps} profiled steps of the loop, {step_ms:.1f} ms/step with")
    print("the timers on; self times, ms per step; 'calls' = forward calls per step):")
    print(f"| {'op':<34} | calls | fwd ms | bwd ms | total ms | share |")
    print(f"|{'-' * 36}|------:|-------:|-------:|---------:|------:|")
    for name, (fwd, fcalls, bwd, _) in rows:
        total = 1000 * (fwd + bwd) / steps
        if total < 0.005 * step_ms and total < 0.5:
            continue
        print(
            f"| {name:<34} | {fcalls / steps:5.0f} | {1000 * fwd / steps:6.1f} | "
            f"{1000 * bwd / steps:6.1f} | {total:8.1f} | {total / step_ms:5.1%} |"
        )
    fwd_phase = phases["forward (model call)"] + phases["loss"]
    other = {
        "layers/model outside ops (forward)": fwd_phase - ops_fwd,
        "autograd engine outside closures": phases["backward"] - ops_bwd,
        "optimizer step (Adam) + zero_grad": phases["optimizer"],
    }
    for name, seconds in other.items():
        ms = 1000 * seconds / steps
        print(f"| {name:<34} |       |        |        | {ms:8.1f} | {ms / step_ms:5.1%} |")
    print("phases, ms/step: " + ", ".join(f"{k} {1000 * v / steps:.1f}" for k, v in phases.items()))

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(steps):
        loop.step(*loop._next())
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)
    body = text.getvalue()
    start = body.find("   ncalls")
    print(f"\ncProfile of {steps} more steps, top {top} by own time (tottime, s):")
    print(body[start:].rstrip() if start >= 0 else body)
    return {
        "step_ms": step_ms,
        "phases_ms": {k: 1000 * v / steps for k, v in phases.items()},
        "ops_ms": {k: [1000 * r[0] / steps, 1000 * r[2] / steps, r[1] / steps] for k, r in rows},
        "other_ms": {k: 1000 * v / steps for k, v in other.items()},
    }


# ------------------------------------------------------------------------------ report
def _median(values: list[float]) -> float:
    import statistics

    return statistics.median(values)


def _table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for k, row in enumerate(rows):
        cells = [f"{row[0]:<{widths[0]}}", *(f"{c:>{w}}" for c, w in zip(row[1:], widths[1:]))]
        print("| " + " | ".join(cells) + " |")
        if k == 0:
            rule = ["-" * (widths[0] + 2)] + ["-" * (w + 1) + ":" for w in widths[1:]]
            print("|" + "|".join(rule) + "|")


def summarize(engines: dict, memory: dict, args) -> dict:
    """Per engine: block times, ms/step and tokens/s (median, best), losses, memory."""
    tokens = args.batch_size * args.seq_len
    summary: dict = {}
    for name, engine in engines.items():
        per_step = [t / args.steps for t in engine.block_times]
        summary[name] = {
            "block_seconds": engine.block_times,
            "ms_per_step_median": 1000 * _median(per_step),
            "ms_per_step_min": 1000 * min(per_step),
            "tokens_per_s_median": tokens / _median(per_step),
            "tokens_per_s_best": tokens / min(per_step),
            "loss_first_step": engine.losses[0],
            "loss_last_block_mean": engine.block_losses[-1],
            "memory": memory.get(name),
        }
    return summary


def ratios(summary: dict) -> dict:
    """Ember engine over PyTorch: step-time ratio of the medians, and the median of the ratios
    of blocks run in turn (a burst of load hits both members of a pair)."""
    if "torch" not in summary:
        return {}
    torch_row = summary["torch"]
    out = {}
    for name in ("ember", "ember_fit"):
        if name in summary:
            row = summary[name]
            pairs = zip(row["block_seconds"], torch_row["block_seconds"])
            out[name] = {
                "median": row["ms_per_step_median"] / torch_row["ms_per_step_median"],
                "paired": _median([e / t for e, t in pairs]),
            }
    return out


def print_report(summary: dict, memory: dict, args) -> None:
    names = list(summary)
    rows = [["", *(LABELS[n] for n in names)]]
    lines = [
        ("ms/step, median (min)",
         lambda d: f"{d['ms_per_step_median']:.1f} ({d['ms_per_step_min']:.1f})"),
        ("tokens/s, median (best)",
         lambda d: f"{d['tokens_per_s_median']:.0f} ({d['tokens_per_s_best']:.0f})"),
        ("loss, first step", lambda d: f"{d['loss_first_step']:.5f}"),
        ("loss, mean of the last block", lambda d: f"{d['loss_last_block_mean']:.5f}"),
    ]  # fmt: skip
    if memory:

        def mem(key):
            return lambda d: f"{d['memory'][key]:.0f}" if d["memory"] else "-"

        lines += [
            ("peak RSS MiB (child process)", mem("peak_rss_mb")),
            ("  RSS MiB after the imports", mem("rss_after_imports_mb")),
            ("  child's own VmHWM MiB", mem("vmhwm_mb")),
        ]
    rows += [[label, *(fn(summary[n]) for n in names)] for label, fn in lines]
    print()
    _table(rows)
    for name, r in ratios(summary).items():
        print(
            f"ratio {LABELS[name]}/PyTorch time per step: {r['median']:.2f}x (medians), "
            f"{r['paired']:.2f}x (median of paired blocks); throughput {1 / r['median']:.2f}x "
            "PyTorch's"
        )


def environment(args, load_before, load_after) -> dict:
    """Versions, BLAS, thread settings, OpenBLAS kernel variables, machine, load, command."""
    import datetime
    import platform
    import shlex

    import numpy as np

    import ember

    env = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "ember": getattr(ember, "__version__", "?"),
        "torch": "-",
        "torch_blas": "-",
        "torch_threads": None,
    }
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        config = torch.__config__.show()
        env["torch"] = torch.__version__
        env["torch_threads"] = torch.get_num_threads()
        env["torch_blas"] = ("MKL" if "BLAS_INFO=mkl" in config else "its own BLAS") + (
            " + oneDNN" if "USE_MKLDNN=ON" in config else ""
        )
    blas = blas_summary()
    env.update(
        blas=f"{blas['name']} {blas['version']}",
        blas_config=blas["config"],
        blas_threads=blas["threads"],
        blas_threads_via=blas["via"],
        blas_core=blas.get("core"),
        openblas_coretype=os.environ.get("OPENBLAS_CORETYPE"),
        openblas_l2_size=os.environ.get("OPENBLAS_L2_SIZE"),
        cpu=cpu_model(),
        cores=os.cpu_count(),
        threads=args.threads,
        loadavg_1min_before_after=[round(load_before, 2), round(load_after, 2)],
        date=datetime.date.today().isoformat(),
        command=shlex.join(getattr(sys, "orig_argv", [sys.executable, *sys.argv])),
    )
    return env


def print_environment(env: dict) -> None:
    def shown(value):
        return "unset" if value is None else repr(value)

    print()
    print(
        f"versions : python {env['python']}, numpy {env['numpy']}, torch {env['torch']}, "
        f"ember {env['ember']}"
    )
    torch_part = (
        f"; torch -> {env['torch_blas']}, torch.get_num_threads()={env['torch_threads']}"
        if env["torch"] != "-"
        else ""
    )
    print(
        f"BLAS     : NumPy -> {env['blas']} ({env['blas_config']}); threads in use: "
        f"{env['blas_threads']} (via {env['blas_threads_via']}), core {env['blas_core']}"
        + torch_part
    )
    print(
        f"OpenBLAS : OPENBLAS_CORETYPE {shown(env['openblas_coretype'])}, OPENBLAS_L2_SIZE "
        f"{shown(env['openblas_l2_size'])} (unset: OpenBLAS picks its kernel for this CPU)"
    )
    print(
        f"machine  : {env['cpu']}, {env['cores']} cores; OPENBLAS/OMP/MKL_NUM_THREADS="
        f"{env['threads']}"
    )
    before, after = env["loadavg_1min_before_after"]
    print(
        f"load avg : {before:.2f} before, {after:.2f} after (1-minute; above {env['cores']} "
        "means other processes competed for the cores)"
    )
    print(f"date     : {env['date']}")
    print(f"command  : {env['command']}")


# ------------------------------------------------------------------------------ driver
def main(spec: Spec, args, script: str) -> dict:
    """Run the benchmark a script describes (or, with ``--worker``, one memory child)."""
    if args.worker:
        worker(spec, args.worker, args)
        return {}
    engines = tuple(e for e in ENGINES if e in (args.only or ENGINES))
    load_before = os.getloadavg()[0]
    memory: dict = {}
    if not args.skip_memory:  # first, while this process holds no framework and no data
        for name in engines:
            print(f"peak-memory child for {name} ({args.warmup} + {args.memory_steps} steps) ...",
                  flush=True)  # fmt: skip
            memory[name] = measure_memory(script, name, args)

    batches = make_batches(args)
    runners, base = build_engines(spec, engines, batches, args)
    params = sum(w.size for w in base.trainable_weights)
    tokens = args.batch_size * args.seq_len
    print(
        f"{spec.title}: batch {args.batch_size} x {args.seq_len} steps = {tokens} tokens/step, "
        f"vocab {args.vocab}, Adam lr {LEARNING_RATE:g} eps {EPSILON:g}; {args.warmup} warm-up "
        f"steps, then {args.repeats} block(s) x {args.steps} steps per engine; "
        f"{args.threads} thread(s)",
        flush=True,
    )
    if spec.describe is not None:
        print(f"{spec.describe(args)}; {params:,} parameters")
    for runner in runners.values():
        if args.warmup:
            runner.run(args.warmup, timed=False)
    for r in range(args.repeats):
        order = engines if r % 2 == 0 else tuple(reversed(engines))
        for name in order:
            runners[name].run(args.steps)
        print(
            f"  block {r + 1}/{args.repeats}: "
            + ", ".join(
                f"{n} {1000 * runners[n].block_times[-1] / args.steps:.0f} ms/step" for n in engines
            ),
            flush=True,
        )
    load_after = os.getloadavg()[0]
    summary = summarize(runners, memory, args)
    print_report(summary, memory, args)
    env = environment(args, load_before, load_after)
    print_environment(env)
    result = {"engines": summary, "ratios": ratios(summary), "env": env, "args": vars(args)}
    if args.profile:
        if "ember" not in runners:
            print("\n--profile needs the ember engine (drop --only or add --only ember)")
        else:
            result["profile"] = profile(runners["ember"], args.profile_steps)
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump(result, f, indent=2, default=str)
    return result
