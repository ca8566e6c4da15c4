"""Ready-made architectures used by the CLI, the examples and the benchmarks.

Each builder returns an uncompiled :class:`~ember.models.Sequential` for inputs of
``input_shape`` (batch axis excluded) and ``num_classes`` softmax outputs.

Example:
    >>> model = ember.models.zoo.simple_convnet((28, 28, 1), 10)
    >>> model.count_params()
    34826
"""

from __future__ import annotations

import math

from ember import layers
from ember.models.model import Sequential

__all__ = [
    "linear",
    "mlp",
    "simple_convnet",
    "convnet_bn",
    "augmentation_for",
    "ARCHITECTURES",
    "build",
]


def linear(input_shape, num_classes: int) -> Sequential:
    """Softmax regression on the flattened input.

    Example:
        >>> ember.models.zoo.linear((8, 8), 10).count_params()
        650
    """
    return Sequential(
        [
            layers.Input(shape=tuple(input_shape)),
            layers.Flatten(),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name="linear",
    )


def mlp(input_shape, num_classes: int, hidden=(256, 128)) -> Sequential:
    """A ReLU multilayer perceptron on the flattened input (default hidden sizes 256, 128).

    Example:
        >>> ember.models.zoo.mlp((784,), 10).count_params()
        235146
    """
    return Sequential(
        [
            layers.Input(shape=tuple(input_shape)),
            layers.Flatten(),
            *(layers.Dense(units, activation="relu") for units in hidden),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name="mlp",
    )


def _image_shape(input_shape, name: str) -> tuple:
    shape = tuple(input_shape)
    if len(shape) == 2:  # (H, W) grayscale
        shape = shape + (1,)
    if len(shape) != 3:
        raise ValueError(
            f"{name}: input_shape must be (height, width, channels) (NHWC without the batch axis) "
            f"or (height, width), got {tuple(input_shape)}"
        )
    return shape


def simple_convnet(input_shape, num_classes: int, dropout: float = 0.5) -> Sequential:
    """The Keras "simple MNIST convnet": Conv32 3×3 ReLU, MaxPool 2, Conv64 3×3 ReLU, MaxPool 2,
    Flatten, Dropout, Dense softmax. On 28×28×1 inputs: 34,826 parameters.

    Small inputs (the 8×8 digits) get ``"same"`` padding so that two poolings still fit.

    Example:
        >>> ember.models.zoo.simple_convnet((8, 8, 1), 10).predict(np.zeros((2, 8, 8, 1))).shape
        (2, 10)
    """
    shape = _image_shape(input_shape, "simple_convnet")
    padding = "same" if min(shape[:2]) < 12 else "valid"
    return Sequential(
        [
            layers.Input(shape=shape),
            layers.Conv2D(32, 3, padding=padding, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, padding=padding, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dropout(dropout),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name="simple_convnet",
    )


def convnet_bn(
    input_shape,
    num_classes: int,
    filters=(32, 64),
    augment: bool = True,
    flip: bool = True,
    dropout: float = 0.3,
    dense_units: int = 128,
    shift: float = 0.1,
) -> Sequential:
    """A stronger convnet: for each width in ``filters`` two 3×3 "same" convolutions each followed
    by batch normalization and ReLU, then 2×2 max pooling; then a ReLU layer of ``dense_units``
    on the flattened features (``dense_units=0``: global average pooling instead), dropout and a
    softmax layer. With ``augment=True`` training images are randomly shifted by up to ``shift``
    of their size (0: no shifts) and, with ``flip=True``, mirrored left-right (active in training
    only; :func:`augmentation_for` picks these per dataset).

    Example:
        >>> model = ember.models.zoo.convnet_bn((28, 28, 1), 10)
        >>> model.count_params()
        468394
    """
    shape = _image_shape(input_shape, "convnet_bn")
    stack: list = [layers.Input(shape=shape)]
    if augment and shift:
        stack.append(layers.RandomTranslation(shift, shift, fill_mode="constant"))
    if augment and flip:
        stack.append(layers.RandomFlip("horizontal"))
    size = min(shape[:2])
    for width in filters:
        for _ in range(2):
            stack += [
                layers.Conv2D(width, 3, padding="same", use_bias=False),
                layers.BatchNormalization(),
                layers.Activation("relu"),
            ]
        if size >= 4:
            stack.append(layers.MaxPooling2D(2))
            size = math.floor(size / 2)
    if dense_units:
        stack += [layers.Flatten(), layers.Dense(dense_units, activation="relu")]
    else:
        stack.append(layers.GlobalAveragePooling2D())
    stack += [
        layers.Dropout(dropout),
        layers.Dense(num_classes, activation="softmax"),
    ]
    return Sequential(stack, name="convnet_bn")


def augmentation_for(dataset: str) -> dict:
    """:func:`convnet_bn`'s augmentation for a dataset: clothes are mirrored left-right but not
    shifted (Fashion-MNIST's items are centred, and with shifts the 12-epoch recipe underfit,
    reaching 0.9230); digits are shifted by up to 10 % but never mirrored.

    Example:
        >>> ember.models.zoo.augmentation_for("fashion_mnist")
        {'shift': 0.0, 'flip': True}
    """
    if dataset == "fashion_mnist":
        return {"shift": 0.0, "flip": True}
    return {"shift": 0.1, "flip": False}


ARCHITECTURES = {
    "linear": linear,
    "mlp": mlp,
    "convnet": simple_convnet,
    "convnet_bn": convnet_bn,
}


def build(name: str, input_shape, num_classes: int) -> Sequential:
    """Build an architecture by its CLI name (``"linear"``, ``"mlp"``, ``"convnet"``,
    ``"convnet_bn"``).

    Example:
        >>> ember.models.zoo.build("convnet", (28, 28, 1), 10).count_params()
        34826
    """
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; choose one of {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[name](input_shape, num_classes)
