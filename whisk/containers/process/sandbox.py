"""The sandbox of a `process://` container: Debian's bubblewrap (`bwrap`) and a user of the container's own.

bwrap runs as root without a user namespace, so that the container's user is a real unprivileged uid outside it
(`bwrap --unshare-user --uid N` started as root would map N to root for file access). It gives the container:
  * its own PID, mount, IPC, UTS and network namespaces (and cgroup namespace where the kernel has one): its network
    is its own loopback alone, where its proxy serves the API host through a unix socket the invoker relays
    (`whisk/containers/api_relay.py`, bound read-only at its MOUNT), so an action reaches the API host, as
    OpenWhisk's actions do, and no other port of the host, nor another sandbox's abstract sockets;
  * a read-only root made of the system's /usr (with /bin, /lib*, /sbin as on the host), /etc, the runtime's own
    folders (the manifest's `readOnlyPaths`) and the interpreter's install prefix, nothing else of the host: not the
    platform's data folder, not other containers' folders, not the host's /tmp;
  * a fresh /proc of its PID namespace, a minimal /dev, one writable tmpfs at /tmp of bounded size (working folder,
    HOME, TMPDIR) and one tiny tmpfs at the socket folder, the same path as on the host, where the proxy listens; the
    platform reaches that socket through /proc/<proxy pid>/root, so no host folder is writable from inside.
Inside, `setpriv` drops to uid = gid = UID_BASE + the launcher's pid (unique among live processes, so never shared
by two containers and free of any allocation state), clears supplementary groups, empties the capability bounding
and inheritable sets and sets no_new_privs before exec'ing the proxy. The launcher sets the rlimits first. A seccomp
filter (`seccomp.py`) refuses user namespaces, the one namespace an unprivileged user could still create.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass

from whisk.containers.api_relay import MOUNT as API_MOUNT
from whisk.containers.base import ContainerError
from whisk.containers.process import seccomp

UID_BASE = 1_900_000_000            # + a pid (< 2**22): below docker://'s range (2_000_000_000+), above subuid ranges
UID = "{uid}"                       # replaced by the launcher, which knows its own pid
# The descriptors of the /etc/passwd and /etc/group the container sees: the host's with an `action` account of the
# container's uid added (launcher.py makes them), so that what looks the user up finds it, as root is found in a
# Docker container (OpenWhisk's actions run as root). ACCOUNTS are the files, each with its placeholder.
ACCOUNTS = (("{passwd}", "/etc/passwd"), ("{group}", "/etc/group"))
NOFILE = 1024                       # as docker:// containers
NPROC = 1024                        # per uid, so per container: RLIMIT_NPROC counts every process (and thread)
SOCKET_TMPFS_BYTES = 1 << 20
SYSTEM_DIRS = ("/usr", "/etc")
# /proc entries a sandbox sees empty (files) or as an empty read-only folder, as docker masks them (its default
# `MaskedPaths`), and `key-users`, which lists the uids that hold keys: other sandboxes' users. Those this kernel has.
MASKED_PROC = ("/proc/keys", "/proc/key-users", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
               "/proc/latency_stats", "/proc/kcore", "/proc/acpi", "/proc/scsi", "/proc/asound")
MASK_FILE, MASK_DIR = "empty", "empty.d"      # their stand-ins, in the folder `prepare_masks` fills
SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")   # symlinks into /usr on merged-/usr hosts
WORKDIR = "/tmp"
# POSIX shared memory (Python's multiprocessing locks, queues and pools), as a Docker container has it: a tmpfs of
# docker's default size, counted in the container's memory as /tmp is. bwrap's /dev has only a root-owned folder there.
SHM_DIR, SHM_BYTES = "/dev/shm", 64 << 20
HOW_TO = ("run whisk as root with bubblewrap installed (apt-get install bubblewrap), or use WHISK_CONTAINERS=docker://,"
          " or set WHISK_TRUST_ALL_CODE=true if every action's code is trusted (then actions run unconfined)")


class SandboxUnavailable(ContainerError):
    """The process sandbox cannot be had on this machine; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Sandbox:
    bwrap: str
    setpriv: str
    tmp_bytes: int
    seccomp: bytes | None = None        # the filter's program; None where seccomp.py knows no such architecture

    def filter_fd(self) -> int | None:
        """A pipe's read end holding the seccomp filter, for one bwrap to read (the caller passes and closes it)."""
        if self.seccomp is None:
            return None
        read, write = os.pipe()                 # a few hundred bytes: fits the pipe's buffer, never blocks
        try:
            os.write(write, self.seccomp)
        finally:
            os.close(write)
        return read

    def launcher_arg(self) -> str:
        """What launcher.py needs to confine the container: its uid base and rlimits (nofile, nproc, fsize)."""
        # RLIMIT_FSIZE above /tmp's size: the tmpfs says ENOSPC first (a file past RLIMIT_FSIZE would get SIGXFSZ,
        # which kills a Node.js proxy); it bounds any file written elsewhere all the same.
        return f"{UID_BASE},{NOFILE},{NPROC},{self.tmp_bytes + SOCKET_TMPFS_BYTES}"

    def wrap(self, read_only: Iterable[str], socket_dir: str, filter_fd: int | None,
             api_folder: str | None = None, masks: str | None = None, accounts: bool = True) -> list[str]:
        """The argv that runs a command in the sandbox (append the command), with UID (and, with `accounts`, the
        ACCOUNTS descriptors) for the launcher to fill; `api_folder` (the host folder of its API host socket) is
        shown read-only at api_relay.MOUNT; `masks` (a folder `prepare_masks` filled) hides MASKED_PROC."""
        argv = [self.bwrap, "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net",
                "--unshare-cgroup-try", "--die-with-parent"]
        if filter_fd is not None:
            argv += ["--seccomp", str(filter_fd)]
        for link in SYSTEM_LINKS:
            if os.path.islink(link):
                argv += ["--symlink", os.readlink(link), link]
            elif os.path.isdir(link):
                argv += ["--ro-bind", link, link]
        argv += ["--proc", "/proc", "--dev", "/dev",
                 "--perms", "1777", "--size", str(self.tmp_bytes), "--tmpfs", WORKDIR,
                 "--perms", "1777", "--size", str(SHM_BYTES), "--tmpfs", SHM_DIR]
        if masks is not None:
            for path in MASKED_PROC:
                if os.path.isdir(path):         # the sandbox's /proc is the same kernel's: the same entries
                    argv += ["--ro-bind", os.path.join(masks, MASK_DIR), path]
                elif os.path.exists(path):
                    argv += ["--ro-bind", os.path.join(masks, MASK_FILE), path]
        made = {WORKDIR}                # folders created or tmpfs-mounted: bwrap may create folders inside them
        bound = {*SYSTEM_LINKS, "/proc", "/dev"}      # read-only mounts: nothing can be created inside
        for path in _outermost([*SYSTEM_DIRS, *read_only]):  # after /tmp: a checkout under /tmp stays visible
            argv += _parents(path, made, bound) + ["--ro-bind", path, path]
            bound.add(path)
        if accounts:
            for placeholder, path in ACCOUNTS:
                argv += ["--perms", "0444", "--ro-bind-data", placeholder, path]
        argv += _parents(socket_dir, made, bound) + ["--perms", "0777", "--size", str(SOCKET_TMPFS_BYTES),
                                                     "--tmpfs", socket_dir]
        if api_folder is not None:
            argv += _parents(API_MOUNT, made, bound) + ["--ro-bind", api_folder, API_MOUNT]
        argv += ["--remount-ro", "/", "--chdir", WORKDIR,
                 self.setpriv, "--reuid", UID, "--regid", UID, "--clear-groups", "--bounding-set", "-all",
                 "--inh-caps", "-all", "--no-new-privs", "--"]
        return argv


