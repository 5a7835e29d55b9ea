"""What other programs read (issue 11): Statuspage's public v2 JSON, the Atom and RSS history feeds, badges and
shields.io endpoint JSON, Prometheus /metrics, /healthz and /readyz — each checked with the consumer's own tools
where there is one (feedparser, a strict RELAX NG schema of RFC 4287 through lxml, prometheus_client's parser)."""
import gzip
import json
import re
import sqlite3

import feedparser
import pytest
from lxml import etree
from prometheus_client.parser import text_string_to_metric_families

import statusthing
from conftest import Clock, Server, cli, json_rpc, status_id

TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
STATUSPAGE_STATUSES = {"operational", "degraded_performance", "partial_outage", "major_outage", "under_maintenance"}

# The shapes of Statuspage's public v2 JSON: each object's keys and the types of their values, as in a real
# summary.json (githubstatus.com, 2022-11-25; sergeyshevch/statuspage-exporter example.json@eec47cbb7f) and the
# Statuspage API documentation examples (Vexed01/Vex-Cogs tests/consts.py@24fa72e198). None: null is allowed.
PAGE = {"id": str, "name": str, "url": str, "time_zone": str, "updated_at": str}
COMPONENT = {"id": str, "name": str, "status": str, "created_at": str, "updated_at": str, "position": int,
             "description": (str, None), "showcase": bool, "start_date": (str, None), "group_id": (str, None),
             "page_id": str, "group": bool, "only_show_if_degraded": bool}
INCIDENT = {"id": str, "name": str, "status": str, "created_at": str, "updated_at": str, "monitoring_at": (str, None),
            "resolved_at": (str, None), "impact": str, "shortlink": (str, None), "started_at": str, "page_id": str,
            "incident_updates": list, "components": list}
UPDATE = {"id": str, "status": str, "body": str, "incident_id": str, "created_at": str, "updated_at": str,
          "display_at": str, "affected_components": (list, None), "deliver_notifications": bool,
          "custom_tweet": (str, None), "tweet_id": (str, None)}
AFFECTED = {"code": str, "name": str, "old_status": str, "new_status": str}
TOP_LEVEL = {"summary": ["page", "components", "incidents", "scheduled_maintenances", "status"],
             "status": ["page", "status"], "components": ["page", "components"], "incidents": ["page", "incidents"],
             "incidents/unresolved": ["page", "incidents"],
             "scheduled-maintenances": ["page", "scheduled_maintenances"],
             "scheduled-maintenances/upcoming": ["page", "scheduled_maintenances"],
             "scheduled-maintenances/active": ["page", "scheduled_maintenances"]}


def shaped(value, shape, what):
    """Assert ``value`` has exactly ``shape``'s keys, each of its type (times in Statuspage's form)."""
    assert list(value) == list(shape), f"{what}: {list(value)}"
    for key, kinds in shape.items():
        kinds = kinds if isinstance(kinds, tuple) else (kinds,)
        allowed = tuple(type(None) if kind is None else kind for kind in kinds)
        assert isinstance(value[key], allowed) and not (bool in allowed) ^ isinstance(value[key], bool), \
            f"{what}.{key} = {value[key]!r}"
        if key.endswith("_at") and value[key] is not None:
            assert TIME.match(value[key]), f"{what}.{key} = {value[key]}"


