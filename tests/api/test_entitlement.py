"""Implicit rights across namespaces (docs/openwhisk.md §1.2) on a real server with a SQLite store, where a second
namespace is made by `whisk admin user create`: owners do anything in their namespace; others may list public packages,
read published packages and their actions (also through their own binding), and nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest_asyncio

from tests.api.support import GUEST_AUTH, JS, Deployment, basic, call, ns, run_cli, unique


@pytest_asyncio.fixture(loop_scope="session")
async def owner(deployment: Deployment) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=deployment.url, headers=basic(GUEST_AUTH)) as session:
        yield session


@pytest_asyncio.fixture(loop_scope="session")
async def stranger(deployment: Deployment) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=deployment.url, headers=basic(deployment.other_auth)) as session:
        yield session


def forbidden(what: str) -> str:
    return f"The supplied authentication is not authorized to access '{what}'."


async def test_second_namespace_sees_only_itself(stranger: aiohttp.ClientSession, deployment: Deployment) -> None:
    assert await call(stranger, "GET", "/api/v1/namespaces") == (200, [deployment.other_namespace])
    status, body = await call(stranger, "PUT", ns("actions", "mine"), {"exec": JS})
    assert status == 200 and body["namespace"] == deployment.other_namespace


async def test_private_entities_are_forbidden(owner: aiohttp.ClientSession, stranger: aiohttp.ClientSession) -> None:
    action, trigger = unique("a"), unique("t")
    assert (await call(owner, "PUT", ns("actions", action), {"exec": JS}))[0] == 200
    assert (await call(owner, "PUT", ns("triggers", trigger), {}))[0] == 200
    for collection in ("actions", "triggers", "rules", "activations"):
        status, body = await call(stranger, "GET", ns(collection, namespace="guest"))
        assert (status, body["error"]) == (403, forbidden("guest")), collection
    status, body = await call(stranger, "GET", "/api/v1/namespaces/guest/limits")
    assert (status, body["error"]) == (403, forbidden("guest"))
    for method, path, payload in (("GET", ns("actions", action, "guest"), None),
                                  ("PUT", ns("actions", action, "guest"), {"exec": JS}),
                                  ("DELETE", ns("actions", action, "guest"), None),
                                  ("GET", ns("triggers", trigger, "guest"), None),
                                  ("DELETE", ns("triggers", trigger, "guest"), None),
                                  ("PUT", ns("packages", unique("p"), "guest"), {})):
        status, body = await call(stranger, method, path, payload)
        assert status == 403 and body["error"].startswith("The supplied authentication is not authorized"), path
    # Still there, unchanged.
    status, body = await call(owner, "GET", ns("actions", action))
    assert status == 200 and body["version"] == "0.0.1"
    assert (await call(owner, "GET", ns("triggers", trigger)))[0] == 200


async def test_public_packages_bindings_and_references(owner: aiohttp.ClientSession,
                                                      stranger: aiohttp.ClientSession) -> None:
    public, private, action = unique("pub"), unique("priv"), unique("a")
    assert (await call(owner, "PUT", ns("packages", public), {
        "publish": True, "parameters": [{"key": "from", "value": "package"}, {"key": "k", "value": 1}]}))[0] == 200
    assert (await call(owner, "PUT", ns("packages", private), {}))[0] == 200
    for pkg in (public, private):
        assert (await call(owner, "PUT", ns("actions", f"{pkg}/{action}"), {"exec": JS}))[0] == 200
    assert (await call(owner, "PUT", ns("packages", unique("pubbind")), {
        "publish": True, "binding": {"namespace": "guest", "name": public}}))[0] == 200

    status, listed = await call(stranger, "GET", ns("packages", namespace="guest"), params={"limit": "0"})
    names = {p["name"] for p in listed}
    assert status == 200 and public in names and private not in names
    assert all(p["publish"] and p["binding"] is False for p in listed)
    status, body = await call(stranger, "GET", ns("packages", namespace="guest"), params={"count": "true"})
    assert body == {"packages": len(listed)}

    status, body = await call(stranger, "GET", ns("packages", public, "guest"))
    assert status == 200 and [a["name"] for a in body["actions"]] == [action]
    status, body = await call(stranger, "GET", ns("packages", private, "guest"))
    assert (status, body["error"]) == (403, forbidden(f"guest/{private}"))
    status, body = await call(stranger, "GET", ns("packages", unique("missing"), "guest"))
    assert status == 403                                          # no leak about what does not exist
    status, body = await call(owner, "GET", ns("packages", unique("missing")))
    assert status == 404

    status, body = await call(stranger, "GET", ns("actions", f"{public}/{action}", "guest"))
    assert status == 200 and body["namespace"] == f"guest/{public}"
    status, body = await call(stranger, "GET", ns("actions", f"{private}/{action}", "guest"))
    assert (status, body["error"]) == (403, forbidden(f"guest/{private}"))
    status, body = await call(stranger, "GET", ns("actions", f"{public}/", "guest"))
    assert status == 200 and [a["name"] for a in body] == [action]
    status, body = await call(stranger, "PUT", ns("actions", f"{public}/{action}", "guest"), {"exec": JS},
                              params={"overwrite": "true"})
    assert status == 403

    binding = unique("mybind")
    status, body = await call(stranger, "PUT", ns("packages", binding), {
        "binding": {"namespace": "guest", "name": public}, "parameters": [{"key": "from", "value": "binding"}]})
    assert status == 200
    status, body = await call(stranger, "GET", ns("actions", f"{binding}/{action}"))
    assert status == 200 and body["namespace"] == f"guest/{public}"
    assert {p["key"]: p["value"] for p in body["parameters"]} == {"from": "binding", "k": 1}
    status, body = await call(stranger, "PUT", ns("packages", unique("b")), {
        "binding": {"namespace": "guest", "name": private}})
    assert (status, body["error"]) == (403, forbidden(f"guest/{private}"))

    # References into another namespace need READ: a private action in a sequence or a rule is refused.
    status, body = await call(owner, "PUT", ns("actions", unique("plain")), {"exec": JS})
    private_action = body["name"]
    status, body = await call(stranger, "PUT", ns("actions", unique("seq")), {
        "exec": {"kind": "sequence", "components": [f"/guest/{private_action}"]}})
    assert (status, body["error"]) == (403, forbidden(f"guest/{private_action}"))
    trigger = unique("t")
    assert (await call(owner, "PUT", ns("triggers", trigger), {}))[0] == 200
    status, body = await call(stranger, "PUT", ns("rules", unique("r")), {
        "trigger": f"/guest/{trigger}", "action": f"/guest/{private_action}"})
    both = ", ".join(sorted([f"guest/{private_action}", f"guest/{trigger}"]))
    assert (status, body["error"]) == (403, forbidden(both))


async def test_web_action_through_a_binding_to_a_package_made_private(
        owner: aiohttp.ClientSession, stranger: aiohttp.ClientSession, deployment: Deployment) -> None:
    # OpenWhisk's web route looks the action up through the binding, checks its export (404), and only then the
    # binding owner's right to activate it where it lives (WebActions.scala, verifyWebAction): a 403 naming the
    # package once it is private, not a 404.
    package, binding, action = unique("shared"), unique("bind"), unique("web")
    assert (await call(owner, "PUT", ns("packages", package), {"publish": True}))[0] == 200
    assert (await call(owner, "PUT", ns("actions", f"{package}/{action}"), {
        "exec": JS, "annotations": [{"key": "web-export", "value": True}]}))[0] == 200
    assert (await call(owner, "PUT", ns("actions", f"{package}/hidden"), {"exec": JS}))[0] == 200
    assert (await call(stranger, "PUT", ns("packages", binding), {
        "binding": {"namespace": "guest", "name": package}}))[0] == 200
    web = f"/api/v1/web/{deployment.other_namespace}/{binding}"
    url = f"{web}/{action}.json"
    async with aiohttp.ClientSession(base_url=deployment.url) as anonymous:
        status, body = await call(anonymous, "GET", url, params={"x": "1"})
        assert status == 200 and body["x"] == "1", body
        assert (await call(owner, "PUT", ns("packages", package), {"publish": False},
                           params={"overwrite": "true"}))[0] == 200
        status, body = await call(anonymous, "GET", url)
        assert (status, body["error"]) == (403, forbidden(f"guest/{package}")), body
        # Not exported, or not there: 404 before any right is looked at.
        for name in ("hidden", "missing"):
            status, body = await call(anonymous, "GET", f"{web}/{name}.json")
            assert status == 404, (name, body)


async def test_admin_cli_lists_and_deletes_subjects(deployment: Deployment) -> None:
    env = {"WHISK_STORE": deployment.store_url}
    name = unique("tmp")
    code, out, err = await run_cli("admin", "user", "create", name, "--store", deployment.store_url, env=env)
    assert code == 0, err
    auth = out.strip().splitlines()[-1]
    async with aiohttp.ClientSession(base_url=deployment.url, headers=basic(auth)) as session:
        assert await call(session, "GET", "/api/v1/namespaces") == (200, [name])
        code, out, err = await run_cli("admin", "user", "list", "--store", deployment.store_url, env=env)
        assert code == 0 and name in out and auth.split(":")[1] not in out
        code, _, err = await run_cli("admin", "user", "create", name, "--store", deployment.store_url, env=env)
        assert code != 0 and "already exists" in err
    # A deleted namespace's key no longer authenticates (this key never reached the server's cache).
    gone = unique("gone")
    code, out, err = await run_cli("admin", "user", "create", gone, "--store", deployment.store_url, env=env)
    assert code == 0, err
    code, _, err = await run_cli("admin", "user", "delete", gone, "--store", deployment.store_url, env=env)
    assert code == 0, err
    async with aiohttp.ClientSession(base_url=deployment.url, headers=basic(out.strip().splitlines()[-1])) as s:
        status, body = await call(s, "GET", ns("triggers"))
        assert (status, body["error"]) == (401, "The supplied authentication is invalid")


async def test_a_web_secret_is_shown_only_to_its_owner(owner: aiohttp.ClientSession,
                                                       stranger: aiohttp.ClientSession) -> None:
    """Another namespace reads a published package's actions, but not the `require-whisk-auth` secret that lets
    anyone run a web action as its owner; `true` is no secret and is shown."""
    package, binding, secret = unique("p"), unique("b"), unique("s")
    assert (await call(owner, "PUT", ns("packages", package), {"publish": True}))[0] == 200
    for name, value in (("guarded", secret), ("numbered", 12345), ("signed", True)):
        status, _ = await call(owner, "PUT", ns("actions", f"{package}/{name}"), {
            "exec": JS, "annotations": [{"key": "web-export", "value": True},
                                        {"key": "require-whisk-auth", "value": value}]})
        assert status == 200
    assert (await call(stranger, "PUT", ns("packages", binding),
                       {"binding": {"namespace": "guest", "name": package}}))[0] == 200

    def secrets(annotations: list[dict]) -> list:
        return [a["value"] for a in annotations if a["key"] == "require-whisk-auth"]

    status, body = await call(owner, "GET", ns("actions", f"{package}/guarded"))
    assert status == 200 and secrets(body["annotations"]) == [secret]
    status, body = await call(owner, "GET", ns("packages", package))
    assert sorted(map(str, sum((secrets(a["annotations"]) for a in body["actions"]), []))) == \
        sorted([secret, "12345", "True"])
    for session, path in ((stranger, ns("actions", f"{package}/guarded", "guest")),
                          (stranger, ns("actions", f"{package}/numbered", "guest") + "?code=false"),
                          (stranger, ns("actions", f"{binding}/guarded"))):
        status, body = await call(session, "GET", path)
        assert status == 200 and secrets(body["annotations"]) == ["********"], path
    status, body = await call(stranger, "GET", ns("actions", f"{package}/signed", "guest"))
    assert status == 200 and secrets(body["annotations"]) == [True]
    for path in (ns("packages", package, "guest"), ns("packages", binding), ns("actions", f"{package}/", "guest"),
                 ns("actions", f"{binding}/")):
        status, body = await call(stranger, "GET", path)
        listed = body["actions"] if isinstance(body, dict) else body
        assert status == 200 and sorted(map(str, sum((secrets(a["annotations"]) for a in listed), []))) == \
            ["********", "********", "True"], path


async def test_another_namespace_is_refused_before_its_body_is_read(owner: aiohttp.ClientSession,
                                                                     stranger: aiohttp.ClientSession) -> None:
    """OpenWhisk authorizes a request before it unmarshals the body (`authorizeAndDispatch`, then the collection's
    `entity(as[...])`): another namespace's PUT or POST is 403 whatever it sends, the owner's malformed one 400."""
    package, action, trigger, rule = unique("p"), unique("a"), unique("t"), unique("r")
    assert (await call(owner, "PUT", ns("packages", package), {"publish": True}))[0] == 200
    assert (await call(owner, "PUT", ns("actions", f"{package}/{action}"), {"exec": JS}))[0] == 200
    assert (await call(owner, "PUT", ns("actions", action), {"exec": JS}))[0] == 200
    assert (await call(owner, "PUT", ns("triggers", trigger), {}))[0] == 200
    assert (await call(owner, "PUT", ns("rules", rule), {"trigger": f"/_/{trigger}", "action": f"/_/{action}"}))[0] \
        == 200
    paths = [("PUT", ns("actions", action, "guest"), f"guest/{action}"),
             ("PUT", ns("actions", f"{package}/{action}", "guest"), f"guest/{package}/{action}"),
             ("PUT", ns("packages", package, "guest"), f"guest/{package}"),
             ("PUT", ns("triggers", trigger, "guest"), f"guest/{trigger}"),
             ("PUT", ns("rules", rule, "guest"), f"guest/{rule}"),
             ("POST", ns("actions", action, "guest"), f"guest/{action}"),
             ("POST", ns("triggers", trigger, "guest"), f"guest/{trigger}"),
             ("POST", ns("rules", rule, "guest"), f"guest/{rule}")]
    bodies = [{"data": b"{not json", "headers": {"Content-Type": "application/json"}},
              {"data": b"{}", "headers": {"Content-Type": "text/plain"}}]
    for method, path, fqname in paths:
        for body in bodies:
            status, answer = await call(stranger, method, path, **body)
            assert (status, answer["error"]) == (403, forbidden(fqname)), (method, path, body)
        status, answer = await call(owner, method, path.replace("/guest/", "/_/"), **bodies[0])
        assert status == 400 and answer["error"].startswith("The request content was malformed"), (method, path)
    # Nothing changed, nothing ran: the rule is still active, the action at its first version.
    status, body = await call(owner, "GET", ns("rules", rule))
    assert (status, body["status"]) == (200, "active")
    status, body = await call(owner, "GET", ns("actions", action))
    assert (status, body["version"]) == (200, "0.0.1")


async def test_another_namespace_is_refused_before_its_query_is_read(owner: aiohttp.ClientSession,
                                                                      stranger: aiohttp.ClientSession) -> None:
    """The query's options (`code`, `overwrite`, `force`, `blocking`, `result`, `timeout`, paging) are read by the
    collection's handler once the request is authorized (OpenWhisk's `parameter(...)` inside `dispatchOp`)."""
    package, action = unique("p"), unique("a")
    assert (await call(owner, "PUT", ns("packages", package), {}))[0] == 200
    assert (await call(owner, "PUT", ns("actions", f"{package}/{action}"), {"exec": JS}))[0] == 200
    for method, path, query, fqname in (
            ("GET", ns("actions", f"{package}/{action}", "guest"), "code=maybe", f"guest/{package}"),
            ("GET", ns("actions", f"{package}/", "guest"), "limit=many", f"guest/{package}"),
            ("PUT", ns("actions", f"{package}/{action}", "guest"), "overwrite=maybe", f"guest/{package}/{action}"),
            ("DELETE", ns("packages", package, "guest"), "force=maybe", f"guest/{package}"),
            ("POST", ns("actions", f"{package}/{action}", "guest"), "blocking=maybe", f"guest/{package}"),
            ("POST", ns("actions", f"{package}/{action}", "guest"), "result=maybe", f"guest/{package}"),
            ("POST", ns("actions", f"{package}/{action}", "guest"), "timeout=0", f"guest/{package}")):
        body = {"exec": JS} if method == "PUT" else None
        status, answer = await call(stranger, method, f"{path}?{query}", body)
        assert (status, answer["error"]) == (403, forbidden(fqname)), (method, path, query, answer)
        status, answer = await call(owner, method, f"{path.replace('/guest/', '/_/')}?{query}", body)
        assert status == 400 and "was malformed" in answer["error"], (method, path, query, answer)
    assert (await call(owner, "GET", ns("packages", package)))[0] == 200
