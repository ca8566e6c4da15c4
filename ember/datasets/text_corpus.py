"""Public-domain English text for language-model examples, read from the package that ships it.

Ember bundles no corpus: :func:`load_text` reads the text from where a Debian package installs
it and, when the package is missing, raises :class:`DatasetUnavailableError` saying what to
install.

Corpora (:data:`CORPORA`):

* ``"kjv"`` — the King James Version of the Bible (standard 1769 text of the 1611
  translation), 66 books, 31,102 verses, one per line: 4,149,877 characters (4,156,939 bytes
  of UTF-8) drawn from 69 distinct ones — ASCII letters (no X), punctuation, space, newline,
  and the pilcrow ``¶``, ``’``, ``—``, ``æ``, ``Æ``; numbers are spelled out. A classic
  corpus for character-level models.

  Source: the Debian package ``sword-text-kjv`` (14.3-1 in Debian 12), the CrossWire SWORD
  module ``engKJV2006eb`` installed in ``/usr/share/sword/modules/texts/ztext/engKJV2006eb``
  (six files, 3,040,554 bytes). Its ``/usr/share/doc/sword-text-kjv/copyright`` reads
  ``License: public-domain`` (the text is in the public domain outside the United Kingdom,
  where the Crown's letters patent restrict printing). Install it with
  ``apt-get install -y sword-text-kjv``.

The SWORD "zText" format, as read here: ``ot``/``nt`` (Old/New Testament) each have a
``.bzz`` file of concatenated zlib streams ("blocks"), a ``.bzs`` index of 12-byte
little-endian records ``(offset, compressed size, uncompressed size)`` per block, and a
``.bzv`` index of 10-byte records ``(block, start, size)`` per verse slot (empty slots have
size 0). Each verse is OSIS XML; :func:`osis_to_text` keeps its words and punctuation and
drops footnotes, section headings and Strong's-number markup.

Example:
    >>> from ember.datasets import text_corpus
    >>> sorted(text_corpus.CORPORA)
    ['kjv']
    >>> text = text_corpus.load_text("kjv")  # doctest: +SKIP
    >>> text[:55]  # doctest: +SKIP
    'In the beginning God created the heaven and the earth.\\n'
"""

from __future__ import annotations

import html
import os
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ._download import DatasetUnavailableError

__all__ = [
    "CORPORA",
    "SEARCH_DIRS",
    "CorpusSpec",
    "corpus_path",
    "load_text",
    "osis_to_text",
    "read_ztext",
]

#: Roots searched, in order, for installed SWORD modules (Debian installs into the first).
SEARCH_DIRS: list[str] = ["/usr/share/sword", "/usr/local/share/sword"]

# A block of the KJV module inflates to at most ~4 MB; the bound stops a damaged or hostile
# file from inflating without limit.
MAX_BLOCK_BYTES = 64 * 1024 * 1024
_BLOCK = struct.Struct("<III")  # offset, compressed size, uncompressed size
_VERSE = struct.Struct("<IIH")  # block number, start in the inflated block, size


@dataclass(frozen=True)
class CorpusSpec:
    """Where a corpus is installed from and how its files become text.

    Attributes:
        name: The name :func:`load_text` takes.
        title: What the text is.
        package: The Debian package that installs it.
        install: The command that installs it.
        subdir: The module's directory relative to a root in :data:`SEARCH_DIRS`.
        parse: Reads the module directory and returns the text.

    Example:
        >>> from ember.datasets.text_corpus import CORPORA
        >>> spec = CORPORA["kjv"]
        >>> spec.package, spec.install
        ('sword-text-kjv', 'apt-get install -y sword-text-kjv')
    """

    name: str
    title: str
    package: str
    install: str
    subdir: str
    parse: Callable[[Path], str]


