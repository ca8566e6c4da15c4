"""Recurrent layers with Keras 3's names, signatures and defaults.

A cell (:class:`SimpleRNNCell`, :class:`LSTMCell`, :class:`GRUCell`, or a user's own layer with
``state_size`` and ``call(inputs, states) -> (output, new_states)``) computes one time step;
:class:`RNN` runs a cell over the time axis of ``(batch, time, features)`` inputs.
:class:`SimpleRNN`, :class:`LSTM` and :class:`GRU` are ``RNN`` over their cell, and with the
default activations run the whole sequence as one fused op (``ember.ops.recurrent``: one GEMM
for the input projection of every step, one per step for the recurrence, and a backward through
time whose weight gradients are one GEMM each); other activations take the step-by-step loop.

Masks (from ``Embedding(mask_zero=True)`` or ``Masking``) are respected as Keras does: at a
masked step the state is carried unchanged, and the output there is the carried output (zeros
with ``zero_output_for_mask=True``, which :class:`Bidirectional` sets for sequences).
"""

from __future__ import annotations

import numpy as np

from ember import activations as activations_module
from ember import initializers as initializers_module
from ember import ops
from ember import regularizers as regularizers_module
from ember.layers.base import (
    InputSpec,
    Layer,
    check_positive_int,
    check_rate,
    layer_from_config,
    layer_spec,
)
from ember.layers.core import weight_options_from_config
from ember.layers.regularization import _check_seed
from ember.ops import recurrent as recurrent_ops
from ember.tensor import Tensor, default_rng

__all__ = [
    "SimpleRNNCell",
    "LSTMCell",
    "GRUCell",
    "StackedRNNCells",
    "RNN",
    "SimpleRNN",
    "LSTM",
    "GRU",
    "Bidirectional",
    "TimeDistributed",
]


# ------------------------------------------------------------------------------ cells
class _Cell(Layer):
    """What the three built-in cells share: options, weights, and dropout masks that stay the
    same for every step of a sequence (Keras' rule), drawn again for the next sequence."""

    _gates = 1

    def __init__(
        self,
        units: int,
        activation="tanh",
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = check_positive_int(self, "units", units)
        self.activation = activations_module.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers_module.get(kernel_initializer)
        self.recurrent_initializer = initializers_module.get(recurrent_initializer)
        self.bias_initializer = initializers_module.get(bias_initializer)
        self.kernel_regularizer = regularizers_module.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers_module.get(recurrent_regularizer)
        self.bias_regularizer = regularizers_module.get(bias_regularizer)
        self.dropout = check_rate(self, "dropout", dropout)
        self.recurrent_dropout = check_rate(self, "recurrent_dropout", recurrent_dropout)
        self.seed = _check_seed(self.name, seed)
        self._rng = None if self.seed is None else np.random.default_rng(self.seed)
        self.reset_dropout_mask()

    @property
    def state_size(self):
        return self.units

    @property
    def output_size(self) -> int:
        return self.units

    def build(self, input_shape):
        width = self._gates * self.units
        self.kernel = self.add_weight(
            (input_shape[-1], width),
            self.kernel_initializer,
            name="kernel",
            regularizer=self.kernel_regularizer,
        )
        self.recurrent_kernel = self.add_weight(
            (self.units, width),
            self.recurrent_initializer,
            name="recurrent_kernel",
            regularizer=self.recurrent_regularizer,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                self._bias_shape(),
                self._bias_initial,
                name="bias",
                regularizer=self.bias_regularizer,
            )
        else:
            self.bias = None

    def _bias_shape(self) -> tuple:
        return (self._gates * self.units,)

    def _bias_initial(self, shape, dtype=None):
        return self.bias_initializer(shape, dtype=dtype)

    # -------------------------------------------------------------- dropout masks
    def reset_dropout_mask(self) -> None:
        """Forget this sequence's dropout masks (the RNN layer calls it before each sequence)."""
        self._input_keep = None
        self._recurrent_keep = None

    def _keep(self, rate: float, shape: tuple, dtype) -> np.ndarray:
        generator = default_rng() if self._rng is None else self._rng
        keep = generator.random(shape, dtype=np.float32) >= np.float32(rate)
        return keep.astype(dtype) * dtype.type(1.0 / (1.0 - rate))

    def input_dropout_mask(self, inputs: Tensor, training: bool):
        """The ``(batch, features)`` inverted-dropout mask of the inputs, or ``None``."""
        if not training or self.dropout == 0.0:
            return None
        shape = (inputs.shape[0], inputs.shape[-1])
        if self._input_keep is None or self._input_keep.shape != shape:
            self._input_keep = self._keep(self.dropout, shape, inputs.dtype)
        return self._input_keep

    def recurrent_dropout_mask(self, state: Tensor, training: bool):
        """The ``(batch, units)`` inverted-dropout mask of the previous state, or ``None``."""
        if not training or self.recurrent_dropout == 0.0:
            return None
        if self._recurrent_keep is None or self._recurrent_keep.shape != state.shape:
            self._recurrent_keep = self._keep(self.recurrent_dropout, state.shape, state.dtype)
        return self._recurrent_keep

    def _dropped(self, inputs, h_prev, training):
        keep = self.input_dropout_mask(inputs, training)
        if keep is not None:
            inputs = inputs * keep
        keep = self.recurrent_dropout_mask(h_prev, training)
        if keep is not None:
            h_prev = h_prev * keep
        return inputs, h_prev

    def _gate_slices(self, z: Tensor) -> list[Tensor]:
        units = self.units
        return [z[:, k * units : (k + 1) * units] for k in range(self._gates)]

    def get_initial_state(self, batch_size: int) -> list[Tensor]:
        sizes = self.state_size if isinstance(self.state_size, (list, tuple)) else [self.state_size]
        return [Tensor(np.zeros((batch_size, size), self.dtype)) for size in sizes]

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "activation": activations_module.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers_module.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers_module.serialize(self.recurrent_initializer),
            "bias_initializer": initializers_module.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers_module.serialize(self.kernel_regularizer),
            "recurrent_regularizer": regularizers_module.serialize(self.recurrent_regularizer),
            "bias_regularizer": regularizers_module.serialize(self.bias_regularizer),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**weight_options_from_config(config))


