"""A tenant's action under WHISK_CONTAINERS=docker:// reaches nothing of the platform's or of another tenant's.

Through the REST API of a standalone whisk on the session's private dockerd, once per networking mode (`unix`, the
default, and `host`): an action of namespace `mallory` probes its container and reports what each attempt did; the
victim is a warm container of namespace `alice`. Every probe that must fail is checked to fail, and the things an
action must keep (its own bounded /tmp, the API host with its key, in either mode) to work. In `unix` mode the API
host is the only thing of the host it reaches: a TCP server this test runs on 127.0.0.1 stays out of reach, directly
and through the relay.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiodocker
import aiohttp
import pytest
import pytest_asyncio

from tests.docker.conftest import labelled
from tests.support.docker_daemon import DockerDaemon
from tests.support.http import record_of
from tests.support.processes import basic_auth, whisk_server
from tests.support.zips import SOURCES, zip_of

pytestmark = pytest.mark.docker

TMP_MB = 8
CODE_CAP_MB = 1
ALICE_KEY = "a11ce000-0000-4000-8000-000000000001:" + "a" * 64
MALLORY_KEY = "3a11047a-0000-4000-8000-000000000002:" + "m" * 64
INVOKERS = {"unix": 21, "host": 22}
SECRET = b"loopback-secret"

VICTIM = """
import os
def main(args):
    with open("/tmp/alice-secret", "w") as f:
        f.write("alice's secret")
    return {"pid": os.getpid(), "uid": os.getuid(), "hostname": os.uname().nodename}
