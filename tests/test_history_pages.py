"""The public pages as history makes them (issue 10): uptime bars, past incidents, /history, item timelines and
groups, over HTTP and in headless Chromium (layout, keyboard, dark mode, axe-core's accessibility rules).

Each server runs in Europe/Berlin on a clock the test sets (STATUSTHING_CLOCK), so days, midnights and DST changes
happen when the test says."""
import json
import math
import re

import pytest

from conftest import RPC_PREFIX, Site, after_another_writer, database


@pytest.fixture
def site(tmp_path):
    site = Site(tmp_path)
    yield site
    site.stop()


@pytest.fixture(scope="module")
def shared_site(tmp_path_factory):
    """One site with a history for the browser tests: three items, a group, incidents over 90 days."""
    site = Site(tmp_path_factory.mktemp("shared-site"))
    site.at("2026-10-01T08:00:00Z")
    api = site.add("Public API", group="Platform", description="api.example.com")
    web = site.add("Website", position=-1)
    site.add("Dashboard", group="Platform")
    for start, end, item, status in (("2026-10-06T09:00", "2026-10-06T09:40", api, "DOWN"),
                                     ("2026-10-21T09:00", "2026-10-21T10:30", web, "DOWN"),
                                     ("2026-11-03T09:00", "2026-11-03T14:00", api, "WARNING"),
                                     ("2026-11-17T09:00", "2026-11-17T09:25", api, "PARTLY")):
        site.at(f"{start}:00Z").set(item, status, "Trouble.\nWe are on it.")
        site.at(f"{end}:00Z").set(item, "UP", "Fixed.")
    site.at("2026-12-30T10:00:00Z")
    site.set(api, "WARNING", "Slow responses; see https://example.com/incidents/7 for details.")
    site.at("2026-12-30T10:30:00Z")
    site.site_api = api
    yield site
    site.stop()


def marks(html, item_id):
    """(class, aria-label, href) of each day mark of an item's bar, oldest first."""
    card = re.search(rf'<li class="item" id="item-{item_id}">(.*?)</article>', html, re.S)[1]
    return re.findall(r'<li><a href="([^"]*)" class="d-(\w+)" aria-label="([^"]*)"></a>', card)


def uptime_of(site, item_id):
    return site.rpc("HistoryService/GetUptime", itemIds=[item_id])["items"][0]


def shown_percent(value):
    return f"{math.floor(value * 100) / 100:.2f} % uptime"


# -- uptime bars -------------------------------------------------------------------------------------------------

def test_a_bar_has_ninety_days_coloured_by_their_worst_condition(site):
    site.at("2027-01-01T10:00:00Z")  # 11:00 in Berlin
    item = site.add("Payments")
    site.at("2027-01-05T08:00:00Z").set(item, "DOWN", "Card payments fail.")
    site.at("2027-01-05T10:00:00Z").set(item, "UP")
    site.at("2027-01-07T09:00:00Z").set(item, "WARNING")
    site.at("2027-01-07T09:30:00Z").set(item, "PARTLY")
    site.at("2027-01-07T09:45:00Z").set(item, "UP")
    site.at("2027-01-10T12:00:00Z")
    html = site.page()
    days = marks(html, item)
    assert len(days) == 90
    by_date = {href.rsplit("=", 1)[1]: (condition, label) for href, condition, label in days}
    assert list(by_date)[-1] == "2027-01-10" and list(by_date)[0] == "2026-10-13"
    assert by_date["2026-12-31"] == ("nodata", "31 Dec 2026: no data")  # before the item existed
    assert by_date["2027-01-01"] == ("operational", "1 Jan 2027: no downtime")
    assert by_date["2027-01-05"] == ("major", "5 Jan 2027: 2 h major outage; 1 incident")
    assert by_date["2027-01-07"] == ("partial", "7 Jan 2027: 15 min partial outage, 30 min degraded; 1 incident")
    assert by_date["2027-01-10"] == ("operational", "10 Jan 2027: no downtime")
    assert days[-1][0] == f"/items/{item}?day=2027-01-10"
    # The figure beside the bar is GetUptime's, floored to two decimals (never rounded up to 100 %).
    percent = uptime_of(site, item)["uptimePercent"]
    assert percent < 100 and shown_percent(percent) in html


