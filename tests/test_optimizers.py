"""Optimizers: parity with ``torch.optim`` and the catalogue's optimizer cases (N11, N12, O1–O6,
B9), gradient clipping, decoupled weight decay.

Trajectory tests feed the same fixed sequence of 50 gradients to Ember and PyTorch on the same
float64 parameters through the low-level loop ``zero_grad(); loss.backward(); step()`` with
``loss = Σ p·gₜ`` (so ``∂loss/∂p = gₜ`` exactly) and require every intermediate parameter to agree
within 1e-10.

Adam's epsilon: Ember defaults to Keras' ``1e-7`` (Keras calls it "epsilon hat"); PyTorch's
default is ``1e-8``. Both add ε after the square root of the bias-corrected ``v̂``, so
``Adam(epsilon=1e-8)`` reproduces ``torch.optim.Adam()`` and the default reproduces
``torch.optim.Adam(eps=1e-7)``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import ember
from ember import optimizers
from ember.layers import Parameter
from ember.optimizers import (
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Nadam,
    RMSprop,
    schedules,
)

SHAPES = [(3, 4), (5,)]
STEPS = 50


def _initial(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, size=s) for s in SHAPES]


def _gradients(steps=STEPS, seed=1):
    """A fixed sequence of gradients with varying scale and sign (some steps tiny, some large)."""
    rng = np.random.default_rng(seed)
    scales = rng.choice([1e-4, 1e-2, 1.0, 10.0], size=steps)
    return [[rng.standard_normal(s) * scale for s in SHAPES] for scale in scales]


def _ember_params(values):
    return [ember.tensor(v.copy(), requires_grad=True) for v in values]


def _ember_step(opt, params, grads):
    opt.zero_grad()
    loss = sum((p * ember.tensor(g)).sum() for p, g in zip(params, grads))
    loss.backward()
    opt.step()


def _ember_run(make, grads, values=None):
    params = _ember_params(_initial() if values is None else values)
    opt = make(params)
    trajectory = []
    for g in grads:
        _ember_step(opt, params, g)
        trajectory.append([p.data.copy() for p in params])
    return trajectory, params, opt


def _torch_run(torch, make, grads, on_step=None, before_step=None):
    # float64 default dtype: torch keeps scalar state (NAdam's μ-product, step counts) in the
    # default dtype, and float32 scalars would cost ~1e-8 relative error in a float64 run.
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        params = [torch.tensor(v, requires_grad=True) for v in _initial()]
        opt = make(params)
        trajectory = []
        for t, g in enumerate(grads):
            if on_step is not None:
                on_step(t, opt)
            opt.zero_grad()
            loss = sum((p * torch.tensor(gi)).sum() for p, gi in zip(params, g))
            loss.backward()
            if before_step is not None:
                before_step(params)
            opt.step()
            trajectory.append([p.detach().numpy().copy() for p in params])
    finally:
        torch.set_default_dtype(previous)
    return trajectory


class _DecoupledDecay:
    """A torch optimizer preceded by Keras 3's decoupled decay ``p ← p·(1 − lr·wd)`` (torch has it
    built in only for AdamW/NAdam/RAdam): the reference for Ember's ``weight_decay=`` elsewhere."""

    def __init__(self, torch, opt, weight_decay):
        self.torch, self.opt, self.weight_decay = torch, opt, weight_decay
        self.param_groups = opt.param_groups

    def zero_grad(self):
        self.opt.zero_grad()

    def step(self):
        with self.torch.no_grad():
            for group in self.opt.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.mul_(1 - group["lr"] * self.weight_decay)
        self.opt.step()


def _assert_same_trajectory(ours, theirs, atol=1e-10):
    assert len(ours) == len(theirs)
    moved = 0.0
    for step, (a, b) in enumerate(zip(ours, theirs)):
        for pa, pb in zip(a, b):
            assert pa.dtype == np.float64
            np.testing.assert_allclose(pa, pb, rtol=0, atol=atol, err_msg=f"step {step + 1}")
    for start, end in zip(_initial(), ours[-1]):
        moved = max(moved, float(np.abs(end - start).max()))
    assert moved > 1e-2  # the optimizer really moved the parameters


