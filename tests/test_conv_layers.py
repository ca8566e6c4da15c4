"""Convolution, pooling and reshaping layers: PyTorch parity through the layers, Keras parameter
counts and shapes, layouts, save/load, and the catalogue's bad-input case B8."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.layers.conv import Conv1D, Conv2D, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D
from ember.layers.core import Dense, Flatten
from ember.layers.pooling import (
    AveragePooling2D,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    MaxPooling1D,
    MaxPooling2D,
)
from ember.layers.reshaping import Reshape, UpSampling2D, ZeroPadding2D
from ember.models import Sequential, load_model


def _grads(layer, x, cotangent):
    xt = ember.tensor(x, requires_grad=True)
    out = layer(xt)
    (out * ember.tensor(cotangent)).sum().backward()
    return out.data, xt.grad, [p.grad for p in layer.weights]


@pytest.mark.parametrize(
    "strides,padding,dilation", [(1, "valid", 1), (2, "same", 1), (1, "same", 2)]
)
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_conv2d_layer_matches_torch(torch, strides, padding, dilation, data_format):
    rng = np.random.default_rng(0)
    layer = Conv2D(4, 3, strides, padding, data_format, dilation, activation="relu")
    shape = (2, 9, 8, 3) if data_format == "channels_last" else (2, 3, 9, 8)
    x = rng.standard_normal(shape).astype(np.float32)
    layer(x)
    layer.bias.data[:] = rng.standard_normal(4)
    out = layer(x)
    cot = rng.standard_normal(out.shape).astype(np.float32)
    y, gx, (gk, gb) = _grads(layer, x, cot)

    xt = torch.tensor(x if data_format == "channels_first" else x.transpose(0, 3, 1, 2))
    xt.requires_grad_(True)
    conv = torch.nn.Conv2d(3, 4, 3, strides, padding=0, dilation=dilation)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(layer.kernel.data.transpose(3, 2, 0, 1)))
        conv.bias.copy_(torch.tensor(layer.bias.data))
    inp = xt
    if padding == "same":
        from ember.ops.conv import same_padding

        h, w = x.shape[1:3] if data_format == "channels_last" else x.shape[2:4]
        (t, b), (left, r) = (same_padding(n, 3, strides, dilation) for n in (h, w))
        inp = torch.nn.functional.pad(xt, (left, r, t, b))
    ref = torch.relu(conv(inp))
    if data_format == "channels_last":
        ref = ref.permute(0, 2, 3, 1)
    np.testing.assert_allclose(y, ref.detach().numpy(), rtol=1e-5, atol=1e-5)
    (ref * torch.tensor(cot)).sum().backward()
    gx_ref = xt.grad.numpy()
    if data_format == "channels_last":
        gx_ref = gx_ref.transpose(0, 2, 3, 1)
    np.testing.assert_allclose(gx, gx_ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        gk, conv.weight.grad.numpy().transpose(2, 3, 1, 0), rtol=1e-4, atol=1e-4
    )
    np.testing.assert_allclose(gb, conv.bias.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_conv1d_matches_torch_including_causal(torch):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 11, 3)).astype(np.float32)
    for padding in ("valid", "causal"):
        layer = Conv1D(5, 4, padding=padding, dilation_rate=2)
        y = layer(x).data
        conv = torch.nn.Conv1d(3, 5, 4, dilation=2)
        with torch.no_grad():
            conv.weight.copy_(torch.tensor(layer.kernel.data.transpose(2, 1, 0)))
            conv.bias.zero_()
        xt = torch.tensor(x.transpose(0, 2, 1))
        if padding == "causal":
            xt = torch.nn.functional.pad(xt, (6, 0))
        ref = conv(xt).permute(0, 2, 1).detach().numpy()
        np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    assert y.shape == (2, 11, 5)  # causal keeps the length


def test_keras_simple_mnist_convnet_parameter_count_and_summary():
    model = Sequential(
        [
            ember.layers.Input(shape=(28, 28, 1)),
            Conv2D(32, 3, activation="relu"),
            MaxPooling2D(2),
            Conv2D(64, 3, activation="relu"),
            MaxPooling2D(2),
            Flatten(),
            Dense(10, activation="softmax"),
        ]
    )
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert model.count_params() == 34_826  # Keras' figure for this model (without Dropout)
    assert "34,826" in text
    assert "(None, 26, 26, 32)" in text and "(None, 5, 5, 64)" in text and "(None, 1600)" in text
    assert model.layers[0].count_params() == 32 * (9 * 1 + 1)
    assert model.layers[2].count_params() == 64 * (9 * 32 + 1)


def test_other_layer_shapes_and_counts():
    assert DepthwiseConv2D(3, depth_multiplier=2)(np.zeros((1, 8, 8, 4))).shape == (1, 6, 6, 8)
    sep = SeparableConv2D(16, 3, padding="same")
    assert sep(np.zeros((1, 8, 8, 4))).shape == (1, 8, 8, 16)
    assert sep.count_params() == 3 * 3 * 4 + 4 * 16 + 16
    up = Conv2DTranspose(16, 3, strides=2, padding="same")
    assert up(np.zeros((1, 7, 7, 8))).shape == (1, 14, 14, 16)
    assert up.kernel.shape == (3, 3, 16, 8)
    assert Conv2DTranspose(2, 3)(np.zeros((1, 5, 5, 1))).shape == (1, 7, 7, 2)
    assert AveragePooling2D(2)(np.zeros((1, 9, 9, 3))).shape == (1, 4, 4, 3)
    assert MaxPooling2D(3, 2, "same")(np.zeros((1, 9, 9, 3))).shape == (1, 5, 5, 3)
    assert MaxPooling1D(2)(np.zeros((1, 10, 3))).shape == (1, 5, 3)
    assert GlobalMaxPooling2D()(np.zeros((2, 5, 5, 6))).shape == (2, 6)
    assert GlobalAveragePooling2D(keepdims=True)(np.zeros((2, 5, 5, 6))).shape == (2, 1, 1, 6)
    assert Reshape((7, 7, -1))(np.zeros((2, 98))).shape == (2, 7, 7, 2)
    assert ZeroPadding2D(((1, 2), (0, 3)))(np.zeros((1, 4, 4, 1))).shape == (1, 7, 7, 1)
    assert UpSampling2D((2, 3))(np.zeros((1, 2, 2, 1))).shape == (1, 4, 6, 1)


def test_upsampling_and_padding_values_and_gradients():
    x = np.arange(4.0).reshape(1, 2, 2, 1)
    up = UpSampling2D(2)(x).data[0, :, :, 0]
    np.testing.assert_array_equal(up, [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]])
    t = ember.tensor(np.random.default_rng(0).standard_normal((2, 3, 4, 2)), dtype="float64")
    t.requires_grad = True
    assert ember.gradcheck(lambda v: UpSampling2D((2, 3), dtype="float64")(v), t)
    assert ember.gradcheck(lambda v: ZeroPadding2D((1, 2), dtype="float64")(v), t)
    assert ember.gradcheck(lambda v: GlobalMaxPooling2D(dtype="float64")(v), t)


def test_B8_conv_and_pooling_inputs_of_wrong_rank_name_the_layer_layout_and_shape():
    conv = Conv2D(8, 3, name="conv_a")
    with pytest.raises(ValueError, match=r'"conv_a".*ndim=4 \(NHWC.*found ndim=3.*\(28, 28, 1\)'):
        conv(np.zeros((28, 28, 1)))
    conv(np.zeros((1, 28, 28, 1)))
    with pytest.raises(ValueError, match=r'"conv_a".*axis -1.*value 1.*\(1, 28, 28, 3\)'):
        conv(np.zeros((1, 28, 28, 3)))
    with pytest.raises(ValueError, match=r"NCHW"):
        MaxPooling2D(data_format="channels_first")(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="does not fit"):
        Conv2D(2, 5)(np.zeros((1, 3, 3, 1)))
    for bad in (
        lambda: Conv2D(0, 3),
        lambda: Conv2D(4, 0),
        lambda: Conv2D(4, 3, padding="full"),
        lambda: Conv2D(4, 3, strides=(1, 2, 3)),
        lambda: Conv2D(4, 3, data_format="nhwc"),
        lambda: MaxPooling2D(0),
        lambda: DepthwiseConv2D(3, depth_multiplier=0),
        lambda: Reshape((0, 3)),
        lambda: ZeroPadding2D(-1),
    ):
        with pytest.raises(ValueError):
            bad()
    with pytest.raises(ValueError, match="cannot reshape"):
        Reshape((5, 5))(np.zeros((2, 24)))


def test_convnet_saves_and_loads_bit_exact(tmp_path):
    ember.manual_seed(0)
    model = Sequential(
        [
            ember.layers.Input(shape=(8, 8, 2)),
            Conv2D(4, 3, padding="same", activation="relu"),
            DepthwiseConv2D(3, depth_multiplier=2, padding="same"),
            SeparableConv2D(4, 3, strides=2),
            Conv2DTranspose(3, 2, strides=2),
            ZeroPadding2D(1),
            AveragePooling2D(2),
            UpSampling2D(2),
            MaxPooling2D(2, 1, "same"),
            GlobalAveragePooling2D(),
            Dense(3, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).standard_normal((6, 8, 8, 2)).astype(np.float32)
    model.fit(x, np.arange(6) % 3, epochs=1, verbose=0)
    model.save(tmp_path / "convnet.ember")
    loaded = load_model(tmp_path / "convnet.ember")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_convnet_learns_digits_quickly():
    from ember.datasets import digits

    (x_train, y_train), (x_test, y_test) = digits.load_data()
    x_train = x_train.reshape(-1, 8, 8, 1) / 16.0
    x_test = x_test.reshape(-1, 8, 8, 1) / 16.0
    ember.manual_seed(0)
    model = Sequential(
        [
            ember.layers.Input(shape=(8, 8, 1)),
            Conv2D(16, 3, padding="same", activation="relu"),
            MaxPooling2D(2),
            Conv2D(32, 3, padding="same", activation="relu"),
            MaxPooling2D(2),
            Flatten(),
            Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=32, epochs=8, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    assert accuracy >= 0.95
