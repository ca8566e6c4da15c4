"""Attention layers with Keras 3's names and call signatures: ``MultiHeadAttention``,
``Attention`` (Luong, dot-product) and ``AdditiveAttention`` (Bahdanau).

Every layer computes its weights with a numerically stable masked softmax: a query that may
attend to no key (all keys padded) gets zero weights and a zero output, never NaN.

Masks come from three places and are combined (as Keras does): the ``_keras_mask`` of the query
and value tensors (``Embedding(mask_zero=True)``), an explicit ``attention_mask`` ``(batch, L,
S)`` (True = may attend), and ``use_causal_mask=True`` (query ``i`` sees keys ``j <= i``; with a
key/value cache the queries are the last ``L`` positions and see every earlier key).
"""

from __future__ import annotations

import numpy as np

from ember import initializers as initializers_module
from ember import ops
from ember import regularizers as regularizers_module
from ember.layers.base import Layer, check_positive_int, check_rate
from ember.layers.core import weight_options_from_config
from ember.layers.regularization import _check_seed
from ember.ops.attention import masked_softmax, scaled_dot_product_attention
from ember.random import dropout
from ember.tensor import Tensor, default_rng

__all__ = ["MultiHeadAttention", "Attention", "AdditiveAttention", "attention_mask_from"]


def _as_bool(mask) -> np.ndarray | None:
    if mask is None:
        return None
    return np.asarray(mask.data if isinstance(mask, Tensor) else mask).astype(bool, copy=False)


def causal_mask(length: int, source: int, offset: int = 0) -> np.ndarray:
    """``(length, source)`` booleans: query ``i`` may attend to keys ``j <= i + offset``.

    ``offset=0`` is Keras' and PyTorch's lower triangle (also when ``length != source``); a
    decoder with a key/value cache passes ``offset = source - length``, because its queries are
    the last ``length`` of ``source`` positions.

    Example:
        >>> ember.layers.attention.causal_mask(2, 3)
        array([[ True, False, False],
               [ True,  True, False]])
        >>> ember.layers.attention.causal_mask(2, 3, offset=1)
        array([[ True,  True, False],
               [ True,  True,  True]])
    """
    return np.arange(source)[None, :] <= np.arange(length)[:, None] + offset


def _checked(layer: str, what: str, mask, expected: tuple) -> np.ndarray:
    """``mask`` as booleans, if its shape fits ``expected`` (``None`` = any size there)."""
    array = _as_bool(mask)
    fits = array.ndim == len(expected) and all(
        want is None or got in (want, 1) for got, want in zip(array.shape, expected)
    )
    if not fits:
        shown = tuple("batch" if size is None else size for size in expected)
        raise ValueError(
            f"{layer}: {what} must have shape {shown}, got {array.shape}"
        )
    return array


def attention_mask_from(
    query_mask=None, value_mask=None, attention_mask=None, use_causal_mask=False, *,
    length: int, source: int, causal_offset: int = 0, layer: str = "attention",
) -> np.ndarray | None:  # fmt: skip
    """The ``(batch, L, S)`` boolean mask (True = may attend) combining the padding masks of
    the query ``(batch, L)`` and of the value ``(batch, S)``, an explicit ``attention_mask``
    ``(batch, L, S)`` and the causal mask (:func:`causal_mask` with ``causal_offset``);
    ``None`` when nothing is masked. Each mask's shape is checked, naming ``layer``.

    Example:
        >>> ember.layers.attention_mask_from(value_mask=np.array([[1, 1, 0]]), length=2, source=3)
        array([[[ True,  True, False]]])
    """
    parts = []
    if query_mask is not None:
        parts.append(_checked(layer, "the query's mask", query_mask, (None, length))[:, :, None])
    if value_mask is not None:
        parts.append(_checked(layer, "the value's mask", value_mask, (None, source))[:, None, :])
    if attention_mask is not None:
        parts.append(_checked(layer, "attention_mask", attention_mask, (None, length, source)))
    if use_causal_mask:
        parts.append(causal_mask(length, source, causal_offset))
    combined = None
    for part in parts:
        try:
            combined = part if combined is None else combined & part
        except ValueError:
            raise ValueError(
                f"{layer}: the masks' batch sizes differ ({combined.shape} and {part.shape})"
            ) from None
    return combined


