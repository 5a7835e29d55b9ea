"""Webhooks (issue 12) against a real HTTP receiver started by the test: every event as a Standard Webhooks request,
signatures checked with the `standardwebhooks` package (the specification's own library), Statuspage-shaped bodies,
pings, retries at chosen clock times, 410 Gone, hanging receivers, redirects, and nothing lost when the server is
killed in the middle of a burst of writes."""
import datetime
import http.client
import json
import signal
import threading

import pytest
from standardwebhooks.webhooks import Webhook as Verifier

from conftest import (ADMIN_AUTH, RPC_PREFIX, Receiver, Server, Site, assert_one_line_failure, cli, database, fails,
                      json_rpc,
                      of_type)

HOOKS = "WebhookService"


def add_webhook(server, url, **fields):
    return json_rpc(server, f"{HOOKS}/AddWebhook", {"url": url, **fields})


def deliveries(server, webhook_id, **paging):
    return json_rpc(server, f"{HOOKS}/ListDeliveries", {"webhookId": webhook_id, **paging}).get("deliveries", [])


def statuses(server):
    return {s["name"]: s["id"] for s in json_rpc(server, "StatusService/ListStatus", {})["statuses"]}


def test_every_event_is_a_signed_standard_webhooks_request(server, receiver):
    added = add_webhook(server, receiver.url, description="chat bridge")
    secret, webhook = added["secret"], added["webhook"]
    assert secret.startswith("whsec_") and webhook["bodyFormat"] == "standard" and not webhook.get("events")
    assert "secret" not in json.dumps(json_rpc(server, f"{HOOKS}/ListWebhooks", {}))
    ids = statuses(server)
    item = json_rpc(server, "ItemsService/AddItem", {"name": "API", "initialStatusId": ids["UP"]})["item"]
    json_rpc(server, "ItemsService/UpdateItem", {"itemId": item["id"], "statusId": ids["DOWN"],
                                                 "noteText": "Looking into it"})
    note = json_rpc(server, "NotesService/AddNote", {"itemId": item["id"], "noteText": "Found it"})["note"]
    json_rpc(server, "NotesService/UpdateNote", {"noteId": note["id"], "noteText": "Fixed it"})
    json_rpc(server, "ItemsService/UpdateItem", {"itemId": item["id"], "statusId": ids["UP"]})
    json_rpc(server, "NotesService/DeleteNote", {"noteId": note["id"]})
    json_rpc(server, "ItemsService/UpdateItem", {"itemId": item["id"], "description": "The public API"})
    json_rpc(server, "ItemsService/DeleteItem", {"itemId": item["id"]})
    expected = {"item.created", "item.status_changed", "incident.opened", "note.created", "note.updated",
                "incident.updated", "incident.resolved", "note.deleted", "item.updated", "item.deleted"}
    for event_type in expected:  # (8 senders at once: they arrive in any order)
        receiver.wait(of_type(event_type))
    got = receiver.wait(count=len(receiver.requests))
    verifier = Verifier(secret)
    bodies = []
    for request in got:
        assert request["headers"]["content-type"] == "application/json"
        bodies.append(verifier.verify(request["body"], request["headers"]))  # raises on a bad signature
        assert set(bodies[-1]) == {"type", "timestamp", "data"}
    types = [body["type"] for body in bodies]
    assert set(types) == expected
    # Sent at once by several senders; their ids (webhook-id) sort in the order they were written.
    written = [json.loads(r["body"])["type"] for r in sorted(got, key=lambda r: r["headers"]["webhook-id"])]
    assert written[0] == "item.created" and written[-1] == "item.deleted"
    changed = next(body for body in bodies if body["type"] == "item.status_changed")
    assert changed["data"]["item"]["id"] == item["id"]
    assert changed["data"]["change"]["newStatus"]["condition"] == "CONDITION_MAJOR_OUTAGE"
    opened = next(body for body in bodies if body["type"] == "incident.opened")
    assert opened["data"]["incident"]["itemId"] == item["id"]
    # A tampered body or another secret does not verify.
    with pytest.raises(Exception):
        verifier.verify(got[0]["body"] + b" ", got[0]["headers"])
    with pytest.raises(Exception):
        Verifier(add_webhook(server, receiver.url)["secret"]).verify(got[0]["body"], got[0]["headers"])
    # Every attempt is recorded.
    log = deliveries(server, webhook["id"])
    assert len(log) == len(got) and {d["state"] for d in log} == {"delivered"}
    assert all(d["statusCode"] == 200 and d["attempt"] == 1 and d["eventId"].startswith("msg_") for d in log)
    assert {d["eventId"] for d in log} == {request["headers"]["webhook-id"] for request in got}


