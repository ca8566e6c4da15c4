"""Weights interchange (``ember.interchange``): safetensors files, PyTorch ``state_dict`` s and
Keras 3 ``.weights.h5`` files.

Imports are verified by equal outputs: the same network built in PyTorch and in Ember, PyTorch's
weights copied by ``load_torch_state_dict``, outputs compared in float32 within 1e-5; for Keras
(not installed) the test writes the ``.weights.h5`` itself with h5py in Keras 3's layout (every
dataset path is spelled out here, independently of the importer) from an Ember model's arrays,
and the loaded model must compute what a NumPy forward of those arrays (or that Ember model)
computes. Every forged file — wrong shapes, wrong dtypes, extra or missing keys, sizes claimed
beyond the file, pickled objects — must raise a clear ``ValueError`` and leave the model's weights
bit-identical.
"""

from __future__ import annotations

import json
import os
import struct
import zipfile

import h5py
import numpy as np
import pytest
import safetensors.numpy

import ember
from ember import layers
from ember.interchange import (
    ImportResult,
    load_keras_weights,
    load_safetensors,
    load_torch_state_dict,
    save_safetensors,
)

TOL = dict(rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------ helpers
def _snapshot(model) -> list[bytes]:
    return [p.data.tobytes() + str(p.dtype).encode() for p in model.weights]


def _assert_fails_unchanged(model, load, match: str) -> str:
    """``load()`` raises a ValueError matching ``match`` and the weights stay bit-identical."""
    before = _snapshot(model)
    with pytest.raises(ValueError, match=match) as info:
        load()
    assert _snapshot(model) == before
    return str(info.value)


def _mlp(dtype=None):
    ember.manual_seed(0)
    return ember.Sequential(
        [
            layers.Input(shape=(6,)),
            layers.Dense(8, activation="relu", dtype=dtype),
            layers.Dense(4, dtype=dtype),
        ]
    )


def _convnet():
    """Conv2D → BN → ReLU → pool → Flatten → Dense on 8×10 images: H ≠ W and 4 channels, so a
    wrong flatten order cannot go unnoticed."""
    return ember.Sequential(
        [
            layers.Input(shape=(8, 10, 2)),
            layers.Conv2D(4, 3),
            layers.BatchNormalization(momentum=0.9, epsilon=1e-5),
            layers.Activation("relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(5),
        ]
    )


# ------------------------------------------------------------------------------ safetensors
def test_safetensors_round_trip_through_save_weights(tmp_path):
    model = _mlp()
    model.layers[1].bias.data = np.arange(4, dtype=np.float32)  # not the zeros of a fresh one
    path = tmp_path / "w.safetensors"
    model.save_weights(path)
    stored = safetensors.numpy.load_file(str(path))
    assert sorted(stored) == sorted(model.state_dict())  # keys: the dotted state_dict paths
    for name, value in model.state_dict().items():
        assert stored[name].dtype == value.dtype and np.array_equal(stored[name], value)
    ember.manual_seed(1)
    copy = ember.Sequential(
        [layers.Input(shape=(6,)), layers.Dense(8, activation="relu"), layers.Dense(4)]
    )
    assert not np.array_equal(copy.layers[0].kernel.numpy(), model.layers[0].kernel.numpy())
    copy.load_weights(path)
    assert _snapshot(copy) == _snapshot(model)
    x = np.random.default_rng(0).normal(size=(3, 6)).astype(np.float32)
    assert np.array_equal(copy.predict(x, verbose=0), model.predict(x, verbose=0))
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]  # no temporary left


def test_safetensors_keeps_float64_and_metadata(tmp_path):
    model = _mlp(dtype="float64")
    assert model.layers[0].kernel.dtype == np.float64
    path = tmp_path / "w.safetensors"
    save_safetensors(model, path, metadata={"run": "7"})
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as f:
        assert f.metadata()["run"] == "7" and f.metadata()["format"] == "np"
        assert f.get_tensor("dense.kernel").dtype == np.float64
    copy = _mlp(dtype="float64")
    copy.layers[0].kernel.data = np.zeros((6, 8))
    assert load_safetensors(copy, path) == ([], [])
    assert _snapshot(copy) == _snapshot(model)
    # a float32 model does not silently take float64 data
    f32 = _mlp()
    _assert_fails_unchanged(
        f32, lambda: load_safetensors(f32, path), "dtype mismatch for dense.kernel"
    )


def test_safetensors_strict_false_and_key_errors(tmp_path):
    model = _mlp()
    state = model.state_dict()
    path = tmp_path / "partial.safetensors"
    partial = {k: v for k, v in state.items() if k != "dense_1.bias"}
    partial["head.kernel"] = np.ones((2, 2), np.float32)
    safetensors.numpy.save_file(partial, str(path))
    target = _mlp()
    target.layers[1].bias.data = np.full(4, 7.0, np.float32)
    message = _assert_fails_unchanged(
        target, lambda: target.load_weights(path), "missing from the file: dense_1.bias"
    )
    assert "unexpected in the file: head.kernel" in message
    result = load_safetensors(target, path, strict=False)
    assert result == (["dense_1.bias"], ["head.kernel"])
    assert np.array_equal(target.layers[1].bias.numpy(), np.full(4, 7.0, np.float32))
    assert np.array_equal(target.layers[0].kernel.numpy(), state["dense.kernel"])


def _header_file(path, header: dict, data: bytes = b"", length: int | None = None) -> None:
    raw = json.dumps(header).encode()
    prefix = struct.pack("<Q", len(raw) if length is None else length)
    path.write_bytes(prefix + raw + data)


@pytest.mark.parametrize(
    "case, match",
    [
        ("wrong_shape", r"size mismatch for dense.kernel: the file has shape \(8, 6\)"),
        ("wrong_dtype", "dtype mismatch for dense.kernel: the file has F64"),
        ("int_data", "dtype mismatch for dense.bias: the file has I32"),
        ("huge_header", "its header claims 1099511627776 bytes"),
        ("huge_shape", r"claims shape \(1000000000, 1000000000\) F32"),
        ("offsets_past_end", "the data section has"),
        ("overlap", "overlaps"),
        ("not_json", "its header is not valid JSON"),
        ("duplicate_key", "appears twice"),
        ("truncated", "shorter than the 8-byte prefix"),
        ("unknown_dtype", "has dtype 'F8_E4M3'"),
    ],
)
def test_forged_safetensors_files_are_refused(tmp_path, case, match):
    model = _mlp()
    state = model.state_dict()
    path = tmp_path / "forged.safetensors"
    if case == "wrong_shape":
        state["dense.kernel"] = np.ones((8, 6), np.float32)
        safetensors.numpy.save_file(state, str(path))
    elif case == "wrong_dtype":
        state["dense.kernel"] = state["dense.kernel"].astype(np.float64)
        safetensors.numpy.save_file(state, str(path))
    elif case == "int_data":
        state["dense.bias"] = np.zeros(8, np.int32)
        safetensors.numpy.save_file(state, str(path))
    elif case == "huge_header":
        _header_file(path, {}, length=2**40)
    elif case == "huge_shape":
        entry = {"dtype": "F32", "shape": [10**9, 10**9], "data_offsets": [0, 16]}
        _header_file(path, {"dense.kernel": entry}, b"\0" * 16)
    elif case == "offsets_past_end":
        entry = {"dtype": "F32", "shape": [6, 8], "data_offsets": [0, 192]}
        _header_file(path, {"dense.kernel": entry}, b"\0" * 100)
    elif case == "overlap":
        a = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
        b = {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}
        _header_file(path, {"a": a, "b": b}, b"\0" * 12)
    elif case == "not_json":
        path.write_bytes(struct.pack("<Q", 5) + b"{nope")
    elif case == "duplicate_key":
        raw = b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": 1}'
        path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 4)
    elif case == "truncated":
        path.write_bytes(b"\x10\0\0")
    elif case == "unknown_dtype":
        entry = {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}
        _header_file(path, {"dense.kernel": entry}, b"\0")
    _assert_fails_unchanged(model, lambda: model.load_weights(path), match)


