"""Tests for ember.text: Keras' pad_sequences, CharVocabulary and the byte-level BPE tokenizer."""

from __future__ import annotations

import collections
import json
import os
import unicodedata

import numpy as np
import pytest

import ember.text as text_module
from ember.text import BytePairTokenizer, CharVocabulary, pad_sequences

# Strings every tokenizer must round-trip exactly.
ROUND_TRIP_TEXTS = [
    "",
    "a",
    "Hello, world! 123",
    "  leading and trailing spaces  ",
    "tabs\tand\nnew\r\nlines\n\n",
    "naïve café — “quotes” …",
    "e\u0301 o\u0308 a\u030a\u0323",  # combining marks on plain letters
    unicodedata.normalize("NFD", "Ångström façade"),
    "emoji 😀 👩‍👩‍👧‍👦 🏳️‍🌈 👍🏽",  # ZWJ sequences, flag, skin tone
    "日本語のテキスト, 中文, 한국어",
    "עברית ومرحبا",  # right-to-left scripts
    "snake_case __dunder__ x_1",
    "nul\x00byte and \x7f del",
    "\ud800 lone surrogates \udfff",  # valid in a Python str, not in strict UTF-8
]


# ------------------------------------------------------------------------------ pad_sequences
SEQS = [[1], [2, 3], [4, 5, 6, 7]]
# Hand-computed, following keras.utils.pad_sequences' documented behaviour.
HAND = {
    ("pre", "pre", 3): [[0, 0, 1], [0, 2, 3], [5, 6, 7]],
    ("pre", "post", 3): [[0, 0, 1], [0, 2, 3], [4, 5, 6]],
    ("post", "pre", 3): [[1, 0, 0], [2, 3, 0], [5, 6, 7]],
    ("post", "post", 3): [[1, 0, 0], [2, 3, 0], [4, 5, 6]],
    ("pre", "pre", None): [[0, 0, 0, 1], [0, 0, 2, 3], [4, 5, 6, 7]],
    ("post", "post", None): [[1, 0, 0, 0], [2, 3, 0, 0], [4, 5, 6, 7]],
    ("pre", "pre", 1): [[1], [3], [7]],
    ("pre", "post", 1): [[1], [2], [4]],
    ("post", "pre", 5): [[1, 0, 0, 0, 0], [2, 3, 0, 0, 0], [4, 5, 6, 7, 0]],
    ("pre", "post", 5): [[0, 0, 0, 0, 1], [0, 0, 0, 2, 3], [0, 4, 5, 6, 7]],
}


@pytest.mark.parametrize("padding,truncating,maxlen", sorted(HAND, key=str))
def test_pad_sequences_hand_computed(padding, truncating, maxlen):
    out = pad_sequences(SEQS, maxlen=maxlen, padding=padding, truncating=truncating)
    assert out.dtype == np.int32
    assert out.tolist() == HAND[(padding, truncating, maxlen)]


def test_pad_sequences_keras_docstring_examples():
    seqs = [[1], [2, 3], [4, 5, 6]]
    assert pad_sequences(seqs).tolist() == [[0, 0, 1], [0, 2, 3], [4, 5, 6]]
    assert pad_sequences(seqs, value=-1).tolist() == [[-1, -1, 1], [-1, 2, 3], [4, 5, 6]]
    assert pad_sequences(seqs, padding="post").tolist() == [[1, 0, 0], [2, 3, 0], [4, 5, 6]]
    assert pad_sequences(seqs, maxlen=2).tolist() == [[0, 1], [2, 3], [5, 6]]


def _reference_pad(seqs, maxlen, padding, truncating, value, dtype):
    """A plain per-element loop with Keras' semantics, to check the vectorized scatter."""
    maxlen = max(len(s) for s in seqs) if maxlen is None else maxlen
    out = np.full((len(seqs), maxlen), value, dtype=dtype)
    for i, s in enumerate(seqs):
        kept = list(s)[len(s) - min(len(s), maxlen) :] if truncating == "pre" else list(s)
        kept = kept[:maxlen]
        start = maxlen - len(kept) if padding == "pre" else 0
        for j, v in enumerate(kept):
            out[i, start + j] = v
    return out


