"""Learning without labels in ``examples/``: greedy layer-wise pre-training of a deep sigmoid net
with stacked autoencoders (``layerwise_pretraining.py``) and the variational autoencoder
(``vae.py``).

Each CI test runs an example's ``--quick`` variant (the bundled 8x8 digits) through its
``main(argv)`` and asserts the finding on the numbers it returns, with a margin below what it
measured (recorded in each test), and that the printed sentence reports them. The full runs
(Fashion-MNIST), whose numbers are in ``examples/README.md``, are marked slow. The VAE's pieces
are checked directly: the KL term the model adds against its closed form (and PyTorch's
``kl_divergence``), the reparameterization's draw and gradients, the reconstruction loss
against PyTorch, and ``evaluate``'s loss against -ELBO computed by hand from the same draws.

The scripts are loaded from their file paths (``examples/`` is not a package).
"""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import assert_example_doctests_pass
from _helpers import load_example as _load

import ember
from ember.testing import gradcheck

NAMES = ("layerwise_pretraining", "vae")


def _fashion_mnist_or_skip():
    try:
        ember.datasets.fashion_mnist.load_data(download=False)
    except OSError as err:  # DatasetUnavailableError
        pytest.skip(f"Fashion-MNIST is not installed: {err}")


@pytest.mark.parametrize("name", NAMES)
def test_docstring_examples_run(name):
    assert_example_doctests_pass(name)


# ------------------------------------------------------------------------------ pre-training
def test_labelled_subset_takes_as_many_of_every_class():
    lp = _load("layerwise_pretraining")
    y = np.array([2, 0, 1, 2, 2, 0, 1, 0, 2, 1, 0, 2])
    picked = lp.labelled_subset(y, 3, np.random.default_rng(0))
    assert picked.size == 9 and np.unique(picked).size == 9
    assert np.all(np.diff(picked) > 0)  # sorted
    np.testing.assert_array_equal(np.bincount(y[picked]), [3, 3, 3])
    np.testing.assert_array_equal(picked, lp.labelled_subset(y, 3, np.random.default_rng(0)))
    # every sample of the smallest classes (3 of class 1) is taken; other seeds differ elsewhere
    draws = {tuple(lp.labelled_subset(y, 3, np.random.default_rng(s))) for s in range(20)}
    assert len(draws) > 1 and all({2, 6, 9} <= set(d) for d in draws)
    with pytest.raises(ValueError, match="labelled_subset: per_class must be between 1 and 3"):
        lp.labelled_subset(y, 4, np.random.default_rng(0))


def test_pretraining_trains_the_encoders_it_is_given():
    """The autoencoders share their encoder layers with the stack: pre-training changes the
    stack's weights (and only the stack's), lowering each layer's reconstruction error."""
    lp = _load("layerwise_pretraining")
    x = np.random.default_rng(0).random((64, 6), dtype=np.float32)
    stack = lp.make_encoders(6, 4, 2, seed=3)
    before = [e.get_weights() for e in stack]
    np.testing.assert_array_equal(before[0][0], lp.make_encoders(6, 4, 2, seed=3)[0].kernel.data)
    report = lp.pretrain(stack, x, epochs=30, learning_rate=1e-2, batch_size=16)
    assert len(report) == 2
    for layer in report:
        assert layer["mse_last_epoch"] < layer["mse_first_epoch"]
    for encoder, weights in zip(stack, before):
        assert not np.allclose(encoder.kernel.data, weights[0])
        assert encoder.kernel.data.dtype == np.float32


def test_layerwise_pretraining_quick(capsys, tmp_path):
    r = _load("layerwise_pretraining").main(["--quick", "--plots", str(tmp_path)])
    out = capsys.readouterr().out
    # measured (digits, 5x64 sigmoid, 5 pre-training epochs per layer, SGD lr 0.1 momentum
    # 0.9, seed 0): all 1437 labels, 20 epochs: random 0.1000 (training loss 2.304, on the
    # plateau all along), pre-trained 0.9806 (0.009); 100 labels, 60 epochs: random 0.1028
    # (2.312), pre-trained 0.8917 (0.008). Seeds 1-3: random 0.097-0.100 everywhere,
    # pre-trained 0.975-0.981 and 0.869-0.919
    assert r["n_train"] == 1437 and r["n_few"] == 100
    assert all(p["mse_last_epoch"] < 0.03 for p in r["pretraining"])
    for regime, epochs in (("all", 20), ("few", 60)):
        rand, pre = r["runs"]["sgd"][regime]["random"], r["runs"]["sgd"][regime]["pretrained"]
        assert rand["test_accuracy"] < 0.2, regime  # stuck at chance
        assert rand["train_loss"] > 2.2, regime
        assert rand["plateau_epochs"] == epochs == len(rand["loss_curve"]), regime
        assert pre["train_loss"] < 0.1, regime
        assert pre["plateau_epochs"] <= 1, regime
    assert r["runs"]["sgd"]["all"]["pretrained"]["test_accuracy"] > 0.93
    assert r["runs"]["sgd"]["few"]["pretrained"]["test_accuracy"] > 0.8
    pre = r["runs"]["sgd"]["all"]["pretrained"]
    assert f"pre-training helps — test accuracy {pre['test_accuracy']:.4f} pre-trained" in out
    assert "the random net on the plateau for all 20 epochs" in out
    png = tmp_path / "pretraining_loss_curves.png"
    assert png.exists() and png.stat().st_size > 1000


