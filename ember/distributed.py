"""Data-parallel training over MPI: the same ``fit`` on several processes and machines.

Start N copies of a script with MPI's launcher; each process (a *rank*) trains on its shard of
every global batch, and the gradients are averaged across ranks before each step, so an N-process
run follows the 1-process trajectory (same seed, same global batch size)::

    mpiexec -n 4 python train.py

    # train.py
    import ember
    from ember import distributed

    distributed.init(seed=0)            # every rank: the same seed, a world of 4 ranks
    model = ember.models.zoo.mlp((64,), 10)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=128, epochs=10, distribute=True)
    if distributed.is_primary():        # rank 0
        model.save("model.ember")

MPI comes from the ``dist`` extra (``pip install 'ember[dist]'``: mpi4py and the MPICH wheel,
which brings ``mpiexec``; no system MPI needed). A script started *without* a launcher runs as a
world of one process on the ``"local"`` backend, with no MPI at all, so the same script runs
everywhere and ``fit(..., distribute=True)`` is then exactly ``fit(...)``.

What ``fit(..., distribute=True)`` does on N > 1 ranks:

* every rank checks that all ranks built the same model (:func:`check_model`) and optimizer
  state, then starts from rank 0's weights, optimizer state and random generator;
* each global batch of ``batch_size`` samples (shuffled in the same order on every rank, from
  the shared stream) is cut into N contiguous shards of near-equal size and rank r trains on
  shard r; the gradients are averaged with **one** ``Allreduce`` per step over a flat bucket
  holding every gradient, each rank's gradient weighted by its shard's number of samples, so the
  average equals the gradient of the whole batch even when the last batch does not split evenly
  (a rank whose shard is empty contributes with weight 0 and still takes the step);
* the loss and the metrics are reduced across ranks (their running states are summed, so
  ``accuracy`` is the accuracy over the whole global batches, not a mean of per-rank means) and
  every rank sees the same logs, so callbacks such as ``EarlyStopping`` decide alike; a stop
  requested on any rank stops all of them after the same batch;
* validation data is sharded the same way and its metrics reduced;
* only rank 0 prints (other ranks' stdout is silenced during ``fit``) and only rank 0 runs the
  callbacks that write files — ``ModelCheckpoint`` (atomic writes, via ``model.save``),
  ``CSVLogger``, ``TensorBoard`` and any callback with ``primary_only = True``;
* batch normalization normalizes with each rank's own shard statistics (per-rank, as Horovod
  and PyTorch's ``DistributedDataParallel`` without ``SyncBatchNorm`` do); the moving averages,
  and any other non-trainable weight changed in training, are averaged across ranks at the end
  of each epoch (before validation), so every rank holds the same model;
* randomness inside the model (dropout, augmentation layers) draws from a stream per rank (rank
  r's is rank 0's jumped r times), so such models follow the 1-process run in distribution,
  not bit for bit; data shuffling uses a stream shared by all ranks, which continues rank 0's,
  and after ``fit`` every rank's generator is left at that shared stream's state.

A custom ``train_step`` that calls the default one (``super().train_step(data)``) is averaged
as above. One that applies its own updates (a GAN's two optimizers) must wrap each optimizer in
:class:`DistributedOptimizer`; ``fit`` raises if a step changed the weights without averaging.

Failures never hang: every collective operation is non-blocking and polled, and one that does
not complete within ``timeout`` seconds (:func:`init`, default 60, or ``EMBER_DIST_TIMEOUT``)
raises :class:`DistributedError` naming what was waited for. An uncaught exception on any rank
prints its traceback and aborts every rank (``MPI_Abort``); a rank killed by a signal or exiting
with an error code makes the launcher stop the others.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import hashlib
import json
import math
import os
import sys
import time
import warnings
import zlib
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

from ember import metrics as metrics_module
from ember.callbacks import Callback
from ember.tensor import Tensor, get_rng_state, manual_seed, no_grad, set_rng_state

__all__ = [
    "DistributedError",
    "DistributedOptimizer",
    "WorldInfo",
    "all_reduce",
    "barrier",
    "broadcast_weights",
    "check_model",
    "init",
    "is_initialized",
    "is_primary",
    "rank",
    "size",
]

DEFAULT_TIMEOUT = 60.0
# Environment variables that MPI launchers (MPICH's Hydra, Open MPI, Slurm's srun with PMI or
# PMIx) set in the processes they start: their presence selects the MPI backend.
_LAUNCHER_VARIABLES = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE")
_OPS = ("mean", "sum", "max", "min")


class DistributedError(RuntimeError):
    """A collective operation did not complete: another rank died, raised or stopped taking
    part. The run cannot continue; every rank is aborted when the process exits.

    Example:
        >>> from ember import distributed
        >>> issubclass(distributed.DistributedError, RuntimeError)
        True
    """


class WorldInfo(NamedTuple):
    """What :func:`init` set up: this process's ``rank``, the number of ranks (``size``), the
    ``backend`` (``"mpi"`` or ``"local"``) and the ``timeout`` of collective operations.

    Example:
        >>> from ember import distributed
        >>> info = distributed.init()
        >>> info.rank, info.size, info.backend
        (0, 1, 'local')
    """

    rank: int
    size: int
    backend: str
    timeout: float


# ============================================================================ the worlds
class _LocalWorld:
    """A world of one process: every collective operation is the identity."""

    backend = "local"
    rank = 0
    size = 1

    def __init__(self, timeout: float):
        self.timeout = timeout

    def allreduce(self, buffer: np.ndarray, op: str, what: str) -> None:
        pass

    def broadcast(self, buffer: np.ndarray, root: int, what: str) -> None:
        pass

    def allgather(self, buffer: np.ndarray, what: str) -> np.ndarray:
        return buffer[None].copy()

    def allgather_bytes(self, data: bytes, what: str) -> list[bytes]:
        return [data]

    def broadcast_bytes(self, data: bytes, root: int, what: str) -> bytes:
        return data

    def barrier(self, what: str) -> None:
        pass


class _MPIWorld:
    """``MPI.COMM_WORLD`` (a duplicate, so a user's own MPI traffic cannot interleave with
    Ember's) with every collective non-blocking and polled against the timeout."""

    backend = "mpi"

    def __init__(self, timeout: float):
        try:
            from mpi4py import MPI
        except ImportError as exc:
            raise ImportError(
                "ember.distributed.init: the MPI backend needs mpi4py, which is not installed; "
                "install Ember's dist extra: pip install 'ember[dist]' (mpi4py and the MPICH "
                "wheel, which brings mpiexec)"
            ) from exc
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD.Dup()
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.timeout = timeout
        self.broken = False
        self.where = ""  # "epoch 2, batch 7": set by fit, quoted when a collective times out
        self._ops = {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}

    def _complete(self, request, what: str) -> None:
        """Wait for ``request``, testing it (each test also advances MPI's transfers) between
        yields of the core for the first 10 ms — as fast as a blocking call, measured — and
        between sleeps growing to 1 ms after that, so that a long wait (a rank writing a
        checkpoint) leaves the cores to the ranks still computing."""
        if request.Test():
            return
        start = time.monotonic()
        while not request.Test():
            waited = time.monotonic() - start
            if waited < 0.01:
                _yield_core()
                continue
            if waited > self.timeout:
                self._fail(what)
            time.sleep(min(1e-3, waited / 100))

    def _fail(self, what: str):
        self.broken = True
        where = f" ({self.where})" if self.where else ""
        raise DistributedError(
            f"ember.distributed: rank {self.rank} of {self.size} waited {self.timeout:g} s for "
            f"{what}{where} and the other ranks did not take part: one of them died, raised an "
            "error or stopped calling the collective operations (see its own output). This run "
            "cannot continue and every rank is aborted. If a rank legitimately works alone for "
            "longer, raise the limit: ember.distributed.init(timeout=...) or EMBER_DIST_TIMEOUT"
        )

    def allreduce(self, buffer: np.ndarray, op: str, what: str) -> None:
        request = self.comm.Iallreduce(self.MPI.IN_PLACE, buffer, op=self._ops[op])
        self._complete(request, what)

    def broadcast(self, buffer: np.ndarray, root: int, what: str) -> None:
        self._complete(self.comm.Ibcast(buffer, root=root), what)

    def allgather(self, buffer: np.ndarray, what: str) -> np.ndarray:
        out = np.empty((self.size,) + buffer.shape, dtype=buffer.dtype)
        self._complete(self.comm.Iallgather(buffer, out), what)
        return out

    def allgather_bytes(self, data: bytes, what: str) -> list[bytes]:
        lengths = self.allgather(np.array([len(data)], dtype=np.int64), what)[:, 0]
        out = np.empty(int(lengths.sum()), dtype=np.uint8)
        offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        send = np.frombuffer(data, dtype=np.uint8)
        spec = [out, (lengths.tolist(), offsets.tolist()), self.MPI.BYTE]
        self._complete(self.comm.Iallgatherv(send, spec), what)
        return [out[o : o + n].tobytes() for o, n in zip(offsets, lengths)]

    def broadcast_bytes(self, data: bytes, root: int, what: str) -> bytes:
        length = np.array([len(data) if self.rank == root else 0], dtype=np.int64)
        self.broadcast(length, root, what)
        buffer = np.frombuffer(data, dtype=np.uint8).copy() if self.rank == root else (
            np.empty(int(length[0]), dtype=np.uint8)
        )
        self.broadcast(buffer, root, what)
        return buffer.tobytes()

    def barrier(self, what: str) -> None:
        self._complete(self.comm.Ibarrier(), what)

    def abort(self, code: int = 1) -> None:
        """End every rank. The launcher relays each rank's output through a pipe, and
        MPI_Abort kills at once: a short pause first lets this rank's last words (the
        traceback, the reason) reach the terminal instead of being cut off."""
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        time.sleep(0.5)
        self.MPI.COMM_WORLD.Abort(code)


_world: _LocalWorld | _MPIWorld | None = None
_yield_core = getattr(os, "sched_yield", lambda: time.sleep(0))


def _launched_by_mpi() -> bool:
    return any(name in os.environ for name in _LAUNCHER_VARIABLES)


def _check_timeout(timeout, where: str) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float, np.integer, np.floating)):
        raise TypeError(
            f"ember.distributed.init: {where} must be a number of seconds > 0, got "
            f"{type(timeout).__name__} {timeout!r}"
        )
    if not (math.isfinite(timeout) and timeout > 0):
        raise ValueError(
            f"ember.distributed.init: {where} must be a finite number of seconds > 0, got "
            f"{timeout!r}"
        )
    return float(timeout)


