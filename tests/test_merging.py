"""Merge layers (``ember/layers/merging.py``): Add, Subtract, Multiply, Average, Maximum, Minimum,
Concatenate and Dot, and their lower-case functional forms.

Forward values are checked against NumPy, gradients against PyTorch (under a random cotangent)
and against central finite differences in float64; a functional model with two input branches
is differentiated and trained; wrong calls must fail with errors naming the layer.
"""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import layers
from ember.testing import assert_matches_torch


def _rand(rng, *shapes, dtype=np.float32):
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def _np_dot(x, y, ax, ay):
    """Per-sample tensordot of x's axis ``ax`` with y's axis ``ay`` (the batch axis kept)."""
    return np.stack([np.tensordot(a, b, axes=(ax - 1, ay - 1)) for a, b in zip(x, y)])


def _unit(v, axis):
    return v / np.sqrt(np.maximum((v * v).sum(axis=axis, keepdims=True), 1e-12))


# (name, layer factory, input shapes, NumPy reference)
_FORWARD = [
    ("add3", layers.Add, [(2, 3), (2, 3), (2, 3)], lambda a, b, c: a + b + c),
    ("add_broadcast", layers.Add, [(2, 3, 4), (2, 1, 4)], lambda a, b: a + b),
    ("subtract", layers.Subtract, [(2, 3), (2, 3)], lambda a, b: a - b),
    ("multiply_broadcast", layers.Multiply, [(2, 3), (2, 1)], lambda a, b: a * b),
    ("multiply3", layers.Multiply, [(2, 3)] * 3, lambda a, b, c: a * b * c),
    ("average3", layers.Average, [(2, 3)] * 3, lambda a, b, c: (a + b + c) / 3),
    ("maximum3", layers.Maximum, [(2, 3)] * 3, lambda a, b, c: np.maximum(np.maximum(a, b), c)),
    ("minimum", layers.Minimum, [(2, 3), (2, 3)], np.minimum),
    ("concat_last", layers.Concatenate, [(2, 3, 4), (2, 3, 2)],
     lambda a, b: np.concatenate([a, b], axis=-1)),
    ("concat_axis1", lambda: layers.Concatenate(axis=1), [(2, 3, 4), (2, 5, 4)],
     lambda a, b: np.concatenate([a, b], axis=1)),
    ("dot_2d", lambda: layers.Dot(axes=1), [(4, 3), (4, 3)],
     lambda a, b: (a * b).sum(axis=1, keepdims=True)),
    ("dot_3d_21", lambda: layers.Dot(axes=(2, 1)), [(2, 3, 4), (2, 4, 5)],
     lambda a, b: np.einsum("bmn,bnk->bmk", a, b)),
    ("dot_3d_11", lambda: layers.Dot(axes=(1, 1)), [(2, 3, 4), (2, 3, 5)],
     lambda a, b: np.einsum("bmn,bmk->bnk", a, b)),
    ("dot_2d_3d", lambda: layers.Dot(axes=(1, 1)), [(2, 3), (2, 3, 5)],
     lambda a, b: np.einsum("bm,bmk->bk", a, b)),
    ("dot_4d", lambda: layers.Dot(axes=(3, 1)), [(2, 3, 4, 5), (2, 5, 6)],
     lambda a, b: _np_dot(a, b, 3, 1)),
    ("dot_negative_axes", lambda: layers.Dot(axes=-1), [(2, 3, 4), (2, 5, 4)],
     lambda a, b: np.einsum("bmn,bkn->bmk", a, b)),
    ("cosine_2d", lambda: layers.Dot(axes=1, normalize=True), [(4, 3), (4, 3)],
     lambda a, b: (_unit(a, 1) * _unit(b, 1)).sum(axis=1, keepdims=True)),
    ("cosine_3d", lambda: layers.Dot(axes=(2, 1), normalize=True), [(2, 3, 4), (2, 4, 5)],
     lambda a, b: np.einsum("bmn,bnk->bmk", _unit(a, 2), _unit(b, 1))),
]