def test_events_carry_what_was_written_as_a_read_would_return_it(server, receiver):
    """AddItem, AddNote and UpdateItem tell of what they wrote without reading it back: each event's item or note
    is what GetItem (with its newest note) or GetNote answers afterwards."""
    add_webhook(server, receiver.url)
    ids = statuses(server)
    item_id = json_rpc(server, "ItemsService/AddItem", {"name": "Told", "initialStatusId": ids["UP"],
                                                       "initialNoteText": "first", "position": 2})["item"]["id"]
    note = json_rpc(server, "NotesService/AddNote", {"itemId": item_id, "noteText": "second"})["note"]
    json_rpc(server, "ItemsService/UpdateItem", {"itemId": item_id, "name": "Told again", "description": "now",
                                                 "group": "Edge", "position": 5})
    renamed = json_rpc(server, "ItemsService/GetItem", {"itemId": item_id})["item"]
    json_rpc(server, "ItemsService/UpdateItem", {"itemId": item_id, "description": "and a note",
                                                 "statusId": ids["DOWN"], "noteText": "third"})
    latest = json_rpc(server, "ItemsService/GetItem", {"itemId": item_id})["item"]
    receiver.wait(of_type("item.updated"), 2)
    receiver.wait(of_type("note.created"), 2)
    receiver.wait(of_type("item.created"))
    bodies = receiver.events()

    def told(event_type):
        return [body["data"] for body in bodies if body["type"] == event_type]

    created = told("item.created")[0]["item"]
    assert created["notes"][0]["text"] == "first" and created["position"] == 2 and created["status"]["id"] == ids["UP"]
    assert told("note.created")[0]["note"] == note == json_rpc(server, "NotesService/GetNote", {"noteId": note["id"]})[
        "note"]
    updates = {data["item"]["description"]: data["item"] for data in told("item.updated")}
    first_update, second_update = updates["now"], updates["and a note"]
    assert first_update == {**renamed, "notes": renamed["notes"][:1]}
    assert second_update == {**latest, "notes": latest["notes"][:1]} and latest["notes"][0]["text"] == "third"


def test_a_webhook_gets_only_the_events_it_asked_for(server, receiver):
    only = Receiver()
    try:
        add_webhook(server, only.url, events=["incident.opened", "incident.resolved"])
        add_webhook(server, receiver.url)
        ids = statuses(server)
        item = json_rpc(server, "ItemsService/AddItem", {"name": "DB", "initialStatusId": ids["UP"]})["item"]
        for status in ("DOWN", "UP"):
            json_rpc(server, "ItemsService/UpdateItem", {"itemId": item["id"], "statusId": ids[status]})
        receiver.wait(of_type("incident.resolved"))
        only.wait(count=2)  # (both, whichever of the senders running at once delivers first)
        receiver.wait(count=len(receiver.requests))
        in_order = sorted(only.requests, key=lambda request: request["headers"]["webhook-id"])
        assert [json.loads(r["body"])["type"] for r in in_order] == ["incident.opened", "incident.resolved"]
    finally:
        only.close()


