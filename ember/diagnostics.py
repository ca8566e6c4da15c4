"""Gradient health as data: per-layer gradient norms, update sizes, dead and saturated units.

Two entry points record the same per-layer numbers:

* :func:`diagnose` — one shot on one batch, without changing the model: returns a
  :class:`HealthReport`;
* :class:`GradientHealth` — a callback recording them during ``fit`` every ``every`` batches.

For each layer with trainable weights (in the order the forward pass calls them):

* the **gradient norm** ``‖g‖`` of each weight and of the layer (all its weights together), and
  its ratio to the gradient norm of the *output layer* (the last layer with weights the forward
  pass calls): a ratio orders of magnitude below 1 in the first layers is a vanishing gradient;
* the **weight norm** ``‖w‖`` and the **update-to-weight ratio** ``‖Δw‖ / ‖w‖``, the relative
  size of one optimizer step. The usual rule of thumb (Karpathy's) wants it near ``1e-3``; far
  above ``1e-2`` the learning rate is too high. In :func:`diagnose` the update is *estimated
  without changing the model*: a dry run of the model's optimizer — a copy of it, with copies of
  its per-weight state (momenta, Adam's moments, the step count) — takes one step on copies of
  the weights, and ``Δw`` is the copy's change. For plain SGD that is exactly
  ``lr·‖g‖/‖w‖``; for an adaptive optimizer it is the step the optimizer would really take next
  (Adam's first step moves every entry by about ``lr``, whatever the gradient's size), with its
  clipping, weight decay and learning-rate schedule. Without an optimizer (a model not compiled)
  the SGD formula is used with the ``learning_rate`` given. The callback measures the update
  actually applied (the weights before and after the step).

For each layer whose output is a ReLU, sigmoid or tanh (``Dense(..., activation="relu")``,
``Activation("sigmoid")``, ``ReLU()``, convolutions with an activation…):

* the **dead fraction**: the share of ReLU units whose output is 0 for every sample of the
  batch (a unit is one feature of the last axis — a channel of a convolution, whose positions
  count as samples);
* the **saturated fraction**: the share of sigmoid/tanh units that are saturated, i.e. whose
  output lies within ``saturation_margin`` (a fraction of the output range, default 0.025: below
  0.025 or above 0.975 for a sigmoid, ``|t| > 0.95`` for a tanh, where the derivative is under a
  tenth of its peak) of a bound for at least ``saturation_samples`` (default 90 %) of the
  samples;
* the mean and standard deviation of its outputs.

Layer outputs are read without changing any other code: each layer's ``call`` is wrapped on the
instance (``layer.__dict__["call"]``) for the one forward pass and restored afterwards.

Example:
    >>> ember.manual_seed(0)
    >>> model = ember.Sequential([ember.Input(shape=(4,)),
    ...                           ember.layers.Dense(8, activation="relu", name="hidden"),
    ...                           ember.layers.Dense(1, name="out")])
    >>> model.compile(optimizer=ember.optimizers.SGD(learning_rate=10.0), loss="mse")
    >>> x = np.random.default_rng(0).normal(size=(64, 4))
    >>> report = ember.diagnostics.diagnose(model, x, x[:, :1])
    >>> report.flags["learning_rate_too_high"]
    ['hidden', 'out']
    >>> print(report.findings[0])
    layer hidden: update-to-weight ratio 4.99 is above 0.01 (...) — the learning rate (10) is ...
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ember import activations as activations_module
from ember import losses as losses_module
from ember import tree
from ember.callbacks import Callback
from ember.layers.activation import ReLU
from ember.layers.base import Layer
from ember.models.compile_utils import add_penalties
from ember.tensor import Tensor, get_rng_state, grad, no_grad, set_rng_state
from ember.variables import Parameter

__all__ = ["diagnose", "HealthReport", "LayerHealth", "WeightHealth", "GradientHealth"]

FLAG_KINDS = ("vanishing", "exploding", "learning_rate_too_high", "dead_relu", "saturation")
_BOUNDED = ("sigmoid", "tanh")


# ---------------------------------------------------------------------------- thresholds
@dataclass(frozen=True)
class _Thresholds:
    """The limits the findings use (documented on :func:`diagnose`)."""

    vanishing_ratio: float = 1e-3
    exploding_ratio: float = 1e3
    exploding_norm: float = 1e4
    max_update_ratio: float = 1e-2
    dead_fraction: float = 0.25
    saturated_fraction: float = 0.25
    saturation_margin: float = 0.025
    saturation_samples: float = 0.9


_FRACTIONS = ("dead_fraction", "saturated_fraction", "saturation_samples")


def _thresholds(owner: str, values: dict) -> _Thresholds:
    """Check every threshold (a finite number > 0; fractions in (0, 1]; the margin below 0.5)."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"{owner}: {name} must be a number, got {type(value).__name__} "
                            f"{value!r}")
        value = float(value)  # NaN fails every comparison below
        if name == "saturation_margin":
            ok, expected = 0.0 < value < 0.5, "in (0, 0.5)"
        elif name in _FRACTIONS:
            ok, expected = 0.0 < value <= 1.0, "in (0, 1]"
        else:
            ok, expected = 0.0 < value < math.inf, "a finite number > 0"
        if not ok:
            raise ValueError(f"{owner}: {name} must be {expected}, got {value!r}")
    return _Thresholds(**{k: float(v) for k, v in values.items()})