class _SeededDropout:
    """The attention-weight dropout of a layer: Ember's generator, or the layer's own seed."""

    def _init_dropout(self, dropout, seed) -> None:
        self.dropout = check_rate(self, "dropout", dropout)
        self.seed = _check_seed(self.name, seed)
        self._rng = None if self.seed is None else np.random.default_rng(self.seed)

    def _dropout_rate(self, training: bool) -> float:
        return self.dropout if training else 0.0

    def _generator(self):
        return default_rng() if self._rng is None else self._rng


class MultiHeadAttention(_SeededDropout, Layer):
    """Multi-head attention (Vaswani et al. 2017) with Keras 3's arguments.

    ``num_heads`` heads each project the query and key to ``key_dim`` features and the value to
    ``value_dim`` (default ``key_dim``), attend with scaled dot products, and the concatenated
    heads are projected to ``output_shape`` (default: the query's feature size).

    Call: ``layer(query, value, key=None, query_mask=None, value_mask=None, key_mask=None,
    attention_mask=None, return_attention_scores=False, training=None, use_causal_mask=False,
    cache=None)``. Inputs are ``(batch, length, features)``. ``attention_mask`` ``(batch, L,
    S)`` is True where a query may attend. With ``return_attention_scores`` the result is
    ``(output, scores)`` with scores ``(batch, heads, L, S)``.

    A key/value cache for generating one token at a time: pass ``cache={}`` on the first call
    and the dict the previous call returned afterwards; the call then returns ``(output,
    cache)`` where the cache holds the keys and values ``(batch, heads, positions, dim)`` of
    every position so far, so only the new positions are projected. (``cache=None``, the
    default, caches nothing.)

    Weights (Keras' shapes): ``query_kernel (features, heads, key_dim)``, ``key_kernel``,
    ``value_kernel (features, heads, value_dim)``, ``output_kernel (heads, value_dim, out)``
    and the biases.

    Example:
        >>> mha = ember.layers.MultiHeadAttention(num_heads=2, key_dim=4)
        >>> x = np.ones((3, 5, 8), np.float32)
        >>> out, scores = mha(x, x, return_attention_scores=True)
        >>> out.shape, scores.shape
        ((3, 5, 8), (3, 2, 5, 5))
    """

    def __init__(
        self,
        num_heads: int,
        key_dim: int,
        value_dim: int | None = None,
        dropout: float = 0.0,
        use_bias: bool = True,
        output_shape=None,
        attention_axes=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if attention_axes is not None and tuple(np.atleast_1d(attention_axes)) not in ((1,), (-2,)):
            raise ValueError(
                f'Layer "{self.name}" (MultiHeadAttention): only attention over the time axis '
                f"(attention_axes=None) is supported, got {attention_axes!r}"
            )
        self.num_heads = check_positive_int(self, "num_heads", num_heads)
        self.key_dim = check_positive_int(self, "key_dim", key_dim)
        self.value_dim = int(value_dim) if value_dim is not None else self.key_dim
        self.use_bias = bool(use_bias)
        if isinstance(output_shape, (list, tuple)):
            if len(output_shape) != 1:
                raise ValueError(
                    f'Layer "{self.name}" (MultiHeadAttention): output_shape must be one '
                    f"integer (the feature size), got {output_shape!r}"
                )
            output_shape = output_shape[0]
        self.output_shape_ = None if output_shape is None else int(output_shape)
        self.attention_axes = attention_axes
        self.kernel_initializer = initializers_module.get(kernel_initializer)
        self.bias_initializer = initializers_module.get(bias_initializer)
        self.kernel_regularizer = regularizers_module.get(kernel_regularizer)
        self.bias_regularizer = regularizers_module.get(bias_regularizer)
        self._init_dropout(dropout, seed)
        self.supports_masking = True

    def build(self, query_shape, value_shape=None, key_shape=None):
        value_shape = query_shape if value_shape is None else value_shape
        key_shape = value_shape if key_shape is None else key_shape
        heads = self.num_heads
        out = self.output_shape_ or query_shape[-1]
        for name, features, dim in (
            ("query", query_shape[-1], self.key_dim),
            ("key", key_shape[-1], self.key_dim),
            ("value", value_shape[-1], self.value_dim),
        ):
            setattr(self, f"{name}_kernel", self._weight((features, heads, dim), f"{name}_kernel"))
            setattr(self, f"{name}_bias", self._bias((heads, dim), f"{name}_bias"))
        self.output_kernel = self._weight((heads, self.value_dim, out), "output_kernel")
        self.output_bias = self._bias((out,), "output_bias")

    def _weight(self, shape, name):
        matrix = (
            (shape[0] * shape[1], shape[2]) if name == "output_kernel"
            else (shape[0], shape[1] * shape[2])
        )  # fmt: skip
        return self.add_weight(
            shape, _AsMatrix(self.kernel_initializer, matrix), name=name,
            regularizer=self.kernel_regularizer,
        )  # fmt: skip

    def _bias(self, shape, name):
        if not self.use_bias:
            return None
        return self.add_weight(
            shape, self.bias_initializer, name=name, regularizer=self.bias_regularizer
        )

    def _project(self, x: Tensor, kernel: Tensor, bias) -> Tensor:
        """``(batch, length, features)`` → ``(batch, heads, length, dim)`` with one GEMM."""
        features, heads, dim = kernel.shape
        flat = ops.linear(
            x, ops.reshape(kernel, (features, heads * dim)),
            None if bias is None else ops.reshape(bias, (heads * dim,)),
        )  # fmt: skip
        return ops.transpose(ops.reshape(flat, (*x.shape[:2], heads, dim)), (0, 2, 1, 3))

    def call(
        self, query, value, key=None, query_mask=None, value_mask=None, key_mask=None,
        attention_mask=None, return_attention_scores=False, training=False,
        use_causal_mask=False, cache=None,
    ):  # fmt: skip
        key = value if key is None else key
        self._check_inputs(query, value, key)
        if query_mask is None:
            query_mask = query._keras_mask
        if value_mask is None:
            value_mask = value._keras_mask
        if key_mask is not None:
            value_mask = (
                key_mask if value_mask is None else _as_bool(value_mask) & _as_bool(key_mask)
            )
        q = self._project(query, self.query_kernel, self.query_bias)
        k = self._project(key, self.key_kernel, self.key_bias)
        v = self._project(value, self.value_kernel, self.value_bias)
        if cache:  # a previous call's keys and values come first
            k = ops.concatenate([cache["key"], k], axis=2)
            v = ops.concatenate([cache["value"], v], axis=2)
            if value_mask is not None and "value_mask" in cache:
                value_mask = np.concatenate([cache["value_mask"], _as_bool(value_mask)], axis=1)
        length, source = q.shape[2], k.shape[2]
        if value_mask is not None and _as_bool(value_mask).shape[1] != source:
            value_mask = None if cache is not None else value_mask  # cache without a mask
        mask = attention_mask_from(
            query_mask, value_mask, attention_mask, use_causal_mask, length=length,
            source=source, causal_offset=source - length if cache else 0,
            layer=f'Layer "{self.name}" (MultiHeadAttention)',
        )  # fmt: skip
        if mask is not None and mask.ndim == 3:
            mask = mask[:, None]  # the same mask for every head
        attended = scaled_dot_product_attention(
            q, k, v, mask, dropout=self._dropout_rate(training), seed=self._generator(),
            return_weights=return_attention_scores,
        )  # fmt: skip
        scores = None
        if return_attention_scores:
            attended, scores = attended
        heads, dim = self.num_heads, self.value_dim
        merged = ops.reshape(ops.transpose(attended, (0, 2, 1, 3)), (*query.shape[:2], heads * dim))
        output = ops.linear(
            merged, ops.reshape(self.output_kernel, (heads * dim, -1)), self.output_bias
        )
        result = (output, scores) if return_attention_scores else output
        if cache is None:
            return result
        new_cache = {"key": k, "value": v}
        if value_mask is not None:
            new_cache["value_mask"] = _as_bool(value_mask)
        return (*result, new_cache) if return_attention_scores else (output, new_cache)

    def _check_inputs(self, query, value, key) -> None:
        for label, tensor in (("query", query), ("value", value), ("key", key)):
            if tensor.ndim != 3:
                raise ValueError(
                    f'Layer "{self.name}" (MultiHeadAttention): {label} must be (batch, length, '
                    f"features), got shape {tensor.shape}"
                )
        if key.shape[1] != value.shape[1]:
            raise ValueError(
                f'Layer "{self.name}" (MultiHeadAttention): key and value must have the same '
                f"length, got key {key.shape} and value {value.shape}"
            )

    def compute_mask(self, inputs, mask=None):
        return inputs._keras_mask if isinstance(inputs, Tensor) else None  # the query's

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "value_dim": self.value_dim,
            "dropout": self.dropout,
            "use_bias": self.use_bias,
            "output_shape": self.output_shape_,
            "attention_axes": self.attention_axes,
            "kernel_initializer": initializers_module.serialize(self.kernel_initializer),
            "bias_initializer": initializers_module.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers_module.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers_module.serialize(self.bias_regularizer),
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**weight_options_from_config(config))


