"""Checkpoints keyed by name, and loading that cannot hurt (issue 10, item 8; catalogue §2.7).

Format 2 stores every weight under its path in the model (``weight/dense_1/kernel``) and the
optimizer state under the path of its weight, so renaming or reordering layers can never load a
weight into the wrong place: a mismatch lists the missing, unexpected and mismatched names and
assigns nothing. Loading validates the whole file before anything happens, reads only the
members it expects (checking each ``.npy`` header and byte size first, so a forged size claim
cannot make it allocate), never unpickles, and leaves Ember's random generator alone unless
``restore_rng=True``.

The format-1 fixtures in ``tests/data`` were written by the *old* code, commit 4a30473 (the last
one that wrote format 1), with ``tests/data/make_v1_fixtures.py``::

    git -C /work/main worktree add /tmp/ember_v1 4a30473
    PYTHONPATH=/tmp/ember_v1 .venv/bin/python tests/data/make_v1_fixtures.py tests/data
    git -C /work/main worktree remove /tmp/ember_v1

``v1_sequential.ember`` is ``model.save`` after a compiled 2-epoch fit (Adam) of an MLP
5 → 8 (relu) → 6 (tanh, frozen) → 3 (softmax); ``v1_sequential.weights`` is ``save_weights`` of
that model; ``v1_functional.ember`` is a functional chain 5 → 4 (relu) → 2, SGD with momentum,
MSE. Each ``*_expected.npz`` (plain arrays) holds what the old code had in memory when it saved:
the weights, the optimizer state by weight index, and ``predict(x)``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

import ember
from ember import layers, models
from ember.models.saving import CheckpointError

DATA = Path(__file__).parent / "data"
HEADER = struct.Struct("<8sHQ32s")


# ------------------------------------------------------------------------------ helpers
def _same(a: list, b: list) -> bool:
    return len(a) == len(b) and all(
        x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, b)
    )


def _optimizer_snapshot(model) -> tuple:
    """(iterations, the names of the weights it optimizes, copies of their states)."""
    opt = model.optimizer
    name_of = {id(p): name for name, p in model.named_parameters()}
    state = [{k: np.array(v, copy=True) for k, v in s.items()} for s in opt.state]
    return opt.iterations, [name_of.get(id(p)) for p in opt.params], state


def _snapshots_equal(a: tuple, b: tuple) -> bool:
    if a[:2] != b[:2] or len(a[2]) != len(b[2]):
        return False
    return all(
        x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x)
        for x, y in zip(a[2], b[2])
    )


def _mlp(first: str | None = None, second: str | None = None, units=(8, 3)):
    return models.Sequential(
        [
            layers.Input(shape=(5,)),
            layers.Dense(units[0], activation="relu", name=first),
            layers.Dense(units[1], activation="softmax", name=second),
        ]
    )


def _data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 5)).astype(np.float32), (np.arange(n) % 3).astype(np.int64)


def _trained_mlp(epochs=2):
    ember.manual_seed(0)
    x, y = _data()
    model = _mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=8, epochs=epochs, verbose=0)
    return model, x, y


# reading and forging files: the container and the zip members, by hand
def _members(path) -> dict[str, bytes]:
    payload = Path(path).read_bytes()[HEADER.size :]
    with zipfile.ZipFile(io.BytesIO(payload)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _config(members: dict) -> dict:
    array = np.load(io.BytesIO(members["__config__.npy"]), allow_pickle=False)
    return json.loads(array.tobytes().decode("utf-8"))


def _npy(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def _with_config(members: dict, config: dict) -> dict:
    text = json.dumps(config).encode("utf-8")
    return {**members, "__config__.npy": _npy(np.frombuffer(text, dtype=np.uint8))}


def _npy_claiming(shape: tuple, data: bytes = b"", descr: str = "<f4") -> bytes:
    """A .npy member whose header claims ``shape`` whatever the data that follows."""
    text = repr({"descr": descr, "fortran_order": False, "shape": shape})
    text += " " * (-(10 + len(text) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1") + data


def _write(path, members: dict, compressed: tuple = (), version: int = 2) -> Path:
    """A checkpoint with a valid header and SHA-256 around the given zip members."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            method = zipfile.ZIP_DEFLATED if name in compressed else zipfile.ZIP_STORED
            zf.writestr(name, data, compress_type=method)
    payload = buffer.getvalue()
    digest = hashlib.sha256(payload).digest()
    Path(path).write_bytes(HEADER.pack(b"EMBERMDL", version, len(payload), digest) + payload)
    return Path(path)


