"""Log collection from a container's two streams: sentinels, format, limits, missing sentinels."""

from __future__ import annotations

import asyncio
import re
import time

from whisk.containers.base import SENTINEL, logs_truncated
from whisk.entities.log_lines import log_line, rfc3339_nanos
from whisk.containers.process import logcollector
from whisk.containers.process.logcollector import LogCollector

END = (SENTINEL + "\n").encode()
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr): (.*)$")


def texts(lines: list[str]) -> list[tuple[str, str]]:
    out = []
    for line in lines:
        m = LINE.match(line)
        assert m, line
        out.append((m.group(1), m.group(2)))
    return out


def test_timestamp_and_line_format():
    assert rfc3339_nanos(1_795_838_329_048_000_595) == "2026-11-28T03:58:49.048000595Z"
    assert log_line("2026-11-28T03:58:49.048Z", "stdout", "hi\n") == "2026-11-28T03:58:49.048Z       stdout: hi"


def test_only_the_line_end_is_taken_off_a_line():
    """OpenWhisk's LogLine keeps what the action wrote but its line end (`stripLineEnd`, since apache/openwhisk#4852):
    a traceback's and a logged object's indentation, trailing blanks, a tab."""
    stamp = "2026-11-28T03:58:49.048000595Z"
    assert log_line(stamp, "stderr", '  File "x.py", line 1') == f'{stamp} stderr:   File "x.py", line 1'
    assert log_line(stamp, "stdout", "\tkey: 1 \r\n") == f"{stamp} stdout: \tkey: 1 "
    assert log_line(stamp, "stdout", " \r") == f"{stamp} stdout:  "


async def test_indented_output_keeps_its_indentation():
    c = LogCollector(1 << 20)
    c.feed("stdout", b"{\n  a: 1,\n  b: { c: [ 1, 2 ] }\n}\n" + END)
    c.feed("stderr", b"Traceback (most recent call last):\n  File \"x.py\", line 1, in main\r\n" + END)
    assert texts(await c.take(1 << 20, True)) == [
        ("stdout", "{"), ("stdout", "  a: 1,"), ("stdout", "  b: { c: [ 1, 2 ] }"), ("stdout", "}"),
        ("stderr", "Traceback (most recent call last):"), ("stderr", '  File "x.py", line 1, in main')]


async def test_one_activation_per_sentinel_pair_in_arrival_order():
    c = LogCollector(1 << 20)
    c.feed("stdout", b"one\ntw")
    c.feed("stderr", b"err\n" + END)
    c.feed("stdout", b"o\r\n" + END + b"next\n")
    assert texts(await c.take(1 << 20, True)) == [("stdout", "one"), ("stderr", "err"), ("stdout", "two")]
    c.feed("stdout", END)
    c.feed("stderr", END)
    assert texts(await c.take(1 << 20, True)) == [("stdout", "next")]


async def test_output_without_a_newline_then_the_sentinel_ends_the_activation():
    """`process.stdout.write("partial")` then the proxy's sentinel: "partialXXX_THE_END..." is one line. It ends the
    activation at once (no wait for a sentinel that never comes alone), and "partial" is kept as the last line."""
    c = LogCollector(1 << 20)
    c.feed("stdout", b"first\npartial")
    c.feed("stdout", END)
    c.feed("stderr", b"oops" + END[:7])
    c.feed("stderr", END[7:] + b"next\n")
    assert c._ready()
    assert texts(await c.take(1 << 20, True)) == [("stdout", "first"), ("stdout", "partial"), ("stderr", "oops")]
    c.feed("stdout", END)
    c.feed("stderr", b" \r" + END)                                # nothing but blanks before it: no line
    assert texts(await c.take(1 << 20, True)) == [("stderr", "next")]


async def test_past_the_cap_a_line_that_ends_with_the_sentinel_still_ends_the_activation():
    c = LogCollector(4 * logcollector.LINE_COST)
    c.feed("stdout", b"kept\n" * 8)                              # past the cap
    c.feed("stdout", b"z" * 300 + END)                            # a long line, then the sentinel at its end
    c.feed("stderr", END)
    lines = texts(await c.take(1 << 20, True))
    assert lines[-1][1].startswith("Logs were truncated")
    c.feed("stdout", b"after\n" + b"y" * 5000)                    # an endless line past the cap ...
    c.feed("stdout", b"y" * 5000 + SENTINEL.encode()[:9])
    c.feed("stdout", SENTINEL.encode()[9:] + b"\r\nlast\n" + END)   # ... whose end is a sentinel
    c.feed("stderr", END + END)
    lines = texts(await c.take(1 << 20, True))
    assert lines[0] == ("stdout", "after") and lines[1][1].startswith("Logs were truncated") and len(lines) == 2
    assert texts(await c.take(1 << 20, True)) == [("stdout", "last")]


