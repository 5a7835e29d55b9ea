"""Answers that stay bounded and correct as data grows: notes paged with opaque tokens, notes_limit on items, the
item page in pages of 50, deletes that return at once and purge afterwards, answers within what their clients take, and
answers assembled from per-item parts that follow every kind of change."""
import json
import re
import sqlite3
import time

import pytest

import statusthing_pb2 as pb
from conftest import fails


def add_notes(server, item_id, count, text="note"):
    """``count`` notes written straight into the database (a bulk load), as the server's own writes would be."""
    with sqlite3.connect(server.db_path) as conn:
        conn.executemany("INSERT INTO notes (id, item_id, text, created_ns, updated_ns) VALUES (?,?,?,?,?)",
                         [(f"{item_id}-{n:07d}", item_id, f"{text} {n}", n + 1, n + 1) for n in range(count)])


def test_notes_are_paged_newest_first_with_opaque_tokens(api, unique):
    item = api.AddItem(name=unique("item")).item
    for n in range(7):
        api.AddNote(item_id=item.id, note_text=f"n{n}")
    seen, token = [], ""
    for _ in range(4):
        page = api.ListNotes(item_id=item.id, page_size=3, page_token=token)
        seen += [note.text for note in page.notes]
        token = page.next_page_token
        if not token:
            break
    assert seen == [f"n{n}" for n in range(6, -1, -1)] and not token
    assert len(api.ListNotes(item_id=item.id).notes) == 7  # 0 means the default page (100)
    for bad in ("nope", "bm90ZXM6", "aXRlbXM6eA", token + "x"):
        fails("invalid_argument", api.ListNotes, item_id=item.id, page_token=bad)
    for size in (-1, 1001):
        fails("invalid_argument", api.ListNotes, item_id=item.id, page_size=size)


def test_items_carry_at_most_their_newest_notes(api, unique):
    item = api.AddItem(name=unique("item")).item
    for n in range(12):
        api.AddNote(item_id=item.id, note_text=f"n{n}")
    assert [n.text for n in api.GetItem(item_id=item.id, notes_limit=5).item.notes] == [
        f"n{n}" for n in range(11, 6, -1)]
    assert len(api.GetItem(item_id=item.id).item.notes) == 12
    listed = {i.id: i for i in api.ListItems(extended=True, notes_limit=2).items}
    assert [n.text for n in listed[item.id].notes] == ["n11", "n10"]
    assert not {i.id: i for i in api.ListItems(notes_limit=2).items}[item.id].notes  # only when extended
    fails("invalid_argument", api.GetItem, item_id=item.id, notes_limit=-1)
    fails("invalid_argument", api.ListItems, extended=True, notes_limit=5000)


@pytest.mark.sqlite_only
def test_an_item_with_a_hundred_thousand_notes(server):
    status, _, body = server.post("/statusthing.v1.ItemsService/AddItem", '{"name": "Chatty"}')
    item_id = json.loads(body)["item"]["id"]
    add_notes(server, item_id, 100_000)
    got = json.loads(server.post("/statusthing.v1.ItemsService/GetItem", json.dumps({"itemId": item_id}))[2])
    assert len(got["item"]["notes"]) == 100 and got["item"]["notes"][0]["text"] == "note 99999"
    page = json.loads(server.post("/statusthing.v1.NotesService/ListNotes", json.dumps({"itemId": item_id}))[2])
    assert len(page["notes"]) == 100 and page["nextPageToken"]
    # The item's page: 50 notes, and a link to the next 50.
    conn = server.http()
    conn.request("GET", f"/items/{item_id}")
    html = conn.getresponse().read().decode()
    assert len(re.findall(r"<p>note \d+</p>", html)) == 50 and "note 99999" in html and "note 99950" in html
    older = re.search(r'href="(/items/[^"]+\?before=[^"]+)"', html).group(1)
    conn.request("GET", older.replace("&amp;", "&"))
    html = conn.getresponse().read().decode()
    assert len(re.findall(r"<p>note \d+</p>", html)) == 50 and "note 99949" in html and "note 99950" not in html
    assert len(html.encode()) < 200_000
    # Deleting it answers at once; the notes are gone for readers at once and from the database soon after.
    note_id = got["item"]["notes"][0]["id"]
    started = time.perf_counter()
    assert server.post("/statusthing.v1.ItemsService/DeleteItem", json.dumps({"itemId": item_id}))[0] == 200
    assert time.perf_counter() - started < 1
    status, _, _ = server.post("/statusthing.v1.NotesService/GetNote", json.dumps({"noteId": note_id}))
    assert status == 404
    deadline = time.monotonic() + 30
    with sqlite3.connect(server.db_path) as conn:
        while conn.execute("SELECT COUNT(*) FROM notes").fetchone()[0]:
            assert time.monotonic() < deadline, "the janitor did not purge the notes"
            time.sleep(0.05)
        assert conn.execute("SELECT COUNT(*) FROM purge_queue").fetchone()[0] == 0
    audit = [row for row in sqlite3.connect(server.db_path).execute(
        "SELECT changes FROM audit_log WHERE rpc = 'DeleteItem'")]
    assert json.loads(audit[-1][0])["notes"] == [100_000, None]


