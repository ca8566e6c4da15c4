"""Shared test fixtures: one BLAS thread for the session, and a probe for the dtype of gradients
inside the graph."""

from __future__ import annotations

import pytest
from _helpers import openblas_thread_controls

from ember.testing import require_torch

# Tests that run PyTorch: they form the `parity` set (`make parity`), which CI runs with
# EMBER_REQUIRE_TORCH=1 so that a missing torch fails instead of skipping.
_PARITY_NAMES = {"torch", "assert_matches_torch", "require_torch"}


def pytest_collection_modifyitems(items):
    for item in items:
        code = getattr(getattr(item, "function", None), "__code__", None)
        uses_torch = "torch" in getattr(item, "fixturenames", ()) or (
            code is not None and _PARITY_NAMES & set(code.co_names)
        )
        if uses_torch:
            item.add_marker(pytest.mark.parity)


@pytest.fixture(scope="module")
def torch():
    """PyTorch, or a skip with the reason (an error under EMBER_REQUIRE_TORCH=1)."""
    return require_torch()


@pytest.fixture(autouse=True, scope="session")
def _single_threaded_blas():
    """Run the whole session with one OpenBLAS thread (restored afterwards).

    On a shared 2-core machine OpenBLAS' spinning worker threads made the small matrix products
    of the tests ~15-25x slower. One thread is also what fresh-process children get (via
    ``_helpers.child_env()``, i.e. OPENBLAS_NUM_THREADS=1), so the bit-exact comparisons between
    processes compare like with like (catalogue R3, see ``test_models.py``).
    """
    controls = openblas_thread_controls()
    if controls is None:
        yield
        return
    set_threads, get_threads = controls
    before = get_threads()
    set_threads(1)
    yield
    set_threads(before)


@pytest.fixture
def grad_probe():
    """``probe(t, seen)`` returns ``t * 1`` whose backward records the dtype of the gradient that
    reaches it into the list ``seen``, *before* a leaf's ``.grad`` would cast it.

    White-box on purpose: ``.grad`` always has the leaf's dtype, so only a probe inside the graph
    shows a backward that silently computes in float64 for a float32 model (catalogue A15, §3.1).
    """

    def probe(t, seen: list):
        out = t * 1.0
        inner = out._backward  # the recorded backward closure of this mul node

        def spy(g):
            seen.append(g.dtype)
            return inner(g)

        out._backward = spy
        return out

    return probe
