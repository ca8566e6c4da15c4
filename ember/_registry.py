"""Look-up of string identifiers (``"relu"``, ``"adam"``) with errors that suggest the fix."""

from __future__ import annotations

import difflib


def lookup(kind: str, identifier: str, table: dict):
    """Return ``table[identifier]`` (case- and dash-insensitive) or raise a helpful ValueError."""
    key = identifier.lower().replace("-", "_") if isinstance(identifier, str) else identifier
    if key in table:
        return table[key]
    names = sorted(table)
    guess = difflib.get_close_matches(str(key), names, n=1)
    hint = f" Did you mean {guess[0]!r}?" if guess else ""
    raise ValueError(f"unknown {kind} {identifier!r}.{hint} Valid {kind} names: {', '.join(names)}")
