"""What a playground config means in Ember: its data, its input features, its model, and the
Python code that rebuilds all three.

The session (``session.py``) and the code shown in the page (:func:`python_code`) are written
from the same tables here, so the code a user copies builds the same data (same points, same
split), the same input features and the same initial weights as the session they watched.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import numpy as np

import ember
from ember import layers
from ember.datasets import digits, synthetic, train_test_split

from .config import PlaygroundConfig

__all__ = [
    "PlaygroundData",
    "make_data",
    "feature_matrix",
    "grid_points",
    "build_model",
    "python_code",
    "SCALE",
    "EXTENT",
]

SCALE = 2.0
"""The toy sets reach radius ~1; their points are multiplied by this so that sin x₁ and the
squares bend within the plane shown, as in TensorFlow Playground's plane."""
EXTENT = 3.0
"""The plane drawn in the page is [-EXTENT, EXTENT]²."""

# The same feature twice: as a NumPy function (for the session) and as source text (for the
# code shown to the user); tests check both agree.
_FEATURE_FUNCTIONS = {
    "x1": lambda x1, x2: x1,
    "x2": lambda x1, x2: x2,
    "x1_sq": lambda x1, x2: x1 * x1,
    "x2_sq": lambda x1, x2: x2 * x2,
    "x1_x2": lambda x1, x2: x1 * x2,
    "sin_x1": lambda x1, x2: np.sin(x1),
    "sin_x2": lambda x1, x2: np.sin(x2),
}
_FEATURE_SOURCE = {
    "x1": "x1",
    "x2": "x2",
    "x1_sq": "x1 * x1",
    "x2_sq": "x2 * x2",
    "x1_x2": "x1 * x2",
    "sin_x1": "np.sin(x1)",
    "sin_x2": "np.sin(x2)",
}
# The toy generators, as calls and as source text (blobs: two centres, one per class).
_BLOB_CENTERS = ((-1.0, -1.0), (1.0, 1.0))
_GENERATORS = {
    "spirals": synthetic.spirals,
    "circles": synthetic.circles,
    "xor": synthetic.xor,
    "blobs": lambda **kw: synthetic.blobs(centers=_BLOB_CENTERS, **kw),
}
_GENERATOR_SOURCE = {
    "spirals": "synthetic.spirals(n_samples={samples}, noise={noise!r}, seed={seed})",
    "circles": "synthetic.circles(n_samples={samples}, noise={noise!r}, seed={seed})",
    "xor": "synthetic.xor(n_samples={samples}, noise={noise!r}, seed={seed})",
    "blobs": (
        "synthetic.blobs(n_samples={samples}, noise={noise!r}, "
        "centers=((-1.0, -1.0), (1.0, 1.0)), seed={seed})"
    ),
}


