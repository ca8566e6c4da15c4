"""Model / Sequential: compile, fit, evaluate, predict, summary and the training loop.

Catalogue cases (``/work/shared/reliability-catalogue.md``): D1–D3 and D7 (§2.5, data and the
training loop), B2–B4, B6, B9, B10 (§2.6, bad input), R1–R3 (§2.8, determinism), and the load bars
of §3.1 (predict memory), §3.2 (depth) and §3.3 (long runs).

R3 — the limits of bit-exactness. Every ``np.array_equal`` on weights in this file (and in
``test_saving.py``) holds only within ONE machine, ONE NumPy/BLAS build and ONE BLAS thread count:
OpenBLAS picks different kernels per CPU and splits matrix products differently per thread count,
which changes the rounding. Across machines or builds, training results agree only to float
tolerance. That is why the "fresh process" comparisons below run the child with the same
interpreter, the same BLAS library and the same thread setting as the parent, and why
``test_R3_fresh_process_has_same_numerics_environment`` checks that precondition.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import math
import re
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from _helpers import openblas_thread_controls, run_child

import ember
from ember import layers, models
from ember.models import NonFiniteLossError


# ------------------------------------------------------------------------------ environment
# ------------------------------------------------------------------------------ helpers
def _mlp(inputs=4, hidden=8, classes=3, activation="tanh", **dense_kwargs):
    return models.Sequential(
        [
            layers.Input(shape=(inputs,)),
            layers.Dense(hidden, activation=activation, **dense_kwargs),
            layers.Dense(classes, activation="softmax"),
        ]
    )


def _classification_data(n=60, features=4, classes=3, seed=0):
    """Well separated Gaussian clusters: a small model learns them in a few epochs."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    centres = rng.normal(scale=3.0, size=(classes, features))
    x = (centres[y] + rng.normal(size=(n, features))).astype(np.float32)
    return x, y.astype(np.int64)


def _record_batches(model):
    """Wrap ``model.train_step`` (on the instance) to record the first feature of every batch."""
    seen = []
    original = model.train_step

    def spy(data):
        seen.append(np.asarray(data[0])[:, 0].copy())
        return original(data)

    model.train_step = spy
    return seen


def _weights_equal(a, b) -> bool:
    return len(a) == len(b) and all(
        x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, b)
    )


# ================================================================ D — data and training loop
def _d1_run(seed, shuffle=True):
    ember.manual_seed(seed)
    x = np.stack([np.arange(100), np.ones(100)], axis=1).astype(np.float32)  # column 0 = id
    y = np.zeros(100, dtype=np.float32)
    model = models.Sequential([layers.Input(shape=(2,)), layers.Dense(1)])
    model.compile(optimizer=ember.optimizers.SGD(learning_rate=0.0), loss="mse")
    seen = _record_batches(model)
    model.fit(x, y, batch_size=10, epochs=3, shuffle=shuffle, verbose=0)
    assert [len(b) for b in seen] == [10] * 30
    return [np.concatenate(seen[e * 10 : (e + 1) * 10]).astype(int) for e in range(3)]


def test_D1_shuffle_per_epoch():
    orders = _d1_run(seed=0)
    for order in orders:  # every sample exactly once per epoch
        assert np.array_equal(np.sort(order), np.arange(100))
    assert not np.array_equal(orders[0], np.arange(100)), "epoch 1 was not shuffled"
    assert not np.array_equal(orders[0], orders[1])
    assert not np.array_equal(orders[1], orders[2])
    assert not np.array_equal(orders[0], orders[2])
    # same seed, same orders; another seed, other orders
    again = _d1_run(seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(orders, again))
    other = _d1_run(seed=1)
    assert not np.array_equal(orders[0], other[0])
    # shuffle=False keeps the original order in every epoch
    for order in _d1_run(seed=0, shuffle=False):
        assert np.array_equal(order, np.arange(100))


