"""Server replies -> the lines `wsk` prints: typed JSON, list tables, summaries, activation rows."""

from __future__ import annotations

import datetime as dt
import io

from tests.cli.support import output
from whisk.cli.activations import strip_timestamp
from whisk.cli.client import Api
from whisk.cli.output import Output, dumps
from whisk.cli.shapes import ACTION, PACKAGE, RULE, TRIGGER, activation, field_names, field_value, render
from whisk.cli.tables import activation_rows, entity_rows, go_duration, print_activation_rows, print_entities, \
    summary
from whisk.cli.wskprops import Properties

ACTION_REPLY = {
    "updated": 1700000000000, "publish": False, "version": "0.0.1", "name": "hello", "namespace": "guest",
    "limits": {"memory": 256, "timeout": 60000, "logs": 10, "concurrency": 1},
    "parameters": [{"value": {"b": 1, "a": 2}, "key": "p"}],
    "exec": {"binary": False, "kind": "nodejs:20"}, "annotations": [{"key": "exec", "value": "nodejs:20"}],
    "entityType": "action",
}


def test_typed_action_keeps_go_field_order_and_sorts_untyped_values() -> None:
    text = dumps(render(ACTION_REPLY, ACTION))
    assert text == """{
    "namespace": "guest",
    "name": "hello",
    "version": "0.0.1",
    "exec": {
        "kind": "nodejs:20",
        "binary": false
    },
    "annotations": [
        {
            "key": "exec",
            "value": "nodejs:20"
        }
    ],
    "parameters": [
        {
            "key": "p",
            "value": {
                "a": 2,
                "b": 1
            }
        }
    ],
    "limits": {
        "timeout": 60000,
        "memory": 256,
        "logs": 10,
        "concurrency": 1
    },
    "publish": false,
    "updated": 1700000000000
}
"""


def test_a_value_nested_as_deep_as_the_server_stores_prints() -> None:
    """`whisk trigger get` of an entity whose parameter nests ~490 levels (the server takes 500) died with a
    RecursionError: sorting a value's keys took two frames a level. Printed now, keys sorted at every level."""
    levels = 495
    value: object = {"z": 1, "a": 2}
    for level in range(levels):
        value = {"y": value, "b": level} if level % 2 else [value]
    reply = {"namespace": "guest", "name": "t", "version": "0.0.1", "parameters": [{"key": "d", "value": value}]}
    text = dumps(render(reply, TRIGGER))
    assert text.count("[") == (levels + 1) // 2 + 1 and '"a": 2,\n' in text
    assert text.index('"b": ') < text.index('"y": ')


def test_omitempty_rules() -> None:
    assert render({"name": "t", "annotations": [], "parameters": [], "limits": {}, "rules": {}}, TRIGGER) == \
        {"name": "t", "limits": {}}
    assert render({"name": "", "publish": None}, TRIGGER) == {"name": ""}     # trigger `name` is never omitted
    rule = render({"name": "r", "trigger": {"path": "guest", "name": "t"}, "action": {"path": "guest", "name": "a"},
                   "status": "active"}, RULE)
    assert list(rule) == ["name", "status", "trigger", "action"]
    package = render({"name": "p", "binding": {}, "actions": [{"name": "a", "version": "0.0.1", "x": 1}],
                      "publish": True}, PACKAGE)
    assert package == {"name": "p", "publish": True, "binding": {}, "actions": [{"name": "a", "version": "0.0.1"}]}
    assert "binding" not in render({"name": "p", "binding": False}, PACKAGE)


def test_activation_shape_recomputes_status_code_and_keeps_nulls() -> None:
    record = activation({"activationId": "a" * 32, "response": {"status": "application error", "success": False,
                                                                "result": {"error": "x"}}, "name": "n"})
    assert record["statusCode"] == 1
    assert record["response"] == {"status": "application error", "statusCode": 0, "success": False,
                                  "result": {"error": "x"}}
    assert record["logs"] is None and record["annotations"] is None and record["duration"] == 0
    assert list(record)[:5] == ["namespace", "name", "version", "subject", "activationId"]


def test_field_filters() -> None:
    fields = field_names(ACTION)
    assert field_value(ACTION_REPLY, fields["limits"]) == {"timeout": 60000, "memory": 256, "logs": 10,
                                                           "concurrency": 1}
    assert field_value(ACTION_REPLY, fields["publish"]) is False
    assert field_value({}, fields["annotations"]) is None
    assert field_value({}, fields["name"]) == ""
    assert "delannotations" in fields and "bogus" not in fields


def test_entity_tables() -> None:
    rows = [{"namespace": "guest/pkg", "name": "b", "annotations": [{"key": "exec", "value": "python:3"}]},
            {"namespace": "guest", "name": "Z", "annotations": [{"key": "exec", "value": "nodejs:20"}]},
            {"namespace": "guest", "name": "a", "annotations": [{"key": "exec", "value": "sequence"}]}]
    assert entity_rows("actions", rows[:1]) == [f"{'/guest/pkg/b':<70} private python:3"]
    out = output()
    print_entities(out, "actions", rows, name_sort=True)
    lines = out.stdout.getvalue().splitlines()
    assert lines[0] == "actions"
    assert [line.split()[0] for line in lines[1:]] == ["/guest/Z", "/guest/a", "/guest/pkg/b"]
    assert entity_rows("packages", [{"namespace": "g", "name": "p", "publish": True}]) == [f"{'/g/p':<70} shared"]
    assert entity_rows("rules", [{"namespace": "g", "name": "r", "status": "active"}]) == \
        [f"{'/g/r':<70} {'private':<20} active"]
    out = output()
    print_entities(out, "triggers", [], name_sort=False)
    assert out.stdout.getvalue() == "triggers\n"