def get(server, path, headers=None, method="GET"):
    conn = server.http()
    conn.request(method, path, headers=headers or {})
    response = conn.getresponse()
    return response.status, response.headers, response.read()


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """A server whose page has a group, an item with no condition, a resolved and an open incident."""
    folder = tmp_path_factory.mktemp("formats")
    clock = Clock(folder / "now")
    clock.set("2026-11-20T10:00:00Z")
    server = Server(folder / "st.db", folder / "server.log", "--title", "Example & Co", "--public-url",
                    "https://status.example.com", env={"STATUSTHING_CLOCK": clock.path})
    up, down, warning = (status_id(server, name) for name in ("UP", "DOWN", "WARNING"))
    created = json_rpc(server, "StatusService/AddStatus", {"name": "New", "kind": "STATUS_KIND_CREATED"})["status"]
    ids = {}
    for name, group, status in (("API", "Platform", up), ("Web", "Platform", up), ("Mail", "", up),
                                ("Lab", "", created["id"])):
        ids[name] = json_rpc(server, "ItemsService/AddItem", {"name": name, "group": group, "initialStatusId": status,
                                                              "description": f"The {name}" if name != "Web" else ""}
                             )["item"]["id"]
    clock.set("2026-11-21T09:00:00Z")
    json_rpc(server, "ItemsService/UpdateItem", {"itemId": ids["Mail"], "statusId": down, "noteText": "Mail is down."})
    clock.set("2026-11-21T09:30:00Z")
    json_rpc(server, "NotesService/AddNote", {"itemId": ids["Mail"], "noteText": "A fix is on its way <soon>."})
    clock.set("2026-11-21T10:00:00Z")
    json_rpc(server, "ItemsService/UpdateItem", {"itemId": ids["Mail"], "statusId": up})
    clock.set("2026-11-22T08:00:00Z")
    json_rpc(server, "ItemsService/UpdateItem", {"itemId": ids["API"], "statusId": warning,
                                                 "noteText": "Slow answers & timeouts."})
    clock.set("2026-11-22T08:15:00Z")
    server.ids, server.clock = ids, clock
    yield server
    server.stop()


# -- Statuspage's public JSON -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(TOP_LEVEL))
def test_statuspage_endpoints_have_statuspages_keys_and_types(page, name):
    status, headers, body = get(page, f"/api/v2/{name}.json")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert headers["Access-Control-Allow-Origin"] == "*" and headers["ETag"]
    answer = json.loads(body)
    assert list(answer) == TOP_LEVEL[name]
    shaped(answer["page"], PAGE, "page")
    assert answer["page"]["name"] == "Example & Co" and answer["page"]["url"] == "https://status.example.com"
    assert answer["page"]["time_zone"] == "UTC" and re.fullmatch(r"[0-9a-z]{12}", answer["page"]["id"])
    for row in answer.get("components", []):
        shaped(row, {**COMPONENT, "components": list} if row["group"] else COMPONENT, "component")
        assert row["status"] in STATUSPAGE_STATUSES and row["page_id"] == answer["page"]["id"]
    for incident in answer.get("incidents", []):
        shaped(incident, INCIDENT, "incident")
        for update in incident["incident_updates"]:
            shaped(update, UPDATE, "update")
            for affected in update["affected_components"] or []:
                shaped(affected, AFFECTED, "affected component")
        for component in incident["components"]:
            shaped(component, COMPONENT, "incident component")
    assert answer.get("scheduled_maintenances", []) == []