@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("truncating", ["pre", "post"])
def test_pad_sequences_matches_reference_on_random_ragged_input(padding, truncating):
    rng = np.random.default_rng(0)
    seqs = [list(rng.integers(1, 100, size=n)) for n in rng.integers(0, 12, size=60)]
    for maxlen in (None, 0, 1, 5, 11, 20):
        got = pad_sequences(seqs, maxlen, padding=padding, truncating=truncating, value=-7)
        want = _reference_pad(seqs, maxlen, padding, truncating, -7, "int32")
        np.testing.assert_array_equal(got, want)


def test_pad_sequences_dtypes_and_casting():
    out = pad_sequences([[1.5, 2.75], [3.25]], dtype="float32", value=0.5)
    assert out.dtype == np.float32
    assert out.tolist() == [[1.5, 2.75], [0.5, 3.25]]
    # float values into the default int32 truncate toward zero, as np.asarray(..., int32) does
    assert pad_sequences([[1.9, -2.9]]).tolist() == [[1, -2]]
    assert pad_sequences([[1]], dtype="int64", maxlen=3).dtype == np.int64
    assert pad_sequences([[1]], dtype=np.float64, maxlen=2, value=np.nan)[0, 0] != 0
    assert pad_sequences([[1, 2]], dtype=bool, maxlen=3).tolist() == [[False, True, True]]


def test_pad_sequences_strings_with_object_and_str_dtypes():
    seqs = [["the", "cat"], ["a"], []]
    out = pad_sequences(seqs, dtype=object, value="<pad>", padding="post")
    assert out.dtype == object
    assert out.tolist() == [["the", "cat"], ["a", "<pad>"], ["<pad>", "<pad>"]]
    # a str value is also allowed with a str dtype (fixed width, as in NumPy)
    out = pad_sequences([["ab"], ["cd", "ef"]], dtype="<U2", value="--")
    assert out.tolist() == [["--", "ab"], ["cd", "ef"]]


def test_pad_sequences_keeps_the_trailing_shape_of_vectors():
    seqs = [[[1, 2], [3, 4], [5, 6]], [[7, 8]], []]
    out = pad_sequences(seqs, maxlen=2, dtype="float32", value=-1.0)
    assert out.shape == (3, 2, 2)
    assert out.tolist() == [
        [[3, 4], [5, 6]],
        [[-1, -1], [7, 8]],
        [[-1, -1], [-1, -1]],
    ]
    post = pad_sequences(seqs, padding="post", truncating="post", maxlen=2)
    assert post.tolist() == [[[1, 2], [3, 4]], [[7, 8], [0, 0]], [[0, 0], [0, 0]]]
    # maxlen=0 still reports the trailing shape (Keras' slicing s[-0:] breaks there)
    assert pad_sequences(seqs, maxlen=0).shape == (3, 0, 2)


def test_pad_sequences_accepts_arrays_tuples_ranges_and_deques():
    ragged = np.empty(3, dtype=object)
    ragged[:] = [np.array([1, 2, 3]), np.array([4]), np.array([], dtype=np.int64)]
    assert pad_sequences(ragged).tolist() == [[1, 2, 3], [0, 0, 4], [0, 0, 0]]
    assert pad_sequences(np.arange(6).reshape(2, 3), maxlen=2).tolist() == [[1, 2], [4, 5]]
    mixed = [(1, 2), range(3, 6), collections.deque([7, 8, 9, 10])]
    assert pad_sequences(mixed, maxlen=3).tolist() == [[0, 1, 2], [3, 4, 5], [8, 9, 10]]


