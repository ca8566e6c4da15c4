"""The computation graph behind a tensor, drawn as SVG, and backpropagation one node at a time.

Pure Python, no Graphviz: the nodes are ranked by their longest distance from the output (the
inputs on top, the output at the bottom), ordered within a rank by a few barycentre sweeps that
keep the ordering with the fewest edge crossings, and placed as close to their neighbours as the
boxes allow. Long edges bend through placeholder points so they do not cut through boxes (the
edges leaving one tensor share theirs, like a bus line branching off to each consumer).

* :func:`graph` — the SVG of the graph: one box per node (the op, or a leaf's name; its shape
  and dtype; with ``gradients`` the gradient's shape, norm and, for tiny tensors, values).
  Weights (leaves that require grad) are amber pills, inputs grey dashed boxes, ops blue
  rounded boxes; the output has a red frame. Every box and edge carries ``data-*`` attributes
  (node id, op, shape, gradient norm; an edge's source, target and argument position), so a
  program can read the drawing back.
* :func:`trace_backward` — the gradient of a loss with respect to every node of its graph.
* :func:`backprop_steps` — one SVG frame per node in the order the engine runs them, the
  current node highlighted, the chain-rule step in a caption; :func:`to_html` makes them a page
  with Previous/Next buttons (the arrow keys work too), and in a notebook the list displays as
  that stepper.

>>> from ember.graph_drawing import graph
>>> w = ember.tensor([1.0, -2.0], requires_grad=True)
>>> svg = graph((w * w).sum(), gradients=True)
>>> svg.startswith("<svg"), svg.count('class="eg-node'), svg.count('class="eg-edge')
(True, 3, 3)
"""

from __future__ import annotations

import hashlib
import html
import itertools
import json
import os
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ember._graph import topological_order
from ember.tensor import _FREED, Tensor, _grad_mode, _parents_of
from ember.tensor import grad as _engine_grad

__all__ = ["SVG", "BackpropSteps", "backprop_steps", "graph", "to_html", "trace_backward"]

# ------------------------------------------------------------------------------- drawing style
_FONT = "DejaVu Sans Mono, Menlo, Consolas, monospace"
_CHAR = 0.61  # width of a monospace character, in font sizes (a safe over-estimate)
_PAD_X, _PAD_Y, _GAP_X, _GAP_Y, _MARGIN = 10, 6, 28, 48, 20
_TINY = 4  # tensors with at most this many elements show their values
# text line styles: (font size, line height, weight, colour)
_LINE_STYLE = {
    "badge": (10, 13, "bold", "#c5221f"),
    "id": (10, 13, "normal", "#80868b"),
    "title": (13, 17, "bold", "#202124"),
    "shape": (12, 15, "normal", "#3c4043"),
    "value": (12, 15, "normal", "#3c4043"),
    "grad": (12, 15, "normal", "#1e6f35"),
    "partial": (12, 15, "italic", "#b06000"),
    "nograd": (11, 14, "italic", "#80868b"),
}
# box styles by kind: (fill, stroke, corner radius, dash)
_BOX_STYLE = {
    "op": ("#e8f0fe", "#3367d6", 6, ""),
    "weight": ("#fef3d6", "#c98a00", 14, ""),
    "input": ("#f1f3f4", "#80868b", 2, "5,3"),
}
# fills of the step-through states (the stroke keeps telling the kind)
_STATE_FILL = {"done": "#dcf3e2", "current": "#ffe0b2", "pending": None}
_EDGE_STYLE = {  # (stroke, width, marker)
    "plain": ("#5f6368", 1.3, "arrow"),
    "carried": ("#34a853", 1.8, "done"),
    "active": ("#e8710a", 2.8, "active"),
}
_MARKER_FILL = {"arrow": "#5f6368", "done": "#34a853", "active": "#e8710a"}
_DISPLAYS = itertools.count()  # numbers the steppers shown in a notebook


class SVG(str):
    """An SVG document as a string that a notebook (Jupyter, VS Code) displays as a picture.

    Example:
        >>> from ember.graph_drawing import SVG
        >>> picture = SVG('<svg xmlns="http://www.w3.org/2000/svg"/>')
        >>> picture._repr_svg_() == picture, isinstance(picture, str)
        (True, True)
    """

    __slots__ = ()

    def _repr_svg_(self) -> str:
        return str(self)


class BackpropSteps(list):
    """The frames of :func:`backprop_steps` (SVG strings); a notebook shows them as a stepper.

    Example:
        >>> from ember.graph_drawing import backprop_steps
        >>> w = ember.tensor([3.0], requires_grad=True)
        >>> steps = backprop_steps((w * w).sum())
        >>> len(steps), "<button" in steps._repr_html_()
        (3, True)
    """

    def _repr_html_(self) -> str:
        # a fresh id per display: the same steps shown twice in a notebook step separately
        return _stepper_fragment(list(self), f"ember-steps-{next(_DISPLAYS)}-{id(self):x}")

    def save(self, path: str | os.PathLike) -> Path:
        """Write the frames as a self-contained HTML page (see :func:`to_html`); the path.

        Example:
            >>> import os, tempfile
            >>> from ember.graph_drawing import backprop_steps
            >>> steps = backprop_steps((ember.tensor([1.0], requires_grad=True) * 2.0).sum())
            >>> with tempfile.TemporaryDirectory() as d:
            ...     steps.save(os.path.join(d, "steps.html")).stat().st_size > 1000
            True
        """
        to_html(list(self), path)
        return Path(path)


# ------------------------------------------------------------------------------- the graph walk
def _check_tensor(tensor, caller: str, argument: str = "tensor") -> None:
    if not isinstance(tensor, Tensor):
        raise TypeError(
            f"{caller}: {argument} must be an ember.Tensor made by Ember ops, got "
            f"{type(tensor).__name__}"
        )


