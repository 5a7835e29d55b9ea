"""Accounts, write protection and the audit trail (issue 3), against the real server and the real command line."""
import json
import statistics
import time

import grpc
import pytest

import statusthing_pb2 as pb
from conftest import ADMIN, ADMIN_AUTH, CLIENTS, Api, RpcFailure, basic, cli, database, fails

WRITES = ["AddStatus", "UpdateStatus", "DeleteStatus", "AddItem", "UpdateItem", "DeleteItem",
          "AddNote", "UpdateNote", "DeleteNote"]


def audit(server):
    """The audit trail as ``statusthing.py audit --json`` prints it, oldest first."""
    result = cli(server, "audit", "--json", "--limit", "10000")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def audit_rows(server):
    """The audit table read directly (quicker than the command, for loops), oldest first."""
    with database(server) as conn:
        rows = conn.execute("SELECT rpc, actor, actor_kind, client FROM audit_log ORDER BY id").fetchall()
    return [dict(zip(("rpc", "actor", "actor_kind", "client"), row)) for row in rows]


def new_token(server, label):
    result = cli(server, "token", "add", label)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token.startswith("st_") and len(token) > 40
    return token


def write_requests(admin):
    """One valid request per write RPC, made against fresh data (each may run once)."""
    status = admin.AddStatus(name=f"s-{time.monotonic_ns()}", kind=pb.STATUS_KIND_UP).status
    doomed_status = admin.AddStatus(name=f"d-{time.monotonic_ns()}", kind=pb.STATUS_KIND_UP).status
    item = admin.AddItem(name=f"i-{time.monotonic_ns()}", initial_note_text="n").item
    doomed_item = admin.AddItem(name=f"di-{time.monotonic_ns()}").item
    note = admin.AddNote(item_id=item.id, note_text="x").note
    return {
        "AddStatus": dict(name=f"new-s-{time.monotonic_ns()}", kind=pb.STATUS_KIND_DOWN),
        "UpdateStatus": dict(status_id=status.id, name=f"renamed-{time.monotonic_ns()}"),
        "DeleteStatus": dict(status_id=doomed_status.id),
        "AddItem": dict(name=f"new-i-{time.monotonic_ns()}"),
        "UpdateItem": dict(item_id=item.id, description="changed"),
        "DeleteItem": dict(item_id=doomed_item.id),
        "AddNote": dict(item_id=item.id, note_text="new note"),
        "UpdateNote": dict(note_id=note.id, note_text="edited"),
        "DeleteNote": dict(note_id=item.notes[0].id),
    }


@pytest.mark.parametrize("client_class", CLIENTS, ids=lambda c: c.name)
def test_every_write_needs_valid_credentials(server, client_class):
    admin = Api(client_class(server))
    revoked = new_token(server, "revoked")
    assert cli(server, "token", "revoke", "revoked").returncode == 0
    token = new_token(server, "ci")
    refused = {"no credentials": Api(client_class(server, auth=None)),
               "wrong password": Api(client_class(server, auth=basic("admin", "wrong password"))),
               "revoked token": Api(client_class(server, auth=f"Bearer {revoked}")),
               "garbage": Api(client_class(server, auth="Basic !!!not-base64"))}
    accepted = [admin, Api(client_class(server, auth=f"Bearer {token}"))]
    for round_, writer in enumerate(accepted):
        requests = write_requests(admin)
        before = audit_rows(server)
        for rpc in WRITES:
            # (A user name of its own each time: ten failures for one name from one address lock that pair out.)
            refused["unknown user"] = Api(client_class(server, auth=basic(f"mallory-{round_}-{rpc}", "password")))
            for why, stranger in refused.items():
                with pytest.raises(RpcFailure) as info:
                    getattr(stranger, rpc)(**requests[rpc])
                assert info.value.code == "unauthenticated", (rpc, why)
                if why != "no credentials":  # the same words whether or not the user exists
                    assert info.value.message == "wrong credentials"
            assert audit_rows(server) == before  # a refused write leaves no trace, and changed nothing
            getattr(writer, rpc)(**requests[rpc])  # (a success also resets the failure count)
            entries = audit_rows(server)
            assert len(entries) == len(before) + 1, rpc
            before = entries
            entry = entries[-1]
            assert entry["rpc"] == rpc and entry["client"] == "127.0.0.1"
            assert (entry["actor"], entry["actor_kind"]) == (("admin", "user") if round_ == 0 else ("ci", "token"))
    # Reads are public.
    anonymous = refused["no credentials"]
    assert anonymous.ListItems().items and anonymous.ListStatus().statuses
    item = anonymous.ListItems().items[0]
    assert anonymous.GetItem(item_id=item.id).item.id == item.id
    assert anonymous.ListNotes(item_id=item.id) is not None


