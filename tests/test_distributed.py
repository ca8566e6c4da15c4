"""ember.distributed: data-parallel training over MPI.

Two kinds of tests:

* in this process, the world of one process (the ``"local"`` backend, no MPI): the API, its
  argument checks, and ``fit(..., distribute=True)`` being exactly ``fit(...)`` there;
* under ``mpiexec -n 2`` and ``-n 3`` (the MPICH wheel's launcher, next to the venv's python):
  ``tests/dist_scripts/dist_train.py`` trains the digits MLP, a small convnet, a model fed by a
  shuffling DataLoader and one with a custom ``train_step``, 3 epochs each, and the final weights
  must equal this process's single-process runs within 1e-5 (and be bitwise the same on every
  rank); ``tests/dist_scripts/dist_fail.py`` makes rank 1 fail mid-training four ways, and the
  launcher must return an error status with a clear message instead of hanging (each launch is
  bounded by a 60 s timeout).

The MPI tests skip without mpi4py or mpiexec, and fail instead under ``EMBER_REQUIRE_MPI=1``
(as CI sets).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _helpers import ROOT, TESTS, child_env

import ember
from ember import distributed
from ember.distributed import _bounds

SCRIPTS = TESTS / "dist_scripts"
sys.path.insert(0, str(SCRIPTS))
import dist_train  # noqa: E402  (the runs the MPI scripts make, for the references here)

RUNS = ("mlp", "convnet", "loader", "custom")


@pytest.fixture(autouse=True)
def _fresh_world(monkeypatch):
    """Every test starts uninitialized; whatever it initializes is forgotten afterwards."""
    monkeypatch.setattr(distributed, "_world", None)
    for name in ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("EMBER_DIST_TIMEOUT", raising=False)


# ================================================================ one process, no MPI
def test_local_world_and_its_queries():
    with pytest.raises(RuntimeError, match=r"rank: call ember.distributed.init\(\) first"):
        distributed.rank()
    assert not distributed.is_initialized()
    info = distributed.init(timeout=5)
    assert info == distributed.WorldInfo(rank=0, size=1, backend="local", timeout=5.0)
    assert distributed.init() == info  # idempotent
    assert distributed.init(timeout=7).timeout == 7.0  # a later call may change the limit
    assert (distributed.rank(), distributed.size(), distributed.is_primary()) == (0, 1, True)
    distributed.barrier()
    with pytest.raises(ValueError, match="already initialized with backend 'local'"):
        distributed.init(backend="mpi")


def test_init_seed_and_timeout_from_the_environment(monkeypatch):
    monkeypatch.setenv("EMBER_DIST_TIMEOUT", "12.5")
    distributed.init(seed=3)
    a = ember.random.uniform((4,)).numpy()
    ember.manual_seed(3)
    assert np.array_equal(a, ember.random.uniform((4,)).numpy())
    assert distributed.init().timeout == 12.5


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"backend": "nccl"}, ValueError, "backend must be 'auto', 'mpi' or 'local', got 'nccl'"),
        ({"seed": -1}, ValueError, "seed must be a non-negative integer or None, got -1"),
        ({"seed": 1.5}, TypeError, "seed must be a non-negative integer or None, got float"),
        ({"timeout": 0}, ValueError, "timeout must be a finite number of seconds > 0, got 0"),
        ({"timeout": "10"}, TypeError, "timeout must be a number of seconds > 0, got str"),
    ],
)
def test_init_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        distributed.init(**kwargs)
    assert not distributed.is_initialized()  # nothing was set up


def test_init_rejects_a_bad_timeout_variable(monkeypatch):
    monkeypatch.setenv("EMBER_DIST_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="EMBER_DIST_TIMEOUT must be a number of seconds, got"):
        distributed.init()


def test_all_reduce_in_a_world_of_one_keeps_values_and_kinds():
    distributed.init()
    t = ember.tensor([1.0, 2.0], requires_grad=True)
    out = distributed.all_reduce(t, op="sum")
    assert isinstance(out, ember.Tensor) and out is not t and not out.requires_grad
    assert out.numpy().tolist() == [1.0, 2.0] and out.dtype == np.float32
    ints = distributed.all_reduce(np.array([3, 4], dtype=np.int32), op="min")
    assert ints.dtype == np.int32 and ints.tolist() == [3, 4]
    mean = distributed.all_reduce(np.array([3, 4], dtype=np.int64))
    assert mean.dtype == np.float64 and mean.tolist() == [3.0, 4.0]
    half = distributed.all_reduce(np.array([0.5], dtype=np.float16), op="max")
    assert half.dtype == np.float16 and half.tolist() == [0.5]
    assert distributed.all_reduce(7, op="sum") == 7 and distributed.all_reduce(2.5) == 2.5
    with pytest.raises(ValueError, match=r"all_reduce: op must be one of \('mean', 'sum'"):
        distributed.all_reduce(1.0, op="prod")
    with pytest.raises(TypeError, match="all_reduce: value must be an ember Tensor, a NumPy"):
        distributed.all_reduce("1.0")
    with pytest.raises(TypeError, match="all_reduce: value must hold numbers.*got dtype bool"):
        distributed.all_reduce(np.array([True]))


def test_distributed_optimizer_in_a_world_of_one_is_the_wrapped_optimizer():
    distributed.init()
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=(3, 2)).astype("float32"), None]
    a = [ember.tensor(np.ones((3, 2)), requires_grad=True), ember.tensor([1.0], requires_grad=True)]
    b = [ember.tensor(np.ones((3, 2)), requires_grad=True), ember.tensor([1.0], requires_grad=True)]
    plain = ember.optimizers.Adam(0.1)
    wrapped = distributed.DistributedOptimizer(ember.optimizers.Adam(0.1))
    for _ in range(3):
        plain.apply(grads, a)
        wrapped.apply(grads, b, weight=5)
    assert all(np.array_equal(p.numpy(), q.numpy()) for p, q in zip(a, b))
    assert wrapped.iterations == 3 and b[1].numpy().tolist() == [1.0]  # None: untouched
    wrapped.learning_rate = 0.01  # forwarded to the wrapped optimizer
    assert wrapped.optimizer.learning_rate == 0.01 and "Adam" in repr(wrapped)
    wrapped.apply_gradients(zip([np.ones((3, 2), "float32"), None], b))
    assert wrapped.iterations == 4


def test_distributed_optimizer_step_reads_and_writes_grad():
    distributed.init()
    w = ember.tensor([1.0, 2.0], requires_grad=True)
    opt = distributed.DistributedOptimizer(ember.optimizers.SGD([w], learning_rate=0.5))
    (w * w).sum().backward()
    opt.step()
    assert w.numpy().tolist() == [0.0, 0.0] and w.grad.tolist() == [2.0, 4.0]
    opt.zero_grad()
    assert w.grad is None


def test_distributed_optimizer_rejects_bad_input():
    distributed.init()
    with pytest.raises(TypeError, match="optimizer must be an ember optimizer.*got str"):
        distributed.DistributedOptimizer("adam")
    opt = distributed.DistributedOptimizer(ember.optimizers.SGD(0.1))
    w = ember.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"gradient 0 has shape \(3,\), its variable.*\(2,\)"):
        opt.apply([np.ones(3)], [w])
    with pytest.raises(ValueError, match="got 2 gradients for 1 variables"):
        opt.apply([np.ones(2), np.ones(2)], [w])
    with pytest.raises(ValueError, match="weight must be a finite number >= 0, got -1"):
        opt.apply([np.ones(2)], [w], weight=-1)
    with pytest.raises(TypeError, match=r"apply_gradients: expected \(gradient, variable\)"):
        opt.apply_gradients([np.ones(2)])
    assert w.numpy().tolist() == [1.0, 2.0] and opt.iterations == 0


def test_check_model_and_broadcast_weights_in_a_world_of_one():
    distributed.init()
    model = ember.models.zoo.linear((3,), 2)
    before = model.get_weights()
    distributed.check_model(model)
    distributed.broadcast_weights(model, root=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    with pytest.raises(TypeError, match="check_model: model must be an ember model or layer"):
        distributed.check_model([1, 2])
    with pytest.raises(ValueError, match=r"root must be a rank in \[0, 1\), got 1"):
        distributed.broadcast_weights(model, root=1)


def _dropout_model():
    ember.manual_seed(0)
    model = ember.models.Sequential([
        ember.layers.Input(shape=(64,)),
        ember.layers.Dense(16, activation="relu"),
        ember.layers.Dropout(0.3),
        ember.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_fit_distribute_without_a_launcher_is_exactly_fit():
    """A world of one process: the same weights, logs and generator state, bit for bit, even
    with dropout drawing from the generator."""
    x, y = dist_train.digits_data(100)
    results = []
    for distribute in (False, True):
        model = _dropout_model()
        history = model.fit(x, y, batch_size=16, epochs=2, verbose=0, validation_split=0.2,
                            distribute=distribute)
        results.append((model.get_weights(), history.history, ember.get_rng_state()))
    (w0, h0, s0), (w1, h1, s1) = results
    assert all(np.array_equal(a, b) for a, b in zip(w0, w1))
    assert h0 == h1 and s0 == s1
    assert distributed.is_initialized()  # fit(distribute=True) initialized the world


def test_fit_distribute_must_be_a_bool():
    model = _dropout_model()
    x, y = dist_train.digits_data(20)
    with pytest.raises(TypeError, match=r"fit: distribute must be True or False, got 'yes'"):
        model.fit(x, y, epochs=1, verbose=0, distribute="yes")


@pytest.mark.parametrize("m", [0, 1, 2, 5, 32, 33])
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_shards_cover_each_batch_once_in_order(m, n):
    bounds = [_bounds(m, r, n) for r in range(n)]
    assert bounds[0][0] == 0 and bounds[-1][1] == m
    assert all(bounds[r][1] == bounds[r + 1][0] for r in range(n - 1))
    sizes = [hi - lo for lo, hi in bounds]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


# ================================================================ under mpiexec
def _mpiexec() -> str:
    """The launcher of the MPICH wheel (next to the venv's python), after a check that mpi4py
    is installed; skips (or fails under EMBER_REQUIRE_MPI=1) otherwise."""
    launcher = Path(sys.executable).parent / "mpiexec"
    problem = None
    if importlib.util.find_spec("mpi4py") is None:
        problem = "mpi4py is not installed (pip install 'ember[dist]')"
    elif not launcher.exists():
        problem = f"no mpiexec next to {sys.executable} (the mpich wheel brings it)"
    if problem is not None:
        if os.environ.get("EMBER_REQUIRE_MPI") == "1":
            pytest.fail(f"EMBER_REQUIRE_MPI=1 but {problem}")
        pytest.skip(problem)
    return str(launcher)


def _start(n: int, script: str, *args: str, launcher_options=()) -> subprocess.Popen:
    env = child_env()
    env.update(NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")  # one core per rank
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    command = [_mpiexec(), *launcher_options, "-n", str(n), sys.executable,
               str(SCRIPTS / script), *args]
    # A session of its own, so a hung run is killed with all its ranks.
    return subprocess.Popen(command, cwd=str(ROOT), env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def _finish(process: subprocess.Popen, limit: float) -> tuple[int, str]:
    try:
        output, _ = process.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"the MPI run did not end within {limit} s (a hang):\n{output[-3000:]}")
    return process.returncode, output


@pytest.fixture(scope="module")
def mpi_runs(tmp_path_factory):
    """``{n: (output dir, launcher output)}`` for the training runs on 2 and 3 ranks."""
    _mpiexec()
    runs = {}
    for n in (2, 3):
        out = tmp_path_factory.mktemp(f"ranks{n}")
        code, output = _finish(_start(n, "dist_train.py", str(out)), 120)
        assert code == 0, f"mpiexec -n {n} failed:\n{output[-3000:]}"
        runs[n] = (out, output)
    return runs


@pytest.fixture(scope="module")
def references():
    """The same runs in this process, without distribute: the single-process trajectories."""
    previous = distributed._world
    distributed._world = None
    try:
        distributed.init()  # custom_run's DistributedOptimizer, in a world of one
        return {
            "mlp": dist_train.mlp_run(False),
            "convnet": dist_train.convnet_run(False),
            "loader": dist_train.loader_run(False),
            "custom": dist_train.custom_run(False),
            "nan": dist_train.nan_run(False),
        }
    finally:
        distributed._world = previous


def _rank_results(out: Path, n: int):
    return [
        (dict(np.load(out / f"rank{r}.npz")), json.loads((out / f"rank{r}.json").read_text()))
        for r in range(n)
    ]


@pytest.mark.parametrize("n", [2, 3])
def test_mpi_training_matches_the_single_process_run(mpi_runs, references, n):
    out, _ = mpi_runs[n]
    ranks = _rank_results(out, n)
    for name in RUNS:
        weights, history = references[name]
        for r, (arrays, logs) in enumerate(ranks):
            got = [arrays[f"{name}/{i}"] for i in range(len(weights))]
            worst = max(float(np.abs(g - w).max()) for g, w in zip(got, weights))
            assert worst <= 1e-5, f"{name}: rank {r} of {n} is {worst} away from 1 process"
            if r:  # the ranks hold the very same model
                first = [ranks[0][0][f"{name}/{i}"] for i in range(len(weights))]
                assert all(np.array_equal(a, b) for a, b in zip(got, first)), (name, r)
            assert sorted(logs[name]) == sorted(history), name
            for key, values in history.items():  # losses and metrics over the whole world
                np.testing.assert_allclose(logs[name][key], values, rtol=1e-5, atol=1e-6,
                                           err_msg=f"{name} {key} on rank {r} of {n}")
    assert len({logs["rng_after"] for _, logs in ranks}) == 1  # one shared stream afterwards


@pytest.mark.parametrize("n", [2, 3])
def test_mpi_non_finite_loss_on_one_rank_stops_every_rank_alike(mpi_runs, references, n):
    weights, message = references["nan"]
    assert message.startswith("linear.fit: the loss became nan at epoch 1, batch 2 of 2")
    for arrays, logs in _rank_results(mpi_runs[n][0], n):
        assert logs["nan"] == message  # the same error on every rank
        got = [arrays[f"nan/{i}"] for i in range(len(weights))]
        # the weights after the first batch: the NaN batch was skipped everywhere
        assert max(float(np.abs(g - w).max()) for g, w in zip(got, weights)) <= 1e-5


@pytest.mark.parametrize("n", [2, 3])
def test_mpi_custom_step_updating_without_averaging_is_refused(mpi_runs, n):
    for _, logs in _rank_results(mpi_runs[n][0], n):
        assert logs["unaveraged"].endswith(
            "train_step changed the weights without averaging the gradients over the ranks, so "
            "the ranks' models now differ; in a custom train_step wrap each optimizer in "
            "ember.distributed.DistributedOptimizer"
        )


@pytest.mark.parametrize("n", [2, 3])
def test_mpi_low_level_operations(mpi_runs, n):
    out, _ = mpi_runs[n]
    total = n * (n + 1) / 2
    squares = sum((r + 1) ** 2 for r in range(n))
    ranks = _rank_results(out, n)
    first = ranks[0][1]["checks"]
    for r, (_, logs) in enumerate(ranks):
        checks = logs["checks"]
        assert logs["info"] == {"rank": r, "size": n, "backend": "mpi", "timeout": 60.0}
        assert checks["sum"] == [total, 2.0 * n]
        assert checks["mean"] == [(n - 1) / 2]
        assert checks["max"] == [n - 1] and checks["min_dtype"] == "int32"
        assert checks["scalar"] == n * (n - 1) / 2
        # weights r + 1, gradients [r + 1, 0]: sum_r (r+1)^2 / sum_r (r+1); a gradient missing
        # everywhere leaves its variable alone; missing on rank 0 only counts as zero there
        w, unused, partial = checks["weighted"]
        np.testing.assert_allclose(w, [1 - squares / total, 1.0], rtol=1e-6)
        assert unused == [5.0]
        np.testing.assert_allclose(partial, [-(total - 1) / total], rtol=1e-6)
        value, grad, iterations = checks["step"]
        np.testing.assert_allclose(value, [-(n - 1) / 2, -1.0])
        np.testing.assert_allclose(grad, [(n - 1) / 2, 1.0])  # .grad holds the average
        assert iterations == 1
        assert checks["broadcast"] == [float(n - 1)]  # every weight from the last rank
        # every rank starts from rank 0's optimizer state (and weights)...
        assert checks["optimizer_state"] == first["optimizer_state"]
        # ...which must exist on every rank: here rank 0 alone has trained
        assert checks["optimizer_mismatch"].startswith(
            "linear.fit: the optimizer state of rank 1 differs from rank 0's ({'class': 'Adam', "
            "'iterations': 0, 'params': 0, 'slots': []} vs {'class': 'Adam', 'iterations': 1"
        ), checks["optimizer_mismatch"]
        assert checks["mismatch"] == (
            "ember.distributed.check_model: the ranks did not build the same model: at layer "
            "'dense': rank 0 has dense.kernel (64, 32) float32, rank 1 has dense.kernel (64, 16) "
            "float32. Every rank must build the same architecture (same layers, sizes and "
            "trainable flags)"
        )


def test_mpi_only_rank_0_prints_and_writes(mpi_runs, references):
    out, output = mpi_runs[3]
    for epoch in (1, 2, 3):
        assert output.count(f"Epoch {epoch}/3 - loss: ") == 1, output
    files = sorted(p.name for p in out.iterdir() if not p.name.startswith("rank"))
    assert files == ["ckpt-rank0.ember", "log-rank0.csv"]
    assert len((out / "log-rank0.csv").read_text().splitlines()) == 4  # header + 3 epochs
    saved = ember.models.load_model(out / "ckpt-rank0.ember").get_weights()
    final = _rank_results(out, 3)[0][0]
    assert all(np.array_equal(w, final[f"mlp/{i}"]) for i, w in enumerate(saved))


@pytest.mark.parametrize("n", [2, 3])
def test_mpi_batchnorm_moving_statistics_agree(mpi_runs, n):
    out, _ = mpi_runs[n]
    ranks = _rank_results(out, n)
    keys = sorted(k for k in ranks[0][0] if k.startswith("batchnorm/"))
    assert len(keys) == 4  # two batch normalizations: moving mean and variance each
    for arrays, _ in ranks[1:]:
        assert all(np.array_equal(arrays[k], ranks[0][0][k]) for k in keys)
    assert not np.array_equal(ranks[0][0][keys[0]], 0)  # they were updated


# Each failure: (mode, launcher options, what the output must say).
FAILURES = {
    "kill": ((), "Killed (signal 9)"),
    "raise": ((), "ember.distributed: rank 1 of 2 stopped with an uncaught RuntimeError; "
                  "aborting all 2 ranks"),
    "exit": ((), "ember.distributed: rank 1 of 2 left mlp.fit(distribute=True) by SystemExit"),
    "vanish": (("-disable-auto-cleanup",),
               "DistributedError: ember.distributed: rank 0 of 2 waited 3 s for"),
}


@pytest.fixture(scope="module")
def failure_runs():
    """The four failure runs, started together (they mostly wait) and each bounded."""
    _mpiexec()
    started = {mode: _start(2, "dist_fail.py", mode, launcher_options=options)
               for mode, (options, _) in FAILURES.items()}
    return {mode: _finish(process, 60) for mode, process in started.items()}


@pytest.mark.parametrize("mode", list(FAILURES))
def test_mpi_failing_rank_ends_the_run_with_an_error(failure_runs, mode):
    code, output = failure_runs[mode]
    assert code != 0, f"{mode}: the launcher reported success:\n{output[-3000:]}"
    assert FAILURES[mode][1] in output, output[-3000:]
    assert "training finished" not in output


def test_mpiexec_comes_from_the_mpich_wheel_and_mpi4py_uses_it():
    launcher = _mpiexec()
    code = "from mpi4py import MPI; print(MPI.Get_library_version().splitlines()[0])"
    result = subprocess.run([launcher, "-n", "1", sys.executable, "-c", code], env=child_env(),
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("MPICH Version:"), result.stdout
    assert shutil.which("mpiexec", path=str(Path(sys.executable).parent)) == launcher
