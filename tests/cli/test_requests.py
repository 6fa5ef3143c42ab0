"""argv -> the REST request each command sends (built without sending it)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.cli.support import context
from whisk.cli import activations, names, packages, rules, triggers, web
from whisk.cli.actions import action_url, build_action
from whisk.cli.artifacts import build_exec, save_target
from whisk.cli.client import Call, entity_path, error_from, sorted_query
from whisk.cli.errors import CliError
from whisk.cli.invocation import invoke_call
from whisk.cli.wskprops import base_url


async def test_action_create_body_from_file_flags_and_params(tmp_path: Path) -> None:
    code = tmp_path / "hello.py"
    code.write_text("def main(args):\n    return args\n")
    ctx = context("action", "create", "pkg/hello", str(code), "-p", "name", "Ada", "-a", "description", "hi",
                  "--memory", "128", "-t", "3000", "--main", "main")
    qn, body = await build_action(ctx, update=False)
    assert qn.entity_name == "pkg/hello"
    assert body == {
        "namespace": "_", "name": "pkg/hello",
        "exec": {"kind": "python:default", "code": "def main(args):\n    return args\n", "main": "main"},
        "annotations": [{"key": "description", "value": "hi"}],
        "parameters": [{"key": "name", "value": "Ada"}],
        "limits": {"timeout": 3000, "memory": 128},
    }
    assert list(body) == ["namespace", "name", "exec", "annotations", "parameters", "limits"]


@pytest.mark.parametrize("file,kind", [("a.js", "nodejs:default"), ("a.swift", "swift:default"),
                                       ("a.php", "php:default"), ("a.rb", "ruby:default"), ("a.go", "go:default"),
                                       ("a.rs", "rust:default"), ("a.jar", "java:default")])
async def test_kind_from_extension(tmp_path: Path, file: str, kind: str) -> None:
    (tmp_path / file).write_bytes(b"x")
    exec_ = await build_exec(str(tmp_path / file), kind="", docker="", native=False, main="")
    assert exec_["kind"] == kind


async def test_zip_is_base64_and_needs_a_kind(tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    archive.write_bytes(b"PK\x03\x04binary\xff")
    with pytest.raises(CliError) as caught:
        await build_exec(str(archive), kind="", docker="", native=False, main="")
    assert caught.value.message == ("creating an action from a .zip artifact requires specifying the action kind "
                                    "explicitly") and caught.value.status == 2
    exec_ = await build_exec(str(archive), kind="python:3", docker="", native=False, main="")
    assert exec_ == {"kind": "python:3", "code": base64.b64encode(b"PK\x03\x04binary\xff").decode()}


async def test_exec_errors(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(CliError, match="^'.txt' is not a supported action runtime$"):
        await build_exec(str(tmp_path / "a.txt"), kind="", docker="", native=False, main="")
    with pytest.raises(CliError, match="^Java actions require --main"):
        await build_exec(str(tmp_path / "a.txt"), kind="java", docker="", native=False, main="")
    assert await build_exec(None, kind="", docker="me/img", native=False, main="") == {"kind": "blackbox",
                                                                                       "image": "me/img"}
    assert (await build_exec(str(tmp_path / "a.txt"), kind="", docker="", native=True, main=""))["image"] == \
        "openwhisk/dockerskeleton"


async def test_create_refusals() -> None:
    with pytest.raises(CliError) as caught:
        await build_action(context("action", "create", "a", "--kind", "k", "--docker", "i"), update=False)
    assert caught.value.status == 149
    with pytest.raises(CliError, match="^An action name and code artifact are required.$"):
        await build_action(context("action", "create", "a"), update=False)


async def test_sequence_components_are_fully_qualified() -> None:
    _, body = await build_action(context("action", "create", "s", "--sequence", "a,pkg/b,ns/p/c,/other/d"),
                                 update=False)
    assert body["exec"] == {"kind": "sequence", "components": ["/_/a", "/_/pkg/b", "/ns/p/c", "/other/d"]}


async def test_web_flag_on_create() -> None:
    ctx = context("action", "create", "w", "--docker", "img", "--web", "raw", "-a", "x", "1")
    _, body = await build_action(ctx, update=False)
    assert body["annotations"] == [{"key": "x", "value": 1}, {"key": "web-export", "value": True},
                                   {"key": "raw-http", "value": True}, {"key": "final", "value": True}]
    with pytest.raises(CliError) as caught:
        await build_action(context("action", "create", "w", "--docker", "i", "--web", "maybe"), update=False)
    assert caught.value.status == 2 and "Invalid argument 'maybe' for --web flag" in caught.value.message
    with pytest.raises(CliError, match="only valid when the --web option is enabled"):
        await build_action(context("action", "create", "w", "--docker", "i", "--web-secure", "s"), update=False)


def test_web_secure_rules() -> None:
    existing = {"annotations": [{"key": "web-export", "value": True}, {"key": "require-whisk-auth", "value": 42},
                                {"key": "description", "value": "d"}]}
    kept = web.apply(None, web=None, web_secure="true", existing=existing)
    assert web.value(kept.annotations, "require-whisk-auth") == 42          # an integer secret is kept
    dropped = web.apply(None, web=None, web_secure="false", existing=existing)
    assert dropped.del_annotations == ["require-whisk-auth"]
    assert web.value(dropped.annotations, "require-whisk-auth") is None
    fresh = web.apply(None, web="yes", web_secure="true", existing=None)
    secret = web.value(fresh.annotations, "require-whisk-auth")
    assert isinstance(secret, int) and 0 <= secret < 2 ** 53
    named = web.apply(None, web="true", web_secure="my-secret", existing=None)
    assert web.value(named.annotations, "require-whisk-auth") == "my-secret"
    carried = web.apply(None, web="true", web_secure=None, existing=existing)
    assert web.value(carried.annotations, "description") == "d"               # update keeps the old annotations
    assert web.value(carried.annotations, "require-whisk-auth") == 42


def test_action_urls() -> None:
    plain = {"namespace": "guest/pkg", "name": "a b", "annotations": []}
    assert action_url("http://h:1", "v1", plain, "pkg") == "http://h:1/api/v1/namespaces/guest/actions/pkg/a%20b"
    webby = {"namespace": "guest", "name": "w", "annotations": [{"key": "web-export", "value": True}]}
    assert action_url("h:1", "v1", webby, "") == "https://h:1/api/v1/web/guest/default/w"


@pytest.mark.parametrize("apihost,base", [
    ("http://h:1", "http://h:1/api"), ("https://h", "https://h/api"), ("h:1", "https://h:1/api"),
    ("127.0.0.1:3233", "https://127.0.0.1:3233/api"),
    # a host whose name starts with "http" is no URL either (Go's GetURLBase: no host parsed, https:// put first)
    ("httpd.local:3233", "https://httpd.local:3233/api"), ("httpbin", "https://httpbin/api"),
    # IPv6: in brackets as URLs name it, or without them as Go's client reads them (the port after the last colon);
    # without brackets the client failed with a traceback (yarl: "port can't be converted to integer")
    ("[::1]:3233", "https://[::1]:3233/api"), ("http://[::1]:3233", "http://[::1]:3233/api"),
    ("::1:3233", "https://[::1]:3233/api"), ("http://::1:3233", "http://[::1]:3233/api"),
    ("http://u:p@2001:db8::1:3233/x", "http://u:p@[2001:db8::1]:3233/x/api"),
])
def test_base_url_as_the_go_client_makes_it(apihost: str, base: str) -> None:
    assert base_url(apihost) == base


@pytest.mark.parametrize("base,url", [
    ("https://h:1/api", "https://h:1/blackbox.tar.gz"), ("http://h/api", "http://h/blackbox.tar.gz"),
    # an API host with a path (the client's requests go to /prefix/api/v1/...): the download is at the root
    ("https://h/prefix/api", "https://h/blackbox.tar.gz"), ("https://u:p@h:2/a/b/api", "https://u:p@h:2/blackbox.tar.gz"),
])
def test_sdk_downloads_from_the_api_hosts_root(base: str, url: str) -> None:
    """The Go client's SdkService.Install keeps the base URL's scheme, host and port only."""
    assert Call("GET", "blackbox.tar.gz", auth=False, root=True).url(base, "v1") == url


def test_invoke_and_list_calls() -> None:
    call = invoke_call(names.parse("/guest/pkg/x"), {"a": 1}, blocking=True, result=False)
    assert call.url("http://h/api", "v1") == \
        "http://h/api/v1/namespaces/guest/actions/pkg/x?blocking=true&result=false"
    assert call.body == {"a": 1} and call.method == "POST"
    listing = activations.list_call(limit=30, skip=0, name="pkg/a", since=5, upto=9, docs=True)
    assert listing.url("http://h/api", "v1") == \
        "http://h/api/v1/namespaces/_/activations?docs=true&limit=30&name=pkg%2Fa&since=5&skip=0&upto=9"
    assert activations.list_call(limit=0, skip=0).query == (("limit", "0"), ("skip", "0"))
    assert sorted_query(skip=0, limit=30) == (("limit", "30"), ("skip", "0"))
    assert Call("GET", entity_path("my ns", "triggers", "t")).url("b", "v1") == "b/v1/namespaces/my%20ns/triggers/t"


def test_rule_trigger_package_bodies() -> None:
    assert rules.rule_body(names.parse("r"), "t", "p/a") == {"name": "r", "status": "", "trigger": "/_/t",
                                                              "action": "/_/p/a"}
    assert rules.state_call(names.parse("r"), "active").body == {"status": "active", "trigger": None,
                                                                  "action": None}
    assert triggers.trigger_body(names.parse("t"), {"feed": "/_/f"}, None) == {
        "name": "t", "annotations": [{"key": "feed", "value": "/_/f"}]}
    ctx = context("package", "create", "p", "--shared", "YES", "-p", "k", "v")
    assert packages.package_body(ctx, names.parse("p")) == {"namespace": "_", "name": "p", "publish": True,
                                                            "parameters": [{"key": "k", "value": "v"}]}
    with pytest.raises(CliError, match="^Cannot use value 'maybe' for shared.$"):
        packages.package_body(context("package", "create", "p", "--shared", "maybe"), names.parse("p"))
    bind = context("package", "bind", "/whisk.system/utils", "mine", "-p", "x", "1")
    assert packages.bind_body(bind, names.parse("/whisk.system/utils")) == {
        "parameters": [{"key": "x", "value": 1}], "binding": {"namespace": "whisk.system", "name": "utils"}}


def test_http_errors_map_to_exit_codes() -> None:
    err = error_from(404, '{"error": "The requested resource does not exist.", "code": "abc"}')
    assert (err.message, err.status) == ("The requested resource does not exist. (code abc)", 148)
    assert error_from(409, '{"error":"resource already exists","code":"t"}').status == 153
    assert error_from(400, "{}").status == 144
    assert error_from(502, "<html>").message == "The connection failed, or timed out. (HTTP status code 502)"
    assert error_from(503, "").message == "Command failed due to an HTTP failure"
    assert error_from(503, "").status == 247
    assert error_from(401, '{"error":"x","code":"y"}').status == 145


def test_save_targets() -> None:
    assert save_target({"name": "a", "exec": {"kind": "nodejs:20", "code": "x", "binary": False}}, "") == \
        ("a.js", b"x")
    zipped = base64.b64encode(b"PK").decode()
    assert save_target({"name": "j", "exec": {"kind": "java:8", "code": zipped, "binary": True}}, "") == \
        ("j.jar", b"PK")
    assert save_target({"name": "z", "exec": {"kind": "python:3", "code": zipped, "binary": True}}, "o.bin") == \
        ("o.bin", b"PK")
    with pytest.raises(CliError, match="Cannot save Docker images"):
        save_target({"name": "d", "exec": {"kind": "blackbox", "image": "i", "binary": False}}, "")
    with pytest.raises(CliError, match="Cannot save action sequences"):
        save_target({"name": "s", "exec": {"kind": "sequence", "components": []}}, "")