class _AsMatrix:
    """Initialise a 3-D kernel as the 2-D matrix it multiplies as (``(features, heads * dim)``
    for the input projections, ``(heads * dim, out)`` for the output), so that Glorot's fans are
    those of the projection, as PyTorch's ``nn.MultiheadAttention`` has them. (Keras' EinsumDense
    counts the first axis as a receptive field instead, which gives a ~4x smaller scale.)"""

    def __init__(self, initializer, matrix: tuple):
        self.initializer = initializer
        self.matrix = matrix

    def __call__(self, shape, dtype=None):
        return np.asarray(self.initializer(self.matrix, dtype=dtype)).reshape(shape)


class _ScoreAttention(_SeededDropout, Layer):
    """What ``Attention`` and ``AdditiveAttention`` share: the inputs ``[query, value]`` or
    ``[query, value, key]``, masks, dropout, and ``softmax(scores) @ value``."""

    def __init__(self, dropout: float = 0.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self._init_dropout(dropout, seed)
        self.supports_masking = True

    def _split(self, inputs):
        """``(query, value, key)`` from ``[query, value]`` or ``[query, value, key]`` (tensors,
        or their shapes when called from ``build``), each checked to be 3-D."""
        parts = list(inputs) if isinstance(inputs, (list, tuple)) else None
        if parts and all(p is None or isinstance(p, (int, np.integer)) for p in parts):
            parts = None  # one tensor's shape (build), not a list of shapes
        if parts is None or len(parts) not in (2, 3):
            got = type(inputs).__name__ if parts is None else f"a list of {len(parts)}"
            raise ValueError(
                f'Layer "{self.name}" ({type(self).__name__}) takes a list [query, value] or '
                f"[query, value, key], got {got}"
            )
        query, value = parts[0], parts[1]
        key = parts[2] if len(parts) == 3 else value
        for label, part in (("query", query), ("value", value), ("key", key)):
            shape = part if isinstance(part, tuple) else tuple(part.shape)
            if len(shape) != 3:
                raise ValueError(
                    f'Layer "{self.name}" ({type(self).__name__}): {label} must be (batch, '
                    f"length, features), got shape {shape}"
                )
        return query, value, key

    def call(
        self, inputs, mask=None, training=False, return_attention_scores=False,
        use_causal_mask=False,
    ):  # fmt: skip
        query, value, key = self._split(inputs)
        masks = list(mask) if isinstance(mask, (list, tuple)) else [None, None]
        query_mask, value_mask = (masks + [None, None])[:2]
        scores = self._scores(query, key)
        layer = f'Layer "{self.name}" ({type(self).__name__})'
        if query_mask is not None:
            _checked(layer, "the query's mask", query_mask, (None, query.shape[1]))
        keep = attention_mask_from(
            None, value_mask, None, use_causal_mask,
            length=query.shape[1], source=key.shape[1], layer=layer,
        )  # fmt: skip
        weights = masked_softmax(scores, keep, axis=-1)
        rate = self._dropout_rate(training)
        dropped = weights if rate == 0.0 else dropout(weights, rate, seed=self._generator())
        output = ops.matmul(dropped, value)
        if query_mask is not None:
            output = output * _as_bool(query_mask)[:, :, None].astype(output.dtype)
        return (output, weights) if return_attention_scores else output

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)) and mask:
            first = mask[0]
            return None if first is None else Tensor(_as_bool(first))
        return None


