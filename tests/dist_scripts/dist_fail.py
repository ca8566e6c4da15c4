"""A run whose rank 1 fails mid-training: ``mpiexec -n 2 python dist_fail.py MODE``.

MODE says how rank 1 fails at its 4th training batch:

* ``kill``: SIGKILL (as the OOM killer would); the launcher then stops the other ranks;
* ``raise``: an uncaught exception; Ember's exception hook prints it and aborts every rank;
* ``exit``: ``sys.exit(0)``, a clean exit status in the middle of ``fit``; Ember aborts every
  rank (the others would wait for it);
* ``vanish``: ``os._exit(0)``, gone without a word nor an error code. MPICH's launcher then
  stops the others and reports success; started with ``-disable-auto-cleanup`` (as a launcher
  that leaves the others running would), only the other ranks' timeout (3 s in this mode) can
  notice: they raise DistributedError naming what they waited for.

Without the failure the run would train for 200 epochs; the test expects it to end at once.
"""

from __future__ import annotations

import os
import signal
import sys

import ember
from ember import distributed
from ember.datasets import digits


def fail(mode: str) -> None:
    sys.stdout.flush()
    if mode == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "raise":
        raise RuntimeError("rank 1 fails on purpose")
    if mode == "exit":
        sys.exit(0)
    if mode == "vanish":
        os._exit(0)


def main(mode: str) -> None:
    # The short limit only where the timeout is what must notice; elsewhere a generous one, so
    # that a slow start on a busy machine cannot be taken for the failure under test.
    distributed.init(seed=0, timeout=3 if mode == "vanish" else 30)
    (x, y), _ = digits.load_data()
    x = x[:256].reshape(-1, 64).astype("float32") / 16.0
    model = ember.models.zoo.mlp((64,), 10, hidden=(16,))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    hook = ember.callbacks.LambdaCallback(
        on_train_batch_begin=lambda batch, logs=None: (
            fail(mode) if distributed.rank() == 1 and batch == 3 else None
        )
    )
    print(f"rank {distributed.rank()} training", flush=True)
    model.fit(x, y[:256], batch_size=32, epochs=200, verbose=0, callbacks=[hook],
              distribute=True)
    print("training finished: the failure went unnoticed", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
