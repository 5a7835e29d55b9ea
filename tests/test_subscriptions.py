"""E-mail subscriptions (issue 12) against a real SMTP server (aiosmtpd) that offers STARTTLS with a certificate the
server must check, and requires a login: the form on the page, double opt-in, the notifications, their headers,
RFC 8058 one-click unsubscribing, the rate limit, and that nobody learns who is subscribed."""
import email
import email.policy
import json
import re
import ssl
import threading
import urllib.parse

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from conftest import (ADMIN_AUTH, Server, Site, assert_one_line_failure, free_port, json_rpc, run_statusthing,
                      self_signed_certificate, wait_for_count)

PUBLIC = "https://status.example.com"


class MailServer:
    """aiosmtpd on a free loopback port: STARTTLS required, a login required; keeps every message it is given."""

    def __init__(self, folder, password="mail-secret"):
        self.cert, key = self_signed_certificate(folder, "127.0.0.1")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, key)
        self.messages, self._changed, self.password = [], threading.Condition(), password
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, tls_context=context,
                                     require_starttls=True, auth_required=True, authenticator=self._check)
        self.controller.start()

    def _check(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            b"mailer", self.password.encode())
        return AuthResult(success=ok)

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._changed:
            self.messages.append((envelope.rcpt_tos, message))
            self._changed.notify_all()
        return "250 OK"

    def wait(self, to, count=1, timeout=15):
        """The messages to ``to``, once there are ``count``."""
        return wait_for_count(self._changed, lambda: [m for rcpt, m in self.messages if to in rcpt], count, timeout,
                              lambda: f"messages to {to}")

    def to(self, address):
        with self._changed:
            return [message for rcpt, message in self.messages if address in rcpt]

    def stop(self):
        self.controller.stop()


@pytest.fixture
def mail(tmp_path):
    server = MailServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def site(tmp_path, mail):
    site = Site(tmp_path, "--smtp-url", f"smtp://mailer@127.0.0.1:{mail.port}", "--mail-from",
                "status@example.com", "--public-url", PUBLIC, "--title", "Acme Status",
                start="2027-03-01T09:00:00Z", timezone="UTC",
                env={"STATUSTHING_SMTP_PASSWORD": mail.password, "SSL_CERT_FILE": str(mail.cert)})
    yield site
    site.stop()


def form(site, path, fields=(), headers=None, server=None):
    """A form POST, as a browser without JavaScript sends it (to the site's server unless told): (status, page)."""
    conn = (server or site.server).http()
    conn.request("POST", path, body=urllib.parse.urlencode(list(fields)),
                 headers={"Content-Type": "application/x-www-form-urlencoded", **(headers or {})})
    response = conn.getresponse()
    return response.status, response.read().decode()


def local(link):
    """A link from a mail (on the public URL) as a path on the test server."""
    assert link.startswith(PUBLIC + "/"), link
    return link[len(PUBLIC):]


def parts(message):
    """(plain text, HTML) of a message."""
    return (message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content())


def confirm_link(message):
    return local(re.search(r"https://\S+/subscribe/confirm/\S+", parts(message)[0]).group(0))


def subscribe(site, mail, address, items=()):
    """Subscribe and confirm, as a reader does: the form, the mail, the button."""
    status, page = form(site, "/subscribe", [("email", address), *(("items", item) for item in items)])
    assert status == 200 and "Check your inbox" in page
    link = confirm_link(mail.wait(address)[-1])
    status, page = form(site, link)
    assert status == 200 and "Subscribed" in page


def subscribers(site):
    conn = site.server.http()
    conn.request("GET", "/admin/api/subscribers", headers={"Authorization": ADMIN_AUTH})
    response = conn.getresponse()
    assert response.status == 200
    return json.loads(response.read())


