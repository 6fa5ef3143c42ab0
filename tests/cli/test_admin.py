"""`whisk admin user create|list|delete` against a real (sqlite) store, through the entry point's open_store."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest

from whisk.cli.main import main
from whisk.controller.subjects import Subjects
from whisk.entities.activation import Activation
from whisk.roles import open_store
from whisk.store.base import ActivationQuery
from whisk.store.sqlite import SqliteStore

KEY = re.compile(r"^([0-9a-f-]{36}):([A-Za-z0-9]{64})\n$")


def test_user_lifecycle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = ["--store", f"sqlite://{tmp_path / 'whisk.db'}"]
    assert main(["admin", "user", "create", "alice", *store], open_store=open_store) == 0
    created = KEY.match(capsys.readouterr().out)
    assert created, "create prints only uuid:key on stdout"
    assert main(["admin", "user", "create", "alice", *store], open_store=open_store) == 153
    assert capsys.readouterr().err == "error: Unable to create user 'alice': Namespace 'alice' already exists.\n"
    given = "11111111-2222-3333-4444-555555555555:" + "k" * 64
    assert main(["admin", "user", "create", "bob", "--subject", "bob-the-subject", "--api-key", given, *store],
                open_store=open_store) == 0
    assert capsys.readouterr().out == given + "\n"
    assert main(["admin", "user", "list", *store], open_store=open_store) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["namespace", "uuid", "subject"]
    assert [line.split() for line in lines[1:]] == [["alice", created.group(1), "alice"],
                                                    ["bob", "11111111-2222-3333-4444-555555555555", "bob-the-subject"]]
    assert main(["admin", "user", "delete", "alice", *store], open_store=open_store) == 0
    assert capsys.readouterr().out == "ok: deleted user alice with its 0 entities and 0 activation records\n"
    assert main(["admin", "user", "delete", "alice", *store], open_store=open_store) == 148
    assert capsys.readouterr().err == "error: Unable to delete user 'alice': Namespace 'alice' does not exist.\n"
    assert main(["admin", "user", "create", "bad name!", *store], open_store=open_store) == 144
    assert main(["admin", "user", "create", "x", "--api-key", "nocolon", *store], open_store=open_store) == 1


def test_limits_lifecycle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`wskadmin limits set|get|delete`: set merges into what is there; a malformed value is refused, not stored."""
    store = ["--store", f"sqlite://{tmp_path / 'whisk.db'}"]
    assert main(["admin", "limits", "get", "alice", *store], open_store=open_store) == 0
    assert capsys.readouterr().out == "No limits found, default system limits apply\n"
    assert main(["admin", "limits", "set", "alice", "--invocationsPerMinute", "7", "--storeActivations", "false",
                 "--allowedKinds", "nodejs:20,python:3.11", *store], open_store=open_store) == 0
    assert capsys.readouterr().out == 'Limits successfully set for "alice"\n'
    assert main(["admin", "limits", "set", "alice", "--maxPayloadSize", "512 KB", "--allowedKinds", "nodejs:20",
                 *store], open_store=open_store) == 0
    capsys.readouterr()
    assert main(["admin", "limits", "get", "alice", *store], open_store=open_store) == 0
    assert capsys.readouterr().out.splitlines() == [
        "invocationsPerMinute = 7", "allowedKinds = ['nodejs:20']", "storeActivations = False",
        "maxPayloadSize = 512 KB"]      # printed as wskadmin (Python) prints the document's values
    assert main(["admin", "limits", "set", "alice", "--maxPayloadSize", "lots", *store], open_store=open_store) == 144
    assert capsys.readouterr().err.startswith("error: Unable to set limits for 'alice': ")
    assert main(["admin", "limits", "set", "alice", "--storeActivations", "maybe", *store],
                open_store=open_store) != 0
    assert "maybe is not a valid boolean." in capsys.readouterr().err
    assert main(["admin", "limits", "set", "alice", *store], open_store=open_store) != 0
    assert main(["admin", "limits", "delete", "alice", *store], open_store=open_store) == 0
    assert capsys.readouterr().out.endswith("Limits deleted\n")
    assert main(["admin", "limits", "delete", "alice", *store], open_store=open_store) == 148
    assert capsys.readouterr().err == "error: Unable to delete limits for 'alice': No limits found for 'alice'.\n"