def test_unauthenticated_http_answer(server):
    status, headers, body = server.post("/statusthing.v1.ItemsService/AddItem", '{"name": "x"}', auth=None)
    assert status == 401 and headers["WWW-Authenticate"].startswith('Basic realm="StatusThing"')
    assert json.loads(body)["code"] == "unauthenticated"
    status, headers, body = server.post("/statusthing.v1.ItemsService/AddItem", '{"name": "x"}',
                                        auth=basic("nobody", "x"))
    assert status == 401 and json.loads(body) == {"code": "unauthenticated", "message": "wrong credentials"}


def post_from(server, source, auth, name="x"):
    """A write from another loopback address (the whole of 127/8 is this machine)."""
    import http.client
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10, source_address=(source, 0))
    try:
        conn.request("POST", "/statusthing.v1.ItemsService/AddItem", body=json.dumps({"name": name}),
                     headers={"Content-Type": "application/json", "Authorization": auth})
        response = conn.getresponse()
        return response.status, response.headers, json.loads(response.read())
    finally:
        conn.close()


def test_brute_force_is_slowed_per_address(server):
    wrong = basic("admin", "guess")
    for _ in range(10):
        assert post_from(server, "127.0.0.2", wrong)[0] == 401
    status, headers, body = post_from(server, "127.0.0.2", wrong)
    assert status == 429 and body["code"] == "resource_exhausted" and 250 <= int(headers["Retry-After"]) <= 300
    # Locked out means locked out: even the right password waits, so guessing gains nothing.
    assert post_from(server, "127.0.0.2", ADMIN_AUTH, "right-but-locked")[0] == 429
    # Other addresses are unaffected, over HTTP and gRPC.
    assert post_from(server, "127.0.0.3", ADMIN_AUTH, "other-address")[0] == 200
    assert server.post("/statusthing.v1.ItemsService/ListItems", "{}", auth=None)[0] == 200
    names = [i["name"] for i in json.loads(server.post("/statusthing.v1.ItemsService/ListItems", "{}")[2])["items"]]
    assert names == ["other-address"]


def test_lockout_applies_to_grpc_from_the_same_address(server):
    with server.channel() as channel:
        add = channel.unary_unary("/statusthing.v1.ItemsService/AddItem",
                                  request_serializer=pb.AddItemRequest.SerializeToString,
                                  response_deserializer=pb.AddItemResponse.FromString)
        for _ in range(10):
            with pytest.raises(grpc.RpcError) as info:
                add(pb.AddItemRequest(name="x"), metadata=(("authorization", basic("admin", "nope")),))
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as info:
            add(pb.AddItemRequest(name="x"), metadata=(("authorization", ADMIN_AUTH),))
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert int(dict(info.value.trailing_metadata())["retry-after"]) > 0
    assert post_from(server, "127.0.0.1", ADMIN_AUTH)[0] == 429  # the same client address over HTTP
    assert post_from(server, "127.0.0.4", ADMIN_AUTH)[0] == 200


def test_a_success_resets_the_failure_count(server):
    wrong = basic("admin", "guess")
    for round_ in range(3):
        for _ in range(9):
            assert post_from(server, "127.0.0.5", wrong)[0] == 401
        assert post_from(server, "127.0.0.5", ADMIN_AUTH, f"ok-{round_}")[0] == 200


def test_cross_site_writes_are_refused(server):
    add = "/statusthing.v1.ItemsService/AddItem"
    status, _, body = server.post(add, '{"name": "csrf"}', headers={"Origin": "https://evil.example"})
    assert status == 403 and json.loads(body)["code"] == "permission_denied"
    status, _, _ = server.post(add, '{"name": "csrf"}', "text/plain")
    assert status == 415
    status, _, _ = server.post(add, '{"name": "csrf"}', "application/x-www-form-urlencoded")
    assert status == 415
    # The server's own pages send their own origin.
    status, headers, _ = server.post(add, '{"name": "same-origin"}', headers={"Origin": f"http://{server.address}"})
    assert status == 200 and "Access-Control-Allow-Origin" not in headers
    names = [i["name"] for i in json.loads(server.post("/statusthing.v1.ItemsService/ListItems", "{}")[2])["items"]]
    assert names == ["same-origin"]