def _default_timeout() -> float:
    text = os.environ.get("EMBER_DIST_TIMEOUT")
    if text is None:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        raise ValueError(
            f"ember.distributed.init: EMBER_DIST_TIMEOUT must be a number of seconds, got "
            f"{text!r}"
        ) from None
    return _check_timeout(value, "EMBER_DIST_TIMEOUT")


def init(seed: int | None = None, *, backend: str = "auto", timeout: float | None = None
         ) -> WorldInfo:
    """Join the world of ranks started by the launcher (idempotent: later calls return it).

    Every rank calls it. ``backend="auto"`` uses MPI when the process was started by an MPI
    launcher (``mpiexec``, ``srun``), else a world of one process without MPI (``"local"``);
    ``"mpi"`` forces MPI (a single process becomes a world of one). ``seed`` seeds Ember's
    generator on every rank (:func:`ember.manual_seed`); without it every rank takes rank 0's
    generator state, so models built next are the same on all ranks. ``timeout`` bounds every
    collective operation (seconds; default ``EMBER_DIST_TIMEOUT`` or 60); a later call may
    change it.

    Under MPI, an uncaught exception on any rank prints its traceback and aborts all ranks.

    Example:
        >>> from ember import distributed
        >>> distributed.init(seed=0)        # run without mpiexec: a world of one process
        WorldInfo(rank=0, size=1, backend='local', timeout=...)
        >>> distributed.rank(), distributed.size(), distributed.is_primary()
        (0, 1, True)
    """
    global _world
    if backend not in ("auto", "mpi", "local"):
        raise ValueError(
            f"ember.distributed.init: backend must be 'auto', 'mpi' or 'local', got {backend!r}"
        )
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise TypeError(
            f"ember.distributed.init: seed must be a non-negative integer or None, got "
            f"{type(seed).__name__} {seed!r}"
        )
    if seed is not None and seed < 0:
        raise ValueError(
            f"ember.distributed.init: seed must be a non-negative integer or None, got {seed!r}"
        )
    limit = _default_timeout() if timeout is None else _check_timeout(timeout, "timeout")
    chosen = backend if backend != "auto" else ("mpi" if _launched_by_mpi() else "local")
    if _world is not None:
        if backend != "auto" and chosen != _world.backend:
            raise ValueError(
                f"ember.distributed.init: already initialized with backend "
                f"{_world.backend!r}; cannot switch to {chosen!r} in the same process"
            )
        if timeout is not None:
            _world.timeout = limit
    else:
        _world = _MPIWorld(limit) if chosen == "mpi" else _LocalWorld(limit)
        if _world.backend == "mpi":
            _install_failure_handlers(_world)
        if seed is None:
            _share_rng_state(_world)
    if seed is not None:
        manual_seed(int(seed))
    return WorldInfo(_world.rank, _world.size, _world.backend, _world.timeout)