def _inflate_blocks(index: bytes, data: bytes, where: Path) -> list[bytes]:
    if len(index) % _BLOCK.size:
        raise ValueError(f"{where}: block index size {len(index)} is not a multiple of 12")
    blocks = []
    for number, (offset, size, expected) in enumerate(_BLOCK.iter_unpack(index)):
        if offset + size > len(data) or expected > MAX_BLOCK_BYTES:
            raise ValueError(
                f"{where}: block {number} (offset {offset}, {size} bytes, inflating to "
                f"{expected}) lies outside the {len(data)}-byte data file or is too large"
            )
        inflater = zlib.decompressobj()
        try:
            block = inflater.decompress(data[offset : offset + size], expected + 1)
        except zlib.error as err:
            raise ValueError(f"{where}: block {number} is not valid zlib data ({err})") from None
        if len(block) != expected:
            raise ValueError(
                f"{where}: block {number} inflates to {len(block)} bytes, its index says {expected}"
            )
        blocks.append(block)
    return blocks


def read_ztext(directory: str | os.PathLike) -> list[str]:
    """Read every verse slot of a SWORD zText module as OSIS markup, Old then New Testament.

    Empty slots (book and chapter headings without text, missing verses) give ``""``.

    Raises:
        FileNotFoundError: If one of the six files (``ot``/``nt`` × ``.bzs``/``.bzv``/
            ``.bzz``) is missing.
        ValueError: If a file is truncated or inconsistent, naming the file and record.

    Example:
        >>> import os, struct, tempfile, zlib
        >>> from ember.datasets.text_corpus import read_ztext
        >>> tmp = tempfile.TemporaryDirectory()
        >>> block = "Jesus wept.".encode()
        >>> for part in ("ot", "nt"):
        ...     packed = zlib.compress(block)
        ...     files = {"bzz": packed, "bzs": struct.pack("<III", 0, len(packed), len(block)),
        ...              "bzv": struct.pack("<IIH", 0, 0, 0) + struct.pack("<IIH", 0, 0, 5)}
        ...     for ext, data in files.items():
        ...         with open(os.path.join(tmp.name, f"{part}.{ext}"), "wb") as f:
        ...             _ = f.write(data)
        >>> read_ztext(tmp.name)
        ['', 'Jesus', '', 'Jesus']
        >>> tmp.cleanup()
    """
    root = Path(directory)
    verses: list[str] = []
    for testament in ("ot", "nt"):
        paths = {ext: root / f"{testament}.{ext}" for ext in ("bzs", "bzv", "bzz")}
        missing = [str(p) for p in paths.values() if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"read_ztext: missing SWORD module files {missing}")
        blocks = _inflate_blocks(paths["bzs"].read_bytes(), paths["bzz"].read_bytes(), paths["bzs"])
        index = paths["bzv"].read_bytes()
        if len(index) % _VERSE.size:
            raise ValueError(f"{paths['bzv']}: size {len(index)} is not a multiple of 10")
        for slot, (block, start, size) in enumerate(_VERSE.iter_unpack(index)):
            if size == 0:
                verses.append("")
                continue
            if block >= len(blocks) or start + size > len(blocks[block]):
                raise ValueError(
                    f"{paths['bzv']}: verse slot {slot} points outside the data "
                    f"(block {block}, bytes {start}..{start + size})"
                )
            try:
                verses.append(blocks[block][start : start + size].decode("utf-8"))
            except UnicodeDecodeError as err:
                raise ValueError(
                    f"{paths['bzv']}: verse slot {slot} is not UTF-8 ({err})"
                ) from None
    return verses


# Footnotes (with their text), non-canonical titles (book names, section headings; a psalm's
# canonical superscription is kept), every other tag, and the USFM divine-name markers
# (\nd, \+nd*) that the module's converter left in 51 verses.
_NOTE = re.compile(r"<note\b[^>]*>.*?</note>", re.S)
_HEADING = re.compile(r"<title\b(?![^>]*canonical=\"true\")[^>]*>.*?</title>", re.S)
_TAG = re.compile(r"<[^>]*>")
_USFM = re.compile(r"\\\+?nd\*?")


