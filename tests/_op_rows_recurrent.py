"""Rows of the op table (``test_ops.py``) for the recurrent ops."""

from __future__ import annotations


def add_rows(case) -> None:
    """Append this family's rows with ``case(id, op, fn, ref, inputs, ...)`` (see test_ops.py)."""
