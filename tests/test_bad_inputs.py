"""Bad input of every kind, over every transport: each gets a documented 4xx (a Connect code on HTTP, a gRPC status on
gRPC) and changes nothing; the server answers every connection, never takes long, never logs a traceback and keeps
serving. First the reproductions from the issue, then a generated corpus of more than 1,000 inputs."""
import base64
import concurrent.futures
import json
import random
import socket
import time

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor

import statusthing_pb2 as pb
from conftest import ADMIN_AUTH, SERVICE_OF, database
from conftest import rpc_path as path

LIST = "/statusthing.v1.ItemsService/ListItems"
ADD = "/statusthing.v1.ItemsService/AddItem"
RPCS = list(SERVICE_OF)
# What a bad input may be answered with. 501 only for the one case Connect prescribes (an unknown Content-Encoding).
CLIENT_GRPC_CODES = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                     grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.FAILED_PRECONDITION,
                     grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED,
                     grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.UNIMPLEMENTED}


@pytest.fixture
def server(shared_server):
    return shared_server


def item_count(server):
    with database(server) as conn:
        return conn.execute("SELECT (SELECT COUNT(*) FROM items) + (SELECT COUNT(*) FROM notes) + "
                            "(SELECT COUNT(*) FROM statuses)").fetchone()[0]


def assert_invalid(response):
    status, headers, body = response
    assert status == 400 and headers["Content-Type"] == "application/json", (status, body[:200])
    assert json.loads(body)["code"] == "invalid_argument"
    return json.loads(body)["message"]


# -- the reproductions ------------------------------------------------------------------------------------------------

def test_json_that_attacks_the_parser(server):
    before = item_count(server)
    assert "nested" in assert_invalid(server.post(ADD, "[" * 1000 + "]" * 1000))
    assert "nested" in assert_invalid(server.post(ADD, '{"name": ' + "[" * 1000 + "]" * 1000 + "}"))
    assert "infinity" in assert_invalid(server.post(LIST, '{"kinds": [1e400]}'))
    assert "at most 1000" in assert_invalid(server.post(LIST, json.dumps({"kinds": [1] * 300_000})))
    assert "at most 1000" in assert_invalid(server.post(LIST, json.dumps({"statusIds": ["a"] * 200_000})))
    assert "Unicode" in assert_invalid(server.post(ADD, '{"name": "\\ud800 lone"}'))
    assert "not an id" in assert_invalid(server.post(path("GetItem"), json.dumps({"itemId": "x" * 100_000})))
    assert "control characters" in assert_invalid(server.post(ADD, json.dumps({"name": "a\u0000b"})))
    assert item_count(server) == before


def test_a_bad_line_costs_the_log_no_other_line(server):
    lines_before = len(server.request_log("http", 0))
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda n: server.post(ADD, '{"name": "\\udfff"}' if n == 50 else "{}", auth=None)[0]
                                if n % 2 else server.post(LIST, "{}")[0], range(100)))
    assert results.count(200) == 50
    assert len(server.request_log("http", lines_before + 100)) >= lines_before + 100


def test_the_audit_limit_is_digits(server):
    conn = server.http()
    conn.request("GET", "/admin/api/audit?limit=%C2%B2", headers={"Authorization": ADMIN_AUTH})
    response = conn.getresponse()
    assert response.status == 400 and json.loads(response.read())["code"] == "invalid_argument"


def test_a_malformed_grpc_message_is_invalid_argument(server):
    with server.channel() as channel:
        call = channel.unary_unary(path("GetItem"))  # bytes in, bytes out: the message is whatever we send
        for garbage in (b"\xff\xff\xff", b"\x0a\x05ab", b"\x0a\x02\xc3\x28"):
            with pytest.raises(grpc.RpcError) as info:
                call(garbage, timeout=5)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value


def test_user_text_is_never_template_input(server):
    name = "{{title}} {{content}} {{rendered_text}}"
    assert server.post(ADD, json.dumps({"name": name}))[0] == 200
    conn = server.http()
    conn.request("GET", "/")
    page = conn.getresponse().read().decode()
    assert name in page and page.count("<title>Status</title>") == 1


# -- the corpus ------------------------------------------------------------------------------------------------