def _freed_error(caller: str, argument: str) -> ValueError:
    return ValueError(
        f"{caller}: the graph behind `{argument}` was freed by a backward pass (backward() and "
        "ember.grad() free it unless retain_graph=True), so there is nothing left to draw. "
        "Draw it before backward(), call backward(retain_graph=True), or pass gradients=True, "
        "which computes the gradients without freeing the graph"
    )


def _collect(tensor: Tensor, max_nodes: int, caller: str, argument: str = "tensor") -> list:
    """The nodes of the graph behind ``tensor``, parents first (the engine's order, reversed).

    Counts while it walks, so a huge graph is refused without being walked to the end."""
    if isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1:
        raise ValueError(f"{caller}: max_nodes must be a positive int, got {max_nodes!r}")
    seen, stack = {id(tensor)}, [tensor]
    while stack:
        node = stack.pop()
        if node._backward is _FREED:
            raise _freed_error(caller, argument)
        for parent in node._parents:
            if id(parent) not in seen:
                seen.add(id(parent))
                stack.append(parent)
        if len(seen) > max_nodes:
            raise ValueError(
                f"{caller}: the graph behind `{argument}` has more than max_nodes={max_nodes} "
                "nodes; a drawing that large is unreadable. Draw a smaller part (the graph "
                "behind an intermediate tensor, a smaller batch or model) or raise max_nodes"
            )
    return topological_order([tensor], _parents_of)


def _kind(t: Tensor) -> str:
    if t._backward is not None:
        return "op"
    return "weight" if t.requires_grad else "input"


def _title(t: Tensor) -> str:
    kind = _kind(t)
    if kind == "op":
        return f"{t.name}: {t._op}" if t.name else str(t._op)
    if t.name:
        return str(t.name)
    if kind == "weight":
        return "weight"
    return "constant" if t.ndim == 0 else "input"


def _shape_text(shape: tuple) -> str:
    return "scalar" if shape == () else str(tuple(shape))


def _values(array: np.ndarray) -> str:
    """A tiny array's values, 4 significant digits, on one line."""
    array = np.asarray(array)
    if array.ndim == 0:
        return f"{array.item():.4g}"
    text = np.array2string(array, separator=", ", formatter={"all": lambda v: f"{v:.4g}"})
    return " ".join(text.split())


def _norm(array: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(array, dtype=np.float64).ravel()))


def _summary(array: np.ndarray) -> str:
    """``(4, 3) norm 1.234`` (and ``= [...]`` for a tiny array): a gradient in a caption."""
    text = f"{_shape_text(np.shape(array))} norm {_norm(array):.4g}"
    return text + (f" = {_values(array)}" if np.size(array) <= _TINY else "")


# ------------------------------------------------------------------------------- gradients
def trace_backward(loss: Tensor, gradient=None) -> dict:
    """The gradient of ``loss`` with respect to every node of its graph, keyed by node.

    Computed with ``ember.grad(loss, nodes, retain_graph=True)``: no ``.grad`` changes and the
    graph stays usable (for :func:`graph`, another backward). Nodes that require no gradient
    (inputs, constants) map to ``None``; the others to a NumPy array of their shape.

    Args:
        loss: a tensor made by Ember ops; a scalar unless ``gradient`` is given.
        gradient: the upstream gradient for a non-scalar ``loss`` (an array of its shape).

    Example:
        >>> from ember.graph_drawing import trace_backward
        >>> x = ember.tensor([1.0, 2.0])
        >>> w = ember.tensor([3.0, 4.0], requires_grad=True)
        >>> y = x * w
        >>> loss = y.sum()
        >>> grads = trace_backward(loss)
        >>> grads[w], grads[y], grads[loss], grads[x]
        (array([1., 2.], dtype=float32), array([1., 1.], dtype=float32), array(1., dtype=float32), None)
    """  # noqa: E501 (a doctest's output line)
    return _trace(loss, gradient, "trace_backward", "loss")


def _trace(loss: Tensor, gradient, caller: str, argument: str) -> dict:
    _check_tensor(loss, caller, argument)
    if not loss.requires_grad:
        raise ValueError(
            f"{caller}: `{argument}` does not require grad, so it has no gradients to compute "
            "(create the weights with requires_grad=True, outside ember.no_grad())"
        )
    if gradient is None and loss.size != 1:
        raise ValueError(
            f"{caller}: `{argument}` has shape {loss.shape}, but gradients are computed for a "
            "scalar; reduce it first (e.g. .sum() or .mean()) or pass trace_backward(t, "
            "gradient=...) an upstream gradient of that shape"
        )
    nodes = _collect(loss, 2**62, caller, argument)
    wanted = [n for n in nodes if n.requires_grad]
    found = _engine_grad(loss, wanted, gradient=gradient, retain_graph=True)
    by_id = {id(n): g for n, g in zip(wanted, found)}
    return {n: by_id.get(id(n)) for n in nodes}


def _gradient_table(tensor: Tensor, gradients, nodes: list) -> dict[int, np.ndarray] | None:
    """``graph``'s ``gradients`` argument as ``id(node) -> array`` (None: draw none)."""
    if gradients is None or gradients is False:
        return None
    if gradients is True:
        gradients = _trace(tensor, None, "graph", "tensor")
    if not isinstance(gradients, Mapping):
        raise TypeError(
            "graph: gradients must be None, True (compute them) or a mapping from the graph's "
            f"tensors to their gradients (trace_backward's result); got {type(gradients).__name__}"
        )
    table: dict[int, np.ndarray] = {}
    by_id = {id(n): n for n in nodes}
    for key, value in gradients.items():
        node = by_id.get(id(key))
        if node is None or value is None:
            continue  # a tensor of another graph, or a node without gradient
        array = np.asarray(value.numpy() if isinstance(value, Tensor) else value)
        if array.shape != node.shape:
            raise ValueError(
                f"graph: the gradient given for the node {_title(node)!r} has shape "
                f"{array.shape}, but the node has shape {node.shape}"
            )
        table[id(node)] = array
    return table


