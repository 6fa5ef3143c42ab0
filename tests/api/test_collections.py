"""Triggers, rules and packages on the real server (docs/openwhisk.md §1.4, §1.7–§1.9): paging and counting with
OpenWhisk's validation messages, rule status kept in the trigger, enable/disable, bindings, the reserved package name,
and deletes of non-empty packages with and without force."""

from __future__ import annotations

import aiohttp
import pytest

from tests.api.support import JS, call, ns, unique


@pytest.mark.parametrize("collection", ["actions", "triggers", "rules", "packages", "activations"])
@pytest.mark.parametrize("query,message", [
    ({"limit": "201"}, "The value '201' is not in the range of 0 to 200 for {c}."),
    ({"limit": "-1"}, "The value '-1' is not in the range of 0 to 200 for {c}."),
    ({"limit": "ten"}, "The value 'ten' is not an integer for {c}."),
    ({"skip": "-1"}, "The value '-1' is not greater than or equal to 0 for {c}."),
    ({"skip": "1.5"}, "The value '1.5' is not an integer for {c}."),
    ({"count": "often"}, "'often' is not a valid Boolean value"),
])
async def test_paging_validation(guest: aiohttp.ClientSession, collection, query, message) -> None:
    status, body = await call(guest, "GET", ns(collection), params=query)
    assert status == 400
    param = next(iter(query))
    assert body["error"] == f"The query parameter '{param}' was malformed:\n" + message.format(c=collection)


async def test_paging_and_counting_newest_first(guest: aiohttp.ClientSession) -> None:
    prefix = unique("page")
    pkg = prefix
    assert (await call(guest, "PUT", ns("packages", pkg), {}))[0] == 200
    names = [f"t{i}" for i in range(5)]
    for name in names:
        assert (await call(guest, "PUT", ns("actions", f"{pkg}/{name}"), {"exec": JS}))[0] == 200
    status, listed = await call(guest, "GET", ns("actions", f"{pkg}/"))
    assert status == 200 and [a["name"] for a in listed] == names[::-1]
    status, listed = await call(guest, "GET", ns("actions", f"{pkg}/"), params={"skip": "1", "limit": "2"})
    assert [a["name"] for a in listed] == ["t3", "t2"]
    status, listed = await call(guest, "GET", ns("actions", f"{pkg}/"), params={"limit": "0"})
    assert len(listed) == 5
    status, body = await call(guest, "GET", ns("actions", f"{pkg}/"), params={"count": "true", "skip": "2"})
    assert (status, body) == (200, {"actions": 3})
    status, body = await call(guest, "GET", ns("actions", f"{pkg}/"), params={"count": "yes", "skip": "9"})
    assert body == {"actions": 0}
    for collection in ("triggers", "rules", "packages"):
        status, body = await call(guest, "GET", ns(collection), params={"count": "true"})
        assert status == 200 and isinstance(body[collection], int)
    status, body = await call(guest, "GET", ns("packages"), params={"count": "true"})
    assert body["packages"] >= 1


async def test_triggers_crud(guest: aiohttp.ClientSession) -> None:
    name = unique("trig")
    status, body = await call(guest, "PUT", ns("triggers", name), {
        "parameters": [{"key": "a", "value": 1}], "annotations": [{"key": "feed", "value": "/whisk.system/alarms/x"}]})
    assert status == 200 and body["limits"] == {} and "rules" not in body and body["version"] == "0.0.1"
    status, body = await call(guest, "PUT", ns("triggers", name), {}, params={"overwrite": "true"})
    assert status == 200 and body["version"] == "0.0.2" and body["parameters"] == [{"key": "a", "value": 1}]
    status, body = await call(guest, "PUT", ns("triggers", name), {"annotations": []}, params={"overwrite": "true"})
    assert body["annotations"] == []                      # trigger annotations are replaced, not merged
    status, body = await call(guest, "PUT", ns("triggers", unique("trig")),
                              {"annotations": [{"key": "feed", "value": "bad feed!"}]})
    assert (status, body["error"]) == (400, "Feed name is not valid")
    status, listed = await call(guest, "GET", ns("triggers"), params={"limit": "200"})
    summary = next(t for t in listed if t["name"] == name)
    assert set(summary) == {"namespace", "name", "version", "publish", "annotations", "updated"}
    status, body = await call(guest, "DELETE", ns("triggers", name))
    assert status == 200 and body["name"] == name
    assert (await call(guest, "DELETE", ns("triggers", name)))[0] == 404


