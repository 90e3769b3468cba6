"""Agent services driven over real gRPC exactly as an orchestrator drives them."""

from __future__ import annotations

import threading
import time
import types
import uuid
from typing import Any, Callable

import grpc
import pytest

import cogment
from cogment.api import agent_pb2, agent_pb2_grpc, common_pb2

TIMEOUT = 5.0
COUNTS = [2, 1]  # actors 0, 1: player; actor 2: watcher


def _board(data: types.ModuleType, cells: list[int], turn: int) -> Any:
    return data.Board(cells=cells, turn=turn)


def _obs(tick: int, message: Any, snapshot: bool = True) -> common_pb2.Observation:
    return common_pb2.Observation(
        tick_id=tick,
        timestamp=time.time_ns(),
        data=common_pb2.ObservationData(content=message.SerializeToString(), snapshot=snapshot),
    )


def _chats(messages: Any, data: types.ModuleType) -> list[tuple[int, int, str]]:
    out = []
    for m in messages:
        chat = data.Chat()
        assert m.payload.Unpack(chat)
        out.append((m.sender_id, m.receiver_id, chat.text))
    return out


def _fb(feedbacks: Any) -> list[tuple[int, int, int, float, float]]:
    return [(f.actor_id, f.agent_id, f.tick_id, f.value, f.confidence) for f in feedbacks]


@pytest.fixture
def player_stub(
    project_services: types.ModuleType, start_server: Callable[..., Any], grpc_channel: Any
) -> agent_pb2_grpc.AgentStub:
    server = start_server(project_services.PlayerAgent)
    return agent_pb2_grpc.AgentStub(grpc_channel(server))


def _start(
    stub: agent_pb2_grpc.AgentStub, trial_id: str, actor_id: int, config: Any = None, **kw: Any
) -> None:
    request = agent_pb2.AgentStartRequest(trial_id=trial_id, actor_id=actor_id, actor_counts=COUNTS)
    if config is not None:
        request.config.content = config.SerializeToString()
    for key, value in kw.items():
        getattr(request, key).content = value.SerializeToString()
    stub.Start(request, timeout=TIMEOUT)


def test_player_agent_full_trial(
    player_stub: agent_pb2_grpc.AgentStub, project_services: types.ModuleType, data: Any
) -> None:
    stub, journal = player_stub, project_services.JOURNAL
    trial_id = f"trial-{uuid.uuid4()}"
    _start(
        stub, trial_id, 1, data.PlayerConfig(name="alice"), trial_config=data.TrialConfig(rounds=3)
    )
    assert journal.events(trial_id) == [("player1", "init", "alice")]

    # tick 0: a snapshot; the greeting queued in __init__ travels with this reply
    reply = stub.Decide(
        agent_pb2.AgentDecideRequest(
            trial_id=trial_id, actor_id=1, observation=_obs(0, _board(data, [0, 0, 0, 0], 0))
        ),
        timeout=TIMEOUT,
    )
    assert data.Move.FromString(reply.action.content) == data.Move(cell=1)  # (0 + 1) % 4
    assert _fb(reply.feedbacks) == [(2, 0, 0, 0.0, 1.0)]  # to the watcher, for tick 0
    assert _chats(reply.messages, data) == [(1, -1, "hello from alice")]

    # tick 1: a delta, applied by the SDK before decide()
    delta = data.BoardDelta(cell=1, value=2, turn=1)
    reply = stub.Decide(
        agent_pb2.AgentDecideRequest(
            trial_id=trial_id, actor_id=1, observation=_obs(1, delta, False)
        ),
        timeout=TIMEOUT,
    )
    assert data.Move.FromString(reply.action.content) == data.Move(cell=2)  # (1 + 1) % 4
    assert _fb(reply.feedbacks) == [(2, 0, 1, 1.0, 1.0)]
    assert list(reply.messages) == []

    # a reward, then messages: what they queue goes with the next decide
    reward = agent_pb2.Reward(value=1.5, confidence=2.0)
    reward.feedbacks.add(actor_id=1, tick_id=1, value=1.5, confidence=2.0)
    stub.Reward(
        agent_pb2.AgentRewardRequest(trial_id=trial_id, actor_id=1, reward=reward, tick_id=1),
        timeout=TIMEOUT,
    )
    message = common_pb2.Message(sender_id=-1, receiver_id=1)
    message.payload.Pack(data.Chat(text="hi alice"))
    stub.OnMessage(
        agent_pb2.AgentOnMessageRequest(trial_id=trial_id, actor_id=1, messages=[message]),
        timeout=TIMEOUT,
    )

    # tick 2: another delta on top of the first, then tick 3: a snapshot again
    delta = data.BoardDelta(cell=3, value=7, turn=2)
    reply = stub.Decide(
        agent_pb2.AgentDecideRequest(
            trial_id=trial_id, actor_id=1, observation=_obs(2, delta, False)
        ),
        timeout=TIMEOUT,
    )
    assert data.Move.FromString(reply.action.content) == data.Move(cell=3)
    assert _fb(reply.feedbacks) == [(2, 0, 2, 2.0, 1.0)]
    assert _chats(reply.messages, data) == [(1, -1, "alice rewarded 1.5")]
    reply = stub.Decide(
        agent_pb2.AgentDecideRequest(
            trial_id=trial_id, actor_id=1, observation=_obs(3, _board(data, [5, 5, 5, 5], 3))
        ),
        timeout=TIMEOUT,
    )
    assert data.Move.FromString(reply.action.content) == data.Move(cell=0)

    stub.End(agent_pb2.AgentEndRequest(trial_id=trial_id, actor_id=1), timeout=TIMEOUT)
    assert journal.events(trial_id) == [
        ("player1", "init", "alice"),
        ("player1", "decide", (0, [0, 0, 0, 0])),
        ("player1", "decide", (1, [0, 2, 0, 0])),
        ("player1", "reward", (1.5, 2.0)),
        ("player1", "on_message", [(-1, "hi alice")]),
        ("player1", "decide", (2, [0, 2, 0, 7])),
        ("player1", "decide", (3, [5, 5, 5, 5])),
        ("player1", "end", None),
    ]
    # the instance is gone after End
    with pytest.raises(grpc.RpcError) as error:
        stub.Decide(
            agent_pb2.AgentDecideRequest(
                trial_id=trial_id, actor_id=1, observation=_obs(4, _board(data, [0], 4))
            ),
            timeout=TIMEOUT,
        )
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert f"trial {trial_id}: no actor 1" in (error.value.details() or "")