@pytest.mark.sqlite_only
def test_a_purge_left_unfinished_is_finished_after_a_restart(start_server, tmp_path):
    first = start_server()
    item_id = json.loads(first.post("/statusthing.v1.ItemsService/AddItem", '{"name": "Doomed"}')[2])["item"]["id"]
    first.stop()
    with sqlite3.connect(first.db_path) as conn:  # as if the server stopped right after the delete
        conn.executemany("INSERT INTO notes (id, item_id, text, created_ns, updated_ns) VALUES (?,?,?,?,?)",
                         [(f"orphan-{n}", item_id, "x", n, n) for n in range(5000)])
        conn.execute("DELETE FROM items WHERE id = ?", (item_id,))
        conn.execute("INSERT INTO purge_queue (item_id, queued_ns) VALUES (?, 1)", (item_id,))
    start_server()
    deadline = time.monotonic() + 30
    with sqlite3.connect(first.db_path) as conn:
        while conn.execute("SELECT COUNT(*) FROM notes").fetchone()[0]:
            assert time.monotonic() < deadline
            time.sleep(0.05)


@pytest.mark.sqlite_only
def test_answers_stay_within_what_their_clients_take(server):
    """gRPC clients take 4 MiB by default: larger answers are refused there, with a message saying to ask for
    less. Connect clients set no such limit: they get answers up to 16 MiB."""
    with sqlite3.connect(server.db_path) as conn:  # 2,500 items with long descriptions: about 5 MB of answer
        conn.executemany("INSERT INTO items (id, name, description, created_ns, updated_ns) VALUES (?,?,?,?,?)",
                         [(f"I{n:06d}", f"item {n}", "d" * 2000, n + 1, n + 1) for n in range(2500)])
    for content_type, body in (("application/json", b"{}"), ("application/proto", b"")):
        status, _, answer = server.post("/statusthing.v1.ItemsService/ListItems", body, content_type)
        assert status == 200 and len(answer) > 5_000_000
    with server.channel() as channel:
        import grpc
        with pytest.raises(grpc.RpcError) as info:
            channel.unary_unary("/statusthing.v1.ItemsService/ListItems",
                                request_serializer=pb.ListItemsRequest.SerializeToString)(pb.ListItemsRequest(),
                                                                                          timeout=30)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "MiB" in info.value.details()
    with sqlite3.connect(server.db_path) as conn:  # 9,000 of them: about 18 MB, too much for one answer anywhere
        conn.executemany("INSERT INTO items (id, name, description, created_ns, updated_ns) VALUES (?,?,?,?,?)",
                         [(f"J{n:06d}", f"more {n}", "d" * 2000, n + 1, n + 1) for n in range(6500)])
    status, _, answer = server.post("/statusthing.v1.ItemsService/ListItems", b"{}")
    assert status == 429 and b"resource_exhausted" in answer and b"16.0 MiB" in answer
    with sqlite3.connect(server.db_path) as conn:
        conn.execute("DELETE FROM items WHERE id LIKE 'J%'")
    with sqlite3.connect(server.db_path) as conn:
        conn.execute("DELETE FROM items WHERE id >= 'I001000'")
    status, _, answer = server.post("/statusthing.v1.ItemsService/ListItems", b"{}")
    assert status == 200 and len(json.loads(answer)["items"]) == 1000


