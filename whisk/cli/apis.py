"""`whisk api create|get|delete|list` (wsk's api.go; server: docs/openwhisk.md §1.13): calls to the
`whisk.system/apimgmt` web actions createApi/getApi/deleteApi, with the caller's credentials.

As `wsk`, every call carries `spaceguid` (the uuid half of AUTH) and `accesstoken` (APIGW_ACCESS_TOKEN, else
`DUMMY TOKEN`), both read from the properties file itself, not from --auth or the environment. The server answers
a refusal with 502 `{"error": ...}` and no `code`, which the Go client reads as the message itself.
"""

from __future__ import annotations

import json
import re
from typing import Any

from whisk.cli import names, wskprops
from whisk.cli.arguments import read_file
from whisk.cli.client import Call, entity_path, error_from, sorted_query
from whisk.cli.context import Context
from whisk.cli.errors import APPLICATION_ERROR, GENERAL, CliError
from whisk.cli.grammar import BOOL, INT, STRING, Command, Flag, check_args
from whisk.cli.output import dumps
from whisk.cli.shapes import annotation
from whisk.cli.swagger import action_of, check_swagger, list_rows, operations, print_list, to_yaml, typed_swagger, \
    typed_value

MANAGE = "web/whisk.system/apimgmt/"
VERBS = ("GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS")
_SEGMENT_PARAM = re.compile(r"^/\{([^/]+)\}/$")       # a path parameter fills a whole segment
CREATE_HINT = ("Specify a swagger file or specify an API base path with an API path, an API verb, and an action "
               "name.")
NAME_HINT = "An API base path or API name is required."


# --- request pieces -----------------------------------------------------------------------------------------------

def user_query(ctx: Context) -> dict[str, str]:
    """`spaceguid` and `accesstoken`, from the properties file (`wsk`'s getUserContextId / getAccessToken)."""
    props = wskprops.read(ctx.props.path)
    auth = props.get("AUTH", "")
    if not auth:
        raise CliError("Authorization key is not configured (--auth is required)")
    return {"spaceguid": auth.split(":")[0], "accesstoken": props.get("APIGW_ACCESS_TOKEN") or "DUMMY TOKEN"}


def _usage(message: str) -> CliError:
    return CliError(message, GENERAL, usage=True)


def check_path(path: str) -> None:
    if not path.startswith("/"):
        raise _usage(f"'{path}' must begin with '/'.")


def check_verb(verb: str) -> str:
    if verb.upper() not in VERBS:
        raise _usage(f"'{verb}' is not a valid API verb.  Valid values are: [{' '.join(VERBS)}]")
    return verb.upper()


def path_parameters(path: str) -> list[str]:
    """Distinct `{x}` segments of a path, in order."""
    found: list[str] = []
    for segment in path.split("/"):
        match = _SEGMENT_PARAM.match(f"/{segment}/")
        if match and match.group(1) not in found:
            found.append(match.group(1))
    return found


def backend_url(apihost: str, qn: names.QualifiedName) -> str:
    url = f"{apihost}/api/v1/web/{qn.namespace}/{qn.package or 'default'}/{qn.entity}.http"
    return url if url.startswith("http") else "https://" + url


def build_apidoc(ctx: Context) -> tuple[dict[str, Any], names.QualifiedName]:
    """Form A of the createApi body from `[BASE] PATH VERB ACTION` (`wsk`'s parseApi), and the action's name."""
    args = list(ctx.args)
    base, is_name = "/", False
    if len(args) > 3:
        is_name = not args[0].startswith("/")
        if path_parameters(args[0]):
            raise _usage(f"The base path '{args[0]}' cannot have parameters. Only the relative path supports path "
                         "parameters.")
        base, args = args[0], args[1:]
    check_path(args[0])
    relpath = args[0]
    params = path_parameters(relpath)
    if params and ctx.flag("response-type") != "http":
        raise _usage("A response type of 'http' is required when using path parameters.")
    verb = check_verb(args[1])
    try:
        qn = names.parse(args[2])
    except CliError as exc:
        raise exc.within(f"'{args[2]}' is not a valid action name") from None
    if not qn.entity:
        raise _usage(f"'{args[2]}' is not a valid action name.")
    api_name = ctx.flag("apiname")
    if api_name and is_name:
        raise _usage("An API name can only be specified once.")
    doc: dict[str, Any] = {"namespace": names.DEFAULT_NAMESPACE}
    if api_name:
        doc["apiName"] = api_name
    doc |= {"gatewayBasePath": base, "gatewayPath": relpath, "gatewayMethod": verb}
    if not is_name:
        doc["id"] = f"API:{names.DEFAULT_NAMESPACE}:{base}"
    doc["action"] = {"name": qn.entity_name, "namespace": qn.namespace, "backendMethod": verb,
                     "backendUrl": backend_url(ctx.props.apihost, qn), "authkey": ctx.props.auth}
    if params:
        doc["pathParameters"] = [{"name": p, "in": "path", "description": f"Default description for '{p}'",
                                  "required": True, "type": "string"} for p in params]
    return doc, qn


