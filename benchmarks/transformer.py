"""A small Transformer language model: Ember (low-level loop and ``model.fit``) against PyTorch.

Network (decoder-only LM, the default ``--block decoder``): ``TokenAndPositionEmbedding(vocab,
128, 128)`` -> 2 x ``TransformerDecoder(intermediate_dim=512, num_heads=4)`` (causal
self-attention, no encoder sequence, post-norm, ReLU, dropout 0) -> ``Dense(vocab)``; sparse
softmax cross-entropy over every position (next-token prediction), batch 32, sequence 128,
vocabulary 64, random token ids; Adam lr 1e-3, eps 1e-8. ``--block encoder`` uses
``TransformerEncoder`` instead, without any mask (bidirectional; not a language model, but the
same arithmetic without the causal mask).

PyTorch runs ``nn.Embedding`` plus a learned position table, 2 x
``nn.TransformerEncoderLayer(128, 4, 512, dropout=0, batch_first=True)`` called with the causal
mask (``src_mask=generate_square_subsequent_mask(128), is_causal=True``; no mask with ``--block
encoder``) and ``nn.Linear``, with Ember's initial weights copied in: the query, key and value
kernels ``(128, 4, 32)`` as rows of ``in_proj_weight`` (each reshaped to 128 x 128 and
transposed), the output kernel likewise into ``out_proj``, the feed-forward ``Dense`` kernels
transposed into ``linear1``/``linear2``, the layer norms' gamma/beta into ``norm1``
(attention) and ``norm2`` (feed-forward).

Run from the repository root (see ``benchmarks/_seq_common.py`` for what is measured)::

    .venv/bin/python benchmarks/transformer.py --steps 5 --repeats 3
    .venv/bin/python benchmarks/transformer.py --only ember --steps 2 --repeats 1 \\
        --skip-memory --profile
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _seq_common as common  # noqa: E402 (stdlib only: NumPy is not loaded yet)

D_MODEL = 128
NUM_HEADS = 4
INTERMEDIATE = 512
LAYERS = 2


def ember_build(args):
    """The Ember model: int64 ids ``(batch, time)`` to logits ``(batch, time, vocab)``."""
    import ember
    from ember import layers

    block = layers.TransformerDecoder if args.block == "decoder" else layers.TransformerEncoder
    # Functional, so that the declared int64 input stays integer (Sequential would cast it).
    ids = layers.Input(shape=(args.seq_len,), dtype="int64")
    hidden = layers.TokenAndPositionEmbedding(args.vocab, args.seq_len, D_MODEL)(ids)
    for _ in range(LAYERS):
        # TransformerDecoder's use_causal_mask defaults to True: each position sees its past.
        hidden = block(intermediate_dim=INTERMEDIATE, num_heads=NUM_HEADS)(hidden)
    return ember.models.Model(ids, layers.Dense(args.vocab)(hidden))


def torch_build(args):
    """The same network as a ``torch.nn.Module`` (PyTorch's default initial weights)."""
    import torch
    from torch import nn

    causal = args.block == "decoder"

    class TransformerLanguageModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.token = nn.Embedding(args.vocab, D_MODEL)
            self.position = nn.Parameter(torch.empty(args.seq_len, D_MODEL).uniform_(-0.05, 0.05))
            self.blocks = nn.ModuleList(
                nn.TransformerEncoderLayer(
                    D_MODEL, NUM_HEADS, INTERMEDIATE, dropout=0.0, batch_first=True
                )
                for _ in range(LAYERS)
            )
            self.head = nn.Linear(D_MODEL, args.vocab)
            mask = nn.Transformer.generate_square_subsequent_mask(args.seq_len) if causal else None
            self.register_buffer("mask", mask, persistent=False)

        def forward(self, ids):
            x = self.token(ids) + self.position
            for block in self.blocks:
                x = block(x, src_mask=self.mask, is_causal=causal)
            return self.head(x)

    return TransformerLanguageModel()


def _attention_pairs(mha, attn) -> list:
    """(torch tensor, NumPy value) pairs: Ember's MultiHeadAttention -> nn.MultiheadAttention."""
    import numpy as np

    def square(kernel):  # (features, heads, dim) or (heads, dim, out) as the 2-D product
        return kernel.numpy().reshape(D_MODEL, D_MODEL).T

    names = ("query", "key", "value")
    # nn.MultiheadAttention stacks the query, key and value projections as rows
    weight = np.concatenate([square(getattr(mha, f"{n}_kernel")) for n in names])
    bias = np.concatenate([getattr(mha, f"{n}_bias").numpy().ravel() for n in names])
    return [
        (attn.in_proj_weight, weight),
        (attn.in_proj_bias, bias),
        (attn.out_proj.weight, square(mha.output_kernel)),
        (attn.out_proj.bias, mha.output_bias.numpy()),
    ]


def copy_weights(model, module) -> None:
    """Ember's weights into the PyTorch module (see the module docstring for the mapping)."""
    import torch

    embedding, *blocks, dense = (layer for layer in model.layers if layer.weights)
    pairs = [
        (module.token.weight, embedding.token_embedding.embeddings.numpy()),
        (module.position, embedding.position_embedding.position_embeddings.numpy()),
        (module.head.weight, dense.kernel.numpy().T),
        (module.head.bias, dense.bias.numpy()),
    ]
    for ours, theirs in zip(blocks, module.blocks):
        pairs += _attention_pairs(ours.self_attention, theirs.self_attn)
        for dense_layer, linear in (
            (ours.feedforward_intermediate, theirs.linear1),
            (ours.feedforward_output, theirs.linear2),
        ):
            pairs.append((linear.weight, dense_layer.kernel.numpy().T))
            pairs.append((linear.bias, dense_layer.bias.numpy()))
        for norm, torch_norm in (
            (ours.self_attention_norm, theirs.norm1),
            (ours.feedforward_norm, theirs.norm2),
        ):
            pairs.append((torch_norm.weight, norm.gamma.numpy()))
            pairs.append((torch_norm.bias, norm.beta.numpy()))
    with torch.no_grad():
        for target, value in pairs:
            target.copy_(torch.from_numpy(value.copy()).reshape(target.shape))


def describe(args) -> str:
    kind = (
        "TransformerDecoder (causal self-attention; PyTorch: causal src_mask)"
        if args.block == "decoder"
        else "TransformerEncoder (no mask)"
    )
    return (
        f"TokenAndPositionEmbedding({args.vocab}, {args.seq_len}, {D_MODEL}) -> {LAYERS} x "
        f"{kind}, {NUM_HEADS} heads, intermediate {INTERMEDIATE} -> Dense({args.vocab}); "
        "random token ids"
    )


def _options(parser) -> None:
    parser.add_argument(
        "--block", choices=("decoder", "encoder"), default="decoder",
        help="decoder: causal decoder-only LM (default); encoder: no mask",
    )  # fmt: skip
    parser.forwarded = ["block"]  # passed on to the memory children


SPEC = common.Spec(
    title="Transformer language model", ember_build=ember_build, torch_build=torch_build,
    copy_weights=copy_weights, describe=describe,
)  # fmt: skip

if __name__ == "__main__":
    ARGS = common.parse_args(
        "Transformer language model: Ember vs PyTorch (tokens/s, peak RSS, per-op profile)",
        {"vocab": 64, "batch_size": 32, "seq_len": 128, "steps": 5},
        _options,
    )
    common.main(SPEC, ARGS, __file__)
