"""Every RPC and every rule of issue 2, run over Connect JSON, Connect binary and gRPC alike (the ``api``
fixture), against the real server on one port."""
import pytest

import statusthing_pb2 as pb
from conftest import fails


def ts(message):
    return message.timestamps.created.ToNanoseconds(), message.timestamps.updated.ToNanoseconds()


def new_status(api, unique, kind=pb.STATUS_KIND_UP, **fields):
    return api.AddStatus(name=unique("status"), kind=kind, **fields).status


def item_names(items, prefix):
    return [item.name for item in items if item.name.startswith(prefix)]


# -- statuses ----------------------------------------------------------------------------------------------------

def test_add_and_get_status(api, unique):
    name = unique("status")
    added = api.AddStatus(name=f"  {name}  ", description="all good", color="#00ff00",
                          kind=pb.STATUS_KIND_AVAILABLE).status
    assert added.id and added.name == name  # trimmed
    assert (added.description, added.color, added.kind) == ("all good", "#00ff00", pb.STATUS_KIND_AVAILABLE)
    created, updated = ts(added)
    assert created and created == updated
    assert api.GetStatus(status_id=added.id).status == added


@pytest.mark.parametrize("name", ["", "   ", "\t\n"])
def test_status_name_is_required(api, name):
    assert "name is required" in fails("invalid_argument", api.AddStatus, name=name, kind=pb.STATUS_KIND_UP)


def test_status_kind_is_required(api, unique):
    name = unique()
    assert "kind" in fails("invalid_argument", api.AddStatus, name=name)
    assert name not in [s.name for s in api.ListStatus().statuses]


def test_status_kind_out_of_range_is_invalid(api, unique):
    fails("invalid_argument", api.AddStatus, name=unique(), kind=99)


def test_status_color_must_be_a_colour(api, unique):
    fails("invalid_argument", api.AddStatus, name=unique(), kind=pb.STATUS_KIND_UP, color="red;background:url(x)")
    assert api.AddStatus(name=unique(), kind=pb.STATUS_KIND_UP, color="rebeccapurple").status.color


def test_status_names_are_unique_ignoring_case(api, unique):
    name = unique("dup")
    api.AddStatus(name=name, kind=pb.STATUS_KIND_UP)
    message = fails("already_exists", api.AddStatus, name=name.upper(), kind=pb.STATUS_KIND_DOWN)
    assert name.upper() in message
    assert [s.name.lower() for s in api.ListStatus().statuses].count(name.lower()) == 1


def test_get_status_errors(api):
    fails("not_found", api.GetStatus, status_id="01NOPE")
    fails("invalid_argument", api.GetStatus, status_id="")


def test_list_status_filters_by_kind(api, unique):
    observing = new_status(api, unique, pb.STATUS_KIND_OBSERVING)
    offline = new_status(api, unique, pb.STATUS_KIND_OFFLINE)
    everything = {s.id for s in api.ListStatus().statuses}
    assert {observing.id, offline.id} <= everything
    only = api.ListStatus(kinds=[pb.STATUS_KIND_OBSERVING]).statuses
    assert observing.id in {s.id for s in only} and offline.id not in {s.id for s in only}
    assert {s.kind for s in only} == {pb.STATUS_KIND_OBSERVING}
    both = api.ListStatus(kinds=[pb.STATUS_KIND_OBSERVING, pb.STATUS_KIND_OFFLINE]).statuses
    assert {observing.id, offline.id} <= {s.id for s in both}
    assert "kinds filter" in fails("invalid_argument", api.ListStatus, kinds=[pb.STATUS_KIND_UNKNOWN])
    fails("invalid_argument", api.ListStatus, kinds=[pb.STATUS_KIND_UP, 99])


def test_update_status_changes_only_the_fields_set(api, unique):
    status = new_status(api, unique, description="first", color="#111111")
    new_name = unique("renamed")
    api.UpdateStatus(status_id=status.id, name=new_name)
    after = api.GetStatus(status_id=status.id).status
    assert (after.name, after.description, after.color, after.kind) == (new_name, "first", "#111111", status.kind)
    assert ts(after)[1] > ts(status)[1] and ts(after)[0] == ts(status)[0]
    api.UpdateStatus(status_id=status.id, kind=pb.STATUS_KIND_DOWN, color="#222222")
    after = api.GetStatus(status_id=status.id).status
    assert (after.name, after.description, after.color, after.kind) == (new_name, "first", "#222222",
                                                                        pb.STATUS_KIND_DOWN)


