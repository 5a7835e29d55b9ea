"""StatusThing: a self-hosted status page appliance in one module.

Run ``python statusthing.py`` and the statusthing.v1 API (three services, 15 unary RPCs, see services.proto) is
served on one address, 127.0.0.1:9000 by default, in three ways: gRPC, and the Connect protocol over HTTP/1.1 with
JSON or binary protobuf bodies. Data lives in SQLite (./statusthing.db by default) behind numbered migrations.

Data flows one way, and errors flow back through one funnel per transport:

    Connect:  Handler.do_POST -> codec (decode) -> RPC binding -> StatusThingService -> Store -> SQLite
    gRPC:     grpcio (decode) -> RPC binding -> StatusThingService -> Store -> SQLite
    errors:   StatusThingError (carries its code) -> CODES -> Connect error JSON | gRPC status

One listening socket serves both transports: each new connection is peeked at, and one that opens with the HTTP/2
preface (as gRPC clients do) is relayed to the grpcio server listening on an internal loopback port.

What it does not do: TLS (put it behind a reverse proxy), streaming RPCs (there are none), Connect GET requests.

Sections (``grep -n '^# ==' statusthing.py``):
    1. Constants and configuration       7. Codec: protobuf <-> Connect wire
    2. Errors and the code table         8. Request log
    3. Storage: migrations               9. HTTP handler (Connect)
    4. Storage: the Store               10. gRPC: servicer, reflection, relay
    5. Domain service                   11. Assembly: App, listener, command line
    6. RPC bindings
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import email.utils
import gzip
import http
import json
import os
import queue
import secrets
import select
import signal
import socket
import socketserver
import sqlite3
import sys
import threading
import time
import traceback
import zlib
from concurrent import futures
from http.server import BaseHTTPRequestHandler

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.timestamp_pb2 import Timestamp

import statusthing_pb2 as pb

__all__ = ["App", "Config", "Store", "StatusThingService", "StatusThingError", "CODES", "METHODS", "main"]


# ==================================================================================================================
# 1. Constants and configuration
# ==================================================================================================================

VERSION = "0.1.0"
DEFAULT_API_ADDR = "127.0.0.1:9000"
DEFAULT_DB = "statusthing.db"

# The three statuses a fresh database starts with, as the original ships them (CONTRACT.md, "Defaults").
DEFAULT_STATUSES = (
    ("UP", pb.STATUS_KIND_UP, "#5DFC0A"),
    ("DOWN", pb.STATUS_KIND_DOWN, "#FF0000"),
    ("WARNING", pb.STATUS_KIND_WARNING, "#EEEB8D"),
)

MAX_REQUEST_BYTES = 1 << 20  # request bodies (after decompression) and gRPC messages
GZIP_MIN_BYTES = 1024  # below about one packet, compression saves nothing worth its CPU
IDLE_TIMEOUT_S = 120  # an idle keep-alive connection (or one that never sends a request line) is closed after this
SHUTDOWN_GRACE_S = 5.0  # how long in-flight requests get to finish on SIGINT/SIGTERM
SQLITE_BUSY_TIMEOUT_MS = 5000  # the command line may hold the write lock briefly while the server runs

# Input limits: generous for a status page, small enough that one request cannot bloat every page view.
MAX_NAME_CHARS = 200
MAX_DESCRIPTION_CHARS = 2000
MAX_NOTE_CHARS = 10000
MAX_COLOR_CHARS = 32


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything the server is told at start; only ``main`` builds one from the command line."""

    api_addr: str = DEFAULT_API_ADDR
    db_path: str = DEFAULT_DB
    devmode: bool = False


def split_host_port(addr):
    """``"127.0.0.1:9000"`` -> ``("127.0.0.1", 9000)``; ``"[::1]:9000"`` -> ``("::1", 9000)``."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or not host or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT, got {addr!r}")
    return host.strip("[]"), int(port)


# ==================================================================================================================
# 2. Errors and the code table
# ==================================================================================================================

@dataclasses.dataclass(frozen=True)
class Code:
    """One row of the Connect/gRPC error table in CONTRACT.md."""

    connect: str
    http_status: int
    grpc: grpc.StatusCode


CODES = {c.connect: c for c in (
    Code("canceled", 499, grpc.StatusCode.CANCELLED),
    Code("unknown", 500, grpc.StatusCode.UNKNOWN),
    Code("invalid_argument", 400, grpc.StatusCode.INVALID_ARGUMENT),
    Code("deadline_exceeded", 504, grpc.StatusCode.DEADLINE_EXCEEDED),
    Code("not_found", 404, grpc.StatusCode.NOT_FOUND),
    Code("already_exists", 409, grpc.StatusCode.ALREADY_EXISTS),
    Code("permission_denied", 403, grpc.StatusCode.PERMISSION_DENIED),
    Code("resource_exhausted", 429, grpc.StatusCode.RESOURCE_EXHAUSTED),
    Code("failed_precondition", 400, grpc.StatusCode.FAILED_PRECONDITION),
    Code("aborted", 409, grpc.StatusCode.ABORTED),
    Code("out_of_range", 400, grpc.StatusCode.OUT_OF_RANGE),
    Code("unimplemented", 501, grpc.StatusCode.UNIMPLEMENTED),
    Code("internal", 500, grpc.StatusCode.INTERNAL),
    Code("unavailable", 503, grpc.StatusCode.UNAVAILABLE),
    Code("data_loss", 500, grpc.StatusCode.DATA_LOSS),
    Code("unauthenticated", 401, grpc.StatusCode.UNAUTHENTICATED),
)}


class StatusThingError(Exception):
    """An error a client should see: its ``code`` (a key of CODES) and a message safe to show."""

    code = "unknown"

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class InvalidArgument(StatusThingError):
    """The request is wrong whatever the state of the data (blank name, bad JSON, unknown kind)."""
    code = "invalid_argument"


class NotFound(StatusThingError):
    """An id names nothing."""
    code = "not_found"


class AlreadyExists(StatusThingError):
    """A name is taken."""
    code = "already_exists"


class FailedPrecondition(StatusThingError):
    """The request is fine but the data does not allow it now (deleting a status that items use)."""
    code = "failed_precondition"


class ResourceExhausted(StatusThingError):
    """The request is larger than the server accepts."""
    code = "resource_exhausted"


class Unimplemented(StatusThingError):
    """The server does not speak what the client asked for (an unknown content encoding)."""
    code = "unimplemented"


class Unavailable(StatusThingError):
    """Try again shortly (the database was locked longer than the busy timeout)."""
    code = "unavailable"


class Internal(StatusThingError):
    """A bug or a broken database; the details go to the log, never to the client."""
    code = "internal"


class StartupError(Exception):
    """The server cannot start; the message is the one line the operator sees."""


# ==================================================================================================================
# 3. Storage: migrations
# ==================================================================================================================
# Each migration runs with its version record in one transaction (statements one by one: executescript would
# COMMIT first). A failure rolls both back, so the database stays at the previous version.

def _migration_initial_schema(conn):
    conn.execute("""
        CREATE TABLE statuses (
            id          TEXT PRIMARY KEY,
            name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
            description TEXT NOT NULL DEFAULT '',
            color       TEXT NOT NULL DEFAULT '',
            kind        INTEGER NOT NULL CHECK (kind BETWEEN 1 AND 11),
            created_ns  INTEGER NOT NULL,
            updated_ns  INTEGER NOT NULL)""")
    conn.execute("""
        CREATE TABLE items (
            id          TEXT PRIMARY KEY,
            name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
            description TEXT NOT NULL DEFAULT '',
            status_id   TEXT REFERENCES statuses(id) ON DELETE RESTRICT,
            created_ns  INTEGER NOT NULL,
            updated_ns  INTEGER NOT NULL)""")
    conn.execute("CREATE INDEX items_by_status ON items(status_id)")
    conn.execute("""
        CREATE TABLE notes (
            id          TEXT PRIMARY KEY,
            item_id     TEXT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
            text        TEXT NOT NULL,
            created_ns  INTEGER NOT NULL,
            updated_ns  INTEGER NOT NULL)""")
    conn.execute("CREATE INDEX notes_by_item ON notes(item_id, id)")


def _migration_default_statuses(conn):
    # A migration, not a start-up step, so the defaults arrive exactly once: one an operator deletes stays deleted.
    for name, kind, color in DEFAULT_STATUSES:
        now = CLOCK.now_ns()
        conn.execute("INSERT INTO statuses (id, name, color, kind, created_ns, updated_ns) VALUES (?,?,?,?,?,?)",
                     (IDS.new(), name, color, kind, now, now))


MIGRATIONS = (
    (1, "initial schema", _migration_initial_schema),
    (2, "default statuses", _migration_default_statuses),
)


def schema_version(conn):
    """The highest migration recorded in the database (0 for a new one)."""
    conn.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
                        version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)""")
    return conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]


