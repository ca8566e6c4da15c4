"""Optimizers with PyTorch's update formulas and Keras' names and defaults.

Three ways to use them:

* high level: ``model.compile(optimizer="adam")`` or ``compile(optimizer=Adam(learning_rate=1e-3))``
  — the model hands its parameters over;
* low level, PyTorch style: ``opt = SGD(model.parameters(), learning_rate=0.1)`` then, per step,
  ``opt.zero_grad(); loss.backward(); opt.step()`` — ``step()`` reads each parameter's ``.grad``;
* low level, Keras 3 / TensorFlow style: ``opt = Adam(1e-3)`` then, per step,
  ``opt.apply_gradients(zip(grads, model.trainable_weights))`` or ``opt.apply(grads, variables)``
  — the gradients are passed in (``.grad`` is neither read nor written) and the optimizer learns
  its variables at the first call (and any new ones at later calls).

Names (also accepted by ``compile``): ``"sgd"``, ``"rmsprop"``, ``"adagrad"``, ``"adadelta"``,
``"adam"``, ``"adamw"``, ``"adamax"``, ``"nadam"``.

Options common to every optimizer (Keras 3's):

* ``learning_rate``: a float or a schedule (any ``f(step) -> float``, usually one of
  :mod:`ember.optimizers.schedules`). A schedule is evaluated at ``iterations`` *before* the step
  is counted, so the first update uses ``schedule(0)``. Reading ``opt.learning_rate`` gives the
  rate the next step will use (a float); assigning a float replaces a schedule and keeps all
  optimizer state (what ``ReduceLROnPlateau`` does). It must be finite and ``>= 0`` — checked at
  construction, on assignment, and on every value a schedule returns.
* ``weight_decay``: *decoupled* decay ``p ← p·(1 − lr·wd)`` applied before each update (Keras 3,
  PyTorch's ``AdamW``), on every optimizer. It is not an L2 penalty: for L2 coupled to the
  gradient (PyTorch's ``Adam(weight_decay=λ)``) put ``kernel_regularizer=L2(λ/2)`` on the layers.
  Finite and ``>= 0`` (or ``None``), also when assigned later.
* ``clipvalue`` (each entry to ``[-c, c]``), ``clipnorm`` (each parameter's gradient to norm
  ``c``), ``global_clipnorm`` (all gradients jointly, as ``ember.utils.clip_grad_norm_``). Norm
  clipping uses PyTorch's factor ``min(1, c / (‖g‖ + 1e-6))``. ``clipvalue`` may be combined with
  one norm clip (value first, then norm); Keras silently ignores ``clipvalue`` in that case.
  The optimizer clips a copy: the gradient given (or ``p.grad``) is never modified.

Aliases (PyTorch's spellings, accepted by every constructor that has the Keras argument; giving
both spellings is a ``TypeError``):

* ``lr=`` for ``learning_rate=`` (and the attribute ``opt.lr`` for ``opt.learning_rate``);
* ``eps=`` for ``epsilon=``;
* ``betas=(b1, b2)`` for ``beta_1=b1, beta_2=b2`` (Adam, AdamW, Adamax, Nadam).

A parameter whose gradient is ``None`` (unused in the loss) or that is not trainable is skipped:
neither it, its weight decay nor its optimizer state changes. Updates are done in place (and
mark the tensor as modified, so a backward through a graph that saved the old value fails).
"""

from __future__ import annotations

import difflib
import functools
import inspect
import math
import sys
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from ember import _registry, kernels
from ember import schedules as schedules
from ember._registry import lookup
from ember.backend import xp
from ember.schedules import LearningRateSchedule
from ember.tensor import Tensor
from ember.utils import clip_coefficient, grad_norm

__all__ = [
    "Optimizer",
    "SGD",
    "RMSprop",
    "Adagrad",
    "Adadelta",
    "Adam",
    "AdamW",
    "Adamax",
    "Nadam",
    "schedules",
    "get",
    "serialize",
    "deserialize",
]

# ``from ember.optimizers.schedules import CosineDecay`` (Keras' import path) needs the module
# registered under that name, since this module is not a package.
sys.modules.setdefault(f"{__name__}.schedules", schedules)

_COMMON_OPTIONS = ("weight_decay", "clipnorm", "clipvalue", "global_clipnorm")

# PyTorch's argument names -> Ember's (Keras') names; see "Aliases" in the module docstring.
_ALIASES = {"lr": "learning_rate", "eps": "epsilon"}


def _is_rate(value) -> bool:
    """A learning rate given where the parameters go (Keras' ``SGD(0.1)``)."""
    return isinstance(value, LearningRateSchedule) or (
        isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    )