# ================================================================ P3: matched by name
def test_P3_renamed_layers_list_missing_and_unexpected_names_and_change_nothing(tmp_path):
    source = _mlp("encoder", "head")
    source.save_weights(tmp_path / "w.ember")
    target = _mlp("enc", "out")  # the same sizes, other names
    before = target.get_weights()
    with pytest.raises(ValueError) as info:
        target.load_weights(tmp_path / "w.ember")
    message = str(info.value)
    assert "w.ember" in message and "nothing was loaded" in message
    assert "missing from the file: enc/kernel, enc/bias, out/kernel, out/bias" in message
    assert "unexpected in the file: encoder/kernel, encoder/bias, head/kernel, head/bias" in message
    assert _same(target.get_weights(), before)


def test_P3_reordered_layers_load_each_weight_into_the_layer_of_its_name(tmp_path):
    def model(order):
        return models.Sequential(
            [layers.Input(shape=(4,))] + [layers.Dense(4, name=name) for name in order]
        )

    source, target = model(["a", "b"]), model(["b", "a"])
    source.save_weights(tmp_path / "w.ember")
    target.load_weights(tmp_path / "w.ember")
    for name in "ab":  # by position, a's weights would have gone into b
        for attr in ("kernel", "bias"):
            got = getattr(target.get_layer(name), attr).data
            assert np.array_equal(got, getattr(source.get_layer(name), attr).data)
    assert not np.array_equal(target.get_weights()[0], source.get_weights()[0])


def test_P3_size_mismatch_names_the_weight_and_both_shapes_and_assigns_nothing(tmp_path):
    small = models.Sequential(
        [layers.Input(shape=(4,)), layers.Dense(8, name="fc"), layers.Dense(2, name="out")]
    )
    small.save_weights(tmp_path / "small.ember")
    big = models.Sequential(
        [layers.Input(shape=(4,)), layers.Dense(16, name="fc"), layers.Dense(2, name="out")]
    )
    before = big.get_weights()
    with pytest.raises(ValueError) as info:
        big.load_weights(tmp_path / "small.ember")
    message = str(info.value)
    assert "size mismatch for fc/kernel: the file has shape (4, 8)" in message
    assert "the model's weight has shape (4, 16)" in message
    assert "size mismatch for out/kernel: the file has shape (8, 2)" in message
    assert "out/bias" not in message  # it matches; but nothing was loaded
    assert _same(big.get_weights(), before)

    half = models.Sequential(
        [layers.Input(shape=(4,)), layers.Dense(8, name="fc", dtype="float64"),
         layers.Dense(2, name="out")]
    )
    with pytest.raises(ValueError, match="dtype mismatch for fc/kernel: the file has float32"):
        half.load_weights(tmp_path / "small.ember")


def test_P3_an_unbuilt_model_is_told_to_build_first(tmp_path):
    _mlp().save_weights(tmp_path / "w.ember")
    with pytest.raises(ValueError, match="no weights yet: build it first"):
        models.Sequential([layers.Dense(8), layers.Dense(3)]).load_weights(tmp_path / "w.ember")


# ================================================================ P1: same architecture
def test_P1_weights_load_into_another_instance_built_after_other_layers(tmp_path):
    ember.manual_seed(0)
    first = _mlp()
    for _ in range(3):
        layers.Dense(2)  # global names move on: the second model's layers are dense_5, dense_6…
    second = _mlp()
    assert [layer.name for layer in first.layers] != [layer.name for layer in second.layers]
    assert [n for n, _ in first.named_parameters()] == [n for n, _ in second.named_parameters()]
    first.save_weights(tmp_path / "w.ember")
    assert not _same(second.get_weights(), first.get_weights())
    second.load_weights(tmp_path / "w.ember")
    assert _same(second.get_weights(), first.get_weights())
    # a full checkpoint (model.save) loads the same way
    third = _mlp()
    first.save(tmp_path / "m.ember")
    third.load_weights(tmp_path / "m.ember")
    assert _same(third.get_weights(), first.get_weights())


