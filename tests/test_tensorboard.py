"""The TensorBoard callback (issue 14, item 4): event files read back with TensorBoard's own reader.

Every run is read with ``tensorboard.backend.event_processing.event_accumulator.EventAccumulator``
(keeping every event: its default keeps one histogram per tag). Scalars are stored as float32 by
the event format, so they are compared exactly with ``np.float32`` of the History's numbers.
Gradients are compared with the gradients training used, computed independently (one full batch
per epoch) or recorded inside a custom ``train_step``.
"""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing import event_accumulator as ea

import ember
from ember import layers
from ember.callbacks import LambdaCallback
from ember.models import NonFiniteLossError
from ember.tensorboard import TensorBoard, weight_image

KEEP_ALL = {ea.SCALARS: 0, ea.HISTOGRAMS: 0, ea.IMAGES: 0, ea.TENSORS: 0}


# ------------------------------------------------------------------------------ helpers
def _read(log_dir, run: str = "train") -> ea.EventAccumulator:
    return ea.EventAccumulator(os.path.join(log_dir, run), size_guidance=KEEP_ALL).Reload()


def _scalars(run: ea.EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in run.Scalars(tag)]


def _expected(values, steps=None) -> list[tuple[int, np.float32]]:
    steps = range(len(values)) if steps is None else steps
    return [(step, np.float32(v)) for step, v in zip(steps, values)]


def _histograms(run, tag: str) -> dict[int, object]:
    return {e.step: e.histogram_value for e in run.Histograms(tag)}


def _pixels(event) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(event.encoded_image_string)))


def _open_files_under(path) -> list[str]:
    """Files under ``path`` this process still holds open (Linux's /proc)."""
    fd_dir = "/proc/self/fd"
    if not os.path.isdir(fd_dir):
        pytest.skip("needs /proc to see open files")
    found = []
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith(str(path)):
            found.append(target)
    return found


def _regression(n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5], [0.0]], np.float32) + 0.3).astype(np.float32)
    return x, y


def _mlp(lr=0.05):
    ember.manual_seed(0)
    model = ember.models.Sequential(
        [layers.Input(shape=(4,)), layers.Dense(8, activation="relu"), layers.Dense(1)]
    )
    model.compile(optimizer=ember.optimizers.SGD(learning_rate=lr), loss="mse", metrics=["mae"])
    return model


# ------------------------------------------------------------------------------ scalars
def test_epoch_scalars_equal_history_train_and_validation(tmp_path):
    x, y = _regression()
    model = _mlp()
    tb = TensorBoard(log_dir=tmp_path)
    history = model.fit(
        x, y, batch_size=10, epochs=3, validation_split=0.25, callbacks=[tb], verbose=0
    )
    h = history.history
    assert sorted(os.listdir(tmp_path)) == ["train", "validation"]
    train, val = _read(tmp_path), _read(tmp_path, "validation")
    assert sorted(train.Tags()["scalars"]) == ["epoch_learning_rate", "epoch_loss", "epoch_mae"]
    assert _scalars(train, "epoch_loss") == _expected(h["loss"])
    assert _scalars(train, "epoch_mae") == _expected(h["mae"])
    assert _scalars(train, "epoch_learning_rate") == _expected([0.05] * 3)
    # validation keys lose their "val_" prefix, so one chart shows both runs (Keras' layout)
    assert sorted(val.Tags()["scalars"]) == [
        "epoch_loss", "epoch_mae", "evaluation_loss_vs_iterations", "evaluation_mae_vs_iterations",
    ]
    assert _scalars(val, "epoch_loss") == _expected(h["val_loss"])
    assert _scalars(val, "epoch_mae") == _expected(h["val_mae"])
    # after each validation pass, against the optimizer's step count: 3 batches per epoch
    assert _scalars(val, "evaluation_loss_vs_iterations") == _expected(h["val_loss"], [3, 6, 9])
    # nothing else was asked for
    assert train.Tags()["histograms"] == [] and train.Tags()["images"] == []
    # flushed and closed at train end; the optimizer is left as it was
    assert tb._writers == {}
    assert _open_files_under(tmp_path) == []
    assert "_apply_updates" not in vars(model.optimizer)


