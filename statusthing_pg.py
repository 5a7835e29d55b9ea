"""StatusThing on PostgreSQL: the Store of statusthing.py (its section 4) over psycopg 3, so that several
StatusThing servers can share one database. Imported only for a ``postgresql://`` --db: the SQLite appliance never
needs this file, nor psycopg (``pip install 'statusthing[postgres]'``).

The queries are statusthing's own (SqlTransaction), written in SQL both engines read; here they only get
PostgreSQL's placeholders. The migrations are statusthing's too, with the column types SQLite spells its own way
translated, and the triggers written again in PL/pgSQL.

- Writes take one transaction-scoped advisory lock, so writes are serial across every server, as SQLite's are in
  one: the service's read-then-write steps (incidents, maintenance transitions, tallies) stay correct unchanged.
  A transaction's statements go out in one pipeline, so the lock is held for the round trips of what the service
  reads back, and no more: a write that reads nothing back (AddItem) is one round trip, commit included.
- Reads are REPEATABLE READ READ ONLY transactions: one consistent snapshot each, never waiting for a writer.
- Kept answers follow the database: every statement that changes data notifies ``statusthing_changes`` (once per
  transaction, at commit); each server listens, and once a second compares the database's own transaction counter
  (the snapshot's xmax) in case a notification was missed (a reconnect).
- Migrations run under a session advisory lock, so servers that start together migrate once.
"""
import contextlib
import functools
import logging
import re
import threading
import time

import psycopg
import psycopg.errors
import psycopg_pool

import statusthing as st

WRITE_LOCK = 0x53545752  # pg_advisory_xact_lock key of writes ("STWR")
MIGRATE_LOCK = 0x53544D47  # pg_advisory_lock key of migrations ("STMG")
CHANNEL = "statusthing_changes"
RECHECK_S = 1.0  # how often a server looks at the transaction counter, notified or not
GATHER_S = 0.02  # after a notification, how long to let more gather before acting on them all
POOL_SIZE = 16
CONNECT_TIMEOUT_S = 5


class _DriverLog(logging.Handler):
    """psycopg's and its pool's own warnings (a connection dropped, a reconnect failing) as statusthing's log lines,
    not as loose text on stderr."""

    def emit(self, record):
        message = record.getMessage()
        if message.startswith("discarding closed connection"):
            return  # (one this module closed on purpose, or one the database dropped: that is logged as it happens)
        st.log(level=record.levelname.lower(), event="database_driver", message=message)


_DRIVER_LOGGER = logging.getLogger("psycopg")  # (psycopg_pool logs under it too)
_DRIVER_LOGGER.addHandler(_DriverLog())
_DRIVER_LOGGER.setLevel(logging.WARNING)
_DRIVER_LOGGER.propagate = False


# -- SQL: statusthing's, in PostgreSQL's spelling ------------------------------------------------------------------

_TOKENS = re.compile(r"'(?:[^']|'')*'|\?|%|\browid\b")


@functools.lru_cache(maxsize=4096)  # (every statement passes here; the same few hundred texts over and over)
def pg_sql(sql, has_params):
    """``?`` -> ``%s`` (outside string literals), ``%`` -> ``%%`` when there are parameters, rowid -> ctid."""
    def swap(match):
        token = match.group()
        if token == "?":
            return "%s"
        if token == "%":
            return "%%" if has_params else "%"
        if token == "rowid":
            return "ctid"
        return token.replace("%", "%%") if has_params else token
    return _TOKENS.sub(swap, sql)


