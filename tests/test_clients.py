"""Whole flows with real client libraries: connectrpc (Connect, from PyPI) and a plain grpcio stub generated from
the protos, both against the server's one port; plus gRPC specifics (reflection, error parity, limits)."""
import json
import pathlib
import subprocess
import sys

import grpc
import pytest
from connectrpc.client import ConnectClientSync
from connectrpc.code import Code
from connectrpc.compat import google_protobuf_binary_codec, google_protobuf_json_codec
from connectrpc.errors import ConnectError
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType

import statusthing
import statusthing_pb2 as pb
import statusthing_pb2_grpc as pb_grpc
from conftest import ADMIN_AUTH, SERVICE_OF


class ConnectStatusThing:
    """statusthing.v1 through connectrpc: ``client.AddItem(pb.AddItemRequest(...))``."""

    def __init__(self, address, codec):
        self._client = ConnectClientSync(f"http://{address}", codec=codec)

    def __getattr__(self, rpc):
        info = MethodInfo(name=rpc, service_name=f"statusthing.v1.{SERVICE_OF[rpc]}",
                          input=getattr(pb, f"{rpc}Request"), output=getattr(pb, f"{rpc}Response"),
                          idempotency_level=IdempotencyLevel.UNKNOWN, stream_type=StreamType.UNARY)
        return lambda request: self._client.execute_unary(request=request, method=info,
                                                          headers={"Authorization": ADMIN_AUTH})


@pytest.mark.parametrize("codec", [google_protobuf_json_codec, google_protobuf_binary_codec],
                         ids=["json", "proto"])
def test_whole_flow_with_connectrpc(server, codec):
    client = ConnectStatusThing(server.address, codec())  # connectrpc gzips requests by default
    statuses = client.ListStatus(pb.ListStatusRequest()).statuses
    assert {s.name for s in statuses} == {"UP", "DOWN", "WARNING"}
    up = next(s for s in statuses if s.name == "UP")
    down = next(s for s in statuses if s.name == "DOWN")
    item = client.AddItem(pb.AddItemRequest(name="Website", description="www", initial_status_id=up.id,
                                            initial_note_text="all good")).item
    assert item.status.id == up.id and item.notes[0].text == "all good"
    client.UpdateItem(pb.UpdateItemRequest(item_id=item.id, status_id=down.id))
    note = client.AddNote(pb.AddNoteRequest(item_id=item.id, note_text="we are looking into it")).note
    for n in range(40):  # enough data that the answer is gzipped back
        client.AddItem(pb.AddItemRequest(name=f"filler {n}", description="x" * 40, initial_status_id=up.id))
    listed = client.ListItems(pb.ListItemsRequest(status_ids=[down.id], extended=True)).items
    assert [i.name for i in listed] == ["Website"]
    assert [n.text for n in listed[0].notes] == ["we are looking into it", "all good"]
    assert len(client.ListItems(pb.ListItemsRequest(extended=True)).items) == 41
    with pytest.raises(ConnectError) as info:
        client.DeleteStatus(pb.DeleteStatusRequest(status_id=down.id))
    assert info.value.code == Code.FAILED_PRECONDITION and "1 item" in info.value.message
    with pytest.raises(ConnectError) as info:
        client.GetNote(pb.GetNoteRequest(note_id="nope"))
    assert info.value.code == Code.NOT_FOUND
    client.DeleteNote(pb.DeleteNoteRequest(note_id=note.id))
    client.DeleteItem(pb.DeleteItemRequest(item_id=item.id))
    client.DeleteStatus(pb.DeleteStatusRequest(status_id=down.id))
    assert {s.name for s in client.ListStatus(pb.ListStatusRequest()).statuses} == {"UP", "WARNING"}


class AddMetadata(grpc.UnaryUnaryClientInterceptor):
    """Sends the given metadata (credentials) with every call, as a client application would configure it."""

    def __init__(self, *metadata):
        self.metadata = metadata

    def intercept_unary_unary(self, continuation, details, request):
        details = details._replace(metadata=tuple(details.metadata or ()) + self.metadata)
        return continuation(details, request)


