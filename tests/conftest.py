"""Fixtures: the real server as a subprocess on a free loopback port with its own temporary database, and one
client interface over the three ways to reach it (Connect JSON, Connect binary, gRPC)."""
import base64
import contextlib
import glob
import http.client
import http.server
import json
import os
import pathlib
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import grpc
import pytest
from google.protobuf import json_format

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import statusthing_pb2 as pb  # noqa: E402

# The error table of ../shared/CONTRACT.md, typed in again here so the server's own table is checked against it.
CONTRACT_CODES = {
    "invalid_argument": (400, grpc.StatusCode.INVALID_ARGUMENT),
    "failed_precondition": (400, grpc.StatusCode.FAILED_PRECONDITION),
    "out_of_range": (400, grpc.StatusCode.OUT_OF_RANGE),
    "unauthenticated": (401, grpc.StatusCode.UNAUTHENTICATED),
    "permission_denied": (403, grpc.StatusCode.PERMISSION_DENIED),
    "not_found": (404, grpc.StatusCode.NOT_FOUND),
    "already_exists": (409, grpc.StatusCode.ALREADY_EXISTS),
    "aborted": (409, grpc.StatusCode.ABORTED),
    "resource_exhausted": (429, grpc.StatusCode.RESOURCE_EXHAUSTED),
    "canceled": (499, grpc.StatusCode.CANCELLED),
    "unknown": (500, grpc.StatusCode.UNKNOWN),
    "internal": (500, grpc.StatusCode.INTERNAL),
    "data_loss": (500, grpc.StatusCode.DATA_LOSS),
    "unimplemented": (501, grpc.StatusCode.UNIMPLEMENTED),
    "unavailable": (503, grpc.StatusCode.UNAVAILABLE),
    "deadline_exceeded": (504, grpc.StatusCode.DEADLINE_EXCEEDED),
}
GRPC_TO_CONNECT = {grpc_code: name for name, (_, grpc_code) in CONTRACT_CODES.items()}

ADMIN = ("admin", "password")  # the default login of a fresh database


def basic(username, password):
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


ADMIN_AUTH = basic(*ADMIN)

SERVICE_OF = {method.name: service.name for service in pb.SERVICES_DESCRIPTOR.services_by_name.values()
              for method in service.methods}


def rpc_path(rpc):
    """``"GetItem"`` -> ``"/statusthing.v1.ItemsService/GetItem"``."""
    return f"/statusthing.v1.{SERVICE_OF[rpc]}/{rpc}"


def child_env(extra=None, cwd=ROOT):
    """The environment for a statusthing process: this one's, without any STATUSTHING_* setting of the shell that
    runs the tests, plus ``extra``; the module is found in the repository whatever the working directory."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STATUSTHING_")}
    if str(cwd) != str(ROOT):
        clean["PYTHONPATH"] = os.pathsep.join(filter(None, (str(ROOT), clean.get("PYTHONPATH"))))
    return {**clean, **(extra or {})}


# How tests start statusthing: as a module, which loads its cached bytecode (a script run directly is compiled
# again every time: ~40 ms of CPU per process, and the suite starts a few hundred). tests/test_deploy.py runs
# the script and the installed command themselves.
STATUSTHING = [sys.executable, "-m", "statusthing"]


def run_statusthing(*args, stdin=None, env=None, cwd=ROOT, script=None, timeout=60, new_session=False):
    """``statusthing ARGS`` to its end, as a user types it (``script``: that file run as a script); returns the
    CompletedProcess (text). ``new_session`` runs it without a controlling terminal (as under systemd or cron)."""
    kwargs = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
    command = [sys.executable, str(script)] if script else STATUSTHING
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env=child_env(env, cwd), start_new_session=new_session, **kwargs)


def cli(server_or_db, *args, stdin=None, env=None):
    """A command (``user passwd admin``, ``audit``, ...) on a server's database (or a database path)."""
    db = getattr(server_or_db, "db_path", None) or database_for(server_or_db)
    return run_statusthing(*args, "--db", str(db), stdin=stdin, env=env)


# -- the backend: SQLite files, or (pytest --backend postgres) PostgreSQL ---------------------------------------------
# With --backend postgres, every server a test starts on a database file runs on a PostgreSQL database of its own
# instead (the same file path, the same database: restarts find their data), in a throwaway cluster this process
# starts. Tests about SQLite files themselves are marked sqlite_only and run in the SQLite run only.

