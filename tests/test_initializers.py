"""Weight initializers: the statistics of large samples against the formulas (Glorot, He, LeCun,
random, truncated), exact structure (orthogonal, identity, sparse), names and classes, seeding,
dtype, and bad hyper-parameters (catalogue B9)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ember
from ember import initializers, layers

FAN_IN, FAN_OUT = 1000, 500  # unequal, so fan_in / fan_out / fan_avg give different answers
TRUNCATED_STD = 0.87962566103423978  # std of N(0, 1) cut at ±2


def _sample(name_or_init, shape=(FAN_IN, FAN_OUT), seed=0):
    ember.manual_seed(seed)
    return initializers.get(name_or_init)(shape)


# ------------------------------------------------------------------------------ statistics
@pytest.mark.parametrize(
    "name, limit",
    [
        ("glorot_uniform", math.sqrt(6 / (FAN_IN + FAN_OUT))),
        ("he_uniform", math.sqrt(6 / FAN_IN)),
        ("lecun_uniform", math.sqrt(3 / FAN_IN)),
    ],
)
def test_uniform_families_bounds_and_variance(name, limit):
    w = _sample(name).astype(np.float64)
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.999 * limit  # the whole interval is used
    assert w.var() == pytest.approx(limit**2 / 3, rel=0.02)  # variance of U(±a) is a²/3
    assert abs(w.mean()) < 0.01 * limit


def test_glorot_uniform_variance_is_2_over_fan_sum():
    w = _sample("glorot_uniform", (1000, 1000)).astype(np.float64)
    assert np.abs(w).max() <= math.sqrt(6 / 2000)
    assert w.var() == pytest.approx(2 / 2000, rel=0.02)


@pytest.mark.parametrize(
    "name, std",
    [
        ("glorot_normal", math.sqrt(2 / (FAN_IN + FAN_OUT))),
        ("he_normal", math.sqrt(2 / FAN_IN)),
        ("lecun_normal", math.sqrt(1 / FAN_IN)),
    ],
)
def test_normal_families_std_and_truncation(name, std):
    w = _sample(name).astype(np.float64)
    assert w.std() == pytest.approx(std, rel=0.02)
    # Keras' truncated normal: cut at 2 σ of the pre-correction distribution
    cut = 2 * std / TRUNCATED_STD
    assert np.abs(w).max() <= cut * (1 + 1e-6)
    assert np.abs(w).max() > 0.99 * cut


def test_convolution_kernels_use_the_receptive_field_in_both_fans():
    w = _sample("he_normal", (3, 3, 16, 64)).astype(np.float64)
    assert w.std() == pytest.approx(math.sqrt(2 / (9 * 16)), rel=0.02)
    w = _sample("glorot_uniform", (3, 3, 16, 64))
    assert np.abs(w).max() <= math.sqrt(6 / (9 * 16 + 9 * 64))


def test_random_and_truncated_normal_and_uniform():
    w = _sample(initializers.RandomNormal(mean=1.0, stddev=0.3)).astype(np.float64)
    assert w.mean() == pytest.approx(1.0, abs=0.003) and w.std() == pytest.approx(0.3, rel=0.02)
    w = _sample(initializers.RandomUniform(minval=-0.2, maxval=0.6)).astype(np.float64)
    assert w.min() >= -0.2 and w.max() <= 0.6 and w.mean() == pytest.approx(0.2, abs=0.002)
    w = _sample(initializers.TruncatedNormal(mean=0.5, stddev=0.1)).astype(np.float64)
    assert np.abs(w - 0.5).max() <= 0.2 + 1e-7
    assert w.std() == pytest.approx(0.1 * TRUNCATED_STD, rel=0.02)  # Keras: no correction here
    defaults = _sample("random_normal").astype(np.float64)
    assert defaults.std() == pytest.approx(0.05, rel=0.02)  # Keras' default stddev


def test_constant_families():
    np.testing.assert_array_equal(_sample("zeros", (3, 4)), np.zeros((3, 4)))
    np.testing.assert_array_equal(_sample("ones", (3, 4)), np.ones((3, 4)))
    np.testing.assert_array_equal(
        initializers.Constant(0.25)((2, 3)), np.full((2, 3), 0.25, np.float32)
    )
    np.testing.assert_array_equal(_sample("constant", (2,)), [0.0, 0.0])


# ------------------------------------------------------------------------------ structure
@pytest.mark.parametrize("shape", [(500, 300), (300, 500), (400, 400), (3, 3, 8, 16)])
def test_orthogonal(shape):
    w = _sample("orthogonal", shape).astype(np.float64)
    flat = w.reshape(-1, shape[-1])
    if flat.shape[0] >= flat.shape[1]:
        np.testing.assert_allclose(flat.T @ flat, np.eye(flat.shape[1]), atol=1e-5)
    else:
        np.testing.assert_allclose(flat @ flat.T, np.eye(flat.shape[0]), atol=1e-5)
    scaled = _sample(initializers.Orthogonal(gain=2.0), shape).astype(np.float64)
    np.testing.assert_allclose(scaled, 2 * w, rtol=1e-6)  # same seed, same matrix, times gain


def test_identity():
    np.testing.assert_array_equal(_sample("identity", (3, 3)), np.eye(3))
    np.testing.assert_array_equal(initializers.Identity(gain=0.5)((2, 3)), 0.5 * np.eye(2, 3))
    with pytest.raises(ValueError, match=r"Identity needs a 2-D shape, got \(2, 2, 2\)"):
        initializers.Identity()((2, 2, 2))


@pytest.mark.parametrize("sparsity", [0.9, 0.5, 0.25])
def test_sparse_zeros_per_unit_and_nonzero_std(sparsity):
    init = initializers.Sparse(sparsity=sparsity, stddev=0.02)
    w = _sample(init, (FAN_IN, 200)).astype(np.float64)
    zeros_per_column = (w == 0).sum(axis=0)
    assert np.all(zeros_per_column == round(sparsity * FAN_IN))
    nonzero = w[w != 0]
    assert nonzero.std() == pytest.approx(0.02, rel=0.05)
    assert abs(nonzero.mean()) < 0.001  # about 7 standard errors of the mean
    # the zero positions are random per unit, not the same rows in every column
    assert len({tuple(np.flatnonzero(w[:, j] == 0)) for j in range(200)}) == 200
    rows_zero_fraction = (w == 0).mean(axis=1)  # every input is zeroed about as often
    assert abs(rows_zero_fraction.mean() - sparsity) < 1e-9 and rows_zero_fraction.std() < 0.1


def test_sparse_edge_cases_and_shapes():
    assert np.all(_sample(initializers.Sparse(sparsity=1.0), (10, 3)) == 0)
    assert np.all(_sample(initializers.Sparse(sparsity=0.0), (10, 3)) != 0)
    w = _sample(initializers.Sparse(sparsity=0.5), (3, 3, 4, 8))  # fan_in 36 per output channel
    assert np.all((w.reshape(36, 8) == 0).sum(axis=0) == 18)
    # 0.33 · 10 = 3.3 → 3 zeros (rounded; torch.nn.init.sparse_ would take the ceiling, 4)
    w = _sample(initializers.Sparse(sparsity=0.33), (10, 5))
    assert np.all((w == 0).sum(axis=0) == 3)
    w = _sample("sparse", (100, 16))  # defaults: sparsity 0.9, stddev 0.01
    assert np.all((w == 0).sum(axis=0) == 90)
    with pytest.raises(ValueError, match=r"Sparse needs a kernel shape"):
        initializers.Sparse()((5,))


def test_sparse_initializer_in_a_dense_layer():
    ember.manual_seed(0)
    dense = layers.Dense(8, kernel_initializer=initializers.Sparse(sparsity=0.75))
    dense(np.zeros((2, 20), np.float32))
    assert np.all((dense.kernel.data == 0).sum(axis=0) == 15)


# ------------------------------------------------------------------------------ API
ALL_NAMES = {
    "zeros": initializers.Zeros,
    "ones": initializers.Ones,
    "constant": initializers.Constant,
    "random_normal": initializers.RandomNormal,
    "random_uniform": initializers.RandomUniform,
    "truncated_normal": initializers.TruncatedNormal,
    "variance_scaling": initializers.VarianceScaling,
    "glorot_uniform": initializers.GlorotUniform,
    "glorot_normal": initializers.GlorotNormal,
    "he_uniform": initializers.HeUniform,
    "he_normal": initializers.HeNormal,
    "lecun_uniform": initializers.LeCunUniform,
    "lecun_normal": initializers.LeCunNormal,
    "orthogonal": initializers.Orthogonal,
    "identity": initializers.Identity,
    "sparse": initializers.Sparse,
}
RANDOM = sorted(set(ALL_NAMES) - {"zeros", "ones", "constant", "identity"})


@pytest.mark.parametrize("name", sorted(ALL_NAMES))
def test_reachable_by_string_and_class_float32_by_default(name):
    cls = ALL_NAMES[name]
    by_name = initializers.get(name)
    assert type(by_name) is cls
    assert type(initializers.get(cls)) is cls
    instance = cls()
    assert initializers.get(instance) is instance
    w = by_name((6, 4))
    assert w.shape == (6, 4) and w.dtype == np.float32
    assert by_name((6, 4), dtype="float64").dtype == np.float64
    again = initializers.deserialize(initializers.serialize(instance))
    assert type(again) is cls and again.get_config() == instance.get_config()


@pytest.mark.parametrize("name", RANDOM)
def test_same_seed_same_values(name):
    a = _sample(name, (40, 30), seed=7)
    b = _sample(name, (40, 30), seed=7)
    c = _sample(name, (40, 30), seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_keras_class_spellings():
    assert initializers.LecunNormal is initializers.LeCunNormal
    assert initializers.LecunUniform is initializers.LeCunUniform


def test_serialize_keeps_hyper_parameters():
    init = initializers.Sparse(sparsity=0.8, stddev=0.05)
    again = initializers.deserialize(initializers.serialize(init))
    assert again.sparsity == 0.8 and again.stddev == 0.05
    vs = initializers.VarianceScaling(scale=2.0, mode="fan_out", distribution="untruncated_normal")
    again = initializers.deserialize(initializers.serialize(vs))
    assert again.get_config() == {
        "scale": 2.0,
        "mode": "fan_out",
        "distribution": "untruncated_normal",
    }


# ------------------------------------------------------------------------------ catalogue B9
@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: initializers.Sparse(sparsity=1.5), ValueError, r"Sparse: sparsity must be in \["),
        (lambda: initializers.Sparse(sparsity=-0.1), ValueError, "Sparse: sparsity must be in"),
        (lambda: initializers.Sparse(stddev=0), ValueError, "Sparse: stddev must be a positive"),
        (lambda: initializers.Sparse(sparsity="half"), TypeError, "must be a real number"),
        (lambda: initializers.RandomNormal(stddev=-1.0), ValueError, "RandomNormal: stddev must"),
        (lambda: initializers.TruncatedNormal(stddev=-0.1), ValueError, "TruncatedNormal: stddev"),
        (lambda: initializers.RandomUniform(0.5, -0.5), ValueError, "minval must be below maxval"),
        (lambda: initializers.Constant(float("nan")), ValueError, "Constant: value must be finite"),
        (lambda: initializers.Orthogonal(gain=float("inf")), ValueError, "gain must be finite"),
        (lambda: initializers.VarianceScaling(scale=-2), ValueError, "scale must be a positive"),
        (lambda: initializers.VarianceScaling(mode="fan_mid"), ValueError, "mode must be one of"),
        (
            lambda: initializers.VarianceScaling(distribution="cauchy"),
            ValueError,
            "distribution must be one of",
        ),
    ],
)
def test_B9_bad_hyper_parameters(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_B9_unknown_names_suggest_the_closest():
    for typo, closest in [
        ("glorot_unifrom", "glorot_uniform"),
        ("he_normall", "he_normal"),
        ("lecun_norml", "lecun_normal"),
        ("spars", "sparse"),
        ("orthogonl", "orthogonal"),
    ]:
        with pytest.raises(ValueError, match=rf"unknown initializer '{typo}'\. Did you mean "):
            initializers.get(typo)
        try:
            initializers.get(typo)
        except ValueError as err:
            assert f"Did you mean '{closest}'?" in str(err)
    with pytest.raises(TypeError, match="initializer must be a name or an Initializer"):
        initializers.get(3)
