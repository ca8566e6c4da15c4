"""numba, configured for Ember before any kernel runs.

The threading layer is ``workqueue`` unless the user chose one (``NUMBA_THREADING_LAYER``):
numba's default on Linux is OpenMP, whose threads keep spinning for a while after each parallel
loop — measured on this 2-core machine, a (15488 × 288)ᵀ @ (15488 × 64) float32 OpenBLAS
product right after a tiny parallel kernel took 20 ms instead of 8. The workqueue threads
sleep when idle, and the same product then takes 8 ms.
"""

from __future__ import annotations

import os

import numba
from numba import njit, prange

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

__all__ = ["njit", "prange"]
