"""`whisk api create|get|delete|list` (wsk's api.go, docs/openwhisk.md §1.13): argv -> request pieces and output in
process, then end to end against the session's server (the requests as `-v` shows them, the lines, the route itself)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import aiohttp
import pytest

from tests.cli.conftest import Wsk, unique
from tests.cli.support import context, output
from tests.support.processes import GUEST_AUTH
from whisk.cli.apis import build_apidoc, path_parameters, read_swagger, user_query
from whisk.cli.errors import CliError
from whisk.cli.main import main
from whisk.cli.output import Output
from whisk.cli.swagger import list_rows, print_list, to_yaml, typed_swagger
from whisk.cli.wskprops import Properties

USAGE = "Run 'whisk --help' for usage.\n"
GUEST_UUID = GUEST_AUTH.split(":")[0]
HELLO_JS = ("function main(args) {\n"
            "  return {hello: 'world', method: args.__ow_method, path: args.__ow_path, who: args.who || ''};\n}\n")
HTTP_JS = ("function main(args) {\n"
           "  return {statusCode: 201, headers: {'content-type': 'application/json'}, body: {path: args.__ow_path}};"
           "\n}\n")


# --- in process: the createApi body -------------------------------------------------------------------------------

def test_create_body_with_base_path_parameters_and_name() -> None:
    ctx = context("api", "create", "/club", "/books/{isbn}/{isbn}", "get", "lib/getBooks", "--response-type",
                  "http", "-n", "Book Club", apihost="owhost", auth="uuid:key")
    doc, qn = build_apidoc(ctx)
    assert (qn.namespace, qn.entity_name) == ("_", "lib/getBooks")
    assert doc == {
        "namespace": "_", "apiName": "Book Club", "gatewayBasePath": "/club", "gatewayPath": "/books/{isbn}/{isbn}",
        "gatewayMethod": "GET", "id": "API:_:/club",
        "action": {"name": "lib/getBooks", "namespace": "_", "backendMethod": "GET",
                   "backendUrl": "https://owhost/api/v1/web/_/lib/getBooks.http", "authkey": "uuid:key"},
        "pathParameters": [{"name": "isbn", "in": "path", "description": "Default description for 'isbn'",
                            "required": True, "type": "string"}],
    }


def test_create_body_defaults_base_and_keeps_a_scheme() -> None:
    doc, _ = build_apidoc(context("api", "create", "/world", "post", "/ns/act", apihost="http://127.0.0.1:1"))
    assert (doc["gatewayBasePath"], doc["id"], doc["gatewayMethod"]) == ("/", "API:_:/", "POST")
    assert doc["action"]["backendUrl"] == "http://127.0.0.1:1/api/v1/web/ns/default/act.http"
    assert (doc["action"]["namespace"], "apiName" in doc, "pathParameters" in doc) == ("ns", False, False)


def test_a_base_without_slash_is_an_api_name() -> None:
    doc, _ = build_apidoc(context("api", "create", "Club", "/b", "get", "a"))
    assert doc["gatewayBasePath"] == "Club" and "id" not in doc
    with pytest.raises(CliError, match="^An API name can only be specified once.$") as caught:
        build_apidoc(context("api", "create", "Club", "/b", "get", "a", "--apiname", "Other"))
    assert (caught.value.status, caught.value.usage) == (1, True)


@pytest.mark.parametrize("argv,message", [
    (("b", "get", "a"), "'b' must begin with '/'."),
    (("/b", "fetch", "a"), "'fetch' is not a valid API verb.  Valid values are: [GET PUT POST DELETE PATCH HEAD "
                           "OPTIONS]"),
    (("/x/{id}", "/b", "get", "a"), "The base path '/x/{id}' cannot have parameters. Only the relative path "
                                    "supports path parameters."),
    (("/b/{id}", "get", "a"), "A response type of 'http' is required when using path parameters."),
    (("/b", "get", "/ns"), "'/ns' is not a valid action name."),
])
def test_create_argument_refusals(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(CliError) as caught:
        build_apidoc(context("api", "create", *argv))
    assert caught.value.message == message and caught.value.status == 1


def test_path_parameters_fill_whole_segments_only() -> None:
    assert path_parameters("/a/{x}/b/{y}/{x}") == ["x", "y"]
    assert path_parameters("/a{x}/b/{y}z") == []


# --- in process: properties and swagger files ---------------------------------------------------------------------

def test_spaceguid_and_token_come_from_the_properties_file(tmp_path: Path) -> None:
    props = tmp_path / "wskprops"
    ctx = context("api", "list", auth="flag-uuid:flag-key")
    ctx.props = Properties(path=str(props), apihost="h", auth="flag-uuid:flag-key")
    props.write_text("AUTH=file-uuid:file-key\n")
    assert user_query(ctx) == {"spaceguid": "file-uuid", "accesstoken": "DUMMY TOKEN"}
    props.write_text("AUTH=file-uuid:file-key\nAPIGW_ACCESS_TOKEN=tok\n")
    assert user_query(ctx)["accesstoken"] == "tok"
    props.write_text("APIHOST=h\n")
    with pytest.raises(CliError, match=r"^Authorization key is not configured \(--auth is required\)$") as caught:
        user_query(ctx)
    assert (caught.value.status, caught.value.usage) == (1, False)


def test_yaml_quotes_strings_as_wsk_prints_them() -> None:
    # `wsk api get --format yaml` (go-yaml v2): a string that would read as another type in double quotes, lines as a
    # literal block; what reads back is the same document.
    doc = {"swagger": "2.0", "package": "", "flag": "true", "count": "12", "plain": "hello", "colon": "a: b",
           "lines": "one\ntwo", "number": 5, "nothing": None}
    text = to_yaml(doc)
    assert text == ('colon: \'a: b\'\ncount: "12"\nflag: "true"\nlines: |-\n  one\n  two\nnothing: null\nnumber: 5\n'
                    'package: ""\nplain: hello\nswagger: "2.0"\n')
    import yaml
    assert yaml.safe_load(text) == doc


def test_swagger_files_json_kept_yaml_converted_and_checked(tmp_path: Path) -> None:
    doc = {"swagger": "2.0", "basePath": "/club", "info": {"title": "Club", "version": "1"}, "paths": {}}
    as_json = tmp_path / "api.json"
    as_json.write_text(json.dumps(doc, indent=1))
    assert read_swagger(str(as_json)) == as_json.read_text()
    as_yaml = tmp_path / "api.yml"
    as_yaml.write_text("swagger: '2.0'\nbasePath: /club\ninfo:\n  title: Club\n  version: '1'\npaths: {}\n")
    assert json.loads(read_swagger(str(as_yaml))) == doc
    as_json.write_text(json.dumps({**doc, "info": None}))
    with pytest.raises(CliError, match=r"^Swagger file is invalid \(missing basePath, info, paths, or swagger "):
        read_swagger(str(as_json))
    as_json.write_text(json.dumps({**doc, "basePath": "club"}))
    with pytest.raises(CliError, match=r"^Swagger file basePath must start with a leading slash \(/\)$"):
        read_swagger(str(as_json))
    with pytest.raises(CliError) as caught:
        read_swagger(str(tmp_path / "absent.json"))
    assert caught.value.message == (f"Error reading swagger file '{tmp_path / 'absent.json'}': File "
                                    f"'{tmp_path / 'absent.json'}' is not a valid file or it does not exist")
    assert caught.value.status == 2 and caught.value.usage          # wsk's ReadFile: EXIT_CODE_ERR_USAGE


def test_refusals_before_any_request(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    props = tmp_path / "wskprops"
    monkeypatch.setenv("WSK_CONFIG_FILE", str(props))
    for name in ("WHISK_APIHOST", "WHISK_AUTH", "WHISK_APIVERSION"):
        monkeypatch.delenv(name, raising=False)
    assert main(["api", "list"]) == 1
    assert capsys.readouterr().err == ("error: The API host is not valid: An API host must be provided.\n\n"
                                       f"{USAGE}")
    host = ["--apihost", "http://127.0.0.1:9", "-u", "u:k"]
    props.write_text("AUTH=u:k\n")
    assert main(["api", "create", *host]) == 1
    assert capsys.readouterr().err == ("error: Invalid argument(s). Specify a swagger file or specify an API base "
                                       f"path with an API path, an API verb, and an action name.\n{USAGE}")
    assert main(["api", "get", "/a", "--format", "xml", *host]) == 1
    assert capsys.readouterr().err == "error: Invalid format type: xml\n"
    assert main(["api", "delete", "/a", "b", *host]) == 1
    assert capsys.readouterr().err == f"error: 'b' must begin with '/'.\n{USAGE}"
    assert main(["api", "list", "/a", "/b", "get", "x", *host]) == 1
    assert capsys.readouterr().err == ("error: Invalid argument(s): x. Optional parameters are: API base path (or "
                                       f"API name), API relative path and operation.\n{USAGE}")
    props.write_text("APIHOST=http://127.0.0.1:9\n")
    assert main(["api", "list", *host]) == 1          # the file has no AUTH, whatever -u says
    assert capsys.readouterr().err == "error: Authorization key is not configured (--auth is required)\n"


def printed(out: Output) -> str:
    return out.stdout.getvalue()  # type: ignore[attr-defined]


# --- in process: views --------------------------------------------------------------------------------------------

def _value(title: str, base: str, ops: dict[str, dict[str, str]]) -> dict:
    paths: dict = {}
    for key, (namespace, package, action) in ops.items():
        path, verb = key.split(" ")
        ow = {"namespace": namespace, "package": package, "action": action, "url": "u"}
        paths.setdefault(path, {})[verb] = {"operationId": verb + path, "responses": {}, "x-openwhisk": ow}
    return {"gwApiUrl": f"http://gw/api/t{base}/", "apidoc": {"basePath": base, "info": {"title": title},
                                                              "paths": paths}}


def test_list_table_widths_truncation_sort_and_filters() -> None:
    long_name = "a-very-long-api-name-that-goes-past-thirty"
    values = [_value("Zoo", "/zoo", {"/b get": ("ns", "", "act"), "/a post": ("ns", "pkg", "x" * 50)}),
              _value(long_name, "/all", {"/c delete": ("ns", "", "short")})]
    out = output()
    print_list(out, list_rows(values, "", ""), full=False, name_sort=True)
    action = "/ns/pkg/" + "x" * 32
    assert printed(out).splitlines() == [
        "ok: APIs",
        f"{'Action':<40}    Verb {'API Name':>31}  URL",
        f"{'/ns/short':<40}  delete {long_name[:30]:>31}  http://gw/api/t/all/c",
        f"{action}    post {'Zoo':>31}  http://gw/api/t/zoo/a",
        f"{'/ns/act':<40}     get {'Zoo':>31}  http://gw/api/t/zoo/b",
    ]
    out = output()
    print_list(out, list_rows(values, "/b", "GET"), full=True, name_sort=False)
    assert printed(out) == ("ok: APIs\nAction: /ns/act\n   API Name: Zoo\n   Base path: /zoo\n   Path: /b\n"
                           "   Verb: get\n   URL: http://gw/api/t/zoo/b\n")


def test_empty_lists() -> None:
    out = output()
    print_list(out, [], full=False, name_sort=False)
    assert printed(out) == f"ok: APIs\n{'Action':<30} {'Verb':>7} {'API Name':>20}  URL\n"
    out = output()
    print_list(out, list_rows([_value("T", "/t", {"/a get": ("n", "", "a")})], "/other", ""), full=True,
               name_sort=False)
    assert printed(out) == "ok: APIs\n\n"


def test_get_prints_the_typed_swagger() -> None:
    doc = {"x-extra": 1, "paths": {"/b": {"get": {"x-openwhisk": {"url": "u", "action": "a", "namespace": "n",
                                                                   "package": ""}, "responses": {"z": 1, "a": 2},
                                                   "operationId": "getB", "summary": "dropped"}}},
           "info": {"version": "1", "title": "T"}, "basePath": "/t", "swagger": "2.0"}
    typed = typed_swagger(doc)
    assert json.dumps(typed) == json.dumps({
        "swagger": "2.0", "basePath": "/t", "info": {"title": "T", "version": "1"},
        "paths": {"/b": {"get": {"operationId": "getB", "responses": {"a": 2, "z": 1},
                                 "x-openwhisk": {"action": "a", "namespace": "n", "package": "", "url": "u"}}}}})


def test_get_prints_a_swagger_nested_as_deep_as_the_server_stores() -> None:
    """createApi stores a document nested ~490 levels (a body may nest 500): `whisk api get` sorted its keys with two
    frames a level and died with a RecursionError."""
    deep: object = {"b": 1, "a": 2}
    for _ in range(490):
        deep = [deep]
    doc = {"swagger": "2.0", "basePath": "/t", "paths": {"/b": {"get": {"operationId": "getB", "responses": deep}}},
           "x-ibm-configuration": deep}
    typed = typed_swagger(doc)
    assert json.dumps(typed["x-ibm-configuration"]).endswith('{"a": 2, "b": 1}' + "]" * 490)
    assert json.dumps(typed["paths"]["/b"]["get"]["responses"]) == json.dumps(typed["x-ibm-configuration"])


# --- end to end ---------------------------------------------------------------------------------------------------

def _request_lines(out: str) -> list[str]:
    """`[METHOD]\\t<url>` lines and request bodies of a `-v` run."""
    lines = out.splitlines()
    found = [line for line in lines if re.match(r"^\[[A-Z]+\]\t", line)]
    found += [lines[i + 1] for i, line in enumerate(lines) if line == "Req Body"]
    return found


async def _web_action(wsk: Wsk, tmp_path: Path, source: str = HELLO_JS, *flags: str) -> str:
    name = unique("hello-web")
    (tmp_path / f"{name}.js").write_text(source)
    ran = await wsk("action", "create", name, str(tmp_path / f"{name}.js"), "--web", "true", *flags)
    assert ran.code == 0, ran.err
    return name


async def test_create_list_get_call_and_delete(wsk: Wsk, tmp_path: Path, whisk_url: str, invoke_ready: None) -> None:
    action = await _web_action(wsk, tmp_path)
    base = "/" + unique("hello")
    gw = f"{whisk_url}/api/{GUEST_UUID}{base}"

    created = await wsk("api", "create", base, "/world", "get", action)
    assert (created.code, created.err) == (0, "")
    assert created.lines() == [f"ok: created API {base}/world GET for action /_/{action}", f"{gw}/world"]

    listed = await wsk("api", "list", base)
    assert listed.code == 0 and listed.lines() == [
        "ok: APIs",
        f"{'Action':<{len(action) + 7}}    Verb {'API Name':>{len(base) + 1}}  URL",
        f"/guest/{action}     get {base:>{len(base) + 1}}  {gw}/world",
    ]
    everything = await wsk("api", "list", "--limit", "1000")
    assert f"/guest/{action}     get " in everything.out and everything.lines()[0] == "ok: APIs"

    got = await wsk("api", "get", base)
    swagger = json.loads(got.out)
    assert list(swagger) == ["swagger", "basePath", "info", "paths", "x-ibm-configuration"]
    assert (swagger["basePath"], swagger["info"]["title"]) == (base, base)
    assert swagger["paths"]["/world"]["get"]["x-openwhisk"] == {
        "action": action, "namespace": "guest", "package": "",
        "url": f"{whisk_url}/api/v1/web/guest/default/{action}.json"}
    full = json.loads((await wsk("api", "get", base, "-f")).out)
    assert (full["gwApiUrl"], full["apidoc"]) == (gw, swagger)

    async with aiohttp.ClientSession() as session:
        async with session.get(created.lines()[1], params={"who": "route"}) as resp:
            assert resp.status == 200, await resp.text()
            assert await resp.json() == {"hello": "world", "method": "get", "path": "", "who": "route"}

        deleted = await wsk("api", "delete", base)
        assert (deleted.code, deleted.out) == (0, f"ok: deleted API {base}\n")
        async with session.get(created.lines()[1]) as resp:
            assert (resp.status, await resp.json()) == (404, {"status": 404, "message": "Error: Not found."})

    gone = await wsk("api", "get", base)
    assert (gone.code, gone.out, gone.err) == (1, "", f"error: API does not exist for basepath {base}\n")
    empty = await wsk("api", "list", base)
    assert empty.out == f"ok: APIs\n{'Action':<30} {'Verb':>7} {'API Name':>20}  URL\n"


async def test_requests_as_sent(wsk: Wsk, tmp_path: Path, whisk_url: str) -> None:
    action = await _web_action(wsk, tmp_path, HELLO_JS, "--web-secure", "s3cret")
    wsk.props.write_text(wsk.props.read_text() + "APIGW_ACCESS_TOKEN=my token\n")
    base = "/" + unique("req")
    manage = f"{whisk_url}/api/v1/web/whisk.system/apimgmt"
    user = f"spaceguid={GUEST_UUID}"

    created = await wsk("-v", "api", "create", base, "/p", "put", action, "-n", "Named")
    assert created.code == 0, created.err
    get_action, post, body = _request_lines(created.out)
    assert get_action == f"[GET]\t{whisk_url}/api/v1/namespaces/_/actions/{action}?code=false"
    assert post == f"[POST]\t{manage}/createApi.http?accesstoken=my+token&responsetype=json&{user}"
    assert json.loads(body) == {"apidoc": {
        "namespace": "_", "apiName": "Named", "gatewayBasePath": base, "gatewayPath": "/p", "gatewayMethod": "PUT",
        "id": f"API:_:{base}",
        "action": {"name": action, "namespace": "_", "backendMethod": "PUT",
                   "backendUrl": f"{whisk_url}/api/v1/web/_/default/{action}.http", "authkey": GUEST_AUTH,
                   "secureKey": "s3cret"}}}
    assert created.lines()[-2:] == [f"ok: created API {base}/p PUT for action /_/{action}",
                                    f"{whisk_url}/api/{GUEST_UUID}{base}/p"]

    got = await wsk("-v", "api", "get", base)
    assert _request_lines(got.out) == [f"[GET]\t{manage}/getApi.http?accesstoken=my+token&basepath=%2F"
                                       f"{base[1:]}&{user}"]
    listed = await wsk("-v", "api", "list", "-s", "2", "-l", "5")
    assert _request_lines(listed.out) == [f"[GET]\t{manage}/getApi.http?accesstoken=my+token&limit=5&skip=2&{user}"]
    filtered = await wsk("-v", "api", "list", "Named", "/p", "put")
    assert _request_lines(filtered.out) == [f"[GET]\t{manage}/getApi.http?accesstoken=my+token&basepath=Named&"
                                            f"operation=PUT&relpath=%2Fp&{user}"]
    assert filtered.out.rstrip("\n").endswith(f"{whisk_url}/api/{GUEST_UUID}{base}/p")

    deleted = await wsk("-v", "api", "delete", base, "/p", "put")
    assert _request_lines(deleted.out) == [f"[DELETE]\t{manage}/deleteApi.http?accesstoken=my+token&basepath=%2F"
                                           f"{base[1:]}&operation=PUT&relpath=%2Fp&{user}"]
    assert deleted.lines()[-1] == f"ok: deleted /p PUT from {base}"


async def test_refusals_from_the_client_and_the_server(wsk: Wsk, tmp_path: Path) -> None:
    (tmp_path / "plain.js").write_text("function main() { return {}; }\n")
    plain = unique("plain")
    assert (await wsk("action", "create", plain, str(tmp_path / "plain.js"))).code == 0
    refused = await wsk("api", "create", "/x", "/y", "get", plain)
    assert (refused.code, refused.err) == (1, f"error: Action '/_/{plain}' is not a web action. Issue 'wsk action "
                                              f"update \"/_/{plain}\" --web true' to convert the action to a web "
                                              f"action.\n{USAGE}")
    absent = await wsk("api", "create", "/x", "/y", "get", "no-such-action")
    assert absent.code == 1
    assert re.fullmatch(r"error: Unable to get action '/_/no-such-action': The requested resource does not exist\. "
                        rf"\(code \w+\)\n{re.escape(USAGE)}", absent.err)

    base = "/" + unique("gone")
    missing = await wsk("api", "delete", base)
    assert (missing.code, missing.err) == (1, f"error: Unable to delete API: API deletion failure: API '{base}' "
                                              "does not exist.\n")
    action = await _web_action(wsk, tmp_path)
    assert (await wsk("api", "create", base, "/a", "get", action)).code == 0
    no_path = await wsk("api", "delete", base, "/b")
    assert no_path.err == "error: Unable to delete API: API deletion failure: path '/b' does not exist in the API\n"
    unnamed = await wsk("api", "create", "NoSuchTitle", "/a", "get", action)
    assert unnamed.code == 1 and unnamed.err.startswith("error: Unable to create API: API creation failure: ")
    assert (await wsk("api", "delete", base, "/a")).out == f"ok: deleted /a from {base}\n"

    wsk.props.write_text(wsk.props.read_text().replace(GUEST_AUTH, f"{GUEST_UUID}:wrong-key"))
    for argv, code, failure in ((("list", base), 246, "Unable to obtain the API list"),   # wrapped, status kept
                                (("list",), 1, "Unable to obtain the API list"),
                                (("get", base), 1, f"Unable to get API '{base}'"),
                                (("delete", base), 1, "Unable to delete API")):
        denied = await wsk("api", *argv)
        assert (denied.code, denied.err) == (code, f"error: {failure}: Invalid authentication.\n"), argv


async def test_swagger_file_and_path_parameters(wsk: Wsk, tmp_path: Path, whisk_url: str,
                                                invoke_ready: None) -> None:
    action = await _web_action(wsk, tmp_path, HTTP_JS)
    base = "/" + unique("club")
    created = await wsk("api", "create", base, "/books/{isbn}", "get", action, "--response-type", "http")
    assert created.code == 0, created.err
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{whisk_url}/api/{GUEST_UUID}{base}/books/978") as resp:
            assert (resp.status, await resp.json()) == (201, {"path": f"{base}/books/978"})
        exported = (await wsk("api", "get", base, "--format", "yaml")).out
        assert f"basePath: {base}\n" in exported and "operationId: getBooksIsbn\n" in exported
        (tmp_path / "api.yaml").write_text(exported.replace("/books/{isbn}", "/shelf/{isbn}"))
        assert (await wsk("api", "delete", base)).code == 0

        from_file = await wsk("api", "create", "--config-file", str(tmp_path / "api.yaml"))
        assert from_file.code == 0, from_file.err
        assert from_file.lines() == [f"ok: created API {base}/shelf/{{isbn}} get for action /guest/{action}",
                                     f"{whisk_url}/api/{GUEST_UUID}{base}/shelf/{{isbn}}"]
        async with session.get(f"{whisk_url}/api/{GUEST_UUID}{base}/shelf/1") as resp:
            assert (resp.status, await resp.json()) == (201, {"path": f"{base}/shelf/1"})
    assert (await wsk("api", "delete", base)).out == f"ok: deleted API {base}\n"
