"""Early stopping on an over-parameterized network.

A 2-256-256-2 ReLU network (~67,000 weights) trained on 50 noisy points of the two-circles set
(200 more for validation) memorizes them: the training loss keeps falling towards zero while the
validation loss falls, reaches a minimum after a few epochs and then climbs as the network fits
the noise.
``EarlyStopping(monitor="val_loss", patience=10, restore_best_weights=True)`` stops ``patience``
epochs after the minimum and puts back the weights of the best epoch, so the model keeps the
best validation loss seen — and a much lower cross-entropy on fresh test data than the same
network trained for all the epochs (whose confident mistakes cost a lot of loss; test accuracy
moves far less).

Run: ``python examples/early_stopping.py``
"""

from __future__ import annotations

import numpy as np

import ember
from ember import layers
from ember.datasets import synthetic


def make_data(seed: int, n: int, n_val: int, n_test: int) -> tuple:
    x, y = synthetic.circles(n + n_val + n_test, noise=0.2, seed=seed)
    val_end = n + n_val
    return (x[:n], y[:n]), (x[n:val_end], y[n:val_end]), (x[val_end:], y[val_end:])


def build(seed: int, width: int) -> ember.models.Sequential:
    ember.manual_seed(seed)
    model = ember.models.Sequential([
        layers.Input(shape=(2,)),
        layers.Dense(width, activation="relu"),
        layers.Dense(width, activation="relu"),
        layers.Dense(2, activation="softmax"),
    ])
    model.compile(optimizer=ember.optimizers.Adam(learning_rate=0.01),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def main(seed: int = 0, n: int = 50, n_val: int = 200, n_test: int = 1000, width: int = 256,
         epochs: int = 150, patience: int = 10) -> dict:
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = make_data(seed, n, n_val, n_test)
    fit_args = {"batch_size": n, "epochs": epochs, "validation_data": (x_val, y_val),
                "verbose": 0}

    full = build(seed, width)
    full_history = full.fit(x_train, y_train, **fit_args).history
    full_test_loss, full_test_acc = full.evaluate(x_test, y_test, verbose=0)

    model = build(seed, width)
    stop = ember.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                         restore_best_weights=True)
    history = model.fit(x_train, y_train, callbacks=[stop], **fit_args).history
    restored_val_loss, _ = model.evaluate(x_val, y_val, verbose=0)
    test_loss, test_acc = model.evaluate(x_test, y_test, verbose=0)

    val_curve = np.array(history["val_loss"])
    return {
        "val_loss_curve": val_curve,
        "train_loss_curve": np.array(history["loss"]),
        "epochs_run": len(val_curve),
        "stopped_epoch": stop.stopped_epoch + 1,  # 1-based, as Keras prints it
        "best_epoch": stop.best_epoch + 1,
        "best_val_loss": float(val_curve.min()),
        "restored_val_loss": float(restored_val_loss),
        "test_loss": float(test_loss),
        "test_accuracy": float(test_acc),
        "full_epochs": epochs,
        "full_final_val_loss": float(full_history["val_loss"][-1]),
        "full_final_train_loss": float(full_history["loss"][-1]),
        "full_test_loss": float(full_test_loss),
        "full_test_accuracy": float(full_test_acc),
    }


if __name__ == "__main__":
    r = main()
    for epoch, (train, val) in enumerate(zip(r["train_loss_curve"], r["val_loss_curve"]), 1):
        print(f"  epoch {epoch:3d}  loss {train:.4f}  val_loss {val:.4f}")
    print(
        f"Early stopping: val_loss is lowest ({r['best_val_loss']:.4f}) at epoch "
        f"{r['best_epoch']}; training stops at epoch {r['stopped_epoch']} and restoring the best "
        f"weights gives val_loss {r['restored_val_loss']:.4f}. Test loss {r['test_loss']:.3f} "
        f"(accuracy {r['test_accuracy']:.3f}) with early stopping against "
        f"{r['full_test_loss']:.3f} (accuracy {r['full_test_accuracy']:.3f}) after all "
        f"{r['full_epochs']} epochs (final train loss {r['full_final_train_loss']:.4f}, "
        f"val_loss {r['full_final_val_loss']:.3f})."
    )