def _install_failure_handlers(world: _MPIWorld) -> None:
    """Abort every rank when this one ends with an uncaught exception or a broken collective:
    the others would otherwise wait in their next collective (and MPI_Finalize can block)."""
    previous = sys.excepthook

    def abort_on_uncaught(kind, value, traceback):
        previous(kind, value, traceback)
        if world.size > 1:
            sys.stderr.write(
                f"ember.distributed: rank {world.rank} of {world.size} stopped with an uncaught "
                f"{kind.__name__}; aborting all {world.size} ranks\n"
            )
            world.abort(1)

    def abort_if_broken():
        # Registered after mpi4py's own exit handler, so it runs first (atexit is LIFO):
        # MPI_Finalize with a collective left pending could hang.
        if world.broken and world.size > 1:
            world.abort(1)

    sys.excepthook = abort_on_uncaught
    atexit.register(abort_if_broken)


def _share_rng_state(world) -> None:
    """Every rank takes rank 0's generator state (JSON: the PCG64 state is two big integers)."""
    if world.size == 1:
        return
    data = json.dumps(get_rng_state()).encode() if world.rank == 0 else b""
    state = json.loads(world.broadcast_bytes(data, 0, "rank 0's random generator state"))
    set_rng_state(state)


def _require_world(fn: str):
    if _world is None:
        raise RuntimeError(
            f"ember.distributed.{fn}: call ember.distributed.init() first (every rank calls it, "
            "at the start of the script)"
        )
    return _world


def is_initialized() -> bool:
    """Whether :func:`init` has been called in this process.

    Example:
        >>> from ember import distributed
        >>> _ = distributed.init(); distributed.is_initialized()
        True
    """
    return _world is not None


def rank() -> int:
    """This process's rank, from 0 to ``size() - 1`` (needs :func:`init`).

    Example:
        >>> from ember import distributed
        >>> _ = distributed.init(); distributed.rank()
        0
    """
    return _require_world("rank").rank


def size() -> int:
    """The number of ranks in the world (needs :func:`init`).

    Example:
        >>> from ember import distributed
        >>> _ = distributed.init(); distributed.size()
        1
    """
    return _require_world("size").size


def is_primary() -> bool:
    """True on rank 0, the rank that prints, logs and writes checkpoints (needs :func:`init`).

    Example:
        >>> from ember import distributed
        >>> _ = distributed.init(); distributed.is_primary()
        True
    """
    return _require_world("is_primary").rank == 0


def barrier() -> None:
    """Wait until every rank has called it (e.g. before reading a file rank 0 wrote).

    Example:
        >>> from ember import distributed
        >>> _ = distributed.init(); distributed.barrier()
    """
    _require_world("barrier").barrier("a barrier (ember.distributed.barrier)")


# ============================================================================ all_reduce
def all_reduce(value, op: str = "mean"):
    """``value`` combined over all ranks: ``"mean"`` (default), ``"sum"``, ``"max"`` or ``"min"``.

    ``value`` is an ember Tensor, a NumPy array or a Python number, with the same shape and
    dtype on every rank; the result has the same kind (a new Tensor without a graph, a new
    array, a number) and, for ``"mean"`` of integers, a float dtype. Every rank calls it.

    Example:
        >>> from ember import distributed
        >>> _ = distributed.init()
        >>> distributed.all_reduce(ember.tensor([1.0, 3.0]))      # one rank: the value itself
        tensor([1., 3.]...)
        >>> distributed.all_reduce(np.array([2, 5]), op="max"), distributed.all_reduce(4.0)
        (array([2, 5]), 4.0)
    """
    world = _require_world("all_reduce")
    if op not in _OPS:
        raise ValueError(f"ember.distributed.all_reduce: op must be one of {_OPS}, got {op!r}")
    if isinstance(value, Tensor):
        array = value.data
    elif isinstance(value, np.ndarray):
        array = value
    elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        array = np.asarray(value)
    else:
        raise TypeError(
            "ember.distributed.all_reduce: value must be an ember Tensor, a NumPy array or a "
            f"number, got {type(value).__name__}"
        )
    if array.dtype.kind not in "iuf":
        raise TypeError(
            f"ember.distributed.all_reduce: value must hold numbers (int or float), got dtype "
            f"{array.dtype}"
        )
    # float16 has no MPI reduction: reduce in float32 and cast back.
    work_dtype = np.float32 if array.dtype == np.float16 else array.dtype
    buffer = np.array(array, dtype=work_dtype, copy=True).reshape(-1)
    world.allreduce(buffer, "sum" if op == "mean" else op, f"all_reduce(op={op!r})")
    if op == "mean":
        divided = buffer / world.size
        buffer = divided.astype(array.dtype) if array.dtype.kind == "f" else divided
    elif work_dtype != array.dtype:
        buffer = buffer.astype(array.dtype)
    result = buffer.reshape(array.shape)
    if isinstance(value, Tensor):
        return Tensor(result)
    if isinstance(value, np.ndarray):
        return result
    return result.item()


# ============================================================================ model checks
def _check_model_argument(model, fn: str):
    from ember.layers.base import Layer

    if not isinstance(model, Layer):
        raise TypeError(
            f"ember.distributed.{fn}: model must be an ember model or layer, got "
            f"{type(model).__name__}"
        )
    return model


def _weight_entries(model) -> list[list]:
    """``[dotted name, shape, dtype, trainable]`` per weight, in ``model.weights`` order."""
    return [
        [".".join(path), list(p.shape), str(p.dtype), bool(trainable)]
        for path, p, trainable in model._named_weights()
    ]


def _optimizer_entries(optimizer) -> dict | None:
    """The structure (not the values) of an optimizer's state: the ranks must agree on it."""
    if optimizer is None or not hasattr(optimizer, "state"):
        return None
    slots = [
        sorted(
            [key, list(np.shape(v)), str(np.asarray(v).dtype)] for key, v in state.items()
        )
        for state in optimizer.state
    ]
    return {"class": type(optimizer).__name__, "iterations": int(optimizer.iterations),
            "params": len(optimizer.params), "slots": slots}


def _describe(entry) -> str:
    name, shape, dtype, trainable = entry
    return f"{name} {tuple(shape)} {dtype}{'' if trainable else ' (not trainable)'}"


def _first_difference(mine: list, theirs: list, other: int) -> str:
    """Where rank ``other``'s weights (``theirs``) first differ from rank 0's (``mine``)."""
    for i in range(max(len(mine), len(theirs))):
        a = mine[i] if i < len(mine) else None
        b = theirs[i] if i < len(theirs) else None
        if a == b:
            continue
        entry = a if a is not None else b
        layer = entry[0].rsplit(".", 1)[0]
        if a is None:
            return f"at layer {layer!r}: rank {other} has an extra weight {_describe(b)}"
        if b is None:
            return f"at layer {layer!r}: rank {other} lacks the weight {_describe(a)}"
        return (
            f"at layer {layer!r}: rank 0 has {_describe(a)}, rank {other} has {_describe(b)}"
        )
    return "in their optimizer state"