@pytest.mark.parametrize("name, make, shapes, reference", _FORWARD, ids=[c[0] for c in _FORWARD])
def test_forward_values_match_numpy(name, make, shapes, reference):
    rng = np.random.default_rng(1)
    arrays = _rand(rng, *shapes)
    out = make()(arrays)
    expected = reference(*arrays)
    assert out.shape == expected.shape and out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_forward_small_values_by_hand():
    a = np.array([[1.0, 5.0, -2.0]], np.float32)
    b = np.array([[3.0, 2.0, -2.0]], np.float32)
    np.testing.assert_array_equal(layers.Add()([a, b]).numpy(), [[4.0, 7.0, -4.0]])
    np.testing.assert_array_equal(layers.Subtract()([a, b]).numpy(), [[-2.0, 3.0, 0.0]])
    np.testing.assert_array_equal(layers.Multiply()([a, b]).numpy(), [[3.0, 10.0, 4.0]])
    np.testing.assert_array_equal(layers.Average()([a, b]).numpy(), [[2.0, 3.5, -2.0]])
    np.testing.assert_array_equal(layers.Maximum()([a, b]).numpy(), [[3.0, 5.0, -2.0]])
    np.testing.assert_array_equal(layers.Minimum()([a, b]).numpy(), [[1.0, 2.0, -2.0]])
    np.testing.assert_array_equal(layers.Dot(axes=1)([a, b]).numpy(), [[17.0]])
    cosine = layers.Dot(axes=1, normalize=True)([np.array([[3.0, 4.0]]), np.array([[4.0, 3.0]])])
    np.testing.assert_allclose(cosine.numpy(), [[24.0 / 25.0]], rtol=1e-6)
    # A zero vector has cosine 0 with anything (its norm is clamped), not NaN.
    zero = layers.Dot(axes=1, normalize=True)([np.zeros((1, 2)), np.array([[4.0, 3.0]])])
    np.testing.assert_array_equal(zero.numpy(), [[0.0]])


def _norm(t, a, dim):
    return t.nn.functional.normalize(a, dim=dim)


# (name, layer factory, torch function of (torch, *inputs), input shapes). Factories and
# functions of torch keep this table importable without PyTorch (the fixture skips or fails).
_TORCH_CASES = [
    ("add3", layers.Add, lambda t, a, b, c: a + b + c, [(2, 3, 4)] * 3),
    ("add_broadcast", layers.Add, lambda t, a, b: a + b, [(2, 3, 4), (2, 1, 4)]),
    ("subtract", layers.Subtract, lambda t, a, b: a - b, [(3, 4), (3, 4)]),
    ("subtract_broadcast", layers.Subtract, lambda t, a, b: a - b, [(3, 4), (3, 1)]),
    ("multiply3", layers.Multiply, lambda t, a, b, c: a * b * c, [(3, 4)] * 3),
    ("multiply_broadcast", layers.Multiply, lambda t, a, b: a * b, [(2, 3, 4), (2, 3, 1)]),
    ("average3", layers.Average, lambda t, a, b, c: (a + b + c) / 3, [(3, 4)] * 3),
    ("maximum3", layers.Maximum, lambda t, a, b, c: t.maximum(t.maximum(a, b), c),
     [(3, 4)] * 3),
    ("minimum3", layers.Minimum, lambda t, a, b, c: t.minimum(t.minimum(a, b), c),
     [(3, 4)] * 3),
    ("maximum_broadcast", layers.Maximum, lambda t, a, b: t.maximum(a, b), [(3, 4), (3, 1)]),
    ("concat_last", layers.Concatenate, lambda t, a, b: t.cat([a, b], -1),
     [(2, 3, 4), (2, 3, 2)]),
    ("concat_axis1", lambda: layers.Concatenate(axis=1), lambda t, a, b: t.cat([a, b], 1),
     [(2, 3, 4), (2, 5, 4)]),
    ("concat3_axis_minus2", lambda: layers.Concatenate(axis=-2),
     lambda t, a, b, c: t.cat([a, b, c], -2), [(2, 1, 4), (2, 2, 4), (2, 3, 4)]),
    ("dot_2d", lambda: layers.Dot(axes=1), lambda t, a, b: (a * b).sum(1, keepdim=True),
     [(4, 3), (4, 3)]),
    ("dot_3d_21", lambda: layers.Dot(axes=(2, 1)), lambda t, a, b: t.bmm(a, b),
     [(2, 3, 4), (2, 4, 5)]),
    ("dot_3d_11", lambda: layers.Dot(axes=(1, 1)), lambda t, a, b: t.bmm(a.transpose(1, 2), b),
     [(2, 3, 4), (2, 3, 5)]),
    ("dot_3d_22", lambda: layers.Dot(axes=2), lambda t, a, b: t.bmm(a, b.transpose(1, 2)),
     [(2, 3, 4), (2, 5, 4)]),
    ("dot_2d_3d", lambda: layers.Dot(axes=1), lambda t, a, b: t.einsum("bm,bmk->bk", a, b),
     [(2, 3), (2, 3, 5)]),
    ("dot_4d_3d", lambda: layers.Dot(axes=(1, 2)),
     lambda t, a, b: t.einsum("bmnp,bkm->bnpk", a, b), [(2, 3, 4, 5), (2, 6, 3)]),
    ("cosine_2d", lambda: layers.Dot(axes=1, normalize=True),
     lambda t, a, b: t.nn.functional.cosine_similarity(a, b, dim=1).unsqueeze(1),
     [(4, 3), (4, 3)]),
    ("cosine_3d_21", lambda: layers.Dot(axes=(2, 1), normalize=True),
     lambda t, a, b: t.bmm(_norm(t, a, 2), _norm(t, b, 1)), [(2, 3, 4), (2, 4, 5)]),
    ("cosine_3d_11", lambda: layers.Dot(axes=(1, 1), normalize=True),
     lambda t, a, b: t.bmm(_norm(t, a, 1).transpose(1, 2), _norm(t, b, 1)),
     [(2, 3, 4), (2, 3, 5)]),
]


