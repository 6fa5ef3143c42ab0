"""`whisk activation list|get|logs|result|poll` (wsk's activation.go). Activation URLs always use namespace `_`."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import signal
import time
from typing import Any

from whisk.cli import names, tables
from whisk.cli.client import Call, entity_path, sorted_query
from whisk.cli.context import Context
from whisk.cli.errors import GENERAL, CliError
from whisk.cli.grammar import BOOL, INT, Command, Flag, check_args
from whisk.cli.shapes import ACTIVATION, activation, field_names, field_value, untyped

POLL_INTERVAL_S = 2.0
_STAMP = re.compile(r"\d{4}-[01]\d-[0-3]\dT[0-2]\d:[0-6]\d:[0-6]\d.\d+Z( *(stdout|stderr):)?\s(.*)")


def strip_timestamp(line: str) -> str:
    """A log line without its leading `YYYY-MM-DDThh:mm:ss.fffZ stdout:` part (`--strip`, `get --logs`)."""
    match = _STAMP.search(line)
    return match.group(3) if match and match.group(3) else line


def list_call(*, limit: int, skip: int, name: str = "", since: int = 0, upto: int = 0, docs: bool = False) -> Call:
    query: dict[str, Any] = {"limit": limit, "skip": skip}
    if name:
        query["name"] = name
    if since:
        query["since"] = since
    if upto:
        query["upto"] = upto
    if docs:
        query["docs"] = True
    return Call("GET", entity_path(names.DEFAULT_NAMESPACE, "activations"), sorted_query(**query))


def _one_call(activation_id: str, tail: str = "") -> Call:
    return Call("GET", entity_path(names.DEFAULT_NAMESPACE, "activations", names.url_segment(activation_id)) + tail)


async def _records(ctx: Context, call: Call) -> list[dict[str, Any]]:
    reply = await ctx.send(call)
    return [r for r in reply.body if isinstance(r, dict)] if isinstance(reply.body, list) else []


async def _with_last(ctx: Context, what: str) -> list[str]:
    """`--last`: the newest activation's id becomes the first argument."""
    if not ctx.flag("last"):
        return list(ctx.args)
    try:
        records = await _records(ctx, list_call(limit=1, skip=0))
        if not records:
            raise CliError("Activation list does not contain any activations.", usage=True)
    except CliError as exc:
        raise exc.within(f"Unable to {what}") from None
    return [str(records[0].get("activationId", "")), *ctx.args]


async def list_(ctx: Context) -> None:
    check_args(ctx.args, 0, 1, "An optional namespace is the only valid argument.")
    name = names.parse(ctx.args[0]).entity_name if ctx.args else ""
    call = list_call(limit=ctx.flag("limit"), skip=ctx.flag("skip"), name=name, since=ctx.flag("since"),
                     upto=ctx.flag("upto"), docs=ctx.flag("full"))
    try:
        records = await _records(ctx, call)
    except CliError as exc:
        namespace = names.parse(ctx.args[0]).namespace if ctx.args else names.DEFAULT_NAMESPACE
        raise exc.within("Unable to obtain the list of activations for namespace "
                         f"'{names.display_namespace(namespace)}'") from None
    if ctx.flag("full"):
        ctx.out.line(ctx.out.bold("activations"))
        for record in records:
            ctx.out.json(activation(record))
        return
    tables.print_activation_rows(ctx.out, records)


def _end_time(end_ms: Any) -> str:
    seconds = end_ms // 1000 if isinstance(end_ms, int) else 0
    return dt.datetime.fromtimestamp(seconds).astimezone().strftime("%Y-%m-%d %H:%M:%S %z %Z")


async def get(ctx: Context) -> None:
    args = await _with_last(ctx, "get activation")
    check_args(args, 1, 2, "An activation ID is required.")
    field = None
    if len(args) > 1:
        field = field_names(ACTIVATION).get(args[1].lower())
        if field is None:
            raise CliError(f"Invalid field filter '{args[1]}'.")
    activation_id = args[0]
    try:
        reply = await ctx.send(_one_call(activation_id))
    except CliError as exc:
        raise exc.within(f"Unable to get activation '{activation_id}'") from None
    record = activation(reply.body if isinstance(reply.body, dict) else {})
    out = ctx.out
    if ctx.flag("summary"):
        response = record["response"]
        out.line(f"activation result for '/{record['namespace']}/{record['name']}' "
                 f"({response['status']} at {_end_time(record['end'])})")
        out.json(untyped(response.get("result")))
    elif ctx.flag("logs"):
        for line in record.get("logs") or ():
            out.line(strip_timestamp(str(line)))
    elif field is not None:
        out.ok(f"got activation {out.bold(activation_id)}, displaying field {out.bold(args[1])}")
        out.json(field_value(record, field))
    else:
        out.ok(f"got activation {out.bold(activation_id)}")
        out.json(record)


async def logs(ctx: Context) -> None:
    args = await _with_last(ctx, "get logs for activation")
    check_args(args, 1, 1, "An activation ID is required.")
    try:
        reply = await ctx.send(_one_call(args[0], "/logs"))
    except CliError as exc:
        raise exc.within(f"Unable to get logs for activation '{args[0]}'") from None
    lines = reply.body.get("logs") if isinstance(reply.body, dict) else None
    for line in lines if isinstance(lines, list) else ():
        ctx.out.line(strip_timestamp(str(line)) if ctx.flag("strip") else str(line))


