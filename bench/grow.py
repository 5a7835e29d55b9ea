#!/usr/bin/env python3
"""Speed while the data grows and while it changes (issue "Stay fast while the data grows"), in one run:

  1. 10,000 items x 3 notes: the first answer after a write (ListItems JSON and binary, the front page);
     a read mix (ListItems, GetItem, the front page, an item page) at 16 connections for DURATION, without
     writes and then with 5 UpdateItem a second (their latencies too); peak RSS, then under 32 connections.
  2. 1,000 items: the read mix without writes, then with 20 UpdateItem a second.
  3. One item with 100,000 notes: GetItem, ListNotes and its page, first answer after a write to it; DeleteItem.

Items and notes are loaded straight into the database (the server's own migrations and triggers apply; loading
10,000 items through the API would take a minute), then the server is started on it.

    python bench/grow.py [PYTHON]      (DURATION=10s by default; needs wrk)
"""
import base64
import http.client
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.dirname(os.path.abspath(__file__))
AUTH = {"Authorization": "Basic " + base64.b64encode(b"admin:password").decode(), "Content-Type": "application/json"}
DURATION = os.environ.get("DURATION", "10s")
PYTHON = sys.argv[1] if len(sys.argv) > 1 else sys.executable


class Server:
    def __init__(self, db):
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
        self.proc = subprocess.Popen([PYTHON, os.path.join(ROOT, "statusthing.py"), "--api-addr", "127.0.0.1:0",
                                      "--db", db], stdout=self.log)
        while True:
            with open(self.log.name) as log:
                start = next((json.loads(line) for line in log if '"start"' in line), None)
            if start:
                break
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited ({self.proc.returncode}) before it started: see above")
            time.sleep(0.05)
        self.port = int(start["address"].rsplit(":", 1)[1])
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def call(self, path, body, method="POST", headers=AUTH):
        started = time.perf_counter()
        self.conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        assert response.status == 200, (path, response.status, data[:200])
        return data, (time.perf_counter() - started) * 1000

    def rpc(self, rpc, body, headers=AUTH):
        service = {"Item": "ItemsService", "Items": "ItemsService", "Note": "NotesService", "Notes": "NotesService"}[
            rpc.replace("Get", "").replace("List", "").replace("Update", "").replace("Delete", "")]
        return self.call(f"/statusthing.v1.{service}/{rpc}", body, headers=headers)

    def peak_rss_mb(self):
        with open(f"/proc/{self.proc.pid}/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def load(db, items, notes_per_item):
    """A fresh database (migrated by a short start of the server), then the items and notes, in bulk."""
    Server(db).stop()
    with sqlite3.connect(db) as conn:
        status = conn.execute("SELECT id FROM statuses WHERE name = 'UP'").fetchone()[0]
        conn.executemany("INSERT INTO items (id, name, description, status_id, created_ns, updated_ns) "
                         "VALUES (?,?,?,?,?,?)", [(f"01BENCH{n:019d}", f"System {n}", f"The system number {n}",
                                                   status, n + 1, n + 1) for n in range(items)])
        conn.executemany("INSERT INTO notes (id, item_id, text, created_ns, updated_ns) VALUES (?,?,?,?,?)",
                         [(f"01NOTE{n:09d}{k:011d}", f"01BENCH{n:019d}", f"Update {k} on system {n}: all good",
                           n * 10 + k + 1, n * 10 + k + 1) for n in range(items) for k in range(notes_per_item)])
    return [f"01BENCH{n:019d}" for n in range(items)]


def wrk(port, mix, connections, case):
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{DURATION}", "--timeout", "10s", "-s",
                          os.path.join(HERE, "mix.lua"), f"http://127.0.0.1:{port}/"], capture_output=True, text=True,
                         env={**os.environ, "BENCH_MIX": "|".join(mix), "BENCH_CASE": case}).stdout
    fields = next(line for line in out.splitlines() if line.startswith("RESULT")).split()
    return {"req/s": float(fields[2]), "p50": float(fields[3]), "p99": float(fields[4]), "non2xx": int(fields[5]),
            "socket_errors": int(fields[6])}


def writer(server_port, item_ids, per_second, stop, latencies):
    """UpdateItem at a steady rate on its own connection, recording each write's latency."""
    conn = http.client.HTTPConnection("127.0.0.1", server_port, timeout=60)
    n, interval, next_at = 0, 1 / per_second, time.perf_counter()
    while not stop.is_set():
        next_at += interval
        started = time.perf_counter()
        conn.request("POST", "/statusthing.v1.ItemsService/UpdateItem", headers=AUTH, body=json.dumps(
            {"itemId": item_ids[n % len(item_ids)], "description": f"changed {n}"}))
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        latencies.append((time.perf_counter() - started) * 1000)
        n += 1
        time.sleep(max(0.0, next_at - time.perf_counter()))


def read_mix(item_ids):
    return ["POST /statusthing.v1.ItemsService/ListItems {}",
            f'POST /statusthing.v1.ItemsService/GetItem {{"itemId":"{item_ids[1]}"}}',
            "GET /", f"GET /items/{item_ids[2]}"]


