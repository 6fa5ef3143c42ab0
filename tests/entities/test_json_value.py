"""The strict JSON parser every request body and action result goes through."""

from __future__ import annotations

import json

import pytest

from whisk.entities.json_value import MAX_DEPTH, NotJson, TooDeep, copy_of, decode, depth, encode, parse


@pytest.mark.parametrize("raw", [b'{"a":NaN}', b"[Infinity]", b"-Infinity", b'"\\ud800"', b'{"\\udfff":1}',
                                 b'["\\ud83d"]', '"\ud800"', b"", b"{", b"nope",
                                 b"1e400", b'{"a":[-1E+309]}', b"1" + b"0" * 400 + b".0"])
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
    # Float semantics the runtimes share stay: underflow is 0.0, a long integer is exact, the largest float is kept.
    assert parse(b"[1e-400,1" + b"0" * 400 + b",1.7976931348623157e308]") == [0.0, 10**400, 1.7976931348623157e308]


@pytest.mark.parametrize("raw", [
    b'{"a":[1,2.5,null,true,"\xc3\xa9"],"b":{},"c":-0.0,"d":1E5,"e":"\\u00e9"}',
    b'[123456789012345678,-123456789012345678,1234567890123456789012,-9223372036854775809,18446744073709551616]',
    b'[4.9e-324,2.2250738585072014e-308,0.30000000000000004,1.7976931348623157e308,-1e-400]',
    b' \t\r\n{ "a" : [ ] }\n',
    b'{"a":1,"a":2}',                              # the last of a duplicated key, both ways
])
@pytest.mark.parametrize("as_text", [False, True])
def test_parse_reads_what_the_strict_decoder_reads(raw: bytes, as_text: bool) -> None:
    """orjson reads ordinary texts first: the same values and types as json's strict reading, an integer of any
    length exact."""
    expected = json.JSONDecoder().decode(raw.decode())
    got = parse(raw.decode() if as_text else raw)
    assert repr(got) == repr(expected)


@pytest.mark.parametrize("value", [
    {"a": [1, 2.5, None, True, "é\u2028"], "b": {}},
    {"big": 2**70, "neg": -(2**64)},      # beyond 64 bits: orjson refuses, json writes them
    {1: "int key"},                        # a key that is not a string: json makes it one
    [1e16, 1e-7, 0.1, -0.0],
])
def test_encode_is_json_of_the_same_value(value: object) -> None:
    """`encode` (orjson, json for what orjson refuses) reads back as what json writes, never as less."""
    assert json.loads(encode(value)) == json.loads(json.dumps(value))


@pytest.mark.parametrize("raw", [
    b'{"a":[1,2.5,null,true,"\xc3\xa9"],"b":{}}',
    b'{"big":1180591620717411303424,"neg":-18446744073709551616,"edge":18446744073709551615}',
    b'{"id":"1234567890123456789012"}',            # a long digit run in a string: json reads it, the same
    b'[1e16,1e-7,0.1,-0.0,1E400,NaN]',             # orjson refuses the last two: json reads them as before
    b'{"s":"\\ud800"}',                           # a lone surrogate escape: json's reading
])
def test_decode_reads_what_json_reads(raw: bytes) -> None:
    expected, got = json.loads(raw), decode(raw)
    assert repr(got) == repr(expected)              # the same types too: an integer never comes back a float


def test_encode_refuses_a_lone_surrogate_as_before() -> None:
    with pytest.raises(ValueError):
        encode({"s": "\ud800"})


def test_copy_of_is_deep() -> None:
    doc = {"a": [{"b": 1}], "c": "s"}
    copied = copy_of(doc)
    assert copied == doc
    copied["a"][0]["b"] = 2
    assert doc["a"][0]["b"] == 1


def test_an_integer_past_pythons_digits_is_refused_in_whisks_words() -> None:
    """json let Python's ValueError through: the client read "use sys.set_int_max_str_digits() to increase the
    limit". The longest integer Python converts is still read exactly."""
    with pytest.raises(NotJson) as refused:
        parse(b'{"n":-' + b"9" * 4301 + b"}")
    assert "sys." not in str(refused.value) and "more digits than whisk reads (4300)" in str(refused.value)
    assert parse(b"[" + b"9" * 4300 + b"]") == [int("9" * 4300)]


def test_copy_of_needs_no_recursion() -> None:
    """Documents nest values MAX_DEPTH deep and more (a record wraps a result); copying one must not depend on the
    stack it runs on (Python's own equality would recurse: both are walked here)."""
    value: object = {"z": 1, "a": [2, {"k": 3}]}
    for level in range(5000):
        value = [value, {"b": level}] if level % 2 else {"z": value, "a": level}
    copied = copy_of(value)
    pairs = [(value, copied)]
    while pairs:
        original, copy = pairs.pop()
        assert type(original) is type(copy)
        if isinstance(original, dict):
            assert original is not copy and list(original) == list(copy)
            pairs.extend((original[key], copy[key]) for key in original)
        elif isinstance(original, list):
            assert original is not copy and len(original) == len(copy)
            pairs.extend(zip(original, copy))
        else:
            assert original == copy