"""

# Each probe answers "denied: <why>" or "allowed: <what>"; the test decides which answer is right.
PROBE = r'''
import json, os, signal, socket, urllib.request

def attempt(fn):
    try:
        return "allowed: " + str(fn())
    except Exception as exc:
        return f"denied: {type(exc).__name__}: {exc}"

def write(path, size=16):
    with open(path, "wb") as f:
        f.write(b"x" * size)
    return path

def fill_tmp(mb):
    written = 0
    with open("/tmp/fill", "wb") as f:
        for _ in range(mb):
            f.write(b"\0" * (1 << 20))
            f.flush()
            written += 1
    return written

def unix_connect(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
    return path

def processes():
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                found[pid] = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            pass
    return found

def status(field):
    with open("/proc/self/status") as f:
        return next(line.split()[1] for line in f if line.startswith(field + ":"))

def mount_tmpfs():
    import ctypes
    return ctypes.CDLL(None, use_errno=True).mount(b"none", b"/tmp", b"tmpfs", 0, None) or -ctypes.get_errno()

def api_host():
    import base64
    key = os.environ.get("__OW_API_KEY", "")
    request = urllib.request.Request(os.environ["__OW_API_HOST"] + "/api/v1/namespaces/_/actions",
                                     headers={"Authorization": "Basic " + base64.b64encode(key.encode()).decode()})
    with urllib.request.urlopen(request, timeout=5) as r:
        return r.status

def tcp_read(port, send=b""):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(send)
        s.settimeout(5)
        got = b""
        while chunk := s.recv(4096):
            got += chunk
    return got.decode(errors="replace")

def through_relay(port):
    # the relay as an open proxy: an absolute-form request for another loopback service, and a CONNECT
    relay = int(os.environ["__OW_API_HOST"].rsplit(":", 1)[1])
    asks = [f"GET http://127.0.0.1:{port}/ HTTP/1.1", f"CONNECT 127.0.0.1:{port} HTTP/1.1"]
    return [tcp_read(relay, f"{ask}\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
            for ask in asks]

def main(args):
    pid = args["platform_pid"]
    out = {
        "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups(),
        "cap_eff": status("CapEff"), "cap_bnd": status("CapBnd"), "no_new_privs": status("NoNewPrivs"),
        "seccomp": status("Seccomp"),
        "processes": processes(),
        "read_store": attempt(lambda: open(args["store"], "rb").read(16)),
        "list_data_dir": attempt(lambda: os.listdir(os.path.dirname(args["store"]))),
        "signal_platform": attempt(lambda: os.kill(pid, 0)),
        "kill_platform": attempt(lambda: os.kill(pid, signal.SIGKILL)),
        "platform_environ": attempt(lambda: open(f"/proc/{pid}/environ", "rb").read(64)),
        "victim_file": attempt(lambda: open("/tmp/alice-secret").read()),
        "victim_socket": attempt(lambda: unix_connect(args["victim_socket"])) if args.get("victim_socket") else None,
        "victim_folder": attempt(lambda: os.listdir(args["victim_folder"])) if args.get("victim_folder") else None,
        "docker_socket": attempt(lambda: unix_connect(args["docker_socket"])),
        "setuid_root": attempt(lambda: os.setuid(0)),
        "chown": attempt(lambda: os.chown(write("/tmp/mine"), 0, 0)),
        "raw_socket": attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()),
        "mount": attempt(mount_tmpfs),
        "write_root": attempt(lambda: write("/whisk-was-here")),
        "write_etc": attempt(lambda: write("/etc/whisk-was-here")),
        "write_proxy": attempt(lambda: write("/opt/whisk/proxy.py")),
        "write_run_whisk": attempt(lambda: write("/run/whisk/extra")),
        "write_dev_shm": attempt(lambda: write("/dev/shm/x")),
        "write_tmp": attempt(lambda: os.path.getsize(write("/tmp/mine", 1 << 20))),
        "fill_tmp": attempt(lambda: fill_tmp(4 * args["tmp_mb"])),
        "api_host": attempt(api_host),
        "api_host_url": os.environ.get("__OW_API_HOST"),
        "loopback_service": attempt(lambda: tcp_read(args["loopback_port"])),
        "api_port_direct": attempt(lambda: tcp_read(args["api_port"], b"GET /ping HTTP/1.0\r\n\r\n")),
        "through_relay": attempt(lambda: through_relay(args["loopback_port"])) if args["network"] == "unix" else None,
        "write_api_folder": attempt(lambda: write("/run/whisk-api/extra")),
        "remove_api_socket": attempt(lambda: os.unlink("/run/whisk-api/api.sock")),
        "victim_api_socket": (attempt(lambda: unix_connect(args["victim_api_socket"]))
                              if args.get("victim_api_socket") else None),
    }
    return json.loads(json.dumps(out))
'''


@dataclass
class Platform:
    url: str
    network: str
    invoker: int
    pid: int
    store: str
    docker_socket: str


async def _subject(store: str, name: str, key: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "whisk", "admin", "user", "create", name, "--api-key", key, "--store", store,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=["unix", "host"])
async def platform(request: pytest.FixtureRequest, docker_daemon: DockerDaemon, docker_images: str,
                   docker: aiodocker.Docker, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    network = request.param
    invoker = INVOKERS[network]
    data_dir = tmp_path_factory.mktemp(f"whisk-isolation-{network}")
    store = f"sqlite://{data_dir}/whisk.db"
    env = {"WHISK_CONTAINERS": f"docker://{docker_daemon.socket}", "WHISK_DOCKER_NETWORK": network,
           "WHISK_INSTANCE": str(invoker), "WHISK_DATA_DIR": str(data_dir), "WHISK_STORE": store,
           "WHISK_DOCKER_TMP_MB": str(TMP_MB), "WHISK_LIMIT_MAX_CODE_UNPACKED_MB": str(CODE_CAP_MB),
           "WHISK_POOL_PREWARM": "false", "WHISK_POOL_PAUSE_GRACE_MS": "600000",
           "WHISK_LIMIT_INVOCATIONS_PER_MINUTE": "100000", "WHISK_LIMIT_CONCURRENT_INVOCATIONS": "1000"}
    async with whisk_server(env, log_path=str(data_dir / "whisk.log"), deadline_s=60) as url:
        for name, key in (("alice", ALICE_KEY), ("mallory", MALLORY_KEY)):
            await _subject(store, name, key)
        pid = _server_pid(int(url.rsplit(":", 1)[1]))
        yield Platform(url, network, invoker, pid, str(data_dir / "whisk.db"), str(docker_daemon.socket))
    assert await labelled(docker, invoker) == [], "the stopped platform left containers behind"


def _server_pid(port: int) -> int:
    """The whisk process listening on the port (a child of this test process, found through /proc)."""
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in list(f)[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":     # LISTEN
                    inode = fields[9]
    assert inode, f"nothing listens on {port}"
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return int(pid)
            except OSError:
                pass
    raise AssertionError(f"no process holds the socket listening on {port}")


def _session(platform: Platform, key: str) -> aiohttp.ClientSession:
    uuid, secret = key.split(":")
    return aiohttp.ClientSession(base_url=platform.url, headers=basic_auth(uuid, secret))


async def _put(session: aiohttp.ClientSession, name: str, exec_: dict[str, Any], **extra: Any) -> tuple[int, Any]:
    async with session.put(f"/api/v1/namespaces/_/actions/{name}?overwrite=true",
                           json={"exec": exec_, **extra}) as r:
        return r.status, await r.json()


async def _invoke(session: aiohttp.ClientSession, name: str, params: dict[str, Any]) -> dict[str, Any]:
    async with session.post(f"/api/v1/namespaces/_/actions/{name}?blocking=true", json=params) as r:
        body = await r.json()
        assert r.status in (200, 502), body
        return body


async def _victim(platform: Platform, docker: aiodocker.Docker) -> dict[str, Any]:
    """alice's warm container, and where the host and Docker say its socket, folder and port are."""
    async with _session(platform, ALICE_KEY) as alice:
        assert (await _put(alice, "victim", {"kind": "python:3", "code": VICTIM}))[0] == 200
        body = await _invoke(alice, "victim", {})
        if body["response"]["status"] != "success":       # what went wrong, not a cut repr: the stored logs too
            record = await record_of(alice, body["activationId"], complete=True)
            raise AssertionError((body["response"], body.get("annotations"), record.get("logs")))
        await record_of(alice, body["activationId"], complete=True)
    found = await docker.containers.list(filters={"label": [f"whisk.invoker={platform.invoker}"]})
    mine = [c for c in found if c["Names"][0].endswith("_alice_victim")]
    assert len(mine) == 1, [c["Names"] for c in found]
    info = await docker.containers.container(mine[0]["Id"]).show()
    env = dict(e.split("=", 1) for e in info["Config"]["Env"])
    folder = (info["Config"]["Labels"] or {}).get("whisk.run-dir")
    api_folder = (info["Config"]["Labels"] or {}).get("whisk.api-dir")
    return {"uid": body["response"]["result"]["uid"], "folder": folder,
            "socket": os.path.join(folder, "proxy.sock") if folder else None,
            "api_socket": os.path.join(api_folder, "api.sock") if api_folder else None,
            "port": int(env["WHISK_PROXY_PORT"]) if "WHISK_PROXY_PORT" in env else None}


