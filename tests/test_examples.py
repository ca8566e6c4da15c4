"""The demonstrations in ``examples/``: each test runs a demo exactly as ``python
examples/<name>.py`` does (its ``__main__`` block, seeded, default settings), then asserts the
finding on the numbers the script computed and checks that the printed sentence reports them.
The parity demo's full run trains many networks, so its CI test calls ``main`` on fewer sizes
and the full script run is marked slow.

The scripts are loaded from their file paths (``examples/`` is not a package).
"""

from __future__ import annotations

import math
import runpy

import numpy as np
import pytest
from _helpers import EXAMPLES
from _helpers import load_example as _load


def _run(name: str, capsys) -> tuple[dict, dict, str]:
    """Run ``examples/<name>.py`` as a script; returns its result ``r``, its globals and the
    printed text."""
    namespace = runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="__main__")
    return namespace["r"], namespace, capsys.readouterr().out


def test_xor_needs_a_hidden_layer(capsys):
    r, _, out = _run("xor", capsys)
    # No line separates XOR: 3 of 4 points is the ceiling, and the random search reaches it.
    assert r["best_random_line_accuracy"] == 0.75
    assert r["linear_accuracy"] <= 0.75
    assert r["mlp_accuracy"] == 1.0
    assert f"reaches {r['linear_accuracy']:.2f}" in out and "network reaches 1.00" in out


def test_parity_deep_xor_tree_vs_shallow():
    r = _load("parity").main(ns=(2, 3, 4, 8), train_ns=(3, 4))
    for n, v in r.items():
        assert v["deep"]["accuracy"] == 1.0 and v["shallow"]["accuracy"] == 1.0, n
        assert v["deep"]["hidden_layers"] == math.ceil(math.log2(n))
        assert v["shallow"]["hidden_units"] == n
        assert v["shallow"]["nonzero_weights"] == n * n + 2 * n - 1
        assert v["shallow"]["parameters"] == (n + 1) ** 2
    # n = 8: 4 + 2 + 1 XOR blocks of 2 units; the tree needs fewer connections than the sawtooth
    assert r[8]["deep"]["hidden_units"] == 14
    assert r[8]["deep"]["nonzero_weights"] == 49
    assert r[8]["shallow"]["nonzero_weights"] == 79
    # A width-1 hidden layer is a linear classifier, so a trained net needs 2..n units.
    for n in (3, 4):
        assert r[n]["trained_shallow_width"] is not None
        assert 2 <= r[n]["trained_shallow_width"] <= n


@pytest.mark.slow
def test_parity_script(capsys):
    r, _, out = _run("parity", capsys)
    assert r[16]["deep"]["nonzero_weights"] == 105
    assert r[16]["shallow"]["nonzero_weights"] == 287
    assert all(v["deep"]["accuracy"] == v["shallow"]["accuracy"] == 1.0 for v in r.values())
    assert "105 non-zero weights" in out


def test_blobs_hand_set_vs_learned(capsys):
    r, _, out = _run("blobs", capsys)
    assert r["hand_accuracy"] > 0.9
    assert r["learned_accuracy"] > 0.9
    assert abs(r["hand_accuracy"] - r["learned_accuracy"]) < 0.02
    assert r["angle_degrees"] < 10.0
    assert r["midpoint_distance"] < 0.1
    np.testing.assert_allclose(r["w_hand"], [2.5, 1.5])
    assert r["b_hand"] == pytest.approx(-1.0)
    assert f"differ by {r['angle_degrees']:.1f}°" in out


def test_perceptron_learns_and_or_but_never_xor(capsys):
    r, mod, out = _run("perceptron", capsys)
    for gate in ("AND", "OR"):
        assert r[gate]["first_error_free_epoch"] is not None
        assert r[gate]["first_error_free_epoch"] <= 10
        w, b = r[gate]["weights"], r[gate]["bias"]
        assert np.array_equal((mod["X"] @ w + b >= 0).astype(np.float32), mod["TARGETS"][gate])
    xor = r["XOR"]
    assert xor["first_error_free_epoch"] is None
    assert len(xor["errors_per_epoch"]) == 100
    assert min(xor["errors_per_epoch"]) >= 1
    # The step's gradient is exactly zero, so backprop cannot train a perceptron.
    assert r["step_gradient_norm"] == 0.0
    assert "XOR is never error-free in 100 epochs" in out


def test_vanishing_gradients_sigmoid_vs_relu_he_vs_batchnorm(capsys):
    r, _, out = _run("vanishing_gradients", capsys)
    sigmoid = r["sigmoid"]["norms"]
    assert len(sigmoid) == 10
    assert r["sigmoid"]["first_over_last"] < 1e-3
    assert np.all(np.diff(sigmoid) > 0)  # shrinks at every layer going back towards the input
    for kind in ("relu_he", "sigmoid_bn", "relu_bn"):
        assert 1e-2 < r[kind]["first_over_last"] < 1e2, kind
        norms = r[kind]["norms"]
        assert norms.max() / norms.min() < 1e2, kind
    assert f"sigmoid (Glorot) {r['sigmoid']['first_over_last']:.2g}" in out


