"""`whisk action create|update|invoke|get|delete|list` (wsk's action.go)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from whisk.cli import artifacts, invocation, names, tables, web
from whisk.cli.client import Call, entity_path, sorted_query
from whisk.cli.context import Context
from whisk.cli.errors import NOT_ALLOWED, CliError, usage_error
from whisk.cli.flags import PARAMS, PARAMS_AND_ANNOTATIONS, paging, summary
from whisk.cli.grammar import BOOL, INT, STRING, STRINGS, Command, Flag, check_args
from whisk.cli.shapes import ACTION, field_names, field_value, render
from whisk.cli.wskprops import base_url

LIMIT_FLAGS = {"timeout": "timeout", "memory": "memory", "logsize": "logs", "concurrency": "concurrency"}


def _nested(error: CliError, context: str) -> CliError:
    return error.within(context, usage=True)


async def _get(ctx: Context, qn: names.QualifiedName, *, code: bool) -> dict[str, Any]:
    call = Call("GET", entity_path(qn.namespace, "actions", qn.path), (("code", "true" if code else "false"),))
    try:
        reply = await ctx.send(call)
    except CliError as exc:
        raise _nested(exc, f"Unable to get action '{qn.entity_name}'") from None
    return reply.body if isinstance(reply.body, dict) else {}


async def build_action(ctx: Context, *, update: bool) -> tuple[names.QualifiedName, dict[str, Any]]:
    """The PUT body of `action create|update` (`parseAction` + `augmentAction`)."""
    args = ctx.args
    qn = names.parse(args[0])
    body: dict[str, Any] = {"namespace": qn.namespace, "name": qn.entity_name}
    limits = {wire: ctx.flag(flag) for flag, wire in LIMIT_FLAGS.items() if ctx.given(flag)}
    params = ctx.param_array() if ctx.fragments.params else None
    annotations = ctx.annotation_array() if ctx.fragments.annotations else None
    kind, docker = ctx.flag("kind"), ctx.flag("docker")
    if kind and docker:
        raise CliError("Cannot specify both --kind and --docker at the same time.", NOT_ALLOWED)
    exec_: dict[str, Any] | None = None
    if ctx.flag("copy"):
        if len(args) < 2:
            raise artifacts.no_artifact()
        source = await _get(ctx, names.parse(args[1]), code=True)
        source_exec = found if isinstance(found := source.get("exec"), dict) else {}
        exec_ = {k: source_exec[k] for k in ("kind", "code", "image", "init", "main", "components")
                 if k in source_exec}
        params = (params or []) + list(source.get("parameters") or [])
        annotations = (annotations or []) + list(source.get("annotations") or [])
    elif ctx.flag("sequence"):
        if len(args) < 2:
            raise artifacts.no_artifact()
        exec_ = {"kind": "sequence", "components": [names.fully_qualified(c) for c in args[1].split(",")]}
    elif len(args) > 1 or docker:
        exec_ = await artifacts.build_exec(args[1] if len(args) > 1 else None, kind=kind, docker=docker,
                                           native=ctx.flag("native"), main=ctx.flag("main"))
    elif not update:
        raise artifacts.no_artifact()
    existing = None
    if update:
        try:
            existing = await _get(ctx, qn, code=False)
        except CliError as exc:
            if exc.http_status != 404:
                raise
    secured = web.apply(annotations, web=ctx.flag("web") if ctx.given("web") else None,
                        web_secure=ctx.flag("web-secure") if ctx.given("web-secure") else None, existing=existing)
    annotations = secured.annotations
    # As `wsk`: `--web-secure false` replaces any --del-annotation list.
    del_annotations = secured.del_annotations or (list(ctx.flag("del-annotation")) if update else [])
    if exec_ is not None:
        body["exec"] = exec_
    if annotations:
        body["annotations"] = annotations
    if del_annotations:
        body["delAnnotations"] = del_annotations
    if params:
        body["parameters"] = params
    if limits:
        body["limits"] = limits
    return qn, body


async def _put(ctx: Context, *, update: bool) -> None:
    hint = "An action name is required. A code artifact is optional." if update else \
        "An action name and code artifact are required."
    check_args(ctx.args, 1, 2, hint)
    try:
        qn, body = await build_action(ctx, update=update)
    except CliError as exc:
        raise CliError(f"Invalid argument(s). {exc.message}", exc.status, usage=True, shown=exc.shown,
                       http_status=exc.http_status) from None
    call = Call("PUT", entity_path(qn.namespace, "actions", qn.path),
                (("overwrite", "true" if update else "false"),), body)
    try:
        await ctx.send(call)
    except CliError as exc:
        raise _nested(exc, f"Unable to create action '{qn.entity_name}'") from None
    ctx.out.ok(f"{'updated' if update else 'created'} action {ctx.out.bold(qn.entity_name)}")


async def create(ctx: Context) -> None:
    await _put(ctx, update=False)


async def update(ctx: Context) -> None:
    await _put(ctx, update=True)


async def invoke(ctx: Context) -> None:
    check_args(ctx.args, 1, 1, "An action name is required.")
    qn = names.parse(ctx.args[0])
    params = ctx.params()
    result_only = ctx.flag("result")
    blocking = ctx.flag("blocking") or result_only
    outcome = await invocation.invoke(ctx, qn, params, blocking=blocking, result=result_only)
    invocation.report(ctx, qn, outcome, blocking=blocking, header=not result_only)


def action_url(props_apihost: str, apiversion: str, action: dict[str, Any], package: str) -> str:
    """`get --url`: the web URL of a web action, else its REST URL (segments query-escaped, `+` as %20)."""
    def esc(text: str) -> str:
        return quote(text, safe="")
    base = base_url(props_apihost)
    namespace = esc(str(action.get("namespace", "")).split("/")[0])
    name = esc(str(action.get("name", "")))
    if web.is_web(action.get("annotations")):
        return f"{base}/{apiversion}/web/{namespace}/{esc(package) or 'default'}/{name}"
    if package:
        return f"{base}/{apiversion}/namespaces/{namespace}/actions/{esc(package)}/{name}"
    return f"{base}/{apiversion}/namespaces/{namespace}/actions/{name}"


async def get(ctx: Context) -> None:
    check_args(ctx.args, 1, 2, "An action name is required.")
    field = None
    if not ctx.flag("url") and not ctx.flag("summary") and len(ctx.args) > 1:
        field = field_names(ACTION).get(ctx.args[1].lower())
        if field is None:
            raise usage_error(f"Invalid field filter '{ctx.args[1]}'.")
    qn = names.parse(ctx.args[0])
    saving = ctx.given("save") or ctx.given("save-as")
    action = await _get(ctx, qn, code=saving)
    out = ctx.out
    if ctx.flag("url"):
        out.ok(f"got action {out.bold(qn.entity)}")
        out.line(action_url(ctx.props.apihost, ctx.props.apiversion, action, qn.package))
    elif ctx.flag("summary"):
        for line in tables.summary(out, "action", action):
            out.line(line)
    elif saving:
        filename, content = artifacts.save_target(action, ctx.flag("save-as"))
        path = await artifacts.save(filename, content)
        out.ok(f"saved action code to {out.bold(path)}")
    elif field is not None:
        out.ok(f"got action {out.bold(qn.entity_name)}, displaying field {out.bold(ctx.args[1])}")
        out.json(field_value(action, field))
    else:
        out.ok(f"got action {out.bold(qn.entity_name)}")
        out.json(render(action, ACTION))


async def delete(ctx: Context) -> None:
    check_args(ctx.args, 1, 1, "An action name is required.")
    qn = names.parse(ctx.args[0])
    try:
        await ctx.send(Call("DELETE", entity_path(qn.namespace, "actions", qn.path)))
    except CliError as exc:
        raise _nested(exc, f"Unable to delete action '{qn.entity_name}'") from None
    ctx.out.ok(f"deleted action {ctx.out.bold(qn.entity_name)}")


async def list_(ctx: Context) -> None:
    check_args(ctx.args, 0, 1, "An optional namespace is the only valid argument.")
    qn = names.parse(ctx.args[0]) if ctx.args else names.QualifiedName(names.DEFAULT_NAMESPACE, "", "")
    collection = f"actions/{qn.path}/" if qn.entity_name else "actions"
    call = Call("GET", entity_path(qn.namespace, collection), sorted_query(limit=ctx.flag("limit"),
                                                                             skip=ctx.flag("skip")))
    try:
        reply = await ctx.send(call)
    except CliError as exc:
        raise _nested(exc, "Unable to obtain the list of actions for namespace "
                           f"'{names.display_namespace(qn.namespace)}'") from None
    rows = [r for r in reply.body if isinstance(r, dict)] if isinstance(reply.body, list) else []
    tables.print_entities(ctx.out, "actions", rows, ctx.flag("name-sort"))


_PUT_FLAGS = (
    Flag("native", "", BOOL, help="treat ACTION as native action (zip file provides a compatible executable to run)"),
    Flag("docker", "", STRING, help="use provided docker image (a path on DockerHub) to run the action"),
    Flag("copy", "", BOOL, help="treat ACTION as the name of an existing action"),
    Flag("sequence", "", BOOL, help="treat ACTION as comma separated sequence of actions to invoke"),
    Flag("kind", "", STRING, help="the `KIND` of the action runtime (example: swift:default, nodejs:default)"),
    Flag("main", "", STRING, help="the name of the action entry point (function or fully-qualified method name "
                                  "when applicable)"),
    Flag("timeout", "t", INT, 60000, "the timeout `LIMIT` in milliseconds after which the action is terminated"),
    Flag("memory", "m", INT, 256, "the maximum memory `LIMIT` in MB for the action"),
    Flag("logsize", "l", INT, 10, "the maximum log size `LIMIT` in MB for the action"),
    Flag("concurrency", "c", INT, 1, "the maximum intra-container concurrent activation `LIMIT` for the action"),
    Flag("web", "", STRING, help="treat ACTION as a web action, a raw HTTP web action, or as a standard action; "
                                 "yes | true = web action, raw = raw HTTP web action, no | false = standard action"),
    Flag("web-secure", "", STRING, help="secure the web action. where `SECRET` is true, false, or any string. Only "
                                        "valid when the ACTION is a web action"),
    *PARAMS_AND_ANNOTATIONS,
)

GROUP = Command("action", "work with actions", children=(
    Command("create ACTION_NAME ACTION", "create a new action", _PUT_FLAGS, create),
    Command("update ACTION_NAME [ACTION]", "update an existing action, or create an action if it does not exist",
            (*_PUT_FLAGS, Flag("del-annotation", "", STRINGS, help="the list of annotations to be deleted from "
                               "the action, e.g. --del-annotation key1 --del-annotation key2")), update),
    Command("invoke ACTION_NAME", "invoke action", (
        *PARAMS,
        Flag("blocking", "b", BOOL, help="blocking invoke"),
        Flag("result", "r", BOOL, help="blocking invoke; show only activation result (unless there is a failure)"),
    ), invoke),
    Command("get ACTION_NAME [FIELD_FILTER | --summary | --url]", "get action", (
        summary("action", '; parameters with prefix "*" are bound, "**" are bound and finalized'),
        Flag("url", "r", BOOL, help="get action url"),
        Flag("save-as", "", STRING, help="file to save action code to"),
        Flag("save", "", BOOL, help="save action code to file corresponding with action name"),
    ), get),
    Command("delete ACTION_NAME", "delete action", (), delete),
    Command("list [ NAMESPACE | PACKAGE_NAME ]", "list all actions in a namespace or actions contained in a package",
            paging("actions"), list_),
))
