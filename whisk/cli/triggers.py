"""`whisk trigger create|update|get|delete|fire|list` (wsk's trigger.go, feeds in feeds.py).

`-p` alone is the classic mode (with a feed, the parameters go to the feed); `-F`/`-T` without `-p` the
extended one (`-T` for the trigger, `-F` for the feed). Mixing them is refused with exit 149.
"""

from __future__ import annotations

from typing import Any

from whisk.cli import feeds, names, tables
from whisk.cli.arguments import key_values, merge
from whisk.cli.client import Call, entity_path, sorted_query
from whisk.cli.context import Context
from whisk.cli.errors import NOT_ALLOWED, CliError
from whisk.cli.flags import ANNOTATION, ANNOTATION_FILE, FEED_PARAM, PARAMS, TRIGGER_PARAM, paging, summary
from whisk.cli.grammar import STRING, Command, Flag, check_args
from whisk.cli.shapes import TRIGGER, annotation, field_names, field_value, render

HINT = "A trigger name is required."


def _classic(ctx: Context) -> bool:
    f = ctx.fragments
    return bool(f.params) or not (f.feed_params or f.trigger_params)


def _mixed_error() -> CliError:
    return CliError("Incorrect usage. Cannot combine --feed-param or --trigger-param flag with neither --param nor "
                    "--param-file flag", NOT_ALLOWED)


def _call(method: str, qn: names.QualifiedName, *, overwrite: bool | None = None, body: Any = None) -> Call:
    query = (("overwrite", "true" if overwrite else "false"),) if overwrite is not None else ()
    return Call(method, entity_path(qn.namespace, "triggers", qn.path), query, body)


def trigger_body(qn: names.QualifiedName, annotations: dict[str, Any], params: dict[str, Any] | None) -> dict:
    body: dict[str, Any] = {"name": qn.entity_name}
    if annotations:
        body["annotations"] = key_values(annotations)
    if params:
        body["parameters"] = key_values(params)
    return body


async def _fetch(ctx: Context, qn: names.QualifiedName) -> dict[str, Any]:
    try:
        reply = await ctx.send(_call("GET", qn))
    except CliError as exc:
        raise exc.within(f"Unable to get trigger '{qn.entity_name}'") from None
    return reply.body if isinstance(reply.body, dict) else {}


def _feed_of(trigger: dict[str, Any]) -> str:
    feed = annotation(trigger, "feed")
    return feed if isinstance(feed, str) else ""


async def create(ctx: Context) -> None:
    check_args(ctx.args, 1, 1, HINT)
    classic = _classic(ctx)
    qn = names.parse(ctx.args[0])
    frags = ctx.fragments
    if classic and (frags.feed_params or frags.trigger_params):
        raise _mixed_error()
    feed = ctx.inv.values.get("feed", "")            # absent when `update` falls back to creating
    feed_qn = names.parse(feed) if feed else None
    annotations = ctx.annotations()
    if feed_qn is not None:
        annotations["feed"] = feed_qn.full           # the generated annotation wins over a user's -a feed
    if classic:
        feed_params = ctx.params()
        trigger_params = None if feed_qn is not None else feed_params
    else:
        if feed_qn is None and frags.feed_params:
            raise CliError("Incorrect usage. Trigger without a feed cannot have feed parameters", NOT_ALLOWED)
        trigger_params = merge(frags.trigger_params)
        feed_params = merge(frags.feed_params)
    try:
        await ctx.send(_call("PUT", qn, overwrite=False, body=trigger_body(qn, annotations, trigger_params)))
    except CliError as exc:
        raise exc.within(f"Unable to create trigger '{qn.entity_name}'") from None
    if feed_qn is not None:
        failed = await feeds.create(ctx, qn, feed_qn, feed_params)
        if failed is not None:
            try:                                     # undo: the normal delete path, its errors ignored
                await _delete(ctx, qn)
            except CliError:
                pass
            raise failed
    ctx.out.ok(f"created trigger {ctx.out.bold(qn.entity_name)}")


async def update(ctx: Context) -> None:
    check_args(ctx.args, 1, 1, HINT)
    qn = names.parse(ctx.args[0])
    params, annotations = ctx.params(), ctx.annotations()
    try:
        reply = await ctx.send(_call("GET", qn))
    except CliError as exc:
        if exc.http_status == 404:
            await create(ctx)
            return
        raise exc.within(f"Unable to get trigger '{qn.entity_name}'") from None
    existing = reply.body if isinstance(reply.body, dict) else {}
    feed = _feed_of(existing)
    frags = ctx.fragments
    if not _classic(ctx):
        await _update_extended(ctx, qn, annotations, feed)
    elif frags.feed_params or frags.trigger_params:
        raise _mixed_error()
    elif feed:
        try:
            await feeds.configure(ctx, qn, feed, params, "UPDATE")
        except CliError as exc:
            raise exc.within(f"Unable to create trigger '{qn.entity_name}'") from None
    else:
        await _put_update(ctx, qn, annotations, params)
    ctx.out.ok(f"updated trigger {ctx.out.bold(qn.entity_name)}")