def test_pad_sequences_empty_inputs():
    assert pad_sequences([]).shape == (0, 0)
    assert pad_sequences([], maxlen=4).shape == (0, 4)
    assert pad_sequences([[], []]).shape == (2, 0)
    assert pad_sequences([[], [], [5]]).tolist() == [[0], [0], [5]]
    assert pad_sequences([[1, 2], [3]], maxlen=0).shape == (2, 0)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"padding": "middle"}, ValueError, r'padding must be "pre" or "post"'),
        ({"truncating": "both"}, ValueError, r'truncating must be "pre" or "post"'),
        ({"padding": None}, ValueError, "padding"),
        ({"maxlen": -1}, ValueError, "maxlen must be >= 0"),
        ({"maxlen": 2.0}, TypeError, "maxlen must be None or an int"),
        ({"maxlen": True}, TypeError, "maxlen"),
        ({"value": "x"}, ValueError, "not compatible with the str padding value"),
        ({"dtype": "not-a-dtype"}, TypeError, "is not a NumPy dtype"),
        ({"dtype": "int32", "value": None}, ValueError, "cannot fill"),
    ],
)
def test_pad_sequences_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        pad_sequences([[1, 2]], **kwargs)


@pytest.mark.parametrize(
    "sequences,error,match",
    [
        ("abc", ValueError, "must be a list"),
        (5, ValueError, "must be a list"),
        ((x for x in [[1]]), ValueError, "must be a list"),
        ([[1], 2], ValueError, "position 1 is of type int"),
        (["ab", "c"], TypeError, "position 0 is a str"),
        ([[1, 2], [[1, 2]]], ValueError, "shape of sample"),
        ([[[1, 2]], [[1, 2, 3]]], ValueError, r"different from the expected shape \(2,\)"),
        ([[1], ["x"]], ValueError, "cannot be converted to dtype"),
    ],
)
def test_pad_sequences_bad_sequences(sequences, error, match):
    with pytest.raises(error, match=match):
        pad_sequences(sequences)


# ------------------------------------------------------------------------------ CharVocabulary
def test_char_vocabulary_id_layout():
    vocab = CharVocabulary(special_tokens=["<bos>", "<eos>"]).fit(["hello", "world"])
    assert vocab.get_vocabulary() == ["<pad>", "<unk>", "<bos>", "<eos>", *"dehlorw"]
    assert vocab.vocab_size == 11
    assert (vocab.pad_id, vocab.unk_id) == (0, 1)
    assert vocab.token_to_id("<bos>") == 2 and vocab.token_to_id("w") == 10
    assert vocab.id_to_token(4) == "d"
    assert vocab.characters == tuple("dehlorw")
    assert vocab.encode("held").tolist() == [6, 5, 7, 4]


@pytest.mark.parametrize("text", ROUND_TRIP_TEXTS)
def test_char_vocabulary_round_trip(text):
    vocab = CharVocabulary().fit(text)
    ids = vocab.encode(text)
    assert ids.dtype == np.int32 and ids.shape == (len(text),)
    assert vocab.decode(ids) == text
    assert vocab.unk_id not in ids.tolist()


def test_char_vocabulary_unknown_characters_and_specials():
    vocab = CharVocabulary(special_tokens=["<bos>", "<eos>"]).fit("abc")
    ids = vocab.encode("a😀c", add_bos=True, add_eos=True)
    assert ids.tolist() == [2, 4, 1, 6, 3]
    assert vocab.decode(ids) == "<bos>a<unk>c<eos>"
    assert vocab.decode(ids, skip_special_tokens=True) == "ac"
    # the string "<bos>" in a text is five characters, never the special token
    assert vocab.encode("<bos>").tolist() == [1, 5, 1, 1, 1]
    with pytest.raises(ValueError, match="add_bos=True needs '<bos>'"):
        CharVocabulary().fit("a").encode("a", add_bos=True)


def test_char_vocabulary_encode_matches_a_dictionary_lookup():
    rng = np.random.default_rng(1)
    alphabet = [chr(c) for c in rng.choice(0x2FFF, size=300, replace=False) + 32]
    fitted = alphabet[:200]
    text = "".join(rng.choice(alphabet, size=20_000))
    vocab = CharVocabulary().fit(fitted)
    table = {ch: i for i, ch in enumerate(vocab.get_vocabulary())}
    want = [table.get(ch, 1) for ch in text]
    assert vocab.encode(text).tolist() == want