@pytest.mark.slow
def test_layerwise_pretraining_full(capsys):
    _fashion_mnist_or_skip()
    r = _load("layerwise_pretraining").main([])
    out = capsys.readouterr().out
    assert r["dataset"] == "fashion_mnist" and r["n_train"] == 60000 and r["n_few"] == 1000
    sgd, adam = r["runs"]["sgd"], r["runs"]["adam"]
    # measured (seed 0): SGD, all labels, 10 epochs: random 0.7670 (training loss 0.608, first
    # 6 epochs on the plateau), pre-trained 0.8781 (0.245); 1000 labels, 50 epochs: random
    # 0.1000 (2.303, all epochs on the plateau), pre-trained 0.7990 (0.008). Adam: all labels
    # 0.8684 (0.276) vs 0.8839 (0.221); 1000 labels 0.7592 (0.192) vs 0.8108 (0.014)
    assert sgd["all"]["random"]["plateau_epochs"] >= 3
    assert sgd["few"]["random"]["plateau_epochs"] == 50
    # SGD: pre-training wins with all labels and with few (the random net sat on the plateau)
    for regime in ("all", "few"):
        assert sgd[regime]["pretrained"]["test_accuracy"] > (
            sgd[regime]["random"]["test_accuracy"] + 0.05
        ), regime
        assert sgd[regime]["pretrained"]["train_loss"] < sgd[regime]["random"]["train_loss"]
    # Adam trains the random net; with few labels pre-training still helps
    assert adam["all"]["random"]["test_accuracy"] > 0.85
    assert adam["few"]["pretrained"]["test_accuracy"] > (
        adam["few"]["random"]["test_accuracy"] + 0.02
    )
    assert "Layer-wise pre-training of a 5x256 sigmoid net on fashion_mnist" in out


# ------------------------------------------------------------------------------ VAE
def _small_vae(seed: int = 0):
    """A VAE on 20 digits whose log-variance head is moved away from 0, so that the KL term is
    not near zero (an untrained encoder gives logvar ≈ 0)."""
    ve = _load("vae")
    vae, encoder, decoder = ve.build_vae(64, 16, 3, seed=seed)
    head = encoder.get_layer("z_log_var")
    rng = np.random.default_rng(seed)
    head.set_weights([rng.normal(0, 0.3, (16, 3)).astype(np.float32),
                      np.array([-1.0, 0.5, 0.0], np.float32)])  # fmt: skip
    x = ve.load("digits")[0][:20]
    return ve, vae, encoder, decoder, x


def test_the_kl_term_the_model_adds_is_the_closed_form(torch):
    ve, vae, encoder, _, x = _small_vae()
    vae(x)
    (kl,) = vae.losses  # the Sampling layer's add_loss, the only penalty of the model
    mu, logvar = (t.numpy().astype(np.float64) for t in encoder(x))
    closed_form = 0.5 * np.sum(mu**2 + np.exp(logvar) - 1.0 - logvar) / len(x)
    assert kl.dtype == np.float32 and kl.shape == ()
    assert closed_form > 0.5  # not a trivial check
    np.testing.assert_allclose(float(kl.numpy()), closed_form, rtol=1e-5)
    q = torch.distributions.Normal(torch.tensor(mu), torch.tensor(np.exp(logvar / 2)))
    p = torch.distributions.Normal(torch.zeros(3, dtype=torch.float64), 1.0)
    expected = torch.distributions.kl_divergence(q, p).sum(-1).mean().item()
    np.testing.assert_allclose(float(kl.numpy()), expected, rtol=1e-5)