@pytest.mark.parametrize(
    "seed, make, torch_fn, shapes",
    [(i, *case[1:]) for i, case in enumerate(_TORCH_CASES)],
    ids=[case[0] for case in _TORCH_CASES],
)
def test_values_and_gradients_match_torch(torch, seed, make, torch_fn, shapes):
    layer = make()
    assert_matches_torch(
        lambda *xs: layer(list(xs)), lambda *xs: torch_fn(torch, *xs), shapes, seed=seed
    )


def test_maximum_tie_splits_the_gradient_like_torch(torch):
    a = np.array([[1.0, 2.0, 3.0]], np.float32)
    b = np.array([[1.0, 0.0, 5.0]], np.float32)  # a tie in the first column
    assert_matches_torch(lambda x, y: layers.Maximum()([x, y]), torch.maximum, [a, b])
    assert_matches_torch(lambda x, y: layers.Minimum()([x, y]), torch.minimum, [a, b])
    ea, eb = ember.tensor(a, requires_grad=True), ember.tensor(b, requires_grad=True)
    layers.Maximum()([ea, eb]).sum().backward()
    np.testing.assert_array_equal(ea.grad, [[0.5, 1.0, 0.0]])
    np.testing.assert_array_equal(eb.grad, [[0.5, 0.0, 1.0]])


# (layer factory, input shapes): every merge layer once, in float64
_GRADCHECK = [
    (lambda: layers.Add(dtype="float64"), [(2, 3), (2, 3), (2, 1)]),
    (lambda: layers.Subtract(dtype="float64"), [(2, 3), (2, 3)]),
    (lambda: layers.Multiply(dtype="float64"), [(2, 3), (2, 3), (1, 3)]),
    (lambda: layers.Average(dtype="float64"), [(2, 3), (2, 3), (2, 3)]),
    (lambda: layers.Maximum(dtype="float64"), [(2, 3), (2, 3), (2, 3)]),
    (lambda: layers.Minimum(dtype="float64"), [(2, 3), (2, 3)]),
    (lambda: layers.Concatenate(axis=1, dtype="float64"), [(2, 3, 2), (2, 1, 2)]),
    (lambda: layers.Concatenate(dtype="float64"), [(2, 3, 2), (2, 3, 4)]),
    (lambda: layers.Dot(axes=1, dtype="float64"), [(3, 4), (3, 4)]),
    (lambda: layers.Dot(axes=(2, 1), dtype="float64"), [(2, 3, 4), (2, 4, 2)]),
    (lambda: layers.Dot(axes=(1, 1), dtype="float64"), [(2, 3, 4), (2, 3, 2)]),
    (lambda: layers.Dot(axes=(1, 2), dtype="float64"), [(2, 3, 2, 2), (2, 2, 3)]),
    (lambda: layers.Dot(axes=1, normalize=True, dtype="float64"), [(3, 4), (3, 4)]),
    (lambda: layers.Dot(axes=(2, 1), normalize=True, dtype="float64"), [(2, 3, 4), (2, 4, 2)]),
]


