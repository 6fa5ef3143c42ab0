"""A tenant's action under the default `process://` backend reaches nothing of the platform's or of another
tenant's, and keeps what an action needs (its own bounded /tmp, the API host).

Through the REST API of a standalone whisk in the default configuration (process://, an SQLite store in a private
data folder, the sandbox on): the victim is a warm container of namespace `guest` holding a secret in its /tmp; an
action of a second namespace, made with `whisk admin user create`, probes its sandbox in Python and in Node.js and
reports what each attempt did. Then: the server refuses to start where the sandbox cannot be had, unless
WHISK_TRUST_ALL_CODE says all code is trusted (and says so in its start-up line).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
import pytest_asyncio

from tests.api.support import run_cli
from tests.conftest import missing
from tests.isolation.probes import JS_PROBE, PY_PROBE, VICTIM
from tests.support.http import call
from tests.support.processes import GUEST_AUTH, basic_auth, free_port, terminate, until_ready

TMP_MB = 8
ZERO_CAPS = "0000000000000000"


@dataclass
class Platform:
    url: str
    pid: int
    data_dir: str
    store: str
    log: str
    mallory: str             # uuid:key of the second namespace
    other_port: int          # another service on the host's loopback (a store, a broker): beyond an action's reach


def _server_env(data_dir: str, port: int, **extra: str) -> dict[str, str]:
    default = {"WHISK_ROLE": "standalone", "WHISK_STORE": "", "WHISK_BUS": "memory://",
               "WHISK_CONTAINERS": "process://", "WHISK_TRUST_ALL_CODE": "false"}   # whatever the caller's are
    return dict(os.environ) | default | {
        # A playground port of its own: the default (3232) may be another server's on a shared machine.
        "WHISK_PORT": str(port), "WHISK_PLAYGROUND_PORT": str(free_port()), "WHISK_DATA_DIR": data_dir,
        "WHISK_PROCESS_TMP_MB": str(TMP_MB),
        "WHISK_LIMIT_INVOCATIONS_PER_MINUTE": "10000", "WHISK_POOL_PREWARM": "false"} | extra


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def platform() -> AsyncIterator[Platform]:
    if os.geteuid() != 0 or not os.path.exists("/usr/bin/bwrap"):
        missing("the process sandbox (root and /usr/bin/bwrap: apt-get install bubblewrap)")
    data_dir = os.path.join(tempfile.mkdtemp(prefix="whisk-iso-"), "data")
    port = free_port()
    log = os.path.join(os.path.dirname(data_dir), "server.log")
    with open(log, "ab") as out:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "whisk", env=_server_env(data_dir, port),
                                                    stdout=out, stderr=out)
    try:
        await until_ready(f"http://127.0.0.1:{port}/ping", proc, deadline_s=60)
        store = os.path.join(data_dir, "whisk.db")
        code, out_text, err = await run_cli("admin", "user", "create", "mallory", "--store", f"sqlite://{store}",
                                            env={"WHISK_DATA_DIR": data_dir})
        assert code == 0, err
        other = await asyncio.start_server(lambda reader, writer: writer.close(), "127.0.0.1", 0)
        try:
            yield Platform(f"http://127.0.0.1:{port}", proc.pid, data_dir, store, log,
                           out_text.strip().splitlines()[-1], other.sockets[0].getsockname()[1])
        finally:
            other.close()
    finally:
        await terminate(proc)


def _session(platform: Platform, auth: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(base_url=platform.url, headers=basic_auth(*auth.split(":", 1)))


async def _invoke(session: aiohttp.ClientSession, name: str, kind: str, code: str, params: dict) -> dict:
    status, body = await call(session, "PUT", f"/api/v1/namespaces/_/actions/{name}?overwrite=true",
                              {"exec": {"kind": kind, "code": code},
                               "annotations": [{"key": "provide-api-key", "value": True}]})
    assert status == 200, body
    status, body = await call(session, "POST", f"/api/v1/namespaces/_/actions/{name}?blocking=true&result=true",
                              params, timeout=aiohttp.ClientTimeout(total=120))
    assert status == 200, body
    return body


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _victim_proxy(platform_pid: int) -> int:
    """The host pid of the proxy whose sandbox holds the victim's secret: launcher/bwrap -> bwrap init -> proxy."""
    for launcher in _children(platform_pid):
        for init in _children(launcher):
            for proxy in _children(init):
                if os.path.exists(f"/proc/{proxy}/root/tmp/alice-secret"):
                    return proxy
    raise AssertionError("the victim's container was not found")


