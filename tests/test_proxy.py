"""Behind a reverse proxy: --public-url says which origin browser writes come from, --trusted-proxy says whose
forwarding headers name the client; and the nginx configuration in contrib/ runs in front of a real server with a
real browser and a real gRPC client."""
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import time

import grpc
import pytest

import statusthing_pb2 as pb
from conftest import (ADMIN, ADMIN_AUTH, PUBLIC_HOST, ROOT, assert_one_line_failure, basic, database, free_port,
                      run_statusthing,
                      self_signed_certificate)

ADD = "/statusthing.v1.ItemsService/AddItem"


def audit_clients(server):
    with database(server) as conn:
        return [row[0] for row in conn.execute("SELECT client FROM audit_log WHERE rpc = 'AddItem' ORDER BY id")]


def add_from(server, source, name, headers=None):
    """AddItem over a connection from ``source`` (any address of 127/8 is this machine)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10, source_address=(source, 0))
    try:
        conn.request("POST", ADD, body=json.dumps({"name": name}), headers={
            "Content-Type": "application/json", "Authorization": ADMIN_AUTH, **(headers or {})})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


@pytest.mark.parametrize("flag, value", [("--public-url", "status.example.com"),
                                         ("--public-url", "https://status.example.com/status"),
                                         ("--public-url", "ftp://status.example.com"),
                                         ("--trusted-proxy", "10.0.0.0/40"), ("--trusted-proxy", "nginx")])
def test_proxy_flags_are_checked(tmp_path, flag, value):
    result = run_statusthing("--api-addr", "127.0.0.1:0", "--db", str(tmp_path / "st.db"), flag, value)
    assert_one_line_failure(result, flag)
    assert not (tmp_path / "st.db").exists()


def test_browser_writes_come_from_the_public_origin(start_server):
    public = "https://status.example.com"
    server = start_server("--public-url", public + "/")
    assert server.post(ADD, '{"name": "from the public origin"}', headers={"Origin": public})[0] == 200
    assert server.post(ADD, '{"name": "same, default port"}', headers={"Origin": public + ":443"})[0] == 200
    status, _, body = server.post(ADD, '{"name": "from elsewhere"}', headers={"Origin": "https://evil.example"})
    assert status == 403 and json.loads(body)["code"] == "permission_denied"
    # Straight to the server (an SSH tunnel, say) still works: the origin is the host the request was sent to.
    assert server.post(ADD, '{"name": "direct"}', headers={"Origin": f"http://{server.address}"})[0] == 200
    server.stop()
    without = start_server()
    status, _, body = without.post(ADD, '{"name": "proxied"}', headers={"Origin": public})
    assert status == 403 and "--public-url" in json.loads(body)["message"]


def test_forwarding_headers_count_only_from_trusted_proxies(start_server):
    server = start_server("--trusted-proxy", "127.0.0.3", "--trusted-proxy", "10.0.0.0/8")
    cases = [  # (connecting from, headers it sends, the client the audit trail must name)
        ("127.0.0.4", {"X-Forwarded-For": "203.0.113.9"}, "127.0.0.4"),  # not a proxy: its claim is ignored
        ("127.0.0.3", {"X-Forwarded-For": "203.0.113.7"}, "203.0.113.7"),
        ("127.0.0.3", {"X-Forwarded-For": "6.6.6.6, 203.0.113.8, 10.1.2.3"}, "203.0.113.8"),  # nearest untrusted
        ("127.0.0.3", {"Forwarded": 'for="[2001:db8::17]:4711";proto=https, for=10.9.9.9'}, "2001:db8::17"),
        ("127.0.0.3", {"Forwarded": "for=unknown"}, "127.0.0.3"),  # a proxy that cannot name its client
        ("127.0.0.3", {}, "127.0.0.3"),
    ]
    for n, (source, headers, _) in enumerate(cases):
        assert add_from(server, source, f"forwarded-{n}", headers)[0] == 200
    assert audit_clients(server) == [client for _, _, client in cases]
    logged = server.wait_log(lambda line: line.get("path") == ADD, count=len(cases))
    assert {line["remote"] for line in logged} == {client for _, _, client in cases}
    # Login throttling counts the forwarded client: locking out one does not lock out the proxy's others.
    wrong = basic("admin", "wrong")
    for _ in range(10):
        conn = http.client.HTTPConnection(server.host, server.port, source_address=("127.0.0.3", 0))
        conn.request("POST", ADD, body="{}", headers={"Content-Type": "application/json", "Authorization": wrong,
                                                      "X-Forwarded-For": "198.51.100.1"})
        assert conn.getresponse().status == 401
        conn.close()
    assert add_from(server, "127.0.0.3", "still-locked", {"X-Forwarded-For": "198.51.100.1"})[0] == 429
    assert add_from(server, "127.0.0.3", "another-client", {"X-Forwarded-For": "198.51.100.2"})[0] == 200


def test_grpc_clients_behind_a_trusted_proxy(start_server):
    server = start_server("--trusted-proxy", "127.0.0.1")
    with server.channel() as channel:
        add = channel.unary_unary("/statusthing.v1.ItemsService/AddItem",
                                  request_serializer=pb.AddItemRequest.SerializeToString,
                                  response_deserializer=pb.AddItemResponse.FromString)
        add(pb.AddItemRequest(name="by grpc"), metadata=(("authorization", ADMIN_AUTH),
                                                          ("x-forwarded-for", "203.0.113.44")), timeout=10)
    assert audit_clients(server) == ["203.0.113.44"]


# -- nginx, with the configuration the README shows ---------------------------------------------------------------

@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for the public name (and 127.0.0.1, for clients that dial the address)."""
    return self_signed_certificate(tmp_path_factory.mktemp("tls"), PUBLIC_HOST)


