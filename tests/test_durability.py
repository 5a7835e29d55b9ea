"""SIGKILL in the middle of a write load, five rounds on one database: every write the server acknowledged is
there after a restart, every item that is there came with its audit row (no partial writes), and SQLite's
integrity check passes."""
import http.client
import json
import signal
import threading

import grpc

import statusthing_pb2 as pb
from conftest import ADMIN_AUTH, BACKEND, Server, database

ADD = "/statusthing.v1.ItemsService/AddItem"
ACKNOWLEDGED_BEFORE_THE_KILL = 150


def write_until_it_dies(server, name_prefix, acknowledged, enough):
    """AddItem over HTTP keep-alive (and gRPC) from six threads until the server is gone; ``acknowledged`` gets the
    id of every write answered 200 / OK; ``enough`` is set once this round has ACKNOWLEDGED_BEFORE_THE_KILL."""
    lock = threading.Lock()
    target = len(acknowledged) + ACKNOWLEDGED_BEFORE_THE_KILL

    def acknowledge(item_id):
        with lock:
            acknowledged.append(item_id)
            if len(acknowledged) >= target:
                enough.set()

    def over_http(n):
        conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
        for k in range(100_000):
            try:
                body = json.dumps({"name": f"{name_prefix}-h{n}-{k}", "initial_note_text": "n"})
                conn.request("POST", ADD, body=body,
                             headers={"Content-Type": "application/json", "Authorization": ADMIN_AUTH})
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException):
                return
            if response.status == 200:
                acknowledge(json.loads(body)["item"]["id"])

    def over_grpc(n):
        with grpc.insecure_channel(server.address) as channel:
            add = channel.unary_unary(ADD, request_serializer=pb.AddItemRequest.SerializeToString,
                                      response_deserializer=pb.AddItemResponse.FromString)
            for k in range(100_000):
                try:
                    item = add(pb.AddItemRequest(name=f"{name_prefix}-g{n}-{k}"), timeout=10,
                               metadata=(("authorization", ADMIN_AUTH),)).item
                except grpc.RpcError:
                    return
                acknowledge(item.id)

    threads = [threading.Thread(target=over_http, args=(n,)) for n in range(4)]
    threads += [threading.Thread(target=over_grpc, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    return threads


def test_kill_9_mid_load_loses_no_acknowledged_write(tmp_path):
    """On PostgreSQL too (--backend postgres): a StatusThing server killed mid-burst loses nothing it acknowledged
    and writes nothing twice."""
    db = tmp_path / "st.db"
    acknowledged = []
    for round_ in range(5):
        server = Server(db, tmp_path / f"server{round_}.log")
        enough = threading.Event()
        threads = write_until_it_dies(server, f"r{round_}", acknowledged, enough)
        assert enough.wait(60), "the writers never got going"
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)
        for thread in threads:
            thread.join(30)
    # Every acknowledged write is there, and every item there came with its audit row.
    Server(db, tmp_path / "last.log").stop()  # a clean start and stop: recovery runs, the WAL is checkpointed
    with database(db) as conn:
        if BACKEND["name"] == "sqlite":
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        names = [row[0] for row in conn.execute("SELECT name FROM items")]
        stored = {row[0] for row in conn.execute("SELECT id FROM items")}
        audited = {row[0] for row in conn.execute("SELECT target_id FROM audit_log WHERE rpc = 'AddItem'")}
        notes = conn.execute("SELECT COUNT(*) FROM notes").fetchone()[0]
    lost = set(acknowledged) - stored
    assert not lost, f"{len(lost)} of {len(acknowledged)} acknowledged writes lost"
    assert stored == audited  # no item without its audit row, no audit row without its item
    assert len(names) == len(set(names))  # none twice (a retried write would have been refused, not doubled)
    assert len(acknowledged) >= 5 * ACKNOWLEDGED_BEFORE_THE_KILL and notes > 0
