"""PyTorch's "Quickstart" tutorial, written as a PyTorch user would write it on Ember.

Ember is not a clone of ``torch``, so the tutorial's names take Ember's form: the network
subclasses ``ember.Model`` and defines ``forward``; ``nn.Flatten`` / ``nn.Linear`` + ``nn.ReLU``
become ``layers.Flatten`` / ``layers.Dense(..., activation="relu")``; ``nn.CrossEntropyLoss`` is
``ember.losses.SparseCategoricalCrossentropy(from_logits=True)``, called Keras' way as
``loss_fn(y, pred)``; ``torch.optim.SGD(model.parameters(), lr=1e-3)``, ``DataLoader``,
``model.train()`` / ``model.eval()``, ``ember.no_grad()``, ``zero_grad`` / ``backward`` /
``step`` and ``state_dict`` / ``load_state_dict`` keep their PyTorch names. ``torch.save`` /
``torch.load`` become ``np.savez`` / ``np.load``.

FashionMNIST (a download) is replaced by the bundled 8x8 digits, shaped as ``ToTensor`` would
give them: float32 in [0, 1], ``(N, 1, 8, 8)``. ``nn.Linear(28*28, 512)`` states its input size;
the Ember model states it with ``ember.Input(shape=(64,))`` so that its parameters exist before
the first batch, as PyTorch's do (the literal lazy form is tested, and fails, further down).
"""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember import layers
from ember.datasets import digits

BATCH_SIZE = 64
CLASSES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.fixture(autouse=True)
def _seed():
    ember.manual_seed(0)


def _datasets():
    (x_train, y_train), (x_test, y_test) = digits.load_data()

    def to_tensor(images):
        return (images.astype("float32") / 16)[:, None]  # (N, 1, 8, 8), values in [0, 1]

    training_data = ember.data.TensorDataset(to_tensor(x_train), y_train.astype("int64"))
    test_data = ember.data.TensorDataset(to_tensor(x_test), y_test.astype("int64"))
    return training_data, test_data


class NeuralNetwork(ember.Model):
    def __init__(self):
        super().__init__()
        self.flatten = layers.Flatten()
        self.linear_relu_stack = ember.Sequential(
            [
                ember.Input(shape=(8 * 8,)),
                layers.Dense(512, activation="relu"),
                layers.Dense(512, activation="relu"),
                layers.Dense(10),
            ]
        )

    def forward(self, x):
        x = self.flatten(x)
        logits = self.linear_relu_stack(x)
        return logits


def train(dataloader, model, loss_fn, optimizer):
    size = len(dataloader.dataset)
    model.train()
    for batch, (X, y) in enumerate(dataloader):
        # Compute prediction error
        pred = model(X)
        loss = loss_fn(y, pred)

        # Backpropagation
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

        if batch % 100 == 0:
            loss, current = loss.item(), (batch + 1) * len(X)
            print(f"loss: {loss:>7f}  [{current:>5d}/{size:>5d}]")


def test(dataloader, model, loss_fn):
    size = len(dataloader.dataset)
    num_batches = len(dataloader)
    model.eval()
    test_loss, correct = 0, 0
    with ember.no_grad():
        for X, y in dataloader:
            pred = model(X)
            test_loss += loss_fn(y, pred).item()
            correct += (pred.argmax(1) == y).float().sum().item()
    test_loss /= num_batches
    correct /= size
    print(f"Test Error: \n Accuracy: {(100 * correct):>0.1f}%, Avg loss: {test_loss:>8f} \n")
    return correct, test_loss


test.__test__ = False  # the tutorial's name, not a pytest test


def _loaders():
    training_data, test_data = _datasets()
    train_dataloader = ember.data.DataLoader(training_data, batch_size=BATCH_SIZE)
    test_dataloader = ember.data.DataLoader(test_data, batch_size=BATCH_SIZE)
    return train_dataloader, test_dataloader


def test_dataloader_batches():
    train_dataloader, test_dataloader = _loaders()
    for X, y in test_dataloader:
        assert X.shape == (64, 1, 8, 8)  # [N, C, H, W]
        assert y.shape == (64,) and y.dtype == np.int64
        break
    assert len(train_dataloader) == 23  # 1,437 images in batches of 64
    assert len(test_dataloader.dataset) == 360


def test_model_parameters():
    model = NeuralNetwork()
    names = [name for name, _ in model.named_parameters()]
    assert names == [
        "linear_relu_stack.dense.kernel",
        "linear_relu_stack.dense.bias",
        "linear_relu_stack.dense_1.kernel",
        "linear_relu_stack.dense_1.bias",
        "linear_relu_stack.dense_2.kernel",
        "linear_relu_stack.dense_2.bias",
    ]
    # Linear(64, 512), Linear(512, 512), Linear(512, 10); Ember's kernels are (in, out)
    shapes = [tuple(p.shape) for p in model.parameters()]
    assert shapes == [(64, 512), (512,), (512, 512), (512,), (512, 10), (10,)]
    assert sum(p.numel() for p in model.parameters()) == 301066

    model.train()
    assert model.training and model.linear_relu_stack.layers[0].training
    model.eval()
    assert not model.training and not model.linear_relu_stack.layers[0].training


def test_loss_in_pytorch_argument_order_raises_type_error():
    train_dataloader, _ = _loaders()
    model = NeuralNetwork()
    loss_fn = ember.losses.SparseCategoricalCrossentropy(from_logits=True)
    X, y = next(iter(train_dataloader))
    pred = model(X)

    with pytest.raises(TypeError, match=r"PyTorch's order.*\(y_true, y_pred\)"):
        loss_fn(pred, y)
    with ember.no_grad(), pytest.raises(TypeError, match=r"\(y_true, y_pred\)"):
        loss_fn(model(X), y)
    assert loss_fn(y, pred).item() == pytest.approx(np.log(10), abs=0.2)  # untrained: ~uniform


