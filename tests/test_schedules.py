"""Learning-rate schedules: values against hand-written Keras formulas, the step convention (the
first update uses step 0), use through compile()/fit(), saving, and argument validation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from ember.optimizers.schedules import (
    CosineDecay,
    ExponentialDecay,
    InverseTimeDecay,
    LearningRateSchedule,
    LinearDecay,
    PiecewiseConstantDecay,
    PolynomialDecay,
    StepDecay,
)

import ember
from ember.optimizers import SGD, Adam, schedules

STEPS = [0, 1, 2, 5, 9, 10, 11, 37, 100, 1000]


# Keras' formulas (keras/src/optimizers/schedules/learning_rate_schedule.py), written out here
# independently of the implementation.
def keras_exponential(step, lr0, decay_steps, rate, staircase):
    p = step / decay_steps
    return lr0 * rate ** (math.floor(p) if staircase else p)


def keras_inverse_time(step, lr0, decay_steps, rate, staircase):
    p = step / decay_steps
    return lr0 / (1 + rate * (math.floor(p) if staircase else p))


def keras_polynomial(step, lr0, decay_steps, end, power, cycle):
    if cycle:
        decay_steps = decay_steps * (1 if step == 0 else math.ceil(step / decay_steps))
    else:
        step = min(step, decay_steps)
    return (lr0 - end) * (1 - step / decay_steps) ** power + end


def keras_cosine(step, lr0, decay_steps, alpha, warmup_target, warmup_steps):
    def decay(s, peak):
        return peak * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * s / decay_steps)) + alpha)

    if warmup_target is None:
        return decay(min(step, decay_steps), lr0)
    step = min(step, decay_steps + warmup_steps)
    if step < warmup_steps:
        return (warmup_target - lr0) * step / warmup_steps + lr0
    return decay(step - warmup_steps, warmup_target)


def test_linear_decay_is_the_course_formula():
    """ηₜ = (1 − t/τ)·η₀ + (t/τ)·η_τ for t < τ, then η_τ (η₀ = 0.1, τ = 10, η_τ = 0.001)."""
    sched = LinearDecay(0.1, decay_steps=10, end_learning_rate=0.001)
    for t in STEPS:
        expected = (1 - t / 10) * 0.1 + (t / 10) * 0.001 if t < 10 else 0.001
        assert sched(t) == pytest.approx(expected, rel=1e-15, abs=0)
    assert sched(0) == 0.1 and sched(5) == pytest.approx(0.0505, rel=1e-15)
    assert sched(10) == sched(10**6) == 0.001
    # = Keras' PolynomialDecay with power 1
    poly = PolynomialDecay(0.1, 10, end_learning_rate=0.001, power=1.0)
    for t in STEPS:
        assert sched(t) == pytest.approx(poly(t), rel=1e-14)
    # η_τ > η₀: a linear warm-up
    assert LinearDecay(0.0, 4, 0.2)(1) == pytest.approx(0.05, rel=1e-15)


@pytest.mark.parametrize("staircase", [False, True])
def test_exponential_and_inverse_time_decay_match_keras(staircase):
    exp = ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=staircase)
    inv = InverseTimeDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=staircase)
    for t in STEPS:
        assert exp(t) == pytest.approx(keras_exponential(t, 0.1, 10, 0.5, staircase), rel=1e-15)
        assert inv(t) == pytest.approx(keras_inverse_time(t, 0.1, 10, 0.5, staircase), rel=1e-15)
    assert exp(20) == pytest.approx(0.025, rel=1e-15)
    assert exp(15) == pytest.approx(0.05 if staircase else 0.1 * 0.5**1.5, rel=1e-15)
    assert inv(20) == pytest.approx(0.05, rel=1e-15)


def test_step_decay_and_piecewise_constant():
    step = StepDecay(0.1, step_size=30, gamma=0.1)
    assert [step(t) for t in (0, 29, 30, 59, 60, 65)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rel=1e-12
    )
    for t in STEPS:
        assert step(t) == pytest.approx(keras_exponential(t, 0.1, 30, 0.1, True), rel=1e-12)
    pw = PiecewiseConstantDecay(boundaries=[100, 200], values=[0.1, 0.01, 0.001])
    # Keras: values[0] for step <= boundaries[0], values[1] for b0 < step <= b1, ...
    got = [pw(t) for t in (0, 99, 100, 101, 200, 201, 10**6)]
    assert got == [0.1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001]


@pytest.mark.parametrize("power, cycle", [(1.0, False), (2.0, False), (0.5, True), (2.0, True)])
def test_polynomial_decay_matches_keras(power, cycle):
    sched = PolynomialDecay(0.1, decay_steps=10, end_learning_rate=0.01, power=power, cycle=cycle)
    for t in STEPS:
        expected = keras_polynomial(t, 0.1, 10, 0.01, power, cycle)
        assert sched(t) == pytest.approx(expected, rel=1e-14)
    assert PolynomialDecay(0.1, 10, 0.0, power=2.0)(5) == pytest.approx(0.025, rel=1e-15)
    if cycle:  # restarts at the top after each decay_steps
        assert sched(11) > sched(10)
    else:
        assert sched(10) == sched(1000) == pytest.approx(0.01)
    assert PolynomialDecay(0.1, 10).end_learning_rate == 0.0001  # Keras' default


@pytest.mark.parametrize(
    "alpha, warmup_target, warmup_steps",
    [(0.0, None, 0), (0.1, None, 0), (0.0, 0.2, 5), (0.05, 0.2, 10)],
)
def test_cosine_decay_with_and_without_warmup_matches_keras(alpha, warmup_target, warmup_steps):
    sched = CosineDecay(
        0.01, decay_steps=20, alpha=alpha, warmup_target=warmup_target, warmup_steps=warmup_steps
    )
    for t in STEPS + [3, 7, 15, 24, 25, 30]:
        expected = keras_cosine(t, 0.01, 20, alpha, warmup_target, warmup_steps)
        assert sched(t) == pytest.approx(expected, rel=1e-14, abs=1e-18)
    peak = 0.01 if warmup_target is None else warmup_target
    assert sched(warmup_steps) == pytest.approx(peak, rel=1e-15)
    assert sched(warmup_steps + 10) == pytest.approx(peak * (0.5 * (1 - alpha) + alpha))
    assert sched(10**6) == pytest.approx(alpha * peak, abs=1e-18)
    if warmup_steps:
        assert sched(0) == 0.01  # the warm-up starts at initial_learning_rate
        frac = (warmup_steps // 2) / warmup_steps
        assert sched(warmup_steps // 2) == pytest.approx(0.01 + (peak - 0.01) * frac, rel=1e-14)
    documented = CosineDecay(0.0, decay_steps=90, warmup_target=0.1, warmup_steps=10)
    assert [documented(5), documented(10), documented(100)] == pytest.approx([0.05, 0.1, 0.0])


def test_first_update_uses_step_zero():
    """SGD with LinearDecay(0.1 → 0 over 10 steps): the first update is exactly 0.1·g, the
    second 0.09·g, … (schedule evaluated at iterations before it is counted)."""
    sched = LinearDecay(0.1, decay_steps=10, end_learning_rate=0.0)
    p = ember.tensor([1.0, -2.0], dtype="float64", requires_grad=True)
    opt = SGD([p], learning_rate=sched)
    g = np.array([0.5, 3.0])
    assert opt.learning_rate == 0.1 and opt.iterations == 0
    expected = np.array([1.0, -2.0])
    for t in range(12):
        opt.zero_grad()
        (p * g).sum().backward()
        before = p.data.copy()
        opt.step()
        np.testing.assert_array_equal(p.data, before - sched(t) * g)
        expected = expected - sched(t) * g
        assert opt.iterations == t + 1 and opt.learning_rate == sched(t + 1)
    np.testing.assert_allclose(p.data, expected, rtol=1e-15)
    assert sched(0) * g[0] == 0.05  # first move: exactly initial_lr·g


@pytest.mark.parametrize("name", ["sgd_momentum", "adam"])
def test_schedule_matches_torch_with_per_step_lr(name, torch):
    """A schedule equals torch with the lr of each param group set to schedule(t) before step t
    (torch's LR schedulers do the same; PyTorch's momentum v = μv + g is kept through lr
    changes, unlike Sutskever's v = μv + lr·g)."""
    from tests.test_optimizers import (
        CONFIGS,
        _assert_same_trajectory,
        _ember_run,
        _gradients,
        _torch_run,
    )

    sched = CosineDecay(0.0, decay_steps=30, warmup_target=0.05, warmup_steps=10, alpha=0.1)
    make_ember, make_torch = CONFIGS[name]

    def make(p):
        opt = make_ember(p)
        opt.learning_rate = sched
        return opt

    grads = _gradients()
    ours, _, opt = _ember_run(make, grads)

    def set_lr(t, topt):
        for group in topt.param_groups:
            group["lr"] = sched(t)

    theirs = _torch_run(torch, lambda p: make_torch(torch, p), grads, on_step=set_lr)
    _assert_same_trajectory(ours, theirs)
    assert opt.iterations == 50


def test_a_plain_callable_works_and_a_bad_schedule_value_raises():
    p = ember.tensor([1.0], dtype="float64", requires_grad=True)
    opt = SGD([p], learning_rate=lambda step: 0.1 / (step + 1))
    for _ in range(2):
        opt.zero_grad()
        (p * 1.0).sum().backward()
        opt.step()
    assert p.item() == pytest.approx(1.0 - 0.1 - 0.05, rel=1e-15)
    opt.learning_rate = lambda step: -0.1
    with pytest.raises(ValueError, match=r"SGD: the learning-rate schedule .* gave -0.1 at step 2"):
        opt.step()
    assert p.item() == pytest.approx(0.85, rel=1e-15)  # nothing moved


def test_schedules_reachable_from_ember_optimizers_and_keras_positional():
    assert ember.optimizers.schedules.LinearDecay is LinearDecay
    assert schedules is ember.schedules
    sched = ExponentialDecay(0.1, 10, 0.9)
    opt = Adam(sched)  # Keras style: first positional argument is the learning rate
    assert opt.params == [] and opt.schedule is sched and opt.learning_rate == 0.1


ALL_SCHEDULES = [
    LinearDecay(0.1, 10, 0.001),
    ExponentialDecay(0.1, 7, 0.5, staircase=True),
    InverseTimeDecay(0.2, 3, 0.25),
    StepDecay(0.3, 4, 0.5),
    PiecewiseConstantDecay([5, 10], [0.1, 0.05, 0.01]),
    PolynomialDecay(0.1, 10, 0.01, power=2.0, cycle=True),
    CosineDecay(0.001, 20, alpha=0.1, warmup_target=0.01, warmup_steps=5),
]


@pytest.mark.parametrize("sched", ALL_SCHEDULES, ids=lambda s: type(s).__name__)
def test_get_config_round_trip_and_json_serialization(sched):
    rebuilt = type(sched).from_config(sched.get_config())
    assert rebuilt == sched and rebuilt is not sched
    spec = json.loads(json.dumps(schedules.serialize(sched)))
    again = schedules.deserialize(spec)
    assert type(again) is type(sched) and again.get_config() == sched.get_config()
    for t in STEPS:
        assert again(t) == sched(t) == rebuilt(t)
    # and through an optimizer's config
    opt = SGD(learning_rate=sched, momentum=0.5)
    config = json.loads(json.dumps(opt.get_config()))
    assert config["learning_rate"] == spec
    restored = ember.optimizers.deserialize({"name": "sgd", "config": config})
    assert restored.schedule == sched and restored.momentum == 0.5


def test_custom_schedule_subclass_works_but_is_not_serializable_by_name():
    class Halving(LearningRateSchedule):
        def __call__(self, step):
            return 0.1 * 0.5 ** (step // 2)

        def get_config(self):
            return {}

    opt = SGD(learning_rate=Halving())
    assert opt.learning_rate == 0.1
    opt.iterations = 4
    assert opt.learning_rate == 0.025
    with pytest.raises(ValueError, match="cannot save the custom learning-rate schedule"):
        schedules.serialize(Halving())
    assert isinstance(opt.get_config()["learning_rate"], Halving)  # kept in memory
    with pytest.raises(NotImplementedError, match="must implement __call__"):
        LearningRateSchedule()(0)


BAD_ARGUMENTS = [
    (LinearDecay, (0.1, 0, 0.0), "LinearDecay: decay_steps must be a finite number > 0"),
    (LinearDecay, (-0.1, 10, 0.0), "LinearDecay: initial_learning_rate must be"),
    (LinearDecay, (0.1, 10, -1.0), "LinearDecay: end_learning_rate"),
    (ExponentialDecay, (0.1, -5, 0.5), "ExponentialDecay: decay_steps"),
    (ExponentialDecay, (0.1, 5, -0.5), "ExponentialDecay: decay_rate"),
    (InverseTimeDecay, (0.1, 5, float("nan")), "InverseTimeDecay: decay_rate"),
    (StepDecay, (0.1, 0), "StepDecay: step_size"),
    (PolynomialDecay, (0.1, 10, 0.0, 0.0), "PolynomialDecay: power"),
    (PolynomialDecay, (float("inf"), 10), "PolynomialDecay: initial_learning_rate"),
    (CosineDecay, (0.1, 10, 1.5), r"CosineDecay: alpha must be in \[0, 1\]"),
    (CosineDecay, (0.1, 10, 0.0, None, 5), "CosineDecay: warmup_steps=5 needs warmup_target"),
    (CosineDecay, (0.1, 10, 0.0, -1.0, 5), "CosineDecay: warmup_target"),
    (PiecewiseConstantDecay, ([1, 2], [0.1, 0.2]), "one more element than boundaries"),
    (PiecewiseConstantDecay, ([2, 1], [0.1, 0.2, 0.3]), "strictly increasing"),
    (PiecewiseConstantDecay, ([1], [0.1, -0.2]), "PiecewiseConstantDecay: values"),
]


@pytest.mark.parametrize("cls, args, match", BAD_ARGUMENTS, ids=[b[2][:40] for b in BAD_ARGUMENTS])
def test_B9_bad_schedule_arguments_raise(cls, args, match):
    with pytest.raises(ValueError, match=match):
        cls(*args)


def test_B9_schedule_type_errors_and_negative_step():
    with pytest.raises(TypeError, match="LinearDecay: decay_steps must be a number, got '10'"):
        LinearDecay(0.1, "10")
    with pytest.raises(ValueError, match="ExponentialDecay: the step must be >= 0, got -1.0"):
        ExponentialDecay(0.1, 10, 0.5)(-1)
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'linear_decy'"):
        schedules.deserialize({"name": "linear_decy", "config": {}})
    with pytest.raises(TypeError, match="SGD: learning_rate must be a number, got"):
        SGD(learning_rate=[0.1])


# ------------------------------------------------------------------------------ models
def _data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32)).astype(np.float32)
    return x, y


