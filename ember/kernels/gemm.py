"""Matrix products on numba's threads: ``matmul(a, b)`` is ``np.matmul(a, b)``, with the BLAS
called single-threaded from inside numba's parallel loops instead of on BLAS's own threads.

Why: the fast kernels and the products then share one pool of threads. With NumPy's ``@`` the
products run on OpenBLAS's threads, whose worker keeps spinning for ~0.1 s after each product
and so takes the second core away from the next numba kernel; and numba's own threads, which
then had to sleep between loops (the ``workqueue`` layer), cost ~140 µs to start each parallel
loop. With every product of a training step here, numba runs on OpenMP threads (~2 µs to start
a loop) and nothing else competes for the cores: the Keras convnet's training step went from
22.4 to 17.5 ms (OpenBLAS's SkylakeX kernels) and from 24.8 to 20.5 ms (its Haswell kernels);
BENCHMARKS.md has the epochs against PyTorch.

How: a product is cut into one slab per thread — of rows, of columns, or of the inner dimension
(the slabs' partial products then added) — and a batch of products is shared out whole; each
slab is one CBLAS call into NumPy's own OpenBLAS (``_blas.py``) with OpenBLAS's thread count at
1. That count is process-wide in OpenBLAS's pthreads builds (``openblas_set_num_threads_local``
is local only in its OpenMP builds), so it is set before the loop and restored after (counted
across Python threads): a NumPy product another Python thread runs meanwhile gets one thread. Small
products stay on NumPy's ``@`` (below 2¹⁸ multiply-adds OpenBLAS uses one thread anyway, and
NumPy's call costs ~1 µs against ~10 here); up to 2²¹ they are one BLAS call on this thread.

The reference is NumPy's ``@``; tests/test_gemm.py compares the two on every layout handled.
"""

from __future__ import annotations

import math
import threading

import numba
import numpy as np

from ember.kernels._blas import BLAS
from ember.kernels._numba import loops_start_fast, njit, prange

#: Whether the products belong on numba's threads: NumPy's BLAS can be made single-threaded per
#: call (``_blas.py``), and numba's loops start fast (under ``workqueue`` the products are better
#: left on OpenBLAS's own threads).
available = BLAS is not None and loops_start_fast()

# Below this many multiply-adds NumPy's ``@``; up to the second, one BLAS call on this thread;
# above, all threads (see the module doc).
_NUMPY_MAX_WORK = 1 << 18
_SERIAL_MAX_WORK = 1 << 21
# A batch of tinier products is NumPy's: a BLAS call per 4×4 product costs more than NumPy's own
# loop (100,000 of them: 8.9 against 3.2 ms; 8×8 ones: 0.89 against 1.09)
_BATCH_ENTRY_MIN_WORK = 1 << 8

_ROWS, _COLUMNS, _INNER = 0, 1, 2
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112  # CBLAS's enums


@njit(cache=True)
def _call(gemm, trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, one, zero):
    # pragma: no cover - compiled
    """``C (m×n) = op(A) @ op(B)``, row-major, by CBLAS (on this thread alone: the caller has set
    OpenBLAS's thread count to 1)."""
    gemm(_ROW_MAJOR, _TRANS if trans_a else _NO_TRANS, _TRANS if trans_b else _NO_TRANS, m, n, k,
         one, a, lda, b, ldb, zero, c, ldc)  # fmt: skip


@njit(cache=True)
def _slab(gemm, a, b, c, partial, one, zero, item, trans_a, trans_b, lda, ldb, ldc,
          m, n, k, split, slabs, t):  # fmt: skip  # pragma: no cover - compiled
    """Slab ``t`` of ``slabs`` of the product, on this thread."""
    extent = m if split == _ROWS else (n if split == _COLUMNS else k)
    lo = extent * t // slabs
    hi = extent * (t + 1) // slabs
    if hi <= lo:
        return
    if split == _ROWS:
        a += np.uint64((lo if trans_a else lo * lda) * item)
        c += np.uint64(lo * ldc * item)
        m = hi - lo
    elif split == _COLUMNS:
        b += np.uint64((lo * ldb if trans_b else lo) * item)
        c += np.uint64(lo * item)
        n = hi - lo
    else:
        a += np.uint64((lo * lda if trans_a else lo) * item)
        b += np.uint64((lo if trans_b else lo * ldb) * item)
        if t > 0:  # the partial products, added up afterwards
            c = partial + np.uint64((t - 1) * m * n * item)
            ldc = n
        k = hi - lo
    _call(gemm, trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, one, zero)


@njit(parallel=True, cache=True)
def _product_parallel(gemm, a, b, c, partial, one, zero, item, trans_a, trans_b, lda, ldb, ldc,
                      m, n, k, split, slabs):  # fmt: skip  # pragma: no cover - compiled
    for t in prange(slabs):
        _slab(gemm, a, b, c, partial, one, zero, item, trans_a, trans_b, lda, ldb,
              ldc, m, n, k, split, slabs, t)  # fmt: skip