def read_swagger(path: str) -> str:
    """The `--config-file` document as JSON text (YAML converted), checked as `wsk`'s parseSwaggerApi does."""
    try:
        text = read_file(path)
    except CliError as exc:                     # a missing file keeps ReadFile's exit 2
        raise exc.within(f"Error reading swagger file '{path}'", usage=True) from None
    if path.endswith("yaml") or path.endswith("yml"):
        import yaml                                   # only this command needs it
        try:
            text = json.dumps(yaml.safe_load(text), separators=(",", ":"), ensure_ascii=False, default=str)
        except yaml.YAMLError as exc:
            raise CliError(f"Unable to parse YAML configuration file: {exc}") from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise _usage(f"Error parsing swagger file '{path}': {exc}") from None
    if not isinstance(doc, dict):
        raise _usage(f"Error parsing swagger file '{path}': the document is not a JSON object")
    info, paths = doc.get("info"), doc.get("paths")
    if not doc.get("basePath") or not doc.get("swagger") or not isinstance(info, dict) or paths is None:
        raise _usage("Swagger file is invalid (missing basePath, info, paths, or swagger fields)")
    if not str(doc["basePath"]).startswith("/"):
        raise _usage("Swagger file basePath must start with a leading slash (/)")
    return text


async def _manage(ctx: Context, method: str, op: str, query: dict[str, Any], body: Any = None) -> Any:
    """One management call; a 502 `{"error"}` without a `code` becomes that message (exit 246 unless wrapped)."""
    reply = await ctx.send(Call(method, f"{MANAGE}{op}.http", sorted_query(**query), body), check=False)
    if not 200 <= reply.status <= 299:
        body = reply.body
        if reply.status == 502 and isinstance(body, dict) and "error" in body and body.get("code") is None:
            error = body["error"]
            raise CliError(error if isinstance(error, str) else json.dumps(error), APPLICATION_ERROR,
                           http_status=502)
        raise error_from(reply.status, reply.text)
    return reply.body


def _general(exc: CliError, context: str) -> CliError:
    """`wsk` wraps these with MakeWskError(GENERAL): exit 1 whatever the inner status."""
    return CliError(f"{context}: {exc.message}", GENERAL, http_status=exc.http_status)


# --- commands -----------------------------------------------------------------------------------------------------

async def _web_action(ctx: Context, qn: names.QualifiedName) -> dict[str, Any]:
    """The action, which must be a web action (`wsk`'s isWebAction: a GET without code first)."""
    full = f"/{qn.namespace}/{qn.entity_name}"
    call = Call("GET", entity_path(qn.namespace, "actions", qn.path), (("code", "false"),))
    try:
        reply = await ctx.send(call)
    except CliError as exc:
        raise CliError(f"Unable to get action '{full}': {exc.message}", GENERAL, usage=True) from None
    action = reply.body if isinstance(reply.body, dict) else {}
    if annotation(action, "web-export") is not True:
        raise _usage(f"Action '{full}' is not a web action. Issue 'wsk action update \"{full}\" --web true' to "
                     "convert the action to a web action.")
    return action


async def create(ctx: Context) -> None:
    config_file = ctx.flag("config-file")
    if not ctx.args and not config_file:
        raise _usage(f"Invalid argument(s). {CREATE_HINT}")
    doc: dict[str, Any]
    if not ctx.args:
        try:
            doc = {"namespace": names.DEFAULT_NAMESPACE, "swagger": read_swagger(config_file)}
        except CliError as exc:
            raise exc.within("Unable to parse swagger file") from None
        qn = None
    else:
        check_args(ctx.args, 3, 4, CREATE_HINT)
        try:
            doc, qn = build_apidoc(ctx)
        except CliError as exc:
            raise exc.within("Unable to parse api command arguments") from None
        secret = annotation(await _web_action(ctx, qn), "require-whisk-auth")
        if secret is not None:
            doc["action"]["secureKey"] = secret
    query = {**user_query(ctx), "responsetype": ctx.flag("response-type")}
    try:
        value = await _manage(ctx, "POST", "createApi", query, {"apidoc": doc})
        swagger = check_swagger(value.get("apidoc") if isinstance(value, dict) else None)
    except CliError as exc:
        raise _general(exc, "Unable to create API") from None
    out, url = ctx.out, str(value.get("gwApiUrl", "")).removesuffix("/")
    if qn is not None:
        out.ok(f"created API {doc['gatewayBasePath'].removesuffix('/')}{doc['gatewayPath']} {doc['gatewayMethod']} "
               f"for action {out.bold('/' + qn.namespace + '/' + qn.entity_name)}")
        out.line(url + doc["gatewayPath"])
        return
    base = str(swagger.get("basePath", "")).removesuffix("/")
    for path, verb, op in operations(swagger):
        action = action_of(op)
        out.ok(f"created API {base}{path} {verb}" + (f" for action {out.bold(action)}" if action else ""))
        out.line(url + path)