def _check_consistency(world, model, owner: str, optimizer=None) -> None:
    """Raise the same ValueError on every rank unless all ranks have the same weights (names,
    shapes, dtypes, trainable flags) and, when given, the same optimizer state structure;
    ``owner`` starts the messages (``"ember.distributed.check_model"``, ``"mlp.fit"``)."""
    if world.size == 1:
        return
    description = {"weights": _weight_entries(model), "optimizer": _optimizer_entries(optimizer)}
    text = json.dumps(description, sort_keys=True).encode()
    digest = np.frombuffer(hashlib.sha256(text).digest(), dtype=np.uint8)
    digests = world.allgather(digest, f"{owner}: the model descriptions of the ranks")
    if (digests == digests[0]).all():
        return
    # Every rank saw the same table of digests, so every rank takes this branch together.
    texts = world.allgather_bytes(text, f"{owner}: the model descriptions of the ranks")
    reference = json.loads(texts[0])
    for other, data in enumerate(texts[1:], start=1):
        theirs = json.loads(data)
        if theirs == reference:
            continue
        if theirs["weights"] == reference["weights"]:
            raise ValueError(
                f"{owner}: the optimizer state of rank {other} differs from rank 0's "
                f"({theirs['optimizer']} vs {reference['optimizer']}); every rank must start "
                "from the same state: load the same checkpoint on every rank"
            )
        where = _first_difference(reference["weights"], theirs["weights"], other)
        raise ValueError(
            f"{owner}: the ranks did not build the same model: {where}. Every rank must build "
            "the same architecture (same layers, sizes and trainable flags)"
        )


def check_model(model) -> None:
    """Verify that every rank built the same model: weight names, shapes, dtypes and trainable
    flags. A difference raises ``ValueError`` on every rank, naming the first differing layer;
    ``fit(..., distribute=True)`` runs this check itself. Every rank calls it.

    Example:
        >>> from ember import distributed
        >>> _ = distributed.init()
        >>> distributed.check_model(ember.models.zoo.mlp((64,), 10))   # one rank: nothing to do
    """
    world = _require_world("check_model")
    model = _check_model_argument(model, "check_model")
    _check_consistency(world, model, "ember.distributed.check_model")


def _by_dtype(arrays: list[np.ndarray]) -> dict:
    """Indices of ``arrays`` grouped by dtype: one flat buffer (one collective) per dtype."""
    groups: dict = {}
    for i, a in enumerate(arrays):
        groups.setdefault(np.dtype(a.dtype), []).append(i)
    return groups


def _broadcast_arrays(world, arrays: list[np.ndarray], root: int, what: str) -> list:
    """Root's values of ``arrays`` (same shapes and dtypes on every rank), as new arrays."""
    out: list = [None] * len(arrays)
    for dtype, indices in _by_dtype(arrays).items():
        sizes = [arrays[i].size for i in indices]
        flat = np.empty(sum(sizes), dtype=dtype)
        if world.rank == root:
            np.concatenate([arrays[i].reshape(-1) for i in indices], out=flat)
        world.broadcast(flat, root, what)
        offset = 0
        for i, n in zip(indices, sizes):
            out[i] = flat[offset : offset + n].reshape(arrays[i].shape).copy()
            offset += n
    return out


def _check_root(root, world, fn: str) -> int:
    if isinstance(root, bool) or not isinstance(root, (int, np.integer)):
        raise TypeError(f"ember.distributed.{fn}: root must be a rank (an int), got {root!r}")
    if not 0 <= root < world.size:
        raise ValueError(
            f"ember.distributed.{fn}: root must be a rank in [0, {world.size}), got {root}"
        )
    return int(root)


def broadcast_weights(model, root: int = 0) -> None:
    """Give every rank the weights of rank ``root`` (trainable and not), after checking that all
    ranks built the same model (:func:`check_model`). Every rank calls it.

    Example:
        >>> from ember import distributed
        >>> _ = distributed.init()
        >>> model = ember.models.zoo.linear((4,), 2)
        >>> before = model.get_weights()
        >>> distributed.broadcast_weights(model)                  # one rank: nothing changes
        >>> all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
        True
    """
    world = _require_world("broadcast_weights")
    model = _check_model_argument(model, "broadcast_weights")
    root = _check_root(root, world, "broadcast_weights")
    _check_consistency(world, model, "ember.distributed.broadcast_weights")
    _broadcast_model_weights(world, model, root)


def _broadcast_model_weights(world, model, root: int) -> None:
    """Root's values of every weight (the structures were checked to be equal)."""
    if world.size == 1:
        return
    weights = model.weights
    values = _broadcast_arrays(world, [p.data for p in weights], root, f"rank {root}'s weights")
    if world.rank != root:
        for p, value in zip(weights, values):
            p.data = value  # a new array: bumps the version, as set_weights does


def _broadcast_optimizer_state(world, optimizer, root: int) -> None:
    """Root's optimizer state (step counts and slot arrays) on every rank; the structures were
    checked to be equal, so only the values travel."""
    if not getattr(optimizer, "iterations", 0) and not any(getattr(optimizer, "state", ())):
        return  # a fresh optimizer everywhere (the structures are equal): nothing to send
    # Step counts and other scalars travel as float64: exact for integers below 2**53.
    counts = [optimizer.iterations] + [
        float(v) for state in optimizer.state for _, v in sorted(state.items())
        if not isinstance(v, np.ndarray)
    ]
    counts = np.array(counts, dtype=np.float64)
    world.broadcast(counts, root, "rank 0's optimizer step counts")
    slots = [(state, key) for state in optimizer.state for key in sorted(state)
             if isinstance(state[key], np.ndarray)]
    values = _broadcast_arrays(world, [s[k] for s, k in slots], root, "rank 0's optimizer state")
    if world.rank == root:
        return
    optimizer.iterations = int(counts[0])
    scalars = iter(counts[1:].tolist())
    for state in optimizer.state:
        for key, value in sorted(state.items()):
            if not isinstance(value, np.ndarray):
                state[key] = type(value)(next(scalars))
    for (state, key), value in zip(slots, values):
        state[key] = value


# ============================================================================ gradients
# Flags a rank sends with its gradients; the sums decide what every rank does with the step.
_SKIP = 1  # this rank's loss is not finite: nobody updates (fit then reports the loss)
_BAD = 2  # this rank's gradient is not finite although its loss is: everybody raises


