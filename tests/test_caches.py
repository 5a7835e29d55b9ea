"""Kept answers: in-process, one computation per miss however many ask, nothing kept across a write or past its
time, bounded memory; and through real servers, answers that follow changes made by another process."""
import json
import threading
import time

import statusthing
from conftest import BACKEND, Server, database


def test_many_concurrent_misses_compute_once():
    generation = [0]
    cache = statusthing.AnswerCache(lambda: generation[0])
    calls = []

    def compute():
        calls.append(1)
        time.sleep(0.2)
        return b"answer"

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get(("k",), compute))) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [b"answer"] * 16 and len(calls) == 1


def test_a_write_makes_the_next_read_compute_again():
    generation = [0]
    cache = statusthing.AnswerCache(lambda: generation[0])
    assert cache.get(("k",), lambda: b"old") == b"old"
    assert cache.get(("k",), lambda: b"never") == b"old"
    generation[0] += 1
    assert cache.get(("k",), lambda: b"new") == b"new"


def test_an_answer_computed_during_a_write_is_not_kept():
    generation = [0]
    cache = statusthing.AnswerCache(lambda: generation[0])

    def compute_while_writing():
        generation[0] += 1  # a write commits while the answer is being computed
        return b"maybe stale"

    assert cache.get(("k",), compute_while_writing) == b"maybe stale"
    assert cache.get(("k",), lambda: b"fresh") == b"fresh"


def test_errors_are_not_kept_and_waiters_retry():
    cache = statusthing.AnswerCache(lambda: 0)
    attempts = []

    def failing():
        attempts.append(1)
        raise statusthing.NotFound("nope")

    for _ in range(2):
        try:
            cache.get(("k",), failing)
        except statusthing.NotFound:
            pass
    assert len(attempts) == 2


def test_memory_is_bounded():
    cache = statusthing.AnswerCache(lambda: 0, max_bytes=10_000)
    for n in range(100):
        cache.get(("k", str(n).encode()), lambda: b"x" * 1000)
    assert cache._bytes <= 10_000 and len(cache._entries) <= 10


def test_an_answer_is_kept_until_the_time_its_computation_named():
    cache = statusthing.AnswerCache(lambda: 0)
    now = time.time_ns()

    def expiring(at):
        def compute():
            statusthing.valid_until(at)
            return f"until {at}"
        return compute

    assert cache.get(("past",), expiring(now - 1)) == f"until {now - 1}"
    assert cache.get(("past",), lambda: "computed again") == "computed again"  # it had expired when asked
    far = now + 3600 * 10 ** 9
    assert cache.get(("future",), expiring(far)) == f"until {far}"
    assert cache.get(("future",), lambda: "never") == f"until {far}"


def test_an_answer_built_from_an_expiring_one_expires_with_it():
    cache = statusthing.AnswerCache(lambda: 0)
    soon = time.time_ns() - 1  # already past when the outer answer is next asked for

    def inner():
        statusthing.valid_until(soon)
        return "inner"

    outer = cache.get(("outer",), lambda: cache.get(("inner",), inner) + " and outer")
    assert outer == "inner and outer"
    assert cache.get(("outer",), lambda: "outer again") == "outer again"


def test_a_change_by_another_process_shows_in_the_next_answer_and_page(start_server, tmp_path):
    """On SQLite at once; on PostgreSQL, when the change's notification arrives (within a second, as promised)."""
    first = start_server()
    second = Server(first.db_path, tmp_path / "second.log")  # another process on the same database file
    try:
        items = "/statusthing.v1.ItemsService/ListItems"

        def seen(server):
            return ([item["name"] for item in json.loads(server.post(items, "{}")[2]).get("items", [])],
                    page(server))

        def page(server):
            conn = server.http()
            conn.request("GET", "/")
            return conn.getresponse().read().decode()

        def names(server, expected=None):
            """The names in the next answer (after up to a second of answers on PostgreSQL, until they show)."""
            deadline = time.monotonic() + (1.0 if BACKEND["name"] == "postgres" else 0)
            found, html = seen(server)
            while found != expected and time.monotonic() < deadline:
                found, html = seen(server)
            assert all(name in html for name in found)
            return found

        assert names(first) == [] and "Written by the other one" not in page(first)  # now kept by the first
        assert second.post("/statusthing.v1.ItemsService/AddItem", '{"name": "Written by the other one"}')[0] == 200
        assert names(first, ["Written by the other one"]) == ["Written by the other one"]
        # A hand edit (this test's own process, by the database's own driver) counts too.
        with database(first) as conn:
            conn.execute("UPDATE items SET name = 'Edited by hand'")
        assert names(first, ["Edited by hand"]) == ["Edited by hand"]
    finally:
        second.stop()