@njit(cache=True)
def _product_serial(gemm, a, b, c, one, zero, trans_a, trans_b, lda, ldb, ldc, m, n, k):
    # pragma: no cover - compiled
    _call(gemm, trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc, one, zero)


@njit(cache=True)
def _entry(gemm, a, b, c, offsets, i, one, zero, trans_a, trans_b, lda, ldb, ldc, m, n, k):
    # pragma: no cover - compiled
    """Product ``i`` of a batch: ``offsets[0|1|2, i]`` are the byte offsets of its matrices."""
    a_i = a + np.uint64(offsets[0, i])
    b_i = b + np.uint64(offsets[1, i])
    c_i = c + np.uint64(offsets[2, i])
    _call(gemm, trans_a, trans_b, m, n, k, a_i, lda, b_i, ldb, c_i, ldc, one, zero)


@njit(parallel=True, cache=True)
def _batch_parallel(gemm, a, b, c, offsets, one, zero, trans_a, trans_b, lda, ldb, ldc, m, n, k):
    # pragma: no cover - compiled
    """The products of a batch, each whole on one thread."""
    for i in prange(offsets.shape[1]):
        _entry(gemm, a, b, c, offsets, i, one, zero, trans_a, trans_b, lda, ldb, ldc, m, n, k)


@njit(cache=True)
def _batch_serial(gemm, a, b, c, offsets, one, zero, trans_a, trans_b, lda, ldb, ldc, m, n, k):
    # pragma: no cover - compiled
    for i in range(offsets.shape[1]):
        _entry(gemm, a, b, c, offsets, i, one, zero, trans_a, trans_b, lda, ldb, ldc, m, n, k)


class _OneBlasThread:
    """``with _ONE_BLAS_THREAD:`` OpenBLAS's (process-wide) thread count is 1 inside, and what it
    was before afterwards — also when products run in several Python threads at once: the first
    to enter saves the count, the last to leave restores it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inside = 0
        self._saved = 0

    def __enter__(self) -> None:
        with self._lock:
            if self._inside == 0:
                self._saved = BLAS[2](1)
            self._inside += 1

    def __exit__(self, *exc) -> None:
        with self._lock:
            self._inside -= 1
            if self._inside == 0:
                BLAS[2](self._saved)


_ONE_BLAS_THREAD = _OneBlasThread()
_ONE_ZERO = {np.dtype(t): (t(1), t(0)) for t in (np.float32, np.float64)}
_NO_OFFSETS = np.zeros(1, dtype=np.int64)


def _layout(x: np.ndarray) -> tuple[bool, int] | None:
    """``(transposed, leading dimension)`` of the matrices in the last two axes of ``x`` as BLAS
    reads them, or None when it cannot (negative, unaligned or overlapping strides)."""
    rows, cols = x.shape[-2:]
    item = x.itemsize
    row_step, col_step = x.strides[-2:]
    if rows == 1:  # a stride along an axis of length 1 is arbitrary
        row_step = max(cols, 1) * item
    if cols == 1:
        col_step = item
    if col_step == item and row_step % item == 0 and row_step >= max(cols, 1) * item:
        return False, row_step // item
    if row_step == item and col_step % item == 0 and col_step >= max(rows, 1) * item:
        return True, col_step // item
    return None


def _batch_offsets(x: np.ndarray, batch_shape: tuple) -> np.ndarray | None:
    """The byte offset of each matrix of ``x`` in the broadcast batch (flattened), or None for
    a negative stride."""
    x_batch = x.shape[:-2]
    lead = len(batch_shape) - len(x_batch)
    offsets = np.zeros(batch_shape, dtype=np.int64)
    for axis, (size, step) in enumerate(zip(x_batch, x.strides[:-2])):
        if size == 1:
            continue
        if step < 0:
            return None
        shape = [1] * len(batch_shape)
        shape[lead + axis] = size
        offsets += (np.arange(size, dtype=np.int64) * step).reshape(shape)
    return offsets.reshape(-1)


def _operand(x: np.ndarray, batch_shape: tuple):
    """``(array, transposed, leading dimension, offsets)`` for BLAS; ``x`` is copied only when
    BLAS cannot read its strides."""
    layout = _layout(x)
    offsets = _batch_offsets(x, batch_shape) if batch_shape else _NO_OFFSETS
    if layout is None or offsets is None:
        x = np.ascontiguousarray(x)
        layout = _layout(x)
        offsets = _batch_offsets(x, batch_shape) if batch_shape else _NO_OFFSETS
    return x, layout[0], layout[1], offsets


def _row_major(x: np.ndarray, batch_shape: tuple) -> bool:
    """Whether BLAS can write the product straight into ``x`` (row-major matrices)."""
    layout = _layout(x)
    if layout is None or layout[0]:
        return False
    return not batch_shape or _batch_offsets(x, batch_shape) is not None


def _split(m: int, n: int, k: int) -> int:
    """How a product is cut among threads: along the inner dimension when it dwarfs the output
    (a kernel gradient ``colsᵀ @ g``: slabs of rows would each read all of ``g``), else along
    the longer side of the output."""
    if k >= 8 * max(m, n):
        return _INNER
    return _ROWS if m >= n else _COLUMNS


def _falls_to_numpy(a, b, out) -> bool:
    """Whether NumPy computes ``a @ b``: outside the float32/float64 matrix products this module
    handles, or an ``out`` that overlaps an operand (NumPy buffers that case)."""
    if (
        not available
        or a.ndim < 2
        or b.ndim < 2
        or a.dtype != b.dtype
        or a.dtype not in _ONE_ZERO
        or a.shape[-1] != b.shape[-2]
    ):
        return True
    if out is not None and (
        out.dtype != a.dtype
        or not out.flags.writeable
        or np.may_share_memory(out, a)
        or np.may_share_memory(out, b)
    ):
        return True
    return False


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``np.matmul(a, b, out=out)``, its products run as the module doc says; what it does not
    handle (1-D operands, integer or mixed dtypes, misaligned shapes: NumPy's error) is NumPy's.

    >>> a = np.arange(6, dtype=np.float32).reshape(2, 3)
    >>> matmul(a, a.T).tolist()
    [[5.0, 14.0], [14.0, 50.0]]
    """
    if _falls_to_numpy(a, b, out):
        return np.matmul(a, b, out=out)
    if a.ndim == 2 and b.ndim == 2:
        return _matrix_product(a, b, out)
    return _batch_product(a, b, out)


