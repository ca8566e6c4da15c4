"""Losses, activations and accuracy metrics: values, gradients and the catalogue's edge cases.

Every loss is checked in both spellings (``ember.losses.get("name")`` and the class, with
``from_logits`` True and False) by

* ``ember.gradcheck`` in float64 (central differences under a random cotangent), and
* ``assert_matches_torch``: the scalar loss and its gradient w.r.t. ``y_pred`` against PyTorch
  (the helper multiplies the scalar by a random cotangent) in float32 and float64.

PyTorch references: ``mse_loss``; ``binary_cross_entropy`` / ``binary_cross_entropy_with_logits``;
``cross_entropy`` with probability targets or class indices for logits; and for probabilities
``nll_loss(log(p / p.sum(-1)))``. The row normalisation is part of the reference because Ember
follows Keras and divides probabilities by their row sum before the log, which adds ``Σy/Σp`` to
the gradient even when the rows already sum to 1. Inputs stay inside ``[0.05, 0.95]`` so Keras'
clip at ``[1e-7, 1 - 1e-7]`` and PyTorch's log clamp at -100 never engage; the clip itself is
pinned by ``test_N6_*`` and ``test_N8_*``.

Catalogue cases are named after their IDs (N3, N6, N7, N8, D5, D6, B5, B7).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import ember
from ember import losses, metrics
from ember.testing import assert_matches_torch, gradcheck


def _f(torch):
    import torch.nn.functional as F  # noqa: N812

    return F


# ------------------------------------------------------------------------------ test data
N, C = 5, 4


def _rng(seed=0):
    return np.random.default_rng(seed)


def _softmax_np(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _labels(rng):
    labels = rng.integers(0, C, size=N)
    labels[:C] = np.arange(C)  # every class appears at least once
    return labels


def _onehot(labels):
    return np.eye(C)[labels]


def _probabilities(rng):
    """Rows in [0.05, 0.95] summing to 1: far from Keras' clip and PyTorch's clamp."""
    p = rng.uniform(0.2, 1.0, size=(N, C))
    return p / p.sum(axis=-1, keepdims=True)


def make_case(kind: str, from_logits: bool, seed: int = 0):
    """(y_true, y_pred) for one loss; y_pred is a float64 array."""
    rng = _rng(seed)
    if kind == "mse":
        return rng.uniform(-1, 1, size=(N, 3)), rng.uniform(-2, 2, size=(N, 3))
    if kind == "bce":
        y = rng.integers(0, 2, size=(N, 3)).astype(np.float64)
        pred = rng.uniform(-3, 3, size=(N, 3)) if from_logits else rng.uniform(0.05, 0.95, (N, 3))
        return y, pred
    labels = _labels(rng)
    pred = rng.uniform(-3, 3, size=(N, C)) if from_logits else _probabilities(rng)
    if kind == "cce":
        return _onehot(labels), pred
    return labels, pred


# kind, registry name, class, torch reference(y_true_tensor_or_array, y_pred, from_logits)
def _torch_loss(kind, torch, y_true, pred, from_logits):
    F = _f(torch)
    if kind == "mse":
        return F.mse_loss(pred, torch.tensor(y_true, dtype=pred.dtype))
    if kind == "bce":
        y = torch.tensor(y_true, dtype=pred.dtype)
        if from_logits:
            return F.binary_cross_entropy_with_logits(pred, y)
        return F.binary_cross_entropy(pred, y)
    if kind == "cce":
        y = torch.tensor(y_true, dtype=pred.dtype)
        if from_logits:
            return F.cross_entropy(pred, y)  # probability targets
        return F.nll_loss(torch.log(pred / pred.sum(-1, keepdim=True)), y.argmax(-1))
    labels = torch.tensor(y_true, dtype=torch.long)
    if from_logits:
        return F.cross_entropy(pred, labels)
    return F.nll_loss(torch.log(pred / pred.sum(-1, keepdim=True)), labels)


LOSSES = {
    "mse": ("mse", losses.MeanSquaredError),
    "bce": ("binary_crossentropy", losses.BinaryCrossentropy),
    "cce": ("categorical_crossentropy", losses.CategoricalCrossentropy),
    "scce": ("sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy),
}


def _loss_object(kind, from_logits, spelling):
    name, cls = LOSSES[kind]
    if spelling == "string":
        assert not from_logits
        return losses.get(name)
    if kind == "mse":
        return cls()
    return cls(from_logits=from_logits)


# mse has no from_logits; every other loss is checked both ways.
CASES = [("mse", False)] + [(k, fl) for k in ("bce", "cce", "scce") for fl in (False, True)]
# a registry name always means from_logits=False, so "string" pairs only with those cases
SPELLED = [(case, "class") for case in CASES] + [(c, "string") for c in CASES if not c[1]]


def _ids(case):
    return f"{case[0]}-{'logits' if case[1] else 'probs'}"


def _spelled_ids(item):
    return f"{_ids(item[0])}-{item[1]}" if isinstance(item, tuple) else str(item)


# ------------------------------------------------------------------------------ registry
@pytest.mark.parametrize(
    "name, cls",
    [
        ("mse", losses.MeanSquaredError),
        ("mean_squared_error", losses.MeanSquaredError),
        ("binary_crossentropy", losses.BinaryCrossentropy),
        ("bce", losses.BinaryCrossentropy),
        ("categorical_crossentropy", losses.CategoricalCrossentropy),
        ("sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy),
        ("Sparse-Categorical-Crossentropy", losses.SparseCategoricalCrossentropy),
    ],
)
def test_get_resolves_names_to_fresh_instances(name, cls):
    loss = losses.get(name)
    assert type(loss) is cls
    assert getattr(loss, "from_logits", False) is False
    assert losses.get(name) is not loss
    assert losses.get(loss) is loss
    assert type(losses.get(cls)) is cls


def test_get_unknown_name_suggests_the_closest():
    with pytest.raises(ValueError, match=r"unknown loss 'mse2'.*Did you mean 'mse'"):
        losses.get("mse2")
    with pytest.raises(TypeError, match="loss must be a name"):
        losses.get(3)


def test_serialize_round_trip_keeps_from_logits():
    loss = losses.CategoricalCrossentropy(from_logits=True)
    again = losses.deserialize(losses.serialize(loss))
    assert type(again) is losses.CategoricalCrossentropy and again.from_logits is True


# ------------------------------------------------------------------------------ every loss
@pytest.mark.parametrize("case, spelling", SPELLED, ids=_spelled_ids)
def test_loss_returns_scalar_tensor_matching_numpy(case, spelling):
    """Keras call order loss(y_true, y_pred) → scalar Tensor, against a hand-written formula."""
    kind, from_logits = case
    loss = _loss_object(kind, from_logits, spelling)
    y, pred = make_case(kind, from_logits)
    out = loss(y, ember.tensor(pred))
    assert isinstance(out, ember.Tensor) and out.shape == () and out.dtype == np.float64
    if kind == "mse":
        expected = np.mean((pred - y) ** 2)
    elif kind == "bce":
        p = 1 / (1 + np.exp(-pred)) if from_logits else pred
        expected = np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)))
    else:
        p = _softmax_np(pred) if from_logits else pred / pred.sum(-1, keepdims=True)
        onehot = y if kind == "cce" else _onehot(y)
        expected = np.mean(-(onehot * np.log(p)).sum(-1))
    assert out.item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("case, spelling", SPELLED, ids=_spelled_ids)
def test_loss_gradcheck(case, spelling):
    kind, from_logits = case
    loss = _loss_object(kind, from_logits, spelling)
    y, pred = make_case(kind, from_logits, seed=1)
    result = gradcheck(lambda p: loss(y, p), pred)
    assert result.ok and result.checked_elements == pred.size


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case, spelling", SPELLED, ids=_spelled_ids)
def test_loss_matches_torch(case, spelling, dtype, torch):
    kind, from_logits = case
    loss = _loss_object(kind, from_logits, spelling)
    y, pred = make_case(kind, from_logits, seed=2)
    tol = (
        {} if dtype == np.float32 else dict(atol=1e-12, rtol=1e-12, grad_atol=1e-12, grad_rtol=1e-9)
    )
    assert_matches_torch(
        lambda p: loss(y, p),
        lambda p: _torch_loss(kind, torch, y, p, from_logits),
        [pred.astype(dtype)],
        dtype=dtype,
        **tol,
    )


@pytest.mark.parametrize(
    "fn, kind, from_logits",
    [
        (losses.mse, "mse", False),
        (losses.mean_squared_error, "mse", False),
        (losses.binary_crossentropy, "bce", False),
        (lambda y, p: losses.binary_crossentropy(y, p, from_logits=True), "bce", True),
        (losses.categorical_crossentropy, "cce", False),
        (lambda y, p: losses.categorical_crossentropy(y, p, from_logits=True), "cce", True),
        (losses.sparse_categorical_crossentropy, "scce", False),
        (lambda y, p: losses.sparse_categorical_crossentropy(y, p, True), "scce", True),
    ],
)
def test_functional_aliases_equal_the_classes(fn, kind, from_logits):
    """Keras' function forms return one loss per sample; their mean is the class's loss."""
    y, pred = make_case(kind, from_logits, seed=3)
    expected = _loss_object(kind, from_logits, "class")(y, ember.tensor(pred))
    per_sample = fn(y, ember.tensor(pred))
    assert per_sample.shape == (pred.shape[0],)
    assert per_sample.mean().item() == pytest.approx(expected.item(), rel=1e-6)


def test_float32_predictions_give_float32_loss_and_grad_even_with_float64_targets():
    y, pred = make_case("cce", False)
    p = ember.tensor(pred.astype(np.float32), requires_grad=True)
    out = losses.CategoricalCrossentropy()(y.astype(np.float64), p)
    out.backward()
    assert out.dtype == np.float32 and p.grad.dtype == np.float32


def test_mismatched_batch_sizes_raise_naming_both():
    with pytest.raises(ValueError, match=r"y_true has 3 samples.*y_pred has 2"):
        losses.mse(np.zeros((3, 1)), ember.tensor(np.zeros((2, 1))))
    with pytest.raises(ValueError, match=r"y_true shape \(2, 3\) does not match y_pred shape"):
        losses.mse(np.zeros((2, 3)), ember.tensor(np.zeros((2, 2))))


# ------------------------------------------------------------------------------ sample weights
@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_sample_weight_scales_each_sample_then_averages_over_batch(case, torch):
    """Keras' sum_over_batch_size: Σ wᵢ·lossᵢ / N (zero weights still count in N)."""
    kind, from_logits = case
    loss = _loss_object(kind, from_logits, "class")
    y, pred = make_case(kind, from_logits, seed=4)
    w = np.array([0.5, 2.0, 0.0, 1.0, 3.0])
    F = _f(torch)
    tp = torch.tensor(pred, requires_grad=True)
    if kind in ("mse", "bce"):
        ty = torch.tensor(y)
        if kind == "mse":
            elementwise = F.mse_loss(tp, ty, reduction="none")
        elif from_logits:
            elementwise = F.binary_cross_entropy_with_logits(tp, ty, reduction="none")
        else:
            elementwise = F.binary_cross_entropy(tp, ty, reduction="none")
        per_sample = elementwise.mean(-1)
    else:
        labels = torch.tensor(y.argmax(-1) if kind == "cce" else y)
        logp = F.log_softmax(tp, -1) if from_logits else torch.log(tp / tp.sum(-1, keepdim=True))
        per_sample = F.nll_loss(logp, labels, reduction="none")
    expected = (per_sample * torch.tensor(w)).sum() / N
    expected.backward()

    p = ember.tensor(pred, requires_grad=True)
    out = loss(y, p, sample_weight=w)
    out.backward()
    assert out.item() == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-10, atol=1e-14)
    assert np.all(p.grad[2] == 0)  # a zero-weight sample gets no gradient