class Attention(_ScoreAttention):
    """Dot-product (Luong) attention: ``softmax(query @ key^T) @ value`` (Keras' ``Attention``).

    Args:
        use_scale: learn a scalar that multiplies the scores (initialised to 1).
        score_mode: ``"dot"`` or ``"concat"`` (``sum(tanh(query + key))`` times a learned
            scalar).
        dropout: on the attention weights, in training.

    Call: ``layer([query, value])`` or ``layer([query, value, key])`` with ``(batch, L, dim)``
    and ``(batch, S, dim)`` tensors, ``mask=[query_mask, value_mask]`` (taken from the inputs'
    masks when not given), ``return_attention_scores``, ``use_causal_mask``.

    Example:
        >>> query, value = np.ones((2, 3, 4)), np.ones((2, 5, 4))
        >>> ember.layers.Attention()([query, value]).shape
        (2, 3, 4)
    """

    def __init__(self, use_scale: bool = False, score_mode: str = "dot", **kwargs):
        super().__init__(**kwargs)
        if score_mode not in ("dot", "concat"):
            raise ValueError(
                f'Layer "{self.name}" (Attention): score_mode must be "dot" or "concat", got '
                f"{score_mode!r}"
            )
        self.use_scale = bool(use_scale)
        self.score_mode = score_mode

    def build(self, input_shape):
        self._split(input_shape)  # a clear error for a wrong structure, before any weight
        self.scale = self.add_weight((), "ones", name="scale") if self.use_scale else None
        self.concat_score_weight = (
            self.add_weight((), "ones", name="concat_score_weight")
            if self.score_mode == "concat"
            else None
        )

    def _scores(self, query, key):
        if self.score_mode == "dot":
            scores = ops.matmul(query, ops.transpose(key, (0, 2, 1)))
            return scores * self.scale if self.scale is not None else scores
        q = ops.unsqueeze(query, 2)  # (batch, L, 1, dim) + (batch, 1, S, dim)
        k = ops.unsqueeze(key, 1)
        summed = q + k if self.scale is None else (q + k) * self.scale
        return self.concat_score_weight * ops.sum(ops.tanh(summed), axis=-1)

    def get_config(self):
        return {
            **super().get_config(),
            "use_scale": self.use_scale,
            "score_mode": self.score_mode,
            "dropout": self.dropout,
            "seed": self.seed,
        }


