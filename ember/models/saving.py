"""One-file model checkpoints keyed by weight name: verified, safe to load, written atomically.

Container (the same in every format version)::

    8 bytes   magic b"EMBERMDL"
    2 bytes   format version (little-endian uint16): 2; files of format 1 still load
    8 bytes   payload length (little-endian uint64)
    32 bytes  SHA-256 of the payload
    payload   a zip archive of ``.npy`` members, each stored uncompressed (what ``np.savez``
              writes, so ``np.load(payload, allow_pickle=False)`` can open it too)

Members of the payload in format 2::

    __config__.npy               the JSON config below, as a 1-D uint8 array
    weight/<name>.npy            one per weight; <name> is the weight's path in the model, the
                                 segments of ``Layer._named_weights`` joined by "/":
                                 "dense_1/kernel", "encoder/dense/bias", "hidden/kernel"
    optimizer/<name>/<slot>.npy  one per array of the optimizer state of weight <name>
                                 ("optimizer/dense_1/kernel/m")

The JSON config::

    "format": 2, "ember_version": "…",
    "weights": [{"name", "shape", "dtype", "trainable"}, …]      # in model.weights order
    "model": {"class_name", "config"}, "auto_named": [[i, class name], …],  # save() only:
             # the architecture, and which layers (by index in the model's layer walk) had
             # class-based names, so that the rebuilt model names its weights the same way
    "rng_state": {…}                                               # save() only
    "compile": {"optimizer": {"name", "config"}, "output_names": […],
                "loss": {output: loss spec} or null, "loss_weights": {output: w} or null,
                "metrics": {output: [metric names]},
                "optimizer_state": {"iterations": n,
                                    "params": [{"name", "scalars": {…},
                                                "slots": {slot: {"shape", "dtype"}}}, …]}}

Format 1 (read only) stored weights by position (``weight/<i>``), the optimizer state by the
index of its weight (``optimizer/<i>/<slot>``, ``"params": [indices]``), a functional model as
class ``"Functional"``, and one loss and one metric list.

Loading never executes code (JSON, and ``.npy`` arrays of numbers only: a pickled or object
member is rejected) and never allocates what the file merely claims: only the members the model
or the config names are opened, and each member's ``.npy`` header is parsed and checked (name,
shape, dtype, stored uncompressed, byte size = header + shape × itemsize) before any array is
read, so memory stays bounded by the file's real size. Everything is validated — the container's
length and SHA-256, every array against the config, the rebuilt model's weights, the compile
settings and the optimizer state — before anything is assigned: a failed load leaves the target
model exactly as it was and never returns a partial model. Building a model from its config does
not advance Ember's random generator, and ``load_model`` restores the generator state saved with
the model only when asked (``restore_rng=True``).

Saving writes to a temporary file in the target's directory, flushes and fsyncs it, then renames
it over the target (``os.replace`` is atomic on one file system): a crash mid-save leaves the
previous checkpoint intact. A replaced file keeps its permission bits; a new one gets
``0o666 & ~umask``. Missing parent directories are created.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import secrets
import stat
import struct
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ember import __version__
from ember import losses as losses_module
from ember import optimizers as optimizers_module
from ember.layers.base import LAYER_CLASSES, registered_name
from ember.tensor import default_rng, get_rng_state, set_rng_state

MAGIC = b"EMBERMDL"
FORMAT_VERSION = 2
_HEADER = struct.Struct("<8sHQ32s")
_CONFIG_KEY = "__config__"
_NPY_HEADER_LIMIT = 10_000  # bytes of a .npy header dict, NumPy's own default limit
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed member dates: the same weights give the same bytes


class CheckpointError(ValueError):
    """The file is not a readable Ember checkpoint (wrong type, truncated, corrupted, forged,
    too new), or its contents contradict each other."""


# ------------------------------------------------------------------------------ writing
def _resolve(path) -> Path:
    return Path(os.path.expanduser(os.fspath(path)))


def _new_temp_file(path: Path) -> tuple[int, str]:
    """An exclusive new file next to ``path``, created with mode 0o666 so that the kernel
    applies the umask (``mkstemp`` would force 0600)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        name = os.path.join(path.parent, f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(name, flags, 0o666), name
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file next to '{path}'")


def _write_atomic(path: Path, payload: bytes) -> None:
    """Write header + payload to ``path`` all at once or not at all (see the module docstring)."""
    header = _HEADER.pack(MAGIC, FORMAT_VERSION, len(payload), hashlib.sha256(payload).digest())
    write_bytes_atomically(path, header, payload)


def write_bytes_atomically(path: Path, *chunks: bytes) -> None:
    """``chunks`` to ``path`` all at once or not at all: a new temporary file in the same folder
    (missing folders are created), fsynced, renamed over ``path`` and the folder fsynced; a
    replaced file keeps its permission bits. The one atomic writer of every Ember file format
    (checkpoints, safetensors, ONNX)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        previous_mode = stat.S_IMODE(os.stat(path).st_mode) & 0o777
    except FileNotFoundError:
        previous_mode = None
    fd, tmp_name = _new_temp_file(path)
    try:
        try:
            if previous_mode is not None:
                if hasattr(os, "fchmod"):
                    os.fchmod(fd, previous_mode)
                else:  # pragma: no cover - Windows
                    os.chmod(tmp_name, previous_mode)
            f = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            raise
        with f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX); best effort where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _pack(config: dict, arrays: dict[str, np.ndarray]) -> bytes:
    """The payload: a zip of uncompressed ``.npy`` members, the JSON config first."""
    try:
        text = json.dumps(config)
    except TypeError as exc:
        raise TypeError(
            f"cannot save this model: part of its configuration is not serializable ({exc}). "
            "Custom objects (a lambda or custom learning-rate schedule, a custom activation) "
            "cannot be saved by name: use the built-in ones (e.g. from "
            "ember.optimizers.schedules), or save_weights() and rebuild the model in code"
        ) from None
    members = {_CONFIG_KEY: np.frombuffer(text.encode("utf-8"), dtype=np.uint8)}
    members.update(arrays)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, array in members.items():
            info = zipfile.ZipInfo(key + ".npy", date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_STORED
            with zf.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def _named_weights(model) -> list[tuple[str, object, bool]]:
    """``(name, weight, trainable)`` in ``model.weights`` order; names must be unique."""
    named = [("/".join(path), p, trainable) for path, p, trainable in model._named_weights()]
    seen: dict[str, int] = {}
    for name, _, _ in named:
        seen[name] = seen.get(name, 0) + 1
    clashes = sorted(name for name, count in seen.items() if count > 1)
    if clashes:
        raise ValueError(
            f"{model.name}: several weights have the checkpoint name {clashes[0]!r} (a layer or "
            "weight name containing '/' can clash with a nested path); rename the layers"
        )
    return named


def _weight_specs(named) -> list[dict]:
    return [
        {"name": name, "shape": list(p.shape), "dtype": p.dtype.name, "trainable": p.trainable}
        for name, p, _ in named
    ]


def _model_config(model) -> dict:
    """``{"class_name", "config"}`` of a functional or Sequential model (not a subclassed one)."""
    try:
        config = model.get_config()
    except NotImplementedError as exc:
        raise ValueError(
            f"{model.name}: a subclassed Model (or a model holding one) cannot be saved with its "
            "architecture, which is Python code; use model.save_weights(path) instead, and "
            f"rebuild the model in code before model.load_weights(path) ({exc})"
        ) from None
    return {"class_name": registered_name(type(model)), "config": config}


def _auto_named(model) -> list[list]:
    """The layers (index in the model's layer walk, class name) named after their class."""
    return [
        [i, type(layer).__name__]
        for i, layer in enumerate(model._all_layers())
        if getattr(layer, "_auto_named", False)
    ]


def _json_scalar(value):
    return value.item() if isinstance(value, np.generic) else value


def _compile_config(model, named, arrays: dict) -> dict:
    """The compile settings and optimizer state; adds the optimizer's arrays to ``arrays``."""
    compile_loss = model._compile_loss
    if compile_loss is not None:
        loss_config = compile_loss.get_config()
        output_names = list(compile_loss.output_names)
        losses = {k: v for k, v in loss_config["losses"].items() if v is not None}
        loss_weights = loss_config["loss_weights"]
    elif model._compile_args.get("loss") is None:
        output_names, losses, loss_weights = model.output_names, None, None
    else:
        raise ValueError(
            f"{model.name}: the compiled losses are not resolved yet (the model has not run); "
            "call the model on a batch before saving"
        )
    metrics, weighted_metrics = {}, {}
    compile_metrics = model._compile_metrics
    if compile_metrics is not None:
        names = compile_metrics.output_names
        metrics = dict(zip(names, compile_metrics.serializable_specs()))
        weighted_metrics = dict(zip(names, compile_metrics.serializable_specs(weighted=True)))
    optimizer = model.optimizer
    name_of = {id(p): name for name, p, _ in named}
    params = []
    for p, state in zip(optimizer.params, optimizer.state):
        name = name_of.get(id(p))
        if name is None:
            continue  # a tensor outside this model (a shared optimizer): not this checkpoint's
        entry = {"name": name, "scalars": {}, "slots": {}}
        for slot, value in state.items():
            if isinstance(value, np.ndarray):
                key = f"optimizer/{name}/{slot}"
                if "/" in str(slot) or key in arrays:
                    raise ValueError(
                        f"{model.name}: the optimizer state of {name!r} has a slot named "
                        f"{slot!r}, which cannot be stored by name"
                    )
                arrays[key] = value
                entry["slots"][slot] = {"shape": list(value.shape), "dtype": value.dtype.name}
            else:
                entry["scalars"][slot] = _json_scalar(value)
        params.append(entry)
    return {
        "optimizer": optimizers_module.serialize(optimizer),
        "output_names": list(output_names) if output_names is not None else None,
        "loss": losses,
        "loss_weights": loss_weights,
        "metrics": metrics,
        "weighted_metrics": weighted_metrics,
        "optimizer_state": {"iterations": int(optimizer.iterations), "params": params},
    }


def save_model(model, path) -> None:
    """Write a functional or Sequential ``model`` to ``path``: architecture, weights by name,
    compile settings, optimizer state and Ember's RNG state, atomically (``model.save``)."""
    path = _resolve(path)
    named = _named_weights(model)
    config = {
        "format": FORMAT_VERSION,
        "ember_version": __version__,
        "model": _model_config(model),
        "auto_named": _auto_named(model),
        "weights": _weight_specs(named),
        # so that a resumed fit can shuffle (and drop out) exactly as an uninterrupted one
        "rng_state": get_rng_state(),
    }
    arrays = {f"weight/{name}": p.data for name, p, _ in named}
    if model.compiled:
        config["compile"] = _compile_config(model, named, arrays)
    _write_atomic(path, _pack(config, arrays))


def save_weights(model, path) -> None:
    """Write the weights of ``model`` (any kind, subclassed too) to ``path`` by name,
    atomically (``model.save_weights``). A path ending in ``.safetensors`` gets a safetensors
    file instead (``ember.interchange.save_safetensors``)."""
    path = _resolve(path)
    if path.suffix.lower() == ".safetensors":
        from ember.interchange import save_safetensors  # imported here: it imports this module

        save_safetensors(model, path)
        return
    named = _named_weights(model)
    config = {
        "format": FORMAT_VERSION,
        "ember_version": __version__,
        "weights": _weight_specs(named),
    }
    _write_atomic(path, _pack(config, {f"weight/{name}": p.data for name, p, _ in named}))


# ------------------------------------------------------------------------------ reading
def _read_payload(path: Path) -> tuple[int, bytes]:
    """(format version, payload) after the container's checks: magic, version, length,
    SHA-256."""
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        raise CheckpointError(f"'{path}' is a directory, not an Ember checkpoint file") from None
    if len(raw) == 0:
        raise CheckpointError(f"checkpoint '{path}' is empty (0 bytes): the save never completed")
    if raw[: len(MAGIC)] != MAGIC[: len(raw)]:  # a prefix of the magic is a truncated file
        raise CheckpointError(
            f"'{path}' is not an Ember checkpoint (it starts with {raw[:8]!r}, expected {MAGIC!r})"
        )
    if len(raw) < _HEADER.size:
        raise CheckpointError(
            f"checkpoint '{path}' is corrupted or truncated: only {len(raw)} bytes, shorter than "
            f"the {_HEADER.size}-byte header"
        )
    _, version, length, digest = _HEADER.unpack_from(raw)
    if version > FORMAT_VERSION or version == 0:
        raise CheckpointError(
            f"checkpoint '{path}' uses format v{version}; this Ember ({__version__}) reads "
            f"v1–v{FORMAT_VERSION}. Upgrade Ember to load it"
        )
    payload = raw[_HEADER.size :]
    if len(payload) != length:
        raise CheckpointError(
            f"checkpoint '{path}' is corrupted or truncated: expected {length} payload bytes, "
            f"found {len(payload)}"
        )
    if hashlib.sha256(payload).digest() != digest:
        raise CheckpointError(f"checkpoint '{path}' is corrupted (checksum mismatch)")
    return version, payload


class _Member(NamedTuple):
    """A checked ``.npy`` member: where its data starts, and what it holds."""

    info: zipfile.ZipInfo
    offset: int
    shape: tuple
    dtype: np.dtype
    fortran_order: bool


class _Archive:
    """The verified payload of a checkpoint, read member by member and by name only."""

    def __init__(self, path: Path):
        self.path = path
        self.version, self.payload = _read_payload(path)
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(self.payload))
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            # the checksum passed, so this is a writer bug or a forged file
            raise CheckpointError(f"checkpoint '{path}' could not be decoded: {exc}") from None
        member = self.member(_CONFIG_KEY, None, np.dtype(np.uint8), "the config")
        if len(member.shape) != 1:
            raise self.error(f"its config member has shape {member.shape}, expected 1-D bytes")
        try:
            self.config = json.loads(self.read(member).tobytes().decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise self.error(f"its config is not valid JSON: {exc}") from None
        if not isinstance(self.config, dict):
            raise self.error("its config is not a JSON object")

    def error(self, message: str) -> CheckpointError:
        return CheckpointError(f"checkpoint '{self.path}' is invalid: {message}")

    def has(self, key: str) -> bool:
        try:
            self.zip.getinfo(key + ".npy")
        except KeyError:
            return False
        return True

    def member(self, key: str, shape, dtype: np.dtype, what: str) -> _Member:
        """Check member ``key`` against the expected ``shape`` (``None``: any) and ``dtype``
        from its ``.npy`` header and zip entry alone; reads no array data."""
        label = f"array {key!r} ({what})"
        try:
            info = self.zip.getinfo(key + ".npy")
        except KeyError:
            raise self.error(f"the {label} is missing") from None
        if info.compress_type != zipfile.ZIP_STORED:
            raise self.error(
                f"the {label} is compressed (zip method {info.compress_type}); Ember writes and "
                "reads members stored uncompressed only"
            )
        if info.flag_bits & 0x1:
            raise self.error(f"the {label} is encrypted")
        if info.compress_size != info.file_size or info.file_size > len(self.payload):
            raise self.error(
                f"the {label} claims {info.file_size} bytes but the whole payload has "
                f"{len(self.payload)}"
            )
        try:
            with self.zip.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    header = np.lib.format.read_array_header_1_0(f, _NPY_HEADER_LIMIT)
                elif version == (2, 0):
                    header = np.lib.format.read_array_header_2_0(f, _NPY_HEADER_LIMIT)
                else:
                    raise ValueError(f".npy format version {version} is not supported")
                offset = f.tell()
        except (ValueError, TypeError, SyntaxError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise self.error(f"the {label} is not a valid .npy array: {exc}") from None
        found_shape, fortran_order, found_dtype = header
        if found_dtype.hasobject:
            raise self.error(
                f"the {label} holds Python objects (a pickle); Ember never unpickles, so a "
                "checkpoint can never run code"
            )
        if found_dtype.names is not None or found_dtype.subdtype is not None:
            raise self.error(f"the {label} has a structured dtype {found_dtype}")
        if found_dtype.kind not in "biuf":
            raise self.error(f"the {label} has dtype {found_dtype}; expected numbers")
        if found_dtype != dtype:
            raise self.error(f"the {label} has dtype {found_dtype}, its config says {dtype}")
        if shape is not None and tuple(found_shape) != tuple(shape):
            raise self.error(
                f"the {label} has shape {tuple(found_shape)}, its config says {tuple(shape)}"
            )
        nbytes = math.prod(found_shape) * found_dtype.itemsize
        if info.file_size != offset + nbytes:
            raise self.error(
                f"the {label} claims shape {tuple(found_shape)} {found_dtype} ({nbytes} bytes) "
                f"but holds {info.file_size - offset} bytes of data"
            )
        return _Member(info, offset, tuple(found_shape), found_dtype, bool(fortran_order))

    def read(self, member: _Member) -> np.ndarray:
        """The array of a member checked by :meth:`member` (read-only, bounded by the file)."""
        nbytes = math.prod(member.shape) * member.dtype.itemsize
        try:
            with self.zip.open(member.info) as f:
                f.read(member.offset)  # the header, checked already; reading on keeps the CRC
                data = f.read(nbytes)
                f.read(1)  # at the end: zipfile has compared the member's CRC
        except (OSError, EOFError, zipfile.BadZipFile) as exc:
            raise self.error(f"array {member.info.filename!r} could not be read: {exc}") from None
        if len(data) != nbytes:
            raise self.error(f"array {member.info.filename!r} is shorter than its header says")
        order = "F" if member.fortran_order else "C"
        return np.frombuffer(data, dtype=member.dtype).reshape(member.shape, order=order)

    def names_under(self, prefix: str) -> list[str]:
        """Member keys starting with ``prefix`` (format 1's optimizer slots, which its config
        does not list); looks at the zip directory's names only."""
        return sorted(
            name[: -len(".npy")]
            for name in self.zip.namelist()
            if name.startswith(prefix) and name.endswith(".npy")
        )


def _spec(archive: _Archive, entry, what: str) -> tuple[tuple, np.dtype]:
    """(shape, dtype) of one array entry of the config, checked."""
    if not isinstance(entry, dict):
        raise archive.error(f"the config entry of {what} is not an object")
    shape, dtype = entry.get("shape"), entry.get("dtype")
    if not isinstance(shape, list) or not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape
    ):
        raise archive.error(f"the config gives {what} the shape {shape!r}")
    try:
        dtype = np.dtype(dtype) if isinstance(dtype, str) else None
    except TypeError:
        dtype = None
    if dtype is None or dtype.hasobject or dtype.kind not in "biuf" or dtype.names is not None:
        raise archive.error(f"the config gives {what} the dtype {entry.get('dtype')!r}")
    return tuple(shape), dtype


def _file_weights(archive: _Archive) -> list[tuple[str, _Member]]:
    """(name, checked member) of every weight the config lists, in the file's order."""
    specs = archive.config.get("weights")
    if not isinstance(specs, list):
        raise archive.error("its config has no list of weights")
    weights, seen = [], set()
    for i, entry in enumerate(specs):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name:
            raise archive.error(f"weight {i} of its config has no name")
        if name in seen and archive.version >= 2:  # format 1 matched by position only
            raise archive.error(f"its config lists the weight {name!r} twice")
        seen.add(name)
        shape, dtype = _spec(archive, entry, f"weight {name!r}")
        key = f"weight/{i}" if archive.version == 1 else f"weight/{name}"
        weights.append((name, archive.member(key, shape, dtype, f"weight {name!r}")))
    return weights


def _match_by_name(named, file_weights) -> tuple[list[_Member], list[str]]:
    """The members in the model's weight order, and the problems (missing, unexpected,
    mismatched) when the names and shapes do not all agree."""
    stored = dict(file_weights)
    _, _, problems = compare_by_name({name: p for name, p, _ in named}, stored)
    return [stored.get(name) for name, _, _ in named], problems


def compare_by_name(weights: dict, stored: dict, strict: bool = True, same_dtype=None):
    """``(missing, unexpected, problems)`` between a model's ``weights`` (name → tensor) and
    the ``stored`` entries of a file (name → anything with ``shape`` and ``dtype``): the names
    each side lacks (problems only when ``strict``), then every shape or dtype mismatch, in
    the words every weight loader uses. ``same_dtype(entry, weight)`` decides the dtype match
    (default: equal ``dtype``)."""
    missing = [name for name in weights if name not in stored]
    unexpected = [name for name in stored if name not in weights]
    problems = []
    if strict and missing:
        problems.append("missing from the file: " + ", ".join(missing))
    if strict and unexpected:
        problems.append("unexpected in the file: " + ", ".join(unexpected))
    for name, p in weights.items():
        entry = stored.get(name)
        if entry is None:
            continue
        if tuple(entry.shape) != tuple(p.shape):
            problems.append(
                f"size mismatch for {name}: the file has shape {tuple(entry.shape)}, the "
                f"model's weight has shape {p.shape}"
            )
        elif not (entry.dtype == p.dtype if same_dtype is None else same_dtype(entry, p)):
            problems.append(
                f"dtype mismatch for {name}: the file has {entry.dtype}, the model's weight "
                f"has {p.dtype}"
            )
    return missing, unexpected, problems


def _match_by_position(named, file_weights) -> tuple[list[_Member], list[str]]:
    """Format 1: the i-th stored array is the i-th weight; shapes and dtypes must agree."""
    problems = []
    if len(file_weights) != len(named):
        problems.append(f"the file holds {len(file_weights)} weights, the model has {len(named)}")
        if len(named) > len(file_weights):
            extra = ", ".join(name for name, _, _ in named[len(file_weights) :])
            problems.append("missing from the file: " + extra)
        else:
            extra = ", ".join(name for name, _ in file_weights[len(named) :])
            problems.append("unexpected in the file: " + extra)
    for (name, p, _), (stored_name, member) in zip(named, file_weights):
        if member.shape != p.shape:
            problems.append(
                f"size mismatch for {name}: the file's {stored_name} has shape {member.shape}, "
                f"the model's has shape {p.shape}"
            )
        elif member.dtype != p.dtype:
            problems.append(
                f"dtype mismatch for {name}: the file's {stored_name} is {member.dtype}, the "
                f"model's is {p.dtype}"
            )
    return [member for _, member in file_weights], problems


def load_weights(model, path) -> None:
    """Load the weights stored in ``path`` (by ``save`` or ``save_weights``) into ``model``,
    matching them by name (format 1 files: by position).

    Every name, shape and dtype is checked before anything is assigned: on any problem a
    ``ValueError`` lists the weights missing from the file, those unexpected in it and every
    size or dtype mismatch (a :class:`CheckpointError` for an unreadable file), and the model is
    left unchanged. The optimizer state in the file is not loaded (``load_model`` does that).
    A path ending in ``.safetensors`` is read as a safetensors file, strictly
    (``ember.interchange.load_safetensors``), and one ending in ``.weights.h5`` as a Keras 3
    weights file (``ember.interchange.load_keras_weights``), as Keras' ``load_weights`` reads it.
    """
    path = _resolve(path)
    if path.suffix.lower() == ".safetensors":
        from ember.interchange import load_safetensors

        load_safetensors(model, path)
        return
    if path.name.lower().endswith(".weights.h5"):
        from ember.interchange import load_keras_weights

        load_keras_weights(model, path)
        return
    archive = _Archive(path)
    file_weights = _file_weights(archive)
    named = _named_weights(model)
    match = _match_by_position if archive.version == 1 else _match_by_name
    members, problems = match(named, file_weights)
    if problems:
        if not named:
            problems.append(
                "the model has no weights yet: build it first (give it an Input shape or call "
                "it on a batch)"
            )
        raise ValueError(
            f"cannot load '{path}' into {model.name}: nothing was loaded: " + "; ".join(problems)
        )
    model.set_weights([archive.read(member) for member in members])


# ------------------------------------------------------------------------------ load_model
@contextmanager
def _rng_untouched():
    """Put Ember's random generator back as it was (the same object, the same state)."""
    generator, state = default_rng(), get_rng_state()
    try:
        yield
    finally:
        if default_rng() is generator:
            generator.bit_generator.state = state
        else:
            set_rng_state(state)


def _check_rng_state(archive: _Archive, state) -> None:
    probe = np.random.default_rng(0)
    try:
        probe.bit_generator.state = state
    except (TypeError, ValueError, KeyError) as exc:
        raise archive.error(f"its saved random state is not valid: {exc}") from None
    if state.get("bit_generator") != default_rng().bit_generator.state["bit_generator"]:
        raise archive.error(f"its saved random state is for {state.get('bit_generator')!r}")


def _build_model(archive: _Archive, spec, custom_objects: dict | None = None):
    """The model rebuilt from the config (without touching the random generator)."""
    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
        raise archive.error("its model architecture is malformed")
    class_name = spec.get("class_name")
    if class_name == "Functional":  # format 1's name of a functional Model
        class_name = "Model"
    cls = LAYER_CLASSES.get(class_name)
    base = LAYER_CLASSES.get("Model")
    if cls is None or base is None or not issubclass(cls, base):
        raise CheckpointError(
            f"checkpoint '{archive.path}' holds a model of class {spec.get('class_name')!r}, "
            "which is not a model class defined here; import the module that defines this "
            "custom model before loading"
        )
    try:
        with _rng_untouched():
            model = cls.from_config(spec["config"], custom_objects=custom_objects)
    except Exception as exc:
        raise CheckpointError(
            f"checkpoint '{archive.path}': the model could not be rebuilt from its config: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    auto_named = archive.config.get("auto_named", [])
    layers = model._all_layers()
    for entry in auto_named if isinstance(auto_named, list) else []:
        if (
            isinstance(entry, list)
            and len(entry) == 2
            and isinstance(entry[0], int)
            and 0 <= entry[0] < len(layers)
            and type(layers[entry[0]]).__name__ == entry[1]
        ):
            layers[entry[0]]._auto_named = True
    return model


class _CompileState(NamedTuple):
    optimizer: object
    loss: object
    loss_weights: object
    metrics: object
    weighted_metrics: object
    iterations: int
    params: list  # [(weight, {scalar slots}, {array slot: member})]


def _check_compile(archive: _Archive, model, named, compile_config) -> _CompileState:
    """Everything ``compile`` and the optimizer state need, checked against the model."""
    if not isinstance(compile_config, dict):
        raise archive.error("its compile settings are malformed")
    try:
        optimizer = optimizers_module.deserialize(compile_config["optimizer"])
    except Exception as exc:
        raise archive.error(f"its optimizer cannot be rebuilt: {exc}") from None
    by_name = {name: p for name, p, _ in named}
    problems = []
    if archive.version == 1:
        loss_spec = compile_config.get("loss")
        loss = None if loss_spec is None else _loss(archive, loss_spec)
        loss_weights, metrics = None, list(compile_config.get("metrics") or [])
        weighted_metrics = None
    else:
        saved_names = compile_config.get("output_names")
        if saved_names is not None and saved_names != model.output_names:
            raise archive.error(
                f"its compile settings are for the outputs {saved_names}, the rebuilt model has "
                f"{model.output_names}"
            )
        loss, loss_weights, metrics, weighted_metrics = _compile_arguments(
            archive, compile_config, saved_names
        )
    state = compile_config.get("optimizer_state") or {"iterations": 0, "params": []}
    if not isinstance(state, dict) or not isinstance(state.get("params") or [], list):
        raise archive.error("its optimizer state is malformed")
    iterations = state.get("iterations", 0)
    if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 0:
        raise archive.error(f"its optimizer step count is {iterations!r}")
    params, seen = [], set()
    for i, entry in enumerate(state.get("params") or []):
        if archive.version == 1:
            weight, name, scalars, slots = _v1_optimizer_entry(archive, named, state, i)
        else:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise archive.error(f"entry {i} of its optimizer state has no weight name")
            name = entry["name"]
            weight = by_name.get(name)
            if weight is None:
                problems.append(f"the optimizer state is for weight {name}, which the model lacks")
                continue
            scalars, slot_specs = entry.get("scalars") or {}, entry.get("slots") or {}
            if not isinstance(slot_specs, dict):
                raise archive.error(f"the optimizer state of {name} is malformed")
            slots = {}
            for slot, spec in slot_specs.items():
                shape, dtype = _spec(archive, spec, f"optimizer slot {name}/{slot}")
                slots[slot] = archive.member(
                    f"optimizer/{name}/{slot}", shape, dtype, f"optimizer slot {slot} of {name}"
                )
        if id(weight) in seen:
            raise archive.error(f"its optimizer state lists weight {name} twice")
        seen.add(id(weight))
        if not isinstance(scalars, dict):
            raise archive.error(f"the optimizer state of {name} is malformed")
        for slot, member in slots.items():
            if member.shape != weight.shape:
                problems.append(
                    f"optimizer slot {slot} of {name} has shape {member.shape}, the weight has "
                    f"shape {weight.shape}"
                )
        params.append((weight, scalars, slots))
    if problems:
        raise CheckpointError(
            f"checkpoint '{archive.path}' does not fit the model rebuilt from it: "
            + "; ".join(problems)
        )
    return _CompileState(
        optimizer, loss, loss_weights, metrics, weighted_metrics, iterations, params
    )


def _loss(archive: _Archive, spec):
    try:
        return losses_module.deserialize(spec)
    except Exception as exc:
        raise archive.error(f"its loss {spec!r} cannot be rebuilt: {exc}") from None


def _compile_arguments(archive: _Archive, config: dict, output_names):
    """(loss, loss_weights, metrics, weighted_metrics) for ``compile``: one loss and lists of
    metrics for a one-output model, dicts keyed by output name otherwise."""
    losses, weights = config.get("loss"), config.get("loss_weights")
    metrics, weighted = config.get("metrics"), config.get("weighted_metrics")
    for value, what in (
        (losses, "losses"),
        (weights, "loss weights"),
        (metrics, "metrics"),
        (weighted, "weighted metrics"),
    ):
        if value is not None and not isinstance(value, dict):
            raise archive.error(f"its compiled {what} are malformed")
    losses = None if losses is None else {k: _loss(archive, v) for k, v in losses.items()}
    metrics, weighted = metrics or {}, weighted or {}
    for what, table in (("metrics", metrics), ("weighted metrics", weighted)):
        for name, names in table.items():
            if not isinstance(names, list) or not all(isinstance(m, str) for m in names):
                raise archive.error(f"its {what} of output {name!r} are not a list of names")
    if output_names is not None and len(output_names) == 1:
        only = output_names[0]
        loss = None if not losses else losses.get(only)
        weight = (weights or {}).get(only, 1.0)
        loss_weights = None if weight == 1.0 else {only: weight}
        return loss, loss_weights, list(metrics.get(only, [])), list(weighted.get(only, []))
    return (
        losses,
        weights,
        {k: list(v) for k, v in metrics.items()},
        {k: list(v) for k, v in weighted.items()},
    )


def _v1_optimizer_entry(archive: _Archive, named, state: dict, i: int):
    """Format 1: the i-th optimizer entry is weight ``params[i]`` (an index); its arrays are
    the members ``optimizer/<i>/<slot>``."""
    indices = state.get("params") or []
    index = indices[i]
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(named):
        raise archive.error(f"its optimizer state names weight index {index!r}")
    name, weight, _ = named[index]
    scalar_list = state.get("scalars") or []
    if not isinstance(scalar_list, list):
        raise archive.error("its optimizer state is malformed")
    scalars = scalar_list[i] if i < len(scalar_list) else {}
    slots = {}
    prefix = f"optimizer/{i}/"
    for key in archive.names_under(prefix):
        slot = key[len(prefix) :]
        slots[slot] = archive.member(key, weight.shape, weight.dtype, f"optimizer slot {slot}")
    return weight, name, scalars, slots


def load_model(  # noqa: A002 (Keras' argument name)
    path, custom_objects: dict | None = None, compile: bool = True, restore_rng: bool = False
):
    """Rebuild a model saved by ``model.save(path)``: architecture, weights (bit-exact),
    compile settings and optimizer state; checkpoints of format 1 load too.

    The whole file is validated — every array against the config, the rebuilt model's weights
    by name, the compile settings and the optimizer state — before anything is assigned, so a
    failed load raises (:class:`CheckpointError`, a ``ValueError``) and returns nothing. Building
    the model does not advance Ember's random generator. With ``restore_rng=True`` the generator
    is set to its state at save time, so training resumed from the checkpoint continues the
    saved run's exact trajectory (shuffling and dropout included); by default the current
    generator is left untouched. ``compile=False`` skips the compile settings and optimizer.
    ``custom_objects`` maps names of custom layer classes to the classes (as in Keras; classes
    defined with ``class ...(ember.layers.Layer)`` are found without it).

    Example:
        >>> import tempfile, os
        >>> model = ember.Sequential([ember.Input(shape=(3,)), ember.layers.Dense(2)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     model.save(os.path.join(folder, "m.ember"))
        ...     loaded = ember.models.load_model(os.path.join(folder, "m.ember"))
        >>> [name for name, _ in loaded.named_parameters()]
        ['dense.kernel', 'dense.bias']
        >>> bool(np.array_equal(loaded.get_weights()[0], model.get_weights()[0]))
        True
    """
    path = _resolve(path)
    archive = _Archive(path)
    config = archive.config
    if "model" not in config:
        raise CheckpointError(
            f"'{path}' holds weights only (written by save_weights); build the model in code and "
            "call model.load_weights(path)"
        )
    file_weights = _file_weights(archive)
    rng_state = config.get("rng_state") if restore_rng else None
    if rng_state is not None:
        _check_rng_state(archive, rng_state)
    compile_config = config.get("compile") if compile else None
    with _rng_untouched():  # nothing below may draw from (or reseed) Ember's generator
        model = _build_model(archive, config["model"], custom_objects)
        named = _named_weights(model)
        match = _match_by_position if archive.version == 1 else _match_by_name
        members, problems = match(named, file_weights)
        if problems:
            raise CheckpointError(
                f"checkpoint '{path}' does not fit the model rebuilt from its own config: "
                + "; ".join(problems)
            )
        state = None
        if compile_config:
            state = _check_compile(archive, model, named, compile_config)
        values = [archive.read(member) for member in members]
        slots = (
            []
            if state is None
            else [{k: archive.read(m) for k, m in entry[2].items()} for entry in state.params]
        )
        # everything is checked and read: compile, then assign
        if state is not None:
            try:
                model.compile(
                    optimizer=state.optimizer,
                    loss=state.loss,
                    metrics=state.metrics,
                    loss_weights=state.loss_weights,
                    weighted_metrics=state.weighted_metrics or None,
                )
            except (TypeError, ValueError) as exc:
                raise archive.error(f"its compile settings are rejected: {exc}") from None
            optimizer = model.optimizer
            optimizer.add_params([weight for weight, _, _ in state.params])
            optimizer.load_state_dict(
                {
                    "iterations": state.iterations,
                    "state": [
                        {**scalars, **arrays}
                        for (_, scalars, _), arrays in zip(state.params, slots)
                    ],
                }
            )
        model.set_weights(values)
        if archive.version >= 2:  # a weight's own flag (its layers' flags are in the config)
            flags = {entry["name"]: entry.get("trainable") for entry in config["weights"]}
            for name, p, _ in named:
                if isinstance(flags.get(name), bool):
                    p.trainable = flags[name]
    if rng_state is not None:
        set_rng_state(rng_state)
    return model
