"""The sandbox's parts that need no container: the bwrap argv, the interpreter's prefix, the refusal to show the
platform's folders, the seccomp program. (What the sandbox stops is tried for real in tests/isolation.)"""

from __future__ import annotations

import json
import os
import stat
import struct
import sys
from typing import Any

import pytest

from tests.containerpool.jobs import PY
from tests.containerpool.test_process import spec
from whisk.containers.process import seccomp
from whisk.containers.process.factory import ProcessContainerFactory
from whisk.containers.process.sandbox import UID, Sandbox, SandboxUnavailable, check_hidden, interpreter_paths
from whisk.runtimes.manifest import HERE


def test_the_argv_makes_passable_parents_and_mounts_tmp_before_read_only_paths() -> None:
    argv = Sandbox("/usr/bin/bwrap", "/usr/bin/setpriv", 8 << 20).wrap(
        ["/opt/a/b", "/opt/a/b/c", "/tmp/checkout/venv"], "/tmp/whisk-proc0-x/3", None, "/tmp/whisk-proc0-x/3-api")
    pairs = list(zip(argv, argv[1:]))
    assert ("--ro-bind", "/opt/a/b") in pairs and ("--ro-bind", "/opt/a/b/c") not in pairs    # inside one already
    for folder in ("/opt", "/opt/a", "/tmp/checkout", "/tmp/whisk-proc0-x"):
        i = argv.index(folder)
        assert argv[i - 3:i] == ["--perms", "0755", "--dir"], folder      # not bwrap's 0700: the user must pass
    assert argv.index("/tmp") < argv.index("/tmp/checkout/venv")         # a checkout under /tmp stays visible
    assert argv[argv.index("--size") + 1] == str(8 << 20)
    assert argv[-12:] == ["/usr/bin/setpriv", "--reuid", UID, "--regid", UID, "--clear-groups", "--bounding-set",
                          "-all", "--inh-caps", "-all", "--no-new-privs", "--"]
    assert "--unshare-user" not in argv and "--new-session" not in argv
    assert "--unshare-net" in argv                          # its own loopback only; the API host is relayed there
    i = argv.index("/tmp/whisk-proc0-x/3-api")
    assert argv[i - 1:i + 2] == ["--ro-bind", "/tmp/whisk-proc0-x/3-api", "/run/whisk-api"]


def test_the_interpreter_prefix_is_found_for_the_name_and_the_file_it_links_to() -> None:
    paths = interpreter_paths(sys.executable)
    assert os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))) in paths
    assert interpreter_paths("/usr/bin/node")[0] == "/usr"
    assert "/" not in interpreter_paths("/bin/sh")                           # /bin/sh -> "/": never bound


def test_a_read_only_path_that_would_show_the_platforms_data_is_refused() -> None:
    check_hidden(["/usr", "/opt/runtime"], ["/var/lib/whisk", "/opt/runtimex"])
    with pytest.raises(SandboxUnavailable, match="contains the platform's /var/lib/whisk"):
        check_hidden(["/usr", "/var"], ["/var/lib/whisk"])
    with pytest.raises(SandboxUnavailable):
        check_hidden(["/var/lib/whisk"], ["/var/lib/whisk"])


async def test_a_factory_refuses_a_kind_whose_folders_hold_the_platforms_data(proc_root, manifest) -> None:
    async with ProcessContainerFactory(manifest, root_dir=proc_root, hidden=(str(HERE / "python" / "data"),)) as f:
        with pytest.raises(SandboxUnavailable, match="python"):
            await f.create(spec(PY))
        assert f.containers == []


