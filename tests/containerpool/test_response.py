"""Container replies to activation responses: every row of docs/openwhisk.md §4's table, and the /init failures."""

from __future__ import annotations

import json

from whisk.containerpool.response import init_response, keeps_container, run_response, timed_out
from whisk.containers.base import Interaction

MB = 1_048_576


def reply(status: int | None = 200, body: object = b"", duration: int = 5, **flags: bool) -> Interaction:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Interaction(1000, 1000 + duration, status, data, **flags)


def run(r: Interaction, timeout_ms: int = 60_000, max_bytes: int = MB) -> dict:
    return run_response(r, timeout_ms, max_bytes)


def test_success_object_and_array_with_size():
    assert run(reply(body={"a": 1})) == {"statusCode": 0, "result": {"a": 1}, "size": 8}
    assert run(reply(body=[1, 2])) == {"statusCode": 0, "result": [1, 2], "size": 6}
    # OpenWhisk's size is the reply's length as a Java string: UTF-16 units, two for a character beyond the BMP
    assert run(reply(body='{"e":"\U0001F600\u00e9"}'.encode()))["size"] == 11


def test_error_field_is_an_application_error_with_only_the_error():
    r = run(reply(body={"error": {"why": "no"}, "other": 1}))
    assert r["statusCode"] == 1 and r["result"] == {"error": {"why": "no"}}


def test_non_200_with_error_is_a_developer_error():
    assert run(reply(502, {"error": "boom"}))["result"] == {"error": "boom"}
    assert run(reply(502, {"error": "boom"}))["statusCode"] == 2


def test_invalid_json_or_non_object_is_a_developer_error_quoting_the_body():
    for status, body in ((200, b"hello"), (200, b"42"), (200, b'"text"'), (502, {"no": "error"}), (500, [1]),
                         (200, b"NaN")):
        r = run(reply(status, body))
        text = body.decode() if isinstance(body, bytes) else json.dumps(body)
        assert r["statusCode"] == 2
        assert r["result"] == {"error": f"The action did not produce a valid JSON or JSON Array response: {text}"}
    assert run(reply(200, b""))["result"]["error"] == \
        "The action did not produce a valid JSON or JSON Array response."


def test_no_response_oom_and_timeout():
    assert run(reply(None, exited=True))["result"]["error"] == \
        "The action did not produce a valid response and exited unexpectedly."
    assert run(reply(None, oom_killed=True, exited=True))["result"]["error"] == \
        "The action exhausted its memory and was aborted."
    r = reply(None, timed_out=True, duration=100)
    assert run(r, timeout_ms=100) == {"statusCode": 2, "result": {
        "error": "The action exceeded its time limits of 100 milliseconds."}}
    assert timed_out(r, 100)
    late = reply(200, {"ok": True}, duration=150)              # answered, but after the limit: still a timeout
    assert run(late, timeout_ms=100)["statusCode"] == 2 and timed_out(late, 100)
    assert not timed_out(reply(200, {"ok": True}), 100)


def test_result_over_the_limit_is_an_application_error_with_the_truncated_text():
    body = json.dumps({"x": "y" * 40}).encode()
    r = run(reply(200, body), max_bytes=10)
    assert r["statusCode"] == 1 and r["size"] == len(body)          # the whole reply's length, as OpenWhisk keeps it
    assert r["result"]["error"] == (f"The action produced a response that exceeded the allowed length: "
                                    f"{len(body)} > 10 bytes. The truncated response was: {body[:10].decode()}")


def test_init_success_and_failures():
    assert init_response(reply(200, {"OK": True}), 1000) is None
    assert init_response(reply(502, {"error": "SyntaxError"}), 1000) == {
        "statusCode": 2, "result": {"error": "SyntaxError"}, "size": 24}
    assert init_response(reply(500, b"oops"), 1000) == {
        "statusCode": 2, "result": {"error": "The action failed during initialization: oops"}, "size": 4}
    assert init_response(reply(None, exited=True), 1000)["result"]["error"] == \
        "The action did not initialize and exited unexpectedly."
    assert init_response(reply(None, oom_killed=True), 1000)["result"]["error"] == \
        "The action exhausted its memory and was aborted."
    assert init_response(reply(None, timed_out=True, duration=1000), 1000)["result"]["error"] == \
        "The action exceeded its time limits of 1000 milliseconds during initialization."


def test_an_exchange_cut_at_its_time_limit_lasted_the_limit() -> None:
    """The deadline runs on the loop's clock; the wall-clock milliseconds around it read 999 of 1,000 now and then,
    a record with `timeout: true` shorter than its limit, which OpenWhisk never writes."""
    from whisk.containerpool.proxy import _end_ms

    def end(reply: Interaction) -> int:
        return _end_ms(reply, 1000, timed_out(reply, 1000))
    assert end(Interaction(1000, 1999, timed_out=True)) == 2000
    assert end(Interaction(1000, 2003, timed_out=True)) == 2003
    assert end(Interaction(1000, 1400, status=200)) == 1400
    assert end(Interaction(1000, 1999, timed_out=True, oom_killed=True)) == 1999   # memory, not time


def test_which_responses_keep_the_container():
    assert keeps_container({"statusCode": 0}) and keeps_container({"statusCode": 1})
    assert not keeps_container({"statusCode": 2}) and not keeps_container({"statusCode": 3})