@pytest.mark.parametrize("loss_cls", [losses.MeanSquaredError, losses.BinaryCrossentropy])
def test_sample_weight_on_sequence_outputs_scales_whole_samples(loss_cls):
    """(N,) weights with (N, T, D) predictions weight samples, never the T axis (here T == N,
    where a broadcast against the last axis would silently give a wrong number)."""
    rng = _rng(9)
    y = rng.integers(0, 2, size=(3, 3, 2)).astype(np.float64)
    pred = rng.uniform(0.1, 0.9, size=(3, 3, 2))
    w = np.array([1.0, 0.0, 2.0])
    loss = loss_cls()
    per_sample = np.array([loss(y[i : i + 1], pred[i : i + 1]).item() for i in range(3)])
    out = loss(y, pred, sample_weight=w).item()
    assert out == pytest.approx(np.sum(w * per_sample) / 3, rel=1e-12)
    y4, pred4 = np.concatenate([y, y[:1]]), np.concatenate([pred, pred[:1]])  # T != N
    assert loss(y4, pred4, sample_weight=np.append(w, 1.0)).item() == pytest.approx(
        (np.sum(w * per_sample) + per_sample[0]) / 4, rel=1e-12
    )


def test_sample_weight_of_ones_is_no_weight_and_wrong_length_raises():
    y, pred = make_case("scce", True)
    loss = losses.SparseCategoricalCrossentropy(from_logits=True)
    assert loss(y, pred, sample_weight=np.ones(N)).item() == loss(y, pred).item()
    doubled = loss(y, pred, sample_weight=np.full((N, 1), 2.0)).item()
    assert doubled == pytest.approx(2 * loss(y, pred).item(), rel=1e-14)
    with pytest.raises(ValueError, match="sample_weight has 3 entries for 5 samples"):
        loss(y, pred, sample_weight=np.ones(3))


