#!/usr/bin/env python3
"""StatusThing on PostgreSQL beside SQLite (issue "Outgrow one machine"), in one run, on a throwaway PostgreSQL
cluster with fsync on (the tests' helper starts it):

  1. ListItems of 100 items from cache, wrk 2 threads x 32 connections: SQLite, then PostgreSQL;
  2. AddItem (Basic auth, audit row, every write durable) by wrk at 4 connections: SQLite, then PostgreSQL;
  3. the read of (1) by one wrk thread at 16 connections against one PostgreSQL server, then the same against
     each of two servers on the same database at once: their sum beside the one.

    python bench/postgres.py [PYTHON]      (DURATION=10s by default; needs wrk and Debian's postgresql)
"""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
sys.path.insert(0, HERE)
from conftest import PostgresCluster  # noqa: E402
from grow import AUTH, DURATION, Server  # noqa: E402


def wrk(port, path, connections, body="{}", unique=False, threads=2):
    env = {**os.environ, "BENCH_BODY": body, "BENCH_CASE": path, "BENCH_AUTH_HEADER": AUTH["Authorization"],
           **({"BENCH_UNIQUE": "1", "BENCH_RUNID": f"{port}-{time.time_ns()}"} if unique else {})}
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{DURATION}", "--timeout", "10s", "-s",
                          os.path.join(HERE, "bench.lua"), f"http://127.0.0.1:{port}{path}"], capture_output=True,
                         text=True, env=env).stdout
    fields = next(line for line in out.splitlines() if line.startswith("RESULT")).split()
    assert int(fields[5]) == 0 and int(fields[6]) == 0, out
    return float(fields[2]), float(fields[4])


LIST = "/statusthing.v1.ItemsService/ListItems"
ADD = "/statusthing.v1.ItemsService/AddItem"


def seed(port):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port)
    for n in range(100):
        conn.request("POST", ADD, body=json.dumps({"name": f"System {n}", "initialNoteText": "All good"}),
                     headers=AUTH)
        response = conn.getresponse()
        response.read()
        assert response.status == 200


def main():
    tmp = tempfile.mkdtemp()
    cluster = PostgresCluster(durable=True)
    print(f"# {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} cpus={os.cpu_count()} wrk -d{DURATION}; "
          "PostgreSQL 15 with fsync and synchronous_commit on, SQLite with --durability full")
    try:
        rows = []
        for label, db in (("SQLite", os.path.join(tmp, "st.db")), ("PostgreSQL", cluster.database("one"))):
            server = Server(db)
            try:
                seed(server.port)
                reads = wrk(server.port, LIST, 32)
                writes = wrk(server.port, ADD, 4, json.dumps({"name": "Item UNIQ"}), unique=True)
            finally:
                server.stop()
            rows.append((label, reads, writes))
        print(f"{'':<12}{'ListItems(100) req/s':>22}{'p50 ms':>8}{'AddItem/s':>12}{'p50 ms':>8}")
        for label, reads, writes in rows:
            print(f"{label:<12}{reads[0]:>22.0f}{reads[1]:>8.2f}{writes[0]:>12.0f}{writes[1]:>8.2f}")
        print(f"PostgreSQL/SQLite: reads {rows[1][1][0] / rows[0][1][0]:.2f}x, writes "
              f"{rows[1][2][0] / rows[0][2][0]:.2f}x")

        url = cluster.database("two")
        first, second = Server(url), Server(url)
        try:
            seed(first.port)
            alone = wrk(first.port, LIST, 16, threads=1)[0]  # (the same load as each half of the pair gets)
            both = {}

            def run(server, key):
                both[key] = wrk(server.port, LIST, 16, threads=1)[0]

            runners = [threading.Thread(target=run, args=(server, n)) for n, server in enumerate((first, second))]
            for runner in runners:
                runner.start()
            for runner in runners:
                runner.join()
        finally:
            first.stop()
            second.stop()
        total = sum(both.values())
        print(f"ListItems(100) on PostgreSQL, 16 connections a server: one server {alone:.0f} req/s; two servers "
              f"at once {both[0]:.0f} + "
              f"{both[1]:.0f} = {total:.0f} req/s ({total / alone:.2f}x)")
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