CONFIGS = {
    "sgd": (lambda p: SGD(p, learning_rate=0.1), lambda t, p: t.optim.SGD(p, lr=0.1)),
    "sgd_momentum": (
        lambda p: SGD(p, learning_rate=0.05, momentum=0.9),
        lambda t, p: t.optim.SGD(p, lr=0.05, momentum=0.9),
    ),
    "sgd_nesterov": (
        lambda p: SGD(p, learning_rate=0.05, momentum=0.9, nesterov=True),
        lambda t, p: t.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
    ),
    "adam": (
        lambda p: Adam(p, learning_rate=0.01, epsilon=1e-8),
        lambda t, p: t.optim.Adam(p, lr=0.01),  # torch's default eps=1e-8
    ),
    "adam_betas": (
        lambda p: Adam(p, learning_rate=0.02, beta_1=0.8, beta_2=0.99, epsilon=1e-8),
        lambda t, p: t.optim.Adam(p, lr=0.02, betas=(0.8, 0.99), eps=1e-8),
    ),
    "adam_default_eps": (
        lambda p: Adam(p, learning_rate=0.01),  # Keras' ε = 1e-7
        lambda t, p: t.optim.Adam(p, lr=0.01, eps=1e-7),
    ),
    "sgd_dampening": (
        lambda p: SGD(p, learning_rate=0.05, momentum=0.9, dampening=0.3),
        lambda t, p: t.optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.3),
    ),
    "sgd_momentum_weight_decay": (
        lambda p: SGD(p, learning_rate=0.05, momentum=0.9, weight_decay=0.1),
        lambda t, p: _DecoupledDecay(t, t.optim.SGD(p, lr=0.05, momentum=0.9), 0.1),
    ),
    # torch's RMSprop alpha (default 0.99) is Keras' rho (default 0.9)
    "rmsprop": (
        lambda p: RMSprop(p, learning_rate=0.01, epsilon=1e-8),
        lambda t, p: t.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-8),
    ),
    "rmsprop_keras_defaults": (
        lambda p: RMSprop(p, learning_rate=0.01),
        lambda t, p: t.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-7),
    ),
    "rmsprop_momentum": (
        lambda p: RMSprop(p, learning_rate=0.005, rho=0.95, momentum=0.9, epsilon=1e-8),
        lambda t, p: t.optim.RMSprop(p, lr=0.005, alpha=0.95, momentum=0.9, eps=1e-8),
    ),
    "rmsprop_centered": (
        lambda p: RMSprop(p, learning_rate=0.01, centered=True, epsilon=1e-8),
        lambda t, p: t.optim.RMSprop(p, lr=0.01, alpha=0.9, centered=True, eps=1e-8),
    ),
    "rmsprop_centered_momentum": (
        lambda p: RMSprop(p, learning_rate=0.005, momentum=0.5, centered=True, epsilon=1e-6),
        lambda t, p: t.optim.RMSprop(p, lr=0.005, alpha=0.9, momentum=0.5, centered=True, eps=1e-6),
    ),
    "rmsprop_weight_decay": (
        lambda p: RMSprop(p, learning_rate=0.01, epsilon=1e-8, weight_decay=0.2),
        lambda t, p: _DecoupledDecay(t, t.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-8), 0.2),
    ),
    "adagrad": (
        lambda p: Adagrad(p, learning_rate=0.1),  # Keras: accumulator 0.1, ε = 1e-7
        lambda t, p: t.optim.Adagrad(p, lr=0.1, initial_accumulator_value=0.1, eps=1e-7),
    ),
    "adagrad_torch_defaults": (
        lambda p: Adagrad(p, learning_rate=0.1, initial_accumulator_value=0.0, epsilon=1e-10),
        lambda t, p: t.optim.Adagrad(p, lr=0.1),
    ),
    "adagrad_weight_decay": (
        lambda p: Adagrad(p, learning_rate=0.1, weight_decay=0.3),
        lambda t, p: _DecoupledDecay(
            t, t.optim.Adagrad(p, lr=0.1, initial_accumulator_value=0.1, eps=1e-7), 0.3
        ),
    ),
    # torch's default lr is 1.0, Keras' 0.001: pass the same lr to both
    "adadelta": (
        lambda p: Adadelta(p, learning_rate=1.0, rho=0.9, epsilon=1e-6),
        lambda t, p: t.optim.Adadelta(p, lr=1.0, rho=0.9, eps=1e-6),
    ),
    "adadelta_keras_defaults": (
        lambda p: Adadelta(p, learning_rate=20.0),
        lambda t, p: t.optim.Adadelta(p, lr=20.0, rho=0.95, eps=1e-7),
    ),
    "adadelta_weight_decay": (
        lambda p: Adadelta(p, learning_rate=1.0, rho=0.9, epsilon=1e-6, weight_decay=0.05),
        lambda t, p: _DecoupledDecay(t, t.optim.Adadelta(p, lr=1.0, rho=0.9, eps=1e-6), 0.05),
    ),
    "adam_amsgrad": (
        lambda p: Adam(p, learning_rate=0.01, epsilon=1e-8, amsgrad=True),
        lambda t, p: t.optim.Adam(p, lr=0.01, amsgrad=True),
    ),
    # Ember's (Keras 3's) weight_decay is decoupled: Adam(weight_decay) is torch's AdamW
    "adam_weight_decay": (
        lambda p: Adam(p, learning_rate=0.01, epsilon=1e-8, weight_decay=0.1),
        lambda t, p: t.optim.AdamW(p, lr=0.01, weight_decay=0.1),
    ),
    "adamw": (
        lambda p: AdamW(p, learning_rate=0.01, weight_decay=0.05, epsilon=1e-8),
        lambda t, p: t.optim.AdamW(p, lr=0.01, weight_decay=0.05),
    ),
    "adamw_keras_defaults": (
        lambda p: AdamW(p, learning_rate=0.01),  # weight_decay 0.004, ε = 1e-7
        lambda t, p: t.optim.AdamW(p, lr=0.01, weight_decay=0.004, eps=1e-7),
    ),
    "adamw_amsgrad": (
        lambda p: AdamW(p, learning_rate=0.01, weight_decay=0.1, amsgrad=True, beta_2=0.99),
        lambda t, p: t.optim.AdamW(
            p, lr=0.01, weight_decay=0.1, amsgrad=True, betas=(0.9, 0.99), eps=1e-7
        ),
    ),
    "adamax": (
        lambda p: Adamax(p, learning_rate=0.01, epsilon=1e-8),
        lambda t, p: t.optim.Adamax(p, lr=0.01),
    ),
    "adamax_keras_defaults": (
        lambda p: Adamax(p, learning_rate=0.01, beta_1=0.8),
        lambda t, p: t.optim.Adamax(p, lr=0.01, betas=(0.8, 0.999), eps=1e-7),
    ),
    "adamax_weight_decay": (
        lambda p: Adamax(p, learning_rate=0.01, weight_decay=0.1),
        lambda t, p: _DecoupledDecay(t, t.optim.Adamax(p, lr=0.01, eps=1e-7), 0.1),
    ),
    "nadam": (
        lambda p: Nadam(p, learning_rate=0.01, epsilon=1e-8),
        lambda t, p: t.optim.NAdam(p, lr=0.01),  # momentum_decay 4e-3
    ),
    "nadam_keras_defaults": (
        lambda p: Nadam(p, learning_rate=0.01, beta_2=0.99),
        lambda t, p: t.optim.NAdam(p, lr=0.01, betas=(0.9, 0.99), eps=1e-7),
    ),
    "nadam_momentum_decay": (
        lambda p: Nadam(p, learning_rate=0.01, momentum_decay=0.1),
        lambda t, p: t.optim.NAdam(p, lr=0.01, momentum_decay=0.1, eps=1e-7),
    ),
    "nadam_weight_decay": (
        lambda p: Nadam(p, learning_rate=0.01, weight_decay=0.1),
        lambda t, p: t.optim.NAdam(
            p, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, eps=1e-7
        ),
    ),
}


# ------------------------------------------------------------------------------ O3 parity
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_O3_matches_torch_optim_over_50_steps(name, torch):
    make_ember, make_torch = CONFIGS[name]
    grads = _gradients()
    ours, _, _ = _ember_run(make_ember, grads)
    theirs = _torch_run(torch, lambda p: make_torch(torch, p), grads)
    _assert_same_trajectory(ours, theirs)


def test_adam_default_epsilon_is_keras_1e_minus_7(torch):
    """Documented: ε defaults to Keras' 1e-7, so the default differs from torch's default (1e-8)
    measurably when |g| is small, and matches torch with eps=1e-7."""
    assert Adam().epsilon == 1e-7
    assert Adam().get_config() == {
        "learning_rate": 0.001,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-7,
    }
    grads = [[np.full(s, 1e-6) for s in SHAPES]]
    ours, _, _ = _ember_run(lambda p: Adam(p, learning_rate=1.0), grads)
    torch_default = _torch_run(torch, lambda p: torch.optim.Adam(p, lr=1.0), grads)
    # update = lr·g/(|g|+ε): 1e-6/(1e-6+1e-7) = 0.90909 vs 1e-6/(1e-6+1e-8) = 0.990099
    step = _initial()[1] - ours[0][1]
    np.testing.assert_allclose(step, 1e-6 / (1e-6 + 1e-7), rtol=1e-9)
    torch_step = _initial()[1] - torch_default[0][1]
    np.testing.assert_allclose(torch_step, 1e-6 / (1e-6 + 1e-8), rtol=1e-9)


def test_sgd_defaults_match_keras():
    assert SGD().get_config() == {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False}
    assert type(optimizers.get("sgd")) is SGD and type(optimizers.get("Adam")) is Adam


def test_sgd_hand_computed_momentum_steps():
    """PyTorch's momentum: v₁ = g₁, vₜ = μvₜ₋₁ + gₜ, p ← p − lr·v (nesterov: p ← p − lr(g + μv))."""
    for nesterov, expected in [
        (False, [1.0 - 0.1, 0.9 - 0.1 * 1.5]),
        (True, [1.0 - 0.15, 0.85 - 0.1 * 1.75]),
    ]:
        p = ember.tensor([1.0], dtype="float64", requires_grad=True)
        opt = SGD([p], learning_rate=0.1, momentum=0.5, nesterov=nesterov)
        got = []
        for _ in range(2):
            opt.zero_grad()
            (p * 1.0).sum().backward()
            opt.step()
            got.append(p.item())
        assert got == pytest.approx(expected, abs=1e-15)