BACKEND = {"name": "sqlite"}
PG_BIN = max(glob.glob("/usr/lib/postgresql/*/bin"), default="/usr/lib/postgresql/15/bin",
             key=lambda path: int(path.split("/")[-2]) if path.split("/")[-2].isdigit() else 0)  # Debian's newest


def pytest_addoption(parser):
    parser.addoption("--backend", choices=("sqlite", "postgres"), default="sqlite",
                     help="the database every test server runs on (postgres: a throwaway cluster, started here)")


def pytest_configure(config):
    BACKEND["name"] = config.getoption("--backend")
    config.addinivalue_line("markers", "sqlite_only: about SQLite files themselves; not run with --backend postgres")
    config.addinivalue_line("markers", "first_run_only: chooses its databases itself (PostgreSQL's own tests); "
                                       "not run again with --backend postgres")


def pytest_collection_modifyitems(config, items):
    if BACKEND["name"] != "postgres":
        return
    def once(item):
        return item.get_closest_marker("sqlite_only") or item.get_closest_marker("first_run_only")
    config.hook.pytest_deselected(items=[item for item in items if once(item)])
    items[:] = [item for item in items if not once(item)]


def pytest_unconfigure(config):
    if "cluster" in BACKEND:
        BACKEND.pop("cluster").stop()


class PostgresCluster:
    """Debian's PostgreSQL, as a throwaway cluster: initdb in a temporary folder (as the postgres user when the
    tests run as root: PostgreSQL refuses root), on a free loopback port, no fsync unless ``durable`` (nothing a
    test writes must survive a power loss; benchmarks want the real thing), stopped and removed at the end."""

    def __init__(self, durable=False):
        import shutil
        import tempfile
        if not os.path.exists(f"{PG_BIN}/initdb"):
            pytest.exit(f"{PG_BIN}/initdb is missing: apt-get install postgresql", returncode=3)
        self.folder = pathlib.Path(tempfile.mkdtemp(prefix="st-pg-"))
        self.port = free_port()
        as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if as_user:
            shutil.chown(self.folder, "postgres")
        self._as_user, self._databases = as_user, {}
        subprocess.run([*as_user, f"{PG_BIN}/initdb", "-D", str(self.folder / "data"), "-A", "trust", "-U",
                        "statusthing", "--locale=C.UTF-8", "-E", "UTF8"], check=True, capture_output=True)
        self._options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c max_connections=400"
                         + ("" if durable else " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"))
        self.resume()
        self.url = f"postgresql://statusthing@127.0.0.1:{self.port}"

    def database(self, key):
        """The URL of the database for ``key`` (a file path a test gave), made empty the first time."""
        if key not in self._databases:
            import psycopg
            name = f"st_{len(self._databases)}_{os.getpid()}"
            with psycopg.connect(f"{self.url}/postgres", autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name}")
            self._databases[key] = f"{self.url}/{name}"
        return self._databases[key]

    def pause(self):
        """Stop the server, keeping its data (a failover, an outage)."""
        subprocess.run([*self._as_user, f"{PG_BIN}/pg_ctl", "-D", str(self.folder / "data"), "-m", "fast", "-w",
                        "stop"], check=True, capture_output=True)

    def resume(self):
        subprocess.run([*self._as_user, f"{PG_BIN}/pg_ctl", "-D", str(self.folder / "data"), "-l",
                        str(self.folder / "log"), "-w", "-o", self._options, "start"], check=True,
                       capture_output=True)

    def stop(self):
        import shutil
        subprocess.run([*self._as_user, f"{PG_BIN}/pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate",
                        "stop"], capture_output=True)
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def database(server_or_path):
    """A connection to a server's database from this process (as a hand edit or another tool would make), SQLite
    or PostgreSQL alike: ``execute``/``executemany`` with ``?`` parameters; committed at the end."""
    url = getattr(server_or_path, "db_path", None) or database_for(server_or_path)
    if url.startswith("postgresql://"):
        import psycopg

        import statusthing_pg
        with psycopg.connect(url) as conn:  # (commits when the block ends without an exception)
            yield statusthing_pg.PgConnection(conn)
    else:
        with contextlib.closing(sqlite3.connect(url)) as conn, conn:
            yield conn


def after_another_writer(check, timeout=1.0):
    """``check()``'s answer after a write by another process: at once on SQLite (a server asks the file before each
    kept answer); on PostgreSQL once the write's notification has arrived (within a second, as promised)."""
    deadline = time.monotonic() + (timeout if BACKEND["name"] == "postgres" else 0)
    while True:
        result = check()
        if result or time.monotonic() >= deadline:
            return result


