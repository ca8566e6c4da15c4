"""Benchmark harness: train one model on Fashion-MNIST in Ember and in PyTorch, side by side.

Models (``--model``):

* ``mlp``: 784-256-128-10 ReLU MLP (``benchmarks/mlp.py``);
* ``convnet``: the Keras "simple MNIST convnet" — Conv32 3×3 ReLU, MaxPool 2, Conv64 3×3 ReLU,
  MaxPool 2, Flatten, Dropout 0.5, Dense 10 softmax (``benchmarks/convnet.py``). Ember runs it
  channels-last (NHWC, Keras' layout); PyTorch runs twice, in its default NCHW memory format
  (``torch``) and in ``channels_last`` (``torch_cl``), its fastest CPU setting.

Run from the repository root::

    .venv/bin/python benchmarks/mlp.py --epochs 1 --repeats 3
    .venv/bin/python benchmarks/convnet.py --epochs 1 --repeats 3

What is measured
----------------
* **Time** (s/epoch): both frameworks train the same network (softmax / cross-entropy, Adam lr
  1e-3, eps 1e-8, batch 128, reshuffled every epoch) on the same float32 data, *in this
  process*, one after the other: Ember through ``model.fit(verbose=0)``, PyTorch through a plain
  loop (``nn.Sequential``, ``CrossEntropyLoss`` on logits, ``torch.optim.Adam``, shuffled index
  batches from a pre-made float32 tensor, ``model.train()``/``eval()``). Each of ``--repeats``
  runs builds a fresh model and trains ``--epochs`` epochs; every epoch is timed with
  ``perf_counter`` and the reported figure is the median over all timed epochs (min in
  brackets). Runs alternate Ember/PyTorch so that slow phases of a noisy machine hit both. Both
  loops also report the running training loss and accuracy, as ``fit`` does with
  ``metrics=["accuracy"]``.
* **Accuracy**: test accuracy (10,000 images) of the model of the last run.
* **Peak memory**: each framework is run again in its own child process (this script with
  ``--worker``) for one epoch plus the test evaluation, *before* this process loads torch or
  the data; the peak resident set size of that child is read from the kernel with ``os.wait4``
  (the child's ``ru_maxrss``, the figure ``getrusage(RUSAGE_CHILDREN)`` gives; Linux carries a
  parent's RSS at fork over into it, hence the order) and cross-checked with the child's own
  ``VmHWM`` from ``/proc/self/status``. It *includes* the Python interpreter, NumPy, the
  framework's own import (the Ember child never imports torch; the PyTorch child imports
  ``ember.datasets`` to load the data, a few MB) and the data itself: the float32 train and test
  arrays are ~210 MiB (the uint8 arrays are freed after conversion; PyTorch's NCHW run holds one
  more, contiguous copy of the images, since NHWC data seen as NCHW is ``channels_last``). The
  RSS after the imports and after loading the data are reported too, so that the training
  overhead can be read off.

Threads
-------
``--threads N`` (default 2) is applied before NumPy is imported: this script parses its arguments
first and sets ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` to ``N`` in
``os.environ`` at the very top, before the ``import numpy`` (OpenBLAS reads them when it is
loaded, so no re-exec is needed; the worker children inherit them). PyTorch gets
``torch.set_num_threads(N)``. The effective BLAS thread count is then read back with
``threadpoolctl`` when it is installed, else straight from NumPy's bundled OpenBLAS via ctypes.

Timings are noisy on a shared 2-core machine: compare the Ember/PyTorch *ratio* of one run, not
absolute seconds across runs, and look at the printed load average (above the number of cores,
other processes were competing). Nothing here is asserted by the test-suite.
"""

from __future__ import annotations

import argparse
import os
import sys

FRAMEWORKS = ("ember", "torch", "torch_cl")
LABELS = {"ember": "Ember", "torch": "PyTorch", "torch_cl": "PyTorch channels_last"}


