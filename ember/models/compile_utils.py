"""What ``compile`` turns its arguments into: one loss and a set of metrics per model output.

A model has one output or several, named by :attr:`Model.output_names`. ``compile(loss=...)``
takes one loss (used for every output), a list (one per output, in order) or a dict keyed by
output name (outputs without an entry are not trained by the loss); ``loss_weights`` the same,
and ``metrics`` a list (for every output), a list of lists or a dict. Logs are named as Keras
names them: ``"loss"`` is the weighted total (with regularization penalties and ``add_loss``
terms); with several outputs each also reports ``"<output>_loss"`` (unweighted) and
``"<output>_<metric>"``.
"""

from __future__ import annotations

import math

import numpy as np

from ember import losses as losses_module
from ember import metrics as metrics_module
from ember import ops, tree
from ember.tensor import Tensor


def _by_output_name(value: dict, output_names: list[str], what: str) -> list:
    """A dict keyed by output name as one entry per output (``None`` where absent)."""
    unknown = [key for key in value if key not in output_names]
    if unknown:
        raise ValueError(
            f"{what} has an entry for {unknown[0]!r}, which is not an output of the model; its "
            f"outputs are {output_names}"
        )
    return [value.get(name) for name in output_names]


def _per_output(value, output_names: list[str], what: str, single_ok: bool) -> list:
    """``value`` spread over the outputs: a list of len(output_names) entries (``None`` where
    an output has none)."""
    n = len(output_names)
    if isinstance(value, dict):
        return _by_output_name(value, output_names, f"compile: {what}")
    if isinstance(value, (list, tuple)) and not (single_ok and n == 1 and what == "metrics"):
        if len(value) != n:
            raise ValueError(
                f"compile: {what} is a list of {len(value)} entries but the model has {n} "
                f"output(s) {output_names}; give one per output, or a dict keyed by output name"
            )
        return list(value)
    return [value] * n


class CompileLoss:
    """The losses and loss weights of a compiled model, applied output by output."""

    def __init__(self, loss, loss_weights, output_names: list[str]):
        self.output_names = list(output_names)
        specs = _per_output(loss, self.output_names, "loss", single_ok=True)
        self.losses = [None if spec is None else losses_module.get(spec) for spec in specs]
        if all(fn is None for fn in self.losses):
            raise ValueError(f"compile: no output has a loss; outputs are {self.output_names}")
        if loss_weights is None:
            weights = [1.0] * len(self.output_names)
        else:
            weights = _per_output(loss_weights, self.output_names, "loss_weights", True)
            weights = [1.0 if w is None else w for w in weights]
        for name, w in zip(self.output_names, weights):
            if isinstance(w, bool) or not isinstance(w, (int, float, np.integer, np.floating)):
                raise TypeError(f"compile: the loss weight of {name!r} must be a number, got {w!r}")
            if not math.isfinite(w) or w < 0:
                raise ValueError(
                    f"compile: the loss weight of {name!r} must be a finite number >= 0, got {w}"
                )
        self.weights = [float(w) for w in weights]

    @property
    def single(self) -> bool:
        return len(self.output_names) == 1

    def __call__(self, y_true_flat: list, y_pred_flat: list, sample_weight_flat: list):
        """``(total, {output name: its unweighted loss tensor})`` for one batch."""
        total = None
        per_output = {}
        for name, fn, w, yt, yp, sw in zip(
            self.output_names,
            self.losses,
            self.weights,
            y_true_flat,
            y_pred_flat,
            sample_weight_flat,
        ):
            if fn is None:
                continue
            if yt is None:
                raise ValueError(
                    f"the model's output {name!r} has a loss but no target was given for it; "
                    f"pass y for every output with a loss ({self.output_names})"
                )
            value = fn(yt, yp, sw)
            per_output[name] = value
            term = value if w == 1.0 else value * w
            total = term if total is None else total + term
        return total, per_output

    def get_config(self):
        """JSON-able: one serialized loss per output (``None`` for none), and the weights."""
        return {
            "losses": {
                name: None if fn is None else losses_module.serialize(fn)
                for name, fn in zip(self.output_names, self.losses)
            },
            "loss_weights": dict(zip(self.output_names, self.weights)),
        }


