"""The Connect transport over HTTP/1.1: content types, the JSON mapping, compression, and every kind of bad input
answered with the documented error while the server keeps serving and nothing is written."""
import contextlib
import gzip
import json
import socket
import sqlite3
import time

import pytest

import statusthing_pb2 as pb
from conftest import CLIENTS, Api, RpcFailure

LIST = "/statusthing.v1.ItemsService/ListItems"
ADD = "/statusthing.v1.ItemsService/AddItem"


def item_count(server):
    status, _, body = server.post(LIST, "{}")
    assert status == 200
    return len(json.loads(body).get("items", []))


def assert_error(response, http_status, code):
    status, headers, body = response
    assert status == http_status, body
    assert headers["Content-Type"] == "application/json"
    error = json.loads(body)
    assert error["code"] == code and error["message"]
    return error["message"]


def test_empty_message_and_json_mapping(server):
    status, headers, body = server.post(LIST, "{}")
    assert (status, headers["Content-Type"], body) == (200, "application/json", b"{}")
    status, _, body = server.post("/statusthing.v1.StatusService/ListStatus", "{}")
    statuses = json.loads(body)["statuses"]
    up = [s for s in statuses if s["name"] == "UP"][0]
    assert up["kind"] == "STATUS_KIND_UP"  # enums as names
    assert up["timestamps"]["created"].endswith("Z")  # RFC 3339
    assert "description" not in up  # defaults omitted
    # Input takes proto names and JSON names, enums as names or numbers, and ignores unknown fields.
    body = {"name": "mapping", "initialStatus": {"name": "s1", "kind": 6, "unknownField": 1}, "whatever": [1]}
    status, _, answer = server.post(ADD, json.dumps(body))
    item = json.loads(answer)["item"]
    assert status == 200 and item["status"]["kind"] == "STATUS_KIND_INVESTIGATING"
    status, _, answer = server.post(ADD, json.dumps({"name": "mapping2", "initial_status_id": item["status"]["id"],
                                                     "initial_note_text": "hi"}))
    assert status == 200 and json.loads(answer)["item"]["notes"][0]["text"] == "hi"
    status, _, answer = server.post(LIST, json.dumps({"kinds": ["STATUS_KIND_INVESTIGATING"],
                                                      "statusIds": [item["status"]["id"]], "extended": True}))
    assert [i["name"] for i in json.loads(answer)["items"]] == ["mapping", "mapping2"]


def test_every_successful_json_answer_is_an_object(server):
    status, _, body = server.post(ADD, '{"name": "x"}')
    item_id = json.loads(body)["item"]["id"]
    status, _, body = server.post("/statusthing.v1.ItemsService/DeleteItem", json.dumps({"itemId": item_id}))
    assert (status, body) == (200, b"{}")


def test_binary_bodies(server):
    request = pb.AddItemRequest(name="binary", initial_note_text="n").SerializeToString()
    status, headers, body = server.post(ADD, request, "application/proto")
    assert status == 200 and headers["Content-Type"] == "application/proto"
    assert pb.AddItemResponse.FromString(body).item.notes[0].text == "n"
    status, _, body = server.post(LIST, b"", "application/proto")  # the empty message is zero bytes
    assert status == 200 and [i.name for i in pb.ListItemsResponse.FromString(body).items] == ["binary"]


def test_content_type_parameters_and_protocol_version_header(server):
    status, _, _ = server.post(LIST, "{}", "application/json; charset=utf-8", {"Connect-Protocol-Version": "1"})
    assert status == 200
    assert_error(server.post(LIST, "{}", headers={"Connect-Protocol-Version": "2"}), 400, "invalid_argument")


BAD_JSON = [
    ("malformed", b'{"name": '),
    ("not an object", b"[]"),
    ("null", b"null"),
    ("wrong type", b'{"extended": "yes"}'),
    ("unknown enum name", b'{"kinds": ["STATUS_KIND_SIDEWAYS"]}'),
    ("not utf-8", b'{"name": "\xff\xfe"}'),
]