def _activation_is(fn, *names: str) -> bool:
    return activations_module.serialize(fn) in names


class SimpleRNNCell(_Cell):
    """One step of a fully recurrent layer: ``h = activation(x W + h_prev U + b)``.

    Example:
        >>> cell = ember.layers.SimpleRNNCell(4)
        >>> h, states = cell(np.ones((2, 3)), [np.zeros((2, 4), np.float32)])
        >>> h.shape, len(states)
        ((2, 4), 1)
    """

    def call(self, inputs, states, training=False):
        h_prev = states[0] if isinstance(states, (list, tuple)) else states
        x, h_dropped = self._dropped(inputs, h_prev, training)
        z = ops.matmul(x, self.kernel) + ops.matmul(h_dropped, self.recurrent_kernel)
        if self.bias is not None:
            z = z + self.bias
        h = self.activation(z)
        return h, [h]


class LSTMCell(_Cell):
    """One step of a long short-term memory layer (Hochreiter & Schmidhuber), Keras' gate
    order i, f, c, o::

        i = σ(x W_i + h U_i + b_i)    input gate: how much of the candidate to write
        f = σ(x W_f + h U_f + b_f)    forget gate: how much of the old cell state to keep
        g = tanh(x W_c + h U_c + b_c) candidate cell state
        o = σ(x W_o + h U_o + b_o)    output gate
        c' = f * c + i * g,   h' = o * tanh(c')

    ``unit_forget_bias=True`` (the default) starts the forget gate's bias at 1, so the cell
    remembers by default (Jozefowicz et al. 2015).

    Example:
        >>> cell = ember.layers.LSTMCell(4)
        >>> zeros = np.zeros((2, 4), np.float32)
        >>> h, (h_again, c) = cell(np.ones((2, 3)), [zeros, zeros])
        >>> h.shape, c.shape
        ((2, 4), (2, 4))
    """

    _gates = 4

    def __init__(
        self, units: int, activation="tanh", recurrent_activation="sigmoid",
        unit_forget_bias: bool = True, **kwargs,
    ):  # fmt: skip
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = activations_module.get(recurrent_activation)
        self.unit_forget_bias = bool(unit_forget_bias)

    @property
    def state_size(self):
        return [self.units, self.units]

    def _bias_initial(self, shape, dtype=None):
        bias = np.asarray(self.bias_initializer(shape, dtype=dtype))
        if self.unit_forget_bias:
            bias = bias.copy()
            bias[self.units : 2 * self.units] = 1.0
        return bias

    def call(self, inputs, states, training=False):
        h_prev, c_prev = states
        x, h_dropped = self._dropped(inputs, h_prev, training)
        z = ops.matmul(x, self.kernel) + ops.matmul(h_dropped, self.recurrent_kernel)
        if self.bias is not None:
            z = z + self.bias
        i, f, g, o = self._gate_slices(z)
        gate = self.recurrent_activation
        c = gate(f) * c_prev + gate(i) * self.activation(g)
        h = gate(o) * self.activation(c)
        return h, [h, c]

    def get_config(self):
        return {
            **super().get_config(),
            "recurrent_activation": activations_module.serialize(self.recurrent_activation),
            "unit_forget_bias": self.unit_forget_bias,
        }


