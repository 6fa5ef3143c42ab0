"""A second server started by mistake beside a running one: it must leave the first one's data alone and say why it
cannot start, without a traceback."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.support.processes import GUEST_AUTH, basic_auth, free_port, whisk_server
from whisk.controller.journal import Journal, JournalInUse


def test_a_journal_has_one_owner(tmp_path: Path) -> None:
    first = Journal(tmp_path / "controller0.journal")
    first.lock()
    with pytest.raises(JournalInUse, match="another whisk server is running on the data folder"):
        Journal(tmp_path / "controller0.journal").lock()
    Journal(tmp_path / "controller1.journal").lock()            # another controller instance: its own journal
    first.close()
    Journal(tmp_path / "controller0.journal").lock()             # free again once its owner closed it


async def second(env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "whisk", env=dict(os.environ) | env,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, err.decode()


async def test_a_second_server_on_the_same_data_folder_leaves_the_first_ones_work_alone(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"WHISK_DATA_DIR": str(data), "WHISK_STORE": f"sqlite://{data}/whisk.db"}
    # The action outlasts both second starts however loaded the machine is (3 s did not, twice 1.5 s of start-up);
    # the first server's stop then cuts it short after a second instead of waiting for it.
    async with whisk_server(env | {"WHISK_SHUTDOWN_GRACE_S": "1"}) as url:
        async with aiohttp.ClientSession(base_url=url, headers=basic_auth(*GUEST_AUTH.split(":"))) as s:
            code = "import time\ndef main(a):\n    time.sleep(60)\n    return {'slept': True}\n"
            async with s.put("/api/v1/namespaces/_/actions/slow", json={"exec": {"kind": "python:3", "code": code}}):
                pass
            async with s.post("/api/v1/namespaces/_/actions/slow") as r:
                activation_id = (await r.json())["activationId"]
            journal = (data / "controller0.journal").read_bytes()
            assert activation_id.encode() in journal
            port = url.rsplit(":", 1)[1]
            for other_port in (port, str(free_port())):          # the same port, and another one
                code_, err = await second(env | {"WHISK_PORT": other_port, "WHISK_HOST": "127.0.0.1"})
                assert code_ == 1 and "Traceback" not in err, err
                assert "whisk: cannot start: another whisk server is running on the data folder" in err, err
            assert (data / "controller0.journal").read_bytes() == journal
            async with s.get(f"/api/v1/namespaces/_/activations/{activation_id}") as r:
                assert r.status == 404                           # still running: not closed as interrupted


async def test_a_port_in_use_is_said_plainly(tmp_path: Path) -> None:
    async with whisk_server() as url:
        port = url.rsplit(":", 1)[1]
        code, err = await second({"WHISK_PORT": port, "WHISK_HOST": "127.0.0.1", "WHISK_STORE": "memory://",
                                  "WHISK_DATA_DIR": str(tmp_path / "other")})
    assert code == 1 and "Traceback" not in err and "error" not in err.split("whisk: cannot start:")[0], err
    assert "whisk: cannot start: [Errno 98]" in err and "address already in use" in err, err


async def test_a_host_that_does_not_resolve_names_its_variable(tmp_path: Path) -> None:
    code, err = await second({"WHISK_HOST": "no-such-host.invalid", "WHISK_PORT": str(free_port()),
                              "WHISK_STORE": "memory://", "WHISK_DATA_DIR": str(tmp_path / "data")})
    assert code == 2 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith(
        "whisk: configuration error: WHISK_HOST: cannot listen on 'no-such-host.invalid': "), err


async def test_a_data_folder_that_cannot_be_made_names_its_variable(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    code, err = await second({"WHISK_DATA_DIR": str(tmp_path / "a-file"), "WHISK_STORE": "memory://",
                              "WHISK_PORT": str(free_port())})
    assert code == 2 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == (f"whisk: configuration error: WHISK_DATA_DIR: cannot make the folder "
                                            f"'{tmp_path}/a-file': File exists"), err
