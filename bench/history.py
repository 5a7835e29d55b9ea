#!/usr/bin/env python3
"""Speed with history (issue "History"), in one run: 100 items x 90 days of history at 20 status changes per item
per day (180,000 changes, some 90,000 incidents), one of them with 100,000 notes.

  1. the front page: its first render after a write, and served from cache by wrk at 32 connections, side by side
     with bench/ceiling_server.py serving the very same bytes;
  2. GetUptime for the 100 items x 90 days, uncached (the first answer after a write), JSON and binary;
  3. the page of the item with 100,000 notes: its size and its first render after a write.

The history is written straight into the database through the server's own store and incident code (writing
180,000 changes through the API would take minutes); the server tallies the uptime days at its start, as it does
after a change of --timezone.

    python bench/history.py [PYTHON]      (DURATION=10s by default; needs wrk)
"""
import datetime
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
import statusthing  # noqa: E402
from grow import AUTH, DURATION, Server  # noqa: E402

ITEMS, DAYS, CHANGES_A_DAY, NOTES = 100, 90, 20, 100_000
BINARY = {**AUTH, "Content-Type": "application/proto"}


def load(db):
    """Items, their history and notes, through the store's own queries and the incident rules."""
    Server(db).stop()  # migrates a fresh database
    store = statusthing.open_store(db)
    today = datetime.datetime.now(datetime.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    start_ns = int((today - datetime.timedelta(days=DAYS - 1)).timestamp()) * 10 ** 9
    now_ns = time.time_ns()
    with store.write() as tx:
        statuses = {status.name: status for status in tx.list_statuses()}
        up, troubles = statuses["UP"], [statuses["WARNING"], statuses["WARNING"], statuses["DOWN"]]
        ids = [f"01HIST{n:020d}" for n in range(ITEMS)]
        for n, item_id in enumerate(ids):
            tx.insert_item(item_id, f"System {n}", f"The system number {n}", up.id, n, f"Group {n // 10}"
                           if n >= 40 else "", start_ns)
        change = 0
        for n, item_id in enumerate(ids):
            old = None
            for day in range(DAYS):
                for k in range(CHANGES_A_DAY):  # ten short troubles a day, two to five minutes each
                    at = start_ns + day * 86_400 * 10 ** 9 + (k // 2) * 2 * 3600 * 10 ** 9 + \
                        (k % 2) * (2 + (n + day + k) % 4) * 60 * 10 ** 9 + n * 10 ** 6
                    if at >= now_ns:
                        break
                    new = troubles[(n + day + k // 2) % 3] if k % 2 == 0 else up
                    if day == 0 and k == 0:
                        new = up
                    change += 1
                    recorded = tx.record_status_change(f"01CHG{change:021d}", item_id, at, old, new)
                    statusthing.follow_incident(tx, item_id, recorded, False)
                    old = new
            tx.update_item(item_id, {"status_id": old.id}, start_ns + n)
        tx.set_setting("uptime_time_zone", "")  # the server tallies every day at its start
        for k in range(NOTES):
            tx.insert_note(f"01NOTE{k:020d}", ids[0], f"Update {k}: still looking", start_ns + k * 10 ** 6)
        for item_id in ids[1:]:
            tx.insert_note(f"01NOTE{item_id}", item_id, "All good again.", start_ns)
    store.close()
    return ids, change


def timed(server, path, body=None, method="POST", headers=AUTH):
    return server.call(path, body, method, headers)


def after_writes(server, ids, measure, rounds=7):
    """Median and worst of ``measure()`` (ms) right after a status change (a miss of every kept answer)."""
    statuses = {s["name"]: s["id"] for s in __import__("json").loads(server.call(
        "/statusthing.v1.StatusService/ListStatus", {})[0])["statuses"]}
    times = []
    for n in range(rounds):
        server.rpc("UpdateItem", {"itemId": ids[1 + n % 5], "statusId": statuses["WARNING" if n % 2 else "UP"]})
        times.append(measure())
    return statistics.median(times), max(times)


def wrk_get(port, path):
    out = subprocess.run(["wrk", "-t2", "-c32", f"-d{DURATION}", "--timeout", "10s", "-s",
                          os.path.join(HERE, "mix.lua"), f"http://127.0.0.1:{port}/"], capture_output=True, text=True,
                         env={**os.environ, "BENCH_MIX": f"GET {path}", "BENCH_CASE": path}).stdout
    fields = next(line for line in out.splitlines() if line.startswith("RESULT")).split()
    return float(fields[2]), float(fields[3]), float(fields[4]), int(fields[5])


def main():
    tmp = tempfile.mkdtemp()
    db = os.path.join(tmp, "history.db")
    print(f"# {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} cpus={os.cpu_count()} wrk -t2 -c32 -d{DURATION}")
    started = time.perf_counter()
    ids, changes = load(db)
    print(f"loaded {ITEMS} items, {changes} status changes, {NOTES} notes in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    server = Server(db)
    print(f"server start, tallying every day of every item: {time.perf_counter() - started:.1f} s")
    with __import__("sqlite3").connect(db) as conn:
        print(f"incidents: {conn.execute('SELECT COUNT(*) FROM incidents').fetchone()[0]}")

    print("\n## the front page /")
    page, ms = timed(server, "/", None, "GET", {})
    print(f"cold first render (every card): {ms:.1f} ms, {len(page)} bytes")
    median, worst = after_writes(server, ids, lambda: timed(server, "/", None, "GET", {})[1])
    print(f"first render after a write: median {median:.1f} ms, worst {worst:.1f} ms   (target <= 50 ms)")
    page = timed(server, "/", None, "GET", {})[0]
    with open(os.path.join(tmp, "page.html"), "wb") as file:
        file.write(page)
    ceiling_port = free_port()
    ceiling = subprocess.Popen([sys.executable, os.path.join(HERE, "ceiling_server.py"), str(ceiling_port),
                                os.path.join(tmp, "page.html")])
    time.sleep(0.5)
    ours = wrk_get(server.port, "/")
    bare = wrk_get(ceiling_port, "/")
    ceiling.terminate()
    print(f"{'':28}{'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    print(f"{'statusthing GET / (cached)':28}{ours[0]:>9.0f} {ours[1]:>8.2f} {ours[2]:>8.2f} {ours[3]:>7}")
    print(f"{'ceiling, the same bytes':28}{bare[0]:>9.0f} {bare[1]:>8.2f} {bare[2]:>8.2f} {bare[3]:>7}")
    print(f"ratio: {ours[0] / bare[0]:.2f} x the ceiling   (target >= 0.70)")

    print("\n## GetUptime, 100 items x 90 days, uncached (the first answer after a write)")
    path = "/statusthing.v1.HistoryService/GetUptime"

    def binary():
        server.conn.request("POST", path, body=b"", headers=BINARY)
        started = time.perf_counter()
        response = server.conn.getresponse()
        response.read()
        assert response.status == 200
        return (time.perf_counter() - started) * 1000
    answer, cold_json = timed(server, path, {})
    print(f"answer: {len(answer)} bytes of JSON")
    print(f"cold, nothing kept yet (as after a restart): JSON {cold_json:.1f} ms, binary {binary():.1f} ms")
    median, worst = after_writes(server, ids, lambda: timed(server, path, {})[1])
    print(f"JSON:   median {median:.1f} ms, worst {worst:.1f} ms   (target <= 20 ms)")
    median, worst = after_writes(server, ids, binary)
    print(f"binary: median {median:.1f} ms, worst {worst:.1f} ms   (target <= 20 ms)")

    print(f"\n## the page of the item with {NOTES} notes")
    page = timed(server, f"/items/{ids[0]}", None, "GET", {})[0]
    print(f"size: {len(page)} bytes   (target < 200 KB)")
    times = []
    for n in range(7):
        server.rpc("UpdateItem", {"itemId": ids[0], "description": f"write {n}"})
        times.append(timed(server, f"/items/{ids[0]}", None, "GET", {})[1])
    print(f"first render after a write to it: median {statistics.median(times):.1f} ms, worst {max(times):.1f} ms"
          "   (target <= 50 ms)")
    print(f"peak RSS: {server.peak_rss_mb():.0f} MB")
    server.stop()


def free_port():
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    main()