def test_kl_keeps_its_precision_near_the_prior():
    """exp(logvar) - 1 - logvar ≈ logvar²/2 for small logvar: computing exp(logvar) - 1 as
    expm1(logvar) keeps the float32 KL within 3e-4 of the exact value at logvar = 1e-3, where
    the naive form exp(logvar) - 1 - logvar is 5 % off (cancellation against 1)."""
    ve = _load("vae")
    logvar = np.full((1, 4), 1e-3, np.float32)
    got = float(ve.kl_to_standard_normal(np.zeros_like(logvar), logvar).numpy()[0])
    exact = 0.5 * 4 * (np.expm1(np.float64(logvar[0, 0])) - np.float64(logvar[0, 0]))
    naive = 0.5 * np.sum(np.exp(logvar) - np.float32(1) - logvar)
    assert got == pytest.approx(exact, rel=3e-4)
    assert abs(naive - exact) > 0.03 * exact


def test_sampling_draws_from_embers_generator():
    ve = _load("vae")
    mu = np.array([[0.5, -1.0], [2.0, 0.0], [0.0, 0.0]], np.float32)
    logvar = np.array([[0.0, -2.0], [1.0, 0.5], [-1.0, 0.0]], np.float32)
    layer = ve.Sampling()
    ember.manual_seed(11)
    z = layer([mu, logvar]).numpy()
    ember.manual_seed(11)
    eps = ember.random.normal((3, 2)).numpy()
    np.testing.assert_allclose(z, mu + np.exp(logvar / 2) * eps, rtol=1e-6)
    assert z.dtype == np.float32
    # a new draw at every call (inference mode too)
    assert not np.allclose(layer([mu, logvar], training=False).numpy(), z)
    with pytest.raises(ValueError, match=r"expects the list \[mu, logvar\]"):
        layer(mu)
    with pytest.raises(ValueError, match="mu and logvar must have the same shape"):
        layer([mu, logvar[:, :1]])


def test_reparameterization_and_kl_gradients(grad_probe):
    ve = _load("vae")
    rng = np.random.default_rng(0)
    mu, logvar = rng.normal(size=(4, 3)), rng.normal(0, 0.5, size=(4, 3))
    eps = rng.normal(size=(4, 3))
    gradcheck(lambda m, lv: ve.reparameterize(m, lv, eps=eps), mu, logvar)
    gradcheck(ve.kl_to_standard_normal, mu, logvar)
    # dz/dlogvar = exp(logvar/2) * eps / 2, dKL/dmu = mu, dKL/dlogvar = (exp(logvar) - 1) / 2
    m = ember.tensor(mu, requires_grad=True)
    lv = ember.tensor(logvar, requires_grad=True)
    (ve.reparameterize(m, lv, eps=eps).sum() + ve.kl_to_standard_normal(m, lv).sum()).backward()
    np.testing.assert_allclose(np.asarray(m.grad), 1.0 + mu, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(lv.grad), np.exp(logvar / 2) * eps / 2
                               + np.expm1(logvar) / 2, rtol=1e-12)  # fmt: skip
    # float32 stays float32 on the way back
    seen: list = []
    m32 = ember.tensor(mu.astype(np.float32), requires_grad=True)
    lv32 = ember.tensor(logvar.astype(np.float32), requires_grad=True)
    z = ve.reparameterize(grad_probe(m32, seen), grad_probe(lv32, seen))
    (z.sum() + ve.kl_to_standard_normal(grad_probe(m32, seen), grad_probe(lv32, seen)).sum()
     ).backward()  # fmt: skip
    assert z.dtype == np.float32 and seen and all(d == np.float32 for d in seen)


def test_reconstruction_loss_matches_torch(torch):
    ve = _load("vae")
    rng = np.random.default_rng(1)
    targets = rng.random((5, 7)).astype(np.float32)
    logits = rng.normal(0, 3, (5, 7)).astype(np.float32)
    got = ve.BernoulliReconstruction()(targets, ember.tensor(logits))
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor(logits, dtype=torch.float64), torch.tensor(targets, dtype=torch.float64),
        reduction="none").sum(-1).mean().item()  # fmt: skip
    assert got.dtype == np.float32
    np.testing.assert_allclose(float(got.numpy()), expected, rtol=1e-5)


