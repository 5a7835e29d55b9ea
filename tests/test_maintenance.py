"""Scheduled maintenance (issue 12) at chosen times: the server's clock is a file the test writes, so a window
starts and ends when the test says, with no waiting and no scheduler. While a window is in progress its items read
as Under maintenance on the page, in uptime (not counted as observed time) and in the outside formats; its
transitions are told exactly once, across restarts and with two processes on one database."""
import json
import re

import pytest

from conftest import ADMIN_AUTH, RPC_PREFIX, Server, Site, assert_one_line_failure, cli, of_type

MAINTENANCE = "MaintenanceService"


def window(site, title, starts, ends, item_ids=(), description=""):
    return site.rpc(f"{MAINTENANCE}/AddMaintenance", title=title, description=description, itemIds=list(item_ids),
                    startsAt=starts, endsAt=ends)["maintenance"]


def state(site, maintenance_id):
    return site.rpc(f"{MAINTENANCE}/GetMaintenance", maintenanceId=maintenance_id)["maintenance"]["state"]


def rpc_error(site, method, **body):
    status, _, answer = site.server.post(f"{RPC_PREFIX}.{method}", json.dumps(body), auth=ADMIN_AUTH)
    assert status != 200, answer
    return json.loads(answer)["code"]


def component(site, item_id):
    status, _, body = site.get("/api/v2/components.json")
    assert status == 200
    return next(c for c in json.loads(body)["components"] if c["id"] == item_id)


def today(site, item_id):
    return site.rpc("HistoryService/GetUptime", itemIds=[item_id], days=1)["items"][0]["days"][0]


def told(receiver, event_type, maintenance_id):
    return [event for event in receiver.events()
            if event["type"] == event_type and event["data"]["maintenance"]["id"] == maintenance_id]


@pytest.fixture
def site(tmp_path):
    site = Site(tmp_path, start="2027-02-01T08:00:00Z", timezone="UTC")
    yield site
    site.stop()


@pytest.fixture
def hooked(site, receiver):
    """The site with a webhook that is told of maintenance."""
    site.rpc("WebhookService/AddWebhook", url=receiver.url,
             events=["maintenance.scheduled", "maintenance.started", "maintenance.completed", "maintenance.cancelled"])
    return site


def test_a_window_reads_under_maintenance_everywhere_while_it_is_in_progress(site):
    api_item, other = site.add("API"), site.add("Website")
    planned = window(site, "Database upgrade", "2027-02-01T10:00:00Z", "2027-02-01T12:00:00Z", [api_item],
                     "Writes pause for a few minutes.")
    assert planned["state"] == "MAINTENANCE_STATE_SCHEDULED"

    # Before: upcoming on the page (local time by the reader's browser, UTC in the markup), in the JSON and feeds.
    page = site.page()
    assert "Scheduled maintenance" in page and "Database upgrade" in page and "Writes pause" in page
    assert 'datetime="2027-02-01T10:00:00Z"' in page and "In progress" not in page
    upcoming = json.loads(site.get("/api/v2/scheduled-maintenances/upcoming.json")[2])["scheduled_maintenances"]
    assert [(m["id"], m["status"], m["scheduled_for"]) for m in upcoming] == [
        (planned["id"], "scheduled", "2027-02-01T10:00:00.000Z")]
    assert component(site, api_item)["status"] == "operational"
    assert "Database upgrade" in site.get("/history.atom")[2] and "Database upgrade" in site.get("/history.rss")[2]

    site.at("2027-02-01T10:30:00Z")
    assert state(site, planned["id"]) == "MAINTENANCE_STATE_IN_PROGRESS"
    page = site.page()
    assert "In progress" in page
    assert re.search(r'data-condition="maintenance"[^>]*>[^<]*</span>', page) or "Under maintenance" in page
    assert component(site, api_item)["status"] == "under_maintenance"
    assert component(site, other)["status"] == "operational"
    active = json.loads(site.get("/api/v2/scheduled-maintenances/active.json")[2])["scheduled_maintenances"]
    assert [(m["id"], m["status"]) for m in active] == [(planned["id"], "in_progress")]
    assert "Under maintenance" in site.page(f"/items/{api_item}")
    assert "maintenance" in site.get(f"/badge/{api_item}.svg")[2].lower()
    day = today(site, api_item)
    assert day["maintenanceSeconds"] == "1800" and day["observedSeconds"] == str(2 * 3600)  # 08:00-10:00
    assert today(site, other)["observedSeconds"] == str(int(2.5 * 3600))

    site.at("2027-02-01T12:30:00Z")
    assert state(site, planned["id"]) == "MAINTENANCE_STATE_COMPLETED"
    assert component(site, api_item)["status"] == "operational"
    assert "Under maintenance" not in site.page(f"/items/{api_item}")
    day = today(site, api_item)
    assert day["maintenanceSeconds"] == str(2 * 3600) and day["observedSeconds"] == str(int(2.5 * 3600))
    assert day["worst"] == "CONDITION_OPERATIONAL"


