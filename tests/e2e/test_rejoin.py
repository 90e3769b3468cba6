"""A client that comes back with its session id joins its slot again, mid-trial, with the
full observation (its class observes deltas), and plays on; nobody else can take the slot."""

from __future__ import annotations

import contextlib
import threading
import types
from typing import Any, Callable

import grpc
import pytest

from cogment.client import Connection
from cogment.errors import CogmentRpcError, ConfigurationError
from cogment.orchestrator.actors import Actor
from cogment.orchestrator.humans import FOLD_AFTER, Observations
from tests.e2e.model import BoardModel
from tests.waiting import wait_until

Start = Callable[..., Any]
Connect = Callable[..., Connection]


def test_a_session_joins_its_slot_again_with_the_full_observation(
    orchestrator: Start, connect: Connect, cog_settings: types.ModuleType
) -> None:
    from data_pb2 import Board, Move

    orch = orchestrator()
    first = connect(orch)
    trial = first.start_trial("player")
    model = BoardModel(4, player_ids=[0, 1])
    for t in range(7):  # the player gets deltas, and a Board every third tick
        cell = t % 4
        trial.do_action(Move(cell=cell))
        model.step([cell, model.agent_move(1)])
    assert trial.observation == model.board(Board)
    first.close()  # the client is gone; the trial waits for its slot

    with pytest.raises(CogmentRpcError) as info:
        connect(orch).join_trial("player", trial.id, 0)
    assert info.value.code is grpc.StatusCode.FAILED_PRECONDITION

    again = connect(orch, session_id=first.session_id).join_trial("player", trial.id, 0)
    assert (again.tick_id, again.observation) == (7, model.board(Board))
    for t in range(7, 12):
        observation, _, _ = again.do_action(Move(cell=1))
        model.step([1, model.agent_move(1)])
        assert observation == model.board(Board), f"tick {t + 1}"
    again.end()


def test_joining_again_abandons_the_old_connections_pending_action(
    orchestrator: Start, connect: Connect
) -> None:
    from data_pb2 import Move

    orch = orchestrator(actors=[("player", "human"), ("player", "human"), ("watcher", "watcher")])
    first = connect(orch)
    trial = first.start_trial("player")
    other = connect(orch).join_trial("player", trial.id, 1)
    waiting = threading.Thread(target=lambda: _quietly(trial.do_action, Move(cell=2)), daemon=True)
    waiting.start()  # waits for the other slot's action
    slot = orch._server.registry.get(trial.id).humans.slots[0]  # peek: is the action filed?
    wait_until(lambda: slot.waiter is not None, 10, "the first action is filed")
    again = connect(orch, session_id=first.session_id).join_trial("player", trial.id, 0)
    result: list[Any] = []
    second = threading.Thread(target=lambda: result.append(again.do_action(Move(cell=3))))
    assert slot.waiter is None  # the old call was let go
    second.start()
    wait_until(lambda: slot.waiter is not None, 10, "the new action is filed")
    other.do_action(Move(cell=0))
    second.join(10)
    assert result and result[0].observation.turn == 1
    # tick 0 was player 0's: the action it sent last (cell 3) counted
    assert list(result[0].observation.cells) == [0, 0, 0, 1]
    first.close()
    waiting.join(10)
    again.end()


def _quietly(call: Callable[..., Any], *args: Any) -> None:
    with contextlib.suppress(Exception):  # the abandoned call ends with an error: the point
        call(*args)


def test_a_malformed_session_id_is_refused(cog_settings: types.ModuleType) -> None:
    for bad in ("", "has space", "x" * 129, "naïve"):
        with pytest.raises(ConfigurationError, match="session_id must be"):
            Connection(cog_settings, "127.0.0.1:1", session_id=bad)
    conn = Connection(cog_settings, "127.0.0.1:1", session_id="my-session_1.0")
    assert conn.session_id == "my-session_1.0"
    conn.close()


def test_observations_fold_their_deltas(cog_settings: types.ModuleType) -> None:
    from cogment.api import common_pb2

    player = cog_settings.actor_classes.player
    actor = Actor(0, player, 0, common_pb2.ActorParams(actor_class="player", endpoint="human"))
    kept = Observations(actor)
    board = player.observation_space(cells=[0, 0, 0], turn=0)
    kept.add(
        common_pb2.ObservationData(
            content=board.SerializeToString(), snapshot=True
        ).SerializeToString()
    )
    cells = [0, 0, 0]
    for turn in range(1, 2 * FOLD_AFTER + 5):
        cell = turn % 3
        cells[cell] += turn
        delta = player.observation_delta(cell=cell, value=cells[cell], turn=turn)
        kept.add(common_pb2.ObservationData(content=delta.SerializeToString()).SerializeToString())
    full = player.observation_space.FromString(kept.full())
    assert (list(full.cells), full.turn) == (cells, 2 * FOLD_AFTER + 4)
    # a failing delta-apply function: no full observation, until the next snapshot
    kept.add(common_pb2.ObservationData(content=b"\xff\xff").SerializeToString())
    assert kept.full() is None and kept.broken
    kept.add(
        common_pb2.ObservationData(
            content=board.SerializeToString(), snapshot=True
        ).SerializeToString()
    )
    assert kept.full() == board.SerializeToString()