class GRUCell(_Cell):
    """One step of a gated recurrent unit (Cho et al.), Keras' gate order z, r, h::

        z = σ(x W_z + h U_z + b_z)               update gate
        r = σ(x W_r + h U_r + b_r)               reset gate
        n = tanh(x W_h + r * (h U_h + b'_h))     candidate (reset_after=True, PyTorch's form)
        h' = z * h + (1 - z) * n

    With ``reset_after=True`` (Keras 3's default) the bias has shape ``(2, 3 * units)``: the
    input bias and the recurrent bias. ``reset_after=False`` is the original paper's form,
    ``n = tanh(x W_h + (r * h) U_h + b_h)``, with one bias.

    Example:
        >>> cell = ember.layers.GRUCell(4)
        >>> h, states = cell(np.ones((2, 3)), [np.zeros((2, 4), np.float32)])
        >>> h.shape, cell.bias.shape
        ((2, 4), (2, 12))
    """

    _gates = 3

    def __init__(
        self, units: int, activation="tanh", recurrent_activation="sigmoid",
        reset_after: bool = True, **kwargs,
    ):  # fmt: skip
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = activations_module.get(recurrent_activation)
        self.reset_after = bool(reset_after)

    def _bias_shape(self) -> tuple:
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def call(self, inputs, states, training=False):
        h_prev = states[0] if isinstance(states, (list, tuple)) else states
        x, h_dropped = self._dropped(inputs, h_prev, training)
        units, gate = self.units, self.recurrent_activation
        x_proj = ops.matmul(x, self.kernel)
        if self.bias is not None:
            x_proj = x_proj + (self.bias[0] if self.reset_after else self.bias)
        x_z, x_r, x_h = self._gate_slices(x_proj)
        if self.reset_after:
            h_proj = ops.matmul(h_dropped, self.recurrent_kernel)
            if self.bias is not None:
                h_proj = h_proj + self.bias[1]
            h_z, h_r, h_h = self._gate_slices(h_proj)
            z, r = gate(x_z + h_z), gate(x_r + h_r)
            candidate = self.activation(x_h + r * h_h)
        else:
            u = self.recurrent_kernel
            h_zr = ops.matmul(h_dropped, u[:, : 2 * units])
            z = gate(x_z + h_zr[:, :units])
            r = gate(x_r + h_zr[:, units:])
            candidate = self.activation(x_h + ops.matmul(r * h_dropped, u[:, 2 * units :]))
        h = z * h_prev + (1 - z) * candidate
        return h, [h]

    def get_config(self):
        return {
            **super().get_config(),
            "recurrent_activation": activations_module.serialize(self.recurrent_activation),
            "reset_after": self.reset_after,
        }


