"""Optimizers: parity with ``torch.optim`` and the catalogue's optimizer cases (N11, O2–O6, B9).

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
from ember.optimizers import SGD, Adam

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


def _torch_run(torch, make, grads, on_step=None):
    params = [torch.tensor(v, requires_grad=True) for v in _initial()]
    opt = make(params)
    trajectory = []
    for t, g in enumerate(grads):
        if on_step is not None:
            on_step(t, opt)
        opt.zero_grad()
        loss = sum((p * torch.tensor(gi)).sum() for p, gi in zip(params, g))
        loss.backward()
        opt.step()
        trajectory.append([p.detach().numpy().copy() for p in params])
    return trajectory


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
}


# ------------------------------------------------------------------------------ O3 parity
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_matches_torch_optim_over_50_steps(name, torch):
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
    model.train_step(x, y)
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
    assert "adam, sgd" in str(info.value)
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