# ---------------------------------------------------------------------------- records
@dataclass
class WeightHealth:
    """One trainable weight of a layer: ``name`` is ``"layer/weight"``.

    ``update_ratio`` is ``update_norm / weight_norm`` (NaN for an all-zero weight, such as a
    bias at initialization); the update fields are ``None`` when no update could be estimated.
    """

    name: str
    shape: tuple
    grad_norm: float
    weight_norm: float
    update_norm: float | None = None
    update_ratio: float | None = None


@dataclass
class LayerHealth:
    """The numbers of one layer; fields that do not apply are ``None``.

    ``grad_ratio`` is the layer's gradient norm over the output layer's. ``activation`` is
    ``"relu"``, ``"sigmoid"``, ``"tanh"`` or ``None`` (another or no activation);
    ``dead_fraction`` applies to ReLU layers, ``saturated_fraction`` to sigmoid/tanh ones, and
    ``units`` is the number of units (features of the output's last axis).
    """

    name: str
    type: str
    activation: str | None = None
    grad_norm: float | None = None
    grad_ratio: float | None = None
    weight_norm: float | None = None
    update_norm: float | None = None
    update_ratio: float | None = None
    units: int | None = None
    dead_fraction: float | None = None
    saturated_fraction: float | None = None
    activation_mean: float | None = None
    activation_std: float | None = None
    weights: list[WeightHealth] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The fields as a dict (weights as a list of dicts)."""
        return asdict(self)


@dataclass
class HealthReport:
    """Per-layer numbers (:attr:`layers`, in forward order) and what they mean.

    ``findings`` are plain sentences with the numbers; ``flags`` maps each kind of problem
    (``"vanishing"``, ``"exploding"``, ``"learning_rate_too_high"``, ``"dead_relu"``,
    ``"saturation"``) to the names of the layers showing it. ``update_rule`` says how the
    update sizes were obtained. ``step``/``epoch``/``batch`` locate a record of
    :class:`GradientHealth` (``None`` for :func:`diagnose`).

    Example:
        >>> report = HealthReport(layers=[LayerHealth("dense", "Dense", grad_norm=0.5)])
        >>> report.layer("dense").grad_norm, report.healthy
        (0.5, True)
    """

    layers: list[LayerHealth]
    findings: list[str] = field(default_factory=list)
    flags: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in FLAG_KINDS})
    loss: float | None = None
    learning_rate: float | None = None
    update_rule: str = ""
    thresholds: dict = field(default_factory=dict)
    step: int | None = None
    epoch: int | None = None
    batch: int | None = None

    @property
    def healthy(self) -> bool:
        """True when no layer is flagged."""
        return not any(self.flags.values())

    def layer(self, name: str) -> LayerHealth:
        """The record of the layer called ``name``."""
        for record in self.layers:
            if record.name == name:
                return record
        known = ", ".join(r.name for r in self.layers)
        raise KeyError(f"HealthReport.layer: no layer named {name!r}; the layers are {known}")

    def to_dict(self) -> dict:
        """Everything as plain Python values, for ``json.dumps`` (which writes NaN as ``NaN``)."""
        out = {k: v for k, v in asdict(self).items() if k != "layers"}
        out["layers"] = [record.to_dict() for record in self.layers]
        return out

    def __str__(self) -> str:
        header = ("layer", "type", "activation", "grad norm", "ratio to out", "weight norm",
                  "update/weight", "dead", "saturated")
        rows = [header]
        for r in self.layers:
            rows.append((
                r.name, r.type, r.activation or "-", _num(r.grad_norm), _num(r.grad_ratio),
                _num(r.weight_norm), _num(r.update_ratio), _percent(r.dead_fraction),
                _percent(r.saturated_fraction),
            ))
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                 for row in rows]
        if self.loss is not None:
            lines.append(f"loss: {_num(self.loss)}")
        if self.update_rule:
            lines.append(f"updates: {self.update_rule}")
        lines.append("findings:" if self.findings else "findings: none (no layer is flagged)")
        lines.extend(f"- {sentence}" for sentence in self.findings)
        return "\n".join(lines)


def _num(value) -> str:
    if value is None:
        return "-"
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    if value == 0.0:
        return "0"
    if 1e-3 <= abs(value) < 1e4:
        return f"{value:.3g}"
    return f"{value:.1e}"


def _percent(value) -> str:
    return "-" if value is None else f"{100.0 * value:.0f} %"


def _norm(array) -> float:
    """The Euclidean norm, in float64 (a float32 square of a large gradient would overflow)."""
    flat = np.asarray(array, dtype=np.float64).reshape(-1)
    return math.sqrt(float(np.dot(flat, flat)))


def _combined(norms: list[float]) -> float:
    return math.sqrt(sum(n * n for n in norms))


# ---------------------------------------------------------------------------- layers and outputs
def _activation_kind(layer: Layer) -> str | None:
    """``"relu"``/``"sigmoid"``/``"tanh"`` when the layer's output is that function's."""
    if isinstance(layer, ReLU):
        plain = layer.negative_slope == 0.0 and layer.threshold == 0.0
        return "relu" if plain else None
    # Recurrent cells (and transformer blocks) carry an `activation` that is not their output's.
    fn = layer.__dict__.get("activation")
    if fn is None or "recurrent_activation" in layer.__dict__ or not callable(fn):
        return None
    name = activations_module.serialize(fn)
    return name if name in ("relu", "sigmoid", "tanh") else None


class _Tracked:
    """A layer under observation: its trainable weights, its activation, its outputs' stats."""

    def __init__(self, layer: Layer, weights: list, kind: str | None):
        self.layer, self.weights, self.kind = layer, weights, kind