def test_training_loop_lowers_the_test_loss_every_epoch(capsys):
    train_dataloader, test_dataloader = _loaders()
    model = NeuralNetwork()
    loss_fn = ember.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = ember.optimizers.SGD(model.parameters(), lr=1e-3)

    results = []
    epochs = 5
    for t in range(epochs):
        print(f"Epoch {t + 1}\n-------------------------------")
        train(train_dataloader, model, loss_fn, optimizer)
        results.append(test(test_dataloader, model, loss_fn))
    print("Done!")

    accuracies, losses = zip(*results)
    assert all(later < earlier for earlier, later in zip(losses, losses[1:]))
    assert accuracies[-1] > accuracies[0]
    assert accuracies[-1] > 0.12  # 5 x 23 small steps: 0.18 with seed 0, chance is 0.10

    printed = capsys.readouterr().out
    assert printed.count("Test Error:") == 5
    assert printed.count("[   64/ 1437]") == 5  # batch 0 of each epoch
    assert f"Accuracy: {100 * accuracies[-1]:>0.1f}%" in printed
    assert printed.rstrip().endswith("Done!")


@pytest.mark.slow
def test_training_for_as_many_steps_as_the_tutorial_matches_its_result():
    # The tutorial takes 5 epochs of 938 batches (4,690 SGD steps at lr=1e-3) and reaches
    # about 64% accuracy and an average loss of about 1.09 on FashionMNIST. The digits take 204
    # epochs of 23 batches for as many steps; they are an easier problem.
    train_dataloader, test_dataloader = _loaders()
    model = NeuralNetwork()
    loss_fn = ember.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = ember.optimizers.SGD(model.parameters(), lr=1e-3)
    for _ in range(204):
        train(train_dataloader, model, loss_fn, optimizer)
    accuracy, avg_loss = test(test_dataloader, model, loss_fn)
    assert accuracy > 0.64  # 0.90 with seed 0
    assert avg_loss < 1.09  # 0.86 with seed 0


def _trained_model():
    train_dataloader, test_dataloader = _loaders()
    model = NeuralNetwork()
    loss_fn = ember.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = ember.optimizers.SGD(model.parameters(), lr=1e-3)
    train(train_dataloader, model, loss_fn, optimizer)
    return model, test_dataloader


def test_state_dict_round_trip_predicts_bit_exactly(tmp_path, capsys):
    model, test_dataloader = _trained_model()
    path = tmp_path / "model.npz"
    np.savez(path, **model.state_dict())
    print("Saved PyTorch Model State to model.npz")

    model_2 = NeuralNetwork()
    with np.load(path) as saved:
        result = model_2.load_state_dict(dict(saved))
    assert result.missing_keys == [] and result.unexpected_keys == []

    model.eval()
    model_2.eval()
    _, test_data = _datasets()
    x, y = test_data[0][0], test_data[0][1]
    assert x.shape == (1, 8, 8)
    with ember.no_grad():
        pred = model_2(x)
        # the tutorial indexes with pred[0].argmax(0): see test_prediction_indexes_the_class_list
        predicted, actual = CLASSES[int(pred[0].argmax(0))], CLASSES[y]
        original = CLASSES[int(model(x)[0].argmax(0))]
    assert pred.shape == (1, 10)
    assert actual == "zero"  # the first test digit
    assert predicted == original

    with ember.no_grad():
        for X, _ in test_dataloader:
            np.testing.assert_array_equal(model_2(X).numpy(), model(X).numpy())
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(model_2.state_dict()[name], value)
    capsys.readouterr()


def test_prediction_indexes_the_class_list():
    model = NeuralNetwork()
    model.eval()
    _, test_data = _datasets()
    x, y = test_data[0][0], test_data[0][1]
    with ember.no_grad():
        pred = model(x)
        predicted, actual = CLASSES[pred[0].argmax(0)], CLASSES[y]
    assert predicted == CLASSES[int(np.argmax(pred.numpy()[0]))]
    assert actual == "zero"


class LazyNeuralNetwork(ember.Model):
    """The tutorial's network without input sizes: ``Dense(512)`` where PyTorch writes
    ``nn.Linear(28*28, 512)``. Its weights only exist after the first batch."""

    def __init__(self):
        super().__init__()
        self.flatten = layers.Flatten()
        self.linear_relu_stack = ember.Sequential(
            [
                layers.Dense(512, activation="relu"),
                layers.Dense(512, activation="relu"),
                layers.Dense(10),
            ]
        )

    def forward(self, x):
        return self.linear_relu_stack(self.flatten(x))


def test_optimizer_made_before_the_first_batch_of_a_lazy_model():
    train_dataloader, _ = _loaders()
    model = LazyNeuralNetwork()
    loss_fn = ember.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = ember.optimizers.SGD(model.parameters(), lr=1e-3)

    train(train_dataloader, model, loss_fn, optimizer)
    assert len(model.parameters()) == 6
    assert optimizer.iterations == 23


def test_load_state_dict_into_a_fresh_lazy_model():
    model = LazyNeuralNetwork()
    _, test_data = _datasets()
    x = test_data[0][0]
    model(x)  # builds the first model
    state = model.state_dict()

    model_2 = LazyNeuralNetwork()
    model_2.load_state_dict(state)
    model.eval()
    model_2.eval()
    with ember.no_grad():
        np.testing.assert_array_equal(model_2(x).numpy(), model(x).numpy())