def database_for(db_path):
    """What ``--db`` a server on the file ``db_path`` gets in this run: the file, or its PostgreSQL database."""
    if BACKEND["name"] != "postgres" or str(db_path).startswith("postgresql://") or str(db_path) == ":memory:":
        return str(db_path)
    if "cluster" not in BACKEND:
        BACKEND["cluster"] = PostgresCluster()
    return BACKEND["cluster"].database(str(pathlib.Path(db_path).resolve()))


def assert_one_line_failure(result, *fragments, code=1):
    """The process failed the way an operator should see it: exit code 1, one line on stderr, no traceback."""
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("statusthing: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def json_rpc(server, method, body, auth=ADMIN_AUTH):
    """One RPC over Connect JSON (``method``: "ItemsService/AddItem"), as the admin unless ``auth`` says otherwise;
    asserts it succeeded and returns the answer as a dict."""
    status, _, answer = server.post(f"/statusthing.v1.{method}", json.dumps(body), auth=auth)
    assert status == 200, answer
    return json.loads(answer)


def status_id(server, name):
    """The id of the status called ``name``."""
    return next(s["id"] for s in json_rpc(server, "StatusService/ListStatus", {})["statuses"] if s["name"] == name)


class Clock:
    """The time a server takes as now (STATUSTHING_CLOCK): a file, replaced (not rewritten) so the server sees each
    move."""

    def __init__(self, path):
        self.path = str(path)

    def set(self, when):
        """``when``: an RFC 3339 time, or nanoseconds since the epoch."""
        with open(f"{self.path}.new", "w") as file:
            file.write(str(when))
        os.replace(f"{self.path}.new", self.path)


class Server:
    """A statusthing.py process. ``address`` is HOST:PORT; its stdout (the JSON log) goes to ``log_path``."""

    def __init__(self, db_path, log_path, *extra_args, env=None, script=None, command=None, cwd=ROOT,
                 db_from_env=False):
        self.db_path, self.log_path = database_for(db_path), pathlib.Path(log_path)
        command = command or ([sys.executable, str(script)] if script else STATUSTHING)
        env = {**(env or {}), **({"STATUSTHING_DB": self.db_path} if db_from_env else {})}
        self.args = [*command, "--api-addr", "127.0.0.1:0", *([] if db_from_env else ["--db", self.db_path]),
                     *extra_args]
        self._log_file = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.args, stdout=self._log_file, stderr=subprocess.PIPE, cwd=cwd,
                                     env=child_env(env, cwd if script is None and command is None else ROOT))
        self.start_line = self._wait_for_start()
        self.address = self.start_line["address"]
        self.host, self.port = self.address.rsplit(":", 1)[0], int(self.address.rsplit(":", 1)[1])

    def _wait_for_start(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log_lines():
                if line.get("event") == "start":
                    return line
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.proc.stderr.read().decode()}")
            time.sleep(0.05)
        raise RuntimeError("server did not start")

    def log_lines(self):
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]

    def wait_log(self, predicate, count=1, timeout=5):
        """The log lines ``predicate`` accepts, once there are ``count`` (the server writes its log in batches)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [line for line in self.log_lines() if predicate(line)]
            if len(lines) >= count or time.monotonic() > deadline:
                return lines
            time.sleep(0.02)

    def request_log(self, protocol, count, timeout=5):
        """The first ``count`` request log lines of ``protocol``."""
        return self.wait_log(lambda line: line.get("protocol") == protocol, count, timeout)

    def http(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=10)

    def post(self, path, body, content_type="application/json", headers=None, conn=None, auth=ADMIN_AUTH):
        """One POST (with the default admin's credentials unless ``auth`` says otherwise);
        returns (status, headers, body bytes)."""
        own = conn is None
        conn = conn or self.http()
        headers = {"Content-Type": content_type, **({"Authorization": auth} if auth else {}), **(headers or {})}
        try:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.headers, response.read()
        finally:
            if own:
                conn.close()

    def channel(self):
        return grpc.insecure_channel(self.address)

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()
        return self.proc.returncode


@pytest.fixture
def start_server(tmp_path):
    """Start servers on demand: ``start_server(db_path=None, *args)``; all are stopped after the test."""
    servers = []

    def start(*args, db_path=None, **options):
        index = len(servers)
        server = Server(db_path or tmp_path / "st.db", tmp_path / f"server{index}.log", *args, **options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(start_server):
    """A fresh server with a fresh database, for tests that need to know the whole state."""
    return start_server()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One server for a module whose tests each make their own uniquely named data; whatever they did, nothing
    may have reached its stderr as a traceback."""
    tmp = tmp_path_factory.mktemp("shared")
    server = Server(tmp / "st.db", tmp / "server.log")
    yield server
    server.stop()
    assert "Traceback" not in server.proc.stderr.read().decode()


class RpcFailure(Exception):
    """An RPC's error as any transport reports it: the Connect code name and the message."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


def fails(code, call, *args, **kwargs):
    """Assert the call fails with this Connect code (whatever the transport); return the message."""
    with pytest.raises(RpcFailure) as info:
        call(*args, **kwargs)
    assert info.value.code == code, info.value
    assert info.value.message
    return info.value.message


class ConnectJsonClient:
    name = "connect_json"

    def __init__(self, server, auth=ADMIN_AUTH):
        self.server, self.conn, self.auth = server, server.http(), auth

    def call(self, rpc, request):
        path = rpc_path(rpc)
        status, headers, body = self.server.post(path, json_format.MessageToJson(request), conn=self.conn,
                                                 auth=self.auth)
        if status != 200:
            return self.fail(status, headers, body)
        assert headers["Content-Type"] == "application/json"
        response_class = getattr(pb, f"{rpc}Response")
        # Strict parse: an unexpected field in the answer fails the test.
        return json_format.Parse(body, response_class())

    @staticmethod
    def fail(status, headers, body):
        assert headers["Content-Type"] == "application/json"
        error = json.loads(body)
        assert set(error) == {"code", "message"}, error
        assert CONTRACT_CODES[error["code"]][0] == status, (error, status)
        raise RpcFailure(error["code"], error["message"])


class ConnectProtoClient(ConnectJsonClient):
    name = "connect_proto"

    def call(self, rpc, request):
        path = rpc_path(rpc)
        status, headers, body = self.server.post(path, request.SerializeToString(), "application/proto",
                                                 conn=self.conn, auth=self.auth)
        if status != 200:
            return self.fail(status, headers, body)
        assert headers["Content-Type"] == "application/proto"
        return getattr(pb, f"{rpc}Response").FromString(body)


class GrpcClient:
    name = "grpc"

    def __init__(self, server, auth=ADMIN_AUTH):
        self.channel = server.channel()
        self.metadata = (("authorization", auth),) if auth else ()

    def call(self, rpc, request):
        path = rpc_path(rpc)
        stub = self.channel.unary_unary(path, request_serializer=type(request).SerializeToString,
                                        response_deserializer=getattr(pb, f"{rpc}Response").FromString)
        try:
            return stub(request, timeout=10, metadata=self.metadata)
        except grpc.RpcError as exc:
            raise RpcFailure(GRPC_TO_CONNECT[exc.code()], exc.details()) from None


CLIENTS = [ConnectJsonClient, ConnectProtoClient, GrpcClient]


class Api:
    """``api.AddItem(name="x")`` calls the RPC over one transport and returns the response message."""

    def __init__(self, client):
        self.client = client
        self.transport = client.name

    def __getattr__(self, rpc):
        if rpc not in SERVICE_OF:
            raise AttributeError(rpc)
        return lambda **fields: self.client.call(rpc, getattr(pb, f"{rpc}Request")(**fields))


@pytest.fixture(params=CLIENTS, ids=lambda c: c.name)
def api(request, shared_server):
    """The same calls over Connect JSON, Connect binary and gRPC, against the module's shared server."""
    return Api(request.param(shared_server))


@pytest.fixture(params=CLIENTS, ids=lambda c: c.name)
def fresh_api(request, server):
    """As ``api``, against a server of the test's own (for tests that look at the whole database)."""
    return Api(request.param(server))


@pytest.fixture
def unique(request):
    """A name no other test uses: the test's id plus a counter."""
    counter = iter(range(1000))
    return lambda label="": f"{request.node.name}-{label}{next(counter)}"


CHROMIUM = "/usr/bin/chromium"
PUBLIC_HOST = "status.example.com"


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium driven by Playwright (which downloads no browser of its own)."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync",
            # For the reverse-proxy tests: the public name of a status page, on this machine.
            f"--host-resolver-rules=MAP {PUBLIC_HOST} 127.0.0.1"])
        yield browser
        browser.close()