def test_a_whole_page_window_covers_every_item_and_a_problem_in_it_opens_no_incident(site):
    item = site.add("Queue")
    window(site, "Network move", "2027-02-01T09:00:00Z", "2027-02-01T11:00:00Z")
    site.at("2027-02-01T09:30:00Z")
    site.set(item, "DOWN", "rebooting the switches")
    assert component(site, item)["status"] == "under_maintenance"
    summary = json.loads(site.get("/api/v2/summary.json")[2])
    assert summary["incidents"] == [] and summary["status"]["indicator"] == "maintenance"
    assert site.rpc("HistoryService/ListIncidents").get("incidents", []) == []
    # Still down when the window ends: that is news, and the page shows the real condition again.
    site.at("2027-02-01T11:00:00Z")
    assert component(site, item)["status"] == "major_outage"


def test_transitions_are_told_once_also_across_a_restart_in_the_middle_of_a_window(hooked, receiver):
    site = hooked
    item = site.add("Mail")
    planned = window(site, "Mail migration", "2027-02-01T10:00:00Z", "2027-02-01T12:00:00Z", [item])
    receiver.wait(of_type("maintenance.scheduled"))
    site.at("2027-02-01T10:00:00Z")
    receiver.wait(of_type("maintenance.started"))
    site.restart()
    assert state(site, planned["id"]) == "MAINTENANCE_STATE_IN_PROGRESS"
    assert component(site, item)["status"] == "under_maintenance"
    site.at("2027-02-01T12:00:01Z")
    receiver.wait(of_type("maintenance.completed"))
    site.restart()
    site.at("2027-02-01T13:00:00Z")
    site.rpc(f"{MAINTENANCE}/ListMaintenances")  # (a request that reaches the restarted server before we look)
    events = [event["type"] for event in receiver.events()]
    assert events == ["maintenance.scheduled", "maintenance.started", "maintenance.completed"]
    assert len({request["headers"]["webhook-id"] for request in receiver.requests}) == 3


def test_two_processes_on_one_database_tell_each_transition_once(hooked, receiver, tmp_path):
    site = hooked
    second = Server(site.folder / "st.db", tmp_path / "second.log", *site.args,
                    env={"STATUSTHING_CLOCK": site.clock.path})
    try:
        for number in range(5):
            window(site, f"Patch {number}", f"2027-02-01T1{number}:00:00Z", f"2027-02-01T1{number}:30:00Z")
        receiver.wait(of_type("maintenance.scheduled"), 5)
        site.at("2027-02-01T16:00:00Z")  # every one has started and ended
        receiver.wait(of_type("maintenance.completed"), 5)
        receiver.wait(of_type("maintenance.started"), 5)
        # A window added through each process wakes its worker, which looks for transitions before it fans out:
        # once both are delivered, a transition told twice would have been too.
        for server in (site.server, second):
            status, _, _ = server.post(f"{RPC_PREFIX}.{MAINTENANCE}/AddMaintenance", json.dumps(
                {"title": server.address, "startsAt": "2027-03-01T10:00:00Z", "endsAt": "2027-03-01T11:00:00Z"}))
            assert status == 200
        receiver.wait(of_type("maintenance.scheduled"), 7)
        types = [event["type"] for event in receiver.events()]
        assert types.count("maintenance.started") == 5 and types.count("maintenance.completed") == 5
        assert len({request["headers"]["webhook-id"] for request in receiver.requests}) == len(receiver.requests)
    finally:
        second.stop()


