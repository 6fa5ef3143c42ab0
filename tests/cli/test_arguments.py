"""The -p/-P/-a/-A/-F/-T pre-pass, parameter JSON, and qualified names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from whisk.cli import names
from whisk.cli.arguments import extract, key_values, merge
from whisk.cli.errors import CliError


def test_prepass_removes_pairs_anywhere_and_keeps_order() -> None:
    out = extract(["action", "-p", "a", "1", "invoke", "x", "--param", "b", "two", "-a", "k", "true", "-b"])
    assert out.argv == ["action", "invoke", "x", "-b"]
    assert [json.loads(f) for f in out.params] == [{"a": 1}, {"b": "two"}]
    assert [json.loads(f) for f in out.annotations] == [{"k": True}]


@pytest.mark.parametrize("value,expected", [
    ("5", 5), ("1.5", 1.5), ("true", True), ("null", None), ('"s"', "s"), ('{"x": [1]}', {"x": [1]}),
    ("[1, 2]", [1, 2]), ("hello", "hello"), ("a b", "a b"), ('say "hi"', 'say "hi"'), ("back\\slash", "back\\slash"),
    ("NaN", "NaN"), ("", ""),
])
def test_values_are_json_when_they_parse_else_strings(value: str, expected: object) -> None:
    assert merge(extract(["-p", "k", value]).params) == {"k": expected}


def test_later_fragments_win_and_files_merge_in_order(tmp_path: Path) -> None:
    file = tmp_path / "p.json"
    file.write_text('{"a": "file", "b": {"deep": 1}}')
    out = extract(["-p", "a", "first", "-P", str(file), "--param", "c", "3", "--param-file", str(file)])
    assert merge(out.params) == {"a": "file", "b": {"deep": 1}, "c": 3}
    assert key_values(merge(out.params)) == [{"key": "a", "value": "file"}, {"key": "b", "value": {"deep": 1}},
                                             {"key": "c", "value": 3}]


def test_feed_and_trigger_params_are_separate() -> None:
    out = extract(["trigger", "create", "t", "-F", "f", "1", "-T", "t", "2", "--feed-param", "g", "x"])
    assert out.argv == ["trigger", "create", "t"]
    assert merge(out.feed_params) == {"f": 1, "g": "x"} and merge(out.trigger_params) == {"t": 2}


@pytest.mark.parametrize("argv,message", [
    (["-p", "a"], "Failed to parse arguments: The parameter arguments are invalid: Arguments for '-p' must be a "
                  "key/value pair"),
    (["x", "--annotation", "k"], "Failed to parse arguments: The annotation arguments are invalid: Arguments for "
                                 "'--annotation' must be a key/value pair"),
    (["-F", "a"], "Failed to parse arguments: Arguments for '-F' must be a key/value pair"),
    (["-P"], "Failed to parse arguments: The parameter arguments are invalid: An argument must be provided for '-P'"),
])
def test_prepass_errors_exit_1(argv: list[str], message: str) -> None:
    with pytest.raises(CliError) as caught:
        extract(argv)
    assert caught.value.message == message and caught.value.status == 1 and caught.value.usage


def test_missing_param_file_exits_2(tmp_path: Path) -> None:
    with pytest.raises(CliError) as caught:
        extract(["-P", str(tmp_path / "nope.json")])
    assert caught.value.message == (f"Failed to parse arguments: File '{tmp_path / 'nope.json'}' is not a valid "
                                    "file or it does not exist")
    assert caught.value.status == 2 and caught.value.usage
    with pytest.raises(CliError) as caught:
        extract(["action", "create", "a", "x.js", "-A", str(tmp_path)])      # a directory
    assert caught.value.message == (f"Failed to parse arguments: Unable to read the file '{tmp_path}': read "
                                    f"{tmp_path}: is a directory")
    assert caught.value.status == 1


@pytest.mark.parametrize("content", ["[1, 2]", "{not json", "3"])
def test_param_file_must_hold_one_object(tmp_path: Path, content: str) -> None:
    file = tmp_path / "bad.json"
    file.write_text(content)
    with pytest.raises(CliError) as caught:
        merge(extract(["-P", str(file)]).params)
    assert caught.value.message.startswith("Invalid parameter argument '[]string{")
    with pytest.raises(CliError, match="^Invalid annotation argument"):
        merge(extract(["-A", str(file)]).annotations, annotation=True)


@pytest.mark.parametrize("value", ["1e400", "-1e400", "1" + "0" * 400])
def test_values_beyond_a_float64_go_as_strings(value: str) -> None:
    """wsk's isValidJSON unmarshals into float64, so `-p k 1e400` sends the string "1e400", never `Infinity`."""
    params = merge(extract(["-p", "k", value]).params)
    assert params == {"k": value} and "Infinity" not in json.dumps(params)


