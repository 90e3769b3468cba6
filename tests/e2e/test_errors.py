"""Every error of issue 4, end to end: what the client raises, and that other trials go on."""

from __future__ import annotations

import threading
import types
from typing import Any, Callable

import grpc
import pytest

from cogment.api import orchestrator_pb2, orchestrator_pb2_grpc
from cogment.client import Connection
from cogment.errors import CogmentRpcError, ConfigurationError, TrialError
from tests.e2e.conftest import BOTH_TRANSPORTS, Services, free_port
from tests.waiting import wait_until

Start = Callable[..., Any]
Connect = Callable[..., Connection]
TWO_HUMANS = [("player", "human"), ("player", "human"), ("watcher", "watcher")]


def raw_stub(orch: Any) -> tuple[grpc.Channel, Any]:
    channel = grpc.insecure_channel(orch.endpoint)
    return channel, orchestrator_pb2_grpc.TrialStub(channel)


def test_a_second_concurrent_action_is_refused(orchestrator: Start, connect: Connect) -> None:
    from data_pb2 import Move

    orch = orchestrator(actors=TWO_HUMANS)
    first = connect(orch).start_trial("player")
    second = connect(orch).join_trial("player", first.id, 1)
    outcomes: list[Any] = []

    def act() -> None:
        try:
            outcomes.append(first.do_action(Move(cell=1)))
        except CogmentRpcError as error:
            outcomes.append(error)

    workers = [threading.Thread(target=act) for _ in range(2)]
    for worker in workers:
        worker.start()
    # one of the two calls is pending (the trial waits for the second human), the other refused
    wait_until(lambda: len(outcomes) == 1, 5, "one of the two actions is refused")
    refused = outcomes[0]
    assert isinstance(refused, CogmentRpcError)
    assert refused.code is grpc.StatusCode.FAILED_PRECONDITION
    assert refused.message == f"trial {first.id}: actor 0 already has an action pending"
    second.do_action(Move(cell=2))
    for worker in workers:
        worker.join(10)
    assert outcomes[1].observation.turn == 1 and first.tick_id == 1


def test_unknown_trials_and_actors_are_not_found(orchestrator: Start, connect: Connect) -> None:
    orch = orchestrator(actors=TWO_HUMANS)
    conn = connect(orch)
    trial = conn.start_trial("player")
    with pytest.raises(CogmentRpcError) as info:
        conn.join_trial("player", "no-such-trial", 1)
    assert (info.value.code, info.value.message) == (
        grpc.StatusCode.NOT_FOUND,
        "trial no-such-trial not found",
    )
    with pytest.raises(CogmentRpcError) as info:
        conn.join_trial("player", trial.id, 9)
    assert (info.value.code, info.value.message) == (
        grpc.StatusCode.NOT_FOUND,
        f"trial {trial.id}: no actor 9",
    )
    channel, stub = raw_stub(orch)
    with channel, pytest.raises(grpc.RpcError) as raw:
        stub.Heartbeat(orchestrator_pb2.TrialHeartbeatRequest(trial_id="no-such-trial"), timeout=5)
    assert raw.value.code() is grpc.StatusCode.NOT_FOUND


def test_slots_that_cannot_be_joined(orchestrator: Start, connect: Connect) -> None:
    orch = orchestrator(actors=TWO_HUMANS)
    conn = connect(orch)
    trial = conn.start_trial("player")
    with pytest.raises(CogmentRpcError) as info:
        conn.join_trial("watcher", trial.id, 2)  # an agent's slot
    assert info.value.code is grpc.StatusCode.FAILED_PRECONDITION
    assert info.value.message.startswith(f"trial {trial.id}: actor 2 is not a human slot")
    with pytest.raises(CogmentRpcError) as info:
        connect(orch).join_trial("player", trial.id, 0)  # the starting client holds it
    assert info.value.code is grpc.StatusCode.FAILED_PRECONDITION
    assert info.value.message == f"trial {trial.id}: actor 0 is already joined"


def test_a_join_for_another_class_leaves_the_slot_free(
    orchestrator: Start, connect: Connect
) -> None:
    orch = orchestrator(actors=TWO_HUMANS)
    conn = connect(orch)
    trial = conn.start_trial("player")
    with pytest.raises(ConfigurationError) as info:
        conn.join_trial("watcher", trial.id, 1)  # a human slot, of class player
    assert str(info.value) == f"trial {trial.id}: actor 1 is of class 'player', not 'watcher'"
    second = connect(orch).join_trial("player", trial.id, 1)  # refused before it was taken
    assert second.actor_id == 1
    second.end()


