"""Weights in and out of Ember: safetensors files, PyTorch ``state_dict`` s, Keras 3
``.weights.h5`` files.

* :func:`save_safetensors` / :func:`load_safetensors` (also ``model.save_weights("w.safetensors")``
  and ``model.load_weights("w.safetensors")``): one tensor per weight, keyed by its dotted
  ``state_dict`` path (``"dense_1.kernel"``), in the weight's own dtype, written atomically.
* :func:`load_torch_state_dict`: weights of a PyTorch model with the same architecture, from a
  ``torch.save(model.state_dict(), path)`` file, a ``.safetensors`` file of a PyTorch model, or a
  dict of tensors/arrays. The layouts are converted:

  ========================  ==========================  =====================================
  PyTorch                   Ember                       conversion
  ========================  ==========================  =====================================
  Linear                    Dense                       weight (out, in) → kernel (in, out);
                                                        after a Flatten of a channels-last
                                                        conv output, the kernel's rows are
                                                        also reordered from C·H·W to H·W·C
  Conv1d / Conv2d           Conv1D / Conv2D             OIW → WIO, OIHW → HWIO
  BatchNorm1d/2d            BatchNormalization          weight, bias, running_mean/var →
                                                        gamma, beta, moving_mean/variance
                                                        (num_batches_tracked is ignored)
  LayerNorm                 LayerNormalization          weight, bias → gamma, beta
  Embedding                 Embedding                   as is
  RNN / LSTM / GRU          SimpleRNN / LSTM / GRU      W_ih, W_hh transposed; LSTM's gate
  (one Ember layer per      (``Bidirectional`` for      order i, f, g, o is Keras' i, f, c, o;
  ``num_layers`` level)     ``bidirectional=True``)     bias_ih + bias_hh → one bias; GRU's
                                                        r, z, n → Keras' z, r, h, its two
                                                        biases → Ember's (2, 3·units) bias
  MultiheadAttention        MultiHeadAttention          in_proj (3E, E) → query/key/value
                                                        kernels (E, heads, E/heads); out_proj
                                                        → output_kernel (heads, E/heads, E)
  ========================  ==========================  =====================================

  A layer of another kind whose PyTorch module names its tensors like Ember names the weights
  (a custom layer with ``self.w`` in both) is copied as is. Hyper-parameters are not in a
  ``state_dict``: build the Ember layers to match — PyTorch's ``BatchNorm(momentum=0.1,
  eps=1e-5)`` is Ember's ``BatchNormalization(momentum=0.9, epsilon=1e-5)`` (Keras counts the
  momentum the other way, and its default epsilon is 1e-3), ``LayerNorm(eps=1e-5)`` is
  ``LayerNormalization(epsilon=1e-5)``; ``GRU`` must keep ``reset_after=True`` (PyTorch's form).
  Layers are matched in order (Ember's layer order, PyTorch's registration order), or by an
  explicit ``mapping``.
* :func:`load_keras_weights`: a Keras 3 ``model.save_weights("m.weights.h5")`` file (HDF5, read
  with h5py). Keras stores each layer's variables as ``<layer path>/vars/<i>`` (trainable ones
  first, in creation order); a Sequential or functional model's layers sit under
  ``layers/<class name in snake case>`` numbered per class (``layers/dense``,
  ``layers/dense_1``), a subclassed model's under their attribute names, a recurrent layer's
  under ``<path>/cell``, a ``MultiHeadAttention``'s under ``<path>/_query_dense`` (and
  ``_key_dense``, ``_value_dense``, ``_output_dense``). Keras' kernels are already Ember's
  (HWIO, (in, out), gates i, f, c, o and z, r, h), so nothing is converted. The optimizer's and
  the metric trackers' variables (top-level groups ``optimizer`` and ``_…``) are ignored.

Safety, for all three: reading never runs code (no pickle: a PyTorch file is read with
``torch.load(weights_only=True)``, which refuses anything but tensors and plain containers),
never allocates what a file merely claims (the safetensors header, the PyTorch zip directory and
every HDF5 dataset's shape are checked against the file's size and the model before any tensor
is read), and checks everything — names, shapes, dtypes — before assigning anything: a failed
load raises a ``ValueError`` naming each offending key and leaves the model exactly as it was.

The extra packages are optional: ``safetensors`` for the safetensors functions, ``h5py`` for
Keras files, ``torch`` only to read a PyTorch file (a dict of NumPy arrays needs nothing).
"""

from __future__ import annotations

import importlib
import json
import math
import os
import pickle
import re
import struct
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ember import __version__
from ember.layers.attention import MultiHeadAttention
from ember.layers.base import Layer, LoadResult, _snake_case
from ember.layers.conv import Conv1D, Conv2D, _Conv
from ember.layers.core import Dense, Embedding, Flatten
from ember.layers.normalization import BatchNormalization, LayerNormalization
from ember.layers.recurrent import RNN, Bidirectional, GRUCell, LSTMCell, SimpleRNNCell
from ember.layers.reshaping import Permute, RepeatVector, Reshape
from ember.models.model import Model, Sequential
from ember.models.saving import compare_by_name, write_bytes_atomically
from ember.tensor import Tensor

__all__ = [
    "ImportResult",
    "save_safetensors",
    "load_safetensors",
    "load_torch_state_dict",
    "load_keras_weights",
]


class ImportResult(NamedTuple):
    """What an import did: the Ember weights assigned (dotted names), the Ember weights left as
    they were (only with ``strict=False``), and the source's entries that were not used
    (buffers such as ``num_batches_tracked``, optimizer state, unmatched modules)."""

    loaded: list
    skipped: list
    unused: list