@pytest.mark.parametrize(
    "make, shapes", _GRADCHECK,
    ids=["add", "subtract", "multiply", "average", "maximum", "minimum", "concat_axis1",
         "concat_last", "dot_2d", "dot_21", "dot_11", "dot_4d_3d", "cosine_2d", "cosine_21"],
)
def test_gradcheck_float64(make, shapes):
    layer = make()
    # Distinct values (spaced more than the finite-difference step) so Maximum/Minimum have no tie.
    rng = np.random.default_rng(3)
    arrays = _rand(rng, *shapes, dtype=np.float64)
    result = ember.gradcheck(lambda *xs: layer(list(xs)), *arrays)
    assert result.ok and result.checked_elements == sum(a.size for a in arrays)
    assert layer([ember.tensor(a, dtype="float64") for a in arrays]).dtype == np.float64


# ------------------------------------------------------------------ a model with two inputs
def _two_branch_model():
    ember.random.seed(0)
    a, b = layers.Input(shape=(3,), name="in_a"), layers.Input(shape=(4,), name="in_b")
    ha = layers.Dense(5, activation="tanh", name="branch_a")(a)
    hb = layers.Dense(5, activation="tanh", name="branch_b")(b)
    merged = layers.concatenate(
        [layers.add([ha, hb]), layers.multiply([ha, hb]), layers.dot([ha, hb], axes=1)]
    )
    assert merged.shape == (None, 11)  # 5 + 5 + 1
    out = layers.Dense(2, name="head")(merged)
    return ember.Model([a, b], out)


def _torch_two_branch(torch, model, xa, xb):
    """The same computation in PyTorch on copies of the model's weights."""
    params = {
        name: torch.tensor(model.get_layer(name).kernel.numpy(), requires_grad=True)
        for name in ("branch_a", "branch_b", "head")
    }
    biases = {
        name: torch.tensor(model.get_layer(name).bias.numpy(), requires_grad=True)
        for name in params
    }
    ha = torch.tanh(torch.tensor(xa) @ params["branch_a"] + biases["branch_a"])
    hb = torch.tanh(torch.tensor(xb) @ params["branch_b"] + biases["branch_b"])
    merged = torch.cat([ha + hb, ha * hb, (ha * hb).sum(1, keepdim=True)], dim=1)
    out = merged @ params["head"] + biases["head"]
    return out, params, biases


def test_functional_model_with_two_inputs_gradients_match_torch(torch):
    model = _two_branch_model()
    rng = np.random.default_rng(0)
    xa, xb, y = _rand(rng, (6, 3), (6, 4), (6, 2))

    out = model([xa, xb], training=True)
    loss = ((out - ember.tensor(y)) ** 2).mean()
    weights = model.trainable_weights
    grads = dict(zip([id(w) for w in weights], ember.grad(loss, weights)))

    t_out, t_kernels, t_biases = _torch_two_branch(torch, model, xa, xb)
    np.testing.assert_allclose(out.numpy(), t_out.detach().numpy(), rtol=1e-5, atol=1e-6)
    ((t_out - torch.tensor(y)) ** 2).mean().backward()
    for name in ("branch_a", "branch_b", "head"):
        layer = model.get_layer(name)
        for w, t in ((layer.kernel, t_kernels[name]), (layer.bias, t_biases[name])):
            g = grads[id(w)]
            assert np.abs(g).max() > 1e-4, f"no gradient reached {name}/{w.name}"
            np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-4, atol=1e-6,
                                       err_msg=f"{name}/{w.name}")