def _tracked_layers(model: Layer) -> list[_Tracked]:
    """The layers inside ``model`` with trainable weights of their own or a known activation;
    a weight shared by several layers counts for the first."""
    trainable = {id(p) for p in model.trainable_weights}
    seen: set[int] = set()
    found = []
    for layer in model._all_layers():
        if layer is model:
            continue
        weights = []
        for p in layer._weights:
            if id(p) in trainable and id(p) not in seen:
                seen.add(id(p))
                weights.append(p)
        kind = _activation_kind(layer)
        if weights or kind is not None:
            found.append(_Tracked(layer, weights, kind))
    return found


class _Units:
    """Running statistics of one layer's outputs, per unit, over the calls of one pass."""

    def __init__(self, kind: str | None, limits: _Thresholds, channels_first: bool):
        self.kind, self.limits, self.channels_first = kind, limits, channels_first
        self.count = self.samples = 0
        self.total = self.squares = 0.0
        self.alive = self.saturated = None

    def add(self, out) -> None:
        if not isinstance(out, Tensor) or out.ndim < 2 or out.dtype.kind != "f":
            return
        values = out.data
        if self.channels_first and values.ndim > 2:
            values = np.moveaxis(values, 1, -1)
        flat = values.reshape(-1, values.shape[-1])
        if self.alive is not None and flat.shape[1] != self.alive.shape[0]:
            return  # a shared layer called on another width: its first call's units are kept
        wide = flat.astype(np.float64)
        self.count += wide.size
        self.samples += flat.shape[0]
        self.total += float(wide.sum())
        self.squares += float(np.dot(wide.reshape(-1), wide.reshape(-1)))
        alive = (flat > 0).any(axis=0)
        self.alive = alive if self.alive is None else self.alive | alive
        if self.kind in _BOUNDED:
            saturated = self._saturated(flat).sum(axis=0)
            self.saturated = saturated if self.saturated is None else self.saturated + saturated
        if not self._in_range(flat):
            self.kind = None  # not the activation's range: not that activation's output after all

    def _saturated(self, flat: np.ndarray) -> np.ndarray:
        margin = self.limits.saturation_margin
        if self.kind == "sigmoid":  # range [0, 1]
            return (flat < margin) | (flat > 1.0 - margin)
        return np.abs(flat) > 1.0 - 2.0 * margin  # tanh: range [-1, 1]

    def _in_range(self, flat: np.ndarray) -> bool:
        if self.kind is None or not flat.size:
            return True
        low = -1.0 if self.kind == "tanh" else 0.0
        high = math.inf if self.kind == "relu" else 1.0
        return bool(flat.min() >= low and flat.max() <= high)

    def fill(self, record: LayerHealth) -> None:
        """Write the statistics into ``record``."""
        if not self.count:
            return
        mean = self.total / self.count
        record.activation_mean = mean
        record.activation_std = math.sqrt(max(self.squares / self.count - mean * mean, 0.0))
        record.units = int(self.alive.shape[0])
        record.activation = self.kind
        if self.kind == "relu":
            record.dead_fraction = float(1.0 - self.alive.mean())
        elif self.kind in _BOUNDED:
            share = self.saturated / self.samples
            record.saturated_fraction = float((share >= self.limits.saturation_samples).mean())


class _Capture:
    """Wrap the ``call`` of the tracked layers (on the instances) for one forward pass.

    Records the order of the first calls and the output statistics; ``restore()`` puts every
    layer back as it was (also after an exception, used in a ``finally``).
    """

    def __init__(self, tracked: list[_Tracked], limits: _Thresholds):
        self.tracked = tracked
        self.order: list[int] = []
        self.units = {
            id(t.layer): _Units(t.kind, limits,
                                getattr(t.layer, "data_format", None) == "channels_first")
            for t in tracked
        }
        self._saved: list[tuple[Layer, bool, Any]] = []

    def install(self) -> None:
        for t in self.tracked:
            layer = t.layer
            own = layer.__dict__
            self._saved.append((layer, "call" in own, own.get("call")))
            own["call"] = self._wrapper(layer, layer.call)

    def _wrapper(self, layer: Layer, original):
        key, units, order = id(layer), self.units[id(layer)], self.order

        @functools.wraps(original)  # keeps the signature build() inspects
        def call(*args, **kwargs):
            out = original(*args, **kwargs)
            if key not in order:
                order.append(key)
            units.add(out)
            return out

        return call

    def restore(self) -> None:
        for layer, had, previous in reversed(self._saved):
            if had:
                layer.__dict__["call"] = previous
            else:
                layer.__dict__.pop("call", None)
        self._saved = []

    def ordered(self) -> list[_Tracked]:
        """The tracked layers in the order the forward pass called them (uncalled ones last)."""
        position = {key: i for i, key in enumerate(self.order)}
        last = len(position)
        return sorted(self.tracked, key=lambda t: position.get(id(t.layer), last))