_DDL = [(re.compile(pattern), replacement) for pattern, replacement in (
    (r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b", "BIGSERIAL PRIMARY KEY"),
    (r"\bTEXT NOT NULL UNIQUE COLLATE NOCASE\b", "CITEXT NOT NULL UNIQUE"),
    (r"\bINTEGER\b", "BIGINT"),
    (r"\bBLOB\b", "BYTEA"),
    (r"\bREAL\b", "DOUBLE PRECISION"),
    (r"\bTEXT\b(?! COLLATE)", 'TEXT COLLATE "C"'),  # (byte order, as SQLite compares: ids sort by time)
)]


def pg_ddl(sql):
    """A statement of statusthing's migrations as PostgreSQL takes it; None for SQLite's triggers (this module
    installs its own)."""
    stripped = sql.lstrip()
    if stripped.startswith("CREATE TRIGGER"):
        return None
    if stripped.startswith("BEGIN IMMEDIATE"):
        return "BEGIN"
    if stripped.startswith(("CREATE TABLE", "ALTER TABLE")):
        for pattern, replacement in _DDL:
            sql = pattern.sub(replacement, sql)
    return sql


def _returns_rows(cursor):
    # (The result's status, not psycopg's ``description``, which builds a Column per column at every call.)
    return cursor.pgresult.status == psycopg.pq.ExecStatus.TUPLES_OK


class _Cursor:
    """A psycopg cursor as sqlite3's looks to SqlTransaction. In a pipeline its result comes later: reading it
    (rows, rowcount) waits for it then, so statements nobody reads cost no round trip of their own."""

    def __init__(self, cursor, connection):
        self._cursor, self._connection = cursor, connection

    def _has_rows(self):
        """Whether the statement returns rows (waiting for its result if need be)."""
        if self._cursor is None:
            return False
        if self._cursor.pgresult is None:
            self._connection.settle()
        return _returns_rows(self._cursor)

    @property
    def description(self):
        return self._cursor.description if self._has_rows() else None

    @property
    def rowcount(self):  # (-1 for a query, as sqlite3's: reads never count as changed rows)
        return -1 if self._cursor is None or self._has_rows() else self._cursor.rowcount

    def fetchone(self):
        return self._cursor.fetchone() if self._has_rows() else None

    def fetchall(self):
        return self._cursor.fetchall() if self._has_rows() else []

    def __iter__(self):
        return iter(self.fetchall())


class PgConnection:
    """A psycopg connection with sqlite3's ``execute``/``executemany`` (``?`` parameters) and ``total_changes``,
    for SqlTransaction and the migrations (``ddl``: translate their statements).

    With a ``pipeline`` statements are sent without waiting for their results: a write the service does not read
    back goes out whole and costs one round trip. A statement's error then comes with whatever waits next, so
    every error leaving here is named by the statement that failed (``conflict``: what its unique violation
    means): the first one sent whose result never came."""

    names_conflicts = True

    def __init__(self, conn, ddl=False, pipeline=None, one_statement=False):
        self._conn, self._ddl, self._pipeline, self._one_statement = conn, ddl, pipeline, one_statement
        self._sent = []  # (cursor, conflict) of statements whose changed rows are not yet counted
        self._changes = 0
        self.failed = False  # (the database refused a statement of this transaction)

    def execute(self, sql, params=(), conflict=None):
        if self._ddl:
            sql = pg_ddl(sql)
            if sql is None:
                return _Cursor(None, self)
        if self._one_statement and self._sent:
            raise AssertionError("a read of one statement ran a second: it needs a transaction (read())")
        cursor = self._conn.cursor()
        self._sent.append((cursor, conflict))
        with self._errors_named():
            cursor.execute(pg_sql(sql, bool(params)), tuple(params) if params else None)
        return _Cursor(cursor, self)

    def execute_as_written(self, sql):
        """This module's own SQL, untranslated (no parameters: one simple query, as many statements as it has)."""
        self._conn.execute(sql)

    def executemany(self, sql, rows):
        rows = [tuple(row) for row in rows]
        if rows:
            if any(cursor.pgresult is None for cursor, _ in self._sent):
                self.settle()  # (what was sent before fails as itself, not as these rows)
            with self._errors_named():
                self._conn.cursor().executemany(pg_sql(sql, True), rows)
                self.settle()  # (and these rows' error is theirs: their cursor keeps no result to tell by)
            self._changes += len(rows)
        return _Cursor(None, self)

    def settle(self):
        """Wait for every result sent for (raising the first error, named)."""
        if self._pipeline is not None:
            with self._errors_named():
                self._pipeline.sync()

    @contextlib.contextmanager
    def _errors_named(self):
        try:
            yield
        except psycopg.Error as exc:
            raise self.named_error(exc) from exc

    def named_error(self, exc):
        self.failed = True
        failed = next((conflict for cursor, conflict in self._sent if cursor.pgresult is None), None)
        return translate_pg_error(exc, failed)

    @property
    def total_changes(self):
        if self._sent:
            if any(cursor.pgresult is None for cursor, _ in self._sent):
                self.settle()
            self._changes += sum(cursor.rowcount for cursor, _ in self._sent
                                 if not _returns_rows(cursor) and cursor.rowcount > 0)
            self._sent.clear()
        return self._changes


def translate_pg_error(exc, conflict=None):
    """The one place psycopg's errors become StatusThingError."""
    if isinstance(exc, st.StatusThingError):
        return exc
    if isinstance(exc, psycopg.errors.UniqueViolation) and conflict:
        return st.AlreadyExists(conflict)
    if isinstance(exc, (psycopg.OperationalError, psycopg_pool.PoolTimeout, psycopg.errors.AdminShutdown)):
        return st.Unavailable(f"the database is unavailable ({str(exc).splitlines()[0] if str(exc) else 'no answer'}"
                              "): nothing was written; try again", retry_after_s=5)
    if isinstance(exc, psycopg.errors.DiskFull):
        return st.Unavailable("the database's disk is full: nothing was written", retry_after_s=60)
    if isinstance(exc, psycopg.errors.ReadOnlySqlTransaction):
        return st.Unavailable("the database is read-only now (a standby?): nothing was written", retry_after_s=5)
    st.log(level="error", event="storage_error", error=f"{type(exc).__name__}: {str(exc).strip()}")
    return st.Internal("storage error")


# -- the schema: statusthing's migrations, plus what PostgreSQL needs of its own ------------------------------------

# The functions the triggers call are code: replaced at every start (CREATE OR REPLACE), so a database made by an
# older release runs this one's. The triggers that call them are schema, made once by migration 4. (Each writes
# to the change log itself: a call to a shared SQL function cost more than the insert.)
def _log_change(kind, row):
    return f"INSERT INTO changes (kind, id) VALUES ('{kind}', {row}.id);"


def _revision_function(table, kind):
    """A row's revision moves with every update that does not move it itself, and the change is logged."""
    return f"""CREATE OR REPLACE FUNCTION st_{table}_revision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.revision = OLD.revision THEN
    NEW.revision := OLD.revision + 1;
    {_log_change(kind, "OLD")}
  END IF;
  RETURN NEW;
END $$;"""


_TRIGGER_FUNCTIONS = f"""
{_revision_function("items", "item")}
{_revision_function("statuses", "status")}
CREATE OR REPLACE FUNCTION st_items_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN {_log_change("item", "NEW")} RETURN NULL; END $$;
CREATE OR REPLACE FUNCTION st_items_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN {_log_change("item", "OLD")} RETURN NULL; END $$;
CREATE OR REPLACE FUNCTION st_notes_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN UPDATE items SET notes_count = notes_count + 1 WHERE id = NEW.item_id; RETURN NULL; END $$;
CREATE OR REPLACE FUNCTION st_notes_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE items SET revision = revision + 1 WHERE id = NEW.item_id;
  INSERT INTO changes (kind, id) VALUES ('item', NEW.item_id);
  RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION st_notes_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN UPDATE items SET notes_count = notes_count - 1 WHERE id = OLD.item_id; RETURN NULL; END $$;
-- Every statement that changes a table kept answers read from notifies the servers (deduplicated per transaction
-- by PostgreSQL; the payload says which connection, so a server can skip its own): hand edits and other tools
-- count.
CREATE OR REPLACE FUNCTION st_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('{CHANNEL}', pg_backend_pid()::text); RETURN NULL; END $$;
DROP FUNCTION IF EXISTS st_log_change(TEXT, TEXT);
"""

_TRIGGERS = """
CREATE TRIGGER items_revision BEFORE UPDATE ON items FOR EACH ROW EXECUTE FUNCTION st_items_revision();
CREATE TRIGGER statuses_revision BEFORE UPDATE ON statuses FOR EACH ROW EXECUTE FUNCTION st_statuses_revision();
CREATE TRIGGER items_added AFTER INSERT ON items FOR EACH ROW EXECUTE FUNCTION st_items_added();
CREATE TRIGGER items_removed AFTER DELETE ON items FOR EACH ROW EXECUTE FUNCTION st_items_removed();
CREATE TRIGGER notes_added AFTER INSERT ON notes FOR EACH ROW EXECUTE FUNCTION st_notes_added();
CREATE TRIGGER notes_changed AFTER UPDATE ON notes FOR EACH ROW EXECUTE FUNCTION st_notes_changed();
CREATE TRIGGER notes_removed AFTER DELETE ON notes FOR EACH ROW EXECUTE FUNCTION st_notes_removed();
"""
# (No kept answer reads these: the outbox's tables change with every delivery, the throttles' with every guess an
# attacker makes, which must not cost every server its kept answers; the bookkeeping ones neither.)
_UNWATCHED = ("events", "deliveries", "login_failures", "login_known", "subscribe_requests", "changes",
              "schema_migrations")


def _with_triggers(apply):
    def migration(conn):
        apply(conn)
        conn.execute_as_written(_TRIGGER_FUNCTIONS + _TRIGGERS)
    return migration


# Statusthing's migrations, the same numbers and names; the one that made SQLite's triggers makes these.
MIGRATIONS = tuple((version, name, _with_triggers(apply) if apply is st._migration_revisions_and_purges else apply)
                   for version, name, apply in st.MIGRATIONS)


# -- the store -----------------------------------------------------------------------------------------------------

class PostgresStore:
    """The Store protocol on a PostgreSQL database, shared by any number of StatusThing servers."""

    def __init__(self, url, create=True):
        self.path, self.url = st.db_label(url), url
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
                self.schema_version = self._migrate(conn)
        except psycopg.Error as exc:
            raise st.StartupError(f"cannot open database {self.path}: {str(exc).strip().splitlines()[0]}") from None
        self._own = set()  # backend pids of this store's connections: their notifications are already counted
        self._pool = psycopg_pool.ConnectionPool(
            url, min_size=1, max_size=POOL_SIZE, open=True, timeout=10, configure=self._remember,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S})
        self._generation, self._generation_lock = 0, threading.Lock()
        self._horizon = None  # the database's transaction counter as last seen
        self._closing = threading.Event()
        self._listener = threading.Thread(target=self._listen, name="pg-listener", daemon=True)
        self._listener.start()

    def _remember(self, conn):
        self._own.add(str(conn.info.backend_pid))

    @staticmethod
    def _migrate(conn):
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATE_LOCK,))
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS citext")
            version = st.migrate(PgConnection(conn, ddl=True), MIGRATIONS)
            conn.execute("DROP TABLE IF EXISTS change_counter")  # (a counter row of the first try at this)
            conn.execute(_TRIGGER_FUNCTIONS)
            for (table,) in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()").fetchall():
                conn.execute(f'DROP TRIGGER IF EXISTS st_notify ON "{table}"')
                if table not in _UNWATCHED:
                    conn.execute(f'CREATE TRIGGER st_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "{table}" '
                                 "FOR EACH STATEMENT EXECUTE FUNCTION st_notify()")
            return version
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATE_LOCK,))

    # -- transactions ----------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _connection(self):
        try:
            with self._pool.connection() as conn:
                yield conn
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise translate_pg_error(exc) from exc

    @contextlib.contextmanager
    def _transaction(self, *begin, end):
        """A transaction in one pipeline on a pooled connection: the ``begin`` statements, the body's (through the
        PgConnection yielded), then ``end``, which rides with the Sync that closes the pipeline. Whatever fails,
        the transaction is rolled back and the error named."""
        with self._connection() as conn:
            pg_conn = None
            try:
                with conn.pipeline() as pipeline:
                    for statement in begin:
                        conn.execute(statement)
                    pg_conn = PgConnection(conn, pipeline=pipeline)
                    yield pg_conn
                    conn.execute(end)
            except BaseException as exc:
                if isinstance(exc, psycopg.Error) or (pg_conn is not None and pg_conn.failed):
                    # A pipeline the database broke off can leave psycopg's record of the session's prepared
                    # statements out of step with the server's ("prepared statement … does not exist" on the
                    # next use): the connection is closed (its transaction ends with it) and the pool makes another.
                    conn.close()
                else:  # (the service's own error: the connection is sound)
                    with contextlib.suppress(psycopg.Error):
                        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                            conn.execute("ROLLBACK")
                if isinstance(exc, psycopg.Error):
                    raise (pg_conn.named_error(exc) if pg_conn else translate_pg_error(exc)) from exc
                raise

    @contextlib.contextmanager
    def read(self, one_statement=False):
        if one_statement:  # (no transaction, no pipeline: one round trip, as little work here as can be)
            with self._connection() as conn:
                yield st.SqlTransaction(PgConnection(conn, one_statement=True), translate_pg_error)
            return
        # (COMMIT, not ROLLBACK, ends it: the same for a read-only transaction, but psycopg forgets every prepared
        # statement of a connection that rolls back, and deallocates them all on its next use.)
        with self._transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", end="COMMIT") as conn:
            yield st.SqlTransaction(conn, translate_pg_error)

    @contextlib.contextmanager
    def write(self, changes_data=True):
        # The statements of a write go out as the service makes them and only a result it reads (rows, a row
        # count) waits for the server: the write lock is held for those round trips and no more, and the commit
        # rides with the last.
        with self._transaction("BEGIN", f"SELECT pg_advisory_xact_lock({WRITE_LOCK})", end="COMMIT") as conn:
            tx = st.SqlTransaction(conn, translate_pg_error)
            yield tx
        if changes_data and tx.rows_changed:
            self._move()

    # -- following the database --------------------------------------------------------------------------------

    def generation(self):
        return self._generation

    def _move(self):
        with self._generation_lock:  # (two moves must never read as one)
            self._generation += 1

    def _listen(self):
        """Move the generation when another server (or the command line) commits a change: on its notification,
        or, should one be missed, when the transaction counter is seen to have moved."""
        while not self._closing.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._move()  # (anything may have happened while not listening)
                    while not self._closing.is_set():
                        recheck_at = time.monotonic() + RECHECK_S
                        while (wait := recheck_at - time.monotonic()) > 0 and not self._closing.is_set():
                            arrived = list(conn.notifies(timeout=wait, stop_after=1))
                            if not arrived:
                                break
                            # (A burst is read as one: a busy database sends a thousand a second, most of them
                            # this server's own writes', and each wake costs more than the reading.)
                            self._closing.wait(GATHER_S)
                            arrived += conn.notifies(timeout=0)
                            if any(notification.payload not in self._own for notification in arrived):
                                self._move()
                        horizon = conn.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())").fetchone()[0]
                        if horizon != self._horizon:
                            self._horizon = horizon
                            self._move()
            except psycopg.Error as exc:
                if self._closing.is_set():
                    return
                st.log(level="warning", event="database_listener_lost", error=str(exc).strip().splitlines()[0]
                       if str(exc).strip() else type(exc).__name__)
                self._closing.wait(1.0)

    def after_load(self):
        """After migrate-db filled the tables: the serial columns go on after the highest id copied."""
        with self._connection() as conn:
            for table, column in (("audit_log", "id"), ("changes", "seq")):
                conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                             f"COALESCE((SELECT MAX({column}) FROM {table}), 0) + 1, false)")

    def size_bytes(self):
        with self._connection() as conn:
            return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]

    def close(self):
        self._closing.set()
        self._pool.close()
        self._listener.join(RECHECK_S * 2 + 1)


def open_postgres(url, create=True):
    return PostgresStore(url, create)


def pg_wait_ready(url, timeout_s=10):
    """Wait until the database at ``url`` answers (for tests and scripts)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with psycopg.connect(url, connect_timeout=1):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
