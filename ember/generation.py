"""Sequence decoding: greedy search, sampling and beam search for any next-token model.

Decoding is model-agnostic through one *step function*::

    step_fn(new_tokens, cache) -> (logits, new_cache)

* ``new_tokens`` is a ``(B, n)`` integer NumPy array of the tokens the model has not been fed yet:
  the whole prompt at the first call (``cache is None``), then one token per row;
* ``logits`` are the ``(B, V)`` unnormalised scores of the next token (a NumPy array or an
  ``ember.Tensor``);
* ``cache`` is whatever the model needs to continue -- the hidden state of a recurrent decoder, the
  keys and values of a Transformer decoder -- as any nested structure (dicts, lists, tuples; see
  :mod:`ember.tree`) of arrays or tensors whose axis 0 is the batch. Beam search reorders it
  along that axis when beams are pruned; ``None`` leaves are left alone.

A model without a cache (one that maps the whole sequence to the next-token logits) is wrapped
with :func:`recompute_step`. :func:`generate` dispatches to :func:`greedy_search`,
:func:`sample` or :func:`beam_search`. Everything runs under ``ember.no_grad()``: decoding never
records a graph.

The step-function interface exchanges NumPy arrays, so this module computes with NumPy (in
float64: decoding is not a training path, and log-probabilities summed over many steps want the
precision).

Example:
    >>> table = np.log(np.array([[0.1, 0.6, 0.3],     # a bigram model: P(next | last token)
    ...                          [0.2, 0.1, 0.7],
    ...                          [0.8, 0.1, 0.1]]))
    >>> def step_fn(new_tokens, cache):
    ...     return table[new_tokens[:, -1]], None     # no state beyond the last token
    >>> ember.generation.generate(step_fn, [[0], [2]], max_new_tokens=4)
    array([[0, 1, 2, 0, 1],
           [2, 0, 1, 2, 0]])
    >>> ember.generation.generate(step_fn, [[0], [2]], max_new_tokens=9, eos_token_id=2,
    ...                           pad_token_id=-1)    # stops once every row has emitted 2
    array([[ 0,  1,  2, -1],
           [ 2,  0,  1,  2]])
    >>> ember.generation.generate(step_fn, [[0]], max_new_tokens=4, method="sample", seed=0).shape
    (1, 5)
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ember.tensor import Tensor, no_grad
from ember.tree import map_structure

__all__ = ["StepFn", "recompute_step", "generate", "greedy_search", "sample", "beam_search"]

#: ``step_fn(new_tokens (B, n) int array, cache) -> (logits (B, V), new_cache)``
StepFn = Callable[[np.ndarray, Any], tuple[Any, Any]]
#: a ``(B, t0)`` integer array or a list of ``B`` equal-length lists of token ids
Prompt = np.ndarray | Sequence[Sequence[int]]

_METHODS = ("greedy", "sample", "beam")


# --------------------------------------------------------------------------- validation


def _check_int(fn: str, name: str, value, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{fn}: {name} must be an int, got {type(value).__name__} {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{fn}: {name} must be >= {minimum}, got {value}")
    return int(value)


def _check_real(fn: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{fn}: {name} must be a number, got {type(value).__name__} {value!r}")
    if not np.isfinite(value):
        raise ValueError(f"{fn}: {name} must be finite, got {value}")
    return float(value)


def _check_prompt(fn: str, prompt) -> np.ndarray:
    try:
        array = np.asarray(prompt)
    except ValueError:  # ragged nested lists
        raise ValueError(
            f"{fn}: prompt must be a (batch, length) array of token ids or a list of "
            "equal-length lists; got lists of different lengths"
        ) from None
    if array.ndim != 2:
        raise ValueError(
            f"{fn}: prompt must be 2-D (batch, length), got shape {array.shape}; "
            "wrap a single sequence as [tokens]"
        )
    if array.dtype == bool or array.dtype.kind not in "iu":
        raise TypeError(f"{fn}: prompt must hold integer token ids, got dtype {array.dtype}")
    if array.shape[1] == 0:
        raise ValueError(
            f"{fn}: prompt must hold at least one token per row, got shape {array.shape}"
        )
    if array.size and array.min() < 0:
        raise ValueError(f"{fn}: prompt token ids must be >= 0, got {array.min()}")
    return array.astype(np.int64)


def _check_common(fn: str, step_fn, prompt, max_new_tokens, eos_token_id, pad_token_id):
    if not callable(step_fn):
        raise TypeError(
            f"{fn}: step_fn must be callable as step_fn(new_tokens, cache) -> (logits, cache), "
            f"got {type(step_fn).__name__}"
        )
    prompt = _check_prompt(fn, prompt)
    max_new_tokens = _check_int(fn, "max_new_tokens", max_new_tokens, 0)
    if eos_token_id is not None:
        eos_token_id = _check_int(fn, "eos_token_id", eos_token_id, 0)
    pad_token_id = _check_int(fn, "pad_token_id", pad_token_id)
    return prompt, max_new_tokens, eos_token_id, pad_token_id


def _check_sampling(fn: str, temperature, top_k, top_p) -> tuple[float, int | None, float | None]:
    temperature = _check_real(fn, "temperature", temperature)
    if temperature <= 0:
        raise ValueError(
            f"{fn}: temperature must be > 0, got {temperature}; use method='greedy' for the "
            "zero-temperature limit"
        )
    if top_k is not None:
        top_k = _check_int(fn, "top_k", top_k, 1)
    if top_p is not None:
        top_p = _check_real(fn, "top_p", top_p)
        if not 0 < top_p <= 1:
            raise ValueError(f"{fn}: top_p must be in (0, 1], got {top_p}")
    return temperature, top_k, top_p


def _rng(fn: str, seed) -> np.random.Generator:
    if isinstance(seed, bool):
        raise TypeError(f"{fn}: seed must be None, an int or a numpy.random.Generator, got bool")
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError) as error:
        raise type(error)(
            f"{fn}: seed must be None, a non-negative int or a numpy.random.Generator, got "
            f"{seed!r} ({error})"
        ) from None


def _logits(fn: str, raw, step: int, rows: int, vocab: int | None) -> np.ndarray:
    """The step function's logits as a float64 ``(rows, V)`` array, or a ValueError saying which
    step returned what."""
    data = raw.data if isinstance(raw, Tensor) else raw
    array = np.asarray(data)
    where = "the prompt call (step 0)" if step == 0 else f"step {step}"
    expected = f"({rows}, {vocab if vocab is not None else 'V'})"
    if array.ndim != 2 or array.shape[0] != rows or (vocab is not None and array.shape[1] != vocab):
        raise ValueError(
            f"{fn}: step_fn must return logits of shape (batch, vocab) = {expected}, got shape "
            f"{array.shape} at {where}"
        )
    if array.dtype.kind not in "iuf" or array.shape[1] == 0:
        raise ValueError(
            f"{fn}: step_fn must return real-valued logits over a non-empty vocabulary, got "
            f"dtype {array.dtype} and shape {array.shape} at {where}"
        )
    array = array.astype(np.float64)
    # -inf masks a token; NaN or +inf would make every probability meaningless
    if np.isnan(array).any() or np.isposinf(array).any():
        raise ValueError(f"{fn}: step_fn returned NaN or +inf logits at {where}")
    if rows and not np.isfinite(array).any(axis=1).all():
        raise ValueError(f"{fn}: step_fn returned a row whose logits are all -inf at {where}")
    return array


def _check_eos(fn: str, eos_token_id: int | None, vocab: int) -> None:
    if eos_token_id is not None and eos_token_id >= vocab:
        raise ValueError(
            f"{fn}: eos_token_id must be < the vocabulary size {vocab} of the logits, got "
            f"{eos_token_id}"
        )


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)  # the max is finite (checked)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


# --------------------------------------------------------------------------- step functions


def recompute_step(next_logits_fn: Callable[[np.ndarray], Any]) -> StepFn:
    """A step function for a model without a cache: it re-reads the whole sequence every step.

    Args:
        next_logits_fn: maps the full token sequence ``(B, t)`` to the next-token logits
            ``(B, V)`` (a NumPy array or an ``ember.Tensor``).

    Returns:
        ``step_fn(new_tokens, cache)`` whose cache is the ``(B, t)`` sequence so far. Decoding
        costs O(t) model calls on ever longer inputs, against one token per step with a cache.

    Example:
        >>> table = np.log(np.array([[0.1, 0.9], [0.7, 0.3]]))
        >>> step_fn = ember.generation.recompute_step(lambda seq: table[seq[:, -1]])
        >>> logits, cache = step_fn(np.array([[0, 1]]), None)
        >>> logits, cache = step_fn(np.array([[0]]), cache)
        >>> cache
        array([[0, 1, 0]])
        >>> ember.generation.generate(step_fn, [[0]], max_new_tokens=3)
        array([[0, 1, 0, 1]])
    """
    if not callable(next_logits_fn):
        raise TypeError(
            f"recompute_step: next_logits_fn must be callable, got {type(next_logits_fn).__name__}"
        )

    def step_fn(new_tokens: np.ndarray, cache: np.ndarray | None) -> tuple[Any, np.ndarray]:
        sequence = new_tokens if cache is None else np.concatenate([cache, new_tokens], axis=1)
        return next_logits_fn(sequence), sequence

    return step_fn


def _select(fn: str, cache: Any, index: np.ndarray, rows: int) -> Any:
    """Every cache leaf indexed by ``index`` on axis 0 (beam reordering); None stays None."""

    def take(leaf):
        if leaf is None:
            return None
        shape = getattr(leaf, "shape", None)
        if not shape or shape[0] != rows:
            raise ValueError(
                f"{fn}: every cache leaf must be an array or tensor whose axis 0 is the batch "
                f"({rows} rows), got a {type(leaf).__name__} of shape {shape}"
            )
        return leaf[index]

    return map_structure(take, cache)


# --------------------------------------------------------------------------- greedy / sample


def _decode(
    fn: str,
    step_fn: StepFn,
    prompt: np.ndarray,
    max_new_tokens: int,
    eos_token_id: int | None,
    pad_token_id: int,
    choose: Callable[[np.ndarray], np.ndarray],
    return_scores: bool,
):
    """The loop shared by greedy search and sampling: ``choose`` maps (B, V) logits to tokens."""
    batch = prompt.shape[0]
    tokens = np.full((batch, max_new_tokens), pad_token_id, dtype=np.int64)
    scores = np.zeros((batch, max_new_tokens), dtype=np.float64)
    finished = np.zeros(batch, dtype=bool)
    n = 0
    cache, new_tokens, vocab = None, prompt, None
    with no_grad():
        while n < max_new_tokens and not finished.all():
            raw, cache = step_fn(new_tokens, cache)
            logits = _logits(fn, raw, n, batch, vocab)
            if vocab is None:
                vocab = logits.shape[1]
                _check_eos(fn, eos_token_id, vocab)
            chosen = choose(logits)
            if return_scores:
                logp = _log_softmax(logits)[np.arange(batch), chosen]
                scores[:, n] = np.where(finished, 0.0, logp)
            chosen = np.where(finished, pad_token_id, chosen)  # finished rows keep padding
            tokens[:, n] = chosen
            if eos_token_id is not None:
                finished |= chosen == eos_token_id
            new_tokens = chosen[:, None]
            n += 1
    # a batch of zero rows is "all finished" at once; it still gets its (empty) columns
    n = max_new_tokens if batch == 0 else n
    out = np.concatenate([prompt, tokens[:, :n]], axis=1)
    return (out, scores[:, :n]) if return_scores else out


def greedy_search(
    step_fn: StepFn,
    prompt: Prompt,
    *,
    max_new_tokens: int,
    eos_token_id: int | None = None,
    pad_token_id: int = 0,
    return_scores: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Decode by always taking the most likely next token (the first one on ties).

    Args:
        step_fn: ``step_fn(new_tokens, cache) -> (logits, cache)`` (see the module docstring).
        prompt: ``(B, t0)`` integer token ids, or a list of equal-length lists.
        max_new_tokens: at most this many tokens are appended (``0`` returns the prompt).
        eos_token_id: a row that emits it is finished and gets ``pad_token_id`` afterwards;
            decoding stops as soon as every row is finished.
        pad_token_id: the filler after a row's end-of-sequence token.
        return_scores: also return the ``(B, n)`` float64 log-probabilities of the new tokens
            under the model (``log_softmax`` of its logits), 0.0 at padding.

    Returns:
        ``(B, t0 + n)`` int64 tokens with ``n <= max_new_tokens`` (and the scores on request).

    Example:
        >>> table = np.log(np.array([[0.1, 0.6, 0.3], [0.2, 0.1, 0.7], [0.8, 0.1, 0.1]]))
        >>> step_fn = lambda new, cache: (table[new[:, -1]], None)
        >>> tokens, scores = ember.generation.greedy_search(
        ...     step_fn, [[0], [1]], max_new_tokens=3, eos_token_id=0, return_scores=True)
        >>> tokens
        array([[0, 1, 2, 0],
               [1, 2, 0, 0]])
        >>> np.round(np.exp(scores[0]), 2)                  # the probabilities of 1, 2, 0
        array([0.6, 0.7, 0.8])
        >>> float(scores[1, 2])                             # padding
        0.0
    """
    fn = "greedy_search"
    prompt, max_new_tokens, eos_token_id, pad_token_id = _check_common(
        fn, step_fn, prompt, max_new_tokens, eos_token_id, pad_token_id
    )
    return _decode(
        fn,
        step_fn,
        prompt,
        max_new_tokens,
        eos_token_id,
        pad_token_id,
        lambda logits: logits.argmax(axis=1),
        return_scores,
    )