def denied(answer: str | None, *reasons: str) -> bool:
    return answer is not None and answer.startswith("denied: ") and any(r in answer for r in reasons)


@asynccontextmanager
async def loopback_service() -> AsyncIterator[tuple[int, list[int]]]:
    """Another service of the host on 127.0.0.1: it greets each connection with a secret and counts them."""
    seen: list[int] = []

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(1)
        writer.write(SECRET)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(greet, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1], seen


async def test_a_tenant_reaches_nothing_of_the_platform_or_another_tenant(platform: Platform,
                                                                          docker: aiodocker.Docker) -> None:
    victim = await _victim(platform, docker)
    async with loopback_service() as (loopback_port, seen), _session(platform, MALLORY_KEY) as mallory:
        params = {"platform_pid": platform.pid, "store": platform.store, "tmp_mb": TMP_MB,
                  "victim_socket": victim["socket"], "victim_folder": victim["folder"],
                  "victim_api_socket": victim["api_socket"], "docker_socket": platform.docker_socket,
                  "network": platform.network, "loopback_port": loopback_port,
                  "api_port": int(platform.url.rsplit(":", 1)[1])}
        assert (await _put(mallory, "probe", {"kind": "python:3", "code": PROBE},
                           annotations=[{"key": "provide-api-key", "value": True}]))[0] == 200
        body = await _invoke(mallory, "probe", params)
        connections = len(seen)
    assert body["response"]["status"] == "success", body
    got = body["response"]["result"]

    # Not root, in no group of the host's, and of a user no other container has.
    assert got["uid"] >= 2_000_000_000 and got["euid"] == got["uid"] == got["gid"] and got["groups"] == [got["gid"]]
    assert got["uid"] != victim["uid"]
    assert got["cap_eff"] == got["cap_bnd"] == "0000000000000000" and got["no_new_privs"] == "1"
    assert got["seccomp"] == "2"                                         # Docker's default profile filters

    for probe in ("setuid_root", "chown", "raw_socket"):
        assert denied(got[probe], "PermissionError", "Operation not permitted"), (probe, got[probe])
    assert got["mount"] == "allowed: -1", got["mount"]                    # mount(2) answered EPERM
    # The platform: its store, its data folder, its process, the Docker daemon are out of sight.
    assert denied(got["read_store"], "FileNotFoundError"), got["read_store"]
    assert denied(got["list_data_dir"], "FileNotFoundError"), got["list_data_dir"]
    for probe in ("signal_platform", "kill_platform"):
        assert denied(got[probe], "ProcessLookupError"), (probe, got[probe])
    assert denied(got["platform_environ"], "FileNotFoundError"), got["platform_environ"]
    assert denied(got["docker_socket"], "FileNotFoundError"), got["docker_socket"]
    # Its own processes only: the init, the proxy (and nothing named whisk or dockerd).
    commands = list(got["processes"].values())
    assert len(commands) <= 3 and any("proxy.py" in c for c in commands), commands
    assert not any("whisk " in c or "-m whisk" in c or "dockerd" in c for c in commands), commands
    # Another tenant: neither its /tmp nor its socket folder.
    assert denied(got["victim_file"], "FileNotFoundError"), got["victim_file"]
    # Its proxy listens on no port, in either mode (all containers share the host's loopback in `host` mode).
    assert victim["port"] is None and victim["socket"] and os.path.exists(victim["socket"])
    assert denied(got["victim_socket"], "FileNotFoundError"), got["victim_socket"]
    assert denied(got["victim_folder"], "FileNotFoundError"), got["victim_folder"]
    # Writes: nowhere but its own /tmp, and that only up to its size.
    for probe in ("write_root", "write_etc", "write_proxy"):
        assert denied(got[probe], "Read-only file system", "Permission denied"), (probe, got[probe])
    assert denied(got["write_run_whisk"], "Permission denied"), got["write_run_whisk"]     # locked before /init
    assert got["write_dev_shm"] == "allowed: /dev/shm/x"           # Docker's private 64 MB (docs/operations.md)
    assert got["write_tmp"] == f"allowed: {1 << 20}", got["write_tmp"]
    assert denied(got["fill_tmp"], "No space left on device", "File too large"), got["fill_tmp"]
    # The API host, with the action's key: reachable in either mode.
    assert got["api_host"] == "allowed: 200", got["api_host"]
    if platform.network == "host":
        # The host's loopback, and with it every service on it (docs/operations.md, "Threat model").
        assert got["api_host_url"] == platform.url
        assert got["loopback_service"] == f"allowed: {SECRET.decode()}", got["loopback_service"]
        assert victim["api_socket"] is None
    else:
        # No network but the relay on its own loopback, which leads to the API host and nowhere else: on the API
        # host's own port (a plain loopback URL is kept, so actions see the URL clients use).
        assert got["api_host_url"] == platform.url, got["api_host_url"]
        assert denied(got["loopback_service"], "ConnectionRefusedError"), got["loopback_service"]
        assert got["api_port_direct"].startswith("allowed: ") and "pong" in got["api_port_direct"], \
            got["api_port_direct"]
        # Both answered by whisk itself (not found, bad request), never by the other service.
        answers = got["through_relay"]
        assert answers.startswith("allowed: ") and answers.count("aiohttp") == 2, answers
        assert SECRET.decode() not in answers
        assert connections == 0, "the action reached the loopback service"
        # The relay's socket is on a read-only mount: the action can neither replace nor remove it.
        assert denied(got["write_api_folder"], "Read-only file system"), got["write_api_folder"]
        assert denied(got["remove_api_socket"], "Read-only file system"), got["remove_api_socket"]
        # alice's relay socket is out of sight, though it exists on the host.
        assert victim["api_socket"] and os.path.exists(victim["api_socket"])
        assert denied(got["victim_api_socket"], "FileNotFoundError"), got["victim_api_socket"]
    # The platform lives on, and alice's action still answers with her own data.
    async with _session(platform, ALICE_KEY) as alice:
        again = await _invoke(alice, "victim", {})
    assert again["response"]["status"] == "success", again