# ---------------------------------------------------------------------------- records from numbers
def _layer_records(ordered: list[_Tracked], capture: _Capture | None, per_weight: dict) -> list:
    """:class:`LayerHealth` records; ``per_weight`` maps ``id(weight)`` to
    ``(grad_norm, weight_norm, update_norm or None)``."""
    records = []
    for t in ordered:
        record = LayerHealth(t.layer.name, type(t.layer).__name__, t.kind)
        for p in t.weights:
            numbers = per_weight.get(id(p))
            if numbers is None:
                continue
            g, w, u = numbers
            ratio = None if u is None else (u / w if w > 0 else math.nan)
            record.weights.append(WeightHealth(f"{t.layer.name}/{p.name or 'weight'}",
                                               tuple(p.shape), g, w, u, ratio))
        if record.weights:
            ws = record.weights
            record.grad_norm = _combined([x.grad_norm for x in ws])
            record.weight_norm = _combined([x.weight_norm for x in ws])
            if all(x.update_norm is not None for x in ws):
                record.update_norm = _combined([x.update_norm for x in ws])
                w = record.weight_norm
                record.update_ratio = record.update_norm / w if w > 0 else math.nan
        if capture is not None:
            capture.units[id(t.layer)].fill(record)
        records.append(record)
    _set_grad_ratios(records)
    return records


def _output_layer(records: list[LayerHealth]) -> LayerHealth | None:
    with_grad = [r for r in records if r.grad_norm is not None]
    return with_grad[-1] if with_grad else None


def _set_grad_ratios(records: list[LayerHealth]) -> None:
    out = _output_layer(records)
    if out is None:
        return
    ref = out.grad_norm
    for r in records:
        if r.grad_norm is not None and math.isfinite(ref) and ref > 0:
            r.grad_ratio = r.grad_norm / ref


# ---------------------------------------------------------------------------- findings
def _findings(records: list[LayerHealth], limits: _Thresholds, learning_rate: float | None,
              note: str = "") -> tuple[list[str], dict[str, list[str]]]:
    """Plain-words sentences (with the numbers) and the flagged layers per kind."""
    findings: list[str] = []
    flags: dict[str, list[str]] = {k: [] for k in FLAG_KINDS}
    _gradient_findings(records, limits, findings, flags)
    _update_findings(records, limits, learning_rate, findings, flags)
    _unit_findings(records, limits, findings, flags)
    if note:
        findings = [f"{sentence} ({note})" for sentence in findings]
    return findings, flags


def _gradient_findings(records, limits, findings, flags) -> None:
    out = _output_layer(records)
    if out is None:
        return
    for r in records:
        if r.grad_norm is not None and not math.isfinite(r.grad_norm):
            findings.append(f"layer {r.name}: the gradient norm is {r.grad_norm} — the gradient "
                            "explodes (or the loss is not finite)")
            flags["exploding"].append(r.name)
    ref = out.grad_norm
    if not (math.isfinite(ref) and ref > 0):
        if ref == 0:
            findings.append(f"the output layer {out.name} has a zero gradient: nothing is learnt "
                            "from this batch (gradient ratios are undefined)")
        return
    vanishing = []
    for i, r in enumerate(records):
        if r.grad_ratio is None or r is out or not math.isfinite(r.grad_norm):
            continue
        if r.grad_ratio < limits.vanishing_ratio:
            vanishing.append(r)
            findings.append(
                f"layer {r.name}: gradient norm {_num(r.grad_norm)} is {_num(r.grad_ratio)} of "
                f"the output layer {out.name}'s ({_num(ref)}) — the gradient vanishes"
                f"{_vanishing_cause(records, i, limits)}"
            )
            flags["vanishing"].append(r.name)
        elif r.grad_ratio > limits.exploding_ratio:
            findings.append(
                f"layer {r.name}: gradient norm {_num(r.grad_norm)} is {_num(r.grad_ratio)} "
                f"times the output layer {out.name}'s ({_num(ref)}), above "
                f"{_num(limits.exploding_ratio)} — the gradient explodes"
            )
            flags["exploding"].append(r.name)
    for r in records:
        if r.grad_norm is not None and math.isfinite(r.grad_norm) and (
            r.grad_norm > limits.exploding_norm and r.name not in flags["exploding"]
        ):
            findings.append(f"layer {r.name}: gradient norm {_num(r.grad_norm)} is above "
                            f"{_num(limits.exploding_norm)} — the gradient explodes")
            flags["exploding"].append(r.name)
    if vanishing:
        first = vanishing[0]
        depth = sum(1 for r in records if r.grad_norm is not None) - 1
        below = [r for r in records if r.grad_norm is not None]
        steps = max(len(below) - 1 - below.index(first), 1)
        rate = ""
        if first.grad_ratio > 0:
            rate = f" (about x{_num(first.grad_ratio ** (1.0 / steps))} per layer)"
        findings.insert(0, (
            f"the gradient vanishes with depth: {len(vanishing)} of {depth} layers below the "
            f"output layer {out.name} get under {_num(limits.vanishing_ratio)} of its gradient "
            f"norm; it falls from {_num(ref)} to {_num(first.grad_norm)} at {first.name}{rate}"
        ))