async def _put_update(ctx: Context, qn: names.QualifiedName, annotations: dict, params: dict) -> None:
    try:
        await ctx.send(_call("PUT", qn, overwrite=True, body=trigger_body(qn, annotations, params)))
    except CliError as exc:
        raise exc.within(f"Unable to update trigger '{qn.entity_name}'") from None


async def _update_extended(ctx: Context, qn: names.QualifiedName, annotations: dict, feed: str) -> None:
    frags = ctx.fragments
    await _put_update(ctx, qn, annotations, merge(frags.trigger_params))
    if not feed and frags.feed_params:
        raise CliError(f"Unable to configure feed '{qn.entity_name}': this trigger does not contain a feed")
    if feed and frags.feed_params:
        try:
            await feeds.configure(ctx, qn, feed, merge(frags.feed_params), "UPDATE")
        except CliError as exc:
            raise exc.within(f"Unable to create trigger '{qn.entity_name}'") from None


async def get(ctx: Context) -> None:
    check_args(ctx.args, 1, 2, HINT)
    field = None
    if len(ctx.args) > 1:
        field = field_names(TRIGGER).get(ctx.args[1].lower())
        if field is None:
            raise CliError(f"Invalid field filter '{ctx.args[1]}'.")
    qn = names.parse(ctx.args[0])
    trigger = await _fetch(ctx, qn)
    out = ctx.out
    feed = _feed_of(trigger)
    if feed:                                         # a feed trigger shows its feed's READ activation instead
        try:
            await feeds.configure(ctx, qn, feed, ctx.params(), "READ")
        except CliError:
            pass                                     # as `wsk`: feed errors are ignored here
    elif ctx.flag("summary"):
        for line in tables.summary(out, "trigger", trigger):
            out.line(line)
    elif field is not None:
        out.ok(f"got trigger {out.bold(qn.entity_name)}, displaying field {out.bold(ctx.args[1])}")
        out.json(field_value(trigger, field))
    else:
        out.ok(f"got trigger {out.bold(qn.entity_name)}")
        out.json(render(trigger, TRIGGER))


async def _delete(ctx: Context, qn: names.QualifiedName) -> None:
    trigger = await _fetch(ctx, qn)
    feed = _feed_of(trigger)
    if feed:
        try:
            await feeds.configure(ctx, qn, feed, ctx.params(), "DELETE")
        except CliError:
            pass                                     # as `wsk`: the trigger is deleted even if the feed fails
    try:
        await ctx.send(_call("DELETE", qn))
    except CliError as exc:
        raise exc.within(f"Unable to delete trigger '{qn.entity_name}'") from None
    ctx.out.ok(f"deleted trigger {ctx.out.bold(qn.entity_name)}")


async def delete(ctx: Context) -> None:
    check_args(ctx.args, 1, 1, HINT)
    await _delete(ctx, names.parse(ctx.args[0]))


async def fire(ctx: Context) -> None:
    check_args(ctx.args, 1, 1, HINT)
    qn = names.parse(ctx.args[0])
    try:
        reply = await ctx.send(Call("POST", entity_path(qn.namespace, "triggers", qn.path), (), ctx.params()))
    except CliError as exc:
        raise exc.within(f"Unable to fire trigger '{qn.entity_name}'") from None
    activation_id = reply.body.get("activationId", "") if isinstance(reply.body, dict) else ""
    out = ctx.out
    out.ok(f"triggered /{out.bold(qn.namespace)}/{out.bold(qn.entity_name)} with id {out.bold(activation_id)}")


async def list_(ctx: Context) -> None:
    check_args(ctx.args, 0, 1, "An optional namespace is the only valid argument.")
    namespace = names.namespace_only(ctx.args[0]) if ctx.args else names.DEFAULT_NAMESPACE
    call = Call("GET", entity_path(namespace, "triggers"), sorted_query(limit=ctx.flag("limit"),
                                                                          skip=ctx.flag("skip")))
    try:
        reply = await ctx.send(call)
    except CliError as exc:
        raise exc.within("Unable to obtain the list of triggers for namespace "
                         f"'{names.display_namespace(namespace)}'") from None
    rows = [r for r in reply.body if isinstance(r, dict)] if isinstance(reply.body, list) else []
    tables.print_entities(ctx.out, "triggers", rows, ctx.flag("name-sort"))


_PUT_FLAGS = (ANNOTATION, ANNOTATION_FILE, *PARAMS, FEED_PARAM, TRIGGER_PARAM)

GROUP = Command("trigger", "work with triggers", children=(
    Command("fire TRIGGER_NAME [PAYLOAD]", "fire trigger event", PARAMS, fire),
    Command("create TRIGGER_NAME", "create new trigger",
            (*_PUT_FLAGS, Flag("feed", "f", STRING, help="trigger feed `ACTION_NAME`")), create),
    Command("update TRIGGER_NAME", "update an existing trigger, or create a trigger if it does not exist",
            _PUT_FLAGS, update),
    Command("get TRIGGER_NAME [FIELD_FILTER]", "get trigger",
            (summary("trigger", '; parameters with prefix "*" are bound'),), get),
    Command("delete TRIGGER_NAME", "delete trigger", (), delete),
    Command("list [NAMESPACE]", "list all triggers", paging("triggers"), list_),
))
