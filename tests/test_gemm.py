"""``ember.kernels.gemm``: the matrix products on numba's threads against NumPy's ``@``.

Every layout the kernel reads straight from memory (row- and column-major matrices, views with
a leading dimension wider than a row, broadcast batches), the ones it must copy (negative or
unaligned strides), each way of cutting a product among threads (rows, columns, the inner
dimension with its partial sums; batches), ``out=``, and the cases it leaves to NumPy (1-D,
mixed or integer dtypes, misaligned shapes: NumPy's own error). Also the process-level
promises: NumPy's OpenBLAS keeps its thread count and its threads stay idle while Ember trains,
and a child forked after the kernels ran still computes (on the NumPy path).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time

import numpy as np
import pytest

import ember
from ember import kernels

pytestmark = pytest.mark.skipif(not kernels.available(), reason="numba is not installed")

gemm = pytest.importorskip("ember.kernels.gemm") if kernels.available() else None
needs_blas = pytest.mark.skipif(
    gemm is None or not gemm.available,
    reason="NumPy's BLAS is not an OpenBLAS with a per-call thread count, or numba has no "
    "OpenMP/TBB threading layer: the products stay on NumPy's @",
)


@pytest.fixture
def cut_small(monkeypatch):
    """Thresholds low enough that small test products take the threaded paths."""
    monkeypatch.setattr(gemm, "_NUMPY_MAX_WORK", 0)
    monkeypatch.setattr(gemm, "_SERIAL_MAX_WORK", 0)


def _check(a: np.ndarray, b: np.ndarray, **kw) -> np.ndarray:
    """gemm.matmul(a, b) equals a float64 reference of np.matmul, in NumPy's dtype and shape."""
    result = gemm.matmul(a, b, **kw)
    reference = np.matmul(a.astype(np.float64), b.astype(np.float64))
    assert result.shape == np.matmul(a, b).shape
    assert result.dtype == np.result_type(a, b)
    tolerance = 2e-6 if result.dtype == np.float32 else 1e-13
    scale = max(float(np.abs(reference).max(initial=0.0)), 1.0)
    np.testing.assert_allclose(result, reference, rtol=0, atol=tolerance * scale * a.shape[-1])
    return result


def _views(x: np.ndarray):
    """``x`` as BLAS reads it directly and as it must be copied: C and Fortran order, a view
    into a wider array (leading dimension > columns), and a view with a step of 2 (copied)."""
    rows, cols = x.shape[-2:]
    wide = np.zeros((*x.shape[:-1], cols + 3), x.dtype)
    wide[..., :cols] = x
    strided = np.repeat(x, 2, axis=-1)[..., ::2]
    return {
        "C": x,
        "F": np.asfortranarray(x),
        "wide": wide[..., :cols],
        "strided": strided,
        "transposed-view": np.ascontiguousarray(np.swapaxes(x, -1, -2)).swapaxes(-1, -2),
    }


@needs_blas
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("split", ["rows", "columns", "inner"])
@pytest.mark.parametrize("shape", [(37, 23, 19), (1, 50, 9), (40, 1, 30), (64, 300, 1)])
def test_products_in_slabs_match_numpy(cut_small, monkeypatch, dtype, split, shape):
    monkeypatch.setattr(gemm, "_split", lambda m, n, k: getattr(gemm, f"_{split.upper()}"))
    m, k, n = shape
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    for view_a in _views(a).values():
        for view_b in _views(b).values():
            _check(view_a, view_b)


@needs_blas
@pytest.mark.parametrize("threads", [1, 2])
def test_the_shapes_of_a_training_step_match_numpy(threads):
    """Default thresholds, each path chosen by itself: the Keras convnet's products (rows, inner
    dimension), an LSTM step's (columns)."""
    import numba

    rng = np.random.default_rng(1)
    previous = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        cols = rng.standard_normal((15488, 288), dtype=np.float32)
        g = rng.standard_normal((15488, 64), dtype=np.float32)
        _check(cols, rng.standard_normal((288, 64), dtype=np.float32))
        _check(cols.T, g)
        _check(g, rng.standard_normal((288, 64), dtype=np.float32).T)
        _check(rng.standard_normal((64, 256), dtype=np.float32),
               rng.standard_normal((256, 1024), dtype=np.float32))  # fmt: skip
    finally:
        numba.set_num_threads(previous)