def _canonical_arguments(init: Callable) -> Callable:
    """Wrap an optimizer ``__init__`` so that it also takes PyTorch's spellings.

    Rewrites, before ``init`` runs: ``lr=``/``eps=`` to ``learning_rate=``/``epsilon=`` and
    ``betas=(b1, b2)`` to ``beta_1=, beta_2=`` (only where ``init`` has the Keras argument), and a
    learning rate given as the first positional argument (Keras' ``SGD(0.1)``) to
    ``params=None, learning_rate=0.1``. A value given under two spellings is a ``TypeError``.
    Applied to every subclass by ``Optimizer.__init_subclass__``; the outermost ``__init__`` does
    the rewrite, so the ``super().__init__`` calls only ever see the canonical names.
    """
    signature = inspect.signature(init)
    order = [
        name
        for name, p in signature.parameters.items()
        if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    ][1:]  # without self
    named = {
        name
        for name, p in signature.parameters.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    aliases = {alias: name for alias, name in _ALIASES.items() if name in named}
    takes_betas = {"beta_1", "beta_2"} <= named
    takes_params = bool(order) and order[0] == "params" and "learning_rate" in named

    def given(name: str, args: tuple, kwargs: dict) -> bool:
        return name in kwargs or (name in order and order.index(name) < len(args))

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        owner = type(self).__name__
        for alias, name in aliases.items():
            if alias in kwargs:
                if given(name, args, kwargs):
                    raise TypeError(
                        f"{owner}: got both {alias}= and {name}= (the same argument, PyTorch's "
                        f"and Keras' spelling); pass only one"
                    )
                kwargs[name] = kwargs.pop(alias)
        if takes_betas and "betas" in kwargs:
            betas = kwargs.pop("betas")
            both = [name for name in ("beta_1", "beta_2") if given(name, args, kwargs)]
            if both:
                raise TypeError(
                    f"{owner}: got both betas= and {both[0]}= (PyTorch's and Keras' spelling); "
                    "pass only one"
                )
            if (
                isinstance(betas, (str, bytes))
                or not isinstance(betas, Sequence)
                or len(betas) != 2
            ):
                raise TypeError(f"{owner}: betas must be a pair (beta_1, beta_2), got {betas!r}")
            kwargs["beta_1"], kwargs["beta_2"] = betas
        first = args[0] if args else kwargs.get("params")
        if takes_params and _is_rate(first):
            if given("learning_rate", args, kwargs):
                second = args[1] if len(args) > 1 else kwargs["learning_rate"]
                raise TypeError(
                    f"{owner}: the learning rate was given twice, as the first argument "
                    f"({first!r}, Keras style) and as learning_rate ({second!r}); pass only one"
                )
            kwargs["learning_rate"] = first
            if args:
                args = (None, *args[1:])
            else:
                kwargs["params"] = None
        return init(self, *args, **kwargs)

    return wrapper


def _first_moment_(average: np.ndarray, grad: np.ndarray, beta: float, scratch: np.ndarray):
    """``a ← βa + (1−β)g`` in place, computed as ``a ← a + (1−β)(g − a)`` (PyTorch's lerp)."""
    xp.subtract(grad, average, out=scratch)
    scratch *= 1 - beta
    average += scratch


def _second_moment_(average: np.ndarray, grad: np.ndarray, beta: float, scratch: np.ndarray):
    """``s ← βs + (1−β)g²`` in place."""
    xp.multiply(grad, grad, out=scratch)
    scratch *= 1 - beta
    average *= beta
    average += scratch


class Optimizer:
    """Base class: subclasses implement ``_update(param, grad, state, lr)`` for one parameter.

    ``params`` and ``state`` are parallel lists (one state dict per parameter, in the order the
    parameters were added); ``iterations`` counts the updates applied (``step()`` or ``apply``).

    Example:
        >>> class SignSGD(ember.optimizers.Optimizer):
        ...     def _update(self, param, grad, state, lr):
        ...         param.data -= lr * np.sign(grad)
        >>> w = ember.tensor([1.0, -1.0], requires_grad=True)
        >>> SignSGD(lr=0.5).apply([np.array([2.0, -3.0])], [w])
        >>> w
        tensor([ 0.5, -0.5]...)
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _canonical_arguments(cls.__init__)

    def __init__(self, params=None, learning_rate=0.01, **options):
        self.learning_rate = learning_rate
        self.params: list[Tensor] = []
        self.state: list[dict] = []
        self.iterations = 0
        self._scratch: dict[int, list[np.ndarray]] = {}  # per-parameter work buffers, never saved
        self._param_owners: list = []  # models given as model.parameters(), read at each step
        self._set_options(options)
        if params is not None:
            self.add_params(params)

    # --------------------------------------------------------------- hyper-parameters
    @property
    def learning_rate(self) -> float:
        """The rate the next step uses (a schedule is evaluated at ``iterations``)."""
        return self._current_learning_rate()

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        owner = type(self).__name__
        if isinstance(value, dict):
            value = schedules.deserialize(value)  # from get_config(): a saved schedule
        if isinstance(value, LearningRateSchedule):
            self._learning_rate = value
        elif isinstance(value, (int, float, np.integer, np.floating)) or not callable(value):
            self._learning_rate = _check_number("learning_rate", value, owner)
        else:
            self._learning_rate = value  # a plain callable f(step); works, but cannot be saved

    lr = learning_rate  # PyTorch users' spelling; changing it mid-run keeps all state

    @property
    def weight_decay(self) -> float | None:
        """Decoupled weight decay per step (``None``: none); finite and ``>= 0`` when set."""
        return self._weight_decay

    @weight_decay.setter
    def weight_decay(self, value) -> None:
        if value is not None:
            value = _check_number("weight_decay", value, type(self).__name__)
        self._weight_decay = value

    @property
    def schedule(self) -> Callable | None:
        """The learning-rate schedule, or ``None`` when the rate is a constant."""
        return None if isinstance(self._learning_rate, float) else self._learning_rate

    def _current_learning_rate(self) -> float:
        lr = self._learning_rate
        if isinstance(lr, float):
            return lr
        value = lr(self.iterations)
        try:
            return _check_number("learning_rate", value, type(self).__name__)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"{type(self).__name__}: the learning-rate schedule {lr!r} gave {value!r} at "
                f"step {self.iterations}; learning_rate must be a finite number >= 0"
            ) from exc

    def _set_options(self, options: dict) -> None:
        owner = type(self).__name__
        unknown = sorted(set(options) - set(_COMMON_OPTIONS))
        if unknown:
            guess = difflib.get_close_matches(unknown[0], _COMMON_OPTIONS, n=1)
            hint = f" Did you mean {guess[0]!r}?" if guess else ""
            raise TypeError(f"{owner}: unexpected argument {unknown[0]!r}.{hint}")
        values = {}
        for key in _COMMON_OPTIONS:
            value = options.get(key)
            if value is not None:
                value = _check_number(key, value, owner)
                if key != "weight_decay" and value == 0:
                    raise ValueError(
                        f"{owner}: {key} must be > 0 (or None for no clipping), got {value}"
                    )
            values[key] = value
        if values["clipnorm"] is not None and values["global_clipnorm"] is not None:
            raise ValueError(
                f"{owner}: set only one of clipnorm (per parameter) and global_clipnorm (all "
                f"parameters jointly), got clipnorm={values['clipnorm']} and "
                f"global_clipnorm={values['global_clipnorm']}"
            )
        for key, value in values.items():
            setattr(self, key, value)

    # --------------------------------------------------------------- parameters
    def add_params(self, params: Iterable[Tensor]) -> None:
        """Start optimizing ``params`` (tensors that require gradients); known ones are kept once.

        Example:
            >>> w = ember.tensor([1.0, 2.0], requires_grad=True)
            >>> opt = ember.optimizers.SGD(learning_rate=0.1)
            >>> opt.add_params([w]); opt.add_params([w])
            >>> len(opt.params)
            1
        """
        if isinstance(params, Tensor):
            params = [params]
        owner = getattr(params, "owner", None)
        if owner is not None and not any(o is owner for o in self._param_owners):
            # model.parameters() of a model whose layers build on their first call: the
            # weights made later are picked up at zero_grad()/step() (PyTorch's flow works).
            self._param_owners.append(owner)
        params = list(params)
        for i, p in enumerate(params):  # all checked before any is added
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
        known = {id(p) for p in self.params}
        for p in params:
            if id(p) not in known:
                known.add(id(p))
                self.params.append(p)
                self.state.append({})

    def _refresh_params(self) -> set | None:
        """Add the weights that models given as ``model.parameters()`` created since, and return
        the ids of their trainable weights now (``None`` when no model was given): a layer
        frozen after the optimizer was made is left alone by :meth:`step`."""
        if not self._param_owners:
            return None
        allowed: set = set()
        for owner in self._param_owners:
            current = owner.trainable_weights
            allowed.update(id(p) for p in current)
            if any(id(p) not in self._known_ids() for p in current):
                self.add_params(current)
        return allowed

    def _known_ids(self) -> set:
        return {id(p) for p in self.params}

    def zero_grad(self) -> None:
        """Reset the gradients of every parameter (to ``None``, as PyTorch does by default)."""
        self._refresh_params()
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Apply one update to every parameter that has a gradient (PyTorch style: reads ``.grad``).

        Example:
            >>> w = ember.tensor([1.0, 2.0], requires_grad=True)
            >>> opt = ember.optimizers.SGD([w], learning_rate=0.25)
            >>> (w * w).sum().backward()  # w.grad = 2w = [2, 4]
            >>> opt.step()
            >>> w
            tensor([0.5, 1. ]...)
        """
        allowed = self._refresh_params()
        if not self.params:
            raise RuntimeError(
                f"{type(self).__name__} has no parameters: construct it with model.parameters(), "
                "or pass it to model.compile(); a model whose layers infer their input size has "
                "weights only after its first call"
            )
        self._apply_updates(
            [
                (p, s, p.grad if allowed is None or id(p) in allowed else None)
                for p, s in zip(self.params, self.state)
            ]
        )

    def apply(self, grads: Sequence, variables: Sequence[Tensor] | None = None) -> None:
        """Update ``variables`` in place with ``grads`` (Keras 3 style); ``.grad`` is not used.

        ``grads[i]`` (a NumPy array, an ember Tensor, or ``None`` to skip that variable) is the
        gradient of ``variables[i]``; ``variables`` defaults to the optimizer's parameters in
        order. Variables not seen before are added (with fresh state), so an optimizer created
        without parameters learns them at the first call. One call is one step (``iterations``
        counts calls), with the same clipping, weight decay and schedule as :meth:`step`.

        Example:
            >>> w = ember.tensor([1.0, 2.0], requires_grad=True)
            >>> opt = ember.optimizers.SGD(learning_rate=0.5)
            >>> opt.apply([np.array([1.0, -1.0])], [w])
            >>> w, opt.iterations, w.grad is None
            (tensor([0.5, 2.5]...), 1, True)
            >>> opt.apply([ember.tensor([1.0, 1.0])])  # variables: the ones it knows
            >>> w
            tensor([0., 2.]...)
        """
        owner = f"{type(self).__name__}.apply"
        if isinstance(grads, (Tensor, np.ndarray)):
            raise TypeError(
                f"{owner}: grads must be a list with one gradient per variable, got a single "
                f"{type(grads).__name__}; wrap it: apply([grad], [variable])"
            )
        grads = list(grads)
        if variables is None:
            variables = self.params
        elif isinstance(variables, Tensor):
            raise TypeError(f"{owner}: variables must be a list of Tensors, got one Tensor")
        variables = list(variables)
        if len(grads) != len(variables):
            raise ValueError(
                f"{owner}: got {len(grads)} gradients for {len(variables)} variables; pass one "
                "gradient (or None) per variable"
            )
        self._apply_given(grads, variables, owner)

    def apply_gradients(self, grads_and_vars: Iterable[tuple]) -> None:
        """Update each variable in place with its gradient (Keras/TensorFlow style).

        Same as :meth:`apply` with the pairs unzipped: ``grads_and_vars`` is an iterable of
        ``(gradient, variable)`` pairs, such as ``zip(grads, model.trainable_weights)``.

        Example:
            >>> w = ember.tensor([1.0, 2.0], requires_grad=True)
            >>> b = ember.tensor([0.5], requires_grad=True)
            >>> opt = ember.optimizers.Adam(1e-3)
            >>> opt.apply_gradients(zip([np.array([3.0, -3.0]), None], [w, b]))
            >>> w, b  # Adam's first step moves by the learning rate; b had no gradient
            (tensor([0.999, 2.001]...), tensor([0.5]...))
        """
        owner = f"{type(self).__name__}.apply_gradients"
        grads, variables = [], []
        for i, pair in enumerate(grads_and_vars):
            if isinstance(pair, Tensor) or not isinstance(pair, Sequence) or len(pair) != 2:
                raise TypeError(
                    f"{owner}: item {i} is {type(pair).__name__}, expected a (gradient, "
                    "variable) pair, as zip(grads, model.trainable_weights) gives"
                )
            grads.append(pair[0])
            variables.append(pair[1])
        self._apply_given(grads, variables, owner)

    def _apply_given(self, grads: list, variables: list, owner: str) -> None:
        """Check ``grads``/``variables`` (nothing changes on an error), add the new variables,
        then run one step through :meth:`_apply_updates`."""
        if not variables and not self.params:
            raise RuntimeError(
                f"{owner}: no variables given and the optimizer knows none yet; pass the "
                "gradients with their variables (such as model.trainable_weights)"
            )
        params = self.params
        if len(variables) == len(params) and all(v is p for v, p in zip(variables, params)):
            # the usual step: the same (checked, distinct) variables as last time, in order
            arrays = [
                _gradient_array(g, v, owner, i) for i, (g, v) in enumerate(zip(grads, params))
            ]
            self._apply_updates(list(zip(params, self.state, arrays)))
            return
        seen: set[int] = set()
        arrays = []
        for i, (g, v) in enumerate(zip(grads, variables)):
            if not isinstance(v, Tensor):
                raise TypeError(
                    f"{owner}: variable {i} is a {type(v).__name__}, expected an ember Tensor "
                    "(such as an entry of model.trainable_weights)"
                )
            if id(v) in seen:
                raise ValueError(f"{owner}: variable {_label(i, v)} is given twice; pass each once")
            seen.add(id(v))
            arrays.append(_gradient_array(g, v, owner, i))
        self.add_params(variables)
        index = {id(p): k for k, p in enumerate(self.params)}
        states = [self.state[index[id(v)]] for v in variables]
        self._apply_updates(list(zip(variables, states, arrays)))

    def _apply_updates(self, entries: list[tuple[Tensor, dict, np.ndarray | None]]) -> None:
        """One optimizer step over ``(param, state, grad)`` entries: the one place shared by
        :meth:`step` and :meth:`apply`.

        Skips entries whose gradient is ``None`` or whose parameter is not trainable; evaluates
        the learning rate (before counting the step), clips, counts the step, applies decoupled
        weight decay and ``_update``, and marks each updated tensor as modified in place.
        """
        lr = self._current_learning_rate()  # before counting the step: the first uses step 0
        active = [
            (p, s, g) for p, s, g in entries if g is not None and getattr(p, "trainable", True)
        ]
        grads = self._clip_gradients([g for _, _, g in active])
        self.iterations += 1
        decay = self.weight_decay
        for (p, state, _), g in zip(active, grads):
            if decay:
                p.data *= 1.0 - lr * decay  # decoupled: never seen by the moments
            self._update(p, g, state, lr)
            bump = getattr(p, "_bump_version", None)
            if bump is not None:
                bump()  # a backward through a graph that saved the old value must fail

    def _clip_gradients(self, grads: list) -> list:
        """Clipped copies (new arrays) of ``grads``; the originals are left untouched."""
        if self.clipvalue is not None:
            grads = [xp.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        if self.clipnorm is not None:
            clipped = []
            for g in grads:
                coef = clip_coefficient(grad_norm([g]), self.clipnorm)
                clipped.append(g * coef if coef < 1.0 else g)
            grads = clipped
        if self.global_clipnorm is not None and grads:
            coef = clip_coefficient(grad_norm(grads), self.global_clipnorm)
            if coef < 1.0:
                grads = [g * coef for g in grads]
        return grads

    def _buffers(self, param: Tensor, count: int) -> list[np.ndarray]:
        """``count`` reusable work arrays shaped like ``param``: no temporaries per step."""
        bufs = self._scratch.get(id(param))
        data = param.data
        if (
            bufs is None
            or len(bufs) < count
            or bufs[0].shape != data.shape
            or bufs[0].dtype != data.dtype
        ):
            bufs = self._scratch[id(param)] = [xp.empty_like(data) for _ in range(count)]
        return bufs

    def _advance_moments(
        self,
        param: Tensor,
        grad: np.ndarray,
        state: dict,
        scratch: np.ndarray,
        first: tuple[str, float] | None = None,
        second: tuple[str, float] | None = None,
        extra: tuple[str, ...] = (),
    ) -> int:
        """Count the step and advance the moving averages of ``grad`` in ``state``, in place.

        ``first=(key, β)``: ``state[key] ← βa + (1−β)g`` (the mean of ``g``, Adam's ``m``);
        ``second=(key, β)``: ``state[key] ← βs + (1−β)g²`` (the mean of ``g²``, Adam's ``v``).
        At the first step ``state`` gets ``"step"`` and zero buffers (the parameter's shape and
        dtype) for these keys and for ``extra`` (buffers the caller updates itself). ``scratch``
        is a work array from :meth:`_buffers`. Returns the step count ``t`` (1 at the first step).
        """
        keys = [spec[0] for spec in (first, second) if spec is not None]
        self._count_step(param, state, (*keys, *extra))
        if first is not None:
            _first_moment_(state[first[0]], grad, first[1], scratch)
        if second is not None:
            _second_moment_(state[second[0]], grad, second[1], scratch)
        return state["step"]

    @staticmethod
    def _count_step(param: Tensor, state: dict, keys: tuple[str, ...]) -> int:
        """Count the step in ``state`` (``"step"``, 1 after the first) and, at the first, give it
        zero buffers shaped like ``param`` for ``keys``. Returns the step count."""
        if not state:
            state["step"] = 0
            for key in keys:
                state[key] = xp.zeros_like(param.data)
        state["step"] += 1
        return state["step"]

    def _update(self, param: Tensor, grad: np.ndarray, state: dict, lr: float) -> None:
        raise NotImplementedError

    # --------------------------------------------------------------- persistence
    def _learning_rate_config(self):
        lr = self._learning_rate
        if isinstance(lr, float):
            return lr
        spec = _registry.serialize("learning-rate schedule", lr, schedules._SCHEDULES, False)
        return lr if spec is None else spec  # a custom callable: in memory only

    def _config(self, **specific) -> dict:
        config = {"learning_rate": self._learning_rate_config(), **specific}
        for key in _COMMON_OPTIONS:
            value = getattr(self, key)
            if value is not None:  # only set options: keeps configs short and old ones valid
                config[key] = value
        return config

    def get_config(self) -> dict:
        """Constructor arguments (JSON-able for built-in schedules); ``cls(**config)`` rebuilds."""
        return self._config()

    def state_dict(self) -> dict:
        """Everything needed to resume: step counts, buffers, hyper-parameters and the schedule
        (its position is ``iterations``). Arrays are copies."""
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
        if "config" in state_dict:
            config = dict(state_dict["config"])
            self._set_options({k: config.pop(k, None) for k in _COMMON_OPTIONS})
            for key, value in config.items():
                setattr(self, key, value)
        self.iterations = int(state_dict["iterations"])
        self.state = [
            {k: (np.array(v, copy=True) if isinstance(v, np.ndarray) else v) for k, v in s.items()}
            for s in states
        ]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


# the base __init__ too: a subclass without its own __init__ (SignSGD(lr=0.5)) inherits it
Optimizer.__init__ = _canonical_arguments(Optimizer.__init__)


def _check_number(name: str, value, owner: str, low: float = 0.0, high: float = math.inf):
    """``value`` as a float in ``[low, high]``; NaN and ±inf are always errors."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        expected = f">= {low}" if high == math.inf else f"in [{low}, {high}]"
        raise ValueError(f"{owner}: {name} must be a finite number {expected}, got {value}")
    if not low <= value <= high:
        raise ValueError(f"{owner}: {name} must be in [{low}, {high}], got {value}")
    return value


def _label(index: int, variable: Tensor) -> str:
    return f"{index} ({variable.name!r})" if variable.name else f"{index}"


def _gradient_array(grad, variable: Tensor, owner: str, index: int) -> np.ndarray | None:
    """``grad`` (array, Tensor or ``None``) as an array of ``variable``'s dtype and shape.

    Errors name the optimizer (``owner``) and the variable (``index`` and name). A gradient of
    another float dtype is cast to the variable's, as ``.grad`` always has the leaf's dtype.
    """
    if grad is None:
        return None
    if isinstance(grad, Tensor):
        grad = grad.data
    array = xp.asarray(grad)
    if array.dtype.kind not in "iuf" or array.shape != variable.shape:
        what = f"{owner}: the gradient of variable {_label(index, variable)}"
        if array.dtype.kind not in "iuf":
            raise TypeError(f"{what} has dtype {array.dtype}, expected a numeric array")
        raise ValueError(f"{what} has shape {array.shape}, the variable has shape {variable.shape}")
    return array if array.dtype == variable.dtype else array.astype(variable.dtype)


def _check_fraction(name: str, value, owner: str) -> float:
    """A decay rate in ``[0, 1)``: 1 would never forget (and divide by zero in corrections)."""
    value = _check_number(name, value, owner, 0.0, 1.0)
    if value == 1.0:
        raise ValueError(f"{owner}: {name} must be in [0, 1), got {value}")
    return value


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum, PyTorch's formulas.

    ``v ← μ v + (1 − dampening) g`` (``v = g`` at the first step); ``p ← p − lr · v``, or
    ``p ← p − lr · (g + μ v)`` with ``nesterov=True``. Without momentum: ``p ← p − lr · g``.
    Full-batch, stochastic or minibatch descent is chosen by ``fit(batch_size=...)``.
    ``dampening`` is PyTorch's (Keras has none).

    Example:
        >>> x, y = np.random.rand(8, 4).astype("float32"), np.random.rand(8, 1).astype("float32")
        >>> model = ember.models.Sequential([ember.layers.Input(shape=(4,)), ember.layers.Dense(1)])
        >>> opt = ember.optimizers.SGD(model.parameters(), learning_rate=0.1, momentum=0.9)
        >>> loss = ember.losses.mean_squared_error(y, model(x)).mean()
        >>> opt.zero_grad(); loss.backward(); opt.step()
        >>> opt.iterations
        1
    """

    def __init__(
        self,
        params=None,
        learning_rate: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        dampening: float = 0.0,
        **kwargs,
    ):
        super().__init__(params, learning_rate, **kwargs)
        self.momentum = _check_number("momentum", momentum, "SGD", 0.0, 1.0)
        self.dampening = _check_number("dampening", dampening, "SGD", 0.0, 1.0)
        if nesterov and self.momentum == 0:
            raise ValueError("SGD: nesterov=True needs a momentum > 0")
        if nesterov and self.dampening != 0:
            raise ValueError("SGD: nesterov=True needs dampening=0")
        self.nesterov = bool(nesterov)

    def _update(self, param, grad, state, lr):
        (scratch,) = self._buffers(param, 1)
        update = grad
        if self.momentum:
            velocity = state.get("momentum_buffer")
            if velocity is None:
                velocity = state["momentum_buffer"] = xp.array(grad, copy=True)
            else:
                velocity *= self.momentum
                if self.dampening:
                    xp.multiply(grad, 1.0 - self.dampening, out=scratch)
                    velocity += scratch
                else:
                    velocity += grad
            if self.nesterov:
                xp.multiply(velocity, self.momentum, out=scratch)
                scratch += grad
                update = scratch
            else:
                update = velocity
        xp.multiply(update, lr, out=scratch)
        param.data -= scratch

    def get_config(self):
        config = self._config(momentum=self.momentum, nesterov=self.nesterov)
        if self.dampening:
            config["dampening"] = self.dampening
        return config


class RMSprop(Optimizer):
    """RMSprop (Hinton), PyTorch's formula; ε **outside** the square root.

    ``s ← ρ s + (1−ρ) g²``; ``d = √s + ε`` (centered: ``ḡ ← ρ ḡ + (1−ρ) g``,
    ``d = √(s − ḡ²) + ε``); without momentum ``p ← p − lr · g / d``, with momentum
    ``b ← μ b + g / d``, ``p ← p − lr · b``.

    Epsilon convention: PyTorch adds ε after the square root; TensorFlow/Keras add it inside
    (``√(s + ε)``). The two agree for tiny ε but differ hugely for ε = 1 (catalogue N12). The
    default ε is Keras' ``1e-7`` (PyTorch's is ``1e-8``); ``rho`` is PyTorch's ``alpha``.

    Example:
        >>> model = ember.models.Sequential([ember.layers.Input(shape=(4,)), ember.layers.Dense(1)])
        >>> opt = ember.optimizers.RMSprop(model.parameters(), learning_rate=1e-3, centered=True)
    """

    def __init__(
        self,
        params=None,
        learning_rate: float = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        **kwargs,
    ):
        super().__init__(params, learning_rate, **kwargs)
        owner = type(self).__name__
        self.rho = _check_fraction("rho", rho, owner)
        self.momentum = _check_number("momentum", momentum, owner, 0.0, 1.0)
        self.epsilon = _check_number("epsilon", epsilon, owner)
        self.centered = bool(centered)

    def _update(self, param, grad, state, lr):
        scratch, denom = self._buffers(param, 2)
        self._advance_moments(
            param,
            grad,
            state,
            scratch,
            first=("grad_avg", self.rho) if self.centered else None,
            second=("square_avg", self.rho),
            extra=("momentum_buffer",) if self.momentum else (),
        )
        square_avg = state["square_avg"]
        if self.centered:
            grad_avg = state["grad_avg"]
            xp.multiply(grad_avg, grad_avg, out=denom)
            xp.subtract(square_avg, denom, out=denom)
            xp.maximum(denom, 0.0, out=denom)  # rounding can make s − ḡ² a hair below 0
            xp.sqrt(denom, out=denom)
        else:
            xp.sqrt(square_avg, out=denom)
        denom += self.epsilon
        xp.divide(grad, denom, out=scratch)
        if self.momentum:
            buf = state["momentum_buffer"]
            buf *= self.momentum
            buf += scratch
            xp.multiply(buf, lr, out=scratch)
        else:
            scratch *= lr
        param.data -= scratch

    def get_config(self):
        return self._config(
            rho=self.rho, momentum=self.momentum, epsilon=self.epsilon, centered=self.centered
        )


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.), PyTorch's formula; ε **outside** the square root.

    ``s ← s + g²`` (``s`` starts at ``initial_accumulator_value``); ``p ← p − lr · g / (√s + ε)``.

    Epsilon convention: PyTorch's (after the square root); Keras puts it inside, ``√(s + ε)``.
    Defaults are Keras' (``initial_accumulator_value=0.1``, ``epsilon=1e-7``); PyTorch's are
    ``0`` and ``1e-10``. The accumulated ``s`` only grows, so the effective rate decays for good.

    Example:
        >>> model = ember.models.Sequential([ember.layers.Input(shape=(4,)), ember.layers.Dense(1)])
        >>> opt = ember.optimizers.Adagrad(model.parameters(), learning_rate=0.1)
    """

    def __init__(
        self,
        params=None,
        learning_rate: float = 0.001,
        initial_accumulator_value: float = 0.1,
        epsilon: float = 1e-7,
        **kwargs,
    ):
        super().__init__(params, learning_rate, **kwargs)
        owner = type(self).__name__
        self.initial_accumulator_value = _check_number(
            "initial_accumulator_value", initial_accumulator_value, owner
        )
        self.epsilon = _check_number("epsilon", epsilon, owner)

    def _update(self, param, grad, state, lr):
        if not state:
            state["step"] = 0
            state["sum"] = xp.full_like(param.data, self.initial_accumulator_value)
        state["step"] += 1
        scratch, denom = self._buffers(param, 2)
        total = state["sum"]
        xp.multiply(grad, grad, out=scratch)
        total += scratch
        xp.sqrt(total, out=denom)
        denom += self.epsilon
        xp.divide(grad, denom, out=scratch)
        scratch *= lr
        param.data -= scratch

    def get_config(self):
        return self._config(
            initial_accumulator_value=self.initial_accumulator_value, epsilon=self.epsilon
        )


class Adadelta(Optimizer):
    """Adadelta (Zeiler), PyTorch's formula; ε **inside** both square roots (as in Keras).

    ``s ← ρ s + (1−ρ) g²``; ``Δ = √(u + ε) / √(s + ε) · g``; ``u ← ρ u + (1−ρ) Δ²``;
    ``p ← p − lr · Δ``.

    The default ``learning_rate`` is Keras' ``0.001``; PyTorch's is ``1.0`` (the paper has no
    learning rate), so pass ``learning_rate=1.0`` to reproduce ``torch.optim.Adadelta()``.

    Example:
        >>> model = ember.models.Sequential([ember.layers.Input(shape=(4,)), ember.layers.Dense(1)])
        >>> opt = ember.optimizers.Adadelta(model.parameters(), learning_rate=1.0)
    """

    def __init__(
        self,
        params=None,
        learning_rate: float = 0.001,
        rho: float = 0.95,
        epsilon: float = 1e-7,
        **kwargs,
    ):
        super().__init__(params, learning_rate, **kwargs)
        owner = type(self).__name__
        self.rho = _check_fraction("rho", rho, owner)
        self.epsilon = _check_number("epsilon", epsilon, owner)

    def _update(self, param, grad, state, lr):
        scratch, delta = self._buffers(param, 2)
        self._advance_moments(
            param, grad, state, scratch, second=("square_avg", self.rho), extra=("acc_delta",)
        )
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        xp.add(acc_delta, self.epsilon, out=delta)
        xp.sqrt(delta, out=delta)
        xp.add(square_avg, self.epsilon, out=scratch)
        xp.sqrt(scratch, out=scratch)
        delta /= scratch
        delta *= grad
        _second_moment_(acc_delta, delta, self.rho, scratch)  # u ← ρu + (1−ρ)Δ²
        delta *= lr
        param.data -= delta

    def get_config(self):
        return self._config(rho=self.rho, epsilon=self.epsilon)


class Adam(Optimizer):
    """Adam (Kingma & Ba) with PyTorch's formula and bias correction.

    ``m ← β₁m + (1−β₁)g``, ``v ← β₂v + (1−β₂)g²``,
    ``p ← p − lr/(1−β₁ᵗ) · m / (√v / √(1−β₂ᵗ) + ε)``; with ``amsgrad=True`` ``v`` in the
    denominator is replaced by its running maximum.

    ε is added after the square root of the bias-corrected ``v`` (PyTorch's placement, the ε of
    the paper's Algorithm 1). The default ε is Keras' ``1e-7``; ``epsilon=1e-8`` reproduces
    ``torch.optim.Adam`` exactly.

    ``weight_decay`` is decoupled (``p ← p·(1 − lr·wd)``, Keras 3): ``Adam(weight_decay=λ)``
    equals :class:`AdamW` and ``torch.optim.AdamW``, *not* ``torch.optim.Adam(weight_decay=λ)``,
    which adds ``λp`` to the gradient (an L2 penalty; in Ember ``kernel_regularizer=L2(λ/2)``).

    Example:
        >>> model = ember.models.Sequential([ember.layers.Input(shape=(4,)), ember.layers.Dense(1)])
        >>> model.compile(optimizer=ember.optimizers.Adam(learning_rate=1e-3), loss="mse")
    """

    def __init__(
        self,
        params=None,
        learning_rate: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **kwargs,
    ):
        super().__init__(params, learning_rate, **kwargs)
        owner = type(self).__name__
        # β = 1 would make the bias correction 1 − βᵗ divide by zero at every step
        self.beta_1 = _check_fraction("beta_1", beta_1, owner)
        self.beta_2 = _check_fraction("beta_2", beta_2, owner)
        self.epsilon = _check_number("epsilon", epsilon, owner)
        self.amsgrad = bool(amsgrad)

    def _update(self, param, grad, state, lr):
        fast = None if self.amsgrad else kernels.get("optimizers")
        if fast is not None and fast.fits(param.data, *(state.get(k, param.data) for k in "mv")):
            # one fused pass, bit-identical to the NumPy update below
            t = self._count_step(param, state, ("m", "v"))
            fast.adam(param.data, grad, state["m"], state["v"], self.beta_1, self.beta_2,
                      self.epsilon, lr, t)  # fmt: skip
            return
        (scratch,) = self._buffers(param, 1)
        t = self._advance_moments(
            param,
            grad,
            state,
            scratch,
            first=("m", self.beta_1),
            second=("v", self.beta_2),
            extra=("v_max",) if self.amsgrad else (),
        )
        m, v = state["m"], state["v"]
        if self.amsgrad:
            v = xp.maximum(state["v_max"], v, out=state["v_max"])
        bias1 = 1 - self.beta_1**t
        bias2_sqrt = math.sqrt(1 - self.beta_2**t)
        xp.sqrt(v, out=scratch)
        scratch /= bias2_sqrt
        scratch += self.epsilon
        xp.divide(m, scratch, out=scratch)
        scratch *= lr / bias1
        param.data -= scratch

    def get_config(self):
        config = self._config(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)
        if self.amsgrad:
            config["amsgrad"] = True
        return config


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), ``torch.optim.AdamW``'s formula.

    Each step first shrinks ``p ← p·(1 − lr·weight_decay)``, then applies the :class:`Adam`
    update (ε after the square root, default ``1e-7``). The default ``weight_decay`` is Keras'
    ``0.004`` (PyTorch's is ``0.01``).

    Example:
        >>> model = ember.models.Sequential([ember.layers.Input(shape=(4,)), ember.layers.Dense(1)])
        >>> opt = ember.optimizers.AdamW(model.parameters(), learning_rate=1e-3, weight_decay=0.01)
    """

    def __init__(
        self,
        params=None,
        learning_rate: float = 0.001,
        weight_decay: float = 0.004,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **kwargs,
    ):
        super().__init__(
            params,
            learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            amsgrad=amsgrad,
            weight_decay=weight_decay,
            **kwargs,
        )


class Adamax(Optimizer):
    """Adamax (the infinity-norm Adam variant), ``torch.optim.Adamax``'s formula.

    ``m ← β₁m + (1−β₁)g``, ``u ← max(β₂u, |g| + ε)``, ``p ← p − lr/(1−β₁ᵗ) · m / u``.

    Epsilon convention: PyTorch's, ε inside the max; Keras uses ``max(β₂u, |g|)`` and adds ε to
    the denominator ``u + ε``. Default ε is Keras' ``1e-7`` (PyTorch's ``1e-8``).

    Example:
        >>> model = ember.models.Sequential([ember.layers.Input(shape=(4,)), ember.layers.Dense(1)])
        >>> opt = ember.optimizers.Adamax(model.parameters(), learning_rate=2e-3)
    """

    def __init__(
        self,
        params=None,
        learning_rate: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        **kwargs,
    ):
        super().__init__(params, learning_rate, **kwargs)
        owner = type(self).__name__
        self.beta_1 = _check_fraction("beta_1", beta_1, owner)
        self.beta_2 = _check_fraction("beta_2", beta_2, owner)
        self.epsilon = _check_number("epsilon", epsilon, owner)

    def _update(self, param, grad, state, lr):
        (scratch,) = self._buffers(param, 1)
        t = self._advance_moments(
            param, grad, state, scratch, first=("m", self.beta_1), extra=("u",)
        )
        m, u = state["m"], state["u"]
        xp.abs(grad, out=scratch)
        scratch += self.epsilon
        u *= self.beta_2
        xp.maximum(u, scratch, out=u)
        xp.divide(m, u, out=scratch)
        scratch *= lr / (1 - self.beta_1**t)
        param.data -= scratch

    def get_config(self):
        return self._config(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)


class Nadam(Optimizer):
    """Nadam (Dozat: Adam with Nesterov momentum), ``torch.optim.NAdam``'s formula.

    With the momentum schedule ``μₜ = β₁(1 − ½·0.96^(t·ψ))`` (``ψ = momentum_decay = 0.004``,
    the constant Keras also uses) and ``Πₜ = μ₁⋯μₜ``:
    ``m ← β₁m + (1−β₁)g``, ``v ← β₂v + (1−β₂)g²``, ``d = √(v/(1−β₂ᵗ)) + ε``,
    ``p ← p − lr(1−μₜ)/(1−Πₜ) · g/d − lr·μₜ₊₁/(1−Πₜμₜ₊₁) · m/d``.

    PyTorch's formula is chosen (parity with ``torch.optim.NAdam``); Keras' differs only in
    keeping one ``Π`` for all variables. ε after the square root, default Keras' ``1e-7``
    (PyTorch's ``1e-8``); the default ``learning_rate`` is Keras' ``0.001`` (PyTorch's ``2e-3``).

    Example:
        >>> model = ember.models.Sequential([ember.layers.Input(shape=(4,)), ember.layers.Dense(1)])
        >>> opt = ember.optimizers.Nadam(model.parameters(), learning_rate=2e-3)
    """

    def __init__(
        self,
        params=None,
        learning_rate: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        momentum_decay: float = 0.004,
        **kwargs,
    ):
        super().__init__(params, learning_rate, **kwargs)
        owner = type(self).__name__
        self.beta_1 = _check_fraction("beta_1", beta_1, owner)
        self.beta_2 = _check_fraction("beta_2", beta_2, owner)
        self.epsilon = _check_number("epsilon", epsilon, owner)
        self.momentum_decay = _check_number("momentum_decay", momentum_decay, owner)

    def _update(self, param, grad, state, lr):
        scratch, denom = self._buffers(param, 2)
        t = self._advance_moments(
            param, grad, state, scratch, first=("m", self.beta_1), second=("v", self.beta_2)
        )
        m, v = state["m"], state["v"]
        mu = self.beta_1 * (1.0 - 0.5 * 0.96 ** (t * self.momentum_decay))
        mu_next = self.beta_1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * self.momentum_decay))
        mu_product = state["mu_product"] = state.get("mu_product", 1.0) * mu  # Πₜ = μ₁⋯μₜ
        xp.divide(v, 1 - self.beta_2**t, out=denom)
        xp.sqrt(denom, out=denom)
        denom += self.epsilon
        xp.divide(grad, denom, out=scratch)
        scratch *= lr * (1.0 - mu) / (1.0 - mu_product)
        param.data -= scratch
        xp.divide(m, denom, out=scratch)
        scratch *= lr * mu_next / (1.0 - mu_product * mu_next)
        param.data -= scratch

    def get_config(self):
        config = self._config(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)
        if self.momentum_decay != 0.004:
            config["momentum_decay"] = self.momentum_decay
        return config