class _GradientBucket:
    """One flat buffer for a whole step: every gradient times the rank's weight, then one flag
    per variable (1 where this rank has a gradient), the weight, the skip and bad-gradient
    flags and a check of the layout. A single Allreduce(SUM) of it gives, on every rank,
    ``sum_r w_r g_r`` and ``sum_r w_r``: their ratio is the weighted mean gradient.

    The buffer is kept between steps (no allocation per step) and has the variables' dtype
    (at least float32, in which the flags and integer weights below 2**24 are exact).
    """

    def __init__(self):
        self._buffer: np.ndarray | None = None

    def _layout(self, variables: list) -> tuple[np.dtype, int, int]:
        dtype = np.result_type(np.float32, *[p.data.dtype for p in variables])
        total = sum(p.data.size for p in variables)
        shapes = ";".join(f"{p.data.shape}{p.data.dtype}" for p in variables)
        # 1..15: c and c*c summed over up to 74,000 ranks stay exact in float32
        check = zlib.crc32(shapes.encode()) % 15 + 1
        return dtype, total, check

    def reduce(self, world, grads: list | None, variables: list, weight: float, status: int,
               what: str) -> tuple[list | None, int]:
        """``(averaged gradients or None per variable, combined status)``; the averages are
        views into the bucket, valid until the next call."""
        if world.size == 1:  # nothing to average: the gradients as they are, bit for bit
            if status or weight == 0:
                return None, status | _SKIP
            return [None if grads is None else grads[i] for i in range(len(variables))], 0
        dtype, total, check = self._layout(variables)
        k = len(variables)
        size_needed = total + k + 5
        buffer = self._buffer
        if buffer is None or buffer.size != size_needed or buffer.dtype != dtype:
            buffer = self._buffer = np.empty(size_needed, dtype=dtype)
        self._pack(buffer, grads, variables, weight, total)
        tail = buffer[total + k :]
        tail[:] = (weight, status & _SKIP, (status & _BAD) >> 1, check, check * check)
        world.allreduce(buffer, "sum", what)
        weight_sum, skips, bads, checks, squares = (float(v) for v in tail)
        if checks * checks != world.size * squares:
            raise DistributedError(
                f"ember.distributed: the ranks averaged gradients of different variables "
                f"({what}): every rank must pass the same variables, in the same order"
            )
        status = (_SKIP if skips else 0) | (_BAD if bads else 0)
        if status or weight_sum == 0:
            return None, status | _SKIP
        return self._unpack(buffer, variables, total, weight_sum), status

    @staticmethod
    def _pack(buffer, grads, variables, weight: float, total: int) -> None:
        flags = buffer[total : total + len(variables)]
        offset = 0
        for i, p in enumerate(variables):
            n = p.data.size
            part = buffer[offset : offset + n]
            g = None if grads is None or weight == 0 else grads[i]
            if g is None:
                part[:] = 0
                flags[i] = 0
            else:
                np.multiply(np.asarray(g).reshape(-1), weight, out=part, casting="unsafe")
                flags[i] = 1
            offset += n

    @staticmethod
    def _unpack(buffer, variables, total: int, weight_sum: float) -> list:
        flags = buffer[total : total + len(variables)]
        if weight_sum != 1:
            buffer[:total] /= weight_sum
        averaged, offset = [], 0
        for i, p in enumerate(variables):
            n = p.data.size
            part = buffer[offset : offset + n]
            offset += n
            averaged.append(part.reshape(p.data.shape).astype(p.data.dtype, copy=False)
                            if flags[i] else None)
        return averaged


def _first_bad(averaged: list, variables: list) -> str | None:
    """The name of the first weight whose averaged gradient is not finite (one BLAS pass per
    gradient screens it, as the single-process trainer does)."""
    for grad, variable in zip(averaged, variables):
        if grad is None:
            continue
        flat = grad.reshape(-1)
        if not math.isfinite(float(np.dot(flat, flat))) and not np.isfinite(grad).all():
            return f"{variable.name!r} {variable.shape}"
    return None


def _check_weight(weight, owner: str) -> float:
    if isinstance(weight, bool) or not isinstance(weight, (int, float, np.integer, np.floating)):
        raise TypeError(f"{owner}: weight must be a number >= 0, got {weight!r}")
    if not (math.isfinite(weight) and weight >= 0):
        raise ValueError(f"{owner}: weight must be a finite number >= 0, got {weight!r}")
    return float(weight)


class DistributedOptimizer:
    """An optimizer whose every step first averages the gradients over all ranks, with one
    Allreduce of a flat bucket (not one call per weight); for hand-written training loops and
    for custom ``train_step`` methods run by ``fit(..., distribute=True)``.

    It offers the wrapped optimizer's three ways to step — :meth:`apply`,
    :meth:`apply_gradients` and :meth:`step` (PyTorch style: averages each ``.grad`` in place
    first) — and forwards every other attribute (``learning_rate``, ``iterations``…) to it.

    ``weight`` (per call) weighs this rank's gradients: the step uses
    ``sum_r weight_r * g_r / sum_r weight_r``. Pass the number of samples of the rank's shard
    when shards differ in size; by default all ranks weigh the same, except inside
    ``fit(..., distribute=True)``, where the default is the shard's size (what ``fit`` uses).
    Every rank must call it with the same variables in the same order.

    Example:
        >>> from ember import distributed
        >>> _ = distributed.init()
        >>> w = ember.tensor([1.0, 2.0], requires_grad=True)
        >>> opt = distributed.DistributedOptimizer(ember.optimizers.SGD(learning_rate=0.5))
        >>> opt.apply([np.array([1.0, -1.0])], [w])    # one rank: the average is the gradient
        >>> w, opt.iterations
        (tensor([0.5, 2.5]...), 1)
    """

    def __init__(self, optimizer):
        from ember.optimizers import Optimizer

        if isinstance(optimizer, DistributedOptimizer) or not isinstance(optimizer, Optimizer):
            raise TypeError(
                "DistributedOptimizer: optimizer must be an ember optimizer (such as "
                f"ember.optimizers.Adam(1e-3)), got {type(optimizer).__name__}"
            )
        object.__setattr__(self, "optimizer", optimizer)
        object.__setattr__(self, "_bucket", _GradientBucket())

    def __getattr__(self, name: str):
        return getattr(self.optimizer, name)

    def __setattr__(self, name: str, value) -> None:
        setattr(self.optimizer, name, value)  # learning_rate = ..., as on the wrapped one

    def __repr__(self) -> str:
        return f"DistributedOptimizer({self.optimizer!r})"

    def _average(self, grads: list, variables: list, weight, owner: str) -> list | None:
        world = _require_world(owner)
        weight = _fit_weight() if weight is None else _check_weight(weight, owner)
        for i, (g, p) in enumerate(zip(grads, variables)):
            if g is not None and np.shape(g) != p.shape:
                raise ValueError(
                    f"{owner}: gradient {i} has shape {np.shape(g)}, its variable "
                    f"{p.name!r} has shape {p.shape}"
                )
        averaged, status = self._bucket.reduce(
            world, grads, variables, weight, 0, "averaging gradients (DistributedOptimizer)"
        )
        _note_reduction()
        return None if status & _SKIP else averaged

    def apply(self, grads: Sequence, variables: Sequence[Tensor] | None = None, *,
              weight: float | None = None) -> None:
        """Average ``grads`` over the ranks, then the wrapped optimizer's ``apply``."""
        owner = "DistributedOptimizer.apply"
        if isinstance(grads, (Tensor, np.ndarray)):
            raise TypeError(f"{owner}: grads must be a list with one gradient per variable")
        grads = [g.data if isinstance(g, Tensor) else g for g in grads]
        variables = list(self.optimizer.params if variables is None else variables)
        if len(grads) != len(variables) or not all(isinstance(v, Tensor) for v in variables):
            raise ValueError(
                f"{owner}: got {len(grads)} gradients for {len(variables)} variables; pass one "
                "gradient (or None) per variable, and the variables as ember Tensors"
            )
        averaged = self._average(grads, variables, weight, owner)
        if averaged is not None:
            self.optimizer.apply(averaged, variables)

    def apply_gradients(self, grads_and_vars: Iterable[tuple], *,
                        weight: float | None = None) -> None:
        """Average the gradients of ``(gradient, variable)`` pairs, then apply them.

        Example:
            >>> from ember import distributed
            >>> _ = distributed.init()
            >>> w = ember.tensor([1.0], requires_grad=True)
            >>> opt = distributed.DistributedOptimizer(ember.optimizers.SGD(learning_rate=0.1))
            >>> opt.apply_gradients(zip([np.array([2.0])], [w]), weight=32)  # a 32-sample shard
            >>> w
            tensor([0.8]...)
        """
        pairs = list(grads_and_vars)
        if not all(isinstance(pair, (tuple, list)) and len(pair) == 2 for pair in pairs):
            raise TypeError(
                "DistributedOptimizer.apply_gradients: expected (gradient, variable) pairs, as "
                "zip(grads, model.trainable_weights) gives"
            )
        self.apply([g for g, _ in pairs], [v for _, v in pairs], weight=weight)

    def step(self, *, weight: float | None = None) -> None:
        """PyTorch style: average every parameter's ``.grad`` over the ranks (written back into
        ``.grad``), then the wrapped optimizer's ``step``.

        Example:
            >>> from ember import distributed
            >>> _ = distributed.init()
            >>> w = ember.tensor([1.0, 2.0], requires_grad=True)
            >>> opt = distributed.DistributedOptimizer(ember.optimizers.SGD([w], lr=0.25))
            >>> opt.zero_grad(); (w * w).sum().backward(); opt.step()
            >>> w, w.grad
            (tensor([0.5, 1. ]...), array([2., 4.], dtype=float32))
        """
        inner = self.optimizer
        inner._refresh_params()
        params = list(inner.params)
        averaged = self._average([p.grad for p in params], params, weight,
                                 "DistributedOptimizer.step")
        if averaged is None:
            return
        for p, g in zip(params, averaged):
            p.grad = None if g is None else np.array(g, copy=True)  # the bucket is reused
        inner.step()

    def zero_grad(self) -> None:
        """The wrapped optimizer's ``zero_grad``."""
        self.optimizer.zero_grad()


