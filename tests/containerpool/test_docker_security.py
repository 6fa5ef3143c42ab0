"""The Docker confinement's host side (whisk/containers/docker/security.py): users, and the socket folder lock."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from whisk.containers.docker.security import action_uid, lock_folder, open_folder


def test_every_container_of_an_invoker_gets_its_own_unprivileged_user() -> None:
    uids = {action_uid(3, n) for n in range(65536)}
    assert len(uids) == 65536 and min(uids) >= 2_000_000_000 and max(uids) < 2**31
    assert not uids & {action_uid(4, n) for n in range(0, 65536, 97)}       # nor shares one with another invoker


def test_the_folder_is_locked_once_the_socket_exists_and_keeps_nothing_else(tmp_path: Path) -> None:
    folder = str(tmp_path / "run" / "abcd1234")
    uid = action_uid(3, 7)
    open_folder(folder, uid)
    opened = (uid, 0o700) if os.geteuid() == 0 else (os.geteuid(), 0o777)     # given away, else open to all
    assert (os.stat(folder).st_uid, stat.S_IMODE(os.stat(folder).st_mode)) == opened
    assert stat.S_IMODE(os.stat(os.path.dirname(folder)).st_mode) == 0o711
    assert lock_folder(folder, "proxy.sock") is False                      # no socket yet: still open
    assert (os.stat(folder).st_uid, stat.S_IMODE(os.stat(folder).st_mode)) == opened
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(os.path.join(folder, "proxy.sock"))
        os.mkdir(os.path.join(folder, "stash"))                            # what a container might leave
        Path(folder, "stash", "big").write_bytes(b"x" * 1000)
        Path(folder, "note").write_text("hi")
        assert lock_folder(folder, "proxy.sock") is True
    assert (os.stat(folder).st_uid, stat.S_IMODE(os.stat(folder).st_mode)) == (os.geteuid(), 0o755)
    assert os.listdir(folder) == ["proxy.sock"]


def test_a_socket_name_that_is_not_a_socket_is_removed(tmp_path: Path) -> None:
    folder = str(tmp_path / "run" / "link")
    open_folder(folder, action_uid(3, 8))
    os.symlink("/var/run/docker.sock", os.path.join(folder, "proxy.sock"))  # the invoker must never follow it
    assert lock_folder(folder, "proxy.sock") is False
    assert os.listdir(folder) == [] and stat.S_IMODE(os.stat(folder).st_mode) == 0o755


def test_the_containers_user_can_reach_its_socket_at_every_step_of_the_lock(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy may still be using its socket's path when the lock comes (a chmod after bind, in an image of someone
    else's): the folder is never left owned by another user without search permission for the container's."""
    folder = str(tmp_path / "run" / "reach")
    uid = action_uid(3, 9)
    open_folder(folder, uid)
    steps: list[tuple[str, bool]] = []

    def searchable() -> bool:
        info = os.stat(folder)
        return bool(info.st_mode & (stat.S_IXUSR if info.st_uid == uid else stat.S_IXOTH))

    def recording(name: str, call):
        def wrapper(path, *args, **kwargs):
            result = call(path, *args, **kwargs)
            if path == folder:
                steps.append((name, searchable()))
            return result
        return wrapper

    monkeypatch.setattr(os, "chown", recording("chown", os.chown))
    monkeypatch.setattr(os, "chmod", recording("chmod", os.chmod))
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(os.path.join(folder, "proxy.sock"))
        assert lock_folder(folder, "proxy.sock") is True
    assert steps and all(ok for _, ok in steps), steps
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o755


def test_a_link_swapped_over_the_socket_while_the_lock_is_taken_is_removed(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The container owns the folder until the chown: its code (a blackbox image's own entrypoint) can rename a link
    over the socket the lock has just seen; the invoker, which connects by that path as root, must not keep it."""
    folder = str(tmp_path / "run" / "swap")
    open_folder(folder, action_uid(3, 10))
    sock = os.path.join(folder, "proxy.sock")
    chmod = os.chmod

    def swapping(path, *args, **kwargs):
        if path == folder and not os.path.islink(sock):      # the container's move, before it loses the folder
            os.symlink("/var/run/docker.sock", sock + ".new")
            os.rename(sock + ".new", sock)
        return chmod(path, *args, **kwargs)

    monkeypatch.setattr(os, "chmod", swapping)
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(sock)
        assert lock_folder(folder, "proxy.sock") is False
    assert os.listdir(folder) == []
