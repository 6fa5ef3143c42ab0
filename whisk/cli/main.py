"""The `wsk`-compatible command line: `whisk <group> <command> [args] [flags]` (openwhisk-cli).

`whisk/__main__.py` runs the server for no arguments or `serve`, and calls `main(argv, open_store=...)` for
anything else. Order of work, as `wsk`: the -p/-P/-a/-A/-F/-T pre-pass, flag parsing, the properties file and
environment, the API host check, then the command. Every failure ends as `error: ...` and an exit status.
"""

from __future__ import annotations

import asyncio
import os
import sys
from contextlib import AsyncExitStack

from whisk.cli import actions, activations, admin, apis, namespaces, packages, properties, rules, sdk, triggers, usage
from whisk.cli.arguments import extract
from whisk.cli.client import tls_context
from whisk.cli.context import Context, OpenStore
from whisk.cli.errors import CliError, ParseError
from whisk.cli.flags import GLOBAL
from whisk.cli.grammar import Command, Invocation, parse
from whisk.cli.output import Output
from whisk.cli.wskprops import base_url, resolve
from whisk.config import ClientSettings, serve_help

PROG = "whisk"


async def _serve_elsewhere(ctx: Context) -> None:
    raise CliError(f"'serve' must be the first argument: run '{PROG} serve' (or '{PROG}' alone) to start the server")


async def _help(ctx: Context) -> None:
    """cobra's help command: the help of the deepest command the words name (an unknown word below a group
    stops there); an unknown first word prints `Unknown help topic` and the root's usage on stderr, exit 0."""
    path = [ROOT]
    for word in ctx.args:
        child = path[-1].child(word)
        if child is None:
            if len(path) == 1:
                topics = " ".join(f"`{a}`" for a in ctx.args)
                text = usage.render(path, GLOBAL)
                ctx.out.write(f"Unknown help topic [{topics}]\n{text[text.index('Usage:'):]}", err=True)
                return
            break
        path.append(child)
    ctx.out.write(_help_text(path))


def _help_text(path: list[Command]) -> str:
    """cobra's help of a command; `serve`'s is the server's own (its settings), since it takes none of the flags."""
    return serve_help() if path[-1] is SERVE else usage.render(path, GLOBAL)


SERVE = Command("serve", "start the server; role and settings from WHISK_* variables, see README "
                         f"('{PROG} serve --help' lists them)", run=_serve_elsewhere)

ROOT = Command(
    PROG, "whisk: an OpenWhisk-compatible function-as-a-service platform, and its `wsk`-compatible command line",
    long="whisk: an Apache OpenWhisk-compatible function-as-a-service platform in one program.\n"
         "Without arguments (or with 'serve') it starts the server; with any other arguments it is a command line\n"
         "client with the grammar of OpenWhisk's `wsk` (configuration in ~/.wskprops or WSK_CONFIG_FILE,\n"
         "overridden by WHISK_APIHOST / WHISK_AUTH / WHISK_APIVERSION and the global flags).\n"
         "'api' manages API routes natively (no separate gateway): a route is served at\n"
         "<API host>/api/<uuid of your key>/<base path><path> and calls its web action.",
    usage=(f"{PROG}                  start the server (same as '{PROG} serve')",),
    children=(
        actions.GROUP, activations.GROUP, packages.GROUP, rules.GROUP, triggers.GROUP, properties.GROUP,
        namespaces.GROUP, namespaces.LIST, apis.GROUP, admin.GROUP, sdk.GROUP,
        SERVE,
        Command("help [command]", "Help about any command", run=_help),
    ),
)


def _needs_host(inv: Invocation) -> bool:
    """Server commands check the API host before anything else (`wsk`'s SetupClientConfig)."""
    top = inv.words[1] if len(inv.words) > 1 else ""
    if top in ("admin", "help", "serve"):
        return False
    if top == "sdk":                        # a completion script needs no server (compared as typed, as `wsk`)
        return inv.args[:1] != ["bashauto"]
    if top == "property":
        if inv.words[-1] == "get":
            return not any(inv.values[f] for f in ("auth", "cert", "key", "apihost", "apiversion", "cliversion"))
        if inv.words[-1] == "set":          # only --apihost, --apiversion and --auth exempt `set`
            return not any(inv.values[f] for f in ("apihost", "apiversion", "auth"))
        return False
    return True


def _needs_client(inv: Invocation) -> bool:
    """Commands whose `wsk` twin builds its HTTP client first (SetupClientConfig), so a half-configured client
    certificate fails them before anything else. Not `property set`: there `wsk` would refuse to store a --cert
    until a KEY exists, and the other way round."""
    top = inv.words[1] if len(inv.words) > 1 else ""
    if top in ("admin", "help", "serve"):
        return False
    return not (top == "property" and inv.words[-1] in ("set", "unset"))


def _global_values(inv: Invocation) -> dict[str, object]:
    """Global flag values, except where the command has a local flag of the same name (`property get --auth`)."""
    local = {f.name for f in inv.command.flags}
    return {f.name: inv.values[f.name] for f in GLOBAL if f.name not in local}


def _report(out: Output, error: CliError) -> int:
    if isinstance(error, ParseError):       # cobra's own printing (groups, root), then `wsk`'s plain one
        if error.echoed:
            out.line(f"Error: {error.message}", err=True)
        if error.hint:
            out.line(f"Run '{PROG} --help' for usage.", err=True)
        out.line(error.message, err=True)
        return 1
    if error.shown:
        out.error(error.message)
    if error.usage:
        out.line(f"Run '{PROG} --help' for usage.", err=True)
    return error.status if error.status else 1


async def _run(inv: Invocation, ctx_args: dict) -> None:
    async with AsyncExitStack() as stack:
        ctx = Context(inv=inv, stack=stack, **ctx_args)
        assert inv.command.run is not None
        await inv.command.run(ctx)


def main(argv: list[str], *, open_store: OpenStore | None = None) -> int:
    """Run one client command; returns the exit status."""
    out = Output()
    try:
        fragments = extract(list(argv))
        inv = parse(ROOT, fragments.argv, GLOBAL)
        if inv.help:
            out.write(_help_text(inv.path))
            return 0
        props = resolve(ClientSettings.from_env(), _global_values(inv))
        if _needs_host(inv):
            base_url(props.apihost)
        if _needs_client(inv):
            tls_context(props)
        asyncio.run(_run(inv, {"fragments": fragments, "props": props, "out": out, "open_store": open_store}))
    except CliError as exc:
        return _report(out, exc)
    except KeyboardInterrupt:
        return 130                 # Ctrl-C outside `activation poll`, which handles it itself
    except BrokenPipeError:        # e.g. `whisk activation poll | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
