"""An activation record's log lines as OpenWhisk stores them (docs/openwhisk.md §2.7): the time docker stamped the
line with, the stream, the text."""

from __future__ import annotations

import time


def rfc3339_nanos(time_ns: int) -> str:
    """Epoch nanoseconds as docker's log timestamps: "2026-11-28T04:12:33.123456789Z"."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


def log_line(timestamp: str, stream: str, text: str) -> str:
    """One stored log line as OpenWhisk formats it: the time padded to 30, the stream, the text trimmed like
    Java's String.trim (docs/openwhisk.md §2.7)."""
    return f"{timestamp:<30} {stream}: {text.strip(_JAVA_TRIM)}"


_JAVA_TRIM = "".join(chr(c) for c in range(33))