class CompileMetrics:
    """The metrics of each output; metric objects are made at the first batch, once the shapes
    (which decide what ``"accuracy"`` means) are known. ``weighted_metrics`` (Keras') also get
    the ``sample_weight`` given to ``fit``/``evaluate``; ``metrics`` do not. A weighted metric
    whose name is also an unweighted one's is reported as ``weighted_<name>``."""

    def __init__(
        self, metrics, output_names: list[str], compile_loss: CompileLoss, weighted_metrics=None
    ):
        self.output_names = list(output_names)
        self.compile_loss = compile_loss
        self.specs = self._per_output_specs(metrics, "metrics")
        self.weighted_specs = self._per_output_specs(weighted_metrics, "weighted_metrics")
        self.objects: list[list] | None = None  # per output: (metric, weighted) pairs

    def _per_output_specs(self, metrics, what: str) -> list[list]:
        if metrics is None:
            metrics = []
        if isinstance(metrics, (str, bytes, metrics_module.Metric)) or callable(metrics):
            metrics = [metrics]
        n = len(self.output_names)
        if isinstance(metrics, dict):
            per_output = _per_output(metrics, self.output_names, what, False)
        elif n > 1 and metrics and all(isinstance(m, (list, tuple)) for m in metrics):
            per_output = _per_output(list(metrics), self.output_names, what, False)
        else:
            per_output = [list(metrics)] * n  # one list for every output (Keras 2's rule)
        specs = []
        for entry in per_output:
            if entry is None:
                entry = []
            elif isinstance(entry, (str, bytes, metrics_module.Metric)) or callable(entry):
                entry = [entry]
            specs.append(metrics_module.validate_names(list(entry)))
        return specs

    def _make(self, spec, i: int, yt, yp):
        loss = None if self.compile_loss is None else self.compile_loss.losses[i]
        if isinstance(spec, metrics_module.Metric) and len(self.output_names) > 1:
            return metrics_module.clone(spec)  # each output gets its own state
        true_shape = () if yt is None else np.shape(yt)
        return metrics_module.get(spec, loss, true_shape, tuple(yp.shape))

    def build(self, y_true_flat: list, y_pred_flat: list) -> None:
        objects = []
        for i, (yt, yp) in enumerate(zip(y_true_flat, y_pred_flat)):
            made = [(self._make(spec, i, yt, yp), False) for spec in self.specs[i]]
            plain = {metric.name for metric, _ in made}
            for spec in self.weighted_specs[i]:
                metric = self._make(spec, i, yt, yp)
                if metric.name in plain:
                    metric.name = f"weighted_{metric.name}"
                made.append((metric, True))
            if len(self.output_names) > 1:
                for metric, _ in made:
                    metric.name = f"{self.output_names[i]}_{metric.name}"
            objects.append(made)
        self.objects = objects

    @property
    def metrics(self) -> list:
        return [m for group in self.objects or [] for m, _ in group]

    def update_state(self, y_true_flat: list, y_pred_flat: list, sample_weight_flat=None) -> None:
        if self.objects is None:
            self.build(y_true_flat, y_pred_flat)
        weights_flat = sample_weight_flat or [None] * len(self.objects)
        for group, yt, yp, weights in zip(self.objects, y_true_flat, y_pred_flat, weights_flat):
            if yt is None:
                continue
            prediction = yp.data if isinstance(yp, Tensor) else yp
            mask = yp._keras_mask if isinstance(yp, Tensor) else None
            # masked (padded) steps count for nothing, as in the loss
            plain = None if mask is None else mask.data
            weighted = _combined_weights(weights, plain)
            for metric, is_weighted in group:
                weights_used = weighted if is_weighted else plain
                metric.update_state(yt, prediction, sample_weight=weights_used)

    def serializable_specs(self, weighted: bool = False):
        """The metric names (strings) per output, for a checkpoint."""
        specs = self.weighted_specs if weighted else self.specs
        return [[m for m in entry if isinstance(m, str)] for entry in specs]


def _combined_weights(sample_weight, mask):
    """Per-sample weights times a (batch, steps) mask: each step weighted by its sample."""
    if sample_weight is None:
        return mask
    weights = np.asarray(sample_weight, dtype=np.float32)
    if mask is None:
        return weights
    weights = weights.reshape(weights.shape + (1,) * (np.ndim(mask) - weights.ndim))
    return weights * mask


def add_penalties(loss: Tensor | None, penalties: list) -> Tensor | None:
    """``loss`` plus every regularization / ``add_loss`` penalty, summed in one stack."""
    if not penalties:
        return loss
    extra = ops.stack([ops.reshape(p, ()) for p in penalties]).sum()
    return extra if loss is None else loss + extra


def flatten_targets(y, output_names: list[str], what: str = "y") -> list:
    """Targets (one array, a list in output order, or a dict by output name) as one entry per
    output (``None`` where absent)."""
    n = len(output_names)
    if y is None:
        return [None] * n
    if isinstance(y, dict):
        return _by_output_name(y, output_names, what)
    if isinstance(y, (list, tuple)) and n > 1:
        if len(y) != n:
            raise ValueError(
                f"{what} is a list of {len(y)} arrays but the model has {n} outputs "
                f"{output_names}; give one per output, or a dict keyed by output name"
            )
        return list(y)
    if isinstance(y, (list, tuple)) and n == 1 and len(y) == 1 and tree.is_nested(y):
        first = y[0]
        if hasattr(first, "shape") and np.ndim(first) >= 1:
            return [first]
    if n > 1:
        raise ValueError(
            f"{what} is one array but the model has {n} outputs {output_names}; give a list with "
            "one array per output, or a dict keyed by output name"
        )
    return [y]
