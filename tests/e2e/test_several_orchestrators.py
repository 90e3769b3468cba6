"""Several orchestrators on separate loopback addresses: a Connection spreads new trials over
them and sends each trial's calls to its owner; an orchestrator asked about another's trial
forwards the call, so a 0.5-style client that only knows one of them plays every trial."""

from __future__ import annotations

import queue
import types
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

import cogment
from cogment.api import orchestrator_pb2, orchestrator_pb2_grpc
from cogment.client import Connection
from cogment.ownership import owner_of
from tests.e2e.conftest import trial_params

TIMEOUT = 10.0
TWO_HUMANS = (("player", "human"), ("player", "human"), ("watcher", "watcher"))
ADDRESSES = ("127.0.0.1", "127.0.0.2", "127.0.0.3")


@pytest.fixture
def orchestrators(
    cog_settings: types.ModuleType, services: Any
) -> Iterator[list[cogment.Orchestrator]]:
    params = trial_params(cog_settings, services, TWO_HUMANS)
    started = [
        cogment.Orchestrator(
            cog_settings, port=0, host=host, response_timeout=TIMEOUT,
            default_trial_params=params, pre_hooks=[], datalog_endpoint="",
        ).start()
        for host in ADDRESSES
    ]  # fmt: skip
    yield started
    for orch in started:
        orch.stop()


def test_new_trials_spread_and_calls_go_to_their_owner(
    cog_settings: types.ModuleType, orchestrators: list[cogment.Orchestrator]
) -> None:
    from data_pb2 import Move

    assert [o.advertised for o in orchestrators] == [o.endpoint for o in orchestrators]
    with Connection(cog_settings, [o.endpoint for o in orchestrators], timeout=TIMEOUT) as conn:
        trials = [conn.start_trial("player") for _ in range(6)]
        partners = [
            Connection(cog_settings, [o.endpoint for o in orchestrators], timeout=TIMEOUT)
            for _ in trials
        ]
        joined = [p.join_trial("player", t.id, 1) for p, t in zip(partners, trials)]
        owners = [str(owner_of(trial.id)) for trial in trials]
        assert sorted(owners) == sorted([o.advertised for o in orchestrators] * 2)
        assert [o.trial_count for o in orchestrators] == [2, 2, 2]
        trials[0].begin_actions_stream()
        for trial, other in zip(trials, joined):
            other.begin_actions_stream()
            with ThreadPoolExecutor(1) as pool:
                theirs = pool.submit(other.do_action, Move(cell=2))
                assert trial.do_action(Move(cell=1)).observation.turn == 1
                assert theirs.result(TIMEOUT).observation.turn == 1
            trial.end()
        assert [o.trial_count for o in orchestrators] == [0, 0, 0]
        for connection in partners:
            connection.close()


def _requests(items: queue.Queue) -> Iterator[Any]:
    while (item := items.get()) is not None:
        yield item


def test_an_orchestrator_forwards_calls_about_another_ones_trials(
    cog_settings: types.ModuleType, orchestrators: list[cogment.Orchestrator]
) -> None:
    from data_pb2 import Move

    first, second, _ = orchestrators
    with Connection(cog_settings, second.endpoint, timeout=TIMEOUT) as owner_side:
        trial = owner_side.start_trial("player")
        assert owner_of(trial.id) == second.advertised
        # a 0.5 client that only knows the first orchestrator plays the second slot
        channel = grpc.insecure_channel(first.endpoint)
        stub = orchestrator_pb2_grpc.TrialStub(channel)
        metadata = [("session_id", "old-client")]
        joined = stub.Join(
            orchestrator_pb2.TrialJoinRequest(trial_id=trial.id, actor_id=1),
            timeout=TIMEOUT,
            metadata=metadata,
        )
        assert (joined.trial_id, joined.actor_id) == (trial.id, 1)
        stub.Heartbeat(orchestrator_pb2.TrialHeartbeatRequest(trial_id=trial.id), timeout=TIMEOUT)
        action = orchestrator_pb2.TrialActionRequest(trial_id=trial.id, actor_id=1)
        action.action.content = Move(cell=2).SerializeToString()
        requests: queue.Queue = queue.Queue()
        replies = stub.ActionStream(_requests(requests), timeout=TIMEOUT, metadata=metadata)
        requests.put(action)
        # the owner's client acts too: the tick passes, both get observation 1
        assert trial.do_action(Move(cell=1)).observation.turn == 1
        assert next(replies).observation.tick_id == 1
        requests.put(None)
        unknown = f"nope@{second.advertised}"
        with pytest.raises(grpc.RpcError) as info:
            stub.Heartbeat(
                orchestrator_pb2.TrialHeartbeatRequest(trial_id=unknown), timeout=TIMEOUT
            )
        assert info.value.code() is grpc.StatusCode.NOT_FOUND  # as the owner answers
        stub.End(orchestrator_pb2.TrialEndRequest(trial_id=trial.id), timeout=TIMEOUT)
        assert second.trial_count == 0
        channel.close()


def test_a_trial_whose_owner_is_gone_is_unavailable(
    cog_settings: types.ModuleType, orchestrators: list[cogment.Orchestrator]
) -> None:
    first, _, third = orchestrators
    third.stop()
    channel = grpc.insecure_channel(first.endpoint)
    stub = orchestrator_pb2_grpc.TrialStub(channel)
    trial_id = f"gone@{third.advertised}"
    with pytest.raises(grpc.RpcError) as info:
        stub.Heartbeat(orchestrator_pb2.TrialHeartbeatRequest(trial_id=trial_id), timeout=TIMEOUT)
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE
    assert (info.value.details() or "").startswith(
        f"trial {trial_id} is owned by the orchestrator at {third.advertised}, which cannot be reached"
    )
    channel.close()