def test_complete_early_and_cancel(hooked, receiver):
    site = hooked
    item = site.add("Search")
    running = window(site, "Reindex", "2027-02-01T09:00:00Z", "2027-02-01T15:00:00Z", [item])
    later = window(site, "Disk swap", "2027-02-02T09:00:00Z", "2027-02-02T10:00:00Z", [item])
    site.at("2027-02-01T10:00:00Z")
    assert rpc_error(site, f"{MAINTENANCE}/UpdateMaintenance", maintenanceId=running["id"], cancel=True) == \
        "failed_precondition"
    assert rpc_error(site, f"{MAINTENANCE}/UpdateMaintenance", maintenanceId=later["id"], completeNow=True) == \
        "failed_precondition"
    done = site.rpc(f"{MAINTENANCE}/UpdateMaintenance", maintenanceId=running["id"], completeNow=True)["maintenance"]
    assert done["state"] == "MAINTENANCE_STATE_COMPLETED" and done["endsAt"] == "2027-02-01T10:00:00Z"
    assert component(site, item)["status"] == "operational"
    cancelled = site.rpc(f"{MAINTENANCE}/UpdateMaintenance", maintenanceId=later["id"], cancel=True)["maintenance"]
    assert cancelled["state"] == "MAINTENANCE_STATE_CANCELLED"
    assert "Disk swap" not in site.page()
    receiver.wait(of_type("maintenance.cancelled"))
    receiver.wait(of_type("maintenance.completed"))
    site.at("2027-02-02T09:30:00Z")  # a cancelled window never starts
    assert component(site, item)["status"] == "operational"
    site.at("2027-02-03T00:00:00Z")
    site.rpc("ItemsService/AddItem", name="after")
    receiver.wait(of_type("maintenance.completed"))
    assert len(told(receiver, "maintenance.completed", running["id"])) == 1
    assert told(receiver, "maintenance.started", later["id"]) == []
    assert len(told(receiver, "maintenance.started", running["id"])) == 1


def test_changing_a_window(site):
    first, second = site.add("One"), site.add("Two")
    planned = window(site, "Upgrade", "2027-02-01T10:00:00Z", "2027-02-01T11:00:00Z", [first])
    changed = site.rpc(f"{MAINTENANCE}/UpdateMaintenance", maintenanceId=planned["id"], title="Bigger upgrade",
                       itemIds=[second], endsAt="2027-02-01T13:00:00Z")["maintenance"]
    assert (changed["title"], changed["itemIds"], changed["endsAt"]) == (
        "Bigger upgrade", [second], "2027-02-01T13:00:00Z")
    site.at("2027-02-01T12:00:00Z")
    assert component(site, second)["status"] == "under_maintenance"
    assert component(site, first)["status"] == "operational"


