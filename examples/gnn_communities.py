"""What the graph adds: a GCN against an MLP on a community graph with noisy node features.

A stochastic block model (``ember.datasets.graphs.stochastic_block_model``) draws 4
communities of 250 nodes; two nodes are linked with probability ``p_in`` inside a community
and ``p_out`` across. Each node also has 4 features: Gaussian noise (σ = 1) plus 1 on the
feature of its community — a weak hint: even knowing the exact distribution, the best
classifier of a node from its own features is right only ~55 % of the time (the Bayes rate,
computed by :func:`feature_bayes_accuracy`). Only 5 nodes per community are labelled (20 of
1000); both networks see the same labelled nodes and are scored on all the others.

* the MLP (4 → 16 ReLU → 4) classifies each node from its own features: it cannot beat the
  Bayes rate, and with 20 labels it stays below it;
* the 2-layer GCN (4 → 16 ReLU → 4, ``GCNConv``) classifies each node from the degree-weighted
  average of its own and its neighbours' features, twice: when most neighbours share the
  node's community, averaging over ~12 of them cancels much of the noise and keeps the signal.

The graph helps exactly as far as neighbours share labels (homophily). The script keeps the
mean degree at 12 and varies ``h``, the expected fraction of a node's neighbours inside its
community (``p_in = 12 h / 249``, ``p_out = 12 (1 - h) / 750``): from ``h = 0.9`` (p_in >>
p_out) down to ``h = 0.25``, where links ignore the communities (p_in ≈ p_out) and averaging
mixes the classes. Each setting is repeated with ``--draws`` draws of the labelled nodes and
initializations, and the mean test accuracy is reported.

Run from the repository root (``--quick`` is the short variant the tests run)::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python examples/gnn_communities.py
    OPENBLAS_NUM_THREADS=1 .venv/bin/python examples/gnn_communities.py --quick --plots /tmp/sbm
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

import ember
from ember import layers
from ember.datasets import graphs

KINDS = ("GCN", "MLP")
DEGREE = 12.0  # expected neighbours per node, the same in every setting
SIGNAL = 1.0  # the shift of a node's community feature (noise σ = 1)

FULL = {"community_size": 250, "communities": 4, "homophily": (0.9, 0.7, 0.5, 0.25),
        "labelled_per_class": 5, "draws": 3, "epochs": 200, "learning_rate": 0.01}  # fmt: skip
QUICK = {"community_size": 100, "communities": 4, "homophily": (0.9, 0.25),
         "labelled_per_class": 5, "draws": 1, "epochs": 100, "learning_rate": 0.01}  # fmt: skip


class GCN(ember.Model):
    """Two ``GCNConv`` layers over a fixed graph (``model(x)``: ``(N, F)`` to ``(N, classes)``
    logits); ``hidden(x)`` gives the first layer's output.

    Example:
        >>> edges = np.array([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> GCN(edges, 4, 3)(np.ones((3, 5), np.float32)).shape
        (3, 3)
    """

    def __init__(self, edge_index: np.ndarray, units: int, classes: int):
        super().__init__()
        self.edge_index = edge_index
        self.first = layers.GCNConv(units, activation="relu")
        self.second = layers.GCNConv(classes)

    def hidden(self, x):
        return self.first(x, self.edge_index)

    def call(self, x, training=False):
        return self.second(self.hidden(x), self.edge_index)


def mlp(features: int, units: int, classes: int) -> ember.Model:
    """The baseline: each node on its own features."""
    return ember.Sequential([
        layers.Input(shape=(features,)),
        layers.Dense(units, activation="relu"),
        layers.Dense(classes),
    ])


def block_probabilities(homophily: float, degree: float, size: int, communities: int):
    """``(p_in, p_out)`` giving each node ``degree`` neighbours on average, a fraction
    ``homophily`` of them in its own community.

    Example:
        >>> p_in, p_out = block_probabilities(0.9, 12.0, 250, 4)
        >>> round(p_in * 249, 6), round(p_out * 750, 6)  # expected neighbours in / out
        (10.8, 1.2)
    """
    if not 0.0 <= homophily <= 1.0:
        raise ValueError(f"block_probabilities: homophily must be in [0, 1], got {homophily}")
    p_in = degree * homophily / (size - 1)
    p_out = degree * (1.0 - homophily) / (size * (communities - 1))
    if max(p_in, p_out) > 1.0:
        raise ValueError(
            f"block_probabilities: degree {degree} with homophily {homophily} needs edge "
            f"probabilities above 1 (p_in {p_in:.3g}, p_out {p_out:.3g}); use bigger communities"
        )
    return p_in, p_out


def feature_bayes_accuracy(signal: float, classes: int) -> float:
    """The accuracy of the best classifier of a node from its own features: pick the largest
    feature, right with probability ``∫ φ(t - signal) Φ(t)^(classes - 1) dt`` (the community's
    feature beats the ``classes - 1`` others), integrated on a fine grid.

    Example:
        >>> round(feature_bayes_accuracy(0.0, 4), 4)  # no signal: chance
        0.25
        >>> round(feature_bayes_accuracy(1.0, 4), 3)
        0.552
    """
    from scipy.special import ndtr

    t = np.linspace(signal - 12.0, signal + 12.0, 24001)
    density = np.exp(-0.5 * (t - signal) ** 2) / np.sqrt(2 * np.pi)
    return float(np.sum(density * ndtr(t) ** (classes - 1)) * (t[1] - t[0]))


def pick_labelled(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """``per_class`` node ids of each class, drawn without replacement, sorted.

    Example:
        >>> pick_labelled(np.array([0, 1, 0, 1, 1, 0]), 2, np.random.default_rng(0)).shape
        (4,)
    """
    classes, counts = np.unique(labels, return_counts=True)
    if counts.min() < per_class:
        raise ValueError(f"pick_labelled: class {classes[counts.argmin()]} has {counts.min()} "
                         f"nodes, fewer than per_class = {per_class}")
    # a random key per node; the per_class smallest keys of each class are drawn
    keys = rng.random(labels.shape[0]) + labels.astype(np.float64) * 2
    order = np.argsort(keys)
    starts = np.searchsorted(labels[order], classes)
    return np.sort(order[(starts[:, None] + np.arange(per_class)).ravel()])


def train(kind: str, x, edge_index, labels, labelled, epochs: int, learning_rate: float,
          seed: int):
    """One network trained on the labelled nodes (the graph is one batch); returns the
    predicted class of every node and the model."""
    ember.manual_seed(seed)
    n, classes = labels.shape[0], int(labels.max()) + 1
    model = GCN(edge_index, 16, classes) if kind == "GCN" else mlp(x.shape[1], 16, classes)
    model.compile(optimizer=ember.optimizers.Adam(learning_rate=learning_rate),
                  loss=ember.losses.SparseCategoricalCrossentropy(from_logits=True))
    weights = np.zeros(n, np.float32)
    weights[labelled] = 1.0
    targets = np.where(weights > 0, labels, 0)  # the unlabelled nodes' labels stay unseen
    model.fit(x, targets, sample_weight=weights, batch_size=n, epochs=epochs, shuffle=False,
              verbose=0)
    return model.predict(x, batch_size=n).argmax(axis=1), model


def run(community_size: int, communities: int, homophily: Sequence[float],
        labelled_per_class: int, draws: int, epochs: int, learning_rate: float,
        seed: int = 0) -> dict:
    """Per homophily: the graph's statistics and each network's test accuracy per draw."""
    result: dict = {"settings": {}, "bayes_features": feature_bayes_accuracy(SIGNAL, communities)}
    sizes = (community_size,) * communities
    for h in homophily:
        p_in, p_out = block_probabilities(h, DEGREE, community_size, communities)
        x, edge_index, labels = graphs.stochastic_block_model(sizes, p_in, p_out, None, SIGNAL,
                                                              seed=seed)
        setting = {
            "p_in": p_in,
            "p_out": p_out,
            "edges": edge_index.shape[1] // 2,
            "same_community_edges": float((labels[edge_index[0]] == labels[edge_index[1]]).mean()),
        }
        for kind in KINDS:
            start, accuracies = time.perf_counter(), []
            for k in range(draws):
                labelled = pick_labelled(labels, labelled_per_class,
                                         np.random.default_rng(seed + k))
                test = np.setdiff1d(np.arange(labels.shape[0]), labelled)
                predicted, model = train(kind, x, edge_index, labels, labelled, epochs,
                                         learning_rate, seed + k)
                accuracies.append(float((predicted[test] == labels[test]).mean()))
                if kind == "GCN" and k == 0 and h == homophily[0]:
                    result["first"] = {"x": x, "labels": labels, "model": model}
            setting[kind] = {"accuracies": accuracies, "mean": float(np.mean(accuracies)),
                             "seconds": time.perf_counter() - start}
        result["settings"][h] = setting
    return result


def _pca_2d(array: np.ndarray) -> np.ndarray:
    centred = array - array.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T


def plot(result: dict, directory: str) -> list[Path]:
    """The nodes' raw features and the GCN's hidden features (first setting, first draw),
    each projected on its two principal components, coloured by community."""
    from ember import viz

    first = result["first"]
    hidden = first["model"].hidden(first["x"]).numpy()
    paths = []
    for name, values, title in (
        ("sbm_features.png", first["x"], "node features (PCA)"),
        ("sbm_gcn_hidden.png", hidden, "GCN's first layer (PCA)"),
    ):
        path = Path(directory) / name
        viz.scatter_2d(_pca_2d(values), first["labels"], title=title, path=path)
        paths.append(path)
    return paths


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the short variant (CI)")
    parser.add_argument("--homophily", type=float, nargs="+", default=None,
                        help="fractions of same-community neighbours (default "
                             f"{' '.join(map(str, FULL['homophily']))})")
    for name in ("community_size", "labelled_per_class", "draws", "epochs", "learning_rate"):
        kind = float if name == "learning_rate" else int
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None,
                            help=f"default {FULL[name]} ({QUICK[name]} with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plots", metavar="DIR", help="save the figures as PNG into DIR")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict:
    """Parse the command line, train both networks per setting, print the finding and return
    the numbers."""
    args = parse_args(argv)
    settings = dict(QUICK if args.quick else FULL)
    settings.update({k: v for k, v in vars(args).items() if k in settings and v is not None})
    r = run(**settings, seed=args.seed)
    n = settings["community_size"] * settings["communities"]
    labelled = settings["labelled_per_class"] * settings["communities"]
    print(f"  {settings['communities']} communities of {settings['community_size']} nodes, mean "
          f"degree {DEGREE:g}; {labelled} labelled nodes, accuracy on the other {n - labelled} "
          f"(mean of {settings['draws']} draw(s))")
    print(f"  {'h':>5} {'p_in':>8} {'p_out':>8} {'edges':>6} {'same':>6} {'GCN':>7} {'MLP':>7}")
    for h, s in r["settings"].items():
        print(f"  {h:>5.2f} {s['p_in']:>8.4f} {s['p_out']:>8.4f} {s['edges']:>6d} "
              f"{s['same_community_edges']:>6.3f} {s['GCN']['mean']:>7.3f} "
              f"{s['MLP']['mean']:>7.3f}")
    h0, h1 = settings["homophily"][0], settings["homophily"][-1]
    first, last = r["settings"][h0], r["settings"][h1]
    print(
        f"With {labelled} labelled nodes and node features whose Bayes accuracy is "
        f"{r['bayes_features']:.3f}, the GCN reaches {first['GCN']['mean']:.3f} test accuracy "
        f"against the MLP's {first['MLP']['mean']:.3f} when {first['same_community_edges']:.0%} "
        f"of the edges stay inside a community (h = {h0:g}, p_in {first['p_in']:.4f} vs p_out "
        f"{first['p_out']:.4f}); when the edges ignore the communities (h = {h1:g}) the GCN "
        f"scores {last['GCN']['mean']:.3f} against the MLP's {last['MLP']['mean']:.3f}: "
        "averaging over neighbours helps only when neighbours share the label."
    )
    if args.plots:
        r["figures"] = [str(p) for p in plot(r, args.plots)]
    return r


if __name__ == "__main__":
    main()