# ------------------------------------------------------------------------------- box contents
def _box_lines(
    index: int, node: Tensor, is_output: bool, grad: np.ndarray | None, grad_style: str = "grad"
) -> list[tuple[str, str]]:
    """The text lines of a node's box, each ``(text, style)``."""
    lines = [(f"n{index}", "id")]
    if is_output:
        lines.append(("OUTPUT", "badge"))
    lines.append((_title(node), "title"))
    lines.append((f"{_shape_text(node.shape)} {node.dtype}", "shape"))
    if node.size <= _TINY:
        lines.append((f"= {_values(node.numpy())}", "value"))
    if grad is not None:
        prefix = "grad so far" if grad_style == "partial" else "grad"
        lines.append((f"{prefix} {_shape_text(grad.shape)} norm {_norm(grad):.4g}", grad_style))
        if grad.size <= _TINY:
            lines.append((f"{prefix} = {_values(grad)}", grad_style))
    return lines


def _text_width(lines: list[tuple[str, str]]) -> float:
    return max(len(text) * _LINE_STYLE[style][0] * _CHAR for text, style in lines)


def _box_size(lines: list[tuple[str, str]]) -> tuple[float, float]:
    # The id tag shares the first row with the badge/title (it sits in the top right corner).
    body = [line for line in lines if line[1] != "id"]
    width = _text_width(body) + 2 * _PAD_X + _text_width(lines[:1]) + 6
    height = sum(_LINE_STYLE[style][1] for _, style in body) + 2 * _PAD_Y
    return max(width, 60.0), height


# ------------------------------------------------------------------------------- layout
@dataclass
class _Layout:
    """Where everything goes: vertex ``v < n`` is node ``v``; the others are bend points."""

    n: int
    layer: list[int]  # row of each vertex, 0 at the top
    size: list[tuple[float, float]]  # box (width, height) per vertex; (0, 0) for bend points
    chains: list[tuple[int, int, int, list[int]]]  # (parent, child, argument, vertices top-down)
    rows: list[list[int]] = field(default_factory=list)  # vertices of each row, left to right
    x: list[float] = field(default_factory=list)  # centre of each vertex
    row_top: list[float] = field(default_factory=list)
    row_height: list[float] = field(default_factory=list)
    width: float = 0.0
    height: float = 0.0


def _make_layout(nodes: list, sizes: list[tuple[float, float]]) -> _Layout:
    """Rank by the longest path to the output, add bend points, order, place."""
    index = {id(t): i for i, t in enumerate(nodes)}
    rank = [0] * len(nodes)  # longest distance from the output, which is the last node
    for i in range(len(nodes) - 1, -1, -1):
        for parent in nodes[i]._parents:
            j = index[id(parent)]
            rank[j] = max(rank[j], rank[i] + 1)
    top = max(rank)
    layer, size = [top - r for r in rank], list(sizes)
    # A long edge bends in every row it crosses. The edges leaving one tensor share their bend
    # points, as one line that branches off to each consumer: a tensor used by many ops (an
    # input read by every layer) costs one bend point per row, not one per edge and row.
    chains, bends = [], {}
    for child, node in enumerate(nodes):
        for argument, parent in enumerate(node._parents):
            p = index[id(parent)]
            vertices = [p]
            for row in range(layer[p] + 1, layer[child]):
                if (p, row) not in bends:
                    bends[(p, row)] = len(layer)
                    layer.append(row)
                    size.append((0.0, 0.0))
                vertices.append(bends[(p, row)])
            chains.append((p, child, argument, [*vertices, child]))
    layout = _Layout(len(nodes), layer, size, chains)
    layout.rows = _order_rows(layout)
    _place(layout)
    return layout


def _neighbours(layout: _Layout) -> tuple[list[list[int]], list[list[int]]]:
    """For each vertex, its neighbours in the row above and in the row below."""
    above: list[list[int]] = [[] for _ in layout.layer]
    below: list[list[int]] = [[] for _ in layout.layer]
    links = {pair for *_, vertices in layout.chains for pair in zip(vertices, vertices[1:])}
    for upper, lower in sorted(links):  # shared bend segments once; sorted: deterministic
        below[upper].append(lower)
        above[lower].append(upper)
    return above, below


def _crossings(rows: list[list[int]], below: list[list[int]]) -> int:
    total = 0
    for row, next_row in zip(rows, rows[1:]):
        where = {v: i for i, v in enumerate(next_row)}
        ends = [(i, where[w]) for i, v in enumerate(row) for w in below[v]]
        total += sum(
            1 for k, (a, b) in enumerate(ends) for c, d in ends[k + 1 :] if (a - c) * (b - d) < 0
        )
    return total


def _order_rows(layout: _Layout, sweeps: int = 8) -> list[list[int]]:
    """Barycentre sweeps (down, then up, ...), keeping the ordering with the fewest crossings."""
    rows: list[list[int]] = [[] for _ in range(max(layout.layer) + 1)]
    for v in range(len(layout.layer)):  # nodes in topological order, then the bend points
        rows[layout.layer[v]].append(v)
    above, below = _neighbours(layout)
    best, best_crossings = [list(r) for r in rows], _crossings(rows, below)
    for sweep in range(sweeps):
        downward = sweep % 2 == 0
        order = range(1, len(rows)) if downward else range(len(rows) - 2, -1, -1)
        toward = above if downward else below
        for r in order:
            where = {v: i for i, v in enumerate(rows[r + (-1 if downward else 1)])}
            position = {v: i for i, v in enumerate(rows[r])}

            def barycentre(v, toward=toward, where=where, position=position):
                links = toward[v]
                return sum(where[u] for u in links) / len(links) if links else position[v]

            rows[r].sort(key=lambda v, b=barycentre, p=position: (b(v), p[v]))
        crossings = _crossings(rows, below)
        if crossings < best_crossings:
            best, best_crossings = [list(r) for r in rows], crossings
        if best_crossings == 0:
            break
    return best