# ------------------------------------------------------------------------------ activations
ACTIVATIONS = ["linear", "sigmoid", "tanh", "relu", "softmax"]


def _activation_input(name, dtype=np.float64, seed=0):
    x = _rng(seed).uniform(0.1, 2.0, size=(3, 4)) * _rng(seed + 1).choice([-1.0, 1.0], (3, 4))
    return x.astype(dtype)  # |x| >= 0.1: relu's kink at 0 is out of the finite differences' reach


def _torch_activation(name, torch):
    return {
        "linear": lambda x: x,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": torch.relu,
        "softmax": lambda x: torch.softmax(x, -1),
    }[name]


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_get_by_name_and_gradcheck(name):
    fn = ember.activations.get(name)
    assert fn is getattr(ember.activations, name)
    result = gradcheck(fn, _activation_input(name))
    assert result.ok and result.checked_elements == 12


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_matches_torch(name, dtype, torch):
    assert_matches_torch(
        ember.activations.get(name),
        _torch_activation(name, torch),
        [_activation_input(name, dtype, seed=5)],
        dtype=dtype,
    )


def test_softmax_activation_along_another_axis_matches_torch(torch):
    assert_matches_torch(
        lambda x: ember.activations.softmax(x, axis=0),
        lambda x: torch.softmax(x, 0),
        [(3, 4)],
    )
    assert gradcheck(lambda x: ember.activations.softmax(x, axis=0), _activation_input("s")).ok


def test_activation_hand_values():
    x = ember.tensor([-2.0, 0.0, 3.0])
    np.testing.assert_array_equal(ember.activations.relu(x).data, [0.0, 0.0, 3.0])
    np.testing.assert_array_equal(ember.activations.linear(x).data, x.data)
    np.testing.assert_allclose(
        ember.activations.sigmoid(x).data, [1 / (1 + math.e**2), 0.5, 1 / (1 + math.e**-3)]
    )
    np.testing.assert_allclose(ember.activations.tanh(x).data, np.tanh([-2.0, 0.0, 3.0]))
    s = ember.activations.softmax(ember.tensor([[0.0, math.log(3.0)]])).data
    np.testing.assert_allclose(s, [[0.25, 0.75]], rtol=1e-6)
    assert ember.activations.get(None) is ember.activations.linear
    assert ember.activations.serialize(ember.activations.tanh) == "tanh"
    assert ember.activations.serialize(lambda t: t) is None


def test_activation_unknown_name_and_bad_type():
    with pytest.raises(ValueError, match=r"unknown activation 'rleu'.*Did you mean 'relu'"):
        ember.activations.get("rleu")
    with pytest.raises(TypeError, match="activation must be a name"):
        ember.activations.get(3)


# ------------------------------------------------------------------------------ catalogue
def test_N3_fused_softmax_ce_with_extreme_logits_via_loss_objects():
    logits = [[1000.0, 0.0, -1000.0]]
    for label, loss_value, grad in [(0, 0.0, [0, 0, 0]), (2, 2000.0, [1, 0, -1])]:
        onehot = np.eye(3)[[label]]
        cases = [
            (losses.SparseCategoricalCrossentropy(from_logits=True), [label], lambda z: z),
            (losses.CategoricalCrossentropy(from_logits=True), onehot, lambda z: z),
            # probabilities straight from a softmax reach back to the logits (Keras' rule)
            (losses.SparseCategoricalCrossentropy(), [label], ember.softmax),
            (losses.CategoricalCrossentropy(), onehot, ember.softmax),
        ]
        for loss, y, head in cases:
            with np.errstate(all="raise", under="ignore"):
                z = ember.tensor(logits, requires_grad=True)
                out = loss(y, head(z))
                out.backward()
            assert out.item() == loss_value, (loss, label)
            np.testing.assert_array_equal(z.grad, [grad])