@pytest.mark.parametrize("content,expected", [
    ('{"a": 1} trailing text', {"x": 1, "a": 1}),       # a Go json.Decoder reads the first value only
    ('{"a": 1}\n{"b": 2}\n', {"x": 1, "a": 1}),
    ("null", {}),                                       # null empties what came before
])
def test_param_files_decode_as_a_go_decoder(tmp_path: Path, content: str, expected: dict) -> None:
    file = tmp_path / "p.json"
    file.write_text(content)
    assert merge(extract(["-p", "x", "1", "-P", str(file)]).params) == expected


@pytest.mark.parametrize("content,detail", [
    ("", "EOF"),
    ("   \n", "EOF"),
    ("[1, 2]", "json: cannot unmarshal array into Go value of type map[string]interface {}"),
    ('"s"', "json: cannot unmarshal string into Go value of type map[string]interface {}"),
    ("3", "json: cannot unmarshal number into Go value of type map[string]interface {}"),
    ("true", "json: cannot unmarshal bool into Go value of type map[string]interface {}"),
    ("{bad", "invalid character 'b' looking for beginning of object key string"),
    ('{"a" 1}', "invalid character '1' after object key"),
    ('{"a": 1 "b": 2}', "invalid character '\"' after object key:value pair"),
    ('{"a": [1 2]}', "invalid character '2' after array element"),
    ('{"a": }', "invalid character '}' looking for beginning of value"),
    ('{"a": 1', "unexpected EOF"),
    ('{"a": "x', "unexpected EOF"),
])
def test_param_file_errors_read_as_go_writes_them(tmp_path: Path, content: str, detail: str) -> None:
    file = tmp_path / "bad.json"
    file.write_text(content)
    with pytest.raises(CliError) as caught:
        merge(extract(["-P", str(file)]).params)
    assert caught.value.message.endswith("': " + detail)


@pytest.mark.parametrize("text,namespace,package,entity", [
    ("hello", "_", "", "hello"),
    ("pkg/hello", "_", "pkg", "hello"),
    ("/guest/hello", "guest", "", "hello"),
    ("/guest/pkg/hello", "guest", "pkg", "hello"),
    ("guest/pkg/hello", "guest", "pkg", "hello"),
    ("/guest", "guest", "", ""),
    ("my action", "_", "", "my action"),
])
def test_qualified_names(text: str, namespace: str, package: str, entity: str) -> None:
    qn = names.parse(text)
    assert (qn.namespace, qn.package, qn.entity) == (namespace, package, entity)


@pytest.mark.parametrize("text", ["", ".", "/", "a//b", "/ns/a/b/c", "a/b/c/d", "/ns/.", "//x"])
def test_invalid_qualified_names(text: str) -> None:
    with pytest.raises(CliError) as caught:
        names.parse(text)
    assert caught.value.message == f"'{text}' is not a valid qualified name: A valid qualified name must be specified."
    assert caught.value.status == 1 and caught.value.usage


def test_names_in_bodies_and_paths() -> None:
    assert [names.fully_qualified(n) for n in ("x", "p/x", "ns/p/x", "/ns/x")] == ["/_/x", "/_/p/x", "/ns/p/x",
                                                                                   "/ns/x"]
    assert names.parse("pkg/a b?c").path == "pkg/a%20b%3Fc"
    assert names.parse("/guest/pkg/x").full == "/guest/pkg/x"
    assert names.namespace_only("/guest") == "guest"
    with pytest.raises(CliError, match="An entity name, 'foo', was provided instead of a namespace"):
        names.namespace_only("foo")