BAD_VALUES = [None, True, False, 0, -1, 1.5, 2 ** 64, -2 ** 63 - 1, 1e308, "", "x" * 20_000, [], {}, [1, "a"],
              {"a": {"b": [1]}}, "STATUS_KIND_NOPE", "\u0000", "\u202e", "<script>alert(1)</script>", "{{title}}",
              "😀" * 1000, "NaN", "-Infinity", "1e400", [None], [[1]], "0x10"]


def json_cases():
    """For every RPC: every field set to every bad value, and whole bodies that are not the message."""
    cases = []
    for rpc in RPCS:
        descriptor = getattr(pb, f"{rpc}Request").DESCRIPTOR
        for field in descriptor.fields:
            for value in BAD_VALUES:
                cases.append((rpc, json.dumps({field.json_name: value}).encode()))
            cases.append((rpc, json.dumps({field.name: "x" * 5000, "unknownField": [1, 2, 3]}).encode()))
        for body in (b"", b"null", b"[]", b"1", b'"s"', b"{", b'{"a":', b"\xff\xfe{}", b"\xef\xbb\xbf{}",
                     b'{"name": "\xff"}', b'{"a": NaN}', b'{"a": 1, "a": 2}', b"{}" * 3, b"{\"" + b"k" * 100 + b"\"}",
                     b"[" * 50 + b"]" * 50, json.dumps({"x": "\\ud834"}).encode()):
            cases.append((rpc, body))
    return cases


def binary_cases(rng):
    """For every RPC: random bytes, truncations and wire-format abuse."""
    cases = []
    for rpc in RPCS:
        valid = getattr(pb, f"{rpc}Request")()
        for field in valid.DESCRIPTOR.fields:
            if field.type == FieldDescriptor.TYPE_STRING and not field.is_repeated:
                setattr(valid, field.name, "a value")
        encoded = valid.SerializeToString()
        for cut in range(1, min(len(encoded), 6)):
            cases.append((rpc, encoded[:-cut]))
        cases += [(rpc, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))) for _ in range(8)]
        cases += [(rpc, data) for data in (
            b"\x0a\xff\xff\xff\xff\x0f",  # a length far past the end
            b"\x08" + b"\xff" * 11,  # a varint longer than ten bytes
            b"\x0a\x02\xc3\x28",  # field 1 as invalid UTF-8
            b"\x0b\x0c", b"\x0c",  # groups, and an end-group with no start
            b"\x00\x01",  # field number 0
            b"\x0f",  # wire type 7
            b"\x12\x03abc" * 1000,  # a field repeated far too often
        )]
    return cases