def migrate(conn, migrations=MIGRATIONS):
    """Apply the pending migrations in order; return the schema version. ``conn`` must be in autocommit mode.

    Raises StartupError when the database is newer than the code or a migration fails (that one is rolled back).
    """
    current = schema_version(conn)
    latest = migrations[-1][0] if migrations else 0
    if current > latest:
        raise StartupError(f"database schema version {current} is newer than this statusthing {VERSION} knows "
                           f"(up to {latest}); run a newer statusthing, or restore a backup of the database")
    for version, name, apply in migrations:
        if version <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            apply(conn)
            conn.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?,?,?)",
                         (version, name, utc_now_iso()))
            conn.execute("COMMIT")
        except Exception as exc:
            conn.execute("ROLLBACK")
            raise StartupError(f"migration {version} ({name}) failed and was rolled back: {exc}") from exc
        current = version
    return current


# ==================================================================================================================
# 4. Storage: the Store
# ==================================================================================================================

class Clock:
    """Wall-clock nanoseconds that never repeat or go back within this process, so ``updated`` always moves."""

    def __init__(self):
        self._last = 0
        self._lock = threading.Lock()

    def now_ns(self):
        with self._lock:
            self._last = max(time.time_ns(), self._last + 1)
            return self._last


class IdGenerator:
    """ULIDs: 48 bits of milliseconds then 80 random bits, Crockford base32, 26 characters.

    Ids sort by creation time as plain strings; within one millisecond the random part counts up, so ids made
    by this process sort in the order they were made.
    """

    ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

    def __init__(self):
        self._last_ms = -1
        self._last_random = 0
        self._lock = threading.Lock()

    def new(self):
        with self._lock:
            ms = time.time_ns() // 1_000_000
            if ms <= self._last_ms:
                ms, rand = self._last_ms, self._last_random + 1
            else:
                rand = secrets.randbits(80)
            self._last_ms, self._last_random = ms, rand
        value = (ms << 80) | rand
        return "".join(self.ALPHABET[(value >> shift) & 31] for shift in range(125, -1, -5))


CLOCK = Clock()
IDS = IdGenerator()


