"""The codec's hand-written parts against the libraries they stand in for: the entity messages' JSON against
protobuf's json_format on messages with every field filled (so a field added to the protos later fails here until
the encoder writes it), and parts-assembled binary answers against protobuf's own serialization."""
import random

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.timestamp_pb2 import Timestamp

import statusthing
import statusthing_pb2 as pb

RNG = random.Random(11)


def fill(message, depth=0):
    """Set every field of ``message`` to a random value (sometimes the default, to cover left-out fields)."""
    for field in message.DESCRIPTOR.fields:
        if RNG.random() < 0.15:
            continue
        if field.message_type is not None and field.message_type.full_name == "google.protobuf.Timestamp":
            values = [Timestamp(seconds=RNG.randrange(0, 4_000_000_000), nanos=RNG.choice(
                [0, 5, 1000, 120_000_000, RNG.randrange(1_000_000_000)])) for _ in range(2)]
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if depth > 2:
                continue
            values = []
            for _ in range(RNG.randrange(1, 4)):
                child = getattr(pb, field.message_type.name)()
                fill(child, depth + 1)
                values.append(child)
        elif field.type == FieldDescriptor.TYPE_ENUM:
            values = [RNG.choice([value.number for value in field.enum_type.values])]
        elif field.type == FieldDescriptor.TYPE_STRING:
            values = [RNG.choice(["", "plain", "ünïcødé ✓", 'quote " and \\ backslash', "line\nbreak", "😀"])]
        elif field.type == FieldDescriptor.TYPE_BOOL:
            values = [RNG.choice([True, False])]
        else:
            values = [RNG.randrange(-5, 5000)]
        if field.is_repeated:
            getattr(message, field.name).extend(values)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            getattr(message, field.name).CopyFrom(values[0])
        else:
            setattr(message, field.name, values[0])
    return message


def test_entity_json_matches_json_format():
    for encoder, message_class in ((statusthing.item_json, pb.Item), (statusthing.status_json, pb.Status),
                                   (statusthing.note_json, pb.Note), (statusthing.uptime_day_json, pb.UptimeDay)):
        for _ in range(300):
            message = fill(message_class())
            assert encoder(message) == json_format.MessageToDict(message), message


def test_parts_assemble_the_same_bytes_as_protobuf():
    items = [fill(pb.Item()) for _ in range(50)]
    assembled = b"".join(statusthing.proto_field(1, item.SerializeToString()) for item in items)
    assert assembled == pb.ListItemsResponse(items=items).SerializeToString()
    big = pb.Item(name="x" * 300_000)  # a length that needs a three-byte varint
    assert statusthing.proto_field(1, big.SerializeToString()) == pb.ListItemsResponse(items=[big]).SerializeToString()
