"""Transformer building blocks (the names and arguments of KerasHub's layers): positional
encodings, ``TransformerEncoder`` and ``TransformerDecoder``.

A block is self-attention (and, in a decoder given an encoder sequence, cross-attention), then a
position-wise feed-forward network, each wrapped in a residual connection with dropout and
``LayerNormalization``: after the sum (``normalize_first=False``, the original paper and
PyTorch's default) or before the sub-layer (``normalize_first=True``, GPT-2's pre-norm).
"""

from __future__ import annotations

import numpy as np

from ember import activations as activations_module
from ember import initializers as initializers_module
from ember import ops
from ember.layers.attention import MultiHeadAttention
from ember.layers.base import Layer, check_positive_int, check_rate, in_shape_inference
from ember.layers.core import Dense, Embedding, weight_options_from_config
from ember.layers.normalization import LayerNormalization
from ember.layers.regularization import Dropout
from ember.tensor import Tensor

__all__ = [
    "SinePositionEncoding",
    "PositionEmbedding",
    "TokenAndPositionEmbedding",
    "TransformerEncoder",
    "TransformerDecoder",
]


def _start(layer: Layer, start_index) -> int:
    if isinstance(start_index, bool) or not isinstance(start_index, (int, np.integer)) or (
        start_index < 0
    ):
        raise ValueError(
            f'Layer "{layer.name}": start_index must be a non-negative integer, got '
            f"{start_index!r}"
        )
    return int(start_index)


class SinePositionEncoding(Layer):
    """The fixed sinusoidal position encoding of Vaswani et al.: feature ``2i`` of position
    ``p`` is ``sin(p / max_wavelength^(2i/d))`` and feature ``2i + 1`` the cosine of the same
    angle. Returns the encoding in the input's shape, to be added to it.

    ``start_index`` shifts the positions (a decoder generating token ``t`` with a cache).

    Example:
        >>> x = np.zeros((2, 4, 6), np.float32)
        >>> encoding = ember.layers.SinePositionEncoding()(x)
        >>> encoding.shape, float(encoding.numpy()[0, 0, 1])  # position 0: sin 0, cos 0
        ((2, 4, 6), 1.0)
    """

    _single_input = True

    def __init__(self, max_wavelength: float = 10000.0, **kwargs):
        super().__init__(**kwargs)
        self.max_wavelength = float(max_wavelength)

    def call(self, inputs, start_index=0):
        start = _start(self, start_index)
        length, features = inputs.shape[-2], inputs.shape[-1]
        positions = np.arange(start, start + length, dtype=np.float64)[:, None]
        pair = np.arange(features) // 2 * 2  # the even index of each sin/cos pair
        angles = positions / self.max_wavelength ** (pair / features)
        encoding = np.where(np.arange(features) % 2 == 0, np.sin(angles), np.cos(angles))
        return Tensor(np.broadcast_to(encoding.astype(inputs.dtype), inputs.shape))

    def get_config(self):
        return {**super().get_config(), "max_wavelength": self.max_wavelength}


