#!/usr/bin/env python3
"""Login bursts against a fresh server: 50 concurrent wrong passwords from one address (how many were checked,
how much the peak RSS grew), then 50 concurrent valid first logins (all answered? peak RSS growth).

    python bench/login_burst.py [PYTHON]
"""
import base64
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADD = "/statusthing.v1.ItemsService/AddItem"


def peak_rss_kb(pid):
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


def burst(port, source, password, count=50):
    auth = "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()
    barrier, statuses = threading.Barrier(count), []

    def one(n):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
        barrier.wait()
        conn.request("POST", ADD, body=json.dumps({"name": f"burst-{source}-{n}"}),
                     headers={"Content-Type": "application/json", "Authorization": auth})
        statuses.append(conn.getresponse().status)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(count)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses, time.perf_counter() - started


def main():
    python = sys.argv[1] if len(sys.argv) > 1 else sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        log = open(os.path.join(tmp, "log"), "w+")
        server = subprocess.Popen([python, os.path.join(ROOT, "statusthing.py"), "--api-addr", "127.0.0.1:0",
                                   "--db", os.path.join(tmp, "st.db")], stdout=log)
        while '"start"' not in open(log.name).read():
            time.sleep(0.05)
        port = int(json.loads(open(log.name).readline())["address"].rsplit(":", 1)[1])
        try:
            before = peak_rss_kb(server.pid)
            statuses, seconds = burst(port, "127.0.0.20", "a wrong guess")
            print(f"50 wrong passwords at once: {statuses.count(401)} checked (401), {statuses.count(429)} refused "
                  f"(429), in {seconds:.2f} s; peak RSS {before / 1024:.0f} -> {peak_rss_kb(server.pid) / 1024:.0f} MB")
            before = peak_rss_kb(server.pid)
            statuses, seconds = burst(port, "127.0.0.21", "password")
            print(f"50 valid first logins at once: {statuses.count(200)} answered 200, in {seconds:.2f} s; "
                  f"peak RSS {before / 1024:.0f} -> {peak_rss_kb(server.pid) / 1024:.0f} MB")
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
