"""Logging with structlog: readable console lines in standalone, JSON lines with WHISK_LOG_FORMAT=json.

`merge_context` comes first so that a bound transaction or activation id (`log_context`, `bind`) reaches every line
of a request and of every task started inside it. Event names are fixed dotted strings; data goes in fields.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time
from types import TracebackType
from typing import Callable, cast

import structlog


class _Stderr:
    """Whatever sys.stderr is when a line is written (tests swap it; a logger bound to the old one would fail)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _Repeats(logging.Filter):
    """aiokafka logs every failed attempt while the broker is away (each client retries every 100 ms: ~800 lines a
    second a process, 150,000 for a two-minute outage): one line per library logger and message template every
    REPEAT_WINDOW_S, the next one saying how many like it were left out. Kafka's Java clients back off to once a
    second; the first line of an outage and the first after it are kept, and whisk's own `bus.*` and
    `loadbalancer.bus.*` lines say what happened."""

    REPEAT_WINDOW_S = 10.0

    def __init__(self) -> None:
        super().__init__()
        self._seen: dict[tuple[str, object], tuple[float, int]] = {}   # key -> (window start, left out since)

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("aiokafka"):
            return True
        key = (record.name, record.msg)
        now = time.monotonic()
        start, left_out = self._seen.get(key, (0.0, 0))
        if now - start < self.REPEAT_WINDOW_S:
            self._seen[key] = (start, left_out + 1)
            return False
        if len(self._seen) > 1000:              # templates are few; bound it all the same
            self._seen.clear()
        self._seen[key] = (now, 0)
        if left_out:
            record.msg, record.args = (f"{record.getMessage()} ({left_out} more like it in the last "
                                       f"{now - start:.0f} s not logged)"), None
        return True


