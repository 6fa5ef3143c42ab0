"""Log lines carry the fields bound around them: in the block, in tasks started inside it, and no longer after it."""

import asyncio
import json

import structlog

from whisk import logs


async def test_bound_fields_reach_every_line_of_the_block_and_its_tasks_and_no_other(capsys):
    before = structlog.get_config()
    logs.configure("json", "info")
    try:
        await _lines_logged()
    finally:
        structlog.configure(**before)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    by_event = {line["event"]: line for line in lines}
    assert by_event["inner"]["tid"] == "t2" and by_event["inner"]["activation_id"] == "a1"
    assert by_event["outer"]["tid"] == "given" and "activation_id" not in by_event["outer"]
    assert "tid" not in by_event["after"] and all(line["role"] == "standalone" for line in lines)


async def _lines_logged():
    log = structlog.get_logger("test")
    logs.bind(role="standalone")
    with logs.log_context(tid="t1"):
        with logs.log_context(activation_id="a1", tid="t2"):
            await asyncio.create_task(_log(log, "inner"))
        log.info("outer", tid="given")                   # a field of the call wins over a bound one
    log.info("after")


async def _log(log, event):
    log.info(event)
