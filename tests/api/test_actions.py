"""Actions CRUD on the real server (docs/openwhisk.md §1.6, §2.3): create, read with and without code, overwrite and
409, limits and exec validation with OpenWhisk's messages, update merge rules, sequences, packaged actions, delete."""

from __future__ import annotations

import aiohttp
import pytest

from tests.api.support import JS, call, ns, unique


def annotations(body: dict) -> dict:
    return {a["key"]: a["value"] for a in body["annotations"]}


async def test_create_get_update_delete(guest: aiohttp.ClientSession) -> None:
    name = unique("act")
    status, created = await call(guest, "PUT", ns("actions", name), {
        "exec": JS, "parameters": [{"key": "a", "value": 1}, {"key": "secret", "value": "s", "init": True}],
        "annotations": [{"key": "web-export", "value": True}], "namespace": "ignored", "name": "ignored"})
    assert status == 200
    assert (created["namespace"], created["name"], created["version"], created["publish"]) == \
        ("guest", name, "0.0.1", False)
    assert created["exec"] == {"kind": "nodejs:20", "code": JS["code"], "binary": False}
    assert created["limits"] == {"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1}
    assert annotations(created) == {"web-export": True, "provide-api-key": False, "exec": "nodejs:20"}
    assert {"key": "secret", "value": "s", "init": True} in created["parameters"]

    status, body = await call(guest, "GET", ns("actions", name))
    assert status == 200 and body == created
    status, body = await call(guest, "GET", ns("actions", name), params={"code": "false"})
    assert status == 200 and body["exec"] == {"kind": "nodejs:20", "binary": False}

    status, body = await call(guest, "PUT", ns("actions", name), {"exec": JS})
    assert (status, body["error"]) == (409, "resource already exists")

    status, updated = await call(guest, "PUT", ns("actions", name), params={"overwrite": "true"}, body={
        "limits": {"memory": 128}, "annotations": [{"key": "x", "value": 1}], "delAnnotations": ["web-export"],
        "publish": True})
    assert status == 200 and updated["version"] == "0.0.2" and updated["publish"] is True
    assert updated["exec"] == created["exec"] and updated["parameters"] == created["parameters"]
    assert updated["limits"] == {"timeout": 60000, "memory": 128, "logs": 10, "concurrency": 1}
    assert annotations(updated) == {"provide-api-key": False, "exec": "nodejs:20", "x": 1}

    status, body = await call(guest, "PUT", ns("actions", name), params={"overwrite": "true"},
                              body={"version": "4.5.6", "parameters": []})
    assert status == 200 and body["version"] == "4.5.6" and body["parameters"] == []

    status, deleted = await call(guest, "DELETE", ns("actions", name))
    assert status == 200 and deleted["name"] == name and deleted["version"] == "4.5.6"
    status, body = await call(guest, "DELETE", ns("actions", name))
    assert (status, body["error"]) == (404, "The requested resource does not exist.")
    status, _ = await call(guest, "GET", ns("actions", name))
    assert status == 404


async def test_default_kind_main_blackbox_and_binary(guest: aiohttp.ClientSession) -> None:
    name = unique("kinds")
    status, body = await call(guest, "PUT", ns("actions", name), {
        "exec": {"kind": "python:default", "code": "UEsDBAoAAAAAAA==", "main": "handler"}})
    assert status == 200 and body["exec"] == {"kind": "python:3.11", "code": "UEsDBAoAAAAAAA==", "binary": True,
                                              "main": "handler"}
    status, body = await call(guest, "PUT", ns("actions", name + "-bb"), {
        "exec": {"kind": "blackbox", "image": "openwhisk/dockerskeleton"}})
    assert status == 200 and body["exec"] == {"kind": "blackbox", "image": "openwhisk/dockerskeleton",
                                              "binary": False}
    status, listed = await call(guest, "GET", ns("actions"), params={"limit": "0"})
    summary = next(a for a in listed if a["name"] == name)
    assert summary["exec"] == {"binary": True} and "parameters" not in summary and "code" not in str(summary)


@pytest.mark.parametrize("exec_,message", [
    (None, "exec undefined"),
    ("", "The request content was malformed:\n'kind' must be a string defined in 'exec'"),
    ({"kind": "cobol:1", "code": "x"},
     "The request content was malformed:\nThe specified runtime 'cobol:1' is not supported by this platform."),
    ({"kind": "nodejs:20"},
     "The request content was malformed:\n'code' must be a string defined in 'exec' for 'nodejs:20' actions"),
    ({"kind": "blackbox"},
     "The request content was malformed:\n'image' must be a string defined in 'exec' for 'blackbox' actions"),
    ({"kind": "sequence"}, "The request content was malformed:\n'components' must be defined for sequence kind"),
    # OpenWhisk's FullyQualifiedEntityName reader: a string's EntityPath `require`s answered with their message
    # (Scala's, of the default 2.12 build), an object's bad path as the reader's own text
    ({"kind": "sequence", "components": ["/guest/a!b"]}, "The request content was malformed:\nrequirement failed: "
     "path contains invalid parts WrappedArray(guest, a!b)"),
    ({"kind": "sequence", "components": ["//"]}, "The request content was malformed:\nrequirement failed: "
     "path undefined"),
    ({"kind": "sequence", "components": [{"path": "gu!est", "name": "a"}]},
     "The request content was malformed:\nfully qualified name malformed"),
    ({"kind": "sequence", "components": [{"path": "", "name": "a"}]},
     "The request content was malformed:\nfully qualified name malformed"),
    ({"kind": "sequence", "components": ["/onlyname"]}, "The request content was malformed:\nrequirement failed: "
     "The fully qualified name of the entity must contain at least the namespace and the name of the entity."),
])
async def test_exec_errors(guest: aiohttp.ClientSession, exec_, message) -> None:
    name = unique("badexec")
    status, body = await call(guest, "PUT", ns("actions", name), {} if exec_ is None else {"exec": exec_})
    assert status == 400 and body["error"].startswith(message), body
    status, _ = await call(guest, "GET", ns("actions", name))
    assert status == 404


@pytest.mark.parametrize("body,message", [
    # spray-json's readers of WhiskActionPut's fields: BooleanJsonFormat, arrayFormat of StringJsonFormat, SemVer's
    ({"publish": "true"}, 'Expected JsBoolean, but got "true"'),
    ({"publish": 1}, "Expected JsBoolean, but got 1"),
    ({"delAnnotations": "x"}, 'Expected Array as JsArray, but got "x"'),
    ({"delAnnotations": ["a", 1]}, "Expected String as JsString, but got 1"),
    ({"version": "v1.2.3"}, "semantic version malformed"),
    ({"version": "1.2.3-beta"}, "semantic version malformed"),
    ({"parameters": [1]}, "parameters malformed!"),
])
async def test_field_errors(guest: aiohttp.ClientSession, body, message) -> None:
    name = unique("field")
    status, got = await call(guest, "PUT", ns("actions", name), {"exec": JS, **body})
    assert (status, got["error"]) == (400, "The request content was malformed:\n" + message)


async def test_version_as_openwhisk_reads_it(guest: aiohttp.ClientSession) -> None:
    name = unique("ver")
    status, body = await call(guest, "PUT", ns("actions", name), {"exec": JS, "version": "1.2.3.4"})
    assert (status, body["version"]) == (200, "1.2.3")                # parts after the third are ignored
    status, body = await call(guest, "PUT", ns("actions", name), params={"overwrite": "true"}, body={})
    assert (status, body["version"]) == (200, "1.2.4")


@pytest.mark.parametrize("limits,message", [
    ({"memory": 1024}, "memory size 1024 MB exceeds allowed threshold of 512 MB"),
    ({"memory": 64}, "memory size 64 MB below allowed threshold of 128 MB"),
    ({"timeout": 50}, "duration 50 milliseconds below allowed threshold of 100 milliseconds"),
    ({"timeout": 300001}, "duration 300001 milliseconds exceeds allowed threshold of 300000 milliseconds"),
    ({"logs": 11}, "log size 11 MB exceeds allowed threshold of 10 MB"),
    ({"concurrency": 2}, "concurrency 2 exceeds allowed threshold of 1"),
    ({"memory": 256.5}, "The request content was malformed:\nmemory limit must be whole number"),
    ({"timeout": "fast"}, "The request content was malformed:\ntime limit malformed"),
    ({"concurrency": 1.5}, "The request content was malformed:\nintra concurrency limit must be whole number"),
    ({"concurrency": "x"}, "The request content was malformed:\nconcurrency limit malformed"),
    # spray's reader of ActionLimitsOption, whose first field is `timeout`, given no object
    ("fast", "The request content was malformed:\nObject expected in field 'timeout'"),
    ([{"memory": 128}], "The request content was malformed:\nObject expected in field 'timeout'"),
])
async def test_limit_errors(guest: aiohttp.ClientSession, limits, message) -> None:
    name = unique("lim")
    status, body = await call(guest, "PUT", ns("actions", name), {"exec": JS, "limits": limits})
    assert (status, body["error"]) == (400, message)
    status, _ = await call(guest, "GET", ns("actions", name))
    assert status == 404


async def test_sequences(guest: aiohttp.ClientSession) -> None:
    a, b, seq = unique("a"), unique("b"), unique("seq")
    for name in (a, b):
        assert (await call(guest, "PUT", ns("actions", name), {"exec": JS}))[0] == 200
    status, body = await call(guest, "PUT", ns("actions", seq), {
        "exec": {"kind": "sequence", "components": [f"/_/{a}", f"/guest/{b}"]},
        "parameters": [{"key": "dropped", "value": 1}]})
    assert status == 200
    assert body["exec"] == {"kind": "sequence", "components": [f"/guest/{a}", f"/guest/{b}"]}
    assert body["parameters"] == [{"key": "_actions", "value": [f"/guest/{a}", f"/guest/{b}"]}]
    status, body = await call(guest, "PUT", ns("actions", a), params={"overwrite": "true"},
                              body={"exec": {"kind": "sequence", "components": [f"/_/{seq}"]}})
    assert (status, body["error"]) == (400, "Sequence may not refer to itself.")
    status, body = await call(guest, "PUT", ns("actions", unique("s")),
                              {"exec": {"kind": "sequence", "components": [f"/_/{unique('nope')}"]}})
    assert (status, body["error"]) == (400, "Sequence component does not exist.")
    status, body = await call(guest, "PUT", ns("actions", unique("s")), {"exec": {"kind": "sequence",
                                                                                   "components": []}})
    assert (status, body["error"]) == (400, "No component specified for the sequence.")
    status, body = await call(guest, "PUT", ns("actions", unique("s")),
                              {"exec": {"kind": "sequence", "components": [f"/_/{a}"] * 51}})
    assert (status, body["error"]) == (400, "Too many actions in the sequence.")
    status, body = await call(guest, "GET", ns("actions", a))
    assert body["exec"]["kind"] == "nodejs:20"                 # the refused update changed nothing


async def test_packaged_actions_and_bindings(guest: aiohttp.ClientSession) -> None:
    pkg, binding, name = unique("pkg"), unique("bind"), unique("act")
    parameters = [{"key": "p", "value": "package"}, {"key": "q", "value": "package"}, {"key": "r", "value": "package"}]
    assert (await call(guest, "PUT", ns("packages", pkg), {"parameters": parameters}))[0] == 200
    status, body = await call(guest, "PUT", ns("actions", f"{pkg}/{name}"), {
        "exec": JS, "parameters": [{"key": "r", "value": "action"}]})
    assert status == 200 and body["namespace"] == f"guest/{pkg}"
    assert (await call(guest, "PUT", ns("packages", binding), {
        "binding": {"namespace": "_", "name": pkg}, "parameters": [{"key": "q", "value": "binding"}]}))[0] == 200

    status, body = await call(guest, "GET", ns("actions", f"{pkg}/{name}"))
    assert status == 200 and {p["key"]: p["value"] for p in body["parameters"]} == \
        {"p": "package", "q": "package", "r": "action"}
    status, body = await call(guest, "GET", ns("actions", f"{binding}/{name}"))
    assert status == 200 and body["namespace"] == f"guest/{pkg}"
    assert {p["key"]: p["value"] for p in body["parameters"]} == {"p": "package", "q": "binding", "r": "action"}

    for path in (f"{pkg}/", f"{binding}/"):
        status, listed = await call(guest, "GET", ns("actions", path))
        assert status == 200 and [a["name"] for a in listed] == [name]
    status, body = await call(guest, "GET", ns("actions", f"{pkg}/"), params={"count": "true"})
    assert (status, body) == (200, {"actions": 1})

    status, listed = await call(guest, "GET", ns("actions"), params={"limit": "200"})
    assert any(a["name"] == name and a["namespace"] == f"guest/{pkg}" for a in listed)

    for method, body in (("PUT", {"exec": JS}), ("DELETE", None)):
        status, reply = await call(guest, method, ns("actions", f"{binding}/{name}"), body)
        assert (status, reply["error"]) == (400, "Operation not permitted on package binding.")
    status, reply = await call(guest, "PUT", ns("actions", f"{unique('nopkg')}/{name}"), {"exec": JS})
    assert (status, reply["error"]) == (404, "The requested resource does not exist.")
    status, reply = await call(guest, "GET", ns("actions", f"{pkg}/{unique('none')}"))
    assert status == 404
    status, _ = await call(guest, "DELETE", ns("actions", f"{pkg}/{name}"))
    assert status == 200


async def test_collection_conformance_and_publish(guest: aiohttp.ClientSession) -> None:
    name = unique("shared")
    assert (await call(guest, "PUT", ns("triggers", name), {}))[0] == 200
    status, body = await call(guest, "PUT", ns("actions", name), {"exec": JS})
    assert (status, body["error"]) == (409, "Resource by this name exists but is not in this collection.")
    status, body = await call(guest, "GET", ns("actions", name))
    assert (status, body["error"]) == (409, "Resource by this name exists but is not in this collection.")
    status, body = await call(guest, "DELETE", ns("packages", name))
    assert status == 409
    status, body = await call(guest, "GET", ns("triggers", name))
    assert status == 200


async def test_bad_query_flags(guest: aiohttp.ClientSession) -> None:
    status, body = await call(guest, "PUT", ns("actions", unique("q")), {"exec": JS}, params={"overwrite": "maybe"})
    assert status == 400 and body["error"] == "The query parameter 'overwrite' was malformed:\n" \
        "'maybe' is not a valid Boolean value"
    status, body = await call(guest, "GET", ns("actions", unique("q")), params={"code": "sure"})
    assert status == 400 and "'code' was malformed" in body["error"]


async def test_invoke_query_flags_as_pekko_reads_them(guest: aiohttp.ClientSession) -> None:
    """`blocking`/`result` go through Pekko's Boolean unmarshaller (yes/on/1 too, an empty value is the default);
    a bad one, or a bad `timeout`, is the malformed-parameter rejection naming it (`CTL/Actions.scala`)."""
    name = unique("flags")
    assert (await call(guest, "PUT", ns("actions", name), {"exec": JS}))[0] == 200
    status, body = await call(guest, "POST", ns("actions", name), {"x": 1}, params={"blocking": "yes", "result": "1"})
    assert (status, body) == (200, {"x": 1})
    status, body = await call(guest, "POST", ns("actions", name), {"x": 2}, params={"blocking": "ON", "result": ""})
    assert status == 200 and body["response"]["result"] == {"x": 2}
    status, body = await call(guest, "POST", ns("actions", name), params={"blocking": ""})
    assert status == 202 and set(body) == {"activationId"}
    status, body = await call(guest, "POST", ns("actions", name), params={"blocking": "maybe"})
    assert (status, body["error"]) == (400, "The query parameter 'blocking' was malformed:\n"
                                            "'maybe' is not a valid Boolean value")
    for timeout in ("0", "60001", "1.5", " 5", "abc"):
        status, body = await call(guest, "POST", ns("actions", name), params={"blocking": "true", "timeout": timeout})
        assert (status, body["error"]) == (400, "The query parameter 'timeout' was malformed:\n"
                                                "Timeout must be number of milliseconds up to 60000."), timeout
    status, body = await call(guest, "POST", ns("actions", name), [1, 2])
    assert (status, body["error"]) == (400, "The request content was malformed:\nJSON object expected")


async def test_limits_with_a_trailing_slash(guest: aiohttp.ClientSession) -> None:
    status, body = await call(guest, "GET", "/api/v1/namespaces/_/limits/")
    assert status == 200 and body["concurrentInvocations"] >= 1