def test_char_vocabulary_refit_replaces_and_empty_fit():
    vocab = CharVocabulary().fit("abc").fit("xy")
    assert vocab.get_vocabulary() == ["<pad>", "<unk>", "x", "y"]
    empty = CharVocabulary().fit([])
    assert empty.vocab_size == 2
    assert empty.encode("ab").tolist() == [1, 1]
    assert empty.encode("").tolist() == []


def test_char_vocabulary_errors():
    with pytest.raises(RuntimeError, match="before fit"):
        CharVocabulary().encode("a")
    with pytest.raises(TypeError, match="expected a string or an iterable"):
        CharVocabulary().fit(3)
    with pytest.raises(TypeError, match="at position 1"):
        CharVocabulary().fit(["a", b"b"])
    vocab = CharVocabulary().fit("ab")
    with pytest.raises(TypeError, match="text must be a str"):
        vocab.encode(["a"])
    with pytest.raises(ValueError, match=r"ids must be in \[0, 4\), got 4 at position 1"):
        vocab.decode([2, 4])
    with pytest.raises(ValueError, match="1-D sequence of integers"):
        vocab.decode([1.0, 2.0])
    with pytest.raises(ValueError, match="1-D sequence of integers"):
        vocab.decode([[2, 3]])
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.token_to_id("z")
    with pytest.raises(ValueError, match=r"id must be in \[0, 4\)"):
        vocab.id_to_token(9)
    with pytest.raises(TypeError, match="expected an int"):
        vocab.id_to_token(True)


@pytest.mark.parametrize(
    "special,match",
    [
        (["x"], "2 to 256 characters"),
        (["<unk>"], "reserved"),
        (["<pad>"], "reserved"),
        (["<a>", "<a>"], "unique"),
        ("<bos>", "must be a list of strings"),
        ([None], "2 to 256 characters"),
    ],
)
def test_char_vocabulary_bad_special_tokens(special, match):
    with pytest.raises((TypeError, ValueError), match=match):
        CharVocabulary(special_tokens=special)


def test_char_vocabulary_config_and_save_load_round_trip(tmp_path):
    vocab = CharVocabulary(["<bos>", "<eos>"]).fit(ROUND_TRIP_TEXTS)
    clone = CharVocabulary.from_config(json.loads(json.dumps(vocab.get_config())))
    assert clone.get_vocabulary() == vocab.get_vocabulary()
    path = tmp_path / "sub" / "vocab.json"
    vocab.save(path)
    vocab.save(path)  # overwriting works and leaves no temporary file behind
    assert sorted(p.name for p in path.parent.iterdir()) == ["vocab.json"]
    loaded = CharVocabulary.load(path)
    assert loaded.get_vocabulary() == vocab.get_vocabulary()
    for text in ROUND_TRIP_TEXTS:
        assert loaded.decode(loaded.encode(text)) == text
    assert json.loads(path.read_text())["format"] == "ember.text.CharVocabulary"


def _write(path, payload) -> str:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    path.write_text(text, encoding="utf-8")
    return os.fspath(path)


def _char_payload(**config):
    base = {"special_tokens": [], "characters": ["a", "b"]}
    base.update(config)
    return {"format": "ember.text.CharVocabulary", "version": 1, "config": base}


@pytest.mark.parametrize(
    "payload,match",
    [
        ("{not json", "not a valid JSON file"),
        ("[1, 2]", "must hold a JSON object"),
        ({"format": "ember.text.CharVocabulary", "version": 1}, "keys format, version"),
        ({**_char_payload(), "format": "pickle"}, "holds format 'pickle'"),
        ({**_char_payload(), "version": 2}, "has version 2"),
        ({**_char_payload(), "version": True}, "has version True"),
        (_char_payload(characters=["ab"]), "one-character string"),
        (_char_payload(characters=["a", "a"]), "unique"),
        (_char_payload(characters="ab"), "list of one-character strings"),
        (_char_payload(characters=[1]), "one-character string"),
        (_char_payload(special_tokens=["<pad>"]), "reserved"),
        ({**_char_payload(), "config": {"characters": []}}, "config must be a dict"),
        ({**_char_payload(), "config": []}, "config must be a dict"),
        (
            '{"format": "ember.text.CharVocabulary", "version": 1, "version": 1, "config": {}}',
            "duplicate JSON keys",
        ),
    ],
)
def test_char_vocabulary_load_rejects_corrupt_files(tmp_path, payload, match):
    path = _write(tmp_path / "v.json", payload)
    with pytest.raises(ValueError, match=match):
        CharVocabulary.load(path)


