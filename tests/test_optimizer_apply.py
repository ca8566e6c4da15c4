"""Keras 3 / TensorFlow style application of gradients (``apply``, ``apply_gradients``), lazily
built optimizers, PyTorch's argument spellings (``lr=``, ``eps=``, ``betas=``) and the validation
of learning rates and weight decays.

The central property: ``apply``/``apply_gradients`` and ``step()`` share one update path, so
feeding the same gradients either way gives bit-identical parameters and optimizer state.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import ember
from ember.layers import Parameter
from ember.optimizers import (
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Nadam,
    Optimizer,
    RMSprop,
    schedules,
)
from ember.tensor import Tensor

SHAPES = [(3, 4), (5,), (2, 1)]

# (optimizer class, options): every optimizer, with the shared machinery switched on somewhere
CONFIGS = {
    "sgd": (SGD, {"learning_rate": 0.1}),
    "sgd-nesterov-decay": (
        SGD,
        {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1},
    ),
    "rmsprop-centered": (
        RMSprop,
        {"learning_rate": 0.01, "centered": True, "momentum": 0.5, "clipvalue": 0.5},
    ),
    "adagrad": (Adagrad, {"learning_rate": 0.1, "clipnorm": 1.0}),
    "adadelta": (Adadelta, {"learning_rate": 1.0, "rho": 0.9}),
    "adam": (Adam, {"learning_rate": 0.01}),
    "adam-amsgrad-schedule": (
        Adam,
        {
            "learning_rate": schedules.ExponentialDecay(0.02, decay_steps=2, decay_rate=0.5),
            "amsgrad": True,
            "global_clipnorm": 2.0,
        },
    ),
    "adamw": (AdamW, {"learning_rate": 0.01, "weight_decay": 0.1}),
    "adamax": (Adamax, {"learning_rate": 0.01}),
    "nadam": (Nadam, {"learning_rate": 0.01, "weight_decay": 0.05}),
}


def _values(dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, size=s).astype(dtype) for s in SHAPES]


def _params(values):
    return [Parameter(v.copy(), name=f"w{i}") for i, v in enumerate(values)]


def _grad_sequence(steps, dtype=np.float32, seed=1):
    """Gradients with varying scale and sign (tiny to large), so clipping sometimes acts."""
    rng = np.random.default_rng(seed)
    scales = rng.choice([1e-4, 1e-2, 1.0, 10.0], size=steps)
    return [[(rng.standard_normal(s) * sc).astype(dtype) for s in SHAPES] for sc in scales]


def _run_step(make, grads_per_step, values):
    params = _params(values)
    opt = make(params)
    for grads in grads_per_step:
        for p, g in zip(params, grads):
            p.grad = None if g is None else g.copy()
        opt.step()
    return params, opt


def _assert_same_state(a: Optimizer, b: Optimizer):
    assert a.iterations == b.iterations
    assert len(a.state) == len(b.state)
    for sa, sb in zip(a.state, b.state):
        assert sa.keys() == sb.keys()
        for key in sa:
            np.testing.assert_array_equal(sa[key], sb[key], err_msg=key)
            assert np.asarray(sa[key]).dtype == np.asarray(sb[key]).dtype, key


# ------------------------------------------------------------------------------ apply == step
@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("how", ["apply_gradients", "apply", "apply-default-variables"])
def test_apply_gives_bit_identical_parameters_and_state_to_step(name, how):
    cls, options = CONFIGS[name]
    values, grads = _values(), _grad_sequence(8)
    by_step, opt_step = _run_step(lambda p: cls(p, **options), grads, values)

    params = _params(values)
    opt = cls(params, **options) if how == "apply-default-variables" else cls(**options)
    for g in grads:
        if how == "apply_gradients":
            opt.apply_gradients(zip(g, params))
        elif how == "apply":
            opt.apply(g, params)
        else:
            opt.apply(g)
    for a, b in zip(params, by_step):
        assert a.data.dtype == np.float32
        np.testing.assert_array_equal(a.data, b.data)
    _assert_same_state(opt, opt_step)
    assert not np.array_equal(params[0].data, values[0])  # the run did move the parameters


def test_apply_neither_reads_nor_writes_grad():
    values = _values()
    params = _params(values)
    stale = [np.full(p.shape, 1e6, np.float32) for p in params]
    for p, s in zip(params, stale):
        p.grad = s
    grads = _grad_sequence(3)
    opt = Adam(learning_rate=0.01)
    for g in grads:
        opt.apply_gradients(zip([ember.tensor(x) for x in g], params))  # Tensors accepted too
    for p, s in zip(params, stale):
        assert p.grad is s and np.all(s == 1e6)
    reference, _ = _run_step(lambda p: Adam(p, learning_rate=0.01), grads, values)
    for a, b in zip(params, reference):
        np.testing.assert_array_equal(a.data, b.data)


def test_apply_leaves_the_given_gradient_arrays_untouched_even_when_clipping():
    p = Parameter(np.ones(3, np.float32), name="w")
    g = np.array([3.0, -4.0, 12.0], np.float32)
    Adam(learning_rate=0.1, clipvalue=1.0, clipnorm=0.5).apply([g], [p])
    np.testing.assert_array_equal(g, [3.0, -4.0, 12.0])


# ------------------------------------------------------------------------------ None gradients
def test_none_gradient_keeps_the_variable_and_its_state_while_the_others_advance():
    values = _values()
    params = _params(values)
    opt = Adam(learning_rate=0.01)
    grads = _grad_sequence(4)
    opt.apply_gradients(zip(grads[0], params))
    before_value = params[1].data.copy()
    before_state = {k: np.array(v, copy=True) for k, v in opt.state[1].items()}
    opt.apply_gradients(zip([grads[1][0], None, grads[1][2]], params))
    np.testing.assert_array_equal(params[1].data, before_value)
    assert opt.state[1].keys() == before_state.keys()
    for key, value in before_state.items():
        np.testing.assert_array_equal(opt.state[1][key], value)
    assert opt.state[1]["step"] == 1 and opt.state[0]["step"] == 2 and opt.iterations == 2

    # equals step() with p.grad = None for that parameter
    steps = [grads[0], [grads[1][0], None, grads[1][2]]]
    reference, ref_opt = _run_step(lambda p: Adam(p, learning_rate=0.01), steps, values)
    for a, b in zip(params, reference):
        np.testing.assert_array_equal(a.data, b.data)
    _assert_same_state(opt, ref_opt)


def test_a_variable_seen_only_with_none_is_registered_with_empty_state_and_not_changed():
    a, b = _params(_values()[:2])
    b_before = b.data.copy()
    opt = SGD(learning_rate=0.1, weight_decay=0.5)
    opt.apply([np.ones(a.shape, np.float32), None], [a, b])
    assert opt.params == [a, b] and opt.state[1] == {} and opt.iterations == 1
    np.testing.assert_array_equal(b.data, b_before)  # not even weight decay


def test_every_gradient_none_still_counts_the_step_like_step():
    p = _params(_values())[0]
    opt = Adam(learning_rate=0.01)
    opt.apply([None], [p])
    assert opt.iterations == 1 and opt.state == [{}]


# ------------------------------------------------------------------------------ lazy building
@pytest.mark.parametrize("make", [lambda: Adam(learning_rate=1e-3), lambda: Adam(1e-3)])
def test_optimizer_without_params_learns_its_variables_at_the_first_apply(make):
    values, grads = _values(), _grad_sequence(5)
    params = _params(values)
    opt = make()
    assert opt.params == [] and opt.iterations == 0
    opt.apply_gradients(zip(grads[0], params))
    assert opt.params == params and len(opt.state) == 3 and opt.iterations == 1
    for g in grads[1:]:
        opt.apply(g)  # from now on the variables default to the learned ones
    reference, ref_opt = _run_step(lambda p: Adam(p, learning_rate=1e-3), grads, values)
    for a, b in zip(params, reference):
        np.testing.assert_array_equal(a.data, b.data)
    _assert_same_state(opt, ref_opt)


def test_variable_added_at_a_later_call_gets_fresh_state_others_keep_theirs():
    values = _values()
    params = _params(values)
    w, late = params[0], params[1]
    grads = _grad_sequence(5)
    opt = Adam(learning_rate=0.01)
    for g in grads[:3]:
        opt.apply([g[0]], [w])
    m_before = opt.state[0]["m"].copy()
    opt.apply_gradients([(grads[3][0], w), (grads[3][1], late)])
    assert opt.params == [w, late] and opt.iterations == 4
    assert opt.state[0]["step"] == 4 and opt.state[1]["step"] == 1
    assert not np.array_equal(opt.state[0]["m"], m_before)

    # w: exactly a 4-step run on w alone; late: exactly a fresh Adam's first step
    w_alone, _ = _run_step(lambda p: Adam(p[:1], learning_rate=0.01), grads[:4], values)
    np.testing.assert_array_equal(w.data, w_alone[0].data)
    fresh = Parameter(values[1].copy())
    Adam([fresh], learning_rate=0.01).apply([grads[3][1]])
    np.testing.assert_array_equal(late.data, fresh.data)
    np.testing.assert_allclose(late.data, values[1] - 0.01 * np.sign(grads[3][1]), atol=2e-6)


def test_trainable_set_changing_between_steps_keeps_working_and_keeps_state():
    """Freeze a layer after a first fit (its weights drop out of trainable_weights), then
    unfreeze it: the optimizer keeps its state across the change."""
    values = _values()
    a, b, c = _params(values)
    grads = _grad_sequence(4)
    opt = RMSprop(learning_rate=0.01, momentum=0.9)
    opt.apply(grads[0], [a, b, c])
    a_after_first = a.data.copy()
    a_state = {k: np.array(v, copy=True) for k, v in opt.state[0].items()}
    opt.apply(grads[1][1:], [b, c])  # a frozen: not passed
    a.trainable = False
    opt.apply(grads[2], [a, b, c])  # passed but not trainable: skipped as well
    np.testing.assert_array_equal(a.data, a_after_first)
    for key, value in a_state.items():
        np.testing.assert_array_equal(opt.state[0][key], value)
    a.trainable = True
    opt.apply(grads[3], [a, b, c])
    assert opt.state[0]["step"] == 2 and opt.state[1]["step"] == 4 and opt.iterations == 4

    # the same run through step(): None for a while it is out of the trainable set
    steps = [grads[0], [None, *grads[1][1:]], [None, *grads[2][1:]], grads[3]]
    reference, ref_opt = _run_step(
        lambda p: RMSprop(p, learning_rate=0.01, momentum=0.9), steps, values
    )
    for x, y in zip([a, b, c], reference):
        np.testing.assert_array_equal(x.data, y.data)
    _assert_same_state(opt, ref_opt)


@pytest.mark.parametrize("cls", [SGD, Adam, Nadam], ids=lambda c: c.__name__)
def test_frozen_variable_is_skipped_by_apply_no_update_no_decay_no_state(cls):
    frozen = Parameter(np.ones(3, np.float32), trainable=False)
    live = Parameter(np.ones(3, np.float32))
    opt = cls(learning_rate=0.1, weight_decay=0.5)
    for _ in range(3):
        opt.apply([np.full(3, 2.0, np.float32)] * 2, [frozen, live])
    np.testing.assert_array_equal(frozen.data, np.ones(3))
    assert opt.state[0] == {} and np.all(live.data < 1)


def test_state_dict_round_trip_after_lazy_build_resumes_bit_exact():
    values, grads = _values(), _grad_sequence(6)
    params = _params(values)
    opt = Nadam(learning_rate=0.01)
    for g in grads[:3]:
        opt.apply_gradients(zip(g, params))
    saved = opt.state_dict()
    resumed_params = [Parameter(p.data.copy()) for p in params]
    resumed = Nadam(resumed_params, learning_rate=0.01)
    resumed.load_state_dict(saved)
    for g in grads[3:]:
        opt.apply(g)
        resumed.apply(g)
    for a, b in zip(params, resumed_params):
        np.testing.assert_array_equal(a.data, b.data)


# ------------------------------------------------------------------------------ in-place marking
class _Versioned(Tensor):
    """A tensor that counts in-place modifications (what Tensor._bump_version will track)."""

    def __init__(self, data):
        super().__init__(data, requires_grad=True)
        self.bumps = 0

    def _bump_version(self):
        self.bumps += 1


def test_each_updated_tensor_is_marked_modified_once_per_step_skipped_ones_not():
    a, b = _Versioned(np.ones(2, np.float32)), _Versioned(np.ones(2, np.float32))
    opt = Adam(learning_rate=0.1, weight_decay=0.1)
    opt.apply([np.ones(2, np.float32), None], [a, b])
    assert (a.bumps, b.bumps) == (1, 0)
    a.grad, b.grad = np.ones(2, np.float32), np.ones(2, np.float32)
    opt.step()
    assert (a.bumps, b.bumps) == (2, 1)


def test_a_plain_tensor_without_version_counter_support_still_updates():
    p = ember.tensor(np.ones(2, np.float32), requires_grad=True)
    SGD(learning_rate=0.5).apply([np.ones(2, np.float32)], [p])
    np.testing.assert_array_equal(p.data, [0.5, 0.5])


# ------------------------------------------------------------------------------ dtypes
def test_float64_gradient_for_float32_variable_keeps_float32_in_place():
    p = Parameter(np.linspace(-1, 1, 4, dtype=np.float32))
    buffer = p.data
    g64 = np.array([0.1, -0.2, 0.3, -0.4])  # float64
    opt = SGD(learning_rate=0.1, momentum=0.9)
    opt.apply([g64], [p])
    opt.apply([g64], [p])
    assert p.data is buffer and p.data.dtype == np.float32
    assert opt.state[0]["momentum_buffer"].dtype == np.float32
    # the same as float32 gradients in .grad (the cast .grad itself would have done)
    q = Parameter(np.linspace(-1, 1, 4, dtype=np.float32))
    ref = SGD([q], learning_rate=0.1, momentum=0.9)
    for _ in range(2):
        q.grad = g64.astype(np.float32)
        ref.step()
    np.testing.assert_array_equal(p.data, q.data)


# ------------------------------------------------------------------------------ bad calls
def test_gradient_shape_mismatch_names_the_variable_and_both_shapes_and_changes_nothing():
    a = Parameter(np.ones((2, 3), np.float32), name="dense/kernel")
    b = Parameter(np.ones(3, np.float32), name="dense/bias")
    opt = Adam(learning_rate=0.1)
    with pytest.raises(ValueError) as info:
        opt.apply_gradients([(np.ones(3, np.float32), b), (np.ones((3, 2), np.float32), a)])
    message = str(info.value)
    assert "Adam.apply_gradients" in message and "'dense/kernel'" in message
    assert "(3, 2)" in message and "(2, 3)" in message
    # checked before anything happens: nothing registered, counted or updated
    assert opt.params == [] and opt.iterations == 0
    np.testing.assert_array_equal(b.data, np.ones(3))
    with pytest.raises(ValueError, match=r"Adam.apply: the gradient of variable 0 has shape"):
        opt.apply([np.ones(2)], [ember.tensor([1.0], requires_grad=True)])  # unnamed: by index


def test_non_tensor_variable_is_a_type_error():
    with pytest.raises(TypeError, match=r"SGD.apply: variable 1 is a ndarray, expected an ember"):
        SGD(learning_rate=0.1).apply([np.ones(2), np.ones(2)], [Parameter(np.ones(2)), np.ones(2)])
    with pytest.raises(TypeError, match="apply_gradients: variable 0 is a list"):
        SGD(learning_rate=0.1).apply_gradients([(np.ones(2), [1.0, 2.0])])


def test_other_bad_calls_explain_what_was_expected():
    p = Parameter(np.ones(2, np.float32), name="w")
    opt = SGD(learning_rate=0.1)
    with pytest.raises(ValueError, match="got 1 gradients for 2 variables"):
        opt.apply([np.ones(2)], [p, Parameter(np.ones(2))])
    with pytest.raises(TypeError, match=r"item 0 is ndarray, expected a \(gradient, variable\)"):
        opt.apply_gradients([np.ones(2)])
    with pytest.raises(ValueError, match=r"variable 1 \('w'\) is given twice"):
        opt.apply([np.ones(2), np.ones(2)], [p, p])
    with pytest.raises(RuntimeError, match="knows none yet"):
        opt.apply([])
    with pytest.raises(RuntimeError, match="knows none yet"):
        opt.apply_gradients([])
    with pytest.raises(TypeError, match="grads must be a list with one gradient per variable"):
        opt.apply(np.ones(2), [p])  # one array, not a list of them
    with pytest.raises(TypeError, match="variables must be a list of Tensors, got one Tensor"):
        opt.apply([np.ones(2)], p)
    with pytest.raises(TypeError, match="has dtype <U1, expected a numeric array"):
        opt.apply([np.array(["a", "b"])], [p])
    with pytest.raises(ValueError, match="does not require grad"):
        opt.apply([np.ones(2)], [ember.tensor([1.0, 2.0])])
    assert opt.params == [] and opt.iterations == 0


# ------------------------------------------------------------------------------ aliases
ALL_CLASSES = [SGD, RMSprop, Adagrad, Adadelta, Adam, AdamW, Adamax, Nadam]


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_lr_alias_equals_learning_rate(cls):
    values, grads = _values(), _grad_sequence(4)
    a, opt_a = _run_step(lambda p: cls(p, lr=0.003), grads, values)
    b, opt_b = _run_step(lambda p: cls(p, learning_rate=0.003), grads, values)
    assert opt_a.get_config() == opt_b.get_config()
    assert opt_a.get_config()["learning_rate"] == 0.003 and opt_a.lr == 0.003
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.data, y.data)
    assert cls(lr=0.25).learning_rate == 0.25  # without params too


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_lr_and_learning_rate_together_is_a_type_error(cls):
    params = _params(_values())
    with pytest.raises(TypeError, match=f"{cls.__name__}: got both lr= and learning_rate=.*only"):
        cls(params, lr=0.1, learning_rate=0.1)
    with pytest.raises(TypeError, match="got both lr= and learning_rate="):
        cls(params, 0.1, lr=0.1)  # learning_rate given positionally
    with pytest.raises(TypeError, match="learning rate was given twice.*pass only one"):
        cls(0.1, lr=0.2)  # Keras' positional rate and lr=
    with pytest.raises(TypeError, match="learning rate was given twice"):
        cls(0.1, learning_rate=0.2)


def test_eps_and_betas_aliases():
    assert Adam(eps=1e-8).get_config() == Adam(epsilon=1e-8).get_config()
    for cls in (Adam, AdamW, Adamax, Nadam):
        config = cls(betas=(0.8, 0.99), eps=1e-6).get_config()
        assert (config["beta_1"], config["beta_2"], config["epsilon"]) == (0.8, 0.99, 1e-6)
    for cls in (RMSprop, Adagrad, Adadelta):
        assert cls(eps=1e-3).epsilon == 1e-3
    with pytest.raises(TypeError, match=r"Adam: got both eps= and epsilon= \(.*\); pass only one"):
        Adam(eps=1e-8, epsilon=1e-8)
    with pytest.raises(TypeError, match="Nadam: got both betas= and beta_2="):
        Nadam(betas=(0.9, 0.99), beta_2=0.99)
    with pytest.raises(TypeError, match=r"betas must be a pair \(beta_1, beta_2\), got 0.9"):
        Adam(betas=0.9)
    with pytest.raises(TypeError, match="betas must be a pair"):
        AdamW(betas=(0.9, 0.99, 0.999))
    with pytest.raises(ValueError, match="Adamax: beta_2 must be in"):
        Adamax(betas=(0.9, 1.5))  # validated like beta_2=
    with pytest.raises(TypeError, match="SGD: unexpected argument 'eps'"):
        SGD(eps=1e-8)  # SGD has no epsilon
    with pytest.raises(TypeError, match="RMSprop: unexpected argument 'betas'"):
        RMSprop(betas=(0.9, 0.99))


def test_aliases_work_in_user_subclasses():
    class SignSGD(Optimizer):
        def _update(self, param, grad, state, lr):
            param.data -= lr * np.sign(grad)

    class Scaled(SGD):
        def __init__(self, params=None, learning_rate=0.01, scale=2.0, **kwargs):
            super().__init__(params, learning_rate, **kwargs)
            self.scale = scale

    assert SignSGD(lr=0.5).learning_rate == 0.5
    assert Scaled(lr=0.5, scale=3.0).learning_rate == 0.5
    assert Scaled(0.25).learning_rate == 0.25 and Scaled(0.25).params == []
    with pytest.raises(TypeError, match="Scaled: got both lr= and learning_rate="):
        Scaled(lr=0.5, learning_rate=0.5)


def test_keras_positional_rate_also_as_params_keyword():
    assert SGD(params=0.1).learning_rate == 0.1 and SGD(params=0.1).params == []
    sched = schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    assert Adam(sched).schedule is sched
    with pytest.raises(TypeError, match="SGD: the learning rate was given twice"):
        SGD(0.1, 0.9)  # Keras' SGD(0.1, 0.9) means momentum=0.9: not silently dropped
    with pytest.raises(TypeError, match="learning rate was given twice"):
        SGD(params=0.1, lr=0.2)


def test_lr_attribute_alias_still_reads_and_writes():
    opt = Adam(lr=0.01)
    opt.lr = 0.5
    assert opt.learning_rate == 0.5 and opt.lr == 0.5


# ------------------------------------------------------------------------------ bad rates / decay
BAD_NONFINITE = [float("nan"), float("inf"), -float("inf"), np.float32("inf")]


@pytest.mark.parametrize("value", BAD_NONFINITE, ids=repr)
@pytest.mark.parametrize("cls", [SGD, Adam, AdamW, RMSprop], ids=lambda c: c.__name__)
def test_bad_input_nonfinite_learning_rate(cls, value):
    name = cls.__name__
    with pytest.raises(ValueError, match=rf"{name}: learning_rate must be a finite number") as i:
        cls(learning_rate=value)
    assert str(float(value)) in str(i.value)
    with pytest.raises(ValueError, match=rf"{name}: learning_rate must be a finite"):
        cls(lr=value)
    with pytest.raises(ValueError, match=rf"{name}: learning_rate must be a finite"):
        cls(value)  # Keras' positional rate
    opt = cls(learning_rate=0.1)
    with pytest.raises(ValueError, match=rf"{name}: learning_rate must be a finite"):
        opt.learning_rate = value
    with pytest.raises(ValueError, match=rf"{name}: learning_rate must be a finite"):
        opt.lr = value
    assert opt.learning_rate == 0.1  # the old rate is kept

    p = Parameter(np.ones(2, np.float32))
    sched = cls(learning_rate=lambda step: 0.1 if step < 1 else value)
    sched.apply([np.ones(2, np.float32)], [p])
    before = p.data.copy()
    with pytest.raises(ValueError, match=rf"{name}: the learning-rate schedule") as info:
        sched.apply([np.ones(2, np.float32)], [p])
    assert "learning_rate" in str(info.value) and "at step 1" in str(info.value)
    np.testing.assert_array_equal(p.data, before)
    assert sched.iterations == 1


@pytest.mark.parametrize("value", [-0.1, -1, np.float32(-1e-8)], ids=repr)
@pytest.mark.parametrize("cls", [SGD, Adam, Nadam], ids=lambda c: c.__name__)
def test_bad_input_negative_learning_rate(cls, value):
    name = cls.__name__
    with pytest.raises(ValueError, match=rf"{name}: learning_rate must be in \[0.0, inf\], got"):
        cls(learning_rate=value)
    with pytest.raises(ValueError, match=rf"{name}: learning_rate"):
        cls(lr=value)
    opt = cls(learning_rate=0.1)
    with pytest.raises(ValueError, match=rf"{name}: learning_rate") as info:
        opt.learning_rate = value
    assert str(float(value)) in str(info.value)
    assert opt.learning_rate == 0.1
    with pytest.raises(ValueError, match=rf"{name}: the learning-rate schedule .* gave -0.5"):
        cls(learning_rate=lambda step: -0.5).apply([np.ones(2)], [Parameter(np.ones(2))])
    assert cls(learning_rate=0).learning_rate == 0.0  # zero is allowed


@pytest.mark.parametrize("value", BAD_NONFINITE, ids=repr)
@pytest.mark.parametrize("cls", [SGD, Adam, AdamW, Adagrad], ids=lambda c: c.__name__)
def test_bad_input_nonfinite_weight_decay(cls, value):
    name = cls.__name__
    with pytest.raises(ValueError, match=rf"{name}: weight_decay must be a finite number") as i:
        cls(weight_decay=value)
    assert str(float(value)) in str(i.value)
    opt = cls(weight_decay=0.01)
    with pytest.raises(ValueError, match=rf"{name}: weight_decay must be a finite number"):
        opt.weight_decay = value
    assert opt.weight_decay == 0.01  # the old value is kept


@pytest.mark.parametrize("value", [-0.01, -1, np.float64(-1e-12)], ids=repr)
@pytest.mark.parametrize("cls", [SGD, Adam, AdamW, RMSprop], ids=lambda c: c.__name__)
def test_bad_input_negative_weight_decay(cls, value):
    name = cls.__name__
    with pytest.raises(ValueError, match=rf"{name}: weight_decay must be in \[0.0, inf\]") as i:
        cls(weight_decay=value)
    assert str(float(value)) in str(i.value)
    opt = cls(weight_decay=0.01)
    with pytest.raises(ValueError, match=rf"{name}: weight_decay"):
        opt.weight_decay = value
    assert opt.weight_decay == 0.01
    opt.weight_decay = None  # None switches decay off
    opt.weight_decay = 0.0
    assert opt.get_config()["weight_decay"] == 0.0


def test_assigned_weight_decay_is_used_by_the_next_step():
    p = Parameter(np.ones(2, np.float32))
    opt = SGD(learning_rate=0.5)
    opt.weight_decay = 0.5
    opt.apply([np.zeros(2, np.float32)], [p])
    np.testing.assert_array_equal(p.data, [0.75, 0.75])  # p·(1 − lr·wd)


def test_other_hyper_parameters_reject_infinity_too():
    for kwargs in ({"epsilon": math.inf}, {"clipnorm": math.inf}, {"clipvalue": math.nan}):
        with pytest.raises(ValueError, match=f"Adam: {next(iter(kwargs))} must be a finite"):
            Adam(**kwargs)


# ------------------------------------------------------------------------------ moments helper
@pytest.mark.parametrize("cls", [Adam, AdamW, Nadam, Adamax, RMSprop], ids=lambda c: c.__name__)
def test_moment_buffers_after_two_steps_hand_computed(cls):
    """The shared moment code: m = β₁m + (1−β₁)g, v = β₂v + (1−β₂)g² (RMSprop: ρ, g²)."""
    p = Parameter(np.array([1.0, -2.0]))  # float64: exact enough to compare at 1e-15
    g1, g2 = np.array([0.5, -3.0]), np.array([2.0, 1.0])
    opt = cls(learning_rate=0.01, betas=(0.8, 0.9)) if cls is not RMSprop else cls(rho=0.7)
    opt.apply([g1], [p])
    opt.apply([g2], [p])
    state = opt.state[0]
    assert state["step"] == 2
    if cls is RMSprop:
        expected = 0.7 * (0.3 * g1**2) + 0.3 * g2**2
        np.testing.assert_allclose(state["square_avg"], expected, rtol=1e-15)
        return
    np.testing.assert_allclose(state["m"], 0.8 * (0.2 * g1) + 0.2 * g2, rtol=1e-15)
    if cls is Adamax:
        eps = opt.epsilon
        u = np.maximum(0.9 * (np.abs(g1) + eps), np.abs(g2) + eps)
        np.testing.assert_allclose(state["u"], u, rtol=1e-15)
    else:
        np.testing.assert_allclose(state["v"], 0.9 * (0.1 * g1**2) + 0.1 * g2**2, rtol=1e-15)


# ------------------------------------------------------------------------------ PyTorch parity
def _torch_trajectory(torch, make, values, grads):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # torch's scalar state (step) in float64, as ours
    try:
        params = [torch.tensor(v, requires_grad=True) for v in values]
        opt = make(params)
        out = []
        for g in grads:
            for p, gi in zip(params, g):
                p.grad = torch.tensor(gi)
            opt.step()
            out.append([p.detach().numpy().copy() for p in params])
    finally:
        torch.set_default_dtype(previous)
    return out


TORCH_CONFIGS = [
    pytest.param(
        lambda: Adam(lr=0.02, betas=(0.8, 0.99), eps=1e-8),
        lambda t, p: t.optim.Adam(p, lr=0.02, betas=(0.8, 0.99), eps=1e-8),
        id="adam",
    ),
    pytest.param(
        lambda: AdamW(lr=0.01, betas=(0.85, 0.995), eps=1e-7, weight_decay=0.1),
        lambda t, p: t.optim.AdamW(p, lr=0.01, betas=(0.85, 0.995), eps=1e-7, weight_decay=0.1),
        id="adamw",
    ),
    pytest.param(
        lambda: Nadam(lr=0.01, betas=(0.9, 0.99), eps=1e-7),
        lambda t, p: t.optim.NAdam(p, lr=0.01, betas=(0.9, 0.99), eps=1e-7),
        id="nadam",
    ),
]


@pytest.mark.parametrize("make_ember, make_torch", TORCH_CONFIGS)
def test_apply_with_pytorch_spellings_matches_torch_optim_over_50_steps(
    make_ember, make_torch, torch
):
    values = _values(np.float64)
    grads = _grad_sequence(50, np.float64, seed=11)
    params = _params(values)
    opt = make_ember()
    ours = []
    for g in grads:
        opt.apply_gradients(zip(g, params))
        ours.append([p.data.copy() for p in params])
    theirs = _torch_trajectory(torch, lambda p: make_torch(torch, p), values, grads)
    moved = 0.0
    for step, (a, b) in enumerate(zip(ours, theirs)):
        for x, y in zip(a, b):
            np.testing.assert_allclose(x, y, rtol=0, atol=1e-10, err_msg=f"step {step}")
        moved = max(moved, max(float(np.abs(x - v).max()) for x, v in zip(a, values)))
    assert moved > 0.05  # the parameters really travelled