def test_statuspage_json_says_what_the_page_says(page):
    summary = json.loads(get(page, "/api/v2/summary.json")[2])
    rows = {row["name"]: row for row in summary["components"]}
    assert [row["name"] for row in summary["components"]] == ["Platform", "API", "Web", "Mail", "Lab"]
    assert rows["Platform"]["group"] and rows["Platform"]["components"] == [page.ids["API"], page.ids["Web"]]
    assert rows["Platform"]["status"] == rows["API"]["status"] == "degraded_performance"
    assert rows["API"]["group_id"] == rows["Platform"]["id"] and rows["Mail"]["group_id"] is None
    assert rows["Web"]["description"] is None and rows["API"]["description"] == "The API"
    assert rows["Lab"]["only_show_if_degraded"] and not rows["Mail"]["only_show_if_degraded"]  # no condition: hidden
    assert [row["position"] for row in summary["components"]] == [1, 2, 3, 4, 5]
    assert summary["status"] == {"indicator": "minor", "description": "Partially Degraded Service"}
    [open_incident] = summary["incidents"]  # summary lists the unresolved ones
    assert open_incident["name"] == "API: degraded performance" and open_incident["status"] == "investigating"
    assert open_incident["impact"] == "minor" and open_incident["resolved_at"] is None
    assert open_incident["shortlink"] == f"https://status.example.com/incidents/{open_incident['id']}"
    assert open_incident["incident_updates"][0]["body"] == "Slow answers & timeouts."
    assert open_incident["incident_updates"][0]["affected_components"] == [
        {"code": page.ids["API"], "name": "API", "old_status": "operational", "new_status": "degraded_performance"}]
    incidents = json.loads(get(page, "/api/v2/incidents.json")[2])["incidents"]
    resolved = next(incident for incident in incidents if incident["resolved_at"])
    assert resolved["name"] == "Mail: major outage" and resolved["status"] == "resolved"
    assert resolved["impact"] == "critical" and resolved["resolved_at"] == "2026-11-21T10:00:00.000Z"
    updates = resolved["incident_updates"]  # newest first; the note without a change is an update of its own
    assert [(u["status"], u["body"]) for u in updates] == [
        ("resolved", "Mail is operational (UP)."), ("investigating", "A fix is on its way <soon>."),
        ("investigating", "Mail is down.")]
    assert updates[1]["affected_components"] is None
    unresolved = json.loads(get(page, "/api/v2/incidents/unresolved.json")[2])["incidents"]
    assert [incident["id"] for incident in unresolved] == [open_incident["id"]]


@pytest.mark.parametrize("statuses, indicator, description", [
    ([], "none", "All Systems Operational"),
    (["operational", "operational"], "none", "All Systems Operational"),
    (["degraded_performance", "operational"], "minor", "Partially Degraded Service"),
    (["degraded_performance", "degraded_performance"], "minor", "Degraded System Service"),
    (["partial_outage", "operational"], "minor", "Minor Service Outage"),
    (["partial_outage", "partial_outage"], "major", "Partial System Outage"),
    (["major_outage", "operational"], "major", "Partial System Outage"),
    (["major_outage", "major_outage"], "critical", "Major System Outage"),
    (["under_maintenance", "operational"], "maintenance", "Service Under Maintenance"),
])
def test_the_page_indicator_follows_statuspages_rules(statuses, indicator, description):
    rows = [{"status": status, "group": False, "only_show_if_degraded": False} for status in statuses]
    assert statusthing.sp_indicator(rows) == {"indicator": indicator, "description": description}


def test_statuspage_links_follow_the_request_without_a_public_url(server):
    json_rpc(server, "ItemsService/AddItem", {"name": "Solo"})
    status, _, body = get(server, "/api/v2/status.json", {"Host": "status.internal:8080"})
    assert json.loads(body)["page"]["url"] == "http://status.internal:8080"
    status, _, body = get(server, "/api/v2/status.json", {"Host": "bad<host>"})
    assert json.loads(body)["page"]["url"] == "http://localhost"  # not copied into an answer
    assert get(server, "/api/v2/nothing.json")[0] == 404


# -- feeds ------------------------------------------------------------------------------------------------------------

# RFC 4287's rules for a feed and its entries, as a RELAX NG schema: exactly one id, title and updated in each;
# an author (on the feed, here); a link or content in each entry; dates as RFC 3339; text constructs typed.
ATOM_RNC = r"""
default namespace atom = "http://www.w3.org/2005/Atom"
start = element feed { feedContent }
date = xsd:dateTime { pattern = ".*(Z|[+\-]\d\d:\d\d)" }
textConstruct = attribute type { "text" | "html" }?, text
link = element link { attribute href { xsd:anyURI }, attribute rel { text }?, attribute type { text }?, empty }
person = element author { element name { text } & element uri { xsd:anyURI }? & element email { text }? }
feedContent = attribute xml:lang { text }?,
  (element id { xsd:anyURI } & element title { textConstruct } & element updated { date } & person+ & link* &
   element subtitle { textConstruct }? & element entry { entryContent }*)
entryContent = element id { xsd:anyURI } & element title { textConstruct } & element updated { date } &
  element published { date }? & link+ & element content { textConstruct }? & person*
"""


