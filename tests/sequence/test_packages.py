"""Packages in depth over real HTTP (docs/openwhisk.md §1.2, §1.9, §3.1): bindings merge parameters under the action's,
public packages are invocable from other namespaces directly and through bindings, 403 versus 404, and activations run
through a binding carry the `binding` annotation (plain actions, sequences and trigger-fired rules)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest_asyncio

from tests.api.support import Deployment, basic, sqlite_deployment
from tests.support.processes import GUEST_AUTH
from tests.web.support import (NODE_PRELUDE, PY_ECHO, PY_INC, annotations, call, invoke, put, put_action, record_of,
                               run_node, unique)


async def fired_rule(session: aiohttp.ClientSession, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Fire a new trigger whose one rule runs `action` (in the caller's namespace); that rule's line of the trigger's
    record."""
    trigger, rule = unique("t"), unique("r")
    await put(session, "triggers", trigger, {})
    await put(session, "rules", rule, {"trigger": f"/_/{trigger}", "action": f"/_/{action}"})
    status, fired = await call(session, "POST", f"/api/v1/namespaces/_/triggers/{trigger}", payload)
    assert status == 202
    (line,) = map(json.loads, (await record_of(session, fired["activationId"]))["logs"])
    return line


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def deployment() -> AsyncIterator[Deployment]:
    async with sqlite_deployment() as d:
        yield d


@pytest_asyncio.fixture(loop_scope="session")
async def owner(deployment: Deployment) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=deployment.url, headers=basic(GUEST_AUTH)) as session:
        yield session


@pytest_asyncio.fixture(loop_scope="session")
async def stranger(deployment: Deployment) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=deployment.url, headers=basic(deployment.other_auth)) as session:
        yield session


def params(**values: object) -> list[dict[str, object]]:
    return [{"key": k, "value": v} for k, v in values.items()]


async def test_binding_parameters_merge_under_the_action_and_the_payload(owner: aiohttp.ClientSession) -> None:
    pkg, bind = unique("pkg"), unique("bind")
    await put(owner, "packages", pkg, {"parameters": params(a="package", b="package", c="package")})
    await put(owner, "packages", bind, {"binding": {"namespace": "_", "name": pkg},
                                        "parameters": params(b="binding", c="binding", d="binding")})
    await put_action(owner, f"{pkg}/echo", parameters=params(c="action", d="action", e="action"))
    status, body, _ = await invoke(owner, f"{bind}/echo", {"e": "payload"}, blocking="true")
    assert status == 200, body
    assert body["response"]["result"] == {"a": "package", "b": "binding", "c": "action", "d": "action",
                                          "e": "payload"}
    notes = annotations(body)
    assert notes["binding"] == f"guest/{bind}" and notes["path"] == f"guest/{pkg}/echo"
    status, body, _ = await invoke(owner, f"{pkg}/echo", {}, blocking="true")
    assert "binding" not in annotations(body) and body["response"]["result"]["b"] == "package"


async def test_public_packages_through_other_namespaces(owner: aiohttp.ClientSession,
                                                        stranger: aiohttp.ClientSession,
                                                        deployment: Deployment) -> None:
    public, private, bind = unique("pub"), unique("priv"), unique("bind")
    await put(owner, "packages", public, {"publish": True, "parameters": params(p="public")})
    await put(owner, "packages", private, {})
    await put_action(owner, f"{public}/echo")
    await put_action(owner, f"{private}/echo")
    # Directly: a published package's actions may be run by anyone; the invoker's namespace owns the record.
    status, body, _ = await invoke(stranger, f"{public}/echo", {"q": 1}, namespace="guest", blocking="true")
    assert status == 200 and body["response"]["result"] == {"p": "public", "q": 1}
    assert body["namespace"] == deployment.other_namespace
    # Through the stranger's own binding, with the binding's parameters over the package's.
    await put(stranger, "packages", bind, {"binding": {"namespace": "guest", "name": public},
                                           "parameters": params(p="binding")})
    status, body, _ = await invoke(stranger, f"{bind}/echo", {}, blocking="true")
    assert status == 200 and body["response"]["result"] == {"p": "binding"}
    notes = annotations(body)
    assert notes["binding"] == f"{deployment.other_namespace}/{bind}" and notes["path"] == f"guest/{public}/echo"
    # GET of the metadata through the binding names it (WhiskActionMetaData); the whole action (code=true, the
    # default: WhiskAction) has no `binding` field, nor has either read directly.
    for query, named in (("", None), ("?code=true", None), ("?code=false", f"{deployment.other_namespace}/{bind}")):
        status, got = await call(stranger, "GET", f"/api/v1/namespaces/_/actions/{bind}/echo{query}")
        assert status == 200 and got.get("binding") == named, (query, got)
        assert got["namespace"] == f"guest/{public}" and got["parameters"] == [{"key": "p", "value": "binding"}]
    status, got = await call(stranger, "GET", f"/api/v1/namespaces/guest/actions/{public}/echo")
    assert status == 200 and "binding" not in got
    # 403 for what exists but is not shared, and for what is absent elsewhere (nothing leaks); 404 for one's own.
    status, body, _ = await invoke(stranger, f"{private}/echo", {}, namespace="guest", blocking="true")
    assert status == 403 and body["error"] == f"The supplied authentication is not authorized to access " \
                                              f"'guest/{private}'."
    status, body, _ = await invoke(stranger, f"{unique('none')}/echo", {}, namespace="guest")
    assert status == 403
    status, body, _ = await invoke(stranger, unique("plain"), {}, namespace="guest")
    assert status == 403
    status, body, _ = await invoke(stranger, f"{public}/{unique('missing')}", {}, namespace="guest")
    assert status == 404
    status, body, _ = await invoke(owner, f"{unique('none')}/echo", {})
    assert status == 404
    status, body, _ = await invoke(stranger, f"{bind}/{unique('missing')}", {})
    assert status == 404