def _warp(logits: np.ndarray, temperature: float, top_k: int | None, top_p: float | None):
    """Temperature, then top-k, then top-p (nucleus) filtering, as Hugging Face orders them;
    removed tokens get -inf."""
    logits = logits / temperature
    vocab = logits.shape[1]
    if top_k is not None and top_k < vocab:
        # ties with the k-th value are kept (as torch.topk thresholds do)
        kth = np.partition(logits, vocab - top_k, axis=1)[:, vocab - top_k, None]
        logits = np.where(logits < kth, -np.inf, logits)
    if top_p is not None and top_p < 1:
        order = np.argsort(-logits, axis=1, kind="stable")
        probs = np.exp(_log_softmax(np.take_along_axis(logits, order, axis=1)))
        # keep a token while the mass of the more likely ones is still below top_p: the
        # smallest set reaching top_p, and always the most likely token
        before = np.cumsum(probs, axis=1) - probs
        drop_sorted = before >= top_p
        drop_sorted[:, 0] = False
        drop = np.empty_like(drop_sorted)
        np.put_along_axis(drop, order, drop_sorted, axis=1)
        logits = np.where(drop, -np.inf, logits)
    return logits


def _draw(logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One token per row from softmax(logits), by inverting the cumulative distribution (one
    uniform draw per row). A zero-probability token is never drawn: it adds a flat step."""
    probs = np.exp(_log_softmax(logits))
    cdf = np.cumsum(probs, axis=1)
    u = rng.random(logits.shape[0]) * cdf[:, -1]  # scaling by the total absorbs rounding
    return (cdf <= u[:, None]).sum(axis=1)


def sample(
    step_fn: StepFn,
    prompt: Prompt,
    *,
    max_new_tokens: int,
    eos_token_id: int | None = None,
    pad_token_id: int = 0,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | np.random.Generator | None = None,
    return_scores: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Decode by drawing each next token from the model's (reshaped) distribution.

    The logits are divided by ``temperature`` (below 1 sharpens, above 1 flattens), then only the
    ``top_k`` most likely tokens are kept (ties with the k-th are kept too), then only the
    nucleus: the smallest set of most likely tokens whose probability reaches ``top_p`` (always
    at least one token) -- Hugging Face's order.

    Args:
        step_fn, prompt, max_new_tokens, eos_token_id, pad_token_id: as in
            :func:`greedy_search`.
        temperature: > 0.
        top_k: ``None`` (no limit) or >= 1.
        top_p: ``None`` (no limit) or in (0, 1].
        seed: an int, a ``numpy.random.Generator`` (used and advanced) or ``None`` (fresh
            entropy), passed to ``numpy.random.default_rng``.
        return_scores: also return the log-probabilities of the drawn tokens under the *model*
            (before temperature and filtering), 0.0 at padding.

    Returns:
        ``(B, t0 + n)`` int64 tokens with ``n <= max_new_tokens`` (and the scores on request).

    Example:
        >>> table = np.log(np.array([[0.1, 0.6, 0.3], [0.2, 0.1, 0.7], [0.8, 0.1, 0.1]]))
        >>> step_fn = lambda new, cache: (table[new[:, -1]], None)
        >>> a = ember.generation.sample(step_fn, [[0]] * 3, max_new_tokens=5, seed=1)
        >>> b = ember.generation.sample(step_fn, [[0]] * 3, max_new_tokens=5, seed=1)
        >>> bool((a == b).all()), a.shape
        (True, (3, 6))
        >>> ember.generation.sample(step_fn, [[0]], max_new_tokens=5, top_k=1, seed=1)  # greedy
        array([[0, 1, 2, 0, 1, 2]])
    """
    fn = "sample"
    prompt, max_new_tokens, eos_token_id, pad_token_id = _check_common(
        fn, step_fn, prompt, max_new_tokens, eos_token_id, pad_token_id
    )
    temperature, top_k, top_p = _check_sampling(fn, temperature, top_k, top_p)
    rng = _rng(fn, seed)
    return _decode(
        fn,
        step_fn,
        prompt,
        max_new_tokens,
        eos_token_id,
        pad_token_id,
        lambda logits: _draw(_warp(logits, temperature, top_k, top_p), rng),
        return_scores,
    )


# --------------------------------------------------------------------------- beam search


def _top_indices(values: np.ndarray, k: int) -> np.ndarray:
    """The column indices of the ``k`` largest values of each row, best first; ties go to the
    lowest index (deterministic, unlike ``argpartition``), in O(columns) rather than a sort."""
    n = values.shape[1]
    kth = np.partition(values, n - k, axis=1)[:, n - k, None]
    above = values > kth
    ties = values == kth
    room = k - above.sum(axis=1, keepdims=True)
    keep = above | (ties & (np.cumsum(ties, axis=1) <= room))
    index = np.nonzero(keep)[1].reshape(-1, k)  # exactly k per row, in column order
    order = np.argsort(-np.take_along_axis(values, index, 1), axis=1, kind="stable")
    return np.take_along_axis(index, order, 1)


class _Beams:
    """The state of a beam search over ``B`` rows of ``K`` beams, all arrays vectorized.

    Open beams: ``tokens (B, K, N)`` (the first ``n`` columns are filled), ``sums (B, K)``
    (summed log-probabilities) and ``logps (B, K, N)`` (per token). The best finished hypothesis
    of each row: ``best (B,)`` (its length-penalised score, -inf while there is none),
    ``best_tokens``/``best_logps (B, N)`` and ``best_len (B,)``.
    """

    def __init__(self, batch: int, beams: int, steps: int, length_penalty: float, pad: int):
        self.batch, self.beams, self.steps, self.lp = batch, beams, steps, length_penalty
        self.tokens = np.zeros((batch, beams, steps), dtype=np.int64)
        self.logps = np.zeros((batch, beams, steps))
        # only beam 0 is live at first: the K copies of the prompt must not yield K equal beams
        self.sums = np.full((batch, beams), -np.inf)
        self.sums[:, 0] = 0.0
        self.best = np.full(batch, -np.inf)
        self.best_tokens = np.full((batch, steps), pad, dtype=np.int64)
        self.best_logps = np.zeros((batch, steps))
        self.best_len = np.zeros(batch, dtype=np.int64)
        self.rows = np.arange(batch)

    def _penalised(self, sums: np.ndarray, length: int) -> np.ndarray:
        return sums / float(length) ** self.lp

    def finish(self, logp: np.ndarray, n: int, eos: int) -> None:
        """Every open beam extended by ``eos`` is a finished hypothesis of length ``n + 1``;
        keep each row's best."""
        ends = self.sums + logp[:, :, eos]
        scores = self._penalised(ends, n + 1)
        k = scores.argmax(axis=1)
        score = scores[self.rows, k]
        better = np.flatnonzero(score > self.best)
        if better.size:
            kb = k[better]
            self.best[better] = score[better]
            self.best_tokens[better, :n] = self.tokens[better, kb, :n]
            self.best_tokens[better, n] = eos
            self.best_logps[better, :n] = self.logps[better, kb, :n]
            self.best_logps[better, n] = logp[better, kb, eos]
            self.best_len[better] = n + 1

    def extend(self, logp: np.ndarray, n: int) -> np.ndarray:
        """Keep the K best one-token extensions of each row (``logp`` has eos removed); returns
        the flat ``(B*K,)`` index of each new beam's parent, for reordering the cache."""
        vocab = logp.shape[2]
        candidates = (self.sums[:, :, None] + logp).reshape(self.batch, -1)
        top = _top_indices(candidates, self.beams)
        parent, token = top // vocab, top % vocab
        rows = self.rows[:, None]
        self.tokens = self.tokens[rows, parent]
        self.logps = self.logps[rows, parent]
        self.tokens[:, :, n] = token
        self.logps[:, :, n] = logp[rows, parent, token]
        self.sums = candidates[rows, top]
        return (rows * self.beams + parent).reshape(-1)

    def done(self, n: int) -> np.ndarray:
        """Rows whose best finished hypothesis no open beam can beat any more.

        Log-probabilities are <= 0, so an open beam's sum only falls; its best possible score is
        its current sum at the most favourable length still reachable: the maximum length when
        ``length_penalty > 0`` (dividing a negative sum by a larger number), otherwise the
        shortest finish (one more token). The bound is exact, so stopping early never changes
        the result.
        """
        length = self.steps if self.lp > 0 else n + 1
        bound = self._penalised(self.sums, length).max(axis=1)
        return self.best >= bound

    def close(self, n: int) -> None:
        """At the length limit the open beams compete as unfinished hypotheses of length n."""
        scores = self._penalised(self.sums, n)
        k = scores.argmax(axis=1)
        score = scores[self.rows, k]
        better = np.flatnonzero(score > self.best)
        if better.size:
            self.best[better] = score[better]
            self.best_tokens[better, :n] = self.tokens[better, k[better], :n]
            self.best_logps[better, :n] = self.logps[better, k[better], :n]
            self.best_len[better] = n


def beam_search(
    step_fn: StepFn,
    prompt: Prompt,
    *,
    max_new_tokens: int,
    eos_token_id: int | None = None,
    pad_token_id: int = 0,
    num_beams: int = 4,
    length_penalty: float = 1.0,
    return_scores: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Decode by keeping the ``num_beams`` most probable partial sequences of each row.

    Each step extends every open beam by every token and keeps the ``num_beams`` best
    extensions of each row by summed log-probability (the cache is reordered along axis 0,
    which holds ``B * num_beams`` rows, ``map_structure(lambda a: a[index], cache)``). Each
    beam extended by ``eos_token_id`` is a finished hypothesis scored, as in Hugging Face,
    ``sum_logprobs / length ** length_penalty`` with ``length`` the number of new tokens
    (eos included): ``length_penalty > 0`` favours longer sequences, ``< 0`` shorter ones, ``0``
    compares plain sums. At ``max_new_tokens`` the open beams compete too (at that length).

    Choices: eos extensions of *all* open beams are considered (not only those ranked among
    the best ``num_beams`` candidates), and a row stops as soon as no open beam can still beat
    its best finished hypothesis (an exact bound, see ``_Beams.done``), so early stopping never
    changes the answer; decoding ends when every row has stopped or at ``max_new_tokens``.
    ``num_beams=1`` is therefore not exactly greedy search: eos competes as a finished
    hypothesis instead of ending the row. The prompt is fed once per row and its cache copied
    to the beams.

    Args:
        step_fn, prompt, max_new_tokens, eos_token_id, pad_token_id: as in
            :func:`greedy_search`.
        num_beams: >= 1 beams per row.
        length_penalty: the exponent of the length that divides finished scores.
        return_scores: also return the ``(B, n)`` per-token log-probabilities of the returned
            hypotheses (their sum over a row, divided by ``length ** length_penalty``, is the
            hypothesis' score), 0.0 at padding.

    Returns:
        ``(B, t0 + n)`` int64 tokens, the best hypothesis of each row padded with
        ``pad_token_id`` (and the scores on request).

    Example:
        >>> logp = np.log(np.array([[0.5, 0.5, 1e-6],   # after token 0: 0 or 1, evenly
        ...                         [1e-6, 1e-6, 1.0],   # after token 1: surely 2
        ...                         [0.4, 0.3, 0.3]]))   # after token 2
        >>> step_fn = lambda new, cache: (logp[new[:, -1]], None)
        >>> ember.generation.greedy_search(step_fn, [[2]], max_new_tokens=3)  # 0.4 * 0.5 * 0.5
        array([[2, 0, 0, 0]])
        >>> ember.generation.beam_search(step_fn, [[2]], max_new_tokens=3, num_beams=2)
        array([[2, 1, 2, 0]])
    """
    fn = "beam_search"
    prompt, max_new_tokens, eos_token_id, pad_token_id = _check_common(
        fn, step_fn, prompt, max_new_tokens, eos_token_id, pad_token_id
    )
    num_beams = _check_int(fn, "num_beams", num_beams, 1)
    length_penalty = _check_real(fn, "length_penalty", length_penalty)
    batch = prompt.shape[0]
    if max_new_tokens == 0 or batch == 0:
        empty = np.zeros((batch, max_new_tokens if batch == 0 else 0))
        out = np.concatenate([prompt, empty.astype(np.int64) + pad_token_id], axis=1)
        return (out, empty) if return_scores else out
    with no_grad():
        state = _beam_loop(
            fn,
            step_fn,
            prompt,
            max_new_tokens,
            eos_token_id,
            num_beams,
            length_penalty,
            pad_token_id,
        )
    width = int(state.best_len.max())
    out = np.concatenate([prompt, state.best_tokens[:, :width]], axis=1)
    return (out, state.best_logps[:, :width]) if return_scores else out


def _beam_loop(fn, step_fn, prompt, steps, eos, beams, length_penalty, pad) -> _Beams:
    batch = prompt.shape[0]
    state = _Beams(batch, beams, steps, length_penalty, pad)
    raw, cache = step_fn(prompt, None)  # once per row, then copied to the row's beams
    logits = _logits(fn, raw, 0, batch, None)
    vocab = logits.shape[1]
    _check_eos(fn, eos, vocab)
    copies = np.repeat(np.arange(batch), beams)
    logits, cache = logits[copies], _select(fn, cache, copies, batch)
    n = 0
    while True:
        logp = _log_softmax(logits).reshape(batch, beams, vocab)
        if eos is not None:
            state.finish(logp, n, eos)
            logp[:, :, eos] = -np.inf  # an open beam never contains eos
        parents = state.extend(logp, n)
        n += 1
        if n == steps:
            state.close(n)
            return state
        if eos is not None and state.done(n).all():
            return state
        cache = _select(fn, cache, parents, batch * beams)
        raw, cache = step_fn(state.tokens[:, :, n - 1].reshape(-1, 1), cache)
        logits = _logits(fn, raw, n, batch * beams, vocab)


# --------------------------------------------------------------------------- dispatch


def generate(
    step_fn: StepFn,
    prompt: Prompt,
    *,
    max_new_tokens: int,
    eos_token_id: int | None = None,
    pad_token_id: int = 0,
    method: str = "greedy",
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    num_beams: int = 4,
    length_penalty: float = 1.0,
    seed: int | np.random.Generator | None = None,
    return_scores: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Continue each prompt row with up to ``max_new_tokens`` tokens from a next-token model.

    ``method="greedy"`` calls :func:`greedy_search`, ``"sample"`` :func:`sample` (options
    ``temperature``, ``top_k``, ``top_p``, ``seed``) and ``"beam"`` :func:`beam_search`
    (options ``num_beams``, ``length_penalty``); an option the chosen method does not use must
    keep its default (a ValueError otherwise, rather than silently ignoring it). ``seed`` is
    accepted by every method and only used by sampling.

    Returns:
        ``(B, t0 + n)`` int64 tokens, ``n <= max_new_tokens``, rows padded with
        ``pad_token_id`` after their ``eos_token_id``; with ``return_scores=True`` a pair
        ``(tokens, scores)`` with the ``(B, n)`` float64 per-token log-probabilities under the
        model (0.0 at padding).

    Example:
        >>> table = np.log(np.array([[0.1, 0.6, 0.3], [0.2, 0.1, 0.7], [0.8, 0.1, 0.1]]))
        >>> step_fn = lambda new, cache: (table[new[:, -1]], None)
        >>> ember.generation.generate(step_fn, [[1]], max_new_tokens=2, method="beam")
        array([[1, 2, 0]])
        >>> ember.generation.generate(step_fn, [[1]], max_new_tokens=0)
        array([[1]])
    """
    fn = "generate"
    if method not in _METHODS:
        raise ValueError(f"{fn}: method must be one of {_METHODS}, got {method!r}")
    unused = {
        "greedy": ("temperature", "top_k", "top_p", "num_beams", "length_penalty"),
        "sample": ("num_beams", "length_penalty"),
        "beam": ("temperature", "top_k", "top_p"),
    }[method]
    given = {
        "temperature": temperature != 1.0,
        "top_k": top_k is not None,
        "top_p": top_p is not None,
        "num_beams": num_beams != 4,
        "length_penalty": length_penalty != 1.0,
    }
    for name in unused:
        if given[name]:
            raise ValueError(
                f"{fn}: {name} is not used by method={method!r}; leave it at its default or "
                f"choose a method that uses it ('sample' for temperature/top_k/top_p, 'beam' "
                "for num_beams/length_penalty)"
            )
    common = {
        "max_new_tokens": max_new_tokens,
        "eos_token_id": eos_token_id,
        "pad_token_id": pad_token_id,
        "return_scores": return_scores,
    }
    if method == "greedy":
        return greedy_search(step_fn, prompt, **common)
    if method == "sample":
        return sample(
            step_fn, prompt, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed, **common
        )
    return beam_search(
        step_fn, prompt, num_beams=num_beams, length_penalty=length_penalty, **common
    )