def atom_schema():
    import rnc2rng
    return etree.RelaxNG(etree.fromstring(rnc2rng.dumps(rnc2rng.loads(ATOM_RNC)).encode()))


def test_the_atom_feed_is_valid_and_shaped_like_statuspages(page):
    status, headers, body = get(page, "/history.atom")
    assert status == 200 and headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    schema = atom_schema()
    document = etree.fromstring(body)
    assert schema.validate(document), schema.error_log
    broken = etree.fromstring(body.replace(b"<updated>", b"<published>", 1).replace(b"</updated>", b"</published>", 1))
    assert not schema.validate(broken)  # (the schema does check: a feed without its updated fails)
    feed = feedparser.parse(body)
    assert feed.bozo == 0 and feed.feed.title == "Example & Co Status - Incident History"
    assert feed.feed.id == "tag:status.example.com,2005:/history"
    assert [entry.title for entry in feed.entries] == ["API: degraded performance", "Mail: major outage"]
    mail = feed.entries[1]
    assert mail.id.startswith("tag:status.example.com,2005:Incident/")
    assert mail.link.startswith("https://status.example.com/incidents/") and mail.updated == "2026-11-21T10:00:00Z"
    content = mail.content[0].value
    assert content.index("<strong>Resolved</strong>") < content.index("A fix is on its way &lt;soon&gt;.") \
        < content.index("<strong>Investigating</strong> - Mail is down.")
    raw = document.findall("{http://www.w3.org/2005/Atom}entry")[1].find("{http://www.w3.org/2005/Atom}content").text
    assert "Nov <var data-var='date'>21</var>, <var data-var='time'>09:00</var> UTC" in raw  # (as Statuspage writes)


def test_feeds_keep_their_bytes_until_an_incident_changes(page):
    url = f"http://{page.address}/history.atom"
    first = feedparser.parse(url)
    assert first.status == 200 and first.etag
    again = feedparser.parse(url, etag=first.etag)  # what feed readers send
    assert again.status == 304 and not again.entries
    status, headers, body = get(page, "/history.atom", {"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip" and gzip.decompress(body).startswith(b"<?xml")
    assert get(page, "/history.atom", method="HEAD")[2] == b""


def test_the_rss_feed(page):
    status, headers, body = get(page, "/history.rss")
    assert status == 200 and headers["Content-Type"] == "application/rss+xml; charset=utf-8"
    feed = feedparser.parse(body)
    assert feed.bozo == 0 and feed.version == "rss20" and len(feed.entries) == 2
    assert feed.entries[0].guid == feed.entries[0].link and feed.entries[0].link.startswith("https://status.example.com/")
    assert "Slow answers &amp; timeouts." in feed.entries[0].description


def test_pages_announce_their_feeds(page):
    html = get(page, "/")[2].decode()
    assert '<link rel="alternate" type="application/atom+xml" title="Incident history (Atom)" href="/history.atom">' \
        in html and 'type="application/rss+xml"' in html


def test_an_incident_has_a_page_of_its_own(page):
    incident = json.loads(get(page, "/api/v2/incidents.json")[2])["incidents"][1]
    status, _, body = get(page, f"/incidents/{incident['id']}")
    html = body.decode()
    assert status == 200 and "<title>Mail: major outage · Example &amp; Co</title>" in html
    assert "resolved after 1 h" in html and "A fix is on its way &lt;soon&gt;." in html
    assert get(page, "/incidents/01NOSUCHINCIDENT")[0] == 404


# -- badges -----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path, words, color", [
    ("/badge.svg", "status: degraded performance", "#dfb317"),
    ("/items/{Mail}/badge.svg", "Mail: operational", "#3c1"),
    ("/items/{API}/badge.svg", "API: degraded performance", "#dfb317"),
    ("/items/{Lab}/badge.svg", "Lab: no data", "#9f9f9f"),
    ("/items/{Mail}/uptime.svg?days=30", "uptime 30d: 97.83%", "#a4a61d"),
    ("/items/{Mail}/uptime.svg?days=90", "uptime 90d: 97.83%", "#a4a61d"),
    ("/items/{Mail}/uptime.svg", "uptime 90d: 97.83%", "#a4a61d"),
])
def test_badges_are_flat_svg_that_say_what_they_show(page, path, words, color):
    status, headers, body = get(page, path.format(**page.ids))
    assert status == 200 and headers["Content-Type"] == "image/svg+xml" and "max-age=" in headers["Cache-Control"]
    svg = etree.fromstring(body)
    assert svg.get("role") == "img" and svg.get("aria-label") == words
    assert svg.find("{http://www.w3.org/2000/svg}title").text == words
    assert color in body.decode() and svg.get("height") == "20"
    label, message = svg.findall(".//{http://www.w3.org/2000/svg}text")
    assert int(svg.get("width")) == sum(int(length) // 10 + 10 for length in (label.get("textLength"),
                                                                               message.get("textLength")))
    assert get(page, path.format(**page.ids), {"If-None-Match": headers["ETag"]})[0] == 304