async def test_sequences_and_rules_through_bindings(owner: aiohttp.ClientSession,
                                                    stranger: aiohttp.ClientSession,
                                                    deployment: Deployment) -> None:
    public, bind, private = unique("pub"), unique("bind"), unique("priv")
    await put(owner, "packages", public, {"publish": True})
    await put(owner, "packages", private, {})
    await put_action(owner, f"{public}/inc", PY_INC)
    await put_action(owner, f"{private}/inc", PY_INC)
    other = deployment.other_namespace
    await put(stranger, "packages", bind, {"binding": {"namespace": "guest", "name": public}})
    seq = unique("seq")
    await put(stranger, "actions", seq, {"exec": {"kind": "sequence", "components": [
        f"/guest/{public}/inc", f"/_/{bind}/inc"]}})
    status, body, _ = await invoke(stranger, seq, {"n": 0}, blocking="true")
    assert status == 200 and body["response"]["result"] == {"n": 2}
    second = await record_of(stranger, body["logs"][1])
    assert annotations(second)["binding"] == f"{other}/{bind}" and second["namespace"] == other
    # A sequence in a package reached through a binding carries the binding too.
    await put(owner, "actions", f"{public}/twice", {"exec": {"kind": "sequence", "components": [
        f"/guest/{public}/inc", f"/guest/{public}/inc"]}})
    status, body, _ = await invoke(stranger, f"{bind}/twice", {"n": 5}, blocking="true")
    assert status == 200 and body["response"]["result"] == {"n": 7}
    assert annotations(body)["binding"] == f"{other}/{bind}" and annotations(body)["path"] == f"guest/{public}/twice"
    # A rule may fire an action through a binding.
    line = await fired_rule(stranger, f"{bind}/inc", {"n": 41})
    run = await record_of(stranger, line["activationId"])
    assert run["response"]["result"] == {"n": 42} and annotations(run)["binding"] == f"{other}/{bind}"
    # The owner's private package stays closed to sequences of others.
    status, body = await call(stranger, "PUT", f"/api/v1/namespaces/_/actions/{unique('seq')}", {
        "exec": {"kind": "sequence", "components": [f"/guest/{private}/inc"]}})
    assert status == 403


async def test_a_sequence_whose_component_is_no_longer_shared_is_refused_before_it_runs(
        owner: aiohttp.ClientSession, stranger: aiohttp.ClientSession) -> None:
    """OpenWhisk's invoke route checks ACTIVATE on every component of a sequence first (its entitlement suite,
    'not allow invoke an action sequence with more than one component from package after entitlement change'):
    a 403 and nothing run, rather than the first component run and then an application error."""
    first, second, seq = unique("pubA"), unique("pubB"), unique("seq")
    for pkg in (first, second):
        await put(owner, "packages", pkg, {"publish": True})
        await put_action(owner, f"{pkg}/inc", PY_INC)
    await put(stranger, "actions", seq, {"exec": {"kind": "sequence", "components": [
        f"/guest/{first}/inc", f"/guest/{second}/inc"]}})
    status, body, _ = await invoke(stranger, seq, {"n": 0}, blocking="true")
    assert status == 200 and body["response"]["result"] == {"n": 2}
    for component in body["logs"]:          # stored after their results were handed on: counted below
        await record_of(stranger, component)
    await put(owner, "packages", second, {"publish": False})
    refused = f"The supplied authentication is not authorized to access 'guest/{second}'."
    for blocking in ("true", "false"):
        status, body, _ = await invoke(stranger, seq, {"n": 0}, blocking=blocking)
        assert (status, body["error"]) == (403, refused), body
    line = await fired_rule(stranger, seq, {"n": 0})
    assert line["statusCode"] == 1 and line["error"] == refused and "activationId" not in line
    # Only the first, allowed invoke ran anything: one record of the first component, one of the sequence.
    for name in (f"{first}/inc", seq):
        status, listed = await call(stranger, "GET", f"/api/v1/namespaces/_/activations?name={name}")
        assert status == 200 and len(listed) == 1, (name, listed)