def _socket_of(pid: int) -> str:
    with open(f"/proc/{pid}/environ", "rb") as f:
        env = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
    return env[b"WHISK_PROXY_SOCKET"].decode()


async def _probe(platform: Platform, kind: str, code: str) -> tuple[dict, int]:
    async with _session(platform, GUEST_AUTH) as guest, _session(platform, platform.mallory) as mallory:
        victim_uid = (await _invoke(guest, "victim", "python:3", VICTIM, {}))["uid"]
        proxy = _victim_proxy(platform.pid)
        socket_path = _socket_of(proxy)
        params = {"platform_pid": platform.pid, "store": platform.store, "data_dir": platform.data_dir,
                  "victim_socket": socket_path, "victim_socket_via_proc": f"/proc/{proxy}/root{socket_path}",
                  "victim_secret_via_proc": f"/proc/{proxy}/root/tmp/alice-secret", "tmp_mb": TMP_MB,
                  "key": platform.mallory, "platform_port": platform.other_port}
        got = await _invoke(mallory, f"probe-{kind.split(':')[0]}", kind, code, params)
        status, _ = await call(guest, "GET", "/api/v1/namespaces/_/actions")
        assert status == 200                                   # the platform survived the attempts
    return got, victim_uid


def _denied(got: dict, *names: str) -> None:
    allowed = {n: got[n] for n in names if not got[n].startswith("denied: ")}
    assert allowed == {}, f"the sandbox let these through: {allowed}"


@pytest.mark.asyncio(loop_scope="module")
async def test_a_python_action_reaches_nothing_of_the_platform_or_another_tenant(platform):
    got, victim_uid = await _probe(platform, "python:3", PY_PROBE)
    # A user of its own: not root, not the platform's, not the other tenant's container's; no groups.
    assert got["uid"] == got["euid"] == got["gid"] and got["uid"] not in (0, os.getuid(), victim_uid)
    assert got["groups"] == []
    # Nothing to regain: no capabilities in any set, no new privileges through setuid binaries.
    assert got["status"] == {"NoNewPrivs": "1", "CapEff": ZERO_CAPS, "CapPrm": ZERO_CAPS, "CapBnd": ZERO_CAPS,
                             "CapAmb": ZERO_CAPS, "CapInh": ZERO_CAPS}
    # Its own PID namespace: bwrap's init and the proxy (and what the proxy runs now), nothing of the host.
    assert len(got["processes"]) <= 3 and not any("whisk" in c and "proxy" not in c for c in got["cmdlines"]), got
    _denied(got, "read_store", "list_data_dir", "signal_platform", "kill_platform", "platform_environ",
            "platform_root", "victim_socket", "victim_socket_via_proc", "victim_folder", "victim_tmp_via_proc",
            "victim_tmp", "setuid_root", "unshare", "user_namespace", "user_namespace_tool", "write_etc", "write_usr",
            "write_root", "write_socket_folder", "move_own_socket", "keyring", "io_uring", "platform_port",
            "host_unix_sockets", "every_tenants_metrics", "every_tenants_activations",
            "every_tenants_activation_count", "playground_key")
    assert "403" in got["every_tenants_metrics"] and "403" in got["every_tenants_activations"]
    assert "403" in got["every_tenants_activation_count"]
    # The API's /playground only redirects to the playground's own port, which is not relayed into the sandbox.
    assert "Connection refused" in got["playground_key"]
    assert "refused" in got["platform_port"]              # its own network namespace: nothing listens there
    assert "Operation not permitted" in got["keyring"] and "Operation not permitted" in got["io_uring"]
    assert got["threads_and_children"] == "allowed: ok"        # the seccomp filter leaves clone and threads alone
    assert "No such file" in got["read_store"] and "No such process" in got["signal_platform"]
    # What it keeps: its own /tmp, bounded, and the API host.
    assert got["write_tmp"] == "allowed: /tmp/probe"
    assert got["fill_tmp"].startswith("denied: OSError") and "No space left" in got["fill_tmp"], got["fill_tmp"]
    assert got["api_host"] == "allowed: 200"
    # Nothing of other sandboxes in /proc's host-wide lists, nor a count of containers in its folder's name.
    assert got["proc_masked"] and set(got["proc_masked"].values()) <= {"allowed: 0", "allowed: []"}, got["proc_masked"]
    assert len(got["own_folder"]) == 16 and not got["own_folder"].isdigit()


