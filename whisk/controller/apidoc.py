"""API documents (docs/openwhisk.md §1.13): reading a createApi request, and the Swagger 2.0 document of one API that
the `wsk` CLI and the openwhisk npm client exchange with `whisk.system/apimgmt` — one operation per base path, relative
path and verb, with its `x-openwhisk` action and its case in `x-ibm-configuration.assembly` (target URL and the
X-Require-Whisk-Auth header the gateway adds). Pure functions; every refusal is an `ApiFailure` with upstream's text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from whisk.entities import json_value

VERBS = ("get", "put", "post", "delete", "patch", "head", "options")
REQUEST_PATH = "$(request.path)"
CREATE_FAILURE = "API creation failure: "
DELETE_FAILURE = "API deletion failure: "
SECURE_HEADER = "message.headers.X-Require-Whisk-Auth"
_WEB_URL = re.compile(r"(\w+)://([:\w.\-]+)(?:/[^?#]*?)?/api/v\d/web/([@\w .\-]+)/([@\w .\-]+)/([@\w .\-/]+)\.\w+")
_PATH_PARAM = re.compile(r"\{([^}/]+)\}")


class ApiFailure(Exception):
    """A refused management call: answered 502 `{"error": message}`, which the clients show as the reason."""


def js_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object"


def falsy(value: Any) -> bool:
    """JavaScript's `!value`, as upstream's checks use it."""
    return value is None or value is False or value == "" or (isinstance(value, int | float) and value == 0)


def gateway_error(message: str) -> ApiFailure:
    body = json.dumps({"status": 400, "message": f"Error: {message}"}, separators=(",", ":"))
    return ApiFailure(f"{CREATE_FAILURE}Unable to configure the API Gateway (status code 400): {body}")


def _list(value: Any) -> list[Any]:
    """A list read from a stored document, or an empty one: documents stored before createApi checked their shape
    (whisk/controller/apishape.py) may hold anything where a list belongs."""
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    """An object read from a stored document, or an empty one (as `_list`)."""
    return value if isinstance(value, dict) else {}


def _operations(case: Any) -> list[str]:
    """The operation ids a case names (only strings: an id of another type names no operation)."""
    return [o for o in _list(case.get("operations")) if isinstance(o, str)] if isinstance(case, dict) else []


def normalise(base_path: str) -> str:
    """How a base path is keyed: one leading slash, no trailing one ("/" for the root)."""
    return "/" + base_path.strip("/")


# --- the createApi request ----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Endpoint:
    """Form A: one operation to add to the API at `base_path` (or to the API titled so, without a leading /)."""

    base_path: str
    rel_path: str
    verb: str                      # as sent
    api_name: str | None
    action_namespace: str
    action_name: str               # "act" or "pkg/act"
    backend_url: str
    secure_key: Any
    path_parameters: list[Any]


def _object(value: Any, what: str, wrong: str) -> Any:
    if isinstance(value, str):
        try:
            return json_value.parse(value)      # strict: no NaN, lone surrogate or nesting too deep gets stored
        except json_value.NotJson:
            raise ApiFailure(f"{what} field cannot be parsed. Ensure it is valid JSON.") from None
    if isinstance(value, dict | list) or value is None:
        return value
    raise ApiFailure(wrong.format(js_type(value)))


def parse_create(params: dict[str, Any]) -> Endpoint | dict[str, Any]:
    """createApi's `apidoc`: an Endpoint (form A) or a Swagger document (form B); upstream's validateArgs order."""
    if falsy(params.get("apidoc")):
        raise ApiFailure("apidoc is required.")
    doc = _object(params["apidoc"], "apidoc",
                  "apidoc field is of type {} and should be a JSON object or a JSON string.")
    doc = doc if isinstance(doc, dict) else {}
    if falsy(doc.get("namespace")):
        raise ApiFailure("apidoc is missing the namespace field")
    if not falsy(doc.get("swagger")):
        if not falsy(doc.get("gatewayBasePath")):
            raise ApiFailure("swagger and gatewayBasePath are mutually exclusive and cannot be specified together.")
        swagger = _object(doc["swagger"], "swagger", "swagger field is {} and should be an object or a JSON string.")
        swagger = swagger if isinstance(swagger, dict) else {}
        for key in ("basePath", "paths", "info"):
            if falsy(swagger.get(key)):
                raise ApiFailure(f"swagger is missing the {key} field.")
        return swagger
    for key in ("gatewayBasePath", "gatewayPath", "gatewayMethod"):
        if falsy(doc.get(key)):
            raise ApiFailure(f"apidoc is missing the {key} field")
    action = doc.get("action")
    if falsy(action):
        raise ApiFailure("apidoc is missing the action field.")
    action = action if isinstance(action, dict) else {}
    for key in ("backendMethod", "backendUrl", "namespace", "name", "authkey"):
        if falsy(action.get(key)):
            raise ApiFailure(f"action is missing the {key} field.")
    parameters = doc.get("pathParameters")
    return Endpoint(str(doc["gatewayBasePath"]), str(doc["gatewayPath"]), str(doc["gatewayMethod"]),
                    doc.get("apiName") if isinstance(doc.get("apiName"), str) and doc["apiName"] else None,
                    str(action["namespace"]), str(action["name"]), str(action["backendUrl"]),
                    action.get("secureKey"), parameters if isinstance(parameters, list) else [])


def with_namespace(endpoint: Endpoint, namespace: str) -> Endpoint:
    """Upstream's updateNamespace: `_` as the action's namespace becomes the caller's, in the backend URL too."""
    if endpoint.action_namespace != "_":
        return endpoint
    url = endpoint.backend_url.replace("/api/v1/web/_/", f"/api/v1/web/{namespace}/", 1)
    return Endpoint(endpoint.base_path, endpoint.rel_path, endpoint.verb, endpoint.api_name, namespace,
                    endpoint.action_name, url, endpoint.secure_key, endpoint.path_parameters)


