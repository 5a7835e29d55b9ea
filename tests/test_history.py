"""History at chosen times: the server's clock is a file the tests write (STATUSTHING_CLOCK), so days, DST changes,
incidents and "today so far" are tested without waiting. RPCs go over Connect JSON, Connect binary and gRPC."""
import json
import sqlite3

import pytest
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

import statusthing
import statusthing_pb2 as pb
from conftest import CLIENTS, Api, Clock, Server, fails, rpc_path

UP, WARNING, DOWN = pb.STATUS_KIND_UP, pb.STATUS_KIND_WARNING, pb.STATUS_KIND_DOWN
OPERATIONAL, DEGRADED, PARTIAL, MAJOR = (pb.CONDITION_OPERATIONAL, pb.CONDITION_DEGRADED, pb.CONDITION_PARTIAL_OUTAGE,
                                         pb.CONDITION_MAJOR_OUTAGE)


@pytest.fixture(scope="module")
def clock(tmp_path_factory):
    clock = Clock(str(tmp_path_factory.mktemp("clock") / "now"))
    clock.set("2026-03-01T08:00:00Z")
    return clock


@pytest.fixture(scope="module")
def history_server(tmp_path_factory, clock):
    folder = tmp_path_factory.mktemp("history")
    server = Server(folder / "st.db", folder / "server.log", "--timezone", "Europe/Berlin",
                    env={"STATUSTHING_CLOCK": clock.path})
    yield server
    server.stop()


@pytest.fixture(params=CLIENTS, ids=lambda c: c.name)
def api(request, history_server):
    return Api(request.param(history_server))


def ts(text):
    stamp = Timestamp()
    stamp.FromJsonString(text)
    return stamp


def status(api, unique, kind, **fields):
    return api.AddStatus(name=unique("status"), kind=kind, **fields).status


# -- conditions -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, condition", [
    (pb.STATUS_KIND_UP, OPERATIONAL), (pb.STATUS_KIND_AVAILABLE, OPERATIONAL), (pb.STATUS_KIND_ONLINE, OPERATIONAL),
    (pb.STATUS_KIND_WARNING, DEGRADED), (pb.STATUS_KIND_OBSERVING, DEGRADED), (pb.STATUS_KIND_INVESTIGATING, DEGRADED),
    (pb.STATUS_KIND_UNAVAILABLE, PARTIAL), (pb.STATUS_KIND_DOWN, MAJOR), (pb.STATUS_KIND_OFFLINE, MAJOR),
    (pb.STATUS_KIND_CREATED, pb.CONDITION_UNSPECIFIED), (pb.STATUS_KIND_DECOMM, pb.CONDITION_UNSPECIFIED)])
def test_a_condition_follows_the_kind_unless_set(api, unique, kind, condition):
    assert status(api, unique, kind).condition == condition


def test_a_set_condition_stays_when_the_kind_changes(api, unique):
    explicit = status(api, unique, UP, condition=pb.CONDITION_MAINTENANCE)
    assert explicit.condition == pb.CONDITION_MAINTENANCE
    api.UpdateStatus(status_id=explicit.id, kind=DOWN)
    assert api.GetStatus(status_id=explicit.id).status.condition == pb.CONDITION_MAINTENANCE
    api.UpdateStatus(status_id=explicit.id, condition=pb.CONDITION_UNSPECIFIED)  # follow the kind again
    assert api.GetStatus(status_id=explicit.id).status.condition == MAJOR
    fails("invalid_argument", api.AddStatus, name=unique("bad"), kind=UP, condition=42)


# -- status changes ---------------------------------------------------------------------------------------------------

def test_every_status_change_is_kept_as_it_was(api, unique, clock):
    clock.set("2026-03-02T09:00:00Z")
    fine, broken = status(api, unique, UP), status(api, unique, DOWN)
    item = api.AddItem(name=unique("item"), initial_status_id=fine.id).item
    clock.set("2026-03-02T10:00:00Z")
    api.UpdateItem(item_id=item.id, status_id=broken.id, note_text="It broke.\nWe are on it.")
    api.UpdateStatus(status_id=broken.id, name=unique("renamed"), color="#123456")  # history keeps the old name
    changes = api.ListStatusChanges(item_ids=[item.id]).changes
    assert [(c.old_status.name, c.new_status.name) for c in changes] == [(fine.name, broken.name), ("", fine.name)]
    assert not changes[1].HasField("old_status") and changes[1].changed_at.seconds == ts("2026-03-02T09:00:00Z").seconds
    assert changes[0].new_status.condition == MAJOR and changes[0].new_status.color == broken.color
    notes = api.GetItem(item_id=item.id).item.notes
    assert notes[0].text == "It broke.\nWe are on it." and notes[0].timestamps.created == changes[0].changed_at