def test_badge_errors(page):
    assert get(page, "/items/01NOSUCHITEM/badge.svg")[0] == 404
    status, _, body = get(page, f"/items/{page.ids['Mail']}/uptime.svg?days=7")
    assert status == 400 and b"days must be 30 or 90" in body


def test_shields_endpoint_json_has_only_the_keys_shields_accepts(page):
    status, headers, body = get(page, f"/items/{page.ids['API']}/shield.json")
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "*"
    assert json.loads(body) == {"schemaVersion": 1, "label": "API", "message": "degraded performance",
                                "color": "yellow", "cacheSeconds": 60}


# -- Prometheus /metrics ----------------------------------------------------------------------------------------------

def families(text):
    return {family.name: family for family in text_string_to_metric_families(text)}


def test_metrics_parse_with_prometheus_own_parser(page):
    get(page, "/")  # (a request to count)
    status, headers, body = get(page, "/metrics")
    assert status == 200 and headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    found = families(body.decode())
    conditions = {s.labels["item_name"]: s.value for s in found["statusthing_item_condition"].samples}
    assert conditions == {"API": 2, "Web": 1, "Mail": 1, "Lab": 0}
    ratios = {(s.labels["item_name"], s.labels["window"]): s.value
              for s in found["statusthing_item_uptime_ratio"].samples}
    assert ratios[("Web", "90d")] == 1.0 and ratios[("Mail", "30d")] == pytest.approx(1 - 1 / 46.25)
    assert ("Lab", "1d") not in ratios  # nothing observed: no ratio, rather than a made-up one
    assert found["statusthing_incidents_open"].samples[0].value == 1
    assert found["statusthing_build_info"].samples[0].labels == {"version": statusthing.VERSION}
    assert found["statusthing_database_size_bytes"].samples[0].value > 10_000
    requests = {(s.labels["method"], s.labels["code"]): s.value for s in found["statusthing_requests"].samples
                if s.name == "statusthing_requests_total"}
    assert requests[("GET", "200")] >= 1
    histogram = [s for s in found["statusthing_request_duration_seconds"].samples if s.labels.get("le") == "+Inf"]
    assert histogram and histogram[0].value >= 1
    last_change = {s.labels["item_name"]: s.value
                   for s in found["statusthing_item_last_change_timestamp_seconds"].samples}
    assert last_change["Mail"] == 1795255200.0  # 2026-11-21T10:00:00Z


