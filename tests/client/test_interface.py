"""A ClientTrial built on a `FakeConnection`, not a `Connection`: the trial needs of its
connection only `interface.TrialConnection`, and its heartbeats, actions, feedback and
endings can be driven with no network and no thread."""

from __future__ import annotations

import time
import types
from typing import Any, Optional

import grpc
import pytest

from cogment.api import agent_pb2, orchestrator_pb2
from cogment.client import ClientTrial
from cogment.client.interface import CONNECTION_TIMEOUT, TrialConnection
from cogment.errors import CogmentRpcError, LifecycleError, TrialEndedError, TrialError
from tests.client.fake_connection import Call, FakeConnection
from tests.listeners import Ends

TRIAL_ID = "t-1"
ENDED = f"trial {TRIAL_ID} has ended: max_steps (5) reached"


class Game:
    """The handler of a FakeConnection: the fake orchestrator's game (a Board whose cell c
    becomes t+1 on tick t), and failures set per method."""

    def __init__(self, data: types.ModuleType) -> None:
        self.data = data
        self.tick = 0
        self.failures: dict[str, CogmentRpcError] = {}

    def __call__(self, method: str, request: Any) -> Any:
        failure = self.failures.get(method)
        if failure is not None:
            raise failure
        if method in ("Action", "ActionStream"):
            if request.actor_id < 0:  # a watcher's request: the trial is over at once
                return orchestrator_pb2.TrialActionReply(trial_is_over=True)
            move = self.data.Move.FromString(request.action.content)
            self.tick += 1
            reply = orchestrator_pb2.TrialActionReply()
            reply.observation.tick_id = self.tick
            delta = self.data.BoardDelta(cell=move.cell, value=self.tick, turn=self.tick)
            reply.observation.data.content = delta.SerializeToString()
            reply.reward.CopyFrom(agent_pb2.Reward(value=0.5, confidence=1.0))
            return reply
        return None  # GiveFeedback, SendMessage, Heartbeat, End: an empty reply will do


def start_reply(data: types.ModuleType, actor_id: int = 0) -> orchestrator_pb2.TrialStartReply:
    reply = orchestrator_pb2.TrialStartReply(
        trial_id=TRIAL_ID, actor_id=actor_id, actor_counts=[2, 1]
    )
    if actor_id >= 0:
        reply.observation.tick_id = 0
        reply.observation.data.snapshot = True
        reply.observation.data.content = data.Board(cells=[0, 0, 0, 0]).SerializeToString()
    return reply


def make_trial(
    settings: Any, data: types.ModuleType, *, timeout: Optional[float] = None
) -> tuple[ClientTrial, FakeConnection, Game]:
    game = Game(data)
    fake = FakeConnection(settings, game, timeout=timeout)
    connection: TrialConnection = fake  # type-checked: the fake has all the trial needs
    trial = ClientTrial(connection, settings.actor_classes.player, start_reply(data))
    return trial, fake, game


def test_a_trial_acts_and_gives_feedback_through_the_interface(
    settings: Any, data: types.ModuleType
) -> None:
    trial, fake, _ = make_trial(settings, data)
    assert (trial.id, trial.actor_id, trial.tick_id) == (TRIAL_ID, 0, 0)
    assert trial.connection is fake and trial.session_id == "fake-session"
    assert len(fake.kept_alive) == 1  # a trial with a slot asks for heartbeats at once
    trial.actors.player[1].add_feedback(value=1.0, confidence=1.0)
    observation, reward, _ = trial.do_action(data.Move(cell=2))
    assert fake.methods() == ["GiveFeedback", "Action"]
    feedback = fake.calls[0].request.feedbacks[0]
    assert (feedback.actor_id, feedback.tick_id, feedback.value) == (1, 0, 1.0)
    assert all(call.timeout is CONNECTION_TIMEOUT for call in fake.calls)
    assert list(observation.cells) == [0, 0, 1, 0] and trial.tick_id == 1
    assert reward.value == 0.5

    trial.begin_actions_stream()
    observation, _, _ = trial.do_action(data.Move(cell=3))
    assert fake.methods()[-1] == "ActionStream" and len(fake.streams) == 1
    assert list(observation.cells) == [0, 0, 1, 2] and trial.tick_id == 2

    trial.end()
    assert fake.calls[-1] == Call("End", orchestrator_pb2.TrialEndRequest(trial_id=TRIAL_ID), 30.0)
    assert trial.is_over and trial.end_reason == "ended by this client"
    assert fake.forgotten == [trial] and fake.kept_alive == []
    assert fake.streams[0].cancelled  # the trial closed its stream


