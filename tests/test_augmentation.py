"""SpatialDropout2D and the augmentation layers: training-only behaviour, exact values,
per-sample randomness, seeding, gradients and save/load."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.layers import Dense, Flatten, Input, RandomFlip, RandomTranslation, SpatialDropout2D
from ember.models import Sequential, load_model


def _images(n=8, h=5, w=6, c=2, seed=0):
    return np.random.default_rng(seed).standard_normal((n, h, w, c)).astype(np.float32)


@pytest.mark.parametrize(
    "layer",
    [
        lambda: SpatialDropout2D(0.5),
        lambda: RandomFlip(),
        lambda: RandomTranslation(0.3, 0.3),
    ],
)
def test_identity_in_inference_and_no_random_numbers_drawn(layer):
    x = _images()
    ember.manual_seed(3)
    state = ember.get_rng_state()
    out = layer()(x)
    np.testing.assert_array_equal(out.numpy(), x)
    assert ember.get_rng_state() == state


def test_spatial_dropout_drops_whole_maps_and_keeps_the_mean():
    ember.manual_seed(0)
    x = np.ones((400, 4, 4, 8), np.float32)
    out = SpatialDropout2D(0.25)(x, training=True).numpy()
    per_map = out.reshape(400, 16, 8)
    assert np.all(per_map.min(axis=1) == per_map.max(axis=1))  # each map all 0 or all 1/(1-p)
    assert set(np.unique(out)) == {0.0, np.float32(1 / 0.75)}
    assert abs(out.mean() - 1.0) < 0.03
    first = SpatialDropout2D(0.5, data_format="channels_first")(
        np.ones((50, 3, 4, 4), np.float32), training=True
    ).numpy()
    assert np.all(first.reshape(50, 3, 16).std(axis=2) == 0)
    with pytest.raises(ValueError, match=r"NHWC.*ndim=3|ndim=4"):
        SpatialDropout2D(0.5)(np.ones((2, 4, 4)), training=True)
    with pytest.raises(ValueError, match="rate"):
        SpatialDropout2D(1.0)


def test_random_flip_mirrors_some_samples_exactly():
    ember.manual_seed(1)
    x = _images(n=64)
    out = RandomFlip("horizontal")(x, training=True).numpy()
    flipped = np.all(out == x[:, :, ::-1], axis=(1, 2, 3))
    kept = np.all(out == x, axis=(1, 2, 3))
    assert np.all(flipped | kept) and 16 < flipped.sum() < 48
    out = RandomFlip("vertical")(x, training=True).numpy()
    assert np.all(np.all(out == x[:, ::-1], axis=(1, 2, 3)) | np.all(out == x, axis=(1, 2, 3)))
    both = RandomFlip(seed=5)(x, training=True).numpy()
    again = RandomFlip(seed=5)(x, training=True).numpy()
    np.testing.assert_array_equal(both, again)  # same seed, same flips
    with pytest.raises(ValueError, match="mode"):
        RandomFlip("diagonal")


def _shift_reference(image, dy, dx, fill_mode, fill_value=0.0):
    h, w, _ = image.shape
    out = np.empty_like(image)
    for i in range(h):
        for j in range(w):
            si, sj = i - dy, j - dx
            if fill_mode == "constant" and not (0 <= si < h and 0 <= sj < w):
                out[i, j] = fill_value
                continue
            if fill_mode in ("constant", "nearest"):
                si, sj = min(max(si, 0), h - 1), min(max(sj, 0), w - 1)
            elif fill_mode == "wrap":
                si, sj = si % h, sj % w
            else:  # reflect: ... 1 0 | 0 1 ...
                si, sj = (si % (2 * h)), (sj % (2 * w))
                si = si if si < h else 2 * h - 1 - si
                sj = sj if sj < w else 2 * w - 1 - sj
            out[i, j] = image[si, sj]
    return out


@pytest.mark.parametrize("fill_mode", ["constant", "nearest", "reflect", "wrap"])
def test_random_translation_matches_a_pixel_loop(fill_mode):
    x = _images(n=6, h=5, w=7)
    layer = RandomTranslation(0.6, 0.6, fill_mode=fill_mode, fill_value=-9.0, seed=2)
    out = layer(x, training=True).numpy()
    # the same draws, replayed from the same seed
    rng = np.random.default_rng(2)
    dy = np.rint(rng.uniform(-0.6, 0.6, size=6) * 5).astype(int)
    dx = np.rint(rng.uniform(-0.6, 0.6, size=6) * 7).astype(int)
    assert len(set(zip(dy, dx))) > 1
    for n in range(6):
        expected = _shift_reference(x[n], dy[n], dx[n], fill_mode, -9.0)
        np.testing.assert_array_equal(out[n], expected)


def test_augmentation_gradients_and_channels_first():
    x = ember.tensor(_images(n=3, h=4, w=5).astype(np.float64), requires_grad=True)
    layer = RandomTranslation(0.5, 0.5, fill_mode="constant", seed=1, dtype="float64")
    ember.manual_seed(0)

    def fn(t):
        layer._rng = np.random.default_rng(1)  # the same shifts at every evaluation
        return layer(t, training=True)

    assert ember.gradcheck(fn, x)
    chw = _images(n=4).transpose(0, 3, 1, 2)
    out = RandomFlip("horizontal", seed=3, data_format="channels_first")(chw, training=True)
    ref = RandomFlip("horizontal", seed=3)(chw.transpose(0, 2, 3, 1), training=True)
    np.testing.assert_array_equal(out.numpy(), ref.numpy().transpose(0, 3, 1, 2))


def test_bad_arguments_name_the_layer():
    with pytest.raises(ValueError, match='"shift".*height_factor'):
        RandomTranslation(1.5, 0.1, name="shift")
    with pytest.raises(ValueError, match="fill_mode"):
        RandomTranslation(0.1, 0.1, fill_mode="mirror")
    with pytest.raises(ValueError, match="data_format"):
        RandomFlip(data_format="nhwc")


def test_model_with_augmentation_trains_and_round_trips(tmp_path):
    ember.manual_seed(0)
    model = Sequential(
        [
            Input(shape=(6, 6, 1)),
            RandomFlip("horizontal"),
            RandomTranslation(0.2, (-0.1, 0.3), fill_mode="nearest"),
            SpatialDropout2D(0.1),
            Flatten(),
            Dense(2, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    x = _images(n=16, h=6, w=6, c=1)
    model.fit(x, np.arange(16) % 2, epochs=2, verbose=0)
    model.save(tmp_path / "aug.ember")
    loaded = load_model(tmp_path / "aug.ember")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.layers[1].height_factor == (-0.2, 0.2)
    assert loaded.layers[1].width_factor == (-0.1, 0.3)
