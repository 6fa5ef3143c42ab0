"""One action container's life on a real dockerd: flags, /init and /run, logs, pause, resume, faults, removal."""

from __future__ import annotations

import json
import os

import aiodocker
import aiohttp
import pytest

from tests.docker.conftest import NODEJS_IMAGE, PYTHON_IMAGE, init_body, python_spec
from tests.support.zips import infozip_of
from whisk.containerpool.proxy import DEVELOPER_ERROR_LOG_GRACE_S
from whisk.containers.base import ContainerSpec
from whisk.containers.docker.factory import DockerContainerFactory

pytestmark = pytest.mark.docker

ECHO = """
import sys
def main(args):
    print("hello", args.get("name"))
    print("to stderr", file=sys.stderr)
    return {"greeting": "Hello " + args.get("name", "stranger")}
"""


async def test_flags_names_and_labels(factory: DockerContainerFactory, docker: aiodocker.Docker) -> None:
    container = await factory.create(python_spec(factory.invoker, n=3, name="guest_my@action 1"))
    info = await docker.containers.container(container.id).show()
    host = info["HostConfig"]
    assert info["Name"] == f"/wsk{factory.invoker}_3_guest_myaction1"        # OpenWhisk drops other characters
    assert info["Config"]["Labels"]["whisk.invoker"] == str(factory.invoker)
    assert host["Memory"] == host["MemorySwap"] == 256 << 20
    assert host["CpuShares"] == 1024 * 256 // 2048
    assert host["Init"] is True and host["Privileged"] is False
    assert host["PidsLimit"] == 1024
    tmp = factory.tmp_mb << 20
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 1024},
                               {"Name": "fsize", "Soft": tmp, "Hard": tmp}]
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert host["SecurityOpt"] == ["no-new-privileges"] and host["ReadonlyRootfs"] is True
    assert host["Tmpfs"] == {"/tmp": f"rw,exec,nosuid,nodev,size={factory.tmp_mb}m,mode=1777"}
    uid = int(info["Config"]["User"].split(":")[0])
    assert uid >= 2_000_000_000 and info["Config"]["User"] == f"{uid}:{uid}"
    assert host["NetworkMode"] == "none"
    assert host["LogConfig"]["Type"] == "json-file"
    assert "__OW_API_HOST=http://127.0.0.1:3233" in info["Config"]["Env"]
    assert "WHISK_PROXY_SOCKET=/run/whisk/proxy.sock" in info["Config"]["Env"]
    # The kernel enforces the limit (cgroup v1 here; the path differs under cgroup v2).
    limit = f"/sys/fs/cgroup/memory/docker/{container.id}/memory.limit_in_bytes"
    if os.path.exists(limit):
        with open(limit) as f:
            assert int(f.read()) == 256 << 20
    await container.destroy()
    await container.destroy()                           # idempotent
    with pytest.raises(aiodocker.DockerError):
        await docker.containers.container(container.id).show()


async def test_python_init_run_logs_pause_resume(factory: DockerContainerFactory,
                                                 docker: aiodocker.Docker) -> None:
    container = await factory.create(python_spec(factory.invoker))
    init = await container.initialize(init_body(ECHO), timeout_s=10)
    assert init.status == 200, init
    assert await container.logs(10 << 20, wait_for_sentinel=False) == []     # a good /init prints nothing
    for name in ("Ada", "Grace"):
        run = await container.run({"value": {"name": name}, "activation_id": "a1"}, timeout_s=10)
        assert (run.status, json.loads(run.body)) == (200, {"greeting": f"Hello {name}"})
        assert run.end_ms >= run.start_ms
        lines = await container.logs(10 << 20, wait_for_sentinel=True)
        # Two pipes: the order between stdout and stderr is not kept, the order within each is.
        assert sorted(line[31:] for line in lines) == ["stderr: to stderr", f"stdout: hello {name}"], lines
        assert lines[0][:30].endswith("Z") and lines[0][4] == "-"          # docker's RFC3339 time, padded to 30

    await container.suspend()
    assert (await docker.containers.container(container.id).show())["State"]["Paused"] is True
    await container.resume()
    assert (await docker.containers.container(container.id).show())["State"]["Paused"] is False
    run = await container.run({"value": {"name": "again"}}, timeout_s=10)
    assert json.loads(run.body) == {"greeting": "Hello again"}
    assert len(await container.logs(10 << 20, wait_for_sentinel=True)) == 2
    await container.destroy()


