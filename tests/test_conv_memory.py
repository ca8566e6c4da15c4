"""§ 3.1 of the reliability catalogue for convolutions: a float32 convnet stays float32 in every
forward value and every gradient, and ``predict`` works in chunks whose memory does not grow with
the number of images (the im2col matrix is bounded by the batch: ``batch · Ho · Wo · kh · kw · C``
floats per convolution)."""

from __future__ import annotations

import resource
import sys
import tracemalloc

import numpy as np
import pytest
from _helpers import run_child

import ember
from ember import backend
from ember.models import zoo
from ember.tensor import Tensor


def _convnet():
    ember.manual_seed(0)
    model = zoo.convnet_bn((12, 12, 1), 10, augment=True, flip=True)
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def test_float32_convnet_never_computes_in_float64(monkeypatch):
    """Every op output and every gradient flowing backward through the graph is float32."""
    seen_forward, seen_backward = [], []
    original = Tensor._from_op

    def spy(data, parents, backward, op):
        seen_forward.append((op, data.dtype))

        def checked(g):
            grads = backward(g)
            seen_backward.append((op, g.dtype, [None if x is None else x.dtype for x in grads]))
            return grads

        return original(data, parents, checked, op)

    monkeypatch.setattr(Tensor, "_from_op", staticmethod(spy))
    model = _convnet()
    x = np.random.default_rng(0).random((16, 12, 12, 1))  # float64 data: cast once at the input
    model.fit(x, np.arange(16) % 10, batch_size=8, epochs=1, verbose=0)
    assert seen_forward and seen_backward
    assert {dtype for _, dtype in seen_forward} == {np.dtype(np.float32)}, seen_forward
    for op, g_dtype, grads in seen_backward:
        assert g_dtype == np.float32, op
        assert all(d in (None, np.dtype(np.float32)) for d in grads), (op, grads)
    assert all(p.dtype == np.float32 for p in model.parameters())


def _peak_predict_bytes(model, n):
    x = np.random.default_rng(1).random((n, 12, 12, 1)).astype(np.float32)
    tracemalloc.start()
    tracemalloc.reset_peak()
    out = model.predict(x, batch_size=100)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert out.shape == (n, 10) and out.dtype == np.float32
    return peak - out.nbytes


def test_predict_memory_does_not_grow_with_the_number_of_images():
    model = _convnet()
    model.predict(np.zeros((100, 12, 12, 1), np.float32))  # build and warm up
    small = _peak_predict_bytes(model, 1_000)
    large = _peak_predict_bytes(model, 10_000)
    # the working set is one batch of 100 images through the network (≈ a few MB)
    assert large < 1.3 * small, (small, large)
    assert large < 40 * 2**20


def test_allocator_tuning_removes_page_faults_from_training_steps():
    """Linux/glibc: after the first step, later steps reuse freed memory instead of faulting
    fresh pages in (``ember.backend.tune_allocator``); ``EMBER_MALLOC_TUNING=0`` opts out."""
    if not (sys.platform.startswith("linux") and backend.ALLOCATOR_TUNED):
        pytest.skip("allocator tuning applies to Linux with glibc only")
    model = _convnet()
    x = np.random.default_rng(0).random((64, 12, 12, 1)).astype(np.float32)
    y = np.arange(64) % 10
    model.fit(x, y, batch_size=64, epochs=2, verbose=0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    model.fit(x, y, batch_size=64, epochs=5, verbose=0)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    # without the tuning this run faults ~24,500 pages (thousands per step); with it, a few
    # hundred at most (first touches of the heap growing, interpreter allocations)
    assert faults < 2_000, faults
    code = "import os; os.environ['EMBER_MALLOC_TUNING'] = '0'; import ember.backend as b; "
    assert run_child(code + "print(b.ALLOCATOR_TUNED)").strip() == "False"
