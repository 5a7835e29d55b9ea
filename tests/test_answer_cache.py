"""The cache of read answers, in-process: one computation per miss however many ask, nothing kept across a write,
and bounded memory."""
import threading
import time

import statusthing


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
