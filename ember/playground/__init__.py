"""The Ember playground: train real Ember networks live in the browser.

``ember playground`` (or :func:`main`) starts a local web app on 127.0.0.1 and prints its URL.
A tab picks a dataset (Gaussian blobs, XOR, circles, spirals, or the bundled 8×8 digits), the
input features, the hidden layers, any Ember activation, the optimizer and its learning rate,
L1/L2 regularization and the batch size, then plays, pauses, steps one batch or one epoch, or
resets. Each tab's model trains in Python with Ember on a thread of its own
(:class:`TrainingSession`) and streams its state to the page over a WebSocket: the decision
boundary, every neuron's output, the weights, the loss curves and the gradient health. The URL
holds the whole configuration (:meth:`PlaygroundConfig.to_query`), the model downloads as an
Ember file, and the page shows the Python code that rebuilds it (:func:`recipe.python_code`).

The page (HTML, CSS and JavaScript in ``static/``) ships inside the package and loads nothing
from the network. The server needs ``aiohttp`` (``pip install 'ember[playground]'``).

Example:
    >>> from ember.playground import PlaygroundConfig
    >>> PlaygroundConfig.from_query("dataset=xor&hidden_layers=4").dataset
    'xor'
"""

from .config import PlaygroundConfig
from .server import PlaygroundServer, create_app, main, serve
from .session import TrainingSession

__all__ = [
    "PlaygroundConfig",
    "PlaygroundServer",
    "TrainingSession",
    "create_app",
    "main",
    "serve",
]