@pytest.mark.parametrize("args, env", [
    (["--store", "mysql://x"], {}),
    (["--store", "memory://"], {}),            # a store of the command's own, gone at its exit: keys for nothing
    ([], {"WHISK_STORE": "memory://"}),
    ([], {"WHISK_STORE": "bogus://x"}),
    ([], {"WHISK_PORT": "abc"}),               # the server's settings are read whole, as the server reads them
])
def test_a_bad_store_setting_is_one_line(args: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["admin", "user", "list", *args], open_store=open_store) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Unable to list users: WHISK_") and err.count("\n") == 1, err


def test_activations_prune(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`whisk admin activations prune --days N` deletes the records older than N days and keeps the rest."""
    db = str(tmp_path / "whisk.db")
    now = int(time.time() * 1000)

    async def fill() -> None:
        async with SqliteStore(db) as opened:
            for i, age_days in enumerate((40, 31, 29, 0)):
                await opened.put_activation(Activation("alice", "a", "alice", f"{i:032x}", now - age_days * 86_400_000))

    async def left() -> list[str]:
        async with SqliteStore(db) as opened:
            return await opened.activation_ids(ActivationQuery("alice", limit=0))

    asyncio.run(fill())
    store = ["--store", f"sqlite://{db}"]
    assert main(["admin", "activations", "prune", *store], open_store=open_store) == 0
    assert capsys.readouterr().out == "ok: deleted 2 activation records older than 30 days\n"
    assert asyncio.run(left()) == [f"{3:032x}", f"{2:032x}"]
    assert main(["admin", "activations", "prune", "--days", "1", *store], open_store=open_store) == 0
    assert capsys.readouterr().out == "ok: deleted 1 activation record older than 1 day\n"
    assert main(["admin", "activations", "prune", "--days", "-1", *store], open_store=open_store) != 0


def test_block_and_unblock(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`wskadmin user block|unblock SUBJECT...`: a blocked subject's keys open none of its namespaces (nor do its
    web actions run, `identity_of`); unblocked, the same key works again."""
    db = str(tmp_path / "whisk.db")
    store = ["--store", f"sqlite://{db}"]
    assert main(["admin", "user", "create", "alice", *store], open_store=open_store) == 0
    created = KEY.match(capsys.readouterr().out)
    assert created

    async def opens() -> tuple[bool, bool]:
        async with SqliteStore(db) as opened:
            subjects = Subjects(opened)
            return (await subjects.authenticate(created.group(1), created.group(2)) is not None,
                    await subjects.identity_of("alice") is not None)

    assert asyncio.run(opens()) == (True, True)
    assert main(["admin", "user", "block", "alice", *store], open_store=open_store) == 0
    assert capsys.readouterr().out == "'alice' blocked successfully\n"
    assert asyncio.run(opens()) == (False, False)
    assert main(["admin", "user", "list", *store], open_store=open_store) == 0      # which subjects are blocked
    assert capsys.readouterr().out.splitlines()[1].split() == ["alice", created.group(1), "alice", "(blocked)"]
    assert main(["admin", "user", "block", "alice", "nobody", *store], open_store=open_store) == 148
    out, err = capsys.readouterr()
    assert (out, err) == ("'alice' blocked successfully\n", "error: Unable to block user: No subject 'nobody'.\n")
    assert main(["admin", "user", "unblock", "alice", *store], open_store=open_store) == 0
    assert capsys.readouterr().out == "'alice' unblocked successfully\n"
    assert asyncio.run(opens()) == (True, True)
    assert main(["admin", "user", "block", *store], open_store=open_store) != 0


@pytest.mark.parametrize("flags, error", [
    (["--invocationsPerMinute", "-5"], "invocationsPerMinute must not be negative"),
    (["--concurrentInvocations", "-1"], "concurrentInvocations must not be negative"),
    (["--firesPerMinute", "-2"], "firesPerMinute must not be negative"),
    (["--minActionMemory", "300", "--maxActionMemory", "200"],
     "minActionMemory (300) must not be above maxActionMemory (200)"),
])
def test_limits_that_mean_nothing_are_refused(flags: list[str], error: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """wskadmin's limits set takes only throttles >= 0: a negative one refused every call with "allowed: -5" and
    escaped the invokers' blocked list (which lists 0); a minimum above its maximum left no value to create an
    action with. Neither is stored, and what was there is kept."""
    store = ["--store", f"sqlite://{tmp_path / 'whisk.db'}"]
    assert main(["admin", "limits", "set", "alice", "--invocationsPerMinute", "7", *store], open_store=open_store) == 0
    capsys.readouterr()
    assert main(["admin", "limits", "set", "alice", *flags, *store], open_store=open_store) == 144
    assert capsys.readouterr().err == f"error: Unable to set limits for 'alice': {error}.\n"
    assert main(["admin", "limits", "get", "alice", *store], open_store=open_store) == 0
    assert capsys.readouterr().out == "invocationsPerMinute = 7\n"


def test_whois(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`wskadmin user whois UUID:KEY`: the subject and namespace a key opens (checked against its hash), and here
    whether the subject is blocked; a key that opens nothing, or only its uuid right, is not recognized."""
    store = ["--store", f"sqlite://{tmp_path / 'whisk.db'}"]
    assert main(["admin", "user", "create", "team-b", "--subject", "alice", *store], open_store=open_store) == 0
    key = capsys.readouterr().out.strip()
    assert main(["admin", "user", "whois", key, *store], open_store=open_store) == 0
    assert capsys.readouterr().out == "subject: alice\nnamespace: team-b\n"
    assert main(["admin", "user", "block", "alice", *store], open_store=open_store) == 0
    capsys.readouterr()
    assert main(["admin", "user", "whois", key, *store], open_store=open_store) == 0
    assert capsys.readouterr().out == "subject: alice\nnamespace: team-b\nblocked: true\n"
    wrong = key[:-1] + ("a" if key[-1] != "a" else "b")
    for unknown in (wrong, "11111111-2222-3333-4444-555555555555:" + "k" * 64):
        assert main(["admin", "user", "whois", unknown, *store], open_store=open_store) == 148
        assert capsys.readouterr().err == "error: Unable to identify the key: Subject id is not recognized.\n"
    assert main(["admin", "user", "whois", "nocolon", *store], open_store=open_store) != 0


@pytest.mark.parametrize("adapter", ["sqlite", pytest.param("couchdb", marks=pytest.mark.couchdb)])
def test_a_store_the_command_made_is_said(adapter: str, tmp_path: Path, request: pytest.FixtureRequest,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Run with other settings than the server's (another user's WHISK_DATA_DIR, a mistyped prefix), the command
    made a new, empty store and answered from it without a word: a key it printed opened nothing on the server, a
    list was empty. The store is still made (an operator may prepare one before the first start), and said."""
    if adapter == "sqlite":
        url = f"sqlite://{tmp_path / 'whisk.db'}"
    else:
        url = request.getfixturevalue("couchdb_url").replace("http://", "couchdb://") + \
            f"/t{tmp_path.name[-8:].lower().replace('_', '')}_"
    assert main(["admin", "user", "list", "--store", url], open_store=open_store) == 0
    err = capsys.readouterr().err
    assert "admin.store.new" in err and "no server has used this store" in err, err
    assert main(["admin", "user", "list", "--store", url], open_store=open_store) == 0
    assert "admin.store.new" not in capsys.readouterr().err


def test_wskadmin_store_activations_switches(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """wskadmin's `--disableStoreActivations` and `--enableStoreActivations` (what its scripts and docs use) set the
    limit as `--storeActivations false|true` does; two of the three together are refused."""
    store = ["--store", f"sqlite://{tmp_path / 'whisk.db'}"]
    for flags, shown in ((["--disableStoreActivations"], "False"), (["--enableStoreActivations"], "True"),
                         (["--enableStoreActivations=false"], "False")):
        assert main(["admin", "limits", "set", "alice", *flags, *store], open_store=open_store) == 0
        capsys.readouterr()
        assert main(["admin", "limits", "get", "alice", *store], open_store=open_store) == 0
        assert capsys.readouterr().out == f"storeActivations = {shown}\n"
    assert main(["admin", "limits", "set", "alice", "--disableStoreActivations", "--storeActivations", "true",
                 *store], open_store=open_store) != 0
    assert "cannot be given together" in capsys.readouterr().err


def test_a_long_prune_says_how_far_it_is(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Millions of records take minutes to prune, in batches each committed as it goes: the command said nothing
    until the end, so an operator could not tell it worked, nor after a Ctrl-C how much had gone. It says so on
    stderr (every 5 s; here after every batch), stdout keeping the one result line."""
    monkeypatch.setattr("whisk.cli.admin.PROGRESS_S", 0.0)
    db = str(tmp_path / "whisk.db")
    old = int(time.time() * 1000) - 40 * 86_400_000

    async def fill() -> None:
        async with SqliteStore(db) as opened:
            await asyncio.gather(*(opened.put_activation(Activation("alice", "a", "alice", f"{i:032x}", old))
                                   for i in range(5000)))

    asyncio.run(fill())
    assert main(["admin", "activations", "prune", "--store", f"sqlite://{db}"], open_store=open_store) == 0
    out, err = capsys.readouterr()
    assert out == "ok: deleted 5000 activation records older than 30 days\n"
    assert err.splitlines() == [f"deleted {n} activation records so far" for n in (2000, 4000, 5000)]


def test_limits_for_a_namespace_that_is_not_there(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Limits may be set before their namespace is made (as wskadmin), but a mistyped name took them silently and
    nothing applied them: the command says so. A name no namespace can have is refused."""
    store = ["--store", f"sqlite://{tmp_path / 'whisk.db'}"]
    assert main(["admin", "user", "create", "alice", *store], open_store=open_store) == 0
    capsys.readouterr()
    assert main(["admin", "limits", "set", "alcie", "--invocationsPerMinute", "3", *store], open_store=open_store) == 0
    assert capsys.readouterr() == ('Limits successfully set for "alcie"\n',
                                   "note: no namespace 'alcie' exists yet: the limits apply once it is created\n")
    assert main(["admin", "limits", "set", "alice", "--invocationsPerMinute", "3", *store], open_store=open_store) == 0
    assert capsys.readouterr() == ('Limits successfully set for "alice"\n', "")
    assert main(["admin", "limits", "set", "bad name!", "--invocationsPerMinute", "3", *store],
                open_store=open_store) == 144
    assert capsys.readouterr().err.startswith("error: Unable to set limits for 'bad name!': ")


def test_block_names_the_subject_of_a_namespace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`user create bob` gives namespace bob to subject bob-subject (a subject has at least 5 characters) and prints
    only the key, so `user block bob` found no subject: the refusal names the subject to give."""
    store = ["--store", f"sqlite://{tmp_path / 'whisk.db'}"]
    assert main(["admin", "user", "create", "bob", *store], open_store=open_store) == 0
    capsys.readouterr()
    assert main(["admin", "user", "block", "bob", *store], open_store=open_store) == 148
    assert capsys.readouterr().err == ("error: Unable to block user: No subject 'bob' (namespace 'bob' belongs to "
                                       "subject 'bob-subject').\n")
    assert main(["admin", "user", "block", "bob-subject", *store], open_store=open_store) == 0


def test_allowed_kinds_the_platform_does_not_have(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A mistyped kind in `--allowedKinds` was taken silently, and the namespace could then make no action of the
    kind meant: the command says which kinds no action can have here (it stores them as given, as wskadmin does).
    Aliases, `:default` names, `blackbox` and `sequence` are kinds."""
    store = ["--store", f"sqlite://{tmp_path / 'whisk.db'}"]
    assert main(["admin", "user", "create", "alice", *store], open_store=open_store) == 0
    capsys.readouterr()
    assert main(["admin", "limits", "set", "alice", "--allowedKinds", "nodejs:2O,python:3,nodejs:default",
                 "--allowedKinds", "blackbox,sequence,cobol:1", *store], open_store=open_store) == 0
    assert capsys.readouterr() == ('Limits successfully set for "alice"\n',
                                   "note: 'nodejs:2O' is no action kind of this platform: it allows nothing\n"
                                   "note: 'cobol:1' is no action kind of this platform: it allows nothing\n")


def test_revoke_gives_a_namespace_a_new_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """wskadmin's `user create --revoke`: keys are stored hashed, so a tenant who lost theirs (or had it leak) could
    only have the namespace deleted with all it held. The namespace keeps its uuid and its entities; the old key
    opens nothing, the new one does."""
    db = str(tmp_path / "whisk.db")
    store = ["--store", f"sqlite://{db}"]
    assert main(["admin", "user", "create", "alice", *store], open_store=open_store) == 0
    old = KEY.match(capsys.readouterr().out)
    assert old

    async def put_action() -> None:
        async with SqliteStore(db) as opened:
            await opened.put({"_id": "alice/a", "entityType": "action", "namespace": "alice", "name": "a"})

    async def opens(uuid: str, key: str) -> tuple[bool, bool]:
        async with SqliteStore(db) as opened:
            return await Subjects(opened).authenticate(uuid, key) is not None, await opened.get("alice/a") is not None

    asyncio.run(put_action())
    assert main(["admin", "user", "create", "alice", "--revoke", *store], open_store=open_store) == 0
    new = KEY.match(capsys.readouterr().out)
    assert new and new.group(1) == old.group(1) and new.group(2) != old.group(2)
    assert asyncio.run(opens(old.group(1), old.group(2))) == (False, True)
    assert asyncio.run(opens(new.group(1), new.group(2))) == (True, True)
    given = f"{old.group(1)}:{'k' * 64}"
    assert main(["admin", "user", "create", "alice", "--revoke", "--api-key", given, *store],
                open_store=open_store) == 0
    assert capsys.readouterr().out == given + "\n"
    for flags, status, error in (
            (["nobody", "--revoke"], 148, "Namespace 'nobody' does not exist."),
            (["alice", "--revoke", "--subject", "mallory"], 153, "Namespace 'alice' belongs to subject 'alice'."),
            (["alice", "--revoke", "--api-key", "11111111-2222-3333-4444-555555555555:" + "k" * 64], 144,
             f"The namespace's uuid is '{old.group(1)}': a new key keeps it.")):
        assert main(["admin", "user", "create", *flags, *store], open_store=open_store) == status
        assert capsys.readouterr().err == f"error: Unable to revoke the key of user '{flags[0]}': {error}\n"
    assert main(["admin", "user", "block", "alice", *store], open_store=open_store) == 0
    assert main(["admin", "user", "create", "alice", "--revoke", *store], open_store=open_store) == 153


@pytest.mark.parametrize("adapter", ["sqlite", pytest.param("couchdb", marks=pytest.mark.couchdb)])
@pytest.mark.parametrize("subject", ["_design/subjects", "_local", "other/limits"])
def test_a_subject_that_is_another_documents_id_is_refused(adapter: str, subject: str, tmp_path: Path,
                                                           request: pytest.FixtureRequest,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A subject is its document's id in CouchDB's subjects database, beside the design documents (`_design/...`;
    CouchDB reserves every id starting with `_`) and the limits documents (`NS/limits`): `--subject
    other/limits` made a subject that `limits set|delete other` then rewrote or deleted with its namespaces, and a
    `_design/` one replaced the views every authentication reads. Refused on every store, so that a subject moves
    between stores."""
    if adapter == "sqlite":
        url = f"sqlite://{tmp_path / 'whisk.db'}"
    else:
        url = request.getfixturevalue("couchdb_url").replace("http://", "couchdb://") + \
            f"/s{tmp_path.name[-8:].lower().replace('_', '')}{len(subject)}_"
    store = ["--store", url]
    assert main(["admin", "user", "create", "team-a", "--subject", subject, *store], open_store=open_store) == 144
    assert capsys.readouterr().err.endswith(
        "error: Unable to create user 'team-a': a subject may neither start with '_' nor end with '/limits'\n")
    assert main(["admin", "user", "list", *store], open_store=open_store) == 0
    assert capsys.readouterr().out.splitlines()[1:] == []
