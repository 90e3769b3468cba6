"""What a served env puts in an Observation: info entries that cannot travel are left out
with one warning each; the action mask is also on its own."""

from __future__ import annotations

import logging

import pytest

np = pytest.importorskip("numpy")

from cogment.bridges import observation  # noqa: E402
from cogment.bridges.messages import module  # noqa: E402

pb = module()


def test_info_keeps_what_travels_and_warns_once_per_key(caplog: pytest.LogCaptureFixture) -> None:
    encoder = observation.InfoEncoder("Env (trial t)")
    info = {"lives": 3, "handle": object(), 7: "seven", "action_mask": np.array([1, 0], np.int8)}
    with caplog.at_level(logging.WARNING, logger="cogment.bridges"):
        for _ in range(3):
            message = pb.Observation()
            encoder.fill(info, message)
    assert list(observation.read_info(message)) == ["lives", "action_mask"]
    assert list(message.action_mask.shape) == [2]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2, warnings  # one per key, not per tick
    assert (
        "info['handle'] left out of observations: info['handle']: values of type object cannot travel"
        in warnings[0]
    )
    assert "info key 7 is not a string" in warnings[1]


def test_an_observation_without_info_reads_as_an_empty_dict() -> None:
    message = observation.fill(pb.Observation(), None, np.zeros(2, np.float32), reward=1.5)
    assert observation.read_info(message) == {}
    assert message.reward == 1.5 and not message.terminated