@pytest.mark.asyncio(loop_scope="module")
async def test_a_nodejs_action_reaches_nothing_of_the_platform_or_another_tenant(platform):
    got, victim_uid = await _probe(platform, "nodejs:20", JS_PROBE)
    assert got["uid"] == got["euid"] and got["uid"] not in (0, os.getuid(), victim_uid)
    assert got["status"] == {"NoNewPrivs": "1", "CapEff": ZERO_CAPS, "CapBnd": ZERO_CAPS}
    assert len(got["processes"]) <= 3, got["processes"]
    _denied(got, "read_store", "list_data_dir", "signal_platform", "kill_platform", "platform_environ",
            "victim_socket", "victim_socket_via_proc", "victim_tmp_via_proc", "victim_tmp", "setuid_root",
            "user_namespace", "write_etc", "write_root", "platform_port")
    assert got["platform_port"].startswith("denied: ECONNREFUSED"), got["platform_port"]
    assert got["children"] == "allowed: ok"
    assert got["write_tmp"] == "allowed: /tmp/probe"
    assert got["fill_tmp"].startswith("denied: ENOSPC"), got["fill_tmp"]
    assert got["api_host"] == "allowed: 200"


LOGIN_GUESSER = """
import base64, os, urllib.error, urllib.request

def main(args):
    # Credentials nobody has: each call is a failed login, counted against the address the API host sees.
    auth = "Basic " + base64.b64encode(b"23bc46b1-71f6-4ed5-8c54-000000000000:" + b"x" * 64).decode()
    statuses = []
    for _ in range(args["n"]):
        request = urllib.request.Request(os.environ["__OW_API_HOST"] + "/api/v1/namespaces",
                                         headers={"Authorization": auth})
        try:
            statuses.append(urllib.request.urlopen(request, timeout=30).status)
        except urllib.error.HTTPError as exc:
            statuses.append(exc.code)
    return {"statuses": statuses}
"""


@pytest.mark.asyncio(loop_scope="module")
async def test_one_tenants_failed_logins_do_not_use_up_anothers(platform):
    """Failed logins are slowed per client address; every call an action makes through the relay comes from an
    address of its container's own, so a tenant guessing keys from its action is slowed alone: another tenant's
    action still has its own budget (a 401 for a wrong key, not a 429)."""
    async with _session(platform, platform.mallory) as mallory, _session(platform, GUEST_AUTH) as guest:
        guessed = await _invoke(mallory, "guesser", "python:3", LOGIN_GUESSER, {"n": 70})     # the budget is 60
        assert guessed["statuses"][:60] == [401] * 60 and set(guessed["statuses"][60:]) == {429}, guessed
        assert (await _invoke(guest, "guesser", "python:3", LOGIN_GUESSER, {"n": 1}))["statuses"] == [401]


@pytest.mark.asyncio(loop_scope="module")
async def test_the_start_up_line_says_actions_run_in_the_sandbox(platform):
    with open(platform.log) as f:
        assert "isolation='process sandbox (bwrap)'" in f.read()


async def _start(env: dict[str, str], log: str) -> asyncio.subprocess.Process:
    with open(log, "ab") as out:
        return await asyncio.create_subprocess_exec(sys.executable, "-m", "whisk", env=env, stdout=out, stderr=out)


@pytest.mark.asyncio(loop_scope="module")
async def test_without_the_sandbox_whisk_refuses_to_start_unless_all_code_is_trusted(tmp_path):
    port = free_port()
    no_bwrap = {"PATH": str(tmp_path)}                         # neither bwrap nor setpriv can be found
    log = str(tmp_path / "refused.log")
    proc = await _start(_server_env(str(tmp_path / "data"), port) | no_bwrap, log)
    assert await asyncio.wait_for(proc.wait(), 60) == 2
    text = open(log).read()
    assert "configuration error: WHISK_TRUST_ALL_CODE is false and" in text and "apt-get install bubblewrap" in text
    log = str(tmp_path / "trusted.log")
    proc = await _start(_server_env(str(tmp_path / "data"), port, WHISK_TRUST_ALL_CODE="true") | no_bwrap, log)
    try:
        await until_ready(f"http://127.0.0.1:{port}/ping", proc, deadline_s=60)
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}",
                                         headers=basic_auth(*GUEST_AUTH.split(":", 1))) as guest:
            whoami = "import os\ndef main(a):\n    return {'uid': os.getuid()}\n"
            got = await _invoke(guest, "whoami", "python:3", whoami, {})
        assert got == {"uid": os.getuid()}                     # unconfined: the platform's own user
        assert "isolation='none: all code trusted (WHISK_TRUST_ALL_CODE)'" in open(log).read()
    finally:
        await terminate(proc)