class StackedRNNCells(Layer):
    """Several cells run as one: each step feeds the first cell's output to the second, and so
    on (``RNN([cell_a, cell_b])`` builds it). The states are the cells' states one after the
    other, flat: ``[h_a, c_a, h_b, c_b]`` for two LSTM cells.

    Example:
        >>> cells = [ember.layers.LSTMCell(4), ember.layers.GRUCell(3)]
        >>> ember.layers.RNN(cells, return_state=True)(np.ones((2, 5, 6)))[0].shape
        (2, 3)
    """

    def __init__(self, cells, **kwargs):
        super().__init__(**kwargs)
        cells = list(cells)
        if not cells or not all(isinstance(c, Layer) and hasattr(c, "state_size") for c in cells):
            raise TypeError(
                f'Layer "{self.name}" (StackedRNNCells) takes a non-empty list of cells (layers '
                "with a state_size), got " + repr(cells)
            )
        self.cells = cells

    @staticmethod
    def _sizes(cell) -> list[int]:
        size = cell.state_size
        return list(size) if isinstance(size, (list, tuple)) else [size]

    @property
    def state_size(self) -> list[int]:
        return [size for cell in self.cells for size in self._sizes(cell)]

    @property
    def output_size(self) -> int:
        last = self.cells[-1]
        return getattr(last, "output_size", self._sizes(last)[0])

    def build(self, input_shape):
        features = input_shape[-1]
        for cell in self.cells:
            if not cell.built:
                cell._build_from((Tensor(np.zeros((1, features), self.dtype)),))
            features = getattr(cell, "output_size", self._sizes(cell)[0])

    def reset_dropout_mask(self) -> None:
        for cell in self.cells:
            if hasattr(cell, "reset_dropout_mask"):
                cell.reset_dropout_mask()

    def call(self, inputs, states, training=False):
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        new_states, start = [], 0
        for cell in self.cells:
            count = len(self._sizes(cell))
            own = states[start : start + count]
            start += count
            inputs, produced = cell(inputs, own if count > 1 else own[0], training=training)
            new_states.extend(produced if isinstance(produced, (list, tuple)) else [produced])
        return inputs, new_states

    def get_config(self):
        cells = [layer_spec(c) for c in self.cells]
        return {**super().get_config(), "cells": cells}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["cells"] = [layer_from_config(spec) for spec in config["cells"]]
        return cls(**config)


# ------------------------------------------------------------------------------ the RNN layer
def _as_state(layer: Layer, value, batch: int, size: int, dtype) -> Tensor:
    state = value if isinstance(value, Tensor) else Tensor(np.asarray(value, dtype=dtype))
    if state.shape != (batch, size):
        raise ValueError(
            f'Layer "{layer.name}" ({type(layer).__name__}): an initial state must have shape '
            f"(batch, units) = ({batch}, {size}), got {state.shape}"
        )
    if state.dtype != dtype:
        state = ops.cast(state, dtype)
    return state


def _time_reversed(x):
    return None if x is None else x[:, ::-1]