RPC_PREFIX = "/statusthing.v1"


class Site:
    """A server on a clock the test sets (STATUSTHING_CLOCK), in Europe/Berlin unless told, and the calls tests
    make of it (Connect JSON). ``restart`` starts it again on the same database and clock."""

    def __init__(self, folder, *args, start="2027-01-01T10:00:00Z", timezone="Europe/Berlin", env=None):
        self.folder, self.args, self.starts = pathlib.Path(folder), ("--timezone", timezone, *args), 0
        self.env = env or {}
        self.clock = Clock(self.folder / "now")
        self.clock.set(start)
        self.server = self._start()
        self.statuses = {s["name"]: s["id"] for s in self.rpc("StatusService/ListStatus")["statuses"]}
        self.statuses["PARTLY"] = self.rpc("StatusService/AddStatus", name="Partly down",
                                           kind="STATUS_KIND_UNAVAILABLE")["status"]["id"]

    def _start(self):
        self.starts += 1
        return Server(self.folder / "st.db", self.folder / f"server{self.starts}.log", *self.args,
                      env={"STATUSTHING_CLOCK": self.clock.path, **self.env})

    def restart(self, sig=signal.SIGTERM):
        self.server.stop(sig)
        self.server = self._start()
        return self.server

    def stop(self):
        self.server.stop()
        assert "Traceback" not in self.server.proc.stderr.read().decode()

    def at(self, when):
        self.clock.set(when)
        return self

    def rpc(self, method, **body):
        status, _, answer = self.server.post(f"{RPC_PREFIX}.{method}", json.dumps(body), auth=ADMIN_AUTH)
        assert status == 200, answer
        return json.loads(answer)

    def add(self, name, status="UP", **fields):
        return self.rpc("ItemsService/AddItem", name=name, initialStatusId=self.statuses[status],
                        **fields)["item"]["id"]

    def set(self, item_id, status, note=""):
        self.rpc("ItemsService/UpdateItem", itemId=item_id, statusId=self.statuses[status], noteText=note)

    def get(self, path, headers=None):
        conn = self.server.http()
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read().decode()

    def page(self, path="/"):
        status, headers, body = self.get(path)
        assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8", (status, body)
        return body