def timestamp(ns):
    return Timestamp(seconds=ns // 1_000_000_000, nanos=ns % 1_000_000_000)


def timestamps(created_ns, updated_ns):
    return pb.Timestamps(created=timestamp(created_ns), updated=timestamp(updated_ns))


_STATUS_COLUMNS = "s.id, s.name, s.description, s.color, s.kind, s.created_ns, s.updated_ns"


def _status_from_row(row):
    return pb.Status(id=row[0], name=row[1], description=row[2], color=row[3], kind=row[4],
                     timestamps=timestamps(row[5], row[6]))


def _note_from_row(row):
    return pb.Note(id=row[0], text=row[1], timestamps=timestamps(row[2], row[3]))


class Store:
    """The SQLite database: the one connection, its lock, transactions, and CRUD returning protobuf messages.

    The HTTP and gRPC threads share one connection; the lock serializes them and WAL lets the command line read
    while the server writes. Callers never see the lock, a cursor or BEGIN::

        with store.write() as tx:
            tx.insert_item(...)
    """

    def __init__(self, path):
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable across crashes of this process
            conn.execute("PRAGMA foreign_keys = ON")
            self.schema_version = migrate(conn)
        except sqlite3.Error as exc:
            raise StartupError(f"cannot open database {path}: {exc}") from exc
        self.path = path
        self._conn = conn
        self._lock = threading.Lock()
        # Counts committed writes. Caches of read answers compare it to know they are still true.
        self.generation = 0

    def close(self):
        with self._lock:
            self._conn.close()

    @contextlib.contextmanager
    def _transaction(self, begin):
        with self._lock:
            try:
                self._conn.execute(begin)
            except sqlite3.OperationalError as exc:
                raise _storage_error(exc) from exc
            try:
                yield Transaction(self._conn)
                self._conn.execute("COMMIT")
            except BaseException as exc:
                self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise _storage_error(exc) from exc
                raise

    @contextlib.contextmanager
    def write(self):
        """A write transaction: all of it commits, or (on any exception) none of it."""
        with self._transaction("BEGIN IMMEDIATE") as tx:
            yield tx
            self.generation += 1

    def read(self):
        """A read transaction: one consistent snapshot."""
        return self._transaction("BEGIN")


def _storage_error(exc):
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return Unavailable("the database is busy; try again")
    return Internal("storage error")


class Transaction:
    """The queries, run inside one Store transaction. Returns protobuf messages; knows nothing of requests."""

    def __init__(self, conn):
        self._conn = conn

    def _unique(self, entity, name, sql, params):
        try:
            return self._conn.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc):
                raise AlreadyExists(f'{entity} named "{name}" already exists') from exc
            raise

    def _update(self, table, row_id, changes, now_ns):
        # Column names come from the service's keyword arguments, never from a request.
        assignments = ", ".join(f"{column} = ?" for column in changes)
        self._conn.execute(f"UPDATE {table} SET {assignments}, updated_ns = ? WHERE id = ?",
                           (*changes.values(), now_ns, row_id))

    # -- statuses --------------------------------------------------------------------------------------------

    def get_status(self, status_id):
        row = self._conn.execute(f"SELECT {_STATUS_COLUMNS} FROM statuses s WHERE s.id = ?", (status_id,)).fetchone()
        return _status_from_row(row) if row else None

    def list_statuses(self, kinds=()):
        sql = f"SELECT {_STATUS_COLUMNS} FROM statuses s"
        if kinds:
            sql += f" WHERE s.kind IN ({','.join('?' * len(kinds))})"
        return [_status_from_row(row) for row in self._conn.execute(sql + " ORDER BY s.id", tuple(kinds))]

    def insert_status(self, status_id, name, description, color, kind, now_ns):
        self._unique("a status", name,
                     "INSERT INTO statuses (id, name, description, color, kind, created_ns, updated_ns) "
                     "VALUES (?,?,?,?,?,?,?)", (status_id, name, description, color, kind, now_ns, now_ns))

    def update_status(self, status_id, changes, now_ns):
        try:
            self._update("statuses", status_id, changes, now_ns)
        except sqlite3.IntegrityError as exc:
            raise AlreadyExists(f'a status named "{changes.get("name")}" already exists') from exc

    def count_items_with_status(self, status_id):
        return self._conn.execute("SELECT COUNT(*) FROM items WHERE status_id = ?", (status_id,)).fetchone()[0]

    def delete_status(self, status_id):
        self._conn.execute("DELETE FROM statuses WHERE id = ?", (status_id,))

    # -- items -----------------------------------------------------------------------------------------------

    def _items(self, where, params, with_notes):
        rows = self._conn.execute(
            f"SELECT i.id, i.name, i.description, i.created_ns, i.updated_ns, {_STATUS_COLUMNS} "
            f"FROM items i LEFT JOIN statuses s ON s.id = i.status_id {where} ORDER BY i.id", params).fetchall()
        items = []
        for row in rows:
            item = pb.Item(id=row[0], name=row[1], description=row[2], timestamps=timestamps(row[3], row[4]))
            if row[5] is not None:
                item.status.CopyFrom(_status_from_row(row[5:]))
            items.append(item)
        if with_notes and items:
            by_id = {item.id: item for item in items}
            # One query for all notes, not one per item; ids sort by creation, so DESC is newest first.
            note_where = "" if not where else f"WHERE item_id IN ({','.join('?' * len(by_id))})"
            note_params = () if not where else tuple(by_id)
            for row in self._conn.execute(f"SELECT item_id, id, text, created_ns, updated_ns FROM notes "
                                          f"{note_where} ORDER BY id DESC", note_params):
                item = by_id.get(row[0])
                if item is not None:
                    item.notes.append(_note_from_row(row[1:]))
        return items

    def get_item(self, item_id, with_notes=True):
        items = self._items("WHERE i.id = ?", (item_id,), with_notes)
        return items[0] if items else None

    def list_items(self, status_ids=(), kinds=(), with_notes=False):
        clauses, params = [], []
        if status_ids:
            clauses.append(f"i.status_id IN ({','.join('?' * len(status_ids))})")
            params.extend(status_ids)
        if kinds:
            clauses.append(f"s.kind IN ({','.join('?' * len(kinds))})")
            params.extend(kinds)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return self._items(where, tuple(params), with_notes)

    def insert_item(self, item_id, name, description, status_id, now_ns):
        self._unique("an item", name,
                     "INSERT INTO items (id, name, description, status_id, created_ns, updated_ns) "
                     "VALUES (?,?,?,?,?,?)", (item_id, name, description, status_id or None, now_ns, now_ns))

    def update_item(self, item_id, changes, now_ns):
        try:
            self._update("items", item_id, changes, now_ns)
        except sqlite3.IntegrityError as exc:
            raise AlreadyExists(f'an item named "{changes.get("name")}" already exists') from exc

    def delete_item(self, item_id):
        self._conn.execute("DELETE FROM items WHERE id = ?", (item_id,))  # notes go with it (ON DELETE CASCADE)

    # -- notes -----------------------------------------------------------------------------------------------

    def get_note(self, note_id):
        """The note and the id of its item, or (None, None)."""
        row = self._conn.execute("SELECT id, text, created_ns, updated_ns, item_id FROM notes WHERE id = ?",
                                 (note_id,)).fetchone()
        return (_note_from_row(row), row[4]) if row else (None, None)

    def list_notes(self, item_id):
        return [_note_from_row(row) for row in self._conn.execute(
            "SELECT id, text, created_ns, updated_ns FROM notes WHERE item_id = ? ORDER BY id DESC", (item_id,))]

    def insert_note(self, note_id, item_id, text, now_ns):
        self._conn.execute("INSERT INTO notes (id, item_id, text, created_ns, updated_ns) VALUES (?,?,?,?,?)",
                           (note_id, item_id, text, now_ns, now_ns))

    def update_note(self, note_id, text, now_ns):
        self._update("notes", note_id, {"text": text}, now_ns)

    def delete_note(self, note_id):
        self._conn.execute("DELETE FROM notes WHERE id = ?", (note_id,))

    def touch_item(self, item_id, now_ns):
        self._conn.execute("UPDATE items SET updated_ns = ? WHERE id = ?", (now_ns, item_id))


# ==================================================================================================================
# 5. Domain service
# ==================================================================================================================

def _required_id(value, field):
    if not value:
        raise InvalidArgument(f"{field} is required")
    return value


def _clean_name(value, what):
    name = value.strip()
    if not name:
        raise InvalidArgument(f"{what} name is required")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidArgument(f"{what} name is longer than {MAX_NAME_CHARS} characters")
    return name


def _clean_text(value, field, limit):
    text = value.strip()
    if len(text) > limit:
        raise InvalidArgument(f"{field} is longer than {limit} characters")
    return text


def _clean_color(value):
    # The colour ends up in the status page's CSS, so only plain colour notations get in.
    color = value.strip()
    if not color:
        return ""
    hex_digits = color[1:]
    is_hex = color.startswith("#") and len(hex_digits) in (3, 4, 6, 8) and all(
        c in "0123456789abcdefABCDEF" for c in hex_digits)
    is_name = color.isascii() and color.isalpha() and len(color) <= MAX_COLOR_CHARS
    if not (is_hex or is_name):
        raise InvalidArgument(f'color "{value}" is not a #rrggbb colour or a CSS colour name')
    return color