def test_functional_model_with_two_inputs_trains_both_branches(torch):
    model = _two_branch_model()
    rng = np.random.default_rng(1)
    xa, xb, y = _rand(rng, (8, 3), (8, 4), (8, 2))
    lr = 0.1
    model.compile(optimizer=ember.optimizers.SGD(learning_rate=lr), loss="mse")

    # One full-batch SGD step equals w - lr * (PyTorch's gradient of the mean squared error).
    t_out, t_kernels, t_biases = _torch_two_branch(torch, model, xa, xb)
    ((t_out - torch.tensor(y)) ** 2).mean().backward()
    expected = {
        (name, kind): (t - lr * t.grad).detach().numpy()
        for kind, tensors in (("kernel", t_kernels), ("bias", t_biases))
        for name, t in tensors.items()
    }
    before = model.evaluate([xa, xb], y, verbose=0)
    model.fit([xa, xb], y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for (name, kind), value in expected.items():
        np.testing.assert_allclose(getattr(model.get_layer(name), kind).numpy(), value,
                                   rtol=1e-5, atol=1e-6, err_msg=f"{name}/{kind}")

    history = model.fit([xa, xb], y, batch_size=4, epochs=5, verbose=0)
    after = model.evaluate([xa, xb], y, verbose=0)
    assert after < before, (before, after, history.history["loss"])
    predicted = model.predict([xa, xb], verbose=0)
    assert predicted.shape == (8, 2) and np.isfinite(predicted).all()


def test_functional_forms_and_symbolic_shapes():
    a, b = layers.Input(shape=(3, 4)), layers.Input(shape=(3, 2))
    assert layers.concatenate([a, b]).shape == (None, 3, 6)
    assert layers.concatenate([a, a], axis=1).shape == (None, 6, 4)
    assert layers.add([a, a]).shape == (None, 3, 4)
    assert layers.dot([a, b], axes=1).shape == (None, 4, 2)
    assert layers.dot([a, a], axes=2, normalize=True).shape == (None, 3, 3)
    seq = layers.Input(shape=(None, 4))
    assert layers.concatenate([seq, seq], axis=1).shape == (None, None, 4)
    assert layers.subtract([seq, seq]).shape == (None, None, 4)

    rng = np.random.default_rng(0)
    x, y = _rand(rng, (2, 3), (2, 3))
    named = layers.maximum([x, y], name="biggest")
    np.testing.assert_array_equal(named.numpy(), np.maximum(x, y))
    for fn, cls in (
        (layers.add, layers.Add), (layers.subtract, layers.Subtract),
        (layers.multiply, layers.Multiply), (layers.average, layers.Average),
        (layers.maximum, layers.Maximum), (layers.minimum, layers.Minimum),
        (layers.concatenate, layers.Concatenate),
    ):
        np.testing.assert_array_equal(fn([x, y]).numpy(), cls()([x, y]).numpy())
    np.testing.assert_array_equal(
        layers.dot([x, y], axes=1).numpy(), layers.Dot(axes=1)([x, y]).numpy()
    )


def test_config_round_trip():
    concat = layers.Concatenate(axis=1, name="cat")
    again = layers.Concatenate.from_config(concat.get_config())
    assert (again.axis, again.name) == (1, "cat")
    dot = layers.Dot(axes=(2, 1), normalize=True, name="d")
    again = layers.Dot.from_config(dot.get_config())
    assert (again.axes, again.normalize, again.name) == ((2, 1), True, "d")
    rng = np.random.default_rng(0)
    x, y = _rand(rng, (2, 3, 4), (2, 4, 5))
    np.testing.assert_array_equal(dot([x, y]).numpy(), again([x, y]).numpy())


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "make",
    [layers.Add, layers.Subtract, layers.Multiply, layers.Average, layers.Maximum, layers.Minimum,
     layers.Concatenate, lambda name: layers.Dot(axes=1, name=name)],
    ids=["add", "subtract", "multiply", "average", "maximum", "minimum", "concatenate", "dot"],
)
def test_merge_layer_called_on_one_tensor_raises(make):
    layer = make(name="the_merge")
    for value in (np.ones((2, 3), np.float32), np.ones((2, 3, 4), np.float32)):
        with pytest.raises(ValueError, match=r'"the_merge".*must be called on a list'):
            layer(value)
    with pytest.raises(ValueError, match=r'"the_merge".*must be called on a list'):
        layer(layers.Input(shape=(3,)))  # functional API: the same message


def test_merge_layer_list_checks_that_work_today():
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match=r'"sub" \(Subtract\) takes exactly 2 inputs, got 3'):
        layers.Subtract(name="sub")([x, x, x])
    with pytest.raises(ValueError, match=r'"dd" \(Dot\) takes exactly 2 inputs, got 3'):
        layers.Dot(axes=1, name="dd")([x, x, x])
    with pytest.raises(ValueError, match=r'"sub1" \(Subtract\) takes exactly 2 inputs, got 1'):
        layers.Subtract(name="sub1")([x])
    # Keras 3 accepts a list of one tensor for the n-ary merges: it passes through.
    np.testing.assert_array_equal(layers.Add()([x]).numpy(), x)


