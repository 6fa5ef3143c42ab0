"""The SQLite store's files are the platform user's only: a new data folder is 0700 and the database with its WAL
and shared-memory files 0600, whatever the umask; files an older whisk left readable are narrowed, and a folder that
already exists is reported, not changed."""

from __future__ import annotations

import os
import sqlite3
import stat
import tempfile
from pathlib import Path

import aiohttp

from tests.api.support import call, ns, unique
from tests.support.processes import GUEST_AUTH, basic_auth, whisk_server

FILES = ("whisk.db", "whisk.db-wal", "whisk.db-shm")


def mode(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


async def write_something(url: str) -> None:
    async with aiohttp.ClientSession(base_url=url, headers=basic_auth(*GUEST_AUTH.split(":"))) as guest:
        status, body = await call(guest, "PUT", ns("triggers", unique("t")), {})
        assert status == 200, body


async def test_a_new_data_folder_and_database_are_private() -> None:
    old_umask = os.umask(0o022)                      # the usual umask: without care, files come out 0644
    try:
        data = os.path.join(tempfile.mkdtemp(prefix="whisk-perm-"), "data")
        env = {"WHISK_DATA_DIR": data, "WHISK_STORE": f"sqlite://{data}/whisk.db"}
        async with whisk_server(env, log_path=f"{data}.log") as url:
            await write_something(url)
            assert mode(data) == 0o700
            for name in FILES:
                assert mode(os.path.join(data, name)) == 0o600, name
    finally:
        os.umask(old_umask)


async def test_readable_files_of_an_older_whisk_are_narrowed() -> None:
    data = tempfile.mkdtemp(prefix="whisk-perm-")
    os.chmod(data, 0o755)
    db = os.path.join(data, "whisk.db")
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE leftover (x)")
    conn.commit()                                    # the connection stays open: its -wal and -shm stay too
    for name in FILES:
        os.chmod(os.path.join(data, name), 0o644)
    try:
        log = f"{data}.log"
        env = {"WHISK_DATA_DIR": data, "WHISK_STORE": f"sqlite://{db}"}
        async with whisk_server(env, log_path=log) as url:
            await write_something(url)
            for name in FILES:
                assert mode(os.path.join(data, name)) == 0o600, name
            assert mode(data) == 0o755               # an existing folder is the operator's: reported only
        text = Path(log).read_text(encoding="utf-8")
        assert "store.sqlite.folder_open" in text and "store.sqlite.file_narrowed" in text
    finally:
        conn.close()