# ------------------------------------------------------------------------------ common
def _require(module: str, func: str):
    """Import an optional dependency, or say which extra brings it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"{func} needs the '{module}' package: pip install '{module}' (or Ember's "
            "'interchange' extra)"
        ) from None


def _path(path, func: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{func}: path must be a str or os.PathLike, got {type(path).__name__}")
    return Path(os.path.expanduser(os.fspath(path)))


def _named(model, func: str) -> list[tuple[str, Tensor]]:
    """``(dotted name, weight)`` of every weight of a built model, names unique."""
    if not isinstance(model, Layer):
        raise TypeError(
            f"{func}: model must be an Ember model or layer, got {type(model).__name__}"
        )
    named = model.named_parameters()
    if not named:
        raise ValueError(
            f"{func}: {model.name} has no weights yet: build it first (declare "
            "ember.Input(shape=...) or call it on a batch)"
        )
    seen: set[str] = set()
    for name, _ in named:
        if name in seen:
            raise ValueError(f"{func}: {model.name} has two weights named {name!r}; rename a layer")
        seen.add(name)
    return named


def _assign(pairs) -> None:
    """Every value was checked already: this cannot fail halfway."""
    for param, value in pairs:
        param.data = np.array(value, dtype=param.dtype, copy=True)


# ------------------------------------------------------------------------------ safetensors
# dtype code → (NumPy dtype or None when NumPy has none, bytes per element)
_ST_DTYPES = {
    "F16": (np.float16, 2), "F32": (np.float32, 4), "F64": (np.float64, 8),
    "BF16": (None, 2), "I8": (np.int8, 1), "I16": (np.int16, 2), "I32": (np.int32, 4),
    "I64": (np.int64, 8), "U8": (np.uint8, 1), "U16": (np.uint16, 2), "U32": (np.uint32, 4),
    "U64": (np.uint64, 8), "BOOL": (np.bool_, 1),
}  # fmt: skip
_ST_HEADER_LIMIT = 100_000_000  # bytes of JSON header: the safetensors library's own limit


def _st_dtype_matches(entry, weight) -> bool:
    """A safetensors dtype code (``"F32"``) that is exactly the weight's NumPy dtype."""
    numpy_type = _ST_DTYPES[entry.dtype][0]
    return numpy_type is not None and np.dtype(numpy_type) == weight.dtype


class _STEntry(NamedTuple):
    dtype: str
    shape: tuple
    begin: int  # byte offsets in the data section
    end: int


def _st_error(func: str, path: Path, message: str) -> ValueError:
    return ValueError(f"{func}: '{path}' is not a valid safetensors file: {message}")


