"""The client's one error type: a message, the exit status it ends the program with, and how it is shown.

Exit statuses follow `wsk` (wsk's util.go ExitOnError): 1 general, 2 usage, 3 network, an HTTP error's status mod 256,
149 "not allowed", 202 a blocking call that has not finished, 246 an application error. Wrapping (`within`)
keeps the inner status and whether the inner error is shown at all, as `wsk` does.
"""

from __future__ import annotations

GENERAL = 1
USAGE = 2
NETWORK = 3
NOT_ALLOWED = 149
TIMED_OUT = 202
APPLICATION_ERROR = 246


class CliError(Exception):
    """`error: <message>` on stderr (unless `shown` is false), then the usage hint when `usage`, exit `status`."""

    def __init__(self, message: str, status: int = GENERAL, *, usage: bool = False, shown: bool = True,
                 http_status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.usage = usage
        self.shown = shown
        self.http_status = http_status

    def within(self, context: str, *, usage: bool = False) -> CliError:
        """This error as the detail of `context: detail`: the inner status, visibility and HTTP status stay; the
        usage hint shows when either asks for it (the Go client's MakeWskErrorFromWskError)."""
        return CliError(f"{context}: {self.message}", self.status, usage=self.usage or usage, shown=self.shown,
                        http_status=self.http_status)


def path_error(op: str, path: str, exc: OSError) -> str:
    """An OSError as Go's *os.PathError reads in `wsk`'s messages (`open PATH: is a directory`), not Python's
    `[Errno 21] Is a directory: 'PATH'`: the system's text, lower-case first, as Go's errno strings are."""
    text = exc.strerror or str(exc)
    return f"{op} {path}: {text[:1].lower()}{text[1:]}"


def usage_error(message: str) -> CliError:
    """A command-line usage error (exit 2) followed by the usage hint."""
    return CliError(message, USAGE, usage=True)


class ParseError(CliError):
    """A cobra/pflag parse error (unknown command or flag, bad flag value). `wsk` prints these without `error:`:
    a runnable command (SilenceErrors) shows only the message; the root and the groups also let cobra print
    `Error: <message>` first, and for an unknown command at the root `Run 'wsk --help' for usage.` after it."""

    def __init__(self, message: str, *, echoed: bool = False, hint: bool = False) -> None:
        super().__init__(message, GENERAL)
        self.echoed = echoed
        self.hint = hint
