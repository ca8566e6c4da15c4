"""Callbacks: hooks into ``fit`` (Keras' protocol) and the ``History`` it returns.

Example:
    >>> class PrintLoss(ember.callbacks.Callback):
    ...     def on_epoch_end(self, epoch, logs=None):
    ...         print(epoch, logs["loss"])
    >>> model.fit(x, y, callbacks=[PrintLoss()], verbose=0)
"""

from __future__ import annotations


class Callback:
    """Base class; override any ``on_*`` method. ``self.model`` is set by ``fit``."""

    def __init__(self):
        self.model = None

    def set_model(self, model) -> None:
        self.model = model

    def on_train_begin(self, logs=None): ...

    def on_train_end(self, logs=None): ...

    def on_epoch_begin(self, epoch, logs=None): ...

    def on_epoch_end(self, epoch, logs=None): ...

    def on_train_batch_begin(self, batch, logs=None): ...

    def on_train_batch_end(self, batch, logs=None): ...


class History(Callback):
    """Records every epoch's logs: ``history.history["val_loss"]`` is a list of floats."""

    def __init__(self):
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None):
        self.history, self.epoch = {}, []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(on_epoch_end=lambda epoch, logs: ...)``."""

    def __init__(self, **hooks):
        super().__init__()
        for name, fn in hooks.items():
            if not name.startswith("on_") or not hasattr(Callback, name):
                raise ValueError(f"LambdaCallback: unknown hook {name!r}")
            setattr(self, name, fn)


class CallbackList:
    """Dispatches each event to every callback in order."""

    def __init__(self, callbacks, model):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be ember.callbacks.Callback objects, got {cb!r}")
            cb.set_model(model)

    def __getattr__(self, event):
        if not event.startswith("on_"):
            raise AttributeError(event)

        def dispatch(*args, **kwargs):
            for cb in self.callbacks:
                getattr(cb, event)(*args, **kwargs)

        return dispatch
