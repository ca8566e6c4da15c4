"""ember.generation: greedy search, sampling and beam search against toy next-token models whose
distributions are known exactly (bigram and trigram tables), brute-force enumeration and
chi-square checks of sampled frequencies."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import ember
from ember import generation as gen

# ----------------------------------------------------------------------------- toy models


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def bigram_step(table: np.ndarray):
    """logits = table[last token]; keeps no cache."""

    def step_fn(new_tokens, cache):
        return table[new_tokens[:, -1]], None

    return step_fn


def trigram_logits(table: np.ndarray):
    """A model without a cache: the full sequence (B, t >= 2) -> table[t-2 token, t-1 token]."""
    return lambda seq: ember.tensor(table[seq[:, -2], seq[:, -1]])


def cached_trigram_step(table: np.ndarray, record: list | None = None):
    """The same trigram model with a nested cache: the previous token lives in an ember Tensor
    leaf (the logits depend on it, so a wrongly reordered cache changes the result), the full
    history in an array leaf (recorded at every call), plus a None leaf."""

    def step_fn(new_tokens, cache):
        if cache is None:
            history, prev = new_tokens, new_tokens[:, -2]
        else:
            history = np.concatenate([cache["history"], new_tokens], axis=1)
            prev = cache["state"][0].data.astype(np.int64)
            assert cache["state"][1] is None
        last = new_tokens[:, -1]
        if record is not None:
            record.append(history.copy())
        new_cache = {"history": history, "state": [ember.tensor(last.astype(np.float32)), None]}
        return ember.tensor(table[prev, last]), new_cache

    return step_fn


def random_table(seed: int, shape: tuple, scale: float = 2.0) -> np.ndarray:
    return (np.random.default_rng(seed).normal(size=shape) * scale).astype(np.float32)


def _forbid_calls(new_tokens, cache):
    raise AssertionError("step_fn must not be called")


def brute_force(logprob_fn, prompt_row, vocab, length, eos=None, length_penalty=1.0):
    """The best continuation by enumeration: every sequence of exactly ``length`` tokens, and
    with ``eos`` every shorter one ending in eos (eos never inside); score sum / len**lp."""
    best, best_score = None, -np.inf
    for n in range(1, length + 1):
        for tail in itertools.product(range(vocab), repeat=n):
            if eos is not None and eos in tail[:-1]:
                continue
            if n < length and tail[-1] != eos:
                continue
            seq = list(prompt_row)
            total = 0.0
            for token in tail:
                total += logprob_fn(np.array([seq]))[0, token]
                seq.append(token)
            score = total / n**length_penalty
            if score > best_score:
                best, best_score = list(tail), score
    return best, best_score


def _chi_square(tokens: np.ndarray, probs: np.ndarray) -> float:
    counts = np.bincount(tokens, minlength=probs.size)
    keep = probs > 0
    assert counts[~keep].sum() == 0
    expected = probs[keep] * tokens.size
    return float(((counts[keep] - expected) ** 2 / expected).sum())


# ----------------------------------------------------------------------------- greedy


def test_greedy_follows_the_argmax_chain_and_scores_it():
    table = random_table(0, (6, 6))
    prompt = np.array([[0, 3], [5, 1], [2, 2]])
    tokens, scores = gen.greedy_search(
        bigram_step(table), prompt, max_new_tokens=5, return_scores=True
    )
    assert tokens.dtype == np.int64 and tokens.shape == (3, 7)
    np.testing.assert_array_equal(tokens[:, :2], prompt)
    logp = _log_softmax(table)
    for row in range(3):
        last = prompt[row, -1]
        for n in range(5):
            expected = int(np.argmax(table[last]))
            assert tokens[row, 2 + n] == expected
            np.testing.assert_allclose(scores[row, n], logp[last, expected], rtol=1e-12)
            last = expected
    # generate dispatches to the same thing; a list of lists is a valid prompt
    np.testing.assert_array_equal(
        gen.generate(bigram_step(table), prompt.tolist(), max_new_tokens=5), tokens
    )


def test_greedy_stops_at_eos_per_row_pads_and_stops_early():
    # chains: 1 -> 2 -> 0 (eos) ; 3 -> 0 ; 4 -> 4 -> ... never ends
    table = np.full((5, 5), -5.0)
    table[1, 2] = table[2, 0] = table[3, 0] = table[4, 4] = 5.0
    calls = []

    def step_fn(new_tokens, cache):
        calls.append(new_tokens.copy())
        return bigram_step(table)(new_tokens, cache)

    out = gen.generate(step_fn, [[1], [3]], max_new_tokens=10, eos_token_id=0, pad_token_id=9)
    np.testing.assert_array_equal(out, [[1, 2, 0], [3, 0, 9]])
    assert len(calls) == 2  # stopped as soon as both rows emitted eos
    np.testing.assert_array_equal(calls[1], [[2], [0]])  # one new token per row after the prompt

    out = gen.generate(bigram_step(table), [[1], [4]], max_new_tokens=4, eos_token_id=0)
    np.testing.assert_array_equal(out, [[1, 2, 0, 0, 0], [4, 4, 4, 4, 4]])


@pytest.mark.parametrize("method", ["greedy", "sample", "beam"])
def test_zero_new_tokens_returns_the_prompt(method):
    out = gen.generate(_forbid_calls, [[3, 1], [2, 2]], max_new_tokens=0, method=method)
    np.testing.assert_array_equal(out, [[3, 1], [2, 2]])
    assert out.dtype == np.int64


# ----------------------------------------------------------------------------- beam search


def test_beam_finds_the_most_probable_sequence_where_greedy_does_not():
    probs = np.array(
        [
            [0.30, 0.30, 0.20, 0.20],
            [0.05, 0.05, 0.85, 0.05],
            [0.10, 0.10, 0.10, 0.70],
            [0.40, 0.35, 0.15, 0.10],
        ]
    )
    table = np.log(probs)
    step_fn = bigram_step(table)
    logprob_fn = lambda seq: _log_softmax(table[seq[:, -1]])  # noqa: E731
    best, best_logp = brute_force(logprob_fn, [3], 4, 3, length_penalty=0.0)
    assert best == [1, 2, 3]
    greedy = gen.greedy_search(step_fn, [[3]], max_new_tokens=3)
    assert greedy[0, 1:].tolist() == [0, 0, 0]  # 0.4 * 0.3 * 0.4 < 0.35 * 0.85 * 0.7
    beam, scores = gen.beam_search(step_fn, [[3]], max_new_tokens=3, return_scores=True)
    assert beam[0, 1:].tolist() == best
    np.testing.assert_allclose(scores.sum(), best_logp, rtol=1e-12)
    assert gen.beam_search(step_fn, [[3]], max_new_tokens=3, num_beams=2)[0, 1:].tolist() == best


@pytest.mark.parametrize("length_penalty", [-1.0, 0.0, 1.0, 2.0])
def test_enough_beams_equal_exhaustive_search_with_eos(length_penalty):
    # vocab 4, 3 new tokens: 16 beams keep every open prefix, so beam search is exact and must
    # agree with enumeration under the same length-penalised score (early stop included)
    eos = 0
    for seed in range(3):
        table = random_table(seed, (4, 4, 4))
        logprob_fn = lambda seq, t=table: _log_softmax(t[seq[:, -2], seq[:, -1]])  # noqa: E731
        prompts = np.array([[1, 2], [3, 3], [2, 1]])
        out, scores = gen.beam_search(
            gen.recompute_step(lambda seq, t=table: t[seq[:, -2], seq[:, -1]]),
            prompts,
            max_new_tokens=3,
            eos_token_id=eos,
            num_beams=16,
            length_penalty=length_penalty,
            return_scores=True,
        )
        for row, prompt in enumerate(prompts):
            best, best_score = brute_force(logprob_fn, prompt, 4, 3, eos, length_penalty)
            got = out[row, 2:]
            n = len(best)
            assert got[:n].tolist() == best, (seed, row)
            assert (got[n:] == 0).all()  # padding (pad_token_id=0)
            np.testing.assert_allclose(scores[row].sum() / n**length_penalty, best_score, 1e-9)


def test_length_penalty_changes_the_choice():
    # from token 3: eos (0) or 1 with probability 1/2 each; after 1: surely 2; after 2: surely eos
    probs = np.full((4, 4), 1e-4)
    probs[3, 0] = probs[3, 1] = 0.5
    probs[1, 2] = probs[2, 0] = 0.99
    step_fn = bigram_step(np.log(probs))
    kwargs = {"max_new_tokens": 5, "eos_token_id": 0, "pad_token_id": 7, "num_beams": 2}
    # plain sums (0): log 0.5 > log 0.5 + 2 log 0.99 -- the short [eos] wins
    short = gen.beam_search(step_fn, [[3]], length_penalty=0.0, **kwargs)
    np.testing.assert_array_equal(short, [[3, 0]])
    # per-token average (1): -0.69 / 1 < -0.71 / 3 -- the long one wins
    long = gen.beam_search(step_fn, [[3]], length_penalty=1.0, **kwargs)
    np.testing.assert_array_equal(long, [[3, 1, 2, 0]])
    # a batch mixes lengths: the short row is padded
    both = gen.beam_search(step_fn, [[3], [2]], length_penalty=0.0, **kwargs)
    np.testing.assert_array_equal(both, [[3, 0], [2, 0]])
    both = gen.beam_search(step_fn, [[3], [2]], length_penalty=1.0, **kwargs)
    np.testing.assert_array_equal(both, [[3, 1, 2, 0], [2, 0, 7, 7]])


def test_early_stop_waits_for_hypotheses_the_length_penalty_may_still_prefer():
    # from 3: eos (0) with 0.9 finishes at score log 0.9 = -0.105 after one step; the open beam
    # [1] has sum log 0.1 = -2.3, which at length 2 could only reach -2.3 / 4 -- but it runs on
    # almost surely (2 -> 2) and at the length limit scores about -2.3 / 6**2 = -0.064: it wins,
    # so the search must not stop when the best finished hypothesis beats the open beams at their
    # current length (the bound uses the maximum length when length_penalty > 0)
    probs = np.full((4, 4), 1e-3)
    probs[3, 0], probs[3, 1] = 0.9, 0.1
    probs[1, 2] = probs[2, 2] = 0.999
    step_fn = bigram_step(np.log(probs))
    kwargs = {"max_new_tokens": 6, "eos_token_id": 0, "num_beams": 2}
    out = gen.beam_search(step_fn, [[3]], length_penalty=2.0, **kwargs)
    np.testing.assert_array_equal(out, [[3, 1, 2, 2, 2, 2, 2]])
    np.testing.assert_array_equal(gen.beam_search(step_fn, [[3]], **kwargs), [[3, 0]])


def test_beam_reorders_the_cache_along_with_the_beams():
    table = random_table(7, (5, 5, 5), scale=1.5)
    prompts = np.array([[1, 2], [4, 0], [3, 3]])
    record: list = []
    kwargs = {"max_new_tokens": 5, "eos_token_id": 4, "num_beams": 3, "length_penalty": 0.5}
    cached = gen.beam_search(cached_trigram_step(table, record), prompts, **kwargs)
    recomputed = gen.beam_search(gen.recompute_step(trigram_logits(table)), prompts, **kwargs)
    np.testing.assert_array_equal(cached, recomputed)
    # the prompt is fed once per row; afterwards each call sees batch * beams rows
    assert record[0].shape == (3, 2)
    assert all(h.shape == (9, 2 + i) for i, h in enumerate(record[1:], start=1))
    # the history the cache carried must be the true prefixes: every prefix of each returned
    # hypothesis was an open beam of its row when it was fed
    for row in range(3):
        tail = cached[row, 2:].tolist()
        for i in range(1, len(tail)):
            if i >= len(record) or tail[i - 1] == 4:
                break
            beams = record[i][3 * row : 3 * row + 3]
            prefix = np.array(prompts[row].tolist() + tail[:i])
            assert (beams == prefix).all(axis=1).any(), (row, i)


# ----------------------------------------------------------------------------- sampling


def test_sampling_is_reproducible_from_a_seed():
    table = random_table(1, (6, 6), scale=0.5)
    step_fn = bigram_step(table)
    prompt = [[0]] * 4
    a = gen.sample(step_fn, prompt, max_new_tokens=20, seed=3)
    b = gen.generate(step_fn, prompt, max_new_tokens=20, method="sample", seed=3)
    c = gen.sample(step_fn, prompt, max_new_tokens=20, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # a Generator is used (and advanced) as given
    rng = np.random.default_rng(3)
    np.testing.assert_array_equal(gen.sample(step_fn, prompt, max_new_tokens=20, seed=rng), a)
    assert not np.array_equal(gen.sample(step_fn, prompt, max_new_tokens=20, seed=rng), a)


def _one_step(logits: np.ndarray, draws: int, **options) -> np.ndarray:
    """``draws`` independent first tokens, one per row of a batch (one vectorized call)."""
    step_fn = bigram_step(logits[None, :])
    out = gen.sample(step_fn, np.zeros((draws, 1), int), max_new_tokens=1, seed=0, **options)
    return out[:, 1]


# the chi-square statistic stays below the 0.999 quantile (df = 4, 2 and 2: 18.47, 13.82)
def test_sampled_frequencies_match_the_temperature_scaled_distribution():
    logits = np.array([1.0, 0.2, -0.5, 0.7, -2.0])
    for temperature, bound in ((1.0, 18.47), (0.5, 18.47), (3.0, 18.47)):
        probs = np.exp(_log_softmax(logits / temperature))
        tokens = _one_step(logits, 20000, temperature=temperature)
        assert _chi_square(tokens, probs) < bound, temperature


def test_top_k_keeps_only_the_k_best():
    logits = np.array([0.3, 2.0, -1.0, 1.5, 0.9, 0.0, 1.2, -0.3])
    tokens = _one_step(logits, 6000, top_k=3)
    assert set(np.unique(tokens)) == {1, 3, 6}
    probs = np.zeros(8)
    probs[[1, 3, 6]] = np.exp(_log_softmax(logits[[1, 3, 6]]))
    assert _chi_square(tokens, probs) < 13.82


@pytest.mark.parametrize(
    "top_p, temperature, nucleus",
    [(0.4, 1.0, [0]), (0.75, 1.0, [0, 1]), (0.9, 1.0, [0, 1, 2]), (0.75, 4.0, [0, 1, 2])],
)
def test_top_p_keeps_the_nucleus_only(top_p, temperature, nucleus):
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    # the nucleus of the temperature-scaled distribution: probabilities 0.5, 0.3, 0.15 and
    # 0.05 at T = 1; flattened to ~0.32, 0.28, 0.23, 0.17 at T = 4, so 0.75 needs three tokens
    tokens = _one_step(logits, 6000, top_p=top_p, temperature=temperature)
    assert sorted(np.unique(tokens).tolist()) == nucleus
    probs = np.zeros(4)
    probs[nucleus] = np.exp(_log_softmax(logits[nucleus] / temperature))
    assert _chi_square(tokens, probs) < 13.82


def test_top_k_then_top_p_and_at_least_one_token():
    logits = np.log(np.array([0.05, 0.5, 0.3, 0.15]))
    # top_k=2 keeps {1, 2} renormalised to 0.625 / 0.375; top_p=0.7 then needs both
    tokens = _one_step(logits, 2000, top_k=2, top_p=0.7)
    assert sorted(np.unique(tokens).tolist()) == [1, 2]
    # a tiny top_p still keeps the most likely token
    assert (_one_step(logits, 200, top_p=1e-9) == 1).all()


def test_tiny_temperature_equals_greedy():
    table = random_table(2, (6, 6))
    prompt = [[0], [1], [2], [5]]
    kwargs = {"max_new_tokens": 8, "eos_token_id": 3, "pad_token_id": 0}
    greedy = gen.greedy_search(bigram_step(table), prompt, **kwargs)
    cold = gen.sample(bigram_step(table), prompt, temperature=1e-6, seed=0, **kwargs)
    np.testing.assert_array_equal(cold, greedy)


def test_sample_scores_are_model_log_probabilities():
    table = random_table(3, (5, 5))
    options = {"temperature": 0.7, "seed": 1, "eos_token_id": 2, "return_scores": True}
    tokens, scores = gen.sample(bigram_step(table), [[0], [4]], max_new_tokens=6, **options)
    logp = _log_softmax(table)
    for row in range(2):
        for n in range(tokens.shape[1] - 1):
            prev, token = tokens[row, n], tokens[row, n + 1]
            ended = 2 in tokens[row, 1 : n + 1].tolist()
            expected = 0.0 if ended else logp[prev, token]
            np.testing.assert_allclose(scores[row, n], expected, rtol=1e-12)


# ----------------------------------------------------------------------------- recompute


@pytest.mark.parametrize(
    "options",
    [
        {"method": "greedy"},
        {"method": "sample", "seed": 5, "temperature": 1.3, "top_k": 4},
        {"method": "sample", "seed": 6, "top_p": 0.8},
        {"method": "beam", "num_beams": 3},
    ],
)
def test_recompute_step_matches_a_cached_step_fn(options):
    table = random_table(4, (6, 6, 6))
    prompts = np.array([[0, 1], [2, 3], [5, 5], [4, 0]])
    kwargs = {"max_new_tokens": 6, "eos_token_id": 1, **options}
    cached = gen.generate(cached_trigram_step(table), prompts, **kwargs)
    recomputed = gen.generate(gen.recompute_step(trigram_logits(table)), prompts, **kwargs)
    np.testing.assert_array_equal(cached, recomputed)
    assert cached.shape[1] > 2


def test_recompute_step_cache_is_the_sequence():
    seen = []
    step_fn = gen.recompute_step(lambda seq: seen.append(seq.copy()) or np.zeros((len(seq), 3)))
    gen.generate(step_fn, [[2, 1]], max_new_tokens=3)
    assert [s.tolist() for s in seen] == [[[2, 1]], [[2, 1, 0]], [[2, 1, 0, 0]]]


# ----------------------------------------------------------------------------- errors


TABLE = np.zeros((4, 4))
STEP = bigram_step(TABLE)


@pytest.mark.parametrize(
    "args, kwargs, error, pattern",
    [
        ((STEP, [[0]]), {"max_new_tokens": -1}, ValueError, "max_new_tokens must be >= 0"),
        ((STEP, [[0]]), {"max_new_tokens": 2.5}, TypeError, "max_new_tokens must be an int"),
        ((STEP, [0, 1]), {"max_new_tokens": 1}, ValueError, r"prompt must be 2-D.*\(2,\)"),
        ((STEP, [[0.5]]), {"max_new_tokens": 1}, TypeError, "prompt must hold integer.*float"),
        ((STEP, [[0, 1], [2]]), {"max_new_tokens": 1}, ValueError, "prompt .*equal-length"),
        ((STEP, [[-1]]), {"max_new_tokens": 1}, ValueError, "prompt token ids must be >= 0"),
        ((STEP, np.zeros((2, 0), int)), {"max_new_tokens": 1}, ValueError, "at least one"),
        (("model", [[0]]), {"max_new_tokens": 1}, TypeError, "step_fn must be callable"),
        (
            (STEP, [[0]]),
            {"max_new_tokens": 1, "method": "sample", "temperature": 0.0},
            ValueError,
            "temperature must be > 0, got 0.0",
        ),
        (
            (STEP, [[0]]),
            {"max_new_tokens": 1, "method": "sample", "top_p": 0.0},
            ValueError,
            r"top_p must be in \(0, 1\], got 0.0",
        ),
        (
            (STEP, [[0]]),
            {"max_new_tokens": 1, "method": "sample", "top_p": 1.5},
            ValueError,
            "top_p must be in",
        ),
        (
            (STEP, [[0]]),
            {"max_new_tokens": 1, "method": "sample", "top_k": 0},
            ValueError,
            "top_k must be >= 1, got 0",
        ),
        (
            (STEP, [[0]]),
            {"max_new_tokens": 1, "method": "sample", "seed": "abc"},
            TypeError,
            "seed must be",
        ),
        (
            (STEP, [[0]]),
            {"max_new_tokens": 1, "method": "beam", "num_beams": 0},
            ValueError,
            "num_beams must be >= 1, got 0",
        ),
        ((STEP, [[0]]), {"max_new_tokens": 1, "method": "topk"}, ValueError, "method must be"),
        (
            (STEP, [[0]]),
            {"max_new_tokens": 1, "top_k": 3},
            ValueError,
            "top_k is not used by method='greedy'",
        ),
        (
            (STEP, [[0]]),
            {"max_new_tokens": 1, "method": "sample", "num_beams": 2},
            ValueError,
            "num_beams is not used by method='sample'",
        ),
        (
            (STEP, [[0]]),
            {"max_new_tokens": 1, "eos_token_id": 4},
            ValueError,
            "eos_token_id must be < the vocabulary size 4",
        ),
    ],
)
def test_bad_options_name_the_argument(args, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        gen.generate(*args, **kwargs)


@pytest.mark.parametrize("method", ["greedy", "sample", "beam"])
def test_bad_logits_name_the_step(method):
    calls = []

    def step_fn(new_tokens, cache):
        calls.append(1)
        vocab = 5 if len(calls) == 3 else 4  # a wrong vocabulary at the third call (step 2)
        return np.zeros((new_tokens.shape[0], vocab)), None

    with pytest.raises(ValueError, match=r"step_fn must return logits .*got shape .* at step 2"):
        gen.generate(step_fn, [[0]], max_new_tokens=5, method=method)
    with pytest.raises(ValueError, match=r"got shape \(3,\) at the prompt call \(step 0\)"):
        gen.generate(lambda t, c: (np.zeros(3), None), [[0]], max_new_tokens=2, method=method)
    with pytest.raises(ValueError, match="NaN or \\+inf logits at the prompt call"):
        gen.generate(lambda t, c: (np.full((1, 3), np.nan), None), [[0]], max_new_tokens=2)


def test_cache_leaves_must_have_the_batch_on_axis_0():
    def step_fn(new_tokens, cache):
        return np.zeros((new_tokens.shape[0], 3)), {"h": np.zeros((7, 2))}

    with pytest.raises(ValueError, match=r"cache leaf .*axis 0 is the batch \(2 rows\)"):
        gen.beam_search(step_fn, [[0], [1]], max_new_tokens=2, num_beams=2)
