"""Every way a trial ends: max_steps, the environment, inactivity, the client, shutdown;
and trials without a human slot (actor_id -1)."""

from __future__ import annotations

import threading
import time
import types
from typing import Any, Callable

import grpc
import pytest

from cogment.client import Connection
from cogment.errors import TrialEndedError, TrialError
from tests.e2e.conftest import BOTH_TRANSPORTS, Services
from tests.listeners import Ends, settle
from tests.waiting import TrialLookups, wait_until

pytestmark = BOTH_TRANSPORTS
Start = Callable[..., Any]
Connect = Callable[..., Connection]
AGENTS_ONLY = [("player", "player"), ("player", "player"), ("watcher", "watcher")]


def ends_of(services: Services, trial_id: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for who, event, _ in services.journal.events(trial_id):
        if event == "end":
            counts[who] = counts.get(who, 0) + 1
    return counts


def test_max_steps(orchestrator: Start, connect: Connect, services: Services) -> None:
    from data_pb2 import Move

    orch = orchestrator(max_steps=5)
    trial = connect(orch, heartbeat_interval=None).start_trial("player")
    ends = Ends()
    trial.set_on_trial_end_event_listener(ends)
    for t in range(4):
        trial.do_action(Move(cell=t))
        assert not trial.is_over
    obs, _, _ = trial.do_action(Move(cell=0))
    assert trial.is_over and obs.turn == 5 and trial.tick_id == 5  # the final observation
    assert trial.end_reason == "max_steps (5) reached" and trial.error is None
    assert ends.called.wait(5)
    assert ends.calls[0].thread != threading.current_thread().name
    with pytest.raises(TrialEndedError, match=f"trial {trial.id} is over"):
        trial.do_action(Move(cell=0))
    trial.end()  # a no-op now
    wait_until(
        lambda: ends_of(services, trial.id) == {"env": 1, "player1": 1, "watcher2": 1},
        5,
        "every service got End",
    )
    settle(trial)
    assert len(ends.calls) == 1


def test_the_environment_ends_the_trial(
    orchestrator: Start, connect: Connect, cog_settings: types.ModuleType, services: Services
) -> None:
    from data_pb2 import Move

    orch = orchestrator()
    conn = connect(orch, heartbeat_interval=None)
    trial = conn.start_trial("player", trial_cfg=cog_settings.trial.config_type(rounds=3))
    ends = Ends()
    trial.set_on_trial_end_event_listener(ends)
    trial.do_action(Move(cell=0))
    trial.do_action(Move(cell=0))
    trial.do_action(Move(cell=0))
    assert trial.is_over and trial.end_reason == "the environment ended the trial"
    assert ends.called.wait(5)
    wait_until(
        lambda: ends_of(services, trial.id) == {"env": 1, "player1": 1, "watcher2": 1},
        5,
        "every service got End",
    )
    # another client's later call learns why
    with pytest.raises(Exception, match="has ended: the environment ended the trial"):
        connect(orch).join_trial("player", trial.id, 0)
    assert len(ends.calls) == 1 and conn.trials == []


def test_inactive_trials_are_reaped_and_heartbeats_keep_them(
    orchestrator: Start, connect: Connect, services: Services
) -> None:
    from data_pb2 import Move

    orch = orchestrator(max_inactivity=1)
    quiet = connect(orch, heartbeat_interval=None)
    before = time.monotonic()
    silent = quiet.start_trial("player")
    started = time.monotonic()  # the orchestrator counts from between `before` and now
    alive = connect(orch, heartbeat_interval=0.2).start_trial("player")
    ended_at: list[float] = []

    def env_ended() -> bool:
        if ends_of(services, silent.id).get("env") and not ended_at:
            ended_at.append(time.monotonic())
        return bool(ended_at)

    wait_until(env_ended, 5, "the silent trial is reaped", interval=0.005)
    assert ended_at[0] - before >= 0.9 and ended_at[0] - started <= 1.5  # 1 to 1.5x the limit
    with pytest.raises(TrialEndedError, match=r"max_inactivity"):
        silent.do_action(Move(cell=0))
    # a trial started now and left idle is reaped about 2x max_inactivity after `alive`
    # started: `alive`, idle but for its heartbeats, would have been reaped before it
    later = quiet.start_trial("player")
    wait_until(lambda: ends_of(services, later.id).get("env"), 5, "the later trial is reaped")
    assert not alive.is_over
    obs, _, _ = alive.do_action(Move(cell=0))
    assert obs.turn == 1
    alive.end()


def test_the_client_ends_the_trial(
    orchestrator: Start, connect: Connect, services: Services
) -> None:
    from data_pb2 import Move

    orch = orchestrator()
    conn = connect(orch, heartbeat_interval=0.05)
    trial = conn.start_trial("player")
    ends = Ends()
    trial.set_on_trial_end_event_listener(ends)
    trial.do_action(Move(cell=0))
    trial.end()
    trial.end()
    assert ends_of(services, trial.id) == {"env": 1, "player1": 1, "watcher2": 1}
    assert orch.trial_count == 0
    # the connection's heartbeat thread, which sends one call at a time, goes on with another
    # trial: once that trial's heartbeat reached the orchestrator, one of `trial` under way
    # at its end has had its answer handled
    lookups = TrialLookups(orch)
    idle = conn.start_trial("player")
    lookups.wait(idle.id, 2, 5, "2 heartbeats of another trial reached the orchestrator")
    settle(trial)
    assert not ends.calls


def test_an_agent_only_trial_runs_by_itself(
    orchestrator: Start, connect: Connect, cog_settings: types.ModuleType, services: Services
) -> None:
    orch = orchestrator(actors=AGENTS_ONLY)
    conn = connect(orch, heartbeat_interval=None)
    trial = conn.start_trial("player", trial_cfg=cog_settings.trial.config_type(rounds=5))
    assert (trial.actor_id, trial.actor_class, trial.observation) == (-1, None, None)
    assert trial.actor_counts == [2, 1]
    ends = Ends()
    trial.set_on_trial_end_event_listener(ends)
    assert ends.called.wait(10)
    assert trial.is_over and trial.error is None
    assert trial.end_reason == "the environment ended the trial"
    updates = [d[0] for _, e, d in services.journal.events(trial.id, "env") if e == "update"]
    assert updates == [0, 1, 2, 3, 4]
    wait_until(
        lambda: (
            ends_of(services, trial.id) == {"env": 1, "player0": 1, "player1": 1, "watcher2": 1}
        ),
        5,
        "every service got End",
    )

    by_steps = conn.start_trial("player")  # rounds 0: max_steps ends it
    by_steps_ends = Ends()
    by_steps.set_on_trial_end_event_listener(by_steps_ends)
    assert by_steps_ends.called.wait(10)
    assert by_steps.end_reason == "max_steps (100) reached"

    endless = conn.start_trial("player")
    endless_ends = Ends()
    endless.set_on_trial_end_event_listener(endless_ends)
    wait_until(lambda: len(services.journal.events(endless.id, "env")) > 3, 5, "the trial runs")
    endless.end()
    assert endless.is_over and ends_of(services, endless.id)["env"] == 1
    settle(endless)  # its watch stream's reader, which hears the end too, finished
    assert not endless_ends.calls


def test_an_agent_only_trial_that_fails(
    orchestrator: Start, connect: Connect, services: Services
) -> None:
    orch = orchestrator(actors=AGENTS_ONLY)
    trial = connect(orch, heartbeat_interval=None).start_trial("player", user_id="fail-env:2")
    ends = Ends()
    trial.set_on_trial_end_event_listener(ends)
    assert ends.called.wait(10)
    assert isinstance(trial.error, TrialError)
    assert "environment at " in trial.error.message
    assert "board on fire at tick 2" in trial.error.message


def test_orchestrator_shutdown_ends_running_trials(
    orchestrator: Start, connect: Connect, services: Services
) -> None:
    from data_pb2 import Move

    orch = orchestrator(actors=[("player", "human"), ("player", "human"), ("watcher", "watcher")])
    conn = connect(orch, heartbeat_interval=None)
    trial = conn.start_trial("player")
    watched = connect(orch, heartbeat_interval=None).join_trial("player", trial.id, 1)
    lookups = TrialLookups(orch)
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.append(trial.do_action(Move(cell=1))))
    worker.start()  # waits for the second human, who never acts
    wait_until(lambda: len(services.journal.events(trial.id, "watcher2")) >= 1, 5, "the trial runs")
    lookups.wait(trial.id, 1, 5, "the action reached the orchestrator")
    orch.stop()
    worker.join(10)
    assert results and trial.is_over  # the waiting action got trial_is_over
    # the reason is asked of an orchestrator that is going away: either answer is right
    assert trial.end_reason in ("orchestrator shutdown", "ended by the orchestrator")
    assert ends_of(services, trial.id) == {"env": 1, "watcher2": 1}
    # the other client was idle without heartbeats; the orchestrator is gone, and its trials
    with pytest.raises(TrialError, match=f"ended: lost the orchestrator at {orch.endpoint}: "):
        watched.do_action(Move(cell=1))
    assert watched.is_over and isinstance(watched.error, TrialError)
    assert watched.error.code is grpc.StatusCode.UNAVAILABLE
