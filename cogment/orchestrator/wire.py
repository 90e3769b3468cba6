"""Hot-path requests and replies encoded by hand, so observation bytes are copied once.

Building `Observation(data=...)` and then `AgentDecideRequest(observation=...)` copies the
observation's bytes at each level, and serializing copies them again: for a 16 MiB
observation that is most of a tick's CPU. Here each distinct ObservationData is serialized
once per tick, and every Decide request or human reply is a single `b"".join` of a few
small headers and those bytes. The encoding is plain protobuf (fields in ascending order,
defaults omitted): tests check it byte for byte against the generated classes.

The environment's Start/Update replies are read the same way (`read_env_reply`): only their
small fields are decoded, and each ObservationData stays a slice of the reply's bytes, to be
embedded as-is.

On cogment-py's streams (cogment/api/stream.proto), a request is a 0.5 request embedded in
the stream request's oneof: `decide_request(..., field=...)` writes that field's tag and
length in the same join, `embed` wraps a small request, and `stream_reply` slices the 0.5
reply out of a stream reply without copying it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from typing import Any, Optional, Union

from google.protobuf.message import DecodeError

from cogment.api import agent_pb2, common_pb2, environment_pb2

Bytes = Union[bytes, memoryview]

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

    def __init__(self, tick: int, timestamp: int, payload: Bytes) -> None:
        """`payload` is a serialized ObservationData (kept, not copied)."""
        head = b""
        if tick:
            head += _TAG_1_VARINT + varint(tick)
        if timestamp:
            head += _TAG_2_FIXED64 + struct.pack("<Q", timestamp)
        head += _TAG_3_LEN + varint(len(payload))
        self.parts = (head, payload)
        self.size = len(head) + len(payload)


def _len_tag(number: int) -> bytes:
    return varint(number << 3 | 2)


def decide_request(
    trial_field: bytes, actor_id: int, observation: EncodedObservation, field: int = 0
) -> bytes:
    """A serialized AgentDecideRequest; `trial_field` is `string_field(trial_id)`.

    With `field`, the request embedded as that field of an enclosing message (a stream
    request): the observation is still copied once.
    """
    actor = _TAG_2_VARINT + varint(actor_id) if actor_id else b""
    head, payload = observation.parts
    size = varint(observation.size)
    if not field:
        return b"".join((trial_field, actor, _TAG_3_LEN, size, head, payload))
    inner = len(trial_field) + len(actor) + 1 + len(size) + observation.size
    outer = _len_tag(field) + varint(inner)
    return b"".join((outer, trial_field, actor, _TAG_3_LEN, size, head, payload))


def embed(field: int, data: bytes) -> bytes:
    """`data` (a serialized message) as the length-delimited field `field` of an enclosing
    message: for the small requests of a stream."""
    return b"".join((_len_tag(field), varint(len(data)), data))


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


# ------------------------------------------------------------------ reading replies

_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5
_U64 = struct.Struct("<Q")


def read_varint(data: Bytes, pos: int) -> tuple[int, int]:
    """The varint at `data[pos:]` and the position after it.

    Raises:
        ValueError: truncated, or longer than 10 bytes.
    """
    result = 0
    shift = 0
    end = len(data)
    while True:
        if pos >= end:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos
        shift += 7
        if shift >= 70:
            raise ValueError("varint longer than 10 bytes")


def fields(data: Bytes) -> Iterator[tuple[int, int, Any]]:
    """The fields of a serialized message, in order: (number, wire type, value).

    The value is an int for varint, fixed64 and fixed32 fields, and a slice of `data`
    (no copy) for length-delimited ones.

    Raises:
        ValueError: malformed or truncated data, or a group (wire types 3 and 4).
    """
    view = memoryview(data)
    pos = 0
    end = len(view)
    while pos < end:
        key, pos = read_varint(view, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        value: Union[int, memoryview]  # yielded as Any: the wire type tells which
        if wire_type == _VARINT:
            value, pos = read_varint(view, pos)
        elif wire_type == _LEN:
            size, pos = read_varint(view, pos)
            if pos + size > end:
                raise ValueError(f"field {number}: truncated ({size} bytes announced)")
            value = view[pos : pos + size]
            pos += size
        elif wire_type == _FIXED64:
            if pos + 8 > end:
                raise ValueError(f"field {number}: truncated fixed64")
            value = _U64.unpack_from(view, pos)[0]
            pos += 8
        elif wire_type == _FIXED32:
            if pos + 4 > end:
                raise ValueError(f"field {number}: truncated fixed32")
            value = int.from_bytes(view[pos : pos + 4], "little")
            pos += 4
        else:
            raise ValueError(f"field {number}: unsupported wire type {wire_type}")
        yield number, wire_type, value


def _int32(value: int) -> int:
    """A varint read as an int32 (protobuf keeps the low 32 bits)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def _check_observation_data(data: memoryview) -> None:
    """Checks that `data` frames as a message (ObservationData); decodes nothing."""
    for _ in fields(data):
        pass