class Bounded:
    """The lines of one event that any caller can cause at will, one a request (a malformed request, a refused admin
    call, a 5xx while a dependency is away): `burst` at once, then `per_s` a second, so that a flood of such requests
    cannot fill the disk whatever the log level (the access lines, at info, are the operator's to turn off). The
    next line written after some were left out says how many (`not_logged`)."""

    __slots__ = ("_burst", "_per_s", "_clock", "_tokens", "_at", "_left_out")

    def __init__(self, burst: int = 20, per_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._burst, self._per_s, self._clock = burst, per_s, clock
        self._tokens, self._at, self._left_out = float(burst), clock(), 0

    def fields(self) -> dict[str, int] | None:
        """None: leave this line out; else the fields to add to it (`not_logged` when some were left out)."""
        now = self._clock()
        self._tokens = min(float(self._burst), self._tokens + (now - self._at) * self._per_s)
        self._at = now
        if self._tokens < 1.0:
            self._left_out += 1
            return None
        self._tokens -= 1.0
        left_out, self._left_out = self._left_out, 0
        return {"not_logged": left_out} if left_out else {}


_LEVEL_COLORS = {"debug": "\x1b[2m", "info": "\x1b[32m", "warning": "\x1b[33m", "error": "\x1b[31m",
                 "critical": "\x1b[31;1m", "exception": "\x1b[31m"}
_RESET = "\x1b[0m"


_QUOTED = re.compile(r"[ \t=\r\n\"']").search


def _text(value: object) -> str:
    """A value as ConsoleRenderer shows it: a string as it is unless a space, quote, `=` or line break would make
    the line ambiguous, or it holds a character that is not printable (then repr, as for every other value). A path
    or header is the client's: a NUL in it made the whole log a binary file to grep, an escape sequence wrote to the
    terminal of whoever read the log."""
    if isinstance(value, str) and value.isprintable() and _QUOTED(value) is None:
        return value
    return repr(value)


class UtcTime:
    """The `timestamp` field, as structlog's TimeStamper(fmt="iso", utc=True) writes it ("2026-12-06T04:35:04.123456Z",
    always with the six digits), at a third of its cost: the date and time are formatted once a second, and every
    request writes a line."""

    __slots__ = ("_second", "_text")

    def __init__(self) -> None:
        self._second, self._text = -1, ""

    def __call__(self, logger: object, method: str,
                 event_dict: structlog.typing.EventDict) -> structlog.typing.EventDict:
        second, micros = divmod(time.time_ns() // 1000, 1_000_000)
        if second != self._second:
            self._second, self._text = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        event_dict["timestamp"] = f"{self._text}.{micros:06d}Z"
        return event_dict


class ConsoleLine:
    """The console line structlog's ConsoleRenderer writes (`<time> [<level>] <event> key=value ...`, keys sorted,
    plain strings as they are, other values as repr, a traceback below), at a third of its cost: every request writes
    one (`http.access`). Colours only the level, and only on a terminal."""

    def __init__(self, colors: bool) -> None:
        self._colors = colors

    def __call__(self, logger: object, method: str, event_dict: structlog.typing.EventDict) -> str:
        timestamp = event_dict.pop("timestamp", "")
        level = event_dict.pop("level", method)
        event = event_dict.pop("event", "")
        trace = event_dict.pop("exception", None)
        stack = event_dict.pop("stack", None)
        tag = f"[{level:<9}]"
        if self._colors:
            tag = f"{_LEVEL_COLORS.get(level, '')}{tag}{_RESET}"
        fields = " ".join(f"{key}={_text(value)}" for key, value in sorted(event_dict.items()))
        line = f"{timestamp} {tag} {event!s:<30} {fields}".rstrip()
        if stack:
            line += "\n" + str(stack)
        if trace:
            line += "\n" + str(trace)
        return line


# The fields bound for log lines, in one context variable: binding four fields and unbinding them costs 0.3 us, where
# structlog's bound_contextvars (a variable per field) takes 3.8 us, and a request binds twice.
# Its default holds what `bind` binds for the whole process: a thread that inherited no context (an executor's, as
# SQLite's writer and readers run in) reads the default, so its lines name the role and instance too.
_PROCESS: dict[str, object] = {}
_CONTEXT: contextvars.ContextVar[dict[str, object]] = contextvars.ContextVar("whisk_log_context", default=_PROCESS)


class log_context:
    """`with log_context(tid=...):` every line logged inside the block, by this task and by the tasks it starts,
    carries these fields."""

    __slots__ = ("_fields", "_token")

    def __init__(self, **fields: object) -> None:
        self._fields = fields

    def __enter__(self) -> None:
        self._token = _CONTEXT.set({**_CONTEXT.get(), **self._fields})

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        _CONTEXT.reset(self._token)


def bind(**fields: object) -> None:
    """Fields for every line from here on, in this context and in every thread (the role and instance, bound once
    at start)."""
    _PROCESS.update(fields)
    _CONTEXT.set({**_CONTEXT.get(), **fields})


def merge_context(logger: object, method: str, event_dict: structlog.typing.EventDict) -> structlog.typing.EventDict:
    for key, value in _CONTEXT.get().items():
        event_dict.setdefault(key, value)           # a field given to the call itself wins
    return event_dict


# configure()'s chain for the access line while info lines are on (else None): its steps that act on a line without
# a stack or an exception, then its renderer. `access` runs them directly.
_Step = Callable[[object, str, structlog.typing.EventDict], structlog.typing.EventDict]
_Renderer = Callable[[object, str, structlog.typing.EventDict], str]
_access_chain: tuple[list[_Step], _Renderer] | None = None


def access(method: str, path: str, status: int, duration_ms: float, activation_id: str | None = None) -> None:
    """The `http.access` line, as `log.info("http.access", method=..., ...)` writes it through configure()'s chain:
    the same event, given to the same context, level, time and render steps. Every request writes one, and the
    chain's generic parts (the bound logger, the stack and exception processors, print) took 3 of its 7.5 us.
    `activation_id`: the activation the answer names (an invoke, a fire, a web action), the one line at info that
    ties a transaction id to it."""
    chain = _access_chain
    if chain is None:
        return
    steps, render = chain
    event: structlog.typing.EventDict = {"method": method, "path": path, "status": status,
                                         "duration_ms": duration_ms, "event": "http.access"}
    if activation_id is not None:
        event["activation_id"] = activation_id
    for step in steps:
        event = step(None, "info", event)
    sys.stderr.write(f"{render(None, 'info', event)}\n")


_LIBRARY_HANDLER = "whisk.libraries"


def _route_library_lines(steps: list[_Step], renderer: _Renderer, level: int) -> None:
    """Libraries (aiohttp, aiokafka, asyncio) log through the standard library: keep their warnings, drop their
    chatter, and write them as whisk's own lines, the library's logger in `logger`: with WHISK_LOG_FORMAT=json a
    plain-text line among the JSON ones would break a collector's parsing. Called again, it replaces its handler."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _LIBRARY_HANDLER]:
        root.removeHandler(old)
    handler = logging.StreamHandler(_Stderr())
    handler.set_name(_LIBRARY_HANDLER)
    handler.addFilter(_Repeats())
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*steps, structlog.stdlib.add_logger_name],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer]))
    root.addHandler(handler)
    root.setLevel(level)
    # Python's warnings (a RuntimeWarning for a coroutine never awaited, a library's UserWarning) are written to
    # stderr as plain text, two lines each: through logging, they are lines like the libraries' (`py.warnings`).
    logging.captureWarnings(True)


def configure(log_format: str = "console", level: str = "info") -> None:
    global _access_chain
    numeric = getattr(logging, level.upper(), logging.INFO)
    steps: list[_Step] = [
        merge_context,
        structlog.processors.add_log_level,
        UtcTime(),
    ]
    renderer: _Renderer
    processors: list[structlog.typing.Processor]
    if log_format == "json":
        renderer = cast(_Renderer, structlog.processors.JSONRenderer())     # json.dumps: always text
        processors = [*steps, structlog.processors.format_exc_info, renderer]
    else:
        renderer = ConsoleLine(colors=sys.stderr.isatty())
        processors = [*steps, structlog.processors.StackInfoRenderer(), structlog.processors.format_exc_info, renderer]
    _access_chain = (steps, renderer) if numeric <= logging.INFO else None
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # structlog annotates `file` as TextIO, wider than PrintLogger needs: it only writes and flushes.
        logger_factory=structlog.PrintLoggerFactory(file=_Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    _route_library_lines(steps, renderer, max(numeric, logging.WARNING))
