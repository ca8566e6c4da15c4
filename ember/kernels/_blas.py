"""NumPy's own OpenBLAS, callable from numba's threads one BLAS thread at a time.

``BLAS`` is ``(sgemm, dgemm, set_threads)`` — the CBLAS ``cblas_?gemm`` of the OpenBLAS NumPy is
linked with (NumPy's wheels name it ``scipy_cblas_?gemm64_``: 64-bit integers) and its
``openblas_set_num_threads_local`` (OpenBLAS ≥ 0.3.27; it returns the previous count, which
``gemm.py`` restores) — or None when NumPy's BLAS is something else (MKL, Accelerate, an older
OpenBLAS). Then the products stay on NumPy's ``@`` and numba keeps its sleeping ``workqueue``
threads (``_numba.py``).

NumPy's OpenBLAS rather than SciPy's (``scipy.linalg.cython_blas``, also OpenBLAS): one library
for every product of the process, so no second pool of BLAS threads ever wakes, and NumPy's is
the newer build — the LSTM's 64×256 @ 256×1024 product takes 237 µs on one thread in NumPy's
OpenBLAS 0.3.31 against 314 in SciPy's 0.3.30.
"""

from __future__ import annotations

import ctypes

# (CBLAS name of sgemm, of dgemm, integer type): NumPy ≥ 2 wheels, NumPy 1.x wheels, a system
# OpenBLAS (whose integer width its configuration string tells)
_NAMES = (
    ("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_", ctypes.c_int64),
    ("cblas_sgemm64_", "cblas_dgemm64_", ctypes.c_int64),
    ("cblas_sgemm", "cblas_dgemm", None),
)
_CONFIG_NAMES = ("scipy_openblas_get_config64_", "openblas_get_config64_", "openblas_get_config")
_POINTER = ctypes.c_void_p
SET_THREADS_TYPE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)


def _gemm_type(real, integer):
    """``cblas_?gemm(order, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)``."""
    enum = ctypes.c_int
    return ctypes.CFUNCTYPE(None, enum, enum, enum, integer, integer, integer, real, _POINTER,
                            integer, _POINTER, integer, real, _POINTER, integer)  # fmt: skip


def _config(library) -> str:
    for name in _CONFIG_NAMES:
        function = getattr(library, name, None)
        if function is not None:
            function.restype = ctypes.c_char_p
            return function().decode("ascii", "replace")
    return ""


def _umath():
    """NumPy's compiled core, the module linked with its BLAS."""
    try:
        from numpy._core import _multiarray_umath
    except ImportError:  # NumPy 1.x
        from numpy.core import _multiarray_umath
    return _multiarray_umath


def _find():
    try:
        library = ctypes.CDLL(_umath().__file__)  # dlsym also searches the libraries it links
        set_threads = library.openblas_set_num_threads_local
    except (OSError, AttributeError):
        return None
    found = [names for names in _NAMES if all(hasattr(library, n) for n in names[:2])]
    if not found:
        return None
    single, double, integer = found[0]
    if integer is None:
        integer = ctypes.c_int64 if "USE64BITINT" in _config(library) else ctypes.c_int
    address = lambda name: ctypes.cast(getattr(library, name), _POINTER).value  # noqa: E731
    return (
        _gemm_type(ctypes.c_float, integer)(address(single)),
        _gemm_type(ctypes.c_double, integer)(address(double)),
        SET_THREADS_TYPE(ctypes.cast(set_threads, _POINTER).value),
    )


BLAS = _find()
