"""Every route of the REST API and the web route, called by the owner, by another namespace, with a wrong key and
with none, on one standalone server (process:// backend, SQLite store; the second namespace made by `whisk admin
user create`): the statuses OpenWhisk's entitlement gives (docs/openwhisk.md §1.2), and no answer to anyone but the
owner naming an entity or a value of the owner's that the request did not name itself."""

from __future__ import annotations

import base64
import json

import aiohttp

from tests.api.support import GUEST_AUTH, JS, Deployment, unique

WEB = [{"key": "web-export", "value": True}]
QUIET = {"kind": "nodejs:default", "code": "function main(args) { return {ok: true}; }"}   # echoes no parameter


def _auth(key: str | None) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(key.encode()).decode()} if key else {}


async def test_every_route_by_owner_stranger_wrong_key_and_none(deployment: Deployment) -> None:
    tag = unique("m")
    secret = f"secret-{tag}"
    action, private, public, binding = f"a{tag}", f"priv{tag}", f"pub{tag}", f"gb{tag}"
    trigger, rule, theirs = f"t{tag}", f"r{tag}", f"ob{tag}"
    hidden = [secret, action, private, binding, trigger, rule]          # the owner's, unless named in the path
    wrong = GUEST_AUTH.split(":")[0] + ":" + "x" * 64
    g = "/api/v1/namespaces/guest"
    async with aiohttp.ClientSession(base_url=deployment.url) as s:
        async def as_(key: str | None, method: str, path: str, body: object = None) -> tuple[int, str]:
            async with s.request(method, path, headers=_auth(key), json=body) as r:
                return r.status, await r.text()

        for path, body in ((f"{g}/actions/{action}", {"exec": JS, "parameters": [{"key": "s", "value": secret}]}),
                           (f"{g}/packages/{private}", {"parameters": [{"key": "s", "value": secret}]}),
                           (f"{g}/actions/{private}/a", {"exec": QUIET, "annotations": WEB}),
                           (f"{g}/packages/{public}", {"publish": True}),
                           (f"{g}/actions/{public}/a", {"exec": JS, "annotations": WEB}),
                           (f"{g}/actions/{public}/seq",
                            {"exec": {"kind": "sequence", "components": [f"/guest/{private}/a"]}}),
                           (f"{g}/packages/{binding}", {"binding": {"namespace": "guest", "name": private}}),
                           (f"{g}/triggers/{trigger}", {"parameters": [{"key": "s", "value": secret}]}),
                           (f"{g}/rules/{rule}", {"trigger": f"/_/{trigger}", "action": f"/_/{action}"})):
            assert (await as_(GUEST_AUTH, "PUT", path, body))[0] == 200, path
        status, text = await as_(GUEST_AUTH, "POST", f"{g}/actions/{action}?blocking=true", {})
        assert status == 200, text
        activation = json.loads(text)["activationId"]
        other = f"/api/v1/namespaces/{deployment.other_namespace}"
        assert (await as_(deployment.other_auth, "PUT", f"{other}/packages/{theirs}",
                          {"binding": {"namespace": "guest", "name": public}}))[0] == 200

        # (method, path, body, owner's status, another namespace's status); wrong key and none: 401.
        missing = "missing"
        rows: list[tuple[str, str, object, int, int]] = [
            *((("GET", f"{g}/{c}", None, 200, 403) for c in ("actions", "triggers", "rules", "activations", "limits"))),
            ("GET", f"{g}/packages", None, 200, 200),
            ("GET", f"{g}/actions/{action}", None, 200, 403),
            ("GET", f"{g}/actions/{missing}", None, 404, 403),
            ("GET", f"{g}/actions/{private}/a", None, 200, 403),
            ("GET", f"{g}/actions/{private}/{missing}", None, 404, 403),
            ("GET", f"{g}/actions/{missing}/a", None, 404, 403),
            ("GET", f"{g}/actions/{public}/a", None, 200, 200),
            ("GET", f"{g}/actions/{binding}/a", None, 200, 403),
            ("GET", f"{g}/actions/{private}/", None, 200, 403),
            ("GET", f"{g}/actions/{public}/", None, 200, 200),
            ("GET", f"{g}/actions/{binding}/", None, 200, 403),
            ("GET", f"{g}/packages/{private}", None, 200, 403),
            ("GET", f"{g}/packages/{public}", None, 200, 200),
            ("GET", f"{g}/packages/{binding}", None, 200, 403),
            ("GET", f"{g}/packages/{missing}", None, 404, 403),
            ("GET", f"{g}/triggers/{trigger}", None, 200, 403),
            ("GET", f"{g}/triggers/{missing}", None, 404, 403),
            ("GET", f"{g}/rules/{rule}", None, 200, 403),
            ("GET", f"{g}/rules/{missing}", None, 404, 403),
            *((("GET", f"{g}/activations/{activation}{part}", None, 200, 403) for part in ("", "/logs", "/result"))),
            ("GET", f"{g}/activations/{'0' * 32}", None, 404, 403),
            ("PUT", f"{g}/actions/{action}", {"exec": JS}, 409, 403),
            ("PUT", f"{g}/actions/{public}/a", {"exec": JS}, 409, 403),
            ("PUT", f"{g}/actions/{binding}/x", {"exec": JS}, 400, 403),
            ("PUT", f"{g}/packages/{public}", {}, 409, 403),
            ("PUT", f"{g}/triggers/{trigger}", {}, 409, 403),
            ("PUT", f"{g}/rules/{rule}", {"trigger": f"/_/{trigger}", "action": f"/_/{action}"}, 409, 403),
            *((("DELETE", f"{g}/{c}/{missing}", None, 404, 403) for c in ("actions", "packages", "triggers", "rules"))),
            ("DELETE", f"{g}/actions/{private}/{missing}", None, 404, 403),
            ("POST", f"{g}/actions/{action}", {}, 202, 403),
            ("POST", f"{g}/actions/{private}/a", {}, 202, 403),
            ("POST", f"{g}/actions/{binding}/a", {}, 202, 403),
            ("POST", f"{g}/actions/{public}/a", {}, 202, 202),
            ("POST", f"{g}/actions/{public}/seq", {}, 202, 403),
            ("POST", f"{g}/actions/{missing}", {}, 404, 403),
            ("POST", f"{g}/triggers/{trigger}", {}, 202, 403),
            ("POST", f"{g}/rules/{rule}", {"status": "active"}, 200, 403),
        ]
        for method, path, body, mine, stranger in rows:
            for who, key, expected in (("owner", GUEST_AUTH, mine), ("stranger", deployment.other_auth, stranger),
                                       ("wrong key", wrong, 401), ("no key", None, 401)):
                status, text = await as_(key, method, path, body)
                assert status == expected, (who, method, path, text)
                if who != "owner":
                    # A published sequence shows its components to every reader, and a refused run names them
                    # (OpenWhisk's `entitleReferencedEntitiesMetaData`).
                    named = path + (private if path.endswith("/seq") else "")
                    assert not [h for h in hidden if h in text and h not in named], (who, method, path, text)

        # The web route: credentials are optional and never change who the action runs as (its namespace's owner).
        for path, expected in ((f"/api/v1/web/guest/{private}/a.json", 200),      # exported: public by design
                               (f"/api/v1/web/guest/{public}/a.json", 200),
                               (f"/api/v1/web/guest/{public}/seq.json", 404),     # not exported
                               (f"/api/v1/web/guest/default/{action}.json", 404),
                               (f"/api/v1/web/guest/{missing}/a.json", 404),
                               (f"/api/v1/web/{deployment.other_namespace}/{theirs}/a.json", 200)):
            for key in (GUEST_AUTH, deployment.other_auth, wrong, None):
                status, text = await as_(key, "GET", path)
                assert status == expected, (key, path, text)
                assert secret not in text, (key, path, text)

        # Another namespace's own entities may not point at the owner's private ones.
        for path, body, refused in (
                (f"{other}/packages/{unique('b')}", {"binding": {"namespace": "guest", "name": private}}, private),
                (f"{other}/packages/{unique('b')}", {"binding": {"namespace": "guest", "name": binding}}, binding),
                (f"{other}/actions/{unique('s')}", {"exec": {"kind": "sequence", "components": [f"/guest/{action}"]}},
                 action),
                (f"{other}/rules/{unique('r')}", {"trigger": f"/guest/{trigger}", "action": f"/guest/{public}/a"},
                 trigger)):
            status, text = await as_(deployment.other_auth, "PUT", path, body)
            assert status == 403 and f"guest/{refused}'" in text, (path, text)
            assert secret not in text