async def test_a_line_dropped_whole_that_ends_with_the_sentinel_after_a_take():
    """An endless line still being written when its activation's logs were taken (a collection that gave up): its
    end, a sentinel, ends the next activation's segment all the same."""
    c = LogCollector(8 * 1024)
    c.feed("stdout", b"w" * 9000)
    assert texts(await c.take(1 << 20, False))[-1][1].startswith("Logs were truncated")
    c.feed("stdout", b"w" * 100 + END + b"fresh\n" + END)
    c.feed("stderr", END + END)
    assert texts(await c.take(1 << 20, True)) == []
    assert texts(await c.take(1 << 20, True)) == [("stdout", "fresh")]


async def test_waits_for_the_late_sentinel():
    c = LogCollector(1 << 20)
    c.feed("stdout", b"a\n" + END)
    waiter = asyncio.create_task(c.take(1 << 20, True))
    await asyncio.sleep(0)
    assert not waiter.done()
    c.feed("stderr", END)
    assert texts(await waiter) == [("stdout", "a")]


async def test_limit_truncates_with_openwhisk_line_and_the_rest_is_dropped():
    c = LogCollector(1 << 20)
    c.feed("stdout", b"12345\n" * 5 + END)
    c.feed("stderr", END)
    lines = texts(await c.take(20, True))
    assert lines == [("stdout", "12345")] * 3 + [
        ("stderr", "Logs were truncated because the total bytes size exceeds the limit of 20 bytes.")]
    c.feed("stdout", b"after\n" + END)
    c.feed("stderr", END)
    assert texts(await c.take(20, True)) == [("stdout", "after")]


async def test_a_long_line_is_stored_in_dockers_pieces_up_to_the_limit():
    # OpenWhisk reads docker's json-file entries, a line past 16 KiB being several: so a line longer than the log
    # limit keeps its first pieces rather than nothing. whisk cuts before a UTF-8 continuation byte.
    c = LogCollector(4 << 20)
    c.feed("stdout", b"L" * 40_000 + b"\n" + END)
    c.feed("stderr", END)
    assert [len(text) for _, text in texts(await c.take(1 << 20, True))] == [16_384, 16_384, 7_232]
    c.feed("stdout", b"x" * 1_500_000 + b"\n" + END)
    c.feed("stderr", END)
    lines = texts(await c.take(1 << 20, True))
    assert [len(text) for _, text in lines[:-1]] == [16_384] * 63 and set(lines[0][1]) == {"x"}
    assert lines[-1] == ("stderr", logs_truncated(1 << 20))
    c.feed("stdout", ("a" + "é" * 10_000).encode() + b"\n" + END)
    c.feed("stderr", END)
    pieces = [text for _, text in texts(await c.take(1 << 20, True))]
    assert "".join(pieces) == "a" + "é" * 10_000 and [len(p.encode()) for p in pieces] == [16_383, 3_618]


async def test_cap_bounds_memory_and_reports_truncation():
    cost = logcollector.LINE_COST
    c = LogCollector(60 + cost + 10)
    c.feed("stdout", b"x" * 60 + b"\n" + b"y" * 60 + b"\n" + b"z" * 500 + b"\n" + END)
    c.feed("stderr", END)
    assert c.streams["stdout"].complete[0].cost == 60 + cost <= c.streams["stdout"].cap_bytes
    lines = texts(await c.take(1 << 20, True))
    assert lines[0] == ("stdout", "x" * 60) and lines[-1][1].startswith("Logs were truncated")
    assert c.streams["stdout"].held == 0                               # taken: nothing kept


