"""numba, configured for Ember before any kernel runs.

The threading layer is OpenMP (else TBB, else ``workqueue``) when ``ember.kernels.gemm`` can run
the matrix products on numba's own threads (NumPy's OpenBLAS, one BLAS thread per call:
``_blas.py``), else ``workqueue``; a user's ``NUMBA_THREADING_LAYER`` wins. Why it matters on a
2-core machine: OpenMP's threads spin a while after each parallel loop, so a loop starts in ~2 µs
— but spinning threads steal a core from any other pool. While the products ran on OpenBLAS's
own threads (which spin too, ~0.1 s after each product), OpenMP made an OpenBLAS product right
after a tiny kernel take 4.6 ms instead of 2.5, so numba had to sleep between loops
(``workqueue``: ~140 µs to start one). With the products on numba's threads there is one pool
and it may spin: the Keras convnet's training step, 22.4 → 17.5 ms (BENCHMARKS.md).
"""

from __future__ import annotations

import functools
import os

import numba
import numpy as np
from numba import prange

from ember import backend
from ember.kernels._blas import BLAS

if "NUMBA_THREADING_LAYER" not in os.environ:
    if BLAS is not None:
        numba.config.THREADING_LAYER_PRIORITY = ["omp", "tbb", "workqueue"]
        numba.config.THREADING_LAYER = "default"
    else:
        numba.config.THREADING_LAYER = "workqueue"


def _numpy_path_in_forked_child() -> None:
    """A child forked (``os.fork``, multiprocessing's "fork") after numba's OpenMP threads
    started cannot start them again: GNU OpenMP terminates it at its first parallel loop
    ("fork() called from a process already using GNU OpenMP"). Such a child computes on the
    NumPy path instead — correct, only slower; a child that spawns, or forks before any kernel
    ran, keeps the kernels."""
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel loop ran before the fork
        return
    if layer == "omp":
        backend.disable_kernels()


os.register_at_fork(after_in_child=_numpy_path_in_forked_child)

# NumPy's float semantics (x / 0 gives inf or NaN), as the NumPy references have them. numba's
# default ("python") checks every division for zero to raise ZeroDivisionError, and that branch
# keeps LLVM from vectorizing the loop: the fused Adam update ran 4.5x slower with it.
njit = functools.partial(numba.njit, error_model="numpy")



@njit(parallel=True, cache=True)
def _start_threads(x):  # pragma: no cover - compiled
    for i in prange(x.size):
        x[i] = i


@functools.cache
def loops_start_fast() -> bool:
    """Whether numba's parallel loops start in microseconds (OpenMP's or TBB's threads) rather
    than ~140 µs (``workqueue``'s: no OpenMP runtime, or the user's choice). Kernels that are
    worth threading only when starting is cheap (a small step, a weight update) ask this."""
    _start_threads(np.empty(2, np.int64))  # numba picks its layer at the first parallel loop
    return numba.threading_layer() != "workqueue"


__all__ = ["loops_start_fast", "njit", "prange"]
