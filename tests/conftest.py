"""Shared test fixtures: a probe for the dtype of gradients inside the graph."""

from __future__ import annotations

import pytest


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