def test_P1_nested_model_round_trip_keeps_the_paths(tmp_path):
    ember.manual_seed(0)
    inner = models.Sequential([layers.Input(shape=(4,)), layers.Dense(3, activation="tanh")])
    x_in = layers.Input(shape=(4,))
    model = models.Model(x_in, layers.Dense(2)(inner(x_in)))
    names = [n for n, _ in model.named_parameters()]
    assert names[0].count(".") == 2  # sequential.dense.kernel: the nested path
    model.save(tmp_path / "nested.ember")
    layers.Dense(1)  # move the global names on before loading
    loaded = models.load_model(tmp_path / "nested.ember")
    assert [n for n, _ in loaded.named_parameters()] == names
    assert _same(loaded.get_weights(), model.get_weights())
    loaded.save(tmp_path / "again.ember")  # the loaded model saves under the same names
    assert _config(_members(tmp_path / "again.ember"))["weights"] == _config(
        _members(tmp_path / "nested.ember")
    )["weights"]


def _two_in_two_out():
    a = layers.Input(shape=(4,), name="a")
    b = layers.Input(shape=(3,), name="b")
    hidden = layers.Dense(8, activation="relu")(layers.Concatenate()([a, b]))
    score = layers.Dense(1, name="score")(hidden)
    label = layers.Dense(3, activation="softmax", name="label")(hidden)
    return models.Model([a, b], [score, label], name="two_by_two")


def _compile_description(model) -> dict:
    return {
        "output_names": model.output_names,
        "loss": model._compile_loss.get_config(),
        "metrics": model._compile_metrics.serializable_specs(),
        "optimizer": ember.optimizers.serialize(model.optimizer),
        "iterations": model.optimizer.iterations,
    }


def test_P1_multi_input_multi_output_round_trip_and_resume(tmp_path):
    ember.manual_seed(0)
    rng = np.random.default_rng(3)
    xa = rng.normal(size=(40, 4)).astype(np.float32)
    xb = rng.normal(size=(40, 3)).astype(np.float32)
    y = {
        "score": rng.normal(size=(40, 1)).astype(np.float32),
        "label": (np.arange(40) % 3).astype(np.int64),
    }
    model = _two_in_two_out()
    model.compile(
        optimizer=ember.optimizers.Adam(learning_rate=0.01),
        loss={"score": "mse", "label": "sparse_categorical_crossentropy"},
        loss_weights={"score": 0.5, "label": 2.0},
        metrics={"label": ["accuracy"]},
    )
    model.fit([xa, xb], y, batch_size=8, epochs=2, verbose=0)
    path = tmp_path / "two.ember"
    model.save(path)
    saved_rng = ember.get_rng_state()

    loaded = models.load_model(path)  # restore_rng=False: the generator is left alone
    assert ember.get_rng_state() == saved_rng
    assert type(loaded) is models.Model and loaded.name == "two_by_two"
    assert _same(loaded.get_weights(), model.get_weights())
    for got, want in zip(loaded.predict([xa, xb]), model.predict([xa, xb])):
        assert np.array_equal(got, want)
    assert _compile_description(loaded) == _compile_description(model)
    assert _compile_description(loaded)["loss"]["loss_weights"] == {"score": 0.5, "label": 2.0}
    assert _snapshots_equal(_optimizer_snapshot(loaded), _optimizer_snapshot(model))
    assert loaded.evaluate([xa, xb], y, verbose=0) == model.evaluate([xa, xb], y, verbose=0)

    # continued training (shuffled) is bit-exact: the original continues from the saved RNG
    # state, the loaded one gets it back with restore_rng=True
    ember.set_rng_state(saved_rng)
    history = model.fit([xa, xb], y, batch_size=8, epochs=2, verbose=0).history
    ember.manual_seed(99)  # whatever the generator is doing now...
    resumed = models.load_model(path, restore_rng=True)
    assert ember.get_rng_state() == saved_rng  # ...it is back at the save
    resumed_history = resumed.fit([xa, xb], y, batch_size=8, epochs=2, verbose=0).history
    assert resumed_history == history
    assert set(history) == {"loss", "score_loss", "label_loss", "label_accuracy"}  # per output
    assert _same(resumed.get_weights(), model.get_weights())


