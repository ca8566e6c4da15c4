"""Test-only helpers shared by the test modules *and* their fresh-process children.

This is a plain module (not ``conftest.py``) because the children started by ``test_models.py``
and ``test_saving.py`` import those test modules outside pytest, with ``tests/`` on PYTHONPATH.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import importlib.util
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


# ------------------------------------------------------------------------------ examples/
EXAMPLES = ROOT / "examples"


def load_example(name: str):
    """The script ``examples/<name>.py`` as a module (``examples/`` is not a package), loaded
    once. ``examples/`` goes on ``sys.path`` first, so that a script can import a sibling as it
    does when run as ``python examples/<name>.py`` (dcgan.py uses gan_ring.py's GAN)."""
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    module_name = f"_ember_example_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


def assert_example_doctests_pass(name: str) -> None:
    """Every docstring example of ``examples/<name>.py`` runs and gives its stated output (with
    ``ember`` and ``np`` in the namespace, as the package's doctests)."""
    import doctest

    import ember

    module = load_example(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    globs = {**vars(module), "ember": ember, "np": np}
    tests = [t for t in finder.find(module, globs=globs) if t.examples]
    assert tests, f"examples/{name}.py has no docstring examples"
    for test in tests:
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0, name


def conv_under_both_kernels(x, k, b, relu, **geometry):
    """``[(output, dx, dk, db) with the fast kernels, the same with the NumPy reference]`` of
    ``ember.ops.conv2d`` for arrays ``x``, ``k`` and ``b`` (or None), from one fixed output
    gradient."""
    import ember
    from ember import kernels, ops

    results = []
    for choice in ("numba", "numpy"):
        with kernels.use(choice):
            tx = ember.Tensor(x, requires_grad=True)
            tk = ember.Tensor(k, requires_grad=True)
            tb = None if b is None else ember.Tensor(b, requires_grad=True)
            y = ops.conv2d(tx, tk, bias=tb, relu=relu, **geometry)
            g = np.random.default_rng(7).standard_normal(y.shape).astype(x.dtype)
            y.backward(g)
            results.append((y.numpy(), tx.grad, tk.grad, None if tb is None else tb.grad))
    return results
