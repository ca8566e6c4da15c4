"""Semi-supervised node classification: Zachary's karate club from one labelled member per side.

In 1977 W. Zachary recorded which of the 34 members of a university karate club met outside
the club (78 friendships). The club then split in two: members followed either the instructor
("Mr. Hi", node 0) or the administrator ("Officer", node 33). Can the friendships alone tell
who went where?

A graph neural network updates each node's features from its neighbours'. A graph
convolution (GCN, Kipf & Welling 2017) computes ``Â X W``, with ``Â`` the adjacency (plus
self-loops) normalized by the degrees: each member's new features are a weighted average of
its own and its friends' transformed features. With one-hot node features (each member only
knows "I am member i"), two layers give each member a mixture of what the members within two
hops are — members in the same dense group of friends end up with similar vectors.

The setting is the extreme of semi-supervised learning: ONLY the instructor (label 0) and the
administrator (label 1) are labelled. The loss is computed on those two nodes (``fit`` with
``sample_weight`` 1 on them, 0 elsewhere, the whole graph as one batch), and the accuracy is
measured on the other 32 members, whose labels are never shown to the model (their training
targets are set to 0 and weighted 0). Compared:

* a 2-layer GCN (16 hidden units, ReLU);
* a 2-layer graph attention network (GAT: 2 heads of 8 units, ELU; each member weighs its
  friends with learned attention);
* a 2-layer GraphSAGE (16 units, mean over the friends plus a separate weight for oneself);
* an MLP on the same one-hot features (no edges): it cannot say anything about an unlabelled
  member, whose one-hot input it has never seen — chance;
* a rule with no learning: join the leader fewer friendships away (ties undecided).

Each network is trained from ``--inits`` initializations (seed, seed + 1, ...); the script
prints the accuracy of each and their mean, and the members the GCN gets wrong.

Run from the repository root (``--quick`` is the short variant the tests run)::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python examples/gnn_karate.py
    OPENBLAS_NUM_THREADS=1 .venv/bin/python examples/gnn_karate.py --quick --plots /tmp/karate
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

LEADERS = (0, 33)  # the instructor (faction 0) and the administrator (faction 1)
KINDS = ("GCN", "GAT", "GraphSAGE", "MLP (no edges)")

FULL = {"epochs": 200, "inits": 10, "learning_rate": 0.01}
QUICK = {"epochs": 100, "inits": 1, "learning_rate": 0.01}


class NodeClassifier(ember.Model):
    """Two graph layers over a fixed graph, called on the node features alone: ``model(x)``
    with ``x`` ``(N, F)`` gives ``(N, classes)`` logits. The ``edge_index`` is held by the
    model, so ``fit``/``predict`` see the nodes as the samples of one batch.

    Example:
        >>> edge_index, _ = graphs.karate_club()
        >>> NodeClassifier(edge_index, "GAT")(np.eye(34, dtype=np.float32)).shape
        (34, 2)
    """

    def __init__(self, edge_index: np.ndarray, kind: str, classes: int = 2):
        super().__init__()
        self.edge_index = edge_index
        self.kind = kind
        if kind == "GCN":
            self.first = layers.GCNConv(16, activation="relu")
            self.second = layers.GCNConv(classes)
        elif kind == "GAT":
            self.first = layers.GATConv(8, heads=2, activation="elu")
            self.second = layers.GATConv(classes)
        elif kind == "GraphSAGE":
            self.first = layers.SAGEConv(16, activation="relu")
            self.second = layers.SAGEConv(classes)
        elif kind == "MLP (no edges)":
            self.first = layers.Dense(16, activation="relu")
            self.second = layers.Dense(classes)
        else:
            raise ValueError(f"NodeClassifier: kind must be one of {KINDS}, got {kind!r}")

    def call(self, x, training=False):
        if self.kind == "MLP (no edges)":
            return self.second(self.first(x))
        return self.second(self.first(x, self.edge_index), self.edge_index)


def training_targets(labels: np.ndarray, labelled: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The targets and sample weights ``fit`` sees: the true label and weight 1 on the labelled
    nodes; 0 and weight 0 elsewhere (the other labels never enter training).

    Example:
        >>> y, w = training_targets(np.array([1, 1, 0, 1]), [0, 2])
        >>> y.tolist(), w.tolist()
        ([1, 0, 0, 0], [1.0, 0.0, 1.0, 0.0])
    """
    weights = np.zeros(labels.shape[0], np.float32)
    weights[list(labelled)] = 1.0
    return np.where(weights > 0, labels, 0), weights