def prepare_masks(folder: str) -> str:
    """Make the stand-ins `wrap` binds over MASKED_PROC in `folder` (blocking): an empty file and an empty folder
    that nobody may write. bwrap reaches them as root, so `folder` itself may be private."""
    os.makedirs(folder, mode=0o700, exist_ok=True)
    with open(os.path.join(folder, MASK_FILE), "w"):
        pass
    os.chmod(os.path.join(folder, MASK_FILE), 0o444)
    os.makedirs(os.path.join(folder, MASK_DIR), exist_ok=True)
    os.chmod(os.path.join(folder, MASK_DIR), 0o555)
    return folder


def _outermost(paths: Iterable[str]) -> list[str]:
    """Absolute, normalised, sorted, without those inside another one of them (bound already)."""
    kept: list[str] = []
    for path in sorted({os.path.normpath(p) for p in paths}):
        if not any(_inside(path, k) for k in kept):
            kept.append(path)
    return kept


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _parents(path: str, made: set[str], bound: set[str]) -> list[str]:
    """Folders to create (0755, root's) before mounting at `path`: bwrap makes missing ones 0700, which the
    container's user could not pass. Folders made already are left alone; inside a read-only bind nothing can be
    created (the folder must exist on the host)."""
    argv: list[str] = []
    chain = []
    parent = os.path.dirname(path)
    while parent not in ("/", ""):
        chain.append(parent)
        parent = os.path.dirname(parent)
    for folder in reversed(chain):
        if folder in made or any(_inside(folder, b) for b in bound):
            continue
        argv += ["--perms", "0755", "--dir", folder]
        made.add(folder)
    return argv


