"""Text preprocessing: Keras' :func:`pad_sequences`, a character vocabulary and a byte-level BPE.

* :func:`pad_sequences` — pad or truncate ragged id lists into one ``(num_samples, maxlen)``
  array, with the signature, defaults and results of ``keras.utils.pad_sequences``.
* :class:`CharVocabulary` — one id per character, for character-level language models.
* :class:`BytePairTokenizer` — a small trainable byte-level byte-pair encoding (GPT-2 style):
  any string encodes and decodes back exactly, with no unknown token.

Both tokenizers reserve id 0 for padding (so ``pad_sequences``' default ``value=0`` pads with
it), save to and load from JSON (written atomically, validated completely on load, never
executed), and round-trip through ``get_config``/``from_config``.

Example:
    >>> from ember.text import CharVocabulary, pad_sequences
    >>> vocab = CharVocabulary().fit(["hello", "help"])
    >>> batch = pad_sequences([vocab.encode("he"), vocab.encode("hello")], padding="post")
    >>> batch.tolist()
    [[3, 2, 0, 0, 0], [3, 2, 4, 4, 5]]
    >>> vocab.decode(batch[0], skip_special_tokens=True)
    'he'
"""

from __future__ import annotations

import contextlib
import heapq
import json
import os
import re
import secrets
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["pad_sequences", "CharVocabulary", "BytePairTokenizer"]

PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"
BOS_TOKEN = "<bos>"
EOS_TOKEN = "<eos>"

# Bounds that a saved file must respect, so that a hostile or damaged file cannot make
# `load` allocate without limit (a chain of self-merges doubles a BPE token's length each time).
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_SPECIAL_TOKENS = 1024
MAX_SPECIAL_TOKEN_CHARS = 256
MAX_BPE_VOCAB = 1 << 20
MAX_TOKEN_BYTES = 1 << 16
MAX_TOTAL_TOKEN_BYTES = 1 << 28
_MAX_CODE_POINT = 0x10FFFF
# Per-word encoding cache of the BPE tokenizer; cleared when full (text has a long tail of words).
_CACHE_LIMIT = 200_000


# ------------------------------------------------------------------------------ pad_sequences
def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _check_choice(value: Any, name: str) -> None:
    if not (isinstance(value, str) and value in ("pre", "post")):
        raise ValueError(f'pad_sequences: {name} must be "pre" or "post", got {value!r}')


def _check_maxlen(maxlen: Any) -> int | None:
    if maxlen is None:
        return None
    if not _is_int(maxlen):
        raise TypeError(f"pad_sequences: maxlen must be None or an int, got {maxlen!r}")
    if maxlen < 0:
        raise ValueError(f"pad_sequences: maxlen must be >= 0, got {maxlen}")
    return int(maxlen)


def _check_dtype_and_value(dtype: Any, value: Any) -> np.dtype:
    try:
        resolved = np.dtype(dtype)
    except TypeError as err:
        raise TypeError(f"pad_sequences: dtype {dtype!r} is not a NumPy dtype ({err})") from None
    if isinstance(value, str) and resolved.kind not in "OSU":
        raise ValueError(
            f"pad_sequences: dtype {dtype!r} is not compatible with the str padding value "
            f"{value!r}; use dtype=object (or a str dtype) to pad sequences of strings"
        )
    return resolved


def _sequence_lengths(sequences: Any) -> np.ndarray:
    if isinstance(sequences, str | bytes) or not hasattr(sequences, "__len__"):
        raise ValueError(
            "pad_sequences: sequences must be a list (or array) of sequences, got "
            f"{type(sequences).__name__}"
        )
    lengths = np.zeros(len(sequences), dtype=np.int64)
    for i, seq in enumerate(sequences):
        if isinstance(seq, str | bytes):
            raise TypeError(
                f"pad_sequences: the sequence at position {i} is a {type(seq).__name__} "
                f"({seq[:20]!r}); encode text to ids first (e.g. CharVocabulary.encode) or "
                "pass list(text) with dtype=object"
            )
        try:
            lengths[i] = len(seq)
        except TypeError:
            raise ValueError(
                f"pad_sequences: sequences must be a list of sequences; the item at position "
                f"{i} is of type {type(seq).__name__} ({str(seq)[:40]}), which has no length"
            ) from None
    return lengths


def _kept_part(seq: Any, start: int, count: int, dtype: Any, index: int) -> np.ndarray:
    """Elements ``start:start+count`` of one sequence as an array of ``dtype``."""
    try:
        part = seq[start : start + count]
    except TypeError:  # sized but not sliceable (a deque, a set view): copy first
        part = list(seq)[start : start + count]
    try:
        return np.asarray(part, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"pad_sequences: the sequence at position {index} cannot be converted to dtype "
            f"{dtype!r} ({err}); all sequences must hold values of one shape"
        ) from None


