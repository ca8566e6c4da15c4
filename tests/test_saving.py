"""Checkpoints: ``model.save`` / ``load_model`` / ``save_weights`` / ``load_weights``.

Catalogue §2.7, P1–P7. All round trips are compared bit-exactly (``np.array_equal`` plus dtype and
shape); as documented in ``test_models.py`` (R3), bit-exactness is only promised within one
machine, one NumPy/BLAS build and one BLAS thread count, so the fresh-process children below run
with the same interpreter and the same BLAS thread setting as the test process.

A checkpoint stores Ember's global RNG state and ``load_model(..., restore_rng=True)`` restores
it, so a resumed run with ``shuffle=True`` draws the same batch orders as the uninterrupted run
(P5, both forms); by default loading leaves the generator alone. Format 2 keys weights by name:
``tests/test_checkpoints_by_name.py`` covers matching by name, format-1 files and forged files.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import types
from pathlib import Path

import numpy as np
import pytest
from _helpers import run_child

import ember
from ember import layers, models
from ember.models import saving
from ember.models.saving import CheckpointError


# ------------------------------------------------------------------------------ environment
# ------------------------------------------------------------------------------ helpers
def _data(n=64, features=6, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    centres = rng.normal(scale=2.0, size=(classes, features))
    x = (centres[y] + rng.normal(size=(n, features))).astype(np.float32)
    return x, y.astype(np.int64)


def _model():
    """An MLP with a frozen middle layer, so non-trainable weights are covered too."""
    return models.Sequential(
        [
            layers.Input(shape=(6,)),
            layers.Dense(16, activation="relu"),
            layers.Dense(8, activation="tanh", trainable=False),
            layers.Dense(4, activation="softmax"),
        ]
    )


def _trained_model(epochs=3, shuffle=True, losses=None):
    ember.manual_seed(0)
    x, y = _data()
    model = _model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    callbacks = [] if losses is None else [_batch_loss_recorder(losses)]
    model.fit(x, y, batch_size=16, epochs=epochs, shuffle=shuffle, verbose=0, callbacks=callbacks)
    return model, x, y


def _batch_loss_recorder(losses: list):
    return ember.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: losses.append(logs["loss"])
    )


def _weights_equal(a, b) -> bool:
    return len(a) == len(b) and all(
        x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, b)
    )


def _continue_training(model, x, y) -> list[np.ndarray]:
    ember.manual_seed(123)  # the same shuffle draws in both processes
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    return model.get_weights()


def _describe(model) -> tuple[dict, dict]:
    """(JSON-able description, arrays) of everything P1 requires to survive a round trip."""
    opt = model.optimizer
    weights = model.weights
    info = {
        "model_config": saving._model_config(model),
        "optimizer": ember.optimizers.serialize(opt),
        "loss": model._compile_loss.get_config(),
        "metrics": model._compile_metrics.serializable_specs(),
        "iterations": opt.iterations,
        "optimized": [next(i for i, w in enumerate(weights) if w is p) for p in opt.params],
        "steps": [s.get("step") for s in opt.state],
        "trainable": [
            [p.trainable for p in layer.weights] + [layer.trainable] for layer in model.layers
        ],
        "dtypes": [w.dtype.name for w in weights],
    }
    arrays = {f"w/{i}": w for i, w in enumerate(model.get_weights())}
    for i, state in enumerate(opt.state):
        arrays[f"m/{i}"], arrays[f"v/{i}"] = state["m"], state["v"]
    return info, arrays


def _p1_child(checkpoint: str, data: str, out: str) -> None:
    """Fresh process of P1: load, describe, predict, continue training; write it all out."""
    model = ember.models.load_model(checkpoint)
    with np.load(data, allow_pickle=False) as archive:
        x, y = archive["x"], archive["y"]
    info, arrays = _describe(model)
    arrays["predict"] = model.predict(x)
    for i, w in enumerate(_continue_training(model, x, y)):
        arrays[f"continued/{i}"] = w
    np.savez(out, **arrays)
    Path(out + ".json").write_text(json.dumps(info))


def _p5_child(checkpoint: str, out: str, shuffle: bool) -> None:
    """Fresh process of P5: load a 3-epoch checkpoint (and the RNG state saved with it) and
    train epochs 4–6."""
    model = ember.models.load_model(checkpoint, restore_rng=True)
    x, y = _data()
    losses: list[float] = []
    model.fit(
        x,
        y,
        batch_size=16,
        epochs=6,
        initial_epoch=3,
        shuffle=shuffle,
        verbose=0,
        callbacks=[_batch_loss_recorder(losses)],
    )
    np.savez(out, *model.get_weights())
    Path(out + ".json").write_text(json.dumps(losses))


def _load_npz(path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


# ================================================================ P1
def test_P1_round_trip_in_a_fresh_process_is_bit_exact(tmp_path):
    model, x, y = _trained_model(epochs=3)
    checkpoint = tmp_path / "run.ember"
    model.save(checkpoint)
    np.savez(tmp_path / "data.npz", x=x, y=y)
    out = str(tmp_path / "child.npz")
    run_child(
        f"import test_saving as t; t._p1_child({str(checkpoint)!r}, "
        f"{str(tmp_path / 'data.npz')!r}, {out!r})"
    )
    child = _load_npz(out)
    child_info = json.loads(Path(out + ".json").read_text())
    info, arrays = _describe(model)
    expected_predict = model.predict(x)
    continued = _continue_training(model, x, y)

    # architecture, compile settings and trainable flags
    assert child_info == json.loads(json.dumps(info))
    assert info["iterations"] == 3 * 4 and info["steps"] == [12] * 4
    assert info["optimized"] == [0, 1, 4, 5]  # the frozen layer's weights are not optimized
    assert info["trainable"][1][-1] is False
    # weights and optimizer buffers: same dtype, shape and bits
    for key, value in arrays.items():
        assert child[key].dtype == value.dtype and child[key].shape == value.shape, key
        assert np.array_equal(child[key], value), key
    assert len([k for k in child if k.startswith("w/")]) == 6
    assert np.array_equal(child["predict"], expected_predict)
    # training continued after loading equals training continued on the original
    for i, w in enumerate(continued):
        assert np.array_equal(child[f"continued/{i}"], w), f"weight {i} diverged after resume"
    assert not np.array_equal(continued[0], arrays["w/0"])  # training did continue
    assert np.array_equal(continued[2], arrays["w/2"])  # ...but not for the frozen kernel


def test_P1_round_trip_in_process_and_config(tmp_path):
    model, x, _ = _trained_model(epochs=1)
    model.save(tmp_path / "m.ember")
    loaded = models.load_model(tmp_path / "m.ember")
    assert type(loaded) is models.Sequential
    assert loaded.get_config() == model.get_config()
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert _weights_equal(loaded.get_weights(), model.get_weights())
    assert np.array_equal(loaded.predict(x), model.predict(x))
    uncompiled = models.load_model(tmp_path / "m.ember", compile=False)
    assert not uncompiled.compiled
    assert _weights_equal(uncompiled.get_weights(), model.get_weights())


# ================================================================ P2
def _corruptions(good: bytes) -> dict[str, tuple[bytes, str]]:
    header = struct.calcsize("<8sHQ32s")
    flipped = bytearray(good)
    middle = header + (len(good) - header) // 2
    flipped[middle] ^= 0x01
    png = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(200)
    return {
        "truncated at 50%": (good[: len(good) // 2], r"corrupted or truncated"),
        "truncated inside the header": (good[:20], r"corrupted or truncated.*header"),
        "one payload byte flipped": (bytes(flipped), r"corrupted \(checksum mismatch\)"),
        "zero-byte file": (b"", r"empty \(0 bytes\)"),
        "a PNG image": (png, r"not an Ember checkpoint"),
    }


def test_P2_corrupted_or_truncated_checkpoint_raises_checkpoint_error(tmp_path):
    assert issubclass(CheckpointError, ValueError)
    model, _, _ = _trained_model(epochs=1)
    good = tmp_path / "good.ember"
    model.save(good)
    target = _model()  # a fresh model with other weights
    before = target.get_weights()
    for case, (content, message) in _corruptions(good.read_bytes()).items():
        path = tmp_path / "run.ember"
        path.write_bytes(content)
        with pytest.raises(CheckpointError, match=message) as info:
            models.load_model(path)
        assert "run.ember" in str(info.value), case
        with pytest.raises(CheckpointError, match=message):
            target.load_weights(path)
        assert _weights_equal(target.get_weights(), before), f"{case}: model changed"
    target.load_weights(good)  # the untouched file still loads
    assert _weights_equal(target.get_weights(), model.get_weights())


# ================================================================ P3
def test_P3_architecture_mismatch_names_the_weight_and_both_shapes(tmp_path):
    # weights are matched by name (format 2): same names, other sizes → size mismatches
    small = models.Sequential([layers.Input(shape=(4,)), layers.Dense(8, name="fc")])
    small.save_weights(tmp_path / "small.weights")
    big = models.Sequential([layers.Input(shape=(4,)), layers.Dense(16, name="fc")])
    before = big.get_weights()
    with pytest.raises(ValueError, match=r"size mismatch for fc/kernel") as info:
        big.load_weights(tmp_path / "small.weights")
    message = str(info.value)
    assert "small.weights" in message and "(4, 8)" in message and "(4, 16)" in message
    assert "fc/bias" in message and "(8,)" in message and "(16,)" in message
    assert _weights_equal(big.get_weights(), before)

    # other names → the missing and unexpected keys, listed
    renamed = models.Sequential([layers.Input(shape=(4,)), layers.Dense(8, name="fc_big")])
    with pytest.raises(
        ValueError,
        match=r"missing from the file: fc_big/kernel, fc_big/bias; "
        r"unexpected in the file: fc/kernel, fc/bias",
    ):
        renamed.load_weights(tmp_path / "small.weights")

    deeper = models.Sequential(
        [layers.Input(shape=(4,)), layers.Dense(8, name="fc"), layers.Dense(2, name="b")]
    )
    before = deeper.get_weights()
    with pytest.raises(ValueError, match=r"missing from the file: b/kernel, b/bias$"):
        deeper.load_weights(tmp_path / "small.weights")
    assert _weights_equal(deeper.get_weights(), before)
    deeper.save_weights(tmp_path / "deeper.weights")
    with pytest.raises(ValueError, match=r"unexpected in the file: b/kernel, b/bias"):
        small.load_weights(tmp_path / "deeper.weights")


# ================================================================ P4
class _DiesHalfway:
    """A file object that writes half of the payload, then fails like a full disk would."""

    def __init__(self, file, error):
        self._file, self._error, self.failed = file, error, False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._file.close()
        return False

    def write(self, data):
        if len(data) > 100:  # the payload (the header is 50 bytes)
            self._file.write(data[: len(data) // 2])
            self._file.flush()
            self.failed = True
            raise self._error
        return self._file.write(data)

    def __getattr__(self, name):
        return getattr(self._file, name)


@pytest.mark.parametrize(
    "error",
    [OSError(28, "No space left on device"), KeyboardInterrupt()],
    ids=["disk-full", "ctrl-c"],
)
def test_P4_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch, error):
    model, x, y = _trained_model(epochs=1)
    path = tmp_path / "run.ember"
    model.save(path)
    v1_bytes, v1_weights = path.read_bytes(), model.get_weights()
    model.fit(x, y, epochs=1, verbose=0)  # v2 differs from v1
    assert not _weights_equal(model.get_weights(), v1_weights)

    writers = []
    real_fdopen = os.fdopen

    def fdopen(fd, *args, **kwargs):
        writers.append(_DiesHalfway(real_fdopen(fd, *args, **kwargs), error))
        return writers[-1]

    fake_os = types.SimpleNamespace(**{**vars(os), "fdopen": fdopen})
    monkeypatch.setattr(saving, "os", fake_os)  # only the checkpoint writer sees the fault
    with pytest.raises(type(error)):
        model.save(path)
    monkeypatch.undo()
    assert writers and writers[0].failed, "the fault was not injected"

    assert path.read_bytes() == v1_bytes
    assert _weights_equal(models.load_model(path).get_weights(), v1_weights)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.ember"], "stray temp file"
    model.save(path)  # and a normal save afterwards replaces it
    assert _weights_equal(models.load_model(path).get_weights(), model.get_weights())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.ember"]


# ================================================================ P5
def test_P5_resume_continues_the_same_trajectory(tmp_path):
    # shuffle=False isolates weights + optimizer state; the shuffle=True test below adds the RNG.
    straight_losses: list[float] = []
    straight, _, _ = _trained_model(epochs=6, shuffle=False, losses=straight_losses)

    first_half: list[float] = []
    model, _, _ = _trained_model(epochs=3, shuffle=False, losses=first_half)
    checkpoint = tmp_path / "epoch3.ember"
    model.save(checkpoint)
    out = str(tmp_path / "resumed.npz")
    run_child(f"import test_saving as t; t._p5_child({str(checkpoint)!r}, {out!r}, False)")
    resumed = _load_npz(out)
    resumed_losses = json.loads(Path(out + ".json").read_text())

    assert len(straight_losses) == 24 and len(resumed_losses) == 12
    assert first_half + resumed_losses == straight_losses  # every per-batch loss, bit-exact
    final = [resumed[f"arr_{i}"] for i in range(len(resumed))]
    assert _weights_equal(final, straight.get_weights())


def test_P5_resume_with_shuffle_restores_the_batch_order(tmp_path):
    straight_losses: list[float] = []
    _trained_model(epochs=6, shuffle=True, losses=straight_losses)
    first_half: list[float] = []
    model, _, _ = _trained_model(epochs=3, shuffle=True, losses=first_half)
    model.save(tmp_path / "epoch3.ember")
    out = str(tmp_path / "resumed.npz")
    run_child(
        f"import test_saving as t; t._p5_child({str(tmp_path / 'epoch3.ember')!r}, {out!r}, True)"
    )
    assert first_half + json.loads(Path(out + ".json").read_text()) == straight_losses


# ================================================================ P6
_UNPICKLED: list[str] = []
_HEADER_SIZE = struct.calcsize("<8sHQ32s")


def _record_unpickling():
    _UNPICKLED.append("code from the checkpoint ran")
    return 0


class _Payload:
    def __reduce__(self):
        return (_record_unpickling, ())


def _forge(arrays: dict, version: int = 2) -> bytes:
    """A checkpoint with a valid header and checksum around arbitrary npz arrays."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    payload = buffer.getvalue()
    return (
        struct.pack(
            "<8sHQ32s", b"EMBERMDL", version, len(payload), hashlib.sha256(payload).digest()
        )
        + payload
    )


