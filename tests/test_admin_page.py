"""The admin page in headless Chromium, as an operator uses it during an incident: post an update (a status and a
note in one write), keyboard use, notes edited in place, statuses with their condition, the audit trail in words,
a phone's width, sign-out, and axe-core's accessibility rules."""
import json
import re
import sqlite3

import pytest

from playwright.sync_api import expect

import statusthing
from conftest import ADMIN, ADMIN_AUTH, Server, basic, cli, database, status_id
from conftest import json_rpc as rpc

RPC = "/statusthing.v1"


def audit_rows(server):
    with database(server) as conn:
        return conn.execute("SELECT rpc, changes FROM audit_log ORDER BY id").fetchall()


@pytest.fixture
def admin(browser, server):
    """The admin page, signed in; any page error or unexpected dialog fails the test."""
    context = browser.new_context(http_credentials={"username": ADMIN[0], "password": ADMIN[1]},
                                  viewport={"width": 1100, "height": 900})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Confirmations: a test lists the answers it will give (True accepts); any other dialog is an error.
    page.dialog_answers, page.dialog_messages = [], []

    def on_dialog(dialog):
        page.dialog_messages.append(dialog.message)
        if not page.dialog_answers:
            errors.append(f"unexpected dialog: {dialog.message}")
        dialog.accept() if page.dialog_answers and page.dialog_answers.pop(0) else dialog.dismiss()

    page.on("dialog", on_dialog)
    page.open = lambda: (page.goto(f"http://{server.address}/admin"), page.wait_for_selector("#items .item, #items p"))
    page.open()
    yield page
    assert errors == []
    context.close()


def item_row(page, name):
    return page.locator(f'#items .item[data-name="{name}"]')


def test_posting_an_update_is_one_write_and_shows_on_the_public_page(browser, server, admin):
    rpc(server, "ItemsService/AddItem", {"name": "Payments", "initialStatusId": status_id(server, "UP")})
    admin.open()
    row = item_row(admin, "Payments")
    row.locator("summary", has_text="Post an update").click()
    row.locator("select").select_option(label="DOWN — Major outage")
    row.locator("textarea").fill("Card payments fail.\nWe are on it.")
    writes_before = len(audit_rows(server))
    row.locator("button", has_text="Post update").click()
    admin.locator('#items .item[data-name="Payments"] .done', has_text="Update posted.").wait_for()
    rpc_name, changes = audit_rows(server)[writes_before]
    assert len(audit_rows(server)) == writes_before + 1 and rpc_name == "UpdateItem"
    assert json.loads(changes)["note"] == [None, "Card payments fail.\nWe are on it."]
    row = item_row(admin, "Payments")
    assert row.locator(".item-line .condition").inner_text() == "Major outage (DOWN)"
    assert row.locator("textarea").input_value() == ""  # the note went out; the form stays open for the next one
    viewer = browser.new_context().new_page()
    viewer.goto(f"http://{server.address}/")
    assert viewer.locator(".overall").inner_text() == "Major outage: Payments"
    assert "Card payments fail.\nWe are on it." in viewer.locator(".item", has_text="Payments").inner_text()
    viewer.context.close()
    # Nothing to post is said, not sent.
    row.locator("button", has_text="Post update").click()
    assert row.locator(".error").inner_text() == "Choose another status or write a note to post."
    assert len(audit_rows(server)) == writes_before + 1