def test_N3_bce_from_logits_with_extreme_logits():
    with np.errstate(all="raise", under="ignore"):
        z = ember.tensor([[1000.0], [-1000.0]], requires_grad=True)
        out = losses.BinaryCrossentropy(from_logits=True)([[0.0], [1.0]], z)
        out.backward()
    assert out.item() == 1000.0
    np.testing.assert_array_equal(z.grad, [[0.5], [-0.5]])  # (σ(z) - y) / N
    z = ember.tensor([[1000.0], [-1000.0]], requires_grad=True)
    assert losses.BinaryCrossentropy()([[1.0], [0.0]], ember.sigmoid(z)).item() == 0.0


def test_N6_bce_on_probabilities_exactly_0_and_1_follows_keras_clip():
    """Convention (Keras): p is clipped to [1e-7, 1 - 1e-7] before the log.

    float64: each wrong prediction costs -log(1e-7) = 16.1181; float32 rounds 1 - 1e-7 to
    0.99999988, so the p = 1 side costs -log(1.1920929e-7) = 15.9424 (catalogue: ≈15.94).
    Outside the clip the gradient is 0 (the clip's), never inf/NaN. PyTorch instead clamps
    each log at -100; the two agree only away from 0 and 1.
    """
    y = np.array([1.0, 0.0, 1.0, 0.0])
    for dtype, wrong_one in [(np.float64, -math.log(1e-7)), (np.float32, 15.942385)]:
        with np.errstate(divide="raise", invalid="raise"):
            p = ember.tensor(np.array([0.0, 1.0, 1.0, 0.0], dtype), requires_grad=True)
            out = losses.BinaryCrossentropy()(y, p)
            out.backward()
        assert out.dtype == dtype
        expected = (-math.log(1e-7) + wrong_one) / 4  # the two right ones cost ~1e-7 each
        assert out.item() == pytest.approx(expected, rel=1e-6, abs=1e-6)
        assert np.all(np.isfinite(p.grad))
        np.testing.assert_array_equal(p.grad, 0.0)
    right = losses.BinaryCrossentropy()(y, np.array([1.0, 0.0, 1.0, 0.0])).item()
    assert 0 <= right < 2e-7  # correct predictions cost -log(1 - 1e-7) ≈ 1e-7, i.e. 0


def test_N6_bce_just_inside_the_clip_has_the_analytic_gradient():
    p = ember.tensor(np.array([[1e-3], [1 - 1e-3]]), requires_grad=True)
    out = losses.BinaryCrossentropy()(np.array([[1.0], [0.0]]), p)
    out.backward()
    assert out.item() == pytest.approx(-math.log(1e-3), rel=1e-12)
    np.testing.assert_allclose(p.grad, [[-1 / 1e-3 / 2], [1 / 1e-3 / 2]], rtol=1e-10)


@pytest.mark.parametrize(
    "loss, y, p, low, high",
    [
        (losses.BinaryCrossentropy(), [[0.0], [1.0]], [[-0.2], [1.3]], "-0.2", "1.3"),
        (losses.CategoricalCrossentropy(), [[0.0, 1.0]], [[-0.5, 1.5]], "-0.5", "1.5"),
        (losses.SparseCategoricalCrossentropy(), [1], [[1.2, -0.2]], "-0.2", "1.2"),
    ],
    ids=["bce", "cce", "scce"],
)
def test_N7_probabilities_out_of_range_raise_mentioning_from_logits(loss, y, p, low, high):
    with pytest.raises(ValueError) as info:
        loss(y, ember.tensor(p))
    message = str(info.value)
    assert loss.name in message
    assert "expected probabilities in [0, 1]" in message
    assert f"min {low}" in message and f"max {high}" in message
    assert "from_logits=True" in message


def test_N7_nan_probabilities_raise_and_logits_are_not_checked():
    with pytest.raises(ValueError, match="from_logits"):
        losses.binary_crossentropy([[1.0]], ember.tensor([[float("nan")]]))
    # the same numbers as logits are fine
    out = losses.binary_crossentropy([[0.0], [1.0]], ember.tensor([[-0.2], [1.3]]), True)
    assert out.shape == (2,) and np.all(np.isfinite(out.numpy()))


def test_N8_cce_with_zero_probability_for_the_true_class_is_finite():
    """p = 0 for the true class costs -log(1e-7) = 16.118 (float32: 16.118095) and the gradient
    is finite. Convention (Keras): outside the clip the gradient is 0."""
    for dtype in (np.float32, np.float64):
        for loss, y in [
            (losses.CategoricalCrossentropy(), [[0.0, 1.0, 0.0]]),
            (losses.SparseCategoricalCrossentropy(), [1]),
        ]:
            with np.errstate(divide="raise", invalid="raise"):
                p = ember.tensor(np.array([[1.0, 0.0, 0.0]], dtype), requires_grad=True)
                out = loss(y, p)
                out.backward()
            assert out.item() == pytest.approx(-math.log(1e-7), rel=1e-6)
            assert np.all(np.isfinite(p.grad))


def test_N8_rows_not_summing_to_one_are_normalised():
    """Documented rule (Keras): p is divided by its row sum, so [0.2, 0.2] means [0.5, 0.5]."""
    for loss, y in [
        (losses.CategoricalCrossentropy(), [[0.0, 1.0]]),
        (losses.SparseCategoricalCrossentropy(), [1]),
    ]:
        scaled = loss(y, ember.tensor(np.array([[0.2, 0.2]]))).item()
        assert scaled == pytest.approx(math.log(2.0), rel=1e-12)
        assert loss(y, ember.tensor(np.array([[0.1, 0.3]]))).item() == pytest.approx(
            -math.log(0.75), rel=1e-12
        )


def _d5_probabilities(z):
    leaf = ember.tensor(_softmax_np(z), requires_grad=True)
    return leaf, leaf


