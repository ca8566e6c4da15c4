"""The computation graph drawn as SVG (ember.graph_drawing: graph, trace_backward,
backprop_steps, to_html), issue 14 item 2.

Every drawing is parsed with xml.etree (well-formed SVG) and read back through the ``data-*``
attributes the boxes and edges carry: which nodes, which parent links, which gradient norms.
The numbers are compared with ``ember.grad`` and with ``backward()``'s ``.grad``.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter

import numpy as np
import pytest

import ember
from ember import layers
from ember._graph import topological_order
from ember.graph_drawing import (
    SVG,
    BackpropSteps,
    _chain_rule_steps,
    backprop_steps,
    graph,
    to_html,
    trace_backward,
)

NS = "{http://www.w3.org/2000/svg}"


def _nodes_of(tensor) -> list:
    """The graph's tensors in the drawing's numbering (n0, n1, ...: parents first)."""
    return topological_order([tensor], lambda t: t._parents)


def _parse(svg: str):
    """(boxes by node id, edges as (source, target, argument)) of a drawing."""
    root = ET.fromstring(svg)
    assert root.tag == NS + "svg"
    boxes = {g.get("data-node"): g for g in root.iter(NS + "g") if g.get("data-node")}
    edges = [
        (g.get("data-source"), g.get("data-target"), int(g.get("data-argument")))
        for g in root.iter(NS + "g")
        if "eg-edge" in g.get("class", "").split()
    ]
    return boxes, edges


def _texts(box) -> list[str]:
    return [t.text for t in box.iter(NS + "text")]


def _rect(box) -> tuple[float, float, float, float]:
    r = box.find(NS + "rect")
    x, y = float(r.get("x")), float(r.get("y"))
    return x, y, x + float(r.get("width")), y + float(r.get("height"))


def _small():
    x = ember.tensor(np.arange(12, dtype=np.float32).reshape(4, 3))
    w = ember.tensor(np.array([1.0, -2.0, 0.5], np.float32), requires_grad=True)
    b = ember.tensor(0.5, requires_grad=True)
    return x, w, b, (x * w).sum() + b


def _mlp_loss():
    ember.manual_seed(0)
    model = ember.models.Sequential(
        [layers.Input(shape=(3,)), layers.Dense(4, activation="relu"), layers.Dense(2)]
    )
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    loss_fn = ember.losses.SparseCategoricalCrossentropy(from_logits=True)
    return model, loss_fn(np.array([0, 1, 1, 0, 1]), model(x))


# ------------------------------------------------------------------------------- graph()
def test_small_graph_nodes_edges_and_output():
    x, w, b, y = _small()
    svg = graph(y)
    assert isinstance(svg, SVG) and isinstance(svg, str) and svg._repr_svg_() == svg
    boxes, edges = _parse(svg)
    described = [
        (k, g.get("data-title"), g.get("data-kind"), g.get("data-shape")) for k, g in boxes.items()
    ]
    assert described == [
        ("n0", "input", "input", "(4, 3)"),
        ("n1", "weight", "weight", "(3,)"),
        ("n2", "mul", "op", "(4, 3)"),
        ("n3", "sum", "op", "scalar"),
        ("n4", "weight", "weight", "scalar"),
        ("n5", "add", "op", "scalar"),
    ]
    assert sorted(edges) == [
        ("n0", "n2", 0),
        ("n1", "n2", 1),
        ("n2", "n3", 0),
        ("n3", "n5", 0),
        ("n4", "n5", 1),
    ]
    outputs = [k for k, g in boxes.items() if "output" in g.get("class").split()]
    assert outputs == ["n5"]
    assert "OUTPUT" in _texts(boxes["n5"])
    assert "(4, 3) float32" in _texts(boxes["n2"])
    assert "= -12.5" in _texts(boxes["n5"])  # tiny tensors show their values: 18 - 44 + 13 + 0.5
    assert "= [1, -2, 0.5]" in _texts(boxes["n1"])
    # weights, inputs and ops are drawn differently
    fills = {k: g.find(NS + "rect").get("fill") for k, g in boxes.items()}
    assert fills["n1"] == fills["n4"] != fills["n0"] != fills["n2"] != fills["n1"]
    assert boxes["n0"].find(NS + "rect").get("stroke-dasharray")  # inputs: dashed


def test_layout_parents_above_children_and_no_overlapping_boxes():
    _, loss = _mlp_loss()
    boxes, edges = _parse(graph(loss, gradients=True))
    rects = {k: _rect(g) for k, g in boxes.items()}
    for source, target, _ in edges:
        assert rects[source][3] < rects[target][1]  # the parent's bottom above the child's top
    keys = sorted(rects)
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = rects[a], rects[b]
            assert ax1 <= bx0 or bx1 <= ax0 or ay1 <= by0 or by1 <= ay0, (a, b)


def test_mlp_loss_graph_ops_shapes_and_one_edge_per_parent_link():
    _, loss = _mlp_loss()
    nodes = _nodes_of(loss)
    boxes, edges = _parse(graph(loss))
    assert len(boxes) == len(nodes) == 10
    ops = Counter(g.get("data-op") for g in boxes.values() if g.get("data-kind") == "op")
    assert ops == {"linear": 2, "relu": 1, "sparse_softmax_cross_entropy": 1, "mean": 1}
    weights = [
        (g.get("data-title"), g.get("data-shape"))
        for g in boxes.values()
        if g.get("data-kind") == "weight"
    ]
    assert weights == [
        ("kernel", "(3, 4)"),
        ("bias", "(4,)"),
        ("kernel", "(4, 2)"),
        ("bias", "(2,)"),
    ]
    assert len(edges) == sum(len(t._parents) for t in nodes) == 9
    for k, g in boxes.items():
        assert g.get("data-shape") == (
            "scalar" if nodes[int(k[1:])].shape == () else str(nodes[int(k[1:])].shape)
        )
    incoming = {}
    for source, target, argument in edges:
        incoming.setdefault(target, []).append(
            (argument, boxes[source].get("data-title"), boxes[source].get("data-shape"))
        )
    linears = [k for k, g in boxes.items() if g.get("data-op") == "linear"]
    assert sorted(incoming[linears[0]]) == [
        (0, "input", "(5, 3)"),
        (1, "kernel", "(3, 4)"),
        (2, "bias", "(4,)"),
    ]
    assert sorted(incoming[linears[1]]) == [
        (0, "relu", "(5, 4)"),
        (1, "kernel", "(4, 2)"),
        (2, "bias", "(2,)"),
    ]


def test_a_tensor_used_twice_gets_two_edges():
    a = ember.tensor([1.0, 2.0], requires_grad=True)
    _, edges = _parse(graph((a * a).sum()))
    assert sorted(edges) == [("n0", "n1", 0), ("n0", "n1", 1), ("n1", "n2", 0)]


def test_a_leaf_alone_is_one_box():
    boxes, edges = _parse(graph(ember.tensor([1.0, 2.0])))
    assert list(boxes) == ["n0"] and edges == []
    assert boxes["n0"].get("class").split() == ["eg-node", "input", "output"]


def test_graph_writes_the_file(tmp_path):
    *_, y = _small()
    path = tmp_path / "sub" / "graph.svg"
    svg = graph(y, path=path)
    assert path.read_text(encoding="utf-8") == svg
    ET.parse(path)  # well-formed as a file too


# ------------------------------------------------------------------------------- gradients
def test_trace_backward_matches_ember_grad_and_backward():
    model, loss = _mlp_loss()
    traced = trace_backward(loss)
    nodes = _nodes_of(loss)
    assert list(traced) == nodes  # every node, keyed by the tensor itself
    for node in nodes:
        if node.requires_grad:
            (expected,) = ember.grad(loss, [node], retain_graph=True)
            np.testing.assert_allclose(traced[node], expected, rtol=1e-6, atol=1e-7)
        else:
            assert traced[node] is None  # the input batch
    assert traced[loss] == 1.0
    loss.backward()  # the graph was kept, and no .grad was touched before
    for weight in model.weights:
        np.testing.assert_allclose(traced[weight], weight.grad, rtol=1e-6, atol=1e-7)


def test_gradients_shown_equal_ember_grad():
    _, loss = _mlp_loss()
    svg = graph(loss, gradients=True)
    boxes, _ = _parse(svg)
    for node, (key, box) in zip(_nodes_of(loss), boxes.items()):
        if not node.requires_grad:
            assert box.get("data-grad-norm") is None
            assert "no grad needed" in _texts(box)
            continue
        (expected,) = ember.grad(loss, [node], retain_graph=True)
        norm = float(box.get("data-grad-norm"))
        assert norm == pytest.approx(float(np.linalg.norm(expected)), rel=1e-5), key
        shown = next(t for t in _texts(box) if t.startswith("grad ") and "norm" in t)
        assert float(shown.split("norm ")[1]) == pytest.approx(norm, rel=1e-3)
        if expected.size <= 4:  # tiny: the values themselves
            values = next(t for t in _texts(box) if t.startswith("grad = "))
            numbers = [float(v) for v in re.findall(r"-?\d+\.?\d*(?:e-?\d+)?", values)]
            np.testing.assert_allclose(numbers, np.ravel(expected), rtol=1e-3, atol=1e-6)
    # the same picture from trace_backward's dict, and without gradients none is shown
    assert graph(loss, gradients=trace_backward(loss)) == svg
    assert "data-grad-norm" not in graph(loss)


# ------------------------------------------------------------------------------- step-through
def test_backprop_steps_one_frame_per_node_in_engine_order():
    _, loss = _mlp_loss()
    nodes = _nodes_of(loss)
    frames = backprop_steps(loss)
    assert isinstance(frames, BackpropSteps) and len(frames) == len(nodes) == 10
    for k, frame in enumerate(frames):
        root = ET.fromstring(frame)
        assert root.get("data-step") == str(k)
        boxes, _ = _parse(frame)
        current = [key for key, g in boxes.items() if "current" in g.get("class").split()]
        done = [key for key, g in boxes.items() if "done" in g.get("class").split()]
        assert current == [f"n{len(nodes) - 1 - k}"]  # reverse topological order
        assert len(done) == k
    first_linear = 7  # n7: the second Dense layer's linear, the 3rd node processed
    caption = " ".join(
        t.text
        for t in ET.fromstring(frames[2]).iter(NS + "text")
        if "eg-caption" in t.get("class", "")
    )
    assert f"Step 3 of 10: n{first_linear} linear (5, 2)" in caption
    assert "matrix form: g @ Wᵀ" in caption and "1, summed over the batch" in caption
    assert "Start: ∂L/∂L = scalar norm 1 = 1" in " ".join(
        t.text for t in ET.fromstring(frames[0]).iter(NS + "text")
    )
    # the last frame shows every gradient, equal to ember.grad's
    boxes, _ = _parse(frames[-1])
    for node, box in zip(nodes, boxes.values()):
        if node.requires_grad:
            (expected,) = ember.grad(loss, [node], retain_graph=True)
            assert float(box.get("data-grad-norm")) == pytest.approx(
                float(np.linalg.norm(expected)), rel=1e-5
            )


def test_chain_rule_steps_add_up_to_the_gradients():
    """What each node sends its parents (upstream x local derivative), summed over the ops that
    use a tensor, is that tensor's gradient: the caption's numbers are the engine's."""
    x = ember.tensor([0.5, -1.0], requires_grad=True)
    y = (x * x.exp() + x).tanh().sum()
    nodes = _nodes_of(y)
    traced = trace_backward(y)
    steps = _chain_rule_steps(nodes, {id(n): g for n, g in traced.items() if g is not None})
    assert [s.node for s in steps] == list(range(len(nodes) - 1, -1, -1))
    received = {}
    for step in steps:
        for _, _, parent, sent in step.sent:
            received[parent] = received.get(parent, 0) + sent
    for i, node in enumerate(nodes[:-1]):
        np.testing.assert_allclose(received[i], traced[node], rtol=1e-6)
    x_value = np.array([0.5, -1.0])
    inner = x_value * np.exp(x_value) + x_value
    expected = (1 - np.tanh(inner) ** 2) * (np.exp(x_value) * (1 + x_value) + 1)
    np.testing.assert_allclose(traced[x], expected, rtol=1e-5)