# ================================================================ P6: format 1 still loads
def _expected(name: str) -> dict[str, np.ndarray]:
    with np.load(DATA / f"{name}_expected.npz", allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def test_P6_format_v1_sequential_checkpoint_loads_bit_exact():
    expected = _expected("v1_sequential")
    path = DATA / "v1_sequential.ember"
    assert struct.unpack_from("<H", path.read_bytes(), 8) == (1,)  # really a format-1 file
    before = ember.get_rng_state()
    model = models.load_model(path)
    assert ember.get_rng_state() == before
    assert type(model) is models.Sequential
    weights = model.get_weights()
    assert _same(weights, [expected[f"weight/{i}"] for i in range(6)])
    assert [round(float(v), 6) for v in weights[5]] == [
        round(float(v), 6) for v in expected["weight/5"]
    ]
    assert model.layers[1].trainable is False
    np.testing.assert_allclose(model.predict(expected["x"]), expected["predict"], rtol=1e-6)
    opt = model.optimizer
    assert type(opt) is ember.optimizers.Adam and opt.iterations == int(expected["iterations"])
    index = {id(p): i for i, p in enumerate(model.weights)}
    assert [index[id(p)] for p in opt.params] == list(expected["optimized"])  # [0, 1, 4, 5]
    for i, state in enumerate(opt.state):
        assert state["step"] == int(expected[f"state/{i}/step"]) == 6
        assert np.array_equal(state["m"], expected[f"state/{i}/m"])
        assert np.array_equal(state["v"], expected[f"state/{i}/v"])
    assert model._compile_metrics.serializable_specs() == [["accuracy"]]
    model.fit(expected["x"], np.arange(24) % 3, epochs=1, verbose=0)  # and it trains on
    assert opt.iterations == 7


def test_P6_format_v1_functional_checkpoint_loads_bit_exact():
    expected = _expected("v1_functional")
    model = models.load_model(DATA / "v1_functional.ember")
    assert type(model) is models.Model and model.name == "v1_functional"
    assert _same(model.get_weights(), [expected[f"weight/{i}"] for i in range(4)])
    np.testing.assert_allclose(model.predict(expected["x"]), expected["predict"], rtol=1e-6)
    opt = model.optimizer
    assert ember.optimizers.serialize(opt)["config"]["momentum"] == 0.9
    for i, state in enumerate(opt.state):
        assert np.array_equal(state["momentum_buffer"], expected[f"state/{i}/momentum_buffer"])
    assert model._compile_loss.get_config()["losses"] == {
        model.output_names[0]: {"name": "mse", "config": {}}
    }


def test_P6_format_v1_files_load_weights_by_position_and_restore_rng_on_request():
    expected = _expected("v1_sequential")
    for name in ("v1_sequential.weights", "v1_sequential.ember"):
        model = models.Sequential(
            [layers.Input(shape=(5,)), layers.Dense(8, activation="relu"),
             layers.Dense(6, activation="tanh"), layers.Dense(3, activation="softmax")]
        )
        model.load_weights(DATA / name)
        assert _same(model.get_weights(), [expected[f"weight/{i}"] for i in range(6)])
    wrong = _mlp()  # 5 → 8 → 3: the format-1 positional check still names the problems
    before = wrong.get_weights()
    with pytest.raises(ValueError, match=r"holds 6 weights.*has 4.*unexpected in the file"):
        wrong.load_weights(DATA / "v1_sequential.weights")
    assert _same(wrong.get_weights(), before)
    saved = _config(_members(DATA / "v1_sequential.ember"))["rng_state"]
    models.load_model(DATA / "v1_sequential.ember", restore_rng=True)
    assert ember.get_rng_state() == saved


# ================================================================ P6: what a file may claim
def test_P6_forged_size_claim_fails_before_allocating(tmp_path):
    model = _mlp()
    model.save(tmp_path / "good.ember")
    members = _members(tmp_path / "good.ember")
    config = _config(members)
    huge = (10**6, 10**6)  # 4 TB of float32
    config["weights"][0]["shape"] = list(huge)
    members["weight/dense/kernel.npy"] = _npy_claiming(huge, bytes(64))
    forged = _write(tmp_path / "forged.ember", _with_config(members, config))
    before = model.get_weights()
    for load in (model.load_weights, models.load_model):
        tracemalloc.start()
        try:
            with pytest.raises(CheckpointError, match=r"claims shape \(1000000, 1000000\)"):
                load(forged)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 4 * 2**20, f"loading a forged file allocated {peak} bytes"
    assert _same(model.get_weights(), before)

    # the header alone lies (the config is genuine): caught by the same check
    members = _members(tmp_path / "good.ember")
    members["weight/dense/kernel.npy"] = _npy_claiming(huge, bytes(64))
    with pytest.raises(CheckpointError, match=r"has shape \(1000000, 1000000\), its config says"):
        model.load_weights(_write(tmp_path / "header.ember", members))
    # header and config agree on the real shape but the data is cut short
    members = _members(tmp_path / "good.ember")
    members["weight/dense/kernel.npy"] = members["weight/dense/kernel.npy"][:-8]
    with pytest.raises(CheckpointError, match=r"dense/kernel.*claims shape \(5, 8\).*holds"):
        model.load_weights(_write(tmp_path / "short.ember", members))


def test_P6_compressed_or_pickled_or_missing_members_are_rejected(tmp_path):
    model = _mlp()
    model.save_weights(tmp_path / "good.ember")
    members = _members(tmp_path / "good.ember")
    before = model.get_weights()

    compressed = _write(tmp_path / "zipped.ember", members, compressed=("weight/dense/bias.npy",))
    with pytest.raises(CheckpointError, match=r"'weight/dense/bias'.*compressed"):
        model.load_weights(compressed)

    evil = np.empty(2, dtype=object)
    pickled = _write(
        tmp_path / "pickled.ember",
        {**members, "weight/dense/bias.npy": _npy(evil, allow_pickle=True)},
    )
    with pytest.raises(CheckpointError, match=r"dense/bias.*Python objects.*never unpickles"):
        model.load_weights(pickled)

    missing = dict(members)
    del missing["weight/dense_1/kernel.npy"]
    with pytest.raises(CheckpointError, match=r"array 'weight/dense_1/kernel'.*is missing"):
        model.load_weights(_write(tmp_path / "missing.ember", missing))

    typed = _write(
        tmp_path / "typed.ember",
        {**members, "weight/dense/bias.npy": _npy(np.zeros(8, dtype=np.float64))},
    )
    with pytest.raises(CheckpointError, match=r"dense/bias.*dtype float64, its config says"):
        model.load_weights(typed)
    assert _same(model.get_weights(), before)


def test_P6_unknown_members_are_ignored_and_never_opened(tmp_path, monkeypatch):
    source = _mlp()
    source.save_weights(tmp_path / "good.ember")
    evil = np.empty(1, dtype=object)
    members = {
        **_members(tmp_path / "good.ember"),
        "weight/intruder/kernel.npy": _npy(evil, allow_pickle=True),
        "notes.txt": b"not an array",
        "huge.npy": _npy_claiming((10**6, 10**6)),
    }
    path = _write(tmp_path / "extra.ember", members)
    opened = []
    real_open = zipfile.ZipFile.open

    def spy(self, name, *args, **kwargs):
        opened.append(name if isinstance(name, str) else name.filename)
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    target = _mlp()
    target.load_weights(path)
    assert _same(target.get_weights(), source.get_weights())
    assert not {"weight/intruder/kernel.npy", "notes.txt", "huge.npy"} & set(opened)
    assert "weight/dense/kernel.npy" in opened


def test_P6_payload_is_a_plain_npz_of_named_arrays(tmp_path):
    model, _, _ = _trained_mlp(epochs=1)
    model.save(tmp_path / "m.ember")
    payload = (tmp_path / "m.ember").read_bytes()[HEADER.size :]
    assert struct.unpack_from("<H", (tmp_path / "m.ember").read_bytes(), 8) == (2,)
    with np.load(io.BytesIO(payload), allow_pickle=False) as archive:
        names = sorted(archive.files)
        assert np.array_equal(archive["weight/dense_1/kernel"], model.layers[1].kernel.data)
    assert names == sorted(
        ["__config__"]
        + [f"weight/{layer}/{w}" for layer in ("dense", "dense_1") for w in ("kernel", "bias")]
        + [
            f"optimizer/{layer}/{w}/{slot}"
            for layer in ("dense", "dense_1")
            for w in ("kernel", "bias")
            for slot in ("m", "v")
        ]
    )
    # the same weights give the same bytes (fixed member dates)
    model.save_weights(tmp_path / "a.ember")
    model.save_weights(tmp_path / "b.ember")
    assert (tmp_path / "a.ember").read_bytes() == (tmp_path / "b.ember").read_bytes()


# ================================================================ P4: permissions
@pytest.mark.skipif(not hasattr(os, "umask") or os.name != "posix", reason="POSIX permissions")
def test_P4_new_files_follow_the_umask_and_replaced_files_keep_their_mode(tmp_path):
    model = _mlp()
    previous = os.umask(0o027)
    try:
        model.save(tmp_path / "new.ember")
        model.save_weights(tmp_path / "new.weights")
    finally:
        os.umask(previous)
    assert (tmp_path / "new.ember").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "new.weights").stat().st_mode & 0o777 == 0o640

    kept = tmp_path / "kept.ember"
    model.save(kept)
    kept.chmod(0o604)
    previous = os.umask(0o077)
    try:
        model.save(kept)
    finally:
        os.umask(previous)
    assert kept.stat().st_mode & 0o777 == 0o604
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.ember", "new.ember", "new.weights"]


