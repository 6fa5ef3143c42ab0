"""The strict JSON parser every request body and action result goes through."""

from __future__ import annotations

import pytest

from whisk.entities.json_value import MAX_DEPTH, NotJson, TooDeep, depth, parse


@pytest.mark.parametrize("raw", [b'{"a":NaN}', b"[Infinity]", b"-Infinity", b'"\\ud800"', b'{"\\udfff":1}',
                                 b'["\\ud83d"]', '"\ud800"', b"", b"{", b"nope"])
def test_refused(raw: bytes | str) -> None:
    with pytest.raises(NotJson):
        parse(raw)


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 990, 5000, 200_000])
def test_too_deep(levels: int) -> None:
    with pytest.raises(TooDeep):
        parse(b"[" * levels + b"]" * levels)


def test_accepted() -> None:
    assert parse(b'{"s":"\\ud83d\\ude00","n":1.5}') == {"s": "\U0001F600", "n": 1.5}
    assert parse(b'"\\\\ud800"') == "\\ud800"                # an escaped backslash, not a surrogate
    assert parse(b'"\xed\xa0\x80"') == "\ufffd\ufffd\ufffd"  # UTF-8-encoded surrogate bytes: replaced
    assert depth(parse(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)) == MAX_DEPTH
    assert depth(parse(b'{"a":[1,{"b":[]}],"c":{}}')) == 4 and depth(parse(b"3")) == 0
