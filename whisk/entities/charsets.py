"""The charset a Content-Type declares, as a Python codec, when it names a real text charset; None otherwise.

Python's codec registry holds more than charsets: bytes-to-bytes and str-to-str transforms (`base64`, `zlib`,
`rot13`, ...), and text codecs that are no charset a client or the JVM would send, some of which decode bytes into
lone surrogates that no later encoder takes (`utf-7`, `unicode_escape`, `idna`, `punycode`). Used as a body's
charset, each made a web action a 500. Only names the `encodings` package knows are looked up at all: the registry
remembers every name it was asked for, so a caller's arbitrary names must not reach it.
"""

from __future__ import annotations

import codecs
import encodings
import pkgutil
from encodings.aliases import aliases

_KNOWN = (frozenset(aliases) | frozenset(aliases.values())
          | frozenset(module.name for module in pkgutil.iter_modules(encodings.__path__)))
# Text codecs that are not charsets of text on the wire (the transforms are told apart by `_is_text_encoding`).
_NOT_CHARSETS = frozenset({"utf_7", "unicode_escape", "raw_unicode_escape", "idna", "punycode", "undefined",
                           "charmap", "aliases"})
_codecs: dict[str, str | None] = {}      # by normalized known name: bounded by _KNOWN


def codec(charset: str) -> str | None:
    """The codec name for a declared charset (`ISO-8859-1` -> `iso8859-1`), or None if it is no text charset."""
    key = encodings.normalize_encoding(charset.strip().lower())
    if key not in _KNOWN:
        return None
    if key not in _codecs:
        try:
            info = codecs.lookup(key)
        except LookupError:                  # a platform's codec (mbcs, oem) missing here
            _codecs[key] = None
        else:
            text = getattr(info, "_is_text_encoding", True) and info.name.replace("-", "_") not in _NOT_CHARSETS
            _codecs[key] = info.name if text else None
    return _codecs[key]
