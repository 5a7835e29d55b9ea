"""StatusThing: a self-hosted status page appliance in one module.

Run ``python statusthing.py`` (or the installed ``statusthing``) and the statusthing.v1 API (six services, 28
unary RPCs, see services.proto) is served on one address, 127.0.0.1:9000 by default, in three ways: gRPC, and the
Connect protocol over HTTP/1.1 with JSON or binary protobuf bodies. Beside it, on the same address: the public
status pages (``/``, ``/items/<id>``, ``/history``, ``/incidents/<id>``, the subscription links), what other tools
read (Statuspage's ``/api/v2/*.json``, ``/history.atom`` and ``.rss``, badges, ``/metrics``, ``/healthz``,
``/readyz``), and the admin page (``/admin``). Data lives in SQLite (./statusthing.db by default) behind numbered
migrations, or, for several servers, in PostgreSQL (statusthing_pg.py, imported only for a postgresql:// --db).
A delivery worker tells webhooks and e-mail subscribers of what changed, from an outbox written with each change.

Data flows one way, and errors flow back through one funnel per transport:

    Connect:  Handler -> codec (decode) -> [Accounts, for writes] -> RPC binding -> StatusThingService -> Store
    gRPC:     grpcio (decode) -> [Accounts, for writes] -> RPC binding -> StatusThingService -> Store
    reads about many items (ListItems, GetUptime, the front page): ItemAnswers -> per-item parts kept by version
    public GETs (pages, Statuspage JSON, feeds, badges): Handler -> Site -> service / ItemAnswers -> render ->
              a Representation kept until the data or the clock moves it (export writes the same ones to files)
    errors:   StatusThingError (carries its code) -> CODES -> Connect error JSON | gRPC status

One listening socket serves both transports: each new connection is peeked at, and one that opens with the HTTP/2
preface (as gRPC clients do) is relayed to the grpcio server listening on a private Unix socket. Kept answers
follow the database (any process's commit) and the clock; the Store is an interface (section 4) that SQLite
implements (section 5), and statusthing_pg.py on PostgreSQL with the same queries. History (section 6) is pure
computation over status changes, per-day tallies and maintenance windows.

What it does not do: TLS (put it behind a reverse proxy), streaming RPCs (there are none).

Sections (``grep -n '^# [0-9]' statusthing.py``):
    1. Constants and configuration       11. Codec: protobuf <-> Connect wire
    2. Errors and the code table         12. Pages: public status pages, the admin page
    3. Clock and ids                     13. Outside formats: Statuspage JSON, feeds, badges, metrics
    4. Storage: the interface            14. Request log (and request metrics)
    5. Storage: SQLite                   15. Site: every public GET answer, and the static export
    6. History: conditions, days, uptime 16. HTTP: answers, routes, the handler
    7. Domain service                    17. gRPC: servicer, reflection, relay
    8. Accounts: users, tokens, creds    18. Telling people: webhooks, e-mail, the delivery worker
    9. RPC bindings                      19. Assembly: App, listener, command line
   10. Kept answers                      20. Embedded assets (generated)
"""

from __future__ import annotations

import signal
import sys

if __name__ == "__main__":  # Ctrl-C while the imports below load (a fraction of a second): leave quietly
    signal.signal(signal.SIGINT, lambda *_: sys.exit(130))

import argparse
import base64
import binascii
import bisect
import collections
import concurrent.futures
import contextlib
import ctypes
import ctypes.util
import dataclasses
import datetime
import email.message
import email.utils
import functools
import getpass
import gzip
import hashlib
import hmac
import html
import http
import http.client
import ipaddress
import json
import math
import os
import queue
import resource
import re
import secrets
import select
import selectors
import shlex
import shutil
import smtplib
import socket
import socketserver
import sqlite3
import ssl
import struct
import tempfile
import threading
import time
import traceback
import typing
import urllib.parse
import zlib
import zoneinfo
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
SERVER_NAME = "statusthing"  # the Server header: no version, so it tells an attacker nothing
DEFAULT_API_ADDR = "127.0.0.1:9000"
DEFAULT_DB = "statusthing.db"
MEMORY_DB = ":memory:"  # SQLite's name for a database that lives only in this process

# The three statuses a fresh database starts with, as the original ships them (CONTRACT.md, "Defaults").
DEFAULT_STATUSES = (
    ("UP", pb.STATUS_KIND_UP, "#5DFC0A"),
    ("DOWN", pb.STATUS_KIND_DOWN, "#FF0000"),
    ("WARNING", pb.STATUS_KIND_WARNING, "#EEEB8D"),
)

MAX_REQUEST_BYTES = 1 << 20  # request bodies (after decompression) and gRPC messages
# The largest answer sent: over gRPC, under the 4 MiB a gRPC client takes by default (with room for framing); over
# Connect, where clients set no such limit (browsers, curl, Connect's own), what one answer may hold in memory.
MAX_GRPC_ANSWER_BYTES = (4 << 20) - (64 << 10)
MAX_CONNECT_ANSWER_BYTES = 16 << 20
MAX_JSON_DEPTH = 32  # our messages nest three levels; anything much deeper is an attack on the parser

# Reading HTTP requests: limits (each refusal has its status: 414 request line, 431 headers and trailers) and
# deadlines, so that a slow or hostile client holds a connection for a bounded time and memory.
MAX_REQUEST_LINE_BYTES = 8192  # RFC 9112 asks servers to accept at least 8000 octets
MAX_HEADER_LINE_BYTES = 8192
MAX_HEADER_BLOCK_BYTES = 32768  # all the header lines of one request together
MAX_HEADER_LINES = 100
MAX_CHUNK_LINE_BYTES = 1024
MAX_TRAILER_BYTES = 4096  # chunked trailers are read and dropped
MAX_EMPTY_LINES_BEFORE_REQUEST = 4  # RFC 9112 §2.2: ignore at least one
REQUEST_TIMEOUT_S = 30  # --request-timeout: from a request's first byte to the end of its headers, however slowly
                        # they trickle in; and again for its body (at most 1 MiB)
MAX_CACHED_REQUEST_BYTES = 4096  # larger read requests are answered but not kept (they are not the hot ones)
GZIP_MIN_BYTES = 1024  # below about one packet, compression saves nothing worth its CPU
DEFAULT_MAX_CONNECTIONS = 1000  # open connections (each holds a thread); more are answered 503
IDLE_TIMEOUT_S = 120  # default for --idle-timeout: a connection that sends nothing this long is closed
DEFAULT_MAX_CONNECTIONS_PER_CLIENT = 256  # an office behind one NAT address stays well within it; one attacker cannot
DEADLINE_CHECK_S = 1.0  # how often overdue request heads and bodies are looked for
SHUTDOWN_GRACE_S = 5.0  # how long in-flight requests get to finish on SIGINT/SIGTERM
SQLITE_BUSY_TIMEOUT_MS = 5000  # the command line may hold the write lock briefly while the server runs
MAX_READERS = 8  # SQLite connections for reads (each read takes one for its transaction)
ANSWER_CACHE_BYTES = 48 << 20  # kept whole answers (pages, RPC answers), least recently used dropped first
PART_CACHE_BYTES = 48 << 20  # kept per-item parts of answers

# Input limits: generous for a status page, small enough that one request cannot bloat every page view.
MAX_NAME_CHARS = 200
MAX_DESCRIPTION_CHARS = 2000
MAX_NOTE_CHARS = 10000
MAX_COLOR_CHARS = 32
MAX_ID_CHARS = 64  # ids are made by the server (26 characters); a longer one names nothing
MAX_FILTER_VALUES = 1000  # status_ids or kinds in one request (each becomes a query parameter)
DEFAULT_PAGE_SIZE = 100  # notes in an item, notes in a page (contract: "Paging and bounded answers")
MAX_PAGE_SIZE = 1000
PURGE_BATCH = 2000  # notes of a deleted item deleted per transaction (a few milliseconds of the write lock)
DEFAULT_UPTIME_DAYS = 90
ITEM_PAGE_ENTRIES = 50  # status changes and notes on one page of /items/<id>
MAX_UPTIME_DAYS = 366
MAX_UPTIME_ITEM_DAYS = 100_000  # days in one GetUptime answer (about 13 MB of JSON)
MAINTENANCES_LISTED = 50  # windows in the outside formats, as Statuspage lists them
WEBHOOK_SECRET_BYTES = 32  # Standard Webhooks: 24 to 64 random bytes
MAX_TOLD_CHANGES = 50  # status changes and notes an incident's event carries (the newest notes, the first changes)
MAX_INCIDENT_CHANGES = 1000  # status changes listed with one incident (a flapping item can have thousands)
HISTORY_FRESH_NS = 60 * 10 ** 9  # answers about today so far (uptime, open incidents) are kept at most this long
DEFAULT_RETENTION_DAYS = 90
EXPORT_CHECK_S = 1.0  # how often --export-dir looks for changes to write out
PURGE_CHECK_S = 60  # how often the janitor looks for purges another process queued (and prunes the change log)
CHANGES_KEPT = 50_000  # rows of the change log kept (a reader further behind reads every version once)

# Accounts. scrypt's cost is recorded per user, so raising it later only affects passwords set from then on.
DEFAULT_ADMIN = ("admin", "password")  # the original's default login, kept until an operator changes it
SCRYPT_COST = {"n": 2 ** 14, "r": 8, "p": 1}  # about 16 MiB and a few tens of ms per check on this class of CPU
MIN_PASSWORD_CHARS = 8
FAILED_LOGINS_ALLOWED = 10  # per (client address, user name) within FAILED_LOGIN_WINDOW_S; more are answered 429
FAILED_LOGIN_WINDOW_S = 300
ACCOUNT_FAILURES_ALLOWED = 50  # per user name from all addresses within ACCOUNT_FAILURE_WINDOW_S (known ones spared)
ACCOUNT_FAILURE_WINDOW_S = 900
SCRYPT_CONCURRENCY = 2  # password hashes computed at once in the process (16 MiB each)
SCRYPT_WAIT_S = 2.0  # how long a check waits for its turn before resource_exhausted
LAST_USED_RESOLUTION_NS = 60 * 10 ** 9  # last login / token use is written at most once a minute per account
REALM = "StatusThing"


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything the server is told at start; only ``main`` builds one from the command line."""

    api_addr: str = DEFAULT_API_ADDR
    db_path: str = DEFAULT_DB
    devmode: bool = False
    first_admin_password: str = DEFAULT_ADMIN[1]  # used only when the users table is empty at start
    cors_origins: tuple = ()  # origins whose browsers may call the API cross-site
    title: str = "Status"  # the public page's title and heading
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_connections_per_client: int = DEFAULT_MAX_CONNECTIONS_PER_CLIENT
    idle_timeout_s: float = IDLE_TIMEOUT_S
    request_timeout_s: float = REQUEST_TIMEOUT_S
    durability: str = "full"  # "full": every acknowledged write survives power loss; "normal": crashes only
    timezone: str = "UTC"  # the IANA zone whose calendar days uptime counts
    public_url: str = ""  # where people reach the server ("https://status.example.com"), "" when not said
    trusted_proxies: tuple = ()  # ipaddress networks whose forwarding headers name the client
    metrics_token: str = ""  # a bearer token that may read /metrics (besides API tokens and this machine)
    export_dir: str = ""  # where to keep a static copy of the public site, "" for none
    smtp_url: str = ""  # where e-mail is sent from (smtp[s]://user:password@host:port), "" for no e-mail
    smtp_password: str = ""  # instead of the URL's password
    mail_from: str = ""
    retention_days: int = DEFAULT_RETENTION_DAYS  # how long finished deliveries and told events are kept
    webhook_timeout_s: float = 10.0  # a receiver (or mail server) that hangs is cut off after this

    @property
    def public_origin(self):
        """The origin of ``public_url`` (browser writes may come from it), or ""."""
        return origin_of(self.public_url) if self.public_url else ""


def parse_public_url(url):
    """``"https://Status.example.com/"`` -> ``"https://status.example.com"``; ValueError unless it is an http(s)
    URL of a host, without a path (the server serves from the root of its address), query or credentials."""
    parts = urllib.parse.urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or port == -1:
        raise ValueError(f"expected http(s)://HOST[:PORT], got {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{url!r} has more than a scheme, host and port (StatusThing serves from the root)")
    return origin_of(url)


def origin_of(url):
    """The origin of a URL as browsers send it in Origin: scheme and host in lower case, the port unless default
    (``"HTTPS://Example.com:443/x"`` -> ``"https://example.com"``); "" when it has none."""
    parts = urllib.parse.urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:
        return ""
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if not scheme or not host:
        return ""
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" + ("" if port is None or port == {"http": 80, "https": 443}.get(scheme) else f":{port}")


def _valid_time_zone(name):
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone (such as UTC or Europe/Berlin)") from None
    return name


def parse_trusted_proxy(text):
    """``"10.0.0.0/8"`` or ``"127.0.0.1"`` -> an ipaddress network; ValueError otherwise."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"expected an IP address or CIDR range, got {text!r}") from None


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
    """An error a client should see: its ``code`` (a key of CODES), a message safe to show, and typed details
    that each transport renders its own way (``retry_after_s``: HTTP Retry-After, gRPC retry-after metadata)."""

    code = "unknown"

    def __init__(self, message, retry_after_s=None):
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s  # seconds until trying again makes sense, when known


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
    """The request is larger than the server accepts, or its client failed to log in too often."""
    code = "resource_exhausted"


class Unauthenticated(StatusThingError):
    """A write without valid credentials. The message never says whether the user exists. Over HTTP it comes
    with a Basic challenge, so that a browser asks for a login."""
    code = "unauthenticated"


class PermissionDenied(StatusThingError):
    """Valid or not, the request may not write from where it comes (a foreign Origin)."""
    code = "permission_denied"


class Unimplemented(StatusThingError):
    """The server does not speak what the client asked for (an unknown content encoding)."""
    code = "unimplemented"


class DeadlineExceeded(StatusThingError):
    """The client's deadline (Connect-Timeout-Ms, a gRPC deadline) passed before the answer was ready."""
    code = "deadline_exceeded"


class Unavailable(StatusThingError):
    """Try again shortly (the database was locked longer than the busy timeout)."""
    code = "unavailable"


class Internal(StatusThingError):
    """A bug or a broken database; the details go to the log, never to the client."""
    code = "internal"


class StartupError(Exception):
    """The server cannot start; the message is the one line the operator sees."""


# ==================================================================================================================
# 3. Clock and ids
# ==================================================================================================================

class Clock:
    """Wall-clock nanoseconds that never repeat or go back within this process, so ``updated`` always moves.

    Tests set the time instead (STATUSTHING_CLOCK names a file holding it, as an RFC 3339 time or nanoseconds
    since the epoch; replacing the file moves the clock), so that history, uptime days and time-driven behaviour
    are tested at chosen times rather than by waiting.
    """

    def __init__(self):
        self._last = 0
        self._lock = threading.Lock()
        self._file, self._file_last = None, None

    def follow_file(self, path):
        """From now on, the time is the one written in ``path`` (for tests)."""
        self._file = path

    def now_ns(self):
        """The time for a record: unique within this process, and later than every earlier one. (A test clock may
        be set back, and then is: records made at one set instant still get one nanosecond each.)"""
        with self._lock:
            wall = self.wall_ns()
            if self._file is not None and wall != self._file_last:
                self._file_last, self._last = wall, wall
            else:
                self._last = max(wall, self._last + 1)
            return self._last

    def wall_ns(self):
        """The time as it is, for deciding whether something has expired (and what day it is)."""
        if self._file is None:
            return time.time_ns()
        # (Read every time: a replaced file can get the old one's inode, size and, within the file system's
        # timestamp granularity, its modification time, so nothing cheaper tells reliably that it moved.)
        with open(self._file) as file:
            text = file.read().strip()
        return int(text) if text.isdigit() else parse_rfc3339_ns(text)


class IdGenerator:
    """ULIDs: 48 bits of milliseconds then 80 random bits, Crockford base32, 26 characters.

    Ids sort by creation time as plain strings; within one millisecond the random part counts up, so ids made
    by this process sort in the order they were made.
    """

    ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    _CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", ALPHABET.encode())

    def __init__(self):
        self._last_ms = -1
        self._last_random = 0
        self._lock = threading.Lock()

    def new(self):
        with self._lock:
            ms = CLOCK.wall_ns() // 1_000_000
            if ms <= self._last_ms:
                ms, rand = self._last_ms, self._last_random + 1
            else:
                rand = secrets.randbits(80)
            self._last_ms, self._last_random = ms, rand
        # (The 130 bits of 26 characters, left-aligned in 160, through the C base32 encoder, then its alphabet
        # swapped for Crockford's: a tenth of the time of a character at a time, on every write.)
        value = ((ms << 80) | rand) << 30
        return base64.b32encode(value.to_bytes(20, "big"))[:26].translate(self._CROCKFORD).decode()


CLOCK = Clock()
IDS = IdGenerator()


def parse_rfc3339_ns(text):
    """``"2026-03-08T06:59:00Z"`` (or with an offset, or fractional seconds) -> nanoseconds since the epoch."""
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone (end it with Z or an offset)")
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def timestamp(ns):
    return Timestamp(seconds=ns // 1_000_000_000, nanos=ns % 1_000_000_000)


def timestamps(created_ns, updated_ns):
    return pb.Timestamps(created=timestamp(created_ns), updated=timestamp(updated_ns))


def utc_iso(ns, timespec="milliseconds"):
    """``1700000000123000000`` -> ``"2023-11-14T22:13:20.123Z"``."""
    moment = datetime.datetime.fromtimestamp(ns / 1e9, datetime.timezone.utc)
    return moment.isoformat(timespec=timespec).replace("+00:00", "Z")


# ==================================================================================================================
# 4. Storage: the interface
# ==================================================================================================================
# What the service and the accounts ask of a database, and the records they get back: protobuf messages for the
# API's entities, frozen dataclasses for the rest; never rows. SQLite implements it below (section 5); another
# backend implements the same two protocols. Only a backend sees its driver: it turns driver errors into
# StatusThingError in one place (AlreadyExists for a taken name, Unavailable for a busy database, Internal else).

# An item's version, as item_versions gives it: the row (id, revision, status id, status revision, notes count,
# position, time and condition of its last status change, creation time).
# Any change to the item, its notes or its status moves one of them. (Rows, not a record class: at 10,000 items
# building one object per row costs more than the query.)
ItemVersion = tuple
VERSION_NOTES_COUNT = 4
VERSION_POSITION = 5
VERSION_LAST_CHANGE_NS = 6  # (None when the item never had a status)
VERSION_LAST_CONDITION = 7
VERSION_CREATED_NS = 8


@dataclasses.dataclass(frozen=True)
class PasswordHash:
    """A salted scrypt hash and the cost it was made with (kept per user, so raising the cost later is safe)."""

    digest: bytes
    salt: bytes
    n: int
    r: int
    p: int


@dataclasses.dataclass(frozen=True)
class UserRecord:
    """Someone who may log in to change the status page."""

    id: str
    username: str
    password: PasswordHash
    created_ns: int
    last_login_ns: int | None


@dataclasses.dataclass(frozen=True)
class LoginFacts:
    """What a password login is judged on, read at once: the user (None: no such user); whether this client
    failed as this user lately; when its failures reached their limit, and when this user's failures from anywhere
    reached theirs (the time of the failure that did; None: not reached); whether this client has logged in as this
    user before."""

    user: UserRecord | None
    failed_lately: bool
    limit_reached_ns: int | None
    account_limit_reached_ns: int | None
    known: bool

    @property
    def clean(self):
        """Nothing against this client: it has logged in as this user before and has not failed since."""
        return self.known and not self.failed_lately


@dataclasses.dataclass(frozen=True)
class TokenRecord:
    """An API token, without the token: only its SHA-256 is stored."""

    id: str
    label: str
    created_by: str
    created_ns: int
    last_used_ns: int | None


@dataclasses.dataclass(frozen=True)
class AuditEntry:
    """One write, as the audit trail keeps it: who, from where, which call, and {field: [old, new]}."""

    id: int
    time_ns: int
    actor: str
    actor_kind: str
    client: str
    rpc: str
    target_id: str
    changes: dict
    item_id: str | None = None  # the item it concerns (its own writes and its notes')

    def to_api(self):
        """The entry in the API's words (lowerCamelCase, an RFC 3339 time), for JSON answers and ``audit --json``."""
        return {"id": self.id, "time": utc_iso(self.time_ns), "actor": self.actor, "actorKind": self.actor_kind,
                "client": self.client, "rpc": self.rpc, "targetId": self.target_id, "changes": self.changes,
                **({"itemId": self.item_id} if self.item_id else {})}


@dataclasses.dataclass(frozen=True)
class MaintenanceRecord:
    """A maintenance window as stored; its state depends on the clock (``state_at``)."""

    id: str
    title: str
    description: str
    item_ids: tuple
    starts_ns: int
    ends_ns: int
    cancelled: bool
    started_told: bool  # the events of its start and end have been written (exactly once)
    completed_told: bool
    created_ns: int
    updated_ns: int

    def state_at(self, now_ns):
        if self.cancelled:
            return pb.MAINTENANCE_STATE_CANCELLED
        if now_ns >= self.ends_ns:
            return pb.MAINTENANCE_STATE_COMPLETED
        return pb.MAINTENANCE_STATE_IN_PROGRESS if now_ns >= self.starts_ns else pb.MAINTENANCE_STATE_SCHEDULED

    def to_api(self, now_ns):
        return pb.Maintenance(id=self.id, title=self.title, description=self.description, item_ids=self.item_ids,
                              starts_at=timestamp(self.starts_ns), ends_at=timestamp(self.ends_ns),
                              state=self.state_at(now_ns), timestamps=timestamps(self.created_ns, self.updated_ns))


@dataclasses.dataclass(frozen=True)
class WebhookRecord:
    id: str
    url: str
    description: str
    events: tuple  # empty: every event
    body_format: str  # "standard" or "statuspage"
    secret: bytes
    disabled: bool
    created_ns: int
    updated_ns: int

    def to_api(self):
        """As the API shows it: never with its secret."""
        return pb.Webhook(id=self.id, url=self.url, description=self.description, events=self.events,
                          disabled=self.disabled, body_format=self.body_format,
                          timestamps=timestamps(self.created_ns, self.updated_ns))

    def wants(self, event_type):
        return not self.disabled and event_type in EVENT_TYPES and (
            not self.events or event_type in self.events or event_type == "ping")


@dataclasses.dataclass(frozen=True)
class SubscriberRecord:
    id: str
    email: str
    item_ids: tuple  # empty: the whole page
    confirm_nonce: str | None
    confirm_by_ns: int | None
    confirmed_ns: int | None
    created_ns: int


@dataclasses.dataclass(frozen=True)
class EventRecord:
    """Something to tell: its type, the items it concerns, and its Standard Webhooks body (JSON text)."""

    id: str
    type: str
    item_ids: tuple
    body: str
    created_ns: int


@dataclasses.dataclass(frozen=True)
class DeliveryRecord:
    """One event to one receiver (a webhook or a subscriber's address), and how its attempts went."""

    id: str
    event_id: str
    event_type: str
    channel: str  # "webhook" or "email"
    target_id: str
    attempt: int
    state: str  # pending, delivered, failed
    status_code: int | None
    error: str
    duration_ms: float | None
    attempted_ns: int | None
    next_ns: int | None
    created_ns: int

    def to_api(self):
        delivery = pb.WebhookDelivery(id=self.id, webhook_id=self.target_id, event_id=self.event_id,
                                      event_type=self.event_type, attempt=self.attempt, state=self.state,
                                      status_code=self.status_code or 0, error=self.error,
                                      duration_ms=self.duration_ms or 0.0)
        if self.attempted_ns:
            delivery.attempted_at.CopyFrom(timestamp(self.attempted_ns))
        if self.state == "pending" and self.next_ns:
            delivery.next_attempt_at.CopyFrom(timestamp(self.next_ns))
        return delivery


class Transaction(typing.Protocol):
    """The queries, run inside one transaction of a Store. Knows nothing of requests, transports or rules."""

    # statuses
    def get_status(self, status_id: str) -> pb.Status | None:
        """The status with this id, or None."""

    def list_statuses(self, kinds: typing.Sequence[int] = ()) -> list[pb.Status]:
        """The statuses of any of ``kinds`` (every status when empty), oldest first."""

    def insert_status(self, status_id: str, name: str, description: str, color: str, kind: int,
                      now_ns: int) -> None:
        """Add a status; AlreadyExists when its name is taken (ignoring case)."""

    def update_status(self, status_id: str, changes: dict, now_ns: int) -> None:
        """Set the given columns (name, description, color, kind) and ``updated``; AlreadyExists for a taken name."""

    def count_items_with_status(self, status_id: str) -> int:
        """How many items have this status."""

    def delete_status(self, status_id: str) -> None:
        """Remove the status (the service checks first that no item uses it)."""

    # items
    def get_item(self, item_id: str, notes_limit: int = 0) -> pb.Item | None:
        """The item with its status and its newest ``notes_limit`` notes (newest first), or None."""

    def list_items(self, status_ids: typing.Sequence[str] = (), kinds: typing.Sequence[int] = (),
                   notes_limit: int = 0) -> list[pb.Item]:
        """Items in creation order with any of ``status_ids`` and any of ``kinds`` (no filter when empty), each
        with its newest ``notes_limit`` notes."""

    def item_versions(self, status_ids: typing.Sequence[str] = (), kinds: typing.Sequence[int] = ()
                      ) -> list[ItemVersion]:
        """The ItemVersion of each item list_items would list, in its order."""

    def items_by_ids(self, item_ids: typing.Sequence[str], notes_limit: int = 0) -> list[pb.Item]:
        """The items with these ids that exist, each with its newest ``notes_limit`` notes."""

    def changes_since(self, seq: int) -> tuple[int, list[tuple[str, str]]] | None:
        """(the newest change's number, [(kind "item" or "status", id)] changed after change ``seq``), or None when
        the log no longer reaches back that far (and everything must be looked at again)."""

    def last_change(self) -> int:
        """The newest change's number (0 when none)."""

    def versions_of(self, item_ids: typing.Sequence[str] = (), status_ids: typing.Sequence[str] = ()
                    ) -> list[ItemVersion]:
        """The ItemVersions of the items with these ids and of the items with these statuses, in no order."""

    def prune_changes(self, keep: int) -> None:
        """Forget all but the newest ``keep`` changes."""

    def count_notes(self, item_id: str) -> int:
        """How many notes the item has."""

    def insert_item(self, item_id: str, name: str, description: str, status_id: str, position: int, group: str,
                    now_ns: int) -> None:
        """Add an item (``status_id`` "" for none); AlreadyExists when its name is taken (ignoring case)."""

    def update_item(self, item_id: str, changes: dict, now_ns: int) -> None:
        """Set the given columns (name, description, status_id) and ``updated``; AlreadyExists for a taken name."""

    def touch_item(self, item_id: str, now_ns: int) -> None:
        """Move the item's ``updated`` to now (its notes changed)."""

    def delete_item(self, item_id: str, now_ns: int) -> int:
        """Remove the item at once and queue its notes and history for purge_deleted_item; returns how many notes it
        had."""

    def purge_deleted_item(self, limit: int) -> int:
        """Delete up to ``limit`` rows (notes, history) of a deleted item; returns 0 when none are left to purge."""

    # notes
    def get_note(self, note_id: str) -> tuple[pb.Note | None, str | None]:
        """The note and the id of its item, or (None, None) (also for a note of a deleted item)."""

    def notes_page(self, item_id: str, limit: int, before_id: str = "") -> list[pb.Note]:
        """Up to ``limit`` of the item's notes, newest first, older than the note ``before_id`` when given."""

    def insert_note(self, note_id: str, item_id: str, text: str, now_ns: int) -> None:
        """Add a note to an item."""

    def update_note(self, note_id: str, text: str, now_ns: int) -> None:
        """Change a note's text and ``updated``."""

    def delete_note(self, note_id: str) -> None:
        """Remove a note."""

    # history
    def record_status_change(self, change_id: str, item_id: str, changed_ns: int, old_status: pb.Status | None,
                             new_status: pb.Status | None) -> pb.StatusChange:
        """Keep a change of an item's status, both statuses as they are now; it becomes the item's last change."""

    def last_status_change(self, item_id: str) -> pb.StatusChange | None:
        """The item's newest status change, or None."""

    def list_status_changes(self, item_ids: typing.Sequence[str] = (), since_ns: int | None = None,
                            until_ns: int | None = None, limit: int = 100,
                            before: tuple[int, str] | None = None) -> list[pb.StatusChange]:
        """Status changes in [since, until), newest first, older than ``before`` (time, id) when given."""

    def changes_of_item(self, item_id: str, since_ns: int, until_ns: int, limit: int) -> list[pb.StatusChange]:
        """One item's changes in [since, until] (both ends included), oldest first."""

    def open_incident(self, item_id: str) -> tuple[str, int] | None:
        """(id, worst condition) of the item's unresolved incident, or None."""

    def start_incident(self, incident_id: str, item_id: str, started_ns: int, worst_condition: int) -> None:
        """Open an incident."""

    def resolve_incident(self, incident_id: str, resolved_ns: int) -> None:
        """Close an incident."""

    def worsen_incident(self, incident_id: str, worst_condition: int) -> None:
        """Raise an incident's worst condition."""

    def list_incidents(self, item_ids: typing.Sequence[str] = (), since_ns: int | None = None,
                       until_ns: int | None = None, unresolved_only: bool = False, limit: int = 100,
                       before: tuple[int, str] | None = None, incident_ids: typing.Sequence[str] = ()
                       ) -> list[pb.Incident]:
        """Incidents that started in [since, until) (of some items, or these ids), newest first, without their
        changes and notes."""

    def count_open_incidents(self) -> int:
        """How many incidents are unresolved."""

    def count_deliveries(self) -> dict[tuple[str, str], int]:
        """{(channel, state): how many deliveries} of the outbox."""

    def count_incidents(self, since_ns: int, until_ns: int) -> int:
        """How many incidents started in [since, until)."""

    def first_incident_ns(self) -> int | None:
        """When the first incident kept started, or None."""

    def incidents_by_day(self, item_ids: typing.Sequence[str], days: typing.Sequence[tuple[str, int, int]]
                         ) -> list[tuple[str, str, int]]:
        """(item id, day, how many of its incidents started that day) for ``days`` [(day, start, end)], where not
        0."""

    def notes_written(self, item_id: str, since_ns: int, until_ns: int, limit: int) -> list[pb.Note]:
        """One item's notes created in [since, until], newest first."""

    def uptime_heads(self, item_ids: typing.Sequence[str] = ()) -> list[tuple[str, str, int, int | None, int | None]]:
        """(id, name, created, time and condition of its last change) of the items (or every item), in list
        order."""

    def uptime_tallies(self, item_ids: typing.Sequence[str], first_day: str) -> list[tuple]:
        """(item id, day, ns per TALLIED condition) of the items' (or every item's) days from ``first_day``."""

    def add_to_tallies(self, item_id: str, tallies: dict) -> None:
        """Add {day: [ns per TALLIED condition]} to an item's per-day tallies."""

    def delete_tallies(self, item_id: str, first_day: str, last_day: str) -> None:
        """Forget an item's tallies of these days (both included)."""

    def change_points(self, item_id: str, since_ns: int, until_ns: int) -> list[tuple[int, int | None]]:
        """(time, new condition) of an item's changes before ``until_ns``, from the last one at or before
        ``since_ns`` on, oldest first."""

    def all_item_ids(self) -> list[str]:
        """Every item's id."""

    def clear_tallies(self) -> None:
        """Forget every per-day tally (before tallying again in another time zone)."""

    def every_change_by_item(self) -> typing.Iterable[tuple[str, int, int | None]]:
        """(item id, time, new condition) of every status change, by item, then oldest first."""

    def timeline(self, item_id: str, limit: int, before: tuple[int, str] | None = None,
                 since_ns: int | None = None, until_ns: int | None = None) -> list[pb.StatusChange | pb.Note]:
        """An item's status changes and notes interleaved, newest first."""

    # maintenance
    def insert_maintenance(self, record: MaintenanceRecord) -> None:
        """Add a maintenance window and its items."""

    def update_maintenance(self, maintenance_id: str, changes: dict, item_ids: typing.Sequence[str] | None,
                           now_ns: int) -> None:
        """Change a window's columns (``changes``) and, when ``item_ids`` is given, replace its items."""

    def delete_maintenance(self, maintenance_id: str) -> None:
        """Remove a window."""

    def get_maintenance(self, maintenance_id: str) -> MaintenanceRecord | None:
        """One window, or None."""

    def list_maintenances(self, limit: int, after: tuple[int, str] | None = None) -> list[MaintenanceRecord]:
        """Windows by start (soonest first), after (start, id) when given."""

    def maintenances_between(self, start_ns: int, end_ns: int) -> list[MaintenanceRecord]:
        """Windows (cancelled ones too) overlapping [start_ns, end_ns)."""

    def maintenances_to_tell(self, now_ns: int) -> list[MaintenanceRecord]:
        """Windows whose start or end has passed and was not told yet (not cancelled)."""

    def mark_told(self, maintenance_id: str, which: str) -> bool:
        """Mark a window's start ("started") or end ("completed") told; False when it already was (by anyone)."""

    def maintenance_version(self) -> tuple:
        """Something that moves whenever any window changes."""

    # webhooks, subscribers, the outbox
    def insert_webhook(self, record: WebhookRecord) -> None:
        """Add a webhook."""

    def list_webhooks(self) -> list[WebhookRecord]:
        """Every webhook, oldest first."""

    def get_webhook(self, webhook_id: str) -> WebhookRecord | None:
        """One webhook, or None."""

    def delete_webhook(self, webhook_id: str) -> None:
        """Remove a webhook and its deliveries."""

    def disable_webhook(self, webhook_id: str, now_ns: int) -> None:
        """Stop sending to a webhook (its receiver said 410 Gone)."""

    def get_subscriber(self, subscriber_id: str = "", email: str = "") -> SubscriberRecord | None:
        """A subscriber by id or by address (ignoring case), or None."""

    def upsert_subscriber(self, record: SubscriberRecord) -> None:
        """Add a subscriber, or replace the one with the same id."""

    def delete_subscriber(self, subscriber_id: str) -> bool:
        """Remove a subscriber; False when there was none."""

    def list_subscribers(self) -> list[SubscriberRecord]:
        """Every subscriber, oldest first."""

    def insert_event(self, event: EventRecord) -> None:
        """Write an event to tell, in the transaction of the change that causes it."""

    def events_to_fan_out(self, limit: int) -> list[EventRecord]:
        """Events not yet turned into deliveries, oldest first (their bodies only where fanning out needs them)."""

    def mark_fanned_out(self, event_ids: typing.Sequence[str]) -> None:
        """Mark events as turned into deliveries."""

    def get_event(self, event_id: str) -> EventRecord | None:
        """One event, or None (pruned)."""

    def insert_delivery(self, record: DeliveryRecord) -> None:
        """Add a delivery of an event to one receiver."""

    def insert_deliveries(self, rows: typing.Sequence[tuple]) -> None:
        """Add many at once (an event fanned out to every receiver): each a tuple of a DeliveryRecord's fields."""

    def claim_deliveries(self, now_ns: int, lease_until_ns: int, limit: int) -> list[DeliveryRecord]:
        """Pending deliveries that are due and not leased by another worker, leased until ``lease_until_ns``."""

    def record_attempt(self, delivery_id: str, attempt: int, state: str, status_code: int | None, error: str,
                       duration_ms: float, attempted_ns: int, next_ns: int | None) -> None:
        """How an attempt went, and the next one (or none); the lease ends."""

    def list_deliveries(self, target_id: str, limit: int, before: tuple[int, str] | None = None
                        ) -> list[DeliveryRecord]:
        """A receiver's deliveries, newest first."""

    def next_delivery_ns(self) -> int | None:
        """When the soonest pending delivery is due."""

    def prune_notifications(self, before_ns: int) -> int:
        """Forget finished deliveries, told events and unconfirmed subscribers from before ``before_ns``."""

    def get_setting(self, key: str) -> str | None:
        """A server setting kept in the database, or None."""

    def set_setting(self, key: str, value: str) -> None:
        """Keep a server setting."""

    # accounts
    def get_user(self, username: str) -> UserRecord | None:
        """The user with this name (ignoring case), or None."""

    def list_users(self) -> list[UserRecord]:
        """Every user, by name."""

    def count_users(self) -> int:
        """How many users there are."""

    def insert_user(self, user_id: str, username: str, password: PasswordHash, now_ns: int) -> None:
        """Add a user; AlreadyExists when the name is taken (ignoring case)."""

    def set_password(self, user_id: str, password: PasswordHash, now_ns: int) -> None:
        """Replace a user's password hash."""

    def delete_user(self, user_id: str) -> None:
        """Remove a user."""

    def touch_login(self, user_id: str, now_ns: int) -> None:
        """Record a user's last login time."""

    def login_facts(self, username: str, client: str, since_ns: int, allowed: int, account_since_ns: int,
                    account_allowed: int) -> LoginFacts:
        """The user and the login throttle's standing of (``client``, ``username`` casefolded): the client's
        failures since ``since_ns`` against ``allowed``, the user's from anywhere since ``account_since_ns``
        against ``account_allowed``."""

    def record_login(self, client: str, username: str, at_ns: int, succeeded: bool, forget_before_ns: int) -> None:
        """Count a login's outcome for the throttle (a success clears the pair's failures and makes it known);
        forget failures older than ``forget_before_ns``."""

    def subscribe_requests(self, client: str, since_ns: int) -> list[int]:
        """The times of ``client``'s subscription requests since ``since_ns``, oldest first."""

    def record_subscribe_request(self, client: str, at_ns: int, forget_before_ns: int) -> None:
        """Count a subscription request; forget every client's older than ``forget_before_ns``."""

    def insert_token(self, token_id: str, label: str, token_sha256: str, created_by: str, now_ns: int) -> None:
        """Add an API token by its hash; AlreadyExists when the label is taken (ignoring case)."""

    def get_token(self, token_sha256: str) -> TokenRecord | None:
        """The token with this hash, or None."""

    def list_tokens(self) -> list[TokenRecord]:
        """Every token, oldest first."""

    def delete_token(self, label: str) -> str | None:
        """Remove the token with this label; returns its id, or None when there is none."""

    def touch_token(self, token_id: str, now_ns: int) -> None:
        """Record a token's last use."""

    # the audit trail
    def insert_audit(self, time_ns: int, actor: Actor, rpc: str, target_id: str, changes: dict,
                     item_id: str | None = None) -> None:
        """Record one write: who (``actor``), which call, what it touched (and the item it concerns), and
        {field: [old, new]}."""

    def list_audit(self, limit: int, before: int | None = None, item_id: str = "", actor: str = ""
                   ) -> list[AuditEntry]:
        """The newest ``limit`` audit entries older than entry ``before``, of one item or actor when given, newest
        first."""

    def audit_actors(self) -> list[str]:
        """Every name the audit trail has as an actor."""

    def names_of(self, ids: typing.Collection[str]) -> dict[str, str]:
        """{id: name} of the items and statuses among ``ids``, those deleted too (as the audit trail last named
        them)."""


class Store(typing.Protocol):
    """A database: transactions over it, and a way to know cheaply whether its data changed.

    Callers never see a connection, a cursor or BEGIN::

        with store.write() as tx:
            tx.insert_item(...)
    """

    schema_version: int

    def read(self, one_statement: bool = False) -> typing.ContextManager[Transaction]:
        """A read transaction: one consistent snapshot. ``one_statement``: the body runs a single statement (which
        is its own snapshot), so a store may spare the transaction around it."""

    def write(self, changes_data: bool = True) -> typing.ContextManager[Transaction]:
        """A write transaction: all of it commits, or (on any exception) none of it. ``changes_data=False`` for
        writes no kept answer depends on (accounts, last-used times)."""

    def size_bytes(self) -> int:
        """How much room the database takes."""

    def generation(self) -> int:
        """A number that moves whenever a write commits a change to data, made by this process or any other; an
        answer computed at one generation holds until it moves. Cheap: it is asked before every kept answer."""

    def close(self) -> None:
        """Close the database (waits for the transaction in progress)."""


# ==================================================================================================================
# 5. Storage: SQLite
# ==================================================================================================================
# The schema comes from numbered migrations. Each runs with its version record in one transaction (statements one
# by one: executescript would COMMIT first); a failure rolls both back, so the database stays at the previous
# version. The queries (SqlTransaction) are written in SQL that PostgreSQL reads too; only SqliteStore knows the
# driver.

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


def _migration_accounts_and_audit(conn):
    conn.execute("""
        CREATE TABLE users (
            id            TEXT PRIMARY KEY,
            username      TEXT NOT NULL UNIQUE COLLATE NOCASE,
            password_hash BLOB NOT NULL,
            password_salt BLOB NOT NULL,
            scrypt_n      INTEGER NOT NULL,
            scrypt_r      INTEGER NOT NULL,
            scrypt_p      INTEGER NOT NULL,
            first_name    TEXT NOT NULL DEFAULT '',
            last_name     TEXT NOT NULL DEFAULT '',
            email_address TEXT NOT NULL DEFAULT '',
            avatar_url    TEXT NOT NULL DEFAULT '',
            last_login_ns INTEGER,
            created_ns    INTEGER NOT NULL,
            updated_ns    INTEGER NOT NULL)""")
    conn.execute("""
        CREATE TABLE api_tokens (
            id            TEXT PRIMARY KEY,
            label         TEXT NOT NULL UNIQUE COLLATE NOCASE,
            token_sha256  TEXT NOT NULL UNIQUE,
            created_by    TEXT NOT NULL,
            created_ns    INTEGER NOT NULL,
            last_used_ns  INTEGER)""")
    conn.execute("""
        CREATE TABLE audit_log (
            id         INTEGER PRIMARY KEY AUTOINCREMENT,
            time_ns    INTEGER NOT NULL,
            actor      TEXT NOT NULL,
            actor_kind TEXT NOT NULL,
            client     TEXT NOT NULL,
            rpc        TEXT NOT NULL,
            target_id  TEXT NOT NULL,
            changes    TEXT NOT NULL)""")


def _migration_revisions_and_purges(conn):
    # Revisions that move with every change of what an item shows (its row, its notes, its status), kept by
    # triggers so that a hand edit or another process moves them too: kept per-item answers are looked up by them.
    conn.execute("ALTER TABLE items ADD COLUMN revision INTEGER NOT NULL DEFAULT 0")
    conn.execute("ALTER TABLE items ADD COLUMN notes_count INTEGER NOT NULL DEFAULT 0")
    conn.execute("ALTER TABLE statuses ADD COLUMN revision INTEGER NOT NULL DEFAULT 0")
    conn.execute("UPDATE items SET notes_count = (SELECT COUNT(*) FROM notes WHERE notes.item_id = items.id)")
    # Notes lose their cascading foreign key: deleting an item with 100,000 notes held the write lock for the
    # whole cascade. Its notes are now purged afterwards in small batches (purge_queue), hidden meanwhile.
    conn.execute("""
        CREATE TABLE notes_new (
            id          TEXT PRIMARY KEY,
            item_id     TEXT NOT NULL,
            text        TEXT NOT NULL,
            created_ns  INTEGER NOT NULL,
            updated_ns  INTEGER NOT NULL)""")
    conn.execute("INSERT INTO notes_new SELECT id, item_id, text, created_ns, updated_ns FROM notes")
    conn.execute("DROP TABLE notes")
    conn.execute("ALTER TABLE notes_new RENAME TO notes")
    conn.execute("CREATE INDEX notes_by_item ON notes(item_id, id)")
    conn.execute("CREATE TABLE purge_queue (item_id TEXT PRIMARY KEY, queued_ns INTEGER NOT NULL)")
    # A log of what changed, for kept answers: after a write, the items to look at again are read from here instead
    # of scanning every item's version. Pruned to its newest rows; a reader that fell behind scans once.
    conn.execute("CREATE TABLE changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, id TEXT NOT NULL)")
    log = "INSERT INTO changes (kind, id) VALUES"
    for statement in (
            f"""CREATE TRIGGER items_revision AFTER UPDATE ON items WHEN NEW.revision = OLD.revision
                BEGIN UPDATE items SET revision = OLD.revision + 1 WHERE id = OLD.id; {log} ('item', OLD.id); END""",
            f"""CREATE TRIGGER items_added AFTER INSERT ON items BEGIN {log} ('item', NEW.id); END""",
            f"""CREATE TRIGGER items_removed AFTER DELETE ON items BEGIN {log} ('item', OLD.id); END""",
            f"""CREATE TRIGGER statuses_revision AFTER UPDATE ON statuses WHEN NEW.revision = OLD.revision
                BEGIN UPDATE statuses SET revision = OLD.revision + 1 WHERE id = OLD.id;
                      {log} ('status', OLD.id); END""",
            """CREATE TRIGGER notes_added AFTER INSERT ON notes
               BEGIN UPDATE items SET notes_count = notes_count + 1 WHERE id = NEW.item_id; END""",
            f"""CREATE TRIGGER notes_changed AFTER UPDATE ON notes
                BEGIN UPDATE items SET revision = revision + 1 WHERE id = NEW.item_id; {log} ('item', NEW.item_id);
                END""",
            """CREATE TRIGGER notes_removed AFTER DELETE ON notes
               BEGIN UPDATE items SET notes_count = notes_count - 1 WHERE id = OLD.item_id; END"""):
        conn.execute(statement)


def _migration_history(conn):
    # Conditions, order and groups; every status change kept with both statuses as they were; incidents; per-day
    # uptime tallies (built at start, in the server's time zone); settings.
    conn.execute("ALTER TABLE statuses ADD COLUMN condition INTEGER")  # NULL: follow the kind
    conn.execute("ALTER TABLE items ADD COLUMN position INTEGER NOT NULL DEFAULT 0")
    conn.execute("ALTER TABLE items ADD COLUMN grp TEXT NOT NULL DEFAULT ''")
    conn.execute("ALTER TABLE items ADD COLUMN last_change_id TEXT")
    snapshot = "{0}_id TEXT, {0}_name TEXT, {0}_kind INTEGER, {0}_color TEXT, {0}_condition INTEGER"
    conn.execute(f"""
        CREATE TABLE status_changes (
            id          TEXT PRIMARY KEY,
            item_id     TEXT NOT NULL,
            changed_ns  INTEGER NOT NULL,
            {snapshot.format("old")},
            {snapshot.format("new")})""")
    conn.execute("CREATE INDEX status_changes_by_item ON status_changes(item_id, changed_ns, id)")
    conn.execute("CREATE INDEX status_changes_by_time ON status_changes(changed_ns, id)")
    conn.execute("""
        CREATE TABLE incidents (
            id           TEXT PRIMARY KEY,
            item_id      TEXT NOT NULL,
            started_ns   INTEGER NOT NULL,
            resolved_ns  INTEGER,
            worst        INTEGER NOT NULL)""")
    conn.execute("CREATE INDEX incidents_by_item ON incidents(item_id, started_ns, id)")
    conn.execute("CREATE INDEX incidents_by_time ON incidents(started_ns, id)")
    conn.execute("CREATE INDEX incidents_unresolved ON incidents(item_id) WHERE resolved_ns IS NULL")
    conn.execute("""
        CREATE TABLE uptime_days (
            item_id         TEXT NOT NULL,
            day             TEXT NOT NULL,
            operational_ns  INTEGER NOT NULL DEFAULT 0,
            degraded_ns     INTEGER NOT NULL DEFAULT 0,
            partial_ns      INTEGER NOT NULL DEFAULT 0,
            major_ns        INTEGER NOT NULL DEFAULT 0,
            maintenance_ns  INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (item_id, day))""")
    conn.execute("CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    _history_from_audit(conn)


def _history_from_audit(conn):
    """Each item's status history as well as the audit trail tells it (its old and new status ids, with times);
    an item the trail says nothing of starts its history at its creation, in its current status. The statuses
    are written as they are now (the trail did not keep their names and kinds); a status since deleted is written
    as "(deleted status)" with no condition."""
    tx = SqlTransaction(conn, translate_sqlite_error)
    statuses = {status.id: status for status in tx.list_statuses()}

    def as_it_was(status_id):
        if not status_id:
            return None
        return statuses.get(status_id) or pb.Status(id=status_id, name="(deleted status)")

    trail = {}
    for time_ns, target_id, changes in conn.execute(
            "SELECT time_ns, target_id, changes FROM audit_log WHERE rpc IN ('AddItem', 'UpdateItem') ORDER BY id"):
        pair = json.loads(changes).get("status_id")
        if pair and pair[1]:
            trail.setdefault(target_id, []).append((time_ns, pair[0], pair[1]))
    for item_id, created_ns, status_id in conn.execute("SELECT id, created_ns, status_id FROM items").fetchall():
        for time_ns, old_id, new_id in trail.get(item_id) or ([(created_ns, None, status_id)] if status_id else []):
            change = tx.record_status_change(IDS.new(), item_id, time_ns, as_it_was(old_id), as_it_was(new_id))
            follow_incident(tx, item_id, change, in_maintenance=False)


def _migration_audit_by_item(conn):
    # Which item each entry concerns (an item's own writes, and its notes'), so the trail can be read item by item.
    conn.execute("ALTER TABLE audit_log ADD COLUMN item_id TEXT")
    note_items = dict(conn.execute("SELECT id, item_id FROM notes"))
    updates = []
    for entry_id, rpc, target_id, changes in conn.execute("SELECT id, rpc, target_id, changes FROM audit_log"):
        if rpc in ("AddItem", "UpdateItem", "DeleteItem"):
            updates.append((target_id, entry_id))
        elif rpc in ("AddNote", "UpdateNote", "DeleteNote"):
            item_id = next((value for value in json.loads(changes).get("item_id", ()) if value), None)
            note_items.setdefault(target_id, item_id)
            updates.append((item_id or note_items.get(target_id), entry_id))
    conn.executemany("UPDATE audit_log SET item_id = ? WHERE id = ?", updates)
    conn.execute("CREATE INDEX audit_by_item ON audit_log(item_id, id)")
    conn.execute("CREATE INDEX audit_by_actor ON audit_log(actor, id)")


def _migration_notes_by_time(conn):
    # An item's timeline pages through its notes by time: without this, each page sorts all of them.
    conn.execute("CREATE INDEX notes_by_item_time ON notes(item_id, created_ns, id)")


def _migration_notifications(conn):
    # Maintenance windows; webhooks; e-mail subscribers; and the outbox: events written in the transaction of the
    # change that causes them, fanned out into deliveries (one per receiver) by the delivery worker.
    conn.execute("""
        CREATE TABLE maintenances (
            id              TEXT PRIMARY KEY,
            title           TEXT NOT NULL,
            description     TEXT NOT NULL DEFAULT '',
            starts_ns       INTEGER NOT NULL,
            ends_ns         INTEGER NOT NULL,
            cancelled       INTEGER NOT NULL DEFAULT 0,
            started_told    INTEGER NOT NULL DEFAULT 0,
            completed_told  INTEGER NOT NULL DEFAULT 0,
            created_ns      INTEGER NOT NULL,
            updated_ns      INTEGER NOT NULL)""")
    conn.execute("CREATE INDEX maintenances_by_start ON maintenances(starts_ns, id)")
    conn.execute("CREATE INDEX maintenances_by_end ON maintenances(ends_ns)")
    conn.execute("""
        CREATE TABLE maintenance_items (
            maintenance_id TEXT NOT NULL REFERENCES maintenances(id) ON DELETE CASCADE,
            item_id        TEXT NOT NULL,
            PRIMARY KEY (maintenance_id, item_id))""")
    conn.execute("""
        CREATE TABLE webhooks (
            id           TEXT PRIMARY KEY,
            url          TEXT NOT NULL,
            description  TEXT NOT NULL DEFAULT '',
            events       TEXT NOT NULL DEFAULT '',
            body_format  TEXT NOT NULL DEFAULT 'standard',
            secret       BLOB NOT NULL,
            disabled     INTEGER NOT NULL DEFAULT 0,
            created_ns   INTEGER NOT NULL,
            updated_ns   INTEGER NOT NULL)""")
    conn.execute("""
        CREATE TABLE subscribers (
            id             TEXT PRIMARY KEY,
            email          TEXT NOT NULL UNIQUE COLLATE NOCASE,
            item_ids       TEXT NOT NULL DEFAULT '',
            confirm_nonce  TEXT,
            confirm_by_ns  INTEGER,
            confirmed_ns   INTEGER,
            created_ns     INTEGER NOT NULL)""")
    conn.execute("""
        CREATE TABLE events (
            id          TEXT PRIMARY KEY,
            type        TEXT NOT NULL,
            item_ids    TEXT NOT NULL DEFAULT '',
            body        TEXT NOT NULL,
            created_ns  INTEGER NOT NULL,
            fanned_out  INTEGER NOT NULL DEFAULT 0)""")
    conn.execute("CREATE INDEX events_waiting ON events(fanned_out, created_ns)")
    conn.execute("""
        CREATE TABLE deliveries (
            id              TEXT PRIMARY KEY,
            event_id        TEXT NOT NULL,
            event_type      TEXT NOT NULL,
            channel         TEXT NOT NULL,
            target_id       TEXT NOT NULL,
            attempt         INTEGER NOT NULL DEFAULT 0,
            state           TEXT NOT NULL DEFAULT 'pending',
            status_code     INTEGER,
            error           TEXT NOT NULL DEFAULT '',
            duration_ms     REAL,
            attempted_ns    INTEGER,
            next_ns         INTEGER,
            lease_until_ns  INTEGER,
            created_ns      INTEGER NOT NULL)""")
    conn.execute("CREATE INDEX deliveries_due ON deliveries(state, next_ns)")
    conn.execute("CREATE INDEX deliveries_by_target ON deliveries(target_id, created_ns, id)")


def _migration_login_throttle(conn):
    # Failed logins, and the addresses each user logged in from, in the database: with several servers on one
    # database, an attacker gets no more guesses by spreading them over the servers.
    conn.execute("CREATE TABLE login_failures (client TEXT NOT NULL, username TEXT NOT NULL, at_ns INTEGER NOT NULL)")
    conn.execute("CREATE INDEX login_failures_by_pair ON login_failures(username, client, at_ns)")
    conn.execute("CREATE INDEX login_failures_by_time ON login_failures(at_ns)")
    conn.execute("""
        CREATE TABLE login_known (
            username  TEXT NOT NULL,
            client    TEXT NOT NULL,
            at_ns     INTEGER NOT NULL,
            PRIMARY KEY (username, client))""")


def _migration_subscribe_requests(conn):
    # Subscription requests per client address, in the database for the same reason as the login throttle.
    conn.execute("CREATE TABLE subscribe_requests (client TEXT NOT NULL, at_ns INTEGER NOT NULL)")
    conn.execute("CREATE INDEX subscribe_requests_by_client ON subscribe_requests(client, at_ns)")
    conn.execute("CREATE INDEX subscribe_requests_by_time ON subscribe_requests(at_ns)")


MIGRATIONS = (
    (1, "initial schema", _migration_initial_schema),
    (2, "default statuses", _migration_default_statuses),
    (3, "users, API tokens and the audit trail", _migration_accounts_and_audit),
    (4, "revisions, note counts, and notes purged after their item", _migration_revisions_and_purges),
    (5, "conditions, order and groups, status history, incidents, uptime", _migration_history),
    (6, "the audit trail by item and by actor", _migration_audit_by_item),
    (7, "notes by time", _migration_notes_by_time),
    (8, "maintenance, webhooks, subscribers, and the outbox", _migration_notifications),
    (9, "the login throttle in the database", _migration_login_throttle),
    (10, "subscription requests counted in the database", _migration_subscribe_requests),
)


# Every table of the schema, in an order a copy can load them in: statuses before the items that use them,
# notes before items (their trigger counts notes into an item that is not there yet, so nothing is counted twice),
# the change log last (the triggers of the rest write to it). tests/test_storage.py checks the list is whole.
TABLES = ("statuses", "notes", "items", "users", "api_tokens", "audit_log", "purge_queue", "status_changes",
          "incidents", "uptime_days", "settings", "maintenances", "maintenance_items", "webhooks", "subscribers",
          "events", "deliveries", "login_failures", "login_known", "subscribe_requests", "changes")


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
                         (version, name, utc_iso(time.time_ns())))
            conn.execute("COMMIT")
        except Exception as exc:
            conn.execute("ROLLBACK")
            raise StartupError(f"migration {version} ({name}) failed and was rolled back: {exc}") from exc
        current = version
    return current


_STATUS_COLUMNS = "s.id, s.name, s.description, s.color, s.kind, s.created_ns, s.updated_ns, s.condition"
_USER_COLUMNS = ("id, username, password_hash, password_salt, scrypt_n, scrypt_r, scrypt_p, created_ns, "
                 "last_login_ns")
_TOKEN_COLUMNS = "id, label, created_by, created_ns, last_used_ns"


def _status_from_row(row):
    return pb.Status(id=row[0], name=row[1], description=row[2], color=row[3], kind=row[4],
                     condition=condition_of(row[4], row[7]), timestamps=timestamps(row[5], row[6]))


def _note_from_row(row):
    return pb.Note(id=row[0], text=row[1], timestamps=timestamps(row[2], row[3]))


def _item_from_row(row):
    """An item from ``SqlTransaction._ITEM_COLUMNS`` (its status from the LEFT JOIN, when it has one)."""
    item = pb.Item(id=row[0], name=row[1], description=row[2], timestamps=timestamps(row[3], row[4]),
                   position=row[5], group=row[6])
    if row[7] is not None:
        item.status.CopyFrom(_status_from_row(row[7:]))
    return item


def _snapshot(status):
    """A status as a status change keeps it: (id, name, kind, colour, condition), or five Nones."""
    if status is None:
        return (None,) * 5
    return status.id, status.name, status.kind, status.color, status.condition


def _status_from_snapshot(row):
    return pb.Status(id=row[0], name=row[1], kind=row[2] or 0, color=row[3] or "", condition=row[4] or 0) \
        if row[0] is not None else None


def _change_from_row(row):
    """A StatusChange from ``SqlTransaction._CHANGE_COLUMNS``."""
    change = pb.StatusChange(id=row[0], item_id=row[1], changed_at=timestamp(row[2]))
    for field, status in (("old_status", _status_from_snapshot(row[3:8])),
                          ("new_status", _status_from_snapshot(row[8:13]))):
        if status is not None:
            getattr(change, field).CopyFrom(status)
    return change


def _user_from_row(row):
    return UserRecord(row[0], row[1], PasswordHash(bytes(row[2]), bytes(row[3]), row[4], row[5], row[6]), row[7],
                      row[8])


def _placeholders(values):
    return ",".join("?" * len(values))


class SqlTransaction:
    """The Transaction protocol in SQL, over a DB-API connection whose driver errors ``translate`` turns into
    StatusThingError. Counts the rows it changes, so its Store knows whether the data moved."""

    def __init__(self, conn, translate):
        self._conn, self._translate = conn, translate
        self._changes_before = conn.total_changes
        # (A driver may send statements ahead of their results, PostgreSQL's pipeline: its error may come with a
        # later statement's, so such a connection is told what a statement's unique violation means.)
        self._names_conflicts = getattr(conn, "names_conflicts", False)

    @property
    def rows_changed(self):
        """How many rows this transaction has inserted, updated or deleted (its triggers' included)."""
        return self._conn.total_changes - self._changes_before

    def _run(self, sql, params=(), conflict=None):
        """Execute one statement; ``conflict`` is the message of the AlreadyExists a unique violation means."""
        try:
            if conflict is not None and self._names_conflicts:
                return self._conn.execute(sql, params, conflict)
            return self._conn.execute(sql, params)
        except Exception as exc:
            raise self._translate(exc, conflict) from exc

    def _update(self, table, row_id, changes, now_ns, conflict):
        # Column names come from the service's code, never from a request.
        assignments = ", ".join(f"{column} = ?" for column in changes)
        self._run(f"UPDATE {table} SET {assignments}, updated_ns = ? WHERE id = ?",
                  (*changes.values(), now_ns, row_id), conflict)

    # -- statuses --------------------------------------------------------------------------------------------

    def get_status(self, status_id):
        row = self._run(f"SELECT {_STATUS_COLUMNS} FROM statuses s WHERE s.id = ?", (status_id,)).fetchone()
        return _status_from_row(row) if row else None

    def list_statuses(self, kinds=()):
        sql = f"SELECT {_STATUS_COLUMNS} FROM statuses s"
        if kinds:
            sql += f" WHERE s.kind IN ({_placeholders(kinds)})"
        return [_status_from_row(row) for row in self._run(sql + " ORDER BY s.id", tuple(kinds))]

    def insert_status(self, status_id, name, description, color, kind, condition, now_ns):
        self._run("INSERT INTO statuses (id, name, description, color, kind, condition, created_ns, updated_ns) "
                  "VALUES (?,?,?,?,?,?,?,?)", (status_id, name, description, color, kind, condition or None, now_ns,
                                               now_ns), f'a status named "{name}" already exists')

    def update_status(self, status_id, changes, now_ns):
        self._update("statuses", status_id, changes, now_ns, f'a status named "{changes.get("name")}" already exists')

    def count_items_with_status(self, status_id):
        return self._run("SELECT COUNT(*) FROM items WHERE status_id = ?", (status_id,)).fetchone()[0]

    def delete_status(self, status_id):
        self._run("DELETE FROM statuses WHERE id = ?", (status_id,))

    # -- items -----------------------------------------------------------------------------------------------

    _ITEM_COLUMNS = f"i.id, i.name, i.description, i.created_ns, i.updated_ns, i.position, i.grp, {_STATUS_COLUMNS}"
    _VERSIONS = ("SELECT i.id, i.revision, i.status_id, s.revision, i.notes_count, i.position, lc.changed_ns, "
                 "lc.new_condition, i.created_ns FROM items i LEFT JOIN statuses s ON s.id = i.status_id "
                 "LEFT JOIN status_changes lc ON lc.id = i.last_change_id")
    _ORDER = "ORDER BY i.position, i.id"  # the operator's order; equal positions keep creation order
    _SELECT_ITEMS = f"SELECT {_ITEM_COLUMNS} FROM items i LEFT JOIN statuses s ON s.id = i.status_id"

    @staticmethod
    def _in(pairs):
        """[(column, values)] -> (["column IN (?,…)" for each with values], their parameters)."""
        clauses, params = [], []
        for column, values in pairs:
            if values:
                clauses.append(f"{column} IN ({_placeholders(values)})")
                params.extend(values)
        return clauses, params

    def _filters(self, status_ids, kinds):
        clauses, params = self._in((("i.status_id", status_ids), ("s.kind", kinds)))
        return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params

    def _items(self, where, params):
        return [_item_from_row(row) for row in self._run(
            f"{self._SELECT_ITEMS} {where} {self._ORDER}", params)]

    def _newest_notes(self, item_id, limit):
        return self._run("SELECT id, text, created_ns, updated_ns FROM notes WHERE item_id = ? ORDER BY id DESC "
                         "LIMIT ?", (item_id, limit))

    def _attach_newest_notes(self, items, limit):
        """Each item's newest ``limit`` notes, read through the (item_id, id) index, however many it has."""
        if not items or limit <= 0:
            return items
        by_id = {item.id: item for item in items}
        if len(items) <= 64:
            # (Every query sent before any is read: one round trip in all where the driver pipelines them.)
            for item, rows in [(item, self._newest_notes(item.id, limit)) for item in items]:
                item.notes.extend(_note_from_row(row) for row in rows)
            return items
        ids = list(by_id)
        for start in range(0, len(ids), 500):  # many items: one windowed query per 500 of them
            chunk = ids[start:start + 500]
            for row in self._run(
                    "SELECT item_id, id, text, created_ns, updated_ns FROM ("
                    "  SELECT *, ROW_NUMBER() OVER (PARTITION BY item_id ORDER BY id DESC) AS newest FROM notes"
                    f"  WHERE item_id IN ({_placeholders(chunk)})) AS numbered"
                    " WHERE newest <= ? ORDER BY item_id, newest", (*chunk, limit)):
                by_id[row[0]].notes.append(_note_from_row(row[1:]))
        return items

    def get_item(self, item_id, notes_limit=0):
        item_rows = self._run(f"{self._SELECT_ITEMS} WHERE i.id = ?", (item_id,))
        note_rows = self._newest_notes(item_id, notes_limit) if notes_limit > 0 else ()  # (sent before reading)
        item = next((_item_from_row(row) for row in item_rows), None)
        if item is not None:
            item.notes.extend(_note_from_row(row) for row in note_rows)
        return item

    def list_items(self, status_ids=(), kinds=(), notes_limit=0):
        where, params = self._filters(status_ids, kinds)
        return self._attach_newest_notes(self._items(where, tuple(params)), notes_limit)

    def item_versions(self, status_ids=(), kinds=()):
        where, params = self._filters(status_ids, kinds)
        return self._run(f"{self._VERSIONS} {where} {self._ORDER}", tuple(params)).fetchall()

    def changes_since(self, seq):
        # Changes are numbered one after another (writers take turns, and a rolled-back change gives its number
        # back), so the log reaches back to ``seq`` exactly when the first change after it is seq + 1.
        rows = self._run("SELECT seq, kind, id FROM changes WHERE seq > ? ORDER BY seq", (seq,)).fetchall()
        if (rows and rows[0][0] != seq + 1) or (not rows and self.last_change() != seq):
            return None  # (pruned, or emptied, past what the caller has seen)
        return rows[-1][0] if rows else seq, [(kind, row_id) for _, kind, row_id in rows]

    def last_change(self):
        return self._run("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0]

    def versions_of(self, item_ids=(), status_ids=()):
        clauses, params = self._in((("i.id", item_ids), ("i.status_id", status_ids)))
        if not clauses:
            return []
        return self._run(f"{self._VERSIONS} WHERE {' OR '.join(clauses)}", tuple(params)).fetchall()

    def prune_changes(self, keep):
        self._run("DELETE FROM changes WHERE seq <= (SELECT MAX(seq) FROM changes) - ?", (keep,))

    def items_by_ids(self, item_ids, notes_limit=0):
        items = []
        for start in range(0, len(item_ids), 500):
            chunk = item_ids[start:start + 500]
            items += self._items(f"WHERE i.id IN ({_placeholders(chunk)})", tuple(chunk))
        return self._attach_newest_notes(items, notes_limit)

    def count_notes(self, item_id):
        row = self._run("SELECT notes_count FROM items WHERE id = ?", (item_id,)).fetchone()
        return row[0] if row else 0

    def insert_item(self, item_id, name, description, status_id, position, group, now_ns):
        self._run("INSERT INTO items (id, name, description, status_id, position, grp, created_ns, updated_ns) "
                  "VALUES (?,?,?,?,?,?,?,?)", (item_id, name, description, status_id or None, position, group, now_ns,
                                               now_ns), f'an item named "{name}" already exists')

    def update_item(self, item_id, changes, now_ns):
        self._update("items", item_id, changes, now_ns, f'an item named "{changes.get("name")}" already exists')

    def touch_item(self, item_id, now_ns):
        self._run("UPDATE items SET updated_ns = ? WHERE id = ?", (now_ns, item_id))

    def delete_item(self, item_id, now_ns):
        notes = self.count_notes(item_id)
        self._run("DELETE FROM items WHERE id = ?", (item_id,))
        # Its notes and history are purged afterwards, a batch at a time (purge_deleted_item); unreachable meanwhile.
        self._run("INSERT INTO purge_queue (item_id, queued_ns) VALUES (?, ?) ON CONFLICT (item_id) DO NOTHING",
                  (item_id, now_ns))
        return notes

    def purge_deleted_item(self, limit):
        row = self._run("SELECT item_id FROM purge_queue ORDER BY queued_ns LIMIT 1").fetchone()
        if row is None:
            return 0
        deleted = 0
        for table, key in (("notes", "id"), ("status_changes", "id"), ("incidents", "id"),
                           ("uptime_days", "rowid")):
            deleted += self._run(f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} WHERE item_id = ? "
                                 f"LIMIT ?)", (row[0], limit - deleted)).rowcount
            if deleted >= limit:
                return deleted
        self._run("DELETE FROM purge_queue WHERE item_id = ?", (row[0],))
        return max(deleted, 1)

    # -- notes -----------------------------------------------------------------------------------------------

    def get_note(self, note_id):
        row = self._run("SELECT n.id, n.text, n.created_ns, n.updated_ns, n.item_id FROM notes n "
                        "JOIN items i ON i.id = n.item_id WHERE n.id = ?", (note_id,)).fetchone()
        return (_note_from_row(row), row[4]) if row else (None, None)

    def notes_page(self, item_id, limit, before_id=""):
        older = " AND id < ?" if before_id else ""
        return [_note_from_row(row) for row in self._run(
            f"SELECT id, text, created_ns, updated_ns FROM notes WHERE item_id = ?{older} ORDER BY id DESC LIMIT ?",
            (item_id, *([before_id] if before_id else []), limit))]

    def insert_note(self, note_id, item_id, text, now_ns):
        self._run("INSERT INTO notes (id, item_id, text, created_ns, updated_ns) VALUES (?,?,?,?,?)",
                  (note_id, item_id, text, now_ns, now_ns))

    def update_note(self, note_id, text, now_ns):
        self._update("notes", note_id, {"text": text}, now_ns, None)

    def delete_note(self, note_id):
        self._run("DELETE FROM notes WHERE id = ?", (note_id,))


    # -- history: status changes, incidents, uptime tallies -----------------------------------------------------

    _CHANGE_COLUMNS = ("c.id, c.item_id, c.changed_ns, c.old_id, c.old_name, c.old_kind, c.old_color, c.old_condition, "
                       "c.new_id, c.new_name, c.new_kind, c.new_color, c.new_condition")

    def record_status_change(self, change_id, item_id, changed_ns, old_status, new_status):
        self._run("INSERT INTO status_changes VALUES (?,?,?, ?,?,?,?,?, ?,?,?,?,?)",
                  (change_id, item_id, changed_ns, *_snapshot(old_status), *_snapshot(new_status)))
        self._run("UPDATE items SET last_change_id = ? WHERE id = ?", (change_id, item_id))
        return _change_from_row((change_id, item_id, changed_ns, *_snapshot(old_status), *_snapshot(new_status)))

    def last_status_change(self, item_id):
        row = self._run(f"SELECT {self._CHANGE_COLUMNS} FROM items i JOIN status_changes c ON c.id = i.last_change_id "
                        "WHERE i.id = ?", (item_id,)).fetchone()
        return _change_from_row(row) if row else None

    @staticmethod
    def _time_range(column, since_ns, until_ns, clauses, params):
        if since_ns is not None:
            clauses.append(f"{column} >= ?")
            params.append(since_ns)
        if until_ns is not None:
            clauses.append(f"{column} < ?")
            params.append(until_ns)

    def list_status_changes(self, item_ids=(), since_ns=None, until_ns=None, limit=100, before=None):
        clauses, params = self._in((("c.item_id", item_ids),))
        self._time_range("c.changed_ns", since_ns, until_ns, clauses, params)
        if before is not None:  # (changed_ns, id) of the last change of the previous page
            clauses.append("(c.changed_ns, c.id) < (?, ?)")  # (a row value: a range on the index)
            params.extend(before)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return [_change_from_row(row) for row in self._run(
            f"SELECT {self._CHANGE_COLUMNS} FROM status_changes c {where} ORDER BY c.changed_ns DESC, c.id DESC "
            "LIMIT ?", (*params, limit))]

    def changes_of_item(self, item_id, since_ns, until_ns, limit):
        return [_change_from_row(row) for row in self._run(
            f"SELECT {self._CHANGE_COLUMNS} FROM status_changes c WHERE c.item_id = ? AND c.changed_ns >= ? "
            "AND c.changed_ns <= ? ORDER BY c.changed_ns, c.id LIMIT ?", (item_id, since_ns, until_ns, limit))]

    def open_incident(self, item_id):
        return self._run("SELECT id, worst FROM incidents WHERE item_id = ? AND resolved_ns IS NULL",
                         (item_id,)).fetchone()

    def start_incident(self, incident_id, item_id, started_ns, worst_condition):
        self._run("INSERT INTO incidents (id, item_id, started_ns, worst) VALUES (?,?,?,?)",
                  (incident_id, item_id, started_ns, worst_condition))

    def resolve_incident(self, incident_id, resolved_ns):
        self._run("UPDATE incidents SET resolved_ns = ? WHERE id = ?", (resolved_ns, incident_id))

    def worsen_incident(self, incident_id, worst_condition):
        self._run("UPDATE incidents SET worst = ? WHERE id = ?", (worst_condition, incident_id))

    def list_incidents(self, item_ids=(), since_ns=None, until_ns=None, unresolved_only=False, limit=100,
                       before=None, incident_ids=()):
        clauses, params = self._in((("n.item_id", item_ids), ("n.id", incident_ids)))
        self._time_range("n.started_ns", since_ns, until_ns, clauses, params)
        if unresolved_only:
            clauses.append("n.resolved_ns IS NULL")
        if before is not None:  # (started_ns, id) of the last incident of the previous page
            clauses.append("(n.started_ns, n.id) < (?, ?)")
            params.extend(before)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return [pb.Incident(id=row[0], item_id=row[1], item_name=row[2], started_at=timestamp(row[3]),
                            **({"resolved_at": timestamp(row[4])} if row[4] is not None else {}), worst=row[5])
                for row in self._run(
                    "SELECT n.id, n.item_id, i.name, n.started_ns, n.resolved_ns, n.worst FROM incidents n "
                    f"JOIN items i ON i.id = n.item_id {where} ORDER BY n.started_ns DESC, n.id DESC LIMIT ?",
                    (*params, limit))]

    def count_open_incidents(self):
        return self._run("SELECT COUNT(*) FROM incidents WHERE resolved_ns IS NULL").fetchone()[0]

    def count_deliveries(self):
        return {(channel, state): count for channel, state, count in self._run(
            "SELECT channel, state, COUNT(*) FROM deliveries GROUP BY channel, state")}

    # -- the login throttle ----------------------------------------------------------------------------------

    _LOGIN_FACTS = (  # (one statement: it is on every write made with a password)
        "SELECT {user_columns}, "
        "EXISTS (SELECT 1 FROM login_failures WHERE username = ? AND client = ? AND at_ns > ?), "
        "(SELECT at_ns FROM login_failures WHERE username = ? AND client = ? AND at_ns > ? "
        " ORDER BY at_ns DESC LIMIT 1 OFFSET ?), "
        "(SELECT at_ns FROM login_failures WHERE username = ? AND at_ns > ? ORDER BY at_ns DESC LIMIT 1 OFFSET ?), "
        "EXISTS (SELECT 1 FROM login_known WHERE username = ? AND client = ?) "
        "FROM (SELECT 1) AS one LEFT JOIN users u ON u.username = ?").format(
            user_columns=", ".join(f"u.{column.strip()}" for column in _USER_COLUMNS.split(",")))

    def login_facts(self, username, client, since_ns, allowed, account_since_ns, account_allowed):
        folded = username.casefold()
        row = self._run(self._LOGIN_FACTS, (
            folded, client, since_ns, folded, client, since_ns, allowed - 1, folded, account_since_ns,
            account_allowed - 1, folded, client, username)).fetchone()
        user_columns = len(_USER_COLUMNS.split(","))
        user = _user_from_row(row) if row[0] is not None else None
        failed_lately, limit_at, account_limit_at, known = row[user_columns:]
        return LoginFacts(user, bool(failed_lately), limit_at, account_limit_at, bool(known))

    def record_login(self, client, username, at_ns, succeeded, forget_before_ns):
        if succeeded:
            self._run("DELETE FROM login_failures WHERE username = ? AND client = ?", (username, client))
            self._run("INSERT INTO login_known (username, client, at_ns) VALUES (?, ?, ?) ON CONFLICT (username, "
                      "client) DO UPDATE SET at_ns = excluded.at_ns", (username, client, at_ns))
        else:
            self._run("INSERT INTO login_failures (client, username, at_ns) VALUES (?, ?, ?)",
                      (client, username, at_ns))
            self._run("DELETE FROM login_failures WHERE at_ns < ?", (forget_before_ns,))

    def subscribe_requests(self, client, since_ns):
        return [row[0] for row in self._run(
            "SELECT at_ns FROM subscribe_requests WHERE client = ? AND at_ns > ? ORDER BY at_ns", (client, since_ns))]

    def record_subscribe_request(self, client, at_ns, forget_before_ns):
        self._run("INSERT INTO subscribe_requests (client, at_ns) VALUES (?, ?)", (client, at_ns))
        self._run("DELETE FROM subscribe_requests WHERE at_ns < ?", (forget_before_ns,))

    # -- whole tables, for statusthing migrate-db ---------------------------------------------------------------

    def dump_table(self, table):
        """(column names, every row) of a table of TABLES."""
        cursor = self._run(f"SELECT * FROM {table}")
        return [column[0] for column in cursor.description], cursor.fetchall()

    def load_table(self, table, columns, rows):
        """Replace a table's rows with these."""
        self._run(f"DELETE FROM {table}")
        for start in range(0, len(rows), 1000):
            self._conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                                   f"({', '.join('?' * len(columns))})", rows[start:start + 1000])

    def database_pages_bytes(self):
        return self._run("PRAGMA page_count").fetchone()[0] * self._run("PRAGMA page_size").fetchone()[0]

    def count_incidents(self, since_ns, until_ns):
        return self._run("SELECT COUNT(*) FROM incidents WHERE started_ns >= ? AND started_ns < ?",
                         (since_ns, until_ns)).fetchone()[0]

    def first_incident_ns(self):
        return self._run("SELECT MIN(started_ns) FROM incidents").fetchone()[0]

    def incidents_by_day(self, item_ids, days):
        clauses, params = self._in((("n.item_id", item_ids),))
        ranges = ", ".join("(?, ?, ?)" for _ in days)
        return self._run(
            f"WITH days (day, day_start, day_end) AS (VALUES {ranges}) SELECT n.item_id, d.day, COUNT(*) "
            "FROM incidents n JOIN days d ON n.started_ns >= d.day_start AND n.started_ns < d.day_end "
            f"{'WHERE ' + clauses[0] if clauses else ''} GROUP BY n.item_id, d.day",
            (*(value for day in days for value in day), *params)).fetchall()

    def notes_written(self, item_id, since_ns, until_ns, limit):
        return [_note_from_row(row) for row in self._run(
            "SELECT id, text, created_ns, updated_ns FROM notes WHERE item_id = ? AND created_ns >= ? "
            "AND created_ns <= ? ORDER BY created_ns DESC, id DESC LIMIT ?", (item_id, since_ns, until_ns, limit))]

    def uptime_heads(self, item_ids=()):
        clauses, params = self._in((("i.id", item_ids),))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return self._run(
            "SELECT i.id, i.name, i.created_ns, c.changed_ns, c.new_condition FROM items i "
            f"LEFT JOIN status_changes c ON c.id = i.last_change_id {where} {self._ORDER}", tuple(params)).fetchall()

    def uptime_tallies(self, item_ids, first_day):
        clauses, params = self._in((("item_id", item_ids),))
        return self._run(
            "SELECT item_id, day, operational_ns, degraded_ns, partial_ns, major_ns, maintenance_ns FROM uptime_days "
            f"WHERE day >= ?{' AND ' + clauses[0] if clauses else ''}", (first_day, *params)).fetchall()

    def add_to_tallies(self, item_id, tallies):
        self._conn.executemany(
            "INSERT INTO uptime_days (item_id, day, operational_ns, degraded_ns, partial_ns, major_ns, maintenance_ns) "
            "VALUES (?,?,?,?,?,?,?) ON CONFLICT (item_id, day) DO UPDATE SET "
            "operational_ns = uptime_days.operational_ns + excluded.operational_ns, "
            "degraded_ns = uptime_days.degraded_ns + excluded.degraded_ns, "
            "partial_ns = uptime_days.partial_ns + excluded.partial_ns, "
            "major_ns = uptime_days.major_ns + excluded.major_ns, "
            "maintenance_ns = uptime_days.maintenance_ns + excluded.maintenance_ns",
            [(item_id, day.isoformat(), *ns) for day, ns in tallies.items()])

    def delete_tallies(self, item_id, first_day, last_day):
        self._run("DELETE FROM uptime_days WHERE item_id = ? AND day >= ? AND day <= ?", (item_id, first_day, last_day))

    def change_points(self, item_id, since_ns, until_ns):
        return self._run(
            "SELECT changed_ns, new_condition FROM status_changes WHERE item_id = ? AND changed_ns < ? "
            "AND changed_ns >= "
            "COALESCE((SELECT MAX(changed_ns) FROM status_changes WHERE item_id = ? AND changed_ns <= ?), ?) "
            "ORDER BY changed_ns, id", (item_id, until_ns, item_id, since_ns, since_ns)).fetchall()

    def all_item_ids(self):
        return [row[0] for row in self._run("SELECT id FROM items ORDER BY id")]

    def clear_tallies(self):
        self._run("DELETE FROM uptime_days")

    def every_change_by_item(self):
        return self._run("SELECT item_id, changed_ns, new_condition FROM status_changes "
                         "ORDER BY item_id, changed_ns, id")

    def timeline(self, item_id, limit, before=None, since_ns=None, until_ns=None):
        entries = []
        for table, columns in (("status_changes", self._CHANGE_COLUMNS.replace("c.", "t.")),
                               ("notes", "t.id, t.text, t.created_ns, t.updated_ns")):
            time_column = "t.changed_ns" if table == "status_changes" else "t.created_ns"
            clauses, params = ["t.item_id = ?"], [item_id]
            self._time_range(time_column, since_ns, until_ns, clauses, params)
            if before is not None:
                clauses.append(f"({time_column}, t.id) < (?, ?)")
                params.extend(before)
            for row in self._run(f"SELECT {columns} FROM {table} t WHERE {' AND '.join(clauses)} "
                                 f"ORDER BY {time_column} DESC, t.id DESC LIMIT ?", (*params, limit)):
                entry = _change_from_row(row) if table == "status_changes" else _note_from_row(row)
                entries.append(((row[2], row[0]), entry))
        entries.sort(key=lambda pair: pair[0], reverse=True)
        return [entry for _, entry in entries[:limit]]

    # -- maintenance ------------------------------------------------------------------------------------------

    _MAINTENANCE_COLUMNS = ("id, title, description, starts_ns, ends_ns, cancelled, started_told, completed_told, "
                            "created_ns, updated_ns")

    def _maintenances(self, where, params):
        rows = self._run(f"SELECT {self._MAINTENANCE_COLUMNS} FROM maintenances {where}", params).fetchall()
        clauses, item_params = self._in((("maintenance_id", [row[0] for row in rows]),))
        items = {}
        if clauses:
            for maintenance_id, item_id in self._run(
                    f"SELECT maintenance_id, item_id FROM maintenance_items WHERE {clauses[0]} ORDER BY item_id",
                    item_params):
                items.setdefault(maintenance_id, []).append(item_id)
        return [MaintenanceRecord(row[0], row[1], row[2], tuple(items.get(row[0], ())), row[3], row[4],
                                  bool(row[5]), bool(row[6]), bool(row[7]), row[8], row[9]) for row in rows]

    def insert_maintenance(self, record):
        self._run(f"INSERT INTO maintenances ({self._MAINTENANCE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                  (record.id, record.title, record.description, record.starts_ns, record.ends_ns,
                   int(record.cancelled), int(record.started_told), int(record.completed_told), record.created_ns,
                   record.updated_ns))
        self._conn.executemany("INSERT INTO maintenance_items (maintenance_id, item_id) VALUES (?, ?)",
                               [(record.id, item_id) for item_id in record.item_ids])

    def update_maintenance(self, maintenance_id, changes, item_ids, now_ns):
        if changes:
            self._update("maintenances", maintenance_id, changes, now_ns, None)
        else:
            self._run("UPDATE maintenances SET updated_ns = ? WHERE id = ?", (now_ns, maintenance_id))
        if item_ids is not None:
            self._run("DELETE FROM maintenance_items WHERE maintenance_id = ?", (maintenance_id,))
            self._conn.executemany("INSERT INTO maintenance_items (maintenance_id, item_id) VALUES (?, ?)",
                                   [(maintenance_id, item_id) for item_id in item_ids])

    def delete_maintenance(self, maintenance_id):
        self._run("DELETE FROM maintenances WHERE id = ?", (maintenance_id,))

    def get_maintenance(self, maintenance_id):
        found = self._maintenances("WHERE id = ?", (maintenance_id,))
        return found[0] if found else None

    def list_maintenances(self, limit, after=None):
        where, params = ("WHERE (starts_ns, id) > (?, ?)", tuple(after)) if after else ("", ())
        return self._maintenances(f"{where} ORDER BY starts_ns, id LIMIT ?", (*params, limit))

    def maintenances_between(self, start_ns, end_ns):
        return self._maintenances("WHERE starts_ns < ? AND ends_ns > ? ORDER BY starts_ns, id", (end_ns, start_ns))

    def maintenances_to_tell(self, now_ns):
        return self._maintenances(
            "WHERE cancelled = 0 AND ((starts_ns <= ? AND started_told = 0) OR (ends_ns <= ? AND completed_told = 0))"
            " ORDER BY starts_ns, id", (now_ns, now_ns))

    def mark_told(self, maintenance_id, which):
        column = {"started": "started_told", "completed": "completed_told"}[which]
        return self._run(f"UPDATE maintenances SET {column} = 1 WHERE id = ? AND {column} = 0",
                         (maintenance_id,)).rowcount == 1

    def maintenance_version(self):
        return tuple(self._run("SELECT COUNT(*), MAX(updated_ns) FROM maintenances").fetchone())

    # -- webhooks, subscribers, the outbox ---------------------------------------------------------------------

    _WEBHOOK_COLUMNS = "id, url, description, events, body_format, secret, disabled, created_ns, updated_ns"

    @staticmethod
    def _webhook(row):
        return WebhookRecord(row[0], row[1], row[2], tuple(filter(None, row[3].split(","))), row[4], bytes(row[5]),
                             bool(row[6]), row[7], row[8])

    def insert_webhook(self, record):
        self._run(f"INSERT INTO webhooks ({self._WEBHOOK_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
                  (record.id, record.url, record.description, ",".join(record.events), record.body_format,
                   record.secret, int(record.disabled), record.created_ns, record.updated_ns))

    def list_webhooks(self):
        return [self._webhook(row) for row in self._run(
            f"SELECT {self._WEBHOOK_COLUMNS} FROM webhooks ORDER BY created_ns, id")]

    def get_webhook(self, webhook_id):
        row = self._run(f"SELECT {self._WEBHOOK_COLUMNS} FROM webhooks WHERE id = ?", (webhook_id,)).fetchone()
        return self._webhook(row) if row else None

    def delete_webhook(self, webhook_id):
        self._run("DELETE FROM deliveries WHERE channel = 'webhook' AND target_id = ?", (webhook_id,))
        self._run("DELETE FROM webhooks WHERE id = ?", (webhook_id,))

    def disable_webhook(self, webhook_id, now_ns):
        self._run("UPDATE webhooks SET disabled = 1, updated_ns = ? WHERE id = ?", (now_ns, webhook_id))
        self._run("UPDATE deliveries SET state = 'failed', next_ns = NULL, error = 'the webhook was disabled' "
                  "WHERE channel = 'webhook' AND target_id = ? AND state = 'pending'", (webhook_id,))

    _SUBSCRIBER_COLUMNS = "id, email, item_ids, confirm_nonce, confirm_by_ns, confirmed_ns, created_ns"

    @staticmethod
    def _subscriber(row):
        return SubscriberRecord(row[0], row[1], tuple(filter(None, row[2].split(","))), *row[3:])

    def get_subscriber(self, subscriber_id="", email=""):
        row = self._run(f"SELECT {self._SUBSCRIBER_COLUMNS} FROM subscribers WHERE "
                        + ("id = ?" if subscriber_id else "email = ?"), (subscriber_id or email,)).fetchone()
        return self._subscriber(row) if row else None

    def upsert_subscriber(self, record):
        self._run(f"INSERT INTO subscribers ({self._SUBSCRIBER_COLUMNS}) VALUES (?,?,?,?,?,?,?) ON CONFLICT (id) DO "
                  "UPDATE SET item_ids = excluded.item_ids, confirm_nonce = excluded.confirm_nonce, "
                  "confirm_by_ns = excluded.confirm_by_ns, confirmed_ns = excluded.confirmed_ns",
                  (record.id, record.email, ",".join(record.item_ids), record.confirm_nonce, record.confirm_by_ns,
                   record.confirmed_ns, record.created_ns))

    def delete_subscriber(self, subscriber_id):
        self._run("DELETE FROM deliveries WHERE channel = 'email' AND target_id = ?", (subscriber_id,))
        return self._run("DELETE FROM subscribers WHERE id = ?", (subscriber_id,)).rowcount == 1

    def list_subscribers(self):
        return [self._subscriber(row) for row in self._run(
            f"SELECT {self._SUBSCRIBER_COLUMNS} FROM subscribers ORDER BY created_ns, id")]

    def insert_event(self, event):
        self._run("INSERT INTO events (id, type, item_ids, body, created_ns) VALUES (?,?,?,?,?)",
                  (event.id, event.type, ",".join(event.item_ids), event.body, event.created_ns))

    def events_to_fan_out(self, limit):
        return [EventRecord(row[0], row[1], tuple(filter(None, row[2].split(","))), row[3], row[4])
                for row in self._run(
            # (The bodies only where fanning out reads them: they can be kilobytes, and are sent later anyway.)
            "SELECT id, type, item_ids, CASE WHEN type = 'subscriber.confirm' THEN body ELSE '' END, created_ns "
            "FROM events WHERE fanned_out = 0 ORDER BY created_ns, id LIMIT ?", (limit,))]

    def mark_fanned_out(self, event_ids):
        for start in range(0, len(event_ids), 500):  # (a statement per 500, not one per event)
            chunk = event_ids[start:start + 500]
            self._run(f"UPDATE events SET fanned_out = 1 WHERE id IN ({_placeholders(chunk)})", tuple(chunk))

    def get_event(self, event_id):
        row = self._run("SELECT id, type, item_ids, body, created_ns FROM events WHERE id = ?", (event_id,)).fetchone()
        return EventRecord(row[0], row[1], tuple(filter(None, row[2].split(","))), row[3], row[4]) if row else None

    _DELIVERY_COLUMNS = ("id, event_id, event_type, channel, target_id, attempt, state, status_code, error, "
                         "duration_ms, attempted_ns, next_ns, created_ns")

    def insert_delivery(self, record):
        self.insert_deliveries([tuple(vars(record).values())])  # (not dataclasses.astuple: it deep-copies)

    def insert_deliveries(self, rows):
        self._conn.executemany(f"INSERT INTO deliveries ({self._DELIVERY_COLUMNS}) VALUES "
                               "(?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)

    def claim_deliveries(self, now_ns, lease_until_ns, limit):
        rows = self._run(
            f"SELECT {self._DELIVERY_COLUMNS} FROM deliveries WHERE state = 'pending' AND next_ns <= ? AND "
            "(lease_until_ns IS NULL OR lease_until_ns < ?) ORDER BY next_ns, id LIMIT ?",
            (now_ns, now_ns, limit)).fetchall()
        self._conn.executemany("UPDATE deliveries SET lease_until_ns = ? WHERE id = ?",
                               [(lease_until_ns, row[0]) for row in rows])
        return [DeliveryRecord(*row) for row in rows]

    def record_attempt(self, delivery_id, attempt, state, status_code, error, duration_ms, attempted_ns, next_ns):
        self._run("UPDATE deliveries SET attempt = ?, state = ?, status_code = ?, error = ?, duration_ms = ?, "
                  "attempted_ns = ?, next_ns = ?, lease_until_ns = NULL WHERE id = ?",
                  (attempt, state, status_code, error, duration_ms, attempted_ns, next_ns, delivery_id))

    def list_deliveries(self, target_id, limit, before=None):
        where, params = ("AND (created_ns, id) < (?, ?)", tuple(before)) if before else ("", ())
        return [DeliveryRecord(*row) for row in self._run(
            f"SELECT {self._DELIVERY_COLUMNS} FROM deliveries WHERE target_id = ? {where} "
            "ORDER BY created_ns DESC, id DESC LIMIT ?", (target_id, *params, limit))]

    def next_delivery_ns(self):
        return self._run("SELECT MIN(next_ns) FROM deliveries WHERE state = 'pending'").fetchone()[0]

    def prune_notifications(self, before_ns):
        pruned = self._run("DELETE FROM deliveries WHERE state IN ('delivered', 'failed') AND created_ns < ?",
                           (before_ns,)).rowcount
        pruned += self._run("DELETE FROM events WHERE fanned_out = 1 AND created_ns < ? AND id NOT IN "
                            "(SELECT event_id FROM deliveries)", (before_ns,)).rowcount
        pruned += self._run("DELETE FROM subscribers WHERE confirmed_ns IS NULL AND confirm_by_ns < ?",
                            (before_ns,)).rowcount
        return pruned


    def get_setting(self, key):
        row = self._run("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_setting(self, key, value):
        self._run("INSERT INTO settings (key, value) VALUES (?, ?) "
                  "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                  (key, value))

    # -- accounts --------------------------------------------------------------------------------------------

    def get_user(self, username):
        row = self._run(f"SELECT {_USER_COLUMNS} FROM users WHERE username = ?", (username,)).fetchone()
        return _user_from_row(row) if row else None

    def list_users(self):
        return [_user_from_row(row) for row in self._run(f"SELECT {_USER_COLUMNS} FROM users ORDER BY username")]

    def count_users(self):
        return self._run("SELECT COUNT(*) FROM users").fetchone()[0]

    def insert_user(self, user_id, username, password, now_ns):
        self._run("INSERT INTO users (id, username, password_hash, password_salt, scrypt_n, scrypt_r, scrypt_p,"
                  " created_ns, updated_ns) VALUES (?,?,?,?,?,?,?,?,?)",
                  (user_id, username, password.digest, password.salt, password.n, password.r, password.p, now_ns,
                   now_ns), f'a user named "{username}" already exists')

    def set_password(self, user_id, password, now_ns):
        self._run("UPDATE users SET password_hash = ?, password_salt = ?, scrypt_n = ?, scrypt_r = ?, scrypt_p = ?,"
                  " updated_ns = ? WHERE id = ?",
                  (password.digest, password.salt, password.n, password.r, password.p, now_ns, user_id))

    def delete_user(self, user_id):
        self._run("DELETE FROM users WHERE id = ?", (user_id,))

    def touch_login(self, user_id, now_ns):
        self._run("UPDATE users SET last_login_ns = ? WHERE id = ?", (now_ns, user_id))

    def insert_token(self, token_id, label, token_sha256, created_by, now_ns):
        self._run("INSERT INTO api_tokens (id, label, token_sha256, created_by, created_ns) VALUES (?,?,?,?,?)",
                  (token_id, label, token_sha256, created_by, now_ns), f'a token named "{label}" already exists')

    def get_token(self, token_sha256):
        row = self._run(f"SELECT {_TOKEN_COLUMNS} FROM api_tokens WHERE token_sha256 = ?",
                        (token_sha256,)).fetchone()
        return TokenRecord(*row) if row else None

    def list_tokens(self):
        return [TokenRecord(*row) for row in self._run(f"SELECT {_TOKEN_COLUMNS} FROM api_tokens ORDER BY created_ns")]

    def delete_token(self, label):
        row = self._run("SELECT id FROM api_tokens WHERE label = ?", (label,)).fetchone()
        if row:
            self._run("DELETE FROM api_tokens WHERE id = ?", (row[0],))
        return row[0] if row else None

    def touch_token(self, token_id, now_ns):
        self._run("UPDATE api_tokens SET last_used_ns = ? WHERE id = ?", (now_ns, token_id))

    # -- the audit trail -------------------------------------------------------------------------------------

    def insert_audit(self, time_ns, actor, rpc, target_id, changes, item_id=None):
        self._run("INSERT INTO audit_log (time_ns, actor, actor_kind, client, rpc, target_id, changes, item_id) "
                  "VALUES (?,?,?,?,?,?,?,?)", (time_ns, actor.name, actor.kind, actor.client, rpc, target_id,
                                               json.dumps(changes, ensure_ascii=False), item_id))

    def list_audit(self, limit, before=None, item_id="", actor=""):
        clauses, params = [], []
        for clause, value in (("id < ?", before), ("item_id = ?", item_id or None), ("actor = ?", actor or None)):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return [AuditEntry(*row[:7], json.loads(row[7]), row[8]) for row in self._run(
            "SELECT id, time_ns, actor, actor_kind, client, rpc, target_id, changes, item_id FROM audit_log "
            f"{where} ORDER BY id DESC LIMIT ?", (*params, limit))]

    def audit_actors(self):
        return [row[0] for row in self._run("SELECT DISTINCT actor FROM audit_log ORDER BY actor")]

    def names_of(self, ids):
        ids = list(ids)
        names = {}
        for table in ("items", "statuses"):
            clauses, params = self._in((("id", ids),))
            if clauses:
                names.update(self._run(f"SELECT id, name FROM {table} WHERE {clauses[0]}", params))
        missing = [value for value in ids if value not in names]
        clauses, params = self._in((("target_id", missing),))
        if clauses:
            for target_id, changes in self._run(f"SELECT target_id, changes FROM audit_log WHERE {clauses[0]} "
                                                "ORDER BY id", params):
                named = [value for value in json.loads(changes).get("name", ()) if value]
                if named:
                    names[target_id] = named[-1]
        return names


class SqliteStore:
    """The Store protocol on one SQLite file (or ``:memory:``), through the standard library's sqlite3.

    Writes share one connection, serialized by a lock. Reads take a connection of their own from a small pool: in
    WAL mode they see a consistent snapshot without waiting for the writer, and a slow read never holds the lock
    a write needs. (In memory there is one connection for everything.) One more connection only watches: its
    ``PRAGMA data_version``
    moves whenever any other connection commits a change (this process's, the command line's, another server's,
    a hand edit's), so it is the generation itself, read in a few microseconds without the main lock. Writes that
    change nothing leave it alone; writes of accounts move it too (at most once a minute per user: harmless).
    """

    def __init__(self, path, create=True, durability="full"):
        self.path = path
        conn = None
        try:
            conn = self._connect(path, create)
            # FULL: a write is acknowledged only once the WAL is synced, so it survives power loss (measured: about a
            # tenth of a millisecond a commit here). NORMAL syncs only at checkpoints: a crash of this process loses
            # nothing, power loss may lose the last writes.
            conn.execute(f"PRAGMA synchronous = {'FULL' if durability == 'full' else 'NORMAL'}")
            self.schema_version = migrate(conn)
            if create:  # (the server; the commands only read, or report a failed write as it happens)
                self._probe_writing(conn, path)
            self._watcher = None if path == MEMORY_DB else self._connect(path, create=False)
        except (sqlite3.Error, StartupError) as exc:
            if conn is not None:  # a refused database is not left open (the command line goes on running)
                conn.close()
            if isinstance(exc, StartupError):
                raise
            raise StartupError(f"cannot open database {path}: {exc}") from exc
        self._conn = conn
        self._lock = threading.Lock()
        self._watch_lock = threading.Lock()
        self._readers = queue.SimpleQueue()  # idle reader connections
        self._reader_count = 0
        self._reader_lock = threading.Lock()
        self._generation = 0  # in memory, where nothing else can write: moved by write() itself

    @staticmethod
    def _probe_writing(conn, path):
        """StartupError when the database cannot be written (a read-only file opens without complaint, and only
        its first write would fail): a row written and rolled back."""
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (-1, 'probe', '')")
            finally:
                conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise StartupError(f"the database {path} cannot be written ({exc}); check its permissions and its "
                               f"disk") from None

    @staticmethod
    def _connect(path, create):
        if path != MEMORY_DB:
            folder = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(folder):
                raise StartupError(f"cannot open database {path}: the folder {folder} does not exist")
            if not create and not os.path.exists(path):
                raise StartupError(f"no database at {os.path.abspath(path)}: the server creates it on its first "
                                   f"start; check --db or STATUSTHING_DB")
        target = path if create else f"file:{urllib.parse.quote(os.path.abspath(path))}?mode=rw"
        conn = sqlite3.connect(target, uri=not create, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def close(self):
        with self._lock:
            self._conn.close()
        if self._watcher is not None:
            with self._watch_lock:
                self._watcher.close()
        with self._reader_lock:
            while self._reader_count:
                self._readers.get().close()  # (waits for a read in progress to hand its connection back)
                self._reader_count -= 1

    @contextlib.contextmanager
    def _transaction(self, begin):
        with self._lock:
            try:
                self._conn.execute(begin)
            except sqlite3.Error as exc:
                raise translate_sqlite_error(exc) from exc
            tx = SqlTransaction(self._conn, translate_sqlite_error)
            try:
                yield tx
                self._conn.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):  # after a failed COMMIT there may be nothing to roll back
                    self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise translate_sqlite_error(exc) from exc
                raise

    @contextlib.contextmanager
    def read(self, one_statement=False):
        if self._watcher is None:  # in memory: the one connection
            with self._transaction("BEGIN") as tx:
                yield tx
            return
        conn = self._take_reader()
        try:
            conn.execute("BEGIN")
            try:
                yield SqlTransaction(conn, translate_sqlite_error)
            finally:
                conn.execute("ROLLBACK")  # (a read changes nothing; this ends the snapshot)
        except sqlite3.Error as exc:
            raise translate_sqlite_error(exc) from exc
        finally:
            self._readers.put(conn)

    def _take_reader(self):
        with contextlib.suppress(queue.Empty):
            return self._readers.get_nowait()
        with self._reader_lock:
            if self._reader_count < MAX_READERS:
                self._reader_count += 1
                try:
                    conn = self._connect(self.path, create=False)
                    conn.execute("PRAGMA query_only = ON")
                    return conn
                except (sqlite3.Error, StartupError) as exc:
                    self._reader_count -= 1
                    raise Unavailable(f"cannot open another connection to the database: {exc}") from None
        return self._readers.get()  # all in use: wait for one

    @contextlib.contextmanager
    def write(self, changes_data=True):
        with self._transaction("BEGIN IMMEDIATE") as tx:
            yield tx
            # An update that changed nothing (the same values again) keeps every kept answer.
            if changes_data and tx.rows_changed:
                self._generation += 1

    def size_bytes(self):
        if self.path == MEMORY_DB:
            with self.read() as tx:
                return tx.database_pages_bytes()
        return sum(os.path.getsize(path) for path in (self.path, self.path + "-wal") if os.path.exists(path))

    def generation(self):
        if self._watcher is None:
            return self._generation
        with self._watch_lock:
            try:
                return self._watcher.execute("PRAGMA data_version").fetchone()[0]
            except sqlite3.Error as exc:
                raise translate_sqlite_error(exc) from exc


def translate_sqlite_error(exc, conflict=None):
    """The one place sqlite3's errors become StatusThingError. Faults of the machine (a full disk, an I/O error,
    a file that became read-only) are unavailable: the write is refused whole, reads go on, and writes work again
    by themselves once the fault is gone."""
    if isinstance(exc, StatusThingError):
        return exc
    if isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc) and conflict:
        return AlreadyExists(conflict)
    name = getattr(exc, "sqlite_errorname", "")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return Unavailable("the database is busy; try again", retry_after_s=1)
    if name.startswith("SQLITE_FULL"):
        return Unavailable("the database's disk is full: nothing was written; writes work again once space is freed",
                           retry_after_s=60)
    if name.startswith("SQLITE_READONLY"):
        return Unavailable("the database cannot be written (read-only): nothing was written", retry_after_s=60)
    if name.startswith("SQLITE_IOERR"):
        return Unavailable("the database could not be written (an I/O error): nothing was written; try again",
                           retry_after_s=10)
    return Internal("storage error")


def is_postgres_url(path):
    return str(path).startswith(("postgresql://", "postgres://"))


def open_store(path, create=True, durability="full"):
    """The Store for ``--db``: a SQLite file (created when missing, unless ``create`` is False), ``:memory:``, or a
    PostgreSQL database (``postgresql://…``: statusthing_pg.py, with psycopg, imported only then)."""
    if is_postgres_url(path):
        # (Run as a script this module is __main__: the store module must get this one, not a second copy.)
        sys.modules.setdefault("statusthing", sys.modules[__name__])
        try:
            import statusthing_pg
        except ImportError as exc:
            if exc.name == "statusthing_pg":
                raise StartupError("--db postgresql://... needs statusthing_pg.py beside statusthing.py (it comes with "
                                   "the package: copy it too)") from None
            raise StartupError(f"--db postgresql://... needs PostgreSQL support: pip install 'statusthing[postgres]' "
                               f"(psycopg and psycopg_pool; {exc.name} is missing)") from None
        return statusthing_pg.PostgresStore(path, create)
    return SqliteStore(path, create, durability)


def db_label(path):
    """How a database is named to people: a file's full path, a PostgreSQL URL without its password."""
    if path == MEMORY_DB:
        return path
    if is_postgres_url(path):
        parts = urllib.parse.urlsplit(path)
        return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", "@")))
    return os.path.abspath(path)


# ==================================================================================================================
# 6. History: conditions, days and uptime
# ==================================================================================================================
# What a status means to a reader is its condition: set on the status, or following its kind. An item's history is
# its status changes; between two changes it was in the earlier one's condition. Uptime tallies that time per
# calendar day in the server's time zone (nanoseconds per condition), with maintenance windows read as maintenance.

KIND_CONDITIONS = {
    pb.STATUS_KIND_UP: pb.CONDITION_OPERATIONAL, pb.STATUS_KIND_AVAILABLE: pb.CONDITION_OPERATIONAL,
    pb.STATUS_KIND_ONLINE: pb.CONDITION_OPERATIONAL,
    pb.STATUS_KIND_WARNING: pb.CONDITION_DEGRADED, pb.STATUS_KIND_OBSERVING: pb.CONDITION_DEGRADED,
    pb.STATUS_KIND_INVESTIGATING: pb.CONDITION_DEGRADED,
    pb.STATUS_KIND_UNAVAILABLE: pb.CONDITION_PARTIAL_OUTAGE,
    pb.STATUS_KIND_DOWN: pb.CONDITION_MAJOR_OUTAGE, pb.STATUS_KIND_OFFLINE: pb.CONDITION_MAJOR_OUTAGE,
}
# From least to most severe: a day's (or an incident's, a group's, a page's) worst is the last one it had.
SEVERITY_ORDER = (pb.CONDITION_UNSPECIFIED, pb.CONDITION_OPERATIONAL, pb.CONDITION_MAINTENANCE, pb.CONDITION_DEGRADED,
                  pb.CONDITION_PARTIAL_OUTAGE, pb.CONDITION_MAJOR_OUTAGE)
SEVERITY_RANK = {condition: rank for rank, condition in enumerate(SEVERITY_ORDER)}
TROUBLED = frozenset({pb.CONDITION_DEGRADED, pb.CONDITION_PARTIAL_OUTAGE, pb.CONDITION_MAJOR_OUTAGE})
CALM = frozenset({pb.CONDITION_OPERATIONAL, pb.CONDITION_UNSPECIFIED})  # an incident ends on one of these
PARTIAL_OUTAGE_WEIGHT = 0.3  # Statuspage's weighting: a partial outage counts for 30 % of downtime
# Tally columns, in order: nanoseconds in each of these conditions.
TALLIED = (pb.CONDITION_OPERATIONAL, pb.CONDITION_DEGRADED, pb.CONDITION_PARTIAL_OUTAGE, pb.CONDITION_MAJOR_OUTAGE,
           pb.CONDITION_MAINTENANCE)
_TALLY_COLUMN = {condition: column for column, condition in enumerate(TALLIED)}


def condition_of(kind, explicit=None):
    """A status's condition: the one set on it, or the one its kind gives."""
    return explicit or KIND_CONDITIONS.get(kind, pb.CONDITION_UNSPECIFIED)


def worst(conditions, default=pb.CONDITION_UNSPECIFIED):
    return max(conditions, key=SEVERITY_RANK.__getitem__, default=default)


class TimeZone:
    """Calendar days in an IANA time zone (zoneinfo), DST included: a day is 23, 24 or 25 hours long."""

    def __init__(self, name):
        self.name = name
        self._zone = zoneinfo.ZoneInfo(name)

    def day_of(self, ns):
        """The calendar day (a date) that the moment ``ns`` falls in."""
        return datetime.datetime.fromtimestamp(ns / 1e9, self._zone).date()

    def start_ns(self, day):
        """When ``day`` begins (its first moment, even where midnight is skipped by a DST change)."""
        midnight = datetime.datetime(day.year, day.month, day.day, tzinfo=self._zone)
        return int(midnight.timestamp()) * 1_000_000_000

    def days(self, start_ns, end_ns):
        """(day, start, end) of each day overlapping [start_ns, end_ns), clipped to it."""
        day = self.day_of(start_ns)
        while True:
            day_start = self.start_ns(day)
            next_day = day + datetime.timedelta(days=1)
            day_end = self.start_ns(next_day)
            if day_start >= end_ns:
                return
            yield day, max(day_start, start_ns), min(day_end, end_ns)
            day = next_day


def overlay(start_ns, end_ns, condition, windows):
    """[(start, end, condition)] of [start_ns, end_ns): MAINTENANCE inside the (sorted, disjoint) maintenance
    ``windows`` [(start, end)], ``condition`` elsewhere."""
    parts, at = [], start_ns
    for window_start, window_end in windows:
        if window_end <= at or window_start >= end_ns:
            continue
        if window_start > at:
            parts.append((at, window_start, condition))
        parts.append((max(at, window_start), min(end_ns, window_end), pb.CONDITION_MAINTENANCE))
        at = min(end_ns, window_end)
    if at < end_ns:
        parts.append((at, end_ns, condition))
    return parts


def tally(tallies, zone, start_ns, end_ns, condition, windows=()):
    """Add the time [start_ns, end_ns) in ``condition`` to ``tallies`` ({day: [ns per TALLIED condition]})."""
    for part_start, part_end, part_condition in overlay(start_ns, end_ns, condition, windows):
        column = _TALLY_COLUMN.get(part_condition)
        if column is None:  # (unspecified: no data, nothing to count)
            continue
        for day, day_start, day_end in zone.days(part_start, part_end):
            tallies.setdefault(day, [0] * len(TALLIED))[column] += day_end - day_start


def uptime_day(day, ns):
    """An UptimeDay from a day's tally, to the nearest second (records are a few nanoseconds apart)."""
    seconds = [(value + 500_000_000) // 1_000_000_000 for value in ns]
    # (Maintenance is not observed time: a day reads as maintenance only when nothing else was seen in it.)
    present = [condition for condition, value in zip(TALLIED[:4], ns) if value > 0] or [
        condition for condition, value in zip(TALLIED[4:], ns[4:]) if value > 0]
    return pb.UptimeDay(date=day.isoformat(), worst=worst(present), observed_seconds=sum(seconds[:4]),
                        degraded_seconds=seconds[1], partial_outage_seconds=seconds[2],
                        major_outage_seconds=seconds[3], maintenance_seconds=seconds[4])


class OpenDay(typing.NamedTuple):
    """Today for one item, as far as it is known without the clock: today's closed time, and the item's last change
    (its condition lasts until now). ``day()`` makes today's UptimeDay at a given moment."""

    item_id: str
    closed: list | None  # ns per TALLIED condition of today's closed time
    last_change_ns: int | None
    last_condition: int | None
    incidents: int  # that started today

    def day(self, service, today, now_ns):
        return uptime_days(service.zone, [today], {today: self.closed} if self.closed else {}, self.last_change_ns,
                           self.last_condition, now_ns, functools.partial(service.maintenance_windows,
                                                                          self.item_id))[0]


class MaintenanceCalendar:
    """The maintenance windows that count (not cancelled), per item and for the whole page: what reads as
    maintenance, and when that changes next."""

    def __init__(self, records):
        self.records = [record for record in records if not record.cancelled]
        self._page, self._items = [], {}
        for record in self.records:
            span = (record.starts_ns, record.ends_ns)
            if not record.item_ids:
                self._page.append(span)
            for item_id in record.item_ids:
                self._items.setdefault(item_id, []).append(span)
        self.version = hash(tuple((record.id, record.updated_ns) for record in records))

    def windows(self, item_id, start_ns, end_ns):
        """The item's time in maintenance within [start_ns, end_ns): sorted, disjoint (start, end) pairs."""
        spans = sorted((max(start, start_ns), min(end, end_ns)) for start, end in
                       self._page + self._items.get(item_id, []) if start < end_ns and end > start_ns)
        merged = []
        for start, end in spans:
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged

    def covers(self, item_id, at_ns):
        return bool(self.windows(item_id, at_ns, at_ns + 1))

    def in_progress(self, now_ns):
        """The windows going on at ``now_ns``, soonest end first."""
        return sorted((r for r in self.records if r.starts_ns <= now_ns < r.ends_ns), key=lambda r: r.ends_ns)

    def key(self, now_ns):
        """What answers that show maintenance depend on: the windows, and which of them are going on."""
        return self.version, tuple(record.id for record in self.in_progress(now_ns))

    def next_change(self, now_ns):
        """When a window next starts or ends after ``now_ns`` (inf: never)."""
        return min([moment for record in self.records for moment in (record.starts_ns, record.ends_ns)
                    if moment > now_ns], default=math.inf)


def shown_condition(item, calendar, now_ns):
    """What a reader sees of an item: Under maintenance while a window covers it, else its status's condition."""
    if calendar is not None and calendar.covers(item.id, now_ns):
        return pb.CONDITION_MAINTENANCE
    return item.status.condition if item.HasField("status") else pb.CONDITION_UNSPECIFIED


class Update(typing.NamedTuple):
    """One update as readers see it: a status change, a note, or a change and the note written with it (in the
    same write, so at the same instant)."""

    at: object  # a Timestamp
    change: object  # a StatusChange, or None
    note: object  # a Note, or None

    @property
    def condition(self):
        """The condition the change led to (None without a change)."""
        if self.change is None:
            return None
        return self.change.new_status.condition if self.change.HasField("new_status") else pb.CONDITION_UNSPECIFIED


def merge_updates(changes, notes):
    """Status changes and notes as Updates, newest first."""
    by_time = {}
    for change in changes:
        by_time.setdefault(change.changed_at.ToNanoseconds(), [change.changed_at, None, None])[1] = change
    for note in notes:
        by_time.setdefault(note.timestamps.created.ToNanoseconds(), [note.timestamps.created, None, None])[2] = note
    return [Update(*parts) for _, parts in sorted(by_time.items(), key=lambda pair: pair[0], reverse=True)]


def incident_title(incident):
    """``"Payments: major outage"``: an incident's item and the worst it went through."""
    return f"{incident.item_name}: {CONDITION_WORDS[incident.worst]}"


CONDITION_WORDS = {pb.CONDITION_OPERATIONAL: "operational", pb.CONDITION_DEGRADED: "degraded performance",
                   pb.CONDITION_PARTIAL_OUTAGE: "partial outage", pb.CONDITION_MAJOR_OUTAGE: "major outage",
                   pb.CONDITION_MAINTENANCE: "under maintenance", pb.CONDITION_UNSPECIFIED: "no data"}


def follow_incident(tx, item_id, change, in_maintenance):
    """Open, worsen or resolve the item's incident for a status ``change`` (a StatusChange just recorded).

    An incident is a stretch away from operational: a change into a troubled condition opens one (unless a
    maintenance window covering the item is in progress), later changes may worsen it, and a change back to
    operational (or to no condition) resolves it. Returns (the event it makes, the incident's id), or None when it
    concerns no incident.
    """
    condition = change.new_status.condition if change.HasField("new_status") else pb.CONDITION_UNSPECIFIED
    at = change.changed_at.ToNanoseconds()
    incident = tx.open_incident(item_id)
    if incident is None:
        if condition in TROUBLED and not in_maintenance:
            tx.start_incident(change.id, item_id, at, condition)
            return "incident.opened", change.id
        return None
    if condition in CALM:
        tx.resolve_incident(incident[0], at)
        return "incident.resolved", incident[0]
    if SEVERITY_RANK[condition] > SEVERITY_RANK[incident[1]]:
        tx.worsen_incident(incident[0], condition)
    return "incident.updated", incident[0]


def uptime_sums(days):
    """(observed seconds, downtime seconds) over UptimeDays: downtime is major outage plus 0.3 x partial outage."""
    return (sum(day.observed_seconds for day in days),
            sum(day.major_outage_seconds + PARTIAL_OUTAGE_WEIGHT * day.partial_outage_seconds for day in days))


def uptime_percent(observed_s, down_s):
    """100 x (1 - down / observed), or None when nothing was observed."""
    return 100 * (1 - down_s / observed_s) if observed_s else None


def day_window(zone, now_ns, days):
    """The last ``days`` calendar days, oldest first, today (the day of ``now_ns``) last."""
    today = zone.day_of(now_ns)
    return [today - datetime.timedelta(days=back) for back in range(days - 1, -1, -1)]


def uptime_days(zone, window, closed, last_change_ns, last_condition, until_ns, maintenance):
    """UptimeDays of the days of ``window``: their tallies of closed time ``closed`` ({day: ns list}) plus the
    time since the item's last change, which is still open, up to ``until_ns``. ``maintenance(start, end)``
    gives the item's maintenance windows in a span."""
    tallies = {day: list(ns) for day, ns in closed.items()}
    if last_change_ns is not None:
        start = max(last_change_ns, zone.start_ns(window[0]))
        if start < until_ns:
            tally(tallies, zone, start, until_ns, last_condition or pb.CONDITION_UNSPECIFIED,
                  maintenance(start, until_ns))
    zero = [0] * len(TALLIED)
    return [uptime_day(day, tallies.get(day, zero)) for day in window]


# ==================================================================================================================
# 7. Domain service
# ==================================================================================================================

_CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROL_CHARACTERS_BUT_LINES = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _required_id(value, field):
    if not value:
        raise InvalidArgument(f"{field} is required")
    if len(value) > MAX_ID_CHARS:
        raise InvalidArgument(f"{field} is not an id of this server (ids are at most {MAX_ID_CHARS} characters)")
    if _CONTROL_CHARACTERS.search(value):  # (no id has one; and PostgreSQL's text cannot even hold a NUL)
        raise InvalidArgument(f"{field} is not an id of this server (ids have no control characters)")
    return value


def _ids_filter(values, field):
    if len(values) > MAX_FILTER_VALUES:
        raise InvalidArgument(f"{field}: at most {MAX_FILTER_VALUES} values")
    for value in values:
        _required_id(value, field)
    return list(dict.fromkeys(values))


def _clean_name(value, what):
    name = value.strip()
    if not name:
        raise InvalidArgument(f"{what} name is required")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidArgument(f"{what} name is longer than {MAX_NAME_CHARS} characters")
    if _CONTROL_CHARACTERS.search(name):
        raise InvalidArgument(f"{what} name has control characters (a name is one line of text)")
    return name


def _clean_text(value, field, limit):
    text = value.strip()
    if len(text) > limit:
        raise InvalidArgument(f"{field} is longer than {limit} characters")
    if _CONTROL_CHARACTERS_BUT_LINES.search(text):
        raise InvalidArgument(f"{field} has control characters other than line breaks and tabs")
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


def _valid_kind(kind):
    if kind == pb.STATUS_KIND_UNKNOWN:
        raise InvalidArgument("status kind is required (one of STATUS_KIND_UP ... STATUS_KIND_DECOMM)")
    if kind not in pb.StatusKind.values():
        raise InvalidArgument(f"unknown status kind {kind}")
    return kind


def page_size(value, field):
    """A page_size or notes_limit as asked: 0 means DEFAULT_PAGE_SIZE; negative or past MAX_PAGE_SIZE is refused."""
    if not 0 <= value <= MAX_PAGE_SIZE:
        raise InvalidArgument(f"{field} must be from 1 to {MAX_PAGE_SIZE} (0 or unset: {DEFAULT_PAGE_SIZE})")
    return value or DEFAULT_PAGE_SIZE


def _position(after):
    """A page token's position in a list by time: "<ns>.<id>" -> (ns, id), or None for the first page."""
    if not after:
        return None
    ns, _, row_id = after.partition(".")
    if not (ns.isascii() and ns.isdigit() and row_id):
        raise InvalidArgument("page_token is not one this server gave for this list")
    return int(ns), row_id


def _next_token(kind, at, row_id):
    return make_page_token(kind, f"{at.ToNanoseconds()}.{row_id}")


def make_page_token(kind, after):
    """An opaque page token: where the next page of ``kind`` starts."""
    return base64.urlsafe_b64encode(f"{kind}:{after}".encode()).decode().rstrip("=")


def read_page_token(token, kind):
    """The position a token of ``kind`` names ("" for no token); InvalidArgument for one this server did not give."""
    if not token:
        return ""
    try:
        prefix, _, after = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        prefix, after = "", ""
    if prefix != kind or not after or len(after) > MAX_ID_CHARS + 21:
        raise InvalidArgument("page_token is not one this server gave for this list")
    return after


def _valid_condition(condition):
    if condition not in pb.Condition.values():
        raise InvalidArgument(f"unknown condition {condition}")
    return condition


def _clean_group(value):
    group = value.strip()
    if len(group) > MAX_NAME_CHARS or _CONTROL_CHARACTERS.search(group):
        raise InvalidArgument(f"group must be one line of at most {MAX_NAME_CHARS} characters")
    return group


FAN_OUT_BATCH = 200  # events turned into deliveries per transaction
RETRY_DELAYS_S = (5, 300, 1800, 7200, 18000, 36000, 36000)  # Standard Webhooks' schedule after each failed attempt
CONFIRM_LINK_S = 24 * 3600  # how long a subscription's confirmation link works
MAILED_EVENTS = frozenset({"incident.opened", "incident.updated", "incident.resolved", "maintenance.scheduled",
                           "maintenance.started", "maintenance.completed", "maintenance.cancelled"})
STATUSPAGE_EVENTS = frozenset({"item.status_changed", "incident.opened", "incident.updated", "incident.resolved",
                               "maintenance.scheduled", "maintenance.started", "maintenance.completed",
                               "maintenance.cancelled", "ping"})
_EMAIL = re.compile(r"[^@\s<>\"',;]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+")


def _clean_email(value):
    email = value.strip()
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        raise InvalidArgument("that does not look like an e-mail address")
    return email


EVENT_TYPES = frozenset({
    "item.created", "item.updated", "item.deleted", "item.status_changed", "note.created", "note.updated",
    "note.deleted", "incident.opened", "incident.updated", "incident.resolved", "maintenance.scheduled",
    "maintenance.started", "maintenance.completed", "maintenance.cancelled", "ping"})
_STATE_WORDS = {pb.MAINTENANCE_STATE_SCHEDULED: "scheduled", pb.MAINTENANCE_STATE_IN_PROGRESS: "in progress",
                pb.MAINTENANCE_STATE_COMPLETED: "completed", pb.MAINTENANCE_STATE_CANCELLED: "cancelled"}


def _clean_maintenance_title(value):
    title = value.strip()
    if not title:
        raise InvalidArgument("title is required")
    if len(title) > MAX_NAME_CHARS or _CONTROL_CHARACTERS.search(title):
        raise InvalidArgument(f"title must be one line of at most {MAX_NAME_CHARS} characters")
    return title


def _check_window(starts_ns, ends_ns):
    if starts_ns is None or ends_ns is None:
        raise InvalidArgument("starts_at and ends_at are required")
    if ends_ns <= starts_ns:
        raise InvalidArgument("ends_at must be after starts_at")


def _next_moment(record, now_ns):
    """When a window's state next changes by the clock (inf: it will not)."""
    if record.cancelled:
        return math.inf
    return min([moment for moment in (record.starts_ns, record.ends_ns) if moment > now_ns], default=math.inf)


def _clean_webhook_url(value):
    """An http(s) URL of a host (loopback and private addresses allowed: receivers often run beside the server)."""
    url = value.strip()
    parts = urllib.parse.urlsplit(url)
    try:
        parts.port
    except ValueError:
        raise InvalidArgument(f"url has an invalid port: {url!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000 or \
            _CONTROL_CHARACTERS.search(url) or " " in url:
        raise InvalidArgument(f"url must be an http:// or https:// address, got {url!r}")
    return url


def uptime_days_asked(days):
    """GetUptime's ``days``, checked (0: the default)."""
    if not 0 <= days <= MAX_UPTIME_DAYS:
        raise InvalidArgument(f"days must be from 1 to {MAX_UPTIME_DAYS} (0 or unset: {DEFAULT_UPTIME_DAYS})")
    return days or DEFAULT_UPTIME_DAYS


def _kinds_filter(kinds):
    if len(kinds) > MAX_FILTER_VALUES:
        raise InvalidArgument(f"kinds: at most {MAX_FILTER_VALUES} values")
    unknown = [kind for kind in kinds if kind == pb.STATUS_KIND_UNKNOWN or kind not in pb.StatusKind.values()]
    if unknown:
        raise InvalidArgument(f"kinds filter: {unknown[0]} is not a status kind")
    return list(kinds)


class StatusThingService:
    """The use cases behind the RPCs: validation, ids, timestamps and the rules between items, statuses and
    notes. Takes and returns plain values and protobuf entity messages; raises only StatusThingError."""

    def __init__(self, store, zone=None):
        self._store = store
        self.zone = zone or TimeZone("UTC")  # the calendar days of uptime
        self.purges_waiting = threading.Event()  # set when a deleted item left notes and history to purge
        self.on_item_deleted = []  # callables(item id), called after a deletion commits (kept answers forget it)
        self.told = threading.Event()  # set when a write has written an event to tell (the delivery worker wakes)
        self._calendar = None  # (generation, MaintenanceCalendar)
        self.webhook_timeout_s = 10.0  # (--webhook-timeout: TestWebhook sends while the caller waits)

    @staticmethod
    def _audit(tx, actor, rpc, target_id, changes, item_id=None):
        """Record a write in the audit trail, in the write's own transaction: {field: [old, new]}, enums by name;
        ``item_id``: the item a write of a note concerns (an item's own writes concern it)."""
        names = {"kind": pb.StatusKind.Name, "condition": pb.Condition.Name}
        readable = {field: [names[field](v) if field in names and v is not None else v for v in pair]
                    for field, pair in changes.items()}
        tx.insert_audit(CLOCK.now_ns(), actor, rpc, target_id, readable,
                        item_id or (target_id if rpc.endswith("Item") else None))

    def _tell(self, tx, event_type, item_ids, data, now_ns=None):
        """Write an event to tell (webhooks, subscribers), in the write's own transaction: it is told exactly when
        the change commits. Its body is Standard Webhooks' {type, timestamp, data}."""
        now_ns = now_ns or CLOCK.now_ns()
        body = json.dumps({"type": event_type, "timestamp": utc_iso(now_ns), "data": data}, ensure_ascii=False,
                          separators=(",", ":"))
        tx.insert_event(EventRecord(f"msg_{IDS.new()}", event_type, tuple(item_ids), body, now_ns))
        self.told.set()

    def _tell_incident(self, tx, event_type, incident_id):
        incident = tx.list_incidents(limit=1, incident_ids=[incident_id])[0]
        self._add_details(tx, incident, CLOCK.wall_ns(), MAX_TOLD_CHANGES, MAX_TOLD_CHANGES)
        item = tx.get_item(incident.item_id, notes_limit=1)
        self._tell(tx, event_type, [incident.item_id], {"incident": json_format.MessageToDict(incident),
                                                        **({"item": item_json(item)} if item is not None else {})})

    def generation(self):
        """Moves whenever stored data changes, by anyone; an answer computed at one generation holds until then."""
        return self._store.generation()

    def database_size(self):
        return self._store.size_bytes()

    # -- statuses --------------------------------------------------------------------------------------------

    def get_status(self, status_id):
        _required_id(status_id, "status_id")
        with self._store.read() as tx:
            return self._existing_status(tx, status_id)

    def list_statuses(self, kinds=()):
        with self._store.read() as tx:
            return tx.list_statuses(_kinds_filter(kinds))

    def add_status(self, actor, name, description="", color="", kind=pb.STATUS_KIND_UNKNOWN,
                   condition=pb.CONDITION_UNSPECIFIED):
        """Add a status; its condition follows its kind unless ``condition`` is given."""
        with self._store.write() as tx:
            return self._add_status(tx, actor, name, description, color, kind, condition)

    def _add_status(self, tx, actor, name, description, color, kind, condition=pb.CONDITION_UNSPECIFIED):
        values = {"name": _clean_name(name, "status"),
                  "description": _clean_text(description, "description", MAX_DESCRIPTION_CHARS),
                  "color": _clean_color(color), "kind": _valid_kind(kind), "condition": _valid_condition(condition)}
        status_id = IDS.new()
        tx.insert_status(status_id, *values.values(), CLOCK.now_ns())
        status = tx.get_status(status_id)
        self._audit(tx, actor, "AddStatus", status_id, {
            k: [None, v] for k, v in {**values, "condition": status.condition}.items()})
        return status

    def update_status(self, actor, status_id, name="", description=None, color=None,
                      kind=pb.STATUS_KIND_UNKNOWN, condition=None):
        """Change the fields given: a non-empty name, a description or colour that is not None, a known kind, a
        condition that is not None (CONDITION_UNSPECIFIED: follow the kind again). When what the status means (its
        condition) changes, every item with it changes too, and that is recorded in their history."""
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
        if condition is not None:
            changes["condition"] = _valid_condition(condition) or None  # (stored: NULL follows the kind)
        with self._store.write() as tx:
            current = self._existing_status(tx, status_id)
            fields = {k: v for k, v in changes.items() if k != "condition" and getattr(current, k) != v}
            if "condition" in changes:
                fields["condition"] = changes["condition"]
            if not fields:
                return
            now = CLOCK.now_ns()
            tx.update_status(status_id, fields, now)
            after = tx.get_status(status_id)
            audited = {k: [getattr(current, k), getattr(after, k)] for k in fields if getattr(current, k) !=
                       getattr(after, k)}
            if audited:
                self._audit(tx, actor, "UpdateStatus", status_id, audited)
            if after.condition != current.condition:
                for item in tx.list_items(status_ids=[status_id]):
                    self._status_changed(tx, item.id, current, after, now)

    def delete_status(self, actor, status_id):
        _required_id(status_id, "status_id")
        with self._store.write() as tx:
            status = self._existing_status(tx, status_id)
            in_use = tx.count_items_with_status(status_id)
            if in_use:
                raise FailedPrecondition(
                    f'status "{status.name}" is used by {in_use} item{"s" if in_use != 1 else ""}; '
                    f"give {'them' if in_use != 1 else 'it'} another status first")
            tx.delete_status(status_id)
            self._audit(tx, actor, "DeleteStatus", status_id, {
                k: [getattr(status, k), None] for k in ("name", "description", "color", "kind")})

    @staticmethod
    def _existing_status(tx, status_id):
        status = tx.get_status(_required_id(status_id, "status_id"))
        if status is None:
            raise NotFound(f"status {status_id} not found")
        return status

    # -- items -----------------------------------------------------------------------------------------------

    def get_item(self, item_id, notes_limit=0):
        """The item with its status and its newest notes, newest first (``notes_limit``; 0: the default 100)."""
        _required_id(item_id, "item_id")
        limit = page_size(notes_limit, "notes_limit")
        with self._store.read() as tx:
            return self._existing_item(tx, item_id, notes_limit=limit)

    def list_items(self, status_ids=(), kinds=(), extended=False, notes_limit=0):
        """Items in creation order; an item must match every filter given; its newest notes when ``extended``."""
        filters = self.item_filters(status_ids, kinds)
        limit = page_size(notes_limit, "notes_limit") if extended else 0
        with self._store.read() as tx:
            return tx.list_items(*filters, notes_limit=limit)

    @staticmethod
    def item_filters(status_ids=(), kinds=()):
        """ListItems' filters, checked: (status_ids, kinds)."""
        return _ids_filter(status_ids, "status_ids"), _kinds_filter(kinds)

    def item_page(self, item_id, before, size):
        """(The item with one page of its notes, newest first and older than the note ``before`` when given; how
        many notes it has; the id that starts the next page, or "" on the last)."""
        _required_id(item_id, "item_id")
        if before:
            _required_id(before, "before")
        with self._store.read() as tx:
            item = self._existing_item(tx, item_id)
            notes = tx.notes_page(item_id, size + 1, before)
            total = tx.count_notes(item_id)
        item.notes.extend(notes[:size])
        return item, total, notes[size - 1].id if len(notes) > size else ""

    def item_versions(self, filters):
        """The ItemVersions of the items ListItems lists with ``filters`` (from item_filters), in its order."""
        with self._store.read() as tx:
            return tx.item_versions(*filters)

    def versions_changed_since(self, seq):
        """For keeping every item's version up to date: (the newest change's number, versions, ids) where, when the
        change log reaches back to ``seq``, versions are those of the items changed since and ids are the items
        the log names (one named but without a version is gone); otherwise versions are all of them and ids is
        None. One consistent read."""
        with self._store.read() as tx:
            delta = None if seq is None else tx.changes_since(seq)
            if delta is None:
                return tx.last_change(), tx.item_versions(), None
            last, changes = delta
            items = sorted({row_id for kind, row_id in changes if kind == "item"})
            statuses = sorted({row_id for kind, row_id in changes if kind == "status"})
            return last, tx.versions_of(items, statuses), set(items)

    def prune_changes(self, keep=CHANGES_KEPT):
        with self._store.write(changes_data=False) as tx:
            tx.prune_changes(keep)

    def items_by_ids(self, item_ids, notes_limit):
        """The items with these ids that exist, each with its newest ``notes_limit`` notes."""
        with self._store.read() as tx:
            return tx.items_by_ids(item_ids, notes_limit)

    def add_item(self, actor, name, description="", initial_status_id="", initial_status=None,
                 initial_note_text="", position=0, group=""):
        """Create an item, and in the same transaction its new status and first note when asked for.

        ``initial_status_id`` wins over ``initial_status`` when both are given.
        """
        name = _clean_name(name, "item")
        group = _clean_group(group)
        description = _clean_text(description, "description", MAX_DESCRIPTION_CHARS)
        note_text = _clean_text(initial_note_text, "initial_note_text", MAX_NOTE_CHARS)
        with self._store.write() as tx:
            if initial_status_id:
                status = self._existing_status(tx, initial_status_id)
            elif initial_status is not None:
                status = self._add_status(tx, actor, initial_status.name, initial_status.description,
                                          initial_status.color, initial_status.kind, initial_status.condition)
            else:
                status = None
            item_id, now = IDS.new(), CLOCK.now_ns()
            tx.insert_item(item_id, name, description, status.id if status else "", position, group, now)
            # (The new item is what was just written: not read back, so that on PostgreSQL the whole write goes
            # out at once and the write lock is held for no round trip of ours.)
            item = pb.Item(id=item_id, name=name, description=description, timestamps=timestamps(now, now),
                           position=position, group=group)
            if status is not None:
                self._status_changed(tx, item_id, None, status, now, tell=False)
                item.status.CopyFrom(status)
            if note_text:
                item.notes.append(self._insert_note(tx, item_id, note_text, now))
            self._tell(tx, "item.created", [item_id], {"item": item_json(item)})
            self._audit(tx, actor, "AddItem", item_id, {
                k: [None, v] for k, v in (("name", name), ("description", description),
                                          ("status_id", status.id if status else ""), ("position", position),
                                          ("group", group), ("initial_note_text", note_text)) if v})
            return item

    def update_item(self, actor, item_id, name="", description=None, status_id="", note_text="", position=None,
                    group=None):
        """Change the fields given (a non-empty name or status_id; a description, position or group that is not
        None) and add ``note_text`` as a note, all in one write: a status change and the note that explains it."""
        _required_id(item_id, "item_id")
        changes = {}
        if name:
            changes["name"] = _clean_name(name, "item")
        if description is not None:
            changes["description"] = _clean_text(description, "description", MAX_DESCRIPTION_CHARS)
        if position is not None:
            changes["position"] = position
        if group is not None:
            changes["group"] = _clean_group(group)
        note = self._clean_note(note_text) if note_text.strip() else ""
        with self._store.write() as tx:
            current = self._existing_item(tx, item_id, notes_limit=1)
            new_status = self._existing_status(tx, status_id) if status_id else None
            if new_status is not None:
                changes["status_id"] = new_status.id
            current_values = {"name": current.name, "description": current.description,
                              "status_id": current.status.id, "position": current.position, "group": current.group}
            changes = {k: v for k, v in changes.items() if current_values[k] != v}
            now = CLOCK.now_ns()
            if changes:
                tx.update_item(item_id, {("grp" if k == "group" else k): v for k, v in changes.items()}, now)
            if note:  # (first: an incident the status change opens or resolves has the note among its updates)
                added = self._insert_note(tx, item_id, note, now)
                tx.touch_item(item_id, now)
            if "status_id" in changes:
                self._status_changed(tx, item_id, current.status if current.HasField("status") else None,
                                     new_status, now)
            if note:  # (an incident the status change moved was told of, with this note among its updates)
                self._tell_note(tx, "note.created", added, item_id, incident_too="status_id" not in changes)
            if set(changes) - {"status_id"}:
                self._tell(tx, "item.updated", [item_id], {"item": item_json(self._updated(
                    current, changes, new_status, added if note else None, now))})
            if changes or note:
                self._audit(tx, actor, "UpdateItem", item_id, {
                    **{k: [current_values[k], v] for k, v in changes.items()},
                    **({"note": [None, note]} if note else {})})

    @staticmethod
    def _updated(current, changes, new_status, added_note, now):
        """The item as UpdateItem left it, with its newest note, made from what it read and what it wrote (not
        read back: on PostgreSQL that would hold the write lock for another round trip)."""
        item = pb.Item()
        item.CopyFrom(current)
        for field, value in changes.items():
            if field == "status_id":
                item.status.CopyFrom(new_status)
            else:
                setattr(item, field, value)
        item.timestamps.updated.CopyFrom(timestamp(now))
        if added_note is not None:
            del item.notes[:]
            item.notes.append(added_note)
        return item

    def _status_changed(self, tx, item_id, old_status, new_status, now, tell=True):
        """Record a change of the item's status (or of what it means), in the write's own transaction: the change,
        the time it closes in the uptime tallies, the item's incident, and the events to tell."""
        previous = tx.last_status_change(item_id)
        change = tx.record_status_change(IDS.new(), item_id, now, old_status, new_status)
        if previous is not None:
            tallies = {}
            since = previous.changed_at.ToNanoseconds()
            calendar = MaintenanceCalendar(tx.maintenances_between(since, now + 1))
            tally(tallies, self.zone, since, now, previous.new_status.condition, calendar.windows(item_id, since, now))
            tx.add_to_tallies(item_id, tallies)
        else:
            calendar = MaintenanceCalendar(tx.maintenances_between(now, now + 1))
        happened = follow_incident(tx, item_id, change, in_maintenance=calendar.covers(item_id, now))
        if tell:
            self._tell(tx, "item.status_changed", [item_id], {"item": item_json(tx.get_item(item_id, notes_limit=1)),
                                                              "change": json_format.MessageToDict(change)})
        if happened is not None:
            self._tell_incident(tx, *happened)
        return change

    def delete_item(self, actor, item_id):
        """Delete the item; its notes are gone for readers at once, and purged from the database afterwards."""
        _required_id(item_id, "item_id")
        with self._store.write() as tx:
            item = self._existing_item(tx, item_id)
            notes = tx.delete_item(item_id, CLOCK.now_ns())
            del item.notes[:]
            self._tell(tx, "item.deleted", [item_id], {"item": item_json(item)})
            self._audit(tx, actor, "DeleteItem", item_id, {
                "name": [item.name, None], "description": [item.description, None],
                "status_id": [item.status.id, None], "notes": [notes, None]})
        self.purges_waiting.set()  # (its notes and history are purged afterwards)
        for forget in self.on_item_deleted:
            forget(item_id)

    def purge_deleted_notes(self, batch=PURGE_BATCH):
        """Delete the notes of deleted items, ``batch`` rows per transaction so that writes in between never
        wait long; returns how many batches it took."""
        batches = 0
        while True:
            with self._store.write(changes_data=False) as tx:
                if not tx.purge_deleted_item(batch):
                    return batches
            batches += 1

    @staticmethod
    def _existing_item(tx, item_id, notes_limit=0):
        item = tx.get_item(_required_id(item_id, "item_id"), notes_limit=notes_limit)
        if item is None:
            raise NotFound(f"item {item_id} not found")
        return item

    # -- history -----------------------------------------------------------------------------------------------

    def maintenance_windows(self, item_id, start_ns, end_ns):
        """The maintenance windows covering the item during [start_ns, end_ns), sorted and disjoint: time in them
        reads as maintenance."""
        return self.calendar().windows(item_id, start_ns, end_ns)

    def calendar(self):
        """Every maintenance window that counts, read once per change of data."""
        generation = self.generation()
        kept = self._calendar
        if kept is None or kept[0] != generation:
            with self._store.read() as tx:
                kept = self._calendar = (generation, MaintenanceCalendar(tx.maintenances_between(0, 2 ** 62)))
        return kept[1]

    def _check_items(self, tx, item_ids):
        ids = _ids_filter(item_ids, "item_ids")
        for item_id in ids:
            self._existing_item(tx, item_id)
        return ids

    def list_status_changes(self, item_ids=(), since_ns=None, until_ns=None, size=0, token=""):
        """(A page of status changes, newest first; the next page's token, "" on the last)."""
        size, after = page_size(size, "page_size"), read_page_token(token, "changes")
        with self._store.read() as tx:
            ids = self._check_items(tx, item_ids)
            changes = tx.list_status_changes(ids, since_ns, until_ns, size + 1, _position(after))
        more = len(changes) > size
        return changes[:size], _next_token("changes", changes[size - 1].changed_at, changes[size - 1].id) if more \
            else ""

    def list_incidents(self, item_ids=(), since_ns=None, until_ns=None, unresolved_only=False, size=0, token=""):
        """(A page of incidents, newest first, each with its status changes and notes; the next page's token)."""
        size, after = page_size(size, "page_size"), read_page_token(token, "incidents")
        now = CLOCK.wall_ns()
        with self._store.read() as tx:
            ids = self._check_items(tx, item_ids)
            incidents = tx.list_incidents(ids, since_ns, until_ns, unresolved_only, size + 1, _position(after))
            for incident in incidents[:size]:
                self._add_details(tx, incident, now, MAX_INCIDENT_CHANGES, DEFAULT_PAGE_SIZE)
        if any(not incident.HasField("resolved_at") for incident in incidents[:size]):
            valid_until(now + HISTORY_FRESH_NS)  # (an open incident gathers notes as time goes on)
        more = len(incidents) > size
        return incidents[:size], _next_token("incidents", incidents[size - 1].started_at, incidents[size - 1].id) \
            if more else ""

    def existing_items(self, item_ids):
        """``item_ids``, checked: NotFound names the first that is not an item."""
        with self._store.read() as tx:
            return self._check_items(tx, item_ids)

    def get_uptime(self, item_ids=(), days=0):
        """(An ItemUptime for each item, or every item: ``days`` calendar days (0: 90) ending today so far; the
        time zone's name). From the per-day tallies of closed time, plus the time since each item's last change.
        (The straightforward way; ItemAnswers.uptime answers the RPC from kept parts.)"""
        days = uptime_days_asked(days)
        now = CLOCK.wall_ns()
        window = day_window(self.zone, now, days)
        with self._store.read() as tx:
            ids = self._check_items(tx, item_ids)
            heads = tx.uptime_heads(ids)
            rows = tx.uptime_tallies(ids, window[0].isoformat())
        closed = {}
        for item_id, day, *ns in rows:
            closed.setdefault(item_id, {})[datetime.date.fromisoformat(day)] = ns
        answer = []
        for item_id, name, created_ns, last_change_ns, last_condition in heads:
            item_days = uptime_days(self.zone, window, closed.get(item_id, {}), last_change_ns, last_condition, now,
                                    functools.partial(self.maintenance_windows, item_id))
            uptime = pb.ItemUptime(item_id=item_id, item_name=name, days=item_days)
            percent = uptime_percent(*uptime_sums(item_days))
            if percent is not None:
                uptime.uptime_percent = percent
            answer.append(uptime)
        valid_until(now + HISTORY_FRESH_NS)  # (today so far moves with the clock)
        return answer, self.zone.name

    def bar_inputs(self, item_ids, window, count_incidents=True):
        """{item id: ({day: [ns per TALLIED condition]} of closed time within ``window`` (days, oldest first),
        {day's ISO date: how many incidents started that day})}: what uptime bars need besides the time since each
        item's last change."""
        inputs = {item_id: ({}, {}) for item_id in item_ids}
        with self._store.read() as tx:
            for item_id, day, *ns in tx.uptime_tallies(list(item_ids), window[0].isoformat()):
                inputs[item_id][0][datetime.date.fromisoformat(day)] = ns
            if count_incidents:
                starts = [self.zone.start_ns(day) for day in (*window, window[-1] + datetime.timedelta(days=1))]
                days = [(day.isoformat(), start, end) for day, start, end in zip(window, starts, starts[1:])]
                for item_id, day, count in tx.incidents_by_day(list(item_ids), days):
                    inputs[item_id][1][day] = count
        return inputs

    def incidents_by_day(self, days, shown_a_day, changes_each=6, notes_each=3):
        """[(day, its incidents (at most ``shown_a_day``, newest first, each with its first status changes and
        newest notes), how many it had)] for each of ``days``: a page shows what happened and links to the rest."""
        now = CLOCK.wall_ns()
        answer = []
        with self._store.read() as tx:
            for day in days:
                since, until = self.zone.start_ns(day), self.zone.start_ns(day + datetime.timedelta(days=1))
                total = tx.count_incidents(since, until)
                incidents = tx.list_incidents((), since, until, False, shown_a_day) if total else []
                for incident in incidents:
                    self._add_details(tx, incident, now, changes_each, notes_each)
                answer.append((day, incidents, total))
        if any(not incident.HasField("resolved_at") for _, incidents, _ in answer for incident in incidents):
            valid_until(now + HISTORY_FRESH_NS)
        return answer

    def page_identity(self):
        """(The page's id, made once per database, and when it was made): what outside formats call the page."""
        made = self._setting_made_once("page_id", lambda: "".join(
            secrets.choice("0123456789abcdefghijklmnopqrstuvwxyz") for _ in range(12)) + f":{CLOCK.now_ns()}")
        page_id, _, created_ns = made.partition(":")
        return page_id, int(created_ns)

    def _setting_made_once(self, key, make):
        """A setting made the first time it is asked for (``make()``), by whichever process asks first."""
        with self._store.read() as tx:
            value = tx.get_setting(key)
        if value is None:
            with self._store.write(changes_data=False) as tx:
                value = tx.get_setting(key)
                if value is None:  # (another process may have made it meanwhile)
                    value = make()
                    tx.set_setting(key, value)
        return value

    def count_open_incidents(self):
        with self._store.read() as tx:
            return tx.count_open_incidents()

    def count_deliveries(self):
        with self._store.read() as tx:
            return tx.count_deliveries()

    def check_ready(self):
        """Raises (with the reason) unless the database answers a query that reads a row."""
        with self._store.read() as tx:
            tx.get_setting("page_id")

    def get_incident(self, incident_id):
        """One incident, with its status changes and notes."""
        _required_id(incident_id, "incident_id")
        now = CLOCK.wall_ns()
        with self._store.read() as tx:
            found = tx.list_incidents(limit=1, incident_ids=[incident_id])
            if not found:
                raise NotFound(f"incident {incident_id} not found")
            self._add_details(tx, found[0], now, MAX_INCIDENT_CHANGES, DEFAULT_PAGE_SIZE)
        if not found[0].HasField("resolved_at"):
            valid_until(now + HISTORY_FRESH_NS)
        return found[0]

    def first_incident_day(self):
        """The day the first incident kept started, or None."""
        with self._store.read() as tx:
            first = tx.first_incident_ns()
        return self.zone.day_of(first) if first is not None else None

    @staticmethod
    def _add_details(tx, incident, now, changes_limit, notes_limit):
        """An incident's status changes (the first ``changes_limit``) and notes (the newest ``notes_limit``)."""
        start = incident.started_at.ToNanoseconds()
        end = incident.resolved_at.ToNanoseconds() if incident.HasField("resolved_at") else now
        incident.changes.extend(tx.changes_of_item(incident.item_id, start, end, changes_limit))
        incident.notes.extend(tx.notes_written(incident.item_id, start, end, notes_limit))

    def item_timeline(self, item_id, before="", day=None, size=ITEM_PAGE_ENTRIES):
        """(the item, its status changes and notes interleaved newest first (one page, older than ``before``, or
        of one ``day``), the token of the next page or "")."""
        _required_id(item_id, "item_id")
        position = _position(before) if before else None
        since = until = None
        if day is not None:
            since, until = self.zone.start_ns(day), self.zone.start_ns(day + datetime.timedelta(days=1))
        with self._store.read() as tx:
            item = self._existing_item(tx, item_id)
            entries = tx.timeline(item_id, size + 1, position, since, until)
        more = len(entries) > size
        last = entries[size - 1] if more else None
        token = ""
        if last is not None:
            at = last.changed_at if isinstance(last, pb.StatusChange) else last.timestamps.created
            token = f"{at.ToNanoseconds()}.{last.id}"
        return item, entries[:size], token

    def tally_uptime_in_zone(self):
        """Make sure the per-day tallies are in this server's time zone (they are kept in one): when they are not
        (a first start, another --timezone), tally every closed interval again. Returns True when it did."""
        with self._store.read() as tx:
            if tx.get_setting("uptime_time_zone") == self.zone.name:
                return False
        with self._store.write(changes_data=True) as tx:
            tx.clear_tallies()
            previous, tallies = None, {}
            for item_id, changed_ns, condition in tx.every_change_by_item():
                if previous is not None and previous[0] == item_id:
                    tally(tallies, self.zone, previous[1], changed_ns, previous[2] or pb.CONDITION_UNSPECIFIED,
                          self.maintenance_windows(item_id, previous[1], changed_ns))
                elif tallies:
                    tx.add_to_tallies(previous[0], tallies)
                    tallies = {}
                previous = (item_id, changed_ns, condition)
            if tallies:
                tx.add_to_tallies(previous[0], tallies)
            tx.set_setting("uptime_time_zone", self.zone.name)
        return True

    # -- maintenance ---------------------------------------------------------------------------------------------
    # A window's state follows the clock; its start and end are told (exactly once, by whichever process gets
    # there first) by the delivery worker. A window added, moved or cancelled re-tallies the past days it touches.

    def add_maintenance(self, actor, title, description, item_ids, starts_ns, ends_ns):
        title = _clean_maintenance_title(title)
        description = _clean_text(description, "description", MAX_DESCRIPTION_CHARS)
        item_ids = _ids_filter(item_ids, "item_ids")
        _check_window(starts_ns, ends_ns)
        with self._store.write() as tx:
            self._check_items(tx, item_ids)
            now = CLOCK.now_ns()
            # (A window added with its start or end already past: the past is not announced.)
            record = MaintenanceRecord(IDS.new(), title, description, tuple(sorted(item_ids)), starts_ns, ends_ns,
                                       False, starts_ns <= now, ends_ns <= now, now, now)
            tx.insert_maintenance(record)
            self._retally(tx, item_ids, starts_ns, ends_ns)
            if ends_ns > now:
                self._tell_maintenance(tx, "maintenance.scheduled", record, now)
            self._audit(tx, actor, "AddMaintenance", record.id, {
                "title": [None, title], "item_ids": [None, list(record.item_ids)],
                "starts_at": [None, utc_iso(starts_ns)], "ends_at": [None, utc_iso(ends_ns)]})
            return record.to_api(now)

    def update_maintenance(self, actor, maintenance_id, title=None, description=None, item_ids=(), starts_ns=None,
                           ends_ns=None, complete_now=False, cancel=False):
        _required_id(maintenance_id, "maintenance_id")
        if complete_now and cancel:
            raise InvalidArgument("complete_now and cancel cannot both be asked for")
        changes = {}
        if title is not None:
            changes["title"] = _clean_maintenance_title(title)
        if description is not None:
            changes["description"] = _clean_text(description, "description", MAX_DESCRIPTION_CHARS)
        item_ids = _ids_filter(item_ids, "item_ids") if item_ids else None
        with self._store.write() as tx:
            old = self._existing_maintenance(tx, maintenance_id)
            now = CLOCK.now_ns()
            state = old.state_at(now)
            if state in (pb.MAINTENANCE_STATE_COMPLETED, pb.MAINTENANCE_STATE_CANCELLED) and (
                    complete_now or cancel or starts_ns is not None or ends_ns is not None):
                raise FailedPrecondition(f"maintenance {maintenance_id} is {_STATE_WORDS[state]}")
            if cancel and state != pb.MAINTENANCE_STATE_SCHEDULED:
                raise FailedPrecondition("the maintenance has started: complete it (complete_now) instead")
            if complete_now and state != pb.MAINTENANCE_STATE_IN_PROGRESS:
                raise FailedPrecondition("the maintenance has not started: cancel it instead")
            if item_ids is not None:
                self._check_items(tx, item_ids)
            starts = old.starts_ns if starts_ns is None else starts_ns
            ends = CLOCK.wall_ns() if complete_now else old.ends_ns if ends_ns is None else ends_ns
            _check_window(starts, ends)
            changes.update({"starts_ns": starts, "ends_ns": ends, "cancelled": int(cancel),
                            "started_told": int(old.started_told and starts <= now) if not cancel else 1,
                            "completed_told": int(complete_now or cancel or (old.completed_told and ends <= now))})
            before = dataclasses.asdict(old)
            changes = {key: value for key, value in changes.items() if before[key] != value}
            tx.update_maintenance(maintenance_id, changes, item_ids, now)
            record = tx.get_maintenance(maintenance_id)
            self._retally(tx, set(old.item_ids) | set(record.item_ids) if old.item_ids and record.item_ids else (),
                          min(old.starts_ns, record.starts_ns), max(old.ends_ns, record.ends_ns))
            if cancel:
                self._tell_maintenance(tx, "maintenance.cancelled", record, now)
            elif complete_now:
                self._tell_maintenance(tx, "maintenance.completed", record, now)
            readable = {"starts_ns": ("starts_at", utc_iso), "ends_ns": ("ends_at", utc_iso),
                        "cancelled": ("cancelled", bool)}
            audited = {readable.get(key, (key,))[0]: [readable.get(key, (key, str))[1](v) for v in (before[key], value)]
                       for key, value in changes.items() if not key.endswith("_told")}
            if old.item_ids != record.item_ids:
                audited["item_ids"] = [list(old.item_ids), list(record.item_ids)]
            self._audit(tx, actor, "UpdateMaintenance", maintenance_id, audited)
            return record.to_api(now)

    def delete_maintenance(self, actor, maintenance_id):
        _required_id(maintenance_id, "maintenance_id")
        with self._store.write() as tx:
            old = self._existing_maintenance(tx, maintenance_id)
            tx.delete_maintenance(maintenance_id)
            self._retally(tx, old.item_ids, old.starts_ns, old.ends_ns)
            self._audit(tx, actor, "DeleteMaintenance", maintenance_id, {"title": [old.title, None]})

    def get_maintenance(self, maintenance_id):
        _required_id(maintenance_id, "maintenance_id")
        with self._store.read() as tx:
            record = self._existing_maintenance(tx, maintenance_id)
        now = CLOCK.wall_ns()
        valid_until(_next_moment(record, now))
        return record.to_api(now)

    def list_maintenances(self, states=(), size=0, token=""):
        """(A page of windows, soonest start first, of these states (all when none), the next page's token)."""
        size, after = page_size(size, "page_size"), read_page_token(token, "maintenances")
        for state in states:
            if state not in pb.MaintenanceState.values() or state == pb.MAINTENANCE_STATE_UNSPECIFIED:
                raise InvalidArgument(f"unknown maintenance state {state}")
        now, found, position = CLOCK.wall_ns(), [], _position(after)
        with self._store.read() as tx:
            while len(found) <= size:
                batch = tx.list_maintenances(max(size + 1, 100), position)
                for record in batch:
                    valid_until(_next_moment(record, now))
                    if not states or record.state_at(now) in states:
                        found.append(record)
                if len(batch) < max(size + 1, 100):
                    break
                position = (batch[-1].starts_ns, batch[-1].id)
        page = found[:size]
        token = make_page_token("maintenances", f"{page[-1].starts_ns}.{page[-1].id}") if len(found) > size else ""
        return [record.to_api(now) for record in page], token

    def maintenances(self, now_ns, limit=MAINTENANCES_LISTED):
        """The windows of the public page and the outside formats: every one but the cancelled, the most recent
        ``limit`` starts (by start, soonest first)."""
        records = [record for record in self.calendar().records]
        valid_until(self.calendar().next_change(now_ns))
        return records[-limit:]

    def tell_maintenance_transitions(self):
        """Tell of the windows that started or ended since last looked at: each once, whoever looks."""
        now = CLOCK.wall_ns()
        with self._store.read() as tx:  # (looked at often: the write lock only when there is something to tell)
            if not tx.maintenances_to_tell(now):
                return
        with self._store.write(changes_data=False) as tx:
            for record in tx.maintenances_to_tell(now):
                if record.starts_ns <= now and not record.started_told and tx.mark_told(record.id, "started"):
                    self._tell_maintenance(tx, "maintenance.started", record, now)
                if record.ends_ns <= now and not record.completed_told and tx.mark_told(record.id, "completed"):
                    self._tell_maintenance(tx, "maintenance.completed", record, now)

    def _tell_maintenance(self, tx, event_type, record, now_ns):
        self._tell(tx, event_type, record.item_ids, {"maintenance": json_format.MessageToDict(record.to_api(now_ns))})

    @staticmethod
    def _existing_maintenance(tx, maintenance_id):
        record = tx.get_maintenance(maintenance_id)
        if record is None:
            raise NotFound(f"maintenance {maintenance_id} not found")
        return record

    def _retally(self, tx, item_ids, start_ns, end_ns):
        """Tally again the days [start_ns, end_ns) touches, of these items (none: every item), as the maintenance
        windows now are: a window added or moved afterwards changes what those days were."""
        end_ns = min(end_ns, CLOCK.wall_ns())
        if start_ns >= end_ns:
            return
        first, last = self.zone.day_of(start_ns), self.zone.day_of(end_ns - 1)
        span = (self.zone.start_ns(first), self.zone.start_ns(last + datetime.timedelta(days=1)))
        calendar = MaintenanceCalendar(tx.maintenances_between(*span))
        for item_id in item_ids or tx.all_item_ids():
            tx.delete_tallies(item_id, first.isoformat(), last.isoformat())
            points = tx.change_points(item_id, *span)
            tallies = {}
            for (at, condition), (next_at, _) in zip(points, points[1:]):
                start, end = max(at, span[0]), min(next_at, span[1])
                if start < end:
                    tally(tallies, self.zone, start, end, condition or pb.CONDITION_UNSPECIFIED,
                          calendar.windows(item_id, start, end))
            tx.add_to_tallies(item_id, tallies)

    # -- webhooks ------------------------------------------------------------------------------------------------

    def add_webhook(self, actor, url, description="", events=(), body_format=""):
        url = _clean_webhook_url(url)
        description = _clean_text(description, "description", MAX_DESCRIPTION_CHARS)
        unknown = sorted(set(events) - EVENT_TYPES)
        if unknown:
            raise InvalidArgument(f"unknown event {unknown[0]!r}; events are {', '.join(sorted(EVENT_TYPES))}")
        body_format = body_format or "standard"
        if body_format not in ("standard", "statuspage"):
            raise InvalidArgument('body_format must be "standard" or "statuspage"')
        secret = secrets.token_bytes(WEBHOOK_SECRET_BYTES)
        with self._store.write(changes_data=False) as tx:
            now = CLOCK.now_ns()
            record = WebhookRecord(IDS.new(), url, description, tuple(dict.fromkeys(events)), body_format, secret,
                                   False, now, now)
            tx.insert_webhook(record)
            self._audit(tx, actor, "AddWebhook", record.id, {"url": [None, url], "events": [None, list(events)]})
        return record.to_api(), "whsec_" + base64.b64encode(secret).decode()

    def list_webhooks(self):
        with self._store.read() as tx:
            return [record.to_api() for record in tx.list_webhooks()]

    def delete_webhook(self, actor, webhook_id):
        _required_id(webhook_id, "webhook_id")
        with self._store.write(changes_data=False) as tx:
            record = self.existing_webhook(tx, webhook_id)
            tx.delete_webhook(webhook_id)
            self._audit(tx, actor, "DeleteWebhook", webhook_id, {"url": [record.url, None]})

    def list_deliveries(self, webhook_id, size=0, token=""):
        _required_id(webhook_id, "webhook_id")
        size, after = page_size(size, "page_size"), read_page_token(token, "deliveries")
        with self._store.read() as tx:
            self.existing_webhook(tx, webhook_id)
            found = tx.list_deliveries(webhook_id, size + 1, _position(after))
        more = len(found) > size
        return ([record.to_api() for record in found[:size]],
                make_page_token("deliveries", f"{found[size - 1].created_ns}.{found[size - 1].id}") if more else "")

    @staticmethod
    def existing_webhook(tx, webhook_id):
        record = tx.get_webhook(webhook_id)
        if record is None:
            raise NotFound(f"webhook {webhook_id} not found")
        return record

    # -- the outbox: from events to deliveries -------------------------------------------------------------------
    # Called by the delivery worker (section 16). Each step reads first and writes only when there is work, so an
    # idle worker never takes the lock writes need.

    def fan_out(self, limit=FAN_OUT_BATCH):
        """Turn events not yet fanned out into one delivery per receiver that wants them; how many events."""
        with self._store.read() as tx:
            if not tx.events_to_fan_out(1):
                return 0
        with self._store.write(changes_data=False) as tx:
            events = tx.events_to_fan_out(limit)
            webhooks = tx.list_webhooks()
            subscribers = [s for s in tx.list_subscribers() if s.confirmed_ns] if any(
                event.type in MAILED_EVENTS for event in events) else []
            now = CLOCK.wall_ns()  # (the worker's times need not be unique: it leaves now_ns to the writes)
            deliveries = []
            for event in events:
                receivers = [("webhook", webhook.id) for webhook in webhooks if webhook.wants(event.type) and (
                    webhook.body_format == "standard" or event.type in STATUSPAGE_EVENTS)]
                if event.type == "subscriber.confirm":
                    receivers.append(("email", json.loads(event.body)["data"]["subscriberId"]))
                elif event.type in MAILED_EVENTS:
                    # (Only those confirmed when it happened: nothing reaches an address before it is confirmed.)
                    receivers += [("email", s.id) for s in subscribers if s.confirmed_ns <= event.created_ns and (
                        not s.item_ids or not event.item_ids or set(s.item_ids) & set(event.item_ids))]
                # (A DeliveryRecord's fields; its id says which event to whom, and costs nothing to make.)
                deliveries += [(f"{event.id.removeprefix('msg_')}.{target}", event.id, event.type, channel, target,
                                0, "pending", None, "", None, None, now, now) for channel, target in receivers]
            tx.insert_deliveries(deliveries)
            tx.mark_fanned_out([event.id for event in events])
        return len(events)

    def claim_deliveries(self, limit, lease_ns):
        """[(delivery, event, its webhook or subscriber)] due now, leased to this worker for ``lease_ns``."""
        if limit <= 0:
            return []
        now = CLOCK.wall_ns()
        with self._store.read() as tx:
            due = tx.next_delivery_ns()
        if due is None or due > now:
            return []
        with self._store.write(changes_data=False) as tx:
            claimed = tx.claim_deliveries(now, now + lease_ns, limit)
            found = []
            for delivery in claimed:
                target = tx.get_webhook(delivery.target_id) if delivery.channel == "webhook" else \
                    tx.get_subscriber(subscriber_id=delivery.target_id)
                event = tx.get_event(delivery.event_id)
                if target is None or event is None:  # (removed since: nobody to tell)
                    tx.record_attempt(delivery.id, delivery.attempt, "failed", None, "the receiver is gone", 0,
                                      now, None)
                    continue
                found.append((delivery, event, target))
        return found

    def record_attempt(self, delivery, status_code, error, duration_ms, delivered, gone=False):
        """How an attempt went: delivered, retried later (Standard Webhooks' schedule), or given up; a webhook
        whose receiver answered 410 Gone is disabled."""
        now = CLOCK.wall_ns()
        attempt = delivery.attempt + 1
        if delivered:
            state, next_ns = "delivered", None
        elif gone or attempt > len(RETRY_DELAYS_S):
            state, next_ns = "failed", None
        else:
            state, next_ns = "pending", now + RETRY_DELAYS_S[attempt - 1] * 10 ** 9
        with self._store.write(changes_data=False) as tx:
            tx.record_attempt(delivery.id, attempt, state, status_code, error, duration_ms, now, next_ns)
            if gone and delivery.channel == "webhook":
                tx.disable_webhook(delivery.target_id, now)
        return dataclasses.replace(delivery, attempt=attempt, state=state, status_code=status_code, error=error,
                                   duration_ms=duration_ms, attempted_ns=now, next_ns=next_ns)

    def prune_notifications(self, retention_days):
        with self._store.write(changes_data=False) as tx:
            return tx.prune_notifications(CLOCK.wall_ns() - retention_days * 86_400 * 10 ** 9)

    def test_webhook(self, actor, webhook_id):
        """Send a ping to a webhook now, and say how it went (recorded among its deliveries like any other)."""
        _required_id(webhook_id, "webhook_id")
        with self._store.write(changes_data=False) as tx:
            webhook = self.existing_webhook(tx, webhook_id)
            now = CLOCK.now_ns()
            event = EventRecord(f"msg_{IDS.new()}", "ping", (), json.dumps(
                {"type": "ping", "timestamp": utc_iso(now), "data": {"webhookId": webhook_id}}), now)
            tx.insert_event(event)
            tx.mark_fanned_out([event.id])
            delivery = DeliveryRecord(IDS.new(), event.id, "ping", "webhook", webhook_id, 0, "pending", None, "",
                                      None, None, None, now)
            tx.insert_delivery(delivery)
        attempt = send_webhook(webhook, event, self.page_identity()[0], self.webhook_timeout_s)
        return self.record_attempt(delivery, attempt.status_code, attempt.error, attempt.duration_ms,
                                   attempt.delivered, gone=attempt.gone).to_api()

    # -- e-mail subscribers ----------------------------------------------------------------------------------------

    def token_secret(self):
        """The key subscribers' link tokens are made with (made once per database; the tokens are not stored)."""
        return bytes.fromhex(self._setting_made_once("token_secret", lambda: secrets.token_hex(32)))

    def link_token(self, purpose, subscriber_id, nonce=""):
        mac = hmac.new(self.token_secret(), f"{purpose}:{subscriber_id}:{nonce}".encode(), "sha256").digest()
        return f"{subscriber_id}.{base64.urlsafe_b64encode(mac[:18]).decode()}"

    def subscribe(self, email, item_ids=()):
        """Ask a new address to confirm (by a link mailed to it); an address already confirmed is left as it is.
        Says nothing of which it was (the caller answers the same either way)."""
        email = _clean_email(email)
        item_ids = _ids_filter(item_ids, "items")
        with self._store.write(changes_data=False) as tx:
            self._check_items(tx, item_ids)
            found = tx.get_subscriber(email=email)
            if found is not None and found.confirmed_ns:
                return
            now = CLOCK.now_ns()
            record = SubscriberRecord(found.id if found else IDS.new(), email, tuple(item_ids),
                                      secrets.token_hex(8), now + CONFIRM_LINK_S * 10 ** 9, None,
                                      found.created_ns if found else now)
            tx.upsert_subscriber(record)
            self._tell(tx, "subscriber.confirm", (), {"subscriberId": record.id}, now)

    def _subscriber_of(self, tx, token, purpose):
        subscriber_id, _, _ = token.partition(".")
        record = tx.get_subscriber(subscriber_id=subscriber_id) if 0 < len(subscriber_id) <= MAX_ID_CHARS else None
        nonce = (record.confirm_nonce or "") if record is not None and purpose == "confirm" else ""
        if record is None or not hmac.compare_digest(token, self.link_token(purpose, subscriber_id, nonce)):
            return None
        return record

    def confirm_subscription(self, token):
        """True when the link confirmed (or had confirmed) its address; False when it is unknown or expired."""
        with self._store.write(changes_data=False) as tx:
            record = self._subscriber_of(tx, token, "confirm")
            if record is None or (not record.confirmed_ns and record.confirm_by_ns < CLOCK.wall_ns()):
                return False
            if not record.confirmed_ns:
                tx.upsert_subscriber(dataclasses.replace(record, confirmed_ns=CLOCK.now_ns()))
        return True

    def unsubscribe(self, token):
        """Remove the address the link is for; a link whose address is already gone is fine too (it is gone)."""
        with self._store.write(changes_data=False) as tx:
            record = self._subscriber_of(tx, token, "unsubscribe")
            if record is not None:
                tx.delete_subscriber(record.id)

    def list_subscribers(self):
        with self._store.read() as tx:
            return tx.list_subscribers()

    def remove_subscriber(self, actor, subscriber_id):
        _required_id(subscriber_id, "id")
        with self._store.write(changes_data=False) as tx:
            record = tx.get_subscriber(subscriber_id=subscriber_id)
            if record is None:
                raise NotFound(f"subscriber {subscriber_id} not found")
            tx.delete_subscriber(subscriber_id)
            self._audit(tx, actor, "RemoveSubscriber", subscriber_id, {"email": [record.email, None]})

    # -- notes -----------------------------------------------------------------------------------------------
    # A note is part of what an item shows, so changing one moves the item's ``updated`` too.

    def get_note(self, note_id):
        _required_id(note_id, "note_id")
        with self._store.read() as tx:
            return self._existing_note(tx, note_id)[0]

    def list_notes(self, item_id, size=0, token=""):
        """(A page of the item's notes, newest first; the token of the next page, "" on the last)."""
        _required_id(item_id, "item_id")
        size, before = page_size(size, "page_size"), read_page_token(token, "notes")
        with self._store.read() as tx:
            self._existing_item(tx, item_id)
            notes = tx.notes_page(item_id, size + 1, before)
        more = len(notes) > size
        return notes[:size], make_page_token("notes", notes[size - 1].id) if more else ""

    def add_note(self, actor, item_id, text):
        _required_id(item_id, "item_id")
        text = self._clean_note(text)
        with self._store.write() as tx:
            self._existing_item(tx, item_id)
            now = CLOCK.now_ns()
            note = self._insert_note(tx, item_id, text, now)
            tx.touch_item(item_id, now)
            self._tell_note(tx, "note.created", note, item_id)
            self._audit(tx, actor, "AddNote", note.id, {"item_id": [None, item_id], "text": [None, text]}, item_id)
            return note

    def update_note(self, actor, note_id, text):
        _required_id(note_id, "note_id")
        text = self._clean_note(text)
        with self._store.write() as tx:
            note, item_id = self._existing_note(tx, note_id)
            if note.text != text:
                now = CLOCK.now_ns()
                tx.update_note(note_id, text, now)
                tx.touch_item(item_id, now)
                self._tell_note(tx, "note.updated", tx.get_note(note_id)[0], item_id, incident_too=False)
                self._audit(tx, actor, "UpdateNote", note_id, {"text": [note.text, text]}, item_id)

    def delete_note(self, actor, note_id):
        _required_id(note_id, "note_id")
        with self._store.write() as tx:
            note, item_id = self._existing_note(tx, note_id)
            tx.delete_note(note_id)
            tx.touch_item(item_id, CLOCK.now_ns())
            self._tell(tx, "note.deleted", [item_id], {"note": note_json(note), "itemId": item_id})
            self._audit(tx, actor, "DeleteNote", note_id, {"item_id": [item_id, None], "text": [note.text, None]},
                        item_id)

    @staticmethod
    def _insert_note(tx, item_id, text, now):
        """Write a new note; the Note as written (not read back: on PostgreSQL that would hold the write lock for
        a round trip)."""
        note = pb.Note(id=IDS.new(), text=text, timestamps=timestamps(now, now))
        tx.insert_note(note.id, item_id, text, now)
        return note

    def _tell_note(self, tx, event_type, note, item_id, incident_too=True):
        """Tell of a note; one written while its item has an incident going on is an update of that incident."""
        self._tell(tx, event_type, [item_id], {"note": note_json(note), "itemId": item_id})
        incident = tx.open_incident(item_id) if incident_too else None
        if incident is not None:
            self._tell_incident(tx, "incident.updated", incident[0])

    @staticmethod
    def _clean_note(text):
        text = _clean_text(text, "note_text", MAX_NOTE_CHARS)
        if not text:
            raise InvalidArgument("note_text is required")
        return text

    @staticmethod
    def _existing_note(tx, note_id):
        note, item_id = tx.get_note(_required_id(note_id, "note_id"))
        if note is None:
            raise NotFound(f"note {note_id} not found")
        return note, item_id


# ==================================================================================================================
# 8. Accounts: users, API tokens, credentials
# ==================================================================================================================
# Reads of the status page are public; every write needs a user (HTTP Basic) or an API token (Bearer). Passwords
# are kept only as salted scrypt hashes; tokens only as SHA-256 (they are long random strings, so a fast hash is
# enough). Everything is looked up in the database on each request, so the command line's changes (a new
# password, a revoked token) count from the next request on.

@dataclasses.dataclass(frozen=True)
class Actor:
    """Who makes a write, for the audit trail: a user, a token (by label) or the command line."""

    name: str
    kind: str  # "user", "token" or "cli"
    client: str  # the client's address ("local" for the command line)


# Password hashes are computed on a few threads of their own: at most SCRYPT_CONCURRENCY at once (each needs
# about 16 MiB), and always in the same threads, so that the memory the allocator keeps for them stays bounded
# (each thread that allocates gets an arena of its own, which keeps what it freed).
_SCRYPT_WORKERS = futures.ThreadPoolExecutor(max_workers=SCRYPT_CONCURRENCY, thread_name_prefix="scrypt")


def _scrypt(password, salt, n, r, p, dklen):
    """hashlib.scrypt on the scrypt workers; a check that cannot start within SCRYPT_WAIT_S (a burst of logins)
    gets resource_exhausted instead of a growing queue."""
    job = _SCRYPT_WORKERS.submit(hashlib.scrypt, password.encode(), salt=salt, n=n, r=r, p=p, dklen=dklen,
                                 maxmem=256 * 1024 * 1024)
    try:
        return job.result(timeout=SCRYPT_WAIT_S)
    except futures.TimeoutError:
        if job.cancel():  # still waiting for a worker: give up on it
            raise ResourceExhausted("too many passwords are being checked at once; try again in a moment",
                                    retry_after_s=1) from None
        return job.result()  # (it has started; it ends in a few tens of milliseconds)


def hash_password(password, cost=None):
    """A PasswordHash of ``password`` with a new salt, at ``cost`` (SCRYPT_COST by default)."""
    cost = cost or SCRYPT_COST
    salt = secrets.token_bytes(16)
    return PasswordHash(_scrypt(password, salt, cost["n"], cost["r"], cost["p"], 32), salt, cost["n"], cost["r"],
                        cost["p"])


def password_matches(password, stored):
    """True when ``password`` hashes to the PasswordHash ``stored`` (compared in constant time)."""
    candidate = _scrypt(password, stored.salt, stored.n, stored.r, stored.p, len(stored.digest))
    return hmac.compare_digest(candidate, stored.digest)


def _clean_password(password):
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidArgument(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    return password


class _Attempt:
    """One password check under way, on ``facts`` read in its turn; ``succeeded()`` says the password was right."""

    def __init__(self, facts):
        self.facts, self.ok = facts, False

    def succeeded(self):
        self.ok = True


class LoginGuard:
    """Who may try a password now; built so that neither a burst nor an attacker elsewhere gets past it.

    - Failures count per (client address, username): FAILED_LOGINS_ALLOWED within FAILED_LOGIN_WINDOW_S, then
      resource_exhausted for that pair until the window has passed. A success resets the pair.
    - And per username across all addresses, more slowly (ACCOUNT_FAILURES_ALLOWED within ACCOUNT_FAILURE_WINDOW_S),
      except for addresses that have logged in as that user before: an attacker somewhere else cannot lock out the
      operator, and spreading guesses over many addresses still meets a limit.
    - Checks for one (client, username) run one at a time, each outcome counted before the next starts: fifty wrong
      passwords sent at once are ten checks and forty refusals, and fifty right ones are one check and forty-nine
      remembered matches.
    - The counts are in the database (login_failures, login_known): servers sharing one share them.
    API tokens are never checked here: they are 256 random bits, so guessing them is hopeless anyway, and a flood of
    wrong passwords must not take a deployment's tokens down with the passwords.
    """

    def __init__(self, store):
        self._store = store
        self._turns = {}  # (client, user) -> [lock that serializes its checks, how many hold or wait for it]
        self._lock = threading.Lock()

    def facts(self, client, username, now):
        """The LoginFacts of (client, username) as of ``now``, in one read. A pair whose facts are clean may be let
        in without waiting for its turn when its password is one already proven right: there is nothing to count
        (the checks that count are the ones of passwords not proven, and those all take turns)."""
        with self._store.read(one_statement=True) as tx:
            return tx.login_facts(username, client, now - FAILED_LOGIN_WINDOW_S * 10 ** 9, FAILED_LOGINS_ALLOWED,
                                  now - ACCOUNT_FAILURE_WINDOW_S * 10 ** 9, ACCOUNT_FAILURES_ALLOWED)

    @contextlib.contextmanager
    def attempt(self, client, username):
        """Wait for this pair's turn, raise ResourceExhausted when it may not try now, else yield an _Attempt whose
        ``succeeded()`` the body calls when the password was right; the outcome is counted on the way out.
        (Counted in the database: several servers on one database share one count.)"""
        pair = (client, username.casefold())
        with self._turn(pair):
            now = CLOCK.wall_ns()
            facts = self.facts(client, username, now)
            self._refuse_if_over(pair, now, facts)
            attempt = _Attempt(facts)
            try:
                yield attempt
            finally:
                if not attempt.ok or not facts.clean:  # (a success from a known, clean pair: nothing to note)
                    with self._store.write(changes_data=False) as tx:
                        tx.record_login(client, pair[1], CLOCK.wall_ns(), attempt.ok,
                                        now - ACCOUNT_FAILURE_WINDOW_S * 10 ** 9)

    @staticmethod
    def _refuse_if_over(pair, now, facts):
        if facts.limit_reached_ns is not None:
            wait = max(1, math.ceil((facts.limit_reached_ns - now) / 1e9 + FAILED_LOGIN_WINDOW_S))
            raise ResourceExhausted(f"too many failed logins from {pair[0]}; try again in {wait} s",
                                    retry_after_s=wait)
        if facts.account_limit_reached_ns is not None and not facts.known:
            wait = max(1, math.ceil((facts.account_limit_reached_ns - now) / 1e9 + ACCOUNT_FAILURE_WINDOW_S))
            raise ResourceExhausted(f"too many failed logins for this account from new addresses; try again in "
                                    f"{wait} s (or from an address that logged in before, or with an API token)",
                                    retry_after_s=wait)

    @contextlib.contextmanager
    def _turn(self, pair):
        with self._lock:
            turn = self._turns.setdefault(pair, [threading.Lock(), 0])
            turn[1] += 1
        try:
            with turn[0]:
                yield
        finally:
            with self._lock:
                turn[1] -= 1
                if not turn[1]:
                    del self._turns[pair]


class Accounts:
    """Users and API tokens: managing them (command line, admin page) and checking credentials (every write)."""

    def __init__(self, store):
        self._store = store
        self.guard = LoginGuard(store)
        # Checking a password costs an scrypt; remembering which (user, password) pairs already matched which
        # stored hash keeps writes fast. Keys are HMACs under a per-process secret, never the password itself;
        # a changed password changes the stored hash, so a remembered match stops counting at once.
        self._secret = secrets.token_bytes(32)
        self._matched = {}
        self._check_locks = [threading.Lock() for _ in range(64)]
        # Unknown users are checked against this, so they cost the same scrypt as a wrong password.
        self._decoy = hash_password(secrets.token_urlsafe(16))
        self._default_checked = (None, False)  # (the admin's hash digest, whether "password" matches it)

    # -- checking credentials --------------------------------------------------------------------------------

    def authenticate(self, authorization, client):
        """The Actor behind an Authorization header value (Basic or Bearer), or an error:
        unauthenticated (missing or wrong), resource_exhausted (too many failures from this client)."""
        scheme, _, credentials = (authorization or "").strip().partition(" ")
        if not credentials.strip():
            raise Unauthenticated("this call changes data and needs credentials: HTTP Basic (a user) or "
                                  "Bearer (an API token)")
        scheme = scheme.lower()
        actor = (self._basic(credentials.strip(), client) if scheme == "basic"
                 else self._bearer(credentials.strip(), client) if scheme == "bearer" else None)
        if actor is None:
            raise Unauthenticated("wrong credentials")
        return actor

    def _basic(self, credentials, client):
        try:
            username, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None  # (not a guess at any password, so not counted as one)
        # The common case, a tool writing with the right password from where it always does, is let in on one
        # read, beside any number of its other requests; every other one takes its pair's turn.
        facts = self.guard.facts(client, username, CLOCK.wall_ns())
        user = facts.user
        if facts.clean and user is not None and self._remembered(self._match_key(user, password), user):
            self._note_login(user)
            return Actor(user.username, "user", client)
        with self.guard.attempt(client, username) as attempt:
            user = self._verify(attempt.facts.user, password)
            if user is not None:
                attempt.succeeded()
        return Actor(user.username, "user", client) if user else None

    def check_password(self, username, password):
        """The UserRecord when the password is right, else None (at the same cost whether or not they exist)."""
        with self._store.read() as tx:
            user = tx.get_user(username)
        return self._verify(user, password)

    def _match_key(self, user, password):
        return hmac.new(self._secret, f"{user.id}\0{password}".encode(), "sha256").digest()

    def _verify(self, user, password):
        if user is None:
            password_matches(password, self._decoy)
            return None
        key = self._match_key(user, password)
        if not self._remembered(key, user):
            # Checks of the same credentials run one at a time, so fifty logins at once cost one scrypt.
            with self._check_locks[key[0] % len(self._check_locks)]:
                if not self._remembered(key, user):
                    if not password_matches(password, user.password):
                        return None
                    if len(self._matched) > 1000:
                        self._matched.clear()
                    self._matched[key] = user.password.digest
        self._note_login(user)
        return user

    def _note_login(self, user):
        now = CLOCK.wall_ns()
        if (user.last_login_ns or 0) < now - LAST_USED_RESOLUTION_NS:
            with self._store.write(changes_data=False) as tx:
                tx.touch_login(user.id, now)

    def _remembered(self, key, user):
        remembered = self._matched.get(key)
        return remembered is not None and hmac.compare_digest(remembered, user.password.digest)

    def _bearer(self, token, client):
        with self._store.read() as tx:
            found = tx.get_token(hashlib.sha256(token.encode()).hexdigest())
        if found is None:
            return None
        now = CLOCK.wall_ns()
        if (found.last_used_ns or 0) < now - LAST_USED_RESOLUTION_NS:
            with self._store.write(changes_data=False) as tx:
                tx.touch_token(found.id, now)
        return Actor(found.label, "token", client)

    def default_password_in_use(self):
        """True while the default admin login still works (an scrypt only when the admin's hash changed)."""
        with self._store.read() as tx:
            user = tx.get_user(DEFAULT_ADMIN[0])
        if user is None:
            return False
        digest, in_use = self._default_checked
        if digest != user.password.digest:
            in_use = password_matches(DEFAULT_ADMIN[1], user.password)
            self._default_checked = (user.password.digest, in_use)
        return in_use

    # -- managing users and tokens ---------------------------------------------------------------------------

    def ensure_first_user(self, password):
        """On a database without users, create the admin user; return True when it did."""
        with self._store.write(changes_data=False) as tx:
            if tx.count_users():
                return False
            now = CLOCK.now_ns()
            tx.insert_user(IDS.new(), DEFAULT_ADMIN[0], hash_password(password), now)
            return True

    def add_user(self, actor, username, password):
        username = _clean_name(username, "user")
        if ":" in username:
            raise InvalidArgument("a user name cannot contain ':' (HTTP Basic separates it from the password)")
        hashed = hash_password(_clean_password(password))
        with self._store.write(changes_data=False) as tx:
            user_id = IDS.new()
            tx.insert_user(user_id, username, hashed, CLOCK.now_ns())
            tx.insert_audit(CLOCK.now_ns(), actor, "user add", user_id, {"username": [None, username]})

    def set_password(self, actor, username, password):
        hashed = hash_password(_clean_password(password))
        with self._store.write(changes_data=False) as tx:
            user = self._existing_user(tx, username)
            tx.set_password(user.id, hashed, CLOCK.now_ns())
            tx.insert_audit(CLOCK.now_ns(), actor, "user passwd", user.id, {"password": ["(set)", "(set)"]})

    def change_own_password(self, actor, current_password, new_password):
        """For the admin page: the user proves the current password again before setting a new one."""
        if self.check_password(actor.name, current_password) is None:
            raise InvalidArgument("the current password is not right")
        if new_password == current_password:
            raise InvalidArgument("the new password is the same as the current one")
        self.set_password(actor, actor.name, new_password)

    def delete_user(self, actor, username):
        with self._store.write(changes_data=False) as tx:
            user = self._existing_user(tx, username)
            if tx.count_users() == 1:
                raise FailedPrecondition(f'"{user.username}" is the only user; add another before deleting it')
            tx.delete_user(user.id)
            tx.insert_audit(CLOCK.now_ns(), actor, "user del", user.id, {"username": [user.username, None]})

    def list_users(self):
        with self._store.read() as tx:
            return tx.list_users()

    def add_token(self, actor, label):
        """Create a token and return it: the only time it is ever shown."""
        label = _clean_name(label, "token")
        token = "st_" + secrets.token_urlsafe(32)
        with self._store.write(changes_data=False) as tx:
            token_id = IDS.new()
            tx.insert_token(token_id, label, hashlib.sha256(token.encode()).hexdigest(), actor.name,
                            CLOCK.now_ns())
            tx.insert_audit(CLOCK.now_ns(), actor, "token add", token_id, {"label": [None, label]})
        return token

    def list_tokens(self):
        with self._store.read() as tx:
            return tx.list_tokens()

    def revoke_token(self, actor, label):
        with self._store.write(changes_data=False) as tx:
            token_id = tx.delete_token(label)
            if token_id is None:
                raise NotFound(f'no token labelled "{label}"')
            tx.insert_audit(CLOCK.now_ns(), actor, "token revoke", token_id, {"label": [label, None]})

    def audit(self, limit=100, before=None, item_id="", actor=""):
        with self._store.read() as tx:
            return tx.list_audit(limit, before, item_id, actor)

    def audit_page(self, limit, before=None, item_id="", actor=""):
        """A page of the audit trail for people: (entries, {id: name} of the items and statuses they mention,
        every actor, the entry id the next page starts before, or None on the last)."""
        with self._store.read() as tx:
            entries = tx.list_audit(limit + 1, before, item_id, actor)
            mentioned = set()
            for entry in entries[:limit]:
                mentioned.update(value for value in (entry.item_id, entry.target_id) if value)
                mentioned.update(value for value in entry.changes.get("status_id") or () if value)
            names = tx.names_of(mentioned)
            actors = tx.audit_actors()
        return entries[:limit], names, actors, entries[limit - 1].id if len(entries) > limit else None

    @staticmethod
    def _existing_user(tx, username):
        user = tx.get_user(username)
        if user is None:
            raise NotFound(f'no user named "{username}"')
        return user


# ==================================================================================================================
# 9. RPC bindings
# ==================================================================================================================
# One function per RPC turns a request message into service arguments and the result into a response message.
# The route table is built from the service descriptors, so no path is typed by hand and none can be missed.

def _optional(request, field):
    """The value of an ``optional`` field, or None when the client did not set it."""
    return getattr(request, field) if request.HasField(field) else None


def _time_of(request, field):
    """A Timestamp field as nanoseconds, or None when it is not set."""
    return getattr(request, field).ToNanoseconds() if request.HasField(field) else None


BINDINGS = {  # rpc name -> (service, request, actor) -> response; reads ignore the actor
    "GetItem": lambda svc, r, actor: pb.GetItemResponse(item=svc.get_item(r.item_id, r.notes_limit)),
    "ListItems": lambda svc, r, actor: pb.ListItemsResponse(
        items=svc.list_items(r.status_ids, r.kinds, r.extended, r.notes_limit)),
    "AddItem": lambda svc, r, actor: pb.AddItemResponse(item=svc.add_item(
        actor, r.name, r.description, r.initial_status_id,
        r.initial_status if r.HasField("initial_status") else None, r.initial_note_text, r.position, r.group)),
    "UpdateItem": lambda svc, r, actor: svc.update_item(
        actor, r.item_id, r.name, _optional(r, "description"), r.status_id, r.note_text, _optional(r, "position"),
        _optional(r, "group")) or pb.UpdateItemResponse(),
    "DeleteItem": lambda svc, r, actor: svc.delete_item(actor, r.item_id) or pb.DeleteItemResponse(),
    "GetStatus": lambda svc, r, actor: pb.GetStatusResponse(status=svc.get_status(r.status_id)),
    "ListStatus": lambda svc, r, actor: pb.ListStatusResponse(statuses=svc.list_statuses(r.kinds)),
    "AddStatus": lambda svc, r, actor: pb.AddStatusResponse(status=svc.add_status(
        actor, r.name, r.description, r.color, r.kind, r.condition)),
    "UpdateStatus": lambda svc, r, actor: svc.update_status(
        actor, r.status_id, r.name, _optional(r, "description"), _optional(r, "color"), r.kind,
        _optional(r, "condition")) or pb.UpdateStatusResponse(),
    "DeleteStatus": lambda svc, r, actor: svc.delete_status(actor, r.status_id) or pb.DeleteStatusResponse(),
    "GetNote": lambda svc, r, actor: pb.GetNoteResponse(note=svc.get_note(r.note_id)),
    "ListNotes": lambda svc, r, actor: pb.ListNotesResponse(
        **dict(zip(("notes", "next_page_token"), svc.list_notes(r.item_id, r.page_size, r.page_token)))),
    "AddNote": lambda svc, r, actor: pb.AddNoteResponse(note=svc.add_note(actor, r.item_id, r.note_text)),
    "UpdateNote": lambda svc, r, actor: svc.update_note(actor, r.note_id, r.note_text) or pb.UpdateNoteResponse(),
    "DeleteNote": lambda svc, r, actor: svc.delete_note(actor, r.note_id) or pb.DeleteNoteResponse(),
    "ListStatusChanges": lambda svc, r, actor: pb.ListStatusChangesResponse(
        **dict(zip(("changes", "next_page_token"), svc.list_status_changes(
            r.item_ids, _time_of(r, "since"), _time_of(r, "until"), r.page_size, r.page_token)))),
    "GetUptime": lambda svc, r, actor: pb.GetUptimeResponse(
        **dict(zip(("items", "time_zone"), svc.get_uptime(r.item_ids, r.days)))),
    "AddMaintenance": lambda svc, r, actor: pb.AddMaintenanceResponse(maintenance=svc.add_maintenance(
        actor, r.title, r.description, r.item_ids, _time_of(r, "starts_at"), _time_of(r, "ends_at"))),
    "GetMaintenance": lambda svc, r, actor: pb.GetMaintenanceResponse(maintenance=svc.get_maintenance(
        r.maintenance_id)),
    "ListMaintenances": lambda svc, r, actor: pb.ListMaintenancesResponse(
        **dict(zip(("maintenances", "next_page_token"), svc.list_maintenances(r.states, r.page_size, r.page_token)))),
    "UpdateMaintenance": lambda svc, r, actor: pb.UpdateMaintenanceResponse(maintenance=svc.update_maintenance(
        actor, r.maintenance_id, _optional(r, "title"), _optional(r, "description"), list(r.item_ids),
        _time_of(r, "starts_at"), _time_of(r, "ends_at"), r.complete_now, r.cancel)),
    "DeleteMaintenance": lambda svc, r, actor: svc.delete_maintenance(actor, r.maintenance_id)
    or pb.DeleteMaintenanceResponse(),
    "AddWebhook": lambda svc, r, actor: pb.AddWebhookResponse(
        **dict(zip(("webhook", "secret"), svc.add_webhook(actor, r.url, r.description, r.events, r.body_format)))),
    "ListWebhooks": lambda svc, r, actor: pb.ListWebhooksResponse(webhooks=svc.list_webhooks()),
    "DeleteWebhook": lambda svc, r, actor: svc.delete_webhook(actor, r.webhook_id) or pb.DeleteWebhookResponse(),
    "ListDeliveries": lambda svc, r, actor: pb.ListDeliveriesResponse(
        **dict(zip(("deliveries", "next_page_token"), svc.list_deliveries(r.webhook_id, r.page_size, r.page_token)))),
    "TestWebhook": lambda svc, r, actor: pb.TestWebhookResponse(delivery=svc.test_webhook(actor, r.webhook_id)),
    "ListIncidents": lambda svc, r, actor: pb.ListIncidentsResponse(
        **dict(zip(("incidents", "next_page_token"), svc.list_incidents(
            r.item_ids, _time_of(r, "since"), _time_of(r, "until"), r.unresolved_only, r.page_size, r.page_token)))),
}


@dataclasses.dataclass(frozen=True)
class Method:
    """One RPC: where it lives, its message classes, and the binding that runs it."""

    path: str  # "/statusthing.v1.ItemsService/GetItem", the same for Connect and gRPC
    service: str
    name: str
    request_class: type
    response_class: type
    call: object  # (StatusThingService, request, Actor or None) -> response
    reads_only: bool  # a Get or List
    public: bool  # a read anyone may make (not WebhookService's): its answer may be kept until the next write


PRIVATE_SERVICES = frozenset({"WebhookService"})  # every RPC of these needs credentials, reads too


def _build_methods():
    methods = {}
    for service in pb.SERVICES_DESCRIPTOR.services_by_name.values():
        for method in service.methods:
            path = f"/{service.full_name}/{method.name}"
            methods[path] = Method(path, service.full_name, method.name, getattr(pb, method.input_type.name),
                                   getattr(pb, method.output_type.name), BINDINGS[method.name],
                                   method.name.startswith(("Get", "List")),
                                   method.name.startswith(("Get", "List")) and service.name not in PRIVATE_SERVICES)
    assert len(methods) == len(BINDINGS), "every binding must match an RPC of services.proto"
    return methods


METHODS = _build_methods()

# Reads whose answers are assembled from kept per-item parts rather than encoded whole:
# rpc name -> (ItemAnswers, request, wire) -> answer bytes.
ASSEMBLED = {"ListItems": lambda answers, request, wire: answers.list_items(request, wire),
             "GetUptime": lambda answers, request, wire: answers.uptime(request, wire)}


def run_rpc(app, method, request, actor, wire, limit):
    """One RPC's answer as ``wire`` (JSON or PROTO) bytes, for Connect and gRPC alike. An answer past ``limit``
    bytes is refused with resource_exhausted rather than sent (a gRPC client could not take it)."""
    assemble = ASSEMBLED.get(method.name)
    payload = (assemble(app.item_answers, request, wire) if assemble
               else encode(wire, method.call(app.service, request, actor)))
    if len(payload) > limit:
        raise ResourceExhausted(f"the answer would be {len(payload) / 2 ** 20:.1f} MiB, more than the "
                                f"{limit / 2 ** 20:.1f} MiB limit of an answer; ask for less (filters, notes_limit, "
                                f"page_size)")
    return payload


# ==================================================================================================================
# 10. Kept answers
# ==================================================================================================================
# Reads are answered from what was computed since the data last changed. An answer is kept while the data
# generation it was computed at is current (a write by any process moves it) and, when it depends on the time
# (uptime bars, maintenance windows), until the moment its computation said it stops being true.

class _Validity(threading.local):
    """The limits of the answers this thread is computing, innermost last (wall-clock ns; inf: no limit)."""

    def __init__(self):
        self.limits = []


_VALIDITY = _Validity()


def valid_until(ns):
    """Say, while an answer is computed, that it stops being true at ``ns`` (wall-clock nanoseconds)."""
    if _VALIDITY.limits:
        _VALIDITY.limits[-1] = min(_VALIDITY.limits[-1], ns)


@dataclasses.dataclass(frozen=True)
class _Kept:
    generation: int
    answer: object
    until_ns: float  # math.inf when only a change of data ends it
    cost: int


class AnswerCache:
    """Answers of reads, kept until the data changes (``generation()`` moves) or their time runs out.

    Keys are whatever identifies a request on its transport. When many requests miss at once (right after a
    write), one computes the answer and the others wait for it: computing it 32 times over, one after another
    behind the store's lock, would make the last of them wait for all the others.

    The cache is bounded in entries and in the bytes it holds, so that clients varying their requests cannot fill
    memory with copies of a large answer: the least recently used answers go first.
    """

    def __init__(self, generation, max_entries=4096, max_bytes=ANSWER_CACHE_BYTES):
        self._generation = generation
        self._entries = collections.OrderedDict()  # key -> _Kept, least recently used first
        self._bytes = 0
        self._computing = {}  # key -> Event set when the thread computing it is done
        self._lock = threading.Lock()
        self._max_entries, self._max_bytes = max_entries, max_bytes

    def get(self, key, compute, size=len):
        """The kept answer for ``key``, or ``compute()``'s (kept if nothing was written meanwhile).

        ``size(answer)`` tells roughly how many bytes keeping it costs.
        """
        while True:
            generation = self._generation()
            kept = self._entries.get(key)
            if kept is not None and kept.generation == generation and (
                    kept.until_ns == math.inf or CLOCK.wall_ns() < kept.until_ns):
                with contextlib.suppress(KeyError):  # (evicted meanwhile: it is still the answer)
                    self._entries.move_to_end(key)
                if kept.until_ns != math.inf:
                    valid_until(kept.until_ns)  # (what is built from it holds no longer)
                return kept.answer
            with self._lock:
                done = self._computing.get(key)
                if done is None:
                    done = self._computing[key] = threading.Event()
                    break
            done.wait()  # then look again: the answer is there, or (after an error) this thread computes it
        try:
            _VALIDITY.limits.append(math.inf)
            try:
                answer = compute()
            finally:
                until_ns = _VALIDITY.limits.pop()
                valid_until(until_ns)  # an answer built from this one holds no longer than it
            self._keep(key, _Kept(generation, answer, until_ns,
                                  size(answer) + sum(len(part) for part in key if isinstance(part, bytes))))
            return answer
        finally:
            with self._lock:
                del self._computing[key]
            done.set()

    def previous(self, key):
        """The answer last kept for ``key``, current or not (None when there is none)."""
        kept = self._entries.get(key)
        return kept.answer if kept is not None else None

    def _keep(self, key, kept):
        with self._lock:
            replaced = self._entries.pop(key, None)
            if replaced is not None:
                self._bytes -= replaced.cost
            self._entries[key] = kept
            self._bytes += kept.cost
            while (len(self._entries) > self._max_entries or self._bytes > self._max_bytes) and len(self._entries) > 1:
                self._bytes -= self._entries.popitem(last=False)[1].cost

    def forget_mentions(self, text):
        """Drop the answers whose key names ``text`` (a deleted item's id): they can never be asked for again."""
        needle = text.encode()
        with self._lock:
            for key in [key for key in self._entries if any(
                    (needle in part) if isinstance(part, bytes) else (part == text) for part in key)]:
                self._bytes -= self._entries.pop(key).cost


class ItemAnswers:
    """Answers about many items — ListItems (JSON, binary) and the front page — assembled from parts encoded one
    item at a time, each kept while its item's version is the same: after one item of 10,000 changes, one part is
    encoded again. The parts are read and encoded outside any lock the writers need; the cache of parts is bounded
    in bytes (the parts encoded longest ago go first)."""

    def __init__(self, service, answers, max_bytes=PART_CACHE_BYTES):
        self._service = service
        self._answers = answers  # keeps the versions of a filtered list once per change of data, for every form
        self._all = (None, {}, [])  # every item: (change number seen, {id: ItemVersion}, sorted (position, id))
        self._all_lock = threading.Lock()
        self._forms = {}  # form -> {item id: (ItemVersion, part, cost)}, oldest encoding first
        self._bytes = 0
        self._max_bytes = max_bytes
        self._lock = threading.Lock()

    def versions(self, filters=((), ()), item_ids=()):
        """The versions of the items ListItems lists with ``filters``, or of the items ``item_ids``, in list
        order."""
        if item_ids:
            wanted = set(item_ids)
            return [version for version in self._every_version() if version[0] in wanted]
        if filters == ((), ()):
            return self._every_version()
        return self._answers.get(("versions", repr(filters)), lambda: self._service.item_versions(filters),
                                 size=lambda versions: 200 * len(versions))

    def parts(self, form, versions, notes_limit, encode, cost=len, prepare=lambda item_ids: None):
        """The part in ``form`` of each item of ``versions``, in their order: kept ones as they are, the others made
        by ``encode(item, version, prepared)`` from the item with its newest ``notes_limit`` notes, and what
        ``prepare(item ids)`` read for the batch of items it is in."""
        kept = self._forms.setdefault(form, {})
        snapshot = dict(kept)  # (a copy: another thread may add to it meanwhile)
        changed = {version[0]: version for version in versions if (snapshot.get(version[0]) or (None,))[0] != version}
        missing, fresh = list(changed), {}
        for start in range(0, len(missing), 500):  # (in batches: a cold start holds 500 items, not all)
            batch = missing[start:start + 500]
            prepared = prepare(batch)
            for item in self._service.items_by_ids(batch, notes_limit):
                # (An item may have changed since the versions were read: its part is then kept under the older
                # version, and encoded again when next asked for, which is all that can go wrong.)
                part = encode(item, changed[item.id], prepared)
                fresh[item.id] = (changed[item.id], part, cost(part))
        if fresh:
            with self._lock:
                for item_id, entry in fresh.items():
                    self._bytes += entry[2] - (kept.pop(item_id, (None, None, 0))[2])
                    kept[item_id] = entry
                self._evict()
        # (An item deleted since the versions were read has no part: it is left out, as it is from the data.)
        return [entry[1] for entry in (fresh.get(version[0]) or snapshot.get(version[0]) for version in versions)
                if entry is not None]

    def _every_version(self):
        """Every item's version in list order, as of now: read whole once, then brought up to date from the change
        log, so that after a write only the items it changed are read again (not 10,000 versions)."""
        with self._all_lock:
            seen, by_id, order = self._all
            seq, versions, named = self._service.versions_changed_since(seen)
            if named is None:
                by_id = {version[0]: version for version in versions}
                order = [(version[VERSION_POSITION], version[0]) for version in versions]
            elif seq != seen:
                changed = {version[0]: version for version in versions}
                for item_id in named | set(changed):  # moved, added, changed or gone
                    old = by_id.pop(item_id, None)
                    if old is not None:
                        del order[bisect.bisect_left(order, (old[VERSION_POSITION], item_id))]
                    if item_id in changed:
                        by_id[item_id] = changed[item_id]
                        bisect.insort(order, (changed[item_id][VERSION_POSITION], item_id))
            self._all = (seq, by_id, order)
            return [by_id[item_id] for _, item_id in order]

    def _evict(self):
        while self._bytes > self._max_bytes:
            form = max(self._forms, key=lambda name: len(self._forms[name]))
            parts = self._forms[form]
            if not parts:
                return
            self._bytes -= parts.pop(next(iter(parts)))[2]

    def forget(self, item_id):
        """Drop every part of a deleted item."""
        with self._lock:
            for parts in self._forms.values():
                entry = parts.pop(item_id, None)
                if entry is not None:
                    self._bytes -= entry[2]

    def list_items(self, request, wire):
        """ListItems' answer as ``wire`` (JSON or PROTO) bytes."""
        versions = self.versions(StatusThingService.item_filters(request.status_ids, request.kinds))
        limit = page_size(request.notes_limit, "notes_limit") if request.extended else 0
        if wire == PROTO:  # a repeated field is its elements' fields, concatenated
            return b"".join(self.parts(("proto", limit), versions, limit,
                                       lambda item, version, _: proto_field(1, item.SerializeToString())))
        parts = self.parts(("json", limit), versions, limit, lambda item, version, _: json_bytes(item_json(item)))
        return b'{"items":[' + b",".join(parts) + b"]}" if parts else b"{}"

    def _history_parts(self, form, days, now_ns, versions, notes_limit, make, cost, count_incidents=True):
        """Per-item parts about the last ``days`` days as of ``now_ns``, each made by ``make(item, version, past
        UptimeDays, {day: incidents}, OpenDay)`` and kept while the item and the day are the same. (The days
        before today are closed: only a status change of the item alters them, and that moves its version.)"""
        service, zone = self._service, self._service.zone
        window = day_window(zone, now_ns, days)
        today, today_start = window[-1], zone.start_ns(window[-1])

        def encode(item, version, inputs):
            closed, incidents = inputs[item.id]
            last_change_ns, last_condition = version[VERSION_LAST_CHANGE_NS], version[VERSION_LAST_CONDITION]
            past = uptime_days(zone, window[:-1], closed, last_change_ns, last_condition, today_start,
                               functools.partial(service.maintenance_windows, item.id)) if days > 1 else []
            return make(item, version, past, incidents, OpenDay(item.id, closed.get(today), last_change_ns,
                                                                last_condition, incidents.get(today.isoformat(), 0)))

        parts = self.parts((*form, today, service.calendar().version), versions, notes_limit, encode, cost=cost,
                           prepare=lambda item_ids: service.bar_inputs(item_ids, window, count_incidents))
        valid_until(min(now_ns + HISTORY_FRESH_NS, zone.start_ns(today + datetime.timedelta(days=1))))
        return today, parts

    def front_page(self, now_ns):
        """[(ItemSummary, its card as UTF-8 bytes)] of every item, for the front page at ``now_ns``: each card's
        fixed part (its head, notes, and the bar's days before today) kept, today's mark and the uptime figure
        (which move with the clock) made on each call. Past BARS_UP_TO_ITEMS items the cards have no bars."""
        versions = self.versions()
        calendar = self._service.calendar()
        valid_until(calendar.next_change(now_ns))  # (when an item goes into or out of maintenance)

        def shown(item):
            return shown_condition(item, calendar, now_ns)
        if len(versions) > BARS_UP_TO_ITEMS:
            cards = self.parts(("page-without-bars", calendar.key(now_ns)), versions, NOTES_ON_FRONT_PAGE,
                               lambda item, version, _: FrontCard.of(item, version, condition=shown(item)),
                               FrontCard.cost)
            return [(card.summary, card.head) for card in cards]
        today, cards = self._history_parts(
            ("page", calendar.key(now_ns)), BAR_DAYS, now_ns, versions, NOTES_ON_FRONT_PAGE,
            lambda item, *parts: FrontCard.of(item, *parts, condition=shown(item)), FrontCard.cost)
        return [(card.summary, card.with_today(self._service, today, now_ns)) for card in cards]

    def uptime_windows(self, now_ns):
        """[UptimeWindows] of every item, for /metrics."""
        calendar = self._service.calendar()
        return self._history_parts(("windows", calendar.key(now_ns)), BAR_DAYS, now_ns, self.versions(), 0,
                                   lambda item, *parts: UptimeWindows.of(
                                       item, *parts, condition=shown_condition(item, calendar, now_ns)),
                                   lambda part: 300, count_incidents=False)[1]

    def uptime(self, request, wire):
        """GetUptime's answer as ``wire`` bytes: each item's days before today encoded once per change of it and
        day; today and the figure, which move with the clock, encoded on each call."""
        service = self._service
        days = uptime_days_asked(request.days)
        versions = self.versions(item_ids=service.existing_items(request.item_ids))
        if len(versions) * days > MAX_UPTIME_ITEM_DAYS:  # (refused before the work, not after)
            raise ResourceExhausted(f"{len(versions)} items x {days} days is more than the {MAX_UPTIME_ITEM_DAYS:,} "
                                    f"item-days of one answer; ask for fewer items (item_ids) or days")
        now = CLOCK.wall_ns()
        today, parts = self._history_parts(("uptime", wire, days), days, now, versions, 0,
                                           functools.partial(UptimeAnswer.of, wire), UptimeAnswer.cost,
                                           count_incidents=False)
        items = [part.with_today(service, today, now) for part in parts]
        zone = service.zone.name.encode()
        if wire == PROTO:
            return b"".join(items) + proto_field(2, zone)
        return (b'{"items":[' + b",".join(items) + b'],' if items else b"{") + b'"timeZone":' + json_bytes(
            service.zone.name) + b"}"


class UptimeWindows(typing.NamedTuple):
    """One item's uptime sums for /metrics, kept while the item and the day are the same: its days before today
    within 90 and within 30 days; today is added on each use."""

    item_id: str
    name: str
    group: str
    condition: int
    sums_90: tuple
    sums_30: tuple
    open_day: OpenDay

    @classmethod
    def of(cls, item, version, past_days, incidents_by_day, open_day, condition=None):
        return cls(item.id, item.name, item.group, _condition_of_item(item) if condition is None else condition,
                   uptime_sums(past_days),
                   uptime_sums(past_days[-29:]), open_day)

    def ratios(self, service, now_ns):
        """[(window, uptime over it as 0 to 1, or None when nothing was observed)] for today, 30 and 90 days."""
        today = service.zone.day_of(now_ns)
        observed, down = uptime_sums([self.open_day.day(service, today, now_ns)])
        return [(window, None if percent is None else percent / 100) for window, percent in (
            ("1d", uptime_percent(observed, down)),
            ("30d", uptime_percent(self.sums_30[0] + observed, self.sums_30[1] + down)),
            ("90d", uptime_percent(self.sums_90[0] + observed, self.sums_90[1] + down)))]


class UptimeAnswer(typing.NamedTuple):
    """One item's ItemUptime in GetUptime's answer, in one wire format, kept while the item and the day are the
    same: encoded but for today's day and the figure."""

    wire: str
    head: bytes  # the item's id and name
    past: bytes  # its days before today, encoded and joined
    past_sums: tuple  # (observed, down) seconds of them
    open_day: OpenDay

    @classmethod
    def of(cls, wire, item, version, past_days, incidents_by_day, open_day):
        if wire == PROTO:
            head = proto_field(1, item.id.encode()) + proto_field(2, item.name.encode())
            past = b"".join(proto_field(4, day.SerializeToString()) for day in past_days)
        else:
            head = b'{"itemId":' + json_bytes(item.id) + b',"itemName":' + json_bytes(item.name)
            past = b",".join(json_bytes(uptime_day_json(day)) for day in past_days)
        return cls(wire, head, past, uptime_sums(past_days), open_day)

    def cost(self):
        return len(self.head) + len(self.past) + 200

    def with_today(self, service, today, now_ns):
        """The whole ItemUptime (as a field of GetUptimeResponse in binary), as of ``now_ns``."""
        day = self.open_day.day(service, today, now_ns)
        observed, down = uptime_sums([day])
        percent = uptime_percent(self.past_sums[0] + observed, self.past_sums[1] + down)
        if self.wire == PROTO:
            figure = b"\x19" + struct.pack("<d", percent) if percent is not None else b""  # field 3, a double
            return proto_field(1, self.head + figure + self.past + proto_field(4, day.SerializeToString()))
        figure = b',"uptimePercent":' + json_bytes(percent) if percent is not None else b""
        return (self.head + figure + b',"days":[' + self.past + (b"," if self.past else b"")
                + json_bytes(uptime_day_json(day)) + b"]}")


# ==================================================================================================================
# 11. Codec: protobuf <-> Connect wire
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
    if content_type == PROTO:
        return decode_binary(body, message_class)
    name = message_class.DESCRIPTOR.full_name
    try:
        value = json.loads(body)
    except RecursionError:
        raise InvalidArgument(f"body is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"body is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidArgument(f"body must be a JSON object ({name}), got {type(value).__name__}")
    _check_json(value)
    _drop_unknown_fields(value, message_class.DESCRIPTOR)
    try:
        return json_format.ParseDict(value, message_class())
    except Exception as exc:  # ParseError, and OverflowError ({"kinds": [1e400]}) or ValueError from the mapping
        raise InvalidArgument(f"invalid {name}: {exc}") from None


def decode_binary(body, message_class):
    """Parse binary protobuf into ``message_class`` (Connect and gRPC alike); InvalidArgument when it is not one."""
    try:
        return message_class.FromString(body)
    except Exception as exc:  # DecodeError, or a RuntimeError from the parser on some inputs
        raise InvalidArgument(f"body is not a valid binary {message_class.DESCRIPTOR.full_name}: {exc}") from None


_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_json(value):
    """InvalidArgument for JSON no message of ours has: nesting deeper than MAX_JSON_DEPTH (before any recursion
    over it), or strings with lone surrogates (\\ud800 escapes, which no UTF-8 answer or log line could carry)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            raise InvalidArgument(f"body is nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, dict):
            for key, child in item.items():
                if _SURROGATE.search(key):
                    raise InvalidArgument("body has a string that is not valid Unicode (a lone surrogate)")
                pending.append((child, depth + 1))
        elif isinstance(item, list):
            pending.extend((child, depth + 1) for child in item)
        elif isinstance(item, str) and _SURROGATE.search(item):
            raise InvalidArgument("body has a string that is not valid Unicode (a lone surrogate)")


def encode(content_type, message):
    if content_type == PROTO:
        return message.SerializeToString()
    return json_bytes(json_format.MessageToDict(message))


def json_bytes(value):
    """Compact JSON, as every answer is written."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


# The protobuf JSON mapping of the entity messages, written out: json_format.MessageToDict walks descriptors and
# costs ~30 us an item, which is most of a 10,000-item answer. Default values are left out, as the mapping does;
# tests/test_codec.py checks these against json_format on messages with every field filled.

def _timestamps_json(stamps):
    value = {}
    for name in ("created", "updated", "deleted"):
        if stamps.HasField(name):
            value[name] = getattr(stamps, name).ToJsonString()
    return value


def status_json(status):
    """A Status as the protobuf JSON mapping writes it."""
    value = {key: text for key, text in (("id", status.id), ("name", status.name),
                                          ("description", status.description), ("color", status.color)) if text}
    if status.kind:
        value["kind"] = pb.StatusKind.Name(status.kind)
    if status.condition:
        value["condition"] = pb.Condition.Name(status.condition)
    if status.HasField("timestamps"):
        value["timestamps"] = _timestamps_json(status.timestamps)
    return value


def note_json(note):
    """A Note as the protobuf JSON mapping writes it."""
    value = {key: text for key, text in (("id", note.id), ("text", note.text)) if text}
    if note.HasField("timestamps"):
        value["timestamps"] = _timestamps_json(note.timestamps)
    return value


def item_json(item):
    """An Item as the protobuf JSON mapping writes it."""
    value = {key: text for key, text in (("id", item.id), ("name", item.name), ("description", item.description))
             if text}
    if item.HasField("status"):
        value["status"] = status_json(item.status)
    if item.notes:
        value["notes"] = [note_json(note) for note in item.notes]
    if item.position:
        value["position"] = item.position
    if item.group:
        value["group"] = item.group
    if item.HasField("timestamps"):
        value["timestamps"] = _timestamps_json(item.timestamps)
    return value


def uptime_day_json(day):
    """An UptimeDay as the protobuf JSON mapping writes it (64-bit numbers as strings)."""
    value = {"date": day.date} if day.date else {}
    if day.worst:
        value["worst"] = pb.Condition.Name(day.worst)
    for key, number in (("observedSeconds", day.observed_seconds), ("degradedSeconds", day.degraded_seconds),
                        ("partialOutageSeconds", day.partial_outage_seconds),
                        ("majorOutageSeconds", day.major_outage_seconds),
                        ("maintenanceSeconds", day.maintenance_seconds)):
        if number:
            value[key] = str(number)
    return value


def proto_field(number, payload):
    """A length-delimited field of a message in the binary wire format: a repeated message field is these,
    concatenated (so an answer can be assembled from parts encoded one by one)."""
    tag, length = (number << 3) | 2, len(payload)
    head = bytearray()
    for value in (tag, length):
        while value > 0x7F:
            head.append(value & 0x7F | 0x80)
            value >>= 7
        head.append(value)
    return bytes(head) + payload


def gzip_fast(data):
    """gzip for an answer: level 6 for the usual small ones, level 1 past 256 KiB, where level 6 costs tens of
    milliseconds for a few percent."""
    return gzip.compress(data, compresslevel=6 if len(data) < 256 << 10 else 1, mtime=0)


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
# 12. Pages: the public status page, item pages, the admin page
# ==================================================================================================================
# The public pages are rendered on the server (they work without JavaScript) from status.html, once per change of
# data: the rendered bytes, their ETag and Last-Modified are kept like any other read answer. Every value a user
# typed goes through html.escape.

NOTES_ON_FRONT_PAGE = 3
ITEM_PAGE_NOTES = 50  # notes on one page of /items/<id>
PAGE_MAX_AGE_S = 15  # short enough to be current during an outage, long enough for a proxy to absorb a crowd
ASSET_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")

PAGE_SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
                                "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; "
                                "frame-ancestors 'none'"),
)


class Assets:
    """The page templates: the copies embedded at the end of this module (so the module is a whole deployment),
    or, in devmode, the files of assets/ beside it, re-read on every use so that an edit shows on the next
    request."""

    def __init__(self, devmode=False, directory=ASSET_DIR):
        self._directory = directory if devmode else None
        if devmode and not os.path.isdir(directory):
            raise StartupError(f"--devmode re-reads the page assets from {directory}, which is missing")

    def get(self, name):
        if self._directory is None:
            return EMBEDDED_ASSETS[name]
        try:
            with open(os.path.join(self._directory, name), encoding="utf-8") as file:
                return file.read()
        except OSError as exc:
            raise Internal(f"cannot read the page asset {name}: {exc.strerror or exc}") from None


def _html(text):
    return html.escape(text, quote=True)


def _time(ts, planned=False):
    """A <time> in UTC; the page's optional script turns it into the reader's local and relative time (only the
    local time, for a ``planned`` moment). (Formatted from time.gmtime: a third of datetime's cost, which counts when
    a page shows 40,000 of them.)"""
    moment, kind = time.gmtime(ts.seconds), ' class="at"' if planned else ""
    return (f'<time{kind} datetime="{time.strftime("%Y-%m-%dT%H:%M:%SZ", moment)}">'
            f'{time.strftime("%Y-%m-%d %H:%M UTC", moment)}</time>')


CONDITION_CLASS = {pb.CONDITION_OPERATIONAL: "operational", pb.CONDITION_DEGRADED: "degraded",
                   pb.CONDITION_PARTIAL_OUTAGE: "partial", pb.CONDITION_MAJOR_OUTAGE: "major",
                   pb.CONDITION_MAINTENANCE: "maintenance", pb.CONDITION_UNSPECIFIED: "nodata"}
CONDITION_LABEL = {pb.CONDITION_OPERATIONAL: "Operational", pb.CONDITION_DEGRADED: "Degraded performance",
                   pb.CONDITION_PARTIAL_OUTAGE: "Partial outage", pb.CONDITION_MAJOR_OUTAGE: "Major outage",
                   pb.CONDITION_MAINTENANCE: "Under maintenance", pb.CONDITION_UNSPECIFIED: "No data"}
# A condition is shown by colour, by text and by shape, so that no reader depends on colour alone.
_SHAPES = {pb.CONDITION_OPERATIONAL: '<circle cx="7" cy="7" r="6"/>',
           pb.CONDITION_DEGRADED: '<path d="M7 .5 13.5 13H.5z"/>',
           pb.CONDITION_PARTIAL_OUTAGE: '<path d="M7 0 14 7 7 14 0 7z"/>',
           pb.CONDITION_MAJOR_OUTAGE: '<rect x="1" y="1" width="12" height="12" rx="1.5"/>',
           pb.CONDITION_MAINTENANCE: '<path d="M3.5 1h7L14 7l-3.5 6h-7L0 7z"/>',
           pb.CONDITION_UNSPECIFIED: '<circle cx="7" cy="7" r="5.5" fill="none" stroke="currentColor" '
                                     'stroke-width="1.5"/>'}
NAV = '<a href="/">Current status</a><a href="/history">Incident history</a>'
PAST_INCIDENT_DAYS = 14  # the front page's "Past incidents"
INCIDENTS_SHOWN_A_DAY = 5  # on the front page; /history shows more, and the item pages all
HISTORY_SHOWN_A_DAY = 50  # on /history's months; a day of its own shows more
HISTORY_SHOWN_ONE_DAY = 200
BAR_DAYS = 90  # the uptime bar
BARS_UP_TO_ITEMS = 200  # a front page with more items shows none (10,000 bars would be a page of 100+ MB)
NARROW_BAR_DAYS = 30  # the days it shows on a narrow screen (status.html's CSS counts the same)
_LINK = re.compile(r"https?://[^\s<>&\"']+(?:&amp;[^\s<>&\"']+)*")


def shape(condition):
    return (f'<svg viewBox="0 0 14 14" fill="currentColor" aria-hidden="true" focusable="false">'
            f'{_SHAPES[condition]}</svg>')


def condition_badge(condition, status_name=""):
    """The condition as a reader sees it (shape, text, colour), with the operator's status name when it says more."""
    label = CONDITION_LABEL[condition] if condition != pb.CONDITION_UNSPECIFIED else (status_name or "No status")
    extra = (f' <span class="status-name">({_html(status_name)})</span>'
             if status_name and condition != pb.CONDITION_UNSPECIFIED and status_name.casefold() != label.casefold()
             else "")
    return f'<span class="condition c-{CONDITION_CLASS[condition]}">{shape(condition)}{_html(label)}{extra}</span>'


def linked_text(text):
    """A user's text as HTML: escaped, line breaks kept (by CSS), and http(s) addresses as links; nothing else of
    the text is interpreted."""
    def link(match):
        url = match[0].rstrip(".,;:!?)")
        return f'<a href="{url}" rel="nofollow noopener">{url}</a>{match[0][len(url):]}'
    return _LINK.sub(link, _html(text))


def _duration(seconds):
    """``4000`` -> ``"1 h 6 min"``; under a minute, seconds."""
    if seconds < 60:
        return f"{seconds} s"
    hours, minutes = divmod(seconds // 60, 60)
    days, hours = divmod(hours, 24)
    return " ".join(f"{value} {unit}" for value, unit in ((days, "d"), (hours, "h"), (minutes, "min")) if value) \
        or "0 min"


_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _day_text(day, incidents=0):
    """What a day's mark tells, in words: ``"30 Nov 2026: 12 min major outage, 3 min degraded; 1 incident"``."""
    year, month, day_of_month = day.date.split("-")
    date = f"{int(day_of_month)} {_MONTHS[int(month)]} {year}"  # ("%-d %b %Y" without strftime's cost)
    if not day.observed_seconds and not day.maintenance_seconds:
        return f"{date}: no data"
    parts = [f"{_duration(seconds)} {what}" for seconds, what in (
        (day.major_outage_seconds, "major outage"), (day.partial_outage_seconds, "partial outage"),
        (day.degraded_seconds, "degraded"), (day.maintenance_seconds, "maintenance")) if seconds]
    text = f"{date}: {', '.join(parts) if parts else 'no downtime'}"
    return text + (f"; {incidents} incident{'s' if incidents != 1 else ''}" if incidents else "")


def bar_mark(item_id, day, incidents=0):
    return (f'<li><a href="/items/{item_id}?day={day.date}" class="d-{CONDITION_CLASS[day.worst]}" '
            f'aria-label="{_html(_day_text(day, incidents))}"></a>')  # (</li> is implied)


def uptime_legend(percent, narrow_percent, days):
    """The line under a bar: its first day, the uptime over its days (over the last NARROW_BAR_DAYS where a narrow
    screen shows only those), today."""
    def shown(value):
        return f"{math.floor(value * 100) / 100:.2f} % uptime" if value is not None else "no uptime data"
    return (f'<p class="legend"><span class="long">{days} days ago</span><span class="short">{NARROW_BAR_DAYS} '
            f'days ago</span><span class="long">{shown(percent)}</span><span class="short">{shown(narrow_percent)}'
            f'</span><span>Today</span></p>')


def _notes_html(notes, label):
    if not notes:
        return ""
    entries = "".join(f'<li class="note">{_time(n.timestamps.created)}<p>{linked_text(n.text)}</p></li>' for n in notes)
    return f'<ul class="notes" aria-label="{_html(label)}">{entries}</ul>'


def _condition_of_item(item):
    return item.status.condition if item.HasField("status") else pb.CONDITION_UNSPECIFIED


class ItemSummary(typing.NamedTuple):
    """What the front page needs of an item besides its card: for the top line and the groups."""

    item_id: str
    name: str
    condition: int
    group: str

    @classmethod
    def of(cls, item, condition=None):
        return cls(item.id, item.name, _condition_of_item(item) if condition is None else condition, item.group)


class FrontCard(typing.NamedTuple):
    """An item's card on the front page, kept while the item and the day are the same: all of it but today's
    mark and the uptime figure, and what they are made from."""

    summary: ItemSummary
    head: bytes  # up to the bar's mark for today
    tail: bytes  # after the bar
    past_sums: tuple  # (observed, down) seconds of the days before today
    narrow_sums: tuple  # the same of the days before today that a narrow screen shows
    open_day: OpenDay

    @classmethod
    def of(cls, item, version, past_days=None, incidents_by_day=None, open_day=None, condition=None):
        """The card (``condition``: the one shown, when not its status's); without ``past_days``, one without a
        bar."""
        # The notes of the item's present state: those written since its last status change.
        since = version[VERSION_LAST_CHANGE_NS] or 0
        current = [note for note in item.notes if note.timestamps.created.ToNanoseconds() >= since]
        del item.notes[:]
        item.notes.extend(current)
        head, tail = card_head(item, condition), card_tail(item, version[VERSION_NOTES_COUNT])
        if past_days is None:  # (all of it in head)
            return cls(ItemSummary.of(item, condition), (head + tail).encode(), b"", (0, 0), (0, 0), open_day)
        head += card_bar_start(item, past_days, incidents_by_day, BAR_DAYS)
        return cls(ItemSummary.of(item, condition), head.encode(), tail.encode(), uptime_sums(past_days),
                   uptime_sums(past_days[1 - NARROW_BAR_DAYS:]), open_day)

    def cost(self):
        return len(self.head) + len(self.tail) + 300

    def with_today(self, service, today, now_ns):
        """The whole card, as of ``now_ns``."""
        day = self.open_day.day(service, today, now_ns)
        observed, down = uptime_sums([day])
        percent, narrow_percent = (uptime_percent(sums[0] + observed, sums[1] + down)
                                   for sums in (self.past_sums, self.narrow_sums))
        return b"".join((self.head, bar_mark(self.summary.item_id, day, self.open_day.incidents).encode(),
                         bar_end(percent, narrow_percent, BAR_DAYS).encode(), self.tail))


def card_head(item, condition=None):
    iid = _html(item.id)
    parts = [f'<li class="item" id="item-{iid}"><article aria-labelledby="name-{iid}">',
             f'<div class="item-head"><h2 id="name-{iid}"><a href="/items/{iid}">{_html(item.name)}</a></h2>'
             f'{condition_badge(_condition_of_item(item) if condition is None else condition, item.status.name)}</div>']
    if item.description:
        parts.append(f'<p class="description">{_html(item.description)}</p>')
    return "".join(parts)


def card_bar_start(item, past_days, incidents_by_day, days):
    """The bar's opening and its marks for the days before today."""
    marks = "".join(bar_mark(item.id, day, incidents_by_day.get(day.date, 0)) for day in past_days)
    return (f'<div class="uptime"><ol class="bar" aria-label="{_html(item.name)}: uptime of the last {days} days, '
            f'one mark a day">{marks}')


def bar_end(percent, narrow_percent, days):
    return f"</ol>{uptime_legend(percent, narrow_percent, days)}</div>"


def uptime_bar(item, days, incidents_by_day):
    """A whole uptime bar (days: UptimeDays, oldest first) with its legend."""
    return card_bar_start(item, days, incidents_by_day, len(days)) + bar_end(
        uptime_percent(*uptime_sums(days)), uptime_percent(*uptime_sums(days[-NARROW_BAR_DAYS:])), len(days))


def card_tail(item, notes_total):
    parts = [f'<p class="changed">Updated {_time(item.timestamps.updated)}</p>',
             _notes_html(item.notes, f"Updates on {item.name}")]
    if notes_total > len(item.notes):
        parts.append(f'<p class="more"><a href="/items/{_html(item.id)}">All {notes_total} updates on '
                     f'{_html(item.name)}</a></p>')
    parts.append("</article></li>")
    return "".join(parts)


def overall_line(summaries):
    """(condition, sentence): the one line people read first, from the worst current condition, naming the items
    that have problems (or maintenance)."""
    if not summaries:
        return pb.CONDITION_UNSPECIFIED, "No systems are listed yet."
    worst_condition = worst(summary.condition for summary in summaries)
    if worst_condition in CALM:
        return pb.CONDITION_OPERATIONAL, "All systems operational"
    parts = []
    for condition in (pb.CONDITION_MAJOR_OUTAGE, pb.CONDITION_PARTIAL_OUTAGE, pb.CONDITION_DEGRADED,
                      pb.CONDITION_MAINTENANCE):
        names = [summary.name for summary in summaries if summary.condition == condition]
        if names:
            parts.append(f"{CONDITION_LABEL[condition]}: {', '.join(names)}")
    return worst_condition, "; ".join(parts)


def overall_html(condition, sentence):
    return (f'<section aria-label="Overall status"><p class="overall c-{CONDITION_CLASS[condition]}" role="status">'
            f'{shape(condition)}<span>{_html(sentence)}</span></p></section>')


def systems_html(entries):
    """The items (entries: [(ItemSummary, card bytes)]) in the operator's order, a group folded into <details> at
    the place of its first item: open when something in it has a problem."""
    out = [b'<section aria-label="Systems"><ul class="items">']
    groups = {}
    for summary, card in entries:
        if summary.group:
            groups.setdefault(summary.group, []).append((summary, card))
    if not groups:  # (the common case, and with 10,000 items the one where time counts)
        out.extend(card for _, card in entries)
    for summary, card in entries if groups else ():
        if not summary.group:
            out.append(card)
            continue
        members = groups.pop(summary.group, None)
        if members is None:  # (a later member of a group already written)
            continue
        condition = worst(member.condition for member, _ in members)
        slug = hashlib.sha256(summary.group.encode()).hexdigest()[:10]
        out.append(f'<li><details class="group" id="group-{slug}"{" open" if condition in TROUBLED else ""}>'
                   f'<summary><span>{_html(summary.group)} <span class="meta">({len(members)})</span></span>'
                   f'{condition_badge(condition)}</summary><ul class="items">'.encode())
        out.extend(card for _, card in members)
        out.append(b"</ul></details></li>")
    out.append(b"</ul></section>")
    return out


def updates_html(changes, notes):
    """Status changes and notes as one list of updates, newest first, each change with the note written with it."""
    entries = []
    for update in merge_updates(changes, notes):
        parts = [f'<li>{_time(update.at)}']
        if update.change is not None:
            parts.append(f'<p class="change">{condition_badge(update.condition, update.change.new_status.name)}</p>')
        if update.note is not None:
            parts.append(f'<p>{linked_text(update.note.text)}</p>')
        entries.append("".join(parts) + "</li>")
    return f'<ol class="updates">{"".join(entries)}</ol>' if entries else ""


def incident_html(incident, zone, now_ns):
    """An incident as the front page and /history show it: its item, worst condition, span, and updates."""
    started = incident.started_at.ToNanoseconds()
    if incident.HasField("resolved_at"):
        span = f"resolved after {_duration((incident.resolved_at.ToNanoseconds() - started) // 10 ** 9)}"
    else:
        span = f"<strong>ongoing</strong>, for {_duration((now_ns - started) // 10 ** 9)}"
    return (f'<article class="incident b-{CONDITION_CLASS[incident.worst]}"><h4><a href="/incidents/'
            f'{_html(incident.id)}">{_html(incident_title(incident))}</a></h4><p class="meta">Started '
            f'{_time(incident.started_at)}, {span}</p>{updates_html(incident.changes, incident.notes)}</article>')


def render_incident_page(template, title, zone, incident, now_ns):
    """/incidents/<id>: one incident with every update, and links to its item and its day."""
    day = zone.day_of(incident.started_at.ToNanoseconds())
    content = (f'<p><a href="/history?month={day:%Y-%m}#day-{day.isoformat()}">&larr; Incidents of {day:%B %Y}</a>'
               f'</p><h2>{_html(incident_title(incident))}</h2>{incident_html(incident, zone, now_ns)}'
               f'<p><a href="/items/{_html(incident.item_id)}?day={day.isoformat()}">{_html(incident.item_name)} on '
               f'{day:%-d %B %Y}</a> · <a href="/items/{_html(incident.item_id)}">Its whole timeline</a></p>')
    return _fill(template, title, content, now_ns, page_title=f"{incident_title(incident)} · {title}",
                 zone_name=zone.name).encode()


def incidents_by_day_html(days, zone, now_ns, empty="No incidents reported."):
    """A heading for each day of ``days`` ([(day, its incidents shown, how many it had)], newest first) with its
    incidents, or ``empty`` when it had none, and a link to the rest when not all are shown."""
    out = []
    for day, incidents, total in days:
        body = "".join(incident_html(incident, zone, now_ns) for incident in incidents) or \
            f'<p class="empty">{empty}</p>'
        if total > len(incidents):
            body += (f'<p class="more"><a href="/history?day={day.isoformat()}">All {total} incidents of this day'
                     f'</a></p>')
        out.append(f'<div class="incidents-day" id="day-{day.isoformat()}"><h3>{day.strftime("%-d %B %Y")}</h3>'
                   f'{body}</div>')
    return "".join(out)


def _query_number(text, name, low, high):
    """A whole-number query parameter from ``low`` to ``high``, or None when it is not given."""
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise InvalidArgument(f"{name} must be a whole number from {low} to {high}")
    return int(text)


def parse_day(text):
    """A ``day`` query parameter (2026-11-30) as a date; InvalidArgument otherwise."""
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return datetime.date.fromisoformat(text)
    except ValueError:
        pass
    raise InvalidArgument("day must be a date written like 2026-11-30")


def parse_month(text):
    """A ``month`` query parameter (2026-11) as the date of its first day; InvalidArgument otherwise."""
    try:
        if re.fullmatch(r"\d{4}-\d{2}", text):
            return datetime.date.fromisoformat(text + "-01")
    except ValueError:
        pass
    raise InvalidArgument("month must be written like 2026-11")


FEED_LINKS = ('<link rel="alternate" type="application/atom+xml" title="Incident history (Atom)" href="/history.atom">'
              '<link rel="alternate" type="application/rss+xml" title="Incident history (RSS)" href="/history.rss">')


def _fill(template, title, content, now_ns, page_title=None, zone_name="UTC", head=FEED_LINKS):
    moment = datetime.datetime.fromtimestamp(now_ns / 1e9, datetime.timezone.utc)
    return fill_template(template, {
        "page_title": _html(page_title or title), "title": _html(title), "content": content, "nav": NAV,
        "head": head, "time_zone": _html(zone_name),
        "rendered_iso": moment.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "rendered_text": moment.strftime("%Y-%m-%d %H:%M UTC")})


_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def fill_template(template, values):
    """``{{name}}`` placeholders of the template replaced in one pass, so nothing inside a value (a user's text
    that happens to read "{{title}}") is ever taken for a placeholder; an unknown name is left as it is."""
    return _PLACEHOLDER.sub(lambda match: values.get(match[1], match[0]), template)


def render_status_page(template, title, entries, incidents_html, zone_name, as_of_ns, maintenance_html="",
                       subscribe_html=""):
    """The front page, as bytes, from [(ItemSummary, card bytes)] and the past incidents' HTML: the cards are joined
    as they are, not decoded and encoded again."""
    condition, sentence = overall_line([summary for summary, _ in entries])
    content = (overall_html(condition, sentence) + maintenance_html + _CARDS
               + f'<section aria-labelledby="past"><h2 id="past">Past incidents</h2>{incidents_html}'
                 f'<p class="more"><a href="/history">Incident history &rarr;</a></p></section>' + subscribe_html)
    page = _fill(template, title, content, as_of_ns, zone_name=zone_name)
    before, _, after = page.partition(_CARDS)
    return b"".join((before.encode(), *(systems_html(entries) if entries else ()), after.encode()))


_CARDS = "<!--cards-->"  # where the cards go (a user's text is escaped, so it never holds "<!--")
MAINTENANCES_SHOWN = 10  # on the front page: those going on, then the next ones


def maintenance_html(records, names, now_ns):
    """The front page's "Scheduled maintenance": windows going on, then upcoming ones, with what they affect."""
    if not records:
        return ""
    articles = []
    for record in records[:MAINTENANCES_SHOWN]:
        if record.starts_ns <= now_ns:
            when = f"<strong>In progress</strong>, until {_time(timestamp(record.ends_ns), planned=True)}"
        else:
            when = (f"From {_time(timestamp(record.starts_ns), planned=True)} to "
                    f"{_time(timestamp(record.ends_ns), planned=True)}")
        affected = ", ".join(_html(names[item_id]) for item_id in record.item_ids if item_id in names) \
            if record.item_ids else "all systems"
        articles.append(f'<article class="incident b-maintenance" id="maintenance-{_html(record.id)}"><h3>'
                        f'{_html(record.title)}</h3><p class="meta">{when}</p><p>Affects {affected}.</p>'
                        + (f'<p>{linked_text(record.description)}</p>' if record.description else "") + "</article>")
    return (f'<section aria-labelledby="maintenance"><h2 id="maintenance">Scheduled maintenance</h2>'
            f'{"".join(articles)}</section>')


def subscribe_html(items):
    """The form to be told by e-mail: of the whole page, or (a few dozen items at most) of some systems."""
    choices = ""
    if 0 < len(items) <= BARS_UP_TO_ITEMS:
        boxes = "".join(f'<label class="choice"><input type="checkbox" name="items" value="{_html(item.id)}"> '
                        f'{_html(item.name)}</label>' for item in items)
        choices = (f'<details><summary>Only some systems</summary><fieldset><legend>Tell me about</legend>{boxes}'
                   f'</fieldset></details>')
    return ('<section aria-labelledby="subscribe"><h2 id="subscribe">Get updates by e-mail</h2>'
            '<form method="post" action="/subscribe" class="subscribe"><label>E-mail address <input type="email" '
            f'name="email" required maxlength="254" autocomplete="email"></label>{choices}'
            '<button class="button">Subscribe</button></form><p class="meta">A link to confirm comes first; every '
            'e-mail has a link to stop them.</p></section>')


def render_missing_page(template, title):
    content = '<p class="overall c-nodata">There is no such page here.</p><p><a href="/">&larr; All systems</a></p>'
    return _fill(template, title, content, CLOCK.now_ns(), page_title=f"Not found · {title}")


def render_item_page(template, title, zone_name, item, bar_html, entries, older, day=None, on_day=None,
                     condition=None):
    """An item's page: its card with the 90-day bar, and its timeline (status changes and notes as updates, newest
    first), one page of it (``older``: where the next page starts) or one ``day`` of it (``on_day``: that day's
    UptimeDay, when it is within the bar)."""
    iid = _html(item.id)
    timeline = updates_html([entry for entry in entries if isinstance(entry, pb.StatusChange)],
                            [entry for entry in entries if isinstance(entry, pb.Note)])
    heading = f"Timeline of {day.strftime('%-d %B %Y')}" if day else "Timeline"
    content = ['<p><a href="/">&larr; All systems</a></p><ul class="items">', card_head(item, condition), bar_html,
               f'<p class="changed">Updated {_time(item.timestamps.updated)}</p></article></li></ul>',
               f'<section aria-labelledby="timeline"><h2 id="timeline">{heading}</h2>']
    if on_day is not None:
        content.append(f'<p class="meta">{_html(_day_text(on_day))}</p>')
    content.append(timeline or ('<p class="empty">Nothing happened on this day.</p>' if day else
                                '<p class="empty">No updates on this system yet.</p>'))
    pager = []
    if day:
        pager.append(f'<a href="/items/{iid}">&larr; The whole timeline</a>')
    if older:
        pager.append(f'<a rel="next" href="/items/{iid}?before={_html(older)}'
                     f'{"&amp;day=" + day.isoformat() if day else ""}">Older updates &rarr;</a>')
    content.append(f'<nav class="pager" aria-label="Timeline pages">{"".join(pager)}</nav></section>' if pager else
                   "</section>")
    return _fill(template, title, "".join(content), item.timestamps.updated.ToNanoseconds(),
                 page_title=f"{item.name} · {title}", zone_name=zone_name).encode()


def render_history_page(template, title, zone, first, days, now_ns, first_incident_day, one_day=False):
    """/history: the incidents of a month (``first``: its first day), a heading for each day that had some, with
    links to the months around it; or (``one_day``) every incident of the day ``first``, up to a limit."""
    this_month = zone.day_of(now_ns).replace(day=1)
    month = first.replace(day=1)
    if one_day:
        _, incidents, total = days[0]
        heading = f"Incidents on {first:%-d %B %Y}"
        body = "".join(incident_html(incident, zone, now_ns) for incident in incidents) or \
            f'<p class="empty">No incidents reported on {first:%-d %B %Y}.</p>'
        if total > len(incidents):
            body += (f'<p class="more">The newest {len(incidents)} of {total} are shown here; the API\'s '
                     f'ListIncidents lists every one.</p>')
    else:
        heading = f"Incidents in {month:%B %Y}"
        had = [entry for entry in days if entry[2]]
        body = incidents_by_day_html(had, zone, now_ns) if had else \
            f'<p class="empty">No incidents reported in {month:%B %Y}.</p>'
    previous = (month - datetime.timedelta(days=1)).replace(day=1)
    following = (month + datetime.timedelta(days=32)).replace(day=1)
    pager = []
    if first_incident_day is not None and first_incident_day < month:
        pager.append(f'<a href="/history?month={previous:%Y-%m}">&larr; {previous:%B %Y}</a>')
    if one_day or month < this_month:
        shown = month if one_day else following
        pager.append(f'<a href="/history?month={shown:%Y-%m}">{shown:%B %Y} &rarr;</a>')
    content = f'<h2>{heading}</h2>{body}<nav class="pager" aria-label="Months">{"".join(pager)}</nav>'
    return _fill(template, title, content, now_ns, page_title=f"Incident history · {title}",
                 zone_name=zone.name).encode()


# ==================================================================================================================
# 13. Outside formats: Statuspage JSON, Atom and RSS, badges, Prometheus text
# ==================================================================================================================
# What other programs already read, each exactly as they expect it (../shared/research/formats.md): Atlassian
# Statuspage's public v2 JSON, its history feeds, shields.io-style badges and endpoint JSON, and Prometheus's text
# exposition format. Pure functions from service records to bytes; the Site (section 15) keeps their answers.

SP_STATUS = {pb.CONDITION_OPERATIONAL: "operational", pb.CONDITION_DEGRADED: "degraded_performance",
             pb.CONDITION_PARTIAL_OUTAGE: "partial_outage", pb.CONDITION_MAJOR_OUTAGE: "major_outage",
             pb.CONDITION_MAINTENANCE: "under_maintenance"}
SP_IMPACT = {pb.CONDITION_DEGRADED: "minor", pb.CONDITION_PARTIAL_OUTAGE: "major",
             pb.CONDITION_MAJOR_OUTAGE: "critical", pb.CONDITION_MAINTENANCE: "maintenance"}
SP_INCIDENTS_LISTED = 50  # incidents.json and the feeds: the most recent, as Statuspage lists them


def sp_time(ns):
    """Statuspage's times: ISO 8601 in UTC with milliseconds."""
    return utc_iso(ns, "milliseconds")


def group_id(group):
    """A group's stable id (groups are names, not records): the same for the same name."""
    return "group-" + hashlib.sha256(group.encode()).hexdigest()[:10]


def sp_component(item, page_id, position, zone, condition):
    """An item as a Statuspage component, in the condition shown. An item in no condition (no status, CREATED,
    DECOMM) has no Statuspage status: it is listed as operational with ``only_show_if_degraded``, which hides it."""
    created = item.timestamps.created.ToNanoseconds()
    return {"id": item.id, "name": item.name, "status": SP_STATUS.get(condition, "operational"),
            "created_at": sp_time(created), "updated_at": sp_time(item.timestamps.updated.ToNanoseconds()),
            "position": position, "description": item.description or None, "showcase": True,
            "start_date": zone.day_of(created).isoformat(), "group_id": group_id(item.group) if item.group else None,
            "page_id": page_id, "group": False, "only_show_if_degraded": condition == pb.CONDITION_UNSPECIFIED}


def sp_components(items, page_id, zone, conditions):
    """Every item as a component, in the page's order; each group as a row of its own (``group: true``, its
    members' ids in ``components``) where its first member stands, its members after it."""
    members = {}
    for item in items:
        if item.group:
            members.setdefault(item.group, []).append(item)
    rows, done = [], set()
    for item in items:
        if item.group and item.group not in done:
            done.add(item.group)
            group = members[item.group]
            rows.append({"id": group_id(item.group), "name": item.group,
                         "status": SP_STATUS.get(worst(conditions[member.id] for member in group), "operational"),
                         "created_at": sp_time(min(m.timestamps.created.ToNanoseconds() for m in group)),
                         "updated_at": sp_time(max(m.timestamps.updated.ToNanoseconds() for m in group)),
                         "position": len(rows) + 1, "description": None, "showcase": False, "start_date": None,
                         "group_id": None, "page_id": page_id, "group": True, "only_show_if_degraded": False,
                         "components": [member.id for member in group]})
            rows.extend(sp_component(member, page_id, len(rows) + 1, zone, conditions[member.id]) for member in group)
        elif not item.group:
            rows.append(sp_component(item, page_id, len(rows) + 1, zone, conditions[item.id]))
    return rows


def sp_indicator(components):
    """The page's status from its (non-group, shown) components, by Statuspage's rules: {indicator, description}."""
    statuses = [row["status"] for row in components if not row["group"] and not row["only_show_if_degraded"]]
    def share(status):
        count = statuses.count(status)
        return "all" if statuses and count == len(statuses) else "some" if count else "none"
    if share("major_outage") == "all":
        return {"indicator": "critical", "description": "Major System Outage"}
    if share("major_outage") == "some" or share("partial_outage") == "all":
        return {"indicator": "major", "description": "Partial System Outage"}
    if share("partial_outage") == "some":
        return {"indicator": "minor", "description": "Minor Service Outage"}
    if share("degraded_performance") == "all":
        return {"indicator": "minor", "description": "Degraded System Service"}
    if share("degraded_performance") == "some":
        return {"indicator": "minor", "description": "Partially Degraded Service"}
    if share("under_maintenance") != "none":
        return {"indicator": "maintenance", "description": "Service Under Maintenance"}
    return {"indicator": "none", "description": "All Systems Operational"}


def update_body(update, item_name):
    """What an update says: its note, or (a change without one) the change in words."""
    if update.note is not None:
        return update.note.text
    return f"{item_name} is {CONDITION_WORDS[update.condition]} ({update.change.new_status.name or 'no status'})."


def update_label(update, incident):
    """Statuspage's word for an update: Investigating (the opening one), Resolved (the closing one), else Update."""
    if update.change is not None and update.change.id == incident.id:
        return "Investigating"
    if update.change is not None and update.condition in CALM:
        return "Resolved"
    return "Update"


def sp_incident(incident, components_by_id, page_id, origin):
    """An incident as Statuspage's: investigating until resolved; its updates (newest first) from its status
    changes and notes, a change's update naming the component it moved."""
    resolved = incident.HasField("resolved_at")
    updates = merge_updates(incident.changes, incident.notes)
    started = incident.started_at.ToNanoseconds()
    last = max([started] + [update.at.ToNanoseconds() for update in updates])
    sp_updates = []
    for index, update in enumerate(updates):
        at = sp_time(update.at.ToNanoseconds())
        closing = resolved and index == 0 and update_label(update, incident) == "Resolved"
        affected = None
        if update.change is not None:
            old = update.change.old_status.condition if update.change.HasField("old_status") else 0
            affected = [{"code": incident.item_id, "name": incident.item_name,
                         "old_status": SP_STATUS.get(old, "operational"),
                         "new_status": SP_STATUS.get(update.condition, "operational")}]
        sp_updates.append({
            "id": (update.note or update.change).id, "status": "resolved" if closing else "investigating",
            "body": update_body(update, incident.item_name), "incident_id": incident.id, "created_at": at,
            "updated_at": at, "display_at": at, "affected_components": affected, "deliver_notifications": True,
            "custom_tweet": None, "tweet_id": None})
    component = components_by_id.get(incident.item_id)
    return {"id": incident.id, "name": incident_title(incident), "status": "resolved" if resolved else "investigating",
            "created_at": sp_time(started), "updated_at": sp_time(last), "monitoring_at": None,
            "resolved_at": sp_time(incident.resolved_at.ToNanoseconds()) if resolved else None,
            "impact": SP_IMPACT.get(incident.worst, "none"), "shortlink": f"{origin}/incidents/{incident.id}",
            "started_at": sp_time(started), "page_id": page_id, "incident_updates": sp_updates,
            "components": [component] if component else []}


def maintenance_updates(record, now_ns):
    """A window's updates as readers see them, newest first: (time, label, Statuspage status, text)."""
    updates = [(record.created_ns, "Scheduled", "scheduled", record.description or
                f"{record.title}: scheduled from {utc_iso(record.starts_ns, 'minutes')} to "
                f"{utc_iso(record.ends_ns, 'minutes')} UTC.")]
    if record.starts_ns <= now_ns:
        updates.append((record.starts_ns, "In progress", "in_progress", "The maintenance is in progress."))
    if record.ends_ns <= now_ns:
        updates.append((record.ends_ns, "Completed", "completed", "The maintenance is completed."))
    return updates[::-1]


SP_MAINTENANCE_STATE = {pb.MAINTENANCE_STATE_SCHEDULED: "scheduled", pb.MAINTENANCE_STATE_IN_PROGRESS: "in_progress",
                        pb.MAINTENANCE_STATE_COMPLETED: "completed", pb.MAINTENANCE_STATE_CANCELLED: "completed"}


def sp_maintenance(record, now_ns, components_by_id, page_id, origin):
    """A maintenance window as Statuspage's scheduled maintenance: an incident with impact "maintenance" and its
    window (scheduled_for, scheduled_until)."""
    updates = maintenance_updates(record, now_ns)
    ended = record.ends_ns <= now_ns
    return {"id": record.id, "name": record.title, "status": SP_MAINTENANCE_STATE[record.state_at(now_ns)],
            "created_at": sp_time(record.created_ns), "updated_at": sp_time(max(record.updated_ns, updates[0][0])),
            "monitoring_at": None, "resolved_at": sp_time(record.ends_ns) if ended else None, "impact": "maintenance",
            "shortlink": f"{origin}/#maintenance-{record.id}", "started_at": sp_time(record.starts_ns),
            "page_id": page_id,
            "incident_updates": [{"id": f"{record.id}-{status}", "status": status, "body": text,
                                  "incident_id": record.id, "created_at": sp_time(at), "updated_at": sp_time(at),
                                  "display_at": sp_time(at), "affected_components": None,
                                  "deliver_notifications": True, "custom_tweet": None, "tweet_id": None}
                                 for at, _, status, text in updates],
            "components": [components_by_id[item_id] for item_id in record.item_ids if item_id in components_by_id]
            if record.item_ids else [row for row in components_by_id.values() if not row["group"]],
            "scheduled_for": sp_time(record.starts_ns), "scheduled_until": sp_time(record.ends_ns)}


def sp_page(page_id, title, origin, zone, updated_ns):
    return {"id": page_id, "name": title, "url": origin, "time_zone": zone.name, "updated_at": sp_time(updated_ns)}


# -- feeds: Statuspage's /history.atom and /history.rss --------------------------------------------------------------

def feed_entry_html(incident):
    """An incident's updates, newest first, as the HTML Statuspage puts in a feed entry (escaped by the caller)."""
    parts = []
    for update in merge_updates(incident.changes, incident.notes):
        moment = time.gmtime(update.at.seconds)
        parts.append(f"<p><small>{time.strftime('%b', moment)} <var data-var='date'>{moment.tm_mday}</var>, "
                     f"<var data-var='time'>{time.strftime('%H:%M', moment)}</var> UTC</small><br><strong>"
                     f"{update_label(update, incident)}</strong> - {_html(update_body(update, incident.item_name))}"
                     "</p>")
    return "".join(parts)


def _last_update_ns(incident):
    return max([incident.started_at.ToNanoseconds()] + [update.at.ToNanoseconds() for update in
                                                          merge_updates(incident.changes, incident.notes)])


def maintenance_entry_html(record, now_ns):
    parts = []
    for at, label, _, text in maintenance_updates(record, now_ns):
        moment = time.gmtime(at // 10 ** 9)
        parts.append(f"<p><small>{time.strftime('%b', moment)} <var data-var='date'>{moment.tm_mday}</var>, "
                     f"<var data-var='time'>{time.strftime('%H:%M', moment)}</var> UTC</small><br><strong>{label}"
                     f"</strong> - {_html(text)}</p>")
    return "".join(parts)


def feed_entries(incidents, maintenances, origin, now_ns):
    """(id suffix, title, published ns, updated ns, link, content HTML) of every entry, newest update first."""
    entries = [(f"Incident/{incident.id}", incident_title(incident), incident.started_at.ToNanoseconds(),
                _last_update_ns(incident), f"{origin}/incidents/{incident.id}", feed_entry_html(incident))
               for incident in incidents]
    entries += [(f"Maintenance/{record.id}", f"Maintenance: {record.title}", record.created_ns,
                 max(record.updated_ns, maintenance_updates(record, now_ns)[0][0]),
                 f"{origin}/#maintenance-{record.id}",
                 maintenance_entry_html(record, now_ns)) for record in maintenances]
    return sorted(entries, key=lambda entry: entry[3], reverse=True)


def atom_feed(incidents, title, origin, page_updated_ns, maintenances=(), now_ns=0):
    """Atom (RFC 4287) in Statuspage's shape: one entry per incident, with stable ids; the feed's ``updated`` is
    its newest entry's (so an unchanged feed keeps its bytes, and its ETag)."""
    host = urllib.parse.urlsplit(origin).hostname  # (a tag: URI names a domain, without a port)
    entries = feed_entries(incidents, maintenances, origin, now_ns)
    newest = max([entry[3] for entry in entries], default=page_updated_ns)
    name = _xml(f"{title} Status - Incident History")
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n<feed xml:lang="en-US" xmlns="http://www.w3.org/2005/Atom">',
           f"<id>tag:{_xml(host)},2005:/history</id>",
           f'<link rel="alternate" type="text/html" href="{_xml(origin)}"/>',
           f'<link rel="self" type="application/atom+xml" href="{_xml(origin)}/history.atom"/>',
           f"<title>{name}</title><updated>{utc_iso(newest, 'seconds')}</updated>",
           f"<author><name>{_xml(title)}</name></author>"]
    for suffix, entry_title, published, updated, link, content in entries:
        out.append(f"<entry><id>tag:{_xml(host)},2005:{_xml(suffix)}</id>"
                   f"<published>{utc_iso(published, 'seconds')}</published>"
                   f"<updated>{utc_iso(updated, 'seconds')}</updated>"
                   f'<link rel="alternate" type="text/html" href="{_xml(link)}"/>'
                   f"<title>{_xml(entry_title)}</title>"
                   f'<content type="html">{_xml(content)}</content></entry>')
    out.append("</feed>\n")
    return "\n".join(out).encode()


def rss_feed(incidents, title, origin, page_updated_ns, maintenances=(), now_ns=0):
    """RSS 2.0 in Statuspage's shape: an item per incident (and maintenance), its guid the incident's address."""
    entries = feed_entries(incidents, maintenances, origin, now_ns)
    newest = max([entry[3] for entry in entries], default=page_updated_ns)
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" '
           'xmlns:atom="http://www.w3.org/2005/Atom"><channel>',
           f"<title>{_xml(title)} Status - Incident History</title><link>{_xml(origin)}</link>"
           f"<description>{_xml(title)} Status - Incident History</description>"
           f"<pubDate>{email.utils.formatdate(newest / 1e9)}</pubDate>"
           f'<atom:link href="{_xml(origin)}/history.rss" rel="self" type="application/rss+xml"/>']
    for _, entry_title, published, _, link, content in entries:
        out.append(f"<item><title>{_xml(entry_title)}</title><description>{_xml(content)}</description>"
                   f"<pubDate>{email.utils.formatdate(published / 1e9)}</pubDate>"
                   f"<link>{_xml(link)}</link><guid>{_xml(link)}</guid></item>")
    out.append("</channel></rss>\n")
    return "\n".join(out).encode()


def _xml(text):
    """Text for XML: escaped, and without the characters XML 1.0 cannot carry at all."""
    return _XML_FORBIDDEN.sub("\ufffd", html.escape(text, quote=True))


_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


# -- badges: flat SVG like shields.io, and shields.io's endpoint JSON --------------------------------------------------

# Widths in pixels of the printable ASCII characters at 11 px in DejaVu Sans, the badges' first font
# (tools/badge_widths.py); any other character counts as wide as "W". textLength makes any other font fit too.
_CHAR_WIDTHS = dict(zip(map(chr, range(32, 127)), map(float, (
    "3.5 4.4 5.1 9.2 7.0 10.5 8.6 3.0 4.3 4.3 5.5 9.2 3.5 4.0 3.5 3.7 7.0 7.0 7.0 7.0 7.0 7.0 7.0 7.0 7.0 7.0 3.7 3.7 "
    "9.2 9.2 9.2 5.8 11.0 7.5 7.5 7.7 8.5 7.0 6.3 8.5 8.3 3.2 3.2 7.2 6.1 9.5 8.2 8.7 6.6 8.7 7.6 7.0 6.7 8.1 7.5 "
    "10.9 7.5 6.7 7.5 4.3 3.7 4.3 9.2 5.5 5.5 6.7 7.0 6.0 7.0 6.8 3.9 7.0 7.0 3.1 3.1 6.4 3.1 10.7 7.0 6.7 7.0 7.0 "
    "4.5 5.7 4.3 7.0 6.5 9.0 6.5 6.5 5.8 7.0 3.7 7.0 9.2").split())))
BADGE_COLORS = {pb.CONDITION_OPERATIONAL: ("#3c1", "brightgreen"), pb.CONDITION_DEGRADED: ("#dfb317", "yellow"),
                pb.CONDITION_PARTIAL_OUTAGE: ("#fe7d37", "orange"), pb.CONDITION_MAJOR_OUTAGE: ("#e05d44", "red"),
                pb.CONDITION_MAINTENANCE: ("#007ec6", "blue"), pb.CONDITION_UNSPECIFIED: ("#9f9f9f", "lightgrey")}
MAX_BADGE_TEXT = 60  # characters of a label or message drawn (a long item name is cut)


def text_width(text):
    return sum(_CHAR_WIDTHS.get(char, 10.9) for char in text)


def badge_svg(label, message, color):
    """A flat badge, 20 px high: ``label`` on grey, ``message`` on ``color``; readable by screen readers."""
    label, message = (text if len(text) <= MAX_BADGE_TEXT else text[:MAX_BADGE_TEXT - 1] + "…"
                      for text in (label, message))
    left, right = (math.ceil(text_width(text)) + 10 for text in (label, message))
    width = left + right
    dark_text = _brightness(color) > 0.69
    words = _xml(f"{label}: {message}")
    def text(x, value, fill):
        scaled = math.ceil(text_width(value)) * 10
        return (f'<text x="{x * 10}" y="140" transform="scale(.1)" fill="{fill}" textLength="{scaled}">'
                f'{_xml(value)}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" aria-label="{words}">'
            f'<title>{words}</title><linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" '
            f'stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient><clipPath id="r"><rect '
            f'width="{width}" height="20" rx="3" fill="#fff"/></clipPath><g clip-path="url(#r)"><rect width="{left}" '
            f'height="20" fill="#555"/><rect x="{left}" width="{right}" height="20" fill="{color}"/><rect '
            f'width="{width}" height="20" fill="url(#s)"/></g><g fill="#fff" text-anchor="middle" font-family="DejaVu '
            f'Sans,Verdana,Geneva,sans-serif" text-rendering="geometricPrecision" font-size="110">'
            + text(left / 2, label, "#fff")
            + text(left + right / 2, message, "#333" if dark_text else "#fff") + "</g></svg>").encode()


def _brightness(color):
    """0 (black) to 1 (white), from a #rgb or #rrggbb colour."""
    digits = color.lstrip("#")
    if len(digits) == 3:
        digits = "".join(char * 2 for char in digits)
    red, green, blue = (int(digits[index:index + 2], 16) for index in (0, 2, 4))
    return (red * 299 + green * 587 + blue * 114) / 255000


def uptime_color(percent):
    """Gatus's steps, from green (≥ 99.9 %) to red."""
    if percent is None:
        return BADGE_COLORS[pb.CONDITION_UNSPECIFIED][0]
    for floor, color in ((99.9, "#4c1"), (99.0, "#97ca00"), (97.5, "#a4a61d"), (95.0, "#dfb317"), (90.0, "#fe7d37")):
        if percent >= floor:
            return color
    return "#e05d44"


def shield_json(label, message, color_name, cache_seconds):
    """shields.io's endpoint JSON: its four keys and cacheSeconds, nothing else (it refuses unknown keys)."""
    return json_bytes({"schemaVersion": 1, "label": label, "message": message, "color": color_name,
                       "cacheSeconds": cache_seconds})


# -- Prometheus: the text exposition format 0.0.4 -----------------------------------------------------------------

PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"


def prometheus_label(value):
    return str(value).replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def prometheus_family(name, kind, help_text, samples):
    """One metric family: its HELP and TYPE lines and samples [(suffix, {label: value}, number)]."""
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for suffix, labels, value in samples:
        text = ",".join(f'{key}="{prometheus_label(label)}"' for key, label in labels.items())
        number = repr(float(value)) if isinstance(value, float) else str(value)
        lines.append(f"{name}{suffix}{{{text}}} {number}" if text else f"{name}{suffix} {number}")
    return "\n".join(lines) + "\n"


# ==================================================================================================================
# 14. Request log
# ==================================================================================================================
# One JSON line per request on stdout, for people and for log shippers alike.

def utc_now_iso():
    return utc_iso(time.time_ns())


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
        self._closing = threading.Event()  # cuts the wait between batches short

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
            # Bytes, with anything UTF-8 cannot carry (a lone surrogate) escaped: one odd line cannot cost the
            # lines written with it.
            data = "".join(line for line in batch if line is not None).encode("utf-8", "backslashreplace")
            try:
                if hasattr(stream, "buffer"):
                    stream.flush()  # (what was printed to the text layer goes first)
                    stream.buffer.write(data)
                    stream.buffer.flush()
                else:
                    stream.write(data.decode("utf-8"))
                    stream.flush()
            except (OSError, ValueError):
                pass  # a closed stdout must not stop the server
            if None in batch:
                return
            self._closing.wait(self.FLUSH_INTERVAL_S)

    def close(self):
        """Write everything queued so far, then stop the writer thread."""
        if self._thread is not None:
            self._lines.put(None)
            self._closing.set()
            self._thread.join(5)
            self._thread = None
            self._closing.clear()


LOG = LogWriter()


def log(**fields):
    LOG.write(json.dumps({"time": utc_now_iso(), **fields}, ensure_ascii=False) + "\n")


class RequestMetrics:
    """Requests answered, by protocol, method and code, and how long they took (a histogram per protocol), for
    /metrics. Counted under one short lock: a few hundred nanoseconds a request."""

    BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
    METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})

    def __init__(self):
        self._lock = threading.Lock()
        self._counts = collections.Counter()  # (protocol, method, code) -> requests
        self._histograms = {}  # protocol -> [count per bucket (not cumulative)..., over the last, sum of seconds]

    def observe(self, protocol, method, code, seconds):
        """``method``: the HTTP method (others are counted as "other"), or for gRPC the RPC's name."""
        if protocol == "http" and method not in self.METHODS:
            method = "other" if method else "none"
        with self._lock:
            self._counts[(protocol, method, str(code))] += 1
            if seconds is not None:
                counts = self._histograms.setdefault(protocol, [0] * (len(self.BUCKETS) + 2))
                counts[bisect.bisect_left(self.BUCKETS, seconds)] += 1
                counts[-1] += seconds

    def families(self):
        with self._lock:
            counts, histograms = dict(self._counts), {key: list(value) for key, value in self._histograms.items()}
        text = prometheus_family("statusthing_requests_total", "counter", "Requests answered.", [
            ("", {"protocol": protocol, "method": method, "code": code}, number)
            for (protocol, method, code), number in sorted(counts.items())])
        samples = []
        for protocol, buckets in sorted(histograms.items()):
            total = 0
            for bound, number in zip((*self.BUCKETS, math.inf), buckets):
                total += number
                samples.append(("_bucket", {"protocol": protocol, "le": "+Inf" if bound == math.inf else repr(bound)},
                                total))
            samples.append(("_sum", {"protocol": protocol}, float(buckets[-1])))
            samples.append(("_count", {"protocol": protocol}, total))
        return text + prometheus_family("statusthing_request_duration_seconds", "histogram",
                                        "How long requests took to answer.", samples)


REQUEST_METRICS = RequestMetrics()


def log_request(protocol, method, path, status, code, duration_ms, remote):
    """The line of one request; formatted by hand because it is written for every request."""
    REQUEST_METRICS.observe(protocol, method, status, None if duration_ms is None else duration_ms / 1000)
    LOG.write(f'{{"time": "{utc_now_iso()}", "protocol": "{protocol}", "method": {_json_string(method)}, '
              f'"path": {_json_string(path)}, "status": {status}, '
              + (f'"code": "{code}", ' if code else "")
              + f'"duration_ms": {"null" if duration_ms is None else duration_ms}, "remote": "{remote}"}}\n')


def _json_string(value):
    return "null" if value is None else json.dumps(value, ensure_ascii=False)


def log_internal_error(exc, where):
    log(level="error", event="internal_error", where=where,
        error="".join(traceback.format_exception(exc)).rstrip())


# ==================================================================================================================
# 15. Site: every public GET answer, and the static export
# ==================================================================================================================
# The public pages and outside formats as Representations, kept until the data (or the clock) moves them; the same
# for a request (the Handler) and for a static export. Each answer is a function of the path's query and the
# origin absolute links are written with.

PAGE_MAX_AGE = f"public, max-age={PAGE_MAX_AGE_S}"
FEED_MAX_AGE = "public, max-age=60"
BADGE_MAX_AGE = "public, max-age=60"
SHIELD_CACHE_S = 60
PUBLIC_API_HEADERS = (("Access-Control-Allow-Origin", "*"), ("X-Content-Type-Options", "nosniff"))


def query_values(query_string, names):
    """The values of ``names`` in a query string ("" when absent); InvalidArgument for a name given twice."""
    values = urllib.parse.parse_qs(query_string, keep_blank_values=True)
    for name in names:
        if len(values.get(name, ())) > 1:
            raise InvalidArgument(f"{name} is given more than once")
    return {name: values.get(name, [""])[0] for name in names}


class Site:
    """The public GET answers. ``get(name, query, origin, **captured)`` gives a Representation; NotFound and
    InvalidArgument as any read."""

    def __init__(self, config, assets, service, answers, item_answers):
        self.config, self.assets, self.service = config, assets, service
        self.answers, self.item_answers = answers, item_answers

    def get(self, resource, query="", origin="", **captured):
        return getattr(self, resource)(query, origin, **captured)

    def _kept(self, key, content_type, cache_control, render, headers=()):
        key = ("GET",) + key
        return self.answers.get(key, lambda: Representation.of(
            render(), content_type, cache_control, self.answers.previous(key), headers), size=lambda kept: kept.size)

    def _page(self, key, render):
        """A public page, rendered once per change of data (and, in devmode, of its template)."""
        template = self.assets.get("status.html")
        if self.config.devmode:
            key += (hashlib.sha256(template.encode()).hexdigest(),)
        return self._kept(("page",) + key, HTML, PAGE_MAX_AGE, lambda: render(template), PAGE_SECURITY_HEADERS)

    # -- pages ---------------------------------------------------------------------------------------------------

    def status_page(self, query, origin):
        service, title = self.service, self.config.title

        def render(template):
            now, zone = CLOCK.wall_ns(), service.zone
            days = day_window(zone, now, PAST_INCIDENT_DAYS)[::-1]
            incidents = incidents_by_day_html(service.incidents_by_day(days, INCIDENTS_SHOWN_A_DAY), zone, now)
            entries = self.item_answers.front_page(now)
            coming = sorted((record for record in service.maintenances(now) if record.ends_ns > now),
                            key=lambda record: (record.starts_ns > now, record.starts_ns))
            names = {summary.item_id: summary.name for summary, _ in entries}
            form = subscribe_html(service.list_items() if len(entries) <= BARS_UP_TO_ITEMS else []) \
                if self.config.smtp_url else ""
            return render_status_page(template, title, entries, incidents, zone.name, now,
                                      maintenance_html(coming, names, now), form)
        return self._page(("status",), render)

    def item_page(self, query, origin, item_id):
        asked = query_values(query, ("before", "day"))
        day = parse_day(asked["day"]) if asked["day"] else None
        service = self.service

        def render(template):
            item, entries, older = service.item_timeline(item_id, asked["before"], day)
            uptime, zone_name = service.get_uptime([item_id], BAR_DAYS)
            days = uptime[0].days
            window = [datetime.date.fromisoformat(uptime_day.date) for uptime_day in days]
            incidents = service.bar_inputs([item_id], window)[item_id][1]
            on_day = next((uptime_day for uptime_day in days if day and uptime_day.date == day.isoformat()), None)
            return render_item_page(template, self.config.title, zone_name, item, uptime_bar(item, days, incidents),
                                    entries, older, day, on_day, self._shown(item))
        return self._page(("item", item_id, asked["before"], asked["day"]), render)

    def history_page(self, query, origin):
        asked = query_values(query, ("month", "day"))
        service, title = self.service, self.config.title
        if asked["day"]:
            day = parse_day(asked["day"])
            return self._page(("history-day", day.isoformat()), lambda template: render_history_page(
                template, title, service.zone, day, service.incidents_by_day([day], HISTORY_SHOWN_ONE_DAY),
                CLOCK.wall_ns(), service.first_incident_day(), one_day=True))
        month = parse_month(asked["month"]) if asked["month"] else \
            service.zone.day_of(CLOCK.wall_ns()).replace(day=1)

        def render(template):
            after = (month + datetime.timedelta(days=32)).replace(day=1)
            days = [after - datetime.timedelta(days=back) for back in range(1, (after - month).days + 1)]
            valid_until(service.zone.start_ns(after))  # (the month's days so far, and whether a later month exists)
            return render_history_page(template, title, service.zone, month,
                                       service.incidents_by_day(days, HISTORY_SHOWN_A_DAY), CLOCK.wall_ns(),
                                       service.first_incident_day())
        return self._page(("history", month.isoformat()), render)

    def incident_page(self, query, origin, incident_id):
        return self._page(("incident", incident_id), lambda template: render_incident_page(
            template, self.config.title, self.service.zone, self.service.get_incident(incident_id), CLOCK.wall_ns()))

    # -- Statuspage's public JSON --------------------------------------------------------------------------------

    def statuspage(self, query, origin, name):
        """/api/v2/<name>.json: summary, status, components, incidents, incidents/unresolved,
        scheduled-maintenances[/upcoming|/active]."""
        if name not in STATUSPAGE_PARTS:
            raise NotFound(f"not found: /api/v2/{name}.json")
        return self._kept(("statuspage", name, origin), JSON, PAGE_MAX_AGE,
                          lambda: json_bytes(self._statuspage_json(name, origin)), PUBLIC_API_HEADERS)

    def _statuspage_json(self, name, origin):
        service, now = self.service, CLOCK.wall_ns()
        page_id, created_ns = service.page_identity()
        items = service.list_items()
        calendar = service.calendar()
        valid_until(calendar.next_change(now))
        components = sp_components(items, page_id, service.zone,
                                   {item.id: shown_condition(item, calendar, now) for item in items})
        updated = max([created_ns] + [item.timestamps.updated.ToNanoseconds() for item in items])
        answer = {"page": sp_page(page_id, self.config.title, origin, service.zone, updated)}
        parts = STATUSPAGE_PARTS[name]
        if "components" in parts:
            answer["components"] = components
        if "incidents" in parts:
            by_id = {row["id"]: row for row in components}
            incidents = service.list_incidents(unresolved_only=name != "incidents", size=SP_INCIDENTS_LISTED)[0]
            answer["incidents"] = [sp_incident(incident, by_id, page_id, origin) for incident in incidents]
        if "scheduled_maintenances" in parts:
            by_id = {row["id"]: row for row in components}
            wanted = {"summary": (pb.MAINTENANCE_STATE_SCHEDULED, pb.MAINTENANCE_STATE_IN_PROGRESS),
                      "scheduled-maintenances/upcoming": (pb.MAINTENANCE_STATE_SCHEDULED,),
                      "scheduled-maintenances/active": (pb.MAINTENANCE_STATE_IN_PROGRESS,)}.get(name)
            windows = [record for record in service.maintenances(now)[::-1]  # (the latest first)
                       if wanted is None or record.state_at(now) in wanted]
            answer["scheduled_maintenances"] = [sp_maintenance(record, now, by_id, page_id, origin)
                                                for record in windows]
        if "status" in parts:
            answer["status"] = sp_indicator(components)
        return answer

    # -- feeds ---------------------------------------------------------------------------------------------------

    def feed(self, query, origin, kind):
        def render():
            now = CLOCK.wall_ns()
            incidents = self.service.list_incidents(size=SP_INCIDENTS_LISTED)[0]
            updated = self.service.page_identity()[1]
            write = atom_feed if kind == "atom" else rss_feed
            return write(incidents, self.config.title, origin, updated, self.service.maintenances(now), now)
        return self._kept(("feed", kind, origin), f"application/{kind}+xml; charset=utf-8", FEED_MAX_AGE, render,
                          (("X-Content-Type-Options", "nosniff"),))

    # -- badges --------------------------------------------------------------------------------------------------

    def _badge(self, key, render):
        return self._kept(("badge",) + key, "image/svg+xml", BADGE_MAX_AGE, render,
                          (("X-Content-Type-Options", "nosniff"), ("Content-Security-Policy", "default-src 'none'")))

    def _shown(self, item):
        """The condition an item is shown in now (Under maintenance while a window covers it); what is built from
        it holds until the next window starts or ends."""
        now, calendar = CLOCK.wall_ns(), self.service.calendar()
        valid_until(calendar.next_change(now))
        return shown_condition(item, calendar, now)

    def page_badge(self, query, origin):
        def render():
            summaries = [ItemSummary.of(item, self._shown(item)) for item in self.service.list_items()]
            condition, _ = overall_line(summaries)
            message = "all operational" if condition in CALM and summaries else \
                CONDITION_WORDS[condition] if summaries else "no systems"
            return badge_svg("status", message, BADGE_COLORS[condition][0])
        return self._badge(("page",), render)

    def item_badge(self, query, origin, item_id):
        def render():
            item = self.service.get_item(item_id, notes_limit=1)
            condition = self._shown(item)
            return badge_svg(item.name, CONDITION_WORDS[condition], BADGE_COLORS[condition][0])
        return self._badge(("item", item_id), render)

    def uptime_badge(self, query, origin, item_id):
        days = query_values(query, ("days",))["days"] or "90"
        if days not in ("30", "90"):
            raise InvalidArgument("days must be 30 or 90")

        def render():
            answer = pb.GetUptimeResponse.FromString(self.item_answers.uptime(
                pb.GetUptimeRequest(item_ids=[item_id], days=int(days)), PROTO))
            uptime = answer.items[0]
            percent = uptime.uptime_percent if uptime.HasField("uptime_percent") else None
            message = f"{math.floor(percent * 100) / 100:.2f}%" if percent is not None else "no data"
            return badge_svg(f"uptime {days}d", message, uptime_color(percent))
        return self._badge(("uptime", item_id, days), render)

    def shield(self, query, origin, item_id):
        def render():
            item = self.service.get_item(item_id, notes_limit=1)
            condition = self._shown(item)
            return shield_json(item.name, CONDITION_WORDS[condition], BADGE_COLORS[condition][1], SHIELD_CACHE_S)
        return self._kept(("shield", item_id), JSON, f"public, max-age={SHIELD_CACHE_S}", render, PUBLIC_API_HEADERS)

    # -- metrics (not kept: counters move with every request) ---------------------------------------------------

    def metrics(self, store_size_bytes):
        """/metrics as Prometheus text."""
        now = CLOCK.wall_ns()
        rows = self.item_answers.uptime_windows(now)
        families = [prometheus_family("statusthing_build_info", "gauge", "The running version.",
                                      [("", {"version": VERSION}, 1)]),
                    prometheus_family("statusthing_items", "gauge", "Items on the status page.",
                                      [("", {}, len(rows))])]
        families.append(prometheus_family(
            "statusthing_item_condition", "gauge",
            "Each item's condition: 0 no data, 1 operational, 2 degraded, 3 partial outage, 4 major outage, "
            "5 maintenance.", [("", {"item_id": row.item_id, "item_name": row.name, "group": row.group},
                                row.condition) for row in rows]))
        families.append(prometheus_family(
            "statusthing_item_last_change_timestamp_seconds", "gauge", "When each item's status last changed.",
            [("", {"item_id": row.item_id, "item_name": row.name}, row.open_day.last_change_ns / 1e9)
             for row in rows if row.open_day.last_change_ns is not None]))
        ratios = []
        for row in rows:
            for window, ratio in row.ratios(self.service, now):
                if ratio is not None:
                    ratios.append(("", {"item_id": row.item_id, "item_name": row.name, "window": window}, ratio))
        families.append(prometheus_family(
            "statusthing_item_uptime_ratio", "gauge", "Uptime over today (1d), the last 30 and 90 calendar days, "
            "0 to 1: 1 - (major + 0.3 x partial outage) / observed time.", ratios))
        families.append(prometheus_family("statusthing_incidents_open", "gauge", "Incidents going on.",
                                          [("", {}, self.service.count_open_incidents())]))
        families.append(prometheus_family("statusthing_maintenances_active", "gauge",
                                          "Maintenance windows in progress.",
                                          [("", {}, len(self.service.calendar().in_progress(now)))]))
        counts = self.service.count_deliveries()
        families.append(prometheus_family(
            "statusthing_deliveries", "gauge", "Webhook and e-mail deliveries kept (pending: not yet delivered, "
            "failed: given up), by channel and state.",
            [("", {"channel": channel, "state": state}, counts.get((channel, state), 0))
             for channel in ("webhook", "email") for state in ("pending", "delivered", "failed")]))
        families.append(prometheus_family("statusthing_database_size_bytes", "gauge",
                                          "The size of the database.", [("", {}, store_size_bytes)]))
        families.append(REQUEST_METRICS.families())
        return "".join(families).encode()


STATUSPAGE_PARTS = {
    "summary": ("components", "incidents", "scheduled_maintenances", "status"), "status": ("status",),
    "components": ("components",), "incidents": ("incidents",), "incidents/unresolved": ("incidents",),
    "scheduled-maintenances": ("scheduled_maintenances",),
    "scheduled-maintenances/upcoming": ("scheduled_maintenances",),
    "scheduled-maintenances/active": ("scheduled_maintenances",)}


# -- the public site as static files --------------------------------------------------------------------------------
# `statusthing export DIR` and --export-dir: every public page and format written as files, with links that work
# from a plain file server, object storage or a CDN (relative, to index.html files). DIR is a symbolic link to the
# latest complete copy, replaced in one step, so a reader never sees half a site.

EXPORT_MARK = ".statusthing-export"  # in every copy: what may be replaced or removed


def exported_source(target):
    """The site path whose answer is written where ``target`` is exported (an item's day is its month's page)."""
    path, _, query = target.partition("#")[0].partition("?")
    day = urllib.parse.parse_qs(query).get("day", [""])[0]
    if path.startswith("/items/") and path.count("/") == 2 and day:
        return f"/history?month={day[:7]}"
    return target


def static_path(target):
    """``"/items/X?day=2026-11-30"`` -> ``"history/2026-11/index.html#day-2026-11-30"``: the file (and fragment)
    a site path is exported as; None for what is not exported (the admin page, older timeline pages)."""
    target, _, fragment = target.partition("#")
    path, _, query = target.partition("?")
    asked = urllib.parse.parse_qs(query)
    one = {name: values[0] for name, values in asked.items()}
    parts = [urllib.parse.unquote(part) for part in path.strip("/").split("/")] if path.strip("/") else []
    if any(not part or part in (".", "..") or "/" in part or "\\" in part for part in parts):
        return None
    found = None
    if not parts:
        found = "index.html"
    elif parts == ["history"]:
        found = (f"history/days/{one['day']}/index.html" if "day" in one else
                 f"history/{one['month']}/index.html" if "month" in one else "history/index.html")
    elif parts[0] == "items" and len(parts) == 2:
        if "before" in one:
            return None
        if "day" in one:  # (an item's day: its month of incidents, at that day)
            return f"history/{one['day'][:7]}/index.html#day-{one['day']}"
        found = f"items/{parts[1]}/index.html"
    elif parts[0] == "items" and len(parts) == 3 and parts[2] == "uptime.svg":
        found = f"items/{parts[1]}/uptime-{one.get('days', '90')}d.svg"
    elif parts[0] == "incidents" and len(parts) == 2:
        found = f"incidents/{parts[1]}/index.html"
    elif parts[0] != "admin" and "." in parts[-1]:  # feeds, badges, Statuspage JSON: as they are named
        found = "/".join(parts)
    if found is None:
        return None
    return found + (f"#{fragment}" if fragment else "")


_HREF = re.compile(r'<a ([^>]*?)href="(/[^"]*)"([^>]*)>(.*?)</a>|(<link [^>]*?href=")(/[^"]*)(")', re.S)


def relative_links(page, here):
    """An exported page's site links made relative to its file ``here``; a link to what is not exported goes, text
    and all."""
    folder = os.path.dirname(here) or "."

    def relative(target):
        found = static_path(html.unescape(target))
        if found is None:
            return None
        file, _, fragment = found.partition("#")
        return _html(os.path.relpath(file, folder) + (f"#{fragment}" if fragment else ""))

    def replace(match):
        if match[5]:
            found = relative(match[6])
            return f"{match[5]}{found}{match[7]}" if found else ""
        found = relative(match[2])
        return f'<a {match[1]}href="{found}"{match[3]}>{match[4]}</a>' if found else ""
    return _HREF.sub(replace, page)


class Exporter:
    """Writes the public site of ``site`` as static files, its absolute links (feeds, JSON) on ``origin``."""

    def __init__(self, site, origin):
        self.site, self.origin = site, origin

    def _get(self, target):
        path, _, query = target.partition("?")
        route, captured = find_route(path)
        if route is None or not route.handler.startswith("site:"):
            return None
        return self.site.get(route.handler[5:], query, self.origin, **dict(route.args), **captured)

    def write(self, folder):
        """Every page and format reachable from the front page, and every item's badges, under ``folder`` (new).
        Returns how many files were written."""
        os.makedirs(folder)
        targets = ["/", "/history", *(f"/api/v2/{name}.json" for name in STATUSPAGE_PARTS), "/history.atom",
                   "/history.rss", "/badge.svg"]
        for item in self.site.service.list_items():
            quoted = urllib.parse.quote(item.id, safe="")
            targets += [f"/items/{quoted}", f"/items/{quoted}/badge.svg", f"/items/{quoted}/shield.json",
                        f"/items/{quoted}/uptime.svg?days=30", f"/items/{quoted}/uptime.svg?days=90"]
        written, seen = 0, set()
        while targets:
            target = targets.pop()
            file = (static_path(target) or "").partition("#")[0]
            if not file or file in seen:
                continue
            seen.add(file)
            try:
                representation = self._get(exported_source(target))
            except NotFound:  # (deleted meanwhile: so it is on the site too)
                continue
            if representation is None:
                continue
            body = representation.body
            if representation.content_type == HTML:
                page = body.decode()
                targets.extend(html.unescape(match) for match in re.findall(r'href="(/[^"]*)"', page))
                body = relative_links(page, file).encode()
            destination = os.path.join(folder, *file.split("/"))
            os.makedirs(os.path.dirname(destination), exist_ok=True)
            with open(destination, "wb") as out:
                out.write(body)
            written += 1
        with open(os.path.join(folder, EXPORT_MARK), "w") as mark:
            mark.write(f"exported by statusthing {VERSION} at {utc_now_iso()}\n")
        return written

    def publish(self, path):
        """Write a complete copy beside ``path``, then point ``path`` (a symbolic link) at it in one step, and
        remove the copy it pointed at before. Returns how many files were written."""
        path = os.path.abspath(path)
        parent, name = os.path.split(path)
        if os.path.lexists(path) and not os.path.islink(path):
            if os.path.isdir(path) and not os.listdir(path):
                os.rmdir(path)  # (an empty folder made for it: taken over)
            else:
                raise StartupError(f"{path} exists and is not an export's link: remove it, or export elsewhere")
        previous = os.path.realpath(path) if os.path.islink(path) else None
        copy = tempfile.mkdtemp(prefix=f".{name}-", dir=parent)
        os.rmdir(copy)  # (a free name; write() makes the folder with the usual permissions)
        written = self.write(copy)
        link = f"{copy}.link"
        os.symlink(os.path.basename(copy), link)
        os.replace(link, path)
        if previous and os.path.exists(os.path.join(previous, EXPORT_MARK)):
            shutil.rmtree(previous, ignore_errors=True)
        return written


# ==================================================================================================================
# 16. HTTP: answers, routes, the handler
# ==================================================================================================================

_REASONS = {status.value: status.phrase for status in http.HTTPStatus}
_REASONS[499] = "Client Closed Request"
TEXT = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"


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


def response_head(status, content_type, content_length, headers=(), close=False):
    """The status line and headers of an HTTP/1.1 response, as bytes (``content_length`` None: no length)."""
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, '')}", f"Date: {HTTP_DATE}", f"Server: {SERVER_NAME}",
             f"Content-Type: {content_type}"]
    if content_length is not None:
        lines.append(f"Content-Length: {content_length}")
    lines.extend(f"{name}: {value}" for name, value in headers)
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class HttpError(Exception):
    """A transport-level refusal answered in plain HTTP (404, 405, 415), before any RPC runs."""

    def __init__(self, status, message, headers=()):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, tuple(headers)


class UnsupportedEncoding(Unimplemented):
    """A request body in a Content-Encoding this server does not read (Connect: unimplemented)."""

    accept_encoding = "gzip, identity"


def error_answer(error, form="json"):
    """(status, content type, headers, body) of the one error answer of every HTTP path, in ``form`` "json" (the
    Connect error object) or "text"; ``error`` is an HttpError or a StatusThingError."""
    if isinstance(error, HttpError):
        return error.status, TEXT, error.headers, (error.message + "\n").encode()
    headers = []
    if error.retry_after_s is not None:
        headers.append(("Retry-After", str(error.retry_after_s)))
    if isinstance(error, Unauthenticated):
        headers.append(("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"'))
    if isinstance(error, UnsupportedEncoding):
        headers.append(("Accept-Encoding", error.accept_encoding))
    status = CODES[error.code].http_status
    if form == "text":
        return status, TEXT, (*headers, ("Cache-Control", "no-store")), (error.message + "\n").encode()
    body = json.dumps({"code": error.code, "message": error.message}, ensure_ascii=False).encode()
    return status, JSON, (*headers, ("X-Content-Type-Options", "nosniff")), body


class Representation:
    """A GET answer as HTTP caches want it: its bytes (and, made on first demand, their gzip), validators and
    freshness. Any content type: pages, and later JSON, feeds, badges, metrics."""

    __slots__ = ("content_type", "body", "etag", "last_modified", "cache_control", "headers", "_gzipped")

    def __init__(self, content_type, body, etag, last_modified, cache_control, headers=()):
        self.content_type, self.body, self.etag = content_type, body, etag
        self.last_modified, self.cache_control, self.headers = last_modified, cache_control, tuple(headers)
        self._gzipped = None

    @classmethod
    def of(cls, body, content_type, cache_control, previous=None, headers=()):
        """``previous`` is the representation this one replaces: when the bytes are the same (a write that does not
        show here), its Last-Modified stays."""
        etag = '"' + hashlib.sha256(body).hexdigest()[:24] + '"'
        last_modified = previous.last_modified if previous is not None and previous.etag == etag else \
            email.utils.formatdate(CLOCK.wall_ns() / 1e9, usegmt=True)
        return cls(content_type, body, etag, last_modified, cache_control, headers)

    @property
    def compressible(self):
        return len(self.body) >= GZIP_MIN_BYTES

    @property
    def gzipped(self):
        """The gzip of the body, made once, by the first request that accepts it (many clients never do)."""
        if self._gzipped is None:
            self._gzipped = gzip_fast(self.body)  # (two threads may both make it: the same bytes, no harm)
        return self._gzipped

    def not_modified(self, if_none_match, if_modified_since):
        """True when the client's copy is this one (If-None-Match wins over If-Modified-Since)."""
        if if_none_match is not None:
            tags = {tag.strip().removeprefix("W/").replace("-gz", "") for tag in if_none_match.split(",")}
            return "*" in tags or self.etag in tags
        if if_modified_since is not None:
            try:
                return email.utils.parsedate_to_datetime(if_modified_since) >= \
                    email.utils.parsedate_to_datetime(self.last_modified)
            except (TypeError, ValueError):
                return False
        return False

    @property
    def size(self):
        """What keeping it costs, counting room for its gzip (about an eighth of the body for HTML or JSON)."""
        return len(self.body) + len(self.body) // 8


@dataclasses.dataclass(frozen=True)
class Route:
    """A non-RPC path: ``pattern`` may hold one ``{name}`` per segment; ``errors`` is how its errors are written
    ("html": the page template, "json": the Connect error object, "text")."""

    pattern: str
    methods: tuple
    handler: str  # the Handler method called with the captured segments, or "site:<Site method>"
    errors: str
    args: tuple = ()  # (name, value) pairs passed to it besides the captured segments

    def match(self, path):
        """The captured segments, or None when the path is not this route's."""
        want, got = self.pattern.split("/"), path.split("/")
        if len(want) != len(got):
            return None
        captured = {}
        for pattern, segment in zip(want, got):
            if pattern.startswith("{"):
                if not segment:
                    return None
                captured[pattern[1:-1]] = urllib.parse.unquote(segment)
            elif pattern != segment:
                return None
        return captured


READ = ("GET", "HEAD")
ROUTES = (
    Route("/", READ, "site:status_page", "html"),
    Route("/items/{item_id}", READ, "site:item_page", "html"),
    Route("/history", READ, "site:history_page", "html"),
    Route("/incidents/{incident_id}", READ, "site:incident_page", "html"),
    *(Route(f"/api/v2/{name}.json", READ, "site:statuspage", "json", (("name", name),)) for name in STATUSPAGE_PARTS),
    Route("/history.atom", READ, "site:feed", "text", (("kind", "atom"),)),
    Route("/history.rss", READ, "site:feed", "text", (("kind", "rss"),)),
    Route("/badge.svg", READ, "site:page_badge", "text"),
    Route("/items/{item_id}/badge.svg", READ, "site:item_badge", "text"),
    Route("/items/{item_id}/uptime.svg", READ, "site:uptime_badge", "text"),
    Route("/items/{item_id}/shield.json", READ, "site:shield", "json"),
    Route("/metrics", READ, "metrics", "text"),
    Route("/healthz", READ, "healthz", "json"),
    Route("/readyz", READ, "readyz", "json"),
    Route("/subscribe", ("POST",), "subscribe", "html"),
    Route("/subscribe/confirm/{token}", ("GET", "HEAD", "POST"), "confirm_subscription", "html"),
    Route("/unsubscribe/{token}", ("GET", "HEAD", "POST"), "unsubscribe", "html"),
    Route("/admin", READ, "page_admin", "text"),
    Route("/admin/api/subscribers", ("GET",), "admin_subscribers", "json"),
    Route("/admin/api/subscribers/remove", ("POST",), "admin_remove_subscriber", "json"),
    Route("/admin/logout", ("GET",), "admin_logout", "text"),
    Route("/admin/api/me", ("GET",), "admin_me", "json"),
    Route("/admin/api/audit", ("GET",), "admin_audit", "json"),
    Route("/admin/api/password", ("POST",), "admin_password", "json"),
)


def find_route(path):
    """(Route, captured segments), or (None, None)."""
    for route in ROUTES:
        captured = route.match(path)
        if captured is not None:
            return route, captured
    return None, None


# -- clients behind reverse proxies ----------------------------------------------------------------------------
# With --trusted-proxy, the forwarding headers a trusted peer adds say who the client is and which host it asked
# for; from anyone else they are the client's own words and are ignored.

def _ip(text):
    """An ipaddress address from a forwarding header's node (``[2001:db8::1]:4711``, ``192.0.2.1:80``,
    ``"..."``, an IPv4-mapped IPv6 address), or None ("unknown", an obfuscated name, anything else)."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return address.ipv4_mapped or address if address.version == 6 else address


def _trusted(address, trusted):
    ip = _ip(address)
    return ip is not None and any(ip in network for network in trusted)


def _forwarded_values(forwarded, key):
    """The values of ``key`` (for, host, proto) in a Forwarded header (RFC 7239), the nearest proxy's last."""
    values = []
    for element in forwarded.split(","):
        for pair in element.split(";"):
            name, _, value = pair.partition("=")
            if name.strip().lower() == key:
                values.append(value.strip().strip('"'))
    return values


def client_behind_proxies(peer, headers, trusted):
    """The client's address: ``peer`` itself, unless it is a trusted proxy; then, walking the forwarding chain
    (Forwarded, else X-Forwarded-For) from the nearest hop, the first address that is not a trusted proxy."""
    if not trusted or not _trusted(peer, trusted):
        return peer
    forwarded = headers.get("forwarded")
    chain = _forwarded_values(forwarded, "for") if forwarded else (headers.get("x-forwarded-for") or "").split(",")
    client = peer
    for node in reversed(chain):
        address = _ip(node)
        if address is None:  # the hop that wrote this cannot name its client, so that hop is the client we know
            return client
        client = str(address)
        if not _trusted(client, trusted):
            return client
    return client


_HOST = re.compile(r"(?:[A-Za-z0-9-]{1,63}\.)*[A-Za-z0-9-]{1,63}(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?")


def scheme_behind_proxies(peer, headers, trusted):
    """"https" when the nearest trusted proxy says the client used it (Forwarded proto=, X-Forwarded-Proto), else
    "http" (this server speaks no TLS itself)."""
    if trusted and _trusted(peer, trusted):
        forwarded = _forwarded_values(headers.get("forwarded") or "", "proto")
        proto = forwarded[-1] if forwarded else (headers.get("x-forwarded-proto") or "").split(",")[-1].strip()
        if proto.lower() == "https":
            return "https"
    return "http"


def _check_deadline(deadline):
    """DeadlineExceeded once ``deadline`` (time.monotonic) has passed; None is no deadline."""
    if deadline is not None and time.monotonic() > deadline:
        raise DeadlineExceeded("the deadline passed before the answer was ready")


def path_query(path):
    """The query string of a request target ("" when there is none)."""
    return path.partition("?")[2]


def host_behind_proxies(peer, headers, trusted):
    """The host the client asked for (for same-origin checks): from the nearest trusted proxy's Forwarded host=
    or X-Forwarded-Host when there is one, else the Host header."""
    if trusted and _trusted(peer, trusted):
        forwarded = _forwarded_values(headers.get("forwarded") or "", "host")
        if forwarded:
            return forwarded[-1]
        x_forwarded_host = (headers.get("x-forwarded-host") or "").split(",")[-1].strip()
        if x_forwarded_host:
            return x_forwarded_host
    return headers.get("host") or ""


# -- reading requests (RFC 9112), strictly and within limits ------------------------------------------------------
# Every refusal here is an HttpError, answered by the one error writer, and the connection is closed after it:
# once the framing of a request is in doubt, so is where the next one starts.

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 §5.6.2
_CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]+)(?:[ \t]*;[^\r\n]*)?\r?\n")  # chunk-size [BWS ";" chunk-ext] CRLF
_FIELD_VALUE_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # controls other than tab
_HTTP_VERSION = re.compile(r"HTTP/[0-9]\.[0-9]")


class BadRequest(HttpError):
    """A request that cannot be read as HTTP/1.1 (the connection closes after the answer)."""

    def __init__(self, message, status=400, headers=()):
        super().__init__(status, message, headers)


class RequestHeaders(dict):
    """Request headers by lower-case name. A header sent twice is kept as the comma-joined list HTTP defines, so a
    doubled Content-Length, Host or Authorization cannot pass for a single one."""

    def get(self, name, default=None):
        return dict.get(self, name.lower(), default)

    def __getitem__(self, name):
        return dict.get(self, name.lower())

    def __contains__(self, name):
        return dict.__contains__(self, name.lower())

    def add(self, line):
        """Add one header line (without its line end); BadRequest when it is not ``token ":" value``."""
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.fullmatch(name):  # (a space before the colon is refused too: RFC 9112 §5.1)
            raise BadRequest(f"malformed header line {line[:100]!r}")
        value = value.strip(" \t")
        if _FIELD_VALUE_FORBIDDEN.search(value):
            raise BadRequest(f"control characters in the {name} header")
        name = name.lower()
        self[name] = f"{dict.get(self, name)}, {value}" if name in self else value


def parse_request_line(line):
    """``b"GET /x HTTP/1.1\\r\\n"`` -> (method, path with query, version); BadRequest for anything else."""
    if len(line) > MAX_REQUEST_LINE_BYTES:
        raise BadRequest("request line too long", 414)
    parts = line.rstrip(b"\r\n").decode("latin-1").split(" ")
    if len(parts) != 3 or not all(parts):
        raise BadRequest("malformed request line (expected METHOD TARGET HTTP/1.1, one space apart)")
    method, target, version = parts
    if _HTTP_VERSION.fullmatch(version) and version.startswith("HTTP/1.") and version != "HTTP/1.0":
        version = "HTTP/1.1"  # a later 1.x minor version is read as the highest this server knows (RFC 9110 §6.2)
    elif version != "HTTP/1.0":
        raise BadRequest(f"this is an HTTP/1.1 server; {version!r} is not an HTTP/1.x request line")
    if not _TOKEN.fullmatch(method):
        raise BadRequest("malformed method")
    if not target.isascii() or not target.isprintable():
        raise BadRequest("malformed request target")
    if target.startswith("/"):
        path = "/" + target.lstrip("/") if target.startswith("//") else target  # no scheme-relative paths
    elif target.lower().startswith(("http://", "https://")):  # absolute-form, which servers must accept
        parts = urllib.parse.urlsplit(target)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    elif target == "*" and method == "OPTIONS":
        path = "*"
    elif method == "CONNECT":
        raise BadRequest("CONNECT is not supported: this is not a proxy", 405, (("Allow", "GET, HEAD, POST, OPTIONS"),))
    else:
        raise BadRequest("malformed request target")
    return method, path, version


def body_framing(headers, version):
    """How the body is delimited: ("chunked", None) or ("length", n); BadRequest for framing that is invalid or
    ambiguous (RFC 9112 §6: both Content-Length and Transfer-Encoding, a length that is not digits, a transfer
    coding other than chunked)."""
    transfer_encoding, length = headers.get("transfer-encoding"), headers.get("content-length")
    if transfer_encoding is not None:
        if length is not None:
            raise BadRequest("both Content-Length and Transfer-Encoding: the body's length is ambiguous")
        codings = [coding.strip().lower() for coding in transfer_encoding.split(",")]
        if version == "HTTP/1.0" or codings[-1] != "chunked":
            raise BadRequest("a request body's last transfer coding must be chunked")
        if codings != ["chunked"]:
            raise BadRequest(f"transfer coding {transfer_encoding!r} is not supported; use chunked only")
        return "chunked", None
    if length is None:
        return "length", 0
    if not (length.isascii() and length.isdigit()) or len(length) > 18:
        raise BadRequest("Content-Length must be one number of digits")
    return "length", int(length)


class _AlreadyAnswered(Exception):
    """Raised after a refusal was already written, to unwind without writing again."""


def send_all(sock, parts):
    """Write ``parts`` (bytes) in order with as few system calls as the kernel allows, without joining them."""
    views = [memoryview(part) for part in parts if part]
    while views:
        sent = sock.sendmsg(views)
        while views and sent >= len(views[0]):
            sent -= len(views[0])
            views.pop(0)
        if views and sent:
            views[0] = views[0][sent:]


class Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive: Connect unary RPCs (transport checks, then codec -> binding -> codec), the public
    pages, and the admin page with its small JSON endpoints; every answer through ``_respond`` and every error
    through ``_send_error``.

    Requests are read strictly (RFC 9112) within limits, and within deadlines the listener enforces: once a
    request's first byte arrives its head must arrive within --request-timeout, and then its body within it too.
    A response's head and body leave in one system call (sendmsg), so no response waits on Nagle's algorithm and
    the peer's delayed ACK, and no copy joins them.
    """

    protocol_version = "HTTP/1.1"
    server_version = SERVER_NAME
    disable_nagle_algorithm = True
    timeout = None  # the listener sets kernel-side idle timeouts instead (see Listener.finish_request)
    app: App  # set on the subclass App builds

    # -- connection bookkeeping: the listener's drain and deadlines read busy, deadline and timed_out ----------

    def setup(self):
        super().setup()
        self.busy, self.deadline, self.timed_out = False, None, False
        self._new_request()
        self.app.listener.track(self)

    def finish(self):
        self.app.listener.untrack(self)
        super().finish()

    def _new_request(self):
        self.command, self.path, self.request_version = None, None, "HTTP/1.1"
        self.headers, self.framing = RequestHeaders(), ("length", 0)
        self.client, self.error_form, self.started = self.client_address[0], "text", time.perf_counter()
        self.started_monotonic = time.monotonic()

    # (Plain attribute writes: a lock here would cost every request and close no race the listener cares about.)
    def handle_one_request(self):
        """Wait for a request, read its head, answer it. Any refusal of the head closes the connection."""
        try:
            line = self._await_request_line()
            if line is None:  # the client closed, or stayed silent past the idle limit
                self.close_connection = True
                return
            self.busy = True
            self._new_request()
            try:
                self._read_head(line)
            except BadRequest as exc:
                return self._send_error(exc)
            self._answer()
        except (ConnectionError, TimeoutError, BlockingIOError):  # gone, or not reading what we send
            self.close_connection = True
        finally:
            self.busy, self.deadline = False, None
            if self.app.listener.draining:
                self.close_connection = True

    def _await_request_line(self):
        """The next request line once it starts to arrive; empty lines before it are skipped (RFC 9112 §2.2)."""
        for _ in range(MAX_EMPTY_LINES_BEFORE_REQUEST + 1):
            if not self.rfile.peek(1):  # waits for a first byte, up to the idle limit
                return None
            self.deadline = time.monotonic() + self.app.config.request_timeout_s
            line = self.rfile.readline(MAX_REQUEST_LINE_BYTES + 1)
            if line not in (b"\r\n", b"\n"):
                return line
        return line

    def _read_head(self, line):
        """The request line and headers, checked; sets command, path, headers, client and the body's framing."""
        if not line.endswith(b"\n") and len(line) <= MAX_REQUEST_LINE_BYTES:
            raise BadRequest("the request stopped before its request line ended", 408)
        self.command, self.path, self.request_version = parse_request_line(line)
        self.headers = self._read_header_block()
        host = self.headers.get("host")
        if self.request_version == "HTTP/1.1" and (host is None or "," in host):
            raise BadRequest("an HTTP/1.1 request needs exactly one Host header")
        self.client = client_behind_proxies(self.client_address[0], self.headers, self.app.config.trusted_proxies)
        self.framing = body_framing(self.headers, self.request_version)
        tokens = {token.strip().lower() for token in self.headers.get("connection", "").split(",")}
        self.close_connection = "close" in tokens or (self.request_version == "HTTP/1.0" and "keep-alive" not in tokens)

    def _read_header_block(self):
        headers, total = RequestHeaders(), 0
        for _ in range(MAX_HEADER_LINES + 1):
            line = self.rfile.readline(MAX_HEADER_LINE_BYTES + 1)
            total += len(line)
            if len(line) > MAX_HEADER_LINE_BYTES or total > MAX_HEADER_BLOCK_BYTES:
                raise BadRequest("request headers too large", 431)
            if not line.endswith(b"\n"):
                raise BadRequest("the request stopped before its headers ended", 408)
            if line in (b"\r\n", b"\n"):
                return headers
            if line[:1] in (b" ", b"\t"):
                raise BadRequest("folded header lines are not accepted")
            headers.add(line.rstrip(b"\r\n").decode("latin-1"))
        raise BadRequest("too many header lines", 431)

    def send_error(self, code, message=None, explain=None):
        # (Not reached by this server's own reading; kept so that any http.server path uses the one writer.)
        self._send_error(BadRequest(message or _REASONS.get(code, "error"), code))

    def log_message(self, format, *args):
        pass  # every answer is logged by _respond

    # -- dispatch ----------------------------------------------------------------------------------------------

    def _answer(self):
        """The one funnel: every error becomes its answer here, and anything unexpected becomes "internal"."""
        try:
            path = self.path.split("?", 1)[0]
            method = METHODS.get(path)
            route, captured = (None, None) if method is not None else find_route(path)
            self.error_form = "json" if method is not None else route.errors if route is not None else \
                "html" if self.command in ("GET", "HEAD") else "text"
            # The body is read whatever the answer, so the next request on this connection starts clean.
            body = self._read_body()
            if method is not None:
                return self._rpc(method, body)
            if path == "*":  # OPTIONS * : what the server as a whole allows
                return self._respond(204, TEXT, b"", (("Allow", "GET, HEAD, POST, OPTIONS"),))
            if route is None:
                raise HttpError(404, f"not found: {path}")
            if self.command not in route.methods:
                raise HttpError(405, f"{self.command} is not allowed here", (("Allow", ", ".join(route.methods)),))
            if route.handler.startswith("site:"):
                return self._send_representation(self.app.site.get(
                    route.handler[5:], path_query(self.path), self._origin(), **dict(route.args), **captured))
            getattr(self, route.handler)(body=body, **dict(route.args), **captured)
        except _AlreadyAnswered:
            pass
        except (HttpError, StatusThingError) as exc:
            self._send_error(exc)
        except Exception as exc:
            log_internal_error(exc, self.path)
            self._send_error(Internal("internal error"))


    def _rpc(self, method, body):
        if self.command == "POST":
            return self._respond_rpc(method, self._content_type(), self._decode_content_encoding(body))
        if self.command in ("GET", "HEAD") and method.public:
            return self._respond_rpc_get(method)
        if self.command == "OPTIONS" and self.headers.get("Origin") in self.app.config.cors_origins:
            # A CORS preflight from an origin the operator allowed with --cors-origin.
            return self._respond(204, TEXT, b"", (
                ("Access-Control-Allow-Methods", "GET, POST" if method.public else "POST"),
                ("Access-Control-Allow-Headers", "Content-Type, Authorization, Connect-Protocol-Version, "
                                                 "Connect-Timeout-Ms, Content-Encoding, Accept-Encoding"),
                ("Access-Control-Max-Age", "600")))
        allowed = "GET, POST" if method.public else "POST"
        raise HttpError(405, f"{self.command} is not allowed here; use {allowed}", (("Allow", allowed),))

    def _respond_rpc_get(self, method):
        """A read sent as a Connect GET (``?connect=v1&encoding=json|proto&message=…[&base64=1][&compression=gzip]``):
        answered as a Representation, so browsers and CDNs can cache it and ask again with If-None-Match."""
        raw = {name: value for name, value in urllib.parse.parse_qsl(path_query(self.path), keep_blank_values=True,
                                                                     encoding="latin-1")}
        if raw.get("connect", "v1") != "v1":
            raise InvalidArgument(f"connect={raw['connect']} is not supported; send connect=v1")
        if "encoding" not in raw or "message" not in raw:
            raise InvalidArgument("a GET needs the encoding and message query parameters")
        content_type = {"json": JSON, "proto": PROTO}.get(raw["encoding"])
        if content_type is None:
            raise HttpError(415, f"unsupported encoding {raw['encoding']}; use json or proto",
                            (("Accept-Post", f"{JSON}, {PROTO}"),))
        message = raw["message"].encode("latin-1")  # (the percent-decoded bytes, as sent)
        if raw.get("base64") == "1":
            try:
                message = base64.b64decode(message + b"=" * (-len(message) % 4), altchars=b"-_", validate=True)
            except (ValueError, binascii.Error):
                raise InvalidArgument("message is not URL-safe base64") from None
        compression = raw.get("compression", "identity")
        if compression == "gzip":
            message = gunzip_limited(message, MAX_REQUEST_BYTES)
        elif compression != "identity":
            raise UnsupportedEncoding(f"compression {compression} is not supported; use gzip or identity")
        deadline = self._deadline()
        key = ("GET", "connect", method.path, content_type, message)
        representation = self.app.answers.get(key, lambda: Representation.of(
            run_rpc(self.app, method, decode(content_type, message, method.request_class), None, content_type,
                    MAX_CONNECT_ANSWER_BYTES), content_type, PAGE_MAX_AGE, self.app.answers.previous(key)),
            size=lambda kept: kept.size + len(message))
        _check_deadline(deadline)
        self._send_representation(representation)

    def _deadline(self):
        """When the client stops waiting (time.monotonic), from Connect-Timeout-Ms; None without one."""
        value = self.headers.get("Connect-Timeout-Ms")
        if value is None:
            return None
        value = value.strip()
        if not (value.isascii() and value.isdigit() and len(value) <= 10 and int(value) > 0):
            raise InvalidArgument("Connect-Timeout-Ms must be a positive whole number of at most 10 digits")
        return self.started_monotonic + int(value) / 1000

    # -- the routes ----------------------------------------------------------------------------------------------

    def metrics(self, body):
        self._metrics_reader()
        body = self.app.site.metrics(self.app.service.database_size())
        gzip_ok = accepts_gzip(self.headers.get("Accept-Encoding", "")) and len(body) >= GZIP_MIN_BYTES
        self._respond(200, PROMETHEUS, gzip_fast(body) if gzip_ok else body, (
            ("Cache-Control", "no-store"), *((("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding"))
                                             if gzip_ok else ())))

    def healthz(self, body):
        self._respond(200, JSON, b'{"status":"ok"}', (("Cache-Control", "no-store"),), quiet=True)

    def readyz(self, body):
        if self.app.listener.draining:
            raise Unavailable("the server is stopping")
        try:
            self.app.service.check_ready()
        except StatusThingError as exc:
            raise Unavailable(f"the database does not answer: {exc.message}") from None
        self._respond(200, JSON, b'{"status":"ready"}', (("Cache-Control", "no-store"),), quiet=True)

    # -- e-mail subscriptions (public forms: their answers are pages) ---------------------------------------------

    def subscribe(self, body):
        if self.app.mailer is None:
            raise NotFound("e-mail subscriptions are off on this server")
        fields = urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        self.app.subscribe_guard.allow(self.client)
        try:
            self.app.service.subscribe((fields.get("email") or [""])[0], fields.get("items", [])[:MAX_FILTER_VALUES])
        except InvalidArgument as exc:
            return self._message_page(400, "Not subscribed", f"{exc.message}. Please go back and check it.")
        # (The same answer whether or not the address was subscribed already: the form tells nobody who is.)
        self._message_page(200, "Check your inbox", "If the address can receive e-mail, a link to confirm the "
                                                    "subscription is on its way. Nothing else is sent before you "
                                                    "use it.")

    def confirm_subscription(self, body, token):
        if self.command == "POST":
            if self.app.service.confirm_subscription(token):
                return self._message_page(200, "Subscribed", "You will be told by e-mail of incidents and "
                                                             "maintenance. Every e-mail has a link to stop them.")
            return self._message_page(404, "This link has expired", "Subscribe again on the status page.")
        # (Confirming takes a button: mail scanners open links, and must not subscribe anybody.)
        self._message_page(200, "Confirm your subscription", "", button="Confirm the subscription")

    def unsubscribe(self, body, token):
        if self.command == "POST":  # (RFC 8058's one-click unsubscribe posts here too)
            self.app.service.unsubscribe(token)
            return self._message_page(200, "Unsubscribed", "You will get no more e-mail from this status page.")
        self._message_page(200, "Unsubscribe", "Stop e-mail about incidents and maintenance?", button="Unsubscribe")

    def _message_page(self, status, heading, text, button=""):
        form = (f'<form method="post" action="{_html(self.path.split("?")[0])}"><button class="button">{_html(button)}'
                f'</button></form>' if button else "")
        page = _fill(self.app.assets.get("status.html"), self.app.config.title,
                     f'<h2>{_html(heading)}</h2>' + (f'<p>{_html(text)}</p>' if text else "") + form
                     + '<p><a href="/">&larr; The status page</a></p>', CLOCK.wall_ns(),
                     page_title=f"{heading} · {self.app.config.title}")
        self._respond(status, HTML, page.encode(), (("Cache-Control", "no-store"), *PAGE_SECURITY_HEADERS))

    def admin_subscribers(self, body):
        self._admin_user()
        found = self.app.service.list_subscribers()
        self._respond_json({"enabled": self.app.mailer is not None,
                            "confirmed": sum(1 for s in found if s.confirmed_ns),
                            "pending": sum(1 for s in found if not s.confirmed_ns),
                            "subscribers": [{"id": s.id, "email": s.email, "itemIds": list(s.item_ids),
                                             "confirmed": bool(s.confirmed_ns), "since": utc_iso(s.created_ns)}
                                            for s in found]})

    def admin_remove_subscriber(self, body):
        self._content_type()
        self._check_origin()
        actor = self._admin_user()
        try:
            subscriber_id = json.loads(self._decode_content_encoding(body))["id"]
            if not isinstance(subscriber_id, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise InvalidArgument('send {"id": "..."}') from None
        self.app.service.remove_subscriber(actor, subscriber_id)
        self._respond_json({})

    def page_admin(self, body):
        self._admin_user()
        self._respond(200, HTML, self.app.assets.get("admin.html").encode(), (
            ("Cache-Control", "no-store"), *PAGE_SECURITY_HEADERS))

    def admin_me(self, body):
        actor = self._admin_user()
        self._respond_json({"username": actor.name, "defaultPassword": self.app.accounts.default_password_in_use()})

    def admin_audit(self, body):
        self._admin_user()
        query = query_values(path_query(self.path), ("limit", "before", "item", "actor"))
        if len(query["item"]) > MAX_ID_CHARS or len(query["actor"]) > MAX_NAME_CHARS:
            raise InvalidArgument("item or actor is longer than any there is")
        limit, before = (_query_number(query[name], name, low, high) for name, low, high in (
            ("limit", 1, MAX_PAGE_SIZE), ("before", 1, 2 ** 63 - 1)))
        entries, names, actors, after = self.app.accounts.audit_page(limit or 50, before, query["item"],
                                                                     query["actor"])
        self._respond_json({"entries": [entry.to_api() for entry in entries], "names": names, "actors": actors,
                            **({"next": str(after)} if after else {})})

    def admin_logout(self, body):
        # A 401 without a challenge: browsers drop the credentials they keep for this site, and ask again the next
        # time /admin answers 401 with one. (Basic authentication has no other way to sign out.)
        page = _fill(self.app.assets.get("status.html"), self.app.config.title,
                     '<p class="overall c-nodata" role="status">You are signed out.</p>'
                     '<p><a href="/admin">Sign in again</a> · <a href="/">The status page</a></p>',
                     CLOCK.wall_ns(), page_title=f"Signed out · {self.app.config.title}")
        self._respond(401, HTML, page.encode(), (("Cache-Control", "no-store"), *PAGE_SECURITY_HEADERS))

    def admin_password(self, body):
        self._content_type()
        self._check_origin()
        actor = self._admin_user()
        try:
            fields = json.loads(self._decode_content_encoding(body))
            current, new = fields["currentPassword"], fields["newPassword"]
            if not (isinstance(current, str) and isinstance(new, str)):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise InvalidArgument('send {"currentPassword": "...", "newPassword": "..."}') from None
        self.app.accounts.change_own_password(actor, current, new)
        self._respond_json({})

    # -- who may write -----------------------------------------------------------------------------------------

    def _check_origin(self):
        """Browsers send Basic credentials on their own, so a write from another site's page must not pass.
        (Cross-site forms cannot send a JSON or proto content type, which every write already requires.)

        This server's own origins: --public-url's (behind a reverse proxy, the one browsers see), and the host
        the request was sent to (the Host header, or what a trusted proxy says the client asked for).
        """
        origin = self.headers.get("Origin")
        config = self.app.config
        if origin is None or origin in config.cors_origins:
            return
        if config.public_origin and origin_of(origin) == config.public_origin:
            return
        host = host_behind_proxies(self.client_address[0], self.headers, config.trusted_proxies)
        if urllib.parse.urlsplit(origin).netloc.lower() != host.lower():
            raise PermissionDenied(f"cross-site write refused: origin {origin} is not this server's"
                                   + ("" if config.public_url else " (behind a reverse proxy, start the server "
                                                                   "with --public-url)"))

    def _writer(self):
        self._check_origin()
        return self.app.accounts.authenticate(self.headers.get("Authorization"), self.client)

    def _admin_user(self):
        actor = self.app.accounts.authenticate(self.headers.get("Authorization"), self.client)
        if actor.kind != "user":
            raise PermissionDenied("the admin pages are for users, not API tokens")
        return actor

    # -- request bodies ----------------------------------------------------------------------------------------

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
        """The request body as sent (still compressed, if it is), within the size limit and the body deadline; an
        oversized one is refused unread."""
        kind, length = self.framing
        if kind == "length" and length == 0:
            return b""
        if kind == "length" and length > MAX_REQUEST_BYTES:
            self._refuse_oversized(length)
        expect = self.headers.get("expect")
        if expect is not None:
            if expect.lower() != "100-continue" or self.request_version != "HTTP/1.1":
                raise BadRequest(f"Expect: {expect} is not supported", 417)
            self.connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.deadline = time.monotonic() + self.app.config.request_timeout_s
        try:
            if kind == "chunked":
                return self._read_chunked()
            body = self.rfile.read(length)
            if len(body) < length:
                raise BadRequest("the request stopped before its body ended", 408)
            return body
        finally:
            self.deadline = None

    def _read_chunked(self):
        chunks, total = [], 0
        while True:
            line = self.rfile.readline(MAX_CHUNK_LINE_BYTES + 1)
            if not line.endswith(b"\n"):
                if len(line) > MAX_CHUNK_LINE_BYTES:
                    raise BadRequest("chunk size line too long")
                raise BadRequest("the request stopped before its body ended", 408)
            match = _CHUNK_LINE.fullmatch(line)
            if match is None:
                raise BadRequest("malformed chunk size line (expected hexadecimal digits)")
            total += int(match[1], 16) if len(match[1]) <= 16 else MAX_REQUEST_BYTES + 1
            if total > MAX_REQUEST_BYTES:
                self._refuse_oversized(total)
            size = int(match[1], 16)
            if size == 0:
                self._skip_trailers()
                return b"".join(chunks)
            chunk = self.rfile.read(size)
            if len(chunk) < size:
                raise BadRequest("the request stopped before its body ended", 408)
            chunks.append(chunk)
            if self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise BadRequest("a chunk is longer than its size line says")

    def _skip_trailers(self):
        total = 0
        while True:
            line = self.rfile.readline(MAX_TRAILER_BYTES + 1)
            total += len(line)
            if total > MAX_TRAILER_BYTES:
                raise BadRequest("trailers too large", 431)
            if not line.endswith(b"\n"):
                raise BadRequest("the request stopped before its trailers ended", 408)
            if line in (b"\r\n", b"\n"):
                return

    def _refuse_oversized(self, length):
        """Answer a body over the limit without reading it (so this connection cannot carry another request)."""
        message = f"request body of {length} bytes is larger than the {MAX_REQUEST_BYTES}-byte limit"
        self.close_connection = True
        # Connect's code for it on the RPC paths (HTTP 429 by the contract's table); plain 413 elsewhere.
        self._send_error(ResourceExhausted(message) if self.error_form == "json" else HttpError(413, message))
        _drain_briefly(self.connection)
        raise _AlreadyAnswered()

    def _decode_content_encoding(self, body):
        encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding == "gzip":
            return gunzip_limited(body, MAX_REQUEST_BYTES)
        if encoding != "identity":
            raise UnsupportedEncoding(f"content encoding {encoding} is not supported; use gzip or identity")
        return body

    # -- answers -----------------------------------------------------------------------------------------------

    def _respond_rpc(self, method, content_type, body):
        gzip_ok = accepts_gzip(self.headers.get("Accept-Encoding", ""))
        deadline = self._deadline()
        actor = None if method.public else self._writer()
        _check_deadline(deadline)  # (a write only starts while the client still waits for it)

        def answer():
            payload = run_rpc(self.app, method, decode(content_type, body, method.request_class), actor,
                              content_type, MAX_CONNECT_ANSWER_BYTES)
            if gzip_ok and len(payload) >= GZIP_MIN_BYTES:
                return gzip_fast(payload), (("Content-Encoding", "gzip"),)
            return payload, ()

        if method.public and len(body) <= MAX_CACHED_REQUEST_BYTES:
            payload, headers = self.app.answers.get(("connect", method.path, content_type, gzip_ok, body), answer,
                                                    size=lambda kept: len(kept[0]))
        else:
            payload, headers = answer()
        if method.reads_only:
            _check_deadline(deadline)
        self._respond(200, content_type, payload, headers)

    def _send_representation(self, representation):
        """Answer a GET with a Representation: conditional requests, gzip and HEAD, for every content type."""
        headers = [("ETag", representation.etag), ("Last-Modified", representation.last_modified),
                   ("Cache-Control", representation.cache_control), *representation.headers]
        if representation.compressible:
            headers.append(("Vary", "Accept-Encoding"))
        body = representation.body
        if representation.compressible and accepts_gzip(self.headers.get("Accept-Encoding", "")):
            body, headers[0] = representation.gzipped, ("ETag", representation.etag[:-1] + '-gz"')
            headers.append(("Content-Encoding", "gzip"))
        if representation.not_modified(self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")):
            return self._respond(304, representation.content_type, b"", headers)
        self._respond(200, representation.content_type, body, headers)

    def _origin(self):
        """The origin absolute links are written with: --public-url's, else the one this request was sent to."""
        config = self.app.config
        if config.public_origin:
            return config.public_origin
        host = host_behind_proxies(self.client_address[0], self.headers, config.trusted_proxies)
        if not _HOST.fullmatch(host):
            host = "localhost"  # (a Host header no browser sends: not copied into what others may be served)
        return f"{scheme_behind_proxies(self.client_address[0], self.headers, config.trusted_proxies)}://{host.lower()}"

    def _metrics_reader(self):
        """/metrics is for --metrics-token's bearer, an API token, or this machine."""
        config, authorization = self.app.config, self.headers.get("Authorization") or ""
        if config.metrics_token and hmac.compare_digest(authorization.encode(),
                                                        f"Bearer {config.metrics_token}".encode()):
            return
        if authorization.startswith("Bearer "):
            self.app.accounts.authenticate(authorization, self.client)
            return
        if ipaddress.ip_address(self.client).is_loopback:
            return
        raise Unauthenticated("/metrics needs a bearer token (--metrics-token, or an API token)")

    def _respond_json(self, value):
        self._respond(200, JSON, json.dumps(value, ensure_ascii=False).encode(), (("Cache-Control", "no-store"),))

    def _send_error(self, error):
        """The one error writer of this server's HTTP side."""
        if isinstance(error, BadRequest):
            self.close_connection = True
        if self.error_form == "html" and (isinstance(error, NotFound) or getattr(error, "status", 0) == 404):
            body = render_missing_page(self.app.assets.get("status.html"), self.app.config.title).encode()
            return self._respond(404, HTML, body, PAGE_SECURITY_HEADERS)
        status, content_type, headers, body = error_answer(error, "text" if self.error_form == "html" else
                                                           self.error_form)
        self._respond(status, content_type, body, headers, code=getattr(error, "code", None))

    def _respond(self, status, content_type, body, headers=(), code=None, quiet=False):
        if self.app.listener.draining:
            self.close_connection = True
        headers = list(headers)
        origin = self.headers.get("Origin") if self.app.config.cors_origins else None
        if origin in self.app.config.cors_origins:
            headers.extend((("Access-Control-Allow-Origin", origin), ("Vary", "Origin"),
                            ("Access-Control-Expose-Headers", "Content-Encoding, Retry-After, WWW-Authenticate")))
        head = response_head(status, content_type, None if status == 304 else len(body), headers,
                             self.close_connection)
        send_all(self.connection, (head, b"" if self.command == "HEAD" or status == 304 else body))
        self._log(status, code, quiet)

    def _log(self, status, code=None, quiet=False):
        """Log the request (``quiet``: health checks, which are only counted)."""
        started = getattr(self, "started", None)
        duration = round((time.perf_counter() - started) * 1000, 3) if started else None
        if quiet:
            REQUEST_METRICS.observe("http", self.command, status, duration / 1000 if duration is not None else None)
            return
        log_request("http", self.command, getattr(self, "path", None), status, code, duration, self.client)


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
# 17. gRPC: servicer, reflection, relay
# ==================================================================================================================

REFLECTION_SERVICES = ("grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection")


def _grpc_unary_handler(method, app):
    """The grpcio handler for one RPC: the same binding as Connect, errors mapped through the same CODES.

    It takes and gives bytes: the request is parsed here, so a message that does not parse is INVALID_ARGUMENT
    (grpcio's own parser would answer INTERNAL), and read answers are kept as the bytes that go out.
    """

    def handle(request_bytes, context):
        started = time.perf_counter()
        code = "OK"
        metadata = dict(context.invocation_metadata())
        client = client_behind_proxies(app.relay.client_of(context.peer()), metadata, app.config.trusted_proxies)

        def answer(actor):
            return run_rpc(app, method, decode_binary(request_bytes, method.request_class), actor, PROTO,
                           MAX_GRPC_ANSWER_BYTES)

        remaining = context.time_remaining()
        deadline = None if remaining is None else time.monotonic() + remaining
        try:
            if method.public:
                if len(request_bytes) > MAX_CACHED_REQUEST_BYTES:
                    payload = answer(None)
                else:
                    payload = app.answers.get(("grpc", method.path, request_bytes), lambda: answer(None))
                _check_deadline(deadline)
                return payload
            actor = app.accounts.authenticate(metadata.get("authorization"), client)
            _check_deadline(deadline)  # (a write only starts while the client still waits for it)
            return answer(actor)
        except Exception as exc:
            if not isinstance(exc, StatusThingError):
                log_internal_error(exc, method.path)
                exc = Internal("internal error")
            code = CODES[exc.code].grpc.name
            if exc.retry_after_s is not None:
                context.set_trailing_metadata((("retry-after", str(exc.retry_after_s)),))
            context.abort(CODES[exc.code].grpc, exc.message)
        finally:
            seconds = time.perf_counter() - started
            REQUEST_METRICS.observe("grpc", method.name, code, seconds)
            log(protocol="grpc", method=method.path, code=code, duration_ms=round(seconds * 1000, 3), remote=client)

    return grpc.unary_unary_rpc_method_handler(handle)  # (no (de)serializers: bytes in, bytes out)


def _add_reflection(server):
    """Server reflection under both names: v1alpha as grpcio-reflection ships it, and v1 (the same messages under a
    newer package, which current grpcurl and buf ask for first)."""
    from grpc_reflection.v1alpha import reflection, reflection_pb2  # (only devmode pays for these imports)

    _describe_reflection_v1(reflection_pb2.DESCRIPTOR)
    names = tuple(dict.fromkeys(method.service for method in METHODS.values())) + REFLECTION_SERVICES
    reflection.enable_server_reflection(names, server)  # v1alpha
    v1_handler = grpc.stream_stream_rpc_method_handler(
        reflection.ReflectionServicer(names).ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        REFLECTION_SERVICES[0], {"ServerReflectionInfo": v1_handler}),))


def _describe_reflection_v1(v1alpha_file):
    """Add grpc/reflection/v1/reflection.proto to the descriptor pool, made from the v1alpha file.

    grpcio-reflection has no v1 descriptor, so a server that lists grpc.reflection.v1.ServerReflection could not
    describe it, and tools that describe every listed service stopped there. The v1 file is the v1alpha one
    field for field under another package, so a renamed copy is exact.
    """
    from google.protobuf import descriptor_pb2, descriptor_pool

    pool = descriptor_pool.Default()
    name = "grpc/reflection/v1/reflection.proto"
    with contextlib.suppress(KeyError):
        pool.FindFileByName(name)
        return  # (already added, or a newer grpcio-reflection ships it)
    old, new = v1alpha_file.package, "grpc.reflection.v1"
    file = descriptor_pb2.FileDescriptorProto()
    v1alpha_file.CopyToProto(file)
    file.name, file.package = name, new
    file.ClearField("options")

    def rename(type_name):
        return type_name.replace(f".{old}.", f".{new}.", 1)

    def rename_fields(messages):
        for message in messages:
            for field in message.field:
                if field.HasField("type_name"):
                    field.type_name = rename(field.type_name)
            rename_fields(message.nested_type)

    rename_fields(file.message_type)
    for service in file.service:
        for method in service.method:
            method.input_type, method.output_type = rename(method.input_type), rename(method.output_type)
    pool.Add(file)


def build_grpc_server(app, devmode, socket_path):
    """A grpcio server on a Unix socket at ``socket_path`` (in a directory only this user can enter, so no other
    local user reaches it past the public port's limits and login throttling). The public port relays to it."""
    idle_ms = int(app.config.idle_timeout_s * 1000)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="grpc"), options=[
        ("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
        # An idle HTTP/2 connection gets a GOAWAY just before the relay's own idle limit would cut it.
        ("grpc.max_connection_idle_ms", max(100, idle_ms - 1000)),
        ("grpc.server_handshake_timeout_ms", int(app.config.request_timeout_s * 1000)),
    ])
    by_service = {}
    for method in METHODS.values():
        by_service.setdefault(method.service, {})[method.name] = _grpc_unary_handler(method, app)
    for service, handlers in by_service.items():
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    if devmode:
        _add_reflection(server)
    server.add_insecure_port(f"unix:{socket_path}")
    return server


class GrpcRelay:
    """Copies bytes between a client's connection on the public port and the gRPC server's Unix socket.

    Each relayed connection binds its end of the Unix socket to an abstract name of its own, which grpcio reports
    as the peer (``unix-abstract:<name>``); ``client_of`` maps that name back to the client's address. A
    connection with no traffic either way for --idle-timeout is closed (HTTP/2 included).
    """

    def __init__(self, socket_path, idle_timeout_s):
        self.socket_path = socket_path
        self._idle_ms = int(idle_timeout_s * 1000)
        self._clients = {}  # abstract name -> the client's address

    def client_of(self, peer):
        """``"unix-abstract:statusthing-relay-…"`` (a relayed connection) -> the client's address; anything else
        came in past the public port (a process of this user on the socket itself) and counts as "local"."""
        return self._clients.get(peer.removeprefix("unix-abstract:"), "local")

    def relay(self, client, client_address):
        name = f"statusthing-relay-{os.getpid()}-{secrets.token_hex(8)}"
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.bind(b"\0" + name.encode())
            upstream.connect(self.socket_path)
        except OSError:
            upstream.close()
            return
        self._clients[name] = client_address[0]
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peers = {client.fileno(): (client, upstream), upstream.fileno(): (upstream, client)}
        poller = select.poll()  # (select() cannot watch descriptors past 1024; poll can)
        for fd in peers:
            poller.register(fd, select.POLLIN)
        try:
            while peers:
                events = poller.poll(self._idle_ms)
                if not events:
                    break  # idle past the limit both ways
                for fd, _ in events:
                    if fd not in peers:
                        continue
                    source, target = peers[fd]
                    try:
                        data = source.recv(65536)
                    except OSError:
                        data = b""
                    if data:
                        target.sendall(data)
                    else:  # one side is done sending: pass the half-close on, keep relaying the other way
                        poller.unregister(fd)
                        del peers[fd]
                        with contextlib.suppress(OSError):
                            target.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            self._clients.pop(name, None)
            upstream.close()


# ==================================================================================================================
# 18. Telling people: webhooks, e-mail, and the delivery worker
# ==================================================================================================================
# Events are written to the outbox in the transaction of the change that causes them (section 7); one worker per
# process turns them into deliveries and sends those outside every write, retrying on Standard Webhooks'
# schedule. A delivery is leased while it is being sent, so with several processes on one database each goes out
# once (and, after a crash, again once its lease runs out: receivers de-duplicate on webhook-id).

WEBHOOK_RESPONSE_BYTES = 64 << 10  # read of a receiver's answer (the rest is not waited for)
SENDERS = 8  # deliveries sent at once by one worker
SUBSCRIPTIONS_PER_HOUR = 5  # per client address
LEASE_MARGIN_S = 5.0
WORKER_POLL_S = 0.5  # how often the worker looks for work another process wrote
WORKER_BATCH_S = 0.1  # while busy, the worker's pause between rounds (writes are not slowed by its transactions)
PRUNE_EVERY_S = 3600


def webhook_signature(secret, message_id, timestamp_s, body):
    """Standard Webhooks v1: base64 HMAC-SHA256 of "id.timestamp.body", keyed by the secret's bytes."""
    mac = hmac.new(secret, f"{message_id}.{timestamp_s}.".encode() + body, "sha256").digest()
    return "v1," + base64.b64encode(mac).decode()


def webhook_body(webhook, event, page_id):
    """The bytes a webhook is sent: Standard Webhooks' body as written with the event, or Statuspage's."""
    if webhook.body_format != "statuspage":
        return event.body.encode()
    return json_bytes(statuspage_webhook_body(json.loads(event.body), page_id))


def statuspage_webhook_body(body, page_id):
    """Statuspage's subscriber webhook bodies (meta, page, and a component_update or an incident), from ours."""
    data = body["data"]
    answer = {"meta": {"unsubscribe": None, "documentation": None, "generated_at": body["timestamp"]},
              "page": {"id": page_id}}
    if "change" in data:
        item, change = data["item"], data["change"]
        new = SP_STATUS.get(pb.Condition.Value(change.get("newStatus", {}).get("condition", "CONDITION_UNSPECIFIED")),
                            "operational")
        old = SP_STATUS.get(pb.Condition.Value(change.get("oldStatus", {}).get("condition", "CONDITION_UNSPECIFIED")),
                            "operational")
        answer["component_update"] = {"old_status": old, "new_status": new, "created_at": change["changedAt"],
                                      "component_type": "Component", "id": change["id"], "component_id": item["id"]}
        answer["component"] = _sp_told_component(item, new, page_id)
    elif "incident" in data:
        incident = json_format.ParseDict(data["incident"], pb.Incident())
        item = data.get("item")
        components = {item["id"]: _sp_told_component(item, SP_STATUS.get(pb.Condition.Value(
            item.get("status", {}).get("condition", "CONDITION_UNSPECIFIED")), "operational"), page_id)} if item else {}
        answer["incident"] = sp_incident(incident, components, page_id, "")
    elif "maintenance" in data:
        maintenance = data["maintenance"]
        answer["incident"] = {"id": maintenance["id"], "name": maintenance["title"],
                              "status": _SP_MAINTENANCE_STATUS[body["type"]], "impact": "maintenance",
                              "scheduled_for": maintenance.get("startsAt"),
                              "scheduled_until": maintenance.get("endsAt"),
                              "created_at": maintenance["timestamps"]["created"],
                              "updated_at": maintenance["timestamps"]["updated"], "page_id": page_id,
                              "incident_updates": [], "components": []}
    return answer


def _sp_told_component(item, sp_status, page_id):
    """A component as Statuspage's webhooks carry it, from an item as our events do."""
    return {"status": sp_status, "name": item["name"], "created_at": item["timestamps"]["created"],
            "updated_at": item["timestamps"]["updated"], "position": item.get("position", 0),
            "description": item.get("description"), "showcase": True, "id": item["id"], "page_id": page_id,
            "group_id": None}


_SP_MAINTENANCE_STATUS = {"maintenance.scheduled": "scheduled", "maintenance.started": "in_progress",
                          "maintenance.completed": "completed", "maintenance.cancelled": "completed"}


class WebhookAttempt(typing.NamedTuple):
    """How one POST to a webhook went: its status code (None: no answer), an error text, how long it took."""

    status_code: int | None
    error: str
    duration_ms: float

    @property
    def delivered(self):
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self):  # (410 Gone: the receiver asks never to be sent anything again)
        return self.status_code == 410


def send_webhook(webhook, event, page_id, timeout_s):
    """POST one event to a webhook: a WebhookAttempt. Redirects are not followed (they count as failures), and a
    receiver that hangs is cut off after ``timeout_s``."""
    body = webhook_body(webhook, event, page_id)
    sent_at = CLOCK.wall_ns() // 10 ** 9
    parts = urllib.parse.urlsplit(webhook.url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    started = time.perf_counter()
    connection = connection_class(parts.hostname, parts.port, timeout=timeout_s)
    try:
        connection.request("POST", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), body=body,
                           headers={"Content-Type": "application/json", "User-Agent": f"StatusThing/{VERSION}",
                                    "webhook-id": event.id, "webhook-timestamp": str(sent_at),
                                    "webhook-signature": webhook_signature(webhook.secret, event.id, sent_at, body)})
        response = connection.getresponse()
        response.read(WEBHOOK_RESPONSE_BYTES)
        error = "" if 200 <= response.status < 300 else f"the receiver answered {response.status} {response.reason}"
        return WebhookAttempt(response.status, error, round((time.perf_counter() - started) * 1000, 1))
    except (OSError, http.client.HTTPException) as exc:
        reason = "no answer within the timeout" if isinstance(exc, TimeoutError) else str(exc) or type(exc).__name__
        return WebhookAttempt(None, reason, round((time.perf_counter() - started) * 1000, 1))
    finally:
        connection.close()


class Mailer:
    """Sends mail through --smtp-url (smtp:// with STARTTLS when offered, or smtps://), from --mail-from."""

    def __init__(self, smtp_url, mail_from, password="", timeout_s=10.0):
        parts = urllib.parse.urlsplit(smtp_url)
        self.secure = parts.scheme == "smtps"
        self.host, self.port = parts.hostname, parts.port or (465 if self.secure else 25)
        self.user = urllib.parse.unquote(parts.username or "")
        self.password = password or urllib.parse.unquote(parts.password or "")
        self.mail_from, self.timeout_s = mail_from, timeout_s

    def send(self, message):
        """Send one message (an email.message.EmailMessage), from --mail-from; raises OSError or
        smtplib.SMTPException."""
        message["From"] = self.mail_from
        # (The certificate is checked as a browser would, against the system's CAs or SSL_CERT_FILE.)
        context = ssl.create_default_context()
        if self.secure:
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_s, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
        with smtp:
            if not self.secure:
                smtp.ehlo()
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=context)
                    smtp.ehlo()
            if self.user:
                smtp.login(self.user, self.password)
            smtp.send_message(message)


def parse_smtp_url(url):
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError(f"expected smtp://[user:password@]host[:port] or smtps://..., got {url!r}")
    parts.port  # (ValueError for a bad port)
    return url


def mail_for(event, subscriber, title, origin, unsubscribe_token, confirm_token=""):
    """The message an event makes for a subscriber: plain text and HTML, a link to the page, and an unsubscribe
    link also as List-Unsubscribe with one-click unsubscribing (RFC 8058)."""
    body = json.loads(event.body)
    data = body["data"]
    if event.type == "subscriber.confirm":
        link = f"{origin}/subscribe/confirm/{confirm_token}"
        subject = f"Confirm your subscription to {title}"
        lines = [f"Someone (we hope you) asked to be told by e-mail of incidents and maintenance on {title}.",
                 f"To confirm, open this link within {CONFIRM_LINK_S // 3600} hours:", link,
                 "If it was not you, do nothing: you will not hear from us again."]
    elif "incident" in data:
        incident = json_format.ParseDict(data["incident"], pb.Incident())
        word = {"incident.opened": "New incident", "incident.updated": "Update",
                "incident.resolved": "Resolved"}[event.type]
        subject = f"[{title}] {word}: {incident_title(incident)}"
        updates = merge_updates(incident.changes, incident.notes)
        lines = [f"{word}: {incident_title(incident)}",
                 *(f"{utc_iso(update.at.ToNanoseconds(), 'minutes').replace('T', ' ')} "
                   f"{update_label(update, incident)}: {update_body(update, incident.item_name)}"
                   for update in updates[:10]),
                 f"Details: {origin}/incidents/{incident.id}"]
    else:
        maintenance = data["maintenance"]
        word = {"maintenance.scheduled": "Scheduled maintenance", "maintenance.started": "Maintenance in progress",
                "maintenance.completed": "Maintenance completed", "maintenance.cancelled": "Maintenance cancelled"
                }[event.type]
        subject = f"[{title}] {word}: {maintenance['title']}"
        lines = [f"{word}: {maintenance['title']}", maintenance.get("description", ""),
                 f"From {maintenance['startsAt']} to {maintenance['endsAt']} (UTC)", f"Status page: {origin}/"]
    unsubscribe = f"{origin}/unsubscribe/{unsubscribe_token}"
    message = email.message.EmailMessage()
    message["Subject"] = subject
    message["To"] = subscriber.email
    message["Date"] = email.utils.formatdate(CLOCK.wall_ns() / 1e9)
    message["Message-ID"] = email.utils.make_msgid(domain=urllib.parse.urlsplit(origin).hostname or "statusthing")
    message["List-Unsubscribe"] = f"<{unsubscribe}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    text = "\n\n".join(line for line in lines if line) + f"\n\n--\nTo stop these e-mails: {unsubscribe}\n"
    message.set_content(text)
    html_body = "".join(f"<p>{linked_text(line)}</p>" for line in lines if line)
    message.add_alternative(f'<!doctype html><html><body>{html_body}<hr><p><small><a href="{_html(unsubscribe)}">'
                            f'Unsubscribe</a> from {_html(title)}.</small></p></body></html>', subtype="html")
    return message


class SubscribeGuard:
    """At most SUBSCRIPTIONS_PER_HOUR subscription requests from one client address in an hour (each mails
    someone: the form must not become a way to flood an inbox). Counted in the database, in one write (writes
    take turns): servers sharing a database share the count, and a refused request is not counted."""

    def __init__(self, store):
        self._store = store

    def allow(self, client):
        now, hour = CLOCK.wall_ns(), 3600 * 10 ** 9
        with self._store.write(changes_data=False) as tx:
            times = tx.subscribe_requests(client, now - hour)
            if len(times) >= SUBSCRIPTIONS_PER_HOUR:
                raise ResourceExhausted("too many subscription requests from your address; try again later",
                                        retry_after_s=math.ceil((times[-SUBSCRIPTIONS_PER_HOUR] + hour - now) / 1e9))
            tx.record_subscribe_request(client, now, now - hour)


class Notifier:
    """The delivery worker of this process."""

    def __init__(self, service, config, mailer, origin):
        self.service, self.config, self.mailer, self.origin = service, config, mailer, origin
        self._stopping = threading.Event()
        self._sending = set()  # deliveries being sent by this worker's senders
        self._lock = threading.Lock()
        self._senders = concurrent.futures.ThreadPoolExecutor(SENDERS, thread_name_prefix="sender")
        self._thread = threading.Thread(target=self._run, name="notifier", daemon=True)
        self._pruned_at = 0.0

    def start(self):
        self._thread.start()

    def stop(self, grace):
        self._stopping.set()
        self.service.told.set()
        if self._thread.is_alive():
            self._thread.join(grace)
        self._senders.shutdown(wait=False, cancel_futures=True)

    def _run(self):
        while not self._stopping.is_set():
            busy = False
            try:
                self.service.tell_maintenance_transitions()
                busy = self.service.fan_out() > 0
                with self._lock:
                    free = SENDERS - len(self._sending)
                lease_ns = int((self.config.webhook_timeout_s + LEASE_MARGIN_S) * 10 ** 9)
                for delivery, event, target in self.service.claim_deliveries(free, lease_ns):
                    busy = True
                    with self._lock:
                        self._sending.add(delivery.id)
                    self._senders.submit(self._deliver, delivery, event, target)
                if time.monotonic() - self._pruned_at > PRUNE_EVERY_S:
                    self._pruned_at = time.monotonic()
                    self.service.prune_notifications(self.config.retention_days)
            except StatusThingError as exc:  # (a locked or full database: the next round tries again)
                log(level="warning", event="notifier_failed", error=exc.message)
            except Exception as exc:
                log_internal_error(exc, "notifier")
            if busy:  # (a moment for more events to gather: one transaction for many, not one per write)
                self._stopping.wait(WORKER_BATCH_S)
            else:
                self.service.told.wait(WORKER_POLL_S)
                self.service.told.clear()

    def _deliver(self, delivery, event, target):
        try:
            if delivery.channel == "webhook":
                attempt = send_webhook(target, event, self.service.page_identity()[0],
                                       self.config.webhook_timeout_s)
                status_code, error, duration_ms = attempt
                delivered, gone = attempt.delivered, attempt.gone
            else:
                status_code, error, duration_ms = None, "", 0.0
                started = time.perf_counter()
                try:
                    unsubscribe = self.service.link_token("unsubscribe", target.id)
                    confirm = self.service.link_token("confirm", target.id, target.confirm_nonce or "")
                    self.mailer.send(mail_for(event, target, self.config.title, self.origin, unsubscribe, confirm))
                    delivered = True
                except (OSError, smtplib.SMTPException) as exc:
                    error, delivered = str(exc) or type(exc).__name__, False
                duration_ms, gone = round((time.perf_counter() - started) * 1000, 1), False
            done = self.service.record_attempt(delivery, status_code, error, duration_ms, delivered, gone)
            log(event="delivery", channel=delivery.channel, event_type=delivery.event_type, event_id=event.id,
                target=delivery.target_id, attempt=done.attempt, state=done.state, status=status_code,
                error=error or None, duration_ms=duration_ms)
        except StatusThingError as exc:
            log(level="warning", event="delivery_not_recorded", error=exc.message)
        except Exception as exc:
            log_internal_error(exc, "delivery")
        finally:
            with self._lock:
                self._sending.discard(delivery.id)
            self.service.told.set()  # (a sender is free again)


# ==================================================================================================================
# 19. Assembly: App, listener, command line
# ==================================================================================================================

HTTP2_PREFACE_START = b"PRI"  # "PRI * HTTP/2.0\r\n..."; no HTTP/1.1 method starts with these three bytes


def too_many_connections(message):
    """The answer to a connection beyond a limit, written before any request is read."""
    status, content_type, headers, body = error_answer(Unavailable(message, retry_after_s=1))
    return response_head(status, content_type, len(body), headers, close=True) + body


class Listener(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """The one public socket. A thread per connection peeks at its first bytes: HTTP/2 (gRPC) goes to the
    relay, anything else to the Connect handler. Connections are capped in all (--max-connections) and per
    client address (--max-connections-per-client; trusted proxies, which carry many clients, are exempt)."""

    daemon_threads = True
    block_on_close = True
    allow_reuse_address = True
    request_queue_size = 1024  # a burst of new connections waits in the kernel instead of being refused

    def __init__(self, address, handler_class, config):
        host, port = address
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.relay = None  # the App sets it once the gRPC server is built
        self.connections = set()  # HTTP handlers, for the drain and the deadlines
        self.connections_lock = threading.Lock()
        self.open_connections = 0  # every accepted connection with its thread, HTTP or gRPC
        self.open_by_peer = {}  # peer address -> its open connections
        self.max_connections = config.max_connections
        self.max_per_client = config.max_connections_per_client
        self.trusted_proxies = config.trusted_proxies
        self.idle_timeout_s = config.idle_timeout_s
        self.draining = False
        self._next_deadline_check = 0.0
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._stopped = threading.Event()
        self._stopped.set()  # (until serve_forever runs)
        super().__init__((host, port), handler_class)

    def serve_forever(self, poll_interval=None):
        """Accept connections until ``shutdown``; each wake-up accepts every connection waiting, not just one.

        (socketserver's own loop polls for a shutdown every half second, so a stop waited for it.)
        """
        self._stopped.clear()
        self.socket.setblocking(False)
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self.socket, selectors.EVENT_READ)
                selector.register(self._wake_reader, selectors.EVENT_READ)
                while True:
                    for key, _ in selector.select(timeout=DEADLINE_CHECK_S):
                        if key.fileobj is self._wake_reader:
                            return
                        self._accept_waiting()
                    if time.monotonic() >= self._next_deadline_check:
                        self._enforce_deadlines()
        finally:
            self._stopped.set()

    def _accept_waiting(self):
        while True:
            try:
                request, client_address = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # out of descriptors or memory: let a moment pass rather than spin on the selector
                time.sleep(0.05)
                return
            request.setblocking(True)
            self.process_request(request, client_address)

    def _enforce_deadlines(self):
        """Cut the reading side of connections whose request head or body is overdue: their handler then sees
        the end of the input and answers 408."""
        now = time.monotonic()
        self._next_deadline_check = now + DEADLINE_CHECK_S
        with self.connections_lock:
            overdue = [handler for handler in self.connections if handler.deadline is not None
                       and handler.deadline < now]
        for handler in overdue:
            handler.timed_out = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RD)

    def shutdown(self):
        """Stop accepting, at once; returns when the accept loop has ended."""
        self._wake_writer.send(b"x")
        self._stopped.wait()

    def server_close(self):
        super().server_close()
        self._wake_reader.close()
        self._wake_writer.close()

    def process_request(self, request, client_address):
        # Each connection holds a thread; past a limit a new one is answered 503 at once and closed, so that a
        # flood of connections cannot exhaust threads or memory, nor one address take them all.
        peer = client_address[0]
        with self.connections_lock:
            from_peer = self.open_by_peer.get(peer, 0)
            if self.open_connections >= self.max_connections:
                refusal = "too many open connections; try again shortly"
            elif from_peer >= self.max_per_client and not _trusted(peer, self.trusted_proxies):
                refusal = f"too many open connections from {peer}; close some and try again"
            else:
                refusal = None
                self.open_connections += 1
                self.open_by_peer[peer] = from_peer + 1
        if refusal:
            log_request("http", None, None, 503, "unavailable", None, peer)
            with contextlib.suppress(OSError):
                request.settimeout(1)
                request.sendall(too_many_connections(refusal))
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.connections_lock:
                self.open_connections -= 1
                left = self.open_by_peer.pop(client_address[0]) - 1
                if left:
                    self.open_by_peer[client_address[0]] = left

    def finish_request(self, request, client_address):
        # Idle limits set in the kernel (SO_RCVTIMEO/SO_SNDTIMEO) on a blocking socket, not as a Python socket
        # timeout: with the latter, every recv and send is preceded by a poll, which doubles the system calls
        # and interpreter-lock hand-offs of each request. A read that times out then returns no data (the
        # connection is closed as idle); a send that times out raises BlockingIOError.
        idle = struct.pack("ll", int(self.idle_timeout_s), int(self.idle_timeout_s % 1 * 1e6))
        request.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, idle)
        request.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, idle)
        try:
            head = request.recv(len(HTTP2_PREFACE_START), socket.MSG_PEEK | socket.MSG_WAITALL)
        except OSError:
            return
        if head == HTTP2_PREFACE_START:
            self.relay.relay(request, client_address)
        elif head:  # (nothing at all: closed, or silent past the idle limit)
            self.RequestHandlerClass(request, client_address, self)

    def handle_error(self, request, client_address):
        # A client hanging up (ConnectionError) or stalling past the idle limit is not worth a log line.
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, TimeoutError, BlockingIOError)):
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
        self.assets = Assets(devmode=config.devmode)
        handler_class = type("AppHandler", (Handler,), {"app": self})
        # The port first: when it is taken, the database is never touched (no new file is left behind).
        try:
            self.listener = Listener((host, port), handler_class, config)
        except OSError as exc:
            raise StartupError(f"cannot listen on {config.api_addr}: {exc.strerror or exc}") from None
        try:
            self.store, self.accounts = open_database(config)
        except StartupError:
            self.listener.server_close()
            raise
        self.service = StatusThingService(self.store, TimeZone(config.timezone))
        self.service.webhook_timeout_s = config.webhook_timeout_s
        self.answers = AnswerCache(self.service.generation)
        self.item_answers = ItemAnswers(self.service, self.answers)
        self.site = Site(config, self.assets, self.service, self.answers, self.item_answers)
        self.service.on_item_deleted.append(self._forget_item)
        self._stopping = threading.Event()
        self._janitor = threading.Thread(target=self._purge_deleted_notes, name="janitor", daemon=True)
        if config.export_dir and not config.public_url:
            self.store.close()
            self.listener.server_close()
            raise StartupError("--export-dir needs --public-url: where the copy is served (its feeds and JSON carry "
                               "absolute links)")
        self._exporter = threading.Thread(target=self._keep_exported, name="exporter", daemon=True)
        if config.smtp_url and not (config.public_url and config.mail_from):
            self.store.close()
            self.listener.server_close()
            raise StartupError("--smtp-url needs --mail-from (the sender) and --public-url (mails link to the page)")
        self.mailer = Mailer(config.smtp_url, config.mail_from, config.smtp_password,
                             config.webhook_timeout_s) if config.smtp_url else None
        self.notifier = Notifier(self.service, config, self.mailer, config.public_origin)
        self.subscribe_guard = SubscribeGuard(self.store)
        self._grpc_folder = tempfile.mkdtemp(prefix="statusthing-grpc-")  # mode 0700: this user only
        socket_path = os.path.join(self._grpc_folder, "grpc.sock")
        self.grpc_server = build_grpc_server(self, config.devmode, socket_path)
        self.relay = self.listener.relay = GrpcRelay(socket_path, config.idle_timeout_s)
        self._serve_thread = threading.Thread(target=self.listener.serve_forever, name="listener", daemon=True)

    @property
    def address(self):
        host, port = self.listener.server_address[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def start(self):
        if self.service.tally_uptime_in_zone():
            log(event="uptime_tallied", time_zone=self.service.zone.name)
        self.service.page_identity()  # (made now, so that no read ever writes it)
        self.grpc_server.start()
        self._serve_thread.start()
        self.service.purges_waiting.set()  # (purges a previous run left unfinished)
        self._janitor.start()
        if self.config.export_dir:
            self._exporter.start()
        self.service.token_secret()  # (made now, so that no read ever writes it)
        self.notifier.start()

    def _forget_item(self, item_id):
        self.item_answers.forget(item_id)
        self.answers.forget_mentions(item_id)

    def _purge_deleted_notes(self):
        """The janitor: purges the notes of deleted items in small transactions, when a deletion asks for it (and
        now and then, for deletions made by another process)."""
        while not self._stopping.is_set():
            self.service.purges_waiting.wait(PURGE_CHECK_S)
            self.service.purges_waiting.clear()
            if self._stopping.is_set():
                return
            try:
                self.service.purge_deleted_notes()
                self.service.prune_changes()
            except StatusThingError as exc:  # (a full disk, say: the next round tries again)
                log(level="warning", event="purge_failed", error=exc.message)
            except Exception as exc:
                log_internal_error(exc, "janitor")

    def _keep_exported(self):
        """Export the public site to --export-dir at start, after every change of data (by anyone), and when what
        it shows moves with the clock (today's figures, midnight)."""
        exporter = Exporter(self.site, self.config.public_origin)
        seen, until = None, math.inf
        while True:
            generation = self.service.generation()
            if generation != seen or CLOCK.wall_ns() >= until:
                started = time.perf_counter()
                _VALIDITY.limits.append(math.inf)
                try:
                    written = exporter.publish(self.config.export_dir)
                    seen = generation
                    log(event="exported", path=os.path.abspath(self.config.export_dir), files=written,
                        duration_ms=round((time.perf_counter() - started) * 1000, 1))
                except (OSError, StatusThingError, StartupError) as exc:  # (the next round tries again)
                    log(level="warning", event="export_failed", error=str(exc))
                except Exception as exc:
                    log_internal_error(exc, "exporter")
                finally:
                    until = _VALIDITY.limits.pop()
            if self._stopping.wait(EXPORT_CHECK_S):
                return

    def stop(self, grace=SHUTDOWN_GRACE_S):
        """Stop taking connections, let requests in flight finish (up to ``grace`` seconds), close the database."""
        self._stopping.set()
        self.service.purges_waiting.set()
        self.listener.shutdown()  # no new connections from here on
        self.listener.socket.close()
        grpc_stopped = self.grpc_server.stop(grace)
        self.listener.drain(grace)
        grpc_stopped.wait(grace)
        self.listener.server_close()
        if self._janitor.is_alive():
            self._janitor.join(grace)
        if self._exporter.is_alive():
            self._exporter.join(grace)
        self.notifier.stop(grace)
        self.store.close()
        shutil.rmtree(self._grpc_folder, ignore_errors=True)


def open_database(config, create=True):
    """(Store, Accounts) on the configured database, migrated, with a first user when there is none.

    ``create=False`` (the commands) refuses a database that does not exist yet, rather than making an empty one
    beside the wrong server.
    """
    store = open_store(config.db_path, create=create, durability=config.durability)
    accounts = Accounts(store)
    try:
        accounts.ensure_first_user(config.first_admin_password)
    except StatusThingError as exc:
        store.close()
        raise StartupError(f"cannot create the first user: {exc.message}") from None
    return store, accounts


# Every server flag can also be set in the environment as STATUSTHING_<FLAG> (a systemd unit or a shell profile
# sets it once for the server and every command alike); the command line wins. Repeatable flags take a
# comma-separated list.
def env_name(flag):
    return "STATUSTHING_" + flag.lstrip("-").upper().replace("-", "_")


class _Flags:
    """Adds flags whose default comes from the environment, and says so in --help."""

    def __init__(self, parser, environ):
        self._parser, self._environ = parser, environ

    def add(self, flag, default=None, help="", repeatable=False, **options):
        name = env_name(flag)
        value = self._environ.get(name)
        if value is not None and value.strip():
            default = [part.strip() for part in value.split(",") if part.strip()] if repeatable else value
        if repeatable:
            options["action"] = _AppendReplacingDefault
            default = default or []
        self._parser.add_argument(flag, default=default, help=f"{help} [env {name}]", **options)


class _AppendReplacingDefault(argparse.Action):
    """A repeatable flag whose values on the command line replace its default (from the environment)."""

    def __call__(self, parser, namespace, values, option_string=None):
        current = getattr(namespace, self.dest)
        setattr(namespace, self.dest, [*([] if current is self.default else current), values])


def _build_parser(environ):
    parser = argparse.ArgumentParser(
        prog="statusthing.py",
        description="StatusThing: a self-hosted status page. Without a command, serves the statusthing.v1 API "
                    "over gRPC and the Connect protocol (JSON and binary) on one address, stored in SQLite.",
        epilog="On a database without users the first start creates 'admin' with the password 'password', or "
               "with $STATUSTHING_ADMIN_PASSWORD when that is set.")
    flags = _Flags(parser, environ)
    flags.add("--api-addr", DEFAULT_API_ADDR, metavar="HOST:PORT",
              help=f"address to listen on for Connect and gRPC alike (default {DEFAULT_API_ADDR}; port 0 picks a "
                   "free port, printed in the startup log line)")
    flags.add("--db", DEFAULT_DB, metavar="PATH",
              help=f"SQLite database file, created and migrated on start (default {DEFAULT_DB}); ':memory:' for "
                   "a throwaway database that lives as long as the server; or postgresql://user@host:port/name for "
                   "several servers on one database (pip install 'statusthing[postgres]')")
    parser.add_argument("--devmode", action="store_true",
                        help="development mode: gRPC server reflection on, and the HTML assets re-read from assets/ "
                             "on every request")
    flags.add("--title", "Status", help="title and heading of the public status page (default: Status)")
    flags.add("--timezone", "UTC", metavar="ZONE",
              help="the IANA time zone (e.g. Europe/Berlin) whose calendar days uptime bars and history count "
                   "(default UTC)")
    flags.add("--public-url", "", metavar="URL",
              help="where people reach the server, e.g. https://status.example.com behind a reverse proxy: browser "
                   "writes may come from that origin, and links that leave the page use it")
    flags.add("--metrics-token", "", metavar="TOKEN",
              help="a bearer token that may read /metrics, for a Prometheus elsewhere (API tokens and requests from "
                   "this machine may too)")
    flags.add("--export-dir", "", metavar="DIR",
              help="keep a static copy of the public site at DIR (a link to the latest complete copy), written again "
                   "after every change; needs --public-url, where the copy is served")
    flags.add("--smtp-url", "", metavar="URL",
              help="send e-mail to subscribers through this server: smtp://user:password@host:port (STARTTLS when "
                   "offered) or smtps://...; the password may come from STATUSTHING_SMTP_PASSWORD instead; without "
                   "it, nobody can subscribe")
    flags.add("--mail-from", "", metavar="ADDRESS", help="the From address of e-mail to subscribers")
    flags.add("--retention-days", DEFAULT_RETENTION_DAYS, type=int, metavar="DAYS",
              help=f"how long finished webhook and e-mail deliveries are kept (default {DEFAULT_RETENTION_DAYS})")
    flags.add("--webhook-timeout", 10.0, type=float, metavar="SECONDS",
              help="how long a webhook receiver (or the mail server) may take to answer before the attempt counts "
                   "as failed (default 10)")
    flags.add("--trusted-proxy", repeatable=True, metavar="ADDRESS_OR_CIDR",
              help="a reverse proxy (e.g. 127.0.0.1) whose Forwarded / X-Forwarded-For headers say who the client "
                   "is, for the log, the audit trail and login throttling; repeatable; none by default")
    flags.add("--cors-origin", repeatable=True, metavar="ORIGIN",
              help="let browser pages from ORIGIN (e.g. https://example.com) call the API; repeatable; by default "
                   "no CORS headers are sent")
    flags.add("--max-connections", DEFAULT_MAX_CONNECTIONS, type=int, metavar="N",
              help=f"open connections served at once, each with a thread (default {DEFAULT_MAX_CONNECTIONS}); more "
                   "are answered 503 and closed")
    flags.add("--max-connections-per-client", DEFAULT_MAX_CONNECTIONS_PER_CLIENT, type=int, metavar="N",
              help=f"open connections from one client address (default {DEFAULT_MAX_CONNECTIONS_PER_CLIENT}); more are "
                   "answered 503 and closed; --trusted-proxy addresses are exempt")
    flags.add("--idle-timeout", IDLE_TIMEOUT_S, type=float, metavar="SECONDS",
              help=f"close a connection that sends nothing for this long, between requests or within one (default "
                   f"{IDLE_TIMEOUT_S})")
    flags.add("--durability", "full", choices=("full", "normal"),
              help="full (default): a write is answered once it is on disk and survives power loss; normal: "
                   "faster writes that survive a crash of the server but maybe not a power loss")
    flags.add("--request-timeout", REQUEST_TIMEOUT_S, type=float, metavar="SECONDS",
              help=f"once a request starts, its headers must arrive within this (default {REQUEST_TIMEOUT_S}), and "
                   "then its body within this again; slower ones are answered 408 and closed")
    parser.add_argument("--version", action="version", version=f"statusthing {VERSION}")

    # Commands work on the same database as the server, also while it runs; they never create one.
    db = argparse.ArgumentParser(add_help=False)
    _Flags(db, environ).add("--db", DEFAULT_DB, metavar="PATH",
                            help=f"the server's database (default {DEFAULT_DB}); it must exist")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    user = commands.add_parser("user", help="manage users (who may change the status page)")
    user_commands = user.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in (("add", "add a user"), ("passwd", "set a user's password")):
        sub = user_commands.add_parser(action, parents=[db], help=text)
        sub.add_argument("name")
        sub.add_argument("--stdin", action="store_true", help="read the password as one line from standard input "
                                                              "instead of prompting twice on the terminal")
    user_commands.add_parser("del", parents=[db], help="delete a user").add_argument("name")
    user_commands.add_parser("list", parents=[db], help="list users")

    token = commands.add_parser("token", help="manage API tokens (for scripts and CI)")
    token_commands = token.add_subparsers(dest="action", metavar="ACTION", required=True)
    token_commands.add_parser("add", parents=[db], help="create a token and print it (only this once)"
                              ).add_argument("label")
    token_commands.add_parser("list", parents=[db], help="list tokens: label, created, last used")
    token_commands.add_parser("revoke", parents=[db], help="revoke a token").add_argument("label")

    webhook = commands.add_parser("webhook", help="manage webhooks (URLs told of every change)")
    webhook_commands = webhook.add_subparsers(dest="action", metavar="ACTION", required=True)
    add_hook = webhook_commands.add_parser("add", parents=[db], help="register a URL and print its secret (only "
                                                                    "this once)")
    add_hook.add_argument("url", metavar="URL")
    add_hook.add_argument("--event", action="append", default=[], metavar="TYPE",
                          help="tell it only of this event type (repeatable; default: every event): "
                               + ", ".join(sorted(EVENT_TYPES - {"ping"})))
    add_hook.add_argument("--description", default="", metavar="TEXT")
    add_hook.add_argument("--format", default="standard", choices=("standard", "statuspage"),
                          help="the body: Standard Webhooks' {type, timestamp, data} (default) or Statuspage's")
    webhook_commands.add_parser("list", parents=[db], help="list webhooks")
    webhook_commands.add_parser("del", parents=[db], help="delete a webhook").add_argument("id")
    webhook_commands.add_parser("test", parents=[db], help="send a ping now and say how it went"
                                ).add_argument("id")

    maintenance = commands.add_parser("maintenance", help="plan maintenance windows")
    maintenance_commands = maintenance.add_subparsers(dest="action", metavar="ACTION", required=True)
    add_window = maintenance_commands.add_parser(
        "add", parents=[db], help="plan a window; times like 2027-03-01T22:00 are in --timezone, or give an "
                                  "offset (2027-03-01T22:00+01:00, ...Z)")
    add_window.add_argument("title")
    add_window.add_argument("--start", required=True, metavar="TIME")
    add_window.add_argument("--end", required=True, metavar="TIME")
    add_window.add_argument("--item", action="append", default=[], metavar="ID_OR_NAME",
                            help="an item it affects (repeatable; default: the whole page)")
    add_window.add_argument("--description", default="", metavar="TEXT")
    maintenance_commands.add_parser("list", parents=[db], help="list windows, soonest start first")
    for action, text in (("complete", "end a window in progress now"), ("cancel", "cancel a window not started"),
                         ("del", "delete a window (and what it did to uptime)")):
        maintenance_commands.add_parser(action, parents=[db], help=text).add_argument("id")

    move = commands.add_parser("migrate-db", help="copy a whole database into an empty one: SQLite to PostgreSQL "
                                                 "or back, ids and times intact, checked by counts")
    move.add_argument("--from", dest="source", required=True, metavar="DB", help="a SQLite file or a postgresql:// URL")
    move.add_argument("--to", dest="target", required=True, metavar="DB",
                      help="an empty database: a SQLite file (created) or a postgresql:// URL (migrated first)")

    export = commands.add_parser("export", parents=[db], help="write the public site as static files to DIR (a "
                                                               "link to the copy, replaced in one step)")
    export.add_argument("dir", metavar="DIR")
    audit = commands.add_parser("audit", parents=[db], help="print the audit trail, newest last")
    audit.add_argument("--limit", type=int, default=50, metavar="N", help="how many entries (default 50)")
    audit.add_argument("--json", action="store_true", help="one JSON object per line")
    return parser


def _format_ns(ns):
    if not ns:
        return "never"
    return datetime.datetime.fromtimestamp(ns / 1e9, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _has_terminal():
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
        return True
    except OSError:
        return False


def _read_new_password(args):
    if args.stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not _has_terminal():
        raise InvalidArgument("there is no terminal to ask for the password on; pipe it in with --stdin")
    first = getpass.getpass(f"New password for {args.name}: ")
    if getpass.getpass("Again: ") != first:
        raise InvalidArgument("the two passwords differ; nothing was changed")
    return first


def _print_users(accounts, args, where):
    print(f"users in {where}:", file=sys.stderr)
    for user in accounts.list_users():
        print(f"{user.username:<24} created {_format_ns(user.created_ns)}   "
              f"last login {_format_ns(user.last_login_ns)}")


def _print_tokens(accounts, args, where):
    print(f"tokens in {where}:", file=sys.stderr)
    for token in accounts.list_tokens():
        print(f"{token.label:<24} created {_format_ns(token.created_ns)} by {token.created_by}   "
              f"last used {_format_ns(token.last_used_ns)}")


def _print_audit(accounts, args, where):
    print(f"audit trail of {where}:", file=sys.stderr)
    for entry in reversed(accounts.audit(max(1, args.limit))):
        value = entry.to_api()
        if args.json:
            print(json.dumps(value, ensure_ascii=False))
        else:
            print(f"{value['time']}  {entry.actor} ({entry.actor_kind}, {entry.client})  {entry.rpc} "
                  f"{entry.target_id}  {json.dumps(entry.changes, ensure_ascii=False)}")


def _add_token(accounts, args, where, actor):
    print(accounts.add_token(actor, args.label))
    print(f"(token {args.label} added to {where}: shown only now; use it as 'Authorization: Bearer <token>')",
          file=sys.stderr)


# (command, action) -> what it does. Changes take the acting Actor and say which database they changed.
COMMANDS = {
    ("user", "add"): lambda accounts, args, where, actor: (
        accounts.add_user(actor, args.name, _read_new_password(args)), print(f"added user {args.name} to {where}")),
    ("user", "passwd"): lambda accounts, args, where, actor: (
        accounts.set_password(actor, args.name, _read_new_password(args)),
        print(f"changed the password of {args.name} in {where}")),
    ("user", "del"): lambda accounts, args, where, actor: (
        accounts.delete_user(actor, args.name), print(f"deleted user {args.name} from {where}")),
    ("user", "list"): lambda accounts, args, where, actor: _print_users(accounts, args, where),
    ("token", "add"): _add_token,
    ("token", "revoke"): lambda accounts, args, where, actor: (
        accounts.revoke_token(actor, args.label), print(f"revoked token {args.label} in {where}")),
    ("token", "list"): lambda accounts, args, where, actor: _print_tokens(accounts, args, where),
    ("audit", None): lambda accounts, args, where, actor: _print_audit(accounts, args, where),
}


def _add_webhook(service, args, where, actor):
    webhook, secret = service.add_webhook(actor, args.url, args.description, args.event, args.format)
    print(secret)
    print(f"(webhook {webhook.id} for {webhook.url} added to {where}; its secret, above, is shown only now: "
          "receivers check signatures with it)", file=sys.stderr)


def _print_webhooks(service, args, where):
    print(f"webhooks in {where}:", file=sys.stderr)
    for webhook in service.list_webhooks():
        print(f"{webhook.id}  {webhook.url}  {webhook.body_format}  "
              f"{','.join(webhook.events) or 'every event'}{'  DISABLED (410 Gone)' if webhook.disabled else ''}")


def _test_webhook(service, args, where, actor):
    delivery = service.test_webhook(actor, args.id)
    print(f"ping {delivery.state}: " + (f"{delivery.status_code} " if delivery.status_code else "")
          + f"{delivery.error} in {delivery.duration_ms:.0f} ms".strip())
    return 0 if delivery.state == "delivered" else 1


def _cli_time(text, zone, flag):
    """A time as an operator types it: ISO 8601, in ``zone`` unless it has an offset; nanoseconds."""
    try:
        moment = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(f"{flag}: expected a time like 2027-03-01T22:00 (or with an offset), got {text!r}"
                              ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zoneinfo.ZoneInfo(zone.name))
    return int(moment.timestamp()) * 10 ** 9


def _item_ids(service, wanted):
    """Item ids from ids or exact names."""
    items = service.list_items()
    by_name = {item.name: item.id for item in items}
    ids = {item.id for item in items}
    found = []
    for value in wanted:
        if value not in ids and value not in by_name:
            raise NotFound(f"no item has the id or name {value!r}")
        found.append(value if value in ids else by_name[value])
    return found


def _add_maintenance(service, args, where, actor):
    window = service.add_maintenance(actor, args.title, args.description, _item_ids(service, args.item),
                                     _cli_time(args.start, service.zone, "--start"),
                                     _cli_time(args.end, service.zone, "--end"))
    print(window.id)
    print(f"(maintenance {window.title!r} from {utc_iso(window.starts_at.ToNanoseconds())} to "
          f"{utc_iso(window.ends_at.ToNanoseconds())} added to {where})", file=sys.stderr)


def _print_maintenances(service, args, where):
    print(f"maintenance windows in {where}:", file=sys.stderr)
    token = ""
    while True:
        windows, token = service.list_maintenances(size=MAX_PAGE_SIZE, token=token)
        for window in windows:
            print(f"{window.id}  {_STATE_WORDS[window.state]:<11}  {utc_iso(window.starts_at.ToNanoseconds())} "
                  f"to {utc_iso(window.ends_at.ToNanoseconds())}  {window.title}  "
                  f"({', '.join(window.item_ids) or 'the whole page'})")
        if not token:
            return


# (command, action) -> what it does, on the service (the status page's data), like the RPCs.
SERVICE_COMMANDS = {
    ("webhook", "add"): _add_webhook,
    ("webhook", "list"): lambda service, args, where, actor: _print_webhooks(service, args, where),
    ("webhook", "del"): lambda service, args, where, actor: (
        service.delete_webhook(actor, args.id), print(f"deleted webhook {args.id} from {where}")),
    ("webhook", "test"): _test_webhook,
    ("maintenance", "add"): _add_maintenance,
    ("maintenance", "list"): lambda service, args, where, actor: _print_maintenances(service, args, where),
    ("maintenance", "complete"): lambda service, args, where, actor: (
        service.update_maintenance(actor, args.id, complete_now=True), print(f"completed {args.id} in {where}")),
    ("maintenance", "cancel"): lambda service, args, where, actor: (
        service.update_maintenance(actor, args.id, cancel=True), print(f"cancelled {args.id} in {where}")),
    ("maintenance", "del"): lambda service, args, where, actor: (
        service.delete_maintenance(actor, args.id), print(f"deleted {args.id} from {where}")),
}


def run_command(args, config):
    """The account and audit commands, on the server's existing database; returns the exit code."""
    if config.db_path == MEMORY_DB:
        raise StartupError("commands need the server's database file; an in-memory database lives only inside "
                           "its server")
    store, accounts = open_database(config, create=False)
    actor = Actor(f"cli:{getpass.getuser()}", "cli", "local")
    key, where = (args.command, getattr(args, "action", None)), db_label(config.db_path)
    try:
        if key in SERVICE_COMMANDS:
            service = StatusThingService(store, TimeZone(config.timezone))
            service.webhook_timeout_s = config.webhook_timeout_s
            code = SERVICE_COMMANDS[key](service, args, where, actor)
            return code if isinstance(code, int) else 0  # (an exit code, or whatever a lambda made of its prints)
        COMMANDS[key](accounts, args, where, actor)
        return 0
    except StatusThingError as exc:
        print(f"statusthing: {exc.message}", file=sys.stderr)
        return 1
    finally:
        store.close()


def run_migrate_db(args):
    """``statusthing migrate-db --from A --to B``: every table of A into the empty B; the exit code."""
    source = open_store(args.source, create=False)
    try:
        target = open_store(args.target, create=True)
    except StartupError:
        source.close()
        raise
    try:
        if source.schema_version != target.schema_version:
            raise StartupError(f"{db_label(args.source)} is at schema version {source.schema_version}, "
                               f"{db_label(args.target)} at {target.schema_version}: start a server on the older "
                               "one first (it migrates it)")
        with target.read() as tx:
            if tx.dump_table("items")[1] or tx.dump_table("users")[1] or tx.dump_table("audit_log")[1]:
                raise StartupError(f"{db_label(args.target)} is not empty (it has items, users or an audit trail); "
                                   "migrate-db only fills an empty database")
        counts = {}
        with source.read() as tx:
            tables = {table: tx.dump_table(table) for table in TABLES}
        with target.write() as tx:
            for table in TABLES:
                tx.load_table(table, *tables[table])
                counts[table] = len(tables[table][1])
        if hasattr(target, "after_load"):
            target.after_load()
        with target.read() as tx:
            copied = {table: len(tx.dump_table(table)[1]) for table in TABLES}
        wrong = [f"{table}: {counts[table]} rows, {copied[table]} copied" for table in TABLES
                 if copied[table] != counts[table]]
        if wrong:
            print(f"statusthing: migrate-db: counts differ after the copy: {'; '.join(wrong)}", file=sys.stderr)
            return 1
    except StatusThingError as exc:
        print(f"statusthing: migrate-db failed, nothing was copied: {exc.message}", file=sys.stderr)
        return 1
    finally:
        source.close()
        target.close()
    print(f"copied {db_label(args.source)} to {db_label(args.target)}: "
          + ", ".join(f"{counts[table]} {table}" for table in TABLES if counts[table]))
    return 0


def run_export(args, config):
    """``statusthing export DIR``: the public site of the server's database, as static files; the exit code."""
    if config.db_path == MEMORY_DB:
        raise StartupError("export needs the server's database file")
    if not config.public_url:
        raise StartupError("export needs --public-url: where the files will be served (feeds and the Statuspage "
                           "JSON carry absolute links)")
    store = open_store(config.db_path, create=False, durability=config.durability)
    try:
        service = StatusThingService(store, TimeZone(config.timezone))
        service.tally_uptime_in_zone()
        answers = AnswerCache(service.generation)
        site = Site(config, Assets(), service, answers, ItemAnswers(service, answers))
        written = Exporter(site, config.public_origin).publish(args.dir)
    except (OSError, StatusThingError) as exc:
        print(f"statusthing: export failed: {getattr(exc, 'message', None) or exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(f"exported {written} files of {db_label(config.db_path)} to {os.path.abspath(args.dir)}")
    return 0


def _password_command(program, db_path):
    """The exact command that changes the admin password of this server's database."""
    if db_path == MEMORY_DB:
        return None
    if os.sep in program:  # a path, not a name found on PATH: make it work from any folder
        program = os.path.abspath(program)
    launcher = [sys.executable, program] if program.endswith(".py") else [program]
    return shlex.join([*launcher, "user", "passwd", DEFAULT_ADMIN[0], "--db", db_label(db_path)])


def _prepare_process():
    """What a long-running server asks of its process: descriptors for --max-connections connections (the soft
    limit is often 1,024; raised to the hard limit), no death by SIGXFSZ when a file-size limit is reached (the
    write fails with an I/O error instead, answered as unavailable), and an allocator that gives memory back."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    _bound_allocator()


def _bound_allocator():
    """glibc keeps what a thread freed in that thread's arena, and once a large block is freed it raises the size
    from which blocks are mapped on their own (up to 32 MiB): multi-megabyte answers built on many request threads
    then stay resident, arena after arena (measured: 352 MB peak at 10,000 items, where ~60 MB are in use). A fixed
    threshold (large blocks are mapped, and unmapped when freed) and four arenas keep the peak near the use.
    Must run before other threads start; nothing to do where the C library is not glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
        libc.mallopt(-8, 4)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def serve(config, program):
    """Run the server until SIGINT or SIGTERM; return the exit code."""
    _prepare_process()
    app = App(config)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    app.start()
    log(event="start", version=VERSION, address=app.address,
        db=db_label(config.db_path),
        schema_version=app.store.schema_version, durability=config.durability, devmode=config.devmode,
        pid=os.getpid())
    if app.accounts.default_password_in_use():
        command = _password_command(program, config.db_path)
        log(level="warning", event="default_password",
            message=f"the default login {DEFAULT_ADMIN[0]}/{DEFAULT_ADMIN[1]} still works: change it "
                    + (f"with: {command}  (or on the admin page)" if command else "on the admin page"))
    while not stop.wait(3600):
        pass
    log(event="stopping")
    app.stop()
    log(event="stopped")
    LOG.close()
    return 0


def main(argv=None, environ=None):
    """Run the server until SIGINT or SIGTERM (or run a command); return the exit code."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # from here on, Ctrl-C is a KeyboardInterrupt
    environ = os.environ if environ is None else environ
    args = _build_parser(environ).parse_args(argv)
    if environ.get("STATUSTHING_CLOCK"):  # (tests: the time is the one written in that file)
        CLOCK.follow_file(environ["STATUSTHING_CLOCK"])
    try:
        if args.command == "export":
            return run_export(args, dataclasses.replace(_server_config(args, environ), db_path=args.db))
        if args.command == "migrate-db":
            return run_migrate_db(args)
        if args.command in ("webhook", "maintenance"):  # (the time zone of typed times, the webhook timeout)
            return run_command(args, dataclasses.replace(_server_config(args, environ), db_path=args.db))
        if args.command:
            return run_command(args, Config(db_path=args.db))
        return serve(_server_config(args, environ), sys.argv[0])
    except StartupError as exc:
        print(f"statusthing: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C at a prompt or during start-up: nothing half-done to report
        print("\nstatusthing: interrupted", file=sys.stderr)
        return 130


def _server_config(args, environ):
    """The Config of the server from its parsed flags; StartupError names a flag whose value is wrong."""
    def checked(flag, parse, value):
        try:
            return parse(value)
        except ValueError as exc:
            raise StartupError(f"{flag}: {exc}") from None

    return Config(api_addr=args.api_addr, db_path=args.db, devmode=args.devmode,
                  first_admin_password=environ.get("STATUSTHING_ADMIN_PASSWORD") or DEFAULT_ADMIN[1],
                  cors_origins=tuple(args.cors_origin), title=args.title,
                  max_connections=max(1, args.max_connections),
                  max_connections_per_client=max(1, args.max_connections_per_client),
                  idle_timeout_s=max(0.1, args.idle_timeout), request_timeout_s=max(0.1, args.request_timeout),
                  durability=args.durability, timezone=checked("--timezone", _valid_time_zone, args.timezone),
                  public_url=checked("--public-url", parse_public_url, args.public_url) if args.public_url else "",
                  trusted_proxies=tuple(checked("--trusted-proxy", parse_trusted_proxy, proxy)
                                        for proxy in args.trusted_proxy),
                  metrics_token=args.metrics_token, export_dir=args.export_dir,
                  smtp_url=checked("--smtp-url", parse_smtp_url, args.smtp_url) if args.smtp_url else "",
                  smtp_password=environ.get("STATUSTHING_SMTP_PASSWORD", ""), mail_from=args.mail_from,
                  retention_days=max(1, args.retention_days), webhook_timeout_s=max(0.1, args.webhook_timeout))


# ==================================================================================================================
# 20. Embedded assets (generated)
# ==================================================================================================================
# --- BEGIN EMBEDDED ASSETS (generated by tools/embed_assets.py from assets/; edit those files) ---
EMBEDDED_ASSETS = {
    'admin.html': '''<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<link rel="icon" href="data:,">
<title>StatusThing admin</title>
<style>
  :root { --bg: #f6f7f9; --card: #fff; --text: #1c1f24; --muted: #57606a; --line: #d0d7de; --accent: #0550ae;
          --error: #b3261e; --error-bg: #ffebe9; --warn-bg: #fff8c5; --warn: #6b4400; --ok: #1a7f37;
          --operational: #1a7f37; --degraded: #8a5d00; --partial: #b35000; --major: #cf222e; --maintenance: #0969da;
          --nodata: #57606a; }
  @media (prefers-color-scheme: dark) {
    :root { --bg: #0d1117; --card: #161b22; --text: #e6edf3; --muted: #9da7b3; --line: #30363d; --accent: #6cb6ff;
            --error: #ff7b72; --error-bg: #2d1517; --warn-bg: #272115; --warn: #e3b341; --ok: #3fb950;
            --operational: #3fb950; --degraded: #d29922; --partial: #f0883e; --major: #f85149; --maintenance: #58a6ff;
            --nodata: #9da7b3; }
  }
  * { box-sizing: border-box; }
  body { margin: 0; background: var(--bg); color: var(--text); font: 15px/1.45 system-ui, sans-serif; }
  header, main { max-width: 64rem; margin: 0 auto; padding: 0 1rem; }
  header { display: flex; flex-wrap: wrap; justify-content: space-between; align-items: baseline; gap: .25rem 1rem;
           padding-top: 1rem; }
  header p { margin: 0; }
  header a { white-space: nowrap; }
  h1 { font-size: 1.4rem; margin: 0; }
  h2 { font-size: 1.15rem; margin: 1.5rem 0 .5rem; }
  h3 { font-size: 1rem; margin: 0 0 .5rem; }
  a { color: var(--accent); }
  section { background: var(--card); border: 1px solid var(--line); border-radius: .5rem; padding: .75rem 1rem;
            margin-bottom: 1rem; }
  .banner { background: var(--warn-bg); color: var(--warn); border-color: var(--warn); font-weight: 600; }
  form.inline, .row { display: flex; flex-wrap: wrap; gap: .5rem; align-items: end; }
  label { display: flex; flex-direction: column; font-size: .85rem; color: var(--muted); gap: .15rem; }
  label.grow { flex: 1 1 14rem; }
  input, select, textarea, button { font: inherit; color: inherit; }
  input[type=text], input[type=password], input[type=number], select, textarea { background: var(--bg);
    border: 1px solid var(--line); border-radius: .3rem; padding: .3rem .45rem; min-width: 0; color: var(--text); }
  input[type=number] { width: 6rem; }
  textarea { width: 100%; min-height: 4.5rem; resize: vertical; }
  button { background: var(--bg); border: 1px solid var(--line); border-radius: .3rem; padding: .3rem .7rem;
           cursor: pointer; }
  button.primary { background: var(--accent); color: var(--card); border-color: var(--accent); font-weight: 600; }
  button.danger { color: var(--error); }
  .error-text { color: var(--error); }
  .secret code { word-break: break-all; user-select: all; }
  button.link { border: 0; background: none; color: var(--accent); text-decoration: underline; padding: 0 .2rem; }
  :focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
  .error { color: var(--error); background: var(--error-bg); border-radius: .3rem; padding: .2rem .5rem;
           margin: .35rem 0 0; }
  .error:empty, .done:empty { display: none; }
  .done { color: var(--ok); margin: .35rem 0 0; }
  .muted { color: var(--muted); font-size: .85rem; }
  .swatch { display: inline-block; width: .8rem; height: .8rem; border-radius: 50%; flex: none;
            border: 1px solid rgba(127,127,127,.7); }
  .condition { font-weight: 600; }
  .c-operational { color: var(--operational); } .c-degraded { color: var(--degraded); }
  .c-partial { color: var(--partial); } .c-major { color: var(--major); }
  .c-maintenance { color: var(--maintenance); } .c-nodata { color: var(--nodata); }
  /* one compact row per item; what it takes to act on it opens on demand */
  .item { border-top: 1px solid var(--line); padding: .6rem 0; }
  .item:first-child { border-top: 0; }
  .item-line { display: flex; flex-wrap: wrap; align-items: center; gap: .15rem .75rem; }
  .item-name { font-weight: 600; overflow-wrap: anywhere; }
  .item-line .updated { margin-left: auto; }
  .condition .muted { font-weight: 400; }
  .item details { margin-top: .35rem; }
  .item summary { cursor: pointer; color: var(--accent); display: inline-block; }
  .item details[open] > summary { margin-bottom: .4rem; }
  .actions { display: flex; flex-wrap: wrap; gap: 0 1rem; }
  .actions details[open] { flex-basis: 100%; }
  .notes { list-style: none; padding: 0; margin: .5rem 0 0; }
  .notes li { margin-bottom: .6rem; overflow-wrap: anywhere; }
  .notes p { margin: 0; white-space: pre-line; }
  table { border-collapse: collapse; width: 100%; }
  td, th { text-align: left; padding: .35rem .4rem; border-top: 1px solid var(--line); vertical-align: top;
           overflow-wrap: anywhere; }
  th { font-size: .85rem; color: var(--muted); font-weight: 600; }
  .audit td:first-child { white-space: nowrap; }
  .quote { white-space: pre-line; }
  [hidden] { display: none !important; }
  @media (max-width: 40rem) {  /* phones: tables become stacked cards, fields take the whole width */
    table, thead, tbody, tr, td { display: block; width: 100%; }
    thead { display: none; }
    tr { border-top: 1px solid var(--line); padding: .4rem 0; }
    td { border: 0; padding: .15rem 0; }
    .audit td:first-child { white-space: normal; }
    input[type=text], input[type=password], select { width: 100%; }
    form.inline > label, .row > label { width: 100%; }
    .item-line .updated { margin-left: 0; width: 100%; }
  }
</style>
</head>
<body>
<header>
  <h1>StatusThing admin</h1>
  <p><a href="/">The status page</a> · signed in as <strong id="whoami">…</strong> ·
    <a href="/admin/logout" id="sign-out">Sign out</a></p>
</header>
<main>
  <section id="default-password-banner" class="banner" hidden role="alert">
    The default password is still in use: anyone who knows it can change this status page.
    <a href="#account">Change it now.</a>
  </section>

  <h2>Items</h2>
  <section id="items" aria-label="Items"><p class="muted">Loading…</p></section>
  <section aria-labelledby="add-item-title">
    <h3 id="add-item-title">Add an item</h3>
    <form id="add-item" class="inline">
      <label class="grow">Name <input type="text" name="name" required maxlength="200"></label>
      <label class="grow">Description <input type="text" name="description" maxlength="2000"></label>
      <label>Group <input type="text" name="group" maxlength="200"></label>
      <label>Status <select name="status" class="status-select"></select></label>
      <label class="grow">First note <textarea name="note" rows="2"></textarea></label>
      <button class="primary">Add item</button>
    </form>
    <p class="error" role="alert"></p>
  </section>

  <h2>Statuses</h2>
  <section id="statuses" aria-label="Statuses"><p class="muted">Loading…</p></section>
  <section aria-labelledby="add-status-title">
    <h3 id="add-status-title">Add a status</h3>
    <form id="add-status" class="inline">
      <label>Name <input type="text" name="name" required maxlength="200"></label>
      <label>Kind <select name="kind" class="kind-select"></select></label>
      <label>Condition <select name="condition" class="condition-select"></select></label>
      <label>Colour <input type="color" name="color" value="#5dfc0a"></label>
      <label class="grow">Description <input type="text" name="description" maxlength="2000"></label>
      <button class="primary">Add status</button>
    </form>
    <p class="error" role="alert"></p>
  </section>

  <h2 id="maintenance-title">Maintenance</h2>
  <section aria-labelledby="maintenance-title">
    <div id="maintenances"><p class="muted">Loading…</p></div>
    <p class="error" role="alert"></p>
  </section>
  <section aria-labelledby="add-maintenance-title">
    <h3 id="add-maintenance-title">Plan maintenance</h3>
    <form id="add-maintenance" class="inline">
      <label class="grow">Title <input type="text" name="title" required maxlength="200"></label>
      <label>Starts (your time) <input type="datetime-local" name="starts" required></label>
      <label>Ends (your time) <input type="datetime-local" name="ends" required></label>
      <label>Affects <select name="items" multiple size="4" class="item-choice"></select></label>
      <label class="grow">Description <textarea name="description" rows="2" maxlength="2000"></textarea></label>
      <button class="primary">Plan maintenance</button>
    </form>
    <p class="muted">Choose no item for the whole page. Readers see it under “Scheduled maintenance” in their own
      time; while it runs its items read as Under maintenance, and that time does not count against uptime.</p>
    <p class="error" role="alert"></p>
  </section>

  <h2 id="webhooks-title">Webhooks</h2>
  <section aria-labelledby="webhooks-title">
    <div id="webhooks"><p class="muted">Loading…</p></div>
    <p class="error" role="alert"></p>
  </section>
  <section aria-labelledby="add-webhook-title">
    <h3 id="add-webhook-title">Add a webhook</h3>
    <form id="add-webhook" class="inline">
      <label class="grow">URL <input type="url" name="url" required maxlength="2000"
                                     placeholder="https://chat.example.com/hooks/status"></label>
      <label>Events <select name="events" multiple size="4" id="event-choice"></select></label>
      <label>Body <select name="format"><option value="standard">Standard Webhooks</option>
        <option value="statuspage">Statuspage (for its integrations)</option></select></label>
      <label class="grow">Description <input type="text" name="description" maxlength="2000"></label>
      <button class="primary">Add webhook</button>
    </form>
    <p class="muted">Choose no event for every event. Each request is signed (Standard Webhooks: webhook-id,
      webhook-timestamp, webhook-signature) and retried for about a day and a half when it fails.</p>
    <p class="error" role="alert"></p>
    <p class="secret" id="webhook-secret" role="status" hidden></p>
  </section>

  <h2 id="subscribers-title">E-mail subscribers</h2>
  <section aria-labelledby="subscribers-title">
    <div id="subscribers"><p class="muted">Loading…</p></div>
    <p class="error" role="alert"></p>
  </section>

  <h2 id="account">Your password</h2>
  <section>
    <form id="change-password" class="inline">
      <label>Current password <input type="password" name="current" autocomplete="current-password" required></label>
      <label>New password <input type="password" name="next" autocomplete="new-password" minlength="8" required></label>
      <label>New password again <input type="password" name="again" autocomplete="new-password" required></label>
      <button class="primary">Change password</button>
    </form>
    <p class="error" role="alert"></p>
    <p class="muted" id="password-done" hidden role="status">Password changed. Your browser will ask you to sign in
      again with the new one.</p>
  </section>

  <h2 id="audit-title">Audit trail</h2>
  <section aria-labelledby="audit-title">
    <form id="audit-filter" class="inline">
      <label>Item <select name="item"><option value="">All items</option></select></label>
      <label>Who <select name="actor"><option value="">Everyone</option></select></label>
      <button id="show-audit">Show</button>
    </form>
    <div class="audit" id="audit"></div>
    <p class="error" role="alert"></p>
    <button id="older-audit" hidden>Older entries</button>
  </section>
</main>
<script>
"use strict";
const KINDS = ["UP", "DOWN", "WARNING", "UNAVAILABLE", "AVAILABLE", "INVESTIGATING", "OBSERVING", "CREATED",
               "ONLINE", "OFFLINE", "DECOMM"].map(k => "STATUS_KIND_" + k);
// What a reader sees, as the public page words it; a status without a condition of its own follows its kind's.
const CONDITIONS = {CONDITION_OPERATIONAL: ["Operational", "operational"],
                    CONDITION_DEGRADED: ["Degraded performance", "degraded"],
                    CONDITION_PARTIAL_OUTAGE: ["Partial outage", "partial"],
                    CONDITION_MAJOR_OUTAGE: ["Major outage", "major"],
                    CONDITION_MAINTENANCE: ["Under maintenance", "maintenance"]};
const KIND_CONDITION = {UP: "OPERATIONAL", AVAILABLE: "OPERATIONAL", ONLINE: "OPERATIONAL", WARNING: "DEGRADED",
                        OBSERVING: "DEGRADED", INVESTIGATING: "DEGRADED", UNAVAILABLE: "PARTIAL_OUTAGE",
                        DOWN: "MAJOR_OUTAGE", OFFLINE: "MAJOR_OUTAGE"};
let statuses = [], items = [];

// -- talking to the API: the Connect protocol with JSON -----------------------------------------------------------
class ApiError extends Error {}

async function rpc(service, method, body) {
  const response = await fetch(`/statusthing.v1.${service}/${method}`, {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body || {}),
  });
  const text = await response.text();
  let data = {};
  try { data = text ? JSON.parse(text) : {}; } catch (e) { data = {message: text}; }
  if (!response.ok) throw new ApiError(data.message || `${response.status} ${response.statusText}`);
  return data;
}

// Run an action; show its error, in words, in the error box next to what caused it.
async function attempt(errorBox, action) {
  errorBox.textContent = "";
  try { await action(); return true; }
  catch (error) { errorBox.textContent = error instanceof ApiError ? error.message : "Could not reach the server."; }
  return false;
}

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  const {dataset, ...rest} = props || {};
  Object.assign(node, rest);
  Object.assign(node.dataset, dataset || {});
  for (const child of children) if (child !== null && child !== undefined) node.append(child);  // text stays text
  return node;
}
const kindLabel = kind => (kind || "STATUS_KIND_UNKNOWN").replace("STATUS_KIND_", "");
const conditionOf = status => !status ? null :
  status.condition || (KIND_CONDITION[kindLabel(status.kind)] ? "CONDITION_" + KIND_CONDITION[kindLabel(status.kind)] : null);
const when = ts => ts && ts.updated ?
  new Date(ts.updated).toLocaleString(undefined, {dateStyle: "medium", timeStyle: "short"}) : "";

function conditionBadge(status) {
  const condition = conditionOf(status);
  const [label, css] = CONDITIONS[condition] || [status ? "No condition" : "No status", "nodata"];
  return el("span", {className: `condition c-${css}`}, label,
            status ? el("span", {className: "muted", textContent: ` (${status.name})`}) : null);
}

function swatch(color) {
  const node = el("span", {className: "swatch", ariaHidden: "true"});
  node.style.background = color || "transparent";
  return node;
}

function statusOptions(select, selected, allowNone) {
  select.replaceChildren();
  if (allowNone) select.append(el("option", {value: "", textContent: "(no status)"}));
  for (const status of statuses) {
    const [label] = CONDITIONS[conditionOf(status)] || ["no condition"];
    select.append(el("option", {value: status.id, textContent: `${status.name} — ${label}`,
                                selected: status.id === selected}));
  }
}

function conditionSelect(selected, kind) {
  const follows = CONDITIONS["CONDITION_" + KIND_CONDITION[kindLabel(kind)]];
  const select = el("select", {className: "condition-select"},
    el("option", {value: "", textContent: `As the kind says${follows ? ` (${follows[0]})` : ""}`}));
  for (const [value, [label]] of Object.entries(CONDITIONS)) {
    select.append(el("option", {value, textContent: label, selected: value === selected}));
  }
  return select;
}

function kindSelect(selected) {
  const select = el("select", {className: "kind-select"});
  for (const kind of KINDS) select.append(el("option", {value: kind, textContent: kindLabel(kind), selected: kind === selected}));
  return select;
}

// Replace a box's contents after a save without losing the person's place: the focused control, what they were
// typing elsewhere, and which parts they had open come back (matched by data-key).
function rebuild(box, nodes) {
  const active = document.activeElement;
  const focusKey = active && box.contains(active) ? active.dataset.key : null;
  const drafts = {}, open = {};
  box.querySelectorAll("[data-key]").forEach(node => {
    if (node.dataset.draft !== undefined) drafts[node.dataset.key] = node.value;
    if (node.tagName === "DETAILS") open[node.dataset.key] = node.open;
  });
  box.replaceChildren(...nodes);
  box.querySelectorAll("[data-key]").forEach(node => {
    if (node.dataset.draft !== undefined && node.dataset.key in drafts) node.value = drafts[node.dataset.key];
    if (node.tagName === "DETAILS" && node.dataset.key in open) node.open = open[node.dataset.key];
  });
  const again = focusKey && box.querySelector(`[data-key="${CSS.escape(focusKey)}"]`);
  if (again) again.focus();
}

// -- items --------------------------------------------------------------------------------------------------------
async function loadItems() {
  ({items = []} = await rpc("ItemsService", "ListItems", {extended: true, notesLimit: 5}));
  rebuild(document.getElementById("items"),
          items.length ? items.map(renderItem) : [el("p", {className: "muted", textContent: "No items yet."})]);
  const filter = document.querySelector("#audit-filter select[name=item]");
  const chosen = filter.value;
  filter.replaceChildren(el("option", {value: "", textContent: "All items"}),
                         ...items.map(item => el("option", {value: item.id, textContent: item.name,
                                                            selected: item.id === chosen})));
}

function renderItem(item) {
  const key = name => `${item.id}:${name}`;
  const row = el("div", {className: "item", dataset: {name: item.name, id: item.id}});
  const error = el("p", {className: "error", role: "alert"});
  const done = el("p", {className: "done", role: "status"});

  // Post an update: a new status and the note that explains it, in one write.
  const status = el("select", {dataset: {key: key("status"), draft: ""}});
  statusOptions(status, item.status && item.status.id, !item.status);
  const note = el("textarea", {rows: 3, placeholder: "What is happening, and what people should do. Readers see this.",
                               dataset: {key: key("note"), draft: ""}});
  const post = el("form", {className: "inline"},
    el("label", {}, "New status", status), el("label", {className: "grow"}, "Note", note),
    el("button", {className: "primary", textContent: "Post update", dataset: {key: key("post")}}));
  post.addEventListener("submit", event => {
    event.preventDefault();
    done.textContent = "";
    attempt(error, async () => {
      const changed = status.value && status.value !== (item.status && item.status.id);
      if (!changed && !note.value.trim()) throw new ApiError("Choose another status or write a note to post.");
      await rpc("ItemsService", "UpdateItem", {itemId: item.id, ...(changed ? {statusId: status.value} : {}),
                                               noteText: note.value});
      note.value = "";
      await refreshAll();
      const fresh = document.querySelector(`#items .item[data-id="${CSS.escape(item.id)}"] .done`);
      if (fresh) fresh.textContent = "Update posted.";
    });
  });

  // Edit: the item's own fields, its notes in place, and deleting it.
  const field = (name, value, props) => el("input", {type: "text", value: value || "", name,
                                                     dataset: {key: key(name), draft: ""}, ...props});
  const name = field("name", item.name, {maxLength: 200, required: true});
  const description = field("description", item.description, {maxLength: 2000});
  const group = field("group", item.group, {maxLength: 200});
  const position = el("input", {type: "number", value: item.position || 0, name: "position", step: 1,
                                dataset: {key: key("position"), draft: ""}});
  const edit = el("form", {className: "inline"},
    el("label", {}, "Name", name), el("label", {className: "grow"}, "Description", description),
    el("label", {}, "Group", group), el("label", {}, "Position", position),
    el("button", {textContent: "Save", dataset: {key: key("save")}}));
  edit.addEventListener("submit", event => {
    event.preventDefault();
    attempt(error, async () => {
      await rpc("ItemsService", "UpdateItem", {itemId: item.id, name: name.value, description: description.value,
                                               group: group.value, position: Number(position.value) || 0});
      await refreshAll();
    });
  });
  const remove = el("button", {className: "danger", type: "button", textContent: "Delete item",
                               dataset: {key: key("delete")}});
  remove.addEventListener("click", () => {
    if (!confirm(`Delete "${item.name}" and all its notes and history?`)) return;
    attempt(error, async () => { await rpc("ItemsService", "DeleteItem", {itemId: item.id}); await refreshAll(); });
  });
  const notes = el("ul", {className: "notes", ariaLabel: `Newest notes on ${item.name}`},
                   ...(item.notes || []).map(note => renderNote(note, error)));

  row.append(
    el("div", {className: "item-line"}, swatch(item.status && item.status.color),
       el("span", {className: "item-name", textContent: item.name}), conditionBadge(item.status),
       el("span", {className: "muted updated",
                   textContent: `${item.group ? `in ${item.group} · ` : ""}updated ${when(item.timestamps)}`})),
    el("div", {className: "actions"},
       el("details", {dataset: {key: key("post-open")}}, el("summary", {textContent: "Post an update"}), post),
       el("details", {dataset: {key: key("edit-open")}}, el("summary", {textContent: "Edit"}), edit,
          el("p", {}, remove), item.notes && item.notes.length ? notes : null,
          el("p", {className: "muted"}, el("a", {href: `/items/${encodeURIComponent(item.id)}`,
                                                  textContent: "Its page, with every update"})))),
    error, done);
  return row;
}

function renderNote(note, error) {
  const key = name => `${note.id}:${name}`;
  const text = el("p", {textContent: note.text});
  const meta = el("span", {className: "muted", textContent: when(note.timestamps) + " "});
  const edit = el("button", {type: "button", className: "link", textContent: "Edit", dataset: {key: key("edit")}});
  const remove = el("button", {type: "button", className: "link danger", textContent: "Delete",
                               dataset: {key: key("delete")}});
  const item = el("li", {dataset: {note: note.id}}, text, meta, edit, " ", remove);
  edit.addEventListener("click", () => {
    // In place: the text becomes a field; Save keeps it, Cancel (or Escape) puts the text back.
    const field = el("textarea", {value: note.text, ariaLabel: "Note text", dataset: {key: key("text")}});
    const save = el("button", {className: "primary", textContent: "Save note", dataset: {key: key("save")}});
    const cancel = el("button", {type: "button", textContent: "Cancel"});
    const form = el("form", {className: "inline"}, field, save, cancel);
    const close = () => { form.replaceWith(text); meta.hidden = edit.hidden = remove.hidden = false; edit.focus(); };
    cancel.addEventListener("click", close);
    form.addEventListener("keydown", event => { if (event.key === "Escape") { event.preventDefault(); close(); } });
    form.addEventListener("submit", event => {
      event.preventDefault();
      if (field.value === note.text) return close();
      attempt(error, async () => {
        await rpc("NotesService", "UpdateNote", {noteId: note.id, noteText: field.value});
        await refreshAll();
        const again = document.querySelector(`[data-key="${CSS.escape(key("edit"))}"]`);
        if (again) again.focus();
      });
    });
    text.replaceWith(form);
    meta.hidden = edit.hidden = remove.hidden = true;
    field.focus();
  });
  remove.addEventListener("click", () => {
    if (!confirm("Delete this note?")) return;
    attempt(error, async () => { await rpc("NotesService", "DeleteNote", {noteId: note.id}); await refreshAll(); });
  });
  return item;
}

// -- statuses -----------------------------------------------------------------------------------------------------
async function loadStatuses() {
  ({statuses = []} = await rpc("StatusService", "ListStatus", {}));
  for (const select of document.querySelectorAll(".status-select")) statusOptions(select, select.value, true);
  rebuild(document.getElementById("statuses"), statuses.length ? [el("table", {}, el("thead", {}, el("tr", {},
      ...["Shown as", "Name", "Kind", "Condition", "Colour", "Description", "Actions"].map(h => el("th", {textContent: h})))),
      el("tbody", {}, ...statuses.map(renderStatus)))] : [el("p", {className: "muted", textContent: "No statuses."})]);
}

function renderStatus(status) {
  const key = name => `${status.id}:${name}`;
  const error = el("p", {className: "error", role: "alert"});
  const name = el("input", {type: "text", value: status.name, ariaLabel: "Status name", maxLength: 200,
                            dataset: {key: key("name"), draft: ""}});
  const kind = kindSelect(status.kind);
  Object.assign(kind, {ariaLabel: `Kind of ${status.name}`});
  Object.assign(kind.dataset, {key: key("kind"), draft: ""});
  const condition = conditionSelect(status.condition || "", status.kind);
  Object.assign(condition, {ariaLabel: `Condition of ${status.name}`});
  Object.assign(condition.dataset, {key: key("condition"), draft: ""});
  const color = el("input", {type: "color", value: /^#[0-9a-f]{6}$/i.test(status.color || "") ? status.color : "#888888",
                             ariaLabel: `Colour of ${status.name}`, dataset: {key: key("color"), draft: ""}});
  const description = el("input", {type: "text", value: status.description || "", ariaLabel: "Description",
                                   dataset: {key: key("description"), draft: ""}});
  const save = el("button", {textContent: "Save", dataset: {key: key("save")}});
  save.addEventListener("click", () => attempt(error, async () => {
    await rpc("StatusService", "UpdateStatus", {statusId: status.id, name: name.value, kind: kind.value,
                                                condition: condition.value || "CONDITION_UNSPECIFIED",
                                                color: color.value, description: description.value});
    await refreshAll();
  }));
  const remove = el("button", {className: "danger", textContent: "Delete", dataset: {key: key("delete")}});
  remove.addEventListener("click", () => {
    if (!confirm(`Delete the status "${status.name}"?`)) return;
    attempt(error, async () => { await rpc("StatusService", "DeleteStatus", {statusId: status.id}); await refreshAll(); });
  });
  return el("tr", {dataset: {name: status.name}},
            el("td", {}, swatch(status.color), " ", conditionBadge(status)), el("td", {}, name), el("td", {}, kind),
            el("td", {}, condition), el("td", {}, color), el("td", {}, description),
            el("td", {}, save, " ", remove, error));
}

async function refreshAll() {
  await loadStatuses();
  await loadItems();
  loadMaintenances();  // (they name items; nothing waits for them)
}

// -- maintenance ----------------------------------------------------------------------------------------------------
const STATE_WORDS = {MAINTENANCE_STATE_SCHEDULED: "Scheduled", MAINTENANCE_STATE_IN_PROGRESS: "In progress",
                     MAINTENANCE_STATE_COMPLETED: "Completed", MAINTENANCE_STATE_CANCELLED: "Cancelled"};
const localTime = iso => new Date(iso).toLocaleString(undefined, {dateStyle: "medium", timeStyle: "short"});
const itemName = id => (items.find(item => item.id === id) || {name: id}).name;

async function loadMaintenances() {
  const box = document.getElementById("maintenances"), error = box.parentElement.querySelector(".error");
  document.querySelectorAll(".item-choice").forEach(select => {
    const chosen = new Set([...select.selectedOptions].map(option => option.value));
    select.replaceChildren(...items.map(item => el("option", {value: item.id, textContent: item.name,
                                                              selected: chosen.has(item.id)})));
  });
  await attempt(error, async () => {
    const {maintenances = []} = await rpc("MaintenanceService", "ListMaintenances", {pageSize: 100});
    rebuild(box, maintenances.length ? [el("table", {},
      el("thead", {}, el("tr", {}, ...["Title", "When", "Affects", "State", "Actions"].map(h => el("th", {textContent: h})))),
      el("tbody", {}, ...maintenances.map(m => renderMaintenance(m, error))))] :
      [el("p", {className: "muted", textContent: "No maintenance planned."})]);
  });
}

function renderMaintenance(planned, error) {
  const act = (label, body, className) => {
    const button = el("button", {type: "button", textContent: label, className: className || ""});
    button.addEventListener("click", () => attempt(error, async () => {
      if (body === null && !confirm(`Delete the maintenance "${planned.title}"? Its time counts as observed again.`)) return;
      if (body === null) await rpc("MaintenanceService", "DeleteMaintenance", {maintenanceId: planned.id});
      else await rpc("MaintenanceService", "UpdateMaintenance", {maintenanceId: planned.id, ...body});
      await loadMaintenances();
    }));
    return button;
  };
  const state = planned.state;
  return el("tr", {dataset: {id: planned.id}},
    el("td", {}, el("strong", {textContent: planned.title}),
       planned.description ? el("div", {className: "muted", textContent: planned.description}) : null),
    el("td", {textContent: `${localTime(planned.startsAt)} – ${localTime(planned.endsAt)}`}),
    el("td", {textContent: (planned.itemIds || []).map(itemName).join(", ") || "The whole page"}),
    el("td", {textContent: STATE_WORDS[state] || state}),
    el("td", {},
       state === "MAINTENANCE_STATE_IN_PROGRESS" ? act("Complete now", {completeNow: true}, "primary") : null,
       state === "MAINTENANCE_STATE_SCHEDULED" ? act("Cancel", {cancel: true}) : null, " ",
       act("Delete", null, "danger")));
}

// -- webhooks -------------------------------------------------------------------------------------------------------
const EVENT_TYPES = ["item.created", "item.updated", "item.deleted", "item.status_changed", "note.created",
  "note.updated", "note.deleted", "incident.opened", "incident.updated", "incident.resolved", "maintenance.scheduled",
  "maintenance.started", "maintenance.completed", "maintenance.cancelled"];

async function loadWebhooks() {
  const box = document.getElementById("webhooks"), error = box.parentElement.querySelector(".error");
  await attempt(error, async () => {
    const {webhooks = []} = await rpc("WebhookService", "ListWebhooks", {});
    rebuild(box, webhooks.length ? webhooks.map(hook => renderWebhook(hook, error)) :
      [el("p", {className: "muted", textContent: "No webhooks yet."})]);
  });
}

function renderWebhook(hook, error) {
  const log = el("div", {className: "deliveries"});
  const details = el("details", {dataset: {key: `${hook.id}:deliveries`}},
    el("summary", {textContent: "Deliveries"}), log);
  const showDeliveries = async () => {
    const {deliveries = []} = await rpc("WebhookService", "ListDeliveries", {webhookId: hook.id, pageSize: 20});
    log.replaceChildren(deliveries.length ? el("table", {},
      el("thead", {}, el("tr", {}, ...["When", "Event", "Result", "Attempts", "Next try"].map(h => el("th", {textContent: h})))),
      el("tbody", {}, ...deliveries.map(d => el("tr", {},
        el("td", {textContent: d.attemptedAt ? localTime(d.attemptedAt) : "not yet"}),
        el("td", {textContent: d.eventType}),
        el("td", {className: d.state === "delivered" ? "" : "error-text",
                  textContent: `${d.state}${d.statusCode ? ` · ${d.statusCode}` : ""}${d.error ? ` · ${d.error}` : ""}` +
                               (d.durationMs ? ` · ${Math.round(d.durationMs)} ms` : "")}),
        el("td", {textContent: String(d.attempt || 0)}),
        el("td", {textContent: d.nextAttemptAt ? localTime(d.nextAttemptAt) : "—"}))))) :
      el("p", {className: "muted", textContent: "Nothing sent yet."}));
  };
  details.addEventListener("toggle", () => { if (details.open) attempt(error, showDeliveries); });
  const test = el("button", {type: "button", textContent: "Send a test"});
  test.addEventListener("click", () => attempt(error, async () => {
    const {delivery} = await rpc("WebhookService", "TestWebhook", {webhookId: hook.id});
    test.textContent = delivery.state === "delivered" ? `Test delivered (${delivery.statusCode})` :
      `Test failed: ${delivery.error || delivery.statusCode}`;
    if (details.open) await showDeliveries();
  }));
  const remove = el("button", {type: "button", className: "danger", textContent: "Delete"});
  remove.addEventListener("click", () => attempt(error, async () => {
    if (!confirm(`Delete the webhook to ${hook.url}? Nothing more is sent to it.`)) return;
    await rpc("WebhookService", "DeleteWebhook", {webhookId: hook.id});
    await loadWebhooks();
  }));
  return el("div", {className: "item", dataset: {id: hook.id}},
    el("p", {}, el("strong", {textContent: hook.url}),
       hook.disabled ? el("span", {className: "error-text", textContent: " · disabled: the receiver answered 410 Gone"}) : null),
    el("p", {className: "muted", textContent: `${(hook.events || []).join(", ") || "Every event"} · ` +
      `${hook.bodyFormat === "statuspage" ? "Statuspage bodies" : "Standard Webhooks bodies"}` +
      (hook.description ? ` · ${hook.description}` : "")}),
    el("div", {className: "row"}, test, remove), details);
}

// -- e-mail subscribers ---------------------------------------------------------------------------------------------
async function loadSubscribers() {
  const box = document.getElementById("subscribers"), error = box.parentElement.querySelector(".error");
  await attempt(error, async () => {
    const response = await fetch("/admin/api/subscribers");
    const data = await response.json();
    if (!response.ok) throw new ApiError(data.message);
    const rows = (data.subscribers || []).map(s => {
      const remove = el("button", {type: "button", className: "danger", textContent: "Remove"});
      remove.addEventListener("click", () => attempt(error, async () => {
        if (!confirm(`Remove ${s.email}? No more e-mail goes to this address.`)) return;
        const answer = await fetch("/admin/api/subscribers/remove", {method: "POST",
          headers: {"Content-Type": "application/json"}, body: JSON.stringify({id: s.id})});
        if (!answer.ok) throw new ApiError((await answer.json()).message);
        await loadSubscribers();
      }));
      return el("tr", {}, el("td", {textContent: s.email}),
        el("td", {textContent: s.confirmed ? "Confirmed" : "Waiting for confirmation"}),
        el("td", {textContent: (s.itemIds || []).map(itemName).join(", ") || "The whole page"}),
        el("td", {textContent: localTime(s.since)}), el("td", {}, remove));
    });
    box.replaceChildren(
      el("p", {textContent: data.enabled ? `${data.confirmed} confirmed, ${data.pending} waiting for confirmation.` :
        "E-mail is off: start the server with --smtp-url, --mail-from and --public-url to let readers subscribe."}),
      rows.length ? el("table", {}, el("thead", {}, el("tr", {},
        ...["Address", "State", "Follows", "Since", ""].map(h => el("th", {textContent: h})))), el("tbody", {}, ...rows)) :
        el("p", {className: "muted", textContent: "Nobody has subscribed yet."}));
  });
}

// -- the audit trail, in words --------------------------------------------------------------------------------------
const FIELDS = {status_id: "status", note: "note", text: "text", name: "name", description: "description",
                group: "group", position: "position", kind: "kind", condition: "condition", color: "colour",
                notes: "notes", username: "user", label: "token", password: "password", title: "title",
                item_ids: "items", starts_ns: "start", ends_ns: "end", starts_at: "start", ends_at: "end",
                cancelled: "cancelled", events: "events", url: "URL", email: "address"};

function describe(entry, names) {
  const named = id => names[id] || id;
  const value = (field, v) => v === null || v === undefined ? "nothing" :
    field === "status_id" ? `“${named(v)}”` : field === "kind" ? kindLabel(v) :
    field === "condition" ? (CONDITIONS[v] || [v])[0] : typeof v === "string" && v.length > 160 ? `“${v.slice(0, 160)}…”` :
    typeof v === "string" ? `“${v}”` : String(v);
  const changes = entry.changes || {};
  const detail = skip => Object.entries(changes).filter(([f]) => !skip.includes(f)).map(([field, [old, now]]) =>
    old === null || old === undefined ? `${FIELDS[field] || field} ${value(field, now)}` :
    now === null || now === undefined ? `${FIELDS[field] || field} was ${value(field, old)}` :
    `${FIELDS[field] || field} ${value(field, old)} → ${value(field, now)}`).join("; ");
  const item = `“${named(entry.itemId || entry.targetId)}”`, status = `“${named(entry.targetId)}”`;
  const text = field => value("text", (changes[field] || [])[1] ?? (changes[field] || [])[0]);
  const sentences = {
    AddItem: () => `Added item ${item}: ${detail(["name"])}`, UpdateItem: () => `Changed ${item}: ${detail([])}`,
    DeleteItem: () => `Deleted item ${item}` + (changes.notes && changes.notes[0] ? ` and its ${changes.notes[0]} notes` : ""),
    AddNote: () => `Added a note to ${item}: ${text("text")}`,
    UpdateNote: () => `Edited a note on ${item}: ${detail([])}`, DeleteNote: () => `Deleted a note on ${item}: ${text("text")}`,
    AddStatus: () => `Added status ${value("name", changes.name && changes.name[1])}: ${detail(["name"])}`,
    UpdateStatus: () => `Changed status ${status}: ${detail([])}`,
    DeleteStatus: () => `Deleted status ${value("name", changes.name && changes.name[0])}`,
    "user add": () => `Added user ${text("username")}`, "user del": () => `Deleted user ${text("username")}`,
    "user passwd": () => `Set the password of ${status}`,
    "token add": () => `Made API token ${text("label")}`, "token revoke": () => `Revoked API token ${text("label")}`,
    AddMaintenance: () => `Planned maintenance ${text("title")}: ${detail(["title"])}`,
    UpdateMaintenance: () => `Changed maintenance ${status}: ${detail([])}`,
    DeleteMaintenance: () => `Deleted maintenance ${text("title")}`,
    AddWebhook: () => `Added webhook ${text("url")}: ${detail(["url"])}`, DeleteWebhook: () => `Deleted webhook ${text("url")}`,
    RemoveSubscriber: () => `Removed e-mail subscriber ${text("email")}`,
  };
  return (sentences[entry.rpc] || (() => `${entry.rpc} ${entry.targetId}: ${detail([])}`))().replace(/: $/, "");
}

let auditNext = null;
async function loadAudit(more) {
  const box = document.getElementById("audit"), filter = document.getElementById("audit-filter");
  const error = box.parentElement.querySelector(".error");
  await attempt(error, async () => {
    const query = new URLSearchParams({limit: 50});
    if (filter.item.value) query.set("item", filter.item.value);
    if (filter.actor.value) query.set("actor", filter.actor.value);
    if (more && auditNext) query.set("before", auditNext);
    const response = await fetch(`/admin/api/audit?${query}`);
    const data = await response.json();
    if (!response.ok) throw new ApiError(data.message);
    const rows = (data.entries || []).map(e => el("tr", {},
      el("td", {textContent: new Date(e.time).toLocaleString()}),
      el("td", {textContent: `${e.actor}${e.actorKind === "token" ? " (API token)" : ""}`, title: `from ${e.client}`}),
      el("td", {className: "quote", textContent: describe(e, data.names || {})})));
    let body = box.querySelector("tbody");
    if (!more || !body) {
      body = el("tbody");
      box.replaceChildren(rows.length || more ? el("table", {}, el("thead", {}, el("tr", {},
        ...["When", "Who", "What"].map(h => el("th", {textContent: h})))), body) :
        el("p", {className: "muted", textContent: "Nothing recorded yet."}));
    }
    body.append(...rows);
    const actor = filter.actor, chosen = actor.value;
    actor.replaceChildren(el("option", {value: "", textContent: "Everyone"}),
      ...(data.actors || []).map(a => el("option", {value: a, textContent: a, selected: a === chosen})));
    auditNext = data.next || null;
    document.getElementById("older-audit").hidden = !auditNext;
  });
}

// -- forms --------------------------------------------------------------------------------------------------------
function onSubmit(id, action) {
  const form = document.getElementById(id);
  const error = form.parentElement.querySelector(".error");
  form.addEventListener("submit", async event => {
    event.preventDefault();
    if (await attempt(error, () => action(form.elements))) form.reset();
  });
}

onSubmit("add-item", async f => {
  const body = {name: f.name.value, description: f.description.value, group: f.group.value,
                initialNoteText: f.note.value};
  if (f.status.value) body.initialStatusId = f.status.value;
  await rpc("ItemsService", "AddItem", body);
  await refreshAll();
});

onSubmit("add-status", async f => {
  await rpc("StatusService", "AddStatus", {name: f.name.value, kind: f.kind.value, color: f.color.value,
                                           condition: f.condition.value || "CONDITION_UNSPECIFIED",
                                           description: f.description.value});
  await refreshAll();
});

onSubmit("add-maintenance", async f => {
  const starts = new Date(f.starts.value), ends = new Date(f.ends.value);  // (the browser's own time zone)
  if (isNaN(starts) || isNaN(ends)) throw new ApiError("Give a start and an end.");
  await rpc("MaintenanceService", "AddMaintenance", {title: f.title.value, description: f.description.value,
    itemIds: [...f.items.selectedOptions].map(option => option.value),
    startsAt: starts.toISOString(), endsAt: ends.toISOString()});
  await loadMaintenances();
});

onSubmit("add-webhook", async f => {
  const {webhook, secret} = await rpc("WebhookService", "AddWebhook", {url: f.url.value, description: f.description.value,
    events: [...f.events.selectedOptions].map(option => option.value), bodyFormat: f.format.value});
  const shown = document.getElementById("webhook-secret");
  shown.replaceChildren(`Added. Its signing secret, shown only now, for ${webhook.url}: `, el("code", {textContent: secret}));
  shown.hidden = false;
  await loadWebhooks();
});

onSubmit("change-password", async f => {
  if (f.next.value !== f.again.value) throw new ApiError("The two new passwords differ.");
  const response = await fetch("/admin/api/password", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({currentPassword: f.current.value, newPassword: f.next.value})});
  if (!response.ok) throw new ApiError((await response.json()).message);
  document.getElementById("default-password-banner").hidden = true;
  document.getElementById("password-done").hidden = false;
});

document.getElementById("audit-filter").addEventListener("submit", event => { event.preventDefault(); loadAudit(false); });
document.getElementById("older-audit").addEventListener("click", () => loadAudit(true));

(async () => {
  const addStatus = document.getElementById("add-status");
  addStatus.querySelector(".kind-select").replaceWith(Object.assign(kindSelect("STATUS_KIND_UP"), {name: "kind"}));
  addStatus.querySelector(".condition-select").replaceWith(Object.assign(conditionSelect("", ""), {name: "condition"}));
  document.getElementById("event-choice").append(...EVENT_TYPES.map(type => el("option", {value: type, textContent: type})));
  const me = await (await fetch("/admin/api/me")).json();
  document.getElementById("whoami").textContent = me.username;
  document.getElementById("default-password-banner").hidden = !me.defaultPassword;
  await refreshAll();
  await Promise.all([loadWebhooks(), loadSubscribers()]);
})();
</script>
</body>
</html>
''',
    'status.html': '''<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<link rel="icon" href="data:,">
{{head}}
<noscript><meta http-equiv="refresh" content="60"></noscript>
<title>{{page_title}}</title>
<style>
  :root {
    --bg: #f6f7f9; --card: #ffffff; --text: #1c1f24; --muted: #57606a; --line: #d0d7de; --link: #0550ae;
    --operational: #1a7f37; --degraded: #8a5d00; --partial: #b35000; --major: #cf222e; --maintenance: #0969da;
    --nodata: #6e7781; --nodata-bg: #eaeef2;
    --operational-bg: #dafbe1; --degraded-bg: #fff8c5; --partial-bg: #fff1e5; --major-bg: #ffebe9;
    --maintenance-bg: #ddf4ff;
  }
  @media (prefers-color-scheme: dark) {
    :root {
      --bg: #0d1117; --card: #161b22; --text: #e6edf3; --muted: #9da7b3; --line: #30363d; --link: #6cb6ff;
      --operational: #3fb950; --degraded: #d29922; --partial: #f0883e; --major: #f85149; --maintenance: #58a6ff;
      --nodata: #8b949e; --nodata-bg: #21262d;
      --operational-bg: #12261e; --degraded-bg: #272115; --partial-bg: #2b1d12; --major-bg: #2d1517;
      --maintenance-bg: #0c2d4a;
    }
  }
  * { box-sizing: border-box; }
  body { margin: 0; background: var(--bg); color: var(--text);
         font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
  header, main, footer { max-width: 56rem; margin: 0 auto; padding: 0 1rem; }
  header { padding-top: 1.5rem; display: flex; flex-wrap: wrap; align-items: baseline; justify-content: space-between;
           gap: .5rem 1.5rem; }
  header nav a { margin-left: 1rem; }
  h1 { font-size: 1.6rem; margin: 0 0 1rem; overflow-wrap: anywhere; }
  h1 a { color: inherit; text-decoration: none; }
  h2 { font-size: 1.1rem; margin: 0; overflow-wrap: anywhere; }
  h3 { font-size: 1rem; margin: 1.25rem 0 .5rem; }
  a { color: var(--link); }
  h2 a, .item-head a { color: inherit; }
  .overall { border-radius: .5rem; padding: 1rem 1.25rem; margin-bottom: 1.5rem; font-size: 1.15rem;
             font-weight: 600; border: 1px solid var(--line); display: flex; gap: .6rem; align-items: center; }
  .overall svg { width: 1.3rem; height: 1.3rem; flex: none; }
  .c-operational { color: var(--operational); } .c-degraded { color: var(--degraded); }
  .c-partial { color: var(--partial); } .c-major { color: var(--major); }
  .c-maintenance { color: var(--maintenance); } .c-nodata { color: var(--nodata); }
  .overall.c-operational { background: var(--operational-bg); } .overall.c-degraded { background: var(--degraded-bg); }
  .overall.c-partial { background: var(--partial-bg); } .overall.c-major { background: var(--major-bg); }
  .overall.c-maintenance { background: var(--maintenance-bg); } .overall.c-nodata { background: var(--nodata-bg); }
  .items { list-style: none; margin: 0; padding: 0; }
  .item { background: var(--card); border: 1px solid var(--line); border-radius: .5rem; padding: 1rem 1.25rem;
          margin-bottom: .75rem; }
  .item-head { display: flex; flex-wrap: wrap; gap: .25rem 1rem; justify-content: space-between;
               align-items: baseline; }
  .condition { font-weight: 600; }
  .condition svg { width: .9rem; height: .9rem; vertical-align: -.1em; margin-right: .35rem; }
  .status-name { color: var(--muted); font-weight: 400; }
  .description { margin: .25rem 0 0; color: var(--muted); overflow-wrap: anywhere; }
  .changed, time, footer, .legend, .meta { color: var(--muted); font-size: .875rem; }
  .notes { list-style: none; margin: .75rem 0 0; padding: .5rem 0 0; border-top: 1px solid var(--line); }
  .note { margin: 0 0 .5rem; overflow-wrap: anywhere; }
  .note p, .incident p { margin: 0; white-space: pre-line; overflow-wrap: anywhere; }
  .more { font-size: .875rem; }
  footer { padding: 1rem 1rem 2rem; }
  .empty { color: var(--muted); }
  details.group { background: var(--card); border: 1px solid var(--line); border-radius: .5rem; margin-bottom: .75rem; }
  details.group > summary { padding: .85rem 1.25rem; cursor: pointer; display: flex; flex-wrap: wrap; gap: .25rem 1rem;
                            justify-content: space-between; align-items: baseline; font-weight: 600; }
  details.group > .items { padding: 0 .75rem .25rem; }
  details.group .item { border-color: var(--line); }
  .uptime { margin-top: .75rem; }
  .bar { display: flex; gap: 1px; list-style: none; margin: 0; padding: 0; height: 2rem; }
  .bar li { flex: 1; display: flex; min-width: 0; }
  .bar a { flex: 1; border-radius: 2px; position: relative; background: var(--nodata-bg); }
  .bar a.d-operational { background: var(--operational); } .bar a.d-degraded { background: var(--degraded); }
  .bar a.d-partial { background: var(--partial); } .bar a.d-major { background: var(--major); }
  .bar a.d-maintenance { background: var(--maintenance); }
  .bar a.d-nodata { background: repeating-linear-gradient(135deg, var(--nodata-bg) 0 3px, var(--card) 3px 6px);
                    outline: 1px solid var(--line); outline-offset: -1px; }
  .bar a:hover, .bar a:focus { outline: 2px solid var(--text); outline-offset: 1px; z-index: 1; }
  .bar a:hover::after, .bar a:focus::after { content: attr(aria-label); position: absolute; bottom: 2.4rem;
      right: 0; width: max-content; max-width: 16rem; padding: .35rem .5rem; border-radius: .25rem; z-index: 2;
      background: var(--text); color: var(--bg); font-size: .8rem; line-height: 1.3; white-space: normal;
      pointer-events: none; }
  .bar li:nth-child(-n+45) a:hover::after, .bar li:nth-child(-n+45) a:focus::after { left: 0; right: auto; }
  .legend { display: flex; justify-content: space-between; gap: 1rem; margin-top: .25rem; }
  .legend .short { display: none; }
  @media (max-width: 560px) {
    .bar li:nth-last-child(n+31) { display: none; }
    .bar li:nth-last-child(-n+30) a:hover::after, .bar li:nth-last-child(-n+30) a:focus::after { left: auto; right: 0; }
    .bar li:nth-last-child(-n+15) a:hover::after, .bar li:nth-last-child(-n+15) a:focus::after { left: auto; right: 0; }
    .legend .long { display: none; } .legend .short { display: inline; }
    header nav a { margin: 0 1rem 0 0; }
  }
  .incidents-day { margin-bottom: 1rem; }
  .incident { background: var(--card); border: 1px solid var(--line); border-left-width: 4px; border-radius: .5rem;
              padding: .75rem 1rem; margin-bottom: .5rem; }
  .incident.b-degraded { border-left-color: var(--degraded); } .incident.b-partial { border-left-color: var(--partial); }
  .incident.b-major { border-left-color: var(--major); }
  .incident.b-maintenance { border-left-color: var(--maintenance); }
  .incident h3 { margin: 0; font-size: 1rem; }
  form.subscribe { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: end; }
  form.subscribe label { display: flex; flex-direction: column; gap: .2rem; font-size: .9rem; }
  form.subscribe details { flex-basis: 100%; }
  form.subscribe fieldset { border: 1px solid var(--line); border-radius: .4rem; display: flex; flex-wrap: wrap;
                            gap: .25rem 1rem; }
  label.choice { flex-direction: row !important; align-items: center; gap: .35rem !important; }
  input[type=email] { font: inherit; padding: .35rem .5rem; border: 1px solid var(--muted); border-radius: .3rem;
                      background: var(--card); color: var(--text); min-width: min(20rem, 100%); }
  .button { font: inherit; font-weight: 600; padding: .4rem .9rem; border-radius: .3rem; border: 1px solid var(--link);
            background: var(--link); color: var(--card); cursor: pointer; }
  .incident h4 { margin: 0; font-size: 1rem; }
  .incident .meta { margin: 0; }
  .updates { list-style: none; margin: .5rem 0 0; padding: 0; }
  .updates li { border-left: 2px solid var(--line); padding: 0 0 .6rem .9rem; margin-left: .3rem; position: relative;
                overflow-wrap: anywhere; }
  .updates li::before { content: ""; position: absolute; left: -.4rem; top: .4rem; width: .6rem; height: .6rem;
                        border-radius: 50%; background: var(--card); border: 2px solid var(--line); }
  .updates li:last-child { padding-bottom: 0; }
  .updates p { margin: .1rem 0 0; white-space: pre-line; }
  .pager { display: flex; justify-content: space-between; gap: 1rem; margin: 1rem 0; }
  .visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0);
                     white-space: nowrap; }
</style>
</head>
<body>
<header>
  <h1><a href="/">{{title}}</a></h1>
  <nav aria-label="Pages">{{nav}}</nav>
</header>
<main id="content">
{{content}}
</main>
<footer>
  <p>As of <time datetime="{{rendered_iso}}">{{rendered_text}}</time>. Times are shown in UTC unless your browser
  runs the page's script, which shows your local time; days are counted in {{time_zone}}. This page refreshes
  itself every minute.</p>
</footer>
<script>
// Optional: local times, relative times, one tab stop per uptime bar (arrow keys move along it), and a refresh
// that keeps the scroll position, open groups and the focus.
(function () {
  var relative = window.Intl && Intl.RelativeTimeFormat ? new Intl.RelativeTimeFormat(undefined, {numeric: "auto"}) : null;
  function ago(date) {
    var seconds = (date.getTime() - Date.now()) / 1000, units = [["day", 86400], ["hour", 3600], ["minute", 60]];
    for (var i = 0; i < units.length; i++) {
      if (Math.abs(seconds) >= units[i][1]) return relative.format(Math.round(seconds / units[i][1]), units[i][0]);
    }
    return relative.format(0, "minute");
  }
  function localize(root) {
    var times = root.querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) {
      var date = new Date(times[i].getAttribute("datetime"));
      if (isNaN(date)) continue;
      var local = date.toLocaleString(undefined, {dateStyle: "medium", timeStyle: "short"});
      // (class "at": a moment to plan by, such as a maintenance window: the local time alone reads best)
      times[i].textContent = relative && !times[i].classList.contains("at") ? ago(date) + " (" + local + ")" : local;
      times[i].title = date.toUTCString();
    }
  }
  function rove(root) {
    root.querySelectorAll("ol.bar").forEach(function (bar) {
      var marks = bar.querySelectorAll("a");
      for (var i = 0; i < marks.length; i++) marks[i].tabIndex = i === marks.length - 1 ? 0 : -1;
    });
  }
  document.addEventListener("keydown", function (event) {
    var mark = event.target;
    if (!mark.matches || !mark.matches("ol.bar a")) return;
    var marks = Array.prototype.filter.call(mark.closest("ol").querySelectorAll("a"), function (a) {
      return a.offsetParent !== null;  // (a narrow screen hides the older days)
    });
    var at = marks.indexOf(mark);
    var to = {ArrowLeft: at - 1, ArrowRight: at + 1, Home: 0, End: marks.length - 1}[event.key];
    if (to === undefined || to < 0 || to >= marks.length) return;
    event.preventDefault();
    mark.tabIndex = -1;
    marks[to].tabIndex = 0;
    marks[to].focus();
  });
  function refresh() {
    fetch(location.href, {cache: "no-cache"}).then(function (response) {
      return response.ok ? response.text() : null;
    }).then(function (html) {
      if (!html) return;
      var fresh = new DOMParser().parseFromString(html, "text/html");
      ["content"].forEach(function (id) {
        var now = document.getElementById(id), next = fresh.getElementById(id);
        if (now && next && now.innerHTML !== next.innerHTML) {
          var open = {}, focused = document.activeElement;
          var href = focused && now.contains(focused) && focused.getAttribute("href");
          now.querySelectorAll("details[id]").forEach(function (d) { open[d.id] = d.open; });
          now.innerHTML = next.innerHTML;
          now.querySelectorAll("details[id]").forEach(function (d) { if (d.id in open) d.open = open[d.id]; });
          rove(now);
          var again = href && now.querySelector('a[href="' + CSS.escape(href) + '"]');
          if (again) {
            var bar = again.closest("ol.bar");
            if (bar) bar.querySelectorAll("a").forEach(function (a) { a.tabIndex = a === again ? 0 : -1; });
            again.focus({preventScroll: true});
          }
        }
      });
      var footer = fresh.querySelector("footer");
      if (footer) document.querySelector("footer").innerHTML = footer.innerHTML;
      localize(document);
    }).catch(function () {});
  }
  localize(document);
  rove(document);
  setInterval(refresh, 60000);
})();
</script>
</body>
</html>
''',
}
# --- END EMBEDDED ASSETS ---


if __name__ == "__main__":
    sys.exit(main())
