"""Rescaling, Resizing and RandomRotation (with the image ops under them, ``ember.ops.image``)
and ``Dataset.cache()``: hand-computed values, PyTorch parity, gradients, randomness, errors and
save/load."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ember
from ember import layers
from ember.datasets import digits
from ember.models import Model, Sequential, load_model
from ember.ops import image as image_ops


def _images(n=3, h=5, w=6, c=2, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal((n, h, w, c)).astype(dtype)


# ------------------------------------------------------------------------------------ Rescaling
def test_rescaling_values_per_channel_and_dtype():
    out = layers.Rescaling(1 / 127.5, offset=-1)(np.array([[0.0, 127.5, 255.0]]))
    np.testing.assert_allclose(out.numpy(), [[-1.0, 0.0, 1.0]], atol=1e-6)
    assert out.dtype == np.float32

    pixels = np.arange(2 * 2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 2, 3)  # uint8 images
    layer = layers.Rescaling([1.0, 0.5, 0.25], offset=[0.0, 1.0, -2.0])
    out = layer(pixels).numpy()
    assert out.dtype == np.float32
    expected = pixels * np.array([1.0, 0.5, 0.25]) + np.array([0.0, 1.0, -2.0])
    np.testing.assert_allclose(out, expected, rtol=1e-6)

    # any shape, and a float64 layer computes in float64
    x = np.linspace(-1, 1, 24).reshape(2, 3, 4)
    out64 = layers.Rescaling(3.0, offset=0.5, dtype="float64")(x)
    assert out64.dtype == np.float64
    np.testing.assert_array_equal(out64.numpy(), x * 3.0 + 0.5)


def test_rescaling_gradient_is_the_scale_and_stays_float32(grad_probe):
    x = ember.Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    seen: list = []
    out = layers.Rescaling([2.0, -1.0, 0.5], offset=4.0)(grad_probe(x, seen))
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, np.tile([2.0, -1.0, 0.5], (2, 1)))
    assert seen == [np.float32]


def test_rescaling_errors_name_the_layer():
    with pytest.raises(TypeError, match='"resc".*scale'):
        layers.Rescaling("half", name="resc")
    with pytest.raises(TypeError, match="scale"):
        layers.Rescaling(True)
    with pytest.raises(ValueError, match='"resc2".*offset must be finite'):
        layers.Rescaling(1.0, offset=math.nan, name="resc2")
    with pytest.raises(ValueError, match=r'"resc3".*scale of shape \(4,\) does not broadcast'):
        layers.Rescaling([1.0, 2.0, 3.0, 4.0], name="resc3")(np.ones((2, 5, 3)))


def test_rescaling_config_round_trip():
    layer = layers.Rescaling([1.0, 2.0], offset=0.5, name="r")
    config = layer.get_config()
    assert config["scale"] == [1.0, 2.0] and config["offset"] == 0.5
    clone = layers.Rescaling.from_config(config)
    x = _images(c=2)
    np.testing.assert_array_equal(clone(x).numpy(), layer(x).numpy())


# ------------------------------------------------------------------------------------- Resizing
def _one(image):
    return np.asarray(image, np.float32)[None, :, :, None]


def test_resizing_bilinear_2x2_to_4x4_by_hand():
    # Half-pixel centres: the output columns read input positions -0.25 (clamped to 0), 0.25,
    # 0.75 and 1.25 (clamped to 1), so a row [0, 4] becomes [0, 1, 3, 4]; the same down.
    out = layers.Resizing(4, 4)(_one([[0, 4], [8, 12]])).numpy()[0, :, :, 0]
    np.testing.assert_array_equal(
        out, [[0, 1, 3, 4], [2, 3, 5, 6], [6, 7, 9, 10], [8, 9, 11, 12]]
    )
    # shrinking 4 -> 2 reads positions 0.5 and 2.5: the mean of each pair
    row = _one([[1, 3, 10, 20]])
    np.testing.assert_array_equal(layers.Resizing(1, 2)(row).numpy()[0, :, :, 0], [[2, 15]])


def test_resizing_nearest_by_hand():
    out = layers.Resizing(4, 4, interpolation="nearest")(_one([[1, 2], [3, 4]])).numpy()
    np.testing.assert_array_equal(
        out[0, :, :, 0], [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]
    )
    # 3 -> 2 takes floor((o + 0.5) * 1.5) = pixels 0 and 2; 3 -> 5 takes 0, 0, 1, 2, 2
    three = _one([[5, 6, 7]])
    np.testing.assert_array_equal(
        layers.Resizing(1, 2, interpolation="nearest")(three).numpy()[0, 0, :, 0], [5, 7]
    )
    np.testing.assert_array_equal(
        layers.Resizing(1, 5, interpolation="nearest")(three).numpy()[0, 0, :, 0],
        [5, 5, 6, 7, 7],
    )


@pytest.mark.parametrize(
    "in_hw, out_hw", [((8, 8), (32, 32)), ((5, 7), (3, 11)), ((10, 6), (4, 9)), ((3, 3), (3, 8))]
)
def test_resizing_matches_torch_interpolate(torch, in_hw, out_hw):
    x = _images(n=2, h=in_hw[0], w=in_hw[1], c=3, seed=1)
    chw = torch.tensor(x).permute(0, 3, 1, 2)
    functional = torch.nn.functional
    expected = {
        "bilinear": functional.interpolate(chw, size=out_hw, mode="bilinear", align_corners=False),
        "nearest": functional.interpolate(chw, size=out_hw, mode="nearest-exact"),
    }
    for interpolation, reference in expected.items():
        reference = reference.permute(0, 2, 3, 1).numpy()
        out = layers.Resizing(*out_hw, interpolation=interpolation)(x).numpy()
        np.testing.assert_allclose(out, reference, rtol=1e-5, atol=1e-6)
        first = layers.Resizing(*out_hw, interpolation=interpolation,
                                data_format="channels_first")(x.transpose(0, 3, 1, 2)).numpy()
        np.testing.assert_allclose(first.transpose(0, 2, 3, 1), reference, rtol=1e-5, atol=1e-6)
    # the gradient too: the transpose of the interpolation
    leaf = torch.tensor(x).permute(0, 3, 1, 2).requires_grad_(True)
    cotangent = np.random.default_rng(2).standard_normal((2, *out_hw, 3)).astype(np.float32)
    resized = functional.interpolate(leaf, size=out_hw, mode="bilinear", align_corners=False)
    (resized * torch.tensor(cotangent).permute(0, 3, 1, 2)).sum().backward()
    mine = ember.Tensor(x, requires_grad=True)
    (layers.Resizing(*out_hw)(mine) * ember.Tensor(cotangent)).sum().backward()
    np.testing.assert_allclose(mine.grad, leaf.grad.permute(0, 2, 3, 1).numpy(), atol=1e-5)


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("size", [(3, 11), (9, 4), (5, 6)])
def test_resize_op_gradcheck(interpolation, size):
    x = _images(n=2, h=5, w=6, c=3, dtype=np.float64)
    assert ember.gradcheck(lambda t: image_ops.resize(t, size, interpolation=interpolation), x)
    assert ember.gradcheck(
        lambda t: image_ops.resize(t, size, interpolation=interpolation,
                                   data_format="channels_first", crop_to_aspect_ratio=True),
        x,
    )


def test_resizing_keeps_float32_in_the_backward(grad_probe):
    x = ember.Tensor(_images(), requires_grad=True)
    seen: list = []
    out = layers.Resizing(7, 3)(grad_probe(x, seen))
    assert out.dtype == np.float32
    out.sum().backward()
    assert seen == [np.float32]
    # each input pixel's gradient is the total weight it was read with: they sum to the output
    # pixel count
    assert x.grad.sum() == pytest.approx(3 * 7 * 3 * 2)


def test_resizing_crop_and_pad_to_aspect_ratio():
    x = _images(n=2, h=4, w=8, c=1)
    # crop: the centred 4x4 window, then resize
    cropped = layers.Resizing(2, 2, crop_to_aspect_ratio=True)(x).numpy()
    np.testing.assert_allclose(cropped, layers.Resizing(2, 2)(x[:, :, 2:6]).numpy(), rtol=1e-6)
    # pad: two rows of fill_value above and below make it 8x8, resized to 8x8 unchanged
    padded = layers.Resizing(8, 8, pad_to_aspect_ratio=True, fill_value=-1.0)(x).numpy()
    expected = np.full((2, 8, 8, 1), -1.0, np.float32)
    expected[:, 2:6] = x
    np.testing.assert_array_equal(padded, expected)


def test_resizing_errors_name_the_layer():
    for height, width in ((0, 4), (-2, 4), (4.5, 4), (4, True)):
        with pytest.raises(ValueError, match='"rs".*(height|width) must be a positive integer'):
            layers.Resizing(height, width, name="rs")
    with pytest.raises(ValueError, match='"rs".*interpolation must be one of'):
        layers.Resizing(4, 4, interpolation="cubic", name="rs")
    with pytest.raises(NotImplementedError, match="bicubic.*not implemented"):
        layers.Resizing(4, 4, interpolation="bicubic")
    with pytest.raises(ValueError, match="exclude each other"):
        layers.Resizing(4, 4, crop_to_aspect_ratio=True, pad_to_aspect_ratio=True)
    with pytest.raises(ValueError, match='"rs".*fill_mode'):
        layers.Resizing(4, 4, fill_mode="reflect", name="rs")
    with pytest.raises(ValueError, match=r'"rs".*expected ndim=4'):
        layers.Resizing(4, 4, name="rs")(np.ones((2, 8, 8)))
    shrink = layers.Resizing(2, 2, antialias=True, name="aa")
    with pytest.raises(NotImplementedError, match='"aa".*antialias'):
        shrink(np.ones((1, 4, 4, 1)))
    grow = layers.Resizing(8, 8, antialias=True)  # antialiasing changes nothing when enlarging
    np.testing.assert_array_equal(grow(_images(h=4, w=4)).numpy(),
                                  layers.Resizing(8, 8)(_images(h=4, w=4)).numpy())


def test_resizing_first_layer_of_a_functional_model_on_digits(tmp_path):
    (x_train, y_train), _ = digits.load_data()
    x = (x_train[:128].astype("float32") / 16)[..., None]  # (N, 8, 8, 1)
    y = y_train[:128]
    ember.manual_seed(0)
    inputs = layers.Input(shape=(8, 8, 1))
    h = layers.Resizing(32, 32)(inputs)
    assert h.shape == (None, 32, 32, 1)
    h = layers.Conv2D(4, 3, strides=2, activation="relu")(h)
    h = layers.GlobalAveragePooling2D()(h)
    model = Model(inputs, layers.Dense(10, activation="softmax")(h))
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    model.save(tmp_path / "resize.ember")
    loaded = load_model(tmp_path / "resize.ember")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.layers[1].get_config()["height"] == 32


# ------------------------------------------------------------------------------ RandomRotation
def _rotation_reference(image, angle, fill_mode, fill_value, interpolation="bilinear"):
    """Per-pixel loop: output (x, y) reads input c + R(angle)·((x, y) − c), y pointing down."""
    h, w, _ = image.shape
    cy, cx = (h - 1) / 2, (w - 1) / 2
    cos, sin = math.cos(angle), math.sin(angle)

    def read(r, c):
        if fill_mode == "constant":
            if 0 <= r < h and 0 <= c < w:
                return image[r, c].astype(np.float64)
            return np.full(image.shape[2], fill_value)
        if fill_mode == "nearest":
            r, c = min(max(r, 0), h - 1), min(max(c, 0), w - 1)
        elif fill_mode == "wrap":
            r, c = r % h, c % w
        else:  # reflect: ... 1 0 | 0 1 ...
            r, c = r % (2 * h), c % (2 * w)
            r = r if r < h else 2 * h - 1 - r
            c = c if c < w else 2 * w - 1 - c
        return image[r, c].astype(np.float64)

    out = np.zeros(image.shape)
    for y in range(h):
        for x in range(w):
            sx = cos * (x - cx) - sin * (y - cy) + cx
            sy = sin * (x - cx) + cos * (y - cy) + cy
            if interpolation == "nearest":
                out[y, x] = read(math.floor(sy + 0.5), math.floor(sx + 0.5))
                continue
            r0, c0 = math.floor(sy), math.floor(sx)
            fr, fc = sy - r0, sx - c0
            out[y, x] = (
                (1 - fr) * (1 - fc) * read(r0, c0) + (1 - fr) * fc * read(r0, c0 + 1)
                + fr * (1 - fc) * read(r0 + 1, c0) + fr * fc * read(r0 + 1, c0 + 1)
            )
    return out


def test_random_rotation_quarter_turns_equal_rot90():
    x = _images(n=3, h=5, w=5, c=2)
    for turns, k in ((0.25, 1), (-0.25, -1), (0.5, 2), (1.0, 0)):
        for interpolation in ("bilinear", "nearest"):
            layer = layers.RandomRotation((turns, turns), interpolation=interpolation)
            out = layer(x, training=True).numpy()
            # Keras: a positive factor turns counter-clockwise, which is np.rot90's direction
            np.testing.assert_array_equal(out, np.rot90(x, k=k, axes=(1, 2)), err_msg=str(turns))
    first = layers.RandomRotation((0.25, 0.25), data_format="channels_first")
    out = first(x.transpose(0, 3, 1, 2), training=True).numpy()
    np.testing.assert_array_equal(out, np.rot90(x, k=1, axes=(1, 2)).transpose(0, 3, 1, 2))


def test_random_rotation_factor_zero_and_inference_are_the_identity():
    x = _images()
    ember.manual_seed(4)
    state = ember.get_rng_state()
    np.testing.assert_array_equal(layers.RandomRotation(0.0)(x, training=True).numpy(), x)
    rotate = layers.RandomRotation(0.3)
    np.testing.assert_array_equal(rotate(x).numpy(), x)  # inference (the default)
    np.testing.assert_array_equal(rotate(x, training=False).numpy(), x)
    assert ember.get_rng_state() == state  # no random number drawn
    assert not np.allclose(rotate(x, training=True).numpy(), x)


@pytest.mark.parametrize("fill_mode", ["constant", "nearest", "reflect", "wrap"])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_random_rotation_matches_a_pixel_loop_with_per_image_angles(fill_mode, interpolation):
    x = _images(n=4, h=5, w=7, c=2, seed=3)
    layer = layers.RandomRotation(0.4, fill_mode=fill_mode, fill_value=-3.0,
                                  interpolation=interpolation, seed=7)
    out = layer(x, training=True).numpy()
    angles = np.random.default_rng(7).uniform(-0.4, 0.4, size=4) * 2 * math.pi  # same draws
    assert len(set(np.round(angles, 6))) == 4
    for n in range(4):
        expected = _rotation_reference(x[n], angles[n], fill_mode, -3.0, interpolation)
        np.testing.assert_allclose(out[n], expected, rtol=1e-5, atol=1e-5, err_msg=str(n))


def test_random_rotation_fill_modes_at_a_corner_by_hand():
    # A 45° turn of a 4x4 image: output pixel (0, 0) reads the input at column 1.5, row
    # 1.5 - 1.5·√2 ≈ -0.62: rows -1 (weight ≈ 0.62) and 0 (≈ 0.38), columns 1 and 2 (½ each).
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1) + 1.0
    below = 2.5 - 1.5 * math.sqrt(2)  # weight of row 0
    row0 = (x[0, 0, 1, 0] + x[0, 0, 2, 0]) / 2
    expected = {
        "constant": (1 - below) * -5.0 + below * row0,
        "nearest": row0,  # row -1 is row 0
        "reflect": row0,  # ... 1 0 | 0 1 ...: row -1 is row 0 too
        "wrap": (1 - below) * (x[0, 3, 1, 0] + x[0, 3, 2, 0]) / 2 + below * row0,  # row 3
    }
    for fill_mode, value in expected.items():
        layer = layers.RandomRotation((0.125, 0.125), fill_mode=fill_mode, fill_value=-5.0)
        corner = layer(x, training=True).numpy()[0, 0, 0, 0]
        assert corner == pytest.approx(value, rel=1e-5), fill_mode
    # the centre pixel stays where it is whatever the fill mode
    odd = np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1)
    assert layers.RandomRotation((0.1, 0.1))(odd, training=True).numpy()[0, 1, 1, 0] == 4.0


def test_random_rotation_randomness_per_image_and_reproducible():
    same = np.repeat(_images(n=1, h=6, w=6, c=1), 8, axis=0)  # eight identical images
    ember.manual_seed(11)
    first = layers.RandomRotation(0.2)(same, training=True).numpy()
    assert len({first[i].tobytes() for i in range(8)}) == 8  # each image its own angle
    ember.manual_seed(11)
    again = layers.RandomRotation(0.2)(same, training=True).numpy()
    np.testing.assert_array_equal(first, again)
    ember.manual_seed(12)
    assert not np.array_equal(layers.RandomRotation(0.2)(same, training=True).numpy(), first)
    # a seeded layer owns its generator: same seed, same angles; later calls move on
    a, b = layers.RandomRotation(0.2, seed=3), layers.RandomRotation(0.2, seed=3)
    step_1 = a(same, training=True).numpy()
    np.testing.assert_array_equal(step_1, b(same, training=True).numpy())
    assert not np.array_equal(a(same, training=True).numpy(), step_1)


def test_random_rotation_gradcheck():
    x = _images(n=2, h=4, w=5, c=2, dtype=np.float64)
    for fill_mode in ("constant", "reflect"):
        layer = layers.RandomRotation(0.3, fill_mode=fill_mode, fill_value=0.5, seed=1,
                                      dtype="float64")

        def fn(t, layer=layer):
            layer._rng = np.random.default_rng(1)  # the same angles at every evaluation
            return layer(t, training=True)

        assert ember.gradcheck(fn, x)


def test_affine_transform_op_identity_and_errors():
    x = _images(n=2, h=4, w=3, c=2)
    identity = [1, 0, 0, 0, 1, 0, 0, 0]
    for fill_mode in image_ops.FILL_MODES:
        out = image_ops.affine_transform(x, identity, fill_mode=fill_mode)
        np.testing.assert_array_equal(out.numpy(), x)
    one = image_ops.affine_transform(x[0], [1, 0, 1, 0, 1, 0, 0, 0], fill_mode="constant")
    assert one.shape == (4, 3, 2)  # a single image, shifted left by one column
    np.testing.assert_array_equal(one.numpy()[:, :2], x[0, :, 1:])
    np.testing.assert_array_equal(one.numpy()[:, 2], 0.0)
    with pytest.raises(ValueError, match=r"transform must have shape \(8,\) or \(2, 8\)"):
        image_ops.affine_transform(x, np.ones((3, 8)))
    with pytest.raises(ValueError, match="NaN"):
        image_ops.affine_transform(x, [math.nan] * 8)
    with pytest.raises(ValueError, match="fill_mode"):
        image_ops.affine_transform(x, identity, fill_mode="mirror")


def test_random_rotation_errors_name_the_layer():
    for factor in (1.5, -1.2, (0.1, 2.0), (0.1,), "a", True, (0.1, math.nan)):
        with pytest.raises(ValueError, match='"rot".*factor'):
            layers.RandomRotation(factor, name="rot")
    with pytest.raises(ValueError, match='"rot".*fill_mode'):
        layers.RandomRotation(0.1, fill_mode="mirror", name="rot")
    with pytest.raises(ValueError, match='"rot".*interpolation'):
        layers.RandomRotation(0.1, interpolation="linear", name="rot")
    with pytest.raises(ValueError, match='"rot".*fill_value'):
        layers.RandomRotation(0.1, fill_value="x", name="rot")
    with pytest.raises(ValueError, match='"rot".*seed'):
        layers.RandomRotation(0.1, seed=-1, name="rot")
    # Keras' rules: one number f means (-|f|, |f|), a pair is sorted
    assert layers.RandomRotation(-0.2).factor == (-0.2, 0.2)
    assert layers.RandomRotation((0.3, -0.1)).factor == (-0.1, 0.3)


def test_image_layers_in_a_model_save_and_load(tmp_path):
    ember.manual_seed(0)
    model = Sequential(
        [
            layers.Input(shape=(6, 6, 1)),
            layers.Rescaling(1 / 255.0, offset=-0.5),
            layers.RandomRotation((-0.1, 0.2), fill_mode="nearest", seed=5),
            layers.Resizing(4, 4, interpolation="nearest"),
            layers.Flatten(),
            layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).integers(0, 256, (16, 6, 6, 1)).astype(np.uint8)
    model.fit(x, np.arange(16) % 2, epochs=2, verbose=0)
    model.save(tmp_path / "image.ember")
    loaded = load_model(tmp_path / "image.ember")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    for original, clone in zip(model.layers, loaded.layers):
        assert clone.get_config() == original.get_config()
    assert loaded.layers[1].factor == (-0.1, 0.2)


# --------------------------------------------------------------------------------- cache()
def _counting(fn):
    calls = []

    def wrapped(*args):
        calls.append(1)
        return fn(*args)

    return wrapped, calls


def test_cache_runs_the_map_once_over_two_epochs():
    x = np.arange(10, dtype=np.float32)
    square, calls = _counting(lambda v: v * v)
    ds = ember.data.Dataset.from_tensor_slices(x).map(square).cache().batch(4)
    epoch_1 = [b.copy() for b in ds]
    assert len(calls) == 10
    epoch_2 = list(ds)
    assert len(calls) == 10  # the second pass replays the record
    for a, b in zip(epoch_1, epoch_2):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.concatenate(epoch_2), x * x)
    assert len(ds) == 3


def test_cache_then_shuffle_reshuffles_every_pass():
    x = np.arange(32)
    double, calls = _counting(lambda v: v * 2)
    ds = ember.data.Dataset.from_tensor_slices(x).map(double).cache().shuffle(32, seed=0)
    orders = [list(ds) for _ in range(3)]
    assert len(calls) == 32
    assert orders[0] != orders[1] != orders[2]
    assert all(sorted(order) == list(range(0, 64, 2)) for order in orders)
    # over in-memory arrays (the cache records indices): same behaviour, batched
    fast = ember.data.Dataset.from_tensor_slices((x, -x)).cache().shuffle(32, seed=0).batch(8)
    first, second = [a for a, _ in fast], [a for a, _ in fast]
    assert not np.array_equal(np.concatenate(first), np.concatenate(second))
    assert sorted(np.concatenate(second).tolist()) == list(range(32))


def test_shuffle_before_cache_is_frozen_by_it():
    x = np.arange(20)
    for ds in (
        ember.data.Dataset.from_tensor_slices(x).shuffle(20).cache(),  # indices recorded
        ember.data.Dataset.from_tensor_slices(x).map(lambda v: v).shuffle(20).cache(),  # values
    ):
        first = [int(v) for v in ds]
        assert first != list(range(20))
        assert [int(v) for v in ds] == first


def test_cache_records_only_a_complete_pass():
    square, calls = _counting(lambda v: v * v)
    ds = ember.data.Dataset.from_tensor_slices(np.arange(6)).map(square).cache()
    iterator = iter(ds)
    next(iterator), next(iterator)  # a pass abandoned after two elements
    del iterator
    assert [int(v) for v in ds] == [0, 1, 4, 9, 16, 25]
    assert len(calls) == 2 + 6  # the abandoned pass recorded nothing
    assert [int(v) for v in ds] == [0, 1, 4, 9, 16, 25]
    assert len(calls) == 8


def test_cache_of_a_map_style_dataset_reads_each_sample_once():
    reads = []

    class Slow(ember.data.Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            reads.append(i)
            return np.float32(i), i % 2

    ds = Slow().cache().shuffle(5).batch(2)
    assert len(ds) == 3
    for _ in range(3):
        xb = np.concatenate([xb for xb, _ in ds])
        assert sorted(xb.tolist()) == [0, 1, 2, 3, 4]
    assert sorted(reads) == [0, 1, 2, 3, 4]


def test_cache_returns_copies_and_a_new_dataset():
    base = ember.data.Dataset.from_tensor_slices(np.ones((4, 2), np.float32)).batch(2)
    ds = base.cache()
    assert ds is not base and len(ds) == len(base) == 2
    for batch in ds:
        batch *= 0  # the caller changes a batch in place...
    for batch in ds:
        batch *= 0
    np.testing.assert_array_equal(np.concatenate(list(ds)), np.ones((4, 2)))  # ...not the cache
    assert ember.data.Dataset.from_tensor_slices(np.arange(3)).repeat().cache().cardinality() == -1
    with pytest.raises(NotImplementedError, match="memory only"):
        base.cache("/tmp/cache")
    with pytest.raises(TypeError, match="filename"):
        base.cache(3)