def test_the_keyboard_changes_nothing_until_the_update_is_posted(server, admin):
    rpc(server, "ItemsService/AddItem", {"name": "Search", "initialStatusId": status_id(server, "UP")})
    admin.open()
    row = item_row(admin, "Search")
    row.locator("summary", has_text="Post an update").focus()
    admin.keyboard.press("Enter")  # opens it
    admin.keyboard.press("Tab")
    assert admin.evaluate("document.activeElement.tagName") == "SELECT"
    writes_before = len(audit_rows(server))
    for _ in range(3):
        admin.keyboard.press("ArrowDown")  # moving through the statuses saves nothing
    admin.keyboard.press("Tab")
    admin.keyboard.type("Slower than usual.")
    admin.keyboard.press("Tab")
    assert admin.evaluate("document.activeElement.textContent") == "Post update"
    assert len(audit_rows(server)) == writes_before
    admin.keyboard.press("Enter")
    admin.locator('#items .item[data-name="Search"] .done', has_text="Update posted.").wait_for()
    assert len(audit_rows(server)) == writes_before + 1
    # After the save the focus is where it was, on the rebuilt page.
    assert admin.evaluate("document.activeElement.textContent") == "Post update"
    assert admin.evaluate("document.activeElement.closest('.item').dataset.name") == "Search"


def test_notes_are_edited_in_place(server, admin):
    item = rpc(server, "ItemsService/AddItem", {"name": "Mail", "initialNoteText": "Delays of 10 minutes"})["item"]
    admin.open()
    row = item_row(admin, "Mail")
    row.locator("summary", has_text="Edit").click()
    row.locator(".notes button", has_text="Edit").click()
    field = row.locator(".notes textarea")
    assert field.input_value() == "Delays of 10 minutes"
    assert admin.evaluate("document.activeElement.tagName") == "TEXTAREA"
    field.press("Escape")  # cancel: the text is back, unchanged
    assert row.locator(".notes p").inner_text() == "Delays of 10 minutes"
    row.locator(".notes button", has_text="Edit").click()
    row.locator(".notes textarea").fill("Delays of up to 30 minutes.\nWe are working on it.")
    row.locator(".notes button", has_text="Save note").click()
    expect(item_row(admin, "Mail").locator(".notes p")).to_have_text(
        "Delays of up to 30 minutes.\nWe are working on it.")
    note = rpc(server, "ItemsService/GetItem", {"itemId": item["id"]})["item"]["notes"][0]
    assert note["text"] == "Delays of up to 30 minutes.\nWe are working on it."
    assert admin.evaluate("document.activeElement.textContent") == "Edit"  # back on the note's Edit button


def test_items_are_edited_grouped_ordered_and_deleted_after_asking(server, admin):
    rpc(server, "ItemsService/AddItem", {"name": "Doomed"})
    rpc(server, "ItemsService/AddItem", {"name": "Web"})
    admin.open()
    row = item_row(admin, "Web")
    row.locator("summary", has_text="Edit").click()
    row.locator("input[name=group]").fill("Platform")
    row.locator("input[name=position]").fill("-5")
    row.locator("button", has_text="Save").click()
    expect(admin.locator("#items .item").first).to_have_attribute("data-name", "Web")
    item = next(i for i in rpc(server, "ItemsService/ListItems", {})["items"] if i["name"] == "Web")
    assert item["group"] == "Platform" and item["position"] == -5
    assert "in Platform" in item_row(admin, "Web").inner_text()
    doomed = item_row(admin, "Doomed")
    doomed.locator("summary", has_text="Edit").click()
    admin.dialog_answers.append(False)
    doomed.locator("button", has_text="Delete item").click()
    assert admin.dialog_messages == ['Delete "Doomed" and all its notes and history?'] and doomed.count() == 1
    admin.dialog_answers.append(True)
    doomed.locator("button", has_text="Delete item").click()
    doomed.wait_for(state="detached")


def test_errors_appear_next_to_their_cause(server, admin):
    rpc(server, "ItemsService/AddItem", {"name": "Taken", "initialStatusId": status_id(server, "DOWN")})
    admin.open()
    admin.locator("#add-item input[name=name]").fill("Taken")
    admin.locator("#add-item button").click()
    error = admin.locator("#add-item + .error")
    error.wait_for()
    assert error.inner_text() == 'an item named "Taken" already exists'
    admin.dialog_answers.append(True)
    admin.locator("#statuses tr[data-name=DOWN] button", has_text="Delete").click()
    status_error = admin.locator("#statuses tr[data-name=DOWN] .error")
    status_error.wait_for()
    assert "used by 1 item" in status_error.inner_text()