def test_load_rejects_missing_oversized_and_non_utf8_files(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="no such file"):
        CharVocabulary.load(tmp_path / "missing.json")
    path = tmp_path / "v.json"
    path.write_bytes(b"\xff\xfe{}")
    with pytest.raises(ValueError, match="not a valid JSON file"):
        BytePairTokenizer.load(path)
    CharVocabulary().fit("abc").save(path)
    monkeypatch.setattr(text_module, "MAX_FILE_BYTES", 10)
    with pytest.raises(ValueError, match="over the 10-byte limit"):
        CharVocabulary.load(path)


# ------------------------------------------------------------------------------ BPE: pieces
def test_pre_split_is_lossless_and_gpt2_like():
    split = text_module._split_pieces
    assert split("Hello world, it's 2024!!  ok\n") == [
        "Hello",
        " world",
        ",",
        " it",
        "'",
        "s",
        " 2024",
        "!!",
        " ",
        " ok",
        "\n",
    ]
    rng = np.random.default_rng(2)
    pool = list("ab Z9_ \t\n.,'!") + ["é", "\u0301", "😀", "\u200d", "日", "\x00", "\ud800"]
    for _ in range(200):
        s = "".join(rng.choice(pool, size=int(rng.integers(0, 30))))
        assert "".join(split(s)) == s


# ------------------------------------------------------------------------------ BPE: training
def test_bpe_learns_hand_checked_merges():
    # Piece counts: "low" x3, " lower" x3, " lowest" x3. Pair counts: (l,o)=(o,w)=9 tie ->
    # the smaller ids (l,o) first; then (lo,w)=9; then (" ",low)=6 ties (low,e)=6 -> " low".
    tok = BytePairTokenizer().fit(["low lower lowest"] * 3, vocab_size=262)
    assert [tok.id_to_token(i) for i in range(259, 262)] == [b"lo", b"low", b" low"]
    off = 3  # byte b has id 3 + b (after <pad>, <bos>, <eos>)
    assert tok.merges == [(off + 108, off + 111), (259, off + 119), (off + 32, 260)]
    assert tok.encode("lowest").tolist() == [260, off + ord("e"), off + ord("s"), off + ord("t")]
    assert tok.encode(" low").tolist() == [261]


def test_bpe_min_frequency_and_tie_breaking():
    # "aaab" + " aab": (a,a) occurs 3 times -> "aa"; afterwards every pair occurs once.
    stopped = BytePairTokenizer(special_tokens=[]).fit("aaab aab", vocab_size=300)
    assert [stopped.id_to_token(i) for i in range(257, stopped.vocab_size)] == [b"aa"]
    # With min_frequency=1 the ties go to the smallest (left, right) id pair:
    # (" ", aa) < (a, b) < (aa, ab) < (" aa", b).
    full = BytePairTokenizer(special_tokens=[]).fit("aaab aab", vocab_size=300, min_frequency=1)
    tokens = [full.id_to_token(i) for i in range(257, full.vocab_size)]
    assert tokens == [b"aa", b" aa", b"ab", b"aaab", b" aab"]
    assert full.encode("aaab aab").tolist() == [260, 261]
    assert BytePairTokenizer(special_tokens=[]).fit("aaab aab", 258, 1).vocab_size == 258


