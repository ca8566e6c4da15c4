"""A variational autoencoder: a latent code you can sample from.

A plain autoencoder maps each image to one code, and nothing says what a point between the
codes decodes to. A VAE (Kingma & Welling 2014) makes the code a distribution: the encoder gives,
for an image x, the mean ``mu`` and the log-variance ``logvar`` of a Gaussian
``q(z | x) = N(mu, diag(exp(logvar)))``; a code is drawn from it and decoded into the
probability of each pixel being ink (a Bernoulli per pixel, so the decoder outputs logits).
Training maximizes the evidence lower bound (ELBO) of log p(x), i.e. minimizes

    -ELBO = E_q[-log p(x | z)]  +  KL(q(z | x) || N(0, I))
          = reconstruction      +  KL term,

both in nats per image. The reconstruction term (a binary cross-entropy summed over the pixels)
asks the code to describe the image; the KL term, in closed form
``0.5 * sum(mu² + exp(logvar) - 1 - logvar)``, pulls every q(z | x) towards the prior N(0, I),
so the codes of all images fill the prior without holes and a z drawn from N(0, I) decodes into
a plausible image.

To backpropagate through the draw, the reparameterization trick writes it as
``z = mu + exp(logvar / 2) * eps`` with ``eps ~ N(0, I)`` drawn apart (here inside the
``Sampling`` layer, from Ember's generator): z is then a differentiable function of mu and
logvar. The same layer adds the KL term with ``add_loss``; the reconstruction term is the
compiled loss, so the whole model trains with ``compile``/``fit`` (and ``evaluate`` reports
-ELBO). The layer draws in inference mode too, as the ELBO is an expectation over q.

The script trains a VAE per latent size (2 and 16 in the full run) and reports on the test set
the reconstruction and KL terms, -ELBO against a baseline without a code (every pixel an
independent Bernoulli with the training set's mean ink) and against the floor no Bernoulli
decoder can go below on grey pixels (their own entropy), and the number of active latent units
(those whose mean code varies over the test images: Cov(mu_u) > 0.01, Burda et al. 2016). With
``--plots DIR`` it saves, per model, a grid of images decoded from z ~ N(0, I), and for the 2-D
latent the test codes coloured by label and the images decoded on a grid over [-2, 2]².

What it finds (seed 0, Fashion-MNIST, 15 epochs): both VAEs beat the baseline without a code
(385 nats per image) by far; the 2-D code costs 6 nats of KL and leaves 259 of
reconstruction, the 16-D code spends 16 nats of KL to cut the reconstruction to 228, a better
ELBO (-244 against -265), with 13 of its 16 units active: the other 3 stay at the prior, where
the KL term pushes the units the decoder does not use.

Run from the repository root (``--quick`` is the short variant the tests run, on the bundled
8x8 digits; the full run uses Fashion-MNIST, found in ``--data-dir``, Ember's cache or
``/usr/share/datasets/fashion-mnist``)::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python examples/vae.py --plots vae_plots
    OPENBLAS_NUM_THREADS=1 .venv/bin/python examples/vae.py --quick

The measured numbers are in ``examples/README.md``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# The same flattened [0, 1] images as the pre-training example (examples/ is on the path when
# a script runs, and in the tests)
from layerwise_pretraining import PIXEL_MAX, load  # noqa: F401

import ember
from ember import layers, ops

TensorLike = ember.Tensor | np.ndarray
ACTIVE = 0.01  # a latent unit is active when Cov over the data of its mean code exceeds this

FULL = {"dataset": "fashion_mnist", "latent_dims": (2, 16), "hidden": 256, "epochs": 15,
        "batch_size": 100, "learning_rate": 1e-3}  # fmt: skip
QUICK = {"dataset": "digits", "latent_dims": (2, 8), "hidden": 64, "epochs": 20,
         "batch_size": 32, "learning_rate": 3e-3}  # fmt: skip


def kl_to_standard_normal(mu: TensorLike, logvar: TensorLike) -> ember.Tensor:
    """Per-sample ``KL(N(mu, exp(logvar)) || N(0, I))`` in nats: ``0.5 * sum(mu² + exp(logvar)
    - 1 - logvar)`` over the last axis, with ``exp(logvar) - 1`` as ``expm1(logvar)``: for a q
    close to the prior (logvar near 0) the naive form loses most digits to the cancellation
    against 1 (5 % off in float32 at logvar = 1e-3, against 0.03 % this way).

    Example:
        >>> kl_to_standard_normal(ember.tensor([[0.0, 0.0], [1.0, 0.0]]),
        ...                       ember.tensor([[0.0, 0.0], [0.0, np.log(2.0)]]))
        tensor([0.       , 0.6534264])
    """
    mu, logvar = ops.as_tensor(mu), ops.as_tensor(logvar)
    return 0.5 * ops.sum(mu * mu + ops.expm1(logvar) - logvar, axis=-1)


def reparameterize(mu: TensorLike, logvar: TensorLike,
                   eps: TensorLike | None = None) -> ember.Tensor:
    """``z = mu + exp(logvar / 2) * eps``: a draw from ``N(mu, exp(logvar))`` that is a
    differentiable function of ``mu`` and ``logvar``. ``eps`` defaults to a standard normal
    draw from Ember's generator (reseeded by ``ember.manual_seed``).

    Example:
        >>> reparameterize(ember.tensor([1.0, -1.0]), ember.tensor([0.0, np.log(4.0)]),
        ...                eps=np.array([0.5, 0.5], np.float32))
        tensor([1.5, 0. ])
    """
    mu, logvar = ops.as_tensor(mu), ops.as_tensor(logvar)
    if eps is None:
        eps = ember.random.normal(mu.shape, dtype=mu.dtype)
    return mu + ops.exp(0.5 * logvar) * eps


class Sampling(layers.Layer):
    """``[mu, logvar] → z``: draws a code with the reparameterization trick and adds the KL
    term (the batch mean of :func:`kl_to_standard_normal`) to the model's loss with
    ``add_loss``. It draws in inference mode too: the ELBO is an expectation over q(z | x).

    Example:
        >>> layer = Sampling()
        >>> z = layer([np.zeros((3, 2), np.float32), np.zeros((3, 2), np.float32)])
        >>> z.shape, layer.losses
        ((3, 2), [tensor(0.)])
    """

    def call(self, inputs: Sequence[ember.Tensor]) -> ember.Tensor:
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(
                f"{self.name}: expects the list [mu, logvar], got {type(inputs).__name__}"
                + (f" of {len(inputs)}" if isinstance(inputs, (list, tuple)) else "")
            )
        mu, logvar = inputs
        if mu.shape != logvar.shape:
            raise ValueError(
                f"{self.name}: mu and logvar must have the same shape, got {mu.shape} and "
                f"{logvar.shape}"
            )
        self.add_loss(ops.mean(kl_to_standard_normal(mu, logvar)))
        return reparameterize(mu, logvar)


class BernoulliReconstruction(ember.losses.Loss):
    """The reconstruction term ``-log p(x | z)`` of a Bernoulli decoder given as logits: the
    binary cross-entropy summed (not averaged) over the pixels, so that it is on the same
    per-image scale as the KL term. Averaged over the batch, as every Ember loss.

    Example:
        >>> loss = BernoulliReconstruction()
        >>> loss(np.array([[1.0, 0.0]]), ember.tensor([[0.0, 0.0]]))  # 2 ln 2
        tensor(1.3862944)
    """

    name = "reconstruction"

    def per_sample(self, y_true: np.ndarray, y_pred: ember.Tensor) -> ember.Tensor:
        terms = ops.sigmoid_binary_cross_entropy(y_pred, y_true, name=self.name)
        return ops.sum(terms, axis=-1)


def build_vae(input_dim: int, hidden: int, latent_dim: int, learning_rate: float = 1e-3,
              seed: int = 0) -> tuple[ember.Model, ember.Model, ember.Sequential]:
    """``(vae, encoder, decoder)``, the VAE compiled (Adam, :class:`BernoulliReconstruction`,
    which is also reported as the metric ``reconstruction``, so ``loss - reconstruction`` is
    the KL term). Encoder: ``Dense(hidden, relu)`` then two ``Dense(latent_dim)`` heads, mu and
    logvar; decoder: ``Dense(hidden, relu)`` then ``Dense(input_dim)`` logits.

    Example:
        >>> vae, encoder, decoder = build_vae(64, 16, 2)
        >>> [t.shape for t in encoder(np.zeros((5, 64), np.float32))], vae.output_shape
        ([(5, 2), (5, 2)], (None, 64))
    """
    ember.manual_seed(seed)
    x = layers.Input(shape=(input_dim,))
    h = layers.Dense(hidden, activation="relu")(x)
    mu = layers.Dense(latent_dim, name="z_mean")(h)
    logvar = layers.Dense(latent_dim, name="z_log_var")(h)
    encoder = ember.Model(x, [mu, logvar], name="encoder")
    decoder = ember.Sequential([
        layers.Input(shape=(latent_dim,)),
        layers.Dense(hidden, activation="relu"),
        layers.Dense(input_dim),
    ], name="decoder")
    images = layers.Input(shape=(input_dim,))
    z = Sampling(name="sampling")(encoder(images))
    vae = ember.Model(images, decoder(z), name="vae")
    reconstruction = BernoulliReconstruction()
    vae.compile(optimizer=ember.optimizers.Adam(learning_rate), loss=reconstruction,
                metrics=[ember.metrics.MeanMetricWrapper(reconstruction, name="reconstruction")])
    return vae, encoder, decoder


def decode(decoder: ember.Model, z: np.ndarray) -> np.ndarray:
    """The decoder's pixel probabilities (the Bernoulli means) for the codes ``z``.

    Example:
        >>> _, _, decoder = build_vae(64, 16, 2)
        >>> p = decode(decoder, np.zeros((3, 2), np.float32))
        >>> p.shape, bool(((p > 0) & (p < 1)).all())
        ((3, 64), True)
    """
    with ember.no_grad():
        return ops.sigmoid(decoder(z, training=False)).numpy()


def elbo_terms(encoder: ember.Model, decoder: ember.Model, x: np.ndarray,
               samples: int = 1) -> dict:
    """The two terms of -ELBO on ``x``, in nats per image: the KL term in closed form and the
    reconstruction term estimated with ``samples`` draws of z per image (Ember's generator),
    plus ``elbo`` and the per-unit variance of the mean code ``mu`` over ``x``.

    Example:
        >>> _, encoder, decoder = build_vae(64, 16, 2)
        >>> terms = elbo_terms(encoder, decoder, load("digits")[2][:50], samples=3)
        >>> terms["elbo"] == -(terms["reconstruction"] + terms["kl"]), len(terms["code_variance"])
        (True, 2)
    """
    with ember.no_grad():
        mu, logvar = encoder(x, training=False)
        kl = float(kl_to_standard_normal(mu, logvar).numpy().mean())
        loss = BernoulliReconstruction()
        reconstruction = np.mean([
            float(loss(x, decoder(reparameterize(mu, logvar), training=False)).numpy())
            for _ in range(samples)
        ])  # fmt: skip
    return {"reconstruction": float(reconstruction), "kl": kl,
            "elbo": -(float(reconstruction) + kl),
            "code_variance": mu.numpy().var(axis=0).tolist()}  # fmt: skip


def mean_image_nll(x_train: np.ndarray, x_test: np.ndarray) -> float:
    """The baseline without a code: every pixel an independent Bernoulli whose probability is
    that pixel's mean over ``x_train`` (clipped to [1e-4, 1 - 1e-4] for pixels never inked);
    its negative log-likelihood of ``x_test`` in nats per image.

    Example:
        >>> round(mean_image_nll(np.array([[0.0, 1.0], [1.0, 1.0]]), np.array([[1.0, 1.0]])), 4)
        0.6932
    """
    p = np.clip(x_train.mean(axis=0), 1e-4, 1 - 1e-4)
    nll = -(x_test * np.log(p) + (1 - x_test) * np.log1p(-p)).sum(axis=1)
    return float(nll.mean())


def target_entropy(x: np.ndarray) -> float:
    """The lowest reconstruction term any Bernoulli decoder can reach on grey targets: the
    cross-entropy of a pixel value x against a probability p is smallest at p = x, where it is
    the binary entropy of x. Summed over the pixels, averaged over the images, in nats (0 for
    black-and-white images).

    Example:
        >>> round(target_entropy(np.array([[0.5, 1.0], [0.0, 0.0]])), 4)  # (ln 2) / 2
        0.3466
    """
    p = x.astype(np.float64)
    q = 1.0 - p
    # x log x -> 0 at x = 0: the log of a zero entry is replaced by 0 (where= leaves it)
    entropy = -(p * np.log(p, out=np.zeros_like(p), where=p > 0)
                + q * np.log(q, out=np.zeros_like(q), where=q > 0))  # fmt: skip
    return float(entropy.sum(axis=1).mean())


def active_units(code_variance: Sequence[float], threshold: float = ACTIVE) -> int:
    """How many latent units are active: their mean code varies over the data (variance above
    ``threshold``); the others have collapsed onto the prior and carry no information.

    Example:
        >>> active_units([0.9, 0.02, 0.001, 0.0])
        2
    """
    return int(np.sum(np.asarray(code_variance) > threshold))


def train_one(data: tuple, latent_dim: int, hidden: int, epochs: int, batch_size: int,
              learning_rate: float, seed: int) -> tuple[dict, ember.Model, ember.Model]:
    """Train one VAE; its test numbers, its encoder and its decoder."""
    x_train, _, x_test, _ = data
    vae, encoder, decoder = build_vae(x_train.shape[1], hidden, latent_dim, learning_rate,
                                      seed)  # fmt: skip
    start = time.perf_counter()
    history = vae.fit(x_train, x_train, epochs=epochs, batch_size=batch_size, verbose=0).history
    seconds = time.perf_counter() - start
    ember.manual_seed(seed + 1)  # the draws of z on the test set
    terms = elbo_terms(encoder, decoder, x_test, samples=10)
    test_loss, test_reconstruction = vae.evaluate(x_test, x_test, batch_size=1000, verbose=0)
    result = {
        **terms,
        "active_units": active_units(terms["code_variance"]),
        "evaluate_loss": float(test_loss),  # -ELBO from one draw per image, by evaluate()
        "evaluate_reconstruction": float(test_reconstruction),
        "train_loss_curve": [float(v) for v in history["loss"]],
        "train_kl_curve": [float(a - b) for a, b in zip(history["loss"],
                                                          history["reconstruction"])],
        "seconds": seconds,
    }
    return result, encoder, decoder


def save_plots(directory: Path, dataset: str, side: int, latent_dim: int, encoder: ember.Model,
               decoder: ember.Model, x_test: np.ndarray, y_test: np.ndarray,
               seed: int) -> list[Path]:
    """Samples decoded from the prior; for a 2-D latent also the codes of the test images and
    the images decoded on a grid of codes. Returns the paths written."""
    from ember import viz

    rng = np.random.default_rng(seed)
    prior = decode(decoder, rng.standard_normal((100, latent_dim), dtype=np.float32))
    paths = [directory / f"vae_prior_samples_z{latent_dim}.png"]
    viz.image_grid(prior.reshape(-1, side, side), ncols=10, path=paths[-1],
                   title=f"{dataset}: decoded from z ~ N(0, I), latent {latent_dim}")
    if latent_dim == 2:
        with ember.no_grad():
            mu = encoder(x_test, training=False)[0].numpy()
        paths.append(directory / "vae_latent_scatter.png")
        viz.scatter_2d(mu, labels=y_test, path=paths[-1],
                       title=f"{dataset}: mean codes of the test images, by label")
        ticks = np.linspace(-2.0, 2.0, 15, dtype=np.float32)
        # rows from top (z2 = 2) to bottom, columns from left (z1 = -2)
        grid = np.stack(np.meshgrid(ticks, ticks[::-1]), axis=-1).reshape(-1, 2)
        paths.append(directory / "vae_latent_manifold.png")
        viz.image_grid(decode(decoder, grid).reshape(-1, side, side), ncols=15, path=paths[-1],
                       title=f"{dataset}: decoded on a 15 x 15 grid over [-2, 2]²")
    return paths


def run(dataset: str, latent_dims: Sequence[int], hidden: int, epochs: int, batch_size: int,
        learning_rate: float, seed: int = 0, data_dir: str | None = None,
        plots: str | None = None) -> dict:
    """A VAE per latent size. Returns ``{"dataset", "baseline_nll", "entropy_floor",
    "models": {latent_dim:
    {"reconstruction", "kl", "elbo", "active_units", "evaluate_loss", ...}}, "plots": [...]}``.
    """
    data = load(dataset, data_dir)
    x_train, _, x_test, y_test = data
    result = {"dataset": dataset, "baseline_nll": mean_image_nll(x_train, x_test),
              "entropy_floor": target_entropy(x_test), "models": {}, "plots": []}  # fmt: skip
    side = int(round(np.sqrt(x_train.shape[1])))
    for latent_dim in latent_dims:
        numbers, encoder, decoder = train_one(data, latent_dim, hidden, epochs, batch_size,
                                              learning_rate, seed)  # fmt: skip
        result["models"][latent_dim] = numbers
        if plots:
            result["plots"] += save_plots(Path(plots), dataset, side, latent_dim, encoder,
                                          decoder, x_test, y_test, seed)  # fmt: skip
    return result


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the short variant (CI), digits")
    parser.add_argument("--dataset", choices=tuple(PIXEL_MAX), default=None,
                        help="default fashion_mnist (digits with --quick)")  # fmt: skip
    parser.add_argument("--data-dir", default=None, help="folder with the Fashion-MNIST files")
    parser.add_argument("--latent-dims", type=int, nargs="+", default=None,
                        help="latent sizes, one VAE each (default 2 16; 2 8 with --quick)")
    for name in ("hidden", "epochs", "batch_size", "learning_rate"):
        kind = float if name == "learning_rate" else int
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None,
                            help=f"default {FULL[name]} ({QUICK[name]} with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plots", default=None, metavar="DIR",
                        help="save the sample grids and the latent scatter as PNG into DIR")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict:
    """Parse the command line, train the VAEs, print the finding and return the numbers."""
    args = parse_args(argv)
    settings = dict(QUICK if args.quick else FULL)
    settings.update({k: v for k, v in vars(args).items() if k in settings and v is not None})
    r = run(**settings, seed=args.seed, data_dir=args.data_dir, plots=args.plots)
    print(f"  test set, nats per image: {'latent':>6} {'reconstruction':>15} {'KL':>8} "
          f"{'-ELBO':>9} {'evaluate()':>11} {'active units':>13}")  # fmt: skip
    for latent_dim, m in r["models"].items():
        print(f"  {'':<25} {latent_dim:>6} {m['reconstruction']:>15.2f} {m['kl']:>8.2f} "
              f"{-m['elbo']:>9.2f} {m['evaluate_loss']:>11.2f} "
              f"{m['active_units']:>7d} of {latent_dim}")  # fmt: skip
    models = "; ".join(
        f"latent {d}: -ELBO {-m['elbo']:.2f} = reconstruction {m['reconstruction']:.2f} + KL "
        f"{m['kl']:.2f}, {m['active_units']} of {d} units active"
        for d, m in r["models"].items()
    )
    print(
        f"VAE on {r['dataset']} ({settings['epochs']} epochs), test set in nats per image: "
        f"{models}; the mean-image baseline without a code scores {r['baseline_nll']:.2f}, "
        f"and no Bernoulli decoder can reconstruct these grey images below their own entropy, "
        f"{r['entropy_floor']:.2f}."
    )
    return r


if __name__ == "__main__":
    main()