async def test_a_flood_of_short_lines_or_sentinels_holds_no_more_than_the_cap():
    """Counted by bytes alone, a million one-byte lines held ~100 MB of Python objects under a 16 MB cap, and each
    sentinel kept a segment until the container went: the action writes these streams, so both are bounded."""
    c = LogCollector(1 << 20)
    for _ in range(16):
        c.feed("stdout", b"a\n" * 65536)
    stream = c.streams["stdout"]
    assert stream.held <= stream.cap_bytes and len(stream.current.lines) <= (1 << 20) // logcollector.LINE_COST
    assert stream.current.overflowed
    for _ in range(4):
        c.feed("stdout", END * 1000)
    assert len(stream.complete) == logcollector.MAX_SEGMENTS
    c.feed("stderr", END)
    lines = texts(await c.take(10 << 20, True))
    assert lines[0] == ("stdout", "a") and lines[-1][1].startswith("Logs were truncated")
    assert len(stream.complete) == logcollector.MAX_SEGMENTS - 1 and stream.held == 0


async def test_zero_limit_keeps_nothing_but_consumes_the_activation():
    c = LogCollector(1 << 20)
    c.feed("stdout", b"secret\n" + END)
    c.feed("stderr", END)
    assert await c.take(0, True) == []
    c.feed("stdout", b"b\n" + END)
    c.feed("stderr", END)
    assert texts(await c.take(100, True)) == [("stdout", "b")]


async def test_missing_sentinel_after_idle_timeout(monkeypatch):
    monkeypatch.setattr(logcollector, "IDLE_TIMEOUT_S", 0.05)
    c = LogCollector(1 << 20)
    c.feed("stdout", b"partial\n")
    t0 = time.monotonic()
    lines = texts(await c.take(1 << 20, True))
    assert time.monotonic() - t0 < 1
    assert lines == [("stdout", "partial"),
                     ("stderr", "There was an issue while collecting your logs. Data might be missing.")]


async def test_eof_ends_the_wait_and_counts_as_missing_sentinel():
    c = LogCollector(1 << 20)
    c.feed("stdout", b"last words")
    c.close("stdout")
    c.close("stderr")
    lines = texts(await c.take(1 << 20, True))
    assert lines[0] == ("stdout", "last words") and lines[-1][1].startswith("There was an issue")


async def test_without_waiting_takes_what_is_there():
    c = LogCollector(1 << 20)
    c.feed("stderr", b"Traceback\n")
    assert texts(await c.take(1 << 20, False)) == [("stderr", "Traceback")]


async def test_past_the_cap_lines_are_skipped_until_the_sentinel_without_a_call_each(monkeypatch):
    """A flood of short lines cost the loop a Python call per line even when every one was dropped (2.4 s of the
    loop for 10 MB of newlines); past the cap only the sentinel is looked for, also when it comes in pieces."""
    c = LogCollector(4 * logcollector.LINE_COST)
    c.feed("stdout", b"kept\n" * 8)                              # past the cap: overflowed
    stream = c.streams["stdout"]
    assert stream.current.overflowed
    calls = []
    original = logcollector.StreamLog._line
    monkeypatch.setattr(logcollector.StreamLog, "_line", lambda self, raw, now: (calls.append(raw),
                                                                                 original(self, raw, now)))
    for _ in range(16):
        c.feed("stdout", b"\n" * 65536 + b"x" + SENTINEL.encode()[:5])    # no sentinel at a line's start
    assert calls == []
    sentinel = END
    c.feed("stdout", b"\n" + sentinel[:10])
    c.feed("stdout", sentinel[10:])
    assert calls == [SENTINEL.encode()]                         # the sentinel line alone, split as it came
    c.feed("stderr", END)
    lines = texts(await c.take(1 << 20, True))
    assert {t for _, t in lines[:-1]} == {"kept"} and lines[-1][1].startswith("Logs were truncated")
    c.feed("stdout", b"next\n" + END)                           # the next activation's lines are kept again
    c.feed("stderr", b"next err\n" + END)
    assert texts(await c.take(1 << 20, True)) == [("stdout", "next"), ("stderr", "next err")]


