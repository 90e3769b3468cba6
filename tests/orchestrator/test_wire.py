"""The hand-encoded hot-path messages equal what the generated classes serialize."""

from __future__ import annotations

import random
import struct

import pytest

from cogment.api import agent_pb2, common_pb2, environment_pb2, orchestrator_pb2
from cogment.orchestrator import wire

TRIAL_ID = "5f0c3d9e-0000-4000-8000-1234567890ab"


def observation_cases() -> list[tuple[int, int, common_pb2.ObservationData]]:
    return [
        (0, 0, common_pb2.ObservationData()),
        (
            1,
            1_700_000_000_123_456_789,
            common_pb2.ObservationData(content=b"\x08\x01", snapshot=True),
        ),
        (300, 2**64 - 1, common_pb2.ObservationData(content=bytes(range(256)) * 1000)),
        (2**40, 5, common_pb2.ObservationData(content=b"x" * 200, snapshot=True)),
    ]


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**31 - 1, 2**63, -1, -(2**31)])
def test_varint(value: int) -> None:
    expected = (
        common_pb2.Feedback(tick_id=value).SerializeToString()[1:]
        if -(2**31) <= value < 2**31
        else None
    )
    if expected is not None and value != 0:
        assert wire.varint(value) == expected
    decoded = common_pb2.Observation.FromString(b"\x08" + wire.varint(value)).tick_id
    assert decoded == value % 2**64


@pytest.mark.parametrize(("tick", "timestamp", "data"), observation_cases())
@pytest.mark.parametrize("actor_id", [0, 1, 200])
def test_decide_request(
    tick: int, timestamp: int, data: common_pb2.ObservationData, actor_id: int
) -> None:
    encoded = wire.EncodedObservation(tick, timestamp, data.SerializeToString())
    expected = agent_pb2.AgentDecideRequest(
        trial_id=TRIAL_ID,
        actor_id=actor_id,
        observation=common_pb2.Observation(tick_id=tick, timestamp=timestamp, data=data),
    )
    assert wire.decide_request(wire.string_field(TRIAL_ID), actor_id, encoded) == (
        expected.SerializeToString()
    )


@pytest.mark.parametrize(("tick", "timestamp", "data"), observation_cases())
def test_action_reply(tick: int, timestamp: int, data: common_pb2.ObservationData) -> None:
    encoded = wire.EncodedObservation(tick, timestamp, data.SerializeToString())
    observation = common_pb2.Observation(tick_id=tick, timestamp=timestamp, data=data)
    reward = agent_pb2.Reward(
        value=1.5, confidence=2, feedbacks=[common_pb2.Feedback(actor_id=1, value=3)]
    )
    message = common_pb2.Message(sender_id=-1, receiver_id=0)
    message.payload.Pack(common_pb2.TrialConfig(content=b"hi"))
    for reward_, messages, over in [
        (None, None, False),
        (reward, [message, message], True),
        (agent_pb2.Reward(), [], False),
    ]:
        expected = orchestrator_pb2.TrialActionReply(
            observation=observation, reward=reward_, trial_is_over=over
        )
        if messages:
            expected.messages.messages.extend(messages)
        assert wire.action_reply(encoded, reward_, messages, over) == expected.SerializeToString()


def test_serialize_passes_bytes_through() -> None:
    reply = orchestrator_pb2.TrialActionReply(trial_is_over=True)
    assert wire.serialize(b"abc") == b"abc"
    assert wire.serialize(reply) == reply.SerializeToString()
    assert wire.string_field("") == b""


# ------------------------------------------------------------------ reading env replies


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**32, 2**63, 2**64 - 1])
def test_read_varint(value: int) -> None:
    encoded = wire.varint(value)
    assert wire.read_varint(b"\xff" + encoded + b"\x01", 1) == (value, 1 + len(encoded))


@pytest.mark.parametrize("data", [b"", b"\x80", b"\xff" * 11])
def test_read_varint_rejects_malformed(data: bytes) -> None:
    with pytest.raises(ValueError, match="varint"):
        wire.read_varint(data, 0)


def test_fields_every_wire_type() -> None:
    data = (
        b"\x08\xac\x02"  # 1: varint 300
        + b"\x11"
        + struct.pack("<Q", 2**64 - 2)  # 2: fixed64
        + b"\x1a\x03abc"  # 3: length-delimited
        + b"\x25"
        + struct.pack("<I", 7)  # 4: fixed32
        + b"\x80\x01\x00"  # 16: varint 0 (two-byte tag)
    )
    got = [(n, t, bytes(v) if isinstance(v, memoryview) else v) for n, t, v in wire.fields(data)]
    assert got == [(1, 0, 300), (2, 1, 2**64 - 2), (3, 2, b"abc"), (4, 5, 7), (16, 0, 0)]


