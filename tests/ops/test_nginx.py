"""whisk through Debian's nginx with config/nginx/: TLS, the HTTP redirect, X-Request-ID, the API's body sizes,
several controllers, nginx's own errors in OpenWhisk's shape, and the official npm client with `ignore_certs`."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import missing
from tests.support.nginx import NGINX, Nginx, authority, available, run_nginx
from tests.support.processes import GUEST_AUTH, free_port

pytestmark = pytest.mark.nginx

NPM_CLIENT = Path(__file__).with_name("npm_client.js")
OPENWHISK_NPM = Path(__file__).resolve().parents[1] / "node" / "node_modules" / "openwhisk"
ECHO = 'def main(args):\n    return {"echo": args.get("n", 0)}\n'


def _tls(server: Nginx) -> ssl.SSLContext:
    """Verify nginx's certificate for real: it is its own CA, and valid for 127.0.0.1."""
    return ssl.create_default_context(cafile=str(server.cert))


def _guest() -> dict[str, str]:
    uuid, key = GUEST_AUTH.split(":")
    return {"Authorization": aiohttp.encode_basic_auth(uuid, key)}


async def test_ping_over_verified_tls(nginx: Nginx) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{nginx.https_url}/ping", ssl=_tls(nginx)) as resp:
            assert resp.status == 200
            assert await resp.text() == "pong"
            assert resp.headers["Server"] == "nginx"            # server_tokens off: no version


async def test_http_redirects_to_https(nginx: Nginx) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{nginx.http_url}/api/v1?x=1", allow_redirects=False) as resp:
            assert resp.status == 301
            assert resp.headers["Location"] == f"https://127.0.0.1:{nginx.https_port}/api/v1?x=1"
        async with session.get(f"{nginx.http_url}/api/v1", ssl=_tls(nginx)) as resp:     # followed
            assert resp.status == 200
            assert str(resp.url).startswith(nginx.https_url)
            assert (await resp.json())["api_version"] == "1.0.0"


async def test_request_id_passed_through_or_generated(nginx: Nginx) -> None:
    given = f"ops{secrets.token_hex(8)}"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{nginx.https_url}/api/v1/namespaces/_/actions/no-such-action", ssl=_tls(nginx),
                               headers={"X-Request-ID": given} | _guest()) as resp:
            assert resp.status == 404
            assert resp.headers["X-Request-ID"] == given
            assert (await resp.json())["code"] == given          # the controller used it as the transaction id
        async with session.get(f"{nginx.https_url}/ping", ssl=_tls(nginx)) as resp:
            # No header from the client: nginx's $request_id (32 lower-case hex), which the controller echoes;
            # the controller's own ids are mixed-case alphanumerics.
            assert re.fullmatch(r"[0-9a-f]{32}", resp.headers["X-Request-ID"])
    access = (nginx.prefix / "access.log").read_text().splitlines()
    assert any(json.loads(line)["request_id"] == given for line in access)


async def test_create_get_and_invoke_an_action(nginx: Nginx) -> None:
    name = f"ops-nginx-{secrets.token_hex(4)}"
    url = f"{nginx.https_url}/api/v1/namespaces/_/actions/{name}"
    async with aiohttp.ClientSession(headers=_guest()) as session:
        async with session.put(url, json={"exec": {"kind": "python:3", "code": ECHO}}, ssl=_tls(nginx)) as resp:
            assert resp.status == 200, await resp.text()
        async with session.get(url, ssl=_tls(nginx)) as resp:
            assert resp.status == 200
            body = await resp.json()
            assert body["name"] == name and body["exec"]["code"] == ECHO
        async with session.post(url, params={"blocking": "true", "result": "true"}, json={"n": 7},
                                ssl=_tls(nginx)) as resp:
            assert resp.status == 200, await resp.text()
            assert await resp.json() == {"echo": 7}
        async with session.delete(url, ssl=_tls(nginx)) as resp:
            assert resp.status == 200


