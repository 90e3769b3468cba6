"""Environment services driven over real gRPC exactly as an orchestrator drives them."""

from __future__ import annotations

import time
import types
import uuid
from typing import Any, Callable

import grpc
import pytest

import cogment
from cogment.api import common_pb2, environment_pb2, environment_pb2_grpc

TIMEOUT = 5.0
COUNTS = [2, 1]  # actors 0, 1: player; actor 2: watcher


@pytest.fixture
def env_stub(
    project_services: types.ModuleType, start_server: Callable[..., Any], grpc_channel: Any
) -> environment_pb2_grpc.EnvironmentStub:
    return environment_pb2_grpc.EnvironmentStub(
        grpc_channel(start_server(project_services.BoardEnv))
    )


def _start(stub: Any, trial_id: str, data: Any, rounds: int = 0, size: int = 4) -> Any:
    request = environment_pb2.EnvStartRequest(trial_id=trial_id, actor_counts=COUNTS)
    request.config.content = data.EnvConfig(size=size, label="lbl").SerializeToString()
    request.trial_config.content = data.TrialConfig(rounds=rounds).SerializeToString()
    return stub.Start(request, timeout=TIMEOUT)


def _update(stub: Any, trial_id: str, cells: list[int], data: Any, snapshot: bool = False) -> Any:
    actions = [data.Move(cell=c).SerializeToString() for c in cells] + [b""]  # watcher: Nothing
    return stub.Update(
        environment_pb2.EnvUpdateRequest(
            trial_id=trial_id,
            action_set=environment_pb2.ActionSet(actions=actions),
            reply_with_snapshot=snapshot,
        ),
        timeout=TIMEOUT,
    )


def _observations(obs_set: Any, data: Any) -> list[tuple[bool, Any]]:
    out = []
    for o in obs_set.observations:
        out.append(
            (o.snapshot, (data.Board if o.snapshot else data.BoardDelta).FromString(o.content))
        )
    return out


def _fb(feedbacks: Any) -> list[tuple[int, int, int, float, float]]:
    return [(f.actor_id, f.agent_id, f.tick_id, f.value, f.confidence) for f in feedbacks]


def _chats(messages: Any, data: Any) -> list[tuple[int, int, str]]:
    out = []
    for m in messages:
        chat = data.Chat()
        assert m.payload.Unpack(chat)
        out.append((m.sender_id, m.receiver_id, chat.text))
    return out


