"""Callbacks (EarlyStopping, ModelCheckpoint, LearningRateScheduler, ReduceLROnPlateau, CSVLogger,
TerminateOnNaN, History, LambdaCallback), class weights and training/inference modes in fit.

Catalogue cases: D4 (EarlyStopping restore_best_weights), L5 (modes in fit/evaluate/predict),
B9 (bad callback hyper-parameters).

Monitored values are scripted by a callback that overwrites a log key before the callback under
test sees it, so the expected epochs are exact, not the luck of a training run.
"""

from __future__ import annotations

import csv
import math
import os

import numpy as np
import pytest

import ember
from ember import layers, models
from ember.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    LambdaCallback,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from ember.models import NonFiniteLossError


# ------------------------------------------------------------------------------ helpers
def _data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32) + 0.1).astype(np.float32)
    return x, y


def _model(lr=0.05):
    ember.manual_seed(0)
    model = models.Sequential(
        [layers.Input(shape=(3,)), layers.Dense(4, activation="tanh"), layers.Dense(1)]
    )
    model.compile(optimizer=ember.optimizers.SGD(learning_rate=lr), loss="mse")
    return model


class Scripted(Callback):
    """Overwrites ``logs[key]`` with ``values[epoch]`` (runs before the callback under test)."""

    def __init__(self, key, values):
        super().__init__()
        self.key, self.values = key, list(values)

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]