def pad_sequences(
    sequences: Sequence[Any],
    maxlen: int | None = None,
    dtype: Any = "int32",
    padding: str = "pre",
    truncating: str = "pre",
    value: Any = 0.0,
) -> np.ndarray:
    """Pad (and truncate) sequences to one length, exactly like ``keras.utils.pad_sequences``.

    Args:
        sequences: A list (or array, e.g. a ragged object array) of sequences; each a list,
            tuple or array of numbers, or of equal-shape vectors (the trailing shape is kept),
            or of strings with ``dtype=object``. Empty sequences become all padding.
        maxlen: Length of the output sequences; ``None`` means the longest sequence's length.
        dtype: Output dtype (``"int32"``, ``"float32"``, ``object`` for strings, ...). Values
            are cast like ``np.asarray(seq, dtype)`` (floats to ints truncate toward zero).
        padding: ``"pre"`` pads at the start of each sequence, ``"post"`` at the end.
        truncating: ``"pre"`` drops values from the start of sequences longer than
            ``maxlen``, ``"post"`` from the end.
        value: The padding value (a number, or a string with ``dtype=object``).

    Returns:
        An array of shape ``(len(sequences), maxlen) + trailing_shape``. An empty list gives
        shape ``(0, maxlen or 0)`` (Keras raises there instead), and ``maxlen=0`` gives
        ``(n, 0)``.

    Raises:
        ValueError: For a bad ``padding``/``truncating``, items without a length, sequences
            whose elements differ in shape, or a str ``value`` with a numeric ``dtype``.
        TypeError: For a non-integer ``maxlen``, an unknown ``dtype``, or a str item.

    Example:
        >>> from ember.text import pad_sequences
        >>> pad_sequences([[1], [2, 3], [4, 5, 6]]).tolist()
        [[0, 0, 1], [0, 2, 3], [4, 5, 6]]
        >>> pad_sequences([[1], [2, 3], [4, 5, 6]], maxlen=2, padding="post").tolist()
        [[1, 0], [2, 3], [5, 6]]
        >>> pad_sequences([["a"], ["b", "c"]], dtype=object, value="_").tolist()
        [['_', 'a'], ['b', 'c']]
    """
    _check_choice(padding, "padding")
    _check_choice(truncating, "truncating")
    maxlen = _check_maxlen(maxlen)
    _check_dtype_and_value(dtype, value)
    lengths = _sequence_lengths(sequences)
    if maxlen is None:
        maxlen = int(lengths.max()) if lengths.size else 0
    kept = np.minimum(lengths, maxlen)
    starts = lengths - kept if truncating == "pre" else np.zeros_like(lengths)

    # One array per sequence that keeps values (a loop over sequences, not over elements);
    # the trailing shape comes from the first non-empty one, as in Keras.
    rows, parts, sample_shape = [], [], None
    for i, seq in enumerate(sequences):
        if lengths[i] == 0:
            continue
        if kept[i] == 0:  # maxlen == 0: only the trailing shape is needed
            sample_shape = np.asarray(seq).shape[1:] if sample_shape is None else sample_shape
            continue
        part = _kept_part(seq, int(starts[i]), int(kept[i]), dtype, i)
        sample_shape = part.shape[1:] if sample_shape is None else sample_shape
        if part.shape[1:] != sample_shape:
            raise ValueError(
                f"pad_sequences: shape of sample {part.shape[1:]} of the sequence at position "
                f"{i} is different from the expected shape {sample_shape} (taken from the "
                "first non-empty sequence)"
            )
        rows.append(i)
        parts.append(part)
    sample_shape = () if sample_shape is None else sample_shape
    try:
        out = np.full((len(lengths), maxlen) + sample_shape, value, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"pad_sequences: cannot fill an array of dtype {dtype!r} with value {value!r} ({err})"
        ) from None
    if parts:
        # Scatter every kept value at once: row = its sequence, column = offset within the
        # kept part, shifted right by the padding for "pre".
        row_idx = np.asarray(rows, dtype=np.int64)
        counts = kept[row_idx]
        first_col = maxlen - counts if padding == "pre" else np.zeros_like(counts)
        offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        values = np.concatenate(parts)
        out[np.repeat(row_idx, counts), np.repeat(first_col, counts) + offsets] = values
    return out


