"""The generative adversarial networks in ``examples/``: the ring of eight Gaussians
(``gan_ring.py``) and the convolutional DCGAN on images (``dcgan.py``).

Each CI test runs an example's ``--quick`` variant through its ``main(argv)`` (seeded, one BLAS
thread as the whole test session) and asserts the finding on the numbers it returns, with a
margin below what it measured (recorded in each test), and that the printed sentence reports
them. The full runs, whose numbers are in ``examples/README.md``, are marked slow. The pieces
the findings rest on are checked directly: the mode-coverage rule, the two generator losses and
their gradients (against the formulas), one-sided label smoothing, the Fréchet
distance, and that the ``fit`` style (``GAN.train_step``) and the hand-written loop compute
the same weights.

The scripts are loaded from their file paths (``examples/`` is not a package).
"""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import assert_example_doctests_pass
from _helpers import load_example as _load

import ember

NAMES = ("gan_ring", "dcgan")


@pytest.mark.parametrize("name", NAMES)
def test_docstring_examples_run(name):
    assert_example_doctests_pass(name)


# ------------------------------------------------------------------------------ the game's losses
def _softplus(x):
    return np.logaddexp(0.0, x)


@pytest.mark.parametrize("name", NAMES)
def test_generator_losses_and_their_gradients(name):
    """Non-saturating ``-log σ(l)``, minimax ``log(1 - σ(l))``; per logit their gradients are
    ``-(1 - σ(l)) / n`` and ``-σ(l) / n``: where D rejects a fake (l << 0) only the first one
    is large."""
    module = _load(name)
    logits = np.array([[-6.0], [-1.0], [0.5], [3.0]])
    sigma = 1.0 / (1.0 + np.exp(-logits))
    expected = {"non_saturating": (_softplus(-logits).mean(), -(1 - sigma) / 4),
                "minimax": (-_softplus(logits).mean(), -sigma / 4)}  # fmt: skip
    for kind, (value, gradient) in expected.items():
        t = ember.tensor(logits, requires_grad=True)
        loss = module.generator_loss(t, kind)
        loss.backward()
        assert float(loss) == pytest.approx(value, rel=1e-12)
        np.testing.assert_allclose(t.grad, gradient, rtol=1e-12)
        ember.gradcheck(lambda x, k=kind: module.generator_loss(x, k), logits)
    # at l = -6 the minimax gradient is e^6 = 403 times smaller than the non-saturating one
    assert (1 - sigma[0, 0]) / sigma[0, 0] == pytest.approx(np.exp(6.0), rel=1e-9)
    with pytest.raises(ValueError, match="generator_loss: kind must be one of"):
        module.generator_loss(ember.tensor(logits), "wasserstein")
    # float32 logits give a float32 loss and gradient
    t32 = ember.tensor(logits.astype(np.float32), requires_grad=True)
    module.generator_loss(t32).backward()
    assert t32.grad.dtype == np.float32


@pytest.mark.parametrize("name", NAMES)
def test_discriminator_loss_smooths_only_the_real_labels(name):
    module = _load(name)
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(5, 1)), rng.normal(size=(3, 1))
    loss = module.discriminator_loss(ember.tensor(real), ember.tensor(fake), 0.1)
    # targets 0.9 on real logits, 0 on fake ones; the mean over all 8
    per_real = 0.9 * _softplus(-real) + 0.1 * _softplus(real)
    expected = (per_real.sum() + _softplus(fake).sum()) / 8
    assert float(loss) == pytest.approx(expected, rel=1e-12)
    # without smoothing the real logits are pushed up, the fake ones down
    real_t, fake_t = ember.tensor(real, requires_grad=True), ember.tensor(fake, requires_grad=True)
    module.discriminator_loss(real_t, fake_t).backward()
    assert (real_t.grad < 0).all() and (fake_t.grad > 0).all()