def test_update_status_can_clear_description(api, unique):
    status = new_status(api, unique, description="to be cleared")
    api.UpdateStatus(status_id=status.id, description="")
    assert api.GetStatus(status_id=status.id).status.description == ""


def test_update_status_errors(api, unique):
    taken = new_status(api, unique)
    status = new_status(api, unique)
    fails("not_found", api.UpdateStatus, status_id="01NOPE", name="x")
    fails("invalid_argument", api.UpdateStatus, status_id="", name="x")
    fails("already_exists", api.UpdateStatus, status_id=status.id, name=taken.name)
    fails("invalid_argument", api.UpdateStatus, status_id=status.id, name="   ")
    fails("invalid_argument", api.UpdateStatus, status_id=status.id, kind=42)
    assert api.GetStatus(status_id=status.id).status == status  # nothing changed


def test_delete_status(api, unique):
    status = new_status(api, unique)
    api.DeleteStatus(status_id=status.id)
    fails("not_found", api.GetStatus, status_id=status.id)
    fails("not_found", api.DeleteStatus, status_id=status.id)
    fails("invalid_argument", api.DeleteStatus, status_id="")


def test_delete_status_in_use_says_how_many_items_use_it(api, unique):
    status = new_status(api, unique)
    other = new_status(api, unique)
    first = api.AddItem(name=unique("item"), initial_status_id=status.id).item
    api.AddItem(name=unique("item"), initial_status_id=status.id)
    message = fails("failed_precondition", api.DeleteStatus, status_id=status.id)
    assert "2 items" in message and status.name in message
    assert api.GetStatus(status_id=status.id).status == status
    api.UpdateItem(item_id=first.id, status_id=other.id)
    assert "1 item" in fails("failed_precondition", api.DeleteStatus, status_id=status.id)


# -- items -------------------------------------------------------------------------------------------------------

def test_add_item_minimal(api, unique):
    name = unique("item")
    item = api.AddItem(name=f" {name} ", description="the API").item
    assert item.id and item.name == name and item.description == "the API"
    assert not item.HasField("status") and not item.notes
    created, updated = ts(item)
    assert created and created == updated
    assert api.GetItem(item_id=item.id).item == item


def test_add_item_with_initial_status_id_and_note(api, unique):
    status = new_status(api, unique)
    item = api.AddItem(name=unique("item"), initial_status_id=status.id, initial_note_text="deployed",
                       description="with everything", position=3, group="Core").item
    assert item.status == status
    assert (item.description, item.position, item.group) == ("with everything", 3, "Core")
    assert [n.text for n in item.notes] == ["deployed"] and item.notes[0].id
    assert api.GetItem(item_id=item.id).item == item


def test_add_item_with_initial_status_creates_it(api, unique):
    status_name = unique("new-status")
    item = api.AddItem(name=unique("item"), initial_status=pb.Status(
        name=status_name, kind=pb.STATUS_KIND_INVESTIGATING, color="#ffaa00")).item
    assert item.status.id and item.status.name == status_name
    assert item.status.kind == pb.STATUS_KIND_INVESTIGATING
    assert api.GetStatus(status_id=item.status.id).status == item.status
    assert api.GetItem(item_id=item.id).item == item  # (the answer is what was stored, not read back)


def test_add_item_initial_status_id_wins_over_initial_status(api, unique):
    status = new_status(api, unique)
    ignored = unique("ignored")
    item = api.AddItem(name=unique("item"), initial_status_id=status.id,
                       initial_status=pb.Status(name=ignored, kind=pb.STATUS_KIND_DOWN)).item
    assert item.status.id == status.id
    assert ignored not in [s.name for s in api.ListStatus().statuses]


def test_add_item_failures_leave_nothing_behind(api, unique):
    taken = api.AddItem(name=unique("taken")).item
    status_name, name = unique("status"), unique("item")
    fails("not_found", api.AddItem, name=name, initial_status_id="01NOPE", initial_note_text="x")
    fails("invalid_argument", api.AddItem, name=name, initial_status=pb.Status(name=status_name))
    # The status would be created first, then the item name clashes: the status must be rolled back too.
    fails("already_exists", api.AddItem, name=taken.name,
          initial_status=pb.Status(name=status_name, kind=pb.STATUS_KIND_UP), initial_note_text="x")
    names = [i.name for i in api.ListItems().items]
    assert name not in names and names.count(taken.name) == 1
    assert status_name not in [s.name for s in api.ListStatus().statuses]
    assert not api.ListNotes(item_id=taken.id).notes