def test_a_window_added_afterwards_changes_the_past_days_uptime(site):
    item = site.add("Backups")
    site.at("2027-02-03T12:00:00Z")
    before = site.rpc("HistoryService/GetUptime", itemIds=[item], days=3)["items"][0]["days"]
    assert before[1]["observedSeconds"] == "86400" and before[1].get("maintenanceSeconds", "0") == "0"
    # Recorded after the fact: the night of the 2nd was maintenance, not observed time.
    past = window(site, "Restore test", "2027-02-02T00:00:00Z", "2027-02-02T06:00:00Z", [item])
    assert past["state"] == "MAINTENANCE_STATE_COMPLETED"
    after = site.rpc("HistoryService/GetUptime", itemIds=[item], days=3)["items"][0]["days"]
    assert after[1]["maintenanceSeconds"] == str(6 * 3600) and after[1]["observedSeconds"] == str(18 * 3600)
    site.rpc(f"{MAINTENANCE}/DeleteMaintenance", maintenanceId=past["id"])
    again = site.rpc("HistoryService/GetUptime", itemIds=[item], days=3)["items"][0]["days"]
    assert again[1]["observedSeconds"] == "86400" and again[1].get("maintenanceSeconds", "0") == "0"


def test_listing_is_by_start_filtered_by_state_and_paged(site):
    names = []
    for hour in (15, 9, 11, 13):
        names.append(window(site, f"At {hour}", f"2027-02-01T{hour}:00:00Z", f"2027-02-01T{hour}:30:00Z")["id"])
    site.at("2027-02-01T11:10:00Z")
    listed = site.rpc(f"{MAINTENANCE}/ListMaintenances")["maintenances"]
    assert [m["title"] for m in listed] == ["At 9", "At 11", "At 13", "At 15"]
    assert [m["state"] for m in listed] == ["MAINTENANCE_STATE_COMPLETED", "MAINTENANCE_STATE_IN_PROGRESS",
                                            "MAINTENANCE_STATE_SCHEDULED", "MAINTENANCE_STATE_SCHEDULED"]
    scheduled = site.rpc(f"{MAINTENANCE}/ListMaintenances", states=["MAINTENANCE_STATE_SCHEDULED"])["maintenances"]
    assert [m["title"] for m in scheduled] == ["At 13", "At 15"]
    first = site.rpc(f"{MAINTENANCE}/ListMaintenances", pageSize=3)
    rest = site.rpc(f"{MAINTENANCE}/ListMaintenances", pageSize=3, pageToken=first["nextPageToken"])
    assert [m["title"] for m in first["maintenances"] + rest["maintenances"]] == [m["title"] for m in listed]
    assert "nextPageToken" not in rest
    # Public, and cacheable as any public read: over Connect GET too.
    status, _, body = site.get(f"{RPC_PREFIX}.{MAINTENANCE}/ListMaintenances?encoding=json&message=%7B%7D")
    assert status == 200 and len(json.loads(body)["maintenances"]) == 4


@pytest.mark.parametrize("body, code", [
    ({"title": "", "startsAt": "2027-02-01T10:00:00Z", "endsAt": "2027-02-01T11:00:00Z"}, "invalid_argument"),
    ({"title": "x" * 201, "startsAt": "2027-02-01T10:00:00Z", "endsAt": "2027-02-01T11:00:00Z"},
     "invalid_argument"),
    ({"title": "No start", "endsAt": "2027-02-01T11:00:00Z"}, "invalid_argument"),
    ({"title": "No end", "startsAt": "2027-02-01T11:00:00Z"}, "invalid_argument"),
    ({"title": "Backwards", "startsAt": "2027-02-01T11:00:00Z", "endsAt": "2027-02-01T10:00:00Z"},
     "invalid_argument"),
    ({"title": "Empty", "startsAt": "2027-02-01T11:00:00Z", "endsAt": "2027-02-01T11:00:00Z"}, "invalid_argument"),
    ({"title": "Nothing", "itemIds": ["01NOSUCHITEM0000000000000"], "startsAt": "2027-02-01T10:00:00Z",
      "endsAt": "2027-02-01T11:00:00Z"}, "not_found"),
    ({"title": "Bad id", "itemIds": [""], "startsAt": "2027-02-01T10:00:00Z", "endsAt": "2027-02-01T11:00:00Z"},
     "invalid_argument"),
])
def test_bad_windows_are_refused_and_write_nothing(site, body, code):
    assert rpc_error(site, f"{MAINTENANCE}/AddMaintenance", **body) == code
    assert site.rpc(f"{MAINTENANCE}/ListMaintenances").get("maintenances", []) == []