# ================================================================ P5: the random generator
def test_P5_load_model_leaves_the_random_generator_alone_unless_asked(tmp_path):
    model, _, _ = _trained_mlp(epochs=1)
    model.save(tmp_path / "m.ember")
    saved = ember.get_rng_state()
    ember.manual_seed(42)
    generator, before = ember.default_rng(), ember.get_rng_state()
    models.load_model(tmp_path / "m.ember")  # builds layers, whose initializers draw
    models.load_model(tmp_path / "m.ember", compile=False)
    assert ember.get_rng_state() == before and ember.default_rng() is generator
    models.load_model(tmp_path / "m.ember", restore_rng=True)
    assert ember.get_rng_state() == saved


# ================================================================ P2: failed loads change nothing
def test_P2_failed_loads_leave_the_target_unchanged(tmp_path):
    model, x, y = _trained_mlp()
    weights, optimizer = model.get_weights(), _optimizer_snapshot(model)
    compiled = _compile_description(model)
    other = _mlp("x", "y")
    other.save_weights(tmp_path / "names.ember")
    model.save(tmp_path / "good.ember")
    members = _members(tmp_path / "good.ember")
    members["weight/dense_1/bias.npy"] = members["weight/dense_1/bias.npy"][:-4]
    _write(tmp_path / "short.ember", members)
    flipped = bytearray((tmp_path / "good.ember").read_bytes())
    flipped[-100] ^= 0x10
    (tmp_path / "flipped.ember").write_bytes(bytes(flipped))
    rng = ember.get_rng_state()
    for name in ("names.ember", "short.ember", "flipped.ember"):
        with pytest.raises(ValueError):
            model.load_weights(tmp_path / name)
        assert _same(model.get_weights(), weights), name
        assert _snapshots_equal(_optimizer_snapshot(model), optimizer), name
        assert _compile_description(model) == compiled, name
        assert ember.get_rng_state() == rng, name
    model.fit(x, y, epochs=1, verbose=0)  # still trains as before