# ------------------------------------------------------------------------------ construction
def test_constructing_with_params_or_keras_positional_learning_rate_is_equivalent():
    grads = _gradients(steps=10)
    manual, _, _ = _ember_run(lambda p: SGD(p, learning_rate=0.1, momentum=0.9), grads)

    keras_style = SGD(0.1, momentum=0.9)  # Keras: the first positional argument is the lr
    assert keras_style.learning_rate == 0.1 and keras_style.params == []
    with pytest.raises(RuntimeError, match="has no parameters"):
        keras_style.step()
    params = _ember_params(_initial())
    keras_style.add_params(params)
    keras_style.add_params(params[:1])  # adding a parameter twice keeps it once
    assert len(keras_style.params) == 2
    for g in grads:
        _ember_step(keras_style, params, g)
    for a, b in zip(manual[-1], params):
        np.testing.assert_array_equal(a, b.data)

    positional = SGD(_ember_params(_initial()), 0.1, 0.9)  # PyTorch-style positional
    assert (positional.learning_rate, positional.momentum) == (0.1, 0.9)
    assert Adam(0.005).learning_rate == 0.005 and Adam(0.005).params == []


def test_compile_with_keras_positional_optimizer_trains_the_model_parameters():
    ember.manual_seed(0)
    model = ember.models.Sequential([ember.layers.Input(shape=(2,)), ember.layers.Dense(1)])
    model.compile(optimizer=SGD(0.1), loss="mse")
    before = [w.copy() for w in model.get_weights()]
    x = np.array([[1.0, 2.0], [3.0, -1.0]], np.float32)
    y = np.array([[1.0], [0.0]], np.float32)
    pred = x @ before[0] + before[1]
    model.train_step((x, y))
    # mse gradient: dL/dŷ = 2(ŷ - y)/N
    upstream = 2 * (pred - y) / 2
    np.testing.assert_allclose(model.get_weights()[0], before[0] - 0.1 * x.T @ upstream, rtol=1e-5)
    np.testing.assert_allclose(model.get_weights()[1], before[1] - 0.1 * upstream.sum(0), rtol=1e-5)
    assert {id(p) for p in model.optimizer.params} == {id(p) for p in model.parameters()}


# ------------------------------------------------------------------------------ catalogue
def test_N11_adam_zero_gradient_for_1000_steps_leaves_params_unchanged():
    for opt_cls in (Adam, lambda p: SGD(p, learning_rate=0.1, momentum=0.9)):
        params = _ember_params(_initial())
        opt = opt_cls(params)
        zeros = [np.zeros(s) for s in SHAPES]
        with np.errstate(all="raise"):
            for _ in range(1000):
                _ember_step(opt, params, zeros)
        for p, start in zip(params, _initial()):
            np.testing.assert_array_equal(p.data, start)  # bit-exact, no NaN


def test_N11_adam_tiny_gradient_gives_finite_update():
    g = 1e-12
    for eps in (1e-7, 1e-8):
        p = ember.tensor([0.5], dtype="float64", requires_grad=True)
        opt = Adam([p], learning_rate=0.1, epsilon=eps)
        with np.errstate(all="raise"):
            for step in range(1, 101):
                opt.zero_grad()
                (p * g).sum().backward()
                opt.step()
                if step == 1:
                    # m̂ = g, v̂ = g² → update = lr·g/(g + ε)
                    assert 0.5 - p.item() == pytest.approx(0.1 * g / (g + eps), rel=1e-6)
        assert np.isfinite(p.item()) and 0.5 - 100 * 0.1 * g / (g + eps) * 1.01 < p.item() < 0.5


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_O2_adam_first_step_moves_by_learning_rate(sign):
    """g = ±1e-3, lr = 1e-3: m̂ = g, v̂ = g², update = lr·|g|/(|g|+ε) ≈ 1e-3 (not 1e-4 or 3e-3)."""
    p = ember.tensor([2.0], dtype="float64", requires_grad=True)
    opt = Adam([p], learning_rate=1e-3)
    (p * (sign * 1e-3)).sum().backward()
    opt.step()
    update = 2.0 - p.item()
    assert update == pytest.approx(sign * 1e-3, rel=2e-4)
    assert update == pytest.approx(sign * 1e-3 * 1e-3 / (1e-3 + 1e-7), rel=1e-12)
    state = opt.state[0]
    assert state["step"] == 1
    np.testing.assert_allclose(state["m"], [sign * 1e-4], rtol=1e-12)  # (1-β₁)g, uncorrected
    np.testing.assert_allclose(state["v"], [1e-9], rtol=1e-12)  # (1-β₂)g²


@pytest.mark.parametrize(
    "make",
    [
        lambda p: Adam(p, learning_rate=0.01),
        lambda p: SGD(p, learning_rate=0.1, momentum=0.9),
    ],
    ids=["adam", "sgd_momentum"],
)
def test_O5_parameter_without_grad_is_not_updated_and_its_state_does_not_advance(make):
    used, unused = _ember_params(_initial())
    opt = make([used, unused])
    start = unused.data.copy()
    for _ in range(5):
        opt.zero_grad()
        (used * 2.0).sum().backward()
        opt.step()
        assert unused.grad is None
    np.testing.assert_array_equal(unused.data, start)
    assert opt.state[1] == {}  # no step count, no moments, no momentum buffer
    assert opt.state[0] != {} and opt.iterations == 5

    # when it finally gets a gradient, its first update is a *first* step (fresh state)
    reference = _ember_params([start])[0]
    ref_opt = make([reference])
    for o, p in ((opt, unused), (ref_opt, reference)):
        o.zero_grad()
        (p * 3.0).sum().backward()
        o.step()
    np.testing.assert_array_equal(unused.data, reference.data)
    if "step" in opt.state[1]:
        assert opt.state[1]["step"] == 1 and opt.state[0]["step"] == 5


def test_O5_frozen_parameter_is_not_updated():
    frozen = Parameter(np.ones(3), trainable=False)
    live = Parameter(np.ones(3))
    opt = Adam([frozen, live], learning_rate=0.1)
    ((frozen * live).sum() * 2.0).backward()
    assert frozen.grad is not None  # gradients still flow through it
    opt.step()
    np.testing.assert_array_equal(frozen.data, np.ones(3))
    assert opt.state[0] == {} and np.all(live.data < 1)


