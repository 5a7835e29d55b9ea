"""Migrations and storage rules, against real database files: through the server where the server can show it,
and through ``statusthing.migrate`` on a real SQLite file for a migration that fails on purpose."""
import json
import sqlite3
import subprocess
import sys

import pytest

import statusthing
from conftest import ROOT

LATEST = statusthing.MIGRATIONS[-1][0]


def list_statuses(server):
    status, _, body = server.post("/statusthing.v1.StatusService/ListStatus", "{}")
    assert status == 200
    return json.loads(body).get("statuses", [])


def migration_rows(db_path):
    with sqlite3.connect(db_path) as conn:
        return conn.execute("SELECT version, name, applied_at FROM schema_migrations ORDER BY version").fetchall()


def schema_dump(db_path):
    with sqlite3.connect(db_path) as conn:
        return list(conn.iterdump())


def run_server_expecting_failure(db_path):
    result = subprocess.run([sys.executable, str(ROOT / "statusthing.py"), "--api-addr", "127.0.0.1:0",
                             "--db", str(db_path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    return result.stderr


@pytest.mark.sqlite_only
def test_fresh_database_is_migrated_and_gets_the_defaults(server):
    assert server.start_line["schema_version"] == LATEST
    assert [row[0] for row in migration_rows(server.db_path)] == list(range(1, LATEST + 1))
    defaults = {(s["name"], s["kind"], s["color"]) for s in list_statuses(server)}
    assert defaults == {("UP", "STATUS_KIND_UP", "#5DFC0A"), ("DOWN", "STATUS_KIND_DOWN", "#FF0000"),
                        ("WARNING", "STATUS_KIND_WARNING", "#EEEB8D")}
    with sqlite3.connect(server.db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.sqlite_only
def test_restart_applies_nothing_and_deleted_defaults_stay_deleted(start_server, tmp_path):
    first = start_server()
    down = next(s for s in list_statuses(first) if s["name"] == "DOWN")
    first.post("/statusthing.v1.StatusService/DeleteStatus", json.dumps({"status_id": down["id"]}))
    rows = migration_rows(first.db_path)
    assert first.stop() == 0
    second = start_server()
    assert second.start_line["schema_version"] == LATEST
    assert migration_rows(second.db_path) == rows  # nothing re-applied
    assert sorted(s["name"] for s in list_statuses(second)) == ["UP", "WARNING"]


@pytest.mark.sqlite_only
def test_database_newer_than_the_code_is_refused(tmp_path, start_server):
    server = start_server()
    server.stop()
    with sqlite3.connect(server.db_path) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (99, 'from the future', '2030-01-01')")
    before = schema_dump(server.db_path)
    message = run_server_expecting_failure(server.db_path)
    assert "version 99 is newer" in message
    assert schema_dump(server.db_path) == before


def test_a_failing_migration_leaves_the_database_as_it_was(tmp_path):
    path = tmp_path / "st.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert statusthing.migrate(conn) == LATEST
    before = schema_dump(path)

    def broken(connection):
        connection.execute("CREATE TABLE half_done (x)")
        connection.execute("INSERT INTO statuses (id, name, kind, created_ns, updated_ns) "
                           "VALUES ('x', 'from broken migration', 1, 0, 0)")
        raise RuntimeError("disk on fire")

    with pytest.raises(statusthing.StartupError,
                       match=f"migration {LATEST + 1} .* failed and was rolled back: disk on fire"):
        statusthing.migrate(conn, statusthing.MIGRATIONS + ((LATEST + 1, "broken", broken),))
    assert schema_dump(path) == before
    assert statusthing.schema_version(conn) == LATEST
    conn.close()


def test_the_server_refuses_to_start_when_a_real_migration_fails(tmp_path):
    # A database at version 1 that already holds a status named "UP": migration 2 (the defaults) must fail on
    # the unique name, roll back, and leave the operator's row alone.
    path = tmp_path / "st.db"
    conn = sqlite3.connect(path, isolation_level=None)
    statusthing.migrate(conn, statusthing.MIGRATIONS[:1])
    conn.execute("INSERT INTO statuses (id, name, kind, created_ns, updated_ns) VALUES ('mine', 'up', 1, 0, 0)")
    conn.close()
    before = schema_dump(path)
    assert "migration 2 (default statuses) failed" in run_server_expecting_failure(path)
    assert schema_dump(path) == before


@pytest.mark.sqlite_only
def test_foreign_keys_are_enforced(server):
    # The server's own rules stop this first; the schema stops it too, for anyone editing the file by hand.
    status, _, body = server.post("/statusthing.v1.ItemsService/AddItem", json.dumps({"name": "fk"}))
    item_id = json.loads(body)["item"]["id"]
    conn = sqlite3.connect(server.db_path)
    conn.execute("PRAGMA foreign_keys = ON")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE items SET status_id = 'no-such-status' WHERE id = ?", (item_id,))
    conn.close()


@pytest.mark.sqlite_only
def test_migrate_db_knows_every_table(server):
    """statusthing.TABLES is what migrate-db copies: every table of the schema but the migrations' own record."""
    with sqlite3.connect(server.db_path) as conn:
        tables = {row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
    assert tables - {"schema_migrations"} == set(statusthing.TABLES)
    assert len(statusthing.TABLES) == len(set(statusthing.TABLES))
