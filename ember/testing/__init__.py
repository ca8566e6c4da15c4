"""Tools for testing differentiable code: Ember's own tests use them, and so can yours."""

from ember.testing.gradcheck import GradcheckError, GradcheckResult, gradcheck
from ember.testing.parity import assert_matches_torch, require_torch

__all__ = [
    "gradcheck",
    "GradcheckResult",
    "GradcheckError",
    "assert_matches_torch",
    "require_torch",
]