async def test_nodejs_action(factory: DockerContainerFactory) -> None:
    spec = ContainerSpec(name=f"wsk{factory.invoker}_1_guest_js", kind="nodejs:20", image=NODEJS_IMAGE,
                         memory_mb=256)
    container = await factory.create(spec)
    code = "function main(a) { console.log('node', process.version); return {sum: a.x + a.y}; }"
    assert (await container.initialize(init_body(code), timeout_s=10)).status == 200
    run = await container.run({"value": {"x": 2, "y": 3}}, timeout_s=10)
    assert (run.status, json.loads(run.body)) == (200, {"sum": 5})
    lines = await container.logs(10 << 20, wait_for_sentinel=True)
    assert len(lines) == 1 and "stdout: node v20." in lines[0], lines       # the kind is nodejs:20
    await container.destroy()


async def test_host_networking(host_factory: DockerContainerFactory, docker: aiodocker.Docker) -> None:
    container = await host_factory.create(python_spec(host_factory.invoker))
    info = await docker.containers.container(container.id).show()
    assert info["HostConfig"]["NetworkMode"] == "host"
    # The action has the host's network, but its proxy listens on no port another container could reach.
    assert container.endpoint.socket.endswith("/proxy.sock") and not container.endpoint.port
    assert "WHISK_PROXY_SOCKET=/run/whisk/proxy.sock" in info["Config"]["Env"]
    assert not any(e.startswith("WHISK_PROXY_PORT=") for e in info["Config"]["Env"])
    assert (await container.initialize(init_body(ECHO), timeout_s=10)).status == 200
    run = await container.run({"value": {"name": "host"}}, timeout_s=10)
    assert json.loads(run.body) == {"greeting": "Hello host"}
    await container.destroy()


async def test_memory_exhausted(factory: DockerContainerFactory) -> None:
    container = await factory.create(python_spec(factory.invoker, memory_mb=64))
    code = "def main(a):\n    hog = []\n    while True:\n        hog.append(bytearray(8 << 20))\n"
    assert (await container.initialize(init_body(code), timeout_s=10)).status == 200
    run = await container.run({"value": {}}, timeout_s=30)
    assert run.status is None and run.exited and run.oom_killed, run
    await container.destroy()


async def test_crash_is_not_oom(factory: DockerContainerFactory) -> None:
    container = await factory.create(python_spec(factory.invoker))
    code = "import os\ndef main(a):\n    print('bye')\n    os._exit(3)\n"
    assert (await container.initialize(init_body(code), timeout_s=10)).status == 200
    run = await container.run({"value": {}}, timeout_s=10)
    assert run.status is None and run.exited and not run.oom_killed, run
    # The logs of a dead container are still there; a developer error does not wait for sentinels, only for what
    # docker is still copying.
    lines = await container.logs(10 << 20, wait_for_sentinel=False, grace_s=DEVELOPER_ERROR_LOG_GRACE_S)
    assert any(line.endswith("stdout: bye") for line in lines), lines
    await container.destroy()


