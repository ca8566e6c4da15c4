"""LSTM language model: Ember (low-level loop and ``model.fit``) against PyTorch, same run.

Network: ``Embedding(vocab, 64) -> LSTM(256, return_sequences=True) -> Dense(vocab)`` with
sparse softmax cross-entropy over every step (next-token prediction), batch 64, 100 time
steps, vocabulary 64 (character-level), random token ids; Adam lr 1e-3, eps 1e-8.

PyTorch runs ``nn.Embedding``, ``nn.LSTM(batch_first=True)`` and ``nn.Linear`` with Ember's
initial weights copied in: ``weight_ih_l0 = kernel.T``, ``weight_hh_l0 = recurrent_kernel.T``,
``bias_ih_l0 = bias``, ``bias_hh_l0 = 0`` (both use the gate order i, f, g, o), the linear
layer's ``weight = kernel.T``. Ember's LSTM is one fused op (``ember.ops.recurrent.lstm``).

Run from the repository root (see ``benchmarks/_seq_common.py`` for what is measured)::

    .venv/bin/python benchmarks/lstm_lm.py --steps 10 --repeats 3
    .venv/bin/python benchmarks/lstm_lm.py --only ember --steps 2 --repeats 1 --skip-memory \\
        --profile
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _seq_common as common  # noqa: E402 (stdlib only: NumPy is not loaded yet)

EMBEDDING_DIM = 64
UNITS = 256


def ember_build(args):
    """The Ember model: int64 ids ``(batch, time)`` to logits ``(batch, time, vocab)``."""
    import ember
    from ember import layers

    # Functional, so that the declared int64 input stays integer (Sequential would cast it).
    ids = layers.Input(shape=(args.seq_len,), dtype="int64")
    hidden = layers.Embedding(args.vocab, EMBEDDING_DIM)(ids)
    hidden = layers.LSTM(UNITS, return_sequences=True)(hidden)
    return ember.models.Model(ids, layers.Dense(args.vocab)(hidden))


def torch_build(args):
    """The same network as a ``torch.nn.Module`` (PyTorch's default initial weights)."""
    from torch import nn

    class LSTMLanguageModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(args.vocab, EMBEDDING_DIM)
            self.lstm = nn.LSTM(EMBEDDING_DIM, UNITS, batch_first=True)
            self.head = nn.Linear(UNITS, args.vocab)

        def forward(self, ids):
            outputs, _ = self.lstm(self.embedding(ids))
            return self.head(outputs)

    return LSTMLanguageModel()


def copy_weights(model, module) -> None:
    """Ember's weights into the PyTorch module (see the module docstring for the mapping)."""
    import torch

    embedding, lstm, dense = (layer for layer in model.layers if layer.weights)
    cell = lstm.cell
    pairs = [
        (module.embedding.weight, embedding.embeddings.numpy()),
        (module.lstm.weight_ih_l0, cell.kernel.numpy().T),
        (module.lstm.weight_hh_l0, cell.recurrent_kernel.numpy().T),
        (module.lstm.bias_ih_l0, cell.bias.numpy()),
        (module.lstm.bias_hh_l0, 0 * cell.bias.numpy()),
        (module.head.weight, dense.kernel.numpy().T),
        (module.head.bias, dense.bias.numpy()),
    ]
    with torch.no_grad():
        for target, value in pairs:
            target.copy_(torch.from_numpy(value.copy()))


def describe(args) -> str:
    return (
        f"Embedding({args.vocab}, {EMBEDDING_DIM}) -> LSTM({UNITS}) -> Dense({args.vocab}); "
        "random token ids"
    )


SPEC = common.Spec(
    title="LSTM language model", ember_build=ember_build, torch_build=torch_build,
    copy_weights=copy_weights, describe=describe,
)  # fmt: skip

if __name__ == "__main__":
    ARGS = common.parse_args(
        "LSTM language model: Ember vs PyTorch (tokens/s, peak RSS, per-op profile)",
        {"vocab": 64, "batch_size": 64, "seq_len": 100, "steps": 10},
    )
    common.main(SPEC, ARGS, __file__)