@dataclass
class PlaygroundData:
    """A config's data: the points (2-D sets; ``None`` for the digits), the model inputs (the
    feature matrix, or the 64 scaled pixels) and the labels, split into train and test."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    points_train: np.ndarray | None
    points_test: np.ndarray | None
    n_classes: int


def make_data(config: PlaygroundConfig) -> PlaygroundData:
    """The data of ``config``, exactly as :func:`python_code` builds it.

    Example:
        >>> from ember.playground import PlaygroundConfig
        >>> from ember.playground.recipe import make_data
        >>> data = make_data(PlaygroundConfig.from_dict({"samples": 100, "train_ratio": 0.7}))
        >>> data.x_train.shape, data.x_test.shape, data.n_classes
        ((70, 4), (30, 4), 2)
    """
    test_size = round(1.0 - config.train_ratio, 6)
    if not config.is_2d:
        images, labels = digits.load_all()
        x = images.reshape(-1, 64).astype(np.float32) / np.float32(16.0)
        y = labels.astype(np.int64)
        x_train, x_test, y_train, y_test = train_test_split(
            x, y, test_size=test_size, seed=config.seed, stratify=y
        )
        return PlaygroundData(x_train, y_train, x_test, y_test, None, None, 10)
    x, y = _GENERATORS[config.dataset](
        n_samples=config.samples, noise=config.noise, seed=config.seed
    )
    x = SCALE * x
    p_train, p_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, seed=config.seed
    )
    features = config.features
    return PlaygroundData(
        feature_matrix(p_train, features), y_train, feature_matrix(p_test, features), y_test,
        p_train, p_test, 2,
    )


def feature_matrix(points: np.ndarray, features: tuple[str, ...] | list[str]) -> np.ndarray:
    """The input features (columns in the order given) of 2-D ``points``, float32.

    Example:
        >>> from ember.playground.recipe import feature_matrix
        >>> feature_matrix(np.array([[1.0, 2.0]]), ["x1", "x1_x2", "x2_sq"])
        array([[1., 2., 4.]], dtype=float32)
    """
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"feature_matrix: points must have shape (n, 2), got {points.shape}")
    x1, x2 = points[:, 0], points[:, 1]
    columns = [_FEATURE_FUNCTIONS[name](x1, x2) for name in features]
    return np.stack(columns, axis=1).astype(np.float32)


def grid_points(n: int) -> np.ndarray:
    """An ``n × n`` grid over the plane, row by row from the top (x₂ = EXTENT) down, each row
    from left to right: the pixel order of the page's heat maps.

    Example:
        >>> from ember.playground.recipe import grid_points
        >>> grid_points(3)[:3].tolist()
        [[-2.0, 2.0], [0.0, 2.0], [2.0, 2.0]]
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"grid_points: n must be an int >= 2, got {n!r}")
    # Pixel centres, so the picture is not shifted by half a cell.
    centres = (np.arange(n) + 0.5) / n * (2 * EXTENT) - EXTENT
    xx, yy = np.meshgrid(centres, centres[::-1])
    return np.stack([xx.ravel(), yy.ravel()], axis=1).astype(np.float32)


def _regularizer(config: PlaygroundConfig):
    if config.regularization == "none":
        return None
    return {"l1": ember.regularizers.L1, "l2": ember.regularizers.L2}[config.regularization](
        config.regularization_rate
    )


def _optimizer_class(config: PlaygroundConfig) -> type:
    # The class behind the name (Ember's table is private); the generated code names it too.
    return ember.optimizers._OPTIMIZERS[config.optimizer]


