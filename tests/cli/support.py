"""In-process helpers for the client's unit tests: argv through the real pre-pass and parser into a Context."""

from __future__ import annotations

import http.server
import io
import ssl
import threading
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager

from whisk.cli.arguments import extract
from whisk.cli.context import Context
from whisk.cli.flags import GLOBAL
from whisk.cli.grammar import parse
from whisk.cli.main import ROOT
from whisk.cli.output import Output
from whisk.cli.wskprops import Properties


def output() -> Output:
    return Output(io.StringIO(), io.StringIO(), color=False)


def context(*argv: str, apihost: str = "http://127.0.0.1:9", auth: str = "uuid:key") -> Context:
    """A Context for `whisk <argv>`; its Api is never opened unless a test awaits a request."""
    fragments = extract(list(argv))
    inv = parse(ROOT, fragments.argv, GLOBAL)
    props = Properties(path="/nonexistent/wskprops", apihost=apihost, auth=auth)
    return Context(inv=inv, fragments=fragments, props=props, out=output(), stack=AsyncExitStack())


def stdout(ctx: Context) -> str:
    return ctx.out.stdout.getvalue()  # type: ignore[attr-defined]


@contextmanager
def serving(handler: type[http.server.BaseHTTPRequestHandler], context: ssl.SSLContext | None = None
            ) -> Iterator[int]:
    """An HTTP (with `context`, HTTPS) server on 127.0.0.1 that answers with `handler`, in a thread; yields its port."""
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