async def test_a_crash_docker_cannot_explain_is_still_the_actions(factory: DockerContainerFactory,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """/run was sent and its connection dropped while the daemon does not answer (crashed or restarting; the
    containers outlive it): the action may have run, so it is its failure, never a ContainerError (the pool would
    send the job to another container, and run it twice)."""
    container = await factory.create(python_spec(factory.invoker))
    code = "import os\ndef main(a):\n    os._exit(3)\n"
    assert (await container.initialize(init_body(code), timeout_s=10)).status == 200

    async def away(*args: object, **kwargs: object) -> None:
        raise aiohttp.ClientConnectionError("Cannot connect to Docker Engine")

    monkeypatch.setattr(container._container, "wait", away)
    monkeypatch.setattr(container._container, "show", away)
    run = await container.run({"value": {}}, timeout_s=10)
    assert run.status is None and run.exited and not run.oom_killed, run
    monkeypatch.undo()
    await container.destroy()


async def test_timeout(factory: DockerContainerFactory) -> None:
    container = await factory.create(python_spec(factory.invoker))
    code = "import time\ndef main(a):\n    time.sleep(30)\n    return {}\n"
    assert (await container.initialize(init_body(code), timeout_s=10)).status == 200
    run = await container.run({"value": {}}, timeout_s=0.5)
    assert run.timed_out and run.status is None
    assert 500 <= run.duration_ms < 5000
    await container.destroy()


async def test_init_failure_and_exit_during_init(factory: DockerContainerFactory) -> None:
    container = await factory.create(python_spec(factory.invoker, n=1))
    bad = await container.initialize(init_body("def main(:\n"), timeout_s=10)
    assert bad.status is not None and bad.status != 200
    assert "error" in json.loads(bad.body)
    lines = await container.logs(10 << 20, wait_for_sentinel=True)       # sentinels follow a failed /init too
    assert lines and "There was an issue" not in lines[-1], lines
    await container.destroy()

    container = await factory.create(python_spec(factory.invoker, n=2))
    dies = await container.initialize(init_body("import os\nos._exit(1)\n"), timeout_s=10)
    assert dies.status is None and dies.exited and not dies.oom_killed, dies
    await container.destroy()


async def test_an_answer_over_the_limit_is_read_only_up_to_it(factory: DockerContainerFactory) -> None:
    """The invoker holds no more of an answer than the result limit: its start, and the length it declared."""
    container = await factory.create(python_spec(factory.invoker, n=5))
    try:
        code = "def main(args):\n    return {'big': 'x' * (3 * 1024 * 1024)}\n"
        assert (await container.initialize(init_body(code), timeout_s=10, max_bytes=1000)).status == 200
        run = await container.run({"value": {}}, timeout_s=30, max_bytes=1000)
        assert run.status == 200 and run.body == b'{"big": "' + b"x" * 991
        assert run.size == len(b'{"big": "') + 3 * 1024 * 1024 + len(b'"}')
        small = await container.run({"value": {}}, timeout_s=30)        # no limit: the whole answer, as before
        assert small.size is None and len(small.body) == run.size
    finally:
        await container.destroy()


ZIPPED = {
    "python:3.11": ("__main__.py", PYTHON_IMAGE, b"import subprocess\n"
                    b"def main(args):\n"
                    b"    with open('donn\xc3\xa9es.txt') as f:\n"
                    b"        read = f.read()\n"
                    b"    return {'ran': subprocess.run(['./bin/tool.sh'], capture_output=True, text=True).stdout,\n"
                    b"            'read': read}\n"),
    "nodejs:20": ("index.js", NODEJS_IMAGE, b"const fs = require('fs');\n"
                  b"const { execFileSync } = require('child_process');\n"
                  b"exports.main = () => ({ran: execFileSync('./bin/tool.sh').toString(),\n"
                  b"    read: fs.readFileSync('donn\xc3\xa9es.txt', 'utf8')});\n"),
}

TOOLS = {"python:3.11": b"#!/usr/bin/python3\nprint('from-the-tool')",
         "nodejs:20": b"#!/usr/bin/node\nconsole.log('from-the-tool')"}


@pytest.mark.parametrize("kind", sorted(ZIPPED))
async def test_a_zip_as_zip_makes_it(kind: str, factory: DockerContainerFactory) -> None:
    """A bundled tool stays executable and runs (Docker mounted /tmp noexec: EACCES even where its mode was kept),
    and a UTF-8 name Info-ZIP did not flag is itself, as in the process backend (tests/runtimes/test_zip_entries.py)."""
    name, image, code = ZIPPED[kind]
    container = await factory.create(ContainerSpec(name=f"wsk{factory.invoker}_1_guest_zip", kind=kind, image=image,
                                                   memory_mb=256))
    try:
        # the images have no shell: the tool is a script of the image's own interpreter
        tool = TOOLS[kind] + b"\n"
        archive = infozip_of({name: (code, 0o644), "bin/tool.sh": (tool, 0o755), "données.txt": (b"salut", 0o644)})
        assert (await container.initialize(init_body(archive, binary=True), timeout_s=10)).status == 200
        run = await container.run({"value": {}}, timeout_s=10)
        assert (run.status, json.loads(run.body)) == (200, {"ran": "from-the-tool\n", "read": "salut"})
    finally:
        await container.destroy()


async def test_a_native_extension_loads_from_the_actions_folder(factory: DockerContainerFactory) -> None:
    """A zip's virtualenv or node_modules with a compiled module (a .so) is mapped from /tmp: it was refused there,
    "failed to map segment from shared object", while Docker mounted it noexec."""
    container = await factory.create(python_spec(factory.invoker))
    try:
        code = ("import glob, importlib.util, os, shutil\n"
                "def main(args):\n"
                "    shutil.copy(glob.glob('/usr/lib/python3.11/lib-dynload/_bz2.*.so')[0], 'ours.so')\n"
                "    spec = importlib.util.spec_from_file_location('_bz2', os.path.abspath('ours.so'))\n"
                "    spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
                "    return {'loaded': os.getcwd().startswith('/tmp/')}\n")
        assert (await container.initialize(init_body(code), timeout_s=10)).status == 200
        run = await container.run({"value": {}}, timeout_s=10)
        assert (run.status, json.loads(run.body)) == (200, {"loaded": True})
    finally:
        await container.destroy()