@pytest.mark.sqlite_only
def test_answers_from_parts_follow_every_change(server):
    def listed(**fields):
        status, _, body = server.post("/statusthing.v1.ItemsService/ListItems", json.dumps(fields))
        return {item["name"]: item for item in json.loads(body).get("items", [])}

    def call(rpc, **fields):
        service = {"Item": "ItemsService", "Note": "NotesService", "Status": "StatusService"}[
            re.sub(r"^(Add|Update|Delete|Get|List)", "", rpc)]
        status, _, body = server.post(f"/statusthing.v1.{service}/{rpc}", json.dumps(fields))
        assert status == 200, body
        return json.loads(body)

    status_id = call("AddStatus", name="Fine", kind="STATUS_KIND_UP")["status"]["id"]
    ids = [call("AddItem", name=f"part-{n}", initialStatusId=status_id)["item"]["id"] for n in range(20)]
    assert len(listed()) == 20 and len(listed(extended=True)) == 20  # parts now kept
    call("UpdateItem", itemId=ids[3], description="changed")
    assert listed()["part-3"]["description"] == "changed" and "description" not in listed()["part-4"]
    call("UpdateStatus", statusId=status_id, name="Renamed")  # every item shows its status
    assert {item["status"]["name"] for item in listed().values()} == {"Renamed"}
    note = call("AddNote", itemId=ids[5], noteText="first")["note"]
    assert [n["text"] for n in listed(extended=True)["part-5"]["notes"]] == ["first"]
    call("UpdateNote", noteId=note["id"], noteText="edited")
    assert [n["text"] for n in listed(extended=True)["part-5"]["notes"]] == ["edited"]
    call("DeleteNote", noteId=note["id"])
    assert "notes" not in listed(extended=True)["part-5"]
    call("DeleteItem", itemId=ids[7])
    assert "part-7" not in listed() and len(listed()) == 19
    with sqlite3.connect(server.db_path) as conn:  # and a hand edit, which no code of ours saw
        conn.execute("UPDATE items SET name = 'edited by hand' WHERE id = ?", (ids[9],))
    assert "edited by hand" in listed() and "edited by hand" in listed(extended=True)
    binary = pb.ListItemsResponse.FromString(server.post("/statusthing.v1.ItemsService/ListItems", b"",
                                                         "application/proto")[2])
    assert sorted(item.name for item in binary.items) == sorted(listed())
    conn = server.http()
    conn.request("GET", "/")
    page = conn.getresponse().read().decode()
    assert "edited by hand" in page and "part-7" not in page and page.count('class="item"') == 19


def test_durability_is_full_unless_asked(start_server, tmp_path):
    assert start_server().start_line["durability"] == "full"
    assert start_server("--durability", "normal", db_path=tmp_path / "other.db").start_line["durability"] == "normal"


@pytest.mark.sqlite_only
def test_a_reader_behind_a_pruned_change_log_reads_everything_again(server):
    def names():
        status, _, body = server.post("/statusthing.v1.ItemsService/ListItems", b"{}")
        return sorted(item["name"] for item in json.loads(body).get("items", []))

    for n in range(5):
        server.post("/statusthing.v1.ItemsService/AddItem", json.dumps({"name": f"logged-{n}"}))
    assert names() == [f"logged-{n}" for n in range(5)]
    with sqlite3.connect(server.db_path) as conn:  # changes the server has not read yet, then the log pruned
        conn.execute("UPDATE items SET name = 'renamed while away' WHERE name = 'logged-2'")
        conn.execute("DELETE FROM items WHERE name = 'logged-4'")
        conn.execute("INSERT INTO items (id, name, created_ns, updated_ns) VALUES ('01ZZZ', 'added by hand', 1, 1)")
        conn.execute("DELETE FROM changes WHERE seq < (SELECT MAX(seq) FROM changes)")
    assert names() == ["added by hand", "logged-0", "logged-1", "logged-3", "renamed while away"]


@pytest.mark.sqlite_only
def test_a_reader_that_has_seen_no_change_yet_still_notices_a_pruned_log(start_server):
    server = start_server()
    assert server.post("/statusthing.v1.ItemsService/ListItems", b"{}")[2] == b"{}"  # has read the (empty) log
    with sqlite3.connect(server.db_path) as conn:
        conn.executemany("INSERT INTO items (id, name, created_ns, updated_ns) VALUES (?, ?, 1, 1)",
                         [(f"01H{n:03d}", f"hand-{n}") for n in range(3)])
        conn.execute("DELETE FROM changes")  # every change gone from the log
    status, _, body = server.post("/statusthing.v1.ItemsService/ListItems", b"{}")
    assert sorted(item["name"] for item in json.loads(body)["items"]) == ["hand-0", "hand-1", "hand-2"]