@pytest.mark.parametrize("attribute", ["learning_rate", "lr"])
@pytest.mark.parametrize("name", ["sgd_momentum", "adam"])
def test_O6_changing_learning_rate_mid_run_keeps_state(name, attribute, torch):
    make_ember, make_torch = CONFIGS[name]
    grads = _gradients(steps=20)
    params = _ember_params(_initial())
    opt = make_ember(params)
    ours = []
    for t, g in enumerate(grads):
        if t == 10:
            setattr(opt, attribute, 0.001)
            assert opt.learning_rate == 0.001 and opt.lr == 0.001
        _ember_step(opt, params, g)
        ours.append([p.data.copy() for p in params])

    def schedule(t, topt):
        if t == 10:
            for group in topt.param_groups:
                group["lr"] = 0.001

    theirs = _torch_run(torch, lambda p: make_torch(torch, p), grads, on_step=schedule)
    _assert_same_trajectory(ours, theirs)
    if name == "adam":
        assert opt.state[0]["step"] == 20  # not reset to 0 at the change
    # a reset would be visible: restarting momentum at step 10 gives a different trajectory
    fresh = _ember_params(ours[9])
    restarted = make_ember(fresh)
    restarted.learning_rate = 0.001
    for g in grads[10:]:
        _ember_step(restarted, fresh, g)
    assert not np.allclose(fresh[0].data, ours[-1][0], rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", ["sgd", "sgd_momentum", "sgd_nesterov", "adam"])
def test_state_dict_round_trip_resumes_bit_exact(name):
    """O4 / the optimizer part of P1–P7: 5 steps, save, load into a fresh optimizer, 5 more ==
    10 uninterrupted, bit for bit (moments, momentum buffers, step counts, hyper-parameters)."""
    make = CONFIGS[name][0]
    grads = _gradients(steps=10)
    uninterrupted, _, full_opt = _ember_run(make, grads)

    first, params, opt = _ember_run(make, grads[:5])
    saved = opt.state_dict()
    snapshot = {k: v.copy() for k, v in opt.state[0].items() if isinstance(v, np.ndarray)}
    for _ in range(3):  # further use of the old optimizer must not change what was saved
        _ember_step(opt, params, grads[0])
    for key, value in snapshot.items():
        np.testing.assert_array_equal(saved["state"][0][key], value)

    resumed_params = _ember_params(first[-1])
    fresh = type(opt)(resumed_params, learning_rate=0.5)  # wrong lr: the state brings it back
    fresh.load_state_dict(saved)
    assert fresh.get_config() == opt.get_config() and fresh.iterations == 5
    for g in grads[5:]:
        _ember_step(fresh, resumed_params, g)
    for a, b in zip(uninterrupted[-1], resumed_params):
        np.testing.assert_array_equal(a, b.data)
    assert fresh.iterations == full_opt.iterations == 10
    for s_full, s_fresh in zip(full_opt.state, fresh.state):
        assert s_full.keys() == s_fresh.keys()
        for key in s_full:
            np.testing.assert_array_equal(s_full[key], s_fresh[key])


def test_load_state_dict_errors_name_the_mismatch():
    _, _, opt = _ember_run(CONFIGS["adam"][0], _gradients(steps=2))
    saved = opt.state_dict()
    with pytest.raises(ValueError, match="the state has 2 parameters, this optimizer has 1"):
        Adam(_ember_params(_initial()[:1])).load_state_dict(saved)
    swapped = _ember_params(_initial()[::-1])
    with pytest.raises(
        ValueError,
        match=r"state 'm' of parameter 0 has shape \(3, 4\), the "
        r"parameter has shape \(5,\)",
    ):
        Adam(swapped).load_state_dict(saved)


def test_B9_bad_hyper_parameters_raise_at_construction():
    p = _ember_params(_initial())
    with pytest.raises(ValueError, match=r"SGD: learning_rate must be in \[0.0, inf\], got -0.1"):
        SGD(p, learning_rate=-0.1)
    with pytest.raises(ValueError, match="learning_rate"):
        Adam(-1e-3)
    with pytest.raises(ValueError, match="learning_rate"):
        SGD(p, learning_rate=float("nan"))
    with pytest.raises(TypeError, match="learning_rate must be a number, got '0.1'"):
        SGD(p, learning_rate="0.1")
    with pytest.raises(ValueError, match="momentum must be in"):
        SGD(p, momentum=1.5)
    with pytest.raises(ValueError, match="momentum must be in"):
        SGD(p, momentum=-0.1)
    with pytest.raises(ValueError, match="nesterov=True needs a momentum > 0"):
        SGD(p, nesterov=True)
    for kwargs in ({"beta_1": 1.5}, {"beta_2": -0.1}, {"epsilon": -1e-8}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            Adam(p, **kwargs)


@pytest.mark.parametrize("beta", ["beta_1", "beta_2"])
def test_B9_adam_beta_of_one_is_rejected(beta):
    """β = 1 makes the bias correction 1 - βᵗ zero: ZeroDivisionError / NaN at the first step
    unless rejected up front (torch: "Invalid beta parameter")."""
    with pytest.raises(ValueError, match=rf"Adam: {beta} must be in \[0, 1\), got 1.0"):
        Adam(_ember_params(_initial()), **{beta: 1.0})
    assert Adam(**{beta: 0.0}).get_config()[beta] == 0.0  # 0 is allowed


def test_B9_setting_a_negative_learning_rate_mid_run_raises_and_keeps_the_old_one():
    opt = SGD(0.1)
    with pytest.raises(ValueError, match="learning_rate"):
        opt.lr = -1
    assert opt.learning_rate == 0.1


def test_B9_unknown_optimizer_name_suggests_adam():
    with pytest.raises(ValueError) as info:
        optimizers.get("adm")
    assert "unknown optimizer 'adm'" in str(info.value)
    assert "Did you mean 'adam'?" in str(info.value)
    assert "adadelta, adagrad, adam, adamax, adamw, nadam, rmsprop, sgd" in str(info.value)
    model = ember.models.Sequential([ember.layers.Dense(1)])
    with pytest.raises(ValueError, match="Did you mean 'adam'"):
        model.compile(optimizer="adm", loss="mse")
    with pytest.raises(TypeError, match="optimizer must be a name"):
        optimizers.get(0.1)


def test_add_params_rejects_non_tensors_and_tensors_without_grad():
    with pytest.raises(TypeError, match="parameter 1 is a ndarray, expected an ember Tensor"):
        SGD([ember.tensor([1.0], requires_grad=True), np.ones(2)])
    with pytest.raises(ValueError, match=r"parameter 0 \(shape \(2,\)\) does not require grad"):
        SGD([ember.tensor([1.0, 2.0])])


def test_A10_gradients_accumulate_across_two_backward_passes_before_step():
    p = ember.tensor([1.0, -2.0], dtype="float64", requires_grad=True)
    opt = SGD([p], learning_rate=0.1)
    g1, g2 = np.array([0.5, 1.0]), np.array([0.25, -3.0])
    (p * g1).sum().backward()
    (p * g2).sum().backward()
    np.testing.assert_array_equal(p.grad, g1 + g2)
    opt.step()
    np.testing.assert_allclose(p.data, [1.0 - 0.1 * 0.75, -2.0 + 0.1 * 2.0], rtol=0, atol=1e-15)
    opt.zero_grad()
    assert p.grad is None
    (p * g1).sum().backward()
    np.testing.assert_array_equal(p.grad, g1)  # starts from zero again, not from g1 + g2

    # the same for Adam: one step on g1 + g2 equals one step on the summed gradient
    a = ember.tensor([1.0, -2.0], dtype="float64", requires_grad=True)
    b = ember.tensor([1.0, -2.0], dtype="float64", requires_grad=True)
    opt_a, opt_b = Adam([a], learning_rate=0.1), Adam([b], learning_rate=0.1)
    (a * g1).sum().backward()
    (a * g2).sum().backward()
    (b * (g1 + g2)).sum().backward()
    opt_a.step()
    opt_b.step()
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(a.data, [1.0, -2.0])


def test_updates_are_in_place_and_keep_dtype():
    p = ember.tensor(np.ones((2, 2), np.float32), requires_grad=True)
    buffer = p.data
    opt = Adam([p], learning_rate=0.1)
    (p * 2.0).sum().backward()
    opt.step()
    assert p.data is buffer and p.data.dtype == np.float32
    assert opt.state[0]["m"].dtype == np.float32
    assert math.isclose(float(p.data[0, 0]), 0.9, rel_tol=1e-6)


# ------------------------------------------------------------------------------ every optimizer
# Keras defaults of each optimizer (keras.optimizers.*), pinned through get_config().
KERAS_DEFAULTS = {
    "sgd": (SGD, {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False}),
    "rmsprop": (
        RMSprop,
        {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7, "centered": False},
    ),
    "adagrad": (
        Adagrad,
        {"learning_rate": 0.001, "initial_accumulator_value": 0.1, "epsilon": 1e-7},
    ),
    "adadelta": (Adadelta, {"learning_rate": 0.001, "rho": 0.95, "epsilon": 1e-7}),
    "adam": (Adam, {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}),
    "adamw": (
        AdamW,
        {
            "learning_rate": 0.001,
            "beta_1": 0.9,
            "beta_2": 0.999,
            "epsilon": 1e-7,
            "weight_decay": 0.004,
        },
    ),
    "adamax": (Adamax, {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}),
    "nadam": (Nadam, {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}),
}
ALL_CLASSES = [cls for cls, _ in KERAS_DEFAULTS.values()]

# one configuration per optimizer with every stateful option switched on
STATEFUL = {
    "sgd_nesterov": lambda p, lr: SGD(p, learning_rate=lr, momentum=0.9, nesterov=True),
    "sgd_dampening": lambda p, lr: SGD(p, learning_rate=lr, momentum=0.9, dampening=0.5),
    "rmsprop": lambda p, lr: RMSprop(p, learning_rate=lr, momentum=0.5, centered=True),
    "adagrad": lambda p, lr: Adagrad(p, learning_rate=lr),
    "adadelta": lambda p, lr: Adadelta(p, learning_rate=lr),
    "adam": lambda p, lr: Adam(p, learning_rate=lr, amsgrad=True, weight_decay=0.01),
    "adamw": lambda p, lr: AdamW(p, learning_rate=lr, global_clipnorm=5.0),
    "adamax": lambda p, lr: Adamax(p, learning_rate=lr, clipvalue=3.0),
    "nadam": lambda p, lr: Nadam(p, learning_rate=lr, clipnorm=4.0),
}


@pytest.mark.parametrize("name", sorted(KERAS_DEFAULTS))
def test_B9_every_string_name_resolves_with_keras_defaults(name):
    cls, config = KERAS_DEFAULTS[name]
    for spelling in (name, name.upper(), cls.__name__):
        opt = optimizers.get(spelling)
        assert type(opt) is cls
        assert opt.get_config() == config
    assert cls().get_config() == config
    rebuilt = optimizers.deserialize(optimizers.serialize(cls()))
    assert type(rebuilt) is cls and rebuilt.get_config() == config


@pytest.mark.parametrize(
    "typo, guess",
    [
        ("rmsprob", "rmsprop"),
        ("adagard", "adagrad"),
        ("adelta", "adadelta"),
        ("nadm", "nadam"),
        ("adamx", "adamax"),
        ("adam_w", "adamw"),
        ("sdg", "sgd"),
    ],
)
def test_B9_misspelt_optimizer_name_suggests_the_right_one(typo, guess):
    with pytest.raises(ValueError, match=f"unknown optimizer '{typo}'. Did you mean '{guess}'"):
        optimizers.get(typo)


BAD_HYPER_PARAMETERS = (
    [(cls, {"learning_rate": -0.1}, "learning_rate") for cls in ALL_CLASSES]
    + [(cls, {"weight_decay": -0.01}, "weight_decay") for cls in ALL_CLASSES]
    + [(cls, {"clipnorm": -1.0}, "clipnorm") for cls in ALL_CLASSES]
    + [
        (SGD, {"clipnorm": 0.0}, r"clipnorm must be > 0"),
        (Adam, {"clipvalue": -1.0}, "clipvalue"),
        (Adam, {"clipvalue": 0}, r"clipvalue must be > 0"),
        (RMSprop, {"global_clipnorm": -2.0}, "global_clipnorm"),
        (Adam, {"clipnorm": 1.0, "global_clipnorm": 1.0}, "only one of clipnorm"),
        (RMSprop, {"rho": 1.0}, r"rho must be in \[0, 1\), got 1.0"),
        (RMSprop, {"rho": -0.1}, "rho"),
        (RMSprop, {"momentum": 1.5}, "momentum"),
        (RMSprop, {"epsilon": -1e-7}, "epsilon"),
        (Adagrad, {"epsilon": -1.0}, "epsilon"),
        (Adagrad, {"initial_accumulator_value": -0.1}, "initial_accumulator_value"),
        (Adadelta, {"rho": 1.0}, r"rho must be in \[0, 1\)"),
        (Adadelta, {"rho": 2.0}, "rho"),
        (Adadelta, {"epsilon": -1e-7}, "epsilon"),
        (AdamW, {"beta_1": 1.0}, r"beta_1 must be in \[0, 1\)"),
        (AdamW, {"epsilon": -1.0}, "epsilon"),
        (Adamax, {"beta_2": 1.0}, "beta_2"),
        (Adamax, {"beta_1": -0.5}, "beta_1"),
        (Adamax, {"epsilon": -1e-7}, "epsilon"),
        (Nadam, {"beta_1": 1.0}, "beta_1"),
        (Nadam, {"beta_2": 1.5}, "beta_2"),
        (Nadam, {"epsilon": -1e-7}, "epsilon"),
        (Nadam, {"momentum_decay": -1.0}, "momentum_decay"),
        (SGD, {"dampening": 1.5}, "dampening"),
        (
            SGD,
            {"momentum": 0.9, "nesterov": True, "dampening": 0.1},
            "nesterov=True needs dampening",
        ),
    ]
)


@pytest.mark.parametrize(
    "cls, kwargs, match",
    BAD_HYPER_PARAMETERS,
    ids=[f"{c.__name__}-{'-'.join(k)}" for c, k, _ in BAD_HYPER_PARAMETERS],
)
def test_B9_bad_hyper_parameter_raises_naming_optimizer_and_argument(cls, kwargs, match):
    with pytest.raises(ValueError, match=match) as info:
        cls(_ember_params(_initial()), **kwargs)
    message = str(info.value)
    assert message.startswith(f"{cls.__name__}: ")
    assert any(key in message for key in kwargs)


def test_B9_unknown_argument_and_wrong_types():
    with pytest.raises(
        TypeError,
        match=r"RMSprop: unexpected argument 'clip_norm'. Did you mean "
        "'clipnorm'",
    ):
        RMSprop(clip_norm=1.0)
    with pytest.raises(TypeError, match="Adagrad: epsilon must be a number, got '1e-7'"):
        Adagrad(epsilon="1e-7")
    with pytest.raises(TypeError, match="Nadam: clipvalue must be a number"):
        Nadam(clipvalue=[1.0])


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_every_optimizer_updates_float32_in_place_without_upcast(cls):
    p = ember.tensor(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3), requires_grad=True)
    buffer = p.data
    opt = cls([p], learning_rate=0.1, weight_decay=0.01, clipnorm=10.0)
    for _ in range(3):
        opt.zero_grad()
        (p * p).sum().backward()
        opt.step()
    assert p.data is buffer and p.data.dtype == np.float32
    for key, value in opt.state[0].items():
        if isinstance(value, np.ndarray):
            assert value.dtype == np.float32, key
    assert np.all(np.abs(p.data) < np.abs(np.linspace(-1, 1, 6)).reshape(2, 3) + 1e-7)
    assert not np.array_equal(p.data, np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3))