async def test_an_endless_line_is_grown_in_place_then_dropped_up_to_the_sentinel():
    """A line that never ends was copied whole on every read (quadratic: 5 s of the loop for 160 MB); it grows in
    place, and past the cap it is dropped and only the sentinel is looked for, as after any overflow."""
    c = LogCollector(1 << 20)
    stream = c.streams["stdout"]
    for _ in range(40):
        c.feed("stdout", b"y" * 65536)
    assert stream.current.overflowed and len(stream._partial) == 0
    c.feed("stdout", b"y" * 100 + b"\n" + END + b"after\n" + END)
    c.feed("stderr", END + END)
    lines = texts(await c.take(1 << 20, True))
    assert lines[-1][1].startswith("Logs were truncated") and all(t != "y" * 100 for _, t in lines)
    assert texts(await c.take(1 << 20, True)) == [("stdout", "after")]


async def test_a_flood_of_lines_is_formatted_off_the_loop(monkeypatch):
    threaded = []
    original = asyncio.to_thread

    async def to_thread(fn, *args):
        threaded.append(fn.__name__)
        return await original(fn, *args)

    monkeypatch.setattr(logcollector.asyncio, "to_thread", to_thread)
    c = LogCollector(8 << 20)
    c.feed("stdout", b"few\n" + END)
    c.feed("stderr", END)
    assert texts(await c.take(1 << 20, True)) == [("stdout", "few")] and threaded == []
    c.feed("stdout", b"x\n" * (logcollector.FORMAT_ON_LOOP_LINES + 1) + END)
    c.feed("stderr", END)
    assert len(await c.take(10 << 20, True)) == logcollector.FORMAT_ON_LOOP_LINES + 1
    assert threaded == ["_formatted"]


async def test_a_sentinel_the_action_prints_itself_ends_nothing_when_it_runs_alone():
    """An action that printed the sentinel on both streams ended its logs there, the rest of its lines went to the
    container's next activation, and every later activation got the logs of the one before. Alone in its container,
    an activation's logs run to the last sentinel read; its proxy writes its own before it answers."""
    c = LogCollector(1 << 20)
    c.feed("stdout", b"one before\n" + END + b"forged\none after\n" + END)
    c.feed("stderr", END + b"err after\n" + END)
    assert texts(await c.take(1 << 20, True, alone=True)) == [
        ("stdout", "one before"), ("stdout", "forged"), ("stdout", "one after"), ("stderr", "err after")]
    c.feed("stdout", b"two\n" + END)
    c.feed("stderr", END)
    assert texts(await c.take(1 << 20, True, alone=True)) == [("stdout", "two")]
    # Without waiting (a developer error: the container goes), everything written is the activation's.
    c.feed("stdout", b"three\n" + END + b"still three\n")
    assert texts(await c.take(1 << 20, False, alone=True)) == [("stdout", "three"), ("stdout", "still three")]
    assert c.streams["stdout"].held == 0 and not c.streams["stdout"].complete


async def test_a_forged_sentinel_read_before_the_proxys_own_gives_the_rest_to_the_next_activation_only():
    """When the proxy's sentinel has not been read yet at the take, the action's own ends this activation's logs;
    the rest goes to the next activation, and the one after is its own again."""
    c = LogCollector(1 << 20)
    c.feed("stdout", b"one\n" + END)
    c.feed("stderr", END)
    assert texts(await c.take(1 << 20, True, alone=True)) == [("stdout", "one")]
    c.feed("stdout", b"rest of one\n" + END + b"two\n" + END)
    c.feed("stderr", END + END)
    assert texts(await c.take(1 << 20, True, alone=True)) == [("stdout", "rest of one"), ("stdout", "two")]
    c.feed("stdout", b"three\n" + END)
    c.feed("stderr", END)
    assert texts(await c.take(1 << 20, True, alone=True)) == [("stdout", "three")]


async def test_past_the_most_segments_the_proxys_sentinel_still_ends_the_activation():
    """Past MAX_SEGMENTS a sentinel was ignored, the proxy's own too: the lines the action wrote after its flood of
    sentinels went to the container's next activation."""
    c = LogCollector(1 << 20)
    c.feed("stdout", b"head\n" + END * (logcollector.MAX_SEGMENTS + 10) + b"tail\n" + END)
    c.feed("stderr", END * (logcollector.MAX_SEGMENTS + 11))
    assert len(c.streams["stdout"].complete) == logcollector.MAX_SEGMENTS
    assert texts(await c.take(1 << 20, True, alone=True)) == [("stdout", "head"), ("stdout", "tail")]
    c.feed("stdout", b"next\n" + END)
    c.feed("stderr", END)
    assert texts(await c.take(1 << 20, True, alone=True)) == [("stdout", "next")]