def test_whole_flow_with_a_grpc_stub(server):
    with grpc.intercept_channel(server.channel(), AddMetadata(("authorization", ADMIN_AUTH))) as channel:
        items = pb_grpc.ItemsServiceStub(channel)
        statuses = pb_grpc.StatusServiceStub(channel)
        notes = pb_grpc.NotesServiceStub(channel)
        status = statuses.AddStatus(pb.AddStatusRequest(name="Degraded", kind=pb.STATUS_KIND_WARNING,
                                                        color="#ffcc00")).status
        item = items.AddItem(pb.AddItemRequest(name="Database", initial_status_id=status.id)).item
        note = notes.AddNote(pb.AddNoteRequest(item_id=item.id, note_text="slow queries")).note
        notes.UpdateNote(pb.UpdateNoteRequest(note_id=note.id, note_text="slow queries, fixed"))
        got = items.GetItem(pb.GetItemRequest(item_id=item.id)).item
        assert got.status.name == "Degraded" and [n.text for n in got.notes] == ["slow queries, fixed"]
        assert [i.id for i in items.ListItems(pb.ListItemsRequest(kinds=[pb.STATUS_KIND_WARNING])).items] == [item.id]
        with pytest.raises(grpc.RpcError) as info:
            items.AddItem(pb.AddItemRequest(name="Database"))
        assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
        items.DeleteItem(pb.DeleteItemRequest(item_id=item.id))
        with pytest.raises(grpc.RpcError) as info:
            notes.GetNote(pb.GetNoteRequest(note_id=note.id))
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
    lines = server.request_log("grpc", 9)
    assert len(lines) == 9
    assert lines[0]["method"] == "/statusthing.v1.StatusService/AddStatus" and lines[0]["code"] == "OK"
    assert lines[0]["remote"] == "127.0.0.1"  # the client, not the internal relay's ipv4:127.0.0.1:port
    assert {line["code"] for line in lines} == {"OK", "ALREADY_EXISTS", "NOT_FOUND"}


def test_grpc_and_connect_give_the_same_error_messages(server):
    status, _, body = server.post("/statusthing.v1.ItemsService/GetItem", json.dumps({"item_id": "01MISSING"}))
    with server.channel() as channel:
        with pytest.raises(grpc.RpcError) as info:
            pb_grpc.ItemsServiceStub(channel).GetItem(pb.GetItemRequest(item_id="01MISSING"))
    assert status == 404 and info.value.code() == grpc.StatusCode.NOT_FOUND
    assert info.value.details() == json.loads(body)["message"]


def test_grpc_message_size_is_limited(server):
    with server.channel() as channel:
        with pytest.raises(grpc.RpcError) as info:
            pb_grpc.ItemsServiceStub(channel).AddItem(pb.AddItemRequest(name="big", description="x" * (2 << 20)),
                                                      metadata=(("authorization", ADMIN_AUTH),))
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert pb_grpc.ItemsServiceStub(channel).ListItems(pb.ListItemsRequest()).items == []


def reflection_services(channel, version):
    from grpc_reflection.v1alpha import reflection_pb2
    call = channel.stream_stream(f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
                                 request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                                 response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
    responses = list(call(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10))
    return {s.name for s in responses[0].list_services_response.service}


def test_reflection_in_devmode_describes_every_listed_service(start_server):
    server = start_server("--devmode")
    expected = {"statusthing.v1.ItemsService", "statusthing.v1.StatusService", "statusthing.v1.NotesService",
                "statusthing.v1.HistoryService", "statusthing.v1.MaintenanceService",
                "statusthing.v1.WebhookService", "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection"}
    with server.channel() as channel:
        for version in ("v1", "v1alpha"):
            assert reflection_services(channel, version) == expected
        # grpcio-reflection's own client describes each listed service (the reflection services included).
        from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
        database = ProtoReflectionDescriptorDatabase(channel)
        for service in expected:
            file = database.FindFileContainingSymbol(service)
            assert file.package == service.rsplit(".", 1)[0] and service.rsplit(".", 1)[1] in [
                s.name for s in file.service]
    # buf (PyPI buf-bin), which asks for v1 and describes every service it lists before it prints one.
    buf = [str(pathlib.Path(sys.executable).parent / "buf"), "curl", "--protocol", "grpc",
           "--http2-prior-knowledge"]
    listed = subprocess.run([*buf, "--list-methods", f"http://{server.address}"], capture_output=True, text=True,
                            timeout=60)
    assert listed.returncode == 0, listed.stderr
    methods = set(listed.stdout.split())
    assert "grpc.reflection.v1.ServerReflection/ServerReflectionInfo" in methods
    assert {m.rsplit("/", 1)[0] for m in methods} == expected and len(methods) == len(statusthing.METHODS) + 2
    called = subprocess.run([*buf, "-d", "{}", f"http://{server.address}/statusthing.v1.StatusService/ListStatus"],
                            capture_output=True, text=True, timeout=60)
    assert called.returncode == 0 and {s["name"] for s in json.loads(called.stdout)["statuses"]} == {
        "UP", "DOWN", "WARNING"}


def test_no_reflection_without_devmode(server):
    with server.channel() as channel:
        for version in ("v1", "v1alpha"):
            with pytest.raises(grpc.RpcError) as info:
                reflection_services(channel, version)
            assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