def _parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Fashion-MNIST training: Ember vs PyTorch (time per epoch, accuracy, peak RSS)"
    )
    parser.add_argument(
        "--model", choices=("mlp", "convnet"), default="mlp", help="network (default mlp)"
    )
    parser.add_argument("--epochs", type=int, default=1, help="epochs per run (default 1)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="fresh runs per framework; median (default 3)"
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="BLAS / torch intra-op threads (default 2)"
    )
    parser.add_argument("--batch-size", type=int, default=128, help="batch size (default 128)")
    parser.add_argument("--seed", type=int, default=0, help="base seed; run r uses seed + r")
    parser.add_argument(
        "--skip-memory", action="store_true", help="do not run the peak-memory child processes"
    )
    parser.add_argument(
        "--only",
        choices=FRAMEWORKS,
        action="append",
        help="time only these (repeatable); torch_cl = PyTorch channels_last (convnet only)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the raw results as JSON")
    parser.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("epochs", "repeats", "threads", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


ARGS = _parse_args()
# Must happen before NumPy (and so OpenBLAS) is loaded anywhere in this process.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(ARGS.threads)

import datetime  # noqa: E402
import glob  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

HIDDEN = (256, 128)
CLASSES = 10
LEARNING_RATE = 1e-3
EPSILON = 1e-8


# ------------------------------------------------------------------------------------- helpers
def _proc_status_mb(field: str) -> float:
    """A memory field of /proc/self/status (``VmRSS``, ``VmHWM``) in MiB; NaN off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _rss_mb() -> float:
    """Current resident set size of this process in MiB."""
    return _proc_status_mb("VmRSS")


def load_data(model: str):
    """Fashion-MNIST as float32 in [0, 1] — (N, 784) for the MLP, (N, 28, 28, 1) NHWC for the
    convnet — and int64 labels."""
    from ember.datasets import fashion_mnist

    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data(download=False)
    shape = (-1, 784) if model == "mlp" else (-1, 28, 28, 1)
    x_train = x_train.reshape(shape).astype(np.float32)
    x_train /= 255  # in place: no second 180 MiB float32 copy
    x_test = x_test.reshape(shape).astype(np.float32)
    x_test /= 255
    return x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64)


def blas_summary() -> dict:
    """Which BLAS NumPy uses (from ``np.show_config``) and how many threads it really runs."""
    info: dict = {"name": "?", "version": "?", "config": "", "threads": None, "threads_via": None}
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        info["name"] = blas.get("name", "?")
        info["version"] = blas.get("version", "?")
        info["config"] = blas.get("openblas configuration", "")
    except Exception as exc:  # noqa: BLE001 (best effort: only used for the report)
        info["config"] = f"show_config failed: {exc}"
    try:
        from threadpoolctl import threadpool_info

        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if pools:
            info["threads"] = pools[0]["num_threads"]
            info["threads_via"] = "threadpoolctl"
            info["corename"] = pools[0].get("architecture")
            return info
    except ImportError:
        pass
    # No threadpoolctl: ask NumPy's bundled OpenBLAS directly (already loaded, so CDLL reuses it).
    import ctypes

    libs = glob.glob(os.path.join(os.path.dirname(np.__file__) + ".libs", "*openblas*"))
    for path in libs:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_openblas", "64_"), ("scipy_openblas", ""), ("openblas", "")):
            fn = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            if fn is None:
                continue
            fn.restype = ctypes.c_int
            info["threads"] = fn()
            info["threads_via"] = f"ctypes {os.path.basename(path)}"
            core = getattr(lib, f"{prefix}_get_corename{suffix}", None)
            if core is not None:
                core.restype = ctypes.c_char_p
                info["corename"] = core().decode()
            return info
    return info


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


# ------------------------------------------------------------------------------------- Ember
def ember_build(model_name: str, seed: int):
    import ember
    from ember import layers

    ember.manual_seed(seed)
    if model_name == "mlp":
        stack = [
            layers.Input(shape=(784,)),
            layers.Dense(HIDDEN[0], activation="relu"),
            layers.Dense(HIDDEN[1], activation="relu"),
            layers.Dense(CLASSES, activation="softmax"),
        ]
    else:
        stack = [
            layers.Input(shape=(28, 28, 1)),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(CLASSES, activation="softmax"),
        ]
    model = ember.models.Sequential(stack)
    model.compile(
        optimizer=ember.optimizers.Adam(learning_rate=LEARNING_RATE, epsilon=EPSILON),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


class EmberRun:
    """One fresh Ember model, trained one epoch per call through ``model.fit`` (verbose=0).

    ``fit(epochs=e + 1, initial_epoch=e)`` is Keras' way to continue training: the optimizer
    state and Ember's shuffling generator carry over, so E calls train exactly as one
    ``fit(epochs=E)`` would. The epoch is timed inside ``fit`` by a callback (on_epoch_begin to
    on_epoch_end), so fit's one-off input validation is not counted.
    """

    def __init__(self, model_name: str, data, batch_size: int, seed: int):
        import ember

        self.x_train, self.y_train, self.x_test, self.y_test = data
        self.batch_size = batch_size
        self.model = ember_build(model_name, seed)
        self.epochs_done = 0
        self.times: list[float] = []
        self.logs: dict = {}
        times = self.times

        class EpochTimer(ember.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self._t0 = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                times.append(time.perf_counter() - self._t0)

        self.timer = EpochTimer()

    def epoch(self) -> float:
        history = self.model.fit(
            self.x_train,
            self.y_train,
            batch_size=self.batch_size,
            epochs=self.epochs_done + 1,
            initial_epoch=self.epochs_done,
            shuffle=True,
            verbose=0,
            callbacks=[self.timer],
        )
        self.epochs_done += 1
        self.logs = {k: v[-1] for k, v in history.history.items()}
        return self.times[-1]

    def finish(self) -> dict:
        _, test_acc = self.model.evaluate(self.x_test, self.y_test, batch_size=1000, verbose=0)
        return {
            "epoch_times": self.times,
            "train_loss": self.logs["loss"],
            "train_acc": self.logs["accuracy"],
            "test_acc": float(test_acc),
        }


# ------------------------------------------------------------------------------------- PyTorch
def torch_images(torch, x: np.ndarray, channels_last: bool):
    """NHWC float32 images as an NCHW tensor: the permuted view of NHWC data *is* PyTorch's
    ``channels_last`` layout (no copy); the default contiguous NCHW needs one copy."""
    t = torch.from_numpy(x)
    if t.ndim == 2:
        return t
    t = t.permute(0, 3, 1, 2)
    return t if channels_last else t.contiguous()


class TorchRun:
    """One fresh PyTorch model trained with a plain, idiomatic loop, one epoch per call."""

    def __init__(self, model_name, data, batch_size: int, seed: int, threads: int, cl: bool):
        import torch
        from torch import nn

        self.torch = torch
        torch.set_num_threads(threads)
        torch.manual_seed(seed)
        x_train, y_train, x_test, y_test = data
        # from_numpy shares the float32 arrays with NumPy: no copy of the data.
        self.x_train, self.y_train = torch_images(torch, x_train, cl), torch.from_numpy(y_train)
        self.x_test, self.y_test = torch_images(torch, x_test, cl), torch.from_numpy(y_test)
        self.batch_size = batch_size
        if model_name == "mlp":
            self.model = nn.Sequential(
                nn.Linear(784, HIDDEN[0]),
                nn.ReLU(),
                nn.Linear(HIDDEN[0], HIDDEN[1]),
                nn.ReLU(),
                nn.Linear(HIDDEN[1], CLASSES),
            )
        else:
            self.model = nn.Sequential(
                nn.Conv2d(1, 32, 3),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(32, 64, 3),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Flatten(),
                nn.Dropout(0.5),
                nn.Linear(1600, CLASSES),
            )
            if cl:
                self.model = self.model.to(memory_format=torch.channels_last)
        self.loss_fn = nn.CrossEntropyLoss()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LEARNING_RATE, eps=EPSILON)
        self.generator = torch.Generator().manual_seed(seed)
        self.times: list[float] = []
        self.logs: dict = {}

    def epoch(self) -> float:
        torch, model, optimizer, loss_fn = self.torch, self.model, self.optimizer, self.loss_fn
        x_train, y_train, batch_size = self.x_train, self.y_train, self.batch_size
        n = len(x_train)
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(n, generator=self.generator)
        total_loss, correct = 0.0, 0
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size]
            xb, yb = x_train[index], y_train[index]
            optimizer.zero_grad()
            logits = model(xb)
            loss = loss_fn(logits, yb)
            loss.backward()
            optimizer.step()
            # the same running statistics as Ember's fit (loss and accuracy of the epoch)
            total_loss += loss.item() * len(index)
            correct += (logits.argmax(dim=1) == yb).sum().item()
        self.times.append(time.perf_counter() - t0)
        self.logs = {"loss": total_loss / n, "accuracy": correct / n}
        return self.times[-1]

    def finish(self) -> dict:
        self.model.eval()
        with self.torch.no_grad():
            correct = 0
            for start in range(0, len(self.x_test), 1000):
                logits = self.model(self.x_test[start : start + 1000])
                correct += (logits.argmax(dim=1) == self.y_test[start : start + 1000]).sum().item()
            test_acc = correct / len(self.x_test)
        return {
            "epoch_times": self.times,
            "train_loss": self.logs["loss"],
            "train_acc": self.logs["accuracy"],
            "test_acc": test_acc,
        }


def new_run(framework: str, data, args, seed: int):
    if framework == "ember":
        return EmberRun(args.model, data, args.batch_size, seed)
    cl = framework == "torch_cl"
    return TorchRun(args.model, data, args.batch_size, seed, args.threads, cl)


# ------------------------------------------------------------------------------------- memory
def worker(framework: str, args) -> None:
    """Child process for the memory figure: imports only what it needs, trains, reports RSS."""
    if framework == "ember":
        import ember  # noqa: F401
    else:
        import torch  # noqa: F401

        import ember.datasets.fashion_mnist  # noqa: F401 (the data loader only)
    rss_imports = _rss_mb()
    data = load_data(args.model)
    rss_data = _rss_mb()
    run = new_run(framework, data, args, args.seed)
    for _ in range(args.epochs):
        run.epoch()
    result = run.finish()
    result.update(
        rss_after_imports_mb=rss_imports,
        rss_after_data_mb=rss_data,
        # VmHWM: the kernel's high-water mark of this process image's RSS (reset by exec).
        vmhwm_mb=_proc_status_mb("VmHWM"),
    )
    print("RESULT " + json.dumps(result), flush=True)


def measure_memory(framework: str, args) -> dict:
    """Run this script as ``--worker`` for one epoch; the child's peak RSS.

    ``ru_maxrss`` of a child (os.wait4, or getrusage(RUSAGE_CHILDREN)) survives exec, so it is
    never below the parent's RSS at fork time: call this while the parent is still small (before
    it loads the data or torch), as ``main`` does. The child's own ``VmHWM`` is reported too; the
    two agree when the parent is small.
    """
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        framework,
        "--model",
        args.model,
        "--epochs",
        "1",
        "--repeats",
        "1",
        "--threads",
        str(args.threads),
        "--batch-size",
        str(args.batch_size),
        "--seed",
        str(args.seed),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    if proc.returncode != 0:
        raise RuntimeError(f"memory worker for {framework} failed ({proc.returncode})")
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    result["ru_maxrss_mb"] = usage.ru_maxrss / 1024  # KiB on Linux
    result["peak_rss_mb"] = result["ru_maxrss_mb"]
    return result


# ------------------------------------------------------------------------------------- report
def _fmt_time(times: list[float]) -> str:
    if not times:
        return "-"
    return f"{statistics.median(times):.2f} (min {min(times):.2f})"


def main(args) -> dict:
    frameworks = tuple(args.only or ("ember", "torch", "torch_cl"))
    if args.model == "mlp":  # channels_last is about images; the MLP has one torch layout
        frameworks = tuple(f for f in frameworks if f != "torch_cl")
    load_before = os.getloadavg()
    # Memory first, while this process holds only NumPy (see measure_memory).
    memory: dict[str, dict] = {}
    if not args.skip_memory:
        for f in frameworks:
            print(f"peak-memory child for {f} (1 epoch + test evaluation) ...", flush=True)
            memory[f] = measure_memory(f, args)

    import ember

    torch_version, torch_blas, torch_threads = "-", "-", None
    if any(f.startswith("torch") for f in frameworks):
        import torch

        torch.set_num_threads(args.threads)
        torch_version = torch.__version__
        torch_threads = torch.get_num_threads()
        config = torch.__config__.show()
        torch_blas = "MKL" if "BLAS_INFO=mkl" in config else "its own BLAS"
        if "USE_MKLDNN=ON" in config:
            torch_blas += " + oneDNN"
    blas = blas_summary()
    data = load_data(args.model)

    title = (
        f"MLP 784-{HIDDEN[0]}-{HIDDEN[1]}-{CLASSES}"
        if args.model == "mlp"
        else "Keras simple convnet (Conv32-Pool-Conv64-Pool-Dropout-Dense10)"
    )
    print(
        f"{title} on Fashion-MNIST "
        f"({len(data[0])} train / {len(data[2])} test), batch {args.batch_size}, "
        f"Adam lr {LEARNING_RATE:g} eps {EPSILON:g}; {args.repeats} run(s) x {args.epochs} "
        f"epoch(s) per framework, {args.threads} thread(s)",
        flush=True,
    )
    runs: dict[str, list[dict]] = {f: [] for f in frameworks}
    for r in range(args.repeats):
        # Fresh models for this run; epochs alternate between the frameworks (and which one goes
        # first), so that a burst of load from other processes hits both, not one run.
        current = {f: new_run(f, data, args, args.seed + r) for f in frameworks}
        for e in range(args.epochs):
            order = frameworks if e % 2 == 0 else tuple(reversed(frameworks))
            for f in order:
                current[f].epoch()
            print(
                f"  run {r + 1}/{args.repeats} epoch {e + 1}/{args.epochs}: "
                + ", ".join(f"{f} {current[f].times[-1]:.2f} s" for f in frameworks),
                flush=True,
            )
        for f in frameworks:
            res = current[f].finish()
            runs[f].append(res)
            print(
                f"  run {r + 1}/{args.repeats} {f:<5}: train loss {res['train_loss']:.4f}, "
                f"test acc {res['test_acc']:.4f}",
                flush=True,
            )
        del current

    load_after = os.getloadavg()

    summary: dict = {"frameworks": {}}
    for f in frameworks:
        all_times = [t for run in runs[f] for t in run["epoch_times"]]
        summary["frameworks"][f] = {
            "median_epoch_s": statistics.median(all_times),
            "min_epoch_s": min(all_times),
            "epoch_times": all_times,
            "test_acc_last_run": runs[f][-1]["test_acc"],
            "train_loss_last_run": runs[f][-1]["train_loss"],
            "memory": memory.get(f),
        }
    fw = summary["frameworks"]
    # Ember over each PyTorch setting: medians of all epochs, and the median of the ratios of
    # paired epochs (run in turn, so a burst of load hits both members of a pair).
    ratios = {}
    for f in frameworks:
        if f == "ember" or "ember" not in fw:
            continue
        ratios[f] = {
            "median": fw["ember"]["median_epoch_s"] / fw[f]["median_epoch_s"],
            "paired": statistics.median(
                e / t for e, t in zip(fw["ember"]["epoch_times"], fw[f]["epoch_times"])
            ),
        }
    summary["ratios_ember_over"] = ratios

    def mem(key):
        return lambda d: f"{d['memory'][key]:.0f}" if d["memory"] else "-"

    rows = [
        ("s/epoch, median (min)", lambda d: _fmt_time(d["epoch_times"])),
        ("test accuracy (last run)", lambda d: f"{d['test_acc_last_run']:.4f}"),
        ("train loss, last epoch", lambda d: f"{d['train_loss_last_run']:.4f}"),
    ]
    if memory:
        rows += [
            ("peak RSS MiB (child, 1 epoch)", mem("peak_rss_mb")),
            ("  RSS MiB after imports", mem("rss_after_imports_mb")),
            ("  RSS MiB after data load", mem("rss_after_data_mb")),
            ("  child's own VmHWM MiB", mem("vmhwm_mb")),
        ]
    table = [["", *(LABELS[f] for f in frameworks)]]
    table += [[name, *(fn(fw[f]) for f in frameworks)] for name, fn in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    print()
    for k, row in enumerate(table):
        cells = [f"{row[0]:<{widths[0]}}", *(f"{c:>{w}}" for c, w in zip(row[1:], widths[1:]))]
        print("| " + " | ".join(cells) + " |")
        if k == 0:
            print(
                "|"
                + "|".join(["-" * (widths[0] + 2)] + ["-" * (w + 1) + ":" for w in widths[1:]])
                + "|"
            )
    for f, r in ratios.items():
        print(
            f"ratio Ember/{LABELS[f]}: {r['median']:.2f}x (median s/epoch over median s/epoch); "
            f"{r['paired']:.2f}x (median of the per-epoch ratios of paired epochs)"
        )

    env = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch_version,
        "torch_blas": torch_blas,
        "torch_threads": torch_threads,
        "ember": getattr(ember, "__version__", "?"),
        "blas": f"{blas['name']} {blas['version']}",
        "blas_config": blas["config"],
        "blas_threads": blas["threads"],
        "blas_threads_via": blas["threads_via"],
        "blas_core": blas.get("corename"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": args.threads,
        "loadavg_1min_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "date": datetime.date.today().isoformat(),
        "command": shlex.join(getattr(sys, "orig_argv", [sys.executable, *sys.argv])),
    }
    summary["env"] = env
    summary["args"] = vars(args)
    print()
    print(
        f"versions : python {env['python']}, numpy {env['numpy']}, torch {env['torch']}, "
        f"ember {env['ember']}"
    )
    print(
        f"BLAS     : NumPy -> {env['blas']} ({env['blas_config']}); threads in use: "
        f"{env['blas_threads']} (via {env['blas_threads_via']}), core {env['blas_core']}"
        + (
            f"; torch -> {env['torch_blas']}, torch.get_num_threads()={env['torch_threads']}"
            if env["torch"] != "-"
            else ""
        )
    )
    print(
        f"machine  : {env['cpu']}, {env['cores']} cores; OPENBLAS/OMP/MKL_NUM_THREADS="
        f"{os.environ['OPENBLAS_NUM_THREADS']}"
    )
    print(
        f"load avg : {load_before[0]:.2f} before, {load_after[0]:.2f} after (1-minute; "
        f"above {env['cores']} means other processes competed for the cores)"
    )
    print(f"date     : {env['date']}")
    print(f"command  : {env['command']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
    return summary


if __name__ == "__main__":
    if ARGS.worker:
        worker(ARGS.worker, ARGS)
    else:
        main(ARGS)
