"""numba, configured for Ember before any kernel runs.

The threading layer is ``workqueue`` unless the user chose one (``NUMBA_THREADING_LAYER``):
numba's default on Linux is OpenMP, whose threads keep spinning for a while after each parallel
loop — measured on this 2-core machine, a (15488 × 288)ᵀ @ (15488 × 64) float32 OpenBLAS
product right after a tiny parallel kernel took 4.6 ms instead of 2.5 (20 instead of 8 while
other jobs ran), and the convnet's training step 40 ms instead of 36.7. The workqueue threads
sleep when idle (the product: 2.6 ms); the price is ~100 µs to start each parallel loop, so
kernels made of many small launches (a per-parameter optimizer update) do not pay here.
"""

from __future__ import annotations

import functools
import os

import numba
from numba import prange

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

# NumPy's float semantics (x / 0 gives inf or NaN), as the NumPy references have them. numba's
# default ("python") checks every division for zero to raise ZeroDivisionError, and that branch
# keeps LLVM from vectorizing the loop: the fused Adam update ran 4.5x slower with it.
njit = functools.partial(numba.njit, error_model="numpy")

__all__ = ["njit", "prange"]
