"""The public status page and the admin page (issue 4): over HTTP for caching and escaping, and in a real headless
Chromium for what people do with them."""
import gzip
import re
import shutil
import subprocess
import sys
import time

import pytest

from conftest import ADMIN, ADMIN_AUTH, ROOT, Server, basic, status_id
from conftest import json_rpc as rpc

RPC = "/statusthing.v1"


def get(server, path, headers=None, method="GET"):
    conn = server.http()
    conn.request(method, path, headers=headers or {})
    response = conn.getresponse()
    return response.status, response.headers, response.read()


def page_text(server, path="/"):
    status, headers, body = get(server, path)
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    return body.decode()


# -- HTTP -----------------------------------------------------------------------------------------------------------

def test_public_page_without_javascript_has_everything(server):
    down = status_id(server, "DOWN")
    item = rpc(server, "ItemsService/AddItem", {"name": "API", "description": "the public API",
                                                "initialStatusId": down, "initialNoteText": "We are on it"})["item"]
    rpc(server, "ItemsService/AddItem", {"name": "Website", "initialStatusId": status_id(server, "UP")})
    html = page_text(server)
    assert '<html lang="en">' in html and "<main" in html and "<header>" in html and "<footer>" in html
    assert re.search(r'<p class="overall c-major" role="status"><svg[^>]*>.*?</svg><span>Major outage: API</span></p>',
                     html)
    assert "the public API" in html and "We are on it" in html
    assert re.search(r'Major outage <span class="status-name">\(DOWN\)</span>', html)
    assert re.search(r'Operational <span class="status-name">\(UP\)</span>', html)
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ">\d{4}-\d\d-\d\d \d\d:\d\d UTC</time>', html)
    assert f'href="/items/{item["id"]}"' in html and "/admin" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing from elsewhere


def test_overall_line_follows_the_worst_kind(server):
    assert "No systems are listed yet" in page_text(server)
    kinds = {}
    for kind in ("UP", "CREATED", "DECOMM", "OBSERVING", "OFFLINE"):
        kinds[kind] = rpc(server, "StatusService/AddStatus", {"name": f"k-{kind}", "kind": f"STATUS_KIND_{kind}"}
                          )["status"]["id"]
    item = rpc(server, "ItemsService/AddItem", {"name": "one", "initialStatusId": kinds["UP"]})["item"]
    rpc(server, "ItemsService/AddItem", {"name": "retired", "initialStatusId": kinds["DECOMM"]})
    rpc(server, "ItemsService/AddItem", {"name": "new", "initialStatusId": kinds["CREATED"]})
    assert "All systems operational" in page_text(server)  # CREATED and DECOMM are not problems
    rpc(server, "ItemsService/UpdateItem", {"itemId": item["id"], "statusId": kinds["OBSERVING"]})
    assert re.search(r'class="overall c-degraded".*<span>Degraded performance: one</span>', page_text(server))
    rpc(server, "ItemsService/UpdateItem", {"itemId": item["id"], "statusId": kinds["OFFLINE"]})
    assert re.search(r'class="overall c-major".*<span>Major outage: one</span>', page_text(server))


def test_item_page_has_the_whole_history(server):
    item = rpc(server, "ItemsService/AddItem", {"name": "DB", "initialNoteText": "note 0"})["item"]
    for n in range(1, 6):
        rpc(server, "NotesService/AddNote", {"itemId": item["id"], "noteText": f"note {n}"})
    front = page_text(server)
    assert "note 5" in front and "note 3" in front and "note 2" not in front and "All 6 updates on DB" in front
    detail = page_text(server, f"/items/{item['id']}")
    assert all(f"note {n}" in detail for n in range(6))
    assert detail.index("note 5") < detail.index("note 0")  # newest first
    assert "<title>DB · Status</title>" in detail
    status, headers, body = get(server, "/items/01NOSUCHITEM")
    assert status == 404 and "no such page" in body.decode()


def test_every_value_is_escaped(server):
    evil = "<script>alert(1)</script>"
    status = rpc(server, "StatusService/AddStatus", {"name": f"s{evil}", "kind": "STATUS_KIND_DOWN",
                                                     "description": evil})["status"]
    item = rpc(server, "ItemsService/AddItem", {"name": evil, "description": f"d{evil}",
                                                "initialStatusId": status["id"], "initialNoteText": f"n{evil}"})
    for html in (page_text(server), page_text(server, f"/items/{item['item']['id']}")):
        assert "<script>alert" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert html.count("<script>") == 1  # only the page's own