@pytest.mark.parametrize("name", NAMES)
def test_gan_compile_checks_its_options(name):
    module = _load(name)
    gan = module.GAN(ember.Sequential([ember.layers.Dense(2)]),
                     ember.Sequential([ember.layers.Dense(1)]), latent_dim=2)  # fmt: skip
    adam = ember.optimizers.Adam
    with pytest.raises(ValueError, match="GAN.compile: g_loss must be one of"):
        gan.compile(d_optimizer=adam(), g_optimizer=adam(), g_loss="hinge")
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\), got 1.5"):
        gan.compile(d_optimizer=adam(), g_optimizer=adam(), label_smoothing=1.5)


# ------------------------------------------------------------------------------ the two styles
def _same_weights(a, b):
    for x, y in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)


def test_ring_fit_and_manual_loop_train_the_same_weights():
    ring = _load("gan_ring")
    settings = {**ring.QUICK, "n_train": 80, "epochs": 2, "batch_size": 32, "units": 8}
    by_loop = {loop: ring.train_gan(settings, "minimax", 0.1, loop, seed=3)
               for loop in ("fit", "manual")}  # fmt: skip
    fit, manual = by_loop["fit"], by_loop["manual"]
    _same_weights(fit["generator"], manual["generator"])
    _same_weights(fit["discriminator"], manual["discriminator"])
    np.testing.assert_allclose(fit["d_loss"], manual["d_loss"], rtol=1e-5)
    np.testing.assert_allclose(fit["g_loss"], manual["g_loss"], rtol=1e-5)
    # and training moved them: another seed ends elsewhere
    other = ring.train_gan(settings, "minimax", 0.1, "fit", seed=4)
    assert not np.allclose(other["generator"].get_weights()[0], fit["generator"].get_weights()[0])


def test_dcgan_fit_and_manual_loop_train_the_same_weights():
    """With batch normalization in the generator: its moving statistics match too."""
    dc = _load("dcgan")
    images = np.random.default_rng(0).uniform(-1, 1, (40, 8, 8, 1)).astype(np.float32)
    nets = {}
    for loop in ("fit", "manual"):
        ember.manual_seed(0)
        g, d = dc.build_generator(4, 8, 2), dc.build_discriminator(8, 2)
        d_opt = ember.optimizers.Adam(d.parameters(), learning_rate=1e-3, beta_1=0.5)
        g_opt = ember.optimizers.Adam(g.parameters(), learning_rate=1e-3, beta_1=0.5)
        if loop == "fit":
            gan = dc.GAN(g, d, latent_dim=4)
            gan.compile(d_optimizer=d_opt, g_optimizer=g_opt, label_smoothing=0.1)
            gan.fit(images, batch_size=16, epochs=2, verbose=0)
        else:
            dc.train_manual(g, d, images, 2, 16, 4, d_opt, g_opt, label_smoothing=0.1)
        nets[loop] = (g, d)
    _same_weights(nets["fit"][0], nets["manual"][0])
    _same_weights(nets["fit"][1], nets["manual"][1])
    moving = [w for w in nets["fit"][0].weights if "moving_mean" in w.name]
    assert moving and all(np.abs(w.numpy()).sum() > 0 for w in moving)


# ------------------------------------------------------------------------------ ring
def test_ring_data_and_mode_coverage_rule():
    ring = _load("gan_ring")
    centres = ring.ring_centres(8, 2.0)
    np.testing.assert_allclose(np.hypot(*centres.T), 2.0, rtol=1e-6)
    np.testing.assert_allclose(centres[2], [0.0, 2.0], atol=1e-6)
    points, mode = ring.sample_ring(4000, np.random.default_rng(0), std=0.02)
    np.testing.assert_allclose((points - centres[mode]).std(), 0.02, rtol=0.05)
    # real data: every mode, ~99.0 % within 3 std (a 2-D Gaussian: 1 - exp(-9/2) = 0.9889)
    r = ring.mode_coverage(points, centres, 0.02)
    assert r["modes"] == 8 and r["high_quality"] == pytest.approx(0.9889, abs=0.005)
    # 100 samples: 30 on mode 0, 30 on mode 1, 2 near mode 2 (2.5 std away), 1 near mode 3
    # (3.5 std away) and 37 at the centre of the ring
    samples = np.concatenate([np.repeat(centres[[0]], 30, 0), np.repeat(centres[[1]], 30, 0),
                              centres[[2, 2]] + [0.05, 0.0], centres[[3]] + [0.0, 0.07],
                              np.zeros((37, 2))])  # fmt: skip
    r = ring.mode_coverage(samples, centres, 0.02)
    # mode 3's sample is not high quality; mode 2's two are 2 % of the samples, above 1 %
    assert r["counts"].tolist() == [30, 30, 2, 0, 0, 0, 0, 0]
    assert r["modes"] == 3 and r["high_quality"] == pytest.approx(0.62)
    assert ring.mode_coverage(samples, centres, 0.02, min_fraction=0.05)["modes"] == 2
    with pytest.raises(ValueError, match=r"mode_coverage: samples must have shape \(n > 0, 2\)"):
        ring.mode_coverage(np.zeros((3, 3)), centres, 0.02)


