"""Invocation through the client end to end: `action invoke` (blocking, --result, non-blocking, application
errors 246, not finished 202), the `activation` commands, `activation poll`, feeds, and trigger fires."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.cli.conftest import NODE_ECHO, Ran, Wsk, make_wsk, unique
from tests.support.processes import terminate, whisk_server
from tests.support.waiting import until

pytestmark = pytest.mark.invoke
ID = r"[0-9a-f]{32}"


@pytest_asyncio.fixture(loop_scope="session")
async def echo(wsk: Wsk, echo_js: Path, invoke_ready: None) -> AsyncIterator[str]:
    name = unique("echo")
    assert (await wsk("action", "create", name, str(echo_js), "-p", "name", "Ada")).code == 0
    yield name
    await wsk("action", "delete", name)


def invoked(ran: Ran, name: str) -> tuple[str, str]:
    """(activation id, the rest) of output starting with `ok: invoked /_/NAME with id ID`."""
    first, _, rest = ran.out.partition("\n")
    match = re.fullmatch(rf"ok: invoked /_/{re.escape(name)} with id ({ID})", first)
    assert match, ran.out
    return match.group(1), rest


def json_documents(text: str) -> list[dict]:
    """Consecutive JSON documents, as `activation list --full` prints them."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while text[at:].strip():
        value, end = decoder.raw_decode(text, at + len(text[at:]) - len(text[at:].lstrip()))
        found.append(value)
        at = end
    return found


async def until_ok(wsk: Wsk, *args: str, deadline_s: float = 30, showing: str = "") -> Ran:
    """Repeat a command until it succeeds, its output `showing` that text (an activation record is written just
    after the reply: a list succeeds before it has it)."""
    return await until(f"wsk {' '.join(args)}", lambda: wsk(*args), deadline_s,
                       ok=lambda ran: ran.code == 0 and showing in ran.out, interval_s=0.1)


async def test_blocking_invoke(wsk: Wsk, echo: str) -> None:
    ran = await wsk("action", "invoke", echo, "--blocking", "-p", "name", "Bob")
    assert ran.code == 0 and ran.err == ""
    activation_id, rest = invoked(ran, echo)
    record = json.loads(rest)
    assert record["activationId"] == activation_id and record["name"] == echo
    assert list(record) == sorted(record)                        # untyped reply: keys sorted
    assert record["response"]["result"]["greeting"] == "hello Bob"
    assert record["response"]["status"] == "success" and record["response"]["success"] is True


async def test_result_only_and_param_file(wsk: Wsk, echo: str, tmp_path: Path) -> None:
    ran = await wsk("action", "invoke", echo, "-r")
    assert (ran.code, ran.err) == (0, "")
    assert json.loads(ran.out)["greeting"] == "hello Ada"        # the bound parameter
    payload = tmp_path / "payload.json"
    payload.write_text('{"name": "File", "n": [1, 2]}')
    ran = await wsk("action", "invoke", echo, "-r", "-P", str(payload))
    result = json.loads(ran.out)
    assert result["greeting"] == "hello File" and result["args"]["n"] == [1, 2]


