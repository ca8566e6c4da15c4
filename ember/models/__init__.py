"""Models: ``Sequential``, the functional/subclassed ``Model``, and ``load_model``."""

from ember.models import zoo
from ember.models.model import Model, NonFiniteLossError, Sequential

__all__ = ["Model", "Sequential", "NonFiniteLossError", "load_model", "zoo"]


def load_model(path, compile: bool = True, restore_rng: bool = True):  # noqa: A002 (Keras' name)
    """Load a model saved by ``model.save(path)``; never executes code from the file.

    See :func:`ember.models.saving.load_model` for ``restore_rng``.
    """
    from ember.models.saving import load_model as _load

    return _load(path, compile=compile, restore_rng=restore_rng)