@BOTH_TRANSPORTS
def test_bad_action_bytes_are_an_invalid_argument(orchestrator: Start, connect: Connect) -> None:
    from data_pb2 import Move

    orch = orchestrator()
    conn = connect(orch)
    trial = conn.start_trial("player")
    channel, stub = raw_stub(orch)
    request = orchestrator_pb2.TrialActionRequest(trial_id=trial.id, actor_id=0)
    request.action.content = b"\xff\xff\xff"
    with channel, pytest.raises(grpc.RpcError) as info:
        stub.Action(request, timeout=5, metadata=(("session_id", conn.session_id),))
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    details = info.value.details() or ""
    assert "testproject.Move" in details and "'player'" in details
    assert trial.do_action(Move(cell=0)).observation.turn == 1  # the trial goes on


@BOTH_TRANSPORTS
def test_failing_services_end_only_their_trial(
    orchestrator: Start, connect: Connect, services: Services
) -> None:
    from data_pb2 import Move

    orch = orchestrator()
    conn = connect(orch, heartbeat_interval=None)
    healthy = conn.start_trial("player")
    env_fails = conn.start_trial("player", user_id="fail-env:3")
    agent_fails = conn.start_trial("player", user_id="fail-agent")
    ended = threading.Event()
    env_fails.set_on_trial_end_event_listener(lambda: ended.set())
    for t in range(3):
        for trial in (healthy, env_fails, agent_fails):
            if t == 2 and trial is agent_fails:
                with pytest.raises(TrialError) as agent_error:
                    trial.do_action(Move(cell=t))
            else:
                trial.do_action(Move(cell=t))
    with pytest.raises(TrialError) as env_error:
        env_fails.do_action(Move(cell=3))
    assert env_error.value.code is grpc.StatusCode.ABORTED
    message = env_error.value.message
    assert message.startswith(
        f"trial {env_fails.id} ended: environment at {services.endpoints['failing_env']}"
    )
    assert "Update failed" in message and "board on fire at tick 3" in message
    assert ended.wait(5) and env_fails.error is not None
    assert env_fails.end_reason in message
    agent_message = agent_error.value.message
    assert (
        f"agent actor 1 (class 'player') at {services.endpoints['failing_player']}" in agent_message
    )
    assert "Decide failed" in agent_message and "player lost its marbles at turn 2" in agent_message
    # later calls on a failed trial keep raising TrialError, from this client or another
    with pytest.raises(TrialError, match="board on fire"):
        env_fails.do_action(Move(cell=0))
    with pytest.raises(TrialError, match="board on fire") as later:
        connect(orch).join_trial("player", env_fails.id, 0)
    assert later.value.code is grpc.StatusCode.NOT_FOUND
    # the healthy trial never noticed
    for t in range(3, 8):
        assert healthy.do_action(Move(cell=t)).observation.turn == t + 1
    healthy.end()
    assert healthy.error is None


@BOTH_TRANSPORTS
def test_unreachable_services_fail_the_start(
    orchestrator: Start, connect: Connect, services: Services
) -> None:
    from data_pb2 import Move

    orch = orchestrator()
    conn = connect(orch)
    with pytest.raises(TrialError) as info:
        conn.start_trial("player", user_id="unreachable-env")
    assert (
        f"environment at {services.endpoints['dead']}: Start failed: UNAVAILABLE"
        in info.value.message
    )
    with pytest.raises(TrialError) as info:
        conn.start_trial("player", user_id="unreachable-agent")
    assert f"at {services.endpoints['dead']}: Start failed: UNAVAILABLE" in info.value.message
    assert "agent actor 1 (class 'player')" in info.value.message
    assert conn.start_trial("player").do_action(Move(cell=0)).observation.turn == 1


def test_an_unreachable_orchestrator(cog_settings: types.ModuleType) -> None:
    port = free_port()
    conn = Connection(cog_settings, f"grpc://127.0.0.1:{port}", timeout=5)
    with conn, pytest.raises(CogmentRpcError) as info:
        conn.start_trial("player")
    assert info.value.code is grpc.StatusCode.UNAVAILABLE
    assert f"cannot reach the orchestrator at 127.0.0.1:{port}" in str(info.value)