def test_safetensors_bad_arguments(tmp_path):
    model = _mlp()
    with pytest.raises(TypeError, match="save_safetensors: metadata must be a dict of strings"):
        save_safetensors(model, tmp_path / "w.safetensors", metadata={"epoch": 3})
    with pytest.raises(TypeError, match="load_safetensors: path must be a str"):
        load_safetensors(model, 3)
    unbuilt = ember.Sequential([layers.Dense(2)])
    with pytest.raises(ValueError, match="has no weights yet: build it first"):
        save_safetensors(unbuilt, tmp_path / "w.safetensors")
    assert not (tmp_path / "w.safetensors").exists()


# ------------------------------------------------------------------------------ PyTorch
def _check_outputs(ember_out, torch_out):
    ember_out = ember_out.numpy() if hasattr(ember_out, "numpy") else np.asarray(ember_out)
    expected = torch_out.detach().numpy()
    assert ember_out.dtype == np.float32 and ember_out.shape == expected.shape
    np.testing.assert_allclose(ember_out, expected, **TOL)


def test_torch_mlp_equal_outputs(torch):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    model = _mlp()
    result = load_torch_state_dict(model, net.state_dict())
    assert result == ImportResult(
        ["dense.kernel", "dense.bias", "dense_1.kernel", "dense_1.bias"], [], []
    )
    x = np.random.default_rng(1).normal(size=(5, 6)).astype(np.float32)
    _check_outputs(model.predict(x, verbose=0), net(torch.from_numpy(x)))