class RNN(Layer):
    """Runs a cell over the time axis of ``(batch, time, features)`` inputs (Keras' ``RNN``).

    Args:
        cell: a cell layer: it has ``state_size`` (an int or a list of ints) and
            ``call(inputs, states) -> (output, new_states)`` for one step ``(batch, features)``.
        return_sequences: return the output of every step ``(batch, time, units)`` instead of the
            last one ``(batch, units)``.
        return_state: also return the final states: ``[output, *states]``.
        go_backwards: read the sequence from its end; the returned sequence is in that reversed
            order too (as Keras).
        stateful: keep the final states of a batch as the initial states of the next one (same
            batch size), until :meth:`reset_states`.
        unroll: accepted for Keras compatibility; it changes nothing (no graph to unroll).
        zero_output_for_mask: output zeros at masked steps instead of the carried output.

    Call arguments: ``layer(sequences, initial_state=None, mask=None, training=None)``.

    Example:
        >>> layer = ember.layers.RNN(ember.layers.LSTMCell(4), return_sequences=True)
        >>> layer(np.ones((2, 5, 3))).shape
        (2, 5, 4)
    """

    supports_masking = True
    _fused = False  # subclasses with a fused op set it when their options allow

    def __init__(
        self,
        cell,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        zero_output_for_mask: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(cell, dtype=kwargs.get("dtype"))
        if not isinstance(cell, Layer) or not hasattr(cell, "state_size"):
            raise TypeError(
                f'Layer "{self.name}" (RNN): cell must be a layer with a state_size attribute and '
                f"call(inputs, states) -> (output, new_states), got {cell!r}"
            )
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.unroll = bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.input_spec = InputSpec(ndim=3, layout="(batch, time, features)")
        self._kept_states = None

    @property
    def _state_sizes(self) -> list[int]:
        size = self.cell.state_size
        return list(size) if isinstance(size, (list, tuple)) else [size]

    def build(self, sequences_shape, initial_state_shape=None):
        if not self.cell.built:
            self.cell._build_from((Tensor(np.zeros((1, sequences_shape[-1]), self.dtype)),))

    def reset_states(self) -> None:
        """Forget the states a ``stateful`` layer kept: the next batch starts from zeros."""
        self._kept_states = None

    reset_state = reset_states  # Keras 3's name

    @property
    def states(self) -> list[Tensor] | None:
        """The states a ``stateful`` layer kept from its last call (to pass on as another
        layer's ``initial_state``), or ``None``: not stateful, or not called since a reset."""
        return None if self._kept_states is None else list(self._kept_states)

    def _initial_states(self, initial_state, batch: int, dtype) -> list[Tensor]:
        sizes = self._state_sizes
        if initial_state is None and self.stateful and self._kept_states is not None:
            if self._kept_states[0].shape[0] == batch:
                return self._kept_states
        if initial_state is None:
            return [Tensor(np.zeros((batch, size), dtype)) for size in sizes]
        given = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        if len(given) != len(sizes):
            raise ValueError(
                f'Layer "{self.name}" ({type(self).__name__}) has {len(sizes)} state(s) of sizes '
                f"{sizes}, but initial_state has {len(given)}"
            )
        return [_as_state(self, s, batch, size, dtype) for s, size in zip(given, sizes)]

    def call(self, sequences, initial_state=None, mask=None, training=False):
        if sequences.dtype.kind != "f":
            sequences = ops.cast(sequences, self.dtype)
        batch = sequences.shape[0]
        states = self._initial_states(initial_state, batch, sequences.dtype)
        mask = self._step_mask(mask, sequences.shape[:2])
        if self.go_backwards:
            sequences, mask = _time_reversed(sequences), _time_reversed(mask)
        self.cell.reset_dropout_mask() if hasattr(self.cell, "reset_dropout_mask") else None
        if self._fused:
            outputs, last, states = self._run_fused(sequences, states, mask, training)
        else:
            outputs, last, states = self._run_cell(sequences, states, mask, training)
        if self.stateful:
            self._kept_states = [Tensor(s.numpy().copy()) for s in states]
        result = outputs if self.return_sequences else last
        return [result, *states] if self.return_state else result

    def _step_mask(self, mask, leading: tuple):
        if mask is None:
            return None
        keep = np.asarray(mask.data if isinstance(mask, Tensor) else mask).astype(bool)
        if keep.shape != leading:
            raise ValueError(
                f'Layer "{self.name}" ({type(self).__name__}): the mask must have shape (batch, '
                f"time) = {leading}, got {keep.shape}"
            )
        return None if keep.all() else keep

    def _run_cell(self, sequences, states, mask, training):
        """The general path: the cell called once per step, any cell, any activation.

        ``carried`` is the output of the last real step, which a masked step repeats (or
        outputs zeros, with ``zero_output_for_mask``); before the first real step it is the
        initial state ``h`` (as the fused ops have it), or zeros for a cell whose output is not
        its first state."""
        outputs, carried = [], None
        for t in range(sequences.shape[1]):
            output, new_states = self.cell(sequences[:, t], states, training=training)
            if not isinstance(new_states, (list, tuple)):
                new_states = [new_states]
            if mask is not None:
                keep = Tensor(mask[:, t : t + 1])
                new_states = [ops.where(keep, new, old) for new, old in zip(new_states, states)]
                if carried is None:
                    first = states[0]
                    carried = first if first.shape == output.shape else ops.zeros_like(output)
                carried = ops.where(keep, output, carried)
                output = ops.where(keep, output, 0.0) if self.zero_output_for_mask else carried
            outputs.append(output)
            states = list(new_states)
        last = outputs[-1] if mask is None else carried
        return ops.stack(outputs, axis=1), last, states

    def compute_mask(self, inputs, mask=None):
        sequence_mask = None
        if self.return_sequences and mask is not None:
            sequence_mask = _time_reversed(mask) if self.go_backwards else mask
        if self.return_state:
            return [sequence_mask] + [None] * len(self._state_sizes)
        return sequence_mask

    def get_config(self):
        config = {
            **super().get_config(),
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "unroll": self.unroll,
            "zero_output_for_mask": self.zero_output_for_mask,
        }
        if type(self) is RNN:
            cell = self.cell
            config["cell"] = layer_spec(cell)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["cell"] = layer_from_config(config["cell"])
        return cls(**config)


# ------------------------------------------------------------------------------ the fused layers
_RNN_OPTIONS = (
    "return_sequences", "return_state", "go_backwards", "stateful", "unroll",
    "zero_output_for_mask", "name", "trainable", "dtype", "input_shape", "input_dim",
)  # fmt: skip


class _FusedRNN(RNN):
    """An RNN over its own built-in cell, built from one flat list of options (Keras' form):
    the RNN's options go to the layer, the rest to the cell."""

    _cell_class: type = _Cell

    def __init__(self, units: int, **kwargs):
        layer_options = {k: kwargs.pop(k) for k in _RNN_OPTIONS if k in kwargs}
        name = layer_options.get("name")
        cell = self._cell_class(
            units,
            dtype=layer_options.get("dtype"),
            name=None if name is None else f"{name}_cell",
            **kwargs,
        )
        super().__init__(cell, **layer_options)

    @property
    def units(self) -> int:
        return self.cell.units

    def _dropout_masks(self, sequences, states, training):
        keep = self.cell.input_dropout_mask(sequences, training)
        if keep is not None:
            sequences = sequences * keep[:, None, :]  # the same mask at every step
        return sequences, self.cell.recurrent_dropout_mask(states[0], training)

    def get_config(self):
        cell_config = self.cell.get_config()
        for key in ("name", "trainable", "dtype"):
            cell_config.pop(key, None)
        return {**super().get_config(), **cell_config}

    @classmethod
    def from_config(cls, config):
        return cls(**weight_options_from_config(config))


class SimpleRNN(_FusedRNN):
    """A fully recurrent layer, ``h_t = activation(x_t W + h_{t-1} U + b)`` (Keras'
    ``SimpleRNN``; PyTorch's ``nn.RNN``). With ``tanh`` or ``relu`` it runs as one fused op.

    Example:
        >>> ember.layers.SimpleRNN(4)(np.ones((2, 5, 3))).shape
        (2, 4)
    """

    _cell_class = SimpleRNNCell

    @property
    def _fused(self) -> bool:
        return _activation_is(self.cell.activation, "tanh", "relu")

    def _run_fused(self, sequences, states, mask, training):
        sequences, recurrent_keep = self._dropout_masks(sequences, states, training)
        cell = self.cell
        outputs, h = recurrent_ops.simple_rnn(
            sequences, states[0], cell.kernel, cell.recurrent_kernel, cell.bias,
            activation=activations_module.serialize(cell.activation), mask=mask,
            recurrent_mask=recurrent_keep, zero_output_for_mask=self.zero_output_for_mask,
        )  # fmt: skip
        return outputs, h, [h]


class LSTM(_FusedRNN):
    """Long short-term memory layer (Keras' ``LSTM``; PyTorch's ``nn.LSTM`` with
    ``batch_first=True``). See :class:`LSTMCell` for the gates. With the default activations
    (``tanh``, ``sigmoid``) the whole sequence is one fused op.

    Example:
        >>> lstm = ember.layers.LSTM(8, return_sequences=True, return_state=True)
        >>> outputs, h, c = lstm(np.ones((2, 5, 3)))
        >>> outputs.shape, h.shape, c.shape
        ((2, 5, 8), (2, 8), (2, 8))
    """

    _cell_class = LSTMCell

    @property
    def _fused(self) -> bool:
        cell = self.cell
        return _activation_is(cell.activation, "tanh") and _activation_is(
            cell.recurrent_activation, "sigmoid"
        )

    def _run_fused(self, sequences, states, mask, training):
        sequences, recurrent_keep = self._dropout_masks(sequences, states, training)
        cell = self.cell
        outputs, h, c = recurrent_ops.lstm(
            sequences, states[0], states[1], cell.kernel, cell.recurrent_kernel, cell.bias,
            mask=mask, recurrent_mask=recurrent_keep,
            zero_output_for_mask=self.zero_output_for_mask,
        )  # fmt: skip
        return outputs, h, [h, c]


class GRU(_FusedRNN):
    """Gated recurrent unit layer (Keras' ``GRU``, ``reset_after=True`` by default, which is
    PyTorch's ``nn.GRU``). See :class:`GRUCell`. With the default activations and
    ``reset_after=True`` the whole sequence is one fused op.

    Example:
        >>> ember.layers.GRU(8, return_sequences=True)(np.ones((2, 5, 3))).shape
        (2, 5, 8)
    """

    _cell_class = GRUCell

    @property
    def _fused(self) -> bool:
        cell = self.cell
        return (
            cell.reset_after
            and _activation_is(cell.activation, "tanh")
            and _activation_is(cell.recurrent_activation, "sigmoid")
        )

    def _run_fused(self, sequences, states, mask, training):
        sequences, recurrent_keep = self._dropout_masks(sequences, states, training)
        cell = self.cell
        bias = cell.bias
        outputs, h = recurrent_ops.gru(
            sequences, states[0], cell.kernel, cell.recurrent_kernel,
            None if bias is None else bias[0], None if bias is None else bias[1],
            mask=mask, recurrent_mask=recurrent_keep,
            zero_output_for_mask=self.zero_output_for_mask,
        )  # fmt: skip
        return outputs, h, [h]


# ------------------------------------------------------------------------------ wrappers
_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


class Bidirectional(Layer):
    """Runs a recurrent layer forwards and a copy of it backwards, and merges the two.

    Args:
        layer: an ``RNN`` (``LSTM``, ``GRU``, ``SimpleRNN`` or ``RNN(cell)``).
        merge_mode: ``"concat"`` (default), ``"sum"``, ``"mul"``, ``"ave"`` or ``None`` (a list
            of the two outputs).
        backward_layer: optional layer for the backward direction (its ``go_backwards`` must be
            the opposite of ``layer``'s); by default a copy of ``layer`` reading backwards.

    The backward direction's sequence output is turned back into forward time order before
    merging, so step ``t`` of the result sees the whole sequence. With ``return_state`` the
    result is ``[merged, *forward_states, *backward_states]``; ``initial_state`` takes the
    forward states then the backward ones.

    Example:
        >>> bi = ember.layers.Bidirectional(ember.layers.LSTM(4, return_sequences=True))
        >>> bi(np.ones((2, 5, 3))).shape
        (2, 5, 8)
    """

    supports_masking = True

    def __init__(self, layer, merge_mode="concat", backward_layer=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(layer, RNN):
            raise TypeError(
                f'Layer "{self.name}" (Bidirectional) wraps a recurrent layer (LSTM, GRU, '
                f"SimpleRNN or RNN), got {type(layer).__name__}"
            )
        if merge_mode not in _MERGE_MODES:
            raise ValueError(
                f'Layer "{self.name}" (Bidirectional): merge_mode must be one of {_MERGE_MODES}, '
                f"got {merge_mode!r}"
            )
        self.merge_mode = merge_mode
        self.forward_layer = self._copy(layer, "forward", layer.go_backwards)
        if backward_layer is None:
            backward_layer = self._copy(layer, "backward", not layer.go_backwards)
        elif backward_layer.go_backwards == layer.go_backwards:
            raise ValueError(
                f'Layer "{self.name}" (Bidirectional): backward_layer.go_backwards must be the '
                "opposite of layer.go_backwards"
            )
        self.backward_layer = backward_layer
        for direction in (self.forward_layer, self.backward_layer):
            direction.zero_output_for_mask = direction.return_sequences  # as Keras
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state

    @staticmethod
    def _copy(layer: RNN, direction: str, go_backwards: bool) -> RNN:
        config = layer.get_config()
        config["name"] = f"{direction}_{layer.name}"
        config["go_backwards"] = go_backwards
        return type(layer).from_config(config)

    def build(self, sequences_shape, initial_state_shape=None):
        for direction in (self.forward_layer, self.backward_layer):
            if not direction.built:
                direction._build_from((Tensor(np.zeros((1, 2, sequences_shape[-1]), self.dtype)),))

    def call(self, sequences, initial_state=None, mask=None, training=False):
        forward_state = backward_state = None
        if initial_state is not None:
            half = len(initial_state) // 2
            forward_state, backward_state = initial_state[:half], initial_state[half:]
        forward = self.forward_layer(
            sequences, initial_state=forward_state, mask=mask, training=training
        )
        backward = self.backward_layer(
            sequences, initial_state=backward_state, mask=mask, training=training
        )
        states = []
        if self.return_state:
            forward, states = forward[0], forward[1:]
            backward, backward_states = backward[0], backward[1:]
            states = [*states, *backward_states]
        if self.return_sequences:
            backward = _time_reversed(backward)
        merged = self._merge(forward, backward)
        if self.return_state:
            return [*merged, *states] if self.merge_mode is None else [merged, *states]
        return merged

    def _merge(self, forward, backward):
        mode = self.merge_mode
        if mode == "concat":
            return ops.concatenate([forward, backward], axis=-1)
        if mode == "sum":
            return forward + backward
        if mode == "mul":
            return forward * backward
        if mode == "ave":
            return (forward + backward) * 0.5
        return [forward, backward]

    def compute_mask(self, inputs, mask=None):
        sequence_mask = mask if self.return_sequences else None
        outputs = 2 if self.merge_mode is None else 1
        if self.return_state:
            states = len(self.forward_layer._state_sizes) * 2
            return [sequence_mask] * outputs + [None] * states
        return [sequence_mask] * outputs if outputs == 2 else sequence_mask

    def get_config(self):
        def spec(layer):
            return layer_spec(layer)

        config = {**super().get_config(), "merge_mode": self.merge_mode}
        config["layer"] = spec(self.forward_layer)
        config["backward_layer"] = spec(self.backward_layer)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = layer_from_config(config["layer"])
        config["backward_layer"] = layer_from_config(config["backward_layer"])
        return cls(**config)


class TimeDistributed(Layer):
    """Applies a layer to every time step: ``(batch, time, ...)`` → the layer on
    ``(batch * time, ...)``, reshaped back. Masks pass through.

    Example:
        >>> td = ember.layers.TimeDistributed(ember.layers.Dense(4))
        >>> td(np.ones((2, 5, 3))).shape
        (2, 5, 4)
    """

    supports_masking = True
    _single_input = True

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(layer, Layer):
            raise TypeError(
                f'Layer "{self.name}" (TimeDistributed) wraps a layer, got {type(layer).__name__}'
            )
        self.layer = layer

    def call(self, inputs, training=False):
        if inputs.ndim < 3:
            raise ValueError(
                f'Layer "{self.name}" (TimeDistributed) expects (batch, time, ...) inputs with at '
                f"least 3 axes, got shape {inputs.shape}"
            )
        batch, steps = inputs.shape[:2]
        merged = ops.reshape(inputs, (batch * steps, *inputs.shape[2:]))
        out = self.layer(merged, training=training)
        return ops.reshape(out, (batch, steps, *out.shape[1:]))

    def get_config(self):
        layer = layer_spec(self.layer)
        return {**super().get_config(), "layer": layer}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = layer_from_config(config["layer"])
        return cls(**config)
