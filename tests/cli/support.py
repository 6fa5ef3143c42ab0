"""In-process helpers for the client's unit tests: argv through the real pre-pass and parser into a Context."""

from __future__ import annotations

import io
from contextlib import AsyncExitStack

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