# ------------------------------------------------------------------------------ N11 / N12
@pytest.mark.parametrize("name", sorted(STATEFUL))
def test_N11_every_optimizer_zero_gradient_1000_steps_unchanged_tiny_gradient_finite(name):
    make = STATEFUL[name]
    params = _ember_params(_initial())
    opt = make(params, 0.01)
    if opt.weight_decay:
        opt.weight_decay = None  # decay moves p without any gradient; here only the update counts
    zeros = [np.zeros(s) for s in SHAPES]
    with np.errstate(all="raise"):
        for _ in range(1000):
            _ember_step(opt, params, zeros)
    for p, start in zip(params, _initial()):
        np.testing.assert_array_equal(p.data, start)

    tiny = [np.full(s, 1e-12) for s in SHAPES]
    params = _ember_params(_initial())
    opt = make(params, 0.01)
    opt.weight_decay = None
    with np.errstate(all="raise"):
        for _ in range(100):
            _ember_step(opt, params, tiny)
    for p, start in zip(params, _initial()):
        assert np.all(np.isfinite(p.data))
        assert np.all(p.data <= start) and np.all(start - p.data < 1.0)


def _one_rmsprop_step(eps, g=2.0, rho=0.9, lr=0.1):
    p = ember.tensor([1.0], dtype="float64", requires_grad=True)
    opt = RMSprop([p], learning_rate=lr, rho=rho, epsilon=eps)
    (p * g).sum().backward()
    opt.step()
    return 1.0 - p.item()


