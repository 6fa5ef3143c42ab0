"""entities/charsets.py: declared charsets as codecs, only real text charsets; the rest is None (read as UTF-8)."""

from __future__ import annotations

import pytest

from whisk.entities.charsets import codec


@pytest.mark.parametrize("declared, name", [
    ("UTF-8", "utf-8"), ("utf8", "utf-8"), ("ISO-8859-1", "iso8859-1"), ("latin1", "iso8859-1"),
    ("UTF-16", "utf-16"), ("UTF-16LE", "utf-16-le"), ("windows-1252", "cp1252"), ("Shift_JIS", "shift_jis"),
    ("koi8-u", "koi8-u"), (" us-ascii ", "ascii"),
])
def test_text_charsets_are_their_codecs(declared: str, name: str) -> None:
    assert codec(declared) == name


@pytest.mark.parametrize("declared", ["bogus", "base64", "rot13", "zlib", "hex", "bz2", "uu", "quopri", "idna",
                                      "punycode", "utf-7", "unicode_escape", "raw_unicode_escape", "undefined",
                                      "charmap", "aliases", "mbcs", "", "\x00", "\udce9"])
def test_anything_else_is_none(declared: str) -> None:
    assert codec(declared) is None
