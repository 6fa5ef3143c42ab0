"""The swagger documents createApi/getApi answer with, as the Go client checks, prints and tabulates them
(wsk's api.go: typed swagger, the `api list` table)."""

from __future__ import annotations

from typing import Any

from whisk.cli.errors import CliError
from whisk.cli.output import Output
from whisk.cli.shapes import untyped   # keys sorted all the way down, as Go writes a map

_OPERATIONS = ("get", "put", "post", "delete", "options", "head", "patch")   # swagger keys a path item may hold
_SWAGGER_KEYS = ("swagger", "basePath", "info", "paths", "securityDefinitions", "security", "x-ibm-configuration",
                 "x-ibm-rate-limit")


def check_swagger(swagger: Any) -> dict[str, Any]:
    """The Go client's validateApiSwaggerResponse."""
    if not isinstance(swagger, dict):
        raise CliError("Internal error. Missing apidoc stanza in API configuration")
    for item in (swagger.get("paths") or {}).values():
        for op_name, op in (item.items() if isinstance(item, dict) else ()):
            ow = op.get("x-openwhisk") if isinstance(op, dict) else None
            if not isinstance(ow, dict):
                continue
            for field, value in (("operationId", op.get("operationId")), ("x-openwhisk.namespace", ow.get(
                    "namespace")), ("x-openwhisk.action", ow.get("action")), ("x-openwhisk.url", ow.get("url"))):
                if not value:
                    raise CliError(f"Missing {field} field in API configuration for operation {op_name}")
    return swagger


def operations(swagger: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(relative path, verb key, operation) for every operation of a swagger document, in document order."""
    found = []
    for path, item in (swagger.get("paths") or {}).items():
        if isinstance(item, dict):
            found += [(path, verb, op) for verb, op in item.items() if verb in _OPERATIONS and isinstance(op, dict)]
    return found


def action_of(op: dict[str, Any]) -> str:
    """`/ns/pkg/action` or `/ns/action` from `x-openwhisk`; "" when the operation has none."""
    ow = op.get("x-openwhisk")
    if not isinstance(ow, dict):
        return ""
    parts = [ow.get("namespace", ""), ow.get("package", ""), ow.get("action", "")]
    return "/" + "/".join(str(p) for p in parts if p != "") if parts[1] else f"/{parts[0]}/{parts[2]}"


def _typed_operation(op: dict[str, Any]) -> dict[str, Any]:
    typed: dict[str, Any] = {"operationId": op.get("operationId", "")}
    if op.get("parameters"):
        typed["parameters"] = untyped(op["parameters"])
    typed["responses"] = untyped(op.get("responses"))
    ow = op.get("x-openwhisk")
    if isinstance(ow, dict):
        typed["x-openwhisk"] = {k: ow.get(k, "") for k in ("action", "namespace", "package", "url")}
    return typed


def typed_swagger(swagger: dict[str, Any]) -> dict[str, Any]:
    """The swagger as the Go client's ApiSwagger prints it: its fields only, in its order, omitempty."""
    typed: dict[str, Any] = {}
    for key in _SWAGGER_KEYS:
        value = swagger.get(key)
        if value is None or (key in ("swagger", "basePath") and value == "") or (key == "paths" and not value):
            continue
        if key == "info" and isinstance(value, dict):
            value = {k: value[k] for k in ("title", "version") if value.get(k)}
        elif key == "paths" and isinstance(value, dict):
            value = {p: {v: _typed_operation(op) for v, op in sorted(item.items()) if isinstance(op, dict)}
                     for p, item in sorted(value.items()) if isinstance(item, dict)}
        else:
            value = untyped(value)
        typed[key] = value
    return typed


def typed_value(value: dict[str, Any]) -> dict[str, Any]:
    typed = {"namespace": value.get("namespace", ""), "gwApiUrl": value.get("gwApiUrl", ""),
             "gwApiActivated": bool(value.get("gwApiActivated")), "tenantId": value.get("tenantId", "")}
    if isinstance(value.get("apidoc"), dict):
        typed["apidoc"] = typed_swagger(value["apidoc"])
    return typed


def to_yaml(value: Any) -> str:
    """YAML as wsk prints it (go-yaml v2): a string that would read as another type ("2.0", "", "true") in double
    quotes, a string of several lines as a literal block, anything else as PyYAML chooses."""
    import yaml                                       # only --format yaml needs it

    class Dumper(yaml.SafeDumper):
        pass

    def string(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
        style = None
        if "\n" in text:
            style = "|"
        elif dumper.resolve(yaml.ScalarNode, text, (True, False)) != "tag:yaml.org,2002:str":
            style = '"'
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)

    Dumper.add_representer(str, string)
    return yaml.dump(value, Dumper=Dumper, default_flow_style=False, sort_keys=True, allow_unicode=True)


# --- the list table -----------------------------------------------------------------------------------------------

def list_rows(apis: list[dict[str, Any]], relpath: str, verb: str) -> list[dict[str, str]]:
    """One row per operation of each API value, filtered on the client by relative path and verb."""
    rows = []
    for value in apis:
        swagger = found if isinstance(found := value.get("apidoc"), dict) else {}
        info = found if isinstance(found := swagger.get("info"), dict) else {}
        url = str(value.get("gwApiUrl", "")).removesuffix("/")
        for path, op_verb, op in operations(swagger):
            if (not relpath or path == relpath) and (not verb or op_verb.lower() == verb.lower()):
                rows.append({"action": action_of(op), "verb": op_verb, "name": str(info.get("title", "")),
                             "base": str(swagger.get("basePath", "")), "path": path, "url": url + path})
    return rows


def print_list(out: Output, rows: list[dict[str, str]], *, full: bool, name_sort: bool) -> None:
    """`ok: APIs`, then the table or, with --full, one block per operation."""
    out.ok("APIs")
    if name_sort:
        rows = sorted(rows, key=lambda r: (r["base"] + r["path"] + r["verb"]).lower())
    if full:
        if not rows:
            out.line()
        for r in rows:
            out.write(f"Action: {r['action']}\n   API Name: {r['name']}\n   Base path: {r['base']}\n"
                      f"   Path: {r['path']}\n   Verb: {r['verb']}\n   URL: {r['url']}\n")
        return
    if not rows:
        out.line(out.bold(f"{'Action':<30} {'Verb':>7} {'API Name':>20}  URL"))
        return
    action_w = min(40, max(6, *(len(r["action"]) for r in rows)))
    name_w = min(30, max(8, *(len(r["name"]) for r in rows)))

    def row(action: str, verb: str, name: str, url: str) -> str:
        return f"{action:<{action_w}} {verb:>7} {name:>{name_w + 1}}  {url}"
    out.line(out.bold(row("Action", "Verb", "API Name", "URL")))
    for r in rows:
        out.line(row(r["action"][:action_w], r["verb"], r["name"][:name_w], r["url"]))