def build_model(config: PlaygroundConfig, n_inputs: int, n_classes: int) -> ember.Sequential:
    """The compiled model of ``config``: Dense hidden layers, then one sigmoid unit (two classes)
    or a softmax over the classes. Seeds Ember's generator with ``config.seed`` first, as the
    generated code does, so the initial weights match it.

    Example:
        >>> from ember.playground import PlaygroundConfig
        >>> from ember.playground.recipe import build_model
        >>> model = build_model(PlaygroundConfig(), n_inputs=4, n_classes=2)
        >>> [(layer.name, layer.units) for layer in model.layers]
        [('hidden_1', 8), ('hidden_2', 8), ('output', 1)]
    """
    ember.manual_seed(config.seed)
    stack: list = [layers.Input(shape=(n_inputs,))]
    # Fixed layer names, so the page and the gradient-health words say "hidden_1", not the
    # process-wide counter's "dense_58".
    for i, units in enumerate(config.hidden_layers, start=1):
        stack.append(
            layers.Dense(units, activation=config.activation,
                         kernel_regularizer=_regularizer(config), name=f"hidden_{i}")
        )
    binary = n_classes == 2
    stack.append(
        layers.Dense(1 if binary else n_classes, activation="sigmoid" if binary else "softmax",
                     kernel_regularizer=_regularizer(config), name="output")
    )
    model = ember.Sequential(stack)
    model.compile(
        optimizer=_optimizer_class(config)(learning_rate=config.learning_rate),
        loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def python_code(config: PlaygroundConfig, epochs: int = 10) -> str:
    """Python source that rebuilds ``config``'s data and model with Ember and trains it for
    ``epochs`` epochs (batches are shuffled by ``fit``, so the path differs from the session's
    run; the data, features, initial weights and settings are the same).

    Example:
        >>> from ember.playground import PlaygroundConfig
        >>> from ember.playground.recipe import python_code
        >>> code = python_code(PlaygroundConfig(), epochs=1)
        >>> "synthetic.spirals(n_samples=400" in code
        True
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"python_code: epochs must be an int >= 0, got {epochs!r}")
    binary = config.is_2d
    settings = textwrap.fill(
        ", ".join(f"{k}={v}" for k, v in config.to_dict().items()), width=92,
        break_long_words=False, break_on_hyphens=False,
    )
    lines = [
        '"""An Ember playground experiment, rebuilt and retrained with Ember.',
        "",
        settings,
        '"""',
        "import numpy as np",
        "",
        "import ember",
        "from ember import layers",
        f"from ember.datasets import {'synthetic' if binary else 'digits'}, train_test_split",
        "",
        *_data_lines(config),
        "",
        f"ember.manual_seed({config.seed})",
        "model = ember.Sequential([",
        "    layers.Input(shape=(x_train.shape[1],)),",
    ]
    reg = _regularizer_source(config)
    for i, units in enumerate(config.hidden_layers, start=1):
        lines.append(
            f'    layers.Dense({units}, activation="{config.activation}"{reg}, '
            f'name="hidden_{i}"),'
        )
    output = '1, activation="sigmoid"' if binary else '10, activation="softmax"'
    lines += [
        f'    layers.Dense({output}{reg}, name="output"),',
        "])",
        "model.compile(",
        f"    optimizer=ember.optimizers.{_optimizer_class(config).__name__}"
        f"(learning_rate={config.learning_rate!r}),",
        '    loss="binary_crossentropy",' if binary
        else '    loss="sparse_categorical_crossentropy",',
        '    metrics=["accuracy"],',
        ")",
        "history = model.fit(",
        f"    x_train, y_train, batch_size={config.batch_size}, epochs={epochs},",
        "    validation_data=(x_test, y_test), verbose=0,",
        ")",
        "test_loss, test_accuracy = model.evaluate(x_test, y_test, verbose=0)",
        'print(f"test loss {test_loss:.4f}, test accuracy {test_accuracy:.4f}")',
        'model.save("playground.ember")',
    ]
    return "\n".join(lines) + "\n"


def _data_lines(config: PlaygroundConfig) -> list[str]:
    test_size = round(1.0 - config.train_ratio, 6)
    if not config.is_2d:
        return [
            "images, labels = digits.load_all()",
            'x = images.reshape(-1, 64).astype(np.float32) / np.float32(16.0)',
            "y = labels.astype(np.int64)",
            "x_train, x_test, y_train, y_test = train_test_split(",
            f"    x, y, test_size={test_size!r}, seed={config.seed}, stratify=y",
            ")",
        ]
    columns = ", ".join(_FEATURE_SOURCE[f] for f in config.features)
    return [
        f"x, y = {_GENERATOR_SOURCE[config.dataset].format(**config.to_dict())}",
        f"x = {SCALE!r} * x  # the playground's plane",
        "points_train, points_test, y_train, y_test = train_test_split(",
        f"    x, y, test_size={test_size!r}, seed={config.seed}",
        ")",
        "",
        "",
        "def features(points):",
        "    x1, x2 = points[:, 0], points[:, 1]",
        f"    return np.stack([{columns}], axis=1).astype(np.float32)",
        "",
        "",
        "x_train, x_test = features(points_train), features(points_test)",
    ]


def _regularizer_source(config: PlaygroundConfig) -> str:
    if config.regularization == "none":
        return ""
    name = config.regularization.upper()
    return f", kernel_regularizer=ember.regularizers.{name}({config.regularization_rate!r})"