def _fit_in_order(desired: list[float], gaps: list[float]) -> list[float]:
    """The positions closest (least squares) to ``desired`` that keep the order and at least
    ``gaps[i]`` between items ``i`` and ``i + 1``: pool-adjacent-violators on the positions
    shifted by the cumulative gaps, where the constraint becomes plain monotonicity."""
    offsets = [0.0]
    for gap in gaps:
        offsets.append(offsets[-1] + gap)
    blocks: list[list[float]] = []  # [sum, count] of pooled targets
    for target in (d - o for d, o in zip(desired, offsets)):
        blocks.append([target, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
    fitted = [s / c for s, c in blocks for _ in range(int(c))]
    return [y + o for y, o in zip(fitted, offsets)]


def _place(layout: _Layout, rounds: int = 12) -> None:
    """Horizontal centres (each vertex pulled to the mean of its neighbours, alternating
    directions), then rows stacked from the top."""
    above, below = _neighbours(layout)
    x = [0.0] * len(layout.layer)

    def gaps(row):
        return [
            (layout.size[a][0] + layout.size[b][0]) / 2 + (_GAP_X if b < layout.n else 12)
            for a, b in zip(row, row[1:])
        ]

    for row in layout.rows:
        for v, position in zip(row, _fit_in_order([0.0] * len(row), gaps(row))):
            x[v] = position
    for step in range(rounds):
        downward = step % 2 == 0
        order = layout.rows if downward else layout.rows[::-1]
        for row in order:
            toward = above if downward else below
            if step == rounds - 1:  # the last round balances both sides
                toward = [a + b for a, b in zip(above, below)]
            desired = [
                sum(x[u] for u in toward[v]) / len(toward[v]) if toward[v] else x[v] for v in row
            ]
            for v, position in zip(row, _fit_in_order(desired, gaps(row))):
                x[v] = position
    left = min(x[v] - layout.size[v][0] / 2 for v in range(len(x)))
    layout.x = [value - left + _MARGIN for value in x]
    layout.width = max(layout.x[v] + layout.size[v][0] / 2 for v in range(len(x))) + _MARGIN
    top = float(_MARGIN)
    for row in layout.rows:
        height = max((layout.size[v][1] for v in row), default=0.0)
        layout.row_top.append(top)
        layout.row_height.append(height)
        top += height + _GAP_Y
    layout.height = top - _GAP_Y + _MARGIN


# ------------------------------------------------------------------------------- rendering
def _esc(text) -> str:
    return html.escape(str(text), quote=True)


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:10]


def _ports(layout: _Layout) -> dict[tuple[int, int], float]:
    """The x where each chain leaves its parent (end 0) and enters its child (end 1): spread
    along the box's edge in the order of the neighbouring points, so that edges do not cross
    at the boxes. Chains that continue into the same shared bend point leave by one port."""
    ports: dict[tuple[int, int], float] = {}
    for end, neighbour in ((0, 1), (1, -2)):
        groups: dict[int, dict] = {}  # box -> {port key: [chains]}
        for c, (*_, vertices) in enumerate(layout.chains):
            box, next_vertex = vertices[-end], vertices[neighbour]
            shared = end == 0 and next_vertex >= layout.n
            key = ("bend", next_vertex) if shared else ("chain", c)
            groups.setdefault(box, {}).setdefault(key, []).append(c)
        for box, by_port in groups.items():
            order = sorted(
                by_port.values(), key=lambda cs: (layout.x[layout.chains[cs[0]][3][neighbour]], cs)
            )
            spread = layout.size[box][0] * 0.6
            for k, chains in enumerate(order):
                for c in chains:
                    ports[(c, end)] = layout.x[box] + spread * ((k + 1) / (len(order) + 1) - 0.5)
    return ports


def _row_bottom(layout: _Layout, r: int) -> float:
    return layout.row_top[r] + layout.row_height[r]


def _box_bottom(layout: _Layout, v: int) -> float:
    r = layout.layer[v]
    return layout.row_top[r] + (layout.row_height[r] + layout.size[v][1]) / 2


def _box_top(layout: _Layout, v: int) -> float:
    r = layout.layer[v]
    return layout.row_top[r] + (layout.row_height[r] - layout.size[v][1]) / 2


def _chain_path(layout: _Layout, c: int, ports) -> tuple[str, tuple[float, float]]:
    """The SVG path of chain ``c`` (vertical tangents at every point) and its middle point."""
    vertices = layout.chains[c][3]
    points = [(ports[(c, 0)], _box_bottom(layout, vertices[0]))]
    for v in vertices[1:-1]:  # a bend point runs straight down through its row
        r = layout.layer[v]
        points += [(layout.x[v], layout.row_top[r]), (layout.x[v], _row_bottom(layout, r))]
    points.append((ports[(c, 1)], _box_top(layout, vertices[-1])))
    parts = [f"M{points[0][0]:.1f},{points[0][1]:.1f}"]
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if abs(x0 - x1) < 0.05:
            parts.append(f"L{x1:.1f},{y1:.1f}")
        else:
            ym = (y0 + y1) / 2
            parts.append(f"C{x0:.1f},{ym:.1f} {x1:.1f},{ym:.1f} {x1:.1f},{y1:.1f}")
    a, b = points[len(points) // 2 - 1], points[len(points) // 2]
    return " ".join(parts), ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)


@dataclass
class _Frame:
    """What one picture shows on top of the layout."""

    lines: list[list[tuple[str, str]]]  # per node
    states: list[str] | None = None  # per node: "done", "current", "pending" (step frames)
    edge_styles: list[str] | None = None  # per chain: "plain", "carried", "active"
    edge_labels: dict[int, str] = field(default_factory=dict)  # chain -> text at its middle
    caption: list[str] = field(default_factory=list)
    grad_norms: list[float | None] | None = None  # per node, for the data-grad-norm attribute
    step: int | None = None


def _render_node(layout: _Layout, v: int, node: Tensor, frame: _Frame, is_output: bool) -> str:
    kind = _kind(node)
    fill, stroke, radius, dash = _BOX_STYLE[kind]
    state = frame.states[v] if frame.states else None
    fill = _STATE_FILL.get(state) or fill
    width, height = layout.size[v]
    left, top = layout.x[v] - width / 2, _box_top(layout, v)
    stroke_width = 3.0 if state == "current" or is_output else 1.4
    if is_output:
        stroke = "#c5221f"
    classes = " ".join(["eg-node", kind] + ["output"] * is_output + [state] * bool(state))
    attrs = (
        f'class="{classes}" data-node="n{v}" data-kind="{kind}" data-title="{_esc(_title(node))}"'
        f' data-op="{_esc(node._op or "")}" data-shape="{_esc(_shape_text(node.shape))}"'
        f' data-dtype="{node.dtype}"'
    )
    if frame.grad_norms is not None and frame.grad_norms[v] is not None:
        attrs += f' data-grad-norm="{frame.grad_norms[v]!r}"'
    out = [f"<g {attrs}><title>{_esc(_tooltip(v, node))}</title>"]
    dashing = f' stroke-dasharray="{dash}"' if dash else ""
    out.append(
        f'<rect x="{left:.1f}" y="{top:.1f}" width="{width:.1f}" height="{height:.1f}" '
        f'rx="{radius}" fill="{fill}" stroke="{stroke}" stroke-width="{stroke_width}"{dashing}/>'
    )
    y = top + _PAD_Y
    for text, style in frame.lines[v]:
        size, line_height, weight, colour = _LINE_STYLE[style]
        font = f'font-size="{size}" fill="{colour}"'
        font += ' font-style="italic"' if weight == "italic" else f' font-weight="{weight}"'
        if style == "id":  # top right corner, beside the first line
            out.append(
                f'<text x="{left + width - 5:.1f}" y="{top + 4 + size:.1f}" text-anchor="end" '
                f'class="eg-{style}" {font}>{_esc(text)}</text>'
            )
            continue
        y += line_height
        out.append(
            f'<text x="{left + _PAD_X:.1f}" y="{y - 4:.1f}" class="eg-{style}" {font}>'
            f"{_esc(text)}</text>"
        )
    out.append("</g>")
    return "".join(out)


def _tooltip(v: int, node: Tensor) -> str:
    what = {
        "op": f"output of the op '{node._op}'",
        "weight": "a leaf that requires grad",
        "input": "a leaf that needs no gradient",
    }[_kind(node)]
    return f"n{v} {_title(node)}: {what}, shape {_shape_text(node.shape)}, {node.dtype}"


def _render(layout: _Layout, nodes: list, frame: _Frame) -> SVG:
    """The whole picture: edges under the boxes, the boxes, the caption below."""
    ports = _ports(layout)
    caption_size, caption_line = 13, 18
    caption_width = max((len(line) * caption_size * _CHAR for line in frame.caption), default=0)
    width = max(layout.width, caption_width + 2 * _MARGIN)
    height = layout.height + (len(frame.caption) * caption_line + 10 if frame.caption else 0)
    body = []
    for c, (parent, child, argument, _) in enumerate(layout.chains):
        style = frame.edge_styles[c] if frame.edge_styles else "plain"
        stroke, stroke_width, marker = _EDGE_STYLE[style]
        path, middle = _chain_path(layout, c, ports)
        # In a step frame a link that carried a gradient points back at its parent: the
        # direction the gradient flowed. Otherwise arrows point forward, parent to child.
        backward = frame.states is not None and style != "plain"
        end = "start" if backward else "end"
        body.append(
            f'<g class="eg-edge {style}" data-source="n{parent}" data-target="n{child}" '
            f'data-argument="{argument}"><title>n{parent} {_esc(_title(nodes[parent]))} → '
            f"n{child} {_esc(_title(nodes[child]))} (argument {argument})</title>"
            f'<path d="{path}" fill="none" stroke="{stroke}" stroke-width="{stroke_width}" '
            f'marker-{end}="url(#eg-{marker}-{{uid}})"/></g>'
        )
        if c in frame.edge_labels:
            body.append(
                f'<text class="eg-edge-label" x="{middle[0] + 6:.1f}" y="{middle[1] + 4:.1f}" '
                f'font-size="11" fill="#b06000" stroke="#ffffff" stroke-width="3" '
                f'paint-order="stroke">{_esc(frame.edge_labels[c])}</text>'
            )
    for v, node in enumerate(nodes):
        body.append(_render_node(layout, v, node, frame, v == len(nodes) - 1))
    for k, line in enumerate(frame.caption):
        weight = "bold" if k == 0 else "normal"
        y = layout.height + (k + 1) * caption_line
        body.append(
            f'<text class="eg-caption" x="{_MARGIN}" y="{y:.1f}"'
            f' font-size="{caption_size}" font-weight="{weight}" fill="#202124">{_esc(line)}</text>'
        )
    markers = "".join(
        f'<marker id="eg-{name}-{{uid}}" viewBox="0 0 10 10" refX="10" refY="5" '
        f'markerWidth="8" markerHeight="8" markerUnits="userSpaceOnUse" '
        f'orient="auto-start-reverse">'
        f'<path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
        for name, colour in _MARKER_FILL.items()
    )
    step = f' data-step="{frame.step}"' if frame.step is not None else ""
    text = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="ember-graph" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" font-family="{_FONT}"'
        f'{step}><defs>{markers}</defs><rect width="100%" height="100%" fill="#ffffff"/>'
        + "".join(body)
        + "</svg>"
    )
    # Ids unique per drawing, so several drawings inline in one page keep their own markers.
    return SVG(text.replace("{uid}", _digest(text)))