def test_today_moves_with_the_clock_and_the_day_turns_at_midnight_in_the_time_zone(site):
    site.at("2027-02-10T08:00:00Z")
    item = site.add("Search")
    site.at("2027-02-10T22:30:00Z").set(item, "DOWN")  # 23:30 in Berlin
    site.at("2027-02-10T22:40:00Z")
    assert marks(site.page(), item)[-1][1:] == ("major", "10 Feb 2027: 10 min major outage; 1 incident")
    site.at("2027-02-10T22:50:00Z")  # nothing written: the kept page expires with the clock
    assert marks(site.page(), item)[-1][1:] == ("major", "10 Feb 2027: 20 min major outage; 1 incident")
    site.at("2027-02-10T23:10:00Z")  # 00:10 on the 11th in Berlin
    days = marks(site.page(), item)
    assert days[-2][1:] == ("major", "10 Feb 2027: 30 min major outage; 1 incident")
    assert days[-1][1:] == ("major", "11 Feb 2027: 10 min major outage")


def test_a_day_of_the_dst_change_has_twenty_three_hours(site):
    site.at("2027-03-27T12:00:00Z")
    item = site.add("Queue", status="DOWN")
    site.at("2027-03-29T12:00:00Z")
    by_date = {href.rsplit("=", 1)[1]: label for href, _, label in marks(site.page(), item)}
    assert by_date["2027-03-28"] == "28 Mar 2027: 23 h major outage"  # clocks went forward in Berlin
    assert by_date["2027-03-27"] == "27 Mar 2027: 11 h major outage; 1 incident"


def test_narrow_screens_get_the_last_thirty_days_and_their_figure(site):
    site.at("2026-12-01T00:00:00Z")
    item = site.add("Batch jobs")
    site.at("2026-12-02T00:00:00Z").set(item, "DOWN")
    site.at("2026-12-03T00:00:00Z").set(item, "UP")
    site.at("2027-01-30T00:00:00Z")
    html = site.page()
    card = re.search(rf'id="item-{item}">(.*?)</article>', html, re.S)[1]
    long, short = re.findall(r'<span class="long">([^<]*)</span><span class="short">([^<]*)</span>', card)[1]
    assert long.startswith("98.") and short == "100.00 % uptime"  # the outage is older than 30 days


# -- past incidents and /history ---------------------------------------------------------------------------------

def day_section(html, date):
    return re.search(rf'<div class="incidents-day" id="day-{date}">(.*?)</div>(?=<div class="incidents-day"|<p)',
                     html, re.S)[1]


def test_past_incidents_cover_fourteen_days_with_their_updates(site):
    site.at("2027-04-01T08:00:00Z")
    payments = site.add("Payments")
    search = site.add("Search")
    site.at("2027-04-10T07:00:00Z").set(payments, "DOWN", "Card payments fail.\nWe are looking into it.")
    site.at("2027-04-10T07:30:00Z").set(payments, "PARTLY", "Cards work again; bank transfers still fail.")
    site.at("2027-04-10T09:00:00Z").set(payments, "UP", "All payments work.")
    site.at("2027-04-12T06:00:00Z").set(search, "WARNING", "Search is slow.")
    site.at("2027-04-12T06:15:00Z")
    html = site.page()
    past = html[html.index('id="past"'):]
    headings = re.findall(r'<div class="incidents-day" id="day-([\d-]+)"><h3>([^<]+)</h3>', past)
    assert len(headings) == 14 and headings[0] == ("2027-04-12", "12 April 2027") and headings[-1][0] == "2027-03-30"
    assert day_section(html, "2027-04-11") == '<h3>11 April 2027</h3><p class="empty">No incidents reported.</p>'
    payments_day = day_section(html, "2027-04-10")
    assert re.search(r'<h4><a href="/incidents/\w+">Payments: major outage</a></h4>', payments_day)
    assert "resolved after 2 h" in payments_day
    updates = re.findall(r'<p class="change"><span class="condition c-(\w+)">.*?</span></p><p>([^<]*)</p>',
                         payments_day)
    assert updates == [("operational", "All payments work."),  # newest first, each change with its note
                       ("partial", "Cards work again; bank transfers still fail."),
                       ("major", "Card payments fail.\nWe are looking into it.")]
    ongoing = day_section(html, "2027-04-12")
    assert "Search: degraded performance</a>" in ongoing and "<strong>ongoing</strong>, for 15 min" in ongoing, ongoing
    assert '<p class="overall c-degraded" role="status">' in html
    assert "<span>Degraded performance: Search</span>" in html


