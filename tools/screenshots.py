"""Take the README's screenshots: python tools/screenshots.py (needs the test extras and Debian's chromium).

Starts statusthing.py on a temporary database, fills it with a small, plausible status page, and saves the
public and admin pages at desktop and phone width under docs/.
"""
import json
import pathlib
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from conftest import ADMIN, CHROMIUM, Server  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402


def rpc(server, method, body):
    status, _, answer = server.post(f"/statusthing.v1.{method}", json.dumps(body))
    assert status == 200, answer
    return json.loads(answer)


def seed(server):
    statuses = {s["name"]: s["id"] for s in rpc(server, "StatusService/ListStatus", {})["statuses"]}
    investigating = rpc(server, "StatusService/AddStatus", {"name": "Investigating", "color": "#FFA500",
                                                            "kind": "STATUS_KIND_INVESTIGATING"})["status"]["id"]
    rpc(server, "ItemsService/AddItem", {"name": "Website", "description": "www.example.com",
                                         "initialStatusId": statuses["UP"]})
    api = rpc(server, "ItemsService/AddItem", {"name": "Public API", "description": "api.example.com and webhooks",
                                               "initialStatusId": investigating,
                                               "initialNoteText": "Some requests time out; we are looking into it."}
              )["item"]
    rpc(server, "NotesService/AddNote", {"itemId": api["id"], "noteText": "Cause found: a slow database replica. "
                                                                          "A fix is being deployed."})
    rpc(server, "ItemsService/AddItem", {"name": "Payments", "description": "Card and bank payments",
                                         "initialStatusId": statuses["UP"]})
    rpc(server, "ItemsService/AddItem", {"name": "Email delivery", "initialStatusId": statuses["WARNING"],
                                         "initialNoteText": "Delays of up to 10 minutes for some providers."})


def main():
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(pathlib.Path(tmp) / "st.db", pathlib.Path(tmp) / "log", "--title", "Example Inc. status")
        try:
            seed(server)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
                    "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"])
                for name, width, height in (("desktop", 1280, 900), ("phone", 390, 844)):
                    context = browser.new_context(viewport={"width": width, "height": height},
                                                  http_credentials={"username": ADMIN[0], "password": ADMIN[1]})
                    page = context.new_page()
                    for path, label in (("/", "public"), ("/admin", "admin")):
                        page.goto(f"http://{server.address}{path}")
                        page.wait_for_load_state("networkidle")
                        page.screenshot(path=str(ROOT / "docs" / f"{label}-{name}.png"), full_page=(label == "public"))
                    context.close()
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
