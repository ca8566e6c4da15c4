"""ember.variables: Parameter (a layer's weight) and Variable (TensorFlow / Keras 3's)."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import Tensor
from ember.tensor import GradientTape
from ember.variables import Parameter, Variable


# ------------------------------------------------------------------------------ Parameter
def test_parameter_is_a_trainable_leaf():
    w = Parameter(np.zeros((2, 3), np.float32), name="w")
    assert w.requires_grad and w.is_leaf and w.trainable
    assert repr(w) == "Parameter(name='w', shape=(2, 3), dtype=float32)"
    frozen = Parameter(np.zeros(2, np.float32), trainable=False)
    assert frozen.requires_grad and not frozen.trainable
    (w * 2.0).sum().backward()
    np.testing.assert_array_equal(w.grad, np.full((2, 3), 2.0))


def test_parameter_rejects_integers():
    with pytest.raises(TypeError, match="floating-point"):
        Parameter(np.arange(3))


# ------------------------------------------------------------------------------ Variable
def test_variable_basics():
    v = Variable(np.arange(6, dtype=np.float32).reshape(2, 3), name="v")
    assert isinstance(v, Parameter) and isinstance(v, Tensor)
    assert v.requires_grad and v.is_leaf and v.trainable
    assert repr(v) == "Variable(name='v', shape=(2, 3), dtype=float32)"
    copy = v.numpy()
    copy[...] = -1  # a copy: the variable never changes behind its version's back
    assert v.data[0, 0] == 0 and v._version == 0
    assert Variable([1.0, 2.0]).dtype == np.float32  # Python floats become float32
    assert Variable(np.zeros(2)).dtype == np.float64  # NumPy float arrays keep their dtype
    assert Variable([1, 2], dtype="float32").dtype == np.float32
    assert Variable(lambda: np.ones(3, np.float32)).shape == (3,)  # a callable initial value


def test_variable_owns_its_value():
    initial = np.ones(3, np.float32)
    v = Variable(initial)
    v.assign_add(1.0)
    np.testing.assert_array_equal(initial, np.ones(3))
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2.0  # a frozen array
    v = Variable(y)
    v.assign([0.0, 0.0])
    np.testing.assert_array_equal(y.data, [2.0, 4.0])


def test_assign_family_in_place_shape_dtype_kept_and_versions():
    v = Variable(np.zeros((2, 3), np.float32), name="kernel")
    array_id = id(v.data)
    assert v.assign(np.ones((2, 3))) is v  # float64 value, float32 variable
    assert v.assign_add(ember.tensor([1.0, 2.0, 3.0])) is v  # a Tensor, broadcast over rows
    assert v.assign_sub(0.5) is v  # a number
    assert v.dtype == np.float32 and v.shape == (2, 3) and id(v.data) == array_id
    np.testing.assert_array_equal(v.data, [[1.5, 2.5, 3.5]] * 2)
    assert v._version == 3


def test_assign_wrong_shape_or_dtype_names_the_variable():
    v = Variable(np.zeros((2, 3), np.float32), name="kernel")
    with pytest.raises(ValueError, match=r"Variable 'kernel'\.assign: .*\(3, 2\).*\(2, 3\)"):
        v.assign(np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"'kernel'\.assign_add"):
        v.assign_add(np.zeros(4))
    with pytest.raises(TypeError, match="expected numbers"):
        v.assign(np.array(["a"] * 3))
    counter = Variable(0, trainable=False, name="step")
    with pytest.raises(TypeError, match="dtype never changes"):
        counter.assign_add(0.5)
    assert v._version == 0 and counter._version == 0


def test_integer_and_non_trainable_variables():
    step = Variable(np.int64(0), trainable=False, name="step")
    assert step.dtype.kind == "i" and not step.requires_grad and step.is_leaf
    step.assign_add(1)
    assert step.numpy() == 1
    assert repr(step) == "Variable(name='step', shape=(), dtype=int64, trainable=False)"
    trainable_int = Variable([1, 2])  # allowed (TF's), but there is nothing to differentiate
    assert trainable_int.trainable and not trainable_int.requires_grad
    frozen = Variable([1.0, 2.0], trainable=False)
    assert not frozen.requires_grad
    frozen.trainable = True
    assert frozen.requires_grad and frozen.trainable
    frozen.trainable = False
    assert not frozen.requires_grad


def test_non_trainable_variable_and_the_tape():
    """TF's behaviour: a tape does not watch a non-trainable variable unless told to."""
    v = Variable([1.0, 2.0], trainable=False)
    w = Variable([3.0, 4.0])
    with GradientTape(persistent=True) as tape:
        loss = (v * w).sum()
    dv, dw = tape.gradient(loss, [v, w])
    assert dv is None
    np.testing.assert_array_equal(dw.data, [1.0, 2.0])
    with GradientTape() as tape:
        tape.watch(v)
        loss = (v * w).sum()
    np.testing.assert_array_equal(tape.gradient(loss, v).data, [3.0, 4.0])
    assert not v.requires_grad  # restored after the tape


def test_value_is_a_snapshot_through_which_the_gradient_flows():
    v = Variable([1.0, 2.0], name="v")
    with GradientTape() as tape:
        snapshot = v.value
        loss = (snapshot * snapshot).sum()
    v.assign([10.0, 20.0])  # the snapshot is a copy: the graph is still valid
    np.testing.assert_array_equal(snapshot.data, [1.0, 2.0])
    np.testing.assert_array_equal(tape.gradient(loss, v).data, [2.0, 4.0])


def test_assign_between_forward_and_backward_raises():
    v = Variable([1.0, 2.0], name="v")
    loss = (v * v).sum()
    v.assign_sub(0.1)
    with pytest.raises(RuntimeError, match=r"Variable 'v' \(shape \(2,\), dtype float32\)"):
        loss.backward()


def test_inplace_operator_on_a_trainable_variable_suggests_assign():
    v = Variable([1.0, 2.0], name="v")
    with pytest.raises(RuntimeError, match="assign_add"):
        v += 1.0
    with ember.no_grad():
        v += 1.0
    np.testing.assert_array_equal(v.data, [2.0, 3.0])


def test_variable_with_an_optimizer_and_backward():
    v = Variable([2.0, -3.0], name="v")
    optimizer = ember.optimizers.SGD([v], learning_rate=0.25)
    for _ in range(20):
        loss = (v * v).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert np.abs(v.data).max() < 1e-3
    assert v._version >= 20


def test_copy_and_pickle_keep_value_and_trainability():
    import copy
    import pickle

    for original in (Variable([1.0, 2.0], name="v"), Variable([3.0], trainable=False)):
        for clone in (copy.deepcopy(original), pickle.loads(pickle.dumps(original))):
            assert type(clone) is Variable and clone.name == original.name
            assert clone.trainable == original.trainable
            assert clone.requires_grad == original.requires_grad
            np.testing.assert_array_equal(clone.data, original.data)
            clone.assign_add(1.0)  # independent
            assert clone._version == 1 and original._version == 0
