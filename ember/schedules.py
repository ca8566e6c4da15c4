"""Learning-rate schedules: callables ``schedule(step) -> float`` passed as ``learning_rate=``.

An optimizer evaluates ``schedule(optimizer.iterations)`` *before* counting the step, so the first
update uses ``schedule(0)``. Schedules hold no state of their own: the position is the
optimizer's ``iterations``, which ``state_dict()`` and ``model.save`` keep, so a resumed run
continues the schedule exactly where it stopped.

Reachable as ``ember.schedules`` and ``ember.optimizers.schedules`` (Keras'
``keras.optimizers.schedules``). Formulas and defaults are Keras' unless stated.

Example:
    >>> from ember.optimizers import SGD, schedules
    >>> sched = schedules.LinearDecay(0.1, decay_steps=100, end_learning_rate=0.001)
    >>> sched(0), sched(50), sched(100), sched(1000)   # step -> learning rate
    (0.1, 0.0505, 0.001, 0.001)
    >>> model = ember.models.Sequential([ember.layers.Input(shape=(4,)), ember.layers.Dense(1)])
    >>> opt = SGD(model.parameters(), learning_rate=sched)
"""

from __future__ import annotations

import math

import numpy as np

from ember import _registry

__all__ = [
    "LearningRateSchedule",
    "LinearDecay",
    "ExponentialDecay",
    "InverseTimeDecay",
    "StepDecay",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
    "CosineDecay",
    "serialize",
    "deserialize",
]


def _number(owner: str, name: str, value, low: float = -math.inf, *, low_open: bool = False):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}")
    value = float(value)
    too_low = value <= low if low_open else value < low
    if math.isnan(value) or math.isinf(value) or too_low:
        bound = f"> {low}" if low_open else f">= {low}"
        raise ValueError(f"{owner}: {name} must be a finite number {bound}, got {value}")
    return value


def _rate(owner: str, value) -> float:
    return _number(owner, "initial_learning_rate", value, 0)


def _step(owner: str, step) -> float:
    if isinstance(step, bool) or not isinstance(step, (int, float, np.integer, np.floating)):
        raise TypeError(f"{owner}: the step must be a number, got {step!r}")
    step = float(step)
    if not step >= 0:
        raise ValueError(f"{owner}: the step must be >= 0, got {step}")
    return step


class LearningRateSchedule:
    """Base class: subclasses implement ``__call__(step) -> float`` and ``get_config()``.

    Any plain callable ``f(step)`` also works as ``learning_rate=``, but only subclasses of this
    class whose config is JSON-able can be written to a checkpoint by ``model.save``.

    Example:
        >>> class Halving(ember.schedules.LearningRateSchedule):
        ...     def __call__(self, step):
        ...         return 0.1 * 0.5 ** (step // 10)
        ...     def get_config(self):
        ...         return {}
    """

    def __call__(self, step) -> float:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(step)")

    def get_config(self) -> dict:
        raise NotImplementedError(f"{type(self).__name__} must implement get_config()")

    @classmethod
    def from_config(cls, config: dict) -> LearningRateSchedule:
        return cls(**config)

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(sorted(self.get_config().items()))))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class LinearDecay(LearningRateSchedule):
    """The course's linear decay: ``ηₜ = (1 − t/τ)·η₀ + (t/τ)·η_τ`` for ``t < τ``, then ``η_τ``.

    ``initial_learning_rate`` is η₀, ``decay_steps`` is τ, ``end_learning_rate`` is η_τ (η_τ may
    exceed η₀, which gives a linear warm-up). Equal to Keras' ``PolynomialDecay`` with
    ``power=1.0``.

    Example:
        >>> ember.schedules.LinearDecay(0.1, decay_steps=100, end_learning_rate=0.001)(50)
        0.0505
    """

    def __init__(
        self, initial_learning_rate: float, decay_steps: int, end_learning_rate: float = 0.0
    ):
        owner = type(self).__name__
        self.initial_learning_rate = _rate(owner, initial_learning_rate)
        self.decay_steps = _number(owner, "decay_steps", decay_steps, 0, low_open=True)
        self.end_learning_rate = _number(owner, "end_learning_rate", end_learning_rate, 0)

    def __call__(self, step) -> float:
        t = _step(type(self).__name__, step)
        if t >= self.decay_steps:
            return self.end_learning_rate
        frac = t / self.decay_steps
        return (1.0 - frac) * self.initial_learning_rate + frac * self.end_learning_rate

    def get_config(self) -> dict:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "end_learning_rate": self.end_learning_rate,
        }


class _RateDecay(LearningRateSchedule):
    """What Keras' exponential and inverse-time decays share: ``initial_learning_rate``, a
    ``decay_rate`` applied per ``decay_steps``, and ``staircase`` (floor the progress)."""

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        decay_rate: float,
        staircase: bool = False,
    ):
        owner = type(self).__name__
        self.initial_learning_rate = _rate(owner, initial_learning_rate)
        self.decay_steps = _number(owner, "decay_steps", decay_steps, 0, low_open=True)
        self.decay_rate = _number(owner, "decay_rate", decay_rate, 0)
        self.staircase = bool(staircase)

    def _progress(self, step) -> float:
        p = _step(type(self).__name__, step) / self.decay_steps
        return math.floor(p) if self.staircase else p

    def get_config(self) -> dict:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
        }