# ============================================================================ metrics
def _summable_states() -> tuple:
    """(metric class, names of its state attributes) for the metrics whose state adds up over
    ranks: running totals and counts, confusion counts, AUC's histograms."""
    return (
        (metrics_module.Mean, ("total", "count")),
        (metrics_module.Sum, ("total",)),
        (metrics_module.AUC, ("true_positives", "false_positives", "positives", "negatives")),
        (metrics_module._BinaryCounts, ("true_positives", "false_positives", "false_negatives")),
    )


def _state_names(metric) -> tuple[str, ...] | None:
    """The summable state of ``metric``: a class attribute ``distributed_state`` (names of
    attributes that add up over ranks) lets a custom metric join; None: not reducible."""
    own = getattr(metric, "distributed_state", None)
    if own is not None:
        return tuple(own)
    for cls, names in _summable_states():
        if isinstance(metric, cls):
            return names
    return None


def _layout_check(labels: list[str]) -> tuple[float, float]:
    c = float(zlib.crc32("|".join(labels).encode()) % 65521 + 1)
    return c, c * c  # float64: exact for these sizes, so sum(c)**2 == N * sum(c*c) iff equal


def _reduce_logs(world, model, logs: dict, weight: float, what: str) -> dict:
    """``logs`` with every metric's value computed from the states summed over all ranks and
    every other number averaged over ranks weighted by ``weight`` (the rank's samples)."""
    from ember.models.trainer import _to_float

    metrics = [m for m in model.metrics if _state_names(m) is not None]
    names = {m.name for m in metrics}
    extras = [k for k, v in logs.items() if k not in names and isinstance(v, float)]
    labels, parts = [], []
    for m in metrics:
        for attr in _state_names(m):
            value = np.asarray(getattr(m, attr), dtype=np.float64).reshape(-1)
            labels.append(f"{m.name}.{attr}:{value.size}")
            parts.append(value)
    labels += extras
    extra_values = [weight * logs[k] if weight else 0.0 for k in extras]
    tail = [*extra_values, weight, *_layout_check(labels)]
    buffer = np.concatenate(parts + [np.asarray(tail, dtype=np.float64)])
    world.allreduce(buffer, "sum", what)
    checks, squares = buffer[-2], buffer[-1]
    if checks * checks != world.size * squares:
        raise DistributedError(
            f"ember.distributed: the ranks report different metrics ({what}); this rank has "
            f"{[m.name for m in metrics] + extras}"
        )
    reduced, offset = {}, 0
    for m in metrics:
        probe = copy.copy(m)  # the rank's own running state stays as it is
        for attr in _state_names(m):
            shape = np.shape(getattr(m, attr))
            n = int(np.prod(shape))
            chunk = buffer[offset : offset + n]
            setattr(probe, attr, chunk.reshape(shape).copy() if shape else float(chunk[0]))
            offset += n
        reduced[m.name] = _to_float(probe.result())
    total_weight = buffer[-3]
    for i, k in enumerate(extras):
        reduced[k] = float(buffer[offset + i] / total_weight) if total_weight else logs[k]
    keys = list(logs) if logs else [m.name for m in model.metrics]
    return {k: reduced.get(k, logs.get(k)) for k in keys}


