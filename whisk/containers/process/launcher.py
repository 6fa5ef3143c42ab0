"""Prepares a `process://` container's process, then replaces itself with the runtime's proxy (stdlib only).

Run as `python -I -S launcher.py PPID DIR CGROUP DATA_BYTES SANDBOX CPUS -- command...` by the platform, which already
put the child in its own session (start_new_session). Doing this here rather than in a `preexec_fn` keeps the
platform's fork safe for an asyncio program with threads. Steps:
1. PR_SET_PDEATHSIG=SIGKILL: the proxy dies with the platform, even when the platform is killed with SIGKILL;
   if the platform died before that call, exit at once.
2. No core dumps; the memory limit: join the memory cgroup CGROUP (when the platform gave one: the kernel then
   kills the container at its limit), else RLIMIT_DATA (private writable memory; unlike RLIMIT_AS it does not
   count the address space V8 reserves but never uses, so Node.js starts under it).
3. Unconfined (SANDBOX is "-"): work in the private folder DIR (also TMPDIR and HOME), then exec the proxy.
   Sandboxed (SANDBOX is "UID_BASE,NOFILE,NPROC,FSIZE"): the container's user is UID_BASE + this pid, unique among
   live processes; set the rlimits (RLIMIT_NPROC counts that user's processes: this container's), put the uid
   and an account of that uid (account_file) into the command (bwrap ... setpriv --reuid {uid} ...; see sandbox.py),
   and exec it with DIR as TMPDIR and HOME.
4. The CPUs it may run on (CPUS, a comma list): a child inherits the affinity of the thread that started it, the
   platform's event loop, which is pinned to a CPU of its own while it is saturated (whisk/invoker/loop_core.py).
"""

import ctypes
import os
import resource
import signal
import sys

PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> None:
    ppid, folder, cgroup, data_bytes, sandbox, cpus = int(argv[1]), argv[2], argv[3], int(argv[4]), argv[5], argv[6]
    command = argv[argv.index("--") + 1:]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        sys.exit(f"launcher: prctl failed: {os.strerror(ctypes.get_errno())}")
    if os.getppid() != ppid:
        sys.exit("launcher: the platform is gone")
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        os.sched_setaffinity(0, {int(cpu) for cpu in cpus.split(",")})
    except OSError:
        pass                                   # a CPU gone offline meanwhile: run where the platform's thread ran
    if cgroup != "-":
        with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
    elif data_bytes > 0:
        resource.setrlimit(resource.RLIMIT_DATA, (data_bytes, data_bytes))
    if sandbox == "-":
        os.makedirs(folder, mode=0o700, exist_ok=True)
        os.chdir(folder)
    else:
        uid_base, nofile, nproc, fsize = (int(n) for n in sandbox.split(","))
        for limit, value in ((resource.RLIMIT_NOFILE, nofile), (resource.RLIMIT_NPROC, nproc),
                             (resource.RLIMIT_FSIZE, fsize)):
            resource.setrlimit(limit, (value, value))
        uid = str(uid_base + os.getpid())
        accounts = {"{passwd}": account_file("/etc/passwd", f"action:x:{uid}:{uid}:action:{folder}:/usr/sbin/nologin"),
                    "{group}": account_file("/etc/group", f"action:x:{uid}:")}
        command = [uid if arg == "{uid}" else accounts.get(arg, arg) for arg in command]
    os.execvpe(command[0], command, os.environ | {"TMPDIR": folder, "HOME": folder})


def account_file(path: str, line: str) -> str:
    """The number of an inherited descriptor holding the host's `path` and `line`, which bwrap shows in its place
    (sandbox.ACCOUNTS): the container's user gets an account, as root has one in a Docker container."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        data = b""
    if data and not data.endswith(b"\n"):
        data += b"\n"
    data += line.encode() + b"\n"
    fd = os.memfd_create(os.path.basename(path), 0)
    os.set_inheritable(fd, True)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return str(fd)


if __name__ == "__main__":
    main(sys.argv)