def test_board_env_full_trial(env_stub: Any, project_services: types.ModuleType, data: Any) -> None:
    stub, trial_id = env_stub, f"trial-{uuid.uuid4()}"
    before = time.time_ns()
    reply = _start(stub, trial_id, data, rounds=4)
    obs = reply.observation_set
    # one observation for everyone: on the wire once
    assert obs.tick_id == 0 and before <= obs.timestamp <= time.time_ns()
    assert _observations(obs, data) == [(True, data.Board(cells=[0, 0, 0, 0]))]
    assert list(obs.actors_map) == [0, 0, 0]

    message = common_pb2.Message(sender_id=1, receiver_id=-1)
    message.payload.Pack(data.Chat(text="hi env"))
    stub.OnMessage(
        environment_pb2.EnvOnMessageRequest(trial_id=trial_id, actor_id=-1, messages=[message]),
        timeout=TIMEOUT,
    )

    # tick 0: player 0 moves on cell 5 % 4 = 1 (+1); players share one delta
    reply = _update(stub, trial_id, [5, 9], data)
    assert reply.observation_set.tick_id == 1 and not reply.end_trial
    assert _observations(reply.observation_set, data) == [
        (False, data.BoardDelta(cell=1, value=1, turn=1)),
        (True, data.Board(cells=[0, 1, 0, 0], turn=1)),
    ]
    assert list(reply.observation_set.actors_map) == [0, 0, 1]
    assert _fb(reply.feedbacks) == [(0, 0, 0, 1.0, 1.0)]
    assert _chats(reply.messages, data) == [(-1, 1, "env got: hi env")]

    # tick 1: player 1 moves on cell 2 (+2); the orchestrator asks for snapshots
    reply = _update(stub, trial_id, [0, 2], data, snapshot=True)
    assert reply.observation_set.tick_id == 2
    assert _observations(reply.observation_set, data) == [
        (True, data.Board(cells=[0, 1, 2, 0], turn=2))
    ]
    assert list(reply.observation_set.actors_map) == [0, 0, 0]
    assert _fb(reply.feedbacks) == [(1, 1, 1, 2.0, 1.0)] and list(reply.messages) == []

    # tick 2: (2 + 1) % 3 == 0: everyone gets the same Board object, sent once
    reply = _update(stub, trial_id, [1, 0], data)
    assert _observations(reply.observation_set, data) == [
        (True, data.Board(cells=[0, 2, 2, 0], turn=3))
    ]
    assert list(reply.observation_set.actors_map) == [0, 0, 0]

    # tick 3: rounds == 4: the trial ends with this reply
    reply = _update(stub, trial_id, [0, 3], data)
    assert reply.end_trial and reply.observation_set.tick_id == 4
    assert _observations(reply.observation_set, data)[0] == (
        False,
        data.BoardDelta(cell=3, value=2, turn=4),
    )
    with pytest.raises(grpc.RpcError) as error:
        _update(stub, trial_id, [0, 0], data)
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"trial {trial_id} has ended" in (error.value.details() or "")

    stub.End(environment_pb2.EnvEndRequest(trial_id=trial_id), timeout=TIMEOUT)
    journal = project_services.JOURNAL.events(trial_id)
    assert journal[0] == ("env", "start", (4, "lbl"))
    assert journal[1] == ("env", "on_message", [(1, "hi env")])
    assert journal[2] == ("env", "update", (0, ["cell: 5", "cell: 9", ""]))
    assert [e[1] for e in journal] == ["start", "on_message"] + ["update"] * 4 + ["end"]
    with pytest.raises(grpc.RpcError) as error:
        _update(stub, trial_id, [0, 0], data)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert error.value.details() == f"trial {trial_id} not found on this environment service"


def test_reply_with_snapshot_after_many_deltas(env_stub: Any, data: Any) -> None:
    """Deltas pile up past SnapshotKeeper.MAX_PENDING; snapshots stay exact."""
    stub, trial_id = env_stub, "long"
    _start(stub, trial_id, data, size=5)
    cells = [0] * 5
    for tick in range(80):
        mover = tick % 2
        move = (tick * 7) % 5
        cells[move] += mover + 1
        snapshot = tick % 37 == 36
        reply = _update(stub, trial_id, [move, move], data, snapshot=snapshot)
        if snapshot:
            assert _observations(reply.observation_set, data) == [
                (True, data.Board(cells=cells, turn=tick + 1))
            ]
    reply = _update(stub, trial_id, [0, 0], data, snapshot=True)
    cells[0] += 1
    assert _observations(reply.observation_set, data) == [(True, data.Board(cells=cells, turn=81))]