class WeightRecorder(Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


def _same(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(a, b))


def _fit_scripted(values, stopper, key="val_loss", epochs=None):
    x, y = _data()
    model = _model()
    recorder = WeightRecorder()
    history = model.fit(
        x,
        y,
        epochs=epochs or len(values),
        batch_size=16,
        validation_split=0.25,
        verbose=0,
        callbacks=[Scripted(key, values), recorder, stopper],
    )
    return model, history, recorder


# ------------------------------------------------------------------------------ EarlyStopping
def test_D4_early_stopping_restores_best_weights_even_without_stopping():
    stopper = EarlyStopping(monitor="val_loss", patience=10, restore_best_weights=True)
    model, history, recorder = _fit_scripted([5.0, 3.0, 4.0, 4.0, 4.0], stopper)
    assert history.history["val_loss"] == [5.0, 3.0, 4.0, 4.0, 4.0]
    assert len(history.epoch) == 5 and stopper.stopped_epoch == 0  # never stopped
    assert stopper.best_epoch == 1 and stopper.best == 3.0
    assert not _same(recorder.weights[1], recorder.weights[4])  # training did move the weights
    assert _same(model.get_weights(), recorder.weights[1])  # epoch-2 weights, bit-exact
    for got, want in zip(model.get_weights(), recorder.weights[1]):
        assert got.dtype == want.dtype == np.float32


def test_D4_without_restore_the_last_weights_stay():
    stopper = EarlyStopping(monitor="val_loss", patience=10)
    model, _, recorder = _fit_scripted([5.0, 3.0, 4.0, 4.0, 4.0], stopper)
    assert _same(model.get_weights(), recorder.weights[4])


def test_D4_restores_best_weights_after_an_early_stop():
    stopper = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    model, history, recorder = _fit_scripted([4.0, 2.0, 3.0, 3.0, 1.0, 1.0], stopper)
    assert len(history.epoch) == 4 and stopper.stopped_epoch == 3
    assert _same(model.get_weights(), recorder.weights[1])


def test_D4_patience_is_counted_in_epochs_without_improvement():
    stopper = EarlyStopping(patience=2)
    _, history, _ = _fit_scripted([1.0, 0.9, 0.95, 0.96, 0.97, 0.5], stopper)
    # best at epoch 1; epochs 2 and 3 do not improve -> stop after epoch 3 (index)
    assert history.epoch == [0, 1, 2, 3] and stopper.stopped_epoch == 3


def test_D4_patience_zero_stops_at_the_first_non_improvement():
    stopper = EarlyStopping(patience=0)
    _, history, _ = _fit_scripted([3.0, 2.0, 1.0, 1.5, 0.1], stopper)
    assert history.epoch == [0, 1, 2, 3]


def test_D4_min_delta_improvements_below_the_threshold_do_not_count():
    values = [1.0, 0.95, 0.93, 0.92, 0.85, 0.5]
    stopper = EarlyStopping(patience=3, min_delta=0.1)
    _, history, _ = _fit_scripted(values, stopper)
    assert stopper.stopped_epoch == 3 and stopper.best == 1.0  # no change > 0.1 after epoch 0
    plain = EarlyStopping(patience=3)  # every step is an improvement without min_delta
    _, history, _ = _fit_scripted(values, plain)
    assert len(history.epoch) == 6 and plain.stopped_epoch == 0
    # exactly the threshold is not enough; strictly more is
    edge = EarlyStopping(patience=1, min_delta=0.25)
    _, history, _ = _fit_scripted([1.0, 0.75, 0.7, 0.0], edge)
    assert edge.stopped_epoch == 1
    assert EarlyStopping(min_delta=-0.1).min_delta == 0.1  # Keras takes abs(min_delta)


def test_D4_mode_auto_maximises_accuracy_and_minimises_losses():
    assert EarlyStopping(monitor="val_accuracy")._direction == "max"
    assert EarlyStopping(monitor="val_auc")._direction == "max"
    assert EarlyStopping(monitor="f1_score")._direction == "max"
    assert EarlyStopping(monitor="val_precision")._direction == "max"
    assert EarlyStopping(monitor="val_loss")._direction == "min"
    assert EarlyStopping(monitor="val_mae")._direction == "min"
    assert EarlyStopping(monitor="val_loss", mode="max")._direction == "max"
    stopper = EarlyStopping(monitor="val_accuracy", patience=1, restore_best_weights=True)
    model, history, recorder = _fit_scripted([0.5, 0.6, 0.55, 0.9], stopper, "val_accuracy")
    assert history.epoch == [0, 1, 2] and stopper.best == 0.6
    assert _same(model.get_weights(), recorder.weights[1])
    minimiser = EarlyStopping(monitor="val_accuracy", mode="min", patience=1)
    _, history, _ = _fit_scripted([0.5, 0.6, 0.55, 0.9], minimiser, "val_accuracy")
    assert history.epoch == [0, 1]  # 0.6 is worse when minimising


def test_D4_baseline_must_be_beaten_to_reset_patience():
    # getting worse and never below the baseline: patience runs from epoch 0
    stopper = EarlyStopping(patience=2, baseline=0.5)
    _, history, _ = _fit_scripted([0.9, 0.95, 0.97, 0.99], stopper)
    assert history.epoch == [0, 1] and stopper.stopped_epoch == 1
    no_baseline = EarlyStopping(patience=2)
    _, history, _ = _fit_scripted([0.9, 0.95, 0.97, 0.99], no_baseline)
    assert history.epoch == [0, 1, 2]
    # beating the baseline resets the count
    beaten = EarlyStopping(patience=2, baseline=0.5)
    _, history, _ = _fit_scripted([0.4, 0.45, 0.46, 0.47], beaten)
    assert history.epoch == [0, 1, 2]


def test_D4_start_from_epoch_ignores_warm_up_epochs():
    stopper = EarlyStopping(patience=1, start_from_epoch=2)
    _, history, _ = _fit_scripted([1.0, 2.0, 3.0, 2.5, 2.6, 0.1], stopper)
    # epochs 0-1 ignored; best 3.0 at epoch 2, 2.5 improves, 2.6 does not -> stop at epoch 4
    assert history.epoch == [0, 1, 2, 3, 4]


def test_D4_unknown_monitor_lists_available_keys():
    x, y = _data()
    model = _model()
    with pytest.raises(ValueError, match=r"EarlyStopping: monitor='val_acc'.*available keys: loss"):
        model.fit(x, y, epochs=2, verbose=0, callbacks=[EarlyStopping(monitor="val_acc")])
    with pytest.raises(ValueError, match=r"validation_split"):
        model.fit(x, y, epochs=2, verbose=0, callbacks=[EarlyStopping()])


def test_B9_bad_callback_arguments_name_the_callback():
    with pytest.raises(ValueError, match="EarlyStopping: patience must be >= 0"):
        EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="EarlyStopping: patience must be an integer"):
        EarlyStopping(patience=1.5)
    with pytest.raises(ValueError, match="EarlyStopping: mode must be 'auto', 'min' or 'max'"):
        EarlyStopping(mode="maximum")
    with pytest.raises(ValueError, match="EarlyStopping: start_from_epoch"):
        EarlyStopping(start_from_epoch=-2)
    with pytest.raises(ValueError, match=r"ReduceLROnPlateau: factor must be in \[0, 1\)"):
        ReduceLROnPlateau(factor=1.0)
    with pytest.raises(ValueError, match="ReduceLROnPlateau: factor"):
        ReduceLROnPlateau(factor=-0.5)
    with pytest.raises(ValueError, match="ReduceLROnPlateau: patience must be >= 0"):
        ReduceLROnPlateau(patience=-3)
    with pytest.raises(ValueError, match="ReduceLROnPlateau: min_lr must be >= 0"):
        ReduceLROnPlateau(min_lr=-1e-3)
    with pytest.raises(ValueError, match="ReduceLROnPlateau: cooldown"):
        ReduceLROnPlateau(cooldown=-1)
    with pytest.raises(ValueError, match="ReduceLROnPlateau: mode"):
        ReduceLROnPlateau(mode="up")
    with pytest.raises(ValueError, match="ModelCheckpoint: mode"):
        ModelCheckpoint("m.ember", mode="best")
    with pytest.raises(ValueError, match="ModelCheckpoint: save_freq must be >= 1"):
        ModelCheckpoint("m.ember", save_freq=0)
    with pytest.raises(TypeError, match="LearningRateScheduler: schedule must be a function"):
        LearningRateScheduler(0.1)
    with pytest.raises(ValueError, match="CSVLogger: separator"):
        CSVLogger("log.csv", separator=";;")
    with pytest.raises(ValueError, match="LambdaCallback: unknown hook 'on_epoch_finish'"):
        LambdaCallback(on_epoch_finish=print)