def test_cors_only_for_the_origins_an_operator_allows(start_server):
    server = start_server("--cors-origin", "https://status.example.com")
    conn = server.http()
    conn.request("OPTIONS", "/statusthing.v1.ItemsService/AddItem", headers={
        "Origin": "https://status.example.com", "Access-Control-Request-Method": "POST"})
    response = conn.getresponse()
    response.read()
    assert response.status == 204 and "Authorization" in response.headers["Access-Control-Allow-Headers"]
    assert response.headers["Access-Control-Allow-Origin"] == "https://status.example.com"
    status, headers, _ = server.post("/statusthing.v1.ItemsService/AddItem", '{"name": "cors"}',
                                     headers={"Origin": "https://status.example.com"})
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "https://status.example.com"
    status, headers, _ = server.post("/statusthing.v1.ItemsService/AddItem", '{"name": "cors2"}',
                                     headers={"Origin": "https://other.example.com"})
    assert status == 403 and "Access-Control-Allow-Origin" not in headers


def test_command_line_changes_count_at_once_on_a_running_server(server):
    old = ADMIN_AUTH
    result = cli(server, "user", "passwd", "admin", "--stdin", stdin="a much better password\n")
    assert result.returncode == 0, result.stderr
    assert post_from(server, "127.0.0.6", old, "old-password")[0] == 401
    assert post_from(server, "127.0.0.6", basic("admin", "a much better password"), "new-password")[0] == 200
    # A new user, then their deletion.
    assert cli(server, "user", "add", "ops", "--stdin", stdin="ops password 1\n").returncode == 0
    assert post_from(server, "127.0.0.6", basic("ops", "ops password 1"), "by-ops")[0] == 200
    listed = cli(server, "user", "list").stdout
    assert "admin" in listed and "ops" in listed and "last login never" not in listed.splitlines()[1]
    assert cli(server, "user", "del", "ops").returncode == 0
    assert post_from(server, "127.0.0.6", basic("ops", "ops password 1"), "ops-gone")[0] == 401
    # Tokens: shown once, usable at once, revoked at once.
    token = new_token(server, "deploy-bot")
    assert post_from(server, "127.0.0.6", f"Bearer {token}", "by-token")[0] == 200
    assert "deploy-bot" in cli(server, "token", "list").stdout
    assert cli(server, "token", "revoke", "deploy-bot").returncode == 0
    assert post_from(server, "127.0.0.6", f"Bearer {token}", "revoked-token")[0] == 401
    entries = audit(server)
    assert [(e["rpc"], e["actor"]) for e in entries if e["rpc"] == "AddItem"] == [
        ("AddItem", "admin"), ("AddItem", "ops"), ("AddItem", "deploy-bot")]
    assert [e["rpc"] for e in entries if e["actorKind"] == "cli"] == [
        "user passwd", "user add", "user del", "token add", "token revoke"]
    text = cli(server, "audit", "--limit", "3").stdout.splitlines()
    assert len(text) == 3 and "token revoke" in text[-1]


def test_command_line_errors(server):
    assert cli(server, "user", "passwd", "nobody", "--stdin", stdin="long enough\n").returncode == 1
    short = cli(server, "user", "add", "x", "--stdin", stdin="short\n")
    assert short.returncode == 1 and "8 characters" in short.stderr
    assert cli(server, "token", "revoke", "nothing").returncode == 1
    last = cli(server, "user", "del", "admin")
    assert last.returncode == 1 and "only user" in last.stderr
    assert cli(server, "user", "add", "admin", "--stdin", stdin="long enough\n").returncode == 1


def test_passwords_are_never_stored_or_logged(server):
    password = "correct horse battery staple"
    assert cli(server, "user", "add", "alice", "--stdin", stdin=password + "\n").returncode == 0
    assert post_from(server, "127.0.0.7", basic("alice", password), "by-alice")[0] == 200
    server.request_log("http", 1)
    with database(server) as conn:
        raw = conn.execute("SELECT * FROM users").fetchall()
    dump = repr(raw).encode() + b"".join(v for row in raw for v in row if isinstance(v, bytes))
    for secret in (password, "password"):
        assert secret.encode() not in dump and secret.encode().hex().encode() not in dump
    log = server.log_path.read_text()
    assert password not in log and basic("alice", password).split()[1] not in log


