"""A controller's journal of accepted activations, so that a restart can close what a crash left open.

Beyond OpenWhisk: every accepted activation must end with a stored record. The controller appends one line when it
publishes an activation and one when the activation completes; both are single `os.write` calls on an O_APPEND
descriptor (page cache, no fsync), so they survive the process being killed, cost a few microseconds, and never wait on
a disk (the completions of one turn of the event loop share one write: a completion line lost to a crash only leaves an
activation open whose record is already stored, which the start-up check passes over). At start, `unfinished()` lists
what was accepted but never completed; the ledger (`Ledger.recover`) then stores a whisk-error record for each that has
none, and the journal starts afresh.

A blocking caller is answered before the invoker has collected the logs and stored the record. So that a crash in
that window does not leave a whisk-error record contradicting the answer the caller got, the answered record
(without logs) is written too, as a "=" line, before the answer goes out (one more `os.write` a blocking invoke; an
answer whose record was stored first, as a combined ack's, writes none). A restart stores that record instead.

Two lines an activation would grow the file by about 180 bytes each time, forever (43 MB after a soak's first
250,000 activations). So the journal keeps the lines of the activations still open (as many as are in flight) and,
once COMPACT_BYTES have been written, writes a new file with only those and renames it over the old one: a crash at
any point leaves one whole journal, the old or the new.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import os
from pathlib import Path
from typing import Any

import structlog

from whisk.entities.activation import Activation
from whisk.entities.errors import BackendUnavailable
from whisk.entities.json_value import encode

log = structlog.get_logger(__name__)

COMPACT_BYTES = 4 << 20


class JournalInUse(OSError):
    """Another running process holds this journal: a second server on the same data folder and instance."""


class Journal:
    def __init__(self, path: Path, compact_bytes: int = COMPACT_BYTES) -> None:
        self._path = path
        self._fd: int | None = None
        self._open: dict[str, bytes] = {}      # activation id -> its "+" line, while it is open
        self._answers: dict[str, bytes] = {}   # activation id -> its "=" line, once written, while it is open
        self._done: list[str] = []             # completions not yet written (until the loop's next turn)
        self._written = 0                      # bytes written since the file was last (re)made
        self._compact_bytes = compact_bytes
        self._lock_fd: int | None = None

    def lock(self) -> None:
        """Own the journal before reading it: a second server started on the same data folder would otherwise
        close the first one's open activations as interrupted and empty its journal, then fail to bind its port.
        The lock (flock on a file beside the journal) goes with the process, a SIGKILL included."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path.with_name(self._path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise JournalInUse(f"another whisk server is running on the data folder {self._path.parent} "
                               f"(its journal {self._path.name} is locked)") from None
        self._lock_fd = fd

    def unfinished(self) -> list[dict[str, Any]]:
        """Entries accepted but not completed by the previous run, oldest first; an answered one with its record
        (`answered`, the record's document)."""
        if not self._path.exists():
            return []
        open_: dict[str, dict[str, Any]] = {}
        with self._path.open("r", encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if line.startswith(("+ ", "= ")):
                    try:
                        entry = json.loads(line[2:])
                        if line[0] == "+":
                            open_[entry["id"]] = entry
                        elif entry["activationId"] in open_:
                            open_[entry["activationId"]]["answered"] = entry
                    except (ValueError, KeyError, TypeError):
                        continue          # a line torn by a crash mid-write
                elif line.startswith("- "):
                    open_.pop(line[2:].strip(), None)
        return list(open_.values())

    def open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = self._create(self._path)
        self._open.clear()
        self._answers.clear()
        self._done.clear()
        self._written = 0

    def accepted(self, activation_id: str, namespace: str, subject: str, path: str, version: str,
                 binding: str | None, cause: str | None = None) -> None:
        if self._fd is not None:
            entry = {"id": activation_id, "ns": namespace, "subject": subject, "path": path, "version": version}
            if binding:
                entry["binding"] = binding
            if cause:
                entry["cause"] = cause
            line = b"+ " + encode(entry) + b"\n"
            try:
                self._written += self._append(line)
            except OSError as exc:      # a full disk: refuse the activation rather than accept what a crash loses
                raise BackendUnavailable(f"The activation cannot be accepted: the controller's journal cannot be "
                                         f"written ({exc.strerror or exc}).") from None
            self._open[activation_id] = line

    def answered(self, record: Activation) -> None:
        """A blocking caller is about to get this record (without logs), which is not stored yet; or the controller
        could not store a record it wrote itself (with its logs)."""
        if self._fd is not None and record.activation_id in self._open:
            line = b"= " + encode(record.to_doc()) + b"\n"
            try:
                self._written += self._append(line)
            except OSError as exc:      # the caller is answered anyway; a restart would store an error instead
                log.warning("journal.write_failed", line="answer", error=exc.strerror or str(exc))
                return
            self._answers[record.activation_id] = line

    def completed(self, activation_id: str) -> None:
        # Only what this file holds open needs its "-" line (not a namespace's that journals nothing, nor a repeat).
        if self._fd is not None and self._open.pop(activation_id, None) is not None:
            self._answers.pop(activation_id, None)
            self._done.append(activation_id)
            if len(self._done) == 1:
                try:
                    asyncio.get_running_loop().call_soon(self._write_done)
                except RuntimeError:           # no loop (a script reading the journal): at once
                    self._write_done()

    def _write_done(self) -> None:
        done, self._done = self._done, []
        if self._fd is not None and done:
            try:
                self._written += self._append("".join(f"- {activation_id}\n" for activation_id in done).encode())
            except OSError as exc:      # their records are stored: a restart passes over activations that have one
                log.warning("journal.write_failed", line="completions", count=len(done), error=exc.strerror or str(exc))
            if self._written >= self._compact_bytes:
                self._compact()

    def _append(self, data: bytes) -> int:
        """Write `data` whole, or raise OSError. A short write (a disk filling up) is ended with a newline, so the
        torn line is dropped when read, not glued to the next one."""
        assert self._fd is not None
        written = os.write(self._fd, data)
        if written < len(data):
            if written and data[written - 1:written] != b"\n":
                try:
                    os.write(self._fd, b"\n")
                except OSError:
                    pass
            raise OSError(errno.ENOSPC, "short write")
        return written

    def close(self) -> None:
        self._write_done()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _compact(self) -> None:
        """A new file with only the open activations' lines (a few KB, more with large answered results), renamed
        over the old one."""
        assert self._fd is not None
        data = b"".join(self._open.values()) + b"".join(self._answers.values())
        fresh = self._path.with_name(self._path.name + ".new")
        self._written = len(data)      # on failure too: the next try comes after COMPACT_BYTES more
        try:
            fd = self._create(fresh)
        except OSError:
            return                     # keep appending to the old file
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.replace(fresh, self._path)
        except OSError:
            os.close(fd)
            return
        os.close(self._fd)
        self._fd = fd

    @staticmethod
    def _create(path: Path) -> int:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
