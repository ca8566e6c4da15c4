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


def serialize(kind: str, obj, table: dict, strict: bool = True) -> dict | None:
    """``{"name", "config"}`` for a built-in object, so a checkpoint stores no code.

    A custom object raises ``ValueError`` (or gives ``None`` with ``strict=False``).
    """
    for name, cls in table.items():
        if type(obj) is cls:
            return {"name": name, "config": obj.get_config()}
    if strict:
        raise ValueError(
            f"cannot save the custom {kind} {obj!r} by name; use a built-in {kind} or "
            "save_weights() and rebuild the model in code"
        )
    return None


def deserialize(kind: str, spec: dict, table: dict):
    """Rebuild an object from :func:`serialize`'s output."""
    return lookup(kind, spec["name"], table)(**spec.get("config", {}))
