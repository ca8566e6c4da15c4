"""Optimizers with PyTorch's update formulas and Keras' names and defaults.

Two ways to use them:

* high level: ``model.compile(optimizer="adam")`` or ``compile(optimizer=Adam(learning_rate=1e-3))``
  — the model hands its parameters over;
* low level: ``opt = SGD(model.parameters(), learning_rate=0.1)`` then, per step,
  ``opt.zero_grad(); loss.backward(); opt.step()``.

A parameter whose ``.grad`` is ``None`` (unused in the loss) or that is not trainable is skipped:
neither it nor its optimizer state changes. Updates are done in place.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ember import _registry
from ember._registry import lookup
from ember.backend import xp
from ember.tensor import Tensor


class Optimizer:
    """Base class: subclasses implement ``_update(param, grad, state)`` for one parameter."""

    def __init__(self, params=None, learning_rate: float = 0.01):
        if isinstance(params, (int, float)) and not isinstance(params, bool):
            # Keras style: SGD(0.1) — the first positional argument is the learning rate.
            params, learning_rate = None, params
        self.learning_rate = learning_rate
        self.params: list[Tensor] = []
        self.state: list[dict] = []
        self.iterations = 0
        self._scratch: dict[int, np.ndarray] = {}  # per-parameter work buffers, never saved
        if params is not None:
            self.add_params(params)

    # --------------------------------------------------------------- hyper-parameters
    @property
    def learning_rate(self) -> float:
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        value = _check_number("learning_rate", value, type(self).__name__)
        self._learning_rate = value

    lr = learning_rate  # PyTorch users' spelling; changing it mid-run keeps all state

    # --------------------------------------------------------------- parameters
    def add_params(self, params: Iterable[Tensor]) -> None:
        """Start optimizing ``params`` (tensors that require gradients)."""
        if isinstance(params, Tensor):
            params = [params]
        known = {id(p) for p in self.params}
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"{type(self).__name__}: parameter {i} is a {type(p).__name__}, expected an "
                    "ember Tensor (pass model.parameters())"
                )
            if not p.requires_grad:
                raise ValueError(
                    f"{type(self).__name__}: parameter {i} (shape {p.shape}) does not require "
                    "grad; create it with requires_grad=True"
                )
            if id(p) not in known:
                known.add(id(p))
                self.params.append(p)
                self.state.append({})

    def zero_grad(self) -> None:
        """Reset the gradients of every parameter (to ``None``, as PyTorch does by default)."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Apply one update to every parameter that has a gradient."""
        if not self.params:
            raise RuntimeError(
                f"{type(self).__name__} has no parameters: construct it with model.parameters(), "
                "or pass it to model.compile()"
            )
        self.iterations += 1
        for p, state in zip(self.params, self.state):
            if p.grad is None or not getattr(p, "trainable", True):
                continue
            self._update(p, p.grad, state)

    def _update(self, param: Tensor, grad: np.ndarray, state: dict) -> None:
        raise NotImplementedError

    # --------------------------------------------------------------- persistence
    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate}

    def state_dict(self) -> dict:
        """Everything needed to resume: step counts, buffers, hyper-parameters (arrays copied)."""
        return {
            "iterations": self.iterations,
            "config": self.get_config(),
            "state": [
                {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
                for s in self.state
            ],
        }

    def load_state_dict(self, state_dict: dict) -> None:
        states = state_dict["state"]
        if len(states) != len(self.params):
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: the state has {len(states)} parameters, "
                f"this optimizer has {len(self.params)}"
            )
        for i, (p, s) in enumerate(zip(self.params, states)):
            for key, value in s.items():
                if isinstance(value, np.ndarray) and value.shape != p.shape:
                    raise ValueError(
                        f"{type(self).__name__}.load_state_dict: state '{key}' of parameter {i} "
                        f"has shape {value.shape}, the parameter has shape {p.shape}"
                    )
        for key, value in state_dict.get("config", {}).items():
            setattr(self, key, value)
        self.iterations = int(state_dict["iterations"])
        self.state = [
            {k: (np.array(v, copy=True) if isinstance(v, np.ndarray) else v) for k, v in s.items()}
            for s in states
        ]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _check_number(name: str, value, owner: str, low: float = 0.0, high: float = math.inf):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}")
    value = float(value)
    if not (low <= value <= high) or math.isnan(value):
        raise ValueError(f"{owner}: {name} must be in [{low}, {high}], got {value}")
    return value


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum, PyTorch's formulas.

    ``v ← μ v + g``; ``p ← p − lr · v`` (or ``p ← p − lr · (g + μ v)`` with ``nesterov=True``).
    Without momentum: ``p ← p − lr · g``.

    Example:
        >>> opt = ember.optimizers.SGD(model.parameters(), learning_rate=0.1, momentum=0.9)
        >>> opt.zero_grad(); loss.backward(); opt.step()
    """

    def __init__(
        self,
        params=None,
        learning_rate: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
    ):
        super().__init__(params, learning_rate)
        self.momentum = _check_number("momentum", momentum, "SGD", 0.0, 1.0)
        if nesterov and self.momentum == 0:
            raise ValueError("SGD: nesterov=True needs a momentum > 0")
        self.nesterov = bool(nesterov)

    def _update(self, param, grad, state):
        if self.momentum:
            velocity = state.get("momentum_buffer")
            if velocity is None:
                velocity = state["momentum_buffer"] = xp.array(grad, copy=True)
            else:
                velocity *= self.momentum
                velocity += grad
            grad = grad + self.momentum * velocity if self.nesterov else velocity
        param.data -= self.learning_rate * grad

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "momentum": self.momentum,
            "nesterov": self.nesterov,
        }


class Adam(Optimizer):
    """Adam (Kingma & Ba) with PyTorch's formula and bias correction.

    ``m ← β₁m + (1−β₁)g``, ``v ← β₂v + (1−β₂)g²``,
    ``p ← p − lr/(1−β₁ᵗ) · m / (√v / √(1−β₂ᵗ) + ε)``.

    ε is added after the square root of the bias-corrected ``v`` (PyTorch's placement, the ε of
    the paper's Algorithm 1). The default ε is Keras' ``1e-7``; ``epsilon=1e-8`` reproduces
    ``torch.optim.Adam`` exactly.

    Example:
        >>> model.compile(optimizer=ember.optimizers.Adam(learning_rate=1e-3), loss="mse")
    """

    def __init__(
        self,
        params=None,
        learning_rate: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
    ):
        super().__init__(params, learning_rate)
        self.beta_1 = _check_number("beta_1", beta_1, "Adam", 0.0, 1.0)
        self.beta_2 = _check_number("beta_2", beta_2, "Adam", 0.0, 1.0)
        for name, beta in (("beta_1", self.beta_1), ("beta_2", self.beta_2)):
            if beta == 1.0:  # the bias correction 1 - beta^t would divide by zero at every step
                raise ValueError(f"Adam: {name} must be in [0, 1), got {beta}")
        self.epsilon = _check_number("epsilon", epsilon, "Adam")

    def _update(self, param, grad, state):
        if not state:
            state["step"] = 0
            state["m"] = xp.zeros_like(param.data)
            state["v"] = xp.zeros_like(param.data)
        state["step"] += 1
        t, m, v = state["step"], state["m"], state["v"]
        # One reusable scratch buffer per parameter: no temporaries allocated per step.
        scratch = self._scratch.get(id(param))
        if scratch is None or scratch.shape != m.shape or scratch.dtype != m.dtype:
            scratch = self._scratch[id(param)] = xp.empty_like(m)
        xp.subtract(grad, m, out=scratch)
        scratch *= 1 - self.beta_1
        m += scratch  # m ← m + (1−β₁)(g − m), i.e. β₁m + (1−β₁)g
        xp.multiply(grad, grad, out=scratch)
        scratch *= 1 - self.beta_2
        v *= self.beta_2
        v += scratch
        bias1 = 1 - self.beta_1**t
        bias2_sqrt = math.sqrt(1 - self.beta_2**t)
        xp.sqrt(v, out=scratch)
        scratch /= bias2_sqrt
        scratch += self.epsilon
        xp.divide(m, scratch, out=scratch)
        scratch *= self.learning_rate / bias1
        param.data -= scratch

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
        }


_OPTIMIZERS = {"sgd": SGD, "adam": Adam}


def get(identifier) -> Optimizer:
    """Resolve ``"adam"``/``"sgd"`` (Keras defaults) or pass an :class:`Optimizer` through."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        return lookup("optimizer", identifier, _OPTIMIZERS)()
    raise TypeError(f"optimizer must be a name such as 'adam' or an Optimizer, got {identifier!r}")


def serialize(optimizer: Optimizer) -> dict:
    return _registry.serialize("optimizer", optimizer, _OPTIMIZERS)


def deserialize(spec: dict) -> Optimizer:
    return _registry.deserialize("optimizer", spec, _OPTIMIZERS)
