"""`whisk admin user create|list|delete`: subjects and API keys, written straight to the configured store (as
OpenWhisk's `wskadmin user` does), not over the REST API. The store comes from the injected `open_store`."""

from __future__ import annotations

from typing import Any

from whisk.cli.context import Context
from whisk.cli.errors import CliError
from whisk.cli.grammar import STRING, Command, Flag, check_args
from whisk.entities.errors import Conflict, Invalid, NotFound, WhiskError

# Domain errors end the command with the status `wsk` gives the matching HTTP error (status mod 256).
_STATUS = ((NotFound, 148), (Conflict, 153), (Invalid, 144))


def _error(context: str, exc: Exception) -> CliError:
    status = next((s for kind, s in _STATUS if isinstance(exc, kind)), 1)
    return CliError(f"{context}: {exc}", status)


def _subjects(store: Any) -> Any:
    from whisk.controller.subjects import Subjects   # the service, imported only when an admin command runs
    return Subjects(store)


def _open(ctx: Context) -> Any:
    if ctx.open_store is None:
        raise CliError("whisk admin needs the store; run it as `whisk admin ...`")
    from whisk.logs import configure
    configure("console", "warning")     # service log lines go to stderr and only when they matter: stdout is data
    return ctx.open_store(ctx.flag("store") or None)


async def create(ctx: Context) -> None:
    check_args(ctx.args, 1, 1, "A namespace name is required.")
    namespace = ctx.args[0]
    uuid = key = None
    if api_key := ctx.flag("api-key"):
        uuid, sep, key = api_key.partition(":")
        if not sep:
            raise CliError("--api-key must have the form UUID:KEY", usage=True)
    try:
        async with _open(ctx) as store:
            uuid, key = await _subjects(store).create(namespace, ctx.flag("subject") or None, uuid, key)
    except (WhiskError, OSError) as exc:
        raise _error(f"Unable to create user '{namespace}'", exc) from None
    ctx.out.line(f"{uuid}:{key}")


async def list_(ctx: Context) -> None:
    check_args(ctx.args, 0, 0, "No arguments are required.")
    try:
        async with _open(ctx) as store:
            rows = await _subjects(store).list()
    except (WhiskError, OSError) as exc:
        raise _error("Unable to list users", exc) from None
    out = ctx.out
    out.line(out.bold(f"{'namespace':<40} {'uuid':<36} subject"))
    for row in rows:
        out.line(f"{row.get('namespace') or '':<40} {row.get('uuid') or '':<36} {row.get('subject') or ''}")


async def delete(ctx: Context) -> None:
    check_args(ctx.args, 1, 1, "A namespace name is required.")
    namespace = ctx.args[0]
    try:
        async with _open(ctx) as store:
            deleted = await _subjects(store).delete(namespace)
    except (WhiskError, OSError) as exc:
        raise _error(f"Unable to delete user '{namespace}'", exc) from None
    if deleted is None:
        raise _error(f"Unable to delete user '{namespace}'", NotFound(f"Namespace '{namespace}' does not exist."))
    ctx.out.ok(f"deleted user {ctx.out.bold(namespace)} with its {deleted['entities']} entities and "
               f"{deleted['activations']} activation records")


_STORE = Flag("store", "", STRING, help="the store `URL` (default: WHISK_STORE, as the server reads it)")

GROUP = Command("admin", "administer the platform: subjects and their API keys (talks to the store directly)",
                children=(
    Command("user", "create, list and delete subjects, namespaces and API keys", children=(
        Command("create NAMESPACE", "create a namespace (and its subject) with a new API key; prints UUID:KEY", (
            _STORE,
            Flag("subject", "", STRING, help="the `SUBJECT` owning the namespace (default: the namespace name)"),
            Flag("api-key", "", STRING, help="use this `UUID:KEY` instead of generating one"),
        ), create),
        Command("list", "list namespaces with their subject and uuid (never keys)", (_STORE,), list_),
        Command("delete NAMESPACE", "delete a namespace, its API key and everything it holds (actions, packages, "
                "triggers, rules, activation records, limits)", (_STORE,), delete),
    )),
))
