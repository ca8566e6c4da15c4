"""The array module behind every Ember computation.

All hot-path array math goes through ``xp`` so that a CuPy (GPU) backend can replace NumPy later
without touching the ops. Only this module imports NumPy for computation; other modules may import
NumPy for I/O and validation of user data.
"""

from __future__ import annotations

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