def test_maintenance_needs_credentials_to_change_and_ids_that_exist(site):
    status, _, answer = site.server.post(f"{RPC_PREFIX}.{MAINTENANCE}/AddMaintenance", json.dumps(
        {"title": "x", "startsAt": "2027-02-01T10:00:00Z", "endsAt": "2027-02-01T11:00:00Z"}), auth=None)
    assert status == 401 and json.loads(answer)["code"] == "unauthenticated"
    for method in ("GetMaintenance", "UpdateMaintenance", "DeleteMaintenance"):
        assert rpc_error(site, f"{MAINTENANCE}/{method}", maintenanceId="01NOSUCHMAINTENANCE") == "not_found"
        assert rpc_error(site, f"{MAINTENANCE}/{method}") == "invalid_argument"
    planned = window(site, "Done soon", "2027-02-01T08:10:00Z", "2027-02-01T08:20:00Z")
    site.at("2027-02-01T09:00:00Z")
    assert rpc_error(site, f"{MAINTENANCE}/UpdateMaintenance", maintenanceId=planned["id"],
                     endsAt="2027-02-01T10:00:00Z") == "failed_precondition"
    assert state(site, planned["id"]) == "MAINTENANCE_STATE_COMPLETED"



def test_the_command_line_plans_lists_completes_and_cancels(site):
    item = site.add("Payments")
    added = cli(site.server.db_path, "--timezone", "Europe/Berlin", "maintenance", "add", "PSP switch",
                "--start", "2027-02-01T12:00", "--end", "2027-02-01T14:00+01:00", "--item", "Payments",
                "--description", "Card payments pause.", env={"STATUSTHING_CLOCK": site.clock.path})
    assert added.returncode == 0, added.stderr
    first = added.stdout.strip()
    got = site.rpc(f"{MAINTENANCE}/GetMaintenance", maintenanceId=first)["maintenance"]
    assert (got["startsAt"], got["endsAt"], got["itemIds"]) == ("2027-02-01T11:00:00Z", "2027-02-01T13:00:00Z",
                                                                 [item])
    second = cli(site.server, "maintenance", "add", "Later", "--start", "2027-02-02T10:00Z", "--end",
                 "2027-02-02T11:00Z", env={"STATUSTHING_CLOCK": site.clock.path}).stdout.strip()
    listed = cli(site.server, "maintenance", "list").stdout.splitlines()
    assert [line.split()[:2] for line in listed] == [[first, "scheduled"], [second, "scheduled"]]
    site.at("2027-02-01T11:30:00Z")
    assert "under_maintenance" == component(site, item)["status"]
    clock = {"STATUSTHING_CLOCK": site.clock.path}
    assert cli(site.server, "maintenance", "complete", first, env=clock).returncode == 0
    assert component(site, item)["status"] == "operational"
    assert cli(site.server, "maintenance", "cancel", second, env=clock).returncode == 0
    assert state(site, second) == "MAINTENANCE_STATE_CANCELLED"
    assert_one_line_failure(cli(site.server, "maintenance", "cancel", second, env=clock), "cancelled")
    assert_one_line_failure(cli(site.server, "maintenance", "add", "x", "--start", "soon", "--end", "later"),
                            "--start")
    assert_one_line_failure(cli(site.server, "maintenance", "add", "x", "--start", "2027-02-03T10:00", "--end",
                                "2027-02-03T11:00", "--item", "No such thing"), "No such thing")
    assert cli(site.server, "maintenance", "del", second).returncode == 0
    assert len(cli(site.server, "maintenance", "list").stdout.splitlines()) == 1
