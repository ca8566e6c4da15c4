"""``ember.viz``'s plots: each saves a real PNG (checked for size and for not being blank), and
the numbers behind the pictures are checked where there are numbers to check (derivatives by
autograd against the analytic ones, confusion counts, PCA against an eigen-decomposition, the
loss surface's centre against ``evaluate``, weights restored after the surface is swept)."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import layers

pytest.importorskip("matplotlib")

from matplotlib.image import imread  # noqa: E402

from ember import viz  # noqa: E402


def assert_png(path, min_side: int = 100) -> np.ndarray:
    """The PNG at ``path`` exists, is a picture of a sensible size, and is not blank."""
    assert path.exists(), f"{path} was not written"
    assert path.stat().st_size > 2_000, f"{path} is only {path.stat().st_size} bytes"
    pixels = imread(path)
    assert pixels.ndim == 3 and min(pixels.shape[:2]) >= min_side, pixels.shape
    rgb = np.round(pixels[..., :3] * 255).astype(np.uint32)
    assert rgb.std() > 5, "the picture is blank (one colour)"
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    assert len(np.unique(packed)) > 20, "too few colours: nothing drawn"
    assert np.mean(packed != 0xFFFFFF) > 0.02, "almost all white: nothing drawn"
    return pixels


def _mlp(out_units: int = 1, activation: str = "sigmoid") -> ember.Model:
    ember.manual_seed(0)
    return ember.Sequential([
        layers.Input(shape=(2,)),
        layers.Dense(6, activation="tanh"),
        layers.Dense(out_units, activation=activation),
    ])


def _blobs(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = np.arange(n) % 2
    x = rng.normal(size=(n, 2)).astype(np.float32) * 0.4 + np.where(y[:, None] == 1, 1.0, -1.0)
    return x, y


# ------------------------------------------------------------------------------ activations
def test_activations_png_and_autograd_derivatives_match_the_analytic_ones(tmp_path):
    fig = viz.activations(["sigmoid", "tanh", "relu", "softplus"], x_range=(-3, 3), points=13,
                          path=tmp_path / "act.png")
    assert_png(tmp_path / "act.png")
    xs = np.linspace(-3, 3, 13)
    sig = 1 / (1 + np.exp(-xs))
    expected = {
        "sigmoid": (sig, sig * (1 - sig)),
        "tanh": (np.tanh(xs), 1 - np.tanh(xs) ** 2),
        "relu": (np.maximum(xs, 0), (xs > 0).astype(float)),
        "softplus": (np.log1p(np.exp(xs)), sig),
    }
    assert [ax.get_title() for ax in fig.axes] == list(expected)
    for ax, (values, slopes) in zip(fig.axes, expected.values()):
        f_line, slope_line = ax.lines[:2]
        assert (f_line.get_label(), slope_line.get_label()) == ("f(x)", "f'(x)")
        np.testing.assert_allclose(f_line.get_xdata(), xs)
        np.testing.assert_allclose(f_line.get_ydata(), values, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(slope_line.get_ydata(), slopes, rtol=1e-6, atol=1e-9)


def test_activations_reject_bad_input():
    with pytest.raises(ValueError, match="activations: names: unknown activation 'rleu'"):
        viz.activations(["rleu"])
    with pytest.raises(ValueError, match="activations: 'softmax' is not elementwise"):
        viz.activations(["relu", "softmax"])
    with pytest.raises(ValueError, match="activations: x_range must have low < high"):
        viz.activations(x_range=(1, -1))
    with pytest.raises(ValueError, match="activations: names is empty"):
        viz.activations([])


# ------------------------------------------------------------------------------ decision boundary
def test_decision_boundary_binary_heat_map_is_the_models_probability(tmp_path):
    model = _mlp()
    model.layers[0].set_weights([np.array([[4.0] * 6, [0.0] * 6]), np.zeros(6)])
    model.layers[1].set_weights([np.ones((6, 1)), np.zeros(1)])  # P(1) = σ(Σ tanh(4 x0))
    x, y = _blobs()
    fig = viz.decision_boundary(model, x, y, resolution=30, path=tmp_path / "db.png")
    assert_png(tmp_path / "db.png")
    heat = np.asarray(fig.axes[0].images[0].get_array())
    assert heat.shape == (30, 30)
    low, high = x.min(axis=0), x.max(axis=0)
    margin = (high - low) * 0.1
    corner = np.array([[low[0] - margin[0], low[1] - margin[1]]], np.float32)  # pixel [0, 0]
    np.testing.assert_allclose(heat[0, 0], model.predict(corner)[0, 0], rtol=1e-5)
    assert heat[:, 0].max() < 0.01 and heat[:, -1].min() > 0.99  # left class 0, right class 1


def test_decision_boundary_softmax_and_logits(tmp_path):
    x, y = _blobs()
    fig = viz.decision_boundary(_mlp(3, "softmax"), x, y, resolution=25,
                                path=tmp_path / "soft.png")
    assert_png(tmp_path / "soft.png")
    rgb = np.asarray(fig.axes[0].images[0].get_array())
    assert rgb.shape == (25, 25, 3) and rgb.min() >= 0 and rgb.max() <= 1
    logits = viz.decision_boundary(_mlp(1, "linear"), x, np.eye(2)[y], resolution=10)
    heat = np.asarray(logits.axes[0].images[0].get_array())
    assert 0.0 <= heat.min() and heat.max() <= 1.0  # logits squashed to probabilities
    with pytest.raises(ValueError, match=r"decision_boundary: x must have shape \(n, 2\)"):
        viz.decision_boundary(_mlp(), np.zeros((4, 3)), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="decision_boundary: y has 3 entries, expected 40"):
        viz.decision_boundary(_mlp(), x, [0, 1, 0])
    with pytest.raises(ValueError, match="binary classifier but y has labels up to 2"):
        viz.decision_boundary(_mlp(), x, np.arange(40) % 3)


# ------------------------------------------------------------------------------ training curves
def test_training_curves_of_one_history_and_of_three_runs(tmp_path):
    x, y = _blobs(32)
    model = _mlp()
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y.astype(np.float32), epochs=3, batch_size=16, validation_split=0.25,
                        verbose=0)
    fig = viz.training_curves(history, path=tmp_path / "one.png")
    assert_png(tmp_path / "one.png")
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    train, val = fig.axes[0].lines
    assert (train.get_label(), val.get_label()) == ("train", "validation")
    np.testing.assert_allclose(train.get_ydata(), history.history["loss"])
    np.testing.assert_allclose(val.get_xdata(), [1, 2, 3])

    runs = {f"lr={lr}": {"loss": list(np.exp(-lr * np.arange(4))),
                         "val_loss": list(np.exp(-lr * np.arange(4)) + 0.1)}
            for lr in (0.1, 0.5, 1.0)}
    fig = viz.training_curves(runs, path=tmp_path / "runs.png")
    assert_png(tmp_path / "runs.png")
    assert [line.get_label() for line in fig.axes[0].lines][::2] == [
        "lr=0.1 train", "lr=0.5 train", "lr=1.0 train"]
    fig = viz.training_curves([history, history.history], metrics="accuracy", labels=["a", "b"])
    assert [ax.get_title() for ax in fig.axes] == ["accuracy"]
    assert len(fig.axes[0].lines) == 4


def test_training_curves_reject_bad_input():
    with pytest.raises(ValueError, match=r"training_curves: metrics \['auc'\] not recorded"):
        viz.training_curves({"loss": [1.0]}, metrics=["auc"])
    with pytest.raises(TypeError, match="training_curves: expected a History"):
        viz.training_curves(3.0)
    with pytest.raises(ValueError, match="training_curves: got 2 runs but 1 labels"):
        viz.training_curves([{"loss": [1.0]}, {"loss": [2.0]}], labels=["a"])


# ------------------------------------------------------------------------------ histograms
def test_weight_and_activation_histograms_of_a_sequential(tmp_path):
    model = _mlp()
    fig = viz.weight_histograms(model, path=tmp_path / "w.png")
    assert_png(tmp_path / "w.png")
    names = [layer.name for layer in model.layers]
    assert [ax.get_title() for ax in fig.axes] == names
    assert [p.get_label().split(" ")[0] for p in fig.axes[0].patches[::1]][:1] == ["kernel"]

    x = np.random.default_rng(1).normal(size=(64, 2)).astype(np.float32)
    relu_model = ember.Sequential([layers.Input(shape=(2,)), layers.Dense(8, "relu")])
    fig = viz.activation_histograms(relu_model, x, path=tmp_path / "a.png")
    assert_png(tmp_path / "a.png")
    out = relu_model.predict(x)
    assert fig.axes[0].get_title() == f"{relu_model.layers[0].name}: {np.mean(out == 0):.0%} zeros"


def test_layer_outputs_of_a_functional_model_with_a_shared_layer(tmp_path):
    ember.manual_seed(0)
    inputs = ember.Input(shape=(3,))
    shared = layers.Dense(3, activation="tanh", name="shared")
    hidden = shared(shared(inputs))
    outputs = layers.Dense(2, name="head")(hidden)
    model = ember.Model(inputs, outputs)
    elsewhere = ember.Input(shape=(3,))
    ember.Model(elsewhere, shared(elsewhere))  # a third call, in another model's graph
    x = np.random.default_rng(2).normal(size=(5, 3)).astype(np.float32)
    found = viz._layer_outputs(model, x, "test")
    assert [name for name, _, _ in found] == ["shared#0", "shared#1", "head"]
    first = shared(x).numpy()
    np.testing.assert_allclose(found[0][2], first, rtol=1e-6)
    np.testing.assert_allclose(found[1][2], shared(first).numpy(), rtol=1e-6)
    np.testing.assert_allclose(found[2][2], model.predict(x), rtol=1e-6)
    viz.activation_histograms(model, x, path=tmp_path / "f.png")
    assert_png(tmp_path / "f.png")

    class Custom(ember.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(2)

        def call(self, inputs):
            return self.dense(inputs)

    with pytest.raises(TypeError, match="activation_histograms: .* is a subclassed model"):
        viz.activation_histograms(Custom(), x)
    with pytest.raises(ValueError, match="weight_histograms: .* has no weights yet"):
        viz.weight_histograms(ember.Sequential([layers.Dense(2)]))


# ------------------------------------------------------------------------------ gradient flow
def test_gradient_flow_lines_bars_and_grad_norms_attribute(tmp_path):
    records = {"dense": [1e-7, 1e-6, 0.0], "dense_1": [1e-3, 1e-3, 2e-3], "dense_2": [1.0, 2, 3]}
    fig = viz.gradient_flow(records, path=tmp_path / "flow.png")
    assert_png(tmp_path / "flow.png")
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert [line.get_label() for line in ax.lines] == list(records)
    np.testing.assert_allclose(ax.lines[1].get_ydata(), records["dense_1"])
    assert ax.lines[0].get_ydata()[2] == pytest.approx(1e-8)  # a zero sits below the smallest

    class Callback:  # what a gradient-health callback exposes
        grad_norms = {"a": [0.5, np.nan, 0.4], "b": [1e-4, 2e-4, 3e-4]}
        steps = [10, 20, 30]

    fig = viz.gradient_flow(Callback())
    assert fig.axes[0].get_xlabel() == "training step"
    np.testing.assert_array_equal(fig.axes[0].lines[0].get_xdata(), [10, 20, 30])
    assert np.isnan(fig.axes[0].lines[0].get_ydata()[1])  # a missing record stays a gap

    class Report:  # a one-shot diagnosis: one norm per layer
        class Layer:
            def __init__(self, name, grad_norm):
                self.name, self.grad_norm = name, grad_norm

        layers = [Layer("a", 0.5), Layer("b", 1e-4), Layer("flatten", None)]

    fig = viz.gradient_flow(Report(), path=tmp_path / "bars.png")
    assert_png(tmp_path / "bars.png")
    np.testing.assert_allclose([bar.get_height() for bar in fig.axes[0].patches], [0.5, 1e-4])
    with pytest.raises(ValueError, match="gradient_flow: got 2 steps for 3 recorded norms"):
        viz.gradient_flow(records, steps=[1, 2])
    with pytest.raises(ValueError, match="gradient_flow: records must map every layer"):
        viz.gradient_flow({"a": 0.5, "b": [1.0]})
    with pytest.raises(TypeError, match="gradient_flow: records must be a non-empty mapping"):
        viz.gradient_flow([1.0, 2.0])


# ------------------------------------------------------------------------------ results
def test_confusion_matrix_counts_and_normalization(tmp_path):
    y_true = [0, 0, 1, 1, 1, 2, 2, 2, 2]
    y_pred = [0, 1, 1, 1, 2, 2, 2, 0, 2]
    fig = viz.confusion_matrix(y_true, y_pred, class_names=["cat", "dog", "eel"],
                               path=tmp_path / "cm.png")
    assert_png(tmp_path / "cm.png")
    expected = np.array([[1, 1, 0], [0, 2, 1], [1, 0, 3]])
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), expected)
    assert [int(t.get_text()) for t in ax.texts] == expected.ravel().tolist()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog", "eel"]

    probabilities = np.eye(3)[y_pred] * 0.8 + 0.1  # the argmax is the prediction
    fig = viz.confusion_matrix(np.eye(3)[y_true], probabilities, normalize="true")
    rows = np.asarray(fig.axes[0].images[0].get_array())
    np.testing.assert_allclose(rows, expected / expected.sum(axis=1, keepdims=True))
    assert fig.axes[0].texts[4].get_text() == "0.67\n(2)"
    with pytest.raises(ValueError, match="confusion_matrix: normalize must be None"):
        viz.confusion_matrix(y_true, y_pred, normalize="rows")
    with pytest.raises(ValueError, match="confusion_matrix: y_pred has 2 entries, expected 9"):
        viz.confusion_matrix(y_true, [0, 1])


def test_predictions_grid_marks_mistakes_in_red(tmp_path):
    images = np.random.default_rng(0).random((6, 10, 10, 1))
    fig = viz.predictions_grid(images, [0, 1, 2, 0, 1, 2], [0, 2, 2, 0, 0, 2],
                               class_names=["a", "b", "c"], path=tmp_path / "pred.png")
    assert_png(tmp_path / "pred.png")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["a", "c (true b)", "c", "a", "a (true b)", "c"]
    assert [t.get_color() for t in ax.texts].count("red") == 2
    assert len(ax.patches) == 2 and fig._suptitle.get_text() == "2 mistake(s) in 6"
    with pytest.raises(ValueError, match="predictions_grid: images must have shape"):
        viz.predictions_grid(np.zeros((2, 4, 4, 2)), [0, 1], [0, 1])
    with pytest.raises(ValueError, match="predictions_grid: y_pred has 1 entries, expected 6"):
        viz.predictions_grid(images, [0] * 6, [0])


# ------------------------------------------------------------------------------ convolutions
def test_conv_filters_tiles_are_the_kernel(tmp_path):
    conv = layers.Conv2D(5, 3)
    conv(np.zeros((1, 6, 6, 2), np.float32))
    fig = viz.conv_filters(conv, path=tmp_path / "filters.png")
    assert_png(tmp_path / "filters.png")
    tiles = np.asarray(fig.axes[0].images[0].get_array())
    kernel = conv.kernel.numpy()
    assert tiles.shape == (2 * 4 - 1, 5 * 4 - 1)  # 2 input channels x 5 filters, 1-pixel gaps
    np.testing.assert_allclose(tiles[4:7, 8:11], kernel[:, :, 1, 2])  # input 1 → filter 2

    rgb = viz.conv_filters(np.random.default_rng(0).normal(size=(3, 3, 3, 4)))
    assert rgb.axes[0].images[0].get_array().shape[-1] == 3
    flatten = layers.Flatten(name="no_kernel")
    flatten(np.zeros((1, 2, 2)))
    with pytest.raises(TypeError, match="conv_filters: layer 'no_kernel' has no kernel"):
        viz.conv_filters(flatten)
    with pytest.raises(ValueError, match="conv_filters: layer 'fresh' has not built its kernel"):
        viz.conv_filters(layers.Conv2D(2, 3, name="fresh"))
    with pytest.raises(ValueError, match=r"conv_filters: expected a Conv2D layer"):
        viz.conv_filters(np.zeros((3, 3)))


def test_feature_maps_of_a_model_and_of_a_layer(tmp_path):
    ember.manual_seed(0)
    model = ember.Sequential([
        layers.Input(shape=(8, 8, 1)),
        layers.Conv2D(3, 3, activation="relu", name="c1"),
        layers.Conv2D(4, 3, name="c2"),
        layers.Flatten(),
    ])
    image = np.random.default_rng(0).random((8, 8, 1)).astype(np.float32)
    fig = viz.feature_maps(model, image, layer="c2", path=tmp_path / "maps.png")
    assert_png(tmp_path / "maps.png")
    assert fig.axes[0].get_title() == "c2: 4 channels of 4x4"
    tiles = np.asarray(fig.axes[0].images[0].get_array())
    c2 = model.get_layer("c2")(model.get_layer("c1")(image[None])).numpy()[0]
    np.testing.assert_allclose(tiles[5:9, 0:4], c2[:, :, 2], rtol=1e-5)  # channel 2: row 1
    first = viz.feature_maps(model.get_layer("c1"), image)
    assert first.axes[0].get_title() == "c1: 3 channels of 6x6"
    with pytest.raises(ValueError, match="feature_maps: layer 'c9' is not one of"):
        viz.feature_maps(model, image, layer="c9")
    with pytest.raises(ValueError, match="feature_maps: image must be one image"):
        viz.feature_maps(model, np.zeros((2, 8, 8, 1)))


# ------------------------------------------------------------------------------ attention
def test_attention_map_of_a_layer_and_of_scores(tmp_path):
    ember.manual_seed(0)
    mha = layers.MultiHeadAttention(num_heads=2, key_dim=4)
    query = np.random.default_rng(0).normal(size=(2, 5, 8)).astype(np.float32)
    fig = viz.attention_map(mha, query, tokens=list("abcde"), sample=1, path=tmp_path / "at.png")
    assert_png(tmp_path / "at.png")
    _, scores = mha(query, query, return_attention_scores=True)
    heads = [ax for ax in fig.axes if ax.get_title().startswith("head")]
    assert len(heads) == 2
    np.testing.assert_allclose(heads[1].images[0].get_array(), scores.numpy()[1, 1], rtol=1e-6)
    assert [t.get_text() for t in heads[0].get_xticklabels()] == list("abcde")

    given = np.random.default_rng(1).dirichlet(np.ones(4), size=(3, 2))  # heads x Tq x Tk
    fig = viz.attention_map(given, tokens=(["q1", "q2"], list("wxyz")), head=2)
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == ["head 2"]
    with pytest.raises(ValueError, match="attention_map: tokens give 3 query and 3 key labels"):
        viz.attention_map(given, tokens=list("abc"))
    with pytest.raises(ValueError, match="attention_map: head must be an integer in"):
        viz.attention_map(given, head=3)
    with pytest.raises(TypeError, match="attention_map: expected a MultiHeadAttention layer"):
        viz.attention_map(layers.Dense(2), query)


# ------------------------------------------------------------------------------ loss surface
def _regression():
    ember.manual_seed(0)
    model = ember.Sequential([layers.Input(shape=(3,)), layers.Dense(4, "tanh"),
                              layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    return model, x, (x @ np.array([[1.0], [-2.0], [0.5]])).astype(np.float32)


def test_loss_surface_centre_directions_path_and_restored_weights(tmp_path):
    model, x, y = _regression()
    arrays = [p.data for p in model.weights]
    before = model.get_weights()
    grid = viz.loss_surface_grid(model, x, y, steps=5, span=0.5)
    assert all(p.data is a for p, a in zip(model.weights, arrays))  # the very arrays put back
    for now, then in zip(model.get_weights(), before):
        np.testing.assert_array_equal(now, then)
    np.testing.assert_allclose(grid.alphas, [-0.5, -0.25, 0.0, 0.25, 0.5])
    centre = model.evaluate(x, y, batch_size=len(x), verbose=0)
    assert grid.losses[2, 2] == pytest.approx(centre, rel=1e-6)
    assert grid.losses.min() <= centre and np.all(np.isfinite(grid.losses))
    for direction in grid.directions:
        for d, p in zip(direction, model.trainable_weights):
            if p.ndim == 1:
                assert not d.any()  # biases are not moved (Li et al.)
            else:
                np.testing.assert_allclose(np.linalg.norm(d, axis=0),
                                           np.linalg.norm(p.numpy(), axis=0), rtol=1e-6)
    # a snapshot at θ + 0.3·d1 − 0.2·d2 projects onto (0.3, −0.2); a far one widens the grid
    d1, d2 = grid.directions
    near = [w + 0.3 * a - 0.2 * b for w, a, b in zip(before, d1, d2)]
    far = [w + 2.0 * a for w, a in zip(before, d1)]
    grid = viz.loss_surface_grid(model, x, y, steps=3, span=0.5, path_weights=[near, far])
    np.testing.assert_allclose(grid.path, [[0.3, -0.2], [2.0, 0.0]], atol=1e-5)
    assert grid.alphas[-1] == pytest.approx(2.2)


def test_loss_surface_pca_directions_span_the_path():
    model, x, y = _regression()
    before = model.get_weights()
    rng = np.random.default_rng(3)
    u = [rng.normal(size=w.shape) for w in before]
    v = [rng.normal(size=w.shape) for w in before]
    # a path curving in the plane of u and v, ending at the current weights
    path = [[w + (1 - t) * a + (1 - t) ** 2 * b for w, a, b in zip(before, u, v)]
            for t in np.linspace(0, 1, 6)]
    grid = viz.loss_surface_grid(model, x, y, steps=3, path_weights=path, directions="pca")
    d1, d2 = (np.concatenate([d.ravel() for d in ds]) for ds in grid.directions)
    np.testing.assert_allclose([d1 @ d1, d2 @ d2, d1 @ d2], [1, 1, 0], atol=1e-9)
    flat_u, flat_v = (np.concatenate([a.ravel() for a in vs]) for vs in (u, v))
    plane = np.linalg.qr(np.column_stack([flat_u, flat_v]))[0]
    np.testing.assert_allclose(np.linalg.norm(plane.T @ np.column_stack([d1, d2]), axis=0),
                               [1, 1], atol=1e-9)  # the directions lie in the path's plane
    np.testing.assert_allclose(grid.path[-1], [0, 0], atol=1e-9)
    assert grid.alphas[-1] == pytest.approx(1.1 * np.abs(grid.path).max())
    assert grid.losses[1, 1] == pytest.approx(model.evaluate(x, y, batch_size=40, verbose=0),
                                              rel=1e-6)
    with pytest.raises(ValueError, match="loss_surface: directions='pca' needs path_weights"):
        viz.loss_surface_grid(model, x, y, directions="pca")
    with pytest.raises(ValueError, match="span fewer than 2 directions"):
        viz.loss_surface_grid(model, x, y, path_weights=[path[0], before], directions="pca")


def test_loss_surface_figure_and_weights_restored_after_an_error(tmp_path):
    model, x, y = _regression()
    before = model.get_weights()
    snapshots = [before]
    model.fit(x, y, epochs=2, batch_size=20, verbose=0)
    state = model.state_dict()
    fig = viz.loss_surface(model, x, y, steps=7, path_weights=snapshots + [state],
                           path=tmp_path / "surface.png")
    assert_png(tmp_path / "surface.png")
    assert len(fig.axes[0].lines) == 4
    after = model.get_weights()
    calls = []

    def failing(y_true, y_pred):
        calls.append(1)
        if len(calls) > 3:
            raise RuntimeError("boom")
        return ember.mean((y_pred - y_true) ** 2)

    with pytest.raises(RuntimeError, match="boom"):
        viz.loss_surface_grid(model, x, y, steps=3, loss=failing)
    for now, then in zip(model.get_weights(), after):
        np.testing.assert_array_equal(now, then)
    uncompiled = ember.Sequential([layers.Input(shape=(3,)), layers.Dense(1)])
    with pytest.raises(ValueError, match="loss_surface: .* has no loss; compile it"):
        viz.loss_surface(uncompiled, x, y, steps=3)
    with pytest.raises(ValueError, match="loss_surface: a path_weights snapshot has 1 arrays"):
        viz.loss_surface_grid(model, x, y, steps=3, path_weights=[[before[0]]])
    with pytest.raises(ValueError, match="loss_surface: span must be a positive number"):
        viz.loss_surface(model, x, y, span=0)


# ------------------------------------------------------------------------------ embeddings
def test_pca_is_the_top_principal_components_and_the_projection_plot(tmp_path):
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(60, 5)) * np.array([5.0, 3.0, 1.0, 0.5, 0.1]) @ np.linalg.qr(
        rng.normal(size=(5, 5)))[0] + 7.0
    projected = viz.pca(codes, 2)
    centred = codes - codes.mean(axis=0)
    values, vectors = np.linalg.eigh(np.cov(centred, rowvar=False))
    top = vectors[:, np.argsort(values)[::-1][:2]]
    expected = centred @ top
    signs = np.sign(np.sum(projected * expected, axis=0))  # a component's sign is arbitrary
    np.testing.assert_allclose(projected, expected * signs, atol=1e-8)

    labels = np.arange(60) % 3
    fig = viz.embedding_projection(codes, labels=labels, path=tmp_path / "pca.png")
    assert_png(tmp_path / "pca.png")
    np.testing.assert_allclose(fig.axes[0].collections[0].get_offsets(), projected, rtol=1e-5)
    kept = (values.max() + np.sort(values)[-2]) / values.sum()
    assert fig.axes[0].get_title() == f"PCA of 5-D codes ({kept:.0%} of variance)"
    with pytest.raises(ValueError, match="embedding_projection: method must be 'pca'"):
        viz.embedding_projection(codes, method="tsne")
    with pytest.raises(ValueError, match="embedding_projection: got 60 codes but 2 labels"):
        viz.embedding_projection(codes, labels=[0, 1])


def test_existing_functions_still_save_pictures(tmp_path):
    images = np.random.default_rng(0).random((4, 8, 8))
    viz.image_grid(images, labels=list("abcd"), path=tmp_path / "grid.png")
    assert_png(tmp_path / "grid.png", min_side=50)
    viz.scatter_2d(np.random.default_rng(0).normal(size=(30, 2)), path=tmp_path / "pts.svg")
    assert (tmp_path / "pts.svg").read_text().lstrip().startswith("<?xml")