def test_P6_loader_never_unpickles(tmp_path, monkeypatch):
    model, _, _ = _trained_model(epochs=1)
    good = tmp_path / "good.ember"
    model.save(good)
    # a forged file: valid header and SHA-256, config and arrays from a real save, and a pickled
    # object array in place of the first weight
    with np.load(io.BytesIO(good.read_bytes()[_HEADER_SIZE:]), allow_pickle=False) as archive:
        genuine = {name: archive[name] for name in archive.files}
    evil = np.empty(1, dtype=object)
    evil[0] = _Payload()
    forged = tmp_path / "forged.ember"
    forged.write_bytes(_forge({**genuine, "weight/dense/kernel": evil}))

    import pickle

    def no_unpickling(*args, **kwargs):
        raise AssertionError("the loader unpickled")

    monkeypatch.setattr(pickle, "load", no_unpickling)
    monkeypatch.setattr(pickle, "loads", no_unpickling)
    _UNPICKLED.clear()
    for load in (models.load_model, model.load_weights):
        with pytest.raises(CheckpointError, match=r"dense/kernel.*Python objects.*never unpickles"):
            load(forged)
    assert _UNPICKLED == [], "loading a checkpoint executed code"
    monkeypatch.undo()
    # the forged file really is an attack: a pickle-enabled reader would have run the code
    payload = forged.read_bytes()[_HEADER_SIZE:]
    with np.load(io.BytesIO(payload), allow_pickle=True) as archive:
        archive["weight/dense/kernel"]
    assert _UNPICKLED == ["code from the checkpoint ran"]
    _UNPICKLED.clear()