async def test_npm_client_binds_a_package_and_invokes_through_it(deployment: Deployment) -> None:
    pkg, bind = unique("pkg"), unique("bind")
    script = NODE_PRELUDE + f"""
    done((async () => {{
      await ow.packages.create({{name: '{pkg}', package: {{parameters: [{{key: 'from', value: 'package'}}]}}}});
      await ow.actions.create({{name: '{pkg}/echo',
                               action: {{exec: {{kind: 'python:3', code: {json.dumps(PY_ECHO)}}}}}}});
      const binding = await ow.packages.create({{name: '{bind}', package: {{
        binding: {{namespace: 'guest', name: '{pkg}'}}, parameters: [{{key: 'from', value: 'binding'}}]}}}});
      const result = await ow.actions.invoke({{name: '{bind}/echo', blocking: true, result: true, params: {{q: 1}}}});
      const full = await ow.actions.invoke({{name: '{bind}/echo', blocking: true}});
      return {{binding, result, full}};
    }})());
    """
    out = await run_node(script, WHISK_URL=deployment.url, WHISK_KEY=GUEST_AUTH)
    assert out["binding"]["binding"] == {"namespace": "guest", "name": pkg}
    assert out["result"] == {"from": "binding", "q": 1}
    assert annotations(out["full"])["binding"] == f"guest/{bind}"


async def test_a_binding_that_leads_to_another_binding_is_followed_to_the_end(owner: aiohttp.ClientSession) -> None:
    # A binding to a binding cannot be created, but a package deleted and recreated as a binding makes one: OpenWhisk
    # follows the chain (`resolveBinding` recurses), each binding's parameters over those of what it leads to.
    root, middle, outer = unique("root"), unique("mid"), unique("out")
    await put(owner, "packages", root, {"parameters": params(c="root", x="root")})
    await put_action(owner, f"{root}/echo")
    await put(owner, "packages", middle, {})
    await put(owner, "packages", outer, {"binding": {"namespace": "_", "name": middle},
                                         "parameters": params(b="outer", x="outer")})
    assert (await call(owner, "DELETE", f"/api/v1/namespaces/_/packages/{middle}"))[0] == 200
    await put(owner, "packages", middle, {"binding": {"namespace": "_", "name": root},
                                          "parameters": params(a="middle", x="middle")})

    status, body, _ = await invoke(owner, f"{outer}/echo", {}, blocking="true")
    assert status == 200, body
    assert body["response"]["result"] == {"a": "middle", "b": "outer", "c": "root", "x": "outer"}
    notes = annotations(body)
    assert notes["binding"] == f"guest/{outer}" and notes["path"] == f"guest/{root}/echo"
    status, got = await call(owner, "GET", f"/api/v1/namespaces/_/actions/{outer}/echo")
    assert status == 200 and got["namespace"] == f"guest/{root}", got
    status, listed = await call(owner, "GET", f"/api/v1/namespaces/_/actions/{outer}/")
    assert status == 200 and [a["name"] for a in listed] == ["echo"], listed
    # The package's GET shows, as OpenWhisk's mergePackageWithBinding does, the last binding before the package.
    status, got = await call(owner, "GET", f"/api/v1/namespaces/_/packages/{outer}")
    assert status == 200 and got["name"] == middle and [a["name"] for a in got["actions"]] == ["echo"], got


async def test_a_nested_sequence_runs_its_owners_components_unchecked(owner: aiohttp.ClientSession,
                                                                      stranger: aiohttp.ClientSession) -> None:
    # OpenWhisk checks a sequence's own components before it runs and nothing while it runs
    # (SequenceActions.invokeNextAction only resolves): a public sequence may use its owner's private action when a
    # caller's sequence nests it, though the caller may not name that action itself.
    public, private, seq = unique("pub"), unique("priv"), unique("seq")
    await put(owner, "packages", public, {"publish": True})
    await put(owner, "packages", private, {})
    await put_action(owner, f"{private}/inc", PY_INC)
    await put(owner, "actions", f"{public}/wrapped", {"exec": {"kind": "sequence", "components": [
        f"/guest/{private}/inc"]}})
    await put(stranger, "actions", seq, {"exec": {"kind": "sequence", "components": [f"/guest/{public}/wrapped"]}})
    status, body, _ = await invoke(stranger, seq, {"n": 1}, blocking="true")
    assert status == 200 and body["response"]["result"] == {"n": 2}, body
    status, body, _ = await invoke(stranger, f"{public}/wrapped", {"n": 1}, namespace="guest", blocking="true")
    assert status == 403, body
