"""A container's stdout and stderr, read continuously, cut into activations at the sentinel lines
(docs/openwhisk.md §4).

A line that ends with the sentinel ends the activation too: an action whose last output had no newline of its own
("partial") writes "partialXXX_THE_END...". Its text before the sentinel, unless blank, is kept as the activation's
last line (OpenWhisk counts any line containing the sentinel as one, and drops the line).

The action can print the sentinel itself. Taken one segment a take, its lines after that were the container's next
activation's, and every later activation got the one before's logs, for the container's life. In a container that
runs one activation at a time (`alone`), an activation's logs run to the last sentinel read when they are taken (its
proxy writes its own before it answers): a sentinel of the action's own ends nothing.

The platform timestamps each line when it arrives (as docker's json-file driver does), keeps at most `cap_bytes`
per stream, counting what each line costs in memory and not only its bytes, and at most MAX_SEGMENTS activations'
output not yet taken (a log flood, or a flood of sentinel lines, cannot fill the platform's memory: the action's
code writes these streams), and hands each activation's lines over formatted as OpenWhisk stores them (a line past
16 KiB in docker's pieces), cut at the action's log limit.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field

from whisk.containers.base import LOG_COLLECTION_FAILED, SENTINEL, logs_truncated
from whisk.entities.log_lines import log_line, pieces, rfc3339_nanos

_SENTINEL = SENTINEL.encode()
_SENTINEL_LINE = _SENTINEL + b"\n"
_TAIL = len(_SENTINEL) + 1           # the most of a line's end that can be a sentinel (with a carriage return)
IDLE_TIMEOUT_S = 2.0                 # no new output for this long while waiting for a sentinel: give up
LINE_COST = 96                       # a kept line's memory beyond its bytes: its tuple, its bytes and time objects
FORMAT_ON_LOOP_LINES = 5000          # an activation's lines formatted on the loop; more go to a thread
MAX_SEGMENTS = 1024                  # activations ended (by a sentinel) and not yet taken, per stream: more than
                                     # any concurrency limit; past it sentinels are forged, and a sentinel moves
                                     # the newest one's end (the real one still ends the activation)


def overall_timeout_s(limit_bytes: int) -> float:
    """OpenWhisk waits 2 s per MB of log limit, at least 10 s."""
    return 2.0 * max(limit_bytes / 1_048_576, 5.0)


@dataclass(slots=True)
class Segment:
    """One activation's lines on one stream: (arrival time in ns, raw bytes without the newline)."""

    lines: list[tuple[int, bytes]] = field(default_factory=list)
    cost: int = 0                    # memory held, LINE_COST a line more than its bytes
    overflowed: bool = False         # lines were dropped past the cap

    def extend(self, later: Segment) -> None:
        """Take `later`'s lines after this one's: the two are one activation's."""
        self.lines += later.lines
        self.cost += later.cost
        self.overflowed = self.overflowed or later.overflowed