# ------------------------------------------------------------------------------ ModelCheckpoint
def test_model_checkpoint_save_best_only_writes_only_on_improvement(tmp_path):
    x, y = _data()
    model = _model()
    path = tmp_path / "best.ember"
    saved = []
    real_save = model.save
    model.save = lambda p: (saved.append(len(saved)), real_save(p))
    ckpt = ModelCheckpoint(path, save_best_only=True)
    recorder = WeightRecorder()
    model.fit(
        x,
        y,
        epochs=5,
        batch_size=16,
        validation_split=0.25,
        verbose=0,
        callbacks=[Scripted("val_loss", [3.0, 2.0, 2.5, 1.0, 1.5]), recorder, ckpt],
    )
    assert len(saved) == 3  # epochs 0, 1 and 3 improved
    loaded = ember.models.load_model(path)
    assert _same(loaded.get_weights(), recorder.weights[3])
    assert ckpt.best == 1.0


def test_model_checkpoint_formats_the_path_per_epoch_and_saves_weights(tmp_path):
    x, y = _data()
    model = _model()
    pattern = str(tmp_path / "w-{epoch:02d}-{val_loss:.1f}.ember")
    recorder = WeightRecorder()
    model.fit(
        x,
        y,
        epochs=3,
        batch_size=16,
        validation_split=0.25,
        verbose=0,
        callbacks=[
            Scripted("val_loss", [3.0, 2.0, 2.5]),
            recorder,
            ModelCheckpoint(pattern, save_weights_only=True),
        ],
    )
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["w-01-3.0.ember", "w-02-2.0.ember", "w-03-2.5.ember"]
    fresh = _model()
    fresh.load_weights(tmp_path / "w-02-2.0.ember")
    assert _same(fresh.get_weights(), recorder.weights[1])
    with pytest.raises(ValueError, match="ModelCheckpoint: filepath .* uses 'val_acc'"):
        model.fit(
            x,
            y,
            epochs=1,
            verbose=0,
            callbacks=[ModelCheckpoint(str(tmp_path / "{val_acc}.ember"))],
        )


