"""A trigger's feed (wsk's trigger.go): the controller never calls feed actions, the client does, as an ordinary
blocking invoke whose parameters carry `lifecycleEvent` (CREATE, READ, UPDATE, DELETE), `triggerName` and
`authKey`."""

from __future__ import annotations

from typing import Any

from whisk.cli import invocation, names
from whisk.cli.context import Context
from whisk.cli.errors import CliError


def lifecycle(event: str, trigger: names.QualifiedName, auth: str) -> dict[str, Any]:
    return {"lifecycleEvent": event, "triggerName": f"/{trigger.namespace}/{trigger.entity_name}", "authKey": auth}


def failure(feed: str, error: CliError) -> CliError:
    return error.within(f"Unable to configure feed '{feed}'", usage=True)


async def configure(ctx: Context, trigger: names.QualifiedName, feed: str, params: dict[str, Any],
                    event: str) -> None:
    """`configureFeed`: invoke the feed blocking and print its activation (no header); raise on failure."""
    feed_qn = names.parse(feed)
    merged = {**params, **lifecycle(event, trigger, ctx.props.auth)}
    outcome = await invocation.invoke(ctx, feed_qn, merged, blocking=True, result=False)
    try:
        invocation.report(ctx, feed_qn, outcome, blocking=True, header=False)
    except CliError as exc:
        raise failure(feed, exc) from None


async def create(ctx: Context, trigger: names.QualifiedName, feed_qn: names.QualifiedName,
                 params: dict[str, Any]) -> CliError | None:
    """Invoke the feed with CREATE after the trigger was stored: print `ok: invoked ...` and the activation, or
    show what failed and return the error the command must end with."""
    merged = {**params, **lifecycle("CREATE", trigger, ctx.props.auth)}
    outcome = await invocation.invoke(ctx, feed_qn, merged, blocking=True, result=False)
    if outcome.error is None:
        invocation.print_message(ctx, feed_qn, outcome, blocking=True, header=True)
        return None
    invocation.report_failed_blocking(ctx, feed_qn, outcome)
    return (outcome.error.within(f"Unable to configure feed '{feed_qn.full}'")
            .within(f"Unable to create trigger '{trigger.entity_name}'"))
