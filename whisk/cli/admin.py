"""`whisk admin user create|list|delete|block|unblock|whois`, `whisk admin limits set|get|delete` and `whisk admin
activations prune`: subjects, API keys, namespace limits and old activation records, written straight to the
configured store (as OpenWhisk's `wskadmin user`, `wskadmin limits` and `tools/db/cleanUpActivations.py` do), not
over the REST API. The store comes from the injected `open_store`."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from whisk.cli.context import Context
from whisk.cli.errors import CliError
from whisk.cli.grammar import BOOL, INT, STRING, STRINGS, Command, Flag, check_args
from whisk.config import ConfigError
from whisk.entities.document import now_ms
from whisk.entities.errors import Conflict, Invalid, NotFound, WhiskError

# Domain errors end the command with the status `wsk` gives the matching HTTP error (status mod 256); a bad store URL
# or server setting (the store is the server's, read from its WHISK_* variables) with the server's status 2.
_STATUS = ((NotFound, 148), (Conflict, 153), (Invalid, 144), (ConfigError, 2))
# What opening or using the store may raise: each ends the command with one line.
_FAILURES = (WhiskError, OSError, ConfigError)


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
    make = "revoke" if ctx.flag("revoke") else "create"
    try:
        async with _open(ctx) as store:
            uuid, key = await getattr(_subjects(store), make)(namespace, ctx.flag("subject") or None, uuid, key)
    except _FAILURES as exc:
        raise _error(f"Unable to {'revoke the key of' if make == 'revoke' else 'create'} user '{namespace}'",
                     exc) from None
    ctx.out.line(f"{uuid}:{key}")


async def list_(ctx: Context) -> None:
    check_args(ctx.args, 0, 0, "No arguments are required.")
    try:
        async with _open(ctx) as store:
            rows = await _subjects(store).list()
    except _FAILURES as exc:
        raise _error("Unable to list users", exc) from None
    out = ctx.out
    out.line(out.bold(f"{'namespace':<40} {'uuid':<36} subject"))
    for row in rows:
        blocked = " (blocked)" if row.get("blocked") else ""
        out.line(f"{row.get('namespace') or '':<40} {row.get('uuid') or '':<36} {row.get('subject') or ''}{blocked}")


async def whois(ctx: Context) -> None:
    check_args(ctx.args, 1, 1, "An API key is required.")
    uuid, sep, key = ctx.args[0].partition(":")
    if not sep:
        raise CliError("The API key must have the form UUID:KEY", usage=True)
    try:
        async with _open(ctx) as store:
            found = await _subjects(store).whois(uuid, key)
    except _FAILURES as exc:
        raise _error("Unable to identify the key", exc) from None
    if found is None:
        raise _error("Unable to identify the key", NotFound("Subject id is not recognized."))
    ctx.out.line(f"subject: {found['subject']}")
    ctx.out.line(f"namespace: {found['namespace']}")
    if found["blocked"]:
        ctx.out.line("blocked: true")


async def delete(ctx: Context) -> None:
    check_args(ctx.args, 1, 1, "A namespace name is required.")
    namespace = ctx.args[0]
    try:
        async with _open(ctx) as store:
            deleted = await _subjects(store).delete(namespace)
    except _FAILURES as exc:
        raise _error(f"Unable to delete user '{namespace}'", exc) from None
    if deleted is None:
        raise _error(f"Unable to delete user '{namespace}'", NotFound(f"Namespace '{namespace}' does not exist."))
    ctx.out.ok(f"deleted user {ctx.out.bold(namespace)} with its {deleted['entities']} entities and "
               f"{deleted['activations']} activation records")


async def _set_blocked(ctx: Context, blocked: bool) -> None:
    """wskadmin user block|unblock SUBJECT...: each subject with all its namespaces."""
    check_args(ctx.args, 1, max(1, len(ctx.args)), "A subject is required.")
    verb = "block" if blocked else "unblock"
    missing = []
    try:
        async with _open(ctx) as store:
            subjects = _subjects(store)
            for subject in ctx.args:
                if await subjects.set_blocked(subject, blocked):
                    ctx.out.line(f"'{subject}' {verb}ed successfully")
                else:
                    missing.append(f"'{subject}'" + await _owner_hint(subjects, subject))
    except _FAILURES as exc:
        raise _error(f"Unable to {verb} user", exc) from None
    if missing:
        raise _error(f"Unable to {verb} user", NotFound(f"No subject {', '.join(missing)}."))


async def _owner_hint(subjects: Any, name: str) -> str:
    """A namespace's name given for its subject (`user create bob` gives namespace bob to subject bob-subject, as a
    subject has at least 5 characters): the subject to give instead."""
    for row in await subjects.list():
        if row["namespace"] == name:
            return f" (namespace '{name}' belongs to subject '{row['subject']}')"
    return ""


async def block(ctx: Context) -> None:
    await _set_blocked(ctx, True)


async def unblock(ctx: Context) -> None:
    await _set_blocked(ctx, False)


# wskadmin limits set's options: the limits document's fields, each set only when given.
_INT_LIMITS = {
    "invocationsPerMinute": "invocations per minute allowed",
    "firesPerMinute": "trigger fires per minute allowed",
    "concurrentInvocations": "concurrent invocations allowed for this namespace",
    "minActionMemory": "minimum action memory size (MB) for this namespace, within the system's range",
    "maxActionMemory": "maximum action memory size (MB) for this namespace, within the system's range",
    "minActionLogs": "minimum activation log size (MB) for this namespace, within the system's range",
    "maxActionLogs": "maximum activation log size (MB) for this namespace, within the system's range",
    "minActionTimeout": "minimum action time limit (ms) for this namespace, within the system's range",
    "maxActionTimeout": "maximum action time limit (ms) for this namespace, within the system's range",
    "minActionConcurrency": "minimum action concurrency limit for this namespace, within the system's range",
    "maxActionConcurrency": "maximum action concurrency limit for this namespace, within the system's range",
}
_SIZE_LIMITS = {
    "maxParameterSize": "maximum parameter size for this namespace (e.g. \"512 KB\")",
    "maxPayloadSize": "maximum payload size for this namespace",
    "truncationSize": "activation truncation size for this namespace (stored and shown, as wskadmin does; "
                      "whisk does not apply it)",
}
_BOOLEANS = {"yes": True, "true": True, "no": False, "false": False}


def _limit_changes(ctx: Context) -> dict[str, Any]:
    changes: dict[str, Any] = {name: ctx.flag(name) for name in (*_INT_LIMITS, *_SIZE_LIMITS) if ctx.given(name)}
    if ctx.given("allowedKinds"):
        changes["allowedKinds"] = [k for given in ctx.flag("allowedKinds") for k in given.replace(",", " ").split()]
    given = [name for name in ("storeActivations", "enableStoreActivations", "disableStoreActivations")
             if ctx.given(name)]
    if len(given) > 1:
        raise CliError(f"--{given[0]} and --{given[1]} cannot be given together.", usage=True)
    if ctx.given("storeActivations"):
        text = ctx.flag("storeActivations")
        if text.lower() not in _BOOLEANS:
            raise CliError(f"{text} is not a valid boolean.", usage=True)
        changes["storeActivations"] = _BOOLEANS[text.lower()]
    elif given:                 # wskadmin's two switches; `--enableStoreActivations=false` means what it says
        changes["storeActivations"] = ctx.flag(given[0]) == (given[0] == "enableStoreActivations")
    return changes


async def _on_limits(ctx: Context, verb: str, call: Callable[[Any, str], Awaitable[Any]]) -> tuple[str, Any]:
    """The command's NAMESPACE and what `call(subjects service, namespace)` returned; a failure of the store ends
    the command as "Unable to <verb> limits for 'NAMESPACE'"."""
    check_args(ctx.args, 1, 1, "A namespace name is required.")
    namespace = ctx.args[0]
    try:
        async with _open(ctx) as store:
            return namespace, await call(_subjects(store), namespace)
    except _FAILURES as exc:
        raise _error(f"Unable to {verb} limits for '{namespace}'", exc) from None


async def limits_set(ctx: Context) -> None:
    changes = _limit_changes(ctx)
    if not changes:
        raise CliError("No limit to set: give at least one of the limit flags (see --help).", usage=True)
    async def set_(subjects: Any, ns: str) -> bool:
        await subjects.set_limits(ns, changes)
        return bool(await subjects.exists(ns))

    namespace, exists = await _on_limits(ctx, "set", set_)
    ctx.out.line(f'Limits successfully set for "{namespace}"')
    for kind in _unknown_kinds(changes.get("allowedKinds") or []):
        ctx.out.line(f"note: '{kind}' is no action kind of this platform: it allows nothing", err=True)
    if not exists:          # as wskadmin, limits may come first; a mistyped name is said
        ctx.out.line(f"note: no namespace '{namespace}' exists yet: the limits apply once it is created", err=True)


def _unknown_kinds(kinds: list[str]) -> list[str]:
    """The kinds no action can have here (a typo would leave the namespace no kind it meant to allow); none when
    the runtime manifest cannot be read."""
    from whisk.runtimes.manifest import ManifestError, load_manifest
    try:
        manifest = load_manifest()
    except ManifestError:
        return []
    unknown = []
    for kind in kinds:
        try:
            if kind != "sequence":
                manifest.resolve(kind)
        except Invalid:
            unknown.append(kind)
    return unknown


async def limits_get(ctx: Context) -> None:
    _, doc = await _on_limits(ctx, "get", lambda subjects, ns: subjects.get_limits(ns))
    if not doc:
        ctx.out.line("No limits found, default system limits apply")
        return
    for name, value in doc.items():
        ctx.out.line(f"{name} = {value}")


async def limits_delete(ctx: Context) -> None:
    namespace, deleted = await _on_limits(ctx, "delete", lambda subjects, ns: subjects.delete_limits(ns))
    if not deleted:
        raise _error(f"Unable to delete limits for '{namespace}'", NotFound(f"No limits found for '{namespace}'."))
    ctx.out.line("Limits deleted")


# A long prune (millions of records take minutes) says how far it is on stderr at most this often, so that an operator
# sees it working and, after a Ctrl-C, how much went (each batch is committed as it goes).
PROGRESS_S = 5.0


def _progress(ctx: Context) -> Callable[[int], None]:
    due = time.monotonic() + PROGRESS_S

    def report(pruned: int) -> None:
        nonlocal due
        if time.monotonic() >= due:
            ctx.out.line(f"deleted {pruned} activation records so far", err=True)
            due = time.monotonic() + PROGRESS_S
    return report


async def prune(ctx: Context) -> None:
    check_args(ctx.args, 0, 0, "No arguments are required.")
    days = ctx.flag("days")
    if days < 0:
        raise CliError("--days must not be negative", usage=True)
    before = now_ms() - days * 86_400_000
    try:
        async with _open(ctx) as store:
            pruned = await store.prune_activations(before, _progress(ctx))
    except _FAILURES as exc:
        raise _error("Unable to prune activations", exc) from None
    ctx.out.ok(f"deleted {pruned} activation record{'' if pruned == 1 else 's'} older than {days} "
               f"day{'' if days == 1 else 's'}")


_STORE = Flag("store", "", STRING, help="the store `URL` (default: the server's, from WHISK_STORE, else the sqlite "
                                        "file in WHISK_DATA_DIR)")
_LIMIT_FLAGS = (
    *(Flag(name, "", INT, help=text) for name, text in _INT_LIMITS.items()),
    *(Flag(name, "", STRING, help=text) for name, text in _SIZE_LIMITS.items()),
    Flag("allowedKinds", "", STRINGS, help="runtime kinds allowed in this namespace (repeat the flag, or separate "
                                           "them with commas)"),
    Flag("storeActivations", "", STRING,
         help="keep this namespace's activation records: `BOOL` (true, false, yes or no)"),
    Flag("enableStoreActivations", "", BOOL, help="keep this namespace's activation records (wskadmin's switch)"),
    Flag("disableStoreActivations", "", BOOL,
         help="keep no activation record of this namespace (wskadmin's switch)"),
)

GROUP = Command("admin", "administer the platform: subjects, their API keys, namespace limits and old activation "
                "records (talks to the store directly)",
                children=(
    Command("user", "create, list, delete, block, unblock and identify subjects, namespaces and API keys", children=(
        Command("create NAMESPACE", "create a namespace (and its subject) with a new API key; prints UUID:KEY", (
            _STORE,
            Flag("subject", "", STRING, help="the `SUBJECT` owning the namespace (default: the namespace name; "
                                         "NAME-subject for a name shorter than 5 characters)"),
            Flag("api-key", "", STRING, help="use this `UUID:KEY` instead of generating one"),
            Flag("revoke", "", BOOL, help="give the existing namespace a new key (keeping its uuid and all it "
                                          "holds); the old key stops working within 30 s"),
        ), create),
        Command("list", "list namespaces with their subject and uuid (never keys), and which subjects are blocked",
                (_STORE,), list_),
        Command("delete NAMESPACE", "delete a namespace, its API key and everything it holds (actions, packages, "
                "triggers, rules, activation records, limits)", (_STORE,), delete),
        Command("block SUBJECT...", "block subjects with all their namespaces: their keys, web actions, API "
                "routes and alarms stop working, and invokers refuse their activations not yet run (servers apply "
                "it within 30 s)", (_STORE,), block),
        Command("unblock SUBJECT...", "unblock subjects (servers apply it within 30 s)", (_STORE,), unblock),
        Command("whois UUID:KEY", "identify the subject and namespace an API key belongs to (and whether the subject "
                "is blocked)", (_STORE,), whois),
    )),
    Command("limits", "set, get and delete a namespace's limits (servers apply them within 30 s)", children=(
        Command("set NAMESPACE", "set limits for a namespace; limits not given keep their value",
                (_STORE, *_LIMIT_FLAGS), limits_set),
        Command("get NAMESPACE", "get the limits set for a namespace (none: system defaults apply)", (_STORE,),
                limits_get),
        Command("delete NAMESPACE", "delete a namespace's limits (system defaults apply)", (_STORE,), limits_delete),
    )),
    Command("activations", "delete old activation records (whisk keeps every record until then, as OpenWhisk does)",
            children=(
        Command("prune", "delete the records of every namespace that started more than --days days ago; safe "
                "beside a running server", (
            _STORE,
            Flag("days", "", INT, default=30, help="keep the records of the last `DAYS` days"),
        ), prune),
    )),
))