def _naive_merges(text, first, num_merges, min_frequency):
    """Textbook BPE: recount every pair over all pieces before each merge."""
    counts = collections.Counter(
        p.encode("utf-8", "surrogatepass") for p in text_module._split_pieces(text)
    )
    words = {w: [first + b for b in w] for w in counts}
    merges = []
    for _ in range(num_merges):
        pairs = collections.Counter()
        for w, ids in words.items():
            for pair in zip(ids, ids[1:]):
                pairs[pair] += counts[w]
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        if pairs[best] < min_frequency:
            break
        new_id = first + 256 + len(merges)
        merges.append(best)
        for w, ids in words.items():
            out, i = [], 0
            while i < len(ids):
                if ids[i : i + 2] == list(best):
                    out.append(new_id)
                    i += 2
                else:
                    out.append(ids[i])
                    i += 1
            words[w] = out
    return merges


def _naive_encode(tok, text):
    """Apply the merges one after another, in the order learned, to each piece."""
    first = 1 + len(tok.special_tokens)
    out = []
    for piece in text_module._split_pieces(text):
        ids = [first + b for b in piece.encode("utf-8", "surrogatepass")]
        for k, pair in enumerate(tok.merges):
            merged, i = [], 0
            while i < len(ids):
                if tuple(ids[i : i + 2]) == pair:
                    merged.append(first + 256 + k)
                    i += 2
                else:
                    merged.append(ids[i])
                    i += 1
            ids = merged
        out.extend(ids)
    return out


def _random_text(rng, n_words, alphabet="abcdeéfg😀"):
    stems = ["".join(rng.choice(list(alphabet), size=int(rng.integers(1, 7)))) for _ in range(80)]
    zipf = 1.0 / np.arange(1, len(stems) + 1)
    words = rng.choice(stems, size=n_words, p=zipf / zipf.sum())
    seps = rng.choice([" ", " ", " ", ", ", ".\n", "  "], size=n_words)
    return "".join(w + s for w, s in zip(words, seps))


@pytest.mark.parametrize("seed", [0, 1])
def test_bpe_incremental_training_matches_textbook_bpe(seed):
    rng = np.random.default_rng(seed)
    text = _random_text(rng, 1500)
    tok = BytePairTokenizer().fit(text, vocab_size=259 + 60, min_frequency=2)
    assert len(tok.merges) == 60
    assert tok.merges == _naive_merges(text, 3, 60, 2)
    assert tok.vocab_size == 259 + len(tok.merges)
    # encoding (lowest-rank-first per piece, cached) equals applying merges in order
    probe = _random_text(np.random.default_rng(seed + 10), 300)
    assert tok.encode(probe).tolist() == _naive_encode(tok, probe)
    assert tok.encode(probe).tolist() == _naive_encode(tok, probe)  # second call: cached


def test_bpe_fit_on_a_megabyte_and_vocab_1000():
    rng = np.random.default_rng(3)
    letters = list("etaoinshrdlucmfwypvbgkjqxz")
    freq = 1.0 / np.arange(1, len(letters) + 1)
    stems = [
        "".join(rng.choice(letters, size=int(rng.integers(1, 9)), p=freq / freq.sum()))
        for _ in range(5000)
    ]
    zipf = 1.0 / np.arange(1, len(stems) + 1) ** 1.1
    words = rng.choice(stems, size=200_000, p=zipf / zipf.sum())
    text = " ".join(words)[:1_000_000]
    assert len(text) == 1_000_000
    tok = BytePairTokenizer().fit(text, vocab_size=1000)
    assert tok.vocab_size == 1000
    ids = tok.encode(text)
    assert ids.dtype == np.int32 and ids.max() < 1000
    assert len(ids) < len(text) / 2.5  # merges compress the common words
    assert tok.decode(ids) == text


def test_bpe_never_builds_tokens_over_the_size_limit(monkeypatch):
    monkeypatch.setattr(text_module, "MAX_TOKEN_BYTES", 4)
    tok = BytePairTokenizer().fit(["a" * 64] * 3, vocab_size=300)
    lengths = [len(tok.id_to_token(i)) for i in range(259, tok.vocab_size)]
    assert lengths == [2, 4]
    assert tok.decode(tok.encode("a" * 64)) == "a" * 64


