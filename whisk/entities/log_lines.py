"""An activation record's log lines as OpenWhisk stores them (docs/openwhisk.md §2.7): the time docker stamped the
line with, the stream, the text; a line longer than docker's 16 KiB in pieces, one log line each."""

from __future__ import annotations

import time


def rfc3339_nanos(time_ns: int) -> str:
    """Epoch nanoseconds as docker's log timestamps: "2026-11-28T04:12:33.123456789Z"."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


def log_line(timestamp: str, stream: str, text: str) -> str:
    """One stored log line as OpenWhisk formats it: the time padded to 30, the stream, the text without its line end
    (docs/openwhisk.md §2.7). Only the line end goes, as OpenWhisk's `stripLineEnd` takes off a docker entry's "\n"
    or "\r\n": the indentation of a traceback or of a logged object, and trailing blanks, are the action's output."""
    if text.endswith("\n"):
        text = text[:-1]
    if text.endswith("\r"):
        text = text[:-1]
    return f"{timestamp:<30} {stream}: {text}"


DOCKER_PIECE = 16 * 1024     # docker's log drivers store a longer line as pieces of this size, each an entry


def pieces(raw: bytes) -> list[bytes]:
    """A long line as docker's json-file driver stores it, which OpenWhisk reads entry by entry: pieces of at most
    DOCKER_PIECE bytes, each counted against the log limit and stored as a line of its own (so a line longer than
    the limit keeps its first pieces, as on OpenWhisk, not nothing). whisk cuts before a UTF-8 continuation byte,
    where docker may cut inside a character."""
    if len(raw) <= DOCKER_PIECE:
        return [raw]                # most lines: the line itself
    out = []
    start = 0
    while len(raw) - start > DOCKER_PIECE:
        cut = start + DOCKER_PIECE
        while cut > start + DOCKER_PIECE - 3 and (raw[cut] & 0xC0) == 0x80:
            cut -= 1
        out.append(raw[start:cut])
        start = cut
    out.append(raw[start:])
    return out