# --- the swagger document -----------------------------------------------------------------------------------------

def operation_id(verb: str, rel_path: str) -> str:
    """The lower-case verb, then each run of [0-9A-Za-z_-] capitalised: get + /books/{isbn} -> getBooksIsbn."""
    pieces = [p for p in re.split(r"[^0-9A-Za-z_-]+", rel_path) if p]
    return verb.lower() + "".join(p[0].upper() + p[1:].lower() for p in pieces)


def base_swagger(base_path: str, title: str | None) -> dict[str, Any]:
    return {"swagger": "2.0", "info": {"title": title or base_path, "version": "1.0.0"}, "basePath": base_path,
            "paths": {},
            "x-ibm-configuration": {"cors": {"enabled": True},
                                    "assembly": {"execute": [{"operation-switch": {"case": []}}]}}}


def cases(swagger: dict[str, Any]) -> list[dict[str, Any]]:
    """The operation-switch cases (created when missing: a hand-written swagger may have none, or null for any part,
    which apishape lets through as absent)."""
    config = swagger.get("x-ibm-configuration")
    if not isinstance(config, dict):
        config = swagger["x-ibm-configuration"] = {}
    assembly = config.get("assembly")
    if not isinstance(assembly, dict):
        assembly = config["assembly"] = {}
    execute = assembly.get("execute")
    if not isinstance(execute, list):
        execute = assembly["execute"] = []
    for step in execute:
        if isinstance(step, dict) and isinstance(step.get("operation-switch"), dict):
            found = step["operation-switch"]
            if not isinstance(found.get("case"), list):
                found["case"] = []
            return found["case"]
    switch: dict[str, Any] = {"operation-switch": {"case": []}}
    execute.append(switch)
    return switch["operation-switch"]["case"]


def _existing_cases(swagger: dict[str, Any]) -> list[Any]:
    """The operation-switch cases, read only (none when the document has no assembly)."""
    config = swagger.get("x-ibm-configuration")
    assembly = config.get("assembly") if isinstance(config, dict) else None
    execute = assembly.get("execute") if isinstance(assembly, dict) else None
    for step in execute if isinstance(execute, list) else ():
        if isinstance(step, dict) and isinstance(step.get("operation-switch"), dict):
            found = step["operation-switch"].get("case")
            return found if isinstance(found, list) else []
    return []


def _case_for(swagger: dict[str, Any], op_id: str) -> dict[str, Any] | None:
    for case in _existing_cases(swagger):
        if op_id in _operations(case):
            return case
    return None


def web_url(endpoint: Endpoint, response_type: str) -> tuple[str, str, str]:
    """(web action URL, package, action) for the endpoint's action; only scheme and host come from backendUrl."""
    match = _WEB_URL.match(endpoint.backend_url)
    if match is None:
        raise ApiFailure(f"{CREATE_FAILURE}API swagger generation error: TypeError: Cannot read properties of null "
                         "(reading '1')")
    parts = [p for p in endpoint.action_name.split("/") if p]
    action = parts[-1] if parts else endpoint.action_name
    package = parts[-2] if len(parts) > 1 else ""
    url = (f"{match.group(1)}://{match.group(2)}/api/v1/web/{endpoint.action_namespace}/{package or 'default'}/"
           f"{action}.{response_type}")
    return url, package, action


