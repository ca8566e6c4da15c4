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
* **Procedure**: every timed run is its own fresh child process (this script with ``--worker
  FRAMEWORK``); Ember and PyTorch never share a process, so neither inherits the other's
  threads, allocator state or BLAS. The parent imports only NumPy: never torch, numba or Ember
  (it does not load the data either). Runs go in rounds: round ``r`` (``--repeats`` rounds)
  starts one child per framework in turn — ember, torch_cl, torch (those selected; ``torch_cl``
  for the convnet only) — each with seed ``seed + r``, so that a slow phase of a noisy machine
  hits every framework, not one. A child imports its framework, loads the data, builds a fresh
  model, trains ``--epochs`` epochs, evaluates the test set and prints its per-epoch times,
  training loss and accuracy, test accuracy and memory figures as one JSON line on stdout.
* **Time** (s/epoch): both frameworks train the same network (softmax / cross-entropy, Adam lr
  1e-3, eps 1e-8, batch 128, reshuffled every epoch) on the same float32 data: Ember through
  ``model.fit(verbose=0)``, PyTorch through a plain loop (``nn.Sequential``,
  ``CrossEntropyLoss`` on logits, ``torch.optim.Adam``, shuffled index batches from a pre-made
  float32 tensor, ``model.train()``/``eval()``). Before the timed model is built, every child
  trains a throwaway one for ``--warmup-batches`` batches (default 2) and evaluates it, untimed
  in the epochs but reported: a fresh process pays one-off costs on its first steps (Ember
  imports numba and loads its compiled kernels from the on-disk cache, ~0.5 s of CPU, half an
  MLP epoch; PyTorch's first steps are slower too) that the epochs of a long run do not, and
  that the old one-process harness paid once, in its first run only. ``--warmup-batches 0``
  times the cold first epoch instead. Every epoch is timed with ``perf_counter`` inside the
  child; the table gives the median over all epochs of all rounds (min in brackets). Two ratios
  Ember/PyTorch are printed: the median s/epoch over the median s/epoch, and the median over
  the rounds of each round's paired ratio (the Ember child's median epoch over the PyTorch
  child's of the same round). Both loops report the running training loss and accuracy, as
  ``fit`` does with ``metrics=["accuracy"]``.
* **Accuracy**: test accuracy (10,000 images) of the last round's model.
* **Peak memory**: of every timed child (so it covers ``--epochs`` epochs plus the test
  evaluation), medians over the rounds. The peak resident set size is read from the kernel with
  ``os.wait4`` (the child's ``ru_maxrss``, the figure ``getrusage(RUSAGE_CHILDREN)`` gives). Linux
  carries the parent's RSS over into it at fork, which is why the parent stays small (NumPy and
  the results: its own ``VmHWM`` is in the JSON); the child's own ``VmHWM`` from
  ``/proc/self/status`` is shown as a cross-check. It *includes* the Python interpreter, NumPy,
  the framework's own import (the Ember child never imports torch; the PyTorch child imports
  ``ember.datasets`` to load the data, a few MB) and the data itself: the float32 train and test
  arrays are ~210 MiB (the uint8 arrays are freed after conversion; PyTorch's NCHW run holds one
  more, contiguous copy of the images, since NHWC data seen as NCHW is ``channels_last``). The
  RSS after the imports and after loading the data are reported too, so that the training
  overhead can be read off. Memory costs no extra run, so ``--skip-memory`` skips nothing: it is
  kept for old command lines and only leaves the memory rows out of the printed table.
* **OpenBLAS settings** (``--openblas``, default ``both``): OpenBLAS picks its kernels from
  ``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` when they are set (some machines set them), and
  that changes NumPy's, hence Ember's, speed. ``asis`` gives the children the environment as it
  is; ``unset`` removes both variables from the children's environment (the parent's is never
  changed); ``both`` runs the whole measurement, all rounds, once per setting and prints a table
  and ratios for each. When neither variable is set the two settings are the same environment:
  the measurement runs once and the output says so. Every child reports the OpenBLAS core it got.

Threads
-------
``--threads N`` (default 2) is applied before NumPy is imported: this script parses its arguments
first and sets ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` to ``N`` in
``os.environ`` at the very top, before the ``import numpy`` (OpenBLAS reads them when it is
loaded, so no re-exec is needed; the children inherit them). PyTorch gets
``torch.set_num_threads(N)``. The effective BLAS thread count is then read back in the children
with ``threadpoolctl`` when it is installed, else straight from NumPy's bundled OpenBLAS via
ctypes.

