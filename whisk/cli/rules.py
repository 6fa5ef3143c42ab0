"""`whisk rule create|update|enable|disable|status|get|delete|list` (wsk's rule.go)."""

from __future__ import annotations

from typing import Any

from whisk.cli import names, tables
from whisk.cli.client import Call, entity_path, sorted_query
from whisk.cli.context import Context
from whisk.cli.errors import CliError
from whisk.cli.flags import paging, summary
from whisk.cli.grammar import BOOL, Command, Flag, check_args
from whisk.cli.shapes import RULE, field_names, field_value, render

HINT = "A rule name is required."


def _call(method: str, namespace: str, escaped: str, *, overwrite: bool | None = None, body: Any = None) -> Call:
    query = (("overwrite", "true" if overwrite else "false"),) if overwrite is not None else ()
    return Call(method, entity_path(namespace, "rules", escaped), query, body)


def state_call(qn: names.QualifiedName, status: str) -> Call:
    return _call("POST", qn.namespace, qn.path, body={"status": status, "trigger": None, "action": None})


def rule_body(qn: names.QualifiedName, trigger: str, action: str) -> dict[str, Any]:
    return {"name": qn.entity_name, "status": "", "trigger": names.fully_qualified(trigger),
            "action": names.fully_qualified(action)}


async def _put(ctx: Context, *, update: bool) -> None:
    check_args(ctx.args, 3, 3, "A rule, trigger and action name are required.")
    qn = names.parse(ctx.args[0])
    body = rule_body(qn, ctx.args[1], ctx.args[2])
    try:
        await ctx.send(_call("PUT", qn.namespace, qn.path, overwrite=update, body=body))
    except CliError as exc:
        raise exc.within(f"Unable to {'update' if update else 'create'} rule '{qn.entity_name}'") from None
    ctx.out.ok(f"{'updated' if update else 'created'} rule {ctx.out.bold(qn.entity_name)}")


async def create(ctx: Context) -> None:
    await _put(ctx, update=False)


async def update(ctx: Context) -> None:
    await _put(ctx, update=True)


async def _set_state(ctx: Context, qn: names.QualifiedName, status: str, verb: str) -> None:
    try:
        await ctx.send(state_call(qn, status))
    except CliError as exc:
        raise exc.within(f"Unable to {verb} rule '{qn.entity_name}'") from None


async def enable(ctx: Context) -> None:
    check_args(ctx.args, 1, 1, HINT)
    qn = names.parse(ctx.args[0])
    await _set_state(ctx, qn, "active", "enable")
    ctx.out.ok(f"enabled rule {ctx.out.bold(qn.entity_name)}")


async def disable(ctx: Context) -> None:
    check_args(ctx.args, 1, 1, HINT)
    qn = names.parse(ctx.args[0])
    await _set_state(ctx, qn, "inactive", "disable")
    ctx.out.ok(f"disabled rule {ctx.out.bold(qn.entity_name)}")


async def _fetch(ctx: Context, namespace: str, escaped: str, context: str) -> dict[str, Any]:
    try:
        reply = await ctx.send(_call("GET", namespace, escaped))
    except CliError as exc:
        raise exc.within(context, usage=True) from None
    return reply.body if isinstance(reply.body, dict) else {}


async def status(ctx: Context) -> None:
    check_args(ctx.args, 1, 1, HINT)
    qn = names.parse(ctx.args[0])
    rule = await _fetch(ctx, qn.namespace, qn.path, f"Unable to get status of rule '{qn.entity_name}'")
    out = ctx.out
    out.ok(f"rule {out.bold(qn.entity_name)} is {out.bold(rule.get('status', ''))}")


async def get(ctx: Context) -> None:
    check_args(ctx.args, 1, 2, HINT)
    field = None
    if len(ctx.args) > 1:
        field = field_names(RULE).get(ctx.args[1].lower())
        if field is None:
            raise CliError(f"Invalid field filter '{ctx.args[1]}'.")
    qn = names.parse(ctx.args[0])
    rule = await _fetch(ctx, qn.namespace, qn.path, f"Unable to get rule '{qn.entity_name}'")
    out = ctx.out
    if ctx.flag("summary"):
        for line in tables.summary(out, "rule", rule):
            out.line(line)
    elif field is not None:
        out.ok(f"got rule {out.bold(qn.entity_name)}, displaying field {ctx.args[1]}")
        out.json(field_value(rule, field))
    else:
        out.ok(f"got rule {out.bold(qn.entity_name)}")
        out.json(render(rule, RULE))


async def delete(ctx: Context) -> None:
    check_args(ctx.args, 1, 1, HINT)
    qn = names.parse(ctx.args[0])
    if ctx.flag("disable"):
        await _set_state(ctx, qn, "inactive", "disable")
    try:
        await ctx.send(_call("DELETE", qn.namespace, qn.path))
    except CliError as exc:
        raise exc.within(f"Unable to delete rule '{qn.entity_name}'") from None
    ctx.out.ok(f"deleted rule {ctx.out.bold(qn.entity_name)}")


async def with_status(ctx: Context, namespace: str, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Listed rules carry no status: one GET per rule fills it in (as `wsk` does)."""
    filled = []
    for rule in rules:
        name = str(rule.get("name", ""))
        one = await _fetch(ctx, namespace, names.url_segment(name), f"Unable to get status of rule '{name}'")
        filled.append({**rule, "status": one.get("status", "")})
    return filled


async def list_(ctx: Context) -> None:
    check_args(ctx.args, 0, 1, "An optional namespace is the only valid argument.")
    namespace = names.namespace_only(ctx.args[0]) if ctx.args else names.DEFAULT_NAMESPACE
    call = Call("GET", entity_path(namespace, "rules"), sorted_query(limit=ctx.flag("limit"), skip=ctx.flag("skip")))
    try:
        reply = await ctx.send(call)
    except CliError as exc:
        raise exc.within("Unable to obtain the list of rules for namespace "
                         f"'{names.display_namespace(namespace)}'") from None
    rows = [r for r in reply.body if isinstance(r, dict)] if isinstance(reply.body, list) else []
    tables.print_entities(ctx.out, "rules", await with_status(ctx, namespace, rows), ctx.flag("name-sort"))


GROUP = Command("rule", "work with rules", children=(
    Command("create RULE_NAME TRIGGER_NAME ACTION_NAME", "create new rule", (), create),
    Command("enable RULE_NAME", "enable rule", (), enable),
    Command("disable RULE_NAME", "disable rule", (), disable),
    Command("status RULE_NAME", "get rule status", (), status),
    Command("update RULE_NAME TRIGGER_NAME ACTION_NAME", "update an existing rule, or create a rule if it does not "
            "exist", (), update),
    Command("get RULE_NAME", "get rule", (summary("rule"),), get),
    Command("delete RULE_NAME", "delete rule", (Flag("disable", "", BOOL, help="automatically disable rule before "
                                                                            "deleting it"),), delete),
    Command("list [NAMESPACE]", "list all rules", paging("rules"), list_),
))
