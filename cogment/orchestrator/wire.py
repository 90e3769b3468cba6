"""Hot-path requests and replies encoded by hand, so observation bytes are copied once.

Building `Observation(data=...)` and then `AgentDecideRequest(observation=...)` copies the
observation's bytes at each level, and serializing copies them again: for a 16 MiB
observation that is most of a tick's CPU. Here each distinct ObservationData is serialized
once per tick, and every Decide request or human reply is a single `b"".join` of a few
small headers and those bytes. The encoding is plain protobuf (fields in ascending order,
defaults omitted): tests check it byte for byte against the generated classes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Optional

from cogment.api import agent_pb2, common_pb2

# tags: (field number << 3) | wire type (0 varint, 1 fixed64, 2 length-delimited)
_TAG_1_LEN = b"\x0a"
_TAG_1_VARINT = b"\x08"
_TAG_2_VARINT = b"\x10"
_TAG_2_FIXED64 = b"\x11"
_TAG_2_LEN = b"\x12"
_TAG_3_LEN = b"\x1a"
_TAG_3_TRUE = b"\x18\x01"
_TAG_4_LEN = b"\x22"
_SMALL = [bytes((n,)) for n in range(128)]


def varint(value: int) -> bytes:
    """The protobuf varint of `value` (negative int32/int64 as 10-byte two's complement)."""
    if 0 <= value < 128:
        return _SMALL[value]
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def string_field(text: str) -> bytes:
    """Field 1 of type string (e.g. a request's trial_id)."""
    if not text:
        return b""
    data = text.encode()
    return _TAG_1_LEN + varint(len(data)) + data


class EncodedObservation:
    """A `cogment.Observation` (tick, timestamp, ObservationData) as parts ready to join."""

    __slots__ = ("parts", "size")

    def __init__(self, tick: int, timestamp: int, data: common_pb2.ObservationData) -> None:
        payload = data.SerializeToString()
        head = b""
        if tick:
            head += _TAG_1_VARINT + varint(tick)
        if timestamp:
            head += _TAG_2_FIXED64 + struct.pack("<Q", timestamp)
        head += _TAG_3_LEN + varint(len(payload))
        self.parts = (head, payload)
        self.size = len(head) + len(payload)


def decide_request(trial_field: bytes, actor_id: int, observation: EncodedObservation) -> bytes:
    """A serialized AgentDecideRequest; `trial_field` is `string_field(trial_id)`."""
    actor = _TAG_2_VARINT + varint(actor_id) if actor_id else b""
    head, payload = observation.parts
    return b"".join((trial_field, actor, _TAG_3_LEN, varint(observation.size), head, payload))


def action_reply(
    observation: EncodedObservation,
    reward: Optional[agent_pb2.Reward],
    messages: Optional[Sequence[common_pb2.Message]],
    over: bool,
) -> bytes:
    """A serialized TrialActionReply."""
    head, payload = observation.parts
    parts = [_TAG_1_LEN, varint(observation.size), head, payload]
    if reward is not None:
        encoded = reward.SerializeToString()
        parts += (_TAG_2_LEN, varint(len(encoded)), encoded)
    if over:
        parts.append(_TAG_3_TRUE)
    if messages:
        collection = agent_pb2.MessageCollection(messages=messages).SerializeToString()
        parts += (_TAG_4_LEN, varint(len(collection)), collection)
    return b"".join(parts)


def serialize(message: object) -> bytes:
    """Response serializer accepting bytes encoded here as well as messages."""
    if type(message) is bytes:
        return message
    return message.SerializeToString()  # type: ignore[attr-defined,no-any-return]