def test_an_unknown_status_writes_nothing_not_even_the_note(api, unique):
    item = api.AddItem(name=unique("item")).item
    fails("not_found", api.UpdateItem, item_id=item.id, status_id="01NOSUCHSTATUS", note_text="lost")
    assert not api.GetItem(item_id=item.id).item.notes and not api.ListStatusChanges(item_ids=[item.id]).changes


def test_status_changes_are_paged_and_filtered_by_time(api, unique, clock):
    fine, broken = status(api, unique, UP), status(api, unique, DOWN)
    item = api.AddItem(name=unique("item")).item
    for hour in range(5):
        clock.set(f"2026-03-04T1{hour}:00:00Z")
        api.UpdateItem(item_id=item.id, status_id=(fine if hour % 2 else broken).id)
    times, token = [], ""
    while True:
        page = api.ListStatusChanges(item_ids=[item.id], page_size=2, page_token=token)
        times += [c.changed_at.seconds for c in page.changes]
        token = page.next_page_token
        if not token:
            break
    assert times == sorted(times, reverse=True) and len(times) == 5
    window = api.ListStatusChanges(item_ids=[item.id], since=ts("2026-03-04T11:00:00Z"),
                                   until=ts("2026-03-04T13:00:00Z")).changes
    assert [c.changed_at.seconds for c in window] == [ts(f"2026-03-04T1{h}:00:00.000000001Z").seconds for h in (2, 1)]
    fails("not_found", api.ListStatusChanges, item_ids=["01NOSUCHITEM"])
    fails("invalid_argument", api.ListStatusChanges, page_token="garbage")


def test_a_condition_change_under_the_items_is_recorded(api, unique, clock):
    clock.set("2026-03-05T10:00:00Z")
    shared = status(api, unique, UP)
    first, second = (api.AddItem(name=unique("item"), initial_status_id=shared.id).item for _ in range(2))
    clock.set("2026-03-05T11:00:00Z")
    api.UpdateStatus(status_id=shared.id, kind=DOWN)
    for item in (first, second):
        latest = api.ListStatusChanges(item_ids=[item.id]).changes[0]
        assert (latest.old_status.condition, latest.new_status.condition) == (OPERATIONAL, MAJOR)
        assert api.ListIncidents(item_ids=[item.id], unresolved_only=True).incidents


# -- uptime -----------------------------------------------------------------------------------------------------------

def test_uptime_days_in_the_time_zone_across_a_dst_change(api, unique, clock):
    # Europe/Berlin moves to summer time on 2026-03-29: that day has 23 hours.
    clock.set("2026-03-27T22:00:00Z")
    fine, partial = status(api, unique, UP), status(api, unique, pb.STATUS_KIND_UNAVAILABLE)
    clock.set("2026-03-27T23:00:00Z")  # 00:00 on the 28th in Berlin
    item = api.AddItem(name=unique("item"), initial_status_id=fine.id).item
    clock.set("2026-03-29T10:00:00Z")
    api.UpdateItem(item_id=item.id, status_id=partial.id)
    clock.set("2026-03-29T11:00:00Z")
    api.UpdateItem(item_id=item.id, status_id=fine.id)
    clock.set("2026-03-30T06:00:00Z")  # 08:00 in Berlin
    answer = api.GetUptime(item_ids=[item.id], days=4)
    assert answer.time_zone == "Europe/Berlin"
    days = {day.date: day for day in answer.items[0].days}
    assert list(days) == ["2026-03-27", "2026-03-28", "2026-03-29", "2026-03-30"]
    assert days["2026-03-27"].observed_seconds == 0 and days["2026-03-27"].worst == pb.CONDITION_UNSPECIFIED
    assert days["2026-03-28"].observed_seconds == 86400 and days["2026-03-28"].worst == OPERATIONAL
    assert days["2026-03-29"].observed_seconds == 82800  # 23 hours
    assert days["2026-03-29"].partial_outage_seconds == 3600 and days["2026-03-29"].worst == PARTIAL
    assert days["2026-03-30"].observed_seconds == 8 * 3600  # today so far
    observed = sum(day.observed_seconds for day in days.values())
    assert answer.items[0].uptime_percent == pytest.approx(100 * (1 - 0.3 * 3600 / observed))