def test_watcher_agent_feedback_and_messages(
    project_services: types.ModuleType, start_server: Any, grpc_channel: Any, data: Any
) -> None:
    stub = agent_pb2_grpc.AgentStub(grpc_channel(start_server(project_services.WatcherAgent)))
    trial_id = f"trial-{uuid.uuid4()}"
    _start(stub, trial_id, 2)  # the watcher class has no config type: config is None
    reply = stub.Decide(
        agent_pb2.AgentDecideRequest(
            trial_id=trial_id, actor_id=2, observation=_obs(4, _board(data, [1, 2, 3], 4))
        ),
        timeout=TIMEOUT,
    )
    assert data.Nothing.FromString(reply.action.content) == data.Nothing()
    assert _fb(reply.feedbacks) == [(0, 0, 4, 6.0, 0.5), (1, 1, 4, 6.0, 0.5)]
    assert _chats(reply.messages, data) == [(2, 0, "turn 4"), (2, 1, "turn 4")]
    info = stub.Version(common_pb2.VersionRequest(), timeout=TIMEOUT)
    versions = [(v.name, v.version) for v in info.versions]
    assert versions == [
        ("cogment-api", cogment.API_VERSION),
        ("cogment-py", cogment.__version__),
        ("cogment.ext.AgentStream", "1"),  # it serves cogment-py's streams
        ("watcher-agent", "1.0.0"),
    ]
    stub.End(agent_pb2.AgentEndRequest(trial_id=trial_id, actor_id=2), timeout=TIMEOUT)