@needs_blas
@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize(
    "shape_a, shape_b",
    [
        ((6, 20, 8), (6, 8, 12)),
        ((6, 20, 8), (8, 12)),  # a matrix broadcast against a stack
        ((20, 8), (5, 8, 12)),
        ((2, 3, 20, 8), (3, 8, 12)),
        ((2, 1, 20, 8), (1, 4, 8, 12)),
    ],
)
def test_batches_match_numpy(monkeypatch, parallel, shape_a, shape_b):
    monkeypatch.setattr(gemm, "_NUMPY_MAX_WORK", 0)
    monkeypatch.setattr(gemm, "_BATCH_ENTRY_MIN_WORK", 0)
    monkeypatch.setattr(gemm, "_SERIAL_MAX_WORK", 0 if parallel else 1 << 60)
    rng = np.random.default_rng(2)
    for dtype in (np.float32, np.float64):
        a = rng.standard_normal(shape_a).astype(dtype)
        b = rng.standard_normal(shape_b).astype(dtype)
        for view_a in _views(a).values():
            for view_b in _views(b).values():
                _check(view_a, view_b)
        _check(a[..., ::-1, :], b)  # a negative stride: copied


@needs_blas
def test_out_is_written_in_place_or_through_a_copy(cut_small):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((30, 20)).astype(np.float32)
    b = rng.standard_normal((20, 10)).astype(np.float32)
    expected = a.astype(np.float64) @ b
    wide = np.full((30, 14), 7.0, np.float32)  # a view BLAS writes straight into
    result = gemm.matmul(a, b, out=wide[:, 2:12])
    assert np.shares_memory(result, wide)
    np.testing.assert_allclose(wide[:, 2:12], expected, atol=1e-4)
    assert (wide[:, :2] == 7).all() and (wide[:, 12:] == 7).all()
    fortran = np.zeros((30, 10), np.float32, order="F")  # not row-major: written by a copy
    assert gemm.matmul(a, b, out=fortran) is fortran
    np.testing.assert_allclose(fortran, expected, atol=1e-4)
    stack = np.zeros((4, 30, 10), np.float32)
    gemm.matmul(np.stack([a] * 4), b, out=stack)
    np.testing.assert_allclose(stack, np.broadcast_to(expected, stack.shape), atol=1e-4)


@needs_blas
def test_numpy_handles_what_the_kernel_does_not(cut_small):
    rng = np.random.default_rng(4)
    a32 = rng.standard_normal((8, 5)).astype(np.float32)
    b64 = rng.standard_normal((5, 3))
    assert gemm.matmul(a32, b64).dtype == np.float64  # mixed dtypes: NumPy's promotion
    ints = np.arange(6).reshape(2, 3)
    assert gemm.matmul(ints, ints.T).tolist() == (ints @ ints.T).tolist()
    np.testing.assert_allclose(gemm.matmul(a32, b64[:, 0]), a32 @ b64[:, 0], rtol=1e-6)  # 1-D
    with pytest.raises(ValueError, match="matmul"):
        gemm.matmul(a32, a32)  # (8, 5) @ (8, 5): NumPy's error
    with pytest.raises(ValueError):
        gemm.matmul(np.ones((2, 3, 4)), np.ones((5, 4, 2)))  # batches that do not broadcast
    aliased = rng.standard_normal((6, 6)).astype(np.float32)
    expected = aliased @ aliased
    gemm.matmul(aliased, aliased, out=aliased)  # out overlaps an operand: NumPy buffers it
    np.testing.assert_allclose(aliased, expected, rtol=1e-5, atol=1e-5)
    assert gemm.matmul(np.ones((0, 4), np.float32), np.ones((4, 3), np.float32)).shape == (0, 3)
    assert not gemm.matmul(np.ones((3, 0), np.float32), np.ones((0, 2), np.float32)).any()


@pytest.fixture
def numpy_blas_threads_2():
    """NumPy's OpenBLAS on two threads for the test (the session pins it to one: conftest.py),
    so that a count the products fail to restore shows."""
    from _helpers import openblas_thread_controls

    set_threads, get_threads = openblas_thread_controls() or pytest.skip("no OpenBLAS controls")
    session_threads = get_threads()
    set_threads(2)
    yield
    set_threads(session_threads)


def _numpy_blas_threads() -> int:
    from _helpers import openblas_thread_controls

    controls = openblas_thread_controls() or pytest.skip("no OpenBLAS controls")
    return controls[1]()


@needs_blas
@pytest.mark.usefixtures("numpy_blas_threads_2")
def test_numpy_keeps_its_blas_thread_count():
    """OpenBLAS's thread count is process-wide; each product sets it to 1 and puts it back."""
    before = _numpy_blas_threads()
    rng = np.random.default_rng(5)
    a = rng.standard_normal((2000, 300)).astype(np.float32)
    gemm.matmul(a, a.T[:, :100])  # threaded
    gemm.matmul(a[:50], a.T[:, :100])  # one thread
    gemm.matmul(np.stack([a[:300]] * 3), a.T[:, :200])  # a batch
    assert _numpy_blas_threads() == before == 2


