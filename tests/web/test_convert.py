"""JSON <-> protobuf for the WebSocket (cogment/web/convert.py), with no network."""

from __future__ import annotations

import types

import pytest
from google.protobuf import any_pb2, struct_pb2, wrappers_pb2

from cogment.web import convert
from cogment.web import protocol as p
from cogment.web.protocol import ProtocolError


def test_every_field_is_shown_with_its_proto_name(data: types.ModuleType) -> None:
    assert convert.to_json(data.Board(cells=[0, 2], turn=0)) == {"cells": [0, 2], "turn": 0}
    assert convert.to_json(data.PlayerConfig()) == {"name": ""}


def test_json_in_names_the_field_that_does_not_fit(data: types.ModuleType) -> None:
    assert convert.from_json({"cell": 3}, data.Move, "act") == data.Move(cell=3)
    for bad, words in (
        ({"cel": 3}, ['no field named "cel"', "Known fields", "cell"]),
        ({"cell": "three"}, ["cell"]),
        ({"cell": 2**40}, ["cell"]),
    ):
        with pytest.raises(ProtocolError) as raised:
            convert.from_json(bad, data.Move, "act: action")
        assert raised.value.code == p.BAD_DATA
        assert raised.value.message.startswith("act: action: ")
        for word in words:
            assert word in raised.value.message
    with pytest.raises(ProtocolError, match=r"expected a JSON object for testproject\.Move"):
        convert.from_json([3], data.Move, "act: action")


def test_payloads_name_their_type(data: types.ModuleType) -> None:
    chat = convert.payload_from_json({"@type": "testproject.Chat", "text": "hi"}, "message")
    assert chat == data.Chat(text="hi")
    packed = any_pb2.Any()
    packed.Pack(chat)
    assert convert.payload_to_json(packed) == {"@type": "testproject.Chat", "text": "hi"}
    # well-known types keep their own JSON form
    wrapped = convert.payload_from_json(
        {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": "x"}, "message"
    )
    assert wrapped == wrappers_pb2.StringValue(value="x")
    # a type this process does not know goes out as bytes
    unknown = any_pb2.Any(type_url="type.googleapis.com/elsewhere.Thing", value=b"\x08\x01")
    assert convert.payload_to_json(unknown) == {"@type": "elsewhere.Thing", "@value": "CAE="}
    with pytest.raises(ProtocolError, match=r"unknown message type 'elsewhere\.Thing'"):
        convert.payload_from_json({"@type": "elsewhere.Thing"}, "message")


def test_types_are_described_for_forms(data: types.ModuleType) -> None:
    described = convert.describe_types([data.Board, None, struct_pb2.Struct])
    assert described["testproject.Board"]["fields"][0] == {
        "name": "cells",
        "type": "int32",
        "repeated": True,
    }
    # maps, enums and recursive types (Struct -> Value -> ListValue -> Value)
    fields = described["google.protobuf.Struct"]["fields"]
    assert fields[0]["type"] == "map" and fields[0]["key"] == "string"
    assert fields[0]["value"]["message"] == "google.protobuf.Value"
    value = {f["name"]: f for f in described["google.protobuf.Value"]["fields"]}
    assert value["null_value"]["enum"] == ["NULL_VALUE"]
    assert value["list_value"]["message"] == "google.protobuf.ListValue"
    assert "google.protobuf.ListValue" in described