def _code_and_details(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as error:
        call()
    return error.value.code(), error.value.details() or ""


def test_environment_request_errors(env_stub: Any, data: Any) -> None:
    stub = env_stub
    code, details = _code_and_details(lambda: _update(stub, "ghost", [0, 0], data))
    assert code == grpc.StatusCode.NOT_FOUND and "trial ghost not found" in details
    code, details = _code_and_details(
        lambda: stub.End(environment_pb2.EnvEndRequest(trial_id="ghost"), timeout=TIMEOUT)
    )
    assert code == grpc.StatusCode.NOT_FOUND

    _start(stub, "t", data)
    code, _ = _code_and_details(lambda: _start(stub, "t", data))
    assert code == grpc.StatusCode.ALREADY_EXISTS
    bad = environment_pb2.EnvUpdateRequest(
        trial_id="t", action_set=environment_pb2.ActionSet(actions=[b"", b"\xff", b""])
    )
    code, details = _code_and_details(lambda: stub.Update(bad, timeout=TIMEOUT))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "actor 1 (class 'player') is not a valid testproject.Move" in details
    short = environment_pb2.EnvUpdateRequest(
        trial_id="t", action_set=environment_pb2.ActionSet(actions=[b""])
    )
    code, details = _code_and_details(lambda: stub.Update(short, timeout=TIMEOUT))
    assert (
        code == grpc.StatusCode.INVALID_ARGUMENT
        and "holds 1 actions, the trial has 3 actors" in details
    )
    counts = environment_pb2.EnvStartRequest(trial_id="u", actor_counts=[1, 1, 1])
    code, details = _code_and_details(lambda: stub.Start(counts, timeout=TIMEOUT))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "actor classes (player, watcher)" in details
    # refused calls leave the trial usable
    assert _update(stub, "t", [0, 0], data).observation_set.tick_id == 1


class FaultyEnv(cogment.Environment):
    """start: a Board, or a delta for trial "delta-start"; update: misbehaves per tick (from
    `first_tick` on: subclasses skip the first misbehaviours)."""

    first_tick = 0

    def start(self, config: Any) -> Any:
        import data_pb2

        if self.trial.id == "delta-start":
            return data_pb2.BoardDelta()
        return data_pb2.Board(cells=[0])

    def update(self, actions: Any) -> Any:
        import data_pb2

        tick = self.trial.tick_id + self.first_tick
        if tick == 0:
            raise RuntimeError("tick zero exploded")
        if tick == 1:
            return data_pb2.Move()
        table = self.trial.new_observation_table()
        table.player[0] = data_pb2.Board()
        return table  # actors 1 and 2 have nothing


def test_environment_user_errors(start_server: Any, grpc_channel: Any, data: Any) -> None:
    stub = environment_pb2_grpc.EnvironmentStub(grpc_channel(start_server(FaultyEnv)))
    code, details = _code_and_details(lambda: _start(stub, "delta-start", data))
    assert code == grpc.StatusCode.INTERNAL
    assert details.startswith(
        "FaultyEnv.start in trial delta-start: actor 0 (class 'player') got a delta"
    )
    _start(stub, "t", data)
    code, details = _code_and_details(lambda: _update(stub, "t", [0, 0], data))
    assert (code, details) == (
        grpc.StatusCode.INTERNAL,
        "FaultyEnv.update failed in trial t: RuntimeError: tick zero exploded",
    )
    # a failed update does not advance the tick
    code, _ = _code_and_details(lambda: _update(stub, "t", [0, 0], data))
    assert code == grpc.StatusCode.INTERNAL
    stub.End(environment_pb2.EnvEndRequest(trial_id="t"), timeout=TIMEOUT)


def test_environment_result_type_errors(start_server: Any, grpc_channel: Any, data: Any) -> None:
    class Skipper(FaultyEnv):
        first_tick = 1  # make update misbehave without the exception first

    stub = environment_pb2_grpc.EnvironmentStub(grpc_channel(start_server(Skipper)))
    _start(stub, "t", data)
    code, details = _code_and_details(lambda: _update(stub, "t", [0, 0], data))
    assert code == grpc.StatusCode.INTERNAL
    assert details == (
        "Skipper.update in trial t: actor 0 (class 'player') expects an observation of type "
        "testproject.Board, got Move"
    )


def test_environment_missing_table_entry(start_server: Any, grpc_channel: Any, data: Any) -> None:
    class Gappy(FaultyEnv):
        first_tick = 2

    stub = environment_pb2_grpc.EnvironmentStub(grpc_channel(start_server(Gappy)))
    _start(stub, "t", data)
    code, details = _code_and_details(lambda: _update(stub, "t", [0, 0], data))
    assert code == grpc.StatusCode.INTERNAL
    assert (
        details
        == "Gappy.update in trial t: no observation for actor 1 (class 'player') in the ObservationTable"
    )


def test_environment_version(env_stub: Any) -> None:
    info = env_stub.Version(common_pb2.VersionRequest(), timeout=TIMEOUT)
    assert [(v.name, v.version) for v in info.versions] == [
        ("cogment-api", cogment.API_VERSION),
        ("cogment-py", cogment.__version__),
        ("cogment.ext.EnvironmentStream", "1"),  # it serves cogment-py's streams
        ("board-env", "1.0.0"),
    ]