def test_html_page_is_written_and_self_contained(tmp_path):
    a = ember.tensor([2.0], requires_grad=True)
    frames = backprop_steps((a * a).sum())
    path = tmp_path / "steps.html"
    page = to_html(frames, path, title="a * a")
    assert path.read_text(encoding="utf-8") == page
    assert page.startswith("<!DOCTYPE html>") and "<title>a * a</title>" in page
    assert page.count("<button") == 4
    assert "https://" not in page and "<script src" not in page  # no CDN, works offline
    data = re.search(r"var frames = (\[.*?\]);\n", page).group(1)
    assert json.loads(data) == list(frames)  # every frame, intact
    assert "</svg>" not in data  # escaped: no frame can close the script early
    saved = frames.save(tmp_path / "again.html")
    assert saved.read_text(encoding="utf-8") == to_html(frames)  # the default title
    fragment = frames._repr_html_()
    assert fragment.startswith('<div class="ember-steps"') and frames[0] in fragment


# ------------------------------------------------------------------------------- refusals
def test_freed_graph_is_refused():
    *_, y = _small()
    graph(y)
    y.backward()
    for call in (graph, trace_backward, backprop_steps):
        with pytest.raises(ValueError, match="freed by a backward pass"):
            call(y)
    w = ember.tensor([1.0, 2.0], requires_grad=True)
    z = (w * 3.0).sum()
    ember.grad(z, [w])  # without retain_graph: freed as well
    with pytest.raises(ValueError, match=r"graph: the graph behind `tensor` was freed"):
        graph(z)
    kept = (w * 3.0).sum()
    kept.backward(retain_graph=True)
    assert len(_parse(graph(kept))[0]) == 4  # w, the constant 3, mul, sum


