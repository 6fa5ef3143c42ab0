"""Invoking an action and reporting the reply as `wsk` does (`printInvocationResponse`, wsk's action.go):
used by `action invoke` and by the trigger feed lifecycle calls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from whisk.cli.client import Call, entity_path, error_from
from whisk.cli.context import Context
from whisk.cli.errors import APPLICATION_ERROR, TIMED_OUT, CliError
from whisk.cli.names import QualifiedName
from whisk.cli.shapes import untyped


@dataclass(slots=True)
class Outcome:
    """A reply to an invoke: `body` (decoded JSON) and, when it failed, the error it maps to."""

    body: Any
    error: CliError | None = None

    @property
    def timed_out(self) -> bool:
        return self.error is not None and self.error.status == TIMED_OUT and not self.error.shown

    @property
    def application_error(self) -> bool:
        return self.error is not None and self.error.status == APPLICATION_ERROR and not self.error.shown


def invoke_call(qn: QualifiedName, params: dict[str, Any], *, blocking: bool, result: bool) -> Call:
    return Call("POST", entity_path(qn.namespace, "actions", qn.path),
                (("blocking", "true" if blocking else "false"), ("result", "true" if result else "false")),
                params)


def _is_application_error(body: Any) -> bool:
    """A 502 without a transaction `code`: an activation whose response has a status, or a bare {"error": ...}."""
    if not isinstance(body, dict) or body.get("code") is not None:
        return False
    response = body.get("response")
    return (isinstance(response, dict) and response.get("status") is not None) or body.get("error") is not None


async def invoke(ctx: Context, qn: QualifiedName, params: dict[str, Any], *, blocking: bool,
                 result: bool) -> Outcome:
    try:
        reply = await ctx.send(invoke_call(qn, params, blocking=blocking, result=result), check=False)
    except CliError as exc:                     # no auth, no connection: reported like any failed invoke
        return Outcome(None, exc)
    if 200 <= reply.status <= 299:
        if blocking and reply.status == 202:
            return Outcome(reply.body, CliError("Request accepted, but processing not completed yet.", TIMED_OUT,
                                                shown=False))
        return Outcome(reply.body)
    if reply.status == 502 and _is_application_error(reply.body):
        return Outcome(reply.body, CliError("The following application error was received", APPLICATION_ERROR,
                                            shown=False, http_status=502))
    return Outcome(reply.body, error_from(reply.status, reply.text))


def activation_id(body: Any) -> Any:
    if isinstance(body, dict):
        return body.get("activationId", "")
    return body if isinstance(body, list) else ""


def print_message(ctx: Context, qn: QualifiedName, outcome: Outcome, *, blocking: bool, header: bool,
                  err: bool = False) -> None:
    out = ctx.out
    if header:
        out.ok(f"invoked /{out.bold(qn.namespace)}/{out.bold(qn.entity_name)} with id "
               f"{out.bold(_text(activation_id(outcome.body)))}", err=err)
    if blocking:
        out.json(untyped(outcome.body), err=err)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def print_timeout(ctx: Context, qn: QualifiedName, outcome: Outcome) -> None:
    out = ctx.out
    out.ok(f"invoked /{out.bold(qn.namespace)}/{out.bold(qn.entity_name)}, but the request has not yet finished, "
           f"with id {out.bold(_text(activation_id(outcome.body)))}", err=True)


def report(ctx: Context, qn: QualifiedName, outcome: Outcome, *, blocking: bool, header: bool) -> None:
    """Print an invoke's outcome; raise the CliError it ends with, if any."""
    if outcome.error is None:
        print_message(ctx, qn, outcome, blocking=blocking, header=header)
        return
    if blocking and outcome.timed_out:
        print_timeout(ctx, qn, outcome)
        raise outcome.error
    if blocking and outcome.application_error:
        print_message(ctx, qn, outcome, blocking=True, header=header, err=True)
        raise outcome.error
    raise outcome.error.within(f"Unable to invoke action '{qn.entity_name}'", usage=True)


def report_failed_blocking(ctx: Context, qn: QualifiedName, outcome: Outcome) -> None:
    """`printFailedBlockingInvocationResponse` without a header (feeds): show what can be shown, raise nothing."""
    if outcome.timed_out:
        print_timeout(ctx, qn, outcome)
    elif outcome.application_error:
        print_message(ctx, qn, outcome, blocking=True, header=False, err=True)