def test_history_pages_by_month_and_by_day(site):
    site.at("2027-05-01T08:00:00Z")
    item = site.add("Mail")
    site.at("2027-05-03T10:00:00Z").set(item, "DOWN", "Mail is down.")
    site.at("2027-05-03T11:00:00Z").set(item, "UP")
    site.at("2027-06-20T10:00:00Z")
    for minute in range(52):  # a flapping afternoon: more incidents than a month's page shows a day
        site.at(f"2027-07-02T{12 + minute // 30}:{minute % 30 * 2:02d}:00Z").set(item, "WARNING")
        site.at(f"2027-07-02T{12 + minute // 30}:{minute % 30 * 2:02d}:30Z").set(item, "UP")
    site.at("2027-07-10T10:00:00Z")
    july = site.page("/history")
    assert "Incidents in July 2027" in july and '/history?month=2027-06">&larr; June 2027' in july
    assert "August 2027" not in july  # no month after the current one
    assert len(re.findall(r'<article class="incident', july)) == 50
    assert '<a href="/history?day=2027-07-02">All 52 incidents of this day</a>' in july
    day = site.page("/history?day=2027-07-02")
    assert "Incidents on 2 July 2027" in day and len(re.findall(r'<article class="incident', day)) == 52
    june = site.page("/history?month=2027-06")
    assert "No incidents reported in June 2027." in june and '/history?month=2027-07">July 2027 &rarr;' in june
    may = site.page("/history?month=2027-05")
    assert "Mail: major outage</a>" in may and "resolved after 1 h" in may
    assert "April 2027" not in may  # nothing older: no link to an empty past
    for bad in ("/history?month=2027-13", "/history?month=May", "/history?day=2027-02-30",
                "/history?month=2027-05&month=2027-06"):
        status, headers, body = site.get(bad)
        assert status == 400 and headers["Content-Type"].startswith("text/plain"), (bad, body)


# -- item pages --------------------------------------------------------------------------------------------------

def test_an_item_page_is_its_timeline_paged_fifty_at_a_time(site):
    site.at("2027-08-01T08:00:00Z")
    item = site.add("Storage")
    for n in range(60):
        site.at(f"2027-08-02T{8 + n // 60:02d}:{n % 60:02d}:00Z")
        if n % 10 == 5:
            site.set(item, "DOWN" if n % 20 == 5 else "UP", f"change {n}")
        else:
            site.rpc("NotesService/AddNote", itemId=item, noteText=f"note {n}")
    site.at("2027-08-03T08:00:00Z")
    first = site.page(f"/items/{item}")
    assert "<title>Storage · Status</title>" in first and len(marks(first, item)) == 90
    texts = re.findall(r"<p>((?:note|change) \d+)</p>", first)
    older = re.search(r'<a rel="next" href="/items/[^?]+\?before=([^"]+)">Older updates', first)[1]
    second = site.page(f"/items/{item}?before={older}")
    texts += re.findall(r"<p>((?:note|change) \d+)</p>", second)
    # Newest first, each once, the oldest update (the item's first status) last.
    assert [int(text.split()[1]) for text in texts] == list(range(59, -1, -1))
    assert 'rel="next"' not in second
    assert (first + second).count('<p class="change">') == 7  # six changes and the first status
    day = site.page(f"/items/{item}?day=2027-08-02")
    assert "Timeline of 2 August 2027" in day and "2 Aug 2027: 30 min major outage; 3 incidents" in day
    assert "Nothing happened on this day." in site.page(f"/items/{item}?day=2027-07-15")
    for bad in (f"/items/{item}?day=yesterday", f"/items/{item}?before=nonsense"):
        assert site.get(bad)[0] == 400, bad
    assert site.get("/items/01NOSUCHITEM")[0] == 404


def test_notes_keep_line_breaks_and_link_only_web_addresses(site):
    item = site.add("Links")
    site.rpc("NotesService/AddNote", itemId=item, noteText=(
        "Details: https://example.com/a?b=1&c=<2>.\nNot a link: javascript:alert(1) or ftp://x.example"))
    html = site.page(f"/items/{item}")
    assert ('<p>Details: <a href="https://example.com/a?b=1&amp;c=" rel="nofollow noopener">'
            'https://example.com/a?b=1&amp;c=</a>&lt;2&gt;.\nNot a link: javascript:alert(1) or ftp://x.example</p>'
            in html)


def test_groups_fold_and_open_when_something_in_them_has_a_problem(site):
    site.at("2027-09-01T08:00:00Z")
    site.add("Zeta", position=3)
    api = site.add("API", group="Platform", position=1)
    site.add("Alpha", position=2)
    site.add("Web", group="Platform", position=5)
    html = site.page()
    names = re.findall(r'<h2 id="name-[^"]+"><a href="[^"]+">([^<]+)</a>', html)
    assert names == ["API", "Web", "Alpha", "Zeta"]  # a group stands where its first item does
    group = re.search(r'<details class="group" id="group-\w+"( open)?><summary><span>Platform '
                      r'<span class="meta">\(2\)</span></span><span class="condition c-(\w+)">', html)
    assert group.groups() == (None, "operational")
    site.set(api, "PARTLY")
    group = re.search(r'<details class="group" id="group-\w+"( open)?><summary><span>Platform .*?'
                      r'<span class="condition c-(\w+)">', site.page())
    assert group.groups() == (" open", "partial")