def check_base_path(base_path: str) -> None:
    if re.search(r"/\{[^}/]*\}(/|$)", base_path):
        raise ApiFailure(f"{CREATE_FAILURE}The base path ({base_path}) cannot have parameters. Only the relative "
                         "path supports path parameters.")
    if "'" in base_path:
        raise gateway_error("basePath contains illegal character \"'\".")


def check_resource(path: Any, verbs: list[str]) -> None:
    if not isinstance(path, str) or not path.startswith("/"):
        raise gateway_error("Resource path must begin with '/'.")
    if "'" in path:
        raise gateway_error("resource path contains illegal character \"'\".")
    for verb in verbs:
        if verb.lower() not in VERBS:
            raise gateway_error(f"Resource verb '{verb}' not supported.")


def add_endpoint(swagger: dict[str, Any], endpoint: Endpoint, response_type: str) -> dict[str, Any]:
    """Add (or replace) one operation and its case; refuse what the gateway would refuse."""
    check_base_path(endpoint.base_path)
    verb = endpoint.verb.lower()              # the swagger key; the gateway names it so when it refuses it
    check_resource(endpoint.rel_path, [verb])
    url, package, action = web_url(endpoint, response_type)
    op_id = operation_id(verb, endpoint.rel_path)
    paths = swagger.setdefault("paths", {})
    for path, ops in paths.items():
        for other, existing in _dict(ops).items():
            if (isinstance(existing, dict) and existing.get("operationId") == op_id
                    and (path, other) != (endpoint.rel_path, verb)):
                raise ApiFailure(f"{CREATE_FAILURE}The operation {verb.upper()} {endpoint.rel_path} would have the "
                                 f"operation id '{op_id}' of {other.upper()} {path}; rename one of the paths.")
    op: dict[str, Any] = {"operationId": op_id}
    if endpoint.path_parameters:
        op["parameters"] = endpoint.path_parameters
    op["x-openwhisk"] = {"namespace": endpoint.action_namespace, "package": package, "action": action, "url": url}
    op["responses"] = {"default": {"description": "Default response"}}
    execute: list[dict[str, Any]] = [{"invoke": {
        "target-url": url + (REQUEST_PATH if response_type == "http" else ""), "verb": "keep"}}]
    if not falsy(endpoint.secure_key):
        execute.append({"set-variable": {"actions": [{"set": SECURE_HEADER, "value": endpoint.secure_key}]}})
    case = {"operations": [op_id], "execute": execute}
    check_path_parameters(endpoint.rel_path, {}, op, case)
    paths.setdefault(endpoint.rel_path, {})[verb] = op
    all_cases = cases(swagger)
    existing = _case_for(swagger, op_id)
    if existing is not None:
        all_cases[all_cases.index(existing)] = case          # the whole case: no stale header injection
    else:
        all_cases.append(case)
    return swagger


def check_path_parameters(path: str, path_item: dict[str, Any], op: dict[str, Any],
                          case: dict[str, Any] | None) -> None:
    """An operation whose path has {parameters} must reach an `.http` action through `$(request.path)`, and each
    parameter must be declared."""
    names = _PATH_PARAM.findall(path)
    if not names or not isinstance(op.get("x-openwhisk"), dict):
        return
    if not str(op["x-openwhisk"].get("url", "")).endswith(".http"):
        raise ApiFailure(f"{CREATE_FAILURE}The action must use a response type of '.http' in order to receive the "
                         "path parameters.")
    target = ""
    for step in _list(_dict(case).get("execute")):
        if isinstance(step, dict) and isinstance(step.get("invoke"), dict):
            target = str(step["invoke"].get("target-url", ""))
    if not target.endswith(REQUEST_PATH):
        raise ApiFailure(f"{CREATE_FAILURE}The target-url for operationId '{op.get('operationId')}' must end in "
                         f"'{REQUEST_PATH}' in order for actions to receive the path parameters.")
    declared = {p["name"] for p in [*_list(path_item.get("parameters")), *_list(op.get("parameters"))]
                if isinstance(p, dict) and isinstance(p.get("name"), str)}      # a name of another type names none
    for name in names:
        if name not in declared:
            raise ApiFailure(f"{CREATE_FAILURE}The parameter '{name}' defined in path '{path}' does not match any "
                             "of the parameters defined for the path in the swagger file.")


def check_swagger(swagger: dict[str, Any]) -> None:
    """Form B: what the gateway and upstream's final validation refuse."""
    check_base_path(str(swagger.get("basePath")))
    paths = swagger.get("paths")
    if not isinstance(paths, dict) or not paths:
        raise gateway_error("Empty resources object.")
    for path, item in paths.items():
        item = item if isinstance(item, dict) else {}
        check_resource(path, [k for k in item if k != "parameters"])
        for verb, op in item.items():
            if verb != "parameters" and isinstance(op, dict):
                check_path_parameters(path, item, op, _case_for(swagger, str(op.get("operationId"))))