def _vanishing_cause(records: list[LayerHealth], index: int, limits: _Thresholds) -> str:
    r = records[index]
    if r.saturated_fraction is not None and r.saturated_fraction > limits.saturated_fraction:
        return (f" ({r.activation} saturation: {_percent(r.saturated_fraction)} of its units are "
                "saturated)")
    # The output layer's own activation scales its gradient as much as this layer's: only the
    # layers from this one up to (not including) the output layer shrink the ratio.
    out = _output_layer(records)
    above = [x for x in records[index:] if x is not out]
    sigmoids = sum(1 for x in above if x.activation == "sigmoid")
    saturated = [x.name for x in above if x.saturated_fraction is not None
                 and x.saturated_fraction > limits.saturated_fraction]
    if saturated:
        return f" (saturated layers above it: {', '.join(saturated)})"
    if sigmoids:
        return (f" ({sigmoids} sigmoid layer(s) between it and the output layer: each "
                "multiplies the gradient by at most 0.25)")
    dead = [x.name for x in above if x.dead_fraction is not None
            and x.dead_fraction > limits.dead_fraction]
    if dead:
        return f" (dead ReLUs above it: {', '.join(dead)})"
    return ""


def _update_findings(records, limits, learning_rate, findings, flags) -> None:
    rate = "" if learning_rate is None else f" ({_num(learning_rate)})"
    for r in records:
        ratio = r.update_ratio
        if ratio is None or math.isnan(ratio) or ratio <= limits.max_update_ratio:
            continue
        findings.append(
            f"layer {r.name}: update-to-weight ratio {_num(ratio)} is above "
            f"{_num(limits.max_update_ratio)} (about 1e-3 is the usual healthy size) — the "
            f"learning rate{rate} is too high"
        )
        flags["learning_rate_too_high"].append(r.name)


def _unit_findings(records, limits, findings, flags) -> None:
    margin = limits.saturation_margin
    for r in records:
        if r.dead_fraction is not None and r.dead_fraction > limits.dead_fraction:
            findings.append(
                f"layer {r.name}: {_percent(r.dead_fraction)} of its {r.units} ReLU units are "
                f"dead (output 0 for every sample) — above {_percent(limits.dead_fraction)}; "
                "they pass no gradient (check the biases, the initialization, the learning rate)"
            )
            flags["dead_relu"].append(r.name)
        if r.saturated_fraction is not None and r.saturated_fraction > limits.saturated_fraction:
            bounds = "0 or 1" if r.activation == "sigmoid" else "-1 or 1"
            width = margin if r.activation == "sigmoid" else 2 * margin
            findings.append(
                f"layer {r.name}: {_percent(r.saturated_fraction)} of its {r.units} "
                f"{r.activation} units are saturated (within {_num(width)} of {bounds} for "
                f"{_percent(limits.saturation_samples)} of the samples or more) — above "
                f"{_percent(limits.saturated_fraction)}; their derivative is near 0"
            )
            flags["saturation"].append(r.name)


# ---------------------------------------------------------------------------- updates
def _dry_run_updates(optimizer, variables: list, grads: list, learning_rate: float | None):
    """The update each variable would get from one step, without touching model or optimizer.

    Returns ``(updates or None, learning rate or None, a sentence saying how)``.
    """
    if optimizer is None:
        if learning_rate is None:
            return None, None, "no optimizer and no learning_rate: update sizes not estimated"
        updates = [None if g is None else -learning_rate * np.asarray(g) for g in grads]
        return updates, learning_rate, (f"SGD formula: update = lr·g with lr={_num(learning_rate)}"
                                        " (the model has no optimizer)")
    dry = copy.copy(optimizer)  # shares nothing mutable after the next line
    dry.__dict__.update(params=[], state=[], _scratch={}, _param_owners=[])
    if learning_rate is not None:
        dry.learning_rate = learning_rate
    rate = dry.learning_rate
    index = {id(p): i for i, p in enumerate(optimizer.params)}
    entries, copies = [], []
    for p, g in zip(variables, grads):
        i = index.get(id(p))
        state = copy.deepcopy(optimizer.state[i]) if i is not None else {}
        twin = Parameter(p.data.copy(), name=p.name)
        copies.append(twin)
        entries.append((twin, state, g))
    dry._apply_updates(entries)
    updates = [twin.data - p.data for twin, p in zip(copies, variables)]
    name = type(optimizer).__name__
    return updates, rate, (f"dry run of {name} (learning rate {_num(rate)}): one step of a copy "
                           "of the optimizer and of its state on copies of the weights")


# ---------------------------------------------------------------------------- diagnose
def _check_model(model, owner: str) -> None:
    if not isinstance(model, Layer):
        raise TypeError(f"{owner}: model must be an ember Model or Layer, got "
                        f"{type(model).__name__}")


def _first(data, n: int | None):
    if n is None:
        return data
    return tree.map_structure(lambda a: a[:n], data)


def _batch(owner: str, x, y, batch_size):
    if x is None:
        raise ValueError(f"{owner}: x (a batch of inputs) is required, got None")
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise ValueError(f"{owner}: batch_size must be an integer >= 1 or None, got "
                         f"{batch_size!r}")
    x = tree.map_structure(lambda a: a if isinstance(a, Tensor) else np.asarray(a), x)
    if y is not None:
        y = tree.map_structure(lambda a: a if isinstance(a, Tensor) else np.asarray(a), y)
    for leaf in tree.flatten(x):
        if leaf.ndim == 0 or leaf.shape[0] == 0:
            raise ValueError(f"{owner}: x must hold at least one sample, got an array of shape "
                             f"{tuple(leaf.shape)}")
    return _first(x, batch_size), _first(y, batch_size)