async def test_non_blocking_then_activation_commands(wsk: Wsk, echo: str) -> None:
    ran = await wsk("action", "invoke", echo)
    assert ran.code == 0 and ran.err == ""
    activation_id, rest = invoked(ran, echo)
    assert rest == ""

    got = await until_ok(wsk, "activation", "get", activation_id)
    assert got.code == 0, got.err
    first, _, rest = got.out.partition("\n")
    assert first == f"ok: got activation {activation_id}"
    record = json.loads(rest)
    assert list(record)[:10] == ["namespace", "name", "version", "subject", "activationId", "start", "end",
                                 "duration", "statusCode", "response"]
    assert record["statusCode"] == 0 and record["response"]["result"]["greeting"] == "hello Ada"
    assert any(line.endswith("stdout: hello from Ada") for line in record["logs"])

    result = await wsk("activation", "result", activation_id)
    assert json.loads(result.out)["greeting"] == "hello Ada"
    logs = await wsk("activation", "logs", activation_id)
    assert any(re.fullmatch(r"\S+Z\s+stdout: hello from Ada", line) for line in logs.lines()), logs.out
    stripped = await wsk("activation", "logs", activation_id, "--strip")
    assert stripped.lines() == ["hello from Ada", "to stderr"]
    assert (await wsk("activation", "get", activation_id, "-g")).lines() == ["hello from Ada", "to stderr"]
    summary = await wsk("activation", "get", activation_id, "--summary")
    assert re.match(rf"activation result for '/guest/{echo}' \(success at \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{{4}} "
                    r"\S+\)\n", summary.out)
    field = await wsk("activation", "get", activation_id, "annotations")
    assert field.out.startswith(f"ok: got activation {activation_id}, displaying field annotations\n[")
    missing = await wsk("activation", "get", "0" * 32)
    assert missing.code == 148 and missing.err.startswith(f"error: Unable to get activation '{'0' * 32}': ")


async def test_application_error_exits_246(wsk: Wsk, echo: str) -> None:
    ran = await wsk("action", "invoke", echo, "-b", "-p", "fail", "x")
    assert ran.code == 246 and ran.out == ""
    first, _, rest = ran.err.partition("\n")
    assert re.fullmatch(rf"ok: invoked /_/{re.escape(echo)} with id {ID}", first)
    record = json.loads(rest)
    assert record["response"]["status"] == "application error" and record["response"]["result"] == \
        {"error": "bad x"}
    only = await wsk("action", "invoke", echo, "-r", "-p", "fail", "y")
    assert (only.code, only.out) == (246, "")
    assert json.loads(only.err) == {"error": "bad y"}
    assert "error:" not in only.err.split("\n")[0]


async def test_invoke_errors(wsk: Wsk, invoke_ready: None) -> None:
    name = unique("nothing")
    ran = await wsk("action", "invoke", name, "-b")
    assert ran.code == 148 and ran.out == ""
    assert re.fullmatch(rf"error: Unable to invoke action '{name}': .+ \(code \w+\)\nRun 'whisk --help' for "
                        r"usage.\n", ran.err)
    assert (await wsk("action", "invoke", name)).code == 148


async def test_activation_list_and_last(wsk: Wsk, echo: str) -> None:
    activation_id, _ = invoked(await wsk("action", "invoke", echo, "-b"), echo)
    listed = await until_ok(wsk, "activation", "list", echo, showing=activation_id)
    lines = listed.lines()
    assert lines[0].split() == ["Datetime", "Activation", "ID", "Kind", "Start", "Duration", "Status", "Entity"]
    row = next(line for line in lines[1:] if activation_id in line)
    assert re.fullmatch(rf"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d {activation_id} nodejs:\S+ +(cold|warm) +\S+ +success "
                        rf"+guest/{re.escape(echo)}:0\.0\.1", row)
    full = await wsk("activation", "list", echo, "--full", "--limit", "1")
    header, _, rest = full.out.partition("\n")
    assert header == "activations" and json.loads(rest)["activationId"] == activation_id

    last = await wsk("activation", "get", "--last")
    assert last.lines()[0] == f"ok: got activation {activation_id}"
    assert json.loads((await wsk("activation", "result", "-l")).out)["greeting"] == "hello Ada"
    assert (await wsk("activation", "logs", "--last", "-r")).lines() == ["hello from Ada", "to stderr"]
    since = await wsk("activation", "list", echo, "--since", str(int(time.time() * 1000) + 60_000))
    assert since.out == "\n"                                     # an empty list is one blank line


async def _read_until(stream: asyncio.StreamReader, pattern: str, deadline: float) -> list[str]:
    seen: list[str] = []
    while True:
        line = await asyncio.wait_for(stream.readline(), max(0.1, deadline - time.monotonic()))
        if not line:
            raise AssertionError(f"stream ended before {pattern!r}: {seen}")
        seen.append(line.decode().rstrip("\n"))
        if re.fullmatch(pattern, seen[-1]):
            return seen