def test_go_durations() -> None:
    assert [go_duration(ms) for ms in (0, 2, 999, 1000, 3460, 62000, 61001, 3_600_000)] == \
        ["0s", "2ms", "999ms", "1s", "3.46s", "1m2s", "1m1.001s", "1h0m0s"]


def test_activation_rows() -> None:
    start = 1_700_000_000_000
    records = [
        {"activationId": "a" * 32, "namespace": "guest", "name": "hello", "version": "0.0.1", "start": start,
         "end": start + 3460, "duration": 3460, "statusCode": 0,
         "annotations": [{"key": "kind", "value": "nodejs:20"}, {"key": "initTime", "value": 30}]},
        {"activationId": "b" * 32, "namespace": "guest", "name": "t", "version": "0.0.1", "start": start,
         "statusCode": 2, "annotations": []},
    ]
    lines = activation_rows(records)
    assert lines[0] == f"{'Datetime':<19} {'Activation ID':<32} {'Kind':<9} {'Start':<6}{'Duration':<10} " \
                       f"{'Status':<15} {'Entity':<6}"
    when = dt.datetime.fromtimestamp(start / 1000).strftime("%Y-%m-%d %H:%M:%S")
    assert lines[1] == f"{when} {'a' * 32} nodejs:20 cold  3.46s      success         guest/hello:0.0.1"
    assert lines[2] == f"{when} {'b' * 32} unknown   warm  0s         developer error guest/t:0.0.1"
    assert activation_rows([]) == [""]
    tty = Output(io.StringIO(), io.StringIO(), color=True)          # on a terminal the header is bold, as wsk's
    print_activation_rows(tty, records)
    assert tty.stdout.getvalue().splitlines()[0] == f"\x1b[1m{lines[0]}\x1b[0m"
    assert tty.stdout.getvalue().splitlines()[1] == lines[1]


def test_summaries() -> None:
    out = output()
    action = {"namespace": "guest", "name": "a", "parameters": [{"key": "x", "value": 1}, {"key": "b", "value": 2}],
              "annotations": [{"key": "parameters", "value": [{"name": "c"}]}, {"key": "final", "value": True}]}
    assert summary(out, "action", action) == ["action /guest/a: Returns a result based on parameters b, c and x",
                                              "   (parameters: **b, c, **x)"]
    assert summary(out, "trigger", {"namespace": "g", "name": "t"}) == ["trigger /g/t", "   (parameters: none defined)"]
    described = {"namespace": "g", "name": "p", "annotations": [{"key": "description", "value": "Utilities"}],
                 "actions": [{"name": "cat", "parameters": [{"key": "lines", "value": []}]}],
                 "feeds": [{"name": "changes"}]}
    assert summary(out, "package", described) == [
        "package /g/p: Utilities", "   (parameters: none defined)",
        " action /g/p/cat: Returns a result based on parameter lines", "   (parameters: *lines)",
        " feed   /g/p/changes", "   (parameters: none defined)"]
    assert summary(out, "rule", {"namespace": "g", "name": "r", "status": "active"}) == ["rule /g/r",
                                                                                         "   (status: active)"]


def test_log_stripping() -> None:
    assert strip_timestamp("2024-05-01T10:00:00.123456789Z stdout: hello world") == "hello world"
    assert strip_timestamp("2024-05-01T10:00:00.1Z    stderr: oops") == "oops"
    assert strip_timestamp("no stamp here") == "no stamp here"


def test_color_only_on_terminals() -> None:
    plain = output()
    plain.ok(f"created action {plain.bold('x')}")
    assert plain.stdout.getvalue() == "ok: created action x\n"
    tty = Output(io.StringIO(), io.StringIO(), color=True)
    tty.ok(f"created action {tty.bold('x')}")
    assert tty.stdout.getvalue() == "\x1b[32mok:\x1b[0m created action \x1b[1mx\x1b[0m\n"


def test_verbose_headers_as_go_prettyjson() -> None:
    """`wsk -v` prints headers with go-prettyjson: sorted keys, 2-space indent, no HTML escaping; on a terminal
    keys bold blue and strings bold green."""
    headers = {"X-B": ["1", "2"], "Content-Type": ["a<b>&"], "Empty": []}
    plain = Api(Properties(path="x", apihost="http://h"), output())._headers_json(headers)
    assert plain == ('{\n  "Content-Type": [\n    "a<b>&"\n  ],\n  "Empty": [],\n'
                     '  "X-B": [\n    "1",\n    "2"\n  ]\n}')
    colored = Api(Properties(path="x", apihost="http://h"),
                  Output(io.StringIO(), io.StringIO(), color=True))._headers_json({"K": ["v"]})
    assert colored == '{\n  \x1b[34;1m"K"\x1b[0m: [\n    \x1b[32;1m"v"\x1b[0m\n  ]\n}'
