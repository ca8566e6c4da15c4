"""Every layer class survives ``from_config(get_config())``: the rebuilt layer, given the
original's weights, computes the same outputs (what ``save``/``load_model`` rely on). The rows
are those of the zero-row table, which covers every class ``ember.layers`` exports."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_zero_rows import _CASES

import ember
from ember import layers


def _rows():
    for name, rows in _CASES.items():
        for i, (kwargs, shape) in enumerate(rows):
            yield pytest.param(name, kwargs, shape, id=f"{name}-{i}")


@pytest.mark.parametrize("name, kwargs, shape", list(_rows()))
def test_config_round_trip_computes_the_same(name, kwargs, shape):
    ember.manual_seed(0)
    layer = getattr(layers, name)(**kwargs)
    x = np.random.default_rng(0).standard_normal((2, *shape)).astype(np.float32)
    before = layer(x, training=False).numpy()
    config = layer.get_config()
    json.dumps(config)  # a checkpoint stores it as JSON
    rebuilt = type(layer).from_config(config)
    rebuilt(x, training=False)
    rebuilt.set_weights(layer.get_weights())
    np.testing.assert_array_equal(rebuilt(x, training=False).numpy(), before, err_msg=name)