Timings are noisy on a shared 2-core machine: compare the Ember/PyTorch *ratio* of one run, not
absolute seconds across runs, and look at the printed load average (above the number of cores,
other processes were competing). Nothing here is asserted by the test-suite.
"""

from __future__ import annotations

import argparse
import os
import sys

FRAMEWORKS = ("ember", "torch", "torch_cl")  # the table's column order
RUN_ORDER = ("ember", "torch_cl", "torch")  # the order of the children within a round
LABELS = {"ember": "Ember", "torch": "PyTorch", "torch_cl": "PyTorch channels_last"}
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def _parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Fashion-MNIST training: Ember vs PyTorch (time per epoch, accuracy, peak RSS)"
    )
    parser.add_argument(
        "--model", choices=("mlp", "convnet"), default="mlp", help="network (default mlp)"
    )
    parser.add_argument("--epochs", type=int, default=1, help="epochs per run (default 1)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="rounds of fresh runs; median (default 3)"
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="BLAS / torch intra-op threads (default 2)"
    )
    parser.add_argument("--batch-size", type=int, default=128, help="batch size (default 128)")
    parser.add_argument("--seed", type=int, default=0, help="base seed; round r uses seed + r")
    parser.add_argument(
        "--skip-memory",
        action="store_true",
        help="leave the memory rows out of the table (memory is measured in the timed runs)",
    )
    parser.add_argument(
        "--warmup-batches",
        type=int,
        default=2,
        help="untimed batches on a throwaway model before the timed one, in every child "
        "(lazy imports, kernel loading; 0 = time the cold first epoch; default 2)",
    )
    parser.add_argument(
        "--openblas",
        choices=("asis", "unset", "both"),
        default="both",
        help="children's OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE: as set, removed, or both "
        "(one measurement each; default both)",
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
    if args.warmup_batches < 0:
        parser.error("--warmup-batches must be >= 0")
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

        # internal_api "openblas": NumPy's, not a BLAS that torch may have loaded beside it
        pools = [p for p in threadpool_info() if p.get("internal_api") == "openblas"]
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


# ------------------------------------------------------------------------------------- child
def child_env_info(framework: str) -> dict:
    """What this child ran on: versions, NumPy's BLAS and the OpenBLAS variables it saw (the
    parent never imports torch or Ember, so these figures can only come from here)."""
    import ember

    info = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "ember": getattr(ember, "__version__", "?"),
        "blas": blas_summary(),
        "openblas_env": {v: os.environ.get(v) for v in OPENBLAS_VARS},
        "torch": "-",
    }
    if framework != "ember":
        import torch

        config = torch.__config__.show()
        torch_blas = "MKL" if "BLAS_INFO=mkl" in config else "its own BLAS"
        if "USE_MKLDNN=ON" in config:
            torch_blas += " + oneDNN"
        info.update(
            torch=torch.__version__, torch_blas=torch_blas, torch_threads=torch.get_num_threads()
        )
    return info


def warm_up(framework: str, data, args) -> float | None:
    """Train a throwaway model for ``--warmup-batches`` batches and evaluate it; its seconds.

    A fresh process pays one-off costs on its first steps that a long-running one does not:
    Ember imports numba and loads its compiled kernels from the on-disk cache on their first
    call (~0.5 s of CPU measured for the MLP, half an MLP epoch); PyTorch's first steps are
    slower too. ``import torch`` happens before any timing, Ember's lazy imports would not:
    warming up here keeps both out of the timed epochs and still reports what they cost. The
    timed model is built afterwards with its own seed, so it trains exactly as without this.
    """
    if not args.warmup_batches:
        return None
    n = args.warmup_batches * args.batch_size
    x_train, y_train, x_test, y_test = data
    t0 = time.perf_counter()
    run = new_run(framework, (x_train[:n], y_train[:n], x_test[:1000], y_test[:1000]), args, 0)
    run.epoch()
    run.finish()
    return time.perf_counter() - t0


def worker(framework: str, args) -> None:
    """One timed run in this fresh process: imports only what it needs, trains, evaluates,
    prints its results as one JSON line."""
    if framework == "ember":
        import ember  # noqa: F401
    else:
        import torch  # noqa: F401

        import ember.datasets.fashion_mnist  # noqa: F401 (the data loader only)
    rss_imports = _rss_mb()
    data = load_data(args.model)
    rss_data = _rss_mb()
    warmup_s = warm_up(framework, data, args)
    run = new_run(framework, data, args, args.seed)
    for _ in range(args.epochs):
        run.epoch()
    result = run.finish()
    result.update(
        warmup_s=warmup_s,
        n_train=len(data[0]),
        n_test=len(data[2]),
        rss_after_imports_mb=rss_imports,
        rss_after_data_mb=rss_data,
        # VmHWM: the kernel's high-water mark of this process image's RSS (reset by exec).
        vmhwm_mb=_proc_status_mb("VmHWM"),
        env=child_env_info(framework),
    )
    print("RESULT " + json.dumps(result), flush=True)


# ------------------------------------------------------------------------------------- parent
def openblas_settings(mode: str) -> tuple[list[dict], str | None]:
    """The children's environments for ``--openblas``, each with a label, and a note when
    ``both`` collapses to one run (neither variable set: both settings are one environment)."""
    names = OPENBLAS_VARS
    present = {v: os.environ[v] for v in names if v in os.environ}
    described = ", ".join(f"{v}={present[v]}" if v in present else f"{v} unset" for v in names)
    # copies: the parent's own os.environ is never changed
    asis = {"name": "asis", "label": f"as set: {described}", "env": dict(os.environ)}
    unset = {
        "name": "unset",
        "label": "unset: " + " and ".join(names) + " removed from the children's environment",
        "env": {k: v for k, v in os.environ.items() if k not in names},
    }
    if not present:
        asis["label"] = f"as set = unset ({described})"
        note = None
        if mode == "both":
            note = (
                "neither " + " nor ".join(names) + " is set here, so 'as set' and "
                "'unset' are the same environment: measured once"
            )
        return [asis], note
    return {"asis": [asis], "unset": [unset], "both": [asis, unset]}[mode], None


def run_child(framework: str, args, seed: int, env: dict) -> dict:
    """Run this script as ``--worker`` in a fresh process; its results and peak RSS.

    ``ru_maxrss`` of a child (os.wait4, or getrusage(RUSAGE_CHILDREN)) survives exec, so it is
    never below the parent's RSS at fork time: the parent holds only NumPy and the results (far
    below any child's data alone). The child's own ``VmHWM`` is reported too as a cross-check.
    """
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", framework]
    cmd += ["--model", args.model, "--epochs", str(args.epochs), "--repeats", "1"]
    cmd += ["--threads", str(args.threads), "--batch-size", str(args.batch_size)]
    cmd += ["--seed", str(seed), "--warmup-batches", str(args.warmup_batches)]
    # stderr is not captured: a child's warnings and tracebacks reach the terminal as they come.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    out = proc.stdout.read()
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    if proc.returncode != 0:
        raise RuntimeError(f"child for {framework} failed ({proc.returncode})")
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    result["ru_maxrss_mb"] = usage.ru_maxrss / 1024  # KiB on Linux
    result["peak_rss_mb"] = result["ru_maxrss_mb"]
    return result


def measure(frameworks: tuple, args, setting: dict) -> dict[str, list[dict]]:
    """All rounds for one OpenBLAS setting: round r runs one fresh child per framework."""
    runs: dict[str, list[dict]] = {f: [] for f in frameworks}
    for r in range(args.repeats):
        for f in frameworks:
            res = run_child(f, args, args.seed + r, setting["env"])
            runs[f].append(res)
            times = ", ".join(f"{t:.2f}" for t in res["epoch_times"])
            print(
                f"  [{setting['name']}] round {r + 1}/{args.repeats} {f:<8}: s/epoch {times} "
                f"(warm-up {_fmt_s(res['warmup_s'])}); train loss {res['train_loss']:.4f}, "
                f"test acc {res['test_acc']:.4f}, peak RSS {res['peak_rss_mb']:.0f} MiB, "
                f"NumPy's OpenBLAS core {res['env']['blas'].get('corename')}",
                flush=True,
            )
    return runs


def summarize(runs: dict[str, list[dict]]) -> dict:
    """Per framework: medians over all epochs of all rounds (and memory over the rounds); the
    Ember/PyTorch ratios, as median over median and as the median of per-round paired ratios."""
    fw = {}
    for f, rs in runs.items():
        all_times = [t for run in rs for t in run["epoch_times"]]
        memory = {
            key: statistics.median(run[key] for run in rs)
            for key in ("peak_rss_mb", "rss_after_imports_mb", "rss_after_data_mb", "vmhwm_mb")
        }
        fw[f] = {
            "median_epoch_s": statistics.median(all_times),
            "min_epoch_s": min(all_times),
            "epoch_times": all_times,
            "round_medians_s": [statistics.median(run["epoch_times"]) for run in rs],
            "warmup_s": [run["warmup_s"] for run in rs],
            "test_acc_last_run": rs[-1]["test_acc"],
            "train_loss_last_run": rs[-1]["train_loss"],
            "memory": memory,
        }
    ratios = {}
    for f in fw:
        if f == "ember" or "ember" not in fw:
            continue
        pairs = zip(fw["ember"]["round_medians_s"], fw[f]["round_medians_s"])
        ratios[f] = {
            "median": fw["ember"]["median_epoch_s"] / fw[f]["median_epoch_s"],
            "paired": statistics.median(e / t for e, t in pairs),
        }
    return {"frameworks": fw, "ratios_ember_over": ratios}


def _fmt_s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f} s"


def _fmt_time(times: list[float]) -> str:
    if not times:
        return "-"
    return f"{statistics.median(times):.2f} (min {min(times):.2f})"


def print_table(summary: dict, args) -> None:
    fw, ratios = summary["frameworks"], summary["ratios_ember_over"]
    columns = [f for f in FRAMEWORKS if f in fw]

    def mem(key):
        return lambda d: f"{d['memory'][key]:.0f}"

    rows = [
        ("s/epoch, median (min)", lambda d: _fmt_time(d["epoch_times"])),
        ("test accuracy (last run)", lambda d: f"{d['test_acc_last_run']:.4f}"),
        ("train loss, last epoch", lambda d: f"{d['train_loss_last_run']:.4f}"),
        (
            f"warm-up s (untimed; {args.warmup_batches} batches + eval)",
            lambda d: _fmt_time([t for t in d["warmup_s"] if t is not None]),
        ),
    ]
    if not args.skip_memory:
        rows += [
            (f"peak RSS MiB (child, {args.epochs} ep. + test)", mem("peak_rss_mb")),
            ("  RSS MiB after imports", mem("rss_after_imports_mb")),
            ("  RSS MiB after data load", mem("rss_after_data_mb")),
            ("  child's own VmHWM MiB", mem("vmhwm_mb")),
        ]
    table = [["", *(LABELS[f] for f in columns)]]
    table += [[name, *(fn(fw[f]) for f in columns)] for name, fn in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
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
            f"{r['paired']:.2f}x (median of the per-round paired ratios)"
        )


def _cores(setting: dict) -> list:
    """The OpenBLAS cores the children of one setting reported (one, unless something moved)."""
    found = {r["env"]["blas"].get("corename") for rs in setting["runs"].values() for r in rs}
    return sorted(found, key=str)


def collect_env(settings: list[dict], args, load_before, load_after) -> dict:
    """The footer's facts. Versions and BLAS come from the children (the first setting's):
    the parent has imported neither torch nor Ember."""
    first = settings[0]["runs"]
    child = {f: rs[0]["env"] for f, rs in first.items()}
    base = child.get("ember") or next(iter(child.values()))
    torch_env = next((child[f] for f in ("torch_cl", "torch") if f in child), {})
    blas = base["blas"]
    return {
        "python": base["python"],
        "numpy": base["numpy"],
        "torch": torch_env.get("torch", "-"),
        "torch_blas": torch_env.get("torch_blas", "-"),
        "torch_threads": torch_env.get("torch_threads"),
        "ember": base["ember"],
        "blas": f"{blas['name']} {blas['version']}",
        "blas_config": blas["config"],
        "blas_threads": blas["threads"],
        "blas_threads_via": blas["threads_via"],
        "blas_core_by_setting": {s["name"]: _cores(s) for s in settings},
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": args.threads,
        "parent_vmhwm_mb": _proc_status_mb("VmHWM"),
        "loadavg_1min_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "date": datetime.date.today().isoformat(),
        "command": shlex.join(getattr(sys, "orig_argv", [sys.executable, *sys.argv])),
    }


def print_footer(env: dict) -> None:
    by_setting = env["blas_core_by_setting"].items()
    cores = ", ".join(f"{'/'.join(map(str, v))} ({name})" for name, v in by_setting)
    print()
    print(
        f"versions : python {env['python']}, numpy {env['numpy']}, torch {env['torch']}, "
        f"ember {env['ember']}"
    )
    print(
        f"BLAS     : NumPy -> {env['blas']} ({env['blas_config']}); threads in use: "
        f"{env['blas_threads']} (via {env['blas_threads_via']}), core {cores}"
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
    before, after = env["loadavg_1min_before_after"]
    print(
        f"load avg : {before:.2f} before, {after:.2f} after (1-minute; "
        f"above {env['cores']} means other processes competed for the cores)"
    )
    print(f"date     : {env['date']}")
    print(f"command  : {env['command']}")


def main(args) -> dict:
    selected = args.only or FRAMEWORKS
    frameworks = tuple(f for f in RUN_ORDER if f in selected)
    if args.model == "mlp":  # channels_last is about images; the MLP has one torch layout
        frameworks = tuple(f for f in frameworks if f != "torch_cl")
    if not frameworks:
        sys.exit("nothing to run: torch_cl is for the convnet only")
    settings, note = openblas_settings(args.openblas)
    title = (
        f"MLP 784-{HIDDEN[0]}-{HIDDEN[1]}-{CLASSES}"
        if args.model == "mlp"
        else "Keras simple convnet (Conv32-Pool-Conv64-Pool-Dropout-Dense10)"
    )
    print(
        f"{title} on Fashion-MNIST, batch {args.batch_size}, Adam lr {LEARNING_RATE:g} eps "
        f"{EPSILON:g}; {args.repeats} round(s) x {args.epochs} epoch(s), {args.threads} "
        f"thread(s); one fresh child process per run, in the order {', '.join(frameworks)}",
        flush=True,
    )
    if note:
        print(f"OpenBLAS: {note}", flush=True)
    load_before = os.getloadavg()
    for s in settings:
        print(f"OpenBLAS {s['label']}", flush=True)
        s["load_before"] = os.getloadavg()
        s["runs"] = measure(frameworks, args, s)
        s["load_after"] = os.getloadavg()
    load_after = os.getloadavg()

    any_run = next(iter(settings[0]["runs"].values()))[0]
    print(f"\ndata: {any_run['n_train']} train / {any_run['n_test']} test images")
    for s in settings:
        s["summary"] = summarize(s["runs"])
        print(
            f"\nOpenBLAS {s['label']} (load avg {s['load_before'][0]:.2f} -> "
            f"{s['load_after'][0]:.2f})"
        )
        print_table(s["summary"], args)

    env = collect_env(settings, args, load_before, load_after)
    print_footer(env)
    result = {
        "openblas_note": note,
        "settings": [
            {k: s[k] for k in ("name", "label", "runs", "summary", "load_before", "load_after")}
            for s in settings
        ],
        "env": env,
        "args": vars(args),
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    if ARGS.worker:
        worker(ARGS.worker, ARGS)
    else:
        main(ARGS)
