"""Models: ``Sequential``, the functional/subclassed ``Model``, and ``load_model``."""

from ember.models import zoo
from ember.models.model import Model, NonFiniteLossError, Sequential
from ember.models.saving import load_model

__all__ = ["Model", "Sequential", "NonFiniteLossError", "load_model", "zoo"]