def test_ids_are_ulids_that_sort_by_creation(api, unique):
    """26 characters of Crockford's base32; the first ten are the millisecond the thing was made (the id is made
    just before the created time is read)."""
    items = [api.AddItem(name=unique(f"ulid-{n}")).item for n in range(20)]
    crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    for item in items:
        assert len(item.id) == 26 and set(item.id) <= set(crockford)
        made_ms = sum(crockford.index(char) << (5 * (9 - n)) for n, char in enumerate(item.id[:10]))
        assert 0 <= item.timestamps.created.ToMilliseconds() - made_ms <= 50
    assert [item.id for item in items] == sorted(item.id for item in items)


@pytest.mark.parametrize("name", ["", "  "])
def test_item_name_is_required(api, name):
    assert "name is required" in fails("invalid_argument", api.AddItem, name=name)


def test_item_names_are_unique(api, unique):
    name = unique("item")
    api.AddItem(name=name)
    assert name in fails("already_exists", api.AddItem, name=name)
    fails("already_exists", api.AddItem, name=name.upper())


def test_item_name_length_is_limited(api):
    assert "longer" in fails("invalid_argument", api.AddItem, name="x" * 201)


def test_get_item_errors(api):
    fails("not_found", api.GetItem, item_id="01NOPE")
    fails("invalid_argument", api.GetItem, item_id="")


def test_get_item_has_notes_newest_first(api, unique):
    item = api.AddItem(name=unique("item"), initial_note_text="one").item
    api.AddNote(item_id=item.id, note_text="two")
    api.AddNote(item_id=item.id, note_text="three")
    assert [n.text for n in api.GetItem(item_id=item.id).item.notes] == ["three", "two", "one"]


def test_ids_are_unique_and_sort_by_creation(api, unique):
    prefix = unique("order")
    ids = [api.AddItem(name=f"{prefix}-{n:02d}").item.id for n in range(12)]
    assert len(set(ids)) == 12 and ids == sorted(ids)
    listed = [i.name for i in api.ListItems().items if i.name.startswith(prefix)]
    assert listed == [f"{prefix}-{n:02d}" for n in range(12)]  # creation order


def test_list_items_notes_only_when_extended(api, unique):
    status = new_status(api, unique)
    item = api.AddItem(name=unique("item"), initial_status_id=status.id, initial_note_text="first").item
    api.AddNote(item_id=item.id, note_text="second")
    plain = [i for i in api.ListItems().items if i.id == item.id][0]
    assert plain.status == status and not plain.notes
    extended = [i for i in api.ListItems(extended=True).items if i.id == item.id][0]
    assert [n.text for n in extended.notes] == ["second", "first"]


def test_list_items_filters(api, unique):
    up, down = new_status(api, unique, pb.STATUS_KIND_ONLINE), new_status(api, unique, pb.STATUS_KIND_DECOMM)
    a = api.AddItem(name=unique("a"), initial_status_id=up.id).item
    b = api.AddItem(name=unique("b"), initial_status_id=down.id).item
    bare = api.AddItem(name=unique("bare")).item

    def ids(**filters):
        return [i.id for i in api.ListItems(**filters).items]

    assert ids(status_ids=[up.id]) == [a.id]
    assert ids(status_ids=[up.id, down.id]) == [a.id, b.id]
    decomm = api.ListItems(kinds=[pb.STATUS_KIND_DECOMM]).items
    assert b.id in [i.id for i in decomm] and {i.status.kind for i in decomm} == {pb.STATUS_KIND_DECOMM}
    assert bare.id not in ids(kinds=[pb.STATUS_KIND_DECOMM, pb.STATUS_KIND_ONLINE])
    # Each given filter must match: a's status is ONLINE, not DECOMM.
    assert ids(status_ids=[up.id, down.id], kinds=[pb.STATUS_KIND_DECOMM]) == [b.id]
    assert ids(status_ids=[up.id], kinds=[pb.STATUS_KIND_DECOMM]) == []
    fails("invalid_argument", api.ListItems, kinds=[77])


def test_update_item_changes_only_the_fields_set(api, unique):
    status, other = new_status(api, unique), new_status(api, unique, pb.STATUS_KIND_DOWN)
    item = api.AddItem(name=unique("item"), description="desc", initial_status_id=status.id).item
    api.UpdateItem(item_id=item.id, description="new desc")
    after = api.GetItem(item_id=item.id).item
    assert (after.name, after.description, after.status.id) == (item.name, "new desc", status.id)
    assert ts(after)[1] > ts(item)[1]
    before_status_change = ts(after)[1]
    api.UpdateItem(item_id=item.id, status_id=other.id)
    after = api.GetItem(item_id=item.id).item
    assert after.status == other and after.description == "new desc"
    assert ts(after)[1] > before_status_change  # a status change moves the item's updated
    name = unique("renamed")
    api.UpdateItem(item_id=item.id, name=name)
    assert api.GetItem(item_id=item.id).item.name == name