def wait_for_count(changed, find, count, timeout, what):
    """``find()`` (a list) once it has ``count`` entries, waiting on ``changed`` (a Condition its writer notifies);
    fails after ``timeout`` saying how many of ``what()`` came."""
    deadline = time.monotonic() + timeout
    with changed:
        while True:
            found = find()
            if len(found) >= count:
                return found
            left = deadline - time.monotonic()
            assert left > 0, f"{len(found)} of {count} {what()} after {timeout} s"
            changed.wait(left)


class Receiver:
    """A real HTTP server on a free loopback port that records every request it gets (method, path, headers,
    body) and answers ``status`` (200 unless a test says otherwise); with ``hang`` set, it never answers (until
    the test ends). Tests await what it got with ``wait``."""

    def __init__(self):
        self.requests, self.status, self.hang = [], 200, False
        self._changed, self._released = threading.Condition(), threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:  # (the sender died mid-request: nothing was delivered)
                    return
                with receiver._changed:
                    receiver.requests.append({"path": self.path, "body": body,
                                              "headers": {k.lower(): v for k, v in self.headers.items()}})
                    receiver._changed.notify_all()
                    status, hang = receiver.status, receiver.hang
                if hang:
                    receiver._released.wait()
                    return
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def events(self):
        """The bodies got so far, parsed (JSON)."""
        with self._changed:
            return [json.loads(request["body"]) for request in self.requests]

    def wait(self, predicate=lambda request: True, count=1, timeout=15):
        """The requests ``predicate`` accepts, once there are ``count`` of them; fails after ``timeout``."""
        return wait_for_count(self._changed, lambda: [r for r in self.requests if predicate(r)], count, timeout,
                              lambda: f"requests (the last: {self.requests[-3:]})")

    def close(self):
        self._released.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def of_type(event_type):
    """A ``Receiver.wait`` predicate: a Standard Webhooks body of this event type."""
    return lambda request: json.loads(request["body"]).get("type") == event_type


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def self_signed_certificate(folder, name):
    """(cert.pem, key.pem) in ``folder``: a self-signed certificate for ``name`` and 127.0.0.1."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    f"/CN={name}", "-addext", f"subjectAltName=DNS:{name},IP:127.0.0.1",
                    "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")],
                   check=True, capture_output=True)
    return folder / "cert.pem", folder / "key.pem"