def test_concatenate_mismatched_shapes_raise_naming_the_shapes():
    with pytest.raises(
        ValueError, match=r'"cat" \(Concatenate\) requires inputs with matching shapes.*'
        r"\[\(2, 3, 4\), \(2, 5, 6\)\]"
    ):
        layers.Concatenate(name="cat")([np.ones((2, 3, 4)), np.ones((2, 5, 6))])
    with pytest.raises(ValueError, match=r'"cat2".*same number of axes.*\(2, 3\), \(2, 4, 1\)'):
        layers.Concatenate(name="cat2")([np.ones((2, 3)), np.ones((2, 4, 1))])
    with pytest.raises(ValueError, match=r'"cat3".*axis 3 is out of range'):
        layers.Concatenate(axis=3, name="cat3")([np.ones((2, 3)), np.ones((2, 4))])
    a, b = layers.Input(shape=(3, 4)), layers.Input(shape=(5, 6))
    with pytest.raises(ValueError, match=r'"cat4".*matching shapes'):
        layers.Concatenate(name="cat4")([a, b])
    with pytest.raises(TypeError, match=r'"cat5": axis must be an integer'):
        layers.Concatenate(axis=1.0, name="cat5")


def test_elementwise_merge_of_incompatible_shapes_raises():
    with pytest.raises(ValueError, match=r'"plus" \(Add\) cannot combine.*\(2, 3\), \(2, 4\)'):
        layers.Add(name="plus")([np.ones((2, 3)), np.ones((2, 4))])
    a, b = layers.Input(shape=(3,)), layers.Input(shape=(4,))
    with pytest.raises(ValueError, match=r'"times" \(Multiply\) cannot combine'):
        layers.Multiply(name="times")([a, b])


def test_dot_incompatible_sizes_and_bad_axes_raise():
    with pytest.raises(
        ValueError, match=r'"dot_bad" \(Dot\): dimension incompatibility: 3 .* against 4'
    ):
        layers.Dot(axes=1, name="dot_bad")([np.ones((2, 3)), np.ones((2, 4))])
    with pytest.raises(ValueError, match=r'"dot_b0".*axis 0 is not a feature axis'):
        layers.Dot(axes=0, name="dot_b0")([np.ones((2, 3)), np.ones((2, 3))])
    with pytest.raises(ValueError, match=r'"dot_far".*axis 2 is not a feature axis'):
        layers.Dot(axes=2, name="dot_far")([np.ones((2, 3)), np.ones((2, 3))])
    with pytest.raises(TypeError, match=r'"dot_t".*axes must be an integer or a pair'):
        layers.Dot(axes=(1, 2, 3), name="dot_t")
    a, b = layers.Input(shape=(3, 4)), layers.Input(shape=(5, 6))
    with pytest.raises(ValueError, match=r'"dot_sym".*dimension incompatibility'):
        layers.Dot(axes=(2, 1), name="dot_sym")([a, b])


def test_shape_checks_also_apply_after_the_first_call():
    concat, dot, add = (
        layers.Concatenate(name="cat_late"), layers.Dot(axes=1, name="dot_late"),
        layers.Add(name="add_late"),
    )
    concat([np.ones((2, 3)), np.ones((2, 4))])
    dot([np.ones((2, 3)), np.ones((2, 3))])
    add([np.ones((2, 3)), np.ones((2, 3))])
    for layer, inputs in (
        (concat, [np.ones((2, 3, 4)), np.ones((2, 5, 6))]),
        (concat, [np.ones((2, 3)), np.ones((3, 4))]),  # batch sizes differ
        (dot, [np.ones((2, 3)), np.ones((2, 4))]),
        (dot, [np.ones((1, 3)), np.ones((3, 3))]),  # batch sizes differ
        (add, [np.ones((2, 3)), np.ones((2, 4))]),
    ):
        with pytest.raises(ValueError) as info:
            layer(inputs)
        assert f'"{layer.name}"' in str(info.value), str(info.value)


def test_single_input_layer_given_a_list_raises():
    a, b = np.ones((2, 3), np.float32), np.ones((2, 4), np.float32)
    pattern = (
        r'Layer "d2" \(Dense\) expects one tensor as input, but received a list of 2 tensors '
        r"\(shapes \(2, 3\), \(2, 4\)\).*Concatenate"
    )
    with pytest.raises(ValueError, match=pattern):
        layers.Dense(2, name="d2")([a, b])
    with pytest.raises(ValueError, match=r'"flat2" \(Flatten\) expects one tensor.*tuple of 2'):
        layers.Flatten(name="flat2")((a, b))
    x, y = layers.Input(shape=(3,)), layers.Input(shape=(4,))
    with pytest.raises(ValueError, match=r'"d3" \(Dense\) expects one tensor'):
        layers.Dense(2, name="d3")([x, y])
    # Merging first is the remedy the message gives, and it works.
    assert layers.Dense(2)(layers.Concatenate()([x, y])).shape == (None, 2)
