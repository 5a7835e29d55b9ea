#!/usr/bin/env python3
"""Writes while notifications pile up (issue "Tell people"), in one run: AddItem and UpdateItem throughput by wrk
(2 threads, 4 connections) on a fresh server with no webhook, and on one with 5 webhooks pointing at a receiver
that accepts connections and never answers (every delivery waits out --webhook-timeout, the worst receiver
there is), side by side, alternating, ROUNDS times; medians reported. Every write of the second server writes 5
deliveries' worth of events to the outbox, and its worker keeps retrying into the void while writes go on.

    python bench/notify.py [PYTHON]      (DURATION=10s and ROUNDS=3 by default; needs wrk)
"""
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from grow import AUTH, DURATION, Server  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "3"))
ITEMS = 200  # updated in turn by the UpdateItem run


def silent_receiver():
    """A TCP port that accepts every connection and never answers; returns its URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    held = []

    def accept():
        while True:
            held.append(listener.accept()[0])  # (kept open, never read from or answered)

    threading.Thread(target=accept, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/hook"


def wrk(port, case, env, path="/"):
    out = subprocess.run(["wrk", "-t2", "-c4", f"-d{DURATION}", "--timeout", "10s", "-s", os.path.join(HERE, env.pop(
        "script")), f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True,
        env={**os.environ, "BENCH_CASE": case, "BENCH_AUTH_HEADER": AUTH["Authorization"], "BENCH_DIR": HERE,
             **env}).stdout
    fields = next(line for line in out.splitlines() if line.startswith("RESULT")).split()
    assert int(fields[5]) == 0 and int(fields[6]) == 0, out  # no errors, no socket errors
    return float(fields[2]), float(fields[4])


def one_run(tmp, webhooks, receiver, label):
    db = os.path.join(tmp, f"{label}.db")
    server = Server(db)
    try:
        for _ in range(webhooks):
            server.call("/statusthing.v1.WebhookService/AddWebhook", {"url": receiver})
        statuses = {s["name"]: s["id"] for s in json.loads(
            server.call("/statusthing.v1.StatusService/ListStatus", {})[0])["statuses"]}
        ids = [json.loads(server.call("/statusthing.v1.ItemsService/AddItem", {
            "name": f"Updated {n}", "initialStatusId": statuses["UP"]})[0])["item"]["id"] for n in range(ITEMS)]
        add = wrk(server.port, f"AddItem/{label}", {"script": "bench.lua", "BENCH_BODY": json.dumps(
            {"name": "Item UNIQ", "initialStatusId": statuses["UP"]}), "BENCH_UNIQUE": "1", "BENCH_RUNID": label},
            "/statusthing.v1.ItemsService/AddItem")
        update = wrk(server.port, f"UpdateItem/{label}", {"script": "notify.lua", "BENCH_ITEMS": ",".join(ids),
                                                          "BENCH_STATUSES": f"{statuses['DOWN']},{statuses['UP']}"})
        with sqlite3.connect(db) as conn:
            events = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            waiting = conn.execute("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'").fetchone()[0]
    finally:
        server.stop()
    return add, update, events, waiting


def main():
    tmp = tempfile.mkdtemp()
    receiver = silent_receiver()
    print(f"# {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} cpus={os.cpu_count()} wrk -t2 -c4 -d{DURATION}, "
          f"{ROUNDS} rounds, medians; durability full (every write fsynced)")
    results = {"none": [], "five": []}
    for round_number in range(ROUNDS):
        for label, webhooks in (("none", 0), ("five", 5)):
            results[label].append(one_run(tmp, webhooks, receiver, f"{label}{round_number}"))
    print(f"{'case':<36}{'no webhook':>14}{'5 silent webhooks':>20}{'ratio':>8}")
    for index, name in ((0, "AddItem"), (1, "UpdateItem (status change)")):
        none = statistics.median(run[index][0] for run in results["none"])
        five = statistics.median(run[index][0] for run in results["five"])
        p50_none = statistics.median(run[index][1] for run in results["none"])
        p50_five = statistics.median(run[index][1] for run in results["five"])
        print(f"{name + ' req/s':<36}{none:>14.0f}{five:>20.0f}{five / none:>8.2f}")
        print(f"{name + ' p50 ms':<36}{p50_none:>14.2f}{p50_five:>20.2f}")
    last = results["five"][-1]
    print(f"# last run with webhooks: {last[2]} events written; {last[3]} deliveries still pending when it stopped "
          "(the receiver never answers)")


if __name__ == "__main__":
    main()