def _valid_kind(kind, *, allow_unknown=False):
    if kind == pb.STATUS_KIND_UNKNOWN and not allow_unknown:
        raise InvalidArgument("status kind is required (one of STATUS_KIND_UP ... STATUS_KIND_DECOMM)")
    if kind not in pb.StatusKind.values():
        raise InvalidArgument(f"unknown status kind {kind}")
    return kind


class StatusThingService:
    """The use cases behind the 15 RPCs: validation, ids, timestamps and the rules between items, statuses and
    notes. Takes and returns plain values and protobuf entity messages; raises only StatusThingError."""

    def __init__(self, store):
        self._store = store

    @property
    def generation(self):
        """Changes whenever stored data changes; an answer computed at one generation holds until it moves."""
        return self._store.generation

    # -- statuses --------------------------------------------------------------------------------------------

    def get_status(self, status_id):
        _required_id(status_id, "status_id")
        with self._store.read() as tx:
            return self._existing_status(tx, status_id)

    def list_statuses(self, kinds=()):
        kinds = [_valid_kind(k) for k in kinds]
        with self._store.read() as tx:
            return tx.list_statuses(kinds)

    def add_status(self, name, description="", color="", kind=pb.STATUS_KIND_UNKNOWN):
        with self._store.write() as tx:
            return self._add_status(tx, name, description, color, kind)

    def _add_status(self, tx, name, description, color, kind):
        name = _clean_name(name, "status")
        description = _clean_text(description, "description", MAX_DESCRIPTION_CHARS)
        color, kind = _clean_color(color), _valid_kind(kind)
        status_id = IDS.new()
        tx.insert_status(status_id, name, description, color, kind, CLOCK.now_ns())
        return tx.get_status(status_id)

    def update_status(self, status_id, name="", description=None, color=None, kind=pb.STATUS_KIND_UNKNOWN):
        """Change the fields given: a non-empty name, a description or colour that is not None, a known kind."""
        _required_id(status_id, "status_id")
        changes = {}
        if name:
            changes["name"] = _clean_name(name, "status")
        if description is not None:
            changes["description"] = _clean_text(description, "description", MAX_DESCRIPTION_CHARS)
        if color is not None:
            changes["color"] = _clean_color(color)
        if kind != pb.STATUS_KIND_UNKNOWN:
            changes["kind"] = _valid_kind(kind)
        with self._store.write() as tx:
            current = self._existing_status(tx, status_id)
            changes = {k: v for k, v in changes.items() if getattr(current, k) != v}
            if changes:
                tx.update_status(status_id, changes, CLOCK.now_ns())

    def delete_status(self, status_id):
        _required_id(status_id, "status_id")
        with self._store.write() as tx:
            status = self._existing_status(tx, status_id)
            in_use = tx.count_items_with_status(status_id)
            if in_use:
                raise FailedPrecondition(
                    f'status "{status.name}" is used by {in_use} item{"s" if in_use != 1 else ""}; '
                    f"give {'them' if in_use != 1 else 'it'} another status first")
            tx.delete_status(status_id)

    @staticmethod
    def _existing_status(tx, status_id):
        status = tx.get_status(status_id)
        if status is None:
            raise NotFound(f"status {status_id} not found")
        return status

    # -- items -----------------------------------------------------------------------------------------------

    def get_item(self, item_id):
        """The item with its status and all its notes, newest first."""
        _required_id(item_id, "item_id")
        with self._store.read() as tx:
            return self._existing_item(tx, item_id, with_notes=True)

    def list_items(self, status_ids=(), kinds=(), extended=False):
        """Items in creation order; an item must match every filter given; notes only when ``extended``."""
        kinds = [_valid_kind(k) for k in kinds]
        with self._store.read() as tx:
            return tx.list_items(list(status_ids), kinds, with_notes=extended)

    def add_item(self, name, description="", initial_status_id="", initial_status=None, initial_note_text=""):
        """Create an item, and in the same transaction its new status and first note when asked for.

        ``initial_status_id`` wins over ``initial_status`` when both are given.
        """
        name = _clean_name(name, "item")
        description = _clean_text(description, "description", MAX_DESCRIPTION_CHARS)
        note_text = _clean_text(initial_note_text, "initial_note_text", MAX_NOTE_CHARS)
        with self._store.write() as tx:
            if initial_status_id:
                status_id = self._existing_status(tx, initial_status_id).id
            elif initial_status is not None:
                status_id = self._add_status(tx, initial_status.name, initial_status.description,
                                             initial_status.color, initial_status.kind).id
            else:
                status_id = ""
            item_id, now = IDS.new(), CLOCK.now_ns()
            tx.insert_item(item_id, name, description, status_id, now)
            if note_text:
                tx.insert_note(IDS.new(), item_id, note_text, now)
            return tx.get_item(item_id)

    def update_item(self, item_id, name="", description=None, status_id=""):
        """Change the fields given: a non-empty name, a description that is not None, a non-empty status_id."""
        _required_id(item_id, "item_id")
        changes = {}
        if name:
            changes["name"] = _clean_name(name, "item")
        if description is not None:
            changes["description"] = _clean_text(description, "description", MAX_DESCRIPTION_CHARS)
        with self._store.write() as tx:
            current = self._existing_item(tx, item_id, with_notes=False)
            if status_id:
                changes["status_id"] = self._existing_status(tx, status_id).id
            current_values = {"name": current.name, "description": current.description,
                              "status_id": current.status.id}
            changes = {k: v for k, v in changes.items() if current_values[k] != v}
            if changes:
                tx.update_item(item_id, changes, CLOCK.now_ns())

    def delete_item(self, item_id):
        """Delete the item and its notes."""
        _required_id(item_id, "item_id")
        with self._store.write() as tx:
            self._existing_item(tx, item_id, with_notes=False)
            tx.delete_item(item_id)

    @staticmethod
    def _existing_item(tx, item_id, with_notes):
        item = tx.get_item(item_id, with_notes=with_notes)
        if item is None:
            raise NotFound(f"item {item_id} not found")
        return item

    # -- notes -----------------------------------------------------------------------------------------------
    # A note is part of what an item shows, so changing one moves the item's ``updated`` too.

    def get_note(self, note_id):
        _required_id(note_id, "note_id")
        with self._store.read() as tx:
            return self._existing_note(tx, note_id)[0]

    def list_notes(self, item_id):
        """The item's notes, newest first."""
        _required_id(item_id, "item_id")
        with self._store.read() as tx:
            self._existing_item(tx, item_id, with_notes=False)
            return tx.list_notes(item_id)

    def add_note(self, item_id, text):
        _required_id(item_id, "item_id")
        text = self._clean_note(text)
        with self._store.write() as tx:
            self._existing_item(tx, item_id, with_notes=False)
            note_id, now = IDS.new(), CLOCK.now_ns()
            tx.insert_note(note_id, item_id, text, now)
            tx.touch_item(item_id, now)
            return tx.get_note(note_id)[0]

    def update_note(self, note_id, text):
        _required_id(note_id, "note_id")
        text = self._clean_note(text)
        with self._store.write() as tx:
            note, item_id = self._existing_note(tx, note_id)
            if note.text != text:
                now = CLOCK.now_ns()
                tx.update_note(note_id, text, now)
                tx.touch_item(item_id, now)

    def delete_note(self, note_id):
        _required_id(note_id, "note_id")
        with self._store.write() as tx:
            item_id = self._existing_note(tx, note_id)[1]
            tx.delete_note(note_id)
            tx.touch_item(item_id, CLOCK.now_ns())

    @staticmethod
    def _clean_note(text):
        text = _clean_text(text, "note_text", MAX_NOTE_CHARS)
        if not text:
            raise InvalidArgument("note_text is required")
        return text

    @staticmethod
    def _existing_note(tx, note_id):
        note, item_id = tx.get_note(note_id)
        if note is None:
            raise NotFound(f"note {note_id} not found")
        return note, item_id


