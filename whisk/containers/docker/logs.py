"""An action container's logs, read through Docker's logs API and cut into activations at the sentinels
(docs/openwhisk.md §4).

One request per poll asks for both streams with timestamps, from the earliest of the two streams' last lines
already handed over (`since` is inclusive; lines already taken are skipped by time and count). The multiplexed
answer labels every frame with its stream, so stdout and stderr stay apart, each in order. Lines are collected until
each stream has shown its sentinel, with OpenWhisk's idle (2 s) and overall (2 s per MB of limit, at least 10 s)
timeouts, and cut at the limit with OpenWhisk's truncation line. A large answer is parsed on a thread and its lines
handled in slices, so that an activation's hundreds of thousands of lines never hold the event loop for long.
"""

from __future__ import annotations

import asyncio
import calendar
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from whisk.containers.base import LOG_COLLECTION_FAILED, SENTINEL, logs_truncated
from whisk.entities.log_lines import log_line, pieces, rfc3339_nanos

IDLE_TIMEOUT_S = 2.0
STREAMS = {1: "stdout", 2: "stderr"}
_POLL_S = (0.002, 0.005, 0.01, 0.02, 0.05)          # the sentinels usually arrive within a few ms of the reply
INLINE_BYTES = 256 * 1024                          # an answer at least this long is parsed on a thread
_TURN = 10_000                                     # lines handled between two of the loop's turns


def overall_timeout_s(limit_bytes: int) -> float:
    """OpenWhisk waits 2 s per MB of log limit, at least 10 s."""
    return 2.0 * max(limit_bytes / 1_048_576, 5.0)


@dataclass(frozen=True, slots=True)
class Entry:
    timestamp: str          # docker's RFC3339 time with nanoseconds, e.g. 2026-11-28T03:57:18.118415262Z
    stream: str
    text: str
    whole: bool = True      # False: the line's end has not been written yet (a trailing piece of a long line)


def parse_frames(payload: bytes) -> list[Entry]:
    """Docker's multiplexed stream (8-byte header: stream, 3 zero bytes, big-endian length) of timestamped lines.

    Lines longer than docker's 16 KiB buffer come as several frames, each with its own timestamp, the last one
    ending with a newline; they are joined under the first frame's time, once, from their bytes: joined a piece at a
    time, an action's 30 MB without a newline took the event loop 25 s (quadratic), and a character cut between two
    frames is read whole. A line whose last piece is not in this answer yet comes last, marked not whole."""
    entries: list[Entry] = []
    partial: dict[str, tuple[str, list[bytes]]] = {}
    offset = 0
    while offset + 8 <= len(payload):
        kind, length = payload[offset], int.from_bytes(payload[offset + 4:offset + 8], "big")
        chunk = payload[offset + 8:offset + 8 + length]
        offset += 8 + length
        stream = STREAMS.get(kind)
        if stream is None:
            continue
        stamp, _, text = chunk.partition(b" ")
        if stream in partial:                  # a piece of a line begun before: under that line's time
            timestamp, parts = partial.pop(stream)
        else:
            timestamp, parts = stamp.decode("latin-1"), []
        parts.append(text)
        if text.endswith(b"\n"):
            entries.append(Entry(timestamp, stream, _decoded(parts)[:-1]))
        else:
            partial[stream] = (timestamp, parts)
    entries.extend(Entry(timestamp, stream, _decoded(parts), whole=False)
                   for stream, (timestamp, parts) in partial.items())
    return entries


def _decoded(parts: list[bytes]) -> str:
    return (parts[0] if len(parts) == 1 else b"".join(parts)).decode("utf-8", errors="replace")


def time_key(timestamp: str) -> tuple[int, int]:
    """RFC3339 with up to nanoseconds -> (epoch seconds, nanoseconds), for ordering."""
    whole, _, fraction = timestamp.rstrip("Z").partition(".")
    return _epoch(whole), int(fraction.ljust(9, "0")[:9] or 0)


@functools.lru_cache(maxsize=256)
def _epoch(whole: str) -> int:
    """Once per second of log lines: strptime was half of the time an activation's 400,000 lines took to read."""
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))


async def _last_sentinels(entries: list[tuple[tuple[int, int], Entry]]) -> dict[str, int]:
    """Each stream's last whole line that ends with the sentinel: its place in `entries`, counted from 1. Read from
    the end, where the proxy's sentinels are, with the loop's turns between slices."""
    last: dict[str, int] = {}
    for n in range(len(entries), 0, -1):
        if n % _TURN == 0:
            await asyncio.sleep(0)
        entry = entries[n - 1][1]
        if entry.stream not in last and entry.whole and entry.text.rstrip().endswith(SENTINEL):
            last[entry.stream] = n
            if len(last) == 2:
                break
    return last


def _keyed(payload: bytes) -> list[tuple[tuple[int, int], Entry]]:
    return [(time_key(entry.timestamp), entry) for entry in parse_frames(payload)]


class _Cursor:
    """How far one stream has been read: the time of its last line taken, and how many were taken at that time.

    Each stream is kept in order by docker, but the two are copied by separate goroutines, so a line of one stream
    can reach the file after a later-stamped line of the other: each stream needs its own cursor."""

    __slots__ = ("last", "count")

    def __init__(self) -> None:
        self.last: tuple[int, int] = (0, 0)
        self.count = 0

    def take(self, key: tuple[int, int]) -> None:
        if key == self.last:
            self.count += 1
        else:
            self.last, self.count = key, 1