# -- in a real browser ---------------------------------------------------------------------------------------------

def visible_marks(page):
    return page.evaluate("""() => Array.from(document.querySelectorAll('ol.bar')).map(bar =>
        Array.from(bar.querySelectorAll('a')).filter(a => { const r = a.getBoundingClientRect();
            return r.width >= 1 && r.height >= 16; }).length)""")


@pytest.mark.parametrize("width, days", [(1280, 90), (320, 30)])
def test_bars_are_visible_and_nothing_scrolls_sideways(browser, shared_site, width, days):
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    for path in ("/", f"/items/{shared_site.site_api}", "/history?month=2026-10"):
        page.goto(f"http://{shared_site.server.address}{path}")
        assert page.evaluate("document.documentElement.scrollWidth") <= width, path
    page.goto(f"http://{shared_site.server.address}/")
    assert visible_marks(page) == [days] * 3
    context.close()


@pytest.mark.parametrize("javascript", [True, False])
def test_a_days_tooltip_is_reachable_by_keyboard(browser, shared_site, javascript):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, java_script_enabled=javascript)
    page = context.new_page()
    page.goto(f"http://{shared_site.server.address}/")
    for _ in range(10):  # past the header's links and the first item's name
        page.keyboard.press("Tab")
        if page.evaluate("!!document.activeElement.closest('ol.bar')"):
            break
    focused = page.evaluate("document.activeElement.outerHTML")
    tooltip = page.evaluate("getComputedStyle(document.activeElement, '::after').content")
    assert "Website" in page.evaluate("document.activeElement.closest('li.item').querySelector('h2').innerText")
    if javascript:  # one tab stop per bar: today's mark; the arrow keys move along the days
        assert "30 Dec 2026: no downtime" in focused and "30 Dec 2026: no downtime" in tooltip
        page.keyboard.press("ArrowLeft")
        tooltip = page.evaluate("getComputedStyle(document.activeElement, '::after').content")
        assert "29 Dec 2026: no downtime" in tooltip
        page.keyboard.press("Tab")
        assert not page.evaluate("!!document.activeElement.closest('ol.bar')")
    else:  # without the script every day is a link of its own, in order
        assert "2 Oct 2026: no downtime" in focused and "2 Oct 2026: no downtime" in tooltip
    context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("path", ["/", "/items", "/history?month=2026-10"])
def test_pages_pass_axe_in_light_and_dark(browser, shared_site, scheme, path):
    from axe_playwright_python.sync_playwright import Axe
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
    page = context.new_page()
    page.goto(f"http://{shared_site.server.address}{path.replace('/items', f'/items/{shared_site.site_api}')}")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == ("rgb(246, 247, 249)" if scheme == "light" else "rgb(13, 17, 23)")
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()
    context.close()


def test_a_page_of_hundreds_of_items_leaves_the_bars_to_the_item_pages(site):
    with database(site.server) as conn:  # (written by another process: the server follows)
        conn.executemany("INSERT INTO items (id, name, created_ns, updated_ns) VALUES (?, ?, ?, ?)",
                         [(f"01BULK{n:020d}", f"Bulk {n}", n + 1, n + 1) for n in range(200)])
    assert after_another_writer(lambda: site.page().count('<ol class="bar"') == 200)
    site.add("One more")
    html = site.page()
    assert '<ol class="bar"' not in html and html.count('<li class="item"') == 201
    assert '<ol class="bar"' in site.page("/items/01BULK00000000000000000007")
    # GetUptime answers up to 100,000 item-days; more is refused before any work, saying what to ask instead.
    assert len(site.rpc("HistoryService/GetUptime", days=366)["items"]) == 201
    with database(site.server) as conn:
        conn.executemany("INSERT INTO items (id, name, created_ns, updated_ns) VALUES (?, ?, ?, ?)",
                         [(f"01MORE{n:020d}", f"More {n}", n + 1, n + 1) for n in range(100)])
    assert after_another_writer(
        lambda: site.server.post(f"{RPC_PREFIX}.HistoryService/GetUptime", '{"days": 366}')[0] == 429)
    status, _, answer = site.server.post(f"{RPC_PREFIX}.HistoryService/GetUptime", '{"days": 366}')
    assert status == 429 and "ask for fewer items (item_ids) or days" in json.loads(answer)["message"]
    assert len(site.rpc("HistoryService/GetUptime", days=90)["items"]) == 301
