"""`whisk` / `python -m whisk`: with no arguments (or `serve`) run the server in the role WHISK_ROLE names;
with any other arguments, the `wsk`-compatible command-line client (`whisk --help`)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

SERVE = ("serve",)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in SERVE:
        if len(args) > 1 and args[1] in ("-h", "--help"):
            return _serve_help()
        if len(args) > 1:       # `whisk serve --port 3000` must not start on the default port
            print(f"whisk: 'serve' takes no arguments, not {' '.join(args[1:])!r}; every setting is a WHISK_*"
                  " environment variable ('whisk serve --help' lists them)", file=sys.stderr)
            return 2
        return _serve()
    from whisk.cli.main import main as cli_main
    return cli_main(args, open_store=_open_store)


def _open_store(url: str | None) -> AbstractAsyncContextManager[Any]:
    """`whisk admin`'s store. The server's modules are imported only for it: every other command starts without
    them (they took a third of a command's start)."""
    from whisk.roles import open_store
    return open_store(url)


def _serve_help() -> int:
    from whisk.config import serve_help
    sys.stdout.write(serve_help())
    return 0


def _serve() -> int:
    import os

    from whisk.config import ConfigError, Settings
    from whisk.containers.base import ContainerError
    from whisk.entities.errors import BackendUnavailable
    from whisk.logs import bind, configure
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        # The format is read as given: a bad value elsewhere must still reach a collector as JSON.
        json = os.environ.get("WHISK_LOG_FORMAT") == "json"
        if json:
            configure("json")
        return _fatal(f"configuration error: {exc}", json, 2)
    configure(settings.log_format, settings.log_level)
    bind(role=settings.role, instance=settings.instance)    # from the first line, `server.failed` included
    json = settings.log_format == "json"
    _raise_open_files_limit()
    try:
        from whisk.roles import serve
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(serve(settings))
    except KeyboardInterrupt:       # Ctrl+C before the server had its own signal handlers (importing): nothing opened
        return 130
    except ConfigError as exc:
        return _fatal(f"configuration error: {exc}", json, 2)
    # A port in use; a store that cannot be opened (locked); a Docker daemon that does not answer.
    except (OSError, BackendUnavailable, ContainerError) as exc:
        return _fatal(f"cannot start: {exc}", json, 1)
    except Exception as exc:
        if not json:
            raise               # Python's traceback, for a person at a console
        # A fault of whisk's own: its traceback in the line's `exception`, not as plain lines a collector cannot read.
        import structlog
        structlog.get_logger("whisk").critical("server.failed", error=f"crashed: {exc!r}", exit_status=1,
                                               exc_info=True)
        return 1
    return 0


def _fatal(reason: str, json: bool, status: int) -> int:
    """Why the server stops: `whisk: <reason>` for a person, or with WHISK_LOG_FORMAT=json the `server.failed`
    line, one JSON object as every other (a plain line among them is what a collector cannot parse, and this is the
    one an operator looks for)."""
    if json:
        import structlog
        structlog.get_logger("whisk").critical("server.failed", error=reason, exit_status=status)
    else:
        print(f"whisk: {reason}", file=sys.stderr)
    return status


def _raise_open_files_limit() -> None:
    """Take the hard limit on open files as the soft one: each container holds four descriptors here (its proxy
    connection, two log pipes, a pidfd) besides every client's connection, and many systems start processes with
    a soft limit of 1024. Containers get their own limit from the launcher."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass            # a limit the system will not raise: keep the one we have


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (a dependency; docs/performance.md has what it saves per invoke),
    else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run() -> int:
    """The console script: `main`, quiet when the reader of stdout goes away (`whisk ... | head`)."""
    try:
        return main()
    except BrokenPipeError:
        sys.stderr.close()
        return 1


if __name__ == "__main__":
    sys.exit(run())