@pytest.mark.parametrize(
    "data", [b"\x1a\x05abc", b"\x11\x00\x00", b"\x25\x00", b"\x0b", b"\x00\x00", b"\x08"]
)
def test_fields_rejects_malformed(data: bytes) -> None:
    with pytest.raises(ValueError):
        list(wire.fields(data))


def test_read_env_reply_unpacked_actors_map_and_unknown_fields() -> None:
    data = common_pb2.ObservationData(content=b"obs", snapshot=True).SerializeToString()
    obs_set = (
        b"\x08\x05"  # tick_id 5
        + b"\x1a"
        + wire.varint(len(data))
        + data
        + b"\x20\x00\x20\x00"  # actors_map 0, 0 unpacked
        + b"\x22\x01\x00"  # and one more packed
        + b"\x2a\x02zz"  # unknown field 5
        + b"\x30\x07"  # unknown field 6
    )
    raw = (
        b"\x0a"
        + wire.varint(len(obs_set))
        + obs_set
        + b"\x18\x01"  # end_trial
        + b"\x42\x01x"  # unknown field 8
        + b"\x49"
        + bytes(8)  # unknown fixed64 9
    )
    reply = wire.read_env_reply(raw)
    assert (reply.tick_id, reply.timestamp, reply.end_trial) == (5, 0, True)
    assert reply.actors_map == [0, 0, 0]
    assert [bytes(o) for o in reply.observations] == [data]
    parsed = environment_pb2.EnvUpdateReply.FromString(raw)
    assert reply.observation_set() == parsed.observation_set
    assert list(parsed.observation_set.actors_map) == reply.actors_map


def test_read_env_reply_rejects_malformed_observation() -> None:
    obs_set = b"\x1a\x02\x0a\x05"  # an ObservationData announcing 5 bytes of content
    with pytest.raises(ValueError):
        wire.read_env_reply(b"\x0a" + wire.varint(len(obs_set)) + obs_set)
    with pytest.raises(ValueError, match="Feedback"):
        wire.read_env_reply(b"\x12\x02\x0a\x05")


def random_reply(rng: random.Random) -> environment_pb2.EnvUpdateReply:
    n_obs = rng.randint(0, 4)
    obs_set = environment_pb2.ObservationSet(
        tick_id=rng.choice([0, 1, rng.getrandbits(64)]),
        timestamp=rng.choice([0, rng.getrandbits(64)]),
        actors_map=[
            rng.choice([-1, rng.randint(0, 5), -(2**31)]) for _ in range(rng.randint(0, 6))
        ],
    )
    for _ in range(n_obs):
        obs_set.observations.add(
            content=rng.randbytes(rng.choice([0, 1, 127, 128, 5000])), snapshot=rng.random() < 0.5
        )
    reply = environment_pb2.EnvUpdateReply(end_trial=rng.random() < 0.3)
    if rng.random() < 0.9:
        reply.observation_set.CopyFrom(obs_set)
    for _ in range(rng.randint(0, 3)):
        reply.feedbacks.add(
            actor_id=rng.randint(0, 3), tick_id=rng.randint(-1, 9), value=1.5, content=b"f"
        )
    for _ in range(rng.randint(0, 3)):
        message = reply.messages.add(sender_id=-1, receiver_id=rng.randint(-1, 3))
        message.payload.Pack(common_pb2.TrialConfig(content=rng.randbytes(3)))
    return reply


def test_read_env_reply_round_trip() -> None:
    rng = random.Random(1234)
    for _ in range(300):
        expected = random_reply(rng)
        raw = expected.SerializeToString()
        reply = wire.read_env_reply(raw)
        obs_set = expected.observation_set
        assert reply.tick_id == obs_set.tick_id
        assert reply.timestamp == obs_set.timestamp
        assert reply.actors_map == list(obs_set.actors_map)
        assert [bytes(o) for o in reply.observations] == [
            o.SerializeToString() for o in obs_set.observations
        ]
        assert [reply.observation_data(i) for i in range(len(reply.observations))] == list(
            obs_set.observations
        )
        assert reply.observation_set() == obs_set
        assert reply.feedbacks == list(expected.feedbacks)
        assert reply.messages == list(expected.messages)
        assert reply.end_trial == expected.end_trial
        start = environment_pb2.EnvStartReply(observation_set=obs_set).SerializeToString()
        assert wire.read_env_reply(start).actors_map == list(obs_set.actors_map)