# ==================================================================================================================
# 6. RPC bindings
# ==================================================================================================================
# One function per RPC turns a request message into service arguments and the result into a response message.
# The route table is built from the service descriptors, so no path is typed by hand and none can be missed.

def _optional(request, field):
    """The value of an ``optional`` field, or None when the client did not set it."""
    return getattr(request, field) if request.HasField(field) else None


BINDINGS = {
    "GetItem": lambda svc, r: pb.GetItemResponse(item=svc.get_item(r.item_id)),
    "ListItems": lambda svc, r: pb.ListItemsResponse(
        items=svc.list_items(r.status_ids, r.kinds, r.extended)),
    "AddItem": lambda svc, r: pb.AddItemResponse(item=svc.add_item(
        r.name, r.description, r.initial_status_id,
        r.initial_status if r.HasField("initial_status") else None, r.initial_note_text)),
    "UpdateItem": lambda svc, r: svc.update_item(
        r.item_id, r.name, _optional(r, "description"), r.status_id) or pb.UpdateItemResponse(),
    "DeleteItem": lambda svc, r: svc.delete_item(r.item_id) or pb.DeleteItemResponse(),
    "GetStatus": lambda svc, r: pb.GetStatusResponse(status=svc.get_status(r.status_id)),
    "ListStatus": lambda svc, r: pb.ListStatusResponse(statuses=svc.list_statuses(r.kinds)),
    "AddStatus": lambda svc, r: pb.AddStatusResponse(status=svc.add_status(
        r.name, r.description, r.color, r.kind)),
    "UpdateStatus": lambda svc, r: svc.update_status(
        r.status_id, r.name, _optional(r, "description"), _optional(r, "color"), r.kind)
        or pb.UpdateStatusResponse(),
    "DeleteStatus": lambda svc, r: svc.delete_status(r.status_id) or pb.DeleteStatusResponse(),
    "GetNote": lambda svc, r: pb.GetNoteResponse(note=svc.get_note(r.note_id)),
    "ListNotes": lambda svc, r: pb.ListNotesResponse(notes=svc.list_notes(r.item_id)),
    "AddNote": lambda svc, r: pb.AddNoteResponse(note=svc.add_note(r.item_id, r.note_text)),
    "UpdateNote": lambda svc, r: svc.update_note(r.note_id, r.note_text) or pb.UpdateNoteResponse(),
    "DeleteNote": lambda svc, r: svc.delete_note(r.note_id) or pb.DeleteNoteResponse(),
}


@dataclasses.dataclass(frozen=True)
class Method:
    """One RPC: where it lives, its message classes, and the binding that runs it."""

    path: str  # "/statusthing.v1.ItemsService/GetItem", the same for Connect and gRPC
    service: str
    name: str
    request_class: type
    response_class: type
    call: object  # (StatusThingService, request) -> response
    reads_only: bool  # its answer may be kept until the next write


def _build_methods():
    methods = {}
    for service in pb.SERVICES_DESCRIPTOR.services_by_name.values():
        for method in service.methods:
            path = f"/{service.full_name}/{method.name}"
            methods[path] = Method(path, service.full_name, method.name, getattr(pb, method.input_type.name),
                                   getattr(pb, method.output_type.name), BINDINGS[method.name],
                                   method.name.startswith(("Get", "List")))
    assert len(methods) == len(BINDINGS), "every binding must match an RPC of services.proto"
    return methods


METHODS = _build_methods()


class AnswerCache:
    """Answers of read-only RPCs, kept until the next write (until ``generation()`` moves).

    Keys are whatever identifies a request on its transport. When many requests miss at once (right after a
    write), one computes the answer and the others wait for it: computing it 32 times over, one after another
    behind the store's lock, would make the last of them wait for all the others. The cache is bounded: when
    full it starts over, which is cheap for a status page, where few distinct reads are hot.
    """

    def __init__(self, generation, max_entries=1024):
        self._generation = generation
        self._entries = {}  # key -> (generation, answer)
        self._computing = {}  # key -> Event set when the thread computing it is done
        self._lock = threading.Lock()
        self._max_entries = max_entries

    def get(self, key, compute):
        """The kept answer for ``key``, or ``compute()``'s (kept if nothing was written meanwhile)."""
        while True:
            generation = self._generation()
            entry = self._entries.get(key)
            if entry is not None and entry[0] == generation:
                return entry[1]
            with self._lock:
                done = self._computing.get(key)
                if done is None:
                    done = self._computing[key] = threading.Event()
                    break
            done.wait()  # then look again: the answer is there, or (after an error) this thread computes it
        try:
            answer = compute()
            if len(self._entries) >= self._max_entries:
                self._entries = {}
            self._entries[key] = (generation, answer)
            return answer
        finally:
            with self._lock:
                del self._computing[key]
            done.set()


# ==================================================================================================================
# 7. Codec: protobuf <-> Connect wire
# ==================================================================================================================

JSON = "application/json"
PROTO = "application/proto"


def media_type(content_type):
    """``"Application/JSON; charset=utf-8"`` -> ``"application/json"``."""
    return content_type.split(";", 1)[0].strip().lower()


def _drop_unknown_fields(value, descriptor):
    """Remove JSON keys the message does not have (Connect ignores unknown fields), recursing into messages.

    json_format's own ignore_unknown_fields would also silently drop unknown *enum names*; doing it here
    keeps those an error.
    """
    for key in list(value):
        field = descriptor.fields_by_camelcase_name.get(key) or descriptor.fields_by_name.get(key)
        if field is None:
            del value[key]
        elif field.type == FieldDescriptor.TYPE_MESSAGE and not field.message_type.full_name.startswith(
                "google.protobuf."):
            children = value[key] if isinstance(value[key], list) else [value[key]]
            for child in children:
                if isinstance(child, dict):
                    _drop_unknown_fields(child, field.message_type)


