"""cogment.testing: the harnesses drive the test project's services with no network."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from cogment.testing import (
    AgentHarness,
    CallRefused,
    EnvironmentHarness,
    check_agent,
    check_environment,
)


def test_check_environment_on_the_board_env(project_services: Any, cog_settings: Any) -> None:
    import data_pb2

    steps = check_environment(
        project_services.BoardEnv,
        cog_settings,
        [2, 1],
        ticks=10,
        trial_config=data_pb2.TrialConfig(rounds=5),
    )
    assert len(steps) == 5 and steps[-1].end_trial
    assert [s.observations[2].turn for s in steps] == [1, 2, 3, 4, 5]
    assert steps[0].feedbacks[0].tick_id == 0


def test_harness_messages_and_refusals(project_services: Any, cog_settings: Any) -> None:
    import data_pb2

    env = EnvironmentHarness(project_services.BoardEnv, cog_settings, [1, 0])
    assert env.start() == [data_pb2.Board(cells=[0, 0, 0, 0])]
    env.send(data_pb2.Chat(text="yo"), sender_id=0)
    step = env.update([data_pb2.Move(cell=2)])
    assert step.observations == [data_pb2.Board(cells=[0, 0, 1, 0], turn=1)]
    assert [(m.sender_id, m.receiver_id) for m in step.messages] == [(-1, 0)]
    env.end()
    with pytest.raises(CallRefused) as error:
        env.update()
    assert error.value.code == grpc.StatusCode.NOT_FOUND

    agent = AgentHarness(project_services.PlayerAgent, cog_settings, [1, 1])
    with pytest.raises(CallRefused, match="delta arrived before any snapshot"):
        agent.decide(data_pb2.BoardDelta(cell=1))
    assert agent.decide(data_pb2.Board(cells=[0, 0, 0], turn=4)).action == data_pb2.Move(cell=1)
    agent.end()


def test_check_agent(project_services: Any, cog_settings: Any) -> None:
    import data_pb2

    steps = check_agent(
        project_services.WatcherAgent,
        cog_settings,
        [1, 1],
        [data_pb2.Board(cells=[1, 2], turn=0), data_pb2.Board(cells=[3], turn=1)],
        actor_id=1,
    )
    assert [s.action for s in steps] == [data_pb2.Nothing(), data_pb2.Nothing()]
    assert [(f.actor_id, f.tick_id, f.value) for f in steps[1].feedbacks] == [(0, 1, 3.0)]