def test_model_checkpoint_is_atomic_old_checkpoint_survives_a_failed_save(tmp_path, monkeypatch):
    x, y = _data()
    model = _model()
    path = tmp_path / "ckpt.ember"
    recorder = WeightRecorder()
    calls = {"n": 0}
    real_replace = os.replace

    def failing_replace(src, dst):
        calls["n"] += 1
        if calls["n"] == 2:  # the second save dies just before the rename
            raise OSError("disk full (simulated)")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated"):
        model.fit(
            x, y, epochs=3, batch_size=16, verbose=0, callbacks=[recorder, ModelCheckpoint(path)]
        )
    monkeypatch.setattr(os, "replace", real_replace)
    assert calls["n"] == 2
    # the target is the complete epoch-1 checkpoint, and no temporary file is left behind
    loaded = ember.models.load_model(path)
    assert _same(loaded.get_weights(), recorder.weights[0])
    assert not _same(recorder.weights[0], recorder.weights[1])
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.ember"]


def test_model_checkpoint_save_freq_in_batches(tmp_path):
    x, y = _data()  # 48 samples, batch 16 -> 3 batches per epoch
    model = _model()
    model.fit(
        x,
        y,
        epochs=2,
        batch_size=16,
        verbose=0,
        callbacks=[ModelCheckpoint(str(tmp_path / "e{epoch}-b{batch}.ember"), save_freq=2)],
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "e1-b2.ember",
        "e2-b1.ember",
        "e2-b3.ember",
    ]


# ------------------------------------------------------------------------------ learning rate
def test_learning_rate_scheduler_sets_the_rate_each_epoch_and_logs_it():
    x, y = _data()
    model = _model(lr=0.1)
    seen = []
    spy = LambdaCallback(
        on_train_batch_begin=lambda batch, logs=None: seen.append(model.optimizer.learning_rate)
    )
    scheduler = LearningRateScheduler(lambda epoch, lr: 0.1 * 0.5**epoch)
    history = model.fit(x, y, epochs=4, batch_size=16, verbose=0, callbacks=[scheduler, spy])
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.025, 0.0125], rel=1e-12)
    assert seen == pytest.approx([0.1] * 3 + [0.05] * 3 + [0.025] * 3 + [0.0125] * 3, rel=1e-12)
    assert model.optimizer.learning_rate == pytest.approx(0.0125)
    # a one-argument schedule(epoch) is accepted, and the current lr is passed to two-arg ones
    got = []
    model.fit(
        x,
        y,
        epochs=2,
        verbose=0,
        callbacks=[LearningRateScheduler(lambda epoch, lr: got.append(lr) or lr * 2)],
    )
    assert got == pytest.approx([0.0125, 0.025])
    model.fit(x, y, epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda e: 0.3)])
    assert model.optimizer.learning_rate == pytest.approx(0.3)


def test_learning_rate_scheduler_changes_the_update_size():
    """lr = 0 from the scheduler means no update at all: the weights are unchanged."""
    x, y = _data()
    model = _model(lr=0.1)
    before = model.get_weights()
    model.fit(x, y, epochs=2, verbose=0, callbacks=[LearningRateScheduler(lambda e, lr: 0.0)])
    assert _same(model.get_weights(), before)


def test_learning_rate_scheduler_rejects_bad_outputs():
    x, y = _data()
    model = _model()
    with pytest.raises(ValueError, match="LearningRateScheduler: the schedule must return a"):
        model.fit(
            x, y, epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda e, lr: "fast")]
        )
    with pytest.raises(ValueError, match="LearningRateScheduler: the schedule returned"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda e, lr: -1.0)])


def test_lr_callbacks_refuse_to_overwrite_a_schedule():
    x, y = _data()
    model = _model()
    schedule = ember.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    model.compile(optimizer=ember.optimizers.SGD(learning_rate=schedule), loss="mse")
    with pytest.raises(TypeError, match="LearningRateScheduler: the optimizer's learning rate is"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda e, lr: lr)])
    assert model.optimizer.schedule is schedule
    # ReduceLROnPlateau only logs the scheduled rate until it would have to change it
    history = model.fit(
        x,
        y,
        epochs=2,
        batch_size=16,
        verbose=0,
        callbacks=[Scripted("loss", [1.0, 0.5]), ReduceLROnPlateau(monitor="loss", patience=1)],
    )
    assert history.history["learning_rate"] == pytest.approx([0.1 * 0.5**0.3, 0.1 * 0.5**0.6])