def test_gan_ring_quick(capsys, tmp_path):
    r = _load("gan_ring").main(["--quick", "--plots", str(tmp_path)])
    out = capsys.readouterr().out
    # measured (seed 0, std 0.1, 800 steps): 8 of 8 modes, 43 % high quality; seeds 1-3: 8 of
    # 8, 59-73 %. Saturation: D(G(z)) 0.013, the minimax gradient 6.0 times smaller
    assert r["modes"] >= 7
    assert r["high_quality"] > 0.25
    assert r["saturation"]["d_fake"] < 0.1
    assert r["gradient_ratio"] > 3
    assert len(r["modes_curve"]) == 8 and len(r["d_loss"]) == 8
    assert f"{r['modes']} of 8 modes covered, {r['high_quality']:.1%}" in out
    assert f"{r['gradient_ratio']:.1f} times larger" in out
    figure = tmp_path / "gan_ring.png"
    assert figure.exists() and figure.stat().st_size > 1000


@pytest.mark.slow
def test_gan_ring_full(capsys):
    r = _load("gan_ring").main(["--compare"])
    out = capsys.readouterr().out
    # measured (seed 0, std 0.02, 4,000 steps): non-saturating 8 of 8 modes, 59.5 % high
    # quality; minimax 8 of 8, 63.2 %; D(G(z)) 0.019 and gradient ratio 24.7 at the start.
    # Seeds 1-4 (non-saturating): 8, 0, 8, 8 modes; with --label-smoothing 0.1: 8 every time
    assert r["settings"]["std"] == 0.02 and r["steps"] == 4000
    assert r["modes"] >= 7
    assert r["high_quality"] > 0.4
    assert r["gradient_ratio"] > 10
    assert set(r["by_loss"]) == {"non_saturating", "minimax"}
    assert f"{r['modes']} of 8 modes covered" in out and "Minimax loss: " in out


# ------------------------------------------------------------------------------ DCGAN
def test_frechet_distance_matches_the_gaussian_formula():
    dc = _load("dcgan")
    # the 8 corners of a cube: mean 0 and an exactly diagonal covariance (8/7 per axis)
    a = np.array([[i, j, k] for i in (-1.0, 1.0) for j in (-1.0, 1.0) for k in (-1.0, 1.0)])
    scale, shift = np.array([2.0, 1.0, 0.5]), np.array([1.0, 0.0, -1.0])
    b = a * scale + shift
    # diagonal covariances: |mu_a - mu_b|^2 + sum over axes of (sd_a - sd_b)^2
    sd = np.sqrt(8 / 7)
    expected = 2.0 + ((sd - sd * scale) ** 2).sum()
    assert dc.frechet_distance(a, b) == pytest.approx(expected, rel=1e-12)
    assert dc.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-12)
    # general covariances: symmetric, and invariant to a rotation of both feature sets
    rng = np.random.default_rng(0)
    c, d = rng.normal(size=(300, 3)), rng.normal(size=(200, 3)) @ rng.normal(size=(3, 3))
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    distance = dc.frechet_distance(c, d)
    assert dc.frechet_distance(d, c) == pytest.approx(distance, rel=1e-9)
    assert dc.frechet_distance(c @ q, d @ q) == pytest.approx(distance, rel=1e-9)
    # one feature: (mu_a - mu_b)^2 + (sd_a - sd_b)^2
    x, y = c[:, :1], d[:, :1]
    one = (x.mean() - y.mean()) ** 2 + (x.std(ddof=1) - y.std(ddof=1)) ** 2
    assert dc.frechet_distance(x, y) == pytest.approx(one, rel=1e-9)