def test_D2_last_partial_batch_and_sample_weighted_epoch_loss():
    ember.manual_seed(0)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(10, 3)).astype(np.float32)
    x[8:] *= 5.0  # the last (partial) batch has a much larger loss than the others
    y = rng.normal(size=(10, 1)).astype(np.float32)
    model = models.Sequential([layers.Input(shape=(3,)), layers.Dense(1)])
    model.compile(optimizer=ember.optimizers.SGD(learning_rate=0.0), loss="mse")
    sizes = []
    original = model.train_step

    def spy(data):
        sizes.append(len(data[0]))
        return original(data)

    model.train_step = spy
    batch_losses = []
    log_batches = ember.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: batch_losses.append(logs["loss"])
    )
    history = model.fit(
        x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[log_batches]
    )
    assert sizes == [4, 4, 2]  # steps = ceil(10 / 4), the last batch is kept
    epoch_loss = history.history["loss"][0]
    full_data_loss = model.evaluate(x, y, batch_size=10, verbose=0)
    assert epoch_loss == pytest.approx(full_data_loss, rel=1e-6, abs=0)
    # the check discriminates: an unweighted mean of the three batch losses is far off
    unweighted = sum(batch_losses) / 3
    assert abs(unweighted - full_data_loss) > 1e-3 * full_data_loss


def test_D3_validation_split_takes_the_last_samples():
    ember.manual_seed(0)
    x = np.arange(10, dtype=np.float32).reshape(10, 1)
    y = np.zeros(10, dtype=np.float32)
    # prediction = x exactly, so each sample's squared error is x**2 (hand-computable)
    model = models.Sequential(
        [layers.Input(shape=(1,)), layers.Dense(1, kernel_initializer="ones")]
    )
    model.compile(optimizer=ember.optimizers.SGD(learning_rate=0.0), loss="mse")
    seen = _record_batches(model)
    history = model.fit(x, y, batch_size=3, epochs=3, validation_split=0.2, shuffle=True, verbose=0)
    assert [len(b) for b in seen] == [3, 3, 2] * 3
    for epoch in range(3):
        rows = np.concatenate(seen[epoch * 3 : (epoch + 1) * 3]).astype(int)
        assert sorted(rows.tolist()) == list(range(8))  # 8 and 9 never train
    assert history.history["val_loss"] == [72.5] * 3  # mean(8**2, 9**2): samples 8 and 9
    # mean of 0**2 .. 7**2, up to float32 rounding of the per-batch means
    assert history.history["loss"] == pytest.approx([17.5] * 3, rel=1e-6)

    with pytest.raises(ValueError, match=r"validation_split"):
        model.fit(x, y, validation_split=1.0, verbose=0)  # nothing left to train on
    with pytest.raises(ValueError, match=r"0 for validation"):
        model.fit(x[:3], y[:3], validation_split=0.2, verbose=0)  # int(0.6) == 0


def test_D7_row_order_of_a_full_batch_does_not_change_loss_or_gradients():
    ember.manual_seed(0)
    model = _mlp(inputs=16, hidden=32, classes=5)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 16)).astype(np.float32)
    y = rng.integers(0, 5, size=64)

    def loss_and_grads(xx, yy):
        loss = model.loss(yy, model(xx, training=True))
        return float(loss.data), ember.grad(loss, model.weights)

    loss0, grads0 = loss_and_grads(x, y)
    perm = rng.permutation(64)
    loss1, grads1 = loss_and_grads(x[perm], y[perm])
    assert abs(loss0 - loss1) <= 1e-6
    for g0, g1 in zip(grads0, grads1):
        assert np.abs(g0).max() > 1e-3  # a real gradient, not trivially equal zeros
        np.testing.assert_allclose(g1, g0, rtol=0, atol=1e-6)


# ================================================================ B — bad input
def test_B2_length_mismatch_names_both_sizes():
    model = _mlp()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x, y = _classification_data(n=100)
    with pytest.raises(ValueError, match=r"x sizes: 100, y sizes: 90"):
        model.fit(x[:100], y[:90], verbose=0)
    with pytest.raises(ValueError, match=r"x sizes: 90, y sizes: 100"):
        model.evaluate(x[:90], y[:100], verbose=0)


def test_B3_nan_in_x_is_reported_with_its_row():
    model = _mlp()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x, y = _classification_data(n=20)
    bad = x.copy()
    bad[7, 2] = np.nan
    with pytest.raises(ValueError, match=r"1 non-finite value.*first at row 7"):
        model.fit(bad, y, verbose=0)
    bad[7, 2], bad[12, 0] = 1.0, -np.inf
    for call in (lambda: model.evaluate(bad, y, verbose=0), lambda: model.predict(bad)):
        with pytest.raises(ValueError, match=r"first at row 12"):
            call()