def _no_duplicate_keys(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        duplicate = next(k for k in keys if keys.count(k) > 1)
        raise ValueError(f"the key {duplicate!r} appears twice")
    return dict(pairs)


def _read_st_header(path: Path, func: str) -> tuple[dict[str, _STEntry], int]:
    """The checked header of a safetensors file: ``{name: entry}`` and where the data section
    starts. Reads only the header, whose claimed length is checked against the file first."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            prefix = f.read(8)
            if len(prefix) < 8:
                raise _st_error(func, path, f"only {size} bytes, shorter than the 8-byte prefix")
            (length,) = struct.unpack("<Q", prefix)
            if length > size - 8 or length > _ST_HEADER_LIMIT:
                raise _st_error(
                    func, path, f"its header claims {length} bytes but the file has {size - 8} "
                    f"after the prefix (limit {_ST_HEADER_LIMIT})",
                )  # fmt: skip
            raw = f.read(length)
    except (IsADirectoryError, FileNotFoundError, PermissionError) as exc:
        raise type(exc)(f"{func}: cannot read '{path}': {exc.strerror}") from None
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _st_error(func, path, f"its header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise _st_error(func, path, "its header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise _st_error(func, path, "its __metadata__ is not an object of strings")
    data_size = size - 8 - length
    entries = {name: _st_entry(func, path, name, spec, data_size) for name, spec in header.items()}
    previous_end, previous = 0, None
    for name, entry in sorted(entries.items(), key=lambda item: item[1].begin):
        if entry.begin < previous_end:
            raise _st_error(func, path, f"the data of {name!r} overlaps that of {previous!r}")
        previous_end, previous = entry.end, name
    return entries, 8 + length


def _st_entry(func: str, path: Path, name: str, spec, data_size: int) -> _STEntry:
    """One header entry, checked: a known dtype, a shape, offsets inside the data section and
    a byte count equal to shape × itemsize."""
    if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data_offsets"}:
        raise _st_error(func, path, f"the entry of {name!r} is not {{dtype, shape, data_offsets}}")
    dtype, shape, offsets = spec["dtype"], spec["shape"], spec["data_offsets"]
    if dtype not in _ST_DTYPES:
        raise _st_error(func, path, f"{name!r} has dtype {dtype!r}, which Ember does not read")

    def is_count(v):
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0

    if not isinstance(shape, list) or not all(is_count(s) for s in shape):
        raise _st_error(func, path, f"{name!r} has the shape {shape!r}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(is_count(o) for o in offsets)):
        raise _st_error(func, path, f"{name!r} has the data offsets {offsets!r}")
    begin, end = offsets
    nbytes = math.prod(shape) * _ST_DTYPES[dtype][1]
    if begin > end or end > data_size or end - begin != nbytes:
        raise _st_error(
            func, path, f"{name!r} claims shape {tuple(shape)} {dtype} ({nbytes} bytes) at "
            f"offsets {begin}..{end}, but the data section has {data_size} bytes",
        )  # fmt: skip
    return _STEntry(dtype, tuple(shape), begin, end)


def _read_st_tensors(path: Path, func: str, entries, data_start: int, names) -> dict:
    """The tensors ``names`` (checked by :func:`_read_st_header`) via the safetensors library;
    BF16, which NumPy has no type for, is widened to float32 from its bytes."""
    safetensors = _require("safetensors", func)
    out = {}
    try:
        with safetensors.safe_open(str(path), framework="np") as f:
            for name in names:
                entry = entries[name]
                if entry.dtype == "BF16":
                    out[name] = _read_bf16(path, entry, data_start)
                    continue
                value = f.get_tensor(name)
                if value.shape != entry.shape or value.dtype != _ST_DTYPES[entry.dtype][0]:
                    raise ValueError(f"{name!r} does not read back as its header says")
                out[name] = value
    except (safetensors.SafetensorError, OSError, ValueError) as exc:
        raise _st_error(func, path, str(exc)) from None
    return out


def _read_bf16(path: Path, entry: _STEntry, data_start: int) -> np.ndarray:
    with open(path, "rb") as f:
        f.seek(data_start + entry.begin)
        raw = f.read(entry.end - entry.begin)
    if len(raw) != entry.end - entry.begin:
        raise ValueError("the file is shorter than its header says")
    # bfloat16 is the upper half of a float32
    wide = np.frombuffer(raw, "<u2").astype(np.uint32) << 16
    return wide.view(np.float32).reshape(entry.shape)


def save_safetensors(model, path, metadata: dict | None = None) -> None:
    """Write every weight of ``model`` to a safetensors file, keyed by its dotted
    ``state_dict`` path and in its own dtype, atomically (``model.save_weights`` does this for
    a path ending in ``.safetensors``). ``metadata`` adds strings to the file's header.

    Example:
        >>> import tempfile, os
        >>> from ember.interchange import save_safetensors, load_safetensors
        >>> model = ember.Sequential([ember.Input(shape=(3,)), ember.layers.Dense(2)])
        >>> copy = ember.Sequential([ember.Input(shape=(3,)), ember.layers.Dense(2)])
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     save_safetensors(model, os.path.join(folder, "w.safetensors"))
        ...     load_safetensors(copy, os.path.join(folder, "w.safetensors"))
        LoadResult(missing_keys=[], unexpected_keys=[])
        >>> bool(np.array_equal(copy.layers[0].kernel.numpy(), model.layers[0].kernel.numpy()))
        True
    """
    func = "save_safetensors"
    path = _path(path, func)
    named = _named(model, func)
    extra = metadata or {}
    if not isinstance(extra, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in extra.items()
    ):
        raise TypeError(f"{func}: metadata must be a dict of strings to strings, got {metadata!r}")
    safetensors_numpy = _require("safetensors.numpy", func)
    tensors = {name: np.ascontiguousarray(p.data) for name, p in named}
    header = {"format": "np", "producer": f"ember {__version__}", **extra}
    write_bytes_atomically(path, safetensors_numpy.save(tensors, metadata=header))


def load_safetensors(model, path, strict: bool = True) -> LoadResult:
    """Load a safetensors file written by :func:`save_safetensors` (or any file keyed by
    Ember's dotted weight names) into ``model``.

    The header is checked first (its length against the file, every tensor's offsets and byte
    count), then every key, shape and dtype against the model — a dtype must be the weight's
    own, nothing is converted. With ``strict=True`` missing and unexpected keys are errors;
    with ``strict=False`` the weights the file lacks are left as they are and its other
    tensors ignored. On any problem a ``ValueError`` lists them all and nothing is assigned.
    Returns ``LoadResult(missing_keys, unexpected_keys)``. See :func:`save_safetensors` for an
    example.
    """
    func = "load_safetensors"
    path = _path(path, func)
    named = dict(_named(model, func))
    entries, data_start = _read_st_header(path, func)
    missing, unexpected, problems = compare_by_name(named, entries, strict, _st_dtype_matches)
    if problems:
        raise ValueError(
            f"{func}: cannot load '{path}' into {model.name}: nothing was loaded: "
            + "; ".join(problems)
        )
    keys = [name for name in named if name in entries]
    values = _read_st_tensors(path, func, entries, data_start, keys)
    _assign((named[name], values[name]) for name in keys)
    return LoadResult(missing, unexpected)


# ------------------------------------------------------------------------------ PyTorch: input
class _Source(NamedTuple):
    """One tensor of the source: its full key and the tensor (torch or NumPy), not yet
    converted (a shape that does not fit is rejected before any copy is made)."""

    key: str
    value: object

    @property
    def shape(self) -> tuple:
        return tuple(self.value.shape)

    def is_float(self) -> bool:
        value = self.value
        if isinstance(value, np.ndarray):
            return value.dtype.kind == "f"
        layout_ok = str(getattr(value, "layout", "torch.strided")) == "torch.strided"
        return bool(value.is_floating_point()) and layout_ok and not value.is_quantized

    def dtype_name(self) -> str:
        name = str(self.value.dtype).replace("torch.", "")
        layout = str(getattr(self.value, "layout", "torch.strided"))
        return name if layout == "torch.strided" else f"{name} ({layout} layout)"

    def array(self) -> np.ndarray:
        value = self.value
        if isinstance(value, np.ndarray):
            return value
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":  # NumPy has no bfloat16
            value = value.float()
        return value.numpy()


def _is_torch_tensor(value) -> bool:
    return type(value).__module__.split(".")[0] == "torch" and hasattr(value, "is_floating_point")


def _torch_state(path_or_dict, func: str) -> dict[str, _Source]:
    """The flat ``{key: tensor}`` of a dict, a PyTorch file or a PyTorch safetensors file."""
    if isinstance(path_or_dict, Mapping):
        state = path_or_dict
    elif isinstance(path_or_dict, (str, os.PathLike)):
        path = _path(path_or_dict, func)
        if path.suffix.lower() == ".safetensors":
            entries, start = _read_st_header(path, func)
            state = _read_st_tensors(path, func, entries, start, list(entries))
        else:
            state = _load_torch_file(path, func)
    else:
        raise TypeError(
            f"{func}: path_or_dict must be a file path or a dict of tensors (a state_dict), "
            f"got {type(path_or_dict).__name__}"
        )
    out = {}
    for key, value in state.items():
        if not isinstance(key, str):
            raise ValueError(f"{func}: the state_dict has a key {key!r} that is not a string")
        if isinstance(value, Tensor):
            value = value.data
        if not (isinstance(value, np.ndarray) or _is_torch_tensor(value)):
            hint = (
                f" (a checkpoint? pass checkpoint[{key!r}])" if isinstance(value, Mapping) else ""
            )
            raise ValueError(
                f"{func}: entry {key!r} of the state_dict is a {type(value).__name__}, not a "
                f"tensor{hint}"
            )
        out[key] = _Source(key, value)
    return out


def _check_torch_zip(path: Path, func: str) -> None:
    """A ``torch.save`` file is a zip of stored (uncompressed) records: check that the zip
    directory's sizes fit in the file before PyTorch reads (and allocates) any record."""
    try:
        size = os.path.getsize(path)
        is_zip = zipfile.is_zipfile(path)
    except OSError as exc:
        raise type(exc)(f"{func}: cannot read '{path}': {exc}") from None
    if not is_zip:
        raise ValueError(
            f"{func}: '{path}' is not a PyTorch file in the zip format torch.save writes "
            "(PyTorch >= 1.6); the legacy format is not read: save it again with a recent "
            "torch.save(model.state_dict(), path)"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ValueError(f"{func}: '{path}' is a corrupted zip file: {exc}") from None
    total = 0
    for info in infos:
        total += info.file_size
        if (
            info.compress_type != zipfile.ZIP_STORED
            or info.file_size != info.compress_size
            or info.header_offset + info.file_size > size
            or total > size
        ):
            raise ValueError(
                f"{func}: '{path}' is forged or corrupted: its record {info.filename!r} claims "
                f"{info.file_size} bytes (stored: {info.compress_size}), the file has {size}"
            )


def _load_torch_file(path: Path, func: str) -> dict:
    _check_torch_zip(path, func)
    torch = _require("torch", func)
    try:
        state = torch.load(str(path), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        # PyTorch's message names the refused global ("Unsupported global: GLOBAL os.system")
        reason = next(
            (line for line in lines if "unsupported" in line.lower() or "GLOBAL" in line),
            lines[0] if lines else "",
        )
        reason = reason.split(". Please")[0].rstrip(".")  # not its advice to allowlist the class
        raise ValueError(
            f"{func}: '{path}' holds Python objects other than tensors and plain containers, "
            "which torch.load(weights_only=True) refuses to unpickle (unpickling could run "
            f"code): {reason}. Save model.state_dict() rather than the model or other objects"
        ) from None
    except (RuntimeError, ValueError, EOFError, OSError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{func}: torch.load could not read '{path}': {exc}") from None
    if not isinstance(state, Mapping):
        raise ValueError(
            f"{func}: '{path}' holds a {type(state).__name__}, not a state_dict (a dict of "
            "tensors by name): save model.state_dict()"
        )
    return state


_RNN_LEAF = re.compile(r"^(weight|bias)_(ih|hh|hr)_l(\d+)(_reverse)?$")


def _torch_modules(state: dict[str, _Source]) -> tuple[dict[str, dict[str, _Source]], list]:
    """Group the tensors by module, in the state_dict's order: ``{module: {leaf: source}}``.

    A recurrent module gives one entry per layer level (``"lstm"`` when it has one level,
    ``"lstm.l0"``, ``"lstm.l1"`` otherwise; leaves ``weight_ih``, ``bias_hh_reverse``, ...), and
    a MultiheadAttention's ``out_proj`` Linear joins its module (``out_proj.weight``).
    ``num_batches_tracked`` buffers are returned as ignored keys."""
    grouped: dict[tuple, dict[str, _Source]] = {}
    levels: dict[str, set] = {}
    ignored = []
    for key, source in state.items():
        prefix, _, leaf = key.rpartition(".")
        if leaf == "num_batches_tracked":
            ignored.append(key)
            continue
        match = _RNN_LEAF.match(leaf)
        level = None
        if match:
            kind, which, level, reverse = match.groups()
            leaf = f"{kind}_{which}{reverse or ''}"
            levels.setdefault(prefix, set()).add(level)
        grouped.setdefault((prefix, level), {})[leaf] = source
    modules: dict[str, dict[str, _Source]] = {}
    for (prefix, level), leaves in grouped.items():
        name = prefix if level is None or levels[prefix] == {"0"} else f"{prefix}.l{level}"
        modules[name] = leaves
    for name in [n for n in modules if n == "out_proj" or n.endswith(".out_proj")]:
        parent = name[: -len("out_proj")].rstrip(".")
        owner = modules.get(parent)
        if owner is not None and ("in_proj_weight" in owner or "q_proj_weight" in owner):
            for leaf, source in modules.pop(name).items():
                owner[f"out_proj.{leaf}"] = source
    return modules, ignored


# ------------------------------------------------------------------------------ PyTorch: plans
class _Unsupported(Exception):
    """This Ember layer cannot take PyTorch weights (the message says why)."""


class _Plan(NamedTuple):
    """How one Ember layer takes one PyTorch module: the tensors it expects (leaf → shape in
    PyTorch's layout) and a function from those arrays to ``[(weight, value)]``."""

    expects: dict
    build: Callable


def _dense_plan(layer: Dense, channels: int | None) -> _Plan:
    rows, units = layer.kernel.shape
    expects = {"weight": (units, rows)}
    if layer.bias is not None:
        expects["bias"] = (units,)
    if channels and rows % channels:
        raise _Unsupported(
            f"it follows a Flatten of {channels} channels but has {rows} inputs, not a multiple"
        )

    def build(a):
        kernel = a["weight"].T
        if channels:  # PyTorch flattened (C, H, W), Ember flattens (H, W, C)
            kernel = kernel.reshape(channels, rows // channels, units).transpose(1, 0, 2)
            kernel = kernel.reshape(rows, units)
        pairs = [(layer.kernel, kernel)]
        return pairs + ([(layer.bias, a["bias"])] if layer.bias is not None else [])

    return _Plan(expects, build)


def _conv_plan(layer: _Conv) -> _Plan:
    if type(layer) not in (Conv1D, Conv2D):
        raise _Unsupported(f"importing {type(layer).__name__} weights is not supported")
    # Ember: (*window, in, out) whatever the data_format; PyTorch: (out, in, *window)
    order = tuple(range(2, layer.kernel.ndim)) + (1, 0)
    torch_shape = tuple(layer.kernel.shape[i] for i in (-1, -2, *range(layer.kernel.ndim - 2)))
    expects = {"weight": torch_shape}
    if layer.bias is not None:
        expects["bias"] = (layer.filters,)

    def build(a):
        pairs = [(layer.kernel, a["weight"].transpose(order))]
        return pairs + ([(layer.bias, a["bias"])] if layer.bias is not None else [])

    return _Plan(expects, build)


def _norm_plan(layer) -> _Plan:
    """BatchNormalization and LayerNormalization: affine weight/bias, and running stats."""
    weights = {"weight": layer.gamma, "bias": layer.beta}
    if isinstance(layer, BatchNormalization):
        weights.update(running_mean=layer.moving_mean, running_var=layer.moving_variance)
    weights = {leaf: p for leaf, p in weights.items() if p is not None}

    def build(a):
        return [(p, a[leaf].reshape(p.shape)) for leaf, p in weights.items()]

    return _Plan({leaf: p.shape for leaf, p in weights.items()}, build)


def _embedding_plan(layer: Embedding) -> _Plan:
    return _Plan({"weight": layer.embeddings.shape}, lambda a: [(layer.embeddings, a["weight"])])


_GATES = {LSTMCell: 4, GRUCell: 3, SimpleRNNCell: 1}


def _blocks(w: np.ndarray, order, units: int) -> np.ndarray:
    """The gate blocks (rows of ``units``) of ``w`` in ``order``."""
    return np.concatenate([w[k * units : (k + 1) * units] for k in order], axis=0)


def _cell_plan(cell, suffix: str, expects: dict, builders: list) -> None:
    """Add one direction of a recurrent layer: PyTorch ``weight_ih{suffix}`` etc."""
    gates = _GATES.get(type(cell))
    if gates is None:
        raise _Unsupported(f"its cell is a {type(cell).__name__}, not an LSTM/GRU/SimpleRNN cell")
    if isinstance(cell, GRUCell) and not cell.reset_after:
        raise _Unsupported("GRU(reset_after=False) cannot take PyTorch's GRU (reset_after=True)")
    units, features = cell.units, cell.kernel.shape[0]
    order = (1, 0, 2) if isinstance(cell, GRUCell) else tuple(range(gates))  # r,z,n → z,r,h
    expects[f"weight_ih{suffix}"] = (gates * units, features)
    expects[f"weight_hh{suffix}"] = (gates * units, units)
    if cell.bias is not None:
        expects[f"bias_ih{suffix}"] = expects[f"bias_hh{suffix}"] = (gates * units,)

    def build(a):
        pairs = [
            (cell.kernel, _blocks(a[f"weight_ih{suffix}"], order, units).T),
            (cell.recurrent_kernel, _blocks(a[f"weight_hh{suffix}"], order, units).T),
        ]
        if cell.bias is not None:
            b_ih = _blocks(a[f"bias_ih{suffix}"], order, units)
            b_hh = _blocks(a[f"bias_hh{suffix}"], order, units)
            # GRU: the recurrent bias stays apart (it sits inside r * (h U + b)); others add up
            bias = np.stack([b_ih, b_hh]) if isinstance(cell, GRUCell) else b_ih + b_hh
            pairs.append((cell.bias, bias))
        return pairs

    builders.append(build)


def _recurrent_plan(layer) -> _Plan:
    expects, builders = {}, []
    if isinstance(layer, Bidirectional):
        _cell_plan(layer.forward_layer.cell, "", expects, builders)
        _cell_plan(layer.backward_layer.cell, "_reverse", expects, builders)
    else:
        _cell_plan(layer.cell, "", expects, builders)
    return _Plan(expects, lambda a: [pair for build in builders for pair in build(a)])


def _mha_plan(layer: MultiHeadAttention, leaves) -> _Plan:
    heads, dim = layer.num_heads, layer.key_dim
    width = heads * dim
    out = layer.output_kernel.shape[-1]
    if layer.value_dim != dim or out != width:
        raise _Unsupported(
            "PyTorch's MultiheadAttention has value_dim == key_dim == embed_dim / num_heads and "
            f"embed_dim outputs; this layer has key_dim {dim}, value_dim {layer.value_dim}, "
            f"{heads} heads and {out} outputs"
        )
    names = ("query", "key", "value")
    kernels = [getattr(layer, f"{n}_kernel") for n in names]
    packed = "in_proj_weight" in leaves
    expects = {"out_proj.weight": (width, width)}
    if packed:
        expects["in_proj_weight"] = (3 * width, kernels[0].shape[0])
    else:
        for short, kernel in zip("qkv", kernels):
            expects[f"{short}_proj_weight"] = (width, kernel.shape[0])
    if layer.use_bias:
        expects.update({"in_proj_bias": (3 * width,), "out_proj.bias": (width,)})

    def build(a):
        if packed:
            weights = np.split(a["in_proj_weight"], 3)
        else:
            weights = [a[f"{s}_proj_weight"] for s in "qkv"]
        pairs = [(k, w.T.reshape(k.shape)) for k, w in zip(kernels, weights)]
        pairs.append((layer.output_kernel, a["out_proj.weight"].T.reshape(heads, dim, width)))
        if layer.use_bias:
            biases = np.split(a["in_proj_bias"], 3)
            pairs += [
                (getattr(layer, f"{n}_bias"), b.reshape(heads, dim)) for n, b in zip(names, biases)
            ]
            pairs.append((layer.output_bias, a["out_proj.bias"]))
        return pairs

    return _Plan(expects, build)


def _generic_plan(layer: Layer) -> _Plan:
    """A layer of another kind: PyTorch's tensors named as Ember's weights, copied as is."""
    weights = {path[-1]: p for path, p, _ in layer._named_weights() if len(path) == 1}
    return _Plan(
        {name: p.shape for name, p in weights.items()},
        lambda a: [(p, a[name]) for name, p in weights.items()],
    )


def _plan(layer: Layer, leaves: dict, channels: int | None) -> _Plan:
    if isinstance(layer, Dense):
        return _dense_plan(layer, channels)
    if isinstance(layer, _Conv):
        return _conv_plan(layer)
    if isinstance(layer, (BatchNormalization, LayerNormalization)):
        return _norm_plan(layer)
    if isinstance(layer, Embedding):
        return _embedding_plan(layer)
    if isinstance(layer, (RNN, Bidirectional)):
        return _recurrent_plan(layer)
    if isinstance(layer, MultiHeadAttention):
        return _mha_plan(layer, leaves)
    return _generic_plan(layer)


# ------------------------------------------------------------------------------ PyTorch: pairing
class _Unit(NamedTuple):
    """An Ember layer that one PyTorch module fills: its dotted path and the layer."""

    path: str
    layer: Layer


_COMPOSITE = (RNN, Bidirectional, MultiHeadAttention)  # one PyTorch module for all their weights


def _ember_units(model) -> list[_Unit]:
    """The layers with weights, in the model's order; a recurrent layer (with its cells) and
    an attention layer are one unit each."""
    units, claimed = [], []
    for path, layer, _ in model._named_layers():
        if any(path[: len(c)] == c for c in claimed):
            continue
        if isinstance(layer, _COMPOSITE):
            claimed.append(path)
        elif not layer._weights:
            continue
        if layer.weights:
            units.append(_Unit(".".join(path), layer))
    return units


def _flatten_channels(model) -> dict[int, int]:
    """``{id(dense): C}`` for each Dense right after a Flatten whose input came from a
    channels-last convolution (through channel-preserving layers such as pooling, batch norm,
    activations, dropout): PyTorch flattened those features as (C, H, W), Ember as (H, W, C)."""
    found, channels, pending = {}, None, None
    for _, layer, _ in model._named_layers():
        if isinstance(layer, Flatten):
            pending, channels = channels, None
            continue
        if isinstance(layer, Dense) and pending:
            found[id(layer)] = pending
        if isinstance(layer, _Conv):
            channels = layer.filters if layer.data_format == "channels_last" else None
        elif isinstance(layer, (Reshape, Permute, RepeatVector)) or (
            layer._weights and not isinstance(layer, BatchNormalization)
        ):
            channels = None
        if layer._weights or isinstance(layer, (Reshape, Permute, RepeatVector)):
            pending = None
    return found


def _describe_unit(unit: _Unit) -> str:
    weights = ", ".join(f"{'.'.join(path)} {p.shape}" for path, p, _ in unit.layer._named_weights())
    return f"{unit.path or '(model)'} [{type(unit.layer).__name__}: {weights}]"


def _describe_module(name: str, leaves: dict) -> str:
    tensors = ", ".join(f"{leaf} {source.shape}" for leaf, source in leaves.items())
    return f"{name or '(root)'} [{tensors}]"


def _table(units, modules: dict, pairs=None) -> str:
    """Both sides, line by line, as they are paired."""
    if pairs is None:
        names = list(modules)
        count = max(len(units), len(names))
        pairs = [
            (units[i] if i < len(units) else None, names[i] if i < len(names) else None)
            for i in range(count)
        ]
    lines = []
    for i, (unit, name) in enumerate(pairs, 1):
        left = _describe_unit(unit) if unit is not None else "-"
        right = _describe_module(name, modules[name]) if name is not None else "-"
        lines.append(f"  {i}. Ember {left}  <->  PyTorch {right}")
    return "\n" + "\n".join(lines)


def _pair_by_mapping(units, modules: dict, mapping, func: str):
    if not isinstance(mapping, Mapping):
        raise TypeError(
            f"{func}: mapping must be a dict {{Ember layer path or name: PyTorch module}}, got "
            f"{type(mapping).__name__}"
        )
    by_key = {unit.path: unit for unit in units}  # a path wins over a layer's name
    for unit in units:
        by_key.setdefault(unit.layer.name, unit)
    pairs, problems = [], []
    for key, name in mapping.items():
        unit = by_key.get(key)
        if unit is None:
            problems.append(
                f"mapping key {key!r} is not a layer with weights of the model (they are: "
                + ", ".join(u.path for u in units)
                + ")"
            )
        elif name not in modules:
            problems.append(
                f"mapping value {name!r} (for {key!r}) is not a module of the state_dict (they "
                "are: " + ", ".join(repr(n) for n in modules) + ")"
            )
        else:
            pairs.append((unit, name))
    return pairs, problems


# ------------------------------------------------------------------------------ PyTorch: import
def _check_pair(unit: _Unit, name: str, leaves: dict, plan: _Plan) -> list[str]:
    """Every tensor the plan needs is there, float, and of the right shape; no extra ones."""
    label = f"{unit.path or '(model)'} ({type(unit.layer).__name__}) <- {name or '(root)'}"
    problems = []
    missing = [leaf for leaf in plan.expects if leaf not in leaves]
    extra = [leaves[leaf].key for leaf in leaves if leaf not in plan.expects]
    if missing:
        prefix = f"{name}." if name else ""
        problems.append(f"{label}: missing " + ", ".join(prefix + leaf for leaf in missing))
    if extra:
        problems.append(f"{label}: unexpected " + ", ".join(extra))
    for leaf, shape in plan.expects.items():
        source = leaves.get(leaf)
        if source is None:
            continue
        if source.shape != tuple(shape):
            problems.append(
                f"{label}: {source.key} has shape {source.shape}, expected {tuple(shape)}"
            )
        elif not source.is_float():
            problems.append(
                f"{label}: {source.key} has dtype {source.dtype_name()}; expected floating-point "
                "weights"
            )
    return problems


def _pairs(units, modules, mapping, strict: bool, func: str):
    """(pairs, problems, Ember units left, modules left, whether a table helps)."""
    if mapping is not None:
        pairs, problems = _pair_by_mapping(units, modules, mapping, func)
    else:
        count = min(len(units), len(modules))
        pairs, problems = list(zip(units[:count], list(modules)[:count])), []
    used_units = {id(u) for u, _ in pairs}
    used_names = {n for _, n in pairs}
    left_units = [u for u in units if id(u) not in used_units]
    left_modules = [n for n in modules if n not in used_names]
    if strict and (left_units or left_modules):
        how = "mapped" if mapping is not None else "matched in order"
        problems.append(
            f"the model has {len(units)} layers with weights and the state_dict {len(modules)} "
            f"modules with weights, {how}; unpaired: Ember "
            + (", ".join(u.path for u in left_units) or "none")
            + "; PyTorch "
            + (", ".join(repr(n) for n in left_modules) or "none")
            + (" (pass mapping={ember_layer: torch_module} or strict=False)")
        )
    return pairs, problems, left_units, left_modules


def load_torch_state_dict(
    model, path_or_dict, mapping: dict | None = None, strict: bool = True
) -> ImportResult:
    """Load the weights of a PyTorch model of the same architecture into ``model``.

    ``path_or_dict`` is a ``torch.save(module.state_dict(), path)`` file (read with
    ``torch.load(path, weights_only=True, map_location="cpu")``: a file holding other pickled
    objects is refused), a ``.safetensors`` file of PyTorch weights, or a dict of torch tensors
    or NumPy arrays. The layouts are converted as the module docstring's table says.

    Ember's layers with weights are matched with PyTorch's modules in order (Ember's layer
    order, PyTorch's registration order; a recurrent or attention layer counts once), or by
    ``mapping`` ``{Ember layer path or name: PyTorch module prefix}`` (``{"dense_1": "fc2"}``;
    a multi-level recurrent module's levels are ``"lstm.l0"``, ``"lstm.l1"``). With
    ``strict=True`` every layer and module must be paired; with ``strict=False`` the unpaired
    ones are left alone and reported. Shapes, names and dtypes are all checked before anything
    is assigned: on any problem a ``ValueError`` lists them with both sides side by side, and
    the model is unchanged. Values are cast to the weights' dtypes.

    Example:
        >>> from ember.interchange import load_torch_state_dict
        >>> model = ember.Sequential([ember.Input(shape=(3,)), ember.layers.Dense(2)])
        >>> state = {"fc.weight": np.arange(6.0).reshape(2, 3), "fc.bias": np.ones(2)}
        >>> load_torch_state_dict(model, state)  # PyTorch's Linear(3, 2)
        ImportResult(loaded=['dense.kernel', 'dense.bias'], skipped=[], unused=[])
        >>> model.layers[0].kernel.numpy()  # the transpose of PyTorch's weight
        array([[0., 3.],
               [1., 4.],
               [2., 5.]], dtype=float32)
    """
    func = "load_torch_state_dict"
    named = _named(model, func)
    state = _torch_state(path_or_dict, func)
    modules, ignored = _torch_modules(state)
    units = _ember_units(model)
    pairs, problems, left_units, left_modules = _pairs(units, modules, mapping, strict, func)
    channels = _flatten_channels(model)
    plans = []
    for unit, name in pairs:
        try:
            plan = _plan(unit.layer, modules[name], channels.get(id(unit.layer)))
        except _Unsupported as exc:
            problems.append(f"{unit.path} ({type(unit.layer).__name__}): {exc}")
            continue
        problems += _check_pair(unit, name, modules[name], plan)
        plans.append((plan, modules[name]))
    if problems:
        table = _table(units, modules, pairs if mapping is not None else None)
        raise ValueError(
            f"{func}: cannot load the state_dict into {model.name}: nothing was loaded: "
            + "; ".join(problems)
            + "\nLayers and modules as paired:"
            + table
        )
    values = []
    for plan, leaves in plans:
        arrays = {leaf: leaves[leaf].array() for leaf in plan.expects}
        values += plan.build(arrays)
    for param, value in values:  # guards the converters themselves
        if value.shape != param.shape:
            raise AssertionError(f"{func}: converted {param.name} to {value.shape}")
    _assign(values)
    loaded_ids = {id(p) for p, _ in values}
    return ImportResult(
        loaded=[n for n, p in named if id(p) in loaded_ids],
        skipped=[n for n, p in named if id(p) not in loaded_ids],
        unused=ignored + [s.key for n in left_modules for s in modules[n].values()],
    )


# ------------------------------------------------------------------------------ Keras
_KERAS_FILTERS = {1, 2, 3, 32000}  # deflate, shuffle, fletcher32, lzf: decoded by h5py itself
_H5_MAX_DEPTH = 64


def _is_graph_model(layer) -> bool:
    return isinstance(layer, Sequential) or (
        isinstance(layer, Model) and getattr(layer, "_graph", None) is not None
    )


def _keras_class_name(layer) -> str:
    if type(layer) is Model and _is_graph_model(layer):
        return "functional"  # Keras' class of a functional model
    return _snake_case(re.sub(r"\W+", "", type(layer).__name__))


def _keras_container(attribute: str, items) -> list[tuple[str, Layer]]:
    """Keras names the layers of a list by class, numbered per class: dense, dense_1, ..."""
    used: dict[str, int] = {}
    out = []
    for item in items:
        if not isinstance(item, Layer):
            continue
        name = _keras_class_name(item)
        if name in used:
            used[name] += 1
            name = f"{name}_{used[name]}"
        else:
            used[name] = 0
        out.append((f"{attribute}/{name}", item))
    return out


def _keras_children(layer) -> list[tuple[str, Layer]]:
    if _is_graph_model(layer):
        return _keras_container("layers", layer.layers)
    children = []
    for attribute, value in sorted(layer._layer_attributes(), key=lambda item: item[0]):
        if isinstance(value, Layer):
            children.append((attribute, value))
        elif isinstance(value, (list, tuple, dict)):
            items = list(value.values()) if isinstance(value, dict) else value
            children += _keras_container(attribute, items)
    return children


def _keras_layout(layer, path: str, out: list, seen: set) -> None:
    """``(dataset path, weight)`` for every weight, where Keras 3 stores it."""
    if id(layer) in seen:
        return
    seen.add(id(layer))

    def join(*parts):
        return "/".join(part for part in (path, *parts) if part)

    if isinstance(layer, MultiHeadAttention):  # Keras keeps four EinsumDense sublayers
        for part in ("query", "key", "value", "output"):
            own = [getattr(layer, f"{part}_kernel"), getattr(layer, f"{part}_bias")]
            for i, p in enumerate(q for q in own if q is not None):
                out.append((join(f"_{part}_dense", "vars", str(i)), p))
        return
    own = [p for p in layer._weights if p.trainable] + [
        p for p in layer._weights if not p.trainable
    ]
    for i, p in enumerate(own):
        out.append((join("vars", str(i)), p))
    for name, child in _keras_children(layer):
        _keras_layout(child, join(name), out, seen)


def _h5_datasets(h5py, handle, func: str, path: Path) -> dict:
    """Every dataset of the file by path; links other than hard links are refused (an
    external link would read another file)."""
    found = {}

    def visit(group, prefix: str, depth: int) -> None:
        if depth > _H5_MAX_DEPTH:
            raise ValueError(f"{func}: '{path}' nests groups deeper than {_H5_MAX_DEPTH}")
        for name in group:
            full = f"{prefix}/{name}" if prefix else name
            link = group.get(name, getlink=True)
            if not isinstance(link, h5py.HardLink):
                raise ValueError(
                    f"{func}: '{path}' has a {type(link).__name__} at '{full}'; Keras weights "
                    "files hold plain groups and datasets only"
                )
            item = group[name]
            if isinstance(item, h5py.Group):
                visit(item, full, depth + 1)
            elif isinstance(item, h5py.Dataset):
                found[full] = item

    visit(handle, "", 0)
    return found


def _h5_problem(dataset, name: str, weight) -> str | None:
    """Why this dataset cannot be the weight, judged from its metadata alone (nothing read)."""
    dtype = dataset.dtype
    if dtype.names is not None or dtype.kind != "f" or dtype.itemsize not in (2, 4, 8):
        return f"{name} has dtype {dtype}; expected floating-point weights"
    if tuple(dataset.shape) != weight.shape:
        return f"{name} has shape {tuple(dataset.shape)}, the model's weight has {weight.shape}"
    if dataset.is_virtual or dataset.external:
        return f"{name} keeps its data outside the file (virtual or external storage)"
    plist = dataset.id.get_create_plist()
    filters = {plist.get_filter(i)[0] for i in range(plist.get_nfilters())}
    if filters - _KERAS_FILTERS:
        return f"{name} is encoded with HDF5 filters {sorted(filters - _KERAS_FILTERS)}"
    return None


def _keras_ignored(dataset_path: str) -> bool:
    """Training state a Keras weights file may hold besides the layers' weights."""
    top = dataset_path.split("/", 1)[0]
    return top == "optimizer" or top.startswith("_")


def load_keras_weights(model, path) -> ImportResult:
    """Load a Keras 3 ``.weights.h5`` file (``keras_model.save_weights(path)``) into a model
    of the same architecture.

    The datasets are found where Keras 3 stores them (see the module docstring): the layers of
    a Sequential or functional model by class name and count (``layers/dense/vars/0`` is the
    first Dense's kernel, ``layers/dense_1/vars/1`` the second one's bias). Every expected
    dataset must be there, float, and of the weight's shape, and no other weight may be in the
    file (the optimizer's and metrics' variables are ignored and reported as unused); data are
    cast to the weights' dtypes. On any problem a ``ValueError`` lists them all and the model
    is unchanged.

    Example:
        >>> import tempfile, os, h5py
        >>> from ember.interchange import load_keras_weights
        >>> model = ember.Sequential([ember.Input(shape=(3,)), ember.layers.Dense(2)])
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = os.path.join(folder, "m.weights.h5")
        ...     with h5py.File(path, "w") as f:   # what Keras writes for this model
        ...         f["layers/dense/vars/0"] = np.ones((3, 2), "float32")
        ...         f["layers/dense/vars/1"] = np.zeros(2, "float32")
        ...     load_keras_weights(model, path)
        ImportResult(loaded=['dense.kernel', 'dense.bias'], skipped=[], unused=[])
        >>> model.predict(np.ones((1, 3)), verbose=0)
        array([[3., 3.]], dtype=float32)
    """
    func = "load_keras_weights"
    path = _path(path, func)
    named = _named(model, func)
    h5py = _require("h5py", func)
    layout: list = []
    _keras_layout(model, "", layout, set())
    expected = dict(layout)
    if len(expected) != len(layout):
        raise ValueError(f"{func}: two weights of {model.name} map to the same Keras path")
    if not path.is_file():
        raise FileNotFoundError(f"{func}: no file '{path}'")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{func}: '{path}' is not an HDF5 file: {exc}") from None
    with handle:
        found = _h5_datasets(h5py, handle, func, path)
        ignored = [k for k in found if k not in expected and _keras_ignored(k)]
        unexpected = [k for k in found if k not in expected and not _keras_ignored(k)]
        problems = []
        missing = [k for k in expected if k not in found]
        if missing:
            problems.append("missing from the file: " + ", ".join(missing))
        if unexpected:
            problems.append("unexpected in the file: " + ", ".join(unexpected))
        problems += [
            problem
            for key, weight in expected.items()
            if key in found and (problem := _h5_problem(found[key], key, weight)) is not None
        ]
        if problems:
            where = {id(p): n for n, p in named}
            hint = ", ".join(f"{where[id(p)]} <- {k}" for k, p in expected.items())
            raise ValueError(
                f"{func}: cannot load '{path}' into {model.name}: nothing was loaded: "
                + "; ".join(problems)
                + f". Expected layout: {hint}"
            )
        try:
            values = [(p, np.asarray(found[key][()])) for key, p in expected.items()]
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(f"{func}: '{path}' could not be read: {exc}") from None
    _assign(values)
    loaded_ids = {id(p) for p in expected.values()}
    return ImportResult(
        loaded=[n for n, p in named if id(p) in loaded_ids],
        skipped=[n for n, p in named if id(p) not in loaded_ids],
        unused=ignored,
    )