def test_dcgan_networks_shapes_and_ranges():
    dc = _load("dcgan")
    ember.manual_seed(0)
    for side in (8, 28):
        g = dc.build_generator(6, side, 4)
        images = g(np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32))
        assert images.shape == (5, side, side, 1) and images.dtype == np.float32
        assert float(images.numpy().min()) >= -1.0 and float(images.numpy().max()) <= 1.0
        assert dc.build_discriminator(side, 4)(images).shape == (5, 1)
    with pytest.raises(ValueError, match="side must be 8 or 28, got 10"):
        dc.build_generator(6, 10, 4)
    data = dc.load_images("digits")
    assert data["x_train"].shape == (1437, 8, 8, 1) and data["x_test"].shape == (360, 8, 8, 1)
    assert data["x_train"].min() == -1.0 and data["x_train"].max() == 1.0


def test_dcgan_quick(capsys):
    r = _load("dcgan").main(["--quick"])
    out = capsys.readouterr().out
    # measured (seed 0, 225 steps): 45.7 % recognised (real test images 91.9 %, untrained
    # generator 0 %); Fréchet distance 338 untrained, 86.6 after epoch 1, 27.2 after epoch 5
    # (floor 0.74). Seeds 1, 2: 50.0 and 43.3 %, 128 -> 19.8 and 90.5 -> 21.5
    assert r["classifier_accuracy"] > 0.95 and r["real_recognised"] > 0.85
    assert r["untrained"]["recognised"] < 0.05
    assert r["recognised"] > 0.3
    assert r["frechet"] < 0.5 * r["frechet_curve"][0] < 0.5 * r["untrained"]["frechet"]
    assert sum(count > 0 for count in r["classes"]) >= 8  # most digits are generated
    assert f"{r['recognised']:.1%} of 1000 generated images" in out
    assert len(r["frechet_curve"]) == 5 and r["steps"] == 225
    assert f"{r['frechet_curve'][2]:7.3f}" in out  # the per-epoch table


def test_dcgan_figures(tmp_path):
    """The figures ``--plots`` saves (the quick run above skips them to save time)."""
    dc = _load("dcgan")
    images = np.random.default_rng(0).uniform(-1, 1, (16, 8, 8, 1)).astype(np.float32)
    dc.plot_samples(images, [f"{i % 10} (0.95)" for i in range(16)], 3, tmp_path / "grid.png")
    curves = {"recognised_curve": [0.2, 0.5, 0.7], "frechet_curve": [90.0, 30.0, 8.0],
              "real_recognised": 0.95, "real_frechet": 1.2}  # fmt: skip
    dc.plot_curves(curves, tmp_path / "curves.png")
    for name in ("grid.png", "curves.png"):
        assert (tmp_path / name).stat().st_size > 1000


@pytest.mark.slow
def test_dcgan_full(capsys):
    r = _load("dcgan").main([])
    out = capsys.readouterr().out
    # measured (seed 0, 4,500 steps): 84.6 % recognised (real test images 95.8 %); Fréchet
    # distance 909 untrained, 38.1 after epoch 1, 5.29 at the end (floor 1.80); seeds 1, 2:
    # 85.4 and 86.5 %, 3.76 and 3.75
    assert r["steps"] == 4500
    assert r["recognised"] >= 0.8
    assert r["frechet"] < 0.25 * r["frechet_curve"][0]
    assert min(r["classes"]) > 30  # every digit among the recognised images
    assert f"recognises {r['recognised']:.1%} of 1000 generated images" in out
    assert "feature space fell from" in out