async def test_rules_status_lives_in_the_trigger(guest: aiohttp.ClientSession) -> None:
    trigger, other, action, rule = unique("t"), unique("t2"), unique("a"), unique("r")
    for t in (trigger, other):
        assert (await call(guest, "PUT", ns("triggers", t), {}))[0] == 200
    assert (await call(guest, "PUT", ns("actions", action), {"exec": JS}))[0] == 200

    status, body = await call(guest, "PUT", ns("rules", rule), {"trigger": f"/_/{trigger}", "action": f"/_/{action}"})
    assert status == 200 and body["status"] == "active"
    assert body["trigger"] == {"path": "guest", "name": trigger} and body["action"] == {"path": "guest", "name": action}
    status, t = await call(guest, "GET", ns("triggers", trigger))
    assert t["rules"] == {f"guest/{rule}": {"action": {"path": "guest", "name": action}, "status": "active"}}

    assert (await call(guest, "POST", ns("rules", rule), {"status": "inactive"})) == (200, "OK")
    assert (await call(guest, "GET", ns("rules", rule)))[1]["status"] == "inactive"
    assert (await call(guest, "POST", ns("rules", rule), {"status": "inactive"})) == (200, "OK")
    status, body = await call(guest, "POST", ns("rules", rule), {"status": "sleeping"})
    assert (status, body["error"]) == \
        (400, "The request content was malformed:\nrequirement failed: sleeping is not a recognized rule state")
    # The body is read before the rule is looked up (OpenWhisk's "reject post with invalid status").
    status, body = await call(guest, "POST", ns("rules", unique("missing")), {"status": "sleeping"})
    assert status == 400
    assert (await call(guest, "POST", ns("rules", rule), {"status": " inactive "})) == (200, "OK")     # trimmed
    assert (await call(guest, "POST", ns("rules", rule), {"status": "active"})) == (200, "OK")

    status, listed = await call(guest, "GET", ns("rules"), params={"limit": "200"})
    entry = next(r for r in listed if r["name"] == rule)
    assert "status" not in entry and entry["trigger"]["name"] == trigger

    # Moving the rule to another trigger moves the link and keeps the status.
    status, body = await call(guest, "PUT", ns("rules", rule), {"trigger": f"/_/{other}"}, params={"overwrite": "true"})
    assert status == 200 and body["status"] == "active" and body["version"] == "0.0.2"
    assert "rules" not in (await call(guest, "GET", ns("triggers", trigger)))[1] or \
        (await call(guest, "GET", ns("triggers", trigger)))[1]["rules"] == {}
    assert f"guest/{rule}" in (await call(guest, "GET", ns("triggers", other)))[1]["rules"]

    # Without its trigger a rule reads inactive and cannot be activated.
    assert (await call(guest, "DELETE", ns("triggers", other)))[0] == 200
    assert (await call(guest, "GET", ns("rules", rule)))[1]["status"] == "inactive"
    status, body = await call(guest, "POST", ns("rules", rule), {"status": "active"})
    assert (status, body["error"]) == (404, "Only rules with existing triggers can be activated")

    status, body = await call(guest, "DELETE", ns("rules", rule))
    assert status == 200 and body["status"] == "inactive"
    assert (await call(guest, "GET", ns("rules", rule)))[0] == 404


async def test_rule_errors_leave_the_store_unchanged(guest: aiohttp.ClientSession) -> None:
    trigger, action = unique("t"), unique("a")
    assert (await call(guest, "PUT", ns("triggers", trigger), {}))[0] == 200
    assert (await call(guest, "PUT", ns("actions", action), {"exec": JS}))[0] == 200
    cases = [
        ({"trigger": f"/_/{trigger}"}, "rule requires a valid trigger and a valid action"),
        ({"trigger": f"/_/{unique('no')}", "action": f"/_/{action}"}, "trigger /guest/"),
        ({"trigger": f"/_/{trigger}", "action": f"/_/{unique('no')}"}, "action /guest/"),
        ({"trigger": "nopath", "action": f"/_/{action}"}, "The request content was malformed:\nrequirement failed"),
    ]
    for body, message in cases:
        rule = unique("r")
        status, reply = await call(guest, "PUT", ns("rules", rule), body)
        assert status == 400 and reply["error"].startswith(message), reply
        assert (await call(guest, "GET", ns("rules", rule)))[0] == 404
    assert "rules" not in (await call(guest, "GET", ns("triggers", trigger)))[1]
    status, _ = await call(guest, "POST", ns("rules", unique("none")), {"status": "active"})
    assert status == 404