def _check_learning_rate(owner: str, learning_rate):
    if learning_rate is None:
        return None
    if isinstance(learning_rate, bool) or not isinstance(
        learning_rate, (int, float, np.integer, np.floating)
    ) or not math.isfinite(learning_rate) or learning_rate < 0:
        raise ValueError(f"{owner}: learning_rate must be a finite number >= 0 or None, got "
                         f"{learning_rate!r}")
    return float(learning_rate)


def _batch_loss(model, x, y, y_pred, loss, owner: str) -> Tensor:
    if loss is not None:
        value = add_penalties(losses_module.get(loss)(y, y_pred), model.losses)
    elif getattr(model, "compiled", False):
        if y is None and getattr(model, "_compile_loss", None) is not None:
            raise ValueError(f"{owner}: y (the targets) is required by the compiled loss")
        value = model.compute_loss(x, y, y_pred, None, training=True)
    else:
        raise ValueError(f"{owner}: the model is not compiled; compile it (model.compile(...)) "
                         "or pass loss= (a name such as 'mse', a Loss or fn(y_true, y_pred))")
    if value is None:
        raise ValueError(f"{owner}: there is no loss to differentiate: compile(loss=...) or pass "
                         "loss=")
    return value


def diagnose(
    model,
    x,
    y=None,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    *,
    loss=None,
    training: bool = True,
    vanishing_ratio: float = 1e-3,
    exploding_ratio: float = 1e3,
    exploding_norm: float = 1e4,
    max_update_ratio: float = 1e-2,
    dead_fraction: float = 0.25,
    saturated_fraction: float = 0.25,
    saturation_margin: float = 0.025,
    saturation_samples: float = 0.9,
) -> HealthReport:
    """Per-layer gradient health of ``model`` on one batch, without changing the model.

    Runs one forward pass (``training=True`` by default, as in ``fit``) and one backward pass
    on the first ``batch_size`` samples of ``x``/``y`` (all of them when ``None``). The model's
    weights, its non-trainable state (batch-norm statistics), its optimizer and Ember's random
    generator are as before afterwards.

    Args:
        model: a built or buildable ember model; compiled, or give ``loss``.
        x, y: the inputs and targets (arrays, or structures of arrays for several).
        batch_size: how many samples to use (the first ones).
        learning_rate: the rate for the update estimate (default: the optimizer's next rate);
            required for an update estimate when the model has no optimizer.
        loss: a loss name, ``Loss`` or ``fn(y_true, y_pred)`` used instead of the compiled one.
        training: the mode of the forward pass.
        vanishing_ratio: flag a layer whose gradient norm is below this fraction of the output
            layer's (the last layer with weights in the forward pass).
        exploding_ratio, exploding_norm: flag a layer whose gradient norm is above this many
            times the output layer's, or above this absolute value, or not finite.
        max_update_ratio: flag a layer whose update-to-weight ratio ``‖Δw‖/‖w‖`` is above this
            (rule of thumb: about 1e-3 is healthy; above 1e-2 the learning rate is too high).
        dead_fraction: flag a ReLU layer with more than this share of dead units.
        saturated_fraction: flag a sigmoid/tanh layer with more than this share of saturated
            units.
        saturation_margin: an output within this fraction of the range from a bound is
            saturated (0.025: sigmoid below 0.025 or above 0.975, tanh beyond ±0.95).
        saturation_samples: a unit is saturated when it is for at least this share of samples.

    Returns:
        a :class:`HealthReport`.

    Example:
        >>> ember.manual_seed(0)
        >>> model = ember.Sequential(
        ...     [ember.Input(shape=(4,))]
        ...     + [ember.layers.Dense(8, activation="sigmoid") for _ in range(8)]
        ...     + [ember.layers.Dense(1)])
        >>> model.compile(optimizer="adam", loss="mse")
        >>> x = np.random.default_rng(0).normal(size=(64, 4))
        >>> report = ember.diagnostics.diagnose(model, x, x.sum(axis=1, keepdims=True))
        >>> first, last = report.layers[0], report.layers[-1]
        >>> bool(first.grad_norm < 1e-3 * last.grad_norm), first.name in report.flags["vanishing"]
        (True, True)
        >>> print(report.findings[0][:33])
        the gradient vanishes with depth:
    """
    owner = "diagnose"
    _check_model(model, owner)
    limits = _thresholds(owner, dict(
        vanishing_ratio=vanishing_ratio, exploding_ratio=exploding_ratio,
        exploding_norm=exploding_norm, max_update_ratio=max_update_ratio,
        dead_fraction=dead_fraction, saturated_fraction=saturated_fraction,
        saturation_margin=saturation_margin, saturation_samples=saturation_samples,
    ))
    learning_rate = _check_learning_rate(owner, learning_rate)
    x, y = _batch(owner, x, y, batch_size)
    if loss is None and not getattr(model, "compiled", False):
        _batch_loss(model, x, y, None, None, owner)  # raises the "not compiled" error
    rng = get_rng_state()
    if not model.built:
        with no_grad():
            model(x, training=False)  # builds the weights; inference mode changes no state
    frozen = [(p, p.data.copy()) for p in model.non_trainable_weights]
    tracked = _tracked_layers(model)
    variables = model.trainable_weights
    if not variables:
        raise ValueError(f"{owner}: the model has no trainable weights: no gradient to inspect")
    capture = _Capture(tracked, limits)
    capture.install()
    try:
        y_pred = model(x, training=bool(training))
        value = _batch_loss(model, x, y, y_pred, loss, owner)
        grads = grad(value, variables)
    finally:
        capture.restore()
        for p, saved in frozen:  # batch-norm statistics moved in the training-mode pass
            np.copyto(p.data, saved)
        set_rng_state(rng)  # dropout drew from Ember's generator
    optimizer = getattr(model, "optimizer", None)
    updates, rate, rule = _dry_run_updates(optimizer, variables, grads, learning_rate)
    per_weight = {}
    for i, (p, g) in enumerate(zip(variables, grads)):
        u = None if updates is None or updates[i] is None else _norm(updates[i])
        per_weight[id(p)] = (_norm(g), _norm(p.data), u)
    records = _layer_records(capture.ordered(), capture, per_weight)
    findings, flags = _findings(records, limits, rate)
    return HealthReport(records, findings, flags, float(value.data), rate, rule, asdict(limits))