async def test_poll_streams_new_activations_until_terminated(wsk: Wsk, echo: str) -> None:
    older, _ = invoked(await wsk("action", "invoke", echo, "-b"), echo)   # stored before poll starts: not shown
    await until_ok(wsk, "activation", "get", older)                      # (stored just after the reply)
    poll = await wsk.start("activation", "poll", echo)
    try:
        deadline = time.monotonic() + 30
        assert poll.stdout is not None
        head = await _read_until(poll.stdout, "Polling for activation logs", deadline)
        assert head == ["Enter Ctrl-c to exit.", "Polling for activation logs"]
        activation_id, _ = invoked(await wsk("action", "invoke", echo, "-p", "name", "Poll"), echo)
        lines = await _read_until(poll.stdout, re.escape(f"Activation: '{echo}' ({activation_id})"), deadline)
        assert lines == ["", f"Activation: '{echo}' ({activation_id})"]
        assert older not in " ".join(lines)
        body = await _read_until(poll.stdout, r"\]", deadline)
        assert any(line.endswith('stdout: hello from Poll",') for line in body), body
        poll.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(poll.communicate(), 30)
        assert rest.decode().endswith("Poll terminated\n")
        assert poll.returncode == 1
    finally:
        await terminate(poll)


async def test_poll_exit_after_seconds(wsk: Wsk, invoke_ready: None) -> None:
    ran = await wsk("activation", "poll", unique("quiet"), "--exit", "1")
    assert (ran.code, ran.out) == (0, "Enter Ctrl-c to exit.\nPolling for activation logs\n")


FEED_JS = """function main(args) {
  if (args.refuse) return {error: "feed refused " + args.lifecycleEvent};
  return {event: args.lifecycleEvent, trigger: args.triggerName, keyed: typeof args.authKey === "string",
          extra: args.extra || null};
}
"""


async def test_trigger_feed_lifecycle(wsk: Wsk, tmp_path: Path, invoke_ready: None) -> None:
    feed, trigger = unique("feed"), unique("fed")
    (tmp_path / "feed.js").write_text(FEED_JS)
    assert (await wsk("action", "create", feed, str(tmp_path / "feed.js"))).code == 0

    created = await wsk("trigger", "create", trigger, "--feed", feed, "-p", "extra", "7")
    assert created.code == 0, created.err
    activation_id, rest = invoked(created, feed)
    record_text, _, last = rest.rstrip("\n").rpartition("\n")
    assert last == f"ok: created trigger {trigger}"
    result = json.loads(record_text)["response"]["result"]
    assert result == {"event": "CREATE", "trigger": f"/_/{trigger}", "keyed": True, "extra": 7}
    # The trigger carries the feed annotation, so `get` shows the feed's READ activation instead of the trigger.
    read = await wsk("trigger", "get", trigger, "annotations")
    assert read.code == 0 and not read.out.startswith("ok:")
    assert json.loads(read.out)["response"]["result"] == {"event": "READ", "trigger": f"/_/{trigger}",
                                                          "keyed": True, "extra": None}

    deleted = await wsk("trigger", "delete", trigger)
    record_text, _, last = deleted.out.rstrip("\n").rpartition("\n")
    assert last == f"ok: deleted trigger {trigger}"
    assert json.loads(record_text)["response"]["result"]["event"] == "DELETE"

    # Extended mode: -T parameters stay on the trigger, -F parameters go to the feed only.
    extended = await wsk("trigger", "create", trigger, "--feed", feed, "-F", "extra", "5", "-T", "level", "1")
    assert extended.code == 0, extended.err
    _, rest = invoked(extended, feed)
    assert json.loads(rest.rpartition("ok: created")[0])["response"]["result"]["extra"] == 5
    updated = await wsk("trigger", "update", trigger, "-F", "extra", "6")
    record_text, _, last = updated.out.rstrip("\n").rpartition("\n")
    assert last == f"ok: updated trigger {trigger}"
    assert json.loads(record_text)["response"]["result"] == {"event": "UPDATE", "trigger": f"/_/{trigger}",
                                                             "keyed": True, "extra": 6}
    assert (await wsk("trigger", "delete", trigger)).code == 0

    refused = await wsk("trigger", "create", trigger, "--feed", feed, "-p", "refuse", "true")
    assert refused.code == 246
    # stderr: the failed CREATE activation, then the DELETE one (the cleanup passes -p to the feed too).
    dumped, end = json.JSONDecoder().raw_decode(refused.err)
    assert dumped["response"]["result"] == {"error": "feed refused CREATE"}
    assert json.loads(refused.err[end:])["response"]["result"] == {"error": "feed refused DELETE"}
    assert "error:" not in refused.err                         # an application error shows no error line
    assert f"ok: deleted trigger {trigger}" in refused.out      # the half-made trigger is removed again
    assert (await wsk("trigger", "get", trigger)).code == 148
    no_feed = await wsk("trigger", "create", trigger, "--feed", unique("nofeed"))
    assert no_feed.code == 148
    assert re.match(rf"error: Unable to create trigger '{trigger}': Unable to configure feed '/_/nofeed-\w+': ",
                    no_feed.err)
    assert (await wsk("action", "delete", feed)).code == 0