def decode(content_type, body, message_class):
    """Parse a Connect request body into ``message_class``; InvalidArgument when it is not one."""
    name = message_class.DESCRIPTOR.full_name
    if content_type == PROTO:
        try:
            return message_class.FromString(body)
        except Exception as exc:  # DecodeError, or a RuntimeError from the C++ parser on some inputs
            raise InvalidArgument(f"body is not a valid binary {name}: {exc}") from exc
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"body is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidArgument(f"body must be a JSON object ({name}), got {type(value).__name__}")
    _drop_unknown_fields(value, message_class.DESCRIPTOR)
    try:
        return json_format.ParseDict(value, message_class())
    except json_format.ParseError as exc:
        raise InvalidArgument(f"invalid {name}: {exc}") from exc


def encode(content_type, message):
    if content_type == PROTO:
        return message.SerializeToString()
    return json.dumps(json_format.MessageToDict(message), separators=(",", ":"), ensure_ascii=False).encode()


def encode_error(error):
    """A StatusThingError as Connect sends it: (HTTP status, JSON body)."""
    body = json.dumps({"code": error.code, "message": error.message}, ensure_ascii=False).encode()
    return CODES[error.code].http_status, body


def gunzip_limited(data, limit):
    """Decompress a gzip body, refusing to produce more than ``limit`` bytes (a small bomb stays small)."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise InvalidArgument(f"body is not valid gzip: {exc}") from exc
    if len(out) > limit:
        raise ResourceExhausted(f"decompressed body is larger than the {limit}-byte limit")
    if not inflater.eof:
        raise InvalidArgument("body is not valid gzip: truncated")
    return out


def accepts_gzip(accept_encoding):
    for part in accept_encoding.split(","):
        coding, _, params = part.partition(";")
        if coding.strip().lower() == "gzip":
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


# ==================================================================================================================
# 8. Request log
# ==================================================================================================================
# One JSON line per request on stdout, for people and for log shippers alike.

def utc_now_iso():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class LogWriter:
    """Writes log lines from one thread, so request threads only queue a string and never wait on stdout.

    Lines are written in batches, at most FLUSH_INTERVAL_S apart: under load the writer wakes a few times a
    second instead of once a request, and so takes the interpreter lock from request threads that seldom.
    """

    FLUSH_INTERVAL_S = 0.05

    def __init__(self, stream=None):
        self._stream = stream
        self._lines = queue.SimpleQueue()
        self._thread = None
        self._lock = threading.Lock()

    def write(self, line):
        if self._thread is None:
            self._start()
        self._lines.put(line)

    def _start(self):
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
                self._thread.start()

    def _run(self):
        while True:
            batch = [self._lines.get()]
            with contextlib.suppress(queue.Empty):
                while len(batch) < 512:
                    batch.append(self._lines.get_nowait())
            stream = self._stream or sys.stdout
            try:
                stream.write("".join(line for line in batch if line is not None))
                stream.flush()
            except (OSError, ValueError):
                pass  # a closed stdout must not stop the server
            if None in batch:
                return
            time.sleep(self.FLUSH_INTERVAL_S)

    def close(self):
        """Write everything queued so far, then stop the writer thread."""
        if self._thread is not None:
            self._lines.put(None)
            self._thread.join(5)
            self._thread = None


LOG = LogWriter()


def log(**fields):
    LOG.write(json.dumps({"time": utc_now_iso(), **fields}, ensure_ascii=False) + "\n")


def log_internal_error(exc, where):
    log(level="error", event="internal_error", where=where,
        error="".join(traceback.format_exception(exc)).rstrip())


# ==================================================================================================================
# 9. HTTP handler (Connect)
# ==================================================================================================================

_REASONS = {status.value: status.phrase for status in http.HTTPStatus}
_REASONS[499] = "Client Closed Request"


class _HttpDate:
    """The Date header, formatted once a second rather than once a response."""

    def __init__(self):
        self._second = None
        self._text = ""

    def __str__(self):
        now = int(time.time())
        if now != self._second:
            self._second, self._text = now, email.utils.formatdate(now, usegmt=True)
        return self._text


HTTP_DATE = _HttpDate()


class HttpError(Exception):
    """A transport-level refusal answered in plain HTTP (404, 405, 415), before any RPC runs."""

    def __init__(self, status, message, headers=()):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, tuple(headers)


class _AlreadyAnswered(Exception):
    """Raised after a refusal was already written, to unwind without writing again."""


class Handler(BaseHTTPRequestHandler):
    """Connect unary over HTTP/1.1 keep-alive: transport checks, then codec -> binding -> codec.

    Each response leaves in one write (headers and body together), so no response waits on Nagle's algorithm
    and the peer's delayed ACK.
    """

    protocol_version = "HTTP/1.1"
    server_version = f"statusthing/{VERSION}"
    disable_nagle_algorithm = True
    timeout = IDLE_TIMEOUT_S
    app: App  # set on the subclass App builds

    # -- connection bookkeeping, so a shutdown can wait for requests in flight and close idle connections ----

    def setup(self):
        super().setup()
        self.busy = False
        self.app.listener.track(self)

    def finish(self):
        self.app.listener.untrack(self)
        super().finish()

    def parse_request(self):
        with self.app.listener.connections_lock:
            self.busy = True
        self.started = time.perf_counter()
        return super().parse_request()

    def handle_one_request(self):
        super().handle_one_request()
        with self.app.listener.connections_lock:
            self.busy = False
            if self.app.listener.draining:
                self.close_connection = True

    def log_request(self, code="-", size="-"):
        # Only http.server's own answers (a malformed request line, say) come here; ours log in _respond.
        self._log(int(code) if str(code).isdigit() else 0)

    def log_message(self, format, *args):
        pass

    def handle_expect_100(self):
        # Refuse an oversized body before the client sends it.
        length = self.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > MAX_REQUEST_BYTES:
            self._refuse_oversized(int(length))
            return False
        return super().handle_expect_100()

    # -- methods ---------------------------------------------------------------------------------------------

    def do_POST(self):
        content_type = JSON
        try:
            # The body is read first, whatever the answer, so the next request on this connection starts clean.
            body = self._read_body()
            path = self.path.split("?", 1)[0]
            method = METHODS.get(path)
            if method is None:
                raise HttpError(404, f"no such procedure: {path}")
            content_type = self._content_type()
            self._respond_rpc(method, content_type, self._decode_content_encoding(body))
        except _AlreadyAnswered:
            pass
        except HttpError as exc:
            self._respond(exc.status, "text/plain; charset=utf-8", (exc.message + "\n").encode(), exc.headers)
        except StatusThingError as exc:
            self._respond_error(exc)
        except Exception as exc:  # the one place an unexpected error becomes "internal"
            log_internal_error(exc, self.path)
            self._respond_error(Internal("internal error"))

    def do_GET(self):
        self._not_post()

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def _not_post(self):
        try:
            self._read_body()
        except _AlreadyAnswered:
            return
        except StatusThingError:
            self.close_connection = True
        path = self.path.split("?", 1)[0]
        if path in METHODS:
            status, message, headers = 405, f"{self.command} is not allowed here; use POST", (("Allow", "POST"),)
        else:
            status, message, headers = 404, f"not found: {path}", ()
        self._respond(status, "text/plain; charset=utf-8", (message + "\n").encode(), headers)

    # -- Connect ---------------------------------------------------------------------------------------------

    def _content_type(self):
        content_type = media_type(self.headers.get("Content-Type", ""))
        if content_type not in (JSON, PROTO):
            raise HttpError(415, f"unsupported content type {content_type or '(none)'}; "
                                 f"use {JSON} or {PROTO}", (("Accept-Post", f"{JSON}, {PROTO}"),))
        version = self.headers.get("Connect-Protocol-Version")
        if version is not None and version.strip() != "1":
            raise InvalidArgument(f"Connect-Protocol-Version {version} is not supported; send 1")
        return content_type

    def _read_body(self):
        """The request body as sent (still compressed, if it is); an oversized one is refused unread."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = self._read_chunked()
        else:
            length = self.headers.get("Content-Length", "0").strip()
            if not length.isdigit():
                self.close_connection = True
                raise InvalidArgument("a valid Content-Length is required")
            if int(length) > MAX_REQUEST_BYTES:
                self._refuse_oversized(int(length))
                raise _AlreadyAnswered()
            body = self.rfile.read(int(length))
            if len(body) < int(length):
                self.close_connection = True
                raise InvalidArgument("body is shorter than its Content-Length")
        return body

    def _decode_content_encoding(self, body):
        encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding == "gzip":
            return gunzip_limited(body, MAX_REQUEST_BYTES)
        if encoding != "identity":
            raise Unimplemented(f"content encoding {encoding} is not supported; use gzip or identity")
        return body

    def _read_chunked(self):
        chunks, total = [], 0
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                self.close_connection = True
                raise InvalidArgument("malformed chunked body") from None
            total += size
            if total > MAX_REQUEST_BYTES:
                self._refuse_oversized(total)
                raise _AlreadyAnswered()
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline(8)

    def _refuse_oversized(self, length):
        # The rest of the body is never read, so this connection cannot carry another request.
        self.close_connection = True
        self._respond_error(ResourceExhausted(
            f"request body of {length} bytes is larger than the {MAX_REQUEST_BYTES}-byte limit"))
        _drain_briefly(self.connection)

    def _respond_rpc(self, method, content_type, body):
        gzip_ok = accepts_gzip(self.headers.get("Accept-Encoding", ""))

        def answer():
            request = decode(content_type, body, method.request_class)
            payload = encode(content_type, method.call(self.app.service, request))
            if gzip_ok and len(payload) >= GZIP_MIN_BYTES:
                return gzip.compress(payload, compresslevel=6, mtime=0), (("Content-Encoding", "gzip"),)
            return payload, ()

        if method.reads_only:
            payload, headers = self.app.answers.get(("connect", method.path, content_type, gzip_ok, body), answer)
        else:
            payload, headers = answer()
        self._respond(200, content_type, payload, headers)

    def _respond_error(self, error):
        status, body = encode_error(error)
        self._respond(status, JSON, body, code=error.code)

    def _respond(self, status, content_type, body, headers=(), code=None):
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, '')}", f"Date: {HTTP_DATE}",
                 f"Server: {self.server_version}", f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
        lines.extend(f"{name}: {value}" for name, value in headers)
        if self.app.listener.draining:
            self.close_connection = True
        if self.close_connection:
            lines.append("Connection: close")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        self._log(status, code)

    def _log(self, status, code=None):
        started = getattr(self, "started", None)
        duration = round((time.perf_counter() - started) * 1000, 3) if started else None
        log(protocol="http", method=getattr(self, "command", None), path=getattr(self, "path", None),
            status=status, **({"code": code} if code else {}), duration_ms=duration, remote=self.client_address[0])


