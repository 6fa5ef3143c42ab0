"""A controller's journal of accepted activations, so that a restart can close what a crash left open.

Beyond OpenWhisk: every accepted activation must end with a stored record. The controller appends one line when it
publishes an activation and one when the activation completes; both are single `os.write` calls on an O_APPEND
descriptor (page cache, no fsync), so they survive the process being killed, cost a few microseconds, and never
wait on a disk. At start, `unfinished()` lists what was accepted but never completed; the activator then stores a
whisk-error record for each that has none, and the journal starts afresh.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


class Journal:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None

    def unfinished(self) -> list[dict[str, str]]:
        """Entries accepted but not completed by the previous run, oldest first."""
        if not self._path.exists():
            return []
        open_: dict[str, dict[str, str]] = {}
        with self._path.open("r", encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if line.startswith("+ "):
                    try:
                        entry = json.loads(line[2:])
                        open_[entry["id"]] = entry
                    except (ValueError, KeyError, TypeError):
                        continue          # a line torn by a crash mid-write
                elif line.startswith("- "):
                    open_.pop(line[2:].strip(), None)
        return list(open_.values())

    def open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)

    def accepted(self, activation_id: str, namespace: str, subject: str, path: str, version: str,
                 binding: str | None) -> None:
        if self._fd is not None:
            entry = {"id": activation_id, "ns": namespace, "subject": subject, "path": path, "version": version}
            if binding:
                entry["binding"] = binding
            os.write(self._fd, b"+ " + json.dumps(entry, separators=(",", ":")).encode() + b"\n")

    def completed(self, activation_id: str) -> None:
        if self._fd is not None:
            os.write(self._fd, f"- {activation_id}\n".encode())

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
