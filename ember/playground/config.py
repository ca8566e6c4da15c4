"""The playground's configuration: its fields, their limits, validation and the URL encoding.

One :class:`PlaygroundConfig` describes a whole experiment (data, input features, network,
optimizer, regularization, batch size). The page sends it as JSON, the server validates it here,
and its query-string form (:meth:`PlaygroundConfig.to_query`) is what the page puts in its URL,
so a link restores the same experiment.

The limits below are the documented bounds of every setting. They keep one browser tab from
asking the server for an absurd model (10⁶ neurons, 10⁴ layers) that would exhaust memory or
stall the training thread: such a request is refused with a message naming the setting.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, fields
from urllib.parse import parse_qsl, urlencode

from ember import _registry
from ember import activations as activations_module
from ember import optimizers as optimizers_module

__all__ = [
    "PlaygroundConfig",
    "DATASETS",
    "FEATURES",
    "REGULARIZATIONS",
    "activation_names",
    "optimizer_names",
    "limits",
    "MAX_HIDDEN_LAYERS",
    "MAX_NEURONS",
    "MIN_SAMPLES",
    "MAX_SAMPLES",
    "MAX_BATCH_SIZE",
    "MAX_NOISE",
    "MAX_LEARNING_RATE",
    "MAX_REGULARIZATION_RATE",
    "MIN_TRAIN_RATIO",
    "MAX_TRAIN_RATIO",
    "MAX_SEED",
]

DATASETS = ("spirals", "circles", "xor", "blobs", "digits")
"""Dataset names: four 2-D toy sets and the bundled 8×8 digits."""
FEATURES = ("x1", "x2", "x1_sq", "x2_sq", "x1_x2", "sin_x1", "sin_x2")
"""Input features computed from a 2-D point (x₁, x₂): x₁, x₂, x₁², x₂², x₁·x₂, sin x₁, sin x₂."""
REGULARIZATIONS = ("none", "l1", "l2")

# Limits. Chosen so the largest network (6 × 32 tanh units) still trains and draws in real time
# on a laptop core while several tabs train at once; a larger net is not what a playground is for.
MAX_HIDDEN_LAYERS = 6
MAX_NEURONS = 32
MIN_SAMPLES = 20
MAX_SAMPLES = 2000
MAX_BATCH_SIZE = 1024
MAX_NOISE = 1.0
MAX_LEARNING_RATE = 10.0
MAX_REGULARIZATION_RATE = 1.0
MIN_TRAIN_RATIO = 0.1
MAX_TRAIN_RATIO = 0.9
MAX_SEED = 2**31 - 1

_OWNER = "PlaygroundConfig"


def activation_names() -> list[str]:
    """Every activation name Ember resolves (``ember.activations.get``), sorted.

    Example:
        >>> from ember.playground.config import activation_names
        >>> "relu" in activation_names() and "tanh" in activation_names()
        True
    """
    # Ember keeps its name table private; reading it keeps this list in step with the library.
    return sorted(activations_module._ACTIVATIONS)


def optimizer_names() -> list[str]:
    """Every optimizer name Ember resolves (``ember.optimizers.get``), sorted.

    Example:
        >>> from ember.playground.config import optimizer_names
        >>> optimizer_names()[:3]
        ['adadelta', 'adagrad', 'adam']
    """
    return sorted(optimizers_module._OPTIMIZERS)


def limits() -> dict[str, float]:
    """The documented limits, by name, as sent to the page (which sets its inputs' bounds).

    Example:
        >>> from ember.playground.config import limits
        >>> limits()["MAX_NEURONS"], limits()["MAX_HIDDEN_LAYERS"]
        (32, 6)
    """
    return {name: globals()[name] for name in __all__ if name.startswith(("MAX_", "MIN_"))}


@dataclass(frozen=True)
class PlaygroundConfig:
    """One playground experiment. Build it with :meth:`from_dict` or :meth:`from_query`, which
    validate every field; the defaults are a two-arm spiral and a small tanh network.

    Fields: ``dataset`` (one of :data:`DATASETS`), ``noise`` (standard deviation of the noise
    added to the 2-D points, before the points are scaled to the plane), ``train_ratio`` (share of
    the points used for training), ``samples`` (number of 2-D points; the digits always use all
    1,797 images), ``seed`` (data, split, initial weights and batch order), ``features`` (a
    non-empty subset of :data:`FEATURES`; ignored for the digits), ``hidden_layers`` (neurons per
    hidden layer, possibly none), ``activation`` (any Ember activation name), ``optimizer``,
    ``learning_rate``, ``regularization`` (``"none"``, ``"l1"``, ``"l2"`` on every kernel),
    ``regularization_rate`` and ``batch_size``.

    Example:
        >>> from ember.playground import PlaygroundConfig
        >>> config = PlaygroundConfig.from_dict({"dataset": "xor", "hidden_layers": [4]})
        >>> config.hidden_layers, config.activation
        ((4,), 'tanh')
        >>> PlaygroundConfig.from_query(config.to_query()) == config
        True
        >>> PlaygroundConfig.from_dict({"hidden_layers": [10**6]})
        Traceback (most recent call last):
        ...
        ValueError: PlaygroundConfig: hidden_layers[0] must be an integer from 1 to 32 \
(MAX_NEURONS), got 1000000
    """

    dataset: str = "spirals"
    noise: float = 0.1
    train_ratio: float = 0.5
    samples: int = 400
    seed: int = 0
    features: tuple[str, ...] = ("x1", "x2", "sin_x1", "sin_x2")
    hidden_layers: tuple[int, ...] = (8, 8)
    activation: str = "tanh"
    optimizer: str = "adam"
    learning_rate: float = 0.03
    regularization: str = "none"
    regularization_rate: float = 0.0
    batch_size: int = 16

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, data: object) -> PlaygroundConfig:
        """A validated config from a JSON-like dict; missing fields take their defaults.

        Raises ``TypeError`` for a non-dict and ``ValueError`` naming the first bad field (an
        unknown field, a wrong type, a value out of its limits, an unknown name).

        Example:
            >>> from ember.playground import PlaygroundConfig
            >>> PlaygroundConfig.from_dict({"learning_rate": 0.1}).learning_rate
            0.1
            >>> PlaygroundConfig.from_dict({"activation": "rleu"})
            Traceback (most recent call last):
            ...
            ValueError: PlaygroundConfig: activation: unknown activation 'rleu'. Did you mean \
'relu'? ...
        """
        if not isinstance(data, dict):
            raise TypeError(
                f"{_OWNER}.from_dict: expected a JSON object (dict) of settings, got "
                f"{type(data).__name__}"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise ValueError(
                f"{_OWNER}: unknown setting(s) {', '.join(map(repr, unknown))}; valid settings: "
                f"{', '.join(sorted(known))}"
            )
        default = cls()
        values = {name: data.get(name, getattr(default, name)) for name in known}
        return cls(**_validated(values))

    @classmethod
    def from_query(cls, query: str) -> PlaygroundConfig:
        """Parse the query-string form written by :meth:`to_query` (a leading ``?`` is fine).

        Example:
            >>> from ember.playground import PlaygroundConfig
            >>> PlaygroundConfig.from_query("?dataset=circles&hidden_layers=3,2").hidden_layers
            (3, 2)
        """
        if not isinstance(query, str):
            raise TypeError(f"{_OWNER}.from_query: query must be a str, got {type(query).__name__}")
        pairs = parse_qsl(query.lstrip("?#"), keep_blank_values=True)
        data: dict[str, object] = {}
        for key, text in pairs:
            if key in data:
                raise ValueError(f"{_OWNER}: setting {key!r} appears twice in the query")
            data[key] = _parse_text(key, text)
        return cls.from_dict(data)

    # ------------------------------------------------------------------ output
    def to_dict(self) -> dict:
        """The fields as a JSON-ready dict (tuples become lists).

        Example:
            >>> from ember.playground import PlaygroundConfig
            >>> PlaygroundConfig().to_dict()["hidden_layers"]
            [8, 8]
        """
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def to_query(self) -> str:
        """The query-string form (no leading ``?``): lists are comma-separated.

        Example:
            >>> from ember.playground import PlaygroundConfig
            >>> PlaygroundConfig().to_query()[:40]
            'dataset=spirals&noise=0.1&train_ratio=0.'
        """
        pairs = []
        for key, value in asdict(self).items():
            if isinstance(value, tuple):
                value = ",".join(str(v) for v in value)
            pairs.append((key, repr(value) if isinstance(value, float) else str(value)))
        return urlencode(pairs, safe=",")

    @property
    def is_2d(self) -> bool:
        """True for the 2-D datasets (everything but the digits).

        Example:
            >>> from ember.playground import PlaygroundConfig
            >>> PlaygroundConfig().is_2d, PlaygroundConfig.from_dict({"dataset": "digits"}).is_2d
            (True, False)
        """
        return self.dataset != "digits"


# ---------------------------------------------------------------------- parsing and checks
_INT_FIELDS = {"samples", "seed", "batch_size"}
_FLOAT_FIELDS = {"noise", "train_ratio", "learning_rate", "regularization_rate"}
_LIST_FIELDS = {"features", "hidden_layers"}


def _parse_text(key: str, text: str) -> object:
    """A query value as the JSON type :func:`_validated` expects (numbers stay strict)."""
    if key in _LIST_FIELDS:
        items = [t.strip() for t in text.split(",") if t.strip()]
        if key == "hidden_layers":
            return [_number(key, t) for t in items]
        return items
    if key in _INT_FIELDS or key in _FLOAT_FIELDS:
        return _number(key, text)
    return text


def _number(key: str, text: str) -> float | int:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{_OWNER}: {key} must be a number, got {text!r}") from None
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _validated(v: dict) -> dict:
    """The values checked against the limits and normalized (names lower-case, tuples)."""
    v["dataset"] = _choice("dataset", v["dataset"], DATASETS)
    v["regularization"] = _choice("regularization", v["regularization"], REGULARIZATIONS)
    v["activation"] = _registered("activation", v["activation"], activation_names())
    v["optimizer"] = _registered("optimizer", v["optimizer"], optimizer_names())
    v["noise"] = _real("noise", v["noise"], 0.0, MAX_NOISE, "MAX_NOISE")
    v["train_ratio"] = _real(
        "train_ratio", v["train_ratio"], MIN_TRAIN_RATIO, MAX_TRAIN_RATIO, "MIN/MAX_TRAIN_RATIO"
    )
    v["learning_rate"] = _real(
        "learning_rate", v["learning_rate"], 0.0, MAX_LEARNING_RATE, "MAX_LEARNING_RATE",
        open_low=True,
    )
    v["regularization_rate"] = _real(
        "regularization_rate", v["regularization_rate"], 0.0, MAX_REGULARIZATION_RATE,
        "MAX_REGULARIZATION_RATE",
    )
    v["samples"] = _integer("samples", v["samples"], MIN_SAMPLES, MAX_SAMPLES, "MAX_SAMPLES")
    v["seed"] = _integer("seed", v["seed"], 0, MAX_SEED, "MAX_SEED")
    v["batch_size"] = _integer("batch_size", v["batch_size"], 1, MAX_BATCH_SIZE, "MAX_BATCH_SIZE")
    v["hidden_layers"] = _layers(v["hidden_layers"])
    v["features"] = _features(v["features"])
    return v


def _choice(name: str, value: object, options: tuple[str, ...]) -> str:
    if isinstance(value, str) and value.lower() in options:
        return value.lower()
    raise ValueError(f"{_OWNER}: {name} must be one of {', '.join(options)}; got {value!r}")


def _registered(kind: str, value: object, names: list[str]) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{_OWNER}: {kind} must be a name such as {names[0]!r}, got {value!r}")
    table = dict.fromkeys(names, True)
    try:
        _registry.lookup(kind, value, table)
    except ValueError as exc:
        raise ValueError(f"{_OWNER}: {kind}: {exc}") from None
    return value.lower().replace("-", "_")


def _is_real(value: object) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, numbers.Real)
        and math.isfinite(float(value))
    )


def _real(
    name: str, value: object, low: float, high: float, limit: str, open_low: bool = False
) -> float:
    ok = _is_real(value) and (low < value if open_low else low <= value) and value <= high
    if not ok:
        low_text = f"> {low:g}" if open_low else f">= {low:g}"
        raise ValueError(
            f"{_OWNER}: {name} must be a finite number {low_text} and <= {high:g} ({limit}), "
            f"got {value!r}"
        )
    return float(value)


def _integer(name: str, value: object, low: int, high: int, limit: str) -> int:
    if _is_real(value) and float(value).is_integer() and low <= value <= high:
        return int(value)
    raise ValueError(
        f"{_OWNER}: {name} must be an integer from {low} to {high} ({limit}), got {value!r}"
    )


def _layers(value: object) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(
            f"{_OWNER}: hidden_layers must be a list of neuron counts such as [8, 8], got "
            f"{value!r}"
        )
    if len(value) > MAX_HIDDEN_LAYERS:
        raise ValueError(
            f"{_OWNER}: hidden_layers has {len(value)} layers; at most {MAX_HIDDEN_LAYERS} "
            "(MAX_HIDDEN_LAYERS)"
        )
    return tuple(
        _integer(f"hidden_layers[{i}]", n, 1, MAX_NEURONS, "MAX_NEURONS")
        for i, n in enumerate(value)
    )


def _features(value: object) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(
            f"{_OWNER}: features must be a non-empty list of names from {', '.join(FEATURES)}; "
            f"got {value!r}"
        )
    chosen = set()
    for item in value:
        if not isinstance(item, str) or item not in FEATURES:
            raise ValueError(
                f"{_OWNER}: unknown feature {item!r}; valid features: {', '.join(FEATURES)}"
            )
        chosen.add(item)
    # A fixed order: the model's input columns do not depend on the order the user clicked.
    return tuple(f for f in FEATURES if f in chosen)