async def test_blocking_invoke_not_finished_exits_202(invoke_ready: None, tmp_path: Path) -> None:
    env = {"WHISK_DATA_DIR": tempfile.mkdtemp(prefix="whisk-cli-202-"), "WHISK_LIMIT_MAX_BLOCKING_WAIT": "300"}
    log = os.path.join(tempfile.gettempdir(), f"whisk-cli-202-{os.getpid()}.log")
    async with whisk_server(env, log_path=log) as url:
        wsk = make_wsk(url, tmp_path)
        (tmp_path / "slow.js").write_text(NODE_ECHO)
        assert (await wsk("action", "create", "slow", str(tmp_path / "slow.js"))).code == 0
        ran = await wsk("action", "invoke", "slow", "-b", "-p", "sleep", "3000")
        assert (ran.code, ran.out) == (202, "")
        assert re.fullmatch(rf"ok: invoked /_/slow, but the request has not yet finished, with id {ID}\n", ran.err)
        result = await wsk("action", "invoke", "slow", "-r", "-p", "sleep", "3000")
        assert result.code == 202


@pytest.mark.fire
async def test_trigger_fire(wsk: Wsk, echo: str, fire_ready: None) -> None:
    trigger, rule = unique("fire"), unique("rule")
    assert (await wsk("trigger", "create", trigger)).code == 0
    lonely = await wsk("trigger", "fire", trigger)               # no active rule: 204, no activation id
    assert (lonely.code, lonely.out) == (0, f"ok: triggered /_/{trigger} with id \n")
    assert (await wsk("rule", "create", rule, trigger, echo)).code == 0
    fired = await wsk("trigger", "fire", trigger, "-p", "name", "Fired")
    match = re.fullmatch(rf"ok: triggered /_/{re.escape(trigger)} with id ({ID})\n", fired.out)
    assert match, fired.out + fired.err
    record = json.loads((await until_ok(wsk, "activation", "get", match.group(1))).out.partition("\n")[2])
    assert record["name"] == trigger

    async def greeted() -> bool:                                 # the rule's action runs asynchronously
        listed = await wsk("activation", "list", echo, "--full", "--limit", "5")
        records = json_documents(listed.out.partition("\n")[2])
        return any(r["response"].get("result", {}).get("greeting") == "hello Fired" for r in records)

    await until("the rule's action ran", greeted, 30, interval_s=0.2)
    assert (await wsk("rule", "delete", rule)).code == 0
    assert (await wsk("trigger", "delete", trigger)).code == 0
    assert (await wsk("trigger", "fire", unique("nothing"))).code == 148