# ============================================================================ sharding
def _bounds(m: int, r: int, n: int) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of a global batch of ``m`` rows that rank ``r`` of ``n`` takes:
    contiguous, the first ``m % n`` ranks one row more."""
    base, extra = divmod(m, n)
    lo = r * base + min(r, extra)
    return lo, lo + base + (1 if r < extra else 0)


class _ShardedArrays:
    """An :class:`~ember.models.data_adapter.ArrayBatches` cut per rank: the same global
    batches, in the same shuffled order (drawn from the stream all ranks share), each rank
    taking its rows of each."""

    def __init__(self, batches, replicas, training: bool):
        self.batches, self.replicas, self.training = batches, replicas, training
        self.steps = batches.steps
        self.shuffle = batches.shuffle

    def epoch(self):
        from ember.models.data_adapter import take

        b, world = self.batches, self.replicas.world
        n, size = b.num_samples, b.batch_size
        order = self.replicas.data_rng.permutation(n) if b.shuffle else None
        for step in range(b.steps):
            start = step * size
            m = min(start + size, n) - start
            lo, hi = _bounds(m, world.rank, world.size)
            if order is None:
                index = slice(start + lo, start + hi)
            else:
                index = order[start + lo : start + hi]
            if not self.replicas.at_batch(step, hi - lo, m, self.training):
                continue
            yield take(b.x, index), take(b.y, index), take(b.sample_weight, index)


class _ShardedIterable:
    """Batches from an iterable (DataLoader, Dataset, generator) cut per rank: every rank
    iterates the same batches — drawn with the shared stream, so a shuffling loader gives them
    in the same order everywhere — and keeps its rows of each."""

    def __init__(self, batches, replicas, training: bool):
        self.batches, self.replicas, self.training = batches, replicas, training
        self.steps = batches.steps
        self.shuffle = False

    def epoch(self):
        from ember.models.data_adapter import num_samples, take

        world = self.replicas.world
        source = self.batches.epoch()
        step = 0
        while True:
            with self.replicas.data_stream():
                try:
                    x, y, w = next(source)
                except StopIteration:
                    return
            m = num_samples(("x", x), ("y", y), ("sample_weight", w), method="fit")
            lo, hi = _bounds(m, world.rank, world.size)
            if self.replicas.at_batch(step, hi - lo, m, self.training):
                index = slice(lo, hi)
                yield take(x, index), take(y, index), take(w, index)
            step += 1


# ============================================================================ fit
_active = None  # the _Replicas of the distributed fit running in this process, if any

# Callbacks that write files: on rank 0 only (a callback may also say so: primary_only = True).
_WRITERS = {
    "ember.callbacks.ModelCheckpoint",
    "ember.callbacks.CSVLogger",
    "ember.tensorboard.TensorBoard",
}


def _fit_weight() -> float:
    """DistributedOptimizer's default weight: the shard's samples inside a distributed fit."""
    return 1.0 if _active is None else float(_active.shard)


def _note_reduction() -> None:
    if _active is not None:
        _active.reductions += 1


def _primary_only(callback) -> bool:
    flag = getattr(callback, "primary_only", None)
    if flag is not None:
        return bool(flag)
    return any(f"{c.__module__}.{c.__qualname__}" in _WRITERS for c in type(callback).__mro__)


def _trainable_versions(model) -> int:
    return sum(p._version for p, trainable in model._weights_and_flags() if trainable)


class _Replicas:
    """What ``fit(..., distribute=True)`` does differently on a world of several ranks (the
    trainer calls it at a handful of places; see the module docstring)."""

    def __init__(self, world, model, method: str):
        self.world, self.model, self.method = world, model, method
        self.bucket = _GradientBucket()
        self.shard = self.global_batch = 0  # samples of this rank's shard / of the batch
        self.eval_samples = 0  # validation samples this rank evaluated in the current pass
        self.reductions = 0  # gradient reductions during the current step
        self.fused = False  # a step went through the default train_step (apply_gradients)
        self.epoch = 0
        self.data_rng: np.random.Generator | None = None
        self._versions: dict[int, int] = {}
        self._warned = False

    # ------------------------------------------------------------ set-up
    def prepare(self, train, validation, callbacks, verbose: int):
        """Build, check and synchronize the model, seed the streams and shard the data; returns
        ``(train, validation, callbacks, verbose)`` for this rank."""
        world, model = self.world, self.model
        self._build(train)
        _check_consistency(world, model, self.method, model.optimizer)
        _broadcast_model_weights(world, model, 0)
        _broadcast_optimizer_state(world, model.optimizer, 0)
        self._seed_streams()
        self._versions = {id(p): p._version for p in model.weights}
        train = self._shard(train, training=True)
        validation = None if validation is None else self._shard(validation, training=False)
        if callbacks is not None and not isinstance(callbacks, (list, tuple)):
            callbacks = [callbacks]  # a single Callback, as fit accepts
        kept = [c for c in callbacks or [] if world.rank == 0 or not _primary_only(c)]
        return train, validation, [_EpochTracker(self), *kept], verbose if world.rank == 0 else 0

    def _build(self, train) -> None:
        """Create the weights of a model that builds at its first call, before they are
        broadcast: from one row of array data (an iterable could not be peeked at)."""
        from ember.models.data_adapter import ArrayBatches, take

        if self.model.built and self.model.weights:
            return
        if not isinstance(train, ArrayBatches):
            raise ValueError(
                f"{self.method}: distribute=True needs the model's weights before training "
                "starts, to give every rank rank 0's: build it first (model.build(input_shape), "
                "an Input layer, or a call on one batch)"
            )
        with no_grad():
            self.model(take(train.x, slice(0, 1)), training=False)

    def _seed_streams(self) -> None:
        """Rank 0's generator state S for everyone: the data stream (shuffling) starts at S on
        every rank; the model's own draws (dropout) use S jumped ``rank`` times."""
        world = self.world
        data = json.dumps(get_rng_state()).encode() if world.rank == 0 else b""
        state = json.loads(world.broadcast_bytes(data, 0, "rank 0's random generator state"))
        self.data_rng = np.random.default_rng()
        self.data_rng.bit_generator.state = state
        own = np.random.PCG64()
        own.state = state
        if world.rank:
            own = own.jumped(world.rank)
        set_rng_state(own.state)

    def _shard(self, batches, training: bool):
        from ember.models.data_adapter import ArrayBatches

        if isinstance(batches, ArrayBatches):
            if training and batches.batch_size < self.world.size:
                raise ValueError(
                    f"{self.method}: batch_size ({batches.batch_size}) is the global batch "
                    f"size and must be >= the number of ranks ({self.world.size})"
                )
            return _ShardedArrays(batches, self, training)
        return _ShardedIterable(batches, self, training)

    @contextlib.contextmanager
    def data_stream(self):
        """Ember's generator is the shared data stream inside the block (a loader shuffling
        with it shuffles alike on every rank), the rank's own stream outside."""
        own = get_rng_state()
        set_rng_state(self.data_rng.bit_generator.state)
        try:
            yield
        finally:
            self.data_rng.bit_generator.state = get_rng_state()
            set_rng_state(own)

    def finish(self) -> None:
        """After fit (also one ended by an error raised alike on every rank) every rank
        continues from the shared stream: the same state everywhere, and rank 0's own when the
        model draws nothing."""
        if self.data_rng is not None:
            set_rng_state(self.data_rng.bit_generator.state)

    # ------------------------------------------------------------ per batch
    def at_batch(self, step: int, shard: int, total: int, training: bool) -> bool:
        """Record the coming batch; False skips it (an empty validation shard)."""
        if not training:
            self.eval_samples += shard
            return shard > 0
        self.shard, self.global_batch = shard, total
        if self.world.backend == "mpi":
            self.world.where = f"epoch {self.epoch + 1}, batch {step + 1}"
        return True

    def train_batch(self, model, batch) -> dict:
        """One step on this rank's shard; the logs reduced over all ranks."""
        from ember.models.data_adapter import pack_batch
        from ember.models.trainer import _floats

        if self.global_batch < self.world.size and not self.fused:
            # Known alike on every rank (the global batch size is), so all raise together.
            raise ValueError(
                f"{self.method}: a batch of {self.global_batch} sample(s) leaves some of the "
                f"{self.world.size} ranks without any; with a custom train_step every rank "
                "needs >= 1 sample per batch: pick the batch size and the number of samples so "
                "that the last batch has at least as many samples as there are ranks"
            )
        self.reductions = 0
        if self.shard == 0:  # no sample here: take part in the step with weight 0
            variables = self._variables(model)
            if variables:  # as apply_gradients, which has nothing to average without any
                self._step(model, None, variables, 0, 0.0)
            logs = model.get_metrics_result()
        else:
            before = None if self.fused else _trainable_versions(model)
            logs = _floats(model.train_step(pack_batch(*batch)))
            if before is not None and not self.reductions and (
                _trainable_versions(model) != before
            ):
                raise RuntimeError(
                    f"{self.method}: train_step changed the weights without averaging the "
                    "gradients over the ranks, so the ranks' models now differ; in a custom "
                    "train_step wrap each optimizer in ember.distributed.DistributedOptimizer"
                )
        return self.reduce_logs(model, logs, weight=self.shard, training=True)

    @staticmethod
    def _variables(model) -> list:
        return [p for p, trainable in model._weights_and_flags() if trainable]

    def apply_gradients(self, model, loss, value: float) -> None:
        """The default train_step's update: local gradients, one bucketed Allreduce, the
        optimizer step with the average (skipped, or raised, alike on every rank)."""
        from ember.models.trainer import NonFiniteLossError

        self.fused = True
        weights = model._weights_and_flags()
        variables = [p for p, trainable in weights if trainable]
        if not variables:
            return  # the same model everywhere: no rank has anything to average
        grads, status, local = None, 0, None
        if not math.isfinite(value):
            status = _SKIP
        else:
            try:
                grads = model._gradients(loss, variables, value, len(variables) != len(weights))
            except NonFiniteLossError as exc:
                status, local = _BAD, exc
        self._step(model, grads, variables, status, float(self.shard), local)

    def _step(self, model, grads, variables, status, weight, local=None) -> None:
        from ember.models.trainer import NonFiniteLossError

        averaged, status = self.bucket.reduce(
            self.world, grads, variables, weight, status, "averaging the gradients"
        )
        self.reductions += 1
        bad = None if averaged is None else _first_bad(averaged, variables)
        if status & _BAD or bad is not None:
            detail = str(local) if local is not None else (
                f"the averaged gradient of weight {bad} is not finite" if bad else
                "a gradient is not finite on another rank although its loss is finite"
            )
            raise NonFiniteLossError(
                f"{detail} (rank {self.world.rank} of {self.world.size}); the update was "
                "skipped on every rank"
            )
        if averaged is not None:
            model.optimizer.apply(averaged, variables)

    def reduce_logs(self, model, logs: dict, weight: float | None = None,
                    training: bool = False) -> dict:
        """Logs of the whole world: metrics from summed states, other numbers averaged."""
        if not self._warned and self.world.rank == 0:
            local = [m.name for m in model.metrics if _state_names(m) is None]
            if local:
                warnings.warn(
                    f"{self.method}: metric(s) {local} cannot be combined over ranks (their "
                    "state is not a sum); their logs are rank 0's shard only. Give the class a "
                    "distributed_state attribute naming its summable state to reduce them",
                    stacklevel=2,
                )
        self._warned = True
        weight = float(self.eval_samples if weight is None else weight)
        what = "reducing the training logs" if training else "reducing the validation logs"
        return _reduce_logs(self.world, model, logs, weight, what)

    def agree(self, flag: bool) -> bool:
        """True on every rank if it is True on any (a stop requested anywhere)."""
        buffer = np.array([1 if flag else 0], dtype=np.int64)
        self.world.allreduce(buffer, "max", "agreeing on stop_training")
        return bool(buffer[0])

    # ------------------------------------------------------------ per epoch
    def sync_non_trainable(self, model) -> None:
        """Average the non-trainable float weights that changed in training on some rank (batch
        normalization's moving statistics) so every rank holds the same model. In float64:
        the average of equal values is exactly that value."""
        weights = [p for p, trainable in model._weights_and_flags()
                   if not trainable and p.data.dtype.kind == "f"]
        if not weights:
            return
        changed = np.array([p._version != self._versions.get(id(p)) for p in weights],
                           dtype=np.int64)
        self.world.allreduce(changed, "max", "finding the non-trainable weights to average")
        chosen = [p for p, flag in zip(weights, changed) if flag]
        if chosen:
            flat = np.concatenate([p.data.reshape(-1).astype(np.float64) for p in chosen])
            self.world.allreduce(flat, "sum", "averaging the non-trainable weights")
            flat /= self.world.size
            offset = 0
            for p in chosen:
                n = p.data.size
                p.data = flat[offset : offset + n].reshape(p.shape).astype(p.data.dtype)
                offset += n
        self._versions = {id(p): p._version for p in model.weights}