def _torch_convnet(torch):
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 3 * 4, 5),
    )
    with torch.no_grad():  # running statistics and affine values that are not 0/1
        bn = net[1]
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    return net.eval()


def test_torch_convnet_with_batchnorm_and_flatten_from_a_file(torch, tmp_path):
    net = _torch_convnet(torch)
    path = tmp_path / "convnet.pt"
    torch.save(net.state_dict(), path)
    model = _convnet()
    result = load_torch_state_dict(model, path)
    assert result.unused == ["1.num_batches_tracked"] and result.skipped == []
    assert len(result.loaded) == len(model.weights) == 8
    x = np.random.default_rng(2).normal(size=(3, 2, 8, 10)).astype(np.float32)  # NCHW
    ember_out = model.predict(x.transpose(0, 2, 3, 1), verbose=0)  # NHWC
    _check_outputs(ember_out, net(torch.from_numpy(x)))


def test_torch_flatten_permutation_is_needed(torch):
    """Without the row permutation of the Dense after the Flatten the outputs differ: the
    test above really checks the NCHW → NHWC handling."""
    net = _torch_convnet(torch)
    model = _convnet()
    load_torch_state_dict(model, net.state_dict())
    x = np.random.default_rng(2).normal(size=(3, 2, 8, 10)).astype(np.float32)
    dense = model.layers[-1]
    naive = net[5].weight.detach().numpy().T
    assert not np.allclose(dense.kernel.numpy(), naive)
    dense.kernel.data = naive.copy()
    wrong = model.predict(x.transpose(0, 2, 3, 1), verbose=0)
    assert not np.allclose(wrong, net(torch.from_numpy(x)).detach().numpy(), atol=1e-3)


class _RecurrentNet:
    """A recurrent layer over (batch, time, features) and a Linear on its last step."""

    @staticmethod
    def build(torch, kind: str, levels: int = 1):
        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn = getattr(torch.nn, kind)(3, 5, num_layers=levels, batch_first=True)
                self.head = torch.nn.Linear(5, 2)

            def forward(self, x):
                out, _ = self.rnn(x)
                return self.head(out[:, -1])

        torch.manual_seed(0)
        net = Net()
        with torch.no_grad():  # distinct biases: the summing and the gate order show
            for name, p in net.rnn.named_parameters():
                if "bias" in name:
                    p.uniform_(-1, 1)
        return net


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_torch_recurrent_models_equal_outputs(torch, kind):
    net = _RecurrentNet.build(torch, kind)
    layer = {"LSTM": layers.LSTM, "GRU": layers.GRU, "RNN": layers.SimpleRNN}[kind]
    model = ember.Sequential([layers.Input(shape=(7, 3)), layer(5), layers.Dense(2)])
    load_torch_state_dict(model, net.state_dict())
    x = np.random.default_rng(3).normal(size=(4, 7, 3)).astype(np.float32)
    _check_outputs(model.predict(x, verbose=0), net(torch.from_numpy(x)))
    if kind == "GRU":  # Ember keeps PyTorch's two biases apart: (2, 3 * units)
        assert model.layers[0].cell.bias.shape == (2, 15)