class StreamLog:
    """One stream: complete segments (ended by a sentinel) and the one being written."""

    def __init__(self, name: str, cap_bytes: int) -> None:
        self.name = name
        self.cap_bytes = cap_bytes
        self.complete: deque[Segment] = deque()
        self.current = Segment()
        self.held = 0                    # the cost of every segment kept, complete or current
        self.eof = False
        self._partial = bytearray()     # the line being written: grown in place (a copy per read was quadratic)
        self._partial_dropped = False
        self._dropped_tail = b""        # the last bytes of a line being dropped: its end may still be a sentinel

    def feed(self, data: bytes, now_ns: int) -> None:
        if data == _SENTINEL_LINE and not self._partial and not self._partial_dropped:
            self._line(_SENTINEL, now_ns)              # a run that printed nothing: its sentinel read alone
            return
        if self.current.overflowed:
            data = self._past_dropped(data)
            if not data:
                return
        if b"\n" not in data:                                # a line goes on
            if not self._partial_dropped:
                self._partial += data
                self._drop_endless()
            else:
                self._dropped_goes_on(data)
            return
        pieces = data.split(b"\n")
        pieces[0] = bytes(self._partial) + pieces[0]
        self._partial = bytearray(pieces.pop())
        for raw in pieces:
            if self._partial_dropped:                      # the end of a line dropped whole: a sentinel, or not
                if self._dropped_ends(raw):
                    self._line(_SENTINEL, now_ns)
                else:
                    self.current.overflowed = True
                continue
            self._line(raw.rstrip(b"\r"), now_ns)
        self._drop_endless()

    def _drop_endless(self) -> None:
        if len(self._partial) > self.cap_bytes:            # one endless line: keep nothing of it
            self._drop_line(bytes(self._partial))
            self.current.overflowed = True                 # and read on only for the sentinel

    def _drop_line(self, written: bytes) -> None:
        """Drop the line being written (`written` so far), keeping only what could still end it as a sentinel."""
        self._partial = bytearray()
        self._partial_dropped = True
        self._dropped_tail = written[-_TAIL:]

    def _dropped_goes_on(self, data: bytes) -> None:
        self._dropped_tail = (self._dropped_tail + data)[-_TAIL:]

    def _dropped_ends(self, last: bytes) -> bool:
        """The line being dropped ends with `last` (its newline not included): whether it ended as a sentinel."""
        ended = (self._dropped_tail + last).rstrip(b"\r")
        self._partial_dropped, self._dropped_tail = False, b""
        return ended.endswith(_SENTINEL)

    def _past_dropped(self, data: bytes) -> bytes:
        """Past the cap every line is dropped until the next sentinel: find that line without splitting the rest
        into lines (a flood of short lines cost the loop a Python call each, cap or no cap). What follows from the
        sentinel on, or nothing while none has come."""
        if self._partial_dropped:               # the rest of an endless line comes first
            end = data.find(b"\n")
            if end < 0:
                self._dropped_goes_on(data)
                return b""
            last, data = data[:end], data[end + 1:]
            if self._dropped_ends(last):
                return _SENTINEL_LINE + data
        if b"\n" not in data and len(self._partial) + len(data) > _TAIL:
            self._drop_line(bytes(self._partial) + data)      # longer than a sentinel line can be: its end decides
            return b""
        buffer = bytes(self._partial) + data
        start = 0
        while (at := buffer.find(_SENTINEL, start)) >= 0:
            after = buffer[at + len(_SENTINEL):at + len(_SENTINEL) + 2]
            if after[:1] == b"\n" or after == b"\r\n":    # at a line's end: the rest of that line is dropped
                self._partial = bytearray()
                return buffer[at:]
            if after in (b"", b"\r"):                # its line's end has not come yet
                self._partial = bytearray(buffer[at:])
                return b""
            start = at + 1
        tail = buffer[buffer.rfind(b"\n") + 1:]
        if len(tail) > _TAIL:                               # no sentinel line can be in the making
            self._drop_line(tail)
        else:
            self._partial = bytearray(tail)
        return b""

    def close(self, now_ns: int) -> None:
        if self._partial and not self._partial_dropped:
            self._line(bytes(self._partial), now_ns)
        self._partial = bytearray()
        self.eof = True

    def _line(self, raw: bytes, now_ns: int) -> None:
        if raw.endswith(_SENTINEL):
            if raw[:-len(_SENTINEL)].strip():             # output without a newline of its own, then the sentinel
                self._line(raw[:-len(_SENTINEL)], now_ns)
            if len(self.complete) < MAX_SEGMENTS:
                self.complete.append(self.current)
            else:                                           # the newest complete segment ends here instead
                self.complete[-1].extend(self.current)
            self.current = Segment()
            return
        segment = self.current
        cost = len(raw) + LINE_COST
        if self.held + cost > self.cap_bytes:
            segment.overflowed = True
            return
        segment.lines.append((now_ns, raw))
        segment.cost += cost
        self.held += cost

    def take(self) -> Segment:
        """The oldest complete segment, else whatever has been written so far."""
        if self.complete:
            segment = self.complete.popleft()
        else:
            segment, self.current = self.current, Segment()
        self.held -= segment.cost
        return segment

    def take_all(self, written: bool) -> Segment:
        """Every complete segment as one, and with `written` what was written after them too; without it and with
        no complete segment, whatever has been written so far."""
        if not self.complete or written:
            self.complete.append(self.current)
            self.current = Segment()
        segment = self.complete.popleft()
        while self.complete:
            segment.extend(self.complete.popleft())
        self.held -= segment.cost
        return segment


