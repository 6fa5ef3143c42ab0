"""What a Docker action container may not do: the hardening part of its HostConfig, the unprivileged user it runs
as, and the lock on its socket folder (docs/operations.md, "Threat model").

Every action container (and the relay beside one) runs:
  * as a user of its own: uid = gid = UID_BASE + 65536 * (invoker % 1024) + (n % 65536), never root, shared with
    no other container of this invoker (per-uid kernel limits such as inotify instances are then per container);
  * with every capability dropped and `no-new-privileges` (setuid binaries gain nothing), Docker's default seccomp
    profile, a private IPC namespace, its own PID namespace (Docker's default);
  * on a read-only root file system with one writable, size-bounded tmpfs at /tmp (tmpfs pages count against the
    container's memory limit as well), a pids limit, and nofile and fsize ulimits.
The socket folder bind-mounted at /run/whisk is writable only until the proxy (or relay) has made its socket: the
invoker then takes write access away and removes anything else found there (`lock_folder`), before any action code
is sent, so an action cannot fill the host's disk through it or swap the socket for a link to something else.
"""

from __future__ import annotations

import os
import shutil
import stat
from typing import Any

UID_BASE = 2_000_000_000        # far above login users, subuid ranges (100000+) and systemd-nspawn's picks
UIDS_PER_INVOKER = 65536
PIDS_LIMIT = 1024
NOFILE = 1024
FOLDER_OWNED = 0o700            # until the socket exists, the container's user must create it: owned by it,
FOLDER_OPEN = 0o777             # or open to all when the invoker is not root and cannot give it away
FOLDER_LOCKED = 0o755


def action_uid(invoker: int, n: int) -> int:
    """The n-th container's user on this invoker; below 2**31 so every tool takes it."""
    return UID_BASE + UIDS_PER_INVOKER * (invoker % 1024) + n % UIDS_PER_INVOKER


def user(uid: int) -> str:
    """The container's Config.User: numeric, as the images have no /etc/passwd."""
    return f"{uid}:{uid}"


def hardening(tmp_mb: int) -> dict[str, Any]:
    """HostConfig entries that confine one container (merged into the one factory.py builds)."""
    tmp_bytes = tmp_mb << 20
    return {
        "Privileged": False,
        "CapDrop": ["ALL"],
        "SecurityOpt": ["no-new-privileges"],
        "ReadonlyRootfs": True,
        # exec: a zip's native extensions (.so in a virtualenv or node_modules) are mapped from /tmp, and its tools
        # run from there. Docker mounts a tmpfs noexec unless told otherwise.
        "Tmpfs": {"/tmp": f"rw,exec,nosuid,nodev,size={tmp_mb}m,mode=1777"},
        "IpcMode": "private",
        "PidsLimit": PIDS_LIMIT,
        "Ulimits": [{"Name": "nofile", "Soft": NOFILE, "Hard": NOFILE},
                    {"Name": "fsize", "Soft": tmp_bytes, "Hard": tmp_bytes}],
    }


def open_folder(folder: str, uid: int) -> None:
    """Create the container's socket folder, writable for its user until `lock_folder` (blocking: use a thread).

    A root invoker gives the folder to the container's user alone; any other invoker cannot, and opens it to all
    (under a parent other users may pass but not list, with an unguessable name)."""
    parent = os.path.dirname(folder)
    if not os.path.isdir(parent):
        os.makedirs(parent, exist_ok=True)
        os.chmod(parent, 0o711)
    os.mkdir(folder)
    if os.geteuid() == 0:
        os.chown(folder, uid, uid)
        os.chmod(folder, FOLDER_OWNED)
    else:
        os.chmod(folder, FOLDER_OPEN)     # not masked by the umask, unlike mkdir's mode


def lock_folder(folder: str, socket_name: str) -> bool:
    """Once the socket exists: make the folder read-only for the container and keep nothing else in it.

    False while the socket is not there yet. A socket name that is not a socket (a link, a file) is removed and
    counts as not there. Blocking: use a thread."""
    path = os.path.join(folder, socket_name)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    # The container's user must be able to reach its socket at every moment (its proxy may still be busy with it),
    # so the mode that lets it pass comes before the owner that takes its write access away; set again after, as
    # the container, owner until then, may have changed it.
    os.chmod(folder, FOLDER_LOCKED)
    if os.stat(folder).st_uid != os.geteuid():
        os.chown(folder, os.geteuid(), os.getegid())          # back from the container's user (root invoker)
        os.chmod(folder, FOLDER_LOCKED)
    # Look again now that the container can no longer change the folder: until the chown above its user could
    # rename a link over the socket it showed, and the invoker connects by this path, as root.
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = 0
    for entry in os.scandir(folder):
        if entry.name == socket_name and stat.S_ISSOCK(mode):
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            os.unlink(entry.path)
    return stat.S_ISSOCK(mode)
