"""Test-only helpers shared by the test modules *and* their fresh-process children.

This is a plain module (not ``conftest.py``) because the children started by ``test_models.py``
and ``test_saving.py`` import those test modules outside pytest, with ``tests/`` on PYTHONPATH.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os
import subprocess
import sys
from pathlib import Path

import numpy as np


@functools.cache
def openblas_thread_controls():
    """(set, get) for the OpenBLAS bundled with NumPy, or None if it cannot be found."""
    here = os.path.dirname(np.__file__)
    for lib in sorted(glob.glob(os.path.join(here + ".libs", "*openblas*.so*"))):
        try:
            handle = ctypes.CDLL(lib)
        except OSError:
            continue
        for prefix in ("scipy_openblas", "openblas"):
            for suffix in ("64_", "_64_", ""):
                try:
                    return (
                        getattr(handle, f"{prefix}_set_num_threads{suffix}"),
                        getattr(handle, f"{prefix}_get_num_threads{suffix}"),
                    )
                except AttributeError:
                    continue
    return None


def child_env() -> dict[str, str]:
    """A copy of ``os.environ`` for a child process with the BLAS thread setting of the test
    session: one OpenBLAS thread, as pinned by the session fixture in ``conftest.py``."""
    env = dict(os.environ)
    if openblas_thread_controls() is not None:
        env["OPENBLAS_NUM_THREADS"] = "1"
    return env


TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def run_child(code: str, timeout: float = 180) -> str:
    """Run ``code`` in a fresh interpreter (same venv and BLAS setting); return its stdout."""
    env = child_env()
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(TESTS), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=str(ROOT),
    )
    assert result.returncode == 0, f"child process failed:\n{result.stderr[-3000:]}"
    return result.stdout
