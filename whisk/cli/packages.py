"""`whisk package create|update|bind|get|delete|list|refresh` (wsk's package.go)."""

from __future__ import annotations

from typing import Any

from whisk.cli import names, tables
from whisk.cli.client import Call, entity_path, sorted_query
from whisk.cli.context import Context
from whisk.cli.errors import NETWORK, CliError
from whisk.cli.flags import PARAMS_AND_ANNOTATIONS, paging, summary
from whisk.cli.grammar import BOOL, STRING, Command, Flag, check_args
from whisk.cli.shapes import PACKAGE, field_names, field_value, render

HINT = "A package name is required."


def _call(method: str, qn: names.QualifiedName, *, overwrite: bool | None = None, body: Any = None) -> Call:
    query = (("overwrite", "true" if overwrite else "false"),) if overwrite is not None else ()
    return Call(method, entity_path(qn.namespace, "packages", qn.path), query, body)


def shared(text: str) -> bool | None:
    """--shared yes|no (any case); None when not given."""
    if text.lower() == "yes":
        return True
    if text.lower() == "no":
        return False
    if not text:
        return None
    raise CliError(f"Cannot use value '{text}' for shared.", usage=True)


def package_body(ctx: Context, qn: names.QualifiedName) -> dict[str, Any]:
    body: dict[str, Any] = {"namespace": qn.namespace, "name": qn.entity_name}
    publish = shared(ctx.flag("shared"))
    if publish is not None:
        body["publish"] = publish
    if annotations := ctx.annotation_array():
        body["annotations"] = annotations
    if params := ctx.param_array():
        body["parameters"] = params
    return body


async def _put(ctx: Context, *, update: bool) -> None:
    check_args(ctx.args, 1, 1, HINT)
    qn = names.parse(ctx.args[0])
    body = package_body(ctx, qn)
    try:
        await ctx.send(_call("PUT", qn, overwrite=update, body=body))
    except CliError as exc:
        context = "Package update failed" if update else f"Unable to create package '{qn.entity_name}'"
        raise exc.within(context) from None
    ctx.out.ok(f"{'updated' if update else 'created'} package {ctx.out.bold(qn.entity_name)}")


async def create(ctx: Context) -> None:
    await _put(ctx, update=False)


async def update(ctx: Context) -> None:
    await _put(ctx, update=True)


def bind_body(ctx: Context, source: names.QualifiedName) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if annotations := ctx.annotation_array():
        body["annotations"] = annotations
    if params := ctx.param_array():
        body["parameters"] = params
    body["binding"] = {"namespace": source.namespace, "name": source.entity_name}
    return body


async def bind(ctx: Context) -> None:
    check_args(ctx.args, 2, 2, "A package name and binding name are required.")
    source = names.parse(ctx.args[0])
    binding = names.parse(ctx.args[1])
    try:
        await ctx.send(_call("PUT", binding, overwrite=ctx.flag("overwrite"), body=bind_body(ctx, source)))
    except CliError as exc:
        raise exc.within("Binding creation failed") from None
    ctx.out.ok(f"created binding {ctx.out.bold(ctx.args[1])}")


async def get(ctx: Context) -> None:
    check_args(ctx.args, 1, 2, HINT)
    field = None
    if len(ctx.args) > 1:
        field = field_names(PACKAGE).get(ctx.args[1].lower())
        if field is None:
            raise CliError(f"Invalid field filter '{ctx.args[1]}'.")
    qn = names.parse(ctx.args[0])
    try:
        reply = await ctx.send(_call("GET", qn))
    except CliError as exc:
        raise exc.within(f"Unable to get package '{qn.entity_name}'") from None
    package = reply.body if isinstance(reply.body, dict) else {}
    out = ctx.out
    if ctx.flag("summary"):
        for line in tables.summary(out, "package", package):
            out.line(line)
    elif field is not None:
        out.ok(f"got package {out.bold(qn.entity_name)}, displaying field {out.bold(ctx.args[1])}")
        out.json(field_value(package, field))
    else:
        out.ok(f"got package {out.bold(qn.entity_name)}")
        out.json(render(package, PACKAGE))


async def delete(ctx: Context) -> None:
    check_args(ctx.args, 1, 1, HINT)
    qn = names.parse(ctx.args[0])
    try:
        await ctx.send(_call("DELETE", qn))
    except CliError as exc:
        raise exc.within(f"Unable to delete package '{qn.entity_name}'") from None
    ctx.out.ok(f"deleted package {ctx.out.bold(qn.entity_name)}")


async def list_(ctx: Context) -> None:
    check_args(ctx.args, 0, 1, "An optional namespace is the only valid argument.")
    namespace = names.namespace_only(ctx.args[0]) if ctx.args else names.DEFAULT_NAMESPACE
    call = Call("GET", entity_path(namespace, "packages"), sorted_query(limit=ctx.flag("limit"),
                                                                          skip=ctx.flag("skip")))
    try:
        reply = await ctx.send(call)
    except CliError as exc:
        raise exc.within("Unable to obtain the list of packages for namespace "
                         f"'{names.display_namespace(namespace)}'") from None
    rows = [r for r in reply.body if isinstance(r, dict)] if isinstance(reply.body, list) else []
    tables.print_entities(ctx.out, "packages", rows, ctx.flag("name-sort"))


async def refresh(ctx: Context) -> None:
    """wsk's legacy refresh of a namespace's bindings to the system packages: OpenWhisk's current controller has no
    such route, so against it (and whisk) this ends in the error of the POST, as `wsk` reports it."""
    check_args(ctx.args, 0, 1, "An optional namespace is the only valid argument.")
    namespace = names.namespace_only(ctx.args[0]) if ctx.args else names.DEFAULT_NAMESPACE
    try:
        reply = await ctx.send(Call("POST", entity_path(namespace, "packages", "refresh")))
    except CliError as exc:
        raise exc.within(f"Package refresh for namespace '{namespace}' failed") from None
    if reply.status != 200:                 # another success status (an error status raised above)
        raise CliError(f"Package refresh for namespace '{namespace}' failed due to unexpected HTTP status code: "
                       f"{reply.status}", NETWORK)
    updates = reply.body if isinstance(reply.body, dict) else {}
    ctx.out.line(f"'{namespace}' refreshed successfully")
    for title, key in (("created bindings:", "added"), ("updated bindings:", "updated"),
                       ("deleted bindings:", "deleted")):
        ctx.out.line(title)
        for name in updates.get(key) or ():
            ctx.out.line(str(name))


_SHARED = Flag("shared", "", STRING, help="package visibility `SCOPE`; yes = shared, no = private")

GROUP = Command("package", "work with packages", children=(
    Command("bind PACKAGE_NAME BOUND_PACKAGE_NAME", "bind parameters to a package",
            (*PARAMS_AND_ANNOTATIONS, Flag("overwrite", "o", BOOL, help="overwrite bind")), bind),
    Command("create PACKAGE_NAME", "create a new package", (*PARAMS_AND_ANNOTATIONS, _SHARED), create),
    Command("update PACKAGE_NAME", "update an existing package, or create a package if it does not exist",
            (*PARAMS_AND_ANNOTATIONS, _SHARED), update),
    Command("get PACKAGE_NAME [FIELD_FILTER]", "get package",
            (summary("package", '; parameters with prefix "*" are bound'),), get),
    Command("delete PACKAGE_NAME", "delete package", (), delete),
    Command("list [NAMESPACE]", "list all packages", paging("packages"), list_),
    Command("refresh [NAMESPACE]", "refresh package bindings", (), refresh),
))