def test_title_comes_from_the_flag(start_server):
    server = start_server("--title", "ACME <Cloud>")
    html = page_text(server)
    assert "<title>ACME &lt;Cloud&gt;</title>" in html and ">ACME &lt;Cloud&gt;</a></h1>" in html


def test_caching_headers_and_conditional_requests(server):
    status, headers, body = get(server, "/")
    etag, last_modified = headers["ETag"], headers["Last-Modified"]
    assert status == 200 and etag.startswith('"') and "max-age=" in headers["Cache-Control"]
    assert headers["Cache-Control"].startswith("public")
    status, headers, body = get(server, "/", {"If-None-Match": etag})
    assert status == 304 and body == b"" and headers["ETag"] == etag
    assert get(server, "/", {"If-Modified-Since": last_modified})[0] == 304
    assert get(server, "/", {"If-None-Match": '"something-else"'})[0] == 200
    # Rendered once per change: the same bytes until something is written, then new ones at once.
    assert get(server, "/")[2] == get(server, "/")[2]
    rpc(server, "ItemsService/AddItem", {"name": "fresh"})
    status, headers, body = get(server, "/", {"If-None-Match": etag})
    assert status == 200 and headers["ETag"] != etag and b"fresh" in body
    # Compressed for those who ask, with its own tag; HEAD has the headers only.
    status, headers, body = get(server, "/", {"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip" and b"fresh" in gzip.decompress(body)
    assert get(server, "/", {"If-None-Match": headers["ETag"]})[0] == 304
    status, headers, body = get(server, "/", method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 1000


def test_page_for_twenty_items_is_small(server):
    up = status_id(server, "UP")
    for n in range(20):
        item = rpc(server, "ItemsService/AddItem", {"name": f"System number {n}", "initialStatusId": up,
                                                    "description": "A reasonably long description " * 3,
                                                    "initialNoteText": "First update " * 10})["item"]
        for k in range(3):
            rpc(server, "NotesService/AddNote", {"itemId": item["id"], "noteText": f"Update {k} " * 12})
    # Most of it is the uptime bars' 1,800 day marks, which compress well.
    size, zipped = len(get(server, "/")[2]), len(get(server, "/", {"Accept-Encoding": "gzip"})[2])
    assert 100_000 < size < 300_000 and zipped < 40_000, (size, zipped)


def test_admin_page_needs_a_user(server):
    status, headers, _ = get(server, "/admin")
    assert status == 401 and headers["WWW-Authenticate"].startswith('Basic realm="StatusThing"')
    assert get(server, "/admin", {"Authorization": basic("admin", "nope")})[0] == 401
    status, headers, body = get(server, "/admin", {"Authorization": ADMIN_AUTH})
    assert status == 200 and b"StatusThing admin" in body and headers["Cache-Control"] == "no-store"
    assert not re.search(rb'(src|href)="(https?:)?//', body)


def copy_appliance(tmp_path, with_assets=True):
    """The files an operator copies to a server, in a folder of their own (the assets/ folder only for devmode)."""
    folder = tmp_path / "appliance"
    folder.mkdir()
    # (With --backend postgres the operator copies the PostgreSQL store too.)
    for name in ("statusthing.py", "statusthing_pb2.py", "statusthing_pg.py"):
        shutil.copy(ROOT / name, folder / name)
    if with_assets:
        shutil.copytree(ROOT / "assets", folder / "assets")
    return folder


def start_copy(folder, tmp_path, *args):
    return Server(tmp_path / "st.db", tmp_path / f"log{time.monotonic_ns()}", *args,
                  script=folder / "statusthing.py")


@pytest.mark.parametrize("devmode", [True, False], ids=["devmode", "normal"])
def test_assets_are_reread_only_in_devmode(tmp_path, devmode):
    folder = copy_appliance(tmp_path)
    server = start_copy(folder, tmp_path, *(["--devmode"] if devmode else []))
    try:
        assert "Marker of an edit" not in page_text(server)
        assets = folder / "assets"
        template = (assets / "status.html").read_text()
        (assets / "status.html").write_text(template.replace("<main", "<p>Marker of an edit</p><main"))
        (assets / "admin.html").write_text((assets / "admin.html").read_text().replace(
            "<h1>StatusThing admin</h1>", "<h1>Edited admin</h1>"))
        edited = "Marker of an edit" in page_text(server)
        admin = get(server, "/admin", {"Authorization": ADMIN_AUTH})[2]
        assert edited == devmode and (b"Edited admin" in admin) == devmode
        # In devmode a file that goes missing is an internal error of that request, not of the server.
        (assets / "admin.html").unlink()
        status = get(server, "/admin", {"Authorization": ADMIN_AUTH})[0]
        assert status == (500 if devmode else 200)
        assert get(server, "/")[0] == 200
    finally:
        server.stop()


def test_devmode_without_the_assets_folder_stops_the_start(tmp_path):
    folder = copy_appliance(tmp_path, with_assets=False)
    result = subprocess.run([sys.executable, str(folder / "statusthing.py"), "--api-addr", "127.0.0.1:0",
                             "--db", str(tmp_path / "st.db"), "--devmode"], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert str(folder / "assets") in result.stderr and len(result.stderr.strip().splitlines()) == 1


# -- in a real browser --------------------------------------------------------------------------------------------

def public(browser, server, path="/", **options):
    context = browser.new_context(**options)
    page = context.new_page()
    page.goto(f"http://{server.address}{path}")
    return context, page


def test_public_page_works_without_javascript(browser, server):
    rpc(server, "ItemsService/AddItem", {"name": "Static", "initialStatusId": status_id(server, "UP"),
                                         "initialNoteText": "Visible without scripts"})
    context, page = public(browser, server, java_script_enabled=False)
    assert page.locator("h1").inner_text() == "Status"
    assert page.locator(".overall").inner_text() == "All systems operational"
    assert "Visible without scripts" in page.locator(".item").inner_text()
    assert "UTC" in page.locator(".item time").first.inner_text()
    context.close()
    context, page = public(browser, server)
    shown = page.locator(".item time").first.inner_text()
    assert "UTC" not in shown  # the script shows local, relative times
    assert "ago" in shown or "now" in shown or "minute" in shown
    context.close()


@pytest.mark.parametrize("path", ["/", "/admin"])
def test_no_horizontal_scroll_at_320_px(browser, server, path):
    for n in range(3):
        rpc(server, "ItemsService/AddItem", {"name": f"A-rather-long-system-name-without-spaces-{n}" * 2,
                                             "initialStatusId": status_id(server, "WARNING"),
                                             "initialNoteText": "word " * 40})
    context, page = public(browser, server, path, viewport={"width": 320, "height": 640},
                           http_credentials={"username": ADMIN[0], "password": ADMIN[1]})
    page.wait_for_load_state("networkidle")
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    context.close()


def test_dark_mode_follows_the_system(browser, server):
    colors = {}
    for scheme in ("light", "dark"):
        context, page = public(browser, server, color_scheme=scheme)
        colors[scheme] = page.evaluate("getComputedStyle(document.body).backgroundColor")
        context.close()
    assert colors["light"] != colors["dark"]


def test_refresh_keeps_the_scroll_position(browser, server):
    for n in range(15):
        rpc(server, "ItemsService/AddItem", {"name": f"item {n}", "initialNoteText": "x " * 50})
    context = browser.new_context(viewport={"width": 400, "height": 500})
    page = context.new_page()
    page.clock.install()  # the page's own one-minute timer, run on demand
    page.goto(f"http://{server.address}/")
    page.evaluate("window.scrollTo(0, 600)")
    rpc(server, "ItemsService/AddItem", {"name": "arrived later"})
    page.clock.run_for(61_000)
    page.wait_for_selector("text=arrived later")
    assert page.evaluate("window.scrollY") == 600
    context.close()


def test_a_write_that_changes_nothing_keeps_the_page(server):
    item = rpc(server, "ItemsService/AddItem", {"name": "Same", "description": "as before"})["item"]
    etag = get(server, "/")[1]["ETag"]
    rpc(server, "ItemsService/UpdateItem", {"itemId": item["id"], "description": "as before", "name": "Same"})
    assert get(server, "/", {"If-None-Match": etag})[0] == 304
    rpc(server, "ItemsService/UpdateItem", {"itemId": item["id"], "description": "changed"})
    assert get(server, "/", {"If-None-Match": etag})[0] == 200