def test_torch_two_level_lstm_maps_to_two_layers(torch):
    net = _RecurrentNet.build(torch, "LSTM", levels=2)
    model = ember.Sequential(
        [
            layers.Input(shape=(7, 3)),
            layers.LSTM(5, return_sequences=True),
            layers.LSTM(5),
            layers.Dense(2),
        ]
    )
    load_torch_state_dict(model, net.state_dict())
    x = np.random.default_rng(4).normal(size=(2, 7, 3)).astype(np.float32)
    _check_outputs(model.predict(x, verbose=0), net(torch.from_numpy(x)))
    # the levels can be named in a mapping
    names = {"lstm": "rnn.l0", "lstm_1": "rnn.l1", "dense": "head"}
    assert load_torch_state_dict(model, net.state_dict(), mapping=names).skipped == []


def test_torch_bidirectional_lstm(torch):
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 4, batch_first=True, bidirectional=True)
    model = ember.Sequential(
        [layers.Input(shape=(6, 3)), layers.Bidirectional(layers.LSTM(4, return_sequences=True))]
    )
    load_torch_state_dict(model, lstm.state_dict())
    x = np.random.default_rng(5).normal(size=(2, 6, 3)).astype(np.float32)
    _check_outputs(model.predict(x, verbose=0), lstm(torch.from_numpy(x))[0])


def test_torch_embedding_layernorm_attention(torch):
    class TorchNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(10, 8)
            self.norm = torch.nn.LayerNorm(8)
            self.attn = torch.nn.MultiheadAttention(8, 2, batch_first=True)

        def forward(self, ids):
            x = self.norm(self.embed(ids))
            return self.attn(x, x, x, need_weights=False)[0]

    class EmberNet(ember.Model):
        def __init__(self):
            super().__init__()
            self.embed = layers.Embedding(10, 8)
            self.norm = layers.LayerNormalization(epsilon=1e-5)
            self.attn = layers.MultiHeadAttention(num_heads=2, key_dim=4)

        def call(self, ids):
            x = self.norm(self.embed(ids))
            return self.attn(x, x)

    torch.manual_seed(0)
    net = TorchNet().eval()
    with torch.no_grad():
        net.norm.weight.uniform_(0.5, 1.5)
        net.norm.bias.uniform_(-0.5, 0.5)
        net.attn.in_proj_bias.uniform_(-0.5, 0.5)
        net.attn.out_proj.bias.uniform_(-0.5, 0.5)
    model = EmberNet()
    ids = np.array([[1, 4, 2, 9, 0], [3, 3, 7, 8, 5]])
    model(ids)  # builds the weights
    result = load_torch_state_dict(model, net.state_dict())
    assert len(result.loaded) == len(model.weights) and result.unused == []
    _check_outputs(model(ids), net(torch.from_numpy(ids)))


def test_torch_conv1d_and_embedding_flatten(torch):
    """Conv1d then Flatten needs the (C, L) → (L, C) reordering; an Embedding then Flatten
    does not (both frameworks flatten (T, E) alike)."""
    torch.manual_seed(0)
    conv = torch.nn.Sequential(
        torch.nn.Conv1d(3, 4, 2), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 5, 2)
    )
    model = ember.Sequential(
        [
            layers.Input(shape=(6, 3)),
            layers.Conv1D(4, 2, activation="relu"),
            layers.Flatten(),
            layers.Dense(2),
        ]
    )
    load_torch_state_dict(model, conv.state_dict())
    x = np.random.default_rng(6).normal(size=(3, 3, 6)).astype(np.float32)  # NCL
    _check_outputs(model.predict(x.transpose(0, 2, 1), verbose=0), conv(torch.from_numpy(x)))

    embed = torch.nn.Sequential(
        torch.nn.Embedding(10, 4), torch.nn.Flatten(), torch.nn.Linear(4 * 5, 3)
    )
    model = ember.Sequential(
        [layers.Input(shape=(5,), dtype="int64"), layers.Embedding(10, 4), layers.Flatten(),
         layers.Dense(3)]
    )  # fmt: skip
    load_torch_state_dict(model, embed.state_dict())
    ids = np.array([[1, 2, 3, 4, 5], [9, 0, 9, 0, 1]])
    _check_outputs(model.predict(ids, verbose=0), embed(torch.from_numpy(ids)))


