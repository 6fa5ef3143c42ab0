"""The Serverless Framework with its OpenWhisk provider plugin (npm serverless@2 and serverless-openwhisk, installed by
.ci/deps.sh into .ci/work/serverless), unchanged, against the real server. `serverless deploy` of a service with
Node.js and Python functions, a package with parameters, a sequence, a web action, an API route, a trigger and its
rule; then the plugin's invoke and logs commands, the route and the trigger called over HTTP, and `serverless
remove`, after which nothing of the service is left."""

from __future__ import annotations

import json
import os
import shutil
import uuid as uuids
from pathlib import Path
from typing import Any

import aiohttp

from tests.clients.command import run
from tests.conftest import missing
from tests.support.http import record_of
from tests.support.processes import GUEST_AUTH, GUEST_UUID, basic_auth

PLUGINS = Path(__file__).resolve().parents[2] / ".ci" / "work" / "serverless" / "node_modules"
SERVERLESS = PLUGINS / ".bin" / "serverless"

HANDLER_JS = """\
exports.hello = params => ({ payload: 'Hello, ' + (params.name || 'World') });
exports.greet = params => {
  console.log('greeting', params.name);
  return { msg: params.greeting + ' ' + (params.name || 'you'), pkg: params.pkgparam };
};
"""
MAIN_PY = "def main(args):\n    return {'py': args.get('n', 0) + 1}\n"


def service_yml(service: str) -> str:
    return f"""\
service: {service}
frameworkVersion: '2'
configValidationMode: off
provider:
  name: openwhisk
functions:
  hello:
    handler: handler.hello
    annotations:
      web-export: true
    events:
      - http: GET /hello
  greet:
    handler: handler.greet
    name: {service}-pkg/greet
    parameters:
      greeting: Hi
    events:
      - trigger: {service}-fire
  pyfn:
    handler: main.main
    runtime: python:3
  chain:
    sequence:
      - hello
      - pyfn
resources:
  apigw:
    basepath: /{service}
  packages:
    {service}-pkg:
      parameters:
        pkgparam: 7
  triggers:
    {service}-fire: {{}}
plugins:
  localPath: {PLUGINS}
  modules:
    - serverless-openwhisk
"""


async def serverless(folder: Path, whisk_url: str, *argv: str) -> str:
    """Run the framework's command line in the service's folder; what it printed (it must exit 0)."""
    env = dict(os.environ) | {"HOME": str(folder / "home"), "OW_APIHOST": whisk_url, "OW_AUTH": GUEST_AUTH,
                              "SLS_TELEMETRY_DISABLED": "1", "SLS_NOTIFICATIONS_MODE": "off",
                              "SLS_DEPRECATION_DISABLE": "*"}
    return await run(str(SERVERLESS), *argv, cwd=folder, env=env)


def last_json(output: str) -> Any:
    """The JSON document `serverless invoke` prints last (after the framework's own warnings)."""
    return json.loads(output[output.rindex("\n{"):] if "\n{" in output else output[output.index("{"):])


async def test_a_service_deploys_runs_and_is_removed(whisk_url: str, tmp_path: Path) -> None:
    if shutil.which("node") is None or not SERVERLESS.exists():
        missing("node and serverless with serverless-openwhisk (bash .ci/deps.sh)")
    service = f"sls{uuids.uuid4().hex[:8]}"
    (tmp_path / "home").mkdir()
    (tmp_path / "serverless.yml").write_text(service_yml(service))
    (tmp_path / "handler.js").write_text(HANDLER_JS)
    (tmp_path / "main.py").write_text(MAIN_PY)
    (tmp_path / "package.json").write_text(json.dumps({"name": service, "version": "1.0.0"}))

    said = await serverless(tmp_path, whisk_url, "deploy")
    assert "Deployment successful!" in said, said
    uuid, key = GUEST_AUTH.split(":")
    async with aiohttp.ClientSession(base_url=whisk_url, headers=basic_auth(uuid, key)) as client:
        async def get(path: str) -> Any:
            async with client.get(f"/api/v1/namespaces/_/{path}") as r:
                assert r.status == 200, await r.text()
                return await r.json()

        pyfn = await get(f"actions/{service}-dev-pyfn")
        assert pyfn["exec"]["kind"] == "python:3.11"
        package = await get(f"packages/{service}-pkg")
        assert package["parameters"] == [{"key": "pkgparam", "value": 7}]
        assert [a["name"] for a in package["actions"]] == ["greet"]

        # the plugin's own invoke, of a function and of the sequence (hello's payload is pyfn's argument)
        assert last_json(await serverless(tmp_path, whisk_url, "invoke", "-f", "hello", "-d", '{"name": "sls"}')) \
            == {"payload": "Hello, sls"}
        assert last_json(await serverless(tmp_path, whisk_url, "invoke", "-f", "chain", "-d", '{"n": 1}')) \
            == {"py": 1}

        # The API route, without credentials. The plugin gives a routed function a web secret
        # (require-whisk-auth), so that only the route reaches it: the web action itself wants that secret.
        hello = await get(f"actions/{service}-dev-hello")
        secret = {a["key"]: a["value"] for a in hello["annotations"]}["require-whisk-auth"]
        web = f"{whisk_url}/api/v1/web/guest/default/{service}-dev-hello.json"
        async with aiohttp.ClientSession() as anonymous:
            async with anonymous.get(f"{whisk_url}/api/{GUEST_UUID}/{service}/hello", params={"name": "route"}) as r:
                assert r.status == 200 and await r.json() == {"payload": "Hello, route"}
            async with anonymous.get(web) as r:
                assert r.status == 401, await r.text()
            async with anonymous.get(web, headers={"X-Require-Whisk-Auth": str(secret)}) as r:
                assert r.status == 200 and await r.json() == {"payload": "Hello, World"}

        # The trigger fires the rule's action with the payload and the package's parameters. (The plugin's trigger
        # `parameters` never reach the server: it puts them where the npm client does not look.)
        async with client.post(f"/api/v1/namespaces/_/triggers/{service}-fire", json={"name": "trigger"}) as r:
            assert r.status == 202, await r.text()
            fired = (await r.json())["activationId"]
        trigger_record = await record_of(client, fired)
        ran = json.loads(trigger_record["logs"][0])
        assert ran["success"] is True and ran["action"].endswith(f"{service}-pkg/greet"), ran
        greet = await record_of(client, ran["activationId"], complete=True)
        assert greet["response"]["result"] == {"msg": "Hi trigger", "pkg": 7}

        # the plugin's logs command finds that activation's output
        assert "greeting trigger" in await serverless(tmp_path, whisk_url, "logs", "-f", "greet")

        # remove takes everything away again: functions, package, trigger, rule and the API route
        rule = next(iter(greet_rules := (await get(f"triggers/{service}-fire"))["rules"]))
        assert greet_rules[rule]["action"]["name"] == "greet"
        said = await serverless(tmp_path, whisk_url, "remove")
        assert "Resource removal successful!" in said, said
        for path in (f"actions/{service}-dev-hello", f"actions/{service}-dev-pyfn", f"actions/{service}-dev-chain",
                     f"actions/{service}-pkg/greet", f"packages/{service}-pkg", f"triggers/{service}-fire",
                     f"rules/{rule.split('/')[-1]}"):
            async with client.get(f"/api/v1/namespaces/_/{path}") as r:
                assert r.status == 404, (path, r.status)
        async with client.get(f"{whisk_url}/api/{GUEST_UUID}/{service}/hello") as r:
            assert r.status == 404, r.status