def test_statuses_show_their_colour_and_condition(server, admin):
    form = admin.locator("#add-status")
    form.locator("input[name=name]").fill("Planned work")
    form.locator("select[name=kind]").select_option("STATUS_KIND_OBSERVING")
    form.locator("select[name=condition]").select_option(label="Under maintenance")
    form.locator("input[name=color]").fill("#3366ff")
    form.locator("button").click()
    row = admin.locator('#statuses tr[data-name="Planned work"]')
    row.wait_for()
    assert row.locator(".condition").inner_text() == "Under maintenance (Planned work)"
    assert row.locator(".swatch").evaluate("node => getComputedStyle(node).backgroundColor") == "rgb(51, 102, 255)"
    assert admin.locator("#statuses tr[data-name=DOWN] .condition").inner_text() == "Major outage (DOWN)"
    row.locator("select.condition-select").select_option("")  # back to following the kind
    row.locator("button", has_text="Save").click()
    expect(row.locator(".condition")).to_have_text("Degraded performance (Planned work)")


def test_typed_values_stay_text(server, admin):
    rpc(server, "ItemsService/AddItem", {"name": "<img src=x onerror=alert(1)>", "initialNoteText": "<b>hi</b>"})
    admin.open()
    assert admin.locator("#items .item-name").first.inner_text() == "<img src=x onerror=alert(1)>"
    assert admin.locator("#items img").count() == 0 and admin.locator("#items .notes b").count() == 0


def test_the_audit_trail_reads_as_sentences_filtered_and_paged(server, admin):
    down, up = status_id(server, "DOWN"), status_id(server, "UP")
    api = rpc(server, "ItemsService/AddItem", {"name": "API", "initialStatusId": up})["item"]
    rpc(server, "ItemsService/AddItem", {"name": "Other"})
    rpc(server, "ItemsService/UpdateItem", {"itemId": api["id"], "statusId": down, "noteText": "It broke."})
    rpc(server, "StatusService/UpdateStatus", {"statusId": down, "name": "Down hard"})
    rpc(server, "ItemsService/AddItem", {"name": "Gone"})
    gone = next(i for i in rpc(server, "ItemsService/ListItems", {})["items"] if i["name"] == "Gone")
    rpc(server, "ItemsService/DeleteItem", {"itemId": gone["id"]})
    for n in range(55):
        rpc(server, "NotesService/AddNote", {"itemId": api["id"], "noteText": f"note {n}"})
    admin.open()
    admin.locator("#show-audit").click()
    rows = admin.locator("#audit tbody tr")
    rows.first.wait_for()
    assert rows.count() == 50 and rows.first.locator("td").nth(2).inner_text() == 'Added a note to “API”: “note 54”'
    admin.locator("#older-audit").click()
    expect(rows).to_have_count(61)
    texts = rows.locator("td:nth-child(3)").all_inner_texts()
    assert texts[-6:] == ['Deleted item “Gone”', 'Added item “Gone”',
                          'Changed status “Down hard”: name “DOWN” → “Down hard”',
                          'Changed “API”: status “UP” → “Down hard”; note “It broke.”',  # (statuses by their names now)
                          'Added item “Other”', 'Added item “API”: status “UP”']
    assert admin.locator("#older-audit").is_hidden()
    # Filtered by item: its own writes and its notes', nothing else.
    admin.locator("#audit-filter select[name=item]").select_option(label="API")
    admin.locator("#show-audit").click()
    expect(admin.locator("#audit")).not_to_contain_text("Other")
    expect(rows).to_have_count(50)
    admin.locator("#older-audit").click()
    expect(rows).to_have_count(57)
    assert "Other" not in admin.locator("#audit").inner_text()
    # By who: everyone here is admin; nobody else is listed.
    assert admin.locator("#audit-filter select[name=actor] option").all_inner_texts() == ["Everyone", "admin"]