def test_learning_rates_too_small_good_too_large(capsys):
    r, _, out = _run("learning_rates", capsys)
    small, good, large = r["too_small"], r["good"], r["too_large"]
    assert small["learning_rate"] < good["learning_rate"] < r["critical_learning_rate"]
    assert large["learning_rate"] > r["critical_learning_rate"]
    # too small: still far from the noise floor (σ = 0.1 → MSE ≈ 0.01); good: at it
    assert small["final_loss"] > 0.3 * small["first_loss"]
    assert good["final_loss"] < 0.02
    assert small["final_loss"] > 50 * good["final_loss"]
    # too large: diverges
    assert large["final_loss"] > 100 * large["first_loss"]
    assert f"-> {good['final_loss']:.3g}" in out


def test_momentum_beats_plain_sgd_on_ill_conditioned_quadratic(capsys):
    r, _, out = _run("momentum", capsys)
    assert r["learning_rate"] == 0.01
    # lr · 100 = 1 zeroes w₂ in one step; w₁ then shrinks by 0.99 per step: f = ½ · 0.99^(2k).
    expected_sgd = math.ceil(math.log(2e-6) / (2 * math.log(0.99)))
    assert r["sgd_steps"] == expected_sgd
    assert r["momentum_steps"] is not None
    assert r["momentum_steps"] < r["sgd_steps"] / 2
    assert r["momentum_steps"] < r["sgd_best_lr_steps"] / 2
    assert f"needs {r['sgd_steps']} steps" in out


def test_adagrad_stalls_where_rmsprop_keeps_moving(capsys):
    r, _, out = _run("adagrad_vs_rmsprop", capsys)
    ada, rms = r["Adagrad"], r["RMSprop"]
    assert ada["final_loss"] > 10 * rms["final_loss"]
    assert ada["final_loss"] > 0.4 * ada["initial_loss"]  # barely moved from the start
    assert ada["effective_step"].max() < rms["effective_step"].min() / 10
    assert ada["tail_distance"] < rms["tail_distance"] / 10
    assert f"Adagrad ends at loss {ada['final_loss']:.3g}" in out


def test_early_stopping_restores_the_best_epoch(capsys):
    r, _, out = _run("early_stopping", capsys)
    curve = r["val_loss_curve"]
    assert r["best_epoch"] == int(np.argmin(curve)) + 1
    assert r["stopped_epoch"] == r["best_epoch"] + 10 == r["epochs_run"]
    assert r["epochs_run"] < r["full_epochs"]
    assert curve[-1] > r["best_val_loss"]
    # restore_best_weights gives back exactly the best epoch's validation loss
    assert r["restored_val_loss"] == pytest.approx(r["best_val_loss"], rel=1e-5)
    # the network memorizes its 50 points, and overfits: val and test losses end far higher
    assert r["full_final_train_loss"] < 0.01
    assert r["full_final_val_loss"] > 2 * r["best_val_loss"]
    assert r["test_loss"] < 0.5 * r["full_test_loss"]
    # the validation curve is printed, one line per epoch
    assert out.count("val_loss") >= r["epochs_run"]


def test_local_minima_and_ensemble_beats_average_member(capsys):
    r, _, out = _run("local_minima_ensemble", capsys)
    train = np.array(r["member_train_loss"])
    assert train.max() - train.min() > 0.1  # different seeds, different minima
    assert r["relative_weight_distance"] > 0.5
    assert r["ensemble_test_loss"] < r["mean_member_test_loss"]
    assert r["ensemble_test_accuracy"] > r["mean_member_test_accuracy"] + 0.05
    assert f"test accuracy {r['ensemble_test_accuracy']:.3f}" in out


def test_convnet_example_and_cli_train_the_same_model(tmp_path):
    """examples/fashion_mnist_convnet.py and ``ember train --model convnet`` (same batch size,
    no validation split) build, seed and train identically — so one measured run stands for
    both. Checked on the bundled digits (a real convnet on (8, 8, 1) images), 4 epochs."""
    from ember import cli

    example = _load("fashion_mnist_convnet")
    result = example.main("digits", "simple", epochs=4, batch_size=128, verbose=0)
    output = tmp_path / "digits_convnet.ember"
    code = cli.main(
        ["train", "--dataset", "digits", "--model", "convnet", "--epochs", "4",
         "--batch-size", "128", "--validation-split", "0", "--schedule", "cosine",
         "--learning-rate", str(example.RECIPES["simple"]["learning_rate"]), "--verbose", "0",
         "--output", str(output)]
    )  # fmt: skip
    assert code == 0
    import ember

    model = ember.models.load_model(output)
    (_, _), (x_test, y_test) = example.load("digits", None)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    assert accuracy == result["accuracy"]
    assert result["accuracy"] > 0.8