class DockerLogReader:
    """Keeps one container's position in its log between activations."""

    def __init__(self, fetch: Callable[[str], Awaitable[bytes]]) -> None:
        self._fetch = fetch             # since ("seconds.nanoseconds", inclusive) -> the raw multiplexed answer
        self._cursors = {"stdout": _Cursor(), "stderr": _Cursor()}

    async def _new_entries(self) -> tuple[list[tuple[tuple[int, int], Entry]], bool]:
        """The lines not taken yet, and whether some may have been lost before they could be read: `since` asks
        again for each stream's last line taken, and when that line is gone while later ones are there, the
        json-file rotation (factory.LOGS) deleted the file holding it, and with it whatever came after it there (an
        action wrote more than the files hold since the previous read); nothing tells whether that was read
        already. A container's first read has no such line to look for."""
        seconds, nanos = min(c.last for c in self._cursors.values())
        payload = await self._fetch(f"{seconds}.{nanos:09d}")
        # Parsed beside the loop when large: an action's 400,000 lines held it for seconds, every API call waiting.
        entries = _keyed(payload) if len(payload) < INLINE_BYTES else await asyncio.to_thread(_keyed, payload)
        fresh = []
        at_last = {"stdout": 0, "stderr": 0}
        for n, (key, entry) in enumerate(entries, 1):
            if n % _TURN == 0:
                await asyncio.sleep(0)
            cursor = self._cursors[entry.stream]
            if key == cursor.last:
                at_last[entry.stream] += 1
                if at_last[entry.stream] <= cursor.count:
                    continue
            elif key < cursor.last:
                continue
            fresh.append((key, entry))
        lost = bool(entries) and any(cursor.count and at_last[stream] < cursor.count
                                     for stream, cursor in self._cursors.items())
        return fresh, lost

    async def take(self, limit_bytes: int, wait_for_sentinel: bool, grace_s: float = 0.0,
                   alone: bool = False) -> list[str]:
        """The lines of the activation that just ended, formatted as OpenWhisk stores them. Without waiting for the
        sentinels, lines docker has not copied to its log yet get up to `grace_s` to arrive. `alone`: no other
        activation runs in the container, so a stream's logs run to the last sentinel of a poll, not the first: an
        action that printed the sentinel itself gave the rest of its lines to the container's next activation, and
        every later activation the logs of the one before."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (overall_timeout_s(limit_bytes) if wait_for_sentinel else grace_s)
        idle_until = loop.time() + IDLE_TIMEOUT_S
        done: set[str] = set()           # streams whose sentinel has been read
        kept: list[tuple[tuple[int, int], Entry]] = []
        total, truncated, complete, polls, lost = 0, False, True, 0, False
        while True:
            entries, gone = await self._new_entries()
            lost = lost or gone
            last = await _last_sentinels(entries) if alone and wait_for_sentinel else {}
            for n, (key, entry) in enumerate(entries, 1):
                if n % _TURN == 0:
                    await asyncio.sleep(0)      # the loop's other work gets its turn
                if entry.stream in done:
                    # The next activation's: leave it for then. Waiting or not: with concurrency above 1 that one
                    # may be running now, and its read would wait for sentinels already taken (process:// too
                    # stops an activation's lines at its sentinels).
                    continue
                if not entry.whole and wait_for_sentinel:
                    continue            # docker is still copying its pieces: take it whole on a later poll
                self._cursors[entry.stream].take(key)
                text = entry.text.rstrip()
                if text.endswith(SENTINEL):
                    if last.get(entry.stream, n) <= n:
                        done.add(entry.stream)
                    # Output without a newline of its own ends the line the sentinel is on: keep it, unless blank.
                    if not text[:-len(SENTINEL)].strip():
                        continue
                    entry = replace(entry, text=text[:-len(SENTINEL)])
                data = entry.text.encode()
                # The frames of a long line were joined to find a sentinel at its end; stored, it is docker's
                # pieces again, as OpenWhisk reads docker's json-file entries.
                for piece in pieces(data):
                    total += len(piece) + 1
                    if total > limit_bytes:
                        truncated = True    # keep reading to the sentinels, so the next activation starts clean
                        break
                    if limit_bytes > 0:
                        kept.append((key, entry if piece is data else replace(entry, text=piece.decode())))
            if len(done) == 2:
                break
            now = loop.time()
            if not wait_for_sentinel:
                if now >= deadline:         # the grace is over: what is there is all there is
                    break
            else:
                if entries:
                    idle_until = now + IDLE_TIMEOUT_S
                if now >= deadline or now >= idle_until:
                    complete = False
                    break
            await asyncio.sleep(_POLL_S[min(polls, len(_POLL_S) - 1)])
            polls += 1
        if limit_bytes <= 0:
            return []
        kept.sort(key=lambda item: item[0])
        lines: list[str] = []
        for start in range(0, len(kept), _TURN):
            if start:
                await asyncio.sleep(0)
            lines += [log_line(entry.timestamp, entry.stream, entry.text) for _, entry in kept[start:start + _TURN]]
        if lost:
            # Where the lines are missing: before the first one kept (the end of the list says whether the
            # sentinels were read, and so whether the container can be kept).
            at = kept[0][1].timestamp if kept else rfc3339_nanos(time.time_ns())
            lines.insert(0, log_line(at, "stderr", LOG_COLLECTION_FAILED))
        if truncated:
            lines.append(log_line(rfc3339_nanos(time.time_ns()), "stderr", logs_truncated(limit_bytes)))
        elif not complete:
            lines.append(log_line(rfc3339_nanos(time.time_ns()), "stderr", LOG_COLLECTION_FAILED))
        return lines
