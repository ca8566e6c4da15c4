"""ember.ensemble: members from different seeds, averaged / voted predictions, best member."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import ensemble, layers, models
from ember.datasets import synthetic

COMPILE = {
    "optimizer": "adam",
    "loss": "sparse_categorical_crossentropy",
    "metrics": ["accuracy"],
}


def _build():
    return models.Sequential(
        [
            layers.Input(shape=(2,)),
            layers.Dense(6, activation="tanh"),
            layers.Dense(3, activation="softmax"),
        ]
    )


@pytest.fixture(scope="module")
def problem():
    x, y = synthetic.blobs(
        n_samples=150, noise=1.2, centers=((-1.5, 0.0), (1.5, 0.0), (0.0, 1.5)), seed=0
    )
    x_val, y_val = synthetic.blobs(
        n_samples=90, noise=1.2, centers=((-1.5, 0.0), (1.5, 0.0), (0.0, 1.5)), seed=1
    )
    ens = ensemble.train_ensemble(
        _build,
        x,
        y,
        n_members=4,
        compile_kwargs=COMPILE,
        fit_kwargs={"epochs": 3, "batch_size": 16},
    )
    return x, y, x_val, y_val, ens


def test_members_come_from_their_own_seeds(problem):
    x, y, _, _, ens = problem
    assert len(ens) == 4 and ens.seeds == [0, 1, 2, 3]
    assert len(ens.histories) == 4 and all(len(h.epoch) == 3 for h in ens.histories)
    weights = [m.get_weights() for m in ens.members]
    for i in range(4):
        for j in range(i + 1, 4):
            assert not np.array_equal(weights[i][0], weights[j][0])
    # reproducible: the same seed rebuilds the same member bit-exactly
    again = ensemble.train_ensemble(
        _build, x, y, seeds=[2], compile_kwargs=COMPILE, fit_kwargs={"epochs": 3, "batch_size": 16}
    )
    assert all(np.array_equal(a, b) for a, b in zip(again.members[0].get_weights(), weights[2]))


def test_mean_prediction_is_exactly_the_mean_of_the_members(problem):
    _, _, x_val, _, ens = problem
    each = [m.predict(x_val) for m in ens.members]
    mean = ens.predict(x_val)
    assert mean.dtype == np.float32 and mean.shape == (90, 3)
    assert np.array_equal(mean, np.mean(np.stack(each), axis=0, dtype=np.float32))
    np.testing.assert_allclose(mean, sum(e.astype(np.float64) for e in each) / 4, rtol=1e-6)
    assert not np.allclose(mean, each[0])  # the members really differ


def test_vote_is_the_majority_class(problem):
    _, _, x_val, _, ens = problem
    votes = np.stack([m.predict(x_val).argmax(axis=1) for m in ens.members])
    expected = [np.bincount(votes[:, i], minlength=3).argmax() for i in range(votes.shape[1])]
    got = ens.predict(x_val, method="vote")
    assert got.dtype == np.int64 and np.array_equal(got, expected)


def test_vote_counts_and_ties_by_hand():
    # 3 members, 2 samples, 3 classes; sample 0: classes 2, 2, 0 -> 2; sample 1: 0, 1, 2 -> tie -> 0
    outputs = np.array(
        [
            [[0.1, 0.2, 0.7], [0.8, 0.1, 0.1]],
            [[0.2, 0.1, 0.7], [0.1, 0.8, 0.1]],
            [[0.6, 0.3, 0.1], [0.1, 0.1, 0.8]],
        ],
        dtype=np.float32,
    )
    assert ensemble._vote(outputs).tolist() == [2, 0]
    # a single sigmoid column: threshold 0.5
    binary = np.array([[[0.9], [0.2]], [[0.4], [0.3]], [[0.7], [0.6]]], dtype=np.float32)
    assert ensemble._vote(binary).tolist() == [1, 0]


def test_best_picks_the_member_with_the_best_validation_score(problem):
    _, _, x_val, y_val, ens = problem
    scores = [m.evaluate(x_val, y_val, verbose=0, return_dict=True) for m in ens.members]
    accuracies = [s["accuracy"] for s in scores]
    losses = [s["loss"] for s in scores]
    assert len(set(losses)) == 4 and len(set(accuracies)) > 1  # a real choice to make
    assert ens.best(x_val, y_val, monitor="accuracy") is ens.members[int(np.argmax(accuracies))]
    assert ens.best(x_val, y_val) is ens.members[int(np.argmin(losses))]  # default: loss, min
    assert ens.best(x_val, y_val, monitor="loss", mode="max") is ens.members[int(np.argmax(losses))]
    with pytest.raises(ValueError, match="monitor='auc' is not reported.*loss, accuracy"):
        ens.best(x_val, y_val, monitor="auc")


def test_evaluate_scores_the_averaged_prediction(problem):
    _, _, x_val, y_val, ens = problem
    logs = ens.evaluate(x_val, y_val)
    mean = ens.predict(x_val).astype(np.float64)
    assert logs["loss"] == pytest.approx(-np.mean(np.log(mean[np.arange(90), y_val])), rel=1e-5)
    assert logs["accuracy"] == pytest.approx(np.mean(mean.argmax(axis=1) == y_val))
    assert len(ens.evaluate_members(x_val, y_val)) == 4


def test_bad_arguments():
    x, y = synthetic.blobs(n_samples=20, seed=0)
    with pytest.raises(ValueError, match="n_members must be an integer >= 1, got 0"):
        ensemble.train_ensemble(_build, x, y, n_members=0, compile_kwargs=COMPILE)
    with pytest.raises(ValueError, match="n_members must be an integer >= 1"):
        ensemble.train_ensemble(_build, x, y, n_members=2.5, compile_kwargs=COMPILE)
    with pytest.raises(ValueError, match="seeds must contain at least one seed"):
        ensemble.train_ensemble(_build, x, y, seeds=[], compile_kwargs=COMPILE)
    with pytest.raises(ValueError, match="seeds must be distinct"):
        ensemble.train_ensemble(_build, x, y, seeds=[1, 1], compile_kwargs=COMPILE)
    with pytest.raises(ValueError, match="not compiled; pass compile_kwargs"):
        ensemble.train_ensemble(_build, x, y, n_members=1)
    with pytest.raises(TypeError, match="build_fn must return an ember.models.Model"):
        ensemble.train_ensemble(lambda: "model", x, y, n_members=1, compile_kwargs=COMPILE)
    shared = _build()
    with pytest.raises(ValueError, match="must return a new model on every call"):
        ensemble.train_ensemble(
            lambda: shared, x, y, n_members=2, compile_kwargs=COMPILE, fit_kwargs={"epochs": 1}
        )
    with pytest.raises(ValueError, match="optimizer'\\] must be a name"):
        ensemble.train_ensemble(
            _build, x, y, compile_kwargs={**COMPILE, "optimizer": ember.optimizers.Adam()}
        )
    with pytest.raises(ValueError, match="Ensemble: needs at least one member"):
        ensemble.Ensemble([])
    with pytest.raises(TypeError, match="member 0 must be an ember.models.Model"):
        ensemble.Ensemble([object()])
    ens = ensemble.Ensemble([_build()])
    with pytest.raises(ValueError, match="method must be 'mean' or 'vote', got 'median'"):
        ens.predict(x, method="median")
    with pytest.raises(RuntimeError, match="members must be compiled"):
        ens.evaluate(x, y)