def _drain_briefly(sock, limit=4 * MAX_REQUEST_BYTES, seconds=2.0):
    """Read and drop what the client is still sending, a little, so closing does not reset the connection
    before the client has read our answer."""
    deadline = time.monotonic() + seconds
    try:
        sock.shutdown(socket.SHUT_WR)
        while limit > 0 and (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            chunk = sock.recv(65536)
            if not chunk:
                break
            limit -= len(chunk)
    except OSError:
        pass


# ==================================================================================================================
# 10. gRPC: servicer, reflection, relay
# ==================================================================================================================

REFLECTION_SERVICES = ("grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection")


def _grpc_unary_handler(method, app):
    """The grpcio handler for one RPC: the same binding as Connect, errors mapped through the same CODES."""

    def handle(request, context):
        started = time.perf_counter()
        code = "OK"
        try:
            if method.reads_only:
                key = ("grpc", method.path, request.SerializeToString(deterministic=True))
                return app.answers.get(key, lambda: method.call(app.service, request))
            return method.call(app.service, request)
        except StatusThingError as exc:
            code = CODES[exc.code].grpc.name
            context.abort(CODES[exc.code].grpc, exc.message)
        except Exception as exc:  # (context.abort above raises past this clause, not into it)
            log_internal_error(exc, method.path)
            code = "INTERNAL"
            context.abort(grpc.StatusCode.INTERNAL, "internal error")
        finally:
            log(protocol="grpc", method=method.path, code=code,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
                remote=app.relay.client_of(context.peer()))

    return grpc.unary_unary_rpc_method_handler(handle, request_deserializer=method.request_class.FromString,
                                               response_serializer=method.response_class.SerializeToString)


def _add_reflection(server):
    """Server reflection, v1alpha as grpcio-reflection ships it and v1 too (the same messages under a newer
    name, which current grpcurl and grpcui ask for first)."""
    from grpc_reflection.v1alpha import reflection, reflection_pb2

    names = tuple(METHODS[path].service for path in METHODS) + REFLECTION_SERVICES
    servicer = reflection.ReflectionServicer(tuple(dict.fromkeys(names)))
    reflection.enable_server_reflection(tuple(dict.fromkeys(names)), server)
    v1_handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        REFLECTION_SERVICES[0], {"ServerReflectionInfo": v1_handler}),))