def test_P6_newer_format_version_says_which_versions_are_readable(tmp_path):
    model, _, _ = _trained_model(epochs=1)
    path = tmp_path / "future.ember"
    model.save(path)
    raw = bytearray(path.read_bytes())
    struct.pack_into("<H", raw, 8, 99)  # the version field follows the 8-byte magic
    path.write_bytes(bytes(raw))
    for load in (models.load_model, model.load_weights):
        with pytest.raises(CheckpointError, match=r"format v99.*reads v1[–-]v2") as info:
            load(path)
        assert "future.ember" in str(info.value) and "Upgrade" in str(info.value)


# ================================================================ P7
def test_P7_paths(tmp_path, monkeypatch):
    model, x, _ = _trained_model(epochs=1)
    expected = model.predict(x)
    nested = tmp_path / "does" / "not" / "exist" / "m.ember"
    model.save(str(nested))  # a plain string; the missing parents are created
    assert nested.is_file()
    assert np.array_equal(models.load_model(str(nested)).predict(x), expected)

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    model.save("~/ckpt/m.ember")
    assert (home / "ckpt" / "m.ember").is_file()
    assert not Path("~").exists()  # nothing was written to a literal "~" directory
    assert np.array_equal(models.load_model("~/ckpt/m.ember").predict(x), expected)
    model.save_weights("~/ckpt/m.weights")
    fresh = _model()
    fresh.load_weights("~/ckpt/m.weights")
    assert _weights_equal(fresh.get_weights(), model.get_weights())

    as_path = tmp_path / "pathlib" / "m.ember"
    model.save(as_path)
    assert np.array_equal(models.load_model(as_path).predict(x), expected)
    model.save_weights(as_path.with_suffix(".weights"))
    fresh = _model()
    fresh.load_weights(as_path.with_suffix(".weights"))
    assert _weights_equal(fresh.get_weights(), model.get_weights())


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="root ignores file permissions, so a read-only directory cannot be simulated",
)
def test_P7_read_only_directory_raises_permission_error_naming_the_path(tmp_path):
    model, _, _ = _trained_model(epochs=1)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(PermissionError) as info:
            model.save(locked / "m.ember")
        assert str(locked) in str(info.value)
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