def _matrix_product(a: np.ndarray, b: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """:func:`matmul` of two matrices: cut into slabs, one per thread (or on this thread alone
    when small)."""
    m, k = a.shape
    n = b.shape[1]
    work = m * n * k
    if work == 0 or work < _NUMPY_MAX_WORK or (out is not None and out.shape != (m, n)):
        return np.matmul(a, b, out=out)
    c = out if out is not None and _row_major(out, ()) else np.empty((m, n), dtype=a.dtype)
    a, trans_a, lda, _ = _operand(a, ())
    b, trans_b, ldb, _ = _operand(b, ())
    gemm = BLAS[0] if a.dtype == np.float32 else BLAS[1]
    one, zero = _ONE_ZERO[a.dtype]
    pointers = (a.ctypes.data, b.ctypes.data, c.ctypes.data)
    shape = (trans_a, trans_b, lda, ldb, _layout(c)[1], m, n, k)
    slabs = numba.get_num_threads() if work > _SERIAL_MAX_WORK else 1
    if slabs == 1:
        with _ONE_BLAS_THREAD:
            _product_serial(gemm, *pointers, one, zero, *shape)
        return _result(c, out)
    split = _split(m, n, k) if k >= slabs else _ROWS  # every slab of k must write its part
    partial = np.empty((slabs - 1, m, n) if split == _INNER else (0,), dtype=a.dtype)
    with _ONE_BLAS_THREAD:
        _product_parallel(gemm, *pointers, partial.ctypes.data, one, zero, a.itemsize, *shape,
                          split, slabs)  # fmt: skip
    if split == _INNER:
        c += partial.sum(axis=0) if slabs > 2 else partial[0]
    return _result(c, out)


def _batch_product(a: np.ndarray, b: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """:func:`matmul` of stacks of matrices (batch axes broadcast): each product whole on one
    thread."""
    try:
        batch_shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        return np.matmul(a, b, out=out)  # NumPy's error
    m, k = a.shape[-2:]
    n = b.shape[-1]
    shape = (*batch_shape, m, n)
    count = math.prod(batch_shape)
    work = m * n * k * count
    if (
        work == 0
        or work < _NUMPY_MAX_WORK
        or m * n * k < _BATCH_ENTRY_MIN_WORK
        or (out is not None and out.shape != shape)
    ):
        return np.matmul(a, b, out=out)
    c = out if out is not None and _row_major(out, batch_shape) else np.empty(shape, a.dtype)
    a, trans_a, lda, a_offsets = _operand(a, batch_shape)
    b, trans_b, ldb, b_offsets = _operand(b, batch_shape)
    offsets = np.stack([a_offsets, b_offsets, _batch_offsets(c, batch_shape)])
    gemm = BLAS[0] if a.dtype == np.float32 else BLAS[1]
    run = _batch_parallel if work > _SERIAL_MAX_WORK else _batch_serial
    with _ONE_BLAS_THREAD:
        run(gemm, a.ctypes.data, b.ctypes.data, c.ctypes.data, offsets, *_ONE_ZERO[a.dtype],
            trans_a, trans_b, lda, ldb, _layout(c)[1], m, n, k)  # fmt: skip
    return _result(c, out)


def _result(c: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """``c``, copied into ``out`` when BLAS could not write there directly."""
    if out is None or c is out:
        return c
    out[...] = c
    return out