def _plateau_run(values, **kwargs):
    x, y = _data()
    model = _model(lr=1.0 * 0.01)
    cb = ReduceLROnPlateau(**kwargs)
    history = model.fit(
        x,
        y,
        epochs=len(values),
        batch_size=16,
        validation_split=0.25,
        verbose=0,
        callbacks=[Scripted("val_loss", values), cb],
    )
    return history.history["learning_rate"], model


def test_reduce_lr_on_plateau_reduces_after_patience():
    lrs, model = _plateau_run([1.0, 1.0, 1.0, 1.0, 1.0, 1.0], factor=0.5, patience=2)
    # logged value: the rate used during the epoch. Best at epoch 0; epochs 1-2 do not improve
    # -> reduce after epoch 2; epochs 3-4 -> reduce after epoch 4
    assert lrs == pytest.approx([0.01, 0.01, 0.01, 0.005, 0.005, 0.0025], rel=1e-12)
    assert model.optimizer.learning_rate == pytest.approx(0.0025)
    # an improvement larger than min_delta resets the count
    # (0.49995 is within min_delta=1e-4 of 0.5, so it is no improvement)
    lrs, _ = _plateau_run([1.0, 1.0, 0.5, 0.5, 0.49995, 0.5], factor=0.5, patience=2)
    assert lrs == pytest.approx([0.01, 0.01, 0.01, 0.01, 0.01, 0.005], rel=1e-12)


def test_reduce_lr_on_plateau_respects_min_lr():
    lrs, model = _plateau_run([1.0] * 6, factor=0.1, patience=1, min_lr=0.0005)
    assert lrs == pytest.approx([0.01, 0.01, 0.001, 0.0005, 0.0005, 0.0005], rel=1e-12)
    assert model.optimizer.learning_rate == pytest.approx(0.0005)


def test_reduce_lr_on_plateau_cooldown_pauses_counting():
    lrs, _ = _plateau_run([1.0] * 8, factor=0.5, patience=1, cooldown=2)
    # without cooldown patience=1 would reduce after every epoch from epoch 1 on; with it, the
    # epoch after a reduction is skipped and the next counts: reductions after epochs 1, 3, 5
    assert lrs == pytest.approx(
        [0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025, 0.00125, 0.00125], rel=1e-12
    )
    lrs, _ = _plateau_run([1.0] * 5, factor=0.5, patience=1)
    assert lrs == pytest.approx([0.01, 0.01, 0.005, 0.0025, 0.00125], rel=1e-12)


def test_reduce_lr_on_plateau_maximises_accuracy():
    x, y = _data()
    model = _model(lr=0.01)
    history = model.fit(
        x,
        y,
        epochs=4,
        verbose=0,
        callbacks=[
            Scripted("val_accuracy", [0.5, 0.6, 0.7, 0.8]),
            ReduceLROnPlateau(monitor="val_accuracy", patience=1, factor=0.5),
        ],
    )
    assert history.history["learning_rate"] == pytest.approx([0.01] * 4, rel=1e-12)


# ------------------------------------------------------------------------------ CSVLogger
def test_csv_logger_writes_one_row_per_epoch_and_reads_back(tmp_path):
    x, y = _data()
    model = _model()
    path = tmp_path / "log.csv"
    flushed = []
    peek = LambdaCallback(on_epoch_end=lambda e, logs: flushed.append(path.read_text()))
    history = model.fit(
        x,
        y,
        epochs=3,
        batch_size=16,
        validation_split=0.25,
        verbose=0,
        callbacks=[CSVLogger(path), peek],
    )
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["epoch", "loss", "val_loss"]
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert [float(r["loss"]) for r in rows] == history.history["loss"]  # exact: repr round-trip
    assert [float(r["val_loss"]) for r in rows] == history.history["val_loss"]
    assert [s.count("\n") for s in flushed] == [2, 3, 4]  # each row is on disk at epoch end
    # append=True adds rows without a second header; append=False starts over
    model.fit(
        x,
        y,
        epochs=2,
        validation_split=0.25,
        verbose=0,
        callbacks=[CSVLogger(path, separator=";", append=True)],
    )
    lines = path.read_text().splitlines()
    assert len(lines) == 6 and lines[0] == "epoch,loss,val_loss" and lines[4].startswith("0;")
    model.fit(x, y, epochs=1, verbose=0, callbacks=[CSVLogger(path)])
    assert path.read_text().splitlines()[0] == "epoch,loss"
    assert len(path.read_text().splitlines()) == 2


