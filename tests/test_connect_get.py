"""Connect GET for the reads (issue 11): connectrpc with GET on, raw GETs as the Connect spec writes them, HTTP
caching of API reads, and deadlines (Connect-Timeout-Ms, gRPC's) that stop a write the client gave up on."""
import base64
import gzip
import json
import urllib.parse

import grpc
import pytest
from connectrpc.client import ConnectClientSync
from connectrpc.compat import google_protobuf_binary_codec, google_protobuf_json_codec
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType

import statusthing_pb2 as pb
from conftest import ADMIN_AUTH, SERVICE_OF, database, json_rpc

LIST = "/statusthing.v1.ItemsService/ListItems"


def method_info(rpc):
    """The RPC as connectrpc's generated code describes it: its idempotency level read from services.proto."""
    options = pb.DESCRIPTOR.services_by_name[SERVICE_OF[rpc]].methods_by_name[rpc].GetOptions()
    level = IdempotencyLevel.NO_SIDE_EFFECTS if options.idempotency_level == options.NO_SIDE_EFFECTS else \
        IdempotencyLevel.UNKNOWN
    return MethodInfo(name=rpc, service_name=f"statusthing.v1.{SERVICE_OF[rpc]}", input=getattr(pb, f"{rpc}Request"),
                      output=getattr(pb, f"{rpc}Response"), idempotency_level=level, stream_type=StreamType.UNARY)


def get(server, target, headers=None):
    conn = server.http()
    conn.request("GET", target, headers=headers or {})
    response = conn.getresponse()
    return response.status, response.headers, response.read()


def test_every_public_read_and_only_those_are_marked_free_of_side_effects():
    for service in pb.DESCRIPTOR.services_by_name.values():
        for method in service.methods:
            no_side_effects = method.GetOptions().idempotency_level == method.GetOptions().NO_SIDE_EFFECTS
            public_read = method.name.startswith(("Get", "List")) and service.name != "WebhookService"
            assert no_side_effects == public_read, method.full_name


@pytest.mark.parametrize("codec", [google_protobuf_json_codec, google_protobuf_binary_codec], ids=["json", "proto"])
def test_connectrpc_with_get_reads_what_post_reads(shared_server, codec, unique):
    item = json_rpc(shared_server, "ItemsService/AddItem", {"name": unique("got"), "initialNoteText": "hello"})["item"]
    client = ConnectClientSync(f"http://{shared_server.address}", codec=codec())
    for rpc, request in (("GetItem", pb.GetItemRequest(item_id=item["id"])), ("ListItems", pb.ListItemsRequest()),
                         ("ListStatus", pb.ListStatusRequest()), ("GetUptime", pb.GetUptimeRequest(days=7))):
        by_get = client.execute_unary(request=request, method=method_info(rpc), use_get=True)
        by_post = client.execute_unary(request=request, method=method_info(rpc))
        assert by_get == by_post and by_get.ByteSize() > 0, rpc
    assert by_get.items and len(by_get.items[0].days) == 7
    lines = shared_server.wait_log(lambda line: line.get("method") == "GET" and "GetItem" in (line.get("path") or ""))
    assert lines and lines[-1]["status"] == 200


def test_raw_gets_as_the_spec_writes_them_and_http_caching(shared_server, unique):
    item = json_rpc(shared_server, "ItemsService/AddItem", {"name": unique("raw")})["item"]
    message = json.dumps({"itemId": item["id"]})
    status, headers, body = get(shared_server, "/statusthing.v1.ItemsService/GetItem?connect=v1&encoding=json&message="
                                + urllib.parse.quote(message))
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(body)["item"]["name"] == item["name"] and "max-age" in headers["Cache-Control"]
    assert get(shared_server, "/statusthing.v1.ItemsService/GetItem?encoding=json&message=" +
               urllib.parse.quote(message), {"If-None-Match": headers["ETag"]})[0] == 304
    # Binary, in URL-safe base64 without padding, compressed, parameters in another order.
    binary = pb.GetItemRequest(item_id=item["id"]).SerializeToString()
    payload = base64.urlsafe_b64encode(gzip.compress(binary)).rstrip(b"=").decode()
    status, headers, body = get(shared_server, f"/statusthing.v1.ItemsService/GetItem?message={payload}&base64=1"
                                f"&compression=gzip&encoding=proto&connect=v1&unknown=ignored")
    assert status == 200 and headers["Content-Type"] == "application/proto"
    assert pb.GetItemResponse.FromString(body).item.name == item["name"]
    # A later write is seen at once: the kept answer follows the data.
    json_rpc(shared_server, "ItemsService/UpdateItem", {"itemId": item["id"], "description": "changed"})
    status, _, body = get(shared_server, "/statusthing.v1.ItemsService/GetItem?encoding=json&message="
                          + urllib.parse.quote(message))
    assert json.loads(body)["item"]["description"] == "changed"


