"""Where the client writes: `ok:` lines and JSON on stdout, errors on stderr (wsk's util.go).

Colour (green `ok:`, bold names and headers) only when stdout is a terminal. JSON is indented by 4 spaces,
without ASCII or HTML escaping, with a trailing newline, as Go's encoder and json.Indent write it.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

_BOLD, _GREEN, _RED, _RESET = "\x1b[1m", "\x1b[32m", "\x1b[31m", "\x1b[0m"


def dumps(value: Any) -> str:
    return json.dumps(value, indent=4, ensure_ascii=False) + "\n"


class Output:
    def __init__(self, stdout: TextIO | None = None, stderr: TextIO | None = None,
                 color: bool | None = None) -> None:
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        if color is None:
            isatty = getattr(self.stdout, "isatty", None)
            color = bool(isatty and isatty())
        self.color = color

    def bold(self, text: Any) -> str:
        return f"{_BOLD}{text}{_RESET}" if self.color else str(text)

    def ok_prefix(self) -> str:
        return f"{_GREEN}ok:{_RESET}" if self.color else "ok:"

    def write(self, text: str, *, err: bool = False) -> None:
        stream = self.stderr if err else self.stdout
        stream.write(text)
        stream.flush()

    def line(self, text: str = "", *, err: bool = False) -> None:
        self.write(text + "\n", err=err)

    def ok(self, text: str, *, err: bool = False) -> None:
        """`ok: <text>`; `text` already carries any bold parts."""
        self.line(f"{self.ok_prefix()} {text}", err=err)

    def json(self, value: Any, *, err: bool = False) -> None:
        self.write(dumps(value), err=err)

    def error(self, message: str) -> None:
        prefix = f"{_RED}error:{_RESET} " if self.color else "error: "
        self.line(prefix + message, err=True)