D5_PATHS = {
    # path: (from_logits, head(z array) -> (tensor whose grad is compared, y_pred))
    "logits": (True, lambda z: (lambda t: (t, t))(ember.tensor(z, requires_grad=True))),
    "softmax": (
        False,
        lambda z: (lambda t: (t, ember.softmax(t)))(ember.tensor(z, requires_grad=True)),
    ),
    "probabilities": (False, _d5_probabilities),
}


@pytest.mark.parametrize("path", sorted(D5_PATHS))
def test_D5_sparse_and_categorical_give_identical_loss_and_grads(path):
    from_logits, head = D5_PATHS[path]
    rng = _rng(7)
    labels = _labels(rng)
    z = rng.uniform(-3, 3, size=(N, C))
    grads, values = [], []
    for loss, y in [
        (losses.SparseCategoricalCrossentropy(from_logits=from_logits), labels),
        (losses.CategoricalCrossentropy(from_logits=from_logits), _onehot(labels)),
    ]:
        leaf, pred = head(z)
        out = loss(y, pred)
        out.backward()
        values.append(out.item())
        grads.append(leaf.grad)
    assert values[0] == pytest.approx(values[1], abs=1e-7, rel=0)
    assert grads[0] is not None and grads[1] is not None
    np.testing.assert_allclose(grads[0], grads[1], atol=1e-7, rtol=0)
    assert np.abs(grads[0]).max() > 1e-3  # neither is trivially zero


def test_D5_wrong_label_form_raises_naming_the_shapes():
    probs = ember.tensor(_probabilities(_rng()))
    labels = _labels(_rng())
    with pytest.raises(ValueError) as info:
        losses.CategoricalCrossentropy()(labels, probs)
    assert "(5, 4)" in str(info.value) and "(5,)" in str(info.value)
    assert "sparse_categorical_crossentropy" in str(info.value)
    with pytest.raises(ValueError) as info:
        losses.SparseCategoricalCrossentropy(from_logits=True)(_onehot(labels), probs)
    assert "(5, 4)" in str(info.value) and "(5,)" in str(info.value)
    assert "'categorical_crossentropy'" in str(info.value)


@pytest.mark.parametrize(
    "loss, y_shape, p_shape, expected",
    [
        (losses.SparseCategoricalCrossentropy(), (8,), (8, 10), "sparse_categorical_accuracy"),
        (
            losses.SparseCategoricalCrossentropy(True),
            (8, 1),
            (8, 10),
            "sparse_categorical_accuracy",
        ),
        (losses.CategoricalCrossentropy(), (8, 10), (8, 10), "categorical_accuracy"),
        (losses.BinaryCrossentropy(), (8, 1), (8, 1), "binary_accuracy"),
        # multi-label BCE: shapes alone would say "categorical"; the loss decides
        (losses.BinaryCrossentropy(from_logits=True), (8, 5), (8, 5), "binary_accuracy"),
        # no cross-entropy: Keras' shape rule
        (losses.MeanSquaredError(), (8, 1), (8, 1), "binary_accuracy"),
        (losses.MeanSquaredError(), (8,), (8, 10), "sparse_categorical_accuracy"),
        (losses.MeanSquaredError(), (8, 10), (8, 10), "categorical_accuracy"),
        (None, (8, 1), (8, 3), "sparse_categorical_accuracy"),
    ],
)
def test_D5_accuracy_resolution(loss, y_shape, p_shape, expected):
    assert metrics.resolve_accuracy(loss, y_shape, p_shape) == expected
    fn = {
        "sparse_categorical_accuracy": metrics._per_sample_sparse,
        "categorical_accuracy": metrics._per_sample_categorical,
        "binary_accuracy": metrics._per_sample_binary,
    }[expected]
    for name in ("accuracy", "acc", "Accuracy"):
        metric = metrics.get(name, loss, y_shape, p_shape)
        assert metric._fn is fn


def test_D5_accuracy_metric_values_for_each_loss():
    """Behavioural check of the resolution: the resolved metric computes the right number."""
    labels = np.array([0, 2, 1, 1])
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1], [0.2, 0.5, 0.3]])
    for loss, y in [
        (losses.SparseCategoricalCrossentropy(), labels),
        (losses.CategoricalCrossentropy(), np.eye(3)[labels]),
    ]:
        metric = metrics.get("accuracy", loss, y.shape, probs.shape)
        metric.update_state(y, probs)
        assert metric.result() == 0.75
    binary = metrics.get("accuracy", losses.BinaryCrossentropy(), (4, 1), (4, 1))
    binary.update_state(np.array([[1], [0], [1], [0]]), np.array([[0.9], [0.4], [0.3], [0.6]]))
    assert binary.result() == 0.5


@pytest.mark.parametrize("loss_cls", [losses.MeanSquaredError, losses.BinaryCrossentropy])
def test_D6_target_n_against_prediction_n_by_1_is_never_n_by_n(loss_cls):
    y = np.array([1.0, 0.0, 1.0, 1.0, 0.0])
    pred = np.array([0.9, 0.2, 0.4, 0.7, 0.1])
    p = ember.tensor(pred[:, None], requires_grad=True)
    out = loss_cls()(y, p)
    out.backward()
    if loss_cls is losses.MeanSquaredError:
        correct = np.mean((pred - y) ** 2)
        broadcast = np.mean((pred[:, None] - y[None, :]) ** 2)
    else:
        correct = np.mean(-(y * np.log(pred) + (1 - y) * np.log(1 - pred)))
        broadcast = np.mean(
            -(y[None, :] * np.log(pred[:, None]) + (1 - y[None, :]) * np.log(1 - pred[:, None]))
        )
    assert abs(correct - broadcast) > 0.05  # the test can tell the two apart
    assert out.item() == pytest.approx(correct, rel=1e-12)
    assert p.grad.shape == (5, 1)
    # and the other way round: y (N, 1), pred (N,)
    assert loss_cls()(y[:, None], ember.tensor(pred)).item() == pytest.approx(correct, rel=1e-12)