def build_grpc_server(app, devmode):
    """A grpcio server on an internal loopback port; returns (server, port). The public port relays to it."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="grpc"), options=[
        ("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
        ("grpc.so_reuseport", 0),
    ])
    by_service = {}
    for method in METHODS.values():
        by_service.setdefault(method.service, {})[method.name] = _grpc_unary_handler(method, app)
    for service, handlers in by_service.items():
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    if devmode:
        _add_reflection(server)
    port = server.add_insecure_port("127.0.0.1:0")
    return server, port


class GrpcRelay:
    """Copies bytes between a client's connection on the public port and the internal gRPC port.

    The gRPC server sees the relay's loopback address as its peer; ``client_of`` maps that back to the client.
    """

    def __init__(self, grpc_port):
        self.grpc_port = grpc_port
        self._clients = {}  # relay-side local port -> client's host

    def client_of(self, peer):
        """``"ipv4:127.0.0.1:53122"`` (as grpcio names the relay) -> the client's address."""
        port = peer.rsplit(":", 1)[-1]
        return self._clients.get(int(port), peer) if port.isdigit() else peer

    def relay(self, client, client_address):
        client.settimeout(None)
        try:
            upstream = socket.create_connection(("127.0.0.1", self.grpc_port))
        except OSError:
            return
        local_port = upstream.getsockname()[1]
        self._clients[local_port] = client_address[0]
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peers = {client: upstream, upstream: client}
        try:
            while peers:
                readable, _, _ = select.select(list(peers), [], [])
                for source in readable:
                    try:
                        data = source.recv(65536)
                    except OSError:
                        data = b""
                    target = peers.get(source)
                    if target is None:
                        continue
                    if data:
                        target.sendall(data)
                    else:  # one side is done sending: pass the half-close on, keep relaying the other way
                        del peers[source]
                        with contextlib.suppress(OSError):
                            target.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            self._clients.pop(local_port, None)
            upstream.close()


# ==================================================================================================================
# 11. Assembly: App, listener, command line
# ==================================================================================================================

HTTP2_PREFACE_START = b"PRI"  # "PRI * HTTP/2.0\r\n..."; no HTTP/1.1 method starts with these three bytes


class Listener(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """The one public socket. A thread per connection peeks at its first bytes: HTTP/2 (gRPC) goes to the
    relay, anything else to the Connect handler."""

    daemon_threads = True
    block_on_close = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address, handler_class, relay):
        host, port = address
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.relay = relay
        self.connections = set()
        self.connections_lock = threading.Lock()
        self.draining = False
        super().__init__((host, port), handler_class)

    def finish_request(self, request, client_address):
        request.settimeout(IDLE_TIMEOUT_S)
        try:
            head = request.recv(len(HTTP2_PREFACE_START), socket.MSG_PEEK | socket.MSG_WAITALL)
        except OSError:
            return
        if head == HTTP2_PREFACE_START:
            self.relay.relay(request, client_address)
        elif head:
            self.RequestHandlerClass(request, client_address, self)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, TimeoutError)):  # a client hanging up is not worth a line
            log_internal_error(exc, f"connection from {client_address[0]}")

    def track(self, handler):
        with self.connections_lock:
            self.connections.add(handler)

    def untrack(self, handler):
        with self.connections_lock:
            self.connections.discard(handler)

    def drain(self, grace):
        """Close idle keep-alive connections now; wait up to ``grace`` seconds for requests in flight, whose
        connections close once they are answered."""
        deadline = time.monotonic() + grace
        with self.connections_lock:
            self.draining = True
            for handler in self.connections:
                if not handler.busy:
                    with contextlib.suppress(OSError):
                        handler.connection.shutdown(socket.SHUT_RD)
        while time.monotonic() < deadline:
            with self.connections_lock:
                if not any(handler.busy for handler in self.connections):
                    return
            time.sleep(0.02)


class App:
    """A running StatusThing: store, service, gRPC server and the public listener. Tests build one on port 0.

        app = App(Config(api_addr="127.0.0.1:0", db_path=path)); app.start(); ...; app.stop()
    """

    def __init__(self, config):
        self.config = config
        try:
            host, port = split_host_port(config.api_addr)
        except ValueError as exc:
            raise StartupError(f"--api-addr: {exc}") from None
        self.store = Store(config.db_path)
        self.service = StatusThingService(self.store)
        self.answers = AnswerCache(lambda: self.service.generation)
        self.grpc_server, grpc_port = build_grpc_server(self, config.devmode)
        self.relay = GrpcRelay(grpc_port)
        handler_class = type("AppHandler", (Handler,), {"app": self})
        try:
            self.listener = Listener((host, port), handler_class, self.relay)
        except OSError as exc:
            self.grpc_server.stop(None)
            self.store.close()
            raise StartupError(f"cannot listen on {config.api_addr}: {exc.strerror or exc}") from None
        self._serve_thread = threading.Thread(target=self.listener.serve_forever, name="listener", daemon=True)

    @property
    def address(self):
        host, port = self.listener.server_address[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def start(self):
        self.grpc_server.start()
        self._serve_thread.start()

    def stop(self, grace=SHUTDOWN_GRACE_S):
        """Stop taking connections, let requests in flight finish (up to ``grace`` seconds), close the database."""
        self.listener.shutdown()  # no new connections from here on
        self.listener.socket.close()
        grpc_stopped = self.grpc_server.stop(grace)
        self.listener.drain(grace)
        grpc_stopped.wait(grace)
        self.listener.server_close()
        self.store.close()


def _build_parser():
    parser = argparse.ArgumentParser(
        prog="statusthing.py",
        description="StatusThing: a self-hosted status page. Serves the statusthing.v1 API over gRPC and the "
                    "Connect protocol (JSON and binary) on one address, stored in SQLite.")
    parser.add_argument("--api-addr", default=DEFAULT_API_ADDR, metavar="HOST:PORT",
                        help=f"address to listen on for Connect and gRPC alike (default {DEFAULT_API_ADDR}; "
                             "port 0 picks a free port, printed in the startup log line)")
    parser.add_argument("--db", default=DEFAULT_DB, metavar="PATH",
                        help=f"SQLite database file, created and migrated on start (default {DEFAULT_DB})")
    parser.add_argument("--devmode", action="store_true",
                        help="development mode: turn on gRPC server reflection")
    parser.add_argument("--version", action="version", version=f"statusthing {VERSION}")
    return parser


def main(argv=None):
    """Run the server until SIGINT or SIGTERM; return the exit code."""
    args = _build_parser().parse_args(argv)
    config = Config(api_addr=args.api_addr, db_path=args.db, devmode=args.devmode)
    try:
        app = App(config)
    except StartupError as exc:
        print(f"statusthing: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    app.start()
    log(event="start", version=VERSION, address=app.address, db=os.path.abspath(config.db_path),
        schema_version=app.store.schema_version, devmode=config.devmode, pid=os.getpid())
    while not stop.wait(3600):
        pass
    log(event="stopping")
    app.stop()
    log(event="stopped")
    LOG.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