def test_uptime_window_rules(api, unique, clock):
    clock.set("2026-04-02T12:00:00Z")
    silent = api.AddItem(name=unique("no status")).item  # nothing observed: no percent at all
    answer = api.GetUptime(item_ids=[silent.id])
    assert len(answer.items[0].days) == 90 and answer.items[0].days[-1].date == "2026-04-02"
    assert not answer.items[0].HasField("uptime_percent")
    for days in (-1, 367):
        fails("invalid_argument", api.GetUptime, item_ids=[silent.id], days=days)
    assert len(api.GetUptime(item_ids=[silent.id], days=366).items[0].days) == 366
    fails("not_found", api.GetUptime, item_ids=["01NOSUCHITEM"])
    assert {u.item_id for u in api.GetUptime().items} >= {silent.id}  # empty item_ids: every item
    assert len(api.GetUptime(item_ids=[silent.id], days=1).items[0].days) == 1


def test_uptime_answers_are_the_protobuf_encodings(history_server, unique, clock):
    """GetUptime is assembled from kept per-item parts: its bytes must be what protobuf itself writes."""
    api = Api(CLIENTS[0](history_server))
    clock.set("2026-04-03T09:00:00Z")
    item = api.AddItem(name=unique("encoded"), initial_status_id=status(api, unique, UP).id).item
    clock.set("2026-04-03T10:00:00Z")
    api.UpdateItem(item_id=item.id, status_id=status(api, unique, DOWN).id)
    clock.set("2026-04-04T10:30:00Z")
    for days in (1, 2, 90):
        body = json.dumps({"itemIds": [item.id], "days": days})
        raw_json = history_server.post(rpc_path("GetUptime"), body)[2]
        message = json_format.Parse(raw_json, pb.GetUptimeResponse())
        assert json.loads(raw_json) == json_format.MessageToDict(message)
        raw_proto = history_server.post(rpc_path("GetUptime"), pb.GetUptimeRequest(
            item_ids=[item.id], days=days).SerializeToString(), "application/proto")[2]
        assert raw_proto == message.SerializeToString()
    assert message.items[0].days[-1].major_outage_seconds == 12 * 3600 + 1800  # since midnight in Berlin


# -- incidents --------------------------------------------------------------------------------------------------------

def test_an_incident_from_the_change_that_leaves_operational_to_the_one_that_returns(api, unique, clock):
    fine, slow, broken = status(api, unique, UP), status(api, unique, WARNING), status(api, unique, DOWN)
    clock.set("2026-04-05T09:00:00Z")
    item = api.AddItem(name=unique("item"), initial_status_id=fine.id).item
    api.AddNote(item_id=item.id, note_text="before: not part of it")
    clock.set("2026-04-05T10:00:00Z")
    api.UpdateItem(item_id=item.id, status_id=slow.id, note_text="Slow responses.")
    clock.set("2026-04-05T10:20:00Z")
    api.UpdateItem(item_id=item.id, status_id=broken.id, note_text="Down now.")
    open_now = api.ListIncidents(item_ids=[item.id], unresolved_only=True).incidents
    assert len(open_now) == 1 and not open_now[0].HasField("resolved_at") and open_now[0].worst == MAJOR
    clock.set("2026-04-05T10:40:00Z")
    api.UpdateItem(item_id=item.id, status_id=slow.id)  # better, still degraded: the same incident
    clock.set("2026-04-05T11:00:00Z")
    api.UpdateItem(item_id=item.id, status_id=fine.id, note_text="Resolved.")
    clock.set("2026-04-05T12:00:00Z")
    api.AddNote(item_id=item.id, note_text="after: not part of it")
    incident, = api.ListIncidents(item_ids=[item.id]).incidents
    assert incident.item_name == item.name and incident.worst == MAJOR
    assert incident.started_at.seconds == ts("2026-04-05T10:00:00Z").seconds
    assert incident.resolved_at.seconds == ts("2026-04-05T11:00:00Z").seconds
    assert incident.id == incident.changes[0].id and len(incident.changes) == 4  # opening .. resolving, oldest first
    assert [n.text for n in incident.notes] == ["Resolved.", "Down now.", "Slow responses."]
    assert not api.ListIncidents(item_ids=[item.id], unresolved_only=True).incidents
    assert not api.ListIncidents(item_ids=[item.id], since=ts("2026-04-05T10:00:01Z")).incidents