def test_torch_mapping_when_the_order_differs(torch):
    class Net(torch.nn.Module):  # the head is registered first: order matching cannot work
        def __init__(self):
            super().__init__()
            self.head = torch.nn.Linear(8, 4)
            self.hidden = torch.nn.Linear(6, 8)

        def forward(self, x):
            return self.head(torch.relu(self.hidden(x)))

    torch.manual_seed(0)
    net = Net()
    model = _mlp()
    message = _assert_fails_unchanged(
        model, lambda: load_torch_state_dict(model, net.state_dict()), "head.weight has shape"
    )
    # both sides are listed, line by line
    assert "1. Ember dense [Dense: kernel (6, 8), bias (8,)]" in message
    assert "PyTorch head [weight (4, 8), bias (4,)]" in message
    assert "2. Ember dense_1 [Dense: kernel (8, 4), bias (4,)]" in message
    load_torch_state_dict(model, net.state_dict(), mapping={"dense": "hidden", "dense_1": "head"})
    x = np.random.default_rng(7).normal(size=(2, 6)).astype(np.float32)
    _check_outputs(model.predict(x, verbose=0), net(torch.from_numpy(x)))
    with pytest.raises(ValueError, match="mapping value 'fc9'.*'head', 'hidden'"):
        load_torch_state_dict(model, net.state_dict(), mapping={"dense": "fc9"})


def test_torch_strict_false_leaves_the_rest(torch):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8))  # only the first layer
    model = _mlp()
    head = model.layers[1].kernel.numpy().copy()
    message = _assert_fails_unchanged(
        model, lambda: load_torch_state_dict(model, net.state_dict()), "unpaired: Ember dense_1"
    )
    assert "2. Ember dense_1 [Dense: kernel (8, 4), bias (4,)]  <->  PyTorch -" in message
    result = load_torch_state_dict(model, net.state_dict(), strict=False)
    assert result == ImportResult(
        ["dense.kernel", "dense.bias"], ["dense_1.kernel", "dense_1.bias"], []
    )
    assert np.array_equal(model.layers[1].kernel.numpy(), head)
    assert np.array_equal(model.layers[0].kernel.numpy(), net[0].weight.detach().numpy().T)


def test_torch_safetensors_file_with_bfloat16(torch, tmp_path):
    import safetensors.torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    net = net.to(torch.bfloat16)
    path = tmp_path / "model.safetensors"
    safetensors.torch.save_file(net.state_dict(), str(path))
    model = _mlp()
    load_torch_state_dict(model, path)
    expected = net[0].weight.float().detach().numpy().T
    assert np.array_equal(model.layers[0].kernel.numpy(), expected)  # bf16 widens exactly


def _pickle_bomb_marker(tmp_path):
    return tmp_path / "code-ran"


