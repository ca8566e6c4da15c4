"""Bad inputs to the losses and the fused cross-entropy ops fail early with a message that says
what came, what was expected and how to fix it; an empty batch is not bad input (catalogue B6).

Tests are named after the items of the issue: ``test_bad_input_*`` and the catalogue IDs B6/B7.
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest

import ember
from ember import losses, ops

C = 10  # classes of the sparse cases


def _logits(n=4, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).uniform(-2, 2, size=(n, C)).astype(dtype)


# ------------------------------------------------------------------------------ PyTorch order
def _pytorch_order_case(kind):
    """(loss, prediction Tensor requiring grad, targets) in the order Keras expects."""
    rng = np.random.default_rng(1)
    if kind == "sparse_ce":
        pred = ember.tensor(_logits(), requires_grad=True)
        return losses.SparseCategoricalCrossentropy(from_logits=True), pred, np.array([1, 0, 9, 3])
    if kind == "ce":
        pred = ember.tensor(_logits(), requires_grad=True)
        return losses.CategoricalCrossentropy(from_logits=True), pred, np.eye(C)[[1, 0, 9, 3]]
    if kind == "mse":
        pred = ember.tensor(rng.normal(size=(4, 2)), requires_grad=True)
        return losses.MeanSquaredError(), pred, rng.normal(size=(4, 2))
    pred = ember.tensor(rng.normal(size=(4, 1)), requires_grad=True)
    return losses.BinaryCrossentropy(from_logits=True), pred, np.array([[1.0], [0.0], [1.0], [0.0]])


@pytest.mark.parametrize("kind", ["sparse_ce", "ce", "mse", "bce"])
def test_bad_input_loss_called_in_pytorch_order(kind):
    loss, pred, y = _pytorch_order_case(kind)
    loss(y, pred).backward()  # Keras' order works
    with pytest.raises(TypeError) as info:
        loss(pred, y)  # PyTorch's loss(input, target)
    message = str(info.value)
    assert message.startswith(f"{loss.name}: ")
    assert "PyTorch's order" in message and "(y_true, y_pred)" in message
    assert "y_true requires grad and y_pred does not" in message
    # the function forms go through the same check
    function = {
        "sparse_ce": losses.sparse_categorical_crossentropy,
        "ce": losses.categorical_crossentropy,
        "mse": losses.mean_squared_error,
        "bce": losses.binary_crossentropy,
    }[kind]
    with pytest.raises(TypeError, match="PyTorch's order"):
        function(pred, y)


def test_bad_input_loss_called_in_pytorch_order_without_gradients():
    """Under no_grad (evaluation) nothing requires grad: sparse losses still recognise float
    scores followed by integer labels of one axis less."""
    logits, labels = _logits(), np.array([1, 0, 9, 3])
    for loss in (losses.SparseCategoricalCrossentropy(from_logits=True), losses.nll):
        with ember.no_grad():
            with pytest.raises(TypeError, match=r"y_true holds float scores of shape \(4, 10\)"):
                loss(ember.tensor(logits), labels)
        with pytest.raises(TypeError, match="PyTorch's order"):
            loss(logits, labels.tolist())  # plain arrays and lists too
    # Keras' order with float labels and integer-valued predictions is no false alarm
    out = losses.SparseCategoricalCrossentropy()(labels.astype(float), np.eye(C)[labels] * 0.9)
    assert np.isfinite(out.item())


def test_pytorch_order_check_leaves_legitimate_calls_alone():
    rng = np.random.default_rng(2)
    a = ember.tensor(rng.normal(size=(3, 2)), requires_grad=True)
    b = ember.tensor(rng.normal(size=(3, 2)), requires_grad=True)
    losses.MeanSquaredError()(a, b).backward()  # both are Tensors with gradients: no error
    assert b.grad is not None
    target = ember.tensor(rng.normal(size=(3, 2)))  # a Tensor target that needs no grad
    assert losses.mse(target, b).mean().item() >= 0


# ------------------------------------------------------------------------------ BCE targets
@pytest.mark.parametrize("path", ["probabilities", "from_logits", "sigmoid_output"])
@pytest.mark.parametrize(
    "targets, shown, where",
    [
        ([[1.0], [0.0], [-1.0], [2.0]], "-1", "(2, 0)"),
        ([[1.0], [2.0], [-1.0], [0.0]], "2", "(1, 0)"),
        ([[0.5], [1.02], [3.0], [0.0]], "3", "(2, 0)"),  # a class id; 1.02 is noise
        ([[0.5], [np.nan], [1.0], [0.0]], "nan", "(1, 0)"),
    ],
)
def test_bad_input_binary_crossentropy_targets_outside_unit_interval(path, targets, shown, where):
    z = ember.tensor([[0.3], [-1.2], [2.0], [0.1]], dtype="float64")
    pred = {
        "probabilities": ember.tensor(1 / (1 + np.exp(-z.data))),
        "from_logits": z,
        "sigmoid_output": ember.sigmoid(z),  # the loss reaches back to the fused form
    }[path]
    loss = losses.BinaryCrossentropy(from_logits=path == "from_logits")

    def call(y):
        return loss(y, pred)

    with pytest.raises(ValueError) as info:
        call(np.array(targets))
    message = str(info.value)
    assert message.startswith(
        "binary_crossentropy: targets (y_true) must be probabilities in [0, 1]"
    )
    assert f"got {shown} at index {where}" in message
    assert "(y + 1) / 2" in message  # how to fix {-1, 1} labels
    # soft targets inside [0, 1], the bounds included, are fine
    assert np.isfinite(call(np.array([[0.0], [1.0], [0.25], [0.5]])).item())
    # so are noisy labels just outside it (Keras' DCGAN guide adds 0.05 * uniform to ones),
    # computed with the same formula as inside: -(y log p + (1 - y) log(1 - p))
    noisy = np.array([[1.04], [-0.02], [0.5], [1.0]])
    p = 1 / (1 + np.exp(-z.data))
    expected = -(noisy * np.log(p) + (1 - noisy) * np.log(1 - p)).mean()
    np.testing.assert_allclose(call(noisy).item(), expected, rtol=1e-6)


def test_bad_input_fused_sigmoid_op_targets_outside_unit_interval():
    z = ember.tensor([0.3, -1.2, 2.0])
    with pytest.raises(ValueError, match=r"^sigmoid_binary_cross_entropy: targets .* got 3 at"):
        ops.sigmoid_binary_cross_entropy(z, [0.0, 3.0, 1.0])
    ops.sigmoid_binary_cross_entropy(z, [0.0, 0.7, 1.0])


# ------------------------------------------------------------------------------ sparse labels
def _sparse_calls():
    def scce(from_logits):
        def call(labels):
            loss = losses.SparseCategoricalCrossentropy(from_logits=from_logits)
            z = _logits()
            probabilities = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
            return loss(labels, z if from_logits else ember.tensor(probabilities))

        return call

    def softmax_output(labels):  # probabilities from softmax: the fused path
        return losses.SparseCategoricalCrossentropy()(labels, ember.softmax(_logits()))

    def nll(labels):
        return losses.nll(labels, ember.ops.log_softmax(_logits()))

    return {
        "sparse_categorical_crossentropy-logits": scce(True),
        "sparse_categorical_crossentropy-probabilities": scce(False),
        "sparse_categorical_crossentropy-softmax_output": softmax_output,
        "negative_log_likelihood": nll,
    }


SPARSE_CALLS = _sparse_calls()


@pytest.mark.parametrize("case", sorted(SPARSE_CALLS))
def test_bad_input_sparse_labels_out_of_range(case):
    call = SPARSE_CALLS[case]
    name = case.split("-")[0]
    with pytest.raises(ValueError) as info:
        call(np.array([3, 0, 10, 9]))
    message = str(info.value)
    assert message.startswith(f"{name}: label 10 is outside the valid range [0, 10)")
    assert "(first bad label at index 2)" in message
    # the first offender is named, not the largest; whole floats read as integers
    with pytest.raises(ValueError, match=r"label 12 is outside .* at index 1\)"):
        call(np.array([3.0, 12.0, 10.0, 0.0]))
    assert np.isfinite(call(np.array([3, 0, 9, 9])).item())  # the edge class 9 is valid


@pytest.mark.parametrize("case", sorted(SPARSE_CALLS))
def test_bad_input_sparse_labels_negative(case):
    """NumPy would read -1 as the last class: a silently wrong loss, not an error."""
    call = SPARSE_CALLS[case]
    with pytest.raises(ValueError) as info:
        call(np.array([[3], [-1], [0], [1]]))  # (N, 1) labels too
    message = str(info.value)
    assert "label -1 is outside the valid range [0, 10) (first bad label at index 1)" in message
    assert message.startswith(case.split("-")[0])


@pytest.mark.parametrize("bad, index", [(10, 2), (-1, 0)])
def test_bad_input_fused_op_labels_out_of_range(bad, index):
    logits = ember.tensor(_logits(), requires_grad=True)
    labels = np.array([3, 0, 4, 9])
    labels[index] = bad
    with pytest.raises(ValueError) as info:
        ops.sparse_softmax_cross_entropy(logits, labels)
    message = str(info.value)
    assert message.startswith(
        f"sparse_softmax_cross_entropy: label {bad} is outside the valid range [0, 10) "
        f"(first bad label at index {index})"
    )
    with pytest.raises(ValueError, match="label at index 1 is 0.5"):
        ops.sparse_softmax_cross_entropy(logits, [1.0, 0.5, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"expected one label per row of the logits \(4\), got 3"):
        ops.sparse_softmax_cross_entropy(logits, [1, 2, 3])
    # one implementation of the check, in the ops layer, used by the losses too
    assert losses.check_class_labels is ops.nn.check_class_labels


class _NoPythonLoops(np.ndarray):
    """An array that fails when Python iterates over it or reads a single element."""

    def __iter__(self):
        raise AssertionError("the check iterated over the values in Python")

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            raise AssertionError("the check read values one by one in Python")
        return super().__getitem__(index)


def test_label_check_is_one_vectorized_pass():
    """Valid inputs are checked with whole-array operations only: an array that refuses Python
    iteration and element reads passes both checks (a loop over them fails)."""
    labels = np.random.default_rng(0).integers(0, C, size=2_000).view(_NoPythonLoops)
    ops.nn.check_class_labels("loss", labels, C)
    ops.nn.check_binary_targets("loss", (labels / C).view(_NoPythonLoops))
    with pytest.raises(AssertionError, match="Python"):
        for _ in labels:  # the guard itself works
            pass


# ------------------------------------------------------------------------------ B6: empty batch
LABEL_LOSSES = (losses.SparseCategoricalCrossentropy, losses.NegativeLogLikelihood)


def _registered():
    """(id, loss) for every name registered in ember.losses, plus the from_logits forms."""
    cases = [(name, losses.get(name)) for name in sorted(losses._LOSSES)]
    for cls in sorted(set(losses._LOSSES.values()), key=lambda c: c.__name__):
        if "from_logits" in inspect.signature(cls).parameters:
            cases.append((f"{cls.__name__}(from_logits=True)", cls(from_logits=True)))
    return cases


def test_every_loss_class_is_registered_so_B6_sees_it():
    classes = {
        obj
        for obj in vars(losses).values()
        if isinstance(obj, type) and issubclass(obj, losses.Loss) and obj is not losses.Loss
    }
    public = {cls for cls in classes if not cls.__name__.startswith("_")}
    assert public <= set(losses._LOSSES.values())


REGISTERED = _registered()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("head", ["raw", "softmax", "sigmoid"])
@pytest.mark.parametrize("name, loss", REGISTERED, ids=[n for n, _ in REGISTERED])
def test_B6_zero_row_batches_through_every_loss(name, loss, head, dtype):
    z = ember.tensor(np.zeros((0, 4), dtype=dtype), requires_grad=True)
    pred = {"raw": lambda t: t, "softmax": ember.softmax, "sigmoid": ember.sigmoid}[head](z)
    if isinstance(loss, LABEL_LOSSES):
        y = np.zeros((0,), dtype=np.int64)
    else:
        y = np.zeros((0, 4), dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            out = loss(y, pred)
            weighted = loss(y, pred, sample_weight=np.zeros(0))
            (out + weighted).backward()
    assert isinstance(out, ember.Tensor) and out.shape == () and np.isfinite(out.item())
    assert out.item() == 0.0 and weighted.item() == 0.0
    assert z.grad is not None and z.grad.shape == (0, 4)
