"""Log lines carry the fields bound around them: in the block, in tasks started inside it, and no longer after it.
The access line, written without structlog's chain, is the line the chain writes."""

import asyncio
import json
import re
from datetime import datetime, timedelta, timezone

import pytest
import structlog

from whisk import logs


@pytest.fixture
def configured():
    """logs.configure for one test, then structlog's, the access line's and the process-wide fields as they were."""
    before, chain, process = structlog.get_config(), logs._access_chain, dict(logs._PROCESS)
    yield logs.configure
    structlog.configure(**before)
    logs._access_chain = chain
    logs._PROCESS.clear()
    logs._PROCESS.update(process)


async def test_bound_fields_reach_every_line_of_the_block_and_its_tasks_and_no_other(configured, capsys):
    configured("json", "info")
    await _lines_logged()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    by_event = {line["event"]: line for line in lines}
    assert by_event["inner"]["tid"] == "t2" and by_event["inner"]["activation_id"] == "a1"
    assert by_event["outer"]["tid"] == "given" and "activation_id" not in by_event["outer"]
    assert "tid" not in by_event["after"] and all(line["role"] == "standalone" for line in lines)


async def _lines_logged():
    log = structlog.get_logger("test")
    logs.bind(role="standalone")
    with logs.log_context(tid="t1"):
        with logs.log_context(activation_id="a1", tid="t2"):
            await asyncio.create_task(_log(log, "inner"))
        log.info("outer", tid="given")                   # a field of the call wins over a bound one
    log.info("after")


async def _log(log, event):
    log.info(event)


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


@pytest.mark.parametrize("log_format", ["console", "json"])
def test_the_access_line_is_the_line_the_chain_writes_and_is_off_below_info(configured, capsys, log_format):
    configured(log_format, "info")
    fields = {"method": "POST", "path": "/api/v1/namespaces/_/actions/a b", "status": 200, "duration_ms": 1.25}
    with logs.log_context(tid="t1", role="standalone", method="shadowed"):
        structlog.get_logger("whisk.access").info("http.access", **fields)
        logs.access(*fields.values())
    chain, direct = capsys.readouterr().err.splitlines()
    assert _TIME.search(direct), direct
    assert _TIME.sub("<time>", direct) == _TIME.sub("<time>", chain)
    assert "method=POST" in direct or '"method": "POST"' in direct        # the call's field wins over the bound one
    configured(log_format, "warning")
    logs.access(*fields.values())
    assert capsys.readouterr().err == ""