class _EpochTracker(Callback):
    """Tells the replicas the epoch (quoted when a collective times out) and restarts the count
    of validation samples at each validation pass."""

    def __init__(self, replicas: _Replicas):
        super().__init__()
        self.replicas = replicas

    def on_epoch_begin(self, epoch, logs=None):
        self.replicas.epoch = epoch

    def on_test_begin(self, logs=None):
        self.replicas.eval_samples = 0


@contextlib.contextmanager
def replicate(model, method: str):
    """The context of one ``fit(..., distribute=True)``: yields the :class:`_Replicas` on a
    world of several ranks (None on a world of one: ``fit`` then runs as usual), silences
    stdout on ranks other than 0 and restores everything afterwards."""
    global _active
    if _world is None:
        init()
    world = _world
    if world.size == 1:
        yield None
        return
    if _active is not None:
        raise RuntimeError(f"{method}: another fit(..., distribute=True) is already running")
    replicas = _Replicas(world, model, method)
    with contextlib.ExitStack() as stack:
        if world.rank != 0:  # only rank 0 prints
            devnull = stack.enter_context(open(os.devnull, "w"))
            stack.enter_context(contextlib.redirect_stdout(devnull))
        _active = replicas
        model._replicas = replicas
        try:
            yield replicas
        except BaseException as exc:
            if not isinstance(exc, Exception) and world.backend == "mpi":
                # sys.exit() or Ctrl-C on this rank: the others would wait in their next
                # collective (and this rank's MPI_Finalize with them), so end the run now.
                sys.stderr.write(
                    f"ember.distributed: rank {world.rank} of {world.size} left "
                    f"{method}(distribute=True) by {type(exc).__name__} while the other ranks "
                    f"may still be training; aborting all {world.size} ranks\n"
                )
                world.abort(1)
            raise
        finally:
            replicas.finish()
            _active = None
            model._replicas = None
            if world.backend == "mpi":
                world.where = ""

