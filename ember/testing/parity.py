"""Run one computation in Ember and in PyTorch and compare values and gradients.

Example (in a test):
    >>> from ember.testing import assert_matches_torch
    >>> assert_matches_torch(lambda x: x.tanh(), lambda x: x.tanh(), [(3, 4)])
"""

from __future__ import annotations

import os
import unittest
from collections.abc import Callable, Sequence

import numpy as np

from ember.tensor import Tensor

__all__ = ["assert_matches_torch", "require_torch"]


def require_torch():
    """Import torch, or skip the calling test with the reason (fail instead when CI demands it).

    Set ``EMBER_REQUIRE_TORCH=1`` (``.ci/run`` does) to turn a missing torch into an error, so
    parity tests can never be skipped silently in CI.
    """
    try:
        import torch
    except ImportError:
        message = (
            "PyTorch is not installed; parity tests need it: pip install torch==2.13.0 "
            "(or `make test`, which installs the dev extras)"
        )
        if os.environ.get("EMBER_REQUIRE_TORCH") == "1":
            raise RuntimeError(message) from None
        raise unittest.SkipTest(message) from None
    torch.set_num_threads(1)
    return torch


def _inputs(specs, rng, low, high, dtype):
    arrays = []
    for spec in specs:
        if isinstance(spec, np.ndarray):
            arrays.append(spec)
        else:
            arrays.append(rng.uniform(low, high, size=spec).astype(dtype))
    return arrays


def assert_matches_torch(
    ember_fn: Callable,
    torch_fn: Callable,
    inputs: Sequence,
    *,
    dtype=np.float32,
    atol: float = 1e-5,
    rtol: float = 1e-5,
    grad_atol: float = 1e-4,
    grad_rtol: float = 1e-3,
    low: float = -2.0,
    high: float = 2.0,
    seed: int = 0,
    grad: bool = True,
) -> None:
    """Assert that ``ember_fn`` and ``torch_fn`` agree in forward value and gradient.

    ``inputs`` holds shapes (drawn uniformly from ``[low, high]``) or ready arrays; float arrays
    become differentiable tensors, integer arrays (labels, indices) are passed as they are. The
    outputs must match in shape and dtype and within ``atol + rtol·|torch|``; then both are
    contracted with the same random cotangent and the input gradients compared.
    """
    torch = require_torch()
    rng = np.random.default_rng(seed)
    arrays = _inputs(inputs, rng, low, high, dtype)
    differentiable = [a.dtype.kind == "f" and grad for a in arrays]

    e_in = [Tensor(a.copy(), requires_grad=d) for a, d in zip(arrays, differentiable)]
    t_in = [torch.tensor(a.copy(), requires_grad=d) for a, d in zip(arrays, differentiable)]
    e_out = ember_fn(*e_in)
    t_out = torch_fn(*t_in)
    t_np = t_out.detach().numpy()
    assert e_out.shape == t_np.shape, f"forward shape: ember {e_out.shape} vs torch {t_np.shape}"
    assert e_out.dtype == t_np.dtype, f"forward dtype: ember {e_out.dtype} vs torch {t_np.dtype}"
    np.testing.assert_allclose(e_out.data, t_np, atol=atol, rtol=rtol, err_msg="forward value")
    if not any(differentiable):
        return

    cotangent = rng.standard_normal(e_out.shape).astype(e_out.dtype)
    (e_out * Tensor(cotangent)).sum().backward()
    (t_out * torch.tensor(cotangent)).sum().backward()
    for i, (e, t, d) in enumerate(zip(e_in, t_in, differentiable)):
        if not d:
            continue
        t_grad = np.zeros_like(arrays[i]) if t.grad is None else t.grad.numpy()
        e_grad = np.zeros_like(arrays[i]) if e.grad is None else e.grad
        assert e_grad.dtype == t_grad.dtype, f"grad {i} dtype: {e_grad.dtype} vs {t_grad.dtype}"
        np.testing.assert_allclose(
            e_grad, t_grad, atol=grad_atol, rtol=grad_rtol, err_msg=f"gradient of input {i}"
        )