def test_N12_rmsprop_epsilon_one_is_added_outside_the_square_root(torch):
    """s = (1−ρ)g² = 0.1·4 = 0.4; PyTorch: lr·g/(√s + ε) = 0.2/(0.632456 + 1) = 0.122515;
    TF/Keras: lr·g/√(s + ε) = 0.2/√1.4 = 0.169031 — 38% apart, so the convention is visible."""
    step = _one_rmsprop_step(eps=1.0)
    assert step == pytest.approx(0.2 / (math.sqrt(0.4) + 1.0), rel=1e-14)
    assert step == pytest.approx(0.1225148226554413, rel=1e-14)
    assert abs(step - 0.2 / math.sqrt(1.4)) > 0.04
    p = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    topt = torch.optim.RMSprop([p], lr=0.1, alpha=0.9, eps=1.0)
    (p * 2.0).sum().backward()
    topt.step()
    assert 1.0 - p.item() == pytest.approx(step, rel=1e-14)
    # with the default ε the conventions agree to ~1e-7 relative
    assert _one_rmsprop_step(eps=1e-7) == pytest.approx(0.2 / math.sqrt(0.4), rel=1e-6)


def test_N12_adagrad_and_adadelta_epsilon_placement_hand_computed():
    """Adagrad (PyTorch): s = 0.1 + g² = 4.1, step = lr·g/(√s + ε); ε = 1 → 0.2/(√4.1 + 1).
    Adadelta (ε inside both roots, as PyTorch and Keras): Δ = √(0 + ε)/√((1−ρ)g² + ε)·g."""
    p = ember.tensor([1.0], dtype="float64", requires_grad=True)
    opt = Adagrad([p], learning_rate=0.1, epsilon=1.0)
    (p * 2.0).sum().backward()
    opt.step()
    assert 1.0 - p.item() == pytest.approx(0.2 / (math.sqrt(4.1) + 1.0), rel=1e-14)

    p = ember.tensor([1.0], dtype="float64", requires_grad=True)
    opt = Adadelta([p], learning_rate=1.0, rho=0.9, epsilon=1.0)
    (p * 2.0).sum().backward()
    opt.step()
    assert 1.0 - p.item() == pytest.approx(math.sqrt(1.0) / math.sqrt(0.4 + 1.0) * 2.0, rel=1e-14)


def test_N12_adamax_epsilon_inside_the_max():
    """ε = 1, β₁ = 0.9, β₂ = 0.999, lr = 0.1, gradients 2 then 0.5.
    Step 1: m = 0.2, u = max(0, |g| + ε) = 3, update = lr/(1−β₁)·m/u = 0.2/3.
    Step 2: m = 0.23, u = max(0.999·3, 1.5) = 2.997, update = lr/(1−β₁²)·m/u.
    (Keras: u = max(β₂u, |g|) = 1.998 and the denominator u + ε = 2.998.)"""
    p = ember.tensor([1.0], dtype="float64", requires_grad=True)
    opt = Adamax([p], learning_rate=0.1, epsilon=1.0)
    steps = []
    for g in (2.0, 0.5):
        before = p.item()
        opt.zero_grad()
        (p * g).sum().backward()
        opt.step()
        steps.append(before - p.item())
    assert steps[0] == pytest.approx(0.2 / 3.0, rel=1e-14)
    assert steps[1] == pytest.approx(0.1 / (1 - 0.81) * 0.23 / 2.997, rel=1e-13)
    assert abs(steps[1] - 0.1 / (1 - 0.81) * 0.23 / 2.998) > 1e-5