def test_the_time_of_a_line_is_the_clock_to_the_microsecond_across_seconds(monkeypatch):
    stamp = logs.UtcTime()
    # within one second (the cached date and time), the next second, a whole second (no fraction), a later day
    for ns in (1_796_533_204_000_001_999, 1_796_533_204_999_999_000, 1_796_533_205_000_000_000,
               1_796_533_205_123_456_789, 1_796_619_605_500_000_000):
        monkeypatch.setattr(logs.time, "time_ns", lambda ns=ns: ns)
        expected = (EPOCH + timedelta(microseconds=ns // 1000)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert stamp(None, "info", {})["timestamp"] == expected


@pytest.mark.parametrize("log_format", ["console", "json"])
def test_library_lines_are_whisk_lines_and_their_chatter_is_dropped(configured, capsys, log_format):
    """aiokafka's and asyncio's warnings come through the standard library: in whisk's format (with json, one JSON
    object a line like every other, the traceback inside it), their info lines not at all."""
    import logging
    configured(log_format, "info")
    library = logging.getLogger("aiokafka")
    library.info("connected, routine")
    try:
        raise ConnectionRefusedError(111, "Connection refused")
    except OSError:
        library.error("Unable connect to %r", "127.0.0.1:1", exc_info=True)
    err = capsys.readouterr().err
    assert "routine" not in err
    if log_format == "json":
        (line,) = [json.loads(text) for text in err.splitlines()]
        assert line["event"] == "Unable connect to '127.0.0.1:1'" and line["logger"] == "aiokafka"
        assert line["level"] == "error" and "ConnectionRefusedError" in line["exception"]
        assert _TIME.match(line["timestamp"])
    else:
        first = err.splitlines()[0]
        assert "[error    ] Unable connect to '127.0.0.1:1'" in first and "logger=aiokafka" in first, err
        assert "ConnectionRefusedError" in err


async def test_process_fields_reach_the_lines_of_executor_threads(configured, capsys):
    """docs/operations.md: `role` and `instance` are on every line, also those logged on a thread that inherited no
    context, as the SQLite store's writer and readers (`run_in_executor`) log `store.sqlite.folder_open`."""
    configured("json", "info")
    logs.bind(role="invoker", instance=3)
    with logs.log_context(tid="t1"):
        await asyncio.get_running_loop().run_in_executor(None, structlog.get_logger("test").info, "threaded")
    (line,) = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert (line["event"], line["role"], line["instance"]) == ("threaded", "invoker", 3)
    assert "tid" not in line                            # a request's fields stay with the request's own tasks


def test_a_library_line_repeated_is_logged_once_a_window_with_the_count_left_out(configured, capsys, monkeypatch):
    """With the broker away, aiokafka logs each failed attempt of each client (~800 lines a second a process): a
    template repeats once per window, the next line counting the ones left out; other templates and whisk's own
    lines are not held back."""
    import logging
    clock = [1000.0]
    monkeypatch.setattr(logs.time, "monotonic", lambda: clock[0])
    configured("json", "info")
    library = logging.getLogger("aiokafka")
    for _ in range(500):
        library.error("Unable connect to node with id %s: %s", 1, "[Errno 111] Connection refused")
        clock[0] += 0.01
    logging.getLogger("aiokafka.consumer.fetcher").error("Failed fetch messages from %s", 1)
    structlog.get_logger("whisk.messaging.kafka").warning("bus.commit_failed")
    structlog.get_logger("whisk.messaging.kafka").warning("bus.commit_failed")
    clock[0] += 10.0
    library.error("Unable connect to node with id %s: %s", 1, "[Errno 111] Connection refused")
    events = [json.loads(text)["event"] for text in capsys.readouterr().err.splitlines()]
    assert events == ["Unable connect to node with id 1: [Errno 111] Connection refused",
                      "Failed fetch messages from 1", "bus.commit_failed", "bus.commit_failed",
                      "Unable connect to node with id 1: [Errno 111] Connection refused "
                      "(499 more like it in the last 15 s not logged)"], events


def test_bounded_lines_come_in_a_burst_then_at_their_rate_and_the_next_one_counts_those_left_out() -> None:
    now = [100.0]
    bound = logs.Bounded(burst=3, per_s=0.5, clock=lambda: now[0])
    assert [bound.fields() for _ in range(5)] == [{}, {}, {}, None, None]
    now[0] += 1.0                                   # half a line's worth
    assert bound.fields() is None
    now[0] += 1.0
    assert bound.fields() == {"not_logged": 3} and bound.fields() is None
    now[0] += 1000.0                                # a quiet while refills the burst, no more
    assert [bound.fields() for _ in range(4)] == [{"not_logged": 1}, {}, {}, None]


def test_a_crash_of_the_server_with_json_logs_is_one_json_line_with_its_traceback(configured, capsys, monkeypatch):
    """The line an operator most needs, at the moment a collector would otherwise get a plain traceback."""
    from whisk import __main__, roles

    async def crash(settings):
        raise RuntimeError("a fault of whisk's own")

    monkeypatch.setattr(roles, "serve", crash)
    monkeypatch.setenv("WHISK_LOG_FORMAT", "json")
    monkeypatch.delenv("WHISK_ROLE", raising=False)
    monkeypatch.delenv("WHISK_INSTANCE", raising=False)
    assert __main__._serve() == 1
    (line,) = [json.loads(text) for text in capsys.readouterr().err.splitlines()]
    assert line["event"] == "server.failed" and line["level"] == "critical" and line["exit_status"] == 1, line
    assert (line["role"], line["instance"]) == ("standalone", 0), line
    assert "RuntimeError: a fault of whisk's own" in line["exception"] and "Traceback" in line["exception"], line


def test_a_console_line_holds_no_control_character_a_client_put_in_a_path(configured, capsys):
    """A request's path is the client's: `/%00` made the whole log a binary file to grep (which then prints only
    "binary file matches"), `/%1b[2J` cleared the terminal of whoever read it. Such a value is shown as repr."""
    configured("console", "info")
    path = "/api/v1/namespaces/\x00\x1b[2J\x07\u2028/actions"
    logs.access("GET", path, 404, 0.1)
    structlog.get_logger("test").warning("test.line", name="caf\u00e9\x85", plain="/api/v1/ok")
    err = capsys.readouterr().err
    assert all(c == "\n" or c.isprintable() for c in err), repr(err)
    assert f"path={path!r}" in err and "plain=/api/v1/ok" in err and "name='caf\u00e9\\x85'" in err, err


def test_a_python_warning_is_a_line_in_the_log_format(configured, capsys):
    """With json, a RuntimeWarning (a coroutine never awaited) was two plain-text lines among the JSON objects."""
    import logging
    import warnings
    logging.captureWarnings(False)      # pytest restores showwarning after each test: the next capture is a no-op
    configured("json", "info")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("something odd", RuntimeWarning)
    finally:
        logging.captureWarnings(False)  # the next tests' warnings are pytest's again
    (line,) = [json.loads(text) for text in capsys.readouterr().err.splitlines()]
    assert line["logger"] == "py.warnings" and line["level"] == "warning", line
    assert "RuntimeWarning: something odd" in line["event"], line