def _snapshotting(model):
    """Record the weights before every train_step (the 'last finite state' candidates)."""
    snapshots = []
    original = model.train_step

    def spy(data):
        snapshots.append(model.get_weights())
        return original(data)

    model.train_step = spy
    return snapshots


def test_B3_diverging_regression_stops_with_finite_weights():
    ember.manual_seed(0)
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(64, 4)) * 10).astype(np.float32)
    y = (x @ np.ones((4, 1))).astype(np.float32)
    model = models.Sequential([layers.Input(shape=(4,)), layers.Dense(1)])
    model.compile(optimizer=ember.optimizers.SGD(learning_rate=10.0), loss="mse")
    snapshots = _snapshotting(model)
    with pytest.raises(NonFiniteLossError, match=r"loss became (inf|nan) at epoch \d+, batch \d+"):
        with np.errstate(all="ignore"):
            model.fit(x, y, batch_size=8, epochs=50, verbose=0)
    assert len(snapshots) >= 2  # at least one finite step happened before the blow-up
    weights = model.get_weights()
    assert all(np.isfinite(w).all() for w in weights)
    assert _weights_equal(weights, snapshots[-1])  # the state before the failing batch


def test_B3_loss_becoming_inf_names_epoch_and_batch():
    ember.manual_seed(0)
    x, y = _classification_data(n=8)
    calls = {"n": 0}
    base = ember.losses.SparseCategoricalCrossentropy()

    def flaky_loss(y_true, y_pred):
        calls["n"] += 1
        value = base(y_true, y_pred)
        return value * np.float32(np.inf) if calls["n"] == 5 else value

    model = _mlp()
    model.compile(optimizer="adam", loss=flaky_loss)
    snapshots = _snapshotting(model)
    with pytest.raises(NonFiniteLossError, match=r"loss became inf at epoch 2, batch 1 of 4"):
        model.fit(x, y, batch_size=2, epochs=3, shuffle=False, verbose=0)
    assert len(snapshots) == 5
    assert not _weights_equal(snapshots[4], snapshots[0])  # 4 real steps happened
    assert _weights_equal(model.get_weights(), snapshots[4])


def test_B3_nonfinite_gradient_with_finite_loss_skips_the_update():
    # sqrt at 0: the loss is 0 (finite) but its gradient is NaN. Before the fix the update was
    # applied, the weights became NaN and only the next batch raised, wrongly claiming the
    # weights were "those after the last finite step".
    model = models.Sequential(
        [layers.Input(shape=(2,)), layers.Dense(1, kernel_initializer="zeros")]
    )

    def rmse(y_true, y_pred):
        return ember.sqrt(((y_pred - y_true.reshape(-1, 1)) ** 2).mean())

    model.compile(optimizer="sgd", loss=rmse)
    before = model.get_weights()
    with pytest.raises(NonFiniteLossError, match=r"gradient.*not finite.*epoch 1, batch 1"):
        with np.errstate(all="ignore"):
            model.fit(np.ones((4, 2), np.float32), np.zeros(4, np.float32), batch_size=2, verbose=0)
    assert _weights_equal(model.get_weights(), before)


def test_B4_dtypes():
    ember.manual_seed(0)
    x, y = _classification_data(n=30)
    model = _mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x.astype(np.float64), y, epochs=2, verbose=0)
    assert {w.dtype for w in model.get_weights()} == {np.dtype(np.float32)}
    assert model.predict(x.astype(np.float64)).dtype == np.float32
    # uint8 images are accepted and mean the same as their float32 values
    pixels = np.random.default_rng(0).integers(0, 256, size=(30, 4)).astype(np.uint8)
    out = model.predict(pixels)
    assert out.dtype == np.float32
    assert np.array_equal(out, model.predict(pixels.astype(np.float32)))
    history = model.fit(pixels, y, epochs=1, verbose=0)
    assert math.isfinite(history.history["loss"][0])
    # bool arrays (one-hot encodings, as Keras' character-LSTM example builds them) mean 0 and
    # 1, as Keras casts them; str and object arrays are refused with TypeError
    assert np.array_equal(model.predict(x > 0), model.predict((x > 0).astype(np.float32)))
    assert math.isfinite(model.fit(x > 0, y, epochs=1, verbose=0).history["loss"][0])
    for bad in (x.astype(str), x.astype(object)):
        with pytest.raises(TypeError, match=r"dtype"):
            model.fit(bad, y, verbose=0)
        with pytest.raises(TypeError, match=r"dtype"):
            model.predict(bad)
        with pytest.raises(TypeError, match=r"dtype"):
            model.evaluate(bad, y, verbose=0)