def test_B5_float_integral_labels_accepted_and_fractional_rejected():
    z = _rng(3).uniform(-2, 2, size=(3, 4))
    loss = losses.SparseCategoricalCrossentropy(from_logits=True)
    assert loss(np.array([0.0, 2.0, 1.0]), z).item() == loss(np.array([0, 2, 1]), z).item()
    assert loss(np.array([[0.0], [2.0], [1.0]]), z).item() == loss([0, 2, 1], z).item()
    with pytest.raises(ValueError, match=r"whole class indices; label at index 1 is 0\.5"):
        loss(np.array([1.0, 0.5, 2.0]), z)
    with pytest.raises(ValueError, match="label at index 0 is nan"):
        loss(np.array([np.nan, 0.0, 2.0]), z)
    with pytest.raises(TypeError, match="labels must be integers"):
        loss(np.array(["a", "b", "c"]), z)


@pytest.mark.parametrize("bad", [10, -1])
@pytest.mark.parametrize("from_logits", [True, False])
def test_B7_labels_out_of_range_raise_naming_label_and_index(bad, from_logits):
    """-1 would silently index the last class in NumPy: it must raise like 10 does."""
    z = _rng(4).uniform(0.1, 1.0, size=(4, 10))
    labels = np.array([3, 0, bad, 9])
    with pytest.raises(ValueError) as info:
        losses.SparseCategoricalCrossentropy(from_logits=from_logits)(labels, z)
    message = str(info.value)
    assert f"label {bad} is outside the valid range [0, 10) (first bad label at index 2)" in message
    assert "sparse_categorical_crossentropy" in message


# ------------------------------------------------------------------------------ fused gradient
def test_sparse_ce_gradient_is_exactly_softmax_minus_onehot_over_n():
    rng = _rng(11)
    labels = _labels(rng)
    z = rng.uniform(-4, 4, size=(N, C))
    expected = (_softmax_np(z) - _onehot(labels)) / N
    for from_logits, head in [
        (True, lambda t: t),
        (False, ember.softmax),
        (False, lambda t: ember.layers.Activation("softmax", dtype="float64")(t)),
    ]:
        logits = ember.tensor(z, requires_grad=True)
        losses.SparseCategoricalCrossentropy(from_logits=from_logits)(
            labels, head(logits)
        ).backward()
        np.testing.assert_allclose(logits.grad, expected, rtol=0, atol=1e-15)
    # float32 likewise, to float32 precision
    logits = ember.tensor(z.astype(np.float32), requires_grad=True)
    losses.SparseCategoricalCrossentropy()(labels, ember.softmax(logits)).backward()
    assert logits.grad.dtype == np.float32
    np.testing.assert_allclose(logits.grad, expected, rtol=0, atol=1e-7)


def test_softmax_output_with_probabilities_loss_does_not_backprop_through_log_softmax():
    """The fused path skips the softmax node: the gradient is finite even when p underflows."""
    z = ember.tensor([[200.0, 0.0, -200.0]], dtype="float64", requires_grad=True)
    out = losses.CategoricalCrossentropy()([[0.0, 0.0, 1.0]], ember.softmax(z))
    out.backward()
    assert out.item() == pytest.approx(400.0, rel=1e-12)  # not the clipped 16.12
    np.testing.assert_allclose(z.grad, [[1.0, 0.0, -1.0]], atol=1e-15)


def test_sigmoid_output_with_bce_uses_the_fused_gradient():
    z = np.array([[-2.0], [0.5], [3.0]])
    y = np.array([[0.0], [1.0], [1.0]])
    logits = ember.tensor(z, requires_grad=True)
    losses.BinaryCrossentropy()(y, ember.sigmoid(logits)).backward()
    np.testing.assert_allclose(logits.grad, (1 / (1 + np.exp(-z)) - y) / 3, rtol=0, atol=1e-15)


# ------------------------------------------------------------------------------ metrics
def test_binary_accuracy_hand_values():
    y = np.array([[1], [0], [1], [0]])
    p = np.array([[0.9], [0.2], [0.4], [0.6]])
    assert metrics.binary_accuracy(y, p) == 0.5
    assert metrics.binary_accuracy(y, p, threshold=0.3) == 0.75  # 0.4 now counts as 1
    assert metrics.binary_accuracy(y, p, threshold=0.1) == 0.5  # all positive
    assert metrics.binary_accuracy(y.reshape(-1), p) == 0.5  # (N,) against (N, 1)
    assert metrics.binary_accuracy(y, ember.tensor(p)) == 0.5
    # multi-label: the per-sample value is the fraction of right labels
    multi = metrics._per_sample_binary(
        np.array([[1, 0], [1, 1]]), np.array([[0.8, 0.7], [0.6, 0.9]])
    )
    np.testing.assert_array_equal(multi, [0.5, 1.0])


def test_categorical_and_sparse_accuracy_hand_values():
    p = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.4, 0.4, 0.2]])
    labels = np.array([1, 0, 1, 0])  # row 3 is a tie: arg-max picks the first index
    assert metrics.sparse_categorical_accuracy(labels, p) == 0.75
    assert metrics.sparse_categorical_accuracy(labels[:, None], p) == 0.75
    assert metrics.sparse_categorical_accuracy(labels.astype(float), p) == 0.75
    assert metrics.categorical_accuracy(np.eye(3)[labels], p) == 0.75
    assert metrics.categorical_accuracy(np.eye(3)[[2, 2, 2, 2]], p) == 0.25
    with pytest.raises(ValueError, match=r"y_true shape \(4,\) must match y_pred shape \(4, 3\)"):
        metrics.categorical_accuracy(labels, p)


def test_metric_object_accumulates_a_sample_weighted_mean():
    metric = metrics.get("sparse_categorical_accuracy")
    assert math.isnan(metric.result())
    metric.update_state([0, 1, 1], np.array([[1, 0], [1, 0], [0, 1.0]]))  # 2 of 3
    metric.update_state([0], np.array([[0, 1.0]]))  # 0 of 1
    assert metric.result() == 0.5  # 2 / 4, not the mean of batch means (1/3)
    metric.reset_state()
    assert math.isnan(metric.result())
    custom = metrics.get(lambda yt, yp: np.abs(yt - yp))
    custom.update_state([1.0, 2.0], [1.5, 2.0])
    assert custom.name == "<lambda>" and custom.result() == 0.25


