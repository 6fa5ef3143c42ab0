"""The embedded persistent store (`WHISK_STORE=sqlite:///<data dir>/whisk.db`): stdlib sqlite3 in WAL mode.

sqlite3 blocks, so statements (and the JSON coding of large documents) run on worker threads; the event loop just
awaits them. Writes go through one writer thread that owns the writing connection, with one exception: a small batch
of activation records is committed on the event loop itself, on a second connection that never waits for a lock
(busy: the batch goes to the writer thread) and never checkpoints (the writer thread does, off the loop), so the loop
only ever appends to the WAL in the page cache, as the controller's journal does. At low load the hop to the thread
cost more than the write: a warm invoke at one caller at a time took 0.16 ms longer and 0.1 ms more CPU, most of it
the loop and the thread handing the GIL to each other (docs/performance.md). Reads run on a small pool of
reader threads, each with a connection of its own: in WAL mode readers never wait for the writer or for each other,
so one tenant's heavy reads or writes do not queue another tenant's requests behind them. Activation writes are
group-committed: the records that arrive while a commit is under way go into the next single transaction, and each
`put_activation` returns once its own record is committed, so a `get_activation` right after it (on any reader)
always finds it. Entity rows keep a `summary` column (the document without an action's code) that listings read
instead of the whole document.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, TypeVar

import structlog

from whisk import logs
from whisk.entities.activation import Activation
from whisk.entities.errors import BackendUnavailable, Conflict, NotFound
from whisk.entities.json_value import encode
from whisk.store.base import (PRUNE_BATCH, UNAVAILABLE, ActivationQuery, Doc, NamespaceStates, activation_list_name,
                              listed, namespace_states, public_package)

T = TypeVar("T")
log = structlog.get_logger(__name__)
# A file that fails (locked, full disk) fails every request: a line each, bounded (logs.Bounded).
_FAILED = logs.Bounded()

# `summary` (the document without an action's code: what listings read) comes before `doc`: SQLite reaches a column
# after a large one only by walking that one's overflow pages, which would cost a listing the whole code again.
_ENTITIES = """
CREATE TABLE IF NOT EXISTS entities (
    id TEXT PRIMARY KEY, rev TEXT NOT NULL, entity_type TEXT NOT NULL, ns_root TEXT NOT NULL,
    namespace TEXT NOT NULL, updated INTEGER NOT NULL, summary TEXT, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS entities_by_root ON entities (entity_type, ns_root, updated DESC, id DESC);
CREATE INDEX IF NOT EXISTS entities_by_namespace ON entities (entity_type, namespace, updated DESC, id DESC);
"""

_SCHEMA = f"""
{_ENTITIES}
CREATE TABLE IF NOT EXISTS activations (
    id TEXT PRIMARY KEY, namespace TEXT NOT NULL, name TEXT NOT NULL, start INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS activations_by_start ON activations (namespace, start DESC, id DESC);
CREATE INDEX IF NOT EXISTS activations_by_name ON activations (namespace, name, start DESC, id DESC);
CREATE TABLE IF NOT EXISTS subjects (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS subject_namespaces (
    subject TEXT NOT NULL REFERENCES subjects (id) ON DELETE CASCADE, position INTEGER NOT NULL,
    name TEXT NOT NULL, uuid TEXT NOT NULL, PRIMARY KEY (subject, position));
CREATE INDEX IF NOT EXISTS subject_namespaces_by_uuid ON subject_namespaces (uuid);
CREATE INDEX IF NOT EXISTS subject_namespaces_by_name ON subject_namespaces (name);
CREATE TABLE IF NOT EXISTS limits (namespace TEXT PRIMARY KEY, doc TEXT NOT NULL);
"""


_BUSY_S = 5.0
# SQLite writes a WAL from its start again once it has been checkpointed, but keeps the file's size: one large
# transaction (records with megabytes of logs, a namespace purged) would hold that much disk until the server stops.
# Past a checkpoint, a WAL larger than this is truncated to it (per connection: each that writes sets it).
_WAL_LIMIT_BYTES = 64 << 20


def _prepare(conn: sqlite3.Connection) -> None:
    """WAL mode and the schema, on a file other processes (a server, `whisk admin` beside it) may be opening too.

    Switching a fresh file to WAL needs its exclusive lock, and SQLite answers "database is locked" at once, without
    waiting out the busy timeout, where waiting could deadlock; so these steps are retried for a while."""
    deadline = time.monotonic() + 2 * _BUSY_S
    delay = 0.01
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")   # WAL + NORMAL: durable across process crashes, fast commits
            conn.execute("PRAGMA foreign_keys = ON")
            conn.executescript(f"BEGIN IMMEDIATE; {_SCHEMA}")
            _add_summaries(conn)
            conn.execute("COMMIT")
            return
        except sqlite3.OperationalError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)   # the store's own worker thread, not the event loop
            delay = min(delay * 2, 0.5)


PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600
_COMPANIONS = ("", "-wal", "-shm", "-journal")   # SQLite gives these the database file's mode when it makes them


def _summary_column(conn: sqlite3.Connection) -> str:
    """What a listing without docs selects: the record without its logs and result where this SQLite has its JSON
    functions (built in since 3.38), else the whole record (the controller leaves them out then)."""
    try:
        conn.execute("SELECT json_remove('{}', '$.logs')").fetchone()
    except sqlite3.OperationalError:
        return "doc"
    return "json_remove(doc, '$.logs', '$.response.result')"


def _private_files(path: str) -> None:
    """The database holds every tenant's code, parameters and results: only the platform's user may read it.
    A missing folder is made 0700; the database file is made 0600 before SQLite opens it, and files left with a
    looser mode (an older whisk, another umask) are narrowed. A folder that already exists is not changed (it
    may be shared, such as /tmp), only reported when others may enter it."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, mode=PRIVATE_DIR, exist_ok=True)
    mode = os.stat(folder).st_mode & 0o777
    if mode & 0o077:
        log.warning("store.sqlite.folder_open", folder=folder, mode=oct(mode),
                    hint="the database files are 0600; make the folder 0700 to hide their names too")
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT, PRIVATE_FILE))
    for companion in _COMPANIONS:
        try:
            current = os.stat(path + companion).st_mode & 0o777
        except FileNotFoundError:
            continue
        if current & 0o077:
            os.chmod(path + companion, PRIVATE_FILE)
            log.warning("store.sqlite.file_narrowed", file=path + companion, was=oct(current), now="0o600")


def _add_summaries(conn: sqlite3.Connection) -> None:
    """A database made by an older whisk has no `summary` column: the table is made again with it before `doc`
    and the summaries are filled in (once, inside the schema's transaction; rows an older whisk writes later, at the
    next start). One document at a time: reading them all at once held every action's code in memory together on
    the first start of an upgraded database."""
    columns = [row[1] for row in conn.execute("PRAGMA table_info(entities)")]
    if "summary" not in columns:
        table, *indexes = [statement for statement in _ENTITIES.split(";") if statement.strip()]
        conn.execute("ALTER TABLE entities RENAME TO entities_before_summaries")
        conn.execute(table)
        conn.execute("INSERT INTO entities (id, rev, entity_type, ns_root, namespace, updated, doc)"
                     " SELECT id, rev, entity_type, ns_root, namespace, updated, doc FROM entities_before_summaries")
        conn.execute("DROP TABLE entities_before_summaries")          # and its indexes, whose names are reused
        for index in indexes:
            conn.execute(index)
    for (doc_id,) in conn.execute("SELECT id FROM entities WHERE summary IS NULL").fetchall():
        (doc,) = conn.execute("SELECT doc FROM entities WHERE id = ?", (doc_id,)).fetchone()
        conn.execute("UPDATE entities SET summary = ? WHERE id = ?", (json.dumps(listed(json.loads(doc))), doc_id))


# A record waits this long for others to share its transaction and its hop to the writer thread: at one caller at a
# time, each record paid both alone (measured: whisk's CPU per warm invoke 0.88-0.92 -> 0.82 ms). The blocking
# caller has its answer before this; a GET of the record waits for it (docs/architecture.md). The wait ends sooner
# when the loop has nothing else to do (`loop_idle`): a commit there delays no request.
_GATHER_S = 0.002
# Batches up to this many records (one statement) are committed on the loop (128 rows: 0.84 ms), larger ones on the
# writer thread. Under load the thread made the busy loop and itself trade the GIL, each activation held its intake
# place the longer, and batches grew while it waited (docs/performance.md: 4 -> 128 rows, +10-20 %/s at 32 callers).
_LOOP_ROWS = 128
_LOOP_BYTES = 64 * 1024   # nor when their results and logs come to more than this
_CHECKPOINT_ROWS = 1000   # rows committed on the loop between two checkpoints on the writer thread (~1000 WAL pages)
_INSERT_ACTIVATIONS = "INSERT OR REPLACE INTO activations (id, namespace, name, start, doc) VALUES "
# Rows a statement inserts: a batch goes in the largest of these that fit, so that each connection prepares at most
# these eight statements (sqlite3 caches 128 per connection) and a batch takes at most a few.
_STATEMENT_ROWS = (128, 64, 32, 16, 8, 4, 2, 1)
_INSERTS = {n: _INSERT_ACTIVATIONS + ", ".join(("(?, ?, ?, ?, ?)",) * n) for n in _STATEMENT_ROWS}
# The namespaces that have records, one index lookup each (a skip-scan by hand: SELECT DISTINCT would read every entry
# of the index), then each one's old records through (namespace, start): neither reads the table to find them.
_RECORD_NAMESPACES = ("WITH RECURSIVE ns(name) AS (SELECT min(namespace) FROM activations UNION ALL"
                      " SELECT (SELECT min(namespace) FROM activations WHERE namespace > ns.name) FROM ns"
                      " WHERE ns.name IS NOT NULL) SELECT name FROM ns WHERE name IS NOT NULL")
_PRUNE = ("DELETE FROM activations WHERE id IN"
          " (SELECT id FROM activations WHERE namespace = ? AND start < ? LIMIT ?)")
READERS = 4            # reader threads (and connections): reads in parallel with each other and with the writer


def _activation_row(record: Doc) -> tuple[str, str, str, int, str]:
    """`record` is an `Activation.to_doc()`, which has no `_rev` to leave out."""
    return (record["_id"], record.get("namespace", ""), activation_list_name(record), int(record.get("start", 0)),
            encode(record).decode())


def _insert_activations(conn: sqlite3.Connection, rows: list[tuple[str, str, str, int, str]]) -> None:
    """Insert `rows` with a few multi-row statements. sqlite3 gives the GIL back around each statement it runs and
    takes it again after, so `executemany` (a statement per row) on the writer thread waited for the busy loop thread
    once per row (up to the interpreter's 5 ms switch interval each time: 13 ms for a batch of 48 at c=32)."""
    first = 0
    while first < len(rows):
        n = next(size for size in _STATEMENT_ROWS if size <= len(rows) - first)
        conn.execute(_INSERTS[n], [value for row in rows[first:first + n] for value in row])
        first += n


def _size_of(record: Doc) -> int:
    """About the size of a record's JSON, without encoding it: its result's (as the invoker measured it) and its
    logs'; whatever has no measured size counts as large."""
    size = (record.get("response") or {}).get("size")
    logs = record.get("logs") or ()
    return (size if isinstance(size, int) else _LOOP_BYTES + 1) + sum(len(line) for line in logs)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _checkpoint_done(done: asyncio.Future[None]) -> None:
    if not done.cancelled() and done.exception() is not None:     # the next one, 1000 rows on, tries again
        log.warning("sqlite.checkpoint.failed", error=str(done.exception()))


def _revision(rev: str | None) -> str:
    generation = int(rev.split("-", 1)[0]) + 1 if rev else 1
    return f"{generation}-{uuid.uuid4().hex}"


def _activation_where(query: ActivationQuery) -> tuple[str, list[Any]]:
    clauses: list[str] = ["namespace = ?"]
    args: list[Any] = [query.namespace]
    if query.name is not None:
        clauses.append("name = ?")
        args.append(query.name)
    if query.since is not None:
        clauses.append("start >= ?")
        args.append(query.since)
    if query.upto is not None:
        clauses.append("start <= ?")
        args.append(query.upto)
    return " AND ".join(clauses), args


def _entity_where(entity_type: str, namespace: str) -> tuple[str, list[Any]]:
    column = "namespace" if "/" in namespace else "ns_root"   # a root namespace also covers its packages
    return f"entity_type = ? AND {column} = ?", [entity_type, namespace]


class SqliteStore:
    def __init__(self, path: str) -> None:
        self._path = path
        self._executor: ThreadPoolExecutor | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._local = threading.local()                  # each reader thread's own connection
        self._reader_conns: list[sqlite3.Connection] = []
        self._reader_lock = threading.Lock()
        self._pending: list[tuple[Doc, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._gathering: asyncio.Future[None] | None = None  # the flusher's wait for more records (`loop_idle`)
        self._loop_conn: sqlite3.Connection | None = None  # small activation batches, on the loop (module docstring)
        self._unchecked = 0                              # rows committed on the loop since the last checkpoint
        self._checkpoint: asyncio.Future[None] | None = None
        self._summary_column = "doc"                     # set by _open (_summary_column)
        self.created = False                             # this opening made the database file (`whisk admin` says so)

    async def __aenter__(self) -> SqliteStore:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whisk-sqlite")
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._open)
        except (sqlite3.Error, OSError) as exc:   # at start the file is named: the operator reads this line
            self._executor.shutdown(wait=False)
            raise BackendUnavailable(f"sqlite {self._path}: {exc}") from exc
        except BaseException:
            self._executor.shutdown(wait=False)
            raise
        if self._path != ":memory:":                     # an in-memory database exists on its one connection only
            self._readers = ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="whisk-sqlite-read")
            self._loop_conn = await self._run(self._connect_loop)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._flusher is not None:
            await asyncio.shield(self._flusher)
        if self._checkpoint is not None:
            await asyncio.gather(self._checkpoint, return_exceptions=True)
        assert self._executor is not None
        if self._readers is not None:
            readers, self._readers = self._readers, None
            await asyncio.to_thread(readers.shutdown, wait=True)   # reads under way finish first
        try:
            await self._run(self._close)
        finally:
            self._executor.shutdown(wait=False)   # its only job has finished: nothing left to wait for

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """On the writer thread (writes, and reads of an in-memory database)."""
        if self._executor is None:
            raise BackendUnavailable("sqlite: the store is not open")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        except (sqlite3.Error, OSError) as exc:   # a locked, corrupt or unreachable database file
            raise self._unavailable(exc) from exc

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        """On a reader thread, with that thread's connection (`self._db` resolves to it there)."""
        if self._readers is None:
            return await self._run(fn, *args)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._readers, fn, *args)
        except (sqlite3.Error, OSError) as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: BaseException) -> BackendUnavailable:
        """What a request gets when the file fails it (locked past the busy timeout, corrupt, on a full disk): the
        file's path and SQLite's words go to the log, not to the caller, as with CouchDB."""
        bound = _FAILED.fields()
        if bound is not None:
            log.warning("store.sqlite.failed", path=self._path, error=str(exc), **bound)
        return BackendUnavailable(UNAVAILABLE)

    # --- worker thread --------------------------------------------------------------------------------------
    def _open(self) -> None:
        if self._path != ":memory:":
            self.created = not os.path.exists(self._path)
            _private_files(self._path)
        conn = sqlite3.connect(self._path, isolation_level=None, timeout=_BUSY_S)   # transactions are explicit
        try:
            _prepare(conn)
            conn.execute(f"PRAGMA journal_size_limit = {_WAL_LIMIT_BYTES}")
            self._summary_column = _summary_column(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _connect_loop(self) -> sqlite3.Connection:
        # timeout 0: a lock held elsewhere is an error at once, never a wait on the loop; no automatic checkpoint
        # (it copies pages into the database and syncs it): `_checkpoint_now` runs them on the writer thread.
        conn = sqlite3.connect(self._path, isolation_level=None, timeout=0, check_same_thread=False)
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.execute(f"PRAGMA journal_size_limit = {_WAL_LIMIT_BYTES}")
        return conn

    def _checkpoint_now(self) -> None:
        assert self._conn is not None
        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")   # copies what it can; waits for no reader or writer

    def _close(self) -> None:
        if self._loop_conn is not None:
            self._loop_conn.close()
            self._loop_conn = None
        with self._reader_lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def _db(self) -> sqlite3.Connection:
        """The calling thread's connection: a reader's own, else the writer's."""
        if threading.current_thread().name.startswith("whisk-sqlite-read"):
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = sqlite3.connect(self._path, isolation_level=None, timeout=_BUSY_S, check_same_thread=False)
                self._local.conn = conn
                with self._reader_lock:
                    self._reader_conns.append(conn)
            return conn
        assert self._conn is not None
        return self._conn

    def _one(self, sql: str, args: list[Any] | tuple[Any, ...]) -> Any:
        row = self._db.execute(sql, args).fetchone()
        return row[0] if row is not None else None

    def _doc(self, sql: str, args: tuple[Any, ...]) -> Doc | None:
        text = self._one(sql, args)
        return json.loads(text) if text is not None else None

    def _exec(self, sql: str, args: tuple[Any, ...]) -> None:
        self._db.execute(sql, args)

    def _changed(self, sql: str, args: tuple[Any, ...]) -> int:
        return int(self._db.execute(sql, args).rowcount)

    def _docs(self, sql: str, args: list[Any]) -> list[Doc]:
        return [json.loads(row[0]) for row in self._db.execute(sql, args)]

    def _put_entity(self, doc: Doc) -> str:
        doc_id, rev = doc["_id"], doc.get("_rev")
        namespace = doc.get("namespace", "")
        with self._db:   # BEGIN ... COMMIT, so the revision check and the write are one step
            self._db.execute("BEGIN IMMEDIATE")
            current = self._one("SELECT rev FROM entities WHERE id = ?", (doc_id,))
            if current != rev:
                raise Conflict("Document update conflict.")
            new_rev = _revision(rev)
            self._db.execute(
                "INSERT OR REPLACE INTO entities (id, rev, entity_type, ns_root, namespace, updated, doc, summary)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (doc_id, new_rev, doc.get("entityType", ""), namespace.split("/", 1)[0], namespace,
                 int(doc.get("updated", 0)), json.dumps({**doc, "_rev": new_rev}),
                 json.dumps(listed({**doc, "_rev": new_rev}))))
        return new_rev

    def _delete_entity(self, doc_id: str, rev: str) -> None:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            current = self._one("SELECT rev FROM entities WHERE id = ?", (doc_id,))
            if current is None:
                raise NotFound()
            if current != rev:
                raise Conflict("Document update conflict.")
            self._db.execute("DELETE FROM entities WHERE id = ?", (doc_id,))

    def _write_activations(self, records: list[Doc]) -> None:
        rows = [_activation_row(record) for record in records]   # large documents are encoded here, off the loop
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")   # take the write lock first: waits out a busy writer elsewhere
            _insert_activations(self._db, rows)

    def _put_subject(self, doc: Doc) -> None:
        stored = {k: v for k, v in doc.items() if k != "_rev"}
        entries = [(stored["_id"], i, e.get("name", ""), e.get("uuid", ""))
                   for i, e in enumerate(stored.get("namespaces") or ())]
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM subject_namespaces WHERE subject = ?", (stored["_id"],))
            self._db.execute("INSERT OR REPLACE INTO subjects (id, doc) VALUES (?, ?)",
                             (stored["_id"], json.dumps(stored)))
            self._db.executemany("INSERT INTO subject_namespaces (subject, position, name, uuid) VALUES (?, ?, ?, ?)",
                                 entries)

    def _delete_subject(self, subject: str) -> bool:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            return self._db.execute("DELETE FROM subjects WHERE id = ?", (subject,)).rowcount > 0

    def _purge(self, namespace: str) -> dict[str, int]:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            entities = self._db.execute("DELETE FROM entities WHERE ns_root = ?", (namespace,)).rowcount
            activations = self._db.execute("DELETE FROM activations WHERE namespace = ?", (namespace,)).rowcount
            self._db.execute("DELETE FROM limits WHERE namespace = ?", (namespace,))
        return {"entities": entities, "activations": activations}

    def _find(self, column: str, value: str) -> tuple[Doc, Doc] | None:
        row = self._db.execute(
            f"SELECT s.doc, n.position FROM subject_namespaces n JOIN subjects s ON s.id = n.subject"
            f" WHERE n.{column} = ? ORDER BY s.id, n.position LIMIT 1", (value,)).fetchone()
        if row is None:
            return None
        doc = json.loads(row[0])
        return doc, doc["namespaces"][row[1]]

    # --- entities -----------------------------------------------------------------------------------------------
    async def get(self, doc_id: str) -> Doc | None:
        return await self._read(self._doc, "SELECT doc FROM entities WHERE id = ?", (doc_id,))

    async def put(self, doc: Doc) -> str:
        return await self._run(self._put_entity, doc)

    async def delete(self, doc_id: str, rev: str) -> None:
        await self._run(self._delete_entity, doc_id, rev)

    async def list_entities(self, entity_type: str, namespace: str, *, skip: int = 0,
                            limit: int = 30) -> list[Doc]:
        where, args = _entity_where(entity_type, namespace)
        return await self._read(self._docs, f"SELECT summary FROM entities WHERE {where}"
                               " ORDER BY updated DESC, id DESC LIMIT ? OFFSET ?", [*args, limit or -1, skip])

    async def count(self, entity_type: str, namespace: str) -> int:
        where, args = _entity_where(entity_type, namespace)
        return await self._read(self._one, f"SELECT count(*) FROM entities WHERE {where}", args)

    async def public_packages(self, namespace: str, *, skip: int = 0, limit: int = 30) -> list[Doc]:
        return (await self._read(self._public_scan, namespace, skip, limit, True))[1]

    async def count_public_packages(self, namespace: str) -> int:
        return (await self._read(self._public_scan, namespace, 0, 0, False))[0]

    def _public_scan(self, namespace: str, skip: int, limit: int, keep: bool) -> tuple[int, list[Doc]]:
        """(how many of the namespace's packages are public, the page of them when `keep`), on the reader thread
        over one statement, a row at a time: only the page is held, never every package of the namespace."""
        where, args = _entity_where("package", namespace)
        found, page = 0, []
        for (text,) in self._db.execute(f"SELECT summary FROM entities WHERE {where} ORDER BY updated DESC, id DESC",
                                        args):
            doc = json.loads(text)
            if not public_package(doc):
                continue
            found += 1
            if keep and found > skip:
                page.append(doc)
                if len(page) == limit:
                    break
        return found, page

    # --- activations --------------------------------------------------------------------------------------------
    async def put_activation(self, activation: Activation) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((activation.to_doc(), done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await done

    def loop_idle(self) -> None:
        """The loop has nothing else to do (the pool's spin says so: it waits for a container's answer, or a lone job
        has just ended): commit the records gathered so far now rather than at the end of the gathering, when the
        next request may be running."""
        if self._gathering is not None:
            _settle(self._gathering)

    async def _flush(self) -> None:
        """Commit what is pending in one transaction, again and again until nothing is left."""
        loop = asyncio.get_running_loop()
        self._gathering = gathering = loop.create_future()
        timer = loop.call_later(_GATHER_S, _settle, gathering)
        try:
            await gathering
        finally:
            timer.cancel()
            self._gathering = None
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                records = [record for record, _ in batch]
                if not self._commit_on_loop(records):
                    await self._run(self._write_activations, records)
            except Exception as exc:   # the writers' futures carry the failure to every caller in this batch
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)

    def _commit_on_loop(self, records: list[Doc]) -> bool:
        """Commit a small batch here, on the loop. False, having written nothing, for a batch too large (many
        records, or big results or logs: encoded and written on the writer thread) or when the write lock is held
        elsewhere (an entity write, `whisk admin`): the writer thread then waits for it instead."""
        conn = self._loop_conn
        if conn is None or len(records) > _LOOP_ROWS or sum(map(_size_of, records)) > _LOOP_BYTES:
            return False
        rows = [_activation_row(record) for record in records]
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return False
            raise self._unavailable(exc) from exc
        try:
            _insert_activations(conn, rows)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise self._unavailable(exc) from exc
        self._unchecked += len(rows)
        if self._unchecked >= _CHECKPOINT_ROWS and (self._checkpoint is None or self._checkpoint.done()):
            self._unchecked = 0
            self._checkpoint = asyncio.ensure_future(self._run(self._checkpoint_now))
            self._checkpoint.add_done_callback(_checkpoint_done)
        return True

    async def get_activation(self, namespace: str, activation_id: str) -> Doc | None:
        return await self._read(self._doc, "SELECT doc FROM activations WHERE id = ?",
                                (f"{namespace}/{activation_id}",))

    async def activation_ids(self, query: ActivationQuery) -> list[str]:
        where, args = _activation_where(query)
        prefix = len(query.namespace) + 1                  # a row's id is "<namespace>/<activation id>"
        ids = await self._read(self._column, f"SELECT id FROM activations WHERE {where}"
                               " ORDER BY start DESC, id DESC LIMIT ? OFFSET ?", [*args, query.limit or -1, query.skip])
        return [doc_id[prefix:] for doc_id in ids]

    def _column(self, sql: str, args: list[Any]) -> list[Any]:
        return [row[0] for row in self._db.execute(sql, args)]

    async def get_activations(self, namespace: str, activation_ids: list[str]) -> list[Doc]:
        ids = [f"{namespace}/{activation_id}" for activation_id in activation_ids]
        if not ids:
            return []
        docs = await self._read(self._docs_by_id, f"SELECT id, doc FROM activations WHERE id IN "
                                f"({', '.join('?' * len(ids))})", ids)
        return [docs[doc_id] for doc_id in ids if doc_id in docs]

    def _docs_by_id(self, sql: str, args: list[Any]) -> dict[str, Doc]:
        """Parsed here, on the reader thread, a row at a time: parsing a batch of records with 10 MB of logs each on
        the loop held it ~30 ms a record, the whole batch in one go. Each text is let go of as it is parsed."""
        return {doc_id: json.loads(text) for doc_id, text in self._db.execute(sql, args)}

    async def list_activations(self, query: ActivationQuery) -> list[Doc]:
        where, args = _activation_where(query)
        # Without docs, SQLite leaves the logs and the result out (in C, a row at a time): a page of records with
        # megabytes of logs each is never read whole into the platform's memory for a listing that shows neither.
        column = "doc" if query.docs else self._summary_column
        return await self._read(self._docs, f"SELECT {column} FROM activations WHERE {where}"
                               " ORDER BY start DESC, id DESC LIMIT ? OFFSET ?",
                               [*args, query.limit or -1, query.skip])

    async def count_activations(self, query: ActivationQuery) -> int:
        where, args = _activation_where(query)
        return await self._read(self._one, f"SELECT count(*) FROM activations WHERE {where}", args)

    async def prune_activations(self, before: int, progress: Callable[[int], None] | None = None) -> int:
        pruned = 0
        for namespace in await self._read(self._column, _RECORD_NAMESPACES, []):
            while (deleted := await self._run(self._prune_batch, namespace, before)) > 0:
                pruned += deleted
                if progress is not None:
                    progress(pruned)
                if deleted < PRUNE_BATCH:
                    break
        return pruned

    def _prune_batch(self, namespace: str, before: int) -> int:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            return int(self._db.execute(_PRUNE, (namespace, before, PRUNE_BATCH)).rowcount)

    # --- subjects and namespace limits --------------------------------------------------------------------------
    async def get_subject(self, subject: str) -> Doc | None:
        return await self._read(self._doc, "SELECT doc FROM subjects WHERE id = ?", (subject,))

    async def put_subject(self, doc: Doc) -> None:
        await self._run(self._put_subject, doc)

    async def delete_subject(self, subject: str) -> bool:
        return await self._run(self._delete_subject, subject)

    async def list_subjects(self) -> list[Doc]:
        return await self._read(self._docs, "SELECT doc FROM subjects ORDER BY id", [])

    async def find_namespace(self, uuid: str) -> tuple[Doc, Doc] | None:
        return await self._read(self._find, "uuid", uuid)

    async def find_namespace_by_name(self, namespace: str) -> tuple[Doc, Doc] | None:
        return await self._read(self._find, "name", namespace)

    async def get_limits(self, namespace: str) -> Doc | None:
        return await self._read(self._doc, "SELECT doc FROM limits WHERE namespace = ?", (namespace,))

    async def put_limits(self, namespace: str, limits: Doc) -> None:
        stored = {k: v for k, v in limits.items() if k not in ("_id", "_rev")}
        await self._run(self._exec, "INSERT OR REPLACE INTO limits (namespace, doc) VALUES (?, ?)",
                        (namespace, json.dumps(stored)))

    async def delete_limits(self, namespace: str) -> bool:
        return await self._run(self._changed, "DELETE FROM limits WHERE namespace = ?", (namespace,)) > 0

    async def namespace_states(self) -> NamespaceStates:
        return await self._read(self._namespace_states)

    def _namespace_states(self) -> NamespaceStates:
        subjects = (json.loads(row[0]) for row in self._db.execute("SELECT doc FROM subjects"))
        limits = ((row[0], json.loads(row[1])) for row in self._db.execute("SELECT namespace, doc FROM limits"))
        return namespace_states(subjects, limits)

    async def purge_namespace(self, namespace: str) -> dict[str, int]:
        return await self._run(self._purge, namespace)

    # --- health -------------------------------------------------------------------------------------------------
    async def ping(self) -> None:
        await self._run(self._one, "SELECT 1", ())
