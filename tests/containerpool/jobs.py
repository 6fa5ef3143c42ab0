"""Jobs for the pool tests, shaped as the invoker makes them (docs/openwhisk.md §4 bodies)."""

from __future__ import annotations

import hashlib
import itertools
from typing import Any

from whisk.containerpool.job import Job

PY, NODE = "python:3.11", "nodejs:20"
ECHO = {PY: "def main(args):\n    return args\n", NODE: "function main(args) { return args; }\n"}
_ids = itertools.count(1)


def job(code: str | None = None, kind: str = PY, *, name: str = "echo", namespace: str = "guest",
        value: Any = None, memory_mb: int = 256, timeout_ms: int = 10_000, logs_mb: int = 10,
        concurrency: int = 1, main: str | None = None, binary: bool = False, image: str = "") -> Job:
    code = ECHO[kind] if code is None else code
    n = next(_ids)
    activation_id = f"{n:032x}"
    digest = hashlib.sha256(f"{kind}|{code}|{name}|{memory_mb}|{timeout_ms}|{concurrency}|{main}".encode()).hexdigest()
    path = f"{namespace}/{name}"
    return Job(
        activation_id=activation_id, transaction_id=f"tx{n}", invoking_namespace=namespace, action_path=path,
        action_version="0.0.1", action_digest=digest, kind=kind, image=image, code=code, main=main,
        binary=binary, memory_mb=memory_mb, timeout_ms=timeout_ms, logs_mb=logs_mb, concurrency=concurrency,
        init_env={"__OW_NAMESPACE": namespace, "__OW_ACTION_NAME": f"/{path}"},
        run_body={"value": {} if value is None else value, "namespace": namespace, "action_name": f"/{path}",
                  "action_version": "0.0.1", "activation_id": activation_id, "transaction_id": f"tx{n}"},
    )