# ------------------------------------------------------------------------------ TerminateOnNaN
def _poisoned_data():
    x, y = _data()
    y = y.copy()
    y[37] = np.inf  # batch 2 (0-based) of epoch 0 with batch_size=16 and no shuffling
    return x, y


def test_terminate_on_nan_stops_cleanly_at_the_bad_batch():
    x, y = _poisoned_data()
    model = _model()
    batches, after_batch = [], []
    spy = LambdaCallback(
        on_train_batch_end=lambda b, logs: (
            batches.append((b, logs["loss"])),
            after_batch.append(model.get_weights()),
        ),
    )
    terminate = TerminateOnNaN()
    ends = []
    history = model.fit(
        x,
        y,
        epochs=5,
        batch_size=16,
        shuffle=False,
        verbose=0,
        callbacks=[terminate, spy, LambdaCallback(on_train_end=lambda logs: ends.append(1))],
    )
    assert terminate.stopped_batch == 2 and model.stop_training
    assert [b for b, _ in batches] == [0, 1, 2]
    assert math.isfinite(batches[1][1]) and not math.isfinite(batches[2][1])
    assert history.epoch == [0] and not math.isfinite(history.history["loss"][0])
    assert ends == [1]  # on_train_end ran
    # the failing step was not applied: weights are those after batch 1
    assert _same(model.get_weights(), after_batch[1])
    assert np.isfinite(np.concatenate([w.ravel() for w in model.get_weights()])).all()


def test_without_terminate_on_nan_a_non_finite_loss_raises():
    x, y = _poisoned_data()
    model = _model()
    with pytest.raises(NonFiniteLossError, match="epoch 1, batch 3 of 3"):
        model.fit(x, y, epochs=5, batch_size=16, shuffle=False, verbose=0)


# ------------------------------------------------------------------------------ History, Lambda
def test_history_and_lambda_callback_events_in_order():
    x, y = _data(n=20)
    model = _model()
    events = []
    cb = LambdaCallback(
        on_train_begin=lambda logs=None: events.append("train_begin"),
        on_epoch_begin=lambda e, logs=None: events.append(f"epoch_begin {e}"),
        on_train_batch_end=lambda b, logs=None: events.append(f"batch {b}"),
        on_test_begin=lambda logs=None: events.append("test_begin"),
        on_test_end=lambda logs=None: events.append(f"test_end {sorted(logs)}"),
        on_epoch_end=lambda e, logs=None: events.append(f"epoch_end {e}"),
        on_train_end=lambda logs=None: events.append("train_end"),
    )
    history = model.fit(
        x, y, epochs=2, batch_size=8, validation_split=0.2, verbose=0, callbacks=[cb]
    )
    assert events == [
        "train_begin",
        "epoch_begin 0",
        "batch 0",
        "batch 1",
        "test_begin",
        "test_end ['loss']",
        "epoch_end 0",
        "epoch_begin 1",
        "batch 0",
        "batch 1",
        "test_begin",
        "test_end ['loss']",
        "epoch_end 1",
        "train_end",
    ]
    assert history.epoch == [0, 1] and sorted(history.history) == ["loss", "val_loss"]
    assert cb.params == {"epochs": 2, "steps": 2, "verbose": 0}
    assert model.history is history
    events.clear()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=cb)  # a single callback
    assert events[0] == "train_begin" and events[-1] == "train_end"
    with pytest.raises(TypeError, match="must be ember.callbacks.Callback objects"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[print])