def test_default_password_banner_and_changing_it(server, admin):
    banner = admin.locator("#default-password-banner")
    banner.wait_for()
    assert banner.is_visible()
    form = admin.locator("#change-password")
    form.locator("input[name=current]").fill(ADMIN[1])
    form.locator("input[name=next]").fill("a new strong one")
    form.locator("input[name=again]").fill("a new strong one")
    form.locator("button").click()
    admin.locator("#password-done").wait_for()
    assert not banner.is_visible()
    assert rpc(server, "ItemsService/AddItem", {"name": "by-new"}, auth=basic("admin", "a new strong one"))


def test_signing_out_makes_the_browser_forget_the_password(browser, server):
    # Credentials as a person's browser keeps them after typing them once (not re-sent by the test harness).
    context = browser.new_context()
    page = context.new_page()
    assert page.goto(f"http://{ADMIN[0]}:{ADMIN[1]}@{server.address}/admin").status == 200
    assert page.goto(f"http://{server.address}/admin").status == 200  # remembered
    page.locator("#sign-out").click()
    page.wait_for_url("**/admin/logout")
    assert "You are signed out." in page.locator("main").inner_text()
    with pytest.raises(Exception, match="ERR_INVALID_AUTH_CREDENTIALS"):
        page.goto(f"http://{server.address}/admin")  # asked again (headless, nobody can answer)
    context.close()


@pytest.mark.parametrize("width", [320, 390])
def test_the_page_fits_a_phone(browser, server, width):
    rpc(server, "ItemsService/AddItem", {"name": "Payments", "initialStatusId": status_id(server, "DOWN")})
    for n in range(3):
        rpc(server, "ItemsService/AddItem", {"name": f"A-rather-long-system-name-without-spaces-{n}" * 2,
                                             "initialStatusId": status_id(server, "WARNING"),
                                             "initialNoteText": "word " * 40})
    context = browser.new_context(viewport={"width": width, "height": 700},
                                  http_credentials={"username": ADMIN[0], "password": ADMIN[1]})
    page = context.new_page()
    page.goto(f"http://{server.address}/admin")
    page.wait_for_selector("#items .item")
    # One compact row per item: its name, condition, and the two actions that open on demand.
    assert page.locator('#items .item[data-name="Payments"]').bounding_box()["height"] < 130
    page.locator("#items .item summary", has_text="Post an update").first.click()
    page.locator("#items .item summary", has_text="Edit").first.click()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_page_passes_axe(browser, server, scheme):
    from axe_playwright_python.sync_playwright import Axe
    rpc(server, "ItemsService/AddItem", {"name": "Checked", "initialStatusId": status_id(server, "DOWN"),
                                         "initialNoteText": "A note"})
    rpc(server, "MaintenanceService/AddMaintenance", {"title": "Checked upgrade", "startsAt": "2099-01-01T10:00:00Z",
                                                      "endsAt": "2099-01-01T11:00:00Z"})
    rpc(server, "WebhookService/AddWebhook", {"url": "http://127.0.0.1:9/hook"})
    context = browser.new_context(viewport={"width": 1100, "height": 900}, color_scheme=scheme,
                                  http_credentials={"username": ADMIN[0], "password": ADMIN[1]})
    page = context.new_page()
    page.goto(f"http://{server.address}/admin")
    page.wait_for_selector("#items .item")
    page.locator("#items .item summary").first.click()
    page.locator("#show-audit").click()
    page.wait_for_selector("#audit tbody tr")
    page.wait_for_selector("#maintenances tbody tr")
    page.locator("#webhooks summary").first.click()
    page.wait_for_selector("#webhooks .deliveries :is(table, p)")
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()
    context.close()


# -- maintenance, webhooks and subscribers ----------------------------------------------------------------------

LOCAL_MINUTE = """minutes => {  // a datetime-local value, in the browser's time zone, this many minutes from now
  const d = new Date(Date.now() + minutes * 60000), p = n => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}"""