def test_update_item_can_clear_description(api, unique):
    item = api.AddItem(name=unique("item"), description="temporary").item
    api.UpdateItem(item_id=item.id, description="")
    assert api.GetItem(item_id=item.id).item.description == ""


def test_update_item_errors_change_nothing(api, unique):
    taken = api.AddItem(name=unique("taken")).item
    item = api.AddItem(name=unique("item"), description="keep").item
    fails("not_found", api.UpdateItem, item_id="01NOPE", name="x")
    fails("invalid_argument", api.UpdateItem, item_id="", name="x")
    fails("not_found", api.UpdateItem, item_id=item.id, description="lost", status_id="01NOPE")
    fails("already_exists", api.UpdateItem, item_id=item.id, name=taken.name, description="lost")
    fails("invalid_argument", api.UpdateItem, item_id=item.id, name=" ", description="lost")
    assert api.GetItem(item_id=item.id).item == item


def test_delete_item_deletes_its_notes(api, unique):
    item = api.AddItem(name=unique("item"), initial_note_text="bye").item
    note_id = item.notes[0].id
    api.DeleteItem(item_id=item.id)
    fails("not_found", api.GetItem, item_id=item.id)
    fails("not_found", api.GetNote, note_id=note_id)
    fails("not_found", api.DeleteItem, item_id=item.id)
    fails("invalid_argument", api.DeleteItem, item_id="")


# -- notes -------------------------------------------------------------------------------------------------------

def test_add_note_moves_item_updated(api, unique):
    item = api.AddItem(name=unique("item")).item
    note = api.AddNote(item_id=item.id, note_text="  investigating  ").note
    assert note.id and note.text == "investigating"
    assert ts(note)[0] == ts(note)[1]
    assert api.GetNote(note_id=note.id).note == note
    assert ts(api.GetItem(item_id=item.id).item)[1] > ts(item)[1]


def test_add_note_errors(api, unique):
    item = api.AddItem(name=unique("item")).item
    fails("invalid_argument", api.AddNote, item_id=item.id, note_text="  ")
    fails("not_found", api.AddNote, item_id="01NOPE", note_text="x")
    fails("invalid_argument", api.AddNote, item_id="", note_text="x")
    assert not api.ListNotes(item_id=item.id).notes


def test_list_notes_newest_first(api, unique):
    item = api.AddItem(name=unique("item")).item
    for text in ("a", "b", "c"):
        api.AddNote(item_id=item.id, note_text=text)
    assert [n.text for n in api.ListNotes(item_id=item.id).notes] == ["c", "b", "a"]
    fails("not_found", api.ListNotes, item_id="01NOPE")
    fails("invalid_argument", api.ListNotes, item_id="")


def test_update_note(api, unique):
    item = api.AddItem(name=unique("item"), initial_note_text="typo").item
    note = item.notes[0]
    api.UpdateNote(note_id=note.id, note_text="fixed")
    after = api.GetNote(note_id=note.id).note
    assert after.text == "fixed" and ts(after)[0] == ts(note)[0] and ts(after)[1] > ts(note)[1]
    fails("invalid_argument", api.UpdateNote, note_id=note.id, note_text="")
    fails("not_found", api.UpdateNote, note_id="01NOPE", note_text="x")
    fails("invalid_argument", api.UpdateNote, note_id="", note_text="x")
    assert api.GetNote(note_id=note.id).note == after


def test_delete_note(api, unique):
    item = api.AddItem(name=unique("item"), initial_note_text="keep").item
    doomed = api.AddNote(item_id=item.id, note_text="doomed").note
    api.DeleteNote(note_id=doomed.id)
    fails("not_found", api.GetNote, note_id=doomed.id)
    fails("not_found", api.DeleteNote, note_id=doomed.id)
    fails("invalid_argument", api.GetNote, note_id="")
    assert [n.text for n in api.ListNotes(item_id=item.id).notes] == ["keep"]


def test_reads_see_writes_immediately(api, unique):
    """Read answers are kept between writes; a write must make the next read fresh."""
    item = api.AddItem(name=unique("item")).item
    for n in range(3):
        api.ListItems(extended=True)
        api.AddNote(item_id=item.id, note_text=f"note {n}")
        listed = [i for i in api.ListItems(extended=True).items if i.id == item.id][0]
        assert len(listed.notes) == n + 1