# ================================================================ other model kinds
def test_functional_model_save_and_load(tmp_path):
    ember.manual_seed(0)
    x, y = _data()
    inputs = layers.Input(shape=(6,))
    hidden = layers.Dense(12, activation="relu")(inputs)
    outputs = layers.Dense(4, activation="softmax")(hidden)
    model = models.Model(inputs, outputs, name="functional_net")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    model.save(tmp_path / "f.ember")
    loaded = models.load_model(tmp_path / "f.ember")
    assert type(loaded) is models.Model and loaded.name == "functional_net"
    assert saving._model_config(loaded) == saving._model_config(model)
    assert _weights_equal(loaded.get_weights(), model.get_weights())
    assert np.array_equal(loaded.predict(x), model.predict(x))
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)


class _Subclassed(models.Model):
    def __init__(self):
        super().__init__()
        self.hidden = layers.Dense(8, activation="relu")
        self.head = layers.Dense(4, activation="softmax")

    def call(self, x):
        return self.head(self.hidden(x))


def test_subclassed_model_save_points_to_save_weights(tmp_path):
    model = _Subclassed()
    x, _ = _data(n=4)
    model(x)
    with pytest.raises(ValueError, match=r"subclassed.*save_weights"):
        model.save(tmp_path / "s.ember")
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_save_weights_load_weights_round_trip(tmp_path):
    ember.manual_seed(0)
    x, _ = _data(n=8)
    model = _Subclassed()
    model(x)
    model.save_weights(tmp_path / "s.weights")
    other = _Subclassed()
    other(x)
    assert not _weights_equal(other.get_weights(), model.get_weights())
    other.load_weights(tmp_path / "s.weights")
    assert _weights_equal(other.get_weights(), model.get_weights())
    assert np.array_equal(other.predict(x), model.predict(x))
    # weights only: load_model explains what to do instead
    with pytest.raises(CheckpointError, match=r"weights only.*load_weights"):
        models.load_model(tmp_path / "s.weights")


def test_saving_a_custom_schedule_says_what_cannot_be_saved(tmp_path):
    model = ember.models.Sequential([ember.layers.Input(shape=(3,)), ember.layers.Dense(2)])
    model.compile(ember.optimizers.SGD(learning_rate=lambda step: 0.1), "mse")
    model.fit(np.ones((4, 3)), np.ones((4, 2)), verbose=0)
    with pytest.raises(TypeError, match="cannot save this model.*schedule.*save_weights"):
        model.save(tmp_path / "m.ember")
    assert not (tmp_path / "m.ember").exists()