class ExponentialDecay(_RateDecay):
    """Keras' ``initial_learning_rate · decay_rate ^ (step / decay_steps)``.

    With ``staircase=True`` the exponent is ``floor(step / decay_steps)`` (a step function).

    Example:
        >>> ember.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)(20)
        0.025
    """

    def __call__(self, step) -> float:
        return self.initial_learning_rate * self.decay_rate ** self._progress(step)


class InverseTimeDecay(_RateDecay):
    """Keras' ``initial_learning_rate / (1 + decay_rate · step / decay_steps)``.

    With ``staircase=True`` the ratio ``step / decay_steps`` is floored.

    Example:
        >>> ember.schedules.InverseTimeDecay(0.1, decay_steps=1, decay_rate=0.5)(2)
        0.05
    """

    def __call__(self, step) -> float:
        return self.initial_learning_rate / (1.0 + self.decay_rate * self._progress(step))


class StepDecay(LearningRateSchedule):
    """Step decay: ``initial_learning_rate · gamma ^ floor(step / step_size)``.

    PyTorch's ``StepLR`` counted in optimizer steps (Keras has no such class; it is
    ``ExponentialDecay(initial, step_size, gamma, staircase=True)``).

    Example:
        >>> ember.schedules.StepDecay(0.1, step_size=30, gamma=0.1)(65)  # two drops: 0.1 · 0.1²
        0.001...
    """

    def __init__(self, initial_learning_rate: float, step_size: int, gamma: float = 0.1):
        owner = type(self).__name__
        self.initial_learning_rate = _rate(owner, initial_learning_rate)
        self.step_size = _number(owner, "step_size", step_size, 0, low_open=True)
        self.gamma = _number(owner, "gamma", gamma, 0)

    def __call__(self, step) -> float:
        drops = math.floor(_step(type(self).__name__, step) / self.step_size)
        return self.initial_learning_rate * self.gamma**drops

    def get_config(self) -> dict:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "step_size": self.step_size,
            "gamma": self.gamma,
        }


class PiecewiseConstantDecay(LearningRateSchedule):
    """Keras' piecewise constant: ``values[0]`` for ``step <= boundaries[0]``, ``values[1]`` for
    ``boundaries[0] < step <= boundaries[1]``, …, ``values[-1]`` after the last boundary.

    Example:
        >>> sched = ember.schedules.PiecewiseConstantDecay(boundaries=[100, 200],
        ...                                                values=[0.1, 0.01, 0.001])
        >>> sched(100), sched(101), sched(500)
        (0.1, 0.01, 0.001)
    """

    def __init__(self, boundaries, values):
        owner = type(self).__name__
        boundaries = [_number(owner, "boundaries", b, 0) for b in boundaries]
        values = [_number(owner, "values", v, 0) for v in values]
        if len(values) != len(boundaries) + 1:
            raise ValueError(
                f"{owner}: values must have one more element than boundaries, got "
                f"{len(boundaries)} boundaries and {len(values)} values"
            )
        if any(b2 <= b1 for b1, b2 in zip(boundaries, boundaries[1:])):
            raise ValueError(f"{owner}: boundaries must be strictly increasing, got {boundaries}")
        self.boundaries, self.values = boundaries, values

    def __call__(self, step) -> float:
        t = _step(type(self).__name__, step)
        for boundary, value in zip(self.boundaries, self.values):
            if t <= boundary:
                return value
        return self.values[-1]

    def get_config(self) -> dict:
        return {"boundaries": list(self.boundaries), "values": list(self.values)}