@needs_blas
@pytest.mark.usefixtures("numpy_blas_threads_2")
def test_products_in_several_python_threads_at_once():
    """Each thread's results are right, and the count comes back: the first product to start
    saves it, the last to finish restores it."""
    from concurrent.futures import ThreadPoolExecutor

    before = _numpy_blas_threads()
    rng = np.random.default_rng(8)
    pairs = [(rng.standard_normal((700, 200)).astype(np.float32),
              rng.standard_normal((200, 150)).astype(np.float32)) for _ in range(4)]  # fmt: skip

    def products(pair):
        return [gemm.matmul(*pair) for _ in range(20)][-1]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(products, pairs))
    for (a, b), result in zip(pairs, results):
        np.testing.assert_allclose(result, a.astype(np.float64) @ b, atol=1e-3)
    assert _numpy_blas_threads() == before == 2


def _thread_ticks(thread_ids) -> int:
    total = 0
    for tid in thread_ids:
        try:
            with open(f"/proc/self/task/{tid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime, clock ticks
    return total


@needs_blas
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: no BLAS worker threads")
@pytest.mark.usefixtures("numpy_blas_threads_2")
def test_numpy_blas_threads_stay_idle_while_a_model_trains():
    """Every product of a training step runs on numba's threads: NumPy's OpenBLAS workers use no
    CPU at all. One product left on NumPy's ``@`` would wake them, and they would spin for
    ~0.1 s against the kernels. (The session runs NumPy's BLAS on one thread: two here.)"""
    import threading

    rng = np.random.default_rng(6)
    x = rng.standard_normal((1024, 28, 28, 1)).astype(np.float32)
    y = rng.integers(0, 10, 1024)
    model = ember.Sequential([
        ember.layers.Input((28, 28, 1)),
        ember.layers.Conv2D(16, 3, activation="relu"),
        ember.layers.MaxPooling2D(2),
        ember.layers.Conv2D(32, 3, activation="relu"),
        ember.layers.Flatten(),
        ember.layers.Dense(128, activation="relu"),
        ember.layers.Dense(10),
    ])  # fmt: skip
    model.compile("adam", ember.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x[:256], y[:256], batch_size=128, epochs=1, verbose=0)  # pools started
    time.sleep(0.3)  # numba's threads stop spinning
    workers = _blas_workers({str(threading.get_native_id())})
    assert workers, "NumPy's own threaded product ran on no other thread"
    time.sleep(0.3)  # and OpenBLAS's
    before = _thread_ticks(workers)
    model.fit(x, y, batch_size=128, epochs=2, verbose=0)
    assert _thread_ticks(workers) - before == 0


def _blas_workers(exclude: set) -> set:
    """NumPy's OpenBLAS worker threads: the threads that burn CPU while NumPy multiplies large
    matrices on its own, and that nothing else of this process runs on."""
    tids = set(os.listdir("/proc/self/task")) - exclude
    before = {tid: _thread_ticks([tid]) for tid in tids}
    a = np.ones((1500, 1500), np.float32)
    for _ in range(4):
        a @ a  # NumPy's own threaded product
    return {tid for tid in tids if _thread_ticks([tid]) > before[tid]}


def _train_in_child(queue) -> None:
    model = ember.Sequential([ember.layers.Dense(16, activation="relu"), ember.layers.Dense(1)])
    model.compile("adam", "mse")
    x = np.random.default_rng(7).standard_normal((512, 700)).astype(np.float32)
    history = model.fit(x, x[:, :1], batch_size=256, epochs=2, verbose=0)
    queue.put((kernels.active(), history.history["loss"][-1]))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork start method")
def test_a_child_forked_after_the_kernels_ran_still_trains():
    """GNU OpenMP terminates a forked child at its first parallel loop; Ember's child takes the
    NumPy path instead (and a spawned child is unaffected)."""
    a = np.ones((700, 700), np.float32)
    ember.ops.matmul(a, a)  # the kernels' threads are running now
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_train_in_child, args=(queue,))
    child.start()
    child.join(120)
    assert child.exitcode == 0, "the forked child died (GNU OpenMP's fork check?)"
    active, loss = queue.get(timeout=5)
    assert np.isfinite(loss)
    if gemm is not None and gemm.available:
        import numba

        if numba.threading_layer() == "omp":
            assert not active  # the NumPy path