class EnvReply:
    """An EnvStartReply or EnvUpdateReply read from its bytes (`read_env_reply`).

    Attributes:
        tick_id, timestamp: of the ObservationSet (0 when absent).
        observations: each ObservationData, serialized, as a slice of the reply's bytes.
        actors_map: actor id -> index into `observations`.
        feedbacks, messages: parsed (Update only).
        end_trial: the environment ends the trial (Update only).
    """

    __slots__ = (
        "_obs_set_slices",
        "actors_map",
        "end_trial",
        "feedbacks",
        "messages",
        "observations",
        "tick_id",
        "timestamp",
    )

    def __init__(self) -> None:
        self.tick_id = 0
        self.timestamp = 0
        self.observations: list[memoryview] = []
        self.actors_map: list[int] = []
        self.feedbacks: list[common_pb2.Feedback] = []
        self.messages: list[common_pb2.Message] = []
        self.end_trial = False
        self._obs_set_slices: list[memoryview] = []

    def _read_observation_set(self, data: memoryview) -> None:
        self._obs_set_slices.append(data)
        for number, wire_type, value in fields(data):
            if number == 1 and wire_type == _VARINT:
                self.tick_id = value
            elif number == 2 and wire_type == _FIXED64:
                self.timestamp = value
            elif number == 3 and wire_type == _LEN:
                _check_observation_data(value)
                self.observations.append(value)
            elif number == 4 and wire_type == _LEN:  # packed
                pos = 0
                while pos < len(value):
                    item, pos = read_varint(value, pos)
                    self.actors_map.append(_int32(item))
            elif number == 4 and wire_type == _VARINT:  # unpacked
                self.actors_map.append(_int32(value))

    def observation_set_parts(self, tick_id: int, n_actors: int) -> tuple[list[memoryview], bytes]:
        """The ObservationSet, serialized, as (slices of the reply, bytes to append): its
        observations are not copied; the bytes appended set `tick_id` and the timestamp
        (overriding the environment's), and actors_map when the environment left it out
        (one observation for everyone)."""
        tail = _TAG_1_VARINT + varint(tick_id) + _TAG_2_FIXED64 + _U64.pack(self.timestamp)
        if not self.actors_map and n_actors:
            tail += _TAG_4_LEN + varint(n_actors) + b"\x00" * n_actors
        return self._obs_set_slices, tail

    def observation_data(self, index: int) -> common_pb2.ObservationData:
        """Observation `index`, parsed."""
        return common_pb2.ObservationData.FromString(bytes(self.observations[index]))

    def observation_set(self) -> environment_pb2.ObservationSet:
        """The whole ObservationSet, parsed (with `timestamp` as it is now)."""
        obs_set = environment_pb2.ObservationSet()
        for data in self._obs_set_slices:
            obs_set.MergeFromString(bytes(data))
        obs_set.timestamp = self.timestamp
        return obs_set


def read_env_reply(data: Bytes) -> EnvReply:
    """Reads a serialized EnvStartReply or EnvUpdateReply; unknown fields are skipped.

    Raises:
        ValueError: malformed data (also inside the ObservationSet and its observations).
    """
    reply = EnvReply()
    for number, wire_type, value in fields(data):
        if wire_type == _LEN:
            if number == 1:
                reply._read_observation_set(value)
            elif number == 2:
                reply.feedbacks.append(_parse(common_pb2.Feedback, value))
            elif number == 4:
                reply.messages.append(_parse(common_pb2.Message, value))
        elif number == 3 and wire_type == _VARINT:
            reply.end_trial = value != 0
    return reply


def stream_reply(data: Bytes) -> tuple[int, memoryview]:
    """The reply a stream reply holds (its oneof): its field number, and its bytes as a slice
    of `data` (not copied). As protobuf reads a oneof, the last field wins.

    Raises:
        ValueError: malformed data, or no reply in it.
    """
    found = None
    for number, wire_type, value in fields(data):
        if wire_type != _LEN:
            raise ValueError(f"field {number} of a stream reply is not a message")
        found = (number, value)
    if found is None:
        raise ValueError("an empty stream reply")
    return found


def _parse(message_type: Any, data: memoryview) -> Any:
    try:
        return message_type.FromString(bytes(data))
    except DecodeError as error:
        raise ValueError(f"malformed {message_type.DESCRIPTOR.name}: {error}") from None
