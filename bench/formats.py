#!/usr/bin/env python3
"""Speed of the outside formats (issue "Speak the formats"), in one run, on the history bench's data: 100 items x
90 days of history at 20 status changes per item per day, about 90,000 incidents.

  1. /api/v2/summary.json and /badge.svg from cache by wrk at 32 connections, each side by side with
     bench/ceiling_server.py serving the very same bytes;
  2. /metrics: how long it takes to render (it is never kept: its counters move with every request), median and
     worst of 20, and right after a write.

    python bench/formats.py [PYTHON]      (DURATION=10s by default; needs wrk)
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from grow import Server  # noqa: E402
from history import free_port, load, wrk_get  # noqa: E402


def side_by_side(server, path, tmp):
    body = server.call(path, None, "GET", {})[0]
    file = os.path.join(tmp, "body")
    with open(file, "wb") as out:
        out.write(body)
    port = free_port()
    ceiling = subprocess.Popen([sys.executable, os.path.join(HERE, "ceiling_server.py"), str(port), file])
    time.sleep(0.5)
    ours = wrk_get(server.port, path)
    bare = wrk_get(port, path)
    ceiling.terminate()
    ceiling.wait()
    print(f"{path} ({len(body)} bytes)")
    print(f"  {'statusthing (kept answer)':28}{ours[0]:>9.0f} req/s  p50 {ours[1]:.2f} ms  p99 {ours[2]:.2f} ms  "
          f"errors {ours[3]}")
    print(f"  {'ceiling, the same bytes':28}{bare[0]:>9.0f} req/s  p50 {bare[1]:.2f} ms  p99 {bare[2]:.2f} ms  "
          f"errors {bare[3]}")
    print(f"  ratio: {ours[0] / bare[0]:.2f} x the ceiling   (target >= 0.70)")


def main():
    tmp = tempfile.mkdtemp()
    db = os.path.join(tmp, "formats.db")
    print(f"# {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} cpus={os.cpu_count()} "
          f"wrk -t2 -c32 -d{os.environ.get('DURATION', '10s')}")
    ids, changes = load(db)
    server = Server(db)
    print(f"{len(ids)} items, {changes} status changes\n")
    for path in ("/api/v2/summary.json", "/badge.svg"):
        side_by_side(server, path, tmp)
    times = [server.call("/metrics", None, "GET", {})[1] for _ in range(20)]
    print(f"\n/metrics with {len(ids)} items: median {statistics.median(times):.1f} ms, worst {max(times):.1f} ms "
          f"(target <= 10 ms)")
    after = []
    for n in range(5):
        server.rpc("UpdateItem", {"itemId": ids[1 + n], "description": f"write {n}"})
        after.append(server.call("/metrics", None, "GET", {})[1])
    print(f"/metrics right after a write: median {statistics.median(after):.1f} ms, worst {max(after):.1f} ms")
    server.stop()


if __name__ == "__main__":
    main()
