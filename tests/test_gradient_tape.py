"""ember.GradientTape (TensorFlow's API over Ember's graph): gradients, structures, watching,
persistence, graph pruning, and the TensorFlow-style training loops of the course."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import ember
from ember import Tensor
from ember.tensor import _FREED, GradientTape
from ember.variables import Variable


def weight(values, name=None) -> Tensor:
    return Tensor(np.asarray(values, dtype=np.float32), requires_grad=True, name=name)


def numeric_gradient(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar function ``f`` of a float64 array."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[i] += eps
        minus[i] -= eps
        grad[i] = (f(plus) - f(minus)) / (2 * eps)
    return grad


# ------------------------------------------------------------------------------ values
def test_gradients_equal_ember_grad_and_finite_differences():
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((5, 3)))  # float64 for tight finite differences
    w_value, b_value = rng.standard_normal((3, 2)), rng.standard_normal(2)

    def f(w, b):
        return ((x @ w + b).tanh() ** 2).sum() + (w * w).mean()

    w, b = Tensor(w_value, requires_grad=True), Tensor(b_value, requires_grad=True)
    with GradientTape() as tape:
        loss = f(w, b)
    dw, db = tape.gradient(loss, [w, b])
    assert isinstance(dw, Tensor) and not dw.requires_grad and dw.dtype == np.float64
    assert w.grad is None and b.grad is None  # never touches .grad

    expected = ember.grad(f(w, b), [w, b])
    np.testing.assert_allclose(dw.data, expected[0], rtol=1e-12)
    np.testing.assert_allclose(db.data, expected[1], rtol=1e-12)
    numeric_w = numeric_gradient(lambda a: f(Tensor(a), Tensor(b_value)).item(), w_value)
    numeric_b = numeric_gradient(lambda a: f(Tensor(w_value), Tensor(a)).item(), b_value)
    np.testing.assert_allclose(dw.data, numeric_w, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(db.data, numeric_b, rtol=1e-6, atol=1e-8)


def test_float32_stays_float32():
    w = weight(np.ones((3, 2)))
    x = np.random.default_rng(0).standard_normal((4, 3))  # float64 data mixed in
    with GradientTape() as tape:
        loss = ((ember.tensor(x, dtype="float32") @ w) * np.float64(2.0)).mean()
    assert tape.gradient(loss, w).dtype == np.float32


def test_parity_with_pytorch(torch):
    rng = np.random.default_rng(1)
    x_value = rng.standard_normal((4, 3)).astype(np.float32)
    w_value = rng.standard_normal((3, 2)).astype(np.float32)
    x, w = Tensor(x_value), Variable(w_value)
    with GradientTape() as tape:
        tape.watch(x)
        loss = (ember.ops.softmax(x @ w, axis=-1) * ember.sigmoid(x @ w)).sum()
    dx, dw = tape.gradient(loss, (x, w))

    tx = torch.tensor(x_value, requires_grad=True)
    tw = torch.tensor(w_value, requires_grad=True)
    t_loss = (torch.softmax(tx @ tw, dim=-1) * torch.sigmoid(tx @ tw)).sum()
    t_dx, t_dw = torch.autograd.grad(t_loss, (tx, tw))
    np.testing.assert_allclose(dx.data, t_dx.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dw.data, t_dw.numpy(), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------ structures
def test_the_structure_of_sources_is_preserved():
    w, b, c = weight([1.0, 2.0]), weight([3.0]), weight([[4.0]])
    with GradientTape(persistent=True) as tape:
        loss = (w * w).sum() + (b * 2.0).sum() + (c * 3.0).sum()
    single = tape.gradient(loss, w)
    assert isinstance(single, Tensor)
    np.testing.assert_array_equal(single.data, [2.0, 4.0])
    as_list = tape.gradient(loss, [w, b])
    assert isinstance(as_list, list) and len(as_list) == 2
    as_tuple = tape.gradient(loss, (w, b))
    assert isinstance(as_tuple, tuple)
    as_dict = tape.gradient(loss, {"w": w, "c": c})
    assert list(as_dict) == ["w", "c"]
    np.testing.assert_array_equal(as_dict["c"].data, [[3.0]])
    nested = tape.gradient(loss, {"dense": [w, b], "scale": (c,)})
    np.testing.assert_array_equal(nested["dense"][1].data, [2.0])
    assert isinstance(nested["scale"], tuple)


def test_none_for_an_unconnected_source_and_zero_on_request():
    w, unused = weight([1.0, 2.0]), weight([5.0, 6.0], name="unused")
    constant = Tensor(np.ones(2, np.float32))
    with GradientTape(persistent=True) as tape:
        loss = (w * w).sum()
    assert tape.gradient(loss, [w, unused, constant])[1:] == [None, None]
    zeros = tape.gradient(loss, unused, unconnected_gradients="zero")
    np.testing.assert_array_equal(zeros.data, [0.0, 0.0])
    assert zeros.dtype == np.float32
    with pytest.raises(ValueError, match="unconnected_gradients"):
        tape.gradient(loss, w, unconnected_gradients="zeros")
    # ember.grad keeps returning zeros
    np.testing.assert_array_equal(ember.grad(loss, [unused], retain_graph=True)[0], [0.0, 0.0])


def test_a_constant_target_gives_none():
    w = weight([1.0])
    with GradientTape() as tape:
        with ember.no_grad():
            y = w * 2.0
    assert tape.gradient(y, [w]) == [None]


def test_non_scalar_and_several_targets_are_summed():
    w = weight([1.0, 2.0, 3.0])
    with GradientTape(persistent=True) as tape:
        y = w * w  # non-scalar: seeded with ones, as TF does
        z = w * 10.0
    np.testing.assert_array_equal(tape.gradient(y, w).data, [2.0, 4.0, 6.0])
    np.testing.assert_array_equal(tape.gradient([y, z], w).data, [12.0, 14.0, 16.0])
    np.testing.assert_array_equal(tape.gradient({"y": y, "z": z}, w).data, [12.0, 14.0, 16.0])
    weighted = tape.gradient(y, w, output_gradients=np.array([1.0, 0.0, -1.0]))
    np.testing.assert_array_equal(weighted.data, [2.0, 0.0, -6.0])
    with pytest.raises(ValueError, match="upstream gradient has shape"):
        tape.gradient(y, w, output_gradients=np.ones(2))
    with pytest.raises(ValueError, match="one per target"):
        tape.gradient([y, z], w, output_gradients=[np.ones(3)])


def test_the_same_source_twice_and_each_result_owns_its_array():
    w, b = weight([1.0, 2.0]), weight([0.0, 0.0])
    with GradientTape() as tape:
        loss = (w + b).sum()  # add hands the same gradient array to both parents
    dw, dw_again, db = tape.gradient(loss, [w, w, b])
    np.testing.assert_array_equal(dw_again.data, [1.0, 1.0])
    with ember.no_grad():
        dw += 1.0
    np.testing.assert_array_equal(db.data, [1.0, 1.0])
    np.testing.assert_array_equal(dw_again.data, [1.0, 1.0])
    assert all(g.data.flags.writeable for g in (dw, dw_again, db))


def test_bad_arguments():
    w = weight([1.0])
    with GradientTape() as tape:
        loss = (w * w).sum()
        with pytest.raises(TypeError, match="watch expects ember Tensors"):
            tape.watch(np.ones(2))
        with pytest.raises(TypeError, match="only floating-point"):
            tape.watch(Tensor(np.arange(3)))
    with pytest.raises(TypeError, match="source 1 is a ndarray"):
        tape.gradient(loss, [w, np.ones(1)])
    with pytest.raises(TypeError, match="target item 0 is a float"):
        tape.gradient(1.0, [w])
    with pytest.raises(RuntimeError, match="inside the tape's block"):
        tape.watch(w)


# ------------------------------------------------------------------------------ watching
def test_watch_a_constant_for_the_tape_lifetime():
    x = ember.tensor([1.0, 2.0])
    with GradientTape() as tape:
        tape.watch(x)
        assert x.requires_grad
        y = (x**3).sum()
    assert not x.requires_grad and x.is_leaf
    np.testing.assert_allclose(tape.gradient(y, x).data, [3.0, 12.0])
    assert x.grad is None and not x.requires_grad
    z = (x * 2.0).sum()  # outside the tape x is a constant again
    assert not z.requires_grad


def test_watch_a_structure_and_watched_variables():
    a, b = ember.tensor([1.0]), ember.tensor([2.0])
    w = weight([3.0])
    unused = weight([4.0])
    with GradientTape() as tape:
        tape.watch({"a": a, "b": [b]})
        loss = (a * b * w).sum()
    assert [id(t) for t in tape.watched_variables()] == [id(a), id(b), id(w)]
    assert unused not in [id(t) for t in tape.watched_variables()]
    da, db, dw = tape.gradient(loss, [a, b, w])
    assert (da.item(), db.item(), dw.item()) == (6.0, 3.0, 2.0)


def test_watch_accessed_variables_false_only_counts_watched_tensors():
    w, v = Variable([2.0], name="w"), Variable([3.0], name="v")
    with GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(w)
        h = w * v
        loss = (h * h).sum()
    assert [id(t) for t in tape.watched_variables()] == [id(w)]
    dw, dv, dh = tape.gradient(loss, [w, v, h])
    assert dw.item() == 2 * 6.0 * 3.0
    assert dv is None  # not watched: TF's None
    assert dh.item() == 12.0  # an intermediate: Ember recorded it anyway (documented)


def test_nested_tapes_keep_a_watched_tensor_recording():
    x = ember.tensor([2.0])
    with GradientTape() as outer:
        # persistent: both tapes share Ember's one graph, and y's node is needed twice
        with GradientTape(persistent=True) as inner:
            inner.watch(x)
            outer.watch(x)
            y = x * x
        assert x.requires_grad  # the outer tape still watches it
        z = x * y
    assert not x.requires_grad
    assert inner.gradient(y, x).item() == 4.0
    assert outer.gradient(z, x).item() == 12.0


def test_tape_records_even_inside_no_grad_and_restores_the_mode():
    w = weight([1.0])
    with ember.no_grad():
        with GradientTape() as tape:
            assert ember.is_grad_enabled()
            loss = (w * 5.0).sum()
        assert not ember.is_grad_enabled()
    assert tape.gradient(loss, w).item() == 5.0
    with GradientTape() as tape:
        with pytest.raises(RuntimeError, match="already recording"):
            tape.__enter__()
    assert ember.is_grad_enabled()


# ------------------------------------------------------------------------------ persistence
def test_non_persistent_tape_computes_once_and_frees_the_graph():
    w = weight([1.0, 2.0])
    with GradientTape() as tape:
        h = w.exp()
        loss = (h * h).sum()
    tape.gradient(loss, w)
    with pytest.raises(RuntimeError, match="not persistent.*persistent=True"):
        tape.gradient(loss, w)
    assert h._backward is _FREED
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()


def test_persistent_tape_two_gradient_calls():
    """Two first-order gradients from one recording (no second derivatives involved)."""
    x = ember.tensor([1.0, 2.0, 3.0])
    w = weight([0.5, -1.0, 2.0])
    with GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = (x * w).tanh()
        loss_a = (y * y).sum()
        loss_b = (y * x).sum()
    d_a = tape.gradient(loss_a, [w, x])
    d_b = tape.gradient(loss_b, {"w": w})
    d_a_again = tape.gradient(loss_a, [w, x])
    x.requires_grad = True  # as during the recording, to compare with ember.grad
    expected_a = ember.grad(loss_a, [w, x], retain_graph=True)
    expected_b = ember.grad(loss_b, [w], retain_graph=True)
    x.requires_grad = False
    np.testing.assert_allclose(d_a[0].data, expected_a[0], rtol=1e-6)
    np.testing.assert_allclose(d_a[1].data, expected_a[1], rtol=1e-6)
    np.testing.assert_array_equal(d_a_again[0].data, d_a[0].data)
    np.testing.assert_allclose(d_b["w"].data, expected_b[0], rtol=1e-6)


def test_the_graph_is_released_with_its_tensors_not_held_by_the_tape():
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        w = weight(np.ones((3, 2)))
        x = Tensor(np.ones((4, 3), np.float32))
        with GradientTape(persistent=True) as tape:
            h = (x @ w).tanh()
            loss = (h * h).mean()
        probe = weakref.ref(h)
        tape.gradient(loss, w)
        tape.gradient(loss, w)
        del h, loss
        assert probe() is None  # the persistent tape does not keep the graph alive
        del tape
    finally:
        if gc_was_enabled:
            gc.enable()


# ------------------------------------------------------------------------------ pruning
def test_only_the_part_of_the_graph_leading_to_the_sources_runs():
    w, b = weight([1.0, 2.0]), weight([3.0])
    with GradientTape() as tape:
        h = (w * w).exp()
        loss = h.sum() + (b * 2.0).sum()
    db = tape.gradient(loss, b)
    assert db.item() == 2.0
    assert h._backward is not _FREED  # not on a path to b: neither run nor freed
    (dw,) = ember.grad(h.sum(), [w])
    np.testing.assert_allclose(dw, 2 * np.array([1.0, 2.0]) * np.exp([1.0, 4.0]), rtol=1e-6)


def test_a_source_below_another_source_gets_the_full_gradient():
    w0 = weight([1.0])
    w1 = w0 * 3.0
    with GradientTape() as tape:
        loss = (w1 * w1).sum() + (w0 * 5.0).sum()
    d1, d0 = tape.gradient(loss, [w1, w0])
    assert d1.item() == 6.0
    assert d0.item() == 6.0 * 3.0 + 5.0


# ------------------------------------------------------------------------------ training loops
def _regression_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((100, 3)).astype(np.float32)
    y = x @ np.array([[2.0], [-3.0], [0.5]], np.float32) + 1.0
    y = y + 0.01 * rng.standard_normal((100, 1)).astype(np.float32)
    return x, y


@pytest.mark.parametrize("update", ["rebind", "assign_sub"])
def test_tensorflow_style_linear_regression_loop(update):
    """The course's loop. With ``w = w - lr * dw`` the name is rebound to the output of an op
    (a non-leaf whose history stays recorded); the next step's gradient with respect to it
    stops there (pruning) instead of walking into graphs already consumed."""
    x, y = _regression_data()
    rs = np.random.RandomState(0)
    w = Variable(rs.randn(3, 1))  # float64, as NumPy gives it
    b = Variable(np.zeros(1))
    lr = 0.1
    for _ in range(100):
        with GradientTape() as tape:
            loss = ember.ops.mean((x @ w + b - y) ** 2)
        dw, db = tape.gradient(loss, [w, b])
        if update == "rebind":
            w = w - lr * dw
            b = b - lr * db
        else:
            w.assign_sub(lr * dw)
            b.assign_sub(lr * db)
    # reaches 8.1e-5, the noise floor (noise variance 1e-4), with either update
    assert loss.item() < 1.2e-4
    np.testing.assert_allclose(w.numpy().ravel(), [2.0, -3.0, 0.5], atol=0.01)
    np.testing.assert_allclose(b.numpy(), [1.0], atol=0.01)
    if update == "assign_sub":
        assert isinstance(w, Variable) and w.is_leaf
    else:
        assert not w.is_leaf


def test_keras_guide_training_loop_from_scratch():
    """Keras' "writing a training loop from scratch", with ember.GradientTape, tape.gradient
    over the trainable weights and a hand-written SGD step (on 3 Gaussian blobs)."""
    ember.manual_seed(0)
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 3.0], [3.0, -2.0], [-3.0, -2.0]], np.float32)
    labels = rng.integers(0, 3, 600)
    features = (centres[labels] + rng.standard_normal((600, 2))).astype(np.float32)
    model = ember.models.Sequential(
        [
            ember.layers.Input(shape=(2,)),
            ember.layers.Dense(16, activation="relu"),
            ember.layers.Dense(16, activation="relu"),
            ember.layers.Dense(3),
        ]
    )
    loss_fn = ember.losses.SparseCategoricalCrossentropy(from_logits=True)
    weights = model.trainable_weights
    identities = [id(p) for p in weights]
    lr = 0.1
    epoch_losses = []
    for _ in range(5):
        batch_losses = []
        for start in range(0, 600, 32):
            x_batch, y_batch = features[start : start + 32], labels[start : start + 32]
            with GradientTape() as tape:
                logits = model(x_batch, training=True)
                loss_value = loss_fn(y_batch, logits)
            grads = tape.gradient(loss_value, weights)
            with ember.no_grad():
                for p, g in zip(weights, grads):
                    p -= lr * g
            batch_losses.append(loss_value.item())
        epoch_losses.append(np.mean(batch_losses))
    assert [id(p) for p in model.trainable_weights] == identities
    assert all(p.grad is None for p in weights)
    accuracy = (model(features).numpy().argmax(-1) == labels).mean()
    # mean loss 0.225 over the first epoch, 0.0142 over the fifth; accuracy 0.998 (seed 0)
    assert epoch_losses[0] > 0.1 and epoch_losses[-1] < 0.03
    assert accuracy > 0.99


def test_tape_gradients_feed_an_optimizer():
    """The guide's own update: ``optimizer.apply_gradients(zip(grads, weights))``."""
    w = Variable([2.0, -3.0], name="w")
    optimizer = ember.optimizers.SGD(learning_rate=0.25)
    for _ in range(20):
        with GradientTape() as tape:
            loss = (w * w).sum()
        grads = tape.gradient(loss, [w])
        optimizer.apply_gradients(zip(grads, [w]))
    assert np.abs(w.numpy()).max() < 1e-3 and w.grad is None