class AdditiveAttention(_ScoreAttention):
    """Additive (Bahdanau) attention: scores ``sum(scale * tanh(query + key), axis=-1)``
    (Keras' ``AdditiveAttention``).

    Args:
        use_scale: learn the per-feature ``scale`` vector (initialised Glorot-uniform);
            otherwise it is 1.
        dropout: on the attention weights, in training.

    Example:
        >>> query, value = np.ones((2, 3, 4)), np.ones((2, 5, 4))
        >>> ember.layers.AdditiveAttention()([query, value]).shape
        (2, 3, 4)
    """

    def __init__(self, use_scale: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.use_scale = bool(use_scale)

    def build(self, input_shape):
        query_shape = self._split(input_shape)[0]
        dim = query_shape[-1]
        self.scale = (
            self.add_weight((dim,), "glorot_uniform", name="scale") if self.use_scale else None
        )

    def _scores(self, query, key):
        summed = ops.tanh(ops.unsqueeze(query, 2) + ops.unsqueeze(key, 1))
        if self.scale is not None:
            summed = summed * self.scale
        return ops.sum(summed, axis=-1)

    def get_config(self):
        return {
            **super().get_config(),
            "use_scale": self.use_scale,
            "dropout": self.dropout,
            "seed": self.seed,
        }