def test_statuspage_shaped_bodies_for_existing_consumers(server, receiver):
    webhook = add_webhook(server, receiver.url, bodyFormat="statuspage")["webhook"]
    assert webhook["bodyFormat"] == "statuspage"
    ids = statuses(server)
    item = json_rpc(server, "ItemsService/AddItem", {"name": "CDN", "initialStatusId": ids["UP"]})["item"]
    json_rpc(server, "ItemsService/UpdateItem", {"itemId": item["id"], "statusId": ids["DOWN"]})
    got = receiver.wait(lambda request: "incident" in json.loads(request["body"]))
    update = next(json.loads(r["body"]) for r in receiver.wait(
        lambda request: json.loads(request["body"]).get("component_update", {}).get("new_status") == "major_outage"))
    assert update["component_update"]["component_id"] == item["id"] and update["component"]["name"] == "CDN"
    assert update["component_update"]["old_status"] == "operational"
    assert set(update) == {"meta", "page", "component_update", "component"}
    incident = json.loads(got[0]["body"])["incident"]
    assert incident["status"] == "investigating" and incident["impact"] == "critical"
    assert [(c["id"], c["status"]) for c in incident["components"]] == [(item["id"], "major_outage")]
    # Events Statuspage has no body for (notes, items added) are not sent in this format.
    assert all(("incident" in body) != ("component_update" in body) for body in receiver.events())


def test_a_ping_is_sent_now_and_recorded(server, receiver):
    webhook = add_webhook(server, receiver.url)["webhook"]
    delivery = json_rpc(server, f"{HOOKS}/TestWebhook", {"webhookId": webhook["id"]})["delivery"]
    assert (delivery["state"], delivery["statusCode"], delivery["eventType"]) == ("delivered", 200, "ping")
    assert receiver.events()[-1]["type"] == "ping"
    receiver.status = 503
    failed = json_rpc(server, f"{HOOKS}/TestWebhook", {"webhookId": webhook["id"]})["delivery"]
    assert (failed["state"], failed["statusCode"]) == ("pending", 503)
    assert "503" in failed["error"] and "nextAttemptAt" in failed
    assert [d["id"] for d in deliveries(server, webhook["id"])][:2] == [failed["id"], delivery["id"]]


def test_failed_deliveries_are_retried_on_the_standard_schedule_then_given_up(tmp_path, receiver):
    site = Site(tmp_path, start="2027-05-01T00:00:00Z", timezone="UTC")
    try:
        receiver.status = 500
        webhook = site.rpc(f"{HOOKS}/AddWebhook", url=receiver.url, events=["item.created"])["webhook"]
        site.rpc("ItemsService/AddItem", name="Retried")
        delays = [5, 300, 1800, 7200, 18000, 36000, 36000]  # the Standard Webhooks schedule
        moment = datetime.datetime(2027, 5, 1, tzinfo=datetime.timezone.utc).timestamp()
        for attempt, delay in enumerate(delays, start=1):
            receiver.wait(count=attempt)
            [delivery] = deliveries(site.server, webhook["id"])
            while delivery.get("attempt", 0) < attempt:  # (the answer is recorded just after it is read)
                [delivery] = deliveries(site.server, webhook["id"])
            assert (delivery["state"], delivery["statusCode"]) == ("pending", 500)
            moment += delay
            assert delivery["nextAttemptAt"].startswith(_iso(moment)[:19])
            site.at(_iso(moment))
        receiver.wait(count=8)
        [delivery] = deliveries(site.server, webhook["id"])
        while delivery.get("attempt", 0) < 8:
            [delivery] = deliveries(site.server, webhook["id"])
        assert delivery["state"] == "failed" and "nextAttemptAt" not in delivery
        assert len({request["headers"]["webhook-id"] for request in receiver.requests}) == 1
        # A receiver back to health gets the next event at once.
        receiver.status = 204
        site.rpc("ItemsService/AddItem", name="Delivered")
        receiver.wait(count=9)
    finally:
        site.stop()


def every(site, method, field, **request):
    """Every page of a List RPC."""
    found, token = [], ""
    while True:
        page = site.rpc(method, pageSize=100, pageToken=token, **request)
        found += page.get(field, [])
        token = page.get("nextPageToken")
        if not token:
            return found


