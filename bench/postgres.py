#!/usr/bin/env python3
"""StatusThing on PostgreSQL beside SQLite (issue "Outgrow one machine"), in one run, on a throwaway PostgreSQL
cluster with fsync on (the tests' helper starts it):

  1. ListItems of 100 items from cache, wrk 2 threads x 32 connections: SQLite, then PostgreSQL;
  2. AddItem (Basic auth, audit row, every write durable) by wrk at 4 connections: SQLite and PostgreSQL in
     ROUNDS alternating rounds (3 by default), the median of each;
  3. the read of (1) by one wrk thread at 16 connections against one PostgreSQL server, then the same against
     each of two servers on the same database at once: their sum beside the one.

    python bench/postgres.py [PYTHON]      (DURATION=10s, ROUNDS=3 by default; needs wrk and Debian's postgresql)
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


ROUNDS = int(os.environ.get("ROUNDS", "3"))
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
        servers = {"SQLite": Server(os.path.join(tmp, "st.db")), "PostgreSQL": Server(cluster.database("one"))}
        try:
            reads, writes = {}, {label: [] for label in servers}
            for label, server in servers.items():
                seed(server.port)
                reads[label] = wrk(server.port, LIST, 32)
            for _ in range(ROUNDS):  # (alternating rounds, medians: runs on this VM vary by ±10 %)
                for label, server in servers.items():
                    writes[label].append(wrk(server.port, ADD, 4, json.dumps({"name": "Item UNIQ"}), unique=True))
        finally:
            for server in servers.values():
                server.stop()
        print(f"{'':<12}{'ListItems(100) req/s':>22}{'p50 ms':>8}{'AddItem/s (median)':>20}{'p50 ms':>8}  rounds")
        median = {label: sorted(runs)[len(runs) // 2] for label, runs in writes.items()}
        for label in servers:
            print(f"{label:<12}{reads[label][0]:>22.0f}{reads[label][1]:>8.2f}{median[label][0]:>20.0f}"
                  f"{median[label][1]:>8.2f}  {', '.join(f'{rate:.0f}' for rate, _ in writes[label])}")
        print(f"PostgreSQL/SQLite: reads {reads['PostgreSQL'][0] / reads['SQLite'][0]:.2f}x, writes "
              f"{median['PostgreSQL'][0] / median['SQLite'][0]:.2f}x")

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