def remove_endpoint(swagger: dict[str, Any], rel_path: str, verb: str | None) -> bool:
    """Remove a path (or one operation of it) and their cases; True when the API has no path left."""
    paths = _dict(swagger.get("paths"))
    if rel_path not in paths:
        raise ApiFailure(f"{DELETE_FAILURE}path '{rel_path}' does not exist in the API")
    item = _dict(paths[rel_path])                 # a path stored as another value has no operation
    if verb is None:
        removed = [op for k, op in item.items() if k != "parameters"]
        del paths[rel_path]
    else:
        if verb not in item:
            raise ApiFailure(f"{DELETE_FAILURE}path '{rel_path}' with operation '{verb}' does not exist in the API")
        removed = [item.pop(verb)]
        if not [k for k in item if k != "parameters"]:
            del paths[rel_path]
    ids = {op["operationId"] for op in removed if isinstance(op, dict) and isinstance(op.get("operationId"), str)}
    all_cases = _existing_cases(swagger)
    all_cases[:] = [c for c in all_cases if not set(_operations(c)) & ids]
    return not paths


# --- serving an operation -----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Target:
    url: str                       # the web action URL, possibly ending in $(request.path)
    secure_key: str | None         # the X-Require-Whisk-Auth value the gateway adds
    verb: Any = None               # the invoke step's `verb`: "keep" (or none) for the request's own


def target_of(swagger: dict[str, Any], op: dict[str, Any]) -> Target | None:
    """As the gateway's swagger.lua reads the assembly: its first `operation-switch` or `invoke` step decides, an
    `invoke` one for every operation (a hand-written document's single backend); its own `set-variable` steps apply
    to every operation, before the case's."""
    steps = [s for s in _list(_dict(_dict(swagger.get("x-ibm-configuration")).get("assembly")).get("execute"))
             if isinstance(s, dict)]
    first = next((s for s in steps if isinstance(s.get("operation-switch"), dict) or isinstance(s.get("invoke"), dict)),
                 None)
    if first is not None and not isinstance(first.get("operation-switch"), dict):
        executed = [first]
    else:
        executed = _list(_dict(_case_for(swagger, str(op.get("operationId")))).get("execute"))
    url, secure, verb = None, None, None
    for step in [*(s for s in steps if "set-variable" in s), *executed]:
        if not isinstance(step, dict):
            continue
        if isinstance(step.get("invoke"), dict):
            url, verb = step["invoke"].get("target-url"), step["invoke"].get("verb")
        for action in _list(_dict(step.get("set-variable")).get("actions")):
            if isinstance(action, dict) and action.get("set") == SECURE_HEADER:
                secure = action.get("value")
    if url is None and isinstance(op.get("x-openwhisk"), dict):
        url = op["x-openwhisk"].get("url")
    if not isinstance(url, str):
        return None
    # A header carries text: a key of another JSON type (the CLI sends any require-whisk-auth annotation value) as
    # its JSON, which is what a number's or a boolean's text is anyway.
    return Target(url, None if secure is None else secure if isinstance(secure, str) else json_value.compact(secure),
                  verb)


def backend_method(verb: Any, method: str) -> str:
    """The method the action is called with (the gateway's routing.lua setVerb): the request's own for `keep` (or no
    verb), else the invoke step's verb, GET when it is none of the seven."""
    if not isinstance(verb, str) or verb.lower() == "keep":
        return method
    return verb.upper() if verb.lower() in VERBS else "GET"


def operation(item: dict[str, Any], method: str) -> dict[str, Any] | None:
    """The path item's operation for a request method: the gateway compares the verb keys without case, so a
    document's `GET` is served as its `get` is."""
    op = item.get(method.lower())
    if isinstance(op, dict):
        return op
    return next((v for k, v in item.items() if isinstance(k, str) and k.lower() == method.lower()
                 and k != "parameters" and isinstance(v, dict)), None)


def cors_setting(swagger: dict[str, Any]) -> bool | None:
    """`x-ibm-configuration.cors.enabled`: True (the gateway answers preflights and sets the CORS headers), False
    (it takes them off the action's answers), None when not said (the action's own headers go through)."""
    config = swagger.get("x-ibm-configuration")
    cors = config.get("cors") if isinstance(config, dict) else None
    enabled = cors.get("enabled") if isinstance(cors, dict) else None
    return enabled if isinstance(enabled, bool) else None
