"""The hand-encoded hot-path messages equal what the generated classes serialize."""

from __future__ import annotations

import pytest

from cogment.api import agent_pb2, common_pb2, orchestrator_pb2
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
    encoded = wire.EncodedObservation(tick, timestamp, data)
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
    encoded = wire.EncodedObservation(tick, timestamp, data)
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
