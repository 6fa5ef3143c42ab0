"""The log as an operator follows it (docs/operations.md, "Logs"), with WHISK_LOG_FORMAT=json: the start-up line says
which whisk it is, the stop what stopped it, and the access line of a request that starts an activation names it, so
that the transaction id of a request and the activation id of its record lead to each other."""

from __future__ import annotations

import json
import os
import tempfile

import aiohttp

from tests.support.processes import GUEST_AUTH, basic_auth, whisk_server
from tests.support.waiting import until
from whisk import __version__

CODE = "def main(args):\n    return {'ok': True}\n"


def _lines(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]     # every line one JSON object


async def test_the_access_line_names_the_activation_its_answer_names_and_the_start_says_the_version() -> None:
    data = tempfile.mkdtemp(prefix="whisk-oplog-")
    log_path = os.path.join(data, "server.log")
    uuid, key = GUEST_AUTH.split(":")
    answers: list[tuple[str, str, str]] = []        # (what, tid, activation id) as the client saw them
    async with whisk_server({"WHISK_DATA_DIR": data, "WHISK_LOG_FORMAT": "json"}, log_path=log_path) as url, \
            aiohttp.ClientSession(base_url=url, headers=basic_auth(uuid, key)) as http:
        action = {"exec": {"kind": "python:3", "code": CODE}, "annotations": [{"key": "web-export", "value": True}]}
        async with http.put("/api/v1/namespaces/_/actions/hi?overwrite=true", json=action) as r:
            assert r.status == 200, await r.text()
        for what, method, path in [("blocking", "POST", "/api/v1/namespaces/_/actions/hi?blocking=true"),
                                   ("non-blocking", "POST", "/api/v1/namespaces/_/actions/hi"),
                                   ("web", "GET", "/api/v1/web/guest/default/hi.json")]:
            async with http.request(method, path, json={} if method == "POST" else None) as r:
                assert r.status in (200, 202), await r.text()
                answers.append((what, r.headers["X-Request-ID"], r.headers["x-openwhisk-activation-id"]))
        async with http.get("/api/v1/namespaces/_/actions/hi") as r:
            plain_tid = r.headers["X-Request-ID"]
        await until("the access lines", lambda: {plain_tid} <= {line.get("tid") for line in _lines(log_path)
                                                                  if line["event"] == "http.access"})
    lines = _lines(log_path)
    access = {line["tid"]: line for line in lines if line["event"] == "http.access"}
    for what, tid, activation_id in answers:
        assert access[tid].get("activation_id") == activation_id, (what, access[tid])
    assert "activation_id" not in access[plain_tid]                # a request that started none names none
    (stopping,) = [line for line in lines if line["event"] == "server.stopping"]
    assert stopping["signal"] == "SIGTERM" and lines[-1]["event"] == "server.stopped", stopping
    (started,) = [line for line in lines if line["event"] == "server.started"]
    assert started["version"] == __version__ and started["python"].count(".") == 2, started
