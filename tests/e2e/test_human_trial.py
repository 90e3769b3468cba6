"""A human trial end to end: observations, rewards, messages, the pre-hook, the stream, the
slot's config."""

from __future__ import annotations

import threading
import types
from typing import Any, Callable

import pytest

import cogment
from cogment.client import Connection
from cogment.errors import TrialEndedError
from tests.e2e.conftest import BOTH_TRANSPORTS, Services, trial_params
from tests.e2e.model import BoardModel, texts, weighted

Start = Callable[..., Any]
Connect = Callable[..., Connection]


@BOTH_TRANSPORTS
def test_a_human_trial_of_50_ticks(
    orchestrator: Start, connect: Connect, cog_settings: types.ModuleType, services: Services
) -> None:
    from data_pb2 import Board, Chat, Move

    orch = orchestrator()
    trial = connect(orch).start_trial(
        cog_settings.actor_classes.player,
        trial_cfg=cog_settings.trial.config_type(env_size=5),
        user_id="me",
    )
    journal = services.journal
    # the pre-trial hook rewrote the environment's config from the trial config and user id
    assert journal.events(trial.id, "hooks") == [("hooks", "pre_trial", "me")]
    assert journal.events(trial.id, "env")[0] == ("env", "start", (5, "hooked:me"))
    assert (trial.actor_id, trial.actor_counts, trial.tick_id) == (0, [2, 1], 0)
    model = BoardModel(5, player_ids=[0, 1])
    assert trial.observation == model.board(Board)
    alice_feedbacks: list[list[tuple[float, float]]] = []

    for t in range(50):
        trial.actors.player[0].add_feedback(value=-t, confidence=2.0)  # to itself
        trial.actors.player[1].add_feedback(value=10 * t, confidence=1.0)  # to alice
        if t == 5:
            trial.multi_cast(Chat(text="hi env"), [-1])
        if t == 7:
            trial.actors.player[1].send_message(Chat(text="hi alice"))
            trial.actors.watcher[0].send_message(Chat(text="hi watcher"))
        board_sum = sum(model.cells)
        human_cell = (3 * t + 1) % 5
        alice_cell = model.agent_move(1)

        obs, reward, messages = trial.do_action(Move(cell=human_cell))

        mover, env_value = model.step([human_cell, alice_cell])
        assert obs == model.board(Board), f"tick {t + 1}"
        assert obs is trial.observation and trial.tick_id == t + 1
        mine: list[tuple[float, float]] = [(board_sum, 0.5), (-t, 2.0)]
        mine += [(env_value, 1.0)] if mover == 0 else []
        value, confidence = weighted(mine)
        assert reward.value == pytest.approx(value, rel=1e-6), f"tick {t}"
        assert reward.confidence == pytest.approx(confidence)
        assert sorted((f.value, f.confidence) for f in reward.feedbacks) == sorted(mine)
        assert {f.tick_id for f in reward.feedbacks} == {t}
        assert reward == trial.latest_reward
        alices: list[tuple[float, float]] = [(board_sum, 0.5), (10 * t, 1.0)]
        alice_feedbacks.append(alices + ([(env_value, 1.0)] if mover == 1 else []))
        expected = [(2, f"turn {t}")] + ([(-1, "env got: hi env")] if t == 6 else [])
        assert sorted(texts(messages)) == sorted(expected), f"tick {t}"
        assert messages == trial.latest_messages

    trial.end()
    assert trial.is_over

    # alice shares the human's observations (one ObservationData, deltas and snapshots)
    # (their Decide on observation 50 may have gone out before the trial ended)
    for who in ("player1", "watcher2"):
        decided = [d for _, e, d in journal.events(trial.id, who) if e == "decide"]
        assert len(decided) in (50, 51), who
        assert decided == model.history[: len(decided)], who
    # alice's rewards, from the environment, the watcher and the client
    rewards = [d for _, e, d in journal.events(trial.id, "player1") if e == "reward"]
    assert len(rewards) >= 49
    for t, (value, confidence) in enumerate(rewards[:49]):
        assert (value, confidence) == pytest.approx(weighted(alice_feedbacks[t])), f"tick {t}"
    # messages: client -> agents, client -> env, agent -> env, env -> agent
    received = {
        who: [m for _, e, d in journal.events(trial.id, who) if e == "on_message" for m in d]
        for who in ("env", "player1", "watcher2")
    }
    assert (0, "hi env") in received["env"] and (1, "hello from alice") in received["env"]
    assert (1, "alice rewarded " + format(rewards[0][0], "g")) in received["env"]
    assert (0, "hi alice") in received["player1"]
    assert (-1, "env got: hello from alice") in received["player1"]
    assert received["watcher2"] == [(0, "hi watcher")]
    # End reached every service exactly once
    for who in ("env", "player1", "watcher2"):
        assert [e for _, e, _ in journal.events(trial.id, who)].count("end") == 1, who