async def test_packages_bindings_and_force_delete(guest: aiohttp.ClientSession) -> None:
    pkg, binding, action = unique("pkg"), unique("bnd"), unique("a")
    status, body = await call(guest, "PUT", ns("packages", "default"), {})
    assert (status, body["error"]) == (400, "Package name 'default' is reserved.")
    status, body = await call(guest, "PUT", ns("packages", pkg), {"parameters": [{"key": "x", "value": 1}],
                                                                  "annotations": [{"key": "binding", "value": 1}]})
    assert status == 200 and body["binding"] == {} and body["annotations"] == []
    assert (await call(guest, "PUT", ns("actions", f"{pkg}/{action}"), {"exec": JS}))[0] == 200
    assert (await call(guest, "PUT", ns("actions", f"{pkg}/feed"), {
        "exec": JS, "annotations": [{"key": "feed", "value": True}]}))[0] == 200

    status, body = await call(guest, "GET", ns("packages", pkg))
    assert status == 200 and [a["name"] for a in body["actions"]] == [action]
    assert [f["name"] for f in body["feeds"]] == ["feed"]
    assert set(body["actions"][0]) == {"name", "version", "annotations"}

    status, body = await call(guest, "PUT", ns("packages", binding), {
        "binding": {"namespace": "_", "name": pkg}, "parameters": [{"key": "y", "value": 2}]})
    assert status == 200 and body["binding"] == {"namespace": "guest", "name": pkg}
    assert {"key": "binding", "value": {"namespace": "guest", "name": pkg}} in body["annotations"]
    status, body = await call(guest, "GET", ns("packages", binding))
    assert status == 200 and body["name"] == binding
    assert {p["key"]: p["value"] for p in body["parameters"]} == {"x": 1, "y": 2}
    assert [a["name"] for a in body["actions"]] == [action]

    status, listed = await call(guest, "GET", ns("packages"), params={"limit": "0"})
    by_name = {p["name"]: p for p in listed}
    assert by_name[pkg]["binding"] is False and by_name[binding]["binding"] == {"namespace": "guest", "name": pkg}

    errors = [
        (binding + "2", {"binding": {"namespace": "_", "name": unique("none")}}, 400,
         "Binding references a package that does not exist."),
        (binding + "3", {"binding": {"namespace": "_", "name": binding}}, 400,
         "Cannot bind to another package binding."),
        (pkg, {"binding": {"namespace": "_", "name": binding}}, 409,
         "Resource is a package and cannot be converted into a binding."),
    ]
    # A malformed binding in spray's words (Binding.serdes, jsonFormat2); only {} means "no binding".
    malformed = "The request content was malformed:\n"
    for value, message in ((None, "Object expected in field 'namespace'"),
                           ("guest/p", "Object expected in field 'namespace'"),
                           ({"name": pkg}, "Object is missing required member 'namespace'"),
                           ({"namespace": "_"}, "Object is missing required member 'name'"),
                           ({"namespace": 7, "name": pkg}, "entity name malformed"),
                           ({"namespace": "_", "name": "a/b"}, "entity name malformed")):
        errors.append((unique("b"), {"binding": value}, 400, malformed + message))
    for name, body, code, message in errors:
        status, reply = await call(guest, "PUT", ns("packages", name), body, params={"overwrite": "true"})
        assert (status, reply["error"]) == (code, message), body
    trigger = unique("t")
    assert (await call(guest, "PUT", ns("triggers", trigger), {}))[0] == 200
    status, reply = await call(guest, "PUT", ns("packages", unique("b")),
                               {"binding": {"namespace": "_", "name": trigger}})
    assert (status, reply["error"]) == (409, "Cannot bind to a resource that is not a package.")

    status, body = await call(guest, "DELETE", ns("packages", pkg))
    assert (status, body["error"]) == \
        (409, "Package not empty (contains 2 entities). Set force param or delete package contents.")
    assert (await call(guest, "DELETE", ns("packages", binding)))[0] == 200        # bindings always go
    status, body = await call(guest, "DELETE", ns("packages", pkg), params={"force": "true"})
    assert status == 200 and body["name"] == pkg
    assert (await call(guest, "GET", ns("actions", f"{pkg}/{action}")))[0] == 404
    status, body = await call(guest, "GET", ns("packages", pkg))
    assert (status, body["error"]) == (404, f"The requested resource 'guest/{pkg}' does not exist.")


async def test_limits_entity_routes(guest: aiohttp.ClientSession) -> None:
    """CTL/Limits.scala: an entity segment under limits fails validation on GET (400), other verbs are 405."""
    for path in ("/api/v1/namespaces/_/limits/limitsEntity", "/api/v1/namespaces/_/limits/a/b"):
        status, body = await call(guest, "GET", path)
        assert (status, body["error"]) == (400, "Inner entity level routes for limits are not yet implemented.")
    for method in ("PUT", "POST", "DELETE"):
        status, body = await call(guest, method, "/api/v1/namespaces/_/limits/limitsEntity")
        assert (status, body["error"]) == (405, "HTTP method not allowed, supported methods: GET"), method


async def test_other_verbs_on_package_action_list_are_404(guest: aiohttp.ClientSession) -> None:
    """PackageActionsApiTests 'reject invalid verb on get package actions': DELETE .../actions/{pkg}/ is 404."""
    package = unique("pkg")
    assert (await call(guest, "PUT", ns("packages", package), {}))[0] == 200
    for method in ("DELETE", "PUT", "POST"):
        status, body = await call(guest, method, ns("actions", package) + "/")
        assert (status, body["error"]) == (404, "The requested resource could not be found."), method
    assert (await call(guest, "GET", ns("actions", package) + "/")) == (200, [])