def plan(page, title, start_minutes, end_minutes, item=None):
    form = page.locator("#add-maintenance")
    form.locator('input[name="title"]').fill(title)
    form.locator('input[name="starts"]').fill(page.evaluate(LOCAL_MINUTE, start_minutes))
    form.locator('input[name="ends"]').fill(page.evaluate(LOCAL_MINUTE, end_minutes))
    if item:
        form.locator('select[name="items"]').select_option(label=item)
    form.locator("button").click()
    return page.locator("#maintenances tr", has_text=title)


def test_maintenance_is_planned_completed_cancelled_and_deleted_on_the_admin_page(browser, server, admin):
    rpc(server, "ItemsService/AddItem", {"name": "Queue", "initialStatusId": status_id(server, "UP")})
    admin.open()
    running = plan(admin, "Broker upgrade", -1, 60, item="Queue")
    expect(running.locator("td").nth(3)).to_have_text("In progress")
    expect(running.locator("td").nth(2)).to_have_text("Queue")
    [window] = rpc(server, "MaintenanceService/ListMaintenances", {})["maintenances"]
    length = statusthing.parse_rfc3339_ns(window["endsAt"]) - statusthing.parse_rfc3339_ns(window["startsAt"])
    assert length == 61 * 60 * 10 ** 9
    viewer = browser.new_context().new_page()
    viewer.goto(f"http://{server.address}/")
    assert "Under maintenance" in viewer.locator(".item", has_text="Queue").inner_text()
    assert "Broker upgrade" in viewer.locator("#maintenance").locator("..").inner_text()
    running.locator("button", has_text="Complete now").click()
    expect(running.locator("td").nth(3)).to_have_text("Completed")
    viewer.reload()
    assert "Under maintenance" not in viewer.locator(".item", has_text="Queue").inner_text()
    viewer.context.close()

    later = plan(admin, "Disk swap", 24 * 60, 25 * 60)
    expect(later.locator("td").nth(2)).to_have_text("The whole page")
    later.locator("button", has_text="Cancel").click()
    expect(later.locator("td").nth(3)).to_have_text("Cancelled")
    admin.dialog_answers.append(True)
    later.locator("button", has_text="Delete").click()
    expect(later).to_have_count(0)
    # A window that ends before it starts is refused next to the form, and nothing is added.
    plan(admin, "Backwards", 60, 30)
    expect(admin.locator("#add-maintenance + p + .error")).not_to_be_empty()
    assert len(rpc(server, "MaintenanceService/ListMaintenances", {})["maintenances"]) == 1
    assert [r for r, _ in audit_rows(server)][-5:] == ["AddMaintenance", "UpdateMaintenance", "AddMaintenance",
                                                       "UpdateMaintenance", "DeleteMaintenance"]


def test_webhooks_are_added_tested_inspected_and_deleted_on_the_admin_page(server, admin, receiver):
    form = admin.locator("#add-webhook")
    form.locator('input[name="url"]').fill(receiver.url)
    form.locator('select[name="events"]').select_option(["item.created", "incident.opened"])
    form.locator('select[name="format"]').select_option("statuspage")
    form.locator("button").click()
    secret = admin.locator("#webhook-secret code")
    expect(secret).to_have_text(re.compile(r"^whsec_"))
    row = admin.locator("#webhooks .item", has_text=receiver.url)
    expect(row).to_contain_text("item.created, incident.opened · Statuspage bodies")
    row.locator("button", has_text="Send a test").click()
    expect(row.locator("button", has_text="Test delivered (200)")).to_be_visible()
    assert json.loads(receiver.requests[-1]["body"])["page"]["id"]  # a Statuspage-shaped ping
    row.locator("summary", has_text="Deliveries").click()
    expect(row.locator(".deliveries tbody tr")).to_have_count(1)
    expect(row.locator(".deliveries tbody tr td").nth(1)).to_have_text("ping")
    expect(row.locator(".deliveries tbody tr td").nth(2)).to_contain_text("delivered · 200")
    admin.open()
    assert "whsec_" not in admin.content()  # shown once only
    admin.dialog_answers.append(True)
    admin.locator("#webhooks .item button", has_text="Delete").click()
    expect(admin.locator("#webhooks")).to_contain_text("No webhooks yet.")


