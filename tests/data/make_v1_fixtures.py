"""Makes the format-v1 fixtures of ``tests/test_checkpoints_by_name.py`` with the *old* code.

Run from a worktree of commit 4a30473 (the last commit that wrote format v1)::

    git -C /work/main worktree add /tmp/ember_v1 4a30473
    PYTHONPATH=/tmp/ember_v1 .venv/bin/python tests/data/make_v1_fixtures.py tests/data
    git -C /work/main worktree remove /tmp/ember_v1

It writes ``v1_sequential.ember`` (``save`` after a compiled 2-epoch fit of an MLP with a frozen
middle layer, Adam), ``v1_sequential.weights`` (``save_weights`` of the same model),
``v1_functional.ember`` (a functional chain, SGD with momentum, MSE), and for each model an
``*_expected.npz`` (plain arrays) with the weights, the optimizer state and ``predict`` on ``x``
as the old code had them. Not a test module: pytest does not collect it.
"""

import sys
from pathlib import Path

import numpy as np

import ember
from ember import layers, models
from ember.models import saving

out = Path(sys.argv[1])
assert saving.FORMAT_VERSION == 1
rng = np.random.default_rng(7)
x = rng.normal(size=(24, 5)).astype(np.float32)
y = (np.arange(24) % 3).astype(np.int64)
y_reg = rng.normal(size=(24, 2)).astype(np.float32)

# Sequential MLP with a frozen middle layer; adam; compiled fit of 2 epochs
ember.manual_seed(1)
seq = models.Sequential([
    layers.Input(shape=(5,)),
    layers.Dense(8, activation="relu"),
    layers.Dense(6, activation="tanh", trainable=False),
    layers.Dense(3, activation="softmax"),
])
seq.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
seq.fit(x, y, batch_size=8, epochs=2, verbose=0)
seq.save(out / "v1_sequential.ember")
seq.save_weights(out / "v1_sequential.weights")
arrays = {"x": x, "predict": seq.predict(x), "iterations": np.int64(seq.optimizer.iterations)}
for i, w in enumerate(seq.get_weights()):
    arrays[f"weight/{i}"] = w
index = {id(p): i for i, p in enumerate(seq.weights)}
arrays["optimized"] = np.array([index[id(p)] for p in seq.optimizer.params], np.int64)
for i, s in enumerate(seq.optimizer.state):
    for key, value in s.items():
        arrays[f"state/{i}/{key}"] = np.asarray(value)
np.savez(out / "v1_sequential_expected.npz", **arrays)

# functional chain; SGD with momentum; mse
ember.manual_seed(2)
inputs = layers.Input(shape=(5,))
hidden = layers.Dense(4, activation="relu")(inputs)
outputs = layers.Dense(2)(hidden)
fun = models.Model(inputs, outputs, name="v1_functional")
fun.compile(optimizer=ember.optimizers.SGD(learning_rate=0.05, momentum=0.9), loss="mse")
fun.fit(x, y_reg, batch_size=8, epochs=2, verbose=0)
fun.save(out / "v1_functional.ember")
arrays = {"x": x, "predict": fun.predict(x), "iterations": np.int64(fun.optimizer.iterations)}
for i, w in enumerate(fun.get_weights()):
    arrays[f"weight/{i}"] = w
index = {id(p): i for i, p in enumerate(fun.weights)}
arrays["optimized"] = np.array([index[id(p)] for p in fun.optimizer.params], np.int64)
for i, s in enumerate(fun.optimizer.state):
    for key, value in s.items():
        arrays[f"state/{i}/{key}"] = np.asarray(value)
np.savez(out / "v1_functional_expected.npz", **arrays)
for p in sorted(out.iterdir()):
    print(p.name, p.stat().st_size)