def _code_and_details(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as error:
        call()
    return error.value.code(), error.value.details() or ""


def test_agent_request_errors(player_stub: agent_pb2_grpc.AgentStub, data: Any) -> None:
    stub = player_stub

    def decide(trial_id: str, actor_id: int, observation: Any) -> Any:
        return stub.Decide(
            agent_pb2.AgentDecideRequest(
                trial_id=trial_id, actor_id=actor_id, observation=observation
            ),
            timeout=TIMEOUT,
        )

    code, details = _code_and_details(lambda: decide("nope", 0, _obs(0, data.Board())))
    assert (
        code == grpc.StatusCode.NOT_FOUND
        and details == "trial nope: no actor 0 on this agent service"
    )

    # actor 2 is a watcher: this server serves players
    code, details = _code_and_details(lambda: _start(stub, "t1", 2))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "actor 2 is of class 'watcher'" in details and "serves class 'player'" in details
    code, details = _code_and_details(lambda: _start(stub, "t1", 9))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "no actor 9" in details

    _start(stub, "t1", 0)
    code, details = _code_and_details(lambda: _start(stub, "t1", 0))
    assert code == grpc.StatusCode.ALREADY_EXISTS
    # the first observation must be a snapshot
    code, details = _code_and_details(lambda: decide("t1", 0, _obs(0, data.BoardDelta(), False)))
    assert (
        code == grpc.StatusCode.INVALID_ARGUMENT and "delta arrived before any snapshot" in details
    )
    bad = common_pb2.Observation(
        tick_id=0, data=common_pb2.ObservationData(content=b"\xff", snapshot=True)
    )
    code, details = _code_and_details(lambda: decide("t1", 0, bad))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "actor 0" in details and "testproject.Board" in details
    # the session still works after refused calls
    assert (
        data.Move.FromString(decide("t1", 0, _obs(0, data.Board(cells=[0, 0]))).action.content).cell
        == 0
    )


class CrashingPlayer(cogment.Agent):
    """Raises on turn 1, returns the wrong type on turn 2, a Move otherwise."""

    # actor_class is set by the test (cog_settings is only importable once generated)

    def decide(self, observation: Any) -> Any:
        if observation.turn == 1:
            raise ValueError("turn one is cursed")
        if observation.turn == 2:
            return observation
        return self.actor_class.action_space(cell=observation.turn)


def test_user_exceptions_become_internal_and_the_server_keeps_serving(
    cog_settings: Any, start_server: Any, grpc_channel: Any, data: Any, caplog: Any
) -> None:
    agent_type = type(
        "CrashingPlayer", (CrashingPlayer,), {"actor_class": cog_settings.actor_classes.player}
    )
    stub = agent_pb2_grpc.AgentStub(grpc_channel(start_server(agent_type)))
    _start(stub, "boom", 0)
    _start(stub, "fine", 1)

    def decide(trial_id: str, actor_id: int, turn: int) -> Any:
        return stub.Decide(
            agent_pb2.AgentDecideRequest(
                trial_id=trial_id, actor_id=actor_id, observation=_obs(turn, data.Board(turn=turn))
            ),
            timeout=TIMEOUT,
        )

    with caplog.at_level("ERROR", logger="cogment"):
        code, details = _code_and_details(lambda: decide("boom", 0, 1))
    assert code == grpc.StatusCode.INTERNAL
    assert details == "CrashingPlayer.decide failed in trial boom: ValueError: turn one is cursed"
    assert any(r.exc_info and "turn one is cursed" in str(r.exc_info[1]) for r in caplog.records)
    code, details = _code_and_details(lambda: decide("boom", 0, 2))
    assert code == grpc.StatusCode.INTERNAL
    assert "CrashingPlayer.decide in trial boom returned Board, expected Move" in details
    assert data.Move.FromString(decide("fine", 1, 5).action.content).cell == 5


def test_one_instance_never_runs_two_calls_at_once(
    cog_settings: Any, start_server: Any, grpc_channel: Any, data: Any
) -> None:
    state: dict[str, Any] = {"inside": 0, "overlaps": 0, "instances": set(), "calls": 0}
    lock = threading.Lock()
    entered, release = threading.Event(), threading.Event()

    class Slow(cogment.Agent):
        actor_class = cog_settings.actor_classes.player

        def decide(self, observation: Any) -> Any:
            with lock:
                state["inside"] += 1
                state["overlaps"] += state["inside"] > 1
                state["instances"].add(id(self))
                state["calls"] += 1
                first = state["calls"] == 1
            if first:  # busy until the others are at the service: they would overlap it
                entered.set()
                release.wait(TIMEOUT)
            with lock:
                state["inside"] -= 1
            return data.Move()

    stub = agent_pb2_grpc.AgentStub(grpc_channel(start_server(Slow)))
    _start(stub, "t", 0)
    request = agent_pb2.AgentDecideRequest(
        trial_id="t", actor_id=0, observation=_obs(0, data.Board())
    )
    futures = [stub.Decide.future(request, timeout=TIMEOUT) for _ in range(8)]
    try:
        assert entered.wait(TIMEOUT)
        # a later call on the same channel, which no instance lock holds up: once it is
        # answered, the server has handed the eight Decide calls before it to its threads
        stub.Version(common_pb2.VersionRequest(), timeout=TIMEOUT)
    finally:
        release.set()
    for future in futures:
        future.result(timeout=TIMEOUT)
    assert state["calls"] == 8
    assert state["overlaps"] == 0 and len(state["instances"]) == 1