@pytest.mark.parametrize("kind", ["python:3", "nodejs:20"])
async def test_code_over_the_unpacked_cap_is_refused_and_a_lying_zip_stops_at_init(
        platform: Platform, kind: str) -> None:
    bomb = b"\0" * (64 << 20)                                     # 64 MB of zeros: a 64 kB zip
    async with _session(platform, MALLORY_KEY) as mallory:
        status, body = await _put(mallory, "honest", {"kind": kind, "code": zip_of(SOURCES[kind] | {"pad": bomb})})
        assert status == 400 and "more than the limit of 1048576 bytes" in body["error"], body
        async with mallory.get("/api/v1/namespaces/_/actions/honest") as r:
            assert r.status == 404                                  # nothing was stored
        liar = zip_of(SOURCES[kind] | {"pad": bomb}, lie_to=100)
        status, _ = await _put(mallory, "liar", {"kind": kind, "code": liar})
        assert status == 200                                        # its directory declares 3 x 100 bytes
        body = await _invoke(mallory, "liar", {})
        assert body["response"]["status"] == "action developer error", body
        error = body["response"]["result"]["error"]
        if kind == "nodejs:20":
            assert "more than the limit of 1048576 bytes" in error, error
        else:   # Python's zipfile inflates no entry past its declared size and finds the CRC wrong; the runtime
            # answers that unpacking failed and logs why, as OpenWhisk's does
            assert error == "The action failed to generate or locate a binary. See logs for details.", error
            logs = (await record_of(mallory, body["activationId"]))["logs"]     # the stored record's
            assert any("Bad CRC-32" in line for line in logs), logs
