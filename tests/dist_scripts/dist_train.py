"""Data-parallel runs for tests/test_distributed.py: ``mpiexec -n N python dist_train.py OUT``.

Every rank trains the same models with ``fit(..., distribute=True)`` and writes its final weights
and logs to ``OUT/rank<r>.npz`` / ``OUT/rank<r>.json``, with the results of the low-level checks
(``all_reduce``, ``DistributedOptimizer``, ``broadcast_weights``, ``check_model``). The test
module imports the ``*_run`` functions to train the same models in one process, without
``distribute``, as the reference.

The runs are sized for the acceptance test (3 epochs each) and for a small CI budget: a few
hundred 8x8 digits, so each takes well under a second.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

import ember
from ember import distributed, layers
from ember.datasets import digits


def digits_data(n: int, image: bool = False):
    (x, y), _ = digits.load_data()
    x = x[:n].astype("float32") / 16.0
    x = x.reshape(-1, 8, 8, 1) if image else x.reshape(-1, 64)
    return x, y[:n].astype("int64")


def _unsync_other_ranks(model, distribute: bool) -> None:
    """Ranks other than 0 get other weights and another generator state: fit must start
    every rank from rank 0's (the test then matches the single-process run)."""
    if distribute and distributed.rank() != 0:
        for p in model.weights:
            p.data = p.data + 0.5
        ember.manual_seed(1234 + distributed.rank())


def mlp_run(distribute: bool, out_dir: str | None = None):
    """The digits MLP; 193 samples in batches of 32: the last batch has 1 sample, so with 2 or
    3 ranks some ranks have an empty shard at every epoch's end."""
    x, y = digits_data(193)
    ember.manual_seed(0)
    model = ember.models.zoo.mlp((64,), 10, hidden=(32, 16))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    _unsync_other_ranks(model, distribute)
    callbacks = []
    if out_dir is not None:  # rank-named files: only rank 0's may exist afterwards
        tag = distributed.rank()
        callbacks = [
            ember.callbacks.ModelCheckpoint(os.path.join(out_dir, f"ckpt-rank{tag}.ember")),
            ember.callbacks.CSVLogger(os.path.join(out_dir, f"log-rank{tag}.csv")),
        ]
    x_val, y_val = digits_data(240)
    history = model.fit(x, y, batch_size=32, epochs=3, verbose=2 if out_dir else 0,
                        callbacks=callbacks, validation_data=(x_val[193:], y_val[193:]),
                        distribute=distribute)
    return model.get_weights(), history.history


def convnet_run(distribute: bool):
    """A small convnet (conv, pooling, dense) with SGD and momentum; validation_split."""
    x, y = digits_data(150, image=True)
    ember.manual_seed(0)
    model = ember.models.Sequential([
        layers.Input(shape=(8, 8, 1)),
        layers.Conv2D(8, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=ember.optimizers.SGD(0.1, momentum=0.9),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    _unsync_other_ranks(model, distribute)
    history = model.fit(x, y, batch_size=20, epochs=3, verbose=0, validation_split=0.2,
                        distribute=distribute)
    return model.get_weights(), history.history


def loader_run(distribute: bool):
    """Training batches from a shuffling DataLoader (an iterable, drawn on every rank)."""
    x, y = digits_data(100)
    ember.manual_seed(0)
    loader = ember.data.DataLoader(ember.data.TensorDataset(x, y), batch_size=25, shuffle=True)
    model = ember.models.zoo.linear((64,), 10)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    _unsync_other_ranks(model, distribute)
    history = model.fit(loader, epochs=3, verbose=0, distribute=distribute)
    return model.get_weights(), history.history


class CustomStep(ember.Model):
    """Linear regression with its own train_step: gradients by GradientTape, the update by a
    DistributedOptimizer (the way a GAN's two optimizers are averaged)."""

    def __init__(self):
        super().__init__()
        self.dense = layers.Dense(1)
        self.mse = ember.metrics.Mean(name="mse")
        self.dist_opt = distributed.DistributedOptimizer(ember.optimizers.SGD(0.05))

    def call(self, x, training=None):
        return self.dense(x)

    def train_step(self, data):
        x, y = data
        with ember.GradientTape() as tape:
            loss = ember.ops.mean((self(x, training=True) - y) ** 2)
        grads = tape.gradient(loss, self.trainable_weights)
        self.dist_opt.apply(grads, self.trainable_weights)
        self.mse.update_state(float(loss.data), sample_weight=len(x))
        return {"mse": self.mse.result(), "batch_loss": float(loss.data)}


def custom_run(distribute: bool):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 4)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5], [3.0]], "float32") + 1.0).astype("float32")
    ember.manual_seed(0)
    model = CustomStep()
    model(x[:1])
    model.compile(optimizer="sgd")
    _unsync_other_ranks(model, distribute)
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0, distribute=distribute)
    return model.get_weights(), history.history