def test_learning_rate_logged_by_another_callback_is_kept(tmp_path):
    x, y = _regression()
    model = _mlp(lr=0.1)
    schedule = ember.callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))
    history = model.fit(
        x, y, batch_size=20, epochs=3, callbacks=[schedule, TensorBoard(tmp_path)], verbose=0
    )
    assert _scalars(_read(tmp_path), "epoch_learning_rate") == _expected(
        history.history["learning_rate"]
    )
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.1 / 3])


def test_batch_scalars_every_batch(tmp_path):
    x, y = _regression()
    model = _mlp()
    history = model.fit(
        x, y, batch_size=10, epochs=3, callbacks=[TensorBoard(tmp_path, update_freq="batch")],
        verbose=0,
    )
    train = _read(tmp_path)
    assert {"batch_loss", "batch_mae"} <= set(train.Tags()["scalars"])
    batch_loss = _scalars(train, "batch_loss")
    assert [step for step, _ in batch_loss] == list(range(1, 13))  # 4 batches x 3 epochs
    # the logs of an epoch's last batch are the epoch's logs (running means over the epoch)
    assert [batch_loss[i] for i in (3, 7, 11)] == _expected(history.history["loss"], [4, 8, 12])
    assert [_scalars(train, "batch_mae")[i] for i in (3, 7, 11)] == _expected(
        history.history["mae"], [4, 8, 12]
    )


def test_batch_scalars_every_n_batches_and_steps_per_second(tmp_path):
    x, y = _regression()
    model = _mlp()
    tb = TensorBoard(tmp_path, update_freq=3, write_steps_per_second=True)
    model.fit(x, y, batch_size=10, epochs=2, callbacks=[tb], verbose=0)
    train = _read(tmp_path)
    assert [step for step, _ in _scalars(train, "batch_loss")] == [3, 6]
    per_batch = _scalars(train, "batch_steps_per_second")
    per_epoch = _scalars(train, "epoch_steps_per_second")
    assert [s for s, _ in per_batch] == [3, 6] and [s for s, _ in per_epoch] == [0, 1]
    assert all(np.isfinite(v) and v > 0 for _, v in per_batch + per_epoch)


# ------------------------------------------------------------------------------ histograms
def test_weight_and_gradient_histograms_hold_the_real_numbers(tmp_path):
    """One full batch per epoch: the gradient applied in epoch e is d loss / d w at the weights
    the epoch starts with, computed here independently with ember.grad."""
    x, y = _regression(n=32)
    model = _mlp(lr=0.1)
    mse = ember.losses.MeanSquaredError()
    expected_grads, weights_after = {}, {}

    def record_gradient(epoch, logs=None):
        grads = ember.grad(mse(y, model(x, training=True)), model.trainable_weights)
        expected_grads[epoch] = dict(zip([n for n, _ in model.named_parameters()], grads))

    def record_weights(epoch, logs=None):
        weights_after[epoch] = {n: w.numpy().copy() for n, w in model.named_parameters()}

    recorder = LambdaCallback(on_epoch_begin=record_gradient, on_epoch_end=record_weights)
    tb = TensorBoard(tmp_path, histogram_freq=2)
    model.fit(x, y, batch_size=32, epochs=3, callbacks=[recorder, tb], verbose=0)

    train = _read(tmp_path)
    names = ["dense.kernel", "dense.bias", "dense_1.kernel", "dense_1.bias"]
    tags = [n.replace(".", "/") for n in names]
    assert sorted(train.Tags()["histograms"]) == sorted(
        [f"{t}/histogram" for t in tags] + [f"{t}/gradient" for t in tags]
    )
    for name, tag in zip(names, tags):
        weights = _histograms(train, f"{tag}/histogram")
        grads = _histograms(train, f"{tag}/gradient")
        assert sorted(weights) == sorted(grads) == [0, 2]  # epochs 0 and 2 (histogram_freq=2)
        for epoch in (0, 2):
            for hist, values in (
                (weights[epoch], weights_after[epoch][name]),
                (grads[epoch], expected_grads[epoch][name]),
            ):
                values = values.astype(np.float64)
                assert hist.num == values.size
                assert hist.min == pytest.approx(values.min(), rel=1e-5, abs=1e-7)
                assert hist.max == pytest.approx(values.max(), rel=1e-5, abs=1e-7)
                assert hist.sum == pytest.approx(values.sum(), rel=1e-4, abs=1e-6)
                assert hist.sum_squares == pytest.approx((values**2).sum(), rel=1e-4, abs=1e-9)
                assert sum(hist.bucket) == values.size
    assert "_apply_updates" not in vars(model.optimizer)