def test_the_subscribers_section_says_when_e_mail_is_off(admin):
    expect(admin.locator("#subscribers")).to_contain_text("E-mail is off: start the server with --smtp-url")


# -- the audit API the page reads ----------------------------------------------------------------------------------

def get_audit(server, query, auth=ADMIN_AUTH):
    conn = server.http()
    conn.request("GET", f"/admin/api/audit?{query}", headers={"Authorization": auth})
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def test_the_audit_api_filters_pages_and_names(server):
    bob = basic("bob", "bobs password")
    rpc(server, "ItemsService/AddItem", {"name": "seed"})
    assert cli(server, "user", "add", "bob", "--stdin", stdin="bobs password\n").returncode == 0
    item = rpc(server, "ItemsService/AddItem", {"name": "Billing", "initialStatusId": status_id(server, "UP")})["item"]
    note = rpc(server, "NotesService/AddNote", {"itemId": item["id"], "noteText": "one"}, auth=bob)["note"]
    rpc(server, "NotesService/UpdateNote", {"noteId": note["id"], "noteText": "two"})
    status, page = get_audit(server, f"item={item['id']}&limit=2")
    assert status == 200 and [e["rpc"] for e in page["entries"]] == ["UpdateNote", "AddNote"]
    assert all(e["itemId"] == item["id"] for e in page["entries"]) and page["names"][item["id"]] == "Billing"
    status, rest = get_audit(server, f"item={item['id']}&limit=2&before={page['next']}")
    assert [e["rpc"] for e in rest["entries"]] == ["AddItem"] and "next" not in rest
    assert rest["names"][status_id(server, "UP")] == "UP"
    status, by_bob = get_audit(server, "actor=bob")
    assert [e["rpc"] for e in by_bob["entries"]] == ["AddNote"] and set(by_bob["actors"]) >= {"admin", "bob"}
    for bad in ("limit=0", "limit=x", "before=-1", "limit=5&limit=6", "item=" + "x" * 65):
        status, error = get_audit(server, bad)
        assert status == 400 and error["code"] == "invalid_argument", bad


@pytest.mark.sqlite_only
def test_old_audit_entries_are_filed_under_their_items(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    statusthing.migrate(conn, statusthing.MIGRATIONS[:5])
    conn.execute("INSERT INTO items (id, name, created_ns, updated_ns) VALUES ('I1', 'Old', 1, 1)")
    conn.execute("INSERT INTO notes (id, item_id, text, created_ns, updated_ns) VALUES ('N1', 'I1', 'x', 1, 1)")
    for rpc_name, target, changes in (("AddItem", "I1", {"name": [None, "Old"]}),
                                      ("AddNote", "N1", {"item_id": [None, "I1"], "text": [None, "x"]}),
                                      ("UpdateNote", "N1", {"text": ["x", "y"]}),
                                      ("AddNote", "N2", {"item_id": [None, "I1"], "text": [None, "gone"]}),
                                      ("DeleteNote", "N2", {"item_id": ["I1", None], "text": ["gone", None]}),
                                      ("AddStatus", "S1", {"name": [None, "New"]})):
        conn.execute("INSERT INTO audit_log (time_ns, actor, actor_kind, client, rpc, target_id, changes) "
                     "VALUES (1, 'admin', 'user', 'x', ?, ?, ?)", (rpc_name, target, json.dumps(changes)))
    conn.close()
    server = Server(path, tmp_path / "server.log")
    try:
        status, page = get_audit(server, "item=I1")
        assert [e["rpc"] for e in page["entries"]] == ["DeleteNote", "AddNote", "UpdateNote", "AddNote", "AddItem"]
    finally:
        server.stop()
