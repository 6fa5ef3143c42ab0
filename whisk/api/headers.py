"""Request header values as text whisk can carry on. aiohttp decodes header bytes as UTF-8 and keeps a byte that is
not UTF-8 as a lone surrogate (`surrogateescape`); such a string has no UTF-8 form, so it cannot become JSON, a log
line or a response header, and it failed wherever it went (a transaction id, `__ow_headers`). Pekko's header parser
reads such bytes one byte to one character, ISO-8859-1 (`\\xe9` is `é`), and OpenWhisk hands the value on as that
string: each such byte becomes its ISO-8859-1 character here too. Values that are valid UTF-8 stay as aiohttp reads
them (what the client meant), and ASCII, nearly every value, is passed through after one C-speed check."""

from __future__ import annotations

import re
from collections.abc import Iterable

_ESCAPED = re.compile("[\udc80-\udcff]")


def _latin1(match: re.Match[str]) -> str:
    return chr(ord(match.group()) - 0xDC00)          # surrogateescape keeps byte b as U+DC00 + b


def text(value: str) -> str:
    """The value with every byte aiohttp could not decode as its ISO-8859-1 character."""
    return value if value.isascii() else _ESCAPED.sub(_latin1, value)


def items(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """(name, value) pairs with values as `text` makes them (names are tokens: ASCII, or refused by the parser)."""
    return [(name, text(value)) for name, value in headers]