class Nginx:
    """nginx in the foreground with contrib/nginx.conf, changed only where a test machine differs: the address it
    listens on, the certificate, and where the StatusThing server is."""

    def __init__(self, folder, port, upstream, certificate):
        self.port = port
        server_block = (ROOT / "contrib" / "nginx.conf").read_text()
        for documented, here in (("listen 443 ssl http2;", f"listen 127.0.0.1:{self.port} ssl http2;"),
                                 ("/etc/ssl/certs/status.example.com.pem", str(certificate[0])),
                                 ("/etc/ssl/private/status.example.com.key", str(certificate[1])),
                                 ("server 127.0.0.1:9000;", f"server {upstream};")):
            assert documented in server_block, documented
            server_block = server_block.replace(documented, here)
        for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (folder / name).mkdir()
        (folder / "nginx.conf").write_text(
            ("user root;\n" if os.geteuid() == 0 else "")
            + f"worker_processes 1;\nerror_log {folder}/error.log;\npid {folder}/nginx.pid;\nevents {{}}\n"
            + f"http {{\naccess_log off;\nclient_body_temp_path {folder}/body;\nproxy_temp_path {folder}/proxy;\n"
            + f"fastcgi_temp_path {folder}/fastcgi;\nuwsgi_temp_path {folder}/uwsgi;\nscgi_temp_path {folder}/scgi;\n"
            + server_block + "\n}\n")
        self.proc = subprocess.Popen([shutil.which("nginx") or "/usr/sbin/nginx", "-p", str(folder), "-c",
                                      str(folder / "nginx.conf"), "-g", "daemon off;"], stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start: {self.proc.stderr.read().decode()}")
                time.sleep(0.05)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def browser_write(browser, public_url, name):
    """In a real browser at the public address: open the admin page, then write from it as its script does."""
    context = browser.new_context(ignore_https_errors=True, http_credentials={"username": ADMIN[0],
                                                                              "password": ADMIN[1]})
    try:
        page = context.new_page()
        page.goto(f"{public_url}/admin")
        return page.evaluate("""async (name) => {
            const response = await fetch("/statusthing.v1.ItemsService/AddItem", {method: "POST",
                headers: {"Content-Type": "application/json"}, body: JSON.stringify({name})});
            return [response.status, await response.json()];
        }""", name)
    finally:
        context.close()


def test_nginx_with_the_documented_configuration(browser, start_server, tmp_path, certificate):
    port = free_port()  # nginx's; the server's --public-url names it before nginx starts
    public_url = f"https://{PUBLIC_HOST}:{port}"
    server = start_server("--public-url", public_url, "--trusted-proxy", "127.0.0.1")
    (tmp_path / "nginx").mkdir()
    nginx = Nginx(tmp_path / "nginx", port, server.address, certificate)
    try:
        # A write from the admin page in a real browser, at the public origin, through nginx.
        status, answer = browser_write(browser, public_url, "Written through nginx")
        assert status == 200 and answer["item"]["name"] == "Written through nginx"
        # The public page through nginx shows it.
        context = ssl.create_default_context(cafile=str(certificate[0]))
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
        conn.request("GET", "/")
        response = conn.getresponse()
        assert response.status == 200 and b"Written through nginx" in response.read()
        # gRPC through nginx, on the same public port.
        credentials = grpc.ssl_channel_credentials(root_certificates=certificate[0].read_bytes())
        with grpc.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
            add = channel.unary_unary("/statusthing.v1.ItemsService/AddItem",
                                      request_serializer=pb.AddItemRequest.SerializeToString,
                                      response_deserializer=pb.AddItemResponse.FromString)
            item = add(pb.AddItemRequest(name="gRPC through nginx"), metadata=(("authorization", ADMIN_AUTH),),
                       timeout=10).item
        assert item.name == "gRPC through nginx"
        assert audit_clients(server) == ["127.0.0.1", "127.0.0.1"]
    finally:
        nginx.stop()
    # Without --public-url the same browser write is refused as cross-site, with the way out in the message.
    plain = start_server(db_path=tmp_path / "plain.db")
    (tmp_path / "nginx2").mkdir()
    nginx = Nginx(tmp_path / "nginx2", port, plain.address, certificate)
    try:
        status, answer = browser_write(browser, public_url, "Refused")
        assert status == 403 and answer["code"] == "permission_denied" and "--public-url" in answer["message"]
    finally:
        nginx.stop()