async def test_action_code_larger_than_nginx_default_body_limit(nginx: Nginx) -> None:
    # nginx's default client_max_body_size is 1 MB; action code may be up to 48 MB (docs/openwhisk.md §8).
    name = f"ops-big-{secrets.token_hex(4)}"
    padding = "# " + "x" * 78 + "\n"
    code = ECHO + padding * (3 * 1024 * 1024 // len(padding))
    url = f"{nginx.https_url}/api/v1/namespaces/_/actions/{name}"
    async with aiohttp.ClientSession(headers=_guest()) as session:
        async with session.put(url, json={"exec": {"kind": "python:3", "code": code}}, ssl=_tls(nginx)) as resp:
            assert resp.status == 200, (await resp.text())[:300]
        async with session.delete(url, ssl=_tls(nginx)) as resp:
            assert resp.status == 200


async def test_payload_limit_answered_by_the_controller(nginx: Nginx) -> None:
    # Over 1 MB of invoke payload passes nginx and gets OpenWhisk's own 413 from the controller.
    url = f"{nginx.https_url}/api/v1/namespaces/_/actions/anything"
    async with aiohttp.ClientSession(headers=_guest()) as session:
        async with session.post(url, json={"big": "y" * (1024 * 1024 + 10)}, ssl=_tls(nginx)) as resp:
            assert resp.status == 413
            body = await resp.json()
            assert body["error"].startswith("Request larger than allowed:"), body


async def test_several_controllers_one_down(whisk_url: str) -> None:
    if not available():
        missing("nginx")
    down = f"127.0.0.1:{free_port()}"                       # nothing listens there
    async with run_nginx([down, authority(whisk_url)]) as server:
        async with aiohttp.ClientSession() as session:
            for _ in range(6):
                async with session.get(f"{server.https_url}/ping", ssl=_tls(server)) as resp:
                    assert resp.status == 200
        assert "Connection refused" in server.error_log()   # the dead one was tried, and skipped


async def test_no_controller_answers_in_openwhisk_shape() -> None:
    if not available():
        missing("nginx")
    async with run_nginx([f"127.0.0.1:{free_port()}"], ready_path=None) as server:
        async with aiohttp.ClientSession() as session:
            # nginx starts listening a moment after its process does.
            deadline = asyncio.get_running_loop().time() + 10
            while True:
                try:
                    async with session.get(f"{server.https_url}/ping", ssl=_tls(server),
                                           headers={"X-Request-ID": "nobody-home"}) as resp:
                        assert resp.status == 502
                        assert resp.headers["X-Request-ID"] == "nobody-home"
                        assert resp.headers["Access-Control-Allow-Origin"] == "*"      # a browser can read it
                        assert resp.content_type == "application/json"
                        assert await resp.json() == {"error": "No controller answered the request.",
                                                     "code": "nobody-home"}
                        return
                except aiohttp.ClientConnectorError:
                    if asyncio.get_running_loop().time() > deadline:
                        raise
                    await asyncio.sleep(0.05)


async def _raw_tls(server: Nginx, request: bytes, *, tls: bool = True) -> tuple[int, dict[str, str], bytes]:
    """One request as raw bytes on its own connection, read until nginx closes it: (status, headers, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.https_port,
                                                   ssl=_tls(server) if tls else None)
    try:
        writer.write(request)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split(" ")[1]), headers, body


async def test_requests_nginx_refuses_are_answered_in_openwhisk_shape(nginx: Nginx) -> None:
    """What nginx's own parser refuses never reaches a controller: nginx answers it, as whisk would
    (api/early_errors.py), in JSON with the request id as its code, and closes the connection."""
    host = b"Host: 127.0.0.1\r\n"
    cases = [
        (b"GARBAGE\r\n\r\n", 400, "Illegal request"),
        (b"GET /api/v1 HTTP/1.1\r\n" + host + b"Bad Header\r\n\r\n", 400, "Illegal request"),
        (b"POST /api/v1 HTTP/1.1\r\n" + host + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400,
         "Illegal request"),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + host + b"\r\n", 414,
         "URI length exceeds the configured limit of 8192 characters"),
        (b"GET /api/v1 HTTP/1.1\r\n" + host + b"X-Big: " + b"a" * 9000 + b"\r\n\r\n", 431,
         "HTTP header exceeds the configured limit of 8192 characters"),
        (b"POST /api/v1 HTTP/1.1\r\n" + host + b"Transfer-Encoding: gzip\r\n\r\n", 501,
         "Unsupported Transfer-Encoding"),
        (b"GET /api/v1 HTTP/2.0\r\n" + host + b"\r\n", 505,
         "The server does not support the HTTP protocol version used in the request."),
    ]
    for request, status, error in cases:
        got, headers, body = await _raw_tls(nginx, request)
        assert (got, headers["content-type"]) == (status, "application/json"), (request[:40], got, body[:200])
        assert json.loads(body) == {"error": error, "code": headers["x-request-id"]}, (request[:40], body)
        assert headers["connection"] == "close" and headers["access-control-allow-origin"] == "*"
    # Plain HTTP on the HTTPS port (nginx's 497) is a 400 too; the location that answers them is nginx's only 404.
    got, headers, body = await _raw_tls(nginx, b"GET /api/v1 HTTP/1.1\r\n" + host + b"\r\n", tls=False)
    assert (got, json.loads(body)["error"]) == (400, "Illegal request"), body
    got, headers, body = await _raw_tls(nginx, b"GET /.whisk/refused HTTP/1.1\r\n" + host +
                                        b"Connection: close\r\n\r\n")
    assert (got, json.loads(body)) == (404, {"error": "The requested resource could not be found.",
                                             "code": headers["x-request-id"]}), body


async def test_metrics_are_not_served_to_the_public(nginx: Nginx) -> None:
    """Every tenant's namespaces and action names are in /metrics: Prometheus scrapes the processes themselves, and
    nginx answers a 404 in OpenWhisk's shape, however the path is spelled; the health checks still pass."""
    for path in (b"/metrics", b"/metrics?x=1", b"//metrics", b"/./metrics", b"/%6Detrics", b"/api/../metrics"):
        got, headers, body = await _raw_tls(nginx, b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                            b"Connection: close\r\n\r\n")
        assert (got, json.loads(body)) == (404, {"error": "The requested resource could not be found.",
                                                 "code": headers["x-request-id"]}), (path, body[:200])
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{nginx.https_url}/ping", ssl=_tls(nginx)) as resp:
            assert resp.status == 200


async def test_the_operators_routes_are_not_served_to_the_public(nginx: Nginx) -> None:
    """`/activation` lists every tenant's activations in flight (ids and action names), `/invokers` the invokers'
    health: operators ask each controller directly; through nginx they are a 404, however the path is spelled, while
    the API's own activation routes are served."""
    for path in (b"/activation", b"/activation/", b"/activation/count", b"/activation?x=1", b"//activation",
                 b"/%61ctivation/count", b"/api/../activation", b"/invokers", b"/invokers/",
                 b"/invokers/healthy/count", b"/invokers/ready", b"/./invokers"):
        got, headers, body = await _raw_tls(nginx, b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                            b"Connection: close\r\n\r\n")
        assert (got, json.loads(body)) == (404, {"error": "The requested resource could not be found.",
                                                 "code": headers["x-request-id"]}), (path, body[:200])
    async with aiohttp.ClientSession(headers=_guest()) as session:
        async with session.get(f"{nginx.https_url}/api/v1/namespaces/_/activations?limit=1", ssl=_tls(nginx)) as resp:
            assert resp.status == 200, await resp.text()


async def test_a_web_action_cannot_steer_nginx_with_its_headers(nginx: Nginx) -> None:
    """A web action's `X-Accel-*` headers are its own, never nginx's commands: `X-Accel-Redirect` made nginx serve
    another URL of the API host in its place (its method turned GET, the caller's headers and body resent with it),
    so a tenant's action could answer with any resource the caller's credentials reach (and nginx's `internal`
    locations); `X-Accel-Limit-Rate` throttled the answer."""
    owner = f"ops-accel-{secrets.token_hex(4)}"
    target = f"ops-target-{secrets.token_hex(4)}"
    answer = 'def main(args):\n    return args["r"]\n'
    web = [{"key": "web-export", "value": True}]
    async with aiohttp.ClientSession(headers=_guest()) as session:
        for name in (owner, target):
            async with session.put(f"{nginx.https_url}/api/v1/namespaces/_/actions/{name}",
                                   json={"exec": {"kind": "python:3", "code": answer if name == owner else ECHO},
                                         "annotations": web}, ssl=_tls(nginx)) as resp:
                assert resp.status == 200, await resp.text()
    elsewhere = (f"/api/v1/web/guest/default/{target}.json", "/api/v1/namespaces/_/actions", "/.whisk/refused",
                 "@bad_gateway")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:   # 1 byte/s: > 15 s
        for where in elsewhere:
            result = {"statusCode": 201, "headers": {"X-Accel-Redirect": where, "X-Accel-Limit-Rate": "1",
                                                     "X-Accel-Buffering": "no", "X-Own": "kept"},
                      "body": "the action's own answer"}
            async with session.post(f"{nginx.https_url}/api/v1/web/guest/default/{owner}.http", json={"r": result},
                                    headers=_guest(), ssl=_tls(nginx)) as resp:
                assert (resp.status, await resp.text()) == (201, "the action's own answer"), where
                assert resp.headers["X-Own"] == "kept" and "x-openwhisk-activation-id" in resp.headers


async def test_a_web_action_cannot_take_the_controllers_out_of_nginx(whisk_url: str) -> None:
    """An answer head larger than nginx's proxy_buffer_size is, to nginx, a failing controller: a web action with
    64 KB of headers got a 502 and took its controller out of the upstreams for fail_timeout, so that a few requests
    of one tenant left every other "no live upstreams". whisk refuses such a result itself (400)."""
    if not available():
        missing("nginx")
    name = f"ops-heads-{secrets.token_hex(4)}"
    code = 'def main(args):\n    return {"headers": {"X-Big": "a" * 70000}}\n'
    async with aiohttp.ClientSession(base_url=whisk_url, headers=_guest()) as session:
        async with session.put(f"/api/v1/namespaces/_/actions/{name}", json={
                "exec": {"kind": "python:3", "code": code}, "annotations": [{"key": "web-export", "value": True}]}
                               ) as resp:
            assert resp.status == 200, await resp.text()
    # Two upstreams (the same server twice): nginx keeps a lone upstream whatever fails.
    async with run_nginx([authority(whisk_url)] * 2) as server, aiohttp.ClientSession() as session:
        for _ in range(4):
            async with session.get(f"{server.https_url}/api/v1/web/guest/default/{name}.http",
                                   ssl=_tls(server)) as resp:
                assert resp.status == 400, await resp.text()
                assert (await resp.json())["error"].startswith("Response headers larger than allowed: ")
        async with session.get(f"{server.https_url}/ping", ssl=_tls(server)) as resp:
            assert resp.status == 200
        assert "upstream server temporarily disabled" not in server.error_log()


async def test_official_npm_client_with_ignore_certs(nginx: Nginx) -> None:
    node = shutil.which("node")
    if node is None or not OPENWHISK_NPM.is_dir():
        missing("node and the openwhisk npm client (tests/node; run .ci/deps.sh)")
    name = f"ops-npm-{secrets.token_hex(4)}"
    proc = await asyncio.create_subprocess_exec(node, str(NPM_CLIENT), nginx.https_url, GUEST_AUTH, name,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    seen = json.loads(out.decode().strip().splitlines()[-1])
    assert seen["created"] == name
    assert name in seen["listed"]
    assert seen["result"] == {"greeting": "hello nginx"}


def test_render_help_shows_its_example_as_two_lines() -> None:
    """`render.py --help` prints its usage example as it is written, the shell's line continuation kept: a `\\` in
    the docstring that Python reads as an escape joined the two lines with a run of spaces."""
    render = Path(__file__).resolve().parents[2] / "config" / "nginx" / "render.py"
    done = subprocess.run([sys.executable, str(render), "--help"], capture_output=True, text=True, timeout=30,
                          check=True)
    assert "--http 0.0.0.0:80 \\\n        --upstream 127.0.0.1:3233" in done.stdout


def test_render_listens_on_both_families_with_one_ipv6_address(tmp_path: Path) -> None:
    """nginx's `[::]:443` is IPv6 only; `--https '[::]:443 ipv6only=off'` listens on both families. The redirect's
    port was read as everything after the last colon, `443 ipv6only=off`, so every HTTP request was sent to
    `https://HOST:443 ipv6only=off/...`."""
    config = Path(__file__).resolve().parents[2] / "config" / "nginx"
    subprocess.run(["sh", str(config / "make-cert.sh"), str(tmp_path / "tls")], capture_output=True, check=True,
                   timeout=60)
    out = tmp_path / "run"
    subprocess.run([sys.executable, str(config / "render.py"), "--out", str(out),
                    "--https", "[::]:8443 ipv6only=off", "--http", "[::]:8080 ipv6only=off",
                    "--upstream", "[::1]:3233", "--cert", str(tmp_path / "tls" / "cert.pem"),
                    "--key", str(tmp_path / "tls" / "key.pem")], capture_output=True, check=True, timeout=30)
    conf = (out / "whisk.conf").read_text()
    assert "listen [::]:8443 ipv6only=off ssl;" in conf and "listen [::]:8080 ipv6only=off;" in conf
    assert "server [::1]:3233 " in conf
    assert "return 301 https://$host:8443$request_uri;" in conf
    if available():              # nginx -t reads the configuration and binds nothing
        done = subprocess.run([NGINX, "-t", "-p", str(out), "-e", str(out / "error.log"), "-c",
                               str(out / "nginx.conf")], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