def _model(optimizer):
    ember.manual_seed(0)
    model = ember.models.Sequential([ember.layers.Input(shape=(3,)), ember.layers.Dense(1)])
    model.compile(optimizer=optimizer, loss="mse")
    return model


def test_schedule_through_compile_and_fit():
    x, y = _data()
    sched = LinearDecay(0.1, decay_steps=20, end_learning_rate=0.01)
    model = _model(SGD(learning_rate=sched))
    history = model.fit(x, y, batch_size=10, epochs=3, verbose=0, shuffle=False)
    assert model.optimizer.iterations == 12  # 4 batches × 3 epochs
    assert model.optimizer.learning_rate == pytest.approx(sched(12), rel=1e-15)
    assert history.history["loss"][-1] < history.history["loss"][0]

    # the same run with the rate set by hand before each batch gives the same weights
    manual = _model(SGD(learning_rate=0.1))
    for _ in range(3):
        for start in range(0, 40, 10):
            manual.optimizer.learning_rate = sched(manual.optimizer.iterations)
            manual.train_step((x[start : start + 10], y[start : start + 10]))
    for a, b in zip(model.get_weights(), manual.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "name", ["sgd", "rmsprop", "adagrad", "adadelta", "adam", "adamw", "adamax", "nadam"]
)
def test_every_optimizer_name_trains_through_compile(name):
    x, y = _data()
    model = _model(name)
    # Adadelta's first steps are ~lr·√ε (ε = 1e-7): it needs a large lr to move in 25 steps
    model.optimizer.learning_rate = 100.0 if name == "adadelta" else 0.05
    history = model.fit(x, y, batch_size=8, epochs=5, verbose=0, shuffle=False)
    assert type(model.optimizer) is type(ember.optimizers.get(name))
    assert history.history["loss"][-1] < 0.8 * history.history["loss"][0]


def test_model_save_and_load_keep_the_schedule_and_its_position(tmp_path):
    x, y = _data()
    sched = CosineDecay(0.01, decay_steps=30, warmup_target=0.05, warmup_steps=5)
    model = _model(Adam(learning_rate=sched, clipnorm=1.0))
    model.fit(x, y, batch_size=10, epochs=2, verbose=0, shuffle=False)
    path = tmp_path / "sched.ember"
    model.save(path)
    loaded = ember.models.load_model(path)
    assert loaded.optimizer.schedule == sched
    assert loaded.optimizer.iterations == 8 and loaded.optimizer.clipnorm == 1.0
    assert loaded.optimizer.learning_rate == model.optimizer.learning_rate
    model.fit(x, y, batch_size=10, epochs=2, verbose=0, shuffle=False)
    loaded.fit(x, y, batch_size=10, epochs=2, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
