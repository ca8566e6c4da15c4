"""Tests for ember.datasets.text_corpus: finding the installed corpus, its errors and parsing.

They build small SWORD zText modules in temporary directories, so none needs the Debian package
sword-text-kjv except the last, which reads the real one and is skipped without it.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from ember.datasets import DatasetUnavailableError, text_corpus
from ember.text import CharVocabulary

KJV_SUBDIR = "modules/texts/ztext/engKJV2006eb"

# Verse slots in OSIS markup as the KJV module stores them ("" = an empty slot).
OLD = [
    '<milestone type="x-importer" n="$Rev: 1 $"/>',
    '<div type="book"/> <title level="1" type="main">The First Book of Moses</title> ',
    '<chapter n="1" osisID="Gen.1" sID="Gen.1"/> ',
    'In the <w lemma="strong:H7225">beginning</w> <w lemma="strong:H0430">God</w> created '
    "the heaven and the earth. ",
    "",
    'And the earth was without form;<note placement="foot"><reference>1.2 </reference>'
    "Heb. a note</note> and <transChange>was</transChange> void. ",
    '<title canonical="true" type="psalm">A Psalm of David.</title> <l level="1"/>'
    "The \\nd <w>LORD</w></divineName> is my shepherd; I shall not w<w>ant</w>. <l/>",
]
NEW = [
    "",
    "<chapter/> <title>A heading</title> ",
    "Jesus <q>wept</q>.",
    "Caesar&apos;s &amp; God&#8217;s ¶ æ — ",
]
EXPECTED = (
    "In the beginning God created the heaven and the earth.\n"
    "And the earth was without form; and was void.\n"
    "A Psalm of David. The LORD is my shepherd; I shall not want.\n"
    "Jesus wept.\n"
    "Caesar's & God’s ¶ æ —\n"
)


def _write_testament(directory: Path, name: str, verses: list[str], per_block: int = 2) -> None:
    """Write ``name``.bzz/.bzs/.bzv holding ``verses``, ``per_block`` slots per zlib block."""
    data, blocks, index = b"", b"", b""
    for first in range(0, len(verses), per_block):
        raw, entries = b"", []
        for verse in verses[first : first + per_block]:
            encoded = verse.encode("utf-8")
            entries.append((len(raw), len(encoded)))
            raw += encoded
        packed = zlib.compress(raw)
        blocks += struct.pack("<III", len(data), len(packed), len(raw))
        number = first // per_block
        for start, size in entries:
            index += struct.pack("<IIH", number if size else 0, start if size else 0, size)
        data += packed
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.bzz").write_bytes(data)
    (directory / f"{name}.bzs").write_bytes(blocks)
    (directory / f"{name}.bzv").write_bytes(index)


def _module(directory: Path) -> Path:
    _write_testament(directory, "ot", OLD)
    _write_testament(directory, "nt", NEW, per_block=3)
    return directory


def test_missing_package_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setattr(text_corpus, "SEARCH_DIRS", [str(tmp_path / "nowhere")])
    with pytest.raises(DatasetUnavailableError, match=r"`apt-get install -y sword-text-kjv`") as e:
        text_corpus.load_text("kjv")
    message = str(e.value)
    assert "Debian package 'sword-text-kjv', which is not installed" in message
    assert str(tmp_path / "nowhere" / KJV_SUBDIR) in message
    assert isinstance(e.value, OSError)
    with pytest.raises(DatasetUnavailableError, match="sword-text-kjv"):
        text_corpus.corpus_path()


def test_reads_a_stand_in_for_the_installed_module(monkeypatch, tmp_path):
    module = _module(tmp_path / "share" / "sword" / KJV_SUBDIR)
    roots = [str(tmp_path / "empty"), str(tmp_path / "share" / "sword")]
    monkeypatch.setattr(text_corpus, "SEARCH_DIRS", roots)
    assert text_corpus.corpus_path("kjv") == module
    text = text_corpus.load_text("kjv")
    assert text == EXPECTED
    vocab = CharVocabulary().fit(text)
    assert vocab.decode(vocab.encode(text)) == text


def test_read_ztext_returns_every_slot(tmp_path):
    module = _module(tmp_path)
    assert text_corpus.read_ztext(module) == OLD + NEW
    assert text_corpus.load_text(path=module) == EXPECTED


@pytest.mark.parametrize(
    "markup,expected",
    [
        ('<w lemma="strong:G2424">Jesus</w> <w lemma="strong:G1145">wept</w>.', "Jesus wept."),
        ("He <w>tha</w>t soweth", "He that soweth"),  # a word split across tags
        ('sin<note placement="foot">or, <seg>trespass</seg></note>—; and', "sin—; and"),
        ('<title type="x-section">Heading</title>Text', "Text"),
        (
            '<title canonical="true" type="psalm">To the chief Musician.</title> Hear',
            "To the chief Musician. Hear",
        ),
        ("the \\nd <w>LORD</w></divineName> and LORD\\+nd*: yes", "the LORD and LORD: yes"),
        ("  a \n\t b  ", "a b"),
        ("&lt;x&gt; &quot;q&quot;", '<x> "q"'),
        ("<chapter/> <lg/>", ""),
    ],
)
def test_osis_to_text(markup, expected):
    assert text_corpus.osis_to_text(markup) == expected


def test_missing_and_damaged_module_files(tmp_path):
    module = _module(tmp_path / "m")
    (module / "nt.bzv").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing SWORD module files .*nt\.bzv"):
        text_corpus.load_text(path=module)

    def damaged(name: str, mutate) -> Path:
        target = _module(tmp_path / name)
        path = target / "ot.bzs" if name.startswith("bzs") else target / "ot.bzv"
        if name.startswith("bzz"):
            path = target / "ot.bzz"
        path.write_bytes(mutate(path.read_bytes()))
        return target

    cases = [
        ("bzs-short", lambda b: b[:-1], "not a multiple of 12"),
        ("bzs-offset", lambda b: struct.pack("<III", 10**6, 5, 5) + b[12:], "lies outside"),
        (
            "bzs-size",
            lambda b: b[:8] + struct.pack("<I", 1 + struct.unpack("<I", b[8:12])[0]) + b[12:],
            "inflates to",
        ),
        ("bzs-bomb", lambda b: b[:8] + struct.pack("<I", 2**31) + b[12:], "too large"),
        ("bzz-garbage", lambda b: b"\x00" * len(b), "not valid zlib data"),
        ("bzv-short", lambda b: b[:-3], "not a multiple of 10"),
        ("bzv-block", lambda b: b[:-10] + struct.pack("<IIH", 99, 0, 4), "points outside"),
        ("bzv-range", lambda b: b[:-10] + struct.pack("<IIH", 0, 0, 60000), "points outside"),
    ]
    for name, mutate, match in cases:
        with pytest.raises(ValueError, match=match):
            text_corpus.load_text(path=damaged(name, mutate))


def test_non_utf8_verse_and_empty_module(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    raw = b"okcaf\xe9"  # slot 1 holds "caf" + a lone Latin-1 byte
    packed = zlib.compress(raw)
    (bad / "ot.bzz").write_bytes(packed)
    (bad / "ot.bzs").write_bytes(struct.pack("<III", 0, len(packed), len(raw)))
    (bad / "ot.bzv").write_bytes(struct.pack("<IIH", 0, 0, 2) + struct.pack("<IIH", 0, 2, 4))
    _write_testament(bad, "nt", ["x"])
    with pytest.raises(ValueError, match="verse slot 1 is not UTF-8"):
        text_corpus.load_text(path=bad)
    empty = tmp_path / "empty"
    _write_testament(empty, "ot", ["<chapter/>", ""])
    _write_testament(empty, "nt", [""])
    with pytest.raises(ValueError, match="holds no verse text"):
        text_corpus.load_text(path=empty)


def test_unknown_corpus_name():
    with pytest.raises(ValueError, match=r"unknown corpus 'shakespeare'; available: \['kjv'\]"):
        text_corpus.load_text("shakespeare")
    with pytest.raises(ValueError, match="unknown corpus"):
        text_corpus.corpus_path(None)


def test_the_installed_kjv_when_present():
    try:
        text_corpus.corpus_path("kjv")
    except DatasetUnavailableError:
        pytest.skip("needs the Debian package sword-text-kjv: apt-get install -y sword-text-kjv")
    text = text_corpus.load_text("kjv")
    lines = text.splitlines()
    assert len(lines) == 31_102
    assert lines[0] == "In the beginning God created the heaven and the earth."
    assert lines[-1] == "The grace of our Lord Jesus Christ be with you all. Amen."
    assert lines[14_236] == "A Psalm of David. The LORD is my shepherd; I shall not want."
    assert len(text) == 4_149_877
    assert not any(c in text for c in "<>\\&")  # no markup left
    assert CharVocabulary().fit(text).vocab_size == 2 + 69