class PolynomialDecay(LearningRateSchedule):
    """Keras' ``(initial − end) · (1 − t / decay_steps) ^ power + end``.

    Without ``cycle`` ``t = min(step, decay_steps)`` (constant ``end_learning_rate`` afterwards);
    with ``cycle=True`` ``decay_steps`` is stretched to the next multiple covering ``step``
    (``decay_steps · ceil(step / decay_steps)``, and ``decay_steps`` itself at step 0).

    Example:
        >>> sched = ember.schedules.PolynomialDecay(0.1, decay_steps=10, end_learning_rate=0.0,
        ...                                         power=2.0)
        >>> sched(5)
        0.025
    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        end_learning_rate: float = 0.0001,
        power: float = 1.0,
        cycle: bool = False,
    ):
        owner = type(self).__name__
        self.initial_learning_rate = _rate(owner, initial_learning_rate)
        self.decay_steps = _number(owner, "decay_steps", decay_steps, 0, low_open=True)
        self.end_learning_rate = _number(owner, "end_learning_rate", end_learning_rate, 0)
        self.power = _number(owner, "power", power, 0, low_open=True)
        self.cycle = bool(cycle)

    def __call__(self, step) -> float:
        t = _step(type(self).__name__, step)
        decay_steps = self.decay_steps
        if self.cycle:
            decay_steps *= 1.0 if t == 0 else math.ceil(t / decay_steps)
        else:
            t = min(t, decay_steps)
        frac = 1.0 - t / decay_steps
        span = self.initial_learning_rate - self.end_learning_rate
        return span * frac**self.power + self.end_learning_rate

    def get_config(self) -> dict:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "end_learning_rate": self.end_learning_rate,
            "power": self.power,
            "cycle": self.cycle,
        }


class CosineDecay(LearningRateSchedule):
    """Keras 3's cosine decay with optional linear warm-up.

    Without warm-up (``warmup_target=None``): ``η₀ · ((1 − α) · ½(1 + cos(π · t/decay_steps)) + α)``
    with ``t = min(step, decay_steps)``, so it ends at ``α · η₀``.

    With ``warmup_target`` and ``warmup_steps = w``: for ``step < w`` the rate rises linearly
    ``η₀ + (warmup_target − η₀) · step / w``; afterwards it decays from ``warmup_target`` by the
    cosine above over ``decay_steps`` more steps (``t = min(step − w, decay_steps)``), ending at
    ``α · warmup_target``. Keras silently ignores ``warmup_steps`` when ``warmup_target`` is
    ``None``; Ember rejects that combination.

    Example:
        >>> sched = ember.schedules.CosineDecay(0.0, decay_steps=90, warmup_target=0.1,
        ...                                     warmup_steps=10)
        >>> sched(5), sched(10), sched(100)
        (0.05, 0.1, 0.0)
    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        alpha: float = 0.0,
        warmup_target: float | None = None,
        warmup_steps: int = 0,
    ):
        owner = type(self).__name__
        self.initial_learning_rate = _rate(owner, initial_learning_rate)
        self.decay_steps = _number(owner, "decay_steps", decay_steps, 0, low_open=True)
        self.alpha = _number(owner, "alpha", alpha, 0)
        if self.alpha > 1:
            raise ValueError(f"{owner}: alpha must be in [0, 1], got {self.alpha}")
        self.warmup_target = (
            None if warmup_target is None else _number(owner, "warmup_target", warmup_target, 0)
        )
        self.warmup_steps = _number(owner, "warmup_steps", warmup_steps, 0)
        if self.warmup_target is None and self.warmup_steps > 0:
            raise ValueError(
                f"{owner}: warmup_steps={warmup_steps} needs warmup_target (the rate reached at "
                "the end of the warm-up)"
            )

    def _decay(self, t: float, peak: float) -> float:
        cosine = 0.5 * (1.0 + math.cos(math.pi * t / self.decay_steps))
        return peak * ((1.0 - self.alpha) * cosine + self.alpha)

    def __call__(self, step) -> float:
        t = _step(type(self).__name__, step)
        if self.warmup_target is None:
            return self._decay(min(t, self.decay_steps), self.initial_learning_rate)
        t = min(t, self.decay_steps + self.warmup_steps)
        if t < self.warmup_steps:
            rise = self.warmup_target - self.initial_learning_rate
            return self.initial_learning_rate + rise * t / self.warmup_steps
        return self._decay(t - self.warmup_steps, self.warmup_target)

    def get_config(self) -> dict:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
            "warmup_target": self.warmup_target,
            "warmup_steps": self.warmup_steps,
        }


_SCHEDULES = {
    "linear_decay": LinearDecay,
    "exponential_decay": ExponentialDecay,
    "inverse_time_decay": InverseTimeDecay,
    "step_decay": StepDecay,
    "piecewise_constant_decay": PiecewiseConstantDecay,
    "polynomial_decay": PolynomialDecay,
    "cosine_decay": CosineDecay,
}


def serialize(schedule: LearningRateSchedule) -> dict:
    """``{"name": "linear_decay", "config": {...}}`` (JSON-able) for a built-in schedule.

    Example:
        >>> schedule = ember.schedules.ExponentialDecay(0.1, decay_steps=100, decay_rate=0.5)
        >>> spec = ember.schedules.serialize(schedule)
        >>> spec["name"], spec["config"]["decay_rate"]
        ('exponential_decay', 0.5)
    """
    return _registry.serialize("learning-rate schedule", schedule, _SCHEDULES)


def deserialize(spec: dict) -> LearningRateSchedule:
    """Rebuild a schedule from :func:`serialize`'s output.

    Example:
        >>> spec = {"name": "exponential_decay",
        ...         "config": {"initial_learning_rate": 0.1, "decay_steps": 100, "decay_rate": 0.5}}
        >>> ember.schedules.deserialize(spec)(100)
        0.05
    """
    if not isinstance(spec, dict) or "name" not in spec:
        raise ValueError(
            f"a serialized learning-rate schedule is a dict with 'name' and 'config', got {spec!r}"
        )
    cls = _registry.lookup("learning-rate schedule", spec["name"], _SCHEDULES)
    return cls.from_config(spec.get("config", {}))