def test_metric_unknown_name_suggests_the_closest():
    with pytest.raises(ValueError, match="Did you mean 'binary_accuracy'"):
        metrics.get("binary_acuracy")
    with pytest.raises(ValueError, match="Did you mean 'accuracy'"):
        metrics.validate_names(["accuracy", "acuracy"])


# ------------------------------------------------------------------------------ issue 4 losses
# name -> (registry names, class, (y_true, y_pred) maker)
def _regression(rng):
    return rng.uniform(-1, 1, size=(N, 3)), rng.uniform(-4, 4, size=(N, 3))


def _hinge_targets(rng):
    return rng.integers(0, 2, size=(N, 3)).astype(np.float64), rng.uniform(-2, 2, size=(N, 3))


def _nll_case(rng):
    z = rng.uniform(-3, 3, size=(N, C))
    return _labels(rng), z - np.log(np.exp(z).sum(-1, keepdims=True))  # log-probabilities


def _kl_case(rng):
    return _probabilities(rng), _probabilities(rng)


NEW_LOSSES = {
    "mse": (("mse", "mean_squared_error"), losses.MeanSquaredError, _regression),
    "half_mse": (("half_mse", "half_mean_squared_error"), losses.HalfMeanSquaredError, _regression),
    "rmse": (("rmse", "root_mean_squared_error"), losses.RootMeanSquaredError, _regression),
    "mae": (("mae", "mean_absolute_error"), losses.MeanAbsoluteError, _regression),
    "huber": (("huber",), losses.Huber, _regression),
    "nll": (("nll", "negative_log_likelihood"), losses.NegativeLogLikelihood, _nll_case),
    "hinge": (("hinge",), losses.Hinge, _hinge_targets),
    "kl_divergence": (
        ("kl_divergence", "kld", "kullback_leibler_divergence"),
        losses.KLDivergence,
        _kl_case,
    ),
}


def _per_sample_numpy(kind, y, p, delta=1.0):
    """Hand formulas, one value per sample."""
    if kind in ("mse", "rmse"):
        return ((p - y) ** 2).mean(-1)
    if kind == "half_mse":
        return 0.5 * ((p - y) ** 2).mean(-1)
    if kind == "mae":
        return np.abs(p - y).mean(-1)
    if kind == "huber":
        a = np.abs(p - y)
        return np.where(a <= delta, 0.5 * a**2, delta * (a - 0.5 * delta)).mean(-1)
    if kind == "nll":
        return -p[np.arange(len(y)), y]
    if kind == "hinge":
        signs = 2 * y - 1 if np.all((y == 0) | (y == 1)) else y
        return np.maximum(1 - signs * p, 0).mean(-1)
    return (y * np.log(y / p)).sum(-1)  # kl_divergence


def _torch_new_loss(kind, torch, y, p, delta=1.0):
    F = _f(torch)
    if kind == "nll":
        return F.nll_loss(p, torch.tensor(y, dtype=torch.long))
    target = torch.tensor(y, dtype=p.dtype)
    if kind == "mse":
        return torch.nn.MSELoss()(p, target)
    if kind == "half_mse":
        return 0.5 * torch.nn.MSELoss()(p, target)
    if kind == "rmse":
        return torch.sqrt(torch.nn.MSELoss()(p, target))
    if kind == "mae":
        return torch.nn.L1Loss()(p, target)
    if kind == "huber":
        return torch.nn.HuberLoss(delta=delta)(p, target)
    if kind == "hinge":  # no torch twin for Keras' hinge: the formula in torch ops
        return torch.clamp(1 - (2 * target - 1) * p, min=0).mean(-1).mean()
    # KLDivLoss takes log q; batchmean divides the sum by the batch size (the true KL mean)
    return torch.nn.KLDivLoss(reduction="batchmean", log_target=False)(torch.log(p), target)


@pytest.mark.parametrize("kind", sorted(NEW_LOSSES))
def test_new_losses_resolve_by_every_name(kind):
    names, cls, _ = NEW_LOSSES[kind]
    for name in names:
        assert type(losses.get(name)) is cls
    assert type(losses.get(cls)) is cls
    again = losses.deserialize(losses.serialize(cls()))
    assert type(again) is cls


@pytest.mark.parametrize("kind", sorted(NEW_LOSSES))
def test_new_losses_match_the_hand_formula_and_gradcheck(kind):
    names, cls, make = NEW_LOSSES[kind]
    y, p = make(_rng(11))
    out = losses.get(names[0])(y, ember.tensor(p))
    expected = _per_sample_numpy(kind, y, p).mean()
    if kind == "rmse":
        expected = math.sqrt(expected)
    assert out.shape == () and out.dtype == np.float64
    assert out.item() == pytest.approx(expected, rel=1e-12)
    assert gradcheck(lambda t: cls()(y, t), p).ok


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", sorted(NEW_LOSSES))
def test_new_losses_match_torch(kind, dtype, torch):
    _, cls, make = NEW_LOSSES[kind]
    y, p = make(_rng(12))
    tol = {} if dtype == np.float32 else dict(atol=1e-12, rtol=1e-12, grad_atol=1e-12)
    assert_matches_torch(
        lambda t: cls()(y, t),
        lambda t: _torch_new_loss(kind, torch, y, t),
        [p.astype(dtype)],
        dtype=dtype,
        **tol,
    )