@pytest.mark.parametrize("body", [b for _, b in BAD_JSON], ids=[n for n, _ in BAD_JSON])
def test_bad_json_is_invalid_argument(shared_server, body):
    path = LIST if b"kinds" in body or b"extended" in body else ADD
    before = item_count(shared_server)
    assert_error(shared_server.post(path, body), 400, "invalid_argument")
    assert item_count(shared_server) == before


def test_unknown_enum_name_in_a_write_writes_nothing(shared_server):
    before = item_count(shared_server)
    body = {"name": "enum-write", "initialStatus": {"name": "enum-status", "kind": "STATUS_KIND_PURPLE"}}
    assert "STATUS_KIND_PURPLE" in assert_error(shared_server.post(ADD, json.dumps(body)), 400, "invalid_argument")
    assert item_count(shared_server) == before


def test_truncated_binary_body(shared_server):
    whole = pb.AddItemRequest(name="truncated", description="d" * 50).SerializeToString()
    before = item_count(shared_server)
    assert_error(shared_server.post(ADD, whole[:-10], "application/proto"), 400, "invalid_argument")
    assert_error(shared_server.post(ADD, b"\xff\xff\xff", "application/proto"), 400, "invalid_argument")
    assert item_count(shared_server) == before


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "", "application/grpc"])
def test_unsupported_content_type_is_415(shared_server, content_type):
    conn = shared_server.http()
    headers = {"Content-Type": content_type} if content_type else {}
    conn.request("POST", ADD, body='{"name": "form"}', headers=headers)
    response = conn.getresponse()
    response.read()
    assert response.status == 415 and "application/json" in response.headers["Accept-Post"]
    names = [item["name"] for item in json.loads(shared_server.post(LIST, "{}")[2]).get("items", [])]
    assert "form" not in names


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_on_an_rpc_path_are_405(shared_server, method):
    """Writes take POST only; reads take GET too (Connect GET, tests/test_connect_get.py)."""
    conn = shared_server.http()
    conn.request(method, "/statusthing.v1.ItemsService/AddItem")
    response = conn.getresponse()
    response.read()
    assert response.status == 405 and response.headers["Allow"] == "POST"
    if method != "GET":
        conn.request(method, LIST)
        response = conn.getresponse()
        response.read()
        assert response.status == 405 and response.headers["Allow"] == "GET, POST"


def test_unknown_path_is_404(shared_server):
    for path in ("/statusthing.v1.ItemsService/Nope", "/statusthing.v2.ItemsService/ListItems", "/nope"):
        status, _, _ = shared_server.post(path, "{}")
        assert status == 404
    conn = shared_server.http()
    conn.request("GET", "/no/such/page")
    assert conn.getresponse().status == 404


def test_oversized_body_is_refused_without_reading_it(shared_server):
    before = item_count(shared_server)
    # Only the headers are sent: the answer must come without the server waiting for 100 MiB.
    with socket.create_connection((shared_server.host, shared_server.port), timeout=5) as sock:
        sock.sendall(f"POST {ADD} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {100 << 20}\r\n\r\n".encode())
        answer = sock.recv(65536).decode()
    head, _, body = answer.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 429") and "Connection: close" in head
    assert json.loads(body)["code"] == "resource_exhausted"
    # A client that does send its oversized body still gets the answer.
    big = json.dumps({"name": "big", "description": "x" * (1 << 20)})
    message = assert_error(shared_server.post(ADD, big), 429, "resource_exhausted")
    assert "larger than" in message
    assert item_count(shared_server) == before