# ------------------------------------------------------------------------------ O1 weight decay
def test_O1_decoupled_weight_decay_vs_l2_penalty(torch):
    """p = 1, zero loss gradient, lr = 0.1, decay 0.1, one Adam step.
    L2 added to the gradient (torch Adam(weight_decay); Ember: an L2 regularizer in the loss):
    g = 0.1·p, Adam normalises it → update ≈ lr·sign(g) → p ≈ 0.9.
    Decoupled (torch AdamW; Ember's weight_decay on every optimizer): p·(1 − lr·wd) = 0.99."""
    tp = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    topt = torch.optim.Adam([tp], lr=0.1, weight_decay=0.1)
    (tp * 0.0).sum().backward()
    topt.step()
    assert tp.item() == pytest.approx(1.0 - 0.1 * 0.1 / (0.1 + 1e-8), rel=1e-12)  # ≈ 0.9
    tp = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    topt = torch.optim.AdamW([tp], lr=0.1, weight_decay=0.1)
    (tp * 0.0).sum().backward()
    topt.step()
    assert tp.item() == pytest.approx(0.99, rel=1e-15)

    # Ember, L2 style: the penalty L2(λ/2)·p² has gradient λ·p, as torch's coupled decay
    p = ember.tensor([1.0], dtype="float64", requires_grad=True)
    opt = Adam([p], learning_rate=0.1, epsilon=1e-8)
    (ember.regularizers.L2(0.05)(p) + (p * 0.0).sum()).backward()
    np.testing.assert_allclose(p.grad, [0.1], rtol=1e-15)
    opt.step()
    assert p.item() == pytest.approx(1.0 - 0.1 * 0.1 / (0.1 + 1e-8), rel=1e-12)
    assert p.item() == pytest.approx(0.9, abs=1e-6)

    # Ember, decoupled: Adam(weight_decay) and AdamW give exactly 0.99, every other optimizer too
    for cls in ALL_CLASSES:
        p = ember.tensor([1.0], dtype="float64", requires_grad=True)
        opt = cls([p], learning_rate=0.1, weight_decay=0.1)
        (p * 0.0).sum().backward()
        opt.step()
        assert p.item() == pytest.approx(0.99, rel=1e-15), cls.__name__


def test_O1_weight_decay_uses_the_scheduled_learning_rate_and_skips_unused_params():
    used, unused = _ember_params([np.ones(2), np.ones(3)])
    sched = schedules.PiecewiseConstantDecay([0], [0.1, 0.5])  # 0.1 at step 0, 0.5 after
    opt = SGD([used, unused], learning_rate=sched, weight_decay=0.2)
    for _ in range(2):
        opt.zero_grad()
        (used * 0.0).sum().backward()
        opt.step()
    np.testing.assert_allclose(used.data, (1 - 0.1 * 0.2) * (1 - 0.5 * 0.2), rtol=1e-15)
    np.testing.assert_array_equal(unused.data, np.ones(3))  # no gradient: no decay either


# ------------------------------------------------------------------------------ clipping
def _sgd_step_with(grads, **clip):
    params = _ember_params([np.zeros_like(g) for g in grads])
    opt = SGD(params, learning_rate=1.0, **clip)
    loss = sum((p * ember.tensor(g)).sum() for p, g in zip(params, grads))
    loss.backward()
    before = [p.grad.copy() for p in params]
    opt.step()
    for p, g in zip(params, before):
        np.testing.assert_array_equal(p.grad, g)  # the optimizer clipped a copy, not p.grad
    return [-p.data for p in params]  # with lr = 1 from 0: minus the applied gradient


def test_clipvalue_clipnorm_global_clipnorm_hand_computed():
    g1, g2 = np.array([3.0, -4.0]), np.array([0.3, 0.4, 0.0])
    applied = _sgd_step_with([g1, g2], clipvalue=0.35)
    np.testing.assert_array_equal(applied[0], [0.35, -0.35])
    np.testing.assert_array_equal(applied[1], [0.3, 0.35, 0.0])

    # per parameter: ‖g1‖ = 5 → ×1/(5 + 1e-6); ‖g2‖ = 0.5 < 1 untouched
    applied = _sgd_step_with([g1, g2], clipnorm=1.0)
    np.testing.assert_allclose(applied[0], g1 / (5.0 + 1e-6), rtol=1e-15)
    np.testing.assert_array_equal(applied[1], g2)

    # jointly: ‖(g1, g2)‖ = √25.25 → both ×1/(√25.25 + 1e-6)
    applied = _sgd_step_with([g1, g2], global_clipnorm=1.0)
    scale = 1.0 / (math.sqrt(25.25) + 1e-6)
    np.testing.assert_allclose(applied[0], g1 * scale, rtol=1e-15)
    np.testing.assert_allclose(applied[1], g2 * scale, rtol=1e-15)
    assert math.hypot(*applied[0], *applied[1]) == pytest.approx(1.0, rel=1e-6)

    # large limits leave the gradient as it is
    applied = _sgd_step_with([g1, g2], global_clipnorm=6.0, clipvalue=10.0)
    np.testing.assert_array_equal(applied[0], g1)

    # value first, then norm: [3, -4] → [1, -1] → ×1/(√2 + 1e-6)
    applied = _sgd_step_with([g1], clipvalue=1.0, clipnorm=1.0)
    np.testing.assert_allclose(applied[0], np.array([1.0, -1.0]) / (math.sqrt(2) + 1e-6))


@pytest.mark.parametrize("mode", ["global_clipnorm", "clipnorm", "clipvalue"])
def test_clipping_matches_torch_nn_utils_then_torch_optimizer(mode, torch):
    """Reference: torch.nn.utils.clip_grad_norm_ over all parameters (global), over each
    parameter separately (clipnorm), clip_grad_value_ (clipvalue), then the torch optimizer."""
    limit = {"global_clipnorm": 1.5, "clipnorm": 1.0, "clipvalue": 0.5}[mode]
    grads = _gradients()

    def clip(params):
        if mode == "global_clipnorm":
            torch.nn.utils.clip_grad_norm_(params, limit)
        elif mode == "clipnorm":
            for p in params:
                torch.nn.utils.clip_grad_norm_([p], limit)
        else:
            torch.nn.utils.clip_grad_value_(params, limit)

    for cls, kwargs, make_torch in [
        (SGD, {"learning_rate": 0.05, "momentum": 0.9}, lambda p: torch.optim.SGD(p, 0.05, 0.9)),
        (Adam, {"learning_rate": 0.01, "epsilon": 1e-8}, lambda p: torch.optim.Adam(p, lr=0.01)),
    ]:
        ours, _, _ = _ember_run(lambda p: cls(p, **kwargs, **{mode: limit}), grads)  # noqa: B023
        theirs = _torch_run(torch, make_torch, grads, before_step=clip)
        _assert_same_trajectory(ours, theirs)
        unclipped, _, _ = _ember_run(lambda p: cls(p, **kwargs), grads)  # noqa: B023
        assert np.abs(unclipped[-1][0] - ours[-1][0]).max() > 1e-3  # the clipping did bite


def test_utils_clip_grad_norm_and_value_match_torch(torch):
    values = [np.array([[3.0, -4.0], [1.0, 2.0]]), np.array([0.5, -12.0])]
    for norm_type, max_norm in [(2.0, 1.0), (1.0, 3.0), (float("inf"), 2.0), (2.0, 100.0)]:
        ours = _ember_params([np.zeros_like(v) for v in values])
        theirs = [torch.zeros(v.shape, dtype=torch.float64, requires_grad=True) for v in values]
        for p, v in zip(ours, values):
            p.grad = v.copy()
        for p, v in zip(theirs, values):
            p.grad = torch.tensor(v)
        total = ember.utils.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
        t_total = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
        assert total == pytest.approx(float(t_total), rel=1e-14)
        for p, t in zip(ours, theirs):
            np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-14)
    ours = _ember_params([np.zeros_like(v) for v in values])
    for p, v in zip(ours, values):
        p.grad = v.copy()
    ember.utils.clip_grad_value_(ours, 1.0)
    np.testing.assert_array_equal(ours[1].grad, [0.5, -1.0])
    np.testing.assert_array_equal(values[1], [0.5, -12.0])  # the old array was not written into
    with pytest.raises(ValueError, match="max_norm must be a number >= 0"):
        ember.utils.clip_grad_norm_(ours, -1.0)