class _Payload:
    """An object whose unpickling would create a directory: it must never be unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def test_torch_file_with_a_pickled_object_is_refused(torch, tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    marker = _pickle_bomb_marker(tmp_path)
    state = dict(net.state_dict())
    state["extra"] = _Payload(marker)
    path = tmp_path / "evil.pt"
    torch.save(state, path)
    model = _mlp()
    message = _assert_fails_unchanged(
        model, lambda: load_torch_state_dict(model, path), "weights_only=True"
    )
    assert "Python objects other than tensors" in message and "makedirs" in message
    assert not marker.exists()


def _patched_zip(data: bytes, member_suffix: str, size: int) -> bytes:
    """A copy of a zip whose central directory claims ``size`` bytes for one member."""
    out = bytearray(data)
    start = 0
    while (start := out.find(b"PK\x01\x02", start)) != -1:
        name_length = struct.unpack_from("<H", out, start + 28)[0]
        name = bytes(out[start + 46 : start + 46 + name_length]).decode()
        if name.endswith(member_suffix):
            struct.pack_into("<II", out, start + 20, size, size)  # compressed, uncompressed
            return bytes(out)
        start += 4
    raise AssertionError(f"no member {member_suffix}")


def test_forged_torch_files_are_refused(torch, tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    model = _mlp()
    good = tmp_path / "good.pt"
    torch.save(net.state_dict(), good)

    huge = tmp_path / "huge.pt"  # its zip directory claims a 2 GB record in a small file
    huge.write_bytes(_patched_zip(good.read_bytes(), "data/0", 2**31 - 1))
    _assert_fails_unchanged(model, lambda: load_torch_state_dict(model, huge), "claims 2147483647")

    legacy = tmp_path / "legacy.pt"
    legacy.write_bytes(b"\x80\x02not a zip at all")
    _assert_fails_unchanged(
        model, lambda: load_torch_state_dict(model, legacy), "not a PyTorch file in the zip format"
    )
    tensor_only = tmp_path / "tensor.pt"
    torch.save(torch.ones(3), tensor_only)
    _assert_fails_unchanged(
        model, lambda: load_torch_state_dict(model, tensor_only), "holds a Tensor, not a state_dict"
    )
    checkpoint = {"model": net.state_dict(), "epoch": torch.tensor(3)}
    _assert_fails_unchanged(
        model, lambda: load_torch_state_dict(model, checkpoint), r"pass checkpoint\['model'\]"
    )


@pytest.mark.parametrize(
    "case, match",
    [
        ("wrong_shape", r"0.weight has shape \(8, 5\), expected \(8, 6\)"),
        ("missing", r"missing 2.bias"),
        ("extra_leaf", r"unexpected 2.scale"),
        ("extra_module", r"unpaired: Ember none; PyTorch '3'"),
        ("int_data", r"2.weight has dtype int64; expected floating-point"),
        ("huge_view", r"0.weight has shape \(100000, 100000\)"),
    ],
)
def test_forged_state_dicts_are_refused(torch, case, match):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    state = dict(net.state_dict())
    if case == "wrong_shape":
        state["0.weight"] = torch.ones(8, 5)
    elif case == "missing":
        del state["2.bias"]
    elif case == "extra_leaf":
        state["2.scale"] = torch.ones(4)
    elif case == "extra_module":
        state["3.weight"] = torch.ones(4, 4)
    elif case == "int_data":
        state["2.weight"] = torch.ones(4, 8, dtype=torch.int64)
    elif case == "huge_view":  # a stride-0 view: 40 GB if anything copied it before checking
        state["0.weight"] = torch.ones(1).expand(100_000, 100_000)
    model = _mlp()
    _assert_fails_unchanged(model, lambda: load_torch_state_dict(model, state), match)


def test_torch_unsupported_layers_say_why(torch):
    gru = torch.nn.GRU(3, 4, batch_first=True)
    model = ember.Sequential([layers.Input(shape=(5, 3)), layers.GRU(4, reset_after=False)])
    _assert_fails_unchanged(
        model, lambda: load_torch_state_dict(model, gru.state_dict()), "reset_after=False"
    )
    with pytest.raises(TypeError, match="path_or_dict must be a file path or a dict"):
        load_torch_state_dict(model, 3)


# ------------------------------------------------------------------------------ Keras
def _write_h5(path, arrays: dict) -> None:
    """A weights file as Keras 3 writes it: a group per layer path, datasets vars/0, vars/1…
    (plus the empty top-level ``vars`` group Keras always creates)."""
    with h5py.File(path, "w") as f:
        f.create_group("vars")
        for key, value in arrays.items():
            f[key] = value


def _randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    for p in model.weights:
        p.data = rng.normal(scale=0.5, size=p.shape).astype(p.dtype)
        if "variance" in (p.name or ""):
            p.data = np.abs(p.data) + 0.5


def test_keras_mlp_equals_a_numpy_forward(tmp_path):
    rng = np.random.default_rng(0)
    w1, b1 = rng.normal(size=(6, 8)), rng.normal(size=8)
    w2, b2 = rng.normal(size=(8, 4)), rng.normal(size=4)
    arrays = {"layers/dense/vars/0": w1, "layers/dense/vars/1": b1,
              "layers/dense_1/vars/0": w2, "layers/dense_1/vars/1": b2}  # fmt: skip
    arrays = {k: v.astype(np.float32) for k, v in arrays.items()}
    arrays["optimizer/vars/0"] = np.array(12, np.int64)  # training state: ignored
    path = tmp_path / "mlp.weights.h5"
    _write_h5(path, arrays)
    model = _mlp()
    result = load_keras_weights(model, path)
    assert result == ImportResult(
        ["dense.kernel", "dense.bias", "dense_1.kernel", "dense_1.bias"], [], ["optimizer/vars/0"]
    )
    x = rng.normal(size=(5, 6)).astype(np.float32)
    f32 = {k: v for k, v in arrays.items() if v.dtype == np.float32}
    hidden = np.maximum(x @ f32["layers/dense/vars/0"] + f32["layers/dense/vars/1"], 0)
    expected = hidden @ f32["layers/dense_1/vars/0"] + f32["layers/dense_1/vars/1"]
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, **TOL)


def test_keras_convnet_with_batchnorm(tmp_path):
    source = _convnet()
    _randomize(source, 1)
    conv, bn, dense = source.layers[0], source.layers[1], source.layers[5]
    arrays = {
        "layers/conv2d/vars/0": conv.kernel.numpy(),  # HWIO, as in Keras
        "layers/conv2d/vars/1": conv.bias.numpy(),
        "layers/batch_normalization/vars/0": bn.gamma.numpy(),
        "layers/batch_normalization/vars/1": bn.beta.numpy(),
        "layers/batch_normalization/vars/2": bn.moving_mean.numpy(),
        "layers/batch_normalization/vars/3": bn.moving_variance.numpy(),
        "layers/dense/vars/0": dense.kernel.numpy(),
        "layers/dense/vars/1": dense.bias.numpy(),
    }
    path = tmp_path / "convnet.weights.h5"
    _write_h5(path, arrays)
    model = _convnet()
    load_keras_weights(model, path)
    x = np.random.default_rng(2).normal(size=(3, 8, 10, 2)).astype(np.float32)
    assert np.array_equal(model.predict(x, verbose=0), source.predict(x, verbose=0))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_keras_recurrent_models(tmp_path, kind):
    def build():
        layer = layers.LSTM(5) if kind == "lstm" else layers.GRU(5)
        return ember.Sequential([layers.Input(shape=(7, 3)), layer, layers.Dense(2)])

    source = build()
    _randomize(source, 3)
    cell, dense = source.layers[0].cell, source.layers[1]
    arrays = {
        f"layers/{kind}/cell/vars/0": cell.kernel.numpy(),
        f"layers/{kind}/cell/vars/1": cell.recurrent_kernel.numpy(),
        f"layers/{kind}/cell/vars/2": cell.bias.numpy(),  # GRU: (2, 3 * units), as Keras 3
        "layers/dense/vars/0": dense.kernel.numpy(),
        "layers/dense/vars/1": dense.bias.numpy(),
    }
    path = tmp_path / f"{kind}.weights.h5"
    _write_h5(path, arrays)
    model = build()
    load_keras_weights(model, path)
    x = np.random.default_rng(4).normal(size=(2, 7, 3)).astype(np.float32)
    assert np.array_equal(model.predict(x, verbose=0), source.predict(x, verbose=0))


def test_keras_subclassed_model_with_attention(tmp_path):
    """A subclassed model's layers sit under their attribute names; a MultiHeadAttention's
    weights under its four EinsumDense sublayers."""

    class Net(ember.Model):
        def __init__(self):
            super().__init__()
            self.embed = layers.Embedding(10, 8)
            self.attn = layers.MultiHeadAttention(num_heads=2, key_dim=4)

        def call(self, ids):
            x = self.embed(ids)
            return self.attn(x, x)

    ids = np.array([[1, 4, 2, 9], [3, 3, 7, 8]])
    source, model = Net(), Net()
    source(ids), model(ids)
    _randomize(source, 5)
    attn = source.attn
    arrays = {"embed/vars/0": source.embed.embeddings.numpy()}
    for part in ("query", "key", "value", "output"):
        arrays[f"attn/_{part}_dense/vars/0"] = getattr(attn, f"{part}_kernel").numpy()
        arrays[f"attn/_{part}_dense/vars/1"] = getattr(attn, f"{part}_bias").numpy()
    path = tmp_path / "net.weights.h5"
    _write_h5(path, arrays)
    load_keras_weights(model, path)
    assert np.array_equal(model(ids).numpy(), source(ids).numpy())


def _mlp_arrays():
    model = _mlp()
    _randomize(model, 6)
    k1, b1, k2, b2 = (p.numpy() for p in model.weights)
    return {"layers/dense/vars/0": k1, "layers/dense/vars/1": b1,
            "layers/dense_1/vars/0": k2, "layers/dense_1/vars/1": b2}  # fmt: skip


@pytest.mark.parametrize(
    "case, match",
    [
        ("wrong_shape", r"layers/dense/vars/0 has shape \(8, 6\), the model's weight has \(6, 8\)"),
        ("missing", "missing from the file: layers/dense_1/vars/1"),
        ("extra", "unexpected in the file: layers/dense_1/vars/2"),
        ("extra_layer", "unexpected in the file: layers/dense_2/vars/0"),
        ("int_data", "layers/dense/vars/1 has dtype int32; expected floating-point"),
        ("strings", "layers/dense/vars/1 has dtype object"),
        ("huge_shape", r"layers/dense/vars/0 has shape \(10000000, 10000000\)"),
        ("external_link", "has a ExternalLink at 'layers/dense/vars/0'"),
        ("soft_link", "has a SoftLink at 'layers/dense_1/vars/0'"),
        ("external_storage", "keeps its data outside the file"),
        ("not_hdf5", "is not an HDF5 file"),
    ],
)
def test_forged_keras_files_are_refused(tmp_path, case, match):
    arrays = _mlp_arrays()
    path = tmp_path / "forged.weights.h5"
    if case == "wrong_shape":
        arrays["layers/dense/vars/0"] = arrays["layers/dense/vars/0"].T
    elif case == "missing":
        del arrays["layers/dense_1/vars/1"]
    elif case == "extra":
        arrays["layers/dense_1/vars/2"] = np.ones(3, np.float32)
    elif case == "extra_layer":
        arrays["layers/dense_2/vars/0"] = np.ones(3, np.float32)
    elif case == "int_data":
        arrays["layers/dense/vars/1"] = np.ones(8, np.int32)
    elif case == "strings":
        arrays["layers/dense/vars/1"] = np.array(["a"] * 8, dtype=h5py.string_dtype())
    if case == "not_hdf5":
        path.write_bytes(b"not an HDF5 file" * 10)
    else:
        _write_h5(path, {k: v for k, v in arrays.items()
                         if not (case in ("huge_shape", "external_link", "external_storage")
                                 and k == "layers/dense/vars/0")})  # fmt: skip
    with h5py.File(path, "a") if case != "not_hdf5" else _nothing() as f:
        if case == "huge_shape":  # declared, never written: the file stays small
            f.create_dataset("layers/dense/vars/0", shape=(10**7, 10**7), dtype="f4")
        elif case == "external_link":
            other = tmp_path / "other.h5"
            with h5py.File(other, "w") as g:
                g["w"] = np.ones((6, 8), np.float32)
            f["layers/dense/vars/0"] = h5py.ExternalLink(str(other), "/w")
        elif case == "soft_link":
            del f["layers/dense_1/vars/0"]
            f["layers/dense_1/vars/0"] = h5py.SoftLink("/layers/dense/vars/0")
        elif case == "external_storage":
            raw = tmp_path / "raw.bin"
            raw.write_bytes(np.ones((6, 8), np.float32).tobytes())
            f.create_dataset(
                "layers/dense/vars/0", shape=(6, 8), dtype="f4", external=[(str(raw), 0, 192)]
            )
    assert os.path.getsize(path) < 100_000
    model = _mlp()
    _assert_fails_unchanged(model, lambda: load_keras_weights(model, path), match)


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *args):
        return False


def test_keras_zip_archive_is_not_a_weights_file(tmp_path):
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{}")
    model = _mlp()
    _assert_fails_unchanged(model, lambda: load_keras_weights(model, path), "not an HDF5 file")