def test_heartbeats_are_driven_by_the_connection(settings: Any, data: types.ModuleType) -> None:
    trial, fake, game = make_trial(settings, data)
    ends = Ends()
    trial.set_on_trial_end_event_listener(ends)
    (beating,) = fake.kept_alive
    now = time.monotonic()
    assert not beating.heartbeat_due(now, 60.0)  # just started: not quiet for a minute
    assert beating.heartbeat_due(now + 61.0, 60.0)
    beating.send_heartbeat()
    assert fake.calls == [
        Call("Heartbeat", orchestrator_pb2.TrialHeartbeatRequest(trial_id=TRIAL_ID), 2.0)
    ]
    assert not trial.is_over

    game.failures["Heartbeat"] = CogmentRpcError(grpc.StatusCode.NOT_FOUND, ENDED)
    beating.send_heartbeat()
    assert trial.is_over and trial.error is None
    assert trial.end_reason == "max_steps (5) reached"
    assert fake.kept_alive == [] and fake.forgotten == [trial]
    assert not beating.heartbeat_due(now + 61.0, 60.0)
    assert ends.called.wait(5) and len(ends.calls) == 1
    with pytest.raises(TrialEndedError, match=r"max_steps \(5\) reached"):
        trial.do_action(data.Move())


def test_a_timed_out_action_is_ended_in_the_background(
    settings: Any, data: types.ModuleType
) -> None:
    trial, fake, game = make_trial(settings, data, timeout=0.5)
    game.failures["Action"] = CogmentRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "too slow")
    with pytest.raises(TrialError, match=r"do_action timed out after 0\.5 s") as info:
        trial.do_action(data.Move())
    assert info.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert fake.ended_in_background == [TRIAL_ID]
    assert trial.is_over and trial.error is not None and fake.forgotten == [trial]


def test_an_unreachable_orchestrator_ends_the_trial_naming_the_endpoint(
    settings: Any, data: types.ModuleType
) -> None:
    trial, _, game = make_trial(settings, data)
    game.failures["Action"] = CogmentRpcError(grpc.StatusCode.UNAVAILABLE, "gone")
    with pytest.raises(TrialError, match="lost the orchestrator at fake:1: gone"):
        trial.do_action(data.Move())
    assert trial.error is not None and trial.error.code is grpc.StatusCode.UNAVAILABLE


def test_a_closed_connection_refuses_the_trial(settings: Any, data: types.ModuleType) -> None:
    trial, fake, _ = make_trial(settings, data)
    fake.close()
    with pytest.raises(LifecycleError, match="the fake connection is closed"):
        trial.do_action(data.Move())
    with pytest.raises(LifecycleError, match="the fake connection is closed"):
        trial.end()
    assert fake.calls == [] and not trial.is_over  # closing is not ending


def test_a_trial_without_a_slot_is_watched_over_a_stream(
    settings: Any, data: types.ModuleType
) -> None:
    game = Game(data)
    game.failures["Heartbeat"] = CogmentRpcError(grpc.StatusCode.NOT_FOUND, ENDED)
    fake = FakeConnection(settings, game)
    trial = ClientTrial(fake, settings.actor_classes.player, start_reply(data, actor_id=-1))
    assert trial.actor_class is None and fake.kept_alive == []
    assert trial.wait_for_end(5)  # the watch stream's reply said it is over
    assert trial.end_reason == "max_steps (5) reached"  # asked with a Heartbeat
    assert fake.methods() == ["ActionStream", "Heartbeat"]
    assert fake.calls[0].request.actor_id == -1