def _write(text: str, path, caller: str, suffixes: tuple[str, ...]) -> None:
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise ValueError(f"{caller}: path must end in {' or '.join(suffixes)}, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


# ------------------------------------------------------------------------------- graph()
def graph(
    tensor: Tensor,
    gradients=None,
    path: str | os.PathLike | None = None,
    max_nodes: int = 500,
) -> SVG:
    """The computation graph behind ``tensor`` as an SVG document (a string).

    One box per node, parents above children, an arrow per parent link (an op that uses a
    tensor twice, as in ``a * a``, gets two arrows). Each box shows the op's name (for a leaf:
    its name, or ``weight``/``input``/``constant``), its shape and dtype, its values when it has
    at most 4 elements, and with ``gradients`` the gradient of ``tensor`` with respect to it
    (shape, norm, values when tiny). The returned string displays as a picture in a notebook.

    Args:
        tensor: a tensor made by Ember ops (its graph must not have been freed by a backward
            without ``retain_graph=True``).
        gradients: ``None`` (no gradients), ``True`` (compute them with
            :func:`trace_backward`: ``tensor`` must be a scalar), or a mapping from the graph's
            tensors to their gradients (e.g. ``trace_backward``'s result).
        path: also write the SVG there (must end in ``.svg``; folders are created).
        max_nodes: refuse graphs with more nodes than this (``ValueError``).

    Example:
        >>> from ember.graph_drawing import graph
        >>> x = ember.tensor(np.ones((4, 3), np.float32))
        >>> w = ember.tensor(np.ones(3, np.float32), requires_grad=True)
        >>> b = ember.tensor(0.5, requires_grad=True)
        >>> svg = graph((x * w).sum() + b, gradients=True)
        >>> import xml.etree.ElementTree as ET
        >>> boxes = ET.fromstring(svg).findall(".//{http://www.w3.org/2000/svg}g[@data-node]")
        >>> [(box.get("data-title"), box.get("data-shape")) for box in boxes]
        [('input', '(4, 3)'), ('weight', '(3,)'), ('mul', '(4, 3)'), ('sum', 'scalar'), ('weight', 'scalar'), ('add', 'scalar')]
    """  # noqa: E501 (a doctest's output line)
    _check_tensor(tensor, "graph")
    nodes = _collect(tensor, max_nodes, "graph")
    table = _gradient_table(tensor, gradients, nodes)
    grads = [None if table is None else table.get(id(n)) for n in nodes]
    lines = [_box_lines(i, n, i == len(nodes) - 1, g) for i, (n, g) in enumerate(zip(nodes, grads))]
    if table is not None:  # say so where no gradient exists, rather than leave the reader guessing
        for node_lines, g in zip(lines, grads):
            if g is None:
                node_lines.append(("no grad needed", "nograd"))
    layout = _make_layout(nodes, [_box_size(node_lines) for node_lines in lines])
    norms = None if table is None else [None if g is None else _norm(g) for g in grads]
    svg = _render(layout, nodes, _Frame(lines, grad_norms=norms))
    if path is not None:
        _write(svg, path, "graph", (".svg",))
    return svg


# ------------------------------------------------------------------------------- step-through
# The local derivative of each common op with respect to each argument, in words: the factor
# the engine multiplies the upstream gradient g by (or the matrix form of that product).
_LOCAL = {
    "add": ("1", "1"),
    "sub": ("1", "-1"),
    "mul": ("the other factor", "the other factor"),
    "div": ("1 / b", "-a / b²"),
    "neg": ("-1",),
    "matmul": ("matrix form: g @ Bᵀ", "matrix form: Aᵀ @ g"),
    "linear": ("matrix form: g @ Wᵀ", "matrix form: xᵀ @ g", "1, summed over the batch"),
    "sum": ("1: g is broadcast back to the input's shape",),
    "mean": ("1/n: g is broadcast back and divided by the count",),
    "relu": ("1 where the input > 0, else 0",),
    "leaky_relu": ("1 where the input > 0, else the slope",),
    "sigmoid": ("σ(x)·(1 - σ(x))",),
    "tanh": ("1 - tanh²(x)",),
    "exp": ("exp(x), the output itself",),
    "log": ("1 / x",),
    "sqrt": ("1 / (2·√x)",),
    "square": ("2·x",),
    "pow": ("p·x^(p-1)", "x^p·ln(x)"),
    "abs": ("sign(x)",),
    "softmax": ("the softmax Jacobian: s·(g - Σ g·s)",),
    "log_softmax": ("g - softmax(x)·Σ g",),
    "sparse_softmax_cross_entropy": ("softmax(logits) - one_hot(labels)",),
    "max": ("1 at the maximum, 0 elsewhere",),
    "maximum": ("1 where a is the larger, else 0", "1 where b is the larger, else 0"),
    "minimum": ("1 where a is the smaller, else 0", "1 where b is the smaller, else 0"),
    "clip": ("1 inside the bounds, 0 where clipped",),
    "getitem": ("1 at the selected entries, 0 elsewhere",),
    "reshape": ("1: g is reshaped back",),
    "transpose": ("1: g is transposed back",),
}


def _local_words(node: Tensor, argument: int, parent: Tensor) -> str:
    words = _LOCAL.get(node._op, ())
    text = words[argument] if argument < len(words) else "computed by the op's backward"
    if parent.shape != node.shape and node._op in ("add", "sub", "mul", "div"):
        text += f", summed over the broadcast axes to {_shape_text(parent.shape)}"
    return text


@dataclass
class _Step:
    """What the engine does at one node: its upstream gradient and what it sends its parents."""

    node: int
    upstream: np.ndarray | None
    sent: list[tuple[int, int, int, np.ndarray | None]]  # (chain, argument, parent, gradient)


def _chain_rule_steps(nodes: list, grads: dict[int, np.ndarray]) -> list[_Step]:
    """The engine's loop, one step per node from the output back (reverse topological order),
    with each parent link's contribution: the node's backward applied to its complete gradient.

    The backward closures run as in ``ember.grad`` on intermediate targets (exact mode: no
    fused shortcut hands a gradient to a later op), on copies, with the graph kept."""
    index = {id(n): i for i, n in enumerate(nodes)}
    chain_of, c = {}, 0
    for i, node in enumerate(nodes):
        for argument in range(len(node._parents)):
            chain_of[(i, argument)] = c
            c += 1
    steps = []
    previous, _grad_mode.exact_intermediates = _grad_mode.exact_intermediates, True
    try:
        for i in range(len(nodes) - 1, -1, -1):
            node, upstream = nodes[i], grads.get(id(nodes[i]))
            sent = []
            if upstream is not None and node._backward is not None:
                parent_grads = node._backward(np.array(upstream, copy=True))
                for argument, (parent, g) in enumerate(zip(node._parents, parent_grads)):
                    keep = g is not None and parent.requires_grad
                    contribution = np.array(g, dtype=parent.dtype, copy=True) if keep else None
                    chain = chain_of[(i, argument)]
                    sent.append((chain, argument, index[id(parent)], contribution))
            steps.append(_Step(i, upstream, sent))
    finally:
        _grad_mode.exact_intermediates = previous
    return steps


def _step_caption(k: int, steps: list[_Step], nodes: list) -> list[str]:
    """Frame ``k``'s caption: what the engine does at this node, wrapped to 110 characters."""
    node = nodes[steps[k].node]
    lines = [
        f"Step {k + 1} of {len(steps)}: n{steps[k].node} {_title(node)} {_shape_text(node.shape)}",
        *_step_explanation(k, steps[k], nodes),
        "(orange: the current node and what it sends back; green: done, arrows show where the "
        "gradient went; italic: gradient received so far)",
    ]
    wrapped = []
    for line in lines:
        indent = "      " if line.startswith("  →") else ""
        wrapped += textwrap.wrap(line, 110, subsequent_indent=indent) or [""]
    return wrapped


def _step_explanation(k: int, step: _Step, nodes: list) -> list[str]:
    node = nodes[step.node]
    name = f"n{step.node} {_title(node)}"
    if step.upstream is None:
        return [f"{name} needs no gradient (an input or a constant): the engine skips it."]
    if k == 0:
        lines = [f"Start: ∂L/∂L = {_summary(step.upstream)} (the seed of backpropagation)."]
    else:
        lines = [
            f"Upstream gradient ∂L/∂n{step.node} = {_summary(step.upstream)}, complete: every "
            "op that uses this node has sent its share."
        ]
    if node._backward is None:
        return [*lines, f"{name} is a leaf: its gradient is final; backward() stores it in .grad."]
    lines.append(f"Chain rule: ∂L/∂parent += ∂L/∂n{step.node} × ∂n{step.node}/∂parent.")
    for _, argument, parent, contribution in step.sent:
        who = f"n{parent} {_title(nodes[parent])}"
        if contribution is None:
            lines.append(f"  → {who}: needs no gradient, nothing sent.")
            continue
        local = _local_words(node, argument, nodes[parent])
        lines.append(
            f"  → {who}: local ∂n{step.node}/∂n{parent} = {local}; receives "
            f"{_summary(contribution)}"
        )
    return lines


def backprop_steps(loss: Tensor, max_nodes: int = 200) -> BackpropSteps:
    """Backpropagation through ``loss``'s graph, one SVG frame per node.

    The frames follow the engine's order (reverse topological: the output first, then each node
    once every op that uses it has sent its gradient back). In frame ``k`` the current node is
    orange, the nodes already processed green with their complete gradient, the others show
    the gradient received so far ("grad so far"); the links the current node sends gradients
    along are orange and labelled with the norm sent, and the caption spells out the chain-rule
    step: the upstream gradient, and per parent the local derivative and what it receives. The
    graph is kept (``retain_graph``); no ``.grad`` changes. All frames share one layout.

    Args:
        loss: a scalar tensor made by Ember ops, whose graph has not been freed.
        max_nodes: refuse graphs with more nodes than this (``ValueError``).

    Returns:
        a :class:`BackpropSteps` (a list of SVG strings; ``.save(path)`` writes the HTML
        stepper, as :func:`to_html` does; a notebook shows the stepper).

    Example:
        >>> from ember.graph_drawing import backprop_steps
        >>> x = ember.tensor([[1.0, 2.0]])
        >>> w = ember.tensor([[0.5], [-1.0]], requires_grad=True)
        >>> frames = backprop_steps(((x @ w) ** 2).mean())
        >>> len(frames)  # x, w, matmul, pow, mean
        5
        >>> 'data-step="0"' in frames[0]
        True
    """
    _check_tensor(loss, "backprop_steps", "loss")
    nodes = _collect(loss, max_nodes, "backprop_steps", "loss")
    traced = _trace(loss, None, "backprop_steps", "loss")
    complete = {id(n): g for n, g in traced.items() if g is not None}
    steps = _chain_rule_steps(nodes, complete)
    frames = [_step_frame(k, steps, nodes, complete) for k in range(len(steps))]
    # one layout for all the frames, sized for the largest content of every box
    boxes = [[_box_size(frame.lines[v]) for frame in frames] for v in range(len(nodes))]
    sizes = [(max(w for w, _ in b), max(h for _, h in b)) for b in boxes]
    layout = _make_layout(nodes, sizes)
    return BackpropSteps(_render(layout, nodes, frame) for frame in frames)


def _step_frame(k: int, steps: list[_Step], nodes: list, complete: dict) -> _Frame:
    """Frame ``k``: the state of the graph right after the engine processed step ``k``."""
    processed = {s.node for s in steps[: k + 1]}
    partial: dict[int, np.ndarray] = {}
    carried: set[int] = set()
    for s in steps[: k + 1]:
        for chain, _, parent, contribution in s.sent:
            if contribution is not None:
                carried.add(chain)
                partial[parent] = contribution + partial.get(parent, 0)
    last = len(nodes) - 1
    lines, states, norms = [], [], []
    for v, node in enumerate(nodes):
        if v in processed:
            g, style = complete.get(id(node)), "grad"
        else:
            g, style = partial.get(v), "partial"
        node_lines = _box_lines(v, node, v == last, g, style)
        if v in processed and g is None:
            node_lines.append(("no grad needed", "nograd"))
        lines.append(node_lines)
        states.append("current" if v == steps[k].node else "done" if v in processed else "pending")
        norms.append(None if g is None or v not in processed else _norm(g))
    active = {chain for chain, _, _, c in steps[k].sent if c is not None}
    edge_styles = []
    for c in range(sum(len(n._parents) for n in nodes)):
        edge_styles.append("active" if c in active else "carried" if c in carried else "plain")
    labels = {chain: f"{_norm(c):.3g}" for chain, _, _, c in steps[k].sent if c is not None}
    caption = _step_caption(k, steps, nodes)
    return _Frame(lines, states, edge_styles, labels, caption, norms, k)


# ------------------------------------------------------------------------------- HTML stepper
_STEPPER_SCRIPT = """(function () {
  var root = document.getElementById(%(id)s);
  var frames = %(frames)s;
  var at = 0;
  var view = root.querySelector(".eg-frame"), counter = root.querySelector(".eg-counter");
  function show(k) {
    at = Math.max(0, Math.min(frames.length - 1, k));
    view.innerHTML = frames[at];
    counter.textContent = (at + 1) + " / " + frames.length;
    if (%(hash)s) {
      try { history.replaceState(null, "", "#step=" + (at + 1)); } catch (e) {}
    }
  }
  root.querySelector(".eg-first").onclick = function () { show(0); };
  root.querySelector(".eg-prev").onclick = function () { show(at - 1); };
  root.querySelector(".eg-next").onclick = function () { show(at + 1); };
  root.querySelector(".eg-last").onclick = function () { show(frames.length - 1); };
  root.addEventListener("keydown", function (e) {
    if (e.key === "ArrowLeft") { show(at - 1); e.preventDefault(); }
    if (e.key === "ArrowRight") { show(at + 1); e.preventDefault(); }
  });
  var start = %(hash)s ? /step=(\\d+)/.exec(location.hash) : null;
  show(start ? parseInt(start[1], 10) - 1 : 0);
})();"""


def _stepper_fragment(frames: list[str], element_id: str, use_hash: bool = False) -> str:
    """A ``<div>`` with the buttons and the first frame, and the script that steps (frames
    are held as JSON; every ``<`` is escaped so no frame can end the script early). With
    ``use_hash`` (a page of its own, not a notebook cell) the URL's ``#step=N`` opens frame N
    and follows the stepping, so a link can point at one step."""
    data = json.dumps(frames).replace("<", "\\u003c")
    script = _STEPPER_SCRIPT % {
        "id": json.dumps(element_id),
        "frames": data,
        "hash": "true" if use_hash else "false",
    }
    return (
        f'<div class="ember-steps" id="{_esc(element_id)}" tabindex="0">'
        '<div class="eg-controls"><button class="eg-first" type="button">« First</button> '
        '<button class="eg-prev" type="button">◀ Previous</button> '
        f'<span class="eg-counter">1 / {len(frames)}</span> '
        '<button class="eg-next" type="button">Next ▶</button> '
        '<button class="eg-last" type="button">Last »</button></div>'
        f'<div class="eg-frame">{frames[0]}</div></div><script>{script}</script>'
    )


def to_html(
    frames: Sequence[str], path: str | os.PathLike | None = None, title: str = "Backpropagation"
) -> str:
    """A self-contained HTML page stepping through ``frames`` (Previous/Next, arrow keys).

    No network access: the frames and a few lines of inline JavaScript are in the page. The
    address ``page.html#step=3`` opens the third frame (the address follows the stepping).

    Args:
        frames: SVG strings, e.g. :func:`backprop_steps`'s result.
        path: also write the page there (must end in ``.html`` or ``.htm``).
        title: the page's title and heading.

    Example:
        >>> import os, tempfile
        >>> from ember.graph_drawing import backprop_steps, to_html
        >>> frames = backprop_steps((ember.tensor([2.0], requires_grad=True) ** 2).sum())
        >>> with tempfile.TemporaryDirectory() as d:
        ...     page = to_html(frames, os.path.join(d, "steps.html"))
        ...     os.path.getsize(os.path.join(d, "steps.html")) > 1000
        True
        >>> page.count("<button")
        4
    """
    if isinstance(frames, str) or not isinstance(frames, Sequence):
        raise TypeError(
            f"to_html: frames must be a list of SVG strings, got {type(frames).__name__}"
        )
    if not frames or not all(isinstance(f, str) and f.lstrip().startswith("<svg") for f in frames):
        raise ValueError(
            "to_html: frames must be a non-empty list of SVG strings (each starting with '<svg'), "
            "e.g. the result of backprop_steps(loss)"
        )
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;margin:1.5em;color:#202124}"
        ".eg-controls{margin:0.6em 0}.eg-controls button{font-size:1em;padding:0.3em 0.8em}"
        ".eg-counter{display:inline-block;min-width:5em;text-align:center}"
        ".eg-frame{overflow:auto}</style></head><body>"
        f"<h1>{_esc(title)}</h1><p>Step through with the buttons or the arrow keys.</p>"
        + _stepper_fragment(list(frames), "ember-steps", use_hash=True)
        + "</body></html>\n"
    )
    if path is not None:
        _write(page, path, "to_html", (".html", ".htm"))
    return page
