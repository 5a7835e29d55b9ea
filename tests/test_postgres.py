"""PostgreSQL's own promises (issue 13), on throwaway clusters these tests start: several servers on one database
see each other's writes within a second and start together without migrating twice; migrate-db copies SQLite to
PostgreSQL and back with ids and times intact; a database that goes away makes writes `unavailable` while kept
answers go on, and everything works again once it is back; a missing driver is one line. (The rest of the suite
runs on PostgreSQL with pytest --backend postgres.)"""
import json
import subprocess
import sys
import time

import pytest

from conftest import (ADMIN_AUTH, RPC_PREFIX, STATUSTHING, PostgresCluster, Server, assert_one_line_failure,
                      child_env, database, json_rpc, run_statusthing)

pytestmark = pytest.mark.first_run_only


@pytest.fixture(scope="module")
def cluster():
    cluster = PostgresCluster()
    yield cluster
    cluster.stop()


def answers(server):
    """What readers and clients see of a server's data, for comparing two databases."""
    found = {}
    for method, body in (("ItemsService/ListItems", {"extended": True}), ("StatusService/ListStatus", {}),
                         ("HistoryService/ListIncidents", {}), ("MaintenanceService/ListMaintenances", {}),
                         ("HistoryService/ListStatusChanges", {}), ("HistoryService/GetUptime", {"days": 3})):
        found[method] = json_rpc(server, method, body)
    found["webhooks"] = json_rpc(server, "WebhookService/ListWebhooks", {})
    # (Today's seconds grow while the test runs: its days and their worst conditions are compared.)
    found["HistoryService/GetUptime"] = [[(day["date"], day.get("worst")) for day in item["days"]]
                                         for item in found["HistoryService/GetUptime"]["items"]]
    return found


