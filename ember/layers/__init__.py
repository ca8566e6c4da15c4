"""Layers with Keras' names and behaviour.

Example:
    >>> model = ember.models.Sequential([
    ...     ember.layers.Input(shape=(64,)),
    ...     ember.layers.Dense(32, activation="relu"),
    ...     ember.layers.Dense(10, activation="softmax"),
    ... ])
"""

from ember.layers.activation import ELU, LeakyReLU, PReLU, ReLU, Softmax
from ember.layers.augmentation import RandomFlip, RandomRotation, RandomTranslation
from ember.layers.base import InputSpec, Layer, Parameter
from ember.layers.conv import Conv1D, Conv2D, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D
from ember.layers.core import (
    Activation,
    Dense,
    Embedding,
    Flatten,
    Input,
    InputLayer,
    Masking,
    SymbolicTensor,
)
from ember.layers.merging import (
    Add,
    Average,
    Concatenate,
    Dot,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
    add,
    average,
    concatenate,
    dot,
    maximum,
    minimum,
    multiply,
    subtract,
)
from ember.layers.normalization import BatchNormalization, LayerNormalization
from ember.layers.pooling import (
    AveragePooling1D,
    AveragePooling2D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    MaxPooling1D,
    MaxPooling2D,
)
from ember.layers.preprocessing import Normalization, Rescaling, Resizing
from ember.layers.regularization import Dropout, GaussianNoise, SpatialDropout2D
from ember.layers.reshaping import Reshape, UpSampling2D, ZeroPadding2D

__all__ = [
    "Layer",
    "Parameter",
    "InputSpec",
    "Dense",
    "Activation",
    "Flatten",
    "Embedding",
    "Masking",
    "Input",
    "InputLayer",
    "SymbolicTensor",
    "BatchNormalization",
    "LayerNormalization",
    "Dropout",
    "GaussianNoise",
    "PReLU",
    "LeakyReLU",
    "ELU",
    "ReLU",
    "Softmax",
    "Normalization",
    "Conv1D",
    "Conv2D",
    "Conv2DTranspose",
    "DepthwiseConv2D",
    "SeparableConv2D",
    "MaxPooling1D",
    "MaxPooling2D",
    "AveragePooling1D",
    "AveragePooling2D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "Reshape",
    "ZeroPadding2D",
    "UpSampling2D",
    "SpatialDropout2D",
    "RandomFlip",
    "RandomTranslation",
    "RandomRotation",
    "Rescaling",
    "Resizing",
    "Add",
    "Subtract",
    "Multiply",
    "Average",
    "Maximum",
    "Minimum",
    "Concatenate",
    "Dot",
    "add",
    "subtract",
    "multiply",
    "average",
    "maximum",
    "minimum",
    "concatenate",
    "dot",
]