def test_gradients_of_a_custom_train_step_and_summary_of_an_unbuilt_model(tmp_path):
    """A subclassed model (unbuilt when fit starts) whose train_step calls apply_gradients."""

    class Regressor(ember.Model):
        def __init__(self):
            super().__init__()
            self.hidden = layers.Dense(3, activation="tanh")
            self.out = layers.Dense(1)
            self.applied = []

        def call(self, x):
            return self.out(self.hidden(x))

        def train_step(self, data):
            x, y = data
            with ember.GradientTape() as tape:
                loss = ember.ops.mean((self(x, training=True) - y) ** 2)
            grads = tape.gradient(loss, self.trainable_weights)
            self.applied.append([np.array(g) for g in grads])
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
            return {"loss": float(loss.data)}

    x, y = _regression(n=16)
    ember.manual_seed(0)
    model = Regressor()
    model.compile(optimizer="adam")
    assert not model.built
    tb = TensorBoard(tmp_path, histogram_freq=1)
    history = model.fit(x, y, batch_size=16, epochs=2, callbacks=[tb], verbose=0)
    train = _read(tmp_path)
    assert _scalars(train, "epoch_loss") == _expected(history.history["loss"])
    for name, weight in model.named_parameters():
        tag = name.replace(".", "/")
        grads = _histograms(train, f"{tag}/gradient")
        assert sorted(grads) == [0, 1]
        index = [w is weight for w in model.trainable_weights].index(True)
        for epoch in (0, 1):
            applied = model.applied[epoch][index].astype(np.float64)  # one step per epoch
            assert grads[epoch].num == applied.size
            assert grads[epoch].min == pytest.approx(applied.min(), rel=1e-5, abs=1e-7)
            assert grads[epoch].max == pytest.approx(applied.max(), rel=1e-5, abs=1e-7)
            assert grads[epoch].sum == pytest.approx(applied.sum(), rel=1e-4, abs=1e-6)
    # written after the first batch, once the weights exist
    (summary,) = train.Tensors("model_summary/text_summary")
    text = summary.tensor_proto.string_val[0].decode()
    assert f"{model.hidden.name} (Dense)" in text and f"{model.out.name} (Dense)" in text
    assert " Total params: 19 " in text


