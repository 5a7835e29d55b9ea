"""Take the README's screenshots: python tools/screenshots.py (needs the test extras and Debian's chromium).

Starts statusthing.py on a temporary database with a test clock, writes a plausible 90 days of history at the
times it happened (a few outages, an item added later, an incident going on now), and saves the public pages and
the admin page at desktop and phone width under docs/.
"""
import datetime
import json
import pathlib
import random
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from conftest import ADMIN, CHROMIUM, Clock, Server  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

NOW = datetime.datetime(2026, 11, 30, 14, 20, tzinfo=datetime.timezone.utc)


def rpc(server, method, body):
    status, _, answer = server.post(f"/statusthing.v1.{method}", json.dumps(body))
    assert status == 200, answer
    return json.loads(answer)


def at(clock, moment):
    clock.set(moment.isoformat().replace("+00:00", "Z"))


def seed(server, clock):
    """Returns the id of the item with an incident going on."""
    at(clock, NOW - datetime.timedelta(days=95))
    statuses = {s["name"]: s["id"] for s in rpc(server, "StatusService/ListStatus", {})["statuses"]}
    investigating = rpc(server, "StatusService/AddStatus", {"name": "Investigating", "color": "#FFA500",
                                                            "kind": "STATUS_KIND_INVESTIGATING"})["status"]["id"]
    partial = rpc(server, "StatusService/AddStatus", {"name": "Partly down", "color": "#F08000",
                                                      "kind": "STATUS_KIND_UNAVAILABLE"})["status"]["id"]
    up, down, warning = statuses["UP"], statuses["DOWN"], statuses["WARNING"]

    def add(name, description, group=""):
        return rpc(server, "ItemsService/AddItem", {"name": name, "description": description, "group": group,
                                                    "initialStatusId": up})["item"]["id"]
    items = {"Website": add("Website", "www.example.com"),
             "Public API": add("Public API", "api.example.com and webhooks", "Platform"),
             "Dashboard": add("Dashboard", "app.example.com", "Platform"),
             "Payments": add("Payments", "Card and bank payments", "Platform"),
             "Email delivery": add("Email delivery", "Receipts and notifications")}
    story = [  # (days ago, hour, item, [(minutes after, status, note)])
        (83, 9, "Payments", [(0, down, "Card payments fail. We are investigating."),
                             (38, up, "Fixed: a certificate had expired on the card processor link.")]),
        (61, 22, "Email delivery", [(0, warning, "Emails are delayed by up to 20 minutes."),
                                    (95, up, "The backlog is cleared.")]),
        (44, 14, "Public API", [(0, partial, "Some requests in the EU region fail."),
                                (25, investigating, "Traffic moved away from the failing region."),
                                (70, up, "Resolved. A follow-up is at https://example.com/postmortems/44")]),
        (19, 3, "Dashboard", [(0, down, "The dashboard does not load."), (12, up, "Back after a restart.")]),
        (6, 16, "Website", [(0, warning, "Pages load slowly."), (30, up, "Back to normal speed.")]),
        (2, 11, "Payments", [(0, partial, "Bank transfers are delayed."), (180, up, "All transfers went through.")]),
    ]
    rng = random.Random(7)
    for days_ago, hour, name, steps in story:
        start = NOW.replace(hour=hour, minute=rng.randrange(60)) - datetime.timedelta(days=days_ago)
        for minutes, status, note in steps:
            at(clock, start + datetime.timedelta(minutes=minutes))
            rpc(server, "ItemsService/UpdateItem", {"itemId": items[name], "statusId": status, "noteText": note})
    at(clock, NOW - datetime.timedelta(days=40))
    rpc(server, "ItemsService/AddItem", {"name": "Search", "description": "Added 40 days ago", "group": "Platform",
                                         "initialStatusId": up})
    at(clock, NOW - datetime.timedelta(minutes=50))
    rpc(server, "ItemsService/UpdateItem", {"itemId": items["Public API"], "statusId": investigating,
                                            "noteText": "Some requests time out.\nWe are looking into it."})
    at(clock, NOW - datetime.timedelta(minutes=20))
    rpc(server, "NotesService/AddNote", {"itemId": items["Public API"],
                                         "noteText": "Cause found: a slow database replica. A fix is being deployed."})
    at(clock, NOW)
    rpc(server, "MaintenanceService/AddMaintenance", {
        "title": "Database upgrade", "itemIds": [items["Public API"]],
        "description": "Writes to the API pause for up to five minutes while the database moves to new hardware.",
        "startsAt": (NOW + datetime.timedelta(days=2)).isoformat().replace("+00:00", "Z"),
        "endsAt": (NOW + datetime.timedelta(days=2, hours=1)).isoformat().replace("+00:00", "Z")})
    return items["Public API"]


def main():
    with tempfile.TemporaryDirectory() as tmp:
        clock = Clock(pathlib.Path(tmp) / "now")
        at(clock, NOW)
        # (No mail is sent: --smtp-url only has to be given for the page to offer subscriptions.)
        server = Server(pathlib.Path(tmp) / "st.db", pathlib.Path(tmp) / "log", "--title", "Example Inc. status",
                        "--smtp-url", "smtp://127.0.0.1:1", "--mail-from", "status@example.com", "--public-url",
                        "https://status.example.com", env={"STATUSTHING_CLOCK": clock.path})
        try:
            troubled = seed(server, clock)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
                    "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"])
                for name, width, height in (("desktop", 1280, 900), ("phone", 390, 844)):
                    context = browser.new_context(viewport={"width": width, "height": height}, timezone_id="UTC",
                                                  http_credentials={"username": ADMIN[0], "password": ADMIN[1]})
                    page = context.new_page()
                    page.clock.set_fixed_time(NOW)  # (the page's script says "20 minutes ago" of the server's now)
                    for path, label in (("/", "public"), (f"/items/{troubled}", "item"), ("/history", "history"),
                                        ("/admin", "admin")):
                        page.goto(f"http://{server.address}{path}")
                        page.wait_for_load_state("networkidle")
                        page.screenshot(path=str(ROOT / "docs" / f"{label}-{name}.png"), full_page=(label != "admin"))
                    context.close()
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
