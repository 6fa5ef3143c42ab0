"""Container pools for invoker tests that are about what the invoker does around a run, not the run."""

from __future__ import annotations

import asyncio
from typing import Any

from whisk.containerpool.job import RunResult
from whisk.entities.document import now_ms


class OneRun:
    """A pool that answers every job at once with the same small result, and keeps the ids of the jobs it ran."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    async def run(self, job: Any, on_response: Any = None) -> RunResult:
        self.ran.append(job.activation_id)
        now = now_ms()
        result = RunResult({"statusCode": 0, "result": {"ok": True}}, now, now, None, False, "warmed")
        if on_response is not None:
            on_response(result)
        await asyncio.sleep(0)
        return result