def test_no_condition_resolves_and_operational_changes_open_nothing(api, unique, clock):
    fine, other_fine, broken, retired = (status(api, unique, kind) for kind in (UP, pb.STATUS_KIND_ONLINE, DOWN,
                                                                                pb.STATUS_KIND_DECOMM))
    clock.set("2026-04-06T09:00:00Z")
    item = api.AddItem(name=unique("item"), initial_status_id=fine.id).item
    api.UpdateItem(item_id=item.id, status_id=other_fine.id)
    assert not api.ListIncidents(item_ids=[item.id]).incidents
    clock.set("2026-04-06T10:00:00Z")
    api.UpdateItem(item_id=item.id, status_id=broken.id)
    clock.set("2026-04-06T10:30:00Z")
    api.UpdateItem(item_id=item.id, status_id=retired.id)
    incident, = api.ListIncidents(item_ids=[item.id]).incidents
    assert incident.resolved_at.seconds == ts("2026-04-06T10:30:00Z").seconds


def test_incidents_are_paged_newest_first(api, unique, clock):
    fine, broken = status(api, unique, UP), status(api, unique, DOWN)
    item = api.AddItem(name=unique("item"), initial_status_id=fine.id).item
    for hour in range(3):
        clock.set(f"2026-04-07T1{hour}:00:00Z")
        api.UpdateItem(item_id=item.id, status_id=broken.id)
        clock.set(f"2026-04-07T1{hour}:10:00Z")
        api.UpdateItem(item_id=item.id, status_id=fine.id)
    first = api.ListIncidents(item_ids=[item.id], page_size=2)
    second = api.ListIncidents(item_ids=[item.id], page_size=2, page_token=first.next_page_token)
    starts = [i.started_at.seconds for i in (*first.incidents, *second.incidents)]
    assert len(starts) == 3 and starts == sorted(starts, reverse=True) and not second.next_page_token


# -- order and groups ----------------------------------------------------------------------------------------------

def test_items_are_listed_by_position_then_creation(history_server, unique):
    api = Api(CLIENTS[0](history_server))
    prefix = unique("order")
    made = [api.AddItem(name=f"{prefix}-{n}", position=position, group="Core" if n < 2 else "").item
            for n, position in enumerate((5, 1, 1, 3))]
    assert made[0].group == "Core" and made[0].position == 5
    names = [i.name for i in api.ListItems().items if i.name.startswith(prefix)]
    assert names == [f"{prefix}-{n}" for n in (1, 2, 3, 0)]
    api.UpdateItem(item_id=made[0].id, position=0, group="")
    names = [i.name for i in api.ListItems().items if i.name.startswith(prefix)]
    assert names == [f"{prefix}-{n}" for n in (0, 1, 2, 3)] and not api.GetItem(item_id=made[0].id).item.group
    binary = [i.name for i in Api(CLIENTS[1](history_server)).ListItems().items if i.name.startswith(prefix)]
    assert binary == names


# -- the migration from the audit trail ----------------------------------------------------------------------------

@pytest.mark.sqlite_only
def test_existing_databases_get_their_history_from_the_audit_trail(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    statusthing.migrate(conn, statusthing.MIGRATIONS[:4])
    up, down = (row[0] for row in conn.execute("SELECT id FROM statuses WHERE name IN ('UP', 'DOWN') ORDER BY name"
                                               " DESC"))
    conn.execute("INSERT INTO items (id, name, status_id, created_ns, updated_ns) VALUES ('A', 'Audited', ?, 100, 1)",
                 (up,))
    conn.execute("INSERT INTO items (id, name, status_id, created_ns, updated_ns) VALUES ('B', 'Quiet', ?, 500, 1)",
                 (down,))
    for time_ns, changes in ((100, {"status_id": [None, down]}), (200, {"status_id": [down, up]})):
        conn.execute("INSERT INTO audit_log (time_ns, actor, actor_kind, client, rpc, target_id, changes) "
                     "VALUES (?, 'admin', 'user', 'x', ?, 'A', ?)", (time_ns, "AddItem" if time_ns == 100 else
                                                                     "UpdateItem", json.dumps(changes)))
    conn.close()
    server = Server(path, tmp_path / "server.log")
    try:
        api = Api(CLIENTS[0](server))
        audited = api.ListStatusChanges(item_ids=["A"]).changes
        assert [(c.changed_at.ToNanoseconds(), c.new_status.name) for c in audited] == [(200, "UP"), (100, "DOWN")]
        quiet = api.ListStatusChanges(item_ids=["B"]).changes
        assert [(c.changed_at.ToNanoseconds(), c.new_status.name) for c in quiet] == [(500, "DOWN")]
        assert [i.item_id for i in api.ListIncidents(unresolved_only=True).incidents] == ["B"]
        assert len(api.ListIncidents(item_ids=["A"]).incidents) == 1
    finally:
        server.stop()
