"""The layer catalogue of issue 4: BatchNormalization, LayerNormalization, Dropout, GaussianNoise,
PReLU and the activation layers, Normalization; train/eval mode (``train()``/``eval()``).

Conventions used for the PyTorch comparisons:

* Momentum: Ember (Keras) updates ``moving = m·moving + (1−m)·batch``; torch updates
  ``(1−m_t)·running + m_t·batch``, so ``m_t = 1 − m``.
* Moving variance: Ember (Keras) feeds the *biased* batch variance, torch the unbiased one
  (× n/(n−1)); the tests convert explicitly.
* Every gradient comparison contracts the output with a random cotangent.
Catalogue cases are named after their IDs (L1–L6, N13, N14, B9).
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

import ember
from ember import layers, ops
from ember.initializers import Constant
from ember.models import Model, Sequential, load_model
from ember.ops.normalization import normalize
from ember.testing import gradcheck


def _rng(seed=0):
    return np.random.default_rng(seed)


def _ember_grads(layer, x, cotangent, training, params):
    xe = ember.tensor(x, requires_grad=True)
    out = layer(xe, training=training)
    for p in params:
        p.grad = None
    (out * ember.tensor(cotangent)).sum().backward()
    return out.numpy(), xe.grad, [p.grad for p in params]


def _torch_grads(torch, module, x, cotangent, params):
    xt = torch.tensor(x, requires_grad=True)
    out = module(xt)
    for p in params:
        p.grad = None
    (out * torch.tensor(cotangent)).sum().backward()
    return out.detach().numpy(), xt.grad.numpy(), [p.grad.numpy() for p in params]


def _close(a, b, atol=1e-5, rtol=1e-4, msg=""):
    np.testing.assert_allclose(a, b, atol=atol, rtol=rtol, err_msg=msg)


# ------------------------------------------------------------------------ BatchNormalization
BN_CASES = {
    # name: (input shape as Ember sees it, Ember axis, torch module, Ember→torch layout)
    "1d_axis-1": ((16, 5), -1, "BatchNorm1d", None),
    "1d_ncl_axis1": ((8, 5, 3), 1, "BatchNorm1d", None),
    "2d_nchw_axis1": ((4, 3, 5, 6), 1, "BatchNorm2d", None),
    "2d_nhwc_axis-1": ((4, 5, 6, 3), -1, "BatchNorm2d", (0, 3, 1, 2)),
}


@pytest.mark.parametrize("case", list(BN_CASES))
def test_batchnorm_matches_torch_train_eval_and_running_stats(case, torch):
    shape, axis, module_name, to_torch = BN_CASES[case]
    rng = _rng(zlib.crc32(case.encode()))
    channels = shape[axis]
    momentum = 0.9
    bn = layers.BatchNormalization(axis=axis, momentum=momentum, epsilon=1e-3)
    tbn = getattr(torch.nn, module_name)(channels, eps=1e-3, momentum=1 - momentum)
    bn.build(shape)
    bn.built = True
    gamma = rng.uniform(0.5, 1.5, channels).astype(np.float32)
    beta = rng.uniform(-1, 1, channels).astype(np.float32)
    bn.gamma.data, bn.beta.data = gamma.copy(), beta.copy()
    with torch.no_grad():
        tbn.weight.copy_(torch.tensor(gamma))
        tbn.bias.copy_(torch.tensor(beta))

    def t_layout(a):
        return a if to_torch is None else np.ascontiguousarray(a.transpose(to_torch))

    reduce_n = int(np.prod(shape)) // channels
    expected_mean = np.zeros(channels)
    expected_var = np.ones(channels)
    for _ in range(4):  # several training steps
        x = (rng.standard_normal(shape) * 3 + 2).astype(np.float32)
        cot = rng.standard_normal(shape).astype(np.float32)
        tbn.train()
        e_out, e_dx, (e_dg, e_db) = _ember_grads(bn, x, cot, True, [bn.gamma, bn.beta])
        t_out, t_dx, (t_dg, t_db) = _torch_grads(
            torch, tbn, t_layout(x), t_layout(cot), [tbn.weight, tbn.bias]
        )
        _close(t_layout(e_out), t_out, msg="train output")
        _close(t_layout(e_dx), t_dx, atol=1e-4, msg="train dx")
        _close(e_dg, t_dg, atol=1e-4, msg="dgamma")
        _close(e_db, t_db, atol=1e-4, msg="dbeta")
        axes = tuple(i for i in range(len(shape)) if i != axis % len(shape))
        expected_mean = momentum * expected_mean + (1 - momentum) * x.astype(np.float64).mean(axes)
        expected_var = momentum * expected_var + (1 - momentum) * x.astype(np.float64).var(axes)
    # Moving mean: same as torch's running mean. Moving variance: the biased batch variance.
    _close(bn.moving_mean.data, tbn.running_mean.numpy(), atol=1e-5)
    _close(bn.moving_mean.data, expected_mean, atol=1e-5)
    _close(bn.moving_variance.data, expected_var, atol=1e-4)
    # torch's running variance is the same recursion on unbiased variances: starting from 1,
    # r = m⁴ + Σ cₖ·f·bₖ while Ember's v = m⁴ + Σ cₖ·bₖ, so v = m⁴ + (r − m⁴)/f.
    unbiased_factor = reduce_n / (reduce_n - 1)
    torch_var_of_biased = (tbn.running_var.numpy() - momentum**4) / unbiased_factor + momentum**4
    _close(bn.moving_variance.data, torch_var_of_biased, atol=1e-4)

    # Inference: with the same statistics in both, outputs and gradients agree.
    with torch.no_grad():
        tbn.running_var.copy_(torch.tensor(bn.moving_variance.data))
    tbn.eval()
    x = rng.standard_normal(shape).astype(np.float32)
    cot = rng.standard_normal(shape).astype(np.float32)
    before = [bn.moving_mean.data.copy(), bn.moving_variance.data.copy()]
    e_out, e_dx, (e_dg, e_db) = _ember_grads(bn, x, cot, False, [bn.gamma, bn.beta])
    t_out, t_dx, (t_dg, t_db) = _torch_grads(
        torch, tbn, t_layout(x), t_layout(cot), [tbn.weight, tbn.bias]
    )
    _close(t_layout(e_out), t_out, msg="eval output")
    _close(t_layout(e_dx), t_dx, atol=1e-4, msg="eval dx")
    _close(e_dg, t_dg, atol=1e-4)
    _close(e_db, t_db, atol=1e-4)
    assert np.array_equal(bn.moving_mean.data, before[0])
    assert np.array_equal(bn.moving_variance.data, before[1])
    assert bn.moving_mean.grad is None and bn.moving_variance.grad is None


def test_batchnorm_weights_names_shapes_and_trainability():
    bn = layers.BatchNormalization(axis=1)
    bn(np.zeros((2, 3, 4, 4), np.float32))
    assert [w.name for w in bn.weights] == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert all(w.shape == (3,) for w in bn.weights)
    assert [w.name for w in bn.trainable_weights] == ["gamma", "beta"]
    assert [w.name for w in bn.non_trainable_weights] == ["moving_mean", "moving_variance"]
    assert not bn.moving_mean.requires_grad and not bn.moving_variance.requires_grad
    bare = layers.BatchNormalization(center=False, scale=False)
    out = bare(np.array([[1.0], [3.0]]), training=True)
    assert [w.name for w in bare.weights] == ["moving_mean", "moving_variance"]
    _close(out.numpy().ravel(), [-1 / np.sqrt(1 + 1e-3), 1 / np.sqrt(1 + 1e-3)])


def test_L3_batchnorm_momentum_convention(torch):
    # Keras default momentum 0.99: one batch with mean 5 moves the moving mean 0 -> 0.05.
    bn = layers.BatchNormalization()
    bn(np.array([[4.0], [6.0]], np.float32), training=True)
    _close(bn.moving_mean.data, [0.05], rtol=1e-6)
    # Batch [1, 3]: mean 2, biased variance 1, unbiased 2.
    bn = layers.BatchNormalization(momentum=0.9)
    bn(np.array([[1.0], [3.0]], np.float32), training=True)
    _close(bn.moving_mean.data, [0.2], rtol=1e-6)
    _close(bn.moving_variance.data, [1.0], rtol=1e-6)  # 0.9·1 + 0.1·1 (biased, Keras)
    tbn = torch.nn.BatchNorm1d(1, momentum=0.1)
    tbn(torch.tensor([[1.0], [3.0]]))
    _close(tbn.running_mean.numpy(), [0.2], rtol=1e-6)
    _close(tbn.running_var.numpy(), [1.1], rtol=1e-6)  # 0.9·1 + 0.1·2 (unbiased, PyTorch)


def test_L2_batchnorm_uses_moving_statistics_in_eval():
    rng = _rng(2)
    bn = layers.BatchNormalization(momentum=0.5)
    for _ in range(30):
        bn(rng.normal(5.0, 2.0, size=(256, 1)).astype(np.float32), training=True)
    _close(bn.moving_mean.data, [5.0], atol=0.2)
    _close(bn.moving_variance.data, [4.0], atol=0.6)
    stats = (bn.moving_mean.data.copy(), bn.moving_variance.data.copy())
    single = bn(np.array([[5.0]], np.float32)).numpy()
    assert np.isfinite(single).all() and abs(single[0, 0]) < 0.1  # ≈ β = 0
    model = Sequential([layers.Input(shape=(3,)), layers.BatchNormalization()])
    model.layers[0](rng.normal(5, 2, (64, 3)), training=True)
    batch = rng.normal(5, 2, (100, 3)).astype(np.float32)
    mm = model.layers[0].moving_mean.data.copy()
    alone = model.predict(batch[:1])
    together = model.predict(batch)
    assert np.array_equal(alone[0], together[0])
    assert np.array_equal(model.layers[0].moving_mean.data, mm)
    bn(rng.normal(size=(10, 1)), training=False)
    assert np.array_equal(bn.moving_mean.data, stats[0])
    assert np.array_equal(bn.moving_variance.data, stats[1])


def test_L4_frozen_batchnorm_runs_in_inference_mode_during_fine_tuning():
    ember.manual_seed(0)
    rng = _rng(4)
    x = rng.normal(3, 2, (64, 4)).astype(np.float32)
    y = rng.normal(size=(64, 1)).astype(np.float32)
    bn = layers.BatchNormalization()
    model = Sequential([layers.Input(shape=(4,)), bn, layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)  # pre-training moves the statistics
    assert not np.allclose(bn.moving_mean.data, 0)
    bn.gamma.data = np.full(4, 1.5, np.float32)
    bn.trainable = False
    frozen = [w.copy() for w in bn.get_weights()]
    dense_before = model.layers[1].kernel.data.copy()
    # In a training call the frozen layer gives exactly its inference output.
    _close(bn(x, training=True).numpy(), bn(x, training=False).numpy(), atol=0, rtol=0)
    assert [p.name for p in model.trainable_weights] == ["kernel", "bias"]
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    for before, after in zip(frozen, bn.get_weights()):
        assert np.array_equal(before, after)
    assert not np.array_equal(model.layers[1].kernel.data, dense_before)


@pytest.mark.parametrize("shape", [(1, 4), (1, 3, 1, 1)])
def test_N13_batchnorm_single_value_per_channel(shape):
    bn = layers.BatchNormalization(axis=1, name="bn_n13")
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    with pytest.raises(ValueError, match=r"bn_n13.*more than 1 value per channel.*\(1, "):
        bn(x, training=True)
    out = bn(x, training=False)  # inference works
    _close(out.numpy(), x / np.sqrt(1 + 1e-3))
    assert np.array_equal(bn.moving_mean.data, np.zeros(shape[1]))


def test_N14_batchnorm_constant_feature():
    rng = _rng(14)
    x = rng.normal(size=(32, 3)).astype(np.float32)
    x[:, 0] = 7.0
    bn = layers.BatchNormalization()
    bn.build(x.shape)
    bn.built = True
    bn.beta.data = np.array([0.5, -1.0, 2.0], np.float32)
    xe = ember.tensor(x, requires_grad=True)
    out = bn(xe, training=True)
    assert np.array_equal(out.numpy()[:, 0], np.full(32, 0.5, np.float32))
    cot = rng.normal(size=x.shape).astype(np.float32)
    (out * ember.tensor(cot)).sum().backward()
    for g in (xe.grad, bn.gamma.grad, bn.beta.grad):
        assert np.isfinite(g).all()
    # x̂ = 0 for that feature, so dx = γ·(g − mean(g))/sqrt(0 + ε) and dγ = 0.
    _close(xe.grad[:, 0], (cot[:, 0] - cot[:, 0].mean()) / np.sqrt(1e-3), rtol=1e-5)
    assert bn.gamma.grad[0] == 0


# ------------------------------------------------------------------------ LayerNormalization
@pytest.mark.parametrize(
    "shape, axis", [((6, 7), -1), ((3, 4, 5), -1), ((2, 3, 4, 5), [1, 2, 3])], ids=str
)
def test_layernorm_matches_torch(shape, axis, torch):
    rng = _rng(len(shape))
    x = rng.normal(1, 3, shape).astype(np.float32)
    cot = rng.normal(size=shape).astype(np.float32)
    ln = layers.LayerNormalization(axis=axis, epsilon=1e-5)
    ln.build(shape)
    ln.built = True
    normalized = shape[-1:] if axis == -1 else shape[1:]
    assert ln.gamma.shape == normalized
    gamma = rng.uniform(0.5, 1.5, normalized).astype(np.float32)
    beta = rng.uniform(-1, 1, normalized).astype(np.float32)
    ln.gamma.data, ln.beta.data = gamma, beta
    tln = torch.nn.LayerNorm(normalized, eps=1e-5)
    with torch.no_grad():
        tln.weight.copy_(torch.tensor(gamma))
        tln.bias.copy_(torch.tensor(beta))
    for training in (True, False):
        e = _ember_grads(ln, x, cot, training, [ln.gamma, ln.beta])
        t = _torch_grads(torch, tln, x, cot, [tln.weight, tln.bias])
        _close(e[0], t[0], msg="output")
        _close(e[1], t[1], atol=1e-4, msg="dx")
        _close(e[2][0], t[2][0], atol=1e-4, msg="dgamma")
        _close(e[2][1], t[2][1], atol=1e-4, msg="dbeta")


def test_layernorm_defaults_follow_keras():
    ln = layers.LayerNormalization()
    x = np.array([[1.0, 2.0, 3.0]], np.float32)
    out = ln(x).numpy()
    expected = (x - 2.0) / np.sqrt(2 / 3 + 1e-3)  # ε = 1e-3 (Keras), biased variance
    _close(out, expected, rtol=1e-6)
    assert [w.name for w in ln.weights] == ["gamma", "beta"]


# ------------------------------------------------------------------------ PReLU & activations
@pytest.mark.parametrize(
    "shape, shared_axes", [((6, 4), None), ((3, 4, 5, 5), [2, 3])], ids=["per_unit", "nchw"]
)
def test_prelu_matches_torch(shape, shared_axes, torch):
    rng = _rng(7)
    x = rng.normal(size=shape).astype(np.float32)
    cot = rng.normal(size=shape).astype(np.float32)
    prelu = layers.PReLU(shared_axes=shared_axes)
    prelu.build(shape)
    prelu.built = True
    assert prelu.alpha.name == "alpha"
    assert np.all(prelu.alpha.data == 0.25)  # Constant(0.25) by default (issue 4)
    channels = shape[1]
    alpha = rng.uniform(0.05, 0.5, channels).astype(np.float32)
    prelu.alpha.data = alpha.reshape(prelu.alpha.shape)
    tprelu = torch.nn.PReLU(channels)
    with torch.no_grad():
        tprelu.weight.copy_(torch.tensor(alpha))
    for training in (True, False):
        e = _ember_grads(prelu, x, cot, training, [prelu.alpha])
        t = _torch_grads(torch, tprelu, x, cot, [tprelu.weight])
        _close(e[0], t[0])
        _close(e[1], t[1])
        _close(e[2][0].reshape(-1), t[2][0], atol=1e-4)


def test_prelu_alpha_shapes():
    assert layers.PReLU()(np.zeros((2, 3, 4))).shape == (2, 3, 4)
    p = layers.PReLU(shared_axes=[1, 2])
    p(np.zeros((2, 5, 5, 3)))
    assert p.alpha.shape == (1, 1, 3)
    p = layers.PReLU(alpha_initializer="zeros")
    p(np.zeros((2, 3)))
    assert p.alpha.shape == (3,) and np.all(p.alpha.data == 0)
    out = layers.PReLU(alpha_initializer=Constant(-1.0))(np.array([[-2.0, 3.0]]))
    assert np.array_equal(out.numpy(), [[2.0, 3.0]])  # α = −1: absolute-value rectification


def test_activation_layers_match_torch(torch):
    rng = _rng(9)
    x = rng.normal(0, 3, (5, 6)).astype(np.float32)
    x[0, :3] = [0.0, 1000.0, -1000.0]
    cot = rng.normal(size=x.shape).astype(np.float32)
    f = torch.nn.functional
    cases = [
        (layers.LeakyReLU(), lambda t: f.leaky_relu(t, 0.01)),
        (layers.LeakyReLU(negative_slope=0.3), lambda t: f.leaky_relu(t, 0.3)),
        (layers.ELU(), f.elu),
        (layers.ELU(alpha=0.5), lambda t: f.elu(t, 0.5)),
        (layers.ReLU(), torch.relu),
        (layers.ReLU(max_value=6.0), lambda t: torch.clamp(torch.relu(t), max=6.0)),
        (layers.Softmax(), lambda t: torch.softmax(t, -1)),
        (layers.Softmax(axis=0), lambda t: torch.softmax(t, 0)),
    ]
    for layer, fn in cases:
        e_out, e_dx, _ = _ember_grads(layer, x, cot, False, [])
        xt = torch.tensor(x, requires_grad=True)
        t_out = fn(xt)
        (t_out * torch.tensor(cot)).sum().backward()
        _close(e_out, t_out.detach().numpy(), msg=type(layer).__name__)
        _close(e_dx, xt.grad.numpy(), atol=1e-5, msg=type(layer).__name__)


def test_relu_layer_threshold_and_slope():
    x = np.array([[-2.0, 0.5, 1.0, 3.0, 8.0]], np.float32)
    out = layers.ReLU(max_value=6.0, negative_slope=0.1, threshold=1.0)(x).numpy()
    _close(out, [[-0.3, -0.05, 1.0, 3.0, 6.0]], rtol=1e-6)


# ------------------------------------------------------------------------ Dropout & noise
def test_L1_dropout_off_in_eval_and_inverted_in_training(torch):
    x = np.full((100_000,), 3.0, np.float32).reshape(1000, 100)
    drop = layers.Dropout(0.5)
    for out in (drop(x), drop(x, training=False)):
        assert np.array_equal(out.numpy(), x)
    model = Sequential([layers.Input(shape=(100,)), drop])
    assert np.array_equal(model.predict(x), x)
    model.eval()
    assert np.array_equal(model(x).numpy(), x)
    ember.manual_seed(1)
    out = drop(x, training=True).numpy()
    tdrop = torch.nn.Dropout(0.5).train()
    t_out = tdrop(torch.tensor(x)).numpy()
    for values in (out, t_out):  # same statistics as torch's inverted dropout
        assert set(np.unique(values)) == {0.0, 6.0}
        assert abs(values.mean() - 3.0) / 3.0 < 0.01
        assert abs((values == 0).mean() - 0.5) < 0.01
    assert np.array_equal(layers.Dropout(0.0)(x, training=True).numpy(), x)
    for rate in (1.0, 1.5, -0.1, "a", True):
        with pytest.raises(ValueError, match="rate must be a number in \\[0, 1\\)"):
            layers.Dropout(rate)


def test_dropout_gradient_is_the_mask():
    ember.manual_seed(3)
    x = ember.tensor(np.ones((50, 40), np.float32), requires_grad=True)
    out = layers.Dropout(0.2)(x, training=True)
    out.sum().backward()
    assert np.array_equal(x.grad, out.numpy())  # d(x·mask)/dx = mask, and x = 1
    kept = out.numpy()[out.numpy() != 0]
    assert np.allclose(kept, 1 / 0.8)


def test_dropout_noise_shape_drops_whole_rows():
    ember.manual_seed(0)
    out = layers.Dropout(0.5, noise_shape=(None, 1))(np.ones((200, 8)), training=True).numpy()
    assert all(len(np.unique(row)) == 1 for row in out)
    assert 0 < (out[:, 0] == 0).sum() < 200


def test_L6_dropout_randomness():
    x = np.ones((20, 30), np.float32)
    ember.manual_seed(5)
    a1 = layers.Dropout(0.5)(x, training=True).numpy()
    a2 = layers.Dropout(0.5)(x, training=True).numpy()
    ember.manual_seed(5)
    b1 = layers.Dropout(0.5)(x, training=True).numpy()
    assert np.array_equal(a1, b1) and not np.array_equal(a1, a2)
    s1, s2 = layers.Dropout(0.5, seed=7), layers.Dropout(0.5, seed=7)
    m1, m2 = s1(x, training=True).numpy(), s2(x, training=True).numpy()
    assert np.array_equal(m1, m2) and not np.array_equal(m1, s1(x, training=True).numpy())
    state = ember.get_rng_state()
    layers.Dropout(0.5)(x)
    layers.Dropout(0.5)(x, training=False)
    layers.GaussianNoise(1.0)(x)
    assert ember.get_rng_state() == state  # inference draws nothing

    # Validation consumes no random numbers: the training trajectory is unchanged by it.
    rng = _rng(6)
    xs, ys = rng.normal(size=(40, 5)), rng.normal(size=(40, 1))

    def trained(validate):
        ember.manual_seed(11)
        model = Sequential(
            [layers.Input(shape=(5,)), layers.Dense(8), layers.Dropout(0.3), layers.Dense(1)]
        )
        model.compile(optimizer="sgd", loss="mse")
        val = (xs[:10], ys[:10]) if validate else None
        model.fit(xs, ys, epochs=3, batch_size=8, validation_data=val, verbose=0)
        return model.get_weights()

    for a, b in zip(trained(False), trained(True)):
        assert np.array_equal(a, b)


def test_gaussian_noise_statistics():
    ember.manual_seed(0)
    x = np.full((400, 250), 2.0, np.float32)
    noisy = layers.GaussianNoise(0.5)
    out = noisy(x, training=True).numpy()
    assert out.dtype == np.float32
    assert abs(out.mean() - 2.0) < 0.01 and abs(out.std() - 0.5) < 0.01
    assert np.array_equal(noisy(x).numpy(), x)
    assert np.array_equal(layers.GaussianNoise(0.0)(x, training=True).numpy(), x)


# ------------------------------------------------------------------------ gradcheck (float64)
def test_gradcheck_batchnorm_train_and_eval():
    rng = _rng(21)
    x = rng.normal(1, 2, (6, 3, 2))
    bn = layers.BatchNormalization(axis=1, dtype="float64")
    bn.build(x.shape)
    bn.built = True
    bn.moving_mean.data = rng.normal(size=3)
    bn.moving_variance.data = rng.uniform(0.5, 2, 3)

    for training in (True, False):

        def fn(xt, g, b, training=training):
            bn.gamma, bn.beta = g, b
            return bn(xt, training=training)

        result = gradcheck(fn, x, rng.uniform(0.5, 2, 3), rng.normal(size=3))
        assert result.ok and result.checked_elements == 42


def test_gradcheck_normalize_op_without_affine_over_several_axes():
    x = _rng(23).normal(0, 2, (3, 4, 5))
    assert gradcheck(lambda t: normalize(t, (1, 2), epsilon=1e-3)[0], x).ok
    assert gradcheck(lambda t: normalize(t, (0,), epsilon=1e-3)[0], x).ok


def test_gradcheck_layernorm_prelu_normalization_noise():
    rng = _rng(22)
    x = rng.normal(0, 2, (4, 5))
    ln = layers.LayerNormalization(dtype="float64")
    ln(x)

    def ln_fn(xt, g, b):
        ln.gamma, ln.beta = g, b
        return ln(xt, training=True)

    assert gradcheck(ln_fn, x, rng.uniform(0.5, 2, 5), rng.normal(size=5)).ok
    prelu = layers.PReLU(dtype="float64")
    prelu(x)

    def prelu_fn(xt, a):
        prelu.alpha = a
        return prelu(xt, training=True)

    x_away = np.where(np.abs(x) < 1e-3, 0.5, x)  # no kink within the finite-difference step
    assert gradcheck(prelu_fn, x_away, rng.uniform(0, 0.5, 5)).ok
    norm = layers.Normalization(dtype="float64")
    norm.adapt(rng.normal(3, 2, (50, 5)))
    assert gradcheck(lambda xt: norm(xt, training=True), x).ok
    noise = layers.GaussianNoise(0.3, dtype="float64")

    def noise_fn(xt):
        ember.manual_seed(0)  # the same noise on every evaluation
        return noise(xt, training=True) * xt

    assert gradcheck(noise_fn, x).ok


# ------------------------------------------------------------------------ Normalization
def test_normalization_adapt_and_call():
    rng = _rng(30)
    data = rng.normal([1.0, -5.0, 100.0], [2.0, 0.1, 30.0], (500, 3))
    data[:, 1] = 4.0  # a constant feature stays finite (std floored at 1e-7)
    norm = layers.Normalization()
    with pytest.raises(ValueError, match="no statistics.*adapt"):
        norm(data)
    norm.adapt(data)
    assert [w.name for w in norm.weights] == ["mean", "variance"]
    assert norm.trainable_weights == [] and len(norm.non_trainable_weights) == 2
    _close(norm.mean.data, data.mean(0), rtol=1e-6)
    _close(norm.variance.data, data.var(0), rtol=1e-6)
    out = norm(data).numpy()
    expected = (data - data.mean(0)) / np.maximum(data.std(0), 1e-7)
    _close(out, expected, atol=1e-4)
    assert np.all(out[:, 1] == 0)
    _close(out[:, [0, 2]].mean(0), [0, 0], atol=1e-5)
    _close(out[:, [0, 2]].std(0), [1, 1], atol=1e-4)
    inv = layers.Normalization(mean=norm.mean.data, variance=norm.variance.data, invert=True)
    _close(inv(out).numpy()[:, [0, 2]], data[:, [0, 2]], atol=1e-3)


def test_normalization_fixed_stats_axis_none_and_errors():
    norm = layers.Normalization(mean=2.0, variance=4.0)
    _close(norm(np.array([[2.0, 4.0]])).numpy(), [[0.0, 1.0]])
    scalar = layers.Normalization(axis=None)
    scalar.adapt(np.array([[1.0, 3.0], [1.0, 3.0]]))
    assert scalar.mean.shape == () and float(scalar.mean.data) == 2.0
    images = layers.Normalization(axis=1)
    images.adapt(np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4))
    assert images.mean.shape == (3,)
    with pytest.raises(ValueError, match="both mean and variance"):
        layers.Normalization(mean=1.0)
    with pytest.raises(ValueError, match="variance must be finite and non-negative"):
        layers.Normalization(mean=0.0, variance=-1.0)
    with pytest.raises(ValueError, match="NaN"):
        layers.Normalization().adapt(np.array([[np.nan]]))


def test_normalization_in_functional_model_adapted_later_and_load_weights(tmp_path):
    rng = _rng(31)
    data = rng.normal(10, 3, (64, 4)).astype(np.float32)
    inputs = layers.Input(shape=(4,))
    norm = layers.Normalization()
    model = Model(inputs, layers.Dense(2)(norm(inputs)))  # shape probe: no error yet
    with pytest.raises(ValueError, match="no statistics"):
        model.predict(data)
    norm.adapt(data)
    expected = model.predict(data)
    model.save_weights(tmp_path / "w.ember")
    inputs = layers.Input(shape=(4,))
    norm2 = layers.Normalization()
    fresh = Model(inputs, layers.Dense(2)(norm2(inputs)))
    fresh.load_weights(tmp_path / "w.ember")
    assert norm2.adapted
    assert np.array_equal(fresh.predict(data), expected)


def test_normalization_in_sequential_with_input_adapted_after_construction():
    data = _rng(32).normal(10, 3, (64, 4)).astype(np.float32)
    norm = layers.Normalization()
    model = Sequential([layers.Input(shape=(4,)), norm, layers.Dense(2)])
    norm.adapt(data)
    _close(norm(data).numpy().mean(0), np.zeros(4), atol=1e-5)
    assert model.predict(data).shape == (64, 2)


# ------------------------------------------------------------------------ modes (L5)
class _Block(layers.Layer):
    def __init__(self):
        super().__init__()
        self.inner = Sequential([layers.Dense(6), layers.Dropout(0.5)])

    def call(self, x):  # does not pass training on: the call context does
        return self.inner(x)


class _Net(Model):
    def __init__(self):
        super().__init__()
        self.block = _Block()
        self.bn = layers.BatchNormalization()
        self.head = layers.Dense(1)

    def call(self, x):
        return self.head(self.bn(self.block(x)))


def test_L5_mode_propagation_and_restoration():
    ember.manual_seed(0)
    rng = _rng(5)
    x, y = rng.normal(size=(32, 4)), rng.normal(size=(32, 1))
    net = _Net()
    net(x)
    dropout = net.block.inner.layers[1]  # nested 3 deep: _Net → _Block → Sequential → Dropout
    all_layers = net._all_layers()
    assert dropout in all_layers and not any(layer.training for layer in all_layers)
    assert net.train() is net and dropout.training and net.bn.training
    train_out = net(x).numpy()
    assert (net.block(x).numpy() == 0).mean() > 0.3  # dropout active through the context
    net.eval()
    assert not any(layer.training for layer in all_layers)
    first, second = net(x).numpy(), net(x).numpy()
    assert np.array_equal(first, second) and not np.allclose(first, train_out)
    assert np.array_equal(net.predict(x), first)
    # A direct call of a nested layer uses that layer's own mode.
    dropout.train()
    assert (dropout(np.ones((50, 50))).numpy() == 0).any()
    dropout.eval()
    # fit trains in training mode (moving stats move) and leaves the modes as they were.
    net.compile(optimizer="sgd", loss="mse")
    before = net.bn.moving_mean.data.copy()
    net.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert not np.array_equal(net.bn.moving_mean.data, before)
    assert not any(layer.training for layer in all_layers)
    net.train()
    net.predict(x)
    net.evaluate(x, y, verbose=0)
    assert all(layer.training for layer in all_layers)
    with pytest.raises(ValueError):
        net.fit(x[:1], y[:1], epochs=1, verbose=0)  # N13 mid-fit (batch of one)
    assert all(layer.training for layer in all_layers)
    with pytest.raises(TypeError, match="True or False"):
        net.train("yes")


def test_L5_mode_dependent_layers_differ_between_modes_others_do_not():
    rng = _rng(50)
    x = rng.normal(2, 3, (16, 4)).astype(np.float32)
    norm = layers.Normalization()
    norm.adapt(x)
    dependent = [
        layers.BatchNormalization(momentum=0.5),
        layers.Dropout(0.5),
        layers.GaussianNoise(0.5),
    ]
    independent = [
        layers.LayerNormalization(),
        layers.PReLU(),
        layers.LeakyReLU(),
        layers.ELU(),
        layers.ReLU(),
        layers.Softmax(),
        norm,
    ]
    for layer in dependent + independent:
        layer.train()
        train_out = layer(x).numpy()
        layer.eval()
        eval_out = layer(x).numpy()
        assert np.allclose(train_out, eval_out) == (layer in independent), layer.name


# ------------------------------------------------------------------------ bad input (B9)
@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: layers.Dropout(1.5), "rate"),
        (lambda: layers.Dropout(0.5, seed=-1), "seed"),
        (lambda: layers.Dropout(0.5, noise_shape="x"), "noise_shape"),
        (lambda: layers.BatchNormalization(momentum=2), "momentum"),
        (lambda: layers.BatchNormalization(momentum=-0.1), "momentum"),
        (lambda: layers.BatchNormalization(epsilon=-1e-3), "epsilon"),
        (lambda: layers.BatchNormalization(epsilon=0), "epsilon"),
        (lambda: layers.LayerNormalization(epsilon=-1.0), "epsilon"),
        (lambda: layers.LayerNormalization(epsilon=float("nan")), "epsilon"),
        (lambda: layers.GaussianNoise(-1), "stddev"),
        (lambda: layers.GaussianNoise(float("inf")), "stddev"),
        (lambda: layers.LeakyReLU(-0.1), "negative_slope"),
        (lambda: layers.ELU(alpha=float("nan")), "alpha"),
        (lambda: layers.ReLU(max_value=-1.0), "max_value"),
        (lambda: layers.Normalization(mean=0.0, variance=float("nan")), "variance"),
    ],
)
def test_B9_bad_hyper_parameters(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_B9_bad_axes_and_types():
    with pytest.raises(TypeError, match="axis must be an integer"):
        layers.BatchNormalization(axis=[1, 2])
    with pytest.raises(TypeError, match="center"):
        layers.BatchNormalization(center="yes")
    with pytest.raises(ValueError, match="axis 0 is the batch"):
        layers.BatchNormalization(axis=0)(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="out of range"):
        layers.BatchNormalization(axis=3)(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="out of range"):
        layers.LayerNormalization(axis=5)(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="shared axis"):
        layers.PReLU(shared_axes=[0])(np.zeros((4, 3)))
    with pytest.raises(TypeError, match="axis must be an integer"):
        layers.Softmax(axis="last")
    bn = layers.BatchNormalization(name="bn_b9")
    bn(np.zeros((4, 3)))
    with pytest.raises(ValueError, match='"bn_b9".*expected axis 1.*value 3'):
        bn(np.zeros((4, 5)))


# ------------------------------------------------------------------------ persistence
def test_save_load_round_trip_with_every_catalogue_layer(tmp_path):
    ember.manual_seed(0)
    rng = _rng(40)
    x = rng.normal(5, 2, (96, 6)).astype(np.float32)
    y = (x[:, :1] * 0.3 + rng.normal(size=(96, 1))).astype(np.float32)
    norm = layers.Normalization()
    norm.adapt(x)
    model = Sequential(
        [
            layers.Input(shape=(6,)),
            norm,
            layers.GaussianNoise(0.1),
            layers.Dense(8, kernel_initializer="he_normal"),
            layers.BatchNormalization(momentum=0.9),
            layers.PReLU(shared_axes=None, alpha_regularizer="l2"),
            layers.Dropout(0.25),
            layers.Dense(8),
            layers.LayerNormalization(),
            layers.LeakyReLU(0.2),
            layers.ELU(alpha=0.7),
            layers.ReLU(max_value=5.0),
            layers.Dense(3),
            layers.Softmax(),
            layers.Dense(1),
        ]
    )
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    path = tmp_path / "catalogue.ember"
    model.save(path)
    loaded = load_model(path)
    assert [type(layer).__name__ for layer in loaded.layers] == [
        type(layer).__name__ for layer in model.layers
    ]
    for a, b in zip(model.layers, loaded.layers):
        assert a.get_config() == b.get_config()
    for a, b in zip(model.weights, loaded.weights):
        assert a.name == b.name and a.trainable == b.trainable
        assert a.dtype == b.dtype and np.array_equal(a.data, b.data)
    bn = loaded.layers[3]
    assert np.array_equal(bn.moving_variance.data, model.layers[3].moving_variance.data)
    assert not np.allclose(bn.moving_variance.data, 1.0)  # trained statistics were saved
    assert np.array_equal(loaded.predict(x), model.predict(x))
    assert isinstance(loaded.layers[4].alpha_initializer, Constant)
    # Training continues identically from the checkpoint (same RNG state, same masks).
    state = ember.get_rng_state()  # both continue from the same generator state
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    ember.set_rng_state(state)
    loaded.fit(x, y, epochs=1, batch_size=16, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        assert np.array_equal(a, b)


def test_ops_normalize_is_one_node_and_keeps_float32():
    x = ember.tensor(_rng(1).normal(size=(8, 3)).astype(np.float32), requires_grad=True)
    bn = layers.BatchNormalization()
    out = bn(x, training=True)
    assert out.dtype == np.float32 and out._op == "normalize"
    assert set(map(id, out._parents[:1])) == {id(x)}
    assert ops.relu(out).dtype == np.float32