class LogCollector:
    def __init__(self, cap_bytes: int) -> None:
        self.streams = {"stdout": StreamLog("stdout", cap_bytes), "stderr": StreamLog("stderr", cap_bytes)}
        self._changed = asyncio.Event()

    def feed(self, stream: str, data: bytes) -> None:
        self.streams[stream].feed(data, time.time_ns())
        self._changed.set()

    def close(self, stream: str) -> None:
        self.streams[stream].close(time.time_ns())
        self._changed.set()

    @property
    def closed(self) -> bool:
        return all(s.eof for s in self.streams.values())

    def _ready(self) -> bool:
        out, err = self.streams.values()
        return bool(out.complete or out.eof) and bool(err.complete or err.eof)

    async def wait_closed(self, timeout_s: float) -> None:
        """Wait until both streams reached EOF (the process is gone), at most `timeout_s`."""
        try:
            async with asyncio.timeout(timeout_s):
                while not self.closed:
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            pass

    async def take(self, limit_bytes: int, wait_for_sentinel: bool, grace_s: float = 0.0,
                   alone: bool = False) -> list[str]:
        """The next activation's lines, formatted and cut at `limit_bytes` (0: none are kept). Without waiting
        for the sentinels, still give output already on its way `grace_s` to arrive. `alone`: no other activation
        runs in the container, so every sentinel read is this one's (its proxy's or its own), and without waiting
        (the container goes) so is everything written."""
        complete = True
        out, err = self.streams.values()
        if wait_for_sentinel:
            # Both sentinels came before the answer in most runs: no wait to set up.
            complete = self._ready() or await self._wait_for_sentinels(overall_timeout_s(limit_bytes))
            complete = complete and bool(out.complete) and bool(err.complete)
        elif grace_s > 0:
            await self._wait_for_sentinels(grace_s)
        if alone:
            stdout, stderr = out.take_all(not wait_for_sentinel), err.take_all(not wait_for_sentinel)
        else:
            stdout, stderr = out.take(), err.take()
        if limit_bytes <= 0:
            return []
        failed = wait_for_sentinel and not complete
        if not (failed or stdout.lines or stderr.lines or stdout.overflowed or stderr.overflowed):
            return []                                   # nothing printed: most runs
        segments = [("stdout", stdout), ("stderr", stderr)]
        if sum(len(seg.lines) for _, seg in segments) > FORMAT_ON_LOOP_LINES:
            # A flood (up to ~250,000 lines) takes the loop a second to sort and format: a thread takes it, and
            # the loop goes on between its slices of the interpreter.
            return await asyncio.to_thread(_formatted, segments, limit_bytes, failed)
        return _formatted(segments, limit_bytes, failed)

    async def _wait_for_sentinels(self, overall_s: float) -> bool:
        deadline = asyncio.get_running_loop().time() + overall_s
        while not self._ready():
            self._changed.clear()
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return False
            try:
                async with asyncio.timeout(min(IDLE_TIMEOUT_S, remaining)):
                    await self._changed.wait()
            except TimeoutError:
                return False
        return True


def _formatted(segments: list[tuple[str, Segment]], limit_bytes: int, failed: bool) -> list[str]:
    """One activation's lines of both streams in arrival order, formatted as OpenWhisk stores them and cut at
    `limit_bytes`; the truncation line past it, or the collection-failed line when a sentinel never came."""
    merged = sorted(((ts, name, raw) for name, seg in segments for ts, raw in seg.lines), key=lambda entry: entry[0])
    lines: list[str] = []
    total = 0
    for ts, name, raw in merged:
        for piece in pieces(raw):
            total += len(piece) + 1
            if total > limit_bytes:
                lines.append(log_line(rfc3339_nanos(time.time_ns()), "stderr", logs_truncated(limit_bytes)))
                return lines
            lines.append(log_line(rfc3339_nanos(ts), name, piece.decode("utf-8", errors="replace")))
    if any(seg.overflowed for _, seg in segments):
        lines.append(log_line(rfc3339_nanos(time.time_ns()), "stderr", logs_truncated(limit_bytes)))
    elif failed:
        lines.append(log_line(rfc3339_nanos(time.time_ns()), "stderr", LOG_COLLECTION_FAILED))
    return lines