def test_evaluate_and_predict_callbacks():
    x, y = _data(n=20)
    model = _model()
    events = []
    cb = LambdaCallback(
        on_test_begin=lambda logs=None: events.append("test_begin"),
        on_test_batch_end=lambda b, logs=None: events.append(f"test_batch {b}"),
        on_test_end=lambda logs=None: events.append(f"test_end {logs['loss']:.6f}"),
        on_predict_begin=lambda logs=None: events.append("predict_begin"),
        on_predict_batch_end=lambda b, logs=None: events.append(
            f"predict_batch {b} {logs['outputs'].shape}"
        ),
        on_predict_end=lambda logs=None: events.append("predict_end"),
    )
    loss = model.evaluate(x, y, batch_size=16, verbose=0, callbacks=[cb])
    model.predict(x, batch_size=16, callbacks=[cb])
    assert events == [
        "test_begin",
        "test_batch 0",
        "test_batch 1",
        f"test_end {loss:.6f}",
        "predict_begin",
        "predict_batch 0 (16, 1)",
        "predict_batch 1 (4, 1)",
        "predict_end",
    ]


# ------------------------------------------------------------------------------ class_weight
def _classifier():
    ember.manual_seed(3)
    model = models.Sequential(
        [
            layers.Input(shape=(3,)),
            layers.Dense(5, activation="tanh"),
            layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _class_data():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((60, 3)).astype(np.float32)
    y = np.argmax(x, axis=1).astype(np.int64)
    return x, y


def test_class_weight_equals_the_equivalent_sample_weight_bit_exactly():
    x, y = _class_data()
    class_weight = {0: 1.0, 1: 3.0, 2: 0.5}
    a = _classifier()
    ha = a.fit(x, y, epochs=3, batch_size=8, verbose=0, class_weight=class_weight)
    b = _classifier()
    sw = np.array([class_weight[int(c)] for c in y], dtype=np.float32)
    hb = b.fit(x, y, epochs=3, batch_size=8, verbose=0, sample_weight=sw)
    assert _same(a.get_weights(), b.get_weights())
    assert ha.history["loss"] == hb.history["loss"]
    # combined with sample_weight: the product
    extra = np.linspace(0.5, 2.0, len(x)).astype(np.float32)
    c = _classifier()
    c.fit(x, y, epochs=2, batch_size=8, verbose=0, class_weight=class_weight, sample_weight=extra)
    d = _classifier()
    d.fit(x, y, epochs=2, batch_size=8, verbose=0, sample_weight=extra * sw)
    assert _same(c.get_weights(), d.get_weights())
    # and it matters: uniform weights give a different result
    e = _classifier()
    e.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert not _same(a.get_weights(), e.get_weights())


def test_class_weight_with_one_hot_targets_uses_the_argmax():
    x, y = _class_data()
    onehot = np.eye(3, dtype=np.float32)[y]
    class_weight = {0: 2.0, 1: 1.0, 2: 0.25}

    def build():
        ember.manual_seed(3)
        m = models.Sequential([layers.Input(shape=(3,)), layers.Dense(3, activation="softmax")])
        m.compile(optimizer="sgd", loss="categorical_crossentropy")
        return m

    a = build()  # each build reseeds, so each fit shuffles alike
    a.fit(x, onehot, epochs=2, batch_size=10, verbose=0, class_weight=class_weight)
    sw = np.array([class_weight[int(c)] for c in y], dtype=np.float32)
    b = build()
    b.fit(x, onehot, epochs=2, batch_size=10, verbose=0, sample_weight=sw)
    assert _same(a.get_weights(), b.get_weights())


def test_class_weight_bad_input():
    x, y = _class_data()
    model = _classifier()
    with pytest.raises(ValueError, match=r"no weight for class\(es\) \[2\]"):
        model.fit(x, y, epochs=1, verbose=0, class_weight={0: 1.0, 1: 2.0})
    with pytest.raises(ValueError, match=r"class_weight\[1\] must be a finite number >= 0"):
        model.fit(x, y, epochs=1, verbose=0, class_weight={0: 1.0, 1: -2.0, 2: 1.0})
    with pytest.raises(TypeError, match="class_weight must be a non-empty dict"):
        model.fit(x, y, epochs=1, verbose=0, class_weight=[1.0, 2.0, 3.0])
    regression = _model()
    xr, yr = _data()
    with pytest.raises(ValueError, match="needs integer class labels"):
        regression.fit(xr, yr, epochs=1, verbose=0, class_weight={0: 1.0})


# ------------------------------------------------------------------------------ modes (L5)
class ModeProbe(layers.Layer):
    """Identity layer that records the ``training`` flag of each call."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = []

    def call(self, inputs, training=False):
        self.seen.append(training)
        return inputs


class Exploding(Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 1:
            raise RuntimeError("boom")


def _probed_model():
    ember.manual_seed(0)
    probe = ModeProbe()
    model = models.Sequential([layers.Input(shape=(3,)), layers.Dense(4), probe, layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    probe.seen.clear()  # drop the build probe
    return model, probe


def test_L5_fit_trains_and_validation_evaluate_predict_infer():
    x, y = _data(n=20)
    model, probe = _probed_model()
    model.fit(x, y, epochs=1, batch_size=8, validation_split=0.2, verbose=0)
    assert probe.seen == [True, True, False]  # 2 training batches, 1 validation batch
    probe.seen.clear()
    model.evaluate(x, y, batch_size=32, verbose=0)
    model.predict(x, batch_size=32)
    assert probe.seen == [False, False]


def test_L5_mode_untouched_after_fit_raises():
    x, y = _data(n=40)
    model, probe = _probed_model()
    before = {layer.name: getattr(layer, "training", None) for layer in model._all_layers()}
    with pytest.raises(RuntimeError, match="boom"):
        model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[Exploding()])
    assert probe.seen == [True, True]
    after = {layer.name: getattr(layer, "training", None) for layer in model._all_layers()}
    assert after == before
    probe.seen.clear()
    model.predict(x[:4])  # inference after the failure is still in inference mode
    assert probe.seen == [False]


class _Inner(models.Model):
    """A subclassed model whose call does not pass ``training`` on."""

    def __init__(self):
        super().__init__()
        self.probe = ModeProbe()
        self.dense = layers.Dense(2)

    def call(self, x):
        return self.dense(self.probe(x))


class _Middle(models.Model):
    def __init__(self):
        super().__init__()
        self.inner = _Inner()
        self.out = layers.Dense(1)

    def call(self, x):
        return self.out(self.inner(x))


@pytest.mark.skipif(not hasattr(layers.Layer, "train"), reason="needs Layer.train()/eval()")
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_L5_modes_reach_nested_layers_and_survive_fit_errors(mode):
    x, y = _data(n=24)
    ember.manual_seed(0)
    middle = _Middle()
    model = models.Sequential([layers.Input(shape=(3,)), middle])
    model.compile(optimizer="sgd", loss="mse")
    probe = middle.inner.probe  # 3 levels below the model
    getattr(model, mode)()
    want = mode == "train"
    assert all(layer.training is want for layer in model._all_layers())
    probe.seen.clear()
    model.fit(x, y, epochs=1, batch_size=8, validation_split=0.25, verbose=0)
    assert probe.seen == [True, True, True, False]  # fit trains, validation infers
    probe.seen.clear()
    model.evaluate(x, y, verbose=0)
    model.predict(x)
    assert probe.seen == [False, False]
    with pytest.raises(RuntimeError, match="boom"):
        model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[Exploding()])
    assert all(layer.training is want for layer in model._all_layers())


def test_get_set_weights_on_a_model_round_trip_including_frozen_weights():
    model = _model()
    model.layers[0].trainable = False
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(3, 4), (4,), (4, 1), (1,)]
    changed = [w + 1.0 for w in weights]
    model.set_weights(changed)
    assert _same(model.get_weights(), changed)
    weights[0][:] = 99.0  # get_weights returns copies
    assert not np.array_equal(model.get_weights()[0], weights[0])
    with pytest.raises(ValueError, match="expected 4 arrays, got 3"):
        model.set_weights(changed[:3])