def test_unknown_user_costs_as_much_as_a_wrong_password(server):
    def timed(auth):
        started = time.perf_counter()
        assert post_from(server, "127.0.0.8", auth)[0] == 401
        return time.perf_counter() - started

    unknown, wrong = [], []
    for _ in range(4):
        for _ in range(2):
            unknown.append(timed(basic("no-such-user", "guess")))
            wrong.append(timed(basic("admin", "guess")))
        assert post_from(server, "127.0.0.8", ADMIN_AUTH, f"reset-{time.monotonic_ns()}")[0] == 200
    ratio = statistics.median(unknown) / statistics.median(wrong)
    assert 0.6 < ratio < 1.6, (unknown, wrong)
    assert statistics.median(wrong) > 0.005  # both pay for a real scrypt


def test_default_password_warning_and_the_env_override(start_server, tmp_path):
    default = start_server()
    warning = default.wait_log(lambda line: line.get("event") == "default_password")
    assert warning and warning[0]["level"] == "warning" and "user passwd admin" in warning[0]["message"]
    status, _, body = default.post("/statusthing.v1.ItemsService/AddItem", '{"name": "x"}')
    assert status == 200
    default.stop()
    chosen = start_server(db_path=tmp_path / "other.db", env={"STATUSTHING_ADMIN_PASSWORD": "chosen at install"})
    assert not any(line.get("event") == "default_password" for line in chosen.log_lines())
    assert post_from(chosen, "127.0.0.9", ADMIN_AUTH)[0] == 401
    assert post_from(chosen, "127.0.0.9", basic("admin", "chosen at install"))[0] == 200


def test_admin_api_change_own_password(server):
    import http.client

    def call(method, path, body=None, auth=ADMIN_AUTH):
        conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
        conn.request(method, path, body=body, headers={"Authorization": auth, "Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")

    assert call("GET", "/admin/api/me") == (200, {"username": "admin", "defaultPassword": True})
    assert call("GET", "/admin/api/me", auth="")[0] == 401
    status, error = call("POST", "/admin/api/password", json.dumps({"currentPassword": "nope",
                                                                    "newPassword": "new password 1"}))
    assert status == 400 and "current password" in error["message"]
    assert call("POST", "/admin/api/password", json.dumps({"currentPassword": ADMIN[1], "newPassword": "short"})
                )[0] == 400
    assert call("POST", "/admin/api/password", json.dumps({"currentPassword": ADMIN[1],
                                                           "newPassword": "new password 1"})) == (200, {})
    new_auth = basic("admin", "new password 1")
    assert call("GET", "/admin/api/me", auth=new_auth) == (200, {"username": "admin", "defaultPassword": False})
    assert call("GET", "/admin/api/me")[0] == 401
    status, body = call("GET", "/admin/api/audit?limit=5", auth=new_auth)
    assert status == 200 and body["entries"][0]["rpc"] == "user passwd" and body["entries"][0]["actor"] == "admin"


def test_a_refused_write_records_nothing(server):
    """A name clash found by the database after the rest of the write was sent (on PostgreSQL the statements go out
    together, and the error comes back with the commit): already_exists, named, and no audit row, event or note."""
    admin = Api(CLIENTS[0](server))
    taken = admin.AddItem(name="Taken by the first").item

    def counts():
        with database(server) as conn:
            return [conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                    for table in ("audit_log", "events", "notes", "items")]

    before = counts()
    for client_class in CLIENTS:
        message = fails("already_exists", Api(client_class(server)).AddItem, name="TAKEN BY THE FIRST",
                        initial_note_text="lost")
        assert message == 'an item named "TAKEN BY THE FIRST" already exists'
    assert counts() == before
    assert admin.GetItem(item_id=taken.id).item == taken


def test_refused_writes_in_a_burst_leave_every_connection_sound(server):
    """Name clashes refused while other writes and reads go on, from four clients at once: every other call still
    answers (on PostgreSQL a write the database broke off must not spoil the connection it ran on for the next)."""
    import threading
    admin = Api(CLIENTS[0](server))
    admin.AddItem(name="Clash")
    failures = []

    def client(n):
        api = Api(CLIENTS[0](server))
        for round_ in range(40):
            try:
                fails("already_exists", api.AddItem, name="clash", initial_note_text=f"lost {n}")
                item = api.AddItem(name=f"Burst {n}-{round_}", initial_note_text="kept").item
                api.AddNote(item_id=item.id, note_text="more")
                assert len(api.GetItem(item_id=item.id).item.notes) == 2
                api.ListItems(extended=True)
            except Exception as exc:  # (kept to assert on below, with its round)
                failures.append((n, round_, repr(exc)))
                return

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len([i for i in admin.ListItems().items if i.name.startswith("Burst")]) == 160