def test_B6_empty_arrays():
    model = _mlp(classes=5)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x, y = _classification_data(n=10, classes=5)
    with pytest.raises(ValueError, match=r"empty \(0 samples\)"):
        model.fit(x[:0], y[:0], verbose=0)
    with pytest.raises(ValueError, match=r"empty \(0 samples\)"):
        model.evaluate(x[:0], y[:0], verbose=0)
    out = model.predict(x[:0])
    assert isinstance(out, np.ndarray)
    assert out.shape == (0, 5)
    assert out.dtype == np.float32


def test_B9_unknown_identifiers_and_bad_hyperparameters():
    model = _mlp()
    with pytest.raises(ValueError, match=r"(?i)did you mean 'adam'") as info:
        model.compile(optimizer="adm", loss="sparse_categorical_crossentropy")
    assert "sgd" in str(info.value)  # the valid names are listed
    with pytest.raises(ValueError, match=r"(?i)unknown loss 'mes'.*did you mean 'mse'"):
        model.compile(optimizer="adam", loss="mes")
    with pytest.raises(ValueError, match=r"(?i)unknown metric 'acuracy'.*did you mean 'accuracy'"):
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["acuracy"])
    with pytest.raises(ValueError, match=r"learning_rate"):
        ember.optimizers.SGD(learning_rate=-0.1)

    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x, y = _classification_data(n=20)
    bad_calls = {
        "batch_size": dict(batch_size=0),
        "epochs": dict(epochs=-1),
        "validation_split": dict(validation_split=1.0),
    }
    for name, kwargs in bad_calls.items():
        with pytest.raises(ValueError, match=name):
            model.fit(x, y, verbose=0, **kwargs)
    for batch_size in (2.0, True):  # a wrong type is a TypeError, a wrong value a ValueError
        with pytest.raises(TypeError, match="batch_size"):
            model.fit(x, y, batch_size=batch_size, verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        model.fit(x, y, batch_size=-3, verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        model.predict(x, batch_size=0)


def test_B9_failed_compile_leaves_the_model_unchanged():
    # Bug fixed in Model.compile: the optimizer and loss used to be replaced before a bad
    # metric name was rejected, leaving a half-reconfigured model.
    model = _mlp()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    optimizer, loss, specs = model.optimizer, model.loss, dict(model._compile_args)
    with pytest.raises(ValueError):
        model.compile(optimizer="adam", loss="mse", metrics=["acuracy"])
    with pytest.raises(ValueError):
        model.compile(optimizer="adam", loss="mes")
    assert model.optimizer is optimizer and model.loss is loss
    assert model._compile_args == specs
    x, y = _classification_data(n=12)
    assert len(model.evaluate(x, y, verbose=0)) == 2  # still [loss, accuracy]


def test_B10_lists_tuples_numpy_scalars_and_ragged_lists():
    ember.manual_seed(0)
    x, y = _classification_data(n=12)
    model = _mlp()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    history = model.fit(x.tolist(), y.tolist(), epochs=1, verbose=0)
    assert math.isfinite(history.history["loss"][0])
    history = model.fit(tuple(map(tuple, x.tolist())), tuple(y.tolist()), epochs=1, verbose=0)
    assert math.isfinite(history.history["loss"][0])
    expected = model.predict(x)
    assert np.array_equal(model.predict(x.tolist()), expected)
    assert np.array_equal(model.predict(tuple(map(tuple, x.tolist()))), expected)
    row = x[0]
    scalars = [[np.float32(row[0]), np.float64(row[1]), np.float32(row[2]), np.float16(1.5)]]
    direct = model.predict(np.array([[row[0], row[1], row[2], 1.5]], dtype=np.float32))
    assert np.array_equal(model.predict(scalars), direct)
    assert float(model.evaluate(x.tolist(), y.tolist(), verbose=0)) > 0
    assert ember.tensor(np.float64(2.5)).item() == 2.5

    ragged = [[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0]]
    with pytest.raises(ValueError, match=r"x could not be read as an array"):
        model.fit(ragged, [0, 1], verbose=0)
    with pytest.raises(ValueError, match=r"x could not be read as an array"):
        model.predict(ragged)
    with pytest.raises(ValueError, match=r"rectangular"):
        ember.tensor(ragged)


# ================================================================ R — determinism
def _r1_train(seed: int) -> list[np.ndarray]:
    """seed, build, fit 50 steps (5 epochs of 10 batches), return the weights."""
    ember.manual_seed(seed)
    x, y = _classification_data(n=200, features=6, classes=4, seed=7)
    model = _mlp(inputs=6, hidden=16, classes=4, activation="relu")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=20, epochs=5, verbose=0)
    assert model.optimizer.iterations == 50
    return model.get_weights()


def _numerics_environment() -> dict:
    blas = openblas_thread_controls()
    config = np.show_config(mode="dicts")
    return {
        "python": sys.version,
        "numpy": np.__version__,
        "blas": config.get("Build Dependencies", {}).get("blas", {}),
        "blas_threads": None if blas is None else int(blas[1]()),
        "ember_file": ember.__file__,
    }


def _r1_child(out_path: str) -> None:
    """Entry point of the fresh process of R1/R3 (runs ``python -c``)."""
    np.savez(out_path, *_r1_train(0))
    Path(out_path + ".json").write_text(json.dumps(_numerics_environment()))


@pytest.fixture(scope="module")
def r1_child_result(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("r1") / "weights.npz")
    run_child(f"import test_models as t; t._r1_child({out!r})")
    with np.load(out, allow_pickle=False) as archive:
        weights = [archive[f"arr_{i}"] for i in range(len(archive.files))]
    return weights, json.loads(Path(out + ".json").read_text())


def test_R1_same_seed_same_weights_in_process_and_in_a_fresh_process(r1_child_result):
    first = _r1_train(0)
    second = _r1_train(0)
    assert _weights_equal(first, second)
    child_weights, _ = r1_child_result
    assert _weights_equal(first, child_weights), "a fresh process trained different weights"
    other = _r1_train(1)
    assert not any(np.array_equal(a, b) for a, b in zip(first, other))


def test_R3_fresh_process_has_same_numerics_environment(r1_child_result):
    """Bit-exactness is promised only within one machine, NumPy/BLAS build and BLAS thread
    count (see the module docstring); this checks that the 'fresh process' comparisons of R1,
    P1 and P5 really compare like with like, so a mismatch is reported as such."""
    _, child_env = r1_child_result
    parent_env = json.loads(json.dumps(_numerics_environment()))
    assert child_env == parent_env


def _r2_train(**options) -> list[np.ndarray]:
    metrics = options.pop("metrics", None)
    ember.manual_seed(0)
    x, y = _classification_data(n=90, seed=5)
    model = _mlp(hidden=12, activation="relu")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=metrics)
    model.fit(x, y, batch_size=16, epochs=4, **options)
    return model.get_weights()