def test_P2_optimizer_state_for_a_weight_the_model_lacks_is_listed_with_the_others(tmp_path):
    model, _, _ = _trained_mlp(epochs=1)
    model.save(tmp_path / "good.ember")
    members = _members(tmp_path / "good.ember")
    config = _config(members)
    entry = config["compile"]["optimizer_state"]["params"][0]
    assert entry["name"] == "dense/kernel"
    entry["name"] = "ghost/kernel"
    for slot in ("m", "v"):
        members[f"optimizer/ghost/kernel/{slot}.npy"] = members[
            f"optimizer/dense/kernel/{slot}.npy"
        ]
    config["compile"]["optimizer_state"]["params"][1]["slots"]["m"]["shape"] = [3]
    members["optimizer/dense/bias/m.npy"] = _npy(np.zeros(3, np.float32))
    forged = _write(tmp_path / "ghost.ember", _with_config(members, config))
    rng = ember.get_rng_state()
    with pytest.raises(CheckpointError) as info:
        models.load_model(forged)
    message = str(info.value)
    assert "ghost.ember" in message
    assert "optimizer state is for weight ghost/kernel, which the model lacks" in message
    assert "optimizer slot m of dense/bias has shape (3,), the weight has shape (8,)" in message
    assert ember.get_rng_state() == rng
    assert models.load_model(forged, compile=False).get_weights()  # weights alone are fine


def test_P2_a_config_that_does_not_fit_its_own_weights_is_a_checkpoint_error(tmp_path):
    model = _mlp()
    model.save(tmp_path / "good.ember")
    members = _members(tmp_path / "good.ember")
    config = _config(members)
    config["model"]["config"]["layers"][0]["config"]["units"] = 9  # the arrays hold 8
    with pytest.raises(CheckpointError, match=r"does not fit the model rebuilt.*dense/kernel"):
        models.load_model(_write(tmp_path / "bad.ember", _with_config(members, config)))
