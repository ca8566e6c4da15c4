"""One-file model checkpoints: safe to load, verified, written atomically.

File layout (format version 1)::

    8 bytes   magic b"EMBERMDL"
    2 bytes   format version (little-endian uint16)
    8 bytes   payload length (little-endian uint64)
    32 bytes  SHA-256 of the payload
    payload   a NumPy .npz archive: the JSON config as a uint8 array plus one array per weight
              and per optimizer buffer

Loading reads arrays with ``allow_pickle=False`` and JSON, so a checkpoint can never execute code.
Any truncation or flipped byte is caught by the length and SHA-256 checks before anything is
built, so a failed load never returns (or leaves behind) a half-loaded model.

Saving writes to a temporary file in the target's directory, flushes and fsyncs it, then renames
it over the target (``os.replace`` is atomic on one file system): a crash mid-save leaves the
previous checkpoint intact. Missing parent directories are created.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import tempfile
from pathlib import Path

import numpy as np

from ember import __version__
from ember import losses as losses_module
from ember import optimizers as optimizers_module
from ember.layers.base import LAYER_CLASSES
from ember.layers.core import Input
from ember.tensor import get_rng_state, set_rng_state

MAGIC = b"EMBERMDL"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<8sHQ32s")


class CheckpointError(ValueError):
    """The file is not a readable Ember checkpoint (wrong type, truncated, corrupted, too new)."""


# ------------------------------------------------------------------------------ file container
def _write_atomic(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = _HEADER.pack(MAGIC, FORMAT_VERSION, len(payload), hashlib.sha256(payload).digest())
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(header)
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise


def _read_verified(path: Path) -> dict[str, np.ndarray]:
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
    if version > FORMAT_VERSION:
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
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except Exception as exc:  # the checksum passed, so this is a writer bug or a forged file
        raise CheckpointError(f"checkpoint '{path}' could not be decoded: {exc}") from None


def _resolve(path) -> Path:
    return Path(os.path.expanduser(os.fspath(path)))


def _pack(config: dict, arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    try:
        text = json.dumps(config)
    except TypeError as exc:
        raise TypeError(
            f"cannot save this model: part of its configuration is not serializable ({exc}). "
            "Custom objects (a lambda or custom learning-rate schedule, a custom activation) "
            "cannot be saved by name: use the built-in ones (e.g. from "
            "ember.optimizers.schedules), or save_weights() and rebuild the model in code"
        ) from None
    config_bytes = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    np.savez(buffer, __config__=config_bytes, **arrays)
    return buffer.getvalue()


def _config_of(arrays: dict[str, np.ndarray], path: Path) -> dict:
    try:
        return json.loads(arrays["__config__"].tobytes().decode("utf-8"))
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"checkpoint '{path}' has no readable config: {exc}") from None


# ------------------------------------------------------------------------------ architecture
def _model_config(model) -> dict:
    from ember.models.model import Sequential

    if isinstance(model, Sequential):
        return {"class_name": "Sequential", "config": model.get_config()}
    if model._nodes is not None:
        layers = model.layers
        index = {id(layer): i for i, layer in enumerate(layers)}
        nodes = [
            {"layer": index[id(node.layer)], "input": model._nodes.index(node.inputs[0])}
            for node in model._nodes[1:]
        ]
        return {
            "class_name": "Functional",
            "config": {
                "name": model.name,
                "input_shape": list(model._input.shape[1:]),
                "layers": [
                    {"class_name": type(l).__name__, "config": l.get_config()} for l in layers
                ],
                "nodes": nodes,
            },
        }
    raise ValueError(
        f"{model.name}: a subclassed Model cannot be saved with its architecture; use "
        "model.save_weights(path) and rebuild the model in code before load_weights"
    )


def _layer_from_config(spec: dict):
    cls = LAYER_CLASSES.get(spec["class_name"])
    if cls is None:
        raise CheckpointError(
            f"the checkpoint uses layer class {spec['class_name']!r}, which is not defined; "
            "import the module that defines this custom layer before loading"
        )
    return cls.from_config(spec["config"])


def _model_from_config(config: dict):
    from ember.models.model import Model, Sequential

    body = config["config"]
    if config["class_name"] == "Sequential":
        model = Sequential(name=body["name"])
        for spec in body["layers"]:
            model.add(_layer_from_config(spec))
        if body.get("input_shape") is not None:
            model.build((None,) + tuple(body["input_shape"]))
        return model
    if config["class_name"] == "Functional":
        layers = [_layer_from_config(spec) for spec in body["layers"]]
        symbols = [Input(tuple(body["input_shape"]))]
        for node in body["nodes"]:
            symbols.append(layers[node["layer"]](symbols[node["input"]]))
        return Model(symbols[0], symbols[-1], name=body["name"])
    raise CheckpointError(f"unknown model class {config['class_name']!r} in checkpoint")


# ------------------------------------------------------------------------------ public API
def _weight_arrays(model) -> dict[str, np.ndarray]:
    return {f"weight/{i}": p.data for i, p in enumerate(model.weights)}


def _weight_names(model) -> list[str]:
    """``"layer/weight"`` for each of ``model.weights`` (same order), for specs and errors."""
    owner: dict[int, str] = {}
    for layer in model._all_layers():
        for p in layer._weights:
            owner.setdefault(id(p), layer.name)
    return [f"{owner.get(id(p), model.name)}/{p.name}" for p in model.weights]


def _weight_specs(model) -> list[dict]:
    return [
        {"name": name, "shape": list(p.shape), "dtype": p.dtype.name}
        for name, p in zip(_weight_names(model), model.weights)
    ]


def save_model(model, path) -> None:
    path = _resolve(path)
    config = {
        "ember_version": __version__,
        "model": _model_config(model),
        "weights": _weight_specs(model),
        # so that a resumed fit shuffles (and drops out) exactly as an uninterrupted one
        "rng_state": get_rng_state(),
    }
    arrays = _weight_arrays(model)
    if model.compiled:
        compile_config = {
            "optimizer": optimizers_module.serialize(model.optimizer),
            "loss": losses_module.serialize(model.loss),
            "metrics": [m for m in model._metric_specs if isinstance(m, str)],
        }
        optimizer = model.optimizer
        if optimizer.params:
            param_ids = {id(p): i for i, p in enumerate(model.weights)}
            state = optimizer.state_dict()
            compile_config["optimizer_state"] = {
                "iterations": state["iterations"],
                "params": [param_ids[id(p)] for p in optimizer.params],
                "scalars": [
                    {k: v for k, v in s.items() if not isinstance(v, np.ndarray)}
                    for s in state["state"]
                ],
            }
            for i, s in enumerate(state["state"]):
                for key, value in s.items():
                    if isinstance(value, np.ndarray):
                        arrays[f"optimizer/{i}/{key}"] = value
        config["compile"] = compile_config
    _write_atomic(path, _pack(config, arrays))


def save_weights(model, path) -> None:
    path = _resolve(path)
    config = {
        "ember_version": __version__,
        "weights": _weight_specs(model),
    }
    _write_atomic(path, _pack(config, _weight_arrays(model)))


def _stored_weights(arrays, config, path) -> list[np.ndarray]:
    specs = config.get("weights", [])
    try:
        return [arrays[f"weight/{i}"] for i in range(len(specs))]
    except KeyError as exc:
        raise CheckpointError(f"checkpoint '{path}' is missing weight array {exc}") from None


def load_weights(model, path) -> None:
    path = _resolve(path)
    arrays = _read_verified(path)
    config = _config_of(arrays, path)
    values = _stored_weights(arrays, config, path)
    params = model.weights
    names = _weight_names(model)
    specs = config["weights"]
    problems = []
    if len(values) != len(params):
        problems.append(f"the file holds {len(values)} weights, the model has {len(params)}")
        if len(params) > len(values):
            problems.append("missing from the file: " + ", ".join(names[len(values) :]))
        else:
            extra = ", ".join(spec["name"] for spec in specs[len(params) :])
            problems.append("unexpected in the file: " + extra)
    for p, v, spec, name in zip(params, values, specs, names):
        if v.shape != p.shape:
            problems.append(
                f"size mismatch for {name}: the file's {spec['name']} has shape {v.shape}, the "
                f"model's has shape {p.shape}"
            )
    if problems:
        raise ValueError(f"cannot load '{path}' into {model.name}: " + "; ".join(problems))
    model.set_weights(values)


def load_model(path, compile: bool = True, restore_rng: bool = True):  # noqa: A002
    """Rebuild a model saved by ``model.save(path)`` with its weights (bit-exact), compile
    settings and optimizer state.

    With ``restore_rng=True`` Ember's random generator is set back to its state at save time, so
    training resumed from the checkpoint continues the saved run's exact trajectory (shuffling
    included). Pass ``False`` to leave the current generator untouched.
    """
    path = _resolve(path)
    arrays = _read_verified(path)
    config = _config_of(arrays, path)
    if "model" not in config:
        raise CheckpointError(
            f"'{path}' holds weights only (written by save_weights); build the model in code and "
            "call model.load_weights(path)"
        )
    model = _model_from_config(config["model"])
    values = _stored_weights(arrays, config, path)
    model.set_weights(values)
    if restore_rng and "rng_state" in config:
        set_rng_state(config["rng_state"])
    compile_config = config.get("compile")
    if compile and compile_config:
        model.compile(
            optimizer=optimizers_module.deserialize(compile_config["optimizer"]),
            loss=losses_module.deserialize(compile_config["loss"]),
            metrics=compile_config["metrics"],
        )
        opt_state = compile_config.get("optimizer_state")
        if opt_state is not None:
            weights = model.weights
            model.optimizer.add_params([weights[i] for i in opt_state["params"]])
            states = []
            for i, scalars in enumerate(opt_state["scalars"]):
                prefix = f"optimizer/{i}/"
                state = dict(scalars)
                state.update(
                    {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
                )
                states.append(state)
            model.optimizer.load_state_dict(
                {
                    "iterations": opt_state["iterations"],
                    "config": compile_config["optimizer"]["config"],
                    "state": states,
                }
            )
    return model