def test_gzip_bomb_is_refused(shared_server):
    bomb = gzip.compress(json.dumps({"name": "bomb", "description": " " * (4 << 20)}).encode())
    assert len(bomb) < 20000
    assert_error(shared_server.post(ADD, bomb, headers={"Content-Encoding": "gzip"}), 429, "resource_exhausted")
    assert_error(shared_server.post(ADD, b"not gzip", headers={"Content-Encoding": "gzip"}), 400,
                 "invalid_argument")
    response = shared_server.post(ADD, b"{}", headers={"Content-Encoding": "br"})
    assert_error(response, 501, "unimplemented")
    assert response[1]["Accept-Encoding"] == "gzip, identity"


def test_gzip_requests_and_responses(server):
    for n in range(30):
        server.post(ADD, json.dumps({"name": f"gz-{n}", "description": "compressible " * 5}))
    status, headers, body = server.post(LIST, gzip.compress(b'{"extended": true}'),
                                        headers={"Content-Encoding": "gzip", "Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    items = json.loads(gzip.decompress(body))["items"]
    assert len(items) == 30
    status, headers, plain = server.post(LIST, '{"extended": true}')
    assert "Content-Encoding" not in headers and json.loads(plain)["items"] == items
    assert len(body) < len(plain) / 3
    # Small answers are not worth compressing.
    status, headers, body = server.post("/statusthing.v1.ItemsService/GetItem",
                                        json.dumps({"item_id": items[0]["id"]}), headers={"Accept-Encoding": "gzip"})
    assert status == 200 and "Content-Encoding" not in headers and json.loads(body)["item"]["name"] == "gz-0"


def test_chunked_request_body(shared_server):
    with socket.create_connection((shared_server.host, shared_server.port), timeout=5) as sock:
        body = b'{"extended": false}'
        sock.sendall(f"POST {LIST} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"Transfer-Encoding: chunked\r\n\r\n".encode()
                     + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")


def test_keep_alive_carries_many_requests_and_errors_do_not_close_it(shared_server):
    conn = shared_server.http()
    for _ in range(5):
        assert shared_server.post(LIST, "{}", conn=conn)[0] == 200
        assert shared_server.post(LIST, "{bad", conn=conn)[0] == 400
        assert shared_server.post("/nope", "{}", conn=conn)[0] == 404
    sock = conn.sock
    assert shared_server.post(LIST, "{}", conn=conn)[0] == 200
    assert conn.sock is sock  # the same TCP connection throughout


def test_garbage_on_the_wire_does_not_hurt_the_server(shared_server):
    for junk in (b"\x00\x01\x02\r\n\r\n", b"GET\r\n\r\n", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\ngarbage", b"P"):
        with socket.create_connection((shared_server.host, shared_server.port), timeout=5) as sock:
            sock.sendall(junk)
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(5)
            try:
                while sock.recv(4096):
                    pass
            except (ConnectionResetError, TimeoutError):
                pass
    assert shared_server.post(LIST, "{}")[0] == 200


def raw_exchange(server, data, wait=5):
    """Send raw bytes, read until the server closes (or ``wait`` s pass quietly); return what came back."""
    with socket.create_connection((server.host, server.port), timeout=wait) as sock:
        sock.sendall(data)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except TimeoutError:
            pass
        return answer


def request_bytes(headers, body=b"{}", version="HTTP/1.1"):
    lines = [f"POST {LIST} {version}", "Host: x", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def raw(head_lines, body=b""):
    return ("\r\n".join(head_lines) + "\r\n\r\n").encode("latin-1") + body


RPC_HEAD = [f"POST {LIST} HTTP/1.1", "Host: x", "Content-Type: application/json"]
CHUNKED = RPC_HEAD + ["Transfer-Encoding: chunked"]

# (raw request, the status it must get); every one of these closes the connection after its answer.
MALFORMED = {
    "two lengths": (raw(RPC_HEAD + ["Content-Length: 2", "Content-Length: 9"], b"{}"), 400),
    "length and chunked": (raw(CHUNKED + ["Content-Length: 2"], b"2\r\n{}\r\n0\r\n\r\n"), 400),
    "length not digits": (raw(RPC_HEAD + ["Content-Length: +2"], b"{}"), 400),
    "length superscript two": (raw(RPC_HEAD + ["Content-Length: \u00b2"], b"{}"), 400),
    "length negative": (raw(RPC_HEAD + ["Content-Length: -1"], b"{}"), 400),
    "chunk size -1": (raw(CHUNKED, b"-1\r\n{}\r\n0\r\n\r\n"), 400),
    "chunk size 0x2": (raw(CHUNKED, b"0x2\r\n{}\r\n0\r\n\r\n"), 400),
    "chunk size +2": (raw(CHUNKED, b"+2\r\n{}\r\n0\r\n\r\n"), 400),
    "chunk size space 2": (raw(CHUNKED, b" 2\r\n{}\r\n0\r\n\r\n"), 400),
    "chunk size 2 tab": (raw(CHUNKED, b"2\t\r\n{}\r\n0\r\n\r\n"), 400),
    "chunk longer than its size": (raw(CHUNKED, b"1\r\n{}\r\n0\r\n\r\n"), 400),
    "xchunked": (raw(RPC_HEAD + ["Transfer-Encoding: xchunked"], b"2\r\n{}\r\n0\r\n\r\n"), 400),
    "notchunked": (raw(RPC_HEAD + ["Transfer-Encoding: notchunked"], b"2\r\n{}\r\n0\r\n\r\n"), 400),
    "chunked, identity": (raw(RPC_HEAD + ["Transfer-Encoding: chunked, identity"], b"2\r\n{}\r\n0\r\n\r\n"), 400),
    "gzip, chunked": (raw(RPC_HEAD + ["Transfer-Encoding: gzip, chunked"], b"2\r\n{}\r\n0\r\n\r\n"), 400),
    "trailers too large": (raw(CHUNKED, b"2\r\n{}\r\n0\r\n" + b"X-T: " + b"t" * 5000 + b"\r\n\r\n"), 431),
    "folded header": (raw(RPC_HEAD + ["Content-Length: 2", " folded: line"], b"{}"), 400),
    "no colon": (raw(RPC_HEAD + ["no colon here", "Content-Length: 2"], b"{}"), 400),
    "space before colon": (raw(RPC_HEAD + ["Content-Length : 2"], b"{}"), 400),
    "control character": (raw(RPC_HEAD + ["X-Evil: a\x00b", "Content-Length: 2"], b"{}"), 400),
    "too many headers": (raw(RPC_HEAD + [f"X-Filler-{n}: y" for n in range(150)]), 431),
    "header line too long": (raw(RPC_HEAD + ["X-Big: " + "y" * 9000]), 431),
    "header block too large": (raw(RPC_HEAD + [f"X-F{n}: " + "y" * 4000 for n in range(9)]), 431),
    "request line too long": (raw([f"GET /{'a' * 9000} HTTP/1.1", "Host: x"]), 414),
    "no host": (raw([f"POST {LIST} HTTP/1.1", "Content-Type: application/json", "Content-Length: 2"], b"{}"), 400),
    "two hosts": (raw(RPC_HEAD + ["Host: y", "Content-Length: 2"], b"{}"), 400),
    "http/2.0 line": (raw([f"POST {LIST} HTTP/2.0", "Host: x", "Content-Length: 2"], b"{}"), 400),
    "http/0.9": (b"GET /\r\n\r\n", 400),
    "two spaces": (raw(["GET  / HTTP/1.1", "Host: x"]), 400),
    "bad method token": (raw(["GE(T / HTTP/1.1", "Host: x"]), 400),
    "tls client hello": (bytes.fromhex("160301020001") + b"\x03\x03" + bytes(range(32)) + b"\r\n\r\n", 400),
    "connect": (raw(["CONNECT example.com:443 HTTP/1.1", "Host: example.com:443"]), 405),
    "expect something else": (raw(RPC_HEAD + ["Content-Length: 2", "Expect: 200-ok"], b"{}"), 417),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_requests_get_a_real_answer_and_a_close(shared_server, name):
    data, status = MALFORMED[name]
    answer = raw_exchange(shared_server, data + raw(["GET / HTTP/1.1", "Host: x"]))  # a second request behind
    head, _, rest = answer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0].startswith(f"HTTP/1.1 {status} ".encode()) and b"Connection: close" in lines, answer[:300]
    length = int(next(line for line in lines if line.startswith(b"Content-Length: ")).split(b": ")[1])
    assert len(rest) == length  # one answer only: the bytes behind the bad request were never read as a request
    assert shared_server.post(LIST, "{}")[0] == 200


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND", "post", "PATCH", "FOO"])
def test_any_other_method_on_an_rpc_path_is_405(shared_server, method):
    answer = raw_exchange(shared_server, raw([f"{method} {LIST} HTTP/1.1", "Host: x", "Connection: close"]))
    assert answer.startswith(b"HTTP/1.1 405 ") and b"\r\nAllow: GET, POST\r\n" in answer  # (a read)
    answer = raw_exchange(shared_server, raw([f"{method} /statusthing.v1.ItemsService/AddItem HTTP/1.1", "Host: x",
                                              "Connection: close"]))
    assert answer.startswith(b"HTTP/1.1 405 ") and b"\r\nAllow: POST\r\n" in answer
    answer = raw_exchange(shared_server, raw([f"{method} / HTTP/1.1", "Host: x", "Connection: close"]))
    assert answer.startswith(b"HTTP/1.1 405 ") and b"\r\nAllow: GET, HEAD\r\n" in answer


def test_tolerated_forms(shared_server):
    # An empty line before the request line is skipped (RFC 9112 §2.2); absolute-form targets are served.
    answer = raw_exchange(shared_server, b"\r\n" + raw(RPC_HEAD + ["Content-Length: 2", "Connection: close"], b"{}"))
    assert answer.startswith(b"HTTP/1.1 200 ")
    answer = raw_exchange(shared_server, raw(["GET http://x/ HTTP/1.1", "Host: x", "Connection: close"]))
    assert answer.startswith(b"HTTP/1.1 200 ")
    answer = raw_exchange(shared_server, raw(["GET / HTTP/1.7", "Host: x", "Connection: close"]))
    assert answer.startswith(b"HTTP/1.1 200 ")  # a later 1.x minor version is read as 1.1
    answer = raw_exchange(shared_server, raw(CHUNKED + ["Connection: close"], b"2;ext=1\r\n{}\r\n0\r\nX-T: y\r\n\r\n"))
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_a_request_that_trickles_in_is_cut_at_its_deadline(start_server):
    server = start_server("--request-timeout", "1", "--idle-timeout", "10")
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        answer = b""
        with contextlib.suppress(OSError):
            for n in range(30):  # one header line every 0.2 s: never idle, never done
                sock.sendall(b"X-Slow-%d: y\r\n" % n)
                time.sleep(0.2)
        sock.settimeout(5)
        while chunk := sock.recv(65536):
            answer += chunk
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 ") and b"Connection: close" in answer
    assert 0.9 < elapsed < 4, elapsed
    assert server.post(LIST, "{}")[0] == 200


def test_http_servers_own_refusals_come_through_the_one_writer(shared_server):
    answer = raw_exchange(shared_server, b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 414") and b"\r\nServer: statusthing\r\n" in head
    assert b"Content-Type: text/plain; charset=utf-8" in head and body.strip()
    assert shared_server.post(LIST, "{}")[0] == 200


def test_routes_answer_their_methods(shared_server):
    def ask(method, path, body=None):
        conn = shared_server.http()
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()

    status, headers, _ = ask("POST", "/", "{}")
    assert status == 405 and headers["Allow"] == "GET, HEAD" and headers["Content-Type"].startswith("text/plain")
    status, headers, _ = ask("GET", "/admin/api/password")
    assert status == 405 and headers["Allow"] == "POST"
    status, headers, body = ask("GET", "/")
    head_status, head_headers, head_body = ask("HEAD", "/")
    assert (status, head_status) == (200, 200) and head_body == b""
    assert head_headers["Content-Length"] == headers["Content-Length"] == str(len(body))
    assert head_headers["ETag"] == headers["ETag"]
    status, headers, body = ask("GET", "/no/such/page")
    assert status == 404 and headers["Content-Type"] == "text/html; charset=utf-8" and b"no such page" in body
    status, headers, _ = ask("DELETE", "/no/such/page")
    assert status == 404 and headers["Content-Type"].startswith("text/plain")


def test_error_answers_tell_nothing_about_the_server_and_are_not_sniffed(shared_server):
    status, headers, _ = shared_server.post(LIST, "{nope")
    assert status == 400 and headers["Server"] == "statusthing"
    assert headers["X-Content-Type-Options"] == "nosniff"


def read_responses(sock, count):
    """Up to ``count`` HTTP/1.1 responses from the socket, stopping after one that says it closes:
    [(status, headers)]."""
    buffer, answers = b"", []
    while len(answers) < count:
        while b"\r\n\r\n" not in buffer:
            buffer += sock.recv(65536)
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", 0))
        while len(buffer) < length:
            buffer += sock.recv(65536)
        buffer = buffer[length:]
        answers.append((int(lines[0].split()[1]), headers))
        if headers.get("connection", "").lower() == "close":
            break
    return answers


def test_connection_management_follows_http(shared_server):
    headers = ["Content-Type: application/json", "Content-Length: 2"]
    # HTTP/1.0 closes after the answer unless it asks to keep the connection; HTTP/1.1 closes when asked to.
    for version, extra, closes in (("HTTP/1.0", [], True), ("HTTP/1.0", ["Connection: keep-alive"], False),
                                   ("HTTP/1.1", ["Connection: close"], True), ("HTTP/1.1", [], False)):
        with socket.create_connection((shared_server.host, shared_server.port), timeout=5) as sock:
            sock.sendall(request_bytes(headers + extra, version=version) * 2)
            answers = read_responses(sock, 2)
            if closes:
                assert sock.recv(1) == b"", (version, extra)  # closed after the first answer
            assert [status for status, _ in answers] == [200] * (1 if closes else 2), (version, extra)
    # Header names are not case-sensitive.
    answer = raw_exchange(shared_server, request_bytes(["content-type: application/json", "CONTENT-LENGTH: 2",
                                                        "connection: close"]))
    assert answer.startswith(b"HTTP/1.1 200 OK")


@pytest.mark.sqlite_only
@pytest.mark.parametrize("transport", ["connect_json", "connect_proto", "grpc"])
def test_an_unexpected_exception_is_internal_with_the_traceback_only_in_the_log(shared_server, transport):
    # A real fault, not a mock: a note whose time was overwritten by hand with text, so building its message
    # fails in a way no code path expects.
    item = json.loads(shared_server.post(ADD, json.dumps({"name": f"broken-{transport}",
                                                          "initial_note_text": "fine"}))[2])["item"]
    note_id = item["notes"][0]["id"]
    with sqlite3.connect(shared_server.db_path) as conn:
        conn.execute("UPDATE notes SET created_ns = 'not a time' WHERE id = ?", (note_id,))
    api = Api(next(c for c in CLIENTS if c.name == transport)(shared_server))
    with pytest.raises(RpcFailure) as info:
        api.GetNote(note_id=note_id)
    assert (info.value.code, info.value.message) == ("internal", "internal error")
    errors = shared_server.wait_log(lambda line: line.get("event") == "internal_error"
                                    and "GetNote" in line.get("where", "") and "TypeError" in line["error"])
    assert errors and "Traceback (most recent call last)" in errors[-1]["error"]
    assert f"broken-{transport}" in [i.name for i in api.ListItems().items]  # everything else still answers