def nearest_leader(edge_index: np.ndarray, num_nodes: int, leaders: Sequence[int]) -> np.ndarray:
    """For each node, the index of the leader fewest edges away (breadth-first search), or -1
    where two leaders are equally near.

    Example:
        >>> path = np.array([[0, 1, 1, 2, 2, 3, 3, 4], [1, 0, 2, 1, 3, 2, 4, 3]])  # 0-1-2-3-4
        >>> nearest_leader(path, 5, [0, 4]).tolist()
        [0, 0, -1, 1, 1]
    """
    from scipy.sparse import csr_array
    from scipy.sparse.csgraph import shortest_path

    adjacency = csr_array((np.ones(edge_index.shape[1]), tuple(edge_index)), (num_nodes,) * 2)
    hops = shortest_path(adjacency, unweighted=True, indices=list(leaders))
    nearest = hops.argmin(axis=0)
    tied = (hops == hops.min(axis=0)).sum(axis=0) > 1
    return np.where(tied, -1, nearest)


def train(kind: str, edge_index: np.ndarray, labels: np.ndarray, epochs: int,
          learning_rate: float, seed: int) -> tuple[np.ndarray, NodeClassifier]:
    """Train one network on the two leaders' labels; returns its predictions for all nodes."""
    ember.manual_seed(seed)
    n = labels.shape[0]
    x = np.eye(n, dtype=np.float32)  # one-hot features: a node knows only who it is
    model = NodeClassifier(edge_index, kind)
    model.compile(optimizer=ember.optimizers.Adam(learning_rate=learning_rate),
                  loss=ember.losses.SparseCategoricalCrossentropy(from_logits=True))
    targets, weights = training_targets(labels, LEADERS)
    # The whole graph is one batch, in node order: the edges refer to the node ids.
    model.fit(x, targets, sample_weight=weights, batch_size=n, epochs=epochs, shuffle=False,
              verbose=0)
    return model.predict(x, batch_size=n).argmax(axis=1), model


def run(epochs: int, inits: int, learning_rate: float, seed: int = 0) -> dict:
    """Every network from ``inits`` initializations; accuracies on the 32 unlabelled members."""
    edge_index, labels = graphs.karate_club()
    others = np.setdiff1d(np.arange(labels.shape[0]), LEADERS)
    result: dict = {"kinds": {}}
    for kind in KINDS:
        start = time.perf_counter()
        accuracies, first = [], None
        for k in range(inits):
            predicted, _ = train(kind, edge_index, labels, epochs, learning_rate, seed + k)
            accuracies.append(float((predicted[others] == labels[others]).mean()))
            first = predicted if first is None else first
        result["kinds"][kind] = {
            "accuracies": accuracies,
            "mean_accuracy": float(np.mean(accuracies)),
            "wrong_nodes": others[first[others] != labels[others]].tolist(),
            "predictions": first.tolist(),
            "seconds": time.perf_counter() - start,
        }
    rule = nearest_leader(edge_index, labels.shape[0], LEADERS)[others]
    result["nearest_leader"] = {
        "right": int((rule == labels[others]).sum()),
        "tied": int((rule == -1).sum()),
        "wrong": int(((rule != -1) & (rule != labels[others])).sum()),
    }
    result.update(edge_index=edge_index, labels=labels, num_unlabelled=int(others.size))
    return result