def test_R2_observers_do_not_change_training(capsys):
    baseline = _r2_train(verbose=0)
    x_val, y_val = _classification_data(n=30, seed=9)
    logged = []

    class Logger(ember.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            logged.append((batch, logs["loss"], self.model.get_weights()[0].sum()))

        def on_epoch_end(self, epoch, logs=None):
            print(f"epoch {epoch}: {logs}")

    variants = {
        "verbose=1": dict(verbose=1),
        "verbose=2": dict(verbose=2),
        "logging callback": dict(verbose=0, callbacks=[Logger()]),
        "metrics": dict(verbose=0, metrics=["accuracy"]),
        "validation every epoch": dict(verbose=0, validation_data=(x_val, y_val)),
        "all of them": dict(
            verbose=2,
            callbacks=[Logger()],
            metrics=["accuracy"],
            validation_data=(x_val, y_val),
        ),
    }
    for name, options in variants.items():
        assert _weights_equal(_r2_train(**options), baseline), f"{name} changed the weights"
    out = capsys.readouterr().out
    assert "Epoch 4/4" in out and "val_loss" in out and "epoch 3:" in out
    assert len(logged) == 2 * 4 * 6  # the logger really ran (6 batches x 4 epochs x 2 runs)


# ================================================================ fit / evaluate / predict API
def test_history_keys_hold_per_epoch_floats():
    ember.manual_seed(0)
    x, y = _classification_data(n=50)
    model = _mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=8, epochs=3, validation_split=0.2, verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert history.epoch == [0, 1, 2]
    for key, values in history.history.items():
        assert len(values) == 3, key
        assert all(type(v) is float and math.isfinite(v) for v in values), key
    accuracies = history.history["accuracy"] + history.history["val_accuracy"]
    assert all(0.0 <= v <= 1.0 for v in accuracies)
    assert history.history["loss"][-1] < history.history["loss"][0]
    # the last epoch's validation numbers are those of the final weights on the last 10 rows
    val_loss, val_acc = model.evaluate(x[40:], y[40:], batch_size=8, verbose=0)
    assert history.history["val_loss"][-1] == val_loss
    assert history.history["val_accuracy"][-1] == val_acc
    assert model.history is history


def test_evaluate_returns_float_or_loss_and_metrics():
    ember.manual_seed(0)
    x, y = _classification_data(n=40)
    model = _mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, verbose=0)
    loss = model.evaluate(x, y, verbose=0)
    assert isinstance(loss, float)
    probs = model.predict(x).astype(np.float64)
    expected_loss = -np.mean(np.log(probs[np.arange(len(y)), y]))
    assert loss == pytest.approx(expected_loss, rel=1e-5)

    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    result = model.evaluate(x, y, verbose=0)
    assert isinstance(result, list) and len(result) == 2
    assert result[0] == pytest.approx(loss, rel=1e-6)
    assert result[1] == pytest.approx(np.mean(probs.argmax(axis=1) == y), abs=1e-12)
    assert model.evaluate(x, y, verbose=0, return_dict=True).keys() == {"loss", "accuracy"}