async def get(ctx: Context) -> None:
    check_args(ctx.args, 1, 1, NAME_HINT)
    fmt = ctx.flag("format")
    if ctx.given("format") and fmt.lower() not in ("json", "yaml"):
        raise CliError(f"Invalid format type: {fmt}")
    query = {**user_query(ctx), "basepath": ctx.args[0]}
    try:
        reply = await _manage(ctx, "GET", "getApi", query)
    except CliError as exc:
        raise _general(exc, f"Unable to get API '{ctx.args[0]}'") from None
    apis = reply.get("apis") if isinstance(reply, dict) else None
    value = apis[0].get("value") if isinstance(apis, list) and apis and isinstance(apis[0], dict) else None
    shown = None
    if isinstance(value, dict):
        shown = typed_value(value) if ctx.flag("full") else \
            typed_swagger(value["apidoc"]) if isinstance(value.get("apidoc"), dict) else None
    if shown is None:
        raise CliError(f"API does not exist for basepath {ctx.args[0]}")
    if ctx.given("format") and fmt.lower() == "yaml":
        ctx.out.write(to_yaml(json.loads(dumps(shown))) + "\n")
    else:
        ctx.out.json(shown)


async def delete(ctx: Context) -> None:
    check_args(ctx.args, 1, 3, f"{NAME_HINT}  An optional API relative path and operation may also be provided.")
    query: dict[str, Any] = {**user_query(ctx), "basepath": ctx.args[0]}
    if len(ctx.args) > 1:
        check_path(ctx.args[1])
        query["relpath"] = ctx.args[1]
    if len(ctx.args) > 2:
        query["operation"] = check_verb(ctx.args[2])
    try:
        await _manage(ctx, "DELETE", "deleteApi", query)
    except CliError as exc:
        raise _general(exc, "Unable to delete API") from None
    base = ctx.args[0]
    if len(ctx.args) == 1:
        ctx.out.ok(f"deleted API {base}")
    elif len(ctx.args) == 2:
        ctx.out.ok(f"deleted {query['relpath']} from {base}")
    else:
        ctx.out.ok(f"deleted {query['relpath']} {query['operation']} from {base}")


async def list_(ctx: Context) -> None:
    check_args(ctx.args, 0, 3, "Optional parameters are: API base path (or API name), API relative path and "
                               "operation.")
    relpath = verb = ""
    if not ctx.args:
        query: dict[str, Any] = {**user_query(ctx), "limit": ctx.flag("limit"), "skip": ctx.flag("skip")}
    else:
        query = {**user_query(ctx), "basepath": ctx.args[0]}
        if len(ctx.args) > 1:
            check_path(ctx.args[1])
            query["relpath"] = relpath = ctx.args[1]
        if len(ctx.args) > 2:
            query["operation"] = verb = check_verb(ctx.args[2])
    try:
        reply = await _manage(ctx, "GET", "getApi", query)
        items = reply.get("apis") if isinstance(reply, dict) else None
        items = [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []
        if not ctx.args:                              # the Go client checks a full listing (validateApiListResponse)
            for item in items:
                if not isinstance(item.get("value"), dict):
                    raise CliError("Internal error. Missing value stanza in API configuration response")
                check_swagger(item["value"].get("apidoc"))
    except CliError as exc:
        if ctx.args:                                  # as `wsk`: wrapped keeping the inner exit status here only
            raise exc.within("Unable to obtain the API list") from None
        raise _general(exc, "Unable to obtain the API list") from None
    values = [i["value"] for i in items if isinstance(i.get("value"), dict)]
    print_list(ctx.out, list_rows(values, relpath, verb), full=ctx.flag("full"), name_sort=ctx.flag("name-sort"))


GROUP = Command("api", "work with APIs", children=(
    Command("create ([BASE_PATH] API_PATH API_VERB ACTION] | --config-file CFG_FILE)", "create a new API", (
        Flag("apiname", "n", STRING, help="Friendly name of the API; ignored when CFG_FILE is specified (default "
                                          "BASE_PATH)"),
        Flag("config-file", "c", STRING, help="`CFG_FILE` containing API configuration in swagger JSON format"),
        Flag("response-type", "", STRING, "json", "Set the web action response `TYPE`. Possible values are html, "
                                                  "http, json, text, svg"),
    ), create),
    Command("get BASE_PATH | API_NAME", "get API details", (
        Flag("full", "f", BOOL, help="display full API configuration details"),
        Flag("format", "", STRING, "json", "Specify the API output `TYPE`, either json or yaml"),
    ), get),
    Command("delete BASE_PATH | API_NAME [API_PATH [API_VERB]]", "delete an API", (), delete),
    Command("list [[BASE_PATH | API_NAME] [API_PATH [API_VERB]]", "list APIs", (
        Flag("skip", "s", INT, 0, "exclude the first `SKIP` number of actions from the result"),
        Flag("limit", "l", INT, 30, "only return `LIMIT` number of actions from the collection"),
        Flag("name-sort", "n", BOOL, help="sorts a list alphabetically by order of [BASE_PATH | API_NAME], "
                                          "API_PATH, then API_VERB; only applicable within the limit/skip returned "
                                          "entity block"),
        Flag("full", "f", BOOL, help="display full description of each API"),
    ), list_),
))
