"""`whisk namespace list|get` and `whisk list` (wsk's namespace.go)."""

from __future__ import annotations

from typing import Any

from whisk.cli import names, rules, tables
from whisk.cli.client import Call, entity_path, sorted_query
from whisk.cli.context import Context
from whisk.cli.errors import CliError
from whisk.cli.flags import NAME_SORT
from whisk.cli.grammar import Command, check_args

COLLECTIONS = ("actions", "packages", "triggers", "rules")


async def list_(ctx: Context) -> None:
    check_args(ctx.args, 0, 0, "No arguments are required.")
    try:
        reply = await ctx.send(Call("GET", "namespaces"))
    except CliError as exc:
        raise exc.within("Unable to obtain the list of available namespaces") from None
    tables.print_namespaces(ctx.out, [str(n) for n in reply.body] if isinstance(reply.body, list) else [])


async def get(ctx: Context) -> None:
    """Every entity of the caller's namespace: packages, actions, triggers, rules (with their status)."""
    if ctx.args != ["/_"]:
        check_args(ctx.args, 0, 0, "No arguments are required.")
    namespace = names.DEFAULT_NAMESPACE
    found: dict[str, list[dict[str, Any]]] = {}
    for collection in COLLECTIONS:
        call = Call("GET", entity_path(namespace, collection), sorted_query(limit=0, skip=0))
        try:
            reply = await ctx.send(call)
        except CliError as exc:
            raise exc.within("Unable to obtain the list of entities for namespace 'default'") from None
        found[collection] = [r for r in reply.body if isinstance(r, dict)] if isinstance(reply.body, list) else []
    found["rules"] = await rules.with_status(ctx, namespace, found["rules"])
    out = ctx.out
    out.line(f"Entities in namespace: {out.bold(names.display_namespace(namespace))}")
    for collection in ("packages", "actions", "triggers", "rules"):
        tables.print_entities(out, collection, found[collection], ctx.flag("name-sort"))


GROUP = Command("namespace", "work with namespaces", children=(
    Command("list", "list available namespaces", (), list_),
    Command("get", "get triggers, actions, and rules in the registry for namespace", (NAME_SORT,), get),
))

LIST = Command("list", "list entities in the current namespace", (NAME_SORT,), get)