def _iso(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_gone_disables_and_a_hanging_receiver_is_cut_off(start_server, receiver):
    server = start_server("--webhook-timeout", "0.5")
    gone = Receiver()
    try:
        gone.status = 410
        disabled = add_webhook(server, gone.url)["webhook"]
        receiver.hang = True
        hanging = add_webhook(server, receiver.url)["webhook"]
        json_rpc(server, "ItemsService/AddItem", {"name": "one"})
        gone.wait()
        receiver.wait()
        for webhook_id in (disabled["id"], hanging["id"]):
            while not deliveries(server, webhook_id) or deliveries(server, webhook_id)[0].get("attempt", 0) < 1:
                pass
        [failed] = deliveries(server, disabled["id"])
        assert (failed["state"], failed["statusCode"]) == ("failed", 410)
        [cut] = deliveries(server, hanging["id"])
        assert cut["state"] == "pending" and "timeout" in cut["error"] and cut["durationMs"] < 5000
        listed = {w["id"]: w for w in json_rpc(server, f"{HOOKS}/ListWebhooks", {})["webhooks"]}
        assert listed[disabled["id"]].get("disabled") is True and not listed[hanging["id"]].get("disabled")
        json_rpc(server, "ItemsService/AddItem", {"name": "two"})
        receiver.wait(count=2)
        assert len(gone.requests) == 1  # a disabled webhook is told nothing more
    finally:
        gone.close()


def test_redirects_are_not_followed(server, receiver):
    receiver.status = 307
    webhook = add_webhook(server, receiver.url)["webhook"]
    delivery = json_rpc(server, f"{HOOKS}/TestWebhook", {"webhookId": webhook["id"]})["delivery"]
    assert delivery["state"] == "pending" and delivery["statusCode"] == 307 and len(receiver.requests) == 1


def test_deliveries_are_listed_newest_first_in_pages(server, receiver):
    webhook = add_webhook(server, receiver.url)["webhook"]
    sent = [json_rpc(server, f"{HOOKS}/TestWebhook", {"webhookId": webhook["id"]})["delivery"]["id"]
            for _ in range(5)]
    first = json_rpc(server, f"{HOOKS}/ListDeliveries", {"webhookId": webhook["id"], "pageSize": 3})
    rest = json_rpc(server, f"{HOOKS}/ListDeliveries", {"webhookId": webhook["id"], "pageSize": 3,
                                                        "pageToken": first["nextPageToken"]})
    assert [d["id"] for d in first["deliveries"] + rest["deliveries"]] == sent[::-1]
    assert "nextPageToken" not in rest


@pytest.mark.parametrize("body, code", [
    ({"url": ""}, "invalid_argument"),
    ({"url": "ftp://example.com/hook"}, "invalid_argument"),
    ({"url": "http:///nohost"}, "invalid_argument"),
    ({"url": "http://127.0.0.1:99999/"}, "invalid_argument"),
    ({"url": "http://127.0.0.1/\nX-Injected: 1"}, "invalid_argument"),
    ({"url": "http://127.0.0.1/", "events": ["item.exploded"]}, "invalid_argument"),
    ({"url": "http://127.0.0.1/", "bodyFormat": "slack"}, "invalid_argument"),
])
def test_bad_webhooks_are_refused_and_nothing_is_stored(shared_server, body, code):
    status, _, answer = shared_server.post(f"{RPC_PREFIX}.{HOOKS}/AddWebhook", json.dumps(body))
    assert status == 400 and json.loads(answer)["code"] == code, answer
    assert all(w["url"] != body["url"] for w in json_rpc(shared_server, f"{HOOKS}/ListWebhooks", {}).get(
        "webhooks", []))


@pytest.mark.parametrize("method", ["AddWebhook", "ListWebhooks", "DeleteWebhook", "ListDeliveries", "TestWebhook"])
def test_every_webhook_rpc_needs_credentials(shared_server, method):
    status, _, answer = shared_server.post(f"{RPC_PREFIX}.{HOOKS}/{method}", "{}", auth=None)
    assert status == 401 and json.loads(answer)["code"] == "unauthenticated"
    conn = shared_server.http()
    conn.request("GET", f"{RPC_PREFIX}.{HOOKS}/{method}?encoding=json&message=%7B%7D")
    assert conn.getresponse().status in (401, 405)


@pytest.mark.parametrize("method", ["DeleteWebhook", "ListDeliveries", "TestWebhook"])
def test_unknown_webhooks_are_not_found(api, method):
    fails("not_found", getattr(api, method), webhook_id="01NOSUCHWEBHOOK")
    fails("invalid_argument", getattr(api, method))


def test_a_deleted_webhook_is_told_nothing_more(server, receiver):
    webhook = add_webhook(server, receiver.url)["webhook"]
    json_rpc(server, "ItemsService/AddItem", {"name": "before"})
    receiver.wait(of_type("item.created"))
    json_rpc(server, f"{HOOKS}/DeleteWebhook", {"webhookId": webhook["id"]})
    assert json_rpc(server, f"{HOOKS}/ListWebhooks", {}).get("webhooks", []) == []
    witness = Receiver()
    try:
        add_webhook(server, witness.url)
        json_rpc(server, "ItemsService/AddItem", {"name": "after"})
        witness.wait(of_type("item.created"))
        assert [event["data"]["item"]["name"] for event in receiver.events()] == ["before"]
    finally:
        witness.close()


def test_nothing_is_lost_when_the_server_is_killed_in_a_burst(tmp_path, receiver):
    """SIGKILL while 500 status changes are being written: after a restart every committed change is delivered
    (at least once, de-duplicated on webhook-id), and none that did not commit."""
    site = Site(tmp_path, start="2027-06-01T00:00:00Z", timezone="UTC")
    try:
        webhook = site.rpc(f"{HOOKS}/AddWebhook", url=receiver.url, events=["item.status_changed"])["webhook"]
        item = site.add("Flapping")
        acknowledged = []

        def write():
            conn = site.server.http()
            for number in range(500):
                body = json.dumps({"itemId": item, "statusId": site.statuses["UP" if number % 2 else "DOWN"],
                                   "noteText": f"change {number}"})
                try:
                    conn.request("POST", f"{RPC_PREFIX}.ItemsService/UpdateItem", body=body,
                                 headers={"Content-Type": "application/json", "Authorization": ADMIN_AUTH})
                    response = conn.getresponse()
                    response.read()
                except (OSError, http.client.HTTPException):
                    return
                assert response.status == 200
                acknowledged.append(number)

        writer = threading.Thread(target=write)
        writer.start()
        receiver.wait(count=50)  # (deliveries are flowing when the kill comes)
        while len(acknowledged) < 250:
            pass
        site.server.stop(signal.SIGKILL)
        writer.join()
        assert len(acknowledged) < 500

        site.server = site._start()
        site.at("2027-06-01T00:01:00Z")  # past every lease the killed process held
        changes = every(site, "HistoryService/ListStatusChanges", "changes", itemIds=[item])
        committed = {change["id"] for change in changes if "oldStatus" in change}  # (not the item's first status)
        notes = {int(note["text"].split()[-1]) for note in every(site, "NotesService/ListNotes", "notes", itemId=item)}
        assert set(acknowledged) <= notes and len(notes) == len(committed)  # every acknowledged write is there
        got = receiver.wait(count=len(committed))
        while True:
            delivered = {json.loads(r["body"])["data"]["change"]["id"]: r["headers"]["webhook-id"] for r in got}
            if committed <= set(delivered):
                break
            got = receiver.wait(count=len(got) + 1)
        assert set(delivered) == committed  # (nothing told of a change that did not commit)
        # Each change has one webhook-id, however many times it came: the receiver de-duplicates on it.
        by_id = {}
        for request in got:
            by_id.setdefault(request["headers"]["webhook-id"], set()).add(request["body"])
        assert all(len(bodies) == 1 for bodies in by_id.values())
        assert len(by_id) == len(delivered)
        states = {d["state"] for d in deliveries(site.server, webhook["id"], pageSize=1000)}
        assert states <= {"delivered", "pending"}
    finally:
        site.stop()


def test_the_command_line_adds_lists_tests_and_deletes_webhooks_of_a_running_server(server, receiver):
    added = cli(server, "webhook", "add", receiver.url, "--event", "item.created", "--description", "from cron")
    assert added.returncode == 0, added.stderr
    secret = added.stdout.strip()
    assert secret.startswith("whsec_") and "shown only now" in added.stderr
    [line] = cli(server, "webhook", "list").stdout.splitlines()
    webhook_id = line.split()[0]
    assert receiver.url in line and "item.created" in line
    json_rpc(server, "ItemsService/AddItem", {"name": "told to the CLI's webhook"})
    [request] = receiver.wait(of_type("item.created"))
    assert Verifier(secret).verify(request["body"], request["headers"])["data"]["item"]["name"] == \
        "told to the CLI's webhook"
    tested = cli(server, "webhook", "test", webhook_id)
    assert tested.returncode == 0 and tested.stdout.startswith("ping delivered: 200")
    receiver.status = 500
    assert cli(server, "webhook", "test", webhook_id).returncode == 1
    assert cli(server, "webhook", "del", webhook_id).returncode == 0
    assert cli(server, "webhook", "list").stdout == ""
    assert_one_line_failure(cli(server, "webhook", "del", webhook_id), "not found")
    assert_one_line_failure(cli(server, "webhook", "add", "ftp://example.com"), "http")
    audit = cli(server, "audit").stdout
    assert "AddWebhook" in audit and "DeleteWebhook" in audit and "cli:" in audit


def test_metrics_count_deliveries_by_channel_and_state(server, receiver):
    from prometheus_client.parser import text_string_to_metric_families
    webhook = add_webhook(server, receiver.url)["webhook"]
    json_rpc(server, f"{HOOKS}/TestWebhook", {"webhookId": webhook["id"]})
    receiver.status = 500
    json_rpc(server, f"{HOOKS}/TestWebhook", {"webhookId": webhook["id"]})
    conn = server.http()
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    samples = {(s.labels["channel"], s.labels["state"]): s.value for family in text_string_to_metric_families(text)
               if family.name == "statusthing_deliveries" for s in family.samples}
    assert samples[("webhook", "delivered")] == 1 and samples[("webhook", "pending")] == 1
    assert samples[("email", "pending")] == 0


def test_two_processes_on_one_database_deliver_each_event_once(tmp_path, receiver):
    site = Site(tmp_path, start="2027-07-01T00:00:00Z", timezone="UTC")
    second = Server(site.folder / "st.db", tmp_path / "second.log", *site.args,
                    env={"STATUSTHING_CLOCK": site.clock.path})
    try:
        site.rpc(f"{HOOKS}/AddWebhook", url=receiver.url, events=["item.created"])
        for number in range(40):  # (written through both: each worker sees events the other wrote)
            server = (site.server, second)[number % 2]
            assert server.post(f"{RPC_PREFIX}.ItemsService/AddItem", json.dumps({"name": f"n{number}"}))[0] == 200
        got = receiver.wait(count=40)
        # Once both workers have fanned out and sent everything they claimed, a duplicate would be here too.
        site.rpc("ItemsService/AddItem", name="last")
        assert second.post(f"{RPC_PREFIX}.ItemsService/AddItem", json.dumps({"name": "last too"}))[0] == 200
        got = receiver.wait(count=42)
        ids = [request["headers"]["webhook-id"] for request in got]
        assert len(ids) == len(set(ids)) == 42
    finally:
        second.stop()
        site.stop()


def test_finished_deliveries_are_pruned_after_the_retention_period(tmp_path, receiver):
    site = Site(tmp_path, "--retention-days", "30", start="2027-08-01T00:00:00Z", timezone="UTC")
    try:
        webhook = site.rpc(f"{HOOKS}/AddWebhook", url=receiver.url, events=["item.created"])["webhook"]
        site.rpc("ItemsService/AddItem", name="old news")
        receiver.wait()
        while deliveries(site.server, webhook["id"])[0]["state"] != "delivered":
            pass
        site.at("2027-08-30T00:00:00Z")
        site.restart()  # (the worker prunes when it starts, then hourly)
        assert len(deliveries(site.server, webhook["id"])) == 1  # 29 days: kept
        site.at("2027-09-01T00:00:00Z")
        site.restart()
        site.rpc("ItemsService/AddItem", name="new news")
        receiver.wait(count=2)
        while deliveries(site.server, webhook["id"])[0]["state"] != "delivered":
            pass
        assert [d["eventType"] for d in deliveries(site.server, webhook["id"])] == ["item.created"]
        with database(site.server) as conn:
            assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 1  # the old event went too
    finally:
        site.stop()