def test_metrics_escape_label_values(server):
    json_rpc(server, "ItemsService/AddItem", {"name": 'quote " and back\\slash'})
    found = families(get(server, "/metrics")[2].decode())
    assert [s.labels["item_name"] for s in found["statusthing_item_condition"].samples] == ['quote " and back\\slash']


def test_metrics_are_for_this_machine_or_a_bearer(start_server):
    server = start_server("--trusted-proxy", "127.0.0.1", "--metrics-token", "scrape-me")
    remote = {"X-Forwarded-For": "203.0.113.9"}
    status, headers, _ = get(server, "/metrics", remote)
    assert status == 401
    assert get(server, "/metrics", {**remote, "Authorization": "Bearer wrong"})[0] == 401
    assert get(server, "/metrics", {**remote, "Authorization": "Bearer scrape-me"})[0] == 200
    token = cli(server, "token", "add", "prometheus").stdout.strip()
    assert get(server, "/metrics", {**remote, "Authorization": f"Bearer {token}"})[0] == 200
    assert get(server, "/metrics")[0] == 200  # from this machine itself


# -- health -----------------------------------------------------------------------------------------------------------

@pytest.mark.sqlite_only
def test_health_and_readiness(start_server):
    server = start_server()
    for path, answer in (("/healthz", {"status": "ok"}), ("/readyz", {"status": "ready"})):
        status, headers, body = get(server, path)
        assert status == 200 and json.loads(body) == answer and headers["Cache-Control"] == "no-store"
    assert not [line for line in server.log_lines() if line.get("path") in ("/healthz", "/readyz")]
    # A database that no longer reads (its settings table pointed at an index's pages, as a broken disk would).
    with sqlite3.connect(server.db_path, isolation_level=None) as conn:
        index_page = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'incidents_by_time'").fetchone()[0]
        version = conn.execute("PRAGMA schema_version").fetchone()[0]
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute("UPDATE sqlite_master SET rootpage = ? WHERE name = 'settings'", (index_page,))
        conn.execute(f"PRAGMA schema_version = {version + 1}")
    status, headers, body = get(server, "/readyz")
    assert status == 503 and json.loads(body)["message"].startswith("the database does not answer")
    assert get(server, "/healthz")[0] == 200  # the process itself still answers
    assert [line["status"] for line in server.wait_log(lambda line: line.get("path") == "/readyz")] == [503]


@pytest.mark.parametrize("path, content_type", [
    ("/api/v2/summary.json", "application/json"), ("/api/v2/components.json", "application/json"),
    ("/history.atom", "application/atom+xml; charset=utf-8"), ("/history.rss", "application/rss+xml; charset=utf-8"),
    ("/badge.svg", "image/svg+xml"), ("/items/{Mail}/uptime.svg?days=30", "image/svg+xml"),
    ("/items/{Mail}/shield.json", "application/json"), ("/incidents/{incident}", "text/html; charset=utf-8"),
])
def test_every_new_get_has_validators_gzip_and_head(page, path, content_type):
    incident = json.loads(get(page, "/api/v2/incidents.json")[2])["incidents"][0]["id"]
    path = path.format(incident=incident, **page.ids)
    status, headers, body = get(page, path)
    assert status == 200 and headers["Content-Type"] == content_type and headers["Last-Modified"]
    assert get(page, path, {"If-None-Match": headers["ETag"]})[0] == 304
    head_status, head_headers, head_body = get(page, path, method="HEAD")
    assert head_status == 200 and head_body == b"" and head_headers["ETag"] == headers["ETag"]
    zipped_status, zipped_headers, zipped = get(page, path, {"Accept-Encoding": "gzip"})
    if len(body) >= 1024:  # (smaller answers are not worth compressing)
        assert zipped_headers["Content-Encoding"] == "gzip" and gzip.decompress(zipped) == body
    else:
        assert zipped == body