def with_and_without_writes(server, item_ids, per_second, connections=16):
    quiet = wrk(server.port, read_mix(item_ids), connections, "mix")
    stop, latencies = threading.Event(), []
    thread = threading.Thread(target=writer, args=(server.port, item_ids[100:], per_second, stop, latencies))
    thread.start()
    busy = wrk(server.port, read_mix(item_ids), connections, "mix+writes")
    stop.set()
    thread.join()
    latencies.sort()
    return quiet, busy, latencies


def first_answers_after_a_write(server, item_ids, rounds=7):
    """Median and worst time of the first ListItems (JSON, binary) and front page after one UpdateItem."""
    times = {"ListItems JSON": [], "ListItems binary": [], "front page /": []}
    binary = {"Content-Type": "application/proto"}
    for n in range(rounds):
        server.rpc("UpdateItem", {"itemId": item_ids[n * 37 % len(item_ids)], "description": f"write {n}"})
        times["ListItems JSON"].append(server.call("/statusthing.v1.ItemsService/ListItems", {})[1])
        server.conn.request("POST", "/statusthing.v1.ItemsService/ListItems", body=b"", headers=binary)
        started = time.perf_counter()
        server.conn.getresponse().read()
        times["ListItems binary"].append((time.perf_counter() - started) * 1000)
        times["front page /"].append(server.call("/", None, "GET", {})[1])
    return {name: (statistics.median(values), max(values)) for name, values in times.items()}


def main():
    tmp = tempfile.mkdtemp()
    print(f"# {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} cpus={os.cpu_count()} wrk -t2 -d{DURATION}")

    print("\n## 10,000 items x 3 notes")
    ids = load(os.path.join(tmp, "big.db"), 10_000, 3)
    server = Server(os.path.join(tmp, "big.db"))
    started = time.perf_counter()
    server.call("/statusthing.v1.ItemsService/ListItems", {})
    server.call("/", None, "GET", {})
    print(f"cold start (every part encoded once): {(time.perf_counter() - started) * 1000:.0f} ms for ListItems + /")
    for name, (median, worst) in first_answers_after_a_write(server, ids).items():
        print(f"first {name} after a write: median {median:.1f} ms, worst {worst:.1f} ms")
    quiet, busy, latencies = with_and_without_writes(server, ids, 5)
    print(f"read mix, 16 conns, no writes:   {quiet}")
    print(f"read mix, 16 conns, 5 writes/s:  {busy}  -> {busy['req/s'] / quiet['req/s']:.0%} of the throughput")
    print(f"  UpdateItem during it: {len(latencies)} writes, p50 {latencies[len(latencies) // 2]:.1f} ms, "
          f"p99 {latencies[int(len(latencies) * 0.99)]:.1f} ms")
    print(f"peak RSS so far: {server.peak_rss_mb():.0f} MB")
    print(f"read mix, 32 conns: {wrk(server.port, read_mix(ids), 32, 'mix32')}; "
          f"peak RSS {server.peak_rss_mb():.0f} MB")
    server.stop()

    print("\n## 1,000 items x 3 notes")
    ids = load(os.path.join(tmp, "mid.db"), 1000, 3)
    server = Server(os.path.join(tmp, "mid.db"))
    quiet, busy, latencies = with_and_without_writes(server, ids, 20)
    print(f"read mix, 16 conns, no writes:   {quiet}")
    print(f"read mix, 16 conns, 20 writes/s: {busy}  -> {busy['req/s'] / quiet['req/s']:.0%} of the throughput")
    print(f"  UpdateItem during it: {len(latencies)} writes, p50 {latencies[len(latencies) // 2]:.1f} ms, "
          f"p99 {latencies[int(len(latencies) * 0.99)]:.1f} ms")
    server.stop()

    print("\n## one item with 100,000 notes")
    db = os.path.join(tmp, "chatty.db")
    ids = load(db, 10, 0)
    with sqlite3.connect(db) as conn:
        conn.executemany("INSERT INTO notes (id, item_id, text, created_ns, updated_ns) VALUES (?,?,?,?,?)",
                         [(f"01CHATTY{k:018d}", ids[0], f"Update {k}: still looking", k + 1, k + 1)
                          for k in range(100_000)])
    server = Server(db)
    results = {"GetItem": [], "ListNotes": [], "its page": []}
    for n in range(5):
        server.rpc("UpdateItem", {"itemId": ids[0], "description": f"write {n}"})  # a miss for all three
        results["GetItem"].append(server.rpc("GetItem", {"itemId": ids[0]})[1])
        results["ListNotes"].append(server.rpc("ListNotes", {"itemId": ids[0]})[1])
        results["its page"].append(server.call(f"/items/{ids[0]}", None, "GET", {})[1])
    for name, values in results.items():
        print(f"first {name} after a write: median {statistics.median(values):.1f} ms, worst {max(values):.1f} ms")
    answer, ms = server.rpc("DeleteItem", {"itemId": ids[0]})
    print(f"DeleteItem of the item with 100,000 notes: {ms:.1f} ms")
    server.stop()


if __name__ == "__main__":
    main()