def test_bpe_fit_argument_errors():
    tok = BytePairTokenizer()
    with pytest.raises(ValueError, match=r"vocab_size must be in \[259, "):
        tok.fit("abc", vocab_size=258)
    with pytest.raises(TypeError, match="vocab_size must be an int"):
        tok.fit("abc", vocab_size=300.0)
    with pytest.raises(ValueError, match="min_frequency must be >= 1"):
        tok.fit("abc", vocab_size=300, min_frequency=0)
    with pytest.raises(TypeError, match="expected strings, got a bytes at position 0"):
        tok.fit([b"abc"], vocab_size=300)
    with pytest.raises(TypeError, match="text must be a str"):
        tok.encode(b"abc")
    with pytest.raises(TypeError, match="got a str"):
        tok.encode_batch("abc")


# ------------------------------------------------------------------------------ BPE: encoding
@pytest.fixture(scope="module")
def trained():
    return BytePairTokenizer().fit(ROUND_TRIP_TEXTS * 3 + ["the cat sat on the mat"] * 5, 400)


@pytest.mark.parametrize("text", ROUND_TRIP_TEXTS)
def test_bpe_round_trip(trained, text):
    untrained = BytePairTokenizer()
    for tok in (trained, untrained):
        ids = tok.encode(text)
        assert ids.dtype == np.int32
        assert tok.decode(ids) == text
    # without merges there is one id per UTF-8 byte
    assert len(untrained.encode(text)) == len(text.encode("utf-8", "surrogatepass"))


def test_bpe_cuts_very_long_pieces(trained):
    split = text_module._split_pieces
    assert [len(p) for p in split("x" * 600 + " yz")] == [256, 256, 88, 3]
    long_text = "ab" * 50_000 + " " + "\u00e9" * 1000
    assert trained.decode(trained.encode(long_text)) == long_text


def test_bpe_encode_uses_unseen_text_too(trained):
    text = "Zebras ❄ quietly jump; Ωmega 42"
    assert trained.decode(trained.encode(text)) == text


def test_bpe_special_tokens(trained):
    assert (trained.pad_id, trained.bos_id, trained.eos_id) == (0, 1, 2)
    ids = trained.encode("the cat", add_bos=True, add_eos=True)
    assert ids[0] == 1 and ids[-1] == 2
    assert trained.decode(ids) == "<bos>the cat<eos>"
    assert trained.decode([0, 0, *ids.tolist()], skip_special_tokens=True) == "the cat"
    # the text "<eos>" is encoded as bytes, never as the special id
    assert 2 not in trained.encode("<eos>").tolist()
    assert trained.token_to_id("<eos>") == 2 and trained.token_to_id("<pad>") == 0
    assert trained.id_to_token(1) == "<bos>"
    custom = BytePairTokenizer(special_tokens=["<sep>"])
    assert (custom.bos_id, custom.eos_id, custom.token_to_id("<sep>")) == (None, None, 1)
    assert custom.vocab_size == 258 and custom.token_to_id(b"\x00") == 2
    with pytest.raises(ValueError, match="add_eos=True needs '<eos>'"):
        custom.encode("x", add_eos=True)
    with pytest.raises(ValueError, match="reserved"):
        BytePairTokenizer(special_tokens=["<pad>"])


def test_bpe_token_lookups(trained):
    the = trained.token_to_id(" the")
    assert trained.id_to_token(the) == b" the"
    assert trained.token_to_id(b" the") == the
    assert trained.encode(" the").tolist() == [the]
    with pytest.raises(ValueError, match="not a single token"):
        trained.token_to_id("not one token at all")
    with pytest.raises(TypeError, match="expected str or bytes"):
        trained.token_to_id(5)
    with pytest.raises(ValueError, match=r"id must be in \[0, 400\)"):
        trained.id_to_token(400)