def http_cases():
    """Transport-level mistakes, on the wire."""
    def head(*lines, body=b""):
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body

    cases = []
    base = [f"POST {LIST} HTTP/1.1", "Host: x", "Content-Type: application/json"]
    for content_type in ("text/plain", "application/jsonx", "application/proto; x", "", "multipart/form-data",
                         "application/json\x7f", "APPLICATION/GRPC"):
        cases.append(head(*base[:2], f"Content-Type: {content_type}", "Content-Length: 2", body=b"{}"))
    for encoding in ("gzip", "br", "deflate", "identity, gzip", "x-gzip", "gzip;q=1"):
        cases.append(head(*base, f"Content-Encoding: {encoding}", "Content-Length: 4", body=b"\x1f\x8b{}"))
    for version in ("0", "2", " 1", "1.0"):
        cases.append(head(*base, f"Connect-Protocol-Version: {version}", "Content-Length: 2", body=b"{}"))
    for target in ("/%00", "/../../etc/passwd", "/items/%ff%fe", "/items/" + "a" * 5000, "/admin/api/audit?limit=-1",
                   "/admin/api/audit?limit=99999999999999999999", "/?" + "q" * 7000, "/items/%2e%2e%2fadmin",
                   "/statusthing.v1.ItemsService/ListItems/extra", "/statusthing.v1.ItemsService/",
                   "//statusthing.v1.ItemsService/ListItems"):
        for method in ("GET", "POST", "DELETE", "OPTIONS", "TRACE"):
            cases.append(head(f"{method} {target} HTTP/1.1", "Host: x", "Content-Length: 0"))
    for length in ("1000000000000", "0x10", "1e3", "", " ", "2 2", "\u0663"):
        cases.append(head(*base, f"Content-Length: {length}", body=b"{}"))
    for junk in (b"\x16\x03\x01\x00\xa5\x01\x00", b"\x00" * 100, b"GET", b"GET / HTTP/1.1", b"\r\n" * 20,
                 b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00", bytes(range(256)),
                 b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n12", b"POST / HTTP/1.1\r\nHost: x\r\n"):
        cases.append(junk)
    return cases


def send_json(server, rpc, body, auth=True):
    started = time.monotonic()
    status, headers, answer = server.post(path(rpc), body, auth=ADMIN_AUTH if auth else None)
    return status, headers, answer, time.monotonic() - started


def send_raw(server, data):
    started = time.monotonic()
    with socket.create_connection((server.host, server.port), timeout=6) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer, time.monotonic() - started


def test_a_corpus_of_bad_inputs(server):
    rng = random.Random(7)
    json_inputs, binary_inputs, http_inputs = json_cases(), binary_cases(rng), http_cases()
    total = len(json_inputs) + 2 * len(binary_inputs) + len(http_inputs)
    assert total >= 1000, total
    failures = []
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for (rpc, body), (status, headers, answer, seconds) in zip(json_inputs, pool.map(
                lambda case: send_json(server, *case), json_inputs)):
            error = json.loads(answer) if status != 200 else None
            if status >= 500 or seconds > 5 or (error and set(error) != {"code", "message"}):
                failures.append(("json", rpc, body[:80], status, answer[:120]))

        def send_binary(case):
            rpc, body = case
            started = time.monotonic()
            result = server.post(path(rpc), body, "application/proto")
            return result, time.monotonic() - started

        for (rpc, body), ((status, headers, answer), seconds) in zip(binary_inputs,
                                                                     pool.map(send_binary, binary_inputs)):
            if status >= 500 or seconds > 5:
                failures.append(("proto", rpc, body[:40], status, answer[:120]))
        for data, (answer, seconds) in zip(http_inputs, pool.map(lambda data: send_raw(server, data), http_inputs)):
            if data.startswith(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"):  # HTTP/2: answered in HTTP/2 frames
                if not answer or seconds > 5:
                    failures.append(("http2", data[:80], answer[:120]))
                continue
            status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None
            connect_rule = status == 501 and b'"unimplemented"' in answer and b"Content-Encoding" in data
            if status is None or (status >= 500 and not connect_rule) or seconds > 5:
                failures.append(("http", data[:80], answer[:120]))

    with server.channel() as channel:
        def send_grpc(case):
            rpc, body = case
            started = time.monotonic()
            try:
                channel.unary_unary(path(rpc))(body, timeout=5, metadata=(("authorization", ADMIN_AUTH),))
                code = grpc.StatusCode.OK
            except grpc.RpcError as exc:
                code = exc.code()
            return code, time.monotonic() - started

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            for (rpc, body), (code, seconds) in zip(binary_inputs, pool.map(send_grpc, binary_inputs)):
                if code not in CLIENT_GRPC_CODES or seconds > 5:
                    failures.append(("grpc", rpc, body[:40], code))
    assert failures == [], failures[:10]
    assert server.post(LIST, "{}")[0] == 200 and server.proc.poll() is None
    assert not server.wait_log(lambda line: line.get("event") == "internal_error", timeout=0.5)
    print(f"{total} bad inputs: {len(json_inputs)} JSON, {len(binary_inputs)} binary over Connect and over gRPC, "
          f"{len(http_inputs)} on the wire")


def test_wrong_credentials_in_odd_shapes(server):
    for auth in ("Basic", "Basic ", "Basic " + "=" * 10, "Bearer", "Bearer " + "x" * 7000, "Digest abc",
                 "Basic " + base64.b64encode(b"no-colon").decode(), "Basic " + base64.b64encode(b"\xff:\xfe").decode(),
                 "basic " + base64.b64encode(b"admin:password").decode() + " extra"):
        status, _, body = server.post(ADD, '{"name": "never"}', auth=auth)
        assert status in (401, 429) and json.loads(body)["code"] in ("unauthenticated", "resource_exhausted")