_OPTIMIZERS = {
    "sgd": SGD,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
    "adadelta": Adadelta,
    "adam": Adam,
    "adamw": AdamW,
    "adamax": Adamax,
    "nadam": Nadam,
}


def get(identifier) -> Optimizer:
    """Resolve a name (``"adam"``, ``"rmsprop"``, … with Keras defaults), a
    :func:`serialize` dict, or pass an :class:`Optimizer` through.

    Example:
        >>> ember.optimizers.get("adam")
        Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-07)
        >>> ember.optimizers.get({"name": "sgd", "config": {"learning_rate": 0.1}})
        SGD(learning_rate=0.1, momentum=0.0, nesterov=False)
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        return lookup("optimizer", identifier, _OPTIMIZERS)()
    if isinstance(identifier, dict) and "name" in identifier:
        return deserialize(identifier)
    raise TypeError(f"optimizer must be a name such as 'adam' or an Optimizer, got {identifier!r}")


def serialize(optimizer: Optimizer) -> dict:
    """A built-in optimizer's name and hyper-parameters (not its slot state).

    Example:
        >>> ember.optimizers.serialize(ember.optimizers.SGD(learning_rate=0.1, momentum=0.9))
        {'name': 'sgd', 'config': {'learning_rate': 0.1, 'momentum': 0.9, 'nesterov': False}}
    """
    return _registry.serialize("optimizer", optimizer, _OPTIMIZERS)


def deserialize(spec: dict) -> Optimizer:
    """A fresh optimizer from :func:`serialize`'s output.

    Example:
        >>> ember.optimizers.deserialize({"name": "sgd", "config": {"learning_rate": 0.1}})
        SGD(learning_rate=0.1, momentum=0.0, nesterov=False)
    """
    return _registry.deserialize("optimizer", spec, _OPTIMIZERS)
