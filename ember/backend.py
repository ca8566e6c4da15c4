"""The array module behind every Ember computation.

All hot-path array math goes through ``xp`` so that a CuPy (GPU) backend can replace NumPy later
without touching the ops. Only this module imports NumPy for computation; other modules may import
NumPy for I/O and validation of user data.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import os
import sys
from collections.abc import Iterator

import numpy as np

xp = np

#: The default floating dtype of new tensors and layer weights.
DEFAULT_FLOAT = np.float32

_FLOAT_DTYPES = {
    "float32": np.float32,
    "float64": np.float64,
    np.dtype(np.float32): np.float32,
    np.dtype(np.float64): np.float64,
    np.float32: np.float32,
    np.float64: np.float64,
}


def float_dtype(dtype=None) -> type:
    """Resolve a dtype spec (``"float32"``, ``np.float64``, ``None``) to a NumPy type."""
    if dtype is None:
        return DEFAULT_FLOAT
    try:
        return _FLOAT_DTYPES[dtype]
    except (KeyError, TypeError):
        raise TypeError(
            f"dtype must be 'float32' or 'float64', got {dtype!r}; Ember computes in floating "
            "point only (integer arrays are accepted as data, not as trainable tensors)"
        ) from None


def is_floating(array) -> bool:
    return xp.issubdtype(array.dtype, xp.floating)


# ---------------------------------------------------------------- kernels selection
# Which implementation the ops run where there are two: the fused kernels of ember.kernels
# (numba) or the NumPy reference beside them in ember.ops. EMBER_KERNELS=numpy|numba|auto.
_CHOICES = ("auto", "numba", "numpy")


def _numba_installed() -> bool:
    try:
        importlib.import_module("numba")
    except ImportError:
        return False
    return True


def _initial_selection() -> str:
    choice = os.environ.get("EMBER_KERNELS", "auto").strip().lower() or "auto"
    if choice not in _CHOICES:
        raise ValueError(
            f"EMBER_KERNELS must be one of {', '.join(_CHOICES)}, got {choice!r}"
        )
    return choice


_selection = _initial_selection()
_available: bool | None = None  # numba importable; checked on first use (import costs ~0.3 s)


def kernels_available() -> bool:
    """True when numba is installed, so the kernels can run."""
    global _available
    if _available is None:
        _available = _numba_installed()
        if _selection == "numba" and not _available:
            raise ImportError("EMBER_KERNELS=numba, but numba is not installed: pip install numba")
    return _available


def disable_kernels() -> None:
    """Send every op of this process down its NumPy path from now on, whatever the selection:
    for a child forked after numba's OpenMP threads started, which GNU OpenMP would terminate
    at its first parallel loop (``ember.kernels._numba``)."""
    global _available
    _available = False


def kernels_selection() -> str:
    """The current choice: ``"auto"``, ``"numba"`` or ``"numpy"``."""
    return _selection


def kernels_active() -> bool:
    """True when ops should call the kernels (the selection allows it and numba is there)."""
    return _selection != "numpy" and kernels_available()


@contextlib.contextmanager
def use_kernels(choice: str) -> Iterator[None]:
    """Select ``"numpy"``, ``"numba"`` or ``"auto"`` inside a ``with`` block.

    >>> with ember.backend.use_kernels("numpy"):
    ...     y = ember.ops.max_pool2d(np.ones((1, 2, 2, 1)))  # the NumPy reference
    """
    global _selection
    if choice not in _CHOICES:
        raise ValueError(
            f"use_kernels: choice must be one of {', '.join(_CHOICES)}, got {choice!r}"
        )
    previous = _selection
    _selection = choice
    try:
        if choice == "numba":
            kernels_available()
        yield
    finally:
        _selection = previous



# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: Arrays up to this size come from the heap and are reused after being freed (see below).
HEAP_ARRAY_LIMIT = 1 << 30


def tune_allocator() -> bool:
    """Let glibc keep freed large arrays for reuse instead of unmapping them.

    By default glibc serves every allocation above a (dynamic, at most 32 MiB) threshold with a
    fresh ``mmap`` and returns it with ``munmap`` when freed. A training step allocates and frees
    the same multi-megabyte activations, patch matrices and gradients every time, so each step
    page-faults all of them in again: measured on the Keras convnet (batch 128), ~8,500 minor
    page faults and ~25 % of the step time. Raising the mmap and trim thresholds to 1 GiB keeps
    that memory in the heap, where the next step reuses it (the role PyTorch's caching allocator
    plays). Peak memory is unchanged; freed memory is returned to the system when more than
    1 GiB of it sits at the top of the heap.

    Called once when Ember is imported, on Linux with glibc; set ``EMBER_MALLOC_TUNING=0`` to
    leave the allocator alone. Returns True when the settings were applied.
    """
    if os.environ.get("EMBER_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    if not hasattr(libc, "gnu_get_libc_version"):  # glibc only: other libcs differ
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    applied = mallopt(_M_MMAP_THRESHOLD, HEAP_ARRAY_LIMIT) == 1
    return mallopt(_M_TRIM_THRESHOLD, HEAP_ARRAY_LIMIT) == 1 and applied


ALLOCATOR_TUNED = tune_allocator()