def osis_to_text(markup: str) -> str:
    """Plain text of one verse of OSIS markup: words and punctuation, single spaces.

    Tags are removed without adding spaces (the module splits some words across tags);
    character references such as ``&amp;`` are decoded.

    Example:
        >>> from ember.datasets.text_corpus import osis_to_text
        >>> osis_to_text('<w lemma="strong:H0430">God</w> <transChange>is</transChange>'
        ...              ' go<w>od</w>.<note placement="foot">Heb. a note</note> ')
        'God is good.'
    """
    text = _NOTE.sub("", markup)
    text = _HEADING.sub("", text)
    text = _TAG.sub("", text)
    text = _USFM.sub("", text)
    return " ".join(html.unescape(text).split())


def _read_bible(directory: Path) -> str:
    """One verse per line, in canonical order, from a SWORD zText Bible module."""
    verses = [line for line in map(osis_to_text, read_ztext(directory)) if line]
    if not verses:
        raise ValueError(f"{directory}: the SWORD module holds no verse text")
    return "\n".join(verses) + "\n"


CORPORA: dict[str, CorpusSpec] = {
    "kjv": CorpusSpec(
        name="kjv",
        title="The King James Version of the Bible (1769 text), one verse per line",
        package="sword-text-kjv",
        install="apt-get install -y sword-text-kjv",
        subdir="modules/texts/ztext/engKJV2006eb",
        parse=_read_bible,
    ),
}


def _spec(name: str) -> CorpusSpec:
    try:
        return CORPORA[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"text_corpus: unknown corpus {name!r}; available: {sorted(CORPORA)}"
        ) from None


def corpus_path(name: str = "kjv") -> Path:
    """Return the directory of an installed corpus, or explain how to install it.

    Raises:
        ValueError: If ``name`` is not in :data:`CORPORA`.
        DatasetUnavailableError: If no root in :data:`SEARCH_DIRS` holds the corpus; the
            message gives the package and the install command.

    Example:
        >>> from ember.datasets import text_corpus
        >>> from ember.datasets._download import DatasetUnavailableError
        >>> try:
        ...     path = text_corpus.corpus_path("kjv")
        ... except DatasetUnavailableError:  # the message says: apt-get install -y sword-text-kjv
        ...     path = None
        >>> path is None or path.name == "engKJV2006eb"
        True
    """
    spec = _spec(name)
    for root in SEARCH_DIRS:
        candidate = Path(root) / spec.subdir
        if candidate.is_dir():
            return candidate
    looked = [str(Path(root) / spec.subdir) for root in SEARCH_DIRS]
    raise DatasetUnavailableError(
        f"text corpus {name!r} ({spec.title}) comes from the Debian package {spec.package!r}, "
        f"which is not installed (looked in {looked}); install it with `{spec.install}` "
        "(as root), or pass load_text(path=...) pointing to the module directory"
    )


def load_text(name: str = "kjv", path: str | os.PathLike | None = None) -> str:
    """Return a public-domain corpus as one string.

    Args:
        name: Which corpus (a key of :data:`CORPORA`); ``"kjv"`` gives the King James Bible,
            one verse per line.
        path: Read the corpus from this directory (laid out as the installed one) instead.

    Raises:
        ValueError: For an unknown ``name`` or damaged files.
        DatasetUnavailableError: If the package that ships the corpus is not installed (the
            message says ``apt-get install -y sword-text-kjv``).
        FileNotFoundError: If ``path`` is given and lacks the corpus files.

    Example:
        >>> from ember.datasets import text_corpus
        >>> text = text_corpus.load_text("kjv")  # doctest: +SKIP
        >>> text.splitlines()[-1]  # doctest: +SKIP
        'The grace of our Lord Jesus Christ be with you all. Amen.'
        >>> text_corpus.load_text("no-such-corpus")
        Traceback (most recent call last):
        ...
        ValueError: text_corpus: unknown corpus 'no-such-corpus'; available: ['kjv']
    """
    spec = _spec(name)
    directory = corpus_path(name) if path is None else Path(os.path.expanduser(os.fspath(path)))
    return spec.parse(directory)
