"""Fast fused kernels, each beside the readable NumPy reference in :mod:`ember.ops` that the
tests compare it with.

The kernels are compiled with numba (``njit(parallel=True, cache=True)``): they stay plain Python
loops, run on every core, and compile once per machine (the machine code is cached next to this
package; a first call in a fresh environment takes a second or two per kernel). They do only
what NumPy does slowly — a pass that NumPy would split into several, or a scatter — and every
op keeps its NumPy path. The matrix products of the ops run on the same threads as the kernels
(``gemm.py``: NumPy's OpenBLAS called one thread per slab), which lets numba use OpenMP's
fast-starting threads (``_numba.py``); a child process forked after they started computes on
the NumPy path (GNU OpenMP cannot start again in it).

* ``EMBER_KERNELS=numpy`` (environment, read at import) selects the NumPy reference
  everywhere: the teaching path, and what the kernels are tested against;
* ``EMBER_KERNELS=numba`` requires the kernels (an ImportError when numba is missing);
* unset or ``auto``: the kernels when numba is installed, else NumPy.

:func:`use` switches for a block (the tests run every kernel against its reference)::

    >>> with ember.kernels.use("numpy"):
    ...     ember.kernels.active()
    False
"""

from __future__ import annotations

import importlib

# The selection lives in ember.backend (the one place that decides how arrays are computed).
from ember.backend import kernels_active as active
from ember.backend import kernels_available as available
from ember.backend import kernels_selection as selection
from ember.backend import use_kernels as use

__all__ = ["active", "available", "get", "selection", "use"]


def get(family: str):
    """The kernel module ``ember.kernels.<family>`` when kernels are active, else None."""
    if not active():
        return None
    return importlib.import_module(f"ember.kernels.{family}")
