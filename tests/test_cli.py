"""The command line and the process: flags, start-up failures, the JSON log, graceful shutdown, concurrency."""
import http.client
import json
import pathlib
import signal
import socket
import threading
import time

import pytest

import statusthing
from conftest import ADMIN_AUTH, ROOT, assert_one_line_failure, run_statusthing as run

LIST = "/statusthing.v1.ItemsService/ListItems"


def test_help_explains_every_flag():
    result = run("--help")
    assert result.returncode == 0
    for flag in ("--api-addr", "--db", "--devmode", "--version"):
        assert flag in result.stdout
    assert "127.0.0.1:9000" in result.stdout and "statusthing.db" in result.stdout


def test_version():
    result = run("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"statusthing {statusthing.VERSION}"


def test_port_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("--api-addr", f"127.0.0.1:{port}", "--db", str(tmp_path / "st.db"))
    assert_one_line_failure(result, f"127.0.0.1:{port}", "in use")
    assert not (tmp_path / "st.db").exists()  # the port is tried before the database is touched


def test_unwritable_database_path(tmp_path):
    result = run("--api-addr", "127.0.0.1:0", "--db", str(tmp_path / "no" / "such" / "dir" / "st.db"))
    assert_one_line_failure(result, "cannot open database")
    (tmp_path / "a-directory.db").mkdir()
    assert_one_line_failure(run("--api-addr", "127.0.0.1:0", "--db", str(tmp_path / "a-directory.db")),
                            "cannot open database")


def test_bad_address(tmp_path):
    assert_one_line_failure(run("--api-addr", "localhost", "--db", str(tmp_path / "st.db")), "HOST:PORT")


def test_startup_and_request_log_lines(server):
    start = server.start_line
    assert start["address"] == f"127.0.0.1:{server.port}"
    assert start["db"] in (server.db_path, str(pathlib.Path(server.db_path).resolve()))
    assert start["schema_version"] == statusthing.MIGRATIONS[-1][0]
    assert start["devmode"] is False and start["version"] == statusthing.VERSION
    server.post(LIST, "{}")
    server.post(LIST, "{nope")
    lines = server.request_log("http", 2)
    # (Each request came on its own connection, so their lines may be written in either order.)
    assert sorted((line["method"], line["path"], line["status"], line.get("code")) for line in lines) == [
        ("POST", LIST, 200, None), ("POST", LIST, 400, "invalid_argument")]
    for line in lines:
        assert line["time"].endswith("Z") and isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_graceful_stop_finishes_requests_in_flight(start_server, sig):
    server = start_server()
    idle = socket.create_connection((server.host, server.port))  # an idle keep-alive connection must not hold us
    body = b'{"name": "in flight"}'
    busy = socket.create_connection((server.host, server.port), timeout=10)
    busy.sendall(b"POST /statusthing.v1.ItemsService/AddItem HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n"
                 b"Content-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n"
                 % (ADMIN_AUTH.encode(), len(body)))
    assert busy.recv(1024).startswith(b"HTTP/1.1 100 Continue")  # the server is on this request now
    busy.sendall(body[:5])
    server.proc.send_signal(sig)
    assert server.wait_log(lambda line: line.get("event") == "stopping")  # the signal has been taken
    busy.sendall(body[5:])
    answer = busy.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in answer
    started = time.monotonic()
    assert server.proc.wait(10) == 0
    assert time.monotonic() - started < 5
    events = [line["event"] for line in server.log_lines() if "event" in line]
    assert events[-2:] == ["stopping", "stopped"]
    with pytest.raises(OSError):
        socket.create_connection((server.host, server.port), timeout=2)
    assert not (ROOT / f"{server.db_path}-wal").exists()  # closed cleanly: the WAL was checkpointed away
    idle.close()
    busy.close()
    # What the in-flight request wrote is there on the next start.
    again = start_server()
    status, _, listed = again.post(LIST, "{}")
    assert [i["name"] for i in json.loads(listed)["items"]] == ["in flight"]


def test_concurrent_writers_over_both_transports(server):
    import grpc
    import statusthing_pb2 as pb
    import statusthing_pb2_grpc as pb_grpc
    errors = []

    def http_writer(n):
        conn = server.http()
        for k in range(40):
            status, _, body = server.post("/statusthing.v1.ItemsService/AddItem",
                                          json.dumps({"name": f"http-{n}-{k}", "initial_note_text": "n"}), conn=conn)
            if status != 200:
                errors.append(body)

    def grpc_writer(n):
        with server.channel() as channel:
            stub = pb_grpc.ItemsServiceStub(channel)
            for k in range(40):
                try:
                    stub.AddItem(pb.AddItemRequest(name=f"grpc-{n}-{k}"), metadata=(("authorization", ADMIN_AUTH),))
                except grpc.RpcError as exc:
                    errors.append(exc)

    threads = [threading.Thread(target=http_writer, args=(n,)) for n in range(4)]
    threads += [threading.Thread(target=grpc_writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    status, _, body = server.post(LIST, '{"extended": true}')
    items = json.loads(body)["items"]
    assert len(items) == 320 and len({i["id"] for i in items}) == 320
    assert sum(len(i.get("notes", [])) for i in items) == 160


def test_connections_beyond_the_limit_are_refused_quickly(start_server):
    server = start_server("--max-connections", "3")
    idle = [socket.create_connection((server.host, server.port)) for _ in range(3)]  # each holds a thread
    time.sleep(0.3)
    # The refusal is written as soon as the connection is accepted, before any request is read.
    with socket.create_connection((server.host, server.port), timeout=5) as refused:
        answer = refused.recv(65536).decode()
    head, _, body = answer.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 503") and "Retry-After: 1" in head
    assert json.loads(body)["code"] == "unavailable"
    idle.pop().close()

    def status_of_a_request():
        try:
            return server.post(LIST, "{}")[0]
        except (OSError, http.client.HTTPException):  # refused before the request was read
            return None

    deadline = time.monotonic() + 5
    while status_of_a_request() != 200:  # the freed thread ends as soon as it sees the close
        assert time.monotonic() < deadline
        time.sleep(0.05)
    for sock in idle:
        sock.close()


def test_idle_connections_are_closed(start_server):
    server = start_server("--idle-timeout", "1")
    body = b'{"extended": true}'
    probes = {
        "never says anything": b"",
        "stops mid-line": b"POST /statusthing.v1.ItemsService/List",
        "a whole request, then idle keep-alive": b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                                 b"Content-Length: %d\r\n\r\n%s" % (LIST.encode(), len(body), body),
        "a body that never arrives": b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                     b"Content-Length: 100\r\n\r\n{" % LIST.encode(),
        "the HTTP/2 preface, then nothing": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    }
    results = {}

    def seconds_until_closed(name, data):
        with socket.create_connection((server.host, server.port), timeout=10) as sock:
            started = time.monotonic()
            sock.sendall(data)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
            results[name] = time.monotonic() - started, answer

    # The four connections wait out the same idle limit side by side.
    threads = [threading.Thread(target=seconds_until_closed, args=probe) for probe in probes.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    http2 = results.pop("the HTTP/2 preface, then nothing")
    assert http2[0] < 3  # gRPC's GOAWAY for an idle connection may come before the relay's own idle limit
    assert all(0.9 < elapsed < 3 for elapsed, _ in results.values()), results
    assert results["never says anything"][1] == b""
    assert results["stops mid-line"][1].startswith(b"HTTP/1.1 408 ")  # it stopped before its request line ended
    assert results["a whole request, then idle keep-alive"][1].startswith(b"HTTP/1.1 200 OK")
    answer = results["a body that never arrives"][1]
    assert answer.startswith(b"HTTP/1.1 408") and b"Connection: close" in answer
    assert server.post(LIST, "{}")[0] == 200


def test_hundreds_of_grpc_connections_at_once(start_server):
    # Each relayed gRPC connection takes three descriptors in the server, so 400 of them are well past the 1,024
    # that select() could watch (and past a default soft limit, which the server raises).
    import resource

    import grpc
    import statusthing_pb2 as pb
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    server = start_server("--max-connections-per-client", "1000")
    channels = [grpc.insecure_channel(server.address, options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range(400)]
    try:
        calls = [channel.unary_unary("/statusthing.v1.StatusService/ListStatus",
                                     request_serializer=pb.ListStatusRequest.SerializeToString,
                                     response_deserializer=pb.ListStatusResponse.FromString).future(
            pb.ListStatusRequest(), timeout=30) for channel in channels]
        assert all(len(call.result().statuses) == 3 for call in calls)
        # ... and all 400 stay open at once: a second call on each goes over the same connections.
        assert all(len(channel.unary_unary("/statusthing.v1.StatusService/ListStatus",
                                           request_serializer=pb.ListStatusRequest.SerializeToString,
                                           response_deserializer=pb.ListStatusResponse.FromString)(
            pb.ListStatusRequest(), timeout=30).statuses) == 3 for channel in channels)
    finally:
        for channel in channels:
            channel.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
