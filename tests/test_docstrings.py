"""The ``Example:`` sections of the docstrings in ``ember/`` run as doctests.

One test per module of the package (found with ``pkgutil.walk_packages``), so a failure names
the module and the report shows the failing example, what it expected and what it got.

Namespace: each docstring runs in a copy of its module's globals plus ``ember`` and ``np``,
which is what ``python -m doctest`` and ``doctest.testmod`` give (module-level names such as
``Optimizer`` in ``ember.optimizers`` are available). The examples are nevertheless written to
need only ``import ember`` and ``import numpy as np`` -- everything else they use is imported
or built in the example itself -- so a student can paste them into a fresh interpreter.

Every docstring starts from the same random state (``ember.manual_seed(0)`` and
``np.random.seed(0)``; both states are restored afterwards) and runs in an empty temporary
working directory, which must still be empty afterwards: examples that write files write them
into a ``tempfile.TemporaryDirectory()`` of their own and clean it up.
"""

from __future__ import annotations

import doctest
import importlib
import io
import pkgutil

import numpy as np
import pytest

import ember
from ember.testing import require_torch

OPTIONFLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
MODULES = sorted(info.name for info in pkgutil.walk_packages(ember.__path__, "ember."))
# examples that call PyTorch: skipped without torch, like the parity tests
NEEDS_TORCH = {"ember.testing.parity"}


def _torch_if_needed(module_name: str) -> None:
    if module_name in NEEDS_TORCH:
        require_torch()


def _doctests(module_name: str) -> list[doctest.DocTest]:
    """The docstrings of one module that contain examples (each with its own globals copy)."""
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = finder.find(module, globs={**vars(module), "ember": ember, "np": np})
    return sorted((t for t in tests if t.examples), key=lambda t: t.name)


@pytest.fixture
def _fresh_state(tmp_path, monkeypatch):
    """An empty working directory and seeded generators; the random states are restored."""
    monkeypatch.chdir(tmp_path)
    ember_state, numpy_state = ember.get_rng_state(), np.random.get_state()
    yield tmp_path
    ember.set_rng_state(ember_state)
    np.random.set_state(numpy_state)


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples(module_name, _fresh_state):
    _torch_if_needed(module_name)
    failures = []
    for test in _doctests(module_name):
        ember.manual_seed(0)
        np.random.seed(0)
        report = io.StringIO()
        runner = doctest.DocTestRunner(optionflags=OPTIONFLAGS)
        result = runner.run(test, out=report.write)
        if result.failed:
            failures.append(report.getvalue())
    if failures:
        pytest.fail(
            f"{len(failures)} docstring(s) failed in {module_name}:\n" + "".join(failures),
            pytrace=False,
        )
    left = sorted(p.name for p in _fresh_state.iterdir())
    assert not left, f"examples in {module_name} left files in the working directory: {left}"


def test_docstring_examples_are_found():
    """Guard against a collection that silently finds nothing to run."""
    count = sum(len(_doctests(name)) for name in MODULES)
    assert count >= 200, f"only {count} docstrings with examples found in ember/"
