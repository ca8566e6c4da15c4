"""Version counters and in-place operators: changing a tensor a graph used, before that graph's
backward, raises a RuntimeError naming the tensor (PyTorch's safety net), while the same change
after backward, and an ordinary training loop, never raise."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import Tensor
from ember.tensor import GradientTape
from ember.variables import Parameter, Variable


def weight(values, name="w") -> Tensor:
    return Tensor(np.asarray(values, dtype=np.float32), requires_grad=True, name=name)


def constant(values, name=None) -> Tensor:
    return Tensor(np.asarray(values, dtype=np.float32), name=name)


# ------------------------------------------------------------------------------ the counter
def test_every_kind_of_change_bumps_the_version():
    t = constant([1.0, 2.0, 3.0])
    assert t._version == 0
    t.data = np.zeros(3, np.float32)
    assert t._version == 1
    t.data -= 1.0  # writes into the array, then assigns it back through the setter
    assert t._version == 2
    t[0] = 5.0
    assert t._version == 3
    t += 1.0
    t *= 2.0
    t -= 1.0
    t /= 2.0
    t **= 1.0
    assert t._version == 8
    t._bump_version()
    assert t._version == 9
    v = Variable([1.0, 2.0])
    v.assign([0.0, 0.0])
    v.assign_add(1.0)
    v.assign_sub(np.ones(2))
    assert v._version == 3
    np.testing.assert_array_equal(t.data, [5.5, -0.5, -0.5])


def test_reading_never_bumps():
    w = weight([1.0, 2.0])
    loss = (w * w).sum()
    _ = w.data, w.numpy(), w.shape, w.dtype, w[0], w.detach()
    loss.backward()
    assert w._version == 0


def test_data_setter_converts_lists():
    t = constant([1.0])
    t.data = [1.5, 2.5]
    assert isinstance(t.data, np.ndarray) and t.data.dtype == np.float32 and t._version == 1


# ------------------------------------------------------------------------------ the errors
def test_bad_input_inplace_change_before_backward_data():
    """An optimizer-like ``w.data -= ...`` between forward and backward."""
    x = constant(np.ones((2, 3)))
    w = weight(np.ones((3, 1)), name="dense/kernel")
    loss = (x @ w).sum()
    w.data -= 0.1 * np.ones((3, 1), np.float32)
    with pytest.raises(RuntimeError) as info:
        loss.backward()
    message = str(info.value)
    for part in ("'dense/kernel'", "(3, 1)", "float32", "'matmul'", "version 0", "version 1"):
        assert part in message, part
    assert "after backward()" in message and "clone()" in message


def test_bad_input_inplace_change_before_backward_setitem():
    """``t[i] = v`` on an input the graph saved (a constant: it never requires grad)."""
    x = constant([1.0, 2.0, 3.0], name="batch")
    w = weight([0.5, 0.5, 0.5])
    loss = (x * w).sum()
    x[0] = 10.0
    with pytest.raises(RuntimeError, match="'batch'.*'mul'.*version 0.*version 1"):
        loss.backward()
    assert w.grad is None


def test_inplace_operator_under_no_grad_on_a_saved_input_raises_at_backward():
    x = constant([1.0, 2.0], name="x")
    w = weight([3.0, 4.0])
    loss = (x * w).sum()
    with ember.no_grad():
        x += 1
    with pytest.raises(RuntimeError, match="'x'"):
        loss.backward()
    # the leaf itself, updated PyTorch-style, is caught the same way
    loss = (x * w).sum()
    with ember.no_grad():
        w -= 0.1
    with pytest.raises(RuntimeError, match="'w'.*version 0.*version 1"):
        loss.backward()


def test_the_same_changes_after_backward_are_fine():
    x = constant([1.0, 2.0], name="x")
    w = weight([3.0, 4.0])
    loss = (x * w).sum()
    loss.backward()
    w.data -= 0.5 * w.grad
    x[0] = 7.0
    with ember.no_grad():
        x += 1
        w -= 0.5
    w.grad = None
    (x * w).sum().backward()
    np.testing.assert_array_equal(w.grad, [8.0, 3.0])


def test_retain_graph_then_update_then_second_backward_raises():
    w = weight([1.0, 2.0])
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    loss.backward(retain_graph=True)  # nothing changed: fine
    np.testing.assert_array_equal(w.grad, [4.0, 8.0])
    with ember.no_grad():
        w -= 0.1 * w.grad
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


def test_ember_grad_and_the_tape_check_versions_too():
    w = weight([1.0, 2.0])
    loss = (w * w).sum()
    w.data = np.zeros(2, np.float32)
    with pytest.raises(RuntimeError, match="modified in place"):
        ember.grad(loss, [w])
    v = Variable([1.0, 2.0], name="v")
    with GradientTape() as tape:
        loss = (v * v).sum()
    v.assign_add(1.0)
    with pytest.raises(RuntimeError, match="Variable 'v'"):
        tape.gradient(loss, v)


def test_a_changed_intermediate_is_caught():
    x = weight([0.5, 1.0], name="x")
    h = x.exp()
    h.name = "h"
    loss = (h * h).sum()
    with ember.no_grad():
        h *= 2.0  # h's array is frozen by the graph: copied first, then changed
    with pytest.raises(RuntimeError, match="'h'.*output of the op 'exp'"):
        loss.backward()


def test_detach_shares_the_version_counter():
    w = weight([1.0, 2.0])
    loss = (w * w).sum()
    d = w.detach()
    d += 1.0  # writes into w's array (shared, as in PyTorch)
    np.testing.assert_array_equal(w.data, [2.0, 3.0])
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


def test_an_unrecorded_view_shares_the_version_counter():
    w = weight([1.0, 2.0, 3.0])
    loss = (w * w).sum()
    with ember.no_grad():
        head = w[:2]  # a view of w's array
        head += 1.0
    np.testing.assert_array_equal(w.data, [2.0, 3.0, 3.0])
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


def test_clone_before_changing_is_the_fix():
    w = weight([1.0, 2.0])
    x = constant([3.0, 4.0], name="x")
    loss = (x.clone() * w).sum()
    x[0] = 100.0  # the graph holds the clone, not x
    loss.backward()
    np.testing.assert_array_equal(w.grad, [3.0, 4.0])


# ------------------------------------------------------------------------------ training loops
def test_a_normal_training_loop_never_raises():
    ember.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 4)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5], [3.0]], np.float32)
    model = ember.models.Sequential(
        [
            ember.layers.Input(shape=(4,)),
            ember.layers.Dense(8, activation="tanh"),
            ember.layers.Dense(1),
        ]
    )
    optimizer = ember.optimizers.SGD(model.parameters(), learning_rate=0.05, momentum=0.9)
    losses = []
    for _ in range(60):
        loss = ember.losses.mean_squared_error(y, model(x)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
    # the PyTorch idiom, in place under no_grad, on the same parameters
    params = model.parameters()
    identities = [id(p) for p in params]
    for _ in range(5):
        loss = ember.losses.mean_squared_error(y, model(x)).mean()
        for p in params:
            p.grad = None
        loss.backward()
        with ember.no_grad():
            for p in params:
                p -= 0.01 * p.grad
    assert [id(p) for p in model.parameters()] == identities
    # and fit
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_op_outputs_stay_read_only_while_recorded():
    x = weight([0.5, 1.0])
    y = x.exp()
    assert not y.data.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        y.data[...] = 0
    with ember.no_grad():
        z = x.exp()
    assert z.data.flags.writeable


# ------------------------------------------------------------------------------ in-place operators
def test_inplace_under_no_grad_keeps_identity_dtype_and_bumps():
    p = Parameter(np.ones(3, np.float32), name="p")
    (p * p).sum().backward()
    before = id(p)
    with ember.no_grad():
        p -= 0.25 * p.grad  # p.grad is a NumPy array
        p *= np.float64(2.0)  # a float64 operand never up-casts the parameter
        p /= Tensor(np.full(3, 2.0))  # a float64 Tensor either
        p += 1
        p **= 2
    assert id(p) == before and isinstance(p, Parameter)
    assert p.dtype == np.float32 and p.requires_grad and p.is_leaf
    np.testing.assert_allclose(p.data, np.full(3, 2.25))
    assert p._version == 5


def test_inplace_on_a_leaf_that_requires_grad_while_recording_raises():
    w = weight([1.0, 2.0], name="w")
    with pytest.raises(RuntimeError, match=r"leaf tensor that requires grad .*'w'.*no_grad"):
        w += 1.0
    with pytest.raises(RuntimeError, match="in-place"):
        w[0] = 3.0
    with pytest.raises(RuntimeError, match="in-place operation `zero_\\(\\)`"):
        w.zero_()
    np.testing.assert_array_equal(w.data, [1.0, 2.0])
    assert w._version == 0
    with ember.no_grad():
        w[0] = 3.0  # allowed for a leaf under no_grad (e.g. to initialise a weight)
    np.testing.assert_array_equal(w.data, [3.0, 2.0])


def test_inplace_on_a_non_leaf_while_recording_is_out_of_place():
    w = weight([1.0, 2.0])
    h = w * 3.0
    original = h
    h += w  # rebinds h: a new tensor in the graph
    assert h is not original and h._op == "add"
    h *= 2.0
    h.sum().backward()
    np.testing.assert_array_equal(w.grad, [8.0, 8.0])  # d/dw 2(3w + w)
    # a constant plus a tensor that requires grad is recorded out of place too
    c = constant([1.0, 1.0])
    c_before = c
    c += w
    assert c is not c_before and c.requires_grad and c_before._version == 0


def test_inplace_without_grad_on_a_read_only_array_copies_first():
    x = weight([1.0, 2.0])
    y = x * 2.0
    frozen = y.data
    with ember.no_grad():
        y += 1.0
    np.testing.assert_array_equal(frozen, [2.0, 4.0])  # the graph's array never changes
    np.testing.assert_array_equal(y.data, [3.0, 5.0])
    base = np.broadcast_to(np.float32(1.0), (3,))  # a read-only user array
    t = Tensor(base)
    t += 1.0
    assert t.data.flags.writeable and base[0] == 1.0


def test_inplace_errors_are_clear():
    t = Tensor(np.arange(3))
    with pytest.raises(TypeError, match="keeps the dtype"):
        t /= 2
    with pytest.raises(ValueError, match=r"operand of shape \(2, 3\).*out-of-place"):
        constant([1.0, 2.0, 3.0]).__iadd__(np.ones((2, 3)))
    t += 1  # integer stays integer
    np.testing.assert_array_equal(t.data, [1, 2, 3])
    assert t.dtype.kind == "i"


def test_zero_():
    t = constant([np.nan, 2.0])
    assert t.zero_() is t
    np.testing.assert_array_equal(t.data, [0.0, 0.0])
    w = weight([1.0, 2.0])
    h = w * 2.0
    h = h.zero_()  # non-leaf while recording: a new constant tensor of zeros
    np.testing.assert_array_equal(h.data, [0.0, 0.0])