@BOTH_TRANSPORTS
def test_the_action_stream(
    orchestrator: Start, connect: Connect, cog_settings: types.ModuleType, services: Services
) -> None:
    from data_pb2 import Board, Move

    orch = orchestrator()
    trial = connect(orch).start_trial("player")
    model = BoardModel(4, player_ids=[0, 1])
    trial.do_action(Move(cell=1))  # one unary action first
    model.step([1, model.agent_move(1)])
    trial.begin_actions_stream()
    for t in range(1, 12):
        alice_cell = model.agent_move(1)
        trial.actors.player[0].add_feedback(value=t, confidence=1.0)
        obs, reward, messages = trial.do_action(Move(cell=t))
        model.step([t, alice_cell])
        assert obs == model.board(Board) and trial.tick_id == t + 1
        assert (t, 1.0) in [(f.value, f.confidence) for f in reward.feedbacks]
        assert texts(messages) == [(2, f"turn {t}")]
    trial.end()
    assert trial.is_over
    ends = [e for _, e, _ in services.journal.events(trial.id, "env")].count("end")
    assert ends == 1


@BOTH_TRANSPORTS
def test_a_second_human_joins(
    orchestrator: Start, connect: Connect, cog_settings: types.ModuleType, services: Services
) -> None:
    from data_pb2 import Board, Chat, Move

    orch = orchestrator(actors=[("player", "human"), ("player", "human"), ("watcher", "watcher")])
    first = connect(orch).start_trial("player")
    second = connect(orch, heartbeat_interval=0.1).join_trial(
        cog_settings.actor_classes.player, first.id, 1
    )
    assert (second.id, second.actor_id, second.actor_counts) == (first.id, 1, [2, 1])
    assert second.session_id != first.session_id
    assert first.observation == second.observation == Board(cells=[0] * 4, turn=0)
    model = BoardModel(4, player_ids=[0, 1])
    for t in range(6):
        if t == 2:
            first.actors.player[1].send_message(Chat(text="hello second"))
        results: dict[int, Any] = {}

        def act_second(results: dict[int, Any] = results) -> None:
            results[1] = second.do_action(Move(cell=2))

        worker = threading.Thread(target=act_second)
        worker.start()
        results[0] = first.do_action(Move(cell=t))
        worker.join(10)
        model.step([t, 2])
        assert results[0].observation == results[1].observation == model.board(Board)
        got = texts(results[1].messages)
        assert ((0, "hello second") in got) == (t == 2)
    ended = threading.Event()
    second.set_on_trial_end_event_listener(lambda: ended.set())
    first.end()
    assert ended.wait(5)  # the second client's heartbeat learns it
    assert second.is_over and second.end_reason == "ended by a client" and second.error is None
    with pytest.raises(TrialEndedError, match="ended by a client"):
        second.do_action(Move(cell=0))


@BOTH_TRANSPORTS
def test_a_streaming_client_learns_the_end_while_idle(
    orchestrator: Start, connect: Connect
) -> None:
    from data_pb2 import Move

    orch = orchestrator(actors=[("player", "human"), ("player", "human"), ("watcher", "watcher")])
    first = connect(orch).start_trial("player")
    second = connect(orch, heartbeat_interval=None).join_trial("player", first.id, 1)
    second.begin_actions_stream()
    worker = threading.Thread(target=second.do_action, args=(Move(cell=1),))
    worker.start()
    first.do_action(Move(cell=0))
    worker.join(10)
    assert second.tick_id == 1
    ended = threading.Event()
    second.set_on_trial_end_event_listener(lambda: ended.set())
    first.end()
    assert ended.wait(5)
    assert second.end_reason == "ended by a client"
    with pytest.raises(TrialEndedError):
        second.do_action(Move(cell=1))


def test_a_client_gets_its_slot_config_decoded(
    cog_settings: types.ModuleType, services: Services
) -> None:
    from data_pb2 import PlayerConfig

    actors = [("player", "human"), ("player", "human"), ("watcher", "watcher")]
    params = trial_params(cog_settings, services, actors)
    params.actors[0].config.content = PlayerConfig(name="bob").SerializeToString()
    params.actors[1].config.content = PlayerConfig(name="carol").SerializeToString()
    orch = cogment.Orchestrator(
        cog_settings, port=0, default_trial_params=params, pre_hooks=[], datalog_endpoint=""
    )
    with orch:
        first = Connection(cog_settings, orch.endpoint, timeout=30)
        second = Connection(cog_settings, orch.endpoint, timeout=30)
        with first, second:
            trial = first.start_trial("player")
            joined = second.join_trial("player", trial.id, 1)
            assert trial.config == PlayerConfig(name="bob")  # as an agent gets its config
            assert joined.config == PlayerConfig(name="carol")
            trial.end()
