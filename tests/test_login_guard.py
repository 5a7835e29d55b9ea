"""Login throttling under attack: a burst of guesses is counted before it is checked, memory stays bounded, and an
attacker elsewhere (another address, many addresses, behind a trusted proxy) cannot lock out the operator or any
API token."""
import http.client
import json
import threading

from conftest import ADMIN_AUTH, basic, cli

ADD = "/statusthing.v1.ItemsService/AddItem"
WRONG = basic("admin", "a wrong guess")


def peak_rss_kb(server):
    with open(f"/proc/{server.proc.pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


def add_from(server, source, auth, name="x", forwarded_for=None):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30, source_address=(source, 0))
    try:
        headers = {"Content-Type": "application/json", "Authorization": auth}
        if forwarded_for:
            headers["X-Forwarded-For"] = forwarded_for
        conn.request("POST", ADD, body=json.dumps({"name": name}), headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def all_at_once(count, call):
    """``call(n)`` from ``count`` threads released together; their results in order."""
    barrier, results = threading.Barrier(count), [None] * count

    def run(n):
        barrier.wait()
        results[n] = call(n)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_fifty_wrong_passwords_at_once_are_ten_checks(server):
    before = peak_rss_kb(server)
    statuses = [status for status, _ in all_at_once(50, lambda n: add_from(server, "127.0.0.20", WRONG))]
    assert statuses.count(401) <= 10 and statuses.count(401) + statuses.count(429) == 50, statuses
    assert (peak_rss_kb(server) - before) <= 64 * 1024
    assert add_from(server, "127.0.0.20", ADMIN_AUTH)[0] == 429  # that pair stays locked, right password or not
    assert add_from(server, "127.0.0.21", ADMIN_AUTH)[0] == 200  # nobody else is


def test_a_known_address_guessing_wrong_is_locked_like_any_other(server):
    """A client that logged in before, with its password already proven, writes without waiting for its turn; the
    moment it has failed, that shortcut is gone: ten wrong guesses lock it, right password or not."""
    assert add_from(server, "127.0.0.70", ADMIN_AUTH, "known-before")[0] == 200
    results = all_at_once(20, lambda n: add_from(server, "127.0.0.70", ADMIN_AUTH, f"known-burst-{n}"))
    assert [status for status, _ in results] == [200] * 20
    assert [add_from(server, "127.0.0.70", WRONG)[0] for _ in range(10)] == [401] * 10
    status, error = add_from(server, "127.0.0.70", ADMIN_AUTH, "known-after")
    assert status == 429 and "too many failed logins from 127.0.0.70" in error["message"]
    assert add_from(server, "127.0.0.71", ADMIN_AUTH, "another-address")[0] == 200


def test_fifty_first_logins_at_once_cost_little_memory(server):
    before = peak_rss_kb(server)
    results = all_at_once(50, lambda n: add_from(server, "127.0.0.22", ADMIN_AUTH, f"first-login-{n}"))
    assert [status for status, _ in results] == [200] * 50
    assert (peak_rss_kb(server) - before) <= 64 * 1024


def test_an_attacker_elsewhere_stops_neither_the_operator_nor_a_token(server):
    token = cli(server, "token", "add", "deploy-bot").stdout.strip()
    assert add_from(server, "127.0.0.1", ADMIN_AUTH, "operator-before")[0] == 200  # the operator's usual address
    # Guesses spread over eleven addresses: ten each, then each of those addresses is refused.
    for n in range(30, 41):
        for _ in range(10):
            assert add_from(server, f"127.0.0.{n}", WRONG)[0] in (401, 429)
    # The account has seen more failures than it allows from new addresses...
    status, error = add_from(server, "127.0.0.50", ADMIN_AUTH, "from-a-new-address")
    assert status == 429 and "new addresses" in error["message"]
    # ...but the operator at a known address, and any API token (even from the attacker's address), still write.
    assert add_from(server, "127.0.0.1", ADMIN_AUTH, "operator-during")[0] == 200
    assert add_from(server, "127.0.0.30", f"Bearer {token}", "token-during")[0] == 200


def test_through_a_trusted_proxy_each_client_is_counted_on_its_own(start_server):
    server = start_server("--trusted-proxy", "127.0.0.3")
    via_proxy = "127.0.0.3"
    assert add_from(server, via_proxy, ADMIN_AUTH, "operator-before", forwarded_for="198.51.100.7")[0] == 200
    for n in range(60):  # one attacker, many forwarded addresses, all through the same proxy
        assert add_from(server, via_proxy, WRONG, forwarded_for=f"203.0.113.{n % 12}")[0] in (401, 429)
    assert add_from(server, via_proxy, ADMIN_AUTH, "operator-during", forwarded_for="198.51.100.7")[0] == 200


def test_two_servers_on_one_database_share_the_count(start_server):
    first = start_server()
    second = start_server(db_path=first.db_path)  # (on PostgreSQL too, with --backend postgres)
    for n in range(10):  # ten wrong guesses from one address, spread over both servers
        assert add_from((first, second)[n % 2], "127.0.0.60", WRONG)[0] == 401
    for server in (first, second):
        status, error = add_from(server, "127.0.0.60", ADMIN_AUTH)
        assert status == 429 and "too many failed logins from 127.0.0.60" in error["message"]
        assert add_from(server, "127.0.0.61", ADMIN_AUTH, f"elsewhere-{server.port}")[0] == 200