def plot(result: dict, directory: str, seed: int) -> list[Path]:
    """The club drawn with networkx's spring layout, coloured by the GCN's prediction; the two
    leaders are squares, the members it gets wrong are ringed in red."""
    import networkx as nx
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure

    from ember import viz

    edges, labels = result["edge_index"], result["labels"]
    graph = nx.Graph(edges.T.tolist())
    layout = nx.spring_layout(graph, seed=seed)
    xy = np.array([layout[i] for i in range(labels.shape[0])])
    predicted = np.array(result["kinds"]["GCN"]["predictions"])
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    ax.add_collection(LineCollection(xy[edges.T], colors="0.75", linewidths=0.6, zorder=0))
    colours = np.array(["tab:blue", "tab:orange"])[predicted]
    ax.scatter(xy[:, 0], xy[:, 1], c=colours, s=80, zorder=1)
    leaders = list(LEADERS)
    ax.scatter(xy[leaders, 0], xy[leaders, 1], c=colours[leaders], s=220, marker="s", zorder=2,
               edgecolors="black")
    wrong = result["kinds"]["GCN"]["wrong_nodes"]
    ax.scatter(xy[wrong, 0], xy[wrong, 1], s=260, facecolors="none", edgecolors="red",
               linewidths=2, zorder=3)
    for i, (a, b) in enumerate(xy):
        ax.annotate(str(i), (a, b), fontsize=6, ha="center", va="center", zorder=4)
    ax.set_title("Karate club: GCN's prediction from two labels (squares); red: wrong")
    ax.set_axis_off()
    return [viz.save_figure(fig, Path(directory) / "karate_gcn.png")]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the short variant (CI)")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"default {FULL['epochs']} ({QUICK['epochs']} with --quick)")
    parser.add_argument("--inits", type=int, default=None,
                        help=f"initializations per network, default {FULL['inits']} "
                             f"({QUICK['inits']} with --quick)")
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plots", metavar="DIR", help="save the figure as PNG into DIR")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict:
    """Parse the command line, train the networks, print the finding and return the numbers."""
    args = parse_args(argv)
    settings = dict(QUICK if args.quick else FULL)
    settings.update({k: v for k, v in vars(args).items() if k in settings and v is not None})
    r = run(**settings, seed=args.seed)
    n = r["num_unlabelled"]
    print(f"  accuracy on the {n} unlabelled members ({settings['inits']} initialization(s), "
          f"{settings['epochs']} epochs of Adam {settings['learning_rate']:g})")
    for kind, v in r["kinds"].items():
        cells = " ".join(f"{a:.3f}" for a in v["accuracies"])
        print(f"  {kind:<15} mean {v['mean_accuracy']:.3f}  [{cells}]  ({v['seconds']:.1f} s)")
    rule, gcn = r["nearest_leader"], r["kinds"]["GCN"]
    wrong = ", ".join(map(str, gcn["wrong_nodes"])) or "none"
    print(
        f"Karate club from one labelled member per faction (nodes 0 and 33, one-hot features): "
        f"a 2-layer GCN classifies the other {n} members with accuracy "
        f"{gcn['accuracies'][0]:.3f} (mean {gcn['mean_accuracy']:.3f} over "
        f"{settings['inits']} initialization(s); seed {args.seed} gets node(s) {wrong} wrong); "
        f"GAT {r['kinds']['GAT']['mean_accuracy']:.3f}, GraphSAGE "
        f"{r['kinds']['GraphSAGE']['mean_accuracy']:.3f}, and an MLP without the edges "
        f"{r['kinds']['MLP (no edges)']['mean_accuracy']:.3f} (chance)."
    )
    print(
        f"For reference, 'join the nearer leader' gets {rule['right']} of {n} right, "
        f"{rule['wrong']} wrong and leaves {rule['tied']} tied."
    )
    if args.plots:
        r["figures"] = [str(p) for p in plot(r, args.plots, args.seed)]
    return r


if __name__ == "__main__":
    main()