# ------------------------------------------------------------------------------ images and text
def _convnet():
    ember.manual_seed(0)
    model = ember.models.Sequential([
        layers.Input(shape=(6, 6, 1)),
        layers.Conv2D(3, 3, name="conv"),
        layers.BatchNormalization(name="norm"),
        layers.Flatten(),
        layers.Dense(2, activation="softmax", name="head"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def test_images_histograms_and_summary_of_a_convnet(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.random((16, 6, 6, 1)).astype(np.float32)
    y = rng.integers(0, 2, 16)
    model = _convnet()
    tb = TensorBoard(tmp_path, histogram_freq=1, write_images=True)
    model.fit(x, y, batch_size=8, epochs=2, callbacks=[tb], verbose=0)
    train = _read(tmp_path)
    named = dict(model.named_parameters())
    tags = {name.replace(".", "/") for name in named}
    assert set(train.Tags()["images"]) == {f"{t}/image" for t in tags}
    # every weight has a histogram; gradients only for the trainable ones (not moving stats)
    assert set(train.Tags()["histograms"]) == {f"{t}/histogram" for t in tags} | {
        f"{n.replace('.', '/')}/gradient" for n, w in named.items()
        if any(w is t for t in model.trainable_weights)
    }
    assert "norm/moving_mean/gradient" not in train.Tags()["histograms"]
    assert _histograms(train, "norm/moving_mean/histogram")[1].num == 3
    assert _histograms(train, "conv/kernel/gradient")[1].num == 27

    kernel_images = train.Images("conv/kernel/image")
    assert [e.step for e in kernel_images] == [0, 1]
    # 3x3 filters, 1 input channel (one row), 3 output channels (three columns), 1-pixel gaps
    assert (kernel_images[1].height, kernel_images[1].width) == (3, 11)
    pixels = _pixels(kernel_images[1])
    expected = weight_image(named["conv.kernel"].numpy())[:, :, 0]
    assert np.array_equal(pixels[:, :, 0], expected)  # the final kernel, exactly
    assert pixels[:, :, 0].min() == 0 and pixels[:, :, 0].max() == 255
    assert np.all(pixels[:, [3, 7], 0] == 0)  # the gaps
    dense = train.Images("head/kernel/image")[1]
    assert (dense.height, dense.width) == (2, 48)  # (48, 2) shown wider than tall

    (summary,) = train.Tensors("model_summary/text_summary")
    text = summary.tensor_proto.string_val[0].decode()
    assert "conv (Conv2D)" in text and "head (Dense)" in text
    assert f" Total params: {model.count_params():,} " in text
    assert all(line.startswith("    ") for line in text.splitlines())  # a Markdown code block


def test_images_every_epoch_without_histograms(tmp_path):
    x, y = _regression(n=8)
    model = _mlp()
    tb = TensorBoard(tmp_path, write_images=True, write_graph=False)
    model.fit(x, y, batch_size=8, epochs=2, callbacks=[tb], verbose=0)
    train = _read(tmp_path)
    assert [e.step for e in train.Images("dense/kernel/image")] == [0, 1]
    assert train.Tags()["histograms"] == [] and train.Tags()["tensors"] == []


def test_weight_image_layouts():
    conv1d = np.arange(5 * 2 * 3, dtype=np.float32).reshape(5, 2, 3)  # (width, in, out)
    assert weight_image(conv1d).shape == (2 * 2 - 1, 3 * 6 - 1, 1)
    conv3d = np.ones((2, 3, 4, 1, 2), np.float32)  # tiles of (2*3) x 4
    assert weight_image(conv3d).shape == (6, 9, 1)
    assert np.all(weight_image(conv3d)[:, :4] == 128)  # constant: mid-grey
    bias = np.array([0.0, np.nan, 1.0])
    assert weight_image(bias)[0, :, 0].tolist() == [0, 0, 255]
    assert weight_image(np.float32(1.0)) is None


# ------------------------------------------------------------------------------ helpers for users
def test_writing_helpers_outside_fit(tmp_path):
    tb = TensorBoard(tmp_path)
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3)).astype(np.uint8)
    tb.image("samples/rgb", rgb, step=3)
    tb.image("samples/grey", np.array([[0.0, 0.5], [1.0, 2.0]]))  # floats in [0, 1], clipped
    tb.scalar("custom/score", np.float64(0.25), step=1)
    tb.scalar("custom/score", ember.tensor(0.5), step=2)
    tb.histogram("codes", np.arange(10.0), step=4)
    tb.text("notes", "batch **32**")
    tb.scalar("custom/val_score", 1.5, run="validation")
    assert len(_open_files_under(tmp_path)) == 2  # open until close()
    tb.close()
    assert _open_files_under(tmp_path) == []
    train = _read(tmp_path)
    (event,) = train.Images("samples/rgb")
    assert event.step == 3 and (event.height, event.width) == (5, 7)
    assert np.array_equal(_pixels(event), rgb)
    grey = _pixels(train.Images("samples/grey")[0])
    assert grey[:, :, 0].tolist() == [[0, 128], [255, 255]]
    assert _scalars(train, "custom/score") == [(1, 0.25), (2, 0.5)]
    (hist,) = train.Histograms("codes")
    assert hist.step == 4 and hist.histogram_value.num == 10 and hist.histogram_value.sum == 45
    (note,) = train.Tensors("notes/text_summary")
    assert note.tensor_proto.string_val[0].decode() == "batch **32**"
    assert _scalars(_read(tmp_path, "validation"), "custom/val_score") == [(0, 1.5)]


def test_evaluate_with_the_callback_writes_and_closes(tmp_path):
    x, y = _regression()
    model = _mlp()
    tb = TensorBoard(tmp_path)
    model.fit(x, y, batch_size=20, epochs=2, callbacks=[tb], verbose=0)
    loss, mae = model.evaluate(x, y, callbacks=[tb], verbose=0)
    val = _read(tmp_path, "validation")
    assert _scalars(val, "evaluation_loss_vs_iterations") == [(4, np.float32(loss))]
    assert _scalars(val, "evaluation_mae_vs_iterations") == [(4, np.float32(mae))]
    assert _open_files_under(tmp_path) == []


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow that makes fit raise
def test_after_fit_raises_close_restores_the_optimizer_and_the_next_fit_works(tmp_path):
    x, y = _regression()
    model = _mlp(lr=1e30)  # diverges: fit raises NonFiniteLossError
    tb = TensorBoard(tmp_path, histogram_freq=1)
    with pytest.raises(NonFiniteLossError):
        model.fit(x, y, batch_size=10, epochs=3, callbacks=[tb], verbose=0)
    assert "_apply_updates" in vars(model.optimizer)  # fit never reached on_train_end
    tb.close()
    assert "_apply_updates" not in vars(model.optimizer)
    assert _open_files_under(tmp_path) == []
    model = _mlp()
    history = model.fit(x, y, batch_size=40, epochs=1, callbacks=[tb], verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert "_apply_updates" not in vars(model.optimizer)


def test_two_callbacks_share_an_optimizer(tmp_path):
    x, y = _regression(n=10)
    model = _mlp()
    first, second = (TensorBoard(tmp_path / name, histogram_freq=1) for name in ("a", "b"))
    model.fit(x, y, batch_size=10, epochs=1, callbacks=[first, second], verbose=0)
    for name in ("a", "b"):
        assert _histograms(_read(tmp_path / name), "dense/kernel/gradient")[0].num == 32
    assert "_apply_updates" not in vars(model.optimizer)


# ------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"log_dir": ""}, TypeError, "log_dir must be a non-empty path"),
        ({"log_dir": 3}, TypeError, "log_dir must be a non-empty path"),
        ({"histogram_freq": -1}, ValueError, "histogram_freq must be an integer >= 0, got -1"),
        ({"histogram_freq": 1.5}, TypeError, "histogram_freq must be an integer"),
        ({"write_images": "yes"}, TypeError, "write_images must be True or False"),
        ({"update_freq": "step"}, ValueError, "update_freq must be 'epoch', 'batch' or an int"),
        ({"update_freq": 0}, ValueError, "update_freq must be an integer >= 1, got 0"),
        ({"profile_batch": 5}, ValueError, "profile_batch=5 is not supported"),
        ({"embeddings_freq": 1}, ValueError, "embeddings_freq=1 is not supported"),
        ({"embeddings_metadata": "m.tsv"}, ValueError, "embeddings_metadata is not supported"),
    ],
)
def test_bad_arguments_are_named(tmp_path, kwargs, error, words):
    kwargs = {"log_dir": tmp_path, **kwargs}
    with pytest.raises(error, match="TensorBoard: " + words.replace("(", r"\(")):
        TensorBoard(**kwargs)


def test_missing_writer_library_says_what_to_install(tmp_path, monkeypatch):
    import ember.tensorboard as module

    real = module.importlib.util.find_spec

    def find_spec(name):
        return None if name == "tensorboardX" else real(name)

    monkeypatch.setattr(module.importlib.util, "find_spec", find_spec)
    hint = r"TensorBoard: .* needs tensorboardX: pip install 'ember\[tensorboard\]'"
    with pytest.raises(ImportError, match=hint):
        TensorBoard(tmp_path)


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda tb: tb.image("x", np.zeros((2, 2, 2))), ValueError, "1, 3 or 4 channels"),
        (lambda tb: tb.image("x", np.full((2, 2), np.nan)), ValueError, "NaN or infinite"),
        (lambda tb: tb.image("x", np.full((2, 2), 300)), ValueError, r"in \[0, 255\]"),
        (lambda tb: tb.image("x", np.array([["a"]])), TypeError, "uint8 or floats"),
        (lambda tb: tb.scalar("x", [1.0, 2.0]), TypeError, "value must be a real number"),
        (lambda tb: tb.scalar("", 1.0), TypeError, "tag must be a non-empty str"),
        (lambda tb: tb.scalar("x", 1.0, step=-1), ValueError, "step must be an integer >= 0"),
        (lambda tb: tb.scalar("x", 1.0, run="../up"), ValueError, "run must be a directory"),
        (lambda tb: tb.histogram("x", np.array([np.nan])), ValueError, "one finite number"),
        (lambda tb: tb.histogram("x", []), TypeError, "non-empty array of real numbers"),
        (lambda tb: tb.text("x", 3), TypeError, "text must be a str"),
    ],
)
def test_bad_helper_input_is_named(tmp_path, call, error, words):
    tb = TensorBoard(tmp_path)
    with pytest.raises(error, match=words):
        call(tb)
    tb.close()
