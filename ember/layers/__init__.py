"""Layers with Keras' names and behaviour.

Example:
    >>> model = ember.models.Sequential([
    ...     ember.layers.Input(shape=(64,)),
    ...     ember.layers.Dense(32, activation="relu"),
    ...     ember.layers.Dense(10, activation="softmax"),
    ... ])
"""

from ember.layers.base import InputSpec, Layer, Parameter
from ember.layers.core import Activation, Dense, Flatten, Input, InputLayer, SymbolicTensor

__all__ = [
    "Layer",
    "Parameter",
    "InputSpec",
    "Dense",
    "Activation",
    "Flatten",
    "Input",
    "InputLayer",
    "SymbolicTensor",
]
