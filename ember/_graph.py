"""One topological sort for every graph Ember walks: the autograd graph of tensors, the graph of
layer calls of a functional model, and the tree of nested layers.

Iterative depth-first post-order (no recursion limit, linear in the graph's size): each node comes
after every node it depends on, and nodes are visited in the order ``dependencies`` lists them, so
the result is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

Node = TypeVar("Node")


def topological_order(
    roots: Iterable[Node],
    dependencies: Callable[[Node], Iterable[Node]],
    key: Callable[[Node], Hashable] = id,
) -> list[Node]:
    """Every node reachable from ``roots`` through ``dependencies``, dependencies first.

    Args:
        roots: where the walk starts (e.g. a loss tensor, a model's outputs).
        dependencies: the nodes a node depends on (a tensor's parents, a layer call's inputs).
        key: identity of a node (``id`` by default: tensors compare elementwise, not by identity).

    Example:
        >>> from ember._graph import topological_order
        >>> parents = {"loss": ["y"], "y": ["w", "x"], "w": [], "x": []}
        >>> topological_order(["loss"], parents.__getitem__, key=str)
        ['w', 'x', 'y', 'loss']
    """
    order: list[Node] = []
    visited: set = set()
    # A node is pushed, then the marker above it; its dependencies go above both. Popping the
    # marker means they are all done, and the node below it is next in the order. Dependencies
    # are pushed without looking them up: one already visited is skipped when popped. (No tuple
    # per visit: this walk runs at every backward and every training step.)
    stack: list = list(roots)
    stack.reverse()
    push, pop, extend = stack.append, stack.pop, stack.extend
    seen, mark = visited.add, order.append
    while stack:
        node = pop()
        if node is _EXPANDED:
            mark(pop())
            continue
        node_key = key(node)
        if node_key in visited:
            continue
        seen(node_key)
        push(node)
        push(_EXPANDED)
        children = dependencies(node)
        if children:
            if not isinstance(children, (list, tuple)):
                children = tuple(children)
            extend(children[::-1])
    return order


_EXPANDED = object()  # the marker: "the node below me has all its dependencies in the order"