def test_evaluate_reports_minus_elbo_from_the_same_draws():
    """``evaluate``'s loss is the compiled reconstruction plus the KL added by the layer:
    recomputed by hand from the same draws of Ember's generator, it is -ELBO."""
    ve, vae, encoder, decoder, x = _small_vae()
    ember.manual_seed(5)
    loss, reconstruction = vae.evaluate(x, x, batch_size=len(x), verbose=0)
    ember.manual_seed(5)
    mu, logvar = (t.numpy().astype(np.float64) for t in encoder(x))
    eps = ember.random.normal(mu.shape).numpy()
    logits = decoder(mu + np.exp(logvar / 2) * eps).numpy().astype(np.float64)
    bce = np.maximum(logits, 0) - logits * x + np.log1p(np.exp(-np.abs(logits)))
    by_hand = bce.sum(axis=1).mean()
    kl = 0.5 * np.sum(mu**2 + np.exp(logvar) - 1.0 - logvar) / len(x)
    np.testing.assert_allclose(reconstruction, by_hand, rtol=1e-5)
    np.testing.assert_allclose(loss, by_hand + kl, rtol=1e-5)


def test_baseline_and_active_units_on_small_numbers():
    ve = _load("vae")
    x_train = np.array([[0.0, 1.0, 0.5], [1.0, 1.0, 0.5]])
    x_test = np.array([[1.0, 1.0, 0.0]])
    # p = [0.5, 1 - 1e-4 (clipped), 0.5]: ln 2 - ln(1 - 1e-4) + ln 2
    expected = 2 * np.log(2) - np.log1p(-1e-4)
    assert ve.mean_image_nll(x_train, x_test) == pytest.approx(expected, rel=1e-9)
    # the floor: the binary entropies of 0.5 (ln 2) and of 0 and 1 (nothing), per image
    assert ve.target_entropy(x_train) == pytest.approx(np.log(2), rel=1e-9)
    assert ve.target_entropy(x_test) == 0.0
    assert ve.active_units([0.5, 0.0101, 0.01, 0.0]) == 2
    assert ve.active_units([0.5, 0.2], threshold=0.3) == 1


def test_vae_quick(capsys, tmp_path):
    r = _load("vae").main(["--quick", "--plots", str(tmp_path)])
    out = capsys.readouterr().out
    # measured (digits, hidden 64, 20 epochs, seed 0), nats per image: latent 2: reconstruction
    # 23.50 + KL 1.85 = 25.35 (evaluate 25.36), 2 of 2 active; latent 8: 22.15 + 2.75 = 24.90,
    # 8 of 8 active; mean-image baseline 27.19, the targets' own entropy 13.67
    z2, z8 = r["models"][2], r["models"][8]
    assert r["baseline_nll"] == pytest.approx(27.19, abs=0.01)
    assert r["entropy_floor"] == pytest.approx(13.67, abs=0.01)
    for m in (z2, z8):
        assert r["entropy_floor"] < -m["elbo"] < r["baseline_nll"] - 1.0
        assert m["kl"] > 1.0
        assert m["elbo"] == pytest.approx(-(m["reconstruction"] + m["kl"]))
        assert m["evaluate_loss"] == pytest.approx(-m["elbo"], abs=0.5)  # one draw vs ten
        # the KL logged by fit (loss - reconstruction metric) is positive and settles
        assert all(k > 0 for k in m["train_kl_curve"])
    assert z2["active_units"] == 2
    assert z8["reconstruction"] < z2["reconstruction"] - 0.5  # more code, better reconstruction
    assert z8["kl"] > z2["kl"]  # ... for more nats of code
    assert f"latent 2: -ELBO {-z2['elbo']:.2f} = reconstruction {z2['reconstruction']:.2f}" in out
    names = {"vae_prior_samples_z2.png", "vae_prior_samples_z8.png", "vae_latent_scatter.png",
             "vae_latent_manifold.png"}  # fmt: skip
    assert {p.name for p in r["plots"]} == names
    for name in names:
        assert (tmp_path / name).stat().st_size > 1000, name


@pytest.mark.slow
def test_vae_full(capsys):
    _fashion_mnist_or_skip()
    r = _load("vae").main([])
    out = capsys.readouterr().out
    z2, z16 = r["models"][2], r["models"][16]
    # measured (seed 0), nats per image: latent 2: 259.27 + KL 6.08 = 265.35, 2 of 2 active;
    # latent 16: 227.96 + 15.81 = 243.77, 13 of 16 active; baseline 385.02, floor 189.86
    assert r["dataset"] == "fashion_mnist"
    for m in (z2, z16):
        assert -m["elbo"] < r["baseline_nll"] - 50
        assert m["evaluate_loss"] == pytest.approx(-m["elbo"], abs=1.0)
    assert z2["active_units"] == 2
    assert z16["reconstruction"] < z2["reconstruction"] - 5
    assert z16["elbo"] > z2["elbo"]
    assert "VAE on fashion_mnist (15 epochs)" in out