# ------------------------------------------------------------------------------ JSON files
def _write_json_atomic(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Write ``payload`` as JSON to ``path`` all at once or not at all.

    The text goes to a new temporary file next to ``path`` (created with mode 0o666 so the
    umask applies), is flushed to disk, then renamed over ``path``: a crash mid-save leaves
    the previous file intact. ASCII-only output keeps lone surrogates representable.
    """
    target = Path(os.path.expanduser(os.fspath(path)))
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(payload, ensure_ascii=True, separators=(",", ":")) + "\n"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, flags, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"duplicate JSON keys {dupes}")
    return dict(pairs)


def _read_json_payload(path: str | os.PathLike, fmt: str, who: str) -> dict[str, Any]:
    """Read and check the envelope ``{"format", "version", "config"}`` of a saved tokenizer."""
    target = Path(os.path.expanduser(os.fspath(path)))
    try:
        size = target.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ValueError(
                f"{who}.load: '{target}' is {size} bytes, over the {MAX_FILE_BYTES}-byte limit "
                "for a tokenizer file"
            )
        raw = target.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{who}.load: no such file '{target}'") from None
    try:
        payload = json.loads(raw.decode("utf-8"), object_pairs_hook=_reject_duplicate_keys)
    except (UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"{who}.load: '{target}' is not a valid JSON file ({err})") from None
    if not isinstance(payload, dict) or set(payload) != {"format", "version", "config"}:
        found = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(
            f"{who}.load: '{target}' must hold a JSON object with the keys format, version "
            f"and config; found {found}"
        )
    if payload["format"] != fmt:
        raise ValueError(
            f"{who}.load: '{target}' holds format {payload['format']!r}, expected {fmt!r}"
        )
    if payload["version"] != 1 or isinstance(payload["version"], bool):
        raise ValueError(
            f"{who}.load: '{target}' has version {payload['version']!r}; this Ember reads version 1"
        )
    return payload["config"]


def _check_config_keys(config: Any, expected: set[str], who: str) -> None:
    if not isinstance(config, dict) or set(config) != expected:
        found = sorted(config) if isinstance(config, dict) else type(config).__name__
        raise ValueError(
            f"{who}.from_config: config must be a dict with the keys {sorted(expected)}, "
            f"got {found}"
        )


def _check_special_tokens(tokens: Any, reserved: tuple[str, ...], who: str) -> tuple[str, ...]:
    """Validate a list of special-token strings (unique, bounded, not a reserved name)."""
    if isinstance(tokens, str) or not isinstance(tokens, Sequence):
        raise TypeError(
            f"{who}: special_tokens must be a list of strings, got {type(tokens).__name__}"
        )
    if len(tokens) > MAX_SPECIAL_TOKENS:
        raise ValueError(f"{who}: at most {MAX_SPECIAL_TOKENS} special tokens, got {len(tokens)}")
    for tok in tokens:
        if not isinstance(tok, str) or not 2 <= len(tok) <= MAX_SPECIAL_TOKEN_CHARS:
            raise ValueError(
                f"{who}: each special token must be a string of 2 to {MAX_SPECIAL_TOKEN_CHARS} "
                f"characters (one character would clash with a character token), got {tok!r}"
            )
        if tok in reserved:
            raise ValueError(
                f"{who}: {tok!r} is reserved (always present with a fixed id); remove it from "
                "special_tokens"
            )
    if len(set(tokens)) != len(tokens):
        raise ValueError(f"{who}: special_tokens must be unique, got {list(tokens)}")
    return tuple(tokens)


def _check_ids(ids: Any, vocab_size: int, who: str) -> np.ndarray:
    """``ids`` as a 1-D int64 array of valid ids, or a clear error."""
    arr = np.asarray(ids)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind not in "iu" or arr.ndim != 1:
        raise ValueError(
            f"{who}.decode: ids must be a 1-D sequence of integers, got dtype {arr.dtype} with "
            f"shape {arr.shape}"
        )
    bad = (arr < 0) | (arr >= vocab_size)
    if bad.any():
        raise ValueError(
            f"{who}.decode: ids must be in [0, {vocab_size}), got {arr[bad][0]} at position "
            f"{int(np.flatnonzero(bad)[0])}"
        )
    return arr.astype(np.int64, copy=False)


def _texts(text_or_texts: Any, who: str) -> list[str]:
    if isinstance(text_or_texts, str):
        return [text_or_texts]
    if not isinstance(text_or_texts, Iterable):
        raise TypeError(
            f"{who}.fit: expected a string or an iterable of strings, got "
            f"{type(text_or_texts).__name__}"
        )
    texts = list(text_or_texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(
                f"{who}.fit: expected strings, got a {type(text).__name__} at position {i}"
            )
    return texts


def _check_text(text: Any, who: str) -> None:
    if not isinstance(text, str):
        raise TypeError(f"{who}.encode: text must be a str, got {type(text).__name__}")


# ------------------------------------------------------------------------------ CharVocabulary
class CharVocabulary:
    """A character-level tokenizer: one id per distinct character seen by :meth:`fit`.

    Ids: 0 is padding (``"<pad>"``), 1 is unknown (``"<unk>"``, what characters not seen
    during :meth:`fit` encode to), then the ``special_tokens`` in order, then the characters
    sorted by code point. Special tokens are never produced from text (the string ``"<bos>"``
    in a text encodes as five characters); add them with ``encode(..., add_bos=True)`` or
    :meth:`token_to_id`.

    Args:
        special_tokens: Extra tokens such as ``("<bos>", "<eos>")``, each at least two
            characters long (so they never clash with a character).
        characters: The character vocabulary in id order, e.g. from :meth:`get_config`;
            ``None`` leaves the vocabulary to :meth:`fit`.

    Example:
        >>> from ember.text import CharVocabulary
        >>> vocab = CharVocabulary(special_tokens=["<bos>", "<eos>"]).fit("banana")
        >>> vocab.get_vocabulary()
        ['<pad>', '<unk>', '<bos>', '<eos>', 'a', 'b', 'n']
        >>> vocab.encode("nab!", add_bos=True).tolist()
        [2, 6, 4, 5, 1]
        >>> vocab.decode([5, 4, 6, 4])
        'bana'
    """

    def __init__(
        self, special_tokens: Sequence[str] = (), characters: Sequence[str] | None = None
    ) -> None:
        who = "CharVocabulary"
        self._special = _check_special_tokens(special_tokens, (PAD_TOKEN, UNK_TOKEN), who)
        self._chars: tuple[str, ...] | None = None
        if characters is not None:
            self._set_characters(self._check_characters(characters))

    # -- building
    @staticmethod
    def _check_characters(characters: Any) -> list[str]:
        if isinstance(characters, str) or not isinstance(characters, Sequence):
            raise TypeError(
                "CharVocabulary: characters must be a list of one-character strings, got "
                f"{type(characters).__name__}"
            )
        for ch in characters:
            if not isinstance(ch, str) or len(ch) != 1:
                raise ValueError(
                    f"CharVocabulary: each character must be a one-character string, got {ch!r}"
                )
        if len(set(characters)) != len(characters):
            raise ValueError("CharVocabulary: characters must be unique")
        return list(characters)

    def _set_characters(self, chars: list[str]) -> None:
        self._chars = tuple(chars)
        self._itos = [PAD_TOKEN, UNK_TOKEN, *self._special, *chars]
        self._stoi = {tok: i for i, tok in enumerate(self._itos)}
        self._itos_array = np.array(self._itos, dtype=object)
        # Sorted code points and their ids: encoding is one searchsorted over the whole text.
        first = 2 + len(self._special)
        codes = np.array([ord(c) for c in chars], dtype=np.uint32)
        order = np.argsort(codes, kind="stable")
        self._codes = codes[order]
        self._code_ids = (first + order).astype(np.int32)

    def fit(self, text_or_texts: str | Iterable[str]) -> CharVocabulary:
        """Build the vocabulary from the distinct characters of one text or many; return self.

        Fitting again replaces the vocabulary (the special tokens stay).

        Example:
            >>> from ember.text import CharVocabulary
            >>> CharVocabulary().fit(["ab", "ca"]).vocab_size
            5
        """
        seen: set[str] = set()
        for text in _texts(text_or_texts, "CharVocabulary"):
            seen.update(text)
        self._set_characters(sorted(seen))
        return self

    def _require_fitted(self, what: str) -> None:
        if self._chars is None:
            raise RuntimeError(f"CharVocabulary.{what} called before fit; call fit(texts) first")

    # -- lookups
    @property
    def vocab_size(self) -> int:
        """Number of ids: 2 reserved + special tokens + characters."""
        self._require_fitted("vocab_size")
        return len(self._itos)

    @property
    def special_tokens(self) -> tuple[str, ...]:
        """The extra special tokens, in id order (ids 2, 3, ...)."""
        return self._special

    @property
    def characters(self) -> tuple[str, ...]:
        """The character tokens in id order."""
        self._require_fitted("characters")
        return self._chars  # type: ignore[return-value]

    pad_id = 0
    unk_id = 1

    def get_vocabulary(self) -> list[str]:
        """All tokens in id order, like Keras' ``TextVectorization.get_vocabulary``.

        Example:
            >>> from ember.text import CharVocabulary
            >>> CharVocabulary().fit("hi").get_vocabulary()
            ['<pad>', '<unk>', 'h', 'i']
        """
        self._require_fitted("get_vocabulary")
        return list(self._itos)

    def token_to_id(self, token: str) -> int:
        """The id of a token (a character, a special or reserved token).

        Example:
            >>> from ember.text import CharVocabulary
            >>> vocab = CharVocabulary(["<eos>"]).fit("ab")
            >>> vocab.token_to_id("b"), vocab.token_to_id("<eos>"), vocab.token_to_id("<pad>")
            (4, 2, 0)
        """
        self._require_fitted("token_to_id")
        try:
            return self._stoi[token]
        except (KeyError, TypeError):
            raise ValueError(
                f"CharVocabulary.token_to_id: {token!r} is not in the vocabulary "
                f"({len(self._itos)} tokens); unknown characters encode to id {self.unk_id}"
            ) from None

    def id_to_token(self, token_id: int) -> str:
        """The token of an id.

        Example:
            >>> from ember.text import CharVocabulary
            >>> vocab = CharVocabulary().fit("ab")
            >>> vocab.id_to_token(2), vocab.id_to_token(1)
            ('a', '<unk>')
        """
        self._require_fitted("id_to_token")
        if not _is_int(token_id):
            raise TypeError(f"CharVocabulary.id_to_token: expected an int, got {token_id!r}")
        if not 0 <= token_id < len(self._itos):
            raise ValueError(
                f"CharVocabulary.id_to_token: id must be in [0, {len(self._itos)}), got {token_id}"
            )
        return self._itos[token_id]

    # -- encoding
    def _special_id(self, token: str, flag: str) -> int:
        if token not in self._special:
            raise ValueError(
                f"CharVocabulary.encode: {flag}=True needs {token!r} among the special tokens, "
                f"which are {list(self._special)}"
            )
        return self._stoi[token]

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> np.ndarray:
        """Encode a string to an int32 array of ids, one per character (unknown -> 1).

        Args:
            text: The string to encode.
            add_bos: Prepend the id of ``"<bos>"`` (which must be a special token).
            add_eos: Append the id of ``"<eos>"`` (which must be a special token).

        Example:
            >>> from ember.text import CharVocabulary
            >>> vocab = CharVocabulary().fit("abc")
            >>> vocab.encode("cabz")
            array([4, 2, 3, 1], dtype=int32)
        """
        self._require_fitted("encode")
        _check_text(text, "CharVocabulary")
        # UTF-32 gives one uint32 code point per character without a Python loop;
        # surrogatepass keeps lone surrogates (valid in a Python str) encodable.
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
        ids = np.full(codes.shape, self.unk_id, dtype=np.int32)
        if self._codes.size:
            pos = np.minimum(np.searchsorted(self._codes, codes), self._codes.size - 1)
            found = self._codes[pos] == codes
            ids[found] = self._code_ids[pos[found]]
        if add_bos or add_eos:
            head = [self._special_id(BOS_TOKEN, "add_bos")] if add_bos else []
            tail = [self._special_id(EOS_TOKEN, "add_eos")] if add_eos else []
            ids = np.concatenate([np.asarray(head, np.int32), ids, np.asarray(tail, np.int32)])
        return ids

    def decode(self, ids: Iterable[int] | np.ndarray, skip_special_tokens: bool = False) -> str:
        """Turn ids back into a string.

        Args:
            ids: A 1-D sequence of ids.
            skip_special_tokens: Drop padding, unknown and special tokens instead of writing
                their names (``"<pad>"``, ``"<unk>"``, ...).

        Example:
            >>> from ember.text import CharVocabulary
            >>> vocab = CharVocabulary().fit("abc")
            >>> vocab.decode([0, 0, 2, 1, 4]), vocab.decode([0, 0, 2, 1, 4], True)
            ('<pad><pad>a<unk>c', 'ac')
        """
        self._require_fitted("decode")
        arr = _check_ids(ids, len(self._itos), "CharVocabulary")
        if skip_special_tokens:
            arr = arr[arr >= 2 + len(self._special)]
        return "".join(self._itos_array[arr].tolist())

    # -- serialisation
    def get_config(self) -> dict[str, Any]:
        """A JSON-serialisable dict that :meth:`from_config` turns back into this vocabulary.

        Example:
            >>> from ember.text import CharVocabulary
            >>> CharVocabulary(["<eos>"]).fit("ba").get_config()
            {'special_tokens': ['<eos>'], 'characters': ['a', 'b']}
        """
        chars = None if self._chars is None else list(self._chars)
        return {"special_tokens": list(self._special), "characters": chars}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> CharVocabulary:
        """Rebuild a vocabulary from :meth:`get_config`'s dict (validated completely).

        Example:
            >>> from ember.text import CharVocabulary
            >>> vocab = CharVocabulary.from_config({"special_tokens": [], "characters": ["x"]})
            >>> vocab.encode("xy").tolist()
            [2, 1]
        """
        _check_config_keys(config, {"special_tokens", "characters"}, "CharVocabulary")
        return cls(config["special_tokens"], config["characters"])

    _FORMAT = "ember.text.CharVocabulary"

    def save(self, path: str | os.PathLike) -> None:
        """Write the vocabulary to a JSON file, atomically (temporary file + ``os.replace``).

        Example:
            >>> import os, tempfile
            >>> from ember.text import CharVocabulary
            >>> tmp = tempfile.TemporaryDirectory()
            >>> path = os.path.join(tmp.name, "vocab.json")
            >>> CharVocabulary(["<bos>"]).fit("héllo 👋").save(path)
            >>> CharVocabulary.load(path).decode([2, 4, 7])
            '<bos>hé'
            >>> tmp.cleanup()
        """
        payload = {"format": self._FORMAT, "version": 1, "config": self.get_config()}
        _write_json_atomic(path, payload)

    @classmethod
    def load(cls, path: str | os.PathLike) -> CharVocabulary:
        """Read a vocabulary written by :meth:`save`; malformed files raise ``ValueError``.

        The file is parsed as JSON only (no code runs) and every field is checked: the
        format name and version, the special tokens and the characters.

        Example:
            >>> import os, tempfile
            >>> from ember.text import CharVocabulary
            >>> tmp = tempfile.TemporaryDirectory()
            >>> path = os.path.join(tmp.name, "vocab.json")
            >>> CharVocabulary().fit("ab").save(path)
            >>> CharVocabulary.load(path).vocab_size
            4
            >>> tmp.cleanup()
        """
        config = _read_json_payload(path, cls._FORMAT, "CharVocabulary")
        try:
            return cls.from_config(config)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"CharVocabulary.load: '{os.fspath(path)}' is invalid: {err}"
            ) from None

    def __repr__(self) -> str:
        size = None if self._chars is None else len(self._itos)
        return f"CharVocabulary(vocab_size={size}, special_tokens={list(self._special)})"


# ------------------------------------------------------------------------------ byte-level BPE
# GPT-2-style pre-split: a run of letters, of digits, or of other symbols, each with at most
# one leading space; runs of whitespace keep their last space for the word that follows.
# Every character falls in one class, so the pieces always concatenate back to the text.
_PIECE_RE = re.compile(r" ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+")


# Pieces longer than this are cut into chunks: merging within a piece costs time quadratic in
# its length, and a long run without spaces (a DNA string, base64) would otherwise stall.
MAX_PIECE_CHARS = 256


def _split_pieces(text: str) -> list[str]:
    """Split ``text`` into the pieces BPE merges within (never across)."""
    pieces = _PIECE_RE.findall(text)
    if any(len(piece) > MAX_PIECE_CHARS for piece in pieces):
        step = MAX_PIECE_CHARS
        pieces = [piece[i : i + step] for piece in pieces for i in range(0, len(piece), step)]
    return pieces


def _merge_pair(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every non-overlapping occurrence of ``pair``, left to right, by ``new_id``."""
    first, second = pair
    out: list[int] = []
    i, n = 0, len(ids)
    while i < n:
        if i + 1 < n and ids[i] == first and ids[i + 1] == second:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


class _PairStats:
    """Pair counts over the unique words of a corpus, updated incrementally after each merge.

    ``counts[pair]`` is the number of times ``pair`` is adjacent in the corpus (each unique
    word weighted by its frequency); ``where[pair]`` the indices of the words holding it. A
    heap of ``(-count, pair)`` gives the most frequent pair; entries whose count has changed
    since they were pushed are skipped when popped (lazy deletion).
    """

    def __init__(self, words: list[list[int]], freqs: list[int]) -> None:
        self.words, self.freqs = words, freqs
        self.counts: dict[tuple[int, int], int] = {}
        self.where: dict[tuple[int, int], set[int]] = {}
        for index, (ids, freq) in enumerate(zip(words, freqs)):
            for pair in zip(ids, ids[1:]):
                self.counts[pair] = self.counts.get(pair, 0) + freq
                self.where.setdefault(pair, set()).add(index)
        self.heap = [(-count, pair) for pair, count in self.counts.items()]
        heapq.heapify(self.heap)

    def pop_best(self, banned: set[tuple[int, int]]) -> tuple[tuple[int, int], int] | None:
        """The most frequent pair and its count (ties: the smallest pair of ids), or None."""
        while self.heap:
            neg_count, pair = heapq.heappop(self.heap)
            if self.counts.get(pair) == -neg_count and pair not in banned:
                return pair, -neg_count
        return None

    def apply(self, pair: tuple[int, int], new_id: int) -> None:
        """Merge ``pair`` into ``new_id`` in every word holding it and update the counts."""
        changed: set[tuple[int, int]] = set()
        for index in self.where.pop(pair, ()):
            old = self.words[index]
            new = _merge_pair(old, pair, new_id)
            freq = self.freqs[index]
            old_pairs, new_pairs = list(zip(old, old[1:])), list(zip(new, new[1:]))
            for p in old_pairs:
                self.counts[p] -= freq
            for p in new_pairs:
                self.counts[p] = self.counts.get(p, 0) + freq
                self.where.setdefault(p, set()).add(index)
            for p in set(old_pairs) - set(new_pairs):
                holders = self.where.get(p)
                if holders is not None:
                    holders.discard(index)
            changed.update(old_pairs)
            changed.update(new_pairs)
            self.words[index] = new
        for p in changed:
            count = self.counts.get(p, 0)
            if count > 0:
                heapq.heappush(self.heap, (-count, p))
            else:
                self.counts.pop(p, None)
                self.where.pop(p, None)


def _learn_merges(
    word_counts: dict[bytes, int], first_byte_id: int, num_merges: int, min_frequency: int
) -> list[tuple[int, int]]:
    """Learn up to ``num_merges`` merges over the unique words ``word_counts`` (bytes -> count).

    Byte ``b`` has id ``first_byte_id + b``; merge ``k`` creates id ``first_byte_id + 256 + k``.
    Stops early when no pair occurs at least ``min_frequency`` times. A pair whose token would
    exceed :data:`MAX_TOKEN_BYTES` is never merged (so every fitted tokenizer can be loaded).
    """
    words = [[first_byte_id + b for b in word] for word in word_counts]
    stats = _PairStats(words, list(word_counts.values()))
    token_len = [0] * first_byte_id + [1] * 256
    merges: list[tuple[int, int]] = []
    banned: set[tuple[int, int]] = set()
    while len(merges) < num_merges:
        best = stats.pop_best(banned)
        if best is None or best[1] < min_frequency:
            break
        pair = best[0]
        if token_len[pair[0]] + token_len[pair[1]] > MAX_TOKEN_BYTES:
            banned.add(pair)
            continue
        stats.apply(pair, first_byte_id + 256 + len(merges))
        token_len.append(token_len[pair[0]] + token_len[pair[1]])
        merges.append(pair)
    return merges


class BytePairTokenizer:
    """A trainable byte-level byte-pair-encoding tokenizer (GPT-2 style, simplified).

    Text is split into pieces (a word with its leading space, a number, a run of punctuation,
    whitespace) and each piece's UTF-8 bytes are merged pairwise by the rules :meth:`fit`
    learned, most frequent pair first. The base vocabulary holds all 256 bytes, so every
    string — any language, emoji, combining marks — encodes, and decodes back exactly.

    Ids: 0 is ``"<pad>"``, then the ``special_tokens`` in order, then the 256 bytes (byte
    ``b`` has id ``1 + len(special_tokens) + b``), then one id per learned merge in the order
    learned. Special tokens are never produced from text; add them with ``add_bos``/``add_eos``.

    Args:
        special_tokens: Extra tokens after ``"<pad>"``; by default ``("<bos>", "<eos>")``.
        merges: Learned merges as ``(left_id, right_id)`` pairs, e.g. from :meth:`get_config`;
            usually left empty and learned with :meth:`fit`.

    Example:
        >>> from ember.text import BytePairTokenizer
        >>> tok = BytePairTokenizer().fit(["low lower lowest"] * 3, vocab_size=262)
        >>> [tok.id_to_token(i) for i in range(259, tok.vocab_size)]  # the learned merges
        [b'lo', b'low', b' low']
        >>> ids = tok.encode("lower slow", add_bos=True)
        >>> ids.tolist()
        [1, 260, 104, 117, 35, 118, 260]
        >>> tok.decode(ids, skip_special_tokens=True)
        'lower slow'
    """

    _FORMAT = "ember.text.BytePairTokenizer"

    def __init__(
        self,
        special_tokens: Sequence[str] = (BOS_TOKEN, EOS_TOKEN),
        merges: Sequence[Sequence[int]] = (),
    ) -> None:
        self._special = _check_special_tokens(special_tokens, (PAD_TOKEN,), "BytePairTokenizer")
        self._set_merges(self._check_merges(merges, 1 + len(self._special)))

    # -- building
    @staticmethod
    def _check_merges(merges: Any, first_byte_id: int) -> list[tuple[int, int]]:
        """Validate merges: pairs of existing non-special ids, unique, sizes bounded."""
        who = "BytePairTokenizer"
        if isinstance(merges, str | bytes) or not isinstance(merges, Sequence):
            raise TypeError(f"{who}: merges must be a list of [left, right] id pairs")
        if first_byte_id + 256 + len(merges) > MAX_BPE_VOCAB:
            raise ValueError(f"{who}: {len(merges)} merges exceed the {MAX_BPE_VOCAB}-id limit")
        out: list[tuple[int, int]] = []
        token_len = [1] * 256
        total = 256
        for k, pair in enumerate(merges):
            ok = isinstance(pair, Sequence) and not isinstance(pair, str) and len(pair) == 2
            ok = ok and all(_is_int(i) for i in pair)
            next_id = first_byte_id + 256 + k
            if not ok or not all(first_byte_id <= i < next_id for i in pair):
                raise ValueError(
                    f"{who}: merge {k} must be a pair of ids of bytes or earlier merges, i.e. in "
                    f"[{first_byte_id}, {next_id}), got {pair!r}"
                )
            length = token_len[pair[0] - first_byte_id] + token_len[pair[1] - first_byte_id]
            total += length
            if length > MAX_TOKEN_BYTES or total > MAX_TOTAL_TOKEN_BYTES:
                raise ValueError(
                    f"{who}: merge {k} makes a token of {length} bytes ({total} bytes in all); "
                    f"the limits are {MAX_TOKEN_BYTES} per token, {MAX_TOTAL_TOKEN_BYTES} in all"
                )
            token_len.append(length)
            out.append((int(pair[0]), int(pair[1])))
        if len(set(out)) != len(out):
            raise ValueError(f"{who}: merges must be unique (a repeated pair can never apply)")
        return out

    def _set_merges(self, merges: list[tuple[int, int]]) -> None:
        first = 1 + len(self._special)
        self._first_byte_id = first
        self._merges = merges
        self._ranks = {pair: k for k, pair in enumerate(merges)}
        token_bytes = [bytes([b]) for b in range(256)]
        for left, right in merges:
            token_bytes.append(token_bytes[left - first] + token_bytes[right - first])
        specials = [tok.encode("utf-8") for tok in (PAD_TOKEN, *self._special)]
        self._id_bytes = specials + token_bytes
        self._bytes_to_id: dict[bytes, int] = {}
        for i, b in enumerate(token_bytes):
            self._bytes_to_id.setdefault(b, first + i)
        self._byte_ids = [first + b for b in range(256)]
        self._cache: dict[str, tuple[int, ...]] = {}

    def fit(
        self, texts: str | Iterable[str], vocab_size: int, min_frequency: int = 2
    ) -> BytePairTokenizer:
        """Learn merges from ``texts`` until ``vocab_size`` ids exist; return self.

        Pair frequencies are counted over the unique pieces (each weighted by how often it
        occurs) and updated incrementally after each merge. The most frequent pair is merged
        next; ties go to the pair with the smaller ids. Fitting again starts from scratch.

        Args:
            texts: One string or an iterable of strings.
            vocab_size: Total ids wanted: ``1 + len(special_tokens) + 256`` plus the merges.
                Fewer result when no pair reaches ``min_frequency``.
            min_frequency: A pair must occur at least this often to be merged.

        Example:
            >>> from ember.text import BytePairTokenizer
            >>> tok = BytePairTokenizer(special_tokens=[]).fit("aaab aab", vocab_size=1000)
            >>> [tok.id_to_token(i) for i in range(257, tok.vocab_size)]  # then no pair twice
            [b'aa']
        """
        who = "BytePairTokenizer.fit"
        base = 1 + len(self._special) + 256
        if not _is_int(vocab_size):
            raise TypeError(f"{who}: vocab_size must be an int, got {vocab_size!r}")
        if not base <= vocab_size <= MAX_BPE_VOCAB:
            raise ValueError(
                f"{who}: vocab_size must be in [{base}, {MAX_BPE_VOCAB}] ({base} = <pad> + "
                f"{len(self._special)} special tokens + 256 bytes), got {vocab_size}"
            )
        if not _is_int(min_frequency):
            raise TypeError(f"{who}: min_frequency must be an int, got {min_frequency!r}")
        if min_frequency < 1:
            raise ValueError(f"{who}: min_frequency must be >= 1, got {min_frequency}")
        pieces: Counter[str] = Counter()
        for text in _texts(texts, "BytePairTokenizer"):
            pieces.update(_split_pieces(text))
        word_counts: Counter[bytes] = Counter()
        for piece, count in pieces.items():
            word_counts[piece.encode("utf-8", "surrogatepass")] += count
        merges = _learn_merges(
            word_counts, 1 + len(self._special), int(vocab_size) - base, int(min_frequency)
        )
        self._set_merges(merges)
        return self

    # -- lookups
    @property
    def vocab_size(self) -> int:
        """Number of ids: ``<pad>`` + special tokens + 256 bytes + merges."""
        return len(self._id_bytes)

    @property
    def special_tokens(self) -> tuple[str, ...]:
        """The special tokens after ``"<pad>"``, in id order (ids 1, 2, ...)."""
        return self._special

    @property
    def merges(self) -> list[tuple[int, int]]:
        """The learned merges ``(left_id, right_id)`` in order; merge ``k`` made id
        ``1 + len(special_tokens) + 256 + k``."""
        return list(self._merges)

    pad_id = 0

    @property
    def bos_id(self) -> int | None:
        """The id of ``"<bos>"``, or None when it is not a special token."""
        return self._special.index(BOS_TOKEN) + 1 if BOS_TOKEN in self._special else None

    @property
    def eos_id(self) -> int | None:
        """The id of ``"<eos>"``, or None when it is not a special token."""
        return self._special.index(EOS_TOKEN) + 1 if EOS_TOKEN in self._special else None

    def token_to_id(self, token: str | bytes) -> int:
        """The id of a special token (by name) or of a byte string that is one token.

        A ``str`` other than a special token's name is looked up by its UTF-8 bytes.

        Example:
            >>> from ember.text import BytePairTokenizer
            >>> tok = BytePairTokenizer()
            >>> tok.token_to_id("<eos>"), tok.token_to_id(b"A"), tok.token_to_id("A")
            (2, 68, 68)
        """
        if isinstance(token, str):
            if token == PAD_TOKEN:
                return 0
            if token in self._special:
                return self._special.index(token) + 1
            key = token.encode("utf-8", "surrogatepass")
        elif isinstance(token, bytes):
            key = token
        else:
            raise TypeError(
                f"BytePairTokenizer.token_to_id: expected str or bytes, got {type(token).__name__}"
            )
        try:
            return self._bytes_to_id[key]
        except KeyError:
            raise ValueError(
                f"BytePairTokenizer.token_to_id: {token!r} is not a single token; "
                "use encode() for arbitrary text"
            ) from None

    def id_to_token(self, token_id: int) -> str | bytes:
        """The token of an id: the name (``str``) of a special token, else its bytes.

        Example:
            >>> from ember.text import BytePairTokenizer
            >>> tok = BytePairTokenizer()
            >>> tok.id_to_token(0), tok.id_to_token(3 + ord("z"))
            ('<pad>', b'z')
        """
        if not _is_int(token_id):
            raise TypeError(f"BytePairTokenizer.id_to_token: expected an int, got {token_id!r}")
        if not 0 <= token_id < self.vocab_size:
            raise ValueError(
                f"BytePairTokenizer.id_to_token: id must be in [0, {self.vocab_size}), "
                f"got {token_id}"
            )
        if token_id < self._first_byte_id:
            return (PAD_TOKEN, *self._special)[token_id]
        return self._id_bytes[token_id]

    # -- encoding
    def _encode_piece(self, piece: str) -> tuple[int, ...]:
        """Apply the merges to one piece: repeatedly merge its lowest-ranked adjacent pair,
        which reproduces the order in which :meth:`fit` applied them."""
        cached = self._cache.get(piece)
        if cached is not None:
            return cached
        ids = [self._byte_ids[b] for b in piece.encode("utf-8", "surrogatepass")]
        ranks, first_merge_id = self._ranks, self._first_byte_id + 256
        while len(ids) > 1:
            rank, pair = min((ranks.get(p, len(ranks)), p) for p in zip(ids, ids[1:]))
            if rank == len(ranks):
                break
            ids = _merge_pair(ids, pair, first_merge_id + rank)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        result = tuple(ids)
        self._cache[piece] = result
        return result

    def _special_id(self, token: str, flag: str) -> int:
        if token not in self._special:
            raise ValueError(
                f"BytePairTokenizer.encode: {flag}=True needs {token!r} among the special "
                f"tokens, which are {list(self._special)}"
            )
        return self._special.index(token) + 1

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> np.ndarray:
        """Encode a string to an int32 array of token ids.

        Args:
            text: Any string (lone surrogates included).
            add_bos: Prepend the id of ``"<bos>"``.
            add_eos: Append the id of ``"<eos>"``.

        Example:
            >>> from ember.text import BytePairTokenizer
            >>> tok = BytePairTokenizer()
            >>> tok.encode("hé").tolist()  # no merges yet: one id per UTF-8 byte
            [107, 198, 172]
        """
        _check_text(text, "BytePairTokenizer")
        ids: list[int] = [self._special_id(BOS_TOKEN, "add_bos")] if add_bos else []
        for piece in _split_pieces(text):
            ids.extend(self._encode_piece(piece))
        if add_eos:
            ids.append(self._special_id(EOS_TOKEN, "add_eos"))
        return np.asarray(ids, dtype=np.int32)

    def encode_batch(
        self, texts: Iterable[str], add_bos: bool = False, add_eos: bool = False
    ) -> list[np.ndarray]:
        """Encode several strings; pad the result with :func:`pad_sequences`.

        Example:
            >>> from ember.text import BytePairTokenizer, pad_sequences
            >>> tok = BytePairTokenizer()
            >>> pad_sequences(tok.encode_batch(["a", "bc"], add_eos=True)).tolist()
            [[0, 100, 2], [101, 102, 2]]
        """
        if isinstance(texts, str):
            raise TypeError(
                "BytePairTokenizer.encode_batch: expected an iterable of strings, got a str; "
                "use encode() for one string"
            )
        return [self.encode(text, add_bos, add_eos) for text in texts]

    def decode(
        self,
        ids: Iterable[int] | np.ndarray,
        skip_special_tokens: bool = False,
        errors: str = "replace",
    ) -> str:
        """Turn ids back into a string; ``decode(encode(s)) == s`` for every string ``s``.

        Args:
            ids: A 1-D sequence of ids.
            skip_special_tokens: Drop ``<pad>`` and the special tokens instead of writing
                their names.
            errors: How to decode byte sequences that are not valid UTF-8 (possible for ids
                sampled from a model): ``"replace"`` (U+FFFD), ``"strict"``, ``"ignore"``...

        Example:
            >>> from ember.text import BytePairTokenizer
            >>> tok = BytePairTokenizer()
            >>> tok.decode(tok.encode("naïve 🙂"))
            'naïve 🙂'
            >>> tok.decode([198])  # half of a two-byte character
            '\ufffd'
        """
        arr = _check_ids(ids, self.vocab_size, "BytePairTokenizer")
        if skip_special_tokens:
            arr = arr[arr >= self._first_byte_id]
        data = b"".join(map(self._id_bytes.__getitem__, arr.tolist()))
        try:
            # surrogatepass: lone surrogates in the encoded text come back as they were.
            return data.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return data.decode("utf-8", errors)

    # -- serialisation
    def get_config(self) -> dict[str, Any]:
        """A JSON-serialisable dict that :meth:`from_config` turns back into this tokenizer.

        Example:
            >>> from ember.text import BytePairTokenizer
            >>> BytePairTokenizer(["<eos>"]).fit("ab ab", vocab_size=259).get_config()
            {'special_tokens': ['<eos>'], 'merges': [[99, 100]]}
        """
        return {"special_tokens": list(self._special), "merges": [list(p) for p in self._merges]}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BytePairTokenizer:
        """Rebuild a tokenizer from :meth:`get_config`'s dict (validated completely).

        Example:
            >>> from ember.text import BytePairTokenizer
            >>> tok = BytePairTokenizer.from_config({"special_tokens": [], "merges": [[98, 98]]})
            >>> tok.encode("aaa").tolist(), tok.id_to_token(257)
            ([257, 98], b'aa')
        """
        _check_config_keys(config, {"special_tokens", "merges"}, "BytePairTokenizer")
        return cls(config["special_tokens"], config["merges"])

    def save(self, path: str | os.PathLike) -> None:
        """Write the tokenizer to a JSON file, atomically (temporary file + ``os.replace``).

        Example:
            >>> import os, tempfile
            >>> from ember.text import BytePairTokenizer
            >>> tmp = tempfile.TemporaryDirectory()
            >>> path = os.path.join(tmp.name, "bpe.json")
            >>> tok = BytePairTokenizer().fit("the cat, the hat", vocab_size=262)
            >>> tok.save(path)
            >>> BytePairTokenizer.load(path).merges == tok.merges
            True
            >>> tmp.cleanup()
        """
        payload = {"format": self._FORMAT, "version": 1, "config": self.get_config()}
        _write_json_atomic(path, payload)

    @classmethod
    def load(cls, path: str | os.PathLike) -> BytePairTokenizer:
        """Read a tokenizer written by :meth:`save`; malformed files raise ``ValueError``.

        The file is parsed as JSON only (no code runs); the format, version, special tokens
        and every merge are checked (ids must refer to bytes or earlier merges, sizes are
        bounded by :data:`MAX_BPE_VOCAB` and :data:`MAX_TOKEN_BYTES`).

        Example:
            >>> import os, tempfile
            >>> from ember.text import BytePairTokenizer
            >>> tmp = tempfile.TemporaryDirectory()
            >>> path = os.path.join(tmp.name, "bpe.json")
            >>> BytePairTokenizer().save(path)
            >>> BytePairTokenizer.load(path).vocab_size
            259
            >>> tmp.cleanup()
        """
        config = _read_json_payload(path, cls._FORMAT, "BytePairTokenizer")
        try:
            return cls.from_config(config)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"BytePairTokenizer.load: '{os.fspath(path)}' is invalid: {err}"
            ) from None

    def __repr__(self) -> str:
        return (
            f"BytePairTokenizer(vocab_size={self.vocab_size}, merges={len(self._merges)}, "
            f"special_tokens={list(self._special)})"
        )