def test_the_seccomp_program_is_classic_bpf_for_this_machine() -> None:
    program = seccomp.program("x86_64")
    insns = [struct.unpack("<HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
    assert insns[0] == (0x20, 0, 0, 4) and insns[1][3] == 0xC000003E        # the arch is checked first
    assert insns[-3:] == [(0x06, 0, 0, 0x7FFF0000), (0x06, 0, 0, 0x00050000 | 38), (0x06, 0, 0, 0x00050000 | 1)]
    for n, (code, jt, jf, _k) in enumerate(insns):                         # every jump lands inside the program
        assert code == 0x06 or n + 1 + max(jt, jf) < len(insns)
    assert seccomp.program("riscv64") is None and len(seccomp.program("aarch64")) == 8 * (len(insns) - 1)


async def test_a_socket_replaced_in_its_folder_does_not_redirect_the_platform(factory: ProcessContainerFactory) -> None:
    """Once a sandbox's proxy listens, its socket folder is root's and read-only for the container, and the platform
    reaches the socket it found, not whatever the path names later: a link put there (as root here, which the
    container's user can no longer do) to another container's socket must not carry the next run to that container."""
    from tests.containerpool.test_process import init_value
    from whisk.containers.process.sandbox import inside_root

    code = "import os\ndef main(a):\n    return {'uid': os.getuid()}\n"
    first, second = await factory.create(spec(PY, name="wsk0_1_guest_a")), await factory.create(
        spec(PY, name="wsk0_1_bob_b"))
    try:
        for c in (first, second):
            assert (await c.initialize(init_value(code), timeout_s=10)).status == 200
        uids = [json.loads((await c.run({"value": {}}, timeout_s=10)).body)["uid"] for c in (first, second)]
        assert uids[0] != uids[1]
        folder = inside_root(first.pid, first._folder)
        assert folder is not None
        info = os.stat(folder)
        assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, 0o755)      # the container's user cannot write it
        os.unlink(f"{folder}/proxy.sock")
        os.symlink(inside_root(second.pid, f"{second._folder}/proxy.sock"), f"{folder}/proxy.sock")
        idle, first._client._idle = first._client._idle, []         # the next run opens a new connection
        for connection in idle:
            connection.close()
        r = await first.run({"value": {}}, timeout_s=10)
        assert r.status == 200, r
        assert json.loads(r.body)["uid"] == uids[0]
    finally:
        await first.destroy()
        await second.destroy()


async def answer_of(factory: ProcessContainerFactory, name: str, code: str) -> Any:
    """What a Python action answers once, in a container of its own (destroyed after)."""
    from tests.containerpool.test_process import init_value

    container = await factory.create(spec(PY, name=name))
    try:
        assert (await container.initialize(init_value(code), timeout_s=10)).status == 200
        r = await container.run({"value": {}}, timeout_s=10)
        assert r.status == 200, r
        return json.loads(r.body)
    finally:
        await container.destroy()


async def test_an_action_has_a_dev_shm_as_in_a_docker_container(factory: ProcessContainerFactory) -> None:
    """Python's multiprocessing makes its locks and queues in /dev/shm, which a Docker container (OpenWhisk's) has, 64
    MB of tmpfs: without one, a Lock, a Pool or a ProcessPoolExecutor failed with PermissionError in the sandbox."""
    code = ("import multiprocessing, os\n"
            "def main(a):\n"
            "    with multiprocessing.Lock():\n"
            "        pass\n"
            "    vfs = os.statvfs('/dev/shm')\n"
            "    return {'bytes': vfs.f_blocks * vfs.f_frsize}\n")
    assert await answer_of(factory, "wsk0_1_guest_shm", code) == {"bytes": 64 << 20}


async def test_the_containers_user_has_an_account_as_root_has_in_a_docker_container(
        factory: ProcessContainerFactory) -> None:
    """OpenWhisk's actions run as root, whom /etc/passwd names; the sandbox's user had no entry there, so what looks
    the user up failed: getpass.getuser() (paramiko's default user), Node.js's os.userInfo(), libpq."""
    code = ("import getpass, grp, os, pwd\n"
            "def main(a):\n"
            "    me = pwd.getpwuid(os.getuid())\n"
            "    return {'user': getpass.getuser(), 'name': me.pw_name, 'home': me.pw_dir,\n"
            "            'group': grp.getgrgid(os.getgid()).gr_name, 'root': pwd.getpwnam('root').pw_uid}\n")
    assert await answer_of(factory, "wsk0_1_guest_who", code) == {"user": "action", "name": "action", "home": "/tmp",
                                                                    "group": "action", "root": 0}


async def test_an_action_gets_no_vsock_socket_past_its_network_namespace(factory: ProcessContainerFactory) -> None:
    """vsock is not confined by a network namespace: on a virtual machine (this one has it) a sandboxed action could
    listen for, or call, the hypervisor's side past its empty network. Docker's default profile refuses the family;
    the sandbox's filter does too, and leaves the other families alone (the relay's TCP, unix sockets)."""
    code = ("import socket\n"
            "def attempt(family, kind):\n"
            "    try:\n"
            "        socket.socket(family, kind).close()\n"
            "        return 'allowed'\n"
            "    except OSError as exc:\n"
            "        return exc.strerror\n"
            "def main(a):\n"
            "    return {'vsock': attempt(socket.AF_VSOCK, socket.SOCK_STREAM),\n"
            "            'vsock_dgram': attempt(socket.AF_VSOCK, socket.SOCK_DGRAM),\n"
            "            'tcp': attempt(socket.AF_INET, socket.SOCK_STREAM),\n"
            "            'unix': attempt(socket.AF_UNIX, socket.SOCK_STREAM)}\n")
    assert await answer_of(factory, "wsk0_1_guest_vsock", code) == {
        "vsock": "Operation not permitted", "vsock_dgram": "Operation not permitted",
        "tcp": "allowed", "unix": "allowed"}