def test_predict_is_batched_graph_free_and_returns_an_ndarray():
    ember.manual_seed(0)
    model = _mlp()
    x, _ = _classification_data(n=100)
    first = model.layers[0]
    calls = []
    original_call = first.call

    def spy(inputs, **kwargs):
        calls.append((inputs.shape[0], ember.is_grad_enabled()))
        return original_call(inputs, **kwargs)

    first.call = spy
    out = model.predict(x, batch_size=32)
    assert [n for n, _ in calls] == [32, 32, 32, 4]
    assert not any(grad for _, grad in calls), "predict recorded a graph"
    assert ember.is_grad_enabled()  # and switched recording back on
    assert type(out) is np.ndarray and out.shape == (100, 3) and out.dtype == np.float32
    assert out.flags.writeable and out.flags.owndata
    # same numbers as one big graph-recording forward pass
    reference = model(x, training=False)
    assert reference.requires_grad
    np.testing.assert_allclose(out, reference.data, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_predict_memory_does_not_grow_with_n(dtype):
    """§3.1: predict's working memory (peak minus the returned array, which is necessarily
    N x 10) is the same for N and 4N rows of a 784-256-10 model.

    Before the fix predict kept a list of chunks plus their concatenation, built an N x 784
    boolean mask for the NaN check and cast the whole input to float32 (for uint8 MNIST-style
    input: 4 bytes per pixel for all N rows)."""
    ember.manual_seed(0)
    model = models.Sequential(
        [
            layers.Input(shape=(784,)),
            layers.Dense(256, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ]
    )
    rng = np.random.default_rng(0)
    overhead = {}
    for n in (2048, 8192):
        x = (rng.random((n, 784)) * 255).astype(dtype)
        gc.collect()
        tracemalloc.start()
        try:
            out = model.predict(x, batch_size=64)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert out.shape == (n, 10)
        overhead[n] = peak - out.nbytes
    ratio = overhead[8192] / overhead[2048]
    assert ratio < 1.3, f"predict working memory grew {ratio:.2f}x for 4x rows: {overhead}"


def test_summary_prints_keras_like_rows_and_totals():
    model = models.Sequential(
        [
            layers.Input(shape=(64,)),
            layers.Dense(32, activation="relu", name="hidden"),
            layers.Dense(1000, activation="relu", name="wide"),
            layers.Dense(10, activation="softmax", name="out"),
        ],
        name="summary_demo",
    )
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert 'Sequential: "summary_demo"' in text
    assert re.search(r"Layer \(type\)\s+Output Shape\s+Param #", text)
    rows = {
        m.group(1): (m.group(2), int(m.group(3).replace(",", "")), m.group(3))
        for m in re.finditer(r"^(\w+) \(Dense\)\s+(\(None, \d+\))\s+([\d,]+)$", text, re.M)
    }
    assert rows == {
        "hidden": ("(None, 32)", 64 * 32 + 32, "2,080"),
        "wide": ("(None, 1000)", 32 * 1000 + 1000, "33,000"),
        "out": ("(None, 10)", 1000 * 10 + 10, "10,010"),
    }
    assert model.count_params() == 45_090 == sum(count for _, count, _ in rows.values())
    assert re.search(r"Total params: 45,090 \(176\.13 KB\)", text)
    assert re.search(r"Trainable params: 45,090\b", text)
    assert re.search(r"Non-trainable params: 0\b", text)


def _functional_mlp():
    inputs = layers.Input(shape=(4,))
    hidden = layers.Dense(16, activation="relu")(inputs)
    outputs = layers.Dense(3, activation="softmax")(hidden)
    return models.Model(inputs, outputs)


class _SubclassedMLP(models.Model):
    def __init__(self):
        super().__init__()
        self.hidden = layers.Dense(16, activation="relu")
        self.out = layers.Dense(3, activation="softmax")

    def call(self, x):
        return self.out(self.hidden(x))


def _compile_and_fit(model, x, y, epochs=15):
    model.compile(
        optimizer=ember.optimizers.Adam(learning_rate=0.01),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model.fit(x, y, batch_size=16, epochs=epochs, verbose=0)


def test_functional_model_trains():
    ember.manual_seed(0)
    x, y = _classification_data(n=90)
    model = _functional_mlp()
    history = _compile_and_fit(model, x, y)
    assert history.history["loss"][-1] < 0.3 * history.history["loss"][0]
    assert history.history["accuracy"][-1] >= 0.9
    assert model.predict(x).shape == (90, 3)
    lines = []
    model.summary(print_fn=lines.append)
    assert any("(None, 16)" in line for line in lines)


def test_subclassed_model_trains():
    ember.manual_seed(0)
    x, y = _classification_data(n=90)
    model = _SubclassedMLP()
    history = _compile_and_fit(model, x, y)
    assert [w.shape for w in model.weights] == [(4, 16), (16,), (16, 3), (3,)]
    assert len(model.optimizer.params) == 4  # every sublayer's weights were optimized
    assert history.history["loss"][-1] < 0.3 * history.history["loss"][0]
    assert history.history["accuracy"][-1] >= 0.9


def test_functional_sequential_and_subclassed_models_train_identically():
    """The same layers, seed and data must give bit-identical training whatever the API."""
    x, y = _classification_data(n=90)
    results = {}
    for name, build in {
        "sequential": lambda: _mlp(hidden=16, activation="relu"),
        "functional": _functional_mlp,
        "subclassed": _SubclassedMLP,
    }.items():
        ember.manual_seed(0)
        model = build()
        model(x[:1])  # build the weights now (the subclassed model builds lazily)
        history = _compile_and_fit(model, x, y, epochs=3)
        results[name] = (model.get_weights(), history.history["loss"])
    weights, losses = results["sequential"]
    for name in ("functional", "subclassed"):
        assert _weights_equal(results[name][0], weights), name
        assert results[name][1] == losses, name


def test_low_level_training_loop():
    ember.manual_seed(0)
    x, y = _classification_data(n=60)
    model = _mlp(hidden=16)
    opt = ember.optimizers.SGD(model.parameters(), learning_rate=0.1)
    loss_fn = ember.losses.SparseCategoricalCrossentropy()
    losses = []
    for step in range(60):
        loss = loss_fn(y, model(x, training=True))
        opt.zero_grad()
        loss.backward()
        if step == 0:  # one step is exactly p <- p - lr * grad
            expected = [p.data - 0.1 * p.grad for p in model.parameters()]
        opt.step()
        if step == 0:
            assert _weights_equal([p.data for p in model.parameters()], expected)
        losses.append(float(loss.data))
    assert opt.iterations == 60
    assert losses[-1] < 0.3 * losses[0]


def test_digits_mlp_reaches_96_percent():
    ember.manual_seed(0)
    (x_train, y_train), (x_test, y_test) = ember.datasets.digits.load_data()
    model = models.Sequential(
        [
            layers.Input(shape=(8, 8)),
            layers.Flatten(),
            layers.Dense(256, activation="relu"),
            layers.Dense(128, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=ember.optimizers.Adam(learning_rate=1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(x_train / 16.0, y_train, batch_size=32, epochs=20, verbose=0)
    _, accuracy = model.evaluate(x_test / 16.0, y_test, verbose=0)
    assert accuracy >= 0.96, f"digits MLP test accuracy {accuracy:.4f} < 0.96"
    print(f"digits MLP test accuracy: {accuracy:.4f}")


# ================================================================ load (§3.2, §3.3)
def test_memory_stays_flat_over_2000_training_steps():
    ember.manual_seed(0)
    model = _mlp(inputs=16, hidden=32, classes=4, activation="relu")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = _classification_data(n=32, features=16, classes=4)
    for _ in range(200):
        model.train_step((x, y))
    gc.collect()
    tracemalloc.start()
    try:
        at_200 = tracemalloc.get_traced_memory()[0]
        for _ in range(1800):
            model.train_step((x, y))
        gc.collect()
        at_2000 = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert model.optimizer.iterations == 2000
    growth = at_2000 - at_200
    assert growth < 1_000_000, f"memory grew by {growth / 1e6:.2f} MB over 1,800 steps"


def test_live_tensor_count_is_constant_across_epochs():
    ember.manual_seed(0)
    model = _mlp(hidden=16)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = _classification_data(n=64)
    counts = []

    def count_tensors(epoch, logs):
        gc.collect()
        counts.append(sum(1 for o in gc.get_objects() if issubclass(type(o), ember.Tensor)))

    model.fit(
        x,
        y,
        batch_size=8,
        epochs=5,
        validation_split=0.25,
        verbose=0,
        callbacks=[ember.callbacks.LambdaCallback(on_epoch_end=count_tensors)],
    )
    assert len(counts) == 5
    assert counts[0] >= len(model.weights)  # the count does see the parameters
    assert counts == [counts[0]] * 5, f"live Tensors per epoch: {counts}"


def test_100_layer_tanh_mlp_has_finite_nonzero_first_layer_gradients():
    ember.manual_seed(0)
    model = models.Sequential(
        [layers.Input(shape=(32,))]
        + [
            layers.Dense(32, activation="tanh", kernel_initializer="glorot_uniform")
            for _ in range(100)
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 32)).astype(np.float32)
    target = rng.normal(size=(16, 32)).astype(np.float32)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)  # Python's default: backward must not recurse per node
    try:
        loss = model.loss(target, model(x, training=True))
        loss.backward()
    finally:
        sys.setrecursionlimit(limit)
    assert len(model.layers) == 100
    first = model.layers[0].kernel.grad
    assert first is not None and first.dtype == np.float32
    assert np.isfinite(first).all()
    assert np.abs(first).max() > 0
    assert all(np.isfinite(p.grad).all() for p in model.weights)


def test_keyboard_interrupt_mid_fit_propagates_and_leaves_a_usable_model(capsys):
    ember.manual_seed(0)
    x, y = _classification_data(n=40)
    model = _mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    at_interrupt = {}

    class Interrupt(ember.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 1 and batch == 2:
                at_interrupt["weights"] = self.model.get_weights()
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=8, epochs=5, verbose=1, callbacks=[Interrupt()])
    capsys.readouterr()
    assert model.optimizer.iterations == 5 + 3  # epoch 0 (5 batches) + 3 batches of epoch 1
    weights = model.get_weights()
    assert _weights_equal(weights, at_interrupt["weights"])  # the last completed step
    assert all(np.isfinite(w).all() for w in weights)
    assert ember.is_grad_enabled()
    out = model.predict(x)
    assert out.shape == (40, 3) and np.isfinite(out).all()
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)  # and it can train again
    assert math.isfinite(history.history["loss"][0])


def test_verbose_1_progress_bar_goes_to_stdout(capsys):
    ember.manual_seed(0)
    x, y = _classification_data(n=20)
    model = _mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with contextlib.redirect_stderr(io.StringIO()) as err:
        model.fit(x, y, batch_size=8, epochs=2, verbose=1)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out and "loss" in out
    assert err.getvalue() == ""