class PositionEmbedding(Layer):
    """A learned embedding per position, up to ``sequence_length`` positions; returns the
    embeddings of the input's positions in the input's shape, to be added to it.

    Example:
        >>> layer = ember.layers.PositionEmbedding(sequence_length=10)
        >>> layer(np.zeros((2, 4, 6), np.float32)).shape
        (2, 4, 6)
    """

    _single_input = True

    def __init__(self, sequence_length: int, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.sequence_length = check_positive_int(self, "sequence_length", sequence_length)
        self.initializer = initializers_module.get(initializer)

    def build(self, input_shape):
        self.position_embeddings = self.add_weight(
            (self.sequence_length, input_shape[-1]), self.initializer, name="embeddings"
        )

    def call(self, inputs, start_index=0):
        start = _start(self, start_index)
        length = inputs.shape[-2]
        if start + length > self.sequence_length and not in_shape_inference():
            raise ValueError(
                f'Layer "{self.name}" (PositionEmbedding) knows {self.sequence_length} positions, '
                f"but positions {start}..{start + length - 1} were asked for; raise "
                "sequence_length"
            )
        if start + length > self.sequence_length and in_shape_inference():
            # a functional model probing a variable length (Input(shape=(None,))) with a size
            # this layer does not know: the shape is all it needs
            return ops.zeros_like(inputs)
        rows = self.position_embeddings[start : start + length]
        return ops.reshape(rows, (1,) * (inputs.ndim - 2) + rows.shape) + ops.zeros_like(inputs)

    def get_config(self):
        return {
            **super().get_config(),
            "sequence_length": self.sequence_length,
            "initializer": initializers_module.serialize(self.initializer),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["initializer"] = initializers_module.deserialize(
            config.get("initializer", "glorot_uniform"), "glorot_uniform"
        )
        return cls(**config)


class TokenAndPositionEmbedding(Layer):
    """Token embedding plus learned position embedding: ``(batch, length)`` ids →
    ``(batch, length, embedding_dim)``. With ``mask_zero=True`` id 0 is padding and the output
    carries the mask.

    Example:
        >>> layer = ember.layers.TokenAndPositionEmbedding(100, 16, 8, mask_zero=True)
        >>> out = layer(np.array([[5, 7, 0]]))
        >>> out.shape, out._keras_mask.numpy().tolist()
        ((1, 3, 8), [[True, True, False]])
    """

    _single_input = True
    _autocast_inputs = False

    def __init__(
        self, vocabulary_size: int, sequence_length: int, embedding_dim: int,
        mask_zero: bool = False, embeddings_initializer="uniform", **kwargs,
    ):  # fmt: skip
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.sequence_length = sequence_length
        self.embedding_dim = embedding_dim
        self.mask_zero = bool(mask_zero)
        self.token_embedding = Embedding(
            vocabulary_size, embedding_dim, embeddings_initializer=embeddings_initializer,
            mask_zero=mask_zero, name=f"{self.name}_token", dtype=self.dtype,
        )  # fmt: skip
        self.position_embedding = PositionEmbedding(
            sequence_length, name=f"{self.name}_position", dtype=self.dtype
        )
        self.supports_masking = self.mask_zero

    def call(self, inputs, start_index=0):
        tokens = self.token_embedding(inputs)
        return tokens + self.position_embedding(tokens, start_index=start_index)

    def compute_mask(self, inputs, mask=None):
        return self.token_embedding.compute_mask(inputs)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "sequence_length": self.sequence_length,
            "embedding_dim": self.embedding_dim,
            "mask_zero": self.mask_zero,
            "embeddings_initializer": initializers_module.serialize(
                self.token_embedding.embeddings_initializer
            ),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["embeddings_initializer"] = initializers_module.deserialize(
            config.get("embeddings_initializer", "uniform"), "uniform"
        )
        return cls(**config)


# ------------------------------------------------------------------------------ blocks
class _Block(Layer):
    """Options and sub-layers the encoder and decoder blocks share."""

    def __init__(
        self,
        intermediate_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        activation="relu",
        layer_norm_epsilon: float = 1e-5,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        normalize_first: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.intermediate_dim = check_positive_int(self, "intermediate_dim", intermediate_dim)
        self.num_heads = check_positive_int(self, "num_heads", num_heads)
        self.dropout = check_rate(self, "dropout", dropout)
        self.activation = activations_module.get(activation)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.kernel_initializer = initializers_module.get(kernel_initializer)
        self.bias_initializer = initializers_module.get(bias_initializer)
        self.normalize_first = bool(normalize_first)
        self.supports_masking = True

    def _key_dim(self, hidden: int) -> int:
        if hidden % self.num_heads:
            raise ValueError(
                f'Layer "{self.name}" ({type(self).__name__}): the feature size {hidden} must be '
                f"divisible by num_heads={self.num_heads}"
            )
        return hidden // self.num_heads

    def _attention(self, hidden: int, label: str) -> MultiHeadAttention:
        return MultiHeadAttention(
            self.num_heads, self._key_dim(hidden), dropout=self.dropout,
            kernel_initializer=self.kernel_initializer, bias_initializer=self.bias_initializer,
            name=f"{self.name}_{label}", dtype=self.dtype,
        )  # fmt: skip

    def _norm(self, label: str) -> LayerNormalization:
        return LayerNormalization(
            epsilon=self.layer_norm_epsilon, name=f"{self.name}_{label}", dtype=self.dtype
        )

    def _build_feedforward(self, hidden: int) -> None:
        options = dict(
            kernel_initializer=self.kernel_initializer,
            bias_initializer=self.bias_initializer,
            dtype=self.dtype,
        )
        self.feedforward_norm = self._norm("feedforward_norm")
        self.feedforward_intermediate = Dense(
            self.intermediate_dim, activation=self.activation,
            name=f"{self.name}_feedforward_intermediate", **options,
        )  # fmt: skip
        self.feedforward_output = Dense(
            hidden, name=f"{self.name}_feedforward_output", **options
        )
        self.feedforward_dropout = Dropout(self.dropout, dtype=self.dtype)

    def _residual(self, x, norm, sublayer, training):
        """``norm(x + dropout(sublayer(x)))``, or ``x + dropout(sublayer(norm(x)))`` pre-norm.
        ``sublayer`` may return ``(output, extra)``; the extra part is passed back."""
        inner = norm(x) if self.normalize_first else x
        result = sublayer(inner)
        extra = None
        if isinstance(result, tuple):
            result, extra = result
        out = x + self.feedforward_dropout(result, training=training)
        return (out if self.normalize_first else norm(out)), extra

    def _feedforward(self, x, training):
        def network(h):
            hidden = self.feedforward_intermediate(h)
            return self.feedforward_output(self.feedforward_dropout(hidden, training=training))

        return self._residual(x, self.feedforward_norm, network, training)[0]

    def get_config(self):
        return {
            **super().get_config(),
            "intermediate_dim": self.intermediate_dim,
            "num_heads": self.num_heads,
            "dropout": self.dropout,
            "activation": activations_module.serialize(self.activation),
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "kernel_initializer": initializers_module.serialize(self.kernel_initializer),
            "bias_initializer": initializers_module.serialize(self.bias_initializer),
            "normalize_first": self.normalize_first,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**weight_options_from_config(config))


class TransformerEncoder(_Block):
    """One Transformer encoder block: self-attention, then a feed-forward network
    (``intermediate_dim`` units, then back to the input's size), each with a residual
    connection, dropout and layer normalization. Matches PyTorch's ``nn.TransformerEncoderLayer``
    (``batch_first=True``; ``norm_first`` = ``normalize_first``).

    Call: ``layer(inputs, padding_mask=None, attention_mask=None, training=None)``; the padding
    mask ``(batch, length)`` (True = real token) defaults to the input's mask.

    Example:
        >>> block = ember.layers.TransformerEncoder(intermediate_dim=32, num_heads=2)
        >>> block(np.ones((2, 5, 8), np.float32)).shape
        (2, 5, 8)
    """

    _single_input = True

    def build(self, input_shape):
        hidden = input_shape[-1]
        self.self_attention = self._attention(hidden, "self_attention")
        self.self_attention_norm = self._norm("self_attention_norm")
        self._build_feedforward(hidden)

    def call(self, inputs, padding_mask=None, attention_mask=None, training=False):
        if padding_mask is None:
            padding_mask = inputs._keras_mask

        def attend(x):
            return self.self_attention(
                x, x, query_mask=padding_mask, value_mask=padding_mask,
                attention_mask=attention_mask, training=training,
            )  # fmt: skip

        x, _ = self._residual(inputs, self.self_attention_norm, attend, training)
        return self._feedforward(x, training)


class TransformerDecoder(_Block):
    """One Transformer decoder block: causal self-attention, cross-attention to an encoder's
    output (when ``encoder_sequence`` is given; without it this is a GPT-style decoder-only
    block), then the feed-forward network; residuals, dropout and layer normalization as in
    :class:`TransformerEncoder`. Matches PyTorch's ``nn.TransformerDecoderLayer`` with a causal
    ``tgt_mask``.

    Call: ``layer(decoder_sequence, encoder_sequence=None, decoder_padding_mask=None,
    decoder_attention_mask=None, encoder_padding_mask=None, encoder_attention_mask=None,
    use_causal_mask=True, cache=None, training=None)``.

    Generation with a key/value cache: pass ``cache={}`` with the prompt, then the returned
    cache with each new token alone; the call returns ``(outputs, cache)`` and computes the
    self-attention keys and values of the new positions only (the encoder's are recomputed).

    Example:
        >>> block = ember.layers.TransformerDecoder(intermediate_dim=32, num_heads=2)
        >>> target, memory = np.ones((2, 5, 8), np.float32), np.ones((2, 7, 8), np.float32)
        >>> block(target, memory).shape
        (2, 5, 8)
    """

    def build(self, decoder_sequence_shape, encoder_sequence_shape=None):
        hidden = decoder_sequence_shape[-1]
        self.self_attention = self._attention(hidden, "self_attention")
        self.self_attention_norm = self._norm("self_attention_norm")
        if encoder_sequence_shape is not None:
            self._build_cross_attention(hidden)
        self._build_feedforward(hidden)

    def _build_cross_attention(self, hidden: int) -> None:
        self.cross_attention = self._attention(hidden, "cross_attention")
        self.cross_attention_norm = self._norm("cross_attention_norm")

    def call(
        self, decoder_sequence, encoder_sequence=None, decoder_padding_mask=None,
        decoder_attention_mask=None, encoder_padding_mask=None, encoder_attention_mask=None,
        use_causal_mask=True, cache=None, training=False,
    ):  # fmt: skip
        if decoder_padding_mask is None:
            decoder_padding_mask = decoder_sequence._keras_mask
        new_cache = None

        def attend_self(x):
            return self.self_attention(
                x, x, query_mask=decoder_padding_mask, value_mask=decoder_padding_mask,
                attention_mask=decoder_attention_mask, use_causal_mask=use_causal_mask,
                training=training, cache=cache,
            )  # fmt: skip

        x, new_cache = self._residual(decoder_sequence, self.self_attention_norm, attend_self,
                                      training)  # fmt: skip
        if encoder_sequence is not None:
            if "cross_attention" not in self.__dict__ and not hasattr(self, "cross_attention"):
                self._build_cross_attention(decoder_sequence.shape[-1])
            memory_mask = encoder_padding_mask
            if memory_mask is None and isinstance(encoder_sequence, Tensor):
                memory_mask = encoder_sequence._keras_mask

            def attend_memory(h):
                return self.cross_attention(
                    h, encoder_sequence, value_mask=memory_mask,
                    attention_mask=encoder_attention_mask, training=training,
                )  # fmt: skip

            x, _ = self._residual(x, self.cross_attention_norm, attend_memory, training)
        out = self._feedforward(x, training)
        return out if cache is None else (out, new_cache)
