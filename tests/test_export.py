"""The public site as static files (issue 11): `statusthing export DIR` and --export-dir, served by a plain
`python -m http.server` and browsed in Chromium with every link followed."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse

import feedparser
import pytest

from conftest import Clock, Server, assert_one_line_failure, json_rpc, run_statusthing, status_id


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """A server with a month and a half of history: a group, an incident in each month, one going on."""
    folder = tmp_path_factory.mktemp("export")
    clock = Clock(folder / "now")
    clock.set("2026-10-20T10:00:00Z")
    server = Server(folder / "st.db", folder / "server.log", "--title", "Export test",
                    env={"STATUSTHING_CLOCK": clock.path})
    up, down = status_id(server, "UP"), status_id(server, "DOWN")
    ids = [json_rpc(server, "ItemsService/AddItem", {"name": name, "group": group, "initialStatusId": up})["item"]["id"]
           for name, group in (("API", "Platform"), ("Web", "Platform"), ("Mail", ""))]
    for when, item, status, note in (("2026-10-25T09:00:00Z", ids[2], down, "Mail is down."),
                                     ("2026-10-25T10:00:00Z", ids[2], up, "Back."),
                                     ("2026-11-28T09:00:00Z", ids[0], down, "API errors, see https://example.com/x"),
                                     ("2026-11-28T09:30:00Z", ids[0], up, "Fixed.")):
        clock.set(when)
        json_rpc(server, "ItemsService/UpdateItem", {"itemId": item, "statusId": status, "noteText": note})
    clock.set("2026-11-30T08:00:00Z")
    json_rpc(server, "ItemsService/UpdateItem", {"itemId": ids[1], "statusId": down, "noteText": "Web is down."})
    server.folder, server.clock, server.ids = folder, clock, ids
    yield server
    server.stop()


@pytest.fixture
def file_server(tmp_path):
    """``serve(folder)`` starts `python -m http.server` on a free port of its own; returns its base URL."""
    started = []

    def serve(folder, port):
        process = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                                    "--directory", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(process)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return f"http://127.0.0.1:{port}"
            time.sleep(0.05)
        raise RuntimeError("http.server did not start")
    yield serve
    for process in started:
        process.terminate()
        process.wait()


def export(server, folder, public_url, *extra):
    return run_statusthing("--public-url", public_url, "--title", "Export test", *extra, "export", str(folder),
                           "--db", server.db_path, env={"STATUSTHING_CLOCK": server.clock.path})


def test_the_export_browses_with_every_link_working(history, tmp_path, file_server, browser):
    port = free_port()
    result = export(history, tmp_path / "site", f"http://127.0.0.1:{port}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("exported ") and str(tmp_path / "site") in result.stdout
    assert os.path.islink(tmp_path / "site")
    base = file_server(tmp_path / "site", port)
    context = browser.new_context()
    page = context.new_page()
    seen, queue, failures = set(), [f"{base}/index.html"], []
    while queue:
        url = queue.pop()
        address = url.split("#")[0]
        if address in seen:
            continue
        seen.add(address)
        if address.endswith(".html"):
            response = page.goto(address)
            if response.status != 200:
                failures.append((address, response.status))
                continue
            assert page.locator("h1").count() == 1, address
            links = page.evaluate("Array.from(document.querySelectorAll('a[href], link[href]')).map(a => a.href)")
            for link in links:
                if link.startswith(base):
                    queue.append(link)
                else:  # only what a note says leaves the site
                    assert link.startswith(("https://example.com/", "data:")), (address, link)
        else:
            response = page.request.get(address)
            if response.status != 200:
                failures.append((address, response.status))
    assert failures == []
    visited = {urllib.parse.urlsplit(url).path for url in seen}
    assert {"/index.html", "/history/index.html", "/history/2026-10/index.html", "/history/2026-11/index.html",
            "/history.atom", "/history.rss"} <= visited
    assert sum(path.startswith("/incidents/") for path in visited) == 3
    assert sum(path.startswith("/items/") and path.endswith("/index.html") for path in visited) == 3
    # A bar's day leads to that month's incidents, at that day.
    page.goto(f"{base}/index.html")
    day = page.locator(f'#item-{history.ids[2]} ol.bar a[aria-label^="25 Oct 2026"]')
    assert day.get_attribute("aria-label") == "25 Oct 2026: 1 h major outage; 1 incident"
    day.click()
    assert page.url.endswith("/history/2026-10/index.html#day-2026-10-25")
    assert "Mail: major outage" in page.locator("#day-2026-10-25").inner_text()
    # The formats are there, with absolute links to where the copy is served.
    summary = json.loads(page.request.get(f"{base}/api/v2/summary.json").body())
    assert summary["page"]["url"] == base and summary["status"]["indicator"] == "major"
    feed = feedparser.parse(page.request.get(f"{base}/history.atom").body())
    assert feed.bozo == 0 and all(entry.link.startswith(f"{base}/incidents/") for entry in feed.entries)
    context.close()


def test_a_new_export_replaces_the_old_one_in_one_step(history, tmp_path):
    site = tmp_path / "site"
    assert export(history, site, "https://status.example.com").returncode == 0
    first = os.path.realpath(site)
    assert export(history, site, "https://status.example.com").returncode == 0
    second = os.path.realpath(site)
    assert first != second and not os.path.exists(first) and os.path.isfile(os.path.join(second, "index.html"))
    assert sorted(os.listdir(tmp_path)) == sorted(["site", os.path.basename(second)])


def test_export_refuses_what_it_cannot_do(history, tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "precious.txt").write_text("mine")
    assert_one_line_failure(export(history, taken, "https://status.example.com"), str(taken), "not an export")
    assert (taken / "precious.txt").read_text() == "mine"
    result = run_statusthing("export", str(tmp_path / "x"), "--db", history.db_path)
    assert_one_line_failure(result, "--public-url")
    result = run_statusthing("--public-url", "https://s.example.com", "export", str(tmp_path / "x"), "--db",
                             str(tmp_path / "missing.db"))
    assert_one_line_failure(result, "missing.db")
    assert not (tmp_path / "missing.db").exists()


def test_the_server_keeps_its_export_up_to_date(tmp_path):
    site = tmp_path / "site"
    server = Server(tmp_path / "st.db", tmp_path / "server.log", "--export-dir", str(site), "--public-url",
                    "https://status.example.com")
    try:
        assert server.wait_log(lambda line: line.get("event") == "exported", timeout=20)
        assert "No systems are listed yet" in (site / "index.html").read_text()
        json_rpc(server, "ItemsService/AddItem", {"name": "Freshly added"})
        exported = server.wait_log(lambda line: line.get("event") == "exported", count=2, timeout=20)
        assert exported[-1]["files"] > 5 and "Freshly added" in (site / "index.html").read_text()
        assert "Freshly added" in (site / "api" / "v2" / "components.json").read_text()
    finally:
        server.stop()
    result = run_statusthing("--api-addr", "127.0.0.1:0", "--db", str(tmp_path / "st.db"), "--export-dir",
                             str(site))
    assert_one_line_failure(result, "--export-dir needs --public-url")