async def result(ctx: Context) -> None:
    args = await _with_last(ctx, "get result for activation")
    check_args(args, 1, 1, "An activation ID is required.")
    try:
        reply = await ctx.send(_one_call(args[0], "/result"))
    except CliError as exc:
        raise exc.within(f"Unable to get result for activation '{args[0]}'") from None
    ctx.out.json(untyped(reply.body.get("result") if isinstance(reply.body, dict) else None))


async def _poll_start(ctx: Context) -> int:
    back_s = (ctx.flag("since-seconds") + 60 * ctx.flag("since-minutes") + 3600 * ctx.flag("since-hours")
              + 86400 * ctx.flag("since-days"))
    if back_s:
        return int(time.time()) * 1000 - back_s * 1000
    try:
        records = await _records(ctx, list_call(limit=1, skip=0, docs=True))
    except CliError:
        return int(time.time()) * 1000     # as `wsk`: poll from now when the first list fails
    start = records[0].get("start") if records else None
    return start + 1 if isinstance(start, int) else 0


async def _poll_loop(ctx: Context, name: str, deadline: float | None) -> None:
    out = ctx.out
    since = await _poll_start(ctx)
    out.line("Polling for activation logs")
    seen: set[str] = set()
    while deadline is None or time.monotonic() <= deadline:
        try:
            records = await _records(ctx, list_call(limit=0, skip=0, name=name, since=since, docs=True))
        except CliError:
            records = []                    # list errors are retried silently, as `wsk` does
        for record in records:
            activation_id = str(record.get("activationId", ""))
            if activation_id not in seen:
                out.line(f"\nActivation: '{record.get('name', '')}' ({activation_id})")
                out.json(untyped(record.get("logs")))
                seen.add(activation_id)
            start = record.get("start")
            if isinstance(start, int) and start > since:
                since = start + 1
        await asyncio.sleep(POLL_INTERVAL_S)


async def poll(ctx: Context) -> None:
    """Stream new activations and their logs until Ctrl-C / SIGTERM (exit 1) or `--exit SECONDS` (exit 0)."""
    check_args(ctx.args, 0, 1, "An optional namespace is the only valid argument.")
    name = ctx.args[0] if ctx.args else ""
    ctx.out.line("Enter Ctrl-c to exit.")
    exit_after = ctx.flag("exit")
    deadline = time.monotonic() + exit_after + 1 if exit_after > 0 else None
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    stopped = False

    def stop() -> None:
        nonlocal stopped
        stopped = True
        if task is not None:
            task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)
    try:
        await _poll_loop(ctx, name, deadline)
    except asyncio.CancelledError:
        if not stopped:
            raise
        ctx.out.line("Poll terminated")
        raise CliError("Poll terminated", GENERAL, shown=False) from None
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


GROUP = Command("activation", "work with activations", children=(
    Command("list [NAMESPACE or NAME]", "list activations", (
        Flag("skip", "s", INT, 0, "exclude the first `SKIP` number of activations from the result"),
        Flag("limit", "l", INT, 30, "only return `LIMIT` number of activations from the collection with a "
                                    "maximum LIMIT of 200 activations"),
        Flag("full", "f", BOOL, help="include full activation description"),
        Flag("upto", "", INT, help="return activations with timestamps earlier than `UPTO`; measured in "
                                   "milliseconds since Th, 01, Jan 1970"),
        Flag("since", "", INT, help="return activations with timestamps later than `SINCE`; measured in "
                                    "milliseconds since Th, 01, Jan 1970"),
    ), list_),
    Command("get (ACTIVATION_ID | --last) [FIELD_FILTER]", "get activation", (
        Flag("summary", "s", BOOL, help="summarize activation details"),
        Flag("last", "l", BOOL, help="retrieves the last activation"),
        Flag("logs", "g", BOOL, help="emit only the logs, stripped of time stamps and stream identifier"),
    ), get),
    Command("logs (ACTIVATION_ID | --last)", "get the logs of an activation", (
        Flag("last", "l", BOOL, help="retrieves the last activation"),
        Flag("strip", "r", BOOL, help="strip timestamp and stream information"),
    ), logs),
    Command("result (ACTIVATION_ID | --last)", "get the result of an activation", (
        Flag("last", "l", BOOL, help="retrieves the last activation"),
    ), result),
    Command("poll [ NAMESPACE | ACTION_NAME ]", "poll continuously for log messages from currently running actions", (
        Flag("exit", "e", INT, 0, "stop polling after `SECONDS` seconds"),
        Flag("since-seconds", "", INT, 0, "start polling for activations `SECONDS` seconds ago"),
        Flag("since-minutes", "", INT, 0, "start polling for activations `MINUTES` minutes ago"),
        Flag("since-hours", "", INT, 0, "start polling for activations `HOURS` hours ago"),
        Flag("since-days", "", INT, 0, "start polling for activations `DAYS` days ago"),
    ), poll),
))