def nan_run(distribute: bool):
    """A NaN target in the second batch lands in one rank's shard only: every rank must skip
    that update and raise the same NonFiniteLossError, as the single process does."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 3)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    y[37] = np.nan
    ember.manual_seed(0)
    model = ember.models.zoo.linear((3,), 1)
    model.compile(optimizer="sgd", loss="mse")
    try:
        model.fit(x, y, batch_size=20, epochs=1, verbose=0, shuffle=False,
                  distribute=distribute)
        message = None
    except ember.models.trainer.NonFiniteLossError as exc:
        message = str(exc)
    return model.get_weights(), message


def unaveraged_run() -> str | None:
    """A custom train_step that updates through a plain optimizer: fit must refuse (the ranks'
    models would drift apart), on every rank."""

    class Plain(CustomStep):
        def train_step(self, data):
            x, y = data
            with ember.GradientTape() as tape:
                loss = ember.ops.mean((self(x, training=True) - y) ** 2)
            grads = tape.gradient(loss, self.trainable_weights)
            self.optimizer.apply(grads, self.trainable_weights)
            return {"loss": float(loss.data)}

    model = Plain()
    x = np.ones((8, 4), "float32")
    model(x[:1])
    model.compile(optimizer="sgd")
    try:
        model.fit(x, x[:, :1], batch_size=4, epochs=1, verbose=0, distribute=True)
    except RuntimeError as exc:
        return str(exc)
    return None


def batchnorm_run():
    """A convnet with batch normalization: statistics per rank, moving averages averaged at
    each epoch's end, so all ranks end with the same moving averages."""
    x, y = digits_data(64, image=True)
    ember.manual_seed(0)
    model = ember.models.zoo.convnet_bn((8, 8, 1), 10, filters=(4,), augment=False,
                                        dropout=0.0, dense_units=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, distribute=True)
    return [p.data.copy() for p in model.non_trainable_weights]


def low_level_checks() -> dict:
    """all_reduce, DistributedOptimizer (weighted, with None gradients, step()),
    broadcast_weights and check_model; the test compares with closed forms."""
    r, n = distributed.rank(), distributed.size()
    out = {
        "sum": distributed.all_reduce(np.array([r + 1.0, 2.0]), op="sum").tolist(),
        "mean": distributed.all_reduce(ember.tensor([float(r)])).numpy().tolist(),
        "max": distributed.all_reduce(np.array([r], dtype=np.int32), op="max").tolist(),
        "min_dtype": str(distributed.all_reduce(np.array([r], dtype=np.int32), op="min").dtype),
        "scalar": distributed.all_reduce(float(r), op="sum"),
    }
    w = ember.tensor([1.0, 1.0], requires_grad=True)
    unused = ember.tensor([5.0], requires_grad=True)
    partial = ember.tensor([0.0], requires_grad=True)
    opt = distributed.DistributedOptimizer(ember.optimizers.SGD(learning_rate=1.0))
    grads = [np.array([r + 1.0, 0.0]), None, None if r == 0 else np.array([1.0])]
    opt.apply(grads, [w, unused, partial], weight=r + 1)
    out["weighted"] = [w.numpy().tolist(), unused.numpy().tolist(), partial.numpy().tolist()]
    v = ember.tensor([0.0, 0.0], requires_grad=True)
    torch_style = distributed.DistributedOptimizer(ember.optimizers.SGD([v], learning_rate=1.0))
    (v * ember.tensor([float(r), 1.0])).sum().backward()
    torch_style.step()
    out["step"] = [v.numpy().tolist(), v.grad.tolist(), torch_style.iterations]
    ember.manual_seed(0)
    model = ember.models.zoo.linear((3,), 2)
    model.set_weights([np.full(a.shape, float(r), a.dtype) for a in model.get_weights()])
    distributed.broadcast_weights(model, root=n - 1)
    out["broadcast"] = sorted({float(a.min()) for a in model.get_weights()}
                              | {float(a.max()) for a in model.get_weights()})
    out.update(optimizer_checks(r))
    hidden = (32,) if r == 0 else (16,)
    try:
        distributed.check_model(ember.models.zoo.mlp((64,), 10, hidden=hidden))
        out["mismatch"] = None
    except ValueError as exc:
        out["mismatch"] = str(exc)
    return out


def optimizer_checks(r: int) -> dict:
    """fit(distribute=True) starts every rank from rank 0's optimizer state, and refuses to
    start when the ranks' optimizer states differ in structure (rank 0 alone has trained)."""
    out = {}
    x, y = np.ones((4, 3), "float32"), np.array([0, 1, 0, 1])
    for name in ("optimizer_state", "optimizer_mismatch"):
        ember.manual_seed(0)
        model = ember.models.zoo.linear((3,), 2)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        if name == "optimizer_state" or r == 0:  # different data per rank: different states
            model.train_on_batch(x * (r + 1), y)
        try:
            model.fit(x, y, batch_size=4, epochs=0, verbose=0, distribute=True)
        except ValueError as exc:
            out[name] = str(exc)
            continue
        state = model.optimizer.state
        out[name] = [float(np.sum(v)) for s in state for k, v in sorted(s.items())]
        out[name] += [float(a.sum()) for a in model.get_weights()]
    return out


def main(out_dir: str) -> None:
    info = distributed.init(seed=0)
    result = {"info": info._asdict(), "checks": low_level_checks()}
    arrays = {}
    runs = {"mlp": lambda: mlp_run(True, out_dir), "convnet": lambda: convnet_run(True),
            "loader": lambda: loader_run(True), "custom": lambda: custom_run(True)}
    for name, run in runs.items():
        weights, history = run()
        result[name] = history
        arrays.update({f"{name}/{i}": w for i, w in enumerate(weights)})
    arrays.update({f"batchnorm/{i}": w for i, w in enumerate(batchnorm_run())})
    weights, result["nan"] = nan_run(True)
    arrays.update({f"nan/{i}": w for i, w in enumerate(weights)})
    result["unaveraged"] = unaveraged_run()
    result["rng_after"] = float(ember.random.uniform(()).numpy())
    np.savez(os.path.join(out_dir, f"rank{info.rank}.npz"), **arrays)
    with open(os.path.join(out_dir, f"rank{info.rank}.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1])
