"""Regularization layers: ``Dropout``, ``SpatialDropout2D`` and ``GaussianNoise``, active only in
training, and ``ActivityRegularization``, a penalty on the activations passing through.

The random layers are the identity in inference (the input tensor itself is returned, so the
output is bit-exact) and draw no random numbers there, so evaluating or predicting never shifts
the random stream of a training run. Randomness comes from Ember's generator
(``ember.manual_seed``) or, with ``seed=``, from a generator owned by the layer.
"""

from __future__ import annotations

import math

import numpy as np

from ember import ops, regularizers
from ember.layers.base import InputSpec, Layer
from ember.layers.conv import _data_format
from ember.tensor import Tensor, default_rng

__all__ = ["Dropout", "GaussianNoise", "SpatialDropout2D"]


def _check_seed(layer: str, seed) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(
            f'Layer "{layer}": seed must be None or a non-negative integer, got {seed!r}'
        )
    return int(seed)


class _RandomLayer(Layer):
    _single_input = True
    supports_masking = True

    def _init_rng(self, seed) -> None:
        self.seed = _check_seed(self.name, seed)
        # A seeded layer owns its generator: same seed, same sequence of masks; consecutive
        # calls advance it, so masks differ from step to step.
        self._rng = None if self.seed is None else np.random.default_rng(self.seed)

    def _generator(self) -> np.random.Generator:
        return default_rng() if self._rng is None else self._rng