@pytest.mark.parametrize("delta", [0.5, 1.0, 2.5])
def test_huber_delta_matches_torch_in_both_regions(delta, torch):
    y = _rng(13).uniform(-1, 1, size=(N, 3))
    p = y + np.linspace(-4, 4, 15).reshape(N, 3) + 0.01  # |error| from 0.01 to 4, never δ
    a = np.abs(p - y)
    assert (a < delta).any() and (a > delta).any()  # both branches are exercised
    out = losses.Huber(delta=delta)(y, ember.tensor(p)).item()
    assert out == pytest.approx(_per_sample_numpy("huber", y, p, delta).mean(), rel=1e-12)
    assert_matches_torch(
        lambda t: losses.huber(y, t, delta=delta).mean(),
        lambda t: _torch_new_loss("huber", torch, y, t, delta),
        [p],
        dtype=np.float64,
        atol=1e-12,
        rtol=1e-12,
        grad_atol=1e-12,
    )
    assert losses.get("huber").delta == 1.0  # Keras' and PyTorch's default
    again = losses.deserialize(losses.serialize(losses.Huber(delta=delta)))
    assert again.delta == delta


@pytest.mark.parametrize("kind", sorted(NEW_LOSSES))
def test_new_losses_sample_weight_is_a_weighted_mean_over_the_batch(kind):
    _, cls, make = NEW_LOSSES[kind]
    y, p = make(_rng(14))
    w = np.array([0.5, 2.0, 0.0, 1.0, 3.0])
    per_sample = _per_sample_numpy(kind, y, p)
    expected = np.sum(w * per_sample) / N
    if kind == "rmse":
        expected = math.sqrt(expected)  # √ of the weighted MSE
    t = ember.tensor(p, requires_grad=True)
    out = cls()(y, t, sample_weight=w)
    out.backward()
    assert out.item() == pytest.approx(expected, rel=1e-12)
    assert np.all(t.grad[2] == 0) and np.any(t.grad[1] != 0)
    assert gradcheck(lambda q: cls()(y, q, sample_weight=w), p).ok


def test_loss_hand_values():
    y, p = [[1.0], [0.0]], ember.tensor([[0.3], [0.5]], dtype="float64")
    # Keras' function forms give one loss per sample
    assert losses.hinge(y, p).numpy() == pytest.approx([0.7, 1.5])
    assert losses.hinge([[1.0], [-1.0]], p).numpy().tolist() == losses.hinge(y, p).numpy().tolist()
    # labels in {-1, 1} are used as they are; other values are not converted either
    assert losses.hinge([[2.0], [-1.0]], p).numpy() == pytest.approx([0.4, 1.5])
    zeros = [[0.0], [0.0]]
    huber = losses.huber(zeros, ember.tensor([[0.5], [3.0]], dtype="float64"))
    assert huber.numpy() == pytest.approx([0.125, 2.5])
    # Ember's own function forms (no Keras counterpart) give the batch mean, as PyTorch's
    assert losses.half_mean_squared_error(zeros, ember.tensor([[1.0], [3.0]])).item() == 2.5
    assert losses.root_mean_squared_error(zeros, ember.tensor([[3.0], [-3.0]])).item() == 3.0
    assert losses.mae(zeros, ember.tensor([[1.0], [-3.0]])).numpy().tolist() == [1.0, 3.0]
    kl = losses.kl_divergence([[0.5, 0.5]], ember.tensor([[0.25, 0.75]], dtype="float64"))[0]
    assert kl.item() == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(2 / 3), rel=1e-14)
    logp = ember.ops.log_softmax(ember.tensor([[0.0, 2.0]], dtype="float64"))
    assert losses.nll([1], logp).item() == pytest.approx(math.log(1 + math.exp(-2)), rel=1e-14)


def test_kl_divergence_clips_like_keras_so_zero_probabilities_stay_finite():
    y = np.array([[0.0, 1.0]])
    p = ember.tensor([[0.5, 0.0]], dtype="float64", requires_grad=True)
    out = losses.KLDivergence()(y, p)
    out.backward()
    e = 1e-7
    assert out.item() == pytest.approx(e * math.log(e / 0.5) + math.log(1 / e), rel=1e-12)
    assert np.all(np.isfinite(p.grad))


def test_rmse_of_a_perfect_fit_is_zero_with_zero_gradient():
    p = ember.tensor([[1.0, 2.0]], dtype="float64", requires_grad=True)
    out = losses.RootMeanSquaredError()([[1.0, 2.0]], p)
    out.backward()
    assert out.item() == 0.0 and np.all(p.grad == 0)


def test_nll_checks_its_labels_and_shapes():
    logp = ember.tensor(np.log(np.full((2, 3), 1 / 3)))
    with pytest.raises(ValueError, match=r"label 3 is outside the valid range \[0, 3\) \(first"):
        losses.nll([0, 3], logp)
    with pytest.raises(ValueError, match=r"y_pred must be \(batch, classes\)"):
        losses.nll([0, 1], ember.tensor(np.zeros(2)))


def test_B9_new_loss_names_and_hyper_parameters():
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="huber: delta must be a positive number"):
            losses.Huber(delta=bad)
    for typo, closest in [
        ("hubber", "huber"),
        ("kl_divergance", "kl_divergence"),
        ("hinje", "hinge"),
        ("rmes", "rmse"),
        ("half_mes", "half_mse"),
    ]:
        with pytest.raises(ValueError, match=rf"unknown loss '{typo}'\. Did you mean '{closest}'"):
            losses.get(typo)


def test_compile_accepts_the_new_loss_names():
    rng = _rng(15)
    x = rng.standard_normal((32, 4)).astype(np.float32)
    y = x @ rng.standard_normal((4, 1)).astype(np.float32)
    for name in ("huber", "mae", "rmse", "half_mse", "mse"):
        ember.manual_seed(0)
        model = ember.models.Sequential([ember.layers.Dense(1)])
        model.compile(optimizer="sgd", loss=name)
        history = model.fit(x, y, batch_size=8, epochs=3, verbose=0)
        assert history.history["loss"][-1] < history.history["loss"][0]
        assert type(model.loss) is type(losses.get(name))
