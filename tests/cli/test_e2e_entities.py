"""The client end to end against the session's whisk server: create/get/list/update/delete of every entity type,
the `ok:` lines, the JSON, the tables, and the exit codes of HTTP errors (status mod 256)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.cli.conftest import Wsk, unique

USAGE = "Run 'whisk --help' for usage.\n"
TID = r"\(code \w+\)"


def body(out: str, header: str) -> object:
    first, _, rest = out.partition("\n")
    assert first == header
    return json.loads(rest)


def keys(value: dict) -> list[str]:
    return list(value)


async def test_action_lifecycle(wsk: Wsk, echo_js: Path, tmp_path: Path, whisk_url: str) -> None:
    name = unique("act")
    ran = await wsk("action", "create", name, str(echo_js), "-p", "name", "Ada", "-a", "description", "says hi")
    assert (ran.code, ran.out, ran.err) == (0, f"ok: created action {name}\n", "")

    again = await wsk("action", "create", name, str(echo_js))
    assert again.code == 153 and again.out == ""
    assert re.fullmatch(rf"error: Unable to create action '{name}': .+ {TID}\n", again.err.removesuffix(USAGE))

    got = await wsk("action", "get", name)
    action = body(got.out, f"ok: got action {name}")
    assert keys(action) == ["namespace", "name", "version", "exec", "annotations", "parameters", "limits",
                            "publish", "updated"]
    assert (action["namespace"], action["name"], action["version"]) == ("guest", name, "0.0.1")
    assert action["exec"]["kind"].startswith("nodejs:") and "code" not in action["exec"]
    assert action["parameters"] == [{"key": "name", "value": "Ada"}]
    assert {"key": "description", "value": "says hi"} in action["annotations"]

    field = await wsk("action", "get", name, "Limits")
    assert body(field.out, f"ok: got action {name}, displaying field Limits") == \
        {"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1}

    summary = await wsk("action", "get", name, "--summary")
    assert summary.out == f"action /guest/{name}: says hi\n   (parameters: *name)\n"

    url = await wsk("action", "get", name, "--url")
    assert url.out == f"ok: got action {name}\n{whisk_url}/api/v1/namespaces/guest/actions/{name}\n"

    saved = await wsk("action", "get", name, "--save")
    assert saved.out == f"ok: saved action code to {tmp_path / (name + '.js')}\n"
    assert (tmp_path / f"{name}.js").read_text() == echo_js.read_text()
    refused = await wsk("action", "get", name, "--save")
    assert refused.code == 2 and refused.err == f"error: The file '{name}.js' already exists\n{USAGE}"
    saved_as = await wsk("action", "get", name, "--save-as", "copy.js")
    assert saved_as.code == 0 and (tmp_path / "copy.js").read_text() == echo_js.read_text()

    listed = await wsk("action", "list", "--limit", "200")
    assert listed.lines()[0] == "actions"
    row = next(line for line in listed.lines() if line.startswith(f"/guest/{name} "))
    assert row == f"{'/guest/' + name:<70} private {action['exec']['kind']}"

    params = tmp_path / "params.json"
    params.write_text('{"from": "file", "n": 2}')
    updated = await wsk("action", "update", name, "-P", str(params), "-p", "n", "3", "--memory", "128")
    assert (updated.code, updated.out) == (0, f"ok: updated action {name}\n")
    after = body((await wsk("action", "get", name)).out, f"ok: got action {name}")
    assert after["version"] == "0.0.2" and after["limits"]["memory"] == 128 and after["limits"]["timeout"] == 60000
    assert after["parameters"] == [{"key": "from", "value": "file"}, {"key": "n", "value": 3}]
    assert {"key": "description", "value": "says hi"} in after["annotations"]   # kept: no -a, no code

    assert (await wsk("action", "update", name, "--web", "true")).code == 0
    web = body((await wsk("action", "get", name)).out, f"ok: got action {name}")
    annotations = {a["key"]: a["value"] for a in web["annotations"]}
    assert (annotations["web-export"], annotations["raw-http"], annotations["final"]) == (True, False, True)
    web_url = await wsk("action", "get", name, "--url")
    assert web_url.lines()[1] == f"{whisk_url}/api/v1/web/guest/default/{name}"

    deleted = await wsk("action", "delete", name)
    assert (deleted.code, deleted.out) == (0, f"ok: deleted action {name}\n")
    missing = await wsk("action", "get", name)
    assert (missing.code, missing.out) == (148, ""), missing
    assert re.fullmatch(rf"error: Unable to get action '{name}': .+ {TID}\n{re.escape(USAGE)}", missing.err)
    assert (await wsk("action", "delete", name)).code == 148


async def test_action_sequence_copy_and_kind(wsk: Wsk, echo_js: Path, tmp_path: Path) -> None:
    first, second, sequence, copy = unique("one"), unique("two"), unique("seq"), unique("copy")
    assert (await wsk("action", "create", first, str(echo_js))).code == 0
    script = tmp_path / "code.txt"
    script.write_text("function main() { return {}; }")
    unsupported = await wsk("action", "create", second, str(script))
    assert unsupported.code == 2
    assert unsupported.err == f"error: Invalid argument(s). '.txt' is not a supported action runtime\n{USAGE}"
    assert (await wsk("action", "create", second, str(script), "--kind", "nodejs:default")).code == 0

    made = await wsk("action", "create", sequence, "--sequence", f"{first},/guest/{second}")
    assert made.code == 0, made.err
    seq = body((await wsk("action", "get", sequence)).out, f"ok: got action {sequence}")
    assert seq["exec"]["kind"] == "sequence"

    copied = await wsk("action", "create", copy, first, "--copy")
    assert copied.code == 0, copied.err
    got = body((await wsk("action", "get", copy)).out, f"ok: got action {copy}")
    assert got["exec"]["kind"].startswith("nodejs:")

    missing_component = await wsk("action", "create", unique("seq"), "--sequence", unique("nothing"))
    assert missing_component.code == 144                     # 400: the component does not exist
    for name in (sequence, copy, first, second):
        assert (await wsk("action", "delete", name)).code == 0


async def test_package_lifecycle(wsk: Wsk, echo_js: Path) -> None:
    package, binding, inner = unique("pkg"), unique("bind"), "inner"
    created = await wsk("package", "create", package, "--shared", "yes", "-p", "color", "red",
                        "-a", "description", "colors")
    assert (created.code, created.out) == (0, f"ok: created package {package}\n")
    got = body((await wsk("package", "get", package)).out, f"ok: got package {package}")
    assert keys(got)[:4] == ["namespace", "name", "version", "publish"]
    assert got["publish"] is True and got["parameters"] == [{"key": "color", "value": "red"}]
    assert got["binding"] == {}
    assert (await wsk("package", "create", package)).code == 153

    assert (await wsk("action", "create", f"{package}/{inner}", str(echo_js))).out == \
        f"ok: created action {package}/{inner}\n"
    listed = await wsk("action", "list", package)
    assert listed.lines() == ["actions", f"{'/guest/' + package + '/' + inner:<70} private " +
                              listed.lines()[1].split()[-1]]
    summary = await wsk("package", "get", package, "-s")
    assert summary.out == (f"package /guest/{package}: colors\n   (parameters: *color)\n"
                           f" action /guest/{package}/{inner}\n   (parameters: none defined)\n")

    bound = await wsk("package", "bind", f"/guest/{package}", binding, "-p", "size", "L")
    assert (bound.code, bound.out) == (0, f"ok: created binding {binding}\n")
    got_binding = body((await wsk("package", "get", binding)).out, f"ok: got package {binding}")
    assert got_binding["binding"] == {"namespace": "guest", "name": package}

    updated = await wsk("package", "update", package, "--shared", "no")
    assert (updated.code, updated.out) == (0, f"ok: updated package {package}\n")
    rows = [line for line in (await wsk("package", "list", "/guest", "-l", "200")).lines()
            if line.split()[0] in (f"/guest/{package}", f"/guest/{binding}")]
    assert sorted(rows) == sorted([f"{'/guest/' + package:<70} private", f"{'/guest/' + binding:<70} private"])

    not_empty = await wsk("package", "delete", package)
    assert not_empty.code == 153 and f"error: Unable to delete package '{package}': " in not_empty.err
    assert (await wsk("package", "delete", binding)).code == 0
    assert (await wsk("action", "delete", f"{package}/{inner}")).code == 0
    assert (await wsk("package", "delete", package)).out == f"ok: deleted package {package}\n"
    gone = await wsk("package", "get", package)
    assert gone.code == 148 and gone.err.startswith(f"error: Unable to get package '{package}': ")


async def test_package_refresh_fails_as_wsk_reports_it(wsk: Wsk) -> None:
    # A legacy command: neither OpenWhisk's controller nor whisk has the route, so the POST's error is the answer.
    refreshed = await wsk("package", "refresh")
    assert refreshed.code == 149 and refreshed.out == ""
    assert re.fullmatch(rf"error: Package refresh for namespace '_' failed: .+ {TID}\n", refreshed.err), refreshed.err
    named = await wsk("package", "refresh", "/guest")
    assert named.code == 149 and named.err.startswith("error: Package refresh for namespace 'guest' failed: ")
    extra = await wsk("package", "refresh", "/guest/pkg")
    assert extra.code == 1 and "An entity name, 'pkg', was provided instead of a namespace." in extra.err


async def test_trigger_lifecycle(wsk: Wsk) -> None:
    name = unique("trig")
    created = await wsk("trigger", "create", name, "-p", "level", "1", "-a", "note", "n")
    assert (created.code, created.out) == (0, f"ok: created trigger {name}\n")
    trigger = body((await wsk("trigger", "get", name)).out, f"ok: got trigger {name}")
    assert keys(trigger)[:3] == ["namespace", "name", "version"]
    assert trigger["parameters"] == [{"key": "level", "value": 1}] and trigger["limits"] == {}
    field = await wsk("trigger", "get", name, "parameters")
    assert body(field.out, f"ok: got trigger {name}, displaying field parameters") == [{"key": "level", "value": 1}]
    assert (await wsk("trigger", "get", name, "--summary")).out == \
        f"trigger /guest/{name}: Returns a result based on parameter level\n   (parameters: *level)\n"
    assert (await wsk("trigger", "create", name)).code == 153

    updated = await wsk("trigger", "update", name, "-p", "level", "2")
    assert (updated.code, updated.out) == (0, f"ok: updated trigger {name}\n")
    trigger = body((await wsk("trigger", "get", name)).out, f"ok: got trigger {name}")
    assert trigger["parameters"] == [{"key": "level", "value": 2}]

    fresh = unique("trig")                                       # update of a missing trigger creates it
    assert (await wsk("trigger", "update", fresh)).out == f"ok: created trigger {fresh}\n"
    listed = (await wsk("trigger", "list", "-l", "200")).lines()
    assert listed[0] == "triggers" and f"{'/guest/' + name:<70} private" in listed
    named = (await wsk("trigger", "list", "-n", "-l", "200")).lines()[1:]
    assert named == sorted(named, key=str.lower)

    for trigger_name in (name, fresh):
        assert (await wsk("trigger", "delete", trigger_name)).out == f"ok: deleted trigger {trigger_name}\n"
    gone = await wsk("trigger", "get", name)
    assert gone.code == 148 and gone.err.startswith(f"error: Unable to get trigger '{name}': ")
    assert (await wsk("trigger", "delete", name)).code == 148


async def test_rule_lifecycle(wsk: Wsk, echo_js: Path) -> None:
    rule, trigger, action, other = unique("rule"), unique("trig"), unique("act"), unique("act")
    assert (await wsk("trigger", "create", trigger)).code == 0
    for name in (action, other):
        assert (await wsk("action", "create", name, str(echo_js))).code == 0

    created = await wsk("rule", "create", rule, trigger, action)
    assert (created.code, created.out) == (0, f"ok: created rule {rule}\n")
    assert (await wsk("rule", "status", rule)).out == f"ok: rule {rule} is active\n"
    got = body((await wsk("rule", "get", rule)).out, f"ok: got rule {rule}")
    assert keys(got)[:4] == ["namespace", "name", "version", "status"]
    assert got["trigger"] == {"name": trigger, "path": "guest"} and got["action"] == {"name": action, "path": "guest"}
    assert (await wsk("rule", "get", rule, "-s")).out == f"rule /guest/{rule}\n   (status: active)\n"
    assert (await wsk("rule", "create", rule, trigger, action)).code == 153

    assert (await wsk("rule", "disable", rule)).out == f"ok: disabled rule {rule}\n"
    assert (await wsk("rule", "status", rule)).out == f"ok: rule {rule} is inactive\n"
    listed = (await wsk("rule", "list", "-l", "200")).lines()
    assert listed[0] == "rules" and f"{'/guest/' + rule:<70} {'private':<20} inactive" in listed
    assert (await wsk("rule", "enable", rule)).out == f"ok: enabled rule {rule}\n"

    updated = await wsk("rule", "update", rule, trigger, other)
    assert (updated.code, updated.out) == (0, f"ok: updated rule {rule}\n")
    assert body((await wsk("rule", "get", rule)).out, f"ok: got rule {rule}")["action"]["name"] == other

    deleted = await wsk("rule", "delete", rule, "--disable")
    assert (deleted.code, deleted.out) == (0, f"ok: deleted rule {rule}\n")
    gone = await wsk("rule", "get", rule)
    assert gone.code == 148 and gone.err.startswith(f"error: Unable to get rule '{rule}': ")
    no_trigger = await wsk("rule", "create", rule, unique("nothing"), action)
    assert no_trigger.code == 144 and no_trigger.err.startswith(f"error: Unable to create rule '{rule}': ")
    assert (await wsk("trigger", "delete", trigger)).code == 0
    for name in (action, other):
        assert (await wsk("action", "delete", name)).code == 0


async def test_namespaces_and_list(wsk: Wsk) -> None:
    assert (await wsk("namespace", "list")).out == "namespaces\nguest\n"
    trigger = unique("trig")
    assert (await wsk("trigger", "create", trigger)).code == 0
    for argv in (("namespace", "get"), ("list",), ("list", "-n"), ("namespace", "get", "/_")):
        ran = await wsk(*argv)
        assert ran.code == 0, ran.err
        lines = ran.lines()
        assert lines[0] == "Entities in namespace: default"
        headers = [line for line in lines if line in ("packages", "actions", "triggers", "rules")]
        assert headers == ["packages", "actions", "triggers", "rules"]
        assert f"{'/guest/' + trigger:<70} private" in lines
    assert (await wsk("trigger", "delete", trigger)).code == 0


async def test_http_errors_and_exit_codes(wsk: Wsk, echo_js: Path) -> None:
    bad_name = await wsk("action", "create", "bad$name", str(echo_js))
    assert bad_name.code == 144 and "error: Unable to create action 'bad$name': " in bad_name.err
    wrong_key = await wsk("action", "list", "--auth", "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:" + "x" * 64)
    assert wrong_key.code == 145
    assert wrong_key.err.startswith("error: Unable to obtain the list of actions for namespace 'default': ")
    other = await wsk("action", "list", "/whisk.system")
    assert other.code == 147 and other.err.startswith("error: Unable to obtain the list of actions")
    no_package = await wsk("action", "create", f"{unique('nopkg')}/x", str(echo_js))
    assert no_package.code == 148


async def test_verbose_prints_request_and_response(wsk: Wsk, whisk_url: str) -> None:
    ran = await wsk("-v", "trigger", "list", "--limit", "1")
    assert ran.code == 0
    assert f"REQUEST:\n[GET]\t{whisk_url}/api/v1/namespaces/_/triggers?limit=1&skip=0\n" in ran.out
    # headers as go-prettyjson prints them: sorted, 2-space indent
    assert "Req Headers\n{\n  \"Authorization\": [\n    \"Basic " in ran.out
    assert "Resp Headers\n{\n  \"" in ran.out and '  "Content-Type": [\n    "application/json' in ran.out
    # wsk's first response line has no newline of its own; Go holds header names in canonical form
    assert "RESPONSE:Got response with code 200\n" in ran.out and "Response body received:\n[" in ran.out
    assert '  "X-Request-Id": [\n' in ran.out and "X-Request-ID" not in ran.out
    assert "\ntriggers\n" in ran.out                          # the table follows the trace


async def test_verbose_request_bodies_as_wsk_prints_them(wsk: Wsk) -> None:
    """The encoder's newline stays (a blank line after the body); bodies over 1000 bytes are cut with a notice."""
    name = unique("verbose")
    small = await wsk("-v", "trigger", "create", name, "-p", "a", "1")
    assert f'Req Body\n{{"name":"{name}","parameters":[{{"key":"a","value":1}}]}}\n\nRESPONSE:Got response' in small.out
    big = await wsk("-v", "trigger", "update", name, "-p", "a", "x" * 1200)
    assert big.code == 0
    notice = "Body exceeds 1000 bytes and will be truncated\n"
    assert f"Req Body\n{notice}" in big.out
    request = big.out.split(f"Req Body\n{notice}", 1)[1].split("\n", 1)[0]
    assert len(request) == 1003 and request.endswith("x...")
    assert "Response body size is " in big.out and f"{notice}Response body received:\n" in big.out
    full = await wsk("-d", "trigger", "get", name)
    assert notice not in full.out and "x" * 1200 in full.out


async def test_property_get_reaches_the_server(wsk: Wsk, whisk_url: str) -> None:
    assert (await wsk("property", "get", "--namespace")).out == "whisk namespace\t\tguest\n"
    everything = await wsk("property", "get")
    assert everything.code == 0, everything.err
    lines = everything.lines()
    assert lines[0] == f"whisk API host\t\t{whisk_url}" and lines[2] == "whisk namespace\t\tguest"
    assert [line.split("\t")[0] for line in lines] == [
        "whisk API host", "whisk auth", "whisk namespace", "client cert", "Client key", "whisk API version",
        "whisk CLI version", "whisk API build", "whisk API build number"]
    assert "Unknown" not in everything.out
