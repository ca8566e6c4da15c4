"""Keras' generative guides on Ember, as a Keras user writes them: the variational autoencoder
(a ``Sampling`` layer, a ``Model`` subclass whose ``train_step`` records the loss on a
``GradientTape``, ``Mean`` trackers returned by the ``metrics`` property) and the DCGAN that
overrides ``train_step`` (its own ``compile(d_optimizer, g_optimizer, loss_fn)``, noisy labels,
and a callback saving generated images with ``utils.array_to_img``).

The code follows the guides' structure with only the imports changed (``keras`` -> ``ember``,
``tf.GradientTape`` -> ``ember.GradientTape``, ``tf.random.uniform`` -> ``ember.random.uniform``)
and sizes shrunk to 8x8 digits so each runs in about a second; the tests then check what the
guides rely on: the losses fall, the trackers report epoch means, the generator's weights move
only in its own step, and the images are written.
"""

from __future__ import annotations

import numpy as np
import pytest

import ember as keras
from ember import layers, ops
from ember.datasets import digits


def _images(n: int = 256) -> np.ndarray:
    (x, _), _ = digits.load_data()
    return (x[:n, :, :, None] / 16.0).astype("float32")


# ----------------------------------------------------------------------------- the VAE guide
class Sampling(layers.Layer):
    """Uses (z_mean, z_log_var) to sample z, the vector encoding a digit."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(1337)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        batch = ops.shape(z_mean)[0]
        dim = ops.shape(z_mean)[1]
        epsilon = keras.random.normal(shape=(batch, dim), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


def _vae_parts(latent_dim: int = 2):
    encoder_inputs = keras.Input(shape=(8, 8, 1))
    x = layers.Conv2D(8, 3, activation="relu", strides=2, padding="same")(encoder_inputs)
    x = layers.Conv2D(16, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    z = Sampling()([z_mean, z_log_var])
    encoder = keras.Model(encoder_inputs, [z_mean, z_log_var, z], name="encoder")

    latent_inputs = keras.Input(shape=(latent_dim,))
    x = layers.Dense(2 * 2 * 16, activation="relu")(latent_inputs)
    x = layers.Reshape((2, 2, 16))(x)
    x = layers.Conv2DTranspose(16, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Conv2DTranspose(8, 3, activation="relu", strides=2, padding="same")(x)
    decoder_outputs = layers.Conv2DTranspose(1, 3, activation="sigmoid", padding="same")(x)
    decoder = keras.Model(latent_inputs, decoder_outputs, name="decoder")
    return encoder, decoder


class VAE(keras.Model):
    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def train_step(self, data):
        with keras.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            reconstruction_loss = ops.mean(
                ops.sum(keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2))
            )
            kl_loss = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
            kl_loss = ops.mean(ops.sum(kl_loss, axis=1))
            total_loss = reconstruction_loss + kl_loss
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.total_loss_tracker.update_state(total_loss)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        return {
            "loss": self.total_loss_tracker.result(),
            "reconstruction_loss": self.reconstruction_loss_tracker.result(),
            "kl_loss": self.kl_loss_tracker.result(),
        }


def test_vae_guide_trains_and_reports_its_three_losses():
    keras.manual_seed(0)
    encoder, decoder = _vae_parts()
    vae = VAE(encoder, decoder)
    vae.compile(optimizer=keras.optimizers.Adam(learning_rate=3e-3))
    history = vae.fit(_images(), epochs=6, batch_size=32, verbose=0)
    logs = history.history
    assert set(logs) == {"loss", "reconstruction_loss", "kl_loss"}
    # the epoch means: loss = reconstruction + KL (up to float32 rounding of the means)
    np.testing.assert_allclose(
        logs["loss"][-1], logs["reconstruction_loss"][-1] + logs["kl_loss"][-1], rtol=1e-5
    )
    # measured: loss 43.7 -> 32.9 (sum of 64 pixel BCEs), KL 0.05 -> 2.9 as the code is used
    assert logs["loss"][-1] < 0.85 * logs["loss"][0]
    assert logs["kl_loss"][-1] > logs["kl_loss"][0]
    z_mean, z_log_var, z = encoder.predict(_images(8), verbose=0)
    assert z_mean.shape == z_log_var.shape == z.shape == (8, 2)
    assert decoder.predict(z, verbose=0).shape == (8, 8, 8, 1)


# ----------------------------------------------------------------------------- the DCGAN guide
LATENT_DIM = 16


def _gan_parts():
    discriminator = keras.Sequential(
        [
            keras.Input(shape=(8, 8, 1)),
            layers.Conv2D(16, kernel_size=3, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(32, kernel_size=3, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Flatten(),
            layers.Dropout(0.2),
            layers.Dense(1, activation="sigmoid"),
        ],
        name="discriminator",
    )
    generator = keras.Sequential(
        [
            keras.Input(shape=(LATENT_DIM,)),
            layers.Dense(2 * 2 * 32),
            layers.Reshape((2, 2, 32)),
            layers.Conv2DTranspose(32, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2DTranspose(16, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(1, kernel_size=3, padding="same", activation="sigmoid"),
        ],
        name="generator",
    )
    return discriminator, generator


class GAN(keras.Model):
    def __init__(self, discriminator, generator, latent_dim):
        super().__init__()
        self.discriminator = discriminator
        self.generator = generator
        self.latent_dim = latent_dim
        self.seed_generator = keras.random.SeedGenerator(1337)

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn
        self.d_loss_metric = keras.metrics.Mean(name="d_loss")
        self.g_loss_metric = keras.metrics.Mean(name="g_loss")

    @property
    def metrics(self):
        return [self.d_loss_metric, self.g_loss_metric]

    def train_step(self, real_images):
        batch_size = ops.shape(real_images)[0]
        random_latent_vectors = keras.random.normal(
            shape=(batch_size, self.latent_dim), seed=self.seed_generator
        )
        generated_images = self.generator(random_latent_vectors)
        combined_images = ops.concatenate([generated_images, real_images], axis=0)
        labels = ops.concatenate(
            [ops.ones((batch_size, 1)), ops.zeros((batch_size, 1))], axis=0
        )
        labels += 0.05 * keras.random.uniform(ops.shape(labels))  # the guide's label noise

        with keras.GradientTape() as tape:
            predictions = self.discriminator(combined_images)
            d_loss = self.loss_fn(labels, predictions)
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))

        random_latent_vectors = keras.random.normal(
            shape=(batch_size, self.latent_dim), seed=self.seed_generator
        )
        misleading_labels = ops.zeros((batch_size, 1))
        with keras.GradientTape() as tape:
            predictions = self.discriminator(self.generator(random_latent_vectors))
            g_loss = self.loss_fn(misleading_labels, predictions)
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))

        self.d_loss_metric.update_state(d_loss)
        self.g_loss_metric.update_state(g_loss)
        return {"d_loss": self.d_loss_metric.result(), "g_loss": self.g_loss_metric.result()}


class GANMonitor(keras.callbacks.Callback):
    def __init__(self, folder, num_img=3, latent_dim=LATENT_DIM):
        # the guide does not call super().__init__(): Ember's Callback must not need it
        self.folder = folder
        self.num_img = num_img
        self.latent_dim = latent_dim
        self.seed_generator = keras.random.SeedGenerator(42)

    def on_epoch_end(self, epoch, logs=None):
        random_latent_vectors = keras.random.normal(
            shape=(self.num_img, self.latent_dim), seed=self.seed_generator
        )
        generated_images = self.model.generator(random_latent_vectors)
        generated_images *= 255
        generated_images.numpy()
        for i in range(self.num_img):
            img = keras.utils.array_to_img(generated_images[i])
            img.save(self.folder / f"generated_img_{epoch:03d}_{i}.png")


def test_dcgan_guide_overrides_train_step_and_saves_images(tmp_path):
    pytest.importorskip("PIL")
    keras.manual_seed(0)
    discriminator, generator = _gan_parts()
    gan = GAN(discriminator=discriminator, generator=generator, latent_dim=LATENT_DIM)
    gan.compile(
        d_optimizer=keras.optimizers.Adam(learning_rate=0.0005),
        g_optimizer=keras.optimizers.Adam(learning_rate=0.0005),
        loss_fn=keras.losses.BinaryCrossentropy(),
    )
    history = gan.fit(
        _images(), epochs=2, batch_size=32, verbose=0, callbacks=[GANMonitor(tmp_path)]
    )
    assert set(history.history) == {"d_loss", "g_loss"}
    for values in history.history.values():
        assert len(values) == 2 and all(np.isfinite(values))
    # at the start the discriminator cannot tell: both losses near ln 2 = 0.69
    assert 0.3 < history.history["d_loss"][0] < 1.2
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert saved == [f"generated_img_{e:03d}_{i}.png" for e in range(2) for i in range(3)]
    from PIL import Image

    with Image.open(tmp_path / saved[0]) as img:
        assert img.size == (8, 8) and img.mode == "L"


def test_array_to_img_scales_like_keras():
    pytest.importorskip("PIL")
    array = np.array([[[0.0], [2.0]], [[4.0], [8.0]]], dtype="float32")
    img = keras.utils.array_to_img(array)  # scale=True: min..max -> 0..255
    assert img.mode == "L" and img.size == (2, 2)
    assert np.asarray(img).tolist() == [[0, 63], [127, 255]]
    rgb = keras.utils.array_to_img(np.full((3, 2, 3), 255.0), scale=False)
    assert rgb.mode == "RGB" and np.asarray(rgb).max() == 255
    with pytest.raises(ValueError, match="array_to_img: expected an image of shape"):
        keras.utils.array_to_img(np.zeros((2, 2, 2, 1)))
    np.testing.assert_array_equal(keras.utils.img_to_array(img)[..., 0], np.asarray(img))
