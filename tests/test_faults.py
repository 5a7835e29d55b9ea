"""Faults of the machine, made real: a database file that cannot be written, a disk that fills up (a small tmpfs),
and a write that fails with an I/O error (a file-size limit). Each is answered clearly, loses nothing, and the
server keeps serving reads and recovers by itself."""
import contextlib
import json
import os
import resource
import subprocess

import grpc
import pytest

import statusthing_pb2 as pb
from conftest import ADMIN_AUTH, Server, assert_one_line_failure, run_statusthing

ADD = "/statusthing.v1.ItemsService/AddItem"
LIST = "/statusthing.v1.ItemsService/ListItems"


def names(server):
    status, _, body = server.post(LIST, "{}")
    assert status == 200
    return [item["name"] for item in json.loads(body).get("items", [])]


@contextlib.contextmanager
def mounted(*args):
    """``mount ARGS`` for the test's duration (the tests run as root, as CI does); unmounted after."""
    target = args[-1]
    subprocess.run(["mount", *args], check=True, capture_output=True)
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", target], check=False, capture_output=True)


@pytest.mark.sqlite_only
def test_a_database_that_cannot_be_written_refuses_to_start(tmp_path):
    db = tmp_path / "st.db"
    Server(db, tmp_path / "first.log").stop()  # a real database, made by the server
    # The file read-only on its own (its folder stays writable), as when it belongs to another user.
    with mounted("--bind", "-o", "ro", str(db), str(db)):
        result = run_statusthing("--api-addr", "127.0.0.1:0", "--db", str(db))
        assert_one_line_failure(result, str(db), "cannot be written")
        # The commands that only read still work on it.
        assert run_statusthing("user", "list", "--db", str(db)).returncode == 0


@pytest.mark.sqlite_only
def test_a_full_disk_refuses_writes_keeps_reads_and_recovers(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    with mounted("-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)):
        server = Server(disk / "st.db", tmp_path / "server.log")
        try:
            assert server.post(ADD, '{"name": "before the disk filled"}')[0] == 200
            filler = disk / "filler"
            with open(filler, "wb", buffering=0) as file, contextlib.suppress(OSError):
                while True:
                    file.write(b"\0" * 65536)
            for attempt in range(3):
                status, headers, body = server.post(ADD, json.dumps({"name": f"refused {attempt}",
                                                                     "description": "x" * 1500}))
                assert status == 503 and json.loads(body)["code"] == "unavailable", body
                assert "disk is full" in json.loads(body)["message"] and headers["Retry-After"]
            with server.channel() as channel, pytest.raises(grpc.RpcError) as info:
                channel.unary_unary(ADD, request_serializer=pb.AddItemRequest.SerializeToString)(
                    pb.AddItemRequest(name="refused over grpc", description="x" * 1500),
                    metadata=(("authorization", ADMIN_AUTH),), timeout=10)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            assert names(server) == ["before the disk filled"]  # reads go on; nothing half-written
            conn = server.http()
            conn.request("GET", "/")
            assert conn.getresponse().status == 200
            filler.unlink()
            assert server.post(ADD, '{"name": "after space came back"}')[0] == 200
            assert names(server) == ["before the disk filled", "after space came back"]
        finally:
            server.stop()
        assert not server.wait_log(lambda line: line.get("event") == "internal_error", timeout=0.2)


@pytest.mark.sqlite_only
def test_an_io_error_is_unavailable_and_does_not_kill_the_server(tmp_path):
    server = Server(tmp_path / "st.db", tmp_path / "server.log")
    try:
        assert server.post(ADD, '{"name": "before"}')[0] == 200
        # No file of the process may grow any more: the next write that needs more room fails (EFBIG).
        limits = resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE)
        sizes = [os.path.getsize(path) for path in (server.db_path, server.db_path + "-wal")
                 if os.path.exists(path)]
        resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE, (max(sizes), limits[1]))
        for attempt in range(3):
            status, _, body = server.post(ADD, json.dumps({"name": f"refused {attempt}", "description": "y" * 1900}))
            assert status == 503 and json.loads(body)["code"] == "unavailable", body
        assert server.proc.poll() is None and names(server) == ["before"]
        resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE, limits)
        assert server.post(ADD, '{"name": "after"}')[0] == 200
        assert names(server) == ["before", "after"]
    finally:
        server.stop()