@pytest.mark.parametrize("query, status, code", [
    ("", 400, "invalid_argument"),
    ("encoding=json", 400, "invalid_argument"),
    ("message=%7B%7D", 400, "invalid_argument"),
    ("encoding=xml&message=x", 415, None),
    ("encoding=json&message=%7B%7D&connect=v2", 400, "invalid_argument"),
    ("encoding=proto&message=%%%&base64=1", 400, "invalid_argument"),
    ("encoding=json&message=not-json", 400, "invalid_argument"),
    ("encoding=json&message=%7B%7D&compression=br", 501, "unimplemented"),
    ("encoding=json&message=%7B%7D&compression=gzip", 400, "invalid_argument"),
])
def test_bad_gets_are_refused_clearly(shared_server, query, status, code):
    got, headers, body = get(shared_server, f"{LIST}?{query}")
    assert got == status, body
    if code:
        assert json.loads(body)["code"] == code


def test_writes_stay_post_only(shared_server):
    status, headers, _ = get(shared_server, "/statusthing.v1.ItemsService/DeleteItem?encoding=json&message=%7B%7D")
    assert status == 405 and headers["Allow"] == "POST"


def items_named(server, name):
    with database(server) as conn:
        return conn.execute("SELECT COUNT(*) FROM items WHERE name = ?", (name,)).fetchone()[0]


def test_a_write_past_its_connect_timeout_does_not_happen(server):
    # A first login costs a scrypt check (tens of milliseconds): longer than this client will wait.
    status, _, body = server.post("/statusthing.v1.ItemsService/AddItem", '{"name": "too late"}',
                                  headers={"Connect-Timeout-Ms": "2"})
    assert status == 504 and json.loads(body)["code"] == "deadline_exceeded"
    assert items_named(server, "too late") == 0
    status, _, body = server.post("/statusthing.v1.ItemsService/AddItem", '{"name": "in time"}',
                                  headers={"Connect-Timeout-Ms": "60000"})
    assert status == 200 and items_named(server, "in time") == 1
    for bad in ("0", "-5", "soon", "12345678901"):
        status, _, body = server.post(LIST, "{}", headers={"Connect-Timeout-Ms": bad})
        assert status == 400 and json.loads(body)["code"] == "invalid_argument", bad


def test_a_write_past_its_grpc_deadline_does_not_happen(server):
    with server.channel() as channel:
        add = channel.unary_unary("/statusthing.v1.ItemsService/AddItem",
                                  request_serializer=pb.AddItemRequest.SerializeToString,
                                  response_deserializer=pb.AddItemResponse.FromString)
        with pytest.raises(grpc.RpcError) as info:
            add(pb.AddItemRequest(name="too late"), timeout=0.01, metadata=(("authorization", ADMIN_AUTH),))
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    lines = server.wait_log(lambda line: line.get("protocol") == "grpc" and "AddItem" in line.get("method", ""),
                            timeout=10)
    # The server saw it too and stopped, or (on a loaded machine) gRPC dropped it before it reached the service.
    assert all(line["code"] == "DEADLINE_EXCEEDED" for line in lines)
    server.stop()  # (gracefully: whatever is still in flight finishes first)
    assert items_named(server, "too late") == 0