def until(check, timeout=1.0):
    """Call ``check`` until it is true or ``timeout`` has passed; how long it took, or None."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
    return None


def test_migrate_db_copies_sqlite_to_postgresql_and_back(cluster, tmp_path):
    source = Server(tmp_path / "st.db", tmp_path / "source.log")
    try:
        before = _fill(source)
    finally:
        source.stop()
    _copy_and_compare(cluster, tmp_path, before)


def _fill(source):
    """Items, a status history with an incident, a maintenance window, a webhook; what the server then answers."""
    statuses = {s["name"]: s["id"] for s in json_rpc(source, "StatusService/ListStatus", {})["statuses"]}
    item = json_rpc(source, "ItemsService/AddItem", {"name": "API", "initialStatusId": statuses["UP"],
                                                     "initialNoteText": "Live"})["item"]
    json_rpc(source, "ItemsService/UpdateItem", {"itemId": item["id"], "statusId": statuses["DOWN"],
                                                 "noteText": "Down: we are on it"})
    json_rpc(source, "ItemsService/UpdateItem", {"itemId": item["id"], "statusId": statuses["UP"]})
    json_rpc(source, "MaintenanceService/AddMaintenance", {"title": "Upgrade", "startsAt": "2099-01-01T10:00:00Z",
                                                           "endsAt": "2099-01-01T11:00:00Z"})
    json_rpc(source, "WebhookService/AddWebhook", {"url": "http://127.0.0.1:9/hook"})
    return answers(source)


def _copy_and_compare(cluster, tmp_path, before):
    target = cluster.database("migrate-target")
    copied = run_statusthing("migrate-db", "--from", str(tmp_path / "st.db"), "--to", target)
    assert copied.returncode == 0, copied.stderr
    assert "3 items" not in copied.stdout and "1 items" in copied.stdout and "1 webhooks" in copied.stdout
    on_postgres = Server(target, tmp_path / "postgres.log")
    try:
        assert answers(on_postgres) == before  # ids, times, history, incidents, uptime: the same
        # The audit trail goes on after the copied entries, and the login still works.
        json_rpc(on_postgres, "ItemsService/AddItem", {"name": "Added after the move"})
        audit = cli_audit(on_postgres)
        assert audit[-1]["rpc"] == "AddItem" and len(audit) == len({entry["id"] for entry in audit})
    finally:
        on_postgres.stop()
    assert_one_line_failure(run_statusthing("migrate-db", "--from", str(tmp_path / "st.db"), "--to", target),
                            "is not empty")

    back = run_statusthing("migrate-db", "--from", target, "--to", str(tmp_path / "back.db"))
    assert back.returncode == 0, back.stderr
    again = Server(tmp_path / "back.db", tmp_path / "back.log")
    try:
        after = answers(again)
        assert [i["name"] for i in after["ItemsService/ListItems"]["items"]] == ["API", "Added after the move"]
        for method in ("HistoryService/ListIncidents", "MaintenanceService/ListMaintenances", "webhooks"):
            assert after[method] == before[method]
    finally:
        again.stop()


def cli_audit(server):
    result = run_statusthing("audit", "--json", "--db", server.db_path)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_two_servers_on_one_database_see_each_others_writes_within_a_second(cluster, tmp_path):
    url = cluster.database("two-servers")
    first, second = Server(url, tmp_path / "a.log"), Server(url, tmp_path / "b.log")
    try:
        def names(server):
            return [i["name"] for i in json_rpc(server, "ItemsService/ListItems", {}).get("items", [])]

        def page(server):
            conn = server.http()
            conn.request("GET", "/")
            return conn.getresponse().read().decode()

        assert names(second) == [] and "Written on A" not in page(second)  # kept by B now
        for number in range(5):
            json_rpc(first, "ItemsService/AddItem", {"name": f"Written on A {number}"})
            took = until(lambda: f"Written on A {number}" in names(second)
                         and f"Written on A {number}" in page(second))
            assert took is not None, "B did not see A's write within a second"
        json_rpc(second, "ItemsService/DeleteItem", {"itemId": json_rpc(second, "ItemsService/ListItems", {})[
            "items"][0]["id"]})
        assert until(lambda: len(names(first)) == 4) is not None
        # A hand edit by another tool counts too.
        with database(url) as conn:
            conn.execute("UPDATE items SET description = 'edited by hand'")
        assert until(lambda: all(i.get("description") == "edited by hand"
                                 for i in json_rpc(first, "ItemsService/ListItems", {})["items"])) is not None
    finally:
        first.stop()
        second.stop()


def test_a_change_whose_notification_was_lost_is_seen_within_the_recheck(cluster, tmp_path):
    """Should a notification never arrive, the once-a-second look at the database's transaction counter still
    finds the change. (The edit below runs with st_notify silenced inside its own transaction: other sessions
    never see the silenced function, and no notification is sent.)"""
    import statusthing_pg
    url = cluster.database("lost-notification")
    server = Server(url, tmp_path / "quiet.log")
    try:
        json_rpc(server, "ItemsService/AddItem", {"name": "Quiet", "description": "before"})

        def description():
            return json_rpc(server, "ItemsService/ListItems", {})["items"][0].get("description")

        assert description() == "before"  # (kept now)
        with database(url) as conn:
            conn.execute("CREATE OR REPLACE FUNCTION st_notify() RETURNS trigger LANGUAGE plpgsql AS "
                         "$$ BEGIN RETURN NULL; END $$")
            conn.execute("UPDATE items SET description = 'edited quietly'")
            conn.execute(statusthing_pg._TRIGGER_FUNCTIONS)
        assert until(lambda: description() == "edited quietly", timeout=statusthing_pg.RECHECK_S * 2 + 0.5)
    finally:
        server.stop()


def test_a_read_of_one_statement_refuses_a_second(cluster):
    """read(one_statement=True) runs outside a transaction: a second statement would see another snapshot, so it
    is refused (a mistake in the code, caught by the first test that makes it; logged as a storage error)."""
    import statusthing
    import statusthing_pg
    store = statusthing_pg.open_postgres(cluster.database("one-statement"))
    try:
        with store.read(one_statement=True) as tx:
            tx.list_statuses()
            with pytest.raises(statusthing.Internal):
                tx.list_items()
        with store.read() as tx:  # (a transaction takes any number)
            assert len(tx.list_statuses()) == 3 and tx.list_items() == []
    finally:
        store.close()


def test_servers_that_start_together_migrate_once(cluster, tmp_path):
    url = cluster.database("started-together")
    servers = []
    try:
        processes = [subprocess.Popen([*STATUSTHING, "--api-addr", "127.0.0.1:0", "--db", url],
                                      stdout=open(tmp_path / f"s{n}.log", "w"), stderr=subprocess.PIPE,
                                      env=child_env()) for n in range(3)]
        servers = processes
        deadline = time.monotonic() + 30
        for n, process in enumerate(processes):
            while '"start"' not in (tmp_path / f"s{n}.log").read_text():
                assert process.poll() is None, process.stderr.read().decode()
                assert time.monotonic() < deadline
                time.sleep(0.05)
        with database(url) as conn:
            versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
            defaults = conn.execute("SELECT COUNT(*) FROM statuses").fetchone()[0]
        assert versions == list(range(1, len(versions) + 1)) and len(versions) >= 8
        assert defaults == 3  # the default statuses once, not once per server
    finally:
        for process in servers:
            process.terminate()
            process.wait(10)


def test_a_database_that_goes_away_refuses_writes_keeps_reads_and_recovers(tmp_path):
    own, server = PostgresCluster(), None  # (a cluster of its own: this test stops it)
    try:
        server = Server(own.database("outage"), tmp_path / "outage.log")
        json_rpc(server, "ItemsService/AddItem", {"name": "Before the outage"})
        kept = server.post(f"{RPC_PREFIX}.ItemsService/ListItems", "{}")[2]
        conn = server.http()
        conn.request("GET", "/")
        page = conn.getresponse().read()
        own.pause()
        status, _, answer = server.post(f"{RPC_PREFIX}.ItemsService/AddItem", json.dumps({"name": "During"}))
        error = json.loads(answer)
        assert status == 503 and error["code"] == "unavailable" and "database is unavailable" in error["message"]
        # Kept answers go on meanwhile: the page and the list as they were.
        assert server.post(f"{RPC_PREFIX}.ItemsService/ListItems", "{}", auth=None)[2] == kept
        conn = server.http()
        conn.request("GET", "/")
        assert conn.getresponse().read() == page
        own.resume()
        assert until(lambda: server.post(f"{RPC_PREFIX}.ItemsService/AddItem",
                                         json.dumps({"name": "After"}))[0] == 200, timeout=15) is not None
        names = [i["name"] for i in json_rpc(server, "ItemsService/ListItems", {})["items"]]
        assert names == ["Before the outage", "After"]  # nothing of the refused write, nothing lost
        server.stop()
        assert server.proc.stderr.read().decode() == ""  # (the driver's warnings are log lines too)
        assert any(line.get("event") == "database_driver" and line["level"] == "warning"
                   for line in map(json.loads, (tmp_path / "outage.log").read_text().splitlines()))
    finally:
        if server is not None:
            server.stop()
        own.stop()


def test_without_the_driver_a_postgresql_url_is_one_line(cluster):
    program = ("import sys, runpy; sys.modules['psycopg'] = None; sys.argv[0] = 'statusthing'; "
               "runpy.run_module('statusthing', run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", program, "--db", cluster.database("no-driver"), "--api-addr",
                             "127.0.0.1:0"], capture_output=True, text=True, timeout=30, env=child_env())
    assert_one_line_failure(result, "pip install 'statusthing[postgres]'", "psycopg")


def test_a_wrong_postgresql_url_is_one_line(cluster):
    result = run_statusthing("--db", f"{cluster.url}/no_such_database", "--api-addr", "127.0.0.1:0", timeout=30)
    line = assert_one_line_failure(result, "cannot open database", "no_such_database")
    assert "Traceback" not in result.stderr and ADMIN_AUTH not in line