def test_too_large_graph_is_refused():
    h = ember.tensor([1.0], requires_grad=True)
    for _ in range(30):
        h = h.tanh()
    with pytest.raises(ValueError, match=r"more than max_nodes=10 nodes"):
        graph(h, max_nodes=10)
    with pytest.raises(ValueError, match=r"backprop_steps: .*max_nodes=5"):
        backprop_steps(h.sum(), max_nodes=5)
    assert len(_parse(graph(h, max_nodes=31))[0]) == 31
    with pytest.raises(ValueError, match="max_nodes must be a positive int"):
        graph(h, max_nodes=0)


def test_bad_input_is_refused_with_clear_errors(tmp_path):
    *_, y = _small()
    with pytest.raises(TypeError, match=r"graph: tensor must be an ember.Tensor.*ndarray"):
        graph(np.ones(3))
    with pytest.raises(TypeError, match=r"graph: gradients must be None, True.*list"):
        graph(y, gradients=[1.0])
    with pytest.raises(ValueError, match=r"gradient given for the node 'add' has shape \(2,\)"):
        graph(y, gradients={y: np.ones(2)})
    with pytest.raises(ValueError, match=r"graph: path must end in \.svg"):
        graph(y, path=tmp_path / "graph.png")
    w = ember.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"graph: `tensor` has shape \(2,\)"):
        graph(w * 2.0, gradients=True)
    with pytest.raises(ValueError, match="trace_backward: `loss` does not require grad"):
        trace_backward(ember.tensor(1.0))
    with pytest.raises(TypeError, match="backprop_steps: loss must be an ember.Tensor"):
        backprop_steps(1.0)
    with pytest.raises(TypeError, match="to_html: frames must be a list of SVG strings"):
        to_html("<svg/>")
    with pytest.raises(ValueError, match="non-empty list of SVG strings"):
        to_html([])
    with pytest.raises(ValueError, match=r"to_html: path must end in \.html"):
        to_html(backprop_steps(y), tmp_path / "steps.svg")