# ---------------------------------------------------------------------------- the callback
class _StepHook:
    """Replaces ``model.train_step`` on the instance while a :class:`GradientHealth` is active."""

    def __init__(self, owner: GradientHealth, model, original):
        self.owner, self.model, self.original = owner, model, original

    def __call__(self, data):
        owner, model = self.owner, self.model
        if owner.model is not model or model.history is not owner._history:
            # A later fit without the callback (the one that installed it raised before
            # on_train_end): step aside for good.
            _remove_step_hook(model, self)
            return self._call_original(data)
        return owner._step(data, self._call_original)

    def _call_original(self, data):
        if self.original is not None:
            return self.original(data)
        return type(self.model).train_step(self.model, data)


def _remove_step_hook(model, hook: _StepHook) -> None:
    if model.__dict__.get("train_step") is hook:
        if hook.original is None:
            del model.__dict__["train_step"]
        else:
            model.__dict__["train_step"] = hook.original


class GradientHealth(Callback):
    """Record per-layer gradient health during ``fit``, every ``every`` training batches.

    Each recorded step gives a :class:`HealthReport` in :attr:`records` (with ``step``, the
    batch counter over all epochs and ``fit`` calls, ``epoch`` and ``batch``): the same numbers
    as :func:`diagnose`, measured on the real step — the gradients the optimizer receives, the
    update it really applies (weights before and after: exact, with momentum, clipping, decay),
    and the outputs of that step's forward pass.

    How the numbers are reached without editing the trainer: callbacks never see the batch, and
    recomputing gradients would double the cost. The callback therefore replaces
    ``model.train_step`` *on the instance* while ``fit`` runs (restored at ``on_train_end``).
    On a recorded step only, inside a ``try/finally`` around the real ``train_step``, it wraps
    the tracked layers' ``call`` (to read their outputs) and the optimizer's ``_apply_updates``
    — the one method that ``apply``, ``apply_gradients`` and ``step`` all go through — to read
    the gradients and the weights before and after the update; everything is restored when the
    step ends, even by an exception, and the other steps run untouched. A custom
    ``train_step`` (a GAN's) is recorded the same way as long as it updates through
    ``model.optimizer``. Should ``fit`` raise before ``on_train_end``, the leftover
    ``train_step`` replacement removes itself at the next ``fit``.

    Args:
        every: record one training batch in ``every`` (the first one included).
        **thresholds: the thresholds of :func:`diagnose` (``vanishing_ratio``,
            ``max_update_ratio``…) used by the records' and :meth:`findings`' flags.

    Example:
        >>> ember.manual_seed(0)
        >>> model = ember.Sequential([ember.Input(shape=(4,)),
        ...                           ember.layers.Dense(8, activation="relu", name="hidden"),
        ...                           ember.layers.Dense(1, name="out")])
        >>> model.compile(optimizer=ember.optimizers.SGD(learning_rate=1.0), loss="mse")
        >>> x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
        >>> health = ember.diagnostics.GradientHealth(every=2)
        >>> _ = model.fit(x, x[:, :1], batch_size=16, epochs=1, verbose=0, callbacks=[health])
        >>> health.steps, len(health.grad_norms["hidden"])
        ([0, 2], 2)
        >>> health.summary().flags["learning_rate_too_high"]
        ['hidden', 'out']
    """

    def __init__(self, every: int = 1, **thresholds):
        super().__init__()
        owner = "GradientHealth"
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"{owner}: every must be an integer >= 1, got {every!r}")
        unknown = sorted(set(thresholds) - set(_Thresholds.__dataclass_fields__))
        if unknown:
            known = ", ".join(_Thresholds.__dataclass_fields__)
            raise TypeError(f"{owner}: unexpected argument {unknown[0]!r}; the thresholds are "
                            f"{known}")
        defaults = asdict(_Thresholds())
        self.limits = _thresholds(owner, {**defaults, **thresholds})
        self.every = int(every)
        self.records: list[HealthReport] = []
        self._count = 0
        self._epoch = self._batch = None
        self._history = None

    # ------------------------------------------------------------------ hooks
    def on_train_begin(self, logs=None):
        model = self.model
        if getattr(model, "optimizer", None) is None:
            raise ValueError("GradientHealth: the model has no optimizer; compile it first")
        self._history = model.history
        current = model.__dict__.get("train_step")
        if isinstance(current, _StepHook):
            current.owner, current.model = self, model  # left by a fit that raised: reuse it
        else:
            model.__dict__["train_step"] = _StepHook(self, model, current)

    def on_train_end(self, logs=None):
        hook = self.model.__dict__.get("train_step")
        if isinstance(hook, _StepHook):
            _remove_step_hook(self.model, hook)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self._batch = batch

    # ------------------------------------------------------------------ one step
    def _step(self, data, run):
        recorded = self._count % self.every == 0
        self._count += 1
        if not recorded:
            return run(data)
        model = self.model
        optimizer = model.optimizer
        tracked = _tracked_layers(model)
        weights = {id(p) for t in tracked for p in t.weights}
        capture = _Capture(tracked, self.limits)
        seen: dict[int, tuple] = {}
        rate: list[float] = []
        original = optimizer._apply_updates
        had = "_apply_updates" in optimizer.__dict__

        def apply_updates(entries):
            rate.append(optimizer.learning_rate)  # the rate this step uses
            before = [(p, g, p.data.copy()) for p, _, g in entries
                      if g is not None and id(p) in weights]
            original(entries)
            for p, g, old in before:
                seen[id(p)] = (_norm(g), _norm(old), _norm(p.data - old))

        capture.install()
        optimizer.__dict__["_apply_updates"] = apply_updates
        try:
            logs = run(data)
        finally:
            capture.restore()
            if had:
                optimizer.__dict__["_apply_updates"] = original
            else:
                optimizer.__dict__.pop("_apply_updates", None)
        if seen:  # no update (a skipped non-finite step): nothing to record
            self._record(capture, seen, rate[-1] if rate else None)
        return logs

    def _record(self, capture: _Capture, per_weight: dict, rate) -> None:
        records = _layer_records(capture.ordered(), capture, per_weight)
        findings, flags = _findings(records, self.limits, rate)
        self.records.append(HealthReport(
            records, findings, flags, None, rate,
            "measured: the weights before and after the optimizer's step",
            asdict(self.limits), self._count - 1, self._epoch, self._batch,
        ))

    # ------------------------------------------------------------------ reading
    def series(self, name: str) -> dict[str, list[float]]:
        """``{layer name: [value per recorded step]}`` of a :class:`LayerHealth` field
        (``"grad_norm"``, ``"update_ratio"``, ``"dead_fraction"``…); NaN where a step has no
        value; layers that never have one are left out."""
        numeric = [f for f in LayerHealth.__dataclass_fields__ if f not in
                   ("name", "type", "activation", "weights")]
        if name not in numeric:
            raise ValueError(f"GradientHealth.series: name must be one of {numeric}, got {name!r}")
        out: dict[str, list[float]] = {}
        for i, report in enumerate(self.records):
            for r in report.layers:
                value = getattr(r, name)
                if value is None:
                    continue
                column = out.setdefault(r.name, [math.nan] * i)
                column.extend([math.nan] * (i - len(column)))
                column.append(float(value))
        for column in out.values():
            column.extend([math.nan] * (len(self.records) - len(column)))
        return out

    @property
    def grad_norms(self) -> dict[str, list[float]]:
        """``{layer name: [gradient norm per recorded step]}`` (layers with weights)."""
        return self.series("grad_norm")

    @property
    def steps(self) -> list[int]:
        """The batch counter of each record (over all epochs), for the x axis of a plot."""
        return [r.step for r in self.records]

    def summary(self) -> HealthReport:
        """One report over the run: each number is its median over the recorded steps; a
        gradient that was not finite at any step is flagged as exploding."""
        if not self.records:
            return HealthReport([], ["no step recorded yet"])
        layers = []
        for r in self.records[-1].layers:
            merged = LayerHealth(r.name, r.type, r.activation, units=r.units)
            for name in ("grad_norm", "weight_norm", "update_norm", "update_ratio",
                         "dead_fraction", "saturated_fraction", "activation_mean",
                         "activation_std"):
                values = self._values(r.name, name)
                if values:
                    setattr(merged, name, float(np.median(values)))
            layers.append(merged)
        _set_grad_ratios(layers)
        note = f"median of {len(self.records)} recorded steps"
        findings, flags = _findings(layers, self.limits, self.records[-1].learning_rate, note)
        for record in layers:
            bad = [rep for rep in self.records
                   if any(r.name == record.name and r.grad_norm is not None
                          and not math.isfinite(r.grad_norm) for r in rep.layers)]
            if bad and record.name not in flags["exploding"]:
                findings.append(f"layer {record.name}: the gradient was not finite at "
                                f"{len(bad)} of {len(self.records)} recorded steps (first at "
                                f"epoch {bad[0].epoch}, batch {bad[0].batch}) — it explodes")
                flags["exploding"].append(record.name)
        return HealthReport(layers, findings, flags, None, self.records[-1].learning_rate,
                            self.records[-1].update_rule, asdict(self.limits))

    def _values(self, layer: str, name: str) -> list[float]:
        return [getattr(r, name) for rep in self.records for r in rep.layers
                if r.name == layer and getattr(r, name) is not None]

    def findings(self) -> list[str]:
        """Plain-words findings over the run (those of :meth:`summary`)."""
        return self.summary().findings