class Dropout(_RandomLayer):
    """Inverted dropout: in training each element is zeroed with probability ``rate`` and the
    kept ones are scaled by ``1 / (1 − rate)``, so ``E[output] = input``; in inference the input
    passes through unchanged.

    Args:
        rate: drop probability in ``[0, 1)``; ``0`` is the identity.
        noise_shape: shape of the mask, broadcast against the input; ``None`` entries take the
            input's size (``(None, 1)`` on an ``(N, F)`` input drops whole samples).
        seed: optional integer for a layer-owned generator; otherwise Ember's generator.

    Example:
        >>> drop = ember.layers.Dropout(0.5)
        >>> y = drop(np.ones((2, 4)), training=True)   # zeros and 2.0s
        >>> drop(np.ones((2, 4))).numpy()              # inference (default): unchanged
        array([[1., 1., 1., 1.],
               [1., 1., 1., 1.]], dtype=float32)
    """

    def __init__(self, rate: float, noise_shape=None, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        try:
            value = float(rate)
        except (TypeError, ValueError):
            value = math.nan
        if isinstance(rate, bool) or not 0.0 <= value < 1.0:
            raise ValueError(
                f'Layer "{self.name}": rate must be a number in [0, 1) (the fraction of units to '
                f"drop), got {rate!r}"
            )
        self.rate = value
        if noise_shape is not None:
            if not isinstance(noise_shape, (list, tuple)) or any(
                s is not None and (isinstance(s, bool) or not isinstance(s, (int, np.integer)))
                for s in noise_shape
            ):
                raise ValueError(
                    f'Layer "{self.name}": noise_shape must be a list of integers or None, got '
                    f"{noise_shape!r}"
                )
            noise_shape = tuple(None if s is None else int(s) for s in noise_shape)
        self.noise_shape = noise_shape
        self._init_rng(seed)

    def _mask_shape(self, shape: tuple) -> tuple:
        if self.noise_shape is None:
            return shape
        if len(self.noise_shape) != len(shape) or any(
            s is not None and s not in (1, n) for s, n in zip(self.noise_shape, shape)
        ):
            raise ValueError(
                f'Layer "{self.name}": noise_shape {self.noise_shape} does not broadcast against '
                f"the input shape {shape}"
            )
        return tuple(n if s is None else s for s, n in zip(self.noise_shape, shape))

    def call(self, inputs, training=False):
        if not training or self.rate == 0.0:
            return inputs
        dtype = inputs.dtype
        keep = self._generator().random(self._mask_shape(inputs.shape), dtype=dtype) >= dtype.type(
            self.rate
        )
        mask = keep * dtype.type(1.0 / (1.0 - self.rate))
        return ops.mul(inputs, Tensor(mask.astype(dtype, copy=False)))

    def get_config(self):
        return {
            **super().get_config(),
            "rate": self.rate,
            "noise_shape": None if self.noise_shape is None else list(self.noise_shape),
            "seed": self.seed,
        }


class GaussianNoise(_RandomLayer):
    """Adds zero-mean Gaussian noise of standard deviation ``stddev`` in training only
    (a regularizer and a simple data augmentation); identity in inference.

    Example:
        >>> noisy = ember.layers.GaussianNoise(0.1)
        >>> y = noisy(np.zeros((2, 3)), training=True)   # ≈ N(0, 0.01) values
    """

    def __init__(self, stddev: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        try:
            value = float(stddev)
        except (TypeError, ValueError):
            value = math.nan
        if isinstance(stddev, bool) or not (value >= 0 and math.isfinite(value)):
            raise ValueError(
                f'Layer "{self.name}": stddev must be a non-negative number, got {stddev!r}'
            )
        self.stddev = value
        self._init_rng(seed)

    def call(self, inputs, training=False):
        if not training or self.stddev == 0.0:
            return inputs
        dtype = inputs.dtype
        noise = self._generator().standard_normal(inputs.shape, dtype=dtype) * dtype.type(
            self.stddev
        )
        return ops.add(inputs, Tensor(noise))

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


class SpatialDropout2D(Dropout):
    """Dropout of whole feature maps: in training each channel of each sample is zeroed with
    probability ``rate`` (kept ones scaled by ``1 / (1 − rate)``). Neighbouring pixels of a
    feature map are strongly correlated, so dropping single pixels regularizes convolutions
    little; dropping maps does (Tompson et al. 2015).

    Args:
        rate: drop probability in ``[0, 1)``.
        data_format: ``"channels_last"`` (NHWC, default) or ``"channels_first"``.
        seed: optional integer for a layer-owned generator.

    Example:
        >>> y = ember.layers.SpatialDropout2D(0.5)(np.ones((2, 4, 4, 3)), training=True)
        >>> # each (sample, channel) map is all 0 or all 2
    """

    def __init__(self, rate: float, data_format=None, seed: int | None = None, **kwargs):
        super().__init__(rate, seed=seed, **kwargs)
        self.data_format = _data_format(data_format, self.name)
        layout = "NHWC" if self.data_format == "channels_last" else "NCHW"
        self.input_spec = InputSpec(ndim=4, layout=layout)
        self.noise_shape = (None, 1, 1, None) if layout == "NHWC" else (None, None, 1, 1)

    def get_config(self):
        config = super().get_config()
        del config["noise_shape"]
        return {**config, "data_format": self.data_format}


class ActivityRegularization(Layer):
    """Passes its input through unchanged and adds ``l1 * sum|x| + l2 * sum x²`` of it to the
    loss, divided by the batch size (as ``activity_regularizer=`` on Dense does, tf.keras'
    convention) — e.g. after an encoder, for a sparse code.

    Example:
        >>> reg = ember.layers.ActivityRegularization(l1=0.1)
        >>> out = reg(np.array([[1.0, -2.0], [0.0, 3.0]]))
        >>> out.numpy().tolist(), round(float(reg.losses[0].item()), 6)
        ([[1.0, -2.0], [0.0, 3.0]], 0.3)
    """

    supports_masking = True

    def __init__(self, l1: float = 0.0, l2: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("l1", l1), ("l2", l2)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(
                    f'Layer "{self.name}": {name} must be a non-negative number, got {value!r}'
                )
        self.l1, self.l2 = float(l1), float(l2)
        self._regularizer = regularizers.L1L2(l1=self.l1, l2=self.l2)

    def call(self, inputs):
        # a batch of zero samples has a zero penalty, not 0/0
        self._losses.append(self._regularizer(inputs) / max(inputs.shape[0], 1))
        return inputs

    def get_config(self):
        return {**super().get_config(), "l1": self.l1, "l2": self.l2}