def test_bpe_decode_of_invalid_utf8_and_bad_ids(trained):
    e_acute = trained.encode("é").tolist()
    assert len(e_acute) >= 1
    lead = trained.token_to_id(b"\xc3")
    assert trained.decode([lead]) == "\ufffd"
    assert trained.decode([lead], errors="ignore") == ""
    with pytest.raises(UnicodeDecodeError):
        trained.decode([lead], errors="strict")
    with pytest.raises(ValueError, match=r"ids must be in \[0, 400\)"):
        trained.decode([5, -1])
    with pytest.raises(ValueError, match="1-D sequence of integers"):
        trained.decode(np.array([True]))
    assert trained.decode([]) == ""


def test_bpe_encode_batch_and_pad_sequences(trained):
    batch = trained.encode_batch(["the cat", "a", ""], add_eos=True)
    padded = pad_sequences(batch, padding="post", value=trained.pad_id)
    assert padded.shape == (3, max(len(b) for b in batch))
    for row, text in zip(padded, ["the cat", "a", ""]):
        assert trained.decode(row, skip_special_tokens=True) == text


# ------------------------------------------------------------------------------ BPE: files
def test_bpe_config_and_save_load_round_trip(trained, tmp_path):
    clone = BytePairTokenizer.from_config(json.loads(json.dumps(trained.get_config())))
    assert clone.merges == trained.merges and clone.special_tokens == trained.special_tokens
    path = tmp_path / "bpe.json"
    trained.save(path)
    loaded = BytePairTokenizer.load(os.fspath(path))
    assert loaded.merges == trained.merges and loaded.vocab_size == trained.vocab_size
    for text in ROUND_TRIP_TEXTS:
        np.testing.assert_array_equal(loaded.encode(text), trained.encode(text))
    assert [p.name for p in tmp_path.iterdir()] == ["bpe.json"]


def _bpe_payload(merges, special=("<bos>", "<eos>")):
    return {
        "format": "ember.text.BytePairTokenizer",
        "version": 1,
        "config": {"special_tokens": list(special), "merges": merges},
    }


@pytest.mark.parametrize(
    "payload,match",
    [
        (_bpe_payload([[100, 259]]), r"merge 0 must be a pair of ids .* in \[3, 259\)"),
        (_bpe_payload([[100, 101], [259, 260]]), r"merge 1 .* in \[3, 260\)"),
        (_bpe_payload([[1, 100]]), "merge 0 must be a pair"),  # a special token
        (_bpe_payload([[-1, 100]]), "merge 0 must be a pair"),
        (_bpe_payload([[100, True]]), "merge 0 must be a pair"),
        (_bpe_payload([[100, 101.0]]), "merge 0 must be a pair"),
        (_bpe_payload([[100, 101, 102]]), "merge 0 must be a pair"),
        (_bpe_payload(["ab"]), "merge 0 must be a pair"),
        (_bpe_payload([[100, 101], [100, 101]]), "merges must be unique"),
        (_bpe_payload({"a": 1}), "merges must be a list"),
        (_bpe_payload([], special=["<x>", "<x>"]), "unique"),
        (_bpe_payload([], special=["<pad>"]), "reserved"),
        ({**_bpe_payload([]), "format": "ember.text.CharVocabulary"}, "expected 'ember.text.Byte"),
        ({**_bpe_payload([]), "extra": 1}, "keys format, version"),
    ],
)
def test_bpe_load_rejects_corrupt_files(tmp_path, payload, match):
    path = _write(tmp_path / "bpe.json", payload)
    with pytest.raises(ValueError, match=match):
        BytePairTokenizer.load(path)


def test_bpe_load_bounds_sizes(tmp_path, monkeypatch):
    # 17 self-merges of the previous token would build a 2**17-byte token.
    bomb = [[100, 100]] + [[259 + k, 259 + k] for k in range(16)]
    path = _write(tmp_path / "bomb.json", _bpe_payload(bomb))
    with pytest.raises(ValueError, match="makes a token of 131072 bytes"):
        BytePairTokenizer.load(path)
    monkeypatch.setattr(text_module, "MAX_BPE_VOCAB", 260)
    path = _write(tmp_path / "big.json", _bpe_payload([[100, 101], [100, 102]]))
    with pytest.raises(ValueError, match="exceed the 260-id limit"):
        BytePairTokenizer.load(path)