def interpreter_paths(executable: str) -> list[str]:
    """The install prefix of the runtime's interpreter (the folder above its bin/), for the path as named and for
    the file it links to: a virtualenv's python needs its own folder (pyvenv.cfg) and the base install's stdlib."""
    paths = []
    for exe in (os.path.abspath(executable), os.path.realpath(executable)):
        prefix = os.path.dirname(os.path.dirname(exe))
        if prefix != "/":
            paths.append(prefix)
    return paths


def proxy_pid(pid: int) -> int | None:
    """The host pid of the proxy in the sandbox of launcher `pid`: bwrap's grandchild (bwrap's child, pid 1 inside,
    exists before the sandbox's root is in place; its own child, the proxy, only after). None until the proxy exists.
    Two procfs reads, no disk: fine in the event loop."""
    for _ in range(2):
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                children = f.read().split()
        except OSError:
            return None
        if not children:
            return None
        pid = int(children[0])
    return pid


def inside_root(pid: int, path: str) -> str | None:
    """Where the platform reaches `path` of the sandbox of launcher `pid`: through the root of its proxy."""
    proxy = proxy_pid(pid)
    return None if proxy is None else f"/proc/{proxy}/root{path}"


def pin_socket(path: str) -> int | None:
    """Lock the socket folder of a sandbox whose proxy listens at `path` (as the platform reaches it, through the
    proxy's root), before any action code runs there; an O_PATH descriptor of the socket itself, or None when
    `path` is not a socket.

    The folder is the sandbox's own tmpfs, open to the container's user until the proxy has bound its socket; made
    root's 0755, the action can no longer unlink the socket or put a link in its place. The descriptor is what every
    later connection goes through (`/proc/self/fd/N`), so nothing under the sandbox's root is resolved again: a
    connection by path, made as root, would follow a link planted there to another container's socket or to any
    socket of the host. A few system calls on procfs and a tmpfs: fine in the event loop."""
    folder = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        os.fchown(folder, 0, 0)
        os.fchmod(folder, 0o755)
        try:
            pinned = os.open(os.path.basename(path), os.O_PATH | os.O_NOFOLLOW, dir_fd=folder)
        except OSError:
            return None
    finally:
        os.close(folder)
    if not stat.S_ISSOCK(os.fstat(pinned).st_mode):
        os.close(pinned)
        return None
    return pinned


def check_hidden(read_only: Iterable[str], hidden: Iterable[str]) -> None:
    """Refuse a read-only path that would show one of the platform's private folders (its data, its containers')."""
    for path in read_only:
        real = os.path.realpath(path)
        for private in hidden:
            if _inside(os.path.realpath(private), real):
                raise SandboxUnavailable(f"the sandbox's read-only path {path} contains the platform's {private}")


def find_sandbox(tmp_mb: int) -> Sandbox:
    """The sandbox of this machine, or SandboxUnavailable saying why and what to do. Blocking (runs a probe)."""
    if os.geteuid() != 0:
        raise SandboxUnavailable("the process sandbox gives each container a user of its own, which needs root: "
                                 + HOW_TO)
    bwrap, setpriv = shutil.which("bwrap"), shutil.which("setpriv")
    if bwrap is None or setpriv is None:
        raise SandboxUnavailable(f"{'bwrap' if bwrap is None else 'setpriv'} not found: " + HOW_TO)
    sandbox = Sandbox(bwrap, setpriv, tmp_mb << 20, seccomp.program())
    probe(sandbox)
    return sandbox


def probe(sandbox: Sandbox) -> None:
    """Start one sandboxed process as a container would be started (namespaces, mounts, the uid drop)."""
    fd = sandbox.filter_fd()
    argv = [s.replace(UID, str(UID_BASE)) for s in sandbox.wrap(interpreter_paths(sys.executable), "/run/whisk", fd,
                                                                    accounts=False)]
    try:
        done = subprocess.run([*argv, os.path.realpath(sys.executable), "-I", "-S", "-c",
                               "import os; print(os.getuid())"], capture_output=True, timeout=30,
                              stdin=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin"},
                              pass_fds=() if fd is None else (fd,))
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxUnavailable(f"the process sandbox does not start here ({exc}): {HOW_TO}") from exc
    finally:
        if fd is not None:
            os.close(fd)
    if done.returncode != 0 or done.stdout.strip() != str(UID_BASE).encode():
        reason = done.stderr.decode(errors="replace").strip()[-300:] or f"exit status {done.returncode}"
        raise SandboxUnavailable(f"the process sandbox does not start here ({reason}): {HOW_TO}")