# ------------------------------------------------------------------------------ O4 / O5 / O6
@pytest.mark.parametrize("name", sorted(STATEFUL))
def test_O4_state_save_restore_with_schedule_is_bit_exact_for_every_optimizer(name):
    """5 steps, state_dict through JSON (as model.save stores it), load into a fresh optimizer
    built with a *different* float lr, 5 more steps == 10 uninterrupted, bit for bit: moments,
    step counts, μ-products, iterations and the schedule (its position is ``iterations``)."""
    import json

    make = STATEFUL[name]
    sched = schedules.ExponentialDecay(0.05, decay_steps=3, decay_rate=0.7)
    grads = _gradients(steps=10)
    uninterrupted, _, full_opt = _ember_run(lambda p: make(p, sched), grads)

    first, _, opt = _ember_run(lambda p: make(p, sched), grads[:5])
    saved = opt.state_dict()
    arrays = [{k: v for k, v in s.items() if isinstance(v, np.ndarray)} for s in saved["state"]]
    as_json = json.loads(
        json.dumps(
            {
                "iterations": saved["iterations"],
                "config": saved["config"],
                "scalars": [
                    {k: v for k, v in s.items() if not isinstance(v, np.ndarray)}
                    for s in saved["state"]
                ],
            }
        )
    )
    restored = {
        "iterations": as_json["iterations"],
        "config": as_json["config"],
        "state": [{**sc, **ar} for sc, ar in zip(as_json["scalars"], arrays)],
    }
    resumed_params = _ember_params(first[-1])
    fresh = make(resumed_params, 0.5)
    assert fresh.schedule is None
    fresh.load_state_dict(restored)
    assert fresh.schedule == sched and fresh.iterations == 5
    assert fresh.learning_rate == sched(5)
    assert fresh.get_config() == opt.get_config()
    for g in grads[5:]:
        _ember_step(fresh, resumed_params, g)
    for a, b in zip(uninterrupted[-1], resumed_params):
        np.testing.assert_array_equal(a, b.data)
    assert fresh.iterations == full_opt.iterations == 10
    for s_full, s_fresh in zip(full_opt.state, fresh.state):
        assert s_full.keys() == s_fresh.keys()
        for key in s_full:
            np.testing.assert_array_equal(s_full[key], s_fresh[key])


def test_O4_load_state_dict_resets_options_absent_from_the_saved_config():
    saved = SGD(_ember_params(_initial()), learning_rate=0.1).state_dict()
    opt = SGD(_ember_params(_initial()), learning_rate=0.3, clipnorm=1.0, weight_decay=0.1)
    opt.load_state_dict(saved)
    assert opt.get_config() == {"learning_rate": 0.1, "momentum": 0.0, "nesterov": False}
    assert opt.clipnorm is None and opt.weight_decay is None


@pytest.mark.parametrize("name", sorted(STATEFUL))
def test_O5_every_optimizer_skips_parameter_without_grad(name):
    used, unused = _ember_params(_initial())
    opt = STATEFUL[name]([used, unused], 0.01)
    start = unused.data.copy()
    for _ in range(5):
        opt.zero_grad()
        (used * 2.0).sum().backward()
        opt.step()
    np.testing.assert_array_equal(unused.data, start)
    assert opt.state[1] == {} and opt.iterations == 5
    assert not np.array_equal(used.data, _initial()[0])


@pytest.mark.parametrize(
    "name", ["rmsprop_momentum", "adagrad", "adadelta", "adamw", "adamax", "nadam"]
)
def test_O6_changing_learning_rate_mid_run_keeps_state_every_optimizer(name, torch):
    make_ember, make_torch = CONFIGS[name]
    grads = _gradients(steps=20)
    params = _ember_params(_initial())
    opt = make_ember(params)
    ours = []
    for t, g in enumerate(grads):
        if t == 10:
            opt.lr = opt.learning_rate * 0.3
        _ember_step(opt, params, g)
        ours.append([p.data.copy() for p in params])

    def schedule(t, topt):
        if t == 10:
            for group in topt.param_groups:
                group["lr"] *= 0.3

    theirs = _torch_run(torch, lambda p: make_torch(torch, p), grads, on_step=schedule)
    _assert_same_trajectory(ours, theirs)


def test_O6_setting_a_float_replaces_a_schedule_and_keeps_state():
    """What ReduceLROnPlateau does: read the current rate (a float), write a smaller one."""
    sched = schedules.LinearDecay(0.1, decay_steps=10, end_learning_rate=0.0)
    params = _ember_params(_initial())
    opt = Adam(params, learning_rate=sched)
    grads = _gradients(steps=6)
    for g in grads[:3]:
        _ember_step(opt, params, g)
    assert opt.learning_rate == pytest.approx(0.07, rel=1e-15) and opt.schedule is sched
    m_before = opt.state[0]["m"].copy()
    new_lr = opt.learning_rate * 0.5
    opt.learning_rate = new_lr
    assert opt.schedule is None and opt.learning_rate == pytest.approx(0.035, rel=1e-15)
    assert opt.get_config()["learning_rate"] == pytest.approx(0.035, rel=1e-15)
    np.testing.assert_array_equal(opt.state[0]["m"], m_before)
    assert opt.state[0]["step"] == 3 and opt.iterations == 3

    # the same run with the lr set by hand on a plain optimizer is bit-identical
    hand_params = _ember_params(_initial())
    hand = Adam(hand_params, learning_rate=0.1)
    for t, g in enumerate(grads[:3]):
        hand.learning_rate = sched(t)
        _ember_step(hand, hand_params, g)
    hand.learning_rate = new_lr
    for g in grads[3:]:
        _ember_step(opt, params, g)
        _ember_step(hand, hand_params, g)
    for a, b in zip(params, hand_params):
        np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_O5_frozen_parameter_gets_neither_update_nor_weight_decay(cls):
    frozen = Parameter(np.ones(3), trainable=False)
    live = Parameter(np.ones(3))
    opt = cls([frozen, live], learning_rate=0.1, weight_decay=0.5, global_clipnorm=1.0)
    for _ in range(3):
        opt.zero_grad()
        ((frozen * live).sum() * 2.0).backward()
        opt.step()
    assert frozen.grad is not None
    np.testing.assert_array_equal(frozen.data, np.ones(3))
    assert opt.state[0] == {} and np.all(live.data < 1)


@pytest.mark.parametrize("name", ["adam", "adamw", "nadam"])
def test_N11_adam_family_parity_with_torch_over_100_steps(name, torch):
    """ε = 1e-8 after the square root of the bias-corrected v̂, as torch: 100 steps within 1e-10."""
    make_ember, make_torch = CONFIGS[name]
    grads = _gradients(steps=100, seed=7)
    ours, _, _ = _ember_run(make_ember, grads)
    theirs = _torch_run(torch, lambda p: make_torch(torch, p), grads)
    _assert_same_trajectory(ours, theirs)