def test_subscribe_confirm_be_told_and_unsubscribe_in_one_click(site, mail):
    page = site.page()
    assert '<form method="post" action="/subscribe"' in page and 'type="email"' in page
    item = site.add("Checkout")

    status, answer = form(site, "/subscribe", [("email", "reader@example.com")])
    assert status == 200 and "Check your inbox" in answer
    [confirmation] = mail.wait("reader@example.com")
    assert confirmation["Subject"] == "Confirm your subscription to Acme Status"
    assert confirmation["From"] == "status@example.com" and confirmation["To"] == "reader@example.com"
    text, html = parts(confirmation)
    link = confirm_link(confirmation)
    assert link in html.replace("&amp;", "&")
    assert subscribers(site)["pending"] == 1 and subscribers(site)["confirmed"] == 0

    # Nothing but the confirmation before the link is used, and opening it (as mail scanners do) confirms nothing.
    site.set(item, "DOWN", "Payments fail")
    site.at("2027-03-01T09:10:00Z")
    status, answer = site.get(link)[0], site.get(link)[2]
    assert status == 200 and "Confirm the subscription" in answer and f'action="{link}"' in answer
    assert subscribers(site)["confirmed"] == 0
    status, answer = form(site, link)
    assert status == 200 and "Subscribed" in answer
    assert form(site, link)[0] == 200  # (twice is fine)
    assert subscribers(site)["confirmed"] == 1

    site.set(item, "UP", "Payments work again")
    [_, resolved] = mail.wait("reader@example.com", 2)
    assert resolved["Subject"].startswith("[Acme Status] Resolved: ")
    text, html = parts(resolved)
    incident_id = json_rpc(site.server, "HistoryService/ListIncidents", {})["incidents"][0]["id"]
    assert f"{PUBLIC}/incidents/{incident_id}" in text and "Payments work again" in text
    assert f'href="{PUBLIC}/incidents/{incident_id}"' in html
    unsubscribe = re.fullmatch(r"<(\S+)>", resolved["List-Unsubscribe"]).group(1)
    assert resolved["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert unsubscribe in text and unsubscribe in html
    assert len(mail.to("reader@example.com")) == 2  # (the incident opened before confirming was not sent)

    # GET shows a button and changes nothing; RFC 8058's POST unsubscribes, and again is fine.
    assert "Unsubscribe" in site.get(local(unsubscribe))[2] and subscribers(site)["confirmed"] == 1
    for _ in range(2):
        status, answer = form(site, local(unsubscribe), [("List-Unsubscribe", "One-Click")])
        assert status == 200 and "Unsubscribed" in answer
    assert subscribers(site)["confirmed"] == 0 and subscribers(site)["subscribers"] == []


def test_a_subscription_to_some_items_hears_only_of_them(site, mail):
    chosen, other = site.add("Search"), site.add("Billing")
    subscribe(site, mail, "picky@example.com", [chosen])
    subscribe(site, mail, "everything@example.com")
    site.set(other, "DOWN")
    opened = mail.wait("everything@example.com", 2)[-1]
    assert "New incident" in opened["Subject"] and "Billing" in opened["Subject"]
    site.set(chosen, "PARTLY")
    mail.wait("everything@example.com", 3)
    picked = mail.wait("picky@example.com", 2)[-1]
    assert "Search" in picked["Subject"]
    assert [m["Subject"] for m in mail.to("picky@example.com")][1:] == [picked["Subject"]]


def test_maintenance_is_mailed_when_scheduled_started_and_completed(site, mail):
    subscribe(site, mail, "ops@example.com")
    site.rpc("MaintenanceService/AddMaintenance", title="Storage upgrade", startsAt="2027-03-01T10:00:00Z",
             endsAt="2027-03-01T11:00:00Z", description="Uploads pause.")
    scheduled = mail.wait("ops@example.com", 2)[-1]
    assert scheduled["Subject"] == "[Acme Status] Scheduled maintenance: Storage upgrade"
    assert "Uploads pause." in parts(scheduled)[0] and "2027-03-01T10:00:00Z" in parts(scheduled)[0]
    site.at("2027-03-01T10:00:00Z")
    assert "Maintenance in progress" in mail.wait("ops@example.com", 3)[-1]["Subject"]
    site.at("2027-03-01T11:00:00Z")
    assert "Maintenance completed" in mail.wait("ops@example.com", 4)[-1]["Subject"]


def test_the_form_says_the_same_for_a_known_address_and_is_rate_limited(site, mail):
    subscribe(site, mail, "known@example.com")
    status, known = form(site, "/subscribe", [("email", "known@example.com")])
    status_new, new = form(site, "/subscribe", [("email", "new@example.com")])
    assert status == status_new == 200 and known == new
    mail.wait("new@example.com")
    assert len(mail.to("known@example.com")) == 1  # (a confirmed address is not asked again)
    # Five requests an hour from one client address (the subscribe helper made one); the sixth is refused.
    for number in range(2):
        assert form(site, "/subscribe", [("email", f"more{number}@example.com")])[0] == 200
    status, page = form(site, "/subscribe", [("email", "flood@example.com")])
    assert status == 429 and "try again later" in page
    assert subscribers(site)["pending"] == 3  # new, more0, more1: nothing of the refused one


def test_servers_on_one_database_share_the_limit_and_it_lifts_after_an_hour(site, mail, tmp_path):
    second = Server(site.folder / "st.db", tmp_path / "second.log", *site.args,
                    env={"STATUSTHING_CLOCK": site.clock.path, **site.env})
    try:
        servers = (site.server, second)
        for number in range(5):  # one client address, its requests spread over both servers
            assert form(site, "/subscribe", [("email", f"spread{number}@example.com")],
                        server=servers[number % 2])[0] == 200
        for server in servers:
            assert form(site, "/subscribe", [("email", "sixth@example.com")], server=server)[0] == 429
        site.at("2027-03-01T10:00:01Z")  # an hour after the five
        assert form(site, "/subscribe", [("email", "an-hour-later@example.com")], server=second)[0] == 200
        mail.wait("an-hour-later@example.com")
        assert not mail.to("sixth@example.com")
    finally:
        second.stop()


@pytest.mark.parametrize("address", ["", "not-an-address", "a@b", "x" * 250 + "@example.com",
                                     "two@example.com, three@example.com", "crlf@example.com\r\nBcc: x@y.z"])
def test_bad_addresses_are_refused_with_a_page(site, address):
    status, page = form(site, "/subscribe", [("email", address)])
    assert status == 400 and "Not subscribed" in page
    assert subscribers(site)["subscribers"] == []


def test_links_that_are_wrong_or_expired_confirm_nothing(site, mail):
    form(site, "/subscribe", [("email", "late@example.com")])
    link = confirm_link(mail.wait("late@example.com")[0])
    site.at("2027-03-02T09:00:01Z")  # just over 24 hours later
    status, page = form(site, link)
    assert status == 404 and "expired" in page
    for token in ("nonsense", link.rsplit("/", 1)[1][:-1] + "x", "x" * 5000):
        assert form(site, f"/subscribe/confirm/{token}")[0] == 404
        assert form(site, f"/unsubscribe/{token}")[0] == 200  # (unsubscribing tells nothing either)
    assert subscribers(site)["confirmed"] == 0
    # Subscribing again sends a new link, which works.
    form(site, "/subscribe", [("email", "late@example.com")])
    assert form(site, confirm_link(mail.wait("late@example.com", 2)[1]))[0] == 200
    assert subscribers(site)["confirmed"] == 1


def test_the_admin_sees_counts_and_can_remove_a_subscriber(site, mail):
    subscribe(site, mail, "gone@example.com")
    [entry] = subscribers(site)["subscribers"]
    assert entry["email"] == "gone@example.com" and entry["confirmed"] is True
    status, _, answer = site.server.post("/admin/api/subscribers/remove", json.dumps({"id": entry["id"]}))
    assert status == 200
    assert subscribers(site)["subscribers"] == []
    status, _, _ = site.server.post("/admin/api/subscribers/remove", json.dumps({"id": entry["id"]}))
    assert status == 404
    assert site.server.post("/admin/api/subscribers/remove", json.dumps({"id": entry["id"]}), auth=None)[0] == 401


def test_without_smtp_there_is_no_form(server):
    conn = server.http()
    conn.request("GET", "/")
    assert "/subscribe" not in conn.getresponse().read().decode()
    conn.request("POST", "/subscribe", body="email=a%40example.com",
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert conn.getresponse().status == 404


@pytest.mark.parametrize("args, fragment", [
    (["--smtp-url", "smtp://127.0.0.1:2525"], "--mail-from"),
    (["--smtp-url", "smtp://127.0.0.1:2525", "--mail-from", "a@example.com"], "--public-url"),
    (["--smtp-url", "imap://127.0.0.1", "--mail-from", "a@example.com", "--public-url", PUBLIC], "--smtp-url"),
    (["--smtp-url", "smtp://127.0.0.1:99999", "--mail-from", "a@example.com", "--public-url", PUBLIC],
     "--smtp-url"),
])
def test_mail_settings_that_cannot_work_stop_the_start_with_one_line(tmp_path, args, fragment):
    result = run_statusthing("--db", str(tmp_path / "st.db"), "--api-addr", "127.0.0.1:0", *args, timeout=20)
    assert_one_line_failure(result, fragment)
