"""The protos, the generated modules and the error table against ../shared/CONTRACT.md, the wire contract with
the original Go StatusThing."""
import pathlib
import re
import subprocess
import sys

import pytest
from google.protobuf.descriptor import FieldDescriptor

import statusthing
import statusthing_pb2 as pb
from conftest import CONTRACT_CODES, ROOT

CONTRACT = ROOT.parent / "shared" / "CONTRACT.md"
# Only the tests that read the contract may skip, and only where ../shared is not beside the repository (it is in CI).
needs_contract = pytest.mark.skipif(not CONTRACT.exists(), reason="../shared/CONTRACT.md is not beside the repository")

SCALARS = {FieldDescriptor.TYPE_STRING: "string", FieldDescriptor.TYPE_BOOL: "bool"}


def table_rows(text, header_start):
    """The body rows of the markdown table whose header starts with ``header_start``, as lists of cells."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def type_name(field):
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        base = field.message_type.full_name if field.message_type.full_name.startswith("google.") \
            else field.message_type.name
    elif field.type == FieldDescriptor.TYPE_ENUM:
        base = field.enum_type.name
    else:
        base = SCALARS[field.type]
    return f"repeated {base}" if field.is_repeated else base


def contract_fields():
    """{message name: {field name: (number, type)}} from both tables of the contract."""
    text = CONTRACT.read_text()
    messages, current = {}, None
    for message, field, number, type_ in table_rows(text, "| message | field | number | type |"):
        current = message or current
        messages.setdefault(current, {})[field] = (int(number), type_)
    for message, fields in table_rows(text, "| message | fields (name = number: type) |"):
        messages[message] = {}
        if fields != "(empty)":
            for spec in fields.split(";"):
                name, number, type_ = re.fullmatch(r"(\w+) = (\d+): (.+)", spec.strip()).groups()
                messages[message][name] = (int(number), type_)
    return messages


@needs_contract
def test_every_contract_message_and_field_is_kept():
    contract = contract_fields()
    assert len(contract) == 5 + 30
    for message, fields in contract.items():
        descriptor = getattr(pb, message).DESCRIPTOR
        assert descriptor.full_name == f"statusthing.v1.{message}"
        for name, (number, type_) in fields.items():
            field = descriptor.fields_by_name[name]
            assert (field.number, type_name(field)) == (number, type_), f"{message}.{name}"


@needs_contract
def test_status_kind_enum():
    text = CONTRACT.read_text()
    values = dict((name, int(number)) for name, number in re.findall(r"(STATUS_KIND_\w+) = (\d+)", text))
    assert len(values) == 12
    assert {v.name: v.number for v in pb.StatusKind.DESCRIPTOR.values} == values


@needs_contract
def test_services_and_rpcs():
    service = None
    expected = set()
    for svc, rpc, request, response in table_rows(CONTRACT.read_text(), "| service | rpc | request | response |"):
        service = svc or service
        expected.add((f"/statusthing.v1.{service}/{rpc}", request, response))
    assert len(expected) == 15
    actual = {(m.path, m.request_class.__name__, m.response_class.__name__) for m in statusthing.METHODS.values()}
    assert expected <= actual  # the original's RPCs, unchanged; the additions are checked below
    for service in pb.SERVICES_DESCRIPTOR.services_by_name.values():
        assert all(not m.client_streaming and not m.server_streaming for m in service.methods)


@needs_contract
def test_error_table_matches_the_contract():
    rows = table_rows(CONTRACT.read_text(), "| Connect code | HTTP | gRPC status |")
    contract = {code: (int(status), grpc_status.split()[0]) for code, status, grpc_status in rows}
    assert {c: (s, g.name) for c, (s, g) in CONTRACT_CODES.items()} == contract
    assert {c: (code.http_status, code.grpc.name) for c, code in statusthing.CODES.items()} == contract
    assert len({code.grpc for code in statusthing.CODES.values()}) == 16  # each gRPC code once


def test_every_error_class_has_a_known_code():
    classes = [cls for cls in vars(statusthing).values()
               if isinstance(cls, type) and issubclass(cls, statusthing.StatusThingError)]
    assert len(classes) >= 8
    assert all(cls.code in statusthing.CODES for cls in classes)


def test_generated_modules_match_the_protos():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "genproto.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_proto_files_declare_the_contract_package():
    for name in ("types.proto", "services.proto"):
        text = (ROOT / name).read_text()
        assert "package statusthing.v1;" in text
    assert pathlib.Path(pb.TYPES_DESCRIPTOR.name).name == "types.proto"
    assert "types.proto" in [dependency.name for dependency in pb.SERVICES_DESCRIPTOR.dependencies]


def numbered_fields(text):
    """{field name: number} of the "name = N" pairs in a cell of the contract's additions."""
    return {name: int(number) for name, number in re.findall(r"\b(\w+) = (\d+)", text)}


@needs_contract
def test_history_service_and_its_messages_as_the_additions_say():
    text = CONTRACT.read_text()
    rpcs = table_rows(text[text.index("### HistoryService"):], "| rpc | request fields | response fields |")
    assert [row[0] for row in rpcs] == ["ListStatusChanges", "GetUptime", "ListIncidents"]
    for rpc, request, response in rpcs:
        method = statusthing.METHODS[f"/statusthing.v1.HistoryService/{rpc}"]
        for message, cell in ((method.request_class, request), (method.response_class, response)):
            fields = {field.name: field.number for field in message.DESCRIPTOR.fields}
            assert numbered_fields(cell).items() <= fields.items(), (rpc, cell)
    for message, cell in table_rows(text, "| message (types.proto) | fields |"):
        fields = {field.name: field.number for field in getattr(pb, message).DESCRIPTOR.fields}
        assert numbered_fields(cell).items() <= fields.items(), message
    conditions = dict((name, int(number)) for name, number in re.findall(r"(CONDITION_\w+) = (\d+)", text))
    assert {value.name: value.number for value in pb.Condition.DESCRIPTOR.values} == conditions
    assert pb.Status.DESCRIPTOR.fields_by_name["condition"].number == 6
    assert (pb.Item.DESCRIPTOR.fields_by_name["position"].number, pb.Item.DESCRIPTOR.fields_by_name["group"].number) \
        == (6, 7)
    for message, field, number in (("ListNotesRequest", "page_size", 2), ("ListNotesRequest", "page_token", 3),
                                   ("ListNotesResponse", "next_page_token", 2), ("ListItemsRequest", "notes_limit", 3),
                                   ("GetItemRequest", "notes_limit", 2), ("UpdateItemRequest", "note_text", 5),
                                   ("AddItemRequest", "position", 6), ("AddItemRequest", "group", 7),
                                   ("UpdateItemRequest", "position", 6), ("UpdateItemRequest", "group", 7),
                                   ("AddStatusRequest", "condition", 6), ("UpdateStatusRequest", "condition", 6)):
        assert getattr(pb, message).DESCRIPTOR.fields_by_name[field].number == number, (message, field)
